"""Print the tables of the reliability report (``docs/reliability.md``) from ``.last-run.json``.

    python -m pytest tests/reliability            # writes .last-run.json
    python -m tests.reliability.report_table      # prints the Markdown table

Every figure comes from the last run; nothing is typed by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

LAST_RUN = Path(__file__).with_name(".last-run.json")

_TITLES = {
    "fault": "Network and server faults (`client.ingest`, in-process emulator x500)",
    "crash": "`kill -9` of `debitura-async ingest`, then `--resume` (emulator in a child process)",
    "limit": "Documented limit (a server that forgot its Idempotency-Keys)",
    "input": "Dirty input (`debitura-async ingest` on the corpus in `tests/reliability/corpus/`)",
}
_COLUMNS = (
    ("scenario", "Scenario"),
    ("runs", "Runs"),
    ("rows", "Rows"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("rejected", "Rejected"),
    ("unresolved", "Unresolved"),
    ("duplicates", "Duplicates"),
    ("lost", "Lost"),
)
_EXTRA = {
    "fault": (("retries", "Retries"), ("max_attempts", "Max attempts")),
    "crash": (("kills", "Kills"),),
    "limit": (("kills", "Kills"),),
    "input": (),
}


def _cell(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def render(data: dict[str, Any]) -> str:
    out: list[str] = []
    scenarios: list[dict[str, Any]] = data["scenarios"]
    for category, title in _TITLES.items():
        rows = [s for s in scenarios if s["category"] == category]
        if not rows:
            continue
        columns = (*_COLUMNS, *_EXTRA[category])
        out.append(f"**{title}**\n")
        out.append("| " + " | ".join(name for _, name in columns) + " |")
        out.append(
            "|" + "|".join("---" if key == "scenario" else "---:" for key, _ in columns) + "|"
        )
        for row in rows:
            out.append("| " + " | ".join(_cell(row[key]) for key, _ in columns) + " |")
        totals = {key: sum(r[key] for r in rows) for key, _ in columns if key != "scenario"}
        totals["max_attempts"] = max((r["max_attempts"] for r in rows), default=0)
        out.append(
            "| **all** | "
            + " | ".join(f"**{_cell(totals[key])}**" for key, _ in columns if key != "scenario")
            + " |"
        )
        out.append("")
    mode = (
        "a run with --soak (every test, soak ones included)"
        if data["soak"]
        else "the CI run (no --soak)"
    )
    out.append(
        f"Measured {data['written']} by {mode}: Python {data['python']}, {data['platform']},"
        f" {data['cpus']} CPUs, {data['wallSeconds']} s for the measured scenarios."
    )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else LAST_RUN
    if not path.is_file():
        sys.stderr.write(f"no {path}: run `python -m pytest tests/reliability` first\n")
        return 2
    sys.stdout.write(render(orjson.loads(path.read_bytes())) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
