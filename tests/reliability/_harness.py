"""Machinery of the reliability suite: inputs whose every row has a known fate, a pipeline run
under a bound derived from its configuration, and the exactly-once checks.

The checks collect *violations* (strings) instead of asserting one by one, so a scenario first
records what it measured and then fails with every broken invariant listed at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import attrs
import pytest

from debitura_async import DebituraClient, IngestionJobRow, RetryPolicy, Timeout
from debitura_async._polling import PollPolicy
from debitura_async.client import RequestStats
from debitura_async.emulator import LatencyModel, Partner
from debitura_async.models import IngestionSummary, JobOutcome, JobResult

from ..integration.conftest import collect_resource_warnings, no_leaked_tasks
from .conftest import Figures

SCALE = 500.0
"""The emulator's default latency model runs this many times faster than real time."""
POLICY = PollPolicy().scaled(SCALE)
NOT_FOUND_TOLERANCE = 3
"""404s the pipeline tolerates for a job before it reports it UNRESOLVED (ingest.py)."""

Kind = Literal["valid", "server_fail", "reject"]
Bucket = Literal["succeeded", "failed", "rejected", "unresolved"]
_ATTEMPT = re.compile(r" attempt=(\d+) ")
_PAST = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class EmulatorLike(Protocol):
    """What the checks need of an ``Emulator`` or an ``EmulatorProcess``."""

    @property
    def url(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    @property
    def case_ids(self) -> tuple[uuid.UUID, ...]: ...

    @property
    def other_partner_case_ids(self) -> tuple[uuid.UUID, ...]: ...

    @property
    def partners(self) -> tuple[Partner, ...]: ...

    async def notes(
        self, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def stats(self) -> dict[str, Any]: ...

    async def jobs(self) -> list[dict[str, Any]]: ...


# -- inputs ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Input:
    """Rows and, per position, the row's unique externalRef and its fate.

    ``valid``: stored by the server; ``server_fail``: sent, then failed by the server (unknown
    case, another partner's case); ``reject``: refused by the client before sending.
    """

    rows: tuple[Any, ...]
    refs: tuple[str, ...]
    kinds: tuple[Kind, ...]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def accepted(self) -> tuple[int, ...]:
        """Positions the client sends, in order (the batcher sees only these)."""
        return tuple(i for i, kind in enumerate(self.kinds) if kind != "reject")

    def batches(self, batch_size: int) -> list[tuple[int, ...]]:
        """Positions of each batch, by batch index: the batcher cuts accepted rows in order."""
        sent = self.accepted
        return [sent[i : i + batch_size] for i in range(0, len(sent), batch_size)]

    def count(self, kind: Kind) -> int:
        return sum(1 for k in self.kinds if k == kind)


def make_input(
    emu: EmulatorLike,
    *,
    seed: int,
    count: int,
    tag: str,
    fail_share: float = 0.08,
    reject_share: float = 0.05,
) -> Input:
    """``count`` rows of every fate, drawn from ``seed``; every row has a unique externalRef."""
    rng = random.Random(f"reliability-{tag}-{seed}")
    rows: list[Any] = []
    refs: list[str] = []
    kinds: list[Kind] = []
    own = emu.case_ids
    foreign = emu.other_partner_case_ids
    future = datetime.now(UTC) + timedelta(days=30)
    for i in range(count):
        ref = f"{tag}-{seed}-{i}"
        draw = rng.random()
        kind: Kind
        if draw < reject_share:
            kind = "reject"
            problem = rng.randrange(5)
            base: dict[str, Any] = {
                "caseId": str(rng.choice(own)),
                "description": f"{tag} bad {i}",
                "externalRef": ref,
            }
            if problem == 0:
                base["caseId"] = f"CASE-{i}"
            elif problem == 1:
                base["description"] = "   "
            elif problem == 2:
                base["type"] = 1
            elif problem == 3:
                base["eventDate"] = future.isoformat()
            else:
                base["eventDate"] = "2026-01-05T09:30:00"  # naive
            row: Any = base
        elif draw < reject_share + fail_share:
            kind = "server_fail"
            case = (
                rng.choice(foreign)
                if rng.random() < 0.5
                else uuid.UUID(int=rng.getrandbits(128), version=4)
            )
            row = IngestionJobRow(case, f"{tag} orphan {i}", external_ref=ref)
        else:
            kind = "valid"
            case = rng.choice(own)
            if rng.random() < 0.3:
                row = {"caseId": str(case), "description": f"{tag} note {i}", "externalRef": ref}
            else:
                dated = _PAST if rng.random() < 0.5 else None
                row = IngestionJobRow(case, f"{tag} note {i}", external_ref=ref, event_date=dated)
        rows.append(row)
        refs.append(ref)
        kinds.append(kind)
    return Input(rows=tuple(rows), refs=tuple(refs), kinds=tuple(kinds))


# -- the run ---------------------------------------------------------------------------------------


def fast_retry(max_retries: int = 8) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, initial_backoff=0.005, max_backoff=0.02)


TIMEOUT = Timeout(total=0.3, connect=0.2, read=0.1)
"""Per attempt. A ``slow`` fault longer than ``read`` is a read timeout; shorter is just slow."""


@attrs.frozen(kw_only=True)
class Setup:
    """How the pipeline is driven in one run."""

    retry: RetryPolicy = attrs.field(factory=fast_retry)
    timeout: Timeout = TIMEOUT
    batch_size: int = 20
    jobs_in_flight: int = 4
    max_poll_failures: int = 4
    deadline: float | None = None
    polling: PollPolicy = POLICY


def bound_for(
    setup: Setup,
    inp: Input,
    *,
    latency: LatencyModel,
    scale: float,
    server_wait: float = 0.0,
    answers_429: int = 0,
) -> float:
    """Seconds within which a run must end, derived from its configuration.

    * One logical call (a POST or one poll, with its retries) ends within
      ``C = (R + 1) * T + R * W``: at most R + 1 attempts, each cut off by ``Timeout.total`` T
      (aiohttp's total covers connecting, sending and reading, so a slow fault cannot stretch
      it), and R waits of at most ``W = max(max_backoff, the largest server wait, real s)``.
    * A job of n rows runs ``D = (base + per_row * n + jitter) / scale`` real seconds and may
      queue behind every other job of the run at the worker pool: ``Q = batches * D``.
    * The planner never leaves a job unpolled longer than ``I = max_interval + prior(n) + D``.
    * After the job's end the pipeline gives up after F consecutive failed polls
      (``max_poll_failures``) or 3 not-found answers, or stops at the first good answer; with
      the poll in flight at the end that is ``F + 3 + 1`` polls, each after a wait <= I:
      one batch takes ``L = C + Q + D + (F + 4) * (C + I)`` from its POST to its outcome.
    * With ``jobs_in_flight`` J at most the submit and poll limits (4), batches do not wait for
      each other except for a free slot, so they go in ``ceil(batches / J)`` waves.
    * Every 429 answer pauses the client's shared budget for at most W, so 429s add at most
      ``answers_429 * W`` in all.
    * A ``deadline`` ends the run at the deadline (tasks are cancelled, nothing is awaited but
      the finalisation): then ``deadline + 1 s`` is the tighter bound.

    Plus 5 s for starting and finalising. A loaded machine does not stretch the bound: its terms
    are timeouts and waits, which run on the wall clock whatever the CPU does.
    """
    r = setup.retry.max_retries
    t = setup.timeout.total if setup.timeout.total is not None else 60.0
    w = max(setup.retry.max_backoff, server_wait)
    call = (r + 1) * t + r * w
    n = setup.batch_size
    batches = max(1, math.ceil(len(inp.accepted) / n))
    duration = (latency.base + latency.per_row * n + latency.jitter) / scale
    queue = batches * duration
    gap = setup.polling.max_interval + setup.polling.prior(n) + duration
    one_batch = call + queue + duration + (setup.max_poll_failures + 4) * (call + gap)
    waves = math.ceil(batches / setup.jobs_in_flight)
    bound = waves * one_batch + answers_429 * w + 5.0
    if setup.deadline is not None:
        bound = min(bound, setup.deadline + 1.0)
    return bound


@attrs.frozen(kw_only=True)
class Run:
    results: tuple[JobResult, ...]
    summary: IngestionSummary
    stats: RequestStats
    attempts: tuple[int, ...]
    """The attempt number of every request the client logged (one DEBUG line per attempt)."""
    elapsed: float
    bound: float


async def run_pipeline(
    emu: EmulatorLike,
    inp: Input,
    setup: Setup,
    *,
    bound: float,
    caplog: pytest.LogCaptureFixture,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> Run:
    """Ingest ``inp`` through ``client.ingest`` within ``bound`` seconds; ``during`` runs
    alongside (e.g. restarts the emulator). Fails on an unhandled exception in any task, a
    leaked task or an unclosed resource."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    caplog.clear()
    try:
        with caplog.at_level(logging.DEBUG, logger="debitura_async"):
            async with DebituraClient(
                emu.api_key, base_url=emu.url, retry=setup.retry, timeout=setup.timeout
            ) as client:
                started = time.monotonic()
                side = asyncio.create_task(during()) if during is not None else None
                try:
                    async with (
                        asyncio.timeout(bound),
                        client.ingest(
                            inp.rows,
                            batch_size=setup.batch_size,
                            max_jobs_in_flight=setup.jobs_in_flight,
                            max_concurrent_submits=setup.jobs_in_flight,
                            max_poll_failures=setup.max_poll_failures,
                            deadline=setup.deadline,
                            polling=setup.polling,
                        ) as results,
                    ):
                        seen = [r async for r in results]
                finally:
                    if side is not None:
                        side.cancel()  # its moment may never have come
                        await asyncio.wait([side])
                if side is not None and not side.cancelled() and side.exception() is not None:
                    raise AssertionError("the side task failed") from side.exception()
                elapsed = time.monotonic() - started
                summary = results.summary
                stats = client.stats.snapshot()
        attempts = tuple(
            int(m.group(1))
            for record in caplog.records
            if record.name == "debitura_async"
            and (m := _ATTEMPT.search(record.getMessage() + " ")) is not None
        )
    finally:
        loop.set_exception_handler(previous)
    await asyncio.sleep(0)  # let cancelled callbacks run before looking for leftovers
    assert unhandled == [], f"unhandled exceptions in tasks: {unhandled}"
    assert no_leaked_tasks() == []
    assert collect_resource_warnings() == []
    return Run(
        results=tuple(seen),
        summary=summary,
        stats=stats,
        attempts=attempts,
        elapsed=elapsed,
        bound=bound,
    )


# -- the checks ------------------------------------------------------------------------------------


@attrs.define
class Verdict:
    """Per-position buckets, the figures for the README table, and every violation found."""

    buckets: dict[int, Bucket] = attrs.field(factory=dict)
    violations: list[str] = attrs.field(factory=list)
    duplicates: int = 0
    lost: int = 0
    notes_of_unresolved: int = 0

    def fail(self, message: str) -> None:
        if len(self.violations) < 60:
            self.violations.append(message)

    def count(self, bucket: Bucket) -> int:
        return sum(1 for b in self.buckets.values() if b == bucket)

    def record(self, figures: Figures, run: Run, inp: Input) -> None:
        figures.add(
            runs=1,
            rows=len(inp),
            succeeded=self.count("succeeded"),
            failed=self.count("failed"),
            rejected=self.count("rejected"),
            unresolved=self.count("unresolved"),
            duplicates=self.duplicates,
            lost=self.lost,
            requests=run.stats.requests,
            retries=run.stats.retries,
            max_attempts=max(run.attempts, default=0),
            seconds=run.elapsed,
        )


def check_accounting(inp: Input, run: Run, batch_size: int) -> Verdict:
    """Every input row in exactly one bucket, by the summary, by the results and by position."""
    v = Verdict()
    s = run.summary
    if s.rows_read != len(inp):
        v.fail(f"rows_read {s.rows_read} != {len(inp)} input rows")
    if s.rows_read != s.rows_rejected + s.rows_submitted:
        v.fail(f"rows_read != rejected + submitted in {s}")
    if s.rows_submitted != s.rows_succeeded + s.rows_failed + s.rows_unresolved:
        v.fail(f"rows_submitted != succeeded + failed + unresolved in {s}")
    by_outcome: Counter[JobOutcome] = Counter()
    sums: Counter[str] = Counter()
    for r in run.results:
        by_outcome[r.outcome] += 1
        sums["succeeded"] += r.rows_succeeded
        sums["failed"] += r.rows_failed
        if r.outcome is JobOutcome.REJECTED:
            sums["rejected"] += r.row_count
        elif r.outcome is JobOutcome.UNRESOLVED:
            sums["unresolved"] += r.row_count
    for name, total in (
        ("succeeded", s.rows_succeeded),
        ("failed", s.rows_failed),
        ("rejected", s.rows_rejected),
        ("unresolved", s.rows_unresolved),
    ):
        if sums[name] != total:
            v.fail(f"results add up to {sums[name]} {name} rows, the summary says {total}")
    if dict(s.jobs) != {k: n for k, n in by_outcome.items() if n}:
        v.fail(f"summary.jobs {dict(s.jobs)} != outcomes of the results {dict(by_outcome)}")

    batches = inp.batches(batch_size)
    accepted = inp.accepted
    covered: Counter[int] = Counter()
    for r in run.results:
        positions = _positions_of(r, batches, accepted, v)
        covered.update(positions)
        if len(positions) != r.row_count:
            v.fail(f"result {_label(r)} covers {len(positions)} rows, row_count {r.row_count}")
        kinds = Counter(inp.kinds[p] for p in positions if 0 <= p < len(inp))
        _bucket_rows(r, positions, kinds, inp, v)
    for position in range(len(inp)):
        if covered[position] != 1:
            v.fail(f"input position {position} is covered by {covered[position]} results")
            v.lost += covered[position] == 0
    extra = set(covered) - set(range(len(inp)))
    if extra:
        v.fail(f"results cover positions that were never read: {sorted(extra)[:10]}")
    return v


def _label(r: JobResult) -> str:
    return f"#{r.batch_index}/{r.outcome.value}@{r.first_position}"


def _positions_of(
    r: JobResult, batches: Sequence[tuple[int, ...]], accepted: Sequence[int], v: Verdict
) -> tuple[int, ...]:
    if r.outcome is JobOutcome.REJECTED:
        if r.row_count != 1 or len(r.rejected_rows) != 1:
            v.fail(f"rejected result {_label(r)} should hold one row: {r}")
        if r.rejected_rows and r.rejected_rows[0].position != r.first_position:
            v.fail(f"rejected row position {r.rejected_rows[0].position} != {r.first_position}")
        return (r.first_position,)
    if r.batch_index is None:
        # Rows still in the batcher when the run stopped (deadline): reported as one result.
        return tuple(p for p in accepted if r.first_position <= p <= r.last_position)
    if not 0 <= r.batch_index < len(batches):
        v.fail(f"result {_label(r)} names a batch index that was never formed")
        return ()
    positions = batches[r.batch_index]
    if (r.first_position, r.last_position) != (positions[0], positions[-1]):
        v.fail(
            f"batch {r.batch_index} spans {r.first_position}..{r.last_position},"
            f" expected {positions[0]}..{positions[-1]}"
        )
    return positions


def _bucket_rows(
    r: JobResult, positions: Sequence[int], kinds: Counter[Kind], inp: Input, v: Verdict
) -> None:
    outcome = r.outcome
    if outcome is JobOutcome.REJECTED:
        for p in positions:
            v.buckets[p] = "rejected"
            if inp.kinds[p] != "reject":
                v.fail(f"position {p} ({inp.kinds[p]}) was rejected: {r.rejected_rows}")
        return
    if any(inp.kinds[p] == "reject" for p in positions):
        v.fail(f"result {_label(r)} holds a row the client should have rejected")
    if outcome is JobOutcome.UNRESOLVED:
        for p in positions:
            v.buckets[p] = "unresolved"
        if r.error is None:
            v.fail(f"unresolved result {_label(r)} carries no error")
        if r.batch_index is not None and r.idempotency_key is None:
            v.fail(f"unresolved batch {r.batch_index} carries no Idempotency-Key to resume it")
        return
    if r.job_id is None or r.status is None:
        v.fail(f"terminal result {_label(r)} without job id or status")
        return
    if r.status.rows_total != r.row_count:
        v.fail(f"job of batch {r.batch_index}: rowsTotal {r.status.rows_total} != {r.row_count}")
    if outcome is JobOutcome.FAILED:
        for p in positions:
            v.buckets[p] = "failed"
        if r.rows_failed != r.row_count:
            v.fail(f"failed job {_label(r)} counts {r.rows_failed} of {r.row_count} rows failed")
        return
    # COMPLETED / COMPLETED_WITH_ERRORS: the API does not say which rows failed, but the input
    # does: the unknown and foreign cases fail, every other row is stored.
    if (r.rows_succeeded, r.rows_failed) != (kinds["valid"], kinds["server_fail"]):
        v.fail(
            f"batch {r.batch_index}: {r.rows_succeeded} succeeded / {r.rows_failed} failed,"
            f" expected {kinds['valid']} / {kinds['server_fail']}"
        )
    if (outcome is JobOutcome.COMPLETED) != (kinds["server_fail"] == 0):
        v.fail(f"batch {r.batch_index} is {outcome.value} with {kinds['server_fail']} bad cases")
    for p in positions:
        v.buckets[p] = "succeeded" if inp.kinds[p] == "valid" else "failed"


async def check_notes(emu: EmulatorLike, inp: Input, v: Verdict) -> None:
    """Succeeded rows: exactly one note; rejected or failed rows: none; unresolved: at most one."""
    notes = await emu.notes()
    counts = Counter(n["externalRef"] for n in notes)
    known = set(inp.refs)
    strangers = [ref for ref in counts if ref not in known]
    if strangers:
        v.fail(f"{len(strangers)} notes for refs not in the input, e.g. {strangers[:3]}")
    for position, ref in enumerate(inp.refs):
        n = counts[ref]
        bucket = v.buckets.get(position)
        v.duplicates += max(0, n - 1)
        if bucket == "succeeded" and n != 1:
            v.fail(f"row {position} ({ref}) succeeded and has {n} notes")
            v.lost += n == 0
        elif bucket in ("rejected", "failed") and n:
            v.fail(f"row {position} ({ref}) is {bucket} but has {n} notes")
        elif bucket == "unresolved":
            v.notes_of_unresolved += n
            if n > 1:
                v.fail(f"row {position} ({ref}) of an unresolved job has {n} notes")


async def check_requests(
    emu: EmulatorLike,
    inp: Input,
    run: Run,
    setup: Setup,
    v: Verdict,
    *,
    restarted: bool = False,
    gone: bool = False,
) -> None:
    """Retries within their limits; the server saw exactly the attempts the client made; no
    batch became two jobs."""
    stats = run.stats
    r = setup.retry.max_retries
    calls = stats.requests - stats.retries
    if stats.retries > calls * r:
        v.fail(f"{stats.retries} retries for {calls} calls exceeds max_retries={r} each")
    if len(run.attempts) != stats.requests:
        v.fail(f"{len(run.attempts)} attempts logged, {stats.requests} requests counted")
    if run.attempts and max(run.attempts) > r + 1:
        v.fail(f"a request was attempted {max(run.attempts)} times (max_retries={r})")
    served = (await emu.stats())["requests"]
    posts = sum(served.get("POST /ingestion-jobs", {}).values())
    gets = sum(served.get("GET /ingestion-jobs/{jobId}", {}).values())
    if posts != stats.posts and not (gone and posts < stats.posts):
        # (a server that went away never saw the attempts it refused)
        v.fail(f"server saw {posts} POST attempts, the client sent {stats.posts}")
    if gets != stats.gets and not (gone and gets < stats.gets):
        # (no hidden re-send either: test_a_dropped_get_is_not_resent_behind_the_clients_back)
        v.fail(f"server saw {gets} GET attempts, the client sent {stats.gets}")
    if posts > len(inp.batches(setup.batch_size)) * (r + 1):
        v.fail(f"{posts} POST attempts for {len(inp.batches(setup.batch_size))} batches")
    by_key = {res.idempotency_key: res for res in run.results if res.batch_index is not None}
    jobs = await emu.jobs()
    per_key = Counter(j["idempotencyKey"] for j in jobs)
    twice = [k for k, n in per_key.items() if n > 1]
    if twice:
        v.fail(f"batches that became two jobs: {twice}")
    for job in jobs:
        result = by_key.get(job["idempotencyKey"])
        if result is None:
            v.fail(f"job {job['jobId']} has a key no batch result carries")
        elif result.job_id is not None and str(result.job_id) != job["jobId"]:
            v.fail(f"batch {result.batch_index} reported job {result.job_id}, server has {job}")
    if not restarted:
        reported = {str(res.job_id) for res in run.results if res.job_id is not None}
        missing = reported - {j["jobId"] for j in jobs}
        if missing:
            v.fail(f"results name jobs the server never created: {sorted(missing)[:3]}")


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, limit: float, step: float = 0.001
) -> bool:
    """Poll ``check`` every ``step`` seconds for at most ``limit`` seconds; its last answer."""
    for _ in range(max(1, int(limit / step))):
        if await check():
            return True
        await asyncio.sleep(step)
    return await check()


def report_figures(records: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per reported outcome, from a final report (job records and rejected lines)."""
    jobs = [r for r in records if r["record"] == "job"]
    return {
        "succeeded": sum(int(r["succeeded"]) for r in jobs),
        "failed": sum(int(r["failed"]) for r in jobs),
        "rejected": sum(1 for r in records if r["record"] == "rejected"),
        "unresolved": sum(int(r["rows"]) for r in jobs if r["outcome"] == "unresolved"),
    }
