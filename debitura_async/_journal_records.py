"""The journal's records and files: the value types a journal holds, a JobResult as JSON, the
0600 file creation and the test-only commit hooks. Part of :mod:`debitura_async.journal`, which
re-exports the public names."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import attrs
import orjson

from .errors import DebituraError
from .models import (
    AsyncJobStatus,
    IngestionJobStatus,
    JobOutcome,
    JobResult,
    RejectedRow,
)

__all__ = [
    "BatchRecord",
    "CommitHooks",
    "InputIdentity",
    "RecordedError",
    "RunInfo",
    "Step",
    "result_from_json",
    "result_to_json",
    "set_commit_hooks",
]

Step = Literal["create", "attempt", "submitting", "accepted", "finished", "rejected", "complete"]


class RecordedError(DebituraError):
    """An error recorded by an earlier run and read back from a journal (type and message)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse_iso(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@attrs.frozen(kw_only=True)
class InputIdentity:
    """What an input file is: its path, size and SHA-256 (streamed, never loaded whole)."""

    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str | Path, *, chunk: int = 1 << 20) -> InputIdentity:
        p = Path(path)
        digest = hashlib.sha256()
        size = 0
        with p.open("rb") as f:
            while block := f.read(chunk):
                digest.update(block)
                size += len(block)
        return cls(path=str(p.resolve()), size=size, sha256=digest.hexdigest())


@attrs.frozen(kw_only=True)
class RunInfo:
    """The run a journal holds. ``settings`` are the JSON-able options that shape the batches."""

    run_id: str
    input: InputIdentity
    base_url: str
    batch_size: int
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    validated_at: datetime
    created_at: datetime = attrs.field(factory=_utcnow)
    attempts: int = 1
    completed_at: datetime | None = None


@attrs.frozen(kw_only=True)
class BatchRecord:
    """One row of the ``batches`` table."""

    idempotency_key: str
    batch_index: int
    first_position: int
    last_position: int
    first_line: int | None
    last_line: int | None
    row_count: int
    state: Literal["submitting", "accepted", "finished"]
    job_id: uuid.UUID | None
    outcome: JobOutcome | None
    rows_succeeded: int | None
    rows_failed: int | None


# -- JobResult <-> JSON ---------------------------------------------------------------------------


def result_to_json(result: JobResult) -> bytes:
    """A JobResult as JSON (the error keeps only its type name and message)."""
    status = result.status
    error = result.error
    data: dict[str, Any] = {
        "batchIndex": result.batch_index,
        "firstPosition": result.first_position,
        "lastPosition": result.last_position,
        "rowCount": result.row_count,
        "outcome": result.outcome.value,
        "jobId": None if result.job_id is None else str(result.job_id),
        "status": None
        if status is None
        else {
            "status": int(status.status),
            "rowsTotal": status.rows_total,
            "rowsSucceeded": status.rows_succeeded,
            "rowsFailed": status.rows_failed,
        },
        "error": None
        if error is None
        else {
            "type": error.kind if isinstance(error, RecordedError) else type(error).__name__,
            "message": str(error),
        },
        "rejectedRows": [
            {"position": r.position, "problems": list(r.problems)} for r in result.rejected_rows
        ],
        "idempotencyKey": result.idempotency_key,
        "polls": result.polls,
        "submittedAt": _iso(result.submitted_at),
        "finishedAt": _iso(result.finished_at),
    }
    return orjson.dumps(data)


def result_from_json(raw: bytes | str) -> JobResult:
    """Inverse of :func:`result_to_json` (``resumed`` is False; the pipeline sets it)."""
    data = orjson.loads(raw)
    status = data.get("status")
    error = data.get("error")
    job_id = data.get("jobId")
    return JobResult(
        batch_index=data["batchIndex"],
        first_position=int(data["firstPosition"]),
        last_position=int(data["lastPosition"]),
        row_count=int(data["rowCount"]),
        outcome=JobOutcome(data["outcome"]),
        job_id=None if job_id is None else uuid.UUID(job_id),
        status=None
        if status is None
        else IngestionJobStatus(
            status=AsyncJobStatus(int(status["status"])),
            rows_total=int(status["rowsTotal"]),
            rows_succeeded=int(status["rowsSucceeded"]),
            rows_failed=int(status["rowsFailed"]),
        ),
        error=None if error is None else RecordedError(str(error["type"]), str(error["message"])),
        rejected_rows=tuple(
            RejectedRow(position=int(r["position"]), problems=tuple(r["problems"]))
            for r in data.get("rejectedRows", ())
        ),
        idempotency_key=data.get("idempotencyKey"),
        polls=int(data.get("polls", 0)),
        submitted_at=_parse_iso(data.get("submittedAt")),
        finished_at=_parse_iso(data.get("finishedAt")),
    )


# -- test hooks -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CommitHooks:
    """Callbacks around every journal commit, for crash tests.

    ``before(step, n)`` runs right before the n-th commit of ``step`` (1-based, per step);
    ``after(n)`` right after the n-th commit of any step. A test kills the process in them.
    """

    before: Callable[[Step, int], None] | None = None
    after: Callable[[int], None] | None = None


_hooks = CommitHooks()


def set_commit_hooks(hooks: CommitHooks | None) -> None:
    """Install (or with None remove) the process-wide :class:`CommitHooks`. Test use only."""
    global _hooks  # noqa: PLW0603 - one switch for the process, like stamina.set_testing
    _hooks = hooks or CommitHooks()


class _CommitCounter:
    def __init__(self) -> None:
        self.commits = 0
        self.steps: dict[str, int] = {}

    def before_commit(self, step: Step) -> None:
        self.steps[step] = self.steps.get(step, 0) + 1
        if _hooks.before is not None:
            _hooks.before(step, self.steps[step])

    def after_commit(self) -> None:
        self.commits += 1
        if _hooks.after is not None:
            _hooks.after(self.commits)


def _create_private(path: Path) -> None:
    """Create an empty 0600 file unless ``path`` exists, so SQLite never makes it 0644."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable."""
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
