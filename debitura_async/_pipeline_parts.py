"""Small parts of the ingestion pipeline: the results buffer, job slots, input iteration.

Kept apart from :mod:`debitura_async.ingest`, which drives them.
"""

from __future__ import annotations

import asyncio
import collections
import types
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import attrs

from .errors import DebituraError, RateLimitError, RowProblem
from .models import InvalidRow, JobResult

__all__: list[str] = []

T = TypeVar("T")


async def _critical(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to its end even if this task is cancelled meanwhile (then re-raise the
    cancellation): for journal writes that must not be lost once a job exists."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            if not task.done():
                cancelled = True
                continue
            result = task.result()
            cancelled = True
        break
    if cancelled:
        raise asyncio.CancelledError
    return result


def _now() -> datetime:
    return datetime.now(UTC)


def _keyed(result: JobResult, key: Any) -> JobResult:
    """A one-row REJECTED result, carrying its row's key."""
    if key is None:
        return result
    row = attrs.evolve(result.rejected_rows[0], key=key)
    return attrs.evolve(result, rejected_rows=(row,), row_keys=(key,))


def _problems_of(item: InvalidRow, position: int) -> list[RowProblem]:
    """An input adapter's reasons as structured problems at this row's position."""
    if item.details:
        return [attrs.evolve(p, index=position) for p in item.details]
    out = [RowProblem(position, "row", text) for text in item.problems]
    return out or [RowProblem(position, "row", "could not be read")]


class _ResultQueue:
    """The bounded results buffer between the pipeline and its consumer.

    Unlike a memory object stream, a ``put`` interrupted by cancellation has certainly not
    delivered its item (so the pipeline can hand it out later), and a consumer that leaves makes
    every ``put`` return at once.
    """

    def __init__(self, bound: int) -> None:
        self._items: collections.deque[JobResult] = collections.deque()
        self._bound = max(1, bound)
        self._closed = False
        self._gone = False
        self._changed = asyncio.Event()

    async def put(self, item: JobResult) -> None:
        while not self._gone and len(self._items) >= self._bound:
            self._changed.clear()
            await self._changed.wait()
        if not self._gone:
            self._items.append(item)
            self._changed.set()

    async def get(self) -> JobResult:
        while not self._items:
            if self._closed or self._gone:
                raise anyio.EndOfStream
            self._changed.clear()
            await self._changed.wait()
        item = self._items.popleft()
        self._changed.set()
        return item

    def close(self) -> None:
        """No more items will come (those buffered are still handed out)."""
        self._closed = True
        self._changed.set()

    def abandon(self) -> None:
        """The consumer left: drop what is buffered, refuse nothing, wait for nothing."""
        self._gone = True
        self._items.clear()
        self._changed.set()


class _Slot:
    """One job slot, shared by the parts of a batch the server made us split."""

    __slots__ = ("holders",)

    def __init__(self) -> None:
        self.holders = 1


class _iterate:
    """Iterate sync or async input without a per-row async generator; always close it."""

    def __init__(self, rows: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._rows = rows
        self._sync: Iterator[Any] = iter(())
        self._async: AsyncIterator[Any] | None = None

    async def __aenter__(self) -> tuple[Iterator[Any], AsyncIterator[Any] | None]:
        if isinstance(self._rows, AsyncIterable):
            self._async = aiter(self._rows)
        else:
            self._sync = iter(self._rows)
        return self._sync, self._async

    async def __aexit__(self, *exc: object) -> None:
        if isinstance(self._sync, types.GeneratorType):
            self._sync.close()
        if self._async is not None:
            aclose = getattr(self._async, "aclose", None)
            if aclose is not None:
                await aclose()


class _SendGate:
    """When the pipeline stops sending: after ``max_failed`` batches in a row whose POST failed
    even after retries (a dead server), or at once when the server asks for a longer wait than
    the client sits out (``max_retry_after``: a spent daily limit)."""

    def __init__(self, max_failed: int, max_retry_after: float | None) -> None:
        self._max_failed = max_failed
        self._max_retry_after = max_retry_after
        self._failures = 0
        self.stopped: DebituraError | None = None
        """Set once sending stopped: every later batch is UNRESOLVED with it, unsent."""

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self, exc: DebituraError) -> str | None:
        """Count a failed POST; returns the reason to stop the whole run now, if any."""
        if exc is not self.stopped:
            self._failures += 1
            if self._failures >= self._max_failed:
                self.stopped = DebituraError(
                    f"not sent: the last {self._failures} batches failed even "
                    f"after retries (last error: {exc})"
                )
        return self.too_long_to_wait(exc)

    def too_long_to_wait(self, exc: BaseException) -> str | None:
        wait, limit = getattr(exc, "retry_after", None), self._max_retry_after
        if not isinstance(exc, RateLimitError) or wait is None or limit is None or wait <= limit:
            return None
        return f"rate limited: the server asks to wait {wait:.0f} s"
