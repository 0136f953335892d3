"""The oracle hook (pure core): the finish time known at submission is when the job turns
terminal, under every latency model; and the CLI flags that select the models and windows."""

from __future__ import annotations

import argparse
import json
import math
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async.emulator import (
    DayWindow,
    EmulatorConfig,
    HeavyTail,
    LatencyModel,
    RateLimits,
    ScheduledJob,
)
from debitura_async.emulator.cli import add_arguments, build_config
from debitura_async.emulator.core import Accepted, EmulatorCore, JobFaults, JobStatus

UTCNOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TERMINAL = {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED}


def identity(model_time: float) -> float:
    return model_time


def make_core(latency: LatencyModel) -> EmulatorCore:
    return EmulatorCore(EmulatorConfig(latency=latency, seed=11, partners=1, cases_per_partner=2))


def submit(
    core: EmulatorCore, now: float, *, rows: int = 1000, key: str | None = None, **faults: object
) -> Accepted:
    partner = core.world.partners[0]
    row = {"type": 0, "caseId": str(partner.case_ids[0]), "description": "Called"}
    result = core.submit_job(
        partner,
        {"rows": [row] * rows},
        now=now,
        utcnow=UTCNOW,
        idempotency_key=key,
        job_faults=lambda: JobFaults(**faults),  # type: ignore[arg-type]
    )
    assert isinstance(result, Accepted)
    return result


@pytest.mark.parametrize(
    "name", ["guide", "fifo-4", "fifo-2", "heavy-tail", "slow-path-20", "drift-3x", "fast-5x"]
)
def test_the_finish_time_known_at_submission_is_when_the_job_turns_terminal(name: str) -> None:
    core = make_core(LatencyModel.preset(name))
    partner = core.world.partners[0]
    schedules: list[ScheduledJob] = []
    for i in range(24):  # 8 in flight, as the benchmark: submit, then learn the schedule at once
        job_id = submit(core, now=3.0 * i).job_id
        schedule = core.scheduled_job(job_id, to_monotonic=identity)
        assert schedule is not None
        schedules.append(schedule)
    for schedule in schedules:  # nothing submitted later moved an earlier job
        again = core.scheduled_job(schedule.job_id, to_monotonic=identity)
        assert again == schedule
    for s in schedules:

        def status(t: float, job_id: uuid.UUID = s.job_id) -> JobStatus:
            view = core.job_status(partner, job_id, now=t)
            assert view is not None
            return view.status

        assert s.created_at <= s.started_at <= s.processing_at < s.finished_at
        if s.started_at > s.created_at:
            assert status(math.nextafter(s.started_at, 0.0)) is JobStatus.QUEUED
        assert status(s.started_at) is JobStatus.IN_PROGRESS
        assert status(math.nextafter(s.finished_at, 0.0)) is JobStatus.IN_PROGRESS
        assert status(s.finished_at) in TERMINAL
        assert s.started_at_monotonic == s.started_at  # the identity clock
    if name == "fifo-2":  # two workers: at most two jobs between start and finish at any instant
        for s in schedules:
            busy = [o for o in schedules if o.started_at <= s.started_at < o.finished_at]
            assert len(busy) <= 2


def test_failed_vanishing_and_replayed_jobs() -> None:
    core = make_core(LatencyModel(workers=1, jitter=0.0))
    failing = core.scheduled_job(submit(core, 0.0, fail=True).job_id, to_monotonic=identity)
    assert failing is not None
    assert (failing.fails, failing.finished_at) == (True, 1.0)  # a failed job takes base only
    partner = core.world.partners[0]
    view = core.job_status(partner, failing.job_id, now=1.0)
    assert view is not None
    assert view.status is JobStatus.FAILED
    vanishing = submit(core, 0.0, vanish_after=5.0).job_id
    schedule = core.scheduled_job(vanishing, to_monotonic=lambda t: 100.0 + t / 2)
    assert schedule is not None
    assert schedule.vanishes_at == 5.0
    assert schedule.started_at == 1.0  # queued behind the failing job on the only worker
    assert schedule.finished_at_monotonic == 100.0 + schedule.finished_at / 2
    first = submit(core, 2.0, key="k")
    replay = submit(core, 3.0, key="k")
    assert replay.replayed
    assert core.scheduled_job(replay.job_id, to_monotonic=identity) == core.scheduled_job(
        first.job_id, to_monotonic=identity
    )
    assert core.scheduled_job(uuid.uuid4(), to_monotonic=identity) is None


