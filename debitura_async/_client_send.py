"""The transport side of :class:`~debitura_async.DebituraClient`: one logical call with its
retries (stamina), and each attempt through the budget, the event hooks and the tallies.

Free functions over the client (like :mod:`._case_calls`), so ``client.py`` keeps the thin
``_call`` every request goes through; what an error answer means is :func:`._client_config.
error_for`, what a retry waits is :func:`._retry.retry_delay`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import stamina

from . import _retry, _retry_log
from . import hooks as _hooks
from ._client_config import _retry_reason, error_for
from .errors import DebituraError, RateLimitError
from .models import RequestStats

if TYPE_CHECKING:
    from .client import DebituraClient

__all__ = ["call", "send_once"]

logger = logging.getLogger("debitura_async")


async def call(
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
    """``client._call``: one logical call, attempts with retries, all with the same headers
    and body. ``counters``: a caller's own tally (an ingestion run's), besides ``client.stats``.
    """
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
    timeout = policy.timeout
    failed: list[BaseException] = []  # a list, not a local: no frame <-> traceback cycle
    _retry_log.install()
    token = _retry_log.mark(method, path)
    try:
        if timeout != 0:  # (0: stamina warns on every call; it makes every attempt then)
            started = time.monotonic()
            try:
                answer = await send_once(
                    client, method, path, headers, body, attempt=1, job_id=job_id, tallies=tallies
                )
            except BaseException as exc:  # noqa: BLE001 - stamina decides, as on any attempt
                failed.append(exc)
            else:
                client._retry_wait = None
                return answer
            if timeout is not None:
                timeout -= time.monotonic() - started
                if timeout == 0:  # spent to the tick: stamina stops, without its warning
                    timeout = -1e-9
        return await _retried(
            client,
            method,
            path,
            headers,
            body,
            policy=policy,
            failed=failed,
            time_left=timeout,
            idempotent=idempotent,
            job_id=job_id,
            tallies=tallies,
        )
    finally:
        _retry_log.unmark(token)


async def _retried(
    client: DebituraClient,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    policy: _retry.RetryPolicy,
    failed: list[BaseException],
    time_left: float | None,
    idempotent: bool,
    job_id: uuid.UUID | None,
    tallies: tuple[RequestStats, ...],
) -> tuple[int, bytes]:
    """The stamina loop. ``failed``: the first attempt's failure when :func:`call` made that
    attempt (stamina's attempt 1 re-raises it, so that stamina decides on it, waits, numbers
    the attempts and logs exactly as if it had made it itself); empty: every attempt is made
    here. ``time_left``: what is left of the policy's timeout (the first attempt's time spent)."""
    retry_number = 0

    def backoff_hook(exc: Exception) -> bool | float:
        delay = _retry.retry_delay(
            exc,
            retry_number + 1,
            policy,
            rand=random.random(),  # noqa: S311 - jitter, not cryptography
            idempotent=idempotent,
        )
        if delay is not None and retry_number < policy.max_retries:
            client._retry_wait = (retry_number + 1, time.monotonic() + delay, _retry_reason(exc))
        return False if delay is None else delay

    async for attempt in stamina.retry_context(
        on=backoff_hook,
        attempts=policy.max_retries + 1,
        timeout=time_left,
    ):
        with attempt:
            if failed:
                raise failed.pop()
            retry_number = attempt.num - 1
            if retry_number:
                for tally in tallies:
                    tally.retries += 1
            answer = await send_once(
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
    raise AssertionError("unreachable: stamina re-raises the last failure")  # pragma: no cover


async def send_once(
    client: DebituraClient,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    attempt: int,
    job_id: uuid.UUID | None,
    tallies: tuple[RequestStats, ...],
) -> tuple[int, bytes]:
    """One attempt: the budget, the request hooks, the tallies, the send, the answer's error
    (a 429 pauses the budget) and the response hooks."""
    if client.budget is not None:
        await client.budget.acquire()
    hooks = client.event_hooks
    if hooks["request"]:
        await _hooks.emit_request(hooks["request"], method, path, attempt, job_id)
    for tally in tallies:
        tally.requests += 1
        if method == "POST":
            tally.posts += 1
        else:
            tally.gets += 1
    started = time.monotonic()
    try:
        response = await client._transport.send(method, client.base_url + path, headers, body)
    except DebituraError as error:
        for tally in tallies:
            tally.errors += 1
        if hooks["response"]:
            await _hooks.emit_response(
                hooks["response"], method, path, attempt, started, job_id, None, error
            )
        logger.debug(
            "%s %s -> %s attempt=%d elapsed=%.3fs",
            method,
            path,
            type(error).__name__,
            attempt,
            time.monotonic() - started,
        )
        raise
    status = response.status
    logger.debug(
        "%s %s -> %d attempt=%d elapsed=%.3fs",
        method,
        path,
        status,
        attempt,
        time.monotonic() - started,
    )
    failure = error_for(response, method=method, path=path, job_id=job_id)
    if failure is not None:
        for tally in tallies:
            tally.errors += 1
    if isinstance(failure, RateLimitError):
        for tally in tallies:
            tally.rate_limited += 1
        if client.budget is not None and failure.retry_after is not None:
            await client.budget.pause(min(failure.retry_after, client.retry_policy.max_retry_after))
    if hooks["response"]:
        await _hooks.emit_response(
            hooks["response"], method, path, attempt, started, job_id, status, failure
        )
    if failure is not None:
        raise failure
    return status, response.body
