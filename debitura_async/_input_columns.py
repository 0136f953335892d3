"""The CSV reader's columnar hand-off: a block of plain lines kept as columns of cells. Pure.

A block of plain lines (:meth:`~debitura_async._input_lines.PhysicalLines.take_block`: no
quoting, one record per line) in which every line has the header's number of cells and no cell
but a description is empty once stripped is split in a few calls in C (:func:`block_columns`)
and kept as a :class:`ColumnChunk`: one list of cells per input field, no row dict. The reader's
iterator (:class:`CsvItems`) hands such blocks to the pipeline as they are (:meth:`CsvItems.take`),
which validates and encodes them column by column
(:func:`~debitura_async._fast_chunk.wires_of_columns`); whoever iterates the reader item by item
gets the very row dicts the reader always yielded (:meth:`ColumnChunk.rows`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import repeat

import attrs
import orjson

from ._input_cells import rows_of_cells
from ._input_rows import Item

__all__ = ["ColumnChunk", "CsvItems", "block_columns"]


@attrs.frozen(slots=True)
class ColumnChunk:
    """Consecutive rows of a CSV file, column by column: what :func:`block_columns` found.

    Every list has one cell per row: ``case_ids``, ``event_dates`` and ``external_refs``
    stripped and not empty, ``descriptions`` as written; ``event_dates``/``external_refs`` are
    None when the file has no such column."""

    case_ids: list[str]
    descriptions: list[str]
    event_dates: list[str] | None
    external_refs: list[str] | None
    ascii: bool = attrs.field(default=False, kw_only=True)
    """Every cell is ASCII text (so UTF-8-encodable); False: not known."""
    plain: bool = attrs.field(default=False, kw_only=True)
    """Every cell is ASCII and JSON string content as it stands (no quote, backslash or control
    character: orjson writes it unchanged between quotes); False: not known."""

    def __len__(self) -> int:
        return len(self.case_ids)

    def slice(self, start: int, stop: int) -> ColumnChunk:
        """Rows ``start`` to ``stop`` (exclusive)."""
        dates, refs = self.event_dates, self.external_refs
        return ColumnChunk(
            self.case_ids[start:stop],
            self.descriptions[start:stop],
            None if dates is None else dates[start:stop],
            None if refs is None else refs[start:stop],
            ascii=self.ascii,
            plain=self.plain,
        )

    def rows(self) -> list[Item]:
        """The row dicts the reader yields for these rows, one by one."""
        return rows_of_cells(self.case_ids, self.descriptions, self.event_dates, self.external_refs)


def block_columns(
    text: str, width: int, columns: Mapping[str, int], delimiter: str
) -> ColumnChunk | None:
    """The lines of ``text`` (a block: each line ends with ``\\n``, but perhaps the last) as
    columns, when each line has ``width`` cells split at ``delimiter`` and no cell of
    ``columns`` but the description is empty once stripped; else None. ``columns`` maps
    ``caseId``, ``description`` and optionally ``eventDate`` and ``externalRef`` to their index.

    The whole block is split at once: each line end becomes ``delimiter`` + ``\\n``, so a line's
    first cell starts with ``\\n`` (but the first line's). When the cells number
    ``count * width`` (``count`` lines) and each cell at a multiple of ``width`` (but the first)
    starts a line, every line has exactly ``width`` cells (``count - 1`` line starts at
    ``count - 1`` such places): cell ``k * width + i`` is cell ``i`` of line ``k``. (The
    equivalence with splitting line by line is hypothesis-tested in
    ``tests/unit/test_fast_columns.py``.)
    """
    if width < 2 or not text:
        return None
    replaced = text.replace("\n", delimiter + "\n")
    ended = text.endswith("\n")
    count = len(replaced) - len(text) + (not ended)  # the lines: a "\n" each, but perhaps the last
    cells = replaced.split(delimiter)
    del replaced
    if ended:
        cells.pop()  # the "\n" after the last line's end
    if len(cells) != count * width:
        return None
    starts = cells[0::width]
    # A cell holds a "\n" only at its start, and only where a line starts: so when the cells at
    # multiples of width hold count - 1 of them (the first cell cannot), they are the line starts.
    if "".join(starts).count("\n") != count - 1:
        return None
    found: dict[str, list[str]] = {}
    for field, index in columns.items():
        column = starts if index == 0 else cells[index::width]
        if field != "description":
            column = list(map(str.strip, column))  # a line start's "\n" goes with the spaces
            if "" in column:
                return None  # an empty cell means "absent": rows of other shapes
        elif index == 0:
            column = list(map(str.removeprefix, column, repeat("\n")))
        found[field] = column
    ascii = text.isascii()
    return ColumnChunk(
        found["caseId"],
        found["description"],
        found.get("eventDate"),
        found.get("externalRef"),
        ascii=ascii,
        plain=ascii and _plain_json(text, count, delimiter),
    )


def _plain_json(text: str, count: int, delimiter: str) -> bool:
    """No character of the ASCII ``text`` of ``count`` lines but its line ends (and tab
    delimiters) needs escaping in JSON: orjson, one call in C, writes each ``\\n`` and ``\\t``
    as two characters, and any other escape (a quote, a backslash, a control character)
    lengthens it too."""
    escaped = count - (not text.endswith("\n"))  # the line ends
    if delimiter == "\t":
        escaped += text.count("\t")
    return len(orjson.dumps(text)) == len(text) + 2 + escaped


Unit = ColumnChunk | list[Item]
"""What a CSV reader makes at a time: a block of rows as columns, or items (never none)."""


class CsvItems:
    """What iterating a :class:`~debitura_async._input.CsvReader` gives: its items, one by one
    (an iterator, as always), and to the pipeline, blocks of rows as columns (:meth:`take`).
    Both may be used in turn: each item comes once, in order."""

    __slots__ = ("_at", "_block", "_error", "_items", "_offset", "_units")

    def __init__(self, units: Iterator[Unit]) -> None:
        self._units = units
        self._items: list[Item] = []
        self._at = 0
        self._block: ColumnChunk | None = None
        self._offset = 0
        self._error: Exception | None = None

    def __iter__(self) -> CsvItems:
        return self

    def __next__(self) -> Item:
        at = self._at
        if at < len(self._items):
            self._at = at + 1
            return self._items[at]
        self._refill()
        self._at = 1
        return self._items[0]

    def _refill(self) -> None:
        """The next items (never none) in :attr:`_items`; StopIteration at the end."""
        block = self._block
        if block is not None:
            self._block = None
            if self._offset:
                block = block.slice(self._offset, len(block))
            self._items = block.rows()
            return
        self._raise_held()
        unit = next(self._units)
        self._items = unit if isinstance(unit, list) else unit.rows()

    def _raise_held(self) -> None:
        error = self._error
        if error is not None:
            self._error = None
            raise error

    def take(self, limit: int, *, item_limit: int | None = None) -> ColumnChunk | list[Item]:
        """The next ``limit`` rows of a block as columns (never none), or else the next
        ``item_limit`` (default ``limit``) items at most (``[]`` at the end); both limits > 0.
        An error of the input after some items were taken is raised by the next call, once
        those have been handled."""
        cap = limit if item_limit is None else min(limit, item_limit)
        out: list[Item] = []
        while len(out) < cap:
            at, items = self._at, self._items
            if at < len(items):
                stop = min(len(items), at + cap - len(out))
                out += items[at:stop]
                self._at = stop
                continue
            if self._block is not None:
                if out:
                    break
                return self._take_block(limit)
            if self._error is not None:
                if out:
                    break
                self._raise_held()
            try:
                unit = next(self._units)
            except StopIteration:
                break
            except Exception as exc:  # raised by the next call, after the items taken
                if not out:
                    raise
                self._error = exc
                break
            if isinstance(unit, list):
                self._items, self._at = unit, 0
            else:
                self._block, self._offset = unit, 0
        return out

    def _take_block(self, limit: int) -> ColumnChunk:
        block = self._block
        assert block is not None  # noqa: S101 - for mypy
        start = self._offset
        stop = start + limit
        if stop >= len(block):
            self._block = None
            return block if start == 0 else block.slice(start, len(block))
        self._offset = stop
        return block.slice(start, stop)
