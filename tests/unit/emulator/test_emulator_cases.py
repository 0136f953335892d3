"""Pure parts of the case operations and of the introspection guard (no event loop, no socket)."""

from __future__ import annotations

import uuid
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given

from debitura_async.emulator.cases import CaseBook, split_references
from debitura_async.emulator.config import Partner, World
from debitura_async.emulator.core import ApiProblem
from debitura_async.emulator.introspection import TOKEN_HEADER, check_request, is_protected
from debitura_async.emulator.references import (
    MAX_REFERENCE_LENGTH,
    generate_references,
    parse_references,
)

# ---------------------------------------------------------------- references in the world


def test_generated_references_are_deterministic_by_seed() -> None:
    first = World.generate(partners=2, cases_per_partner=60, seed=3)
    again = World.generate(partners=2, cases_per_partner=60, seed=3)
    other = World.generate(partners=2, cases_per_partner=60, seed=4)
    assert first == again
    assert [p.references for p in first.partners] == [p.references for p in again.partners]
    assert first.partners[0].case_ids != other.partners[0].case_ids


def test_generated_references_have_the_awkward_shapes_and_gaps() -> None:
    partner = World.generate(partners=1, cases_per_partner=60).partners[0]
    refs = dict(partner.references)
    texts = list(refs.values())
    assert refs[partner.case_ids[0]] == "112179442 & 112179443"
    assert len(refs) == 54  # every tenth case has no reference
    assert all(case not in refs for case in partner.case_ids[9::10])
    assert len(set(texts)) == len(texts)
    assert sum("," in t for t in texts) == 5
    assert any("/" in t and " " in t for t in texts)
    assert any(len(t) == MAX_REFERENCE_LENGTH for t in texts)
    assert all(0 < len(t) <= MAX_REFERENCE_LENGTH for t in texts)


def test_partners_get_disjoint_generated_references() -> None:
    world = World.generate(partners=3, cases_per_partner=40)
    sets = [{t for _, t in p.references} for p in world.partners]
    assert not (sets[0] & sets[1]) and not (sets[1] & sets[2])  # noqa: PT018


def test_a_world_dict_round_trips_with_references() -> None:
    world = World.generate(partners=2, cases_per_partner=12, seed=9)
    data = world.to_dict()
    assert set(data["partners"][0]) == {"id", "name", "apiKey", "caseIds", "partnerReferences"}
    assert World.from_dict(data) == world


def test_a_world_file_without_references_still_loads() -> None:
    case = uuid.uuid4()
    world = World.from_dict({"partners": [{"apiKey": "k", "caseIds": [str(case)]}]})
    assert world.partners[0].references == ()


CASE_A, CASE_B = uuid.UUID(int=1, version=4), uuid.UUID(int=2, version=4)


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        ([], TypeError, "must be an object"),
        ({str(uuid.uuid4()): "X"}, ValueError, "not one of its caseIds"),
        ({str(CASE_A): "X", str(CASE_B): "X"}, ValueError, "used by two cases"),
        ({str(CASE_A): ""}, ValueError, "empty or blank"),
        ({str(CASE_A): "   "}, ValueError, "empty or blank"),
        ({str(CASE_A): "x" * 129}, ValueError, "at most 128"),
        ({str(CASE_A): 42}, TypeError, "must be a string"),
        ({"not-a-uuid": "X"}, ValueError, "'not-a-uuid' is not a case UUID"),
    ],
)
def test_bad_partner_references_in_a_world_file(
    raw: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parse_references(raw, (CASE_A, CASE_B))


def test_references_keep_case_order() -> None:
    raw = {str(CASE_B): "B", str(CASE_A): "x" * MAX_REFERENCE_LENGTH}
    assert parse_references(raw, (CASE_A, CASE_B)) == ((CASE_A, "x" * 128), (CASE_B, "B"))


def test_generate_references_of_no_cases() -> None:
    assert generate_references((), seed=0, partner_index=0) == ()


# ---------------------------------------------------------------- lookup rules


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a"], ["a"]),
        (["a,b", "c"], ["a", "b", "c"]),
        ([" a , b "], ["a", "b"]),
        (["a,,b,"], ["a", "b"]),
        (["112179442 & 112179443"], ["112179442 & 112179443"]),
        ([",".join(map(str, range(100)))], [str(i) for i in range(100)]),
    ],
)
def test_split_references(values: list[str], expected: list[str]) -> None:
    assert split_references(values) == expected


@pytest.mark.parametrize(
    "values", [[], [""], [" , ,"], [",".join(map(str, range(101)))], ["a"] * 101]
)
def test_split_references_400(values: list[str]) -> None:
    result = split_references(values)
    assert isinstance(result, ApiProblem)
    assert result.status == 400


def _book() -> tuple[CaseBook, Partner, Partner]:
    book = CaseBook(World.generate(partners=2, cases_per_partner=20))
    return book, book.world.partners[0], book.world.partners[1]


