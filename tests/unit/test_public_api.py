"""Issue 11: what a user imports, type-checks and gets back when a value is wrong."""

from __future__ import annotations

import asyncio
import copy
import inspect
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import debitura_async
from debitura_async import (
    AsyncJobStatus,
    BudgetStatus,
    ConfigurationError,
    DebituraError,
    ErrorBody,
    IngestionJobRow,
    IngestionJobStatus,
    RowProblem,
    errors,
)

from .pipeline._fake import MemoryDebitura

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def test_all_names_resolve_and_nothing_public_is_missing() -> None:
    exported = set(debitura_async.__all__)
    for name in exported:
        assert hasattr(debitura_async, name), name
    public = {
        name
        for name, value in vars(debitura_async).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public - exported == set()
    for name in exported - {"__version__"}:
        module = getattr(getattr(debitura_async, name), "__module__", "debitura_async")
        assert module.startswith("debitura_async"), (name, module)


def test_the_readme_names_are_exported() -> None:
    for name in (
        "JobOutcome",
        "JobResult",
        "IngestionSummary",
        "IngestProgress",
        "RejectedRow",
        "IngestOptions",
        "PollPolicy",
        "JobHandle",
        "JobTracker",
        "IngestKwargs",
    ):
        assert name in debitura_async.__all__, name


_JOB = uuid.UUID(int=42)
_STATUS = IngestionJobStatus(
    status=AsyncJobStatus.QUEUED, rows_total=1, rows_succeeded=0, rows_failed=0
)
_BODY = ErrorBody(error="e", message="m", raw={"error": "e"})
_SAMPLES: dict[type[BaseException], Any] = {
    errors.ValidationError: lambda c: c([RowProblem(3, "caseId", "bad")], what="input"),
    errors.DecodeError: lambda c: c("bad json", method="GET", path="/me", status=200),
    errors.ResponseTooLargeError: lambda c: c(limit=10, method="GET", path="/me", status=200),
    errors.ContradictoryResponseError: lambda c: c("odd", job_id=_JOB),
    errors.DuplicateJobIdError: lambda c: c("twice", job_id=_JOB),
    errors.RedirectError: lambda c: c(status=302, method="GET", path="/me", location="http://x"),
    errors.JobWaitTimeout: lambda c: c(_JOB, 3.0, _STATUS),
    errors.JobTrackingError: lambda c: c("stopped", job_id=_JOB, idempotency_key="k"),
    errors.TransportError: lambda c: c("down", method="GET", path="/me"),
}


def _make(cls: type[BaseException]) -> BaseException:
    for base in cls.__mro__:
        if base in _SAMPLES:
            return _SAMPLES[base](cls)  # type: ignore[no-any-return]
    if issubclass(cls, errors.APIStatusError):
        return cls(status=429, method="POST", path="/x", body=_BODY, job_id=_JOB, retry_after=2.0)
    return cls("message")


ERROR_CLASSES = [
    value
    for value in vars(errors).values()
    if isinstance(value, type) and issubclass(value, DebituraError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_pickles_and_copies_with_its_fields(cls: type[BaseException]) -> None:
    error = _make(cls)
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is cls
        assert str(clone) == str(error)
        assert clone.__dict__ == error.__dict__ or vars(clone).keys() == vars(error).keys()
    if isinstance(error, errors.ValidationError):
        assert pickle.loads(pickle.dumps(error)).problems == (RowProblem(3, "caseId", "bad"),)


ROWS = [IngestionJobRow(uuid.UUID(int=i + 1), f"n{i}") for i in range(10)]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("deadline", "60"),
        ("deadline", 0),
        ("deadline", -1),
        ("deadline", float("nan")),
        ("on_progress", True),
        ("batch_size", 0),
        ("batch_size", 1001),
        ("batch_size", 10.0),
        ("max_jobs_in_flight", 0),
        ("max_concurrent_submits", True),
        ("polling", 3.0),
        ("journal", object()),
        ("on_invalid", "ignore"),
        ("run_id", "bad id!"),
        ("result_buffer", -1),
        ("progress_interval", -0.1),
        ("max_body_bytes", 10),
        ("validated_at", "2024-01-01"),
        ("row_key", "externalRef"),
        ("max_poll_failures", 0),
    ],
)
async def test_a_wrong_option_value_raises_from_the_call(option: str, value: object) -> None:
    server = MemoryDebitura()
    async with server.client() as client:
        with pytest.raises(ConfigurationError, match=option):
            client.ingest(ROWS, **{option: value})  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=option):
            await asyncio.wait_for(client.ingest_all(ROWS, **{option: value}), 5)  # type: ignore[arg-type]
    assert server.requests == 0


async def test_a_misspelled_option_says_what_was_meant() -> None:
    async with MemoryDebitura().client() as client:
        with pytest.raises(TypeError, match="did you mean 'deadline'"):
            client.ingest(ROWS, dedline=20)  # type: ignore[call-arg]


async def test_a_callback_that_always_raises_reaches_the_caller() -> None:
    def broken(progress: object) -> None:
        raise ZeroDivisionError("user bug")

    async with MemoryDebitura().client() as client:
        with pytest.raises(ZeroDivisionError, match="user bug"):
            await asyncio.wait_for(
                client.ingest_all(ROWS * 30, on_progress=broken, batch_size=10), 10
            )


async def test_a_budget_that_raises_ends_the_run_accounted() -> None:
    class Broken:
        async def acquire(self) -> None:
            raise DebituraError("budget store unreachable")

        async def pause(self, seconds: float) -> None:
            return None

        def status(self) -> BudgetStatus:
            return BudgetStatus(paused_for=0.0, next_slot_in=0.0, acquired=0, waited=0.0)

    server = MemoryDebitura()
    async with server.client(budget=Broken()) as client:
        summary = await asyncio.wait_for(client.ingest_all(ROWS * 50, batch_size=10), 10)
    assert summary.rows_read == 500
    assert summary.rows_unresolved == 500
    assert summary.rows_submitted == summary.rows_unresolved
    assert server.requests == 0


async def test_a_journal_that_raises_mid_run_reaches_the_caller_accounted() -> None:
    class Journal:
        def __init__(self) -> None:
            self.calls = 0

        async def lookup(self, key: str) -> None:
            return None

        async def batch_submitting(self, batch: object, key: str) -> None:
            self.calls += 1
            if self.calls == 3:
                raise OSError("disk full")

        async def batch_accepted(self, key: str, job_id: uuid.UUID) -> None:
            return None

        async def batch_finished(self, result: object) -> None:
            return None

    async with MemoryDebitura().client() as client:
        run = client.ingest(ROWS * 10, batch_size=10, journal=Journal())

        async def drain() -> None:
            async with run as results:
                async for _ in results:
                    pass

        with pytest.raises(OSError, match="disk full"):
            await asyncio.wait_for(drain(), 10)
    summary = run.summary
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == (
        summary.rows_succeeded + summary.rows_failed + summary.rows_unresolved
    )


def test_mypy_catches_misspelled_and_mistyped_options(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            """
            from debitura_async import DebituraClient, IngestionJobRow

            async def main(client: DebituraClient, rows: list[IngestionJobRow]) -> None:
                await client.ingest_all(rows, dedline=20)
                await client.ingest_all(rows, polling=3.0)
                await client.ingest_all(rows, deadline=60.0, batch_size=500)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert '"dedline"' in out
    assert "polling" in out
    assert out.count("error:") == 2, out
