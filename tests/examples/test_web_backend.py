"""Issue 12: the web-backend example, driven over HTTP by 200 concurrent requests.

The emulator runs in another process; the app holds one client for its life; every request
submits a batch, gets its job id at once, then awaits the outcome through the app.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from debitura_async import DebituraClient, PollPolicy
from debitura_async.emulator import EmulatorConfig, EmulatorProcess

from ..integration.conftest import fast_retry, no_leaked_tasks

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_backend.py"
SCALE = 50.0


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_backend_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorProcess]:
    async with EmulatorProcess(EmulatorConfig(time_scale=SCALE, seed=12)) as emu:
        yield emu


async def serve_app(
    app: web.Application, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def client_factory(emu: EmulatorProcess, scale: float) -> Callable[[], DebituraClient]:
    return lambda: DebituraClient(
        emu.api_key,
        base_url=emu.url,
        retry=fast_retry(),
        polling=PollPolicy().scaled(scale),
        max_connections=32,
    )


def rows_for(emu: EmulatorProcess, i: int, n: int) -> list[dict[str, Any]]:
    cases = emu.case_ids
    return [
        {"type": 0, "caseId": str(cases[(i + j) % len(cases)]), "description": f"req{i} n{j}"}
        for j in range(n)
    ]


async def one_request(
    http: aiohttp.ClientSession, url: str, emu: EmulatorProcess, i: int
) -> dict[str, Any]:
    async with http.post(f"{url}/batches", json={"rows": rows_for(emu, i, 20)}) as response:
        assert response.status == 202, await response.text()
        job_id = (await response.json())["jobId"]
    while True:
        async with http.get(f"{url}/batches/{job_id}", params={"wait": "30"}) as response:
            body: dict[str, Any] = await response.json()
            if response.status == 200:
                return body
            assert response.status == 202, body


async def test_200_concurrent_requests_share_the_polls(emulator: EmulatorProcess) -> None:
    example = load_example()
    app = example.create_app(client_factory(emulator, SCALE))
    runner, url = await serve_app(app)
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            outcomes = await asyncio.gather(
                *(one_request(http, url, emulator, i) for i in range(200))
            )
        client: DebituraClient = app[example.CLIENT]
        polls, posts = client.stats.gets, client.stats.posts
    finally:
        await runner.cleanup()
    assert [o["status"] for o in outcomes] == ["COMPLETED"] * 200
    assert posts == 200
    # 200 submissions at once reach the server in an order the client cannot know, behind 8
    # workers: finding which of them run costs polls (the planner's deep-queue gap, issue 13:
    # tests/unit/test_polling_scenarios.py). Measured 2026-12-02 on 2 cores: 2.4-4.4 polls a job
    # run alone (30 runs), ~2.4 inside the full suite; 3 s polling per caller costs ~15 (P6).
    # The 2.2 this asserted at first held only on a slower machine.
    assert polls / 200 <= 5.0, f"{polls / 200:.2f} polls per job"
    assert await emulator.note_count() == 200 * 20
    assert no_leaked_tasks() == []


async def test_shutdown_with_jobs_in_flight_leaves_them_resumable() -> None:
    example = load_example()
    slow = EmulatorConfig(time_scale=2.0, seed=13)
    async with EmulatorProcess(slow) as emu:
        app = example.create_app(client_factory(emu, 2.0))
        runner, url = await serve_app(app, shutdown_timeout=0.2)
        async with aiohttp.ClientSession() as http:
            job_ids = []
            for i in range(5):
                async with http.post(f"{url}/batches", json={"rows": rows_for(emu, i, 200)}) as r:
                    job_ids.append(uuid.UUID((await r.json())["jobId"]))
            waits = [
                asyncio.ensure_future(http.get(f"{url}/batches/{j}", params={"wait": "30"}))
                for j in job_ids
            ]
            await asyncio.sleep(0.2)
            cleanup = asyncio.ensure_future(runner.cleanup())  # the app stops mid-wait
            answers = await asyncio.gather(*waits, return_exceptions=True)
            await cleanup
        # A clear "shutting down" or a dropped connection, never a hang nor a wrong outcome.
        for answer in answers:
            if isinstance(answer, aiohttp.ClientResponse):
                assert answer.status == 503
                answer.release()
            else:
                assert isinstance(answer, aiohttp.ClientError)
        assert no_leaked_tasks() == []
        async with client_factory(emu, 2.0)() as client:
            statuses = await asyncio.gather(*(client.track(j).wait(timeout=60) for j in job_ids))
        assert all(s.rows_succeeded == 200 for s in statuses)
        assert await emu.note_count() == 5 * 200
