"""What every part of the CLI shares: the program name, exit codes, the one-line error, formats."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Final

from ..client import API_KEY_ENV
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    DebituraError,
    PermissionDeniedError,
    TransportError,
)

__all__ = [
    "EXIT_ACCOUNTING",
    "EXIT_CODES",
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_ROWS_FAILED",
    "EXIT_UNRESOLVED",
    "EXIT_USAGE",
    "PROG",
    "CLIError",
    "cli_words",
    "fatal_message",
    "fmt_duration",
]

PROG: Final = "debitura-async"

DEFAULT_CONCURRENCY: Final = 8
DEFAULT_EMULATOR_TIME_SCALE: Final = 20.0
DEMO_INPUT: Final = "crm-notes-export.csv"
DEMO_WORLD: Final = "demo-world.json"
DEMO_MAP: Final = (
    "caseId=CaseGuid",
    "description=NoteText",
    "eventDate=CreatedAtUtc",
    "externalRef=NoteId",
)
DEMO_BATCH_SIZE: Final = 100
DEMO_CONCURRENCY: Final = 6
DEMO_TIME_SCALE: Final = 2.0

EXIT_OK: Final = 0
EXIT_ROWS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNRESOLVED: Final = 3
EXIT_FATAL: Final = 4
EXIT_ACCOUNTING: Final = 5
EXIT_CODES: Final = {
    EXIT_OK: "all rows succeeded",
    EXIT_ROWS_FAILED: "some rows failed or were rejected",
    EXIT_USAGE: "usage or input error",
    EXIT_UNRESOLVED: "unresolved jobs remain (stopped, deadline, server unreachable):"
    " run again with --resume",
    EXIT_FATAL: "authentication failure or fatal error",
    EXIT_ACCOUNTING: "the counts do not add up (rows read != succeeded + failed + rejected +"
    " unresolved): check the report, run again with --resume",
}


class CLIError(Exception):
    """Ends a command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# The library speaks Python (``allow_insecure_http=True``); a CLI user types flags.
_PYTHON_TO_FLAGS: Final = (
    (re.compile(r"\ballow_insecure_http=True\b"), "--allow-insecure-http"),
    (re.compile(r"\bapi_key=\.\.\."), "--api-key"),
    (re.compile(r"\bapi_key\b"), "--api-key"),
    (re.compile(r"\bbase_url\b"), "--base-url"),
    (re.compile(r"\bbatch_size\b"), "--batch-size"),
    (re.compile(r"\bmax_jobs_in_flight\b"), "--concurrency"),
    (re.compile(r"\bdeadline\b(?= must)"), "--deadline"),
    (re.compile(r"\bthe (--[a-z-]+) environment variable"), r"\1"),
)


def cli_words(message: str) -> str:
    """A library message with its Python argument names replaced by the CLI's flags."""
    for pattern, flag in _PYTHON_TO_FLAGS:
        message = pattern.sub(flag, message)
    return message.replace(f"set the {API_KEY_ENV} environment variable", f"set ${API_KEY_ENV}")


def fatal_message(exc: BaseException) -> tuple[str, int]:
    """A one-line message and exit code for an error that ends a command."""
    if isinstance(exc, AuthenticationError):
        return (
            "authentication failed: the API key was refused (401); check --api-key or"
            f" ${API_KEY_ENV}",
            EXIT_FATAL,
        )
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied (403): {exc}", EXIT_FATAL
    if isinstance(exc, ConfigurationError):
        return cli_words(str(exc)), EXIT_USAGE
    if isinstance(exc, TransportError):
        return f"cannot reach the API: {exc}", EXIT_FATAL
    if isinstance(exc, DebituraError):
        text = " ".join(str(exc).split())  # one line, whatever the server sent
        return text or type(exc).__name__, EXIT_FATAL
    return str(exc) or type(exc).__name__, EXIT_FATAL


def examples_dir() -> Path:
    """The bundled examples: in the wheel (``debitura_async/_examples``) or the source tree."""
    packaged = Path(str(resources.files("debitura_async"))) / "_examples"
    if (packaged / DEMO_INPUT).is_file():
        return packaged
    source = Path(__file__).resolve().parent.parent.parent / "examples"
    if (source / DEMO_INPUT).is_file():
        return source
    raise CLIError(
        "the bundled examples are missing (expected debitura_async/_examples in the installed"
        " package, or examples/ in a source checkout)",
        EXIT_FATAL,
    )


def fmt_duration(seconds: float) -> str:
    """``0:41``, ``1:02:03``; ``?`` for a negative or unknown duration."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fmt_wait(seconds: float) -> str:
    """A wait as people say it: ``8 s``, ``2 min 5 s``, ``23 h 59 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min"


def where(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def describe_reason(reason: str, mapping: Mapping[str, str]) -> str:
    """Name the input column next to the API field (``caseId (column 'CaseGuid'): ...``)."""
    field, sep, rest = reason.partition(": ")
    if sep and field in mapping:
        return f"{field} (column {mapping[field]!r}): {rest}"
    return reason


LINE_PREFIX: Final = re.compile(r"^lines? \d+(?:-\d+)?: ")


def with_line(reason: str, first: int, last: int) -> str:
    if reason.startswith(("line ", "lines ")):
        return reason
    return f"{where(first, last)}: {reason}"
