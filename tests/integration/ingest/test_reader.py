"""The pipeline's reader loop: input read lazily, whole, and closed when reading stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from debitura_async import DebituraClient, IngestionJobRow, ValidationError
from debitura_async._polling import PollPolicy
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(latency=LatencyModel.zero(), seed=2)) as emu:
        yield emu


POLICY = PollPolicy().scaled(1000.0)


@pytest.mark.anyio
async def test_sync_input_is_read_lazily_and_closed_on_a_bad_row(emulator: Emulator) -> None:
    pulled: list[int] = []
    closed: list[bool] = []

    def rows() -> Iterator[Any]:
        try:
            for i in range(5000):
                pulled.append(i)
                yield {"caseId": "bad"} if i == 2100 else IngestionJobRow(emulator.case_ids[0], "n")
        finally:
            closed.append(True)

    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        with pytest.raises(ValidationError):
            await client.ingest_all(rows(), on_invalid="raise", polling=POLICY)
    assert pulled[-1] == 2100  # nothing read past the bad row
    assert closed == [True]  # closed by the pipeline, not left to the garbage collector


@pytest.mark.anyio
async def test_async_input_is_closed_when_the_run_stops(emulator: Emulator) -> None:
    closed: list[bool] = []

    async def rows() -> AsyncIterator[Any]:
        try:
            for i in range(5000):
                yield {"caseId": "bad"} if i == 10 else IngestionJobRow(emulator.case_ids[0], "n")
        finally:
            closed.append(True)

    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        with pytest.raises(ValidationError):
            await client.ingest_all(rows(), on_invalid="raise", polling=POLICY)
    assert closed == [True]


@pytest.mark.anyio
async def test_sync_input_of_every_length_is_read_whole(emulator: Emulator) -> None:
    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        for count in (0, 1, 255, 256, 257, 1001):
            rows = (IngestionJobRow(emulator.case_ids[i % 5], f"n{i}") for i in range(count))
            summary = await client.ingest_all(rows, polling=POLICY)
            assert (summary.rows_read, summary.rows_succeeded) == (count, count)
