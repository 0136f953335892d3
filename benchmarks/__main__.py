"""``python -m benchmarks [--quick] [--only P1,P3] [--json PATH]``: run, print the table, save JSON.

Exit status: 0 when every selected scenario ran (whatever its PASS/MISS verdicts), 1 when one
failed to run (its error is in the table and the JSON), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sys
import textwrap
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._common import Scenario, machine_info

SCENARIOS: dict[str, tuple[str, str]] = {
    "P1": ("benchmarks.p1_requests", "requests per 1000 rows"),
    "P2": ("benchmarks.p2_rate_limit", "wall time against the rate-limit bound"),
    "P3": ("benchmarks.p3_overhead", "client overhead against raw aiohttp"),
    "P4": ("benchmarks.p4_memory", "peak memory at 1M and 10M rows"),
    "P5": ("benchmarks.p5_sequential", "pipeline against a sequential loop"),
    "P6": ("benchmarks.p6_service", "independent submitters on one shared tracker"),
    "P7": ("benchmarks.p7_polling", "polling against an oracle, per latency scenario"),
    "P8": ("benchmarks.p8_budget", "shared budget: overhead, 4 processes on one key"),
}
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
SCHEMA_VERSION = 1


def _parse_only(text: str) -> list[str]:
    keys = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown or not keys:
        known = ", ".join(SCENARIOS)
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown) or text!r}; choose from {known}"
        )
    return sorted(set(keys), key=list(SCENARIOS).index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput benchmarks of debitura-async against the offline emulator "
        "(each figure with a baseline measured in the same run).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run with small counts (checks the suite works)"
    )
    parser.add_argument(
        "--only",
        type=_parse_only,
        default=list(SCENARIOS),
        metavar="P1,P3",
        help=f"comma-separated scenarios to run (default: all of {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help="where to write the raw figures (default: benchmarks/results/latest.json)",
    )
    return parser


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _with_unit(value: float | None, unit: str) -> str:
    text = _fmt(value)
    return f"{text} {unit}" if unit and value is not None else text


def render_table(scenarios: Sequence[Scenario]) -> str:
    header = ("", "measure", "client", "baseline", "ratio", "target", "result")
    lines: list[tuple[str, ...]] = []
    for scenario in scenarios:
        if scenario.error is not None:
            lines.append((scenario.key, scenario.title, "-", "-", "-", "-", "ERROR"))
            continue
        for check in scenario.checks:
            baseline = _with_unit(check.baseline, check.unit)
            if check.baseline is not None and check.baseline_label:
                baseline = f"{check.baseline_label}: {baseline}"
            lines.append(
                (
                    scenario.key,
                    check.metric,
                    _with_unit(check.value, check.unit),
                    baseline,
                    "-" if check.ratio is None else f"{_fmt(check.ratio)}x",
                    check.target or "-",
                    check.verdict,
                )
            )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = []
    for row in [header, *lines]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([out[0], rule, *out[1:]])


async def _run_one(key: str, *, quick: bool) -> Scenario:
    module = importlib.import_module(SCENARIOS[key][0])
    runner: Callable[..., Awaitable[Scenario]] = module.run
    return await runner(quick=quick)


def run_scenario(key: str, *, quick: bool) -> Scenario:
    """One scenario in a fresh event loop; a failure becomes an ERROR row, not a crash."""
    started = time.monotonic()
    try:
        scenario = asyncio.run(_run_one(key, quick=quick))
    except Exception as exc:  # noqa: BLE001 - reported in the table and the JSON
        scenario = Scenario(key=key, title=SCENARIOS[key][1])
        scenario.error = "".join(traceback.format_exception(exc)).strip()
    scenario.wall_seconds = time.monotonic() - started
    return scenario


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    machine = machine_info()
    mode = "quick" if args.quick else "full"
    print(
        f"debitura-async benchmarks ({mode}), {started_at:%Y-%m-%d %H:%M} UTC: "
        f"{machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']}",
        flush=True,
    )
    scenarios: list[Scenario] = []
    for key in args.only:
        print(f"  {key} {SCENARIOS[key][1]} ...", end="", flush=True)
        scenario = run_scenario(key, quick=args.quick)
        scenarios.append(scenario)
        status = "ERROR" if scenario.error else f"{scenario.wall_seconds:.1f} s"
        print(f" {status}", flush=True)
    wall = time.monotonic() - started

    print()
    print(render_table(scenarios))
    print()
    for scenario in scenarios:
        for note in scenario.notes:
            print(textwrap.fill(f"{scenario.key}: {note}", width=100, subsequent_indent="    "))
        if scenario.error is not None:
            print(f"{scenario.key} failed to run:\n{scenario.error}", file=sys.stderr)
    misses = [f"{s.key} {c.metric}" for s in scenarios for c in s.checks if c.passed is False]
    print(
        f"whole run: {wall:.1f} s wall; "
        + (f"MISS: {'; '.join(misses)}" if misses else "all targets met")
    )

    document: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "mode": mode,
        "started_at": started_at.isoformat(),
        "wall_seconds": wall,
        "machine": machine,
        "command": " ".join(
            ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]
        ),
        "scenarios": {s.key: s.to_json() for s in scenarios},
        "misses": misses,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"raw figures: {args.json}")
    return 1 if any(s.error is not None for s in scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
