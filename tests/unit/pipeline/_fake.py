"""An in-memory Debitura behind a MockTransport: pure unit tests of client and pipeline."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping

import orjson

from debitura_async import DebituraClient, MockTransport, PollPolicy, Response, RetryPolicy


class MemoryDebitura:
    """POST /ingestion-jobs and GET /ingestion-jobs/{id}, with seeded job durations and faults."""

    def __init__(self, *, seed: int = 0, duration: float = 0.005, fail_rate: float = 0.0) -> None:
        self.rand = random.Random(seed)
        self.duration = duration
        self.fail_rate = fail_rate
        self.jobs: dict[str, tuple[int, float, float]] = {}
        self.by_key: dict[str, str] = {}
        self.stored_rows = 0
        self.requests = 0

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        self.requests += 1
        now = asyncio.get_running_loop().time()
        if self.fail_rate and self.rand.random() < self.fail_rate:
            return Response(503, {"Retry-After": "0"}, b'{"error": "busy"}')
        path = url.split("://", 1)[1].split("/", 1)[1]
        if method == "POST" and path == "ingestion-jobs":
            key = headers["Idempotency-Key"]
            rows = len(orjson.loads(body or b"{}")["rows"])
            job_id = self.by_key.get(key)
            if job_id is None:
                job_id = self.by_key[key] = str(uuid.UUID(int=self.rand.getrandbits(128)))
                self.jobs[job_id] = (rows, now, self.rand.uniform(0, self.duration))
                self.stored_rows += rows
            return Response(202, {}, orjson.dumps({"jobId": job_id, "rowsQueued": rows}))
        if method == "GET" and path.startswith("ingestion-jobs/"):
            job = self.jobs.get(path.rsplit("/", 1)[1])
            if job is None:
                return Response(404, {}, b'{"error": "not found"}')
            rows, start, length = job
            done = now - start >= length
            status = {
                "status": 2 if done else 1,
                "rowsTotal": rows,
                "rowsSucceeded": rows if done else 0,
                "rowsFailed": 0,
            }
            return Response(200, {}, orjson.dumps(status))
        return Response(404, {}, b"{}")

    def client(self, **options: object) -> DebituraClient:
        settings: dict[str, object] = {
            "base_url": "https://debitura.invalid",
            "transport": MockTransport(self.handle),
            "retry": RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.002),
            "budget": None,
            "polling": PollPolicy.fixed(0.002),
        }
        return DebituraClient("sk_test_memory-KEY", **{**settings, **options})  # type: ignore[arg-type]
