"""The reliability report's tables (docs/reliability.md) come from measured figures only."""

from __future__ import annotations

import time

import orjson

from .conftest import Measurements
from .report_table import render


def test_the_table_shows_exactly_the_measured_figures() -> None:
    measured = Measurements()
    measured("fault", "5xx bursts").add(runs=2, rows=320, succeeded=300, duplicates=0, retries=7)
    measured("fault", "5xx bursts").add(runs=1, rows=160, succeeded=150, max_attempts=3)
    measured("crash", "kill -9 | resume").add(runs=1, rows=500, kills=2, lost=0)
    data = orjson.loads(measured.as_json(soak=False, started=time.monotonic()))
    table = render(data)
    lines = table.splitlines()
    assert "| 5xx bursts | 3 | 480 | 450 | 0 | 0 | 0 | 0 | 0 | 7 | 3 |" in lines
    assert "| kill -9 \\| resume | 1 | 500 | 0 | 0 | 0 | 0 | 0 | 0 | 2 |" in lines
    assert "Dirty input" not in table  # no figures, no section
    assert "the CI run (no --soak)" in table
