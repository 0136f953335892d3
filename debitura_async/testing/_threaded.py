"""An emulator (in-process or child process) on its own event loop in a background thread.

Session-scoped fixtures use it: one emulator serves every test, whatever event loop each test
runs on (anyio's runner or pytest-asyncio's loop of any scope), because it runs on none of them.
Its introspection methods are coroutines of the caller's loop that run the emulator's own
methods on the emulator's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from ..emulator import Emulator, EmulatorConfig, EmulatorProcess, Fault, Partner

__all__ = ["ThreadedEmulator"]

T = TypeVar("T")

_START_TIMEOUT: Final = 60.0


class ThreadedEmulator:
    """The emulator ``make()`` builds, started on a private loop in a daemon thread.

    Same attributes and async methods as :class:`~debitura_async.emulator.Emulator`
    (``url``, ``api_key``, ``partners``, ``case_ids``, ``notes()``, ``stats()``, ``add_fault()``
    ...). :meth:`close` stops the emulator (and its child process), then the loop and the thread.
    """

    def __init__(self, make: Callable[[], Emulator | EmulatorProcess]) -> None:
        self._make = make
        self._loop: asyncio.AbstractEventLoop | None = None
        self._target: Emulator | EmulatorProcess | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="debitura-emulator", daemon=True)

    # -- lifecycle (sync: called from fixtures, outside any loop) ------------------------------

    def start(self) -> None:
        self.thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("the emulator thread did not start in time")
        if self._failure is not None:
            self.thread.join()
            raise self._failure

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self.thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        if self.thread.ident is not None:
            self.thread.join(_START_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            self._failure = self._failure or exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        target = self._make()
        try:
            await target.start()
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._failure = exc
            await target.close()
            return
        self._target = target
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await target.close()

    # -- calls into the emulator's loop --------------------------------------------------------

    @property
    def target(self) -> Emulator | EmulatorProcess:
        if self._target is None:
            raise RuntimeError("the threaded emulator is not running")
        return self._target

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None or not self.thread.is_alive():
            coro.close()
            raise RuntimeError("the threaded emulator is not running")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    @property
    def config(self) -> EmulatorConfig:
        return self.target.config

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def partners(self) -> tuple[Partner, ...]:
        return self.target.partners

    @property
    def api_key(self) -> str:
        return self.target.api_key

    @property
    def case_ids(self) -> tuple[uuid.UUID, ...]:
        return self.target.case_ids

    @property
    def other_partner_case_ids(self) -> tuple[uuid.UUID, ...]:
        return self.target.other_partner_case_ids

    @property
    def pid(self) -> int | None:
        """The child's process id (None for an in-process emulator)."""
        target = self.target
        return target.pid if isinstance(target, EmulatorProcess) else None

    async def notes(
        self, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._run(self.target.notes(case_id=case_id, external_ref=external_ref))

    async def note_count(self) -> int:
        return await self._run(self.target.note_count())

    async def stats(self) -> dict[str, Any]:
        return await self._run(self.target.stats())

    async def jobs(self) -> list[dict[str, Any]]:
        return await self._run(self.target.jobs())

    async def add_fault(self, fault: Fault) -> None:
        await self._run(self.target.add_fault(fault))

    async def clear_faults(self) -> None:
        await self._run(self.target.clear_faults())

    async def restart(self, keep_notes: bool = True) -> None:
        await self._run(self.target.restart(keep_notes=keep_notes))

    async def reset(self) -> None:
        await self._run(self.target.reset())
