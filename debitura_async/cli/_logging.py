"""The CLI's logging: one stderr handler on the ``debitura_async`` logger, at the level that
``-v``/``-q`` chose. The root logger and other libraries' loggers are left alone (the library's
retry events go to ``debitura_async.retry``, see ``debitura_async._retry_log``)."""

from __future__ import annotations

import logging
from typing import TextIO

from ._common import PROG

__all__ = ["configure_logging", "level_for"]

_HANDLER_NAME = "debitura-async-cli"


def level_for(verbosity: int) -> int:
    """-v: DEBUG (requests, retries); default: WARNING; -q: ERROR."""
    if verbosity > 0:
        return logging.DEBUG
    if verbosity < 0:
        return logging.ERROR
    return logging.WARNING


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
