"""The sample exports through ``debitura-async ingest`` in a subprocess, against the emulator on
loopback: the formats that need no new flag (a sniffed ``;``, UTF-16 by its BOM, Dynamics
GUIDs) are migrated with every valid note stored exactly once and every bad line named on
stderr and in the report; a cp1252 file read as UTF-8 ends with one message and exit 2, with
nothing sent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel, World

from ..cli._support import cli_env, read_report, run_cli
from ._samples import API_KEY, SAMPLES, WORLD_PATH, Sample

pytestmark = pytest.mark.anyio

BY_NAME = {s.name: s for s in SAMPLES}
NO_NEW_FLAG = ("excel-eu-semicolon.csv", "excel-unicode-text.tsv", "dynamics-guids.csv")


def _maps(sample: Sample) -> list[str]:
    return [arg for f, c in sample.mapping.items() for arg in ("--map", f"{f}={c}")]


def _config() -> EmulatorConfig:
    return EmulatorConfig(latency=LatencyModel.zero(), world=World.from_file(WORLD_PATH))


@pytest.mark.parametrize("name", NO_NEW_FLAG)
async def test_sample_through_the_cli(name: str, tmp_path: Path) -> None:
    sample = BY_NAME[name]
    report = tmp_path / "report.jsonl"
    async with Emulator(_config()) as emu:
        result = await run_cli(
            "ingest", sample.path, *_maps(sample), "--report", report, "--progress", "off",
            "--batch-size", "10", "--journal", tmp_path / "run.sqlite",
            env=cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL=emu.url),
        )  # fmt: skip
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert result.code == 1, result  # some lines were rejected
    assert notes == Counter(sample.stored)
    records = read_report(report)
    rejected = {
        int(r["first_line"]): " ".join(r["detail"]) for r in records if r["record"] == "rejected"
    }
    assert sorted(rejected) == sorted(sample.rejected), rejected
    for line, text in sample.rejected.items():
        assert text in rejected[line] or text in result.err, (line, rejected[line])
        assert f"debitura-async: rejected line {line}:" in result.err


async def test_a_file_in_another_encoding_is_one_message_and_exit_2(tmp_path: Path) -> None:
    sample = BY_NAME["legacy-cp1252.csv"]
    async with Emulator(_config()) as emu:
        result = await run_cli(
            "ingest", sample.path, "--progress", "off", "--journal", tmp_path / "run.sqlite",
            env=cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL=emu.url),
        )  # fmt: skip
        requests = (await emu.stats())["requests"]
    assert result.code == 2, result
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "29 lines are not valid UTF-8, the first is line 2" in result.err
    assert "pass --encoding cp1252" in result.err
    assert requests.get("POST /ingestion-jobs") is None
