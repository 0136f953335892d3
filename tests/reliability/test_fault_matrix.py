"""The fault matrix: ``client.ingest`` against the in-process emulator under every fault the
emulator can inject, alone and mixed, over several seeds.

For every run (see ``_harness``):

* it ends within a bound derived from its configuration (``bound_for``);
* every input row is in exactly one bucket (succeeded, failed, rejected, unresolved), by the
  summary's invariants, by the per-result counts and by input position (batch size + positions);
* the emulator holds one note per succeeded row, none for rejected or failed rows and at most
  one for rows of unresolved jobs (every row has a unique externalRef);
* no unhandled exception, leaked task or unclosed session; retries within their limits, and the
  server saw exactly the attempts the client made.

Each fault case also fires a *count* storm or burst, so every seed provably meets the fault,
plus a seeded *probability* of it; the seed also draws the input (which rows are bad, which
cases are unknown) and the batch size.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import attrs
import pytest

from debitura_async import DebituraClient, IngestionJobRow, RemoteProtocolError
from debitura_async._budget import RequestBudget
from debitura_async.emulator import Emulator, EmulatorConfig, Fault, LatencyModel, RateLimits
from debitura_async.models import JobOutcome, JobResult

from ._harness import (
    SCALE,
    Input,
    Run,
    Setup,
    Verdict,
    bound_for,
    check_accounting,
    check_notes,
    check_requests,
    make_input,
    run_pipeline,
    wait_until,
)
from .conftest import Measurements

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"
CI_SEEDS = (1, 2, 3)
SOAK_SEEDS = tuple(range(100, 130))
WAIT = 0.01
"""Real seconds a 429 asks the client to wait."""


def model(real_seconds: float) -> float:
    """Fault durations are model seconds: this many real seconds at the suite's time scale."""
    return real_seconds * SCALE


@attrs.frozen(kw_only=True)
class Case:
    name: str
    faults: tuple[Fault, ...] = ()
    rate_limits: RateLimits = attrs.field(factory=RateLimits.off)
    latency: LatencyModel = attrs.field(factory=LatencyModel)
    restart: bool = False
    stop: bool = False
    """The server goes away mid-run: every later connection is refused."""
    resolves_all: bool = True
    """Every row reaches its natural outcome (nothing unresolved)."""
    storm_429: int = 0
    """429s from count faults (bounded); probability 429s are POST-only: <= (R + 1) per batch."""
    post_429: bool = False
    server_wait: float = 0.0

    def fired(self) -> set[str]:
        """Fault kinds a count > 0 guarantees to fire."""
        return {f.kind.value for f in self.faults if f.count}


def rate_limit_storm(**limits: bool) -> tuple[tuple[Fault, ...], RateLimits]:
    faults = (
        Fault("rate_limit", count=4, retry_after=model(WAIT)),
        Fault("rate_limit", probability=0.1, endpoint=POST, retry_after=model(WAIT)),
    )
    return faults, RateLimits(enabled=False, **limits)


_HEADER_ONLY = rate_limit_storm(retry_after_body=False)
_BODY_ONLY = rate_limit_storm(retry_after_header=False)
_NO_HINT = rate_limit_storm(retry_after_header=False, retry_after_body=False)
_SLOW_JOBS = LatencyModel(base=4.0, per_row=0.05, jitter=2.0)
"""Jobs of 10-15 ms real at x500: the restart lands while jobs are in flight."""

