"""The debitura_ fixtures in this project's own run (anyio's plugin), against real emulators."""

from __future__ import annotations

import uuid

import pytest

from debitura_async import DebituraClient, IngestionJobRow, ServerError
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel
from debitura_async.testing import (
    DebituraWorld,
    FaultPlan,
    Inspector,
    RequestLog,
    ThreadedEmulator,
)

pytestmark = pytest.mark.anyio

POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"


async def test_the_client_is_bound_to_the_tests_emulator(
    debitura_client: DebituraClient, debitura_emulator: Emulator, debitura_world: DebituraWorld
) -> None:
    assert debitura_client.base_url == debitura_emulator.url
    assert debitura_emulator.url.startswith("http://127.0.0.1:")
    me = await debitura_client.me()
    assert me.id == debitura_world.partner.id
    assert debitura_world.case_ids == debitura_emulator.case_ids
    assert set(debitura_world.references) >= set(debitura_world.other_partner_case_ids)
    assert debitura_world.partner.api_key not in repr(debitura_world)


async def test_faults_requests_and_replays(
    debitura_client: DebituraClient,
    debitura_world: DebituraWorld,
    debitura_faults: FaultPlan,
    debitura_inspector: Inspector,
    debitura_requests: RequestLog,
) -> None:
    await debitura_faults.drop_after(endpoint=POST)  # job created, its 202 lost: a replay
    await debitura_faults.rate_limit(retry_after=0.02, endpoint=GET)
    rows = debitura_world.rows(4, tag="f")
    handle = await debitura_client.submit(rows)
    await handle.wait(timeout=30)

    await debitura_inspector.assert_rows_stored_once(rows)
    assert await debitura_inspector.replays() == 1
    assert await debitura_inspector.counter("jobs_created") == 1
    assert (await debitura_inspector.requests(POST)) == {"dropped": 1, 202: 1}
    assert debitura_requests.statuses(POST) == [None, 202]
    assert debitura_requests.count(GET, status=429) == 1
    assert debitura_requests.count(retries=True) == 2
    assert len(await debitura_inspector.jobs()) == 1


async def test_latency_for_one_test(
    debitura_client: DebituraClient, debitura_faults: FaultPlan, debitura_requests: RequestLog
) -> None:
    await debitura_faults.latency(0.2, endpoint="GET /me", count=1)
    await debitura_client.me()
    await debitura_client.me()
    slow, fast = (e.elapsed for e in debitura_requests.events)
    assert slow >= 0.18
    assert fast < slow


async def test_an_exhausted_fault_surfaces(
    debitura_client: DebituraClient, debitura_faults: FaultPlan
) -> None:
    await debitura_faults.http_error(503, endpoint="GET /me", count=50)
    with pytest.raises(ServerError):
        await debitura_client.me()


async def test_assert_note_says_what_the_case_has(
    debitura_client: DebituraClient, debitura_world: DebituraWorld, debitura_inspector: Inspector
) -> None:
    case = debitura_world.case_ids[1]
    await debitura_client.add_case_note(case, "first")
    await debitura_inspector.assert_note(case, "first")
    with pytest.raises(AssertionError, match=r"found 0; the case has \['first'\]"):
        await debitura_inspector.assert_note(case, "second")
    with pytest.raises(AssertionError, match="stored 0 times"):
        await debitura_inspector.assert_rows_stored_once(
            [IngestionJobRow(case, "never sent", external_ref="nope")]
        )


@pytest.mark.debitura_config(latency=LatencyModel.zero(), partners=3, cases_per_partner=4)
async def test_the_marker_changes_this_tests_emulator(
    debitura_emulator: Emulator, debitura_emulator_config: EmulatorConfig
) -> None:
    assert debitura_emulator.config is debitura_emulator_config
    assert len(debitura_emulator.partners) == 3
    assert len(debitura_emulator.case_ids) == 4
    assert debitura_emulator.config.latency == LatencyModel.zero()


async def test_each_test_has_its_own_emulator(
    debitura_emulator: Emulator, debitura_inspector: Inspector
) -> None:
    assert await debitura_emulator.note_count() == 0
    assert await debitura_inspector.notes() == []


async def test_the_session_emulator_serves_tests_on_any_loop(
    debitura_session_emulator: ThreadedEmulator,
) -> None:
    world = DebituraWorld.of(debitura_session_emulator)
    inspector = await Inspector.start(debitura_session_emulator)
    tag = f"s{uuid.uuid4().hex[:6]}"
    async with DebituraClient(
        debitura_session_emulator.api_key, base_url=debitura_session_emulator.url
    ) as client:
        handle = await client.submit(world.rows(2, tag=tag))
        await handle.wait(timeout=30)
    await inspector.assert_rows_stored_once(world.rows(2, tag=tag))
    assert len(await inspector.notes()) == 2
    assert debitura_session_emulator.pid is None
    assert debitura_session_emulator.thread.is_alive()


async def test_helpers_refuse_what_they_cannot_do(
    debitura_inspector: Inspector, debitura_faults: FaultPlan
) -> None:
    with pytest.raises(KeyError, match="no such emulator counter"):
        await debitura_inspector.counter("requests")
    with pytest.raises(ValueError, match="unknown endpoint"):
        await debitura_faults.http_error(503, endpoint="GET /nope")
    with pytest.raises(ValueError, match="status"):
        await debitura_faults.http_error(404)
    with pytest.raises(ValueError, match="external_ref"):
        await debitura_inspector.assert_rows_stored_once([IngestionJobRow(uuid.uuid4(), "no ref")])
    assert debitura_faults.added == []
