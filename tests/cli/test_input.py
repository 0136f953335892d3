"""The CSV and JSONL readers (no event loop): BOM, blank lines, quoted multi-line fields, bad
lines with their line numbers, --map, and the position -> line map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from debitura_async._input import (
    MAX_RECORD_LINES,
    CsvReader,
    InputError,
    JsonlReader,
    LineMap,
    detect_format,
    open_reader,
    parse_mapping,
)
from debitura_async.models import InvalidRow

CASE = "123e4567-e89b-12d3-a456-426614174000"


def read(path: Path, mapping: dict[str, str] | None = None) -> list[tuple[int, int, Any]]:
    """(first line, last line, item) for every item."""
    with open_reader(path, detect_format(path), mapping) as reader:
        items = list(reader)
        return [(*reader.lines.span(i, i), item) for i, item in enumerate(items)]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def problems(item: object) -> str:
    assert isinstance(item, InvalidRow), item
    return " | ".join(item.problems)


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_api_columns_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbfcaseId,description,eventDate,externalRef,type\r\n"
        + f"{CASE},Called,2026-01-01T10:00:00Z,R1,0\r\n".encode()
        + b"\r\n"
        + b"   \r\n"
        + f"{CASE},Wrote,, ,\r\n".encode()
    )
    rows = read(write(tmp_path, "in.csv", data))
    assert rows == [
        (
            2,
            2,
            {
                "caseId": CASE,
                "description": "Called",
                "eventDate": "2026-01-01T10:00:00Z",
                "externalRef": "R1",
                "type": 0,
            },
        ),
        # blank and whitespace-only lines are skipped; empty optional cells are absent
        (5, 5, {"caseId": CASE, "description": "Wrote"}),
    ]


def test_csv_quoted_multiline_fields_keep_line_numbers(tmp_path: Path) -> None:
    data = (
        b"caseId,description,externalRef\n"
        + f'{CASE},"first\nsecond, with comma\n""quoted""",R1\n'.encode()
        + f"{CASE},plain,R2\n".encode()
        + f'{CASE},"a\n\nb",R3\n'.encode()
        + f"{CASE},after,R4\n".encode()
    )
    rows = read(write(tmp_path, "in.csv", data))
    assert [(first, last) for first, last, _ in rows] == [(2, 4), (5, 5), (6, 8), (9, 9)]
    assert rows[0][2]["description"] == 'first\nsecond, with comma\n"quoted"'
    assert rows[2][2]["description"] == "a\n\nb"


def test_csv_mapping_and_ignored_columns(tmp_path: Path) -> None:
    data = b"NoteId,CaseGuid,Author,NoteText,Kind\n" + f"N1,{CASE},Ann,Hello,0\n".encode()
    mapping = parse_mapping(
        ["caseId=CaseGuid", "description=NoteText", "externalRef=NoteId", "type=Kind"]
    )
    path = write(tmp_path, "crm.csv", data)
    with CsvReader(path, mapping) as reader:
        assert reader.ignored_columns == ("Author",)
        assert list(reader) == [
            {"caseId": CASE, "description": "Hello", "externalRef": "N1", "type": 0}
        ]


def test_csv_header_matches_api_names_case_insensitively(tmp_path: Path) -> None:
    data = b"CaseId,Description\n" + f"{CASE},Hi\n".encode()
    assert read(write(tmp_path, "in.csv", data))[0][2] == {"caseId": CASE, "description": "Hi"}


def test_csv_type_cell_that_is_not_an_integer_is_passed_on_for_validation(
    tmp_path: Path,
) -> None:
    data = b"caseId,description,type\n" + f"{CASE},Hi,note\n{CASE},Hi, 0 \n".encode()
    rows = read(write(tmp_path, "in.csv", data))
    assert rows[0][2]["type"] == "note"
    assert rows[1][2]["type"] == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'"unbalanced,Hi', "line 3: unbalanced quote: the quoted field opened on this line"),
        (b"x,y,z", "line 3: expected 2 columns, found 3"),
        (b"only-one", "line 3: expected 2 columns, found 1"),
        (b"\xff\xfebad,bytes", "line 3: not valid UTF-8 (byte 0xff at column 1)"),
        (b'"a"b,Hi', "line 3: malformed CSV: text after a closing quote"),
    ],
)
def test_csv_bad_line_is_reported_and_reading_goes_on(
    tmp_path: Path, line: bytes, expected: str
) -> None:
    data = (
        b"caseId,description\n"
        + f"{CASE},before\n".encode()
        + line
        + b"\n"
        + f"{CASE},after\n".encode()
        + f'{CASE},"still ""fine"""\n'.encode()
    )
    rows = read(write(tmp_path, "in.csv", data))
    assert len(rows) == 4
    assert rows[0][2] == {"caseId": CASE, "description": "before"}
    assert problems(rows[1][2]).startswith(expected), problems(rows[1][2])
    assert rows[1][:2] == (3, 3)
    assert rows[2] == (4, 4, {"caseId": CASE, "description": "after"})
    assert rows[3] == (5, 5, {"caseId": CASE, "description": 'still "fine"'})


def test_csv_unbalanced_quote_at_the_end_of_the_file(tmp_path: Path) -> None:
    data = b"caseId,description\n" + f'{CASE},"never closed\n{CASE},next\n'.encode()
    rows = read(write(tmp_path, "in.csv", data))
    assert problems(rows[0][2]).startswith("line 2: unbalanced quote")
    assert rows[1] == (3, 3, {"caseId": CASE, "description": "next"})


