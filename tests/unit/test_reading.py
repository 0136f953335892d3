"""The reading loop (``_reading.RowReader``) over the in-memory server: chunks keep the
row-by-row loop's counts, order and laziness."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from debitura_async import IngestionJobRow, PollPolicy
from debitura_async._reading import CHUNK

from .pipeline._fake import MemoryDebitura

pytestmark = pytest.mark.anyio

POLICY = PollPolicy.fixed(0.002)


def _row(i: int) -> dict[str, Any]:
    return {"caseId": str(uuid.UUID(int=i + 1)), "description": f"n{i}", "externalRef": f"r{i}"}


async def test_rows_read_before_an_input_error_are_counted_and_reported() -> None:
    def rows() -> Iterator[Any]:
        yield from (_row(i) for i in range(CHUNK + 44))
        raise ValueError("the export broke")

    server = MemoryDebitura()
    async with server.client() as client:
        ingestion = client.ingest(rows(), batch_size=100, polling=POLICY)

        async def drain() -> None:
            async with ingestion as results:
                async for _ in results:
                    pass

        with pytest.raises(ValueError, match="the export broke"):
            await drain()
    summary = ingestion.summary
    assert summary.rows_read == CHUNK + 44  # every row the input gave before failing
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == (
        summary.rows_succeeded + summary.rows_failed + summary.rows_unresolved
    )


async def test_a_chunk_never_reads_past_the_batch_being_filled() -> None:
    pulled: list[int] = []

    def rows() -> Iterator[Any]:
        for i in range(1000):
            pulled.append(i)
            yield _row(i)

    server = MemoryDebitura()
    async with server.client() as client:
        ingestion = client.ingest(rows(), batch_size=70, max_jobs_in_flight=1, polling=POLICY)
        async with ingestion as results:
            first = await anext(results)
            # One job in flight: the reader waits for a slot with the second batch full, and
            # has read nothing of the third.
            assert len(pulled) <= 2 * 70 + 1
            async for _ in results:
                pass
    assert first.row_count == 70
    assert ingestion.summary.rows_succeeded == 1000
    assert server.stored_rows == 1000


async def test_results_and_keys_match_reading_one_by_one() -> None:
    items: list[Any] = [_row(i) for i in range(600)]
    items[310] = {"caseId": "nope", "description": "bad"}
    items[400:450] = [
        IngestionJobRow(uuid.UUID(int=7), f"t{i}", external_ref=f"t{i}") for i in range(50)
    ]

    async def one_by_one() -> AsyncIterator[Any]:  # an async input is read item by item
        for item in items:
            yield item

    views = []
    for chunked in (True, False):
        server = MemoryDebitura()
        async with server.client() as client:
            source: Any = items if chunked else one_by_one()
            async with client.ingest(source, run_id="r", batch_size=128, polling=POLICY) as res:
                views.append(
                    sorted(
                        (r.first_position, r.positions, r.row_keys, r.idempotency_key, r.outcome)
                        for r in [x async for x in res]
                    )
                )
    assert views[0] == views[1]
    assert len(views[0]) > 5
