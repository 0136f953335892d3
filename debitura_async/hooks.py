"""Event hooks of :class:`~debitura_async.DebituraClient` (httpx-style), instrumentation seam.

Pass callables for the ``"request"`` and ``"response"`` events; each gets one frozen event per
HTTP attempt (so a retried call fires several), sync or async::

    seen: list[ResponseEvent] = []
    client = DebituraClient(event_hooks={"response": [seen.append]})

A :class:`RequestEvent` fires after the request budget let the attempt go and before it is sent;
a :class:`ResponseEvent` fires once the attempt has its answer: an HTTP status, or the transport
error (``status=None``, ``error`` its class name). Events carry the method, the path (ids in it,
no query), its low-cardinality ``endpoint`` (``"GET /ingestion-jobs/{jobId}"``), the attempt
number, the job id when the client knows it; never the API key, a header or a body.

**A hook that raises** stops that call: the exception propagates unchanged out of the client
method that made the request, and is not retried. A raising ``request`` hook means the attempt is
not sent; a raising ``response`` hook loses the answer (for a submit: the job may exist while the
caller gets the exception). In ``client.ingest()`` it ends the run like any unexpected error (it
is raised from the ``async with``); in the shared tracker it ends that job's tracking
(``handle.error``). Keep hooks cheap and catch your own errors if losing a result is worse.

:class:`Instrumentation` is the seam :mod:`debitura_async.otel` plugs into: the client calls its
no-op methods around operations (submit, poll, wait, ingest), so the core needs no tracing
library.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import attrs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .models import IngestionSummary

__all__ = [
    "EventHooks",
    "Instrumentation",
    "RequestEvent",
    "ResponseEvent",
    "SpanLike",
    "endpoint_of",
]


@attrs.frozen(kw_only=True)
class RequestEvent:
    """One HTTP attempt about to be sent."""

    method: str
    path: str
    """The request path with its ids, without host or query (``/ingestion-jobs/<id>``)."""
    endpoint: str
    """``method`` and the path template: ``"POST /ingestion-jobs"`` (low cardinality)."""
    attempt: int
    """1 for the first attempt, 2 for the first retry, ..."""
    job_id: uuid.UUID | None = None


@attrs.frozen(kw_only=True)
class ResponseEvent:
    """The answer of one HTTP attempt (a status) or why there was none (``error``)."""

    method: str
    path: str
    endpoint: str
    attempt: int
    status: int | None
    """The HTTP status; None when the transport failed (connect error, timeout, ...)."""
    elapsed: float
    """Seconds from sending to the answer (or the failure)."""
    error: str | None = None
    """The :mod:`~debitura_async.errors` class this attempt raises (``"RateLimitError"``,
    ``"ConnectError"``, ...), None for a 2xx."""
    retry_after: float | None = None
    """Seconds the server asked to wait (429/503), if it said."""
    job_id: uuid.UUID | None = None


Hook: TypeAlias = Callable[[Any], Awaitable[None] | None]
EventHooks: TypeAlias = Mapping[str, Sequence[Hook]]
"""``{"request": [...], "response": [...]}`` (either key may be left out)."""

_UUID_SEGMENT: Final = re.compile(
    r"/[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?=/|$)"
)


def endpoint_of(method: str, path: str) -> str:
    """The low-cardinality name of a request: ids replaced by placeholders.

    >>> endpoint_of("GET", "/ingestion-jobs/0b7e7c3e-3f5a-4c1e-9a43-1d2b3c4d5e6f")
    'GET /ingestion-jobs/{jobId}'
    >>> endpoint_of("POST", "/cases/0b7e7c3e-3f5a-4c1e-9a43-1d2b3c4d5e6f/notes")
    'POST /cases/{caseId}/notes'
    """
    path = path.split("?", 1)[0]
    if path.startswith("/ingestion-jobs/"):
        template = _UUID_SEGMENT.sub("/{jobId}", path)
    elif path.startswith("/cases/"):
        template = _UUID_SEGMENT.sub("/{caseId}", path)
    else:
        template = _UUID_SEGMENT.sub("/{id}", path)
    return f"{method} {template}"


def check_event_hooks(hooks: object) -> dict[str, tuple[Hook, ...]]:
    """Validate ``event_hooks=``: a mapping of ``"request"``/``"response"`` to callables."""
    result: dict[str, tuple[Hook, ...]] = {"request": (), "response": ()}
    if hooks is None:
        return result
    if not isinstance(hooks, Mapping):
        raise ConfigurationError(
            f"event_hooks must be a mapping like {{'response': [hook]}}, got {type(hooks).__name__}"
        )
    for name, value in hooks.items():
        if name not in result:
            raise ConfigurationError(
                f"unknown event hook {name!r}: the events are 'request' and 'response'"
            )
        if callable(value) or isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigurationError(f"event_hooks[{name!r}] must be a list of callables")
        for hook in value:
            if not callable(hook):
                raise ConfigurationError(
                    f"event_hooks[{name!r}] holds {hook!r}, which is not callable"
                )
        result[name] = tuple(value)
    return result


async def fire(hooks: Sequence[Hook], event: RequestEvent | ResponseEvent) -> None:
    """Call every hook with ``event`` in order, awaiting those that return an awaitable."""
    for hook in hooks:
        result = hook(event)
        if inspect.isawaitable(result):
            await result


async def emit_request(
    hooks: Sequence[Hook], method: str, path: str, attempt: int, job_id: uuid.UUID | None
) -> None:
    """Fire the ``request`` hooks for one attempt (the client's call, before sending)."""
    event = RequestEvent(
        method=method,
        path=path,
        endpoint=endpoint_of(method, path),
        attempt=attempt,
        job_id=job_id,
    )
    await fire(hooks, event)


async def emit_response(  # noqa: PLR0917 - the client's private call, positional on purpose
    hooks: Sequence[Hook],
    method: str,
    path: str,
    attempt: int,
    started: float,
    job_id: uuid.UUID | None,
    status: int | None,
    error: BaseException | None,
) -> None:
    """Fire the ``response`` hooks for one attempt: its status and/or the error it raises."""
    retry_after = getattr(error, "retry_after", None)
    event = ResponseEvent(
        method=method,
        path=path,
        endpoint=endpoint_of(method, path),
        attempt=attempt,
        status=status,
        elapsed=time.monotonic() - started,
        error=None if error is None else type(error).__name__,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        job_id=job_id,
    )
    await fire(hooks, event)


class SpanLike(Protocol):
    """What the client does with a span: an OpenTelemetry ``Span`` is one."""

    def set_attribute(self, key: str, value: str | bool | int | float) -> Any: ...


class _NoSpan:
    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        return None


_NO_SPAN: Final = _NoSpan()


class Instrumentation:
    """The no-op instrumentation every client starts with.

    Subclasses (:class:`debitura_async.otel.OpenTelemetryInstrumentation`) turn these calls into
    spans and metrics. Implementations must not raise: the client does not guard them.
    """

    @contextlib.contextmanager
    def span(
        self, name: str, attributes: Mapping[str, str | int | float | bool]
    ) -> Iterator[SpanLike]:
        """Around one operation (``debitura.submit``, ``debitura.poll``, ``debitura.wait``,
        ``debitura.ingest``, ``debitura.note``, ``debitura.me``)."""
        yield _NO_SPAN

    def job_ended(self, *, outcome: str, polls: int, detection_delay: float | None) -> None:
        """A tracked job is done: its terminal status name (or the error class ending its
        tracking), the polls it took, and the detection delay's upper bound (see the tracker)."""

    def ingest_finished(self, summary: IngestionSummary) -> None:
        """An ingestion run ended with this summary."""


NO_INSTRUMENTATION: Final = Instrumentation()
