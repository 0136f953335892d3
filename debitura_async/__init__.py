"""debitura-async: asyncio SDK, migration CLI and offline emulator for Debitura ingestion jobs.

Public names only; everything else is private and may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._budget import DEFAULT_RATE_LIMITS, RateLimit, RequestBudget
from ._journal_api import IngestJournal, JournalEntry
from ._polling import PollPolicy
from ._retry import RetryPolicy
from .client import DEFAULT_BASE_URL, DebituraClient, RequestStats, Timeout
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BusinessError,
    ConfigurationError,
    ConnectError,
    DebituraError,
    DecodeError,
    ErrorBody,
    IdempotencyConflictError,
    JobWaitTimeout,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeout,
    RowProblem,
    ServerError,
    TLSError,
    TransportError,
    UnprocessableEntityError,
    ValidationError,
)
from .ingest import Ingestion, IngestOptions
from .models import (
    AsyncJobStatus,
    CollectionPartner,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionJobStatus,
    IngestionSummary,
    IngestProgress,
    InvalidRow,
    JobOutcome,
    JobResult,
    Note,
    NoteAuthor,
    PartnerIngestEventType,
    RejectedRow,
    RetryWait,
)

try:
    __version__ = version("debitura-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE_LIMITS",
    "APIStatusError",
    "AsyncJobStatus",
    "AuthenticationError",
    "BadRequestError",
    "BusinessError",
    "CollectionPartner",
    "ConfigurationError",
    "ConnectError",
    "DebituraClient",
    "DebituraError",
    "DecodeError",
    "ErrorBody",
    "IdempotencyConflictError",
    "IngestJournal",
    "IngestOptions",
    "IngestProgress",
    "Ingestion",
    "IngestionJobAccepted",
    "IngestionJobRow",
    "IngestionJobStatus",
    "IngestionSummary",
    "InvalidRow",
    "JobOutcome",
    "JobResult",
    "JobWaitTimeout",
    "JournalEntry",
    "NotFoundError",
    "Note",
    "NoteAuthor",
    "PartnerIngestEventType",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimit",
    "RateLimitError",
    "RejectedRow",
    "RemoteProtocolError",
    "RequestBudget",
    "RequestStats",
    "RequestTimeout",
    "RetryPolicy",
    "RetryWait",
    "RowProblem",
    "ServerError",
    "TLSError",
    "Timeout",
    "TransportError",
    "UnprocessableEntityError",
    "ValidationError",
    "__version__",
]
