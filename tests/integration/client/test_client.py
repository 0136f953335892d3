"""DebituraClient against the real emulator on 127.0.0.1: every method and error path."""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from debitura_async import (
    AsyncJobStatus,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    DebituraClient,
    IdempotencyConflictError,
    IngestionJobRow,
    JobWaitTimeout,
    NotFoundError,
    RateLimit,
    RateLimitError,
    RemoteProtocolError,
    RequestBudget,
    RequestTimeout,
    ServerError,
    Timeout,
    ValidationError,
)
from debitura_async.emulator import Emulator, EmulatorConfig, Fault, LatencyModel, RateLimits

from ..conftest import TIME_SCALE, fast_retry

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"
NOTES = "POST /cases/{id}/notes"


def rows_for(emu: Emulator, n: int, tag: str = "r") -> list[IngestionJobRow]:
    return [
        IngestionJobRow(
            emu.case_ids[i % len(emu.case_ids)], f"{tag} note {i}", external_ref=f"{tag}{i}"
        )
        for i in range(n)
    ]


async def request_counts(emu: Emulator, endpoint: str) -> dict[str, int]:
    stats = await emu.stats()
    counts: dict[str, int] = stats["requests"].get(endpoint, {})
    return counts


# -- happy paths -----------------------------------------------------------------------------------


async def test_create_wait_and_notes_stored(emulator: Emulator, client: DebituraClient) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    rows = [*rows_for(emulator, 3), IngestionJobRow(emulator.case_ids[0], "dated", event_date=past)]
    accepted = await client.create_ingestion_job(rows)
    assert accepted.rows_queued == 4

    status = await client.wait_for_ingestion_job(accepted.job_id, poll_interval=0.01, timeout=10)
    assert status.status is AsyncJobStatus.COMPLETED
    assert (status.rows_total, status.rows_succeeded, status.rows_failed) == (4, 4, 0)
    assert status.is_terminal

    notes = await emulator.notes(case_id=emulator.case_ids[0])
    by_desc = {n["description"]: n for n in notes}
    assert {"dated", "r note 0"} <= by_desc.keys()
    stored = datetime.fromisoformat(by_desc["dated"]["eventDate"].replace("Z", "+00:00"))
    assert abs(stored - past) < timedelta(milliseconds=1)
    assert by_desc["r note 0"]["externalRef"] == "r0"


async def test_camel_case_mappings_accepted(emulator: Emulator, client: DebituraClient) -> None:
    accepted = await client.create_ingestion_job(
        [{"type": 0, "caseId": str(emulator.case_ids[1]), "description": "from a dict"}]
    )
    status = await client.wait_for_ingestion_job(accepted.job_id, poll_interval=0.01, timeout=10)
    assert status.rows_succeeded == 1


async def test_per_row_failures_are_counted(emulator: Emulator, client: DebituraClient) -> None:
    rows = [
        IngestionJobRow(emulator.case_ids[0], "mine"),
        IngestionJobRow(uuid.uuid4(), "unknown case"),
        IngestionJobRow(emulator.other_partner_case_ids[0], "not my case"),
    ]
    accepted = await client.create_ingestion_job(rows)
    status = await client.wait_for_ingestion_job(accepted.job_id, poll_interval=0.01, timeout=10)
    assert status.status is AsyncJobStatus.COMPLETED_WITH_ERRORS
    assert (status.rows_succeeded, status.rows_failed) == (1, 2)


async def test_get_reports_progress_states(emulator: Emulator) -> None:
    # A slow-ish emulator (x20) so a 1000-row job is seen queued/in progress before it ends.
    async with (
        Emulator(EmulatorConfig(time_scale=20.0, seed=3)) as emu,
        DebituraClient(emu.api_key, base_url=emu.url) as client,
    ):
        accepted = await client.create_ingestion_job(rows_for(emu, 1000))
        first = await client.get_ingestion_job(accepted.job_id)
        assert first.status in (AsyncJobStatus.QUEUED, AsyncJobStatus.IN_PROGRESS)
        assert not first.is_terminal
        final = await client.wait_for_ingestion_job(str(accepted.job_id), poll_interval=0.05)
        assert final.rows_succeeded == 1000


async def test_me_returns_the_partner_behind_the_key(
    emulator: Emulator, client: DebituraClient
) -> None:
    me = await client.me()
    assert me.id == emulator.partners[0].id
    assert me.company_name == emulator.partners[0].name


