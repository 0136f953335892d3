"""The emulator option added for this suite: ``RateLimits.retry_after_body``.

(``--[no-]retry-after-body`` on the command line, ``retryAfterBody`` in a JSON config.)

Debitura's docs disagree on how a 429 says how long to wait (a ``Retry-After`` header in one
version, the body's ``retryAfter`` in another). The emulator could already drop the header; with
``retry_after_body=False`` it drops the body field too, so the fault matrix can send 429s that
carry the wait in the header only, or nowhere (the client then falls back on its backoff).
"""

from __future__ import annotations

import argparse

import aiohttp
import pytest

from debitura_async import DebituraClient, RateLimitError
from debitura_async.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorProcess,
    Fault,
    LatencyModel,
    RateLimits,
)
from debitura_async.emulator import cli as emulator_cli

pytestmark = pytest.mark.anyio

SCALE = 100.0


def limited(**limits: bool) -> EmulatorConfig:
    return EmulatorConfig(
        time_scale=SCALE,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(enabled=False, **limits),
        faults=(Fault("rate_limit", count=1, retry_after=0.25 * SCALE),),  # 0.25 s real
    )


async def raw_429(emu: Emulator | EmulatorProcess) -> tuple[int, dict[str, object], str | None]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(emu.url + "/me", headers={"XApiKey": emu.api_key}) as response,
    ):
        return response.status, await response.json(), response.headers.get("Retry-After")


@pytest.mark.parametrize(
    ("header", "body", "expected_header", "expected_wait"),
    [
        (True, True, "0.25", 0.25),
        (True, False, "0.25", 0.25),  # header only: the client reads the header
        (False, True, None, 0.25),  # body only (the emulator's earlier option)
        (False, False, None, None),  # no hint at all: the client must back off on its own
    ],
)
async def test_retry_after_in_header_body_both_or_neither(
    header: bool, body: bool, expected_header: str | None, expected_wait: float | None
) -> None:
    config = limited(retry_after_header=header, retry_after_body=body)
    async with Emulator(config) as emu:
        status, payload, retry_after = await raw_429(emu)
        await emu.add_fault(Fault("rate_limit", count=1, retry_after=0.25 * SCALE))
        async with DebituraClient(emu.api_key, base_url=emu.url, max_retries=0) as client:
            with pytest.raises(RateLimitError) as info:
                await client.me()
    assert status == 429
    assert payload["error"] == "rate_limit_exceeded"
    assert ("retryAfter" in payload) is body
    assert payload.get("retryAfter", 0.25) == pytest.approx(0.25)
    assert retry_after == expected_header
    if expected_wait is None:
        assert info.value.retry_after is None
        assert "Retry after" not in str(payload["message"])
    else:
        assert info.value.retry_after == pytest.approx(expected_wait)


def test_the_option_round_trips_through_dict_json_and_the_command_line() -> None:
    limits = RateLimits(retry_after_body=False)
    assert RateLimits().retry_after_body is True
    assert limits.to_dict()["retryAfterBody"] is False
    assert RateLimits.from_dict(limits.to_dict()) == limits
    assert RateLimits.from_dict({}).retry_after_body is True  # older configs keep the body
    parser = argparse.ArgumentParser()
    emulator_cli.add_arguments(parser)
    off = emulator_cli.build_config(parser.parse_args(["--no-retry-after-body"]))
    on = emulator_cli.build_config(parser.parse_args(["--retry-after-body"]))
    default = emulator_cli.build_config(parser.parse_args([]))
    assert (off.rate_limits.retry_after_body, on.rate_limits.retry_after_body) == (False, True)
    assert default.rate_limits.retry_after_body is True


async def test_the_option_reaches_an_emulator_process() -> None:
    async with EmulatorProcess(limited(retry_after_header=True, retry_after_body=False)) as emu:
        status, payload, retry_after = await raw_429(emu)
    assert status == 429
    assert "retryAfter" not in payload
    assert retry_after == "0.25"
