"""The client-side request budget: Debitura's per-key rate limits, kept before the server must.

Debitura allows, per API key (see ``docs/budget.md``):

* 2,000 requests a minute, a sliding window counted in 10-second segments,
* 20,000 an hour, a fixed window that resets at the start of each clock hour,
* 100,000 a day, resetting at midnight UTC *or* aligned to the key's first request.

A budget hands out *send times*: each request reserves the earliest moment at which every window
still has room, in FIFO order, so a burst of callers is spread out instead of hammering the server.
After a 429 the whole budget pauses for the server's wait. :class:`Budget` is the protocol the
client depends on; :class:`RequestBudget` keeps the windows in this process, and
:class:`debitura_async.redis_budget.RedisBudget` keeps them in Redis for every process of a key.

:class:`Windows` is the pure part (no clock, no asyncio), tested without a loop; its rules are the
ones the Redis script applies too (:func:`window_rules`).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from .errors import ConfigurationError, DebituraError

if TYPE_CHECKING:
    from .redis_budget import RedisBudget

__all__ = [
    "BUDGET_URL_ENV",
    "DEFAULT_RATE_LIMITS",
    "Budget",
    "BudgetStatus",
    "BudgetUnavailableError",
    "RateLimit",
    "RequestBudget",
    "Rule",
    "Windows",
    "budget_from_url",
    "steady_wall_clock",
    "window_rules",
    "windows_scarcity",
]

BUDGET_URL_ENV: Final = "DEBITURA_BUDGET_URL"
"""The environment variable the CLI reads for ``--budget`` (e.g. ``redis://127.0.0.1:6379/0``)."""


def _non_negative(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per window of ``per`` seconds.

    The window's shape:

    * default: a continuous sliding window (any interval of ``per`` seconds);
    * ``segment=s``: a sliding window the server counts in segments of ``s`` seconds. Whether it
      counts the segments that overlap the last ``per`` seconds or only the whole ones, and where
      the segments start, is not documented, so the budget keeps any ``per + s`` seconds within
      the limit, which is safe for every such counting;
    * ``fixed=True``: fixed windows starting at ``offset + k * per`` seconds since the Unix epoch
      (``per=3600`` with ``offset=0`` is the clock hour in UTC). A request within the safety
      margin (``per * safety``) of a boundary counts in both windows, against clock skew.

    >>> RateLimit(2_000, 60.0, segment=10.0).scaled(60.0)
    RateLimit(requests=2000, per=1.0, segment=0.16666666666666666, fixed=False, offset=0.0)
    """

    requests: int = attrs.field(validator=attrs.validators.gt(0))
    per: float = attrs.field(validator=_positive)
    segment: float = attrs.field(default=0.0, kw_only=True, validator=_non_negative)
    fixed: bool = attrs.field(default=False, kw_only=True)
    offset: float = attrs.field(default=0.0, kw_only=True, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.fixed and self.segment:
            raise ValueError("a fixed window has no segments")
        if self.segment >= self.per:
            raise ValueError(f"segment must be < per, got {self.segment!r} >= {self.per!r}")
        if self.offset and not self.fixed:
            raise ValueError("offset applies to fixed windows only")

    def scaled(self, scale: float) -> RateLimit:
        """The same limit for a clock running ``scale`` times faster (a time-scaled emulator)."""
        return attrs.evolve(
            self, per=self.per / scale, segment=self.segment / scale, offset=self.offset / scale
        )


DEFAULT_RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit(2_000, 60.0, segment=10.0),
    RateLimit(20_000, 3_600.0, fixed=True),
    # Midnight UTC or the key's first request: a sliding day is safe for both alignments.
    RateLimit(100_000, 86_400.0),
)


@attrs.frozen
class Rule:
    """A :class:`RateLimit` as numbers the reservation applies (the same in Python and in Lua).

    Sliding: at most ``limit`` reservations in any half-open ``(t - length, t]``. Fixed: at most
    ``limit`` reservations in ``[start - margin, start + length + margin)`` for every window
    start ``offset + k * length``.
    """

    limit: int
    length: float
    fixed: bool
    margin: float
    offset: float

    @property
    def horizon(self) -> float:
        """How far back reservations still matter to this rule."""
        return self.length + 2 * self.margin if self.fixed else self.length


def window_rules(limits: Sequence[RateLimit], *, safety: float = 0.02) -> tuple[Rule, ...]:
    """The rules for ``limits``; ``safety`` lengthens sliding windows and widens fixed margins."""
    if not (math.isfinite(safety) and 0 <= safety < 0.5):
        raise ValueError(f"safety must be in [0, 0.5), got {safety!r}")
    if not limits:
        raise ValueError("a budget needs at least one rate limit")
    rules = []
    for lim in limits:
        if lim.fixed:
            rules.append(Rule(lim.requests, lim.per, True, lim.per * safety, lim.offset))
        else:
            rules.append(Rule(lim.requests, lim.per * (1 + safety) + lim.segment, False, 0.0, 0.0))
    return tuple(rules)


def windows_scarcity(counts: Sequence[int], rules: Sequence[Rule], *, paused: bool) -> float:
    """How scarce requests are, 0..1: the share of the fullest window in use (``counts``: what
    each of ``rules`` holds now, as :meth:`Windows.in_window` counts), or 1 while a 429 pause
    holds sends back. The poll planner spends fewer polls as it rises.

    The one rule behind ``RequestBudget.scarcity()`` and ``RedisBudget.scarcity()``.

    >>> rules = window_rules([RateLimit(100, 60.0), RateLimit(1_000, 3_600.0, fixed=True)])
    >>> windows_scarcity((25, 500), rules, paused=False)
    0.5
    >>> windows_scarcity((0, 0), rules, paused=True)
    1.0
    """
    if len(counts) != len(rules):
        raise ValueError(f"{len(counts)} counts for {len(rules)} rules")
    if paused:
        return 1.0
    shares = (max(0, count) / rule.limit for count, rule in zip(counts, rules, strict=True))
    return min(1.0, max(shares, default=0.0))


_MAX_ROUNDS: Final = 100


class Windows:
    """Pure bookkeeping of reserved send times against every rule at once.

    Reservations never go backwards in time (FIFO); :meth:`release` gives back one that was not
    used (a caller cancelled, or a 429 pause overtook it).
    """

    __slots__ = ("_head", "_horizon", "_last", "_paused_until", "_rules", "_stamps")

    def __init__(self, limits: Sequence[RateLimit], *, safety: float = 0.02) -> None:
        self._rules = window_rules(limits, safety=safety)
        self._horizon = max(rule.horizon for rule in self._rules)
        self._stamps: list[float] = []  # sorted; entries before _head are forgotten
        self._head = 0
        self._last = -math.inf
        self._paused_until = -math.inf

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def _prune(self, now: float) -> None:
        self._head = bisect.bisect_left(self._stamps, now - self._horizon, self._head)
        if self._head > 1024 and self._head * 2 > len(self._stamps):
            del self._stamps[: self._head]
            self._head = 0

    def _count(self, low: float, high: float) -> int:
        """Reservations in ``[low, high)``."""
        stamps, head = self._stamps, self._head
        return bisect.bisect_left(stamps, high, head) - bisect.bisect_left(stamps, low, head)

    def earliest(self, now: float) -> float:
        """The earliest send time >= ``now`` every rule allows, without reserving it."""
        self._prune(now)
        at = max(now, self._last, self._paused_until)
        stamps = self._stamps
        for _ in range(_MAX_ROUNDS):
            moved = at
            for rule in self._rules:
                if rule.fixed:
                    at = self._fixed_earliest(rule, at)
                elif len(stamps) - self._head >= rule.limit:
                    at = max(at, stamps[len(stamps) - rule.limit] + rule.length)
            if at == moved:
                return at
        raise RuntimeError("rate-limit rules did not converge")  # pragma: no cover

    def _fixed_earliest(self, rule: Rule, at: float) -> float:
        length, margin, offset = rule.length, rule.margin, rule.offset
        first = math.floor((at - margin - offset) / length) - 1
        last = math.floor((at + margin - offset) / length) + 1
        for k in range(first, last + 1):
            start = offset + k * length
            inside = start - margin <= at < start + length + margin
            if inside and self._count(start - margin, start + length + margin) >= rule.limit:
                at = start + length + margin
        return at

    def reserve(self, now: float) -> float:
        """Reserve the earliest send time >= ``now`` that keeps every window within its limit."""
        at = self.earliest(now)
        self._stamps.append(at)
        self._last = at
        return at

    def release(self, at: float) -> None:
        """Give back one unused reservation made for ``at`` (no-op if it is already forgotten)."""
        index = bisect.bisect_left(self._stamps, at, self._head)
        if index < len(self._stamps) and self._stamps[index] == at:
            del self._stamps[index]

    def pause_until(self, until: float) -> None:
        """No send time before ``until`` (the server said to wait)."""
        self._paused_until = max(self._paused_until, until)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def in_window(self, now: float) -> tuple[int, ...]:
        """Reservations each rule counts at ``now`` (for progress displays and tests)."""
        counts = []
        for rule in self._rules:
            if rule.fixed:
                k = math.floor((now - rule.offset) / rule.length)
                start = rule.offset + k * rule.length
                counts.append(self._count(start - rule.margin, start + rule.length + rule.margin))
            else:
                counts.append(self._count(math.nextafter(now - rule.length, math.inf), math.inf))
        return tuple(counts)


@attrs.frozen(kw_only=True)
class BudgetStatus:
    """What a progress display may show: how long sends are held back, and the totals."""

    paused_for: float
    """Seconds until a 429 pause ends (0 when there is none)."""
    next_slot_in: float
    """Seconds until a new request could be sent (0: at once)."""
    acquired: int
    """Requests let through by this budget object."""
    waited: float
    """Seconds its callers spent waiting, added up."""


class BudgetUnavailableError(DebituraError):
    """The shared budget's store (Redis) could not be reached in time; nothing was sent."""


@runtime_checkable
class Budget(Protocol):
    """What :class:`~debitura_async.DebituraClient` needs from a request budget.

    ``acquire`` is awaited before every attempt of every request and returns when it may be sent;
    ``pause`` is awaited after a 429 with the server's wait in seconds, and holds back every
    later send of everything sharing the budget; ``status`` is a cheap snapshot for displays.

    Optional, not part of the protocol check: ``scarcity() -> float`` in [0, 1], how scarce the
    key's requests are (:func:`windows_scarcity`); the job tracker reads it at most once a
    second to spend fewer polls as it rises. It must be cheap (no I/O) and must not raise. A
    budget without it reads as 0 (requests plentiful).
    """

    async def acquire(self) -> None: ...

    async def pause(self, seconds: float) -> None: ...

    def status(self) -> BudgetStatus: ...


def steady_wall_clock() -> Callable[[], float]:
    """Seconds since the epoch that never jump: the monotonic clock, anchored to the wall clock
    once. A wall clock stepped back (NTP, a VM resumed) cannot hold requests back by the step;
    fixed windows drift from the clock hour by the clocks' relative rate only (ppm)."""
    anchor = time.time() - time.monotonic()
    return lambda: anchor + time.monotonic()


class RequestBudget:
    """The in-process budget, shared by all requests of one or more clients using one key.

    >>> budget = RequestBudget()                                  # Debitura's documented limits
    >>> scaled = RequestBudget([RateLimit(100, 6.0)])             # e.g. for a time-scaled emulator

    ``await budget.acquire()`` returns when the caller may send. The reservation is FIFO; a
    caller cancelled while waiting gives its slot back. ``clock`` is seconds since the epoch
    (fixed windows are aligned to it; default :func:`steady_wall_clock`); ``sleep`` is injectable
    for tests.
    """

    def __init__(
        self,
        limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
        *,
        safety: float = 0.02,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.limits: tuple[RateLimit, ...] = tuple(limits)
        self._windows = Windows(self.limits, safety=safety)
        self._clock = clock if clock is not None else steady_wall_clock()
        self._sleep = sleep
        self.acquired = 0
        self.waited = 0.0

    def __repr__(self) -> str:
        shown = ", ".join(f"{lim.requests}/{lim.per:g}s" for lim in self.limits)
        return f"RequestBudget({shown})"

    async def acquire(self) -> None:
        """Wait until this request may be sent, then count it."""
        while True:
            now = self._clock()
            at = self._windows.reserve(now)
            if at > now:
                self.waited += at - now
                try:
                    await self._sleep(at - now)
                except BaseException:
                    self._windows.release(at)
                    raise
            # A 429 may have paused the budget while this caller slept on its reservation:
            # that slot is given back and a new one is taken behind the pause.
            if self._clock() >= self._windows.paused_until:
                self.acquired += 1
                return
            self._windows.release(at)

    def pause_remaining(self) -> float:
        """Seconds until a pause set by :meth:`pause` ends (0.0: not paused)."""
        return max(0.0, self._windows.paused_until - self._clock())

    async def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (called on a 429 with the server's wait)."""
        wait = float(seconds)  # negative or NaN: no pause; at most a day
        self._windows.pause_until(self._clock() + (min(wait, 86_400.0) if wait > 0 else 0.0))

    def status(self) -> BudgetStatus:
        now = self._clock()
        return BudgetStatus(
            paused_for=max(0.0, self._windows.paused_until - now),
            next_slot_in=max(0.0, self._windows.earliest(now) - now),
            acquired=self.acquired,
            waited=self.waited,
        )

    def in_window(self) -> tuple[int, ...]:
        """Reservations each window holds now."""
        return self._windows.in_window(self._clock())

    def scarcity(self) -> float:
        """How much of the tightest window is in use now, 0..1 (1 also while paused by a 429):
        the poll planner spends fewer polls as it rises (see :func:`windows_scarcity`)."""
        now = self._clock()
        windows = self._windows
        return windows_scarcity(
            windows.in_window(now), windows.rules, paused=windows.paused_until > now
        )

    async def aclose(self) -> None:
        """Nothing to close (there for symmetry with ``RedisBudget``)."""


def budget_from_url(
    url: str,
    *,
    api_key: str,
    limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
    **options: Any,
) -> RequestBudget | RedisBudget:
    """The budget a URL names (what the CLI's ``--budget`` / ``$DEBITURA_BUDGET_URL`` gives).

    * ``redis://host:port/db``, ``rediss://...``, ``unix:///path.sock``: a
      :class:`~debitura_async.redis_budget.RedisBudget` shared by every process using ``api_key``
      (needs the ``debitura-async[redis]`` extra); ``options`` go to it.
    * ``memory:`` (or ``local:``): an in-process :class:`RequestBudget` (``options``: ``safety``).

    Bad URLs raise :class:`~debitura_async.ConfigurationError`; the URL's password is never shown.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"budget URL must be a string, got {type(url).__name__}")
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme in {"memory", "local"}:
        try:
            return RequestBudget(limits, **options)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    if scheme in {"redis", "rediss", "unix"}:
        from .redis_budget import RedisBudget  # noqa: PLC0415 - optional extra

        return RedisBudget.from_url(url, api_key=api_key, limits=limits, **options)
    raise ConfigurationError(
        f"unsupported budget URL scheme {scheme or '(none)'!r}: "
        "use redis://host:port/db, rediss://..., unix:///path or memory:"
    )
