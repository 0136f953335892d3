"""The committed sample exports (``_samples.py``): each read end to end by the reader, and each
migrated through ``client.ingest`` against the real emulator over loopback (the demo world),
with every valid note stored exactly once and every bad line rejected naming its line."""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from debitura_async import DebituraClient
from debitura_async._input import (
    CsvReader,
    InputEncodingError,
    InputOptions,
    Item,
    detect_format,
    open_reader,
)
from debitura_async._input_stop import FailureWatch, UniformFailureError, row_check, watch_input
from debitura_async._polling import PollPolicy
from debitura_async.emulator import Emulator, EmulatorConfig, LatencyModel, World
from debitura_async.models import InvalidRow, JobOutcome, UnresolvedCaseRow

from ._samples import API_KEY, REFERENCES, SAMPLES, WORLD_PATH, Sample

POLICY = PollPolicy().scaled(1000.0)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
IDS = [s.name for s in SAMPLES]


def open_sample(sample: Sample, **options: Any) -> Any:
    return open_reader(
        sample.path,
        detect_format(sample.path),
        sample.mapping,
        InputOptions(**{**sample.options, **options}),
    )


def resolve(items: Iterator[Item]) -> Iterator[Any]:
    """A stand-in for the pipeline's reference resolution: the samples' references, looked up
    in a table (unknown ones are left unresolved, and the pipeline rejects them)."""
    for item in items:
        if isinstance(item, UnresolvedCaseRow) and item.reference in REFERENCES:
            yield item.with_case_id(REFERENCES[item.reference])
        else:
            yield item


