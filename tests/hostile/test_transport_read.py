"""Issue 18: a body with a Content-Length (and no Content-Encoding) is read in one call, any
other body in bounded chunks. Both keep the same limits and errors; these servers lie about
the length at the byte level (a raw asyncio server on 127.0.0.1, no HTTP library to tidy up
what they send). Every outcome here is the one the chunk loop alone gave before (the same
tests, run against it, pass)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from debitura_async import RemoteProtocolError, ResponseTooLargeError
from debitura_async._transport import AiohttpTransport

pytestmark = pytest.mark.anyio

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[str]:
    """Answers every request by running ``script`` on the connection, then closes it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await script(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/me"
    finally:
        server.close()
        await server.wait_closed()


def head(length: int | None, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sends(*parts: bytes, pause: float = 0.0) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)

    return script


async def get(url: str, limit: int = 1024) -> bytes:
    transport = AiohttpTransport(max_response_bytes=limit)
    try:
        response = await transport.send("GET", url, {}, None)
    finally:
        await transport.aclose()
    return response.body


@pytest.mark.parametrize("size", [0, 1, 1000, 1024])
async def test_a_declared_body_within_the_limit_is_read_whole(size: int) -> None:
    body = bytes(range(256)) * 4
    async with raw_server(sends(head(size), body[:size])) as url:
        assert await get(url) == body[:size]


async def test_a_declared_body_over_the_limit_is_refused_before_its_bytes() -> None:
    sent = asyncio.Event()

    async def headers_only(writer: asyncio.StreamWriter) -> None:
        writer.write(head(1025))
        await writer.drain()
        await asyncio.sleep(5)  # the body never comes: the client must not wait for it
        sent.set()

    async with raw_server(headers_only) as url:
        with pytest.raises(ResponseTooLargeError) as info:
            await asyncio.wait_for(get(url), 2)
    assert (info.value.limit, info.value.method, info.value.path) == (1024, "GET", "/me")
    assert not sent.is_set()


async def test_a_body_shorter_than_declared_is_a_protocol_error() -> None:
    async with raw_server(sends(head(100), b'{"cut":')) as url:
        with pytest.raises(RemoteProtocolError) as info:
            await get(url)
    assert (info.value.method, info.value.path) == ("GET", "/me")


async def test_bytes_past_the_declared_length_are_not_the_body() -> None:
    async with raw_server(sends(head(2), b"{}", b"x" * 5000, pause=0.05)) as url:
        assert await get(url) == b"{}"
    # Garbage in the same segment as the body: aiohttp's parser refuses the whole answer.
    async with raw_server(sends(head(2), b"{}" + b"x" * 5000)) as url:
        with pytest.raises(RemoteProtocolError, match="Bad status line"):
            await get(url)


async def test_a_declared_body_arriving_in_pieces_is_read_whole() -> None:
    body = b"[" + b"1," * 40_000 + b"1]"
    pieces = [body[i : i + 7000] for i in range(0, len(body), 7000)]
    async with raw_server(sends(head(len(body)), *pieces, pause=0.001)) as url:
        assert await get(url, limit=len(body)) == body


async def test_an_undeclared_body_is_still_read_in_chunks_and_capped() -> None:
    closing = ("Connection: close",)
    async with raw_server(sends(head(None, *closing), b"y" * 1024)) as url:
        assert await get(url) == b"y" * 1024
    async with raw_server(sends(head(None, *closing), b"y" * 1025)) as url:
        with pytest.raises(ResponseTooLargeError):
            await get(url)


async def test_identity_encoding_takes_the_chunk_path_with_its_limit() -> None:
    extra = ("Content-Encoding: identity",)
    async with raw_server(sends(head(8, *extra), b"12345678")) as url:
        assert await get(url) == b"12345678"
    async with raw_server(sends(head(1025, *extra), b"z" * 1025)) as url:
        with pytest.raises(ResponseTooLargeError):
            await get(url)
