"""Shared pytest configuration.

Async tests run on asyncio through anyio's pytest plugin (``@pytest.mark.anyio``);
anyio is already a runtime dependency, so no extra plugin is needed.

The suite runs on pytest-xdist workers (``-n auto`` in pyproject's addopts). Most tests wait on
a time-scaled emulator, a subprocess or a socket, so one worker more than the machine has cores
keeps the cores busy; more than that only adds contention to the tests that watch a clock.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Workers for ``-n auto``: cores + 1 (at most 4); none when only named tests are run.

    ``$PYTEST_XDIST_AUTO_NUM_WORKERS`` wins (xdist's own rule, left to its hook), and so does an
    explicit ``-n N`` on the command line (this hook is not asked then).
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    args = [a for a in config.args if not a.startswith("-")]
    if args and all("::" in a for a in args):
        return 0  # a few named tests: starting workers would cost more than they save
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, min(MAX_WORKERS, (cores or 1) + 1))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    from .reliability import conftest as reliability

    reliability.collect_worker_figures(node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # serial or the xdist controller
        from .reliability import conftest as reliability

        reliability.write_worker_figures(session.config)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
