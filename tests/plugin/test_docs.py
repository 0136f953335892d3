"""docs/testing.md cannot drift: the sample project's files are quoted verbatim, and the other
files it shows are written into a project of their own and run by pytest."""

from __future__ import annotations

import re
from pathlib import Path

from ._run import run_pytest, summary, write_project

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```[a-z]*\n(?P<body>.*?)```", re.DOTALL)


def blocks() -> dict[str, str]:
    return {
        m["path"]: m["body"] for m in BLOCK.finditer((ROOT / "docs" / "testing.md").read_text())
    }


def test_the_sample_project_is_quoted_verbatim() -> None:
    quoted = {p: b for p, b in blocks().items() if p.startswith("examples/")}
    assert len(quoted) == 3
    for path, body in quoted.items():
        assert body == (ROOT / path).read_text(), path


def test_the_other_examples_run(tmp_path: Path) -> None:
    files = {p: b for p, b in blocks().items() if not p.startswith("examples/")}
    assert set(files) == {"conftest.py", "test_config.py", "test_session.py"}
    project = write_project(tmp_path, files)
    result = run_pytest(project, "-p", "no:asyncio")
    assert result.returncode == 0, summary(result)
    assert "4 passed" in result.stdout, summary(result)
