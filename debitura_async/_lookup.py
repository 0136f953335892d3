"""Pure planning of case lookups by partner reference: checks, batches, paths (no I/O).

Debitura's batch form ``GET /cases/by-partner-reference?references=a,b,c`` takes at most 100
comma-separated references; a reference with a comma cannot travel in it, and one with leading
or trailing blanks may not survive it (servers trim list entries), so those go through the
single form ``GET /cases/by-partner-reference/{reference}``; the single form, in turn, sends
``.`` and ``..`` through the batch form (URLs normalise those segments away). Batches are also
cut so that the encoded query stays under :data:`MAX_QUERY_CHARS` (servers refuse request lines
over ~8 KiB).

>>> batches, singles = plan_lookups(["A-1", "112179442 & 112179443", "Hansen, Jens"])
>>> batches, singles
([['A-1', '112179442 & 112179443']], ['Hansen, Jens'])
>>> batch_path(batches[0])
'/cases/by-partner-reference?references=A-1,112179442%20%26%20112179443'
>>> single_path("Hansen, Jens")
'/cases/by-partner-reference/Hansen%2C%20Jens'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from .errors import RowProblem, ValidationError

__all__ = [
    "LOOKUP_PATH",
    "MAX_QUERY_CHARS",
    "MAX_REFERENCES_PER_LOOKUP",
    "MAX_REFERENCE_LENGTH",
    "batch_path",
    "check_references",
    "fits_a_path_segment",
    "needs_single_form",
    "plan_lookups",
    "single_path",
]

LOOKUP_PATH: Final = "/cases/by-partner-reference"
MAX_REFERENCES_PER_LOOKUP: Final = 100
MAX_REFERENCE_LENGTH: Final = 128
MAX_QUERY_CHARS: Final = 6000


def check_references(references: Iterable[object]) -> list[str]:
    """The references, de-duplicated in first-seen order; a :class:`ValidationError` lists every
    one that is not a string of 1..128 characters (blank counts as empty)."""
    if isinstance(references, str | bytes):
        raise ValidationError(
            [RowProblem(-1, "references", "pass an iterable of references, not one string")],
            what="references",
        )
    result: list[str] = []
    seen: set[str] = set()
    problems: list[RowProblem] = []
    for index, reference in enumerate(references):
        if not isinstance(reference, str):
            problems.append(
                RowProblem(index, "reference", f"must be a string, got {type(reference).__name__}")
            )
        elif not reference.strip():
            problems.append(RowProblem(index, "reference", "must not be empty or blank"))
        elif len(reference) > MAX_REFERENCE_LENGTH:
            problems.append(
                RowProblem(
                    index,
                    "reference",
                    f"at most {MAX_REFERENCE_LENGTH} characters (got {len(reference)})",
                )
            )
        elif not _encodable(reference):
            problems.append(
                RowProblem(index, "reference", "is not valid Unicode (a lone surrogate)")
            )
        elif reference not in seen:
            seen.add(reference)
            result.append(reference)
    if problems:
        raise ValidationError(problems, what="references")
    return result


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fits_a_path_segment(reference: str) -> bool:
    """False for ``.`` and ``..``: URL normalisation removes such a segment even when it is
    percent-encoded, so these go through the batch form (they need no single form)."""
    return reference not in (".", "..")


def needs_single_form(reference: str) -> bool:
    """True for a reference the batch form cannot carry intact (a comma, outer blanks)."""
    return "," in reference or reference != reference.strip()


def _encoded(reference: str) -> str:
    return quote(reference, safe="")


def plan_lookups(references: Iterable[str]) -> tuple[list[list[str]], list[str]]:
    """(batches for the batch form, references for the single form), in input order."""
    batches: list[list[str]] = []
    singles: list[str] = []
    current: list[str] = []
    size = 0
    for reference in references:
        if needs_single_form(reference):
            singles.append(reference)
            continue
        cost = len(_encoded(reference)) + 1
        if current and (len(current) >= MAX_REFERENCES_PER_LOOKUP or size + cost > MAX_QUERY_CHARS):
            batches.append(current)
            current, size = [], 0
        current.append(reference)
        size += cost
    if current:
        batches.append(current)
    return batches, singles


def batch_path(batch: Iterable[str]) -> str:
    return f"{LOOKUP_PATH}?references=" + ",".join(_encoded(r) for r in batch)


def single_path(reference: str) -> str:
    return f"{LOOKUP_PATH}/{_encoded(reference)}"
