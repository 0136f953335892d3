"""Every example of ``docs/emulator-api.md`` runs as written (each Python block in its own
interpreter, as a reader would paste it), and its world-file example loads."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
import pytest

from debitura_async.emulator import World
from tests.integration.emulator.emulator_support import REPO

DOC = REPO / "docs" / "emulator-api.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [
        code for lang, code in BLOCK.findall(DOC.read_text(encoding="utf-8")) if lang == language
    ]


def test_the_doc_has_examples() -> None:
    assert len(blocks("python")) >= 2
    assert len(blocks("json")) == 1


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_example_runs(index: int) -> None:
    code = blocks("python")[index]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_world_file_example_loads() -> None:
    world = World.from_dict(orjson.loads(blocks("json")[0]))
    assert dict(world.partners[0].references) == {
        world.partners[0].case_ids[0]: "112179442 & 112179443"
    }
