"""The emulator's latency models (pure: seeded draws, explicit ``now``, no event loop)."""

from __future__ import annotations

import math
import random
import statistics
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async.emulator import LATENCY_PRESETS, EmulatorConfig, HeavyTail, LatencyModel
from debitura_async.emulator.core import Accepted, EmulatorCore, JobStatus
from debitura_async.emulator.latency import JobScheduler, Slot

UTCNOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ROWS = 1000


def schedule_many(model: LatencyModel, submits: list[float], rows: int = ROWS) -> list[Slot]:
    scheduler = JobScheduler(model, random.Random("latency-test"))
    jitter = random.Random("jitter-test")
    return [scheduler.schedule(now=t, rows=rows, jitter_rng=jitter) for t in submits]


def flat(**changes: Any) -> LatencyModel:
    """The guide's model without jitter: a 1000-row job lasts exactly 26 s before multipliers."""
    return attrs.evolve(LatencyModel(jitter=0.0), **changes)


def core_with(latency: LatencyModel, *, seed: int = 0) -> EmulatorCore:
    return EmulatorCore(EmulatorConfig(latency=latency, seed=seed, partners=1, cases_per_partner=3))


def submit(core: EmulatorCore, now: float, rows: int = ROWS) -> uuid.UUID:
    partner = core.world.partners[0]
    row = {"type": 0, "caseId": str(partner.case_ids[0]), "description": "Called"}
    result = core.submit_job(partner, {"rows": [row] * rows}, now=now, utcnow=UTCNOW)
    assert isinstance(result, Accepted)
    return result.job_id


# ---------------------------------------------------------------- presets and config values


def test_presets_name_the_benchmark_scenarios() -> None:
    assert set(LATENCY_PRESETS) == {
        "guide",
        "fifo-4",
        "fifo-2",
        "heavy-tail",
        "slow-path-20",
        "drift-3x",
        "fast-5x",
        "zero",
    }
    assert LatencyModel.preset("guide") == LatencyModel() == EmulatorConfig().latency
    assert LatencyModel.preset("fifo-4").workers == 4
    assert LatencyModel.preset("fifo-2").workers == 2
    assert LatencyModel.preset("heavy-tail").tail is HeavyTail.LOGNORMAL
    slow = LatencyModel.preset("slow-path-20")
    assert (slow.slow_share, slow.slow_factor) == (0.2, 4.0)
    assert LatencyModel.preset("drift-3x").drift_factor == 3.0
    assert LatencyModel.preset(" Zero ") == LatencyModel.zero()


def test_guide_and_fast_presets_match_the_guides_figures() -> None:
    guide = LatencyModel.preset("guide")
    fast = LatencyModel.preset("fast-5x")
    longest = guide.raw_duration(ROWS, guide.jitter)
    assert 25.0 <= guide.raw_duration(ROWS, 0.0) <= longest <= 30.0  # "1000 rows up to 30 s"
    assert fast.raw_duration(ROWS, fast.jitter) == pytest.approx(longest / 5)
    assert fast.raw_duration(ROWS, 0.0) == pytest.approx(guide.raw_duration(ROWS, 0.0) / 5)


@pytest.mark.parametrize("name", sorted(LATENCY_PRESETS))
def test_every_preset_round_trips_through_json_and_by_name(name: str) -> None:
    model = LATENCY_PRESETS[name]
    assert LatencyModel.from_dict(model.to_dict()) == model
    assert LatencyModel.from_dict(name) == model
    config = EmulatorConfig.from_dict({"latency": name})
    assert config.latency == model
    assert EmulatorConfig.from_dict(config.to_dict()) == config


