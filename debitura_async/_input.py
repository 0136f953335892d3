"""Streaming readers of the CLI's input files: CSV with a header row, and JSON Lines.

Both read the file as bytes, one physical line at a time, and yield one item per record: a
``dict`` with the API's camelCase field names (ready for :meth:`DebituraClient.ingest`) or an
:class:`~debitura_async.models.InvalidRow` naming the line(s) and the reason when a record cannot
be parsed. Nothing is loaded whole; memory does not grow with the file.

* UTF-8, with or without a byte order mark; LF or CRLF line ends.
* Blank lines are skipped: they are not rows.
* CSV: the first non-blank record is the header. Columns are named as the API fields
  (``caseId``, ``description``, ``eventDate``, ``externalRef``, ``type``) or mapped with
  ``mapping={"caseId": "CaseGuid", ...}`` (the CLI's ``--map caseId=CaseGuid``). Other columns are
  ignored (see :attr:`CsvReader.ignored_columns`). Quoted fields may span lines. An empty optional
  cell means "absent"; ``type`` cells are read as integers.
* JSONL: one JSON object per line, keyed by API field names (or mapped the same way); ``null``
  means absent; other keys are ignored.
* Malformed records — unbalanced quotes, a wrong column count, invalid UTF-8, broken JSON, JSON
  that is not an object — become ``InvalidRow(("line 17: ...",))`` and reading goes on.

Positions (0-based indexes of the items yielded) map back to line numbers through
:class:`LineMap`, which stores only the irregularities (header, blank lines, multi-line records),
so it stays small however long the file is.
"""

from __future__ import annotations

import csv
import re
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, Self

import orjson

from .models import InvalidRow

__all__ = [
    "API_FIELDS",
    "CsvReader",
    "InputError",
    "InputFormat",
    "Item",
    "JsonlReader",
    "LineMap",
    "detect_format",
    "open_reader",
    "parse_mapping",
]

InputFormat = Literal["csv", "jsonl"]
Item = dict[str, Any] | InvalidRow

API_FIELDS: Final = ("caseId", "description", "eventDate", "externalRef", "type")
"""The fields of an ingestion row, as the API names them."""
REQUIRED_FIELDS: Final = ("caseId", "description")

MAX_RECORD_LINES: Final = 1000
"""A quoted CSV field still open after this many lines is taken for an unbalanced quote."""
MAX_RECORD_BYTES: Final = 256 * 1024
"""Likewise for this many bytes (a description holds at most 10,000 characters)."""

_BOM: Final = b"\xef\xbb\xbf"
_FORMATS: Final[dict[str, InputFormat]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}
_ORJSON_WHERE = re.compile(r":? ?line \d+ column (\d+) \(char \d+\)")


class InputError(Exception):
    """The input cannot be read at all: no such file, no header, a mapped column is missing."""


def detect_format(path: str | Path) -> InputFormat:
    """The format a file's extension implies (``.csv``; ``.jsonl``/``.ndjson``)."""
    suffix = Path(path).suffix.lower()
    try:
        return _FORMATS[suffix]
    except KeyError:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its extension; pass --format csv|jsonl"
        ) from None


def parse_mapping(specs: Sequence[str]) -> dict[str, str]:
    """``["caseId=CaseGuid", ...]`` -> ``{"caseId": "CaseGuid"}``; refuses unknown API fields.

    >>> parse_mapping(["caseId=CaseGuid", "description = NoteText"])
    {'caseId': 'CaseGuid', 'description': 'NoteText'}
    """
    mapping: dict[str, str] = {}
    for spec in specs:
        field, sep, column = spec.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise InputError(f"--map expects API_FIELD=COLUMN, got {spec!r}")
        if field not in API_FIELDS:
            raise InputError(
                f"--map {spec!r}: {field!r} is not an API field (one of {', '.join(API_FIELDS)})"
            )
        if field in mapping and mapping[field] != column:
            raise InputError(f"--map: {field!r} mapped twice ({mapping[field]!r}, {column!r})")
        mapping[field] = column
    return mapping


