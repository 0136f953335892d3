"""The sample user project (examples/user-project) runs its own tests, which use only the
debitura_ fixtures, in a pytest subprocess of its own: they must really run and pass."""

from __future__ import annotations

from pathlib import Path

from ._run import run_pytest, summary

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "user-project"


def test_the_sample_user_projects_tests_pass() -> None:
    assert not (PROJECT / "conftest.py").exists()
    assert not (PROJECT / "tests" / "conftest.py").exists()
    result = run_pytest(PROJECT, "-p", "no:asyncio")
    assert result.returncode == 0, summary(result)
    assert "7 passed" in result.stdout, summary(result)
    for bad in ("Task was destroyed", "Unclosed", "never retrieved", "warnings summary"):
        assert bad not in result.stdout + result.stderr, summary(result)
