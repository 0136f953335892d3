"""The dry run's estimate, pure: requests a run would make and the wall time it would take under
the key's documented limits and the API's processing pace.

Assumptions (said in the output too):

* a job is 1 POST and about 2.2 polls (the API guide's figure for the default poll schedule);
* reference lookups: one request per 100 distinct references, and one per reference the batch
  form cannot carry (the count is given, as the dry run made them);
* the limits are the key's documented ones (2,000/min, 20,000/h, 100,000/day), with no other
  traffic on the key;
* processing pace: a job of 1,000 rows takes about 30 s (the API guide), proportionally less for
  smaller jobs, and ``concurrency`` jobs are processed at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from .._budget import DEFAULT_RATE_LIMITS, RateLimit

__all__ = ["POLLS_PER_JOB", "SECONDS_PER_1000_ROWS", "Estimate", "estimate"]

POLLS_PER_JOB = 2.2
SECONDS_PER_1000_ROWS = 30.0


@attrs.frozen(kw_only=True)
class Estimate:
    rows: int
    jobs: int
    posts: int
    polls: int
    lookups: int
    requests: int
    limit_seconds: float
    """The least wall time the limits allow for ``requests`` (0: they fit in the first windows)."""
    pace_seconds: float
    """Wall time at the processing pace with ``concurrency`` jobs at once."""

    @property
    def seconds(self) -> float:
        return max(self.limit_seconds, self.pace_seconds)


def limits_bound(requests: int, limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS) -> float:
    """Seconds until ``requests`` requests may have been sent: each full window used makes the
    next request wait for the next window."""
    if requests <= 0:
        return 0.0
    return max((requests - 1) // limit.requests * limit.per for limit in limits)


def estimate(
    *,
    rows: int,
    batch_size: int,
    concurrency: int,
    lookups: int = 0,
    limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
) -> Estimate:
    if batch_size < 1 or concurrency < 1 or rows < 0 or lookups < 0:
        raise ValueError("batch_size and concurrency must be at least 1, counts at least 0")
    jobs = math.ceil(rows / batch_size)
    polls = math.ceil(jobs * POLLS_PER_JOB)
    requests = jobs + polls + lookups
    per_job = SECONDS_PER_1000_ROWS * min(batch_size, rows) / 1000 if rows else 0.0
    pace = math.ceil(jobs / concurrency) * per_job
    return Estimate(
        rows=rows,
        jobs=jobs,
        posts=jobs,
        polls=polls,
        lookups=lookups,
        requests=requests,
        limit_seconds=limits_bound(requests, limits),
        pace_seconds=pace,
    )
