"""Debitura's documented rate-window shapes in the emulator (pure: explicit model ``now``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async.emulator import DayWindow, EmulatorConfig, RateLimits
from debitura_async.emulator.core import EmulatorCore
from debitura_async.emulator.ratelimit import RateLimiter, _index


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def only(**limits: Any) -> RateLimits:
    settings: dict[str, Any] = {"per_minute": None, "per_hour": None, "per_day": None}
    settings.update(limits)
    return RateLimits(**settings)


# ---------------------------------------------------------------- minute: 10-second segments


def test_a_request_counts_until_its_segment_leaves_the_minute() -> None:
    limiter = RateLimiter(only(per_minute=3), epoch=0.0)
    assert [limiter.admit("p", t) for t in (9.9, 9.95, 9.99)] == [None, None, None]
    assert limiter.admit("p", 10.0) == pytest.approx(50.0)  # segment [0, 10) leaves at 60
    assert limiter.admit("p", 59.999) == pytest.approx(0.001)
    assert limiter.admit("p", 60.0) is None  # 50.1 s after the first request, not 60


def test_segments_leave_one_at_a_time() -> None:
    limiter = RateLimiter(only(per_minute=2), epoch=0.0)
    assert limiter.admit("p", 5.0) is None  # segment 0
    assert limiter.admit("p", 15.0) is None  # segment 1
    assert limiter.admit("p", 20.0) == pytest.approx(40.0)  # segment 0 leaves at 60
    assert limiter.admit("p", 60.0) is None  # segment 0 gone: 1 + this one
    assert limiter.admit("p", 65.0) == pytest.approx(5.0)  # segment 1 leaves at 70
    assert limiter.admit("p", 70.0) is None


def test_segments_are_aligned_to_the_model_wall_clock() -> None:
    limiter = RateLimiter(only(per_minute=1), epoch=at("2026-12-01T09:00:07"))
    assert limiter.admit("p", 0.0) is None  # 09:00:07, segment 09:00:00-09:00:10
    assert limiter.admit("p", 1.0) == pytest.approx(52.0)  # until 09:01:00
    assert limiter.admit("p", 53.0) is None


# ---------------------------------------------------------------- hour: the clock hour


def test_the_hour_resets_at_the_start_of_each_clock_hour() -> None:
    limiter = RateLimiter(only(per_hour=2), epoch=at("2026-12-01T08:59:00"))
    assert limiter.admit("p", 0.0) is None
    assert limiter.admit("p", 1.0) is None
    assert limiter.admit("p", 30.0) == pytest.approx(30.0)  # until 09:00:00, a partial hour
    assert limiter.admit("p", 60.0) is None  # 09:00:00: a new window
    assert limiter.admit("p", 61.0) is None
    assert limiter.admit("p", 62.0) == pytest.approx(3600.0 - 2.0)  # until 10:00:00


# ---------------------------------------------------------------- day: both modes


def test_the_day_resets_at_midnight_utc() -> None:
    limits = only(per_day=1, day_window=DayWindow.UTC_MIDNIGHT)
    limiter = RateLimiter(limits, epoch=at("2026-12-01T23:59:50"))
    assert limiter.admit("p", 0.0) is None
    assert limiter.admit("p", 5.0) == pytest.approx(5.0)
    assert limiter.admit("p", 10.0) is None  # 2026-12-02T00:00:00
    assert limiter.admit("p", 11.0) == pytest.approx(86_399.0)


def test_the_day_can_be_aligned_to_the_partitions_first_request() -> None:
    limits = only(per_day=2, day_window="first-request")
    limiter = RateLimiter(limits, epoch=at("2026-12-01T23:59:50"))
    first = 100.0  # well past midnight: the window does not care
    assert limiter.admit("p", first) is None
    assert limiter.admit("p", first + 1.0) is None
    assert limiter.admit("p", first + 86_399.0) == pytest.approx(1.0)
    assert limiter.admit("other", first + 500.0) is None  # each partition has its own anchor
    assert limiter.admit("p", first + 86_400.0) is None  # the next window, back to back
    assert limiter.admit("p", first + 86_401.0) is None
    assert limiter.admit("p", first + 86_405.0) == pytest.approx(86_395.0)
    day = limiter.snapshot(first + 86_405.0)["partitions"]["p"]["day"]
    assert day["window_start"] == first + 86_400.0
    other = limiter.snapshot(first + 86_405.0)["partitions"]["other"]["day"]
    assert other["window_start"] == first + 500.0


# ---------------------------------------------------------------- all windows together


def test_a_refusal_waits_for_the_longest_refusing_window_and_counts_nothing() -> None:
    limits = only(per_minute=2, per_hour=3)
    limiter = RateLimiter(limits, epoch=0.0)
    assert [limiter.admit("p", t) for t in (0.0, 1.0)] == [None, None]
    assert limiter.admit("p", 2.0) == pytest.approx(58.0)  # minute only
    assert limiter.admit("p", 60.0) is None  # hour now full (3)
    assert limiter.admit("p", 61.0) == pytest.approx(3539.0)  # minute has room, hour not
    assert limiter.admit("p", 62.0) == pytest.approx(3538.0)
    windows = limiter.snapshot(62.0)["partitions"]["p"]
    assert windows["minute"] == {
        "limit": 2,
        "count": 1,
        "peak": 2,
        "rejected": 1,
        "window_start": 10.0,  # segments [10, 20) ... [60, 70)
    }
    assert windows["hour"] == {
        "limit": 3,
        "count": 3,
        "peak": 3,
        "rejected": 2,
        "window_start": 0.0,
    }


def test_switches_keep_working() -> None:
    assert RateLimiter(RateLimits.off()).admit("p", 0.0) is None
    limiter = RateLimiter(only(per_minute=1), epoch=0.0)
    assert limiter.admit("a", 0.0) is None
    assert limiter.admit("b", 0.0) is None  # per partition
    limiter.clear()
    assert limiter.admit("a", 1.0) is None
    assert RateLimiter(only()).snapshot(0.0)["partitions"] == {}


def test_clock_epoch_values() -> None:
    assert RateLimits(clock_epoch="2026-12-01T09:00:00Z").clock_epoch == at("2026-12-01T09:00:00")
    naive = RateLimits(clock_epoch=datetime(2026, 12, 1, 9)).clock_epoch  # naive = UTC
    assert naive == at("2026-12-01T09:00:00")
    assert RateLimits(clock_epoch=5).clock_epoch == 5.0
    limits = RateLimits(clock_epoch=1.5, day_window="first-request")
    assert RateLimits.from_dict(limits.to_dict()) == limits
    assert RateLimits.from_dict({}).clock_epoch is None
    with pytest.raises(ValueError, match="not an ISO 8601"):
        RateLimits(clock_epoch="yesterday")
    with pytest.raises(TypeError, match="clock_epoch must be"):
        RateLimits(clock_epoch=[1])
    with pytest.raises(ValueError, match="finite"):
        RateLimits(clock_epoch=math.inf)
    with pytest.raises(ValueError, match="is not a valid DayWindow"):
        RateLimits.from_dict({"dayWindow": "monday"})
    with pytest.raises(ValueError, match="per_minute must be an integer >= 1"):
        RateLimits(per_minute=0)


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(
        st.one_of(st.floats(0.0, 3.0), st.sampled_from([-1.0, 0.0, 10.0, 600.0, 3600.0])),
        min_size=1,
        max_size=120,
    ),
    epoch=st.one_of(st.floats(0.0, 86_400.0 * 3), st.floats(1.7e9, 1.8e9)),
    first_request=st.booleans(),
)
def test_no_window_is_ever_crossed_and_every_wait_is_exact(
    gaps: list[float], epoch: float, first_request: bool
) -> None:
    day = DayWindow.FIRST_REQUEST if first_request else DayWindow.UTC_MIDNIGHT
    limits = RateLimits(per_minute=4, per_hour=9, per_day=15, day_window=day)
    limiter = RateLimiter(limits, epoch=epoch)
    admitted: list[float] = []
    now = 0.0
    last_wait = 0.0
    for gap in gaps:
        now += last_wait if gap < 0 else gap  # -1: a client retrying exactly when told
        wait = limiter.admit("p", now)
        if wait is None:
            admitted.append(epoch + now)
            last_wait = 0.0
            continue
        last_wait = wait
        assert wait > 0
        probe = RateLimiter(limits, epoch=epoch)  # replay the admitted history, then probe
        for wall in admitted:
            assert probe.admit("p", wall - epoch) is None
        assert probe.admit("p", now + wait) is None  # admitted exactly when told
        early = RateLimiter(limits, epoch=epoch)
        for wall in admitted:
            early.admit("p", wall - epoch)
        assert early.admit("p", now + wait * 0.999 - 1e-6) is not None  # not a moment before
    # the limiter's own window index (floor, robust to rounding at the boundaries)
    for wall in admitted:  # minute: any six consecutive 10-s segments
        segment = _index(wall / 10.0)
        assert sum(1 for w in admitted if segment - 5 <= _index(w / 10.0) <= segment) <= 4
    for key in {_index(w / 3600.0) for w in admitted}:
        assert sum(1 for w in admitted if _index(w / 3600.0) == key) <= 9
    anchor = admitted[0] if first_request else 0.0
    for key in {_index((w - anchor) / 86_400.0) for w in admitted}:
        assert sum(1 for w in admitted if _index((w - anchor) / 86_400.0) == key) <= 15


# ---------------------------------------------------------------- in the core's stats


def test_the_core_counts_per_partner_id_never_per_key() -> None:
    limits = RateLimits(per_minute=2, per_hour=None, per_day=5, clock_epoch=0.0)
    core = EmulatorCore(EmulatorConfig(rate_limits=limits, partners=2, cases_per_partner=1))
    first, second = core.world.partners
    assert [core.admit(first.api_key, t) for t in (0.0, 1.0, 2.0)] == [None, None, 58.0]
    assert core.admit(second.api_key, 2.0) is None
    stats = core.stats(3.0)
    windows = stats["rate_windows"]
    assert windows["epoch"] == 0.0
    assert windows["wall_now"] == "1970-01-01T00:00:03Z"
    mine = windows["partitions"][str(first.id)]
    assert (mine["minute"]["peak"], mine["minute"]["rejected"]) == (2, 1)
    assert (mine["day"]["count"], mine["day"]["rejected"]) == (2, 0)
    assert windows["partitions"][str(second.id)]["minute"]["count"] == 1
    assert first.api_key not in repr(stats)
    assert second.api_key not in repr(stats)
    assert stats["rate_limited"] == 1
