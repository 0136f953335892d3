"""Emulator command line: ``debitura-async emulator`` and ``python -m debitura_async.emulator``.

``add_arguments(parser)`` declares every option; ``run(args)`` blocks until SIGINT/SIGTERM (or,
with ``--exit-on-stdin-eof``, until stdin closes) and returns 0; ``main(argv)`` does both.
Config flags default to "not given", so ``--config`` (a JSON ``EmulatorConfig``) can be the base
and explicit flags override it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
import orjson

from . import _model_args
from .config import EmulatorConfig, Fault, World
from .server import Emulator, check_host, check_token

__all__ = ["add_arguments", "build_config", "main", "run", "serve"]

LOGGER = logging.getLogger("debitura_async.emulator")

_FAULT_HELP = (
    "inject a fault (repeatable): KIND[:key=value]... with KIND one of http_error, rate_limit,"
    " slow, drop_before, drop_after, job_failed, job_vanish and keys probability|p, count|n,"
    " endpoint ('POST /ingestion-jobs', 'GET /ingestion-jobs/{jobId}', 'POST /cases/{id}/notes',"
    " 'GET /me', 'GET /cases/by-partner-reference', 'GET /cases/by-partner-reference/{reference}',"
    " 'GET /cases/{id}/timeline' or '*'), status (500/502/503/504), delay, retry_after, after"
    " (model seconds);"
    " e.g. 'drop_after:count=2:endpoint=POST /ingestion-jobs' or 'http_error:p=0.05:status=502'"
)


def _limit(text: str) -> int | None:
    """A rate-limit value: a positive integer, or 0/off/none for "not enforced"."""
    if text.strip().lower() in ("0", "off", "none", "unlimited"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or 'off', got {text!r}")
    return value


def _workers(text: str) -> int | None:
    if text.strip().lower() in ("0", "none", "unbounded", "unlimited"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 1 or 'unbounded', got {text!r}")
    return value


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every emulator option on ``parser`` (a top-level parser or a subcommand's)."""
    _add_net_arguments(parser)
    _add_model_arguments(parser)
    _add_limits_arguments(parser)
    _add_world_arguments(parser)
    _add_faults_arguments(parser)


def _add_net_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to bind (default: 127.0.0.1)",
    )
    net.add_argument(
        "--port", type=int, metavar="PORT", default=8080, help="port; 0 = any free (default: 8080)"
    )
    net.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow binding a non-loopback address (the emulator has no real security)",
    )
    net.add_argument(
        "--json",
        action="store_true",
        help="print one JSON ready line {url, token, partners: [{id, name, apiKey, caseIds,"
        " partnerReferences}]} to stdout",
    )
    net.add_argument("--access-log", action="store_true", help="log every request (no headers)")
    net.add_argument(
        "--token",
        metavar="TOKEN",
        default=None,
        help="X-Emulator-Token that /_emulator/* requires (16+ printable ASCII characters;"
        " default: a random one per start, printed at start)",
    )
    net.add_argument(
        "--log-level",
        default="WARNING",
        metavar="LEVEL",
        help="log level for stderr (default: WARNING)",
    )
    net.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when stdin closes (used by EmulatorProcess so no orphan survives its parent)",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument(
        "--config",
        metavar="PATH",
        help="JSON EmulatorConfig (EmulatorConfig.to_dict()) as base; '-' reads one line of stdin",
    )
    model.add_argument(
        "--seed", type=int, metavar="N", help="seed of every random choice (default: 0)"
    )
    model.add_argument(
        "--time-scale",
        type=float,
        metavar="FACTOR",
        help="model time runs this many times faster than real time (default: 1.0)",
    )
    model.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        default=...,
        help="job worker pool size, or 'unbounded' (default: 8)",
    )
    model.add_argument(
        "--base-latency",
        type=float,
        metavar="SECONDS",
        help="per-job base duration, model s (default: 1.0)",
    )
    model.add_argument(
        "--per-row-latency",
        type=float,
        metavar="SECONDS",
        help="per-row duration, model s (default: 0.025)",
    )
    model.add_argument(
        "--jitter",
        type=float,
        metavar="SECONDS",
        help="uniform(0, jitter) added per job, model s (default: 2.0)",
    )
    model.add_argument(
        "--zero-latency",
        action="store_true",
        default=None,
        help="jobs are terminal as soon as they are created (LatencyModel.zero())",
    )
    _model_args.add_latency_arguments(model)
    model.add_argument(
        "--idempotency-window",
        type=float,
        metavar="SECONDS",
        help="how long Idempotency-Key entries live, model s (default: 86400)",
    )
    model.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="BYTES",
        help="413 above this many bytes (default: 30000000)",
    )
    model.add_argument(
        "--store-notes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep note contents; --no-store-notes keeps counters only (default: store)",
    )


