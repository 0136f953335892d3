"""Every exception debitura-async raises.

Foreign exceptions (``aiohttp.*``, ``asyncio.TimeoutError``, ``OSError``) are translated at one
boundary, the client's transport, and chained with ``from``; callers only ever catch these::

    DebituraError
    ├── ConfigurationError            bad base URL, missing API key, http:// to a remote host
    ├── ValidationError               rows refused before any byte was sent (.problems)
    ├── DecodeError                   a response that does not match the contract
    │   ├── ResponseTooLargeError     a body over the client's max_response_bytes (decompressed)
    │   └── ContradictoryResponseError   a 2xx answer that contradicts itself or the request
    │       └── DuplicateJobIdError   one jobId given for two different batches
    ├── RedirectError                 a 3xx: the API never redirects; nothing was followed
    ├── JobWaitTimeout                wait_for_ingestion_job gave up (.job_id, .last_status)
    ├── JobTrackingError              the tracker stopped watching a job that is not terminal
    │   ├── ClientClosedError         the client closed first (resume with client.track(job_id))
    │   └── JobAgeExceededError       the job stayed non-terminal past PollPolicy.max_job_age
    ├── TransportError                no HTTP response was received
    │   ├── ConnectError              could not connect: the request was never sent
    │   │   └── TLSError              the TLS handshake or certificate check failed
    │   ├── RemoteProtocolError       connection dropped mid-exchange: outcome unknown
    │   └── RequestTimeout            no complete response in time: outcome unknown
    └── APIStatusError                the API answered 4xx/5xx (.status, .body, .method, .path)
        ├── BadRequestError           400 (.body.business_errors / .body.field_errors)
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        ├── PayloadTooLargeError      413
        ├── UnprocessableEntityError  422
        │   └── IdempotencyConflictError   same Idempotency-Key, different body
        ├── RateLimitError            429 (.retry_after seconds, from header or body)
        └── ServerError               5xx

No message, ``repr`` or attribute of any of these carries the API key. Every one pickles and
copies with its fields (results carry exceptions; users send them across processes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .models import IngestionJobStatus

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BusinessError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "ContradictoryResponseError",
    "DebituraError",
    "DecodeError",
    "DuplicateJobIdError",
    "ErrorBody",
    "IdempotencyConflictError",
    "JobAgeExceededError",
    "JobTrackingError",
    "JobWaitTimeout",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "RemoteProtocolError",
    "RequestTimeout",
    "ResponseTooLargeError",
    "RowProblem",
    "ServerError",
    "TLSError",
    "TransportError",
    "UnprocessableEntityError",
    "ValidationError",
    "status_error_class",
]


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DebituraError(Exception):
    """Base class of every error this package raises."""

    def __reduce__(self) -> Any:
        # Subclasses take keyword-only fields, which Exception's default reduce cannot rebuild.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(DebituraError, ValueError):
    """The client was configured in a way that cannot work or is unsafe."""


@attrs.frozen
class RowProblem:
    """One reason a row was refused: its position, the field, and what is wrong.

    ``index`` is the row's position in the batch (for a client call) or in the input stream (for
    the ingestion pipeline); ``field`` is the API field name (``caseId``, ``description`` …) or
    ``"row"`` / ``"rows"`` for whole-row and whole-batch problems.
    """

    index: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.index < 0:
            return f"{self.field}: {self.message}"
        return f"row {self.index}: {self.field}: {self.message}"


class ValidationError(DebituraError, ValueError):
    """Rows were refused on the client, before any byte was sent. ``problems`` lists them all."""

    def __init__(self, problems: Sequence[RowProblem], *, what: str = "batch") -> None:
        self.problems: tuple[RowProblem, ...] = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:20])
        more = f"; … and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"invalid {what}: {len(self.problems)} problem(s): {shown}{more}")


class DecodeError(DebituraError):
    """A response body could not be read as the contract says (bad JSON, missing fields …)."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int = 0) -> None:
        self.method = method
        self.path = path
        self.status = status
        where = f" ({method} {path} -> {status})" if method else ""
        super().__init__(f"{message}{where}")


class JobWaitTimeout(DebituraError, TimeoutError):
    """``wait_for_ingestion_job`` ran out of time. The job itself has not failed.

    ``last_status`` is the last status seen (None if no poll completed).
    """

    def __init__(
        self, job_id: uuid.UUID, timeout: float, last_status: IngestionJobStatus | None
    ) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.last_status = last_status
        seen = "no status seen" if last_status is None else f"last status {last_status.status.name}"
        super().__init__(f"job {job_id} not terminal after {timeout:g} s ({seen})")


class ResponseTooLargeError(DecodeError):
    """A response body (after decompression) was larger than ``max_response_bytes``.

    Debitura's answers are well under a kilobyte; reading stopped at ``limit`` bytes.
    """

    def __init__(self, *, limit: int, method: str, path: str, status: int) -> None:
        self.limit = limit
        super().__init__(
            f"response body over the {limit}-byte limit (max_response_bytes)",
            method=method,
            path=path,
            status=status,
        )


