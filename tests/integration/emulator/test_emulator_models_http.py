"""Latency presets, the oracle hook and the rate-window stats over loopback HTTP (and the CLI)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest

from debitura_async.emulator import (
    Emulator,
    EmulatorProcess,
    LatencyModel,
    RateLimits,
    ScheduledJob,
)
from tests.integration.emulator.emulator_support import (
    TERMINAL,
    fast_config,
    note_rows,
    post_job,
    request,
)

pytestmark = pytest.mark.anyio

MODULE = [sys.executable, "-m", "debitura_async.emulator"]


# ---------------------------------------------------------------- the oracle hook in-process


async def test_on_job_scheduled_tells_the_finish_before_the_202_and_it_holds() -> None:
    seen: list[ScheduledJob] = []
    # 2x, not faster: the four POSTs must all reach the server before the first job ends (they
    # only queue then), even on a loaded machine; nothing here waits for a job to finish.
    config = fast_config(time_scale=2.0, latency=LatencyModel.preset("fifo-2"))
    async with (
        Emulator(config, on_job_scheduled=seen.append) as emu,
        aiohttp.ClientSession() as session,
    ):
        ids = []
        for i in range(4):
            status, body, _ = await post_job(emu, session, note_rows(emu.case_ids[:3]))
            assert status == 202
            assert len(seen) == i + 1  # told before the response was written
            assert str(seen[-1].job_id) == body["jobId"]
            ids.append(body["jobId"])
        status, _, _ = await post_job(
            emu, session, note_rows(emu.case_ids[:3]), extra_headers={"Idempotency-Key": "k"}
        )
        replay, _, _ = await post_job(
            emu, session, note_rows(emu.case_ids[:3]), extra_headers={"Idempotency-Key": "k"}
        )
        assert (status, replay, len(seen)) == (202, 202, 5)  # a replay creates no job
        for schedule in seen:
            assert await emu.job_schedule(schedule.job_id) == schedule
            code, record, _ = await request(
                session,
                "GET",
                f"{emu.url}/_emulator/jobs/{schedule.job_id}",
                extra_headers=emu.introspection_headers,
            )
            assert code == 200
            assert ScheduledJob.from_dict(record) == schedule
        # two workers: jobs 3 and 4 start when jobs 1 and 2 finish
        assert {seen[2].started_at, seen[3].started_at} == {
            seen[0].finished_at,
            seen[1].finished_at,
        }
        for schedule in seen[:4]:
            await _poll_until_terminal(emu, session, schedule)


async def _poll_until_terminal(
    emu: Emulator, session: aiohttp.ClientSession, schedule: ScheduledJob
) -> None:
    """Every answer agrees with the schedule: non-terminal answers were asked before the finish,
    terminal ones arrived after it (both hold however slow the machine is)."""
    while True:
        sent = time.monotonic()
        status, body, _ = await request(
            session, "GET", f"{emu.url}/ingestion-jobs/{schedule.job_id}", key=emu.api_key
        )
        received = time.monotonic()
        assert status == 200
        if body["status"] in TERMINAL:
            assert received >= schedule.finished_at_monotonic
            return
        assert sent < schedule.finished_at_monotonic
        await asyncio.sleep(0.005)


async def test_unknown_jobs_and_a_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    def explode(_job: ScheduledJob) -> None:
        raise RuntimeError("oracle bug")

    async with (
        Emulator(fast_config(), on_job_scheduled=explode) as emu,
        aiohttp.ClientSession() as session,
    ):
        with caplog.at_level(logging.ERROR, logger="debitura_async.emulator"):
            status, _, _ = await post_job(emu, session, note_rows(emu.case_ids[:1]))
        assert status == 202  # the server answers whatever the hook does
        assert [r.getMessage() for r in caplog.records] == ["on_job_scheduled callback failed"]
        assert await emu.job_schedule(uuid.uuid4()) is None
        assert await emu.job_schedule("not-a-uuid") is None
        for job in (str(uuid.uuid4()), "not-a-uuid"):
            code, body, _ = await request(
                session,
                "GET",
                f"{emu.url}/_emulator/jobs/{job}",
                extra_headers=emu.introspection_headers,
            )
            assert code == 404
            assert body["error"] == "not_found"


# ---------------------------------------------------------------- presets from the CLI / JSON


async def _cli_emulator(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        *MODULE,
        "--port=0",
        "--json",
        "--exit-on-stdin-eof",
        "--partners=1",
        "--cases-per-partner=3",
        "--no-rate-limits",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line, "no ready line"
    return proc, orjson.loads(line)


@pytest.mark.parametrize("source", ["flag", "json"])
async def test_the_cli_and_the_json_config_select_a_preset(source: str, tmp_path: Path) -> None:
    if source == "flag":
        # Slow enough (a 2-s job is 1 s real) that the four POSTs reach the server before the
        # first job ends even on a loaded machine: FIFO order is only visible if they queue.
        args = ["--latency-preset=fifo-2", "--jitter=0", "--time-scale=2"]
    else:
        path = tmp_path / "config.json"
        config = {"timeScale": 2, "latency": {"preset": "fifo-2", "jitter": 0}}
        path.write_text(json.dumps(config))
        args = [f"--config={path}"]
    proc, ready = await _cli_emulator(*args)
    try:
        url = str(ready["url"])
        partner = ready["partners"][0]  # type: ignore[index]
        key, case = partner["apiKey"], partner["caseIds"][0]
        rows = [{"type": 0, "caseId": case, "description": "Called"}] * 40
        async with aiohttp.ClientSession() as session:
            for _ in range(4):
                status, _, _ = await request(
                    session, "POST", url + "/ingestion-jobs", key=key, body={"rows": rows}
                )
                assert status == 202
            token = {"X-Emulator-Token": str(ready["token"])}
            status, jobs, _ = await request(
                session, "GET", url + "/_emulator/jobs", extra_headers=token
            )
        assert status == 200
        durations = {round(j["finishedAt"] - j["startedAt"], 9) for j in jobs}
        assert durations == {2.0}  # the guide's 1 s + 40 x 0.025 s, no jitter
        first, second, third, fourth = jobs
        assert {third["startedAt"], fourth["startedAt"]} == {
            first["finishedAt"],
            second["finishedAt"],
        }  # two workers, FIFO
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_emulator_process_reports_the_schedule_of_a_preset() -> None:
    config = fast_config(time_scale=100.0, latency=LatencyModel.preset("slow-path-20"), seed=4)
    async with EmulatorProcess(config) as emu, aiohttp.ClientSession() as session:
        for _ in range(10):
            status, _, _ = await post_job(emu, session, note_rows(emu.case_ids[:2]))
            assert status == 202
        jobs = await emu.jobs()
        schedules = [await emu.job_schedule(j["jobId"]) for j in jobs]
        assert [s.finished_at for s in schedules if s is not None] == [
            j["finishedAt"] for j in jobs
        ]
        slow = [s for s in schedules if s is not None and s.slow_path]
        assert slow  # seed 4: some jobs take the slow path
        assert {s.multiplier for s in slow} == {4.0}
        assert await emu.job_schedule(uuid.uuid4()) is None


# ---------------------------------------------------------------- windows over HTTP


async def test_window_counts_in_stats_and_the_clock_hour_under_a_time_scale() -> None:
    # the model wall clock starts 60 model s (3 real s at x20) before 09:00 UTC
    epoch = datetime(2026, 12, 1, 8, 59, tzinfo=UTC)
    limits = RateLimits(per_minute=None, per_hour=2, per_day=None, clock_epoch=epoch)
    async with (
        Emulator(fast_config(time_scale=20.0, rate_limits=limits)) as emu,
        aiohttp.ClientSession() as session,
    ):
        me = emu.url + "/me"
        statuses = [(await request(session, "GET", me, key=emu.api_key))[0] for _ in range(2)]
        status, body, _ = await request(session, "GET", me, key=emu.api_key)
        assert (statuses, status) == ([200, 200], 429)
        assert 0 < body["retryAfter"] <= 3.0  # until 09:00:00 on the model wall clock
        windows = (await emu.stats())["rate_windows"]
        hour = windows["partitions"][str(emu.partners[0].id)]["hour"]
        assert (hour["count"], hour["peak"], hour["rejected"]) == (2, 2, 1)
        assert hour["window_start"] == -3540.0  # 08:00:00, 3540 model s before the start
        assert windows["wall_now"].startswith("2026-12-01T08:59:")
        await asyncio.sleep(body["retryAfter"])
        status, _, _ = await request(session, "GET", me, key=emu.api_key)
        assert status == 200  # a new clock hour
        windows = (await emu.stats())["rate_windows"]
        hour = windows["partitions"][str(emu.partners[0].id)]["hour"]
        assert (hour["count"], hour["window_start"]) == (1, 60.0)
        assert emu.api_key not in json.dumps(windows)


async def test_requests_without_a_valid_key_share_one_fallback_partition() -> None:
    limits = RateLimits(per_minute=2, per_hour=None, per_day=None, clock_epoch=0.0)
    async with (
        Emulator(fast_config(time_scale=1.0, rate_limits=limits)) as emu,
        aiohttp.ClientSession() as session,
    ):
        me = emu.url + "/me"
        answers = [
            (await request(session, "GET", me, key=key))[0] for key in ("wrong", None, "other")
        ]
        assert answers == [401, 401, 429]  # two unknown keys and none: one partition
        assert (await request(session, "GET", me, key=emu.api_key))[0] == 200
        partitions = (await emu.stats())["rate_windows"]["partitions"]
        assert partitions["fallback"]["minute"]["rejected"] == 1
        assert partitions[str(emu.partners[0].id)]["minute"]["count"] == 1
