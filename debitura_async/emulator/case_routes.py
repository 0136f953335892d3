"""HTTP handlers of the case read operations (lookup by partner reference, timeline).

The same pipeline as the other Debitura operations (:func:`.app._prelude`: faults, XApiKey,
rate limit; ``drop_after`` at the end); the answers come from the pure :class:`.cases.CaseBook`.

* ``GET /cases/by-partner-reference?references=a,b,c`` -> 200 ``{reference: InvoiceDto}``
  (references not found or not yours omitted); 400 when missing, empty or over 100.
* ``GET /cases/by-partner-reference/{reference}`` (path-encoded) -> 200 InvoiceDto; 400 when
  empty or blank; 404 when none of your cases has it.
* ``GET /cases/{id}/timeline`` -> 200 ``{items, currentEngagementPhase}``; 404 when the case is
  not yours (or the id is not a UUID, as for the notes endpoint).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from .app import SERVICE_KEY, ApiError, _finish, _json, _path_uuid, _prelude, _problem_response
from .cases import CaseBook, split_references
from .core import ApiProblem

__all__ = ["CASES_KEY", "add_case_routes"]

LOOKUP: Final = "GET /cases/by-partner-reference"
LOOKUP_ONE: Final = "GET /cases/by-partner-reference/{reference}"
TIMELINE: Final = "GET /cases/{id}/timeline"
CASES_KEY: Final = web.AppKey("debitura_emulator_cases", CaseBook)


async def _lookup(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, LOOKUP)
    references = split_references(request.query.getall("references", []))
    if isinstance(references, ApiProblem):
        raise ApiError(references)
    found = request.app[CASES_KEY].lookup(partner, references)
    return _finish(request, decision, _json(found))


async def _lookup_one(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, LOOKUP_ONE)
    reference = request.match_info.get("reference", "")
    if not reference.strip():
        raise ApiError(ApiProblem.validation(["reference: must not be empty"]))
    found = request.app[CASES_KEY].find(partner, reference)
    if found is None:
        response = _problem_response(
            ApiProblem.not_found("No case of yours has this partner reference")
        )
    else:
        response = _json(found)
    return _finish(request, decision, response)


async def _timeline(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, TIMELINE)
    case_id = _path_uuid(request, "id", "Case")
    service = request.app[SERVICE_KEY]
    book = request.app[CASES_KEY]
    notes = service.notes(case_id=case_id) if book.owner(case_id) is partner else []
    timeline = book.timeline(partner, case_id, notes)
    if timeline is None:
        response = _problem_response(
            ApiProblem.not_found("Case not found or not assigned to you as collection partner")
        )
    else:
        response = _json(timeline)
    return _finish(request, decision, response)


def add_case_routes(app: web.Application) -> None:
    """Register the three case read operations on an app built by :func:`.app.build_app`."""
    app[CASES_KEY] = CaseBook(app[SERVICE_KEY].core.world)
    app.router.add_get("/cases/by-partner-reference", _lookup, allow_head=False)
    app.router.add_get("/cases/by-partner-reference/", _lookup_one, allow_head=False)
    # Any character but "/" (the default pattern also refuses "{" and "}").
    app.router.add_get(
        "/cases/by-partner-reference/{reference:[^/]+}", _lookup_one, allow_head=False
    )
    app.router.add_get("/cases/{id}/timeline", _timeline, allow_head=False)
