"""The end of an ingest: the summary (text on stdout, or one JSON object with ``--json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import attrs
import orjson

from ..journal import RunInfo
from ..models import IngestionSummary, IngestProgress, JobOutcome
from ._common import EXIT_CODES
from ._plan import IngestPlan, accounting_gap

__all__ = ["Ending", "Tally", "print_summary", "summary_dict", "summary_json"]

OUTCOME_NAMES = (
    (JobOutcome.COMPLETED, "completed"),
    (JobOutcome.COMPLETED_WITH_ERRORS, "completed with errors"),
    (JobOutcome.FAILED, "failed"),
    (JobOutcome.UNRESOLVED, "unresolved"),
)


@attrs.define
class Tally:
    """What the CLI counts beside the pipeline (replays from the journal, rejected lines)."""

    jobs_replayed: int = 0
    rows_replayed: int = 0
    rejected_shown: int = 0
    rejected_lines: int = 0
    unresolved_jobs: int = 0
    last_progress: IngestProgress | None = None


@attrs.frozen(kw_only=True)
class Ending:
    """How a run ended, for the summary."""

    summary: IngestionSummary
    code: int
    lines_read: int
    stopped: str | None = None
    run: RunInfo | None = None
    journal_path: Path | None = None
    report_path: Path | None = None
    report_records: int = 0


def summary_dict(summary: IngestionSummary) -> dict[str, Any]:
    """The row and job counts, as the journal records them and ``--json`` prints them."""
    return {
        "rowsRead": summary.rows_read,
        "rowsRejected": summary.rows_rejected,
        "rowsSubmitted": summary.rows_submitted,
        "rowsSucceeded": summary.rows_succeeded,
        "rowsFailed": summary.rows_failed,
        "rowsUnresolved": summary.rows_unresolved,
        "jobs": {k.value: v for k, v in summary.jobs.items()},
    }


def summary_json(plan: IngestPlan, end: Ending, tally: Tally) -> str:
    """``ingest --json``: one object on one line."""
    s = end.summary
    data: dict[str, Any] = {
        "exitCode": end.code,
        "exitMeaning": EXIT_CODES[end.code],
        "complete": end.code != 3 and end.stopped is None and not s.rows_unresolved,
        "stopped": end.stopped,
        "input": str(plan.path),
        "linesRead": end.lines_read,
        "runId": None if end.run is None else end.run.run_id,
        "attempt": None if end.run is None else end.run.attempts,
        **summary_dict(s),
        "rowsUnaccounted": accounting_gap(s),
        "jobsReplayed": tally.jobs_replayed,
        "requests": s.requests,
        "posts": s.posts,
        "polls": s.polls,
        "retries": s.retries,
        "rateLimited": s.rate_limited,
        "elapsedSeconds": round(s.elapsed, 3),
        "journal": None if end.journal_path is None else str(end.journal_path),
        "report": None if end.report_path is None else str(end.report_path),
    }
    return orjson.dumps(data).decode()


def _count_rows(s: IngestionSummary, width: int) -> list[tuple[str, str]]:
    def count(value: int) -> str:
        return f"{value:,}".rjust(width)

    def note(value: int, text: str) -> str:
        return count(value) + (f"  ({text})" if value else "")

    return [
        ("rows read", count(s.rows_read)),
        ("  succeeded", count(s.rows_succeeded)),
        ("  failed", note(s.rows_failed, "refused by the server: unknown case, not yours, …")),
        ("  rejected", note(s.rows_rejected, "never sent: bad lines or invalid rows")),
        ("  unresolved", note(s.rows_unresolved, "outcome unknown: resume the run")),
    ]


def print_summary(out: TextIO, plan: IngestPlan, end: Ending, tally: Tally) -> None:
    s = end.summary
    jobs = s.jobs
    job_parts = [f"{jobs[o]:,} {name}" for o, name in OUTCOME_NAMES if jobs.get(o)]
    job_total = sum(jobs.get(o, 0) for o, _ in OUTCOME_NAMES)
    stored_now = s.rows_succeeded - tally.rows_replayed
    rate = stored_now / s.elapsed if s.elapsed > 0 else 0.0
    rows: list[tuple[str, str]] = [("input", f"{plan.path} ({end.lines_read:,} lines)")]
    if end.run is not None:
        run = end.run
        attempt = f"attempt {run.attempts}" if run.attempts > 1 else "first attempt"
        replay = (
            f"; {tally.jobs_replayed:,} jobs replayed from the journal"
            if tally.jobs_replayed
            else ""
        )
        rows.append(("run", f"{run.run_id} ({attempt}{replay})"))
    if end.stopped is not None:
        rows.append(("stopped", f"by {end.stopped}: resume with --resume"))
    rows += _count_rows(s, max(len(f"{s.rows_read:,}"), 1))
    gap = accounting_gap(s)
    if gap:
        rows.append(("  unaccounted", f"{gap:,}  (rows in no bucket: see exit code 5)"))
    rows += [
        ("jobs", f"{job_total:,}" + (f" ({', '.join(job_parts)})" if job_parts else "")),
        (
            "requests",
            f"{s.requests:,} ({s.posts:,} POST, {s.polls:,} GET, {s.retries:,} retries,"
            f" {s.rate_limited:,} rate-limited)",
        ),
        (
            "elapsed",
            f"{s.elapsed:.1f} s ({stored_now:,} rows stored in this attempt, {rate:,.0f} rows/s)",
        ),
        ("journal", str(end.journal_path) if end.journal_path is not None else "none"),
    ]
    if end.report_path is not None:
        partial = ", partial" if end.stopped is not None or s.rows_unresolved else ""
        rows.append(("report", f"{end.report_path} ({end.report_records:,} records{partial})"))
    label = max(len(name) for name, _ in rows)
    print("", file=out)
    print("Summary", file=out)
    for name, value in rows:
        print(f"  {name.ljust(label)}  {value}", file=out)
    print(f"exit code {end.code}: {EXIT_CODES[end.code]}", file=out)
    out.flush()
