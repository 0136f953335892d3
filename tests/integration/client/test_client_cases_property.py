"""Any reference text survives the trip client -> HTTP -> emulator -> client (hypothesis)."""

from __future__ import annotations

import asyncio
import uuid

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, settings

from debitura_async import DebituraClient
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel, RateLimits
from debitura_async.emulator.config import Partner, World

from ..conftest import fast_retry

# Any text of 1..128 characters that is not blank: commas, %, +, &, #, ?, /, quotes, control
# characters, non-ASCII, outer blanks. Lone surrogates cannot be sent (the client refuses them).
REFERENCE = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=128
).filter(lambda s: s.strip() != "")


async def _round_trip(refs: list[str]) -> None:
    cases = tuple(uuid.UUID(int=i + 1, version=4) for i in range(len(refs)))
    partner = Partner(
        id=uuid.UUID(int=999, version=4),
        name="P",
        api_key="property-test-key",
        case_ids=cases,
        references=tuple(zip(cases, refs, strict=True)),
    )
    config = EmulatorConfig(
        world=World(partners=(partner,)), latency=LatencyModel.zero(), rate_limits=RateLimits.off()
    )
    async with (
        Emulator(config) as emu,
        DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(0)) as client,
    ):
        found = await client.find_cases_by_partner_reference([*refs, "\x00 absent \x00"])
        assert {ref: case.id for ref, case in found.items()} == dict(zip(refs, cases, strict=True))
        for ref, case in zip(refs[:25], cases, strict=False):
            one = await client.get_case_by_partner_reference(ref)
            assert one is not None, repr(ref)
            assert one.id == case


TRICKY = [".", "..", "{", "}", "{x}", "a/b", "%2F", "%", "#", "?x=1", "+", "&", "=", ";", " x "]
TRICKY += ["a,b", ",", "ø", "\x00", "a\r\nb", "..a", "./", "%2e%2e", "112179442 & 112179443"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REFERENCE, min_size=1, max_size=150, unique=True))
@example(TRICKY)
@example([f"{t}-{i}" for i, t in enumerate(TRICKY)] + [f"{t}" * 3 for t in TRICKY[:5]])
def test_any_reference_resolves_through_both_forms(refs: list[str]) -> None:
    asyncio.run(_round_trip(refs))
