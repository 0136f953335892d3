"""P4 — peak memory streaming 1M and 10M rows, from a generator and from a CSV file.

Each case runs in a fresh child process (``python -m benchmarks.p4_memory``, this module), which
reports its own peak resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``) when done, plus its
RSS right after the imports and samples taken along the way. All cases share one zero-latency
emulator process (rate limits off, ``store_notes=False``), so the server's memory is not counted.

* generator: rows built lazily by :func:`benchmarks._common.bench_rows`;
* CSV: a file written to a temporary directory before the clock starts (same rows: ``caseId``,
  ``description``, ``eventDate``, ``externalRef``; about 150 bytes a row), read by the CLI's
  streaming reader ``debitura_async._input.CsvReader`` (or ``csv.DictReader`` if that module is
  missing; the JSON says which).

Client: ``ingest()`` defaults (``max_jobs_in_flight=8``), ``budget=None`` and zero-latency
polling. (With P3's ``max_jobs_in_flight=32`` the peak is a few MB higher: more batches alive.)
The baseline of each 10M figure is the 1M figure of the same source in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._common import EVENT_DATE, Check, Scenario

__all__ = ["run", "write_csv"]

TARGET_PEAK_MB = 100.0
TARGET_GROWTH = 1.1
CHILD_TIMEOUT = 900.0
_ROOT = Path(__file__).resolve().parent.parent
_HEADER = "caseId,description,eventDate,externalRef\n"
_EVENT_DATE_TEXT = EVENT_DATE.isoformat().replace("+00:00", "Z")


# -- CSV input -------------------------------------------------------------------------------


def _csv_lines(case_ids: Sequence[str], start: int, stop: int) -> Iterator[str]:
    cases = len(case_ids)
    for i in range(start, stop):
        # Same text as bench_rows(); no comma, quote or newline in any field, so no quoting.
        yield (
            f"{case_ids[i % cases]},Called the debtor about invoice {i}; payment of the balance "
            f"promised by Friday.,{_EVENT_DATE_TEXT},CRM-NOTE-{i}\n"
        )


def write_csv(path: Path, case_ids: Sequence[str], rows: int, *, chunk: int = 50_000) -> int:
    """Write ``rows`` benchmark rows as CSV; returns the file size in bytes."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(_HEADER)
        for start in range(0, rows, chunk):
            out.write("".join(_csv_lines(case_ids, start, min(rows, start + chunk))))
    return path.stat().st_size


def _bytes_per_row(case_ids: Sequence[str]) -> float:
    sample = list(_csv_lines(case_ids, 1_000_000, 1_001_000))
    return sum(len(line) for line in sample) / len(sample)


# -- the child process -----------------------------------------------------------------------


