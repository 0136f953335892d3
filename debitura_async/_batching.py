"""Stream rows into request bodies of at most ``max_rows`` rows (and optionally ``max_bytes``).

Pure: no I/O. A batch keeps its rows until it is accepted and encodes its body once, in one
orjson call for the whole batch (a per-row ``dumps`` costs several times more: see
``benchmarks/`` P3). A row is an :class:`IngestionJobRow` or its wire dict
(:data:`~debitura_async._wire.WireRow`, what the pipeline's fast path makes straight from the
input); both encode to the same bytes. A batch can be split (the server-side bisection of a
refused batch) by selecting rows; the parts encode their own bodies. With a byte cap, each row's
encoded size is measured as it is added, so that a batch is cut before it would outgrow the cap.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Hashable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, Final

import attrs

from . import _wire
from ._validate import MAX_BATCH_ROWS
from .models import IngestionJobRow

__all__ = ["Batch", "BatchRow", "Batcher", "batches", "encode_row"]

_ENVELOPE = len(b'{"rows":[]}')
_DICTS: Final = frozenset({dict})

BatchRow = IngestionJobRow | _wire.WireRow
"""What a batch holds per row: the row, or its wire dict."""


def encode_row(row: BatchRow) -> bytes:
    """One row's JSON, as it appears inside the ``rows`` array."""
    return _wire.encode_row(row)


def default_key(row: BatchRow) -> Hashable:
    """A row's key when the caller chose none: its externalRef."""
    if type(row) is dict:
        key: Hashable = row.get("externalRef")
        return key
    return row.external_ref  # type: ignore[union-attr]


@attrs.frozen
class Batch:
    """Rows ready to send, with their positions in the input; the body is encoded on demand."""

    index: int
    positions: tuple[int, ...]
    rows: tuple[BatchRow, ...] = attrs.field(repr=False)
    keys: tuple[Hashable, ...] | None = attrs.field(default=None, repr=False)
    """Caller-chosen row keys (the pipeline's ``row_key``); None: each row's externalRef."""

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def row_keys(self) -> tuple[Hashable, ...]:
        """Each row's key: the caller's, or the row's ``externalRef``."""
        if self.keys is not None:
            return self.keys
        rows = self.rows
        if _DICTS.issuperset(map(type, rows)):
            return tuple(map(dict.get, rows, repeat("externalRef")))  # type: ignore[arg-type]
        return tuple([r.get("externalRef") if type(r) is dict else default_key(r) for r in rows])

    @property
    def first_position(self) -> int:
        return self.positions[0]

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    @functools.cached_property
    def _body(self) -> bytes:
        return _wire.encode_rows(self.rows)

    def body(self) -> bytes:
        """The ``POST /ingestion-jobs`` body (encoded once, then cached)."""
        return self._body

    def digest(self) -> str:
        """SHA-256 of the body: the same rows give the same digest in every run."""
        return hashlib.sha256(self._body).hexdigest()

    def idempotency_key(self, run_id: str) -> str:
        """Derived from the run, the batch and its content, so a retry or resume reuses it."""
        return f"dba-{run_id}-{self.index}-{self.digest()[:24]}"

    def without(self, local_indexes: Iterable[int]) -> Batch:
        """This batch minus the rows at these positions *within the batch*."""
        drop = set(local_indexes)
        return self.select([i for i in range(len(self)) if i not in drop])

    def select(self, local_indexes: Sequence[int]) -> Batch:
        keys = self.keys
        return Batch(
            index=self.index,
            positions=tuple(self.positions[i] for i in local_indexes),
            rows=tuple(self.rows[i] for i in local_indexes),
            keys=None if keys is None else tuple(keys[i] for i in local_indexes),
        )

    def halves(self) -> tuple[Batch, Batch]:
        mid = len(self) // 2
        return self.select(range(mid)), self.select(range(mid, len(self)))

    def without_rows(self) -> Batch:
        """The same batch keeping only its positions (for an accepted job: frees the rows)."""
        return Batch(index=self.index, positions=self.positions, rows=(), keys=self.row_keys)


_NO_KEY: Any = object()


