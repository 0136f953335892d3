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
import logging
import math
import os
import platform
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, TypeVar, Unpack
from urllib.parse import quote

import aiohttp
import attrs

from . import _case_calls, _client_send, _validate, _wire
from . import hooks as _hooks
from . import ingest as _ingest
from ._budget import Budget, RequestBudget
from ._client_config import (
    _DEFAULT,
    DEFAULT_TIMEOUT,
    Timeout,
    _as_uuid,
    _check_base_url,
    _check_header_value,
    _check_queued,
    _Default,
    _Secret,
    check_client_options,
)
from ._options import IngestKwargs
from ._polling import PollPolicy
from ._retry import RetryPolicy
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, AiohttpTransport, Transport
from ._version import __version__
from .errors import (
    ConfigurationError,
    ValidationError,
)
from .ingest import Ingestion, RowInput
from .models import (
    Case,
    CaseTimeline,
    CollectionPartner,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionJobStatus,
    IngestionSummary,
    Note,
    RequestStats,
    RetryWait,
)
from .tracker import DEFAULT_MAX_JOB_AGE, JobHandle, JobTracker

__all__ = ["DEFAULT_BASE_URL", "DebituraClient", "RequestStats", "Timeout"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://collectionpartner-api.debitura.com"
API_KEY_ENV: Final = "DEBITURA_API_KEY"
BASE_URL_ENV: Final = "DEBITURA_BASE_URL"

T = TypeVar("T")


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
    * ``budget`` — a :class:`~debitura_async.Budget`: a :class:`~debitura_async.RequestBudget`
      (default: Debitura's documented limits; share one instance between clients of the same
      key), a :class:`~debitura_async.redis_budget.RedisBudget` shared by every process of the
      key (``budget_from_url``), or None to switch it off.
    * ``clock_skew`` — how far in the future an ``eventDate`` may be before it is refused here.
    * ``event_hooks`` — ``{"request": [...], "response": [...]}``: callables (sync or async) given
      a frozen :class:`~debitura_async.hooks.RequestEvent` / ``ResponseEvent`` per HTTP attempt;
      what a raising hook does is in :mod:`debitura_async.hooks`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        budget: Budget | _Default | None = _DEFAULT,
        max_connections: int = 64,
        allow_insecure_http: bool = False,
        clock_skew: timedelta = timedelta(seconds=5),
        user_agent: str | None = None,
        transport: Transport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        polling: PollPolicy | None = None,
        max_job_age: float | None = DEFAULT_MAX_JOB_AGE,
        event_hooks: _hooks.EventHooks | None = None,
    ) -> None:
        key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV) or "").strip()
        if not key:
            raise ConfigurationError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        _check_header_value("the API key", key)
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
        self.budget: Budget | None = RequestBudget() if isinstance(budget, _Default) else budget
        check_client_options(
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            transport=transport,
            session=session,
            polling=polling,
            max_job_age=max_job_age,
            user_agent=user_agent,
        )
        self.max_connections = max_connections
        self.clock_skew = clock_skew
        self.stats = RequestStats()
        self._transport: Transport = transport or AiohttpTransport(
            session=session,
            timeout=self.timeout.to_aiohttp(),
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
        )
        self._owns_transport = transport is None
        self.event_hooks: dict[str, tuple[_hooks.Hook, ...]] = _hooks.check_event_hooks(event_hooks)
        """The hooks by event name; replace the tuples to change them."""
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent
            or (
                f"debitura-async/{__version__} aiohttp/{aiohttp.__version__} "
                f"python/{platform.python_version()}"
            ),
        }
        self.tracker: JobTracker = JobTracker(
            self._poll_job,
            policy=polling,
            max_job_age=max_job_age,
            scarcity=self._scarcity,
            max_retry_after=self.retry_policy.max_retry_after,
        )
        """Polls every job this client waits for (see :mod:`debitura_async.tracker`)."""
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

    @property
    def instrumentation(self) -> _hooks.Instrumentation:
        """Spans and metrics around operations (no-op unless :func:`debitura_async.otel.instrument`
        or another :class:`~debitura_async.hooks.Instrumentation` was installed)."""
        return self.tracker.instrumentation

    @instrumentation.setter
    def instrumentation(self, value: _hooks.Instrumentation) -> None:
        if not isinstance(value, _hooks.Instrumentation):
            raise ConfigurationError(
                "instrumentation must be a debitura_async.hooks.Instrumentation"
            )
        self.tracker.instrumentation = value

    def __repr__(self) -> str:
        return f"DebituraClient(base_url={self.base_url!r}, api_key={self._api_key!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("this DebituraClient is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the tracker (open handles resolve with ClientClosedError), then close the
        transport (and its session) if the client made it. Idempotent."""
        self._closed = True
        await self.tracker.aclose()
        if self._owns_transport:
            aclose = getattr(self._transport, "aclose", None)
            if aclose is not None:
                await aclose()

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
        return await self.post_encoded_job(
            _wire.encode_rows(checked), idempotency_key=idempotency_key
        )

    async def post_encoded_job(
        self,
        body: bytes,
        *,
        idempotency_key: str | None = None,
        counters: RequestStats | None = None,
    ) -> IngestionJobAccepted:
        """POST a pre-encoded, pre-validated ``{"rows": [...]}`` body (no re-validation).

        The pipeline's path; ``counters`` tallies the request for the caller besides
        :attr:`stats`.
        """
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        _validate.check_idempotency_key(key)
        with self.instrumentation.span(
            "debitura.submit", {"debitura.body_bytes": len(body)}
        ) as span:
            status, raw = await self._call(
                "POST",
                "/ingestion-jobs",
                body=body,
                idempotency_key=key,
                idempotent=True,
                counters=counters,
            )
            accepted = _wire.decode(
                IngestionJobAccepted, raw, method="POST", path="/ingestion-jobs", status=status
            )
            span.set_attribute("debitura.job_id", str(accepted.job_id))
            span.set_attribute("debitura.rows_queued", accepted.rows_queued)
        return accepted

    async def get_ingestion_job(self, job_id: uuid.UUID | str) -> IngestionJobStatus:
        """The job's current status (``GET /ingestion-jobs/{jobId}``)."""
        jid = _as_uuid(job_id, "jobId")
        with self.instrumentation.span("debitura.poll", {"debitura.job_id": str(jid)}) as span:
            result = await self._poll_job(jid)
            span.set_attribute("debitura.job.status", result.status.name)
        return result

    def _scarcity(self) -> float:
        """How much of the request budget is in use (0..1), for the poll planner. A budget's
        ``scarcity()`` that raises or answers nonsense reads as 0 (plenty): polling must not
        stop for a hint."""
        reading = getattr(self.budget, "scarcity", None)
        if not callable(reading):
            return 0.0
        try:
            value = float(reading())
        except Exception:  # noqa: BLE001 - a user's budget: its hint is optional
            logger.warning("the budget's scarcity() failed; polling as if requests were plenty")
            return 0.0
        return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0

    async def _poll_job(
        self, job_id: uuid.UUID, counters: RequestStats | None = None
    ) -> IngestionJobStatus:
        path = f"/ingestion-jobs/{job_id}"
        status, raw = await self._call(
            "GET", path, idempotent=True, job_id=job_id, counters=counters
        )
        return _wire.decode(IngestionJobStatus, raw, method="GET", path=path, status=status)

    async def submit(
        self,
        rows: Iterable[IngestionJobRow | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
        max_age: float | _Default | None = _DEFAULT,
    ) -> JobHandle:
        """Queue 1..1000 rows as one job and track it: returns its :class:`JobHandle` at once.

        ``await handle.wait(timeout=...)`` gives the terminal status; every waiter of this
        client shares one poll loop and planner. Raises
        :class:`~debitura_async.ContradictoryResponseError` (the job id on it) when the server
        says it queued another number of rows than were sent.
        """
        checked = _validate.check_batch(rows, now=datetime.now(UTC), skew=self.clock_skew)
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        sent = asyncio.get_running_loop().time()
        accepted = await self.post_encoded_job(_wire.encode_rows(checked), idempotency_key=key)
        _check_queued(accepted, len(checked))
        return self._track(
            accepted.job_id, idempotency_key=key, rows=len(checked), max_age=max_age, sent=sent
        )

    def track(
        self,
        job_id: uuid.UUID | str,
        *,
        idempotency_key: str | None = None,
        rows: int | None = None,
        max_age: float | _Default | None = _DEFAULT,
    ) -> JobHandle:
        """Track a job created elsewhere (another request, process or run); returns its handle.

        Every caller tracking the same job id shares one handle and its polls.
        """
        jid = _as_uuid(job_id, "jobId")
        return self._track(jid, idempotency_key=idempotency_key, rows=rows, max_age=max_age)

    def _track(
        self,
        job_id: uuid.UUID,
        *,
        idempotency_key: str | None,
        rows: int | None,
        max_age: float | _Default | None,
        sent: float | None = None,
    ) -> JobHandle:
        if self._closed:
            raise RuntimeError("this DebituraClient is closed")
        age = ... if isinstance(max_age, _Default) else max_age  # ...: the tracker's default
        return self.tracker.track(
            job_id, idempotency_key=idempotency_key, rows=rows, max_age=age, submitted_at=sent
        )

    async def wait_for_ingestion_job(
        self,
        job_id: uuid.UUID | str,
        *,
        poll_interval: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented public signature
    ) -> IngestionJobStatus:
        """Wait until the job is terminal, through the client's shared tracker.

        ``poll_interval=None`` (default) lets the adaptive planner choose when to poll; a
        number polls this job at that fixed cadence (the guide says 3 s). On ``timeout`` raises
        :class:`JobWaitTimeout` carrying the last status seen; the job is not failed by this,
        may still finish, and stays tracked by no one unless another caller waits for it.
        """
        if poll_interval is not None and (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not poll_interval > 0
        ):
            raise ValueError("poll_interval must be positive")
        jid = _as_uuid(job_id, "jobId")
        if self._closed:
            raise RuntimeError("this DebituraClient is closed")
        handle = self.tracker.track(jid, poll_interval=poll_interval)
        try:
            return await handle.wait(timeout=timeout)
        finally:
            self.tracker.untrack(handle)

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
        with self.instrumentation.span("debitura.note", {"debitura.case_id": str(cid)}):
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
        with self.instrumentation.span("debitura.me", {}):
            status, raw = await self._call("GET", "/me", idempotent=True)
        return _wire.decode(CollectionPartner, raw, method="GET", path="/me", status=status)

    # -- cases ---------------------------------------------------------------------------------

    async def find_cases_by_partner_reference(self, references: Iterable[str]) -> dict[str, Case]:
        """Resolve your own case references: ``{reference: Case}``, in input order.

        References no case of yours carries are absent. Batches of at most 100
        (``GET /cases/by-partner-reference?references=``), one request at a time; a reference the
        batch form cannot carry (a comma, outer blanks) goes through the single form. Duplicates
        are looked up once; matching is exact. A :class:`ValidationError` lists every reference
        that is not a string of 1..128 characters, before anything is sent.
        """
        return await _case_calls.find_cases_by_partner_reference(self, references)

    async def get_case_by_partner_reference(self, reference: str) -> Case | None:
        """The case of yours with exactly this reference, or None
        (``GET /cases/by-partner-reference/{reference}``, path-encoded: any 1..128 characters)."""
        return await _case_calls.get_case_by_partner_reference(self, reference)

    async def get_case_timeline(self, case_id: uuid.UUID | str) -> CaseTimeline:
        """A case's history, oldest first, and its engagement phase (``GET /cases/{id}/timeline``;
        notes are items, without externalRef). :class:`NotFoundError` for a case not yours."""
        return await _case_calls.get_case_timeline(self, case_id)

    # -- ingestion pipeline --------------------------------------------------------------------

    def ingest(
        self,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        **options: Unpack[IngestKwargs],
    ) -> Ingestion:
        """Stream rows of any length through concurrent jobs; iterate the per-job results.

        >>> async with client.ingest(rows, deadline=3600) as results:   # doctest: +SKIP
        ...     async for result in results:      # one JobResult per batch, as each finishes
        ...         print(result.outcome, result.job_id)
        >>> results.summary                                              # doctest: +SKIP

        Options are the fields of :class:`~debitura_async.IngestOptions` (batch_size,
        max_concurrent_submits, max_jobs_in_flight, on_invalid, deadline, run_id, polling,
        on_progress, journal, row_key, ...), typed for mypy and checked here: a wrong one raises
        from this call. Jobs are polled by this client's shared :attr:`tracker`.
        """
        return _ingest.ingest(self, rows, **options)

    async def ingest_all(
        self,
        rows: Iterable[RowInput] | AsyncIterable[RowInput],
        **options: Unpack[IngestKwargs],
    ) -> IngestionSummary:
        """Like :meth:`ingest`, for callers that only want the totals."""
        return await _ingest.ingest_all(self, rows, **options)

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
        counters: RequestStats | None = None,
    ) -> tuple[int, bytes]:
        """One logical call: attempts with retries, all with the same headers and body
        (:mod:`debitura_async._client_send`).

        ``counters``: a caller's own tally (an ingestion run's), counted besides ``self.stats``.
        """
        return await _client_send.call(
            self,
            method,
            path,
            body=body,
            idempotency_key=idempotency_key,
            idempotent=idempotent,
            job_id=job_id,
            counters=counters,
        )
