"""The pipeline's fast path for a whole chunk of input rows at once. Pure: no I/O, no clock.

:func:`wires_of_chunk` vouches for a chunk of rows (a few hundred read in one go from a sync
iterable) in a handful of passes that run in C (``map`` over ``itemgetter``, ``str`` methods,
``datetime.fromisoformat``, ``min``/``max``), instead of one Python call per row. It answers for
the chunk as a whole or not at all:

* a chunk of plain ``dict`` rows that all have the same keys, in any order (a JSON export, the
  CSV reader's rows), each what :func:`~debitura_async._fast.wire_of_mapping` vouches for in its
  common form — a canonical case-id text, text descriptions, ``type`` absent or 0, eventDate
  texts in UTC (``Z`` or ``+00:00``) not later than ``latest``, text externalRefs — gives the
  rows' wire dicts, built in the converter's key order;
* a chunk of :class:`~debitura_async.models.IngestionJobRow` that
  :func:`~debitura_async._validate.plainly_valid` all vouches for gives their wire dicts
  (:func:`~debitura_async._fast.wire_of_row`: the check and ``_wire._row_dict`` in one call);
* a chunk of such dict rows whose keys are already in the converter's order (``caseId``,
  ``description``, ``type``, ``eventDate``, ``externalRef``: JSON written after the API's
  examples), with eventDate texts that read back as they are written (``...Z``), gives the
  input dicts themselves: they encode to those bytes already. The caller must encode them before
  the input can change them (the reader encodes every chunk at once);
* anything else gives None: the caller then goes row by row (the per-row fast path, then the slow
  path), so every message and every verdict stays the per-row path's.

Each wire dict is exactly the one :func:`~debitura_async._fast.wire_of_mapping` (a typed row:
``_wire._row_dict``) makes of that row (hypothesis-tested in ``tests/unit/test_fast_chunk.py``),
so bodies and Idempotency-Keys do not change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, Final

import orjson

from ._fast import KNOWN_IDS, MAX_DESCRIPTION_CHARS, WIRE_KEYS, wire_of_row
from .models import IngestionJobRow, PartnerIngestEventType

__all__ = ["dates_as_sent", "wires_of_chunk"]

_CANONICAL_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch
_STR: Final = frozenset({str})
_ZERO_TYPES: Final = frozenset({int, PartnerIngestEventType})
_WIRE_SHAPES: Final = frozenset(
    {
        ("caseId", "description", "type"),
        ("caseId", "description", "type", "eventDate"),
        ("caseId", "description", "type", "externalRef"),
        ("caseId", "description", "type", "eventDate", "externalRef"),
    }
)
"""Keys in the converter's order: a plain row with these keys may be sent as it is."""
_TZ = attrgetter("tzinfo")
_UTC_ID: Final = frozenset({id(UTC)})
"""The tzinfo must be the very ``UTC`` object (as in the per-row path), not just equal to it."""


def wires_of_chunk(
    items: Sequence[Any], latest: datetime, known_ids: set[str] | None = None
) -> list[Any] | None:
    """Each item's wire form (its wire dict, or the typed row itself), or None when the chunk
    is not uniform and plainly valid: then ask the per-row paths, item by item.

    ``known_ids`` is :func:`~debitura_async._fast.wire_of_mapping`'s cache of canonical case-id
    texts (the same set may serve both).
    """
    if not items:
        return []
    kinds = set(map(type, items))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is IngestionJobRow:
        typed = list(map(wire_of_row, items, repeat(latest)))
        return None if None in typed else typed
    if kind is not dict:
        return None
    shapes = set(map(tuple, items))
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    if not WIRE_KEYS.issuperset(shape) or "caseId" not in shape or "description" not in shape:
        return None
    case_ids = list(map(itemgetter("caseId"), items))
    descriptions = list(map(itemgetter("description"), items))
    if not (_case_ids_ok(case_ids, known_ids) and _texts_ok(descriptions, blank_ok=False)):
        return None
    if "type" in shape:
        types = list(map(itemgetter("type"), items))
        if not _ZERO_TYPES.issuperset(map(type, types)) or any(types):
            return None
    dates: list[Any] | None = None
    written = False  # the eventDate texts are the bytes their dates are written as
    if "eventDate" in shape:
        texts = list(map(itemgetter("eventDate"), items))
        if _STR.issuperset(map(type, texts)):
            dates = dates_as_sent(texts, latest)
            written = dates is texts
        else:
            dates = _dates(texts, latest)
        if dates is None:
            return None
    refs: list[str] | None = None
    if "externalRef" in shape:
        refs = list(map(itemgetter("externalRef"), items))
        if not _texts_ok(refs, blank_ok=True):
            return None
    if shape in _WIRE_SHAPES and (dates is None or written):
        # Already the wire dicts, key for key and byte for byte (eventDate texts written as
        # the converter writes their dates): the items themselves, to be encoded at once.
        return list(items)
    if written:  # new wire dicts hold the per-row path's values: datetimes
        dates = _dates(texts, latest)
    return _build(case_ids, descriptions, dates, refs)


