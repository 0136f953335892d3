"""The same fixtures under anyio's plugin and under pytest-asyncio (strict and auto modes, a
wider loop scope), each in a pytest subprocess with the other plugin switched off by ``-p``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._run import run_pytest, summary, write_project

BODY = """
async def test_submit_and_inspect(debitura_client, debitura_world, debitura_inspector,
                                  debitura_faults, debitura_requests):
    await debitura_faults.http_error(503, endpoint="POST /ingestion-jobs")
    rows = debitura_world.rows(3, tag="t")
    handle = await debitura_client.submit(rows)
    await handle.wait(timeout=30)
    await debitura_inspector.assert_rows_stored_once(rows)
    assert debitura_requests.count("POST /ingestion-jobs", retries=True) == 1


async def test_a_second_test_gets_a_fresh_emulator(debitura_emulator, debitura_client):
    await debitura_client.me()
    assert await debitura_emulator.note_count() == 0


async def test_the_session_emulator(debitura_session_emulator):
    from debitura_async import DebituraClient
    async with DebituraClient(debitura_session_emulator.api_key,
                              base_url=debitura_session_emulator.url) as client:
        await client.me()
"""

BOTH = (
    "import pytest\n"
    + BODY.replace("async def test_", "@pytest.mark.anyio\nasync def test_anyio_")
    + BODY.replace("async def test_", "@pytest.mark.asyncio\nasync def test_asyncio_")
)
ANYIO = "import pytest\npytestmark = pytest.mark.anyio\n" + BODY
ASYNCIO_STRICT = "import pytest\npytestmark = pytest.mark.asyncio\n" + BODY
ASYNCIO_MODULE_LOOP = (
    "import pytest\npytestmark = pytest.mark.asyncio(loop_scope='module')\n" + BODY
)
AUTO = "import pytest\n" + BODY
SCOPE = 'asyncio_default_fixture_loop_scope = "function"'


@pytest.mark.parametrize(
    ("name", "test_file", "flags", "ini"),
    [
        ("anyio", ANYIO, ("-p", "no:asyncio"), ""),
        ("asyncio-strict", ASYNCIO_STRICT, ("-p", "no:anyio"), SCOPE),
        ("asyncio-module-loop", ASYNCIO_MODULE_LOOP, ("-p", "no:anyio"), SCOPE),
        ("asyncio-auto", AUTO, ("-p", "no:anyio"), SCOPE + '\nasyncio_mode = "auto"'),
        ("both", BOTH, (), SCOPE),
    ],
    ids=["anyio", "asyncio-strict", "asyncio-module-loop", "asyncio-auto", "both-in-one-run"],
)
def test_fixtures_under_each_async_plugin(
    tmp_path: Path, name: str, test_file: str, flags: tuple[str, ...], ini: str
) -> None:
    project = write_project(
        tmp_path, {f"test_{name.replace('-', '_')}.py": test_file}, ini_extra=ini
    )
    result = run_pytest(project, *flags, "-W", "error::pytest.PytestDeprecationWarning")
    assert result.returncode == 0, summary(result)
    assert f"{6 if name == 'both' else 3} passed" in result.stdout, summary(result)
    assert "warnings summary" not in result.stdout, summary(result)
