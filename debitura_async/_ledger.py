"""The ingestion ledger: every batch's state machine and the run's counts, in one pure place.

Like h11's ``_state.py``, the rules are stated here once and every transition goes through
:meth:`Ledger._move`, which refuses any move the table does not allow. No I/O, no clock (``now``
comes in as an argument), no asyncio.

States of a batch (by Idempotency-Key)::

    FORMED ──► SUBMITTING ──► ACCEPTED ──► FINISHED        (polled to a terminal status)
      │            │  │           └──────► UNRESOLVED      (deadline, lost job, contradiction)
      │            │  ├──────────────────► REJECTED        (400/413/422: nothing queued)
      │            │  ├──────────────────► SPLIT           (parts formed anew, named rows rejected)
      │            │  └──────────────────► UNRESOLVED      (retries spent, stop)
      ├──► ACCEPTED / FINISHED                             (resumed from a journal)
      └──► UNRESOLVED                                      (stopped before it was sent)

Counting rules, which make the invariants hold by construction:

* every row read is counted in ``read``; a row refused on the client goes to ``rejected``, a row
  placed in a batch to ``submitted``;
* a batch refused by the server moves its rows from ``submitted`` to ``rejected``;
* a FINISHED batch adds its rows to ``succeeded`` or ``failed``, an UNRESOLVED one to
  ``unresolved``; a SPLIT batch hands its rows to its parts (and to ``rejected``);
* rows still in the batcher when the run stops are ``unresolved`` (:meth:`Ledger.abandon`).

So ``read == rejected + submitted`` always, and ``submitted == succeeded + failed + unresolved``
once no batch is open (:meth:`Ledger.check`).
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from ._batching import Batch
from .errors import ContradictoryResponseError
from .models import (
    AsyncJobStatus,
    IngestionJobStatus,
    JobOutcome,
    JobResult,
    RejectedRow,
)

__all__ = ["BatchState", "Entry", "Ledger", "LedgerError", "check_status"]


class BatchState(enum.Enum):
    FORMED = "formed"
    SUBMITTING = "submitting"
    ACCEPTED = "accepted"
    FINISHED = "finished"
    REJECTED = "rejected"
    SPLIT = "split"
    UNRESOLVED = "unresolved"


_S = BatchState
_TRANSITIONS: Final[Mapping[BatchState, frozenset[BatchState]]] = {
    _S.FORMED: frozenset({_S.SUBMITTING, _S.ACCEPTED, _S.FINISHED, _S.UNRESOLVED}),
    _S.SUBMITTING: frozenset({_S.ACCEPTED, _S.REJECTED, _S.SPLIT, _S.UNRESOLVED}),
    _S.ACCEPTED: frozenset({_S.FINISHED, _S.UNRESOLVED}),
    _S.FINISHED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.SPLIT: frozenset(),
    _S.UNRESOLVED: frozenset(),
}
OPEN: Final = frozenset({_S.FORMED, _S.SUBMITTING, _S.ACCEPTED})


class LedgerError(RuntimeError):
    """A transition the table does not allow: a bug in the driver, never a user error."""


@attrs.define(eq=False)
class Entry:
    """One batch in the ledger."""

    batch: Batch
    key: str
    state: BatchState = BatchState.FORMED
    job_id: uuid.UUID | None = None
    status: IngestionJobStatus | None = None
    submitted_at: datetime | None = None
    polls: int = 0


def _outcome_of(status: IngestionJobStatus) -> JobOutcome:
    if status.status is AsyncJobStatus.COMPLETED:
        return JobOutcome.COMPLETED
    if status.status is AsyncJobStatus.COMPLETED_WITH_ERRORS:
        return JobOutcome.COMPLETED_WITH_ERRORS
    return JobOutcome.FAILED


def check_status(status: IngestionJobStatus, rows: int | None) -> str | None:
    """What is impossible about a job status for a job of ``rows`` rows (None: nothing).

    Negative counts, more rows processed than the job holds, a total other than the rows sent,
    and a Completed/CompletedWithErrors status whose counts do not cover every row are all
    contradictions: such rows are never counted as stored without saying so. A Failed status
    means no row was processed, whatever its counts say. Before the job is terminal a
    ``rowsTotal`` of 0 is tolerated (a server that fills it in later).
    """
    total, ok, failed = status.rows_total, status.rows_succeeded, status.rows_failed
    if min(total, ok, failed) < 0:
        return f"negative counts (rowsTotal={total}, rowsSucceeded={ok}, rowsFailed={failed})"
    if ok + failed > total:
        return f"rowsSucceeded + rowsFailed = {ok + failed} exceeds rowsTotal = {total}"
    if rows is not None and total != rows and (status.is_terminal or total != 0):
        return f"rowsTotal = {total}, but the job was sent {rows} rows"
    done = (AsyncJobStatus.COMPLETED, AsyncJobStatus.COMPLETED_WITH_ERRORS)
    if status.status in done and ok + failed != total:
        return f"{status.status.name} with only {ok + failed} of {total} rows processed"
    return None


@attrs.define
class Ledger:
    """Counts and batch states of one ingestion run."""

    read: int = 0
    rejected: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    unresolved: int = 0
    jobs: Counter[JobOutcome] = attrs.field(factory=Counter)
    _open: dict[str, Entry] = attrs.field(factory=dict)

    # -- rows ------------------------------------------------------------------------------------

    def row_read(self) -> None:
        self.read += 1

    def row_batched(self) -> None:
        self.submitted += 1

    def row_rejected(
        self, position: int, problems: tuple[str, ...], error: BaseException, now: datetime
    ) -> JobResult:
        """A row refused on the client (already counted as read)."""
        self.rejected += 1
        self.jobs[JobOutcome.REJECTED] += 1
        return JobResult(
            batch_index=None,
            first_position=position,
            last_position=position,
            row_count=1,
            outcome=JobOutcome.REJECTED,
            error=error,
            rejected_rows=(RejectedRow(position=position, problems=problems),),
            finished_at=now,
            positions=(position,),
        )

    def abandon(self, positions: tuple[int, ...], error: BaseException) -> JobResult | None:
        """Rows batched but never formed into a batch (the run stopped): unresolved."""
        if not positions:
            return None
        self.unresolved += len(positions)
        self.jobs[JobOutcome.UNRESOLVED] += 1
        return JobResult(
            batch_index=None,
            first_position=positions[0],
            last_position=positions[-1],
            row_count=len(positions),
            outcome=JobOutcome.UNRESOLVED,
            error=error,
            positions=positions,
        )

    # -- batches ---------------------------------------------------------------------------------

    def form(self, batch: Batch, key: str) -> Entry:
        if key in self._open:
            raise LedgerError(f"batch {key} is already open")
        entry = Entry(batch=batch, key=key)
        self._open[key] = entry
        return entry

    def _move(self, entry: Entry, to: BatchState) -> None:
        if to not in _TRANSITIONS[entry.state]:
            raise LedgerError(f"batch {entry.key}: {entry.state.name} -> {to.name} not allowed")
        entry.state = to
        if to not in OPEN:
            self._open.pop(entry.key, None)

    def submitting(self, entry: Entry) -> None:
        self._move(entry, BatchState.SUBMITTING)

    def accepted(self, entry: Entry, job_id: uuid.UUID, now: datetime) -> None:
        self._move(entry, BatchState.ACCEPTED)
        entry.job_id = job_id
        entry.submitted_at = entry.submitted_at or now
        entry.batch = entry.batch.without_rows()  # only the positions are needed from now on

    def finished(self, entry: Entry, status: IngestionJobStatus, now: datetime) -> JobResult:
        """A terminal status: FINISHED, or UNRESOLVED when the status contradicts itself."""
        problem = check_status(status, len(entry.batch))
        if problem is not None:
            error = ContradictoryResponseError(problem, job_id=entry.job_id)
            entry.status = status
            return self.unresolve(entry, error, now)
        self._move(entry, BatchState.FINISHED)
        entry.status = status
        result = self._result(entry, _outcome_of(status), None, now)
        self.succeeded += result.rows_succeeded
        self.failed += result.rows_failed
        self.jobs[result.outcome] += 1
        return result

    def replayed(self, entry: Entry, result: JobResult) -> JobResult:
        """A result an earlier run recorded (resume): counted as it was then."""
        self._move(entry, BatchState.FINISHED)
        result = attrs.evolve(
            result, resumed=True, positions=entry.batch.positions, row_keys=entry.batch.row_keys
        )
        self.succeeded += result.rows_succeeded
        self.failed += result.rows_failed
        self.jobs[result.outcome] += 1
        return result

    def unresolve(self, entry: Entry, error: BaseException | None, now: datetime) -> JobResult:
        self._move(entry, BatchState.UNRESOLVED)
        self.unresolved += len(entry.batch)
        self.jobs[JobOutcome.UNRESOLVED] += 1
        return self._result(entry, JobOutcome.UNRESOLVED, error, now)

    def reject(
        self,
        entry: Entry,
        reasons: Mapping[int, tuple[str, ...]],
        error: BaseException,
        now: datetime,
        *,
        split: bool = False,
    ) -> list[JobResult]:
        """The server refused rows ``reasons`` (local indexes) of a batch; with ``split`` the
        others go on in new batches formed by the caller, else ``reasons`` covers every row."""
        if not split and len(reasons) != len(entry.batch):
            raise LedgerError("a rejection without a split must name every row")
        self._move(entry, BatchState.SPLIT if split else BatchState.REJECTED)
        batch = entry.batch
        # Rows handed to parts stay submitted; rejected ones move over.
        self.submitted -= len(reasons)
        self.rejected += len(reasons)
        results = []
        for i in sorted(reasons):
            position = batch.positions[i]
            self.jobs[JobOutcome.REJECTED] += 1
            results.append(
                JobResult(
                    batch_index=batch.index,
                    first_position=position,
                    last_position=position,
                    row_count=1,
                    outcome=JobOutcome.REJECTED,
                    error=error,
                    rejected_rows=(RejectedRow(position=position, problems=reasons[i]),),
                    idempotency_key=entry.key,
                    finished_at=now,
                    positions=(position,),
                )
            )
        return results

    def _result(
        self, entry: Entry, outcome: JobOutcome, error: BaseException | None, now: datetime
    ) -> JobResult:
        batch = entry.batch
        return JobResult(
            batch_index=batch.index,
            first_position=batch.first_position,
            last_position=batch.last_position,
            row_count=len(batch),
            outcome=outcome,
            job_id=entry.job_id,
            status=entry.status,
            error=error,
            idempotency_key=entry.key,
            polls=entry.polls,
            submitted_at=entry.submitted_at,
            finished_at=now,
            positions=batch.positions,
            row_keys=batch.row_keys,
        )

    # -- the whole run ---------------------------------------------------------------------------

    def open_entries(self) -> list[Entry]:
        return list(self._open.values())

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def close(self, error: BaseException, now: datetime) -> list[JobResult]:
        """Every batch still open becomes UNRESOLVED (with its job id where it has one)."""
        return [self.unresolve(entry, error, now) for entry in self.open_entries()]

    def check(self) -> None:
        """Raise :class:`LedgerError` unless the summary invariants hold (call once closed)."""
        if self.read != self.rejected + self.submitted:
            raise LedgerError(
                f"rows read {self.read} != rejected {self.rejected} + submitted {self.submitted}"
            )
        if self._open:
            raise LedgerError(f"{len(self._open)} batches still open")
        if self.submitted != self.succeeded + self.failed + self.unresolved:
            raise LedgerError(
                f"rows submitted {self.submitted} != succeeded {self.succeeded} + failed "
                f"{self.failed} + unresolved {self.unresolved}"
            )


def count_rows(results: Iterable[JobResult]) -> int:
    return sum(r.row_count for r in results)
