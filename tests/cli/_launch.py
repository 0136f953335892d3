"""Test-only launcher: install journal crash hooks, then run the CLI's ``main``.

The crash points are test code's business, so they are read here from the environment (never
by the library) and handed to the journal as callbacks (``journal.set_commit_hooks``):

* ``DEBITURA_ASYNC_TEST_CRASH_AFTER=<n>``: SIGKILL right after the n-th journal commit;
* ``DEBITURA_ASYNC_TEST_CRASH_BEFORE=<step>:<n>``: SIGKILL right before the n-th commit of
  ``step`` (``create``, ``attempt``, ``submitting``, ``accepted``, ``finished``, ``complete``).

Run as ``python tests/cli/_launch.py ARGS...`` (the same arguments as ``debitura-async``).
"""

from __future__ import annotations

import os
import signal
import sys

from debitura_async import journal
from debitura_async.cli import main

CRASH_AFTER_ENV = "DEBITURA_ASYNC_TEST_CRASH_AFTER"
CRASH_BEFORE_ENV = "DEBITURA_ASYNC_TEST_CRASH_BEFORE"


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install_from_environment() -> None:
    after_text = os.environ.get(CRASH_AFTER_ENV, "").strip()
    before_text = os.environ.get(CRASH_BEFORE_ENV, "").strip()
    after_n = int(after_text) if after_text else None
    step, _, count = before_text.partition(":")
    before_at = (step.strip(), int(count or "1")) if before_text else None

    def before(name: str, n: int) -> None:
        if before_at == (name, n):
            _die()

    def after(n: int) -> None:
        if after_n == n:
            _die()

    journal.set_commit_hooks(journal.CommitHooks(before=before, after=after))


if __name__ == "__main__":
    install_from_environment()
    sys.exit(main(sys.argv[1:]))
