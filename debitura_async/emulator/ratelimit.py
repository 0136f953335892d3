"""Debitura's documented rate-limit windows, per API key, on the emulator's model wall clock.

Pure: :class:`RateLimiter` takes ``now`` (model seconds since the emulator started) and keeps
counters; no clock, no event loop.

**Model wall clock** = ``RateLimits.clock_epoch`` (Unix seconds, UTC) + model seconds. With
``time_scale=1`` and the default epoch (the real UTC time at which the emulator starts) it is
the real UTC clock; with ``time_scale=60`` a model clock hour passes in one real minute and its
boundaries are where the model wall clock crosses ``hh:00:00``. The windows (Debitura's
rate-limiting page, 2026-12):

- **minute**: a sliding window of 60 s divided into six 10-second segments aligned to the model
  wall clock (``:00``, ``:10``, ...). A request counts in its segment; a segment leaves the
  window 60 s after the segment *began*, so a request is counted for 50 to 60 s.
- **hour**: a fixed window resetting at the start of each clock hour of the model wall clock.
- **day**: a fixed window, either resetting at midnight UTC (``DayWindow.UTC_MIDNIGHT``) or in
  24-hour windows aligned to the partition's first request (``DayWindow.FIRST_REQUEST``: the
  first window opens at that request, the next ones follow back to back).

A request over any window is refused at once (nothing is counted); the wait returned is the
longest of the refusing windows' waits: exactly the moment from which the request would be
admitted if nothing else arrived. Counters live per partition (a partner id, never the key).

>>> limiter = RateLimiter(RateLimits(per_minute=2, per_hour=None, per_day=None))
>>> limiter.admit("p", 0.0), limiter.admit("p", 11.0), limiter.admit("p", 12.0)
(None, None, 48.0)
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

__all__ = ["SEGMENT_SECONDS", "DayWindow", "RateLimiter", "RateLimits"]

SEGMENT_SECONDS: Final = 10.0
_SEGMENTS: Final = 6
_HOUR: Final = 3600.0
_DAY: Final = 86_400.0


class DayWindow(enum.StrEnum):
    """Where the daily window starts: midnight UTC, or the partition's first request."""

    UTC_MIDNIGHT = "utc-midnight"
    FIRST_REQUEST = "first-request"


def _index(quotient: float) -> int:
    """``floor(quotient)``, but a quotient a few ulps short of an integer counts as that integer:
    a client that waits exactly the returned time lands in the next window despite rounding."""
    index = math.floor(quotient)
    if index + 1 - quotient <= 8 * math.ulp(quotient):
        index += 1
    return index


def _day_window(value: object) -> DayWindow:
    if isinstance(value, DayWindow):
        return value
    if not isinstance(value, str):
        raise TypeError(f"day_window must be one of {[d.value for d in DayWindow]}, got {value!r}")
    return DayWindow(value.strip().lower())


