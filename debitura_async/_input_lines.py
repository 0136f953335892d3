"""Line bookkeeping of the readers: positions to line numbers, and the CSV reader's physical
lines (kept per record so a record that goes wrong can be re-read from its second line)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from typing import Final, Self

from ._input_decode import Line, LineSource

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_RECORD_LINES",
    "LineMap",
    "PhysicalLines",
    "TooLong",
    "Undecodable",
    "block_lines",
    "line_count",
]

MAX_RECORD_LINES: Final = 1000
"""A quoted CSV field still open after this many lines is taken for an unbalanced quote."""
MAX_RECORD_BYTES: Final = 256 * 1024
"""Likewise for this many bytes (a description holds at most 10,000 characters)."""


class LineMap:
    """Input positions (0-based item indexes) -> 1-based physical line numbers.

    Most records are one line right after the previous one, so only the exceptions are kept: each
    change of ``first_line - position`` (the header, blank lines, and the line after a multi-line
    record) and the last line of each multi-line record. Memory grows with those exceptions, not
    with the rows (16 bytes each).

    >>> lines = LineMap()
    >>> [lines.add(2, 2), lines.add(4, 6), lines.add(7, 7)]
    [0, 1, 2]
    >>> lines.first_line(1), lines.last_line(1), lines.first_line(2)
    (4, 6, 7)
    """

    __slots__ = ("_ml_last", "_ml_pos", "_next", "_off", "_offset", "_pos")

    def __init__(self) -> None:
        self._pos = array("q")
        self._off = array("q")
        self._ml_pos = array("q")
        self._ml_last = array("q")
        self._next = 0
        self._offset: int | None = None

    def __len__(self) -> int:
        return self._next

    @property
    def irregularities(self) -> int:
        """How many exceptions are stored (for tests and curiosity)."""
        return len(self._pos) + len(self._ml_pos)

    def add(self, first_line: int, last_line: int) -> int:
        """Record the next item's lines; returns its position."""
        position = self._next
        self._next += 1
        offset = first_line - position
        if offset != self._offset:
            self._pos.append(position)
            self._off.append(offset)
            self._offset = offset
        if last_line != first_line:
            self._ml_pos.append(position)
            self._ml_last.append(last_line)
        return position

    def add_run(self, first_line: int, count: int) -> None:
        """Record ``count`` one-line items on consecutive lines from ``first_line``."""
        if count <= 0:
            return
        offset = first_line - self._next
        if offset != self._offset:
            self._pos.append(self._next)
            self._off.append(offset)
            self._offset = offset
        self._next += count

    def first_line(self, position: int) -> int:
        if not 0 <= position < self._next:
            raise IndexError(f"position {position} has not been read")
        i = bisect_right(self._pos, position) - 1
        return position + self._off[i]

    def last_line(self, position: int) -> int:
        i = bisect_right(self._ml_pos, position) - 1
        if i >= 0 and self._ml_pos[i] == position:
            return self._ml_last[i]
        return self.first_line(position)

    def span(self, first_position: int, last_position: int) -> tuple[int, int]:
        """First line of the first position to last line of the last position."""
        return self.first_line(first_position), self.last_line(last_position)


