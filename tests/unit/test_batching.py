"""Batching rows into request bodies: partitions, limits, stable keys, splitting."""

from __future__ import annotations

import hashlib
import re
import uuid

import orjson
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import IngestionJobRow
from debitura_async._batching import RUN_ID_PREFIX, Batch, Batcher, batches, encode_row, new_run_id
from debitura_async._options import make_options
from debitura_async._wire import encode_rows

CASE = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")


def row(i: int, text: str = "note") -> IngestionJobRow:
    return IngestionJobRow(CASE, f"{text} {i}", external_ref=f"r{i}")


def test_body_equals_the_wire_encoding_of_the_rows() -> None:
    rows = [row(i) for i in range(5)]
    (batch,) = batches(enumerate(rows))
    assert batch.body() == encode_rows(rows)
    assert orjson.loads(batch.body())["rows"][4]["externalRef"] == "r4"


def test_full_batches_then_a_partial_one() -> None:
    out = list(batches(((i, row(i)) for i in range(2500)), max_rows=1000))
    assert [len(b) for b in out] == [1000, 1000, 500]
    assert [b.index for b in out] == [0, 1, 2]
    assert (out[1].first_position, out[1].last_position) == (1000, 1999)


@pytest.mark.parametrize("size", [0, 1001])
def test_batch_size_is_checked(size: int) -> None:
    with pytest.raises(ValueError, match="batch size"):
        Batcher(size)


def test_byte_cap_cuts_batches_to_fit() -> None:
    part = len(encode_row(row(0, "x" * 100)))
    batcher = Batcher(1000, max_bytes=part * 3 + 20)
    out = [b for i in range(10) if (b := batcher.add(i, row(i, "x" * 100))) is not None]
    last = batcher.flush()
    assert last is not None
    out.append(last)
    assert [len(b) for b in out] == [3, 3, 3, 1]
    assert all(len(b.body()) <= part * 3 + 20 for b in out)


@pytest.mark.parametrize("run_id", ["run1", "0123456789abcdef", RUN_ID_PREFIX + "0123456789abcdef"])
def test_keys_are_stable_and_content_bound(run_id: str) -> None:
    """In both digest schemes: a caller's run id, one 0.1.0 made, one :func:`new_run_id` makes."""
    a = Batch(index=3, positions=(7, 8), rows=(row(1), row(2)))
    same = Batch(index=3, positions=(70, 80), rows=(row(1), row(2)))
    other = Batch(index=3, positions=(7, 8), rows=(row(1), row(3)))
    later = Batch(index=4, positions=(7, 8), rows=a.rows)
    assert a.idempotency_key(run_id) == same.idempotency_key(run_id)
    assert a.idempotency_key(run_id) != other.idempotency_key(run_id)
    assert a.idempotency_key(run_id) != later.idempotency_key(run_id)
    assert a.idempotency_key(run_id) != a.idempotency_key(run_id + "2")
    assert len(a.idempotency_key("r" * 64)) <= 255


def test_a_run_id_of_an_earlier_version_keeps_its_sha256_keys() -> None:
    """A run started by debitura-async 0.1.0 (its id: 16 hex digits) or under an id a caller
    chose, resumed now, sends the very keys it sent then: the body's SHA-256, byte for byte."""
    batch = Batch(index=5, positions=(0, 1), rows=(row(1), row(2)))
    sha = hashlib.sha256(batch.body()).hexdigest()
    for run_id in ("16f4cee728714440", "crm-export-2026-11", "x3", "X3.abc"):
        assert batch.idempotency_key(run_id) == f"dba-{run_id}-5-{sha[:24]}"


def test_a_new_run_id_hashes_bodies_with_xxh3() -> None:
    run_id = new_run_id()
    assert re.fullmatch(r"x3\.[0-9a-f]{16}", run_id)
    assert new_run_id() != run_id
    assert make_options({"run_id": run_id}).run_id == run_id  # a valid run id for ingest()
    batch = Batch(index=0, positions=(0,), rows=(row(1),))
    fast = xxhash.xxh3_128_hexdigest(batch.body())
    assert batch.idempotency_key(run_id) == f"dba-{run_id}-0-{fast[:24]}"
    assert batch.digest(fast=True) == fast
    assert batch.digest() == hashlib.sha256(batch.body()).hexdigest()


def test_without_and_halves_keep_positions_and_parts_together() -> None:
    (batch,) = batches((10 + i, row(i)) for i in range(7))
    rest = batch.without([1, 4])
    assert rest.positions == (10, 12, 13, 15, 16)
    assert all(isinstance(r, IngestionJobRow) for r in rest.rows)
    refs = [r.external_ref for r in rest.rows if isinstance(r, IngestionJobRow)]
    assert refs == ["r0", "r2", "r3", "r5", "r6"]
    assert [r["externalRef"] for r in orjson.loads(rest.body())["rows"]] == [
        "r0",
        "r2",
        "r3",
        "r5",
        "r6",
    ]
    assert rest.without_rows().positions == rest.positions
    left, right = batch.halves()
    assert left.positions + right.positions == batch.positions
    assert left.index == right.index == batch.index


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 400),
    max_rows=st.integers(1, 1000),
    max_bytes=st.none() | st.integers(200, 5000),
)
def test_batches_partition_the_input(n: int, max_rows: int, max_bytes: int | None) -> None:
    batcher = Batcher(max_rows, max_bytes=max_bytes)
    out: list[Batch] = []
    for i in range(n):
        if (b := batcher.add(i, row(i))) is not None:
            out.append(b)
        assert len(batcher.pending) < max_rows
    if (last := batcher.flush()) is not None:
        out.append(last)
    assert [p for b in out for p in b.positions] == list(range(n))
    assert all(1 <= len(b) <= max_rows for b in out)
    if max_bytes is not None:
        assert all(len(b.body()) <= max_bytes or len(b) == 1 for b in out)
    decoded = [r["externalRef"] for b in out for r in orjson.loads(b.body())["rows"]]
    assert decoded == [f"r{i}" for i in range(n)]
