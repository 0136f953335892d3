"""The emulator the docs' examples run against when they read ``$DEBITURA_API_KEY``.

One child process for the whole docs run (``python -m debitura_async.emulator``, the demo world,
zero latency), reset before every example, so an example written as production code (a client
configured from the environment) runs as written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson
import pytest

from ._markdown import ROOT

DEMO_WORLD = ROOT / "examples" / "demo-world.json"


@attrs.frozen
class DocsEmulator:
    url: str
    api_key: str
    case_ids: tuple[str, ...]
    token: str

    def reset(self) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/_emulator/reset",
            method="POST",
            headers={"X-Emulator-Token": self.token},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            response.read()

    def environ(self, tmp: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBITURA_")}
        env["DEBITURA_API_KEY"] = self.api_key
        env["DEBITURA_BASE_URL"] = self.url
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["HOME"] = str(tmp)
        env["PYTHONWARNINGS"] = "error::ResourceWarning"
        # An example that runs pytest itself loads the plugins it names (-p anyio) and no others:
        # autoloading every installed plugin (schemathesis...) costs seconds per run.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env.pop("PYTHONPATH", None)
        return env


@pytest.fixture(scope="session")
def docs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsEmulator]:
    command = [
        sys.executable,
        "-m",
        "debitura_async.emulator",
        "--json",
        "--port",
        "0",
        "--world",
        str(DEMO_WORLD),
        "--zero-latency",
        "--exit-on-stdin-eof",
    ]
    log = tmp_path_factory.mktemp("docs-emulator") / "stderr.log"
    with (
        log.open("wb") as stderr,
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        ) as child,
    ):
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            line = child.stdout.readline()
            assert line, f"the docs emulator did not start: {log.read_text(errors='replace')}"
            ready = orjson.loads(line)
            partner = ready["partners"][0]
            yield DocsEmulator(
                ready["url"], partner["apiKey"], tuple(partner["caseIds"]), ready["token"]
            )
        finally:
            child.stdin.close()  # --exit-on-stdin-eof: the emulator stops
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck child
                child.kill()
                child.wait()
