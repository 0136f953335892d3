"""Testing your integration against the offline emulator: the pieces behind the ``debitura_``
pytest fixtures (see ``docs/testing.md``), usable without pytest too.

The fixtures themselves live in the ``_debitura_async_pytest`` plugin module, which pytest loads
through the ``pytest11`` entry point; it imports this package only when a test asks for one.
"""

from __future__ import annotations

from ._helpers import (
    DebituraWorld,
    EmulatorLike,
    FaultPlan,
    Inspector,
    RequestLog,
    client_options,
    default_config,
    instant_config,
    make_process,
    time_scale_of,
)
from ._threaded import ThreadedEmulator

__all__ = [
    "DebituraWorld",
    "EmulatorLike",
    "FaultPlan",
    "Inspector",
    "RequestLog",
    "ThreadedEmulator",
    "client_options",
    "default_config",
    "instant_config",
    "make_process",
    "time_scale_of",
]
