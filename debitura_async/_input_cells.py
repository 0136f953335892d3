"""Cells of CSV records to row dicts (pure): one record at a time, or columns of cells at once.

An empty optional cell means "absent"; cells other than the description are stripped; ``type``
cells are read as integers (validation names the field and the value when they are not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._input_rows import Item

__all__ = ["row_from_cells", "rows_of_cells"]


def row_from_cells(cells: Sequence[str], columns: Mapping[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for field, index in columns.items():
        cell = cells[index]
        if field == "description":
            row[field] = cell  # kept as written; an empty one is refused by validation
            continue
        value = cell.strip()
        if not value:
            continue  # an empty cell means "absent"
        if field == "type":
            try:
                row[field] = int(value)
            except ValueError:
                row[field] = value  # validation names the field and the value
        else:
            row[field] = value
    return row


def rows_of_cells(
    case_ids: list[str],
    descriptions: list[str],
    dates: list[str] | None,
    refs: list[str] | None,
) -> list[Item]:
    """The row dicts of these columns (no cell of ``case_ids``, ``dates``, ``refs`` empty)."""
    if dates is None and refs is None:
        return [
            {"caseId": c, "description": d} for c, d in zip(case_ids, descriptions, strict=True)
        ]
    if refs is None:
        return [
            {"caseId": c, "description": d, "eventDate": e}
            for c, d, e in zip(case_ids, descriptions, dates, strict=True)  # type: ignore[arg-type]
        ]
    if dates is None:
        return [
            {"caseId": c, "description": d, "externalRef": r}
            for c, d, r in zip(case_ids, descriptions, refs, strict=True)
        ]
    return [
        {"caseId": c, "description": d, "eventDate": e, "externalRef": r}
        for c, d, e, r in zip(case_ids, descriptions, dates, refs, strict=True)
    ]
