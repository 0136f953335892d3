"""The concurrent ingestion pipeline: a thin driver over the ledger and the client's tracker.

Data flows one way::

    rows -> validate -> batch -> [job slot] -> POST (Idempotency-Key) -> tracker -> results

* **Input** is any sync or async iterable of :class:`IngestionJobRow` or mappings, read lazily
  (a sync one in chunks of at most 256 items, never past the batch being filled; one item at a
  time with ``on_invalid="raise"`` on an iterator): see :mod:`~debitura_async._reading`.
* **Backpressure.** A job slot (``max_jobs_in_flight``) is taken before a batch is sent and given
  back only once its result has been handed to the results stream, whose buffer is bounded; so a
  full server, a slow consumer or a spent request budget all stop the reading of input, and memory
  stays flat whatever the input's length.
* **State** lives in one pure :class:`~debitura_async._ledger.Ledger` (every batch's state
  machine and the run's counts); the driver only moves batches between states. Polling is the
  client's :class:`~debitura_async.tracker.JobTracker`, shared with every other caller.
* **Structure.** One runner task owns one :class:`asyncio.TaskGroup` holding the reader and a task
  per batch. The run is over when the group is (structurally: every task ended), then every batch
  the ledger still holds open is reported UNRESOLVED with its job id and Idempotency-Key, and the
  results stream closes.
* **No duplicates.** A batch's Idempotency-Key is derived from the run id, the batch index and the
  batch content, so every retry (and a resume of the same run) gets the server's replay.
* **Server refusals** (400/413) are split by the pure :mod:`~debitura_async._splitting` rules.

Elsewhere from the client, :func:`ingest` / :func:`ingest_all` are free functions over any
:class:`PipelineClient` (elasticsearch-py's ``async_streaming_bulk`` shape);
``client.ingest(...)`` is the same thing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, Unpack

import anyio

from ._batching import Batch, Batcher, new_run_id
from ._client_config import _check_queued
from ._journal_api import IngestJournal, JournalEntry
from ._ledger import Entry, Ledger, LedgerError
from ._options import IngestKwargs, IngestOptions, make_options
from ._pipeline_parts import (
    _critical,
    _iterate,
    _keyed,
    _now,
    _ResultQueue,
    _SendGate,
    _Slot,
)
from ._reading import RowReader, check_item, key_of, precheck
from ._splitting import plan_split
from .errors import (
    AuthenticationError,
    BadRequestError,
    ContradictoryResponseError,
    DebituraError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RowProblem,
    UnprocessableEntityError,
    ValidationError,
)
from .models import (
    AsyncJobStatus,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionSummary,
    IngestProgress,
    InvalidRow,
    JobResult,
    RequestStats,
    UnresolvedCaseRow,
)

if TYPE_CHECKING:
    from types import TracebackType

    from .tracker import JobHandle, JobTracker

__all__ = [
    "IngestJournal",
    "IngestKwargs",
    "IngestOptions",
    "Ingestion",
    "JournalEntry",
    "PipelineClient",
    "RowInput",
    "ingest",
    "ingest_all",
]

logger = logging.getLogger("debitura_async.ingest")

RowInput = IngestionJobRow | Mapping[str, Any] | InvalidRow | UnresolvedCaseRow
_END: Any = object()
T = TypeVar("T")


class PipelineClient(Protocol):
    """What the pipeline needs of a client (``DebituraClient`` is one)."""

    clock_skew: timedelta
    tracker: JobTracker

    async def post_encoded_job(
        self, body: bytes, *, idempotency_key: str, counters: RequestStats | None = None
    ) -> IngestionJobAccepted: ...


class Ingestion:
    """A running ingestion: ``async with client.ingest(rows) as results: async for r in results``.

    ``summary`` is an :class:`IngestionSummary` snapshot (final once the ``async with`` exits).
    """

    def __init__(
        self,
        client: PipelineClient,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        options: IngestOptions,
    ) -> None:
        if not isinstance(rows, Iterable | AsyncIterable) or isinstance(rows, str | bytes):
            raise TypeError(f"rows must be an iterable of rows, got {type(rows).__name__}")
        self._client = client
        self._rows = rows
        self.options = options
        self.run_id: str = options.run_id or new_run_id()
        self._ledger = Ledger()
        self.counters = RequestStats()
        """The requests this run made (its submits and the polls of its jobs)."""
        self._results = _ResultQueue(options.result_buffer)
        self._stash: list[JobResult] = []
        """Results whose delivery a stop interrupted: finalize hands them out first."""
        self._slots = asyncio.Semaphore(options.max_jobs_in_flight)
        self._submit_limiter = anyio.CapacityLimiter(options.max_concurrent_submits)
        self._handles: dict[str, JobHandle] = {}
        self._batcher: Batcher | None = None
        policy = getattr(client, "retry_policy", None)
        self._gate = _SendGate(options.max_failed_submits, getattr(policy, "max_retry_after", None))
        self._work: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping: str | None = None
        self._fatal: BaseException | None = None
        self._raised = False
        self._consumer_gone = False
        self._started = 0.0
        self._elapsed: float | None = None
        self._last_progress = float("-inf")
        self._validated_at = options.validated_at or _now()
        self._latest_event_date = self._validated_at + client.clock_skew

    # -- consumer side ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("an Ingestion can be entered only once")
        self._started = time.monotonic()
        self._runner = asyncio.create_task(self._run(), name=f"debitura-ingest-{self.run_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._consumer_gone = True
        self._stop("closed")
        self._results.abandon()  # a runner blocked on a full buffer goes on at once
        if self._runner is not None:
            await _critical(asyncio.wait([self._runner]))
        if exc_type is None and self._fatal is not None and not self._raised:
            self._raised = True
            raise self._fatal

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JobResult:
        if self._runner is None:
            raise RuntimeError("use `async with client.ingest(rows) as results:` first")
        try:
            return await self._results.get()
        except anyio.EndOfStream:
            if not self._consumer_gone:
                await asyncio.wait([self._runner])
            if self._fatal is not None and not self._raised:
                self._raised = True
                raise self._fatal from None
            raise StopAsyncIteration from None

    @property
    def summary(self) -> IngestionSummary:
        ledger, stats = self._ledger, self.counters
        elapsed = self._elapsed if self._elapsed is not None else time.monotonic() - self._started
        return IngestionSummary(
            rows_read=ledger.read,
            rows_rejected=ledger.rejected,
            rows_submitted=ledger.submitted,
            rows_succeeded=ledger.succeeded,
            rows_failed=ledger.failed,
            rows_unresolved=ledger.unresolved,
            jobs=dict(ledger.jobs),
            requests=stats.requests,
            posts=stats.posts,
            polls=stats.gets,
            retries=stats.retries,
            rate_limited=stats.rate_limited,
            elapsed=elapsed if self._started else 0.0,
        )

    def progress(self) -> IngestProgress:
        ledger = self._ledger
        budget = getattr(self._client, "budget", None)
        paused = budget.status().paused_for if budget is not None else 0.0
        retry_wait = getattr(self._client, "retry_wait", None)
        return IngestProgress(
            rows_read=ledger.read,
            rows_submitted=ledger.submitted,
            rows_succeeded=ledger.succeeded,
            rows_failed=ledger.failed,
            rows_rejected=ledger.rejected,
            rows_unresolved=ledger.unresolved,
            jobs_in_flight=ledger.in_flight,
            jobs_done=sum(ledger.jobs.values()),
            requests=self.counters.requests,
            elapsed=time.monotonic() - self._started if self._started else 0.0,
            jobs_queued=sum(
                1
                for h in self._handles.values()
                if h.status is not None and h.status.status is AsyncJobStatus.QUEUED
            ),
            rate_limit_wait=paused or None,
            retry=retry_wait() if callable(retry_wait) else None,
        )

    @property
    def stop_reason(self) -> str | None:
        """Why the run stopped before its input was done (``"deadline"``, a signal's reason
        given to :meth:`stop`, ``"rate limited: ..."``), or None."""
        if self._stopping in (None, "closed", "fatal"):
            return None
        return self._stopping

    def stop(self, reason: str = "stopped") -> None:
        """Stop sending: nothing more is read or sent, every job not known to be finished is
        reported UNRESOLVED (its journal entry kept, so a resume picks it up), and the results
        stream ends. Safe to call more than once and from a signal handler on the loop."""
        self._stop(reason)

    # -- control ---------------------------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        if self._stopping is None:
            self._stopping = reason
        if self._work is not None and not self._work.done():
            self._work.cancel()

    def _fail(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stop("fatal")

    async def _run(self) -> None:
        inst = self._client.tracker.instrumentation
        with inst.span("debitura.ingest", {"debitura.run_id": self.run_id}) as span:
            self._work = asyncio.create_task(
                self._work_all(), name=f"debitura-ingest-{self.run_id}-work"
            )
            try:
                await _critical(asyncio.wait([self._work]))
                if not self._work.cancelled() and self._work.exception() is not None:
                    error = self._work.exception()
                    errors = error.exceptions if isinstance(error, BaseExceptionGroup) else (error,)
                    self._fatal = self._fatal or errors[0]
            finally:
                await self._finalize()
                summary = self.summary
                for name in ("read", "rejected", "submitted", "succeeded", "failed", "unresolved"):
                    span.set_attribute(f"debitura.rows.{name}", getattr(summary, f"rows_{name}"))
                span.set_attribute("debitura.requests", summary.requests)
                span.set_attribute("debitura.retries", summary.retries)
                if self._stopping is not None:
                    span.set_attribute("debitura.stopped", self._stopping)
                inst.ingest_finished(summary)

    async def _work_all(self) -> None:
        try:
            async with asyncio.timeout(self.options.deadline), asyncio.TaskGroup() as tg:
                tg.create_task(self._read(tg))
        except TimeoutError:
            if self._stopping is None:
                self._stopping = "deadline"

    async def _finalize(self) -> None:
        """Report everything the ledger still holds open as UNRESOLVED, then close the stream."""
        try:
            reason = self._stopping or "stopped"
            error = DebituraError(f"ingestion stopped ({reason}) before the outcome was known")
            tracker = self._client.tracker
            for handle in self._handles.values():
                tracker.untrack(handle)
            self._handles.clear()
            await tracker.settle()
            now = _now()
            results = self._stash + self._ledger.close(error, now)
            self._stash = []
            positions = self._batcher.pending if self._batcher is not None else ()
            self._batcher = None
            pending = self._ledger.abandon(positions, error)
            if pending is not None:
                results.append(pending)
            try:
                self._ledger.check()
            except LedgerError as exc:  # a bug of ours: never a silent wrong summary
                self._fatal = self._fatal or exc
            for result in results:
                await self._deliver(result)
        finally:
            self._elapsed = time.monotonic() - self._started
            self._report_progress(force=True)
            self._results.close()

    # -- results ---------------------------------------------------------------------------------

    async def _deliver(self, result: JobResult) -> None:
        try:
            await self._results.put(result)
        except asyncio.CancelledError:
            self._stash.append(result)  # counted already: it must still reach the consumer
            raise
        self._report_progress()

    def _report_progress(self, *, force: bool = False) -> None:
        callback = self.options.on_progress
        if callback is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= self.options.progress_interval:
            self._last_progress = now
            try:
                callback(self.progress())
            except Exception as exc:  # noqa: BLE001 - the caller's bug: stop, hand it over
                self._fail(exc)

    async def _record(self, result: JobResult, slot: _Slot | None) -> None:
        """Journal a final result (not UNRESOLVED ones), deliver it, give back the slot."""
        journal = self.options.journal
        try:
            if journal is not None and result.outcome.value != "unresolved" and not result.resumed:
                await _critical(journal.batch_finished(result))
            await self._deliver(result)
        finally:
            if slot is not None:
                self._release(slot)

    def _release(self, slot: _Slot) -> None:
        slot.holders -= 1
        if slot.holders == 0:
            self._slots.release()

    # -- reading ---------------------------------------------------------------------------------

    def _check(
        self, item: object, position: int
    ) -> tuple[IngestionJobRow | None, list[RowProblem]]:
        return check_item(item, position, now=self._validated_at, skew=self._client.clock_skew)

    async def _read(self, tg: asyncio.TaskGroup) -> None:
        options = self.options
        if options.on_invalid == "raise" and isinstance(self._rows, Sequence):
            problems = await precheck(self._rows, self._check)
            if problems:
                self._fail(ValidationError(problems, what="input"))
                return
        batcher = self._batcher = Batcher(options.batch_size, max_bytes=options.max_body_bytes)

        async def dispatch(batch: Batch) -> None:
            await self._dispatch(tg, batch)

        reader = RowReader(
            self._ledger,
            batcher,
            latest=self._latest_event_date,
            row_key=options.row_key,
            check=self._check,
            reject=self._reject_row,
            dispatch=dispatch,
            progress=self._report_progress,
            # A sequence was checked whole above: reading it ahead shows nothing.
            read_ahead=options.on_invalid == "skip" or isinstance(self._rows, Sequence),
        )
        async with _iterate(self._rows) as (sync_iter, async_iter):
            await reader.read(sync_iter, async_iter)

    async def _reject_row(
        self,
        item: object,
        row: IngestionJobRow | None,
        position: int,
        problems: list[RowProblem],
    ) -> bool:
        """A row refused on the client; False when the run must stop (``on_invalid="raise"``)."""
        error = ValidationError(problems, what="row")
        if isinstance(item, InvalidRow) and not item.details and item.problems:
            texts = item.problems  # the adapter's own words ("line 14: unbalanced quote")
        else:
            texts = tuple(f"{p.field}: {p.message}" for p in problems)
        result = self._ledger.row_rejected(position, texts, error, _now())
        if self.options.on_invalid == "raise":
            self._fail(ValidationError(error.problems, what="input"))
            return False
        await self._deliver(_keyed(result, key_of(item, row, self.options.row_key)))
        return True

    async def _dispatch(self, tg: asyncio.TaskGroup, batch: Batch) -> None:
        entry = self._ledger.form(batch, batch.idempotency_key(self.run_id))
        await self._slots.acquire()  # a stop while waiting: the ledger reports it UNRESOLVED
        tg.create_task(self._process(tg, entry, _Slot()))

    # -- one batch -------------------------------------------------------------------------------

    async def _process(self, tg: asyncio.TaskGroup, entry: Entry, slot: _Slot) -> None:
        """Send a batch, or, when resuming, replay or re-poll what the journal knows of it."""
        journal = self.options.journal
        known = await journal.lookup(entry.key) if journal is not None else None
        if known is not None and known.state == "finished" and known.result is not None:
            await self._record(self._ledger.replayed(entry, known.result), slot)
        elif known is not None and known.state == "accepted" and known.job_id is not None:
            self._ledger.accepted(entry, known.job_id, _now())
            await self._await_job(entry, slot)
        else:
            await self._submit(tg, entry, slot)

    async def _submit(self, tg: asyncio.TaskGroup, entry: Entry, slot: _Slot) -> None:
        journal = self.options.journal
        if self._gate.stopped is not None:
            await self._record(self._ledger.unresolve(entry, self._gate.stopped, _now()), slot)
            return
        if journal is not None:
            await journal.batch_submitting(entry.batch, entry.key)
        self._ledger.submitting(entry)
        try:
            async with self._submit_limiter:
                if self._gate.stopped is not None:
                    raise self._gate.stopped
                sent = asyncio.get_running_loop().time()
                accepted = await self._client.post_encoded_job(
                    entry.batch.body(), idempotency_key=entry.key, counters=self.counters
                )
        except (AuthenticationError, PermissionDeniedError) as exc:
            self._fail(exc)  # the entry stays open: the ledger reports it UNRESOLVED
            self._release(slot)
        except (BadRequestError, PayloadTooLargeError, UnprocessableEntityError) as exc:
            await self._split(tg, entry, slot, exc)
        except DebituraError as exc:
            stop = self._gate.failed(exc)
            await self._record(self._ledger.unresolve(entry, exc, _now()), slot)
            if stop is not None:
                self._stop(stop)
        else:
            self._gate.succeeded()
            # The job exists: from here on a stop reports it UNRESOLVED with its id.
            self._ledger.accepted(entry, accepted.job_id, _now())
            if journal is not None:
                await _critical(journal.batch_accepted(entry.key, accepted.job_id))
            try:
                _check_queued(accepted, len(entry.batch))
            except ContradictoryResponseError as error:  # never polled: not trusted enough
                await self._record(self._ledger.unresolve(entry, error, _now()), slot)
                return
            await self._await_job(entry, slot, sent_at=sent)

    async def _split(
        self, tg: asyncio.TaskGroup, entry: Entry, slot: _Slot, error: DebituraError
    ) -> None:
        """A 400/413/422 queued nothing: reject rows, send the rest again in parts."""
        assert isinstance(error, BadRequestError | PayloadTooLargeError | UnprocessableEntityError)  # noqa: S101
        split = plan_split(
            entry.batch, error, splittable=not isinstance(error, UnprocessableEntityError)
        )
        keys = entry.batch.row_keys
        now = _now()
        results = self._ledger.reject(entry, split.rejected, error, now, split=bool(split.parts))
        parts = [self._ledger.form(p, p.idempotency_key(self.run_id)) for p in split.parts]
        slot.holders += len(parts)
        for part in parts:
            tg.create_task(self._process(tg, part, slot))
        # Not journaled: a resumed run sends the batch again and the server refuses it again.
        for result in results:
            key = keys[entry.batch.positions.index(result.first_position)]
            await self._deliver(_keyed(result, key))
        self._release(slot)

    async def _await_job(self, entry: Entry, slot: _Slot, *, sent_at: float | None = None) -> None:
        assert entry.job_id is not None  # noqa: S101 - accepted
        tracker = self._client.tracker
        policy = self.options.polling
        try:
            handle = tracker.track(
                entry.job_id,
                idempotency_key=entry.key,
                rows=len(entry.batch),
                counters=self.counters,
                policy=policy,
                max_poll_failures=self.options.max_poll_failures,
                submitted_at=sent_at,
            )
        except DebituraError as exc:  # DuplicateJobIdError: another batch holds this job id
            await self._record(self._ledger.unresolve(entry, exc, _now()), slot)
            return
        self._handles[entry.key] = handle
        try:
            status = await handle.wait()
        except (AuthenticationError, PermissionDeniedError) as exc:
            self._fail(exc)
            self._release(slot)
            return
        except DebituraError as exc:
            entry.polls = handle.polls
            result = self._ledger.unresolve(entry, exc, _now())
            stop = self._gate.too_long_to_wait(exc)
            if stop is not None:
                self._stop(stop)
        else:
            entry.polls = handle.polls
            result = self._ledger.finished(entry, status, _now())
        finally:
            if self._handles.pop(entry.key, None) is not None and not handle.done():
                tracker.untrack(handle)
        await self._record(result, slot)


def ingest(
    client: PipelineClient,
    rows: Iterable[RowInput] | AsyncIterable[RowInput],
    **options: Unpack[IngestKwargs],
) -> Ingestion:
    """Stream rows of any length through concurrent jobs; iterate the per-job results.

    Options are checked here (a wrong one raises from this call); see :class:`IngestOptions`.
    """
    return Ingestion(client, rows, make_options(dict(options)))


async def ingest_all(
    client: PipelineClient,
    rows: Iterable[RowInput] | AsyncIterable[RowInput],
    **options: Unpack[IngestKwargs],
) -> IngestionSummary:
    """Like :func:`ingest`, for callers that only want the totals."""
    async with ingest(client, rows, **options) as results:
        async for _ in results:
            pass
    return results.summary
