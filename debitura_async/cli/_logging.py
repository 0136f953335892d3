"""The CLI's logging: one stderr handler on the ``debitura_async`` logger, at the level that
``-v``/``-q`` chose. The root logger and other libraries' loggers are left alone (the library's
retry events go to ``debitura_async.retry``, see ``debitura_async._retry_log``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TextIO

from ._common import PROG

__all__ = ["cli_logging", "configure_logging", "level_for"]

_HANDLER_NAME = "debitura-async-cli"


def level_for(verbosity: int) -> int:
    """-v: DEBUG (requests, retries); default: WARNING; -q: ERROR."""
    if verbosity > 0:
        return logging.DEBUG
    if verbosity < 0:
        return logging.ERROR
    return logging.WARNING


@contextlib.contextmanager
def cli_logging(verbosity: int, stream: TextIO) -> Iterator[None]:
    """The CLI's handler for as long as a command runs; the logger is as it was afterwards (so
    ``main()`` called in-process, e.g. by tests, leaves nothing behind)."""
    logger = logging.getLogger("debitura_async")
    saved = (logger.level, logger.propagate)
    handler = configure_logging(verbosity, stream)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def configure_logging(verbosity: int, stream: TextIO) -> logging.Handler:
    """Install (or replace) the CLI's handler; returns it."""
    logger = logging.getLogger("debitura_async")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    fmt = "%(levelname)s %(name)s: %(message)s" if verbosity > 0 else f"{PROG}: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False
    return handler
