"""Helpers shared by the emulator's integration tests (plain aiohttp, never the project client)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson

from debitura_async.emulator import Emulator, EmulatorConfig, RateLimits

REPO = Path(__file__).resolve().parents[3]
ERROR_KEYS = {"error", "message", "businessErrors"}
TERMINAL = {2, 3, 4}


class Served(Protocol):
    """What Emulator and EmulatorProcess both offer to an HTTP test."""

    @property
    def url(self) -> str: ...

    @property
    def api_key(self) -> str: ...


def spec_path() -> Path:
    """Debitura's OpenAPI spec: ``$DEBITURA_SPEC_PATH`` or ``<repo>/../shared/spec/...``."""
    override = os.environ.get("DEBITURA_SPEC_PATH")
    if override:
        return Path(override)
    return REPO.parent / "shared" / "spec" / "debitura-collection-partner-api.json"


def fast_config(**overrides: Any) -> EmulatorConfig:
    """Default model, 1000x faster, no rate limits (tests opt in), small world."""
    settings: dict[str, Any] = {
        "time_scale": 1000.0,
        "rate_limits": RateLimits.off(),
        "partners": 2,
        "cases_per_partner": 10,
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


@asynccontextmanager
async def serving(
    config: EmulatorConfig | None = None,
) -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession]]:
    async with (
        Emulator(config if config is not None else fast_config()) as emu,
        aiohttp.ClientSession() as session,
    ):
        yield emu, session


def note_rows(case_ids: Sequence[uuid.UUID | str], **fields: Any) -> list[dict[str, Any]]:
    result = []
    for index, case in enumerate(case_ids):
        row: dict[str, Any] = {
            "type": 0,
            "caseId": str(case),
            "description": f"Contacted debtor ({index})",
        }
        row.update(fields)
        result.append(row)
    return result


def headers(key: str | None, **extra: str) -> dict[str, str]:
    result = {"Content-Type": "application/json", "Accept": "application/json"}
    if key is not None:
        result["XApiKey"] = key
    result.update(extra)
    return result


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    key: str | None = None,
    body: object = None,
    data: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """One request; returns (status, parsed JSON body or None, response headers)."""
    payload = data if data is not None else (None if body is None else orjson.dumps(body))
    async with session.request(
        method, url, data=payload, headers=headers(key, **(extra_headers or {}))
    ) as response:
        raw = await response.read()
        parsed = orjson.loads(raw) if raw else None
        return response.status, parsed, response.headers


async def post_job(
    emu: Served, session: aiohttp.ClientSession, rows: list[dict[str, Any]], **kw: Any
) -> tuple[int, Any, Mapping[str, str]]:
    return await request(
        session, "POST", emu.url + "/ingestion-jobs", key=emu.api_key, body={"rows": rows}, **kw
    )


async def wait_terminal(
    emu: Served, session: aiohttp.ClientSession, job_id: str, limit: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        status, body, _ = await request(
            session, "GET", f"{emu.url}/ingestion-jobs/{job_id}", key=emu.api_key
        )
        assert status == 200, body
        if body["status"] in TERMINAL:
            result: dict[str, Any] = body
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not terminal after {limit}s: {body}")
        await asyncio.sleep(0.002)


def assert_error_body(body: Any) -> None:
    assert isinstance(body, dict)
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["error"], str)
    assert isinstance(body["message"], str)
    assert body["businessErrors"], body
    for item in body["businessErrors"]:
        assert set(item) == {"type", "message", "solutionUrl"}
