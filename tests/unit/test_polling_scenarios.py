"""Issue 13's bar, per server scenario, in virtual time (``benchmarks.polling_sim``: no sockets).

The scenarios are the emulator's own latency presets (``LatencyModel.preset``, run through its
pure ``JobScheduler``: the very laws P7 runs over sockets), plus laws the emulator does not have
(``sim.OTHER_LAWS``: a fixed set-up time under a heavy tail, drift that starts late), so the
planner is not tuned to one model. 32 jobs of 1000 rows, 8 in flight (a new job is submitted the
moment one is *detected* finished), against a client that polls each job once at the instant it
ends (the oracle) and the guide's 3 s cadence, on the same seeds; once with instant answers, once
with round trips of 0.05 model s (+-50 %, seeded): answers then arrive out of order, and the
first 8 submissions reach the server in an order the client cannot know; once more with a
client-side lag too (0.08 model s on average, exponential: an event loop busy encoding the next
batch notices an answer late), where the planner is told only what a client knows (when it sent
each request and noticed the answer, dated by the tracker's rule): the noise P7 meets over
sockets, where a few ms of real time are a tenth of a model second.

The bound, stated honestly: over 10 seeds that were never used to tune the planner (100-109),
the **median** run takes <= 1.05x the oracle's wall time, spends <= 2.2 polls per job and is no
slower than the naive cadence's median by more than 1 %; **every** seed stays within 1.10x and
2.5 polls per job (3.0 with round trips, 4.0 with lag too). Two medians miss 2.2 polls per job
today and are marked ``xfail(strict=True)``, so the day one passes its mark must go: two workers
with round trips (about 2.3), with and without lag. The first 8 submissions are in flight
together, so which two the server starts first is unknowable but by polling: the queued answers
of the first wave are the price.
The planner's constants were tuned on seeds 0-19, not these.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks import polling_sim as sim
from debitura_async._polling import PollPolicy

SEEDS = range(100, 110)
ROUND_TRIP = 0.05
LAGGED = -1.0
"""The noisy client: round trips of 0.05 model s and a client-side lag of 0.08 on average
(answers dated as the tracker dates them, as over sockets at P7's time scale)."""
LAG = 0.08
MODELS = {m.name: m for m in (*sim.SCENARIOS, *sim.OTHER_LAWS)}
MISSES = {("fifo-2", ROUND_TRIP), ("fifo-2", LAGGED)}
"""(scenario, round trip) whose median polls per job still miss 2.2 (the issue stays open)."""
CONFIGS = (0.0, ROUND_TRIP, LAGGED)


def _model(name: str, rtt: float) -> sim.ServerModel:
    if rtt == LAGGED:
        return replace(MODELS[name], rtt=ROUND_TRIP, lag=LAG)
    return replace(MODELS[name], rtt=rtt)


def _label(rtt: float) -> str:
    return f"rtt{ROUND_TRIP:g}-lag{LAG:g}" if rtt == LAGGED else f"rtt{rtt:g}"


KEYS = [(name, rtt) for rtt in CONFIGS for name in MODELS if rtt == 0.0 or name in sim.PRESETS]
CASES = [
    pytest.param(
        name,
        rtt,
        id=f"{name}-{_label(rtt)}",
        marks=[pytest.mark.xfail(strict=True, reason="median polls/job > 2.2 (issue 13)")]
        if (name, rtt) in MISSES
        else [],
    )
    for name, rtt in KEYS
]


@pytest.fixture(scope="module")
def figures() -> dict[tuple[str, float], dict[str, sim.Comparison]]:
    clients = {"sdk": sim.sdk(), "naive": sim.NAIVE}
    return {(name, rtt): sim.compare(_model(name, rtt), SEEDS, clients) for name, rtt in KEYS}


@pytest.mark.parametrize(("name", "rtt"), [c.values[:2] for c in CASES], ids=[c.id for c in CASES])
def test_near_the_oracle_in_time_without_poll_storms(
    name: str, rtt: float, figures: dict[tuple[str, float], dict[str, sim.Comparison]]
) -> None:
    sdk, naive = figures[name, rtt]["sdk"], figures[name, rtt]["naive"]
    assert sdk.median_ratio <= 1.05, (name, sdk.ratios)
    assert sdk.median_ratio <= naive.median_ratio + 0.01, (name, sdk.ratios, naive.ratios)
    assert sdk.worst_ratio <= 1.10, (name, sdk.ratios)
    worst = {0.0: 2.5, ROUND_TRIP: 3.0, LAGGED: 4.0}[rtt]
    assert sdk.worst_polls <= worst, (name, sdk.polls_per_job)


@pytest.mark.parametrize(("name", "rtt"), CASES)
def test_about_two_polls_per_job(
    name: str, rtt: float, figures: dict[tuple[str, float], dict[str, sim.Comparison]]
) -> None:
    sdk = figures[name, rtt]["sdk"]
    assert sdk.median_polls <= 2.2, (name, sdk.polls_per_job)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_baselines_are_what_they_claim(
    name: str, figures: dict[tuple[str, float], dict[str, sim.Comparison]]
) -> None:
    oracle, naive = figures[name, 0.0]["oracle"], figures[name, 0.0]["naive"]
    assert oracle.ratios == (1.0,) * len(SEEDS)
    assert oracle.polls_per_job == (1.0,) * len(SEEDS)
    assert oracle.mean_delay == 0.0
    assert 0.0 < naive.mean_delay < 3.0  # a 3 s cadence finds each result within 3 s


def test_requests_preference_spends_fewer_polls_for_some_delay() -> None:
    model = sim.OTHER_LAWS[0]
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


def test_presets_are_the_emulators_own_schedule() -> None:
    """The virtual server places jobs exactly as the emulator's scheduler does."""
    import random

    from debitura_async.emulator.latency import JobScheduler, LatencyModel

    server = sim._Server(sim.preset("fifo-2"), seed=5)
    for _ in range(4):
        server.submit(0.0)
    twin = JobScheduler(LatencyModel.preset("fifo-2"), random.Random("5:m"))
    jitter = random.Random(5)
    slots = [twin.schedule(now=0.0, rows=1000, jitter_rng=jitter) for _ in range(4)]
    assert [(j.start, j.end) for j in server.jobs] == [(s.start, s.end) for s in slots]
    assert server.jobs[2].start == min(server.jobs[0].end, server.jobs[1].end)  # two workers


def test_an_emulator_seed_draws_the_same_jobs_in_every_run() -> None:
    """``emulator_seed``: the jobs are the emulator's for that seed (tested against the real
    emulator in tests/integration/emulator), whatever the run's seed; the run's seed then moves
    only the noise."""
    model = replace(sim.preset("heavy-tail"), emulator_seed=23)
    draws = []
    for seed in (1, 2):
        server = sim._Server(model, seed)
        for i in range(6):
            server.submit(float(i))
        draws.append([(j.base, j.end - j.start) for j in server.jobs])
    assert draws[0] == draws[1]
    unseeded = sim._Server(sim.preset("heavy-tail"), 1)
    for i in range(6):
        unseeded.submit(float(i))
    assert [(j.base, j.end - j.start) for j in unseeded.jobs] != draws[0]
    noisy = replace(model, rtt=0.1, lag=0.05)
    assert sim.run(noisy, sim.sdk(), 1).wall != sim.run(noisy, sim.sdk(), 2).wall


@pytest.mark.parametrize(
    "argv",
    [
        ["--emulator-seed", "-1"],
        ["--emulator-seed", "23", "--other-laws"],
        ["--emulator-seed", "x"],
    ],
)
def test_the_simulator_refuses_a_bad_emulator_seed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        sim.main(argv)
    assert exc.value.code == 2
    assert "--emulator-seed" in capsys.readouterr().err


def test_the_simulator_replays_p7_s_draw(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--emulator-seed", "23", "--seeds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 2 * len(sim.SCENARIOS)  # header, rule, sdk and naive per scenario


def test_round_trips_delay_answers_and_the_oracle_pays_them_too() -> None:
    model = replace(sim.preset("guide"), rtt=0.2)
    oracle = sim.run(model, None, 3)
    assert 0.1 <= oracle.mean_delay <= 0.3  # it polls at the end; the answer takes a trip
    assert oracle.polls_per_job == 1.0


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


# -- a service: 200 submissions at once behind 8 workers (P6's shape) -----------------------------

DEEP = replace(sim.preset("guide"), rows=100, jobs=200, in_flight=200)


@pytest.fixture(scope="module")
def deep_queue() -> dict[float, dict[str, sim.Comparison]]:
    return {
        rtt: sim.compare(replace(DEEP, rtt=rtt), range(100, 102), {"sdk": sim.sdk()})
        for rtt in (0.0, 0.25)
    }


@pytest.mark.parametrize("rtt", [0.0, 0.25])
def test_a_deep_queue_is_followed_closely(
    rtt: float, deep_queue: dict[float, dict[str, sim.Comparison]]
) -> None:
    """Every job seen within about a second and a half of its end on average (the guide's 3 s
    cadence: 1.5 s, at 20 polls a job), the run as long as the oracle's."""
    sdk = deep_queue[rtt]["sdk"]
    assert sdk.mean_delay <= 2.0, sdk
    assert sdk.median_ratio <= 1.05, sdk.ratios
    assert sdk.worst_ratio <= 1.10, sdk.ratios


@pytest.mark.parametrize(
    "rtt",
    [
        pytest.param(0.0, marks=pytest.mark.xfail(strict=True, reason="3.2 polls/job (issue 13)")),
        pytest.param(0.25, marks=pytest.mark.xfail(strict=True, reason="8.3 polls/job (issue 13)")),
    ],
)
def test_a_deep_queue_costs_about_two_polls_per_job(
    rtt: float, deep_queue: dict[float, dict[str, sim.Comparison]]
) -> None:
    """Known gap: 200 submissions in flight together reach the server in an order the client
    cannot know, and finding which of them run costs polls (about 8 a job with round trips);
    even in a known order the queue's pace is re-learned by polling (about 3.2)."""
    assert deep_queue[rtt]["sdk"].median_polls <= 2.2
