"""The files of a run: a report that would overwrite the input or the journal (or its -wal/-shm)
is refused before anything is written or sent (exit 2); --resume refuses a journal that holds
no run or is empty; the journal and the report are created 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorProcess

from ._support import CRM_MAP, cli_env, fast_config, run_cli, write_crm_csv

pytestmark = pytest.mark.anyio


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "case",
    ["report=input", "report=journal", "report=journal-wal", "report=journal-shm",
     "journal=input", "report=hardlink-of-input", "report=symlink-to-journal"],
)  # fmt: skip
async def test_colliding_files_are_refused_before_anything_is_sent(
    tmp_path: Path, case: str
) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 30)
        before = sample.path.read_bytes()
        journal = tmp_path / "run.sqlite"
        report = tmp_path / "report.csv"
        if case == "report=input":
            report = sample.path
        elif case == "report=journal":
            journal = tmp_path / "run.jsonl"
            report = journal
        elif case == "report=journal-wal":
            report = tmp_path / "run.sqlite-wal"
        elif case == "report=journal-shm":
            report = tmp_path / "run.sqlite-shm"
        elif case == "journal=input":
            journal = sample.path
        elif case == "report=hardlink-of-input":
            report = tmp_path / "link.csv"
            os.link(sample.path, report)
        elif case == "report=symlink-to-journal":
            journal.write_bytes(b"")
            report = tmp_path / "jlink.csv"
            report.symlink_to(journal)
        result = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--journal", journal, "--report", report,
            "--time-scale", "200", env=cli_env(emu),
        )  # fmt: skip
        assert result.code == 2, result
        if report.suffix in (".csv", ".jsonl"):
            assert "nothing was written or sent" in result.err, result
        else:  # a -wal/-shm name is no report name: refused by that rule first
            assert ".csv or .jsonl" in result.err, result
        assert "Traceback" not in result.err
        stats = await emu.stats()
        assert stats["jobs_created"] == 0
        assert sample.path.read_bytes() == before  # the input is untouched


async def test_journal_and_report_are_created_owner_only(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 30)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.jsonl"
        old_umask = os.umask(0o022)  # a permissive umask: 0644 would be the default
        try:
            result = await run_cli(
                "ingest", sample.path, *CRM_MAP, "--journal", journal, "--report", report,
                "--time-scale", "200", env=cli_env(emu),
            )  # fmt: skip
        finally:
            os.umask(old_umask)
        assert result.code == 0, result
    assert _mode(journal) == 0o600
    assert _mode(report) == 0o600


@pytest.mark.parametrize("content", [b"", None], ids=["empty-file", "no-run-in-it"])
async def test_resume_refuses_a_journal_without_a_run(
    tmp_path: Path, content: bytes | None
) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 30)
        journal = tmp_path / "run.sqlite"
        if content is not None:
            journal.write_bytes(content)
        else:
            import sqlite3

            with sqlite3.connect(journal) as conn:  # a SQLite file with no run recorded
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.close()
        result = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--journal", journal, "--resume",
            "--time-scale", "200", env=cli_env(emu),
        )  # fmt: skip
        assert result.code == 2, result
        assert "cannot say what was sent" in result.err
        assert (await emu.stats())["jobs_created"] == 0
