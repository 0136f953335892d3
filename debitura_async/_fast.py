"""The pipeline's fast path: validate a plainly valid row and give its wire form in one pass.

Pure: no I/O, no clock (``latest`` is ``now + skew``, the latest eventDate allowed).

:func:`wire_of_mapping` returns a dict row's *wire dict*: exactly the mapping
``_wire.row_dict`` makes of the :class:`~debitura_async.models.IngestionJobRow` the slow path
would build, in the same key order, whose values orjson (``OPT_UTC_Z``) writes as the converter
does. No ``IngestionJobRow``, no ``uuid.UUID`` is made for such a row: a canonical case id
(lowercase, hyphenated) is sent as the text it already is, an eventDate is parsed once
(``datetime.fromisoformat``, C speed) and checked against ``latest``.

``None`` means "not plainly valid: ask the slow path" — which then decides, with the messages
it always gave. So the fast path never refuses a row and never words a problem; it only vouches.
What it vouches for: camelCase keys only; a canonical case-id string, any case-id text
:func:`~debitura_async.models.parse_uuid` reads, or a ``uuid.UUID``; a description that is text,
not blank, at most 10,000 characters and encodable as UTF-8; ``type`` absent or 0; an eventDate
absent, ``None``, an ISO 8601 string or a ``datetime`` with a fixed UTC offset, not later than
``latest``; an externalRef absent, ``None`` or UTF-8-encodable text.

Equivalence with the slow path (same verdict, same bytes) is hypothesis-tested in
``tests/unit/test_fast_mapping.py``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timezone
from typing import Any, Final

from .models import IngestionJobRow, PartnerIngestEventType, parse_uuid

__all__ = ["KNOWN_IDS", "WIRE_KEYS", "wire_of_mapping", "wire_of_row"]

MAX_DESCRIPTION_CHARS: Final = 10_000  # = _validate.MAX_DESCRIPTION_CHARS (checked by a test)

WIRE_KEYS: Final = frozenset({"caseId", "description", "eventDate", "externalRef", "type"})
"""The camelCase keys the fast path reads; a mapping with any other key takes the slow path."""

_CANONICAL_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch
"""``str(uuid.UUID(text)) == text``: the text is what the converter would send."""

KNOWN_IDS: Final = 4096
"""How many canonical case-id texts :func:`wire_of_mapping` remembers (about 0.5 MB at most)."""

_NOTE: Final = PartnerIngestEventType.NOTE
_ABSENT: Any = object()


def _text_ok(text: str) -> bool:
    """Not blank, within the limit, and UTF-8-encodable (no lone surrogates)."""
    if not text or len(text) > MAX_DESCRIPTION_CHARS or text.isspace():
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encodable(text: str) -> bool:
    """UTF-8-encodable (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _wire_date(value: object, latest: datetime) -> object:
    """A (parsed) eventDate as the wire dict holds it (in UTC), or _ABSENT when only the slow
    path can judge it."""
    if type(value) is not datetime:
        return _ABSENT
    assert isinstance(value, datetime)  # noqa: S101 - for mypy
    tz = value.tzinfo
    if tz is UTC:
        if value > latest or value.year < 2:
            return _ABSENT
        return value  # orjson writes it as format_datetime would
    if type(tz) is not timezone or value.year < 2 or value.year > 9998:
        return _ABSENT  # naive, zoneinfo, or near the edges of the range: the slow path decides
    utc = value.astimezone(UTC)
    if utc > latest:
        return _ABSENT
    return utc


def wire_of_mapping(
    data: dict[str, Any], latest: datetime, known_ids: set[str] | None = None
) -> dict[str, Any] | None:
    """A plain ``dict`` row's wire dict, or None when only the slow path can judge it.

    ``known_ids``, owned by the caller (one per ingestion), remembers canonical case-id texts
    already checked (at most :data:`KNOWN_IDS` of them; then it starts again): the case ids of a
    migration repeat (many notes per case), and a set lookup costs a seventh of the pattern match.

    Written for speed (it runs once per input row): the common case — a canonical case id, an
    ASCII description, a UTC eventDate — is checked inline, the rest in helpers.
    """
    if not data.keys() <= WIRE_KEYS:
        return None
    get = data.get
    case_id = get("caseId")
    if type(case_id) is str:
        if known_ids is None or case_id not in known_ids:
            if _CANONICAL_UUID(case_id) is None:
                case_id = parse_uuid(case_id)  # other spellings: sent as the UUID they name
                if case_id is None:
                    return None
            elif known_ids is not None:
                if len(known_ids) >= KNOWN_IDS:
                    known_ids.clear()
                known_ids.add(case_id)
    elif type(case_id) is not uuid.UUID:
        return None
    description = get("description")
    if (
        type(description) is not str
        or not description
        or len(description) > MAX_DESCRIPTION_CHARS
        or description.isspace()
        or not (description.isascii() or _encodable(description))
    ):
        return None
    event_type = get("type", _NOTE)
    if event_type is not _NOTE:
        kind = type(event_type)
        if (kind is not int and kind is not PartnerIngestEventType) or event_type != 0:
            return None
    event_date = get("eventDate")
    if event_date is not None:
        if type(event_date) is str:
            try:
                event_date = datetime.fromisoformat(event_date)
            except ValueError:
                return None
        if type(event_date) is not datetime or event_date.tzinfo is not UTC:
            event_date = _wire_date(event_date, latest)
            if event_date is _ABSENT:
                return None
        elif event_date > latest:
            return None
    external_ref = get("externalRef")
    if external_ref is None:
        if event_date is None:
            return {"caseId": case_id, "description": description, "type": 0}
        return {
            "caseId": case_id,
            "description": description,
            "type": 0,
            "eventDate": event_date,
        }
    if type(external_ref) is not str or not (external_ref.isascii() or _encodable(external_ref)):
        return None
    if event_date is None:
        return {
            "caseId": case_id,
            "description": description,
            "type": 0,
            "externalRef": external_ref,
        }
    return {
        "caseId": case_id,
        "description": description,
        "type": 0,
        "eventDate": event_date,
        "externalRef": external_ref,
    }


def wire_of_row(row: IngestionJobRow, latest: datetime) -> dict[str, Any] | None:
    """A typed row's wire dict when :func:`~debitura_async._validate.plainly_valid` vouches
    for it (else None): its checks and :func:`~debitura_async._wire._row_dict`'s building in
    one call, for the chunk path (equivalence hypothesis-tested in
    ``tests/unit/test_fast_chunk.py``)."""
    description = row.description
    if (
        type(description) is not str
        or not description
        or len(description) > MAX_DESCRIPTION_CHARS
        or not description.isascii()
        or description.isspace()
    ):
        return None
    case_id = row.case_id
    wire: dict[str, Any] = {
        "caseId": case_id if type(case_id) is uuid.UUID else str(case_id),
        "description": description,
        "type": row.type,  # an IntEnum: orjson writes its value
    }
    event_date = row.event_date
    if event_date is not None:
        if not (
            type(event_date) is datetime
            and event_date.tzinfo is UTC
            and event_date <= latest
            and event_date.year > 1
        ):
            return None
        wire["eventDate"] = event_date  # in UTC: orjson writes it as format_datetime would
    ref = row.external_ref
    if ref is not None:
        if type(ref) is not str or not ref.isascii():
            return None
        wire["externalRef"] = ref
    return wire
