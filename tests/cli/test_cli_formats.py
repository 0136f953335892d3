"""The committed sample exports through ``debitura-async ingest`` in a subprocess, against the
emulator in another process: the input flags (``--delimiter``, ``--encoding``,
``--assume-timezone``, ``--dst``), ``-`` as standard input, the early stop of a file whose rows
all fail alike, ``--budget``, and the input options a resume must keep."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits, World

from ..input._samples import API_KEY, SAMPLES, WORLD_PATH, Sample
from ._support import CLI, cli_env, read_report, run_cli

pytestmark = pytest.mark.anyio

BY_NAME = {s.name: s for s in SAMPLES}
CASE_ID_SAMPLES = tuple(s.name for s in SAMPLES if not s.references)
_FLAGS = {
    "encoding": "--encoding",
    "assume_timezone": "--assume-timezone",
    "delimiter": "--delimiter",
    "dst": "--dst",
}


def _config() -> EmulatorConfig:
    return EmulatorConfig(
        latency=LatencyModel.zero(), world=World.from_file(WORLD_PATH), rate_limits=RateLimits.off()
    )


def _args(sample: Sample) -> list[str]:
    maps = [arg for f, c in sample.mapping.items() for arg in ("--map", f"{f}={c}")]
    flags = [arg for k, v in sample.options.items() for arg in (_FLAGS[k], str(v))]
    return [*maps, *flags]


def _env(emu: EmulatorProcess) -> dict[str, str]:
    return cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL=emu.url)


def _check_rejections(sample: Sample, report: Path, err: str) -> None:
    records = read_report(report)
    rejected = {
        int(r["first_line"]): " ".join(r["detail"]) for r in records if r["record"] == "rejected"
    }
    assert sorted(rejected) == sorted(sample.rejected), rejected
    for line, text in sample.rejected.items():
        assert text in rejected[line], (line, rejected[line])
        assert f"debitura-async: rejected line {line}:" in err


@pytest.mark.parametrize("name", CASE_ID_SAMPLES)
async def test_every_sample_with_its_flags_stores_each_valid_note_once(
    name: str, tmp_path: Path
) -> None:
    sample = BY_NAME[name]
    report = tmp_path / "report.jsonl"
    async with EmulatorProcess(_config()) as emu:
        result = await run_cli(
            "ingest", sample.path, *_args(sample), "--report", report, "--progress", "off",
            "--batch-size", "10", "--journal", tmp_path / "run.sqlite", env=_env(emu),
        )  # fmt: skip
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert result.code == (1 if sample.rejected or sample.failed else 0), result
    assert notes == Counter(sample.stored)
    _check_rejections(sample, report, result.err)


async def test_naive_dates_without_assume_timezone_stop_early_with_one_message(
    tmp_path: Path,
) -> None:
    sample = BY_NAME["naive-utc-dates.csv"]
    args = [a for a in _args(sample) if a not in ("--assume-timezone", "UTC")]
    async with EmulatorProcess(_config()) as emu:
        result = await run_cli(
            "ingest", sample.path, *args, "--progress", "off", "--no-journal", env=_env(emu)
        )
        stats = await emu.stats()
    assert result.code == 2, result
    assert "time zone" in result.err
    assert "--assume-timezone" in result.err
    errors = [line for line in result.err.splitlines() if "error" in line]
    assert len(errors) == 1, result.err
    assert stats["requests"].get("POST /ingestion-jobs") is None


async def test_stdin_is_read_with_format_and_refuses_journal(tmp_path: Path) -> None:
    sample = BY_NAME["excel-eu-semicolon.csv"]
    async with EmulatorProcess(_config()) as emu:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "ingest", "-", "--format", "csv", *_args(sample), "--progress", "off",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_env(emu),
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(sample.path.read_bytes()), 60)
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
        refused = await run_cli("ingest", "-", "--format", "csv", "--strict", env=_env(emu))
        unformatted = await run_cli("ingest", "-", env=_env(emu))
    assert proc.returncode == 1, err.decode()
    assert notes == Counter(sample.stored)
    assert refused.code == 2
    assert "--strict cannot be used with - (standard input)" in refused.err
    assert unformatted.code == 2
    assert "needs --format" in unformatted.err


@pytest.mark.parametrize(
    ("flag", "value", "text"),
    [
        ("--delimiter", "ab", "is not one character"),
        ("--delimiter", '"', "cannot separate fields"),
        ("--encoding", "base64", "is not a text encoding"),
        ("--encoding", "nope-8", "is not a text encoding"),
        ("--assume-timezone", "Europe/Copenhagn", "did you mean Europe/Copenhagen"),
        ("--budget", "ftp://x", "--budget"),
    ],
)
async def test_bad_option_values_are_one_line_exit_2(
    flag: str, value: str, text: str, tmp_path: Path
) -> None:
    sample = BY_NAME["dynamics-guids.csv"]
    result = await run_cli(
        "ingest", sample.path, flag, value, "--no-journal",
        env=cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL="http://127.0.0.1:9"),
    )  # fmt: skip
    assert result.code == 2, result
    assert text in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err


async def test_memory_budget_url_is_used_and_closed(tmp_path: Path) -> None:
    sample = BY_NAME["dynamics-guids.csv"]
    async with EmulatorProcess(_config()) as emu:
        result = await run_cli(
            "ingest", sample.path, *_args(sample), "--progress", "off", "--no-journal",
            env={**_env(emu), "DEBITURA_BUDGET_URL": "memory:"},
        )  # fmt: skip
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert result.code in (0, 1), result
    assert notes == Counter(sample.stored)


async def test_resume_keeps_the_journals_input_options(tmp_path: Path) -> None:
    sample = BY_NAME["legacy-cp1252.csv"]
    journal = tmp_path / "run.sqlite"
    async with EmulatorProcess(_config()) as emu:
        first = await run_cli(
            "ingest", sample.path, *_args(sample), "--progress", "off", "--journal", journal,
            env=_env(emu),
        )  # fmt: skip
        other = await run_cli(
            "ingest", sample.path, "--encoding", "latin-1", "--resume", "--journal", journal,
            "--progress", "off", env=_env(emu),
        )  # fmt: skip
        again = await run_cli(
            "ingest", sample.path, "--resume", "--journal", journal, "--progress", "off",
            env=_env(emu),
        )  # fmt: skip
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert first.code == (1 if sample.rejected or sample.failed else 0), first
    assert other.code == 2, other
    assert "--encoding 'cp1252'" in other.err
    assert again.code == first.code, again  # the journal's cp1252, without the flag
    assert notes == Counter(sample.stored)
