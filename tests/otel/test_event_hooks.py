"""Event hooks against the real emulator: one frozen event per attempt, sync or async hooks,
what a raising hook does, and option checking."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from debitura_async import (
    ConfigurationError,
    DebituraClient,
    IngestionJobRow,
    PollPolicy,
)
from debitura_async.emulator import Emulator, Fault
from debitura_async.hooks import RequestEvent, ResponseEvent, endpoint_of

from .conftest import TIME_SCALE, fast_retry

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"


def rows(emu: Emulator, n: int) -> list[IngestionJobRow]:
    return [IngestionJobRow(emu.case_ids[i], f"secret note {i}") for i in range(n)]


async def test_a_retried_submit_fires_one_event_pair_per_attempt(emu: Emulator) -> None:
    await emu.add_fault(Fault(kind="http_error", count=2, status=503, endpoint=POST))
    requests: list[RequestEvent] = []
    responses: list[ResponseEvent] = []

    async def on_response(event: ResponseEvent) -> None:  # an async hook is awaited
        responses.append(event)

    hooks: dict[str, list[Any]] = {"request": [requests.append], "response": [on_response]}
    async with DebituraClient(
        emu.api_key, base_url=emu.url, retry=fast_retry(), event_hooks=hooks
    ) as client:
        accepted = await client.create_ingestion_job(rows(emu, 2))

    assert [(e.endpoint, e.attempt) for e in requests] == [(POST, 1), (POST, 2), (POST, 3)]
    assert [(e.status, e.error, e.attempt) for e in responses] == [
        (503, "ServerError", 1),
        (503, "ServerError", 2),
        (202, None, 3),
    ]
    assert all(e.method == "POST" and e.path == "/ingestion-jobs" for e in responses)
    assert all(e.elapsed >= 0 for e in responses)
    assert accepted.job_id is not None
    events: list[RequestEvent | ResponseEvent] = [*requests, *responses]
    for event in events:
        assert attrs.has(type(event))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.attempt = 9  # type: ignore[misc]
        text = repr(event)
        assert emu.api_key not in text
        assert "secret note" not in text


async def test_poll_events_carry_the_job_id_and_its_endpoint(emu: Emulator) -> None:
    seen: list[ResponseEvent] = []
    async with DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        polling=PollPolicy().scaled(TIME_SCALE),
        event_hooks={"response": [seen.append]},
    ) as client:
        handle = await client.submit(rows(emu, 3))
        await handle.wait(timeout=30)
    polls = [e for e in seen if e.method == "GET"]
    assert polls
    assert {e.endpoint for e in polls} == {GET}
    assert {e.job_id for e in polls} == {handle.job_id}
    assert {e.path for e in polls} == {f"/ingestion-jobs/{handle.job_id}"}


async def test_a_transport_failure_has_no_status_and_names_the_error(emu: Emulator) -> None:
    await emu.add_fault(Fault(kind="drop_before", count=1, endpoint="GET /me"))
    seen: list[ResponseEvent] = []
    async with DebituraClient(
        emu.api_key, base_url=emu.url, retry=fast_retry(), event_hooks={"response": [seen.append]}
    ) as client:
        await client.me()
    assert [e.status for e in seen] == [None, 200]
    assert seen[0].error in ("RemoteProtocolError", "ConnectError")
    assert seen[0].endpoint == "GET /me"


async def test_a_429_event_carries_the_servers_wait(emu: Emulator) -> None:
    await emu.add_fault(Fault(kind="rate_limit", count=1, retry_after=0.05 * TIME_SCALE))
    seen: list[ResponseEvent] = []
    async with DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        budget=None,
        event_hooks={"response": [seen.append]},
    ) as client:
        await client.me()
    assert [(e.status, e.error) for e in seen] == [(429, "RateLimitError"), (200, None)]
    assert seen[0].retry_after == pytest.approx(0.05, abs=0.01)


class HookBug(Exception):
    pass


def explode(event: object) -> None:
    raise HookBug("the user's hook failed")


async def test_a_raising_request_hook_sends_nothing_and_is_not_retried(emu: Emulator) -> None:
    calls: list[RequestEvent] = []
    async with DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        event_hooks={"request": [calls.append, explode]},
    ) as client:
        with pytest.raises(HookBug):
            await client.create_ingestion_job(rows(emu, 1))
    assert len(calls) == 1
    stats = await emu.stats()
    assert stats["requests"].get(POST, {}) == {}
    assert stats["jobs_created"] == 0


async def test_a_raising_response_hook_reaches_the_caller_unchanged(emu: Emulator) -> None:
    async with DebituraClient(
        emu.api_key, base_url=emu.url, retry=fast_retry(), event_hooks={"response": [explode]}
    ) as client:
        with pytest.raises(HookBug):
            await client.me()
    assert (await emu.stats())["requests"]["GET /me"] == {"200": 1}


async def test_a_raising_hook_during_shared_polling_ends_that_jobs_tracking(
    emu: Emulator,
) -> None:
    def explode_on_polls(event: RequestEvent) -> None:
        if event.method == "GET":
            raise HookBug("poll hook failed")

    async with DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        polling=PollPolicy().scaled(TIME_SCALE),
        event_hooks={"request": [explode_on_polls]},
    ) as client:
        handle = await client.submit(rows(emu, 1))
        with pytest.raises(HookBug):
            await handle.wait(timeout=30)
        assert isinstance(handle.error, HookBug)
        assert len(client.tracker) == 0


async def test_hooks_can_be_changed_after_construction(emu: Emulator) -> None:
    seen: list[ResponseEvent] = []
    async with DebituraClient(emu.api_key, base_url=emu.url) as client:
        await client.me()
        client.event_hooks["response"] = (seen.append,)
        await client.me()
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ([print], "must be a mapping"),
        ({"requests": [print]}, "unknown event hook 'requests'"),
        ({"request": print}, "must be a list of callables"),
        ({"response": "print"}, "must be a list of callables"),
        ({"response": [print, 3]}, "not callable"),
    ],
)
def test_wrong_event_hooks_raise_a_configuration_error(hooks: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DebituraClient("k", base_url="http://127.0.0.1:1", event_hooks=hooks)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("POST", "/ingestion-jobs", "POST /ingestion-jobs"),
        ("GET", f"/ingestion-jobs/{uuid.UUID(int=1)}", "GET /ingestion-jobs/{jobId}"),
        ("GET", f"/ingestion-jobs/{uuid.UUID(int=1).hex}", "GET /ingestion-jobs/{jobId}"),
        ("POST", f"/cases/{uuid.UUID(int=2)}/notes", "POST /cases/{caseId}/notes"),
        ("GET", "/me", "GET /me"),
        ("GET", "/me?x=1", "GET /me"),
    ],
)
def test_endpoint_names_have_no_ids(method: str, path: str, endpoint: str) -> None:
    assert endpoint_of(method, path) == endpoint


@given(
    job=st.uuids(),
    case=st.uuids(),
    method=st.sampled_from(["GET", "POST"]),
    hexed=st.booleans(),
)
def test_no_id_survives_in_an_endpoint_name(
    job: uuid.UUID, case: uuid.UUID, method: str, hexed: bool
) -> None:
    def text(u: uuid.UUID) -> str:
        return u.hex if hexed else str(u).upper()

    for path in (f"/ingestion-jobs/{text(job)}", f"/cases/{text(case)}/notes"):
        name = endpoint_of(method, path)
        assert text(job) not in name
        assert text(case) not in name
        assert name.startswith(method + " /")