CASES = (
    Case(
        name="429 storm, Retry-After header only",
        faults=_HEADER_ONLY[0],
        rate_limits=_HEADER_ONLY[1],
        storm_429=4,
        post_429=True,
        server_wait=WAIT,
    ),
    Case(
        name="429 storm, body retryAfter only",
        faults=_BODY_ONLY[0],
        rate_limits=_BODY_ONLY[1],
        storm_429=4,
        post_429=True,
        server_wait=WAIT,
    ),
    Case(
        name="429 storm, no wait given (client backoff)",
        faults=_NO_HINT[0],
        rate_limits=_NO_HINT[1],
        storm_429=4,
        post_429=True,
    ),
    Case(
        name="5xx bursts",
        faults=(
            Fault("http_error", count=4, status=502),
            Fault("http_error", probability=0.05, status=500),
            Fault("http_error", probability=0.05, status=503),
            Fault("http_error", probability=0.03, status=504),
        ),
    ),
    Case(
        name="connection reset before processing",
        faults=(Fault("drop_before", count=4), Fault("drop_before", probability=0.1)),
    ),
    Case(
        name="connection reset after the job was created",
        faults=(
            Fault("drop_after", count=4, endpoint=POST),
            Fault("drop_after", probability=0.2, endpoint=POST),
            Fault("drop_after", probability=0.05, endpoint=GET),
        ),
    ),
    Case(
        name="read timeouts (slower than the read timeout)",
        faults=(
            Fault("slow", count=3, delay=model(0.25)),
            Fault("slow", probability=0.05, delay=model(0.25)),
        ),
    ),
    Case(
        name="slow responses (within the read timeout)",
        faults=(
            Fault("slow", count=3, delay=model(0.03)),
            Fault("slow", probability=0.3, delay=model(0.03)),
        ),
    ),
    Case(
        name="job-level Failed",
        faults=(Fault("job_failed", count=2), Fault("job_failed", probability=0.1)),
    ),
    Case(
        name="job vanished (404 while polling)",
        faults=(
            Fault("job_vanish", count=2, after=0.0),
            Fault("job_vanish", probability=0.1, after=1.0),
        ),
        resolves_all=False,
    ),
    Case(
        name="emulator restarted mid-run",
        latency=_SLOW_JOBS,
        restart=True,
        resolves_all=False,
    ),
    Case(
        name="emulator gone mid-run (connection refused)",
        latency=_SLOW_JOBS,
        stop=True,
        resolves_all=False,
    ),
    Case(
        name="mixed: every fault at once",
        faults=(
            Fault("rate_limit", count=2, retry_after=model(WAIT)),
            Fault("rate_limit", probability=0.05, endpoint=POST, retry_after=model(WAIT)),
            Fault("http_error", count=2, status=502),
            Fault("http_error", probability=0.04, status=503),
            Fault("drop_before", probability=0.04),
            Fault("drop_after", count=2, endpoint=POST),
            Fault("drop_after", probability=0.08, endpoint=POST),
            Fault("slow", probability=0.03, delay=model(0.25)),
            Fault("slow", probability=0.1, delay=model(0.02)),
            Fault("job_failed", probability=0.06),
            Fault("job_vanish", probability=0.06, after=0.0),
        ),
        storm_429=2,
        post_429=True,
        server_wait=WAIT,
        resolves_all=False,
    ),
    Case(
        # No ambiguous fault (drop_after, read timeout) here: a server that forgot its
        # Idempotency-Keys cannot recognise a retried POST it processed before the restart.
        name="mixed + emulator restarted mid-run",
        faults=(
            Fault("rate_limit", count=2, retry_after=model(WAIT)),
            Fault("http_error", probability=0.05, status=503),
            Fault("drop_before", probability=0.05),
            Fault("slow", probability=0.1, delay=model(0.02)),
            Fault("job_failed", probability=0.05),
            Fault("job_vanish", probability=0.05, after=0.0),
        ),
        latency=_SLOW_JOBS,
        restart=True,
        storm_429=2,
        server_wait=WAIT,
        resolves_all=False,
    ),
)


