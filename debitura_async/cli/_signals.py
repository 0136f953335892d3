"""Graceful stops: Ctrl+C (SIGINT), SIGTERM and SIGHUP are handled alike.

The first signal calls ``on_stop`` (the ingest command stops sending, lets the pipeline record
what it knows, prints the summary, writes the report marked partial and exits 3). A second
signal exits at once with code 3: every journal commit is atomic, so the journal is as safe to
resume as after a ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Final, TextIO

from ._common import EXIT_UNRESOLVED, PROG

__all__ = ["SIGNAL_NAMES", "GracefulStop"]

SIGNAL_NAMES: Final = {
    signal.SIGINT: "Ctrl+C",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP",
}


class GracefulStop:
    """Signal handlers on the running loop for as long as the ``with`` block lasts."""

    def __init__(self, err: TextIO, *, on_stop: Callable[[str], None]) -> None:
        self._err = err
        self.on_stop = on_stop
        self.reason: str | None = None

    def _handle(self, signum: signal.Signals) -> None:
        name = SIGNAL_NAMES.get(signum, signum.name)
        if self.reason is not None:
            print(
                f"\n{PROG}: {name} again: exiting now; the journal is safe: run again with"
                " --resume",
                file=self._err,
                flush=True,
            )
            sys.stdout.flush()
            os._exit(EXIT_UNRESOLVED)
        self.reason = name
        print(
            f"\n{PROG}: {name}: stopping: no more batches are sent; recording what is known"
            f" ({name} again to exit at once)",
            file=self._err,
            flush=True,
        )
        self.on_stop(name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        loop = asyncio.get_running_loop()
        added: list[signal.Signals] = []
        try:
            for signum in SIGNAL_NAMES:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, self._handle, signum)
                    added.append(signum)
            yield self
        finally:
            for signum in added:
                loop.remove_signal_handler(signum)
                if self.reason is not None:  # a second signal while the summary prints
                    signal.signal(signum, _exit_now)


def _exit_now(signum: int, frame: object) -> None:
    sys.stdout.flush()
    os._exit(EXIT_UNRESOLVED)