def test_samples_are_current() -> None:
    """The committed files are exactly what ``_samples.py`` makes (rewrite: ``python -m
    tests.input._samples``)."""
    for sample in SAMPLES:
        assert sample.path.read_bytes() == sample.content, f"{sample.name} is stale"
    assert len({s.name for s in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_sample_is_read_whole(sample: Sample) -> None:
    check = row_check(now=NOW, skew=timedelta(seconds=30))
    refs: list[str] = []
    rejected: dict[int, str] = {}
    good: list[str] = []
    with open_sample(sample) as reader:
        for position, item in enumerate(resolve(iter(reader))):
            line = reader.lines.first_line(position)
            if isinstance(item, UnresolvedCaseRow):  # left by resolve(): the pipeline refuses it
                refs.append(item.reference)
                problems = [f"caseReference: {item.reference!r} was not resolved"]
            else:
                problems = check(item, position)
            if problems:
                rejected[line] = " | ".join(problems)
            else:
                good.append(str(item["externalRef"]))
                uuid.UUID(item["caseId"])  # hyphenated on the way to the wire
                assert item["description"].strip()
        assert reader.bytes_read == reader.size
    assert sorted(rejected) == sorted(sample.rejected), rejected
    for line, text in sample.rejected.items():
        assert text in rejected[line], (line, rejected[line])
    assert sorted(good) == sorted((*sample.stored, *sample.failed))
    unresolved = [r for r in sample.references if r not in REFERENCES]
    assert refs == unresolved


def test_semicolon_sample_is_sniffed_and_utf16_by_its_bom() -> None:
    by_name = {s.name: s for s in SAMPLES}
    with open_sample(by_name["excel-eu-semicolon.csv"]) as reader:
        assert isinstance(reader, CsvReader)
        assert (reader.delimiter, reader.encoding) == (";", "utf-8")
        assert reader.ignored_columns == ("Beløb",)
        first = next(iter(reader))
        assert isinstance(first, dict)
        assert first["description"] == "Betaling modtaget: 1,50 kr"
    with open_sample(by_name["excel-unicode-text.tsv"]) as reader:
        assert (reader.delimiter, reader.encoding) == ("\t", "utf-16-le")
        items = list(reader)
        assert "📞 — 債務者" in items[0]["description"]
        assert items[26]["description"] == 'quoted\ttab, and a "quote"'


def test_cp1252_sample_without_the_encoding_fails_before_any_row() -> None:
    sample = next(s for s in SAMPLES if s.name == "legacy-cp1252.csv")
    with pytest.raises(InputEncodingError) as info:
        open_sample(sample, encoding=None)
    text = str(info.value)
    assert "29 lines are not valid UTF-8, the first is line 2 (byte 0xc5 at column 78)" in text
    assert "pass --encoding cp1252" in text
    assert "nothing was read or sent" in text


def test_cp1252_sample_from_a_pipe_is_rejected_line_by_line() -> None:
    """A stream cannot be scanned first: its undecodable lines are rejected rows, and the
    watch stops the run once the first rows all fail alike."""
    sample = next(s for s in SAMPLES if s.name == "legacy-cp1252.csv")
    pipe = io.BufferedReader(_Pipe(sample.content))
    reader = CsvReader(pipe, sample.mapping)
    assert not reader.seekable
    check = row_check(now=NOW, skew=timedelta(seconds=30))
    watch = FailureWatch(threshold=10, columns=reader.source_columns)
    with pytest.raises(UniformFailureError) as info:
        list(watch_input(reader, check, watch, reader.lines))
    assert "lines 2-11" in str(info.value)
    assert "not valid UTF-8" in str(info.value)
    assert "--encoding" in info.value.hint
    assert not pipe.closed  # a stream given is the caller's to close


def test_naive_dates_without_assume_timezone_stop_early_naming_the_option() -> None:
    sample = next(s for s in SAMPLES if s.name == "naive-utc-dates.csv")
    with open_sample(sample, assume_timezone=None) as reader:
        check = row_check(now=NOW, skew=timedelta(seconds=30))
        watch = FailureWatch(columns=reader.source_columns)
        with pytest.raises(UniformFailureError) as info:
            list(watch_input(reader, check, watch, reader.lines))
    error = info.value
    assert (error.rows, error.first_line, error.last_line) == (25, 2, 26)
    assert "line 2: eventDate (column 'Created Date (UTC)'): 2024-01-02T01:00:00 has no" in str(
        error
    )
    assert error.hint == "the column 'Created Date (UTC)' says UTC: pass --assume-timezone UTC"


class _Pipe(io.RawIOBase):
    """A non-seekable binary stream (like a pipe on standard input)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 7))  # short reads, as pipes give
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- against the emulator ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
async def test_sample_is_migrated_exactly_once(sample: Sample) -> None:
    config = EmulatorConfig(latency=LatencyModel.zero(), world=World.from_file(WORLD_PATH))
    rejected: dict[int, str] = {}
    async with Emulator(config) as emu:
        async with DebituraClient(API_KEY, base_url=emu.url) as client:
            with open_sample(sample) as reader:
                ingestion = client.ingest(resolve(iter(reader)), batch_size=7, polling=POLICY)
                async with ingestion as results:
                    async for result in results:
                        for row in result.rejected_rows:
                            line = reader.lines.first_line(row.position)
                            rejected[line] = " | ".join(row.problems)
                summary = ingestion.summary
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert sorted(rejected) == sorted(sample.rejected), rejected
    for line, text in sample.rejected.items():
        assert text in rejected[line], (line, rejected[line])
    assert notes == Counter(sample.stored)  # every valid note exactly once, nothing else
    assert summary.rows_succeeded == len(sample.stored)
    assert summary.rows_failed == len(sample.failed)
    assert summary.rows_rejected == len(sample.rejected)
    assert summary.jobs.get(JobOutcome.UNRESOLVED, 0) == 0


@pytest.mark.anyio
async def test_stdin_stream_is_migrated_like_the_file() -> None:
    """``-`` reads the stream it is given (a non-seekable one here), as it reads the file."""
    sample = next(s for s in SAMPLES if s.name == "excel-unicode-text.tsv")
    config = EmulatorConfig(latency=LatencyModel.zero(), world=World.from_file(WORLD_PATH))
    async with Emulator(config) as emu:
        async with DebituraClient(API_KEY, base_url=emu.url) as client:
            pipe = io.BufferedReader(_Pipe(sample.content))
            with open_reader("-", "csv", options=InputOptions(), stdin=pipe) as reader:
                assert reader.name == "<stdin>"
                assert reader.size == 0
                summary = await client.ingest_all(reader, polling=POLICY)
        notes = Counter(str(n["externalRef"]) for n in await emu.notes())
    assert notes == Counter(sample.stored)
    assert summary.rows_rejected == 1


def test_invalid_rows_name_their_lines() -> None:
    for sample in SAMPLES:
        with open_sample(sample) as reader:
            for item in reader:
                if isinstance(item, InvalidRow):
                    assert item.problems[0].startswith("line"), item


@pytest.mark.anyio
async def test_the_early_stop_ends_a_migration_before_anything_is_sent() -> None:
    """The watch wrapped around the reader, in ``client.ingest_all``: the error comes out of the
    run as it is (the CLI's exit 2), and the emulator saw no ingestion request."""
    sample = next(s for s in SAMPLES if s.name == "naive-utc-dates.csv")
    config = EmulatorConfig(latency=LatencyModel.zero(), world=World.from_file(WORLD_PATH))
    async with Emulator(config) as emu:
        async with DebituraClient(API_KEY, base_url=emu.url) as client:
            with open_sample(sample, assume_timezone=None) as reader:
                check = row_check(now=datetime.now(UTC), skew=client.clock_skew)
                watch = FailureWatch(columns=reader.source_columns)
                rows = watch_input(reader, check, watch, reader.lines)
                with pytest.raises(UniformFailureError, match="--assume-timezone UTC"):
                    await client.ingest_all(rows, polling=POLICY)
        requests = (await emu.stats())["requests"]
    assert requests.get("POST /ingestion-jobs") is None
    assert await emu.note_count() == 0
