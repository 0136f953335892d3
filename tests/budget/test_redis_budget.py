"""RedisBudget against a real redis-server: windows, fairness, 429 broadcast, secrecy, URLs."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis

from debitura_async import (
    Budget,
    BudgetUnavailableError,
    ConfigurationError,
    RateLimit,
    RequestBudget,
    budget_from_url,
)
from debitura_async.redis_budget import RedisBudget

from ._redis_server import RedisServer, log_stamps

KEY = "pk_live_SECRET-budget-key-0123456789"


def make(server: RedisServer, limits: Sequence[RateLimit], **options: object) -> RedisBudget:
    return RedisBudget.from_url(server.url, api_key=KEY, limits=limits, safety=0.0, **options)  # type: ignore[arg-type]


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def stamps(raw: aioredis.Redis) -> list[float]:
    return await log_stamps(raw, KEY)


def most_in_any(sends: Sequence[float], per: float) -> int:
    ordered = sorted(sends)
    return max(sum(1 for t in ordered if start <= t < start + per - 1e-9) for start in ordered)


@pytest.mark.anyio
async def test_acquire_spaces_requests_on_redis_time(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    async with make(redis_server, [RateLimit(5, 0.4)]) as budget:
        assert isinstance(budget, Budget)
        started = time.monotonic()
        for _ in range(5):
            await budget.acquire()
        assert budget.waited == 0.0
        await budget.acquire()
        assert time.monotonic() - started >= 0.39
        assert budget.acquired == 6
        assert budget.status().acquired == 6
    sends = await stamps(raw)
    assert len(sends) == 6
    seconds, micros = await raw.time()
    redis_now = seconds + micros / 1e6
    assert abs(max(sends) - redis_now) < 5.0  # the stamps are Redis' clock


@pytest.mark.anyio
async def test_concurrent_acquirers_in_several_budgets_never_cross_any_window(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    limits = [
        RateLimit(10, 0.3),
        RateLimit(25, 1.0, fixed=True),
        RateLimit(18, 0.6, segment=0.1),
        RateLimit(10_000, 3600.0),  # never binds; keeps every stamp in Redis for the checks
    ]
    budgets = [make(redis_server, limits) for _ in range(4)]
    woke: list[float] = []

    async def worker(budget: RedisBudget) -> None:
        for _ in range(8):
            await budget.acquire()
            woke.append(time.time())

    try:
        await asyncio.gather(*(worker(b) for b in budgets for _ in range(3)))
    finally:
        for b in budgets:
            await b.aclose()
    sends = await stamps(raw)
    assert len(sends) == len(woke) == 96
    assert most_in_any(sends, 0.3) <= 10
    assert most_in_any(sends, 0.7) <= 18  # 0.6 s counted in 0.1-s segments
    for hour in {int(t // 1.0) for t in sends}:
        assert sum(1 for t in sends if hour <= t < hour + 1.0) <= 25
    # Nobody woke before its slot (same host: Redis' clock is this clock).
    assert min(woke) >= min(sends) - 0.01


@pytest.mark.anyio
async def test_fifo_fairness_across_clients(redis_server: RedisServer) -> None:
    """A client with one caller is not starved by a client with many: slots go in arrival order."""
    limits = [RateLimit(20, 0.5)]
    greedy, modest = make(redis_server, limits), make(redis_server, limits)
    stop = asyncio.Event()
    counts = {"greedy": 0, "modest": 0}

    async def loop(budget: RedisBudget, name: str) -> None:
        while not stop.is_set():
            await budget.acquire()
            counts[name] += 1

    tasks = [asyncio.create_task(loop(greedy, "greedy")) for _ in range(15)]
    tasks += [asyncio.create_task(loop(modest, "modest")) for _ in range(5)]
    await asyncio.sleep(2.0)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await greedy.aclose()
    await modest.aclose()
    total = counts["greedy"] + counts["modest"]
    assert total >= 60
    # In proportion to demand (15:5), within slack: nobody starves.
    assert counts["modest"] >= total * 0.15, counts


@pytest.mark.anyio
async def test_a_429_in_one_process_pauses_all(redis_server: RedisServer) -> None:
    limits = [RateLimit(1000, 60.0)]
    async with make(redis_server, limits) as a, make(redis_server, limits) as b:
        await b.acquire()
        await a.pause(0.5)
        assert a.status().paused_for > 0.4
        started = time.monotonic()
        await b.acquire()
        assert time.monotonic() - started >= 0.45
        for odd in (-3.0, 0.0, float("nan")):  # never shortens a pause, never an error
            await a.pause(odd)
        await a.pause(float("inf"))  # capped at a day
        assert 86_000 < a.status().paused_for <= 86_400


@pytest.mark.anyio
async def test_a_pause_overtakes_a_caller_already_sleeping(redis_server: RedisServer) -> None:
    limits = [RateLimit(1, 0.3)]
    async with make(redis_server, limits) as a, make(redis_server, limits) as b:
        await b.acquire()
        sleeper = asyncio.create_task(b.acquire())  # reserved ~0.3 s ahead
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await a.pause(0.8)
        await sleeper
        assert time.monotonic() - started >= 0.75  # not at its first slot, but after the pause


@pytest.mark.anyio
async def test_the_api_key_is_in_no_redis_key_or_value(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    async with make(redis_server, [RateLimit(3, 0.2)]) as budget:
        for _ in range(4):
            await budget.acquire()
        await budget.pause(0.01)
        assert KEY not in repr(budget)
    keys = [k async for k in raw.scan_iter("*")]
    assert keys
    dump = []
    for key in keys:
        dump.append(key)
        kind = await raw.type(key)
        if kind == b"zset":
            dump += list(await raw.zrange(key, 0, -1))
        elif kind == b"string":
            dump.append(await raw.get(key))
    blob = b"\n".join(dump)
    for fragment in (KEY, KEY[:12], KEY[-12:], "SECRET"):
        assert fragment.encode() not in blob


@pytest.mark.anyio
async def test_redis_unreachable_fails_closed_with_a_typed_error() -> None:
    # A socket bound and never listening: connections to its port are refused, and no other
    # process (a parallel test worker's redis-server) can take the port while it is held.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        server = RedisServer(int(held.getsockname()[1]))  # never started
        try:
            budget = make(server, [RateLimit(5, 1.0)], unavailable_timeout=0.3, timeout=0.2)
            started = time.monotonic()
            with pytest.raises(BudgetUnavailableError, match="unreachable") as caught:
                await budget.acquire()
            assert 0.3 <= time.monotonic() - started < 3.0
            assert KEY not in str(caught.value)
            await budget.aclose()
        finally:
            server.close()


@pytest.mark.anyio
async def test_slow_redis_counts_as_unreachable(redis_server: RedisServer) -> None:
    async with make(
        redis_server, [RateLimit(5, 1.0)], unavailable_timeout=0.4, timeout=0.15
    ) as budget:
        await budget.acquire()
        redis_server.pause()  # accepts connections, answers nothing
        try:
            with pytest.raises(BudgetUnavailableError):
                await budget.acquire()
        finally:
            redis_server.resume()
        await budget.acquire()  # and back once it answers


@pytest.mark.anyio
async def test_fallback_budget_while_redis_is_down_then_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = RequestBudget([RateLimit(2, 0.5)], safety=0.0)
    budget = make(
        redis_server, [RateLimit(50, 1.0)], unavailable_timeout=0.1, timeout=0.2, fallback=fallback
    )
    caplog.set_level(logging.WARNING, logger="debitura_async.budget")
    try:
        await budget.acquire()
        redis_server.stop()
        started = time.monotonic()
        for _ in range(3):  # the fallback's 2 per 0.5 s now binds
            await budget.acquire()
        assert time.monotonic() - started >= 0.45
        assert budget.fallback_acquired == 3
        assert "using the local fallback budget" in caplog.text
        redis_server.start()
        await asyncio.sleep(1.05)  # the next probe of Redis is due
        await budget.acquire()
        assert budget.acquired == 2
        assert "reachable again" in caplog.text
    finally:
        await budget.aclose()


@pytest.mark.anyio
async def test_redis_restarted_empty_gets_each_process_reservations_back(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    limits = [RateLimit(4, 1.5), RateLimit(10_000, 3600.0)]
    async with make(redis_server, limits, unavailable_timeout=5.0) as a:
        for _ in range(4):
            await a.acquire()
        await a.pause(0.6)
        redis_server.stop()
        redis_server.start()  # same port, no persistence: every window is forgotten
        started = time.monotonic()
        await a.acquire()  # restores its 4 stamps and its pause, then waits for a real slot
        assert a.redis_resets == 1
        assert time.monotonic() - started >= 1.0
    sends = await stamps(raw)
    assert len(sends) == 5
    assert most_in_any(sends, 1.5) <= 4


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "unsupported budget URL scheme 'http'"),
        ("127.0.0.1:6379", "unsupported budget URL scheme '127.0.0.1'"),
        ("", "unsupported budget URL scheme '\\(none\\)'"),
        ("redis://:hunter2@127.0.0.1:notaport/0", "bad Redis URL"),
    ],
)
def test_budget_from_url_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        budget_from_url(url, api_key=KEY)
    assert "hunter2" not in str(caught.value)


@pytest.mark.anyio
async def test_budget_from_url_builds_either_budget(redis_server: RedisServer) -> None:
    assert isinstance(budget_from_url("memory:", api_key=KEY), RequestBudget)
    budget = budget_from_url(redis_server.url, api_key=KEY, limits=[RateLimit(3, 1.0)])
    assert isinstance(budget, RedisBudget)
    await budget.acquire()
    await budget.aclose()
    with pytest.raises(ConfigurationError, match="API key"):
        budget_from_url(redis_server.url, api_key="  ")
    with pytest.raises(ConfigurationError, match="timeout"):
        budget_from_url(redis_server.url, api_key=KEY, timeout=0)
    with pytest.raises(ConfigurationError, match="unavailable_timeout"):
        budget_from_url(redis_server.url, api_key=KEY, unavailable_timeout=-1)
    with pytest.raises(ConfigurationError, match="safety"):
        budget_from_url(redis_server.url, api_key=KEY, safety=2.0)
    with pytest.raises(ConfigurationError, match="safety"):
        budget_from_url("memory:", api_key=KEY, safety=-1.0)
    with pytest.raises(ConfigurationError, match="string"):
        budget_from_url(None, api_key=KEY)  # type: ignore[arg-type]
