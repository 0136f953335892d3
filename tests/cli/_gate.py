"""A hostile gate between the CLI and the emulator (aiohttp.web on 127.0.0.1): it forwards every
request, or answers 429 with a Retry-After (``throttle``), or drops the connection (``down``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
from aiohttp import web

Mode = Literal["open", "throttle", "down"]


class Gate:
    def __init__(self, upstream: str, *, retry_after: float = 2.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode: Mode = "open"
        self.retry_after = retry_after
        self.url = ""
        self.refused = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "down":
            self.refused += 1
            assert request.transport is not None
            request.transport.close()  # the connection drops: "server unreachable"
            return web.Response(status=503)
        if self.mode == "throttle":
            self.refused += 1
            return web.json_response(
                {"error": "rate_limit_exceeded", "message": "slow down"},
                status=429,
                headers={"Retry-After": f"{self.retry_after:g}"},
            )
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            data = await answer.read()
            return web.Response(
                status=answer.status,
                body=data,
                content_type=answer.content_type,
            )


@contextlib.asynccontextmanager
async def open_gate(upstream: str, *, retry_after: float = 2.0) -> AsyncIterator[Gate]:
    gate = Gate(upstream, retry_after=retry_after)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gate._handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    port = server.sockets[0].getsockname()[1]
    gate.url = f"http://127.0.0.1:{port}"
    try:
        yield gate
    finally:
        await runner.cleanup()
