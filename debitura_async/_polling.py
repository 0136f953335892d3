"""When to poll which ingestion job. Pure: the caller passes ``now``; nothing here sleeps.

The API has no webhook, so every outcome costs at least one ``GET /ingestion-jobs/{id}``. The
guide's naive plan polls every 3 s, spending about ``duration / 3`` polls per job. The adaptive
planner aims at one poll per job, placed just after the job finishes:

* **Duration model.** A job of ``n`` rows takes about ``g(n) * D`` seconds from acceptance, where
  ``g(n) = (n + c) / (N + c)`` scales a full batch of ``N`` rows down to ``n`` (``c`` is the
  prior's per-job overhead expressed in rows) and ``D`` is learned.
* **Scout.** Until ``D`` is known, one job is polled early and again to measure its processing
  pace from the ``rowsSucceeded + rowsFailed`` progress the API reports, then at its predicted end;
  the others wait on the (pessimistic) prior and are rescheduled the moment the scout reports.
* **Quantile tracking.** ``D`` then follows the ``1 - late_target`` quantile of the observed
  durations by stochastic approximation on what each first poll finds: a job still running nudges
  ``D`` up (but never past that job's own duration, which its progress tells), a finished one
  nudges it down (in log space, so the rule is scale-free; the downward step grows during long
  runs of timely polls, so a pessimistic prior is unlearned in a few jobs).
* **Late jobs** are never left to a blind cadence: their progress (rows done at two instants, or
  the learned pace) predicts the remaining time, and they are polled again just after it.
* **FIFO.** The server starts jobs in order, so a job seen still *Queued* means every job accepted
  after it cannot have started either; their first polls move back accordingly.

:class:`PollPolicy` ``.fixed(3.0)`` gives the naive cadence (the benchmarks' baseline).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Literal

import attrs

__all__ = ["PollPlanner", "PollPolicy"]

_QUEUED = 0
_IN_PROGRESS = 1


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the ingestion pipeline spends its polls. Times are seconds.

    >>> PollPolicy()                 # adaptive, prior from the guide (1000 rows ~ 30 s)
    >>> PollPolicy.fixed(3.0)        # the guide's naive cadence
    >>> PollPolicy().scaled(100)     # for an emulator running 100x faster than real time
    """

    strategy: Literal["adaptive", "fixed"] = "adaptive"
    interval: float = 3.0
    """Fixed strategy: the cadence. Adaptive: the wait after a poll that taught nothing new."""
    expected_base: float = 2.0
    """Prior: seconds a job takes regardless of its size."""
    expected_per_row: float = 0.028
    """Prior: seconds per row (1000 rows ~ 30 s, the guide's upper figure)."""
    reference_rows: int = 1000
    late_target: float = 0.07
    """Share of first polls allowed to find their job unfinished (lower: later first polls)."""
    min_interval: float = 0.05
    max_interval: float = 60.0
    learning_rate: float = 0.02

    @classmethod
    def fixed(cls, interval: float = 3.0) -> PollPolicy:
        return cls(strategy="fixed", interval=interval)

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy for a server ``factor`` times faster (e.g. a time-scaled emulator)."""
        return attrs.evolve(
            self,
            interval=self.interval / factor,
            expected_base=self.expected_base / factor,
            expected_per_row=self.expected_per_row / factor,
            min_interval=self.min_interval / factor,
            max_interval=self.max_interval / factor,
        )

    def prior(self, rows: int) -> float:
        return self.expected_base + self.expected_per_row * rows


@attrs.define
class _Job:
    key: Hashable
    rows: int
    accepted_at: float
    seq: int
    due: float
    polls: int = 0
    role: Literal["normal", "scout", "waiting"] = "normal"
    scheduled_by_model: bool = False
    progress: list[tuple[float, int]] = attrs.field(factory=list)
    last_poll_at: float | None = None
    not_started_before: float = float("-inf")


class PollPlanner:
    """Decides when each accepted job is polled next, from everything observed so far."""

    def __init__(self, policy: PollPolicy | None = None) -> None:
        self.policy = policy or PollPolicy()
        self._jobs: dict[Hashable, _Job] = {}
        self._seq = 0
        self._duration: float | None = None  # learned D for a reference-size batch
        self._pace: float | None = None  # learned seconds per row while processing
        self._run_on_time = 0
        self._scout: Hashable | None = None
        self._calibrated = False  # a scout was caught mid-processing and its end measured
        self.first_polls = 0
        self.late_first_polls = 0

    @classmethod
    def calibrated(cls, policy: PollPolicy | None, duration: float) -> PollPlanner:
        """A planner that already knows a reference-size batch takes about ``duration`` s
        (no scout): for a caller that measured its server before, and for tests."""
        planner = cls(policy)
        planner._duration = duration
        planner._calibrated = True
        return planner

    # -- model ---------------------------------------------------------------------------------

    @property
    def learned_duration(self) -> float | None:
        """The learned first-poll delay for a reference-size batch (None until measured)."""
        return self._duration

    def _g(self, rows: int) -> float:
        p = self.policy
        c = p.expected_base / p.expected_per_row
        return (rows + c) / (p.reference_rows + c)

    def _pace_estimate(self) -> float:
        return self._pace if self._pace is not None else self.policy.expected_per_row

    def _learn_pace(self, sample: float) -> None:
        if sample <= 0 or not math.isfinite(sample):
            return
        self._pace = sample if self._pace is None else 0.7 * self._pace + 0.3 * sample

    def _nudge(self, late: bool, *, measured: float | None = None) -> None:
        """Stochastic approximation of the (1 - late_target) quantile, in log space.

        A late first poll moves D up by ``rate * (1 - q)``, a timely one down by ``rate * q``, so
        D settles where a share ``q`` of first polls is late. Runs that would be improbable at
        the target (``3/q`` timely in a row) grow the downward step by 1.25x each, so a pessimistic
        start is unlearned quickly. (Late polls are never accelerated: in a FIFO pipeline they come
        in correlated bursts, and each is followed by a progress-based second poll anyway.)
        """
        if self._duration is None:
            return
        p = self.policy
        q = p.late_target
        if late:
            self._run_on_time = 0
            raised = self._duration * math.exp(p.learning_rate * (1.0 - q))
            if measured is not None:  # never past the late job's own (measured) duration
                raised = min(raised, max(self._duration, measured))
            self._duration = raised
        else:
            self._run_on_time += 1
            self._run_late = 0
            excess = max(0, self._run_on_time - math.ceil(3.0 / q))
            step = p.learning_rate * 1.25 ** min(excess, 20)
            self._duration *= math.exp(-min(step, 0.3) * q)

    def _set_duration(self, measured: float, now: float) -> None:
        # First measurement: a little above the one job seen, then quantile tracking takes over.
        self._duration = measured * 1.05
        for job in self._jobs.values():
            if job.role != "scout" and job.polls == 0:
                job.role = "normal"
                job.due = max(self._first_due(job), job.not_started_before)
                # Only a first poll placed by the model, in the future, tells about the model.
                job.scheduled_by_model = job.due > now

    def _expected(self, rows: int) -> float:
        """Best current guess of a job's duration: the learned model, else the prior."""
        if self._duration is None:
            return self.policy.prior(rows)
        return self._g(rows) * self._duration

    def _first_due(self, job: _Job) -> float:
        if self._duration is None:
            return job.accepted_at + self.policy.prior(job.rows)
        return job.accepted_at + self._g(job.rows) * self._duration

    # -- API -------------------------------------------------------------------------------------

    def add(self, key: Hashable, rows: int, now: float) -> float:
        """A job was accepted at ``now``; returns when to poll it first."""
        p = self.policy
        job = _Job(key=key, rows=rows, accepted_at=now, seq=self._seq, due=now)
        self._seq += 1
        if p.strategy == "fixed":
            job.due = now + p.interval
        elif self._scout is None and not self._calibrated:
            job.role = "scout"
            self._scout = key
            job.due = now + 0.5 * self._expected(rows)
        elif self._duration is not None:
            job.due = self._first_due(job)
            job.scheduled_by_model = True
        else:
            job.role = "waiting"
            job.due = self._first_due(job)
        self._jobs[key] = job
        return job.due

    def due(self, key: Hashable) -> float:
        return self._jobs[key].due

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def items(self) -> Iterator[tuple[Hashable, float]]:
        """(key, due) of every tracked job."""
        return ((k, j.due) for k, j in self._jobs.items())

    def polls(self, key: Hashable) -> int:
        return self._jobs[key].polls

    def remove(self, key: Hashable) -> None:
        job = self._jobs.pop(key, None)
        if job is not None and key == self._scout:
            self._scout = None
            self._promote_scout()

    def retry_later(self, key: Hashable, now: float, failures: int) -> float:
        """A poll failed (transport error, 404 that may be transient): back off and try again."""
        job = self._jobs[key]
        wait = min(self.policy.max_interval, self.policy.interval * (2 ** min(failures - 1, 6)))
        job.due = now + max(self.policy.min_interval, wait)
        return job.due

    def observe(
        self, key: Hashable, *, status: int, processed: int, total: int, now: float
    ) -> bool:
        """Record a poll's answer at ``now``; returns True when the job is terminal (and drops it).

        ``status`` is the API's AsyncJobStatus value, ``processed`` is rowsSucceeded + rowsFailed.
        """
        job = self._jobs[key]
        job.polls += 1
        previous_poll = job.last_poll_at
        job.last_poll_at = now
        p = self.policy
        terminal = status >= 2
        first = job.polls == 1

        if p.strategy == "fixed":
            if terminal:
                del self._jobs[key]
            else:
                job.due = now + p.interval
            return terminal

        if first and job.scheduled_by_model:
            self.first_polls += 1
            measured = None
            if not terminal:
                self.late_first_polls += 1
                if status == _IN_PROGRESS and processed > 0:
                    remaining = (max(total, job.rows) - processed) * self._pace_estimate()
                    measured = (now + remaining - job.accepted_at) / self._g(job.rows)
            self._nudge(late=not terminal, measured=measured)

        if terminal:
            if job.role == "scout":
                self._finish_scout(job, now, previous_poll)
            self.remove(key)
            return True

        if status == _IN_PROGRESS and processed > 0:
            if job.progress:
                t0, k0 = job.progress[-1]
                if processed > k0 and now > t0:
                    self._learn_pace((now - t0) / (processed - k0))
            job.progress.append((now, processed))
        elif status == _QUEUED:
            self._fifo_push_back(job, now)

        job.due = self._next_due(job, status=status, processed=processed, total=total, now=now)
        return False

    # -- internals -------------------------------------------------------------------------------

    def _next_due(self, job: _Job, *, status: int, processed: int, total: int, now: float) -> float:
        p = self.policy
        rows = max(total, job.rows, 1)
        if status == _IN_PROGRESS and processed > 0:
            if job.role == "scout" and len(job.progress) == 1:
                # Measure the pace: look again after a short while.
                wait = 0.15 * p.prior(rows)
            else:
                wait = (rows - processed) * self._pace_estimate() * 1.05
        elif status == _IN_PROGRESS:
            wait = p.expected_base * 0.5 + rows * self._pace_estimate()
        else:  # queued: it has all of its work ahead of it
            full = self._g(rows) * self._duration if self._duration is not None else p.prior(rows)
            wait = 0.5 * full
        return now + min(p.max_interval, max(p.min_interval, wait))

    def _finish_scout(self, job: _Job, now: float, previous_poll: float | None) -> None:
        # The scout's end lies between its last unfinished poll and now; with the pace measured,
        # its last progress point pins it down more tightly. A scout that was already done at
        # its first poll only gives an upper bound: the next job scouts again, twice as early.
        estimate = now
        if job.progress:
            self._calibrated = True
            t_last, k_last = job.progress[-1]
            predicted = t_last + (job.rows - k_last) * self._pace_estimate()
            estimate = min(now, max(predicted, previous_poll or t_last))
        measured = max(estimate - job.accepted_at, 1e-6) / self._g(job.rows)
        if self._duration is None or measured < self._duration:
            self._set_duration(measured, now)

    def _promote_scout(self) -> None:
        if self._calibrated:
            return
        unpolled = [j for j in self._jobs.values() if j.polls == 0]
        if unpolled:
            nxt = min(unpolled, key=lambda j: j.seq)
            nxt.role = "scout"
            nxt.scheduled_by_model = False
            self._scout = nxt.key
            nxt.due = min(nxt.due, nxt.accepted_at + 0.5 * self._expected(nxt.rows))

    def _fifo_push_back(self, queued: _Job, now: float) -> None:
        """``queued`` had not started at ``now``; later-accepted jobs cannot have started either."""
        for job in self._jobs.values():
            if job.seq > queued.seq and job.polls == 0:
                job.not_started_before = max(job.not_started_before, now)
                earliest = now + 0.5 * (
                    self._g(job.rows) * self._duration
                    if self._duration is not None
                    else self.policy.prior(job.rows)
                )
                job.due = max(job.due, earliest)
