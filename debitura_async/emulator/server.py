"""Running the emulator in-process (:class:`Emulator`) or in a child (:class:`EmulatorProcess`).

Both are async context managers with the same attributes (``url``, ``api_key``, ``partners``,
``case_ids``, ``other_partner_case_ids``, ``token``, ``introspection_headers``) and the same
async introspection methods (``notes``, ``note_count``, ``stats``, ``jobs``, ``job_schedule``,
``add_fault``, ``clear_faults``, ``restart``, ``reset``). ``EmulatorProcess`` calls the child's
``/_emulator/*`` endpoints with the token; ``Emulator``'s methods need none (in-process).
``Emulator`` also exposes the pure state object as ``core``.

>>> import asyncio
>>> async def demo() -> int:
...     async with Emulator(EmulatorConfig(partners=2, cases_per_partner=3)) as emu:
...         return len(emu.case_ids)
>>> asyncio.run(demo())
3
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import sys
import uuid
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import orjson
from aiohttp import web

from .app import EmulatorService, build_app
from .config import EmulatorConfig, Fault, Partner
from .core import EmulatorCore
from .introspection import TOKEN_HEADER
from .oracle import JobScheduledCallback, ScheduledJob

__all__ = ["Emulator", "EmulatorProcess", "check_token", "format_url", "is_loopback_host"]

_READY_LINE_LIMIT: Final = 256 * 1024 * 1024
_SHUTDOWN_TIMEOUT: Final = 2.0


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback_host("127.0.0.1"), is_loopback_host("0.0.0.0"), is_loopback_host("localhost")
    (True, False, True)
    """
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_non_loopback: bool) -> None:
    if not allow_non_loopback and not is_loopback_host(host):
        raise ValueError(
            f"refusing to bind non-loopback address {host!r}: the emulator prints its API keys and"
            " has no real security; pass allow_non_loopback=True (--allow-non-loopback) to insist"
        )


def format_url(host: str, port: int) -> str:
    """``http://host:port`` (IPv6 literals bracketed, no trailing slash)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check_token(token: str | None) -> str | None:
    """A caller's token: None (a random one is made), or 16+ printable ASCII characters."""
    if token is None:
        return None
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("an emulator token needs 16+ printable ASCII characters, no blanks")
    return token


def _partner_views(
    partners: tuple[Partner, ...],
) -> tuple[tuple[uuid.UUID, ...], tuple[uuid.UUID, ...]]:
    first = partners[0].case_ids
    others = tuple(c for p in partners[1:] for c in p.case_ids)
    return first, others


