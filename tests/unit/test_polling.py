"""The poll planner, without an event loop: table-driven rules, focused learning cases and
hostile option values. Whole-run figures per server scenario are in test_polling_scenarios.py;
both drive the planner in virtual time through ``benchmarks.polling_sim``."""

from __future__ import annotations

import ast
import math
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import polling_sim as sim
from debitura_async import _polling_model
from debitura_async._polling import PollPlanner, PollPolicy
from debitura_async._polling_model import FifoEntry, best_first_wait, extrapolate, fifo_starts

QUEUED, IN_PROGRESS, COMPLETED = 0, 1, 2
GUIDE = sim.OTHER_LAWS[0]  # a draw-based law: its pool size can be replaced


def test_fixed_policy_polls_on_a_cadence() -> None:
    planner = PollPlanner(PollPolicy.fixed(3.0))
    assert planner.add("a", 1000, now=10.0) == 13.0
    assert not planner.observe("a", status=IN_PROGRESS, processed=10, total=1000, now=13.0)
    assert planner.due("a") == 16.0
    assert planner.observe("a", status=COMPLETED, processed=1000, total=1000, now=16.0)
    assert "a" not in planner
    assert planner.mode == "fixed"


def test_first_jobs_scout_early_and_the_others_wait_on_the_prior() -> None:
    policy = PollPolicy()
    planner = PollPlanner(policy)
    dues = [planner.add(i, 1000, now=0.0) for i in range(5)]
    assert dues[:3] == [pytest.approx(0.12 * policy.prior(1000))] * 3
    assert dues[3:] == [pytest.approx(policy.prior(1000))] * 2


def test_one_mid_job_answer_predicts_that_jobs_end() -> None:
    # no set-up time in the prior: progress runs evenly from the start
    planner = PollPlanner.calibrated(PollPolicy(expected_base=0.0), 25.0)
    planner.add("j", 1000, now=0.0)
    planner.observe("j", status=IN_PROGRESS, processed=800, total=1000, now=20.0)
    assert 25.0 <= planner.due("j") <= 25.0 * 1.01  # the end (20 s for 800 rows: 25 s)


def test_two_answers_fix_the_pace_whatever_the_set_up_time() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 30.0)
    planner.add("j", 1000, now=0.0)
    # the server spent 5 s at zero rows, then 0.02 s/row: ends at 25 s
    planner.observe("j", status=IN_PROGRESS, processed=250, total=1000, now=10.0)
    planner.observe("j", status=IN_PROGRESS, processed=500, total=1000, now=15.0)
    assert 25.0 <= planner.due("j") <= 25.3


def test_queued_job_postpones_every_later_one() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    for i, key in enumerate(("first", "second", "third")):  # one after the other: FIFO order
        planner.add(key, 1000, now=0.01 * i + 0.005, sent=0.01 * i)
    before = planner.due("third")
    planner.observe("first", status=QUEUED, processed=0, total=1000, now=10.0)
    # "first" had not started at 10 s; FIFO: neither had the jobs behind it
    assert planner.due("second") >= 10.0 + 0.5 * 20.0
    assert planner.due("third") > before


def test_concurrent_submissions_are_ordered_by_what_their_polls_show() -> None:
    """Three submissions in flight at once may reach the server in any order: one seen queued
    says nothing about the others, which may have started before it."""
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    for key in ("first", "second", "third"):
        planner.add(key, 1000, now=0.0)  # added together: concurrent
    planner.observe("first", status=QUEUED, processed=0, total=1000, now=10.0)
    assert planner.due("second") < 10.0 + 0.5 * 20.0  # not postponed by "first"
    planner.observe("second", status=IN_PROGRESS, processed=500, total=1000, now=10.0)
    assert 18.0 <= planner.due("second") <= 20.5  # half done: ends by 20 s (2 s set-up at most)


