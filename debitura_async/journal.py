"""The durable record of a migration (SQLite), so a crashed run resumes without duplicates.

A journal file holds one run: the input's identity (path, size, SHA-256), the settings that shape
its batches (format, column mapping, batch size), the base URL, the run id, ``validated_at``, and
for every batch its line range, Idempotency-Key, job id, state and counts, plus the serialized
:class:`~debitura_async.models.JobResult` once it is finished. It never holds the API key.

Each step is committed (WAL mode, ``synchronous=FULL``) before the pipeline goes on, so after a
``kill -9`` at any point the journal says, per batch, one of::

    (absent)     never formed, or formed and not yet sent   -> send it
    submitting   the POST may or may not have reached the server -> send it again with the SAME
                 Idempotency-Key (the server replays the job it created, if it did)
    accepted     the job exists (job id known)                -> poll it, do not send it
    finished     terminal result recorded                     -> replay the result, no request

Two layers: :class:`JournalStore` is synchronous (usable and testable without an event loop);
:class:`SqliteJournal` implements the pipeline's :class:`~debitura_async.ingest.IngestJournal`
protocol by running every store call on one worker thread (``anyio.to_thread`` behind a
``CapacityLimiter(1)``), so the event loop never waits on the disk.

The file is opened in SQLite's exclusive locking mode: a second process cannot use a journal
that a live run holds.

Durability: every commit is synced (``synchronous=FULL``), and the run record is checkpointed
into the main file the moment it is created, before anything can be sent: the main file alone
always knows that the run exists, even without its ``-wal`` (a copy, a backup, a move that left
it behind). Batch states that lived only in a lost ``-wal`` are not lost either: a resume re-sends
those batches with the same Idempotency-Keys and the server replays their jobs (within its 24 h
window). Copy a journal only when no run holds it (a live run may be checkpointing into it), or
with ``sqlite3 JOURNAL ".backup COPY"``. The file is created 0600 (owner only); SQLite gives its
``-wal`` the same mode.

Tests can make the process die at a chosen commit with :func:`set_commit_hooks` (callbacks,
process-wide, like ``stamina.set_testing``); production code never sets them.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import attrs
import orjson

from ._batching import Batch
from ._journal_api import JournalEntry
from ._journal_records import (
    BatchRecord,
    CommitHooks,
    InputIdentity,
    RecordedError,
    RunInfo,
    Step,
    _CommitCounter,
    _create_private,
    _fsync_dir,
    _iso,
    _utcnow,
    result_from_json,
    result_to_json,
    set_commit_hooks,
)
from ._journal_sql import (
    SCHEMA_VERSION,
    Transaction,
    batch_records,
    create_schema,
    finish_batch,
    holds_run,
    keep_rejections,
    read_run,
    run_from_row,
    submit_batch,
)
from .errors import DebituraError
from .models import JobOutcome, JobResult

__all__ = [
    "BatchRecord",
    "CommitHooks",
    "InputIdentity",
    "JournalError",
    "JournalExistsError",
    "JournalMismatchError",
    "JournalStore",
    "RecordedError",
    "RunInfo",
    "SqliteJournal",
    "result_from_json",
    "result_to_json",
    "set_commit_hooks",
]

LineSpan = Callable[[int, int], tuple[int, int]]


class JournalError(DebituraError):
    """A journal cannot be used as asked."""


class JournalExistsError(JournalError):
    """A new run was asked for on a journal that already holds one."""


class JournalMismatchError(JournalError):
    """``--resume`` against another input, base URL or batch settings than the journal's."""


# -- the synchronous store ------------------------------------------------------------------------


