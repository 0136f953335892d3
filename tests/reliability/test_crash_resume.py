"""``kill -9`` of ``debitura-async ingest``, again and again, then ``--resume``: over the whole
input, every valid note is stored exactly once and the final report accounts for every line.

Builds on ``tests/cli/test_cli_resume.py`` (one crash per run, one random series) with what it
does not cover: several crashes in a row at every journal step (including the start of a resumed
attempt and the final "complete" commit), kills at seeded random points combined with network
faults, and what a resume does with a job the server forgot (emulator restarted between the
crash and the resume).

The emulator is an ``EmulatorProcess`` that outlives every CLI process of a scenario; the
verdict comes from the final report and from the emulator's notes, grouped by externalRef.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from debitura_async.emulator import EmulatorProcess, Fault
from debitura_async.journal import JournalStore

from ..cli._support import (
    CRASH_AFTER_ENV,
    CRASH_BEFORE_ENV,
    CRM_MAP,
    Result,
    Sample,
    assert_notes_exactly_once,
    assert_report_covers,
    cli_command,
    cli_env,
    fast_config,
    read_report,
    run_cli,
    write_crm_csv,
)
from ._harness import report_figures
from .conftest import Figures, Measurements

pytestmark = pytest.mark.anyio

KILLED = -int(signal.SIGKILL)
SCALE = 200.0
BATCH = 20
POST = "POST /ingestion-jobs"


def sample_for(emu: EmulatorProcess, path: Path, count: int) -> Sample:
    """Valid rows plus planted bad lines, an invalid row and a row the server will fail."""
    return write_crm_csv(
        path,
        emu.case_ids,
        count,
        bad={13: b'N-13,"never closed', 170: b"N-170,too,few"},
        invalid={61: {"CaseGuid": "CASE-61"}, 240: {"CreatedAtUtc": "2999-01-01T00:00:00Z"}},
        failing={95: {"CaseGuid": str(emu.other_partner_case_ids[0])}},
        multiline_every=41,
        blank_after=(7,),
    )


def ingest_args(sample: Sample, journal: Path, report: Path, *extra: str) -> list[str | Path]:
    return [
        "ingest", sample.path, *CRM_MAP, "--batch-size", str(BATCH), "--concurrency", "4",
        "--time-scale", str(SCALE), "--journal", journal, "--report", report,
        "--progress", "off", *extra,
    ]  # fmt: skip


async def resume_to_the_end(
    sample: Sample, journal: Path, report: Path, env: Mapping[str, str], *, tries: int = 3
) -> Result:
    """``--resume`` until the run has an outcome for every row: exit 3 means some job is
    unresolved (e.g. a POST ran out of retries under the faults) and the operator's answer is
    to resume again."""
    for _ in range(tries):
        final = await run_cli(*ingest_args(sample, journal, report, "--resume"), env=env)
        if final.code != 3:
            break
    return final


async def run_killed_when(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    emu: EmulatorProcess,
    kill: Callable[[dict[str, Any]], bool],
    grace: float = 0.0,
    limit: float = 60.0,
) -> int:
    """Run the CLI; SIGKILL it ``grace`` seconds after ``kill(emulator stats)`` first holds.
    Returns the exit status (``KILLED`` when it was killed)."""
    proc = await asyncio.create_subprocess_exec(
        *cli_command(env),
        *(str(a) for a in args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(env),
    )
    try:
        deadline = time.monotonic() + limit
        while proc.returncode is None and time.monotonic() < deadline:
            if kill(await emu.stats()):
                await asyncio.sleep(grace)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.005)
        return await asyncio.wait_for(proc.wait(), limit)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def verdict(
    emu: EmulatorProcess,
    sample: Sample,
    report: Path,
    figures: Figures,
    *,
    kills: int,
    seconds: float,
) -> None:
    """Record the figures of the whole scenario, then check the whole input."""
    notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    stats = await emu.stats()
    figures.add(
        **report_figures(read_report(report)),
        runs=1,
        rows=len(sample.data_lines),
        duplicates=sum(n - 1 for n in notes.values() if n > 1),
        lost=sum(1 for ref in sample.valid_refs if not notes[ref]),
        requests=sum(sum(c.values()) for c in stats["requests"].values()),
        kills=kills,
        seconds=seconds,
    )
    await assert_notes_exactly_once(emu, sample)
    assert_report_covers(read_report(report), sample)
    per_key = Counter(j["idempotencyKey"] for j in await emu.jobs())
    assert [k for k, n in per_key.items() if n > 1] == [], "a batch became two jobs"


def assert_journal_done(journal: Path) -> None:
    with JournalStore.open(journal) as store:
        assert store.run.completed_at is not None
        assert set(store.state_counts()) == {"finished"}


@attrs.frozen
class Chain:
    name: str
    hooks: tuple[dict[str, str], ...]
    faults: tuple[Fault, ...] = ()


CHAINS = (
    Chain(
        "one crash at every journal step",
        (
            {CRASH_BEFORE_ENV: "create:1"},  # the journal file exists, no run in it yet
            {CRASH_BEFORE_ENV: "submitting:3"},  # batches recorded as being sent
            {CRASH_BEFORE_ENV: "attempt:1"},  # a resume dies before counting its attempt
            {CRASH_BEFORE_ENV: "accepted:2"},  # a job created, the journal still 'submitting'
            {CRASH_BEFORE_ENV: "finished:2"},  # a job done, its result not recorded
            {CRASH_BEFORE_ENV: "complete:1"},  # every batch finished, the run not closed
        ),
    ),
    Chain(
        "after n commits, four times, with resets and 5xx",
        (
            {CRASH_AFTER_ENV: "4"},
            {CRASH_AFTER_ENV: "7"},
            {CRASH_AFTER_ENV: "12"},
            {CRASH_AFTER_ENV: "3"},
        ),
        faults=(
            Fault("drop_after", probability=0.15, endpoint=POST),
            Fault("http_error", probability=0.05, status=502),
        ),
    ),
)


@pytest.mark.parametrize("chain", CHAINS, ids=[c.name for c in CHAINS])
async def test_consecutive_crashes_at_journal_steps_then_resume(
    tmp_path: Path, chain: Chain, measure: Measurements
) -> None:
    started = time.monotonic()
    async with EmulatorProcess(fast_config(faults=chain.faults)) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", 400)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.csv"
        codes = []
        for hook in chain.hooks:
            # A journal killed before its run was recorded holds no run: --resume refuses it
            # (nothing was sent under it), a plain run starts in it.
            resume = ("--resume",) if JournalStore.holds_run(journal) else ()
            result = await run_cli(
                *ingest_args(sample, journal, report, *resume), env=cli_env(emu, **hook)
            )
            codes.append(result.code)
            assert result.code == KILLED, f"{hook} never fired:\n{result}"
            if hook.get(CRASH_BEFORE_ENV) == "complete:1":
                # every batch is finished, so the report was whole and published already
                assert_report_covers(read_report(report), sample)
            else:
                assert not report.exists()  # a killed run publishes no half report
        final = await resume_to_the_end(sample, journal, report, cli_env(emu))
        assert final.code == 1, str(final)  # the planted bad lines and the refused row
        attempt = re.search(r"\(attempt (\d+)", final.out)
        assert attempt is not None, final
        assert int(attempt.group(1)) >= 3, final  # the resumes were counted as attempts
        await verdict(
            emu,
            sample,
            report,
            measure("crash", f"kill -9: {chain.name}"),
            kills=codes.count(KILLED),
            seconds=time.monotonic() - started,
        )
    assert_journal_done(journal)


def created_at_least(target: int) -> Callable[[dict[str, Any]], bool]:
    def reached(stats: dict[str, Any]) -> bool:
        return bool(stats["jobs_created"] >= target)

    return reached


async def random_kills(
    tmp_path: Path, seed: int, *, kills: int, rows: int, figures: Figures
) -> None:
    """``kills`` SIGKILLs at seeded points (after the emulator has created a random number of
    further jobs, plus a random few milliseconds), each followed by ``--resume``, under
    seeded network faults; then a last resume that runs to the end."""
    rng = random.Random(f"crash-{seed}")
    faults = (
        Fault("drop_after", probability=0.12, endpoint=POST),
        Fault("drop_before", probability=0.04),
        Fault("http_error", probability=0.04, status=503),
        Fault("rate_limit", probability=0.03, retry_after=20.0),
    )
    started = time.monotonic()
    async with EmulatorProcess(fast_config(seed=seed, faults=faults)) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", rows)
        batches = -(-(len(sample.valid_refs) + len(sample.failing_refs)) // BATCH)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.jsonl"
        done = 0
        for _ in range(kills):
            created = (await emu.stats())["jobs_created"]
            target = created + rng.randint(1, max(1, (batches - created) // 3))
            resume = ("--resume",) if JournalStore.holds_run(journal) else ()
            code = await run_killed_when(
                ingest_args(sample, journal, report, *resume),
                env=cli_env(emu),
                emu=emu,
                kill=created_at_least(target),
                grace=rng.uniform(0.0, 0.03),
            )
            done += code == KILLED
        final = await resume_to_the_end(sample, journal, report, cli_env(emu))
        assert final.code == 1, str(final)
        assert done == kills, f"only {done} of {kills} runs were killed: the input is too small"
        await verdict(emu, sample, report, figures, kills=done, seconds=time.monotonic() - started)
    assert_journal_done(journal)
    records = read_report(report)
    assert any(r["resumed"] for r in records if r["record"] == "job")
    secret = emu.api_key.encode()
    assert [p.name for p in tmp_path.iterdir() if secret in p.read_bytes()] == []  # noqa: ASYNC240


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_random_kills_with_network_faults_then_resume(
    tmp_path: Path, seed: int, measure: Measurements
) -> None:
    figures = measure("crash", "kill -9 at random points + resets/5xx/429")
    await random_kills(tmp_path, seed, kills=2, rows=500, figures=figures)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(200, 215))
async def test_random_kills_soak(tmp_path: Path, seed: int, measure: Measurements) -> None:
    figures = measure("crash", "kill -9 at random points + resets/5xx/429")
    await random_kills(tmp_path, seed, kills=5, rows=2500, figures=figures)


async def test_resume_never_resends_a_job_the_server_forgot(
    tmp_path: Path, measure: Measurements
) -> None:
    """Crash with a job accepted (journal: 'accepted'), restart the server (its jobs and
    Idempotency-Keys are gone): the resume polls the job, gets 404 and reports the batch
    unresolved with its job id. It never sends the batch again: its rows were processed before
    the restart and a second job would store them twice."""
    started = time.monotonic()
    async with EmulatorProcess(fast_config()) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", 200)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.csv"
        args = ingest_args(sample, journal, report)
        one_at_a_time = [*args, "--concurrency", "1"]
        crashed = await run_cli(
            *one_at_a_time, env=cli_env(emu, **{CRASH_BEFORE_ENV: "finished:2"})
        )
        assert crashed.code == KILLED, str(crashed)
        with JournalStore.open(journal) as store:
            states = Counter(b.state for b in store.batches())
        assert states == {"finished": 1, "accepted": 1}, states
        await emu.restart()
        codes = []
        for _ in range(2):  # resuming again does not change the answer
            resumed = await run_cli(*args, "--resume", env=cli_env(emu))
            codes.append(resumed.code)
        stats = await emu.stats()
        await assert_notes_exactly_once(emu, sample)
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert codes == [3, 3], codes
    batches = -(-(len(sample.valid_refs) + len(sample.failing_refs)) // BATCH)
    assert stats["jobs_created"] == batches  # every batch exactly once, the lost one included
    records = read_report(report)
    unresolved = [r for r in records if r["outcome"] == "unresolved"]
    assert len(unresolved) == 1, unresolved
    assert unresolved[0]["job_id"]
    assert unresolved[0]["batch"] == "1"
    measure("crash", "kill -9, server restarted before --resume").add(
        **report_figures(records),
        runs=1,
        rows=len(sample.data_lines),
        duplicates=sum(n - 1 for n in notes.values() if n > 1),
        lost=sum(1 for ref in sample.valid_refs if not notes[ref]),
        kills=1,
        seconds=time.monotonic() - started,
    )


async def test_limit_a_server_that_forgot_its_keys_can_duplicate_the_unconfirmed_batch(
    tmp_path: Path, measure: Measurements
) -> None:
    """The documented limit of resuming (README: "resume within the server's idempotency
    window"): the process dies after the server created a job and before the journal recorded
    it ('submitting'), and the server then forgets its Idempotency-Keys (a restart here; the 24 h
    window in production). The resume must send the batch again - nothing says it was received -
    and the server, no longer knowing the key, stores it a second time. Only that one batch may
    be duplicated; every other row is stored exactly once."""
    started = time.monotonic()
    async with EmulatorProcess(fast_config()) as emu:
        sample = sample_for(emu, tmp_path / "export.csv", 120)
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.csv"
        args = [*ingest_args(sample, journal, report), "--concurrency", "1"]
        crashed = await run_cli(*args, env=cli_env(emu, **{CRASH_BEFORE_ENV: "accepted:2"}))
        assert crashed.code == KILLED, str(crashed)
        await asyncio.sleep(0.1)  # the created job finishes: its rows are stored
        await emu.restart()
        resumed = await run_cli(*args, "--resume", env=cli_env(emu))
        assert resumed.code == 1, str(resumed)
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    records = read_report(report)
    unconfirmed = set(range(BATCH, 2 * BATCH))  # batch 1, in input order of the sent rows
    sent = sorted(sample.valid_refs + sample.failing_refs, key=lambda r: int(r.split("-")[1]))
    twice = {i for i, ref in enumerate(sent) if notes[ref] > 1}
    assert twice <= unconfirmed, sorted(twice)
    assert all(notes[ref] >= 1 for ref in sample.valid_refs)
    assert max(notes.values()) <= 2
    measure("limit", "kill -9 before 'accepted' + server forgot its keys").add(
        **report_figures(records),
        runs=1,
        rows=len(sample.data_lines),
        duplicates=sum(n - 1 for n in notes.values() if n > 1),
        lost=sum(1 for ref in sample.valid_refs if not notes[ref]),
        kills=1,
        seconds=time.monotonic() - started,
    )
