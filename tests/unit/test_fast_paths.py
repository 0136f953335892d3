"""The pipeline's fast paths give exactly what the slow, obviously right paths give.

* ``_wire.encode_rows`` / ``encode_row`` (one orjson call per batch) give the converter's bytes.
* ``_validate.plainly_valid`` never vouches for a row that ``row_problems`` would refuse.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import IngestionJobRow
from debitura_async._batching import Batch, batches
from debitura_async._validate import plainly_valid, row_problems
from debitura_async._wire import encode_row, encode_rows, row_to_wire

ZONES = st.sampled_from(
    [UTC, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)
ROWS = st.builds(
    IngestionJobRow,
    st.uuids(),
    st.text(min_size=1),
    external_ref=st.none() | st.text(),
    event_date=st.none() | st.datetimes(timezones=ZONES),
)


def converter_bytes(row: IngestionJobRow) -> bytes:
    return orjson.dumps(row_to_wire(row))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROWS, max_size=8))
def test_fast_encoding_matches_the_converter(rows: list[IngestionJobRow]) -> None:
    assert encode_rows(rows) == orjson.dumps({"rows": [row_to_wire(r) for r in rows]})
    for row in rows:
        assert encode_row(row) == converter_bytes(row)


@pytest.mark.parametrize(
    "row",
    [
        IngestionJobRow(uuid.UUID(int=1), "lone \ud800 surrogate"),
        IngestionJobRow(uuid.UUID(int=2), "naive", event_date=datetime(2026, 1, 1)),
    ],
)
def test_fast_encoding_fails_like_the_converter(row: IngestionJobRow) -> None:
    with pytest.raises(Exception) as expected:  # noqa: PT011 - whatever the converter raises
        converter_bytes(row)
    with pytest.raises(expected.type, match="^" + str(expected.value)[:20]):
        encode_rows([row])


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)


@settings(max_examples=500, deadline=None)
@given(
    description=st.text(max_size=30) | st.sampled_from(["", " ", "x" * 10_001, "ok"]),
    ref=st.none() | st.text(max_size=5),
    event_date=st.none()
    | st.datetimes(timezones=ZONES | st.none())
    | st.sampled_from([NOW, NOW + SKEW, NOW + SKEW + timedelta(microseconds=1)]),
)
def test_plainly_valid_only_vouches_for_valid_rows(
    description: str, ref: str | None, event_date: datetime | None
) -> None:
    row = IngestionJobRow(uuid.UUID(int=7), description, external_ref=ref, event_date=event_date)
    if plainly_valid(row, NOW + SKEW):
        assert row_problems(row, 0, now=NOW, skew=SKEW) == []


def test_plainly_valid_covers_the_common_row() -> None:
    row = IngestionJobRow(
        uuid.UUID(int=7), "Called the debtor.", external_ref="CRM-1", event_date=NOW
    )
    assert plainly_valid(row, NOW + SKEW)
    assert not plainly_valid(IngestionJobRow(uuid.UUID(int=7), "Ring på torsdag"), NOW + SKEW)
    assert (
        row_problems(IngestionJobRow(uuid.UUID(int=7), "Ring på torsdag"), 0, now=NOW, skew=SKEW)
        == []
    )


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(ROWS, min_size=1, max_size=10))
def test_batch_digest_is_the_body_hash_and_stable(rows: list[IngestionJobRow]) -> None:
    (batch,) = batches(enumerate(rows))
    again = Batch(index=batch.index, positions=tuple(range(100, 100 + len(rows))), rows=tuple(rows))
    assert batch.digest() == again.digest()  # positions do not matter, content does
    assert batch.body() == encode_rows(rows)
