"""The client's configuration pieces: timeouts, the key holder, URL and header checks.

Pure helpers of :class:`~debitura_async.DebituraClient`, kept apart so the client module holds
only the client.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import attrs

from . import _wire
from ._transport import Response
from .errors import (
    APIStatusError,
    ConfigurationError,
    ContradictoryResponseError,
    DebituraError,
    RedirectError,
    RowProblem,
    ValidationError,
    status_error_class,
)
from .models import IngestionJobAccepted, parse_uuid

__all__ = ["DEFAULT_TIMEOUT", "Timeout", "check_client_options", "error_for"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


@attrs.frozen(kw_only=True)
class Timeout:
    """Per-request time limits, in seconds (None: no limit).

    >>> Timeout(total=30.0, connect=5.0, read=20.0)
    Timeout(total=30.0, connect=5.0, read=20.0)

    ``connect`` bounds opening the TCP/TLS connection, ``read`` the wait for each chunk of the
    response, ``total`` one whole attempt including waiting for a free pooled connection.
    Retries get a fresh allowance.
    """

    total: float | None = 60.0
    connect: float | None = 10.0
    read: float | None = 30.0

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )


class _Secret:
    """Holds the API key; prints as asterisks wherever it ends up."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key cannot be pickled")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise ConfigurationError(f"base_url must not have a query or fragment: {base_url!r}")
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not carry credentials; pass api_key instead")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to non-loopback host {parts.hostname!r}: the API key would "
            "travel unencrypted; use https:// or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise ValidationError(
            [RowProblem(-1, field, f"{value!r} is not a valid UUID")], what="request"
        )
    return parsed


def _retry_reason(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status}"
    return "unreachable"


def _check_queued(accepted: IngestionJobAccepted, sent: int) -> None:
    if accepted.rows_queued != sent:
        raise ContradictoryResponseError(
            f"rowsQueued = {accepted.rows_queued}, but {sent} rows were sent",
            job_id=accepted.job_id,
            method="POST",
            path="/ingestion-jobs",
            status=202,
        )


def _origin_of(location: str | None) -> str | None:
    """The scheme://host[:port] of a Location header (never its path, query or credentials)."""
    if not location:
        return None
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(unparseable)"
    if not host:
        return "(same origin)"
    return f"{parts.scheme or '?'}://{host}" + (f":{port}" if port else "")


def _check_header_value(what: str, value: str) -> None:
    """A header value must be latin-1 text without control characters (CR, LF, NUL …)."""
    bad = next((c for c in value if (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F), None)
    if bad is not None:
        raise ConfigurationError(
            f"{what} contains the control character {bad!r}: a line break, NUL or other "
            "control character cannot go into an HTTP header"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} contains characters a header cannot carry") from None


_DEFAULT: Final = _Default()
DEFAULT_TIMEOUT: Final = Timeout()


def _whole(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")


def check_client_options(
    *,
    max_connections: object,
    max_response_bytes: object,
    transport: object,
    session: object,
    polling: object,
    max_job_age: object,
    user_agent: str | None,
) -> None:
    """The client's keyword options that need more than their type to be right."""
    from ._polling import PollPolicy  # noqa: PLC0415 - the planner is not needed at import

    _whole("max_connections", max_connections, 1)
    _whole("max_response_bytes", max_response_bytes, 1024)
    if transport is not None and session is not None:
        raise ConfigurationError("pass either session= or transport=, not both")
    if polling is not None and not isinstance(polling, PollPolicy):
        raise ConfigurationError(f"polling must be a PollPolicy, got {type(polling).__name__}")
    if max_job_age is not None and (
        isinstance(max_job_age, bool)
        or not isinstance(max_job_age, int | float)
        or not max_job_age > 0
    ):
        raise ConfigurationError(
            f"max_job_age must be a positive number or None, got {max_job_age!r}"
        )
    if user_agent is not None:
        _check_header_value("user_agent", user_agent)


def error_for(
    response: Response, *, method: str, path: str, job_id: uuid.UUID | None
) -> DebituraError | None:
    """The error an HTTP answer means (None for a 2xx): a redirect is never followed; an
    error status becomes its :class:`~debitura_async.APIStatusError` with the server's wait."""
    status = response.status
    if 200 <= status < 300:
        return None
    if status < 400:  # 1xx or 3xx: a redirect, or nothing this API sends
        return RedirectError(
            status=status,
            method=method,
            path=path,
            location=_origin_of(response.headers.get("Location")),
        )
    error_body = _wire.parse_error_body(response.body)
    retry_after = _wire.parse_retry_after(
        response.headers.get("Retry-After"), error_body, now=datetime.now(UTC)
    )
    cls = status_error_class(status, error_body)
    return cls(
        status=status,
        method=method,
        path=path,
        body=error_body,
        job_id=job_id,
        retry_after=retry_after,
    )
