"""Every Python example in docs/emulator-latency.md runs as written (real emulator, loopback)."""

from __future__ import annotations

import re

import pytest

from tests.integration.emulator.emulator_support import REPO

DOC = REPO / "docs" / "emulator-latency.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    code = compile(BLOCKS[index], f"{DOC.name}[python block {index}]", "exec")
    exec(code, {"__name__": "__docs__"})  # noqa: S102 - our own documentation
