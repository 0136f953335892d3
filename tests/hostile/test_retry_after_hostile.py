"""Issue 10: a Retry-After of a day is not waited out silently."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from debitura_async import (
    DebituraClient,
    DecodeError,
    RateLimit,
    RateLimitError,
    RequestBudget,
    RetryPolicy,
)

from ._servers import serve

pytestmark = pytest.mark.anyio

KEY = "sk_live_retry-after-KEY"


@pytest.mark.parametrize("where", ["header", "body"])
async def test_a_day_long_retry_after_reaches_the_caller_at_once(where: str) -> None:
    calls = 0

    async def limited(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        headers = {"Retry-After": "86400"} if where == "header" else {}
        body = {"error": "rate_limit_exceeded", "message": "daily limit"}
        if where == "body":
            body["retryAfter"] = 86400.0  # type: ignore[assignment]
        return web.json_response(body, status=429, headers=headers)

    budget = RequestBudget([RateLimit(1000, 1.0)])
    async with serve({("GET", "/me"): limited}) as url:
        async with DebituraClient(
            KEY, base_url=url, budget=budget, retry=RetryPolicy(max_retry_after=2.0)
        ) as client:
            started = time.monotonic()
            with pytest.raises(RateLimitError) as info:
                await client.me()
            assert time.monotonic() - started < 1.0
            assert info.value.retry_after == 86400.0
            assert calls == 1  # not retried
            # The budget pauses no longer than max_retry_after either.
            assert 0.0 < budget.status().paused_for <= 2.0


async def test_a_short_retry_after_is_waited_and_retried() -> None:
    calls = 0

    async def once_limited(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response(
                {"error": "rate_limit_exceeded"}, status=429, headers={"Retry-After": "0.05"}
            )
        return web.json_response({"unexpected": True})

    async with serve({("GET", "/ingestion-jobs/{id}"): once_limited}) as url:
        async with DebituraClient(KEY, base_url=url, budget=None) as client:
            started = time.monotonic()
            with pytest.raises(DecodeError, match="does not match"):
                await client.get_ingestion_job("6803c1c4-6534-45fd-84b9-84bb9385bc41")
    assert calls == 2  # waited 50 ms and retried, then read the (wrong-shaped) answer
    assert time.monotonic() - started >= 0.05