async def test_add_case_note(emulator: Emulator, client: DebituraClient) -> None:
    when = datetime.now(UTC) - timedelta(hours=2)
    note = await client.add_case_note(emulator.case_ids[2], "Called the debtor.", event_date=when)
    assert note.description == "Called the debtor."
    assert note.id is not None
    assert note.event_date is not None
    assert abs(note.event_date - when) < timedelta(milliseconds=1)
    stored = await emulator.notes(case_id=emulator.case_ids[2])
    assert [n["description"] for n in stored] == ["Called the debtor."]


# -- validation before sending ---------------------------------------------------------------------


async def test_invalid_batch_lists_every_problem_and_sends_nothing(
    emulator: Emulator, client: DebituraClient
) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(ValidationError) as info:
        await client.create_ingestion_job(
            [
                IngestionJobRow(emulator.case_ids[0], "fine"),
                {"caseId": "nope", "description": "x"},
                IngestionJobRow(emulator.case_ids[0], ""),
                IngestionJobRow(emulator.case_ids[0], "later", event_date=future),
                {"caseId": str(emulator.case_ids[0]), "description": "t", "type": 1},
            ]
        )
    found = {(p.index, p.field) for p in info.value.problems}
    assert found == {(1, "caseId"), (2, "description"), (3, "eventDate"), (4, "type")}
    assert await request_counts(emulator, POST) == {}


@pytest.mark.parametrize("count", [0, 1001])
async def test_batch_size_limits(emulator: Emulator, client: DebituraClient, count: int) -> None:
    with pytest.raises(ValidationError, match="rows"):
        await client.create_ingestion_job(rows_for(emulator, count))
    assert await request_counts(emulator, POST) == {}


async def test_note_validation(emulator: Emulator, client: DebituraClient) -> None:
    with pytest.raises(ValidationError, match="description"):
        await client.add_case_note(emulator.case_ids[0], "x" * 10_001)
    with pytest.raises(ValidationError, match="eventDate"):
        await client.add_case_note(
            emulator.case_ids[0], "soon", event_date=datetime.now(UTC) + timedelta(hours=1)
        )
    with pytest.raises(ValidationError, match="eventDate"):
        await client.add_case_note(emulator.case_ids[0], "naive", event_date=datetime(2025, 1, 1))
    assert await request_counts(emulator, NOTES) == {}


# -- error statuses --------------------------------------------------------------------------------


async def test_wrong_key_raises_authentication_error_without_the_key(emulator: Emulator) -> None:
    secret = "not-a-real-key-1234567890"
    async with DebituraClient(secret, base_url=emulator.url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.me()
    err = info.value
    assert (err.status, err.method, err.path) == (401, "GET", "/me")
    for text in (str(err), repr(err), repr(err.body), repr(client)):
        assert secret not in text


async def test_unknown_and_foreign_jobs_are_not_found(emulator: Emulator) -> None:
    other_key = emulator.partners[1].api_key
    async with (
        DebituraClient(emulator.api_key, base_url=emulator.url) as mine,
        DebituraClient(other_key, base_url=emulator.url) as theirs,
    ):
        accepted = await mine.create_ingestion_job(rows_for(emulator, 1))
        missing = uuid.uuid4()
        with pytest.raises(NotFoundError) as info:
            await mine.get_ingestion_job(missing)
        assert info.value.job_id == missing
        assert info.value.path == f"/ingestion-jobs/{missing}"
        with pytest.raises(NotFoundError):
            await theirs.get_ingestion_job(accepted.job_id)
        with pytest.raises(NotFoundError):
            await theirs.add_case_note(emulator.case_ids[0], "not theirs")
    with pytest.raises(ValidationError, match="jobId"):
        await mine.get_ingestion_job("not-a-uuid")


async def test_idempotency_key_replays_and_conflicts(
    emulator: Emulator, client: DebituraClient
) -> None:
    rows = rows_for(emulator, 2)
    first = await client.create_ingestion_job(rows, idempotency_key="batch-0001")
    again = await client.create_ingestion_job(rows, idempotency_key="batch-0001")
    assert again.job_id == first.job_id
    with pytest.raises(IdempotencyConflictError) as info:
        await client.create_ingestion_job(rows[:1], idempotency_key="batch-0001")
    assert info.value.status == 422
    assert any(b.type == "IdempotencyConflict" for b in info.value.business_errors)
    stats = await emulator.stats()
    assert stats["jobs_created"] == 1
    assert stats["idempotent_replays"] == 1
    with pytest.raises(ValidationError, match="Idempotency-Key"):
        await client.create_ingestion_job(rows, idempotency_key="k" * 256)


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_post_retries_5xx_and_creates_one_job(emulator: Emulator, status: int) -> None:
    await emulator.add_fault(Fault(kind="http_error", count=2, status=status, endpoint=POST))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        await c.create_ingestion_job(rows_for(emulator, 2))
        assert c.stats.retries == 2
    stats = await emulator.stats()
    assert stats["jobs_created"] == 1
    assert stats["requests"][POST] == {str(status): 2, "202": 1}


async def test_retries_exhausted_raise_the_last_error(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="http_error", count=10, status=502, endpoint=GET))
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(max_retries=2)
    ) as c:
        with pytest.raises(ServerError) as info:
            await c.get_ingestion_job(uuid.uuid4())
    assert info.value.status == 502
    assert (await request_counts(emulator, GET)) == {"502": 3}


