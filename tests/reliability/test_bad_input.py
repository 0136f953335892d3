"""Dirty exports: every bad line or row gets one clear error naming its line and field, and every
other row is stored exactly once (checked in the emulator by externalRef).

* The committed corpus (``corpus/``, made by ``_corpus.py``) through ``debitura-async ingest``.
* Batch-size edges: one row with ``--batch-size 1``, five rows one per job, 1001 rows -> 1000 + 1.
* Hypothesis: arbitrary rows through ``client.ingest`` against an independent oracle of the
  rules, and arbitrary CSV cells through the CLI's reader.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debitura_async import DebituraClient
from debitura_async._input import CsvReader
from debitura_async.emulator import Emulator, EmulatorConfig, World
from debitura_async.models import InvalidRow, JobOutcome

from ..cli._support import Result, cli_env, read_report, run_cli
from ._corpus import API_KEY, CASES, CORPUS_DIR, ENTRIES, FOREIGN, WORLD, Entry, write_corpus
from ._harness import POLICY, SCALE, fast_retry, report_figures
from .conftest import Measurements

pytestmark = pytest.mark.anyio


def corpus_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=SCALE, world=World.from_dict(WORLD))


async def ingest_file(
    emu: Emulator, path: Path, tmp_path: Path, *args: str
) -> tuple[Result, list[dict[str, Any]]]:
    report = tmp_path / "report.jsonl"
    result = await run_cli(
        "ingest", path, *args, "--journal", tmp_path / "run.sqlite", "--report", report,
        "--time-scale", str(SCALE), "--progress", "off",
        env=cli_env(DEBITURA_API_KEY=API_KEY, DEBITURA_BASE_URL=emu.url),
    )  # fmt: skip
    return result, (read_report(report) if report.exists() else [])


def rows_read(result: Result) -> int:
    found = re.search(r"^\s+rows read\s+([\d,]+)$", result.out, re.MULTILINE)
    assert found is not None, result
    return int(found.group(1).replace(",", ""))


def test_corpus_files_are_current(tmp_path: Path) -> None:
    """The committed files are exactly what ``_corpus.py`` makes (rewrite: ``python -m
    tests.reliability._corpus``)."""
    for entry in ENTRIES:
        assert entry.path.read_bytes() == entry.content, f"{entry.name} is stale"
    assert (CORPUS_DIR / "world.json").is_file()
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
    assert callable(write_corpus)  # the regeneration entry point


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
async def test_corpus_file(entry: Entry, tmp_path: Path, measure: Measurements) -> None:
    async with Emulator(corpus_config()) as emu:
        result, report = await ingest_file(emu, entry.path, tmp_path, *entry.args)
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
        requests = (await emu.stats())["requests"]
    assert result.code == entry.exit_code, result
    if entry.error is not None:
        assert entry.error in result.err, result
        assert len(result.err.strip().splitlines()) == 1, result
        assert requests.get("POST /ingestion-jobs") is None  # nothing was sent
        return
    rejected = {int(r["first_line"]): r["detail"] for r in report if r["record"] == "rejected"}
    measure("input", entry.what).add(
        **report_figures(report),
        runs=1,
        rows=rows_read(result),
        duplicates=sum(n - 1 for n in notes.values() if n > 1),
        lost=sum(1 for ref in entry.stored if not notes[ref]),
    )
    assert sorted(rejected) == sorted(entry.rejected), (rejected, result.err)
    for line, expected in entry.rejected.items():
        detail = " ".join(rejected[line])
        assert expected in detail, f"line {line}: {detail!r} does not say {expected!r}"
        shown = [
            t
            for t in result.err.splitlines()
            if t.startswith(f"debitura-async: rejected line {line}:")
        ]
        assert shown, f"line {line} is not named on stderr:\n{result.err}"
        assert expected in " ".join(shown)
    assert rows_read(result) == len(entry.rejected) + len(entry.stored) + len(entry.failed)
    assert {ref: notes[ref] for ref in entry.stored} == dict.fromkeys(entry.stored, 1)
    assert {ref: notes[ref] for ref in entry.failed} == dict.fromkeys(entry.failed, 0)
    assert sum(notes.values()) == len(entry.stored), notes  # nothing else was stored
    jobs = [r for r in report if r["record"] == "job"]
    assert sum(int(r["succeeded"]) for r in jobs) == len(entry.stored)
    assert sum(int(r["failed"]) for r in jobs) == len(entry.failed)


def write_rows(path: Path, count: int, tag: str) -> list[str]:
    refs = [f"{tag}-{i}" for i in range(count)]
    body = "".join(f"{ref},{CASES[i % len(CASES)]},note {i}\n" for i, ref in enumerate(refs))
    path.write_text("externalRef,caseId,description\n" + body)
    return refs


@pytest.mark.parametrize(
    ("count", "args", "job_sizes"),
    [
        pytest.param(1, ("--batch-size", "1"), [1], id="one-row-batch-size-1"),
        pytest.param(5, ("--batch-size", "1"), [1, 1, 1, 1, 1], id="five-rows-one-per-job"),
        pytest.param(1001, (), [1, 1000], id="1001-rows-two-jobs"),
        pytest.param(2000, (), [1000, 1000], id="2000-rows-two-full-jobs"),
    ],
)
async def test_batch_size_edges(
    count: int, args: tuple[str, ...], job_sizes: list[int], tmp_path: Path, measure: Measurements
) -> None:
    path = tmp_path / "rows.csv"
    refs = write_rows(path, count, f"bs{count}")
    async with Emulator(corpus_config()) as emu:
        result, report = await ingest_file(emu, path, tmp_path, *args)
        jobs = await emu.jobs()
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    measure("input", "batch sizes: 1 row, 1 per job, 1001 -> 1000 + 1").add(
        runs=1,
        **report_figures(report),
        rows=count,
        duplicates=sum(n - 1 for n in notes.values() if n > 1),
        lost=sum(1 for ref in refs if not notes[ref]),
    )
    assert result.code == 0, result
    assert sorted(j["rowsTotal"] for j in jobs) == job_sizes
    assert sorted(int(r["rows"]) for r in report if r["record"] == "job") == job_sizes
    assert notes == dict.fromkeys(refs, 1)


# -- hypothesis ------------------------------------------------------------------------------------

_OWN = [str(c) for c in CASES]

case_ids = st.one_of(
    st.sampled_from(_OWN).map(lambda v: ("ok", v)),
    st.sampled_from(_OWN).map(lambda v: ("ok", v.replace("-", "").upper())),
    st.just(("server_fail", str(FOREIGN))),
    st.uuids(version=4).map(lambda u: ("server_fail", str(u))),
    st.text(max_size=12).map(lambda v: ("caseId", v)),
    st.integers().map(lambda v: ("caseId", v)),
    st.just(("caseId", None)),
    st.sampled_from(_OWN).map(lambda v: ("ok", "{" + v.upper() + "}")),  # .NET "B" format
    st.sampled_from(_OWN).map(lambda v: ("ok", "urn:uuid:" + v)),
    st.sampled_from(_OWN).map(lambda v: ("caseId", "{" + v.replace("-", "") + "}")),
    st.sampled_from(_OWN).map(lambda v: ("caseId", "urn:uuid:{" + v + "}")),
)
descriptions = st.one_of(
    st.text(min_size=1, max_size=40).map(lambda v: ("ok" if v.strip() else "description", v)),
    st.sampled_from(["", " ", "\t\n", "\u00a0"]).map(lambda v: ("description", v)),
    st.just(("ok", "x" * 10_000)),
    st.just(("description", "y" * 10_001)),
    st.integers().map(lambda v: ("description", v)),
    st.just(("description", None)),
)
event_dates = st.one_of(
    st.just(("ok", None)),
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
    ).map(lambda v: ("ok", v.isoformat())),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 12, 31)).map(
        lambda v: ("eventDate", v.isoformat())  # naive
    ),
    st.just(("future", (datetime.now(UTC) + timedelta(days=3)).isoformat())),
    st.sampled_from(["soon", "2026-02-30T00:00:00Z", "1/2/2026"]).map(lambda v: ("eventDate", v)),
    st.integers().map(lambda v: ("eventDate", v)),
)
types = st.one_of(
    st.just(("ok", None)),
    st.just(("ok", 0)),
    st.integers().filter(lambda v: v != 0).map(lambda v: ("type", v)),
    st.sampled_from(["0", True, 0.0, [0]]).map(lambda v: ("type", v)),
)


@st.composite
def generated_rows(draw: st.DrawFn) -> list[tuple[dict[str, Any], str, set[str]]]:
    """Rows with their fate by an independent reading of the rules: ``valid``, ``server_fail``
    or ``reject`` with the set of fields a client must name."""
    out = []
    for i in range(draw(st.integers(0, 40))):
        (case_kind, case), (desc_kind, desc) = draw(case_ids), draw(descriptions)
        (date_kind, date), (type_kind, kind) = draw(event_dates), draw(types)
        row: dict[str, Any] = {"externalRef": f"h{i}", "description": desc, "caseId": case}
        if date is not None:
            row["eventDate"] = date
        if kind is not None:
            row["type"] = kind
        if case is None:
            del row["caseId"]
        if desc is None:
            del row["description"]
        structural = {k for k in (case_kind, desc_kind, date_kind, type_kind) if k not in (
            "ok", "server_fail", "future"
        )}  # fmt: skip
        if structural:
            out.append((row, "reject", structural))
        elif date_kind == "future":
            out.append((row, "reject", {"eventDate"}))  # only once the row is whole
        else:
            out.append((row, "server_fail" if case_kind == "server_fail" else "valid", set()))
    return out


async def check_generated_rows(
    rows: list[tuple[dict[str, Any], str, set[str]]], batch_size: int
) -> None:
    """Whatever the rows, the client refuses exactly the rows the rules refuse, naming exactly
    the fields at fault; the server never has to refuse a row the client let through (no 400);
    every valid row is stored once, and only those."""
    async with (
        Emulator(corpus_config()) as emu,
        DebituraClient(API_KEY, base_url=emu.url, retry=fast_retry()) as client,
        client.ingest([r for r, _, _ in rows], batch_size=batch_size, polling=POLICY) as results,
    ):
        seen = [r async for r in results]
        summary = results.summary
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
        posts = (await emu.stats())["requests"].get("POST /ingestion-jobs", {})
    assert summary.rows_read == len(rows)
    assert summary.rows_read == summary.rows_rejected + summary.rows_submitted
    assert summary.rows_submitted == summary.rows_succeeded + summary.rows_failed
    assert "400" not in posts, posts
    rejected = {r.first_position: r for r in seen if r.outcome is JobOutcome.REJECTED}
    expected_rejects = {i for i, (_, fate, _) in enumerate(rows) if fate == "reject"}
    assert set(rejected) == expected_rejects
    for position, result in rejected.items():
        assert result.batch_index is None  # refused by the client, never sent
        named = {p.split(":")[0] for p in result.rejected_rows[0].problems}
        assert named == rows[position][2], (rows[position][0], result.rejected_rows)
    for i, (_, fate, _) in enumerate(rows):
        assert notes[f"h{i}"] == (1 if fate == "valid" else 0), (i, rows[i])
    assert summary.rows_succeeded == sum(1 for _, fate, _ in rows if fate == "valid")
    assert summary.rows_failed == sum(1 for _, fate, _ in rows if fate == "server_fail")


_HYPOTHESIS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=25, **_HYPOTHESIS)  # type: ignore[arg-type]
@given(rows=generated_rows(), batch_size=st.integers(1, 12))
async def test_hypothesis_rows_through_the_pipeline(
    rows: list[tuple[dict[str, Any], str, set[str]]], batch_size: int
) -> None:
    await check_generated_rows(rows, batch_size)


@pytest.mark.soak
@settings(max_examples=400, **_HYPOTHESIS)  # type: ignore[arg-type]
@given(rows=generated_rows(), batch_size=st.integers(1, 12))
async def test_hypothesis_rows_through_the_pipeline_soak(
    rows: list[tuple[dict[str, Any], str, set[str]]], batch_size: int
) -> None:
    await check_generated_rows(rows, batch_size)


cells = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"),
    max_size=30,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(st.tuples(cells, cells, cells), max_size=25),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_hypothesis_csv_cells_survive_the_reader(
    records: list[tuple[str, str, str]],
    crlf: bool,
    bom: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Any cell text written by a standard CSV writer (quotes, commas, newlines, any Unicode)
    is read back as written, on the line it starts, whatever the line ends and BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["externalRef", "caseId", "description"])
    writer.writerows(records)
    path = tmp_path_factory.mktemp("csv") / "cells.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode())
    with CsvReader(path) as reader:
        items = list(reader)
    assert not [i for i in items if isinstance(i, InvalidRow)], items
    got = [
        (i.get("externalRef", ""), i.get("caseId", ""), i["description"])
        for i in items
        if isinstance(i, dict)
    ]
    expected = [(ref.strip(), case.strip(), desc) for ref, case, desc in records]
    assert got == expected
    line = 2
    for position, record in enumerate(records):
        assert reader.lines.first_line(position) == line
        line += sum(cell.count("\n") for cell in record) + 1
