"""The case read calls behind :class:`~debitura_async.DebituraClient`'s case methods.

Free functions over the client (as elasticsearch-py's helpers are), so ``client.py`` keeps only
thin methods: the planning is pure (:mod:`._lookup`), the requests go through the client's one
``_call`` (retries, budget, stats, error translation), and bodies decode through the one
converter (:mod:`._wire`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import _lookup, _wire
from .errors import NotFoundError, RowProblem, ValidationError
from .models import Case, CaseTimeline, parse_uuid

if TYPE_CHECKING:
    from .client import DebituraClient

__all__ = ["find_cases_by_partner_reference", "get_case_by_partner_reference", "get_case_timeline"]


async def find_cases_by_partner_reference(
    client: DebituraClient, references: Iterable[object]
) -> dict[str, Case]:
    """``{reference: Case}`` in input order; see the client method."""
    wanted = _lookup.check_references(references)
    batches, singles = _lookup.plan_lookups(wanted)
    found: dict[str, Case] = {}
    for batch in batches:
        found.update(await _get_batch(client, batch))
    for reference in singles:
        case = await _get_one(client, reference)
        if case is not None:
            found[reference] = case
    return {ref: found[ref] for ref in wanted if ref in found}


async def get_case_by_partner_reference(client: DebituraClient, reference: object) -> Case | None:
    """The single form; None on 404. See the client method."""
    [checked] = _lookup.check_references([reference])
    return await _get_one(client, checked)


async def _get_batch(client: DebituraClient, batch: list[str]) -> dict[str, Case]:
    status, raw = await client._call("GET", _lookup.batch_path(batch), idempotent=True)
    cases = _wire.decode_case_map(raw, method="GET", path=_lookup.LOOKUP_PATH, status=status)
    asked = set(batch)
    return {ref: case for ref, case in cases.items() if ref in asked}


async def _get_one(client: DebituraClient, reference: str) -> Case | None:
    if not _lookup.fits_a_path_segment(reference):  # "." or "..": URLs normalise them away
        return (await _get_batch(client, [reference])).get(reference)
    path = _lookup.single_path(reference)
    try:
        status, raw = await client._call("GET", path, idempotent=True)
    except NotFoundError:
        return None
    return _wire.decode(Case, raw, method="GET", path=_lookup.LOOKUP_PATH, status=status)


async def get_case_timeline(client: DebituraClient, case_id: uuid.UUID | str) -> CaseTimeline:
    """``GET /cases/{id}/timeline``. See the client method."""
    cid = parse_uuid(case_id)
    if cid is None:
        raise ValidationError(
            [RowProblem(-1, "caseId", f"{case_id!r} is not a valid UUID")], what="request"
        )
    path = f"/cases/{cid}/timeline"
    status, raw = await client._call("GET", path, idempotent=True)
    return _wire.decode(CaseTimeline, raw, method="GET", path=path, status=status)
