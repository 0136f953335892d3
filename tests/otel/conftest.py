"""Fixtures of the hook and OpenTelemetry tests: a real emulator on 127.0.0.1 per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from debitura_async import RetryPolicy
from debitura_async.emulator import Emulator, EmulatorConfig

TIME_SCALE = 200.0


def fast_retry(max_retries: int = 5) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(time_scale=TIME_SCALE, seed=5)) as emulator:
        yield emulator
