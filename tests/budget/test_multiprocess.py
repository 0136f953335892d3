"""Separate OS processes sharing one key: through Redis, and (for contrast) each on its own.

The headline test of the shared budget: a real redis-server and the emulator in their own
processes, the emulator's rate limit switched on and time-scaled, 4 worker processes each
ingesting with the one key. Through the Redis budget no 429 is received; with a budget per
process the 429s it causes are reported (not asserted: how many depends on timing).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from debitura_async import RateLimit
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits
from debitura_async.redis_budget import RedisBudget

from ._multi import Worker, four_process_ingest
from ._redis_server import RedisServer, log_stamps

SCALE = 30.0
LIMIT = 60  # per model minute = per 2 s real
WINDOW = 60.0 / SCALE
ROWS_EACH = 250
BATCH = 10
SAFETY = 0.1
"""Windows lengthened by 200 ms real: a burst of 60 requests from 4 processes reaches the
single-threaded emulator spread over up to ~100 ms on a loaded 2-core machine."""


@pytest.fixture
async def limited_emulator() -> AsyncIterator[EmulatorProcess]:
    config = EmulatorConfig(
        seed=14,
        time_scale=SCALE,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(per_minute=LIMIT, per_hour=None, per_day=None),
        store_notes=False,
    )
    async with EmulatorProcess(config) as emu:
        yield emu


async def _run(
    emu: EmulatorProcess, budget: str, redis_url: str = ""
) -> tuple[list[dict[str, Any]], int]:
    results = await four_process_ingest(
        budget=budget,
        redis_url=redis_url,
        base_url=emu.url,
        api_key=emu.api_key,
        case_ids=emu.case_ids,
        limits=[(LIMIT, WINDOW)],
        rows_each=ROWS_EACH,
        batch_size=BATCH,
        time_scale=SCALE,
        safety=SAFETY,
    )
    stats = await emu.stats()
    return results, int(stats["rate_limited"])


@pytest.mark.anyio
async def test_four_processes_through_redis_get_no_429(
    redis_server: RedisServer, limited_emulator: EmulatorProcess
) -> None:
    results, refused = await _run(limited_emulator, "redis", redis_server.url)
    assert refused == 0
    assert sum(r["rate_limited"] for r in results) == 0
    assert sum(r["rows_succeeded"] for r in results) == 4 * ROWS_EACH
    assert all(r["rows_read"] == r["rows_succeeded"] == ROWS_EACH for r in results)
    requests = sum(r["requests"] for r in results)
    assert requests > 2 * LIMIT  # the limit did bind
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    ends = sorted(r["ended"] for r in results)
    print(
        f"\nredis budget: {requests} requests in {wall:.2f} s, 0 x 429; "
        f"the 4 processes finished within {ends[-1] - ends[0]:.2f} s of each other"
    )


@pytest.mark.anyio
async def test_four_processes_each_with_its_own_budget_cause_429s(
    limited_emulator: EmulatorProcess,
) -> None:
    results, refused = await _run(limited_emulator, "local")
    # Every row is still accounted (the 429s are retried), but the server had to refuse.
    assert sum(r["rows_succeeded"] for r in results) == 4 * ROWS_EACH
    print(f"\nin-process budgets: {refused} x 429 at the emulator")


@pytest.mark.anyio
async def test_a_killed_process_holding_reservations_does_not_stop_the_others(
    redis_server: RedisServer,
) -> None:
    limits = [RateLimit(5, 1.0), RateLimit(10_000, 3600.0)]
    holder = await Worker.start(
        {
            "mode": "hold",
            "budget": "redis",
            "redis_url": redis_server.url,
            "api_key": "pk_test_kill",
            "limits": [[5, 1.0], [10_000, 3600.0]],
            "safety": 0.0,
            "acquirers": 12,  # 5 go at once, 7 reserve slots 1 s and 2 s ahead
        }
    )
    try:
        ready = await holder.read()
        assert ready["done"] == 5
        holder.proc.send_signal(signal.SIGKILL)
        await holder.proc.wait()
    finally:
        await holder.close()
    async with RedisBudget.from_url(
        redis_server.url, api_key="pk_test_kill", limits=limits, safety=0.0
    ) as survivor:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(5):
            await survivor.acquire()
        waited = loop.time() - started
    # The dead process's 7 future slots count as spent (never double-spent) until they pass:
    # the survivor's 5 come after them, in the following second, and then nothing is left over.
    assert 1.0 <= waited < 4.0
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        sends = await log_stamps(raw, "pk_test_kill")
    finally:
        await raw.aclose()
    assert len(sends) == 12 + 5
    for start in sends:
        assert sum(1 for t in sends if start <= t < start + 1.0 - 1e-9) <= 5
