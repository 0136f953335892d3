"""The emulator's note store: an index entry per note, the :class:`Note` built only on demand.

A stored note is an int (ints are not tracked by the cyclic GC, tuples are):
``number << 10 | row`` for an ingestion row of job ``jobs[number]`` (rows < 1024), or
``-1 - i`` for ``direct[i]`` (``POST /cases/{id}/notes``). Used by :mod:`.core`.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime
from typing import Final

from ._jobs import Job
from ._values import MAX_DESCRIPTION_LENGTH, ApiProblem, Note, parse_datetime

__all__ = ["NoteIndex", "check_note_body"]

_NOTE_FIELDS: Final = frozenset({"description", "eventDate"})

_NoteEntry = int
_ROW_BITS: Final = 10
_MASK128: Final = (1 << 128) - 1
# Odd 128-bit constant: note ids derived from (job id, row index) look unrelated.
_SPREAD: Final = 0x9E3779B97F4A7C15F39CC0605CEDC835


class NoteIndex:
    """Every stored note in order, and by case key and by ``externalRef``."""

    __slots__ = ("by_case", "by_ref", "direct", "everything", "jobs", "time_scale")

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.everything: list[_NoteEntry] = []
        self.jobs: list[Job] = []
        self.direct: list[Note] = []
        self.by_case: dict[str, list[_NoteEntry]] = {}
        self.by_ref: dict[str, list[_NoteEntry]] = {}

    def clear(self) -> None:
        self.everything.clear()
        self.jobs.clear()
        self.direct.clear()
        self.by_case.clear()
        self.by_ref.clear()

    def add_rows(self, job: Job, start: int, upto: int) -> None:
        """Index the rows ``start..upto`` of ``job`` that did not fail (it has row data)."""
        rows, keys, failed = job.rows, job.case_keys, job.failed_rows
        if rows is None or keys is None:
            return
        # Hot loop: an index entry per note; the Note itself is built only when someone looks.
        failed_set = set(failed[bisect.bisect_left(failed, start) :]) if failed else ()
        if job.note_number < 0:
            job.note_number = len(self.jobs)
            self.jobs.append(job)
        prefix = job.note_number << _ROW_BITS
        everything = self.everything
        by_case = self.by_case
        by_ref = self.by_ref
        for index in range(start, upto):
            if index in failed_set:
                continue
            entry = prefix | index
            everything.append(entry)
            key = keys[index]
            same_case = by_case.get(key)
            if same_case is None:
                by_case[key] = [entry]
            else:
                same_case.append(entry)
            ref = rows[index].get("externalRef")
            if ref is not None:
                same_ref = by_ref.get(ref)
                if same_ref is None:
                    by_ref[ref] = [entry]
                else:
                    same_ref.append(entry)

    def add(self, note: Note) -> None:
        """Store a note made by ``POST /cases/{id}/notes``."""
        entry = -1 - len(self.direct)
        self.direct.append(note)
        self.everything.append(entry)
        self.by_case.setdefault(note.case_id, []).append(entry)
        if note.external_ref is not None:
            self.by_ref.setdefault(note.external_ref, []).append(entry)

    def note_of(self, entry: _NoteEntry) -> Note:
        if entry < 0:
            return self.direct[-1 - entry]
        job = self.jobs[entry >> _ROW_BITS]
        index = entry & ((1 << _ROW_BITS) - 1)
        rows, keys, dates = job.rows, job.case_keys, job.event_dates
        if rows is None or keys is None or dates is None:  # pragma: no cover - indexed with rows
            raise RuntimeError("ingestion note without row data")
        row = rows[index]
        processed_at = job.row_utc(index, self.time_scale)
        return Note(
            id=uuid.UUID(int=(job.id.int ^ ((index + 1) * _SPREAD)) & _MASK128, version=4),
            case_id=keys[index],
            partner_id=job.partner.id,
            description=row["description"],
            event_date=dates[index] or processed_at,
            created_at=processed_at,
            external_ref=row.get("externalRef"),
            job_id=job.id,
        )

    def select(self, *, case_id: uuid.UUID | str | None, external_ref: str | None) -> list[Note]:
        """Stored notes, oldest first: of a case, with an ``externalRef``, both, or all."""
        selected: list[_NoteEntry]
        if case_id is not None:
            selected = self.by_case.get(str(case_id).lower(), [])
            if external_ref is not None:
                notes = [self.note_of(e) for e in selected]
                return [n for n in notes if n.external_ref == external_ref]
        elif external_ref is not None:
            selected = self.by_ref.get(external_ref, [])
        else:
            selected = self.everything
        return [self.note_of(e) for e in selected]


def check_note_body(document: object, utcnow: datetime) -> tuple[str, datetime | None] | ApiProblem:
    """The rules of a ``POST /cases/{id}/notes`` body: its description and eventDate, or a 400."""
    if type(document) is not dict:
        return ApiProblem.validation(["body: must be a JSON object"])
    problems = [f"{name}: unknown field" for name in document if name not in _NOTE_FIELDS]
    text = document.get("description")
    if type(text) is not str:
        problems.append(
            "description: required" if text is None else "description: must be a string"
        )
    elif len(text) > MAX_DESCRIPTION_LENGTH:
        limit = MAX_DESCRIPTION_LENGTH
        problems.append(f"description: must be at most {limit} characters (got {len(text)})")
    elif not text or text.isspace():
        problems.append("description: must not be empty")
    when = document.get("eventDate")
    moment: datetime | None = None
    if when is not None:
        if type(when) is not str:
            problems.append("eventDate: must be an ISO 8601 date-time string or null")
        else:
            moment = parse_datetime(when)
            if moment is None:
                problems.append("eventDate: not a valid ISO 8601 date-time")
            elif moment > utcnow:
                problems.append("eventDate: must not be in the future")
    if problems or type(text) is not str:
        return ApiProblem.validation(problems)
    return text, moment
