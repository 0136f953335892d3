"""The ingestion's reading loop: input items -> checked rows -> batches, in input order.

The pipeline (:class:`~debitura_async.ingest.Ingestion`) owns the ledger, the batcher and the
results; :class:`RowReader` reads the input, checks each item and hands out full batches
(``dispatch``) and refused rows (``reject``), through callbacks the pipeline gives it.

* **A sync iterable** is read in chunks: at most :data:`CHUNK` items, never past the end of the
  batch being filled (so a full server still stops the reading where it did). A chunk that
  :func:`~debitura_async._fast_chunk.wires_of_chunk` vouches for as a whole is encoded and
  batched in one go (:meth:`~debitura_async._batching.Batcher.add_encoded`); any other chunk is
  handled item by item, as an async iterable's items are. Rows read before an input error are
  handled before the error is raised, as when they were read one by one. With
  ``read_ahead=False`` (``on_invalid="raise"`` on an iterator, where a refused row stops the run)
  the input is read one item at a time, so nothing is read past that row.
* **Item by item**: a plainly valid dict becomes its wire dict (:func:`wire_of_mapping`), a
  plainly valid typed row stays as it is; anything else goes down the slow path
  (:func:`check_item`), which decides and words the problems.
* **A CSV reader** (:class:`~debitura_async._input_columns.CsvItems`, when there is no byte cap
  and no ``row_key``) hands over its blocks of plain lines as columns: up to
  :data:`COLUMN_CHUNK` rows at a time, never past the end of the batch being filled, validated
  and encoded column by column (:func:`~debitura_async._fast_columns.encode_columns`), or else
  as the row dicts the reader yields, item by item. Its other items come in chunks, as above.
* The loop yields to the event loop (and reports progress) after each chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import islice, repeat
from typing import Any, Final

import orjson

from ._batching import Batch, Batcher, BatchRow, encode_group
from ._fast import wire_of_mapping
from ._fast_chunk import wires_of_chunk
from ._fast_columns import encode_columns
from ._input_columns import ColumnChunk, CsvItems
from ._ledger import Ledger
from ._pipeline_parts import _problems_of
from ._validate import item_problems, plainly_valid
from .errors import RowProblem
from .models import IngestionJobRow, InvalidRow, UnresolvedCaseRow

__all__ = ["CHUNK", "COLUMN_CHUNK", "RowReader", "check_item", "key_of", "precheck"]

CHUNK: Final = 256
"""Items read from a sync iterable in one go (and between two yields to the event loop)."""
COLUMN_CHUNK: Final = 1024
"""Rows of a CSV reader's block of plain lines taken in one go (they cost a fraction of an
item's time each: a block of 64 KiB, a few hundred rows, goes whole when the batch has room)."""

_END: Any = object()

Check = Callable[[object, int], tuple[IngestionJobRow | None, list[RowProblem]]]
Reject = Callable[[object, IngestionJobRow | None, int, list[RowProblem]], Awaitable[bool]]


def check_item(
    item: object, position: int, *, now: datetime, skew: timedelta
) -> tuple[IngestionJobRow | None, list[RowProblem]]:
    """The slow path: the row an input item makes, or every problem it has, in words."""
    if isinstance(item, InvalidRow):
        return None, _problems_of(item, position)
    if isinstance(item, UnresolvedCaseRow):
        unresolved = f"{item.reference!r} was not resolved to a case id"
        return None, [RowProblem(position, "caseReference", unresolved)]
    if not isinstance(item, IngestionJobRow | Mapping):
        expected = f"expected an IngestionJobRow or a mapping, got {type(item).__name__}"
        return None, [RowProblem(position, "row", expected)]
    return item_problems(item, position, now=now, skew=skew)


async def precheck(rows: Sequence[Any], check: Check) -> list[RowProblem]:
    """Every problem of a whole sequence, before anything is sent (``on_invalid="raise"``)."""
    problems: list[RowProblem] = []
    for position, item in enumerate(rows):
        problems += check(item, position)[1]
        if position % 1024 == 1023:
            await asyncio.sleep(0)
    return problems


def key_of(item: Any, row: IngestionJobRow | None, row_key: Callable[[Any], Any] | None) -> Any:
    """A refused item's key in its result: the caller's ``row_key``, else its externalRef."""
    if row_key is not None:
        return row_key(item)
    if row is not None:
        return row.external_ref
    if isinstance(item, Mapping):
        return item.get("externalRef", item.get("external_ref"))
    return None


