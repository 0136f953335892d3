"""What to do with a batch the server refused (400/413): pure, no I/O.

A 400 or 413 queues nothing, so the batch may be sent again in parts. Rows the error names
(``rows[3].caseId: ...``) are rejected with the server's words and the rest goes on as one batch;
a batch of one row, or one whose every row is named, is rejected whole; otherwise it is bisected,
down to the rows the server refuses on their own. A 422 (the request cannot be processed as a
whole) rejects every row.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from ._batching import Batch
from .errors import APIStatusError, BadRequestError

__all__ = ["Split", "plan_split", "rows_named_by"]

_ROW_INDEX_RE: Final = re.compile(r"rows\[(\d+)\]", re.IGNORECASE)


@attrs.frozen
class Split:
    """``rejected``: local row index -> the reasons; ``parts``: batches to send instead."""

    rejected: dict[int, tuple[str, ...]]
    parts: tuple[Batch, ...]


def rows_named_by(error: APIStatusError, size: int) -> dict[int, list[str]]:
    """Rows of a refused batch that the error body names (``rows[3].caseId: ...``)."""
    named: dict[int, list[str]] = {}
    texts = [f"{name}: {'; '.join(msgs)}" for name, msgs in error.body.field_errors]
    texts += [b.message or "" for b in error.body.business_errors]
    if not texts:
        texts.append(error.body.message or "")
    for text in texts:
        for match in _ROW_INDEX_RE.finditer(text):
            index = int(match.group(1))
            if index < size:
                named.setdefault(index, []).append(text.strip())
    return named


def _everything(batch: Batch, error: APIStatusError, named: dict[int, list[str]]) -> Split:
    detail = error.body.describe() or str(error)
    fallback = (f"server refused the row: {detail}",)
    return Split(
        {i: tuple(named.get(i) or fallback) for i in range(len(batch))},
        (),
    )


def plan_split(batch: Batch, error: APIStatusError, *, splittable: bool = True) -> Split:
    """How to go on after ``error`` refused ``batch`` (``splittable``: a 400 or 413)."""
    if not splittable:
        return _everything(batch, error, {})
    named = rows_named_by(error, len(batch)) if isinstance(error, BadRequestError) else {}
    if len(batch) == 1 or (named and len(named) >= len(batch)):
        return _everything(batch, error, named)
    if named:
        rejected = {i: tuple(reasons) for i, reasons in named.items()}
        return Split(rejected, (batch.without(named),))
    return Split({}, batch.halves())