class Batcher:
    """Accumulates rows; :meth:`add` returns a full :class:`Batch` whenever one is complete.

    ``max_bytes`` caps the body size (for servers with a request size limit); a single row larger
    than the cap still goes out alone, and the server decides.
    """

    def __init__(self, max_rows: int = MAX_BATCH_ROWS, *, max_bytes: int | None = None) -> None:
        if not 1 <= max_rows <= MAX_BATCH_ROWS:
            raise ValueError(f"batch size must be 1..{MAX_BATCH_ROWS}, got {max_rows}")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._next_index = 0
        self._positions: list[int] = []
        self._rows: list[BatchRow] = []
        self._keys: list[Hashable] | None = None
        self._size = _ENVELOPE

    @property
    def pending(self) -> tuple[int, ...]:
        """Positions of rows added but not yet handed out in a batch."""
        return tuple(self._positions)

    def add(self, position: int, row: BatchRow, key: Hashable = _NO_KEY) -> Batch | None:
        """Add a row or its wire dict (with a caller-chosen ``key``, if any); returns a batch
        when one is full."""
        out: Batch | None = None
        if self.max_bytes is not None:
            size = len(_wire.encode_row(row)) + 1  # the row and its comma
            if self._rows and self._size + size > self.max_bytes:
                out = self._cut()
            self._size += size
        self._positions.append(position)
        self._rows.append(row)
        if key is not _NO_KEY:
            if self._keys is None:
                self._keys = [default_key(r) for r in self._rows[:-1]]
            self._keys.append(key)
        elif self._keys is not None:
            self._keys.append(default_key(row))
        if len(self._rows) >= self.max_rows:
            if out is not None:  # pragma: no cover - max_rows >= 1 and a cut just happened
                raise AssertionError("two batches completed by one row")
            out = self._cut()
        return out

    @property
    def room(self) -> int:
        """How many more rows the batch being filled takes (by count; a byte cap aside)."""
        return self.max_rows - len(self._rows)

    def extend(
        self, first_position: int, rows: Sequence[BatchRow], keys: Sequence[Hashable] | None = None
    ) -> list[Batch]:
        """Add rows at consecutive positions from ``first_position`` (with their caller-chosen
        ``keys``, if any); returns the batches they complete. The same batches as :meth:`add`
        row by row (a byte cap is measured row by row, as there)."""
        if self.max_bytes is not None or (keys is None and self._keys is not None):
            out = []
            for i, row in enumerate(rows):
                batch = self.add(first_position + i, row, _NO_KEY if keys is None else keys[i])
                if batch is not None:
                    out.append(batch)
            return out
        if keys is not None and self._keys is None:
            self._keys = [default_key(r) for r in self._rows]
        done: list[Batch] = []
        start, count = 0, len(rows)
        while start < count:
            end = min(count, start + self.max_rows - len(self._rows))
            self._positions.extend(range(first_position + start, first_position + end))
            self._rows.extend(rows[start:end])
            if self._keys is not None and keys is not None:
                self._keys.extend(keys[start:end])
            if len(self._rows) >= self.max_rows:
                done.append(self._cut())
                if keys is not None and end < count:
                    self._keys = []
            start = end
        return done

    def flush(self) -> Batch | None:
        """The last, partial batch (None when nothing is pending)."""
        return self._cut() if self._rows else None

    def _cut(self) -> Batch:
        batch = Batch(
            index=self._next_index,
            positions=tuple(self._positions),
            rows=tuple(self._rows),
            keys=None if self._keys is None else tuple(self._keys),
        )
        self._next_index += 1
        self._positions = []
        self._rows = []
        self._keys = None
        self._size = _ENVELOPE
        return batch


def batches(
    rows: Iterable[tuple[int, BatchRow]], max_rows: int = MAX_BATCH_ROWS
) -> Iterator[Batch]:
    """Convenience: batch an iterable of ``(position, row)`` pairs."""
    batcher = Batcher(max_rows)
    for position, row in rows:
        batch = batcher.add(position, row)
        if batch is not None:
            yield batch
    last = batcher.flush()
    if last is not None:
        yield last
