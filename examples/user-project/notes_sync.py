"""'Their' code: push the notes of a CRM export into Debitura and say what became of each."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from debitura_async import DebituraClient, IngestionJobRow, JobOutcome


@attrs.frozen
class SyncReport:
    stored: tuple[str, ...]
    """CRM note ids now stored in Debitura."""
    failed: tuple[str, ...]
    """CRM note ids Debitura refused (unknown case, a case of another partner, ...)."""
    invalid: tuple[str, ...]
    """CRM note ids never sent: the record itself was wrong."""
    unresolved: tuple[str, ...]
    """CRM note ids whose fate is unknown: sync them again later (no duplicates)."""


def to_row(record: Mapping[str, Any]) -> IngestionJobRow:
    return IngestionJobRow(
        uuid.UUID(str(record["debitura_case"])),
        str(record["text"]).strip(),
        external_ref=str(record["id"]),
    )


async def sync_notes(
    client: DebituraClient, records: Iterable[Mapping[str, Any]], *, batch_size: int = 100
) -> SyncReport:
    stored: list[str] = []
    failed: list[str] = []
    invalid: list[str] = []
    unresolved: list[str] = []
    rows = []
    for record in records:
        try:
            rows.append(to_row(record))
        except (KeyError, ValueError):
            invalid.append(str(record.get("id")))
    async with client.ingest(rows, batch_size=batch_size) as results:
        async for result in results:
            refs = [str(key) for key in result.row_keys]
            if result.outcome is JobOutcome.COMPLETED:
                stored += refs
            elif result.outcome is JobOutcome.UNRESOLVED:
                unresolved += refs
            elif result.outcome is JobOutcome.REJECTED:
                invalid += refs
            else:  # completed with errors or failed: ask Debitura which rows made it
                stored_now, failed_now = await _split_by_server(client, result.job_id, refs)
                stored += stored_now
                failed += failed_now
    return SyncReport(tuple(stored), tuple(failed), tuple(invalid), tuple(unresolved))


async def _split_by_server(
    client: DebituraClient, job_id: uuid.UUID | None, refs: list[str]
) -> tuple[list[str], list[str]]:
    # The API reports counts per job, not which row failed; this sample treats a job with
    # failures as failed as a whole and leaves the finer reconciliation to the CRM.
    return [], refs


async def log_call(client: DebituraClient, case_id: uuid.UUID, summary: str) -> uuid.UUID:
    """Record a phone call on a case at once (the synchronous notes endpoint)."""
    note = await client.add_case_note(case_id, f"Call: {summary}")
    if note.id is None:
        raise RuntimeError("Debitura answered a note without an id")
    return note.id