class Emulator:
    """The emulator on a loopback port of the current event loop.

    ``async with Emulator(EmulatorConfig(...)) as emu:`` binds ``host``/``port`` (0 = a free
    port); ``emu.url`` has no trailing slash. ``on_job_scheduled(ScheduledJob)`` is called for
    every new job before its 202 is sent: the oracle hook of :mod:`.oracle`.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
        access_log: bool = False,
        on_job_scheduled: JobScheduledCallback | None = None,
        token: str | None = None,
    ) -> None:
        check_host(host, allow_non_loopback=allow_non_loopback)
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self._port = port
        self._access_log = access_log
        self.service = EmulatorService(
            self.config, on_job_scheduled=on_job_scheduled, token=check_token(token)
        )
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        app = build_app(self.service, host=self.host)
        kwargs: dict[str, Any] = {} if self._access_log else {"access_log": None}
        runner = web.AppRunner(app, shutdown_timeout=_SHUTDOWN_TIMEOUT, **kwargs)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = int(runner.addresses[0][1])
        self._url = format_url(self.host, port)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def core(self) -> EmulatorCore:
        return self.service.core

    @property
    def token(self) -> str:
        """The ``X-Emulator-Token`` header value that ``/_emulator/*`` over HTTP requires."""
        return self.service.token

    @property
    def introspection_headers(self) -> dict[str, str]:
        """``{"X-Emulator-Token": token}``, for HTTP calls to ``/_emulator/*``."""
        return {TOKEN_HEADER: self.token}

    @property
    def partners(self) -> tuple[Partner, ...]:
        return self.service.core.world.partners

    @property
    def api_key(self) -> str:
        return self.partners[0].api_key

    @property
    def case_ids(self) -> tuple[uuid.UUID, ...]:
        return _partner_views(self.partners)[0]

    @property
    def other_partner_case_ids(self) -> tuple[uuid.UUID, ...]:
        return _partner_views(self.partners)[1]

    async def notes(
        self, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]:
        return self.service.notes(case_id=case_id, external_ref=external_ref)

    async def note_count(self) -> int:
        return self.service.note_count()

    async def stats(self) -> dict[str, Any]:
        return self.service.stats()

    async def jobs(self) -> list[dict[str, Any]]:
        return self.service.jobs()

    async def job_schedule(self, job_id: uuid.UUID | str) -> ScheduledJob | None:
        """When the job starts and finishes (see :mod:`.oracle`); ``None`` if unknown."""
        return self.service.job_schedule(job_id)

    async def add_fault(self, fault: Fault) -> None:
        self.service.add_fault(fault)

    async def clear_faults(self) -> None:
        self.service.clear_faults()

    async def restart(self, keep_notes: bool = True) -> None:
        self.service.restart(keep_notes=keep_notes)

    async def reset(self) -> None:
        self.service.reset()


class EmulatorProcess:
    """The emulator in a child ``python -m debitura_async.emulator`` process.

    The config goes to the child as one JSON line on stdin; the child answers with its JSON ready
    line on stdout. The child exits when its stdin closes, so it cannot outlive this object (or
    the parent process). Leaving the context sends SIGTERM, then SIGKILL after ``stop_timeout``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        python: str = sys.executable,
    ) -> None:
        check_host(host, allow_non_loopback=allow_non_loopback)
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self._port = port
        self._allow_non_loopback = allow_non_loopback
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._partners: tuple[Partner, ...] = ()
        self._token: str | None = None
        self.returncode: int | None = None

    async def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("emulator process already started")
        args = [
            "-m",
            "debitura_async.emulator",
            "--host",
            self.host,
            "--port",
            str(self._port),
            "--json",
            "--config",
            "-",
            "--exit-on-stdin-eof",
        ]
        if self._allow_non_loopback:
            args.append("--allow-non-loopback")
        proc = await asyncio.create_subprocess_exec(
            self._python,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_READY_LINE_LIMIT,
        )
        self._proc = proc
        try:
            await asyncio.wait_for(self._handshake(proc), self._startup_timeout)
        except BaseException:
            await self.close()
            raise
        self._session = aiohttp.ClientSession()

    async def _handshake(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is None or proc.stdout is None:  # pragma: no cover - PIPE always gives both
            raise RuntimeError("emulator process pipes are missing")
        proc.stdin.write(orjson.dumps(self.config.to_dict()) + b"\n")
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            code = await proc.wait()
            raise RuntimeError(f"emulator process exited with code {code} before it was ready")
        ready = orjson.loads(line)
        self._url = str(ready["url"])
        self._token = str(ready["token"])
        self._partners = tuple(Partner.from_dict(p) for p in ready["partners"])

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("emulator process not started")
        return self._proc.pid

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        self.returncode = proc.returncode

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator process not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def partners(self) -> tuple[Partner, ...]:
        if not self._partners:
            raise RuntimeError("emulator process not started")
        return self._partners

    @property
    def token(self) -> str:
        """The child's ``X-Emulator-Token`` (from its ready line); the methods below send it."""
        if self._token is None:
            raise RuntimeError("emulator process not started")
        return self._token

    @property
    def introspection_headers(self) -> dict[str, str]:
        """``{"X-Emulator-Token": token}``, for HTTP calls to ``/_emulator/*``."""
        return {TOKEN_HEADER: self.token}

    @property
    def api_key(self) -> str:
        return self.partners[0].api_key

    @property
    def case_ids(self) -> tuple[uuid.UUID, ...]:
        return _partner_views(self.partners)[0]

    @property
    def other_partner_case_ids(self) -> tuple[uuid.UUID, ...]:
        return _partner_views(self.partners)[1]

    async def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> Any:
        if self._session is None:
            raise RuntimeError("emulator process not started")
        data = None if json is None else orjson.dumps(json)
        headers = self.introspection_headers
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self._session.request(
            method, self.url + path, params=params, data=data, headers=headers
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise RuntimeError(
                    f"emulator introspection {method} {path} failed: {response.status} {body!r}"
                )
            return orjson.loads(body)

    async def notes(
        self, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        if case_id is not None:
            params["caseId"] = str(case_id)
        if external_ref is not None:
            params["externalRef"] = external_ref
        result: list[dict[str, Any]] = await self._call("GET", "/_emulator/notes", params=params)
        return result

    async def note_count(self) -> int:
        return int((await self.stats())["notes"])

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/_emulator/stats")
        return result

    async def jobs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/_emulator/jobs")
        return result

    async def job_schedule(self, job_id: uuid.UUID | str) -> ScheduledJob | None:
        """``GET /_emulator/jobs/{jobId}``: the job's schedule, ``None`` if unknown (404)."""
        if self._session is None:
            raise RuntimeError("emulator process not started")
        url = f"{self.url}/_emulator/jobs/{job_id}"
        async with self._session.get(url, headers=self.introspection_headers) as response:
            body = await response.read()
            if response.status == 404:
                return None
            if response.status >= 400:
                raise RuntimeError(f"emulator introspection GET {url} failed: {response.status}")
            return ScheduledJob.from_dict(orjson.loads(body))

    async def add_fault(self, fault: Fault) -> None:
        await self._call("POST", "/_emulator/faults", json=fault.to_dict())

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/_emulator/faults")

    async def restart(self, keep_notes: bool = True) -> None:
        params = {"keepNotes": "true" if keep_notes else "false"}
        await self._call("POST", "/_emulator/restart", params=params)

    async def reset(self) -> None:
        await self._call("POST", "/_emulator/reset")