def test_csv_unbalanced_quote_is_given_up_after_the_record_limit(tmp_path: Path) -> None:
    body = "".join(f"{CASE},row {i}\n" for i in range(MAX_RECORD_LINES + 5))
    data = b"caseId,description\n" + f'{CASE},"open\n'.encode() + body.encode()
    rows = read(write(tmp_path, "in.csv", data))
    assert f"within {MAX_RECORD_LINES} lines" in problems(rows[0][2])
    assert len(rows) == MAX_RECORD_LINES + 6
    assert rows[1] == (3, 3, {"caseId": CASE, "description": "row 0"})
    assert rows[-1][:2] == (MAX_RECORD_LINES + 7, MAX_RECORD_LINES + 7)


def test_csv_multiline_record_with_wrong_column_count_is_one_bad_record(tmp_path: Path) -> None:
    data = b"caseId,description\n" + f'{CASE},"two\nlines",extra\n{CASE},ok\n'.encode()
    rows = read(write(tmp_path, "in.csv", data))
    assert problems(rows[0][2]) == "lines 2-3: expected 2 columns, found 3"
    assert rows[1] == (4, 4, {"caseId": CASE, "description": "ok"})


def test_csv_header_problems_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no header line"):
        CsvReader(write(tmp_path, "empty.csv", b"\n\n"))
    with pytest.raises(InputError, match=r"no column for caseId.*--map caseId=COLUMN"):
        CsvReader(write(tmp_path, "a.csv", b"id,description\n"))
    with pytest.raises(InputError, match="no column 'Guid' in the header"):
        CsvReader(write(tmp_path, "b.csv", b"caseId,description\n"), {"caseId": "Guid"})
    with pytest.raises(InputError, match="2 columns named 'caseId'"):
        CsvReader(write(tmp_path, "c.csv", b"caseId,caseId,description\n"))
    with pytest.raises(InputError, match="cannot read"):
        CsvReader(tmp_path / "missing.csv")


def test_parse_mapping_refuses_bad_specs() -> None:
    assert parse_mapping([]) == {}
    with pytest.raises(InputError, match="API_FIELD=COLUMN"):
        parse_mapping(["caseId"])
    with pytest.raises(InputError, match="'case' is not an API field"):
        parse_mapping(["case=CaseGuid"])
    with pytest.raises(InputError, match="mapped twice"):
        parse_mapping(["caseId=A", "caseId=B"])


def test_detect_format() -> None:
    assert detect_format("x.CSV") == "csv"
    assert detect_format("x.jsonl") == "jsonl"
    assert detect_format("x.ndjson") == "jsonl"
    with pytest.raises(InputError, match="--format"):
        detect_format("x.txt")


def test_reader_streams_and_iterates_once(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", b"caseId,description\n" + f"{CASE},a\n".encode() * 3)
    with CsvReader(path) as reader:
        items = iter(reader)
        next(items)
        assert 0 < reader.bytes_read <= reader.size
        with pytest.raises(RuntimeError, match="once"):
            iter(reader)
        assert len(list(items)) == 2
        assert reader.bytes_read == reader.size


# -- JSONL ----------------------------------------------------------------------------------------


def test_jsonl_rows_blank_lines_bom_nulls_and_mapping(tmp_path: Path) -> None:
    data = (
        b'\xef\xbb\xbf{"caseId": "' + CASE.encode() + b'", "description": "a", "eventDate": null}\n'
        b"\n"
        b'{"Guid": "' + CASE.encode() + b'", "text": "b", "other": 1}\r\n'
    )
    path = write(tmp_path, "in.jsonl", data)
    with JsonlReader(path) as reader:
        first = list(reader)
    assert first[0] == {"caseId": CASE, "description": "a"}
    with JsonlReader(path, {"caseId": "Guid", "description": "text"}) as reader:
        items = list(reader)
        assert reader.lines.span(1, 1) == (3, 3)
        assert "other" in reader.ignored_keys
    assert items[1] == {"caseId": CASE, "description": "b"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"caseId": ', "line 2: broken JSON:"),
        (b"[1, 2]", "line 2: expected a JSON object, found an array"),
        (b'"text"', "line 2: expected a JSON object, found a JSON string"),
        (b'{"description": "caf\xe9"}', "line 2: not valid UTF-8"),
    ],
)
def test_jsonl_bad_lines(tmp_path: Path, line: bytes, expected: str) -> None:
    good = b'{"caseId": "' + CASE.encode() + b'", "description": "ok"}'
    rows = read(write(tmp_path, "in.jsonl", good + b"\n" + line + b"\n" + good + b"\n"))
    assert [r[:2] for r in rows] == [(1, 1), (2, 2), (3, 3)]
    assert problems(rows[1][2]).startswith(expected), problems(rows[1][2])
    assert "line 1 column" not in problems(rows[1][2])
    assert rows[2][2] == {"caseId": CASE, "description": "ok"}


# -- the line map ---------------------------------------------------------------------------------


def test_line_map_stores_only_irregularities() -> None:
    lines = LineMap()
    line = 2  # after a header
    for i in range(100_000):
        first = line
        last = line + (2 if i % 10_000 == 5 else 0)  # a few three-line records
        assert lines.add(first, last) == i
        line = last + 1 + (1 if i % 25_000 == 7 else 0)  # a few blank lines
    assert len(lines) == 100_000
    assert lines.irregularities < 40
    assert lines.first_line(0) == 2
    assert lines.span(5, 5) == (7, 9)
    assert lines.first_line(6) == 10
    assert lines.first_line(8) == 13  # after the blank line following position 7
    with pytest.raises(IndexError):
        lines.first_line(100_000)
