"""The client's job tracker against the real emulator: shared polls, timeouts, adoption, close."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Hashable
from typing import Any

import pytest

from debitura_async import (
    AsyncJobStatus,
    ClientClosedError,
    DebituraClient,
    IngestionJobRow,
    JobAgeExceededError,
    JobWaitTimeout,
    NotFoundError,
    PollPolicy,
    RequestBudget,
)
from debitura_async import tracker as tracker_module
from debitura_async._polling import PollPlanner
from debitura_async.emulator import Emulator, EmulatorConfig

from ..conftest import TIME_SCALE, fast_retry, no_leaked_tasks

pytestmark = pytest.mark.anyio
SCALED = PollPolicy().scaled(TIME_SCALE)


def note_rows(emu: Emulator, n: int, tag: str = "n") -> list[IngestionJobRow]:
    return [IngestionJobRow(emu.case_ids[i % len(emu.case_ids)], f"{tag}{i}") for i in range(n)]


async def test_many_concurrent_waiters_share_one_poll_loop(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key,
        base_url=emulator.url,
        retry=fast_retry(),
        polling=SCALED,
    ) as client:

        async def one_request(i: int) -> AsyncJobStatus:
            handle = await client.submit(note_rows(emulator, 50, f"r{i}-"))
            status = await handle.wait(timeout=30)
            return status.status

        outcomes = await asyncio.gather(*(one_request(i) for i in range(40)))
        gets = client.stats.gets
    assert outcomes == [AsyncJobStatus.COMPLETED] * 40
    assert await emulator.note_count() == 40 * 50
    assert gets / 40 <= 3.0  # one planner for all: far below a 3 s cadence's polls per job
    assert no_leaked_tasks() == []


async def test_two_waiters_on_one_job_cost_one_set_of_polls(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        handle = await client.submit(note_rows(emulator, 200))
        same = client.track(handle.job_id)
        assert same is handle
        first, second = await asyncio.gather(
            handle.wait(timeout=30),
            client.wait_for_ingestion_job(handle.job_id, timeout=30),
        )
        assert first == second
        assert first.is_terminal
        assert client.stats.gets == handle.polls


async def test_a_wait_timeout_leaves_the_job_tracked(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        handle = await client.submit(note_rows(emulator, 1000))
        with pytest.raises(JobWaitTimeout) as info:
            await handle.wait(timeout=0.001)
        assert info.value.job_id == handle.job_id
        assert not handle.done()
        assert handle in client.tracker.handles()
        status = await handle.wait(timeout=30)
        assert status.status is AsyncJobStatus.COMPLETED
        assert handle.done()


async def test_closing_the_client_resolves_open_handles_resumably() -> None:
    async with Emulator(EmulatorConfig(time_scale=5.0, seed=3)) as emu:
        slow = PollPolicy().scaled(5.0)
        client = DebituraClient(emu.api_key, base_url=emu.url, retry=fast_retry(), polling=slow)
        async with client:
            handles = [
                await client.submit(note_rows(emu, 500, f"c{i}-"), idempotency_key=f"key-{i}")
                for i in range(3)
            ]
            waiters = [asyncio.ensure_future(h.wait()) for h in handles]
            await asyncio.sleep(0.05)
        for handle, waiter in zip(handles, waiters, strict=True):
            with pytest.raises(ClientClosedError) as info:
                await waiter
            assert info.value.job_id == handle.job_id
            assert info.value.idempotency_key == handle.idempotency_key
        assert no_leaked_tasks() == []
        # Resumable by its id from a new client (another request, process or run).
        async with DebituraClient(
            emu.api_key, base_url=emu.url, retry=fast_retry(), polling=slow
        ) as again:
            statuses = await asyncio.gather(
                *(again.track(h.job_id).wait(timeout=60) for h in handles)
            )
        assert all(s.status is AsyncJobStatus.COMPLETED for s in statuses)
        assert await emu.note_count() == 1500


async def test_completions_arrive_as_jobs_finish(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        finished: list[uuid.UUID] = []

        async def watch() -> None:
            async for handle in client.tracker.completions():
                finished.append(handle.job_id)
                if len(finished) == 3:
                    return

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0)
        handles = [await client.submit(note_rows(emulator, 10 * (i + 1))) for i in range(3)]
        await asyncio.wait_for(watcher, 30)
    assert sorted(finished) == sorted(h.job_id for h in handles)


async def test_unknown_job_ends_with_not_found(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        with pytest.raises(NotFoundError):
            await client.track(uuid.uuid4()).wait(timeout=60)


@pytest.mark.parametrize("rows", [-1, 2.5, True, "1000"])
async def test_a_bad_row_count_is_refused_and_tracks_nothing(
    emulator: Emulator, rows: object
) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        job_id = uuid.uuid4()
        with pytest.raises(ValueError, match="rows must be an int >= 0"):
            client.track(job_id, rows=rows)  # type: ignore[arg-type]
        # nothing half-tracked is left behind: tracking it again polls it (and finds nothing)
        with pytest.raises(NotFoundError):
            await client.track(job_id).wait(timeout=30)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("poll_interval", 0),
        ("poll_interval", math.inf),  # a fixed cadence that never polls
        ("poll_interval", math.nan),
        ("max_poll_failures", 0),
        ("max_poll_failures", 2.5),
        ("submitted_at", math.nan),
        ("submitted_at", True),
        ("max_age", math.nan),  # a limit no age ever reaches, silently
        ("max_age", -1.0),
        ("max_age", "60"),
    ],
)
async def test_bad_track_arguments_are_refused_before_anything_is_tracked(
    emulator: Emulator, argument: str, value: object
) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        job_id = uuid.uuid4()
        with pytest.raises(ValueError, match=f"^{argument} must be"):
            client.tracker.track(job_id, **{argument: value})  # type: ignore[arg-type]
        assert job_id not in {h.job_id for h in client.tracker._jobs.values()}
        with pytest.raises(NotFoundError):
            await client.track(job_id).wait(timeout=30)


@pytest.mark.parametrize("option", ["max_concurrent_polls", "max_poll_failures"])
@pytest.mark.parametrize("value", [0, -3, 1.5, True, None])
async def test_tracker_counts_must_be_positive_ints(option: str, value: object) -> None:
    async def never(job_id: uuid.UUID, counters: Any) -> Any:
        raise AssertionError("not polled")

    with pytest.raises(ValueError, match=f"{option} must be an int >= 1"):
        tracker_module.JobTracker(never, **{option: value})  # type: ignore[arg-type]


async def test_a_job_that_never_ends_is_given_up_at_max_job_age() -> None:
    async with Emulator(EmulatorConfig(time_scale=0.01, seed=5)) as emu:  # 100x slower
        async with DebituraClient(
            emu.api_key, base_url=emu.url, retry=fast_retry(), max_job_age=0.3
        ) as client:
            handle = await client.submit(note_rows(emu, 1000))
            with pytest.raises(JobAgeExceededError) as info:
                await handle.wait(timeout=10)
            assert info.value.job_id == handle.job_id
            assert "max_job_age" in str(info.value)


async def test_fixed_cadence_is_still_available(emulator: Emulator) -> None:
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        job = await client.create_ingestion_job(note_rows(emulator, 100))
        status = await client.wait_for_ingestion_job(job.job_id, poll_interval=0.01, timeout=30)
        assert status.is_terminal
        assert client.stats.gets >= 2  # a 10 ms cadence polls a ~15 ms job more than once
        assert len(client.tracker) == 0


class _HintlessBudget(RequestBudget):
    """A user's budget whose optional scarcity() hint fails, then answers nonsense."""

    calls = 0

    def scarcity(self) -> float:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("no hint today")
        return float("nan")


