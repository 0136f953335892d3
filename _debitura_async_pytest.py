"""The debitura-async pytest plugin: ``debitura_`` fixtures over the offline emulator.

pytest loads this module for everyone who installs debitura-async (the ``pytest11`` entry point),
so it is kept harmless: no fixture is autouse, it adds one marker and nothing else to a run, and
it imports nothing of debitura_async (aiohttp and the rest) until a test asks for a fixture —
the same reason hypothesis keeps its plugin in a top-level ``_hypothesis_pytestplugin`` module.

Async fixtures run on whichever plugin runs the test: anyio's (``@pytest.mark.anyio``) or
pytest-asyncio's (``@pytest.mark.asyncio`` or its auto mode), on the test's own event loop.
Session-scoped emulators run on a private loop in a thread, so any test loop can use them.
See ``docs/testing.md``.
"""

from __future__ import annotations

import functools
import types
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from debitura_async import DebituraClient
    from debitura_async.emulator import Emulator, EmulatorConfig, EmulatorProcess
    from debitura_async.testing import (
        DebituraWorld,
        EmulatorLike,
        FaultPlan,
        Inspector,
        RequestLog,
        ThreadedEmulator,
    )

MARKER: Final = "debitura_config"
_ASYNC_FIXTURE: Final = "_debitura_async_fixture"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**fields): change EmulatorConfig fields (time_scale=, latency=, rate_limits=, "
        "faults=, ...) of this test's debitura_emulator / debitura_emulator_process",
    )


def _async_fixture(func: Any) -> Any:
    """Mark one of our async fixtures, so :func:`pytest_fixture_setup` can hand it to the
    plugin that runs the requesting test."""
    setattr(func, _ASYNC_FIXTURE, True)
    return func


def _asyncio_loop_scope(request: pytest.FixtureRequest) -> Any:
    marker = request.node.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") if marker is not None else None
    if scope is None:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:
            scope = None
    return scope or "function"


def _pytest_asyncio_active(config: pytest.Config) -> bool:
    manager = config.pluginmanager
    return manager.hasplugin("asyncio") or manager.hasplugin("pytest_asyncio.plugin")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    """Our async fixtures follow the test: anyio's plugin takes them for a test that uses
    ``anyio_backend``; otherwise, when pytest-asyncio is active, it takes them (on the test's
    loop scope) as if they were decorated with ``@pytest_asyncio.fixture``."""
    func = fixturedef.func
    if (
        not getattr(func, _ASYNC_FIXTURE, False)
        or "anyio_backend" in request.fixturenames
        or not _pytest_asyncio_active(request.config)
    ):
        return (yield)
    import pytest_asyncio  # noqa: PLC0415 - only when pytest-asyncio is active

    twin = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    functools.update_wrapper(twin, func)
    pytest_asyncio.fixture(twin, loop_scope=_asyncio_loop_scope(request))  # marks twin
    fixturedef.func = twin  # until this fixture is finished: pytest-asyncio looks again later

    def restore() -> None:
        fixturedef.func = func

    fixturedef.addfinalizer(restore)
    return (yield)


# -- configuration -------------------------------------------------------------------------------


@pytest.fixture
def debitura_emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The config of this test's emulator: :func:`debitura_async.testing.default_config`
    changed by the test's ``@pytest.mark.debitura_config(...)``. Override it to change all."""
    from debitura_async.testing import default_config  # noqa: PLC0415 - lazy on purpose

    changes: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise TypeError(f"@pytest.mark.{MARKER} takes keyword arguments only")
        changes.update(marker.kwargs)
    return default_config(**changes)


@pytest.fixture(scope="session")
def debitura_session_emulator_config() -> EmulatorConfig:
    """The config of the session's emulators (override it in your conftest.py)."""
    from debitura_async.testing import default_config  # noqa: PLC0415

    return default_config()


# -- emulators -----------------------------------------------------------------------------------


