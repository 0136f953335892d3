"""P6 — a service: many independent submitters, one client, against per-caller fixed polling.

Each of ``callers`` submitters (think: web requests) submits one batch and awaits its outcome.
SDK: ``await client.submit(rows)`` then ``await handle.wait()`` — every waiter shares the client's
tracker (one adaptive planner, one poll loop). Baseline: the same submissions, each caller then
polling its own job every 3 s (``get_ingestion_job`` in a loop, scaled), as callers without a
shared tracker do. Same emulator seed, so the same job durations.

Detection delay of a job = the caller's ``time.monotonic()`` when its wait returned minus the
emulator's ``finishedAtMonotonic``, times ``scale``: model seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from debitura_async import DebituraClient, PollPolicy
from debitura_async.emulator import EmulatorConfig, EmulatorProcess

from ._common import Check, Scenario, bench_rows, median, percentile, retry_policy, scaled_budget

__all__ = ["run"]

SEED = 17
TARGET_POLLS_PER_JOB = 2.2


async def _service(callers: int, rows: int, scale: float, *, shared: bool) -> dict[str, Any]:
    config = EmulatorConfig(seed=SEED, time_scale=scale, store_notes=False)
    async with EmulatorProcess(config) as emu:
        seen: dict[uuid.UUID, float] = {}
        async with DebituraClient(
            emu.api_key,
            base_url=emu.url,
            budget=scaled_budget(scale),
            retry=retry_policy(),
            polling=PollPolicy().scaled(scale),
        ) as client:

            async def caller(i: int) -> None:
                batch = list(bench_rows(emu.case_ids, rows, start=i * rows))
                if shared:
                    handle = await client.submit(batch)
                    await handle.wait()
                    seen[handle.job_id] = time.monotonic()
                else:  # what each caller does alone without a shared tracker: the guide's loop
                    job = await client.create_ingestion_job(batch)
                    while not (await client.get_ingestion_job(job.job_id)).is_terminal:  # noqa: ASYNC110
                        await asyncio.sleep(3.0 / scale)
                    seen[job.job_id] = time.monotonic()

            started = time.monotonic()
            await asyncio.gather(*(caller(i) for i in range(callers)))
            wall = time.monotonic() - started
            polls, posts = client.stats.gets, client.stats.posts
        jobs = await emu.jobs()
    delays = [
        (seen[uuid.UUID(job["jobId"])] - job["finishedAtMonotonic"]) * scale
        for job in jobs
        if uuid.UUID(job["jobId"]) in seen
    ]
    return {
        "callers": callers,
        "rows_per_batch": rows,
        "posts": posts,
        "polls": polls,
        "polls_per_job": polls / callers,
        "requests_per_job": (polls + posts) / callers,
        "delay_mean": sum(delays) / len(delays) if delays else float("nan"),
        "delay_median": median(delays),
        "delay_p90": percentile(delays, 0.9),
        "wall_model": wall * scale,
    }


async def run(*, quick: bool) -> Scenario:
    callers = 16 if quick else 200
    rows = 100
    # a 100-row job lasts 4.5 model s: 90 ms at 50x, too close to one loaded event loop's lag
    # for 200 callers at once (every client then looks late); 450 ms at 10x
    scale = 50.0 if quick else 10.0
    scenario = Scenario(
        key="P6",
        title="service: independent submitters share one tracker (vs per-caller 3 s polling)",
        params={
            "callers": callers,
            "rows_per_batch": rows,
            "time_scale": scale,
            "latency": "LatencyModel() default: 8 workers, jobs queue at the server",
            "sdk": "client.submit() + handle.wait() (shared adaptive tracker)",
            "baseline": "create_ingestion_job() + get_ingestion_job() every 3 s, per caller",
        },
    )
    shared = await _service(callers, rows, scale, shared=True)
    fixed = await _service(callers, rows, scale, shared=False)
    scenario.figures = {"shared_tracker": shared, "per_caller_fixed_3s": fixed}
    base = "per-caller 3 s"
    scenario.checks = [
        Check(
            metric="polls / job",
            value=shared["polls_per_job"],
            baseline=fixed["polls_per_job"],
            baseline_label=base,
            ratio=shared["polls_per_job"] / fixed["polls_per_job"],
            target=f"<= {TARGET_POLLS_PER_JOB}",
            passed=shared["polls_per_job"] <= TARGET_POLLS_PER_JOB,
        ),
        Check(
            metric="mean detection delay",
            unit="model s",
            value=shared["delay_mean"],
            baseline=fixed["delay_mean"],
            baseline_label=base,
            ratio=shared["delay_mean"] / fixed["delay_mean"],
        ),
        Check(
            metric="p90 detection delay",
            unit="model s",
            value=shared["delay_p90"],
            baseline=fixed["delay_p90"],
            baseline_label=base,
            ratio=shared["delay_p90"] / fixed["delay_p90"],
        ),
    ]
    return scenario
