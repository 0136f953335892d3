"""Throughput benchmark suite of debitura-async (``python -m benchmarks``; see README.md).

Every scenario measures the client and a baseline in the same run, against an emulator in its own
process on 127.0.0.1, and reports ratios with a PASS/MISS verdict per target:

* P1 requests per 1000 rows (adaptive polling vs the guide's fixed 3 s cadence),
* P2 wall time against the rate-limit bound,
* P3 client overhead against a raw aiohttp + orjson loop,
* P4 peak memory at 1M and 10M rows (generator and CSV input),
* P5 the pipeline against a sequential submit-then-wait loop.
"""

from __future__ import annotations

__all__: list[str] = []
