"""Fault plan, config values and CLI option mapping: pure, no event loop, no sockets."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from debitura_async.emulator.cli import add_arguments, build_config
from debitura_async.emulator.config import (
    EmulatorConfig,
    Fault,
    FaultKind,
    LatencyModel,
    Partner,
    RateLimits,
    World,
)
from debitura_async.emulator.faults import NO_FAULT, FaultPlan

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"

# ---------------------------------------------------------------- Fault values and syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "drop_after:count=2:endpoint=POST /ingestion-jobs",
            Fault(kind=FaultKind.DROP_AFTER, count=2, endpoint=POST),
        ),
        (
            "http_error:p=0.1:status=502",
            Fault(kind=FaultKind.HTTP_ERROR, probability=0.1, status=502),
        ),
        (
            "rate_limit:n=3:retry_after=2.5:endpoint=GET /me",
            Fault(kind=FaultKind.RATE_LIMIT, count=3, retry_after=2.5, endpoint="GET /me"),
        ),
        ("slow:probability=1:delay=4", Fault(kind=FaultKind.SLOW, probability=1.0, delay=4.0)),
        ("JOB_VANISH:count=1:after=10", Fault(kind=FaultKind.JOB_VANISH, count=1, after=10.0)),
        (
            "drop_before:count=1:endpoint=GET  /ingestion-jobs/{jobId}",
            Fault(kind=FaultKind.DROP_BEFORE, count=1, endpoint=GET),
        ),
    ],
)
def test_fault_syntax(text: str, expected: Fault) -> None:
    assert Fault.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode:count=1", "unknown fault kind"),
        ("slow:delay=1", "exactly one of probability= or count="),
        ("slow:count=1:p=0.5", "exactly one of probability= or count="),
        ("slow:p=1.5", "probability must be within"),
        ("slow:count=1:endpoint=GET /nope", "unknown endpoint"),
        ("job_failed:count=1:endpoint=GET /me", "only apply to"),
        ("http_error:count=1:status=418", "500/502/503/504"),
        ("slow:count=1:colour=red", "bad fault option"),
        ("slow:count=1:delay=-1", "delay must be a finite number >= 0"),
    ],
)
def test_bad_fault_syntax_is_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault.parse(text)


def test_fault_dict_round_trip() -> None:
    fault = Fault(kind=FaultKind.JOB_VANISH, probability=0.25, after=3.0)
    assert Fault.from_dict(fault.to_dict()) == fault
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_dict({"kind": "slow", "count": 1, "colour": "red"})


# ---------------------------------------------------------------- FaultPlan


def test_no_faults_is_the_shared_no_fault_decision() -> None:
    assert FaultPlan().decide(POST) is NO_FAULT


def test_count_faults_fire_for_the_next_n_matching_requests_only() -> None:
    plan = FaultPlan([Fault(kind=FaultKind.HTTP_ERROR, count=2, endpoint=POST, status=504)])
    decisions = [plan.decide(e) for e in (GET, POST, GET, POST, POST)]
    assert [d.action for d in decisions] == [
        None,
        FaultKind.HTTP_ERROR,
        None,
        FaultKind.HTTP_ERROR,
        None,
    ]
    assert decisions[1].status == 504


def test_probability_faults_are_reproducible_from_the_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan([Fault(kind=FaultKind.DROP_BEFORE, probability=0.5)], seed=seed)
        return [plan.decide(GET).action is FaultKind.DROP_BEFORE for _ in range(64)]

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)
    assert 10 < sum(pattern(3)) < 54


def test_one_terminal_fault_per_request_and_later_ones_are_not_consumed() -> None:
    plan = FaultPlan(
        [
            Fault(kind=FaultKind.HTTP_ERROR, count=1),
            Fault(kind=FaultKind.DROP_BEFORE, count=1),
            Fault(kind=FaultKind.SLOW, count=1, delay=2.0),
            Fault(kind=FaultKind.DROP_AFTER, count=1),
        ]
    )
    first = plan.decide(GET)
    assert first.action is FaultKind.HTTP_ERROR
    assert first.delay == 2.0
    assert first.drop_after
    assert first.fired == (FaultKind.HTTP_ERROR, FaultKind.SLOW, FaultKind.DROP_AFTER)
    second = plan.decide(GET)
    assert second.action is FaultKind.DROP_BEFORE
    assert plan.decide(GET) is NO_FAULT


def test_rate_limit_fault_carries_retry_after() -> None:
    plan = FaultPlan([Fault(kind=FaultKind.RATE_LIMIT, count=1, retry_after=7.0)])
    decision = plan.decide("GET /me")
    assert (decision.action, decision.retry_after) == (FaultKind.RATE_LIMIT, 7.0)


def test_job_faults_only_on_decide_job() -> None:
    plan = FaultPlan(
        [
            Fault(kind=FaultKind.JOB_FAILED, count=1),
            Fault(kind=FaultKind.JOB_VANISH, count=1, after=5.0),
        ]
    )
    assert plan.decide(POST) is NO_FAULT
    faults, fired = plan.decide_job()
    assert (faults.fail, faults.vanish_after) == (True, 5.0)
    assert fired == (FaultKind.JOB_FAILED, FaultKind.JOB_VANISH)
    faults, fired = plan.decide_job()
    assert (faults.fail, faults.vanish_after, fired) == (False, None, ())


def test_plan_describe_clear_and_reset() -> None:
    configured = [Fault(kind=FaultKind.SLOW, count=2, delay=1.0)]
    plan = FaultPlan(configured)
    plan.decide(GET)
    assert plan.describe()[0]["remaining"] == 1
    plan.add(Fault(kind=FaultKind.DROP_AFTER, probability=0.1))
    assert len(plan.describe()) == 2
    plan.clear()
    assert plan.describe() == []
    plan.reset(configured)
    assert plan.describe()[0]["remaining"] == 2


# ---------------------------------------------------------------- config values


def test_defaults_match_the_contract() -> None:
    config = EmulatorConfig()
    assert config.latency == LatencyModel(workers=8, base=1.0, per_row=0.025, jitter=2.0)
    assert config.rate_limits.windows() == ((2000, 60.0), (20_000, 3600.0), (100_000, 86_400.0))
    assert config.rate_limits.retry_after_header
    assert (config.idempotency_window, config.max_body_bytes) == (86_400.0, 30_000_000)
    assert (config.partners, config.cases_per_partner, config.store_notes) == (3, 200, True)
    assert RateLimits.off().windows() == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_scale": 0.0},
        {"time_scale": -1.0},
        {"max_body_bytes": 0},
        {"idempotency_window": -1.0},
    ],
)
def test_invalid_config_values_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        EmulatorConfig(**kwargs)


def test_generated_world_is_reproducible_and_disjoint() -> None:
    world = World.generate(partners=3, cases_per_partner=4, seed=5)
    assert world == World.generate(partners=3, cases_per_partner=4, seed=5)
    assert world != World.generate(partners=3, cases_per_partner=4, seed=6)
    cases = [c for p in world.partners for c in p.case_ids]
    assert len(set(cases)) == 12
    assert len({p.api_key for p in world.partners}) == 3


def test_world_validation() -> None:
    case = uuid.uuid4()
    a = Partner(id=uuid.uuid4(), name="A", api_key="k1", case_ids=(case,))
    b = Partner(id=uuid.uuid4(), name="B", api_key="k2", case_ids=(case,))
    with pytest.raises(ValueError, match="one partner only"):
        World(partners=(a, b))
    with pytest.raises(ValueError, match="unique"):
        World(partners=(a, Partner(id=uuid.uuid4(), name="C", api_key="k1")))
    with pytest.raises(ValueError, match="apiKey"):
        World.from_dict({"partners": [{"name": "no key"}]})


def test_config_dict_round_trip_including_world_and_faults() -> None:
    config = EmulatorConfig(
        seed=9,
        time_scale=50.0,
        latency=LatencyModel.zero(),
        rate_limits=RateLimits(per_minute=None, enabled=True, retry_after_header=False),
        idempotency_window=10.0,
        max_body_bytes=1234,
        world=World.generate(partners=2, cases_per_partner=2, seed=1),
        store_notes=False,
        faults=(Fault(kind=FaultKind.SLOW, count=1, delay=0.5),),
    )
    assert EmulatorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# ---------------------------------------------------------------- CLI options -> config


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_flags_gives_the_default_config() -> None:
    args = parse()
    assert (args.host, args.port, args.json, args.allow_non_loopback) == (
        "127.0.0.1",
        8080,
        False,
        False,
    )
    assert build_config(args) == EmulatorConfig()


def test_every_option_maps_to_the_config(tmp_path: Path) -> None:
    world = World.generate(partners=1, cases_per_partner=2, seed=3)
    world_file = tmp_path / "world.json"
    world_file.write_text(json.dumps(world.to_dict()))
    args = parse(
        "--seed=4",
        "--time-scale=100",
        "--workers=unbounded",
        "--base-latency=0.5",
        "--per-row-latency=0.01",
        "--jitter=0",
        "--rate-per-minute=10",
        "--rate-per-hour=off",
        "--rate-per-day=1000",
        "--no-retry-after-header",
        "--idempotency-window=60",
        "--max-body-bytes=5000",
        "--partners=2",
        "--cases-per-partner=7",
        f"--world={world_file}",
        "--no-store-notes",
        "--fault",
        "drop_after:count=2:endpoint=POST /ingestion-jobs",
        "--fault=http_error:p=0.5",
    )
    assert build_config(args) == EmulatorConfig(
        seed=4,
        time_scale=100.0,
        latency=LatencyModel(workers=None, base=0.5, per_row=0.01, jitter=0.0),
        rate_limits=RateLimits(
            per_minute=10, per_hour=None, per_day=1000, retry_after_header=False
        ),
        idempotency_window=60.0,
        max_body_bytes=5000,
        partners=2,
        cases_per_partner=7,
        world=world,
        store_notes=False,
        faults=(
            Fault(kind=FaultKind.DROP_AFTER, count=2, endpoint=POST),
            Fault(kind=FaultKind.HTTP_ERROR, probability=0.5),
        ),
    )


def test_zero_latency_and_no_rate_limits_flags() -> None:
    config = build_config(parse("--zero-latency", "--no-rate-limits"))
    assert config.latency == LatencyModel.zero()
    assert config.rate_limits.windows() == ()


def test_config_file_is_the_base_and_flags_override(tmp_path: Path) -> None:
    base = EmulatorConfig(seed=1, time_scale=10.0, store_notes=False)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base.to_dict()))
    config = build_config(parse(f"--config={path}", "--time-scale=20"))
    assert (config.seed, config.time_scale, config.store_notes) == (1, 20.0, False)


def test_bad_fault_flag_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--fault=explode:count=1")
    assert "unknown fault kind" in capsys.readouterr().err