def test_answers_that_leave_no_time_for_the_rows_done_do_not_make_the_job_instant() -> None:
    """A start estimate at the very moment 400 rows are seen done (an order the model got
    wrong) is replaced by the start a typical pace implies: no poll storm at min_interval."""
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("a", 1000, now=0.0)
    planner.add("b", 1000, now=0.0)
    planner.observe("b", status=QUEUED, processed=0, total=1000, now=5.0)
    planner.observe("b", status=IN_PROGRESS, processed=400, total=1000, now=5.0 + 1e-9)
    due = planner.due("b")  # a probe, to measure the pace
    assert due >= 5.0 + PollPolicy().min_interval
    # the server really does 0.018 s a row: the job ends at 5 + 600 x 0.018 = 15.8 s
    planner.observe(
        "b", status=IN_PROGRESS, processed=400 + int((due - 5.0) / 0.018), total=1000, now=due
    )
    assert 15.7 <= planner.due("b") <= 16.3
    assert planner.polls("b") == 3  # Queued, the contradiction, the probe: no poll storm


def test_finished_job_tells_when_the_queued_one_started() -> None:
    """One worker: the second job starts when the first ends, and is expected a duration later."""
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("a", 1000, now=0.0)
    planner.add("b", 1000, now=0.0)
    planner.observe("b", status=QUEUED, processed=0, total=1000, now=5.0)
    planner.observe("a", status=IN_PROGRESS, processed=500, total=1000, now=10.0)
    planner.observe("a", status=IN_PROGRESS, processed=750, total=1000, now=15.0)
    assert planner.parallelism == 1
    assert planner.observe("a", status=COMPLETED, processed=1000, total=1000, now=20.1)
    # "b" started at ~20 s (when "a" ended): its first poll goes a share of a duration after
    assert 20.0 + 5.0 <= planner.due("b") <= 20.0 + 20.0


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
    assert planner.next_due() == ("j", 25.0)


def test_next_due_skips_excluded_jobs_and_remove_is_idempotent() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("a", 1000, now=0.0)
    planner.add("b", 1000, now=1.0)
    assert planner.next_due() is not None
    assert planner.next_due()[0] == "a"  # type: ignore[index]
    assert planner.next_due(exclude={"a"})[0] == "b"  # type: ignore[index]
    planner.remove("a", now=3.0)
    planner.discard("a")
    assert planner.next_due(exclude={"b"}) is None
    assert len(planner) == 1


def test_scaled_policy_divides_every_time() -> None:
    policy = PollPolicy(prefer="balanced").scaled(100)
    assert policy.interval == pytest.approx(0.03)
    assert policy.prior(1000) == pytest.approx(PollPolicy().prior(1000) / 100)
    assert policy.max_interval == pytest.approx(3.0)
    assert policy.prefer == "balanced"


# -- learning in a whole run (virtual time, benchmarks.polling_sim) ------------------------------


def _run(model: sim.ServerModel, seed: int, **planner: object) -> tuple[sim.RunResult, PollPlanner]:
    made: list[PollPlanner] = []

    def factory() -> PollPlanner:
        made.append(PollPlanner(**planner))  # type: ignore[arg-type]
        return made[-1]

    return sim.run(model, factory, seed), made[0]


@pytest.mark.parametrize(
    ("label", "per_row", "base"), [("5x faster", 0.005, 0.2), ("5x slower", 0.125, 5.0)]
)
def test_a_prior_wrong_by_5x_is_unlearned_within_the_first_jobs(
    label: str, per_row: float, base: float
) -> None:
    model = sim.ServerModel(label, 8, sim._linear(base, per_row, 2.0 * base))
    truth = base + per_row * 1000 + base  # the mean draw (uniform jitter of 2x base)
    result, planner = _run(model, seed=3)
    learned = planner.learned_duration
    assert learned is not None
    assert truth * 0.9 <= learned <= truth * 1.1, label
    # after the first wave of 8, every result is seen within 5 % of a job's duration
    assert max(result.delays[8:]) <= 0.05 * truth, label


def test_durations_that_drift_are_followed() -> None:
    """The slows-down-3x server: jobs starting after 100 s take 3x the guide-like ~27 s."""
    model = next(m for m in sim.OTHER_LAWS if m.name == "slows-down-3x")
    model = replace(model, jobs=48)
    result, planner = _run(model, seed=2)
    learned = planner.learned_duration
    assert learned is not None
    assert 3 * 27.0 * 0.85 <= learned <= 3 * 27.0 * 1.15
    assert statistics.median(result.delays[-16:]) <= 0.02 * 3 * 27.0


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_apparent_parallelism_is_learned(workers: int) -> None:
    model = replace(GUIDE, workers=workers)
    _, planner = _run(model, seed=1)
    assert planner.parallelism == (None if workers == 8 else workers)


