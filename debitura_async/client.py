"""DebituraClient: the async client of the Collection Partner API.

One :class:`aiohttp.ClientSession` per client (created inside the running loop on first use or on
``async with``, or injected by the caller), explicit connector limits and timeouts, the API key in
the ``XApiKey`` header of every request and nowhere else, retries that cannot duplicate a job
(every ``POST /ingestion-jobs`` carries one Idempotency-Key across all its attempts), and a request
budget shared by every request the client makes.

Foreign exceptions are translated here, at one boundary (:meth:`DebituraClient._send_once`), into
:mod:`debitura_async.errors`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import platform
import random
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import attrs
import stamina

from . import _retry, _retry_log, _validate, _wire
from ._budget import RequestBudget
from ._retry import RetryPolicy
from ._version import __version__
from .errors import (
    APIStatusError,
    ConfigurationError,
    ConnectError,
    JobWaitTimeout,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeout,
    RowProblem,
    TLSError,
    TransportError,
    ValidationError,
    status_error_class,
)
from .ingest import Ingestion, IngestOptions, RowInput
from .models import (
    CollectionPartner,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionJobStatus,
    IngestionSummary,
    Note,
    RetryWait,
    parse_uuid,
)

__all__ = ["DEFAULT_BASE_URL", "DebituraClient", "RequestStats", "Timeout"]

logger = logging.getLogger("debitura_async")

DEFAULT_BASE_URL: Final = "https://collectionpartner-api.debitura.com"
API_KEY_ENV: Final = "DEBITURA_API_KEY"
BASE_URL_ENV: Final = "DEBITURA_BASE_URL"

T = TypeVar("T")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT: Final = _Default()


@attrs.frozen(kw_only=True)
class Timeout:
    """Per-request time limits, in seconds (None: no limit).

    >>> Timeout(total=30.0, connect=5.0, read=20.0)
    Timeout(total=30.0, connect=5.0, read=20.0)

    ``connect`` bounds opening the TCP/TLS connection, ``read`` the wait for each chunk of the
    response, ``total`` one whole attempt including waiting for a free pooled connection.
    Retries get a fresh allowance.
    """

    total: float | None = 60.0
    connect: float | None = 10.0
    read: float | None = 30.0

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )


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


class _Secret:
    """Holds the API key; prints as asterisks wherever it ends up."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key cannot be pickled")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise ConfigurationError(f"base_url must not have a query or fragment: {base_url!r}")
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not carry credentials; pass api_key instead")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to non-loopback host {parts.hostname!r}: the API key would "
            "travel unencrypted; use https:// or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise ValidationError(
            [RowProblem(-1, field, f"{value!r} is not a valid UUID")], what="request"
        )
    return parsed


