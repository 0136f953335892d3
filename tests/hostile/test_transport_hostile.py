"""Issue 10: redirects, huge bodies, gzip bombs and header injection, against real sockets."""

from __future__ import annotations

import gzip
import pickle
import struct
import tracemalloc
import uuid
import zlib

import pytest
from aiohttp import web

from debitura_async import (
    ConfigurationError,
    DebituraClient,
    DecodeError,
    IngestionJobRow,
    RedirectError,
    ResponseTooLargeError,
    ValidationError,
)

from ..integration.conftest import fast_retry
from ._servers import Recorder, serve

pytestmark = pytest.mark.anyio

KEY = "sk_live_hostile-test-KEY-4711"
CASE = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
JOB = {"jobId": str(uuid.uuid4()), "rowsQueued": 1}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_no_redirect_is_followed_and_the_key_never_leaves(status: int, method: str) -> None:
    elsewhere = Recorder()

    async def other_origin(request: web.Request) -> web.Response:
        await elsewhere.record(request)
        return web.json_response(JOB, status=202)

    async with serve({("*", "/{tail:.*}"): other_origin}) as other_url:

        async def redirect(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(
                status=status, headers={"Location": f"{other_url}/steal?token=abc#frag"}
            )

        async with serve({("*", "/{tail:.*}"): redirect}) as url:
            async with DebituraClient(KEY, base_url=url, retry=fast_retry()) as client:
                call = (
                    client.create_ingestion_job([IngestionJobRow(CASE, "Called.")])
                    if method == "POST"
                    else client.get_ingestion_job(uuid.uuid4())
                )
                with pytest.raises(RedirectError) as info:
                    await call
    assert elsewhere.requests == []  # neither the key nor the notes reached the other origin
    error = info.value
    assert error.status == status
    assert error.location == other_url  # the origin only: no path, no query
    assert "steal" not in str(error)
    assert "token" not in str(error)
    assert KEY not in repr(error)
    assert KEY.encode() not in pickle.dumps(error)
    assert client.stats.retries == 0  # a redirect is not retried


async def test_huge_body_is_cut_at_the_limit() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(800):  # 50 MiB, sent as a stream without Content-Length
            await response.write(chunk)
        return response

    async with (
        serve({("GET", "/me"): huge}) as url,
        DebituraClient(
            KEY, base_url=url, retry=fast_retry(0), max_response_bytes=64 * 1024
        ) as client,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await client.me()
    assert info.value.limit == 64 * 1024
    assert isinstance(info.value, DecodeError)


async def test_declared_huge_body_is_refused_before_reading() -> None:
    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (2 * 1024 * 1024), content_type="application/json")

    async with (
        serve({("GET", "/me"): declared}) as url,
        DebituraClient(
            KEY, base_url=url, retry=fast_retry(0), max_response_bytes=1024 * 1024
        ) as client,
    ):
        with pytest.raises(ResponseTooLargeError):
            await client.me()


_MIB = 1024 * 1024


def zero_bomb(encoding: str, size: int) -> bytes:
    """``size`` zero bytes (a multiple of 1 MiB) as a gzip or zlib stream, built in ~1 s.

    Compressing 1 GiB takes half a minute; every fully flushed 1 MiB of zeros compresses to the
    same bytes, so the stream is one such block repeated, then the format's trailer.
    """
    chunk = bytes(_MIB)
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = squeezer.compress(chunk) + squeezer.flush(zlib.Z_FULL_FLUSH)
    assert squeezer.compress(chunk) + squeezer.flush(zlib.Z_FULL_FLUSH) == block
    body = block * (size // _MIB) + squeezer.flush()
    if encoding == "gzip":
        crc = 0
        for _ in range(size // _MIB):
            crc = zlib.crc32(chunk, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + body + struct.pack("<II", crc, size & 0xFFFFFFFF)
    adler = 1
    for _ in range(size // _MIB):
        adler = zlib.adler32(chunk, adler)
    return b"\x78\xda" + body + struct.pack(">I", adler)


def test_the_bomb_is_a_valid_stream_of_zeros() -> None:
    assert gzip.decompress(zero_bomb("gzip", 3 * _MIB)) == bytes(3 * _MIB)
    assert zlib.decompress(zero_bomb("deflate", 3 * _MIB)) == bytes(3 * _MIB)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compression_bomb_is_stopped_without_inflating_it(encoding: str) -> None:
    compressed = zero_bomb(encoding, 1024 * _MIB)  # 1 GiB of zeros
    assert len(compressed) < 2 * 1024 * 1024

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            body=compressed,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )

    async with serve({("GET", "/me"): bomb}) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            tracemalloc.start()
            try:
                with pytest.raises(ResponseTooLargeError):
                    await client.me()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 64 * 1024 * 1024  # never near the 1 GiB it would inflate to


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_read(encoding: str) -> None:
    body = b'{"status": 2, "rowsTotal": 1, "rowsSucceeded": 1, "rowsFailed": 0}'
    if encoding == "gzip":
        data = gzip.compress(body)
    elif encoding == "deflate":
        data = zlib.compress(body)
    else:
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = squeezer.compress(body) + squeezer.flush()

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(
            body=data,
            headers={
                "Content-Encoding": "deflate" if encoding == "raw-deflate" else encoding,
                "Content-Type": "application/json",
            },
        )

    async with serve({("GET", "/ingestion-jobs/{id}"): compressed}) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            status = await client.get_ingestion_job(uuid.uuid4())
    assert status.rows_succeeded == 1


async def test_unknown_content_encoding_is_a_decode_error() -> None:
    async def weird(request: web.Request) -> web.Response:
        return web.Response(body=b"xx", headers={"Content-Encoding": "zstd"})

    async with serve({("GET", "/me"): weird}) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            with pytest.raises(DecodeError, match="zstd"):
                await client.me()


@pytest.mark.parametrize(
    "key", ["abc\r\nX-Evil: 1", "abc\ndef", "abc\0def", "a\x7fb", "naïve-✓", "", "x" * 256]
)
async def test_bad_idempotency_keys_are_refused_before_any_byte(key: str) -> None:
    recorder = Recorder()

    async def anything(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.json_response(JOB, status=202)

    async with serve({("*", "/{tail:.*}"): anything}) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            with pytest.raises(ValidationError) as info:
                await client.create_ingestion_job(
                    [IngestionJobRow(CASE, "Called.")], idempotency_key=key
                )
    assert recorder.requests == []
    assert info.value.problems[0].field == "Idempotency-Key"


@pytest.mark.parametrize("agent", ["agent\r\nX-Evil: 1", "agent\0", "agent\n", "agent-✓"])
def test_bad_user_agents_are_a_configuration_error(agent: str) -> None:
    with pytest.raises(ConfigurationError):
        DebituraClient(KEY, user_agent=agent)


@pytest.mark.parametrize("key", ["key\0", "key\x1b[31m", "kéy✓"])
def test_bad_api_keys_are_a_configuration_error(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DebituraClient(key)
    assert key not in str(info.value)


@pytest.mark.parametrize("value", [0, 100, -1, "1000000", 1.5, True])
def test_max_response_bytes_is_checked(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        DebituraClient(KEY, max_response_bytes=value)  # type: ignore[arg-type]
