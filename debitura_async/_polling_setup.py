"""What jobs spend at zero rows after they start (their set-up), as the poll planner learns it
from the jobs whose pace two answers measured (see :mod:`._polling`).

Two models compete: a set-up of so many seconds (the guide's fixed second), or one in
proportion to the job's duration (a heavy tail or a slow path slowing all of a job); the one
that misses the measured set-ups by fewer seconds is used. Over sockets a job's start is known
only to a round trip, and an event loop busy encoding notices a 202 late: an error of the same
few tens of ms for every job, a large share of a short job's set-up. So the proportional model
is a least-squares line of set-up against duration (a start always noticed late is its
intercept), and its uncertainty is the window of seconds its starts are known to; every bound
is robust to a few wild samples.

Pure: no clock, no event loop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from ._polling_model import Samples

__all__ = ["SetupModel", "robust_bounds"]

Bounds = tuple[float, float, float]
"""(low, typical, high)."""

_MEASURED = 3  # so many measured set-ups before either model is used
_FITTED = 6  # ... and before the proportional one's line gets an intercept


class SetupModel:
    """The set-ups measured so far, and the bounds and fit derived from them (cached)."""

    def __init__(self, window: int) -> None:
        self.secs = Samples(window)  # seconds at zero rows after the start
        self.shares = Samples(window)  # the same as shares of the job's duration
        self._pairs: deque[tuple[float, float]] = deque(maxlen=window)  # (seconds, duration)
        self._fit: tuple[int, tuple[float, Bounds] | None] | None = None

    def __len__(self) -> int:
        return len(self.secs)

    @property
    def version(self) -> int:
        """Counts the set-ups added (for caches of derived values)."""
        return self.secs.version

    def add(self, seconds: float, duration: float) -> None:
        """A job spent ``seconds`` at zero rows of its ``duration`` (> 0; anything else, or a
        non-finite value, is ignored)."""
        if not (math.isfinite(seconds) and math.isfinite(duration) and duration > 0):
            return
        self.secs.add(seconds)
        self.shares.add(seconds / duration)
        self._pairs.append((seconds, duration))

    def bounds(self, *, other: bool = False) -> tuple[Bounds, bool] | None:
        """The bounds of the model that varies less (``other``: of the one that varies more),
        and whether it is the proportional one; None until enough set-ups are measured."""
        if len(self) < _MEASURED:
            return None
        secs, shares = self._spreads()
        proportional = (shares < secs) != other
        return robust_bounds(self.shares if proportional else self.secs), proportional

    def _spreads(self) -> tuple[float, float]:
        """How far each model misses the measured set-ups, in seconds (10 % to 90 %): a fixed
        set-up by the seconds' spread; one in proportion by its starts' window around the
        fitted line (a share's spread is no measure: a round trip's error is a large share of a
        short job's set-up)."""
        secs = (self.secs.quantile(0.9) or 0.0) - (self.secs.quantile(0.1) or 0.0)
        fit = self.share_fit()
        return secs, (fit[1][2] - fit[1][0]) if fit is not None else math.inf

    def share_fit(self) -> tuple[float, Bounds] | None:
        """The set-up's share of a job's duration, and the window (low, typical, high) of
        seconds a job's start is known to around its estimate: a least-squares line through the
        measured set-ups against their durations, then its residuals' robust quantiles."""
        if len(self._pairs) < _MEASURED:
            return None
        if self._fit is not None and self._fit[0] == self.version:
            return self._fit[1]
        share = fit_share(self._pairs, reliable=len(self._pairs) >= _FITTED)
        # a line through few or noisy points can tilt far off (to 0: then one answer early in
        # a job would predict an end a thousand times away): keep it near the typical share
        typical = self.shares.quantile(0.5) or 0.0
        share = min(max(share, 0.5 * typical), 2.0 * typical, 0.95)
        # processing began `share * d + r` after the start: as if it started r / (1 - share) late
        shifts = Samples(len(self._pairs))
        for seconds, duration in self._pairs:
            shifts.add((seconds - share * duration) / (1.0 - share))
        fit = (share, robust_bounds(shifts))
        self._fit = (self.version, fit)
        return fit

    def choice_is_clear(self, factor: float) -> bool:
        """One model misses the measured set-ups ``factor`` times less than the other:
        exploring the other is not worth polls."""
        low, high = sorted(self._spreads())
        return high > factor * low


def fit_share(pairs: Iterable[tuple[float, float]], *, reliable: bool = True) -> float:
    """The slope of seconds at zero rows against duration (least squares, with an intercept;
    through the origin when the durations hardly vary or the points are few, not
    ``reliable``), within [0, 0.95]."""
    points = list(pairs)
    n = len(points)
    if n == 0:
        return 0.0
    mean_s = sum(s for s, _ in points) / n
    mean_d = sum(d for _, d in points) / n
    var = sum((d - mean_d) ** 2 for _, d in points)
    if reliable and var > (0.05 * mean_d) ** 2 * n:
        slope = sum((s - mean_s) * (d - mean_d) for s, d in points) / var
    else:
        weight = sum(d * d for _, d in points)
        slope = sum(s * d for s, d in points) / weight if weight > 0 else 0.0
    return min(max(slope, 0.0), 0.95)


def robust_bounds(samples: Samples) -> Bounds:
    """The 10 %, 50 % and 90 % quantiles, the outer two pulled in to twice the quartiles'
    distance from the median: a few wild samples (a short job's set-up measured against a start
    known only to a round trip) widen every prediction otherwise; a wide bulk keeps its width."""
    low, q1, mid, q3, high = (samples.quantile(q) or 0.0 for q in (0.1, 0.25, 0.5, 0.75, 0.9))
    return max(low, mid - 2.0 * (mid - q1)), mid, min(high, mid + 2.0 * (q3 - mid))
