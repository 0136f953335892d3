"""Guards for the library changes made for the benchmarks (see benchmarks/README.md).

* ``_wire.encode_row`` (the pipeline's per-row encoder) gives exactly the converter's bytes.
* ``Batch.digest`` (fed in one call) gives exactly the per-part digest, so Idempotency-Keys, and
  the resuming of runs journaled before the change, are unchanged.
* The reader loop in ``ingest.py`` reads input lazily, one item at a time, and closes the
  input's iterator when the run stops early.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import DebituraClient, IngestionJobRow, ValidationError
from debitura_async._batching import Batch
from debitura_async._polling import PollPolicy
from debitura_async._wire import encode_row, row_to_wire
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel

ZONES = st.sampled_from(
    [UTC, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)


def converter_bytes(row: IngestionJobRow) -> bytes:
    return orjson.dumps(row_to_wire(row))


@settings(max_examples=400, deadline=None)
@given(
    case=st.uuids(),
    description=st.text(min_size=1),
    ref=st.none() | st.text(),
    event_date=st.none() | st.datetimes(timezones=ZONES),
)
def test_encode_row_matches_the_converter(
    case: uuid.UUID, description: str, ref: str | None, event_date: datetime | None
) -> None:
    row = IngestionJobRow(case, description, external_ref=ref, event_date=event_date)
    assert encode_row(row) == converter_bytes(row)


@pytest.mark.parametrize(
    "row",
    [
        IngestionJobRow(uuid.UUID(int=1), "lone \ud800 surrogate"),
        IngestionJobRow(uuid.UUID(int=2), "naive", event_date=datetime(2026, 1, 1)),
    ],
)
def test_encode_row_fails_like_the_converter(row: IngestionJobRow) -> None:
    with pytest.raises(Exception) as expected:  # noqa: PT011 - whatever the converter raises
        converter_bytes(row)
    with pytest.raises(expected.type, match="^" + str(expected.value)[:20]):
        encode_row(row)


def _per_part_digest(parts: tuple[bytes, ...]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\n")
    return h.hexdigest()


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.binary(max_size=64), max_size=30).map(tuple))
def test_digest_matches_the_per_part_digest(parts: tuple[bytes, ...]) -> None:
    batch = Batch(index=0, positions=tuple(range(len(parts))), parts=parts)
    assert batch.digest() == _per_part_digest(parts)


# -- the reader loop ---------------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(latency=LatencyModel.zero(), seed=2)) as emu:
        yield emu


POLICY = PollPolicy().scaled(1000.0)


@pytest.mark.anyio
async def test_sync_input_is_read_lazily_and_closed_on_a_bad_row(emulator: Emulator) -> None:
    pulled: list[int] = []
    closed: list[bool] = []

    def rows() -> Iterator[Any]:
        try:
            for i in range(5000):
                pulled.append(i)
                yield {"caseId": "bad"} if i == 2100 else IngestionJobRow(emulator.case_ids[0], "n")
        finally:
            closed.append(True)

    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        with pytest.raises(ValidationError):
            await client.ingest_all(rows(), on_invalid="raise", polling=POLICY)
    assert pulled[-1] == 2100  # nothing read past the bad row
    assert closed == [True]  # closed by the pipeline, not left to the garbage collector


@pytest.mark.anyio
async def test_async_input_is_closed_when_the_run_stops(emulator: Emulator) -> None:
    closed: list[bool] = []

    async def rows() -> AsyncIterator[Any]:
        try:
            for i in range(5000):
                yield {"caseId": "bad"} if i == 10 else IngestionJobRow(emulator.case_ids[0], "n")
        finally:
            closed.append(True)

    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        with pytest.raises(ValidationError):
            await client.ingest_all(rows(), on_invalid="raise", polling=POLICY)
    assert closed == [True]


@pytest.mark.anyio
async def test_sync_input_of_every_length_is_read_whole(emulator: Emulator) -> None:
    async with DebituraClient(emulator.api_key, base_url=emulator.url) as client:
        for count in (0, 1, 255, 256, 257, 1001):
            rows = (IngestionJobRow(emulator.case_ids[i % 5], f"n{i}") for i in range(count))
            summary = await client.ingest_all(rows, polling=POLICY)
            assert (summary.rows_read, summary.rows_succeeded) == (count, count)
