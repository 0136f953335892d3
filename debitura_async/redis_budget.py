"""One request budget per API key across processes and hosts, kept in Redis.

Needs the ``debitura-async[redis]`` extra (redis-py >= 5, ``redis.asyncio``).

Every acquire runs one Lua script (atomic) that applies every window of
:func:`debitura_async._budget.window_rules` to one sorted set of reserved send times, on Redis'
own clock (``TIME``), and reserves the earliest allowed slot in FIFO order: the caller sleeps
until then on its own monotonic clock. A 429 seen by any process sets a pause key that every
process honours. Keys are named after a hash of the API key (``debitura:budget:{<hash>}:...``);
the key itself is never sent to Redis. The script's reply also carries each window's count, so
:meth:`RedisBudget.scarcity` reflects every process's traffic without a round trip of its own.

Failure modes (see ``docs/budget.md``):

* Redis unreachable or slower than ``timeout``: ``acquire`` retries for up to
  ``unavailable_timeout`` seconds, then uses ``fallback`` (a local budget you give, e.g. your
  process's share of the limits) with a warning, or, without one, raises
  :class:`~debitura_async.BudgetUnavailableError`: fail closed, nothing is sent unbudgeted.
* Redis restarted empty: each process notices (a generation token changed) and writes its own
  reservations of the longest window back before it reserves again.
* A process killed while holding reservations: its slots count as spent until they leave the
  windows (never more than it had reserved, one per waiting request); nobody waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import AuthorizationError as RedisAuthorizationError
from redis.exceptions import NoPermissionError as RedisNoPermissionError
from redis.exceptions import RedisError

from ._budget import (
    DEFAULT_RATE_LIMITS,
    Budget,
    BudgetStatus,
    BudgetUnavailableError,
    RateLimit,
    Rule,
    window_rules,
    windows_scarcity,
)
from .errors import ConfigurationError

__all__ = ["DEFAULT_PREFIX", "RedisBudget", "key_namespace"]

logger = logging.getLogger("debitura_async.budget")

DEFAULT_PREFIX: Final = "debitura:budget"

_UNAVAILABLE = (RedisError, OSError, asyncio.TimeoutError)
"""Down, slow, read-only after a failover, out of memory: wait, then fail closed (or fall back)."""
_REFUSED = (RedisAuthenticationError, RedisAuthorizationError, RedisNoPermissionError)
"""Redis answered, and said no: a configuration error, not an outage (no waiting, no fallback)."""

# How many reservations each rule counts at ``now`` (``Windows.in_window``'s rule), from the rules
# in ARGV starting at index b: n, then 5 per rule (limit, length, fixed 0/1, margin, offset).
_COUNTS_LUA: Final = """
local function f(x) return string.format('%.17g', x) end
local function window_counts(b, now)
  local out = {}
  for i = 0, tonumber(ARGV[b]) - 1 do
    local j = b + 1 + 5 * i
    local length = tonumber(ARGV[j + 1])
    if ARGV[j + 2] == '1' then
      local margin, offset = tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4])
      local start = offset + math.floor((now - offset) / length) * length
      out[#out + 1] = redis.call('ZCOUNT', KEYS[1], f(start - margin),
                                 '(' .. f(start + length + margin))
    else
      out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. f(now - length), '+inf')
    end
  end
  return out
end
"""

# KEYS: log (zset of send times), paused (string), gen (string)
# ARGV: horizon, member, release member or "", fresh generation, n rules, then 5 per rule:
#       limit, length, fixed (0/1), margin, offset
# Returns {at, now, gen, paused until, then each rule's count at now (the slot included)}.
_RESERVE_LUA: Final = (
    _COUNTS_LUA
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local horizon = tonumber(ARGV[1])
local gen = redis.call('GET', KEYS[3])
if not gen then
  gen = ARGV[4]
  redis.call('SET', KEYS[3], gen)
end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[1], ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. f(now - horizon))
local at = now
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if top[2] then at = math.max(at, tonumber(top[2])) end
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
at = math.max(at, paused)
local n = tonumber(ARGV[5])
local converged = false
for round = 1, 100 do
  local moved = at
  for i = 0, n - 1 do
    local limit = tonumber(ARGV[6 + 5 * i])
    local length = tonumber(ARGV[7 + 5 * i])
    local fixed = ARGV[8 + 5 * i] == '1'
    local margin = tonumber(ARGV[9 + 5 * i])
    local offset = tonumber(ARGV[10 + 5 * i])
    if fixed then
      local first = math.floor((at - margin - offset) / length) - 1
      local last = math.floor((at + margin - offset) / length) + 1
      for k = first, last do
        local start = offset + k * length
        if start - margin <= at and at < start + length + margin then
          local c = redis.call('ZCOUNT', KEYS[1], f(start - margin),
                               '(' .. f(start + length + margin))
          if c >= limit then at = start + length + margin end
        end
      end
    else
      local nth = redis.call('ZREVRANGE', KEYS[1], limit - 1, limit - 1, 'WITHSCORES')
      if nth[2] then at = math.max(at, tonumber(nth[2]) + length) end
    end
  end
  if at == moved then converged = true break end
end
if not converged then return redis.error_reply('rate-limit rules did not converge') end
redis.call('ZADD', KEYS[1], f(at), ARGV[2])
local ttl = math.ceil((at - now + horizon) * 1000) + 60000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {f(at), f(now), gen, f(paused), unpack(window_counts(5, now))}
"""
)

