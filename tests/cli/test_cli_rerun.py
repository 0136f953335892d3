"""``ingest --rerun-rejected REPORT`` in a subprocess against the emulator in another process:
a file with bad lines is migrated, the lines are fixed in place, and only they are sent again;
the migration ends with every note stored exactly once, and a whole-migration summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorProcess

from ._support import CRM_MAP, cli_env, fast_config, run_cli, write_crm_csv

pytestmark = pytest.mark.anyio

COUNT = 60
BROKEN = {4: {"CaseGuid": "not-a-uuid"}, 17: {"CreatedAtUtc": "yesterday"}, 41: {"NoteText": ""}}


async def test_rerun_of_rejected_lines_completes_the_migration(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        path = tmp_path / "export.csv"
        write_crm_csv(path, emu.case_ids, COUNT, invalid=BROKEN)
        report = tmp_path / "first.jsonl"
        common = [*CRM_MAP, "--batch-size", "20", "--progress", "off", "--time-scale", "200"]
        first = await run_cli(
            "ingest", path, *common, "--report", report, "--journal", tmp_path / "1.sqlite",
            env=cli_env(emu),
        )  # fmt: skip
        assert first.code == 1, first
        after_first = Counter(str(n["externalRef"]) for n in await emu.notes())
        write_crm_csv(path, emu.case_ids, COUNT)  # fixed in place: same lines, now valid
        again = await run_cli(
            "ingest", path, *common, "--rerun-rejected", report, "--journal",
            tmp_path / "2.sqlite", "--report", tmp_path / "second.jsonl", env=cli_env(emu),
        )  # fmt: skip
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
        nothing = await run_cli(
            "ingest", path, *common, "--rerun-rejected", tmp_path / "second.jsonl",
            "--no-journal", env=cli_env(emu),
        )  # fmt: skip
    assert sum(after_first.values()) == COUNT - len(BROKEN)
    assert again.code == 0, again
    assert notes == Counter(f"N-{i}" for i in range(COUNT)), notes  # each exactly once
    assert "whole migration: 60 rows stored (57 earlier + 3 now)" in again.out
    assert "3 earlier-rejected lines sent again" in again.out
    assert nothing.code == 2
    assert "names no rejected line" in nothing.err