class ContradictoryResponseError(DecodeError):
    """A well-formed answer that cannot be true: counts that do not add up, ``rowsQueued`` other
    than the rows sent, negative counts. The rows concerned are reported UNRESOLVED, never
    counted as stored. ``job_id`` names the job where one is known."""

    def __init__(
        self,
        detail: str,
        *,
        job_id: uuid.UUID | None = None,
        method: str = "",
        path: str = "",
        status: int = 0,
    ) -> None:
        self.detail = detail
        self.job_id = job_id
        job = f" (job {job_id})" if job_id is not None else ""
        super().__init__(
            f"contradictory answer{job}: {detail}", method=method, path=path, status=status
        )


class DuplicateJobIdError(ContradictoryResponseError):
    """The server answered two POSTs of different batches with the same ``jobId`` (a server bug,
    a caching proxy): which rows that job holds is unknown."""


class RedirectError(DebituraError):
    """The server answered with a redirect (3xx). Debitura's API never redirects; the client
    follows none (the API key and the notes would go to another origin). ``location`` is the
    origin (scheme, host, port) the redirect pointed to, without its path or query."""

    def __init__(self, *, status: int, method: str, path: str, location: str | None) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.location = location
        where = f" to {location}" if location else " (no Location)"
        super().__init__(f"{method} {path} -> {status}: unexpected redirect{where}, not followed")


class JobTrackingError(DebituraError):
    """The tracker stopped watching a job before it reached a terminal status. The job may still
    finish at the server: ``client.track(job_id)`` (or the CLI's ``--resume``) picks it up."""

    def __init__(
        self, message: str, *, job_id: uuid.UUID, idempotency_key: str | None = None
    ) -> None:
        self.job_id = job_id
        self.idempotency_key = idempotency_key
        super().__init__(f"job {job_id}: {message}")


class ClientClosedError(JobTrackingError):
    """The client was closed while the job was still being tracked."""


class JobAgeExceededError(JobTrackingError):
    """The job stayed non-terminal longer than ``PollPolicy.max_job_age`` seconds."""


class TransportError(DebituraError):
    """No HTTP response was received. ``method`` and ``path`` say which request."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {message}")


class ConnectError(TransportError):
    """The connection could not be opened; the request was not sent."""


class TLSError(ConnectError):
    """TLS failed (certificate not trusted, handshake error). Never retried."""


class RemoteProtocolError(TransportError):
    """The connection broke after the request was (perhaps) sent: its outcome is unknown."""


class RequestTimeout(TransportError):
    """No complete response arrived in time: the request's outcome is unknown."""


@attrs.frozen
class BusinessError:
    """One entry of ``ApiErrorResponseDto.businessErrors``."""

    type: str | None = None
    message: str | None = None
    solution_url: str | None = None


@attrs.frozen(kw_only=True)
class ErrorBody:
    """An error response, read defensively from any of the API's three documented shapes.

    ``ApiErrorResponseDto`` fills ``error``, ``message`` and ``business_errors``; RFC 7807
    ProblemDetails fills ``error`` (title), ``message`` (detail) and ``problem_type``; an ASP.NET
    ``{field: [messages]}`` map (bare or under ``errors``) fills ``field_errors``. The 429 body's
    ``retryAfter`` lands in ``retry_after``. ``raw`` keeps whatever was parsed.
    """

    error: str | None = None
    message: str | None = None
    business_errors: tuple[BusinessError, ...] = ()
    field_errors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    problem_type: str | None = None
    retry_after: float | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)

    def describe(self) -> str:
        """A one-line human summary of everything the body said."""
        parts: list[str] = []
        if self.error:
            parts.append(self.error)
        if self.message and self.message != self.error:
            parts.append(self.message)
        parts.extend(
            f"{b.type}: {b.message}" if b.type else str(b.message) for b in self.business_errors
        )
        parts.extend(f"{name}: {'; '.join(msgs)}" for name, msgs in self.field_errors)
        return " | ".join(parts)


class APIStatusError(DebituraError):
    """The API answered with an error status.

    Attributes: ``status``, ``method``, ``path``, ``body`` (:class:`ErrorBody`),
    ``business_errors`` (shortcut to ``body.business_errors``), ``job_id`` where the request
    concerned a known job, and ``retry_after`` (seconds, from a ``Retry-After`` header or the
    body's ``retryAfter``; None when the server gave none).
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        path: str,
        body: ErrorBody,
        job_id: uuid.UUID | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        self.job_id = job_id
        self.retry_after = retry_after
        detail = body.describe()
        super().__init__(f"{method} {path} -> {status}" + (f": {detail}" if detail else ""))

    @property
    def business_errors(self) -> tuple[BusinessError, ...]:
        return self.body.business_errors


class BadRequestError(APIStatusError):
    """400: the server refused the request; nothing was queued."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or not valid."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: unknown job or case, or one owned by another partner."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body is over the server's size limit."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well-formed but cannot be processed."""


class IdempotencyConflictError(UnprocessableEntityError):
    """422 ``IdempotencyConflict``: the Idempotency-Key was used before with another body."""


class RateLimitError(APIStatusError):
    """429: the key's request budget is spent. ``retry_after`` is the server's wait, in seconds."""


class ServerError(APIStatusError):
    """5xx: the server failed; the request's effect is unknown."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
}


def status_error_class(status: int, body: ErrorBody) -> type[APIStatusError]:
    """The exception class for an error status."""
    if status == 429:
        return RateLimitError
    if status == 422 and any(b.type == "IdempotencyConflict" for b in body.business_errors):
        return IdempotencyConflictError
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)
