"""A virtual-time server for judging poll planners: pure, seeded, no sockets, no clock.

Each :class:`ServerModel` is a FIFO pool (our jobs are its only traffic): a job is *Queued*
until a worker is free, *InProgress* with ``processed = 0`` for its set-up time, then processes
its rows at an even pace until it ends (*Completed*). :data:`SCENARIOS` are the emulator's own
latency presets (``LatencyModel.preset``), placed by the emulator's own pure ``JobScheduler``:
the very laws benchmark P7 runs over sockets. :data:`OTHER_LAWS` are laws the emulator lacks
(a heavy tail on the processing only, a drift that starts late), drawn per job from a random
stream fixed by ``(seed, job index)``, so the planner is judged on more than one model.

Requests take a round trip (``ServerModel.rtt``, model seconds, +-50 % per request, seeded): a
poll is answered as of half-way and its answer known at the end; several are in flight at once,
so answers arrive out of order, and submissions in flight together reach the server in an order
the client does not know. The driver keeps ``in_flight`` jobs going: when a client *detects* a
job finished it submits the next one at that instant, so detection delay costs wall time.
Three clients:

* the **oracle** polls each job exactly at its end (one poll, no delay): the physical limit;
* the **naive** cadence, ``PollPolicy.fixed(3.0)`` (the guide's plan);
* the SDK's :class:`~debitura_async._polling.PollPlanner` with any policy.

``run(model, client, seed)`` returns a :class:`RunResult` (wall time, polls per job, detection
delays); ``compare(model, seeds)`` measures all three on the same seeds.
``python -m benchmarks.polling_sim [--prefer P] [--scarcity S] [--seeds N] [--rtt R] [--lag L]
[--other-laws | --emulator-seed E]`` prints the table; ``--emulator-seed 23`` replays P7's own
draw of jobs (the emulator's seed 23) in virtual time, with only the noise varying by seed.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from debitura_async._polling import PollPlanner, PollPolicy
from debitura_async._polling_model import date_answer
from debitura_async._polling_policy import PREFERENCES
from debitura_async.emulator.latency import JobScheduler, LatencyModel, emulator_streams

__all__ = [
    "SCENARIOS",
    "Comparison",
    "Drawn",
    "RunResult",
    "ServerModel",
    "compare",
    "main",
    "run",
    "sdk",
    "table",
]

QUEUED, IN_PROGRESS, COMPLETED = 0, 1, 2


@dataclass(frozen=True)
class Drawn:
    """One job's draw: seconds at ``processed = 0`` after its start, then seconds processing."""

    base: float
    processing: float


DrawFn = Callable[[random.Random, int, float], Drawn]
"""``draw(rng, rows, start_time)``: a job's durations (``start_time`` for drifting servers)."""


def _linear(base: float, per_row: float, jitter: float) -> DrawFn:
    def draw(rng: random.Random, rows: int, start: float) -> Drawn:
        return Drawn(base, per_row * rows + rng.uniform(0.0, jitter))

    return draw


def _heavy_tail(rng: random.Random, rows: int, start: float) -> Drawn:
    # lognormal around the guide-like 25 s, sigma 0.75: p90 ~ 2.6x the median, p99 ~ 5.7x
    return Drawn(1.0, 0.025 * rows * rng.lognormvariate(0.0, 0.75))


def _slow_path(rng: random.Random, rows: int, start: float) -> Drawn:
    factor = 4.0 if rng.random() < 0.2 else 1.0
    return Drawn(1.0 * factor, (0.025 * rows + rng.uniform(0.0, 2.0)) * factor)


def _drift(rng: random.Random, rows: int, start: float) -> Drawn:
    # 1x until 40 s, then slower and slower, 3x from 100 s on
    factor = 1.0 + 2.0 * min(1.0, max(0.0, (start - 40.0) / 60.0))
    return Drawn(1.0 * factor, (0.025 * rows + rng.uniform(0.0, 2.0)) * factor)