def _add_limits_arguments(parser: argparse.ArgumentParser) -> None:
    limits = parser.add_argument_group(
        "rate limits (per API key: minute sliding in 10 s segments, clock hour, day)"
    )
    _model_args.add_window_arguments(limits)
    limits.add_argument(
        "--rate-per-minute",
        type=_limit,
        metavar="N",
        default=...,
        help="requests/min or 'off' (default: 2000)",
    )
    limits.add_argument(
        "--rate-per-hour",
        type=_limit,
        metavar="N",
        default=...,
        help="requests/hour or 'off' (default: 20000)",
    )
    limits.add_argument(
        "--rate-per-day",
        type=_limit,
        metavar="N",
        default=...,
        help="requests/day or 'off' (default: 100000)",
    )
    limits.add_argument(
        "--no-rate-limits", action="store_true", default=None, help="disable rate limiting"
    )
    limits.add_argument(
        "--retry-after-header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send a Retry-After header with 429s (default: on)",
    )
    limits.add_argument(
        "--retry-after-body",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put retryAfter in the body of 429s (default: on)",
    )


def _add_world_arguments(parser: argparse.ArgumentParser) -> None:
    world = parser.add_argument_group("world")
    world.add_argument("--partners", type=int, metavar="N", help="generated partners (default: 3)")
    world.add_argument(
        "--cases-per-partner",
        type=int,
        metavar="N",
        help="generated cases per partner (default: 200)",
    )
    world.add_argument(
        "--world",
        metavar="PATH",
        help='seed file: {"partners": [{"id", "name", "apiKey", "caseIds": [...]}]}',
    )
    world.add_argument(
        "--show-cases",
        type=int,
        metavar="N",
        default=3,
        help="case ids printed per partner in the human-readable banner (default: 3)",
    )


def _add_faults_arguments(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fault", action="append", type=_fault, default=None, metavar="SPEC", help=_FAULT_HELP
    )


