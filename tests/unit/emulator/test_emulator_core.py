"""Pure-core rules of the emulator: no event loop, explicit ``now`` and ``utcnow``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from debitura_async.emulator.config import EmulatorConfig, LatencyModel, RateLimits
from debitura_async.emulator.core import (
    Accepted,
    ApiProblem,
    EmulatorCore,
    JobFaults,
    JobStatus,
    JobView,
    parse_datetime,
)
from debitura_async.emulator.ratelimit import RateLimiter, _Sliding

UTCNOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# 1 worker, 1 s base, 0.1 s per row, no jitter: easy arithmetic.
SIMPLE = LatencyModel(workers=1, base=1.0, per_row=0.1, jitter=0.0)


def make_core(**overrides: Any) -> EmulatorCore:
    settings: dict[str, Any] = {
        "latency": SIMPLE,
        "rate_limits": RateLimits.off(),
        "partners": 2,
        "cases_per_partner": 5,
    }
    settings.update(overrides)
    return EmulatorCore(EmulatorConfig(**settings))


def row(case: uuid.UUID | str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": 0, "caseId": str(case), "description": "Called the debtor"}
    base.update(fields)
    return base


def submit(
    core: EmulatorCore, rows: list[Any], *, now: float = 0.0, partner: int = 0, **kw: Any
) -> Accepted | ApiProblem:
    return core.submit_job(
        core.world.partners[partner], {"rows": rows}, now=now, utcnow=UTCNOW, **kw
    )


def accepted(result: Accepted | ApiProblem) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def problems(result: Accepted | ApiProblem) -> list[str]:
    assert isinstance(result, ApiProblem), result
    assert result.status == 400
    return [message for _, message in result.business_errors]


def status(core: EmulatorCore, job_id: uuid.UUID, now: float, partner: int = 0) -> JobView:
    view = core.job_status(core.world.partners[partner], job_id, now=now)
    assert view is not None
    return view


# ---------------------------------------------------------------- validation (table-driven)


def _case() -> str:
    return str(make_core().world.partners[0].case_ids[0])


CASE = _case()

VALIDATION_CASES: list[tuple[str, object, list[str]]] = [
    ("body not an object", [1, 2], ["body: must be a JSON object"]),
    ("rows missing", {}, ["rows: required; at least one row is required"]),
    ("rows null", {"rows": None}, ["rows: required; at least one row is required"]),
    ("rows empty", {"rows": []}, ["rows: at least one row is required"]),
    ("rows not array", {"rows": {"a": 1}}, ["rows: must be an array"]),
    (
        "too many rows",
        {"rows": [row(CASE)] * 1001},
        ["rows: batch limit exceeded (1001 rows; at most 1000)"],
    ),
    (
        "unknown top-level field",
        {"rows": [row(CASE)], "extra": 1},
        ["extra: unknown field"],
    ),
    ("row not object", {"rows": [row(CASE), "x"]}, ["rows[1]: must be a JSON object"]),
    (
        "unsupported type",
        {"rows": [row(CASE, type=1)]},
        ["rows[0].type: event type 1 is not currently supported (only 0 = Note)"],
    ),
    ("type missing", {"rows": [{"caseId": CASE, "description": "x"}]}, ["rows[0].type: required"]),
    ("type string", {"rows": [row(CASE, type="0")]}, ["rows[0].type: must be an integer"]),
    ("type bool", {"rows": [row(CASE, type=False)]}, ["rows[0].type: must be an integer"]),
    ("type float", {"rows": [row(CASE, type=0.0)]}, ["rows[0].type: must be an integer"]),
    ("caseId not uuid", {"rows": [row("123")]}, ["rows[0].caseId: not a valid UUID"]),
    (
        "caseId braces",
        {"rows": [row("{" + CASE + "}")]},
        ["rows[0].caseId: not a valid UUID"],
    ),
    ("caseId missing", {"rows": [{"type": 0, "description": "x"}]}, ["rows[0].caseId: required"]),
    ("caseId number", {"rows": [row(CASE, caseId=5)]}, ["rows[0].caseId: must be a UUID string"]),
    (
        "description missing",
        {"rows": [{"type": 0, "caseId": CASE}]},
        ["rows[0].description: required for Note events"],
    ),
    (
        "description null",
        {"rows": [row(CASE, description=None)]},
        ["rows[0].description: required for Note events"],
    ),
    (
        "description empty",
        {"rows": [row(CASE, description="")]},
        ["rows[0].description: must not be empty"],
    ),
    (
        "description blank",
        {"rows": [row(CASE, description="  \t")]},
        ["rows[0].description: must not be empty"],
    ),
    (
        "description too long",
        {"rows": [row(CASE, description="x" * 10_001)]},
        ["rows[0].description: must be at most 10000 characters (got 10001)"],
    ),
    (
        "description number",
        {"rows": [row(CASE, description=7)]},
        ["rows[0].description: must be a string"],
    ),
    (
        "eventDate garbage",
        {"rows": [row(CASE, eventDate="yesterday")]},
        ["rows[0].eventDate: not a valid ISO 8601 date-time"],
    ),
    (
        "eventDate number",
        {"rows": [row(CASE, eventDate=20260101)]},
        ["rows[0].eventDate: must be an ISO 8601 date-time string"],
    ),
    (
        "externalRef number",
        {"rows": [row(CASE, externalRef=5)]},
        ["rows[0].externalRef: must be a string or null"],
    ),
    (
        "unknown row field",
        {"rows": [row(CASE, note="x")]},
        ["rows[0].note: unknown field"],
    ),
    (
        "one entry per problem, with row index",
        {"rows": [row(CASE), row(CASE), row(CASE), row("nope", description="")]},
        ["rows[3].caseId: not a valid UUID", "rows[3].description: must not be empty"],
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"),
    [pytest.param(doc, exp, id=name) for name, doc, exp in VALIDATION_CASES],
)
def test_invalid_batches_are_400_naming_row_and_field(
    document: object, expected: list[str]
) -> None:
    core = make_core()
    result = core.submit_job(core.world.partners[0], document, now=0.0, utcnow=UTCNOW)
    assert problems(result) == expected
    assert core.stats(0.0)["jobs_created"] == 0


def test_validation_error_body_is_api_error_response_dto() -> None:
    result = submit(make_core(), [row("nope")])
    assert isinstance(result, ApiProblem)
    assert result.body() == {
        "error": "validation_error",
        "message": "rows[0].caseId: not a valid UUID",
        "businessErrors": [
            {
                "type": "ValidationError",
                "message": "rows[0].caseId: not a valid UUID",
                "solutionUrl": None,
            }
        ],
    }


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"eventDate": None, "externalRef": None},
        {"eventDate": "2026-02-01T09:30:00Z", "externalRef": "CRM-1"},
        {"eventDate": "2026-02-01T09:30:00.1234567+01:00"},
        {"eventDate": "2026-02-01T09:30:00"},
        {"description": "x" * 10_000},
    ],
)
def test_valid_rows_are_accepted(fields: dict[str, Any]) -> None:
    core = make_core()
    result = accepted(submit(core, [row(core.world.partners[0].case_ids[0], **fields)]))
    assert result.rows_queued == 1


def test_uppercase_case_id_is_the_same_case() -> None:
    core = make_core(latency=LatencyModel.zero())
    case = core.world.partners[0].case_ids[0]
    job = accepted(submit(core, [row(str(case).upper())]))
    assert status(core, job.job_id, 0.0).rows_succeeded == 1


def test_exactly_1000_rows_is_allowed() -> None:
    core = make_core(latency=LatencyModel.zero())
    case = core.world.partners[0].case_ids[0]
    job = accepted(submit(core, [row(case)] * 1000))
    assert job.rows_queued == 1000


# ---------------------------------------------------------------- per-row outcomes


def test_row_outcomes_unknown_case_other_partner_and_future_date_fail() -> None:
    core = make_core(latency=LatencyModel.zero())
    mine = core.world.partners[0].case_ids[0]
    theirs = core.world.partners[1].case_ids[0]
    future = (UTCNOW + timedelta(days=1)).isoformat()
    rows = [
        row(mine),
        row(uuid.uuid4()),
        row(theirs),
        row(mine, eventDate=future),
        row(mine, externalRef="ok"),
    ]
    job = accepted(submit(core, rows))
    view = status(core, job.job_id, 0.0)
    assert view == JobView(
        status=JobStatus.COMPLETED_WITH_ERRORS, rows_total=5, rows_succeeded=2, rows_failed=3
    )
    notes = core.notes(0.0)
    assert [n["caseId"] for n in notes] == [str(mine), str(mine)]
    assert notes[1]["externalRef"] == "ok"


def test_event_date_is_judged_at_processing_time_not_submission() -> None:
    # Processing of the single row happens at model t = 1 + 0.1 = 1.1 s -> real 1.1 s after
    # submission with time_scale 1, so an eventDate 0.5 s after submission is in the past by then.
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    soon = (UTCNOW + timedelta(seconds=0.5)).isoformat()
    later = (UTCNOW + timedelta(seconds=5)).isoformat()
    job = accepted(submit(core, [row(mine, eventDate=soon), row(mine, eventDate=later)]))
    view = status(core, job.job_id, 100.0)
    assert (view.rows_succeeded, view.rows_failed) == (1, 1)


def test_note_content_defaults_event_date_to_processing_time() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    accepted(
        submit(
            core,
            [
                row(mine, description="first", externalRef="A"),
                row(mine, description="dated", eventDate="2026-01-05T08:00:00+01:00"),
            ],
        )
    )
    first, dated = core.notes(100.0, case_id=mine)
    # row 0 of 2 is processed at 1 + 0.2 * 1/2 = 1.1 model s = real s (time_scale 1)
    assert first["createdAt"] == "2026-03-01T12:00:01.100Z"
    assert first["eventDate"] == first["createdAt"]
    assert first["description"] == "first"
    assert first["externalRef"] == "A"
    assert dated["eventDate"] == "2026-01-05T07:00:00.000Z"
    assert core.notes(100.0, external_ref="A") == [first]
    assert core.notes(100.0, case_id=mine, external_ref="missing") == []


# ---------------------------------------------------------------- lifecycle and latency


def test_lifecycle_queued_in_progress_completed() -> None:
    core = make_core()  # 1 worker
    mine = core.world.partners[0].case_ids[0]
    first = accepted(submit(core, [row(mine)] * 10, now=0.0))  # runs [0, 2]
    second = accepted(submit(core, [row(mine)] * 10, now=0.5))  # queued until 2, runs [2, 4]
    assert status(core, first.job_id, 0.5).status is JobStatus.IN_PROGRESS
    assert status(core, second.job_id, 0.5).status is JobStatus.QUEUED
    assert status(core, second.job_id, 1.99).status is JobStatus.QUEUED
    # rows processed evenly during [start + base, end] = [3, 4] for the second job
    assert status(core, second.job_id, 2.5) == JobView(
        status=JobStatus.IN_PROGRESS, rows_total=10, rows_succeeded=0, rows_failed=0
    )
    assert status(core, second.job_id, 3.5).rows_succeeded == 5
    assert status(core, second.job_id, 4.0).status is JobStatus.COMPLETED


def test_rows_failed_grow_while_in_progress() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    rows = [row(mine), row(uuid.uuid4())] * 5  # odd rows fail
    job = accepted(submit(core, rows))  # processing during [1, 2]
    seen = [status(core, job.job_id, t) for t in (1.0, 1.3, 1.61, 2.0)]
    assert [(v.rows_succeeded, v.rows_failed) for v in seen] == [(0, 0), (2, 1), (3, 3), (5, 5)]
    assert [v.status for v in seen][-1] is JobStatus.COMPLETED_WITH_ERRORS


@pytest.mark.parametrize(
    ("workers", "submits", "expected_starts"),
    [
        (1, [0.0, 0.0, 0.0], [0.0, 2.0, 4.0]),
        (2, [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]),
        (2, [0.0, 0.5, 5.0], [0.0, 0.5, 5.0]),
        (None, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ],
)
def test_worker_pool_is_fifo_and_bounded(
    workers: int | None, submits: list[float], expected_starts: list[float]
) -> None:
    core = make_core(latency=attrs.evolve(SIMPLE, workers=workers))
    mine = core.world.partners[0].case_ids[0]
    jobs = [accepted(submit(core, [row(mine)] * 10, now=t)) for t in submits]
    for job, start in zip(jobs, expected_starts, strict=True):
        assert status(core, job.job_id, start + 1e-9).status is JobStatus.IN_PROGRESS
        if start > 0:
            assert status(core, job.job_id, start - 1e-9).status is JobStatus.QUEUED


def test_duration_includes_jitter_from_seeded_rng() -> None:
    latency = LatencyModel(workers=None, base=1.0, per_row=0.025, jitter=2.0)

    def end_time(seed: int) -> float:
        core = make_core(latency=latency, seed=seed)
        mine = core.world.partners[0].case_ids[0]
        job = accepted(submit(core, [row(mine)] * 1000))
        lo, hi = 26.0, 28.0
        assert status(core, job.job_id, lo - 0.001).status is JobStatus.IN_PROGRESS
        assert status(core, job.job_id, hi).status is JobStatus.COMPLETED
        # bisect the completion time
        while hi - lo > 1e-6:
            mid = (lo + hi) / 2
            done = status(core, job.job_id, mid).status is JobStatus.COMPLETED
            lo, hi = (lo, mid) if done else (mid, hi)
        return hi

    assert end_time(1) == pytest.approx(end_time(1), abs=1e-5)
    assert end_time(1) != pytest.approx(end_time(2), abs=1e-3)


def test_zero_latency_is_terminal_immediately() -> None:
    core = make_core(latency=LatencyModel.zero())
    mine = core.world.partners[0].case_ids[0]
    job = accepted(submit(core, [row(mine)] * 1000, now=7.0))
    assert status(core, job.job_id, 7.0).status is JobStatus.COMPLETED
    assert core.note_count(7.0) == 1000


def test_job_failed_fault_processes_no_rows() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    job = accepted(submit(core, [row(mine)] * 3, job_faults=lambda: JobFaults(fail=True), now=0.0))
    assert status(core, job.job_id, 0.5).status is JobStatus.IN_PROGRESS
    assert status(core, job.job_id, 1.0) == JobView(
        status=JobStatus.FAILED, rows_total=3, rows_succeeded=0, rows_failed=0
    )
    assert core.note_count(10.0) == 0


def test_job_vanish_fault_answers_404_later_but_rows_still_land() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    faults = JobFaults(vanish_after=0.5)
    job = accepted(submit(core, [row(mine)], job_faults=lambda: faults))
    assert core.job_status(core.world.partners[0], job.job_id, now=0.4) is not None
    assert core.job_status(core.world.partners[0], job.job_id, now=0.5) is None
    assert core.note_count(10.0) == 1
    assert core.jobs(10.0)[0]["vanished"] is True


def test_job_faults_callback_is_not_used_for_invalid_batches() -> None:
    core = make_core()
    calls: list[int] = []

    def faults() -> JobFaults:
        calls.append(1)
        return JobFaults(fail=True)

    problems(submit(core, [row("bad")], job_faults=faults))
    assert calls == []


def test_other_partner_cannot_see_job_and_unknown_job_is_none() -> None:
    core = make_core(latency=LatencyModel.zero())
    mine = core.world.partners[0].case_ids[0]
    job = accepted(submit(core, [row(mine)]))
    assert core.job_status(core.world.partners[1], job.job_id, now=0.0) is None
    assert core.job_status(core.world.partners[0], uuid.uuid4(), now=0.0) is None


def test_advance_materialises_only_finished_jobs_and_partial_progress_on_introspection() -> None:
    core = make_core(latency=attrs.evolve(SIMPLE, workers=None))
    mine = core.world.partners[0].case_ids[0]
    accepted(submit(core, [row(mine)] * 10))  # processing [1, 2]
    core.advance(1.5)
    assert core._stats.notes == 0  # API requests only finish jobs
    assert core.note_count(1.5) == 5  # introspection also materialises running jobs
    assert core.note_count(1.7) == 7
    assert core.note_count(5.0) == 10
    assert len(core.notes(5.0)) == 10


def test_many_finished_jobs_leave_the_pending_heap() -> None:
    core = make_core(latency=LatencyModel(workers=None, base=1.0, per_row=0.0, jitter=0.0))
    mine = core.world.partners[0].case_ids[0]
    for i in range(1000):
        accepted(submit(core, [row(mine)], now=float(i)))
    assert len(core._pending) == 1  # every job but the newest finished on a later submit
    core.advance(2000.0)
    assert core._pending == []
    assert core.note_count(2000.0) == 1000


def test_store_notes_off_keeps_counters_only() -> None:
    core = make_core(store_notes=False, latency=LatencyModel.zero())
    mine = core.world.partners[0].case_ids[0]
    accepted(submit(core, [row(mine), row(uuid.uuid4())]))
    assert core.note_count(0.0) == 1
    assert core.notes(0.0) == []
    note = core.create_note(
        core.world.partners[0], mine, {"description": "x"}, now=0.0, utcnow=UTCNOW
    )
    assert isinstance(note, dict)
    assert core.note_count(0.0) == 2
    assert core.notes(0.0) == []


# ---------------------------------------------------------------- idempotency


def test_same_key_same_body_replays_same_job() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    first = accepted(submit(core, [row(mine)], idempotency_key="k"))
    again = accepted(submit(core, [row(mine)], idempotency_key="k", now=5.0))
    assert again == Accepted(job_id=first.job_id, rows_queued=1, replayed=True)
    assert core.stats(5.0)["jobs_created"] == 1
    assert core.stats(5.0)["idempotent_replays"] == 1


def test_same_content_with_other_key_order_is_the_same_body() -> None:
    core = make_core()
    mine = str(core.world.partners[0].case_ids[0])
    first = accepted(
        submit(core, [{"type": 0, "caseId": mine, "description": "d"}], idempotency_key="k")
    )
    again = accepted(
        submit(core, [{"description": "d", "caseId": mine, "type": 0}], idempotency_key="k")
    )
    assert again.job_id == first.job_id


def test_same_key_other_body_is_422_idempotency_conflict() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    accepted(submit(core, [row(mine)], idempotency_key="k"))
    result = submit(core, [row(mine, description="other")], idempotency_key="k")
    assert isinstance(result, ApiProblem)
    assert result.status == 422
    assert result.business_errors[0][0] == "IdempotencyConflict"
    assert core.stats(0.0)["idempotency_conflicts"] == 1


def test_keys_are_scoped_per_partner() -> None:
    core = make_core()
    a = accepted(submit(core, [row(core.world.partners[0].case_ids[0])], idempotency_key="k"))
    b = accepted(
        submit(core, [row(core.world.partners[1].case_ids[0])], idempotency_key="k", partner=1)
    )
    assert a.job_id != b.job_id
    assert not b.replayed


def test_400_is_not_stored_so_a_fixed_request_may_reuse_the_key() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    problems(submit(core, [row(mine, description="")], idempotency_key="k"))
    fixed = accepted(submit(core, [row(mine)], idempotency_key="k"))
    assert not fixed.replayed


def test_idempotency_entries_expire_after_the_window() -> None:
    core = make_core(idempotency_window=60.0)
    mine = core.world.partners[0].case_ids[0]
    first = accepted(submit(core, [row(mine)], idempotency_key="k", now=0.0))
    assert accepted(submit(core, [row(mine)], idempotency_key="k", now=59.9)).replayed
    later = accepted(submit(core, [row(mine)], idempotency_key="k", now=60.0))
    assert not later.replayed
    assert later.job_id != first.job_id
    assert len(core._idempotency) == 1


@pytest.mark.parametrize(("length", "ok"), [(255, True), (256, False)])
def test_idempotency_key_length_limit(length: int, ok: bool) -> None:
    core = make_core()
    result = submit(core, [row(core.world.partners[0].case_ids[0])], idempotency_key="k" * length)
    if ok:
        accepted(result)
    else:
        assert problems(result) == ["Idempotency-Key: must be at most 255 characters (got 256)"]


# ---------------------------------------------------------------- rate windows


def test_rate_limiter_sliding_windows_table() -> None:
    limiter = RateLimiter(RateLimits(per_minute=3, per_hour=4, per_day=None))
    results = [limiter.admit("k", t) for t in (0.0, 1.0, 2.0, 3.0, 60.0, 61.0, 62.0)]
    assert results == [None, None, None, 57.0, None, 3539.0, 3538.0]


def test_rate_limiter_is_per_key_and_rejections_do_not_consume() -> None:
    limiter = RateLimiter(RateLimits(per_minute=1, per_hour=None, per_day=None))
    assert limiter.admit("a", 0.0) is None
    assert limiter.admit("b", 0.0) is None
    for t in (1.0, 2.0, 30.0):
        assert limiter.admit("a", t) == pytest.approx(60.0 - t)
    assert limiter.admit("a", 60.0) is None


def test_rate_limiter_off_admits_everything_and_keeps_no_state() -> None:
    limiter = RateLimiter(RateLimits.off())
    assert all(limiter.admit("k", 0.0) is None for _ in range(10_000))
    assert limiter.snapshot(0.0)["partitions"] == {}


def test_rate_limiter_memory_is_bounded_by_the_windows() -> None:
    limiter = RateLimiter(RateLimits(per_minute=100, per_hour=None, per_day=None))
    for i in range(10_000):
        limiter.admit("k", i * 0.7)
    minute = limiter._partitions["k"]["minute"]
    assert isinstance(minute, _Sliding)
    assert len(minute.segments) <= 6  # one counter per 10-second segment, whatever the traffic


def test_core_counts_rate_limited_requests() -> None:
    core = make_core(rate_limits=RateLimits(per_minute=1, per_hour=None, per_day=None))
    key = core.world.partners[0].api_key
    assert core.admit(key, 0.0) is None
    assert core.admit(key, 1.0) == 59.0
    assert core.stats(1.0)["rate_limited"] == 1


# ---------------------------------------------------------------- notes, /me, restart, reset


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, ["description: required"]),
        ({"description": ""}, ["description: must not be empty"]),
        ({"description": 3}, ["description: must be a string"]),
        (
            {"description": "x" * 10_001},
            ["description: must be at most 10000 characters (got 10001)"],
        ),
        (
            {"description": "x", "eventDate": "2026-03-02T00:00:00Z"},
            ["eventDate: must not be in the future"],
        ),
        ({"description": "x", "eventDate": "soon"}, ["eventDate: not a valid ISO 8601 date-time"]),
        ({"description": "x", "other": 1}, ["other: unknown field"]),
        ("text", ["body: must be a JSON object"]),
    ],
)
def test_create_note_400s(document: object, expected: list[str]) -> None:
    core = make_core()
    partner = core.world.partners[0]
    result = core.create_note(partner, partner.case_ids[0], document, now=0.0, utcnow=UTCNOW)
    assert isinstance(result, ApiProblem)
    assert problems(result) == expected


def test_create_note_404_for_a_case_that_is_not_yours() -> None:
    core = make_core()
    partner, other = core.world.partners
    for case in (other.case_ids[0], uuid.uuid4()):
        result = core.create_note(partner, case, {"description": "x"}, now=0.0, utcnow=UTCNOW)
        assert isinstance(result, ApiProblem)
        assert result.status == 404


def test_create_note_returns_note_dto_and_stores_it() -> None:
    core = make_core()
    partner = core.world.partners[0]
    case = partner.case_ids[1]
    body = {"description": "Phoned", "eventDate": "2026-02-27T10:00:00Z"}
    dto = core.create_note(partner, case, body, now=0.0, utcnow=UTCNOW)
    assert isinstance(dto, dict)
    assert set(dto) == {
        "id",
        "caseReference",
        "title",
        "description",
        "visibility",
        "createdAt",
        "eventDate",
        "createdBy",
    }
    assert dto["description"] == "Phoned"
    assert dto["eventDate"] == "2026-02-27T10:00:00.000Z"
    assert dto["createdAt"] == "2026-03-01T12:00:00.000Z"
    assert dto["createdBy"] == {"userId": 1000, "userName": partner.name}
    stored = core.notes(0.0, case_id=case)
    assert [n["id"] for n in stored] == [dto["id"]]
    assert stored[0]["jobId"] is None
    plain = core.create_note(partner, case, {"description": "y"}, now=0.0, utcnow=UTCNOW)
    assert isinstance(plain, dict)
    assert plain["eventDate"] is None


def test_me_describes_the_partner() -> None:
    core = make_core()
    partner = core.world.partners[1]
    me = core.me(partner)
    assert me["id"] == str(partner.id)
    assert me["companyName"] == partner.name


def test_restart_forgets_jobs_and_keys_but_keeps_processed_notes() -> None:
    core = make_core(rate_limits=RateLimits(per_minute=1, per_hour=None, per_day=None))
    partner = core.world.partners[0]
    mine = partner.case_ids[0]
    job = accepted(submit(core, [row(mine)] * 10, idempotency_key="k"))  # rows during [1, 2]
    assert core.admit(partner.api_key, 0.0) is None
    core.restart(1.5)
    assert core.job_status(partner, job.job_id, now=1.5) is None
    assert core.note_count(5.0) == 5  # rows processed before the restart stay
    assert core.admit(partner.api_key, 1.5) is None  # rate windows gone
    assert not accepted(submit(core, [row(mine)], idempotency_key="k", now=2.0)).replayed
    core.restart(3.0, keep_notes=False)
    assert core.notes(3.0) == []


def test_reset_returns_to_a_fresh_world_with_the_same_job_ids() -> None:
    core = make_core()
    mine = core.world.partners[0].case_ids[0]
    first = accepted(submit(core, [row(mine)]))
    core.reset()
    assert core.jobs(0.0) == []
    assert core.stats(0.0)["jobs_created"] == 0
    assert accepted(submit(core, [row(mine)])).job_id == first.job_id


def test_job_ids_are_reproducible_from_the_seed() -> None:
    def ids(seed: int) -> list[uuid.UUID]:
        core = make_core(seed=seed)
        mine = core.world.partners[0].case_ids[0]
        return [accepted(submit(core, [row(mine)])).job_id for _ in range(3)]

    assert ids(7) == ids(7)
    assert ids(7) != ids(8)


def test_stats_count_requests_by_endpoint_and_status() -> None:
    core = make_core()
    core.record_request("GET /me", 200)
    core.record_request("GET /me", 200)
    core.record_request("GET /me", "dropped")
    assert core.stats(0.0)["requests"] == {"GET /me": {"200": 2, "dropped": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01T09:30:00Z", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T09:30:00", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T10:30:00+01:00", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-13-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_parse_datetime(text: str, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected
