"""client.ingest() against the real emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debitura_async import (
    AuthenticationError,
    DebituraClient,
    IngestionJobRow,
    ValidationError,
)
from debitura_async._batching import Batch
from debitura_async._polling import PollPolicy
from debitura_async.emulator import Emulator, EmulatorConfig, Fault
from debitura_async.ingest import Ingestion, JournalEntry
from debitura_async.models import IngestionSummary, IngestProgress, JobOutcome, JobResult

from ..conftest import TIME_SCALE, collect_resource_warnings, fast_retry, no_leaked_tasks

pytestmark = pytest.mark.anyio

POLICY = PollPolicy().scaled(TIME_SCALE)


def assert_invariants(summary: IngestionSummary) -> None:
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == (
        summary.rows_succeeded + summary.rows_failed + summary.rows_unresolved
    )


def mixed_rows(emu: Emulator, n: int, seed: int = 1) -> tuple[list[Any], list[str]]:
    """Rows of every kind, and the kind of each row."""
    rng = random.Random(seed)
    future = datetime.now(UTC) + timedelta(days=30)
    kinds: list[str] = []
    rows: list[Any] = []
    for i in range(n):
        kind = rng.choice(["valid"] * 6 + ["unknown", "foreign", "future", "bad_uuid", "type1"])
        kinds.append(kind)
        case = rng.choice(emu.case_ids)
        if kind == "valid":
            rows.append(IngestionJobRow(case, f"note {i}", external_ref=f"ref-{i}"))
        elif kind == "unknown":
            rows.append({"caseId": str(uuid.uuid4()), "description": f"note {i}"})
        elif kind == "foreign":
            rows.append(IngestionJobRow(rng.choice(emu.other_partner_case_ids), f"note {i}"))
        elif kind == "future":
            rows.append(IngestionJobRow(case, f"note {i}", event_date=future))
        elif kind == "bad_uuid":
            rows.append({"caseId": f"CASE-{i}", "description": "x"})
        else:
            rows.append({"caseId": str(case), "description": "x", "type": 1})
    return rows, kinds


async def drain(ingestion: Ingestion) -> list[JobResult]:
    out = []
    async with ingestion as results:
        async for result in results:
            out.append(result)
    return out


async def test_mixed_rows_exact_counts(emulator: Emulator, client: DebituraClient) -> None:
    rows, kind_of = mixed_rows(emulator, 2500)
    kinds = Counter(kind_of)
    results = await drain(client.ingest(rows, polling=POLICY, batch_size=300))
    summary = sum_results(results)
    assert summary["rejected"] == kinds["future"] + kinds["bad_uuid"] + kinds["type1"]
    assert summary["succeeded"] == kinds["valid"]
    assert summary["failed"] == kinds["unknown"] + kinds["foreign"]
    assert summary["unresolved"] == 0
    # each rejected row is reported one by one, with its position and the field at fault
    rejected = [r for r in results if r.outcome is JobOutcome.REJECTED]
    assert all(r.row_count == 1 and r.job_id is None for r in rejected)
    fields = Counter(r.rejected_rows[0].problems[0].split(":")[0] for r in rejected)
    assert fields == Counter(
        {"eventDate": kinds["future"], "caseId": kinds["bad_uuid"], "type": kinds["type1"]}
    )
    for r in rejected:
        assert kind_of[r.first_position] in ("future", "bad_uuid", "type1")
        assert r.rejected_rows[0].position == r.first_position
    # the emulator stored exactly the valid notes, once each
    assert await emulator.note_count() == kinds["valid"]
    jobs = [r for r in results if r.job_id is not None]
    assert len({r.job_id for r in jobs}) == len(jobs)


def sum_results(results: list[JobResult]) -> Counter[str]:
    total: Counter[str] = Counter()
    for r in results:
        total["succeeded"] += r.rows_succeeded
        total["failed"] += r.rows_failed
        if r.outcome is JobOutcome.REJECTED:
            total["rejected"] += r.row_count
        if r.outcome is JobOutcome.UNRESOLVED:
            total["unresolved"] += r.row_count
    return total


async def test_summary_matches_results(emulator: Emulator, client: DebituraClient) -> None:
    rows, kind_of = mixed_rows(emulator, 1200, seed=5)
    kinds = Counter(kind_of)
    async with client.ingest(rows, polling=POLICY) as results:
        seen = [r async for r in results]
    summary = results.summary
    assert_invariants(summary)
    totals = sum_results(seen)
    assert summary.rows_read == 1200
    assert summary.rows_succeeded == totals["succeeded"] == kinds["valid"]
    assert summary.rows_failed == totals["failed"]
    assert summary.rows_rejected == totals["rejected"]
    assert summary.posts == summary.jobs.get(JobOutcome.COMPLETED_WITH_ERRORS, 0) + (
        summary.jobs.get(JobOutcome.COMPLETED, 0)
    )
    assert summary.requests == summary.posts + summary.polls


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([Fault(kind="rate_limit", probability=0.3, retry_after=0.5)], id="429"),
        pytest.param(
            [
                Fault(kind="http_error", probability=0.2, status=503),
                Fault(kind="http_error", probability=0.1, status=500),
            ],
            id="5xx",
        ),
        pytest.param([Fault(kind="drop_before", probability=0.25)], id="drop-before"),
        pytest.param(
            [Fault(kind="drop_after", probability=0.3, endpoint="POST /ingestion-jobs")],
            id="drop-after-created",
        ),
        pytest.param(
            [
                Fault(kind="drop_after", probability=0.2, endpoint="POST /ingestion-jobs"),
                Fault(kind="http_error", probability=0.1, status=502),
                Fault(kind="rate_limit", probability=0.1, retry_after=0.5),
                Fault(kind="drop_before", probability=0.1),
            ],
            id="mixed",
        ),
    ],
)
async def test_faults_store_every_note_exactly_once(faults: list[Fault]) -> None:
    config = EmulatorConfig(time_scale=TIME_SCALE, seed=3, faults=tuple(faults))
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(10)) as client,
    ):
        rows = [
            IngestionJobRow(emu.case_ids[i % 50], f"n{i}", external_ref=f"x{i}")
            for i in range(3000)
        ]
        summary = await client.ingest_all(rows, polling=POLICY, batch_size=250)
        assert_invariants(summary)
        assert summary.rows_succeeded == 3000, summary
        notes = await emu.notes()
        refs = Counter(n["externalRef"] for n in notes)
        assert len(refs) == 3000
        assert set(refs.values()) == {1}
        stats = await emu.stats()
        assert stats["jobs_created"] == 12
        assert summary.retries > 0


async def test_job_level_failure_and_vanished_job(
    emulator: Emulator, client: DebituraClient
) -> None:
    rows = [IngestionJobRow(emulator.case_ids[i % 9], f"n{i}") for i in range(20)]
    await emulator.add_fault(Fault(kind="job_failed", count=1))
    failed_run = await drain(client.ingest(rows, polling=POLICY, batch_size=10))
    await emulator.add_fault(Fault(kind="job_vanish", count=1, after=0.0))
    vanish_run = await drain(client.ingest(rows, polling=POLICY, batch_size=10))

    assert Counter(r.outcome for r in failed_run) == {JobOutcome.FAILED: 1, JobOutcome.COMPLETED: 1}
    failed = next(r for r in failed_run if r.outcome is JobOutcome.FAILED)
    assert failed.rows_failed == 10
    assert failed.job_id is not None

    assert Counter(r.outcome for r in vanish_run) == {
        JobOutcome.UNRESOLVED: 1,
        JobOutcome.COMPLETED: 1,
    }
    vanished = next(r for r in vanish_run if r.outcome is JobOutcome.UNRESOLVED)
    assert vanished.job_id is not None
    assert vanished.idempotency_key is not None
    assert "404" in str(vanished.error)


async def test_deadline_reports_accepted_jobs_unresolved_with_ids() -> None:
    async with (
        Emulator(EmulatorConfig(time_scale=2.0)) as emu,
        DebituraClient(emu.api_key, base_url=emu.url) as client,
    ):
        rows = (IngestionJobRow(emu.case_ids[i % 20], f"n{i}") for i in range(50_000))
        # 2 s: long enough for a first POST to be answered on a loaded machine, far shorter than
        # a 1000-row job at 2x (13 s), so the accepted jobs are still running at the deadline
        async with client.ingest(rows, deadline=2.0, max_jobs_in_flight=3) as results:
            seen = [r async for r in results]
        summary = results.summary
        assert_invariants(summary)
        unresolved = [r for r in seen if r.outcome is JobOutcome.UNRESOLVED]
        with_ids = [r for r in unresolved if r.job_id is not None]
        assert 1 <= len(with_ids) <= 3  # max_jobs_in_flight
        jobs = {j["jobId"] for j in await emu.jobs()}
        assert {str(r.job_id) for r in with_ids} <= jobs
        # A POST still in flight at the deadline may have created its job unseen: such a batch is
        # UNRESOLVED without a job id but with its Idempotency-Key, which a resume replays.
        in_flight_posts = [r for r in unresolved if r.job_id is None and r.idempotency_key]
        assert len(jobs) <= len(with_ids) + len(in_flight_posts)
        assert summary.rows_read < 50_000
        assert no_leaked_tasks() == []


async def test_breaking_out_stops_everything(emulator: Emulator, client: DebituraClient) -> None:
    reads = 0

    def rows() -> Iterator[IngestionJobRow]:
        nonlocal reads
        for i in range(100_000):
            reads += 1
            yield IngestionJobRow(emulator.case_ids[i % 10], f"n{i}")

    async with client.ingest(rows(), polling=POLICY, batch_size=100) as results:
        async for _ in results:
            break
    summary = results.summary
    assert_invariants(summary)
    assert reads < 100_000
    assert summary.rows_read == reads
    assert no_leaked_tasks() == []
    assert collect_resource_warnings() == []


@pytest.mark.parametrize("attempt", range(6))
async def test_cancellation_leaves_nothing_behind(
    emulator: Emulator, client: DebituraClient, attempt: int
) -> None:
    """Repeated: a poll cancelled before its first step once left the poll loop waiting for it
    forever (about one run in six)."""
    started = asyncio.Event()
    holder: dict[str, Ingestion] = {}

    async def consume() -> None:
        rows = (IngestionJobRow(emulator.case_ids[0], f"n{i}") for i in range(100_000))
        async with client.ingest(rows, polling=POLICY, batch_size=100) as results:
            holder["ingestion"] = results
            async for _ in results:
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_invariants(holder["ingestion"].summary)
    assert no_leaked_tasks() == []


async def test_async_iterable_input(emulator: Emulator, client: DebituraClient) -> None:
    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(1500):
            if i % 500 == 0:
                await asyncio.sleep(0)
            yield {"case_id": str(emulator.case_ids[i % 7]), "description": f"a{i}"}

    summary = await client.ingest_all(rows(), polling=POLICY)
    assert summary.rows_succeeded == 1500
    assert summary.posts == 2


async def test_on_invalid_raise_with_a_list_sends_nothing(
    emulator: Emulator, client: DebituraClient
) -> None:
    rows: list[Any] = [IngestionJobRow(emulator.case_ids[0], f"n{i}") for i in range(2500)]
    rows[2100] = {"caseId": "bad", "description": "x"}
    with pytest.raises(ValidationError) as info:
        await client.ingest_all(rows, on_invalid="raise", polling=POLICY)
    assert [(p.index, p.field) for p in info.value.problems] == [(2100, "caseId")]
    assert (await emulator.stats())["requests"] == {}


async def test_on_invalid_raise_with_a_stream_stops_at_the_bad_row(
    emulator: Emulator, client: DebituraClient
) -> None:
    def rows() -> Iterator[Any]:
        for i in range(2500):
            yield {"caseId": "bad"} if i == 2100 else IngestionJobRow(emulator.case_ids[0], "n")

    with pytest.raises(ValidationError, match="row 2100: description"):
        await client.ingest_all(rows(), on_invalid="raise", polling=POLICY)
    assert await emulator.note_count() <= 2000


async def test_authentication_error_stops_the_run_and_is_raised_plainly(
    emulator: Emulator,
) -> None:
    async with DebituraClient("wrong-key", base_url=emulator.url) as client:
        rows = (IngestionJobRow(emulator.case_ids[0], "n") for _ in range(100_000))
        results = client.ingest(rows, polling=POLICY)
        with pytest.raises(AuthenticationError):
            await drain(results)
    assert results.summary.rows_read < 100_000
    assert no_leaked_tasks() == []


async def test_server_side_400_isolates_the_named_rows(
    emulator: Emulator, client: DebituraClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows the client cannot catch but the server refuses: switch the client's check off and let
    the real emulator refuse blank descriptions; the rest of the batch must still go in."""
    import debitura_async._validate as validate_module

    monkeypatch.setattr(validate_module, "row_problems", lambda *a, **k: [])
    rows = [
        IngestionJobRow(emulator.case_ids[0], "" if i in (3, 77) else f"n{i}") for i in range(100)
    ]
    results = await drain(client.ingest(rows, polling=POLICY))
    rejected = sorted(r.first_position for r in results if r.outcome is JobOutcome.REJECTED)
    assert rejected == [3, 77]
    assert all("description" in r.rejected_rows[0].problems[0] for r in results if r.rejected_rows)
    assert sum(r.rows_succeeded for r in results) == 98
    assert await emulator.note_count() == 98
    # the refusal came from the server (the client's own check was switched off)
    assert all(r.idempotency_key is not None for r in results if r.rejected_rows)
    stats = await emulator.stats()
    assert stats["requests"]["POST /ingestion-jobs"] == {"400": 1, "202": 1}


