"""What the progress display says, pure: the state a run is waiting in, and an ETA.

No clock inside: every call takes ``now``.
"""

from __future__ import annotations

from collections import deque

from ..models import IngestProgress
from ._common import fmt_wait

__all__ = ["EtaEstimator", "done_rows", "in_flight_rows", "state_text"]


def done_rows(p: IngestProgress) -> int:
    """Rows with a final outcome. Unresolved rows are not done: a resume still has to settle
    them."""
    return p.rows_succeeded + p.rows_failed + p.rows_rejected


def in_flight_rows(p: IngestProgress) -> int:
    """Rows placed in a batch (sent or about to be) whose outcome is not known yet."""
    return max(0, p.rows_submitted - p.rows_succeeded - p.rows_failed - p.rows_unresolved)


def state_text(p: IngestProgress) -> str | None:
    """What the run is waiting for, in words (None: it is simply moving)."""
    parts: list[str] = []
    if p.rate_limit_wait is not None and p.rate_limit_wait > 0:
        parts.append(f"waiting for the rate limit (resumes in {fmt_wait(p.rate_limit_wait)})")
    retry = p.retry
    if retry is not None:
        what = "server unreachable" if retry.reason == "unreachable" else f"{retry.reason}"
        when = f"in {fmt_wait(retry.resumes_in)}" if retry.resumes_in >= 0.5 else "now"
        parts.append(f"{what}, retry {retry.retry}/{retry.max_retries} {when}")
    if p.jobs_queued:
        jobs = "1 job" if p.jobs_queued == 1 else f"{p.jobs_queued:,} jobs"
        parts.append(f"{jobs} queued at the server")
    if not parts and p.jobs_in_flight and not (p.rows_succeeded or p.rows_failed):
        parts.append(f"waiting for the first results ({p.jobs_in_flight} jobs in flight)")
    return "; ".join(parts) or None


class EtaEstimator:
    """Time left, from measured throughput, counting the jobs in flight.

    Early in a run few jobs have finished although many are being processed, so the rows done
    per second since the start badly undercounts the pace (the first estimate of the old bar was
    3x the real time). Until the measured window spans a few job latencies, the rate is taken
    from Little's law instead: rows in flight / the mean time a job takes (submit to finish,
    from the results seen so far). After that, the rows done per second over the last
    ``window`` seconds. A rate-limit pause still to wait is added.
    """

    def __init__(self, *, window: float = 120.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._latency: float | None = None

    @property
    def latency(self) -> float | None:
        return self._latency

    def job_finished(self, seconds: float) -> None:
        """One job's time from submit to its terminal status (a moving average)."""
        if seconds <= 0:
            return
        self._latency = seconds if self._latency is None else 0.7 * self._latency + 0.3 * seconds

    def rate(
        self, *, now: float, done: int, in_flight: int, average: float | None = None
    ) -> float | None:
        """Rows per second (None: nothing to go on yet). ``average``: the rate since the start,
        the last resort."""
        samples = self._samples
        if not samples or samples[-1][1] != done or now - samples[-1][0] >= 1.0:
            samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > self._window:
            samples.popleft()
        start, done_then = samples[0]
        span = now - start
        measured = (done - done_then) / span if span > 0 and done > done_then else None
        latency = self._latency
        little = in_flight / latency if latency and in_flight > 0 else None
        if measured is not None and (latency is None or span >= 3 * latency):
            return measured
        return little or measured or average or None

    def eta(
        self,
        *,
        now: float,
        done: int,
        in_flight: int,
        remaining: int,
        pause: float | None = None,
        average: float | None = None,
    ) -> float | None:
        """Seconds left for ``remaining`` rows (None: unknown yet)."""
        rate = self.rate(now=now, done=done, in_flight=in_flight, average=average)
        if remaining <= 0:
            return 0.0
        if rate is None or rate <= 0:
            return None
        return remaining / rate + (pause or 0.0)
