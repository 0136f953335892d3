"""Issue 13's bar, per server scenario, in virtual time (``benchmarks.polling_sim``: no sockets).

32 jobs of 1000 rows, 8 in flight (a new job is submitted the moment one is *detected* finished),
against a client that polls each job once at the instant it ends (the oracle) and the guide's
3 s cadence, on the same seeds.

The bound, stated honestly: over 10 seeds that were never used to tune the planner (100-109),
the **median** run takes <= 1.05x the oracle's wall time, spends <= 2.2 polls per job and is no
slower than the naive cadence's median by more than 1 %; **every** seed stays within 1.10x and
2.5 polls per job (a few seeds of the heavy-tailed and slow-path servers spend up to ~2.4:
the first jobs are measured before the model can trust one answer).
"""

from __future__ import annotations

import pytest

from benchmarks import polling_sim as sim
from debitura_async._polling import PollPolicy

SEEDS = range(100, 110)


@pytest.fixture(scope="module")
def figures() -> dict[str, dict[str, sim.Comparison]]:
    clients = {"sdk": sim.sdk(), "naive": sim.NAIVE}
    return {m.name: sim.compare(m, SEEDS, clients) for m in sim.SCENARIOS}


@pytest.mark.parametrize("name", [m.name for m in sim.SCENARIOS])
def test_near_the_oracle_in_time_and_polls(
    name: str, figures: dict[str, dict[str, sim.Comparison]]
) -> None:
    sdk, naive = figures[name]["sdk"], figures[name]["naive"]
    assert sdk.median_ratio <= 1.05, (name, sdk.ratios)
    assert sdk.median_polls <= 2.2, (name, sdk.polls_per_job)
    assert sdk.median_ratio <= naive.median_ratio + 0.01, (name, sdk.ratios, naive.ratios)
    assert sdk.worst_ratio <= 1.10, (name, sdk.ratios)
    assert sdk.worst_polls <= 2.5, (name, sdk.polls_per_job)


@pytest.mark.parametrize("name", [m.name for m in sim.SCENARIOS])
def test_the_baselines_are_what_they_claim(
    name: str, figures: dict[str, dict[str, sim.Comparison]]
) -> None:
    oracle, naive = figures[name]["oracle"], figures[name]["naive"]
    assert oracle.ratios == (1.0,) * len(SEEDS)
    assert oracle.polls_per_job == (1.0,) * len(SEEDS)
    assert oracle.mean_delay == 0.0
    assert 0.0 < naive.mean_delay < 3.0  # a 3 s cadence finds each result within 3 s


def test_requests_preference_spends_fewer_polls_for_some_delay() -> None:
    model = sim.SCENARIOS[0]
    clients = {"latency": sim.sdk(), "requests": sim.sdk(PollPolicy(prefer="requests"))}
    out = sim.compare(model, SEEDS, clients)
    assert out["requests"].median_polls <= out["latency"].median_polls - 0.25
    assert out["requests"].mean_delay > out["latency"].mean_delay
    assert out["requests"].median_ratio <= 1.10


# -- the simulated server itself -----------------------------------------------------------------


def test_server_job_is_queued_then_idle_then_linear() -> None:
    job = sim._ServerJob(accepted=0.0, start=10.0, base=1.0, end=31.0, rows=1000)
    assert job.status(5.0) == (sim.QUEUED, 0)
    assert job.status(10.5) == (sim.IN_PROGRESS, 0)
    assert job.status(21.0) == (sim.IN_PROGRESS, 500)
    assert job.status(31.0) == (sim.COMPLETED, 1000)


def test_server_is_a_fifo_pool() -> None:
    server = sim._Server(sim.ServerModel("two", 2, sim._linear(0.0, 0.01, 0.0)), seed=0)
    for _ in range(4):
        server.submit(0.0)
    assert [j.start for j in server.jobs] == [0.0, 0.0, 10.0, 10.0]
    assert [j.end for j in server.jobs] == [10.0, 10.0, 20.0, 20.0]


def test_runs_are_reproducible_per_seed() -> None:
    model = sim.SCENARIOS[3]
    assert sim.run(model, sim.sdk(), 7) == sim.run(model, sim.sdk(), 7)
    assert sim.run(model, None, 7) != sim.run(model, None, 8)


def test_table_renders_every_scenario() -> None:
    text = sim.table(seeds=range(2))
    for model in sim.SCENARIOS:
        assert f"| {model.name} | sdk |" in text
        assert f"| {model.name} | naive 3 s |" in text
