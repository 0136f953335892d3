"""The emulator's pure state core: Debitura's rules with no I/O, no clock and no event loop.

Like a moto "backend", :class:`EmulatorCore` holds partners, cases, ingestion jobs, notes, the
idempotency store and the rate windows. Every method that depends on time takes ``now`` (model
seconds, monotonic) and, where wall-clock UTC matters (eventDate rules), ``utcnow``. Randomness
comes from :class:`random.Random` instances seeded from the config, so a run is reproducible.

Job state is computed lazily from ``now``: a job is scheduled once, at submission, on a bounded
worker pool (FIFO; :mod:`.latency`), and its status, ``rowsSucceeded`` and ``rowsFailed`` are pure
functions of ``now``. Rate windows live in :mod:`.ratelimit`. Notes of processed rows are
materialised by :meth:`EmulatorCore.advance`, which pops finished jobs off a heap ordered by end
time, so a request never costs O(all jobs).

>>> from datetime import UTC, datetime
>>> from debitura_async.emulator.config import EmulatorConfig, LatencyModel
>>> config = EmulatorConfig(latency=LatencyModel.zero(), partners=2, cases_per_partner=2)
>>> core = EmulatorCore(config)
>>> partner = core.world.partners[0]
>>> row = {"type": 0, "caseId": str(partner.case_ids[0]), "description": "Called"}
>>> result = core.submit_job(partner, {"rows": [row]}, now=0.0, utcnow=datetime.now(UTC))
>>> core.job_status(partner, result.job_id, now=0.0).as_dict()
{'status': 2, 'rowsTotal': 1, 'rowsSucceeded': 1, 'rowsFailed': 0}
"""

from __future__ import annotations

import bisect
import heapq
import random
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from ._jobs import Job as _Job
from ._jobs import check_batch
from ._notes import NoteIndex, check_note_body
from ._values import (
    MAX_DESCRIPTION_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_ROWS,
    Accepted,
    ApiProblem,
    JobFaults,
    JobStatus,
    JobView,
    Note,
    canonical_hash,
    case_reference,
    format_datetime,
    parse_datetime,
    partner_profile,
)
from .config import EmulatorConfig, FaultKind, Partner, World
from .latency import JobScheduler, emulator_streams
from .oracle import ScheduledJob
from .ratelimit import RateLimiter

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_ROWS",
    "Accepted",
    "ApiProblem",
    "EmulatorCore",
    "JobFaults",
    "JobStatus",
    "JobView",
    "Note",
    "RateLimiter",
    "canonical_hash",
    "case_reference",
    "format_datetime",
    "parse_datetime",
]


@attrs.define(kw_only=True)
class _IdempotencyEntry:
    body_hash: bytes
    job_id: uuid.UUID
    rows_queued: int
    expires_at: float


@attrs.define(kw_only=True)
class _Stats:
    requests: dict[str, dict[str, int]] = attrs.field(factory=dict)
    jobs_created: int = 0
    rows_queued: int = 0
    idempotent_replays: int = 0
    idempotency_conflicts: int = 0
    rate_limited: int = 0
    faults: dict[str, int] = attrs.field(factory=dict)
    notes: int = 0


