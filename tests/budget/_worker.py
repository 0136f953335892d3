"""A separate OS process for the multi-process budget tests and the P7 benchmark.

``python -m tests.budget._worker`` reads one JSON line of settings on stdin (the API key among
them, never on the command line), prints ``{"ready": true}`` once its client and budget are set
up, waits for a ``go`` line, then does its work and prints one JSON line of results.

Modes: ``ingest`` (``client.ingest_all`` of its rows through the chosen budget) and ``hold``
(``acquirers`` concurrent ``acquire`` calls on a Redis budget, each reserving a slot ahead; the
parent kills it while they sleep).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import orjson

from debitura_async import Budget, DebituraClient, IngestionJobRow, RateLimit, RequestBudget
from debitura_async._polling import PollPolicy
from debitura_async.redis_budget import RedisBudget


def _limits(raw: list[list[float]]) -> list[RateLimit]:
    return [RateLimit(int(n), float(per)) for n, per in raw]


async def _line() -> bytes:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.readline)


def _say(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.buffer.flush()


async def _ingest(settings: dict[str, Any], budget: Budget) -> dict[str, Any]:
    cases = [uuid.UUID(c) for c in settings["case_ids"]]
    first, count = int(settings["first_row"]), int(settings["rows"])
    rows = [
        IngestionJobRow(cases[i % len(cases)], f"Multi-process note {i}", external_ref=f"MP-{i}")
        for i in range(first, first + count)
    ]
    async with DebituraClient(
        settings["api_key"], base_url=settings["base_url"], budget=budget, max_retries=8
    ) as client:
        _say({"ready": True})
        await _line()
        started = time.time()
        summary = await client.ingest_all(
            rows,
            batch_size=int(settings["batch_size"]),
            polling=PollPolicy().scaled(float(settings["time_scale"])),
        )
        ended = time.time()
    return {
        "started": started,
        "ended": ended,
        "rows_read": summary.rows_read,
        "rows_succeeded": summary.rows_succeeded,
        "rows_failed": summary.rows_failed,
        "rows_unresolved": summary.rows_unresolved,
        "requests": summary.requests,
        "rate_limited": summary.rate_limited,
        "retries": summary.retries,
    }


async def _hold(settings: dict[str, Any], budget: Budget) -> None:
    tasks = [asyncio.create_task(budget.acquire()) for _ in range(int(settings["acquirers"]))]
    await asyncio.sleep(0.5)  # every acquirer has reserved its slot and sleeps on it
    _say({"ready": True, "done": sum(t.done() for t in tasks)})
    await asyncio.sleep(3600)  # until killed


async def main() -> None:
    settings = orjson.loads(await _line())
    limits = _limits(settings["limits"])
    safety = float(settings.get("safety", 0.02))
    budget: Budget
    if settings["budget"] == "redis":
        budget = RedisBudget.from_url(
            settings["redis_url"], api_key=settings["api_key"], limits=limits, safety=safety
        )
    else:
        budget = RequestBudget(limits, safety=safety)
    try:
        if settings["mode"] == "hold":
            await _hold(settings, budget)
        else:
            _say(await _ingest(settings, budget))
    finally:
        if isinstance(budget, RedisBudget):
            await budget.aclose()


if __name__ == "__main__":
    asyncio.run(main())
