"""The oracle hook: when each ingestion job will finish, known server-side at submission.

The emulator decides a job's whole schedule when ``POST /ingestion-jobs`` creates it (see
:mod:`.latency`): workers are taken FIFO in submission order and a later job never delays an
earlier one, the drift depends only on the job's start, and the tail and slow-path draws are made
then. So the instant at which the job becomes terminal (``finished_at``) is fixed, and final,
from the moment the job exists, before the 202 is even sent. Only two things make it moot: a
``job_vanish`` fault (the job answers 404 from ``vanishes_at`` on) and ``restart()``/``reset()``
(every job is forgotten).

A benchmark's oracle client learns it in one of three ways:

- in-process, pushed: ``Emulator(config, on_job_scheduled=callback)``; ``callback(ScheduledJob)``
  is called synchronously for every newly created job (not for idempotent replays) before the
  202 is written;
- in-process, pulled: ``await emulator.job_schedule(job_id)`` (or the synchronous
  ``EmulatorService.job_schedule``), ``None`` for an unknown job;
- across processes: ``await EmulatorProcess.job_schedule(job_id)``, i.e.
  ``GET /_emulator/jobs/{jobId}`` (404 when unknown); ``GET /_emulator/jobs`` lists the same
  fields for every job.

Times come twice: model seconds since the emulator started (``*_at``) and the matching
``time.monotonic()`` readings (``*_at_monotonic``; system-wide on Linux, so comparable with the
benchmark's own clock even when the emulator is a child process).

>>> job = ScheduledJob.from_dict({
...     "jobId": "6f1c1b6e-8a55-4f7e-9d2a-0e0c3b1d2a10",
...     "partnerId": "0b0f3f6e-1d4c-4a57-8f43-f1e2d3c4b5a6",
...     "rowsTotal": 10, "createdAt": 0.0, "startedAt": 0.0, "processingAt": 1.0,
...     "finishedAt": 2.0, "createdAtMonotonic": 100.0, "startedAtMonotonic": 100.0,
...     "processingAtMonotonic": 100.1, "finishedAtMonotonic": 100.2})
>>> job.duration, job.finished_at_monotonic
(2.0, 100.2)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

__all__ = ["JobScheduledCallback", "ScheduledJob"]

_TIMES: Final = ("createdAt", "startedAt", "processingAt", "finishedAt")


@attrs.frozen(kw_only=True)
class ScheduledJob:
    """One job's schedule. Model seconds since the emulator started, and ``time.monotonic()``.

    ``created_at``: submission; ``started_at``: a worker took it (status leaves Queued);
    ``processing_at``: rows start to be processed, at an even pace, until ``finished_at``, when
    the job is terminal. ``multiplier`` is the latency model's factor (tail x slow x drift),
    ``slow_path`` whether the job took the slow path, ``fails`` whether a ``job_failed`` fault
    will end it as Failed, ``vanishes_at`` when a ``job_vanish`` fault makes it 404 (or None).
    """

    job_id: uuid.UUID
    partner_id: uuid.UUID
    rows_total: int
    created_at: float
    started_at: float
    processing_at: float
    finished_at: float
    created_at_monotonic: float
    started_at_monotonic: float
    processing_at_monotonic: float
    finished_at_monotonic: float
    multiplier: float = 1.0
    slow_path: bool = False
    fails: bool = False
    vanishes_at: float | None = None

    @classmethod
    def of(
        cls,
        *,
        job_id: uuid.UUID,
        partner_id: uuid.UUID,
        rows_total: int,
        times: tuple[float, float, float, float],
        to_monotonic: Callable[[float], float],
        multiplier: float = 1.0,
        slow_path: bool = False,
        fails: bool = False,
        vanishes_at: float | None = None,
    ) -> ScheduledJob:
        """From the model times ``(created, started, processing, finished)`` and the clock's
        model-to-monotonic conversion."""
        created, started, processing, finished = times
        return cls(
            job_id=job_id,
            partner_id=partner_id,
            rows_total=rows_total,
            created_at=created,
            started_at=started,
            processing_at=processing,
            finished_at=finished,
            created_at_monotonic=to_monotonic(created),
            started_at_monotonic=to_monotonic(started),
            processing_at_monotonic=to_monotonic(processing),
            finished_at_monotonic=to_monotonic(finished),
            multiplier=multiplier,
            slow_path=slow_path,
            fails=fails,
            vanishes_at=vanishes_at,
        )

    @property
    def duration(self) -> float:
        """Model seconds from the start on a worker to the end."""
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobId": str(self.job_id),
            "partnerId": str(self.partner_id),
            "rowsTotal": self.rows_total,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "processingAt": self.processing_at,
            "finishedAt": self.finished_at,
            "createdAtMonotonic": self.created_at_monotonic,
            "startedAtMonotonic": self.started_at_monotonic,
            "processingAtMonotonic": self.processing_at_monotonic,
            "finishedAtMonotonic": self.finished_at_monotonic,
            "multiplier": self.multiplier,
            "slowPath": self.slow_path,
            "fails": self.fails,
            "vanishesAt": self.vanishes_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduledJob:
        """Inverse of :meth:`to_dict` (extra keys, as in ``/_emulator/jobs`` records, ignored)."""
        times = {name: float(data[name]) for name in _TIMES}
        monotonic = {name: float(data[f"{name}Monotonic"]) for name in _TIMES}
        vanishes = data.get("vanishesAt")
        return cls(
            job_id=uuid.UUID(str(data["jobId"])),
            partner_id=uuid.UUID(str(data["partnerId"])),
            rows_total=int(data["rowsTotal"]),
            created_at=times["createdAt"],
            started_at=times["startedAt"],
            processing_at=times["processingAt"],
            finished_at=times["finishedAt"],
            created_at_monotonic=monotonic["createdAt"],
            started_at_monotonic=monotonic["startedAt"],
            processing_at_monotonic=monotonic["processingAt"],
            finished_at_monotonic=monotonic["finishedAt"],
            multiplier=float(data.get("multiplier", 1.0)),
            slow_path=bool(data.get("slowPath", False)),
            fails=bool(data.get("fails", False)),
            vanishes_at=None if vanishes is None else float(vanishes),
        )


#: ``on_job_scheduled`` callbacks take the new job's schedule; what they return is ignored.
JobScheduledCallback = Callable[[ScheduledJob], object]
