"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporters, for a run
with retries (503s on submits) and a 429 (on a poll) against the real emulator."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from debitura_async import DebituraClient, IngestionJobRow, PollPolicy
from debitura_async.emulator import Emulator, EmulatorConfig, Fault
from debitura_async.hooks import ResponseEvent
from debitura_async.otel import OpenTelemetryInstrumentation, instrument

from .conftest import TIME_SCALE, fast_retry

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOTE_TEXT = "Debtor promised to pay on Friday"


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: object) -> float:
        return float(
            sum(
                p.value
                for p in self.points(name)
                if all(p.attributes.get(k) == v for k, v in attributes.items())
            )
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def rows(emu: Emulator, n: int, tag: str) -> list[IngestionJobRow]:
    return [
        IngestionJobRow(emu.case_ids[i % 10], f"{NOTE_TEXT} ({tag}{i})", external_ref=f"{tag}{i}")
        for i in range(n)
    ]


def all_strings(span: ReadableSpan) -> list[str]:
    texts = [span.name, str(span.status.description or "")]
    texts += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        texts.append(event.name)
        texts += [str(v) for v in (event.attributes or {}).values()]
    return texts


async def test_a_run_with_retries_and_a_429(emu: Emulator, telemetry: Telemetry) -> None:
    # Two 503s on submits (two retries), then one 429 on a poll (a third retry).
    await emu.add_fault(Fault(kind="http_error", count=2, status=503, endpoint=POST))
    await emu.add_fault(
        Fault(kind="rate_limit", count=1, retry_after=0.05 * TIME_SCALE, endpoint=GET)
    )
    async with DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        polling=PollPolicy.fixed(0.02),
    ) as client:
        instrument(
            client,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        summary = await client.ingest_all(rows(emu, 30, "a"), batch_size=10)
        handle = await client.submit(rows(emu, 5, "b"))
        await handle.wait(timeout=30)
        stats = client.stats

    assert summary.rows_succeeded == 30
    server = await emu.stats()
    assert server["requests"][POST] == {"503": 2, "202": 4}
    assert server["requests"][GET]["429"] == 1

    spans = telemetry.finished()
    names = {s.name for s in spans}
    assert names == {"debitura.submit", "debitura.poll", "debitura.wait", "debitura.ingest"}
    job_ids = {str(j["jobId"]) for j in await emu.jobs()}
    for span in spans:
        assert not UUID_RE.search(span.name)
        for text in all_strings(span):
            assert emu.api_key not in text
            assert NOTE_TEXT not in text

    submits = [s for s in spans if s.name == "debitura.submit"]
    assert len(submits) == 4
    assert {s.attributes["debitura.job_id"] for s in submits} == job_ids  # type: ignore[index]
    attempts = [len(s.events) for s in submits]
    assert sorted(attempts) == [1, 1, 1, 3] or sorted(attempts) == [1, 1, 2, 2]
    (ingest,) = [s for s in spans if s.name == "debitura.ingest"]
    assert ingest.attributes is not None
    assert ingest.attributes["debitura.rows.succeeded"] == 30
    assert ingest.attributes["debitura.retries"] >= 2  # type: ignore[operator]
    ingest_submits = [s for s in submits if s.parent is not None]
    assert all(
        s.parent.span_id == ingest.context.span_id  # type: ignore[union-attr]
        for s in ingest_submits
        if s.context.trace_id == ingest.context.trace_id
    )
    polls = [s for s in spans if s.name == "debitura.poll"]
    assert all(s.parent is None for s in polls)  # shared polls are roots
    assert {s.attributes["debitura.job_id"] for s in polls} == job_ids  # type: ignore[index]
    limited = [
        s
        for s in polls
        if any((e.attributes or {}).get("http.response.status_code") == 429 for e in s.events)
    ]
    assert len(limited) == 1
    (wait,) = [s for s in spans if s.name == "debitura.wait" and s.parent is None]
    assert wait.attributes is not None
    assert wait.attributes["debitura.job_id"] == str(handle.job_id)
    assert wait.attributes["debitura.job.status"] == "COMPLETED"

    assert telemetry.total("debitura.client.requests", **{"debitura.endpoint": POST}) == 6
    assert (
        telemetry.total(
            "debitura.client.requests",
            **{"debitura.endpoint": POST, "http.response.status_code": 503},
        )
        == 2
    )
    assert telemetry.total("debitura.client.requests", **{"error.type": "RateLimitError"}) == 1
    assert telemetry.total("debitura.client.rate_limited") == 1
    assert telemetry.total("debitura.client.retries") == 3 == stats.retries
    assert telemetry.total("debitura.client.requests") == stats.requests
    assert telemetry.total("debitura.ingest.rows", **{"debitura.outcome": "succeeded"}) == 30
    (polls_per_job,) = telemetry.points("debitura.job.polls")
    assert polls_per_job.attributes == {"debitura.job.outcome": "COMPLETED"}
    assert polls_per_job.count == 4
    assert polls_per_job.sum == stats.gets - 1  # every answered poll, not the 429
    for point in telemetry.points("debitura.job.detection_delay"):
        assert point.min >= 0
        assert point.max < 30


async def test_detection_delay_is_bounded_by_the_poll_interval(telemetry: Telemetry) -> None:
    """Jobs that take several polls record a delay no longer than the gap between two polls
    (plus one poll's round trip)."""
    async with (
        Emulator(EmulatorConfig(time_scale=20.0, seed=9)) as emu,  # 200 rows: ~0.3-0.4 s
        DebituraClient(
            emu.api_key, base_url=emu.url, polling=PollPolicy.fixed(0.05), budget=None
        ) as client,
    ):
        instrument(client, meter_provider=telemetry.meter_provider)
        handles = [await client.submit(rows(emu, 200, f"d{i}-")) for i in range(3)]
        for handle in handles:
            await handle.wait(timeout=60)
    delays = [h.detection_delay for h in handles]
    polls = [h.polls for h in handles]
    assert all(p >= 2 for p in polls), polls
    assert all(d is not None and 0 < d < 1.0 for d in delays), delays
    (point,) = telemetry.points("debitura.job.detection_delay")
    assert point.count == 3
    assert point.sum == pytest.approx(sum(d for d in delays if d is not None))


async def test_failed_operation_spans_carry_the_error_type_but_not_its_text(
    emu: Emulator, telemetry: Telemetry
) -> None:
    await emu.add_fault(Fault(kind="http_error", count=5, status=502, endpoint="GET /me"))
    async with DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(1)) as client:
        instrument(client, tracer_provider=telemetry.tracer_provider)
        with pytest.raises(Exception, match="502"):
            await client.me()
    (span,) = telemetry.finished()
    assert span.name == "debitura.me"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ServerError"
    assert span.status.description == "ServerError"
    assert [e.name for e in span.events] == ["debitura.attempt", "debitura.attempt"]


async def test_instrumentation_keeps_the_users_hooks_and_refuses_a_second_install(
    emu: Emulator, telemetry: Telemetry
) -> None:
    mine: list[ResponseEvent] = []
    async with DebituraClient(
        emu.api_key, base_url=emu.url, event_hooks={"response": [mine.append]}
    ) as client:
        inst = instrument(client, meter_provider=telemetry.meter_provider)
        assert isinstance(client.instrumentation, OpenTelemetryInstrumentation)
        assert client.instrumentation is inst
        with pytest.raises(RuntimeError, match="instrumented already"):
            instrument(client)
        await client.me()
    assert len(mine) == 1
    assert telemetry.total("debitura.client.requests", **{"debitura.endpoint": "GET /me"}) == 1


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_core_does_not_import_opentelemetry() -> None:
    result = run_python(
        "import sys, debitura_async, debitura_async.client, debitura_async.hooks\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    assert result.returncode == 0, result.stderr


def test_without_the_extra_the_error_says_what_to_install() -> None:
    result = run_python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the package were not installed\n"
        "import debitura_async.otel\n"
    )
    assert result.returncode == 1
    assert "pip install 'debitura-async[otel]'" in result.stderr
