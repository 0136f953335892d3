"""The emulator's value types and wire bodies: statuses, problems, acceptances, notes, dates.

Pure and small; :mod:`.core` (which re-exports them) applies the rules that produce them.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import orjson

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_ROWS",
    "Accepted",
    "ApiProblem",
    "JobFaults",
    "JobStatus",
    "JobView",
    "Note",
    "canonical_hash",
    "case_reference",
    "format_datetime",
    "parse_datetime",
    "partner_profile",
]

MAX_ROWS: Final = 1000
MAX_DESCRIPTION_LENGTH: Final = 10_000
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255


class JobStatus(enum.IntEnum):
    """Debitura's ``AsyncJobStatus``; 2, 3 and 4 are terminal."""

    QUEUED = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    COMPLETED_WITH_ERRORS = 3
    FAILED = 4


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date-time as an aware datetime (naive input is taken as UTC), else ``None``.

    >>> parse_datetime("2026-02-01T09:30:00Z").isoformat()
    '2026-02-01T09:30:00+00:00'
    >>> parse_datetime("yesterday") is None
    True
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``.

    >>> format_datetime(datetime(2026, 2, 1, 9, 30, tzinfo=UTC))
    '2026-02-01T09:30:00.000Z'
    """
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_hash(document: object) -> bytes:
    """SHA-256 of the parsed JSON with sorted keys: whitespace and key order do not count."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).digest()


@attrs.frozen(kw_only=True)
class ApiProblem:
    """An error answer: status plus the ``ApiErrorResponseDto`` fields (rendered by the app)."""

    status: int
    error: str
    message: str
    business_errors: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        """The ``ApiErrorResponseDto`` body: ``{error, message, businessErrors}``."""
        return {
            "error": self.error,
            "message": self.message,
            "businessErrors": [
                {"type": kind, "message": text, "solutionUrl": None}
                for kind, text in self.business_errors
            ],
        }

    @classmethod
    def validation(cls, problems: Iterable[str]) -> ApiProblem:
        items = tuple(problems)
        if len(items) == 1:
            message = items[0]
        else:
            message = f"{len(items)} validation errors; first: {items[0]}"
        return cls(
            status=400,
            error="validation_error",
            message=message,
            business_errors=tuple(("ValidationError", p) for p in items),
        )

    @classmethod
    def simple(cls, status: int, error: str, kind: str, message: str) -> ApiProblem:
        return cls(status=status, error=error, message=message, business_errors=((kind, message),))

    @classmethod
    def not_found(cls, message: str) -> ApiProblem:
        return cls.simple(404, "not_found", "NotFound", message)


@attrs.frozen(kw_only=True)
class Accepted:
    """A 202 for ``POST /ingestion-jobs``; ``replayed`` when served from the idempotency store."""

    job_id: uuid.UUID
    rows_queued: int
    replayed: bool = False

    def body(self) -> dict[str, Any]:
        return {"jobId": str(self.job_id), "rowsQueued": self.rows_queued}


@attrs.frozen(kw_only=True)
class JobFaults:
    """Job-level faults decided for a job at the moment it is created."""

    fail: bool = False
    vanish_after: float | None = None


@attrs.frozen(kw_only=True)
class JobView:
    """A job's observable state at some ``now``."""

    status: JobStatus
    rows_total: int
    rows_succeeded: int
    rows_failed: int

    def as_dict(self) -> dict[str, int]:
        """The ``IngestionJobStatusResponse`` body."""
        return {
            "status": int(self.status),
            "rowsTotal": self.rows_total,
            "rowsSucceeded": self.rows_succeeded,
            "rowsFailed": self.rows_failed,
        }


@attrs.frozen(kw_only=True)
class Note:
    """A stored note (from an ingestion row or ``POST /cases/{id}/notes``)."""

    id: uuid.UUID
    case_id: str
    partner_id: uuid.UUID
    description: str
    event_date: datetime | None
    created_at: datetime
    external_ref: str | None = None
    job_id: uuid.UUID | None = None


def case_reference(case_id: str) -> str:
    """A stable human-readable case reference derived from the case id."""
    return "DEB-" + case_id.replace("-", "")[:8].upper()


def partner_profile(partner_id: uuid.UUID, name: str, user_id: int) -> dict[str, Any]:
    """``CollectionPartnerMeResponse`` for a partner (made-up but stable profile data)."""
    number = user_id - 999
    address = f"Emulatorvej {number}"
    return {
        "id": str(partner_id),
        "companyName": name,
        "logoUrl": None,
        "companyRegistrationNumber": f"DK{40000000 + number}",
        "vatNumber": f"DK{40000000 + number}",
        "address": address,
        "zipCode": "2100",
        "city": "Copenhagen",
        "state": None,
        "country": "Denmark",
        "officeEmail": f"office{number}@partner.example",
        "officePhone": f"+45 7000 {number:04d}",
        "invoiceEmail": f"invoice{number}@partner.example",
        "billingContact": "Emulated Billing",
        "invoiceCurrency": None,
        "commissionType": 0,
        "preLegalRevenueShare": 0.4,
        "legalRevenueShare": 0.2,
        "verifiedProfile": True,
        "fullAddress": f"{address}, 2100 Copenhagen, Denmark",
        "surveyCadenceMode": 0,
    }
