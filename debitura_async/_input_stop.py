"""Stop early when a file's rows all fail the same way: one clear message, not thousands of
rejections. Pure: no I/O, no clock (``now`` is an argument).

A wrong option makes every row fail alike: naive dates without ``--assume-timezone``, a column
of CRM numbers read as case ids, a cp1252 file read as UTF-8, a ``;`` file split at ``,``.
:class:`FailureWatch` looks at the first rows only: while every row read so far is rejected and
the rows share a problem (the same field and the same kind of message, values aside), it counts;
once ``threshold`` rows fail so it raises :class:`UniformFailureError`, naming the problem, an
example line, and the option that fixes it. The first row that passes, or rows that fail in
different ways, end the watch for good (a file with *some* bad rows is read to the end).

At the end of a short input (fewer than ``threshold`` rows, at least ``min_rows``) that failed
whole and alike, :meth:`FailureWatch.finish` raises the same error.

>>> watch = FailureWatch(threshold=3)
>>> for line in (2, 3):
...     watch.observe(["eventDate: 2024-01-0%d 00:00:00 has no time zone" % line], line)
>>> try:
...     watch.observe(["eventDate: 2024-01-04 00:00:00 has no time zone"], 4)
... except UniformFailureError as exc:
...     print(exc.rows, exc.first_line, exc.last_line, exc.hint)
3 2 4 pass --assume-timezone ZONE with the zone they are in (UTC, Europe/Copenhagen …)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from ._input_columns import CsvItems, Unit
from ._input_lines import LineMap
from ._input_options import InputError
from ._input_rows import Item, name_column
from ._validate import item_problems
from .models import InvalidRow, UnresolvedCaseRow

__all__ = [
    "DEFAULT_MIN_ROWS",
    "DEFAULT_THRESHOLD",
    "FailureWatch",
    "UniformFailureError",
    "row_check",
    "watch_input",
]

DEFAULT_THRESHOLD: Final = 25
DEFAULT_MIN_ROWS: Final = 5

_LINE_PREFIX: Final = re.compile(r"^lines? \d+(?:-\d+)?: ")
_FIELD: Final = re.compile(r"^(\w+)(?: \(column '((?:[^']|'')*)'\))?: ")
_VALUES: Final = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|0x[0-9a-fA-F]+|[\d:.T+-]*\d[\d:.TZ+-]*"
)
_PLACEHOLDER: Final = "…"
_OWN_HINT: Final = re.compile(r" \([^()]*--assume-timezone[^()]*\)$")
_PROBE_CASE: Final = uuid.UUID(int=1)
_ALL: Final = 1 << 30
_ITEMS: Final = 256


class UniformFailureError(InputError):
    """The first rows of an input all fail the same way: an option or the file is wrong."""

    def __init__(
        self,
        *,
        rows: int,
        first_line: int | None,
        last_line: int | None,
        example: str,
        field: str,
        hint: str,
    ) -> None:
        self.rows = rows
        self.first_line = first_line
        self.last_line = last_line
        self.example = example
        self.field = field
        self.hint = hint
        where = ""
        if first_line is not None and last_line is not None:
            where = f" (lines {first_line}-{last_line})"
        every = f"the first {rows:,} rows" if rows else "every row"
        super().__init__(
            f"{every}{where} all fail the same way, so reading stopped and nothing was sent:"
            f" {example}; {hint}"
        )


def signature(problem: str) -> tuple[str, str]:
    """``(field, message with its values blanked)``: what "the same way" compares."""
    text = _LINE_PREFIX.sub("", problem, count=1)
    found = _FIELD.match(text)
    field = found.group(1) if found else "row"
    message = text[found.end() :] if found else text
    return field, _VALUES.sub(_PLACEHOLDER, message)


def _hint(field: str, message: str, column: str | None) -> str:
    """The option that fixes a problem every row has."""
    if field == "eventDate" and "has no time zone" in message:
        if column is not None and "utc" in column.casefold():
            return f"the column {column!r} says UTC: pass --assume-timezone UTC"
        return "pass --assume-timezone ZONE with the zone they are in (UTC, Europe/Copenhagen …)"
    if field == "caseId" and "not a valid UUID" in message:
        return (
            "the column holds no Debitura case ids; if it holds your own case references,"
            " pass --map caseReference=COLUMN"
        )
    if field == "caseId" and message.startswith("required"):
        return "map the column of case ids: --map caseId=COLUMN (or --map caseReference=COLUMN)"
    if field == "description":
        return "map the column of note texts: --map description=COLUMN"
    if field == "caseReference" and "not resolved" in message:
        return "check that the references are this API key's partner's (and the environment)"
    if "not valid" in message and field == "row":
        return "pass --encoding with the file's encoding (for example --encoding cp1252)"
    if "columns, found" in message:
        return "the rows do not split like the header: pass --delimiter (',', ';', tab)"
    if field == "type":
        return "only notes (type 0) can be sent: leave the type column out"
    return "fix the file or the options, then run again"


class FailureWatch:
    """Watches the first rows' problems (see the module's doc)."""

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        min_rows: int = DEFAULT_MIN_ROWS,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        if threshold < 1 or min_rows < 1:
            raise ValueError("threshold and min_rows must be at least 1")
        self.threshold = threshold
        self.min_rows = min_rows
        self._columns = dict(columns or {})
        self.watching = True
        self._rows = 0
        self._common: dict[tuple[str, str], str] | None = None
        self._first_line: int | None = None
        self._last_line: int | None = None

    def observe(self, problems: Sequence[str] | None, line: int | None = None) -> None:
        """One row's problems (empty or None: the row passes), in input order."""
        if not self.watching:
            return
        if not problems:
            self.watching = False
            return
        found = {signature(p): p for p in problems}
        if self._common is None:
            self._common = found
            self._first_line = line
        else:
            self._common = {k: v for k, v in self._common.items() if k in found}
        if not self._common:
            self.watching = False
            return
        self._rows += 1
        self._last_line = line
        if self._rows >= self.threshold:
            self._raise()

    def finish(self) -> None:
        """The input ended: raise if it was short and every row of it failed alike."""
        if self.watching and self._common and self._rows >= self.min_rows:
            self._raise()

    def _raise(self) -> None:
        self.watching = False
        (field, message), example = next(iter((self._common or {}).items()))
        column = self._columns.get(field)
        example = _LINE_PREFIX.sub("", example, count=1)
        example = _OWN_HINT.sub("", example)  # the hint below says it better
        if self._first_line is not None:
            example = f"line {self._first_line}: {name_column(example, self._columns)}"
        raise UniformFailureError(
            rows=self._rows,
            first_line=self._first_line,
            last_line=self._last_line,
            example=example,
            field=field,
            hint=_hint(field, message, column),
        )


