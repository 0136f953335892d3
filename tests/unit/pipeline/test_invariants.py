"""Issue 11: the summary invariants hold for every input, option value and way a run ends.

Pure (no sockets): the pipeline runs against an in-memory Debitura behind a MockTransport.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debitura_async import (
    DebituraError,
    Ingestion,
    IngestionJobRow,
    IngestionSummary,
    JobOutcome,
    JobResult,
    PollPolicy,
)

from ._fake import MemoryDebitura


def make_rows(n: int, bad: frozenset[int]) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        if i in bad:
            out.append({"caseId": "not-a-uuid", "description": f"bad {i}"})
        else:
            out.append(IngestionJobRow(uuid.UUID(int=i + 1), f"note {i}", external_ref=f"r{i}"))
    return out


def check(summary: IngestionSummary, results: list[JobResult], n: int, complete: bool) -> None:
    assert summary.rows_read <= n
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == (
        summary.rows_succeeded + summary.rows_failed + summary.rows_unresolved
    )
    if complete:  # every result was seen: they cover every row read exactly once
        positions = sorted(p for r in results for p in r.positions)
        assert positions == list(range(summary.rows_read))
        for r in results:
            assert len(r.positions) == r.row_count
            if r.outcome is JobOutcome.REJECTED:
                assert [row.position for row in r.rejected_rows] == list(r.positions)


async def drive(  # noqa: PLR0917
    n: int,
    bad: frozenset[int],
    batch_size: int,
    deadline: float | None,
    consumer: str,
    k: int,
    seed: int,
    fail_rate: float,
) -> None:
    server = MemoryDebitura(seed=seed, fail_rate=fail_rate)
    results: list[JobResult] = []
    async with server.client() as client:
        ingestion = client.ingest(
            make_rows(n, bad),
            batch_size=batch_size,
            deadline=deadline,
            max_jobs_in_flight=3,
            result_buffer=2,
            polling=PollPolicy.fixed(0.002),
        )

        async def consume(run: Ingestion) -> None:
            async with run as stream:
                async for result in stream:
                    results.append(result)
                    if consumer == "break" and len(results) >= k:
                        break

        task = asyncio.ensure_future(consume(ingestion))
        if consumer == "cancel":
            await asyncio.sleep(k * 0.001)
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            assert consumer == "cancel"
        except DebituraError:
            pass
        summary = ingestion.summary
    check(summary, results, n, complete=consumer == "drain")
    if consumer == "drain" and deadline is None and not fail_rate:
        assert summary.rows_read == n
        assert summary.rows_rejected == len(bad)
        assert summary.rows_succeeded == n - len(bad)
        assert server.stored_rows == n - len(bad)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n=st.integers(0, 250),
    bad_share=st.floats(0, 1),
    batch_size=st.integers(1, 60),
    deadline=st.one_of(st.none(), st.floats(0.0005, 0.08)),
    consumer=st.sampled_from(["drain", "break", "cancel"]),
    k=st.integers(1, 20),
    seed=st.integers(0, 2**16),
    fail_rate=st.sampled_from([0.0, 0.0, 0.2]),
)
def test_invariants_hold_for_every_run(  # noqa: PLR0917
    n: int,
    bad_share: float,
    batch_size: int,
    deadline: float | None,
    consumer: str,
    k: int,
    seed: int,
    fail_rate: float,
) -> None:
    bad = frozenset(i for i in range(n) if (i * 7919 + seed) % 1000 < bad_share * 1000)
    asyncio.run(drive(n, bad, batch_size, deadline, consumer, k, seed, fail_rate))


@pytest.mark.parametrize("deadline", [0.0005, 0.001, 0.003, 0.01])
def test_tiny_deadlines_lose_no_row(deadline: float) -> None:
    asyncio.run(drive(2000, frozenset(), 50, deadline, "drain", 0, 1, 0.0))
