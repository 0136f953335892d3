"""Each JobResult of a run into report records, stderr lines and the ETA's job latencies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..models import JobOutcome, JobResult
from ._common import LINE_PREFIX, PROG, describe_reason, with_line
from ._progress import Progress
from ._report import ReportWriter
from ._summary import Tally

__all__ = ["ResultSink", "job_detail"]


def job_detail(result: JobResult) -> str | None:
    """The report's ``detail`` of a job record."""
    if result.error is not None and result.outcome is not JobOutcome.COMPLETED:
        return " ".join(str(result.error).split())
    if result.outcome is JobOutcome.FAILED:
        return "the job failed at the server: no row was processed"
    if result.outcome is JobOutcome.COMPLETED_WITH_ERRORS:
        rows = "1 row" if result.rows_failed == 1 else f"{result.rows_failed:,} rows"
        return (
            f"{rows} failed at the server (unknown case, a case of another partner, or"
            " eventDate in the future); the API does not say which"
        )
    return None


@attrs.define
class ResultSink:
    """Called with every result of the pipeline, in the order they come."""

    span: Callable[[int, int], tuple[int, int]]
    mapping: Mapping[str, str]
    report: ReportWriter | None
    progress: Progress
    tally: Tally
    show_rejected: int

    def __call__(self, result: JobResult) -> None:
        tally = self.tally
        if result.resumed:
            tally.jobs_replayed += 1
            tally.rows_replayed += result.rows_succeeded
        elif result.submitted_at is not None and result.finished_at is not None:
            latency = (result.finished_at - result.submitted_at).total_seconds()
            self.progress.eta.job_finished(latency)
        if result.outcome is JobOutcome.REJECTED and result.rejected_rows:
            self._rejected(result)
            return
        if result.outcome is JobOutcome.UNRESOLVED:
            tally.unresolved_jobs += 1
        if self.report is not None:
            first, last = self.span(result.first_position, result.last_position)
            self.report.write(
                {
                    "record": "job",
                    "batch": result.batch_index,
                    "first_line": first,
                    "last_line": last,
                    "rows": result.row_count,
                    "outcome": result.outcome.value,
                    "succeeded": result.rows_succeeded,
                    "failed": result.rows_failed,
                    "job_id": None if result.job_id is None else str(result.job_id),
                    "idempotency_key": result.idempotency_key,
                    "resumed": result.resumed,
                    "detail": job_detail(result),
                }
            )

    def _rejected(self, result: JobResult) -> None:
        tally = self.tally
        for rejected in result.rejected_rows:
            first, last = self.span(rejected.position, rejected.position)
            reasons = [describe_reason(r, self.mapping) for r in rejected.problems]
            tally.rejected_lines += 1
            if tally.rejected_shown < self.show_rejected:
                tally.rejected_shown += 1
                for reason in reasons:
                    self.progress.message(f"{PROG}: rejected {with_line(reason, first, last)}")
            if self.report is not None:
                record: dict[str, Any] = {
                    "record": "rejected",
                    "batch": result.batch_index,
                    "first_line": first,
                    "last_line": last,
                    "rows": 1,
                    "outcome": JobOutcome.REJECTED.value,
                    "succeeded": 0,
                    "failed": 0,
                    "idempotency_key": result.idempotency_key,
                    "resumed": result.resumed,
                    "detail": [LINE_PREFIX.sub("", r, count=1) for r in reasons],
                }
                self.report.write(record)
