"""End to end against the real emulator: the pipeline's dict fast path changes nothing visible.

The same input runs twice with the same run id: once as shipped, once with the fast path
switched off (every row down the slow path, as before it existed). The results must match:
the same batches, the same rejected rows with the same messages, and the same
Idempotency-Keys, which hash each request body, so the bytes sent were the same too.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from debitura_async import DebituraClient, IngestionJobRow, _fast, _reading
from debitura_async._fast_chunk import wires_of_chunk
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel
from debitura_async.models import JobResult

from ..conftest import fast_retry

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(latency=LatencyModel.zero(), seed=23)) as emu:
        yield emu


def inputs(emu: Emulator, n: int) -> list[Any]:
    rng = random.Random(3)
    past = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    future = datetime.now(UTC) + timedelta(days=3)
    rows: list[Any] = []
    for i in range(n):
        case = rng.choice(emu.case_ids)
        kind = rng.randrange(14)
        row: dict[str, Any] = {"caseId": str(case), "description": f"note {i}"}
        if kind == 0:
            row["caseId"] = str(case).upper()
        elif kind == 1:
            row["eventDate"] = "2026-02-01T10:30:00+01:00"
        elif kind == 2:
            row["eventDate"] = "2026-02-01T09:30:00"  # naive: rejected
        elif kind == 3:
            row["eventDate"] = future.isoformat()  # future: rejected
        elif kind == 4:
            row["description"] = "  "  # blank: rejected
        elif kind == 5:
            row = {"case_id": str(case), "description": "snake", "external_ref": f"s-{i}"}
        elif kind == 6:
            row["extra"] = 1  # unknown field: rejected
        elif kind == 7:
            row["description"] = "Ring på torsdag ✓"
        elif kind == 8:
            row["eventDate"] = past.astimezone(timezone(timedelta(hours=-5)))
        elif kind == 9:
            rows.append(IngestionJobRow(case, f"typed {i}", event_date=past, external_ref=str(i)))
            continue
        elif kind == 10:
            row["caseId"] = f"CASE-{i}"  # not a UUID: rejected
        else:
            row["eventDate"] = "2026-02-01T09:30:00.250Z"
        if i % 3:
            row.setdefault("externalRef", f"ref-{i}")
        rows.append(row)
    return rows


def _view(result: JobResult) -> tuple[Any, ...]:
    return (
        result.outcome,
        result.first_position,
        result.batch_index,
        result.positions,
        result.row_keys,
        result.idempotency_key,
        tuple((r.position, r.problems, r.key) for r in result.rejected_rows),
    )


async def _run(emu: Emulator, rows: list[Any], **options: Any) -> list[tuple[Any, ...]]:
    async with (
        DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry()) as client,
        client.ingest(rows, run_id="fastpath", **{"batch_size": 97, **options}) as results,
    ):
        return sorted([_view(r) async for r in results], key=lambda v: (v[1], v[2] or 0))


@pytest.mark.parametrize("options", [{}, {"max_body_bytes": 6000}, {"row_key": id}])
async def test_fast_and_slow_paths_send_the_same_and_report_the_same(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    rows = inputs(emulator, 1500)
    fast = await _run(emulator, rows, **options)
    _slow_path_only(monkeypatch)
    slow = await _run(emulator, rows, **options)
    assert fast == slow
    outcomes = {v[0].value for v in fast}
    assert {"completed", "rejected"} <= outcomes
    assert sum(len(v[6]) for v in fast) > 100  # plenty of rows refused, with their messages


def _slow_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch off both fast paths: every row goes down the slow path, one by one."""
    monkeypatch.setattr(_reading, "wire_of_mapping", lambda data, latest, known=None: None)
    monkeypatch.setattr(_reading, "wires_of_chunk", lambda items, latest, known=None: None)


def uniform_inputs(emu: Emulator, n: int) -> list[Any]:
    """Chunks the chunk fast path takes whole (uniform dict rows, then typed rows), with a few
    chunks that hold one bad or odd row (so they go item by item)."""
    past = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    rows: list[Any] = []
    for i in range(n):
        case = emu.case_ids[i % len(emu.case_ids)]
        if i >= 2000:
            rows.append(IngestionJobRow(case, f"typed {i}", event_date=past, external_ref=str(i)))
            continue
        row: dict[str, Any] = {
            "externalRef": f"ref-{i}",
            "caseId": str(case),
            "description": f"note {i} ✓" if i % 7 == 0 else f"note {i}",
            "eventDate": "2026-02-01T09:30:00.250Z" if i % 2 else "2026-02-01T09:30:00+00:00",
        }
        if i in (450, 1450):
            row["eventDate"] = "2026-02-01T09:30:00"  # naive: rejected
        elif i == 1100:
            row["caseId"] = str(case).upper()  # another spelling: sent canonical
        rows.append(row)
    return rows


@pytest.mark.parametrize("options", [{}, {"row_key": id}, {"batch_size": 1000}])
async def test_whole_chunks_send_the_same_and_report_the_same(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    rows = uniform_inputs(emulator, 3000)
    whole: list[int] = []

    def spy(items: list[Any], latest: datetime, known: set[str] | None = None) -> Any:
        wires = wires_of_chunk(items, latest, known)
        if wires is not None:
            whole.append(len(wires))
        return wires

    monkeypatch.setattr(_reading, "wires_of_chunk", spy)
    fast = await _run(emulator, rows, **options)
    assert sum(whole) > 1500  # most rows did go in whole chunks
    _slow_path_only(monkeypatch)
    slow = await _run(emulator, rows, **options)
    assert fast == slow
    assert sum(len(v[6]) for v in fast) == 2  # the naive dates, with the slow path's messages


def test_the_probe_rows_are_what_the_fast_path_sees() -> None:
    # Guard for the test above: most of its dict rows do take the fast path.
    latest = datetime.now(UTC)
    rows = [{"caseId": str(uuid.UUID(int=i)), "description": "x"} for i in range(3)]
    assert all(_fast.wire_of_mapping(r, latest) is not None for r in rows)