class RowReader:
    """Reads the input into the batcher; see the module's docstring."""

    def __init__(
        self,
        ledger: Ledger,
        batcher: Batcher,
        *,
        latest: datetime,
        row_key: Callable[[Any], Any] | None,
        check: Check,
        reject: Reject,
        dispatch: Callable[[Batch], Awaitable[None]],
        progress: Callable[[], None],
        read_ahead: bool = True,
    ) -> None:
        self._read_ahead = read_ahead
        self._ledger = ledger
        self._batcher = batcher
        self._latest = latest
        self._row_key = row_key
        self._check = check
        self._reject = reject
        self._dispatch = dispatch
        self._progress = progress
        self._known_ids: set[str] = set()
        self._position = -1

    async def read(self, sync_iter: Iterator[Any], async_iter: AsyncIterator[Any] | None) -> None:
        """Read everything (or until a refused row stops the run), then hand out the last
        partial batch."""
        if async_iter is None:
            done = await self._read_sync(sync_iter)
        else:
            done = await self._read_async(async_iter)
        if done:
            last = self._batcher.flush()
            if last is not None:
                await self._dispatch(last)

    async def _read_async(self, async_iter: AsyncIterator[Any]) -> bool:
        while True:
            if self._position & (CHUNK - 1) == CHUNK - 1:
                self._progress()
            item = await anext(async_iter, _END)
            if item is _END:
                return True
            if not await self._one(item):
                return False

    async def _read_sync(self, sync_iter: Iterator[Any]) -> bool:
        batcher = self._batcher
        if not self._read_ahead:  # one by one: nothing is read past the row that stops the run
            while True:
                if self._position & (CHUNK - 1) == CHUNK - 1:
                    self._progress()
                    await asyncio.sleep(0)
                item = next(sync_iter, _END)
                if item is _END:
                    return True
                if not await self._one(item):
                    return False
        if type(sync_iter) is CsvItems and batcher.max_bytes is None and self._row_key is None:
            return await self._read_columns(sync_iter)
        while True:
            room = batcher.room if batcher.max_bytes is None else CHUNK
            chunk: list[Any] = []
            error: Exception | None = None
            try:
                chunk.extend(islice(sync_iter, min(CHUNK, room)))
            except Exception as exc:  # noqa: BLE001 - raised below, after the rows read before it
                error = exc
            if not chunk and error is None:
                return True
            if not await self._chunk(chunk):
                return False
            if error is not None:
                raise error
            self._progress()
            await asyncio.sleep(0)

    async def _read_columns(self, source: CsvItems) -> bool:
        """A CSV reader's items: its blocks of plain rows as columns (:meth:`_columns`), the
        rest in chunks, as any sync iterable's."""
        batcher = self._batcher
        while True:
            room = batcher.room
            taken = source.take(min(COLUMN_CHUNK, room), item_limit=min(CHUNK, room))
            if isinstance(taken, ColumnChunk):
                if not await self._columns(taken):
                    return False
            elif not taken:
                return True
            elif not await self._chunk(taken):
                return False
            self._progress()
            await asyncio.sleep(0)

    async def _columns(self, chunk: ColumnChunk) -> bool:
        """Rows as columns: validated, built and encoded column by column when all are plainly
        valid, else item by item (the very rows the reader yields), as :meth:`_chunk` does."""
        try:
            encoded = encode_columns(chunk, self._latest, self._known_ids)
        except Exception:  # noqa: BLE001 - the item-by-item path raises or words it at its row
            encoded = None
        if encoded is None:
            for item in chunk.rows():
                if not await self._one(item):
                    return False
            return True
        refs = chunk.external_refs
        keys: list[Any] = [None] * len(chunk) if refs is None else refs
        return await self._add_encoded(len(chunk), encoded, keys)

    async def _chunk(self, chunk: list[Any]) -> bool:
        """Handle a chunk: in one go when it is plainly valid as a whole, else item by item."""
        if not chunk:
            return True
        wires = None
        if self._batcher.max_bytes is None:  # with a byte cap every row is measured: one by one
            wires = wires_of_chunk(chunk, self._latest, self._known_ids)
        keys: list[Any] | None = None
        encoded = b""
        if wires is not None:
            try:
                keys = self._keys(chunk, wires)
                encoded = encode_group(wires)
            except Exception:  # noqa: BLE001 - the item-by-item path raises or words it at its row
                wires = None
        if wires is None or keys is None:
            for item in chunk:
                if not await self._one(item):
                    return False
            return True
        return await self._add_encoded(len(chunk), encoded, keys)

    async def _add_encoded(self, count: int, encoded: bytes, keys: list[Any]) -> bool:
        """Batch ``count`` plainly valid rows read next, encoded as ``encoded``."""
        first = self._position + 1
        self._position += count
        ledger = self._ledger
        ledger.read += count  # as row_read() and row_batched() would, once per row
        ledger.submitted += count
        # Wire dicts are not kept: a split reads its rows back from the body.
        batch = self._batcher.add_encoded(first, count, encoded, keys)
        if batch is not None:
            await self._dispatch(batch)
            self._progress()
        return True

    def _keys(self, chunk: list[Any], wires: list[dict[str, Any]]) -> list[Any]:
        """The rows' keys: the caller's ``row_key``, else each row's externalRef."""
        if self._row_key is not None:
            return list(map(self._row_key, chunk))
        return list(map(dict.get, wires, repeat("externalRef")))

    async def _one(self, item: Any) -> bool:
        """One item: batched, or refused (False when the refusal stops the run)."""
        self._position += 1
        position = self._position
        self._ledger.row_read()
        kind = type(item)
        wire: BatchRow | None = None
        row: IngestionJobRow | None = None
        problems: list[RowProblem] = []
        if kind is dict:
            wire = wire_of_mapping(item, self._latest, self._known_ids)
        elif kind is IngestionJobRow and plainly_valid(item, self._latest):
            wire = row = item
        if wire is None:
            row, problems = self._check(item, position)
            if row is not None and not problems:
                wire = row  # checked by the slow path: sent as it is
        batch = None
        if wire is not None:
            try:
                if self._row_key is None:
                    batch = self._batcher.add(position, wire)
                else:
                    batch = self._batcher.add(position, wire, self._row_key(item))
            except (orjson.JSONEncodeError, ValueError) as exc:
                problems = [RowProblem(position, "row", f"cannot be encoded as JSON: {exc}")]
        if wire is None or problems:
            return await self._reject(item, row, position, problems)
        self._ledger.row_batched()
        if batch is not None:
            await self._dispatch(batch)
            self._progress()
        return True
