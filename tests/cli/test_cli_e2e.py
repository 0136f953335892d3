"""``debitura-async`` as a subprocess against an emulator in another process (time-scaled).

Covers CSV and JSONL, --map, bad lines, the report, every exit code (0, 1, 2, 3, 4), --strict,
resume refusals, status/whoami/emulator/demo, and that the API key is written nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import orjson
import pytest

from debitura_async.emulator import EmulatorProcess, LatencyModel, World

from ._support import (
    CLI,
    CRM_MAP,
    assert_notes_exactly_once,
    assert_report_covers,
    cli_env,
    fast_config,
    files_containing,
    read_report,
    run_cli,
    write_crm_csv,
    write_jsonl,
)

pytestmark = pytest.mark.anyio

SCALE = ("--time-scale", "200")


async def test_csv_with_mapping_bad_lines_and_server_failures_exits_1(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(
            tmp_path / "export.csv",
            emu.case_ids,
            600,
            bad={
                10: f'N-10,{emu.case_ids[0]},2026-03-01T10:00:00Z,"unbalanced note'.encode(),
                20: b"N-20,too,few",
                30: b"N-30,\xff\xfe,2026-03-01T10:00:00Z,latin-1 bytes",
            },
            invalid={
                40: {"CaseGuid": "CASE-40"},
                50: {"CreatedAtUtc": "2099-01-01T00:00:00Z"},
                60: {"NoteText": ""},
            },
            failing={70: {"CaseGuid": str(emu.other_partner_case_ids[0])}},
            multiline_every=45,
            blank_after=(99, 300),
            bom=True,
            crlf=True,
        )
        report = tmp_path / "report.csv"
        result = await run_cli(
            "ingest",
            sample.path,
            *CRM_MAP,
            "--batch-size",
            "100",
            *SCALE,
            "--report",
            report,
            env=cli_env(emu),
        )
        assert result.code == 1, result
        await assert_notes_exactly_once(emu, sample)

    err = result.err
    line = dict(zip(range(600), sample.data_lines, strict=False))
    assert f"rejected line {line[10]}: unbalanced quote" in err
    assert f"rejected line {line[20]}: expected 4 columns, found 3" in err
    assert f"rejected line {line[30]}: not valid UTF-8" in err
    assert f"rejected line {line[40]}: caseId (column 'CaseGuid'): 'CASE-40' is not a valid" in err
    assert f"rejected line {line[50]}: eventDate (column 'CreatedAtUtc'):" in err
    assert "is in the future" in err
    assert f"rejected line {line[60]}: description (column 'NoteText'): must not be empty" in err
    assert "Traceback" not in err
    assert "exit code 1: some rows failed or were rejected" in result.out

    records = read_report(report)
    assert_report_covers(records, sample)
    rejected = {int(r["first_line"]): r["detail"] for r in records if r["record"] == "rejected"}
    assert rejected[line[40]].startswith("caseId (column 'CaseGuid'):")
    assert not rejected[line[20]].startswith("line")  # the line is in its own column
    with_errors = [r for r in records if r["outcome"] == "completed_with_errors"]
    assert len(with_errors) == 1
    assert int(with_errors[0]["failed"]) == 1
    assert int(with_errors[0]["first_line"]) <= line[70] <= int(with_errors[0]["last_line"])
    for job in (r for r in records if r["record"] == "job"):
        assert uuid.UUID(job["job_id"])
        assert job["idempotency_key"].startswith("dba-")


async def test_clean_jsonl_exits_0_with_a_jsonl_report(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_jsonl(tmp_path / "notes.jsonl", emu.case_ids, 250)
        report = tmp_path / "report.jsonl"
        result = await run_cli(
            "ingest", sample.path, "--batch-size", "60", *SCALE, "--report", report,
            env=cli_env(emu),
        )  # fmt: skip
        assert result.code == 0, result
        await assert_notes_exactly_once(emu, sample)
    records = read_report(report)
    assert_report_covers(records, sample)
    assert {r["outcome"] for r in records} == {"completed"}
    assert all(isinstance(r["first_line"], int) for r in records)
    assert "exit code 0: all rows succeeded" in result.out
    assert (tmp_path / "notes.jsonl.journal.sqlite").is_file()  # the default journal


async def test_jsonl_bad_lines_are_reported_and_the_rest_goes_in(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_jsonl(
            tmp_path / "notes.jsonl",
            emu.case_ids,
            120,
            bad={5: b'{"caseId": "x", ', 17: b"[1, 2, 3]", 33: b'{"description": "caf\xe9"}'},
        )
        report = tmp_path / "report.csv"
        result = await run_cli(
            "ingest", sample.path, *SCALE, "--report", report, "--no-journal", env=cli_env(emu)
        )
        assert result.code == 1, result
        await assert_notes_exactly_once(emu, sample)
    assert "rejected line 6: broken JSON" in result.err
    assert "rejected line 18: expected a JSON object, found an array" in result.err
    assert "rejected line 34: not valid UTF-8" in result.err
    assert_report_covers(read_report(report), sample)


async def test_strict_sends_nothing_when_a_row_is_invalid(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        bad = write_crm_csv(
            tmp_path / "bad.csv",
            emu.case_ids,
            200,
            bad={150: b"N-150,x"},
            invalid={3: {"CreatedAtUtc": "tomorrow"}},
        )
        result = await run_cli("ingest", bad.path, *CRM_MAP, "--strict", *SCALE, env=cli_env(emu))
        assert result.code == 2, result
        assert "invalid: line 5: eventDate (column 'CreatedAtUtc'): 'tomorrow'" in result.err
        assert f"invalid: line {bad.data_lines[150]}: expected 4 columns, found 2" in result.err
        assert "--strict: 2 of 200 rows are invalid; nothing was sent" in result.err
        assert (await emu.stats())["jobs_created"] == 0
        assert not (tmp_path / "bad.csv.journal.sqlite").exists()

        good = write_crm_csv(tmp_path / "good.csv", emu.case_ids, 200)
        result = await run_cli("ingest", good.path, *CRM_MAP, "--strict", *SCALE, env=cli_env(emu))
        assert result.code == 0, result
        assert "--strict: all 200 rows are valid" in result.err
        await assert_notes_exactly_once(emu, good)


async def test_wrong_api_key_exits_4_without_a_trace_of_the_key(tmp_path: Path) -> None:
    wrong = "wrong-key-7d1f0c9e44b2"
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 10)
        env = cli_env(emu, DEBITURA_API_KEY=wrong)
        result = await run_cli("ingest", sample.path, *CRM_MAP, *SCALE, env=env)
        assert result.code == 4, result
        assert "authentication failed: the API key was refused (401)" in result.err
        assert len(result.err.strip().splitlines()) == 1
        assert not (tmp_path / "x.csv.journal.sqlite").exists()  # nothing recorded
        for command in (["whoami"], ["status", str(uuid.uuid4())]):
            other = await run_cli(*command, env=env)
            assert other.code == 4, other
        assert (await emu.stats())["jobs_created"] == 0
    assert wrong not in result.out + result.err + other.out + other.err


async def test_api_key_is_in_no_journal_report_or_log(tmp_path: Path) -> None:
    key = "sk-live-SECRET-0f9e8d7c6b5a4"
    world = World.from_dict(
        {
            "partners": [
                {"apiKey": key, "caseIds": [str(uuid.uuid4()) for _ in range(5)]},
                {"apiKey": "other-partner", "caseIds": [str(uuid.uuid4())]},
            ]
        }
    )
    async with EmulatorProcess(fast_config(world=world)) as emu:
        assert emu.api_key == key
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 80, invalid={3: {"CaseGuid": "?"}})
        report = tmp_path / "r.jsonl"
        journal = tmp_path / "j.sqlite"
        env = cli_env()  # the key only on the command line (as --api-key)
        common = ["--base-url", emu.url, "--api-key", key, *SCALE]
        result = await run_cli(
            "-v", "ingest", sample.path, *CRM_MAP, "--batch-size", "20", *common,
            "--journal", journal, "--report", report, env=env,
        )  # fmt: skip
        assert result.code == 1, result
        resumed = await run_cli(
            "-v", "ingest", sample.path, "--resume", *common, "--journal", journal, env=env
        )
        assert resumed.code == 1, resumed
        whoami = await run_cli("whoami", *common, env=env)
        assert whoami.code == 0, whoami
    assert "DEBUG" in result.err  # the debug log was on
    assert journal.stat().st_size > 0
    assert report.stat().st_size > 0
    assert files_containing(tmp_path, b"dba-")  # sanity: the needle search sees the files
    assert files_containing(tmp_path, key.encode()) == []
    for run in (result, resumed, whoami):
        assert key not in run.out + run.err


async def test_deadline_leaves_unresolved_jobs_exit_3_and_resume_finishes(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config(time_scale=10.0)) as emu:
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 300)
        report = tmp_path / "r.csv"
        args: list[str | Path] = [
            "ingest", sample.path, *CRM_MAP, "--time-scale", "10", "--report", report,
        ]  # fmt: skip
        first = await run_cli(*args, "--batch-size", "100", "--deadline", "0.15", env=cli_env(emu))
        assert first.code == 3, first
        assert "run the same command with --resume" in first.err
        assert "exit code 3: unresolved jobs remain" in first.out
        assert any(r["outcome"] == "unresolved" for r in read_report(report))

        second = await run_cli(*args, "--resume", env=cli_env(emu))
        assert second.code == 0, second
        assert "attempt 2" in second.out
        await assert_notes_exactly_once(emu, sample)
    assert_report_covers(read_report(report), sample)


async def test_resume_refusals_and_replay_of_a_finished_run(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 150, invalid={7: {"NoteText": ""}})
        report = tmp_path / "r.csv"
        args: list[str | Path] = [
            "ingest", sample.path, *CRM_MAP, "--batch-size", "50", *SCALE, "--report", report,
        ]  # fmt: skip
        first = await run_cli(*args, env=cli_env(emu))
        assert first.code == 1, first

        again = await run_cli(*args, env=cli_env(emu))
        assert again.code == 2, again
        assert "already exists: pass --resume" in again.err

        original = sample.path.read_bytes()
        sample.path.write_bytes(original + b"N-999,x,y,z\n")
        other_input = await run_cli(*args, "--resume", env=cli_env(emu))
        assert other_input.code == 2, other_input
        assert "belongs to another input" in other_input.err
        sample.path.write_bytes(original)

        other_url = emu.url.replace("127.0.0.1", "localhost")
        moved = await run_cli(*args, "--resume", env=cli_env(emu, DEBITURA_BASE_URL=other_url))
        assert moved.code == 2, moved
        assert "belongs to a run against" in moved.err

        other_batches = await run_cli(*args, "--resume", "--batch-size", "10", env=cli_env(emu))
        assert other_batches.code == 2, other_batches
        assert "--batch-size 50" in other_batches.err

        posts_before = (await emu.stats())["requests"]["POST /ingestion-jobs"]
        replay = await run_cli(*args, "--resume", env=cli_env(emu))
        assert replay.code == 1, replay
        assert "3 jobs replayed from the journal" in replay.out
        assert "0 POST, 0 GET" in replay.out
        assert (await emu.stats())["requests"]["POST /ingestion-jobs"] == posts_before
        await assert_notes_exactly_once(emu, sample)

        missing = await run_cli(
            *args, "--resume", "--journal", tmp_path / "none.sqlite", env=cli_env(emu)
        )
        assert missing.code == 2, missing
        assert "no journal at" in missing.err
    records = read_report(report)
    assert_report_covers(records, sample)
    assert {r["resumed"] for r in records if r["record"] == "job"} == {"yes"}


async def test_status_and_whoami(tmp_path: Path) -> None:
    async with EmulatorProcess(fast_config()) as emu:
        sample = write_crm_csv(tmp_path / "x.csv", emu.case_ids, 30)
        report = tmp_path / "r.jsonl"
        result = await run_cli(
            "ingest", sample.path, *CRM_MAP, *SCALE, "--report", report, env=cli_env(emu)
        )
        assert result.code == 0, result
        job_id = read_report(report)[0]["job_id"]
        env = cli_env(emu)

        status = await run_cli("status", job_id, env=env)
        assert status.code == 0, status
        # one status name everywhere: the text, --json and the report's outcome
        assert f"job {job_id}: completed (2)" in status.out
        assert read_report(report)[0]["outcome"] == "completed"
        assert "30 total, 30 succeeded, 0 failed" in status.out

        as_json = await run_cli("status", job_id, "--json", "--wait", *SCALE, env=env)
        assert as_json.code == 0, as_json
        assert orjson.loads(as_json.out)["rowsSucceeded"] == 30
        assert orjson.loads(as_json.out)["statusName"] == "completed"

        unknown = await run_cli("status", str(uuid.uuid4()), env=env)
        assert unknown.code == 1, unknown
        assert "not found" in unknown.out

        bad = await run_cli("status", "not-a-uuid", env=env)
        assert bad.code == 2, bad
        assert "is not a UUID" in bad.err

        whoami = await run_cli("whoami", env=env)
        assert whoami.code == 0, whoami
        assert str(emu.partners[0].id) in whoami.out
        who_json = await run_cli("whoami", "--json", env=env)
        assert orjson.loads(who_json.out)["id"] == str(emu.partners[0].id)


async def test_emulator_subcommand_serves_until_stdin_closes() -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "emulator",
        "--port",
        "0",
        "--json",
        "--exit-on-stdin-eof",
        "--partners",
        "1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        ready = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert ready["url"].startswith("http://127.0.0.1:")
        assert len(ready["partners"]) == 1
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()


async def test_demo_runs_the_bundled_sample_and_exits_1(tmp_path: Path) -> None:
    report = tmp_path / "demo.jsonl"
    result = await run_cli(
        "demo", "--time-scale", "50", "--progress", "log", "--report", report, env=cli_env()
    )
    assert result.code == 1, result
    assert "Summary" in result.out
    assert "exits with code 1 on purpose" in result.out
    assert f"Report: {report}" in result.out
    records = read_report(report)
    rejected = [r for r in records if r["record"] == "rejected"]
    assert len(rejected) == 10
    jobs = [r for r in records if r["record"] == "job"]
    assert sum(r["rows"] for r in jobs) + len(rejected) == 3000
    assert sum(r["failed"] for r in jobs) == 6
    assert "note: columns not sent: CaseNumber, Author, Channel" in result.err


async def test_status_wait_timeout_exits_3_while_the_job_runs() -> None:
    from debitura_async import DebituraClient, IngestionJobRow

    # A job of a minute or more: still running whenever the CLI (slow to start on a loaded
    # machine) first asks, so the 0.3-s timeout is what ends the wait.
    slow = LatencyModel(base=60.0)
    async with EmulatorProcess(fast_config(time_scale=1.0, latency=slow)) as emu:
        async with DebituraClient(emu.api_key, base_url=emu.url) as client:
            job = await client.create_ingestion_job(
                [IngestionJobRow(emu.case_ids[0], "a slow job") for _ in range(100)]
            )
        result = await run_cli("status", str(job.job_id), "--wait", "--timeout", "0.3",
                               env=cli_env(emu))  # fmt: skip
        assert result.code == 3, result
        assert "not terminal after 0.3 s" in result.err
