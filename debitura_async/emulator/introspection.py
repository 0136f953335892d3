"""Protection of the emulator's ``/_emulator/*`` endpoints (introspection and control).

Those endpoints show every partner's API key and can wipe stored notes, so over HTTP they answer
only a caller that

1. names the emulator by an address, not by some other DNS name: the ``Host`` header is
   ``localhost``, an IP literal or the host the emulator was bound to, with the port the request
   arrived on (a DNS-rebinding page has its own name in ``Host``: 403);
2. is not a browser page of another origin: an ``Origin`` header must be the emulator's own
   ``http://host:port`` (``Origin: null`` too is refused), and ``Sec-Fetch-Site``, when sent, must
   be ``same-origin`` or ``none`` (403);
3. sends the instance's random token in the ``X-Emulator-Token`` header (missing: 401, wrong:
   403; compared in constant time). A cross-origin page cannot read the token, and a simple
   ("no-preflight") form or ``text/plain`` POST cannot set the header;
4. sends no body of a form or ``text/plain`` media type with a state-changing method (415).

The in-process Python API (``Emulator.notes()``, ``.reset()`` ...) needs no token. The decision
is the pure function :func:`check_request`; :data:`guard` is the aiohttp middleware around it.

>>> check_request(method="GET", headers={"Host": "127.0.0.1:8080"}, token="t", port=8080,
...               bound_host="127.0.0.1").status
401
>>> check_request(method="GET", headers={"Host": "localhost:8080", "X-Emulator-Token": "t"},
...               token="t", port=8080, bound_host="127.0.0.1") is None
True
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from .core import ApiProblem

__all__ = [
    "BOUND_HOST_KEY",
    "TOKEN_HEADER",
    "TOKEN_KEY",
    "check_request",
    "guard",
    "is_protected",
    "new_token",
]

TOKEN_HEADER: Final = "X-Emulator-Token"  # noqa: S105 - a header name, not a secret
PREFIX: Final = "/_emulator"
TOKEN_KEY: Final = web.AppKey("debitura_emulator_token", str)
BOUND_HOST_KEY: Final = web.AppKey("debitura_emulator_bound_host", str)
_SIMPLE_BODY_TYPES: Final = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe base64)."""
    return secrets.token_urlsafe(32)


def is_protected(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _forbidden(message: str) -> ApiProblem:
    return ApiProblem.simple(403, "forbidden", "Forbidden", message)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (IPv6 bracketed) as (lower-case host without brackets, port or None)."""
    try:
        parts = urlsplit("//" + value.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host or parts.username is not None or parts.path or parts.query:
        return None
    return host.lower(), port


def _host_allowed(host: str, bound_host: str) -> bool:
    if host in ("localhost", bound_host.strip("[]").lower()):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_request(
    *,
    method: str,
    headers: Mapping[str, str],
    token: str,
    port: int,
    bound_host: str,
    content_type: str | None = None,
) -> ApiProblem | None:
    """The refusal of one ``/_emulator/*`` request (401/403/415), or None to let it through."""
    host = _split_host(headers.get("Host", ""))
    if host is None or not _host_allowed(host[0], bound_host) or host[1] not in (port, None):
        return _forbidden(
            "Host header must name the emulator by localhost or its address and port"
            " (DNS rebinding protection)"
        )
    origin = headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin.strip())
        own = _split_host(parts.netloc) if parts.scheme == "http" else None
        if own is None or not _host_allowed(own[0], bound_host) or (own[1] or 80) != port:
            return _forbidden(f"cross-origin request from {origin[:100]!r} refused")
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return _forbidden(f"cross-site browser request refused (Sec-Fetch-Site: {fetch_site})")
    sent = headers.get(TOKEN_HEADER)
    if not sent:
        return ApiProblem.simple(
            401,
            "unauthorized",
            "Unauthorized",
            f"/_emulator/ endpoints need the instance's token in the {TOKEN_HEADER} header",
        )
    if not hmac.compare_digest(sent.encode(), token.encode()):
        return _forbidden(f"wrong {TOKEN_HEADER}")
    if method.upper() not in _SAFE_METHODS and content_type in _SIMPLE_BODY_TYPES:
        return ApiProblem.simple(
            415,
            "unsupported_media_type",
            "UnsupportedMediaType",
            f"/_emulator/ endpoints take no {content_type} body",
        )
    return None


def _local_port(request: web.Request) -> int:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return int(sockname[1])
    return -1  # pragma: no cover - a TCP request always has a local address


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse unprotected ``/_emulator/*`` requests; pass everything else through."""
    if not is_protected(request.path):
        return await handler(request)
    content_type = request.content_type if request.headers.get("Content-Type") else None
    problem = check_request(
        method=request.method,
        headers=request.headers,
        token=request.app[TOKEN_KEY],
        port=_local_port(request),
        bound_host=request.app.get(BOUND_HOST_KEY, "127.0.0.1"),
        content_type=content_type,
    )
    if problem is None:
        return await handler(request)
    return web.Response(
        body=orjson.dumps(problem.body()),
        status=problem.status,
        content_type="application/json",
        charset="utf-8",
    )
