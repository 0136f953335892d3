"""The poll planner's own CPU per job, with no I/O: ``python -m benchmarks.planner_cpu``.

P3's shape: a :class:`~debitura_async._polling.PollPlanner` with P3's policy
(:data:`~benchmarks._common.ZERO_LATENCY_POLLING`) and ``in_flight`` jobs of 1000 rows tracked;
then, ``jobs`` times, the oldest job is answered Completed and a new one is added (what a run
against a zero-latency server asks of the planner for each job). The figure is the median over
``repeats`` of the microseconds one such answer-and-add takes, in one process.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Sequence

from debitura_async._polling import PollPlanner

from ._common import ZERO_LATENCY_POLLING, median

__all__ = ["planner_us_per_job"]

_COMPLETED = 2


def _one_run(jobs: int, in_flight: int) -> float:
    planner = PollPlanner(ZERO_LATENCY_POLLING)
    now, added = 0.0, 0
    tracked: deque[int] = deque()
    for _ in range(in_flight):
        planner.add(added, 1000, now, sent=now - 0.002)
        tracked.append(added)
        added += 1
        now += 0.003
    started = time.perf_counter()
    for _ in range(jobs):
        now += 0.005
        planner.observe(tracked.popleft(), status=_COMPLETED, processed=1000, total=1000, now=now)
        planner.add(added, 1000, now, sent=now - 0.002)
        tracked.append(added)
        added += 1
    return 1e6 * (time.perf_counter() - started) / jobs


def planner_us_per_job(jobs: int = 2000, in_flight: int = 32, repeats: int = 5) -> float:
    """Median microseconds of one Completed answer plus one add, ``in_flight`` jobs tracked."""
    return median([_one_run(jobs, in_flight) for _ in range(repeats)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.planner_cpu", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    figure = planner_us_per_job(args.jobs, args.in_flight, args.repeats)
    print(f"{figure:.0f} us per job (a Completed answer and an add, {args.in_flight} tracked)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
