"""Fault plan: decides, from a seeded :class:`random.Random`, which faults hit a request.

Pure (no I/O, no clock): the app asks :meth:`FaultPlan.decide` once per API request, before it
authenticates, and :meth:`FaultPlan.decide_job` when a request really creates an ingestion job.

Rules:

* Faults are evaluated in the order they were added. A ``count`` fault fires for the next
  ``count`` matching requests (consumed in request order); a ``probability`` fault draws from
  the plan's own seeded RNG for every matching request.
* At most one *terminal* fault (``http_error``, ``rate_limit``, ``drop_before``) fires per
  request; later terminal faults are not consumed. ``slow`` delays add up; ``drop_after`` is a
  flag applied after the request was processed.
* ``job_failed`` / ``job_vanish`` are consumed only when a job is created (a 400, a replay or a
  422 does not use them up).

>>> from debitura_async.emulator.config import Fault
>>> plan = FaultPlan([Fault(kind="http_error", count=1, status=502)], seed=0)
>>> plan.decide("GET /me").status, plan.decide("GET /me").action
(502, None)
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any, Final

import attrs

from .config import JOB_FAULTS, Fault, FaultKind
from .core import JobFaults

__all__ = ["NO_FAULT", "FaultDecision", "FaultPlan"]

_TERMINAL: Final = frozenset({FaultKind.HTTP_ERROR, FaultKind.RATE_LIMIT, FaultKind.DROP_BEFORE})


@attrs.frozen(kw_only=True)
class FaultDecision:
    """What to do to one request. Durations are model seconds."""

    delay: float = 0.0
    action: FaultKind | None = None
    status: int = 503
    retry_after: float = 1.0
    drop_after: bool = False
    fired: tuple[FaultKind, ...] = ()


NO_FAULT: Final = FaultDecision()


@attrs.define
class _Armed:
    fault: Fault
    remaining: int | None


class FaultPlan:
    """The active faults of one emulator, with their remaining counts."""

    def __init__(self, faults: Iterable[Fault] = (), *, seed: int = 0) -> None:
        self._seed = seed
        self.reset(faults)

    def reset(self, faults: Iterable[Fault] = ()) -> None:
        """Replace every fault and reseed the RNG."""
        self._rng = random.Random(f"debitura-emulator-faults-{self._seed}")  # noqa: S311 - reproducible
        self._armed: list[_Armed] = []
        for fault in faults:
            self.add(fault)

    def add(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault, fault.count))

    def clear(self) -> None:
        self._armed.clear()

    def describe(self) -> list[dict[str, Any]]:
        """The active faults as dicts, with ``remaining`` counts."""
        return [{**a.fault.to_dict(), "remaining": a.remaining} for a in self._armed]

    def _fires(self, armed: _Armed) -> bool:
        if armed.remaining is not None:
            if armed.remaining <= 0:
                return False
            armed.remaining -= 1
            return True
        probability = armed.fault.probability
        return probability is not None and self._rng.random() < probability

    def decide(self, endpoint: str) -> FaultDecision:
        """The request-level faults for one request to ``endpoint`` (e.g. ``"GET /me"``)."""
        if not self._armed:
            return NO_FAULT
        delay = 0.0
        terminal: Fault | None = None
        drop_after = False
        fired: list[FaultKind] = []
        for armed in self._armed:
            fault = armed.fault
            kind = fault.kind
            if kind in JOB_FAULTS or not fault.matches(endpoint):
                continue
            if kind in _TERMINAL and terminal is not None:
                continue
            if not self._fires(armed):
                continue
            fired.append(kind)
            if kind is FaultKind.SLOW:
                delay += fault.delay
            elif kind is FaultKind.DROP_AFTER:
                drop_after = True
            else:
                terminal = fault
        if not fired:
            return NO_FAULT
        return FaultDecision(
            delay=delay,
            action=None if terminal is None else terminal.kind,
            status=503 if terminal is None else terminal.http_status,
            retry_after=1.0 if terminal is None else terminal.retry_after,
            drop_after=drop_after,
            fired=tuple(fired),
        )

    def decide_job(self) -> tuple[JobFaults, tuple[FaultKind, ...]]:
        """Job-level faults for a job being created by ``POST /ingestion-jobs``."""
        fail = False
        vanish_after: float | None = None
        fired: list[FaultKind] = []
        for armed in self._armed:
            fault = armed.fault
            if fault.kind not in JOB_FAULTS:
                continue
            if fault.kind is FaultKind.JOB_FAILED and fail:
                continue
            if fault.kind is FaultKind.JOB_VANISH and vanish_after is not None:
                continue
            if not self._fires(armed):
                continue
            fired.append(fault.kind)
            if fault.kind is FaultKind.JOB_FAILED:
                fail = True
            else:
                vanish_after = fault.after
        return JobFaults(fail=fail, vanish_after=vanish_after), tuple(fired)
