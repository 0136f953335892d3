"""The poll planner's options (:class:`PollPolicy`) and its counters (:class:`PollStats`)."""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

__all__ = ["PREFERENCES", "Mode", "PollPolicy", "PollStats"]

Mode = Literal["latency", "balanced", "requests", "fixed"]

PREFERENCES: dict[str, float] = {"latency": 0.0, "balanced": 0.5, "requests": 1.0}
"""The named preferences and their weights (0: spend polls to cut delay; 1: fewest polls)."""


def _positive_finite(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"PollPolicy.{attribute.name} must be a number, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"PollPolicy.{attribute.name} must be positive and finite, not {value!r}")


def _non_negative_finite(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"PollPolicy.{attribute.name} must be a number, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"PollPolicy.{attribute.name} must be >= 0 and finite, not {value!r}")


def _int_at_least(low: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"PollPolicy.{attribute.name} must be an int, not {value!r}")
        if value < low:
            raise ValueError(f"PollPolicy.{attribute.name} must be >= {low}, not {value!r}")

    return check


def _check_prefer(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    preference_weight(value)


def _check_strategy(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("adaptive", "fixed"):
        raise ValueError(f"PollPolicy.strategy must be 'adaptive' or 'fixed', not {value!r}")


def preference_weight(value: object) -> float:
    """The weight of a ``prefer`` value: a name of :data:`PREFERENCES` or a number in [0, 1]."""
    if isinstance(value, str):
        if value not in PREFERENCES:
            names = ", ".join(repr(n) for n in PREFERENCES)
            raise ValueError(f"PollPolicy.prefer must be one of {names} or a number in [0, 1]")
        return PREFERENCES[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"PollPolicy.prefer must be a name or a number, not {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"PollPolicy.prefer must lie in [0, 1], not {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How job status polls are spent. Times are seconds.

    >>> PollPolicy().prefer                       # adaptive; spends polls to cut delay
    'latency'
    >>> PollPolicy(prefer="requests").weight      # adaptive; fewest polls
    1.0
    >>> PollPolicy.fixed(3.0).strategy            # the guide's naive cadence
    'fixed'
    >>> round(PollPolicy().scaled(100).prior(1000), 3)   # a server 100x faster than real time
    0.3
    """

    strategy: Literal["adaptive", "fixed"] = attrs.field(
        default="adaptive", validator=_check_strategy
    )
    interval: float = attrs.field(default=3.0, validator=_positive_finite)
    """Fixed strategy: the cadence. Adaptive: the first wait after a failed poll (then doubled)."""
    prefer: Literal["latency", "balanced", "requests"] | float = attrs.field(
        default="latency", validator=_check_prefer
    )
    """Delay against requests: ``"latency"`` (0), ``"balanced"`` (0.5), ``"requests"`` (1) or
    any weight in between. The planner's scarcity input moves it further toward requests."""
    expected_base: float = attrs.field(default=2.0, validator=_non_negative_finite)
    """Prior only (unlearned after the first job): seconds a job takes regardless of its size."""
    expected_per_row: float = attrs.field(default=0.028, validator=_positive_finite)
    """Prior only: seconds per row (the guide's "1000 rows up to 30 s")."""
    reference_rows: int = attrs.field(default=1000, validator=_int_at_least(1))
    min_interval: float = attrs.field(default=0.05, validator=_positive_finite)
    """No job is polled twice within this many seconds."""
    max_interval: float = attrs.field(default=300.0, validator=_positive_finite)
    """No job goes unpolled for longer than this (whatever the model predicts)."""
    window: int = attrs.field(default=12, validator=_int_at_least(2))
    """How many recent jobs the duration model remembers (smaller follows drift faster)."""

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise ValueError("PollPolicy.min_interval must not exceed max_interval")

    @classmethod
    def fixed(cls, interval: float = 3.0) -> PollPolicy:
        """Poll every job every ``interval`` seconds (the guide's plan: 3 s)."""
        return cls(strategy="fixed", interval=interval)

    @property
    def weight(self) -> float:
        """The preference as a number: 0 spends polls freely, 1 spends as few as it can."""
        return preference_weight(self.prefer)

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy for a server ``factor`` times faster (e.g. a time-scaled emulator)."""
        _positive_finite(None, attrs.fields(PollPolicy).interval, factor)
        return attrs.evolve(
            self,
            interval=self.interval / factor,
            expected_base=self.expected_base / factor,
            expected_per_row=self.expected_per_row / factor,
            min_interval=self.min_interval / factor,
            max_interval=self.max_interval / factor,
        )

    def prior(self, rows: int) -> float:
        """The prior duration of a job of ``rows`` rows (only a start: it is unlearned)."""
        return self.expected_base + self.expected_per_row * rows


@attrs.frozen(kw_only=True)
class PollStats:
    """What the planner has done and believes (``PollPlanner.stats()``)."""

    mode: Mode
    """Where the preference and the scarcity put it: latency, balanced or requests (or fixed)."""
    economy: float
    """0..1: the effective weight on saving requests (preference moved by scarcity)."""
    scarcity: float
    jobs_added: int
    jobs_finished: int
    polls: int
    first_polls: int
    first_polls_found_done: int
    """First polls that found the job already finished (its end was missed by some delay)."""
    polls_found_queued: int
    probe_polls: int
    """Extra polls placed mid-job to measure a pace the model was unsure of."""
    end_polls_early: int
    """Polls placed at a predicted end that found the job still running."""
    learned_duration: float | None
    """Median duration of a reference-size job over the recent window (None until measured)."""
    parallelism: int | None
    """The server's apparent number of workers for our jobs (None: no queueing seen)."""

    @property
    def polls_per_finished_job(self) -> float:
        return self.polls / self.jobs_finished if self.jobs_finished else 0.0
