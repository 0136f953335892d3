"""Issue 10, items 3 and 7: a server that repeats job ids or contradicts itself loses no row."""

from __future__ import annotations

import uuid

import pytest

from debitura_async import (
    ContradictoryResponseError,
    DebituraClient,
    DuplicateJobIdError,
    IngestionJobRow,
    IngestionSummary,
    JobOutcome,
    PollPolicy,
)

from ..integration.conftest import fast_retry
from ._servers import FakeDebitura, serve

pytestmark = pytest.mark.anyio

KEY = "sk_live_hostile-pipeline-KEY"
POLICY = PollPolicy.fixed(0.01)


def rows(n: int) -> list[IngestionJobRow]:
    return [
        IngestionJobRow(uuid.UUID(int=i + 1), f"note {i}", external_ref=f"crm-{i}")
        for i in range(n)
    ]


def assert_accounted(summary: IngestionSummary, read: int) -> None:
    assert summary.rows_read == read
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == (
        summary.rows_succeeded + summary.rows_failed + summary.rows_unresolved
    )


async def run(fake: FakeDebitura, n: int, batch_size: int) -> tuple[IngestionSummary, list]:  # type: ignore[type-arg]
    async with serve(fake.routes()) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            async with client.ingest(rows(n), batch_size=batch_size, polling=POLICY) as results:
                seen = [r async for r in results]
    return results.summary, seen


async def test_a_repeated_job_id_leaves_no_row_outside_the_accounting() -> None:
    fake = FakeDebitura()
    repeated = str(uuid.uuid4())
    fake.job_id_for = lambda n: repeated if n in (0, 3) else str(uuid.uuid4())
    summary, results = await run(fake, 100, 10)
    assert_accounted(summary, 100)
    assert summary.rows_succeeded == 90  # the second batch given job `repeated` is not counted
    assert summary.rows_unresolved == 10
    (dup,) = [r for r in results if isinstance(r.error, DuplicateJobIdError)]
    assert dup.outcome is JobOutcome.UNRESOLVED
    assert str(dup.job_id) == repeated
    assert not summary.ok


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("negative", {"status": 2, "rowsTotal": 10, "rowsSucceeded": -1, "rowsFailed": 11}),
        ("over", {"status": 2, "rowsTotal": 10, "rowsSucceeded": 10, "rowsFailed": 3}),
        ("zero", {"status": 2, "rowsTotal": 10, "rowsSucceeded": 0, "rowsFailed": 0}),
        ("total", {"status": 2, "rowsTotal": 7, "rowsSucceeded": 7, "rowsFailed": 0}),
        ("cwe-short", {"status": 3, "rowsTotal": 10, "rowsSucceeded": 4, "rowsFailed": 1}),
    ],
)
async def test_contradictory_statuses_are_unresolved_never_succeeded(
    case: str, status: dict[str, int]
) -> None:
    fake = FakeDebitura()
    fake.status_for = lambda rows, done: status if done else {**status, "status": 1}
    summary, results = await run(fake, 30, 10)
    assert_accounted(summary, 30)
    assert summary.rows_succeeded == 0
    assert summary.rows_unresolved == 30
    for result in results:
        assert isinstance(result.error, ContradictoryResponseError), case
        assert result.job_id is not None
        assert result.row_keys == tuple(
            f"crm-{i}" for i in range(result.first_position, result.last_position + 1)
        )


async def test_rows_queued_other_than_sent_is_unresolved_with_the_job_id() -> None:
    fake = FakeDebitura()
    fake.queued = lambda rows: rows - 3
    summary, results = await run(fake, 20, 10)
    assert_accounted(summary, 20)
    assert summary.rows_unresolved == 20
    assert all(isinstance(r.error, ContradictoryResponseError) for r in results)
    assert all(r.job_id is not None for r in results)
    assert fake.gets == 0  # such a job is not trusted enough to poll


async def test_submit_refuses_a_rows_queued_mismatch() -> None:
    fake = FakeDebitura()
    fake.queued = lambda rows: 0
    async with serve(fake.routes()) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            with pytest.raises(ContradictoryResponseError) as info:
                await client.submit(rows(5))
    assert info.value.job_id is not None


async def test_tracker_refuses_one_job_id_for_two_keys() -> None:
    fake = FakeDebitura(duration=10.0)
    same = str(uuid.uuid4())
    fake.job_id_for = lambda n: same
    async with serve(fake.routes()) as url:
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(0)) as client:
            first = await client.submit(rows(2), idempotency_key="key-one")
            with pytest.raises(DuplicateJobIdError):
                await client.submit(rows(3), idempotency_key="key-two")
            assert str(first.job_id) == same
