"""Offline Debitura Collection Partner API emulator.

An aiohttp.web application around a pure state core (:mod:`.core`), with a latency model, rate
limits, idempotency and fault injection. Start it with ``python -m debitura_async.emulator``,
``debitura-async emulator``, ``async with Emulator(...)`` (in-process) or
``async with EmulatorProcess(...)`` (child process). It imports nothing from the client side: it
is an independent second reading of Debitura's contract.
"""

from __future__ import annotations

from .config import EmulatorConfig, Fault, FaultKind, Partner, World
from .latency import LATENCY_PRESETS, HeavyTail, LatencyModel
from .oracle import ScheduledJob
from .ratelimit import DayWindow, RateLimits
from .server import Emulator, EmulatorProcess

__all__ = [
    "LATENCY_PRESETS",
    "DayWindow",
    "Emulator",
    "EmulatorConfig",
    "EmulatorProcess",
    "Fault",
    "FaultKind",
    "HeavyTail",
    "LatencyModel",
    "Partner",
    "RateLimits",
    "ScheduledJob",
    "World",
]
