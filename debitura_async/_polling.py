"""When to poll which ingestion job. Pure: the caller passes ``now``; nothing here sleeps.

The API has no webhook, so every outcome costs at least one ``GET /ingestion-jobs/{id}``; the
physical limit is one poll per job, placed the instant it ends. The guide's 3 s cadence spends
``duration / 3`` polls per job and finds each result 1.5 s late on average. The adaptive planner
uses everything the answers reveal:

* **A job's own progress.** ``rowsSucceeded + rowsFailed`` grows evenly while a job is
  InProgress, so one mid-job answer predicts its end; two fix its pace exactly. The first poll is
  placed early enough that most jobs are seen shortly before their end (where the prediction is
  sharp), the second just after the predicted end. When one answer leaves the end uncertain (the
  job is early in its work and the time jobs spend at zero rows varies, as a fixed set-up time
  or as a share of the duration: whichever the measured jobs say), a probe measures the pace;
  jobs the two set-up models disagree about are probed now and then to keep the choice honest.
* **FIFO order.** The server starts our jobs in order on a pool of workers; every job's start is
  predicted from the ends known or predicted ahead of it (:func:`fifo_starts`). A job seen Queued
  postpones every later one; a finished job tells when the next queued one started.
* **Apparent parallelism**, learned: the pool size whose FIFO starts best explain every Queued,
  InProgress and zero-rows answer of the recent jobs (:func:`fifo_misfit`); none (every job
  starts when accepted) until some queueing is seen.
* **Drift.** Durations are learned over a short window of recent jobs (``PollPolicy.window``),
  normalised by size; the prior only starts the first three jobs (*scouts*, polled early and
  twice), so it is unlearned within the first jobs whichever way it was wrong.
* **Budget.** ``PollPolicy.prefer`` and :meth:`PollPlanner.set_scarcity` set an *economy* in
  [0, 1], which prices a poll in seconds of delay (5 % of a typical duration at 0, 100 % at 1,
  geometric between). The first poll goes where expected delay + price x expected extra polls
  is least over the recent durations (:func:`best_first_wait`): at 0 about two polls per job and
  results seen within ~1 % of a duration; toward 1 more jobs are caught by their first poll, a
  little late, exploration probes stop and uncertain ends are trusted more.

``PollPolicy.fixed(3.0)`` gives the naive cadence (the benchmarks' baseline).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Container, Hashable, Iterable, Iterator

from ._polling_model import (
    FifoEntry,
    FifoPool,
    Samples,
    best_first_wait,
    date_answer,
    fifo_misfit,
    measured_pace,
)
from ._polling_plan import _Planning
from ._polling_policy import Mode, PollPolicy, PollStats
from ._polling_setup import SetupModel
from ._polling_state import (
    _CENSORED_SHRINK,
    _CLEAR_AFTER,
    _CLEAR_CHOICE,
    _CONCURRENT,
    _EARLY,
    _EXPLORE_MAX,
    _EXPLORE_MIN,
    _HISTORY,
    _PRICE_HIGH,
    _PRICE_LOW,
    _QUEUED,
    _REFIT_EVERY,
    _SCOUTS,
    _TOLERANCE,
    _UNMEASURED_SETUP,
    _WARM_UP,
    _check_scarcity,
    _Job,
    _Order,
    _order,
)

__all__ = ["PollPlanner", "PollPolicy", "PollStats"]


class PollPlanner(_Planning):
    """Decides when each accepted job is polled next, from everything observed so far.

    Keys are any hashable job ids. Jobs are taken to be started by the server in the order they
    were :meth:`add`-ed (acceptance order).
    """

    def __init__(self, policy: PollPolicy | None = None, *, scarcity: float = 0.0) -> None:
        if policy is not None and not isinstance(policy, PollPolicy):
            raise TypeError(f"policy must be a PollPolicy, not {type(policy).__name__}")
        self.policy = policy or PollPolicy()
        self._scarcity = _check_scarcity(scarcity)
        self._jobs: dict[Hashable, _Job] = {}
        self._history: deque[tuple[_Order, FifoEntry]] = deque(maxlen=_HISTORY)
        self._seq = 0
        self._last_add: tuple[float, int] | None = None  # (when, group) of the latest add
        self._submit_trip = math.inf  # the shortest submission round trip seen (sent to known)
        self._durations = Samples(self.policy.window)  # seconds, for a reference-size job
        # a reference job's duration quantiles, for the durations' version (replans ask often)
        self._reference: tuple[tuple[int, bool], dict[float, float]] = ((-1, False), {})
        self._sizes: dict[int, float] = {}  # _g's values by batch size (a handful of sizes)
        self._setup = SetupModel(self.policy.window)  # time at zero rows after the start
        self._explore_every = _EXPLORE_MIN
        self._explore_countdown = 0
        self._calibrated = False
        self._wait_cache: tuple[tuple[int, float], float] | None = None
        self._offset_cache: (
            tuple[tuple[int, int, bool, bool], tuple[tuple[float, float, float], bool]] | None
        ) = None
        self._workers: int | None = None
        # (context, FIFO order key of the last job, pool) as the last replan left them
        self._tail: tuple[tuple[object, ...] | None, _Order, FifoPool] | None = None
        self._queueing_seen = False
        self._finishes_since_fit = 0
        self._max_active = 0
        self._forgotten = False  # the history has dropped jobs (its first ones lack context)
        self._counts = dict.fromkeys(
            ("added", "finished", "polls", "first", "first_done", "queued", "probe", "early"), 0
        )

    @classmethod
    def calibrated(cls, policy: PollPolicy | None, duration: float) -> PollPlanner:
        """A planner that already knows a reference-size job takes about ``duration`` s (no
        scout): for a caller that measured its server before, and for tests."""
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise TypeError(f"duration must be a number of seconds, not {duration!r}")
        if not (math.isfinite(duration) and duration > 0):
            raise ValueError(f"duration must be positive and finite, not {duration!r}")
        planner = cls(policy)
        for _ in range(3):
            planner._durations.add(duration)
        planner._calibrated = True
        return planner

    # -- budget ----------------------------------------------------------------------------------

    def set_scarcity(self, value: float) -> None:
        """How scarce requests are right now: 0 (plenty of budget) .. 1 (nearly spent).

        E.g. the share of the key's hourly budget already used, or other traffic on the key. It
        moves the planner from the policy's preference toward fewer polls; takes effect on the
        next plan (every answer, :meth:`add` and this call replan).
        """
        self._scarcity = _check_scarcity(value)
        self._replan()

    @property
    def scarcity(self) -> float:
        return self._scarcity

    @property
    def economy(self) -> float:
        """0..1: the policy's weight moved toward saving requests by the scarcity."""
        w = self.policy.weight
        return w + (1.0 - w) * self._scarcity

    @property
    def mode(self) -> Mode:
        if self.policy.strategy == "fixed":
            return "fixed"
        e = self.economy
        return "latency" if e < 1 / 3 else "balanced" if e < 2 / 3 else "requests"

    def stats(self) -> PollStats:
        c = self._counts
        return PollStats(
            mode=self.mode,
            economy=self.economy,
            scarcity=self._scarcity,
            jobs_added=c["added"],
            jobs_finished=c["finished"],
            polls=c["polls"],
            first_polls=c["first"],
            first_polls_found_done=c["first_done"],
            polls_found_queued=c["queued"],
            probe_polls=c["probe"],
            end_polls_early=c["early"],
            learned_duration=self.learned_duration,
            parallelism=self._workers,
        )

    # -- model -----------------------------------------------------------------------------------

    @property
    def learned_duration(self) -> float | None:
        """Median duration of a reference-size job over the recent window (None until measured)."""
        return self._durations.quantile(0.5) if self._calibrated else None

    @property
    def parallelism(self) -> int | None:
        """The server's apparent number of workers for our jobs (None: no queueing seen yet)."""
        return self._workers

    def _g(self, rows: int) -> float:
        """Duration of ``rows`` rows relative to a reference-size job (the prior's shape)."""
        value = self._sizes.get(rows)
        if value is None:
            if len(self._sizes) >= 1024:  # sizes a server made up: never an unbounded cache
                self._sizes.clear()
            c = self.policy.expected_base / self.policy.expected_per_row
            value = self._sizes[rows] = (max(rows, 1) + c) / (self.policy.reference_rows + c)
        return value

    def _duration(self, rows: int, q: float) -> float:
        """The q-quantile duration of a job of ``rows`` rows (the prior until measured)."""
        key = (self._durations.version, self._calibrated)
        if self._reference[0] != key:
            self._reference = (key, {})
        values = self._reference[1]
        value = values.get(q)
        if value is None:
            value = values[q] = self._reference_duration(q)
        return self._g(rows) * value

    def _reference_duration(self, q: float) -> float:
        value = self._durations.quantile(q) if self._calibrated else None
        if value is None:
            median = self._durations.quantile(0.5)  # censored scouts only: they bound it
            prior = self.policy.prior(self.policy.reference_rows)
            value = prior if median is None else min(prior, median)
        return value

    def _offset_model(self, *, other: bool = False) -> tuple[tuple[float, float, float], bool]:
        """Bounds of the time jobs spend at zero rows, and whether it scales with duration.

        Seconds (a fixed set-up time) or shares of the duration (a slow path slowing all of a
        job): whichever varies less across the jobs whose pace was measured (``other``: the
        one that varies more, to see whether the two disagree about a job)."""
        key = (self._setup.version, self._durations.version, self._calibrated, other)
        if self._offset_cache is not None and self._offset_cache[0] == key:
            return self._offset_cache[1]
        model = self._offset_model_uncached(other=other)
        self._offset_cache = (key, model)
        return model

    def _offset_model_uncached(self, *, other: bool) -> tuple[tuple[float, float, float], bool]:
        measured = self._setup.bounds(other=other)
        if measured is not None:
            return measured
        high = self.policy.expected_base
        if self._calibrated:  # at most a tenth of a typical job (the guide's is ~1/27): a wider
            # guess made the first jobs of a server faster than the prior take a probe each
            high = min(high, _UNMEASURED_SETUP * self._duration(self.policy.reference_rows, 0.5))
        return (0.0, 0.5 * high, high), False

    def poll_price(self) -> float:
        """What one poll is worth, in seconds of detection delay, at the current economy
        (geometric between 5 % and 100 % of a typical reference-size job's duration)."""
        typical = self._duration(self.policy.reference_rows, 0.5)
        return float(typical * _PRICE_LOW * (_PRICE_HIGH / _PRICE_LOW) ** self.economy)

    def _first_wait(self, rows: int) -> float:
        """From a job's start to its first poll: the cheapest wait over the recent durations at
        the current poll price; while few are known, half the shortest (an answer mid-job is
        worth more than a guess)."""
        if len(self._durations) < _WARM_UP:
            # the first few measured may all be long ones (a heavy tail): never wait longer
            # than the prior says until more are known
            shortest = min(self._duration(rows, 0.0), self.policy.prior(rows))
            return 0.5 * shortest
        key = (self._durations.version, self.economy)
        if self._wait_cache is None or self._wait_cache[0] != key:
            wait = best_first_wait(self._durations.sorted(), self.poll_price(), _EARLY)
            self._wait_cache = (key, wait)
        return self._g(rows) * self._wait_cache[1]

    # -- API -------------------------------------------------------------------------------------

    def add(self, key: Hashable, rows: int, now: float, *, sent: float | None = None) -> float:
        """A job of ``rows`` rows was accepted at ``now``; returns when to poll it first.

        ``sent``: when its submission was sent, if known. Jobs whose submissions overlapped
        (one sent before the previous one's answer came) may have reached the server in any
        order; the FIFO model orders them by what their polls show (started before queued).
        Without ``sent``, jobs added within a small share of a typical duration of each other
        count as concurrent."""
        if key in self._jobs:
            raise ValueError(f"job {key!r} is already tracked")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError(f"rows must be an int >= 0, not {rows!r}")
        group = self._group_of(now, sent)
        accepted = now if sent is None else self._accepted_at(sent, now)
        job = _Job(
            key=key,
            rows=rows,
            accepted=accepted,
            seq=self._seq,
            group=group,
            due=now,
            start=accepted,
            submitted=None if sent is None else (sent, now),
        )
        self._seq += 1
        self._counts["added"] += 1
        self._jobs[key] = job
        self._max_active = max(self._max_active, len(self._jobs))
        if self.policy.strategy == "fixed":
            job.due = now + self.policy.interval
        else:
            self._replan_added(job)
        return job.due

    def _accepted_at(self, sent: float, known: float) -> float:
        """When the server took the job: half-way through its submission's round trip, unless
        that took far longer than the shortest one seen (it waited on this side first: for a
        connection, the budget, the event loop), then half the shortest trip before it was
        known. The answer comes long after the server's clock started the job (a 1000-row body
        is uploaded, then checked): counting from it made every short set-up look shorter.
        The rule answers are dated by (:func:`._polling_model.date_answer`); a trip shorter
        than any before dates the tracked jobs again (:meth:`_redate`)."""
        trip = max(known - sent, 0.0)
        if trip < self._submit_trip:
            self._submit_trip = trip
            self._redate()
        return date_answer(sent, known, self._submit_trip)

    def _redate(self) -> None:
        """Date the tracked jobs' acceptance again by a shorter shortest trip. The first
        submissions go out together and take far longer than later ones (10-30 ms against 2-3
        over sockets, 2026-12-02): dated by the shortest trip known then, they looked accepted
        up to 4 ms early."""
        for job in self._jobs.values():
            if job.submitted is not None:
                job.accepted = max(job.accepted, date_answer(*job.submitted, self._submit_trip))

    def _group_of(self, now: float, sent: float | None) -> int:
        last = self._last_add
        if sent is not None and not (isinstance(sent, int | float) and math.isfinite(sent)):
            raise ValueError(f"sent must be a finite time, not {sent!r}")
        if last is None:
            concurrent = False
        elif sent is not None:
            concurrent = sent < last[0]
        else:
            typical = self._duration(self.policy.reference_rows, 0.5)
            concurrent = now - last[0] <= _CONCURRENT * typical
        group = last[1] if concurrent and last is not None else self._seq
        self._last_add = (now, group)
        return group

    def due(self, key: Hashable) -> float:
        return self._jobs[key].due

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def items(self) -> Iterator[tuple[Hashable, float]]:
        """(key, due) of every tracked job."""
        return ((k, j.due) for k, j in self._jobs.items())

    def next_due(self, exclude: Container[Hashable] = ()) -> tuple[Hashable, float] | None:
        """The tracked job due first (skipping ``exclude``, e.g. polls in flight), or None."""
        best: _Job | None = None
        for job in self._jobs.values():
            if job.key not in exclude and (best is None or job.due < best.due):
                best = job
        return None if best is None else (best.key, best.due)

    def polls(self, key: Hashable) -> int:
        return self._jobs[key].polls

    def remove(self, key: Hashable, now: float | None = None) -> None:
        """Stop tracking ``key`` (given up, or finished elsewhere); unknown keys are ignored.

        ``now`` (if given) is taken as an upper bound of its end for the FIFO model."""
        job = self._jobs.pop(key, None)
        if job is None:
            return
        end = now if now is not None else (job.last_poll or job.due)
        self._remember(job, max(end, job.start))
        self._replan()

    discard = remove

    def retry_later(self, key: Hashable, now: float, failures: int) -> float:
        """A poll failed (transport error, 404 that may be transient): back off and try again."""
        job = self._jobs[key]
        p = self.policy
        wait = min(p.max_interval, p.interval * (2 ** min(max(failures, 1) - 1, 16)))
        job.forced = now + max(p.min_interval, wait)
        job.due = job.forced
        job.kind = "retry"
        return job.due

    def observe(
        self,
        key: Hashable,
        *,
        status: int,
        processed: int,
        total: int,
        now: float,
    ) -> bool:
        """Record a poll's answer at ``now``; returns True when the job is terminal (and drops it).

        ``status`` is the API's AsyncJobStatus value, ``processed`` is rowsSucceeded + rowsFailed.
        """
        job = self._jobs[key]
        job.version += 1
        job.polls += 1
        job.forced = None
        self._counts["polls"] += 1
        terminal = status >= 2
        if self.policy.strategy == "fixed":
            if terminal:
                self._drop(job)
            else:
                job.last_poll = now
                job.due = now + self.policy.interval
            return terminal
        self._count_answer(job, terminal=terminal, status=status, processed=processed)
        if terminal:
            self._finish(job, now)
        else:
            self._learn_running(job, status=status, processed=processed, total=total, now=now)
        job.last_poll = now
        self._replan()
        return terminal

    # -- learning --------------------------------------------------------------------------------

    def _count_answer(self, job: _Job, *, terminal: bool, status: int, processed: int) -> None:
        c = self._counts
        if job.polls == 1:
            c["first"] += 1
            c["first_done"] += terminal
        if status == _QUEUED:
            c["queued"] += 1
        if job.kind == "probe":
            c["probe"] += 1
        elif job.kind == "end" and not terminal:
            c["early"] += 1

    def _learn_running(
        self, job: _Job, *, status: int, processed: int, total: int, now: float
    ) -> None:
        job.rows = max(job.rows, total)
        if processed <= 0:
            job.zero_at = max(job.zero_at, now)
        if status == _QUEUED:
            job.not_before = max(job.not_before, now)
            job.blank_polls += 1
            self._queueing_seen = True
            self._fit_workers()
            return
        job.started_by = min(job.started_by, now)
        job.start = min(job.start, now)
        if processed <= 0:
            job.blank_polls += 1
            if job.started_idle is None:
                job.started_idle = now
                self._fit_workers()
            return
        first_point = not job.points
        if not job.points or processed > job.points[-1][1]:
            job.points = [*job.points[-1:], (now, processed)]
        if first_point and self._models_disagree(job):
            self._explore_countdown -= 1
            if self._explore_countdown <= 0:
                job.explore = True
                self._explore_countdown = self._explore_every
        measured = measured_pace(job.points)
        if measured is not None:  # the pace is measured: processing began (and it started) by
            job.started_by = min(job.started_by, measured[1])
        self._learn_offset(job)
        self._validate(job)
        if len(self._durations) < _WARM_UP and not job.sampled:
            ex = self._extrapolate(job)
            if ex is None:
                return
            # one answer calibrates only from a start seen closely (else it may have queued)
            seen_close = now - max(job.accepted, job.zero_at) <= 0.5 * self._duration(job.rows, 0.5)
            if ex.exact or (seen_close and ex.spread <= 0.1 * (ex.end - job.start)):
                start = self._measured_start(job)
                self._durations.add((ex.end - start) / self._g(job.rows))
                self._calibrated = job.sampled = True

    def _measured_start(self, job: _Job) -> float:
        """The start a duration counts from: the model's, unless the job's measured pace says
        its processing began far later (it waited in a queue the model did not know of)."""
        measured = measured_pace(job.points)
        if measured is None or measured[0] <= 0:
            return job.start
        pace, began = measured
        (_, _, high), proportional = self._offset_model()
        processing = job.rows * pace
        setup = high / max(1.0 - high, 0.05) * processing if proportional else high
        return max(job.start, began - setup)

    def _fit_workers(self) -> None:
        """The server's apparent parallelism: the pool size whose FIFO starts best explain every
        Queued / InProgress answer of the recent jobs (ties: the larger pool, whose error costs
        a poll rather than a late one). None until some queueing was seen."""
        if not self._queueing_seen:
            return
        self._finishes_since_fit = 0
        entries = self._fifo_entries()
        typical = self._duration(self.policy.reference_rows, 0.5)
        (_, _, high), proportional = self._offset_model()
        setup = high * typical if proportional else high
        top = max(self._max_active, 1)
        skip = min(top, len(self._history)) if self._forgotten else 0
        candidates: Iterable[int] = range(top, 0, -1)  # the first time: every pool size
        if self._workers is not None:  # then: near the last fit (pools change little)
            near = range(max(1, self._workers - 2), min(top, self._workers + 2) + 1)
            candidates = sorted({top, *near}, reverse=True)
        best, best_misfit = top, math.inf
        for workers in candidates:
            misfit = fifo_misfit(entries, workers, typical, setup, skip)
            if misfit < best_misfit - 1e-9:
                best, best_misfit = workers, misfit
        self._workers = None if best >= top else best

    def _models_disagree(self, job: _Job) -> bool:
        """Would a fixed set-up time and a proportional one predict different ends for this job
        (one answer, early in its work)? Then only a probe tells which holds."""
        if len(self._setup) < 3 or (
            len(self._setup) >= _CLEAR_AFTER and self._setup.choice_is_clear(_CLEAR_CHOICE)
        ):
            return False
        ex, alt = self._extrapolate(job), self._extrapolate(job, other=True)
        if ex is None or alt is None or ex.exact:
            return False
        return abs(ex.end - alt.end) > _TOLERANCE * self._duration(job.rows, 0.5)

    def _validate(self, job: _Job) -> None:
        """Did the one-answer prediction of an explored job hold? Explore less while it does."""
        ex = self._extrapolate(job)
        if ex is None:
            return
        if len(job.points) == 1:
            job.guess = ex
        elif job.explore and job.guess is not None:
            typical = self._duration(job.rows, 0.5)
            guess = job.guess  # held: the end fell within what one answer said, or near its guess
            held = guess.earliest <= ex.end <= guess.latest
            held = held or abs(guess.end - ex.end) <= _TOLERANCE * typical
            every = self._explore_every * 2 if held else _EXPLORE_MIN
            self._explore_every = min(max(every, _EXPLORE_MIN), _EXPLORE_MAX)
            self._explore_countdown = min(self._explore_countdown, self._explore_every)
            job.guess = None

    def _learn_offset(self, job: _Job) -> None:
        measured = measured_pace(job.points)
        if measured is None:
            return
        pace, began = measured
        t1, k1 = job.points[-1]
        end = t1 + max(job.rows - k1, 0) * pace
        if began >= job.start - 2 * pace and end > job.start:
            offset = max(0.0, began - job.start)
            self._setup.add(offset, end - job.start)

    def _predicted_end(self, job: _Job) -> float:
        if job.points:
            ex = self._extrapolate(job)
            if ex is not None:
                return max(ex.end, job.last_poll or ex.end)
        end = job.start + self._duration(job.rows, 0.5)
        return max(end, job.last_poll or end)

    def _finish(self, job: _Job, now: float) -> None:
        self._counts["finished"] += 1
        # Found done at `now`: it started some time before, at least half the shortest recent
        # duration before (evidence for the pool's size, like a Queued answer).
        if len(self._durations) >= _SCOUTS:
            shortest = self._duration(job.rows, 0.0)
            job.started_by = min(job.started_by, now - 0.5 * shortest)
        if job.points:
            ex = self._extrapolate(job)
            end = now if ex is None else min(now, max(ex.end, job.last_poll or ex.end))
            if not job.sampled:
                self._durations.add((end - self._measured_start(job)) / self._g(job.rows))
                self._calibrated = True
        else:  # found done without a progress answer: it ended some time before now
            # (the model's guess, not `now`: a late end would delay every FIFO successor)
            end = min(now, max(job.start + self._duration(job.rows, 0.5), job.last_poll or -1.0))
            if not job.sampled and now > job.start:
                self._durations.add(_CENSORED_SHRINK * (now - job.start) / self._g(job.rows))
        self._remember(job, end)
        self._drop(job)
        self._finishes_since_fit += 1
        if self._finishes_since_fit >= _REFIT_EVERY:  # ends known better: recount now and then
            self._fit_workers()

    def _remember(self, job: _Job, end: float) -> None:
        self._forgotten = self._forgotten or len(self._history) == self._history.maxlen
        entry = FifoEntry(
            job.accepted,
            job.start,
            end,
            job.not_before,
            job.started_by,
            idle_at=job.started_idle,
            size=self._g(job.rows),
        )
        self._history.append((_order(job, finished=True), entry))

    def _drop(self, job: _Job) -> None:
        del self._jobs[job.key]
