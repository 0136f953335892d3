"""``debitura_server`` overridden: the same fixtures over an emulator in a child process."""

from __future__ import annotations

import os

import pytest

from debitura_async import DebituraClient
from debitura_async.emulator import EmulatorProcess
from debitura_async.testing import DebituraWorld, FaultPlan, Inspector, ThreadedEmulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def debitura_server(debitura_emulator_process: EmulatorProcess) -> EmulatorProcess:
    return debitura_emulator_process


async def test_the_fixtures_work_over_a_child_process(
    debitura_server: EmulatorProcess,
    debitura_client: DebituraClient,
    debitura_world: DebituraWorld,
    debitura_faults: FaultPlan,
    debitura_inspector: Inspector,
) -> None:
    assert debitura_server.pid != os.getpid()
    await debitura_faults.http_error(503, endpoint="POST /ingestion-jobs")
    rows = debitura_world.rows(3, tag="p")
    handle = await debitura_client.submit(rows)
    await handle.wait(timeout=30)
    await debitura_inspector.assert_rows_stored_once(rows)
    assert await debitura_inspector.requests("POST /ingestion-jobs") == {202: 1, 503: 1}


async def test_a_session_child_process(debitura_session_emulator_process: ThreadedEmulator) -> None:
    emu = debitura_session_emulator_process
    assert emu.pid is not None
    assert emu.pid != os.getpid()
    async with DebituraClient(emu.api_key, base_url=emu.url) as client:
        me = await client.me()
    assert me.id == emu.partners[0].id
