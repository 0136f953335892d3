"""Issue 18: the first attempt of a call is made without entering stamina; only a failure enters
stamina's loop, which re-raises it as its attempt 1. Every observable of a call must be what
the plain stamina loop (the code before, kept here as :func:`reference_call`) gives: the
requests the server gets, the attempt numbers the hooks see, the waits and lines logged to
``debitura_async.retry``, the tallies, ``retry_wait``, the random draws, the answer or error.

Each scenario runs twice against a fresh scripted server on 127.0.0.1 (once per
implementation, with the same random seed), and the two recordings must be equal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import stamina
from aiohttp import web

from debitura_async import (
    DebituraClient,
    RequestStats,
    RetryPolicy,
    ServerError,
    Timeout,
    _client_send,
    _retry,
    _retry_log,
)
from debitura_async._client_config import _retry_reason
from debitura_async.hooks import RequestEvent, ResponseEvent

from ._servers import serve

pytestmark = pytest.mark.anyio

KEY = "sk_live_retry-sequence-KEY"
Step = Callable[[web.Request], Awaitable[web.StreamResponse]]
Call = Callable[..., Awaitable[tuple[int, bytes]]]


async def reference_call(
    client: DebituraClient,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    idempotency_key: str | None = None,
    idempotent: bool,
    job_id: uuid.UUID | None = None,
    counters: RequestStats | None = None,
) -> tuple[int, bytes]:
    """``_client_send.call`` as it was before the fast path: every attempt inside stamina."""
    if client._closed:
        raise RuntimeError("this DebituraClient is closed")
    headers = dict(client._headers)
    headers["XApiKey"] = client._api_key.reveal()
    if body is not None:
        headers["Content-Type"] = "application/json"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    tallies = (client.stats,) if counters is None else (client.stats, counters)
    policy = client.retry_policy
    retry_number = 0

    def backoff_hook(exc: Exception) -> bool | float:
        delay = _retry.retry_delay(
            exc,
            retry_number + 1,
            policy,
            rand=random.random(),
            idempotent=idempotent,
        )
        if delay is not None and retry_number < policy.max_retries:
            client._retry_wait = (retry_number + 1, time.monotonic() + delay, _retry_reason(exc))
        return False if delay is None else delay

    _retry_log.install()
    with _retry_log.ours(method, path):
        async for attempt in stamina.retry_context(
            on=backoff_hook, attempts=policy.max_retries + 1, timeout=policy.timeout
        ):
            with attempt:
                retry_number = attempt.num - 1
                if retry_number:
                    for tally in tallies:
                        tally.retries += 1
                answer = await _client_send.send_once(
                    client,
                    method,
                    path,
                    headers,
                    body,
                    attempt=attempt.num,
                    job_id=job_id,
                    tallies=tallies,
                )
                client._retry_wait = None
                return answer
    raise AssertionError("unreachable")


# -- scripted answers ------------------------------------------------------------------------------


def answer(status: int, body: bytes = b"{}", **headers: str) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    return step


def slow(seconds: float, then: Step) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return step


async def drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(0.05)
    return web.Response()


OK = answer(202, b'{"jobId":"6803c1c4-6534-45fd-84b9-84bb9385bc41","rowsQueued":1}')
ERROR_503 = answer(503, b'{"error":"unavailable","message":"try later"}')


@attrs.frozen
class Scenario:
    steps: tuple[Step, ...]
    policy: RetryPolicy
    method: str = "POST"
    idempotent: bool = True
    timeout: Timeout | float = 5.0
    cancel_after: float | None = None


def backoff(max_retries: int = 5, **options: Any) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, initial_backoff=0.02, max_backoff=0.05, **options)


SCENARIOS = {
    "success first time": Scenario((OK,), backoff()),
    "one 503 then success": Scenario((ERROR_503, OK), backoff()),
    "a 429 with Retry-After": Scenario(
        (answer(429, b'{"error":"rate_limit_exceeded"}', **{"Retry-After": "0.05"}), OK),
        backoff(),
    ),
    "a 429 with a Retry-After over the limit": Scenario(
        (answer(429, b"{}", **{"Retry-After": "60"}), OK), backoff(max_retry_after=1.0)
    ),
    "exhaustion": Scenario((answer(502, b"bad gateway"),) * 4, backoff(max_retries=3)),
    "a non-retryable 4xx": Scenario((answer(404, b'{"error":"not_found"}'), OK), backoff()),
    "a 500 on a non-idempotent call": Scenario(
        (answer(500, b"{}"), OK), backoff(), idempotent=False
    ),
    "a read timeout then success": Scenario(
        (slow(0.4, OK), OK), backoff(), timeout=Timeout(total=0.15, connect=1.0, read=0.15)
    ),
    "read timeouts to exhaustion": Scenario(
        (slow(0.4, OK),) * 3, backoff(max_retries=2), timeout=Timeout(total=0.1, read=0.1)
    ),
    "the policy's timeout spent by the first attempt": Scenario(
        (slow(0.2, ERROR_503), OK), backoff(timeout=0.1)
    ),
    "the policy's timeout spent by the retries": Scenario(
        (ERROR_503, slow(0.2, ERROR_503), OK, OK), backoff(timeout=0.15)
    ),
    "a dropped connection, retried": Scenario((drop, OK), backoff()),
    "a dropped connection on a non-idempotent call": Scenario(
        (drop, OK), backoff(), idempotent=False
    ),
    "retries off": Scenario((ERROR_503, OK), backoff(max_retries=0)),
    "cancelled during the first attempt": Scenario(
        (slow(1.0, OK), OK), backoff(), cancel_after=0.1
    ),
    "a GET retried": Scenario((ERROR_503, ERROR_503, OK), backoff(), method="GET"),
}


@attrs.define
class Recording:
    outcome: Any = None
    server: list[tuple[str, str, str | None]] = attrs.field(factory=list)
    requests: list[tuple[str, str, int]] = attrs.field(factory=list)
    responses: list[tuple[int, int | None, str | None]] = attrs.field(factory=list)
    retry_log: list[Any] = attrs.field(factory=list)
    retry_waits: list[tuple[int, str] | None] = attrs.field(factory=list)
    stats: RequestStats | None = None
    counters: RequestStats | None = None
    next_random: float = 0.0


async def record(scenario: Scenario, call: Call, caplog: pytest.LogCaptureFixture) -> Recording:
    recording = Recording()
    steps = iter(scenario.steps)

    async def scripted(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        recording.server.append((request.method, request.path, key))
        return await next(steps)(request)

    routes: dict[tuple[str, str], Step] = {(scenario.method, "/ingestion-jobs"): scripted}
    async with serve(routes) as url:
        client = DebituraClient(
            KEY, base_url=url, budget=None, retry=scenario.policy, timeout=scenario.timeout
        )

        def on_request(event: RequestEvent) -> None:
            recording.requests.append((event.method, event.path, event.attempt))
            recording.retry_waits.append(_wait_of(client))

        def on_response(event: ResponseEvent) -> None:
            recording.responses.append((event.attempt, event.status, event.error))

        client.event_hooks = {"request": (on_request,), "response": (on_response,)}
        counters = RequestStats()
        caplog.clear()
        random.seed(18)
        async with client:
            task = asyncio.ensure_future(
                call(
                    client,
                    scenario.method,
                    "/ingestion-jobs",
                    body=b'{"rows":[]}' if scenario.method == "POST" else None,
                    idempotency_key="key-18" if scenario.method == "POST" else None,
                    idempotent=scenario.idempotent,
                    counters=counters,
                )
            )
            if scenario.cancel_after is not None:
                await asyncio.sleep(scenario.cancel_after)
                task.cancel()
            try:
                recording.outcome = ("answer", await task)
            except BaseException as exc:  # noqa: BLE001 - what the call raised is recorded
                recording.outcome = ("raised", type(exc), str(exc), getattr(exc, "status", None))
            recording.retry_waits.append(_wait_of(client))
        recording.next_random = random.random()  # the same number of draws on both sides
        recording.stats, recording.counters = client.stats, counters
        recording.retry_log = [
            r.args  # the wait's exact float is among the arguments
            for r in caplog.records
            if r.name == "debitura_async.retry"
        ]
    return recording


def _wait_of(client: DebituraClient) -> tuple[int, str] | None:
    wait = client._retry_wait
    return None if wait is None else (wait[0], wait[2])


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="debitura_async.retry")
    return caplog


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_same_attempts_as_the_stamina_loop(
    name: str, logs: pytest.LogCaptureFixture
) -> None:
    scenario = SCENARIOS[name]
    before = await record(scenario, reference_call, logs)
    after = await record(scenario, _client_send.call, logs)
    assert after == before
    assert before.server  # the scenario did reach the server


async def test_the_scenarios_do_what_their_names_say(logs: pytest.LogCaptureFixture) -> None:
    """The recordings compared above, pinned: retried or not, with the waits they had."""
    ok = await record(SCENARIOS["success first time"], _client_send.call, logs)
    assert ok.outcome[0] == "answer"
    assert ok.requests == [("POST", "/ingestion-jobs", 1)]
    assert ok.retry_log == []
    assert ok.stats == RequestStats(requests=1, posts=1)
    once = await record(SCENARIOS["one 503 then success"], _client_send.call, logs)
    assert [r[2] for r in once.requests] == [1, 2]
    assert once.retry_waits == [None, (1, "HTTP 503"), None]
    assert once.stats == once.counters == RequestStats(requests=2, posts=2, retries=1, errors=1)
    limited = await record(SCENARIOS["a 429 with Retry-After"], _client_send.call, logs)
    assert [args[3] for args in limited.retry_log] == [0.05]  # exactly the server's wait
    assert limited.stats is not None
    assert limited.stats.rate_limited == 1
    spent = await record(SCENARIOS["exhaustion"], _client_send.call, logs)
    assert spent.outcome[:2] == ("raised", ServerError)
    assert [r[2] for r in spent.requests] == [1, 2, 3, 4]
    assert [args[0] for args in spent.retry_log] == [1, 2, 3]
    refused = await record(SCENARIOS["a non-retryable 4xx"], _client_send.call, logs)
    assert len(refused.server) == 1
    assert refused.retry_log == []
    late = await record(
        SCENARIOS["the policy's timeout spent by the first attempt"], _client_send.call, logs
    )
    assert len(late.server) == 1
    assert late.outcome[3] == 503
    timed_out = await record(SCENARIOS["a read timeout then success"], _client_send.call, logs)
    assert timed_out.responses[0] == (1, None, "RequestTimeout")
    assert timed_out.outcome[0] == "answer"
    cancelled = await record(
        SCENARIOS["cancelled during the first attempt"], _client_send.call, logs
    )
    assert cancelled.outcome[1] is asyncio.CancelledError
    assert len(cancelled.server) == 1


@pytest.mark.parametrize("mode", ["inactive", "testing"])
async def test_stamina_switches_apply_as_before(mode: str, logs: pytest.LogCaptureFixture) -> None:
    """``stamina.set_active(False)`` (no retries at all) and ``stamina.set_testing`` (no waits,
    a fixed number of attempts) reach the calls as they did."""
    scenario = Scenario((ERROR_503, ERROR_503, ERROR_503, OK), backoff())
    try:
        if mode == "inactive":
            stamina.set_active(False)
        else:
            stamina.set_testing(True, attempts=2)
        before = await record(scenario, reference_call, logs)
        after = await record(scenario, _client_send.call, logs)
    finally:
        stamina.set_active(True)
        stamina.set_testing(False)
    assert after == before
    assert len(after.server) == (1 if mode == "inactive" else 2)


async def test_hooks_replaced_by_the_user_are_still_put_behind_the_dispatcher(
    logs: pytest.LogCaptureFixture,
) -> None:
    """:func:`_retry_log.install` skips its work while stamina holds the hooks it installed;
    hooks set later (by the user) get the dispatcher in front of them again, and a retry made
    outside the client's calls reaches them."""
    seen: list[int] = []
    scenario = SCENARIOS["one 503 then success"]
    await record(scenario, _client_send.call, logs)
    previous = stamina.instrumentation.get_on_retry_hooks()
    try:
        stamina.instrumentation.set_on_retry_hooks([lambda details: seen.append(details.retry_num)])
        assert _retry_log.active_hooks() is stamina.instrumentation.get_on_retry_hooks()
        again = await record(scenario, _client_send.call, logs)
        assert _retry_log.active_hooks() is stamina.instrumentation.get_on_retry_hooks()
        assert [args[0] for args in again.retry_log] == [1]  # ours: logged, not the user's
        assert seen == []
        for attempt in stamina.retry_context(on=ValueError, wait_initial=0, wait_jitter=0):
            with attempt:
                if attempt.num == 1:
                    raise ValueError
        assert seen == [1]  # someone else's retry: the user's hook
    finally:
        stamina.instrumentation.set_on_retry_hooks(previous)