class EmulatorCore:
    """Debitura's state and rules for one emulator run. Not thread-safe; no I/O."""

    def __init__(self, config: EmulatorConfig, world: World | None = None) -> None:
        self.config = config
        self.world = world if world is not None else config.build_world()
        self._keys: dict[str, Partner] = {p.api_key: p for p in self.world.partners}
        self._case_owner: dict[str, Partner] = {
            str(case): p for p in self.world.partners for case in p.case_ids
        }
        self._user_ids: dict[uuid.UUID, int] = {
            p.id: 1000 + i for i, p in enumerate(self.world.partners)
        }
        self._init_state()

    # ------------------------------------------------------------------ state lifecycle

    def _init_state(self) -> None:
        seed = self.config.seed
        self._job_rng, latency_rng = emulator_streams(seed)
        self._note_rng = random.Random(f"debitura-emulator-notes-{seed}")  # noqa: S311 - reproducible ids
        self._scheduler = JobScheduler(self.config.latency, latency_rng)
        self._stats = _Stats()
        self._notes = NoteIndex(self.config.time_scale)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        """Forget jobs, idempotency entries, rate windows and the worker pool."""
        self._jobs: dict[uuid.UUID, _Job] = {}
        self._pending: list[tuple[float, int, _Job]] = []
        self._seq = 0
        self._scheduler.reset_pool()
        self._idempotency: dict[tuple[uuid.UUID, str], _IdempotencyEntry] = {}
        self._idempotency_expiry: deque[tuple[float, tuple[uuid.UUID, str]]] = deque()
        self._limiter = RateLimiter(self.config.rate_limits)

    def restart(self, now: float, *, keep_notes: bool = True) -> None:
        """Simulate a server restart: rows processed so far stay (as notes, if ``keep_notes``);
        jobs, the idempotency store, rate windows and the worker pool are gone. Stats remain."""
        self.advance(now, partial=True)
        self._reset_runtime()
        if not keep_notes:
            self._notes.clear()

    def reset(self) -> None:
        """Back to the fresh world: no jobs, notes, idempotency entries, rate windows or stats."""
        self._init_state()

    # ------------------------------------------------------------------ auth and rate limits

    def partner_for_key(self, api_key: str | None) -> Partner | None:
        if not api_key:
            return None
        return self._keys.get(api_key)

    def admit(self, api_key: str, now: float) -> float | None:
        """Rate-limit a request; ``None`` if admitted, else the model seconds to wait.

        Counted per partner (the windows are labelled by partner id, never by the key)."""
        partner = self._keys.get(api_key)
        wait = self._limiter.admit("fallback" if partner is None else str(partner.id), now)
        if wait is not None:
            self._stats.rate_limited += 1
        return wait

    # ------------------------------------------------------------------ ingestion jobs

    def submit_job(
        self,
        partner: Partner,
        document: object,
        *,
        now: float,
        utcnow: datetime,
        idempotency_key: str | None = None,
        job_faults: Callable[[], JobFaults] | None = None,
    ) -> Accepted | ApiProblem:
        """``POST /ingestion-jobs`` with an already parsed JSON body.

        Order: Idempotency-Key length (400) → stored key (replay or 422) → body rules (400, not
        stored) → job created (202, stored under the key). ``job_faults`` is called only when a
        job is really created.
        """
        self.advance(now)
        body_hash = b""
        if idempotency_key is not None:
            if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
                return ApiProblem.validation(
                    [
                        f"Idempotency-Key: must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
                        f" (got {len(idempotency_key)})"
                    ]
                )
            self._expire_idempotency(now)
            body_hash = canonical_hash(document)
            entry = self._idempotency.get((partner.id, idempotency_key))
            if entry is not None:
                if entry.body_hash == body_hash:
                    self._stats.idempotent_replays += 1
                    return Accepted(
                        job_id=entry.job_id, rows_queued=entry.rows_queued, replayed=True
                    )
                self._stats.idempotency_conflicts += 1
                return ApiProblem.simple(
                    422,
                    "idempotency_conflict",
                    "IdempotencyConflict",
                    "Idempotency-Key was already used with a different request body",
                )
        checked = check_batch(
            partner,
            document,
            utcnow,
            case_owner=self._case_owner,
            store=self.config.store_notes,
        )
        if isinstance(checked, ApiProblem):
            return checked
        rows, failed, future, case_keys, event_dates = checked
        faults = job_faults() if job_faults is not None else JobFaults()
        job = self._schedule(
            partner=partner,
            rows=rows,
            failed=failed,
            now=now,
            utcnow=utcnow,
            faults=faults,
            idempotency_key=idempotency_key,
            case_keys=case_keys,
            event_dates=event_dates,
        )
        if future and not faults.fail:
            self._fail_future_rows(job, future)
        if idempotency_key is not None:
            key = (partner.id, idempotency_key)
            expires = now + self.config.idempotency_window
            self._idempotency[key] = _IdempotencyEntry(
                body_hash=body_hash, job_id=job.id, rows_queued=job.rows_total, expires_at=expires
            )
            self._idempotency_expiry.append((expires, key))
        if job.end <= now:
            self._finish(job)
        else:
            self._seq += 1
            heapq.heappush(self._pending, (job.end, self._seq, job))
        return Accepted(job_id=job.id, rows_queued=job.rows_total)

    def _schedule(
        self,
        *,
        partner: Partner,
        rows: list[Any],
        failed: list[int],
        now: float,
        utcnow: datetime,
        faults: JobFaults,
        idempotency_key: str | None,
        case_keys: list[str] | None,
        event_dates: list[datetime | None] | None,
    ) -> _Job:
        job_id = uuid.UUID(int=self._job_rng.getrandbits(128), version=4)
        count = len(rows)
        slot = self._scheduler.schedule(
            now=now, rows=count, jitter_rng=self._job_rng, fail=faults.fail
        )
        store = self.config.store_notes and not faults.fail
        job = _Job(
            id=job_id,
            partner=partner,
            rows_total=count,
            created_at=now,
            submit_utc=utcnow,
            start=slot.start,
            proc_start=slot.processing,
            end=slot.end,
            multiplier=slot.multiplier,
            slow_path=slot.slow_path,
            failed_rows=failed,
            fail=faults.fail,
            vanish_at=None if faults.vanish_after is None else now + faults.vanish_after,
            idempotency_key=idempotency_key,
            rows=rows if store else None,
            case_keys=case_keys if store else None,
            event_dates=event_dates if store else None,
        )
        self._jobs[job_id] = job
        self._stats.jobs_created += 1
        self._stats.rows_queued += count
        return job

    def _fail_future_rows(self, job: _Job, future: list[tuple[int, datetime]]) -> None:
        failed = set(job.failed_rows)
        for index, moment in future:
            if index not in failed and moment > job.row_utc(index, self.config.time_scale):
                failed.add(index)
        job.failed_rows = sorted(failed)

    def job_status(self, partner: Partner, job_id: uuid.UUID, *, now: float) -> JobView | None:
        """``GET /ingestion-jobs/{jobId}``: ``None`` (404) if unknown, another's, or vanished."""
        self.advance(now)
        job = self._jobs.get(job_id)
        if job is None or job.partner is not partner:
            return None
        if job.vanish_at is not None and now >= job.vanish_at:
            return None
        return job.view(now)

    # ------------------------------------------------------------------ lazy processing

    def advance(self, now: float, *, partial: bool = False) -> None:
        """Materialise notes of finished jobs (O(finished · log pending)); with ``partial`` also
        the rows processed so far by running jobs (O(pending); introspection only)."""
        pending = self._pending
        while pending and pending[0][0] <= now:
            self._finish(heapq.heappop(pending)[2])
        if partial:
            for _, _, job in pending:
                if not job.fail and job.proc_start <= now:
                    self._materialize(job, job.processed(now))

    def _finish(self, job: _Job) -> None:
        if job.finished:
            return
        if not job.fail:
            self._materialize(job, job.rows_total)
        job.finished = True

    def _materialize(self, job: _Job, upto: int) -> None:
        start = job.materialized
        if upto <= start:
            return
        failed = job.failed_rows
        skipped = bisect.bisect_left(failed, upto) - bisect.bisect_left(failed, start)
        self._stats.notes += (upto - start) - skipped
        job.materialized = upto
        self._notes.add_rows(job, start, upto)

    def _expire_idempotency(self, now: float) -> None:
        expiry = self._idempotency_expiry
        store = self._idempotency
        while expiry and expiry[0][0] <= now:
            expires, key = expiry.popleft()
            entry = store.get(key)
            if entry is not None and entry.expires_at == expires:
                del store[key]

    # ------------------------------------------------------------------ notes and /me

    def create_note(
        self,
        partner: Partner,
        case_id: uuid.UUID,
        document: object,
        *,
        now: float,
        utcnow: datetime,
    ) -> dict[str, Any] | ApiProblem:
        """``POST /cases/{id}/notes``: the NoteDto, a 400 or a 404 (case not yours)."""
        self.advance(now)
        checked = check_note_body(document, utcnow)
        if isinstance(checked, ApiProblem):
            return checked
        text, moment = checked
        key = str(case_id)
        if self._case_owner.get(key) is not partner:
            return ApiProblem.not_found("Case not found or not assigned to you")
        note = Note(
            id=uuid.UUID(int=self._note_rng.getrandbits(128), version=4),
            case_id=key,
            partner_id=partner.id,
            description=text,
            event_date=moment,
            created_at=utcnow,
        )
        self._stats.notes += 1
        if self.config.store_notes:
            self._notes.add(note)
        return self.note_dto(note)

    def note_dto(self, note: Note) -> dict[str, Any]:
        """The spec's NoteDto for a note."""
        partner = self._partner_by_id(note.partner_id)
        return {
            "id": str(note.id),
            "caseReference": case_reference(note.case_id),
            "title": "Note",
            "description": note.description,
            "visibility": "Shared",
            "createdAt": format_datetime(note.created_at),
            "eventDate": None if note.event_date is None else format_datetime(note.event_date),
            "createdBy": {"userId": self._user_ids[partner.id], "userName": partner.name},
        }

    def _partner_by_id(self, partner_id: uuid.UUID) -> Partner:
        for partner in self.world.partners:
            if partner.id == partner_id:
                return partner
        raise KeyError(partner_id)  # pragma: no cover - notes only come from known partners

    def me(self, partner: Partner) -> dict[str, Any]:
        """``CollectionPartnerMeResponse`` for a partner (made-up but stable profile data)."""
        return partner_profile(partner.id, partner.name, self._user_ids[partner.id])

    # ------------------------------------------------------------------ introspection

    def notes(
        self,
        now: float,
        *,
        case_id: uuid.UUID | str | None = None,
        external_ref: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored notes (NoteDto fields + caseId, externalRef, partnerId, jobId), oldest first."""
        self.advance(now, partial=True)
        selected = self._notes.select(case_id=case_id, external_ref=external_ref)
        return [self.note_record(note) for note in selected]

    def note_record(self, note: Note) -> dict[str, Any]:
        record = self.note_dto(note)
        record["caseId"] = note.case_id
        record["externalRef"] = note.external_ref
        record["partnerId"] = str(note.partner_id)
        record["jobId"] = None if note.job_id is None else str(note.job_id)
        return record

    def note_count(self, now: float) -> int:
        """Notes created so far (also counted when ``store_notes`` is off)."""
        self.advance(now, partial=True)
        return self._stats.notes

    def stats(self, now: float) -> dict[str, Any]:
        self.advance(now, partial=True)
        s = self._stats
        return {
            "requests": {name: dict(counts) for name, counts in s.requests.items()},
            "jobs_created": s.jobs_created,
            "rows_queued": s.rows_queued,
            "idempotent_replays": s.idempotent_replays,
            "idempotency_conflicts": s.idempotency_conflicts,
            "rate_limited": s.rate_limited,
            "faults": dict(s.faults),
            "notes": s.notes,
            "rate_windows": self._limiter.snapshot(now),
        }

    def jobs(self, now: float) -> list[dict[str, Any]]:
        """Every known job (including vanished ones, flagged) in creation order."""
        self.advance(now, partial=True)
        return [job.record(now) for job in self._jobs.values()]

    def scheduled_job(
        self, job_id: uuid.UUID, *, to_monotonic: Callable[[float], float]
    ) -> ScheduledJob | None:
        """The oracle's view of a job (see :mod:`.oracle`); ``None`` if unknown."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        return ScheduledJob.of(
            job_id=job.id,
            partner_id=job.partner.id,
            rows_total=job.rows_total,
            times=(job.created_at, job.start, job.proc_start, job.end),
            to_monotonic=to_monotonic,
            multiplier=job.multiplier,
            slow_path=job.slow_path,
            fails=job.fail,
            vanishes_at=job.vanish_at,
        )

    def record_request(self, endpoint: str, status: int | str) -> None:
        counts = self._stats.requests.setdefault(endpoint, {})
        key = str(status)
        counts[key] = counts.get(key, 0) + 1

    def record_fault(self, kind: FaultKind) -> None:
        faults = self._stats.faults
        faults[kind.value] = faults.get(kind.value, 0) + 1

    def world_dict(self) -> dict[str, Any]:
        return self.world.to_dict()
