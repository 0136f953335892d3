"""kill -9 at many points of an ``ingest`` run, then ``ingest --resume``: every valid note is
stored exactly once and the report accounts for every input line.

Deterministic crash points use the test-only hooks of :mod:`debitura_async.journal`
(through the test-only launcher ``_launch.py``, which installs ``journal.set_commit_hooks``
callbacks: ``DEBITURA_ASYNC_TEST_CRASH_AFTER=<n>``: SIGKILL right after the n-th journal commit;
``DEBITURA_ASYNC_TEST_CRASH_BEFORE=<step>:<n>``: right before the n-th commit of a step).
Random ones SIGKILL the subprocess after a delay drawn from a seeded RNG.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorProcess
from debitura_async.journal import JournalStore

from ._support import (
    CRASH_AFTER_ENV,
    CRASH_BEFORE_ENV,
    CRM_MAP,
    Sample,
    assert_notes_exactly_once,
    assert_report_covers,
    cli_env,
    fast_config,
    read_report,
    run_cli,
    run_cli_killed_after,
    write_crm_csv,
)

pytestmark = pytest.mark.anyio

KILLED = -int(signal.SIGKILL)


def sample_for(emu: EmulatorProcess, path: Path, count: int) -> Sample:
    return write_crm_csv(
        path,
        emu.case_ids,
        count,
        bad={11: b'N-11,"never closed', 150: b"N-150,x"},
        invalid={60: {"CaseGuid": "nope"}},
        failing={90: {"CaseGuid": str(emu.other_partner_case_ids[0])}},
        multiline_every=37,
        blank_after=(5,),
    )


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param({CRASH_AFTER_ENV: "1"}, id="after-journal-created"),
        pytest.param({CRASH_AFTER_ENV: "2"}, id="after-first-submitting"),
        pytest.param({CRASH_AFTER_ENV: "7"}, id="after-7-commits"),
        pytest.param({CRASH_AFTER_ENV: "23"}, id="after-23-commits"),
        pytest.param({CRASH_AFTER_ENV: "44"}, id="after-44-commits"),
        pytest.param({CRASH_BEFORE_ENV: "accepted:3"}, id="job-created-not-recorded"),
        pytest.param({CRASH_BEFORE_ENV: "finished:4"}, id="job-done-not-recorded"),
        pytest.param({CRASH_BEFORE_ENV: "submitting:9"}, id="before-a-submit"),
    ],
)
async def test_kill_at_a_journal_step_then_resume(tmp_path: Path, hook: dict[str, str]) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", 400)
        report = tmp_path / "report.csv"
        args: list[str | Path] = [
            "ingest", sample.path, *CRM_MAP, "--batch-size", "20", "--concurrency", "4",
            "--time-scale", "200", "--report", report,
        ]  # fmt: skip
        crashed = await run_cli(*args, env=cli_env(emu, **hook))
        assert crashed.code == KILLED, crashed
        assert not report.exists()  # only whole reports are ever published

        resumed = await run_cli(*args, "--resume", env=cli_env(emu))
        assert resumed.code == 1, resumed  # the planted bad lines and the refused row
        assert "attempt 2" in resumed.out
        await assert_notes_exactly_once(emu, sample)
        jobs = await emu.jobs()
    assert_report_covers(read_report(report), sample)
    # no batch became two jobs: the resumed POSTs were replays
    keys = [j["idempotencyKey"] for j in jobs]
    assert len(keys) == len(set(keys))
    with JournalStore.open(tmp_path / "export.csv.journal.sqlite") as store:
        assert store.run.completed_at is not None
        assert set(store.state_counts()) == {"finished"}


async def test_kill_at_random_moments_repeatedly_then_resume(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    async with EmulatorProcess(fast_config(time_scale=10.0)) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", 1500)
        report = tmp_path / "report.jsonl"
        journal = tmp_path / "run.sqlite"
        args: list[str | Path] = [
            "ingest", sample.path, *CRM_MAP, "--batch-size", "50", "--concurrency", "4",
            "--time-scale", "10", "--journal", journal, "--report", report,
        ]  # fmt: skip
        kills = 0
        for attempt in range(5):
            # random moments after the run started (the interpreter's start-up takes a second
            # or more on a loaded machine: counting from the process start would kill before
            # anything is recorded every time)
            delay = rng.uniform(0.05, 0.8)
            resume = ["--resume"] if JournalStore.holds_run(journal) else []
            # the last kill waits for a finished job in the journal, so that the final run
            # surely replays one (a "resumed" result); under a loaded machine all four earlier
            # kills may come before any job finished, or even was accepted
            started = journal.exists if attempt < 4 else (lambda: _journal_holds_a_job(journal))
            outcome = await run_cli_killed_after(
                delay, *args, *resume, env=cli_env(emu), once=started
            )
            if outcome == KILLED:
                kills += 1
        assert kills >= 4, "the runs ended before the kills: make the input bigger"

        resume = ["--resume"] if JournalStore.holds_run(journal) else []
        final = await run_cli(*args, *resume, env=cli_env(emu))
        assert final.code == 1, final
        await assert_notes_exactly_once(emu, sample)
    records = read_report(report)
    assert_report_covers(records, sample)
    assert any(r["resumed"] for r in records if r["record"] == "job")


def _journal_holds_a_job(journal: Path) -> bool:
    """A batch whose job finished is in the journal (read-only; False while none is)."""
    if not journal.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT count(*) FROM batches WHERE state = 'finished'").fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])
