"""The planner's replan memo (a job whose answers, start and context are unchanged keeps its
plan) changes no plan: whole virtual-time runs, with and without it, are identical.

Every server law (the emulator's presets and the laws it lacks), with exact answers and with
round trips and client-side lag, at two economies and with the scarcity moving mid-run.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import polling_sim as sim
from debitura_async._polling import PollPlanner, PollPolicy


class _Unmemoized(PollPlanner):
    """Plans every job on every replan (the context is never known: the memo never hits)."""

    def _context(self) -> tuple[object, ...] | None:
        return None


class _Scarcer(PollPlanner):
    """The scarcity rises with the jobs finished: the economy moves mid-run."""

    def observe(
        self, key: Hashable, *, status: int, processed: int, total: int, now: float
    ) -> bool:
        self.set_scarcity(min(1.0, self.stats().jobs_finished / 24))
        return super().observe(key, status=status, processed=processed, total=total, now=now)


class _ScarcerUnmemoized(_Scarcer, _Unmemoized):
    pass


MODELS = [*sim.SCENARIOS, *sim.OTHER_LAWS]
NOISES = {"exact": {}, "rtt": {"rtt": 0.05}, "lag": {"rtt": 0.05, "lag": 0.08}}


@pytest.mark.parametrize("noise", list(NOISES))
@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_the_memo_changes_no_plan(model: sim.ServerModel, noise: str) -> None:
    model = replace(model, **NOISES[noise])  # type: ignore[arg-type]
    requests = PollPolicy(prefer="requests")
    pairs: list[tuple[sim.Client, sim.Client]] = [
        (PollPlanner, _Unmemoized),
        (lambda: PollPlanner(requests), lambda: _Unmemoized(requests)),
        (_Scarcer, _ScarcerUnmemoized),
    ]
    for seed in (100, 101):
        for memoized, plain in pairs:
            assert sim.run(model, memoized, seed) == sim.run(model, plain, seed)


def test_the_memo_is_used() -> None:
    """A replan after an add keeps the other jobs' plans (else the memo saves nothing)."""
    planner = PollPlanner.calibrated(None, 30.0)
    for i in range(4):
        planner.add(i, 1000, float(i), sent=float(i) - 0.01)
    memos = {key: job.memo for key, job in planner._jobs.items()}
    planner.add(4, 1000, 4.0, sent=3.99)
    assert all(planner._jobs[key].memo is memo for key, memo in memos.items())


_STEP = st.tuples(
    st.sampled_from(["add", "answer", "answer", "answer", "retry", "remove", "scarcity"]),
    st.floats(0.0, 3.0),  # time passing before it
    st.integers(0, 1000),  # rows processed (an answer), or a job's rows (an add)
    st.sampled_from([0, 1, 1, 1, 2, 3]),  # status: Queued, InProgress, Completed(WithErrors)
    st.floats(0.0, 1.0),  # which job, or the scarcity
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_STEP, min_size=1, max_size=120),
    calibrated=st.booleans(),
    prefer=st.sampled_from(["latency", "balanced", "requests"]),
)
def test_any_sequence_of_events_plans_alike_with_and_without_the_memo(
    steps: list[tuple[str, float, int, int, float]],
    calibrated: bool,
    prefer: Literal["latency", "balanced", "requests"],
) -> None:
    policy = PollPolicy(prefer=prefer)
    if calibrated:
        planners = [PollPlanner.calibrated(policy, 30.0), _Unmemoized.calibrated(policy, 30.0)]
    else:
        planners = [PollPlanner(policy), _Unmemoized(policy)]
    now, added, processed_of = 0.0, 0, dict[int, int]()
    for op, wait, rows, status, pick in steps:
        now += wait
        keys: list[int] = sorted(planners[0]._jobs)  # type: ignore[arg-type]
        key = keys[int(pick * len(keys)) % len(keys)] if keys else None
        for planner in planners:
            if op == "add" or key is None:
                planner.add(added, max(rows, 1), now, sent=now - 2.0 * pick)  # may overlap
            elif op == "answer":
                done = max(processed_of.get(key, 0), rows) if status == 1 else 0
                done = 1000 if status >= 2 else done
                planner.observe(key, status=status, processed=done, total=1000, now=now)
            elif op == "retry":
                planner.retry_later(key, now, 1 + rows % 4)
            elif op == "remove":
                planner.remove(key, now)
            else:
                planner.set_scarcity(pick)
        if op == "answer" and key is not None and status == 1:
            processed_of[key] = max(processed_of.get(key, 0), rows)
        if op == "add" or key is None:
            added += 1
        memoized, plain = (sorted(p.items(), key=str) for p in planners)
        assert memoized == plain
        assert [j.kind for j in planners[0]._jobs.values()] == [
            j.kind for j in planners[1]._jobs.values()
        ]
