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
import enum
import hashlib
import heapq
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
import orjson

from .config import EmulatorConfig, FaultKind, Partner, World
from .latency import JobScheduler
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
    "format_datetime",
    "parse_datetime",
]

MAX_ROWS: Final = 1000
MAX_DESCRIPTION_LENGTH: Final = 10_000
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255

_ROW_FIELDS: Final = frozenset({"type", "caseId", "description", "eventDate", "externalRef"})
_BATCH_FIELDS: Final = frozenset({"rows"})
_NOTE_FIELDS: Final = frozenset({"description", "eventDate"})
# System.Text.Json reads a Guid only in the hyphenated "D" format (36 characters).
_UUID_D: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_MASK128: Final = (1 << 128) - 1
# Odd 128-bit constant: note ids derived from (job id, row index) look unrelated.
_SPREAD: Final = 0x9E3779B97F4A7C15F39CC0605CEDC835

# rows, failed row indices, (index, eventDate) of rows dated after submission, case keys, dates
_CheckedBatch = tuple[
    list[Any],
    list[int],
    list[tuple[int, datetime]],
    list[str] | None,
    list[datetime | None] | None,
]


class JobStatus(enum.IntEnum):
    """Debitura's ``AsyncJobStatus``; 2, 3 and 4 are terminal."""

    QUEUED = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    COMPLETED_WITH_ERRORS = 3
    FAILED = 4


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date-time as an aware datetime (naive input is taken as UTC), else ``None``.

    >>> parse_datetime("2026-02-01T09:30:00Z").isoformat()
    '2026-02-01T09:30:00+00:00'
    >>> parse_datetime("yesterday") is None
    True
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``.

    >>> format_datetime(datetime(2026, 2, 1, 9, 30, tzinfo=UTC))
    '2026-02-01T09:30:00.000Z'
    """
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_hash(document: object) -> bytes:
    """SHA-256 of the parsed JSON with sorted keys: whitespace and key order do not count."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).digest()


@attrs.frozen(kw_only=True)
class ApiProblem:
    """An error answer: status plus the ``ApiErrorResponseDto`` fields (rendered by the app)."""

    status: int
    error: str
    message: str
    business_errors: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        """The ``ApiErrorResponseDto`` body: ``{error, message, businessErrors}``."""
        return {
            "error": self.error,
            "message": self.message,
            "businessErrors": [
                {"type": kind, "message": text, "solutionUrl": None}
                for kind, text in self.business_errors
            ],
        }

    @classmethod
    def validation(cls, problems: Iterable[str]) -> ApiProblem:
        items = tuple(problems)
        if len(items) == 1:
            message = items[0]
        else:
            message = f"{len(items)} validation errors; first: {items[0]}"
        return cls(
            status=400,
            error="validation_error",
            message=message,
            business_errors=tuple(("ValidationError", p) for p in items),
        )

    @classmethod
    def simple(cls, status: int, error: str, kind: str, message: str) -> ApiProblem:
        return cls(status=status, error=error, message=message, business_errors=((kind, message),))

    @classmethod
    def not_found(cls, message: str) -> ApiProblem:
        return cls.simple(404, "not_found", "NotFound", message)


@attrs.frozen(kw_only=True)
class Accepted:
    """A 202 for ``POST /ingestion-jobs``; ``replayed`` when served from the idempotency store."""

    job_id: uuid.UUID
    rows_queued: int
    replayed: bool = False

    def body(self) -> dict[str, Any]:
        return {"jobId": str(self.job_id), "rowsQueued": self.rows_queued}


@attrs.frozen(kw_only=True)
class JobFaults:
    """Job-level faults decided for a job at the moment it is created."""

    fail: bool = False
    vanish_after: float | None = None


@attrs.frozen(kw_only=True)
class JobView:
    """A job's observable state at some ``now``."""

    status: JobStatus
    rows_total: int
    rows_succeeded: int
    rows_failed: int

    def as_dict(self) -> dict[str, int]:
        """The ``IngestionJobStatusResponse`` body."""
        return {
            "status": int(self.status),
            "rowsTotal": self.rows_total,
            "rowsSucceeded": self.rows_succeeded,
            "rowsFailed": self.rows_failed,
        }


@attrs.frozen(kw_only=True)
class Note:
    """A stored note (from an ingestion row or ``POST /cases/{id}/notes``)."""

    id: uuid.UUID
    case_id: str
    partner_id: uuid.UUID
    description: str
    event_date: datetime | None
    created_at: datetime
    external_ref: str | None = None
    job_id: uuid.UUID | None = None