def test_scarcity_shifts_toward_fewer_polls_and_shows_in_the_stats() -> None:
    plenty = [_run(GUIDE, seed)[0].polls_per_job for seed in range(3)]
    runs = [_run(GUIDE, seed, scarcity=1.0) for seed in range(3)]
    scarce = [result.polls_per_job for result, _ in runs]
    assert statistics.median(scarce) < statistics.median(plenty) - 0.25
    stats = runs[0][1].stats()
    assert stats.mode == "requests"
    assert stats.scarcity == 1.0
    assert stats.first_polls_found_done > stats.first_polls / 3
    assert stats.polls == round(runs[0][0].polls_per_job * GUIDE.jobs)


def test_scarcity_set_mid_run_moves_the_mode_and_replans() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    for d in (18.0, 19.0, 20.0, 21.0, 22.0, 23.0):
        planner._durations.add(d)  # a spread of recent durations
    planner.add("j", 1000, now=0.0)
    eager = planner.due("j")
    modes = [planner.mode]
    planner.set_scarcity(1.0)
    modes.append(planner.mode)
    assert planner.due("j") > eager  # later first poll: fewer second polls
    planner.set_scarcity(0.5)
    modes.append(planner.mode)
    assert modes == ["latency", "requests", "balanced"]
    assert planner.stats().economy == pytest.approx(0.5)


def test_preference_names_and_weights_agree() -> None:
    assert PollPolicy(prefer="requests").weight == 1.0
    assert PollPlanner(PollPolicy(prefer=0.5)).mode == "balanced"
    assert PollPlanner(PollPolicy(prefer="latency"), scarcity=0.9).mode == "requests"


# -- hostile inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prefer": "fast"}, ValueError),
        ({"prefer": 1.5}, ValueError),
        ({"prefer": math.nan}, ValueError),
        ({"prefer": True}, TypeError),
        ({"interval": 0}, ValueError),
        ({"interval": "3"}, TypeError),
        ({"interval": math.inf}, ValueError),
        ({"expected_base": -1.0}, ValueError),
        ({"expected_per_row": 0.0}, ValueError),
        ({"reference_rows": 0}, ValueError),
        ({"reference_rows": 10.5}, TypeError),
        ({"window": 1}, ValueError),
        ({"min_interval": 5.0, "max_interval": 1.0}, ValueError),
        ({"strategy": "sometimes"}, ValueError),
    ],
)
def test_bad_policy_values_are_refused_with_a_typed_error(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error, match="PollPolicy"):
        PollPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-0.1, ValueError),
        (1.01, ValueError),
        (math.nan, ValueError),
        ("0.5", TypeError),
        (None, TypeError),
        (False, TypeError),
    ],
)
def test_bad_scarcity_is_refused(value: object, error: type[Exception]) -> None:
    planner = PollPlanner()
    with pytest.raises(error, match="scarcity"):
        planner.set_scarcity(value)  # type: ignore[arg-type]
    with pytest.raises(error, match="scarcity"):
        PollPlanner(scarcity=value)  # type: ignore[arg-type]


def test_bad_add_arguments_are_refused() -> None:
    planner = PollPlanner()
    planner.add("j", 10, now=0.0)
    with pytest.raises(ValueError, match="already tracked"):
        planner.add("j", 10, now=1.0)
    with pytest.raises(ValueError, match="rows"):
        planner.add("k", -1, now=1.0)
    with pytest.raises(TypeError, match="PollPolicy"):
        PollPlanner("adaptive")  # type: ignore[arg-type]


