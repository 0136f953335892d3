"""Streaming readers of the CLI's input files: CSV with a header row, and JSON Lines.

Both read a file (or a binary stream such as standard input) one line at a time and yield one
item per record: a ``dict`` with the API's camelCase field names (ready for
:meth:`DebituraClient.ingest`), an :class:`~debitura_async.models.UnresolvedCaseRow` for a row
that names its case by a partner reference, or an :class:`~debitura_async.models.InvalidRow`
naming the line(s) and the reason when a record cannot be used. Nothing is loaded whole; memory
does not grow with the file.

* Encodings (:class:`InputOptions`): UTF-8 with or without a byte order mark, UTF-16/UTF-32 by
  their BOM (Excel's "Unicode text"), or an explicit one (``cp1252``). A seekable input is checked
  for undecodable bytes before the first row is read: a file in another encoding fails with one
  :class:`InputEncodingError`, before anything is sent. LF or CRLF line ends.
* Blank lines are skipped: they are not rows.
* CSV: the delimiter is sniffed from the header (``,`` ``;`` tab ``|``; Excel's ``sep=;`` line
  is honoured) or given. The first non-blank record is the header. Columns are named as the API
  fields (``caseId``, ``description``, ``eventDate``, ``externalRef``, ``type``, and
  ``caseReference``) or mapped with ``mapping={"caseId": "CaseGuid", ...}`` (the CLI's ``--map
  caseId=CaseGuid``). Other columns are ignored (see :attr:`CsvReader.ignored_columns`). Quoted
  fields may span lines. An empty optional cell means "absent"; ``type`` cells are read as
  integers.
* JSONL: one JSON object per line, keyed by API field names (or mapped the same way); ``null``
  means absent; other keys are ignored.
* Naive date-times are read in ``assume_timezone`` when one is given (see :mod:`._input_dates`).
* Malformed records — unbalanced quotes, a wrong column count, undecodable bytes, broken JSON,
  JSON that is not an object — become ``InvalidRow(("line 17: ...",))`` and reading goes on.

Positions (0-based indexes of the items yielded) map back to line numbers through
:class:`LineMap`, which stores only the irregularities (header, blank lines, multi-line records),
so it stays small however long the file is.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, Self

import orjson

from ._input_cells import row_from_cells as _row_from_cells
from ._input_columns import CsvItems, Unit, block_columns
from ._input_decode import InputEncodingError, LineSource, label, scan_encoding
from ._input_lines import (
    MAX_RECORD_BYTES,
    MAX_RECORD_LINES,
    LineMap,
    PhysicalLines,
    block_lines,
)
from ._input_lines import TooLong as _TooLong
from ._input_lines import Undecodable as _Undecodable
from ._input_options import InputError, InputOptionError, InputOptions, parse_delimiter
from ._input_rows import API_FIELDS, INPUT_FIELDS, RowShaper, name_column, parse_mapping
from ._input_sniff import sep_line, sniff_delimiter
from .models import InvalidRow, UnresolvedCaseRow

__all__ = [
    "API_FIELDS",
    "INPUT_FIELDS",
    "MAX_RECORD_BYTES",
    "MAX_RECORD_LINES",
    "CsvReader",
    "InputEncodingError",
    "InputError",
    "InputFormat",
    "InputOptionError",
    "InputOptions",
    "Item",
    "JsonlReader",
    "LineMap",
    "detect_format",
    "name_column",
    "open_reader",
    "parse_delimiter",
    "parse_mapping",
]

InputFormat = Literal["csv", "jsonl"]
_Record = tuple[int, int, list[str] | str]
Item = dict[str, Any] | InvalidRow | UnresolvedCaseRow
Source = str | Path | IO[bytes]
"""A path, ``"-"`` for the ``stdin`` stream given to :func:`open_reader`, or a binary stream."""

REQUIRED_FIELDS: Final = ("description",)
STDIN_NAME: Final = "<stdin>"

_FORMATS: Final[dict[str, InputFormat]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}
_ORJSON_WHERE = re.compile(r":? ?line \d+ column (\d+) \(char \d+\)")
_DELIMITER_NAMES: Final = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def detect_format(path: str | Path) -> InputFormat:
    """The format an extension implies (``.csv``/``.tsv``; ``.jsonl``/``.ndjson``)."""
    if str(path) == "-":
        raise InputError("cannot tell the format of standard input; pass --format csv|jsonl")
    suffix = Path(path).suffix.lower()
    try:
        return _FORMATS[suffix]
    except KeyError:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its extension; pass --format csv|jsonl"
        ) from None


def _where(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _size_of(stream: IO[bytes]) -> int:
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return info.st_size if info.st_size > 0 else 0


class _Reader:
    """Shared plumbing: the binary input, its decoding, the line map, one-shot iteration."""

    format: InputFormat

    def __init__(
        self,
        source: Source,
        mapping: Mapping[str, str] | None = None,
        options: InputOptions | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.options = options if options is not None else InputOptions()
        self.mapping: dict[str, str] = dict(mapping or {})
        unknown = sorted(set(self.mapping) - set(INPUT_FIELDS))
        if unknown:
            raise InputError(f"not input fields: {', '.join(unknown)}")
        self._owned = isinstance(source, str | Path)
        if isinstance(source, str | Path):
            self.path = Path(source)
            self.name = str(source)
            try:
                self._file: IO[bytes] = self.path.open("rb")
            except OSError as exc:
                raise InputError(f"cannot read {self.name!r}: {exc.strerror or exc}") from None
        else:
            self.path = Path("-")
            given = getattr(source, "name", None)
            self.name = given if isinstance(given, str) else "<stream>"
            self._file = source
        if name is not None:
            self.name = name
            """How messages name the input (its path, ``<stdin>``, ``<stream>``)."""
        try:
            self.size: int = _size_of(self._file)
            """The input's size in bytes; 0 when unknown (a pipe)."""
            self._source = LineSource(self._file, self.options.encoding)
            if self.options.check_encoding and self._source.seekable:
                scan_encoding(self._source, what=self.name)
        except BaseException:
            self.close()
            raise
        self.lines = LineMap()
        self._started = False

    @property
    def encoding(self) -> str:
        """The encoding the input is read in (given, or told by its BOM)."""
        return self._source.encoding

    @property
    def seekable(self) -> bool:
        """True when the input could be scanned before reading (a file, not a pipe)."""
        return self._source.seekable

    @property
    def bytes_read(self) -> int:
        """Bytes of the input consumed so far (for progress against :attr:`size`)."""
        return self._source.bytes_read

    def close(self) -> None:
        """Close the file the reader opened (a stream it was given is left open)."""
        if self._owned:
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

    def __init__(
        self,
        source: Source,
        mapping: Mapping[str, str] | None = None,
        options: InputOptions | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(source, mapping, options, name=name)
        self._sources = {field: self.mapping.get(field, field) for field in INPUT_FIELDS}
        self.source_columns: dict[str, str] = dict(self._sources)
        """Input field -> the JSON key it is read from (for messages)."""
        mapped = {f: k for f, k in self._sources.items() if f in API_FIELDS or f in self.mapping}
        self._shaper = RowShaper(self.options, mapped)
        self._shape_always = self.options.zone is not None
        self.ignored_keys: set[str] = set()
        """Keys seen and not sent (up to 50 names)."""

    def _items(self) -> Iterator[Item]:
        sources = self._sources
        wanted = set(sources.values())
        for lineno, text, reason, _ in self._source.lines():
            if text is None:
                item: Item = InvalidRow((f"line {lineno}: {reason}",))
            elif not text.strip():
                continue
            else:
                item = self._parse(text, lineno, sources, wanted)
            self.lines.add(lineno, lineno)
            yield item

    def _parse(self, line: str, lineno: int, sources: Mapping[str, str], wanted: set[str]) -> Item:
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
        if self._shape_always or "caseReference" in row:
            return self._shaper.shape(row, f"line {lineno}")
        return row


def _json_kind(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


class CsvReader(_Reader):
    """CSV with a header row (RFC 4180 quoting; quoted fields may span lines)."""

    format: InputFormat = "csv"

    def __init__(
        self,
        source: Source,
        mapping: Mapping[str, str] | None = None,
        options: InputOptions | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(source, mapping, options, name=name)
        self._field_limit = csv.field_size_limit()
        try:
            self._lines = PhysicalLines(self._source.lines(), self._source)
            self.delimiter: str = self._choose_delimiter()
            """The delimiter the file is read with (given, from ``sep=``, or sniffed)."""
            self._csv = csv.reader(self._lines, delimiter=self.delimiter, strict=True)
            self.header: tuple[str, ...] = self._read_header()
            self.columns: dict[str, int] = self._resolve_columns()
        except BaseException:
            self.close()
            raise
        used = set(self.columns.values())
        self.ignored_columns: tuple[str, ...] = tuple(
            name for i, name in enumerate(self.header) if i not in used
        )
        """Header columns that are neither input fields nor mapped: not sent."""
        self.source_columns: dict[str, str] = {f: self.header[i] for f, i in self.columns.items()}
        """Input field -> the header's name of its column (for messages)."""
        self._shaper = RowShaper(self.options, self.source_columns)

    # -- header ------------------------------------------------------------------------------

    def _wanted(self) -> set[str]:
        names = {f.casefold() for f in INPUT_FIELDS}
        return names | {c.casefold() for c in self.mapping.values()}

    def _choose_delimiter(self) -> str:
        lines = self._lines
        line = lines.peek()
        while line is not None and line[1] is not None and not line[1].strip():
            lines.skip()
            line = lines.peek()
        if line is None or line[1] is None:
            return self.options.delimiter or ","
        named = sep_line(line[1])
        if named is not None:
            lines.skip()  # Excel's "sep=;" line is not the header
            return self.options.delimiter or named
        if "\x00" in line[1]:
            raise InputError(
                f"{self.name}: line {line[0]} holds NUL characters: the file looks like UTF-16"
                f" without a byte order mark, read here as {label(self.encoding)}; pass"
                " --encoding utf-16-le (or utf-16-be)"
            )
        return self.options.delimiter or sniff_delimiter(line[1], self._wanted())

    def _read_header(self) -> tuple[str, ...]:
        for first, last, record in self._records():
            if isinstance(record, str):
                raise InputError(f"{self.name}: {_where(first, last)}: bad header: {record}")
            return tuple(name.strip() for name in record)
        raise InputError(f"{self.name}: no header line (the file is empty)")

    def _resolve_columns(self) -> dict[str, int]:
        header = self.header
        positions: dict[str, list[int]] = {}
        folded: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            positions.setdefault(name, []).append(index)
            folded.setdefault(name.casefold(), []).append(index)

        columns: dict[str, int] = {}
        split = f"split at {_DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}"
        for field in INPUT_FIELDS:
            wanted = self.mapping.get(field, field)
            found = positions.get(wanted) or folded.get(wanted.casefold(), [])
            if len(found) > 1:
                raise InputError(
                    f"{self.name}: the header has {len(found)} columns named {wanted!r}"
                )
            if found:
                columns[field] = found[0]
            elif field in self.mapping:
                raise InputError(
                    f"{self.name}: --map {field}={wanted}: no column {wanted!r} in the header"
                    f" (columns, {split}: {', '.join(header)}); pass --delimiter if the file"
                    " uses another one"
                )
        missing = [f for f in REQUIRED_FIELDS if f not in columns]
        if "caseId" not in columns and "caseReference" not in columns:
            missing.insert(0, "caseId")
        if missing:
            hint = " ".join(f"--map {f}=COLUMN" for f in missing)
            also = " (or --map caseReference=COLUMN)" if "caseId" in missing else ""
            raise InputError(
                f"{self.name}: no column for {', '.join(missing)} in the header"
                f" (columns, {split}: {', '.join(header)}); name it so or pass {hint}{also},"
                " or --delimiter if the file uses another one"
            )
        return columns

    # -- records -----------------------------------------------------------------------------

    def _records(self) -> Iterator[_Record]:
        """``(first_line, last_line, fields)`` per non-blank record, or a problem text."""
        while (record := self._next_record()) is not None:
            yield record

    def _next_record(self) -> _Record | None:
        """The next non-blank record, or a problem text (None at the end of the input)."""
        lines = self._lines
        while True:
            lines.begin()
            plain = lines.take_unquoted(self._field_limit)
            if plain is not None:  # the common line: no quoting, split here as csv would
                fields = plain[1].split(self.delimiter)
                if len(fields) > 1 or fields[0].strip():
                    return plain[0], plain[0], fields
                continue  # a blank line
            try:
                fields = next(self._csv)
            except StopIteration:
                return None
            except _Undecodable as bad:
                if not lines.taken:
                    return bad.lineno, bad.lineno, bad.reason
                first = lines.first
                lines.rewind()
                return (
                    first,
                    first,
                    (
                        "unbalanced quote: the quoted field opened on this line runs into"
                        f" line {bad.lineno}, which is {bad.reason.partition(' (')[0]}"
                    ),
                )
            except _TooLong:
                first = lines.first
                lines.rewind()
                return (
                    first,
                    first,
                    (
                        "unbalanced quote: the quoted field opened on this line does not close"
                        f" within {MAX_RECORD_LINES} lines / {MAX_RECORD_BYTES // 1024} KiB"
                    ),
                )
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
                    return first, first, reason
                lines.rewind()
                where = "the end of the file" if eof else f"line {last}, where the quoting breaks"
                return (
                    first,
                    first,
                    f"unbalanced quote: the quoted field opened on this line runs on to {where}",
                )
            first, last = lines.first, lines.last
            if not fields or (first == last and len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            return first, last, fields

    def __iter__(self) -> CsvItems:
        """The items, one by one; to the pipeline also blocks of rows as columns
        (:class:`~debitura_async._input_columns.CsvItems`)."""
        if self._started:
            raise RuntimeError("an input reader can be iterated once")
        self._started = True
        return CsvItems(self._units())

    def _units(self) -> Iterator[Unit]:
        """The items, a record at a time, or a block of plain lines at a time (as columns when
        every line makes a plain row, see :func:`block_columns`)."""
        width = len(self.header)
        columns = self.columns
        add = self.lines.add
        shaper = self._shaper
        lines = self._lines
        take_unquoted = lines.take_unquoted
        delimiter, field_limit = self.delimiter, self._field_limit
        # Blocks of plain lines at once, when each line makes a plain row dict (no reference to
        # resolve, no zone to read dates in, no type to read as a number).
        blocks = not shaper.needed and "type" not in columns and width > 1
        while True:
            # Plain lines first (no quoting: split here); the rest as _next_record says.
            lines.begin()
            if blocks:
                block = lines.take_block(field_limit)
                if block is not None:
                    first, text = block
                    chunk = block_columns(text, width, columns, delimiter)
                    if chunk is not None:
                        lines.end_block(len(chunk))
                        self.lines.add_run(first, len(chunk))
                        yield chunk
                    else:
                        texts = block_lines(text)
                        lines.end_block(len(texts))
                        items = self._block_items(first, texts)
                        if items:
                            yield items
                    continue
            plain = take_unquoted(field_limit)
            record: list[str] | str
            if plain is not None:
                first = last = plain[0]
                record = plain[1].split(delimiter)
                if len(record) == 1 and not record[0].strip():
                    continue  # a blank line
            else:
                found = self._next_record()
                if found is None:
                    return
                first, last, record = found
            add(first, last)
            if isinstance(record, str):
                yield [InvalidRow((f"{_where(first, last)}: {record}",))]
            elif len(record) != width:
                yield [
                    InvalidRow(
                        (f"{_where(first, last)}: expected {width} columns, found {len(record)}",)
                    )
                ]
            elif shaper.needed:
                yield [shaper.shape(_row_from_cells(record, columns), _where(first, last))]
            else:
                yield [_row_from_cells(record, columns)]

    def _block_items(self, first: int, texts: list[str]) -> list[Item]:
        """The items of a block of plain lines that :func:`block_columns` did not take (a
        blank line, a wrong column count, an empty cell), line by line, as :meth:`_units`
        reads them."""
        width = len(self.header)
        items: list[Item] = []
        add = self.lines.add
        delimiter = self.delimiter
        for lineno, text in enumerate(texts, first):
            record = text.split(delimiter)
            if len(record) == 1 and not record[0].strip():
                continue  # a blank line
            add(lineno, lineno)
            if len(record) != width:
                items.append(
                    InvalidRow((f"line {lineno}: expected {width} columns, found {len(record)}",))
                )
            else:
                items.append(_row_from_cells(record, self.columns))
        return items


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


def open_reader(
    path: Source,
    input_format: InputFormat,
    mapping: Mapping[str, str] | None = None,
    options: InputOptions | None = None,
    *,
    stdin: IO[bytes] | None = None,
) -> CsvReader | JsonlReader:
    """A reader of ``path`` (raises :class:`InputError` when it cannot be read at all).

    ``path`` ``"-"`` reads ``stdin`` (default: ``sys.stdin.buffer``), which is left open.
    """
    source: Source = path
    name = None
    if isinstance(path, str) and path == "-":
        source = stdin if stdin is not None else sys.stdin.buffer
        name = STDIN_NAME
    if input_format == "csv":
        return CsvReader(source, mapping, options, name=name)
    return JsonlReader(source, mapping, options, name=name)