def when_half_created(
    emu: Emulator, batches: int, done: list[int], *, stop: bool
) -> Callable[[], Coroutine[Any, Any, None]]:
    """Restart (or stop) the emulator once half of the run's jobs exist; the jobs in flight
    are lost."""

    async def half_created() -> bool:
        return bool((await emu.stats())["jobs_created"] >= max(1, batches // 2))

    async def interrupt() -> None:
        if await wait_until(half_created, limit=60.0):
            if stop:
                await emu.close()
            else:
                await emu.restart()
            done.append((await emu.stats())["jobs_created"])

    return interrupt


async def run_case(
    case: Case, seed: int, *, rows: int, caplog: pytest.LogCaptureFixture, measure: Measurements
) -> None:
    rng = random.Random(f"matrix-{case.name}-{seed}")
    setup = Setup(batch_size=rng.choice((10, 16, 25)))
    config = EmulatorConfig(
        seed=seed,
        time_scale=SCALE,
        latency=case.latency,
        rate_limits=case.rate_limits,
        faults=case.faults,
        partners=2,
        cases_per_partner=30,
    )
    async with Emulator(config) as emu:
        inp = make_input(emu, seed=seed, count=rows, tag="m")
        batches = len(inp.batches(setup.batch_size))
        answers_429 = case.storm_429 + (
            (setup.retry.max_retries + 1) * batches if case.post_429 else 0
        )
        bound = bound_for(
            setup,
            inp,
            latency=case.latency,
            scale=SCALE,
            server_wait=case.server_wait,
            answers_429=answers_429,
        )
        restarted: list[int] = []
        interrupted = case.restart or case.stop
        during = when_half_created(emu, batches, restarted, stop=case.stop) if interrupted else None
        run = await run_pipeline(emu, inp, setup, bound=bound, caplog=caplog, during=during)
        if any(f.kind.value == "slow" for f in case.faults):
            await asyncio.sleep(0.3)  # handlers the client gave up on finish and are counted
        await _settle(emu)
        verdict = check_accounting(inp, run, setup.batch_size)
        await check_notes(emu, inp, verdict)
        await check_requests(emu, inp, run, setup, verdict, restarted=case.restart, gone=case.stop)
        await _check_case(
            emu=emu, case=case, inp=inp, run=run, setup=setup, v=verdict, restarted=restarted
        )
        verdict.record(measure("fault", case.name), run, inp)
    assert verdict.violations == [], "\n".join(verdict.violations)
    assert verdict.duplicates == 0
    assert verdict.lost == 0


async def _settle(emu: Emulator) -> None:
    """Wait until every job the emulator knows has ended, so its notes are final."""
    for _ in range(200):
        jobs = await emu.jobs()
        if all(j["status"] >= 2 for j in jobs):
            return
        await asyncio.sleep(0.005)


async def _check_case(
    *,
    emu: Emulator,
    case: Case,
    inp: Input,
    run: Run,
    setup: Setup,
    v: Verdict,
    restarted: list[int],
) -> None:
    """What this fault must (and must not) do to the outcome, in exact numbers."""
    stats = await emu.stats()
    jobs = await emu.jobs()
    batches = inp.batches(setup.batch_size)
    missing = case.fired() - set(stats["faults"])
    if missing:
        v.fail(f"faults that never fired: {missing} (fired: {stats['faults']})")
    s = run.summary
    if s.rows_rejected != inp.count("reject"):
        v.fail(f"{s.rows_rejected} rows rejected, the input has {inp.count('reject')} bad rows")
    failed_jobs = [r for r in run.results if r.outcome is JobOutcome.FAILED]
    unresolved = [r for r in run.results if r.outcome is JobOutcome.UNRESOLVED]
    # Job by job: a FAILED result is a job the server failed; a job the server failed is a
    # FAILED result, or unresolved because it also vanished (or the server restarted).
    reported_failed = {str(r.job_id) for r in failed_jobs}
    server_failed = {j["jobId"] for j in jobs if j["status"] == 4}
    unknown = {str(r.job_id) for r in unresolved}
    if not case.restart and not reported_failed <= server_failed:
        v.fail(
            f"FAILED results for jobs the server did not fail: {reported_failed - server_failed}"
        )
    if server_failed - reported_failed - unknown:
        v.fail(f"jobs the server failed, reported otherwise: {server_failed - reported_failed}")
    if case.resolves_all:
        # Survivable faults: every row ends where its input says, except rows of failed jobs.
        in_failed = Counter(
            inp.kinds[p]
            for r in failed_jobs
            if r.batch_index is not None
            for p in batches[r.batch_index]
        )
        expected = (
            inp.count("valid") - in_failed["valid"],
            inp.count("server_fail") + in_failed["valid"],
            0,
        )
        got = (s.rows_succeeded, s.rows_failed, s.rows_unresolved)
        if got != expected:
            v.fail(f"(succeeded, failed, unresolved) = {got}, expected {expected}")
    elif not (case.restart or case.stop or case.name.startswith(("job vanished", "mixed"))) and (
        unresolved
    ):
        v.fail(f"unexpected unresolved results: {[r.error for r in unresolved]}")
    if case.restart:
        if not restarted:
            v.fail("the emulator was never restarted: the run ended too early")
        elif not unresolved:
            v.fail("a restart with jobs in flight left nothing unresolved")
        sent = len({r.idempotency_key for r in run.results if r.job_id is not None})
        if stats["jobs_created"] != sent:
            v.fail(f"{stats['jobs_created']} jobs created for {sent} batches: one was resent")
        known = {j["jobId"] for j in jobs}
        for r in unresolved:
            if r.job_id is not None and str(r.job_id) in known and not _vanished(jobs, r):
                v.fail(f"batch {r.batch_index} unresolved although its job {r.job_id} lives")
    if case.stop:
        if not restarted:
            v.fail("the emulator was never stopped: the run ended too early")
        elif not unresolved:
            v.fail("the server went away with jobs in flight and nothing is unresolved")
        if any(r.outcome is JobOutcome.REJECTED and r.batch_index is not None for r in run.results):
            v.fail("a batch was refused although the server only went away")
    if case.name.startswith("job vanished"):
        if len(unresolved) < 2:
            v.fail(f"{len(unresolved)} unresolved jobs, but 2 vanished at their first poll")
        notes = Counter(n["externalRef"] for n in await emu.notes())
        for r in unresolved:
            if not _vanished(jobs, r):
                v.fail(f"batch {r.batch_index} unresolved but its job {r.job_id} did not vanish")
            # a vanished job's rows are still processed, exactly once, and not sent again
            for p in batches[r.batch_index] if r.batch_index is not None else ():
                expected_notes = 1 if inp.kinds[p] == "valid" else 0
                if notes[inp.refs[p]] != expected_notes:
                    v.fail(f"row {p} of vanished job {r.job_id}: {notes[inp.refs[p]]} notes")


def _vanished(jobs: list[dict[str, object]], result: JobResult) -> bool:
    return any(j["jobId"] == str(result.job_id) and j["vanished"] for j in jobs)


@pytest.mark.parametrize("seed", CI_SEEDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault(
    case: Case, seed: int, caplog: pytest.LogCaptureFixture, measure: Measurements
) -> None:
    await run_case(case, seed, rows=160, caplog=caplog, measure=measure)


@pytest.mark.soak
@pytest.mark.timeout(1800)  # 1200 rows in batches of 10: the derived bound exceeds 300 s
@pytest.mark.parametrize("seed", SOAK_SEEDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault_soak(
    case: Case, seed: int, caplog: pytest.LogCaptureFixture, measure: Measurements
) -> None:
    await run_case(case, seed, rows=1200, caplog=caplog, measure=measure)


async def test_a_dropped_get_is_not_resent_behind_the_clients_back() -> None:
    """aiohttp re-sends an idempotent request once by itself after a dropped connection; the
    client's own session must not, or a poll escapes max_retries, the stats and the budget
    (found by this suite; fixed in client.py: the owned session has it switched off)."""
    config = EmulatorConfig(latency=LatencyModel.zero(), rate_limits=RateLimits.off())
    async with Emulator(config) as emu:
        budget = RequestBudget()
        async with DebituraClient(
            emu.api_key, base_url=emu.url, max_retries=0, budget=budget
        ) as client:
            job = await client.create_ingestion_job([IngestionJobRow(emu.case_ids[0], "x")])
            await emu.add_fault(Fault("drop_before", count=1, endpoint=GET))
            outcome: object
            try:
                outcome = await client.get_ingestion_job(job.job_id)
            except RemoteProtocolError as exc:
                outcome = exc
            sent = (client.stats.gets, budget.acquired)
        served = (await emu.stats())["requests"][GET]
    # one client attempt, no retries allowed: one request on the wire, and it was dropped
    assert served == {"dropped": 1}, served
    assert sent == (1, 2)  # one GET counted; the budget charged for the POST and that GET
    assert isinstance(outcome, RemoteProtocolError), outcome
