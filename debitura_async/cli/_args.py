"""The command line: every command, option and help text (argparse); no behaviour here."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from .. import __version__
from .._budget import BUDGET_URL_ENV
from ..client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from ._common import (
    DEFAULT_CONCURRENCY,
    DEFAULT_EMULATOR_TIME_SCALE,
    DEMO_INPUT,
    DEMO_MAP,
    DEMO_TIME_SCALE,
    EXIT_CODES,
    EXIT_USAGE,
    PROG,
)

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (plus a pointer to --help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _batch_size(text: str) -> int:
    value = _positive_int(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(
            f"at most 1000 rows per job (the API's limit), got {value}"
        )
    return value


_EXIT_EPILOG = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the partner API key (default: ${API_KEY_ENV}; prefer the variable: arguments are"
        " visible to other local users)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"API root (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow http:// to a non-loopback host (the key would travel unencrypted)",
    )
    group.add_argument(
        "--time-scale",
        type=_positive_float,
        metavar="F",
        help="the server runs F times faster than real time (a time-scaled emulator): poll"
        " accordingly (PollPolicy().scaled(F))",
    )


def _add_verbosity_arguments(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-v``/``-q`` before or after the command (a subcommand's copy sets nothing unless given,
    so ``debitura-async -v ingest`` and ``debitura-async ingest -v`` mean the same)."""
    default: object = 0 if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=1,
        dest="verbosity",
        default=default,
        help="debug logging (the library's and its retries) and tracebacks on stderr",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const=-1,
        dest="verbosity",
        default=default,
        help="errors only: no progress, no notes, no retry warnings",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Asyncio SDK, migration CLI and offline emulator for Debitura's Collection"
        " Partner API ingestion jobs.",
        epilog=_EXIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_verbosity_arguments(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ingest = commands.add_parser(
        "ingest",
        help="stream a CSV or JSONL export into ingestion jobs",
        description=_INGEST_DESCRIPTION,
        epilog=_EXIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_ingest_arguments(ingest)

    status = commands.add_parser(
        "status",
        help="show one ingestion job's status",
        description="Show an ingestion job's status (GET /ingestion-jobs/{jobId}).",
        epilog="exit codes: 0 the job exists (with --wait: it Completed); 1 not found, or with"
        " --wait it ended CompletedWithErrors/Failed; 2 usage; 3 --wait --timeout passed before"
        " the job was terminal; 4 authentication or fatal.",
    )
    status.add_argument("job_id", metavar="JOB_ID", help="the jobId a POST /ingestion-jobs gave")
    status.add_argument("--json", action="store_true", help="print the status as one JSON line")
    status.add_argument(
        "--wait",
        action="store_true",
        help="poll until the job is terminal (every 3 s, scaled by --time-scale)",
    )
    status.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="with --wait: give up after"
    )
    _add_connection_arguments(status)

    rec = commands.add_parser(
        "reconcile",
        help="tell what became of the rows of a journal's unresolved batches",
        description="Re-poll the jobs of a journal's unresolved batches; for vanished (404) or"
        " never-accepted ones, look for each row's note on its case's timeline (description and"
        " event date) and report every row as stored, not stored or unknown. The journal is only"
        " read.",
        epilog="exit codes: 0 every row's fate is known; 2 usage; 3 some rows are unknown;"
        " 4 authentication or fatal.",
    )
    rec.add_argument("--journal", required=True, metavar="PATH", help="the run's journal")
    rec.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")
    _add_connection_arguments(rec)

    whoami = commands.add_parser(
        "whoami",
        help="show the partner behind the API key (GET /me)",
        description="Check an API key: show the collection partner it belongs to (GET /me).",
        epilog="exit codes: 0 the key works; 2 usage; 4 the key was refused or the API is"
        " unreachable.",
    )
    whoami.add_argument("--json", action="store_true", help="print the partner as one JSON line")
    _add_connection_arguments(whoami)

    from ..emulator import cli as emulator_cli  # noqa: PLC0415 - heavy; only to declare options

    emulator = commands.add_parser(
        "emulator",
        help="run the offline Debitura emulator",
        description="Offline Debitura Collection Partner API emulator (ingestion jobs, notes,"
        " rate limits, idempotency, fault injection). Ctrl+C stops it.",
    )
    emulator_cli.add_arguments(emulator)

    demo = commands.add_parser(
        "demo",
        help="ingest the bundled sample CRM export into an embedded emulator",
        description=_DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--report",
        metavar="PATH",
        help="where to write the report (.csv or .jsonl; default: none, the demo's temporary"
        " files are removed when it ends)",
    )
    demo.add_argument(
        "--time-scale",
        type=_positive_float,
        default=DEMO_TIME_SCALE,
        metavar="F",
        help=f"run the emulator F times faster than real time (default: {DEMO_TIME_SCALE:g},"
        " about 15 s)",
    )
    _add_progress_arguments(demo)
    for sub in (ingest, status, rec, whoami, demo):
        _add_verbosity_arguments(sub)
    return parser


_INGEST_DESCRIPTION = """\
Stream a CSV or JSONL export into Debitura ingestion jobs: rows are validated, batched, sent
concurrently with Idempotency-Keys, and every job is polled to its outcome.

Input: CSV with a header row, or JSON Lines; UTF-8 with or without BOM. Columns (keys) are named as
the API fields (caseId, description, eventDate, externalRef, type) or mapped with --map, e.g.
--map caseId=CaseGuid --map description=NoteText. Other columns are ignored. An empty optional cell
means absent; type is read as an integer. A malformed line is reported with its line number and
the run goes on (--strict: check the whole file first and send nothing if any row is invalid).

Journal and resume: every step is recorded in a SQLite journal (default PATH.journal.sqlite) before
the run goes on. After a crash or kill -9, the same command with --resume skips finished batches,
polls accepted jobs, re-sends unconfirmed batches with the same Idempotency-Key (the server
replays them: no duplicates) and sends the rest. The journal never holds the API key.

Report (--report PATH, .csv or .jsonl): one record per job (batch, line range, job id, outcome,
counts, Idempotency-Key) and one per rejected line (line, reasons). The journal and the report
are created readable by their owner only (0600): the report echoes raw cell values.

Stopping: Ctrl+C, SIGTERM and SIGHUP stop sending, record what is known, print the summary, write
the report marked partial and exit 3 (resume with --resume). A second Ctrl+C exits at once; the
journal is still safe to resume.
"""

_DEMO_DESCRIPTION = f"""\
Start an embedded emulator seeded with the bundled sample world, ingest the bundled sample CRM
export ({DEMO_INPUT}: 3,000 notes, some of them deliberately bad) with the column mapping
{" ".join("--map " + m for m in DEMO_MAP)}, show progress, print the summary and the report's
path.

The demo exits with code 1 on purpose: the sample plants bad lines (broken quoting, a wrong
column count, invalid UTF-8, bad ids and dates) and notes for unknown cases, and the exit code
says that some rows failed or were rejected.
"""


def _add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("progress")
    group.add_argument(
        "--progress",
        choices=("auto", "bar", "log", "off"),
        default="auto",
        help="a progress bar (on a terminal), periodic log lines on stderr, or nothing"
        " (default: auto = bar on a TTY, else log; -q: off)",
    )
    group.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress refreshes, whatever happens (default: 5; the bar"
        " also moves on every result)",
    )
    group.add_argument(
        "--show-rejected",
        type=int,
        default=20,
        metavar="N",
        help="print the first N rejected lines on stderr (default: 20; all are in the report)",
    )


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input")
    group.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="CSV field separator: one character or comma, semicolon, tab, pipe (default: sniffed"
        " from the header line among , ; tab |, or Excel's sep= line)",
    )
    group.add_argument(
        "--encoding",
        metavar="NAME",
        help="the input's text encoding, e.g. cp1252, latin-1, utf-16 (default: told by a byte"
        " order mark, else UTF-8)",
    )
    group.add_argument(
        "--assume-timezone",
        metavar="ZONE",
        help="read date-times without an offset in this IANA zone, e.g. UTC, Europe/Copenhagen"
        " (default: such dates are rejected)",
    )
    group.add_argument(
        "--dst",
        choices=("rfc5545", "reject"),
        default="rfc5545",
        help="with --assume-timezone, a local time in a DST change: rfc5545 takes the first"
        " occurrence (and the offset before a gap), reject rejects the row (default: rfc5545)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument(
        "--journal",
        metavar="PATH",
        help="the SQLite journal that makes the run resumable (default: PATH.journal.sqlite)",
    )
    run.add_argument(
        "--no-journal",
        action="store_true",
        help="keep no journal (a crashed run cannot be resumed; rerunning would send again)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run recorded in the journal (same input, base URL and batch settings)",
    )
    run.add_argument(
        "--report",
        metavar="PATH",
        help="write a report: .csv or .jsonl (one record per job and per rejected line)",
    )
    run.add_argument(
        "--rerun-rejected",
        metavar="REPORT",
        help="send only the lines an earlier run's report names as rejected (or in a Failed job),"
        " after fixing them in place, and sum up the whole migration",
    )
    run.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N",
        help="rows per job, 1..1000 (default: 1000; a resumed run keeps the journal's)",
    )
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="jobs in flight at once (sent and not yet finished); POSTs in flight are N/2"
        f" (at least 1). Default: {DEFAULT_CONCURRENCY}",
    )
    run.add_argument(
        "--deadline",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this long; unfinished jobs are reported unresolved (exit 3) and the run"
        " can be resumed",
    )


