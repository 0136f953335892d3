"""Tests of notes_sync against the offline Debitura emulator, through the debitura_ fixtures."""

from __future__ import annotations

import uuid

import pytest
from notes_sync import log_call, sync_notes

from debitura_async.emulator import LatencyModel

pytestmark = pytest.mark.anyio


def crm_export(world, count, tag="crm"):
    return [
        {"id": f"{tag}-{i}", "debitura_case": str(world.case_ids[i % 5]), "text": f"Note {i}"}
        for i in range(count)
    ]


async def test_every_note_is_stored_once(debitura_client, debitura_world, debitura_inspector):
    records = crm_export(debitura_world, 25)

    report = await sync_notes(debitura_client, records, batch_size=10)

    assert sorted(report.stored) == sorted(r["id"] for r in records)
    assert report.failed == report.invalid == report.unresolved == ()
    notes = await debitura_inspector.notes()
    assert sorted(n["externalRef"] for n in notes) == sorted(r["id"] for r in records)


async def test_a_broken_record_is_reported_not_sent(debitura_client, debitura_world):
    records = [*crm_export(debitura_world, 2), {"id": "bad", "debitura_case": "not-a-uuid"}]

    report = await sync_notes(debitura_client, records)

    assert report.invalid == ("bad",)
    assert len(report.stored) == 2


async def test_notes_on_another_partners_case_fail(debitura_client, debitura_world):
    foreign = {
        "id": "x",
        "debitura_case": str(debitura_world.other_partner_case_ids[0]),
        "text": "not ours",
    }

    report = await sync_notes(debitura_client, [foreign])

    assert report.failed == ("x",)


async def test_server_errors_and_rate_limits_are_ridden_out(
    debitura_client, debitura_world, debitura_faults, debitura_inspector, debitura_requests
):
    await debitura_faults.http_error(503, endpoint="POST /ingestion-jobs", count=2)
    await debitura_faults.rate_limit(retry_after=0.05, endpoint="GET /ingestion-jobs/{jobId}")

    report = await sync_notes(debitura_client, crm_export(debitura_world, 12), batch_size=4)

    assert len(report.stored) == 12
    assert await debitura_inspector.requests("POST /ingestion-jobs") == {202: 3, 503: 2}
    assert debitura_requests.count(status=429) == 1
    assert debitura_requests.count(retries=True) == 3


async def test_a_lost_answer_does_not_duplicate_notes(
    debitura_client, debitura_world, debitura_faults, debitura_inspector
):
    # The job is created, then the connection drops before the 202 arrives: the retry carries
    # the same Idempotency-Key, so the emulator replays the first job instead of a second one.
    await debitura_faults.drop_after(endpoint="POST /ingestion-jobs")
    records = crm_export(debitura_world, 3, tag="lost")

    report = await sync_notes(debitura_client, records)

    assert len(report.stored) == 3
    assert await debitura_inspector.replays() == 1
    assert len(await debitura_inspector.jobs()) == 1
    for record in records:
        assert len(await debitura_inspector.notes(external_ref=record["id"])) == 1


@pytest.mark.debitura_config(time_scale=20.0, latency=LatencyModel(workers=1, base=1.0))
async def test_a_slow_debitura_still_syncs(debitura_client, debitura_world, debitura_inspector):
    report = await sync_notes(debitura_client, crm_export(debitura_world, 6), batch_size=2)

    assert len(report.stored) == 6
    jobs = await debitura_inspector.jobs()
    assert [j["status"] for j in jobs] == [2, 2, 2]  # all completed, one at a time


async def test_a_call_is_logged_on_the_case(debitura_client, debitura_world, debitura_inspector):
    case = debitura_world.case_ids[0]

    note_id = await log_call(debitura_client, case, "promised to pay on Friday")

    assert isinstance(note_id, uuid.UUID)
    await debitura_inspector.assert_note(case, "Call: promised to pay on Friday")
    assert debitura_world.references[case].startswith("DEB-")
