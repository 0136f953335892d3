"""Frozen value types of the Debitura Collection Partner API.

The models carry Python names only; the wire format (camelCase, ISO 8601 with ``Z``) lives in the
one cattrs converter in :mod:`debitura_async._wire`. Every class is immutable and slotted.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any

import attrs

from .errors import RowProblem

__all__ = [
    "AsyncJobStatus",
    "Case",
    "CaseCreditor",
    "CaseDebtor",
    "CaseTimeline",
    "CollectionPartner",
    "IngestProgress",
    "IngestionJobAccepted",
    "IngestionJobRow",
    "IngestionJobStatus",
    "IngestionSummary",
    "InvalidRow",
    "JobOutcome",
    "JobResult",
    "Note",
    "NoteAuthor",
    "PartnerIngestEventType",
    "RejectedRow",
    "RequestStats",
    "RetryWait",
    "TimelineActor",
    "TimelineItem",
    "UnresolvedCaseRow",
]


class PartnerIngestEventType(enum.IntEnum):
    """The kind of event a row carries. Only ``NOTE`` is accepted by the API today."""

    NOTE = 0


class AsyncJobStatus(enum.IntEnum):
    """Processing state of an ingestion job (the API's ``AsyncJobStatus``)."""

    QUEUED = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    COMPLETED_WITH_ERRORS = 3
    FAILED = 4

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, COMPLETED_WITH_ERRORS and FAILED: stop polling."""
        return self >= AsyncJobStatus.COMPLETED


_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
)
_WRAPPED_UUID_RE = re.compile(
    r"(?:\{|[uU][rR][nN]:[uU][uU][iI][dD]:)"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(\}?)"
)


def parse_uuid(value: object) -> uuid.UUID | None:
    """A UUID from its text, else None. Accepted, ASCII hex digits only, nothing around them:

    * hyphenated ``123e4567-e89b-12d3-a456-426614174000`` or 32 hex digits;
    * in braces, ``{123e4567-...}`` (the .NET "B" format of Dynamics exports);
    * as a URN, ``urn:uuid:123e4567-...`` (RFC 9562).

    Stricter than :class:`uuid.UUID`, which also takes braces around 32 digits, surrounding
    whitespace and non-ASCII digits: text the server would not read as the same id. The wire
    always carries the hyphenated form (``str(uuid)``).

    >>> parse_uuid("{123E4567-E89B-12D3-A456-426614174000}")
    UUID('123e4567-e89b-12d3-a456-426614174000')
    >>> parse_uuid("{123e4567e89b12d3a456426614174000}") is None
    True
    """
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    if _UUID_RE.fullmatch(value):
        return uuid.UUID(value)
    wrapped = _WRAPPED_UUID_RE.fullmatch(value)
    if wrapped is not None and (wrapped.group(2) == "") == (value[0] != "{"):
        return uuid.UUID(wrapped.group(1))
    return None


def _to_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if not isinstance(value, uuid.UUID | str):
        raise TypeError(f"case_id: expected a UUID or its string, got {type(value).__name__}")
    parsed = parse_uuid(value)
    if parsed is None:
        raise ValueError(f"case_id: {value!r} is not a valid UUID")
    return parsed


def _to_event_type(value: PartnerIngestEventType | int) -> PartnerIngestEventType:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"type: expected an integer event type, got {type(value).__name__}")
    try:
        return PartnerIngestEventType(value)
    except ValueError:
        raise ValueError(
            f"type: unsupported event type {value} (only 0 = Note is supported)"
        ) from None


@attrs.frozen
class IngestionJobRow:
    """One event of an ingestion job: today always a case note.

    >>> row = IngestionJobRow("123e4567-e89b-12d3-a456-426614174000", "Called the debtor.")
    >>> row.case_id, row.type
    (UUID('123e4567-e89b-12d3-a456-426614174000'), <PartnerIngestEventType.NOTE: 0>)

    ``event_date`` must be timezone-aware (checked by validation before anything is sent); omit it
    to let Debitura use the processing time. ``external_ref`` is your own reference (CRM id).
    """

    case_id: uuid.UUID = attrs.field(converter=_to_uuid)
    description: str
    type: PartnerIngestEventType = attrs.field(
        default=PartnerIngestEventType.NOTE, kw_only=True, converter=_to_event_type
    )
    event_date: datetime | None = attrs.field(default=None, kw_only=True)
    external_ref: str | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IngestionJobRow:
        """Build a row from the API's camelCase mapping (``caseId``, ``eventDate`` …).

        snake_case keys are accepted too. ``eventDate`` may be an ISO 8601 string or a datetime.
        Raises :class:`debitura_async.errors.ValidationError` naming every bad field.
        """
        from ._validate import row_from_mapping  # noqa: PLC0415 - avoids an import cycle

        return row_from_mapping(data)


@attrs.frozen(kw_only=True)
class IngestionJobAccepted:
    """The 202 answer to ``POST /ingestion-jobs``."""

    job_id: uuid.UUID
    rows_queued: int


@attrs.frozen(kw_only=True)
class IngestionJobStatus:
    """The answer to ``GET /ingestion-jobs/{jobId}``."""

    status: AsyncJobStatus
    rows_total: int
    rows_succeeded: int
    rows_failed: int

    @property
    def is_terminal(self) -> bool:
        """True once the job is Completed, CompletedWithErrors or Failed."""
        return self.status.is_terminal

    @property
    def rows_processed(self) -> int:
        """Rows the server has finished with so far, successfully or not."""
        return self.rows_succeeded + self.rows_failed


@attrs.frozen(kw_only=True)
class NoteAuthor:
    """Who created a note (``NoteCreatedByDto``)."""

    user_id: int | None = None
    user_name: str | None = None


@attrs.frozen(kw_only=True)
class Note:
    """A case note as ``POST /cases/{id}/notes`` returns it (``NoteDto``)."""

    id: uuid.UUID | None = None
    case_reference: str | None = None
    title: str | None = None
    description: str | None = None
    visibility: str | None = None
    created_at: datetime | None = None
    event_date: datetime | None = None
    created_by: NoteAuthor | None = None


@attrs.frozen(kw_only=True)
class CollectionPartner:
    """The partner behind an API key, as ``GET /me`` returns it."""

    id: uuid.UUID
    company_name: str | None = None
    logo_url: str | None = None
    company_registration_number: str | None = None
    vat_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    office_email: str | None = None
    office_phone: str | None = None
    invoice_email: str | None = None
    billing_contact: str | None = None
    invoice_currency: int | None = None
    commission_type: int | None = None
    pre_legal_revenue_share: float | None = None
    legal_revenue_share: float | None = None
    verified_profile: bool | None = None
    full_address: str | None = None
    survey_cadence_mode: int | None = None


class JobOutcome(enum.Enum):
    """What became of one batch of rows in :meth:`DebituraClient.ingest`."""

    COMPLETED = "completed"
    """Every row was stored."""
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    """The job finished; ``status.rows_failed`` rows failed (unknown case, not yours, future)."""
    FAILED = "failed"
    """Job-level failure at the server: no row was processed."""
    REJECTED = "rejected"
    """Never queued: refused by client-side validation or by the server (400/413/422)."""
    UNRESOLVED = "unresolved"
    """The outcome is not known: deadline, cancellation, retries exhausted, or the job vanished.

    ``job_id`` is set when the job was accepted; the batch may be resumed with its
    ``idempotency_key`` (the CLI's ``--resume`` does this) without creating a duplicate.
    """


@attrs.frozen
class InvalidRow:
    """An input item an input adapter could not even parse (bad CSV line, broken JSON).

    Pass it through :meth:`DebituraClient.ingest` in place of the row: the pipeline reports it as
    REJECTED at its position with these reasons, and every other row goes on. ``details`` may
    carry the same reasons as :class:`~debitura_async.RowProblem` (field and message kept apart;
    the index is replaced by the row's position); without them each text is reported against
    the field ``row``.
    """

    problems: tuple[str, ...]
    details: tuple[RowProblem, ...] = ()


@attrs.frozen(kw_only=True)
class UnresolvedCaseRow:
    """An input row naming its case by the partner's own reference instead of a case id.

    The CSV/JSONL readers yield it for rows of a ``caseReference`` column (``--map
    caseReference=CRM_CASE_NO``) whose ``caseId`` is empty. The reference is resolved to a case id
    (``GET /cases/by-partner-reference``) before the row can be sent: :meth:`with_case_id` gives
    the row to send. The other fields are the raw values read (validated once resolved).

    >>> row = UnresolvedCaseRow(reference="CRM-1", description="Called.", external_ref="N1")
    >>> row.with_case_id("123e4567-e89b-12d3-a456-426614174000")["caseId"]
    '123e4567-e89b-12d3-a456-426614174000'
    """

    reference: str
    description: Any = None
    event_date: Any = None
    external_ref: Any = None
    type: Any = None

    def fields(self) -> dict[str, Any]:
        """The row's API fields other than ``caseId`` (absent ones left out)."""
        values = {
            "description": self.description,
            "eventDate": self.event_date,
            "externalRef": self.external_ref,
            "type": self.type,
        }
        return {k: v for k, v in values.items() if v is not None}

    def with_case_id(self, case_id: uuid.UUID | str) -> dict[str, Any]:
        """The API mapping to send once the reference is resolved to ``case_id``."""
        return {"caseId": str(case_id), **self.fields()}


@attrs.frozen(kw_only=True)
class RejectedRow:
    """An input row that was not sent, with its position in the input and every reason."""

    position: int
    problems: tuple[str, ...]
    key: Hashable = None
    """The row's key: its ``externalRef`` (or what the ``row_key`` option made of the input item;
    None for a row that could not be read)."""


@attrs.frozen(kw_only=True)
class JobResult:
    """The outcome of one batch (or, for REJECTED rows caught on the client, of one row).

    ``first_position`` / ``last_position`` are 0-based positions of the batch's first and last row
    in the input stream; ``row_count`` counts the rows the batch held. Times are UTC.
    """

    batch_index: int | None
    first_position: int
    last_position: int
    row_count: int
    outcome: JobOutcome
    job_id: uuid.UUID | None = None
    status: IngestionJobStatus | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    rejected_rows: tuple[RejectedRow, ...] = ()
    idempotency_key: str | None = None
    polls: int = 0
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    resumed: bool = False
    """True when this result was recorded by an earlier run and replayed from a journal."""
    positions: tuple[int, ...] = attrs.field(default=(), eq=False, repr=False)
    """The 0-based input position of each row, in batch order (rows refused on the client in
    between are not part of the batch, so positions need not be contiguous)."""
    row_keys: tuple[Hashable, ...] = attrs.field(default=(), eq=False, repr=False)
    """Each row's key, in batch order: its ``externalRef`` by default, or what the pipeline's
    ``row_key`` option returned for the input item. Lets a script mark its own records
    (``zip(result.row_keys, ...)``) without keeping the input."""

    @property
    def rows_succeeded(self) -> int:
        done = (JobOutcome.COMPLETED, JobOutcome.COMPLETED_WITH_ERRORS)
        if self.outcome in done and self.status is not None:
            return max(0, min(self.status.rows_succeeded, self.row_count))
        return 0

    @property
    def rows_failed(self) -> int:
        if self.outcome in (JobOutcome.COMPLETED, JobOutcome.COMPLETED_WITH_ERRORS):
            return self.row_count - self.rows_succeeded
        if self.outcome is JobOutcome.FAILED:
            return self.row_count
        return 0


@attrs.frozen(kw_only=True)
class IngestionSummary:
    """Totals of one ingestion. Always ``rows_read == rows_rejected + rows_submitted`` and
    ``rows_submitted == rows_succeeded + rows_failed + rows_unresolved``.

    ``rows_submitted`` counts rows that passed validation and were placed in a batch, including a
    batch that a deadline or cancellation stopped before it was sent (those rows are unresolved).
    """

    rows_read: int = 0
    rows_rejected: int = 0
    rows_submitted: int = 0
    rows_succeeded: int = 0
    rows_failed: int = 0
    rows_unresolved: int = 0
    jobs: Mapping[JobOutcome, int] = attrs.field(factory=dict)
    requests: int = 0
    posts: int = 0
    polls: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every row read was stored."""
        return self.rows_read == self.rows_succeeded


@attrs.frozen(kw_only=True)
class RetryWait:
    """A retry the client has scheduled and is waiting for (the latest one, when several are).

    ``retry`` of ``max_retries`` (1-based), ``resumes_in`` seconds from the snapshot, ``reason``
    what failed: ``"unreachable"`` (no connection, a timeout, a dropped connection) or
    ``"HTTP 503"`` and the like.
    """

    retry: int
    max_retries: int
    resumes_in: float
    reason: str


@attrs.frozen(kw_only=True)
class IngestProgress:
    """A snapshot handed to ``on_progress``; cheap to make, safe to keep.

    The optional fields say what the run is waiting for: ``jobs_queued`` jobs that the server
    last reported as Queued; ``rate_limit_wait`` seconds until a server-imposed rate-limit pause
    ends (None: no pause); ``retry`` the latest retry being waited for (None: none).
    """

    rows_read: int
    rows_submitted: int
    rows_succeeded: int
    rows_failed: int
    rows_rejected: int
    rows_unresolved: int
    jobs_in_flight: int
    jobs_done: int
    requests: int
    elapsed: float
    jobs_queued: int = 0
    rate_limit_wait: float | None = None
    retry: RetryWait | None = None

    @property
    def rows_per_second(self) -> float:
        done = self.rows_succeeded + self.rows_failed
        return done / self.elapsed if self.elapsed > 0 else 0.0


@attrs.define
class RequestStats:
    """Counters of what a client sent; read them for reports, never rely on them for control."""

    requests: int = 0
    posts: int = 0
    gets: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0

    def snapshot(self) -> RequestStats:
        return attrs.evolve(self)


# -- cases: lookup by partner reference and timeline --------------------------------------------


@attrs.frozen(kw_only=True)
class CaseDebtor:
    """The debtor of a case (``DebtorDto``): ``type`` is ``"Company"`` or ``"Person"``."""

    type: str | None = None
    name: str | None = None
    contact_person: str | None = None
    company_registration_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    state_alpha2: str | None = None
    country_alpha2: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None


@attrs.frozen(kw_only=True)
class CaseCreditor:
    """The creditor (the partner's client) of a case (``CreditorDto``, division not modelled)."""

    id: uuid.UUID | None = None
    company_name: str | None = None
    company_registration_number: str | None = None
    office_email: str | None = None
    office_phone: str | None = None
    address: str | None = None
    city: str | None = None
    zip_code: str | None = None
    state: str | None = None
    country: str | None = None


@attrs.frozen(kw_only=True)
class Case:
    """A Debitura case as the case endpoints return it (``InvoiceDto``).

    ``id`` is the case UUID (what ingestion rows need as ``case_id``); ``reference`` is
    Debitura's own case reference, not the partner's (the partner reference is the key you
    looked the case up by). Amounts are in ``currency``. Nested objects other than ``debtor`` and
    ``creditor`` (bank account, signing hand-off, validation, assigned user, allocation) are not
    modelled; unknown fields are ignored.
    """

    id: uuid.UUID
    reference: str | None = None
    date_created: datetime | None = None
    date_updated: datetime | None = None
    creditor_reference: str | None = None
    creditor_comments: str | None = None
    claim_description: str | None = None
    gross_amount: float | None = None
    remainder: float | None = None
    interest_fees: float | None = None
    reminder_fees: float | None = None
    collection_fees: float | None = None
    total_added_fees: float | None = None
    currency: str | None = None
    is_test_case: bool | None = None
    lifecycle: str | None = None
    due_date: datetime | None = None
    date: datetime | None = None
    date_finished: datetime | None = None
    date_collection_started: datetime | None = None
    close_code: str | None = None
    current_engagement_phase: str | None = None
    claim_type: str | None = None
    creditor_division_id: uuid.UUID | None = None
    debtor: CaseDebtor | None = None
    creditor: CaseCreditor | None = None


@attrs.frozen(kw_only=True)
class TimelineActor:
    """Who did a timeline action (``TimelineActorDto``): ``type`` is ``"System"``,
    ``"Creditor user"`` or ``"Partner user"``."""

    type: str | None = None
    name: str | None = None


@attrs.frozen(kw_only=True)
class TimelineItem:
    """One event of a case's history (``TimelineItemDto``); notes are items too (they carry no
    ``externalRef``)."""

    date: datetime | None = None
    type: str | None = None
    title: str | None = None
    description: str | None = None
    actor: TimelineActor | None = None


@attrs.frozen(kw_only=True)
class CaseTimeline:
    """``GET /cases/{id}/timeline``: the events oldest first and the engagement phase
    (``"Pre-legal"``, ``"Legal"``, ``"Enforcement"``, or None when no engagement is active)."""

    items: tuple[TimelineItem, ...] = ()
    current_engagement_phase: str | None = None
