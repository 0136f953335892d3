"""Ingestion jobs inside the emulator: a job's state as a pure function of ``now``, and the
body rules of ``POST /ingestion-jobs`` (one pass over the rows). Used by :mod:`.core`."""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from ._values import MAX_DESCRIPTION_LENGTH, MAX_ROWS, ApiProblem, JobStatus, JobView
from .config import Partner

__all__ = ["CheckedBatch", "Job", "check_batch"]

_ROW_FIELDS: Final = frozenset({"type", "caseId", "description", "eventDate", "externalRef"})
_BATCH_FIELDS: Final = frozenset({"rows"})
# System.Text.Json reads a Guid only in the hyphenated "D" format (36 characters).
_UUID_D: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

# rows, failed row indices, (index, eventDate) of rows dated after submission, case keys, dates
CheckedBatch = tuple[
    list[Any],
    list[int],
    list[tuple[int, datetime]],
    list[str] | None,
    list[datetime | None] | None,
]


@attrs.define(kw_only=True)
class Job:
    """A submitted ingestion job: its schedule, its outcome per row and (optionally) its rows."""

    id: uuid.UUID
    partner: Partner
    rows_total: int
    created_at: float
    submit_utc: datetime
    start: float
    proc_start: float
    end: float
    failed_rows: list[int]
    fail: bool
    vanish_at: float | None
    idempotency_key: str | None
    # Row data, kept only with store_notes=True: ingestion notes are rendered from it on demand.
    rows: list[dict[str, Any]] | None
    case_keys: list[str] | None
    event_dates: list[datetime | None] | None
    multiplier: float = 1.0
    slow_path: bool = False
    materialized: int = 0
    finished: bool = False
    note_number: int = -1

    def processed(self, now: float) -> int:
        if now >= self.end:
            return self.rows_total
        if now < self.proc_start:
            return 0
        span = self.end - self.proc_start
        return min(self.rows_total, int(self.rows_total * (now - self.proc_start) / span))

    def view(self, now: float) -> JobView:
        total = self.rows_total
        if now < self.start:
            return JobView(
                status=JobStatus.QUEUED, rows_total=total, rows_succeeded=0, rows_failed=0
            )
        if self.fail:
            status = JobStatus.FAILED if now >= self.end else JobStatus.IN_PROGRESS
            return JobView(status=status, rows_total=total, rows_succeeded=0, rows_failed=0)
        if now >= self.end:
            failed = len(self.failed_rows)
            status = JobStatus.COMPLETED_WITH_ERRORS if failed else JobStatus.COMPLETED
            return JobView(
                status=status, rows_total=total, rows_succeeded=total - failed, rows_failed=failed
            )
        done = self.processed(now)
        failed = bisect.bisect_left(self.failed_rows, done)
        return JobView(
            status=JobStatus.IN_PROGRESS,
            rows_total=total,
            rows_succeeded=done - failed,
            rows_failed=failed,
        )

    def row_time(self, index: int) -> float:
        """Model time at which row ``index`` (0-based) is processed."""
        span = self.end - self.proc_start
        return self.proc_start + span * (index + 1) / self.rows_total

    def row_utc(self, index: int, time_scale: float) -> datetime:
        """Real UTC at which a row is processed (model offsets divided by the time scale)."""
        offset = (self.row_time(index) - self.created_at) / time_scale
        return self.submit_utc + timedelta(seconds=offset)

    def record(self, now: float) -> dict[str, Any]:
        """The job as ``/_emulator/jobs`` lists it (vanished ones flagged)."""
        view = self.view(now)
        return {
            "jobId": str(self.id),
            "partnerId": str(self.partner.id),
            "status": int(view.status),
            "rowsTotal": view.rows_total,
            "rowsSucceeded": view.rows_succeeded,
            "rowsFailed": view.rows_failed,
            "idempotencyKey": self.idempotency_key,
            "createdAt": self.created_at,
            "startedAt": self.start,
            "processingAt": self.proc_start,
            "finishedAt": self.end,
            "multiplier": self.multiplier,
            "slowPath": self.slow_path,
            "vanished": self.vanish_at is not None and now >= self.vanish_at,
        }


