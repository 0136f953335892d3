"""The concurrent ingestion pipeline behind :meth:`DebituraClient.ingest`.

Data flows one way::

    rows -> validate -> batch -> [job slot] -> POST (Idempotency-Key) -> poll planner -> results

* **Input** is any sync or async iterable of :class:`IngestionJobRow` or mappings, read lazily.
* **Backpressure.** A job slot (``max_jobs_in_flight``) is taken before a batch is sent and given
  back only once its result has been handed to the results stream, whose buffer is bounded; so a
  full server, a slow consumer or a spent request budget all stop the reading of input, and memory
  stays flat whatever the input's length.
* **Structure.** One runner task owns one :class:`asyncio.TaskGroup` holding the reader, the poll
  loop, and a task per submit and per poll. Results leave through a bounded anyio memory stream;
  nothing yields from inside the task group. Stopping (deadline, the caller leaving the ``async
  with``, cancellation, a fatal error) cancels the group's tasks, then every batch not known to be
  finished is reported UNRESOLVED with its job id and Idempotency-Key.
* **No duplicates.** A batch's Idempotency-Key is derived from the run id, the batch index and the
  batch content, so every retry (and a resume of the same run) gets the server's replay instead of
  a second job.
* **Server refusals.** A 400 queues nothing, so a refused batch is split: rows the error names
  (``rows[3]``) are rejected and the rest resent; otherwise the batch is bisected down to the rows
  the server refuses on their own.
"""

from __future__ import annotations

import asyncio
import re
import time
import types
import uuid
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio
import attrs
import orjson

from ._batching import Batch, Batcher
from ._journal_api import IngestJournal, JournalEntry
from ._polling import PollPlanner, PollPolicy
from ._validate import MAX_BATCH_ROWS, item_problems, plainly_valid
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    DebituraError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RowProblem,
    UnprocessableEntityError,
    ValidationError,
)
from .models import (
    AsyncJobStatus,
    IngestionJobRow,
    IngestionJobStatus,
    IngestionSummary,
    IngestProgress,
    InvalidRow,
    JobOutcome,
    JobResult,
    RejectedRow,
)

if TYPE_CHECKING:
    from types import TracebackType

    from .client import DebituraClient

__all__ = [
    "IngestJournal",
    "IngestOptions",
    "Ingestion",
    "JournalEntry",
    "RowInput",
]

RowInput = IngestionJobRow | Mapping[str, Any] | InvalidRow
OnInvalid = Literal["skip", "raise"]

_ROW_INDEX_RE = re.compile(r"rows\[(\d+)\]", re.IGNORECASE)
_END: Any = object()
"""Marks the end of the input."""
_NOT_FOUND_TOLERANCE = 3
"""A freshly accepted job may briefly answer 404 (replica lag); give up after this many."""


