"""The chunk fast path (``_fast_chunk.wires_of_chunk``) gives, for a chunk it takes whole, exactly
what the per-row fast path gives row by row (same wire dicts, same key order, same bytes), and
takes nothing the per-row paths would refuse.

The per-row path is itself tested against the slow path (``test_fast_mapping.py``), so a chunk's
rows are, by transitivity, what the slow path accepts, with its bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import event, given, settings
from hypothesis import strategies as st

from debitura_async import IngestionJobRow
from debitura_async._batching import Batch, Batcher, encode_group
from debitura_async._fast import KNOWN_IDS, wire_of_mapping, wire_of_row
from debitura_async._fast_chunk import wires_of_chunk
from debitura_async._validate import plainly_valid
from debitura_async._wire import _row_dict, encode_row, encode_rows, row_to_wire
from debitura_async.models import PartnerIngestEventType

from .test_fast_mapping import LATEST, mappings
from .test_fast_paths import ROWS

OPTIONAL = ("eventDate", "externalRef", "type")
WIRE_ORDER = ["caseId", "description", "type", "eventDate", "externalRef"]
GOOD_IDS = st.uuids().map(str)
ODD_IDS = st.uuids().map(lambda u: str(u).upper()) | st.uuids() | st.sampled_from(["x", None])
DESCRIPTIONS = st.text(min_size=1, max_size=20)
ODD_DESCRIPTIONS = st.sampled_from(["", " ", "lone \ud800", 5, "x" * 10_001])
DATES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)
DATE_TEXTS = (
    DATES.map(lambda d: d.isoformat())
    | DATES.map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | st.sampled_from(
        ["2026-02-01T09:30:00Z", "2026-02-01T09:30:00.000100Z", "0999-01-01T00:00:00Z"]
    )
)
ODD_DATES = st.sampled_from(
    [
        None,
        "2026-02-01T09:30:00",
        " 2026-02-01T09:30:00Z",
        "2026-02-01T10:30:00+01:00",
        datetime(2026, 2, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 2, 1, tzinfo=timezone(timedelta(0))),  # equal to UTC, but not UTC
        LATEST + timedelta(microseconds=1),
        "nope",
    ]
)
REFS = st.text(max_size=8)
ODD_REFS = st.sampled_from([None, 7, "lone \udfff"])
TYPES = st.sampled_from([0, PartnerIngestEventType.NOTE])
ODD_TYPES = st.sampled_from([1, True, 0.0, "0", None])


@st.composite
def chunks(draw: st.DrawFn) -> list[Any]:
    """Mostly uniform chunks of dict rows (one shape, in some key order), with now and then an
    odd value, an odd row of another shape, or a typed row."""
    keys = ["caseId", "description", *draw(st.lists(st.sampled_from(OPTIONAL), unique=True))]
    if draw(st.integers(0, 2)) == 0:  # the converter's order: may be sent as they are
        order = sorted({*keys, "type"}, key=WIRE_ORDER.index)
    else:
        order = draw(st.permutations(keys))
    dates_as_text = draw(st.booleans())
    items: list[Any] = []
    for _ in range(draw(st.integers(0, 12))):
        odd = draw(st.integers(0, 60)) == 0
        if draw(st.integers(0, 80)) == 0:
            items.append(draw(mappings()))
            continue
        if draw(st.integers(0, 80)) == 0:
            items.append(IngestionJobRow(uuid.uuid4(), "typed"))
            continue
        row: dict[str, Any] = {
            "caseId": draw(ODD_IDS if odd else GOOD_IDS),
            "description": draw(ODD_DESCRIPTIONS if odd else DESCRIPTIONS),
            "eventDate": draw(ODD_DATES if odd else (DATE_TEXTS if dates_as_text else DATES)),
            "externalRef": draw(ODD_REFS if odd else REFS),
            "type": draw(ODD_TYPES if odd else TYPES),
        }
        items.append({key: row[key] for key in order})
    return items


def _same(wires: list[Any], items: list[Any]) -> None:
    assert len(wires) == len(items)
    for wire, item in zip(wires, items, strict=True):
        if type(item) is IngestionJobRow:
            assert plainly_valid(item, LATEST)
            expected_row = _row_dict(item)  # what the row encoded by itself gave
            assert list(wire.items()) == list(expected_row.items())
            assert [type(v) for v in wire.values()] == [type(v) for v in expected_row.values()]
            assert encode_row(wire) == encode_row(item)
            continue
        expected = wire_of_mapping(item, LATEST)
        assert expected is not None  # the per-row path vouches for it too
        assert list(wire) == list(expected)  # the same keys in the same order
        assert encode_row(wire) == encode_row(expected)  # the same bytes
        if wire is not item:  # a new wire dict: exactly the per-row one
            assert list(wire.items()) == list(expected.items())
            assert [type(v) for v in wire.values()] == [type(v) for v in expected.values()]


@settings(max_examples=1000, deadline=None)
@given(items=chunks())
def test_a_chunk_taken_whole_is_what_the_per_row_path_gives(items: list[Any]) -> None:
    known: set[str] = set()
    wires = wires_of_chunk(items, LATEST, known)
    event("empty or row by row" if not wires else "as they are" if wires[0] is items[0] else "new")
    if wires is not None:
        _same(wires, items)
    again = wires_of_chunk(items, LATEST, known)  # with the case ids now known: the same
    assert (again is None) == (wires is None)
    if again is not None:
        _same(again, items)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(mappings(), max_size=6))
def test_odd_chunks_are_never_vouched_for_wrongly(items: list[Any]) -> None:
    wires = wires_of_chunk(items, LATEST)
    if wires is not None:
        _same(wires, items)


@settings(max_examples=300, deadline=None)
@given(
    items=chunks(),
    max_rows=st.integers(1, 6),
    plan=st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["one", "kept", "dropped"]))),
)
def test_batches_filled_with_encoded_groups_are_the_batches_filled_row_by_row(
    items: list[Any], max_rows: int, plan: list[tuple[int, str]]
) -> None:
    wires = wires_of_chunk(items, LATEST)
    if wires is None:
        return
    keys = [f"k{i}" for i in range(len(wires))]
    mixed, single = Batcher(max_rows), Batcher(max_rows)
    got: list[Batch | None] = []
    steps = iter(plan)
    position = 0
    while position < len(wires):
        size, how = next(steps, (1, "one"))
        size = min(size, mixed.room, len(wires) - position)
        group = wires[position : position + size]
        if how == "one":
            got += [mixed.add(position + i, w, keys[position + i]) for i, w in enumerate(group)]
        else:
            kept = group if how == "kept" else None
            encoded = encode_group(group)
            got.append(mixed.add_encoded(position, size, encoded, keys[position:][:size], kept))
        position += size
    want = [single.add(i, w, keys[i]) for i, w in enumerate(wires)]
    got.append(mixed.flush())
    want.append(single.flush())
    mine = [b for b in got if b is not None]
    theirs = [b for b in want if b is not None]
    assert [(b.index, b.positions, b.row_keys, b.body()) for b in mine] == [
        (b.index, b.positions, b.row_keys, b.body()) for b in theirs
    ]
    assert [b.body() for b in mine] == [encode_rows(b.rows) for b in theirs]
    for m, t in zip(mine, theirs, strict=True):  # the 400-split re-encodes parts: they match
        assert [p.body() for p in m.halves()] == [p.body() for p in t.halves()]
        assert m.without([0]).body() == t.without([0]).body()
        assert m.without([0]).row_keys == t.without([0]).row_keys


def test_the_common_chunks_are_taken_whole() -> None:
    case = str(uuid.uuid4())
    csv_like = [
        {"caseId": case, "description": f"n{i}", "eventDate": "2026-02-01 09:30:00Z"}
        for i in range(50)
    ]
    api_like = [
        {
            "caseId": case,
            "description": "Ring på",
            "type": 0,
            "eventDate": "2026-02-01T09:30:00.5+00:00",
            "externalRef": f"r{i}",
        }
        for i in range(50)
    ]
    typed = [IngestionJobRow(uuid.uuid4(), "x") for _ in range(5)]
    as_is = [{**row, "eventDate": "2026-02-01T09:30:00.500000Z"} for row in api_like]
    wires = wires_of_chunk(as_is, LATEST)
    assert wires is not None
    assert all(w is r for w, r in zip(wires, as_is, strict=True))  # sent as they are
    for items in (csv_like, api_like, typed, [{"caseId": case, "description": "x"}]):
        wires = wires_of_chunk(items, LATEST)
        assert wires is not None
        _same(wires, items)
    assert wires_of_chunk([], LATEST) == []


def test_the_case_id_memory_stays_bounded() -> None:
    known: set[str] = set()
    for start in range(0, KNOWN_IDS + 600, 500):
        items = [
            {"caseId": str(uuid.UUID(int=i)), "description": "x"} for i in range(start, start + 500)
        ]
        assert wires_of_chunk(items, LATEST, known) is not None
        assert len(known) <= KNOWN_IDS


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROWS, max_size=8))
def test_a_chunk_of_typed_rows_is_taken_whole_when_each_is_plainly_valid(
    rows: list[IngestionJobRow],
) -> None:
    wires = wires_of_chunk(rows, LATEST)
    if all(plainly_valid(r, LATEST) for r in rows):
        assert wires is not None
        _same(wires, rows)
        # the chunk's bytes: those of the rows themselves, and the converter's
        assert encode_group(wires) == encode_group(rows)
        assert encode_rows(wires) == orjson.dumps({"rows": [row_to_wire(r) for r in rows]})
    else:
        assert wires is None


ODD_TEXTS = st.sampled_from(["", " \t", "x" * 10_001, "ÿ non-ASCII", "lone \ud800", 7, None])
ODD_EVENT_DATES = st.sampled_from(
    [
        datetime(2026, 2, 1),  # naive
        datetime(2026, 2, 1, tzinfo=timezone(timedelta(0))),  # equal to UTC, but not UTC
        datetime(2026, 2, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(1, 1, 1, 5, tzinfo=UTC),
        LATEST,
        LATEST + timedelta(microseconds=1),
        "2026-02-01T09:30:00Z",
    ]
)


@st.composite
def odd_rows(draw: st.DrawFn) -> IngestionJobRow:
    """Typed rows, now and then with a field set (past attrs' converters) to an odd value."""
    row = draw(ROWS | st.builds(IngestionJobRow, st.uuids(), DESCRIPTIONS, event_date=DATES))
    odd = {
        "description": ODD_TEXTS,
        "external_ref": ODD_TEXTS,
        "event_date": ODD_EVENT_DATES,
        "case_id": st.uuids().map(str),
        "type": st.sampled_from(list(PartnerIngestEventType)),
    }
    for name in draw(st.lists(st.sampled_from(sorted(odd)), unique=True, max_size=2)):
        object.__setattr__(row, name, draw(odd[name]))
    return row


@settings(max_examples=1000, deadline=None)
@given(row=odd_rows())
def test_the_fused_typed_row_path_is_plainly_valid_then_row_dict(row: IngestionJobRow) -> None:
    """``wire_of_row`` says yes exactly when ``plainly_valid`` does, and then gives
    ``_row_dict``'s dict: the same keys in the same order, values of the same types, the same
    bytes."""
    wire = wire_of_row(row, LATEST)
    event("vouched for" if wire is not None else "not")
    assert (wire is not None) == plainly_valid(row, LATEST)
    if wire is not None:
        expected = _row_dict(row)
        assert list(wire.items()) == list(expected.items())
        assert [type(v) for v in wire.values()] == [type(v) for v in expected.values()]
        assert encode_row(wire) == encode_row(row)


def test_rows_added_one_by_one_before_a_group_are_in_the_body() -> None:
    rows = [{"caseId": str(uuid.UUID(int=i)), "description": f"n{i}", "type": 0} for i in range(4)]
    for kept in (True, False):
        batcher = Batcher(4)
        assert batcher.add(0, rows[0]) is None
        assert (
            batcher.add_encoded(
                1, 2, encode_group(rows[1:3]), ["a", "b"], rows[1:3] if kept else None
            )
            is None
        )
        batch = batcher.add(3, rows[3])
        assert batch is not None
        assert batch.body() == encode_rows(rows)
        assert batch.row_keys == (None, "a", "b", None)
        assert batch.halves()[1].body() == encode_rows(rows[2:])
