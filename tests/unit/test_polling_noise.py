"""The poll planner under timing noise, without an event loop: how answers and acceptances are
dated, and how the set-up model stays sharp when a few of its samples are wild.

Over sockets an answer is known only to lie between a poll's send and its notice, and a job's
start only between its submission's send and the 202's notice; at P7's time scale a few ms of
an event loop busy encoding are a tenth of a model second. Whole-run figures under such noise
are in test_polling_scenarios.py (its ``lag`` cases)."""

from __future__ import annotations

import math

import pytest

from debitura_async._polling import PollPlanner, PollPolicy
from debitura_async._polling_model import Samples, date_answer
from debitura_async._polling_setup import SetupModel, robust_bounds

QUEUED, IN_PROGRESS, COMPLETED = 0, 1, 2


def test_an_answer_is_dated_mid_trip_unless_the_trip_waited_on_this_side() -> None:
    assert date_answer(10.0, 10.1, 0.1) == pytest.approx(10.05)
    # ten times the shortest trip: it waited here (before it left or after it came back), so
    # the server looked about half a shortest trip before the notice
    assert date_answer(10.0, 11.0, 0.1) == pytest.approx(10.95)
    # a trip shorter than any seen before is its own shortest
    assert date_answer(10.0, 10.02, 0.1) == pytest.approx(10.01)
    assert date_answer(10.0, 9.9, 0.1) == 10.0  # clocks never run backwards here


def test_a_job_starts_mid_submission_not_when_its_202_is_noticed() -> None:
    planner = PollPlanner()
    planner.add("a", 1000, now=1.0, sent=0.9)  # a 0.1 s round trip
    planner.add("b", 1000, now=3.0, sent=2.0)  # it waited 0.9 s on this side first
    planner.add("c", 1000, now=5.0)  # no send time known: its notice
    starts = {key: planner._jobs[key].accepted for key in "abc"}
    assert starts == pytest.approx({"a": 0.95, "b": 2.95, "c": 5.0})


def test_a_shorter_submission_trip_dates_the_tracked_jobs_again() -> None:
    """The first submissions go out together and take long (tens of ms over sockets, their
    large bodies queued behind each other); a later, quick one shows how close to its notice a
    202 leaves the server, and the jobs still tracked are dated by it again."""
    planner = PollPlanner()
    planner.add("a", 1000, now=0.030, sent=0.0)  # the shortest trip so far: mid-trip
    assert planner._jobs["a"].accepted == pytest.approx(0.015)
    before = planner.due("a")
    planner.add("b", 1000, now=0.102, sent=0.100)  # a 2 ms trip
    assert planner._jobs["a"].accepted == pytest.approx(0.029)  # half a shortest trip before
    assert planner.due("a") == pytest.approx(before + 0.014)  # its first poll moves with it
    planner.add("c", 1000, now=0.250, sent=0.200)  # a longer trip changes nothing
    assert planner._jobs["a"].accepted == pytest.approx(0.029)
    assert planner._jobs["b"].accepted == pytest.approx(0.101)
    assert planner._jobs["c"].accepted == pytest.approx(0.249)


def test_dating_again_never_puts_a_start_after_an_answer_that_saw_the_job_running() -> None:
    planner = PollPlanner()
    planner.add("a", 1000, now=0.030, sent=0.0)
    planner.observe("a", status=IN_PROGRESS, processed=0, total=1000, now=0.020)
    planner.add("b", 1000, now=0.102, sent=0.100)
    assert planner._jobs["a"].accepted == pytest.approx(0.029)
    assert planner._jobs["a"].start <= 0.020  # it was seen InProgress then


def test_a_few_wild_samples_do_not_widen_the_set_up_bounds() -> None:
    tight = Samples(64)
    for value in [0.036] * 9 + [0.005]:  # one short job's share, against a start a trip off
        tight.add(value)
    low, mid, high = robust_bounds(tight)
    assert low == pytest.approx(0.036)
    assert mid == high == pytest.approx(0.036)
    wide = Samples(64)
    for i in range(11):  # a wide bulk keeps its width
        wide.add(i / 10)
    assert robust_bounds(wide) == pytest.approx((0.1, 0.5, 0.9))