def _where(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


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


class _Reader:
    """Shared plumbing: the binary file, byte counting, the line map, one-shot iteration."""

    format: InputFormat

    def __init__(self, path: str | Path, mapping: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.mapping: dict[str, str] = dict(mapping or {})
        unknown = sorted(set(self.mapping) - set(API_FIELDS))
        if unknown:
            raise InputError(f"not API fields: {', '.join(unknown)}")
        try:
            self._file: IO[bytes] = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {str(self.path)!r}: {exc.strerror or exc}") from None
        try:
            self.size: int = self.path.stat().st_size
        except OSError:  # pragma: no cover - opened a moment ago
            self.size = 0
        self.lines = LineMap()
        self.bytes_read = 0
        self._started = False

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Item]:
        if self._started:
            raise RuntimeError("an input reader can be iterated once")
        self._started = True
        return self._items()

    def _items(self) -> Iterator[Item]:  # pragma: no cover - abstract
        raise NotImplementedError


class JsonlReader(_Reader):
    """JSON Lines: one object per line, keyed by API field names (or mapped)."""

    format: InputFormat = "jsonl"

    def __init__(self, path: str | Path, mapping: Mapping[str, str] | None = None) -> None:
        super().__init__(path, mapping)
        self._sources = {field: self.mapping.get(field, field) for field in API_FIELDS}
        self.ignored_keys: set[str] = set()
        """Keys seen and not sent (up to 50 names)."""

    def _items(self) -> Iterator[Item]:
        lineno = 0
        sources = self._sources
        wanted = set(sources.values())
        for raw in self._file:
            lineno += 1
            self.bytes_read += len(raw)
            line = raw[3:] if lineno == 1 and raw.startswith(_BOM) else raw
            if not line.strip():
                continue
            item = self._parse(line, lineno, sources, wanted)
            self.lines.add(lineno, lineno)
            yield item

    def _parse(
        self, line: bytes, lineno: int, sources: Mapping[str, str], wanted: set[str]
    ) -> Item:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return InvalidRow((f"line {lineno}: not valid UTF-8 ({_describe_decode(exc)})",))
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reason = _ORJSON_WHERE.sub(lambda m: f" at column {m.group(1)}", str(exc))
            return InvalidRow((f"line {lineno}: broken JSON: {reason}",))
        if not isinstance(data, dict):
            kind = "an array" if isinstance(data, list) else f"a JSON {_json_kind(data)}"
            return InvalidRow((f"line {lineno}: expected a JSON object, found {kind}",))
        row: dict[str, Any] = {}
        for field, source in sources.items():
            value = data.get(source)
            if value is not None:
                row[field] = value
        if len(self.ignored_keys) < 50:
            for key in data:
                if key not in wanted:
                    self.ignored_keys.add(key)
        return row


def _json_kind(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _describe_decode(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex()
    return f"byte 0x{bad} at column {exc.start + 1}"


class _Undecodable(Exception):
    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason


class _TooLong(Exception):
    pass


# One physical line: (number, text or None when undecodable, why undecodable, byte length)
_Line = tuple[int, str | None, str, int]


class _PhysicalLines:
    """Decoded physical lines for the csv module, with the lines of the current record kept so a
    record that goes wrong can be re-read from its second line (resynchronising after a stray
    quote)."""

    def __init__(self, reader: CsvReader) -> None:
        self._reader = reader
        self._raw = iter(reader._file)
        self._lineno = 0
        self._pushed: deque[_Line] = deque()
        self.taken: list[_Line] = []
        self._taken_bytes = 0
        self._overflow: _Line | None = None

    def __iter__(self) -> Self:
        return self

    def begin(self) -> None:
        self.taken = []
        self._taken_bytes = 0
        self._overflow = None

    def _fetch(self) -> _Line:
        if self._pushed:
            return self._pushed.popleft()
        raw = next(self._raw)  # StopIteration ends the csv reader's input
        self._lineno += 1
        self._reader.bytes_read += len(raw)
        if self._lineno == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            return (self._lineno, raw.decode("utf-8"), "", len(raw))
        except UnicodeDecodeError as exc:
            return (self._lineno, None, _describe_decode(exc), len(raw))

    def __next__(self) -> str:
        line = self._fetch()
        if self.taken and (
            len(self.taken) >= MAX_RECORD_LINES or self._taken_bytes + line[3] > MAX_RECORD_BYTES
        ):
            self._overflow = line
            raise _TooLong
        lineno, text, reason, size = line
        if text is None:
            self._overflow = line
            raise _Undecodable(lineno, reason)
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


class CsvReader(_Reader):
    """CSV with a header row (RFC 4180 quoting; quoted fields may span lines)."""

    format: InputFormat = "csv"

    def __init__(self, path: str | Path, mapping: Mapping[str, str] | None = None) -> None:
        super().__init__(path, mapping)
        try:
            self._lines = _PhysicalLines(self)
            self._csv = csv.reader(self._lines, strict=True)
            self.header: tuple[str, ...] = self._read_header()
            self.columns: dict[str, int] = self._resolve_columns()
        except BaseException:
            self.close()
            raise
        used = set(self.columns.values())
        self.ignored_columns: tuple[str, ...] = tuple(
            name for i, name in enumerate(self.header) if i not in used
        )
        """Header columns that are neither API fields nor mapped: not sent."""

    # -- header ------------------------------------------------------------------------------

    def _read_header(self) -> tuple[str, ...]:
        for first, last, record in self._records():
            if isinstance(record, str):
                raise InputError(f"{self.path}: {_where(first, last)}: bad header: {record}")
            return tuple(name.strip() for name in record)
        raise InputError(f"{self.path}: no header line (the file is empty)")

    def _resolve_columns(self) -> dict[str, int]:
        header = self.header
        positions: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            positions.setdefault(name, []).append(index)
        folded: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            folded.setdefault(name.casefold(), []).append(index)

        columns: dict[str, int] = {}
        for field in API_FIELDS:
            wanted = self.mapping.get(field, field)
            found = positions.get(wanted) or folded.get(wanted.casefold(), [])
            if len(found) > 1:
                raise InputError(
                    f"{self.path}: the header has {len(found)} columns named {wanted!r}"
                )
            if found:
                columns[field] = found[0]
            elif field in self.mapping:
                raise InputError(
                    f"{self.path}: --map {field}={wanted}: no column {wanted!r} in the header"
                    f" (columns: {', '.join(header)})"
                )
        missing = [f for f in REQUIRED_FIELDS if f not in columns]
        if missing:
            hint = " ".join(f"--map {f}=COLUMN" for f in missing)
            raise InputError(
                f"{self.path}: no column for {', '.join(missing)} in the header"
                f" (columns: {', '.join(header)}); name it so or pass {hint}"
            )
        return columns

    # -- records -----------------------------------------------------------------------------

    def _records(self) -> Iterator[tuple[int, int, list[str] | str]]:
        """``(first_line, last_line, fields)`` per non-blank record, or a problem text."""
        lines = self._lines
        while True:
            lines.begin()
            try:
                fields = next(self._csv)
            except StopIteration:
                return
            except _Undecodable as bad:
                if not lines.taken:
                    yield bad.lineno, bad.lineno, f"not valid UTF-8 ({bad.reason})"
                    lines.begin()
                    continue
                first = lines.first
                lines.rewind()
                yield (
                    first,
                    first,
                    (
                        "unbalanced quote: the quoted field opened on this line runs into"
                        f" line {bad.lineno}, which is not valid UTF-8"
                    ),
                )
                continue
            except _TooLong:
                first = lines.first
                lines.rewind()
                yield (
                    first,
                    first,
                    (
                        "unbalanced quote: the quoted field opened on this line does not close"
                        f" within {MAX_RECORD_LINES} lines / {MAX_RECORD_BYTES // 1024} KiB"
                    ),
                )
                continue
            except csv.Error as exc:
                if not lines.taken:  # pragma: no cover - csv fails only after reading a line
                    continue
                first, last = lines.first, lines.last
                eof = "unexpected end of data" in str(exc)
                if first == last:
                    reason = (
                        "unbalanced quote: the quoted field opened on this line never closes"
                        if eof
                        else f"malformed CSV: {_csv_reason(exc)}"
                    )
                    yield first, first, reason
                    continue
                lines.rewind()
                where = "the end of the file" if eof else f"line {last}, where the quoting breaks"
                yield (
                    first,
                    first,
                    f"unbalanced quote: the quoted field opened on this line runs on to {where}",
                )
                continue
            first, last = lines.first, lines.last
            if not fields or (first == last and len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            yield first, last, fields

    def _items(self) -> Iterator[Item]:
        width = len(self.header)
        columns = self.columns
        add = self.lines.add
        for first, last, record in self._records():
            add(first, last)
            if isinstance(record, str):
                yield InvalidRow((f"{_where(first, last)}: {record}",))
            elif len(record) != width:
                yield InvalidRow(
                    (f"{_where(first, last)}: expected {width} columns, found {len(record)}",)
                )
            else:
                yield _row_from_cells(record, columns)


_CSV_REASONS: Final = (
    ("expected after", 'text after a closing quote (a quote inside a field is written twice: "")'),
    ("new-line character seen in unquoted field", "a carriage return inside an unquoted field"),
    ("field larger than field limit", "a field longer than the CSV field limit"),
)


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    for needle, reason in _CSV_REASONS:
        if needle in text:
            return reason
    return text


def _row_from_cells(cells: Sequence[str], columns: Mapping[str, int]) -> dict[str, Any]:
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


def open_reader(
    path: str | Path, input_format: InputFormat, mapping: Mapping[str, str] | None = None
) -> CsvReader | JsonlReader:
    """A reader of ``path`` (raises :class:`InputError` when it cannot be read at all)."""
    if input_format == "csv":
        return CsvReader(path, mapping)
    return JsonlReader(path, mapping)
