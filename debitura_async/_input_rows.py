"""From the values a reader found to the item it yields: the input fields, ``--map``, naive
date-times read in ``assume_timezone``, and rows that name their case by a partner reference.
Pure: no I/O.

An input row is a mapping of API fields (``caseId``, ``description``, ``eventDate``,
``externalRef``, ``type``) plus, optionally, ``caseReference``: the partner's own reference of the
case. A row with a ``caseId`` is sent with it (a reference beside it is not used); a row with
only a reference becomes an :class:`~debitura_async.models.UnresolvedCaseRow`, to be resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._input_dates import LocalTimeError, localize
from ._input_options import InputError, InputOptions
from .models import InvalidRow, UnresolvedCaseRow

__all__ = [
    "API_FIELDS",
    "INPUT_FIELDS",
    "MAX_REFERENCE_CHARS",
    "RowShaper",
    "parse_mapping",
]

API_FIELDS: Final = ("caseId", "description", "eventDate", "externalRef", "type")
"""The fields of an ingestion row, as the API names them."""
INPUT_FIELDS: Final = (*API_FIELDS, "caseReference")
"""What an input column may hold: the API fields, or the partner's reference of the case."""
MAX_REFERENCE_CHARS: Final = 128
"""The API's limit for a partner reference (``collectionPartnerReference``)."""

Item = dict[str, Any] | InvalidRow | UnresolvedCaseRow


def parse_mapping(specs: Sequence[str]) -> dict[str, str]:
    """``["caseId=CaseGuid", ...]`` -> ``{"caseId": "CaseGuid"}``; refuses unknown fields.

    >>> parse_mapping(["caseReference=CRM_CASE_NO", "description = NoteText"])
    {'caseReference': 'CRM_CASE_NO', 'description': 'NoteText'}
    """
    mapping: dict[str, str] = {}
    for spec in specs:
        field, sep, column = spec.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise InputError(
                f"--map expects API_FIELD=COLUMN (or caseReference=COLUMN), got {spec!r}"
            )
        if field not in INPUT_FIELDS:
            raise InputError(
                f"--map {spec!r}: {field!r} is not an API field (one of"
                f" {', '.join(API_FIELDS)}) nor caseReference"
            )
        if field in mapping and mapping[field] != column:
            raise InputError(f"--map: {field!r} mapped twice ({mapping[field]!r}, {column!r})")
        mapping[field] = column
    return mapping


def name_column(reason: str, columns: Mapping[str, str]) -> str:
    """``"caseId: ..."`` -> ``"caseId (column 'CaseGuid'): ..."`` when the column is named
    otherwise than the field (a reader's ``source_columns``)."""
    field, sep, rest = reason.partition(": ")
    column = columns.get(field)
    if sep and column is not None and column != field:
        return f"{field} (column {column!r}): {rest}"
    return reason


class RowShaper:
    """Turns a reader's row mapping into the item to yield (``shape``); a no-op for rows without
    a reference when no time zone is assumed (the common case costs one check)."""

    def __init__(self, options: InputOptions, columns: Mapping[str, str]) -> None:
        self._zone = options.zone
        self._dst = options.dst
        self._columns = dict(columns)
        self.needed = self._zone is not None or "caseReference" in columns

    def _problem(self, where: str, field: str, message: str) -> InvalidRow:
        return InvalidRow((f"{where}: {name_column(f'{field}: {message}', self._columns)}",))

    def shape(self, row: dict[str, Any], where: str) -> Item:
        """``row`` (changed in place), or an UnresolvedCaseRow / InvalidRow for it."""
        if self._zone is not None:
            event_date = row.get("eventDate")
            if isinstance(event_date, str):
                try:
                    row["eventDate"] = localize(event_date, self._zone, self._dst)
                except LocalTimeError as exc:
                    return self._problem(where, "eventDate", str(exc))
        if "caseId" in row:
            row.pop("caseReference", None)  # the case id decides; the reference is not needed
            return row
        if "caseReference" not in row:
            if "caseReference" in self._columns:
                return self._problem(where, "caseReference", "empty, and the row has no caseId")
            return row
        reference = row.pop("caseReference")
        if isinstance(reference, int) and not isinstance(reference, bool):
            reference = str(reference)
        if not isinstance(reference, str):
            return self._problem(
                where, "caseReference", f"expected text, got {type(reference).__name__}"
            )
        reference = reference.strip()
        if not reference:
            return self._problem(where, "caseReference", "empty, and the row has no caseId")
        if len(reference) > MAX_REFERENCE_CHARS:
            return self._problem(
                where,
                "caseReference",
                f"{len(reference)} characters, over the API's limit of {MAX_REFERENCE_CHARS}",
            )
        return UnresolvedCaseRow(
            reference=reference,
            description=row.get("description"),
            event_date=row.get("eventDate"),
            external_ref=row.get("externalRef"),
            type=row.get("type"),
        )
