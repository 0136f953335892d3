"""The server's row and batch rules, checked before any byte is sent. Pure: no I/O, no clock.

Rules (seed guide, spec and API-FACTS):

* a batch holds 1..1000 rows;
* ``type`` is 0 (Note), the only supported event type;
* ``caseId`` is a UUID;
* ``description`` is present, not blank, and at most 10,000 characters;
* ``eventDate`` is optional, time-zone aware, and not in the future (beyond a small skew);
* ``externalRef`` is optional text;
* no other fields (the API rejects unknown properties).

Per-row failures the server decides (unknown case, case of another partner) cannot be seen here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import RowProblem, ValidationError
from .models import IngestionJobRow, PartnerIngestEventType, parse_uuid

__all__ = [
    "MAX_BATCH_ROWS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "check_batch",
    "check_description",
    "check_event_date",
    "coerce_row",
    "item_problems",
    "row_from_mapping",
    "row_problems",
]

MAX_BATCH_ROWS = 1000
MAX_DESCRIPTION_CHARS = 10_000
MAX_IDEMPOTENCY_KEY_CHARS = 255

# API field name -> constructor argument; snake_case spellings are accepted too.
_FIELDS: dict[str, str] = {
    "type": "type",
    "caseId": "case_id",
    "case_id": "case_id",
    "description": "description",
    "eventDate": "event_date",
    "event_date": "event_date",
    "externalRef": "external_ref",
    "external_ref": "external_ref",
}
_API_NAME = {
    "type": "type",
    "case_id": "caseId",
    "description": "description",
    "event_date": "eventDate",
    "external_ref": "externalRef",
}


def _parse_event_date(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")


def coerce_row(data: object, index: int) -> tuple[IngestionJobRow | None, list[RowProblem]]:
    """Build a row from a camelCase (or snake_case) mapping; report every structural problem.

    Returns ``(row, [])`` or ``(None, problems)``. Rules that need a clock (future eventDate)
    are left to :func:`row_problems`.
    """
    if not isinstance(data, Mapping):
        return None, [RowProblem(index, "row", f"expected a mapping, got {type(data).__name__}")]
    problems: list[RowProblem] = []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        target = _FIELDS.get(key) if isinstance(key, str) else None
        if target is None:
            problems.append(RowProblem(index, str(key), "unknown field"))
            continue
        if target in kwargs:
            problems.append(RowProblem(index, _API_NAME[target], "given twice"))
            continue
        kwargs[target] = value

    case_id = kwargs.get("case_id")
    if case_id is None:
        problems.append(RowProblem(index, "caseId", "required"))
    elif isinstance(case_id, str):
        parsed = parse_uuid(case_id)
        if parsed is None:
            problems.append(RowProblem(index, "caseId", f"{case_id!r} is not a valid UUID"))
        else:
            kwargs["case_id"] = parsed
    elif not isinstance(case_id, uuid.UUID):
        problems.append(RowProblem(index, "caseId", f"expected a UUID string, got {case_id!r}"))

    description = kwargs.get("description")
    if description is None:
        problems.append(RowProblem(index, "description", "required for Note events"))
    elif not isinstance(description, str):
        problems.append(
            RowProblem(index, "description", f"expected text, got {type(description).__name__}")
        )
    else:
        problems += check_description(description, index)

    event_type = kwargs.get("type", PartnerIngestEventType.NOTE)
    if isinstance(event_type, bool) or not isinstance(event_type, int):
        problems.append(RowProblem(index, "type", f"expected an integer, got {event_type!r}"))
    elif event_type not in PartnerIngestEventType._value2member_map_:
        problems.append(
            RowProblem(index, "type", f"unsupported event type {event_type} (only 0 = Note)")
        )

    if kwargs.get("event_date") is not None:
        try:
            kwargs["event_date"] = _parse_event_date(kwargs["event_date"])
        except (TypeError, ValueError) as exc:
            problems.append(RowProblem(index, "eventDate", str(exc)))
        else:
            problems += _check_event_date_form(kwargs["event_date"], index)

    external_ref = kwargs.get("external_ref")
    if external_ref is not None and not isinstance(external_ref, str):
        problems.append(
            RowProblem(index, "externalRef", f"expected text, got {type(external_ref).__name__}")
        )
    elif external_ref is not None:
        problems += _check_text(external_ref, index, "externalRef")

    if problems:
        return None, problems
    return IngestionJobRow(**kwargs), []


def row_from_mapping(data: Mapping[str, Any]) -> IngestionJobRow:
    """:meth:`IngestionJobRow.from_mapping`: a row, or a ValidationError naming every field."""
    row, problems = coerce_row(data, 0)
    if row is None:
        raise ValidationError(problems, what="row")
    return row


def _check_text(text: str, index: int, field: str) -> list[RowProblem]:
    if text.isascii():  # no surrogates possible; isascii() does not copy
        return []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return [RowProblem(index, field, f"not valid Unicode text (at character {exc.start})")]
    return []


def check_description(description: object, index: int) -> list[RowProblem]:
    if not isinstance(description, str):
        return [RowProblem(index, "description", "required for Note events")]
    if not description.strip():
        return [RowProblem(index, "description", "must not be empty")]
    if len(description) > MAX_DESCRIPTION_CHARS:
        return [
            RowProblem(
                index,
                "description",
                f"{len(description)} characters, over the limit of {MAX_DESCRIPTION_CHARS}",
            )
        ]
    return _check_text(description, index, "description")


def _check_event_date_form(event_date: datetime, index: int) -> list[RowProblem]:
    """The clock-free rules: time-zone aware, and representable in UTC."""
    if event_date.tzinfo is None or event_date.tzinfo.utcoffset(event_date) is None:
        return [
            RowProblem(
                index,
                "eventDate",
                f"{event_date.isoformat()} has no time zone (give an offset or 'Z', or name"
                " the zone such times are in: --assume-timezone ZONE)",
            )
        ]
    try:
        event_date.astimezone(UTC)
    except OverflowError:
        return [RowProblem(index, "eventDate", f"{event_date.isoformat()} is out of range")]
    return []


def check_event_date(
    event_date: datetime | None, index: int, *, now: datetime, skew: timedelta
) -> list[RowProblem]:
    if event_date is None:
        return []
    if problems := _check_event_date_form(event_date, index):
        return problems
    if event_date > now + skew:
        return [RowProblem(index, "eventDate", f"{event_date.isoformat()} is in the future")]
    return []


def plainly_valid(row: IngestionJobRow, latest_event_date: datetime) -> bool:
    """A fast yes for the common row: ASCII text, a UTC (or no) eventDate before the limit.

    True means :func:`row_problems` finds nothing (``latest_event_date`` being ``now + skew``);
    False means "look closer" (``row_problems`` decides). The ingestion pipeline calls this once
    per row; the full rules run only for rows it does not vouch for.
    """
    description = row.description
    if (
        type(description) is not str
        or not description
        or len(description) > MAX_DESCRIPTION_CHARS
        or not description.isascii()
        or description.isspace()
    ):
        return False
    event_date = row.event_date
    if event_date is not None and not (
        type(event_date) is datetime
        and event_date.tzinfo is UTC
        and event_date <= latest_event_date
        and event_date.year > 1
    ):
        return False
    ref = row.external_ref
    return ref is None or (type(ref) is str and ref.isascii())


def row_problems(
    row: IngestionJobRow, index: int, *, now: datetime, skew: timedelta
) -> list[RowProblem]:
    """Everything wrong with one row, as the server would see it at ``now``."""
    problems = check_description(row.description, index)
    problems += check_event_date(row.event_date, index, now=now, skew=skew)
    ref: object = row.external_ref  # typed str | None, but attrs does not enforce it
    if ref is not None and not isinstance(ref, str):
        problems.append(
            RowProblem(index, "externalRef", f"expected text, got {type(ref).__name__}")
        )
    elif ref is not None:
        problems += _check_text(ref, index, "externalRef")
    return problems


def item_problems(
    item: object, index: int, *, now: datetime, skew: timedelta
) -> tuple[IngestionJobRow | None, list[RowProblem]]:
    """One input item, a row or a mapping, checked by every rule: ``(row or None, problems)``.

    The one per-item check behind :func:`check_batch`, the ingestion pipeline and the CLI's
    ``--strict`` pass.
    """
    if isinstance(item, IngestionJobRow):
        return item, row_problems(item, index, now=now, skew=skew)
    row, problems = coerce_row(item, index)
    if row is not None:
        problems = row_problems(row, index, now=now, skew=skew)
    return row, problems


def check_batch(
    items: Iterable[IngestionJobRow | Mapping[str, Any]],
    *,
    now: datetime,
    skew: timedelta,
) -> list[IngestionJobRow]:
    """Coerce and check a whole batch; raise one ValidationError listing every problem."""
    rows: list[IngestionJobRow] = []
    problems: list[RowProblem] = []
    count = 0
    for index, item in enumerate(items):
        count += 1
        row, found = item_problems(item, index, now=now, skew=skew)
        problems += found
        if row is not None:
            rows.append(row)
    if count == 0:
        problems.insert(0, RowProblem(-1, "rows", "at least one row is required"))
    elif count > MAX_BATCH_ROWS:
        problems.insert(
            0, RowProblem(-1, "rows", f"{count} rows, over the batch limit of {MAX_BATCH_ROWS}")
        )
    if problems:
        raise ValidationError(problems)
    return rows


def check_idempotency_key(key: str) -> None:
    if not isinstance(key, str):
        raise ValidationError(
            [RowProblem(-1, "Idempotency-Key", f"must be a string, got {type(key).__name__}")],
            what="request",
        )
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise ValidationError(
            [
                RowProblem(
                    -1,
                    "Idempotency-Key",
                    f"must be 1..{MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}",
                )
            ],
            what="request",
        )
    bad = next((c for c in key if not " " <= c <= "~"), None)
    if bad is not None:
        raise ValidationError(
            [
                RowProblem(
                    -1,
                    "Idempotency-Key",
                    f"must be printable ASCII (no CR, LF, NUL or other control), found {bad!r}",
                )
            ],
            what="request",
        )