# KEYS: log, paused. ARGV: n rules, then 5 per rule (as above). Reads only.
# Returns {now, paused until, then each rule's count at now}.
_WINDOWS_LUA: Final = (
    _COUNTS_LUA
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
return {f(now), f(paused), unpack(window_counts(1, now))}
"""
)

_WINDOWS_MAX_AGE: Final = 1.0
"""Seconds a reading of the shared windows is used for :meth:`RedisBudget.scarcity` before it
reads them again (in the background, at most once per this many seconds)."""

# KEYS: paused. ARGV: seconds. Returns {paused_until, now}.
_PAUSE_LUA: Final = """
local function f(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = tonumber(ARGV[1])
local untl = now + wait
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= untl then return {f(cur), f(now)} end
redis.call('SET', KEYS[1], f(untl), 'PX', math.ceil(wait * 1000) + 1000)
return {f(untl), f(now)}
"""

# KEYS: log, paused. ARGV: paused_until, then pairs of (send time, member). Returns now.
_SEED_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
local p = tonumber(ARGV[1])
if p > now then
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if p > cur then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', math.ceil((p - now) * 1000) + 1000)
  end
end
return string.format('%.17g', now)
"""

_SEED_CHUNK: Final = 500


def key_namespace(api_key: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The Redis key prefix for ``api_key``: a SHA-256 of it, never the key itself."""
    digest = hashlib.sha256(b"debitura-async/budget/v1\x00" + api_key.encode()).hexdigest()
    return f"{prefix}:{{{digest[:32]}}}"


def _checked_rules(
    api_key: str, limits: Sequence[RateLimit], safety: float, unavailable_timeout: float
) -> tuple[Rule, ...]:
    if not isinstance(api_key, str) or not api_key.strip():
        raise ConfigurationError("RedisBudget needs the API key (only its hash is used)")
    if not (math.isfinite(unavailable_timeout) and unavailable_timeout >= 0):
        raise ConfigurationError(
            f"unavailable_timeout must be >= 0 seconds, got {unavailable_timeout!r}"
        )
    try:
        return window_rules(limits, safety=safety)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _pause_seconds(seconds: float) -> float:
    """A server's wait as a sane number of seconds (negative or NaN: none; at most a day)."""
    wait = float(seconds)
    return min(wait, 86_400.0) if wait > 0 else 0.0


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBudget:
    """A :class:`~debitura_async.Budget` shared through Redis by every process using one key.

    Build it with :meth:`from_url` (it then owns its connection pool; close it with
    :meth:`aclose` or ``async with``), or pass a ``redis.asyncio.Redis`` of yours. Every process
    must use the same ``limits``, ``safety`` and ``prefix``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        api_key: str,
        limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
        safety: float = 0.02,
        prefix: str = DEFAULT_PREFIX,
        unavailable_timeout: float = 30.0,
        fallback: Budget | None = None,
        owns_redis: bool = False,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits: tuple[RateLimit, ...] = tuple(limits)
        rules = _checked_rules(api_key, self.limits, safety, unavailable_timeout)
        self._rules = rules
        self._horizon = max(rule.horizon for rule in rules)
        self._rule_args: list[str] = [str(len(rules))]
        for rule in rules:
            self._rule_args += [
                str(rule.limit),
                repr(rule.length),
                "1" if rule.fixed else "0",
                repr(rule.margin),
                repr(rule.offset),
            ]
        namespace = key_namespace(api_key.strip(), prefix)
        self._keys = [f"{namespace}:log", f"{namespace}:paused", f"{namespace}:gen"]
        self._redis = redis
        self._owns_redis = owns_redis
        self._reserve = redis.register_script(_RESERVE_LUA)
        self._pause = redis.register_script(_PAUSE_LUA)
        self._seed = redis.register_script(_SEED_LUA)
        self._read_windows = redis.register_script(_WINDOWS_LUA)
        self.unavailable_timeout = unavailable_timeout
        self.fallback = fallback
        self._sleep = sleep
        self._monotonic = monotonic
        self._token = secrets.token_hex(8)
        self._seq = 0
        self._gen: str | None = None
        self._mine: deque[tuple[float, str]] = deque()  # my reservations (Redis time, member)
        self._paused_until = 0.0  # Redis time, as last seen
        self._snapshot = (0.0, 0.0, 0.0)  # (monotonic, next slot in, paused for) at last reply
        self._degraded = False
        self._next_probe = 0.0
        # The shared windows as last read: (monotonic, Redis time, each rule's count).
        self._windows: tuple[float, float, tuple[int, ...]] = (-math.inf, 0.0, (0,) * len(rules))
        self._windows_tried = -math.inf
        self._windows_task: asyncio.Task[None] | None = None
        self._last_scarcity = 0.0
        self.acquired = 0
        self.waited = 0.0
        self.fallback_acquired = 0
        self.redis_resets = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        api_key: str,
        timeout: float = 1.0,
        **options: Any,
    ) -> RedisBudget:
        """A budget on the Redis at ``url``; ``timeout`` bounds each connect and each command."""
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        _checked_rules(
            api_key,
            options.get("limits", DEFAULT_RATE_LIMITS),
            options.get("safety", 0.02),
            options.get("unavailable_timeout", 30.0),
        )
        try:
            client = aioredis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:  # redis-py's message names the scheme, never the password
            raise ConfigurationError(f"bad Redis URL: {exc}") from None
        return cls(client, api_key=api_key, owns_redis=True, **options)

    def __repr__(self) -> str:
        shown = ", ".join(f"{lim.requests}/{lim.per:g}s" for lim in self.limits)
        return f"RedisBudget({shown})"

    async def aclose(self) -> None:
        task, self._windows_task = self._windows_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_redis:
            await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the protocol --------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Reserve the next shared slot, sleep until it, and return (see the module doc)."""
        release = ""
        while True:
            reply = await self._reserve_or_fallback(release)
            if reply is None:  # the fallback budget let this request through
                return
            at, now, member = reply
            if at > now:
                self.waited += at - now
                await self._sleep(at - now)
                # A 429 elsewhere may have paused every process while this one slept.
                if await self._paused_since(at):
                    release = member
                    continue
            self.acquired += 1
            return

    async def pause(self, seconds: float) -> None:
        """Pause every process sharing the key for ``seconds`` (a 429's wait)."""
        wait = _pause_seconds(seconds)
        try:
            raw = await self._pause(keys=[self._keys[1]], args=[repr(wait)])
        except _UNAVAILABLE as exc:
            logger.warning("budget: could not share a 429 pause through Redis (%s)", exc)
            if self.fallback is not None:
                await self.fallback.pause(wait)
            self._snapshot = (self._monotonic(), self._snapshot[1], wait)
            return
        until, now = float(_decode(raw[0])), float(_decode(raw[1]))
        self._paused_until = until
        self._snapshot = (self._monotonic(), self._snapshot[1], max(0.0, until - now))
        if self.fallback is not None:
            await self.fallback.pause(wait)

    def status(self) -> BudgetStatus:
        """From the last Redis reply, aged on the local monotonic clock (no I/O)."""
        seen, next_in, paused_for = self._snapshot
        elapsed = self._monotonic() - seen
        return BudgetStatus(
            paused_for=max(0.0, paused_for - elapsed),
            next_slot_in=max(0.0, next_in - elapsed),
            acquired=self.acquired + self.fallback_acquired,
            waited=self.waited,
        )

    def scarcity(self) -> float:
        """How scarce the key's requests are, 0..1, across every process sharing it (the
        :func:`~debitura_async._budget.windows_scarcity` of the shared windows; 1 while paused).

        No I/O: the windows as the last Redis reply showed them (each acquire's script returns
        them), read again in the background when that is older than a second. While Redis cannot
        be read it is the last value known (0 before any); while the fallback budget is in use,
        the fallback's own scarcity if it has one. Never raises.
        """
        try:
            value = self._scarcity_now()
        except Exception as exc:  # noqa: BLE001 - a reading for the planner must never fail it
            logger.debug("budget: scarcity unavailable (%s)", type(exc).__name__)
            return self._last_scarcity
        self._last_scarcity = value
        return value

    def _scarcity_now(self) -> float:
        now = self._monotonic()
        if self._degraded and self.fallback is not None:
            reading = getattr(self.fallback, "scarcity", None)
            if callable(reading):
                return min(1.0, max(0.0, float(reading())))
            return self._last_scarcity
        seen, redis_now, counts = self._windows
        if now - seen >= _WINDOWS_MAX_AGE:
            self._refresh_windows(now)
        paused = self.status().paused_for > 0 or self._paused_until > redis_now + (now - seen)
        return windows_scarcity(counts, self._rules, paused=paused)

    def _refresh_windows(self, now: float) -> None:
        """Start one background read of the windows (at most one at a time, one a second)."""
        if now - self._windows_tried < _WINDOWS_MAX_AGE:
            return
        if self._windows_task is not None and not self._windows_task.done():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: the last reading stays
            return
        self._windows_tried = now
        self._windows_task = asyncio.create_task(self._read_windows_once())

    async def _read_windows_once(self) -> None:
        try:
            raw = await self._read_windows(keys=self._keys[:2], args=self._rule_args)
            redis_now, paused = float(_decode(raw[0])), float(_decode(raw[1]))
            self._note_windows(redis_now, raw[2:])
        except Exception as exc:  # noqa: BLE001 - down, slow, refused: the last reading stays
            logger.debug("budget: could not read the shared windows (%s)", type(exc).__name__)
            return
        self._paused_until = max(self._paused_until, paused)

    def _note_windows(self, redis_now: float, raw_counts: Sequence[Any]) -> None:
        counts = tuple(int(_decode(c)) for c in raw_counts)
        if len(counts) == len(self._rules):
            self._windows = (self._monotonic(), redis_now, counts)

    # -- Redis ---------------------------------------------------------------------------------

    async def _reserve_or_fallback(self, release: str) -> tuple[float, float, str] | None:
        if self._degraded and self.fallback is not None and self._monotonic() < self._next_probe:
            await self.fallback.acquire()  # Redis was down a moment ago: probe it once a second
            self.fallback_acquired += 1
            return None
        started = self._monotonic()
        delay = 0.05
        while True:
            try:
                reply = await self._reserve_once(release)
            except _REFUSED as exc:
                raise ConfigurationError(f"Redis refused the budget's commands: {exc}") from None
            except _UNAVAILABLE as exc:
                failure: BaseException = exc
            else:
                if self._degraded:
                    logger.warning("budget: Redis is reachable again; the shared budget resumes")
                    self._degraded = False
                return reply
            if self.fallback is not None and (
                self._degraded or self._monotonic() - started >= self.unavailable_timeout
            ):
                self._next_probe = self._monotonic() + 1.0
                if not self._degraded:
                    logger.warning(
                        "budget: Redis unreachable (%s); using the local fallback budget",
                        failure,
                    )
                    self._degraded = True
                await self.fallback.acquire()
                self.fallback_acquired += 1
                return None
            if self._monotonic() - started >= self.unavailable_timeout:
                raise BudgetUnavailableError(
                    f"the shared request budget's Redis is unreachable ({failure}); "
                    "nothing was sent"
                ) from None
            await self._sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _reserve_once(self, release: str) -> tuple[float, float, str]:
        while True:
            self._seq += 1
            member = f"{self._token}:{self._seq}"
            raw = await self._reserve(
                keys=self._keys,
                args=[repr(self._horizon), member, release, secrets.token_hex(8), *self._rule_args],
            )
            at, now = float(_decode(raw[0])), float(_decode(raw[1]))
            gen, paused = _decode(raw[2]), float(_decode(raw[3]))
            if self._gen is not None and gen != self._gen:
                # Redis lost its state (restarted empty, flushed): put back what this process
                # knows, drop the slot just computed against an empty log, and reserve again.
                self._gen = gen
                self.redis_resets += 1
                logger.warning("budget: Redis lost the shared windows; restoring this process's")
                await self._reseed(now, drop=member)
                release = ""
                continue
            self._gen = gen
            self._paused_until = max(self._paused_until, paused)
            self._note_windows(now, raw[4:])
            self._remember(at, now, member)
            self._snapshot = (self._monotonic(), at - now, max(0.0, paused - now))
            return at, now, member

    def _remember(self, at: float, now: float, member: str) -> None:
        mine = self._mine
        while mine and mine[0][0] < now - self._horizon:
            mine.popleft()
        mine.append((at, member))

    async def _reseed(self, now: float, *, drop: str) -> None:
        keep = [(at, m) for at, m in self._mine if at >= now - self._horizon and m != drop]
        self._mine = deque(keep)
        log, paused = self._keys[0], self._keys[1]
        await self._redis.zrem(log, drop)
        for i in range(0, max(len(keep), 1), _SEED_CHUNK):
            args: list[str] = [repr(self._paused_until)]
            for at, member in keep[i : i + _SEED_CHUNK]:
                args += [repr(at), member]
            await self._seed(keys=[log, paused], args=args)

    async def _paused_since(self, at: float) -> bool:
        """Whether a pause now covers ``at`` (best effort: unreadable counts as no pause)."""
        try:
            raw = await self._redis.get(self._keys[1])
        except RedisError:
            return False
        if raw is None:
            return False
        until = float(_decode(raw))
        self._paused_until = max(self._paused_until, until)
        return until > at
