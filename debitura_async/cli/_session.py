"""The journal side of ``ingest``, the thin shell around ``_plan``'s decisions: look at the
files, refuse collisions, open or create the journal."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import anyio

from ..journal import (
    InputIdentity,
    JournalError,
    JournalExistsError,
    JournalStore,
    RunInfo,
)
from ._common import CLIError
from ._plan import colliding_files, journal_files, report_files, resume_decision

__all__ = ["check_collisions", "create_journal", "decide_resume", "open_journal"]


def _identity(path: Path) -> object:
    """An existing file by device and inode (hard links and symlinks are the same file); a
    file still to be created by its resolved path."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    return ("path", str(path.resolve()))


def check_collisions(
    *, input_path: Path, journal: Path | None, report: Path | None, extra: Sequence[Path] = ()
) -> None:
    """Refuse (exit 2, before anything is written or sent) a report, journal and input that
    are the same file, or a report that is one of the journal's ``-wal``/``-shm`` files."""
    groups: list[tuple[str, list[object]]] = [
        ("the input", [_identity(input_path), *(_identity(p) for p in extra)])
    ]
    if journal is not None:
        groups.append(("the journal", [_identity(p) for p in journal_files(journal)]))
    if report is not None:
        groups.append(("the report", [_identity(p) for p in report_files(report)]))
    clashes = colliding_files(groups)
    if clashes:
        first, second = clashes[0]
        flags = {"the input": "PATH", "the journal": "--journal", "the report": "--report"}
        raise CLIError(
            f"{flags[second]} would overwrite {first} ({flags[first]}): {second} and {first}"
            " must be different files (and the report none of the journal's -wal/-shm files);"
            " nothing was written or sent"
        )


def _look(journal: Path) -> tuple[bool, bool, bool]:
    """(exists, empty, holds a run)."""
    exists = journal.exists()
    empty = exists and journal.is_file() and journal.stat().st_size == 0
    return exists, empty, JournalStore.holds_run(journal)


async def decide_resume(journal: Path, *, resume: bool) -> bool:
    """Whether to resume the journal's run (True) or start one (False); refuses the rest."""
    try:
        exists, empty, held = await anyio.to_thread.run_sync(_look, journal)
    except JournalError as exc:
        raise CLIError(str(exc)) from None
    return resume_decision(
        resume=resume, journal=journal, exists=exists, empty=empty, holds_run=held
    )


async def open_journal(
    journal: Path, *, identity: InputIdentity, base_url: str
) -> tuple[JournalStore, list[str]]:
    """Open a journal to resume it: refuses another input or base URL; returns notes."""
    try:
        store = await anyio.to_thread.run_sync(JournalStore.open, journal)
    except JournalError as exc:
        raise CLIError(str(exc)) from None
    try:
        notes = store.check_resume(identity=identity, base_url=base_url)
    except JournalError as exc:
        store.close()
        raise CLIError(str(exc)) from None
    return store, notes


async def create_journal(journal: Path, run: RunInfo) -> JournalStore:
    try:
        return await anyio.to_thread.run_sync(JournalStore.create, journal, run)
    except JournalExistsError as exc:
        raise CLIError(f"{exc}: pass --resume to continue it") from None
    except JournalError as exc:
        raise CLIError(str(exc)) from None