@attrs.define(kw_only=True)
class _Job:
    id: uuid.UUID
    partner: Partner
    rows_total: int
    created_at: float
    submit_utc: datetime
    start: float
    proc_start: float
    end: float
    failed_rows: list[int]
    fail: bool
    vanish_at: float | None
    idempotency_key: str | None
    # Row data, kept only with store_notes=True: ingestion notes are rendered from it on demand.
    rows: list[dict[str, Any]] | None
    case_keys: list[str] | None
    event_dates: list[datetime | None] | None
    multiplier: float = 1.0
    slow_path: bool = False
    materialized: int = 0
    finished: bool = False
    note_number: int = -1

    def processed(self, now: float) -> int:
        if now >= self.end:
            return self.rows_total
        if now < self.proc_start:
            return 0
        span = self.end - self.proc_start
        return min(self.rows_total, int(self.rows_total * (now - self.proc_start) / span))

    def view(self, now: float) -> JobView:
        total = self.rows_total
        if now < self.start:
            return JobView(
                status=JobStatus.QUEUED, rows_total=total, rows_succeeded=0, rows_failed=0
            )
        if self.fail:
            status = JobStatus.FAILED if now >= self.end else JobStatus.IN_PROGRESS
            return JobView(status=status, rows_total=total, rows_succeeded=0, rows_failed=0)
        if now >= self.end:
            failed = len(self.failed_rows)
            status = JobStatus.COMPLETED_WITH_ERRORS if failed else JobStatus.COMPLETED
            return JobView(
                status=status, rows_total=total, rows_succeeded=total - failed, rows_failed=failed
            )
        done = self.processed(now)
        failed = bisect.bisect_left(self.failed_rows, done)
        return JobView(
            status=JobStatus.IN_PROGRESS,
            rows_total=total,
            rows_succeeded=done - failed,
            rows_failed=failed,
        )

    def row_time(self, index: int) -> float:
        """Model time at which row ``index`` (0-based) is processed."""
        span = self.end - self.proc_start
        return self.proc_start + span * (index + 1) / self.rows_total


