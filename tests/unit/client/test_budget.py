"""The request budget: the pure windows (every documented shape), and the asyncio budget on a
virtual clock and sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async._budget import (
    DEFAULT_RATE_LIMITS,
    Budget,
    BudgetStatus,
    RateLimit,
    RequestBudget,
    Windows,
    window_rules,
    windows_scarcity,
)

# -- Windows ----------------------------------------------------------------------------------


def test_default_rate_limits_are_debituras() -> None:
    expected = (
        RateLimit(2_000, 60.0, segment=10.0),
        RateLimit(20_000, 3_600.0, fixed=True),
        RateLimit(100_000, 86_400.0),
    )
    assert expected == DEFAULT_RATE_LIMITS


@pytest.mark.parametrize(("requests", "per"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0)])
def test_rate_limit_refuses_non_positive_values(requests: int, per: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        RateLimit(requests, per)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"segment": -1.0}, "segment must be >= 0"),
        ({"segment": 60.0}, "segment must be < per"),
        ({"segment": float("nan")}, "segment must be >= 0"),
        ({"fixed": True, "segment": 1.0}, "no segments"),
        ({"offset": 5.0}, "fixed windows only"),
        ({"fixed": True, "offset": -1.0}, "offset must be >= 0"),
    ],
)
def test_rate_limit_refuses_bad_shapes(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(10, 60.0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("safety", [-0.1, 0.5, float("inf"), float("nan")])
def test_window_rules_refuse_bad_safety(safety: float) -> None:
    with pytest.raises(ValueError, match="safety"):
        window_rules(DEFAULT_RATE_LIMITS, safety=safety)
    with pytest.raises(ValueError, match="at least one"):
        window_rules([])


def test_first_requests_are_immediate_then_the_window_waits() -> None:
    windows = Windows([RateLimit(3, 10.0)], safety=0.0)
    assert [windows.reserve(0.0) for _ in range(7)] == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


def test_safety_lengthens_the_window() -> None:
    windows = Windows([RateLimit(2, 100.0)])  # default safety 2 %
    assert [windows.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 102.0]


def test_several_windows_at_once() -> None:
    windows = Windows([RateLimit(2, 1.0), RateLimit(3, 10.0)], safety=0.0)
    assert [windows.reserve(0.0) for _ in range(6)] == [0.0, 0.0, 1.0, 10.0, 10.0, 11.0]


def test_reservations_far_apart_do_not_wait() -> None:
    windows = Windows([RateLimit(2, 10.0)], safety=0.0)
    times = [0.0, 0.0, 10.0, 10.0, 25.0, 25.0, 40.5]
    assert [windows.reserve(t) for t in times] == times


def test_a_later_caller_never_jumps_the_queue() -> None:
    windows = Windows([RateLimit(1, 10.0)], safety=0.0)
    assert windows.reserve(0.0) == 0.0
    assert windows.reserve(1.0) == 10.0
    assert windows.reserve(2.0) == 20.0  # FIFO behind the 10.0 reservation
    assert windows.reserve(35.0) == 35.0


def test_pause_until_delays_and_never_shortens() -> None:
    windows = Windows([RateLimit(100, 1.0)], safety=0.0)
    assert windows.paused_until == float("-inf")
    windows.pause_until(50.0)
    windows.pause_until(40.0)
    assert windows.paused_until == 50.0
    assert windows.reserve(10.0) == 50.0
    assert windows.reserve(10.0) == 50.0
    assert windows.reserve(60.0) == 60.0


def test_in_window_counts_reservations() -> None:
    windows = Windows([RateLimit(2, 10.0), RateLimit(5, 100.0)], safety=0.0)
    windows.reserve(0.0)
    windows.reserve(0.0)
    windows.reserve(5.0)  # -> 10.0
    assert windows.in_window(5.0) == (3, 3)
    assert windows.in_window(9.99) == (3, 3)
    assert windows.in_window(10.0) == (1, 3)  # the window is (now - per, now]
    assert windows.in_window(20.0) == (0, 3)
    assert windows.in_window(110.0) == (0, 0)


_limits = st.lists(
    st.builds(RateLimit, st.integers(1, 5), st.floats(0.1, 10.0)), min_size=1, max_size=3
)


@settings(max_examples=150, deadline=None)
@given(
    limits=_limits,
    safety=st.sampled_from([0.0, 0.02, 0.1]),
    steps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=60),
    pause=st.none() | st.tuples(st.integers(0, 59), st.floats(0.0, 20.0)),
)
def test_no_window_ever_holds_more_than_its_limit(
    limits: list[RateLimit],
    safety: float,
    steps: list[float],
    pause: tuple[int, float] | None,
) -> None:
    windows = Windows(limits, safety=safety)
    now = 0.0
    reserved: list[float] = []
    for i, step in enumerate(steps):
        now += step
        if pause is not None and pause[0] == i:
            windows.pause_until(now + pause[1])
        at = windows.reserve(now)
        assert at >= now
        if pause is not None and pause[0] <= i:
            assert at >= windows.paused_until
        assert not reserved or at >= reserved[-1]  # FIFO: send times never go backwards
        reserved.append(at)

    smallest = min(limit.requests for limit in limits)
    if pause is None or pause[0] >= smallest:
        # Nothing waits before the smallest limit is used up.
        assert reserved[:smallest] == [
            sum(steps[: i + 1]) for i in range(min(smallest, len(steps)))
        ]
    for limit in limits:
        per = limit.per * (1.0 + safety)
        for start in reserved:
            inside = [t for t in reserved if start <= t < start + per - 1e-9]
            assert len(inside) <= limit.requests, (limit, start, inside)


# -- RequestBudget on a virtual clock ----------------------------------------------------------


class VirtualTime:
    """A clock that only moves when the test says so, and a sleep that waits for it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + delay, future))
        await future

    async def settle(self) -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self.now]
        for entry in due:
            self._sleepers.remove(entry)
            entry[1].set_result(None)
        await self.settle()


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.mark.anyio
async def test_acquire_waits_when_the_window_is_full(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(2, 10.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    await budget.acquire()
    await budget.acquire()
    assert vtime.sleeps == []

    third = asyncio.create_task(budget.acquire())
    await vtime.settle()
    assert vtime.sleeps == [10.0]
    assert not third.done()
    await vtime.advance(9.5)
    assert not third.done()
    await vtime.advance(0.5)
    assert third.done()
    await third
    assert budget.acquired == 3
    assert budget.waited == 10.0


@pytest.mark.anyio
async def test_concurrent_acquirers_are_spread_out_in_order(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(1, 1.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    done: list[int] = []

    async def caller(n: int) -> None:
        await budget.acquire()
        done.append(n)

    tasks = [asyncio.create_task(caller(n)) for n in range(4)]
    await vtime.settle()
    assert done == [0]
    assert vtime.sleeps == [1.0, 2.0, 3.0]
    for expected in ([0, 1], [0, 1, 2], [0, 1, 2, 3]):
        await vtime.advance(1.0)
        assert done == expected
    await asyncio.gather(*tasks)
    assert budget.waited == 6.0


@pytest.mark.anyio
async def test_pause_holds_back_later_acquirers(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(100, 60.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    await budget.acquire()
    await budget.pause(30.0)
    later = asyncio.create_task(budget.acquire())
    await vtime.settle()
    assert vtime.sleeps == [30.0]
    await vtime.advance(29.0)
    assert not later.done()
    await vtime.advance(1.0)
    assert later.done()
    await later
    assert budget.waited == 30.0


@pytest.mark.anyio
async def test_pause_holds_back_a_caller_already_waiting(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(1, 10.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    await budget.acquire()  # t=0 (relative)
    waiting = asyncio.create_task(budget.acquire())  # reserved t=10
    await vtime.settle()
    assert vtime.sleeps == [10.0]

    await vtime.advance(5.0)
    await budget.pause(20.0)  # a 429 at t=5: nothing before t=25
    await vtime.advance(5.0)  # t=10: its reservation is due, but the budget is paused
    assert not waiting.done()
    assert vtime.sleeps == [10.0, 15.0]
    await vtime.advance(14.5)
    assert not waiting.done()
    await vtime.advance(0.5)
    assert waiting.done()
    await waiting
    assert budget.waited == 25.0


@pytest.mark.anyio
async def test_negative_pause_does_not_wait(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(100, 60.0)], clock=vtime.clock, sleep=vtime.sleep)
    await budget.pause(-5.0)
    await budget.acquire()
    assert vtime.sleeps == []
    assert budget.waited == 0.0


def test_request_budget_repr() -> None:
    assert repr(RequestBudget()) == "RequestBudget(2000/60s, 20000/3600s, 100000/86400s)"
    assert repr(RequestBudget([RateLimit(5, 0.2)])) == "RequestBudget(5/0.2s)"


@pytest.mark.anyio
async def test_cancelled_waiter_gives_its_slot_back(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(1, 10.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    await budget.acquire()
    waiting = asyncio.create_task(budget.acquire())  # reserved t=10
    await vtime.settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.in_window() == (1,)  # only the sent one is counted
    assert budget.acquired == 1


@pytest.mark.anyio
async def test_status_for_progress_displays(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(1, 10.0)], safety=0.0, clock=vtime.clock, sleep=vtime.sleep)
    assert isinstance(budget, Budget)
    assert budget.status() == BudgetStatus(paused_for=0.0, next_slot_in=0.0, acquired=0, waited=0)
    await budget.acquire()
    await vtime.advance(4.0)
    assert budget.status().next_slot_in == 6.0
    await budget.pause(20.0)
    status = budget.status()
    assert (status.paused_for, status.next_slot_in, status.acquired) == (20.0, 20.0, 1)


@pytest.mark.anyio
async def test_real_clock_budget_spaces_the_sixth_request() -> None:
    budget = RequestBudget([RateLimit(5, 0.2)], safety=0.0)
    started = time.monotonic()
    for _ in range(5):
        await budget.acquire()
    assert budget.waited == 0.0
    await budget.acquire()
    assert time.monotonic() - started >= 0.19
    assert budget.waited > 0.0
    assert budget.acquired == 6


# -- the documented window shapes --------------------------------------------------------------


def test_segmented_minute_keeps_a_window_one_segment_longer() -> None:
    # 3 per 60 s counted in 10-s segments: any 70 s hold at most 3, whichever way the server
    # lays out and counts its segments.
    windows = Windows([RateLimit(3, 60.0, segment=10.0)], safety=0.0)
    assert [windows.reserve(0.0) for _ in range(7)] == [0.0, 0.0, 0.0, 70.0, 70.0, 70.0, 140.0]


def test_fixed_hour_resets_at_the_clock_hour() -> None:
    hour = RateLimit(3, 3600.0, fixed=True)
    windows = Windows([hour], safety=0.0)
    t = 10 * 3600.0 + 3500.0  # 10:58:20
    assert [windows.reserve(t) for _ in range(3)] == [t, t, t]
    assert windows.reserve(t) == 11 * 3600.0  # the next clock hour, not an hour later
    assert windows.reserve(t) == 11 * 3600.0


def test_fixed_window_margin_counts_boundary_requests_in_both_hours() -> None:
    windows = Windows([RateLimit(2, 100.0, fixed=True)], safety=0.05)  # margin 5 s
    assert windows.reserve(97.0) == 97.0  # within 5 s of 100: counts in [0,100) and [100,200)
    assert windows.reserve(97.0) == 97.0
    # [0,100) is full, so is [100,200) (two boundary requests): wait for 200 + margin.
    assert windows.reserve(98.0) == 205.0


def test_fixed_window_offset_moves_the_boundaries() -> None:
    windows = Windows([RateLimit(1, 100.0, fixed=True, offset=30.0)], safety=0.0)
    assert windows.reserve(40.0) == 40.0
    assert windows.reserve(40.0) == 130.0


def test_all_documented_windows_at_once() -> None:
    windows = Windows([lim.scaled(3600.0) for lim in DEFAULT_RATE_LIMITS], safety=0.0)
    # Scaled: 2,000 per 1/60 s (segments 1/360 s), 20,000 per clock "hour" of 1 s, 100,000/24 s.
    start = 1_000_000.0  # the start of a scaled hour
    sends = [windows.reserve(start) for _ in range(20_001)]
    assert sends[1999] == start
    assert sends[2000] == pytest.approx(start + 1 / 60 + 1 / 360)
    assert sends[19_999] < start + 1.0
    assert sends[20_000] == pytest.approx(start + 1.0)  # the hour is spent: the next one


_shapes = st.one_of(
    st.builds(RateLimit, st.integers(1, 5), st.floats(0.1, 10.0)),
    st.builds(
        lambda n, per, seg: RateLimit(n, per, segment=per * seg),
        st.integers(1, 5),
        st.floats(0.1, 10.0),
        st.floats(0.01, 0.5),
    ),
    st.builds(
        lambda n, per, off: RateLimit(n, per, fixed=True, offset=per * off),
        st.integers(1, 5),
        st.floats(0.1, 10.0),
        st.floats(0.0, 0.99),
    ),
)


def _server_sees_over(limit: RateLimit, safety: float, sends: list[float]) -> str | None:
    """A violation any server counting ``limit`` (as documented) could see, or None."""
    if limit.fixed:
        for t in sends:
            # Any clock less than the margin off ours: count its window around ``t``.
            margin = limit.per * safety * 0.999
            for skew in (-margin, 0.0, margin):
                k = (t + skew - limit.offset) // limit.per
                start = limit.offset + k * limit.per
                inside = [s for s in sends if start <= s + skew < start + limit.per]
                if len(inside) > limit.requests:
                    return f"fixed window at {start}: {inside}"
        return None
    per = limit.per * (1.0 + safety) + limit.segment
    for start in sends:
        inside = [s for s in sends if start <= s < start + per - 1e-9]
        if len(inside) > limit.requests:
            return f"sliding window from {start}: {inside}"
    return None


@settings(max_examples=200, deadline=None)
@given(
    limits=st.lists(_shapes, min_size=1, max_size=3),
    safety=st.sampled_from([0.0, 0.02, 0.1]),
    steps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=50),
    released=st.sets(st.integers(0, 49), max_size=5),
)
def test_no_shape_is_ever_crossed(
    limits: list[RateLimit], safety: float, steps: list[float], released: set[int]
) -> None:
    windows = Windows(limits, safety=safety)
    now = 0.0
    sends: list[float] = []
    for i, step in enumerate(steps):
        now += step
        at = windows.reserve(now)
        assert at >= now
        assert not sends or at >= sends[-1] or i - 1 in released
        if i in released:
            windows.release(at)  # a cancelled caller: the slot may be taken again
        else:
            sends.append(at)
    sends.sort()
    for limit in limits:
        assert _server_sees_over(limit, safety, sends) is None, limit


@pytest.mark.anyio
async def test_odd_pauses_are_clamped(vtime: VirtualTime) -> None:
    budget = RequestBudget([RateLimit(100, 60.0)], clock=vtime.clock, sleep=vtime.sleep)
    await budget.pause(float("nan"))
    assert budget.status().paused_for == 0.0
    await budget.pause(float("inf"))
    assert budget.status().paused_for == 86_400.0


def test_steady_wall_clock_is_epoch_time_that_never_goes_back() -> None:
    from debitura_async._budget import steady_wall_clock

    clock = steady_wall_clock()
    first = clock()
    assert abs(first - time.time()) < 1.0
    assert clock() >= first


# -- scarcity: the one rule of both budgets ----------------------------------------------------


@given(
    limits=st.lists(st.integers(1, 1000), min_size=1, max_size=4),
    data=st.data(),
)
def test_windows_scarcity_is_the_fullest_windows_share(limits: list[int], data: Any) -> None:
    rules = window_rules([RateLimit(n, 60.0) for n in limits])
    counts = [data.draw(st.integers(0, 2 * n)) for n in limits]
    value = windows_scarcity(counts, rules, paused=False)
    assert 0.0 <= value <= 1.0
    assert value == min(1.0, max(c / n for c, n in zip(counts, limits, strict=True)))
    assert windows_scarcity(counts, rules, paused=True) == 1.0


def test_windows_scarcity_wants_one_count_per_rule() -> None:
    rules = window_rules([RateLimit(5, 1.0)])
    with pytest.raises(ValueError, match="2 counts for 1 rules"):
        windows_scarcity((1, 2), rules, paused=False)


@pytest.mark.anyio
async def test_request_budget_scarcity_follows_its_windows_and_pauses(
    vtime: VirtualTime,
) -> None:
    budget = RequestBudget(
        [RateLimit(4, 10.0), RateLimit(100, 3600.0, fixed=True)],
        safety=0.0,
        clock=vtime.clock,
        sleep=vtime.sleep,
    )
    assert budget.scarcity() == 0.0
    await budget.acquire()
    assert budget.scarcity() == 0.25
    await budget.pause(5.0)
    assert budget.scarcity() == 1.0
    vtime.now += 11.0
    assert budget.scarcity() == 0.01  # the minute window emptied; the hour still holds one
