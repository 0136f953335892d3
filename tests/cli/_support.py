"""Helpers of the CLI tests: run ``python -m debitura_async.cli`` as a subprocess, write inputs,
read reports, and check the emulator's notes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from debitura_async.emulator import EmulatorConfig, EmulatorProcess, RateLimits

CLI = (sys.executable, "-m", "debitura_async.cli")
CRASH_AFTER_ENV = "DEBITURA_ASYNC_TEST_CRASH_AFTER"
CRASH_BEFORE_ENV = "DEBITURA_ASYNC_TEST_CRASH_BEFORE"
LAUNCHER = (sys.executable, str(Path(__file__).with_name("_launch.py")))
"""The CLI behind a test-only launcher that installs journal crash hooks (see ``_launch.py``)."""
TIME_SCALE = 200.0
HEADER = ("NoteId", "CaseGuid", "CreatedAtUtc", "NoteText")
CRM_MAP = (
    "--map",
    "caseId=CaseGuid",
    "--map",
    "description=NoteText",
    "--map",
    "eventDate=CreatedAtUtc",
    "--map",
    "externalRef=NoteId",
)
_SCRUBBED = (
    "DEBITURA_API_KEY",
    "DEBITURA_BASE_URL",
    CRASH_AFTER_ENV,
    CRASH_BEFORE_ENV,
)


def cli_command(env: Mapping[str, str] | None) -> tuple[str, ...]:
    """``python -m debitura_async.cli``, or the launcher when a crash hook is asked for."""
    if env is not None and (env.get(CRASH_AFTER_ENV) or env.get(CRASH_BEFORE_ENV)):
        return LAUNCHER
    return CLI


def fast_config(**overrides: Any) -> EmulatorConfig:
    """The default latency model 200x faster, no rate limits, a small world."""
    settings: dict[str, Any] = {
        "time_scale": TIME_SCALE,
        "rate_limits": RateLimits.off(),
        "partners": 2,
        "cases_per_partner": 20,
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


def cli_env(emu: EmulatorProcess | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONUNBUFFERED"] = "1"
    if emu is not None:
        env["DEBITURA_API_KEY"] = emu.api_key
        env["DEBITURA_BASE_URL"] = emu.url
    env.update(extra)
    return env


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


async def run_cli(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    limit: float = 60.0,
    cwd: Path | None = None,
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *cli_command(env),
        *(str(a) for a in args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else cli_env(),
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


async def run_cli_killed_after(
    delay: float,
    *args: str | Path,
    env: Mapping[str, str],
    once: Callable[[], bool] | None = None,
) -> int | None:
    """Start the CLI and SIGKILL it after ``delay`` seconds (None: it ended before that),
    counted from when ``once()`` first holds (default: from the start)."""
    proc = await asyncio.create_subprocess_exec(
        *cli_command(env),
        *(str(a) for a in args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(env),
    )
    try:
        while once is not None and not once() and proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.01)
        await asyncio.wait_for(proc.wait(), delay)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        return -int(signal.SIGKILL)
    finally:
        if proc.returncode is None:  # pragma: no cover - cancelled
            proc.kill()
            await proc.wait()
    return None


# -- inputs ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Sample:
    """An input file and what it holds: the line of each data record and which refs are valid."""

    path: Path
    valid_refs: tuple[str, ...]
    invalid_refs: tuple[str, ...]
    data_lines: tuple[int, ...]
    """Line numbers of every record (valid or not), first line of each."""
    bad_lines: tuple[int, ...]
    """Lines the CLI must reject."""
    failing_refs: tuple[str, ...] = ()
    """Rows sent and refused by the server (a case of another partner): failed, not stored."""


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_crm_csv(
    path: Path,
    case_ids: Sequence[uuid.UUID],
    count: int,
    *,
    prefix: str = "N",
    bad: Mapping[int, bytes] | None = None,
    invalid: Mapping[int, Mapping[str, str]] | None = None,
    failing: Mapping[int, Mapping[str, str]] | None = None,
    multiline_every: int = 0,
    blank_after: Iterable[int] = (),
    bom: bool = False,
    crlf: bool = False,
) -> Sample:
    """A CRM-style CSV (columns NoteId, CaseGuid, CreatedAtUtc, NoteText).

    ``bad[i]`` replaces record i with raw bytes (a malformed line, rejected by the reader);
    ``invalid[i]`` overrides cells of record i (rejected by validation); ``failing[i]`` too, for
    rows the server will refuse. Refs are ``prefix-i``.
    """
    eol = b"\r\n" if crlf else b"\n"
    bad = dict(bad or {})
    invalid = dict(invalid or {})
    failing = dict(failing or {})
    failed: list[str] = []
    blank = set(blank_after)
    out = bytearray(b"\xef\xbb\xbf" if bom else b"")
    out += ",".join(HEADER).encode() + eol
    line = 2
    valid: list[str] = []
    rejected: list[str] = []
    data_lines: list[int] = []
    bad_lines: list[int] = []
    for i in range(count):
        ref = f"{prefix}-{i}"
        text = f"Note {i}: called the debtor, promised payment"
        if multiline_every and i % multiline_every == 1:
            text = f'Note {i}:\nline two, with a comma\nand "quotes"'
        cells = {
            "NoteId": ref,
            "CaseGuid": str(case_ids[i % len(case_ids)]),
            "CreatedAtUtc": "2026-03-01T10:00:00Z",
            "NoteText": text,
        }
        data_lines.append(line)
        if i in bad:
            record = bad[i]
            rejected.append(ref)
            bad_lines.append(line)
        else:
            if i in invalid:
                cells.update(invalid[i])
                rejected.append(ref)
                bad_lines.append(line)
            elif i in failing:
                cells.update(failing[i])
                failed.append(ref)
            else:
                valid.append(ref)
            record = ",".join(_csv_cell(cells[h]) for h in HEADER).encode()
        out += record + eol
        line += record.count(b"\n") + 1
        if i in blank:
            out += eol
            line += 1
    path.write_bytes(bytes(out))
    return Sample(
        path=path,
        valid_refs=tuple(valid),
        invalid_refs=tuple(rejected),
        data_lines=tuple(data_lines),
        bad_lines=tuple(bad_lines),
        failing_refs=tuple(failed),
    )


def write_jsonl(
    path: Path,
    case_ids: Sequence[uuid.UUID],
    count: int,
    *,
    prefix: str = "J",
    bad: Mapping[int, bytes] | None = None,
) -> Sample:
    bad = dict(bad or {})
    out = bytearray()
    valid: list[str] = []
    rejected: list[str] = []
    lines: list[int] = []
    for i in range(count):
        ref = f"{prefix}-{i}"
        lines.append(i + 1)
        if i in bad:
            out += bad[i] + b"\n"
            rejected.append(ref)
            continue
        row = {
            "type": 0,
            "caseId": str(case_ids[i % len(case_ids)]),
            "description": f"JSONL note {i}",
            "externalRef": ref,
        }
        out += orjson.dumps(row) + b"\n"
        valid.append(ref)
    path.write_bytes(bytes(out))
    return Sample(
        path=path,
        valid_refs=tuple(valid),
        invalid_refs=tuple(rejected),
        data_lines=tuple(lines),
        bad_lines=tuple(i + 1 for i in bad),
    )


# -- checks ---------------------------------------------------------------------------------------


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    """Files directly in ``directory`` whose bytes contain ``needle``."""
    return [p for p in directory.iterdir() if p.is_file() and needle in p.read_bytes()]


def read_report(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _int(value: Any) -> int:
    return int(value)


def assert_report_covers(records: list[dict[str, Any]], sample: Sample) -> None:
    """Every input record is in exactly one job's line range or is one rejected line."""
    rejected = [_int(r["first_line"]) for r in records if r["record"] == "rejected"]
    assert sorted(rejected) == sorted(sample.bad_lines), (rejected, sample.bad_lines)
    jobs = [r for r in records if r["record"] == "job"]
    assert all(r["outcome"] in ("completed", "completed_with_errors") for r in jobs), jobs
    ranges = sorted((_int(r["first_line"]), _int(r["last_line"])) for r in jobs)
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert last < first, f"overlapping job ranges: {ranges}"
    for line in sample.data_lines:
        hits = sum(1 for first, last in ranges if first <= line <= last)
        if line in sample.bad_lines:
            continue
        assert hits == 1, f"line {line} is in {hits} job ranges"
    assert sum(_int(r["rows"]) for r in jobs) == len(sample.valid_refs) + len(sample.failing_refs)
    assert sum(_int(r["failed"]) for r in jobs) == len(sample.failing_refs)
    batches = [r["batch"] for r in jobs]
    assert len(batches) == len(set(batches)), f"a batch reported twice: {batches}"


async def assert_notes_exactly_once(emu: EmulatorProcess, sample: Sample) -> None:
    notes = await emu.notes()
    counts = Counter(str(n["externalRef"]) for n in notes)
    duplicated = {ref: n for ref, n in counts.items() if n > 1}
    assert not duplicated, f"notes stored more than once: {duplicated}"
    missing = [ref for ref in sample.valid_refs if counts[ref] != 1]
    assert not missing, f"{len(missing)} valid notes missing, e.g. {missing[:5]}"
    extra = [ref for ref in (*sample.invalid_refs, *sample.failing_refs) if counts[ref]]
    assert not extra, f"invalid rows were stored: {extra}"
