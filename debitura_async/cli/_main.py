"""The entry point: parse, dispatch to a command, turn every failure into one line and a code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .._budget import BUDGET_URL_ENV
from .._input import InputError, parse_mapping
from .._input_options import InputOptions, parse_delimiter
from ..errors import DebituraError, ValidationError
from ._args import build_parser
from ._common import EXIT_UNRESOLVED, EXIT_USAGE, PROG, CLIError, fatal_message
from ._logging import cli_logging
from ._plan import IngestPlan

__all__ = ["main", "plan_from_args"]


def plan_from_args(args: argparse.Namespace) -> IngestPlan:
    try:
        mapping = parse_mapping(args.map)
    except InputError as exc:
        raise CLIError(str(exc)) from None
    try:
        options = InputOptions(
            delimiter=None if args.delimiter is None else parse_delimiter(args.delimiter),
            encoding=args.encoding,
            assume_timezone=args.assume_timezone,
            dst=args.dst,
        )
    except InputError as exc:
        raise CLIError(str(exc)) from None
    budget_url = args.budget if args.budget is not None else os.environ.get(BUDGET_URL_ENV)
    return IngestPlan(
        path=Path(args.path),
        input_format=args.format,
        mapping=mapping,
        api_key=args.api_key,
        base_url=args.base_url,
        allow_insecure_http=args.allow_insecure_http,
        journal_path=Path(args.journal) if args.journal else None,
        no_journal=args.no_journal,
        resume=args.resume,
        report_path=Path(args.report) if args.report else None,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        deadline=args.deadline,
        strict=args.strict,
        emulator=args.emulator,
        emulator_world=Path(args.emulator_world) if args.emulator_world else None,
        time_scale=args.time_scale,
        progress=args.progress,
        progress_interval=args.progress_interval,
        show_rejected=max(0, args.show_rejected),
        json=args.json,
        quiet=args.verbosity < 0,
        input_options=options,
        budget_url=budget_url or None,
        dry_run=args.dry_run,
        rerun_report=Path(args.rerun_rejected) if args.rerun_rejected else None,
    )


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    command = args.command
    if command == "ingest":
        from .ingest import run_ingest  # noqa: PLC0415 - each command imports what it needs

        return asyncio.run(run_ingest(plan_from_args(args), out=out, err=err))
    if command == "status":
        from .status import run_status  # noqa: PLC0415

        return asyncio.run(run_status(args, out))
    if command == "reconcile":
        from .reconcile import run_reconcile  # noqa: PLC0415

        return asyncio.run(run_reconcile(args, out))
    if command == "whoami":
        from .whoami import run_whoami  # noqa: PLC0415

        return asyncio.run(run_whoami(args, out))
    if command == "demo":
        from .demo import run_demo  # noqa: PLC0415

        return asyncio.run(run_demo(args, out, err))
    if command == "emulator":
        from .emulator import run_emulator  # noqa: PLC0415

        return run_emulator(args)
    raise CLIError(
        "choose a command: ingest, status, reconcile, whoami, emulator, demo (see --help)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, run, turn every failure into one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = int(getattr(args, "verbosity", 0) or 0)
    args.verbosity = verbosity
    out, err = sys.stdout, sys.stderr
    logs = (
        contextlib.nullcontext()  # the emulator configures its own logging
        if args.command == "emulator"
        else cli_logging(verbosity, err)
    )
    with logs:
        code = _run(args, out, err, verbosity)
    if argv is None and code == EXIT_UNRESOLVED:
        # The console script, after a stop: a late second signal must not turn the exit code
        # into "killed by SIGINT" while the interpreter shuts down.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
    return code


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, verbosity: int) -> int:
    prog = f"{PROG} {args.command}" if args.command else PROG
    try:
        return _dispatch(args, out, err)
    except CLIError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return exc.code
    except (InputError, ValidationError) as exc:
        print(f"{prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; the journal (if any) is intact: run again with --resume",
            file=err,
        )
        return EXIT_UNRESOLVED
    except DebituraError as exc:  # one clear line, whatever the error; -v adds the traceback
        if verbosity > 0:
            raise
        message, code = fatal_message(exc)
        print(f"{prog}: error: {message}", file=err)
        return code
    except Exception as exc:
        if verbosity > 0:
            raise
        message, code = fatal_message(exc)
        print(f"{prog}: error: {message} ({type(exc).__name__}; -v shows more)", file=err)
        return code
