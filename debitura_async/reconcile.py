"""Reconcile a journal's unresolved batches: what became of their rows?

A run cut by a deadline, or whose job vanished (404: the server forgot it), leaves batches whose
rows may or may not be stored. :func:`reconcile` re-polls each such job by its id; a Completed
job stored every row, a Failed one none; for the rest (vanished, never accepted, completed with
errors) it reads the cases' timelines (``GET /cases/{id}/timeline``) and looks for each row's
note by description and event date (timeline dates have millisecond precision)::

    async with DebituraClient() as client:
        report = await reconcile(client, "export.csv.journal.sqlite")
    for row in report.rows:
        print(row.line, row.verdict, row.reason)

The journal is only read. The input file is read again (the journal's path and settings) to
know each row's case, description and event date.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import attrs

from ._input import InputFormat, open_reader
from ._input_options import InputOptions
from ._journal_records import BatchRecord
from ._journal_refs import _get as _cached_references
from .client import DebituraClient
from .errors import APIStatusError, NotFoundError, TransportError
from .journal import JournalStore
from .models import AsyncJobStatus, InvalidRow, JobOutcome, UnresolvedCaseRow

__all__ = ["ReconcileReport", "RowVerdict", "Verdict", "reconcile"]

Verdict = Literal["stored", "not stored", "unknown"]


@attrs.frozen(kw_only=True)
class RowVerdict:
    """One row of an unresolved batch, and what became of it."""

    line: int | None
    position: int
    batch_index: int
    job_id: uuid.UUID | None
    case_id: str | None
    external_ref: str | None
    verdict: Verdict
    reason: str


@attrs.frozen(kw_only=True)
class ReconcileReport:
    batches: int
    """Unresolved batches looked at."""
    rows: tuple[RowVerdict, ...]

    def counts(self) -> dict[str, int]:
        tally = Counter(r.verdict for r in self.rows)
        return {v: tally.get(v, 0) for v in ("stored", "not stored", "unknown")}


def _unresolved(batches: Iterable[BatchRecord]) -> list[BatchRecord]:
    return [
        b for b in batches if b.state != "finished" or b.outcome in (None, JobOutcome.UNRESOLVED)
    ]


def _ms(value: datetime) -> datetime:
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _event_date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _ms(value)
    if isinstance(value, str):
        try:
            return _ms(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _read_rows(store: JournalStore, wanted: set[int]) -> dict[int, tuple[int | None, Any]]:
    """The input's items at ``wanted`` positions (and their lines), references resolved from
    the journal's ``case_references`` table."""
    run = store.run
    settings = run.settings
    fmt: InputFormat = "jsonl" if settings.get("format") == "jsonl" else "csv"
    recorded = dict(settings.get("input") or {})
    options = InputOptions(
        delimiter=recorded.get("delimiter"),
        encoding=recorded.get("encoding"),
        assume_timezone=recorded.get("assumeTimezone"),
        dst=recorded.get("dst") or "rfc5545",
    )
    mapping = {str(k): str(v) for k, v in dict(settings.get("map") or {}).items()}
    found: dict[int, tuple[int | None, Any]] = {}
    last = max(wanted, default=-1)
    with open_reader(Path(run.input.path), fmt, mapping, options) as reader:
        for position, item in enumerate(reader):
            if position in wanted:
                found[position] = (reader.lines.first_line(position), item)
            if position >= last:
                break
    references = {i.reference for _, i in found.values() if isinstance(i, UnresolvedCaseRow)}
    known = _cached_references(store._conn, sorted(references)) if references else {}
    for position, (line, item) in list(found.items()):
        if isinstance(item, UnresolvedCaseRow):
            case = known.get(item.reference)
            found[position] = (line, None if case is None else item.with_case_id(str(case)))
    return found


