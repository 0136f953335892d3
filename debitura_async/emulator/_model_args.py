"""Emulator CLI flags for the latency models and the rate windows' shapes (used by :mod:`.cli`).

Precedence: ``--config`` base, then ``--zero-latency`` or ``--latency-preset`` (which replace
the whole latency model; giving both is an error), then the individual flags.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .latency import LATENCY_PRESETS, HeavyTail, LatencyModel
from .ratelimit import DayWindow, RateLimits

__all__ = [
    "add_latency_arguments",
    "add_window_arguments",
    "base_latency",
    "latency_changes",
    "window_changes",
]


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _cap(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    return _finite(text)


def _preset(text: str) -> str:
    name = text.strip().lower()
    if name not in LATENCY_PRESETS:
        known = ", ".join(LATENCY_PRESETS)
        raise argparse.ArgumentTypeError(f"unknown latency preset {text!r}; known: {known}")
    return name


def _epoch(text: str) -> float | None:
    if text.strip().lower() == "now":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = RateLimits(clock_epoch=text.strip()).clock_epoch
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_latency_arguments(group: argparse._ArgumentGroup) -> None:
    """The latency-model flags (beside ``--workers``, ``--base-latency`` ... of :mod:`.cli`)."""
    group.add_argument(
        "--latency-preset",
        type=_preset,
        metavar="NAME",
        help=f"a named latency model: {', '.join(LATENCY_PRESETS)} (default: guide)",
    )
    group.add_argument(
        "--heavy-tail",
        choices=[t.value for t in HeavyTail],
        help="heavy-tailed duration multiplier with mean 1 (default: none)",
    )
    group.add_argument(
        "--tail-shape",
        type=_finite,
        metavar="X",
        help="lognormal sigma or pareto alpha (> 1) of --heavy-tail (default: 1.0 / 2.5)",
    )
    group.add_argument(
        "--tail-cap", type=_cap, metavar="X", default=..., help="largest tail multiplier or 'off'"
    )
    group.add_argument(
        "--slow-share",
        type=_finite,
        metavar="P",
        help="share of jobs taking the slow path, 0..1 (default: 0)",
    )
    group.add_argument(
        "--slow-factor",
        type=_finite,
        metavar="K",
        help="duration multiplier of the slow path (default: 1)",
    )
    group.add_argument(
        "--drift-factor",
        type=_finite,
        metavar="F",
        help="duration multiplier reached after --drift-over model seconds (default: 1)",
    )
    group.add_argument(
        "--drift-over",
        type=_finite,
        metavar="SECONDS",
        help="model seconds over which the drift ramps up linearly (default: 300)",
    )


def add_window_arguments(group: argparse._ArgumentGroup) -> None:
    """The rate windows' shape flags."""
    group.add_argument(
        "--day-window",
        choices=[d.value for d in DayWindow],
        help="daily window resets at midnight UTC or is aligned to the first request"
        " (default: utc-midnight)",
    )
    group.add_argument(
        "--clock-epoch",
        type=_epoch,
        metavar="WHEN",
        default=...,
        help="the model wall clock at start, for the clock-hour and midnight windows: ISO 8601,"
        " Unix seconds or 'now' (default: now)",
    )


def base_latency(args: argparse.Namespace, latency: LatencyModel) -> LatencyModel:
    """``--zero-latency`` / ``--latency-preset`` applied to the configured model."""
    if args.zero_latency and args.latency_preset is not None:
        raise ValueError("--zero-latency and --latency-preset exclude each other")
    if args.zero_latency:
        return LatencyModel.zero()
    if args.latency_preset is not None:
        return LatencyModel.preset(args.latency_preset)
    return latency


def latency_changes(args: argparse.Namespace) -> dict[str, Any]:
    """``attrs.evolve`` changes of the individual latency-model flags."""
    changes: dict[str, Any] = {}
    for name in ("tail_shape", "slow_share", "slow_factor", "drift_factor", "drift_over"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.heavy_tail is not None:
        changes["tail"] = HeavyTail(args.heavy_tail)
    if args.tail_cap is not ...:
        changes["tail_cap"] = args.tail_cap
    return changes


def window_changes(args: argparse.Namespace) -> dict[str, Any]:
    """``attrs.evolve`` changes of the window-shape flags."""
    changes: dict[str, Any] = {}
    if args.day_window is not None:
        changes["day_window"] = DayWindow(args.day_window)
    if args.clock_epoch is not ...:
        changes["clock_epoch"] = args.clock_epoch
    return changes
