"""Cases as the partner sees them: lookup by partner reference, InvoiceDto and timeline (pure).

:class:`CaseBook` is built once from the :class:`~.config.World`; it answers the three case
read operations without I/O and without a clock. A case's profile (amounts, dates, debtor,
engagement phase) is derived from a hash of its id, so it is the same in every run and process
and needs no storage. Timeline items are the case's fixed history (assignment, collection
start) plus the stored notes the caller passes in, oldest first.

>>> from debitura_async.emulator.config import World
>>> book = CaseBook(World.generate(partners=2, cases_per_partner=3))
>>> partner = book.world.partners[0]
>>> sorted(book.lookup(partner, ["112179442 & 112179443", "nope"]))
['112179442 & 112179443']
>>> book.find(partner, "112179444")["reference"] == book.invoice(partner.case_ids[1])["reference"]
True
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .config import Partner, World
from .core import ApiProblem, case_reference, format_datetime, parse_datetime
from .references import MAX_REFERENCE_LENGTH

__all__ = ["MAX_LOOKUP_REFERENCES", "CaseBook", "split_references"]

MAX_LOOKUP_REFERENCES: Final = 100
_EPOCH: Final = datetime(2024, 9, 2, 8, 0, tzinfo=UTC)
_CURRENCIES: Final = ("DKK", "EUR", "SEK", "NOK", "GBP")
_PHASES: Final = ("Pre-legal",) * 8 + ("Legal", "Enforcement")
_CLAIMS: Final = ("Unpaid Invoice", "Loan Repayment", "Breach of Contract")
_DEBTORS: Final = (
    ("Company", "Pacific Trading ApS", "Copenhagen", "DK"),
    ("Person", "Søren Kjær", "Aarhus", "DK"),
    ("Company", "Müller & Söhne GmbH", "Hamburg", "DE"),
    ("Person", "Åse Lindqvist", "Malmö", "SE"),
    ("Company", "Fjord Logistics AS", "Bergen", "NO"),
)


def split_references(values: Sequence[str]) -> list[str] | ApiProblem:
    """The ``references`` query parameter(s) as a list, or the 400 for missing/empty/too many.

    Repeated parameters are joined with commas (as ASP.NET binds them); entries are trimmed and
    empty entries dropped; more than 100 entries is a 400.

    >>> split_references(["a, b,,c"])
    ['a', 'b', 'c']
    >>> split_references([" , "]).status
    400
    """
    if not values:
        return ApiProblem.validation(["references: required (comma-separated, at most 100)"])
    entries = [part.strip() for part in ",".join(values).split(",")]
    references = [part for part in entries if part]
    if not references:
        return ApiProblem.validation(["references: must not be empty"])
    if len(references) > MAX_LOOKUP_REFERENCES:
        return ApiProblem.validation(
            [
                f"references: at most {MAX_LOOKUP_REFERENCES} references per request"
                f" (got {len(references)})"
            ]
        )
    return references


def _digest(case_id: str) -> bytes:
    return hashlib.sha256(b"debitura-emulator-case:" + case_id.encode()).digest()


def _pick(digest: bytes, offset: int, options: Sequence[Any]) -> Any:
    return options[digest[offset] % len(options)]


def _number(digest: bytes, offset: int, modulo: int) -> int:
    return int.from_bytes(digest[offset : offset + 4], "big") % modulo


class CaseBook:
    """Every case of a world, by id and by (partner, reference). Not thread-safe; no I/O."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._owner: dict[str, Partner] = {}
        self._by_reference: dict[tuple[uuid.UUID, str], str] = {}
        self._reference_of: dict[str, str] = {}
        for partner in world.partners:
            for case in partner.case_ids:
                self._owner[str(case)] = partner
            for case, text in partner.references:
                self._by_reference[(partner.id, text)] = str(case)
                self._reference_of[str(case)] = text

    def owner(self, case_id: uuid.UUID | str) -> Partner | None:
        return self._owner.get(str(case_id).lower())

    def partner_reference(self, case_id: uuid.UUID | str) -> str | None:
        return self._reference_of.get(str(case_id).lower())

    def case_for(self, partner: Partner, reference: str) -> str | None:
        """The id of ``partner``'s case with exactly this reference, if any."""
        if len(reference) > MAX_REFERENCE_LENGTH:
            return None
        return self._by_reference.get((partner.id, reference))

    def find(self, partner: Partner, reference: str) -> dict[str, Any] | None:
        """``GET /cases/by-partner-reference/{reference}``: the InvoiceDto, or None (404)."""
        case = self.case_for(partner, reference)
        return None if case is None else self.invoice(case)

    def lookup(self, partner: Partner, references: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``GET /cases/by-partner-reference``: found references -> InvoiceDto (others omitted)."""
        result: dict[str, dict[str, Any]] = {}
        for reference in references:
            if reference not in result:
                found = self.find(partner, reference)
                if found is not None:
                    result[reference] = found
        return result

    def invoice(self, case_id: uuid.UUID | str) -> dict[str, Any]:
        """The InvoiceDto of a case (only the spec's fields; the profile comes from its id)."""
        key = str(case_id).lower()
        partner = self._owner[key]
        h = _digest(key)
        invoiced = _EPOCH + timedelta(days=_number(h, 0, 300), minutes=_number(h, 4, 600))
        due = invoiced + timedelta(days=30)
        created = due + timedelta(days=20 + _number(h, 8, 60))
        started = created + timedelta(days=1)
        principal = round(200 + _number(h, 12, 4_980_000) / 100, 2)
        interest = round(principal * 0.01 * (1 + h[16] % 8), 2)
        reminder = float(100 * (h[17] % 3))
        collection = round(principal * 0.1, 2)
        paid = round(principal * (h[18] % 4) / 10, 2)
        kind, name, city, country = _pick(h, 19, _DEBTORS)
        return {
            "id": key,
            "dateCreated": format_datetime(created),
            "dateUpdated": None,
            "reference": case_reference(key),
            "creditorReference": f"INV-{_number(h, 20, 900_000) + 100_000}",
            "creditorComments": None,
            "claimDescription": f"Invoice {_number(h, 20, 900_000) + 100_000}, unpaid",
            "grossAmount": principal,
            "remainder": round(principal - paid + interest + reminder + collection, 2),
            "interestFees": interest,
            "reminderFees": reminder,
            "collectionFees": collection,
            "totalAddedFees": round(interest + reminder + collection, 2),
            "currency": _pick(h, 24, _CURRENCIES),
            "isTestCase": False,
            "lifecycle": "Active",
            "dueDate": format_datetime(due),
            "date": format_datetime(invoiced),
            "dateFinished": None,
            "dateCollectionStarted": format_datetime(started),
            "closeCode": None,
            "currentEngagementPhase": self.engagement_phase(key),
            "claimType": _pick(h, 25, _CLAIMS),
            "creditorDivisionId": None,
            "debtor": {
                "type": kind,
                "name": name,
                "contactPerson": "Accounts payable" if kind == "Company" else None,
                "city": city,
                "countryAlpha2": country,
            },
            "collectionPartner": {"name": partner.name},
            "creditor": {
                "id": str(uuid.UUID(bytes=h[:16], version=4)),
                "companyName": f"Creditor {h[26] % 40 + 1} A/S",
                "country": "Denmark",
            },
        }

    def engagement_phase(self, case_id: str) -> str:
        return str(_pick(_digest(case_id), 27, _PHASES))

    def timeline(
        self, partner: Partner, case_id: uuid.UUID, notes: Iterable[Mapping[str, Any]]
    ) -> dict[str, Any] | None:
        """``GET /cases/{id}/timeline`` (``CaseTimelineResponse``), or None (404: not yours).

        ``notes`` are the case's stored note records (``EmulatorCore.notes``); each becomes an
        item dated by its eventDate (its creation time when it had none), without externalRef.
        """
        key = str(case_id)
        if self._owner.get(key) is not partner:
            return None
        invoice = self.invoice(key)
        assigned = parse_datetime(invoice["dateCollectionStarted"])
        if assigned is None:  # pragma: no cover - rendered by format_datetime above
            raise RuntimeError("case without a collection start")
        reference = invoice["reference"]
        system = {"type": "System", "name": "Debitura"}
        items: list[tuple[datetime, dict[str, Any]]] = [
            (
                assigned,
                _item(
                    assigned,
                    "CaseAssigned",
                    "Case assigned to collection partner",
                    f"Case {reference} was assigned to {partner.name}.",
                    system,
                ),
            ),
            (
                assigned + timedelta(hours=2),
                _item(
                    assigned + timedelta(hours=2),
                    "StatusChanged",
                    "Collection started",
                    "Lifecycle changed to Active.",
                    system,
                ),
            ),
        ]
        for note in notes:
            when = parse_datetime(note.get("eventDate") or note["createdAt"])
            if when is None:  # pragma: no cover - stored notes carry valid dates
                continue
            author = note.get("createdBy") or {}
            actor = {"type": "Partner user", "name": author.get("userName")}
            items.append(
                (when, _item(when, "Note", note.get("title") or "Note", note["description"], actor))
            )
        items.sort(key=lambda pair: pair[0])
        return {
            "items": [item for _, item in items],
            "currentEngagementPhase": self.engagement_phase(key),
        }


def _item(
    when: datetime, kind: str, title: str, description: str, actor: dict[str, Any]
) -> dict[str, Any]:
    return {
        "date": format_datetime(when),
        "type": kind,
        "title": title,
        "description": description,
        "actor": dict(actor),
    }
