"""Hypothesis strategies shared by the wire and validation tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from debitura_async.models import IngestionJobRow

# Every generated eventDate lies before NOW, so validation at NOW accepts every generated row.
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)

fixed_offsets = st.builds(
    timezone,
    # whole seconds, as every real zone's offsets (historic local mean times have seconds); a
    # sub-second offset is refused by no one but shifts its instant by microseconds when parsed
    st.integers(-(23 * 3600 + 59 * 60), 23 * 3600 + 59 * 60).map(lambda s: timedelta(seconds=s)),
)
time_zones: st.SearchStrategy[Any] = st.one_of(st.just(UTC), fixed_offsets, st.timezones())

aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2026, 8, 30),
    timezones=time_zones,
)

descriptions = st.text(min_size=1, max_size=200).filter(lambda s: bool(s.strip()))
external_refs = st.none() | st.text(max_size=60)


@st.composite
def valid_rows(draw: st.DrawFn) -> IngestionJobRow:
    """Any row the API accepts: unicode text, aware datetimes in any zone, optional fields."""
    return IngestionJobRow(
        draw(st.uuids()),
        draw(descriptions),
        event_date=draw(st.none() | aware_datetimes),
        external_ref=draw(external_refs),
    )


def _spell(camel: str, snake: str) -> st.SearchStrategy[str]:
    return st.sampled_from((camel, snake))


@st.composite
def valid_row_mappings(draw: st.DrawFn) -> tuple[dict[str, Any], IngestionJobRow]:
    """A valid row as a caller's mapping (camelCase or snake_case keys), with the row it means."""
    row = draw(valid_rows())
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["type"] = 0
    case_ids: list[uuid.UUID | str] = [row.case_id, str(row.case_id)]
    case_id = draw(st.sampled_from(case_ids))
    data[draw(_spell("caseId", "case_id"))] = case_id
    data["description"] = row.description
    if row.event_date is not None:
        event_dates: list[datetime | str] = [row.event_date, row.event_date.isoformat()]
        event_date = draw(st.sampled_from(event_dates))
        data[draw(_spell("eventDate", "event_date"))] = event_date
    elif draw(st.booleans()):
        data[draw(_spell("eventDate", "event_date"))] = None
    if row.external_ref is not None or draw(st.booleans()):
        data[draw(_spell("externalRef", "external_ref"))] = row.external_ref
    return data, row


def in_utc(row: IngestionJobRow) -> IngestionJobRow:
    """The same row with its eventDate as a UTC instant (aware datetimes in a DST fold never
    compare equal across zones, so equality tests compare instants this way)."""
    if row.event_date is None:
        return row
    return IngestionJobRow(
        row.case_id,
        row.description,
        type=row.type,
        event_date=row.event_date.astimezone(UTC),
        external_ref=row.external_ref,
    )
