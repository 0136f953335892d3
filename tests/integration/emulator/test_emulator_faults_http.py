"""Fault injection over real sockets: every fault kind, by count and by seeded probability."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from debitura_async.emulator import Fault, FaultKind, LatencyModel, RateLimits
from tests.integration.emulator.emulator_support import (
    assert_error_body,
    fast_config,
    note_rows,
    post_job,
    request,
    serving,
    wait_terminal,
)

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_http_error_fault_answers_status_without_processing(status: int) -> None:
    fault = Fault(kind=FaultKind.HTTP_ERROR, count=1, endpoint=POST, status=status)
    async with serving(fast_config(faults=(fault,))) as (emu, session):
        got, body, _ = await post_job(emu, session, note_rows(emu.case_ids[:1]))
        assert got == status
        assert_error_body(body)
        assert (await emu.stats())["jobs_created"] == 0
        assert (await post_job(emu, session, note_rows(emu.case_ids[:1])))[0] == 202
        stats = await emu.stats()
        assert stats["faults"] == {"http_error": 1}
        assert stats["requests"][POST] == {str(status): 1, "202": 1}


async def test_rate_limit_fault_does_not_consume_budget() -> None:
    fault = Fault(kind=FaultKind.RATE_LIMIT, count=2, endpoint="GET /me", retry_after=3.0)
    limits = RateLimits(per_minute=1, per_hour=None, per_day=None)
    config = fast_config(faults=(fault,), rate_limits=limits, time_scale=10.0)
    async with serving(config) as (emu, session):
        for _ in range(2):
            status, body, resp_headers = await request(
                session, "GET", emu.url + "/me", key=emu.api_key
            )
            assert status == 429
            assert body["error"] == "rate_limit_exceeded"
            assert body["retryAfter"] == pytest.approx(0.3)  # 3 model s / time_scale 10
            assert resp_headers["Retry-After"] == "0.3"
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 200
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 429


async def test_slow_fault_delays_then_processes() -> None:
    fault = Fault(kind=FaultKind.SLOW, count=1, endpoint="GET /me", delay=150.0)
    async with serving(fast_config(faults=(fault,))) as (emu, session):  # 150 model s = 0.15 s
        started = time.monotonic()
        status, _, _ = await request(session, "GET", emu.url + "/me", key=emu.api_key)
        slow = time.monotonic() - started
        started = time.monotonic()
        await request(session, "GET", emu.url + "/me", key=emu.api_key)
        fast = time.monotonic() - started
        assert status == 200
        assert slow >= 0.15
        assert fast < 0.15


async def test_drop_before_closes_the_connection_and_creates_nothing() -> None:
    fault = Fault(kind=FaultKind.DROP_BEFORE, count=1, endpoint=POST)
    async with serving(fast_config(faults=(fault,))) as (emu, session):
        with pytest.raises(aiohttp.ClientConnectionError):
            await post_job(emu, session, note_rows(emu.case_ids[:2]))
        assert await emu.jobs() == []
        stats = await emu.stats()
        assert stats["requests"][POST] == {"dropped": 1}
        assert stats["faults"] == {"drop_before": 1}


async def test_drop_after_creates_the_job_and_a_keyed_retry_gets_the_same_job() -> None:
    fault = Fault(kind=FaultKind.DROP_AFTER, count=1, endpoint=POST)
    async with serving(fast_config(faults=(fault,))) as (emu, session):
        rows = note_rows(emu.case_ids[:3])
        key = {"Idempotency-Key": "batch-7"}
        with pytest.raises(aiohttp.ClientConnectionError):
            await post_job(emu, session, rows, extra_headers=key)
        jobs = await emu.jobs()
        assert [j["idempotencyKey"] for j in jobs] == ["batch-7"]  # the job WAS created
        status, body, _ = await post_job(emu, session, rows, extra_headers=key)
        assert status == 202
        assert body["jobId"] == jobs[0]["jobId"]
        await wait_terminal(emu, session, body["jobId"])
        assert await emu.note_count() == 3  # no duplicates
        assert len(await emu.jobs()) == 1


async def test_job_failed_fault_ends_in_status_4_with_no_rows() -> None:
    fault = Fault(kind=FaultKind.JOB_FAILED, count=1)
    async with serving(fast_config(faults=(fault,))) as (emu, session):
        bad = await post_job(emu, session, [])  # a 400 does not use the fault up
        assert bad[0] == 400
        _, body, _ = await post_job(emu, session, note_rows(emu.case_ids[:4]))
        final = await wait_terminal(emu, session, body["jobId"])
        assert final == {"status": 4, "rowsTotal": 4, "rowsSucceeded": 0, "rowsFailed": 0}
        _, second, _ = await post_job(emu, session, note_rows(emu.case_ids[:4]))
        assert (await wait_terminal(emu, session, second["jobId"]))["status"] == 2
        assert await emu.note_count() == 4


async def test_job_vanish_fault_answers_404_after_a_while() -> None:
    fault = Fault(kind=FaultKind.JOB_VANISH, count=1, after=100.0)  # 0.1 s real
    async with serving(fast_config(faults=(fault,), latency=LatencyModel.zero())) as (
        emu,
        session,
    ):
        _, body, _ = await post_job(emu, session, note_rows(emu.case_ids[:1]))
        url = f"{emu.url}/ingestion-jobs/{body['jobId']}"
        assert (await request(session, "GET", url, key=emu.api_key))[0] == 200
        deadline = time.monotonic() + 5
        while (await request(session, "GET", url, key=emu.api_key))[0] == 200:
            assert time.monotonic() < deadline
        status, error, _ = await request(session, "GET", url, key=emu.api_key)
        assert status == 404
        assert_error_body(error)


async def test_probability_faults_are_reproducible_from_the_seed() -> None:
    async def pattern(seed: int) -> list[int]:
        fault = Fault(kind=FaultKind.HTTP_ERROR, probability=0.5, endpoint="GET /me")
        async with serving(fast_config(seed=seed, faults=(fault,))) as (emu, session):
            return [
                (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0]
                for _ in range(40)
            ]

    first = await pattern(11)
    assert set(first) == {200, 503}
    assert first == await pattern(11)
    assert first != await pattern(12)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ingestion-jobs"),
        ("GET", "/ingestion-jobs/{job}"),
        ("POST", "/cases/{case}/notes"),
        ("GET", "/me"),
    ],
)
async def test_wildcard_faults_hit_every_operation_even_without_a_key(
    method: str, path: str
) -> None:
    async with serving() as (emu, session):
        await emu.add_fault(Fault(kind=FaultKind.HTTP_ERROR, count=1, status=502))
        url = emu.url + path.format(job=uuid.uuid4(), case=emu.case_ids[0])
        assert (await request(session, method, url, body={"description": "x"}))[0] == 502
        assert (await request(session, method, url, body={"description": "x"}))[0] == 401


async def test_add_and_clear_faults_at_runtime() -> None:
    async with serving() as (emu, session):
        await emu.add_fault(Fault(kind=FaultKind.HTTP_ERROR, probability=1.0, endpoint="GET /me"))
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 503
        await emu.clear_faults()
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 200
