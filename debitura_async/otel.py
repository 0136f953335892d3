"""OpenTelemetry spans and metrics for a :class:`~debitura_async.DebituraClient`.

Install the extra (``pip install 'debitura-async[otel]'``: the OpenTelemetry *API* only) and bring
your own SDK and exporters; then::

    from debitura_async.otel import instrument

    client = DebituraClient()
    instrument(client)          # the global providers; or tracer_provider=..., meter_provider=...

Spans (low-cardinality names; ids are attributes, never in names; never the API key, a header,
a body or a note's text):

* ``debitura.submit`` — one ``POST /ingestion-jobs`` with its retries (``debitura.job_id``,
  ``debitura.rows_queued``, ``debitura.body_bytes``); one ``debitura.attempt`` event per attempt.
* ``debitura.poll`` — one ``GET /ingestion-jobs/{jobId}`` with its retries (``debitura.job_id``,
  ``debitura.job.status``). The shared tracker's polls serve every waiter, so they are root spans
  (``debitura.poll.shared=true``) rather than children of whichever caller started the tracker.
* ``debitura.wait`` — a caller waiting for a job's terminal status (``debitura.job.polls``).
* ``debitura.ingest`` — one ingestion run (``debitura.run_id``, ``debitura.rows.<outcome>``).
* ``debitura.note`` and ``debitura.me`` — the synchronous calls.

Metrics (meter ``debitura_async``):

* ``debitura.client.requests`` (counter) — HTTP attempts by ``debitura.endpoint``,
  ``http.response.status_code`` (0 when the transport failed) and ``error.type``;
* ``debitura.client.rate_limited`` (counter) — 429 answers by endpoint;
* ``debitura.client.retries`` (counter) — attempts after the first, by endpoint;
* ``debitura.client.request.duration`` (histogram, s) — per attempt, by endpoint;
* ``debitura.job.polls`` (histogram) — polls a tracked job took, by ``debitura.job.outcome``;
* ``debitura.job.detection_delay`` (histogram, s) — per terminal job, an **upper bound** on how
  long it had been terminal before a poll saw it: from the start of the previous poll (which saw
  it unfinished) to the answer of the poll that saw it terminal. Jobs whose first poll already
  found them terminal are not recorded (no instant is known at which they were unfinished);
* ``debitura.ingest.rows`` (counter) — rows of finished ingestion runs by ``debitura.outcome``
  (``succeeded``, ``failed``, ``rejected``, ``unresolved``), added when each run ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

from ._version import __version__
from .hooks import Instrumentation, RequestEvent, ResponseEvent, SpanLike

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from .client import DebituraClient
    from .models import IngestionSummary

try:
    from opentelemetry import context as _otel_context
    from opentelemetry import metrics as _otel_metrics
    from opentelemetry import trace as _otel_trace
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "debitura_async.otel needs the OpenTelemetry API: pip install 'debitura-async[otel]' "
        "(and an OpenTelemetry SDK of your choice to export what it records)"
    ) from _exc

__all__ = ["SCOPE", "OpenTelemetryInstrumentation", "instrument"]

logger = logging.getLogger("debitura_async.otel")

SCOPE: Final = "debitura_async"
"""The instrumentation scope name of the tracer and the meter."""

_ROWS: Final = ("succeeded", "failed", "rejected", "unresolved")


class OpenTelemetryInstrumentation(Instrumentation):
    """Spans and metrics through the OpenTelemetry API (see the module docstring)."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer = _otel_trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = _otel_metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._requests = meter.create_counter(
            "debitura.client.requests", unit="{request}", description="HTTP attempts"
        )
        self._rate_limited = meter.create_counter(
            "debitura.client.rate_limited", unit="{response}", description="429 answers"
        )
        self._retries = meter.create_counter(
            "debitura.client.retries", unit="{request}", description="Attempts after the first"
        )
        self._duration = meter.create_histogram(
            "debitura.client.request.duration", unit="s", description="One HTTP attempt"
        )
        self._polls = meter.create_histogram(
            "debitura.job.polls", unit="{poll}", description="Polls a tracked job took"
        )
        self._detection = meter.create_histogram(
            "debitura.job.detection_delay",
            unit="s",
            description="Upper bound on how long a job was terminal before a poll saw it",
        )
        self._rows = meter.create_counter(
            "debitura.ingest.rows", unit="{row}", description="Rows of ingestion runs by outcome"
        )

    # -- the seam ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def span(
        self, name: str, attributes: Mapping[str, str | int | float | bool]
    ) -> Iterator[SpanLike]:
        parent = _otel_context.Context() if attributes.get("debitura.poll.shared") else None
        with self._tracer.start_as_current_span(
            name,
            context=parent,
            kind=_otel_trace.SpanKind.CLIENT
            if name != "debitura.ingest"
            else _otel_trace.SpanKind.INTERNAL,
            attributes=dict(attributes),
            record_exception=False,  # an exception's text may quote a server's error body
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                kind = type(exc).__name__
                span.set_attribute("error.type", kind)
                span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, kind))
                raise

    def job_ended(self, *, outcome: str, polls: int, detection_delay: float | None) -> None:
        attributes = {"debitura.job.outcome": outcome}
        self._polls.record(polls, attributes)
        if detection_delay is not None:
            self._detection.record(max(0.0, detection_delay), attributes)

    def ingest_finished(self, summary: IngestionSummary) -> None:
        for outcome in _ROWS:
            count = getattr(summary, f"rows_{outcome}")
            if count:
                self._rows.add(count, {"debitura.outcome": outcome})

    # -- event hooks ---------------------------------------------------------------------------

    def on_request(self, event: RequestEvent) -> None:
        """The ``request`` hook: counts retries."""
        try:
            if event.attempt > 1:
                self._retries.add(1, {"debitura.endpoint": event.endpoint})
        except Exception:  # a telemetry failure must never fail a request
            logger.exception("recording a request event failed")

    def on_response(self, event: ResponseEvent) -> None:
        """The ``response`` hook: request counts, 429s, durations, an event on the span."""
        try:
            attributes: dict[str, str | int] = {
                "debitura.endpoint": event.endpoint,
                "http.request.method": event.method,
                "http.response.status_code": event.status or 0,
            }
            if event.error is not None:
                attributes["error.type"] = event.error
            self._requests.add(1, attributes)
            self._duration.record(event.elapsed, {"debitura.endpoint": event.endpoint})
            if event.status == 429:
                self._rate_limited.add(1, {"debitura.endpoint": event.endpoint})
            span = _otel_trace.get_current_span()
            if span.is_recording():
                span.add_event(
                    "debitura.attempt",
                    {"debitura.attempt": event.attempt, **attributes},
                )
        except Exception:  # a telemetry failure must never fail a request
            logger.exception("recording a response event failed")


def instrument(
    client: DebituraClient,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OpenTelemetryInstrumentation:
    """Record ``client``'s spans and metrics through OpenTelemetry; returns the instrumentation.

    Providers default to the global ones (``opentelemetry.trace.set_tracer_provider`` ...).
    Adds a ``request`` and a ``response`` event hook (after any of yours) and installs itself as
    ``client.instrumentation``. Instrumenting a client twice raises ``RuntimeError``.
    """
    if isinstance(client.instrumentation, OpenTelemetryInstrumentation):
        raise RuntimeError("this client is instrumented already")  # noqa: TRY004 - a state error
    inst = OpenTelemetryInstrumentation(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    client.instrumentation = inst
    hooks = client.event_hooks
    hooks["request"] = (*hooks["request"], inst.on_request)
    hooks["response"] = (*hooks["response"], inst.on_response)
    return inst
