"""The job tracker's argument checks (pure): each bad value is a ValueError naming it, raised
before anything is tracked."""

from __future__ import annotations

import math
from types import EllipsisType

__all__ = ["check_count", "check_track"]


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def check_count(name: str, value: object) -> int:
    """``value`` if it is an int >= 1, else a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_age(value: object) -> float | None:
    """A job age limit: a positive number of seconds (inf: none), or None (no limit)."""
    if value is None:
        return None
    if not (_number(value) and value > 0):  # type: ignore[operator]  # (NaN is not > 0)
        raise ValueError(f"max_age must be a positive number or None, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_track(
    *,
    poll_interval: object,
    max_poll_failures: object,
    rows: object,
    submitted_at: object,
    max_age: object,
) -> float | EllipsisType | None:
    """The arguments of :meth:`~debitura_async.tracker.JobTracker.track` (``max_age``: ``...``
    for the tracker's default); returns ``max_age`` as :func:`check_age` gives it (or ``...``)."""
    if poll_interval is not None and not (
        _number(poll_interval) and 0 < poll_interval < math.inf  # type: ignore[operator]
    ):
        raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
    if max_poll_failures is not None:
        check_count("max_poll_failures", max_poll_failures)
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise ValueError(f"rows must be an int >= 0 or None, got {rows!r}")
    if submitted_at is not None and not (
        _number(submitted_at) and math.isfinite(submitted_at)  # type: ignore[arg-type]
    ):
        raise ValueError(f"submitted_at must be an event loop time, got {submitted_at!r}")
    return ... if max_age is ... else check_age(max_age)
