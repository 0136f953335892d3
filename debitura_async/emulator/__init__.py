"""Offline Debitura Collection Partner API emulator.

An aiohttp.web application around a pure state core (:mod:`.core`), with a latency model, rate
limits, idempotency and fault injection. Start it with ``python -m debitura_async.emulator``,
``debitura-async emulator``, ``async with Emulator(...)`` (in-process) or
``async with EmulatorProcess(...)`` (child process). It imports nothing from the client side: it
is an independent second reading of Debitura's contract.
"""

from __future__ import annotations

from .config import EmulatorConfig, Fault, FaultKind, LatencyModel, Partner, RateLimits, World
from .server import Emulator, EmulatorProcess

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "EmulatorProcess",
    "Fault",
    "FaultKind",
    "LatencyModel",
    "Partner",
    "RateLimits",
    "World",
]
