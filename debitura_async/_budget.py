"""The client-side request budget: Debitura's per-key rate limits, kept before the server must.

Debitura allows 2,000 requests a minute (sliding window), 20,000 an hour and 100,000 a day per API
key, and answers 429 beyond that. A :class:`RequestBudget` shared by every request a client makes
(POSTs and polls alike) hands out *send times*: each request reserves the earliest moment at
which every window still has room, in FIFO order, so a burst of callers is spread out instead of
hammering the server. After a 429 the whole budget pauses for the server's ``retryAfter``, so every
request of the client waits, not only the one that was refused.

:class:`SlidingWindows` is the pure part (no clock, no asyncio), tested without a loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

__all__ = ["DEFAULT_RATE_LIMITS", "RateLimit", "RequestBudget", "SlidingWindows"]


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests in any window of ``per`` seconds."""

    requests: int = attrs.field(validator=attrs.validators.gt(0))
    per: float = attrs.field(validator=attrs.validators.gt(0))


DEFAULT_RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit(2_000, 60.0),
    RateLimit(20_000, 3_600.0),
    RateLimit(100_000, 86_400.0),
)


class SlidingWindows:
    """Pure bookkeeping of reserved send times against several sliding windows.

    ``safety`` lengthens each window by that fraction, so that requests that travel at different
    speeds cannot bunch up inside the server's window.
    """

    __slots__ = ("_last", "_paused_until", "_windows")

    def __init__(self, limits: Sequence[RateLimit], *, safety: float = 0.02) -> None:
        self._windows: list[tuple[int, float, deque[float]]] = [
            (limit.requests, limit.per * (1.0 + safety), deque()) for limit in limits
        ]
        self._last = float("-inf")
        self._paused_until = float("-inf")

    def reserve(self, now: float) -> float:
        """Reserve the earliest send time >= ``now`` that keeps every window within its limit."""
        at = max(now, self._last, self._paused_until)
        for limit, per, stamps in self._windows:
            horizon = now - per
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            if len(stamps) >= limit:
                at = max(at, stamps[len(stamps) - limit] + per)
        for _, _, stamps in self._windows:
            stamps.append(at)
        self._last = at
        return at

    def pause_until(self, until: float) -> None:
        """No send time before ``until`` (the server said to wait)."""
        self._paused_until = max(self._paused_until, until)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def in_window(self, now: float) -> tuple[int, ...]:
        """How many reservations each window holds at ``now`` (for progress and tests)."""
        return tuple(sum(1 for s in stamps if s > now - per) for _, per, stamps in self._windows)


class RequestBudget:
    """An asyncio request budget shared by all requests of one or more clients using one key.

    >>> budget = RequestBudget()                                  # Debitura's documented limits
    >>> scaled = RequestBudget([RateLimit(100, 6.0)])             # e.g. for a time-scaled emulator

    ``await budget.acquire()`` returns when the caller may send. The reservation is FIFO; a
    caller cancelled while waiting leaves its slot unused (conservative, never over the limit).
    """

    def __init__(
        self,
        limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
        *,
        safety: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits: tuple[RateLimit, ...] = tuple(limits)
        self._windows = SlidingWindows(self.limits, safety=safety)
        self._clock = clock
        self.acquired = 0
        self.waited = 0.0

    def __repr__(self) -> str:
        shown = ", ".join(f"{lim.requests}/{lim.per:g}s" for lim in self.limits)
        return f"RequestBudget({shown})"

    async def acquire(self) -> None:
        """Wait until this request may be sent, then count it."""
        now = self._clock()
        at = self._windows.reserve(now)
        self.acquired += 1
        if at > now:
            self.waited += at - now
            await asyncio.sleep(at - now)
        # A 429 may have paused the budget while this caller slept on an earlier reservation.
        while (now := self._clock()) < self._windows.paused_until:
            wait = self._windows.paused_until - now
            self.waited += wait
            await asyncio.sleep(wait)

    def pause_remaining(self) -> float:
        """Seconds until a pause set by :meth:`pause` ends (0.0: not paused)."""
        return max(0.0, self._windows.paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (called on a 429 with the server's wait)."""
        self._windows.pause_until(self._clock() + max(0.0, seconds))