async def test_413_bisects_until_batches_fit() -> None:
    config = EmulatorConfig(time_scale=TIME_SCALE, max_body_bytes=20_000)
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url) as client,
    ):
        rows = [
            IngestionJobRow(emu.case_ids[0], "y" * 150, external_ref=f"b{i}") for i in range(400)
        ]
        summary = await client.ingest_all(rows, polling=POLICY)
        assert summary.rows_succeeded == 400
        stats = await emu.stats()
        assert stats["requests"]["POST /ingestion-jobs"].get("413", 0) >= 1
        assert await emu.note_count() == 400


async def test_backpressure_bounds_what_is_read(
    instant_emulator: Emulator,
) -> None:
    reads = 0

    def rows() -> Iterator[IngestionJobRow]:
        nonlocal reads
        for i in range(10_000):
            reads += 1
            yield IngestionJobRow(instant_emulator.case_ids[0], f"n{i}")

    async with (
        DebituraClient(instant_emulator.api_key, base_url=instant_emulator.url) as client,
        client.ingest(
            rows(), batch_size=10, max_jobs_in_flight=2, result_buffer=1, polling=POLICY
        ) as results,
    ):
        first = await anext(results)
        assert first.outcome is JobOutcome.COMPLETED
        await asyncio.sleep(0.3)  # a consumer that stops reading
        # in flight (2) + buffered (1) + being delivered (1) + one being formed: nothing more
        assert reads <= 10 * 6


