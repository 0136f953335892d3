"""Every ``python`` example type-checks with ``mypy --strict``, as a user's script would: only
public names, the right types, no misspelled option the type checker could catch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._markdown import ROOT
from .test_examples import PYTHON

CACHE = ROOT / ".mypy_cache" / "docs-examples"


def test_every_example_passes_mypy_strict(tmp_path: Path) -> None:
    names: dict[str, str] = {}
    for n, block in enumerate(PYTHON):
        if block.marker is not None:
            continue  # not run or a known library defect: its own test says so
        name = f"example_{n:02d}.py"
        (tmp_path / name).write_text(block.code, encoding="utf-8")
        names[name] = block.id
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--python-version",
            "3.11",
            "--cache-dir",
            str(CACHE),
            *sorted(names),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = done.stdout
    for name, block_id in names.items():
        report = report.replace(name, block_id)
    assert done.returncode == 0, report + done.stderr