def test_a_preset_in_json_takes_overrides() -> None:
    model = LatencyModel.from_dict({"preset": "slow-path-20", "workers": 2, "slowFactor": 3})
    assert (model.workers, model.slow_share, model.slow_factor) == (2, 0.2, 3.0)
    assert LatencyModel.from_dict({"workers": None}).workers is None
    assert LatencyModel.from_dict({}) == LatencyModel()


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ("fifo-3", ValueError, "unknown latency preset 'fifo-3'; known: guide, fifo-4"),
        ({"preset": 4}, TypeError, "preset must be a string"),
        ({"speed": 2}, ValueError, r"unknown latency fields: \['speed'\]"),
        ({"workers": 2.5}, TypeError, "workers must be an integer"),
        ({"workers": 0}, ValueError, "workers must be an integer >= 1"),
        ({"workers": True}, TypeError, "workers must be an integer"),
        ({"base": "1"}, TypeError, "base must be a number"),
        ({"base": -1}, ValueError, "base must be a finite number >= 0"),
        ({"jitter": math.inf}, ValueError, "jitter must be a finite number"),
        ({"tail": "cauchy"}, ValueError, "'cauchy' is not a valid HeavyTail"),
        ({"tail": "pareto", "tailShape": 1.0}, ValueError, "alpha"),
        ({"tail": "lognormal", "tailShape": 0}, ValueError, "tail_shape must be"),
        ({"tailCap": 0.5}, ValueError, "tail_cap must be a finite number >= 1"),
        ({"slowShare": 1.5}, ValueError, r"slow_share must be within \[0, 1\]"),
        ({"slowShare": math.nan}, ValueError, "slow_share must be within"),
        ({"slowFactor": 0}, ValueError, "slow_factor must be a finite number > 0"),
        ({"driftFactor": -3}, ValueError, "drift_factor must be"),
        ({"driftOver": 0}, ValueError, "drift_over must be a finite number > 0"),
        (["fifo-2"], TypeError, "latency must be a JSON object or a preset name"),
    ],
)
def test_bad_latency_values_are_typed_errors(data: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        LatencyModel.from_dict(data)


def test_describe_names_every_active_part() -> None:
    text = LatencyModel(
        tail="pareto", tail_shape=2.0, tail_cap=9.0, slow_share=0.2, slow_factor=4.0,
        drift_factor=3.0, drift_over=100.0,
    ).describe()  # fmt: skip
    assert "pareto(2, cap 9)" in text
    assert "4x for 20%" in text
    assert "drift to 3x over 100s" in text
    assert "workers unbounded" in LatencyModel.zero().describe()


# ---------------------------------------------------------------- FIFO worker pools


def test_two_workers_start_jobs_fifo() -> None:
    slots = schedule_many(flat(workers=2), [0.0, 0.0, 0.0, 0.0, 0.0, 60.0, 61.0])
    # job 6 (at 60 s) finds the worker free since 52; job 7 (at 61 s) waits for the one busy
    # with job 5 until 78, not for job 6's worker (busy until 86)
    assert [s.start for s in slots] == [0.0, 0.0, 26.0, 26.0, 52.0, 60.0, 78.0]
    assert [s.end for s in slots] == [26.0, 26.0, 52.0, 52.0, 78.0, 86.0, 104.0]


def test_a_queued_job_waits_for_the_first_free_worker() -> None:
    slots = schedule_many(flat(workers=2), [0.0, 1.0, 2.0, 3.0])
    assert [s.start for s in slots] == [0.0, 1.0, 26.0, 27.0]
    core = core_with(flat(workers=2))
    ids = [submit(core, t) for t in (0.0, 1.0, 2.0)]
    partner = core.world.partners[0]
    view = core.job_status(partner, ids[2], now=25.9)
    assert view is not None
    assert view.status is JobStatus.QUEUED
    view = core.job_status(partner, ids[2], now=26.0)
    assert view is not None
    assert view.status is JobStatus.IN_PROGRESS


@settings(max_examples=60, deadline=None)
@given(
    workers=st.integers(1, 5),
    gaps=st.lists(st.floats(0.0, 40.0, allow_nan=False), min_size=1, max_size=30),
    rows=st.lists(st.integers(1, ROWS), min_size=30, max_size=30),
)
def test_fifo_pool_invariants(workers: int, gaps: list[float], rows: list[int]) -> None:
    submits = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    scheduler = JobScheduler(LatencyModel(workers=workers), random.Random(1))
    jitter = random.Random(2)
    slots = [
        scheduler.schedule(now=t, rows=n, jitter_rng=jitter)
        for t, n in zip(submits, rows, strict=False)
    ]
    starts = [s.start for s in slots]
    assert starts == sorted(starts)  # first come, first served
    ends = [s.end for s in slots]
    for i, (slot, submitted) in enumerate(zip(slots, submits, strict=False)):
        assert slot.start >= submitted
        running = sum(1 for other in slots if other.start <= slot.start < other.end)
        assert running <= workers
        if slot.start > submitted:  # it waited: a worker freed up exactly then
            assert slot.start in ends[:i]


# ---------------------------------------------------------------- multipliers


def test_heavy_tail_lognormal_has_mean_one_and_a_long_tail() -> None:
    model = flat(workers=None, tail=HeavyTail.LOGNORMAL, tail_shape=1.0)
    factors = [s.multiplier for s in schedule_many(model, [0.0] * 20_000)]
    assert statistics.fmean(factors) == pytest.approx(1.0, rel=0.05)
    assert statistics.median(factors) == pytest.approx(math.exp(-0.5), rel=0.05)
    p99 = statistics.quantiles(factors, n=100)[98]
    assert p99 / statistics.median(factors) > 8.0  # e^(2.33) ≈ 10: heavy, not uniform


def test_heavy_tail_pareto_has_mean_one_its_floor_and_the_cap() -> None:
    model = flat(workers=None, tail=HeavyTail.PARETO, tail_shape=3.0)
    factors = [s.multiplier for s in schedule_many(model, [0.0] * 20_000)]
    assert statistics.fmean(factors) == pytest.approx(1.0, rel=0.05)
    assert min(factors) >= 2.0 / 3.0  # x_m = (alpha - 1) / alpha
    capped = attrs.evolve(model, tail_cap=1.5)
    assert max(s.multiplier for s in schedule_many(capped, [0.0] * 2000)) == 1.5


def test_tail_multiplier_is_the_quantile_function() -> None:
    model = LatencyModel(tail=HeavyTail.LOGNORMAL, tail_shape=0.5)
    values = [model.tail_multiplier(u / 100) for u in range(100)]
    assert values == sorted(values)
    assert model.tail_multiplier(0.5) == pytest.approx(math.exp(-0.125))
    assert LatencyModel().tail_multiplier(0.99) == 1.0


def test_slow_path_share_and_factor() -> None:
    slots = schedule_many(flat(workers=None, slow_share=0.2, slow_factor=4.0), [0.0] * 5000)
    slow = [s for s in slots if s.slow_path]
    assert len(slow) / len(slots) == pytest.approx(0.2, abs=0.02)
    assert {s.end for s in slow} == {104.0}  # 26 s x 4
    assert {s.end for s in slots if not s.slow_path} == {26.0}
    assert {s.multiplier for s in slow} == {4.0}


def test_drift_slows_the_server_by_its_factor_over_the_run() -> None:
    model = flat(workers=None, drift_factor=3.0, drift_over=300.0)
    first, middle, late, later = schedule_many(model, [0.0, 150.0, 300.0, 900.0])
    assert first.end - first.start == 26.0
    assert middle.end - middle.start == pytest.approx(52.0)
    assert (late.end - late.start, later.end - later.start) == (78.0, 78.0)
    faster = flat(workers=None, drift_factor=0.5, drift_over=100.0)
    assert schedule_many(faster, [200.0])[0].multiplier == 0.5


def test_drift_follows_the_start_on_a_worker_not_the_submission() -> None:
    model = flat(workers=1, drift_factor=3.0, drift_over=52.0)
    _first, second = schedule_many(model, [0.0, 0.0])
    assert second.start == 26.0
    assert second.multiplier == pytest.approx(2.0)  # started halfway through the ramp


def test_multipliers_compose_and_scale_the_base_too() -> None:
    model = flat(workers=None, slow_share=1.0, slow_factor=4.0, drift_factor=2.0, drift_over=10.0)
    (slot,) = schedule_many(model, [10.0])
    assert slot.multiplier == 8.0
    assert slot.processing - slot.start == 8.0  # base 1 s x 8
    assert slot.end - slot.start == 26.0 * 8


def test_the_latency_model_never_changes_job_ids() -> None:
    ids = {}
    for name in ("guide", "heavy-tail", "slow-path-20", "fifo-2"):
        core = core_with(LatencyModel.preset(name), seed=3)
        ids[name] = [submit(core, float(t)) for t in range(5)]
    assert len({tuple(v) for v in ids.values()}) == 1


def test_same_seed_same_schedule() -> None:
    def run(seed: int) -> list[tuple[float, float]]:
        core = core_with(LatencyModel.preset("heavy-tail"), seed=seed)
        for t in range(10):
            submit(core, float(t))
        return [(j["startedAt"], j["finishedAt"]) for j in core.jobs(0.0)]

    assert run(1) == run(1)
    assert run(1) != run(2)


# ---------------------------------------------------------------- progress while InProgress


@pytest.mark.parametrize(
    "name", ["guide", "fifo-2", "heavy-tail", "slow-path-20", "drift-3x", "fast-5x"]
)
def test_progress_grows_linearly_over_each_models_duration(name: str) -> None:
    core = core_with(LatencyModel.preset(name), seed=7)
    partner = core.world.partners[0]
    ids = [submit(core, 5.0 * i) for i in range(12)]
    for job in core.jobs(0.0):
        job_id = uuid.UUID(job["jobId"])
        assert job_id in ids
        start, begin, end = job["startedAt"], job["processingAt"], job["finishedAt"]
        assert start <= begin < end
        assert begin - start == pytest.approx(
            1.0 * job["multiplier"] * (0.2 if name == "fast-5x" else 1)
        )
        span = end - begin
        for fraction in (0.1, 0.25, 0.5, 0.9):
            t = begin + fraction * span
            view = core.job_status(partner, job_id, now=t)
            assert view is not None
            assert view.status is JobStatus.IN_PROGRESS
            done = view.rows_succeeded + view.rows_failed
            assert abs(done - ROWS * fraction) <= 1
        # one mid-job observation and the model's own linear pace predict the end exactly
        t = begin + 0.4 * span
        view = core.job_status(partner, job_id, now=t)
        assert view is not None
        done = view.rows_succeeded + view.rows_failed
        predicted = begin + (t - begin) * ROWS / done
        assert predicted == pytest.approx(end, abs=2 * span / done)  # one row of flooring
        terminal = core.job_status(partner, job_id, now=end)
        assert terminal is not None
        assert terminal.status is JobStatus.COMPLETED
        before = core.job_status(partner, job_id, now=math.nextafter(end, 0.0))
        assert before is not None
        assert before.status is JobStatus.IN_PROGRESS


def test_restart_frees_the_pool_and_reset_replays_the_same_schedule() -> None:
    core = core_with(attrs.evolve(LatencyModel.preset("fifo-2"), slow_share=0.5, slow_factor=2.0))
    for _ in range(3):
        submit(core, 0.0)
    queued = core.jobs(0.0)[2]
    assert queued["startedAt"] > 0.0  # behind the two workers
    core.restart(1.0)
    submit(core, 1.0)
    assert core.jobs(1.0)[0]["startedAt"] == 1.0  # the restarted server's workers are free
    core.reset()
    again = [submit(core, 0.0) for _ in range(3)]
    assert [uuid.UUID(j["jobId"]) for j in core.jobs(0.0)] == again
    assert core.jobs(0.0)[2]["startedAt"] == queued["startedAt"]
    assert core.jobs(0.0)[2]["finishedAt"] == queued["finishedAt"]


def test_tail_shape_defaults_per_distribution() -> None:
    assert LatencyModel(tail="pareto").shape == 2.5  # a valid alpha without --tail-shape
    assert LatencyModel(tail="lognormal").shape == 1.0
    assert LatencyModel(tail="pareto", tail_shape=4.0).shape == 4.0
    assert LatencyModel.from_dict({"tail": "pareto", "tailShape": None}).shape == 2.5
    pareto = LatencyModel(tail="pareto")
    assert pareto.tail_multiplier(0.0) == pytest.approx(0.6)  # x_m = (2.5 - 1) / 2.5
