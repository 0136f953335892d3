"""What the ``debitura_`` fixtures hand to tests: the world, a fault plan, a request log and an
inspector of what the emulator stored. Plain objects over any emulator (in-process, child
process or threaded), usable without pytest too."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from .._polling import PollPolicy
from .._retry import RetryPolicy
from ..emulator import EmulatorConfig, EmulatorProcess, Fault, LatencyModel, Partner
from ..emulator.core import case_reference
from ..hooks import ResponseEvent
from ..models import IngestionJobRow

__all__ = [
    "DebituraWorld",
    "EmulatorLike",
    "FaultPlan",
    "Inspector",
    "RequestLog",
    "client_options",
    "default_config",
    "instant_config",
    "make_process",
    "time_scale_of",
]


class EmulatorLike(Protocol):
    """What every emulator variant offers (:class:`Emulator`, :class:`EmulatorProcess`,
    :class:`~debitura_async.testing.ThreadedEmulator`)."""

    @property
    def url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def partners(self) -> tuple[Partner, ...]: ...
    @property
    def case_ids(self) -> tuple[uuid.UUID, ...]: ...
    @property
    def other_partner_case_ids(self) -> tuple[uuid.UUID, ...]: ...
    async def notes(
        self, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]: ...
    async def stats(self) -> dict[str, Any]: ...
    async def jobs(self) -> list[dict[str, Any]]: ...
    async def add_fault(self, fault: Fault) -> None: ...
    async def clear_faults(self) -> None: ...


def default_config(**changes: Any) -> EmulatorConfig:
    """The fixtures' emulator: 2 partners of 20 cases, the default job latency 100x faster
    (a small job takes 10-30 ms and is seen queued, then in progress, then done)."""
    base = EmulatorConfig(seed=0, time_scale=100.0, partners=2, cases_per_partner=20)
    return attrs.evolve(base, **changes) if changes else base


def make_process(config: EmulatorConfig) -> EmulatorProcess:
    """The one place the fixtures build a child-process emulator (and so reach its HTTP
    introspection endpoints)."""
    return EmulatorProcess(config)


def instant_config(**changes: Any) -> EmulatorConfig:
    """A config whose jobs are terminal the moment they are accepted."""
    return default_config(latency=LatencyModel.zero(), **changes)


@attrs.frozen(kw_only=True)
class DebituraWorld:
    """The emulated partners and cases a test works with.

    ``case_ids`` belong to ``partner`` (the client's key); ``other_partner_case_ids`` belong to
    other partners (a row for one fails with "not your case"); ``references`` maps each case id
    to its human-readable case reference (``DEB-...``).
    """

    url: str
    partners: tuple[Partner, ...]
    case_ids: tuple[uuid.UUID, ...]
    other_partner_case_ids: tuple[uuid.UUID, ...]
    references: Mapping[uuid.UUID, str] = attrs.field(repr=False)

    @property
    def partner(self) -> Partner:
        """The partner whose key the ``debitura_client`` fixture uses."""
        return self.partners[0]

    @classmethod
    def of(cls, emulator: EmulatorLike) -> DebituraWorld:
        cases = tuple(c for p in emulator.partners for c in p.case_ids)
        return cls(
            url=emulator.url,
            partners=emulator.partners,
            case_ids=emulator.case_ids,
            other_partner_case_ids=emulator.other_partner_case_ids,
            references={c: case_reference(str(c)) for c in cases},
        )

    def rows(self, count: int, *, tag: str = "row") -> list[IngestionJobRow]:
        """``count`` valid rows over this partner's cases, ``externalRef`` ``f"{tag}-{i}"``."""
        return [
            IngestionJobRow(
                self.case_ids[i % len(self.case_ids)],
                f"{tag} note {i}",
                external_ref=f"{tag}-{i}",
            )
            for i in range(count)
        ]


class FaultPlan:
    """Faults and latency for one test, cleared when the test ends.

    Every method adds one :class:`~debitura_async.emulator.Fault` (see its fields; ``endpoint``
    is e.g. ``"POST /ingestion-jobs"`` or ``"*"``); times are real seconds here, converted to the
    emulator's model seconds with its ``time_scale``.
    """

    def __init__(self, emulator: EmulatorLike, time_scale: float) -> None:
        self._emulator = emulator
        self._scale = time_scale
        self.added: list[Fault] = []

    async def add(self, fault: Fault) -> Fault:
        """Add a fault as it is (model seconds)."""
        await self._emulator.add_fault(fault)
        self.added.append(fault)
        return fault

    async def http_error(self, status: int = 503, *, endpoint: str = "*", count: int = 1) -> Fault:
        """The next ``count`` matching requests answer ``status`` (500/502/503/504)."""
        return await self.add(Fault("http_error", status=status, endpoint=endpoint, count=count))

    async def rate_limit(
        self, *, retry_after: float = 0.05, endpoint: str = "*", count: int = 1
    ) -> Fault:
        """The next ``count`` matching requests answer 429 asking to wait ``retry_after`` s."""
        return await self.add(
            Fault(
                "rate_limit",
                retry_after=retry_after * self._scale,
                endpoint=endpoint,
                count=count,
            )
        )

    async def latency(
        self,
        delay: float,
        *,
        endpoint: str = "*",
        count: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Matching requests are answered ``delay`` seconds late (every one unless ``count`` or
        ``probability`` says otherwise)."""
        if count is None and probability is None:
            probability = 1.0
        return await self.add(
            Fault(
                "slow",
                delay=delay * self._scale,
                endpoint=endpoint,
                count=count,
                probability=probability,
            )
        )

    async def drop_before(self, *, endpoint: str = "*", count: int = 1) -> Fault:
        """The connection drops before the request is processed (nothing happened)."""
        return await self.add(Fault("drop_before", endpoint=endpoint, count=count))

    async def drop_after(self, *, endpoint: str = "*", count: int = 1) -> Fault:
        """The request is processed, then the connection drops (the ambiguous failure)."""
        return await self.add(Fault("drop_after", endpoint=endpoint, count=count))

    async def job_failed(self, *, count: int = 1) -> Fault:
        """The next ``count`` jobs end FAILED (no row stored)."""
        return await self.add(Fault("job_failed", count=count))

    async def clear(self) -> None:
        """Remove every fault of the emulator (also those of its config)."""
        await self._emulator.clear_faults()
        self.added.clear()


class RequestLog:
    """Every HTTP attempt the ``debitura_client`` fixture made, as
    :class:`~debitura_async.hooks.ResponseEvent` objects (its ``response`` event hook)."""

    def __init__(self) -> None:
        self.events: list[ResponseEvent] = []

    def __call__(self, event: ResponseEvent) -> None:
        self.events.append(event)

    def count(
        self, endpoint: str | None = None, *, status: int | None = None, retries: bool = False
    ) -> int:
        """Attempts, optionally of one ``endpoint``/``status``; ``retries=True``: only those
        after a call's first attempt."""
        return sum(
            1
            for e in self.events
            if (endpoint is None or e.endpoint == endpoint)
            and (status is None or e.status == status)
            and (not retries or e.attempt > 1)
        )

    def statuses(self, endpoint: str) -> list[int | None]:
        """The status of each attempt at ``endpoint``, in order (None: transport failure)."""
        return [e.status for e in self.events if e.endpoint == endpoint]


class Inspector:
    """What the emulator stored and counted since the test began (a shared session emulator
    keeps earlier tests' notes and counts; this subtracts them)."""

    def __init__(self, emulator: EmulatorLike, baseline: Mapping[str, Any], notes: int) -> None:
        self._emulator = emulator
        self._baseline = baseline
        self._notes_before = notes

    @classmethod
    async def start(cls, emulator: EmulatorLike) -> Inspector:
        stats = await emulator.stats()
        return cls(emulator, stats, int(stats["notes"]))

    async def notes(
        self, *, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]:
        """Notes stored since the test began (oldest first), optionally of one case/ref.

        Each is a dict of the NoteDto fields plus ``caseId``, ``externalRef``, ``jobId``.
        """
        if case_id is None and external_ref is None:
            return (await self._emulator.notes())[self._notes_before :]
        return await self._emulator.notes(case_id=case_id, external_ref=external_ref)

    async def assert_note(
        self, case_id: uuid.UUID | str, description: str, *, times: int = 1
    ) -> None:
        """Exactly ``times`` notes with ``description`` were stored on ``case_id``."""
        found = await self._emulator.notes(case_id=case_id)
        matching = [n for n in found if n.get("description") == description]
        if len(matching) != times:
            have = [n.get("description") for n in found]
            raise AssertionError(
                f"expected {times} note(s) {description!r} on case {case_id}, "
                f"found {len(matching)}; the case has {have!r}"
            )

    async def assert_rows_stored_once(self, rows: Iterable[IngestionJobRow]) -> None:
        """Every row (by ``externalRef``) was stored exactly once on its case: no row lost,
        none duplicated by a retry."""
        problems = []
        for row in rows:
            if row.external_ref is None:
                raise ValueError("assert_rows_stored_once needs rows with an external_ref")
            stored = await self._emulator.notes(external_ref=row.external_ref)
            on_case = [n for n in stored if str(n.get("caseId")).lower() == str(row.case_id)]
            if len(on_case) != 1:
                problems.append(f"{row.external_ref!r}: stored {len(on_case)} times")
        if problems:
            raise AssertionError("; ".join(problems))

    async def requests(self, endpoint: str) -> dict[int | str, int]:
        """Requests the emulator saw at ``endpoint`` since the test began, by HTTP status, or
        by what an injected fault did instead of answering (``"dropped"``); all clients, every
        attempt."""
        now = (await self._emulator.stats())["requests"].get(endpoint, {})
        before = self._baseline["requests"].get(endpoint, {})
        counts: dict[int | str, int] = {}
        for status, n in now.items():
            if n - before.get(status, 0):
                counts[int(status) if status.isdigit() else status] = n - before.get(status, 0)
        return counts

    async def counter(self, name: str) -> int:
        """A counter of the emulator's stats since the test began: ``jobs_created``,
        ``rows_queued``, ``idempotent_replays``, ``idempotency_conflicts``, ``rate_limited``,
        ``notes``."""
        now = await self._emulator.stats()
        if name not in now or not isinstance(now[name], int):
            raise KeyError(f"no such emulator counter: {name!r}")
        return int(now[name]) - int(self._baseline.get(name, 0))

    async def replays(self) -> int:
        """Submits the emulator answered from its idempotency store since the test began (a
        retry of a POST whose first answer was lost gets the same job back: one replay)."""
        return await self.counter("idempotent_replays")

    async def jobs(self) -> list[dict[str, Any]]:
        """Jobs created since the test began (creation order)."""
        everything = await self._emulator.jobs()
        return everything[len(everything) - await self.counter("jobs_created") :]


def time_scale_of(emulator: object) -> float:
    """The emulator's ``config.time_scale`` (1.0 if it has no config)."""
    config = getattr(emulator, "config", None)
    return float(config.time_scale) if isinstance(config, EmulatorConfig) else 1.0


def client_options(emulator: EmulatorLike, **changes: Any) -> dict[str, Any]:
    """Keyword arguments of a :class:`~debitura_async.DebituraClient` bound to ``emulator``:
    its key and URL, quick retries, polling scaled to its time scale; ``changes`` win."""
    options: dict[str, Any] = {
        "api_key": emulator.api_key,
        "base_url": emulator.url,
        "retry": RetryPolicy(max_retries=5, initial_backoff=0.01, max_backoff=0.05),
        "polling": PollPolicy().scaled(time_scale_of(emulator)),
    }
    options.update(changes)
    return options
