"""The bad-input corpus: small files in ``corpus/``, each with what the CLI must make of it.

Every entry names the lines that must be rejected (with a text the reason must contain: the
field and what is wrong with it), the externalRefs that must be stored exactly once, and the
ones the server must refuse (failed, not stored). The files are committed so they can be read
and opened by hand; ``test_corpus_files_are_current`` checks they are byte for byte what this
module makes, and ``python -m tests.reliability._corpus`` rewrites them.

The case ids are fixed (``corpus/world.json`` is the emulator's world), so the files never
change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import attrs
import orjson

CORPUS_DIR = Path(__file__).with_name("corpus")
_NS = uuid.UUID("6f1c1f4e-2d0b-4c47-9a39-52f1d0c0ffee")
CASES = tuple(uuid.uuid5(_NS, f"case-{i}") for i in range(6))
FOREIGN = uuid.uuid5(_NS, "a case of another partner")
UNKNOWN = uuid.uuid5(_NS, "a case nobody has")
API_KEY = "rel-corpus-key-3c0f5e2a"
# The partner references of CASES[0..4] (CASES[5] has none), as the emulator's world gives them:
# plain, combined with " & ", with a comma (the batch lookup cannot carry it), with spaces and a
# slash, non-ASCII. The other partner uses REFERENCES[0]'s text for its own case.
REFERENCES = ("REL-1001", "112179442 & 112179443", "Hansen, Jens 4411", "INV 2024/0042", "Ærø-7")
FOREIGN_REFERENCE = REFERENCES[0]
WORLD = {
    "partners": [
        {
            "id": str(uuid.uuid5(_NS, "partner")),
            "name": "Corpus Partner",
            "apiKey": API_KEY,
            "caseIds": [str(c) for c in CASES],
            "partnerReferences": dict(zip(map(str, CASES), REFERENCES, strict=False)),
        },
        {
            "id": str(uuid.uuid5(_NS, "other partner")),
            "name": "Other Partner",
            "apiKey": "rel-corpus-other-partner",
            "caseIds": [str(FOREIGN)],
            "partnerReferences": {str(FOREIGN): FOREIGN_REFERENCE},
        },
    ]
}


@attrs.frozen(kw_only=True)
class Entry:
    """One corpus file and the CLI's expected verdict on it."""

    name: str
    content: bytes
    what: str
    rejected: Mapping[int, str] = attrs.field(factory=dict)
    """Line -> a text the rejection reason must contain."""
    stored: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    exit_code: int = 1
    error: str | None = None
    """For a file that cannot be read at all: the one-line error (exit 2)."""

    @property
    def path(self) -> Path:
        return CORPUS_DIR / self.name


def c(i: int) -> str:
    return str(CASES[i])


def lines(*rows: str, eol: str = "\n") -> bytes:
    return (eol.join(rows) + eol).encode()


def _json(**fields: object) -> str:
    return orjson.dumps(fields).decode()


_D = "2026-01-05T10:00:00Z"

