"""The CLI in-process, where no server is needed: --help, --version, usage errors (exit 2), the
progress display and the report writer."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import attrs
import pytest

from debitura_async import __version__
from debitura_async.cli import (
    EXIT_CODES,
    CLIError,
    Progress,
    ReportWriter,
    exit_code_for,
    main,
)
from debitura_async.models import IngestionSummary, IngestProgress

INGEST_HELP = (
    "--map API_FIELD=COLUMN",
    "--resume",
    "--journal",
    "--strict",
    "--report",
    "--concurrency",
    "--deadline",
    "--emulator",
    "--time-scale",
    "--allow-insecure-http",
    "DEBITURA_API_KEY",
    "Journal and resume",
    "exit codes:",
)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0
    assert out.strip() == f"debitura-async {__version__}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ((), ("ingest", "status", "whoami", "emulator", "demo", "exit codes:", "3  unresolved")),
        (("ingest",), INGEST_HELP),
        (("status",), ("JOB_ID", "--wait", "--json", "exit codes")),
        (("whoami",), ("GET /me", "--api-key", "--base-url")),
        (("emulator",), ("--time-scale", "--world", "--fault", "--port")),
        (("demo",), ("exits with code 1 on purpose", "--time-scale", "--report")),
    ],
)
def test_help_of_every_command(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    code, out, _ = run_main(capsys, *command, "--help")
    assert code == 0
    flat = " ".join(out.split())
    for text in expected:
        assert " ".join(text.split()) in flat, text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("ingest", "x.csv", "--batch-size", "2000"), "at most 1000 rows per job"),
        (("ingest", "x.csv", "--concurrency", "0"), "must be at least 1"),
        (("ingest", "x.csv", "--format", "xml"), "invalid choice"),
        (("ingest",), "the following arguments are required: PATH"),
        (("nonsense",), "invalid choice"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, _, err = run_main(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "--help" in err


def test_usage_errors_before_any_network(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEBITURA_API_KEY", raising=False)
    monkeypatch.delenv("DEBITURA_BASE_URL", raising=False)
    data = tmp_path / "in.csv"
    data.write_text("caseId,description\n")
    cases = [
        (("ingest", str(tmp_path / "missing.csv")), "no such input file"),
        (("ingest", str(data), "--map", "case=Guid"), "'case' is not an API field"),
        (("ingest", str(tmp_path / "in.txt")), "no such input file"),
        (("ingest", str(data)), "no API key: pass --api-key or set $DEBITURA_API_KEY"),
        (("ingest", str(data), "--emulator", "--base-url", "http://x"), "--emulator starts"),
        (("ingest", str(data), "--no-journal", "--resume"), "--no-journal conflicts"),
        (("ingest", str(data), "--resume", "--api-key", "k"), "--resume: no journal at"),
        (
            ("ingest", str(data), "--api-key", "k", "--base-url", "http://example.com"),
            "refusing plain http://",
        ),
        (("ingest", str(data), "--api-key", "k", "--report", str(tmp_path / "r.txt")), ".csv"),
        (("status", "123"), "is not a UUID"),
        (("whoami",), "no API key"),
        ((), "choose a command"),
    ]
    for argv, message in cases:
        code, _, err = run_main(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, (argv, err)
    other = tmp_path / "in.txt"
    other.write_text("x")
    code, _, err = run_main(capsys, "ingest", str(other))
    assert code == 2
    assert "pass --format csv|jsonl" in err


def test_exit_codes_follow_the_summary() -> None:
    def code(**counts: Any) -> int:
        return exit_code_for(attrs.evolve(IngestionSummary(), **counts))

    assert code(rows_read=2, rows_submitted=2, rows_succeeded=2) == 0
    assert code(rows_read=2, rows_rejected=1, rows_submitted=1, rows_succeeded=1) == 1
    assert code(rows_read=2, rows_submitted=2, rows_failed=1, rows_succeeded=1) == 1
    assert code(rows_read=2, rows_submitted=2, rows_failed=1, rows_unresolved=1) == 3
    assert set(EXIT_CODES) == {0, 1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    "counts",
    [
        # rows vanished (a repeated jobId): "all succeeded" must not be the verdict
        {"rows_read": 100, "rows_submitted": 100, "rows_succeeded": 30},
        # more rows placed than read
        {"rows_read": 2, "rows_submitted": 2, "rows_succeeded": 2, "rows_failed": 1},
        {"rows_read": 5, "rows_rejected": 1, "rows_unresolved": 1},
    ],
)
def test_a_summary_whose_rows_do_not_add_up_exits_5(counts: dict[str, Any]) -> None:
    assert exit_code_for(attrs.evolve(IngestionSummary(), **counts)) == 5
    assert "do not add up" in EXIT_CODES[5]


def _progress(read: int, done: int, elapsed: float = 2.0) -> IngestProgress:
    return IngestProgress(
        rows_read=read,
        rows_submitted=read,
        rows_succeeded=done,
        rows_failed=0,
        rows_rejected=0,
        rows_unresolved=0,
        jobs_in_flight=3,
        jobs_done=1,
        requests=4,
        elapsed=elapsed,
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_tty() -> None:
    err = _Tty()
    read = [500]
    progress = Progress("auto", size=1000, bytes_read=lambda: read[0], err=err, interval=5.0)
    assert progress.mode == "bar"
    progress.update(_progress(read=100, done=50))
    progress.message("a rejected line")
    read[0] = 1000  # the whole input read, every row done
    progress.close(_progress(read=200, done=200))
    text = err.getvalue()
    assert "rows/s" in text
    assert "in flight 3" in text
    assert "ok 200" in text
    assert "a rejected line" in text
    assert "100%" in text


def test_progress_log_lines_when_not_a_tty() -> None:
    err = io.StringIO()
    progress = Progress("auto", size=1000, bytes_read=lambda: 500, err=err, interval=0.000001)
    assert progress.mode == "log"
    progress.update(_progress(read=100, done=50))
    progress.close(None)
    line = err.getvalue().strip()
    assert "25% done: 100 rows read, 50 succeeded" in line
    assert "50 in flight (3 jobs)" in line
    assert "25 rows/s" in line
    assert "ETA 0:06" in line  # 200 rows estimated, 150 to go at 25 rows/s


def test_report_writer_publishes_only_a_whole_report(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    writer = ReportWriter(path)
    writer.write({"record": "rejected", "first_line": 3, "detail": ["a", "b"], "resumed": True})
    assert not path.exists()
    writer.close()
    assert path.read_text().splitlines()[1].startswith("rejected,,3,")
    assert path.read_text().splitlines()[1].endswith(",yes,a; b")
    with pytest.raises(CLIError, match=r"\.csv or \.jsonl"):
        ReportWriter(tmp_path / "r.txt")
    dropped = ReportWriter(tmp_path / "d.jsonl")
    dropped.discard()
    assert list(tmp_path.iterdir()) == [path]
