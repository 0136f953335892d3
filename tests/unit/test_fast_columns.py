"""The CSV reader's columnar hand-off changes nothing but the speed.

* :func:`block_columns` splits a block of plain lines as splitting it line by line does (or
  declines, when a line is blank, has another number of cells, or an empty cell);
* :func:`encode_columns` gives, for rows given as columns, the verdict of
  :func:`wires_of_chunk` on the row dicts the reader yields for them, and the very bytes
  ``encode_group`` makes of its wire dicts (which ``test_fast_chunk.py`` ties to the per-row
  and the slow paths);
* :class:`CsvItems` hands out each item once and in order, however ``take`` and ``next`` take
  turns, and raises an input error after the items read before it;
* an ingestion reading a CSV reader (the columnar path) and one reading the same items one by
  one make the same batches (positions, keys, Idempotency-Keys, hence bodies) and the same
  rejections;
* the CLI's watch over the first rows (:func:`watch_input`) keeps a reader's columns, and hands
  out what it hands out of any iterator, stopping at the same row.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from debitura_async import PollPolicy
from debitura_async._batching import encode_group
from debitura_async._fast_chunk import wires_of_chunk
from debitura_async._fast_columns import encode_columns
from debitura_async._input import CsvReader
from debitura_async._input_columns import ColumnChunk, CsvItems, Unit, block_columns
from debitura_async._input_stop import FailureWatch, UniformFailureError, row_check, watch_input
from debitura_async.models import InvalidRow

from .pipeline._fake import MemoryDebitura
from .test_fast_chunk import DATE_TEXTS, GOOD_IDS
from .test_fast_mapping import LATEST, NOW, SKEW

DELIMITERS = st.sampled_from([",", ";", "\t", "|"])
# No quote, NUL or CR: a block never holds one. Spaces, odd whitespace and escapes do occur.
CELL_CHARS = st.sampled_from(list("ab1- \t\x0b\x85\u2028\\\x01ø;,|"))


def _plain_json(cell: str) -> bool:
    return cell.isascii() and orjson.dumps(cell) == b'"' + cell.encode() + b'"'


@st.composite
def blocks(draw: st.DrawFn) -> tuple[str, int, dict[str, int], str]:
    """A block's text, its width, the columns of the fields and the delimiter."""
    delimiter = draw(DELIMITERS)
    width = draw(st.integers(2, 5))
    fields = ["caseId", "description"]
    fields += draw(st.lists(st.sampled_from(["eventDate", "externalRef"]), unique=True))
    fields = fields[:width]
    if "description" not in fields:
        fields[-1] = "description"
    indexes = draw(st.permutations(range(width)))[: len(fields)]
    order = ["caseId", "description", "eventDate", "externalRef"]
    columns = dict(sorted(zip(fields, indexes, strict=True), key=lambda p: order.index(p[0])))
    cell = st.text(CELL_CHARS.filter(lambda c: c != delimiter), min_size=1, max_size=4)
    clean = draw(st.booleans())  # every line makes a row (spaces at the edges aside)
    if clean:
        cell = st.tuples(cell, cell).map(lambda pair: f"{pair[0]}a{pair[1]}")
    lines = []
    for _ in range(draw(st.integers(1, 25))):
        cells = [draw(cell) for _ in range(width)]
        odd = 99 if clean else draw(st.integers(0, 12))
        if odd == 0:
            cells = cells[: draw(st.integers(1, width - 1))]
        elif odd == 1:
            cells.append(draw(cell))
        elif odd == 2:
            cells = [draw(st.sampled_from(["", " ", "\t"]))]
        elif odd == 3:
            cells[draw(st.integers(0, width - 1))] = draw(st.sampled_from(["", " "]))
        lines.append(delimiter.join(cells))
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    return text, width, columns, delimiter


