"""RedisBudget.scarcity() against a real redis-server: the shared windows, across clients and
processes, without a round trip per read, and never an exception into the tracker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest
import redis.asyncio as aioredis

from debitura_async import DebituraClient, IngestionJobRow, RateLimit, RequestBudget
from debitura_async._polling import PollPolicy
from debitura_async.emulator import Emulator, EmulatorConfig
from debitura_async.redis_budget import RedisBudget

from ._multi import Worker
from ._redis_server import RedisServer, log_stamps

KEY = "pk_live_SECRET-scarcity-key-0123456789"
TEN = [RateLimit(10, 60.0)]

pytestmark = pytest.mark.anyio


class Clock:
    """A monotonic clock the test moves on (the budget ages its readings on it)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def make(
    server: RedisServer,
    limits: Sequence[RateLimit] = TEN,
    *,
    api_key: str = KEY,
    **options: object,
) -> RedisBudget:
    return RedisBudget.from_url(server.url, api_key=api_key, limits=limits, safety=0.0, **options)  # type: ignore[arg-type]


async def settle(budget: RedisBudget) -> None:
    """Let a background read of the windows (if one was started) finish."""
    task = budget._windows_task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), 5.0)


async def reading(budget: RedisBudget, clock: Clock | None = None) -> float:
    """The scarcity once a fresh reading is in (the clock moved past the reading's age)."""
    if clock is not None:
        clock.now += 1.5
    budget.scarcity()  # starts the background read
    await settle(budget)
    return budget.scarcity()


async def held(server: RedisServer, api_key: str, count: int) -> None:
    """Wait until the key's shared log holds ``count`` reservations (another process's)."""
    raw = aioredis.Redis.from_url(server.url)
    try:
        with anyio.fail_after(30.0):
            while len(await log_stamps(raw, api_key)) < count:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.02)
    finally:
        await raw.aclose()


