"""Shared pieces of the benchmark suite: result records, statistics, rows, client settings."""

from __future__ import annotations

import math
import os
import platform
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from debitura_async import IngestionJobRow, RateLimit, RequestBudget, RetryPolicy
from debitura_async._polling import PollPolicy

__all__ = [
    "EVENT_DATE",
    "ZERO_LATENCY_POLLING",
    "Check",
    "Scenario",
    "bench_rows",
    "machine_info",
    "median",
    "percentile",
    "retry_policy",
    "scaled_budget",
    "wire_row",
]

EVENT_DATE = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
"""Every benchmark row carries an eventDate (as the guide's example does), safely in the past."""

ZERO_LATENCY_POLLING = PollPolicy().scaled(1000.0)
"""Polling for a zero-latency emulator: the default adaptive policy with its prior shrunk 1000x
(a 1000-row job "takes" 30 ms), so polling does not hold the pipeline back where jobs are done
the moment they are accepted. Used by P3 and P4, whose subject is the client's CPU and memory."""


@dataclass(frozen=True, kw_only=True)
class Check:
    """One measured figure, its baseline from the same run, and its target (if it has one)."""

    metric: str
    value: float
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    """None: informational (no target)."""
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


@dataclass(kw_only=True)
class Scenario:
    """The outcome of one scenario: parameters, raw figures, and the checks printed in the table."""

    key: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [{**asdict(c), "verdict": c.verdict} for c in self.checks]
        return data


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (``q`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def scaled_budget(scale: float) -> RequestBudget:
    """Debitura's documented per-key limits for an emulator running ``scale`` times faster."""
    return RequestBudget(
        [
            RateLimit(2_000, 60.0 / scale),
            RateLimit(20_000, 3_600.0 / scale),
            RateLimit(100_000, 86_400.0 / scale),
        ]
    )


def retry_policy() -> RetryPolicy:
    """Quick retries: on loopback a retry is either immediate success or a real bug."""
    return RetryPolicy(max_retries=5, initial_backoff=0.01, max_backoff=0.1)


def bench_rows(
    case_ids: Sequence[uuid.UUID], count: int, *, start: int = 0
) -> Iterator[IngestionJobRow]:
    """``count`` realistic rows (about 160 bytes each on the wire), built lazily."""
    cases = len(case_ids)
    for i in range(start, start + count):
        yield IngestionJobRow(
            case_ids[i % cases],
            f"Called the debtor about invoice {i}; payment of the balance promised by Friday.",
            event_date=EVENT_DATE,
            external_ref=f"CRM-NOTE-{i}",
        )


def wire_row(row: IngestionJobRow) -> dict[str, Any]:
    """A row as the API's JSON object, written out by hand (for the raw-aiohttp baseline)."""
    data: dict[str, Any] = {
        "caseId": str(row.case_id),
        "description": row.description,
        "type": int(row.type),
    }
    if row.event_date is not None:
        data["eventDate"] = row.event_date.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if row.external_ref is not None:
        data["externalRef"] = row.external_ref
    return data


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415 - only for the version
    import orjson  # noqa: PLC0415 - only for the version

    return {
        "nproc": os.cpu_count(),
        "sched_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "orjson": orjson.__version__,
    }
