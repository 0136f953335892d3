"""Stream rows into request bodies of at most ``max_rows`` rows (and optionally ``max_bytes``).

Pure: no I/O. A batch keeps its rows until it is accepted and encodes its body once, in one
orjson call for the whole batch (a per-row ``dumps`` costs several times more: see
``benchmarks/`` P3). A row is an :class:`IngestionJobRow` or its wire dict
(:data:`~debitura_async._wire.WireRow`, what the pipeline's fast path makes straight from the
input); both encode to the same bytes. A batch can be split (the server-side bisection of a
refused batch) by selecting rows; the parts encode their own bodies. With a byte cap, each row's
encoded size is measured as it is added, so that a batch is cut before it would outgrow the cap.

Rows can also come already encoded, a group at a time (:meth:`Batcher.add_encoded`: the
pipeline's chunk fast path encodes a chunk of rows while they are in the CPU's caches, and its
wire dicts die young instead of living, GC-tracked, until the batch is accepted). A compact JSON
array is its items' JSON joined by commas, so the body is the same bytes either way.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Hashable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, Final

import attrs
import orjson
import xxhash

from . import _wire
from ._validate import MAX_BATCH_ROWS
from .models import IngestionJobRow

__all__ = [
    "RUN_ID_PREFIX",
    "Batch",
    "BatchRow",
    "Batcher",
    "batches",
    "encode_group",
    "encode_row",
    "new_run_id",
]

RUN_ID_PREFIX: Final = "x3."
"""Marks a run id whose Idempotency-Keys hash the body with XXH3-128. A run id without it (any
id a caller chose, and every id debitura-async 0.1.0 made, 16 hex digits) keeps SHA-256, so a
run resumed by a newer version sends the keys it sent before."""

_ENVELOPE = len(b'{"rows":[]}')
_DICTS: Final = frozenset({dict})

BatchRow = IngestionJobRow | _wire.WireRow
"""What a batch holds per row: the row, or its wire dict."""


def new_run_id() -> str:
    """A fresh run id: :data:`RUN_ID_PREFIX` and 16 random hex digits."""
    return RUN_ID_PREFIX + uuid.uuid4().hex[:16]


def encode_row(row: BatchRow) -> bytes:
    """One row's JSON, as it appears inside the ``rows`` array."""
    return _wire.encode_row(row)


def encode_group(rows: Sequence[BatchRow]) -> bytes:
    """Rows as a JSON array (one orjson call): what :meth:`Batcher.add_encoded` takes."""
    return _wire.encode_array(rows)


