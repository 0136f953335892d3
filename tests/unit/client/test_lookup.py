"""Pure lookup planning (``_lookup``) and the case models' wire format (``_wire``), no sockets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import unquote

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import given

from debitura_async import (
    Case,
    CaseDebtor,
    CaseTimeline,
    DecodeError,
    TimelineActor,
    ValidationError,
    _lookup,
    _wire,
)

references = st.text(min_size=1, max_size=128).filter(lambda s: s.strip() != "")


def _server_split(path: str) -> list[str]:
    """What a server makes of the batch query: unquote, split on commas, trim entries."""
    query = path.split("?references=", 1)[1]
    return [part.strip() for part in unquote(query).split(",") if part.strip()]


@given(st.lists(references, max_size=400))
def test_every_reference_is_planned_once_in_order(refs: list[str]) -> None:
    wanted = _lookup.check_references(refs)
    batches, singles = _lookup.plan_lookups(wanted)
    planned = [r for batch in batches for r in batch]
    assert sorted(planned + singles) == sorted(wanted)
    assert planned == [r for r in wanted if not _lookup.needs_single_form(r)]
    assert singles == [r for r in wanted if _lookup.needs_single_form(r)]


@given(st.lists(references, max_size=400))
def test_batches_are_small_and_survive_the_servers_split(refs: list[str]) -> None:
    batches, _ = _lookup.plan_lookups(_lookup.check_references(refs))
    for batch in batches:
        assert 1 <= len(batch) <= _lookup.MAX_REFERENCES_PER_LOOKUP
        path = _lookup.batch_path(batch)
        assert len(path) <= _lookup.MAX_QUERY_CHARS + len(_lookup.LOOKUP_PATH) + 12
        assert path.isascii()
        assert _server_split(path) == batch


@given(references)
def test_the_single_form_carries_any_reference_in_one_segment(ref: str) -> None:
    path = _lookup.single_path(ref)
    segment = path.removeprefix(_lookup.LOOKUP_PATH + "/")
    assert "/" not in segment
    assert "?" not in segment
    assert "#" not in segment
    assert path.isascii()
    assert unquote(segment) == ref


def test_a_batch_holds_100_short_references() -> None:
    batches, singles = _lookup.plan_lookups([f"R{i}" for i in range(250)])
    assert [len(b) for b in batches] == [100, 100, 50]
    assert singles == []


@pytest.mark.parametrize(
    ("ref", "single"),
    [("a,b", True), (" a", True), ("a ", True), ("a b", False), ("a&b", False), ("ø", False)],
)
def test_needs_single_form(ref: str, single: bool) -> None:
    assert _lookup.needs_single_form(ref) is single


def test_check_references_lists_every_problem_and_dedupes() -> None:
    assert _lookup.check_references(["b", "a", "b"]) == ["b", "a"]
    with pytest.raises(ValidationError) as caught:
        _lookup.check_references(["ok", "", 3, "x" * 129, "\t"])
    assert [(p.index, p.field) for p in caught.value.problems] == [
        (1, "reference"),
        (2, "reference"),
        (3, "reference"),
        (4, "reference"),
    ]
    assert "at most 128" in str(caught.value)


# -- wire ------------------------------------------------------------------------------------

INVOICE = {
    "id": "2e64b16e-9e7f-4174-b87a-b0975771e47e",
    "dateCreated": "2024-11-04T10:39:00.000Z",
    "dateUpdated": None,
    "reference": "DEB-2E64B16E",
    "grossAmount": 23055,
    "isTestCase": False,
    "currentEngagementPhase": "Legal",
    "debtor": {"type": "Person", "name": "Søren Kjær", "countryAlpha2": "DK"},
    "bankAccount": {"id": 3},  # not modelled: ignored
    "someFutureField": [1, 2],
}


def test_an_invoice_dto_decodes_to_a_case() -> None:
    cases = _wire.decode_case_map(orjson.dumps({"112179442 & 112179443": INVOICE}))
    case = cases["112179442 & 112179443"]
    assert case.id == uuid.UUID(INVOICE["id"])  # type: ignore[arg-type]
    assert case.date_created == datetime(2024, 11, 4, 10, 39, tzinfo=UTC)
    assert case.gross_amount == 23055.0
    assert case.is_test_case is False
    assert case.debtor == CaseDebtor(type="Person", name="Søren Kjær", country_alpha2="DK")
    assert _wire.decode(Case, orjson.dumps(INVOICE)) == case


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"[]", "expected a JSON object"),
        (b"nope", "not JSON"),
        (orjson.dumps({"r": {"reference": "x"}}), "id"),
        (orjson.dumps({"r": {**INVOICE, "grossAmount": "12"}}), "grossAmount"),
        (orjson.dumps({"r": {**INVOICE, "isTestCase": 1}}), "isTestCase"),
        (orjson.dumps({"r": [INVOICE]}), "r"),
    ],
)
def test_a_bad_case_map_is_a_decode_error(body: bytes, where: str) -> None:
    with pytest.raises(DecodeError, match=where):
        _wire.decode_case_map(body, method="GET", path="/cases/by-partner-reference", status=200)


def test_a_timeline_decodes_with_null_items_and_actors() -> None:
    body = {
        "items": [
            {
                "date": "2026-02-01T09:30:00Z",
                "type": "Note",
                "title": None,
                "description": "Called",
                "actor": {"type": "Partner user", "name": None},
            },
            {"type": "System", "title": "x", "description": None},
        ],
        "currentEngagementPhase": None,
    }
    timeline = _wire.decode(CaseTimeline, orjson.dumps(body))
    assert timeline.items[0].actor == TimelineActor(type="Partner user")
    assert timeline.items[0].date == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert timeline.items[1].actor is None
    assert timeline.current_engagement_phase is None
    assert _wire.decode(CaseTimeline, b'{"items": null}').items == ()
    with pytest.raises(DecodeError, match="JSON array"):
        _wire.decode(CaseTimeline, b'{"items": {"a": 1}}')
    with pytest.raises(DecodeError, match=r"items\[0\]"):
        _wire.decode(CaseTimeline, b'{"items": ["a"]}')  # a string is not an empty item
    with pytest.raises(DecodeError, match=r"items\[0\]\.actor"):
        _wire.decode(CaseTimeline, b'{"items": [{"actor": "System"}]}')


def test_a_lone_surrogate_is_refused_not_crashed_on() -> None:
    with pytest.raises(ValidationError, match="surrogate"):
        _lookup.check_references(["ok", "bad\ud800"])
