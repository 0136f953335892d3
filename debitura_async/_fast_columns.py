"""The pipeline's fast path for rows a CSV reader hands over as columns. Pure: no I/O, no clock.

:func:`encode_columns` vouches for a :class:`~debitura_async._input_columns.ColumnChunk` as a
whole or not at all, as :func:`~debitura_async._fast_chunk.wires_of_chunk` does for the row
dicts the reader would have yielded (:meth:`ColumnChunk.rows`), and gives the JSON array those
rows encode to (:func:`~debitura_async._batching.encode_group` of ``wires_of_chunk``'s wire
dicts), byte for byte (hypothesis-tested in ``tests/unit/test_fast_columns.py``), without
making those row dicts:

* the checks run column by column, on text (a CSV cell is always a ``str``; a chunk of ASCII
  text needs no encodability check);
* eventDate texts that read as UTC date-times are sent as written when the converter writes
  their dates so (``2026-02-01T09:30:00Z``), else as the converter writes them;
* a chunk whose every cell is JSON as it stands (:attr:`ColumnChunk.plain`: ASCII, no quote,
  backslash or control character) is written by joining its cells between the constant parts
  of each row's JSON, one ``str.join`` for the whole chunk; any other chunk is made the wire
  dicts ``wires_of_chunk`` would make (in the converter's key order) and encoded by orjson.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import orjson

from ._batching import encode_group
from ._fast import MAX_DESCRIPTION_CHARS
from ._fast_chunk import _build, _canonical_ids, _encodable, dates_as_sent
from ._input_columns import ColumnChunk

__all__ = ["encode_columns"]

_SEPARATOR: Final = '","'


def encode_columns(
    chunk: ColumnChunk, latest: datetime, known_ids: set[str] | None = None
) -> bytes | None:
    """The rows' JSON array, or None when they are not all plainly valid (then ask the
    per-row paths about :meth:`ColumnChunk.rows`, item by item).

    ``known_ids`` is the pipeline's cache of canonical case-id texts (see
    :func:`~debitura_async._fast.wire_of_mapping`).
    """
    case_ids, descriptions, refs = chunk.case_ids, chunk.descriptions, chunk.external_refs
    if not case_ids:
        return b"[]"
    if not _canonical_ids(case_ids, known_ids):
        return None
    if (
        "" in descriptions
        or max(map(len, descriptions)) > MAX_DESCRIPTION_CHARS
        or any(map(str.isspace, descriptions))
    ):
        return None
    if not chunk.ascii and not (_encodable(descriptions) and (refs is None or _encodable(refs))):
        return None
    dates: list[Any] | None = None
    if chunk.event_dates is not None:
        dates = dates_as_sent(chunk.event_dates, latest)
        if dates is None:
            return None
    if not chunk.plain:
        return encode_group(_build(case_ids, descriptions, dates, refs))
    if dates is not None and type(dates[0]) is not str:
        # As the converter writes them (no quote inside): the texts to join.
        dates = orjson.dumps(dates, option=orjson.OPT_UTC_Z).decode()[2:-2].split(_SEPARATOR)
    return _joined(case_ids, descriptions, dates, refs)


def _joined(
    case_ids: list[str],
    descriptions: list[str],
    dates: list[str] | None,
    refs: list[str] | None,
) -> bytes:
    """The JSON array of rows whose cells are JSON string contents as they stand: each row's
    ``{"caseId":"…","description":"…","type":0,…}`` as orjson writes its wire dict, the cells
    put between the constant parts by slice assignments, then one join."""
    values = [case_ids, descriptions]
    connectors = ['{"caseId":"', '","description":"']
    tail = '","type":0'
    for name, column in (("eventDate", dates), ("externalRef", refs)):
        if column is not None:
            values.append(column)
            connectors.append(f'{tail},"{name}":"')
            tail = '"'
    end = tail + "}"
    count, width = len(case_ids), 2 * len(values)
    pieces = [f"{end},{connectors[0]}"] * (width * count)
    pieces[0] = "[" + connectors[0]
    for i, column in enumerate(values):
        pieces[2 * i + 1 :: width] = column
        if i:
            pieces[2 * i :: width] = [connectors[i]] * count
    pieces.append(end + "]")
    return "".join(pieces).encode()
