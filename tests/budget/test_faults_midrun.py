"""Redis failing in the middle of a real ingestion against the rate-limited emulator.

Restarted: the run waits it out and finishes, no 429. Gone for good, no fallback: the budget
fails closed, nothing is sent unbudgeted, every row is accounted (the rest unresolved). Gone, with
a fallback: the run finishes on the fallback's share. Wrong password: a configuration error at
once, not a 30-second wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from debitura_async import (
    ConfigurationError,
    DebituraClient,
    IngestionJobRow,
    IngestionSummary,
    IngestProgress,
    RateLimit,
    RequestBudget,
)
from debitura_async._polling import PollPolicy
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits
from debitura_async.redis_budget import RedisBudget

from ._redis_server import RedisServer

SCALE = 30.0
LIMIT = 40  # per 2 s real
ROWS = 300


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorProcess]:
    config = EmulatorConfig(
        seed=21,
        time_scale=SCALE,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(per_minute=LIMIT, per_hour=None, per_day=None),
        store_notes=False,
    )
    async with EmulatorProcess(config) as process:
        yield process


async def _ingest(
    emu: EmulatorProcess,
    budget: RedisBudget,
    *,
    max_poll_failures: int = 10,
    on_progress: Callable[[IngestProgress], None] | None = None,
) -> IngestionSummary:
    rows = [
        IngestionJobRow(
            emu.case_ids[i % len(emu.case_ids)], f"Fault note {i}", external_ref=f"F{i}"
        )
        for i in range(ROWS)
    ]
    async with DebituraClient(emu.api_key, base_url=emu.url, budget=budget) as client:
        return await client.ingest_all(
            rows,
            batch_size=10,
            polling=PollPolicy().scaled(SCALE),
            max_poll_failures=max_poll_failures,
            on_progress=on_progress,
            progress_interval=0.0,
        )


class _FirstJob:
    """The run's progress callback that tells when a first job was seen done: the moment to
    break Redis mid-run (a fixed 1 s was sometimes before any request under the parallel suite,
    so nothing had succeeded and nothing was reserved yet)."""

    def __init__(self) -> None:
        self._done = asyncio.Event()

    def __call__(self, progress: IngestProgress) -> None:
        if progress.rows_succeeded:
            self._done.set()

    async def seen(self) -> None:
        await asyncio.wait_for(self._done.wait(), 60.0)


def _budget(server: RedisServer, emu: EmulatorProcess, **options: object) -> RedisBudget:
    return RedisBudget.from_url(
        server.url,
        api_key=emu.api_key,
        limits=[RateLimit(LIMIT, 60.0 / SCALE)],
        # a quarter of the 2-s window: under the parallel suite a burst's sends can reach the
        # server 0.2 s apart (0.1 once let 3 requests of 300 through early)
        safety=0.25,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_redis_restarted_mid_run(redis_server: RedisServer, emu: EmulatorProcess) -> None:
    first = _FirstJob()

    async def bounce() -> None:
        await first.seen()
        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()

    async with _budget(redis_server, emu, unavailable_timeout=15.0) as budget:
        bouncing = asyncio.create_task(bounce())
        summary = await _ingest(emu, budget, on_progress=first)
        await bouncing
    assert summary.rows_succeeded == ROWS
    assert (await emu.stats())["rate_limited"] == 0
    assert budget.redis_resets == 1  # it noticed the empty Redis and restored its reservations


@pytest.mark.anyio
async def test_redis_gone_mid_run_fails_closed(
    redis_server: RedisServer, emu: EmulatorProcess
) -> None:
    first = _FirstJob()

    async def kill() -> None:
        await first.seen()
        redis_server.stop()

    async with _budget(redis_server, emu, unavailable_timeout=0.3, timeout=0.2) as budget:
        killing = asyncio.create_task(kill())
        # polls fail from then on: give each job up after 3 (10 by default: 39 s of back-off)
        summary = await _ingest(emu, budget, max_poll_failures=3, on_progress=first)
        await killing
    stats = await emu.stats()
    assert stats["rate_limited"] == 0
    sent = sum(n for counts in stats["requests"].values() for n in counts.values())
    assert sent == budget.acquired  # every request the emulator saw had been budgeted
    assert 0 < summary.rows_succeeded < ROWS
    assert summary.rows_succeeded + summary.rows_unresolved == ROWS  # every row accounted


@pytest.mark.anyio
async def test_redis_gone_mid_run_with_a_fallback(
    redis_server: RedisServer, emu: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="debitura_async.budget")
    fallback = RequestBudget([RateLimit(LIMIT // 2, 60.0 / SCALE)], safety=0.1)

    first = _FirstJob()

    async def kill() -> None:
        await first.seen()
        redis_server.stop()

    async with _budget(
        redis_server, emu, unavailable_timeout=0.2, timeout=0.2, fallback=fallback
    ) as budget:
        killing = asyncio.create_task(kill())
        summary = await _ingest(emu, budget, on_progress=first)
        await killing
    assert summary.rows_succeeded == ROWS
    assert budget.fallback_acquired > 0
    assert "using the local fallback budget" in caplog.text


@pytest.mark.anyio
async def test_a_wrong_redis_password_is_a_configuration_error() -> None:
    with RedisServer(extra=("--requirepass", "s3cret-pw")) as server:
        budget = RedisBudget.from_url(server.url, api_key="pk_x", unavailable_timeout=30.0)
        try:
            with pytest.raises(ConfigurationError, match="refused"):
                await asyncio.wait_for(budget.acquire(), 5.0)
        finally:
            await budget.aclose()
        wrong = server.url.replace("redis://", "redis://:wrong-pw@")
        budget = RedisBudget.from_url(wrong, api_key="pk_x")
        try:
            with pytest.raises(ConfigurationError) as caught:
                await asyncio.wait_for(budget.acquire(), 5.0)
            assert "wrong-pw" not in str(caught.value)
        finally:
            await budget.aclose()
