"""The input options, one at a time: encodings and BOMs, delimiter sniffing, naive date-times in
an assumed zone (DST gaps and folds), UUID forms, partner references, and the early stop."""

from __future__ import annotations

import codecs
import csv
import doctest
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import (
    _input_dates,
    _input_options,
    _input_rows,
    _input_sniff,
    _input_stop,
    _wire,
    models,
)
from debitura_async._input import (
    CsvReader,
    InputEncodingError,
    InputError,
    InputOptionError,
    InputOptions,
    JsonlReader,
    detect_format,
    name_column,
    open_reader,
    parse_delimiter,
    parse_mapping,
)
from debitura_async._input_sniff import sniff_delimiter
from debitura_async._input_stop import FailureWatch, UniformFailureError, signature
from debitura_async.models import IngestionJobRow, InvalidRow, UnresolvedCaseRow, parse_uuid

CASE = "123e4567-e89b-12d3-a456-426614174000"


def read(data: bytes, mapping: dict[str, str] | None = None, **options: Any) -> list[Any]:
    with CsvReader(io.BytesIO(data), mapping, InputOptions(**options)) as reader:
        return list(reader)


@pytest.mark.parametrize(
    "module", [_input_options, _input_dates, _input_sniff, _input_rows, _input_stop, models]
)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ";;"}, "--delimiter: ';;' is not one character"),
        ({"delimiter": '"'}, "cannot separate fields"),
        ({"delimiter": "\n"}, "cannot separate fields"),
        ({"delimiter": "a"}, "cannot separate fields"),
        ({"encoding": "utf-9"}, "--encoding: 'utf-9' is not a text encoding"),
        ({"encoding": "base64"}, "--encoding: 'base64' is not a text encoding"),
        ({"assume_timezone": "Europe/Copenhagn"}, "did you mean Europe/Copenhagen?"),
        ({"assume_timezone": "../../etc/passwd"}, "is not an IANA time zone name"),
        ({"assume_timezone": ""}, "give a time zone name"),
        ({"dst": "later"}, "--dst: 'later' is not one of rfc5545, reject"),
        ({"delimiter": 59}, "--delimiter: expected a character, got 59"),
        ({"encoding": 1252}, "--encoding: expected an encoding name, got 1252"),
        ({"encoding": ""}, "--encoding: expected an encoding name"),
        ({"assume_timezone": 1}, "give a time zone name"),
        ({"dst": None}, "--dst: None is not one of"),
    ],
)
def test_bad_option_values_are_typed_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputOptionError, match=message) as info:
        InputOptions(**options)
    assert isinstance(info.value, InputError)  # the CLI's "cannot read the input" (exit 2)


def test_delimiter_names() -> None:
    assert [parse_delimiter(v) for v in ("tab", "\\t", "\t", "semicolon", ";", "Pipe")] == [
        "\t",
        "\t",
        "\t",
        ";",
        ";",
        "|",
    ]
    with pytest.raises(InputOptionError):
        parse_delimiter("space")


def test_stdin_needs_a_format_and_reads_the_stream_given() -> None:
    with pytest.raises(InputError, match="standard input; pass --format"):
        detect_format("-")
    stream = io.BytesIO(b'{"caseId": "' + CASE.encode() + b'", "description": "x"}\n')
    with open_reader("-", "jsonl", stdin=stream) as reader:
        assert list(reader) == [{"caseId": CASE, "description": "x"}]
    assert not stream.closed


# -- encodings --------------------------------------------------------------------------------

_TEXT = f'caseId,description\r\n{CASE},Søren Kjær 📞 債務者\r\n{CASE},"two\r\nlines"\r\n'
_EXPECTED = [
    {"caseId": CASE, "description": "Søren Kjær 📞 債務者"},
    {"caseId": CASE, "description": "two\r\nlines"},
]


