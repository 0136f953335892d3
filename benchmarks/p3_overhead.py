"""P3 — client overhead: rows/s through ``client.ingest()`` against a raw aiohttp + orjson loop.

Every run goes to one zero-latency emulator (rate limits off, notes not stored) in its own
process, with the same batch size (1000) and the same number of concurrent POSTs (4, the
pipeline's ``max_concurrent_submits`` default), on a ``TCPConnector(limit=64)`` like the client's.

* **Baseline**: the request bodies are encoded *before* the clock starts; 4 tasks POST them with
  the same headers the client sends (API key, Content-Type, Accept, a fresh Idempotency-Key, so
  the server does the same work) and parse each 202 with orjson. It does **not** poll.
* **Client**, three inputs of the same rows, each through ``client.ingest(...)``, which
  validates, encodes, derives Idempotency-Keys, POSTs and polls each job (one GET per job):

  - ``dict``: plain mappings as JSON gives them (``caseId`` and ``eventDate`` as text), built
    before the clock starts — the documented, most common input;
  - ``typed``: ``IngestionJobRow`` objects built before the clock starts;
  - ``csv``: a CSV file written before the clock starts, read by the CLI's reader
    (``_input.open_reader(path, "csv")``) inside the clock, i.e. the CLI's path on a CSV file.

  ``budget=None`` (the emulator does not limit either) and ``max_jobs_in_flight=32`` with
  :data:`~benchmarks._common.ZERO_LATENCY_POLLING`, so that neither the budget nor the poll
  schedule but the client's own work is what limits it.

Runs alternate (baseline, dict, typed, csv, baseline, ...) ``repeats`` times; the ratios are of
medians measured side by side in one run, so a machine's load moves both sides alike.

The emulator's own CPU (``/proc/<pid>/stat``, Linux) is read around every run: the baseline moves
at the server's pace, and on this machine the same baseline work has cost the server from 2.45 to
5.35 us a row within one run (2026-12-01: each core's speed flips between two levels, seconds at
a time, from outside the machine). The spread is reported, so that a ratio can be read against
it, and the medians are of 9 repetitions (5 gave ratios that moved by a tenth between runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from debitura_async import DebituraClient, IngestionJobRow
from debitura_async._fast import wire_of_mapping, wire_of_row
from debitura_async._fast_chunk import wires_of_chunk
from debitura_async._fast_columns import encode_columns
from debitura_async._input import open_reader
from debitura_async._input_columns import ColumnChunk, CsvItems
from debitura_async._reading import CHUNK, COLUMN_CHUNK
from debitura_async._validate import item_problems, plainly_valid
from debitura_async._wire import encode_rows
from debitura_async.emulator import EmulatorConfig, EmulatorProcess, LatencyModel, RateLimits

from ._common import (
    ZERO_LATENCY_POLLING,
    Check,
    Scenario,
    bench_rows,
    median,
    retry_policy,
    wire_row,
)
from .p4_memory import write_csv

__all__ = ["run"]

BATCH_SIZE = 1000
CONCURRENT_POSTS = 4
TARGET_RATIO = 0.8
INPUTS = ("dict", "typed", "csv")
"""The client's inputs, in the order they run after each baseline run."""

T = TypeVar("T")

Source = Callable[[contextlib.ExitStack], Iterable[Any]]
"""Makes one run's input (a CSV reader is opened, and closed by the stack, inside the clock)."""


async def _baseline(url: str, api_key: str, bodies: Sequence[bytes]) -> tuple[float, float]:
    """Seconds (wall, and CPU of this process) to POST every pre-encoded body,
    ``CONCURRENT_POSTS`` at a time."""
    keys = [str(uuid.uuid4()) for _ in bodies]
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "XApiKey": api_key,
    }
    pending = iter(range(len(bodies)))
    job_ids: list[str] = []
    target = url + "/ingestion-jobs"
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in pending:
                async with session.post(
                    target, data=bodies[i], headers={**headers, "Idempotency-Key": keys[i]}
                ) as response:
                    raw = await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"baseline POST answered {response.status}: {raw!r}")
                    job_ids.append(orjson.loads(raw)["jobId"])  # read it as a client would

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENT_POSTS)))
        return time.perf_counter() - started, time.process_time() - cpu