def row_check(*, now: datetime, skew: timedelta) -> Callable[[Item, int], list[str]]:
    """The pipeline's client-side rules for one item, as ``"field: message"`` texts (a
    reference row is checked with a stand-in case id: its reference is resolved later)."""

    def check(item: Item, position: int) -> list[str]:
        if isinstance(item, InvalidRow):
            return list(item.problems) or ["row: could not be read"]
        subject = item.with_case_id(_PROBE_CASE) if isinstance(item, UnresolvedCaseRow) else item
        _, problems = item_problems(subject, position, now=now, skew=skew)
        return [f"{p.field}: {p.message}" for p in problems]

    return check


def watch_input(
    items: Iterable[Item],
    check: Callable[[Item, int], Sequence[str]],
    watch: FailureWatch,
    lines: LineMap | None = None,
) -> Iterator[Item]:
    """``items`` passed through, checked by ``check`` while ``watch`` is watching (the first rows
    only): raises :class:`UniformFailureError` from the iteration when they all fail alike.

    A CSV reader's items stay a :class:`~debitura_async._input_columns.CsvItems` (so the
    pipeline still takes its blocks of plain lines as columns, once the watch is over)."""
    source = iter(items)
    if isinstance(source, CsvItems):
        return CsvItems(_watched_units(source, check, watch, lines))
    return _watched(source, check, watch, lines)


def _observe(
    item: Item,
    position: int,
    check: Callable[[Item, int], Sequence[str]],
    watch: FailureWatch,
    lines: LineMap | None,
) -> None:
    line = lines.first_line(position) if lines is not None and len(lines) > position else None
    watch.observe(check(item, position), line)


def _watched(
    items: Iterator[Item],
    check: Callable[[Item, int], Sequence[str]],
    watch: FailureWatch,
    lines: LineMap | None,
) -> Iterator[Item]:
    for position, item in enumerate(items):
        if watch.watching:
            _observe(item, position, check, watch, lines)
        yield item
    watch.finish()


def _watched_units(
    source: CsvItems,
    check: Callable[[Item, int], Sequence[str]],
    watch: FailureWatch,
    lines: LineMap | None,
) -> Iterator[Unit]:
    """A CSV reader's items one by one while ``watch`` watches (as :func:`_watched` hands them
    out), then its blocks and items as the reader makes them."""
    position = 0
    while watch.watching:
        item = next(source, None)
        if item is None:
            watch.finish()
            return
        _observe(item, position, check, watch, lines)
        position += 1
        yield [item]
    while taken := source.take(_ALL, item_limit=_ITEMS):
        yield taken
    watch.finish()