@pytest.mark.parametrize(
    ("bom", "encoding", "detected"),
    [
        (b"", "utf-8", "utf-8"),
        (codecs.BOM_UTF8, "utf-8", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    ],
)
def test_unicode_encodings_are_told_by_their_bom(bom: bytes, encoding: str, detected: str) -> None:
    data = bom + _TEXT.encode(encoding)
    with CsvReader(io.BytesIO(data)) as reader:
        assert reader.encoding == detected
        assert list(reader) == _EXPECTED
        assert reader.bytes_read == len(data)
    # the same encoding given explicitly, with its BOM or in its generic form
    assert read(data, encoding=encoding) == _EXPECTED
    if bom and encoding != "utf-8":
        assert read(data, encoding=encoding[:6]) == _EXPECTED  # "utf-16" / "utf-32"


def test_an_explicit_encoding_that_the_bom_contradicts_is_refused() -> None:
    data = codecs.BOM_UTF16_LE + _TEXT.encode("utf-16-le")
    with pytest.raises(InputEncodingError, match="UTF-16 LE byte order mark, but the encoding"):
        read(data, encoding="cp1252")


def test_utf16_without_a_bom_names_the_encoding_to_pass() -> None:
    with pytest.raises(InputError, match="looks like UTF-16 without a byte order mark"):
        read(_TEXT.encode("utf-16-le"))
    assert read(_TEXT.encode("utf-16-le"), encoding="utf-16-le") == _EXPECTED


def test_utf16_long_file_across_chunks_and_a_bad_line() -> None:
    rows = [f"{CASE},row {i} {'ø' * (i % 7)}{'🙂' * (i % 3)}" for i in range(6000)]
    rows[4321] = f"{CASE},\udc00 a lone surrogate"
    text = "caseId,description\n" + "\n".join(rows)  # no final line end
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le", errors="surrogatepass")
    items = read(data)
    assert len(items) == 6000
    assert items[4321] == InvalidRow(("line 4323: not valid UTF-16 LE (at character 38)",))
    assert items[5998] == {"caseId": CASE, "description": "row 5998 øøøøøø🙂"}
    assert items[3] == {"caseId": CASE, "description": "row 3 øøø"}


def test_a_file_in_another_encoding_fails_before_any_row(tmp_path: Path) -> None:
    text = "caseId,description\n" + "".join(f"{CASE},Kjær {i}\n" for i in range(50))
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(InputEncodingError) as info:
        CsvReader(path)
    assert str(info.value).startswith(
        f"{path}: 50 lines are not valid UTF-8, the first is line 2 (byte 0xe6 at column 40)"
    )
    assert "pass --encoding cp1252" in str(info.value)
    with CsvReader(path, options=InputOptions(encoding="cp1252")) as reader:
        assert next(iter(reader)) == {"caseId": CASE, "description": "Kjær 0"}
    # without the scan (or from a pipe) each line is a rejected row instead
    with CsvReader(path, options=InputOptions(check_encoding=False)) as reader:
        assert all(isinstance(item, InvalidRow) for item in reader)


def test_a_utf8_file_with_a_few_damaged_lines_is_read(tmp_path: Path) -> None:
    data = (
        f"caseId,description\n{CASE},Kjær\n{CASE},".encode()
        + b"\xe6 broken\n"
        + f"{CASE},bad \xff\n".encode("latin-1")
    )
    items = read(data)
    assert items[0] == {"caseId": CASE, "description": "Kjær"}
    assert items[1] == InvalidRow(("line 3: not valid UTF-8 (byte 0xe6 at column 38)",))
    assert isinstance(items[2], InvalidRow)


# text that every candidate encoding can carry (cp1252 has no emoji), without NUL
_cells = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x2FF, blacklist_characters="\r\n\x00"),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(_cells, _cells), min_size=1, max_size=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "latin-1"]),
    crlf=st.booleans(),
)
def test_round_trip_of_delimiter_and_encoding(
    rows: list[tuple[str, str]], delimiter: str, encoding: str, crlf: bool
) -> None:
    """What csv.writer writes, in any of these encodings and delimiters, reads back the same;
    the delimiter sniffed and a Unicode encoding told by its BOM."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["externalRef", "caseId", "description"])
    for ref, text in rows:
        writer.writerow([ref, CASE, text + "."])
    try:
        data = out.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return  # cp1252 lacks a few of these characters
    given = encoding if encoding in ("cp1252", "latin-1") else None
    with CsvReader(io.BytesIO(data), options=InputOptions(encoding=given)) as reader:
        assert reader.delimiter == delimiter
        items = list(reader)
    expected = []
    for ref, text in rows:
        row = {"caseId": CASE, "description": text + "."}
        if ref.strip():
            row["externalRef"] = ref.strip()
        expected.append(row)
    assert items == expected


# -- delimiters -------------------------------------------------------------------------------


def test_sniffing_prefers_the_delimiter_that_names_the_wanted_columns() -> None:
    wanted = {"caseid", "description", "notat"}
    assert sniff_delimiter("caseId;description;Note, with comma, and more", wanted) == ";"
    assert sniff_delimiter("a,b;c", set()) == ","  # a tie without names: the first candidate
    assert sniff_delimiter("caseId|description", wanted) == "|"
    assert sniff_delimiter("onecolumn", wanted) == ","


def test_excel_sep_line_and_a_given_delimiter() -> None:
    data = f"sep=;\r\ncaseId;description\r\n{CASE};a, b\r\n".encode()
    with CsvReader(io.BytesIO(data)) as reader:
        assert reader.delimiter == ";"
        assert list(reader) == [{"caseId": CASE, "description": "a, b"}]
        assert reader.lines.first_line(0) == 3
    with pytest.raises(InputError, match=r"columns, split at tab: caseId,description"):
        read(f"caseId,description\n{CASE},x\n".encode(), delimiter="\t")


# -- naive date-times -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "text", "expected"),
    [
        ("UTC", "2024-01-01 00:00:00", "2024-01-01T00:00:00Z"),
        ("UTC", "2024-01-01", "2024-01-01T00:00:00Z"),
        ("Europe/Copenhagen", "2024-07-01T12:00:00", "2024-07-01T10:00:00Z"),
        ("Europe/Copenhagen", "2024-03-31 02:30:00", "2024-03-31T01:30:00Z"),  # in the gap
        ("Europe/Copenhagen", "2024-10-27 02:30:00", "2024-10-27T00:30:00Z"),  # first of two
        ("America/New_York", "2024-11-03 01:30:00", "2024-11-03T05:30:00Z"),  # first of two
        ("UTC", "2024-01-01T00:00:00+02:00", "2024-01-01T00:00:00+02:00"),  # has an offset
        ("UTC", "yesterday", "yesterday"),  # left to validation
    ],
)
def test_naive_times_in_the_assumed_zone(zone: str, text: str, expected: str) -> None:
    data = f"caseId,description,eventDate\n{CASE},x,{text}\n".encode()
    assert read(data, assume_timezone=zone)[0]["eventDate"] == expected


def test_dst_reject_names_the_line_the_column_and_the_change() -> None:
    data = (
        "caseId,description,When (local)\n"
        f"{CASE},gap,2024-03-31 02:30:00\n"
        f"{CASE},fold,2024-10-27 02:30:00\n"
        f"{CASE},fine,2024-10-27 04:30:00\n"
    ).encode()
    items = read(
        data, {"eventDate": "When (local)"}, assume_timezone="Europe/Copenhagen", dst="reject"
    )
    assert items[0] == InvalidRow(
        (
            "line 2: eventDate (column 'When (local)'): 2024-03-31 02:30:00 does not exist in"
            " Europe/Copenhagen (the clocks were turned forward); give it an offset, or read it"
            " with the offset before the change (--dst rfc5545)",
        )
    )
    assert isinstance(items[1], InvalidRow)
    assert "occurs twice in Europe/Copenhagen" in items[1].problems[0]
    assert items[2]["eventDate"] == "2024-10-27T03:30:00Z"


def test_jsonl_naive_times_too() -> None:
    line = b'{"caseId": "' + CASE.encode() + b'", "description": "x", "eventDate": "2024-01-01"}'
    with JsonlReader(io.BytesIO(line), options=InputOptions(assume_timezone="UTC")) as reader:
        assert list(reader) == [
            {"caseId": CASE, "description": "x", "eventDate": "2024-01-01T00:00:00Z"}
        ]


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2037, 12, 31)),
    zone=st.sampled_from(["UTC", "Europe/Copenhagen", "America/New_York", "Australia/Sydney"]),
)
def test_localize_is_the_fold_0_reading(moment: datetime, zone: str) -> None:
    tz = _input_options.load_zone(zone)
    text = _input_dates.localize(moment.isoformat(), tz, "rfc5545")
    expected = moment.replace(tzinfo=tz, fold=0).astimezone(UTC)
    assert datetime.fromisoformat(text) == expected
    assert text.endswith("Z")


# -- UUID forms -------------------------------------------------------------------------------


@given(st.uuids())
def test_uuid_forms_are_accepted_and_sent_hyphenated(value: uuid.UUID) -> None:
    text = str(value)
    forms = [text, text.upper(), text.replace("-", ""), f"{{{text}}}", f"{{{text.upper()}}}"]
    forms += [f"urn:uuid:{text}", f"URN:UUID:{text.upper()}"]
    for form in forms:
        assert parse_uuid(form) == value, form
        body = _wire.encode_rows([IngestionJobRow(form, "x")])
        assert f'"caseId":"{text}"'.encode() in body


@given(st.uuids(), st.text(min_size=1, max_size=3), st.booleans())
def test_uuid_forms_stay_strict(value: uuid.UUID, extra: str, before: bool) -> None:
    text = str(value)
    refused = [
        f"{{{text.replace('-', '')}}}",  # braces around 32 digits: not a .NET format
        f"({text})",  # the .NET "P" format: not accepted
        f"urn:uuid:{{{text}}}",
        f"urn:uuid:{text.replace('-', '')}",
        f"{{{text}",
        f"{text}}}",
        f"uuid:{text}",
    ]
    for form in refused:
        assert parse_uuid(form) is None, form
    for form in (text, f"{{{text}}}", f"urn:uuid:{text}"):
        padded = extra + form if before else form + extra
        if parse_uuid(padded) is not None:  # only when the padding completes another form
            assert padded.strip("{}") == text or padded.startswith("urn:uuid:")


# -- references and columns -------------------------------------------------------------------


def test_reference_rows_and_the_case_id_beside_them() -> None:
    data = (
        f"caseId,caseReference,description\n,CRM-1,by reference\n{CASE},CRM-2,by id\n,,neither\n"
    ).encode()
    items = read(data)
    assert items[0] == UnresolvedCaseRow(reference="CRM-1", description="by reference")
    assert items[1] == {"caseId": CASE, "description": "by id"}
    assert items[2] == InvalidRow(("line 4: caseReference: empty, and the row has no caseId",))
    assert items[0].with_case_id(uuid.UUID(CASE)) == {"caseId": CASE, "description": "by reference"}


def test_mapping_of_references_and_column_names_in_messages() -> None:
    mapping = parse_mapping(["caseReference=CRM_CASE_NO", "description=Note"])
    data = b'CRM_CASE_NO,Note\n"Smith, John",hello\n'
    with CsvReader(io.BytesIO(data), mapping) as reader:
        assert reader.source_columns == {"caseReference": "CRM_CASE_NO", "description": "Note"}
        assert list(reader) == [UnresolvedCaseRow(reference="Smith, John", description="hello")]
        assert name_column("description: empty", reader.source_columns) == (
            "description (column 'Note'): empty"
        )
    with pytest.raises(InputError, match=r"--map caseId=COLUMN \(or --map caseReference=COLUMN\)"):
        read(b"CRM,description\n")
    with pytest.raises(InputError, match="'case' is not an API field"):
        parse_mapping(["case=X"])


# -- the early stop ---------------------------------------------------------------------------


def test_signature_blanks_values_and_keeps_field_and_kind() -> None:
    assert signature("line 7: caseId (column 'G'): 'abc' is not a valid UUID") == (
        "caseId",
        "… is not a valid UUID",
    )
    assert signature("lines 3-4: not valid UTF-8 (byte 0xe5 at column 12)") == signature(
        "line 9: not valid UTF-8 (byte 0xf8 at column 7)"
    )


def test_watch_ends_at_the_first_good_row_or_a_different_failure() -> None:
    watch = FailureWatch(threshold=3)
    watch.observe(["caseId: 'a' is not a valid UUID"], 2)
    watch.observe([], 3)
    assert not watch.watching
    watch.observe(["caseId: 'b' is not a valid UUID"], 4)
    watch.finish()  # nothing raised: one good row is enough

    mixed = FailureWatch(threshold=3)
    mixed.observe(["caseId: 'a' is not a valid UUID"], 2)
    mixed.observe(["description: must not be empty"], 3)
    assert not mixed.watching

    shared = FailureWatch(threshold=3, columns={"caseId": "Guid"})
    shared.observe(["caseId: 'a' is not a valid UUID", "description: must not be empty"], 2)
    shared.observe(["caseId: 'b' is not a valid UUID"], 3)
    with pytest.raises(UniformFailureError) as info:
        shared.observe(["caseId: 'c' is not a valid UUID", "type: x"], 4)
    assert info.value.field == "caseId"
    assert "line 2: caseId (column 'Guid'): 'a' is not a valid UUID" in str(info.value)
    assert "--map caseReference=COLUMN" in info.value.hint


def test_short_inputs_that_fail_whole_stop_at_their_end() -> None:
    watch = FailureWatch(threshold=25, min_rows=3)
    for line in (2, 3):
        watch.observe(["expected 3 columns, found 1"], line)
    watch.finish()  # two rows: below min_rows
    watch.observe(["expected 3 columns, found 1"], 4)
    with pytest.raises(UniformFailureError, match="--delimiter"):
        watch.finish()


def test_watch_input_over_a_semicolon_file_read_at_commas() -> None:
    data = "caseId;description\n" + "".join(f"{CASE};n{i}\n" for i in range(30))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(InputError, match=r"split at ',': caseId;description\); .*--delimiter"):
        CsvReader(io.BytesIO(data.encode()), options=InputOptions(delimiter=","))
    text = "caseId,description,x\n" + "".join(f"{CASE};n{i}\n" for i in range(30))
    with CsvReader(io.BytesIO(text.encode())) as reader:
        check = _input_stop.row_check(now=now, skew=timedelta(0))
        with pytest.raises(UniformFailureError) as info:
            list(_input_stop.watch_input(reader, check, FailureWatch(), reader.lines))
    assert "lines 2-26" in str(info.value)
    assert "expected 3 columns, found 1" in str(info.value)


def test_truncated_utf16_and_utf16_jsonl() -> None:
    data = codecs.BOM_UTF16_LE + _TEXT.encode("utf-16-le") + f"{CASE},cut".encode("utf-16-le")
    items = read(data[:-1])  # an odd byte count: the last character is cut in half
    assert items[:2] == _EXPECTED
    assert items[2] == InvalidRow(("line 5: not valid UTF-16 LE (at character 40)",))
    line = '{"caseId": "' + CASE + '", "description": "Kjær"}\r\n'
    stream = io.BytesIO(codecs.BOM_UTF16_BE + (line * 2).encode("utf-16-be"))
    with JsonlReader(stream, name="export.jsonl") as reader:
        assert (reader.name, reader.encoding) == ("export.jsonl", "utf-16-be")
        assert list(reader) == [{"caseId": CASE, "description": "Kjær"}] * 2
    with CsvReader(io.BytesIO(b"caseId,description\n")) as reader:
        assert reader.name == "<stream>"