def _limit_ok(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise ValueError(f"{attribute.name} must be an integer >= 1 or None, got {value!r}")


def _epoch_ok(_inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite Unix seconds or None, got {value!r}")


def _epoch(value: object) -> float | None:
    """Unix seconds, an ISO 8601 date-time (naive = UTC) or ``None``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        try:
            return _epoch(datetime.fromisoformat(value.strip()))
        except ValueError:
            raise ValueError(f"clock_epoch: not an ISO 8601 date-time: {value!r}") from None
    if type(value) in (int, float):
        return float(value)  # type: ignore[arg-type]
    raise TypeError(f"clock_epoch must be Unix seconds, an ISO 8601 string or None, got {value!r}")


@attrs.frozen(kw_only=True)
class RateLimits:
    """Per-API-key limits in Debitura's documented window shapes (see the module docstring).

    A window set to ``None`` is not enforced; ``enabled=False`` switches all of them off.
    ``retry_after_header`` adds a ``Retry-After`` header to 429s and ``retry_after_body`` the
    body's ``retryAfter`` field (Debitura's docs disagree about the header; with both off a 429
    says nothing about how long to wait, and a client must fall back on its own backoff).
    ``day_window`` picks the daily window's alignment; ``clock_epoch`` is the model wall clock at
    model time 0 (Unix seconds; ISO 8601 and aware datetimes are converted), ``None`` = the real
    UTC time at which the emulator starts.

    >>> limits = RateLimits()
    >>> limits.retry_after_header, limits.retry_after_body, limits.day_window.value
    (True, True, 'utc-midnight')
    """

    per_minute: int | None = attrs.field(default=2000, validator=_limit_ok)
    per_hour: int | None = attrs.field(default=20_000, validator=_limit_ok)
    per_day: int | None = attrs.field(default=100_000, validator=_limit_ok)
    enabled: bool = True
    retry_after_header: bool = True
    retry_after_body: bool = True
    day_window: DayWindow = attrs.field(default=DayWindow.UTC_MIDNIGHT, converter=_day_window)
    clock_epoch: float | None = attrs.field(default=None, converter=_epoch, validator=_epoch_ok)

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)

    def windows(self) -> tuple[tuple[int, float], ...]:
        """The enforced ``(limit, window_seconds)`` pairs (empty when disabled)."""
        if not self.enabled:
            return ()
        pairs = ((self.per_minute, 60.0), (self.per_hour, _HOUR), (self.per_day, _DAY))
        return tuple((limit, seconds) for limit, seconds in pairs if limit is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "perMinute": self.per_minute,
            "perHour": self.per_hour,
            "perDay": self.per_day,
            "enabled": self.enabled,
            "retryAfterHeader": self.retry_after_header,
            "retryAfterBody": self.retry_after_body,
            "dayWindow": self.day_window.value,
            "clockEpoch": self.clock_epoch,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateLimits:
        return cls(
            per_minute=data.get("perMinute", 2000),
            per_hour=data.get("perHour", 20_000),
            per_day=data.get("perDay", 100_000),
            enabled=bool(data.get("enabled", True)),
            retry_after_header=bool(data.get("retryAfterHeader", True)),
            retry_after_body=bool(data.get("retryAfterBody", True)),
            day_window=data.get("dayWindow", DayWindow.UTC_MIDNIGHT),
            clock_epoch=data.get("clockEpoch"),
        )


@attrs.define
class _Fixed:
    """A fixed window: its index (``floor((wall - anchor) / seconds)``) and count."""

    limit: int
    seconds: float
    anchor: float | None  # None until the first request (first-request day windows)
    index: int = -(2**62)
    count: int = 0
    peak: int = 0
    rejected: int = 0

    def wait(self, wall: float) -> float | None:
        anchor = wall if self.anchor is None else self.anchor
        index = _index((wall - anchor) / self.seconds)
        if index != self.index:
            self.index, self.count = index, 0
        if self.count < self.limit:
            return None
        return anchor + (index + 1) * self.seconds - wall

    def record(self, wall: float) -> None:
        if self.anchor is None:
            self.anchor = wall
            self.index = 0
        self.count += 1
        self.peak = max(self.peak, self.count)

    def snapshot(self, wall: float, epoch: float) -> dict[str, Any]:
        anchor = self.anchor
        if anchor is None:
            return {
                "limit": self.limit,
                "count": 0,
                "peak": 0,
                "rejected": self.rejected,
                "window_start": None,
            }
        index = _index((wall - anchor) / self.seconds)
        return {
            "limit": self.limit,
            "count": self.count if index == self.index else 0,
            "peak": self.peak,
            "rejected": self.rejected,
            "window_start": anchor + index * self.seconds - epoch,
        }


@attrs.define
class _Sliding:
    """The minute: counts per 10-second segment, at most six segments kept."""

    limit: int
    segments: deque[list[int]] = attrs.field(factory=deque)  # [segment index, count]
    peak: int = 0
    rejected: int = 0

    def _total(self, wall: float) -> tuple[int, int]:
        current = _index(wall / SEGMENT_SECONDS)
        segments = self.segments
        while segments and segments[0][0] <= current - _SEGMENTS:
            segments.popleft()
        return current, sum(count for _, count in segments)

    def wait(self, wall: float) -> float | None:
        _, total = self._total(wall)
        if total < self.limit:
            return None
        remaining = total
        for index, count in self.segments:
            remaining -= count
            if remaining < self.limit:
                return (index + _SEGMENTS) * SEGMENT_SECONDS - wall
        raise AssertionError("unreachable: an empty window is never full")  # pragma: no cover

    def record(self, wall: float) -> None:
        current, total = self._total(wall)
        segments = self.segments
        if segments and segments[-1][0] == current:
            segments[-1][1] += 1
        else:
            segments.append([current, 1])
        self.peak = max(self.peak, total + 1)

    def snapshot(self, wall: float, epoch: float) -> dict[str, Any]:
        current, total = self._total(wall)
        return {
            "limit": self.limit,
            "count": total,
            "peak": self.peak,
            "rejected": self.rejected,
            "window_start": (current - _SEGMENTS + 1) * SEGMENT_SECONDS - epoch,
        }


_Window = _Sliding | _Fixed


class RateLimiter:
    """The windows of :class:`RateLimits` for every partition, with per-window statistics.

    >>> limiter = RateLimiter(RateLimits(per_minute=None, per_hour=1, per_day=None), epoch=3599.0)
    >>> limiter.admit("p", 0.0), limiter.admit("p", 0.5), limiter.admit("p", 1.0)
    (None, 0.5, None)
    """

    def __init__(self, limits: RateLimits, *, epoch: float | None = None) -> None:
        self.limits = limits
        self.epoch = epoch if epoch is not None else (limits.clock_epoch or 0.0)
        self._active = limits.enabled and bool(limits.windows())
        self._partitions: dict[str, dict[str, _Window]] = {}

    def _windows(self) -> dict[str, _Window]:
        limits = self.limits
        windows: dict[str, _Window] = {}
        if limits.per_minute is not None:
            windows["minute"] = _Sliding(limits.per_minute)
        if limits.per_hour is not None:
            windows["hour"] = _Fixed(limits.per_hour, _HOUR, 0.0)
        if limits.per_day is not None:
            first = limits.day_window is DayWindow.FIRST_REQUEST
            windows["day"] = _Fixed(limits.per_day, _DAY, None if first else 0.0)
        return windows

    def admit(self, partition: str, now: float) -> float | None:
        """Admit and count a request (``None``), or refuse it: the model seconds to wait."""
        if not self._active:
            return None
        windows = self._partitions.get(partition)
        if windows is None:
            windows = self._partitions[partition] = self._windows()
        wall = self.epoch + now
        wait = -1.0
        refusing = []
        for window in windows.values():
            needed = window.wait(wall)
            if needed is not None:
                refusing.append(window)
                wait = max(wait, needed)
        if refusing:
            for window in refusing:
                window.rejected += 1
            return wait
        for window in windows.values():
            window.record(wall)
        return None

    def snapshot(self, now: float) -> dict[str, Any]:
        """Per-window counts for introspection (``count`` now, ``peak`` ever in one window,
        ``rejected``, ``window_start`` in model seconds); the model wall clock's reading."""
        wall = self.epoch + now
        return {
            "epoch": self.epoch,
            "model_now": now,
            "wall_now": datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z"),
            "day_window": self.limits.day_window.value,
            "partitions": {
                name: {kind: w.snapshot(wall, self.epoch) for kind, w in windows.items()}
                for name, windows in self._partitions.items()
            },
        }

    def clear(self) -> None:
        self._partitions.clear()
