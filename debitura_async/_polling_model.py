"""The poll planner's estimators: what the server's answers say about durations, starts and pace.

Pure and small: no clock, no randomness. :mod:`._polling` decides when to poll from these.

* :class:`Samples` — a bounded window of recent values (durations, or processing offsets) with
  empirical quantiles; old values fall out, so drifting servers are followed.
* :func:`fifo_starts` — when each of our jobs starts, from a FIFO pool of ``workers`` fed with the
  ends we know (finished jobs) or predict (running ones).
* :func:`extrapolate` — a running job's end from its own progress: two observations give its pace
  exactly; one gives it from where processing began (its start plus an offset, bounded by the
  offsets seen so far).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import attrs

__all__ = [
    "Extrapolation",
    "FifoEntry",
    "FifoPool",
    "Samples",
    "best_first_wait",
    "extrapolate",
    "fifo_misfit",
    "fifo_starts",
    "measured_pace",
    "quantile",
]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of a non-empty ascending sequence."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = min(max(q, 0.0), 1.0) * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Samples:
    """The last ``size`` values, with their quantiles (``None`` while empty)."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._sorted: list[float] | None = None
        self.version = 0  # counts additions (for caches of derived values)

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self._values.append(value)
            self._sorted = None
            self.version += 1

    def __len__(self) -> int:
        return len(self._values)

    def sorted(self) -> list[float]:
        if self._sorted is None:
            self._sorted = sorted(self._values)
        return self._sorted

    def quantile(self, q: float) -> float | None:
        if not self._values:
            return None
        return quantile(self.sorted(), q)


def best_first_wait(durations: Sequence[float], price: float, early: float = 0.0) -> float:
    """The first-poll wait ``w`` minimising expected delay + ``price`` x expected extra polls.

    Over the empirical ``durations`` (ascending): a job shorter than ``w`` is seen ``w - d`` late
    with one poll; a longer one is caught mid-job, and its progress places a second poll just
    after its end (one more poll, no delay). ``price`` is what one poll is worth in seconds of
    delay: small spends polls to cut delay, large saves them. ``early``: a job caught before
    this share of its duration costs a probe more (its end is still too uncertain).
    """
    n = len(durations)
    best, best_cost = durations[0], math.inf
    below = 0.0  # sum of the durations shorter than the candidate
    for i, w in enumerate(durations):
        # a job caught under `early` of its way needs a probe too (one answer says too little)
        too_early = n - bisect.bisect_right(durations, w / early) if early > 0 else 0
        cost = (i * w - below) / n + price * (n - i - 1 + too_early) / n
        if cost < best_cost - 1e-12:
            best, best_cost = w, cost
        below += w
    return best


class FifoEntry(NamedTuple):
    """One of our jobs in acceptance order, as the FIFO model sees it (a named tuple: the
    planner builds one per tracked job on every replan).

    ``end`` is known (finished) or predicted; ``start`` is known for finished jobs only. A running
    job's start lies in ``(not_before, started_by]``: ``not_before`` is the last instant it was seen
    *Queued*, ``started_by`` the first it was seen *InProgress* (``inf`` if never).
    """

    accepted: float
    start: float | None
    end: float | None
    not_before: float = -math.inf
    started_by: float = math.inf
    idle_at: float | None = None
    """First seen InProgress at zero rows: it started shortly before (within its set-up time)."""
    size: float = 1.0
    """Its expected duration relative to ``duration`` (a 100-row job is shorter than 1000)."""


def fifo_starts(
    entries: Iterable[FifoEntry],
    workers: int | None,
    duration: float,
    *,
    blind: bool = False,
    pool: FifoPool | None = None,
) -> list[float]:
    """Each entry's start (known, or predicted from a FIFO pool of ``workers``).

    Jobs start in acceptance order, each on the first free worker: its start is the latest of its
    acceptance, the previous start, and (with ``workers`` jobs ahead of it still running) the
    ``workers``-th latest end among the jobs ahead. Unknown ends are taken as start +
    ``duration`` x the entry's ``size``.
    ``workers=None``: unbounded (every job starts when accepted, unless seen queued).
    ``blind``: predict every start from the pool alone (ignoring what was seen), to test a
    ``workers`` value against the observations (:func:`fifo_misfit`).
    ``pool``: the pool as the entries ahead left it (updated in place): more entries after
    those, as if all had been given in one call.
    """
    pool = FifoPool() if pool is None else pool
    starts: list[float] = []
    ends = pool.ends  # min-heap of the `workers` latest ends so far
    previous = pool.previous
    for entry in entries:
        if entry.start is not None and not blind:
            start = entry.start
        else:
            start = max(entry.accepted, previous)
            if workers is not None and len(ends) >= workers:
                start = max(start, ends[0])
            if not blind:
                start = min(max(start, entry.not_before), entry.started_by)
        starts.append(start)
        previous = max(previous, start)
        end = entry.end if entry.end is not None else start + duration * entry.size
        if workers is not None:
            heapq.heappush(ends, end)
            if len(ends) > workers:
                heapq.heappop(ends)
    pool.previous = previous
    return starts