def block_lines(text: str) -> list[str]:
    """The lines of a :meth:`PhysicalLines.take_block` text, without their ends."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def line_count(text: str) -> int:
    """``len(block_lines(text))``, without splitting."""
    return text.count("\n") + (not text.endswith("\n"))


class Undecodable(Exception):
    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason


class TooLong(Exception):
    pass


class PhysicalLines:
    """Decoded physical lines for the csv module, with the lines of the current record kept so a
    record that goes wrong can be re-read from its second line (resynchronising after a stray
    quote)."""

    def __init__(self, lines: Iterator[Line], source: LineSource | None = None) -> None:
        self._raw = lines
        self._source = source
        """Where :meth:`take_block` reads blocks of lines from (None: it never does)."""
        self._pushed: deque[Line] = deque()
        self.taken: list[Line] = []
        self._taken_bytes = 0
        self._overflow: Line | None = None

    def __iter__(self) -> Self:
        return self

    def begin(self) -> None:
        self.taken = []
        self._taken_bytes = 0
        self._overflow = None

    def peek(self) -> Line | None:
        """The next line, left to be read again (None at the end)."""
        line = self._pushed[0] if self._pushed else next(self._raw, None)
        if line is not None and not self._pushed:
            self._pushed.append(line)
        return line

    def skip(self) -> None:
        """Drop the line :meth:`peek` showed."""
        self._pushed.popleft()

    def take_unquoted(self, field_limit: int) -> tuple[int, str] | None:
        """The next line as ``(number, text without its line end)``, consumed, when the csv
        module would read it as plain unquoted fields (no quote, no NUL, no CR but in its
        ``\r\n`` end, not longer than ``field_limit``): the reader then splits it itself, at
        a fraction of the cost. Else None, and the line stays next (for the csv module).

        Call :meth:`begin` first; the line does not join :attr:`taken` (a one-line record is
        never re-read). None at the end of the input too (the csv module then ends).
        """
        if self._pushed:
            return None
        line = next(self._raw, None)
        if line is None:
            return None
        text = line[1]
        if text is None or '"' in text or "\x00" in text or len(text) > field_limit:
            self._pushed.append(line)
            return None
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        if "\r" in text:
            self._pushed.append(line)
            return None
        return line[0], text

    def take_block(self, field_limit: int) -> tuple[int, str] | None:
        """The next lines as ``(number of the first, their text)``, read and decoded at once,
        consumed, when every one of them is a line :meth:`take_unquoted` would take (no quote,
        no NUL, no CR but in a ``\r\n`` end, not too long): many lines for a few calls in C.
        The text ends each line with ``\n`` (a ``\r\n`` end is made ``\n``), but perhaps
        the last one, at the end of the input (see :func:`block_lines`). Else None, and those
        lines are next, one by one, as :meth:`take_unquoted` or the csv module take them. Like
        :meth:`take_unquoted`, only right after :meth:`begin`.
        """
        if self._pushed or self._source is None:
            return None
        block = self._source.read_block()
        if block is None:
            return None
        first, data = block
        try:
            text = data.decode(self._source.encoding)
        except UnicodeDecodeError:
            text = None
        if text is not None and '"' not in text and "\x00" not in text:
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            if "\r" not in text and (
                len(text) + 2 <= field_limit or max(map(len, block_lines(text))) + 2 <= field_limit
            ):
                return first, text  # the caller counts the lines: end_block()
        self._pushed.extend(self._source.split_block(first, data))
        return None

    def end_block(self, count: int) -> None:
        """The block :meth:`take_block` gave held ``count`` lines (:func:`block_lines`' number;
        told before anything else is read)."""
        assert self._source is not None  # noqa: S101 - only after take_block
        self._source.end_block(count)

    def _fetch(self) -> Line:
        if self._pushed:
            return self._pushed.popleft()
        return next(self._raw)  # StopIteration ends the csv reader's input

    def __next__(self) -> str:
        line = self._fetch()
        if self.taken and (
            len(self.taken) >= MAX_RECORD_LINES or self._taken_bytes + line[3] > MAX_RECORD_BYTES
        ):
            self._overflow = line
            raise TooLong
        lineno, text, reason, size = line
        if text is None:
            self._overflow = line
            raise Undecodable(lineno, reason)
        self.taken.append(line)
        self._taken_bytes += size
        return text

    def rewind(self) -> None:
        """Re-read every line of the current record after its first (and the one that broke it)."""
        again = self.taken[1:]
        if self._overflow is not None:
            again.append(self._overflow)
        self._pushed.extendleft(reversed(again))
        self.begin()

    @property
    def first(self) -> int:
        return self.taken[0][0]

    @property
    def last(self) -> int:
        return self.taken[-1][0]
