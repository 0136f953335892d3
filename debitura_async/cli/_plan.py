"""Run planning, pure: what ``ingest`` was asked, which flags conflict, which journal it uses,
whether it resumes, which files must not be the same, and the exit code a summary earns.

No I/O here: the shell (``ingest.py``) looks at the file system and passes what it saw in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from .._input import InputFormat
from .._input_options import InputOptions
from ..journal import RunInfo
from ..models import IngestionSummary
from ._common import (
    DEFAULT_CONCURRENCY,
    EXIT_ACCOUNTING,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_UNRESOLVED,
    CLIError,
)

__all__ = [
    "IngestPlan",
    "ProgressMode",
    "accounting_gap",
    "check_conflicts",
    "colliding_files",
    "exit_code_for",
    "journal_files",
    "journal_path_for",
    "report_files",
    "resolve_resume_settings",
    "resume_decision",
    "resume_input_options",
    "settings_of",
]

ProgressMode = Literal["auto", "bar", "log", "off"]


@attrs.frozen(kw_only=True)
class IngestPlan:
    """Everything ``ingest`` (and ``demo``) was asked to do. ``api_key``/``base_url`` are only
    what ``--api-key``/``--base-url`` said (None when not given): the client resolves them, with
    ``$DEBITURA_API_KEY``/``$DEBITURA_BASE_URL`` as its fallbacks. The key is kept out of the
    repr."""

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
    json: bool = False
    quiet: bool = False
    input_options: InputOptions = attrs.field(factory=InputOptions)
    budget_url: str | None = attrs.field(default=None, repr=False)
    dry_run: bool = False
    rerun_report: Path | None = None

    @property
    def from_stdin(self) -> bool:
        """The input is ``-``: standard input."""
        return str(self.path) == "-"


def check_conflicts(plan: IngestPlan) -> None:
    """Flags that cannot go together (:class:`CLIError`, exit 2)."""
    if plan.emulator and (plan.base_url or plan.api_key):
        raise CLIError("--emulator starts its own server: drop --base-url/--api-key")
    if plan.emulator and plan.resume:
        raise CLIError(
            "--resume cannot continue against an embedded emulator: its jobs ended with the"
            " earlier process"
        )
    if plan.no_journal and (plan.resume or plan.journal_path is not None):
        raise CLIError("--no-journal conflicts with --resume/--journal")
    if plan.dry_run and (plan.resume or plan.report_path is not None or plan.strict):
        raise CLIError(
            "--dry-run sends nothing and writes no journal or report: drop"
            " --resume/--report/--strict"
        )
    if plan.from_stdin:
        if plan.input_format is None:
            raise CLIError("reading standard input (-) needs --format csv or --format jsonl")
        given = [
            flag
            for flag, on in (
                ("--journal", plan.journal_path is not None),
                ("--resume", plan.resume),
                ("--strict", plan.strict),
            )
            if on
        ]
        if given:
            raise CLIError(
                f"{'/'.join(given)} cannot be used with - (standard input): a stream cannot be"
                " read twice nor identified again on a resume; save it to a file first"
            )


def journal_path_for(plan: IngestPlan) -> Path | None:
    """The journal a plan uses: ``--journal``, else ``PATH.journal.sqlite``; none with
    ``--no-journal`` or an embedded emulator without ``--journal``."""
    if (
        plan.no_journal
        or plan.dry_run
        or plan.from_stdin
        or (plan.emulator and plan.journal_path is None)
    ):
        return None
    return plan.journal_path or plan.path.with_name(plan.path.name + ".journal.sqlite")


def resume_decision(
    *, resume: bool, journal: Path, exists: bool, empty: bool, holds_run: bool
) -> bool:
    """True: resume the journal's run; False: create a new run in it. Refuses the rest.

    ``--resume`` needs a journal that holds a run: a missing file, an empty one or one with no
    run record (a copy without its ``-wal``, a run killed before its first commit) is refused
    rather than silently started afresh under a new run id, which would send every row again.
    """
    name = repr(str(journal))
    if resume and not exists:
        raise CLIError(f"--resume: no journal at {name} (drop --resume to start a run)")
    if resume and (empty or not holds_run):
        what = "is an empty file" if empty else "holds no run"
        raise CLIError(
            f"--resume: the journal {name} {what}, so it cannot say what was sent. If it is a"
            " copy, copy it again together with its -wal file (or from a stopped run); if the"
            " run never started, delete it and drop --resume"
        )
    if not resume and holds_run:
        raise CLIError(
            f"journal {name} already exists: pass --resume to continue its run (or to replay its"
            " report), or --journal NEW_PATH to start another run (which sends every row again)"
        )
    return resume


def settings_of(
    input_format: InputFormat,
    mapping: Mapping[str, str],
    batch_size: int,
    options: InputOptions | None = None,
) -> dict[str, Any]:
    """The settings recorded in a journal: the ones that shape the batches (and the rows)."""
    settings: dict[str, Any] = {
        "format": input_format,
        "map": dict(sorted(mapping.items())),
        "batchSize": batch_size,
    }
    settings["input"] = (options or InputOptions()).settings()
    return settings


_OPTION_FLAGS = {
    "delimiter": "--delimiter",
    "encoding": "--encoding",
    "assumeTimezone": "--assume-timezone",
    "dst": "--dst",
}


def resume_input_options(plan: IngestPlan, run: RunInfo) -> InputOptions:
    """The input options of a resumed run: the journal's (a journal without them: the
    defaults); an option given now with another value is refused (other rows would form)."""
    recorded = dict(run.settings.get("input") or {})
    journal = InputOptions(
        delimiter=recorded.get("delimiter"),
        encoding=recorded.get("encoding"),
        assume_timezone=recorded.get("assumeTimezone"),
        dst=recorded.get("dst") or "rfc5545",
    )
    given, default = plan.input_options.settings(), InputOptions().settings()
    for key, flag in _OPTION_FLAGS.items():
        mine, theirs = given[key], journal.settings()[key]
        if mine != default[key] and mine != theirs:
            shown = "not given" if theirs is None else repr(theirs)
            raise CLIError(
                f"--resume: the journal's run read the input with {flag} {shown}, not {mine!r};"
                f" another value would form other rows (drop {flag})"
            )
    return journal


def resolve_resume_settings(
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


# -- files that must stay apart -------------------------------------------------------------------


def journal_files(journal: Path) -> tuple[Path, ...]:
    """The journal and the files SQLite keeps beside it."""
    return (journal, *(journal.with_name(journal.name + s) for s in ("-wal", "-shm", "-journal")))


def report_files(report: Path) -> tuple[Path, ...]:
    """The report and the ``.partial`` file it is written to first."""
    return (report, report.with_name(report.name + ".partial"))


def colliding_files(groups: Sequence[tuple[str, Sequence[object]]]) -> list[tuple[str, str]]:
    """Pairs of roles whose files are the same. Each group is a role (``"the input"``) and the
    identities of its files (a resolved path, or ``(st_dev, st_ino)`` of an existing file: the
    caller decides, so that hard links and symlinks count as the same file)."""
    owner: dict[object, str] = {}
    clashes: list[tuple[str, str]] = []
    for role, identities in groups:
        for identity in identities:
            other = owner.get(identity)
            if other is not None and other != role and (other, role) not in clashes:
                clashes.append((other, role))
            owner.setdefault(identity, role)
    return clashes


# -- the exit code --------------------------------------------------------------------------------


def accounting_gap(summary: IngestionSummary) -> int:
    """Rows read minus the rows in a bucket (0 when every row is in exactly one bucket)."""
    placed = (
        summary.rows_succeeded
        + summary.rows_failed
        + summary.rows_rejected
        + summary.rows_unresolved
    )
    return summary.rows_read - placed


def exit_code_for(summary: IngestionSummary) -> int:
    """The exit code of an ingestion, after checking that every row read is accounted for."""
    if accounting_gap(summary) != 0:
        return EXIT_ACCOUNTING
    if summary.rows_unresolved:
        return EXIT_UNRESOLVED
    if summary.rows_failed or summary.rows_rejected:
        return EXIT_ROWS_FAILED
    return EXIT_OK
