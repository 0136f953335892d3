"""``ingest --rerun-rejected REPORT``: after fixing a file, send only the lines an earlier run's
report names as not stored, and sum up the whole migration.

The lines taken: every ``rejected`` record (refused on the client or by the server), and the
lines of each job record whose outcome is ``rejected`` or ``failed`` (a job-level failure: no
row of it was stored). Rows that failed inside a CompletedWithErrors job are not identified by
the API, so they are not taken (the report says how many). The fixed file must keep the line
numbers (fix the lines in place: a line that becomes two lines shifts the rest).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from .._input import CsvReader, Item, JsonlReader
from ._common import CLIError

__all__ = ["EarlierRun", "RerunInput", "load_earlier_run"]


@attrs.frozen(kw_only=True)
class EarlierRun:
    """What an earlier run's report says."""

    lines: frozenset[int]
    """Lines to send again."""
    succeeded: int
    failed_in_jobs: int
    """Rows that failed inside CompletedWithErrors jobs (not identified: not sent again)."""


def _records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [orjson.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(text.splitlines()))


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def load_earlier_run(path: Path) -> EarlierRun:
    """The lines an earlier run did not store, from its report (:class:`CLIError` if it cannot
    be read, is partial, or names no line)."""
    try:
        records = _records(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CLIError(f"--rerun-rejected: cannot read the report {str(path)!r}: {exc}") from None
    lines: set[int] = set()
    succeeded = failed = 0
    for r in records:
        kind, outcome = r.get("record"), r.get("outcome")
        if kind == "run" and outcome == "partial":
            raise CLIError(
                f"--rerun-rejected: the report {str(path)!r} is partial (its run did not finish):"
                " finish it with --resume first"
            )
        first, last = r.get("first_line"), r.get("last_line")
        span = range(_int(first), _int(last or first) + 1) if first not in (None, "") else ()
        if kind == "rejected" or (kind == "job" and outcome in ("rejected", "failed")):
            lines.update(span)
        elif kind == "job":
            succeeded += _int(r.get("succeeded"))
            failed += _int(r.get("failed"))
    if not lines:
        raise CLIError(f"--rerun-rejected: the report {str(path)!r} names no rejected line")
    return EarlierRun(lines=frozenset(lines), succeeded=succeeded, failed_in_jobs=failed)


class _Lines:
    """The line map of the rows kept (positions of the filtered stream)."""

    def __init__(self, rerun: RerunInput) -> None:
        self._rerun = rerun

    def __len__(self) -> int:
        return len(self._rerun.kept)

    def first_line(self, position: int) -> int:
        return self._rerun.reader.lines.first_line(self._rerun.kept[position])

    def last_line(self, position: int) -> int:
        return self._rerun.reader.lines.last_line(self._rerun.kept[position])

    def span(self, first: int, last: int) -> tuple[int, int]:
        kept = self._rerun.kept
        return self._rerun.reader.lines.span(kept[first], kept[last])


class RerunInput:
    """The reader's items whose first line is in ``lines``; ``lines``/``span`` speak of the
    filtered positions, so reports and the journal keep the file's line numbers."""

    def __init__(self, reader: CsvReader | JsonlReader, lines: frozenset[int]) -> None:
        self.reader = reader
        self.wanted = lines
        self.kept: list[int] = []
        self.lines = _Lines(self)
        self.skipped = 0

    def __iter__(self) -> Iterator[Item]:
        for position, item in enumerate(self.reader):
            if self.reader.lines.first_line(position) in self.wanted:
                self.kept.append(position)
                yield item
            else:
                self.skipped += 1