def _server_cpu(pid: int) -> float | None:
    """Seconds of CPU (user + system) process ``pid`` has used so far (None off Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_row_us(action: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    action()
    return 1e6 * (time.perf_counter() - started) / count


def _cpu_per_row(
    rows: Sequence[IngestionJobRow], dicts: Sequence[dict[str, Any]], csv_path: Path
) -> dict[str, float]:
    """Microseconds per row of the pipeline's per-row steps, each timed alone (no I/O)."""
    now = datetime.now(UTC)
    skew = timedelta(seconds=5)
    latest = now + skew
    count = len(rows)
    known: set[str] = set()  # the pipeline's cache of canonical case ids, as in a run
    wires = [w for w in (wire_of_mapping(d, latest) for d in dicts) if w is not None]

    def read_csv() -> None:
        with open_reader(csv_path, "csv") as reader:
            for _ in reader:
                pass

    def csv_columns() -> None:
        """The pipeline's CSV path without I/O: blocks as columns, checked and encoded."""
        known_ids: set[str] = set()
        with open_reader(csv_path, "csv") as reader:
            items = iter(reader)
            if not isinstance(items, CsvItems):  # pragma: no cover - a CSV reader gives one
                raise TypeError("a CSV reader's items are CsvItems")
            while taken := items.take(COLUMN_CHUNK, item_limit=CHUNK):
                if isinstance(taken, ColumnChunk):
                    encode_columns(taken, latest, known_ids)
                else:
                    wires = wires_of_chunk(taken, latest, known_ids)
                    encode_rows(wires if wires is not None else [])

    return {
        "slow_dict_validate_us_per_row": _per_row_us(
            lambda: [item_problems(d, i, now=now, skew=skew) for i, d in enumerate(dicts)],
            count,
        ),
        "fast_dict_validate_us_per_row": _per_row_us(
            lambda: [wire_of_mapping(d, latest, known) for d in dicts], count
        ),
        "chunk_dict_validate_us_per_row": _per_row_us(
            lambda: [
                wires_of_chunk(dicts[i : i + CHUNK], latest, known) for i in range(0, count, CHUNK)
            ],
            count,
        ),
        "fast_typed_validate_us_per_row": _per_row_us(
            lambda: [plainly_valid(r, latest) for r in rows], count
        ),
        "fast_typed_wire_us_per_row": _per_row_us(  # the chunk path's check + wire dict
            lambda: [wire_of_row(r, latest) for r in rows], count
        ),
        "encode_us_per_row": _per_row_us(
            lambda: [encode_rows(wires[i : i + BATCH_SIZE]) for i in range(0, count, BATCH_SIZE)],
            count,
        ),
        "csv_read_us_per_row": _per_row_us(read_csv, count),
        "csv_columns_us_per_row": _per_row_us(csv_columns, count),
    }


async def _client(url: str, api_key: str, source: Source, count: int) -> dict[str, Any]:
    async with DebituraClient(api_key, base_url=url, budget=None, retry=retry_policy()) as client:
        started, cpu = time.perf_counter(), time.process_time()
        with contextlib.ExitStack() as stack:
            async with client.ingest(
                source(stack),
                batch_size=BATCH_SIZE,
                max_concurrent_submits=CONCURRENT_POSTS,
                max_jobs_in_flight=32,
                polling=ZERO_LATENCY_POLLING,
            ) as results:
                async for _ in results:
                    pass
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    summary = results.summary
    if summary.rows_succeeded != count:
        raise RuntimeError(f"client run lost rows: {summary}")
    return {"seconds": seconds, "cpu": cpu, "posts": summary.posts, "polls": summary.polls}


CLI = Path(sys.executable).with_name("debitura-async")


async def _cli(url: str, api_key: str, csv_path: Path) -> float:
    """Wall seconds of the real ``debitura-async ingest`` command on the CSV file (a subprocess:
    its start-up is included), with no journal and polling scaled for a zero-latency server."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(CLI),
        "ingest",
        str(csv_path),
        "--no-journal",
        "--progress",
        "off",
        "--time-scale",
        "1000",
        "--allow-insecure-http",
        "--base-url",
        url,
        "--api-key",
        api_key,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the CLI exited {proc.returncode}: {err.decode()[-500:]}")
    return time.perf_counter() - started


def _check(label: str, rate: float, baseline_rate: float, repeats: int) -> Check:
    ratio = rate / baseline_rate
    return Check(
        metric=f"throughput, {label}",
        unit="rows/s",
        value=rate,
        baseline=baseline_rate,
        baseline_label="raw aiohttp",
        ratio=ratio,
        target=f">= {TARGET_RATIO}x",
        passed=ratio >= TARGET_RATIO,
        note=f"median of {repeats}",
    )


async def run(*, quick: bool) -> Scenario:
    rows_count = 5_000 if quick else 200_000
    repeats = 1 if quick else 9
    scenario = Scenario(
        key="P3",
        title="client overhead against raw aiohttp",
        params={
            "rows": rows_count,
            "repeats": repeats,
            "batch_size": BATCH_SIZE,
            "concurrent_posts": CONCURRENT_POSTS,
            "inputs": list(INPUTS),
            "latency": "LatencyModel.zero(), RateLimits.off(), store_notes=False",
            "client": "budget=None, max_jobs_in_flight=32, ZERO_LATENCY_POLLING",
            "baseline": "pre-encoded bodies, aiohttp + orjson, no polling",
        },
    )
    measured = await _measure(rows_count, repeats)
    _report(scenario, measured, rows_count, repeats)
    return scenario


async def _on_server(pid: int, run: Awaitable[T]) -> tuple[T, float | None]:
    """``run``'s result and the seconds of CPU the emulator (process ``pid``) spent meanwhile."""
    before = _server_cpu(pid)
    result = await run
    after = _server_cpu(pid)
    return result, None if before is None or after is None else after - before


