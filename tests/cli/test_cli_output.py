"""What the CLI prints: ``ingest --json`` (one object on stdout, progress on stderr), ``-v``/``-q``
after the command, ``python -m debitura_async``, messages in CLI flags, one line for any
library error, a day-long Retry-After said out loud, the demo's equivalent command run as
printed and nothing left behind, and the library's retry events kept off stamina's logger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import sys
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from debitura_async.emulator import EmulatorProcess

from ._gate import open_gate
from ._support import CLI, CRM_MAP, cli_env, fast_config, run_cli, write_crm_csv

pytestmark = pytest.mark.anyio


async def test_ingest_json_prints_one_object_on_stdout(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 120)
        result = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--json", "--time-scale", "200", "--progress",
            "log", "--batch-size", "50", env=cli_env(emu),
        )  # fmt: skip
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert len(lines) == 1, result.out
    data = orjson.loads(lines[0])
    assert data["exitCode"] == 0
    assert data["complete"] is True
    assert data["rowsRead"] == data["rowsSucceeded"] == 120
    assert data["rowsUnaccounted"] == 0
    assert data["jobs"] == {"completed": 3}
    assert "Summary" in result.err  # the human summary moved to stderr


@pytest.mark.parametrize("where", ["before", "after"])
async def test_verbose_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 10)
        args: list[str | Path] = ["ingest", sample.path, *CRM_MAP, "--no-journal"]
        argv = ["-v", *args] if where == "before" else [*args, "-v"]
        result = await run_cli(*argv, "--time-scale", "200", env=cli_env(emu))
    assert result.code == 0, result
    assert "DEBUG debitura_async: POST /ingestion-jobs -> 202" in result.err
    assert emu.api_key not in result.err


async def test_quiet_prints_no_progress_or_notes(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 10)
        result = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--no-journal", "-q", "--time-scale", "200",
            env=cli_env(emu),
        )  # fmt: skip
    assert result.code == 0, result
    assert result.err == ""
    assert "Summary" in result.out


async def test_python_dash_m_debitura_async_works() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "debitura_async", "--version", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode().startswith("debitura-async ")


async def test_messages_name_cli_flags_not_python_arguments(tmp_path: Path) -> None:
    sample = tmp_path / "x.csv"
    sample.write_text("caseId,description\n")
    env = cli_env()
    env["DEBITURA_API_KEY"] = "k"
    result = await run_cli(
        "ingest", sample, "--base-url", "http://api.example.com", "--no-journal", env=env
    )
    assert result.code == 2, result
    assert "--allow-insecure-http" in result.err
    assert "allow_insecure_http" not in result.err
    result = await run_cli("whoami", env=cli_env())  # no key at all
    assert result.code == 2, result
    assert "--api-key" in result.err
    assert "$DEBITURA_API_KEY" in result.err
    assert "api_key=" not in result.err


async def _weird_server(request: web.Request) -> web.Response:
    return web.Response(status=418, text="I'm a teapot\nTraceback (most recent call last):\n  x")


async def test_any_library_error_is_one_line_without_traceback() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _weird_server)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        env = cli_env()
        env.update(DEBITURA_API_KEY="k", DEBITURA_BASE_URL=url)
        result = await run_cli("whoami", env=env)
    finally:
        await runner.cleanup()
    assert result.code == 4, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("debitura-async whoami: error: ")
    assert "418" in lines[0]


async def test_a_day_long_retry_after_is_said_not_waited_in_silence(tmp_path: Path) -> None:
    """A Retry-After over the client's max_retry_after (300 s) is not sat out: the run stops at
    once, says what the server asked for, and leaves everything resumable (exit 3)."""
    async with (
        EmulatorProcess(fast_config()) as emu,
        open_gate(emu.url, retry_after=86400) as gate,
    ):
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 40)
        env = cli_env(emu)
        env["DEBITURA_BASE_URL"] = gate.url
        journal = tmp_path / "run.sqlite"
        proc = await asyncio.create_subprocess_exec(
            *CLI, "ingest", str(sample.path), *CRM_MAP, "--journal", str(journal),
            "--progress", "log", "--progress-interval", "0.3", "--time-scale", "200",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            for _ in range(200):  # let the key check through, then throttle the jobs
                if journal.exists():
                    break
                await asyncio.sleep(0.02)
            gate.mode = "throttle"
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    assert proc.returncode == 3, (out, err)
    assert b"the server asks to wait 86400 s" in err, err


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_the_demo_leaves_nothing_behind_and_its_command_runs_as_printed(
    tmp_path: Path,
) -> None:
    env = cli_env()
    env["TMPDIR"] = str(tmp_path)
    report = tmp_path / "kept" / "demo report.csv"  # a space: the command must quote it
    report.parent.mkdir()
    demo = await run_cli(
        "demo", "--time-scale", "50", "--progress", "log", "--report", report, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert demo.code == 1, demo
    left = _names(tmp_path)
    assert left == ["kept"], left  # no temporary directory, no journal
    first = demo.out.splitlines()[2].strip()
    argv = shlex.split(first)
    assert argv[:2] == ["debitura-async", "ingest"]
    report.unlink()
    again = await run_cli(*argv[1:], env=env, cwd=tmp_path)
    assert again.code == 1, again
    assert report.is_file()
    assert _names(tmp_path) == ["kept"]


def test_the_librarys_retries_stay_off_stamina_logger(caplog: pytest.LogCaptureFixture) -> None:
    """A user's script that logs at WARNING sees no ``stamina.retry_scheduled`` from us."""
    from debitura_async import DebituraClient, RetryPolicy

    async def call() -> None:
        client = DebituraClient(
            "k",
            base_url="http://127.0.0.1:9",
            retry=RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02),
        )
        async with client:
            with contextlib.suppress(Exception):
                await client.me()

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with caplog.at_level(logging.DEBUG):
        asyncio.run(call())
    names = {r.name for r in caplog.records}
    assert "stamina" not in names, caplog.text
    retries = [r for r in caplog.records if r.name == "debitura_async.retry"]
    assert len(retries) == 2
    assert retries[0].levelno == logging.INFO
    assert "retry 1 of GET /me" in retries[0].getMessage()
    assert (list(root.handlers), root.level) == (handlers, level)  # the root is left alone
    assert not logging.getLogger("debitura_async").handlers  # the library adds no handler
