"""Sample exports in the formats CRMs and Excel write, each with what reading it must give.

The files in ``samples/`` are committed so they can be opened by hand; ``test_samples_are_current``
checks they are byte for byte what this module makes, and ``python -m tests.input._samples``
rewrites them. Case ids come from ``examples/demo-world.json`` (the demo partner's cases, and one
of the other agency's), so the files work against ``debitura-async emulator --world
examples/demo-world.json``.

Every sample names the lines that must be rejected (with a text the reason must contain), the
externalRefs that must be stored exactly once, and those the server must refuse (failed).
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = Path(__file__).with_name("samples")
WORLD_PATH = ROOT / "examples" / "demo-world.json"
_WORLD = orjson.loads(WORLD_PATH.read_bytes())
API_KEY: str = _WORLD["partners"][0]["apiKey"]
CASES: tuple[str, ...] = tuple(_WORLD["partners"][0]["caseIds"][:40])
FOREIGN: str = _WORLD["partners"][1]["caseIds"][0]

REFERENCES: Mapping[str, str] = {
    "CRM-10001": CASES[0],
    "CRM-10002": CASES[1],
    "112179442 & 112179443": CASES[2],  # a combined reference: looked up whole
    "Smith, John / 2024-117": CASES[3],  # a comma: the batch lookup cannot carry it
    "Hansen, Åse; sag 7": CASES[4],
    "10005": CASES[5],
}
"""The partner references the samples use and the case each names (the demo world's cases)."""


@attrs.frozen(kw_only=True)
class Sample:
    """One sample file and what reading and migrating it must give."""

    name: str
    content: bytes
    what: str
    mapping: Mapping[str, str] = attrs.field(factory=dict)
    options: Mapping[str, Any] = attrs.field(factory=dict)
    """Keyword arguments of ``InputOptions``."""
    rejected: Mapping[int, str] = attrs.field(factory=dict)
    stored: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    """References the rows carry, in order (rows with a reference and no case id)."""

    @property
    def path(self) -> Path:
        return SAMPLES_DIR / self.name


def _text(rows: list[str], eol: str = "\r\n") -> str:
    return eol.join(rows) + eol


def _c(i: int) -> str:
    return CASES[i]


def _semicolon() -> Sample:
    rows = [
        "NoteId;CaseGuid;Oprettet;Notat;Beløb",
        *(
            f"SC-{i:02};{_c(i)};2026-01-{5 + i % 20:02}T09:{i:02}:00+01:00;"
            f"Betaling modtaget: {i},50 kr;{100 + i},50"
            for i in range(1, 25)
        ),
        f'SC-25;{_c(25)};2026-02-01T08:00:00+01:00;"Debitor skriver; ""vi betaler""";1,00',
        f"SC-26;{_c(26)};2026-02-01T08:00:00+01:00;Ringet, ingen svar",  # one column short
        f"SC-27;{_c(27)};2026-02-01T08:00:00+01:00;;0,00",  # an empty note
        f'SC-28;{_c(28)};2026-02-02T08:00:00+01:00;"To linjer:\r\nrykker sendt";2,00',
        f"SC-29;{FOREIGN};2026-02-02T09:00:00+01:00;Another agency's case;3,00",
        f"SC-30;{_c(30)};2026-02-03T09:00:00Z;Sidste notat;4,00",
    ]
    return Sample(
        name="excel-eu-semicolon.csv",
        what="Excel in a Danish locale: ';'-separated, decimal commas, UTF-8 with a BOM, CRLF",
        content=codecs.BOM_UTF8 + _text(rows).encode(),
        mapping={
            "caseId": "CaseGuid",
            "description": "Notat",
            "eventDate": "Oprettet",
            "externalRef": "NoteId",
        },
        rejected={27: "expected 5 columns, found 4", 28: "description"},
        stored=(*(f"SC-{i:02}" for i in range(1, 26)), "SC-28", "SC-30"),
        failed=("SC-29",),
    )


def _utf16() -> Sample:
    rows = [
        "caseId\tdescription\teventDate\texternalRef\tAuthor",
        *(
            f"{_c(i)}\tNote {i}: Søren Kjær ringede 📞 — 債務者\t2026-03-{1 + i:02}T10:00:00Z"
            f"\tUT-{i:02}\tÅse"
            for i in range(1, 26)
        ),
        "CASE-7133\tnot a case id\t2026-03-27T10:00:00Z\tUT-26\tÅse",
        f'{_c(27)}\t"quoted\ttab, and a ""quote"""\t2026-03-28T10:00:00Z\tUT-27\tJosé',
        f"{_c(28)}\tlast\t\tUT-28\t",
    ]
    return Sample(
        name="excel-unicode-text.tsv",
        what="Excel's 'Unicode text': UTF-16 LE with a BOM, tab-separated, CRLF, emoji and CJK",
        content=codecs.BOM_UTF16_LE + _text(rows).encode("utf-16-le"),
        rejected={27: "caseId: 'CASE-7133' is not a valid UUID"},
        stored=(*(f"UT-{i:02}" for i in range(1, 26)), "UT-27", "UT-28"),
    )


def _cp1252() -> Sample:
    names = ("Søren Kjær", "Åse Lindqvist", "Bjørn Æbelø", "Jens Ågård", "Mette Blåbær")
    rows = [
        "externalRef,caseId,eventDate,description",
        *(
            f"CP-{i:02},{_c(i)},2026-04-{1 + i:02}T08:30:00Z,"
            f'"Samtale med {names[i % 5]}: afdrag på {i * 100} kr., næste møde på kontoret"'
            for i in range(1, 29)
        ),
        f"CP-29,{_c(29)},2026-04-30T08:30:00Z,€ 250 modtaget \u2013 tak",
        f"CP-30,{_c(30)},not a date,Dato mangler",
    ]
    return Sample(
        name="legacy-cp1252.csv",
        what="An older system's export: cp1252 with å/ø/æ, € and an en dash; comma-separated",
        content=_text(rows).encode("cp1252"),
        options={"encoding": "cp1252"},
        rejected={31: "eventDate: 'not a date' is not an ISO 8601 date-time"},
        stored=tuple(f"CP-{i:02}" for i in range(1, 30)),
    )


def _naive_utc() -> Sample:
    rows = [
        "Note ID,Case ID,Created Date (UTC),Note Body",
        *(
            f"NU-{i:02},{_c(i)},2024-01-{1 + i % 28:02} {i % 24:02}:00:00,Naive UTC note {i}"
            for i in range(1, 31)
        ),
        f"NU-31,{_c(31)},2024-02-30 10:00:00,February 30",
        f"NU-32,{_c(32)},,No date: the processing time",
    ]
    return Sample(
        name="naive-utc-dates.csv",
        what="A CRM export whose 'Created Date (UTC)' column holds '2024-01-01 00:00:00'",
        content=_text(rows, "\n").encode(),
        mapping={
            "caseId": "Case ID",
            "description": "Note Body",
            "eventDate": "Created Date (UTC)",
            "externalRef": "Note ID",
        },
        options={"assume_timezone": "UTC"},
        rejected={32: "is not an ISO 8601 date-time"},
        stored=(*(f"NU-{i:02}" for i in range(1, 31)), "NU-32"),
    )


def _references() -> Sample:
    refs = list(REFERENCES)
    rows = ["CRM_CASE_NO,Subject,Note,Created,NoteNo"]
    used: list[str] = []
    for i in range(1, 25):
        ref = refs[i % len(refs)]
        used.append(ref)
        cell = f'"{ref}"' if "," in ref else ref
        rows.append(f"{cell},Call,Reference note {i},2026-05-{1 + i:02}T12:00:00Z,RF-{i:02}")
    rows += [
        "CRM-99999,Call,an unknown reference,2026-05-26T12:00:00Z,RF-25",
        ",Call,no reference at all,2026-05-27T12:00:00Z,RF-26",
        f'"{"x" * 129}",Call,a reference over 128 characters,2026-05-28T12:00:00Z,RF-27',
        "CRM-10001,Call,,2026-05-29T12:00:00Z,RF-28",  # an empty note: fails once resolved
    ]
    return Sample(
        name="partner-references.csv",
        what="Rows naming cases by the agency's own reference (with and without commas)",
        content=_text(rows, "\n").encode(),
        mapping={
            "caseReference": "CRM_CASE_NO",
            "description": "Note",
            "eventDate": "Created",
            "externalRef": "NoteNo",
        },
        rejected={
            26: "'CRM-99999' was not resolved",
            27: "caseReference (column 'CRM_CASE_NO'): empty, and the row has no caseId",
            28: "caseReference (column 'CRM_CASE_NO'): 129 characters, over the API's limit",
            29: "description: must not be empty",
        },
        stored=tuple(f"RF-{i:02}" for i in range(1, 25)),
        references=(*used, "CRM-99999", "CRM-10001"),
    )


def _dynamics() -> Sample:
    rows = ["annotationid,objectid,subject,notetext,createdon"]
    for i in range(1, 27):
        case = _c(i).upper()
        form = f"{{{case}}}" if i % 3 else f"urn:uuid:{_c(i)}"
        note_id = f"{{{i:08X}-0000-4000-8000-{i:012X}}}"
        rows.append(f"{note_id},{form},Phone call,Dynamics note {i},2026-06-{1 + i:02}T07:15:00Z")
    rows += [
        f"{{00000027-0000-4000-8000-000000000027}},{{{_c(27).replace('-', '')}}},Call,"
        "braces around 32 digits,2026-06-28T07:15:00Z",
        f"{{00000028-0000-4000-8000-000000000028}}, {{{_c(28)}}} ,Call,"
        "spaces are stripped,2026-06-28T07:15:00Z",
        f"{{00000029-0000-4000-8000-000000000029}},{{{_c(29)},Call,"
        "an unclosed brace,2026-06-28T07:15:00Z",
    ]
    return Sample(
        name="dynamics-guids.csv",
        what="A Dynamics 365 export: case ids as {GUID} (upper case) and urn:uuid:",
        content=_text(rows).encode(),
        mapping={
            "caseId": "objectid",
            "description": "notetext",
            "eventDate": "createdon",
            "externalRef": "annotationid",
        },
        rejected={28: "is not a valid UUID", 30: "is not a valid UUID"},
        stored=(
            *(f"{{{i:08X}-0000-4000-8000-{i:012X}}}" for i in range(1, 27)),
            "{00000028-0000-4000-8000-000000000028}",
        ),
    )


def _references_jsonl() -> Sample:
    lines = [
        orjson.dumps({"crmCase": ref, "text": f"JSON note {i}", "ref": f"RJ-{i:02}"}).decode()
        for i, ref in enumerate(["CRM-10002", "Smith, John / 2024-117", 10005], start=1)
    ]
    lines.append(orjson.dumps({"crmCase": True, "text": "a boolean", "ref": "RJ-04"}).decode())
    lines.append(
        orjson.dumps(
            {"caseId": _c(9), "crmCase": "CRM-10001", "text": "both", "ref": "RJ-05"}
        ).decode()
    )
    return Sample(
        name="partner-references.jsonl",
        what="JSON Lines naming cases by reference (a number, a comma), or by caseId beside one",
        content=_text(lines, "\n").encode(),
        mapping={"caseReference": "crmCase", "description": "text", "externalRef": "ref"},
        rejected={4: "caseReference (column 'crmCase'): expected text, got bool"},
        stored=("RJ-01", "RJ-02", "RJ-03", "RJ-05"),
        references=("CRM-10002", "Smith, John / 2024-117", "10005"),
    )


SAMPLES: tuple[Sample, ...] = (
    _semicolon(),
    _utf16(),
    _cp1252(),
    _naive_utc(),
    _references(),
    _dynamics(),
    _references_jsonl(),
)


def write_samples() -> list[Path]:
    """(Re)write every sample file; returns the paths written."""
    SAMPLES_DIR.mkdir(exist_ok=True)
    for sample in SAMPLES:
        sample.path.write_bytes(sample.content)
    return [s.path for s in SAMPLES]


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for path in write_samples():
        print(path)
