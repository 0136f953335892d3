"""Hostile servers for tests: aiohttp.web apps on 127.0.0.1 that answer as no honest API would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve(routes: dict[tuple[str, str], Handler]) -> AsyncIterator[str]:
    """Run an app with these (method, path) routes on a free loopback port; yield its base URL."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Recorder:
    """Records every request a server got (method, path, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    async def record(self, request: web.Request) -> None:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))


class FakeDebitura:
    """A minimal ingestion API whose answers a test can falsify.

    Jobs finish ``duration`` seconds after they are accepted. ``job_id_for(n)`` picks the job id
    of the n-th accepted POST (repeat one to play a caching proxy); ``queued(rows)`` what
    ``rowsQueued`` says; ``status_for(job, done)`` the GET body.
    """

    def __init__(self, *, duration: float = 0.02) -> None:
        import asyncio
        import uuid

        self._loop_time = asyncio.get_running_loop().time
        self._uuid4 = uuid.uuid4
        self.duration = duration
        self.posts = 0
        self.gets = 0
        self.jobs: dict[str, tuple[int, float]] = {}
        self.job_id_for: Callable[[int], str] = lambda n: str(self._uuid4())
        self.queued: Callable[[int], int] = lambda rows: rows
        self.status_for: Callable[[int, bool], dict[str, int]] = lambda rows, done: {
            "status": 2 if done else 1,
            "rowsTotal": rows,
            "rowsSucceeded": rows if done else 0,
            "rowsFailed": 0,
        }

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("POST", "/ingestion-jobs"): self._post,
            ("GET", "/ingestion-jobs/{job_id}"): self._get,
        }

    async def _post(self, request: web.Request) -> web.Response:
        import orjson

        body = orjson.loads(await request.read())
        rows = len(body["rows"])
        job_id = self.job_id_for(self.posts)
        self.posts += 1
        self.jobs.setdefault(job_id, (rows, self._loop_time()))
        return web.json_response({"jobId": job_id, "rowsQueued": self.queued(rows)}, status=202)

    async def _get(self, request: web.Request) -> web.Response:
        self.gets += 1
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": "not found"}, status=404)
        rows, accepted_at = job
        done = self._loop_time() - accepted_at >= self.duration
        return web.json_response(self.status_for(rows, done))
