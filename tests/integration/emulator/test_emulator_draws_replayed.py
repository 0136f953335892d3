"""The polling simulator's ``emulator_seed`` against the real emulator over loopback: the same
jobs (set-up, duration, start), in submission order, for the same seed and latency preset."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from benchmarks import polling_sim as sim
from debitura_async.emulator import Emulator, LatencyModel, ScheduledJob
from tests.integration.emulator.emulator_support import fast_config, note_rows, post_job

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("preset", "seed"), [("heavy-tail", 23), ("slow-path-20", 5)])
async def test_the_simulator_draws_the_emulator_s_jobs(preset: str, seed: int) -> None:
    seen: list[ScheduledJob] = []
    config = fast_config(seed=seed, latency=LatencyModel.preset(preset))
    async with (
        Emulator(config, on_job_scheduled=seen.append) as emu,
        aiohttp.ClientSession() as session,
    ):
        for _ in range(6):
            status, _, _ = await post_job(emu, session, note_rows(emu.case_ids[:3]))
            assert status == 202
    assert len(seen) == 6
    server = sim._Server(replace(sim.preset(preset), rows=3, emulator_seed=seed), 0)
    for job in seen:
        server.submit(job.created_at)
    for job, drawn in zip(seen, server.jobs, strict=True):
        assert drawn.start == pytest.approx(job.started_at, abs=1e-9)
        assert drawn.base == pytest.approx(job.processing_at - job.started_at, abs=1e-9)
        assert drawn.end - drawn.start == pytest.approx(job.finished_at - job.started_at, abs=1e-9)
    # another seed draws other jobs: the match above is the seed's, not any draw's
    other = sim._Server(replace(sim.preset(preset), rows=3, emulator_seed=seed + 1), 0)
    for job in seen:
        other.submit(job.created_at)
    assert [j.end - j.start for j in other.jobs] != [j.end - j.start for j in server.jobs]