answers = st.lists(
    st.tuples(
        st.integers(0, 5),  # which job
        st.floats(0.0, 40.0),  # time step
        st.sampled_from([QUEUED, IN_PROGRESS, IN_PROGRESS, COMPLETED, 3, 4]),
        st.integers(0, 1000),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(answers, st.floats(0.0, 1.0), st.sampled_from(["latency", "balanced", "requests"]))
def test_any_answer_sequence_keeps_dues_finite_and_within_the_policy_bounds(
    steps: list[tuple[int, float, int, int]], scarcity: float, prefer: str
) -> None:
    """Whatever the server answers (even nonsense: progress going back, Queued after
    InProgress), the planner neither raises nor plans outside [min_interval, max_interval]."""
    policy = PollPolicy(prefer=prefer)  # type: ignore[arg-type]
    planner = PollPlanner(policy, scarcity=scarcity)
    now = 0.0
    added = 0
    for index, step, status, processed in steps:
        now += step
        key = index % (added + 1)
        if key == added:
            planner.add(key, 1000, now=now)
            added += 1
            continue
        if key not in planner:
            continue
        planner.observe(key, status=status, processed=processed, total=1000, now=now)
        if key in planner:
            due = planner.due(key)
            assert math.isfinite(due)
            assert now + policy.min_interval - 1e-9 <= due <= now + policy.max_interval + 1e-9
    for _, due in planner.items():
        assert math.isfinite(due)


# -- the estimators ------------------------------------------------------------------------------


def test_fifo_starts_follow_a_pool_of_workers() -> None:
    entries = [FifoEntry(0.0, None, None) for _ in range(5)]
    assert fifo_starts(entries, 2, 10.0) == [0.0, 0.0, 10.0, 10.0, 20.0]
    assert fifo_starts(entries, None, 10.0) == [0.0] * 5
    seen_queued = [FifoEntry(0.0, None, None), FifoEntry(0.0, None, None, not_before=4.0)]
    assert fifo_starts(seen_queued, None, 10.0) == [0.0, 4.0]


def test_extrapolate_bounds_an_end_from_one_answer() -> None:
    ex = extrapolate([(10.0, 400)], 1000, 0.0, (0.0, 1.0, 2.0))
    assert ex is not None
    assert not ex.exact
    assert ex.earliest < ex.end < ex.latest == pytest.approx(25.0)
    exact = extrapolate([(10.0, 400), (12.0, 500)], 1000, 0.0, (0.0, 1.0, 2.0))
    assert exact is not None
    assert exact.exact
    assert exact.end == pytest.approx(22.0)
    assert extrapolate([(10.0, 400), (12.0, 400)], 1000, 0.0, (0.0, 0.0, 0.0)) is None


def test_best_first_wait_trades_delay_against_polls() -> None:
    durations = sorted([20.0, 21.0, 22.0, 23.0, 24.0, 60.0])
    assert best_first_wait(durations, 0.01) == 20.0  # polls are cheap: look before any end
    assert best_first_wait(durations, 10.0) == 24.0  # dear: wait for the common case
    assert best_first_wait(durations, 1000.0) == 60.0  # priceless: one poll each


def test_the_planner_modules_are_pure() -> None:
    """No clock, no event loop, no randomness imported by the planner's modules."""
    root = Path(_polling_model.__file__).parent
    names = ("_polling.py", "_polling_model.py", "_polling_plan.py", "_polling_policy.py")
    for name in (*names, "_polling_state.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse((root / name).read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not ({"time", "asyncio", "random", "datetime"} & imported), name


def test_a_job_queued_again_and_again_is_never_polled_in_a_storm() -> None:
    """Answers that keep saying Queued while the model expected a start (an order or pool it
    has not learned yet) back off geometrically: this seed once spent 6.4 polls a job, most of
    them on one queued job every 0.1 s."""
    model = replace(sim.preset("fifo-4"), rtt=0.1)
    result = sim.run(model, sim.sdk(), 110)
    assert result.polls_per_job <= 3.5
    planner = PollPlanner.calibrated(PollPolicy(), 20.0)
    planner.add("a", 1000, now=0.0)
    now = 0.0
    for _ in range(6):
        now = max(planner.due("a"), now)
        planner.observe("a", status=QUEUED, processed=0, total=1000, now=now)
        assert planner.due("a") - now >= 0.02 * 20.0