async def _measure(rows_count: int, repeats: int) -> dict[str, Any]:
    """Every run, side by side in one emulator: the baseline, the three inputs, the CLI."""
    config = EmulatorConfig(
        seed=3, latency=LatencyModel.zero(), rate_limits=RateLimits.off(), store_notes=False
    )
    with tempfile.TemporaryDirectory(prefix="debitura-p3-") as tmp:
        async with EmulatorProcess(config) as emu:
            rows = list(bench_rows(emu.case_ids, rows_count))
            dicts = [wire_row(r) for r in rows]  # as JSON gives them: ids and dates as text
            csv_path = Path(tmp) / "rows.csv"
            write_csv(csv_path, [str(c) for c in emu.case_ids], rows_count)
            bodies = [
                orjson.dumps({"rows": dicts[i : i + BATCH_SIZE]})
                for i in range(0, rows_count, BATCH_SIZE)
            ]
            sources: dict[str, Source] = {
                "dict": lambda _: dicts,
                "typed": lambda _: rows,
                "csv": lambda stack: stack.enter_context(open_reader(csv_path, "csv")),
            }
            baseline_s: list[float] = []
            baseline_cpu: list[float] = []
            baseline_server: list[float | None] = []
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in INPUTS}
            for _ in range(repeats):
                (wall, cpu_s), server = await _on_server(
                    emu.pid, _baseline(emu.url, emu.api_key, bodies)
                )
                baseline_s.append(wall)
                baseline_cpu.append(cpu_s)
                baseline_server.append(server)
                for name in INPUTS:
                    result, server = await _on_server(
                        emu.pid, _client(emu.url, emu.api_key, sources[name], rows_count)
                    )
                    runs[name].append({**result, "server_cpu": server})
            cli_s: list[float] = []
            if CLI.exists():  # the real command, once per repetition (informational)
                for _ in range(repeats):
                    cli_s.append(await _cli(emu.url, emu.api_key, csv_path))
            cpu = _cpu_per_row(rows, dicts, csv_path)
    return {
        "baseline_s": baseline_s,
        "baseline_cpu": baseline_cpu,
        "baseline_server_cpu": baseline_server,
        "requests": len(bodies),
        "runs": runs,
        "cli_s": cli_s,
        "cpu": cpu,
    }


def _report(scenario: Scenario, measured: dict[str, Any], rows_count: int, repeats: int) -> None:
    """The figures, checks and notes of the measured runs."""
    baseline_s, runs, cpu = measured["baseline_s"], measured["runs"], measured["cpu"]
    baseline_rate = rows_count / median(baseline_s)
    seconds = {name: [r["seconds"] for r in runs[name]] for name in INPUTS}
    rates = {name: rows_count / median(seconds[name]) for name in INPUTS}
    scenario.figures = {
        "rows": rows_count,
        "baseline_seconds": baseline_s,
        "baseline_rows_per_s": [rows_count / s for s in baseline_s],
        "median_baseline_rows_per_s": baseline_rate,
        "baseline_us_per_row": 1e6 * median(baseline_s) / rows_count,
        "baseline_requests": measured["requests"],
        "baseline_cpu_us_per_row": 1e6 * median(measured["baseline_cpu"]) / rows_count,
        # "client" is the typed-row input, as in earlier versions of this scenario.
        "client_seconds": seconds["typed"],
        "client_rows_per_s": [rows_count / s for s in seconds["typed"]],
        "median_client_rows_per_s": rates["typed"],
        "client_us_per_row": 1e6 * median(seconds["typed"]) / rows_count,
        "client_requests": runs["typed"][0]["posts"] + runs["typed"][0]["polls"],
        **cpu,
    }
    for name in INPUTS:
        scenario.figures[f"{name}_seconds"] = seconds[name]
        scenario.figures[f"median_{name}_rows_per_s"] = rates[name]
        scenario.figures[f"{name}_ratio"] = rates[name] / baseline_rate
        scenario.figures[f"{name}_cpu_us_per_row"] = (
            1e6 * median([r["cpu"] for r in runs[name]]) / rows_count
        )
        scenario.figures[f"{name}_ratios_per_repeat"] = [
            b / s for b, s in zip(baseline_s, seconds[name], strict=True)
        ]
    labels = {"dict": "dict rows", "typed": "IngestionJobRow", "csv": "CSV file (CLI reader)"}
    scenario.checks = [_check(labels[n], rates[n], baseline_rate, repeats) for n in INPUTS]
    _report_cli(scenario, measured["cli_s"], rows_count, baseline_rate, repeats)
    _notes(scenario, cpu)
    _report_server(scenario, measured, rows_count)


