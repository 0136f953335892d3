"""The benchmark suite keeps working: its quick mode runs and reports in the documented shape.

Nothing here looks at speed (DESIGN.md: no timed assertions in tests); PASS/MISS verdicts are
the suite's output, not this test's concern.
"""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import p7_polling
from benchmarks.__main__ import SCENARIOS, _parse_only, build_parser, render_table
from benchmarks._common import Check, Scenario, median, percentile
from benchmarks.p2_rate_limit import exact_bound, fluid_bound
from benchmarks.p5_sequential import fifo_makespan
from benchmarks.p7_polling import later_half_polls

from ._run import run_module

VERDICTS = {"PASS", "MISS", "info"}
FIGURES = {
    "P1": ("adaptive", "fixed_3s"),
    "P2": ("requests_admitted", "bound_exact", "bound_fluid", "wall_real"),
    "P3": ("median_client_rows_per_s", "median_baseline_rows_per_s", "client_seconds"),
    "P4": ("cases", "csv_bytes"),
    "P5": ("sequential", "pipeline", "speedup", "ceiling"),
    "P6": ("shared_tracker", "per_caller_fixed_3s"),
    "P7": ("guide", "fifo-4"),
    "P8": ("overhead", "redis", "local"),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    stdout = run_module("benchmarks", "--quick", "--json", str(out), timeout=240)
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return stdout, document


def test_quick_mode_writes_every_scenario(quick_run: tuple[str, dict[str, Any]]) -> None:
    _, document = quick_run
    assert document["schema"] == 1
    assert document["mode"] == "quick"
    assert document["wall_seconds"] > 0
    assert {"nproc", "cpu", "python"} <= set(document["machine"])
    assert list(document["scenarios"]) == list(SCENARIOS)
    for key, scenario in document["scenarios"].items():
        assert scenario["key"] == key
        assert scenario["error"] is None, scenario["error"]
        assert scenario["params"]
        assert scenario["wall_seconds"] > 0
        assert set(FIGURES[key]) <= set(scenario["figures"])
        assert scenario["checks"]
        for check in scenario["checks"]:
            assert check["verdict"] in VERDICTS
            assert isinstance(check["metric"], str)
            assert isinstance(check["value"], float | int)
            assert (check["verdict"] == "info") == (check["passed"] is None)
        assert any(c["target"] for c in scenario["checks"]), f"{key} has no target"
    misses = [
        f"{s['key']} {c['metric']}"
        for s in document["scenarios"].values()
        for c in s["checks"]
        if c["verdict"] == "MISS"
    ]
    assert document["misses"] == misses


def test_quick_mode_figures_are_consistent(quick_run: tuple[str, dict[str, Any]]) -> None:
    _, document = quick_run
    scenarios = document["scenarios"]
    for pipeline in ("adaptive", "fixed_3s"):
        figures = scenarios["P1"]["figures"][pipeline]
        assert figures["rows_succeeded"] == figures["rows"]
        assert figures["requests"] == figures["posts"] + figures["polls"]
        assert figures["posts"] == figures["jobs"]
        assert figures["delays_measured"] == figures["jobs"]
    p2 = scenarios["P2"]["figures"]
    assert p2["rows_succeeded"] == p2["rows"]
    assert p2["bound_fluid"] <= p2["bound_exact"]
    for case in scenarios["P4"]["figures"]["cases"].values():
        assert case["rows_succeeded"] == case["rows"]
        assert case["maxrss_kb"] >= case["rss_start_kb"] > 0
    p5 = scenarios["P5"]["figures"]
    assert p5["sequential"]["jobs"] == p5["pipeline"]["jobs"]


def test_quick_mode_prints_the_table(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = quick_run
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["measure", "client"])
    assert set(lines[header + 1]) <= {"-", " "}
    end = lines.index("", header)
    rows = lines[header + 2 : end]
    assert {row[:2] for row in rows} == set(SCENARIOS)
    assert all(row.rstrip().split()[-1] in VERDICTS for row in rows)
    assert any(line.startswith("whole run:") for line in lines)


def test_only_runs_the_named_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "p2.json"
    run_module("benchmarks", "--quick", "--only", "p2", "--json", str(out), timeout=120)
    assert list(json.loads(out.read_text(encoding="utf-8"))["scenarios"]) == ["P2"]


def test_arguments() -> None:
    assert _parse_only("p3, P1,P3") == ["P1", "P3"]
    args = build_parser().parse_args(["--quick", "--only", "P2"])
    assert args.quick
    assert args.only == ["P2"]
    assert args.json.name == "latest.json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--only", "P9"])


def test_bounds_and_statistics() -> None:
    # 600 per 3 s: 600 requests go at once; the 601st waits one window.
    assert exact_bound(600, 600, 3.0) == 0.0
    assert exact_bound(601, 600, 3.0) == 3.0
    assert exact_bound(6000, 600, 3.0) == 27.0
    assert fluid_bound(601, 600, 3.0) == pytest.approx(0.005)
    assert fluid_bound(6000, 600, 3.0) == 27.0
    assert all(fluid_bound(n, 50, 1.0) <= exact_bound(n, 50, 1.0) for n in range(1, 500))
    assert fifo_makespan([3.0, 3.0, 3.0], 2) == 6.0
    assert fifo_makespan([5.0, 1.0, 1.0, 1.0], 2) == 5.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    assert math.isnan(median([]))


def test_table_marks_misses_and_errors() -> None:
    ok = Scenario(key="P1", title="t")
    ok.checks = [
        Check(
            metric="m",
            value=2.0,
            baseline=4.0,
            baseline_label="b",
            ratio=0.5,
            target="<= 3",
            passed=True,
        ),
        Check(metric="n", value=5.0, target=">= 6", passed=False),
        Check(metric="o", value=float("nan")),
    ]
    broken = Scenario(key="P2", title="broken", error="Traceback ...")
    table = render_table([ok, broken])
    rows = table.splitlines()[2:]
    assert [row.split()[-1] for row in rows] == ["PASS", "MISS", "info", "ERROR"]
    assert "b: 4.00" in rows[0]
    assert "0.50x" in rows[0]


def test_the_planner_cpu_driver_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import planner_cpu

    figure = planner_cpu.planner_us_per_job(jobs=50, in_flight=4, repeats=1)
    assert math.isfinite(figure)
    assert figure > 0
    assert planner_cpu.main(["--jobs", "20", "--in-flight", "3", "--repeats", "1"]) == 0
    assert "us per job (a Completed answer and an add, 3 tracked)" in capsys.readouterr().out


def test_p7_reports_the_later_half_of_the_jobs(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, document = quick_run
    p7 = document["scenarios"]["P7"]
    for preset in ("guide", "fifo-4"):
        sdk = p7["figures"][preset]["sdk"]
        assert sdk["polls_per_job_later_half"] >= 1.0  # every job is polled at least once
    assert any("later half of the jobs" in note for note in p7["notes"])
    assert "later half of the jobs" in stdout


def test_later_half_polls_counts_the_batches_from_the_middle_on() -> None:
    # its docstring's example: batches 2 and 3 of 4
    result = doctest.testmod(p7_polling)
    assert (result.attempted, result.failed) == (1, 0)
    assert later_half_polls({0: 5, 1: 1, 2: 2}, 3) == 1.5  # 3 // 2: batches 1 and 2
    assert math.isnan(later_half_polls({0: 3}, 4))
