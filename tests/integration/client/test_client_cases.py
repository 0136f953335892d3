"""The client's case methods against the real emulator on 127.0.0.1 (and one hostile server):
lookup by partner reference (batched, single form for commas) and the case timeline."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web

from debitura_async import (
    Case,
    CaseTimeline,
    DebituraClient,
    DecodeError,
    IngestionJobRow,
    NotFoundError,
    TimelineItem,
    ValidationError,
)
from debitura_async.emulator import Emulator, EmulatorConfig, Fault, LatencyModel, RateLimits
from debitura_async.emulator.config import Partner, World

from ..conftest import fast_retry

pytestmark = pytest.mark.anyio

LOOKUP = "GET /cases/by-partner-reference"
LOOKUP_ONE = "GET /cases/by-partner-reference/{reference}"
TIMELINE = "GET /cases/{id}/timeline"


def _client(emu: Emulator) -> DebituraClient:
    return DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry())


async def _requests(emu: Emulator, endpoint: str) -> dict[str, int]:
    counts: dict[str, int] = (await emu.stats())["requests"].get(endpoint, {})
    return counts


async def test_every_reference_of_the_world_resolves_to_its_case(
    instant_emulator: Emulator,
) -> None:
    emu = instant_emulator
    own = emu.partners[0]
    expected = {text: case for case, text in own.references}
    commas = [text for text in expected if "," in text]
    assert commas
    assert any(len(text) == 128 for text in expected)
    async with _client(emu) as client:
        found = await client.find_cases_by_partner_reference(list(expected))
    assert list(found) == list(expected)  # input order, every one found
    for text, case in found.items():
        assert isinstance(case, Case)
        assert case.id == expected[text]
        assert case.reference is not None
        assert case.reference.startswith("DEB-")
        assert case.debtor is not None
        assert case.debtor.name
    plain = len(expected) - len(commas)
    assert await _requests(emu, LOOKUP) == {"200": math.ceil(plain / 100)}
    assert await _requests(emu, LOOKUP_ONE) == {"200": len(commas)}


async def test_unknown_and_other_partners_references_are_absent(
    instant_emulator: Emulator,
) -> None:
    emu = instant_emulator
    own, other = emu.partners[0], emu.partners[1]
    mine = [text for _, text in own.references[:3]]
    theirs = [text for _, text in other.references[:3]]
    asked = [theirs[0], mine[2], "nobody's", mine[0], mine[2], theirs[1] + ", x", mine[1]]
    async with _client(emu) as client:
        found = await client.find_cases_by_partner_reference(iter(asked))
        assert list(found) == [mine[2], mine[0], mine[1]]
        assert await client.find_cases_by_partner_reference([]) == {}
        assert await client.find_cases_by_partner_reference(theirs) == {}
    assert await _requests(emu, LOOKUP) == {"200": 2}  # the empty call sent nothing


async def test_get_case_by_partner_reference(instant_emulator: Emulator) -> None:
    emu = instant_emulator
    own, other = emu.partners[0], emu.partners[1]
    refs = dict(own.references)
    comma = next(text for text in refs.values() if "," in text)
    async with _client(emu) as client:
        case = await client.get_case_by_partner_reference(refs[own.case_ids[0]])
        assert case is not None
        assert case.id == own.case_ids[0]
        assert case.current_engagement_phase in ("Pre-legal", "Legal", "Enforcement")
        assert case.date_created is not None
        assert case.date_created.tzinfo is not None
        with_comma = await client.get_case_by_partner_reference(comma)
        assert with_comma is not None
        assert refs[with_comma.id] == comma
        assert await client.get_case_by_partner_reference("no such reference") is None
        assert await client.get_case_by_partner_reference(other.references[0][1]) is None
    assert await _requests(emu, LOOKUP_ONE) == {"200": 2, "404": 2}


@pytest.mark.parametrize(
    "bad",
    [[""], ["   "], ["x" * 129], [42], ["ok", None], "A-REFERENCE", b"bytes"],
)
async def test_bad_references_are_refused_before_sending(
    instant_emulator: Emulator, bad: Any
) -> None:
    async with _client(instant_emulator) as client:
        with pytest.raises(ValidationError, match="invalid references"):
            await client.find_cases_by_partner_reference(bad)
        if isinstance(bad, list):
            with pytest.raises(ValidationError, match="invalid references"):
                await client.get_case_by_partner_reference(bad[-1])
    assert (await instant_emulator.stats())["requests"] == {}


async def test_long_encoded_references_are_cut_into_short_enough_requests() -> None:
    """100 references of 128 'ø' would make a 77 KB query: the client cuts it, the emulator (whose
    request line limit is aiohttp's 8 KiB) answers every request."""
    cases = tuple(uuid.UUID(int=i + 1, version=4) for i in range(100))
    refs = tuple((case, f"{i:03d}" + "ø" * 125) for i, case in enumerate(cases))
    partner = Partner(id=uuid.uuid4(), name="P", api_key="k" * 20, case_ids=cases, references=refs)
    world = World(partners=(partner,))
    config = EmulatorConfig(world=world, latency=LatencyModel.zero(), rate_limits=RateLimits.off())
    async with Emulator(config) as emu, _client(emu) as client:
        found = await client.find_cases_by_partner_reference(text for _, text in refs)
        assert [case.id for case in found.values()] == list(cases)
        counts = await _requests(emu, LOOKUP)
        assert set(counts) == {"200"}
        assert counts["200"] >= 13  # 100 * 768 encoded characters / 6000 per request


async def test_lookups_retry_a_429_and_a_503(instant_emulator: Emulator) -> None:
    emu = instant_emulator
    await emu.add_fault(Fault("rate_limit", count=1, endpoint=LOOKUP, retry_after=0.01))
    await emu.add_fault(Fault("http_error", count=1, endpoint=LOOKUP_ONE, status=503))
    ref = emu.partners[0].references[1][1]
    async with _client(emu) as client:
        assert ref in await client.find_cases_by_partner_reference([ref])
        assert await client.get_case_by_partner_reference(ref) is not None
        assert client.stats.retries == 2
    assert await _requests(emu, LOOKUP) == {"429": 1, "200": 1}
    assert await _requests(emu, LOOKUP_ONE) == {"503": 1, "200": 1}


# -- timeline --------------------------------------------------------------------------------


async def test_timeline_shows_ingested_and_direct_notes(instant_emulator: Emulator) -> None:
    emu = instant_emulator
    case = emu.case_ids[3]
    dated = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    async with _client(emu) as client:
        before = await client.get_case_timeline(case)
        assert isinstance(before, CaseTimeline)
        assert before.items
        assert all(isinstance(item, TimelineItem) for item in before.items)
        job = await client.create_ingestion_job(
            [IngestionJobRow(case, "Called, promised to pay", event_date=dated, external_ref="E1")]
        )
        await client.wait_for_ingestion_job(job.job_id, poll_interval=0.01, timeout=10)
        note = await client.add_case_note(
            str(case).upper(), "Letter sent", event_date=dated - timedelta(days=1)
        )
        after = await client.get_case_timeline(str(case))
    added = [item for item in after.items if item not in before.items]
    assert [(item.description, item.date) for item in added] == [
        ("Letter sent", note.event_date),
        ("Called, promised to pay", dated),
    ]
    for item in added:
        assert item.actor is not None
        assert item.actor.type == "Partner user"
    dates = [item.date for item in after.items]
    assert None not in dates
    assert dates == sorted(dates)  # type: ignore[type-var]
    assert after.current_engagement_phase == before.current_engagement_phase


async def test_timeline_of_a_case_that_is_not_yours(instant_emulator: Emulator) -> None:
    emu = instant_emulator
    async with _client(emu) as client:
        for case in (emu.other_partner_case_ids[0], uuid.uuid4()):
            with pytest.raises(NotFoundError) as caught:
                await client.get_case_timeline(case)
            assert caught.value.status == 404
        with pytest.raises(ValidationError):
            await client.get_case_timeline("not-a-case-id")
    assert await _requests(emu, TIMELINE) == {"404": 2}


# -- a hostile server ------------------------------------------------------------------------


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[str, list[str]]]:
    """Answers lookups with cases nobody asked for, and timelines that break the contract."""
    seen: list[str] = []
    case = {"id": str(uuid.uuid4()), "reference": "DEB-1"}

    async def lookup(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        asked = request.query["references"].split(",")
        body = {asked[0]: case, "never asked": case}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def lookup_one(request: web.Request) -> web.Response:
        return web.Response(body=b"[1, 2]", content_type="application/json")

    async def timeline(request: web.Request) -> web.Response:
        if request.match_info["id"].startswith("0"):
            return web.Response(body=b'{"items": null}', content_type="application/json")
        return web.Response(body=b'{"items": [{"date": 5}]}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/cases/by-partner-reference", lookup)
    app.router.add_get("/cases/by-partner-reference/{reference}", lookup_one)
    app.router.add_get("/cases/{id}/timeline", timeline)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def test_a_server_answering_unasked_references_is_not_believed(
    hostile: tuple[str, list[str]],
) -> None:
    url, seen = hostile
    async with DebituraClient("key", base_url=url, budget=None) as client:
        found = await client.find_cases_by_partner_reference(["A & B", "C"])
        assert list(found) == ["A & B"]
        assert seen == ["/cases/by-partner-reference?references=A%20%26%20B,C"]
        with pytest.raises(DecodeError, match="Case"):
            await client.get_case_by_partner_reference("x")
        empty = await client.get_case_timeline(uuid.UUID(int=1))
        assert empty == CaseTimeline(items=(), current_engagement_phase=None)
        with pytest.raises(DecodeError, match=r"items\[0\]\.date"):
            await client.get_case_timeline(uuid.UUID("f" * 32))