def _measure(planner: PollPlanner, key: str, start: float, duration: float, late: float) -> None:
    """A job whose set-up is 4 % of its ``duration``, accepted ``late`` after it started,
    answered at a quarter and at half of its processing, then found done."""
    setup = 0.04 * duration
    pace = (duration - setup) / 1000
    planner.add(key, 1000, now=start + late)
    for rows in (250, 500):
        t = start + setup + rows * pace
        planner.observe(key, status=IN_PROGRESS, processed=rows, total=1000, now=t)
    planner.observe(key, status=COMPLETED, processed=1000, total=1000, now=start + duration)


def test_a_set_up_in_proportion_is_learned_through_a_late_start() -> None:
    """Every start is known 0.3 s late (the 202 was noticed late): the share is still found,
    and the window the starts are known to says by how much they are late."""
    planner = PollPlanner.calibrated(PollPolicy(), 30.0)
    start = 0.0
    for i, duration in enumerate([5.0, 80.0, 12.0, 40.0, 8.0, 120.0, 20.0, 60.0]):
        _measure(planner, f"j{i}", start, duration, late=0.3)
        start += duration + 1.0
    _, proportional = planner._offset_model()
    assert proportional
    fit = planner._setup.share_fit()
    assert fit is not None
    share, (_, typical, _) = fit
    assert share == pytest.approx(0.04, abs=0.004)
    assert typical == pytest.approx(-0.3, abs=0.05)  # the starts are 0.3 s late
    # so one answer early in a new long job predicts its end closely
    duration = 100.0
    planner.add("new", 1000, now=start + 0.3)
    t = start + 0.04 * duration + 100 * (0.96 * duration / 1000)
    planner.observe("new", status=IN_PROGRESS, processed=100, total=1000, now=t)
    ex = planner._extrapolate(planner._jobs["new"])
    assert ex is not None
    assert ex.end - start == pytest.approx(duration, rel=0.02)
    assert ex.earliest - start <= duration <= ex.latest - start


def test_a_job_seen_idle_is_in_its_set_up_while_nothing_ever_queued() -> None:
    planner = PollPlanner.calibrated(PollPolicy(), 30.0)
    planner.add("j", 1000, now=0.0)
    planner.observe("j", status=IN_PROGRESS, processed=0, total=1000, now=2.0)
    planner.observe("j", status=IN_PROGRESS, processed=100, total=1000, now=6.0)
    job = planner._jobs["j"]
    no_queue = planner._extrapolate(job)
    planner._queueing_seen = True  # had any job been seen queued, it may have started at 2 s
    maybe_queued = planner._extrapolate(job)
    assert no_queue is not None
    assert maybe_queued is not None
    assert no_queue.earliest > maybe_queued.earliest
    assert no_queue.spread < maybe_queued.spread


def test_a_job_seen_a_row_into_its_work_is_not_left_for_minutes() -> None:
    """Measured set-ups of 0.4 s, then a job at 1 row after 1.3 s: its set-up was longer than
    the model's bound, so the pace one row implies is ~30x too slow. Its probe still comes
    within three typical durations, not at the policy's max_interval."""
    policy = PollPolicy()
    planner = PollPlanner.calibrated(policy, 30.0)
    start = 0.0
    for i in range(5):
        key = f"m{i}"
        planner.add(key, 1000, now=start)
        for rows in (300, 600):
            t = start + 0.4 + rows * 0.0296
            planner.observe(key, status=IN_PROGRESS, processed=rows, total=1000, now=t)
        planner.observe(key, status=COMPLETED, processed=1000, total=1000, now=start + 30.0)
        start += 31.0
    planner.add("slow-start", 1000, now=start)
    planner.observe("slow-start", status=IN_PROGRESS, processed=1, total=1000, now=start + 1.3)
    typical = planner._duration(1000, 0.5)
    assert planner.due("slow-start") - (start + 1.3) <= 3.0 * typical
    assert planner.due("slow-start") - start < policy.max_interval


def test_the_set_up_model_ignores_impossible_samples() -> None:
    model = SetupModel(12)
    for seconds, duration in [(1.0, 30.0), (math.nan, 30.0), (1.0, math.inf), (1.0, 0.0)]:
        model.add(seconds, duration)
    model.add(1.1, 31.0)
    model.add(0.9, 29.0)
    assert len(model) == 3
    fit = model.share_fit()
    assert fit is not None
    assert all(math.isfinite(x) for x in (fit[0], *fit[1]))