ENTRIES: tuple[Entry, ...] = (
    Entry(
        name="unbalanced-quotes.csv",
        what="CSV: quotes opened and never closed, text after a closing quote",
        content=lines(
            "externalRef,caseId,eventDate,description",
            f"uq-1,{c(0)},{_D},first fine",
            f'uq-2,{c(1)},{_D},"opened and never closed',
            f"uq-3,{c(2)},{_D},third fine",
            f'uq-4,{c(3)},{_D},"a ""quoted"" word, and a comma"',
            f'uq-5,{c(4)},{_D},"text after" the quote',
            f'uq-6,{c(0)},{_D},"multi',
            'line, fine"',
            f'uq-7,{c(1)},{_D},"open at the very end',
        ),
        rejected={
            3: "unbalanced quote",
            6: "text after a closing quote",
            9: "unbalanced quote: the quoted field opened on this line never closes",
        },
        stored=("uq-1", "uq-3", "uq-4", "uq-6"),
    ),
    Entry(
        name="wrong-column-counts.csv",
        what="CSV: too many, too few columns, a trailing comma",
        content=lines(
            "externalRef,caseId,eventDate,description",
            f"wc-1,{c(0)},,fine",
            f"wc-2,{c(1)},,too,many,columns",
            f"wc-3,{c(2)}",
            f"wc-4,{c(3)},,fine again",
            f"wc-5,{c(4)},,trailing comma,",
            "",
            f'wc-6,{c(0)},,"quoted, with a comma"',
        ),
        rejected={
            3: "expected 4 columns, found 6",
            4: "expected 4 columns, found 2",
            6: "expected 4 columns, found 5",
        },
        stored=("wc-1", "wc-4", "wc-6"),
    ),
    Entry(
        name="invalid-utf8.csv",
        what="CSV: bytes that are not UTF-8 (bad byte, overlong, truncated, inside quotes)",
        content=b"".join(
            [
                b"externalRef,caseId,description\n",
                f"iu-1,{c(0)},fine\n".encode(),
                f"iu-2,{c(1)},bad byte ".encode() + b"\xff here\n",
                f"iu-3,{c(2)},overlong ".encode() + b"\xc0\xaf slash\n",
                f"iu-4,{c(3)},caf\u00e9 is fine\n".encode(),
                f"iu-5,{c(4)},truncated ".encode() + b"\xe2\x82\n",
                f'iu-6,{c(0)},"quoted '.encode() + b'\xfe inside"\n',
                f"iu-7,{c(1)},last fine\n".encode(),
            ]
        ),
        rejected={
            3: "not valid UTF-8 (byte 0xff",
            4: "not valid UTF-8 (byte 0xc0",
            6: "not valid UTF-8 (byte 0xe2",
            7: "not valid UTF-8 (byte 0xfe",
        },
        stored=("iu-1", "iu-4", "iu-7"),
    ),
    Entry(
        name="bom-crlf-blank-lines.csv",
        what="CSV: byte order mark, CRLF, blank and whitespace-only lines, header in capitals",
        content=b"\xef\xbb\xbf"
        + lines(
            "externalRef,CASEID,Description",
            "",
            f"bb-1,{c(0)},first",
            "",
            "   ",
            f'bb-2,{c(1)},"multi\r\nline"',
            f"bb-3,{c(2)},third",
            "",
            eol="\r\n",
        ),
        stored=("bb-1", "bb-2", "bb-3"),
        exit_code=0,
    ),
    Entry(
        name="broken-lines.jsonl",
        what="JSONL: truncated, trailing comma, trailing garbage, not an object, bad UTF-8",
        content=b"".join(
            [
                lines(
                    _json(externalRef="bj-1", caseId=c(0), description="fine"),
                    f'{{"externalRef":"bj-2","caseId":"{c(1)}","description":"truncated"',
                    '["an","array"]',
                    '"a string"',
                    "42",
                    "null",
                    f'{{"externalRef":"bj-3","caseId":"{c(2)}","description":"x",}}',
                    "",
                ),
                f'{{"externalRef":"bj-4","caseId":"{c(3)}","description":"bad '.encode()
                + b'\xff byte"}\n',
                lines(
                    _json(externalRef="bj-5", caseId=c(4), description="fine again"),
                    _json(externalRef="bj-6", caseId=c(0), description="two") + ' {"x":1}',
                ),
                _json(
                    externalRef="bj-7", caseId=c(1), description="no newline at the end"
                ).encode(),
            ]
        ),
        rejected={
            2: "broken JSON",
            3: "expected a JSON object, found an array",
            4: "expected a JSON object, found a JSON string",
            5: "expected a JSON object, found a JSON number",
            6: "expected a JSON object, found a JSON null",
            7: "broken JSON",
            9: "not valid UTF-8",
            11: "broken JSON",
        },
        stored=("bj-1", "bj-5", "bj-7"),
    ),
    Entry(
        name="wrong-types.jsonl",
        what="JSONL: numbers, lists, objects and booleans where text or integers belong",
        content=lines(
            _json(externalRef="wt-1", caseId=123, description="caseId is a number"),
            _json(externalRef="wt-2", caseId=c(1), description=42),
            _json(externalRef="wt-3", caseId=c(2), description=["a", "list"]),
            _json(externalRef="wt-4", caseId=c(3), description="type as text", type="0"),
            _json(externalRef="wt-5", caseId=c(4), description="type true", type=True),
            _json(externalRef="wt-6", caseId=c(0), description="date number", eventDate=20260105),
            _json(externalRef=7, caseId=c(1), description="externalRef is a number"),
            _json(externalRef="wt-8", caseId=c(2), description="fine", extra="ignored"),
            _json(externalRef="wt-9", caseId=c(3), description="type 0.0", type=0.0),
            _json(externalRef="wt-10", caseId=c(4), description="null date", eventDate=None),
            _json(externalRef="wt-11", caseId=c(0), description="fine", type=0),
            _json(externalRef="wt-12", caseId={"id": c(1)}, description="object caseId"),
        ),
        rejected={
            1: "caseId: expected a UUID string, got 123",
            2: "description: expected text, got int",
            3: "description: expected text, got list",
            4: "type: expected an integer, got '0'",
            5: "type: expected an integer, got True",
            6: "eventDate: expected an ISO 8601 string, got int",
            7: "externalRef: expected text, got int",
            9: "type: expected an integer, got 0.0",
            12: "caseId: expected a UUID string",
        },
        stored=("wt-8", "wt-10", "wt-11"),
    ),
    Entry(
        name="bad-uuids.csv",
        what="CSV: case ids that are not UUIDs (and forms that are), unknown and foreign cases",
        content=lines(
            "externalRef,caseId,description",
            "bu-1,CASE-7133,a CRM number",
            f"bu-2,{{{c(0)}}},braces",
            f"bu-3,urn:uuid:{c(0)},a URN",
            f"bu-4,{c(0)[:-1]},one digit short",
            f"bu-5,{c(0)[:-1]}\u0663,an Arabic-Indic digit",
            f"bu-6,  {c(1)}  ,surrounding spaces",
            f"bu-7,{c(2).replace('-', '')},32 hex digits",
            f"bu-8,{c(3).upper()},capitals",
            "bu-9,,empty",
            f"bu-10,{c(4)},fine",
            f"bu-11,{FOREIGN},a case of another partner",
            f"bu-12,{UNKNOWN},a case nobody has",
        ),
        rejected={
            2: "caseId: 'CASE-7133' is not a valid UUID",
            5: "is not a valid UUID",
            6: "is not a valid UUID",
            10: "caseId: required",
        },
        stored=("bu-2", "bu-3", "bu-6", "bu-7", "bu-8", "bu-10"),
        failed=("bu-11", "bu-12"),
    ),
    Entry(
        name="type-not-zero.csv",
        what="CSV: event types other than 0 (Note)",
        content=lines(
            "externalRef,caseId,description,type",
            f"tz-1,{c(0)},type 1,1",
            f"tz-2,{c(1)},type 2,2",
            f"tz-3,{c(2)},type -1,-1",
            f"tz-4,{c(3)},type as a word,note",
            f"tz-5,{c(4)},type 0.5,0.5",
            f"tz-6,{c(0)},type empty,",
            f"tz-7,{c(1)},type zero,0",
            f"tz-8,{c(2)},type with spaces, 0 ",
        ),
        rejected={
            2: "type: unsupported event type 1",
            3: "type: unsupported event type 2",
            4: "type: unsupported event type -1",
            5: "type: expected an integer, got 'note'",
            6: "type: expected an integer, got '0.5'",
        },
        stored=("tz-6", "tz-7", "tz-8"),
    ),
    Entry(
        name="event-dates.csv",
        what="CSV: naive, date-only, future, unparsable and out-of-range eventDates",
        content=lines(
            "externalRef,caseId,eventDate,description",
            f"ed-1,{c(0)},2026-01-05T10:00:00,naive",
            f"ed-2,{c(1)},2026-01-05,date only",
            f"ed-3,{c(2)},2999-01-01T00:00:00Z,far future",
            f"ed-4,{c(3)},yesterday,a word",
            f"ed-5,{c(4)},2026-13-01T00:00:00Z,month 13",
            f"ed-6,{c(0)},2026-01-05T10:00:00+02:00,an offset",
            f"ed-7,{c(1)},,empty: the processing time",
            f"ed-8,{c(2)},2026-01-05T10:00:00.123456Z,microseconds",
            f"ed-9,{c(3)},2026-01-05T10:00:00+25:00,offset out of range",
            f"ed-10,{c(4)},9999-12-31T23:59:59-01:00,beyond year 9999 in UTC",
            f"ed-11,{c(0)},1999-12-31T23:59:59Z,last century",
        ),
        rejected={
            2: "eventDate: 2026-01-05T10:00:00 has no time zone",
            3: "eventDate: 2026-01-05T00:00:00 has no time zone",
            4: "eventDate: 2999-01-01T00:00:00+00:00 is in the future",
            5: "eventDate: 'yesterday' is not an ISO 8601 date-time",
            6: "eventDate: '2026-13-01T00:00:00Z' is not an ISO 8601 date-time",
            10: "eventDate: '2026-01-05T10:00:00+25:00' is not an ISO 8601 date-time",
            11: "eventDate: 9999-12-31T23:59:59-01:00 is out of range",
        },
        stored=("ed-6", "ed-7", "ed-8", "ed-11"),
    ),
    Entry(
        name="descriptions.csv",
        what="CSV: empty, blank and over-long (10,001 characters) descriptions",
        content=lines(
            "externalRef,caseId,description",
            f'ds-1,{c(0)},""',
            f'ds-2,{c(1)},"   "',
            f"ds-3,{c(2)},{'a' * 10_000}",
            f"ds-4,{c(3)},{'b' * 10_001}",
            f'ds-5,{c(4)},"tab\tand emoji \U0001f389 and \u00fcn\u00efc\u00f6d\u00e9"',
            f'ds-6,{c(0)},"line one\nline two"',
            f"ds-7,{c(1)},{chr(0xE9) * 10_000}",
            f"ds-8,{c(2)},\u00a0\u2003",
        ),
        rejected={
            2: "description: must not be empty",
            3: "description: must not be empty",
            5: "description: 10001 characters, over the limit of 10000",
            10: "description: must not be empty",
        },
        stored=("ds-3", "ds-5", "ds-6", "ds-7"),
    ),
    Entry(
        name="mapped-columns.csv",
        what="CSV with --map: the reason names the API field and the file's column",
        content=lines(
            "NoteId,CaseGuid,CreatedAtUtc,NoteText,Channel",
            f"cm-1,{c(0)},{_D},fine,phone",
            f"cm-2,not-a-uuid,{_D},bad case,phone",
            f"cm-3,{c(1)},2026-01-05T10:00:00,naive,mail",
            f"cm-4,{c(2)},{_D},,mail",
            f"cm-5,{c(3)},{_D},fine too,visit",
        ),
        args=(
            *("--map", "caseId=CaseGuid"),
            *("--map", "description=NoteText"),
            *("--map", "eventDate=CreatedAtUtc"),
            *("--map", "externalRef=NoteId"),
        ),
        rejected={
            3: "caseId (column 'CaseGuid'): 'not-a-uuid' is not a valid UUID",
            4: "eventDate (column 'CreatedAtUtc'): 2026-01-05T10:00:00 has no time zone",
            5: "description (column 'NoteText'): must not be empty",
        },
        stored=("cm-1", "cm-5"),
    ),
    Entry(
        name="empty.csv",
        what="CSV: an empty file (no header)",
        content=b"",
        exit_code=2,
        error="no header line (the file is empty)",
    ),
    Entry(
        name="header-only.csv",
        what="CSV: a header and no rows",
        content=lines("externalRef,caseId,description"),
        exit_code=0,
    ),
    Entry(
        name="empty.jsonl",
        what="JSONL: an empty file",
        content=b"",
        exit_code=0,
    ),
)


def write_corpus() -> list[Path]:
    """(Re)write every corpus file and the world; returns the paths written."""
    CORPUS_DIR.mkdir(exist_ok=True)
    written = []
    for entry in ENTRIES:
        entry.path.write_bytes(entry.content)
        written.append(entry.path)
    world = CORPUS_DIR / "world.json"
    world.write_bytes(orjson.dumps(WORLD, option=orjson.OPT_INDENT_2) + b"\n")
    written.append(world)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for path in write_corpus():
        print(path)
