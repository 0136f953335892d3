"""The plugin is on for everyone who installs the package: it must cost nothing and change
nothing for a project that does not use it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from ._run import run_pytest, summary, write_project


def test_registered_through_the_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("debitura_async") == "_debitura_async_pytest"


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, _debitura_async_pytest\n"
        "heavy = [m for m in ('debitura_async', 'aiohttp', 'opentelemetry', 'attrs')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_fixture_is_prefixed_and_none_is_autouse(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("debitura_async")
    assert plugin is not None
    manager = request._fixturemanager
    names = [n for n in vars(plugin) if not n.startswith(("_", "pytest_"))]
    fixtures = [n for n in names if manager.getfixturedefs(n, request.node)]
    assert len(fixtures) >= 12
    assert all(n.startswith("debitura_") for n in fixtures), fixtures
    assert not set(fixtures) & set(manager._getautousenames(request.node))


def test_a_project_that_does_not_use_it_runs_no_fixture_of_it(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        {
            "test_plain.py": (
                "import pytest\n"
                "def test_sync():\n    assert True\n"
                "@pytest.mark.anyio\nasync def test_async():\n    assert True\n"
                "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
            )
        },
    )
    result = run_pytest(project, "--setup-show", "-p", "no:asyncio")
    assert result.returncode == 0, summary(result)
    assert "2 passed" in result.stdout
    assert "debitura" not in result.stdout + result.stderr
    assert "_debitura_async_pytest" in run_pytest(project, "--trace-config").stdout


def test_a_wrong_marker_is_a_clear_error(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        {
            "test_marker.py": (
                "import pytest\n"
                "@pytest.mark.debitura_config(5)\n"
                "def test_positional(debitura_emulator_config):\n    pass\n"
                "@pytest.mark.debitura_config(tim_scale=5)\n"
                "def test_misspelled(debitura_emulator_config):\n    pass\n"
            )
        },
    )
    result = run_pytest(project, "-p", "no:asyncio")
    assert "2 error" in result.stdout, summary(result)
    assert "takes keyword arguments only" in result.stdout
    assert "tim_scale" in result.stdout
