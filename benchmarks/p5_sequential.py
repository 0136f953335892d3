"""P5 — the pipeline against a sequential submit-then-wait loop, on the default latency model.

Baseline: one batch at a time, ``create_ingestion_job(batch)`` then
``wait_for_ingestion_job(job_id, poll_interval=3.0 / scale)`` (the guide's 3 s cadence), the
way a first integration is usually written. Client: ``client.ingest(rows)`` with default options
and ``PollPolicy().scaled(scale)``. Same rows, same batch size (1000), each on a fresh emulator
with the same seed (so job ``k`` gets the same duration in both runs).

The default latency model has a pool of 8 workers taking jobs in FIFO order, so no client can
finish before those workers have done the jobs' work. The ``ceiling`` row takes the job durations
of the pipeline run (from the emulator) and schedules them as if every job had been submitted at
once at the start (workers FIFO, no client delay at all): the sequential time divided by that
makespan is the most any client could gain on this server.

A second pair runs the same per-job latency on a server with no worker limit (every job starts
when it arrives), twice the rows, and the pipeline at ``max_jobs_in_flight=40``: what the
pipeline gains where the server, not the client, has the capacity.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Sequence
from typing import Any

from debitura_async import DebituraClient
from debitura_async._polling import PollPolicy
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel

from ._common import Check, Scenario, bench_rows, retry_policy, scaled_budget

__all__ = ["fifo_makespan", "run"]

SEED = 23
BATCH_SIZE = 1000
TARGET_SPEEDUP = 20.0


def fifo_makespan(durations: Sequence[float], workers: int) -> float:
    """Finish time of jobs all queued at time 0 on ``workers`` FIFO workers."""
    free = [0.0] * workers
    end = 0.0
    for duration in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + duration)
        end = max(end, start + duration)
    return end


def _config(scale: float, workers: int | None) -> EmulatorConfig:
    return EmulatorConfig(
        seed=SEED,
        time_scale=scale,
        store_notes=False,
        latency=LatencyModel(workers=workers),
    )


async def _sequential(rows: int, scale: float, workers: int | None) -> dict[str, Any]:
    config = _config(scale, workers)
    async with (
        EmulatorProcess(config) as emu,
        DebituraClient(
            emu.api_key, base_url=emu.url, budget=scaled_budget(scale), retry=retry_policy()
        ) as client,
    ):
        started = time.monotonic()
        source = bench_rows(emu.case_ids, rows)
        jobs = 0
        while batch := list(itertools.islice(source, BATCH_SIZE)):
            job = await client.create_ingestion_job(batch)
            status = await client.wait_for_ingestion_job(job.job_id, poll_interval=3.0 / scale)
            if status.rows_succeeded != len(batch):
                raise RuntimeError(f"sequential job lost rows: {status}")
            jobs += 1
        wall = time.monotonic() - started
        requests = client.stats.requests
    return {"wall_real": wall, "wall_model": wall * scale, "jobs": jobs, "requests": requests}


async def _pipeline(
    rows: int, scale: float, workers: int | None, in_flight: int = 8
) -> dict[str, Any]:
    config = _config(scale, workers)
    async with EmulatorProcess(config) as emu:
        async with DebituraClient(
            emu.api_key, base_url=emu.url, budget=scaled_budget(scale), retry=retry_policy()
        ) as client:
            started = time.monotonic()
            async with client.ingest(
                bench_rows(emu.case_ids, rows),
                polling=PollPolicy().scaled(scale),
                max_jobs_in_flight=in_flight,
            ) as results:
                async for _ in results:
                    pass
            wall = time.monotonic() - started
            summary = results.summary
        jobs = await emu.jobs()
    if summary.rows_succeeded != rows:
        raise RuntimeError(f"pipeline lost rows: {summary}")
    durations = [job["finishedAt"] - job["startedAt"] for job in jobs]
    return {
        "wall_real": wall,
        "wall_model": wall * scale,
        "jobs": len(jobs),
        "requests": summary.requests,
        "durations_model": durations,
    }


async def run(*, quick: bool) -> Scenario:
    rows = 2_000 if quick else 20_000
    scale = 200.0 if quick else 100.0
    workers = LatencyModel().workers or 1
    scenario = Scenario(
        key="P5",
        title="pipeline against a sequential loop",
        params={
            "rows": rows,
            "batch_size": BATCH_SIZE,
            "time_scale": scale,
            "latency": "LatencyModel() default: 8 workers, 1 s + 25 ms/row + U(0, 2 s)",
            "baseline": "create_ingestion_job + wait_for_ingestion_job(poll_interval=3 s)",
        },
    )
    sequential = await _sequential(rows, scale, workers)
    pipeline = await _pipeline(rows, scale, workers)
    speedup = sequential["wall_real"] / pipeline["wall_real"]
    server_bound = fifo_makespan(pipeline["durations_model"], workers)
    ceiling = sequential["wall_model"] / server_bound
    scenario.figures = {
        "sequential": sequential,
        "pipeline": pipeline,
        "speedup": speedup,
        "server_bound_model": server_bound,
        "ceiling": ceiling,
        "workers": workers,
    }
    scenario.checks = [
        Check(
            metric="wall time (less is better)",
            unit="model s",
            value=pipeline["wall_model"],
            baseline=sequential["wall_model"],
            baseline_label="sequential",
            ratio=speedup,
            target=f">= {TARGET_SPEEDUP:g}x less",
            passed=speedup >= TARGET_SPEEDUP,
            note="ratio = sequential / pipeline",
        ),
        Check(
            metric=f"ceiling ({workers} server workers)",
            unit="model s",
            value=server_bound,
            baseline=sequential["wall_model"],
            baseline_label="sequential",
            ratio=ceiling,
            note="the jobs' FIFO makespan on the server's workers: no client can beat it",
        ),
    ]
    wide_rows = 2 * rows
    wide_sequential = await _sequential(wide_rows, scale, None)
    wide_pipeline = await _pipeline(wide_rows, scale, None, in_flight=40)
    wide_speedup = wide_sequential["wall_real"] / wide_pipeline["wall_real"]
    scenario.figures["unbounded_workers"] = {
        "rows": wide_rows,
        "max_jobs_in_flight": 40,
        "sequential": wide_sequential,
        "pipeline": wide_pipeline,
        "speedup": wide_speedup,
    }
    scenario.checks.append(
        Check(
            metric=f"wall time, no worker limit, {wide_rows:,} rows",
            unit="model s",
            value=wide_pipeline["wall_model"],
            baseline=wide_sequential["wall_model"],
            baseline_label="sequential",
            ratio=wide_speedup,
            target=f">= {TARGET_SPEEDUP:g}x less",
            passed=wide_speedup >= TARGET_SPEEDUP,
            note="same per-job latency, every job starts on arrival; max_jobs_in_flight=40",
        )
    )
    if ceiling < TARGET_SPEEDUP:
        scenario.notes.append(
            f"the {TARGET_SPEEDUP:g}x target exceeds what this server allows: its {workers} "
            f"workers need {server_bound:.0f} model s for these jobs, so the best possible "
            f"speedup over the sequential loop is {ceiling:.1f}x (the pipeline reached "
            f"{speedup:.1f}x, {speedup / ceiling:.0%} of it)"
        )
    return scenario
