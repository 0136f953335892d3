"""The ``debitura-async`` command: ingest CSV/JSONL exports, check jobs, run the emulator, demo.

Commands::

    debitura-async ingest PATH [options]   stream a CSV/JSONL export into ingestion jobs
    debitura-async status JOB_ID           one job's status (GET /ingestion-jobs/{id})
    debitura-async whoami                  the partner behind the API key (GET /me)
    debitura-async emulator [options]      the offline Debitura emulator
    debitura-async demo                    ingest the bundled sample CRM export into an emulator

Exit codes (every command)::

    0  all rows succeeded (status/whoami: the call succeeded)
    1  some rows failed at the server or were rejected (bad lines, invalid rows);
       status: the job was not found, or with --wait ended with errors / failed
    2  usage or input error: bad option, unreadable input, --strict found invalid rows, a journal
       that does not match (resume against another input or base URL), or an existing journal
       without --resume
    3  unresolved jobs remain (deadline, Ctrl+C, server unreachable): run again with --resume;
       status --wait: --timeout passed before the job was terminal
    4  authentication failure (401/403) or another fatal error

Errors are one line on stderr; ``-v`` adds debug logging and tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import logging
import math
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final, Literal, NoReturn, TextIO

import anyio
import attrs
import orjson

from . import __version__
from ._input import (
    InputError,
    InputFormat,
    Item,
    detect_format,
    open_reader,
    parse_mapping,
)
from ._polling import PollPolicy
from ._validate import item_problems
from .client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DebituraClient
from .errors import (
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    DebituraError,
    JobWaitTimeout,
    NotFoundError,
    PermissionDeniedError,
    TransportError,
    ValidationError,
)
from .journal import (
    InputIdentity,
    JournalError,
    JournalExistsError,
    JournalStore,
    RunInfo,
    SqliteJournal,
)
from .models import (
    AsyncJobStatus,
    IngestionSummary,
    IngestProgress,
    InvalidRow,
    JobOutcome,
    JobResult,
)

__all__ = ["EXIT_CODES", "IngestPlan", "build_parser", "main", "run_ingest"]

PROG: Final = "debitura-async"

EXIT_OK: Final = 0
EXIT_ROWS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNRESOLVED: Final = 3
EXIT_FATAL: Final = 4
EXIT_CODES: Final = {
    EXIT_OK: "all rows succeeded",
    EXIT_ROWS_FAILED: "some rows failed or were rejected",
    EXIT_USAGE: "usage or input error",
    EXIT_UNRESOLVED: "unresolved jobs remain: run again with --resume",
    EXIT_FATAL: "authentication failure or fatal error",
}

DEFAULT_CONCURRENCY: Final = 8
DEFAULT_EMULATOR_TIME_SCALE: Final = 20.0
DEMO_INPUT: Final = "crm-notes-export.csv"
DEMO_WORLD: Final = "demo-world.json"
DEMO_MAP: Final = (
    "caseId=CaseGuid",
    "description=NoteText",
    "eventDate=CreatedAtUtc",
    "externalRef=NoteId",
)
DEMO_BATCH_SIZE: Final = 100
DEMO_CONCURRENCY: Final = 6
DEMO_TIME_SCALE: Final = 2.0

ProgressMode = Literal["auto", "bar", "log", "off"]

LOGGER = logging.getLogger("debitura_async.cli")


class CLIError(Exception):
    """Ends a command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- argument parsing -----------------------------------------------------------------------------


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Asyncio SDK, migration CLI and offline emulator for Debitura's Collection"
        " Partner API ingestion jobs.",
        epilog=_EXIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and tracebacks on stderr"
    )
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

    whoami = commands.add_parser(
        "whoami",
        help="show the partner behind the API key (GET /me)",
        description="Check an API key: show the collection partner it belongs to (GET /me).",
        epilog="exit codes: 0 the key works; 2 usage; 4 the key was refused or the API is"
        " unreachable.",
    )
    whoami.add_argument("--json", action="store_true", help="print the partner as one JSON line")
    _add_connection_arguments(whoami)

    from .emulator import cli as emulator_cli  # noqa: PLC0415 - heavy; only to declare options

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
        help="where to write the report (.csv or .jsonl; default: a new temporary directory)",
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
counts, Idempotency-Key) and one per rejected line (line, reasons).
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
        " (default: auto = bar on a TTY, else log)",
    )
    group.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between log lines (default: 5)",
    )
    group.add_argument(
        "--show-rejected",
        type=int,
        default=20,
        metavar="N",
        help="print the first N rejected lines on stderr (default: 20; all are in the report)",
    )


def _add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the CSV or JSONL export to ingest")
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
    parser.add_argument(
        "--strict",
        action="store_true",
        help="check every row first; if any is invalid, list them and send nothing (exit 2)",
    )
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
    _add_connection_arguments(parser)
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


