"""Route the client's retry events to the ``debitura_async.retry`` logger.

stamina reports every scheduled retry to its process-wide on-retry hooks (by default a
``stamina`` logger at WARNING), so a script using this library would see bare
``stamina.retry_scheduled`` warnings it never asked for. :func:`install` puts one dispatcher in
front of the hooks that were active: a retry made inside :func:`ours` (the client's calls) is
logged to ``debitura_async.retry`` at INFO (shown at the level the user chose for the
``debitura_async`` loggers) and nothing else; every other retry in the process goes to the
previous hooks unchanged. The library never configures a logger or handler.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any, Final

from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

_STAMINA_CONFIG: Any
try:  # what get_on_retry_hooks() reads, without its function-level import on every call
    from stamina._config import CONFIG as _STAMINA_CONFIG
except ImportError:  # pragma: no cover - another stamina: the public getter
    _STAMINA_CONFIG = None

__all__ = ["active_hooks", "install", "mark", "ours", "unmark"]

logger: Final = logging.getLogger("debitura_async.retry")

_CALL: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "debitura_async_call", default=None
)


class _Dispatcher:
    def __init__(self, others: tuple[Any, ...]) -> None:
        self.others = others

    def __call__(self, details: RetryDetails) -> contextlib.AbstractContextManager[None] | None:
        call = _CALL.get()
        if call is not None:
            method, path = call
            logger.info(
                "retry %d of %s %s in %.1f s after %s",
                details.retry_num,
                method,
                path,
                details.wait_for,
                type(details.caused_by).__name__,
            )
            return None
        managers = [m for m in (hook(details) for hook in self.others) if m is not None]
        if not managers:
            return None
        stack = contextlib.ExitStack()
        for manager in managers:
            stack.enter_context(manager)
        return stack  # type: ignore[return-value]


_installed: tuple[Any, ...] | None = None
"""The hooks tuple :func:`install` set last (stamina keeps it until hooks are set again)."""


def active_hooks() -> tuple[Any, ...]:
    """``stamina.instrumentation.get_on_retry_hooks()``, read from the same place."""
    if _STAMINA_CONFIG is None:  # pragma: no cover
        return get_on_retry_hooks()
    hooks: tuple[Any, ...] = _STAMINA_CONFIG.on_retry
    return hooks


def install() -> None:
    """Put the dispatcher in front of the active hooks (idempotent; a no-op, in one identity
    check, while stamina still holds the hooks installed last)."""
    global _installed  # noqa: PLW0603 - the process-wide hooks are stamina's, this mirrors them
    hooks = active_hooks()
    if hooks is _installed:
        return
    if not any(isinstance(h, _Dispatcher) for h in hooks):
        set_on_retry_hooks([_Dispatcher(tuple(hooks))])
        hooks = active_hooks()
    _installed = hooks


def mark(method: str, path: str) -> contextvars.Token[tuple[str, str] | None]:
    """Mark the retries made until :func:`unmark` as the client's (:func:`ours`, in two calls)."""
    return _CALL.set((method, path))


def unmark(token: contextvars.Token[tuple[str, str] | None]) -> None:
    _CALL.reset(token)


@contextlib.contextmanager
def ours(method: str, path: str) -> Iterator[None]:
    """Mark the retries made inside as the client's (:func:`mark` and :func:`unmark`)."""
    token = mark(method, path)
    try:
        yield
    finally:
        unmark(token)
