"""One job tracker per client: every caller's jobs polled by one loop, one planner, one budget.

A service or a web backend submits jobs from many requests at once; they all wait through the
client's :class:`JobTracker`, so two waiters on one job cost one poll, the adaptive planner learns
from every job, and the request budget paces them together::

    async with DebituraClient() as client:
        handle = await client.submit(rows)          # POST; the job is tracked from now on
        status = await handle.wait(timeout=120)     # shared polling; a timeout leaves it tracked
        other = client.track(job_id)                # adopt a job created elsewhere

The tracker's tasks live in one task group inside one runner task, started on first use inside
the running loop and stopped by ``client.aclose()``: then every handle still waiting resolves
with :class:`~debitura_async.ClientClosedError` carrying its job id and key, so the caller can
``track`` it again later. Nothing outlives the client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Final

import anyio

from . import hooks as _hooks
from ._ledger import check_status
from ._polling import PollPlanner, PollPolicy, PollStats
from ._polling_model import date_answer
from ._tracker_checks import check_age, check_count, check_track
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ContradictoryResponseError,
    DebituraError,
    DuplicateJobIdError,
    JobAgeExceededError,
    JobWaitTimeout,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from .models import IngestionJobStatus

if TYPE_CHECKING:
    from .models import RequestStats

__all__ = ["DEFAULT_MAX_JOB_AGE", "JobHandle", "JobTracker"]

logger = logging.getLogger("debitura_async.tracker")

DEFAULT_MAX_JOB_AGE: Final = 6 * 3600.0
"""A job not terminal this many seconds after it was tracked is given up (the guide: a 1000-row
job takes up to 30 s). Pass ``max_job_age=None`` for no bound."""
NOT_FOUND_TOLERANCE: Final = 3
"""A freshly accepted job may briefly answer 404 (replica lag); give up after this many."""

Poll = Callable[[uuid.UUID, "RequestStats | None"], Awaitable[IngestionJobStatus]]


_SETTLE_TIMEOUT = 5.0  # seconds settle() waits at most for an idle poll loop to end


class JobHandle:
    """One tracked job: its id, key and rows, the latest status seen, and a way to wait for it.

    Handles are shared: every caller tracking the same job id gets the same handle.
    """

    def __init__(
        self,
        job_id: uuid.UUID,
        *,
        idempotency_key: str | None,
        rows: int | None,
        counters: RequestStats | None,
        expires_at: float | None,
    ) -> None:
        self.job_id = job_id
        self.idempotency_key = idempotency_key
        self.rows = rows
        self.status: IngestionJobStatus | None = None
        """The latest status seen (None before the first poll answered)."""
        self.polls = 0
        """Polls that got an answer for this job."""
        self.error: BaseException | None = None
        """Why tracking ended without a terminal status (once :meth:`done`)."""
        self._counters = counters
        self._expires_at = expires_at
        self._failures = 0
        self._not_found = 0
        self._interest = 0
        self._fixed_interval: float | None = None
        self._planner: PollPlanner | None = None
        self._max_failures = 10
        self._done = asyncio.Event()
        self._owner: JobTracker | None = None
        self._last_sent: float | None = None
        self.detection_delay: float | None = None
        """Once terminal: an upper bound, in seconds, on how long the job had been terminal
        before a poll saw it — from the start of the previous poll (which saw it unfinished) to
        the answer of the poll that saw it terminal. None when the first poll already saw it
        terminal (no earlier instant is known to have seen it unfinished)."""

    def __repr__(self) -> str:
        state = self.status.status.name if self.status is not None else "UNSEEN"
        if self.error is not None:
            state = type(self.error).__name__
        return f"JobHandle(job_id={self.job_id}, key={self.idempotency_key!r}, {state})"

    def done(self) -> bool:
        """True once the job is terminal or tracking has ended (see :attr:`error`)."""
        return self._done.is_set()

    def result(self) -> IngestionJobStatus:
        """The terminal status; raises the error that ended tracking, or if not done yet."""
        if not self.done():
            raise RuntimeError(f"job {self.job_id} is not done yet")
        if self.error is not None:
            raise self.error
        assert self.status is not None  # noqa: S101 - done without error means a status
        return self.status

    async def wait(self, *, timeout: float | None = None) -> IngestionJobStatus:  # noqa: ASYNC109
        """Wait for the terminal status (shared polling).

        On ``timeout`` raises :class:`~debitura_async.JobWaitTimeout` with the last status; the
        job stays tracked and the handle usable. Raises the error that ended tracking
        (:class:`~debitura_async.ClientClosedError`, :class:`~debitura_async.NotFoundError`,
        :class:`~debitura_async.ContradictoryResponseError`, ...).
        """
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise ValueError(f"timeout must be a non-negative number or None, got {timeout!r}")
        owner = self._owner
        inst = owner.instrumentation if owner is not None else _hooks.NO_INSTRUMENTATION
        with inst.span("debitura.wait", {"debitura.job_id": str(self.job_id)}) as span:
            try:
                async with asyncio.timeout(timeout):
                    await self._done.wait()
            except TimeoutError:
                if not self.done():
                    raise JobWaitTimeout(self.job_id, float(timeout or 0.0), self.status) from None
            result = self.result()
            span.set_attribute("debitura.job.status", result.status.name)
            span.set_attribute("debitura.job.polls", self.polls)
        return result

    def _resolve(
        self, *, status: IngestionJobStatus | None = None, error: BaseException | None = None
    ) -> bool:
        if self.done():
            return False
        if status is not None:
            self.status = status
        self.error = error
        self._done.set()
        return True


class JobTracker:
    """Polls every tracked job of one client: one loop, one :class:`PollPlanner`.

    Made by :class:`~debitura_async.DebituraClient` (``client.tracker``); ``poll`` is the client's
    ``GET /ingestion-jobs/{id}`` (budgeted, retried). ``max_concurrent_polls`` bounds the polls in
    flight at once. ``scarcity`` reads how scarce requests are (0..1, e.g. the share of the key's
    budget in use) before each plan: the planners spend fewer polls as it rises.
    """

    def __init__(
        self,
        poll: Poll,
        *,
        policy: PollPolicy | None = None,
        max_concurrent_polls: int = 8,
        max_poll_failures: int = 10,
        max_job_age: float | None = DEFAULT_MAX_JOB_AGE,
        scarcity: Callable[[], float] | None = None,
        max_retry_after: float | None = None,
    ) -> None:
        self._poll = poll
        self.max_retry_after = max_retry_after
        """A 429 asking for a longer wait than this ends every tracked job with that error."""
        self._scarcity_of = scarcity
        self.policy = policy or PollPolicy()
        self.planner = PollPlanner(self.policy)
        """The planner of jobs tracked with the default policy."""
        self._planners: dict[PollPolicy, PollPlanner] = {self.policy: self.planner}
        self._scarcity = 0.0
        self._scarcity_read_at = float("-inf")
        self._round_trip = float("inf")  # the shortest poll seen: the network's own round trip
        self._limiter = anyio.CapacityLimiter(
            check_count("max_concurrent_polls", max_concurrent_polls)
        )
        self.max_poll_failures = check_count("max_poll_failures", max_poll_failures)
        self.max_job_age = check_age(max_job_age)
        self._jobs: dict[uuid.UUID, JobHandle] = {}
        self._fixed_due: dict[uuid.UUID, float] = {}
        self._polling: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._subscribers: list[asyncio.Queue[JobHandle]] = []
        self._closed = False
        self._exiting = False
        self.instrumentation: _hooks.Instrumentation = _hooks.NO_INSTRUMENTATION
        """Told of every job's end (see :class:`~debitura_async.hooks.Instrumentation`)."""
        """The runner saw nothing left to track and is ending (the next track starts anew)."""

    def __len__(self) -> int:
        return len(self._jobs)

    def handles(self) -> list[JobHandle]:
        """The jobs tracked now."""
        return list(self._jobs.values())

    # -- tracking --------------------------------------------------------------------------------

    def track(
        self,
        job_id: uuid.UUID,
        *,
        idempotency_key: str | None = None,
        rows: int | None = None,
        counters: RequestStats | None = None,
        poll_interval: float | None = None,
        policy: PollPolicy | None = None,
        max_age: float | object | None = ...,
        max_poll_failures: int | None = None,
        submitted_at: float | None = None,
    ) -> JobHandle:
        """Track ``job_id`` (or join whoever tracks it already) and return its handle.

        ``poll_interval``: poll this job at a fixed cadence instead of by the planner;
        ``policy``: plan it with this :class:`PollPolicy` (one planner per distinct policy,
        shared by every job tracked with it; default: the tracker's); ``submitted_at``: the
        event loop's time when its submission was sent, if known (jobs whose submissions were
        in flight together may have reached the server in any order: the planner then orders
        them by what their polls show).
        Raises :class:`~debitura_async.DuplicateJobIdError` when the job is tracked already for
        another Idempotency-Key: the server gave one job id to two different requests.
        """
        if self._closed:
            raise RuntimeError("this client is closed: its tracker takes no new jobs")
        checked_age = check_track(
            poll_interval=poll_interval,
            max_poll_failures=max_poll_failures,
            rows=rows,
            submitted_at=submitted_at,
            max_age=max_age,
        )
        existing = self._jobs.get(job_id)
        if existing is not None:
            known, new = existing.idempotency_key, idempotency_key
            if known is not None and new is not None and known != new:
                raise DuplicateJobIdError(
                    f"jobId already answered for another request (Idempotency-Key {known})",
                    job_id=job_id,
                )
            existing.idempotency_key = known or new
            existing.rows = existing.rows if existing.rows is not None else rows
            existing._interest += 1
            return existing
        loop = asyncio.get_running_loop()
        now = loop.time()
        age = self.max_job_age if checked_age is ... else checked_age
        handle = JobHandle(
            job_id,
            idempotency_key=idempotency_key,
            rows=rows,
            counters=counters,
            expires_at=None if age is None else now + float(age),
        )
        handle._interest = 1
        handle._owner = self
        handle._max_failures = max_poll_failures or self.max_poll_failures
        if policy is not None and policy.strategy == "fixed" and poll_interval is None:
            poll_interval = policy.interval
        self._jobs[job_id] = handle
        if poll_interval is not None:
            handle._fixed_interval = poll_interval
            self._fixed_due[job_id] = now
        else:
            planner = self._planners.get(policy or self.policy)
            if planner is None:
                planner = PollPlanner(policy, scarcity=self._scarcity)
                self._planners[policy or self.policy] = planner
            handle._planner = planner
            sent = submitted_at if submitted_at is not None and submitted_at <= now else None
            size = rows if rows is not None else planner.policy.reference_rows
            planner.add(job_id, size, now, sent=sent)
        self._ensure_running()
        self._wake.set()
        return handle

    def untrack(self, handle: JobHandle) -> None:
        """One caller is no longer interested; polling stops once nobody is."""
        handle._interest -= 1
        if handle._interest <= 0 and not handle.done() and self._jobs.get(handle.job_id) is handle:
            self._forget(handle.job_id)

    async def settle(self) -> None:
        """With nothing left to track, wait for the poll loop to end (no task left behind)."""
        runner = self._runner
        if runner is not None and not runner.done() and not self._jobs:
            self._wake.set()
            # it ends at its next turn, once the polls cancelled with their jobs have unwound
            # (a second or more on a loaded machine); bounded, so a wedged loop cannot hang us
            await asyncio.wait([runner], timeout=_SETTLE_TIMEOUT)

    async def completions(self) -> AsyncIterator[JobHandle]:
        """Every tracked job as it finishes (terminal or given up), from now on, until closed."""
        queue: asyncio.Queue[JobHandle] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while not (self._closed and queue.empty()):
                handle = await queue.get()
                if handle is _CLOSED_SENTINEL:
                    return
                yield handle
        finally:
            self._subscribers.remove(queue)

    # -- lifecycle -------------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._runner is None or self._runner.done() or self._exiting:
            self._exiting = False
            self._runner = asyncio.get_running_loop().create_task(
                self._run(), name="debitura-job-tracker"
            )

    async def aclose(self) -> None:
        """Stop polling; every handle still open resolves with ClientClosedError."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([runner])
        for handle in list(self._jobs.values()):
            self._end(
                handle,
                error=ClientClosedError(
                    "the client was closed before the job was terminal; "
                    "track it again by its id to resume",
                    job_id=handle.job_id,
                    idempotency_key=handle.idempotency_key,
                ),
            )
        for queue in self._subscribers:
            queue.put_nowait(_CLOSED_SENTINEL)  # wake iterators so they see the close

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._loop(tg)
        except Exception as exc:  # a bug (ours) in the loop: no handle may wait for it forever
            logger.exception("the job tracker's poll loop failed; ending every tracked job")
            for handle in list(self._jobs.values()):
                self._end(handle, error=exc)
        finally:
            self._tg = None

    async def _loop(self, tg: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs and not self._polling:
                self._exiting = True  # idle: no task is left behind while nothing is tracked
                return
            now = loop.time()
            self._follow_scarcity(now)
            self._expire(now)
            best = self._next_due()
            if best is not None and best[0] <= now:
                self._start_poll(tg, best[1])
                continue
            self._wake.clear()
            timeout = None if best is None else best[0] - now
            expiry = self._next_expiry()
            if expiry is not None:
                timeout = expiry - now if timeout is None else min(timeout, expiry - now)
            try:
                async with asyncio.timeout(None if timeout is None else max(0.0, timeout)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def set_scarcity(self, value: float) -> None:
        """How scarce requests are (0 plenty .. 1 nearly spent): every planner shifts toward
        fewer polls as it rises (see :class:`PollPolicy` ``prefer``)."""
        for planner in self._planners.values():
            planner.set_scarcity(value)
        self._scarcity = value

    def _follow_scarcity(self, now: float) -> None:
        """Read the budget's scarcity at most once a second; replan only on a real change
        (every planner replans all its jobs on a change)."""
        if self._scarcity_of is None or now < self._scarcity_read_at + 1.0:
            return
        self._scarcity_read_at = now
        value = min(1.0, max(0.0, float(self._scarcity_of())))
        if abs(value - self._scarcity) >= 0.1 or (value == 0.0) != (self._scarcity == 0.0):
            self.set_scarcity(value)

    def stats(self) -> list[PollStats]:
        """What each planner (one per distinct policy) has done and believes."""
        return [planner.stats() for planner in self._planners.values()]

    def _next_due(self) -> tuple[float, uuid.UUID] | None:
        best: tuple[float, uuid.UUID] | None = None
        for planner in self._planners.values():
            found = planner.next_due(exclude=self._polling)
            if found is not None and (best is None or found[1] < best[0]):
                best = (found[1], found[0])  # type: ignore[assignment]
        for job_id, due in self._fixed_due.items():
            if job_id not in self._polling and (best is None or due < best[0]):
                best = (due, job_id)
        return best

    def _next_expiry(self) -> float | None:
        times = [h._expires_at for h in self._jobs.values() if h._expires_at is not None]
        return min(times) if times else None

    def _expire(self, now: float) -> None:
        for handle in list(self._jobs.values()):
            if handle._expires_at is not None and now >= handle._expires_at:
                age = now - handle._expires_at + (self.max_job_age or 0.0)
                self._end(
                    handle,
                    error=JobAgeExceededError(
                        f"still not terminal after {age:.0f} s (max_job_age); given up, "
                        "it may still finish: track it again by its id",
                        job_id=handle.job_id,
                        idempotency_key=handle.idempotency_key,
                    ),
                )

    # -- one poll --------------------------------------------------------------------------------

    async def _poll_one(self, job_id: uuid.UUID) -> None:
        loop = asyncio.get_running_loop()
        try:
            handle = self._jobs.get(job_id)
            if handle is None:
                return
            try:
                async with self._limiter:
                    sent = loop.time()
                    attributes: dict[str, str | bool] = {
                        "debitura.job_id": str(job_id),
                        "debitura.poll.shared": True,
                    }
                    with self.instrumentation.span("debitura.poll", attributes) as span:
                        status = await self._poll(job_id, handle._counters)
                        span.set_attribute("debitura.job.status", status.status.name)
            except (AuthenticationError, PermissionDeniedError) as exc:
                for other in list(self._jobs.values()):  # the key itself is refused
                    self._end(other, error=exc)
                return
            except RateLimitError as exc:
                wait, limit = exc.retry_after, self.max_retry_after
                if wait is not None and limit is not None and wait > limit:
                    for other in list(self._jobs.values()):  # the key is spent for that long
                        self._end(other, error=exc)
                    return
                handle._failures += 1
                self._failed(handle, exc, loop.time(), handle._max_failures, handle._failures)
                return
            except NotFoundError as exc:
                handle._not_found += 1
                self._failed(handle, exc, loop.time(), NOT_FOUND_TOLERANCE, handle._not_found)
                return
            except DebituraError as exc:
                handle._failures += 1
                self._failed(handle, exc, loop.time(), handle._max_failures, handle._failures)
                return
            except Exception as exc:  # a bug (ours, a budget's, a transport's): end this job
                logger.exception("polling job %s failed unexpectedly", job_id)
                self._end(handle, error=exc)
                return
            now = loop.time()
            if status.is_terminal and handle._last_sent is not None:
                handle.detection_delay = now - handle._last_sent
            handle._last_sent = sent
            try:
                self._observed(handle, status, self._answered_at(sent, now))
            except Exception as exc:  # a bug (ours): it ends this job, never the poll loop
                logger.exception("handling the answer for job %s failed unexpectedly", job_id)
                self._end(handle, error=exc)
        finally:
            self._polling.pop(job_id, None)
            self._wake.set()

    def _answered_at(self, sent: float, received: float) -> float:
        """When the server looked at the job (:func:`._polling_model.date_answer`, against the
        shortest poll seen)."""
        self._round_trip = min(self._round_trip, max(received - sent, 0.0))
        return date_answer(sent, received, self._round_trip)

    def _failed(
        self, handle: JobHandle, exc: DebituraError, now: float, limit: int, count: int
    ) -> None:
        """A poll failed: give up at ``limit`` failures in a row, else try again later."""
        if count >= limit:
            self._end(handle, error=exc)
        elif handle._fixed_interval is not None:
            self._fixed_due[handle.job_id] = now + handle._fixed_interval
        elif handle._planner is not None and handle.job_id in handle._planner:
            handle._planner.retry_later(handle.job_id, now, count)

    def _observed(self, handle: JobHandle, status: IngestionJobStatus, now: float) -> None:
        if self._jobs.get(handle.job_id) is not handle:
            return
        handle.polls += 1
        handle._failures = 0
        handle.status = status
        problem = check_status(status, handle.rows)
        if problem is not None:
            self._end(handle, error=ContradictoryResponseError(problem, job_id=handle.job_id))
            return
        if handle._fixed_interval is not None:
            if status.is_terminal:
                self._end(handle, status=status)
            else:
                self._fixed_due[handle.job_id] = now + handle._fixed_interval
            return
        assert handle._planner is not None  # noqa: S101 - not fixed, so planned
        terminal = handle._planner.observe(
            handle.job_id,
            status=int(status.status),
            processed=status.rows_processed,
            total=status.rows_total,
            now=now,
        )
        if terminal or status.is_terminal:
            self._end(handle, status=status)

    def _start_poll(self, tg: asyncio.TaskGroup, job_id: uuid.UUID) -> None:
        task = tg.create_task(self._poll_one(job_id))
        self._polling[job_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            # A poll cancelled before its first step never runs its own clean-up (_poll_one's
            # finally): drop it here, or the loop would wait for it forever.
            if self._polling.get(job_id) is finished:
                del self._polling[job_id]
                self._wake.set()

        task.add_done_callback(done)

    def _forget(self, job_id: uuid.UUID) -> None:
        handle = self._jobs.pop(job_id, None)
        self._fixed_due.pop(job_id, None)
        poll = self._polling.get(job_id)
        if poll is not None and poll is not asyncio.current_task():
            poll.cancel()  # nobody waits for its answer any more
        self._wake.set()
        planner = handle._planner if handle is not None else None
        try:
            if planner is not None and job_id in planner:
                planner.remove(job_id)
        except Exception:  # a bug (ours): the job is forgotten here all the same
            logger.exception("the poll planner failed to drop job %s", job_id)

    def _end(
        self,
        handle: JobHandle,
        *,
        status: IngestionJobStatus | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self._jobs.get(handle.job_id) is handle:
            self._forget(handle.job_id)
        if handle._resolve(status=status, error=error):
            if handle is not _CLOSED_SENTINEL:
                outcome = type(error).__name__ if error is not None else "unknown"
                if error is None and status is not None:
                    outcome = status.status.name
                self.instrumentation.job_ended(
                    outcome=outcome,
                    polls=handle.polls,
                    detection_delay=handle.detection_delay if error is None else None,
                )
            for queue in self._subscribers:
                queue.put_nowait(handle)


_CLOSED_SENTINEL: Final = JobHandle(
    uuid.UUID(int=0), idempotency_key=None, rows=None, counters=None, expires_at=None
)