def test_scheduled_job_round_trips_and_matches_the_jobs_listing() -> None:
    core = make_core(LatencyModel.preset("slow-path-20"))
    ids = [submit(core, float(i)).job_id for i in range(10)]
    listing = {uuid.UUID(j["jobId"]): j for j in core.jobs(0.0)}
    slow = 0
    for job_id in ids:
        schedule = core.scheduled_job(job_id, to_monotonic=identity)
        assert schedule is not None
        assert ScheduledJob.from_dict(schedule.to_dict()) == schedule
        record = listing[job_id]
        assert record["finishedAt"] == schedule.finished_at
        assert record["processingAt"] == schedule.processing_at
        assert record["slowPath"] == schedule.slow_path
        slow += schedule.slow_path
    assert 0 < slow < len(ids)  # seed 11: some of the ten took the slow path


# ---------------------------------------------------------------- CLI flags


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_a_preset_flag_then_individual_flags() -> None:
    config = build_config(parse("--latency-preset=fifo-2"))
    assert config.latency == LatencyModel.preset("fifo-2")
    config = build_config(parse("--latency-preset", "slow-path-20", "--workers=3", "--jitter=0"))
    assert config.latency == LatencyModel(workers=3, jitter=0.0, slow_share=0.2, slow_factor=4.0)
    config = build_config(
        parse(
            "--heavy-tail=pareto",
            "--tail-shape=2.5",
            "--tail-cap=12",
            "--slow-share=0.1",
            "--slow-factor=3",
            "--drift-factor=3",
            "--drift-over=120",
        )
    )
    assert config.latency == LatencyModel(
        tail=HeavyTail.PARETO,
        tail_shape=2.5,
        tail_cap=12.0,
        slow_share=0.1,
        slow_factor=3.0,
        drift_factor=3.0,
        drift_over=120.0,
    )
    assert build_config(parse("--tail-cap=off")).latency.tail_cap is None


def test_window_flags() -> None:
    config = build_config(parse("--day-window=first-request", "--clock-epoch=2026-12-01T09:00Z"))
    assert config.rate_limits == RateLimits(
        day_window=DayWindow.FIRST_REQUEST,
        clock_epoch=datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp(),
    )
    assert build_config(parse("--clock-epoch=1700000000")).rate_limits.clock_epoch == 1.7e9
    assert build_config(parse("--clock-epoch=now")).rate_limits.clock_epoch is None


def test_a_preset_in_the_config_file_and_flags_over_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"latency": {"preset": "drift-3x", "driftOver": 60}}))
    config = build_config(parse(f"--config={path}", "--workers=2"))
    assert config.latency == LatencyModel(workers=2, drift_factor=3.0, drift_over=60.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--latency-preset=fifo-3"], "unknown latency preset 'fifo-3'"),
        (["--heavy-tail=cauchy"], "invalid choice: 'cauchy'"),
        (["--slow-share=lots"], "not a number: 'lots'"),
        (["--drift-factor=inf"], "must be finite"),
        (["--day-window=monday"], "invalid choice: 'monday'"),
        (["--clock-epoch=yesterday"], "not an ISO 8601 date-time"),
    ],
)
def test_bad_flags_are_argparse_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--zero-latency", "--latency-preset=guide"], "exclude each other"),
        (["--slow-share=1.5"], "slow_share must be within [0, 1]"),
        (["--heavy-tail=pareto", "--tail-shape=0.5"], "alpha"),
        (["--tail-shape=-1"], "tail_shape must be a finite number > 0"),
        (["--drift-over=0"], "drift_over must be a finite number > 0"),
    ],
)
def test_bad_flag_combinations_are_value_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_config(parse(*argv))


@settings(max_examples=40, deadline=None)
@given(
    workers=st.one_of(st.none(), st.integers(1, 4)),
    tail=st.sampled_from(list(HeavyTail)),
    slow_share=st.floats(0.0, 1.0),
    drift=st.floats(0.2, 5.0),
    gaps=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=12),
    rows=st.integers(1, 1000),
)
def test_any_model_the_oracle_is_exact(
    *,
    workers: int | None,
    tail: HeavyTail,
    slow_share: float,
    drift: float,
    gaps: list[float],
    rows: int,
) -> None:
    model = LatencyModel(
        workers=workers, tail=tail, slow_share=slow_share, slow_factor=3.0, drift_factor=drift,
        drift_over=60.0, tail_cap=50.0,
    )  # fmt: skip
    core = make_core(model)
    partner = core.world.partners[0]
    now = 0.0
    schedules = []
    for gap in gaps:
        now += gap
        job = core.scheduled_job(submit(core, now, rows=rows).job_id, to_monotonic=identity)
        assert job is not None
        schedules.append(job)
    for s in schedules:
        before = core.job_status(partner, s.job_id, now=math.nextafter(s.finished_at, 0.0))
        at = core.job_status(partner, s.job_id, now=s.finished_at)
        assert before is not None
        assert at is not None
        assert before.status not in TERMINAL
        assert at.status in TERMINAL
        assert at.rows_succeeded + at.rows_failed == rows
