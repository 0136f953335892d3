"""Stream rows into request bodies of at most ``max_rows`` rows (and optionally ``max_bytes``).

Pure: no I/O. Each row is encoded once, when it is added; a batch's body is the concatenation of
its rows' encodings, so its size is known before it is sent, and a batch can be split (for the
server-side bisection of a refused batch) without encoding anything again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import attrs

from . import _wire
from ._validate import MAX_BATCH_ROWS
from .models import IngestionJobRow

__all__ = ["Batch", "Batcher", "encode_row"]

_PREFIX = b'{"rows":['
_SUFFIX = b"]}"


def encode_row(row: IngestionJobRow) -> bytes:
    """One row's JSON, as it appears inside the ``rows`` array."""
    return _wire.encode_row(row)


@attrs.frozen
class Batch:
    """Rows ready to send: their input positions, their encodings, and the body they make."""

    index: int
    positions: tuple[int, ...]
    parts: tuple[bytes, ...] = attrs.field(repr=False)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def first_position(self) -> int:
        return self.positions[0]

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    def body(self) -> bytes:
        return _PREFIX + b",".join(self.parts) + _SUFFIX

    def digest(self) -> str:
        """A stable content hash: the same rows give the same digest in every run."""
        # The sha256 of every part followed by a newline, fed in two calls instead of two per
        # part (the same digest, a quarter of the time).
        h = hashlib.sha256(b"\n".join(self.parts))
        if self.parts:
            h.update(b"\n")
        return h.hexdigest()

    def idempotency_key(self, run_id: str) -> str:
        """Derived from the run, the batch and its content, so a retry or resume reuses it."""
        return f"dba-{run_id}-{self.index}-{self.digest()[:24]}"

    def without(self, local_indexes: Iterable[int]) -> Batch:
        """This batch minus the rows at these positions *within the batch*."""
        drop = set(local_indexes)
        keep = [i for i in range(len(self)) if i not in drop]
        return self.select(keep)

    def select(self, local_indexes: Sequence[int]) -> Batch:
        return Batch(
            index=self.index,
            positions=tuple(self.positions[i] for i in local_indexes),
            parts=tuple(self.parts[i] for i in local_indexes),
        )

    def halves(self) -> tuple[Batch, Batch]:
        mid = len(self) // 2
        return self.select(range(mid)), self.select(range(mid, len(self)))


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
        self._parts: list[bytes] = []
        self._size = len(_PREFIX) + len(_SUFFIX)

    @property
    def pending(self) -> tuple[int, ...]:
        """Positions of rows added but not yet handed out in a batch."""
        return tuple(self._positions)

    def add(self, position: int, row: IngestionJobRow) -> Batch | None:
        part = encode_row(row)
        out: Batch | None = None
        if (
            self.max_bytes is not None
            and self._parts
            and self._size + len(part) + 1 > self.max_bytes
        ):
            out = self._cut()
        self._positions.append(position)
        self._parts.append(part)
        self._size += len(part) + 1
        if len(self._parts) >= self.max_rows:
            if out is not None:  # pragma: no cover - max_rows >= 1 and a cut just happened
                raise AssertionError("two batches completed by one row")
            out = self._cut()
        return out

    def flush(self) -> Batch | None:
        """The last, partial batch (None when nothing is pending)."""
        return self._cut() if self._parts else None

    def _cut(self) -> Batch:
        batch = Batch(
            index=self._next_index, positions=tuple(self._positions), parts=tuple(self._parts)
        )
        self._next_index += 1
        self._positions = []
        self._parts = []
        self._size = len(_PREFIX) + len(_SUFFIX)
        return batch


def batches(
    rows: Iterable[tuple[int, IngestionJobRow]], max_rows: int = MAX_BATCH_ROWS
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
