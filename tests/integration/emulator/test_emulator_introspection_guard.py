"""``/_emulator/*`` over real HTTP: the per-instance token, Origin, Host (DNS rebinding), and a
browser-style cross-origin form POST that must not wipe anything."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import aiohttp
import orjson
import pytest

from debitura_async.emulator import Emulator, EmulatorConfig, EmulatorProcess, Fault
from tests.integration.emulator.emulator_support import (
    assert_error_body,
    fast_config,
    note_rows,
    post_job,
    serving,
    wait_terminal,
)

pytestmark = pytest.mark.anyio

TOKEN = "X-Emulator-Token"


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    data: bytes | None = None,
) -> tuple[int, object]:
    async with session.request(method, url, headers=headers, data=data) as response:
        raw = await response.read()
        return response.status, orjson.loads(raw) if raw else None


async def _stored_notes(emu: Emulator, session: aiohttp.ClientSession) -> int:
    _, job, _ = await post_job(emu, session, note_rows(emu.case_ids[:3]))
    await wait_terminal(emu, session, job["jobId"])
    return await emu.note_count()


@pytest.mark.parametrize(
    "path",
    ["/_emulator/world", "/_emulator/notes", "/_emulator/stats", "/_emulator/jobs"],
)
async def test_reads_need_the_token(path: str) -> None:
    async with serving() as (emu, session):
        url = emu.url + path
        status, body = await _call(session, "GET", url, {})
        assert status == 401
        assert_error_body(body)
        assert TOKEN in str(body)
        assert emu.api_key not in str(body)
        assert (await _call(session, "GET", url, {TOKEN: "not-the-token"}))[0] == 403
        assert (await _call(session, "GET", url, {TOKEN: emu.token[:-1]}))[0] == 403
        assert (await _call(session, "GET", url, {TOKEN: ""}))[0] == 401
        assert (await _call(session, "GET", url, {TOKEN: emu.token}))[0] == 200


async def test_each_instance_has_its_own_token() -> None:
    async with serving() as (first, session), Emulator(fast_config()) as second:
        assert first.token != second.token
        assert len(first.token) >= 32
        url = second.url + "/_emulator/stats"
        assert (await _call(session, "GET", url, {TOKEN: first.token}))[0] == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_emulator/reset"),
        ("POST", "/_emulator/restart?keepNotes=false"),
        ("DELETE", "/_emulator/faults"),
        ("POST", "/_emulator/faults"),
    ],
)
async def test_control_endpoints_refuse_without_the_token_and_change_nothing(
    method: str, path: str
) -> None:
    async with serving() as (emu, session):
        await emu.add_fault(Fault("slow", count=5, endpoint="GET /me"))
        stored = await _stored_notes(emu, session)
        for headers in ({}, {TOKEN: "wrong"}):
            status, body = await _call(session, method, emu.url + path, headers)
            assert status in (401, 403)
            assert_error_body(body)
        assert await emu.note_count() == stored == 3
        assert len(emu.service.faults.describe()) == 1


async def test_a_cross_origin_form_post_to_reset_wipes_nothing() -> None:
    """What a page on another site can make a browser send without a preflight."""
    async with serving() as (emu, session):
        stored = await _stored_notes(emu, session)
        url = emu.url + "/_emulator/reset"
        simple = [
            {"Content-Type": "text/plain", "Origin": "http://evil.example"},
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
            {"Content-Type": "multipart/form-data; boundary=x", "Sec-Fetch-Site": "cross-site"},
            {"Content-Type": "text/plain"},  # an old browser that sends no Origin
        ]
        for headers in simple:
            status, _ = await _call(session, "POST", url, headers, data=b"reset=1")
            assert status in (401, 403), headers
        # Even a caller holding the token cannot wipe with a form body...
        for kind in ("text/plain", "application/x-www-form-urlencoded"):
            status, body = await _call(
                session, "POST", url, {TOKEN: emu.token, "Content-Type": kind}, data=b"x"
            )
            assert status == 415, body
        assert await emu.note_count() == stored == 3
        assert len(await emu.notes()) == 3
        # ...but can without one.
        assert (await _call(session, "POST", url, {TOKEN: emu.token}))[0] == 200
        assert await emu.note_count() == 0


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "https://127.0.0.1:{port}",  # another scheme is another origin
        "http://127.0.0.1:1",  # another port too
        "http://evil.example:{port}",
    ],
)
async def test_cross_origin_requests_are_refused_even_with_the_token(origin: str) -> None:
    async with serving() as (emu, session):
        headers = {TOKEN: emu.token, "Origin": origin.format(port=emu.port)}
        for method, path in (("GET", "/_emulator/world"), ("POST", "/_emulator/reset")):
            status, body = await _call(session, method, emu.url + path, headers)
            assert status == 403, (method, path)
            assert_error_body(body)
            assert "cross-origin" in str(body)


async def test_same_origin_requests_pass() -> None:
    async with serving() as (emu, session):
        for origin in (emu.url, f"http://localhost:{emu.port}"):
            headers = {TOKEN: emu.token, "Origin": origin, "Sec-Fetch-Site": "same-origin"}
            assert (await _call(session, "GET", emu.url + "/_emulator/stats", headers))[0] == 200


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}", "localhost:1", "::"],
)
async def test_a_dns_rebinding_host_is_refused_even_with_the_token(host: str) -> None:
    async with serving() as (emu, session):
        headers = {TOKEN: emu.token, "Host": host.format(port=emu.port)}
        status, body = await _call(session, "GET", emu.url + "/_emulator/world", headers)
        assert status == 403
        assert "DNS rebinding" in str(body)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
async def test_loopback_hosts_pass(host: str) -> None:
    async with serving() as (emu, session):
        headers = {TOKEN: emu.token, "Host": host.format(port=emu.port)}
        assert (await _call(session, "GET", emu.url + "/_emulator/world", headers))[0] == 200


async def test_unknown_introspection_paths_are_guarded_too() -> None:
    async with serving() as (emu, session):
        assert (await _call(session, "GET", emu.url + "/_emulator/nope", {}))[0] == 401
        assert (await _call(session, "GET", emu.url + "/_emulator", {}))[0] == 401
        headers = {TOKEN: emu.token}
        assert (await _call(session, "GET", emu.url + "/_emulator/nope", headers))[0] == 404


async def test_the_debitura_endpoints_need_no_token() -> None:
    async with serving() as (emu, session):
        status, _ = await _call(session, "GET", emu.url + "/me", {"XApiKey": emu.api_key})
        assert status == 200


async def test_the_in_process_api_needs_no_token() -> None:
    async with serving() as (emu, session):
        await _stored_notes(emu, session)
        assert len(await emu.notes()) == 3
        await emu.reset()
        assert await emu.note_count() == 0


async def test_a_chosen_token_is_used_and_a_weak_one_refused() -> None:
    async with Emulator(fast_config(), token="a-token-of-my-choice") as emu:
        assert emu.token == "a-token-of-my-choice"
    for weak in ("short", "sixteen chars ok?", " padded-token-here ", "tøken-not-ascii-1"):
        with pytest.raises(ValueError, match="16\\+ printable ASCII"):
            Emulator(EmulatorConfig(), token=weak)


async def test_the_emulator_process_knows_and_sends_its_token() -> None:
    async with (
        EmulatorProcess(fast_config()) as emu,
        aiohttp.ClientSession() as session,
    ):
        assert len(emu.token) >= 32
        assert emu.introspection_headers == {TOKEN: emu.token}
        assert (await _call(session, "GET", emu.url + "/_emulator/stats", {}))[0] == 401
        await emu.add_fault(Fault("slow", count=1))
        assert (await emu.stats())["notes"] == 0
        await emu.clear_faults()
        await emu.reset()


async def _banner_lines(*args: str) -> tuple[list[str], int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "debitura_async.emulator",
        "--port",
        "0",
        "--partners",
        "1",
        "--exit-on-stdin-eof",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("X-Emulator-Token" in line for line in lines):
            raw = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not raw:
                break
            lines.append(raw.decode())
        proc.stdin.close()
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return lines, code


async def test_the_cli_prints_the_token_at_start() -> None:
    lines, code = await _banner_lines()
    assert code == 0
    token_lines = [line for line in lines if "X-Emulator-Token" in line]
    assert len(token_lines) == 1
    assert token_lines[0].startswith("  introspection token: X-Emulator-Token: ")
    assert len(token_lines[0].split(": ")[-1].strip()) >= 32

    lines, code = await _banner_lines("--token", "my-fixed-token-0001")
    assert code == 0
    assert "  introspection token: X-Emulator-Token: my-fixed-token-0001\n" in lines


async def test_the_cli_refuses_a_weak_token() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "debitura_async.emulator",
        "--port",
        "0",
        "--token",
        "short",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"16+ printable ASCII" in err
    assert not out
