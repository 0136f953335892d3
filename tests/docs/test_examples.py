"""Every ``python`` code block of README.md and docs/ runs, as written, in its own interpreter.

Each block is a complete script (imports, setup, teardown). It runs in a fresh temporary working
directory with ``DEBITURA_API_KEY`` / ``DEBITURA_BASE_URL`` pointing at the docs emulator (see
``conftest.py``), so an example that configures its client from the environment meets a real
server; an example that starts its own ``Emulator`` ignores them. It must exit 0, print nothing
that looks like a traceback, a warning or a leaked resource, and print what its ``output`` block
shows, if it has one. Markers are described in ``_markdown.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ._markdown import Block, all_blocks, output_pattern
from .conftest import DocsEmulator

BLOCKS = all_blocks()
PYTHON = [b for b in BLOCKS if b.lang in ("python", "py")]
EXAMPLE_TIMEOUT = 30.0
_FORBIDDEN_ON_STDERR = (
    "Traceback",
    "Exception ignored",
    "was never retrieved",
    "Warning:",
    "Unclosed",
    "Task was destroyed",
)


def _param(block: Block) -> object:
    if block.marker == "file":
        reason = "a project file: run by tests/plugin/test_docs.py inside a pytest project"
        return pytest.param(block, id=block.id, marks=pytest.mark.skip(reason=reason))
    if block.marker == "not-run":
        return pytest.param(
            block, id=block.id, marks=pytest.mark.skip(reason=block.marker_arg or "")
        )
    if block.marker == "xfail":
        mark = pytest.mark.xfail(strict=True, reason=block.marker_arg or "")
        return pytest.param(block, id=block.id, marks=mark)
    return pytest.param(block, id=block.id)


REPO_CWD_PAGES = frozenset({"docs/input-formats.md"})
"""Pages whose examples read the committed sample exports: run from the repository root."""


def run_example(
    block: Block, emulator: DocsEmulator, tmp: Path
) -> subprocess.CompletedProcess[str]:
    script = tmp / "example.py"
    script.write_text(block.code, encoding="utf-8")
    emulator.reset()
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=root if block.path in REPO_CWD_PAGES else tmp,
        env=emulator.environ(tmp),
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("block", [_param(b) for b in PYTHON])
def test_example_runs_as_written(block: Block, docs_emulator: DocsEmulator, tmp_path: Path) -> None:
    done = run_example(block, docs_emulator, tmp_path)
    where = f"{block.id}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"exit {done.returncode}: {where}"
    for bad in _FORBIDDEN_ON_STDERR:
        assert bad not in done.stderr, f"{bad!r} on stderr: {where}"
    if block.expected_output is not None:
        pattern = output_pattern(block.expected_output)
        assert pattern.fullmatch(done.stdout), (
            f"stdout differs from the output block:\n--- shown\n{block.expected_output}{where}"
        )


def test_there_are_examples_and_the_readme_runs_all_of_its_own() -> None:
    readme = [b for b in PYTHON if b.path == "README.md"]
    assert readme, "the README has no python example"
    assert all(b.marker is None for b in readme), "every README example runs, unmarked"
    assert readme[0].expected_output is not None, "the README example shows what it prints"
    assert len(PYTHON) >= 10


def test_markers_stay_rare_and_give_a_reason() -> None:
    marked = [b for b in PYTHON if b.marker in ("not-run", "xfail")]
    assert all(b.marker_arg for b in marked), [b.id for b in marked if not b.marker_arg]
    assert sum(b.marker == "not-run" for b in PYTHON) <= 2, [b.id for b in marked]
    assert all(b.marker in (None, "not-run", "xfail", "file") for b in PYTHON)
