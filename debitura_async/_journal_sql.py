"""The journal's SQLite side: the schema, its statements, and rows to and from the records.

No error wrapping and no file handling here (see :mod:`debitura_async.journal`, which turns
``sqlite3`` errors into ``JournalError``); only what the tables look like and how a record maps
onto them.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

import orjson

from ._batching import Batch
from ._journal_records import (
    BatchRecord,
    InputIdentity,
    RunInfo,
    Step,
    _CommitCounter,
    _iso,
    _parse_iso,
    result_to_json,
)
from .models import JobOutcome, JobResult

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Transaction",
    "batch_records",
    "create_schema",
    "finish_batch",
    "holds_run",
    "keep_rejections",
    "read_run",
    "run_from_row",
    "submit_batch",
]

SCHEMA_VERSION: Final = 1

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id TEXT NOT NULL,
    input_path TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL,
    base_url TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    settings TEXT NOT NULL,
    validated_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    completed_at TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key TEXT PRIMARY KEY,
    batch_index INTEGER NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    first_line INTEGER,
    last_line INTEGER,
    row_count INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('submitting', 'accepted', 'finished')),
    job_id TEXT,
    outcome TEXT,
    rows_succeeded INTEGER,
    rows_failed INTEGER,
    result TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    idempotency_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    line INTEGER,
    reasons TEXT NOT NULL,
    PRIMARY KEY (idempotency_key, position)
);
"""


class Transaction:
    """``with Transaction(conn, counter, step):`` one ``BEGIN IMMEDIATE`` .. ``COMMIT``, rolled
    back on an exception; the test-only commit hooks run around the commit."""

    def __init__(self, conn: sqlite3.Connection, crash: _CommitCounter, step: Step) -> None:
        self.conn = conn
        self.crash = crash
        self.step = step

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.conn.execute("ROLLBACK")
            return
        self.crash.before_commit(self.step)
        self.conn.execute("COMMIT")
        self.crash.after_commit()


def holds_run(conn: sqlite3.Connection) -> bool:
    """Whether the database has a run table with the run in it."""
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'"
    ).fetchone()
    return table is not None and conn.execute("SELECT 1 FROM run").fetchone() is not None


def create_schema(conn: sqlite3.Connection, run: RunInfo) -> None:
    """The tables, the schema version and the run record (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?), ('tool', ?)",
        (str(SCHEMA_VERSION), "debitura-async"),
    )
    conn.execute(
        "INSERT INTO run (id, run_id, input_path, input_size, input_sha256, base_url,"
        " batch_size, settings, validated_at, created_at, attempts)"
        " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        (
            run.run_id,
            run.input.path,
            run.input.size,
            run.input.sha256,
            run.base_url,
            run.batch_size,
            orjson.dumps(dict(run.settings), option=orjson.OPT_SORT_KEYS).decode(),
            _iso(run.validated_at),
            _iso(run.created_at),
        ),
    )


def read_run(conn: sqlite3.Connection) -> tuple[Sequence[Any] | None, str | None]:
    """The run row (its columns in :class:`RunInfo` order) and the schema version, as stored."""
    row = conn.execute(
        "SELECT run_id, input_path, input_size, input_sha256, base_url, batch_size,"
        " settings, validated_at, created_at, attempts, completed_at FROM run WHERE id = 1"
    ).fetchone()
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row, None if version is None else str(version[0])


def run_from_row(row: Sequence[Any]) -> RunInfo | None:
    """The :class:`RunInfo` of a run row (None: its timestamps are damaged)."""
    validated_at = _parse_iso(row[7])
    created_at = _parse_iso(row[8])
    if validated_at is None or created_at is None:
        return None
    return RunInfo(
        run_id=row[0],
        input=InputIdentity(path=row[1], size=int(row[2]), sha256=row[3]),
        base_url=row[4],
        batch_size=int(row[5]),
        settings=orjson.loads(row[6]),
        validated_at=validated_at,
        created_at=created_at,
        attempts=int(row[9]),
        completed_at=_parse_iso(row[10]),
    )


def submit_batch(
    conn: sqlite3.Connection,
    batch: Batch,
    idempotency_key: str,
    lines: tuple[int, int] | None,
    now: str | None,
) -> None:
    """Insert a batch as ``submitting`` (a known one only gets its time updated)."""
    first_line, last_line = lines if lines is not None else (None, None)
    conn.execute(
        "INSERT INTO batches (idempotency_key, batch_index, first_position,"
        " last_position, first_line, last_line, row_count, state, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'submitting', ?)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET updated_at = excluded.updated_at",
        (
            idempotency_key,
            batch.index,
            batch.first_position,
            batch.last_position,
            first_line,
            last_line,
            len(batch),
            now,
        ),
    )


def keep_rejections(
    conn: sqlite3.Connection, key: str, result: JobResult, lines: tuple[int, int] | None
) -> None:
    """Record the rows the server refused out of a larger batch, beside the batch."""
    conn.executemany(
        "INSERT INTO rejections (idempotency_key, position, line, reasons)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET reasons = excluded.reasons",
        [
            (
                key,
                r.position,
                None if lines is None else lines[0],
                orjson.dumps(list(r.problems)).decode(),
            )
            for r in result.rejected_rows
        ],
    )


def finish_batch(
    conn: sqlite3.Connection,
    key: str,
    result: JobResult,
    lines: tuple[int, int] | None,
    now: str | None,
) -> None:
    """Insert or update a batch as ``finished`` with its result (known line numbers kept)."""
    first_line, last_line = lines if lines is not None else (None, None)
    conn.execute(
        "INSERT INTO batches (idempotency_key, batch_index, first_position,"
        " last_position, first_line, last_line, row_count, state, job_id, outcome,"
        " rows_succeeded, rows_failed, result, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET state = 'finished',"
        " job_id = excluded.job_id, outcome = excluded.outcome,"
        " rows_succeeded = excluded.rows_succeeded, rows_failed = excluded.rows_failed,"
        " result = excluded.result, updated_at = excluded.updated_at,"
        " first_line = coalesce(batches.first_line, excluded.first_line),"
        " last_line = coalesce(batches.last_line, excluded.last_line)",
        (
            key,
            result.batch_index if result.batch_index is not None else -1,
            result.first_position,
            result.last_position,
            first_line,
            last_line,
            result.row_count,
            None if result.job_id is None else str(result.job_id),
            result.outcome.value,
            result.rows_succeeded,
            result.rows_failed,
            result_to_json(result).decode(),
            now,
        ),
    )


def batch_records(conn: sqlite3.Connection) -> list[BatchRecord]:
    """Every batch, in input order."""
    rows = conn.execute(
        "SELECT idempotency_key, batch_index, first_position, last_position, first_line,"
        " last_line, row_count, state, job_id, outcome, rows_succeeded, rows_failed"
        " FROM batches ORDER BY first_position, batch_index"
    ).fetchall()
    return [
        BatchRecord(
            idempotency_key=r[0],
            batch_index=r[1],
            first_position=r[2],
            last_position=r[3],
            first_line=r[4],
            last_line=r[5],
            row_count=r[6],
            state=r[7],
            job_id=None if r[8] is None else uuid.UUID(r[8]),
            outcome=None if r[9] is None else JobOutcome(r[9]),
            rows_succeeded=r[10],
            rows_failed=r[11],
        )
        for r in rows
    ]
