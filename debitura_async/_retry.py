"""Which failures to retry and how long to wait. Pure: randomness comes in as ``rand``.

Retried: HTTP 408, 429, 500, 502, 503, 504 and transport failures. A request whose outcome is
unknown after the failure (500/502/504, a dropped connection, a read timeout) is retried only when
the operation is idempotent on the server: ``POST /ingestion-jobs`` carries an Idempotency-Key
that stays the same across retries, so the server replays the first answer instead of creating a
second job. Failures that prove the request was not processed (connect errors, 408, 429, 503)
are retried for every operation.

The wait is exponential backoff with *full jitter* (``rand * min(cap, initial * 2**(n-1))``,
AWS Architecture Blog, "Exponential Backoff and Jitter"), except when the server says how long
to wait (``Retry-After`` header or ``retryAfter`` body field): then exactly that.
"""

from __future__ import annotations

import attrs

from .errors import (
    APIStatusError,
    ConnectError,
    RemoteProtocolError,
    RequestTimeout,
    TLSError,
)

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "full_jitter_backoff", "retry_delay"]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that say the request was not acted upon, so even a non-idempotent call may repeat it.
_NOT_PROCESSED_STATUSES = frozenset({408, 429, 503})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a client retries.

    >>> policy = RetryPolicy(max_retries=3, initial_backoff=0.2, max_backoff=10.0)
    >>> policy.max_retries, policy.timeout, policy.max_retry_after
    (3, None, 300.0)

    ``max_retries`` counts retries after the first attempt (0 disables retrying); ``timeout``
    bounds the total time spent on one call including its retries (None: no bound beyond
    ``max_retries``). ``max_retry_after`` is the longest server-requested wait (``Retry-After``)
    the client sits out by itself: a longer one (say the daily limit is spent and the server
    asks for 86400 s) is not waited for — the :class:`~debitura_async.RateLimitError` reaches
    the caller at once with its ``retry_after``, and the client's budget pauses no longer than
    this either.
    """

    max_retries: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    initial_backoff: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
    max_backoff: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    timeout: float | None = None
    max_retry_after: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))


def full_jitter_backoff(retry_number: int, *, initial: float, cap: float, rand: float) -> float:
    """Backoff before retry ``retry_number`` (1-based).

    Uniform in ``[0, min(cap, initial * 2**(n-1))]``.
    """
    exponent = min(retry_number - 1, 62)  # 2**62 already dwarfs any cap
    return rand * min(cap, initial * (2.0**exponent))


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` may be retried for an operation that is (or is not) idempotent."""
    if isinstance(exc, TLSError):
        return False
    if isinstance(exc, ConnectError):
        return True
    if isinstance(exc, RemoteProtocolError | RequestTimeout):
        return idempotent
    if isinstance(exc, APIStatusError):
        if exc.status not in RETRYABLE_STATUSES:
            return False
        return idempotent or exc.status in _NOT_PROCESSED_STATUSES
    return False


def retry_delay(
    exc: BaseException,
    retry_number: int,
    policy: RetryPolicy,
    *,
    rand: float,
    idempotent: bool,
) -> float | None:
    """Seconds to wait before retry ``retry_number`` (1-based), or None to give up now."""
    if retry_number > policy.max_retries or not is_retryable(exc, idempotent=idempotent):
        return None
    server_wait = getattr(exc, "retry_after", None)
    if isinstance(server_wait, float | int):
        if server_wait > policy.max_retry_after:
            return None
        return max(0.0, float(server_wait))
    return full_jitter_backoff(
        retry_number, initial=policy.initial_backoff, cap=policy.max_backoff, rand=rand
    )
