"""The poll planner, without an event loop: table-driven rules plus a simulated server.

The simulated server is the emulator's latency model in miniature (FIFO worker pool; duration =
base + per_row * rows + uniform(0, jitter); rows processed evenly after the base time), driven in
virtual time, so the planner's request economy is checked exactly and reproducibly.
"""

from __future__ import annotations

import random
import statistics

import attrs
import pytest

from debitura_async._polling import PollPlanner, PollPolicy

QUEUED, IN_PROGRESS, COMPLETED = 0, 1, 2


def test_fixed_policy_polls_on_a_cadence() -> None:
    planner = PollPlanner(PollPolicy.fixed(3.0))
    assert planner.add("a", 1000, now=10.0) == 13.0
    assert not planner.observe("a", status=IN_PROGRESS, processed=10, total=1000, now=13.0)
    assert planner.due("a") == 16.0
    assert planner.observe("a", status=COMPLETED, processed=1000, total=1000, now=16.0)
    assert "a" not in planner


def test_first_job_scouts_at_half_the_prior() -> None:
    policy = PollPolicy()
    planner = PollPlanner(policy)
    due = planner.add("scout", 1000, now=0.0)
    assert due == pytest.approx(0.5 * policy.prior(1000))
    # others wait on the full prior until the scout has measured the server
    assert planner.add("other", 1000, now=0.0) == pytest.approx(policy.prior(1000))


def test_scout_measures_pace_then_everyone_is_rescheduled() -> None:
    policy = PollPolicy()
    planner = PollPlanner(policy)
    planner.add("scout", 1000, now=0.0)
    planner.add("b", 1000, now=0.0)
    # true server: starts at 0, 1 s base, 0.02 s/row -> ends at 21 s
    t1 = planner.due("scout")
    k1 = int((t1 - 1.0) / 0.02)
    planner.observe("scout", status=IN_PROGRESS, processed=k1, total=1000, now=t1)
    t2 = planner.due("scout")
    assert t2 > t1
    k2 = int((t2 - 1.0) / 0.02)
    planner.observe("scout", status=IN_PROGRESS, processed=k2, total=1000, now=t2)
    t3 = planner.due("scout")
    assert 21.0 <= t3 <= 21.0 * 1.08  # predicted end, just after it
    assert planner.observe("scout", status=COMPLETED, processed=1000, total=1000, now=t3)
    learned = planner.learned_duration
    assert learned is not None
    assert 21.0 <= learned <= 23.5
    # the waiting job is now due at the learned duration, not at the prior
    assert planner.due("b") == pytest.approx(learned)
    assert planner.due("b") < policy.prior(1000)


def test_late_job_is_repolled_when_its_progress_says_it_ends() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("j", 1000, now=0.0)
    assert planner.due("j") == pytest.approx(20.0)
    planner.observe("j", status=IN_PROGRESS, processed=900, total=1000, now=20.0)
    # 100 rows left at the prior pace (0.028 s/row) plus 5 %: ~2.9 s
    assert planner.due("j") == pytest.approx(20.0 + 100 * 0.028 * 1.05)
    assert planner.late_first_polls == 1


def test_quantile_tracking_moves_the_duration_both_ways() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("late", 1000, now=0.0)
    planner.observe("late", status=IN_PROGRESS, processed=500, total=1000, now=20.0)
    up = planner.learned_duration
    assert up is not None
    assert up > 20.0
    planner.add("early", 1000, now=100.0)
    planner.observe("early", status=COMPLETED, processed=1000, total=1000, now=100.0 + up)
    down = planner.learned_duration
    assert down is not None
    assert down < up


def test_queued_job_pushes_later_jobs_back() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("first", 1000, now=0.0)
    planner.add("second", 1000, now=1.0)
    assert planner.due("second") == pytest.approx(21.0)
    planner.observe("first", status=QUEUED, processed=0, total=1000, now=20.0)
    # "first" had not started at 20 s, so "second" (behind it, FIFO) cannot end before ~30 s
    assert planner.due("second") >= 30.0


def test_smaller_batches_are_expected_sooner() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 27.0)
    full = planner.add("full", 1000, now=0.0)
    small = planner.add("small", 50, now=0.0)
    assert small < full / 5


