"""P2 — wall time against the rate-limit bound, with zero 429 responses.

The emulator enforces one sliding window of ``limit`` requests per ``window`` model seconds
(``time_scale`` faster than real time) and the client's :class:`RequestBudget` is configured with
the same, scaled, limit. Jobs are tiny (``batch_size=10``) and finish at once (zero latency), so
the rate limit is what binds.

The bound is computed from the requests the run actually needed (``N``: every request the
emulator admitted, POSTs and polls). A sliding window of ``L`` requests per ``W`` seconds admits
request ``k`` no earlier than ``W`` after request ``k - L``, so even an infinitely fast client
needs at least ``floor((N - 1) / L) * W`` between its first and its last request (the first ``L``
go in one burst, each later block of ``L`` one window after the block before). That exact bound is
the one the target uses; the fluid bound ``(N - L) / (L / W)`` (the initial burst, then the average
rate) is never larger and is printed beside it.
"""

from __future__ import annotations

import math
import time
from typing import Any

from debitura_async import DebituraClient, RateLimit, RequestBudget
from debitura_async._polling import PollPolicy
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits

from ._common import Check, Scenario, bench_rows, retry_policy

__all__ = ["exact_bound", "fluid_bound", "run"]

TARGET_RATIO = 1.15
BATCH_SIZE = 10


def exact_bound(requests: int, limit: int, window: float) -> float:
    """Least time from the first to the last of ``requests`` under ``limit`` per ``window``."""
    if requests <= 0:
        return 0.0
    return ((requests - 1) // limit) * window


def fluid_bound(requests: int, limit: int, window: float) -> float:
    """The initial burst of ``limit``, then the average rate ``limit / window``."""
    return max(0, requests - limit) * window / limit


async def run(*, quick: bool) -> Scenario:
    if quick:
        rows, limit, scale = 600, 100, 60.0
    else:
        rows, limit, scale = 30_000, 600, 20.0
    window_real = 60.0 / scale
    scenario = Scenario(
        key="P2",
        title="wall time against the rate-limit bound",
        params={
            "rows": rows,
            "batch_size": BATCH_SIZE,
            "time_scale": scale,
            "emulator_limit": f"{limit}/min model = {limit} per {window_real:g} s real",
            "client_budget": f"RequestBudget([RateLimit({limit}, {window_real:g})])",
            "latency": "LatencyModel.zero()",
            "client": "ingest() defaults but batch_size",
            "polling": "PollPolicy().scaled(scale)",
        },
    )
    figures = await _measure(rows, limit, scale, window_real)
    scenario.figures = figures
    _report(scenario, figures)
    return scenario


async def _measure(rows: int, limit: int, scale: float, window_real: float) -> dict[str, Any]:
    """One ingest run against the rate-limited emulator: its figures and both bounds."""
    config = EmulatorConfig(
        seed=5,
        time_scale=scale,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(per_minute=limit, per_hour=None, per_day=None),
        store_notes=False,
    )
    async with EmulatorProcess(config) as emu:
        budget = RequestBudget([RateLimit(limit, window_real)])
        async with DebituraClient(
            emu.api_key, base_url=emu.url, budget=budget, retry=retry_policy()
        ) as client:
            started = time.monotonic()
            async with client.ingest(
                bench_rows(emu.case_ids, rows),
                batch_size=BATCH_SIZE,
                polling=PollPolicy().scaled(scale),
            ) as results:
                async for _ in results:
                    pass
            wall = time.monotonic() - started
            summary = results.summary
        stats = await emu.stats()
    admitted = sum(
        n for counts in stats["requests"].values() for code, n in counts.items() if code != "429"
    )
    return {
        "rows": rows,
        "rows_succeeded": summary.rows_succeeded,
        "requests_admitted": admitted,
        "client_requests": summary.requests,
        "posts": summary.posts,
        "polls": summary.polls,
        "responses_429_client": summary.rate_limited,
        "responses_429_server": int(stats["rate_limited"]),
        "retries": summary.retries,
        "wall_real": wall,
        "bound_exact": exact_bound(admitted, limit, window_real),
        "bound_fluid": fluid_bound(admitted, limit, window_real),
        "budget_waited_s": budget.waited,
        "limit": limit,
        "window_real": window_real,
    }


def _report(scenario: Scenario, figures: dict[str, Any]) -> None:
    """The checks and notes of one measured run."""
    rows, limit = figures["rows"], figures["limit"]
    admitted, wall = figures["requests_admitted"], figures["wall_real"]
    exact, fluid = figures["bound_exact"], figures["bound_fluid"]
    rate_limited, refused = figures["responses_429_client"], figures["responses_429_server"]
    if figures["rows_succeeded"] != rows:
        scenario.notes.append(f"only {figures['rows_succeeded']} of {rows} rows succeeded")
    if admitted <= limit:
        scenario.notes.append(
            f"{admitted} requests fit in one window of {limit}: the limit never bound"
        )
    ratio = wall / exact if exact > 0 else math.nan
    scenario.checks = [
        Check(
            metric="wall / bound",
            unit="s",
            value=wall,
            baseline=exact,
            baseline_label=f"bound for {admitted} req",
            ratio=ratio,
            target=f"<= {TARGET_RATIO}x",
            passed=ratio <= TARGET_RATIO,
            note="bound = floor((N-1)/L) * W",
        ),
        Check(
            metric="429 responses",
            value=float(max(rate_limited, refused)),
            target="0",
            passed=rate_limited == 0 and refused == 0,
        ),
        Check(
            metric="wall / fluid bound",
            unit="s",
            value=wall,
            baseline=fluid,
            baseline_label="(N-L)/rate",
            ratio=wall / fluid if fluid > 0 else math.nan,
        ),
    ]
