"""The SQLite journal: round trips, states, refusing a mismatched resume (no event loop), and the
async adapter the pipeline uses."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from debitura_async import IngestionJobRow
from debitura_async._batching import Batch
from debitura_async.errors import ValidationError
from debitura_async.journal import (
    InputIdentity,
    JournalError,
    JournalExistsError,
    JournalMismatchError,
    JournalStore,
    RecordedError,
    RunInfo,
    SqliteJournal,
    result_from_json,
    result_to_json,
)
from debitura_async.models import (
    AsyncJobStatus,
    IngestionJobStatus,
    JobOutcome,
    JobResult,
    RejectedRow,
)

VALIDATED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_run(tmp_path: Path, **changes: object) -> RunInfo:
    source = tmp_path / "input.csv"
    if not source.exists():
        source.write_bytes(b"caseId,description\n")
    fields: dict[str, object] = {
        "run_id": "r1",
        "input": InputIdentity.of(source),
        "base_url": "http://127.0.0.1:9",
        "batch_size": 2,
        "settings": {"format": "csv", "map": {"caseId": "Guid"}, "batchSize": 2},
        "validated_at": VALIDATED,
    }
    fields.update(changes)
    return RunInfo(**fields)  # type: ignore[arg-type]


def batch(index: int, positions: tuple[int, ...]) -> Batch:
    case = uuid.UUID(int=index + 1)
    rows = tuple(IngestionJobRow(case, f"row {p}") for p in positions)
    return Batch(index=index, positions=positions, rows=rows)


def finished(key: str, *, rows: int = 2, failed: int = 0) -> JobResult:
    status = AsyncJobStatus.COMPLETED_WITH_ERRORS if failed else AsyncJobStatus.COMPLETED
    return JobResult(
        batch_index=0,
        first_position=0,
        last_position=rows - 1,
        row_count=rows,
        outcome=JobOutcome.COMPLETED_WITH_ERRORS if failed else JobOutcome.COMPLETED,
        job_id=uuid.UUID(int=7),
        status=IngestionJobStatus(
            status=status, rows_total=rows, rows_succeeded=rows - failed, rows_failed=failed
        ),
        idempotency_key=key,
        polls=3,
        submitted_at=VALIDATED,
        finished_at=VALIDATED,
    )


def test_input_identity_is_size_and_streamed_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a" * 3000)
    identity = InputIdentity.of(path, chunk=1024)
    assert identity.size == 3000
    assert identity.sha256 == hashlib.sha256(b"a" * 3000).hexdigest()
    assert identity == InputIdentity.of(path)
    assert identity.path == str(path.resolve())


def test_result_json_round_trip() -> None:
    result = finished("k", rows=4, failed=1)
    assert result_from_json(result_to_json(result)) == result
    rejected = JobResult(
        batch_index=None,
        first_position=9,
        last_position=9,
        row_count=1,
        outcome=JobOutcome.REJECTED,
        error=ValidationError([]),
        rejected_rows=(RejectedRow(position=9, problems=("caseId: required",)),),
        idempotency_key="k2",
    )
    back = result_from_json(result_to_json(rejected))
    assert back == rejected
    assert isinstance(back.error, RecordedError)
    assert back.error.kind == "ValidationError"
    # a recorded error keeps its original type name on a second round trip
    assert result_from_json(result_to_json(back)).error.kind == "ValidationError"  # type: ignore[union-attr]


def test_store_round_trip_through_every_state(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    run = make_run(tmp_path)
    with JournalStore.create(path, run) as store:
        assert store.lookup("k0") is None
        store.batch_submitting(batch(0, (0, 1)), "k0", lines=(2, 3))
        store.batch_submitting(batch(1, (2, 3)), "k1", lines=(4, 6))
        store.batch_submitting(batch(2, (4,)), "k2")
        store.batch_accepted("k1", uuid.UUID(int=1))
        store.batch_finished(finished("k0"), lines=(2, 3))
    with JournalStore.open(path) as store:
        assert store.run == run
        k0, k1, k2 = (store.lookup(k) for k in ("k0", "k1", "k2"))
        assert k0 is not None
        assert k0.state == "finished"
        assert k0.result == finished("k0")
        assert k1 is not None
        assert (k1.state, k1.job_id) == ("accepted", uuid.UUID(int=1))
        assert k2 is not None
        assert (k2.state, k2.job_id, k2.result) == ("submitting", None, None)
        assert store.state_counts() == {
            "finished": (1, 2),
            "accepted": (1, 2),
            "submitting": (1, 1),
        }
        records = store.batches()
        assert [(r.idempotency_key, r.first_line, r.last_line) for r in records] == [
            ("k0", 2, 3),
            ("k1", 4, 6),
            ("k2", None, None),
        ]
        assert records[0].outcome is JobOutcome.COMPLETED
        assert records[0].rows_succeeded == 2


def test_later_states_are_never_downgraded(tmp_path: Path) -> None:
    with JournalStore.create(tmp_path / "j.sqlite", make_run(tmp_path)) as store:
        store.batch_submitting(batch(0, (0, 1)), "k0")
        store.batch_finished(finished("k0"))
        store.batch_submitting(batch(0, (0, 1)), "k0")  # a split re-sends a finished part
        store.batch_accepted("k0", uuid.UUID(int=9))
        entry = store.lookup("k0")
        assert entry is not None
        assert entry.state == "finished"
        assert entry.job_id == uuid.UUID(int=7)


def test_rows_refused_out_of_a_larger_batch_do_not_finish_it(tmp_path: Path) -> None:
    with JournalStore.create(tmp_path / "j.sqlite", make_run(tmp_path)) as store:
        store.batch_submitting(batch(0, (0, 1, 2)), "k0")
        one = JobResult(
            batch_index=0,
            first_position=1,
            last_position=1,
            row_count=1,
            outcome=JobOutcome.REJECTED,
            rejected_rows=(RejectedRow(position=1, problems=("rows[1].caseId: bad",)),),
            idempotency_key="k0",
        )
        store.batch_finished(one)
        store.batch_finished(one)  # the resumed run refuses it again: recorded once
        entry = store.lookup("k0")
        assert entry is not None
        assert entry.state == "submitting"
        # a whole one-row batch refused is finished
        store.batch_submitting(batch(1, (3,)), "k1")
        whole = JobResult(
            batch_index=1,
            first_position=3,
            last_position=3,
            row_count=1,
            outcome=JobOutcome.REJECTED,
            rejected_rows=(RejectedRow(position=3, problems=("x",)),),
            idempotency_key="k1",
        )
        store.batch_finished(whole)
        entry = store.lookup("k1")
        assert entry is not None
        assert entry.state == "finished"
        assert entry.result == whole
        # rows refused on the client carry no key: nothing to record
        store.batch_finished(attrs.evolve(whole, idempotency_key=None))
        assert store.state_counts()["finished"] == (1, 1)


def test_create_refuses_a_journal_that_holds_a_run(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    JournalStore.create(path, make_run(tmp_path)).close()
    assert JournalStore.holds_run(path)
    with pytest.raises(JournalExistsError):
        JournalStore.create(path, make_run(tmp_path, run_id="r2"))


def test_a_journal_without_a_run_can_be_created_over(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    sqlite3.connect(path).close()  # an empty file, as a kill during creation may leave
    path.touch()
    assert not JournalStore.holds_run(path)
    assert not JournalStore.holds_run(tmp_path / "missing.sqlite")
    JournalStore.create(path, make_run(tmp_path)).close()
    assert JournalStore.holds_run(path)


def test_open_refuses_what_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        JournalStore.open(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="not a debitura-async journal"):
        JournalStore.open(junk)


def test_a_live_journal_is_locked_against_a_second_process(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with (
        JournalStore.create(path, make_run(tmp_path)),
        pytest.raises(JournalError, match="in use by another process"),
    ):
        JournalStore.open(path)


def test_resume_refuses_another_input_or_base_url(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    with JournalStore.create(tmp_path / "j.sqlite", run) as store:
        assert store.check_resume(identity=run.input, base_url=run.base_url + "/") == []
        changed = tmp_path / "input.csv"
        changed.write_bytes(b"caseId,description\nsomething else\n")
        with pytest.raises(JournalMismatchError, match="belongs to another input"):
            store.check_resume(identity=InputIdentity.of(changed), base_url=run.base_url)
        same_size = tmp_path / "same-size.csv"
        same_size.write_bytes(b"caseid,description\n")  # one byte differs
        with pytest.raises(JournalMismatchError, match="sha256"):
            store.check_resume(identity=InputIdentity.of(same_size), base_url=run.base_url)
        with pytest.raises(JournalMismatchError, match="belongs to a run against"):
            store.check_resume(identity=run.input, base_url="https://elsewhere.example")
        moved = InputIdentity(
            path="/elsewhere/input.csv", size=run.input.size, sha256=run.input.sha256
        )
        notes = store.check_resume(identity=moved, base_url=run.base_url)
        assert len(notes) == 1
        assert "moved" in notes[0]


def test_attempts_and_completion_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with JournalStore.create(path, make_run(tmp_path)) as store:
        store.begin_attempt()
        store.mark_complete({"rowsRead": 2})
    with JournalStore.open(path) as store:
        assert store.run.attempts == 2
        assert store.run.completed_at is not None


@pytest.mark.anyio
async def test_async_adapter_runs_the_store_off_the_loop(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "j.sqlite", make_run(tmp_path))
    journal = SqliteJournal(store, lines=lambda first, last: (first + 2, last + 2))
    try:
        await journal.batch_submitting(batch(0, (0, 1)), "k0")
        await journal.batch_accepted("k0", uuid.UUID(int=3))
        entry = await journal.lookup("k0")
        assert entry is not None
        assert entry.state == "accepted"
        await journal.batch_finished(finished("k0"))
        entry = await journal.lookup("k0")
        assert entry is not None
        assert entry.state == "finished"
        assert [(r.first_line, r.last_line) for r in store.batches()] == [(2, 3)]
    finally:
        await journal.aclose()
