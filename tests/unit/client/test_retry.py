"""Which failures retry and how long to wait."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async._retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    full_jitter_backoff,
    is_retryable,
    retry_delay,
)
from debitura_async.errors import (
    APIStatusError,
    BusinessError,
    ConnectError,
    DecodeError,
    ErrorBody,
    RemoteProtocolError,
    RequestTimeout,
    TLSError,
    ValidationError,
    status_error_class,
)


def status_error(status: int, *, retry_after: float | None = None) -> APIStatusError:
    cls = status_error_class(status, ErrorBody())
    return cls(
        status=status,
        method="POST",
        path="/ingestion-jobs",
        body=ErrorBody(),
        retry_after=retry_after,
    )


# -- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_number", "initial", "cap", "rand", "expected"),
    [
        (1, 0.5, 30.0, 1.0, 0.5),
        (2, 0.5, 30.0, 1.0, 1.0),
        (3, 0.5, 30.0, 1.0, 2.0),
        (6, 0.5, 30.0, 1.0, 16.0),
        (7, 0.5, 30.0, 1.0, 30.0),  # 32 is capped
        (5, 0.5, 30.0, 0.25, 2.0),
        (1, 0.5, 30.0, 0.0, 0.0),
        (50, 0.5, 30.0, 0.0, 0.0),
        (3, 4.0, 10.0, 0.5, 5.0),  # 16 capped to 10, halved
        (63, 1.0, 1e30, 1.0, 2.0**62),
        (64, 1.0, 1e30, 1.0, 2.0**62),  # exponent is clamped at 62
        (10_000, 0.5, 30.0, 1.0, 30.0),
        (10**18, 0.5, 30.0, 0.5, 15.0),  # no OverflowError for absurd retry numbers
    ],
)
def test_full_jitter_backoff(
    retry_number: int, initial: float, cap: float, rand: float, expected: float
) -> None:
    assert full_jitter_backoff(retry_number, initial=initial, cap=cap, rand=rand) == expected


@settings(max_examples=200, deadline=None)
@given(
    retry_number=st.integers(1, 10**12),
    initial=st.floats(1e-3, 100.0),
    cap=st.floats(1e-3, 1e4),
    rand=st.floats(0.0, 1.0),
)
def test_full_jitter_backoff_bounds(
    retry_number: int, initial: float, cap: float, rand: float
) -> None:
    wait = full_jitter_backoff(retry_number, initial=initial, cap=cap, rand=rand)
    ceiling = cap if retry_number > 60 else min(cap, initial * 2.0 ** (retry_number - 1))
    assert 0.0 <= wait <= ceiling
    assert full_jitter_backoff(retry_number, initial=initial, cap=cap, rand=1.0) == ceiling
    assert full_jitter_backoff(retry_number, initial=initial, cap=cap, rand=0.0) == 0.0


# -- is_retryable ------------------------------------------------------------------------------

_TRANSPORT: list[tuple[BaseException, bool, bool]] = [
    (TLSError("bad certificate", method="POST", path="/p"), False, False),
    (ConnectError("refused", method="POST", path="/p"), True, True),
    (RemoteProtocolError("dropped", method="POST", path="/p"), True, False),
    (RequestTimeout("slow", method="POST", path="/p"), True, False),
    (DecodeError("garbage"), False, False),
    (ValidationError([]), False, False),
    (ValueError("x"), False, False),
    (TimeoutError(), False, False),  # raw foreign errors are never ours to retry
    (OSError("x"), False, False),
]


@pytest.mark.parametrize(
    ("exc", "idempotent_ok", "non_idempotent_ok"),
    _TRANSPORT,
    ids=[type(e).__name__ for e, _, _ in _TRANSPORT],
)
def test_is_retryable_transport(
    exc: BaseException, idempotent_ok: bool, non_idempotent_ok: bool
) -> None:
    assert is_retryable(exc, idempotent=True) is idempotent_ok
    assert is_retryable(exc, idempotent=False) is non_idempotent_ok


_ALWAYS = {408, 429, 503}
_IDEMPOTENT_ONLY = {500, 502, 504}


@pytest.mark.parametrize(
    "status", [400, 401, 403, 404, 408, 409, 413, 418, 422, 429, 500, 501, 502, 503, 504, 505]
)
def test_is_retryable_status(status: int) -> None:
    exc = status_error(status)
    assert is_retryable(exc, idempotent=True) is (status in _ALWAYS | _IDEMPOTENT_ONLY)
    assert is_retryable(exc, idempotent=False) is (status in _ALWAYS)


def test_idempotency_conflict_is_never_retried() -> None:
    body = ErrorBody(business_errors=(BusinessError(type="IdempotencyConflict"),))
    exc = status_error_class(422, body)(status=422, method="POST", path="/p", body=body)
    assert not is_retryable(exc, idempotent=True)
    assert not is_retryable(exc, idempotent=False)


def test_retryable_statuses() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


# -- retry_delay -------------------------------------------------------------------------------

_POLICY = RetryPolicy(max_retries=3, initial_backoff=0.5, max_backoff=10.0)


@pytest.mark.parametrize("rand", [0.0, 0.3, 1.0])
def test_retry_delay_honours_retry_after_exactly(rand: float) -> None:
    exc = status_error(429, retry_after=42.0)  # beyond max_backoff: still exactly the server's
    assert retry_delay(exc, 1, _POLICY, rand=rand, idempotent=False) == 42.0
    assert retry_delay(exc, 3, _POLICY, rand=rand, idempotent=True) == 42.0


@pytest.mark.parametrize(
    ("exc", "retry_number", "rand", "idempotent", "expected"),
    [
        (status_error(429, retry_after=0.0), 1, 0.9, False, 0.0),
        (status_error(503, retry_after=7.5), 2, 0.9, False, 7.5),
        (status_error(500, retry_after=3.0), 1, 0.9, True, 3.0),
        (status_error(429), 1, 1.0, False, 0.5),
        (status_error(429), 3, 1.0, False, 2.0),
        (status_error(503), 2, 0.5, False, 0.5),
        (status_error(502), 3, 0.25, True, 0.5),
        (ConnectError("x", method="GET", path="/me"), 3, 1.0, False, 2.0),
        (RequestTimeout("x", method="GET", path="/me"), 1, 0.0, True, 0.0),
        # past max_retries (3): give up
        (status_error(429, retry_after=1.0), 4, 0.5, True, None),
        (ConnectError("x", method="GET", path="/me"), 4, 0.5, True, None),
        # not retryable: give up, even when the server names a wait
        (status_error(400, retry_after=5.0), 1, 0.5, True, None),
        (status_error(500, retry_after=5.0), 1, 0.5, False, None),
        (RemoteProtocolError("x", method="POST", path="/p"), 1, 0.5, False, None),
        (TLSError("x", method="GET", path="/me"), 1, 0.5, True, None),
    ],
)
def test_retry_delay(
    exc: BaseException, retry_number: int, rand: float, idempotent: bool, expected: float | None
) -> None:
    assert retry_delay(exc, retry_number, _POLICY, rand=rand, idempotent=idempotent) == expected


def test_retry_delay_with_retries_disabled() -> None:
    policy = RetryPolicy(max_retries=0)
    assert retry_delay(status_error(503), 1, policy, rand=0.5, idempotent=True) is None


def test_retry_policy_defaults_and_limits() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_retries=5, initial_backoff=0.5, max_backoff=30.0, timeout=None
    )
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="initial_backoff"):
        RetryPolicy(initial_backoff=0)
    with pytest.raises(ValueError, match="max_backoff"):
        RetryPolicy(max_backoff=0)