def _build(
    case_ids: list[str],
    descriptions: list[str],
    dates: list[Any] | None,
    refs: list[str] | None,
) -> list[Any]:
    """The wire dicts, in the converter's key order (dict displays: the quickest way to a dict);
    ``dates`` holds datetimes in UTC, or texts written as orjson writes their dates."""
    if dates is None and refs is None:
        return [
            {"caseId": c, "description": d, "type": 0}
            for c, d in zip(case_ids, descriptions, strict=True)
        ]
    if refs is None:
        return [
            {"caseId": c, "description": d, "type": 0, "eventDate": e}
            for c, d, e in zip(case_ids, descriptions, dates, strict=True)  # type: ignore[arg-type]
        ]
    if dates is None:
        return [
            {"caseId": c, "description": d, "type": 0, "externalRef": r}
            for c, d, r in zip(case_ids, descriptions, refs, strict=True)
        ]
    return [
        {"caseId": c, "description": d, "type": 0, "eventDate": e, "externalRef": r}
        for c, d, e, r in zip(case_ids, descriptions, dates, refs, strict=True)
    ]


def _case_ids_ok(case_ids: list[Any], known_ids: set[str] | None) -> bool:
    """All canonical case-id texts (other spellings: the per-row path reads them)."""
    return _STR.issuperset(map(type, case_ids)) and _canonical_ids(case_ids, known_ids)


def _canonical_ids(case_ids: list[str], known_ids: set[str] | None) -> bool:
    """All canonical case ids, these texts (remembered in ``known_ids``)."""
    unique = set(case_ids)
    if known_ids is not None:
        unique = unique.difference(known_ids)  # looks up each of ours (-= would walk theirs)
    for case_id in unique:
        if _CANONICAL_UUID(case_id) is None:
            return False
    if known_ids is not None and unique:
        if len(known_ids) + len(unique) > KNOWN_IDS:
            known_ids.clear()
        if len(unique) <= KNOWN_IDS:
            known_ids.update(unique)
    return True


def _texts_ok(texts: list[Any], *, blank_ok: bool) -> bool:
    """All text, UTF-8-encodable; descriptions also not blank and within the limit."""
    if not _STR.issuperset(map(type, texts)):
        return False
    if not blank_ok and (
        min(map(len, texts)) < 1
        or max(map(len, texts)) > MAX_DESCRIPTION_CHARS
        or any(map(str.isspace, texts))
    ):
        return False
    return _encodable(texts)


def _encodable(texts: list[str]) -> bool:
    """All UTF-8-encodable (no lone surrogates)."""
    if all(map(str.isascii, texts)):
        return True
    try:
        "".join(texts).encode("utf-8")  # a lone surrogate stays lone when joined
    except UnicodeEncodeError:
        return False
    return True


def _dates(values: list[Any], latest: datetime) -> list[datetime] | None:
    """eventDate texts (or datetimes) all in UTC and not later than ``latest``, parsed."""
    kinds = set(map(type, values))
    if kinds == _STR:
        unique = set(values)
        try:
            if len(unique) * 2 > len(values):
                dates = list(map(datetime.fromisoformat, values))
            else:  # the rows of a chunk often share their eventDate text: parse each text once
                parsed = dict(zip(unique, map(datetime.fromisoformat, unique), strict=True))
                dates = list(map(parsed.__getitem__, values))
        except ValueError:
            return None
    elif kinds == {datetime}:
        dates = values
    else:
        return None
    if set(map(id, map(_TZ, dates))) != _UTC_ID or max(dates) > latest:
        return None
    return dates


def dates_as_sent(texts: list[str], latest: datetime) -> list[Any] | None:
    """eventDate texts all in UTC and not later than ``latest``: the texts themselves when the
    converter writes their dates so, else the dates; None when not so."""
    unique = set(texts)
    if len(unique) * 2 > len(texts):
        dates = _dates(texts, latest)
        if dates is not None and orjson.dumps(texts) == orjson.dumps(
            dates, option=orjson.OPT_UTC_Z
        ):
            return texts
        return dates
    ordered = list(unique)  # the rows of a chunk often share their eventDate text
    parsed = _dates(ordered, latest)
    if parsed is None:
        return None
    if orjson.dumps(ordered) == orjson.dumps(parsed, option=orjson.OPT_UTC_Z):
        return texts  # each one the bytes its date is written as
    by_text = dict(zip(ordered, parsed, strict=True))
    return list(map(by_text.__getitem__, texts))
