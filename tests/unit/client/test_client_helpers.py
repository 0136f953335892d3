"""The client's pure helpers and construction rules (no session, no network)."""

from __future__ import annotations

import asyncio
import pickle
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from debitura_async._budget import DEFAULT_RATE_LIMITS, RateLimit, RequestBudget
from debitura_async._client_config import _check_base_url, _is_loopback, _Secret
from debitura_async._retry import RetryPolicy
from debitura_async._transport import _translate as _translate_transport_error
from debitura_async.client import (
    DEFAULT_BASE_URL,
    DebituraClient,
    Timeout,
)
from debitura_async.errors import (
    ConfigurationError,
    ConnectError,
    ErrorBody,
    RemoteProtocolError,
    RequestTimeout,
    ServerError,
    TLSError,
    TransportError,
)

KEY = "sk_live_s3cr3t-KEY-value"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBITURA_API_KEY", raising=False)
    monkeypatch.delenv("DEBITURA_BASE_URL", raising=False)


# -- base URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, not a bind address
        ("10.0.0.1", False),
        ("::", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("collectionpartner-api.debitura.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("url", "insecure", "expected"),
    [
        ("https://collectionpartner-api.debitura.com", False, DEFAULT_BASE_URL),
        ("https://collectionpartner-api.debitura.com/", False, DEFAULT_BASE_URL),
        ("https://example.com/api//", False, "https://example.com/api"),
        ("https://example.com:8443/v1", False, "https://example.com:8443/v1"),
        ("http://127.0.0.1:8080", False, "http://127.0.0.1:8080"),
        ("http://localhost:8080/", False, "http://localhost:8080"),
        ("http://[::1]:8080", False, "http://[::1]:8080"),
        ("http://emulator.example:8080", True, "http://emulator.example:8080"),
    ],
)
def test_check_base_url_accepts(url: str, insecure: bool, expected: str) -> None:
    assert _check_base_url(url, allow_insecure_http=insecure) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com", "must be an http(s) URL with a host"),
        ("https://", "must be an http(s) URL with a host"),
        ("example.com", "must be an http(s) URL with a host"),
        ("", "must be an http(s) URL with a host"),
        ("https://example.com?x=1", "must not have a query or fragment"),
        ("https://example.com/#top", "must not have a query or fragment"),
        ("https://user:hunter2@example.com", "must not carry credentials"),
        ("http://example.com", "refusing plain http:// to non-loopback host 'example.com'"),
        ("http://10.0.0.5:8080", "refusing plain http:// to non-loopback host '10.0.0.5'"),
        ("http://localhost.evil.example", "refusing plain http://"),
    ],
)
def test_check_base_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _check_base_url(url, allow_insecure_http=False)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", ["https://example.com?", "https://example.com#"])
def test_check_base_url_refuses_empty_query_or_fragment(url: str) -> None:
    with pytest.raises(ConfigurationError):
        _check_base_url(url, allow_insecure_http=False)


# -- construction ------------------------------------------------------------------------------


def test_no_api_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"no API key: .*DEBITURA_API_KEY"):
        DebituraClient()
    with pytest.raises(ConfigurationError, match="no API key"):
        DebituraClient("")


def test_empty_env_api_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBITURA_API_KEY", "")
    with pytest.raises(ConfigurationError, match="no API key"):
        DebituraClient()


@pytest.mark.parametrize("key", ["abc\ndef", "abc\r\ndef"])
def test_api_key_with_line_break_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="line break") as info:
        DebituraClient(key)
    assert key.strip() not in str(info.value)


@pytest.mark.parametrize("key", ["abc\n", "\nabc", "  abc\t"])
def test_api_key_surrounding_whitespace_is_trimmed(key: str) -> None:
    # a key read from a file usually ends with a newline: trim it rather than refuse it
    client = DebituraClient(key)
    assert client._api_key.reveal() == "abc"


@pytest.mark.parametrize("key", ["   ", "\t"])
def test_blank_api_key_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="no API key"):
        DebituraClient(key)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBITURA_API_KEY", KEY)
    client = DebituraClient()
    assert client._api_key.reveal() == KEY
    assert client.base_url == DEFAULT_BASE_URL


def test_explicit_api_key_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBITURA_API_KEY", "from-env")
    assert DebituraClient(" explicit ")._api_key.reveal() == "explicit"


def test_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBITURA_BASE_URL", "http://127.0.0.1:9000/")
    assert DebituraClient(KEY).base_url == "http://127.0.0.1:9000"
    assert DebituraClient(KEY, base_url="https://other.example").base_url == (
        "https://other.example"
    )


def test_remote_http_base_url_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEBITURA_BASE_URL", "http://debitura.example")
    with pytest.raises(ConfigurationError, match="refusing plain http://"):
        DebituraClient(KEY)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]
)
def test_http_to_loopback_is_allowed(url: str) -> None:
    assert DebituraClient(KEY, base_url=url).base_url == url


def test_http_to_remote_host_needs_the_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="use https:// or pass allow_insecure_http=True"):
        DebituraClient(KEY, base_url="http://debitura.example")
    client = DebituraClient(KEY, base_url="http://debitura.example", allow_insecure_http=True)
    assert client.base_url == "http://debitura.example"


