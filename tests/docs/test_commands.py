"""The shell side of the docs: no option the docs name can drift from the real command line.

* Every ``debitura-async ...`` and ``python -m debitura_async.emulator ...`` command in a
  ``console`` block uses only options that the ``--help`` of that very (sub)command lists.
* Every ``--option`` the CLI and emulator references name anywhere (tables included) exists.
* ``console`` blocks marked ``<!-- run -->`` are executed, each ``$`` command in a subprocess
  against the docs emulator, and must exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from debitura_async import cli
from debitura_async.emulator import cli as emulator_cli

from ._markdown import ROOT, Block, all_blocks, commands
from .conftest import DocsEmulator

CONSOLE = [b for b in all_blocks() if b.lang in ("console", "shell", "bash", "sh")]
SUBCOMMANDS = ("ingest", "status", "whoami", "emulator", "demo", "reconcile")
EMULATOR_MODULE = "debitura_async.emulator"
_OPTION = re.compile(r"(?<![\w`-])--(\[no-\])?([a-z][a-z0-9-]*)")
REFERENCES = ("docs/reference/cli.md", "docs/cli.md", "docs/reference/emulator.md")


def _help(parser: argparse.ArgumentParser, *args: str) -> str:
    """What ``--help`` prints, in-process (a subprocess per command costs a second each)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args([*args, "--help"])
    return out.getvalue()


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    out = {"": _help(cli.build_parser())}
    for sub in SUBCOMMANDS:
        out[sub] = _help(cli.build_parser(), sub)
    emulator = argparse.ArgumentParser(prog="python -m debitura_async.emulator")
    emulator_cli.add_arguments(emulator)
    out[EMULATOR_MODULE] = _help(emulator)
    return out


def _has(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def invocations(line: str) -> list[tuple[str, list[str]]]:
    """``(which help, options used)`` for each of our commands in a shell line."""
    found: list[tuple[str, list[str]]] = []
    for part in re.split(r"&&|\|\||;|\|", line):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        for i, word in enumerate(words):
            if word.endswith("debitura-async"):
                rest = words[i + 1 :]
                sub = next((w for w in rest if not w.startswith("-")), "")
                which = sub if sub in SUBCOMMANDS else ""
                found.append((which, [w.split("=")[0] for w in rest if w.startswith("--")]))
            elif word == EMULATOR_MODULE and i > 0 and words[i - 1] == "-m":
                rest = words[i + 1 :]
                found.append(
                    (EMULATOR_MODULE, [w.split("=")[0] for w in rest if w.startswith("--")])
                )
    return found


def test_commands_are_recognised() -> None:
    assert invocations(".venv/bin/debitura-async ingest x.csv --map a=b --resume") == [
        ("ingest", ["--map", "--resume"])
    ]
    assert invocations("python -m debitura_async.emulator --port 8080") == [
        (EMULATOR_MODULE, ["--port"])
    ]
    assert invocations("pip install -e . && .venv/bin/debitura-async demo") == [("demo", [])]


def test_a_misspelled_option_is_caught(helps: dict[str, str]) -> None:
    ((which, options),) = invocations("debitura-async ingest x.csv --resum --map a=b")
    assert [o for o in options if not _has(helps[which], o)] == ["--resum"]
    assert not _has(helps["status"], "--map")  # an option of another subcommand


@pytest.mark.parametrize("block", CONSOLE, ids=[b.id for b in CONSOLE])
def test_console_commands_use_real_options(block: Block, helps: dict[str, str]) -> None:
    for line in commands(block):
        for which, options in invocations(line):
            unknown = [o for o in options if not _has(helps[which], o)]
            assert not unknown, f"{block.id}: {line!r}: not in `{which or '-'} --help`: {unknown}"


@pytest.mark.parametrize("page", REFERENCES)
def test_every_option_a_reference_names_exists(page: str, helps: dict[str, str]) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    every_help = "\n".join(helps.values())
    missing: set[str] = set()
    for match in _OPTION.finditer(text):
        names = [f"--{match[2]}", f"--no-{match[2]}"] if match[1] else [f"--{match[2]}"]
        missing.update(name for name in names if not _has(every_help, name))
    assert not missing, f"{page} names options no command has: {sorted(missing)}"


def test_the_readme_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    (quick_start,) = [b for b in CONSOLE if b.path == "README.md"]
    demo, suite = commands(quick_start)
    assert demo.endswith("debitura-async demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert suite in ci, "the README's test command must be the one .ci/run runs, verbatim"


RUN = [b for b in CONSOLE if b.marker == "run"]


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_runnable_console_blocks_run(
    block: Block, docs_emulator: DocsEmulator, tmp_path: Path
) -> None:
    lines = commands(block)
    assert lines, f"{block.id}: a run block without commands"
    for line in lines:
        docs_emulator.reset()
        done = subprocess.run(
            shlex.split(line),
            cwd=ROOT,
            env=docs_emulator.environ(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{block.id}: {line!r} exit {done.returncode}\n{done.stderr}"
        assert done.stdout.strip(), f"{block.id}: {line!r} printed nothing"