class JournalStore:
    """A journal file, synchronously. Every mutating method has committed when it returns.

    Use :meth:`create` for a new run and :meth:`open` to resume one. Not thread-safe: use it from
    one thread at a time (:class:`SqliteJournal` does).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, run: RunInfo) -> None:
        self.path = path
        self._conn = conn
        self.run = run
        self._crash = _CommitCounter()

    # -- opening -------------------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.5)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN EXCLUSIVE")  # take the file lock now; a live run holds it
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise JournalError(
                    f"journal {str(path)!r} is in use by another process (is a run still going?)"
                ) from None
            raise JournalError(f"journal {str(path)!r}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        if mode is None or str(mode[0]).lower() != "wal":  # pragma: no cover - odd filesystems
            conn.close()
            raise JournalError(f"{path}: SQLite cannot use WAL mode here")
        return conn

    @classmethod
    def create(cls, path: str | Path, run: RunInfo) -> JournalStore:
        """Start a journal for a new run; refuses a file that already holds a run.

        When it returns, the run record is in the main file (checkpointed and synced), not only
        in the ``-wal``."""
        p = Path(path)
        try:
            _create_private(p)
        except OSError as exc:
            raise JournalError(f"cannot create journal {str(p)!r}: {exc.strerror}") from None
        try:
            conn = cls._connect(p)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot create journal {str(p)!r}: {exc}") from None
        try:
            held = holds_run(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"cannot create journal {str(p)!r}: {exc}") from None
        if held:
            conn.close()
            raise JournalExistsError(f"journal {str(p)!r} already holds a run")
        store = cls(p, conn, run)
        try:
            with store._transaction("create"):
                create_schema(conn, run)
            store.checkpoint()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"cannot create journal {str(p)!r}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        _fsync_dir(p)
        return store

    def checkpoint(self) -> None:
        """Copy the ``-wal`` into the main file and sync it (``wal_checkpoint(FULL)``)."""
        busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        if busy:  # pragma: no cover - the file is held exclusively: nobody else can read it
            raise JournalError(f"journal {str(self.path)!r}: the checkpoint could not finish")

    @classmethod
    def holds_run(cls, path: str | Path) -> bool:
        """True when ``path`` is a journal with a run in it (False: missing, or created by a run
        that was killed before its first commit, so nothing was sent under it)."""
        p = Path(path)
        if not p.exists() or p.stat().st_size == 0:
            return False
        try:
            conn = cls._connect(p)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{str(p)!r} is not a debitura-async journal ({exc})") from None
        try:
            return holds_run(conn)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{str(p)!r} is not a debitura-async journal ({exc})") from None
        finally:
            conn.close()

    @classmethod
    def open(cls, path: str | Path) -> JournalStore:
        """Open an existing journal (to resume it or to read it)."""
        p = Path(path)
        if not p.is_file():
            raise JournalError(f"no journal at {str(p)!r}")
        try:
            conn = cls._connect(p)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{str(p)!r} is not a debitura-async journal ({exc})") from None
        try:
            row, version = read_run(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{str(p)!r} is not a debitura-async journal ({exc})") from None
        if row is None or version is None:
            conn.close()
            raise JournalError(f"{str(p)!r} holds no run (an interrupted start?); delete it")
        if int(version) != SCHEMA_VERSION:
            conn.close()
            raise JournalError(
                f"{str(p)!r} was written by another version (schema {version}, this is"
                f" {SCHEMA_VERSION})"
            )
        run = run_from_row(row)
        if run is None:  # pragma: no cover - NOT NULL columns
            conn.close()
            raise JournalError(f"{str(p)!r}: the run record is damaged")
        return cls(p, conn, run)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------

    def _transaction(self, step: Step) -> Transaction:
        return Transaction(self._conn, self._crash, step)

    # -- resuming ------------------------------------------------------------------------------

    def check_resume(
        self,
        *,
        identity: InputIdentity,
        base_url: str,
    ) -> list[str]:
        """Refuse (:class:`JournalMismatchError`) another input or base URL; return notes."""
        recorded = self.run.input
        if (identity.size, identity.sha256) != (recorded.size, recorded.sha256):
            raise JournalMismatchError(
                f"journal {str(self.path)!r} belongs to another input: it recorded"
                f" {recorded.path} ({recorded.size:,} bytes, sha256 {recorded.sha256[:12]}…),"
                f" this is {identity.path} ({identity.size:,} bytes,"
                f" sha256 {identity.sha256[:12]}…)."
                " Resume with the very file the run started on, or start a new journal"
            )
        if base_url.rstrip("/") != self.run.base_url.rstrip("/"):
            raise JournalMismatchError(
                f"journal {str(self.path)!r} belongs to a run against {self.run.base_url}, not"
                f" {base_url}; resuming elsewhere would send its batches to another server"
            )
        notes = []
        if identity.path != recorded.path:
            notes.append(f"the input moved from {recorded.path} (same size and content)")
        return notes

    def begin_attempt(self) -> None:
        """Count one more run over this journal (a resume)."""
        with self._transaction("attempt"):
            self._conn.execute("UPDATE run SET attempts = attempts + 1 WHERE id = 1")
        self.run = attrs.evolve(self.run, attempts=self.run.attempts + 1)

    # -- the IngestJournal steps ---------------------------------------------------------------

    def lookup(self, idempotency_key: str) -> JournalEntry | None:
        row = self._conn.execute(
            "SELECT state, job_id, result FROM batches WHERE idempotency_key = ?",
            (idempotency_key,),
        ).fetchone()
        if row is None:
            return None
        state, job_id, result = row
        return JournalEntry(
            state=state,
            job_id=None if job_id is None else uuid.UUID(job_id),
            result=None if result is None else result_from_json(result),
        )

    def batch_submitting(
        self,
        batch: Batch,
        idempotency_key: str,
        *,
        lines: tuple[int, int] | None = None,
    ) -> None:
        """The batch is about to be POSTed with this key (never downgrades a later state)."""
        with self._transaction("submitting"):
            submit_batch(self._conn, batch, idempotency_key, lines, _iso(_utcnow()))

    def batch_accepted(self, idempotency_key: str, job_id: uuid.UUID) -> None:
        """The server answered 202 with this job id."""
        with self._transaction("accepted"):
            self._conn.execute(
                "UPDATE batches SET state = 'accepted', job_id = ?, updated_at = ?"
                " WHERE idempotency_key = ? AND state != 'finished'",
                (str(job_id), _iso(_utcnow()), idempotency_key),
            )

    def batch_finished(self, result: JobResult, *, lines: tuple[int, int] | None = None) -> None:
        """A terminal result. Rows the server refused out of a larger batch are kept aside: the
        batch itself is finished only by a result covering all of its rows."""
        key = result.idempotency_key
        if key is None:
            return  # rows refused on the client: re-derived from the input on every run
        now = _iso(_utcnow())
        row = self._conn.execute(
            "SELECT row_count FROM batches WHERE idempotency_key = ?", (key,)
        ).fetchone()
        partial = (
            result.outcome is JobOutcome.REJECTED
            and row is not None
            and result.row_count < int(row[0])
        )
        if partial:
            with self._transaction("rejected"):
                keep_rejections(self._conn, key, result, lines)
            return
        with self._transaction("finished"):
            finish_batch(self._conn, key, result, lines, now)

    def mark_complete(self, summary: Mapping[str, Any]) -> None:
        """Every row of the input has a terminal outcome."""
        now = _utcnow()
        with self._transaction("complete"):
            self._conn.execute(
                "UPDATE run SET completed_at = ?, summary = ? WHERE id = 1",
                (_iso(now), orjson.dumps(dict(summary)).decode()),
            )
        self.run = attrs.evolve(self.run, completed_at=now)

    # -- reading -------------------------------------------------------------------------------

    def batches(self) -> list[BatchRecord]:
        return batch_records(self._conn)

    def state_counts(self) -> dict[str, tuple[int, int]]:
        """``{state: (batches, rows)}``."""
        rows = self._conn.execute(
            "SELECT state, count(*), coalesce(sum(row_count), 0) FROM batches GROUP BY state"
        ).fetchall()
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


# -- the async adapter ----------------------------------------------------------------------------


class SqliteJournal:
    """:class:`~debitura_async.ingest.IngestJournal` over a :class:`JournalStore`.

    Every call runs on a worker thread, one at a time, and returns once committed. ``lines`` maps
    a position range to its line range, so the journal records line numbers too.
    """

    def __init__(self, store: JournalStore, *, lines: LineSpan | None = None) -> None:
        self.store = store
        self._lines = lines
        self._limiter = anyio.CapacityLimiter(1)

    def _span(self, first: int, last: int) -> tuple[int, int] | None:
        if self._lines is None:
            return None
        try:
            return self._lines(first, last)
        except (IndexError, KeyError):
            return None

    async def _run(self, func: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(func, limiter=self._limiter)

    async def run_sync(self, func: Callable[[sqlite3.Connection], Any]) -> Any:
        """``func(connection)`` on the journal's worker thread, one call at a time (for the
        tables kept beside the batches, e.g. :mod:`debitura_async._journal_refs`)."""
        conn = self.store._conn
        return await self._run(lambda: func(conn))

    async def lookup(self, idempotency_key: str) -> JournalEntry | None:
        entry: JournalEntry | None = await self._run(lambda: self.store.lookup(idempotency_key))
        return entry

    async def batch_submitting(self, batch: Batch, idempotency_key: str) -> None:
        lines = self._span(batch.first_position, batch.last_position)
        await self._run(lambda: self.store.batch_submitting(batch, idempotency_key, lines=lines))

    async def batch_accepted(self, idempotency_key: str, job_id: uuid.UUID) -> None:
        await self._run(lambda: self.store.batch_accepted(idempotency_key, job_id))

    async def batch_finished(self, result: JobResult) -> None:
        lines = self._span(result.first_position, result.last_position)
        await self._run(lambda: self.store.batch_finished(result, lines=lines))

    async def mark_complete(self, summary: Mapping[str, Any]) -> None:
        await self._run(lambda: self.store.mark_complete(summary))

    async def aclose(self) -> None:
        await self._run(self.store.close)
