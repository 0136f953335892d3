"""Partner case references resolved to Debitura case ids, in front of the ingestion pipeline.

CRM exports hold the agency's own case reference, not Debitura's case UUID. The readers yield an
:class:`~debitura_async.UnresolvedCaseRow` for such a row; :func:`resolve_references` turns a
stream of input items into one the pipeline can send:

    rows = resolve_references(client, reader)          # lazily, in input order
    summary = await client.ingest_all(rows)

* References are looked up in windows: up to ``window`` distinct unknown references are
  collected (at most ``max_buffer`` items are held back meanwhile, so memory stays flat) and
  resolved with ``client.find_cases_by_partner_reference`` — batches of at most 100, the single
  form for references the batch form cannot carry — all through the client's retries and budget.
* Every answer is cached for the run (a :class:`ReferenceCache`; the CLI keeps it in the
  journal, so a resume does not resolve again), unknown references included.
* A reference that is unknown, or not assigned to this partner, becomes an
  :class:`~debitura_async.InvalidRow` naming it, so it is reported REJECTED at its position.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

from .errors import RowProblem
from .models import InvalidRow, UnresolvedCaseRow

__all__ = ["CaseFinder", "MemoryReferenceCache", "ReferenceCache", "resolve_references"]


class _HasId(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


class CaseFinder(Protocol):
    """What resolution needs of a client (``DebituraClient`` is one)."""

    async def find_cases_by_partner_reference(
        self, references: Iterable[str]
    ) -> Mapping[str, _HasId]: ...


class ReferenceCache(Protocol):
    """Where resolved references are kept (``None``: known to be no case of this partner)."""

    async def get_many(self, references: Iterable[str]) -> dict[str, uuid.UUID | None]: ...

    async def put_many(self, resolved: Mapping[str, uuid.UUID | None]) -> None: ...


class MemoryReferenceCache:
    """A cache for one process's lifetime (the default)."""

    def __init__(self) -> None:
        self._known: dict[str, uuid.UUID | None] = {}
        self.lookups = 0
        """References asked of the API (not answered from the cache)."""

    def __len__(self) -> int:
        return len(self._known)

    async def get_many(self, references: Iterable[str]) -> dict[str, uuid.UUID | None]:
        return {r: self._known[r] for r in references if r in self._known}

    async def put_many(self, resolved: Mapping[str, uuid.UUID | None]) -> None:
        self.lookups += len(resolved)
        self._known.update(resolved)


def _unknown(reference: str) -> InvalidRow:
    message = f"{reference!r} is no case of yours (not found, or not assigned to you)"
    return InvalidRow(
        (f"caseReference: {message}",), details=(RowProblem(-1, "caseReference", message),)
    )


async def _aiter_items(rows: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[Any]:
    if isinstance(rows, AsyncIterable):
        async for item in rows:
            yield item
    else:
        for item in rows:
            yield item


async def resolve_references(
    client: CaseFinder,
    rows: Iterable[Any] | AsyncIterable[Any],
    *,
    cache: ReferenceCache | None = None,
    window: int = 100,
    max_buffer: int = 5000,
) -> AsyncIterator[Any]:
    """Yield ``rows`` in order, each :class:`UnresolvedCaseRow` replaced by its row to send
    (a mapping with the resolved ``caseId``) or by an :class:`InvalidRow` naming the reference.

    Other items pass through unchanged. Lookups go out when ``window`` distinct unknown
    references are waiting or ``max_buffer`` items are held back, and at the end.
    """
    if window < 1 or max_buffer < 1:
        raise ValueError("window and max_buffer must be at least 1")
    store: ReferenceCache = cache if cache is not None else MemoryReferenceCache()
    held: list[Any] = []
    wanted: set[str] = set()
    source = _aiter_items(rows)
    try:
        async for item in source:
            held.append(item)
            if isinstance(item, UnresolvedCaseRow):
                wanted.add(item.reference)
            if len(wanted) >= window or len(held) >= max_buffer:
                for out in await _flush(client, store, held, wanted):
                    yield out
                held, wanted = [], set()
        for out in await _flush(client, store, held, wanted):
            yield out
    finally:
        await source.aclose()


async def _flush(
    client: CaseFinder, store: ReferenceCache, held: list[Any], wanted: set[str]
) -> list[Any]:
    known = await store.get_many(wanted) if wanted else {}
    missing = sorted(wanted - known.keys())
    if missing:
        found = await client.find_cases_by_partner_reference(missing)
        fresh: dict[str, uuid.UUID | None] = dict.fromkeys(missing)
        fresh.update({r: case.id for r, case in found.items() if r in fresh})
        await store.put_many(fresh)
        known.update(fresh)
    out: list[Any] = []
    for item in held:
        if isinstance(item, UnresolvedCaseRow):
            case_id = known.get(item.reference)
            out.append(
                _unknown(item.reference) if case_id is None else item.with_case_id(str(case_id))
            )
        else:
            out.append(item)
    return out
