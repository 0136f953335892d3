"""The Lua script and the pure :class:`Windows` reserve the very same send times (and count
the same reservations in each window at ``now``, the input of ``scarcity()``).

The script under test is the production text with its one ``TIME`` call swapped for a clock
the test sets, so any sequence of ``now`` values can be replayed through both.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debitura_async._budget import RateLimit, Windows, window_rules
from debitura_async.redis_budget import _RESERVE_LUA

from ._redis_server import RedisServer

_TIME = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000"
_counter = itertools.count()


@pytest.fixture(scope="module")
def sync_redis() -> Iterator[redis.Redis]:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        try:
            yield client
        finally:
            client.close()


def test_the_clock_swap_finds_the_time_call() -> None:
    assert _RESERVE_LUA.count(_TIME) == 1


_shapes = st.one_of(
    st.builds(RateLimit, st.integers(1, 6), st.floats(0.5, 50.0)),
    st.builds(
        lambda n, per, seg: RateLimit(n, per, segment=per * seg),
        st.integers(1, 6),
        st.floats(0.5, 50.0),
        st.floats(0.01, 0.5),
    ),
    st.builds(
        lambda n, per, off: RateLimit(n, per, fixed=True, offset=per * off),
        st.integers(1, 6),
        st.floats(0.5, 50.0),
        st.floats(0.0, 0.99),
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limits=st.lists(_shapes, min_size=1, max_size=3),
    safety=st.sampled_from([0.0, 0.02, 0.1]),
    start=st.floats(1.7e9, 1.8e9),
    steps=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=25),
)
def test_lua_and_python_reserve_the_same_times(
    sync_redis: redis.Redis,
    limits: list[RateLimit],
    safety: float,
    start: float,
    steps: list[float],
) -> None:
    script = sync_redis.register_script(
        _RESERVE_LUA.replace(_TIME, "local now = tonumber(redis.call('GET', 'test:now'))")
    )
    rules = window_rules(limits, safety=safety)
    args = [str(len(rules))]
    for rule in rules:
        args += [str(rule.limit), repr(rule.length), "1" if rule.fixed else "0"]
        args += [repr(rule.margin), repr(rule.offset)]
    horizon = max(rule.horizon for rule in rules)
    n = next(_counter)
    keys = [f"t{n}:log", f"t{n}:paused", f"t{n}:gen"]
    windows = Windows(limits, safety=safety)
    now = start
    for i, step in enumerate(steps):
        now += step
        sync_redis.set("test:now", repr(now))
        raw = script(keys=keys, args=[repr(horizon), f"m{i}", "", "g", *args])
        expected = windows.reserve(now)
        assert float(raw[0]) == pytest.approx(expected, rel=0, abs=1e-6), (i, now)
        # The windows the reply carries for scarcity() are the ones Windows counts.
        assert tuple(int(c) for c in raw[4:]) == windows.in_window(now), (i, now)
