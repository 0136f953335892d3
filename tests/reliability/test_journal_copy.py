"""A journal copied without its ``-wal`` after a real ``kill -9`` never makes a resume send a
note twice: the run record is checkpointed into the main file when the run starts, so the copy
knows the run (same run id, same Idempotency-Keys) and every batch it has lost is re-sent with
its key and replayed by the server. (Before, the copy said "nothing was sent" and a fresh run
under a new run id stored hundreds of notes twice.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorProcess
from debitura_async.journal import JournalStore

from ..cli._support import (
    CRASH_AFTER_ENV,
    CRM_MAP,
    assert_notes_exactly_once,
    cli_env,
    fast_config,
    run_cli,
    write_crm_csv,
)

pytestmark = pytest.mark.anyio

KILLED = -9


@pytest.mark.parametrize("commits", [2, 9, 31])
async def test_resume_from_a_copy_without_its_wal_never_duplicates(
    tmp_path: Path, commits: int
) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "export.csv", emu.case_ids, 600)
        journal, copy = tmp_path / "run.sqlite", tmp_path / "backup" / "run.sqlite"

        def args(j: Path, *extra: str) -> list[str | Path]:
            return [
                "ingest", sample.path, *CRM_MAP, "--batch-size", "25", "--concurrency", "4",
                "--time-scale", "200", "--journal", j, *extra,
            ]  # fmt: skip

        crashed = await run_cli(*args(journal), env=cli_env(emu, **{CRASH_AFTER_ENV: str(commits)}))
        assert crashed.code == KILLED, crashed
        wal = journal.with_name(journal.name + "-wal")
        assert wal.exists()  # the state after the kill lives partly in the -wal
        copy.parent.mkdir()
        shutil.copy2(journal, copy)  # the main file only, as a careless backup would
        assert not copy.with_name(copy.name + "-wal").exists()
        with JournalStore.open(journal) as original:
            run_id = original.run.run_id
        assert JournalStore.holds_run(copy)

        resumed = await run_cli(*args(copy, "--resume"), env=cli_env(emu))
        assert resumed.code == 0, resumed
        assert run_id in resumed.out  # the same run, not a fresh one
        await assert_notes_exactly_once(emu, sample)
        keys = [j["idempotencyKey"] for j in await emu.jobs()]
        assert len(keys) == len(set(keys)), "a batch became two jobs"