async def test_a_budget_whose_scarcity_hint_fails_does_not_stop_polling(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    budget = _HintlessBudget()
    async with DebituraClient(
        emulator.api_key,
        base_url=emulator.url,
        retry=fast_retry(),
        polling=SCALED,
        budget=budget,
    ) as client:
        assert client._scarcity() == 0.0  # the raising call: read as plenty, and logged
        assert client._scarcity() == 0.0  # NaN: read as plenty
        handle = await client.submit(note_rows(emulator, 20))
        status = await handle.wait(timeout=30)
    assert status.status is AsyncJobStatus.COMPLETED
    assert "scarcity() failed" in caplog.text


class _BrokenPlanner(PollPlanner):
    """A planner with a bug: its answers raise (and so does dropping a job)."""

    def observe(self, key: Hashable, **answer: Any) -> bool:
        raise ZeroDivisionError("a planner bug")

    def remove(self, key: Hashable, now: float | None = None) -> None:
        raise ZeroDivisionError("another planner bug")


async def test_a_planner_bug_ends_the_job_instead_of_hanging_it(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tracker_module, "PollPlanner", _BrokenPlanner)
    async with DebituraClient(
        emulator.api_key, base_url=emulator.url, retry=fast_retry(), polling=SCALED
    ) as client:
        handles = [await client.submit(note_rows(emulator, 10, f"b{i}-")) for i in range(3)]
        for handle in handles:
            with pytest.raises(ZeroDivisionError, match="a planner bug"):
                await handle.wait(timeout=30)
        # the poll loop survives its planner: a fixed-cadence job still completes
        fixed = await client.create_ingestion_job(note_rows(emulator, 10, "f-"))
        status = await client.wait_for_ingestion_job(fixed.job_id, timeout=30, poll_interval=0.05)
    assert status.status is AsyncJobStatus.COMPLETED
    assert "failed unexpectedly" in caplog.text
    assert no_leaked_tasks() == []
