"""Every Python example in docs/budget.md runs as written (the Redis one against a real server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from debitura_async.emulator import Emulator, EmulatorConfig

from ._redis_server import RedisServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "budget.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_example_runs(number: int) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_budget_{number}"}
    exec(compile(BLOCKS[number], f"docs/budget.md[{number}]", "exec"), namespace)  # noqa: S102


@pytest.mark.anyio
async def test_the_redis_example_against_redis_and_the_emulator(
    redis_server: RedisServer,
) -> None:
    (block,) = [b for b in BLOCKS if "async def ingest_with_shared_budget" in b]
    namespace: dict[str, Any] = {"__name__": "docs_budget_redis"}
    exec(compile(block, "docs/budget.md[redis]", "exec"), namespace)  # noqa: S102
    async with Emulator(EmulatorConfig(seed=3)) as emu:
        await namespace["ingest_with_shared_budget"](redis_server.url, emu.api_key, emu.url)