def _rss_kb() -> int:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _vmhwm_kb() -> int | None:
    """Peak RSS of this process image (``VmHWM``), a cross-check of ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _dict_reader(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as source:
        for record in csv.DictReader(source):
            yield {key: value for key, value in record.items() if value}


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    from debitura_async import DebituraClient  # noqa: PLC0415 - the child's own import cost

    from ._common import ZERO_LATENCY_POLLING, bench_rows  # noqa: PLC0415

    rows = int(spec["rows"])
    case_ids = [uuid.UUID(c) for c in spec["caseIds"]]
    reader_name = "generator (bench_rows)"
    source: Iterable[Any]
    closer: contextlib.ExitStack = contextlib.ExitStack()
    if spec["source"] == "csv":
        path = Path(spec["csvPath"])
        try:
            from debitura_async._input import CsvReader  # noqa: PLC0415 - optional module

            source = closer.enter_context(CsvReader(path))
            reader_name = "debitura_async._input.CsvReader"
        except ImportError:
            source = _dict_reader(path)
            reader_name = "csv.DictReader"
    else:
        source = bench_rows(case_ids, rows)
    samples: list[tuple[int, int]] = []
    start_kb = _rss_kb()
    start_peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def sample(progress: Any) -> None:
        samples.append((int(progress.rows_read), _rss_kb()))

    with closer:
        async with DebituraClient(spec["apiKey"], base_url=spec["url"], budget=None) as client:
            started = time.perf_counter()
            async with client.ingest(
                source,
                polling=ZERO_LATENCY_POLLING,
                on_progress=sample,
                progress_interval=1.0,
            ) as results:
                async for _ in results:
                    pass
            seconds = time.perf_counter() - started
    summary = results.summary
    return {
        "source": spec["source"],
        "rows": rows,
        "reader": reader_name,
        "rows_read": summary.rows_read,
        "rows_succeeded": summary.rows_succeeded,
        "rows_rejected": summary.rows_rejected,
        "requests": summary.requests,
        "seconds": seconds,
        "rows_per_s": summary.rows_read / seconds if seconds > 0 else 0.0,
        "rss_start_kb": start_kb,
        "peak_before_ingest_kb": start_peak_kb,
        "rss_end_kb": _rss_kb(),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vmhwm_kb": _vmhwm_kb(),
        "rss_samples": samples,
    }


def child_main() -> int:
    spec = json.loads(sys.stdin.readline())
    result = asyncio.run(_child(spec))
    print(json.dumps(result), flush=True)
    return 0


# -- the parent ------------------------------------------------------------------------------


async def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    # Through a shell that forks the child (it has a command after it, so it cannot exec it):
    # Linux carries ru_maxrss across exec, and a process spawned straight from this one would
    # start with *this* process's RSS as its peak. The child gets its own process group, killed
    # as a whole if anything goes wrong.
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        '"$0" -m benchmarks.p4_memory; exit $?',
        sys.executable,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=_ROOT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(
            proc.communicate(json.dumps(spec).encode() + b"\n"), CHILD_TIMEOUT
        )
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(
            f"P4 child ({spec['source']}, {spec['rows']} rows) exited {proc.returncode}"
        )
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _mb(kb: float) -> float:
    return kb / 1024.0


async def run(*, quick: bool) -> Scenario:
    from debitura_async.emulator import (  # noqa: PLC0415 - keep the child's imports lean
        EmulatorConfig,
        EmulatorProcess,
        LatencyModel,
        RateLimits,
    )

    small, large = (5_000, 50_000) if quick else (1_000_000, 10_000_000)
    scenario = Scenario(
        key="P4",
        title="peak memory streaming rows",
        params={
            "counts": [small, large],
            "sources": ["generator", "csv"],
            "latency": "LatencyModel.zero(), RateLimits.off(), store_notes=False",
            "client": "ingest() defaults, budget=None, ZERO_LATENCY_POLLING",
            "measure": "ru_maxrss of a fresh child process per case",
        },
    )
    config = EmulatorConfig(
        seed=4, latency=LatencyModel.zero(), rate_limits=RateLimits.off(), store_notes=False
    )
    with tempfile.TemporaryDirectory(prefix="debitura-bench-") as tmp:
        async with EmulatorProcess(config) as emu:
            case_ids = [str(c) for c in emu.case_ids]
            csv_counts = [small, large]
            per_row = _bytes_per_row(case_ids)
            free = shutil.disk_usage(tmp).free
            needed = per_row * (small + large) * 1.05 + 200e6
            if needed > free:
                fitting = max(small, int((free - 200e6) / per_row / 1.05) - small)
                scenario.notes.append(
                    f"only {free / 1e9:.1f} GB free in {tmp}: the large CSV case uses "
                    f"{fitting:,} rows instead of {large:,}"
                )
                csv_counts = [small, fitting]
            files: dict[int, Path] = {}
            sizes: dict[str, int] = {}
            generate_started = time.monotonic()
            for count in csv_counts:
                files[count] = Path(tmp) / f"rows-{count}.csv"
                sizes[str(count)] = write_csv(files[count], case_ids, count)
            generate_seconds = time.monotonic() - generate_started
            cases: dict[str, dict[str, Any]] = {}
            base = {"url": emu.url, "apiKey": emu.api_key, "caseIds": case_ids}
            for count in (small, large):
                cases[f"generator_{count}"] = await _run_child(
                    {**base, "source": "generator", "rows": count}
                )
            for count in csv_counts:
                cases[f"csv_{count}"] = await _run_child(
                    {**base, "source": "csv", "rows": count, "csvPath": str(files[count])}
                )
    scenario.figures = {
        "cases": cases,
        "csv_bytes": sizes,
        "csv_generate_seconds": generate_seconds,
    }
    checks: list[Check] = []
    for source, counts in (("generator", [small, large]), ("csv", csv_counts)):
        first, second = (cases[f"{source}_{n}"] for n in counts)
        for case in (first, second):
            if case["rows_succeeded"] != case["rows"]:
                scenario.notes.append(
                    f"{source} {case['rows']:,}: {case['rows_succeeded']:,} rows succeeded"
                )
        first_mb, second_mb = _mb(first["maxrss_kb"]), _mb(second["maxrss_kb"])
        growth = second_mb / first_mb
        checks.append(
            Check(
                metric=f"peak RSS, {source}, {counts[0]:,} rows",
                unit="MB",
                value=first_mb,
                target=f"<= {TARGET_PEAK_MB:g} MB",
                passed=first_mb <= TARGET_PEAK_MB,
            )
        )
        checks.append(
            Check(
                metric=f"peak RSS, {source}, {counts[1]:,} rows",
                unit="MB",
                value=second_mb,
                baseline=first_mb,
                baseline_label=f"{counts[0]:,} rows",
                ratio=growth,
                target=f"<= {TARGET_PEAK_MB:g} MB, <= {TARGET_GROWTH}x",
                passed=second_mb <= TARGET_PEAK_MB and growth <= TARGET_GROWTH,
            )
        )
        checks.append(
            Check(
                metric=f"rows/s, {source}, {counts[1]:,} rows",
                unit="rows/s",
                value=second["rows_per_s"],
                note=second["reader"],
            )
        )
    scenario.checks = checks
    return scenario


if __name__ == "__main__":
    sys.exit(child_main())