@dataclass(frozen=True)
class ServerModel:
    """A server law: either a ``draw`` per job on a pool of ``workers``, or an emulator
    :class:`~debitura_async.emulator.LatencyModel` (``latency``: the very model P7's emulator
    runs, through its own pure :class:`~debitura_async.emulator.latency.JobScheduler`)."""

    name: str
    workers: int | None
    draw: DrawFn | None = None
    jobs: int = 32
    rows: int = 1000
    in_flight: int = 8
    description: str = ""
    latency: LatencyModel | None = None
    rtt: float = 0.0
    """Round trip of one request, model seconds: a poll is answered as of ``sent + rtt / 2``
    and its answer known at ``sent + rtt``; a submitted job is accepted ``rtt / 2`` after it is
    sent and known to the client ``rtt`` after (each round trip varies uniformly in
    ``[0.5, 1.5] x rtt``, seeded)."""
    emulator_seed: int | None = None
    """Draw the jobs as the emulator started with this seed draws them (``latency`` models
    only; P7's draw is seed 23), the same in every run: the run's seed then varies only the round
    trips and the lag. Jobs are drawn in submission order, like the emulator's; a drift counts
    from the first submission, not from the emulator's start."""
    lag: float = 0.0
    """Client-side lag, model seconds (0: none, and answers are dated exactly). Otherwise each
    half of a round trip varies on its own, each answer is noticed an exponentially distributed
    lag (this mean) after it arrived (an event loop busy encoding the next batch), and the
    planner is told only what a client knows: answers dated by the tracker's own rule
    (:func:`~debitura_async._polling_model.date_answer`)."""


def preset(name: str, *, rtt: float = 0.0) -> ServerModel:
    """The emulator's latency preset ``name`` (P7's scenarios), as a virtual-time server."""
    model = LatencyModel.preset(name)
    return ServerModel(name, model.workers, latency=model, rtt=rtt, description=model.describe())


PRESETS = ("guide", "fifo-4", "fifo-2", "heavy-tail", "slow-path-20", "drift-3x", "fast-5x")
"""The emulator's latency presets P7 runs, in its order."""

SCENARIOS: tuple[ServerModel, ...] = tuple(preset(name) for name in PRESETS)
"""P7's scenarios: the emulator's own latency models (heavy tail, slow path, drift, few
workers, a server 5x faster than the guide)."""

OTHER_LAWS: tuple[ServerModel, ...] = (
    ServerModel(
        "guide-like", 8, _linear(1.0, 0.025, 2.0), description="8 workers, 1+0.025n+U(0,2)"
    ),
    ServerModel("fifo-4-workers", 4, _linear(1.0, 0.025, 2.0), description="queue behind 4"),
    ServerModel("fifo-2-workers", 2, _linear(1.0, 0.025, 2.0), description="queue behind 2"),
    ServerModel("lognormal-0.75", 8, _heavy_tail, description="lognormal sigma 0.75, fixed set-up"),
    ServerModel("slow-path-20pct", 8, _slow_path, description="20 % of jobs take 4x"),
    ServerModel("slows-down-3x", 8, _drift, description="3x slower from 40 s to 100 s"),
    ServerModel("5x-faster", 8, _linear(0.2, 0.005, 0.4), description="5x the guide's speed"),
)
"""Laws the emulator does not have (a fixed set-up time under a heavy tail, drift that starts
late): the planner must not assume the emulator's model either."""


@dataclass
class _ServerJob:
    accepted: float
    start: float
    base: float
    end: float
    rows: int

    def status(self, now: float) -> tuple[int, int]:
        if now >= self.end:
            return COMPLETED, self.rows
        if now < self.start:
            return QUEUED, 0
        begin = self.start + self.base
        if now < begin:
            return IN_PROGRESS, 0
        return IN_PROGRESS, min(self.rows - 1, int(self.rows * (now - begin) / (self.end - begin)))


@dataclass
class _Server:
    model: ServerModel
    seed: int
    free_at: list[float] = field(default_factory=list)
    last_start: float = 0.0
    jobs: list[_ServerJob] = field(default_factory=list)
    scheduler: JobScheduler | None = None
    jitter: random.Random | None = None

    def _streams(self, model: LatencyModel) -> tuple[JobScheduler, random.Random]:
        """The scheduler and the jitter stream: the run's seed's, or the emulator seed's."""
        if self.model.emulator_seed is None:
            latency, jitter = random.Random(f"{self.seed}:m"), random.Random(self.seed)
        else:
            jitter, latency = emulator_streams(self.model.emulator_seed)
        return JobScheduler(model, latency), jitter

    def submit(self, now: float) -> int:
        index = len(self.jobs)
        if self.model.latency is not None:
            scheduler, jitter = self.scheduler, self.jitter
            if scheduler is None or jitter is None:
                scheduler, jitter = self.scheduler, self.jitter = self._streams(self.model.latency)
            if self.model.emulator_seed is not None:
                jitter.getrandbits(128)  # the emulator draws the job's id first
            slot = scheduler.schedule(now=now, rows=self.model.rows, jitter_rng=jitter)
            base = slot.processing - slot.start
            self.jobs.append(_ServerJob(now, slot.start, base, slot.end, self.model.rows))
            return index
        if self.model.draw is None or self.model.workers is None:
            raise ValueError(f"{self.model.name}: a draw needs a pool of workers")
        if not self.free_at:
            self.free_at = [0.0] * self.model.workers
        worker = min(range(len(self.free_at)), key=self.free_at.__getitem__)
        start = max(now, self.free_at[worker], self.last_start)
        drawn = self.model.draw(random.Random(f"{self.seed}:{index}"), self.model.rows, start)
        end = start + drawn.base + drawn.processing
        self.free_at[worker] = end
        self.last_start = start
        self.jobs.append(_ServerJob(now, start, drawn.base, end, self.model.rows))
        return index


