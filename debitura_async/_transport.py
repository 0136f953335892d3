"""The transport seam: one method from (method, URL, headers, body) to (status, headers, body).

Like httpx's ``BaseTransport``, a transport knows nothing of the API: no auth, retries, budget or
decoding (those stay in :class:`~debitura_async.DebituraClient`). :class:`AiohttpTransport` is the
real one; it owns the aiohttp session, switches off aiohttp's hidden re-send of idempotent
requests, never follows redirects, caps what it reads (after decompression, which it does itself
in bounded steps), and translates aiohttp/asyncio/OS failures into
:mod:`debitura_async.errors` at exactly one place. :class:`MockTransport` answers from a function,
for unit tests of the client and the pipeline without sockets.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from .errors import (
    APIStatusError,
    ConnectError,
    DebituraError,
    DecodeError,
    RemoteProtocolError,
    RequestTimeout,
    ResponseTooLargeError,
    TLSError,
    TransportError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "MockTransport",
    "Response",
    "Transport",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""Debitura's answers are under a kilobyte; 4 MiB leaves room for long case timelines."""
_CHUNK: Final = 64 * 1024


@attrs.frozen
class Response:
    """What a transport returns: the status, the headers (case-insensitive) and the whole body."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=lambda: CIMultiDictProxy(CIMultiDict()))
    body: bytes = b""


@runtime_checkable
class Transport(Protocol):
    """Sends one request and returns its response; raises only :class:`TransportError` (or
    :class:`DecodeError` for a body it could not read within its limits)."""

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response: ...


class MockTransport:
    """A transport that calls ``handler(method, url, headers, body)`` (sync or async).

    >>> transport = MockTransport(lambda m, u, h, b: Response(200, body=b'{}'))
    """

    def __init__(
        self,
        handler: Callable[
            [str, str, Mapping[str, str], bytes | None], Response | Awaitable[Response]
        ],
    ) -> None:
        self._handler = handler

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        result = self._handler(method, url, headers, body)
        if isinstance(result, Response):
            return result
        return await result

    async def aclose(self) -> None:
        return None


class _Inflater:
    """Bounded decompression of one response body: never more than ``limit + 1`` bytes out."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._limit = limit
        self._out = bytearray()
        self._encoding = encoding
        self._d: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._d = zlib.decompressobj(zlib.MAX_WBITS)  # raw deflate is retried in _feed
        elif encoding not in ("", "identity"):
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")

    @property
    def over(self) -> bool:
        return len(self._out) > self._limit

    def feed(self, chunk: bytes) -> None:
        if self._d is None:
            self._out += chunk[: self._limit + 1 - len(self._out)]
            return
        try:
            self._feed(chunk)
        except zlib.error:
            if self._encoding != "deflate" or self._out:
                raise
            # Some servers send raw deflate (no zlib header) as "deflate".
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            self._encoding = "raw-deflate"
            self._feed(chunk)

    def _feed(self, data: bytes) -> None:
        if self._d is None:  # pragma: no cover - feed() handles identity
            return
        while data and not self.over:
            self._out += self._d.decompress(data, self._limit + 1 - len(self._out))
            data = self._d.unconsumed_tail

    def result(self) -> bytes:
        if self._d is not None and not self.over:
            self._out += self._d.flush(self._limit + 1 - len(self._out))
        return bytes(self._out)


class AiohttpTransport:
    """The real transport over one :class:`aiohttp.ClientSession`.

    ``session``: yours (not closed here) or, by default, one made on first use inside the running
    loop with ``max_connections`` pooled connections. ``timeout``: per attempt.
    ``max_response_bytes``: the most a body may hold after decompression; a larger one raises
    :class:`~debitura_async.ResponseTooLargeError` as soon as the limit is passed, so neither
    memory nor the event loop pays for a huge or bomb-like body.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        max_connections: int = 64,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._max_connections = max_connections
        self.max_response_bytes = max_response_bytes
        self._closed = False

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this transport is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout or aiohttp.ClientTimeout(),
                raise_for_status=False,
                auto_decompress=False,
            )
            _disable_hidden_retry(self._session)
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        session = self._ensure_session()
        path = urlsplit(url).path
        failure: tuple[DebituraError, BaseException | None] | None = None
        options: dict[str, Any] = {} if self._timeout is None else {"timeout": self._timeout}
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers={**headers, "Accept-Encoding": "gzip, deflate"},
                allow_redirects=False,
                auto_decompress=False,
                **options,
            ) as response:
                status = response.status
                raw = await self._read(response, method=method, path=path)
                response_headers = CIMultiDictProxy(CIMultiDict(response.headers))
        except DebituraError as exc:
            failure = (exc, None)
        except Exception as exc:
            error = _translate(exc, method=method, path=path)
            if error is None:
                raise
            # aiohttp errors may carry request_info (with our headers, the key among them):
            # such a cause is dropped, and the error is raised outside this block so that it
            # does not keep the cause as its __context__ either.
            failure = (error, None if hasattr(exc, "request_info") else exc)
        if failure is not None:
            raise failure[0] from failure[1]
        return Response(status, response_headers, raw)

    async def _read(self, response: aiohttp.ClientResponse, *, method: str, path: str) -> bytes:
        limit = self.max_response_bytes
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        declared = response.content_length
        if declared is not None and not encoding:
            if declared > limit:
                raise ResponseTooLargeError(
                    limit=limit, method=method, path=path, status=response.status
                )
            # The parser delivers exactly the declared length (or raises, as the chunks would):
            # read it in one call; the chunk loop below is for bodies of unknown size or encoded.
            return await response.content.read()
        try:
            inflater = _Inflater(encoding, limit)
        except ValueError as exc:
            raise DecodeError(str(exc), method=method, path=path, status=response.status) from None
        received = 0
        try:
            async for chunk in response.content.iter_chunked(_CHUNK):
                received += len(chunk)
                inflater.feed(chunk)
                if inflater.over or received > limit:
                    raise ResponseTooLargeError(
                        limit=limit, method=method, path=path, status=response.status
                    )
                await asyncio.sleep(0)  # a long body never holds the loop
            data = inflater.result()
        except zlib.error as exc:
            raise DecodeError(
                f"body is not valid {encoding}: {exc}",
                method=method,
                path=path,
                status=response.status,
            ) from None
        if inflater.over:
            raise ResponseTooLargeError(
                limit=limit, method=method, path=path, status=response.status
            )
        return data


def _disable_hidden_retry(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp from silently sending an idempotent request twice.

    aiohttp re-sends a GET once by itself when a pooled connection turns out dead
    (``ServerDisconnectedError``/``ClientOSError``); that second attempt would bypass the
    client's retry policy, its request budget, its stats and its logging. Our own retries cover
    the case, counted and budgeted. There is no public switch (aio-libs/aiohttp#10790);
    ``aiohttp.test_utils.TestClient`` sets the same attribute.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def _translate(exc: BaseException, *, method: str, path: str) -> TransportError | None:
    """The one place aiohttp/asyncio failures become debitura_async errors (None: not ours)."""
    if isinstance(exc, APIStatusError | TransportError):
        return None
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError(f"TLS failure: {exc}", method=method, path=path)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError(f"timed out connecting: {exc}", method=method, path=path)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect: {exc}", method=method, path=path)
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is a TimeoutError too
        return RequestTimeout("no complete response in time", method=method, path=path)
    if isinstance(exc, aiohttp.ClientError | OSError):
        detail = str(exc) or type(exc).__name__
        return RemoteProtocolError(
            f"connection failed mid-request ({detail})", method=method, path=path
        )
    return None
