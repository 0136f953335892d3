"""The progress display of a real CLI process while the server throttles and while it is down:
on a pseudo-terminal (Python's ``pty``) the tqdm bar keeps moving and names the state; off a
TTY plain log lines keep coming at the progress interval. The server is the emulator behind a
hostile gate (``_gate.py``) that answers 429 with a Retry-After, or drops every connection."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import pty
import re
import struct
import termios
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from debitura_async.emulator import EmulatorProcess

from ._gate import Gate, open_gate
from ._support import CLI, CRM_MAP, cli_env, fast_config, write_crm_csv

pytestmark = pytest.mark.anyio

SLOW = 4.0


async def _wait_jobs(emu: EmulatorProcess, at_least: int, limit: float = 30.0) -> None:
    for _ in range(int(limit / 0.05)):
        if (await emu.stats())["jobs_created"] >= at_least:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"fewer than {at_least} jobs were created")


async def _weather(emu: EmulatorProcess, gate: Gate) -> None:
    """Open, then a throttle, open again, an outage, open until the end."""
    await _wait_jobs(emu, 2)
    gate.mode = "throttle"
    await asyncio.sleep(3.5)
    gate.mode = "open"
    await _wait_jobs(emu, (await emu.stats())["jobs_created"] + 2)
    gate.mode = "down"
    await asyncio.sleep(5.0)
    gate.mode = "open"


def _args(sample: Path, progress: str) -> list[str]:
    return [
        "ingest", str(sample), *CRM_MAP, "--batch-size", "20", "--concurrency", "2",
        "--time-scale", str(SLOW), "--no-journal", "--progress", progress,
        "--progress-interval", "0.5",
    ]  # fmt: skip


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _run_on_a_pty(
    args: list[str], env: dict[str, str], weather: Coroutine[Any, Any, None]
) -> tuple[int, str]:
    master, slave = pty.openpty()
    _set_size(slave, 40, 250)
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child closed its side
            loop.remove_reader(master)
            return
        chunks.append(data)

    os.set_blocking(master, False)
    loop.add_reader(master, readable)
    try:
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=slave, env=env,
        )  # fmt: skip
        os.close(slave)
        slave = -1
        try:
            await asyncio.wait_for(asyncio.gather(proc.communicate(), weather), 90)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await asyncio.sleep(0.1)
        readable()
    finally:
        loop.remove_reader(master)
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode is not None
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


_ELAPSED = re.compile(r"\[(\d\d:\d\d)\]")
_LOG_CLOCK = re.compile(r"\[(\d+:\d\d(?::\d\d)?)\] ")


def _seconds(clock: str) -> int:
    parts = [int(x) for x in clock.split(":")]
    return parts[-2] * 60 + parts[-1] + (parts[0] * 3600 if len(parts) == 3 else 0)


def _assert_never_silent(clocks: list[str], most: int = 2) -> None:
    """The display's elapsed clock never jumps by more than ``most`` seconds: it was refreshed
    all along, results or not."""
    seconds = [_seconds(c) for c in clocks]
    assert len(seconds) >= 5, clocks
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    assert max(gaps) <= most, f"the display went silent for {max(gaps)} s: {clocks}"


def _frames_with(text: str, needle: str) -> list[str]:
    return [f for f in re.split(r"[\r\n]", text) if needle in f]


async def test_the_bar_moves_and_names_the_state_during_a_throttle_and_an_outage(
    tmp_path: Path,
) -> None:
    async with EmulatorProcess(fast_config(time_scale=SLOW)) as emu, open_gate(emu.url) as gate:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 400)
        env = cli_env(emu)
        env["DEBITURA_BASE_URL"] = gate.url
        code, screen = await _run_on_a_pty(_args(sample.path, "auto"), env, _weather(emu, gate))
    assert code in (0, 3), screen[-3000:]
    throttled = _frames_with(screen, "waiting for the rate limit (resumes in")
    assert len(throttled) >= 2, screen[-3000:]
    clocks = {m.group(1) for f in throttled if (m := _ELAPSED.search(f))}
    assert len(clocks) >= 2, f"the bar's clock froze during the throttle: {clocks}"
    assert _frames_with(screen, "server unreachable, retry"), screen[-3000:]
    _assert_never_silent([m.group(1) for m in _ELAPSED.finditer(screen)])
    assert "ingest" in screen
    assert "ETA" in screen


async def test_log_lines_keep_coming_off_a_tty_during_a_throttle_and_an_outage(
    tmp_path: Path,
) -> None:
    async with EmulatorProcess(fast_config(time_scale=SLOW)) as emu, open_gate(emu.url) as gate:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 400)
        env = cli_env(emu)
        env["DEBITURA_BASE_URL"] = gate.url
        proc = await asyncio.create_subprocess_exec(
            *CLI, *_args(sample.path, "auto"), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            (out, err), _ = await asyncio.wait_for(
                asyncio.gather(proc.communicate(), _weather(emu, gate)), 90
            )
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    text = err.decode()
    assert proc.returncode in (0, 3), text[-3000:]
    assert "\r" not in text  # no bar off a TTY
    lines = text.splitlines()
    throttled = [line for line in lines if "waiting for the rate limit (resumes in" in line]
    assert len(throttled) >= 3, text[-3000:]  # a line at least every 0.5 s of the 3.5 s
    assert any("server unreachable, retry" in line for line in lines), text[-3000:]
    _assert_never_silent([m.group(1) for line in lines if (m := _LOG_CLOCK.match(line))])
    assert "Summary" in out.decode()