async def test_progress_callback(emulator: Emulator, client: DebituraClient) -> None:
    seen: list[IngestProgress] = []
    rows = [IngestionJobRow(emulator.case_ids[0], f"n{i}") for i in range(2000)]
    summary = await client.ingest_all(
        rows, polling=POLICY, on_progress=seen.append, progress_interval=0.0
    )
    assert seen, "on_progress was never called"
    last = seen[-1]
    assert last.rows_succeeded == summary.rows_succeeded == 2000
    assert last.jobs_in_flight == 0
    assert all(a.rows_read <= b.rows_read for a, b in itertools.pairwise(seen))


async def test_hundred_thousand_rows() -> None:
    config = EmulatorConfig(time_scale=2000.0, store_notes=False)
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url) as client,
    ):
        rows = (IngestionJobRow(emu.case_ids[i % 100], f"n{i}") for i in range(100_000))
        summary = await client.ingest_all(rows, polling=PollPolicy().scaled(2000.0))
        assert summary.rows_succeeded == 100_000
        assert summary.posts == 100
        stats = await emu.stats()
        assert stats["jobs_created"] == 100
        assert stats["notes"] == 100_000


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(
        st.sampled_from(["valid", "unknown", "bad_uuid", "empty", "future"]),
        min_size=0,
        max_size=180,
    ),
    fault_seed=st.integers(0, 2**16),
    batch_size=st.integers(1, 60),
    deadline=st.sampled_from([None, None, 0.05]),
)
async def test_summary_invariants_hold_for_any_input_and_faults(
    kinds: list[str], fault_seed: int, batch_size: int, deadline: float | None
) -> None:
    faults = (
        Fault(kind="http_error", probability=0.1, status=503),
        Fault(kind="drop_after", probability=0.1, endpoint="POST /ingestion-jobs"),
        Fault(kind="rate_limit", probability=0.05, retry_after=0.2),
        Fault(kind="job_failed", probability=0.05),
    )
    config = EmulatorConfig(time_scale=1000.0, seed=fault_seed, faults=faults, cases_per_partner=5)
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(8)) as client,
    ):
        future = datetime.now(UTC) + timedelta(days=1)
        rows: list[Any] = []
        for i, kind in enumerate(kinds):
            if kind == "valid":
                rows.append(IngestionJobRow(emu.case_ids[i % 5], f"v{i}", external_ref=f"v{i}"))
            elif kind == "unknown":
                rows.append(IngestionJobRow(uuid.uuid4(), f"u{i}"))
            elif kind == "bad_uuid":
                rows.append({"caseId": "x", "description": "d"})
            elif kind == "empty":
                rows.append(IngestionJobRow(emu.case_ids[0], ""))
            else:
                rows.append(IngestionJobRow(emu.case_ids[0], "f", event_date=future))
        async with client.ingest(
            rows, batch_size=batch_size, deadline=deadline, polling=PollPolicy().scaled(1000.0)
        ) as results:
            seen = [r async for r in results]
        summary = results.summary
        assert_invariants(summary)
        refs = Counter(n["externalRef"] for n in await emu.notes() if n["externalRef"])
        assert all(count == 1 for count in refs.values()), "a note was stored twice"
        if deadline is None:
            assert summary.rows_read == len(rows)
            assert summary.rows_unresolved == 0
            # only valid rows carry a ref and can succeed: stored notes == succeeded rows
            assert len(refs) == summary.rows_succeeded
            if batch_size == 1:
                covered = sorted(r.first_position for r in seen)
                assert covered == list(range(len(rows)))
        else:
            assert len(refs) >= summary.rows_succeeded