def _report_server(scenario: Scenario, measured: dict[str, Any], rows_count: int) -> None:
    """The emulator's CPU per row in every run: the baseline's pace, and how much it moved."""
    per_row = {
        "baseline": measured["baseline_server_cpu"],
        **{name: [r["server_cpu"] for r in measured["runs"][name]] for name in INPUTS},
    }
    if any(c is None for cpus in per_row.values() for c in cpus):
        scenario.notes.append("the server's CPU was not read (no /proc): its pace is not shown")
        return
    us = {k: [1e6 * c / rows_count for c in cpus] for k, cpus in per_row.items()}
    for key, values in us.items():
        scenario.figures[f"{key}_server_cpu_us_per_row"] = values
    base = us["baseline"]
    during = ", ".join(f"{name} {median(us[name]):.2f}" for name in INPUTS)
    scenario.notes.append(
        f"the server's CPU per row: baseline runs {min(base):.2f}-{max(base):.2f} us (median "
        f"{median(base):.2f}) for the same work; during the client's runs (medians, one poll a "
        f"job included) {during} us"
    )


def _report_cli(
    scenario: Scenario, cli_s: list[float], rows_count: int, baseline_rate: float, repeats: int
) -> None:
    if not cli_s:
        scenario.notes.append(f"{CLI} not found: the CLI subprocess was not measured")
        return
    cli_rate = rows_count / median(cli_s)
    scenario.figures["cli_seconds"] = cli_s
    scenario.figures["median_cli_rows_per_s"] = cli_rate
    scenario.checks.append(
        Check(
            metric="throughput, `debitura-async ingest` on the CSV",
            unit="rows/s",
            value=cli_rate,
            baseline=baseline_rate,
            baseline_label="raw aiohttp",
            ratio=cli_rate / baseline_rate,
            note=f"median of {repeats}; a subprocess, start-up included; run after the others",
        )
    )


def _notes(scenario: Scenario, cpu: dict[str, float]) -> None:
    cpu_text = ", ".join(
        f"{name} {scenario.figures[f'{name}_cpu_us_per_row']:.2f}" for name in INPUTS
    )
    scenario.notes.append(
        f"client-process CPU per row (load-independent): baseline "
        f"{scenario.figures['baseline_cpu_us_per_row']:.2f} us, {cpu_text} us; the server's CPU"
        " is in the emulator's process (a loaded machine slows whichever side uses more CPU)"
    )
    scenario.notes.append(
        "per row, timed alone: validating a dict row "
        f"{cpu['fast_dict_validate_us_per_row']:.2f} us (in chunks of {CHUNK}: "
        f"{cpu['chunk_dict_validate_us_per_row']:.2f} us; the slow path: "
        f"{cpu['slow_dict_validate_us_per_row']:.2f} us), a typed row "
        f"{cpu['fast_typed_validate_us_per_row']:.2f} us (checked and made its wire dict: "
        f"{cpu['fast_typed_wire_us_per_row']:.2f} us), encoding "
        f"{cpu['encode_us_per_row']:.2f} us, reading the CSV {cpu['csv_read_us_per_row']:.2f} us"
        f" (row dicts; as the pipeline reads it, as columns, checked and encoded: "
        f"{cpu['csv_columns_us_per_row']:.2f} us); the baseline moves at the server's pace of "
        f"{scenario.figures['baseline_us_per_row']:.2f} us per row"
    )
