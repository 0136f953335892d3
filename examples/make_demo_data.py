"""Generate the demo's sample CRM export and the emulator world it belongs to.

    python examples/make_demo_data.py          # rewrites the two files next to this script

Deterministic (a seeded RNG): running it again gives byte-identical files.

* ``demo-world.json`` — the emulator's seed world (``--world`` / ``World.from_file``): the demo
  partner with its API key and 250 case ids, and a second partner owning 20 other cases. Cases
  carry partner references (``partnerReferences``): the demo partner's case ``i`` is
  ``C-{7001 + i}``, the export's ``CaseNumber`` column, except three without one (``C-7050``,
  ``C-7150`` and ``C-7250`` resolve to nothing), plus six extra cases (not in the export) with
  the awkward shapes CRMs hold (``112179442 & 112179443``, a comma, a slash, 128 characters).
  The other partner's cases are ``C-7001`` ... ``C-7020`` too: the same text, other cases.
* ``crm-notes-export.csv`` — 3,000 case notes as a CRM would export them: UTF-8 with a BOM,
  CRLF line ends, CRM column names (``NoteId, CaseGuid, CaseNumber, CreatedAtUtc, Author,
  Channel, NoteText``; map them with ``--map caseId=CaseGuid --map description=NoteText
  --map eventDate=CreatedAtUtc --map externalRef=NoteId``), notes with commas, quotes, non-ASCII
  names and line breaks inside quoted fields, and two blank lines (skipped, not rows).

Planted problems (see ``PLANTED`` below), so the demo shows what the CLI does with them:

* 10 lines the CLI rejects before sending: an unbalanced quote, a wrong column count, invalid
  UTF-8, a case id that is not a UUID, an empty case id, an empty note, a date without a time
  zone, a date that is not a date, a date in the future, and a note type that is not an integer;
* 6 notes the server refuses (counted as failed): 4 for case ids that do not exist and 2 for
  cases that belong to the other partner.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORLD = HERE / "demo-world.json"
EXPORT = HERE / "crm-notes-export.csv"

NOTES = 3000
CASES = 250
DEMO_KEY = "demo-partner-key-not-secret-0001"
OTHER_KEY = "demo-other-agency-key-0002"
HEADER = ("NoteId", "CaseGuid", "CaseNumber", "CreatedAtUtc", "Author", "Channel", "NoteText")

AUTHORS = ("Søren Kjær", "Åse Lindqvist", "Mikkel Ørsted", "Jane Doe", "Li Wei", "José Núñez")
CHANNELS = ("phone", "email", "letter", "sms", "portal")
TEMPLATES = (
    "Called debtor, no answer. Left voicemail.",
    "Debtor promised payment of {amount} DKK by {date}.",
    "Sent reminder letter #{n}.",
    'Debtor disputes the claim: "{quote}"',
    "Payment plan agreed: {n} instalments of {amount} DKK.",
    "Email received from debtor, asking for an itemised statement.",
    "Debtor moved; new address requested from the registry.",
    "Partial payment of {amount} DKK received, thanks sent.",
    "SMS reminder sent, delivery confirmed.",
    "Debtor asked to be contacted after 16:00, by phone only.",
)
QUOTES = ("I never ordered this", "the invoice was paid, see bank slip", "wrong amount, 10% off")
MULTILINE = (
    "Phone call summary:\n- debtor confirms the debt\n- asks for 3 instalments",
    "Letter from the debtor's lawyer, quote:\n\n"
    '"We contest the claim in full."\n\nForwarded to legal.',
    "Visit report\r\nNobody home; neighbour says the debtor works nights.",
)

# (note index, kind). Indexes are 0-based positions among the 3,000 notes.
PLANTED = {
    137: "unbalanced_quote",
    402: "extra_column",
    655: "invalid_utf8",
    901: "bad_uuid",
    1150: "empty_case",
    1377: "empty_note",
    1604: "naive_date",
    1888: "garbage_date",
    2222: "future_date",
    2500: "stray_quote",
    311: "unknown_case",
    1010: "unknown_case",
    1999: "unknown_case",
    2777: "unknown_case",
    760: "other_partner",
    2345: "other_partner",
}
BLANK_AFTER = (500, 2600)
NO_REFERENCE = (49, 149, 249)
SPECIAL_REFERENCES = (
    "112179442 & 112179443",
    "Hansen, Jens 4411",
    "INV 2024/0042",
    "Müller & Söhne GmbH, 17",
    "  KD 55  ",
    "LONG-" + "0123456789" * 12 + "abc",
)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def main() -> None:
    rng = random.Random("debitura-async-demo-v1")  # noqa: S311 - reproducible sample data
    cases = [_uuid(rng) for _ in range(CASES)]
    other_cases = [_uuid(rng) for _ in range(20)]
    # Its own RNG: the references added no draw to ``rng``, so every other value is unchanged.
    ref_rng = random.Random("debitura-async-demo-references-v1")  # noqa: S311 - sample data
    special = [_uuid(ref_rng) for _ in SPECIAL_REFERENCES]
    references = {
        str(case): f"C-{7001 + i}" for i, case in enumerate(cases) if i not in NO_REFERENCE
    }
    references.update(zip(map(str, special), SPECIAL_REFERENCES, strict=True))
    world = {
        "partners": [
            {
                "id": str(_uuid(rng)),
                "name": "Nordic Recovery Partners (demo)",
                "apiKey": DEMO_KEY,
                "caseIds": [str(c) for c in (*cases, *special)],
                "partnerReferences": references,
            },
            {
                "id": str(_uuid(rng)),
                "name": "Another Agency (demo)",
                "apiKey": OTHER_KEY,
                "caseIds": [str(c) for c in other_cases],
                "partnerReferences": {
                    str(case): f"C-{7001 + i}" for i, case in enumerate(other_cases)
                },
            },
        ]
    }
    WORLD.write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")

    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    out = bytearray(b"\xef\xbb\xbf")
    out += ",".join(HEADER).encode() + b"\r\n"
    for index in range(NOTES):
        case = rng.choice(cases)
        when = start + timedelta(minutes=index * 137 + rng.randrange(60))
        template = rng.choice(TEMPLATES)
        text = template.format(
            amount=rng.randrange(200, 20000),
            date=(when + timedelta(days=14)).date().isoformat(),
            n=rng.randrange(1, 6),
            quote=rng.choice(QUOTES),
        )
        if index % 97 == 13:
            text = rng.choice(MULTILINE)
        fields = [
            f"CRM-N-{100000 + index}",
            str(case),
            f"C-{cases.index(case) + 7001}",
            when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            rng.choice(AUTHORS),
            rng.choice(CHANNELS),
            text,
        ]
        kind = PLANTED.get(index)
        raw: bytes | None = None
        if kind == "unknown_case":
            fields[1] = str(_uuid(rng))
        elif kind == "other_partner":
            fields[1] = str(rng.choice(other_cases))
        elif kind == "bad_uuid":
            fields[1] = "CASE-7133"
        elif kind == "empty_case":
            fields[1] = ""
        elif kind == "empty_note":
            fields[6] = ""
        elif kind == "naive_date":
            fields[3] = when.strftime("%Y-%m-%d %H:%M")
        elif kind == "garbage_date":
            fields[3] = "yesterday"
        elif kind == "future_date":
            fields[3] = "2099-01-01T09:00:00Z"
        elif kind == "extra_column":
            fields.append("overflow")
        elif kind == "unbalanced_quote":
            raw = ",".join([*fields[:6], '"Debtor said: call back later']).encode()
        elif kind == "invalid_utf8":
            raw = ",".join(fields[:6]).encode() + b",Bj\xf8rn called, latin-1 text"
        elif kind == "stray_quote":
            raw = ",".join(fields[:6]).encode() + b',"Paid" in full'
        line = raw if raw is not None else ",".join(_csv_field(f) for f in fields).encode()
        out += line + b"\r\n"
        if index in BLANK_AFTER:
            out += b"\r\n"
    EXPORT.write_bytes(bytes(out))


if __name__ == "__main__":
    main()