@settings(max_examples=1500, deadline=None)
@given(block=blocks())
def test_a_block_is_split_as_line_by_line(block: tuple[str, int, dict[str, int], str]) -> None:
    text, width, columns, delimiter = block
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    chunk = block_columns(text, width, columns, delimiter)
    records = [line.split(delimiter) for line in lines]
    expected: dict[str, list[str]] | None = None
    if all(len(r) == width for r in records):
        expected = {}
        for field, index in columns.items():
            cells = [r[index] if field == "description" else r[index].strip() for r in records]
            if field != "description" and "" in cells:
                expected = None
                break
            expected[field] = cells
    event("columns" if expected is not None else "declined")
    if expected is None:
        assert chunk is None
        return
    assert chunk is not None
    assert chunk.case_ids == expected["caseId"]
    assert chunk.descriptions == expected["description"]
    assert chunk.event_dates == expected.get("eventDate")
    assert chunk.external_refs == expected.get("externalRef")
    assert chunk.ascii == text.isascii()
    assert chunk.plain == all(_plain_json(c) for r in records for c in r)
    assert chunk.rows() == [{f: expected[f][i] for f in columns} for i in range(len(lines))]


def _stripped(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.filter(lambda v: v and v == v.strip())


ODD_IDS = st.sampled_from(["x", "{123e4567-e89b-12d3-a456-426614174000}"]) | st.uuids().map(
    lambda u: str(u).upper()
)
DESCRIPTIONS = st.text(min_size=1, max_size=12) | st.sampled_from(
    [" ", "\t\u2028", "x" * 10_000, "x" * 10_001, "lone \ud800", 'say "hi"', "back\\slash"]
)
ODD_DATES = st.sampled_from(
    [
        "2026-02-01T09:30:00",
        "2026-02-01T10:30:00+01:00",
        "2026-02-01T09:30:00+00:00",
        "2026-02-01 09:30:00Z",
        "2026-02-01T09:30:00.500Z",
        "2099-01-01T00:00:00Z",
        "nope",
    ]
)
REFS = st.text(min_size=1, max_size=8) | st.sampled_from(["lone \udfff", "a\\b"])


ASCII_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'),
    min_size=1,
    max_size=12,
)
"""Cells that are JSON as they stand (plain)."""


@st.composite
def column_chunks(draw: st.DrawFn) -> ColumnChunk:
    """Columns as a block makes them (stripped, non-empty cells but descriptions), mostly
    plainly valid (half of them plain ASCII), with now and then an odd cell; the flags true,
    or left unknown."""
    count = draw(st.integers(0, 12))
    odd = draw(st.integers(0, 3)) == 0
    text = ASCII_TEXT if draw(st.booleans()) else st.text(min_size=1, max_size=12)

    def column(
        good: st.SearchStrategy[str], bad: st.SearchStrategy[str], *, stripped: bool = True
    ) -> list[str]:
        if stripped:
            good, bad = _stripped(good), _stripped(bad)
        shared = draw(good)  # the rows of a chunk often share a value
        return [
            draw(bad if odd and draw(st.integers(0, 5)) == 0 else st.just(shared) | good)
            for _ in range(count)
        ]

    dates = refs = None
    if draw(st.booleans()):
        dates = column(DATE_TEXTS, ODD_DATES)
    if draw(st.booleans()):
        refs = column(text, REFS)
    case_ids = column(GOOD_IDS, ODD_IDS)
    descriptions = column(text.filter(str.strip), DESCRIPTIONS, stripped=False)
    cells = [*case_ids, *descriptions, *(dates or ()), *(refs or ())]
    ascii = all(c.isascii() for c in cells) and draw(st.integers(0, 3)) > 0
    plain = ascii and all(_plain_json(c) for c in cells) and draw(st.integers(0, 3)) > 0
    return ColumnChunk(case_ids, descriptions, dates, refs, ascii=ascii, plain=plain)