@pytest.fixture
@_async_fixture
async def debitura_emulator(debitura_emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    """An in-process emulator of this test only, on a free 127.0.0.1 port of the test's loop."""
    from debitura_async.emulator import Emulator  # noqa: PLC0415

    async with Emulator(debitura_emulator_config) as emulator:
        yield emulator


@pytest.fixture
@_async_fixture
async def debitura_emulator_process(
    debitura_emulator_config: EmulatorConfig,
) -> AsyncIterator[EmulatorProcess]:
    """An emulator of this test only in a child process (on a free 127.0.0.1 port)."""
    from debitura_async.testing import make_process  # noqa: PLC0415

    async with make_process(debitura_emulator_config) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def debitura_session_emulator(
    debitura_session_emulator_config: EmulatorConfig,
) -> Iterator[ThreadedEmulator]:
    """One in-process emulator for the whole session, on its own loop in a thread: usable from
    any test's loop. Tests share its state: use unique ``externalRef`` values."""
    from debitura_async.emulator import Emulator  # noqa: PLC0415
    from debitura_async.testing import ThreadedEmulator  # noqa: PLC0415

    emulator = ThreadedEmulator(lambda: Emulator(debitura_session_emulator_config))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture(scope="session")
def debitura_session_emulator_process(
    debitura_session_emulator_config: EmulatorConfig,
) -> Iterator[ThreadedEmulator]:
    """One emulator child process for the whole session (driven from a thread of its own)."""
    from debitura_async.testing import ThreadedEmulator, make_process  # noqa: PLC0415

    emulator = ThreadedEmulator(lambda: make_process(debitura_session_emulator_config))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def debitura_server(debitura_emulator: Emulator) -> EmulatorLike:
    """The emulator ``debitura_client``, ``debitura_world``, ``debitura_faults`` and
    ``debitura_inspector`` use: ``debitura_emulator`` unless you override this fixture (with
    ``debitura_session_emulator``, ``debitura_emulator_process`` ...)."""
    return debitura_emulator


# -- what tests use --------------------------------------------------------------------------------


@pytest.fixture
def debitura_world(debitura_server: EmulatorLike) -> DebituraWorld:
    """The emulated partners, their cases and case references (``debitura_world.case_ids`` are
    the client's partner's; ``debitura_world.rows(n)`` makes valid rows)."""
    from debitura_async.testing import DebituraWorld  # noqa: PLC0415

    return DebituraWorld.of(debitura_server)


@pytest.fixture
def debitura_client_options() -> dict[str, Any]:
    """Extra ``DebituraClient`` keyword arguments for ``debitura_client`` (override it)."""
    return {}


@pytest.fixture
def debitura_requests() -> RequestLog:
    """Every HTTP attempt ``debitura_client`` made (its ``response`` event hook)."""
    from debitura_async.testing import RequestLog  # noqa: PLC0415

    return RequestLog()


@pytest.fixture
@_async_fixture
async def debitura_client(
    debitura_server: EmulatorLike,
    debitura_client_options: dict[str, Any],
    debitura_requests: RequestLog,
) -> AsyncIterator[DebituraClient]:
    """A ``DebituraClient`` bound to ``debitura_server`` (its first partner's key, quick
    retries, polling scaled to its time scale), closed after the test."""
    from debitura_async import DebituraClient  # noqa: PLC0415
    from debitura_async.testing import client_options  # noqa: PLC0415

    options = client_options(debitura_server, **debitura_client_options)
    hooks = dict(options.pop("event_hooks", None) or {})
    hooks["response"] = [*hooks.get("response", ()), debitura_requests]
    async with DebituraClient(**options, event_hooks=hooks) as client:
        yield client


@pytest.fixture
@_async_fixture
async def debitura_faults(debitura_server: EmulatorLike) -> AsyncIterator[FaultPlan]:
    """Program faults and latency for this test (cleared after it)."""
    from debitura_async.testing import FaultPlan, time_scale_of  # noqa: PLC0415

    plan = FaultPlan(debitura_server, time_scale_of(debitura_server))
    try:
        yield plan
    finally:
        if plan.added:
            await plan.clear()


@pytest.fixture
@_async_fixture
async def debitura_inspector(debitura_server: EmulatorLike) -> Inspector:
    """Assert on what the emulator stored and counted during this test: notes, requests by
    status, idempotency replays, jobs."""
    from debitura_async.testing import Inspector  # noqa: PLC0415

    return await Inspector.start(debitura_server)
