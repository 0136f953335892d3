"""``debitura-async demo``: the bundled sample CRM export into an embedded emulator.

It keeps nothing behind: no journal (an embedded emulator's jobs end with the process), and a
report only where ``--report`` says. The "equivalent command" it prints is the very plan it runs,
quoted for a POSIX shell, so it runs as printed.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TextIO

from .._input import parse_mapping
from ._common import (
    DEMO_BATCH_SIZE,
    DEMO_CONCURRENCY,
    DEMO_INPUT,
    DEMO_MAP,
    DEMO_WORLD,
    PROG,
    examples_dir,
)
from ._plan import IngestPlan
from .ingest import run_ingest

__all__ = ["demo_plan", "equivalent_command", "run_demo"]


def demo_plan(args: argparse.Namespace) -> IngestPlan:
    examples = examples_dir()
    return IngestPlan(
        path=examples / DEMO_INPUT,
        input_format="csv",
        mapping=parse_mapping(DEMO_MAP),
        emulator=True,
        emulator_world=examples / DEMO_WORLD,
        report_path=Path(args.report) if args.report else None,
        batch_size=DEMO_BATCH_SIZE,
        concurrency=DEMO_CONCURRENCY,
        time_scale=args.time_scale,
        progress=args.progress,
        progress_interval=args.progress_interval,
        show_rejected=max(0, args.show_rejected),
        quiet=getattr(args, "verbosity", 0) < 0,
    )


def equivalent_command(plan: IngestPlan) -> list[str]:
    """The ``ingest`` command line that runs ``plan``."""
    argv = [PROG, "ingest", str(plan.path)]
    for field, column in plan.mapping.items():
        argv += ["--map", f"{field}={column}"]
    argv += ["--emulator", "--time-scale", f"{plan.time_scale:g}"]
    if plan.emulator_world is not None:
        argv += ["--emulator-world", str(plan.emulator_world)]
    argv += ["--batch-size", str(plan.batch_size), "--concurrency", str(plan.concurrency)]
    if plan.report_path is not None:
        argv += ["--report", str(plan.report_path)]
    if plan.progress != "auto":
        argv += ["--progress", plan.progress]
    return argv


async def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    plan = demo_plan(args)
    command = " ".join(shlex.quote(a) for a in equivalent_command(plan))
    print(
        f"Demo: ingesting {DEMO_INPUT} (a CRM export of case notes, some deliberately bad)\n"
        f"into an embedded Debitura emulator, time-scaled x{plan.time_scale:g}. Equivalent to:\n"
        f"  {command}\n",
        file=out,
        flush=True,
    )
    code = await run_ingest(plan, out=out, err=err)
    where = (
        f"Report: {plan.report_path}\n"
        if plan.report_path is not None
        else "Pass --report PATH (.csv or .jsonl) to keep a record of every job and bad line.\n"
    )
    print(
        f"\n{where}The demo exits with code 1 on purpose: the sample plants bad lines and notes"
        " for unknown cases.",
        file=out,
        flush=True,
    )
    return code
