"""P7's scenarios over other emulator seeds: ``python -m benchmarks.p7_seeds``.

P7 runs each scenario once, on emulator seed 23: one draw of 32 jobs. A heavy-tailed draw moves
the SDK's polls per job by a tenth or more from seed to seed (heavy-tail: 2.12 to 2.59 over nine
seeds, 2026-12-01), so judging a planner change on seed 23 alone can mislead. This driver runs
the same clients over several seeds and prints each seed's figures with their median and mean.
The SDK only by default; ``--with-oracle`` adds the oracle (for wall / oracle), ``--with-naive``
the guide's 3 s cadence.

``python -m benchmarks.p7_seeds --scenarios heavy-tail,drift-3x --seeds 1-8 --with-oracle``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Sequence
from typing import Any

from .p7_polling import SCENARIOS, one_run

__all__ = ["MAX_SEEDS", "main", "parse_seeds"]


MAX_SEEDS = 1000
"""More seeds than anyone waits for (each takes seconds per client and scenario)."""


def parse_seeds(text: str) -> list[int]:
    """``"1-8"``, ``"3,23"`` or ``"1-4,23"`` as a list of seeds (each >= 0, no repeats, at most
    :data:`MAX_SEEDS`), in the order given."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a seed or a range of seeds: {part!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(f"not a range of seeds >= 0: {part!r}")
        if last - first >= MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"more than {MAX_SEEDS} seeds: {part!r}")
        seeds.update(dict.fromkeys(range(first, last + 1)))
        if len(seeds) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"more than {MAX_SEEDS} seeds: {text!r}")
    return list(seeds)


def _scenarios(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SCENARIOS)}"
        )
    return names


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be > 0 and at most 1000: {text!r}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of jobs: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1..1000 jobs: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.p7_seeds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenarios", type=_scenarios, default=list(SCENARIOS))
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-5"))
    parser.add_argument("--jobs", type=_jobs, metavar="1..1000", default=32)
    parser.add_argument("--scale", type=_scale, default=25.0, help="time scale (P7: 25)")
    parser.add_argument("--with-oracle", action="store_true")
    parser.add_argument("--with-naive", action="store_true")
    return parser


async def _measure(args: argparse.Namespace) -> None:
    variants = ["sdk"] + ["naive"] * args.with_naive + ["oracle"] * args.with_oracle
    for scenario in args.scenarios:
        polls: dict[str, list[float]] = {v: [] for v in variants}
        walls: list[float] = []
        for seed in args.seeds:
            figures: dict[str, dict[str, Any]] = {}
            for variant in variants:
                figures[variant] = await one_run(
                    scenario, variant, jobs=args.jobs, scale=args.scale, seed=seed
                )
                polls[variant].append(figures[variant]["polls_per_job"])
            sdk = figures["sdk"]
            line = (
                f"{scenario} seed {seed}: sdk {sdk['polls_per_job']:.2f} polls/job (later half "
                f"{sdk['polls_per_job_later_half']:.2f}), mean delay "
                f"{sdk['delay_mean']:.2f} model s, loop stalls p99 {sdk['loop_stall_p99_ms']:.1f} "
                f"max {sdk['loop_stall_max_ms']:.1f} ms"
            )
            if "naive" in figures:
                line += f"; naive {figures['naive']['polls_per_job']:.2f} polls/job"
            if "oracle" in figures:
                walls.append(sdk["wall_model"] / figures["oracle"]["wall_model"])
                line += f"; sdk wall / oracle {walls[-1]:.3f}"
            print(line, flush=True)
        summary = f"{scenario}: sdk polls/job median {statistics.median(polls['sdk']):.2f}"
        summary += f", mean {statistics.fmean(polls['sdk']):.2f}, worst {max(polls['sdk']):.2f}"
        if walls:
            summary += f"; wall / oracle median {statistics.median(walls):.3f}"
            summary += f", worst {max(walls):.3f}"
        print(summary, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_measure(build_parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
