"""The emulator's latency models: how long an ingestion job takes, and when it starts.

Pure and seeded: :class:`LatencyModel` is a frozen value, :class:`JobScheduler` a small state
machine that takes ``now`` (model seconds) and draws from :class:`random.Random` instances it is
given. No clock, no event loop.

A job of ``n`` rows submitted at model time ``t`` (jobs over all partners, in submission order):

1. **Start** (FIFO pool): ``start = max(t, the earliest moment one of workers is free)``;
   ``workers=None`` means every job starts at ``t``. A later job never delays an earlier one.
2. **Raw duration**: ``base + per_row * n + uniform(0, jitter)`` (only ``base`` for a job that a
   ``job_failed`` fault will fail).
3. **Multiplier** ``m = tail * slow * drift``, each 1 when switched off:

   - ``tail``: a heavy-tailed factor with mean 1 (``lognormal``: sigma = ``tail_shape``, default
     1.0; ``pareto``: alpha = ``tail_shape`` > 1, default 2.5), clipped to ``tail_cap`` if set;
   - ``slow``: ``slow_factor`` for a share ``slow_share`` of jobs (the slow path), else 1;
   - ``drift``: ``1 + (drift_factor - 1) * min(1, start / drift_over)``: the server slows down
     (or speeds up) linearly with the model time at which the job *starts*, counted from the
     emulator's start, and stays at ``drift_factor`` after ``drift_over`` model seconds.

4. **Shape**: the job is ``InProgress`` with no rows done during ``[start, start + base * m)``,
   then rows are processed at an even pace until ``end = start + raw * m``; so
   ``rowsSucceeded + rowsFailed`` grows linearly over ``[start + base * m, end]`` and one mid-job
   observation predicts the job's end, whatever the model.

Everything about a job (start, end, multiplier) is decided when it is submitted: the finish time
is known from then on (see :mod:`.oracle`).

>>> LatencyModel.preset("slow-path-20").slow_share, LatencyModel.preset("slow-path-20").slow_factor
(0.2, 4.0)
>>> sorted(LATENCY_PRESETS)[:3]
['drift-3x', 'fast-5x', 'fifo-2']
"""

from __future__ import annotations

import enum
import heapq
import math
import random
import statistics
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "LATENCY_PRESETS",
    "HeavyTail",
    "JobScheduler",
    "LatencyModel",
    "Slot",
    "emulator_streams",
]


class HeavyTail(enum.StrEnum):
    """The heavy-tailed duration multiplier's distribution (mean 1 before ``tail_cap``)."""

    NONE = "none"
    LOGNORMAL = "lognormal"
    PARETO = "pareto"


def _tail(value: object) -> HeavyTail:
    if isinstance(value, HeavyTail):
        return value
    if not isinstance(value, str):
        raise TypeError(f"tail must be one of {[t.value for t in HeavyTail]}, got {value!r}")
    return HeavyTail(value.strip().lower())


def _finite_at_least(low: float, *, strict: bool = False) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
        bad = value <= low if strict else value < low
        if not math.isfinite(value) or bad:
            sign = ">" if strict else ">="
            raise ValueError(
                f"{attribute.name} must be a finite number {sign} {low:g}, got {value!r}"
            )

    return check


