"""``debitura-async reconcile --journal J``: what became of the rows of a run's unresolved
batches (see :mod:`debitura_async.reconcile`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

import orjson

from ..client import DebituraClient
from ..errors import ConfigurationError
from ..journal import JournalError
from ..reconcile import reconcile
from ._common import EXIT_OK, EXIT_UNRESOLVED, PROG, CLIError, cli_words

__all__ = ["run_reconcile"]


async def run_reconcile(args: argparse.Namespace, out: TextIO) -> int:
    journal = Path(args.journal)
    try:
        client = DebituraClient(
            args.api_key or None,
            base_url=args.base_url or None,
            allow_insecure_http=args.allow_insecure_http,
        )
    except ConfigurationError as exc:
        raise CLIError(cli_words(str(exc))) from None
    async with client:
        try:
            report = await reconcile(client, journal)
        except JournalError as exc:
            raise CLIError(str(exc)) from None
    counts = report.counts()
    if args.json:
        rows = [
            {
                "line": r.line,
                "batch": r.batch_index,
                "jobId": None if r.job_id is None else str(r.job_id),
                "caseId": r.case_id,
                "externalRef": r.external_ref,
                "verdict": r.verdict,
                "reason": r.reason,
            }
            for r in report.rows
        ]
        summary = {"batches": report.batches, "counts": counts, "rows": rows}
        print(orjson.dumps(summary).decode(), file=out)
    else:
        for r in report.rows:
            where = f"line {r.line}" if r.line is not None else f"row {r.position + 1}"
            print(f"{where}: {r.verdict}: {r.reason}", file=out)
        print(
            f"{PROG} reconcile: {report.batches:,} unresolved batches, {len(report.rows):,} rows:"
            f" {counts['stored']:,} stored, {counts['not stored']:,} not stored,"
            f" {counts['unknown']:,} unknown",
            file=out,
        )
    return EXIT_UNRESOLVED if counts["unknown"] else EXIT_OK