@pytest.mark.parametrize(("prefer", "aim"), [("latency", 1.0), ("requests", 0.75)])
def test_an_end_poll_after_one_answer_aims_at_its_latest_end(prefer: str, aim: float) -> None:
    """Over sockets a start noticed a few ms late puts the true end near the latest end one
    answer allows (9 of 18 beyond it in a trace): the end poll aims there, not a quarter of the
    way (a requests-first policy, whose trusted windows are wider, three quarters of the way)."""
    planner = PollPlanner.calibrated(PollPolicy(prefer=prefer), 30.0)  # type: ignore[arg-type]
    start = 0.0
    lates = [0.3, 0.1, 0.5, 0.2, 0.4, 0.3, 0.15, 0.45]  # the 202s noticed 0.1-0.5 s late
    for i, duration in enumerate([5.0, 80.0, 12.0, 40.0, 8.0, 120.0, 20.0, 60.0]):
        _measure(planner, f"j{i}", start, duration, late=lates[i])
        start += duration + 1.0
    planner.add("new", 1000, now=start + 0.3)
    duration = 30.0
    t = start + 0.04 * duration + 300 * (0.96 * duration / 1000)
    planner.observe("new", status=IN_PROGRESS, processed=300, total=1000, now=t)
    job = planner._jobs["new"]
    ex = planner._extrapolate(job)
    assert ex is not None
    assert not ex.exact
    assert job.kind == "end"
    window = ex.latest - ex.end
    margin = 0.004 * duration  # the end poll's own small margin (more when requests are scarce)
    assert window > 2 * margin  # a window wider than the margin: the aim decides
    due = planner.due("new")
    target = ex.end + aim * window
    assert target <= due <= target + 10 * margin
    if prefer == "latency":
        assert due <= ex.latest + 2 * margin


def test_an_unmeasured_set_up_is_bounded_by_a_tenth_of_a_typical_job() -> None:
    """Before three set-ups are measured, the prior's 2 s bounds the set-up, and at most a tenth
    of a typical job: against a server faster than the guide (5 s jobs), a quarter let one answer
    30 % into a job look too unsure for an end poll, so the first jobs took a probe each."""
    planner = PollPlanner.calibrated(None, 5.0)
    assert planner._offset_model() == ((0.0, 0.25, 0.5), False)
    planner.add("j", 1000, 0.0, sent=-0.001)
    set_up, pace = 0.3, 4.7 / 1000
    planner.observe("j", status=IN_PROGRESS, processed=300, total=1000, now=set_up + 300 * pace)
    job = planner._jobs["j"]
    assert job.kind == "end"
    ex = planner._extrapolate(job)
    assert ex is not None
    assert ex.earliest <= set_up + 1000 * pace <= ex.latest  # the true end is in its window


@pytest.mark.parametrize(("processed", "magnified"), [(270, True), (900, False)])
def test_an_end_poll_after_an_early_answer_allows_for_the_start_s_dating(
    processed: int, magnified: bool
) -> None:
    """A job's start is the submission's answer, dated to within half its round trip; one answer
    a share x into the job moves its predicted end by (1/x - 1) times that error. Two planners
    see the same start and the same answer; one learned it from submissions taking 0.2 s, the
    other 2 ms: the first places the end poll 1.5 half trips per unit of magnification later
    (over sockets, without it, a tenth of such end polls came a hair early and cost a poll)."""
    dues = []
    for trip in (0.2, 0.002):
        planner = PollPlanner.calibrated(None, 27.0)
        planner.add("j", 1000, now=trip / 2, sent=-trip / 2)  # accepted at 0.0 either way
        t = 1.0 + processed * 0.026
        planner.observe("j", status=IN_PROGRESS, processed=processed, total=1000, now=t)
        job = planner._jobs["j"]
        assert job.start == pytest.approx(0.0)
        assert job.kind == "end"
        ex = planner._extrapolate(job)
        assert ex is not None
        dues.append((planner.due("j"), (ex.end - job.start) / (t - job.start)))
    (slow, magnification), (fast, _) = dues
    expected = 1.5 * 0.5 * (0.2 - 0.002) * (magnification - 1.0)
    assert slow - fast == pytest.approx(expected, rel=1e-6)
    if magnified:  # 27 % of the way: the end moves ~2.5x the start's error
        assert magnification > 3.0
        assert slow - fast > 0.3
    else:  # 90 % of the way: hardly at all
        assert slow - fast < 0.05
