"""Graceful stops of a real CLI child process: SIGINT (Ctrl+C), SIGTERM and SIGHUP each stop the
sending, print the summary, publish the report marked partial and exit 3; a resume then stores
every note exactly once (the emulator's notes are the proof). A second Ctrl+C exits at once and
the journal is still safe to resume."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorProcess
from debitura_async.journal import JournalStore

from ._support import (
    CLI,
    CRM_MAP,
    Result,
    assert_notes_exactly_once,
    cli_env,
    fast_config,
    read_report,
    run_cli,
    write_crm_csv,
)

pytestmark = pytest.mark.anyio

SLOW = 4.0
"""The emulator's time scale: a 20-row job takes about a second, so a run lasts long enough to
be stopped in the middle."""


async def _start_then_signal(
    emu: EmulatorProcess, args: list[str], signals: list[signal.Signals]
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(emu),
    )
    try:
        for _ in range(400):  # until some jobs exist and some are still running
            stats = await emu.stats()
            if stats["jobs_created"] >= 3:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the run never created jobs")
        for signum in signals:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
            await asyncio.sleep(0.01)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def _args(sample_path: Path, journal: Path, report: Path, *extra: str) -> list[str]:
    return [
        "ingest", str(sample_path), *CRM_MAP, "--batch-size", "20", "--concurrency", "2",
        "--time-scale", str(SLOW), "--journal", str(journal), "--report", str(report),
        "--progress", "log", "--progress-interval", "0.5", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "name"),
    [(signal.SIGINT, "Ctrl+C"), (signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")],
)
async def test_a_signal_stops_with_summary_partial_report_and_exit_3_then_resume(
    tmp_path: Path, signum: signal.Signals, name: str
) -> None:
    async with EmulatorProcess(fast_config(time_scale=SLOW)) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 600)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.jsonl"
        stopped = await _start_then_signal(emu, _args(sample.path, journal, report), [signum])
        assert stopped.code == 3, stopped
        assert f"{name}: stopping" in stopped.err
        assert "Summary" in stopped.out
        assert f"stopped     by {name}" in stopped.out or f"by {name}" in stopped.out
        assert "exit code 3" in stopped.out
        records = read_report(report)  # published, not left as .partial
        assert records[-1]["record"] == "run"
        assert records[-1]["outcome"] == "partial"
        assert not report.with_name(report.name + ".partial").exists()
        assert not journal.with_name(journal.name + "-wal").exists()  # closed cleanly

        resumed = await run_cli(*_args(sample.path, journal, report, "--resume"), env=cli_env(emu))
        assert resumed.code == 0, resumed
        await assert_notes_exactly_once(emu, sample)
    final = read_report(report)
    assert all(r["record"] != "run" for r in final)  # whole now: no partial marker
    with JournalStore.open(journal) as store:
        assert store.run.completed_at is not None


async def test_a_second_ctrl_c_exits_at_once_and_the_journal_still_resumes(
    tmp_path: Path,
) -> None:
    async with EmulatorProcess(fast_config(time_scale=SLOW)) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 600)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.csv"
        args = _args(sample.path, journal, report)
        stopped = await _start_then_signal(emu, args, [signal.SIGINT, signal.SIGINT])
        assert stopped.code == 3, stopped  # at once, or the first stop was already done
        resumed = await run_cli(*_args(sample.path, journal, report, "--resume"), env=cli_env(emu))
        assert resumed.code == 0, resumed
        await assert_notes_exactly_once(emu, sample)