@attrs.frozen(kw_only=True)
class IngestOptions:
    """Options of :meth:`DebituraClient.ingest` (all keyword arguments there).

    * ``batch_size`` — rows per job, 1..1000.
    * ``max_concurrent_submits`` — POSTs in flight at once.
    * ``max_jobs_in_flight`` — batches sent (or being sent) and not yet finished. When full, the
      pipeline stops reading input. The default suits Debitura's guide (a 1000-row job takes up
      to 30 s): 8 jobs move about a million rows an hour on ~2.2 requests per 1000 rows.
    * ``on_invalid`` — ``"skip"``: report bad rows (REJECTED results) and go on; ``"raise"``:
      stop with a :class:`ValidationError`. For a list or tuple the whole input is checked before
      anything is sent; for a stream, nothing more is sent after the first bad row.
    * ``deadline`` — seconds from the start; then everything unfinished is reported UNRESOLVED.
    * ``run_id`` — names the run in Idempotency-Keys; pass the same id (and the same input) to
      resume a run. Default: random.
    * ``polling`` — :class:`PollPolicy` (adaptive by default; ``PollPolicy.fixed(3.0)`` is the
      guide's cadence).
    * ``on_progress`` — called with an :class:`IngestProgress` at most every
      ``progress_interval`` seconds, and once at the end.
    * ``max_body_bytes`` — cap on a request body; batches are cut to fit.
    * ``result_buffer`` — results buffered for a slow consumer before the pipeline waits.
    * ``journal`` — an :class:`IngestJournal` to record and resume the run.
    * ``validated_at`` — the "now" for the future-eventDate rule (a resumed run passes the
      original run's start, so the same rows are valid and the same batches form).
    * ``max_poll_failures`` — consecutive failed polls of one job before it is UNRESOLVED.
    * ``max_failed_submits`` — consecutive batches whose POST failed even after retries
      (server unreachable, 5xx) before the run stops sending: the rest of the input is still
      read and accounted for, each batch reported UNRESOLVED at once (resumable) rather than
      spending its own retries on a dead server. Polls of jobs already accepted go on.
    """

    batch_size: int = attrs.field(default=MAX_BATCH_ROWS)
    max_concurrent_submits: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    max_jobs_in_flight: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    on_invalid: OnInvalid = "skip"
    deadline: float | None = None
    run_id: str | None = None
    polling: PollPolicy = attrs.field(factory=PollPolicy)
    on_progress: Callable[[IngestProgress], object] | None = None
    progress_interval: float = 0.25
    max_body_bytes: int | None = None
    result_buffer: int = attrs.field(default=64, validator=attrs.validators.ge(0))
    journal: IngestJournal | None = None
    validated_at: datetime | None = None
    max_poll_failures: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    max_failed_submits: int = attrs.field(default=3, validator=attrs.validators.ge(1))

    @batch_size.validator
    def _check_batch_size(self, _: object, value: int) -> None:
        if not 1 <= value <= MAX_BATCH_ROWS:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_ROWS}, got {value}")

    def __attrs_post_init__(self) -> None:
        if self.on_invalid not in ("skip", "raise"):
            raise ValueError(f"on_invalid must be 'skip' or 'raise', got {self.on_invalid!r}")
        if self.run_id is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", self.run_id):
            raise ValueError("run_id must be 1..64 characters of A-Z a-z 0-9 _ . : -")


class _Slot:
    """One job slot, shared by the parts of a batch the server made us split."""

    __slots__ = ("holders",)

    def __init__(self) -> None:
        self.holders = 1


@attrs.define(eq=False)
class _Tracked:
    batch: Batch
    key: str
    slot: _Slot
    job_id: uuid.UUID | None = None
    status: IngestionJobStatus | None = None
    submitted_at: datetime | None = None
    polls: int = 0
    failures: int = 0
    not_found: int = 0


@attrs.define
class _Counts:
    read: int = 0
    rejected: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    unresolved: int = 0
    jobs: Counter[JobOutcome] = attrs.field(factory=Counter)


def _now() -> datetime:
    return datetime.now(UTC)


def _outcome_of(status: IngestionJobStatus) -> JobOutcome:
    if status.status is AsyncJobStatus.COMPLETED:
        return JobOutcome.COMPLETED
    if status.status is AsyncJobStatus.COMPLETED_WITH_ERRORS:
        return JobOutcome.COMPLETED_WITH_ERRORS
    return JobOutcome.FAILED


def _as_problem(position: int, text: str) -> RowProblem:
    field, sep, message = text.partition(": ")
    return RowProblem(position, field, message) if sep else RowProblem(position, "row", text)


def _rows_named_by(error: APIStatusError, size: int) -> dict[int, list[str]]:
    """Rows of a refused batch that the 400 body names (``rows[3].caseId: ...``)."""
    named: dict[int, list[str]] = {}
    texts = [f"{name}: {'; '.join(msgs)}" for name, msgs in error.body.field_errors]
    texts += [b.message or "" for b in error.body.business_errors]
    if not texts:
        texts.append(error.body.message or "")
    for text in texts:
        for match in _ROW_INDEX_RE.finditer(text):
            index = int(match.group(1))
            if index < size:
                named.setdefault(index, []).append(text.strip())
    return named


