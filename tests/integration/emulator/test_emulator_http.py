"""The emulator over real loopback sockets, driven by a plain aiohttp.ClientSession."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel, RateLimits
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


# ---------------------------------------------------------------- happy path and lifecycle


async def test_post_job_poll_to_completion_and_notes_are_stored() -> None:
    async with serving() as (emu, session):
        rows = note_rows(emu.case_ids[:3], externalRef="CRM-1")
        status, body, resp_headers = await post_job(emu, session, rows)
        assert status == 202
        assert set(body) == {"jobId", "rowsQueued"}
        assert body["rowsQueued"] == 3
        assert resp_headers["Content-Type"].startswith("application/json")
        final = await wait_terminal(emu, session, body["jobId"])
        assert final == {"status": 2, "rowsTotal": 3, "rowsSucceeded": 3, "rowsFailed": 0}
        notes = await emu.notes(external_ref="CRM-1")
        assert sorted(n["caseId"] for n in notes) == sorted(str(c) for c in emu.case_ids[:3])
        assert all(n["jobId"] == body["jobId"] for n in notes)
        assert await emu.note_count() == 3


async def test_lifecycle_is_observed_queued_in_progress_then_terminal() -> None:
    latency = LatencyModel(workers=1, base=4.0, per_row=0.01, jitter=0.0)  # 0.2 s real per job
    async with serving(fast_config(time_scale=20.0, latency=latency)) as (emu, session):
        await post_job(emu, session, note_rows(emu.case_ids[:5]))
        _, second, _ = await post_job(emu, session, note_rows(emu.case_ids[:5]))
        url = f"{emu.url}/ingestion-jobs/{second['jobId']}"
        _, early, _ = await request(session, "GET", url, key=emu.api_key)
        assert early["status"] == 0  # queued behind the first job on the single worker
        seen = {early["status"]}
        while True:
            _, body, _ = await request(session, "GET", url, key=emu.api_key)
            seen.add(body["status"])
            if body["status"] == 2:
                break
            await asyncio.sleep(0.005)
        assert seen == {0, 1, 2}


async def test_row_failures_give_completed_with_errors() -> None:
    async with serving() as (emu, session):
        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        rows = [
            *note_rows(emu.case_ids[:2]),
            *note_rows([uuid.uuid4()]),
            *note_rows(emu.other_partner_case_ids[:1]),
            *note_rows(emu.case_ids[2:3], eventDate=future),
        ]
        _, body, _ = await post_job(emu, session, rows)
        final = await wait_terminal(emu, session, body["jobId"])
        assert final == {"status": 3, "rowsTotal": 5, "rowsSucceeded": 2, "rowsFailed": 3}
        assert await emu.note_count() == 2


async def test_zero_latency_job_is_terminal_on_first_poll() -> None:
    async with serving(fast_config(latency=LatencyModel.zero(), time_scale=1.0)) as (emu, session):
        _, body, _ = await post_job(emu, session, note_rows(emu.case_ids * 100))
        status, view, _ = await request(
            session, "GET", f"{emu.url}/ingestion-jobs/{body['jobId']}", key=emu.api_key
        )
        assert (status, view["status"], view["rowsSucceeded"]) == (200, 2, 1000)


# ---------------------------------------------------------------- auth, 400s, 404s


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ingestion-jobs"),
        ("GET", "/ingestion-jobs/{job}"),
        ("POST", "/cases/{case}/notes"),
        ("GET", "/me"),
    ],
)
@pytest.mark.parametrize("key", [None, "", "wrong-key"])
async def test_every_operation_requires_a_valid_api_key(
    method: str, path: str, key: str | None
) -> None:
    async with serving() as (emu, session):
        url = emu.url + path.format(job=uuid.uuid4(), case=emu.case_ids[0])
        extra = {} if key is None else {"XApiKey": key}
        status, body, _ = await request(
            session, method, url, body={"description": "x"}, extra_headers=extra
        )
        assert status == 401
        assert_error_body(body)
        assert body["businessErrors"][0]["type"] == "Unauthorized"


async def test_validation_errors_name_row_index_and_field() -> None:
    async with serving() as (emu, session):
        rows: list[dict[str, Any]] = note_rows(emu.case_ids[:4])
        rows[3]["caseId"] = "not-a-uuid"
        rows[1]["description"] = ""
        rows[2]["surprise"] = True
        status, body, _ = await post_job(emu, session, rows)
        assert status == 400
        assert_error_body(body)
        messages = [e["message"] for e in body["businessErrors"]]
        assert messages == [
            "rows[1].description: must not be empty",
            "rows[2].surprise: unknown field",
            "rows[3].caseId: not a valid UUID",
        ]
        assert {e["type"] for e in body["businessErrors"]} == {"ValidationError"}
        assert {e["solutionUrl"] for e in body["businessErrors"]} == {None}
        assert (await emu.stats())["jobs_created"] == 0


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{", "malformed JSON"),
        (b'{"rows": [}', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"", "non-empty request body"),
        (b"[]", "must be a JSON object"),
        (b'{"rows": null}', "rows: required"),
        (b'{"rows": []}', "at least one row"),
        (b'{"rows": [{"type": 5, "caseId": "x", "description": "d"}]}', "not currently supported"),
    ],
)
async def test_bad_bodies_are_400_with_the_error_shape(payload: bytes, fragment: str) -> None:
    async with serving() as (emu, session):
        status, body, _ = await post_job(emu, session, [], data=payload)
        assert status == 400
        assert_error_body(body)
        assert fragment in body["message"]


async def test_more_than_1000_rows_is_400() -> None:
    async with serving() as (emu, session):
        status, body, _ = await post_job(emu, session, note_rows(emu.case_ids * 101))
        assert status == 400
        assert "batch limit exceeded (1010 rows" in body["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/json",
        "application/json-patch+json",
        "application/vnd.debitura+json",
        "APPLICATION/JSON; Charset=UTF-8",
    ],
)
async def test_json_content_types_are_accepted(content_type: str) -> None:
    async with serving() as (emu, session):
        status, body, _ = await post_job(
            emu, session, note_rows(emu.case_ids[:1]), extra_headers={"Content-Type": content_type}
        )
        assert status == 202, body


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
async def test_other_content_types_are_415(content_type: str) -> None:
    async with serving() as (emu, session):
        for path in ("/ingestion-jobs", f"/cases/{emu.case_ids[0]}/notes"):
            status, body, _ = await request(
                session,
                "POST",
                emu.url + path,
                key=emu.api_key,
                body={"rows": note_rows(emu.case_ids[:1])},
                extra_headers={"Content-Type": content_type},
            )
            assert status == 415
            assert_error_body(body)


async def test_missing_content_type_is_415() -> None:
    async with (
        serving() as (emu, session),
        session.post(
            emu.url + "/ingestion-jobs",
            data=b'{"rows": []}',
            headers={"XApiKey": emu.api_key},
            skip_auto_headers=["Content-Type"],
        ) as response,
    ):
        assert response.status == 415
        assert_error_body(await response.json())


async def test_oversized_bodies_are_413_with_and_without_content_length() -> None:
    async with serving(fast_config(max_body_bytes=2000)) as (emu, session):
        big = note_rows(emu.case_ids * 5)
        status, body, _ = await post_job(emu, session, big)
        assert status == 413
        assert_error_body(body)

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 500
            yield b'{"rows": []}'

        async with session.post(
            emu.url + "/ingestion-jobs",
            data=chunks(),
            headers={"XApiKey": emu.api_key, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 413
            assert_error_body(await response.json())


async def test_get_job_404s_unknown_other_partner_and_non_uuid() -> None:
    async with serving() as (emu, session):
        _, created, _ = await post_job(emu, session, note_rows(emu.case_ids[:1]))
        other_key = emu.partners[1].api_key
        cases = [
            (f"/ingestion-jobs/{uuid.uuid4()}", emu.api_key),
            (f"/ingestion-jobs/{created['jobId']}", other_key),
            ("/ingestion-jobs/not-a-uuid", emu.api_key),
        ]
        for path, key in cases:
            status, body, _ = await request(session, "GET", emu.url + path, key=key)
            assert status == 404, path
            assert_error_body(body)
        status, _, _ = await request(
            session, "GET", f"{emu.url}/ingestion-jobs/{created['jobId']}", key=emu.api_key
        )
        assert status == 200


# ---------------------------------------------------------------- idempotency


async def test_idempotency_replay_conflict_and_key_limits() -> None:
    async with serving() as (emu, session):
        rows = note_rows(emu.case_ids[:2])
        key = {"Idempotency-Key": "migration-1-batch-1"}
        first = await post_job(emu, session, rows, extra_headers=key)
        again = await post_job(emu, session, rows, extra_headers=key)
        assert first[0] == again[0] == 202
        assert first[1] == again[1]
        other = await post_job(emu, session, note_rows(emu.case_ids[2:4]), extra_headers=key)
        assert other[0] == 422
        assert_error_body(other[1])
        assert other[1]["businessErrors"][0]["type"] == "IdempotencyConflict"
        too_long = await post_job(emu, session, rows, extra_headers={"Idempotency-Key": "k" * 256})
        assert too_long[0] == 400
        assert "Idempotency-Key" in too_long[1]["message"]
        stats = await emu.stats()
        assert (stats["jobs_created"], stats["idempotent_replays"]) == (1, 1)
        assert stats["idempotency_conflicts"] == 1


async def test_idempotency_key_is_scoped_per_partner_and_400_is_not_stored() -> None:
    async with serving() as (emu, session):
        key = {"Idempotency-Key": "same"}
        bad = note_rows(emu.case_ids[:1], description="")
        assert (await post_job(emu, session, bad, extra_headers=key))[0] == 400
        mine = await post_job(emu, session, note_rows(emu.case_ids[:1]), extra_headers=key)
        assert mine[0] == 202
        theirs = await request(
            session,
            "POST",
            emu.url + "/ingestion-jobs",
            key=emu.partners[1].api_key,
            body={"rows": note_rows(emu.other_partner_case_ids[:1])},
            extra_headers=key,
        )
        assert theirs[0] == 202
        assert theirs[1]["jobId"] != mine[1]["jobId"]


# ---------------------------------------------------------------- notes and /me


async def test_case_note_endpoint() -> None:
    async with serving() as (emu, session):
        url = f"{emu.url}/cases/{emu.case_ids[0]}/notes"
        status, note, _ = await request(
            session,
            "POST",
            url,
            key=emu.api_key,
            body={"description": "Phoned", "eventDate": "2026-01-02T03:04:05Z"},
        )
        assert status == 200
        assert set(note) == {
            "id",
            "caseReference",
            "title",
            "description",
            "visibility",
            "createdAt",
            "eventDate",
            "createdBy",
        }
        assert note["eventDate"] == "2026-01-02T03:04:05.000Z"
        assert set(note["createdBy"]) == {"userId", "userName"}
        stored = await emu.notes(case_id=emu.case_ids[0])
        assert [n["id"] for n in stored] == [note["id"]]

        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        for body in ({"description": ""}, {}, {"description": "x" * 10_001}):
            assert (await request(session, "POST", url, key=emu.api_key, body=body))[0] == 400
        status, body, _ = await request(
            session, "POST", url, key=emu.api_key, body={"description": "x", "eventDate": future}
        )
        assert status == 400
        assert body["message"] == "eventDate: must not be in the future"
        for case in (emu.other_partner_case_ids[0], uuid.uuid4(), "not-a-uuid"):
            status, body, _ = await request(
                session,
                "POST",
                f"{emu.url}/cases/{case}/notes",
                key=emu.api_key,
                body={"description": "x"},
            )
            assert status == 404
            assert_error_body(body)


async def test_me_returns_the_partner_behind_the_key() -> None:
    async with serving() as (emu, session):
        for partner in emu.partners:
            status, body, _ = await request(session, "GET", emu.url + "/me", key=partner.api_key)
            assert status == 200
            assert (body["id"], body["companyName"]) == (str(partner.id), partner.name)


# ---------------------------------------------------------------- rate limits


async def test_rate_limit_429_body_header_and_recovery() -> None:
    limits = RateLimits(per_minute=3, per_hour=None, per_day=None)
    async with serving(fast_config(rate_limits=limits, time_scale=120.0)) as (emu, session):
        url = emu.url + "/me"
        assert (await request(session, "GET", url, key="bad"))[0] == 401  # no budget used
        results = [await request(session, "GET", url, key=emu.api_key) for _ in range(5)]
        assert [r[0] for r in results] == [200, 200, 200, 429, 429]
        _, body, resp_headers = results[3]
        assert set(body) == {"error", "message", "retryAfter"}
        assert body["error"] == "rate_limit_exceeded"
        # 60 model s window / 120 = 0.5 real s at most
        assert 0 < body["retryAfter"] <= 0.5
        assert float(resp_headers["Retry-After"]) == pytest.approx(body["retryAfter"], abs=0.002)
        other = emu.partners[1].api_key
        assert (await request(session, "GET", url, key=other))[0] == 200  # per key
        await asyncio.sleep(body["retryAfter"] + 0.01)
        assert (await request(session, "GET", url, key=emu.api_key))[0] == 200
        assert (await emu.stats())["rate_limited"] == 2


async def test_rate_limit_without_retry_after_header() -> None:
    limits = RateLimits(per_minute=1, per_hour=None, per_day=None, retry_after_header=False)
    async with serving(fast_config(rate_limits=limits, time_scale=1.0)) as (emu, session):
        await request(session, "GET", emu.url + "/me", key=emu.api_key)
        status, body, resp_headers = await request(session, "GET", emu.url + "/me", key=emu.api_key)
        assert status == 429
        assert "Retry-After" not in resp_headers
        # the first request's 10-second segment leaves the minute 50..60 s after it was counted
        assert 50.0 < body["retryAfter"] <= 60.0


# ---------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/nope", 404),
        ("GET", "/ingestion-jobs", 405),
        ("DELETE", "/ingestion-jobs/{job}", 405),
        ("PUT", "/me", 405),
        ("HEAD", "/me", 405),
        ("GET", "/cases/{case}/notes", 405),
        ("POST", "/cases/%ZZ/notes", 404),
    ],
)
async def test_unknown_routes_and_wrong_methods_use_the_error_shape(
    method: str, path: str, expected: int
) -> None:
    async with serving() as (emu, session):
        url = emu.url + path.format(job=uuid.uuid4(), case=emu.case_ids[0])
        async with session.request(method, url, headers={"XApiKey": emu.api_key}) as response:
            assert response.status == expected
            if method != "HEAD":
                assert_error_body(await response.json())
            if expected == 405:
                assert response.headers["Allow"]


async def test_unexpected_exception_is_a_500_error_shape_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving() as (emu, session):

        def boom(*_args: object, **_kw: object) -> None:
            raise RuntimeError("kaboom")

        monkeypatch.setattr(emu.core, "me", boom)
        with caplog.at_level(logging.ERROR, logger="debitura_async.emulator"):
            status, body, _ = await request(session, "GET", emu.url + "/me", key=emu.api_key)
        assert status == 500
        assert_error_body(body)
        assert "kaboom" not in str(body)
        assert "Traceback" not in str(body)
        assert any("kaboom" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_access_log_never_contains_the_api_key(caplog: pytest.LogCaptureFixture) -> None:
    async with (
        Emulator(fast_config(), access_log=True) as emu,
        aiohttp.ClientSession() as session,
    ):
        with caplog.at_level(logging.DEBUG):
            await request(session, "GET", emu.url + "/me", key=emu.api_key)
            await request(session, "GET", emu.url + "/me?x=1", key=emu.api_key)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "/me" in logged  # the access log is on...
        assert emu.api_key not in logged  # ...and keys stay out of it


async def test_non_loopback_host_is_refused_without_the_flag() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        Emulator(EmulatorConfig(), host="0.0.0.0")  # noqa: S104 - the point of the test


# ---------------------------------------------------------------- introspection over HTTP


async def test_introspection_endpoints() -> None:
    async with serving() as (emu, session):
        base = emu.url + "/_emulator"
        token = emu.introspection_headers
        status, world, _ = await request(session, "GET", base + "/world", extra_headers=token)
        assert status == 200
        assert [p["apiKey"] for p in world["partners"]] == [p.api_key for p in emu.partners]
        _, job, _ = await post_job(
            emu, session, note_rows(emu.case_ids[:2], externalRef="R"), extra_headers={}
        )
        await wait_terminal(emu, session, job["jobId"])
        _, notes, _ = await request(
            session, "GET", base + "/notes?externalRef=R", extra_headers=token
        )
        assert len(notes) == 2
        _, by_case, _ = await request(
            session, "GET", f"{base}/notes?caseId={emu.case_ids[1]}", extra_headers=token
        )
        assert [n["caseId"] for n in by_case] == [str(emu.case_ids[1])]
        _, jobs, _ = await request(session, "GET", base + "/jobs", extra_headers=token)
        assert [j["jobId"] for j in jobs] == [job["jobId"]]
        assert jobs[0]["status"] == 2
        _, stats, _ = await request(session, "GET", base + "/stats", extra_headers=token)
        assert stats["requests"]["POST /ingestion-jobs"] == {"202": 1}
        assert stats["notes"] == 2
        assert "/_emulator" not in str(stats["requests"])  # introspection is not counted

        fault = {"kind": "http_error", "count": 1, "endpoint": "GET /me", "status": 502}
        status, faults, _ = await request(
            session, "POST", base + "/faults", body=fault, extra_headers=token
        )
        assert status == 201
        assert faults[0]["remaining"] == 1
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 502
        assert (
            await request(
                session, "POST", base + "/faults", body={"kind": "nope"}, extra_headers=token
            )
        )[0] == 400
        await request(session, "POST", base + "/faults", body=fault, extra_headers=token)
        assert (await request(session, "DELETE", base + "/faults", extra_headers=token))[1] == []
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 200

        assert (
            await request(session, "POST", base + "/restart?keepNotes=false", extra_headers=token)
        )[0] == 200
        assert (await request(session, "GET", base + "/jobs", extra_headers=token))[1] == []
        assert (await request(session, "GET", base + "/notes", extra_headers=token))[1] == []
        await post_job(emu, session, note_rows(emu.case_ids[:1]))
        assert (await request(session, "POST", base + "/reset", extra_headers=token))[0] == 200
        _, stats, _ = await request(session, "GET", base + "/stats", extra_headers=token)
        assert (stats["jobs_created"], stats["requests"]) == (0, {})


async def test_python_restart_keeps_the_port_and_processed_notes() -> None:
    async with serving(fast_config(latency=LatencyModel.zero())) as (emu, session):
        url = emu.url
        _, job, _ = await post_job(emu, session, note_rows(emu.case_ids[:2]))
        await emu.restart()
        assert emu.url == url
        status, _, _ = await request(
            session, "GET", f"{emu.url}/ingestion-jobs/{job['jobId']}", key=emu.api_key
        )
        assert status == 404
        assert await emu.note_count() == 2
        await emu.reset()
        assert await emu.note_count() == 0
        assert await emu.jobs() == []


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /me HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /ingestion-jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_http_never_yields_a_500_or_traceback(raw: bytes) -> None:
    async with serving() as (emu, _session):
        reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
        try:
            writer.write(raw)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(65536), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer.split(b" ", 2)[1] == b"400", answer[:200]
        assert b"Traceback" not in answer