# A stored note is an int (ints are not tracked by the cyclic GC, tuples are):
# ``number << 10 | row`` for an ingestion row of job ``_note_jobs[number]`` (rows < 1024), or
# ``-1 - i`` for ``_direct_notes[i]`` (POST /cases/{id}/notes).
_NoteEntry = int
_ROW_BITS: Final = 10


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
        self._job_rng = random.Random(f"debitura-emulator-jobs-{seed}")  # noqa: S311 - reproducible ids
        self._note_rng = random.Random(f"debitura-emulator-notes-{seed}")  # noqa: S311 - reproducible ids
        latency_rng = random.Random(f"debitura-emulator-latency-{seed}")  # noqa: S311 - a model
        self._scheduler = JobScheduler(self.config.latency, latency_rng)
        self._stats = _Stats()
        self._notes: list[_NoteEntry] = []
        self._note_jobs: list[_Job] = []
        self._direct_notes: list[Note] = []
        self._notes_by_case: dict[str, list[_NoteEntry]] = {}
        self._notes_by_ref: dict[str, list[_NoteEntry]] = {}
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
            self._note_jobs.clear()
            self._direct_notes.clear()
            self._notes_by_case.clear()
            self._notes_by_ref.clear()

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
        checked = self._check_batch(partner, document, utcnow)
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

    def _check_batch(
        self, partner: Partner, document: object, utcnow: datetime
    ) -> _CheckedBatch | ApiProblem:
        """All body rules in one pass; per-row outcomes (case ownership) computed on the way."""
        if type(document) is not dict:
            return ApiProblem.validation(["body: must be a JSON object"])
        problems: list[str] = [f"{name}: unknown field" for name in document if name != "rows"]
        rows = document.get("rows")
        if rows is None:
            problems.append("rows: required; at least one row is required")
            return ApiProblem.validation(problems)
        if type(rows) is not list:
            problems.append("rows: must be an array")
            return ApiProblem.validation(problems)
        if not rows:
            problems.append("rows: at least one row is required")
            return ApiProblem.validation(problems)
        if len(rows) > MAX_ROWS:
            problems.append(f"rows: batch limit exceeded ({len(rows)} rows; at most {MAX_ROWS})")
            return ApiProblem.validation(problems)

        store = self.config.store_notes
        case_keys: list[str] | None = [] if store else None
        event_dates: list[datetime | None] | None = [] if store else None
        failed: list[int] = []
        future: list[tuple[int, datetime]] = []
        owner_of = self._case_owner
        allowed = _ROW_FIELDS
        uuid_match = _UUID_D.fullmatch
        fromiso = datetime.fromisoformat
        max_len = MAX_DESCRIPTION_LENGTH
        for i, row in enumerate(rows):
            if type(row) is not dict:
                problems.append(f"rows[{i}]: must be a JSON object")
                continue
            if not allowed.issuperset(row):
                problems.extend(f"rows[{i}].{k}: unknown field" for k in row if k not in allowed)
            kind = row.get("type")
            if type(kind) is not int:
                problems.append(_type_problem(i, kind))
            elif kind != 0:
                problems.append(
                    f"rows[{i}].type: event type {kind} is not currently supported (only 0 = Note)"
                )
            case = row.get("caseId")
            owner = owner_of.get(case) if type(case) is str else None
            if owner is None:
                if type(case) is not str:
                    problems.append(
                        f"rows[{i}].caseId: required"
                        if case is None
                        else f"rows[{i}].caseId: must be a UUID string"
                    )
                elif uuid_match(case) is None:
                    problems.append(f"rows[{i}].caseId: not a valid UUID")
                else:
                    case = case.lower()
                    owner = owner_of.get(case)
            text = row.get("description")
            if type(text) is not str:
                problems.append(
                    f"rows[{i}].description: required for Note events"
                    if text is None
                    else f"rows[{i}].description: must be a string"
                )
            elif len(text) > max_len:
                problems.append(
                    f"rows[{i}].description: must be at most {max_len} characters (got {len(text)})"
                )
            elif not text or text.isspace():
                problems.append(f"rows[{i}].description: must not be empty")
            when = row.get("eventDate")
            moment: datetime | None = None
            if when is not None:
                if type(when) is not str:
                    problems.append(f"rows[{i}].eventDate: must be an ISO 8601 date-time string")
                else:
                    try:
                        moment = fromiso(when)
                    except ValueError:
                        problems.append(f"rows[{i}].eventDate: not a valid ISO 8601 date-time")
                    else:
                        if moment.tzinfo is None:
                            moment = moment.replace(tzinfo=UTC)
                        if moment > utcnow:
                            future.append((i, moment))
            ref = row.get("externalRef")
            if ref is not None and type(ref) is not str:
                problems.append(f"rows[{i}].externalRef: must be a string or null")
            if owner is not partner:
                failed.append(i)
            if case_keys is not None and event_dates is not None:
                case_keys.append(case if type(case) is str else "")
                event_dates.append(moment)
        if problems:
            return ApiProblem.validation(problems)
        return rows, failed, future, case_keys, event_dates

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

    def _row_utc(self, job: _Job, index: int) -> datetime:
        """Real UTC at which a row is processed (model offsets divided by the time scale)."""
        offset = (job.row_time(index) - job.created_at) / self.config.time_scale
        return job.submit_utc + timedelta(seconds=offset)

    def _fail_future_rows(self, job: _Job, future: list[tuple[int, datetime]]) -> None:
        failed = set(job.failed_rows)
        for index, moment in future:
            if index not in failed and moment > self._row_utc(job, index):
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
        rows, keys = job.rows, job.case_keys
        if rows is None or keys is None:
            return
        # Hot loop: an index entry per note; the Note itself is built only when someone looks.
        failed_set = set(failed[bisect.bisect_left(failed, start) :]) if failed else ()
        if job.note_number < 0:
            job.note_number = len(self._note_jobs)
            self._note_jobs.append(job)
        prefix = job.note_number << _ROW_BITS
        everything = self._notes
        by_case = self._notes_by_case
        by_ref = self._notes_by_ref
        for index in range(start, upto):
            if index in failed_set:
                continue
            entry = prefix | index
            everything.append(entry)
            key = keys[index]
            same_case = by_case.get(key)
            if same_case is None:
                by_case[key] = [entry]
            else:
                same_case.append(entry)
            ref = rows[index].get("externalRef")
            if ref is not None:
                same_ref = by_ref.get(ref)
                if same_ref is None:
                    by_ref[ref] = [entry]
                else:
                    same_ref.append(entry)

    def _note_of(self, entry: _NoteEntry) -> Note:
        if entry < 0:
            return self._direct_notes[-1 - entry]
        job = self._note_jobs[entry >> _ROW_BITS]
        index = entry & ((1 << _ROW_BITS) - 1)
        rows, keys, dates = job.rows, job.case_keys, job.event_dates
        if rows is None or keys is None or dates is None:  # pragma: no cover - indexed with rows
            raise RuntimeError("ingestion note without row data")
        row = rows[index]
        processed_at = self._row_utc(job, index)
        return Note(
            id=uuid.UUID(int=(job.id.int ^ ((index + 1) * _SPREAD)) & _MASK128, version=4),
            case_id=keys[index],
            partner_id=job.partner.id,
            description=row["description"],
            event_date=dates[index] or processed_at,
            created_at=processed_at,
            external_ref=row.get("externalRef"),
            job_id=job.id,
        )

    def _store_note(self, note: Note) -> None:
        entry = -1 - len(self._direct_notes)
        self._direct_notes.append(note)
        self._notes.append(entry)
        self._notes_by_case.setdefault(note.case_id, []).append(entry)
        if note.external_ref is not None:
            self._notes_by_ref.setdefault(note.external_ref, []).append(entry)

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
        if type(document) is not dict:
            return ApiProblem.validation(["body: must be a JSON object"])
        problems = [f"{name}: unknown field" for name in document if name not in _NOTE_FIELDS]
        text = document.get("description")
        if type(text) is not str:
            problems.append(
                "description: required" if text is None else "description: must be a string"
            )
        elif len(text) > MAX_DESCRIPTION_LENGTH:
            limit = MAX_DESCRIPTION_LENGTH
            problems.append(f"description: must be at most {limit} characters (got {len(text)})")
        elif not text or text.isspace():
            problems.append("description: must not be empty")
        when = document.get("eventDate")
        moment: datetime | None = None
        if when is not None:
            if type(when) is not str:
                problems.append("eventDate: must be an ISO 8601 date-time string or null")
            else:
                moment = parse_datetime(when)
                if moment is None:
                    problems.append("eventDate: not a valid ISO 8601 date-time")
                elif moment > utcnow:
                    problems.append("eventDate: must not be in the future")
        if problems or type(text) is not str:
            return ApiProblem.validation(problems)
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
            self._store_note(note)
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
        number = self._user_ids[partner.id] - 999
        address = f"Emulatorvej {number}"
        return {
            "id": str(partner.id),
            "companyName": partner.name,
            "logoUrl": None,
            "companyRegistrationNumber": f"DK{40000000 + number}",
            "vatNumber": f"DK{40000000 + number}",
            "address": address,
            "zipCode": "2100",
            "city": "Copenhagen",
            "state": None,
            "country": "Denmark",
            "officeEmail": f"office{number}@partner.example",
            "officePhone": f"+45 7000 {number:04d}",
            "invoiceEmail": f"invoice{number}@partner.example",
            "billingContact": "Emulated Billing",
            "invoiceCurrency": None,
            "commissionType": 0,
            "preLegalRevenueShare": 0.4,
            "legalRevenueShare": 0.2,
            "verifiedProfile": True,
            "fullAddress": f"{address}, 2100 Copenhagen, Denmark",
            "surveyCadenceMode": 0,
        }

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
        selected: list[_NoteEntry]
        if case_id is not None:
            selected = self._notes_by_case.get(str(case_id).lower(), [])
            if external_ref is not None:
                notes = [self._note_of(e) for e in selected]
                return [self.note_record(n) for n in notes if n.external_ref == external_ref]
        elif external_ref is not None:
            selected = self._notes_by_ref.get(external_ref, [])
        else:
            selected = self._notes
        return [self.note_record(self._note_of(e)) for e in selected]

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
        result = []
        for job in self._jobs.values():
            view = job.view(now)
            result.append(
                {
                    "jobId": str(job.id),
                    "partnerId": str(job.partner.id),
                    "status": int(view.status),
                    "rowsTotal": view.rows_total,
                    "rowsSucceeded": view.rows_succeeded,
                    "rowsFailed": view.rows_failed,
                    "idempotencyKey": job.idempotency_key,
                    "createdAt": job.created_at,
                    "startedAt": job.start,
                    "processingAt": job.proc_start,
                    "finishedAt": job.end,
                    "multiplier": job.multiplier,
                    "slowPath": job.slow_path,
                    "vanished": job.vanish_at is not None and now >= job.vanish_at,
                }
            )
        return result

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


def case_reference(case_id: str) -> str:
    """A stable human-readable case reference derived from the case id."""
    return "DEB-" + case_id.replace("-", "")[:8].upper()


def _type_problem(index: int, value: object) -> str:
    if value is None:
        return f"rows[{index}].type: required"
    return f"rows[{index}].type: must be an integer"