def test_lookup_is_exact_and_per_partner() -> None:
    book, own, other = _book()
    text = dict(own.references)[own.case_ids[1]]
    assert book.case_for(own, text) == str(own.case_ids[1])
    assert book.case_for(own, text + " ") is None
    assert book.case_for(own, text.lower() + "x") is None
    assert book.case_for(other, text) is None
    theirs = dict(other.references)[other.case_ids[1]]
    assert book.lookup(own, [text, theirs, text]) == {text: book.invoice(own.case_ids[1])}


def test_the_invoice_is_stable_and_names_the_case() -> None:
    book, own, _ = _book()
    again = CaseBook(book.world)
    dto: dict[str, Any] = book.invoice(own.case_ids[0])
    assert dto == again.invoice(str(own.case_ids[0]).upper())
    assert dto["id"] == str(own.case_ids[0])
    assert dto["collectionPartner"]["name"] == own.name
    assert dto["remainder"] >= 0
    assert dto["totalAddedFees"] == pytest.approx(
        dto["interestFees"] + dto["reminderFees"] + dto["collectionFees"]
    )


def test_timeline_only_for_the_owner() -> None:
    book, own, other = _book()
    assert book.timeline(other, own.case_ids[0], []) is None
    assert book.timeline(own, uuid.uuid4(), []) is None
    timeline = book.timeline(own, own.case_ids[0], [])
    assert timeline is not None
    assert [i["type"] for i in timeline["items"]] == ["CaseAssigned", "StatusChanged"]


# ---------------------------------------------------------------- the introspection guard

PORT = 8123
GOOD = {"Host": f"127.0.0.1:{PORT}", TOKEN_HEADER: "t" * 20}


def _check(headers: dict[str, str], **kw: Any) -> int | None:
    settings: dict[str, Any] = {
        "method": "GET",
        "token": "t" * 20,
        "port": PORT,
        "bound_host": "127.0.0.1",
    }
    settings.update(kw)
    problem = check_request(headers=headers, **settings)
    return None if problem is None else problem.status


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (GOOD, None),
        ({**GOOD, "Host": f"localhost:{PORT}"}, None),
        ({**GOOD, "Host": f"[::1]:{PORT}"}, None),
        ({**GOOD, "Host": "127.0.0.1"}, None),  # no port: port 80 named, never a rebinding
        ({**GOOD, "Origin": f"http://127.0.0.1:{PORT}"}, None),
        ({**GOOD, "Origin": f"http://localhost:{PORT}"}, None),
        ({**GOOD, "Sec-Fetch-Site": "none"}, None),
        ({"Host": f"127.0.0.1:{PORT}"}, 401),
        ({**GOOD, TOKEN_HEADER: "T" * 20}, 403),
        ({**GOOD, "Host": f"evil.example:{PORT}"}, 403),
        ({**GOOD, "Host": f"127.0.0.1:{PORT + 1}"}, 403),
        ({**GOOD, "Host": "user@127.0.0.1"}, 403),
        ({**GOOD, "Host": ""}, 403),
        ({TOKEN_HEADER: "t" * 20}, 403),  # HTTP/1.0 without Host
        ({**GOOD, "Origin": "http://evil.example"}, 403),
        ({**GOOD, "Origin": "null"}, 403),
        ({**GOOD, "Origin": f"https://127.0.0.1:{PORT}"}, 403),
        ({**GOOD, "Origin": "http://127.0.0.1"}, 403),  # port 80, not ours
        ({**GOOD, "Sec-Fetch-Site": "cross-site"}, 403),
        ({**GOOD, "Sec-Fetch-Site": "same-site"}, 403),
    ],
)
def test_check_request(headers: dict[str, str], expected: int | None) -> None:
    assert _check(headers) == expected


def test_the_bound_host_name_is_accepted() -> None:
    headers = {**GOOD, "Host": f"devbox.internal:{PORT}"}
    assert _check(headers) == 403
    assert _check(headers, bound_host="devbox.internal") is None


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_form_body_on_a_state_change_is_refused(kind: str) -> None:
    assert _check(GOOD, method="POST", content_type=kind) == 415
    assert _check(GOOD, method="POST", content_type="application/json") is None
    assert _check({}, method="POST", content_type=kind) == 403  # Host first


@given(name=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True))
def test_no_dns_name_but_localhost_passes_the_host_check(name: str) -> None:
    status = _check({**GOOD, "Host": f"{name}:{PORT}"})
    assert status == (None if name == "localhost" else 403)


@given(token=st.text(min_size=1, max_size=40))
def test_only_the_exact_token_passes(token: str) -> None:
    headers = {**GOOD, TOKEN_HEADER: token}
    assert _check(headers) == (None if token == "t" * 20 else 403)


def test_is_protected() -> None:
    assert is_protected("/_emulator")
    assert is_protected("/_emulator/reset")
    assert not is_protected("/_emulatorx")
    assert not is_protected("/me")