class Ingestion:
    """A running ingestion: ``async with client.ingest(rows) as results: async for r in results``.

    ``summary`` is an :class:`IngestionSummary` snapshot (final once the ``async with`` exits).
    """

    def __init__(
        self,
        client: DebituraClient,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        options: IngestOptions,
    ) -> None:
        self._client = client
        self._rows = rows
        self.options = options
        self.run_id: str = options.run_id or uuid.uuid4().hex[:16]
        self._counts = _Counts()
        self._planner = PollPlanner(options.polling)
        send, recv = anyio.create_memory_object_stream[JobResult](options.result_buffer)
        self._send = send
        self._recv = recv
        self._slots = asyncio.Semaphore(options.max_jobs_in_flight)
        self._submit_limiter = anyio.CapacityLimiter(options.max_concurrent_submits)
        self._poll_limiter = anyio.CapacityLimiter(max(4, options.max_concurrent_submits))
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._jobs: dict[uuid.UUID, _Tracked] = {}
        self._submitting: dict[str, _Tracked] = {}
        self._active = 0
        self._failed_submits = 0
        self._sending_stopped: DebituraError | None = None
        """Set when max_failed_submits batches in a row failed: batches are no longer sent."""
        """Batches between being handed to _start and being tracked or finished: while any is,
        the poll loop must not conclude that the work is done."""
        self._formed: dict[int, Batch] = {}
        self._batcher: Batcher | None = None
        self._polling: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._input_done = False
        self._stopping: str | None = None
        self._fatal: BaseException | None = None
        self._raised = False
        self._consumer_gone = False
        self._started = 0.0
        self._elapsed: float | None = None
        self._stats_base = client.stats.snapshot()
        self._last_progress = float("-inf")
        self._validated_at = options.validated_at or _now()
        self._latest_event_date = self._validated_at + client.clock_skew
        self._deadline_handle: asyncio.TimerHandle | None = None

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
        if self._runner is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([self._runner])
        self._recv.close()
        if exc_type is None and self._fatal is not None and not self._raised:
            self._raised = True
            raise self._fatal

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JobResult:
        try:
            return await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._runner is not None and not self._consumer_gone:
                await asyncio.wait([self._runner])
            if self._fatal is not None and not self._raised:
                self._raised = True
                raise self._fatal from None
            raise StopAsyncIteration from None

    @property
    def summary(self) -> IngestionSummary:
        c = self._counts
        stats = self._client.stats
        base = self._stats_base
        elapsed = self._elapsed if self._elapsed is not None else time.monotonic() - self._started
        return IngestionSummary(
            rows_read=c.read,
            rows_rejected=c.rejected,
            rows_submitted=c.submitted,
            rows_succeeded=c.succeeded,
            rows_failed=c.failed,
            rows_unresolved=c.unresolved,
            jobs=dict(c.jobs),
            requests=stats.requests - base.requests,
            posts=stats.posts - base.posts,
            polls=stats.gets - base.gets,
            retries=stats.retries - base.retries,
            rate_limited=stats.rate_limited - base.rate_limited,
            elapsed=elapsed if self._started else 0.0,
        )

    def progress(self) -> IngestProgress:
        c = self._counts
        budget = self._client.budget
        return IngestProgress(
            rows_read=c.read,
            rows_submitted=c.submitted,
            rows_succeeded=c.succeeded,
            rows_failed=c.failed,
            rows_rejected=c.rejected,
            rows_unresolved=c.unresolved,
            jobs_in_flight=len(self._jobs) + len(self._submitting),
            jobs_done=sum(c.jobs.values()),
            requests=self._client.stats.requests - self._stats_base.requests,
            elapsed=time.monotonic() - self._started,
            jobs_queued=sum(
                1
                for m in self._jobs.values()
                if m.status is not None and m.status.status is AsyncJobStatus.QUEUED
            ),
            rate_limit_wait=(budget.pause_remaining() or None) if budget is not None else None,
            retry=self._client.retry_wait(),
        )

    def stop(self, reason: str = "stopped") -> None:
        """Stop sending: nothing more is read or sent, every job not known to be finished is
        reported UNRESOLVED (its journal entry kept, so a resume picks it up), and the results
        stream ends. Safe to call more than once and from a signal handler on the loop."""
        self._stop(reason)

    # -- control ---------------------------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        if self._stopping is None:
            self._stopping = reason
        for task in list(self._tasks):
            task.cancel()
        self._wake.set()

    def _spawn(self, coro: Any) -> bool:
        if self._stopping is not None or self._tg is None:
            coro.close()
            return False
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _fail(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stop("fatal")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.options.deadline is not None:
            self._deadline_handle = loop.call_later(
                max(0.0, self.options.deadline), self._stop, "deadline"
            )
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._spawn(self._produce())
                self._spawn(self._poll_loop())
        except BaseException as exc:  # noqa: BLE001 - an unexpected bug in a task: surface it
            errors = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            self._fatal = self._fatal or errors[0]
        finally:
            self._tg = None
            if self._deadline_handle is not None:
                self._deadline_handle.cancel()
            try:
                with anyio.CancelScope(shield=True):
                    await self._finalize()
            finally:
                self._elapsed = time.monotonic() - self._started
                self._report_progress(force=True)
                self._send.close()

    async def _finalize(self) -> None:
        """Report everything not known to be finished as UNRESOLVED."""
        reason = self._stopping or "stopped"
        error: DebituraError = DebituraError(f"ingestion stopped ({reason}) before the outcome")
        for meta in list(self._jobs.values()):
            await self._finish(meta, JobOutcome.UNRESOLVED, error=error)
        for meta in list(self._submitting.values()):
            await self._finish(meta, JobOutcome.UNRESOLVED, error=error)
        for batch in list(self._formed.values()):
            meta = _Tracked(batch=batch, key=batch.idempotency_key(self.run_id), slot=_Slot())
            await self._finish(meta, JobOutcome.UNRESOLVED, error=error, release=False)
        positions = self._batcher.pending if self._batcher is not None else ()
        self._batcher = None
        if positions:
            self._counts.unresolved += len(positions)
            self._counts.jobs[JobOutcome.UNRESOLVED] += 1
            await self._deliver(
                JobResult(
                    batch_index=None,
                    first_position=positions[0],
                    last_position=positions[-1],
                    row_count=len(positions),
                    outcome=JobOutcome.UNRESOLVED,
                    error=error,
                )
            )

    # -- results ---------------------------------------------------------------------------------

    async def _deliver(self, result: JobResult) -> None:
        if not self._consumer_gone:
            try:
                await self._send.send(result)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._consumer_gone = True
        self._report_progress()

    def _report_progress(self, *, force: bool = False) -> None:
        callback = self.options.on_progress
        if callback is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= self.options.progress_interval:
            self._last_progress = now
            callback(self.progress())

    async def _finish(
        self,
        meta: _Tracked,
        outcome: JobOutcome,
        *,
        status: IngestionJobStatus | None = None,
        error: BaseException | None = None,
        release: bool = True,
    ) -> None:
        batch = meta.batch
        if meta.job_id is not None:
            self._jobs.pop(meta.job_id, None)
            if meta.job_id in self._planner:
                self._planner.remove(meta.job_id)
        if self._submitting.get(meta.key) is meta:
            del self._submitting[meta.key]
        result = JobResult(
            batch_index=batch.index,
            first_position=batch.first_position,
            last_position=batch.last_position,
            row_count=len(batch),
            outcome=outcome,
            job_id=meta.job_id,
            status=status if status is not None else meta.status,
            error=error,
            idempotency_key=meta.key,
            polls=meta.polls,
            submitted_at=meta.submitted_at,
            finished_at=_now(),
        )
        await self._record(result)
        if release:
            self._release(meta.slot)

    async def _record(self, result: JobResult, *, journal: bool = True) -> None:
        c = self._counts
        c.jobs[result.outcome] += 1
        if result.outcome is JobOutcome.UNRESOLVED:
            c.unresolved += result.row_count
        elif result.outcome is JobOutcome.REJECTED:
            # Rows the server refused were counted as submitted when batched; move them over.
            c.submitted -= result.row_count
            c.rejected += result.row_count
        else:
            c.succeeded += result.rows_succeeded
            c.failed += result.rows_failed
        if (
            journal
            and self.options.journal is not None
            and result.outcome is not (JobOutcome.UNRESOLVED)
        ):
            with anyio.CancelScope(shield=True):
                await self.options.journal.batch_finished(result)
        await self._deliver(result)

    def _release(self, slot: _Slot) -> None:
        slot.holders -= 1
        if slot.holders == 0:
            self._slots.release()
            self._wake.set()

    # -- reading and submitting ------------------------------------------------------------------

    def _check(self, item: object, position: int) -> tuple[IngestionJobRow | None, list[str]]:
        if isinstance(item, InvalidRow):
            return None, list(item.problems) or ["row: could not be read"]
        if not isinstance(item, IngestionJobRow | Mapping):
            return None, [
                f"row: expected an IngestionJobRow or a mapping, got {type(item).__name__}"
            ]
        row, problems = item_problems(
            item, position, now=self._validated_at, skew=self._client.clock_skew
        )
        return row, [f"{p.field}: {p.message}" for p in problems]

    async def _precheck(self, rows: Sequence[Any]) -> bool:
        problems: list[RowProblem] = []
        for position, item in enumerate(rows):
            _, found = self._check(item, position)
            problems += [_as_problem(position, text) for text in found]
            if position % 1024 == 1023:
                await asyncio.sleep(0)
        if problems:
            self._fail(ValidationError(problems, what="input"))
            return False
        return True

    async def _produce(self) -> None:
        options = self.options
        if (
            options.on_invalid == "raise"
            and isinstance(self._rows, Sequence)
            and not await self._precheck(self._rows)
        ):
            self._input_done = True
            return
        batcher = self._batcher = Batcher(options.batch_size, max_bytes=options.max_body_bytes)
        position = -1
        # Input is read lazily, one item at a time. A sync iterable is read directly (no async
        # generator in between: this loop runs once per row), yielding to the event loop after
        # every 256 items; the input's iterator is closed when reading stops, however it stops.
        async_iter: AsyncIterator[Any] | None = None
        sync_iter: Iterator[Any] = iter(())
        try:
            rows = self._rows
            if isinstance(rows, AsyncIterable):
                async_iter = aiter(rows)
            else:
                sync_iter = iter(rows)
            latest = self._latest_event_date
            while True:
                if position & 255 == 255:
                    self._report_progress()
                    if async_iter is None:
                        await asyncio.sleep(0)
                if async_iter is None:
                    item = next(sync_iter, _END)
                else:
                    item = await anext(async_iter, _END)
                if item is _END:
                    break
                position += 1
                self._counts.read += 1
                row: IngestionJobRow | None
                problems: list[str]
                if type(item) is IngestionJobRow and plainly_valid(item, latest):
                    row, problems = item, []  # the common case, checked in one call
                else:
                    row, problems = self._check(item, position)
                batch = None
                if row is not None and not problems:
                    try:
                        batch = batcher.add(position, row)
                    except (orjson.JSONEncodeError, ValueError) as exc:
                        problems = [f"row: cannot be encoded as JSON: {exc}"]
                if row is None or problems:
                    self._counts.rejected += 1
                    if options.on_invalid == "raise":
                        problem_list = [_as_problem(position, p) for p in problems]
                        self._fail(ValidationError(problem_list, what="input"))
                        return
                    await self._reject_client_side(position, problems)
                    continue
                self._counts.submitted += 1
                if batch is not None:
                    await self._dispatch(batch)
                    self._report_progress()
            last = batcher.flush()
            if last is not None:
                await self._dispatch(last)
        finally:
            try:
                if async_iter is not None:
                    aclose = getattr(async_iter, "aclose", None)
                    if aclose is not None:
                        await aclose()
                elif isinstance(sync_iter, types.GeneratorType):
                    sync_iter.close()
            finally:
                self._input_done = True
                self._wake.set()

    async def _reject_client_side(self, position: int, problems: list[str]) -> None:
        result = JobResult(
            batch_index=None,
            first_position=position,
            last_position=position,
            row_count=1,
            outcome=JobOutcome.REJECTED,
            error=ValidationError([_as_problem(position, p) for p in problems], what="row"),
            rejected_rows=(RejectedRow(position=position, problems=tuple(problems)),),
            finished_at=_now(),
        )
        # Counted as rejected by the reader already; only the job tally and delivery remain.
        self._counts.jobs[JobOutcome.REJECTED] += 1
        await self._deliver(result)

    async def _dispatch(self, batch: Batch) -> None:
        self._formed[batch.index] = batch  # accounted for (as UNRESOLVED) if we stop from here on
        await self._slots.acquire()
        del self._formed[batch.index]
        await self._start(
            _Tracked(batch=batch, key=batch.idempotency_key(self.run_id), slot=_Slot())
        )

    async def _start(self, meta: _Tracked) -> None:
        """Send a batch, or, when resuming, replay or re-poll what the journal knows of it."""
        self._submitting[meta.key] = meta
        self._active += 1
        submitting = False
        try:
            journal = self.options.journal
            entry = await journal.lookup(meta.key) if journal is not None else None
            if entry is not None and entry.state == "finished" and entry.result is not None:
                del self._submitting[meta.key]
                await self._record(attrs.evolve(entry.result, resumed=True), journal=False)
                self._release(meta.slot)
            elif entry is not None and entry.state == "accepted" and entry.job_id is not None:
                del self._submitting[meta.key]
                self._track(meta, entry.job_id)
            else:
                submitting = self._spawn(self._submit(meta))
        finally:
            if not submitting:  # else _submit counts the batch out when it is done with it
                self._active -= 1

    def _track(self, meta: _Tracked, job_id: uuid.UUID) -> None:
        meta.batch = meta.batch.without_rows()  # accepted: only the positions are needed now
        meta.job_id = job_id
        meta.submitted_at = meta.submitted_at or _now()
        self._jobs[job_id] = meta
        self._planner.add(job_id, len(meta.batch), asyncio.get_running_loop().time())
        self._wake.set()

    async def _submit(self, meta: _Tracked) -> None:
        journal = self.options.journal
        try:
            try:
                if self._sending_stopped is not None:
                    raise self._sending_stopped
                if journal is not None:
                    await journal.batch_submitting(meta.batch, meta.key)
                async with self._submit_limiter:
                    if self._sending_stopped is not None:
                        raise self._sending_stopped
                    accepted = await self._client._post_ingestion_job(
                        meta.batch.body(), idempotency_key=meta.key
                    )
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._fail(exc)
            except (BadRequestError, PayloadTooLargeError) as exc:
                # Shielded: a stop must not catch the batch half split, its rows half counted.
                with anyio.CancelScope(shield=True):
                    self._submitting.pop(meta.key, None)
                    await self._split(meta, exc)
            except UnprocessableEntityError as exc:
                with anyio.CancelScope(shield=True):
                    self._submitting.pop(meta.key, None)
                    await self._reject_server_side(meta, list(range(len(meta.batch))), exc, {})
            except DebituraError as exc:
                if exc is not self._sending_stopped:
                    self._failed_submits += 1
                    if self._failed_submits >= self.options.max_failed_submits:
                        self._sending_stopped = DebituraError(
                            f"not sent: the last {self._failed_submits} batches failed even "
                            f"after retries (last error: {exc})"
                        )
                await self._finish(meta, JobOutcome.UNRESOLVED, error=exc)
            else:
                self._failed_submits = 0
                # The job exists: a stop from here on reports it UNRESOLVED with its id.
                meta.job_id = accepted.job_id
                meta.submitted_at = _now()
                if journal is not None:
                    with anyio.CancelScope(shield=True):
                        await journal.batch_accepted(meta.key, accepted.job_id)
                self._submitting.pop(meta.key, None)
                self._track(meta, accepted.job_id)
        finally:
            self._active -= 1

    async def _split(self, meta: _Tracked, error: APIStatusError) -> None:
        """A 400/413 queued nothing: reject the rows it names, or bisect, and resend the rest."""
        batch = meta.batch
        named = _rows_named_by(error, len(batch)) if isinstance(error, BadRequestError) else {}
        if len(batch) == 1:
            await self._reject_server_side(meta, [0], error, named)
            return
        if named and len(named) < len(batch):
            await self._reject_server_side(meta, sorted(named), error, named, release=False)
            parts: tuple[Batch, ...] = (batch.without(named),)
        elif named:
            await self._reject_server_side(meta, list(range(len(batch))), error, named)
            return
        else:
            parts = batch.halves()
        meta.slot.holders += len(parts) - 1
        for part in parts:
            await self._start(
                _Tracked(batch=part, key=part.idempotency_key(self.run_id), slot=meta.slot)
            )

    async def _reject_server_side(
        self,
        meta: _Tracked,
        local_indexes: list[int],
        error: APIStatusError,
        named: Mapping[int, list[str]],
        *,
        release: bool = True,
    ) -> None:
        batch = meta.batch
        detail = error.body.describe() or str(error)
        for i in local_indexes:
            position = batch.positions[i]
            reasons = tuple(named.get(i) or [f"server refused the row: {detail}"])
            # Not journaled: a resumed run sends the batch again and the server refuses it again.
            await self._record(
                JobResult(
                    batch_index=batch.index,
                    first_position=position,
                    last_position=position,
                    row_count=1,
                    outcome=JobOutcome.REJECTED,
                    error=error,
                    rejected_rows=(RejectedRow(position=position, problems=reasons),),
                    idempotency_key=meta.key,
                    finished_at=_now(),
                ),
                journal=False,
            )
        if release:
            self._release(meta.slot)

    # -- polling ---------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if (
                self._input_done
                and not self._jobs
                and not self._active
                and not self._submitting
                and not self._formed
                and not self._polling
            ):
                return
            now = loop.time()
            best: tuple[float, uuid.UUID] | None = None
            for job_id, due in self._planner.items():
                if job_id not in self._polling and (best is None or due < best[0]):
                    best = (due, job_id)  # type: ignore[assignment]
            if best is not None and best[0] <= now:
                self._polling.add(best[1])
                self._spawn(self._poll(best[1]))
                continue
            self._wake.clear()
            timeout = None if best is None else best[0] - now
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _poll(self, job_id: uuid.UUID) -> None:
        meta = self._jobs.get(job_id)
        loop = asyncio.get_running_loop()
        try:
            if meta is None:
                return
            try:
                async with self._poll_limiter:
                    status = await self._client.get_ingestion_job(job_id)
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._fail(exc)
                return
            except NotFoundError as exc:
                meta.polls += 1
                meta.not_found += 1
                if meta.not_found >= _NOT_FOUND_TOLERANCE:
                    await self._finish(meta, JobOutcome.UNRESOLVED, error=exc)
                else:
                    self._planner.retry_later(job_id, loop.time(), meta.not_found)
                return
            except DebituraError as exc:
                meta.failures += 1
                if meta.failures >= self.options.max_poll_failures:
                    await self._finish(meta, JobOutcome.UNRESOLVED, error=exc)
                else:
                    self._planner.retry_later(job_id, loop.time(), meta.failures)
                return
            meta.polls += 1
            meta.failures = 0
            meta.status = status
            terminal = self._planner.observe(
                job_id,
                status=int(status.status),
                processed=status.rows_processed,
                total=status.rows_total,
                now=loop.time(),
            )
            if terminal:
                await self._finish(meta, _outcome_of(status), status=status)
        finally:
            self._polling.discard(job_id)
            self._wake.set()
