"""Progress on stderr: a tqdm bar on a TTY, plain log lines off a TTY, or nothing.

Why tqdm and not rich: tqdm is already a dependency, draws one line on any text stream, and
needs nothing else; rich would bring a large dependency for a single bar. What the bar shows is
computed here (``_eta``), not by tqdm: its own ETA assumes steady updates, which a pipeline that
finishes 1000-row jobs in bursts never gives.

:meth:`Progress.update` is fed by the pipeline's ``on_progress`` callback *and* by a heartbeat
task at the progress interval, so the display moves (elapsed time, the state the run waits in)
even when no result arrives for minutes: a throttle, an outage, a slow server.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from typing import IO, Any, TextIO

from ..models import IngestProgress
from ._common import fmt_duration
from ._eta import EtaEstimator, done_rows, in_flight_rows, state_text
from ._plan import ProgressMode

__all__ = ["Progress"]


class Progress:
    """The progress display. ``clock`` is injectable for tests (monotonic seconds).

    The bar is byte-based: its total is the file's size and its position the bytes whose rows
    have a final outcome (succeeded, failed or rejected: never unresolved), estimated from the
    average row size read so far.
    """

    def __init__(
        self,
        mode: ProgressMode,
        *,
        size: int,
        bytes_read: Callable[[], int],
        err: TextIO,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode == "auto":
            mode = "bar" if _isatty(err) else "log"
        self.mode = mode
        self._size = size
        self._bytes_read = bytes_read
        self._err = err
        self._interval = interval
        self._clock = clock
        self._last_log = clock()
        self._last_state: str | None = None
        self.eta = EtaEstimator()
        self._bar: Any = None
        if mode == "bar":
            self._bar = _make_bar(size, err)

    # -- figures ---------------------------------------------------------------------------------

    def _estimated_total(self, p: IngestProgress) -> int:
        read = self._bytes_read()
        if read <= 0 or read >= self._size:
            return p.rows_read
        return max(p.rows_read, round(p.rows_read * self._size / read))

    def _done_bytes(self, p: IngestProgress) -> int:
        if p.rows_read <= 0:
            return 0
        read = self._bytes_read()
        return min(self._size, int(read * min(1.0, done_rows(p) / p.rows_read)))

    def _eta_text(self, p: IngestProgress) -> str:
        if p.rows_read == 0:
            return "?"
        done = done_rows(p)
        seconds = self.eta.eta(
            now=self._clock(),
            done=done,
            in_flight=in_flight_rows(p),
            remaining=self._estimated_total(p) - done - p.rows_unresolved,
            pause=p.rate_limit_wait,
            average=self._rate(p),
        )
        return "?" if seconds is None else fmt_duration(seconds)

    def _rate(self, p: IngestProgress) -> float:
        return (p.rows_succeeded + p.rows_failed) / p.elapsed if p.elapsed > 0 else 0.0

    # -- drawing ---------------------------------------------------------------------------------

    def update(self, p: IngestProgress) -> None:
        """A new snapshot (from the pipeline or the heartbeat)."""
        if self.mode == "off":
            return
        eta = self._eta_text(p)
        state = state_text(p)
        if self._bar is not None:
            done = self._done_bytes(p)
            self._bar.update(max(0, done - self._bar.n))
            counts = (
                f"ETA {eta}, {self._rate(p):,.0f} rows/s, in flight {p.jobs_in_flight},"
                f" ok {p.rows_succeeded:,}, failed {p.rows_failed:,},"
                f" rejected {p.rows_rejected:,}"
            )
            self._bar.set_postfix_str(f"{state} | {counts}" if state else counts, refresh=False)
            self._bar.refresh()
            return
        now = self._clock()
        if now - self._last_log >= self._interval or (state and state != self._last_state):
            self._last_log = now
            self._log(p, eta, state)
        self._last_state = state

    def _log(self, p: IngestProgress, eta: str, state: str | None) -> None:
        total = self._estimated_total(p)
        share = done_rows(p) / total if total else 0.0
        line = (
            f"[{fmt_duration(p.elapsed)}] {share:4.0%} done: {p.rows_read:,} rows read,"
            f" {p.rows_succeeded:,} succeeded, {p.rows_failed:,} failed,"
            f" {p.rows_rejected:,} rejected, {in_flight_rows(p):,} in flight"
            f" ({p.jobs_in_flight} jobs); {self._rate(p):,.0f} rows/s; ETA {eta}"
        )
        if state:
            line += f"; {state}"
        print(line, file=self._err, flush=True)

    def message(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self._err)
        else:
            print(text, file=self._err, flush=True)

    def close(self, final: IngestProgress | None) -> None:
        if self._bar is not None:
            if final is not None:
                self.update(final)
            self._bar.close()
            self._bar = None


def _make_bar(size: int, err: TextIO) -> Any:
    from tqdm import tqdm  # noqa: PLC0415 - only when a bar is drawn

    fixed = _terminal_size(err)
    return tqdm(
        total=max(size, 1),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="ingest",
        file=err,
        dynamic_ncols=fixed is None,
        ncols=None if fixed is None else fixed[0],
        nrows=None if fixed is None else fixed[1],
        mininterval=0.2,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
    )


def _terminal_size(stream: IO[str]) -> tuple[int, int] | None:
    """None when the terminal reports its size (tqdm follows it), else a fixed 100x20: a
    pseudo-terminal that reports 0x0 would make tqdm hide the bar."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return (100, 20)
    return None if size.columns > 0 and size.lines > 0 else (100, 20)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