def _read_config_source(source: str) -> EmulatorConfig:
    if source == "-":
        line = sys.stdin.buffer.readline()
        if not line.strip():
            raise ValueError("--config -: expected one JSON line on stdin")
        data = orjson.loads(line)
    else:
        data = orjson.loads(Path(source).read_bytes())
    if not isinstance(data, dict):
        raise TypeError("--config must hold a JSON object")
    return EmulatorConfig.from_dict(data)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """The EmulatorConfig described by parsed arguments (``--config`` base + explicit flags)."""
    base = _read_config_source(args.config) if args.config else EmulatorConfig()
    latency = _model_args.base_latency(args, base.latency)
    lat_changes: dict[str, Any] = _model_args.latency_changes(args)
    if args.workers is not ...:
        lat_changes["workers"] = args.workers
    for name, dest in (("base", "base_latency"), ("per_row", "per_row_latency")):
        if getattr(args, dest) is not None:
            lat_changes[name] = getattr(args, dest)
    if args.jitter is not None:
        lat_changes["jitter"] = args.jitter
    latency = attrs.evolve(latency, **lat_changes)

    rate_limits = base.rate_limits
    rl_changes: dict[str, Any] = _model_args.window_changes(args)
    for name, dest in (
        ("per_minute", "rate_per_minute"),
        ("per_hour", "rate_per_hour"),
        ("per_day", "rate_per_day"),
    ):
        value = getattr(args, dest)
        if value is not ...:
            rl_changes[name] = value
    if args.no_rate_limits:
        rl_changes["enabled"] = False
    if args.retry_after_header is not None:
        rl_changes["retry_after_header"] = args.retry_after_header
    if args.retry_after_body is not None:
        rl_changes["retry_after_body"] = args.retry_after_body
    rate_limits = attrs.evolve(rate_limits, **rl_changes)

    changes: dict[str, Any] = {"latency": latency, "rate_limits": rate_limits}
    for name in ("seed", "time_scale", "idempotency_window", "max_body_bytes", "partners"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.cases_per_partner is not None:
        changes["cases_per_partner"] = args.cases_per_partner
    if args.store_notes is not None:
        changes["store_notes"] = args.store_notes
    if args.world:
        changes["world"] = World.from_file(args.world)
    if args.fault:
        changes["faults"] = (*base.faults, *args.fault)
    return attrs.evolve(base, **changes)


def _banner(emu: Emulator, config: EmulatorConfig, show_cases: int, out: TextIO) -> None:
    limits = config.rate_limits
    windows = ", ".join(f"{n}/{int(s)}s" for n, s in limits.windows()) or "off"
    print(f"Debitura emulator listening on {emu.url}", file=out)
    print(
        f"  time scale x{config.time_scale:g}; {config.latency.describe()}; rate limits: {windows}",
        file=out,
    )
    for partner in emu.partners:
        print(f"  partner {partner.name!r} id {partner.id}", file=out)
        print(f"    XApiKey: {partner.api_key}", file=out)
        shown = ", ".join(str(c) for c in partner.case_ids[:show_cases])
        print(f"    cases ({len(partner.case_ids)}): {shown}", file=out)
    print("  introspection: GET /_emulator/world | notes | stats | jobs; Ctrl+C stops", file=out)
    print(f"  introspection token: X-Emulator-Token: {emu.token}", file=out)
    out.flush()


def _ready_line(emu: Emulator) -> bytes:
    partners = [p.to_dict() for p in emu.partners]
    return orjson.dumps({"url": emu.url, "token": emu.token, "partners": partners})


async def serve(
    config: EmulatorConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_non_loopback: bool = False,
    json_ready: bool = False,
    access_log: bool = False,
    exit_on_stdin_eof: bool = False,
    show_cases: int = 3,
    stop: asyncio.Event | None = None,
    token: str | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM, ``stop`` is set, or (optionally) stdin closes; return 0."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread/Windows
            pass
    try:
        async with Emulator(
            config,
            host=host,
            port=port,
            allow_non_loopback=allow_non_loopback,
            access_log=access_log,
            token=token,
        ) as emu:
            if json_ready:
                sys.stdout.buffer.write(_ready_line(emu) + b"\n")
                sys.stdout.buffer.flush()
            else:
                _banner(emu, config, show_cases, sys.stdout)
            watcher = await _watch_stdin(stop) if exit_on_stdin_eof else None
            try:
                await stop.wait()
            finally:
                if watcher is not None:
                    watcher.close()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


class _EofWatcher(asyncio.Protocol):
    """Sets ``stop`` when the pipe on stdin closes (the parent went away)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def data_received(self, data: bytes) -> None:
        """Ignore anything written after the config line."""

    def eof_received(self) -> bool | None:
        self._stop.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def _watch_stdin(stop: asyncio.Event) -> asyncio.BaseTransport | None:
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: _EofWatcher(stop), pipe)
    except (ValueError, OSError) as exc:  # not a pipe (e.g. a regular file): nothing to watch
        pipe.close()
        LOGGER.warning("--exit-on-stdin-eof ignored: %s", exc)
        return None
    return transport


def run(args: argparse.Namespace) -> int:
    """Blocking: build the config, serve until SIGINT/SIGTERM, return the exit code (0 when clean).

    Invalid options print an error to stderr and return 2 (a refused non-loopback host too).
    """
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        check_host(args.host, allow_non_loopback=args.allow_non_loopback)
        check_token(args.token)
        config = build_config(args)
    except (ValueError, TypeError, OSError, orjson.JSONDecodeError) as exc:
        print(f"debitura-async emulator: error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(
            serve(
                config,
                host=args.host,
                port=args.port,
                allow_non_loopback=args.allow_non_loopback,
                json_ready=args.json,
                access_log=args.access_log,
                exit_on_stdin_eof=args.exit_on_stdin_eof,
                show_cases=args.show_cases,
                token=args.token,
            )
        )
    except OSError as exc:
        print(f"debitura-async emulator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during shutdown
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m debitura_async.emulator",
        description="Offline Debitura Collection Partner API emulator (ingestion jobs, notes).",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
