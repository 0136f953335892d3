"""The CLI's pure parts, without processes or sockets: run planning (conflicts, resume
decisions, file collisions, the exit code's accounting check), the state text and the ETA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from debitura_async.cli._common import CLIError, cli_words
from debitura_async.cli._eta import EtaEstimator, state_text
from debitura_async.cli._plan import (
    IngestPlan,
    accounting_gap,
    check_conflicts,
    colliding_files,
    exit_code_for,
    journal_files,
    journal_path_for,
    resume_decision,
)
from debitura_async.models import IngestionSummary, IngestProgress, RetryWait


def _p(**kw: Any) -> IngestProgress:
    base: dict[str, Any] = {
        "rows_read": 100, "rows_submitted": 100, "rows_succeeded": 0, "rows_failed": 0,
        "rows_rejected": 0, "rows_unresolved": 0, "jobs_in_flight": 2, "jobs_done": 0,
        "requests": 3, "elapsed": 5.0,
    }  # fmt: skip
    base.update(kw)
    return IngestProgress(**base)


@pytest.mark.parametrize(
    ("plan", "match"),
    [
        (IngestPlan(path=Path("x.csv"), emulator=True, base_url="http://h"), "--emulator"),
        (IngestPlan(path=Path("x.csv"), emulator=True, resume=True), "--resume"),
        (IngestPlan(path=Path("x.csv"), no_journal=True, resume=True), "--no-journal"),
    ],
)
def test_conflicting_flags(plan: IngestPlan, match: str) -> None:
    with pytest.raises(CLIError, match=match):
        check_conflicts(plan)


def test_journal_path() -> None:
    assert journal_path_for(IngestPlan(path=Path("d/x.csv"))) == Path("d/x.csv.journal.sqlite")
    assert journal_path_for(IngestPlan(path=Path("x.csv"), no_journal=True)) is None
    assert journal_path_for(IngestPlan(path=Path("x.csv"), emulator=True)) is None


@pytest.mark.parametrize(
    ("resume", "exists", "empty", "held", "expected"),
    [
        (False, False, False, False, False),  # a new journal
        (False, True, False, False, False),  # a file killed before its run was recorded
        (True, True, False, True, True),  # resume
        (True, False, False, False, "no journal"),
        (True, True, True, False, "empty file"),
        (True, True, False, False, "holds no run"),
        (False, True, False, True, "already exists"),
    ],
)
def test_resume_decision(
    resume: bool, exists: bool, empty: bool, held: bool, expected: bool | str
) -> None:
    def decide() -> bool:
        return resume_decision(
            resume=resume, journal=Path("j"), exists=exists, empty=empty, holds_run=held
        )

    if isinstance(expected, str):
        with pytest.raises(CLIError, match=expected):
            decide()
    else:
        assert decide() is expected


def test_colliding_files_names_the_roles() -> None:
    journal = journal_files(Path("/d/j"))
    groups = [
        ("the input", ["/d/in.csv"]),
        ("the journal", [str(p) for p in journal]),
        ("the report", ["/d/j-wal", "/d/j-wal.partial"]),
    ]
    assert colliding_files(groups) == [("the journal", "the report")]


@given(st.lists(st.sampled_from("abcdef"), min_size=0, max_size=6))
def test_colliding_files_finds_every_shared_identity(names: list[str]) -> None:
    groups = [(f"role{i}", [n]) for i, n in enumerate(names)]
    clashes = colliding_files(groups)
    assert bool(clashes) == (len(set(names)) < len(names))


counts = st.integers(min_value=0, max_value=10_000)


@given(counts, counts, counts, counts, counts)
def test_the_exit_code_checks_the_accounting_first(
    read: int, ok: int, failed: int, rejected: int, unresolved: int
) -> None:
    summary = attrs.evolve(
        IngestionSummary(),
        rows_read=read,
        rows_succeeded=ok,
        rows_failed=failed,
        rows_rejected=rejected,
        rows_unresolved=unresolved,
    )
    code = exit_code_for(summary)
    if read != ok + failed + rejected + unresolved:
        assert code == 5
        assert accounting_gap(summary) != 0
    else:
        assert code == (3 if unresolved else 1 if failed or rejected else 0)


def test_state_texts() -> None:
    assert state_text(_p(rate_limit_wait=41.2)) == "waiting for the rate limit (resumes in 42 s)"
    retry = RetryWait(retry=3, max_retries=5, resumes_in=8.0, reason="unreachable")
    assert state_text(_p(retry=retry, rows_succeeded=5)) == "server unreachable, retry 3/5 in 8 s"
    assert state_text(_p(jobs_queued=12, rows_succeeded=5)) == "12 jobs queued at the server"
    assert state_text(_p()) == "waiting for the first results (2 jobs in flight)"
    assert state_text(_p(rows_succeeded=5)) is None
    day = state_text(_p(rate_limit_wait=86400.0, rows_succeeded=1))
    assert day == "waiting for the rate limit (resumes in 24 h 0 min)"


def test_eta_counts_jobs_in_flight_before_the_window_is_long() -> None:
    eta = EtaEstimator()
    eta.job_finished(10.0)  # a job takes 10 s
    # 8 jobs of 1000 rows in flight: Little's law says 800 rows/s, not 1000 rows / 10 s
    seconds = eta.eta(now=10.0, done=1000, in_flight=8000, remaining=9000)
    assert seconds == pytest.approx(9000 / 800)
    assert eta.eta(now=11.0, done=1000, in_flight=0, remaining=0) == 0.0


def test_eta_follows_the_measured_rate_once_the_window_spans_the_latency() -> None:
    eta = EtaEstimator()
    eta.job_finished(2.0)
    for t in range(0, 21):
        seconds = eta.eta(now=float(t), done=t * 100, in_flight=100, remaining=5000 - t * 100)
    assert seconds == pytest.approx(3000 / 100)


def test_eta_adds_a_rate_limit_pause_and_is_unknown_without_data() -> None:
    eta = EtaEstimator()
    assert eta.eta(now=0.0, done=0, in_flight=0, remaining=100) is None
    eta.job_finished(1.0)
    assert eta.eta(now=1.0, done=0, in_flight=100, remaining=100, pause=30.0) == 31.0


def test_cli_words_rewrites_python_names() -> None:
    text = (
        "refusing plain http:// to non-loopback host 'h': the API key would travel"
        " unencrypted; use https:// or pass allow_insecure_http=True"
    )
    assert cli_words(text).endswith("pass --allow-insecure-http")
    assert cli_words(
        "no API key: pass api_key=... or set the DEBITURA_API_KEY environment variable"
    ) == ("no API key: pass --api-key or set $DEBITURA_API_KEY")
