"""The CSV reader's fast path (plain lines split without the csv module) reads what the csv
module reads: the same items, the same rejections and messages, the same line numbers.

The reference is the same reader with the fast path turned off (every line goes through
``csv.reader``, as before the fast path existed).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async._input import CsvReader, InputError
from debitura_async._input_lines import PhysicalLines, line_count

HEADERS = st.sampled_from(
    [
        "caseId,description,eventDate,externalRef",
        "caseId;description;externalRef;type",
        "description\tcaseId",
        "externalRef|caseId|description|eventDate",
    ]
)
CELL_CHARS = st.sampled_from(list('ab 1-"\r\x00ø,;\t|'))
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", ""])


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    header = draw(HEADERS)
    delimiter = next(c for c in ",;\t|" if c in header)
    lines = [header + "\n"]
    for _ in range(draw(st.integers(0, 8))):
        cells = draw(st.lists(st.text(CELL_CHARS, max_size=6), min_size=0, max_size=5))
        lines.append(delimiter.join(cells) + draw(LINE_ENDS))
    return "".join(lines)


PLAIN_CHARS = st.sampled_from(list("ab 1-ø\t"))


@st.composite
def plain_csv_texts(draw: st.DrawFn) -> str:
    """Mostly plain files (what the block path takes): many lines, now and then a blank line, an
    empty or missing cell, a quote, a stray CR, a CRLF end, an undecodable byte."""
    header = draw(HEADERS)
    delimiter = next(c for c in ",;\t|" if c in header)
    width = header.count(delimiter) + 1
    lines = [header + "\n"]
    for _ in range(draw(st.integers(0, 40))):
        cells = [draw(st.text(PLAIN_CHARS, min_size=1, max_size=5)) for _ in range(width)]
        odd = draw(st.integers(0, 15))
        if odd == 0:
            cells = cells[:-1]
        elif odd == 1:
            cells[0] = " "
        elif odd == 2:
            cells[-1] = '"q"'
        elif odd == 3:
            cells = [""]
        elif odd == 4:
            cells[0] += "\r"
        elif odd == 5:
            cells[0] += "\udcff"  # encoded with surrogatepass: not valid UTF-8
        end = "\r\n" if odd == 6 else "\n"
        lines.append(delimiter.join(cells) + end)
    if draw(st.booleans()):
        lines[-1] = lines[-1].rstrip("\r\n")
    return "".join(lines)


def _read(text: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(PhysicalLines, "take_unquoted", lambda self, limit: None)
            patch.setattr(PhysicalLines, "take_block", lambda self, limit: None)
        try:
            with CsvReader(io.BytesIO(text.encode("utf-8", "surrogatepass"))) as reader:
                items = list(reader)
                spans = [reader.lines.span(i, i) for i in range(len(items))]
        except InputError as exc:
            return {"error": str(exc)}
    return {"items": items, "spans": spans, "header": reader.header}


@settings(max_examples=400, deadline=None)
@given(text=csv_texts() | plain_csv_texts())
def test_the_fast_path_reads_what_the_csv_module_reads(text: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _read(text, fast=True, monkeypatch=monkeypatch) == _read(
            text, fast=False, monkeypatch=monkeypatch
        )


def test_plain_lines_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "caseId,description,externalRef\n"
        "123e4567-e89b-12d3-a456-426614174000,Called.,N1\r\n"
        "\n"
        '123e4567-e89b-12d3-a456-426614174000,"Quoted, with a comma",N2\n'
        "123e4567-e89b-12d3-a456-426614174000, spaced ,\n"
    )
    calls: list[tuple[int, str] | None] = []
    original = PhysicalLines.take_unquoted

    def counting(self: PhysicalLines, limit: int) -> tuple[int, str] | None:
        result = original(self, limit)
        calls.append(result)
        return result

    monkeypatch.setattr(PhysicalLines, "take_unquoted", counting)
    monkeypatch.setattr(PhysicalLines, "take_block", lambda self, limit: None)
    with CsvReader(io.BytesIO(text.encode())) as reader:
        items = list(reader)
    assert items == [
        {
            "caseId": "123e4567-e89b-12d3-a456-426614174000",
            "description": "Called.",
            "externalRef": "N1",
        },
        {
            "caseId": "123e4567-e89b-12d3-a456-426614174000",
            "description": "Quoted, with a comma",
            "externalRef": "N2",
        },
        {"caseId": "123e4567-e89b-12d3-a456-426614174000", "description": " spaced "},
    ]
    assert [reader.lines.first_line(i) for i in range(3)] == [2, 4, 5]
    taken = [c for c in calls if c is not None]
    # The two plain rows and the blank line; not the quoted row, nor the header (the delimiter
    # sniffing peeked at it, so the csv module reads it).
    assert [c[0] for c in taken] == [2, 3, 5]


def test_plain_blocks_are_split_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    case = "123e4567-e89b-12d3-a456-426614174000"
    lines = [f"{case},note {i},2026-02-01T09:30:00Z,N{i}\r\n" for i in range(5000)]
    text = "caseId,description,eventDate,externalRef\n" + "".join(lines) + f"{case},last,,\n"
    blocks: list[int] = []
    original = PhysicalLines.take_block

    def counting(self: PhysicalLines, limit: int) -> tuple[int, str] | None:
        result = original(self, limit)
        if result is not None:
            blocks.append(line_count(result[1]))
        return result

    monkeypatch.setattr(PhysicalLines, "take_block", counting)
    with CsvReader(io.BytesIO(text.encode())) as reader:
        items = list(reader)
        assert reader.bytes_read == len(text)
        spans = [reader.lines.span(i, i) for i in range(len(items))]
    assert len(items) == 5001
    assert items[4999] == {
        "caseId": case,
        "description": "note 4999",
        "eventDate": "2026-02-01T09:30:00Z",
        "externalRef": "N4999",
    }
    assert items[5000] == {"caseId": case, "description": "last"}
    assert spans == [(i + 2, i + 2) for i in range(5001)]
    assert sum(blocks) == 5001  # every line went in a block
    assert len(blocks) < 20