def test_construction_defaults() -> None:
    client = DebituraClient(KEY)
    assert client.timeout == Timeout(total=60.0, connect=10.0, read=30.0)
    assert client.retry_policy == RetryPolicy()
    assert isinstance(client.budget, RequestBudget)
    assert client.budget.limits == DEFAULT_RATE_LIMITS
    assert client.max_connections == 64
    assert client._transport._session is None  # type: ignore[attr-defined]  # none before the loop runs


def test_construction_options() -> None:
    budget = RequestBudget([RateLimit(10, 1.0)])
    client = DebituraClient(
        KEY,
        timeout=5,
        retry=RetryPolicy(max_retries=2, initial_backoff=0.1),
        max_retries=7,
        budget=budget,
    )
    assert client.timeout == Timeout(total=5.0, connect=10.0, read=30.0)
    assert client.retry_policy == RetryPolicy(max_retries=7, initial_backoff=0.1)
    assert client.budget is budget
    assert DebituraClient(KEY, budget=None).budget is None


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="max_connections must be at least 1"):
        DebituraClient(KEY, max_connections=0)


def test_repr_never_shows_the_key() -> None:
    client = DebituraClient(KEY, base_url="http://127.0.0.1:8080")
    assert repr(client) == "DebituraClient(base_url='http://127.0.0.1:8080', api_key='***')"
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert KEY not in repr(vars(client))
    assert KEY not in repr(client._headers)


# -- _Secret -----------------------------------------------------------------------------------


def test_secret_hides_its_value() -> None:
    secret = _Secret(KEY)
    assert secret.reveal() == KEY
    assert repr(secret) == "'***'"
    assert str(secret) == "'***'"
    assert f"{secret}" == "'***'"
    assert KEY not in repr([secret, {"k": secret}])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


# -- Timeout -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "total", "connect", "read"),
    [
        (Timeout(), 60.0, 10.0, 30.0),
        (Timeout(total=30.0, connect=5.0, read=20.0), 30.0, 5.0, 20.0),
        (Timeout(total=None, connect=None, read=None), None, None, None),
    ],
)
def test_timeout_to_aiohttp(
    timeout: Timeout, total: float | None, connect: float | None, read: float | None
) -> None:
    converted = timeout.to_aiohttp()
    assert isinstance(converted, aiohttp.ClientTimeout)
    assert (converted.total, converted.sock_connect, converted.sock_read) == (total, connect, read)
    assert converted.connect is None  # pool waits are bounded by total only


# -- _translate_transport_error ----------------------------------------------------------------

_KEY = ConnectionKey(
    host="collectionpartner-api.debitura.com",
    port=443,
    is_ssl=True,
    ssl=True,
    proxy=None,
    proxy_auth=None,
    proxy_headers_hash=None,
)

_CASES: list[tuple[str, BaseException, type[TransportError], str]] = [
    (
        "certificate",
        aiohttp.ClientConnectorCertificateError(
            _KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
        ),
        TLSError,
        "TLS failure: ",
    ),
    (
        "ssl-handshake",
        aiohttp.ClientConnectorSSLError(_KEY, ssl.SSLError(1, "handshake failure")),
        TLSError,
        "TLS failure: ",
    ),
    (
        "connect-timeout",
        aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        ConnectError,
        "timed out connecting: Connection timeout to host",
    ),
    (
        "refused",
        aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "Connection refused")),
        ConnectError,
        "cannot connect: ",
    ),
    (
        "dns",
        aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "Name or service not known")),
        ConnectError,
        "cannot connect: ",
    ),
    (
        "read-timeout",
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        RequestTimeout,
        "no complete response in time",
    ),
    (
        "server-timeout",
        aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
        RequestTimeout,
        "no complete response in time",
    ),
    ("timeout", TimeoutError(), RequestTimeout, "no complete response in time"),
    (
        "disconnected",
        aiohttp.ServerDisconnectedError(),
        RemoteProtocolError,
        "connection failed mid-request (Server disconnected)",
    ),
    (
        "payload",
        aiohttp.ClientPayloadError("Response payload is not completed"),
        RemoteProtocolError,
        "connection failed mid-request (Response payload is not completed)",
    ),
    (
        "os-error",
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        RemoteProtocolError,
        "connection failed mid-request ([Errno 104] Connection reset by peer)",
    ),
    (
        "reset",
        ConnectionResetError(),
        RemoteProtocolError,
        "connection failed mid-request (ConnectionResetError)",
    ),
]


@pytest.mark.parametrize(
    ("exc", "cls", "message"), [c[1:] for c in _CASES], ids=[c[0] for c in _CASES]
)
def test_translate_transport_error(
    exc: BaseException, cls: type[TransportError], message: str
) -> None:
    error = _translate_transport_error(exc, method="POST", path="/ingestion-jobs")
    assert type(error) is cls
    assert (error.method, error.path) == ("POST", "/ingestion-jobs")
    assert str(error).startswith("POST /ingestion-jobs: " + message)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("not transport"),
        RuntimeError("boom"),
        KeyboardInterrupt(),
        asyncio.CancelledError(),
        ServerError(status=500, method="GET", path="/me", body=ErrorBody()),
        ConnectError("already ours", method="GET", path="/me"),
    ],
    ids=["ValueError", "RuntimeError", "KeyboardInterrupt", "Cancelled", "APIStatus", "ours"],
)
def test_translate_leaves_other_errors_alone(exc: BaseException) -> None:
    assert _translate_transport_error(exc, method="GET", path="/me") is None