def check_batch(
    partner: Partner,
    document: object,
    utcnow: datetime,
    *,
    case_owner: Mapping[str, Partner],
    store: bool,
) -> CheckedBatch | ApiProblem:
    """All body rules in one pass; per-row outcomes (case ownership) computed on the way."""
    envelope = _batch_rows(document)
    if isinstance(envelope, ApiProblem):
        return envelope
    rows, problems = envelope
    case_keys: list[str] | None = [] if store else None
    event_dates: list[datetime | None] | None = [] if store else None
    failed: list[int] = []
    future: list[tuple[int, datetime]] = []
    owner_of = case_owner
    allowed = _ROW_FIELDS
    uuid_match = _UUID_D.fullmatch
    fromiso = datetime.fromisoformat
    max_len = MAX_DESCRIPTION_LENGTH
    for i, row in enumerate(rows):
        if type(row) is not dict:
            problems.append(f"rows[{i}]: must be a JSON object")
            continue
        if not allowed.issuperset(row):
            problems.extend(f"rows[{i}].{k}: unknown field" for k in row if k not in allowed)
        kind = row.get("type")
        if type(kind) is not int:
            problems.append(_type_problem(i, kind))
        elif kind != 0:
            problems.append(
                f"rows[{i}].type: event type {kind} is not currently supported (only 0 = Note)"
            )
        case = row.get("caseId")
        owner = owner_of.get(case) if type(case) is str else None
        if owner is None:
            if type(case) is not str:
                problems.append(
                    f"rows[{i}].caseId: required"
                    if case is None
                    else f"rows[{i}].caseId: must be a UUID string"
                )
            elif uuid_match(case) is None:
                problems.append(f"rows[{i}].caseId: not a valid UUID")
            else:
                case = case.lower()
                owner = owner_of.get(case)
        text = row.get("description")
        if type(text) is not str:
            problems.append(
                f"rows[{i}].description: required for Note events"
                if text is None
                else f"rows[{i}].description: must be a string"
            )
        elif len(text) > max_len:
            problems.append(
                f"rows[{i}].description: must be at most {max_len} characters (got {len(text)})"
            )
        elif not text or text.isspace():
            problems.append(f"rows[{i}].description: must not be empty")
        when = row.get("eventDate")
        moment: datetime | None = None
        if when is not None:
            if type(when) is not str:
                problems.append(f"rows[{i}].eventDate: must be an ISO 8601 date-time string")
            else:
                try:
                    moment = fromiso(when)
                except ValueError:
                    problems.append(f"rows[{i}].eventDate: not a valid ISO 8601 date-time")
                else:
                    if moment.tzinfo is None:
                        moment = moment.replace(tzinfo=UTC)
                    if moment > utcnow:
                        future.append((i, moment))
        ref = row.get("externalRef")
        if ref is not None and type(ref) is not str:
            problems.append(f"rows[{i}].externalRef: must be a string or null")
        if owner is not partner:
            failed.append(i)
        if case_keys is not None and event_dates is not None:
            case_keys.append(case if type(case) is str else "")
            event_dates.append(moment)
    if problems:
        return ApiProblem.validation(problems)
    return rows, failed, future, case_keys, event_dates


def _batch_rows(document: object) -> tuple[list[Any], list[str]] | ApiProblem:
    """The body's ``rows`` array and the problems found so far, or the problem that ends it."""
    if type(document) is not dict:
        return ApiProblem.validation(["body: must be a JSON object"])
    problems: list[str] = [f"{name}: unknown field" for name in document if name != "rows"]
    rows = document.get("rows")
    if rows is None:
        problems.append("rows: required; at least one row is required")
        return ApiProblem.validation(problems)
    if type(rows) is not list:
        problems.append("rows: must be an array")
        return ApiProblem.validation(problems)
    if not rows:
        problems.append("rows: at least one row is required")
        return ApiProblem.validation(problems)
    if len(rows) > MAX_ROWS:
        problems.append(f"rows: batch limit exceeded ({len(rows)} rows; at most {MAX_ROWS})")
        return ApiProblem.validation(problems)
    return rows, problems


def _type_problem(index: int, value: object) -> str:
    if value is None:
        return f"rows[{index}].type: required"
    return f"rows[{index}].type: must be an integer"
