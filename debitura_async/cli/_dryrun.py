"""``ingest --dry-run``: read and validate the whole input with the pipeline's rules, resolve its
case references (through the client's budget), send nothing to the ingestion endpoints, and
print what would be sent and an estimate of requests and wall time (see ``_estimate``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from .._input import CsvReader, JsonlReader
from .._input_stop import row_check
from ..client import DebituraClient
from ..models import UnresolvedCaseRow
from ..references import MemoryReferenceCache, resolve_references
from ._common import PROG, describe_reason, with_line
from ._estimate import POLLS_PER_JOB, SECONDS_PER_1000_ROWS, estimate
from ._plan import IngestPlan

__all__ = ["run_dry"]


def _lookup_requests(references: set[str]) -> int:
    """Requests a run makes to resolve ``references``: batches of 100, and the single form for
    each reference the batch form cannot carry (a comma, outer blanks)."""
    single = {r for r in references if "," in r or r != r.strip()}
    return math.ceil((len(references) - len(single)) / 100) + len(single)


def _fmt_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def _tee(rows: Any, references: set[str]) -> Any:
    for item in rows:
        if isinstance(item, UnresolvedCaseRow):
            references.add(item.reference)
        yield item


async def run_dry(
    plan: IngestPlan,
    client: DebituraClient,
    reader: CsvReader | JsonlReader,
    mapping: Mapping[str, str],
    *,
    batch_size: int,
    now: datetime,
    out: TextIO,
    err: TextIO,
) -> int:
    """Exit 0 when every row would be sent, 1 when some lines would be rejected."""
    check = row_check(now=now, skew=client.clock_skew)
    references: set[str] = set()
    valid = rejected = position = 0
    first_rows: list[Mapping[str, Any]] = []
    show = 0 if plan.quiet else plan.show_rejected
    items = resolve_references(client, _tee(reader, references), cache=MemoryReferenceCache())
    async for item in items:
        problems = check(item, position)
        if problems:
            rejected += 1
            if rejected <= show:
                first, last = reader.lines.span(position, position)
                for reason in problems:
                    text = with_line(describe_reason(reason, mapping), first, last)
                    print(f"{PROG}: would reject: {text}", file=err)
        else:
            valid += 1
            if len(first_rows) < 3 and isinstance(item, Mapping):
                first_rows.append(item)
        position += 1
    est = estimate(
        rows=valid,
        batch_size=batch_size,
        concurrency=plan.concurrency,
        lookups=_lookup_requests(references),
    )
    print(
        f"dry run: nothing was sent. {position:,} rows read: {valid:,} would be sent in"
        f" {est.jobs:,} jobs of up to {batch_size:,} rows, {rejected:,} lines would be rejected",
        file=out,
    )
    if references:
        print(f"case references: {len(references):,} distinct, resolved now", file=out)
    for row in first_rows:
        shown = {k: v for k, v in row.items() if v is not None}
        print(f"  e.g. {shown}", file=out)
    print(
        f"requests: ~{est.requests:,} = {est.posts:,} POST + ~{est.polls:,} polls"
        f" (~{POLLS_PER_JOB:g} per job) + {est.lookups:,} reference lookups",
        file=out,
    )
    print(
        f"wall time: ~{_fmt_seconds(est.seconds)} (the key's limits 2,000/min, 20,000/h,"
        f" 100,000/day allow it in {_fmt_seconds(est.limit_seconds)} at best; processing at"
        f" ~{SECONDS_PER_1000_ROWS:g} s per 1,000-row job, {plan.concurrency} jobs at once:"
        f" {_fmt_seconds(est.pace_seconds)}; assumes no other traffic on the key)",
        file=out,
    )
    return 1 if rejected else 0