async def evalsha_calls(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_own_acquires_show_at_once_without_another_round_trip(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    clock = Clock()  # still: the reading never ages past a second, whatever the machine's load
    async with make(redis_server, monotonic=clock) as budget:
        for _ in range(4):
            await budget.acquire()
        before = await evalsha_calls(raw)
        values = {budget.scarcity() for _ in range(200)}
        await asyncio.sleep(0.05)
        assert values == {0.4}  # the acquire script's reply carried the windows
        assert await evalsha_calls(raw) == before  # reading it cost nothing
        assert budget._windows_task is None


async def test_same_rule_as_the_in_process_budget(redis_server: RedisServer) -> None:
    limits = [RateLimit(8, 60.0), RateLimit(5, 3600.0, fixed=True), RateLimit(100, 600.0)]
    local = RequestBudget(limits, safety=0.0)
    async with make(redis_server, limits) as shared:
        seen = []
        for _ in range(4):
            await shared.acquire()
            await local.acquire()
            seen.append((shared.scarcity(), local.scarcity()))
    # (Both see the fixed hour's 5 as the tightest; a clock hour starting mid-test would differ.)
    assert [mine for mine, _ in seen] == [theirs for _, theirs in seen] == [0.2, 0.4, 0.6, 0.8]


async def test_another_clients_traffic_raises_this_ones_scarcity(
    redis_server: RedisServer,
) -> None:
    clock = Clock()
    async with make(redis_server, monotonic=clock) as mine, make(redis_server) as other:
        assert await reading(mine) == 0.0
        for _ in range(6):
            await other.acquire()
        assert mine.scarcity() == 0.0  # the reading is less than a second old: kept
        assert await reading(mine, clock) == pytest.approx(0.6)
        await mine.acquire()  # its own reply carries the others' reservations too
        assert mine.scarcity() == pytest.approx(0.7)
        await other.pause(30.0)  # a 429 elsewhere: requests are as scarce as they get
        assert await reading(mine, clock) == 1.0


async def test_another_process_on_the_key_raises_the_scarcity(redis_server: RedisServer) -> None:
    clock = Clock()
    holder = await Worker.start(
        {
            "mode": "hold",
            "budget": "redis",
            "redis_url": redis_server.url,
            "api_key": KEY,
            "limits": [[10, 60.0]],
            "safety": 0.0,
            "acquirers": 7,
        }
    )
    try:
        async with make(redis_server, monotonic=clock) as mine:
            assert await reading(mine) == 0.0
            assert (await holder.read())["ready"]
            await held(redis_server, KEY, 7)
            assert await reading(mine, clock) == pytest.approx(0.7)
    finally:
        await holder.close()


async def test_reads_are_rate_limited_to_one_a_second(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    clock = Clock()
    async with make(redis_server, monotonic=clock) as budget:
        await reading(budget)
        before = await evalsha_calls(raw)
        for _ in range(50):  # stale, but the last read was started less than a second ago
            clock.now += 0.01
            budget.scarcity()
            await asyncio.sleep(0)
        await settle(budget)
        assert await evalsha_calls(raw) == before
        clock.now += 1.0
        await reading(budget)
        assert await evalsha_calls(raw) == before + 1


async def test_redis_gone_keeps_the_last_value_and_never_raises(
    redis_server: RedisServer,
) -> None:
    clock = Clock()
    async with make(redis_server, monotonic=clock, timeout=0.3) as budget:
        for _ in range(3):
            await budget.acquire()
        assert budget.scarcity() == pytest.approx(0.3)
        redis_server.stop()
        assert await reading(budget, clock) == pytest.approx(0.3)
        assert await reading(budget, clock) == pytest.approx(0.3)


async def test_a_fresh_budget_with_redis_gone_reads_zero(redis_server: RedisServer) -> None:
    redis_server.stop()
    async with make(redis_server, timeout=0.3) as budget:
        assert await reading(budget) == 0.0


async def test_while_on_the_fallback_the_fallbacks_scarcity_counts(
    redis_server: RedisServer,
) -> None:
    fallback = RequestBudget([RateLimit(4, 60.0)], safety=0.0)
    async with make(redis_server, fallback=fallback, unavailable_timeout=0.0, timeout=0.3) as b:
        redis_server.stop()
        await b.acquire()
        assert b.fallback_acquired == 1
        assert b.scarcity() == pytest.approx(0.25)


async def test_aclose_ends_a_read_stuck_on_a_frozen_redis(redis_server: RedisServer) -> None:
    budget = make(redis_server, timeout=30.0)
    redis_server.pause()
    try:
        budget.scarcity()
        task = budget._windows_task
        assert task is not None
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await budget.aclose()
        assert loop.time() - started < 2.0
        assert task.done()
    finally:
        redis_server.resume()


def test_outside_an_event_loop_it_reads_without_starting_anything(
    redis_server: RedisServer,
) -> None:
    budget = make(redis_server)
    assert budget.scarcity() == 0.0
    assert budget._windows_task is None
    asyncio.run(budget.aclose())


async def test_a_client_on_the_key_polls_as_if_requests_were_scarce(
    redis_server: RedisServer,
) -> None:
    """End to end: another process holds most of the key's window; this client's tracker sees
    it through the shared budget and its planner moves toward saving requests."""
    config = EmulatorConfig(time_scale=200.0, seed=3)
    async with Emulator(config) as emu:
        limits = [RateLimit(100, 600.0)]
        holder = await Worker.start(
            {
                "mode": "hold",
                "budget": "redis",
                "redis_url": redis_server.url,
                "api_key": emu.api_key,
                "limits": [[100, 600.0]],
                "safety": 0.0,
                "acquirers": 85,
            }
        )
        try:
            assert (await holder.read())["ready"]
            await held(redis_server, emu.api_key, 85)
            budget = make(redis_server, limits, api_key=emu.api_key)
            try:
                async with DebituraClient(
                    emu.api_key,
                    base_url=emu.url,
                    budget=budget,
                    polling=PollPolicy().scaled(200.0),
                ) as client:
                    handle = await client.submit([IngestionJobRow(emu.case_ids[0], "scarce")])
                    await handle.wait(timeout=30.0)
                    stats = client.tracker.stats()
            finally:
                await budget.aclose()
        finally:
            await holder.close()
    assert stats
    assert all(s.scarcity >= 0.85 for s in stats), stats
    assert all(s.mode == "requests" for s in stats), stats