@attrs.define
class FifoPool:
    """What :func:`fifo_starts` knows after some entries: the latest start, and the latest ends
    (as many as there are workers, a min-heap)."""

    previous: float = -math.inf
    ends: list[float] = attrs.field(factory=list)

    def copy(self) -> FifoPool:
        return FifoPool(self.previous, list(self.ends))


def fifo_misfit(
    entries: Sequence[FifoEntry], workers: int, duration: float, setup: float, skip: int = 0
) -> float:
    """Seconds by which a pool of ``workers`` contradicts what was seen of the starts.

    A job seen Queued at ``t`` must start after ``t``; one seen InProgress at ``t`` by ``t``; one
    first seen InProgress at zero rows at ``t`` after ``t - setup``. The first ``skip`` entries
    (whose predecessors are forgotten) are not judged."""
    starts = fifo_starts(entries, workers, duration, blind=True)
    misfit = 0.0
    for entry, start in list(zip(entries, starts, strict=True))[skip:]:
        misfit += max(0.0, entry.not_before - start) + max(0.0, start - entry.started_by)
        if entry.idle_at is not None:
            misfit += max(0.0, entry.idle_at - setup - start)
    return misfit


def date_answer(sent: float, received: float, shortest: float) -> float:
    """When the server looked at a job, from when its poll was sent and its answer noticed.

    The midpoint of the round trip, unless the poll took far longer than the ``shortest`` one
    seen: then it waited on this side (for a connection, or an event loop busy elsewhere, before
    it left or after its answer came), and the answer is about half a shortest round trip older
    than its notice."""
    elapsed = max(received - sent, 0.0)
    # a `shortest` above this trip leaves the midpoint: the max below picks it
    return max(sent + elapsed / 2, received - shortest / 2)


def measured_pace(points: Sequence[tuple[float, int]]) -> tuple[float, float] | None:
    """Seconds a row, and the instant processing began, from a job's last two progress answers
    ``(t, processed)`` (None with fewer than two, or no rows processed between them)."""
    if len(points) < 2:
        return None
    (t0, k0), (t1, k1) = points[-2:]
    if k1 <= k0:
        return None
    pace = (t1 - t0) / (k1 - k0)
    return pace, t1 - k1 * pace


@attrs.frozen
class Extrapolation:
    """A running job's predicted end: ``end`` (best guess) within ``[earliest, latest]``."""

    end: float
    earliest: float
    latest: float
    exact: bool
    """True when two observations fixed the pace (the window is only rounding)."""

    @property
    def spread(self) -> float:
        return self.latest - self.earliest


def extrapolate(
    points: Sequence[tuple[float, int]],
    rows: int,
    start: float,
    offsets: tuple[float, float, float],
    *,
    proportional: bool = False,
    began_after: float = -math.inf,
    start_latest: float | None = None,
    start_earliest: float | None = None,
) -> Extrapolation | None:
    """The end of a job processing ``rows`` from its progress ``points`` ``(t, processed > 0)``.

    With two points the pace is measured. With one, processing began some *offset* after
    ``start`` (the time spent at ``processed = 0``), bounded by ``offsets = (low, typical, high)``:
    seconds, or with ``proportional`` shares of the job's whole duration. A later beginning
    means a faster pace, so ``high`` gives the earliest end. None when the points say nothing
    (no progress between them). ``began_after``: processing had not begun then (the job was last
    seen Queued, or InProgress at zero rows). ``start_latest``: the start is only known to lie in
    ``[start, start_latest]`` (the earliest end assumes the latest start); ``start_earliest``:
    the start may lie that early (the latest end assumes it).
    """
    t1, k1 = points[-1]
    remaining = max(rows - k1, 0)
    if len(points) >= 2:
        t0, k0 = points[-2]
        if k1 <= k0 or t1 <= t0:
            return None
        pace = (t1 - t0) / (k1 - k0)
        end = t1 + remaining * pace
        # progress is reported in whole rows: the pace is known to 1 row in k1 - k0
        slack = pace * (2.0 + remaining / (k1 - k0))
        return Extrapolation(end, max(t1, end - slack), end + slack, exact=True)
    done = min(k1 / max(rows, 1), 1.0)

    def end_if(offset: float, start: float) -> float:
        elapsed = max(t1 - start, 0.0)
        if proportional:  # done = (elapsed - offset * d) / ((1 - offset) * d)
            share = min(max(offset, 0.0), 0.95)
            duration = elapsed / (share + done * (1.0 - share))
            if start + share * duration >= began_after:
                return max(t1, start + duration)
            offset = 0.0
        began = min(max(start + offset, began_after), t1)
        return t1 + remaining * (t1 - began) / k1

    late_start = start if start_latest is None else min(max(start, start_latest), t1)
    early_start = start if start_earliest is None else min(start_earliest, start)
    latest = end_if(offsets[0], early_start)
    end = end_if(offsets[1], start)
    earliest = end_if(offsets[2], late_start)
    return Extrapolation(end, earliest, latest, exact=False)