@dataclass(frozen=True)
class RunResult:
    wall: float
    polls_per_job: float
    mean_delay: float
    p90_delay: float
    delays: tuple[float, ...]


Client = Callable[[], PollPlanner] | None
"""A planner factory, or None for the oracle."""

_ACCEPTED, _ANSWER = 0, 1


@dataclass
class _Run:
    """One run's event loop: requests take a round trip, several can be in flight at once."""

    model: ServerModel
    planner: PollPlanner | None
    seed: int
    server: _Server = field(init=False)
    events: list[tuple[float, int, int, int, float, float]] = field(default_factory=list)
    shortest: float = math.inf  # the shortest poll round trip seen (the tracker's estimate)
    in_flight: set[int] = field(default_factory=set)
    oracle_due: dict[int, float] = field(default_factory=dict)
    now: float = 0.0
    polls: int = 0
    order: int = 0
    delays: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = _Server(self.model, self.seed)
        self._rtt = random.Random(f"{self.seed}:rtt")

    def _trip(self) -> float:
        rtt = self.model.rtt
        return rtt * self._rtt.uniform(0.5, 1.5) if rtt > 0 else 0.0

    def _push(self, at: float, kind: int, key: int, asked: float, sent: float = 0.0) -> None:
        self.order += 1
        heapq.heappush(self.events, (at, self.order, kind, key, asked, sent))

    def _trips(self) -> tuple[float, float]:
        """The server's moment and the client's notice of one request, after ``now``."""
        if self.model.lag <= 0:
            trip = self._trip()
            return trip / 2, trip
        up, down = self._trip() / 2, self._trip() / 2
        return up, up + down + self._rtt.expovariate(1.0 / self.model.lag)

    def submit(self) -> None:
        at_server, known = self._trips()
        index = self.server.submit(self.now + at_server)
        self._push(self.now + known, _ACCEPTED, index, self.now)

    def _next_poll(self) -> tuple[int, float] | None:
        if self.planner is None:
            free = [(k, d) for k, d in self.oracle_due.items() if k not in self.in_flight]
            return min(free, key=lambda item: item[1], default=None)
        nxt = self.planner.next_due(exclude=self.in_flight)
        return None if nxt is None else (nxt[0], nxt[1])  # type: ignore[return-value]

    def step(self) -> bool:
        """One event (a poll sent, or an answer received); False when nothing is left."""
        poll = self._next_poll()
        if poll is not None and (not self.events or max(self.now, poll[1]) <= self.events[0][0]):
            key, due = poll
            self.now = max(self.now, due)
            at_server, known = self._trips()
            self.in_flight.add(key)
            self.polls += 1
            self._push(self.now + known, _ANSWER, key, self.now + at_server, self.now)
            return True
        if not self.events:
            return False
        at, _, kind, key, asked, sent = heapq.heappop(self.events)
        self.now = at
        job = self.server.jobs[key]
        if kind == _ACCEPTED:
            if self.planner is None:
                self.oracle_due[key] = job.end
            else:
                self.planner.add(key, self.model.rows, at, sent=asked)
            return True
        self.in_flight.discard(key)
        status, processed = job.status(asked)
        if self.planner is None:
            terminal = status == COMPLETED
            if terminal:
                del self.oracle_due[key]
        elif self.model.lag <= 0:
            terminal = self.planner.observe(
                key, status=status, processed=processed, total=job.rows, now=asked
            )
        else:  # what a client knows: when it sent the poll, and when it noticed the answer
            self.shortest = min(self.shortest, at - sent)
            terminal = self.planner.observe(
                key,
                status=status,
                processed=processed,
                total=job.rows,
                now=date_answer(sent, at, self.shortest),
            )
        if terminal:
            self.delays.append(at - job.end)
            if len(self.server.jobs) < self.model.jobs:
                self.submit()
        return True


def run(model: ServerModel, client: Client, seed: int) -> RunResult:
    """Drive one client against one seeded server until every job is detected finished."""
    state = _Run(model, client() if client is not None else None, seed)
    for _ in range(min(model.in_flight, model.jobs)):
        state.submit()
    while state.step():
        pass
    delays = state.delays
    ordered = sorted(delays)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return RunResult(
        state.now, state.polls / model.jobs, statistics.fmean(delays), p90, tuple(delays)
    )


