"""``--strict``: check every row first, with the pipeline's own rules; send nothing if any fails."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import anyio

from .._input import InputFormat, Item, open_reader
from .._input_options import InputOptions
from .._validate import item_problems
from ..client import DebituraClient
from ..models import InvalidRow
from ._common import PROG, CLIError, describe_reason, with_line
from ._plan import IngestPlan

__all__ = ["strict_check"]


def _item_problems(item: Item, position: int, *, now: datetime, skew: timedelta) -> list[str]:
    """What the pipeline would refuse in this item."""
    if isinstance(item, InvalidRow):
        return list(item.problems)
    _, problems = item_problems(item, position, now=now, skew=skew)
    return [f"{p.field}: {p.message}" for p in problems]


def _scan(
    path: Path,
    input_format: InputFormat,
    mapping: Mapping[str, str],
    *,
    now: datetime,
    skew: timedelta,
    err: TextIO,
    show: int,
    options: InputOptions | None = None,
) -> tuple[int, int]:
    """(invalid rows, rows); prints the first ``show`` problems."""
    invalid = 0
    with open_reader(path, input_format, mapping, options) as reader:
        position = -1
        for position, item in enumerate(reader):
            problems = _item_problems(item, position, now=now, skew=skew)
            if problems:
                invalid += 1
                if invalid <= show:
                    first, last = reader.lines.span(position, position)
                    for reason in problems:
                        text = with_line(describe_reason(reason, mapping), first, last)
                        print(f"{PROG}: invalid: {text}", file=err)
        return invalid, position + 1


async def strict_check(
    plan: IngestPlan,
    input_format: InputFormat,
    mapping: Mapping[str, str],
    client: DebituraClient,
    err: TextIO,
    *,
    now: datetime,
    options: InputOptions | None = None,
) -> None:
    invalid, total = await anyio.to_thread.run_sync(
        lambda: _scan(
            plan.path,
            input_format,
            mapping,
            now=now,
            skew=client.clock_skew,
            err=err,
            show=max(plan.show_rejected, 1),
            options=options,
        )
    )
    if invalid:
        raise CLIError(f"--strict: {invalid:,} of {total:,} rows are invalid; nothing was sent")
    if not plan.quiet:
        print(f"{PROG}: --strict: all {total:,} rows are valid", file=err)