class DebituraClient:
    """Async client of Debitura's Collection Partner API.

    >>> async def main() -> None:                                      # doctest: +SKIP
    ...     async with DebituraClient() as client:                     # key: $DEBITURA_API_KEY
    ...         job = await client.create_ingestion_job(
    ...             [IngestionJobRow(case_id, "Called the debtor.")]
    ...         )
    ...         status = await client.wait_for_ingestion_job(job.job_id)

    Arguments (all but ``api_key`` keyword-only):

    * ``api_key`` — the partner's key; default ``$DEBITURA_API_KEY``.
    * ``base_url`` — default ``$DEBITURA_BASE_URL`` or the production host. ``http://`` is refused
      for non-loopback hosts unless ``allow_insecure_http=True``. TLS is always verified.
    * ``session`` — an aiohttp session of yours (not closed by the client); by default the client
      makes and owns one with ``max_connections`` pooled connections.
    * ``timeout`` — :class:`Timeout` or a number (total seconds per attempt).
    * ``max_retries`` / ``retry`` — :class:`~debitura_async.RetryPolicy`; ``max_retries`` overrides
      the policy's count.
    * ``budget`` — a :class:`~debitura_async.RequestBudget` (default: Debitura's documented
      limits; share one instance between clients of the same key), or None to switch it off.
    * ``clock_skew`` — how far in the future an ``eventDate`` may be before it is refused here.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float = Timeout(),
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        budget: RequestBudget | _Default | None = _DEFAULT,
        max_connections: int = 64,
        allow_insecure_http: bool = False,
        clock_skew: timedelta = timedelta(seconds=5),
        user_agent: str | None = None,
    ) -> None:
        key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV) or "").strip()
        if not key:
            raise ConfigurationError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        if any(c in key for c in "\r\n"):
            raise ConfigurationError("the API key contains a line break")
        self._api_key = _Secret(key)
        self.base_url: str = _check_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        self.timeout: Timeout = (
            timeout if isinstance(timeout, Timeout) else Timeout(total=float(timeout))
        )
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        self.retry_policy: RetryPolicy = policy
        self.budget: RequestBudget | None = (
            RequestBudget() if isinstance(budget, _Default) else budget
        )
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.clock_skew = clock_skew
        self.stats = RequestStats()
        self._session = session
        self._owns_session = session is None
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent
            or (
                f"debitura-async/{__version__} aiohttp/{aiohttp.__version__} "
                f"python/{platform.python_version()}"
            ),
        }
        self._closed = False
        self._retry_wait: tuple[int, float, str] | None = None
        """The latest retry scheduled: (retry number, monotonic time it is due, reason)."""

    def retry_wait(self) -> RetryWait | None:
        """The latest retry this client is waiting for (None once a request succeeded)."""
        if self._retry_wait is None:
            return None
        number, due, reason = self._retry_wait
        return RetryWait(
            retry=number,
            max_retries=self.retry_policy.max_retries,
            resumes_in=max(0.0, due - time.monotonic()),
            reason=reason,
        )

    def __repr__(self) -> str:
        return f"DebituraClient(base_url={self.base_url!r}, api_key={self._api_key!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if the client made it. Idempotent."""
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this DebituraClient is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections,
                ttl_dns_cache=300,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout.to_aiohttp(),
                raise_for_status=False,
                auto_decompress=True,
            )
            _disable_hidden_retry(session)
            self._session = session
        return self._session

    # -- public API ----------------------------------------------------------------------------

    async def create_ingestion_job(
        self,
        rows: Iterable[IngestionJobRow | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> IngestionJobAccepted:
        """Queue 1..1000 rows as one ingestion job (``POST /ingestion-jobs`` -> 202).

        Rows are checked first, as the server would; one :class:`ValidationError` lists every
        problem by row index and field, and nothing is sent. The Idempotency-Key (yours, or one
        generated for this call) is the same on every retry, so a retry after an ambiguous
        failure replays the first job instead of creating a second.
        """
        checked = _validate.check_batch(rows, now=datetime.now(UTC), skew=self.clock_skew)
        return await self._post_ingestion_job(
            _wire.encode_rows(checked), idempotency_key=idempotency_key
        )

    async def _post_ingestion_job(
        self, body: bytes, *, idempotency_key: str | None = None
    ) -> IngestionJobAccepted:
        """POST a pre-encoded, pre-validated body (the pipeline's path; no re-validation)."""
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        _validate.check_idempotency_key(key)
        status, raw = await self._call(
            "POST", "/ingestion-jobs", body=body, idempotency_key=key, idempotent=True
        )
        return _wire.decode(
            IngestionJobAccepted, raw, method="POST", path="/ingestion-jobs", status=status
        )

    async def get_ingestion_job(self, job_id: uuid.UUID | str) -> IngestionJobStatus:
        """The job's current status (``GET /ingestion-jobs/{jobId}``)."""
        jid = _as_uuid(job_id, "jobId")
        path = f"/ingestion-jobs/{jid}"
        status, raw = await self._call("GET", path, idempotent=True, job_id=jid)
        return _wire.decode(IngestionJobStatus, raw, method="GET", path=path, status=status)

    async def wait_for_ingestion_job(
        self,
        job_id: uuid.UUID | str,
        *,
        poll_interval: float = 3.0,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented public signature
    ) -> IngestionJobStatus:
        """Poll every ``poll_interval`` seconds until the job is terminal.

        On ``timeout`` raises :class:`JobWaitTimeout` carrying the last status seen; the job is
        not failed by this and may still finish.
        """
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        jid = _as_uuid(job_id, "jobId")
        last: IngestionJobStatus | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.get_ingestion_job(jid)
                    if last.is_terminal:
                        return last
                    await asyncio.sleep(poll_interval)
        except TimeoutError:
            if timeout is None:
                raise
            raise JobWaitTimeout(jid, timeout, last) from None

    async def add_case_note(
        self,
        case_id: uuid.UUID | str,
        description: str,
        *,
        event_date: datetime | None = None,
    ) -> Note:
        """Add one note synchronously (``POST /cases/{id}/notes`` -> 200 Note).

        The notes endpoint promises no idempotency, so this call is retried only after failures
        that prove the note was not stored (connect errors, 408, 429, 503).
        """
        cid = _as_uuid(case_id, "caseId")
        problems = _validate.check_description(description, 0)
        problems += _validate.check_event_date(
            event_date, 0, now=datetime.now(UTC), skew=self.clock_skew
        )
        if problems:
            raise ValidationError(problems, what="note")
        payload: dict[str, Any] = {"description": description}
        if event_date is not None:
            payload["eventDate"] = _wire.format_datetime(event_date)
        path = f"/cases/{quote(str(cid))}/notes"
        status, raw = await self._call(
            "POST",
            path,
            body=_wire.encode_json(payload),
            idempotency_key=str(uuid.uuid4()),
            idempotent=False,
        )
        return _wire.decode(Note, raw, method="POST", path=path, status=status)

    async def me(self) -> CollectionPartner:
        """The partner behind the API key (``GET /me``): the recommended first call."""
        status, raw = await self._call("GET", "/me", idempotent=True)
        return _wire.decode(CollectionPartner, raw, method="GET", path="/me", status=status)

    # -- ingestion pipeline --------------------------------------------------------------------

    def ingest(
        self,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        **options: Any,
    ) -> Ingestion:
        """Stream rows of any length through concurrent jobs; iterate the per-job results.

        >>> async with client.ingest(rows, deadline=3600) as results:   # doctest: +SKIP
        ...     async for result in results:      # one JobResult per batch, as each finishes
        ...         print(result.outcome, result.job_id)
        >>> results.summary                                              # doctest: +SKIP

        Options are the fields of :class:`~debitura_async.ingest.IngestOptions` (batch_size,
        max_concurrent_submits, max_jobs_in_flight, on_invalid, deadline, run_id, polling,
        on_progress, ...).
        """
        return Ingestion(self, rows, IngestOptions(**options))

    async def ingest_all(
        self,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        **options: Any,
    ) -> IngestionSummary:
        """Like :meth:`ingest`, for callers that only want the totals."""
        async with self.ingest(rows, **options) as results:
            async for _ in results:
                pass
        return results.summary

    # -- transport -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        idempotency_key: str | None = None,
        idempotent: bool,
        job_id: uuid.UUID | None = None,
    ) -> tuple[int, bytes]:
        """One logical call: attempts with retries, all with the same headers and body."""
        headers = dict(self._headers)
        headers["XApiKey"] = self._api_key.reveal()
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        policy = self.retry_policy
        retry_number = 0

        def backoff_hook(exc: Exception) -> bool | float:
            delay = _retry.retry_delay(
                exc,
                retry_number + 1,
                policy,
                rand=random.random(),  # noqa: S311 - jitter, not cryptography
                idempotent=idempotent,
            )
            if delay is not None and retry_number < policy.max_retries:
                self._retry_wait = (retry_number + 1, time.monotonic() + delay, _retry_reason(exc))
            return False if delay is None else delay

        _retry_log.install()
        with _retry_log.ours(method, path):
            async for attempt in stamina.retry_context(
                on=backoff_hook,
                attempts=policy.max_retries + 1,
                timeout=policy.timeout,
            ):
                with attempt:
                    retry_number = attempt.num - 1
                    if retry_number:
                        self.stats.retries += 1
                    answer = await self._send_once(
                        method, path, headers, body, attempt=attempt.num, job_id=job_id
                    )
                    self._retry_wait = None
                    return answer
        raise AssertionError("unreachable: stamina re-raises the last failure")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        attempt: int,
        job_id: uuid.UUID | None,
    ) -> tuple[int, bytes]:
        session = self._ensure_session()
        if self.budget is not None:
            await self.budget.acquire()
        self.stats.requests += 1
        if method == "POST":
            self.stats.posts += 1
        else:
            self.stats.gets += 1
        started = time.monotonic()
        failure: tuple[TransportError, BaseException | None] | None = None
        try:
            async with session.request(
                method, self.base_url + path, data=body, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after_header = response.headers.get("Retry-After")
        except Exception as exc:
            self.stats.errors += 1
            error = _translate_transport_error(exc, method=method, path=path)
            if error is None:
                raise
            logger.debug(
                "%s %s -> %s attempt=%d elapsed=%.3fs",
                method,
                path,
                type(error).__name__,
                attempt,
                time.monotonic() - started,
            )
            # aiohttp errors may carry request_info (with our headers, the key among them):
            # such a cause is dropped, and the error is raised outside this block so that it
            # does not keep the cause as its __context__ either.
            failure = (error, None if hasattr(exc, "request_info") else exc)
        if failure is not None:
            raise failure[0] from failure[1]
        logger.debug(
            "%s %s -> %d attempt=%d elapsed=%.3fs",
            method,
            path,
            status,
            attempt,
            time.monotonic() - started,
        )
        if status < 400:
            return status, raw
        self.stats.errors += 1
        error_body = _wire.parse_error_body(raw)
        retry_after = _wire.parse_retry_after(retry_after_header, error_body, now=datetime.now(UTC))
        cls = status_error_class(status, error_body)
        if cls is RateLimitError:
            self.stats.rate_limited += 1
            if self.budget is not None and retry_after is not None:
                self.budget.pause(retry_after)
        raise cls(
            status=status,
            method=method,
            path=path,
            body=error_body,
            job_id=job_id,
            retry_after=retry_after,
        )


def _retry_reason(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status}"
    return "unreachable"


def _disable_hidden_retry(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp from silently sending an idempotent request twice.

    aiohttp re-sends a GET once by itself when a pooled connection turns out dead
    (``ServerDisconnectedError``/``ClientOSError``); that second attempt would bypass the
    client's retry policy, its request budget, its stats and its logging. Our own retries cover
    the case, counted and budgeted. There is no public switch (aio-libs/aiohttp#10790);
    ``aiohttp.test_utils.TestClient`` sets the same attribute.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def _translate_transport_error(
    exc: BaseException, *, method: str, path: str
) -> TransportError | None:
    """The one place aiohttp/asyncio failures become debitura_async errors (None: not ours)."""
    if isinstance(exc, APIStatusError | TransportError):
        return None
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError(f"TLS failure: {exc}", method=method, path=path)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError(f"timed out connecting: {exc}", method=method, path=path)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect: {exc}", method=method, path=path)
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is a TimeoutError too
        return RequestTimeout("no complete response in time", method=method, path=path)
    if isinstance(exc, aiohttp.ClientError | OSError):
        detail = str(exc) or type(exc).__name__
        return RemoteProtocolError(
            f"connection failed mid-request ({detail})", method=method, path=path
        )
    return None