def _workers_ok(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise ValueError(f"{attribute.name} must be an integer >= 1 or None, got {value!r}")


def _share_ok(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _cap_ok(_inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 1.0):
        raise ValueError(f"{attribute.name} must be a finite number >= 1 or None, got {value!r}")


def _tail_shape_ok(
    inst: LatencyModel, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is None:
        return
    _finite_at_least(0.0, strict=True)(inst, attribute, value)
    if inst.tail is HeavyTail.PARETO and value <= 1.0:
        raise ValueError(
            f"a pareto tail needs tail_shape (alpha) > 1 for a finite mean, got {value!r}"
        )


_STANDARD_NORMAL: Final = statistics.NormalDist()
_FIELDS: Final = {
    "workers": "workers",
    "base": "base",
    "perRow": "per_row",
    "jitter": "jitter",
    "tail": "tail",
    "tailShape": "tail_shape",
    "tailCap": "tail_cap",
    "slowShare": "slow_share",
    "slowFactor": "slow_factor",
    "driftFactor": "drift_factor",
    "driftOver": "drift_over",
}


@attrs.frozen(kw_only=True)
class LatencyModel:
    """How long an ingestion job takes, in model seconds (see the module docstring).

    The defaults are the ``guide`` preset: 8 workers, ``1 + 0.025 * rows + U(0, 2)`` seconds, so
    1000 rows take 26-28 s ("up to 30 s" in Debitura's guide).

    >>> m = LatencyModel()
    >>> m.workers, m.base, m.per_row, m.jitter, m.tail.value, m.slow_share, m.drift_factor
    (8, 1.0, 0.025, 2.0, 'none', 0.0, 1.0)
    """

    workers: int | None = attrs.field(default=8, validator=_workers_ok)
    base: float = attrs.field(default=1.0, validator=_finite_at_least(0.0))
    per_row: float = attrs.field(default=0.025, validator=_finite_at_least(0.0))
    jitter: float = attrs.field(default=2.0, validator=_finite_at_least(0.0))
    tail: HeavyTail = attrs.field(default=HeavyTail.NONE, converter=_tail)
    tail_shape: float | None = attrs.field(default=None, validator=_tail_shape_ok)
    tail_cap: float | None = attrs.field(default=None, validator=_cap_ok)
    slow_share: float = attrs.field(default=0.0, validator=_share_ok)
    slow_factor: float = attrs.field(default=1.0, validator=_finite_at_least(0.0, strict=True))
    drift_factor: float = attrs.field(default=1.0, validator=_finite_at_least(0.0, strict=True))
    drift_over: float = attrs.field(default=300.0, validator=_finite_at_least(0.0, strict=True))

    @classmethod
    def zero(cls) -> LatencyModel:
        """Jobs become terminal the moment they are created (throughput benchmarks)."""
        return cls(workers=None, base=0.0, per_row=0.0, jitter=0.0)

    @classmethod
    def preset(cls, name: str) -> LatencyModel:
        """One of :data:`LATENCY_PRESETS` by name (else ``ValueError`` naming the known ones)."""
        model = LATENCY_PRESETS.get(name.strip().lower())
        if model is None:
            raise ValueError(
                f"unknown latency preset {name!r}; known: {', '.join(LATENCY_PRESETS)}"
            )
        return model

    def raw_duration(self, rows: int, jitter: float, *, fail: bool = False) -> float:
        """Duration before the multiplier: ``base (+ per_row * rows + jitter unless fail)``."""
        return self.base if fail else self.base + self.per_row * rows + jitter

    @property
    def shape(self) -> float:
        """``tail_shape``, or its default: sigma 1.0 (lognormal), alpha 2.5 (pareto)."""
        if self.tail_shape is not None:
            return self.tail_shape
        return 2.5 if self.tail is HeavyTail.PARETO else 1.0

    def drift(self, start: float) -> float:
        """The drift multiplier for a job starting at model time ``start`` (>= 0).

        >>> m = LatencyModel(drift_factor=3.0, drift_over=100.0)
        >>> m.drift(0.0), m.drift(50.0), m.drift(100.0), m.drift(1e9)
        (1.0, 2.0, 3.0, 3.0)
        """
        if self.drift_factor == 1.0:
            return 1.0
        return 1.0 + (self.drift_factor - 1.0) * min(1.0, max(0.0, start) / self.drift_over)

    def tail_multiplier(self, u: float) -> float:
        """The heavy-tail factor at quantile ``u`` in ``[0, 1)`` (1.0 without a tail).

        >>> LatencyModel(tail="pareto", tail_shape=2.0).tail_multiplier(0.75)
        1.0
        """
        if self.tail is HeavyTail.NONE:
            return 1.0
        if self.tail is HeavyTail.LOGNORMAL:
            sigma = self.shape
            z = _STANDARD_NORMAL.inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12))
            value = math.exp(sigma * z - sigma * sigma / 2.0)
        else:
            alpha = self.shape
            scale = (alpha - 1.0) / alpha  # x_m with mean 1
            value = scale / (1.0 - min(u, 1.0 - 1e-12)) ** (1.0 / alpha)
        return value if self.tail_cap is None else min(value, self.tail_cap)

    def describe(self) -> str:
        """One line for the emulator's banner."""
        pool = f"workers {self.workers or 'unbounded'}"
        text = f"{pool}; job = ({self.base:g}s + {self.per_row:g}s/row + U(0, {self.jitter:g})s)"
        extras = []
        if self.tail is not HeavyTail.NONE:
            cap = "" if self.tail_cap is None else f", cap {self.tail_cap:g}"
            extras.append(f"{self.tail.value}({self.shape:g}{cap})")
        if self.slow_share > 0 and self.slow_factor != 1.0:
            extras.append(f"{self.slow_factor:g}x for {self.slow_share:.0%}")
        if self.drift_factor != 1.0:
            extras.append(f"drift to {self.drift_factor:g}x over {self.drift_over:g}s")
        return text + (" x " + " x ".join(extras) if extras else "") + " (model)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "base": self.base,
            "perRow": self.per_row,
            "jitter": self.jitter,
            "tail": self.tail.value,
            "tailShape": self.tail_shape,
            "tailCap": self.tail_cap,
            "slowShare": self.slow_share,
            "slowFactor": self.slow_factor,
            "driftFactor": self.drift_factor,
            "driftOver": self.drift_over,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> LatencyModel:
        """Inverse of :meth:`to_dict`; also a preset name, or ``{"preset": NAME, ...overrides}``.

        >>> LatencyModel.from_dict({"preset": "fifo-2", "jitter": 0}).workers
        2
        """
        if isinstance(data, str):
            return cls.preset(data)
        if not isinstance(data, Mapping):
            raise TypeError(f"latency must be a JSON object or a preset name, got {data!r}")
        unknown = set(data) - set(_FIELDS) - {"preset"}
        if unknown:
            raise ValueError(f"unknown latency fields: {sorted(unknown)}")
        preset = data.get("preset")
        if preset is not None and not isinstance(preset, str):
            raise TypeError(f"latency preset must be a string, got {preset!r}")
        base = cls() if preset is None else cls.preset(preset)
        changes: dict[str, Any] = {}
        for key, name in _FIELDS.items():
            if key in data:
                changes[name] = _field_value(name, data[key])
        return attrs.evolve(base, **changes)


def _field_value(name: str, raw: object) -> object:
    if name == "tail":
        return _tail(raw)
    if raw is None and name in ("workers", "tail_cap", "tail_shape"):
        return None
    if name == "workers":
        if type(raw) is not int:
            raise TypeError(f"workers must be an integer or null, got {raw!r}")
        return raw
    if type(raw) not in (int, float):
        raise TypeError(f"{name} must be a number, got {raw!r}")
    return float(raw)  # type: ignore[arg-type]


#: Named models for the polling benchmark's scenarios (issue 13); all share the guide's figures
#: except where the name says otherwise.
LATENCY_PRESETS: Final[Mapping[str, LatencyModel]] = {
    "guide": LatencyModel(),
    "fifo-4": LatencyModel(workers=4),
    "fifo-2": LatencyModel(workers=2),
    "heavy-tail": LatencyModel(tail=HeavyTail.LOGNORMAL, tail_shape=1.0, tail_cap=20.0),
    "slow-path-20": LatencyModel(slow_share=0.2, slow_factor=4.0),
    "drift-3x": LatencyModel(drift_factor=3.0, drift_over=120.0),
    "fast-5x": LatencyModel(base=0.2, per_row=0.005, jitter=0.4),
    "zero": LatencyModel.zero(),
}


@attrs.frozen(kw_only=True)
class Slot:
    """Where a job sits in the schedule (model seconds): decided once, at submission."""

    start: float
    processing: float
    end: float
    multiplier: float = 1.0
    slow_path: bool = False


def emulator_streams(seed: int) -> tuple[random.Random, random.Random]:
    """The emulator's random streams for ``seed``: ``(jobs, latency)``. ``jobs`` draws each new
    job's id (128 bits), then its jitter (:meth:`JobScheduler.schedule`'s ``jitter_rng``);
    ``latency`` is the :class:`JobScheduler`'s own. Whoever draws from them in that order (the
    polling simulator's ``emulator_seed``) gets the emulator's jobs, in submission order.

    >>> jobs, latency = emulator_streams(23)
    >>> jobs.getrandbits(128) == emulator_streams(23)[0].getrandbits(128)
    True
    """
    return (
        random.Random(f"debitura-emulator-jobs-{seed}"),  # noqa: S311 - reproducible ids
        random.Random(f"debitura-emulator-latency-{seed}"),  # noqa: S311 - a model
    )


class JobScheduler:
    """FIFO placement on a bounded worker pool plus the model's multipliers.

    ``rng`` draws the tail and slow-path decisions (its own stream, so the latency model never
    changes job ids); the jitter is drawn from the ``jitter_rng`` passed to :meth:`schedule`
    (the core's job stream, as before these models existed).

    >>> pool = LatencyModel(workers=2, base=1.0, per_row=0.0, jitter=0.0)
    >>> s = JobScheduler(pool, random.Random(0))
    >>> [s.schedule(now=0.0, rows=1, jitter_rng=random.Random(0)).start for _ in range(5)]
    [0.0, 0.0, 1.0, 1.0, 2.0]
    """

    def __init__(self, model: LatencyModel, rng: random.Random) -> None:
        self.model = model
        self._rng = rng
        self._free: list[float] = []  # heap: when each busy worker becomes free

    def reset_pool(self) -> None:
        """Forget the workers' state (a server restart); the random streams go on."""
        self._free.clear()

    def schedule(
        self, *, now: float, rows: int, jitter_rng: random.Random, fail: bool = False
    ) -> Slot:
        model = self.model
        jitter = jitter_rng.uniform(0.0, model.jitter) if model.jitter > 0 else 0.0
        free = self._free
        limit = model.workers
        start = now if limit is None or len(free) < limit else max(now, free[0])
        multiplier, slow = self._multiplier(start)
        duration = model.raw_duration(rows, jitter, fail=fail) * multiplier
        if limit is not None:
            if len(free) < limit:
                heapq.heappush(free, start + duration)
            else:
                heapq.heapreplace(free, start + duration)
        return Slot(
            start=start,
            processing=start + model.base * multiplier,
            end=start + duration,
            multiplier=multiplier,
            slow_path=slow,
        )

    def _multiplier(self, start: float) -> tuple[float, bool]:
        model = self.model
        value = 1.0
        if model.tail is not HeavyTail.NONE:
            value *= model.tail_multiplier(self._rng.random())
        slow = False
        if model.slow_share > 0.0:
            slow = self._rng.random() < model.slow_share
            if slow:
                value *= model.slow_factor
        return value * model.drift(start), slow
