"""``ingest --dry-run`` in a subprocess against the emulator in another process: the whole file is
read, validated and its references resolved, nothing reaches the ingestion endpoints, and the
estimate follows the documented limits and pace; the estimate itself, pure."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debitura_async.cli._estimate import estimate, limits_bound
from debitura_async.emulator import EmulatorProcess

from ..input._samples import API_KEY, SAMPLES
from .test_cli_references import _config, _lookups, _maps

BY_NAME = {s.name: s for s in SAMPLES}


@pytest.mark.anyio
async def test_dry_run_sends_nothing_and_estimates(tmp_path: Path) -> None:
    from ._support import cli_env, run_cli

    sample = BY_NAME["partner-references.csv"]
    async with EmulatorProcess(_config(tmp_path)) as emu:
        env = cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL=emu.url)
        result = await run_cli(
            "ingest", sample.path, *_maps(sample), "--dry-run", "--batch-size", "10", env=env
        )
        stats = await emu.stats()
        notes = await emu.notes()
    assert result.code == 1, result  # some lines would be rejected
    assert notes == []
    ingestion = [e for e in stats["requests"] if "ingestion-jobs" in e]
    assert ingestion == [], stats["requests"]
    assert _lookups(stats) >= 1  # the references were resolved
    stored, rejected = len(sample.stored), len(sample.rejected)
    assert f"{stored:,} would be sent in 3 jobs of up to 10 rows" in result.out
    assert f"{rejected:,} lines would be rejected" in result.out
    assert "would reject: line 26: caseReference" in result.err
    assert "= 3 POST + ~7 polls" in result.out
    assert not sample.path.with_name(sample.path.name + ".journal.sqlite").exists()


@pytest.mark.anyio
async def test_dry_run_refuses_resume_and_report(tmp_path: Path) -> None:
    from ._support import run_cli

    sample = BY_NAME["dynamics-guids.csv"]
    result = await run_cli("ingest", sample.path, "--dry-run", "--report", tmp_path / "r.csv")
    assert result.code == 2
    assert "--dry-run sends nothing" in result.err


def test_estimate_under_the_documented_limits() -> None:
    small = estimate(rows=3_000, batch_size=1000, concurrency=4)
    assert (small.jobs, small.posts, small.polls, small.requests) == (3, 3, 7, 10)
    assert small.limit_seconds == 0
    assert small.pace_seconds == 30.0
    # 1,000,000 one-row jobs: 3.2 M requests, the day's 100,000 is the bound (31 full days)
    big = estimate(rows=1_000_000, batch_size=1, concurrency=8)
    assert big.requests == 3_200_000
    assert big.limit_seconds == 31 * 86_400
    assert limits_bound(2_000) == 0
    assert limits_bound(2_001) == 60
    assert limits_bound(20_001) == 3_600


@given(st.integers(0, 10**7), st.integers(1, 1000), st.integers(1, 64), st.integers(0, 10**5))
def test_estimate_counts_add_up(rows: int, batch: int, concurrency: int, lookups: int) -> None:
    est = estimate(rows=rows, batch_size=batch, concurrency=concurrency, lookups=lookups)
    assert est.requests == est.posts + est.polls + est.lookups
    assert est.jobs * batch >= rows
    assert est.seconds >= est.limit_seconds
    assert est.seconds >= est.pace_seconds >= 0
