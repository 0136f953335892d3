"""debitura-async: asyncio SDK, migration CLI and offline emulator for Debitura ingestion jobs.

Public names only; everything else is private and may change.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _metadata_version

from ._budget import DEFAULT_RATE_LIMITS, RateLimit, RequestBudget
from ._journal_api import IngestJournal, JournalEntry
from ._options import IngestKwargs, IngestOptions
from ._polling import PollPolicy, PollStats
from ._retry import RetryPolicy
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AiohttpTransport,
    MockTransport,
    Response,
    Transport,
)
from .client import DEFAULT_BASE_URL, DebituraClient, RequestStats, Timeout
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BusinessError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ContradictoryResponseError,
    DebituraError,
    DecodeError,
    DuplicateJobIdError,
    ErrorBody,
    IdempotencyConflictError,
    JobAgeExceededError,
    JobTrackingError,
    JobWaitTimeout,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    RemoteProtocolError,
    RequestTimeout,
    ResponseTooLargeError,
    RowProblem,
    ServerError,
    TLSError,
    TransportError,
    UnprocessableEntityError,
    ValidationError,
)
from .ingest import Ingestion
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
    UnresolvedCaseRow,
)
from .tracker import DEFAULT_MAX_JOB_AGE, JobHandle, JobTracker

try:
    __version__ = _metadata_version("debitura-async")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_JOB_AGE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RATE_LIMITS",
    "APIStatusError",
    "AiohttpTransport",
    "AsyncJobStatus",
    "AuthenticationError",
    "BadRequestError",
    "BusinessError",
    "ClientClosedError",
    "CollectionPartner",
    "ConfigurationError",
    "ConnectError",
    "ContradictoryResponseError",
    "DebituraClient",
    "DebituraError",
    "DecodeError",
    "DuplicateJobIdError",
    "ErrorBody",
    "IdempotencyConflictError",
    "IngestJournal",
    "IngestKwargs",
    "IngestOptions",
    "IngestProgress",
    "Ingestion",
    "IngestionJobAccepted",
    "IngestionJobRow",
    "IngestionJobStatus",
    "IngestionSummary",
    "InvalidRow",
    "JobAgeExceededError",
    "JobHandle",
    "JobOutcome",
    "JobResult",
    "JobTracker",
    "JobTrackingError",
    "JobWaitTimeout",
    "JournalEntry",
    "MockTransport",
    "NotFoundError",
    "Note",
    "NoteAuthor",
    "PartnerIngestEventType",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollPolicy",
    "PollStats",
    "RateLimit",
    "RateLimitError",
    "RedirectError",
    "RejectedRow",
    "RemoteProtocolError",
    "RequestBudget",
    "RequestStats",
    "RequestTimeout",
    "Response",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RowProblem",
    "ServerError",
    "TLSError",
    "Timeout",
    "Transport",
    "TransportError",
    "UnprocessableEntityError",
    "UnresolvedCaseRow",
    "ValidationError",
    "__version__",
]
