"""``python -m benchmarks.p7_seeds``: P7's clients over several emulator seeds.

Nothing here looks at speed or at the verdicts; only that the driver runs against the real
emulator and refuses bad options with a clear message.
"""

from __future__ import annotations

import argparse
import re

import pytest

from benchmarks.p7_seeds import build_parser, parse_seeds

from ._run import run_module


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("1-4", [1, 2, 3, 4]),
        ("23", [23]),
        ("3,23", [3, 23]),
        ("1-3,2,23", [1, 2, 3, 23]),
        ("23,1-2", [23, 1, 2]),
        ("0-999", list(range(1000))),
    ],
)
def test_seeds_are_read_as_lists_and_ranges(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    "text", ["", "x", "5-1", "-3", "1-", "1.5", "2,,3", "0-1000", "0-999,1000", "1-10**9"]
)
def test_bad_seeds_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="seed"):
        parse_seeds(text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenarios", "nope"], "unknown scenario"),
        (["--scenarios", ","], "unknown scenario"),
        (["--scale", "0"], "must be > 0 and at most 1000"),
        (["--scale", "nan"], "must be > 0 and at most 1000"),
        (["--scale", "inf"], "must be > 0 and at most 1000"),
        (["--scale", "fast"], "not a number"),
        (["--jobs", "0"], "must be 1..1000 jobs: '0'"),
        (["--jobs", "1001"], "must be 1..1000 jobs"),
        (["--jobs", "2.5"], "not a whole number of jobs"),
        (["--seeds", "9-2"], "range of seeds"),
    ],
)
def test_bad_options_exit_2_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_runs_each_seed_against_the_emulator() -> None:
    stdout = run_module(
        "benchmarks.p7_seeds",
        *("--scenarios", "fast-5x", "--seeds", "1,2", "--jobs", "2", "--scale", "100"),
        "--with-oracle",
        timeout=120,
    )
    lines = stdout.strip().splitlines()
    assert len(lines) == 3, stdout
    for seed, line in zip((1, 2), lines, strict=False):
        assert re.fullmatch(
            rf"fast-5x seed {seed}: sdk \d+\.\d\d polls/job \(later half \d+\.\d\d\), "
            r"mean delay -?\d+\.\d\d model s, "
            r"loop stalls p99 \d+\.\d max \d+\.\d ms; "
            r"sdk wall / oracle \d+\.\d{3}",
            line,
        ), line
    assert re.fullmatch(
        r"fast-5x: sdk polls/job median \d+\.\d\d, mean \d+\.\d\d, worst \d+\.\d\d; "
        r"wall / oracle median \d+\.\d{3}, worst \d+\.\d{3}",
        lines[2],
    ), lines[2]