@settings(max_examples=1500, deadline=None)
@given(chunk=column_chunks())
def test_columns_encode_as_the_chunk_path_encodes_their_rows(chunk: ColumnChunk) -> None:
    known: set[str] = set()
    wires = wires_of_chunk(chunk.rows(), LATEST, set())
    encoded = encode_columns(chunk, LATEST, known)
    event("vouched" if wires else "empty" if wires == [] else "row by row")
    event(f"plain: {chunk.plain}")
    if wires is None:
        assert encoded is None
    else:
        assert encoded == encode_group(wires)
    assert encode_columns(chunk, LATEST, known) == encoded  # with the case ids now known


# -- the reader's iterator -------------------------------------------------------------------


def _chunk_of(values: list[int]) -> ColumnChunk:
    ids = [str(uuid.UUID(int=v)) for v in values]
    return ColumnChunk(ids, [f"d{v}" for v in values], None, None)


def _as_items(taken: ColumnChunk | list[Any]) -> list[Any]:
    return taken.rows() if isinstance(taken, ColumnChunk) else list(taken)


UNITS = st.lists(
    st.tuples(st.booleans(), st.integers(1, 7)), max_size=8
)  # (as columns?, how many items)


@settings(max_examples=500, deadline=None)
@given(
    shape=UNITS,
    ops=st.lists(st.tuples(st.integers(0, 9), st.none() | st.integers(1, 9)), max_size=30),
)
def test_take_and_next_hand_out_every_item_once_in_order(
    shape: list[tuple[bool, int]], ops: list[tuple[int, int | None]]
) -> None:
    """ops: ``(0, _)`` next(), ``(k, m)`` take(k, item_limit=m)."""
    units: list[Unit] = []
    expected: list[Any] = []
    value = 1
    for columnar, count in shape:
        values = list(range(value, value + count))
        value += count
        unit: Unit = _chunk_of(values) if columnar else [_item(v) for v in values]
        units.append(unit)
        expected += _as_items(unit)
    items = CsvItems(iter(units))
    got: list[Any] = []
    for op, item_limit in ops:
        if op == 0:
            item = next(items, None)  # None: at the end (no item is None)
            if item is not None:
                got.append(item)
        else:
            taken = items.take(op, item_limit=item_limit)
            assert len(taken) <= op
            if isinstance(taken, ColumnChunk):
                assert len(taken) > 0
            elif item_limit is not None:
                assert len(taken) <= item_limit
            got += _as_items(taken)
    got += list(items)
    assert got == expected
    assert items.take(3) == []


def _item(n: int) -> InvalidRow:
    return InvalidRow((f"line {n}: odd",))


def test_an_input_error_comes_after_the_items_read_before_it() -> None:
    a, b, c = _item(1), _item(2), _item(3)

    def units() -> Iterator[Unit]:
        yield [a, b]
        yield [c]
        raise ValueError("the disk went away")

    items = CsvItems(units())
    assert items.take(10) == [a, b, c]
    with pytest.raises(ValueError, match="the disk went away"):
        items.take(10)
    assert items.take(10) == []

    items = CsvItems(units())
    assert [next(items), next(items), next(items)] == [a, b, c]
    with pytest.raises(ValueError, match="the disk went away"):
        next(items)
    assert list(items) == []

    items = CsvItems(units())
    assert next(items) == a
    assert items.take(10) == [b, c]
    with pytest.raises(ValueError, match="the disk went away"):
        list(items)


def test_iterating_a_reader_yields_row_dicts() -> None:
    case = "123e4567-e89b-12d3-a456-426614174000"
    text = "caseId,description\n" + "".join(f"{case},n{i}\n" for i in range(3000))
    with CsvReader(io.BytesIO(text.encode())) as reader:
        items = iter(reader)
        assert isinstance(items, CsvItems)
        first = next(items)
        rest = list(items)
    assert first == {"caseId": case, "description": "n0"}
    assert len(rest) == 2999
    assert rest[-1] == {"caseId": case, "description": "n2999"}
    assert all(type(r) is dict for r in rest)


# -- through the pipeline --------------------------------------------------------------------