def test_retry_later_backs_off_and_caps() -> None:
    planner = PollPlanner(PollPolicy(interval=3.0, max_interval=20.0))
    planner.add("j", 10, now=0.0)
    assert planner.retry_later("j", 5.0, failures=1) == pytest.approx(8.0)
    assert planner.retry_later("j", 5.0, failures=2) == pytest.approx(11.0)
    assert planner.retry_later("j", 5.0, failures=10) == pytest.approx(25.0)


def test_scaled_policy_divides_every_time() -> None:
    policy = PollPolicy().scaled(100)
    assert policy.interval == pytest.approx(0.03)
    assert policy.prior(1000) == pytest.approx(PollPolicy().prior(1000) / 100)
    assert policy.late_target == PollPolicy().late_target


# -- a simulated server --------------------------------------------------------------------------


@attrs.define
class SimResult:
    polls_per_job: float
    median_delay: float


def simulate(
    policy: PollPolicy,
    *,
    jobs: int = 100,
    in_flight: int = 8,
    workers: int = 8,
    base: float = 1.0,
    per_row: float = 0.025,
    jitter: float = 2.0,
    seed: int = 0,
) -> SimResult:
    """Keep ``in_flight`` jobs going; poll exactly when the planner says; measure."""
    rng = random.Random(seed)
    planner = PollPlanner(policy)
    free_at = [0.0] * workers
    pending: dict[int, tuple[float, float, int]] = {}
    submitted = polls = 0
    delays: list[float] = []
    now = 0.0

    def submit(at: float) -> None:
        nonlocal submitted
        key = submitted
        submitted += 1
        rows = 1000 if key < jobs - 1 else 370
        worker = min(range(workers), key=free_at.__getitem__)
        start = max(at, free_at[worker])
        end = start + base + per_row * rows + rng.uniform(0, jitter)
        free_at[worker] = end
        pending[key] = (start, end, rows)
        planner.add(key, rows, at)

    for _ in range(min(in_flight, jobs)):
        submit(now)
    while pending:
        key, due = min(planner.items(), key=lambda item: item[1])
        now = max(now, due)
        start, end, rows = pending[key]  # type: ignore[index]
        polls += 1
        if now >= end:
            status, done = COMPLETED, rows
        elif now < start:
            status, done = QUEUED, 0
        elif now < start + base:
            status, done = IN_PROGRESS, 0
        else:
            status, done = IN_PROGRESS, int(rows * (now - start - base) / (end - start - base))
        if planner.observe(key, status=status, processed=done, total=rows, now=now):
            delays.append(now - end)
            del pending[key]  # type: ignore[arg-type]
            if submitted < jobs:
                submit(now)
    return SimResult(polls / jobs, statistics.median(delays))


@pytest.mark.parametrize("seed", range(4))
def test_adaptive_planner_beats_the_naive_cadence_on_the_default_model(seed: int) -> None:
    """About one poll per job, and results no later than the guide's 3 s cadence finds them."""
    adaptive = simulate(PollPolicy(), seed=seed)
    naive = simulate(PollPolicy.fixed(3.0), seed=seed)
    assert adaptive.polls_per_job <= 1.2
    assert naive.polls_per_job >= 8
    assert adaptive.median_delay <= naive.median_delay


def test_planner_is_scale_free() -> None:
    """The same server 100x faster, with the policy scaled alike: the same economy."""
    scaled = simulate(PollPolicy().scaled(100), base=0.01, per_row=0.00025, jitter=0.02)
    plain = simulate(PollPolicy())
    assert scaled.polls_per_job == pytest.approx(plain.polls_per_job, abs=0.05)
    assert scaled.median_delay == pytest.approx(plain.median_delay / 100, rel=0.2)


@pytest.mark.parametrize(
    ("label", "overrides"),
    [
        ("server 3x faster than the prior", {"base": 0.33, "per_row": 0.0083, "jitter": 0.66}),
        ("server 2x slower than the prior", {"base": 2.0, "per_row": 0.05, "jitter": 4.0}),
        ("server queueing our jobs", {"workers": 4}),
    ],
)
def test_planner_stays_economical_when_the_prior_is_wrong(
    label: str, overrides: dict[str, float]
) -> None:
    result = simulate(PollPolicy(), **overrides)  # type: ignore[arg-type]
    naive = simulate(PollPolicy.fixed(3.0), **overrides)  # type: ignore[arg-type]
    assert result.polls_per_job < 2.0, label
    assert result.polls_per_job < naive.polls_per_job / 2, label
