"""``debitura-async reconcile --journal J`` in a subprocess after a run whose job vanished
(the emulator's ``job_vanish`` fault), against the emulator in another process: every row of
the unresolved batches is classified, and each verdict agrees with the notes the server holds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from debitura_async.emulator import EmulatorProcess, Fault

from ._support import CRM_MAP, cli_env, fast_config, run_cli, write_crm_csv

pytestmark = pytest.mark.anyio


async def test_reconcile_classifies_rows_of_a_vanished_job(tmp_path: Path) -> None:
    # the first job fails and vanishes (its notes are not stored), the second only vanishes
    faults = (
        Fault("job_failed", count=1, endpoint="POST /ingestion-jobs"),
        Fault("job_vanish", count=2, endpoint="POST /ingestion-jobs", after=0.0),
    )
    async with EmulatorProcess(fast_config(faults=faults)) as emu:
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 30)
        journal = tmp_path / "j.sqlite"
        first = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--batch-size", "10", "--journal", journal,
            "--progress", "off", "--time-scale", "200", "--deadline", "4", env=cli_env(emu),
        )  # fmt: skip
        result = await run_cli("reconcile", "--journal", journal, "--json", env=cli_env(emu))
        text = await run_cli("reconcile", "--journal", journal, env=cli_env(emu))
        stored = {str(n["externalRef"]) for n in await emu.notes()}
    assert first.code == 3, first  # the vanished job left its batch unresolved
    assert result.code == 0, result
    report = orjson.loads(result.out)
    assert report["batches"] >= 1
    rows = report["rows"]
    assert len(rows) == 10 * report["batches"]
    assert all("vanished (404)" in r["reason"] for r in rows)
    assert report["counts"] == {"stored": 10, "not stored": 10, "unknown": 0}
    for row in rows:
        expected = "stored" if row["externalRef"] in stored else "not stored"
        assert row["verdict"] == expected, row
    assert "unresolved batches" in text.out


async def test_reconcile_without_a_journal_is_exit_2(tmp_path: Path) -> None:
    env = cli_env(DEBITURA_API_KEY="k", DEBITURA_BASE_URL="http://127.0.0.1:9")
    result = await run_cli("reconcile", "--journal", tmp_path / "none.sqlite", env=env)
    assert result.code == 2, result
    assert "none.sqlite" in result.err