async def test_max_retries_zero_does_not_retry(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="http_error", count=1, status=503, endpoint=GET))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, max_retries=0) as c:
        with pytest.raises(ServerError):
            await c.get_ingestion_job(uuid.uuid4())
    assert (await request_counts(emulator, GET)) == {"503": 1}


async def test_dropped_connection_before_processing_is_retried(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="drop_before", count=2, endpoint=POST))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        accepted = await c.create_ingestion_job(rows_for(emulator, 3))
    jobs = await emulator.jobs()
    assert [j["jobId"] for j in jobs] == [str(accepted.job_id)]


async def test_drop_after_job_created_replays_instead_of_duplicating(emulator: Emulator) -> None:
    """The ambiguous case: the job exists but the 202 never arrived. The retry, with the same
    Idempotency-Key, must get the same job back."""
    await emulator.add_fault(Fault(kind="drop_after", count=1, endpoint=POST))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        accepted = await c.create_ingestion_job(rows_for(emulator, 3, tag="amb"))
        await c.wait_for_ingestion_job(accepted.job_id, poll_interval=0.01, timeout=10)
    stats = await emulator.stats()
    assert stats["jobs_created"] == 1
    assert stats["idempotent_replays"] == 1
    for i in range(3):
        assert len(await emulator.notes(external_ref=f"amb{i}")) == 1


async def test_ambiguous_failure_without_retries_surfaces_as_transport_error(
    emulator: Emulator,
) -> None:
    await emulator.add_fault(Fault(kind="drop_after", count=1, endpoint=POST))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, max_retries=0) as c:
        with pytest.raises(RemoteProtocolError) as info:
            await c.create_ingestion_job(rows_for(emulator, 1))
    assert (info.value.method, info.value.path) == ("POST", "/ingestion-jobs")
    assert not isinstance(info.value.__cause__, aiohttp.ClientResponseError)


async def test_note_is_not_retried_after_an_ambiguous_500(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="http_error", count=1, status=500, endpoint=NOTES))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        with pytest.raises(ServerError):
            await c.add_case_note(emulator.case_ids[0], "once")
        # 503 says "not processed": that one is retried.
        await emulator.add_fault(Fault(kind="http_error", count=1, status=503, endpoint=NOTES))
        note = await c.add_case_note(emulator.case_ids[0], "twice")
    assert note.description == "twice"
    assert (await request_counts(emulator, NOTES)) == {"500": 1, "503": 1, "200": 1}


@pytest.mark.parametrize("header", [True, False])
async def test_429_is_retried_after_the_servers_wait(header: bool) -> None:
    limits = RateLimits(per_minute=3, per_hour=None, per_day=None, retry_after_header=header)
    config = EmulatorConfig(time_scale=TIME_SCALE, rate_limits=limits, latency=LatencyModel.zero())
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url, budget=None, retry=fast_retry(8)) as c,
    ):
        for _ in range(6):
            await c.me()
        assert c.stats.rate_limited >= 1
        stats = await emu.stats()
    assert stats["requests"]["GET /me"]["200"] == 6
    assert stats["rate_limited"] == c.stats.rate_limited


async def test_429_without_retries_carries_retry_after(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="rate_limit", count=1, retry_after=2.0 * TIME_SCALE))
    async with DebituraClient(emulator.api_key, base_url=emulator.url, max_retries=0) as c:
        with pytest.raises(RateLimitError) as info:
            await c.me()
    assert info.value.retry_after == pytest.approx(2.0, abs=0.01)


async def test_a_429_pauses_every_request_of_the_client(emulator: Emulator) -> None:
    """After a 429 the whole budget waits out retryAfter, so the next call sends nothing early."""
    await emulator.add_fault(Fault(kind="rate_limit", count=1, retry_after=0.3 * TIME_SCALE))
    budget = RequestBudget([RateLimit(1000, 60.0)])
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, budget=budget, max_retries=0
    ) as c:
        with pytest.raises(RateLimitError):
            await c.me()
        assert budget.waited == 0.0
        await c.me()  # a different call: it must still wait for the pause
    assert budget.waited >= 0.25


