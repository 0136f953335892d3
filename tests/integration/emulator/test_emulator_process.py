"""EmulatorProcess and the command line, as real child processes."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
import pytest

from debitura_async.emulator import EmulatorProcess, Fault, FaultKind, LatencyModel, World
from tests.integration.emulator.emulator_support import (
    fast_config,
    note_rows,
    post_job,
    request,
    wait_terminal,
)

pytestmark = pytest.mark.anyio

MODULE = [sys.executable, "-m", "debitura_async.emulator"]


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pid: int, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        await asyncio.sleep(0.02)


async def spawn(*args: str, stdin: int = asyncio.subprocess.DEVNULL) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *MODULE,
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**24,
    )


async def finish(proc: asyncio.subprocess.Process, sig: signal.Signals | None) -> int:
    if sig is not None and proc.returncode is None:
        proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


async def ready_line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line, "no ready line"
    result: dict[str, Any] = orjson.loads(line)
    return result


# ---------------------------------------------------------------- EmulatorProcess


async def test_emulator_process_serves_introspects_and_shuts_down_cleanly() -> None:
    config = fast_config(latency=LatencyModel.zero())
    async with EmulatorProcess(config) as emu, aiohttp.ClientSession() as session:
        pid = emu.pid
        assert not gone(pid)
        assert emu.url.startswith("http://127.0.0.1:")
        assert len(emu.partners) == 2
        assert len(emu.case_ids) == 10
        assert set(emu.case_ids).isdisjoint(emu.other_partner_case_ids)

        status, body, _ = await post_job(emu, session, note_rows(emu.case_ids[:3], externalRef="X"))
        assert status == 202
        assert (await wait_terminal(emu, session, body["jobId"]))["status"] == 2
        assert len(await emu.notes(external_ref="X")) == 3
        assert len(await emu.notes(case_id=emu.case_ids[0])) == 1
        assert await emu.note_count() == 3
        jobs = await emu.jobs()
        assert [j["jobId"] for j in jobs] == [body["jobId"]]
        stats = await emu.stats()
        assert stats["requests"]["POST /ingestion-jobs"] == {"202": 1}

        await emu.add_fault(Fault(kind=FaultKind.HTTP_ERROR, count=1, endpoint="GET /me"))
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 503
        await emu.add_fault(Fault(kind=FaultKind.HTTP_ERROR, count=1, endpoint="GET /me"))
        await emu.clear_faults()
        assert (await request(session, "GET", emu.url + "/me", key=emu.api_key))[0] == 200

        await emu.restart(keep_notes=True)
        assert await emu.jobs() == []
        assert await emu.note_count() == 3
        await emu.reset()
        assert await emu.note_count() == 0
    assert emu.returncode == 0
    assert gone(pid)


async def test_emulator_process_passes_the_whole_config() -> None:
    world = World.generate(partners=1, cases_per_partner=3, seed=42)
    config = fast_config(world=world, store_notes=False, latency=LatencyModel.zero())
    async with EmulatorProcess(config) as emu, aiohttp.ClientSession() as session:
        assert emu.partners == world.partners
        _, body, _ = await post_job(emu, session, note_rows(emu.case_ids))
        await wait_terminal(emu, session, body["jobId"])
        assert await emu.note_count() == 3
        assert await emu.notes() == []  # store_notes=False reached the child


async def test_emulator_process_reports_a_child_that_dies_at_startup() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = EmulatorProcess(fast_config(), port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited with code 1"):
            await proc.start()
    assert proc.returncode == 1


async def test_child_exits_when_its_parent_dies() -> None:
    script = (
        "import asyncio\n"
        "from debitura_async.emulator import EmulatorConfig, EmulatorProcess\n"
        "async def main():\n"
        "    async with EmulatorProcess(EmulatorConfig(partners=1, cases_per_partner=1)) as e:\n"
        "        print(e.pid, flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    child_pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    assert not gone(child_pid)
    parent.kill()  # no cleanup code runs in the parent
    await parent.wait()
    await wait_gone(child_pid)


# ---------------------------------------------------------------- command line


async def test_cli_json_ready_line_serves_and_sigterm_exits_0() -> None:
    proc = await spawn("--port", "0", "--json", "--partners", "2", "--cases-per-partner", "4")
    try:
        ready = await ready_line(proc)
        assert ready["url"].startswith("http://127.0.0.1:")
        assert [len(p["caseIds"]) for p in ready["partners"]] == [4, 4]
        key = ready["partners"][0]["apiKey"]
        async with aiohttp.ClientSession() as session:
            status, me, _ = await request(session, "GET", ready["url"] + "/me", key=key)
        assert status == 200
        assert me["id"] == ready["partners"][0]["id"]
    finally:
        code = await finish(proc, signal.SIGTERM)
    assert code == 0


async def test_python_m_banner_shows_url_keys_and_cases_and_sigint_exits_0() -> None:
    proc = await spawn("--port", "0", "--partners", "1", "--cases-per-partner", "5")
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or "introspection" not in lines[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line
            lines.append(line.decode())
        banner = "".join(lines)
        assert "listening on http://127.0.0.1:" in banner
        assert "XApiKey: emu-1-" in banner
        assert "cases (5):" in banner
    finally:
        code = await finish(proc, signal.SIGINT)
    assert code == 0


async def test_cli_refuses_non_loopback_host_without_the_flag() -> None:
    proc = await spawn("--host", "0.0.0.0", "--port", "0", "--json")  # noqa: S104 - refused
    assert proc.stderr is not None
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"non-loopback" in stderr
    assert stdout == b""


async def test_cli_allows_non_loopback_host_with_the_flag() -> None:
    proc = await spawn("--host", "0.0.0.0", "--port", "0", "--json", "--allow-non-loopback")  # noqa: S104
    try:
        ready = await ready_line(proc)
        assert ready["url"].startswith("http://0.0.0.0:")
    finally:
        code = await finish(proc, signal.SIGTERM)
    assert code == 0


async def test_cli_world_file_and_stdin_eof(tmp_path: Path) -> None:
    world = World.generate(partners=1, cases_per_partner=2, seed=8)
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world.to_dict()))
    args = ["--port", "0", "--json", f"--world={path}", "--exit-on-stdin-eof"]
    proc = await spawn(*args, stdin=asyncio.subprocess.PIPE)
    try:
        ready = await ready_line(proc)
        assert ready["partners"] == world.to_dict()["partners"]
        assert proc.stdin is not None
        proc.stdin.close()  # like a parent that went away; no signal is sent below
    finally:
        code = await finish(proc, None)  # kills only if it is still running after 10 s
    assert code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--fault", "explode:count=1"],
        ["--time-scale", "0"],
        ["--world", "/nonexistent/world.json"],
        ["--rate-per-minute", "lots"],
    ],
)
async def test_cli_bad_options_exit_2(args: list[str]) -> None:
    proc = await spawn("--port", "0", "--json", *args)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert stdout == b""
    assert b"error" in stderr
