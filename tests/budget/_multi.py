"""The parent side of ``tests.budget._worker``: start workers, line them up, collect results."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Worker", "four_process_ingest"]

_ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One ``python -m tests.budget._worker`` child."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, settings: dict[str, Any]) -> Worker:
        env = {**os.environ, "PYTHONPATH": str(_ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.budget._worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=_ROOT,
            env=env,
        )
        worker = cls(proc)
        await worker.send(settings)
        return worker

    async def send(self, data: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(data) + b"\n")
        await self.proc.stdin.drain()

    async def read(self, wait: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), wait)
        if not line:
            code = await self.proc.wait()
            raise RuntimeError(f"worker exited with code {code} without an answer")
        result: dict[str, Any] = orjson.loads(line)
        return result

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()


async def four_process_ingest(
    *,
    budget: str,
    base_url: str,
    api_key: str,
    case_ids: Sequence[uuid.UUID],
    limits: Sequence[tuple[int, float]],
    rows_each: int,
    batch_size: int,
    time_scale: float,
    redis_url: str = "",
    safety: float = 0.02,
    processes: int = 4,
) -> list[dict[str, Any]]:
    """``processes`` workers ingesting ``rows_each`` distinct rows each, started at one moment."""
    workers: list[Worker] = []
    try:
        for n in range(processes):
            workers.append(
                await Worker.start(
                    {
                        "mode": "ingest",
                        "budget": budget,
                        "redis_url": redis_url,
                        "api_key": api_key,
                        "base_url": base_url,
                        "case_ids": [str(c) for c in case_ids],
                        "limits": [list(lim) for lim in limits],
                        "safety": safety,
                        "first_row": n * rows_each,
                        "rows": rows_each,
                        "batch_size": batch_size,
                        "time_scale": time_scale,
                    }
                )
            )
        for worker in workers:
            assert (await worker.read())["ready"]
        for worker in workers:
            await worker.send("go")
        return [await worker.read(wait=300.0) for worker in workers]
    finally:
        for worker in workers:
            await worker.close()
