"""The case read operations over real HTTP: lookup by partner reference (both forms), timeline.

Plain aiohttp against a live emulator; shapes are checked by the conformance suite, these tests
check what the answers say.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from debitura_async.emulator import EmulatorConfig, Fault, FaultKind, LatencyModel, RateLimits
from debitura_async.emulator.config import Partner, World
from tests.integration.emulator.emulator_support import (
    REPO,
    assert_error_body,
    fast_config,
    note_rows,
    post_job,
    request,
    serving,
    wait_terminal,
)

pytestmark = pytest.mark.anyio

LOOKUP = "/cases/by-partner-reference"


def refs(partner: Partner) -> dict[uuid.UUID, str]:
    return dict(partner.references)


def batch_url(base: str, references: list[str]) -> str:
    return f"{base}{LOOKUP}?references=" + ",".join(quote(r, safe="") for r in references)


async def test_batch_lookup_maps_found_references_to_their_cases() -> None:
    async with serving() as (emu, session):
        own, other = emu.partners[0], emu.partners[1]
        mine = [r for r in refs(own).values() if "," not in r]
        theirs = next(iter(refs(other).values()))
        wanted = [*mine, theirs, "no such reference"]
        status, body, _ = await request(session, "GET", batch_url(emu.url, wanted), key=own.api_key)
        assert status == 200
        assert set(body) == set(mine)  # the other partner's and the unknown one are omitted
        by_ref = {text: case for case, text in own.references}
        for reference, dto in body.items():
            assert dto["id"] == str(by_ref[reference])
            assert dto["reference"].startswith("DEB-")
            assert dto["collectionPartner"] == {"name": own.name}


async def test_batch_lookup_answers_the_other_partner_its_own_cases() -> None:
    async with serving() as (emu, session):
        own, other = emu.partners[0], emu.partners[1]
        theirs = list(refs(other).values())[:3]
        status, body, _ = await request(
            session, "GET", batch_url(emu.url, theirs), key=other.api_key
        )
        assert status == 200
        assert [body[r]["id"] for r in theirs] == [str(c) for c in other.case_ids[:3]]
        status, body, _ = await request(session, "GET", batch_url(emu.url, theirs), key=own.api_key)
        assert (status, body) == (200, {})


async def test_batch_lookup_splits_on_commas_trims_and_joins_repeated_parameters() -> None:
    async with serving() as (emu, session):
        own = emu.partners[0]
        first, second = (refs(own)[c] for c in own.case_ids[1:3])
        url = f"{emu.url}{LOOKUP}?references=%20{first}%20,,&references={second}"
        status, body, _ = await request(session, "GET", url, key=own.api_key)
        assert status == 200
        assert sorted(body) == sorted([first, second])
        comma = next(r for r in refs(own).values() if "," in r)
        status, body, _ = await request(
            session, "GET", batch_url(emu.url, [comma]), key=own.api_key
        )
        assert (status, body) == (200, {})  # split in two halves, neither exists


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "required"),
        ("?references=", "empty"),
        ("?references=,%20,", "empty"),
        ("?references=" + ",".join(f"r{i}" for i in range(101)), "at most 100"),
    ],
)
async def test_batch_lookup_400s(query: str, message: str) -> None:
    async with serving() as (emu, session):
        status, body, _ = await request(session, "GET", emu.url + LOOKUP + query, key=emu.api_key)
        assert status == 400
        assert_error_body(body)
        assert message in body["message"]


async def test_batch_lookup_takes_exactly_100() -> None:
    config = fast_config(cases_per_partner=130)
    async with serving(config) as (emu, session):
        plain = [r for r in refs(emu.partners[0]).values() if "," not in r][:100]
        assert len(plain) == 100
        status, body, _ = await request(session, "GET", batch_url(emu.url, plain), key=emu.api_key)
        assert status == 200
        assert len(body) == 100


async def test_single_lookup_takes_any_path_encoded_reference() -> None:
    async with serving(fast_config(cases_per_partner=60)) as (emu, session):
        own = emu.partners[0]
        texts = list(refs(own).values())
        for shape in ("&", ",", "/", " "):
            assert any(shape in t for t in texts), shape
        assert any(len(t) == 128 for t in texts)
        by_ref = {text: case for case, text in own.references}
        for text in texts:
            url = f"{emu.url}{LOOKUP}/{quote(text, safe='')}"
            status, body, _ = await request(session, "GET", url, key=own.api_key)
            assert status == 200, (text, body)
            assert body["id"] == str(by_ref[text])


async def test_single_lookup_404s_and_400s() -> None:
    async with serving() as (emu, session):
        own, other = emu.partners[0], emu.partners[1]
        theirs = quote(next(iter(refs(other).values())), safe="")
        for path, expected in (
            (f"/{theirs}", 404),
            ("/unknown", 404),
            ("/" + "x" * 129, 404),
            ("/", 400),
            ("/%20", 400),
        ):
            status, body, _ = await request(
                session, "GET", emu.url + LOOKUP + path, key=own.api_key
            )
            assert status == expected, path
            assert_error_body(body)


async def test_a_case_without_a_reference_is_not_found_by_any() -> None:
    async with serving() as (emu, session):
        own = emu.partners[0]
        assert own.case_ids[9] not in refs(own)  # every tenth generated case has none
        plain = [r for r in refs(own).values() if "," not in r]
        status, body, _ = await request(session, "GET", batch_url(emu.url, plain), key=own.api_key)
        assert status == 200
        assert len(body) == len(plain)
        assert str(own.case_ids[9]) not in {dto["id"] for dto in body.values()}


async def test_the_demo_world_shares_reference_texts_between_partners() -> None:
    world = World.from_file(REPO / "examples" / "demo-world.json")
    config = EmulatorConfig(world=world, latency=LatencyModel.zero(), rate_limits=RateLimits.off())
    async with serving(config) as (emu, session):
        demo, other = emu.partners
        for partner in (demo, other):
            status, body, _ = await request(
                session, "GET", f"{emu.url}{LOOKUP}/C-7001", key=partner.api_key
            )
            assert status == 200
            assert body["id"] == str(partner.case_ids[0])
        status, _, _ = await request(session, "GET", f"{emu.url}{LOOKUP}/C-7050", key=demo.api_key)
        assert status == 404  # one of the three demo cases without a reference


# ---------------------------------------------------------------- timeline


def _timeline_url(emu: Any, case: uuid.UUID | str) -> str:
    return f"{emu.url}/cases/{case}/timeline"


async def test_timeline_holds_the_history_and_every_stored_note_in_order() -> None:
    async with serving(fast_config(latency=LatencyModel.zero())) as (emu, session):
        case = emu.case_ids[0]
        status, body, _ = await request(session, "GET", _timeline_url(emu, case), key=emu.api_key)
        assert status == 200
        assert [item["type"] for item in body["items"]] == ["CaseAssigned", "StatusChanged"]
        assert body["currentEngagementPhase"] in ("Pre-legal", "Legal", "Enforcement")

        old = (datetime.now(UTC) - timedelta(days=900)).replace(microsecond=0)
        rows = [
            *note_rows([case], eventDate="2026-02-01T09:30:00Z", externalRef="CRM-1"),
            {
                "type": 0,
                "caseId": str(case),
                "description": "Old letter",
                "eventDate": old.isoformat(),
            },
            *note_rows([emu.case_ids[1]]),  # another case: not in this timeline
        ]
        _, job, _ = await post_job(emu, session, rows)
        await wait_terminal(emu, session, job["jobId"])
        status, note, _ = await request(
            session,
            "POST",
            f"{emu.url}/cases/{case}/notes",
            key=emu.api_key,
            body={"description": "Phoned, no answer"},
        )
        assert status == 200

        status, body, _ = await request(session, "GET", _timeline_url(emu, case), key=emu.api_key)
        assert status == 200
        items = body["items"]
        dates = [datetime.fromisoformat(item["date"]) for item in items]
        assert dates == sorted(dates)
        notes = [item for item in items if item["type"] == "Note"]
        assert [n["description"] for n in notes] == [
            "Old letter",
            "Contacted debtor (0)",
            "Phoned, no answer",
        ]
        assert datetime.fromisoformat(notes[0]["date"]) == old
        assert notes[1]["date"] == "2026-02-01T09:30:00.000Z"
        assert notes[2]["date"] == note["createdAt"]  # no eventDate: dated by its creation
        for item in notes:
            assert set(item) == {"date", "type", "title", "description", "actor"}
            assert item["actor"] == {"type": "Partner user", "name": emu.partners[0].name}
        assert "CRM-1" not in str(body)  # items carry no externalRef


async def test_timeline_404s_for_cases_that_are_not_yours() -> None:
    async with serving() as (emu, session):
        for case in (emu.other_partner_case_ids[0], uuid.uuid4(), "not-a-uuid"):
            status, body, _ = await request(
                session, "GET", _timeline_url(emu, case), key=emu.api_key
            )
            assert status == 404, case
            assert_error_body(body)


# ---------------------------------------------------------------- auth, limits, faults


ENDPOINTS = {
    "GET /cases/by-partner-reference": f"{LOOKUP}?references=x",
    "GET /cases/by-partner-reference/{reference}": f"{LOOKUP}/x",
    "GET /cases/{id}/timeline": "/cases/{case}/timeline",
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_new_endpoints_need_a_key_count_in_the_rate_limit_and_take_faults(
    endpoint: str,
) -> None:
    limits = RateLimits(per_minute=2, per_hour=None, per_day=None)
    async with serving(fast_config(rate_limits=limits)) as (emu, session):
        url = emu.url + ENDPOINTS[endpoint].format(case=emu.case_ids[0])
        assert (await request(session, "GET", url))[0] == 401
        assert (await request(session, "GET", url, key="wrong"))[0] == 401
        await emu.add_fault(Fault(FaultKind.HTTP_ERROR, count=1, endpoint=endpoint, status=502))
        assert (await request(session, "GET", url, key=emu.api_key))[0] == 502
        ok = 404 if endpoint.endswith("{reference}") else 200
        assert (await request(session, "GET", url, key=emu.api_key))[0] == ok
        assert (await request(session, "GET", url, key=emu.api_key))[0] == ok
        status, body, headers = await request(session, "GET", url, key=emu.api_key)
        assert status == 429
        assert body["error"] == "rate_limit_exceeded"
        assert "Retry-After" in headers
        stats = await emu.stats()
        assert stats["requests"][endpoint] == {"401": 2, "502": 1, str(ok): 2, "429": 1}


async def test_world_file_with_references_round_trips(tmp_path: Path) -> None:
    world = World.generate(partners=2, cases_per_partner=12, seed=5)
    path = tmp_path / "world.json"
    path.write_bytes(orjson.dumps(world.to_dict()))
    assert World.from_file(path) == world
    async with serving(fast_config(world=world)) as (emu, session):
        _, seen, _ = await request(
            session, "GET", emu.url + "/_emulator/world", extra_headers=emu.introspection_headers
        )
        assert seen == world.to_dict()
        assert seen["partners"][0]["partnerReferences"][str(world.partners[0].case_ids[0])] == (
            "112179442 & 112179443"
        )