POLICY = PollPolicy.fixed(0.002)
CASES = [str(uuid.UUID(int=i + 1)) for i in range(5)]


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    """Long, mostly plain CSV files (several blocks), with now and then a bad row: a blank
    line, a missing cell, a bad case id, a quoted line, a date in the future, a description
    needing JSON escapes."""
    header = draw(
        st.sampled_from(["caseId,description,eventDate,externalRef", "description;caseId"])
    )
    delimiter = ";" if ";" in header else ","
    lines = [header]
    for i in range(draw(st.integers(0, 3000))):
        case = CASES[i % len(CASES)]
        cells = {
            "caseId": case,
            "description": f"note {i}",
            "eventDate": "2026-02-01T09:30:00Z",
            "externalRef": f"R{i}",
        }
        if draw(st.integers(0, 400)) == 0:
            odd = draw(st.integers(0, 6))
            if odd == 0:
                lines.append("")
                continue
            if odd == 1:
                cells["caseId"] = "not-a-case"
            elif odd == 2:
                cells["description"] = '"quoted, with a comma"'
            elif odd == 3:
                cells["eventDate"] = "2099-01-01T00:00:00Z"
            elif odd == 4:
                cells["description"] = "tab\there \\ and ø"
            elif odd == 5:
                cells["externalRef"] = ""
            else:
                cells["description"] = " "
        names = header.split(delimiter)
        lines.append(delimiter.join(cells[n] for n in names))
    return "\n".join(lines) + "\n"


async def _ingest(text: str, columnar: bool) -> list[Any]:
    server = MemoryDebitura()
    views: list[Any] = []
    async with server.client() as client:
        with CsvReader(io.BytesIO(text.encode())) as reader:
            source: Any = reader if columnar else (item for item in list(reader))
            async with client.ingest(source, run_id="r", batch_size=300, polling=POLICY) as res:
                async for r in res:
                    views.append(
                        (
                            r.first_position,
                            r.positions,
                            r.row_keys,
                            r.idempotency_key,
                            r.outcome,
                            r.rejected_rows,
                        )
                    )
            summary = res.summary
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    return sorted(views, key=repr)


@pytest.mark.anyio
@settings(max_examples=25, deadline=None)
@given(text=csv_files())
async def test_an_ingestion_of_a_reader_is_one_of_its_items_read_one_by_one(text: str) -> None:
    assert await _ingest(text, columnar=True) == await _ingest(text, columnar=False)


# -- the CLI's watch over the first rows ---------------------------------------------------


@st.composite
def watched_files(draw: st.DrawFn) -> str:
    """Files whose first rows fail alike (naive dates) or not, then good rows, in blocks."""
    rows = draw(st.integers(0, 2500))
    bad = draw(st.integers(0, min(rows, 12)))
    lines = ["caseId,description,eventDate,externalRef"]
    for i in range(rows):
        date = "2026-02-01 09:30:00" if i < bad else "2026-02-01T09:30:00Z"
        case = CASES[i % len(CASES)] if draw(st.integers(0, 300)) else "nope"
        lines.append(f"{case},note {i},{date},R{i}")
    return "\n".join(lines) + "\n"


def _watched_read(text: str, *, columnar: bool) -> tuple[list[Any], str | None]:
    got: list[Any] = []
    error = None
    with CsvReader(io.BytesIO(text.encode())) as reader:
        source: Any = reader if columnar else iter(list(reader))
        check = row_check(now=NOW, skew=SKEW)
        items = watch_input(source, check, FailureWatch(threshold=5, min_rows=2), reader.lines)
        try:
            if columnar:
                assert isinstance(items, CsvItems)
                while taken := items.take(700, item_limit=256):
                    got += _as_items(taken)
            else:
                got.extend(items)
        except UniformFailureError as exc:
            error = str(exc)
    return got, error


@settings(max_examples=60, deadline=None)
@given(text=watched_files())
def test_a_watched_reader_hands_out_what_a_watched_iterator_does(text: str) -> None:
    columnar = _watched_read(text, columnar=True)
    event("stopped" if columnar[1] else "read through")
    assert columnar == _watched_read(text, columnar=False)