class _Timelines:
    """Each case's notes as (description, date) pairs, fetched once; None: could not be read."""

    def __init__(self, client: DebituraClient) -> None:
        self._client = client
        self._seen: dict[str, set[tuple[str | None, datetime | None]] | str] = {}

    async def notes(self, case_id: str) -> set[tuple[str | None, datetime | None]] | str:
        if case_id not in self._seen:
            try:
                timeline = await self._client.get_case_timeline(case_id)
            except NotFoundError:
                self._seen[case_id] = "the case's timeline is not found (not your case?)"
            except (APIStatusError, TransportError) as exc:
                self._seen[case_id] = f"the case's timeline could not be read: {exc}"
            else:
                self._seen[case_id] = {
                    (i.description, None if i.date is None else _ms(i.date)) for i in timeline.items
                }
        return self._seen[case_id]


async def _job_says(client: DebituraClient, batch: BatchRecord) -> tuple[Verdict | None, str]:
    """What re-polling the batch's job tells for all its rows (None: look at the timelines)."""
    if batch.job_id is None:
        return None, "never accepted (no job id)"
    try:
        status = await client.get_ingestion_job(batch.job_id)
    except NotFoundError:
        return None, f"job {batch.job_id} vanished (404)"
    except (APIStatusError, TransportError) as exc:
        return None, f"job {batch.job_id} could not be polled: {exc}"
    if status.status is AsyncJobStatus.COMPLETED:
        return "stored", f"job {batch.job_id} Completed"
    if status.status is AsyncJobStatus.FAILED:
        return "not stored", f"job {batch.job_id} Failed"
    if not status.is_terminal:
        return "unknown", f"job {batch.job_id} is still {status.status.name}"
    return None, f"job {batch.job_id} {status.status.name}"


async def _verdict(
    timelines: _Timelines, item: Any, job_reason: str
) -> tuple[Verdict, str, str | None]:
    if item is None or isinstance(item, InvalidRow) or not isinstance(item, Mapping):
        return "unknown", f"{job_reason}; the row cannot be read again from the input", None
    case_id = str(item.get("caseId"))
    notes = await timelines.notes(case_id)
    if isinstance(notes, str):
        return "unknown", f"{job_reason}; {notes}", case_id
    key = (item.get("description"), _event_date(item.get("eventDate")))
    if key in notes:
        return "stored", f"{job_reason}; the note is on the case's timeline", case_id
    return "not stored", f"{job_reason}; no such note on the case's timeline", case_id


async def reconcile(client: DebituraClient, journal: str | Path | JournalStore) -> ReconcileReport:
    """Classify every row of the journal's unresolved batches as stored / not stored / unknown."""
    store = journal if isinstance(journal, JournalStore) else None
    if store is None:
        store = await anyio.to_thread.run_sync(JournalStore.open, Path(str(journal)))
    try:
        batches = _unresolved(await anyio.to_thread.run_sync(store.batches))
        wanted = {p for b in batches for p in range(b.first_position, b.last_position + 1)}
        opened = store
        items = await anyio.to_thread.run_sync(lambda: _read_rows(opened, wanted))
    finally:
        if not isinstance(journal, JournalStore):
            await anyio.to_thread.run_sync(store.close)
    timelines = _Timelines(client)
    verdicts: list[RowVerdict] = []
    for batch in batches:
        said, reason = await _job_says(client, batch)
        for position in range(batch.first_position, batch.last_position + 1):
            line, item = items.get(position, (None, None))
            if isinstance(item, InvalidRow):
                continue  # rejected before sending: not part of the batch
            case_id = str(item.get("caseId")) if isinstance(item, Mapping) else None
            if said is None:
                verdict, why, case_id = await _verdict(timelines, item, reason)
            else:
                verdict, why = said, reason
            ref = item.get("externalRef") if isinstance(item, Mapping) else None
            verdicts.append(
                RowVerdict(
                    line=line,
                    position=position,
                    batch_index=batch.batch_index,
                    job_id=batch.job_id,
                    case_id=case_id,
                    external_ref=None if ref is None else str(ref),
                    verdict=verdict,
                    reason=why,
                )
            )
    return ReconcileReport(batches=len(batches), rows=tuple(verdicts))
