"""Where each tracked job's next poll goes: the planning half of :class:`._polling.PollPlanner`
(a mixin; the learning half and the API are in :mod:`._polling`). Pure: ``now`` comes in, no
clock, no event loop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING

from ._polling_model import (
    Extrapolation,
    FifoEntry,
    FifoPool,
    Samples,
    extrapolate,
    fifo_starts,
)
from ._polling_policy import PollPolicy
from ._polling_setup import SetupModel
from ._polling_state import (
    _BACKLOG,
    _DATING,
    _DATING_CAP,
    _END_AIM,
    _PROBE_AT,
    _PROBE_CAP,
    _PROBE_FLOOR,
    _PROBE_LATE,
    _QUEUED_STEP,
    _SCOUT_FRACTION,
    _SCOUTS,
    _TOLERANCE,
    _TRUST_PRICES,
    _UNSURE_START,
    _Job,
    _Order,
    _order,
)

__all__: list[str] = []


class _Planning:
    """The planner's scheduling: FIFO starts, then each job's next due."""

    policy: PollPolicy
    _jobs: dict[Hashable, _Job]
    _history: deque[tuple[_Order, FifoEntry]]
    _workers: int | None
    _calibrated: bool
    _setup: SetupModel
    _durations: Samples
    _tail: tuple[tuple[object, ...] | None, _Order, FifoPool] | None

    if TYPE_CHECKING:

        @property
        def economy(self) -> float: ...
        def poll_price(self) -> float: ...
        def _g(self, rows: int) -> float: ...
        def _duration(self, rows: int, q: float) -> float: ...
        def _first_wait(self, rows: int) -> float: ...
        def _predicted_end(self, job: _Job) -> float: ...
        def _offset_model(
            self, *, other: bool = False
        ) -> tuple[tuple[float, float, float], bool]: ...

    _queueing_seen: bool
    _submit_trip: float

    # -- predicting --------------------------------------------------------------------------------

    def _extrapolate(self, job: _Job, *, other: bool = False) -> Extrapolation | None:
        bounds, proportional = self._offset_model(other=other)
        start = self._start_for_pace(job, bounds, proportional)
        if start is None:  # the model's start, bracketed by what was seen of the job
            start, began_after = job.start, job.zero_at
            latest = job.started_idle if self._start_may_lag() else None
        else:  # a start its own pace implies: the earlier answers' bounds are not used
            began_after, latest = -math.inf, None
        earliest = None
        fit = self._setup.share_fit() if proportional and len(job.points) == 1 else None
        if fit is not None:  # a set-up in proportion, measured: the start is known to a window
            share, (early, mid, late) = fit
            bounds = (share, share, share)
            earliest = start + early
            latest = start + late if latest is None else max(start + late, latest)
            start += mid
        return extrapolate(
            job.points,
            job.rows,
            start,
            bounds,
            proportional=proportional,
            began_after=began_after,
            start_earliest=earliest,
            start_latest=latest,
        )

    def _start_may_lag(self) -> bool:
        """May a job have started after its acceptance (it queued)? Not while no job was ever
        seen queued and few are outstanding: then a job seen at zero rows is in its set-up."""
        return self._queueing_seen or self._workers is not None or len(self._jobs) > _BACKLOG

    def _start_for_pace(
        self, job: _Job, bounds: tuple[float, float, float], proportional: bool
    ) -> float | None:
        """None when one progress answer can be extrapolated from the FIFO start estimate;
        if that leaves the rows already done no time to be done in (the estimate was wrong:
        an order or pool the model got wrong, or answers whose round trips overlapped), the
        start a typical pace implies (and the earlier answers' bounds are not used)."""
        if len(job.points) != 1:
            return None
        t1, k1 = job.points[0]
        typical = self._duration(job.rows, 0.5)
        setup = bounds[1] * typical if proportional else bounds[1]
        pace = max(typical - setup, 0.0) / max(job.rows, 1)
        implied = t1 - k1 * pace - setup
        if t1 - max(job.start, job.zero_at) < _UNSURE_START * typical:
            return max(min(implied, job.start), job.accepted)
        queue_plausible = self._workers is not None or len(self._jobs) > _BACKLOG
        if not queue_plausible or t1 - max(job.zero_at, job.accepted) <= 0.5 * typical:
            return None  # the start is the acceptance, or bracketed by what was seen
        # Behind a (possible) queue, not seen waiting: its start is a guess. One answer
        # early in its work magnifies a wrong guess; a duration far from typical says so.
        share = min(k1 / max(job.rows, 1), 1.0)
        guessed = setup + max(t1 - job.start - setup, 0.0) / max(share, 1e-9)
        if 0.5 * typical <= guessed <= 2.0 * typical:
            return None
        return max(implied, job.accepted)

    # -- planning --------------------------------------------------------------------------------

    def _replan(self) -> None:
        self._tail = None
        if self.policy.strategy == "fixed" or not self._jobs:
            return
        active = list(self._jobs.values())  # added in seq order, and a dict keeps it
        context = self._context()
        order = self._fifo_order(context)
        pool = FifoPool()
        starts = fifo_starts(
            [entry for _, entry in order],
            self._workers,
            self._duration(self.policy.reference_rows, 0.5),
            pool=pool,
        )
        by_seq = {o[3]: start for (o, _), start in zip(order, starts, strict=True)}
        # Until a duration is measured, the first few jobs look early; the others wait for them.
        scouts = set() if self._calibrated else {j.seq for j in active[:_SCOUTS]}
        settled = True  # no FIFO entry depends on a start that moved (its pool stays true)
        for job in active:
            start = by_seq[job.seq]
            if job.points and start != job.start:
                settled = False
            job.start = start
            if job.forced is None:
                scout = job.seq in scouts
                memo = (context, job.version, start, scout)
                if context is None or job.memo != memo:
                    job.due = self._clamp(job, self._plan(job, scout=scout))
                    job.memo = memo
        if settled:
            self._tail = (context, order[-1][0], pool)

    def _replan_added(self, job: _Job) -> None:
        """Replan after ``job`` was added: when it comes last in the FIFO order and nothing
        else changed since the last replan, no other job's start or plan can change (a FIFO
        start depends on the jobs ahead only), so only its own start and plan are made, from
        the pool the last replan left; else a whole replan."""
        tail = self._tail
        context = self._context()
        key = _order(job)
        if tail is None or context is None or tail[0] != context or not tail[1] < key:
            self._replan()
            return
        pool = tail[2]
        entry = self._entry(job, context)
        typical = self._duration(self.policy.reference_rows, 0.5)
        (job.start,) = fifo_starts([entry], self._workers, typical, pool=pool)
        self._tail = (context, key, pool)
        scout = not self._calibrated and len(self._jobs) <= _SCOUTS
        job.due = self._clamp(job, self._plan(job, scout=scout))
        job.memo = (context, job.version, job.start, scout)

    def _context(self) -> tuple[object, ...] | None:
        """Everything a job's plan and FIFO entry read beyond the job, its start and whether it
        scouts. A job whose answers, start, part and context are those of its last plan keeps
        that plan: the same inputs, the same due (None: no memo)."""
        return (
            self._calibrated,
            self._durations.version,
            self._setup.version,
            self.economy,
            self._workers,
            self._queueing_seen,
            len(self._jobs) > _BACKLOG,
            self.policy,
            self._submit_trip,
        )

    def _fifo_order(self, context: tuple[object, ...] | None) -> list[tuple[_Order, FifoEntry]]:
        """Recent finished jobs and the tracked ones, in the order the server started them:
        acceptance order, and within a batch of concurrent submissions started before unseen
        before queued (see :func:`_order`)."""
        entries = [
            *self._history,
            *((_order(j), self._entry(j, context)) for j in self._jobs.values()),
        ]
        entries.sort(key=lambda e: e[0])
        return entries

    def _fifo_entries(self) -> list[FifoEntry]:
        return [entry for _, entry in self._fifo_order(self._context())]

    def _entry(self, job: _Job, context: tuple[object, ...] | None) -> FifoEntry:
        key = (context, job.version, job.start)
        if context is not None and job.entry is not None and job.entry[0] == key:
            return job.entry[1]
        end = self._predicted_end(job) if job.points else None
        entry = FifoEntry(
            job.accepted,
            None,
            end,
            job.not_before,
            job.started_by,
            idle_at=job.started_idle,
            size=self._g(job.rows),
        )
        job.entry = (key, entry)
        return entry

    def _clamp(self, job: _Job, due: float) -> float:
        p = self.policy
        last = job.last_poll if job.last_poll is not None else job.accepted
        if job.last_poll is not None:
            due = max(due, job.last_poll + p.min_interval)
        return min(due, last + p.max_interval)

    def _plan(self, job: _Job, *, scout: bool) -> float:
        e = self.economy
        typical = self._duration(job.rows, 0.5)
        if job.points:
            return self._plan_running(job, typical)
        if not self._calibrated:
            job.kind = "scout" if scout else "first"
            if scout:
                return job.start + _SCOUT_FRACTION * typical * 2.0**job.blank_polls
            return job.start + typical
        job.kind = "first"
        due = job.start + self._first_wait(job.rows)
        if job.blank_polls and job.last_poll is not None and job.started_by < math.inf:
            # Still at zero rows: its set-up is long, so is the job (a heavy tail, a slow path):
            # back off geometrically, and past what a proportional set-up implies.
            elapsed = max(job.last_poll - job.start, 0.0)
            due = max(due, job.last_poll + max((0.1 + 0.2 * e) * typical, elapsed))
            (_, _, high), proportional = self._offset_model()
            if proportional and high > 0:
                due = max(due, job.start + 0.5 * elapsed / high)
        elif job.blank_polls and job.last_poll is not None:
            # Seen Queued again and again: the model's start is wrong (an order or a pool it
            # has not learned yet); never a poll storm, back off geometrically meanwhile.
            step = _QUEUED_STEP * typical * 2.0 ** min(job.blank_polls - 1, 16)
            due = max(due, job.last_poll + min(step, typical))
        return due

    def _dating_margin(self, job: _Job, ex: Extrapolation) -> float:
        """How much later one answer's end poll goes for the error of the job's start. The
        start is the submission's answer, dated to within about half its round trip, and an
        answer a share ``x`` into a job moves the end it predicts by ``1 / x - 1`` times an error
        of the start (at 10 % of the way, 9x: 1 ms is 9 ms). The start window learned from the
        measured set-ups missed a tenth of these ends by a hair over sockets (2026-12-02):
        _DATING half trips of the shortest submission per unit of that magnification, which is
        counted at most to _DATING_CAP (an answer so early is probed, not trusted, as a rule)."""
        trip = self._submit_trip
        t1 = job.points[-1][0]
        if not math.isfinite(trip) or t1 <= job.start:
            return 0.0
        magnified = min((ex.end - job.start) / (t1 - job.start), _DATING_CAP) - 1.0
        return _DATING * 0.5 * trip * max(magnified, 0.0)

    def _plan_running(self, job: _Job, typical: float) -> float:
        e = self.economy
        t1 = job.points[-1][0]
        ex = self._extrapolate(job)
        if ex is None:  # no progress between two answers: look again a little later
            job.kind = "probe"
            return t1 + 0.25 * typical
        # a long job (heavy tail, slow path) may be seen late in proportion: its own duration
        own = max(typical, ex.end - job.start)
        tolerance = max((_TOLERANCE + 0.3 * e) * own, _TRUST_PRICES * self.poll_price())
        if ex.exact or (ex.spread <= tolerance and not (job.explore and e < 2 / 3)):
            job.kind = "end"
            margin = (0.004 + 0.03 * e) * typical
            if not ex.exact:
                margin += self._dating_margin(job, ex)
            # one answer's window: aim at its latest end (an early poll costs a poll, a late
            # one a share of the window); a scarce budget's wider windows, a little short of it
            aim = ex.end if ex.exact else ex.end + (_END_AIM - 0.25 * e) * (ex.latest - ex.end)
            return max(aim, ex.earliest) + margin + ex.spread * 0.5 * ex.exact
        job.kind = "probe"  # unsure: measure the pace before the earliest plausible end
        if len(self._setup) >= 3:  # the set-up model is measured: its earliest end is sound,
            # and the later the probe, the more rows its pace is measured over
            probe = t1 + _PROBE_AT * (ex.earliest - t1)
            if not (job.explore or ex.spread > ex.end - t1):
                # an unsure end: no earlier than part of the way to the likely end, where it
                # may well find the job done (and save a poll) rather than surely not
                probe = max(probe, ex.earliest + _PROBE_LATE * (ex.end - ex.earliest))
            # ... but never later than a typical job would take for the rows left: a job seen
            # a row or two into its work says nothing of its pace, whatever the set-up model
            # claims (a set-up longer than the model's bound made such a job look 30x slow)
            done = min(job.points[-1][1] / max(job.rows, 1), 1.0)
            return min(probe, t1 + _PROBE_CAP * max(1.0 - done, _PROBE_FLOOR) * typical)
        bounds, proportional = self._offset_model()
        start = self._start_for_pace(job, bounds, proportional)
        elapsed = t1 - (job.start if start is None else start)
        return t1 + min(0.5 * (ex.earliest - t1), max(elapsed, self.policy.min_interval))