def _add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        metavar="PATH",
        help="the CSV or JSONL export to ingest; - reads standard input"
        " (needs --format; no journal)",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="input format (default: from the extension: .csv, .jsonl/.ndjson)",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="API_FIELD=COLUMN",
        help="take an API field from another column (or JSON key); repeatable, e.g."
        " --map caseId=CaseGuid --map description=NoteText",
    )
    _add_input_arguments(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="check every row first; if any is invalid, list them and send nothing (exit 2)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and validate the whole file and resolve its case references, send nothing,"
        " print what would be sent and an estimate of requests and wall time (no journal)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the final summary as one JSON object on stdout (progress and messages stay"
        " on stderr)",
    )
    _add_run_arguments(parser)
    _add_connection_arguments(parser)
    parser.add_argument_group("rate limits").add_argument(
        "--budget",
        metavar="URL",
        help=f"the request budget shared with other processes using the key: redis://host:port/db"
        f" (needs the redis extra) or memory: (this process only; the default). Default:"
        f" ${BUDGET_URL_ENV}",
    )
    emu = parser.add_argument_group("trying it out")
    emu.add_argument(
        "--emulator",
        action="store_true",
        help="run against an embedded emulator started for this run (time-scaled x"
        f"{DEFAULT_EMULATOR_TIME_SCALE:g} unless --time-scale; its world is the bundled sample's,"
        " see --emulator-world); no journal unless --journal is given",
    )
    emu.add_argument(
        "--emulator-world",
        metavar="PATH",
        help="the embedded emulator's world file (partners, keys, case ids)",
    )
    _add_progress_arguments(parser)
