"""The journal's ``case_references`` table: a :class:`~debitura_async.references.ReferenceCache`
kept in the run's SQLite journal, so that a resumed run does not resolve its references again.

The table is created on first use (journals written before it existed gain it then). A
reference known to be no case of the partner is kept too (``case_id`` NULL).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping

from .journal import SqliteJournal

__all__ = ["JournalReferenceCache"]

_TABLE = """
CREATE TABLE IF NOT EXISTS case_references (
    reference TEXT PRIMARY KEY,
    case_id TEXT
)
"""
_CHUNK = 500


def _get(conn: sqlite3.Connection, references: list[str]) -> dict[str, uuid.UUID | None]:
    conn.execute(_TABLE)
    found: dict[str, uuid.UUID | None] = {}
    for start in range(0, len(references), _CHUNK):
        chunk = references[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT reference, case_id FROM case_references WHERE reference IN ({marks})",  # noqa: S608 - placeholders only
            chunk,
        ).fetchall()
        for reference, case_id in rows:
            found[str(reference)] = None if case_id is None else uuid.UUID(str(case_id))
    return found


def _put(conn: sqlite3.Connection, resolved: list[tuple[str, str | None]]) -> None:
    conn.execute(_TABLE)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT OR REPLACE INTO case_references (reference, case_id) VALUES (?, ?)", resolved
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _count(conn: sqlite3.Connection) -> int:
    conn.execute(_TABLE)
    (count,) = conn.execute("SELECT COUNT(*) FROM case_references").fetchone()
    return int(count)


class JournalReferenceCache:
    """Resolved references in the journal (committed before the rows using them are sent)."""

    def __init__(self, journal: SqliteJournal) -> None:
        self._journal = journal
        self.hits = 0
        """References answered from the journal (not asked of the API)."""
        self.lookups = 0
        """References asked of the API and recorded."""

    async def get_many(self, references: Iterable[str]) -> dict[str, uuid.UUID | None]:
        wanted = sorted(set(references))
        if not wanted:
            return {}
        found: dict[str, uuid.UUID | None] = await self._journal.run_sync(
            lambda conn: _get(conn, wanted)
        )
        self.hits += len(found)
        return found

    async def put_many(self, resolved: Mapping[str, uuid.UUID | None]) -> None:
        rows = [(r, None if c is None else str(c)) for r, c in resolved.items()]
        if rows:
            await self._journal.run_sync(lambda conn: _put(conn, rows))
        self.lookups += len(rows)

    async def count(self) -> int:
        """References recorded in the journal."""
        n: int = await self._journal.run_sync(_count)
        return n
