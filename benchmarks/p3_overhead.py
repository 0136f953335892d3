"""P3 — client overhead: rows/s through ``client.ingest()`` against a raw aiohttp + orjson loop.

Both run against one zero-latency emulator (rate limits off, notes not stored) in its own process,
with the same batch size (1000) and the same number of concurrent POSTs (4, the pipeline's
``max_concurrent_submits`` default), on a ``TCPConnector(limit=64)`` like the client's.

* **Baseline**: the request bodies are encoded *before* the clock starts; 4 tasks POST them with
  the same headers the client sends (API key, Content-Type, Accept, a fresh Idempotency-Key, so
  the server does the same work) and parse each 202 with orjson. It does **not** poll.
* **Client**: ``client.ingest(rows)`` over the same rows, as ``IngestionJobRow`` objects built
  before the clock starts: it validates, encodes, derives Idempotency-Keys, POSTs and polls each
  job (one GET per job). ``budget=None`` (the emulator does not limit either) and
  ``max_jobs_in_flight=32`` with :data:`~benchmarks._common.ZERO_LATENCY_POLLING`, so that
  neither the budget nor the poll schedule but the client's own work is what limits it.

Runs alternate (baseline, client, baseline, ...) ``repeats`` times; the table shows medians.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from debitura_async import DebituraClient, IngestionJobRow
from debitura_async._batching import Batcher
from debitura_async._validate import row_problems
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits

from ._common import (
    ZERO_LATENCY_POLLING,
    Check,
    Scenario,
    bench_rows,
    median,
    retry_policy,
    wire_row,
)

__all__ = ["run"]

BATCH_SIZE = 1000
CONCURRENT_POSTS = 4
TARGET_RATIO = 0.8


async def _baseline(url: str, api_key: str, bodies: Sequence[bytes]) -> float:
    """Seconds to POST every pre-encoded body, ``CONCURRENT_POSTS`` at a time."""
    keys = [str(uuid.uuid4()) for _ in bodies]
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "XApiKey": api_key,
    }
    pending = iter(range(len(bodies)))
    job_ids: list[str] = []
    target = url + "/ingestion-jobs"
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in pending:
                async with session.post(
                    target, data=bodies[i], headers={**headers, "Idempotency-Key": keys[i]}
                ) as response:
                    raw = await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"baseline POST answered {response.status}: {raw!r}")
                    job_ids.append(orjson.loads(raw)["jobId"])  # read it as a client would

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENT_POSTS)))
        return time.perf_counter() - started


def _cpu_per_row(rows: Sequence[IngestionJobRow]) -> dict[str, float]:
    """Microseconds per row of the pipeline's two per-row steps, timed alone (no I/O)."""
    now = datetime.now(UTC)
    skew = timedelta(seconds=5)
    started = time.perf_counter()
    for i, row in enumerate(rows):
        row_problems(row, i, now=now, skew=skew)
    validated = time.perf_counter()
    batcher = Batcher(BATCH_SIZE)
    for i, row in enumerate(rows):
        batcher.add(i, row)
    encoded = time.perf_counter()
    return {
        "validate_us_per_row": 1e6 * (validated - started) / len(rows),
        "encode_us_per_row": 1e6 * (encoded - validated) / len(rows),
    }


async def _client(url: str, api_key: str, rows: Sequence[IngestionJobRow]) -> dict[str, Any]:
    async with DebituraClient(api_key, base_url=url, budget=None, retry=retry_policy()) as client:
        started = time.perf_counter()
        async with client.ingest(
            rows,
            batch_size=BATCH_SIZE,
            max_concurrent_submits=CONCURRENT_POSTS,
            max_jobs_in_flight=32,
            polling=ZERO_LATENCY_POLLING,
        ) as results:
            async for _ in results:
                pass
        seconds = time.perf_counter() - started
    summary = results.summary
    if summary.rows_succeeded != len(rows):
        raise RuntimeError(f"client run lost rows: {summary}")
    return {"seconds": seconds, "posts": summary.posts, "polls": summary.polls}


async def run(*, quick: bool) -> Scenario:
    rows_count = 20_000 if quick else 200_000
    repeats = 1 if quick else 5
    scenario = Scenario(
        key="P3",
        title="client overhead against raw aiohttp",
        params={
            "rows": rows_count,
            "repeats": repeats,
            "batch_size": BATCH_SIZE,
            "concurrent_posts": CONCURRENT_POSTS,
            "latency": "LatencyModel.zero(), RateLimits.off(), store_notes=False",
            "client": "budget=None, max_jobs_in_flight=32, ZERO_LATENCY_POLLING",
            "baseline": "pre-encoded bodies, aiohttp + orjson, no polling",
        },
    )
    config = EmulatorConfig(
        seed=3, latency=LatencyModel.zero(), rate_limits=RateLimits.off(), store_notes=False
    )
    async with EmulatorProcess(config) as emu:
        rows = list(bench_rows(emu.case_ids, rows_count))
        bodies = [
            orjson.dumps({"rows": [wire_row(r) for r in rows[i : i + BATCH_SIZE]]})
            for i in range(0, rows_count, BATCH_SIZE)
        ]
        baseline_s: list[float] = []
        client_runs: list[dict[str, Any]] = []
        for _ in range(repeats):
            baseline_s.append(await _baseline(emu.url, emu.api_key, bodies))
            client_runs.append(await _client(emu.url, emu.api_key, rows))
        cpu = _cpu_per_row(rows)
    client_s = [r["seconds"] for r in client_runs]
    baseline_rate = rows_count / median(baseline_s)
    client_rate = rows_count / median(client_s)
    ratio = client_rate / baseline_rate
    scenario.figures = {
        "rows": rows_count,
        "baseline_seconds": baseline_s,
        "client_seconds": client_s,
        "baseline_rows_per_s": [rows_count / s for s in baseline_s],
        "client_rows_per_s": [rows_count / s for s in client_s],
        "median_baseline_rows_per_s": baseline_rate,
        "median_client_rows_per_s": client_rate,
        "client_us_per_row": 1e6 * median(client_s) / rows_count,
        "baseline_us_per_row": 1e6 * median(baseline_s) / rows_count,
        **cpu,
        "client_requests": client_runs[0]["posts"] + client_runs[0]["polls"],
        "baseline_requests": len(bodies),
    }
    scenario.checks = [
        Check(
            metric="throughput",
            unit="rows/s",
            value=client_rate,
            baseline=baseline_rate,
            baseline_label="raw aiohttp",
            ratio=ratio,
            target=f">= {TARGET_RATIO}x",
            passed=ratio >= TARGET_RATIO,
            note=f"median of {repeats}",
        ),
    ]
    client_us = scenario.figures["client_us_per_row"]
    scenario.notes.append(
        f"the client spends {client_us:.2f} us per row in all; validating a row takes "
        f"{cpu['validate_us_per_row']:.2f} us and encoding it {cpu['encode_us_per_row']:.2f} us "
        f"(timed alone), while the baseline, which does no per-row work, moves at the server's "
        f"pace of {scenario.figures['baseline_us_per_row']:.2f} us per row"
    )
    return scenario