# -- helpers --------------------------------------------------------------------------------------


def _examples_dir() -> Path:
    """The bundled examples: in the wheel (``debitura_async/_examples``) or the source tree."""
    packaged = Path(str(resources.files("debitura_async"))) / "_examples"
    if (packaged / DEMO_INPUT).is_file():
        return packaged
    source = Path(__file__).resolve().parent.parent / "examples"
    if (source / DEMO_INPUT).is_file():
        return source
    raise CLIError(
        "the bundled examples are missing (expected debitura_async/_examples in the installed"
        " package, or examples/ in a source checkout)",
        EXIT_FATAL,
    )


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _where(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _describe_reason(reason: str, mapping: Mapping[str, str]) -> str:
    """Name the input column next to the API field (``caseId (column 'CaseGuid'): ...``)."""
    field, sep, rest = reason.partition(": ")
    if sep and field in mapping:
        return f"{field} (column {mapping[field]!r}): {rest}"
    return reason


_LINE_PREFIX: Final = re.compile(r"^lines? \d+(?:-\d+)?: ")


def _with_line(reason: str, first: int, last: int) -> str:
    if reason.startswith(("line ", "lines ")):
        return reason
    return f"{_where(first, last)}: {reason}"


def _fatal_message(exc: BaseException) -> tuple[str, int]:
    """A one-line message and exit code for an error that ends a command."""
    if isinstance(exc, AuthenticationError):
        return (
            "authentication failed: the API key was refused (401); check --api-key or"
            f" ${API_KEY_ENV}",
            EXIT_FATAL,
        )
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied (403): {exc}", EXIT_FATAL
    if isinstance(exc, ConfigurationError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, TransportError):
        return f"cannot reach the API: {exc}", EXIT_FATAL
    return str(exc) or type(exc).__name__, EXIT_FATAL


# -- progress -------------------------------------------------------------------------------------


class Progress:
    """Progress on stderr: a tqdm bar on a TTY, else a log line every ``interval`` seconds.

    The bar is byte-based: its total is the file's size and its position the bytes whose rows are
    done (succeeded, failed, rejected or unresolved), estimated from the average row size read so
    far; its ETA follows from that. Rows/s, jobs in flight and the counts are shown beside it.
    """

    def __init__(
        self,
        mode: ProgressMode,
        *,
        size: int,
        bytes_read: Callable[[], int],
        err: TextIO,
        interval: float,
    ) -> None:
        if mode == "auto":
            mode = "bar" if _isatty(err) else "log"
        self.mode = mode
        self._size = size
        self._bytes_read = bytes_read
        self._err = err
        self._interval = interval
        self._last_log = time.monotonic()
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm  # noqa: PLC0415 - only when a bar is drawn

            fixed = _terminal_size(err)
            self._bar = tqdm(
                total=max(size, 1),
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="ingest",
                file=err,
                dynamic_ncols=fixed is None,
                ncols=None if fixed is None else fixed[0],
                nrows=None if fixed is None else fixed[1],
                mininterval=0.2,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                " [{elapsed}<{remaining}]{postfix}",
            )

    def _done_bytes(self, p: IngestProgress) -> int:
        done = p.rows_succeeded + p.rows_failed + p.rows_rejected + p.rows_unresolved
        read = self._bytes_read()
        if p.rows_read <= 0:
            return 0
        return min(self._size, int(read * min(1.0, done / p.rows_read)))

    def update(self, p: IngestProgress) -> None:
        """The pipeline's ``on_progress`` callback."""
        if self.mode == "bar":
            done = self._done_bytes(p)
            self._bar.update(max(0, done - self._bar.n))
            self._bar.set_postfix_str(
                f"{p.rows_per_second:,.0f} rows/s, in flight {p.jobs_in_flight},"
                f" ok {p.rows_succeeded:,}, failed {p.rows_failed:,},"
                f" rejected {p.rows_rejected:,}",
                refresh=False,
            )
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last_log >= self._interval:
                self._last_log = now
                self._log(p)

    def _log(self, p: IngestProgress) -> None:
        share = self._done_bytes(p) / self._size if self._size else 1.0
        rate = p.rows_per_second
        read = self._bytes_read()
        if rate > 0 and read > 0 and p.rows_read:
            total_rows = p.rows_read * self._size / read
            done = p.rows_succeeded + p.rows_failed + p.rows_rejected + p.rows_unresolved
            eta = _fmt_duration(max(0.0, total_rows - done) / rate)
        else:
            eta = "?"
        print(
            f"[{_fmt_duration(p.elapsed)}] {share:4.0%} done: {p.rows_read:,} rows read,"
            f" {p.rows_succeeded:,} succeeded, {p.rows_failed:,} failed,"
            f" {p.rows_rejected:,} rejected; {p.jobs_in_flight} jobs in flight;"
            f" {rate:,.0f} rows/s; ETA {eta}",
            file=self._err,
            flush=True,
        )

    def message(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self._err)
        else:
            print(text, file=self._err, flush=True)

    def close(self, final: IngestProgress | None) -> None:
        if self._bar is not None:
            if final is not None:
                self.update(final)
                self._bar.update(max(0, self._bar.total - self._bar.n))
            self._bar.close()
            self._bar = None


def _terminal_size(stream: IO[str]) -> tuple[int, int] | None:
    """None when the terminal reports its size (tqdm follows it), else a fixed 100x20: a
    pseudo-terminal that reports 0x0 would make tqdm hide the bar."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return (100, 20)
    return None if size.columns > 0 and size.lines > 0 else (100, 20)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the report -----------------------------------------------------------------------------------

REPORT_COLUMNS: Final = (
    "record",
    "batch",
    "first_line",
    "last_line",
    "rows",
    "outcome",
    "succeeded",
    "failed",
    "job_id",
    "idempotency_key",
    "resumed",
    "detail",
)


class ReportWriter:
    """``--report``: CSV or JSONL by extension, one record per job and per rejected line.

    Written to ``PATH.partial`` while the run goes and renamed to PATH at the end, so PATH is
    always a whole report. Columns: record (``job`` or ``rejected``), batch, first_line,
    last_line, rows, outcome, succeeded, failed, job_id, idempotency_key, resumed (replayed from
    the journal), detail (the reasons of a rejected line; the error of a failed or unresolved
    job). In JSONL, ``detail`` of a rejected line is a list of reasons.
    """

    @staticmethod
    def format_of(path: Path) -> Literal["csv", "jsonl"]:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
        raise CLIError(f"--report {str(path)!r}: use a .csv or .jsonl file name")

    def __init__(self, path: Path) -> None:
        self.format = self.format_of(path)
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        try:
            self._file: IO[str] = self._partial.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CLIError(f"cannot write the report {str(path)!r}: {exc.strerror}") from None
        self._csv = csv.writer(self._file) if self.format == "csv" else None
        if self._csv is not None:
            self._csv.writerow(REPORT_COLUMNS)
        self.records = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        if self._csv is not None:
            values = []
            for column in REPORT_COLUMNS:
                value = record.get(column)
                if isinstance(value, list | tuple):
                    value = "; ".join(str(v) for v in value)
                elif isinstance(value, bool):
                    value = "yes" if value else ""
                values.append("" if value is None else value)
            self._csv.writerow(values)
        else:
            self._file.write(orjson.dumps({k: record.get(k) for k in REPORT_COLUMNS}).decode())
            self._file.write("\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            self._partial.replace(self.path)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(OSError):
            self._partial.unlink()


# -- ingest ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class IngestPlan:
    """Everything ``ingest`` (and ``demo``) was asked to do."""

    path: Path
    input_format: InputFormat | None = None
    mapping: Mapping[str, str] = attrs.field(factory=dict)
    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    allow_insecure_http: bool = False
    journal_path: Path | None = None
    no_journal: bool = False
    resume: bool = False
    report_path: Path | None = None
    batch_size: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    deadline: float | None = None
    strict: bool = False
    emulator: bool = False
    emulator_world: Path | None = None
    time_scale: float | None = None
    progress: ProgressMode = "auto"
    progress_interval: float = 5.0
    show_rejected: int = 20


@attrs.define
class _Tally:
    jobs_replayed: int = 0
    rows_replayed: int = 0
    rejected_shown: int = 0
    rejected_lines: int = 0
    unresolved_jobs: int = 0
    last_progress: IngestProgress | None = None


def _item_problems(item: Item, position: int, *, now: datetime, skew: timedelta) -> list[str]:
    """What the pipeline would refuse in this item (the same rules, for ``--strict``)."""
    if isinstance(item, InvalidRow):
        return list(item.problems)
    _, problems = item_problems(item, position, now=now, skew=skew)
    return [f"{p.field}: {p.message}" for p in problems]


def _strict_check(
    path: Path,
    input_format: InputFormat,
    mapping: Mapping[str, str],
    *,
    now: datetime,
    skew: timedelta,
    err: TextIO,
    show: int,
) -> tuple[int, int]:
    """First pass of ``--strict``: (invalid rows, rows); prints the first ``show`` problems."""
    invalid = 0
    with open_reader(path, input_format, mapping) as reader:
        position = -1
        for position, item in enumerate(reader):
            problems = _item_problems(item, position, now=now, skew=skew)
            if problems:
                invalid += 1
                if invalid <= show:
                    first, last = reader.lines.span(position, position)
                    for reason in problems:
                        text = _with_line(_describe_reason(reason, mapping), first, last)
                        print(f"{PROG}: invalid: {text}", file=err)
        return invalid, position + 1


def _settings(
    input_format: InputFormat, mapping: Mapping[str, str], batch_size: int
) -> dict[str, Any]:
    return {"format": input_format, "map": dict(sorted(mapping.items())), "batchSize": batch_size}


def _resolve_resume_settings(
    plan: IngestPlan, run: RunInfo
) -> tuple[InputFormat, dict[str, str], int]:
    """A resumed run keeps the journal's batch-shaping settings; conflicting flags are refused."""
    recorded = run.settings
    fmt: InputFormat = "jsonl" if recorded.get("format") == "jsonl" else "csv"
    mapping = {str(k): str(v) for k, v in dict(recorded.get("map") or {}).items()}
    if plan.input_format is not None and plan.input_format != fmt:
        raise CLIError(
            f"--resume: the journal's run reads the input as {fmt}, not {plan.input_format}"
        )
    if plan.mapping and dict(plan.mapping) != mapping:
        shown = " ".join(f"--map {k}={v}" for k, v in mapping.items()) or "no --map"
        raise CLIError(
            f"--resume: the journal's run used {shown}; other mappings would form other rows"
            " (drop --map to use the journal's)"
        )
    if plan.batch_size is not None and plan.batch_size != run.batch_size:
        raise CLIError(
            f"--resume: the journal's run uses --batch-size {run.batch_size}; another size would"
            " form other batches (drop --batch-size)"
        )
    return fmt, mapping, run.batch_size


def _summary_dict(summary: IngestionSummary) -> dict[str, Any]:
    return {
        "rowsRead": summary.rows_read,
        "rowsRejected": summary.rows_rejected,
        "rowsSubmitted": summary.rows_submitted,
        "rowsSucceeded": summary.rows_succeeded,
        "rowsFailed": summary.rows_failed,
        "rowsUnresolved": summary.rows_unresolved,
        "jobs": {k.value: v for k, v in summary.jobs.items()},
    }


def exit_code_for(summary: IngestionSummary) -> int:
    if summary.rows_unresolved:
        return EXIT_UNRESOLVED
    if summary.rows_failed or summary.rows_rejected:
        return EXIT_ROWS_FAILED
    return EXIT_OK


def _print_summary(
    out: TextIO,
    *,
    plan: IngestPlan,
    summary: IngestionSummary,
    tally: _Tally,
    run: RunInfo | None,
    lines_read: int,
    journal_path: Path | None,
    report: ReportWriter | None,
    code: int,
) -> None:
    jobs = summary.jobs
    outcome_names = (
        (JobOutcome.COMPLETED, "completed"),
        (JobOutcome.COMPLETED_WITH_ERRORS, "completed with errors"),
        (JobOutcome.FAILED, "failed"),
        (JobOutcome.UNRESOLVED, "unresolved"),
    )
    job_parts = [f"{jobs[o]:,} {name}" for o, name in outcome_names if jobs.get(o)]
    job_total = sum(jobs.get(o, 0) for o, _ in outcome_names)
    width = max(len(_fmt_int(summary.rows_read)), 1)

    def count(value: int) -> str:
        return _fmt_int(value).rjust(width)

    stored_now = summary.rows_succeeded - tally.rows_replayed
    rate = stored_now / summary.elapsed if summary.elapsed > 0 else 0.0
    rows: list[tuple[str, str]] = [
        ("input", f"{plan.path} ({lines_read:,} lines)"),
    ]
    if run is not None:
        attempt = f"attempt {run.attempts}" if run.attempts > 1 else "first attempt"
        replay = (
            f"; {tally.jobs_replayed:,} jobs replayed from the journal"
            if tally.jobs_replayed
            else ""
        )
        rows.append(("run", f"{run.run_id} ({attempt}{replay})"))
    rows += [
        ("rows read", count(summary.rows_read)),
        ("  succeeded", count(summary.rows_succeeded)),
        (
            "  failed",
            count(summary.rows_failed)
            + (
                "  (refused by the server: unknown case, not yours, …)"
                if summary.rows_failed
                else ""
            ),
        ),
        (
            "  rejected",
            count(summary.rows_rejected)
            + ("  (never sent: bad lines or invalid rows)" if summary.rows_rejected else ""),
        ),
        (
            "  unresolved",
            count(summary.rows_unresolved)
            + ("  (outcome unknown: resume the run)" if summary.rows_unresolved else ""),
        ),
        ("jobs", f"{job_total:,}" + (f" ({', '.join(job_parts)})" if job_parts else "")),
        (
            "requests",
            f"{summary.requests:,} ({summary.posts:,} POST, {summary.polls:,} GET,"
            f" {summary.retries:,} retries, {summary.rate_limited:,} rate-limited)",
        ),
        (
            "elapsed",
            f"{summary.elapsed:.1f} s ({stored_now:,} rows stored in this attempt,"
            f" {rate:,.0f} rows/s)",
        ),
        ("journal", str(journal_path) if journal_path is not None else "none"),
    ]
    if report is not None:
        rows.append(("report", f"{report.path} ({report.records:,} records)"))
    label = max(len(name) for name, _ in rows)
    print("", file=out)
    print("Summary", file=out)
    for name, value in rows:
        print(f"  {name.ljust(label)}  {value}", file=out)
    print(f"exit code {code}: {EXIT_CODES[code]}", file=out)
    out.flush()


async def run_ingest(plan: IngestPlan, *, out: TextIO, err: TextIO) -> int:
    """Run one ``ingest``; returns the exit code (raises :class:`CLIError` for usage errors)."""
    path = plan.path
    if not path.is_file():
        raise CLIError(f"no such input file: {str(path)!r}")
    input_format = plan.input_format or detect_format(path)
    mapping = dict(plan.mapping)
    if plan.report_path is not None:
        ReportWriter.format_of(plan.report_path)
    if plan.emulator and (plan.base_url or plan.api_key):
        raise CLIError("--emulator starts its own server: drop --base-url/--api-key")
    if plan.emulator and plan.resume:
        raise CLIError(
            "--resume cannot continue against an embedded emulator: its jobs ended with the"
            " earlier process"
        )
    if plan.no_journal and (plan.resume or plan.journal_path is not None):
        raise CLIError("--no-journal conflicts with --resume/--journal")

    journal_path: Path | None
    if plan.no_journal or (plan.emulator and plan.journal_path is None):
        journal_path = None
    else:
        journal_path = plan.journal_path or path.with_name(path.name + ".journal.sqlite")
    resume = plan.resume
    if journal_path is not None:
        try:
            held = await anyio.to_thread.run_sync(JournalStore.holds_run, journal_path)
        except JournalError as exc:
            raise CLIError(str(exc)) from None
        if resume and not journal_path.exists():
            raise CLIError(
                f"--resume: no journal at {str(journal_path)!r} (drop --resume to start a run)"
            )
        if resume and not held:
            print(
                f"{PROG}: note: the journal holds no run yet (the earlier run stopped before"
                " recording anything, so nothing was sent): starting the run afresh",
                file=err,
            )
            resume = False
        if not resume and held:
            raise CLIError(
                f"journal {str(journal_path)!r} already exists: pass --resume to continue its"
                " run (or to replay its report), or --journal NEW_PATH to start another run"
                " (which sends every row again)"
            )

    identity = await anyio.to_thread.run_sync(InputIdentity.of, path)

    async with contextlib.AsyncExitStack() as stack:
        time_scale = plan.time_scale
        if plan.emulator:
            from .emulator import Emulator, EmulatorConfig, World  # noqa: PLC0415

            time_scale = time_scale or DEFAULT_EMULATOR_TIME_SCALE
            world_path = plan.emulator_world
            if world_path is None:
                with contextlib.suppress(CLIError):
                    world_path = _examples_dir() / DEMO_WORLD
            try:
                world = World.from_file(world_path) if world_path is not None else None
            except (OSError, ValueError, TypeError) as exc:
                raise CLIError(f"--emulator-world {str(world_path)!r}: {exc}") from None
            emu = await stack.enter_async_context(
                Emulator(EmulatorConfig(time_scale=time_scale, world=world))
            )
            api_key: str | None = emu.api_key
            base_url: str | None = emu.url
            where = f"world {world_path}" if world_path is not None else "a generated world"
            print(
                f"{PROG}: embedded emulator at {emu.url} (time x{time_scale:g}, {where})",
                file=err,
            )
        else:
            api_key = plan.api_key or os.environ.get(API_KEY_ENV) or None
            base_url = plan.base_url or os.environ.get(BASE_URL_ENV) or None
            if not api_key:
                raise CLIError(f"no API key: pass --api-key or set ${API_KEY_ENV}")
        polling = PollPolicy() if time_scale is None else PollPolicy().scaled(time_scale)
        try:
            client = DebituraClient(
                api_key,
                base_url=base_url,
                allow_insecure_http=plan.allow_insecure_http,
            )
        except ConfigurationError as exc:
            raise CLIError(str(exc)) from None
        await stack.enter_async_context(client)

        # The run's identity: a new one, or the journal's.
        store: JournalStore | None = None
        run: RunInfo | None = None
        batch_size = plan.batch_size or 1000
        validated_at = datetime.now(UTC)
        run_id = uuid.uuid4().hex[:16]
        if journal_path is not None and resume:
            try:
                store = await anyio.to_thread.run_sync(JournalStore.open, journal_path)
            except JournalError as exc:
                raise CLIError(str(exc)) from None
            stack.push_async_callback(anyio.to_thread.run_sync, store.close)
            try:
                notes = store.check_resume(identity=identity, base_url=client.base_url)
            except JournalError as exc:
                raise CLIError(str(exc)) from None
            run = store.run
            input_format, mapping, batch_size = _resolve_resume_settings(plan, run)
            validated_at = run.validated_at
            run_id = run.run_id
            for note in notes:
                print(f"{PROG}: note: {note}", file=err)

        try:
            reader = open_reader(path, input_format, mapping)
        except InputError as exc:
            raise CLIError(str(exc)) from None
        stack.callback(reader.close)
        ignored = getattr(reader, "ignored_columns", ())
        if ignored:
            print(f"{PROG}: note: columns not sent: {', '.join(ignored)}", file=err)

        # Fail fast on a bad key, before anything is recorded.
        try:
            await client.me()
        except (APIStatusError, TransportError) as exc:
            if isinstance(exc, NotFoundError):
                LOGGER.debug("GET /me is not available here; going on")
            else:
                message, code = _fatal_message(exc)
                raise CLIError(message, code) from None

        if plan.strict:
            invalid, total = await anyio.to_thread.run_sync(
                lambda: _strict_check(
                    path,
                    input_format,
                    mapping,
                    now=validated_at,
                    skew=client.clock_skew,
                    err=err,
                    show=max(plan.show_rejected, 1),
                )
            )
            if invalid:
                raise CLIError(
                    f"--strict: {invalid:,} of {total:,} rows are invalid; nothing was sent"
                )
            print(f"{PROG}: --strict: all {total:,} rows are valid", file=err)

        if journal_path is not None and store is None:
            run = RunInfo(
                run_id=run_id,
                input=identity,
                base_url=client.base_url,
                batch_size=batch_size,
                settings=_settings(input_format, mapping, batch_size),
                validated_at=validated_at,
            )
            try:
                store = await anyio.to_thread.run_sync(JournalStore.create, journal_path, run)
            except JournalExistsError as exc:
                raise CLIError(f"{exc}: pass --resume to continue it") from None
            except JournalError as exc:
                raise CLIError(str(exc)) from None
            stack.push_async_callback(anyio.to_thread.run_sync, store.close)
        elif store is not None:
            await anyio.to_thread.run_sync(store.begin_attempt)
            run = store.run
            if run.completed_at is not None:
                print(
                    f"{PROG}: note: this journal's run completed on"
                    f" {run.completed_at:%Y-%m-%d %H:%M UTC}; replaying it",
                    file=err,
                )

        journal = SqliteJournal(store, lines=reader.lines.span) if store is not None else None
        report = ReportWriter(plan.report_path) if plan.report_path is not None else None
        if report is not None:
            stack.callback(report.discard)  # an interrupted run publishes no half report
        progress = Progress(
            plan.progress,
            size=reader.size,
            bytes_read=lambda: reader.bytes_read,
            err=err,
            interval=plan.progress_interval,
        )
        tally = _Tally()

        def on_progress(p: IngestProgress) -> None:
            tally.last_progress = p
            progress.update(p)

        on_result = _ResultSink(
            span=reader.lines.span,
            mapping=mapping,
            report=report,
            progress=progress,
            tally=tally,
            show_rejected=plan.show_rejected,
        )

        concurrency = plan.concurrency
        ingestion = client.ingest(
            reader,
            batch_size=batch_size,
            max_jobs_in_flight=concurrency,
            max_concurrent_submits=max(1, concurrency // 2),
            deadline=plan.deadline,
            run_id=run_id,
            validated_at=validated_at,
            journal=journal,
            polling=polling,
            on_progress=on_progress,
        )
        fatal: BaseException | None = None
        try:
            async with ingestion as results:
                async for result in results:
                    on_result(result)
        except DebituraError as exc:
            fatal = exc
        finally:
            progress.close(tally.last_progress)
        summary = ingestion.summary
        code = exit_code_for(summary)
        if fatal is not None:
            message, _ = _fatal_message(fatal)
            progress.message(f"{PROG}: error: {message}")
            code = EXIT_FATAL

        hidden = tally.rejected_lines - tally.rejected_shown
        if hidden > 0:
            where = f"see {report.path}" if report is not None else "pass --report PATH for all"
            print(f"{PROG}: … and {hidden:,} more rejected lines ({where})", file=err)
        if report is not None:
            report.close()
        if journal is not None and fatal is None and not summary.rows_unresolved:
            await journal.mark_complete(_summary_dict(summary))
        if code == EXIT_UNRESOLVED:
            if journal_path is not None:
                hint = f"run the same command with --resume (journal {journal_path})"
            else:
                hint = "no journal was kept, so a rerun sends everything again"
            print(
                f"{PROG}: {summary.rows_unresolved:,} rows have no known outcome yet: {hint}",
                file=err,
            )
        lines_read = 0
        if len(reader.lines):
            lines_read = reader.lines.last_line(len(reader.lines) - 1)
        _print_summary(
            out,
            plan=plan,
            summary=summary,
            tally=tally,
            run=run,
            lines_read=lines_read,
            journal_path=journal_path,
            report=report,
            code=code,
        )
        return code


@attrs.define
class _ResultSink:
    """Turns each JobResult into report records and stderr lines."""

    span: Callable[[int, int], tuple[int, int]]
    mapping: Mapping[str, str]
    report: ReportWriter | None
    progress: Progress
    tally: _Tally
    show_rejected: int

    def __call__(self, result: JobResult) -> None:
        tally, report = self.tally, self.report
        if result.resumed:
            tally.jobs_replayed += 1
            tally.rows_replayed += result.rows_succeeded
        if result.outcome is JobOutcome.REJECTED and result.rejected_rows:
            for rejected in result.rejected_rows:
                first, last = self.span(rejected.position, rejected.position)
                reasons = [_describe_reason(r, self.mapping) for r in rejected.problems]
                details = [_LINE_PREFIX.sub("", r, count=1) for r in reasons]
                tally.rejected_lines += 1
                if tally.rejected_shown < self.show_rejected:
                    tally.rejected_shown += 1
                    for reason in reasons:
                        self.progress.message(f"{PROG}: rejected {_with_line(reason, first, last)}")
                if report is not None:
                    report.write(
                        {
                            "record": "rejected",
                            "batch": result.batch_index,
                            "first_line": first,
                            "last_line": last,
                            "rows": 1,
                            "outcome": JobOutcome.REJECTED.value,
                            "succeeded": 0,
                            "failed": 0,
                            "idempotency_key": result.idempotency_key,
                            "resumed": result.resumed,
                            "detail": details,
                        }
                    )
            return
        first, last = self.span(result.first_position, result.last_position)
        if result.outcome is JobOutcome.UNRESOLVED:
            tally.unresolved_jobs += 1
        detail: str | None = None
        if result.error is not None and result.outcome is not JobOutcome.COMPLETED:
            detail = str(result.error)
        elif result.outcome is JobOutcome.FAILED:
            detail = "the job failed at the server: no row was processed"
        elif result.outcome is JobOutcome.COMPLETED_WITH_ERRORS:
            rows = "1 row" if result.rows_failed == 1 else f"{result.rows_failed:,} rows"
            detail = (
                f"{rows} failed at the server (unknown case, a case of another partner, or"
                " eventDate in the future); the API does not say which"
            )
        if report is not None:
            report.write(
                {
                    "record": "job",
                    "batch": result.batch_index,
                    "first_line": first,
                    "last_line": last,
                    "rows": result.row_count,
                    "outcome": result.outcome.value,
                    "succeeded": result.rows_succeeded,
                    "failed": result.rows_failed,
                    "job_id": None if result.job_id is None else str(result.job_id),
                    "idempotency_key": result.idempotency_key,
                    "resumed": result.resumed,
                    "detail": detail,
                }
            )


# -- status / whoami ------------------------------------------------------------------------------


def _client_from_args(args: argparse.Namespace) -> DebituraClient:
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if not api_key:
        raise CLIError(f"no API key: pass --api-key or set ${API_KEY_ENV}")
    try:
        return DebituraClient(
            api_key, base_url=args.base_url or None, allow_insecure_http=args.allow_insecure_http
        )
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None


async def _status(args: argparse.Namespace, out: TextIO) -> int:
    try:
        job_id = uuid.UUID(args.job_id)
    except ValueError:
        raise CLIError(f"JOB_ID {args.job_id!r} is not a UUID") from None
    async with _client_from_args(args) as client:
        try:
            if args.wait:
                interval = 3.0 / (args.time_scale or 1.0)
                status = await client.wait_for_ingestion_job(
                    job_id, poll_interval=interval, timeout=args.timeout
                )
            else:
                status = await client.get_ingestion_job(job_id)
        except NotFoundError:
            print(f"{PROG}: job {job_id} not found (or not owned by this partner)", file=out)
            return EXIT_ROWS_FAILED
        except JobWaitTimeout as exc:
            raise CLIError(str(exc), EXIT_UNRESOLVED) from None
        except DebituraError as exc:
            message, code = _fatal_message(exc)
            raise CLIError(message, code) from None
    if args.json:
        payload = {
            "jobId": str(job_id),
            "status": int(status.status),
            "statusName": status.status.name,
            "rowsTotal": status.rows_total,
            "rowsSucceeded": status.rows_succeeded,
            "rowsFailed": status.rows_failed,
        }
        print(orjson.dumps(payload).decode(), file=out)
    else:
        name = status.status.name.replace("_", " ").title().replace(" ", "")
        print(f"job {job_id}: {name} ({int(status.status)})", file=out)
        print(
            f"  rows: {status.rows_total:,} total, {status.rows_succeeded:,} succeeded,"
            f" {status.rows_failed:,} failed",
            file=out,
        )
    if args.wait and status.status is not AsyncJobStatus.COMPLETED:
        return EXIT_ROWS_FAILED
    return EXIT_OK


async def _whoami(args: argparse.Namespace, out: TextIO) -> int:
    async with _client_from_args(args) as client:
        try:
            partner = await client.me()
        except DebituraError as exc:
            message, code = _fatal_message(exc)
            raise CLIError(message, code) from None
        base_url = client.base_url
    if args.json:
        data = {
            "id": str(partner.id),
            "companyName": partner.company_name,
            "country": partner.country,
            "baseUrl": base_url,
        }
        print(orjson.dumps(data).decode(), file=out)
    else:
        print(f"partner  {partner.company_name or '(no name)'}", file=out)
        print(f"id       {partner.id}", file=out)
        if partner.country:
            print(f"country  {partner.country}", file=out)
        print(f"api      {base_url}", file=out)
    return EXIT_OK


# -- demo -----------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    examples = _examples_dir()
    workdir = Path(tempfile.mkdtemp(prefix="debitura-demo-"))
    report = Path(args.report) if args.report else workdir / "demo-report.csv"
    plan = IngestPlan(
        path=examples / DEMO_INPUT,
        input_format="csv",
        mapping=parse_mapping(DEMO_MAP),
        emulator=True,
        emulator_world=examples / DEMO_WORLD,
        journal_path=workdir / "demo.journal.sqlite",
        report_path=report,
        batch_size=DEMO_BATCH_SIZE,
        concurrency=DEMO_CONCURRENCY,
        time_scale=args.time_scale,
        progress=args.progress,
        progress_interval=args.progress_interval,
        show_rejected=args.show_rejected,
    )
    maps = " ".join(f"--map {m}" for m in DEMO_MAP)
    print(
        f"Demo: ingesting {DEMO_INPUT} (a CRM export of case notes, some deliberately bad)\n"
        f"into an embedded Debitura emulator, time-scaled x{args.time_scale:g}. Equivalent to:\n"
        f"  {PROG} ingest {plan.path} {maps} \\\n"
        f"      --emulator --time-scale {args.time_scale:g} --batch-size {DEMO_BATCH_SIZE}"
        f" --concurrency {DEMO_CONCURRENCY} --journal {plan.journal_path} --report {report}\n",
        file=out,
        flush=True,
    )
    code = await run_ingest(plan, out=out, err=err)
    print(
        f"\nReport: {report}\n"
        "The demo exits with code 1 on purpose: the sample plants bad lines and notes for unknown"
        " cases (see the report).",
        file=out,
        flush=True,
    )
    return code


# -- entry point ----------------------------------------------------------------------------------


def _plan_from_args(args: argparse.Namespace) -> IngestPlan:
    try:
        mapping = parse_mapping(args.map)
    except InputError as exc:
        raise CLIError(str(exc)) from None
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
    )


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    command = args.command
    if command == "ingest":
        plan = _plan_from_args(args)
        return asyncio.run(run_ingest(plan, out=out, err=err))
    if command == "status":
        return asyncio.run(_status(args, out))
    if command == "whoami":
        return asyncio.run(_whoami(args, out))
    if command == "demo":
        return asyncio.run(_demo(args, out, err))
    if command == "emulator":
        from .emulator import cli as emulator_cli  # noqa: PLC0415

        return emulator_cli.run(args)
    raise CLIError("choose a command: ingest, status, whoami, emulator, demo (see --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, run, turn every failure into one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
    elif args.command != "emulator":  # the emulator configures its own logging
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format=f"{PROG}: %(name)s: %(message)s"
        )
        # Retries are counted in the summary; stamina's bare event names would only be noise.
        logging.getLogger("stamina").setLevel(logging.ERROR)
    out, err = sys.stdout, sys.stderr
    prog = f"{PROG} {args.command}" if args.command else PROG
    try:
        return _dispatch(args, out, err)
    except CLIError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return exc.code
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except ValidationError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; the journal (if any) is intact: run again with --resume",
            file=err,
        )
        return EXIT_UNRESOLVED
    except Exception as exc:
        if args.verbose:
            raise
        message, code = _fatal_message(exc)
        print(f"{prog}: error: {message} ({type(exc).__name__}; -v shows more)", file=err)
        return code


if __name__ == "__main__":
    sys.exit(main())
