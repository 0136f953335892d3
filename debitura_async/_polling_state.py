"""The poll planner's per-job state, its FIFO order key and its constants (see :mod:`._polling`).

Pure: no clock, no event loop.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import attrs

from ._polling_model import Extrapolation, FifoEntry

_QUEUED = 0
_IN_PROGRESS = 1
_SCOUT_FRACTION = 0.12  # the scout's first poll, as a share of the prior duration
_CENSORED_SHRINK = 0.75  # a job found done at its first poll ended at most then: count it shorter
_HISTORY = 64
_REFIT_EVERY = 4  # finished jobs between two fits of the parallelism (also fitted on evidence)
_SCOUTS = 3  # jobs measured early while nothing is known (one could be an outlier)
_WARM_UP = 6  # until so many durations are known, first polls go at half the shortest one
_UNMEASURED_SETUP = 0.1  # until set-ups are measured, one is at most this share of a typical job
_PRICE_LOW, _PRICE_HIGH = 0.05, 1.0  # a poll's price in shares of a typical duration
_TOLERANCE = 0.04  # an end predicted within this share of a typical duration needs no probe
_EXPLORE_MIN, _EXPLORE_MAX = 2, 16  # one in so many jobs seen early in their work is probed
_CLEAR_CHOICE = 4.0  # one set-up model varying this many times less than the other is clear
_CLEAR_AFTER = 4  # ... once so many set-up times are measured
_QUEUED_STEP = 0.02  # the first back-off after a Queued answer, in typical durations
_BACKLOG = 16  # so many of our jobs outstanding may queue at any server, pool seen or not
_EARLY = 0.2  # a job caught before this share of its duration is likely probed
_END_AIM = 1.0  # an end poll after one answer: this share of the way from its likely to its
# latest end (over sockets a start noticed a few ms late put a fifth of them a hair early)
_DATING = 1.5  # one answer's end poll: so many half submission trips later per unit of
# magnification of its start's error
_DATING_CAP = 20.0  # ... the magnification counted at most (a job seen so early is probed)
_PROBE_AT = 0.7  # a probe's place between the answer and the earliest plausible end
_PROBE_LATE = 0.6  # ... and at least this share of the way on from there to the likely end
_PROBE_FLOOR = 0.1  # a probe is at most _PROBE_CAP typical jobs' time for the rows left
_PROBE_CAP = 3.0
_TRUST_PRICES = 6.0  # one answer's end is trusted when its spread is under so many polls' price
_UNSURE_START = 0.02  # a start estimate closer than this (x typical) to the first progress seen
_CONCURRENT = 0.02  # adds closer than this share of a typical duration: concurrent submissions


def _check_scarcity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"scarcity must be a number in [0, 1], not {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"scarcity must lie in [0, 1], not {value!r}")
    return float(value)


@attrs.define
class _Job:
    key: Hashable
    rows: int
    accepted: float
    seq: int
    group: int  # the seq of the first job of its concurrent batch (order unknown within one)
    due: float
    start: float
    kind: str = "first"  # what the next poll is for: first, scout, probe, end, retry
    polls: int = 0
    last_poll: float | None = None
    not_before: float = -math.inf  # last seen Queued
    started_by: float = math.inf  # first seen InProgress
    blank_polls: int = 0  # polls that showed no progress yet (Queued, or InProgress at 0 rows)
    zero_at: float = -math.inf  # last seen Queued or InProgress at zero rows
    started_idle: float | None = None  # first seen InProgress, at zero rows
    points: list[tuple[float, int]] = attrs.field(factory=list)
    sampled: bool = False  # its duration already entered the window (calibration)
    explore: bool = False  # probe it even if one answer looks conclusive (keeps the model honest)
    guess: Extrapolation | None = None  # the end its first progress answer predicted
    forced: float | None = None  # retry_later's due, until the next answer
    version: int = 0  # counts its answers (each may change it): a replan's memo is keyed by it
    memo: tuple[object, ...] | None = None  # (context, version, start, scout) of its due
    entry: tuple[tuple[object, ...], FifoEntry] | None = None  # its FIFO entry, by key
    submitted: tuple[float, float] | None = None  # (sent, known) of its submission, if sent known


_Order = tuple[int, int, float, int]


def _order(job: _Job, *, finished: bool = False) -> _Order:
    """Where a job stands in the server's FIFO order: (its concurrent batch, then those seen
    started (by when), then those not seen yet, then those seen queued (by when last seen so:
    the one known to start latest last), ties by seq)."""
    if finished or job.started_by < math.inf:
        return (job.group, 0, min(job.started_by, job.start), job.seq)
    if job.not_before > -math.inf:
        return (job.group, 2, job.not_before, job.seq)
    return (job.group, 1, 0.0, job.seq)
