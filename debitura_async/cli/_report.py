"""``--report``: CSV or JSONL, one record per job and per rejected line, and a last ``run`` record
that marks a partial report (a stopped run, unresolved rows)."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson

from ._common import CLIError

__all__ = ["REPORT_COLUMNS", "ReportWriter", "create_private"]

REPORT_COLUMNS: Final = (
    "record",
    "batch",
    "first_line",
    "last_line",
    "rows",
    "outcome",
    "succeeded",
    "failed",
    "job_id",
    "idempotency_key",
    "resumed",
    "detail",
)

PRIVATE_MODE: Final = 0o600
"""The journal and the report may echo debtors' data: readable by their owner only."""


def create_private(path: Path) -> IO[str]:
    """Open ``path`` for writing as a new 0600 file (an old one is replaced, not reused, so
    its permissions never leak into the new content)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    return open(fd, "w", encoding="utf-8", newline="")


class ReportWriter:
    """Written to ``PATH.partial`` while the run goes and renamed to PATH at the end, so PATH is
    always a finished report (a killed run leaves only ``PATH.partial``).

    Columns: record (``job``, ``rejected`` or ``run``), batch, first_line, last_line, rows,
    outcome, succeeded, failed, job_id, idempotency_key, resumed (replayed from the journal),
    detail (the reasons of a rejected line; the error of a failed or unresolved job). In JSONL,
    ``detail`` of a rejected line is a list of reasons. A partial report (the run was stopped, or
    rows are unresolved: resume it) ends with a ``run`` record whose outcome is ``partial``, its
    rows/succeeded/failed the run's totals and its detail why. Created 0600.
    """

    @staticmethod
    def format_of(path: Path) -> Literal["csv", "jsonl"]:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
        raise CLIError(f"--report {str(path)!r}: use a .csv or .jsonl file name")

    def __init__(self, path: Path) -> None:
        self.format = self.format_of(path)
        self.path = path
        self.partial_path = path.with_name(path.name + ".partial")
        try:
            self._file: IO[str] = create_private(self.partial_path)
        except OSError as exc:
            raise CLIError(f"cannot write the report {str(path)!r}: {exc.strerror}") from None
        self._csv = csv.writer(self._file) if self.format == "csv" else None
        if self._csv is not None:
            self._csv.writerow(REPORT_COLUMNS)
        self.records = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        if self._csv is not None:
            values = []
            for column in REPORT_COLUMNS:
                value = record.get(column)
                if isinstance(value, list | tuple):
                    value = "; ".join(str(v) for v in value)
                elif isinstance(value, bool):
                    value = "yes" if value else ""
                values.append("" if value is None else value)
            self._csv.writerow(values)
        else:
            self._file.write(orjson.dumps({k: record.get(k) for k in REPORT_COLUMNS}).decode())
            self._file.write("\n")

    def close(self) -> None:
        """Publish the report at PATH."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.partial_path.replace(self.path)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(OSError):
            self.partial_path.unlink()
