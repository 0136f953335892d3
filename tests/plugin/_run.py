"""Run pytest in a subprocess on a project of its own (its own rootdir and ini, so this
project's addopts do not apply)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PYPROJECT = """\
[tool.pytest.ini_options]
addopts = ["-p", "no:cacheprovider", "--strict-markers"]
filterwarnings = [
    "error::ResourceWarning",
    "error::pytest.PytestUnraisableExceptionWarning",
]
{extra}
"""


def write_project(root: Path, files: dict[str, str], *, ini_extra: str = "") -> Path:
    (root / "pyproject.toml").write_text(PYPROJECT.format(extra=ini_extra))
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def run_pytest(root: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