_HEAD: Final = b'{"rows":['
_TAIL: Final = b"]}"


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
    encoded: bytes | None = attrs.field(default=None, repr=False)
    """The body, when the rows were encoded as they were batched (:meth:`Batcher.add_encoded`).
    ``rows`` may then be empty: :meth:`wire_rows` reads them back from it (for a split, which
    re-encodes its parts)."""

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def row_keys(self) -> tuple[Hashable, ...]:
        """Each row's key: the caller's, or the row's ``externalRef``."""
        if self.keys is not None:
            return self.keys
        rows = self.wire_rows()
        if _DICTS.issuperset(map(type, rows)):
            return tuple(map(dict.get, rows, repeat("externalRef")))  # type: ignore[arg-type]
        return tuple([r.get("externalRef") if type(r) is dict else default_key(r) for r in rows])

    @property
    def first_position(self) -> int:
        return self.positions[0]

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    def wire_rows(self) -> tuple[BatchRow, ...]:
        """The rows; for a batch encoded without its rows, read back from its JSON (which
        encodes to the same bytes again: orjson's output is canonical)."""
        if self.rows or self.encoded is None:
            return self.rows
        return tuple(orjson.loads(self.encoded)["rows"])

    @functools.cached_property
    def _body(self) -> bytes:
        if self.encoded is not None:
            return self.encoded
        return _wire.encode_rows(self.rows)

    def body(self) -> bytes:
        """The ``POST /ingestion-jobs`` body (encoded once, then cached)."""
        return self._body

    def digest(self, *, fast: bool = False) -> str:
        """SHA-256 of the body (``fast``: XXH3-128, ~50x cheaper; not cryptographic, which a
        key naming a body to its own sender needs not be): the same rows give the same digest
        in every run."""
        if fast:
            return xxhash.xxh3_128_hexdigest(self._body)
        return hashlib.sha256(self._body).hexdigest()

    def idempotency_key(self, run_id: str) -> str:
        """Derived from the run, the batch and its content, so a retry or resume reuses it: the
        body's digest is XXH3-128 for a run id made by :func:`new_run_id`, else SHA-256."""
        digest = self.digest(fast=run_id.startswith(RUN_ID_PREFIX))
        return f"dba-{run_id}-{self.index}-{digest[:24]}"

    def without(self, local_indexes: Iterable[int]) -> Batch:
        """This batch minus the rows at these positions *within the batch*."""
        drop = set(local_indexes)
        return self.select([i for i in range(len(self)) if i not in drop])

    def select(self, local_indexes: Sequence[int]) -> Batch:
        keys = self.keys
        rows = self.wire_rows()
        return Batch(
            index=self.index,
            positions=tuple(self.positions[i] for i in local_indexes),
            rows=tuple(rows[i] for i in local_indexes),
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
        self._parts: list[bytes] = []
        """The batch's encoded groups of rows so far (see :meth:`add_encoded`)."""
        self._plain = 0
        """Where the rows added one by one since the last encoded group start, in ``_rows``."""
        self._complete = True
        """Every row of the batch is in ``_rows`` (no group came without its rows)."""

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
            if self._positions and self._size + size > self.max_bytes:
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
        if len(self._positions) >= self.max_rows:
            if out is not None:  # pragma: no cover - max_rows >= 1 and a cut just happened
                raise AssertionError("two batches completed by one row")
            out = self._cut()
        return out

    @property
    def room(self) -> int:
        """How many more rows the batch being filled takes (by count; a byte cap aside)."""
        return self.max_rows - len(self._positions)

    def add_encoded(
        self,
        first_position: int,
        count: int,
        encoded: bytes,
        keys: Sequence[Hashable],
        rows: Sequence[BatchRow] | None = None,
    ) -> Batch | None:
        """Add ``count`` rows at consecutive positions, already encoded: ``encoded`` is their
        JSON array (:func:`encode_group`), ``keys`` their keys, ``rows`` the rows
        themselves if they are to be kept (else a split reads them back from the JSON). At most
        :attr:`room` rows, and no byte cap. Returns the batch if they complete it."""
        if self.max_bytes is not None or not 0 < count <= self.room or len(keys) != count:
            raise ValueError(f"cannot add {count} encoded rows here (room {self.room})")
        self._encode_plain()
        self._parts.append(encoded)
        self._positions.extend(range(first_position, first_position + count))
        if self._keys is None:
            self._keys = [default_key(r) for r in self._rows]
        self._keys.extend(keys)
        if rows is None:
            self._complete = False
        elif self._complete:
            self._rows.extend(rows)
        self._plain = len(self._rows)
        return self._cut() if len(self._positions) >= self.max_rows else None

    def _encode_plain(self) -> None:
        """Encode the rows added one by one since the last encoded group, as a group."""
        if len(self._rows) > self._plain:
            self._parts.append(encode_group(self._rows[self._plain :]))
            self._plain = len(self._rows)

    def flush(self) -> Batch | None:
        """The last, partial batch (None when nothing is pending)."""
        return self._cut() if self._positions else None

    def _cut(self) -> Batch:
        encoded = None
        if self._parts:
            self._encode_plain()
            # One copy: each group's array without its brackets, between commas.
            pieces: list[bytes | memoryview] = [_HEAD]
            for part in self._parts:
                pieces += (memoryview(part)[1:-1], b",")
            pieces[-1] = _TAIL
            encoded = b"".join(pieces)
        batch = Batch(
            index=self._next_index,
            positions=tuple(self._positions),
            rows=tuple(self._rows) if self._complete else (),
            keys=None if self._keys is None else tuple(self._keys),
            encoded=encoded,
        )
        self._next_index += 1
        self._positions = []
        self._rows = []
        self._keys = None
        self._size = _ENVELOPE
        self._parts = []
        self._plain = 0
        self._complete = True
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
