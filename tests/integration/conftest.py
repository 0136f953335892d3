"""Fixtures for tests against the real emulator on 127.0.0.1 (real sockets, started per test)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator

import pytest

from debitura_async import DebituraClient, RetryPolicy
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel

TIME_SCALE = 200.0
"""Integration tests run the emulator's default latency model this many times faster."""


def fast_retry(max_retries: int = 5) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(time_scale=TIME_SCALE, seed=7)) as emu:
        yield emu


@pytest.fixture
async def instant_emulator() -> AsyncIterator[Emulator]:
    """Jobs finish the moment they are accepted (for tests about requests, not timing)."""
    async with Emulator(EmulatorConfig(latency=LatencyModel.zero(), seed=11)) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[DebituraClient]:
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        yield c


def no_leaked_tasks() -> list[asyncio.Task[object]]:
    """Live tasks running debitura_async client or pipeline code (none should outlive a run).

    The emulator's own server tasks and the test runner's task are not ours and are ignored.
    """
    leaked = []
    for task in asyncio.all_tasks():
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "debitura_async" in filename and "emulator" not in filename:
            leaked.append(task)
    return leaked


def collect_resource_warnings() -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [w for w in caught if issubclass(w.category, ResourceWarning)]
