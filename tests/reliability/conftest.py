"""Reliability and security suite: options, the soak switch, and the figures of a run.

* ``--soak`` runs the tests marked ``@pytest.mark.soak`` (more seeds, more rows, more kills);
  without it they are skipped, so a plain ``pytest`` stays fast enough for CI.
* Every scenario records what it measured (runs, rows, outcomes, duplicates, lost rows, retries)
  through the ``measure`` fixture. At the end of the session the figures are written to
  ``tests/reliability/.last-run.json``; ``python -m tests.reliability.report_table`` turns that
  file into the tables of docs/reliability.md, so no figure is ever typed by hand.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

LAST_RUN = Path(__file__).with_name(".last-run.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long reliability soak tests (marked @pytest.mark.soak)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@attrs.define
class Figures:
    """What one scenario measured, summed over its runs."""

    category: str
    scenario: str
    runs: int = 0
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    unresolved: int = 0
    duplicates: int = 0
    lost: int = 0
    requests: int = 0
    retries: int = 0
    max_attempts: int = 0
    kills: int = 0
    seconds: float = 0.0

    def add(self, **values: float) -> None:
        for name, value in values.items():
            if name == "max_attempts":
                self.max_attempts = max(self.max_attempts, int(value))
            elif name == "seconds":
                self.seconds += float(value)
            else:
                setattr(self, name, getattr(self, name) + int(value))


class Measurements:
    """Session-wide collector: ``measure(category, scenario).add(runs=1, rows=..., ...)``."""

    def __init__(self) -> None:
        self._figures: dict[tuple[str, str], Figures] = {}

    def __call__(self, category: str, scenario: str) -> Figures:
        key = (category, scenario)
        if key not in self._figures:
            self._figures[key] = Figures(category=category, scenario=scenario)
        return self._figures[key]

    def __bool__(self) -> bool:
        return bool(self._figures)

    def as_json(self, *, soak: bool, started: float) -> bytes:
        data: dict[str, Any] = {
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "soak": soak,
            "python": sys.version.split()[0],
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "wallSeconds": round(time.monotonic() - started, 1),
            "scenarios": [
                attrs.asdict(f) | {"seconds": round(f.seconds, 2)}
                for f in sorted(self._figures.values(), key=lambda f: (f.category, f.scenario))
            ],
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    def merge(self, figures: list[dict[str, Any]]) -> None:
        """Add the figures another process measured (``as_json``'s ``scenarios``)."""
        for entry in figures:
            values = {k: v for k, v in entry.items() if k not in ("category", "scenario")}
            self(entry["category"], entry["scenario"]).add(**values)


_WORKER_KEY = "debitura_reliability_figures"
_from_workers = Measurements()
_started = time.monotonic()


@pytest.fixture(scope="session")
def measurements(request: pytest.FixtureRequest) -> Iterator[Measurements]:
    collected = Measurements()
    started = time.monotonic()
    yield collected
    if not collected:
        return
    soak = bool(request.config.getoption("--soak"))
    document = collected.as_json(soak=soak, started=started)
    workeroutput = getattr(request.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller merges and writes
        workeroutput[_WORKER_KEY] = document.decode()
    else:
        LAST_RUN.write_bytes(document)


def collect_worker_figures(node: Any) -> None:
    """xdist controller (tests/conftest.py's hook): keep one finished worker's figures."""
    document = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if document is not None:
        _from_workers.merge(orjson.loads(document)["scenarios"])


def write_worker_figures(config: pytest.Config) -> None:
    """xdist controller, at the end of the session: every worker's figures in one file."""
    if _from_workers:
        soak = bool(config.getoption("--soak", default=False))
        LAST_RUN.write_bytes(_from_workers.as_json(soak=soak, started=_started))


@pytest.fixture
def measure(measurements: Measurements) -> Measurements:
    return measurements


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """True when the session runs with ``--soak``."""
    return bool(request.config.getoption("--soak"))
