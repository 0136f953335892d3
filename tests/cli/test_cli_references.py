"""``--map caseReference=COLUMN`` through the CLI in a subprocess, against the emulator in another
process: references (with and without commas, numbers in JSON) resolved to case ids, unknown
ones rejected naming the reference, and the resolutions kept in the journal so that a resume
does not look them up again."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import orjson
import pytest

from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits, World

from ..input._samples import API_KEY, REFERENCES, SAMPLES, WORLD_PATH, Sample
from ._support import cli_env, read_report, run_cli

pytestmark = pytest.mark.anyio

BY_NAME = {s.name: s for s in SAMPLES}


def _world(tmp_path: Path) -> World:
    world = orjson.loads(WORLD_PATH.read_bytes())
    world["partners"][0]["partnerReferences"] = {case: ref for ref, case in REFERENCES.items()}
    path = tmp_path / "world.json"
    path.write_bytes(orjson.dumps(world))
    return World.from_file(path)


def _config(tmp_path: Path) -> EmulatorConfig:
    return EmulatorConfig(
        latency=LatencyModel.zero(), world=_world(tmp_path), rate_limits=RateLimits.off()
    )


def _maps(sample: Sample) -> list[str]:
    return [arg for f, c in sample.mapping.items() for arg in ("--map", f"{f}={c}")]


def _lookups(stats: dict[str, object]) -> int:
    requests = stats["requests"]
    assert isinstance(requests, dict)
    return sum(
        sum(counts.values())
        for endpoint, counts in requests.items()
        if endpoint.startswith("GET /cases/by-partner")
    )


@pytest.mark.parametrize("name", ["partner-references.csv", "partner-references.jsonl"])
async def test_references_are_resolved_and_unknown_ones_rejected(name: str, tmp_path: Path) -> None:
    sample = BY_NAME[name]
    report = tmp_path / "report.jsonl"
    journal = tmp_path / "run.sqlite"
    env = cli_env(DEBITURA_API_KEY=API_KEY)
    async with EmulatorProcess(_config(tmp_path)) as emu:
        env["DEBITURA_BASE_URL"] = emu.url
        result = await run_cli(
            "ingest", sample.path, *_maps(sample), "--report", report, "--progress", "off",
            "--batch-size", "10", "--journal", journal, env=env,
        )  # fmt: skip
        notes = await emu.notes()
        stats = await emu.stats()
    assert result.code == 1, result
    assert Counter(str(n["externalRef"]) for n in notes) == Counter(sample.stored)
    by_ref = {str(n["externalRef"]): str(n["caseId"]) for n in notes}
    if name.endswith(".jsonl"):
        assert by_ref["RJ-02"] == REFERENCES["Smith, John / 2024-117"]  # a comma: single form
        assert by_ref["RJ-03"] == REFERENCES["10005"]  # a JSON number
    else:
        assert by_ref["RF-02"] == REFERENCES["112179442 & 112179443"]
    records = read_report(report)
    rejected = {
        int(r["first_line"]): " ".join(r["detail"]) for r in records if r["record"] == "rejected"
    }
    assert sorted(rejected) == sorted(sample.rejected), rejected
    for line, text in sample.rejected.items():
        if "was not resolved" in text:  # the SDK's wording names the reference differently
            assert "'CRM-99999'" in rejected[line]
            assert "caseReference" in rejected[line]
        else:  # the CLI names the column after the field
            field, _, message = text.partition(": ")
            assert rejected[line].startswith(field.split(" ")[0]), (line, rejected[line])
            assert message in rejected[line], (line, rejected[line])
    distinct = {r for r in sample.references if r}
    assert 1 <= _lookups(stats) <= len(distinct)
    with sqlite3.connect(journal) as db:
        kept = dict(db.execute("SELECT reference, case_id FROM case_references").fetchall())
    db.close()
    for ref in distinct:
        assert kept[ref] == REFERENCES.get(ref), ref  # None: known to be no case of ours


async def test_a_resume_takes_the_references_from_the_journal(tmp_path: Path) -> None:
    sample = BY_NAME["partner-references.csv"]
    journal = tmp_path / "run.sqlite"
    env = cli_env(DEBITURA_API_KEY=API_KEY)
    async with EmulatorProcess(_config(tmp_path)) as emu:
        env["DEBITURA_BASE_URL"] = emu.url
        first = await run_cli(
            "ingest", sample.path, *_maps(sample), "--progress", "off", "--batch-size", "10",
            "--journal", journal, env=env,
        )  # fmt: skip
        before = _lookups(await emu.stats())
        again = await run_cli(
            "ingest", sample.path, "--resume", "--journal", journal, "--progress", "off", env=env
        )
        after = _lookups(await emu.stats())
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert first.code == 1, first
    assert again.code == 1, again
    assert after == before  # nothing looked up again
    assert "taken from the journal" in again.err
    assert notes == Counter(sample.stored)
