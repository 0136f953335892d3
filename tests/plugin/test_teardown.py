"""Fixture teardown leaves no process, port, thread or task behind, also when a test fails
with a job still being polled. Checked inside the pytest subprocess, while it still runs."""

from __future__ import annotations

import json
from pathlib import Path

from ._run import run_pytest, summary, write_project

CONFTEST = '''
import asyncio, json, os, socket, threading
from pathlib import Path
import pytest

STATE = {"ports": [], "pids": [], "leaked_tasks": []}


def ours(task):
    code = getattr(task.get_coro(), "cr_code", None)
    name = code.co_filename if code is not None else ""
    return "debitura_async" in name or "aiohttp" in name


@pytest.fixture
def state():
    return STATE


@pytest.fixture
async def leak_check():
    """Set up before the debitura_ fixtures, so torn down after them, on the same loop."""
    yield STATE
    await asyncio.sleep(0.05)
    STATE["leaked_tasks"] += [repr(t) for t in asyncio.all_tasks()
                              if t is not asyncio.current_task() and ours(t)]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pytest_unconfigure(config):  # after the session fixtures were torn down
    Path("report.json").write_text(json.dumps({
        "ports": STATE["ports"],
        "open_ports": [p for p in STATE["ports"] if port_open(p)],
        "pids": STATE["pids"],
        "alive_pids": [p for p in STATE["pids"] if alive(p)],
        "threads": [t.name for t in threading.enumerate() if t.name.startswith("debitura")],
        "leaked_tasks": STATE["leaked_tasks"],
    }))
'''

TESTS = """
import pytest

pytestmark = pytest.mark.anyio


async def test_in_process(leak_check, debitura_emulator, debitura_client):
    leak_check["ports"].append(debitura_emulator.port)
    await debitura_client.me()


async def test_child_process(leak_check, debitura_emulator_process):
    leak_check["ports"].append(debitura_emulator_process.port)
    leak_check["pids"].append(debitura_emulator_process.pid)


@pytest.mark.xfail(strict=True, reason="fails on purpose with a job still tracked")
@pytest.mark.debitura_config(time_scale=1.0)
async def test_failing_while_a_job_is_polled(leak_check, debitura_emulator, debitura_client,
                                             debitura_world, debitura_faults):
    leak_check["ports"].append(debitura_emulator.port)
    await debitura_faults.latency(0.05, endpoint="GET /ingestion-jobs/{jobId}")
    handle = await debitura_client.submit(debitura_world.rows(50))
    await handle.wait(timeout=0.2)  # JobWaitTimeout: the job stays tracked


async def test_per_test_resources_are_gone_before_the_next_test(state):
    import os, socket
    assert len(state["ports"]) == 3 and len(state["pids"]) == 1
    for port in state["ports"]:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, port
    for pid in state["pids"]:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"child {pid} still alive")


async def test_session_emulators(leak_check, debitura_session_emulator,
                                 debitura_session_emulator_process):
    leak_check["ports"] += [debitura_session_emulator.port, debitura_session_emulator_process.port]
    leak_check["pids"].append(debitura_session_emulator_process.pid)
"""


def test_nothing_is_left_behind(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"conftest.py": CONFTEST, "test_leaks.py": TESTS})
    result = run_pytest(project, "-p", "no:asyncio")
    assert result.returncode == 0, summary(result)
    assert "4 passed, 1 xfailed" in result.stdout, summary(result)
    for bad in ("Task was destroyed", "Unclosed", "never retrieved", "ResourceWarning"):
        assert bad not in result.stdout + result.stderr, summary(result)
    report = json.loads((project / "report.json").read_text())
    assert len(report["ports"]) == 5, report
    assert len(report["pids"]) == 2
    assert report["open_ports"] == []
    assert report["alive_pids"] == []
    assert report["threads"] == []
    assert report["leaked_tasks"] == []