async def test_client_budget_prevents_429s() -> None:
    limits = RateLimits(per_minute=20, per_hour=None, per_day=None)
    async with (
        Emulator(EmulatorConfig(time_scale=TIME_SCALE, rate_limits=limits)) as emu,
        DebituraClient(
            emu.api_key,
            base_url=emu.url,
            # A 0.3 s window: 20 % safety (60 ms) absorbs the event loop's latency under load,
            # since the server counts arrivals, not the client's send times.
            budget=RequestBudget([RateLimit(20, 60.0 / TIME_SCALE)], safety=0.2),
            max_retries=0,
        ) as c,
    ):
        for _ in range(50):
            await c.me()
        stats = await emu.stats()
    assert stats["rate_limited"] == 0
    assert stats["requests"]["GET /me"] == {"200": 50}


async def test_read_timeout_then_retry_without_duplicate(emulator: Emulator) -> None:
    await emulator.add_fault(Fault(kind="slow", count=1, delay=0.5 * TIME_SCALE, endpoint=POST))
    async with DebituraClient(
        emulator.api_key,
        base_url=emulator.url,
        timeout=Timeout(total=0.2, connect=1.0, read=0.2),
        retry=fast_retry(),
    ) as c:
        accepted = await c.create_ingestion_job(rows_for(emulator, 2, tag="slow"))
        assert c.stats.retries >= 1
        await c.wait_for_ingestion_job(accepted.job_id, poll_interval=0.01, timeout=10)
    # The slow first attempt is processed after its sleep: the server replays it, no second job.
    jobs = await emulator.jobs()
    assert [j["jobId"] for j in jobs] == [str(accepted.job_id)]


async def test_timeout_without_retries_is_request_timeout(emulator: Emulator) -> None:
    await emulator.add_fault(
        Fault(kind="slow", count=1, delay=0.5 * TIME_SCALE, endpoint="GET /me")
    )
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, timeout=0.1, max_retries=0
    ) as c:
        with pytest.raises(RequestTimeout):
            await c.me()


async def test_connection_refused_is_connect_error() -> None:
    with socket.socket() as sock:  # bound, never listening, held: no other process takes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with DebituraClient(
            "key", base_url=f"http://127.0.0.1:{port}", retry=fast_retry(max_retries=1)
        ) as c:
            with pytest.raises(ConnectError) as info:
                await c.me()
    assert c.stats.retries == 1
    assert isinstance(info.value.__cause__, OSError)


# -- waiting ---------------------------------------------------------------------------------------


async def test_wait_timeout_carries_last_status_and_does_not_fail_the_job() -> None:
    async with (
        Emulator(EmulatorConfig(time_scale=5.0)) as emu,
        DebituraClient(emu.api_key, base_url=emu.url) as client,
    ):
        accepted = await client.create_ingestion_job(rows_for(emu, 1000))
        with pytest.raises(JobWaitTimeout) as info:
            await client.wait_for_ingestion_job(accepted.job_id, poll_interval=0.05, timeout=0.2)
        assert info.value.job_id == accepted.job_id
        assert info.value.last_status is not None
        assert not info.value.last_status.is_terminal
        still = await client.get_ingestion_job(accepted.job_id)
        assert still.status is not AsyncJobStatus.FAILED


# -- configuration, sessions, logging --------------------------------------------------------------


async def test_injected_session_is_used_and_left_open(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with DebituraClient(emulator.api_key, base_url=emulator.url, session=session) as c:
            await c.me()
        assert not session.closed


async def test_env_configuration(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBITURA_API_KEY", emulator.api_key)
    monkeypatch.setenv("DEBITURA_BASE_URL", emulator.url)
    async with DebituraClient() as c:
        assert (await c.me()).id == emulator.partners[0].id


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http://"):
        DebituraClient("k", base_url="http://collectionpartner-api.debitura.com")
    DebituraClient("k", base_url="http://example.test", allow_insecure_http=True)


async def test_debug_log_has_one_line_per_attempt_and_no_secret(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    await emulator.add_fault(Fault(kind="http_error", count=1, status=503, endpoint="GET /me"))
    caplog.set_level(logging.DEBUG, logger="debitura_async")
    async with DebituraClient(emulator.api_key, base_url=emulator.url, retry=fast_retry()) as c:
        await c.me()
    lines = [r.getMessage() for r in caplog.records if r.name == "debitura_async"]
    assert any("GET /me -> 503 attempt=1" in line for line in lines)
    assert any("GET /me -> 200 attempt=2" in line for line in lines)
    assert all(emulator.api_key not in r.getMessage() for r in caplog.records)
    assert emulator.api_key not in caplog.text