class SlowJournal:
    """An in-memory IngestJournal; its n-th acceptance write takes ``slow_accept`` seconds, as a
    SQLite commit may on a busy disk."""

    def __init__(self, *, slow_accept: dict[int, float] | None = None) -> None:
        self.slow_accept = slow_accept or {}
        self.accepts = 0
        self.entries: dict[str, JournalEntry] = {}

    async def lookup(self, idempotency_key: str) -> JournalEntry | None:
        return self.entries.get(idempotency_key)

    async def batch_submitting(self, batch: Batch, idempotency_key: str) -> None:
        self.entries[idempotency_key] = JournalEntry(state="submitting")

    async def batch_accepted(self, idempotency_key: str, job_id: uuid.UUID) -> None:
        self.accepts += 1
        await asyncio.sleep(self.slow_accept.get(self.accepts, 0.0))
        self.entries[idempotency_key] = JournalEntry(state="accepted", job_id=job_id)

    async def batch_finished(self, result: JobResult) -> None:
        assert result.idempotency_key is not None
        self.entries[result.idempotency_key] = JournalEntry(
            state="finished", job_id=result.job_id, result=result
        )


async def test_slow_journal_writes_lose_no_job(instant_emulator: Emulator) -> None:
    """Regression: while the last batch's acceptance was being journaled, the first job finished
    and the poll loop, seeing no work left, ended: the last job was reported UNRESOLVED."""
    journal = SlowJournal(slow_accept={2: 0.3})
    rows = [IngestionJobRow(instant_emulator.case_ids[0], f"n{i}") for i in range(20)]
    async with DebituraClient(instant_emulator.api_key, base_url=instant_emulator.url) as client:
        options: dict[str, Any] = {
            "batch_size": 10,
            "max_concurrent_submits": 1,
            "journal": journal,
            "polling": POLICY,
            "run_id": "slowjournal",
        }
        summary = await client.ingest_all(rows, **options)
        assert summary.rows_unresolved == 0
        assert summary.rows_succeeded == 20
        assert [e.state for e in journal.entries.values()] == ["finished", "finished"]
        # the same run again replays everything from the journal and sends nothing
        posts_before = client.stats.posts
        again = await client.ingest_all(rows, **options)
        assert again.rows_succeeded == 20
        assert client.stats.posts == posts_before


async def test_a_dead_server_stops_the_sending_not_the_accounting() -> None:
    """After ``max_failed_submits`` batches in a row fail even after retries, nothing more is
    sent; the rest of the input is still read and reported UNRESOLVED at once (resumable)."""
    config = EmulatorConfig(
        time_scale=TIME_SCALE, faults=(Fault(kind="http_error", probability=1.0, status=503),)
    )
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(2)) as client,
    ):
        rows = [IngestionJobRow(emu.case_ids[0], f"n{i}") for i in range(2000)]
        async with client.ingest(
            rows, batch_size=10, max_concurrent_submits=1, polling=POLICY
        ) as results:
            seen = [r async for r in results]
        summary = results.summary
        assert_invariants(summary)
        assert summary.rows_read == 2000
        assert summary.rows_unresolved == 2000
        assert len(seen) == 200
        assert all(r.outcome is JobOutcome.UNRESOLVED for r in seen)
        # three batches spent their retries (3 attempts each); the other 197 were never sent
        assert summary.posts == 9
        assert sum("not sent" in str(r.error) for r in seen) == 197
        stats = await emu.stats()
        assert stats["requests"]["POST /ingestion-jobs"] == {"503": 9}