def sdk(policy: PollPolicy | None = None, *, scarcity: float = 0.0) -> Client:
    """The SDK's planner with ``policy`` (default: adaptive, latency first)."""
    return lambda: PollPlanner(policy, scarcity=scarcity)


NAIVE: Client = sdk(PollPolicy.fixed(3.0))


@dataclass(frozen=True)
class Comparison:
    """One client's figures over several seeds, each wall time divided by the oracle's."""

    ratios: tuple[float, ...]
    polls_per_job: tuple[float, ...]
    mean_delay: float
    p90_delay: float

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def worst_ratio(self) -> float:
        return max(self.ratios)

    @property
    def median_polls(self) -> float:
        return statistics.median(self.polls_per_job)

    @property
    def worst_polls(self) -> float:
        return max(self.polls_per_job)


def compare(
    model: ServerModel, seeds: Sequence[int], clients: dict[str, Client]
) -> dict[str, Comparison]:
    """Every client (and the oracle, under ``"oracle"``) on the same seeds."""
    oracle = [run(model, None, seed) for seed in seeds]
    out: dict[str, Comparison] = {}
    for name, client in {"oracle": None, **clients}.items():
        results = oracle if client is None else [run(model, client, seed) for seed in seeds]
        delays = sorted(d for r in results for d in r.delays)
        out[name] = Comparison(
            ratios=tuple(r.wall / o.wall for r, o in zip(results, oracle, strict=True)),
            polls_per_job=tuple(r.polls_per_job for r in results),
            mean_delay=statistics.fmean(delays),
            p90_delay=delays[min(len(delays) - 1, math.ceil(0.9 * len(delays)) - 1)],
        )
    return out


def table(
    seeds: Sequence[int] = range(10),
    policy: PollPolicy | None = None,
    *,
    scarcity: float = 0.0,
    rtt: float = 0.0,
    lag: float = 0.0,
    models: Sequence[ServerModel] = SCENARIOS,
) -> str:
    """The Markdown table of every scenario: the SDK's planner and the naive cadence."""
    lines = [
        "| scenario | client | wall/oracle median (worst) | polls/job median (worst) "
        "| mean delay s | p90 delay s |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        clients = {"sdk": sdk(policy, scarcity=scarcity), "naive 3 s": NAIVE}
        figures = compare(replace(model, rtt=rtt, lag=lag), seeds, clients)
        for name in ("sdk", "naive 3 s"):
            c = figures[name]
            lines.append(
                f"| {model.name} | {name} | {c.median_ratio:.3f} ({c.worst_ratio:.3f}) "
                f"| {c.median_polls:.2f} ({c.worst_polls:.2f}) "
                f"| {c.mean_delay:.2f} | {c.p90_delay:.2f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.polling_sim", description="Poll planners in virtual time."
    )
    parser.add_argument("--prefer", default="latency", help="latency, balanced, requests or 0..1")
    parser.add_argument("--scarcity", type=float, default=0.0, help="0..1")
    parser.add_argument("--seeds", type=int, default=30, help="how many seeds (default 30)")
    parser.add_argument("--first-seed", type=int, default=100, help="default 100 (held out)")
    parser.add_argument("--rtt", type=float, default=0.0, help="round trip, model s (default 0)")
    parser.add_argument(
        "--lag", type=float, default=0.0, help="mean client-side lag, model s (default 0)"
    )
    parser.add_argument(
        "--other-laws", action="store_true", help="the laws the emulator lacks, not its presets"
    )
    parser.add_argument(
        "--emulator-seed",
        type=int,
        default=None,
        help="every run draws the jobs the emulator draws with this seed (P7's is 23); the "
        "seeds then vary only round trips and lag (the emulator's presets only)",
    )
    args = parser.parse_args(argv)
    prefer: str | float = args.prefer
    if prefer not in PREFERENCES:
        prefer = float(args.prefer)
    policy = PollPolicy(prefer=prefer)  # type: ignore[arg-type]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    models = OTHER_LAWS if args.other_laws else SCENARIOS
    if args.lag < 0 or args.rtt < 0:
        parser.error("--rtt and --lag must be >= 0")
    if args.emulator_seed is not None:
        if args.other_laws:
            parser.error("--emulator-seed draws the emulator's presets, not --other-laws")
        if args.emulator_seed < 0:
            parser.error("--emulator-seed must be >= 0")
        models = tuple(replace(m, emulator_seed=args.emulator_seed) for m in models)
    print(table(seeds, policy, scarcity=args.scarcity, rtt=args.rtt, lag=args.lag, models=models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
