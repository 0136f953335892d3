"""What the pipeline asks of a journal: the protocol and the record it gets back.

Its own module so that ``journal.py`` (an implementation) and ``ingest.py`` (the user) both
depend on it and not on each other.
"""

from __future__ import annotations

import uuid
from typing import Literal, Protocol

import attrs

from ._batching import Batch
from .models import JobResult

__all__ = ["IngestJournal", "JournalEntry"]


@attrs.frozen(kw_only=True)
class JournalEntry:
    """What a journal knows of a batch (by Idempotency-Key) from an earlier run."""

    state: Literal["submitting", "accepted", "finished"]
    job_id: uuid.UUID | None = None
    result: JobResult | None = None


class IngestJournal(Protocol):
    """Durable record of a run, so a crashed run resumes without duplicates (see ``journal.py``).

    The pipeline awaits each call before going on, so an implementation must write durably
    (and off the event loop) before returning.
    """

    async def lookup(self, idempotency_key: str) -> JournalEntry | None: ...

    async def batch_submitting(self, batch: Batch, idempotency_key: str) -> None: ...

    async def batch_accepted(self, idempotency_key: str, job_id: uuid.UUID) -> None: ...

    async def batch_finished(self, result: JobResult) -> None: ...
