"""The mapping/row fast path (``_fast``) vouches only for rows the slow path accepts, and gives
their bytes exactly.

The slow path is the obviously right one: ``item_problems`` builds an ``IngestionJobRow`` (or
words the problems) and the cattrs converter writes it. Whatever the fast path returns instead
of None must be a row the slow path accepts with no problem, whose wire bytes are the
converter's. Rows it returns None for go down the slow path in the pipeline, so their messages
are the slow path's by construction (``tests/integration/ingest/test_fast_path_wire.py``
checks that end to end).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import IngestionJobRow
from debitura_async._batching import Batcher
from debitura_async._fast import KNOWN_IDS, MAX_DESCRIPTION_CHARS, wire_of_mapping
from debitura_async._validate import MAX_DESCRIPTION_CHARS as RULE_LIMIT
from debitura_async._validate import item_problems
from debitura_async._wire import encode_row, encode_rows, row_to_wire
from debitura_async.models import PartnerIngestEventType

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)
LATEST = NOW + SKEW
CASE = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")

OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)
AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
)
DATETIMES = (
    AWARE
    | st.datetimes()  # naive
    | st.datetimes(timezones=st.just(ZoneInfo("Europe/Copenhagen")))
    | st.sampled_from(
        [
            NOW,
            LATEST,
            LATEST + timedelta(microseconds=1),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2))),
        ]
    )
)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """ISO 8601 text as exports write it: 'Z', '+00:00', other offsets, none, spaces, fractions."""
    value = draw(DATETIMES)
    text = value.isoformat(sep=draw(st.sampled_from(["T", " "])))
    if draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " ", "\n"]))


CASE_IDS = (
    st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(lambda u: "{" + str(u) + "}")
    | st.uuids().map(lambda u: f"urn:uuid:{u}")
    | st.uuids().map(lambda u: " " + str(u))
    | st.uuids()
    | st.text(max_size=40)
    | st.sampled_from([None, 7, b"x", "123e4567-e89b-12d3-a456-42661417400\u0660"])
)
DESCRIPTIONS = st.text(max_size=30) | st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "x" * MAX_DESCRIPTION_CHARS,
        "x" * (MAX_DESCRIPTION_CHARS + 1),
        "Ring på",
        "lone \ud800",
        None,
        5,
    ]
)
EVENT_DATES = iso_texts() | DATETIMES | st.text(max_size=12) | st.sampled_from([None, 0, "Z"])
TYPES = st.sampled_from([0, 1, -1, True, False, 0.0, "0", None, PartnerIngestEventType.NOTE])
REFS = st.text(max_size=8) | st.sampled_from([None, 12, "lone \udfff", ""])
KEYS = st.sampled_from(
    [
        "caseId",
        "description",
        "eventDate",
        "externalRef",
        "type",
        "case_id",
        "event_date",
        "external_ref",
        "note",
        3,
    ]
)


@st.composite
def mappings(draw: st.DrawFn) -> dict[Any, Any]:
    row: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):
        row["caseId"] = draw(CASE_IDS)
    if draw(st.integers(0, 9)):
        row["description"] = draw(DESCRIPTIONS)
    if draw(st.booleans()):
        row["eventDate"] = draw(EVENT_DATES)
    if draw(st.booleans()):
        row["externalRef"] = draw(REFS)
    if draw(st.integers(0, 3)) == 0:
        row["type"] = draw(TYPES)
    if draw(st.integers(0, 5)) == 0:
        row[draw(KEYS)] = draw(st.none() | st.text(max_size=3) | CASE_IDS)
    order = draw(st.permutations(list(row)))
    return {key: row[key] for key in order}


KNOWN: set[str] = set()


def converter_bytes(row: IngestionJobRow) -> bytes:
    return orjson.dumps(row_to_wire(row))


def test_the_limit_is_the_rule() -> None:
    assert MAX_DESCRIPTION_CHARS == RULE_LIMIT


@settings(max_examples=3000, deadline=None)
@given(data=mappings())
def test_fast_mapping_vouches_only_for_valid_rows_and_gives_their_bytes(
    data: dict[Any, Any],
) -> None:
    wire = wire_of_mapping(data, LATEST, KNOWN)  # case ids seen before take a shortcut
    assert wire == wire_of_mapping(data, LATEST)  # which changes nothing
    if wire is None:
        return
    row, problems = item_problems(data, 0, now=NOW, skew=SKEW)
    assert problems == []
    assert row is not None
    assert encode_row(wire) == converter_bytes(row)
    assert encode_rows([wire, row]) == orjson.dumps({"rows": [row_to_wire(row), row_to_wire(row)]})


@pytest.mark.parametrize(
    "data",
    [
        {"caseId": str(CASE), "description": "Called."},
        {"caseId": str(CASE), "description": "Ring på torsdag", "externalRef": "CRM-ø"},
        {"caseId": str(CASE).upper(), "description": "x", "type": 0},
        {"caseId": CASE, "description": "x", "eventDate": "2026-02-01T09:30:00Z"},
        {"caseId": "{" + str(CASE) + "}", "description": "x", "eventDate": "2026-02-01T10:30+01"},
        {"caseId": str(CASE), "description": "x", "eventDate": NOW, "externalRef": None},
        {
            "externalRef": "N-1",
            "eventDate": "2026-02-01 09:30:00.5Z",
            "description": "x",
            "caseId": str(CASE),
        },
    ],
)
def test_the_common_rows_take_the_fast_path(data: dict[str, Any]) -> None:
    wire = wire_of_mapping(data, LATEST)
    assert wire is not None
    row, problems = item_problems(data, 0, now=NOW, skew=SKEW)
    assert row is not None
    assert not problems
    assert encode_row(wire) == converter_bytes(row)
    assert list(wire) == list(row_to_wire(row))  # the converter's key order


@pytest.mark.parametrize(
    "data",
    [
        {"case_id": str(CASE), "description": "snake_case keys"},
        {"caseId": str(CASE), "description": "x", "eventDate": "2026-02-01T09:30:00"},
        {"caseId": str(CASE), "description": "x", "eventDate": " 2026-02-01T09:30:00Z"},
        {"caseId": str(CASE), "description": "x", "eventDate": "2027-01-01T00:00:00Z"},
        {"caseId": str(CASE), "description": " "},
        {"caseId": str(CASE), "description": "x", "type": True},
        {"caseId": str(CASE), "description": "x", "extra": 1},
    ],
)
def test_the_rest_is_left_to_the_slow_path(data: dict[str, Any]) -> None:
    assert wire_of_mapping(data, LATEST) is None


@settings(max_examples=200, deadline=None)
@given(items=st.lists(mappings(), max_size=12), max_rows=st.integers(1, 5))
def test_batches_of_fast_and_slow_rows_have_the_slow_paths_bodies(
    items: list[dict[Any, Any]], max_rows: int
) -> None:
    fast, slow = Batcher(max_rows), Batcher(max_rows)
    fast_out, slow_out = [], []
    for position, data in enumerate(items):
        row, problems = item_problems(data, position, now=NOW, skew=SKEW)
        wire = wire_of_mapping(data, LATEST)
        if row is None or problems:
            assert wire is None
            continue
        fast_out.append(fast.add(position, wire if wire is not None else row))
        slow_out.append(slow.add(position, row))
    fast_out.append(fast.flush())
    slow_out.append(slow.flush())
    fast_batches = [b for b in fast_out if b is not None]
    slow_batches = [b for b in slow_out if b is not None]
    assert [b.body() for b in fast_batches] == [b.body() for b in slow_batches]
    assert [b.row_keys for b in fast_batches] == [b.row_keys for b in slow_batches]
    for f, s in zip(fast_batches, slow_batches, strict=True):
        if len(f) > 1:  # the 400-split re-encodes parts: they match too
            assert [p.body() for p in f.halves()] == [p.body() for p in s.halves()]
            assert f.without([0]).body() == s.without([0]).body()


def test_the_case_id_memory_is_bounded() -> None:
    known: set[str] = set()
    for i in range(KNOWN_IDS + 10):
        data = {"caseId": str(uuid.UUID(int=i)), "description": "x"}
        assert wire_of_mapping(data, LATEST, known) == {**data, "type": 0}
        assert len(known) <= KNOWN_IDS
    assert str(uuid.UUID(int=KNOWN_IDS + 9)) in known
