"""Frozen configuration and value classes of the offline Debitura emulator.

Everything here is a plain value: no I/O except :meth:`World.from_file`, no clock, no event loop.
Durations are in *model seconds* (see :class:`EmulatorConfig.time_scale`).

>>> LatencyModel.zero().workers is None
True
>>> Fault.parse("drop_after:count=2:endpoint=POST /ingestion-jobs").kind
<FaultKind.DROP_AFTER: 'drop_after'>
"""

from __future__ import annotations

import enum
import math
import random
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from .latency import LatencyModel
from .ratelimit import RateLimits
from .references import References, generate_references, parse_references

__all__ = [
    "ENDPOINTS",
    "EmulatorConfig",
    "Fault",
    "FaultKind",
    "LatencyModel",
    "Partner",
    "RateLimits",
    "World",
]

#: The Debitura operations the emulator implements, as used in stats and fault ``endpoint``.
ENDPOINTS: Final = (
    "POST /ingestion-jobs",
    "GET /ingestion-jobs/{jobId}",
    "POST /cases/{id}/notes",
    "GET /me",
    "GET /cases/by-partner-reference",
    "GET /cases/by-partner-reference/{reference}",
    "GET /cases/{id}/timeline",
)
JOB_ENDPOINT: Final = "POST /ingestion-jobs"


def _non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive_or_none(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1 or None, got {value!r}")


class FaultKind(enum.StrEnum):
    """What an injected fault does (see the emulator README section)."""

    HTTP_ERROR = "http_error"
    RATE_LIMIT = "rate_limit"
    SLOW = "slow"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    JOB_FAILED = "job_failed"
    JOB_VANISH = "job_vanish"


JOB_FAULTS: Final = frozenset({FaultKind.JOB_FAILED, FaultKind.JOB_VANISH})
HTTP_ERROR_STATUSES: Final = frozenset({500, 502, 503, 504})
_FAULT_KEYS: Final = {
    "probability": "probability",
    "p": "probability",
    "count": "count",
    "n": "count",
    "endpoint": "endpoint",
    "status": "status",
    "delay": "delay",
    "retry_after": "retry_after",
    "retryafter": "retry_after",
    "after": "after",
}


def _check_fault(inst: Fault, _attribute: attrs.Attribute[Any], _value: object) -> None:
    if (inst.probability is None) == (inst.count is None):
        raise ValueError("a fault needs exactly one of probability= or count=")
    if inst.probability is not None and not 0.0 <= inst.probability <= 1.0:
        raise ValueError(f"probability must be within [0, 1], got {inst.probability!r}")
    if inst.count is not None and inst.count < 0:
        raise ValueError(f"count must be >= 0, got {inst.count!r}")
    if inst.endpoint != "*" and inst.endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {inst.endpoint!r}; use '*' or one of {ENDPOINTS}")
    if inst.kind in JOB_FAULTS and inst.endpoint not in ("*", JOB_ENDPOINT):
        raise ValueError(f"{inst.kind} faults only apply to {JOB_ENDPOINT!r}")
    if inst.kind is FaultKind.HTTP_ERROR and inst.status not in (None, *HTTP_ERROR_STATUSES):
        raise ValueError(f"http_error status must be one of 500/502/503/504, got {inst.status!r}")


@attrs.frozen
class Fault:
    """One injected fault, fired by ``probability`` (seeded RNG) or for the next ``count`` matches.

    ``kind`` may be positional, the rest is keyword-only. ``endpoint`` is one of
    :data:`ENDPOINTS` or ``"*"``. ``delay``, ``retry_after`` and ``after`` are model seconds.
    ``status`` is the HTTP status of ``http_error`` (default 503).

    >>> Fault("http_error", count=1) == Fault(kind=FaultKind.HTTP_ERROR, count=1)
    True
    """

    kind: FaultKind = attrs.field(converter=FaultKind)
    probability: float | None = attrs.field(default=None, kw_only=True)
    count: int | None = attrs.field(default=None, kw_only=True)
    endpoint: str = attrs.field(default="*", kw_only=True)
    status: int | None = attrs.field(default=None, kw_only=True)
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_non_negative)
    retry_after: float = attrs.field(default=1.0, kw_only=True, validator=_non_negative)
    after: float = attrs.field(default=0.0, kw_only=True, validator=[_non_negative, _check_fault])

    @property
    def http_status(self) -> int:
        """The status an ``http_error`` fault answers with."""
        return self.status if self.status is not None else 503

    def matches(self, endpoint: str) -> bool:
        if self.kind in JOB_FAULTS:
            return endpoint == JOB_ENDPOINT
        return self.endpoint in ("*", endpoint)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse the CLI syntax ``KIND[:key=value]...``.

        Keys: ``probability``/``p``, ``count``/``n``, ``endpoint``, ``status``, ``delay``,
        ``retry_after``, ``after``.

        >>> Fault.parse("http_error:p=0.1:status=502").status
        502
        """
        kind_text, *parts = text.split(":")
        values: dict[str, Any] = {}
        for part in parts:
            key, sep, raw = part.partition("=")
            name = _FAULT_KEYS.get(key.strip().lower().replace("-", "_"))
            if not sep or name is None:
                raise ValueError(f"bad fault option {part!r} in {text!r}")
            raw = raw.strip()
            if name == "endpoint":
                values[name] = " ".join(raw.split())
            elif name in ("count", "status"):
                values[name] = int(raw)
            else:
                values[name] = float(raw)
        try:
            kind = FaultKind(kind_text.strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {kind_text!r}; known: {known}") from None
        return cls(kind=kind, **values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "probability": self.probability,
            "count": self.count,
            "endpoint": self.endpoint,
            "status": self.status,
            "delay": self.delay,
            "retryAfter": self.retry_after,
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Inverse of :meth:`to_dict` (also accepts snake_case ``retry_after``)."""
        known = {"kind", "probability", "count", "endpoint", "status", "delay", "retryAfter"}
        known |= {"retry_after", "after"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("fault needs a 'kind'")
        retry_after = data.get("retryAfter", data.get("retry_after", 1.0))
        probability = data.get("probability")
        count = data.get("count")
        status = data.get("status")
        return cls(
            kind=FaultKind(data["kind"]),
            probability=None if probability is None else float(probability),
            count=None if count is None else int(count),
            endpoint=str(data.get("endpoint", "*")),
            status=None if status is None else int(status),
            delay=float(data.get("delay", 0.0)),
            retry_after=float(retry_after),
            after=float(data.get("after", 0.0)),
        )


@attrs.frozen(kw_only=True)
class Partner:
    """A collection partner: its id, display name, API key, the cases it owns and their
    partner references (``(case id, reference)`` pairs, see :mod:`.references`)."""

    id: uuid.UUID
    name: str
    api_key: str = attrs.field(repr=False)
    case_ids: tuple[uuid.UUID, ...] = ()
    references: References = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "apiKey": self.api_key,
            "caseIds": [str(c) for c in self.case_ids],
            "partnerReferences": {str(case): text for case, text in self.references},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rng: random.Random | None = None) -> Partner:
        gen = rng if rng is not None else random.Random(0)  # noqa: S311 - test ids, not secrets
        raw_id = data.get("id")
        partner_id = uuid.UUID(str(raw_id)) if raw_id else _uuid4(gen)
        api_key = data.get("apiKey")
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("every partner needs a non-empty 'apiKey'")
        raw_cases = data.get("caseIds", [])
        if not isinstance(raw_cases, list):
            raise TypeError("'caseIds' must be a list of UUID strings")
        case_ids = tuple(uuid.UUID(str(c)) for c in raw_cases)
        name = str(data.get("name") or f"Partner {str(partner_id)[:8]}")
        return cls(
            id=partner_id,
            name=name,
            api_key=api_key,
            case_ids=case_ids,
            references=parse_references(data.get("partnerReferences"), case_ids, partner=name),
        )


def _uuid4(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _check_world(
    _inst: World, _attribute: attrs.Attribute[Any], partners: tuple[Partner, ...]
) -> None:
    if not partners:
        raise ValueError("a world needs at least one partner")
    keys = [p.api_key for p in partners]
    if len(set(keys)) != len(keys):
        raise ValueError("partner API keys must be unique")
    ids = [p.id for p in partners]
    if len(set(ids)) != len(ids):
        raise ValueError("partner ids must be unique")
    cases = [c for p in partners for c in p.case_ids]
    if len(set(cases)) != len(cases):
        raise ValueError("a case may belong to one partner only")


@attrs.frozen(kw_only=True)
class World:
    """The partners and the cases they own.

    Seed-file format (``--world PATH``)::

        {"partners": [{"id": "<uuid, optional>", "name": "<optional>",
                       "apiKey": "<required>", "caseIds": ["<uuid>", ...],
                       "partnerReferences": {"<case uuid>": "<reference>", ...}}]}

    ``partnerReferences`` (optional) gives cases their ``collectionPartnerReference``.
    """

    partners: tuple[Partner, ...] = attrs.field(validator=_check_world)

    @classmethod
    def generate(cls, *, partners: int = 3, cases_per_partner: int = 200, seed: int = 0) -> World:
        """A reproducible world: same arguments, same ids and keys."""
        if partners < 1 or cases_per_partner < 0:
            raise ValueError("need partners >= 1 and cases_per_partner >= 0")
        rng = random.Random(f"debitura-emulator-world-{seed}")  # noqa: S311 - reproducible test data
        result = []
        for index in range(partners):
            partner_id = _uuid4(rng)
            key = f"emu-{index + 1}-{rng.getrandbits(96):024x}"
            cases = tuple(_uuid4(rng) for _ in range(cases_per_partner))
            name = f"Emulated Collections {index + 1}"
            refs = generate_references(cases, seed=seed, partner_index=index)
            result.append(
                Partner(id=partner_id, name=name, api_key=key, case_ids=cases, references=refs)
            )
        return cls(partners=tuple(result))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> World:
        raw = data.get("partners")
        if not isinstance(raw, list) or not raw:
            raise ValueError("world needs a non-empty 'partners' list")
        rng = random.Random("debitura-emulator-world-file")  # noqa: S311 - reproducible ids
        return cls(partners=tuple(Partner.from_dict(p, rng=rng) for p in raw))

    @classmethod
    def from_file(cls, path: str | Path) -> World:
        return cls.from_dict(orjson.loads(Path(path).read_bytes()))

    def to_dict(self) -> dict[str, Any]:
        return {"partners": [p.to_dict() for p in self.partners]}


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything that shapes an emulator run; every field has a CLI flag.

    ``time_scale``: the model runs this many times faster than real time. All durations here are
    model seconds; what the emulator *reports* in seconds (``retryAfter``, ``Retry-After``) is real.
    """

    seed: int = 0
    time_scale: float = attrs.field(default=1.0)
    latency: LatencyModel = attrs.field(factory=LatencyModel)
    rate_limits: RateLimits = attrs.field(factory=RateLimits)
    idempotency_window: float = attrs.field(default=86_400.0, validator=_non_negative)
    max_body_bytes: int = attrs.field(default=30_000_000)
    partners: int = 3
    cases_per_partner: int = 200
    world: World | None = None
    store_notes: bool = True
    faults: tuple[Fault, ...] = ()

    @time_scale.validator
    def _check_scale(self, _attribute: attrs.Attribute[Any], value: float) -> None:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"time_scale must be > 0, got {value!r}")

    @max_body_bytes.validator
    def _check_max_body(self, _attribute: attrs.Attribute[Any], value: int) -> None:
        if value < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {value!r}")

    def build_world(self) -> World:
        """The configured world, or a generated one from ``partners``/``cases_per_partner``."""
        if self.world is not None:
            return self.world
        return World.generate(
            partners=self.partners, cases_per_partner=self.cases_per_partner, seed=self.seed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "timeScale": self.time_scale,
            "latency": self.latency.to_dict(),
            "rateLimits": self.rate_limits.to_dict(),
            "idempotencyWindow": self.idempotency_window,
            "maxBodyBytes": self.max_body_bytes,
            "partners": self.partners,
            "casesPerPartner": self.cases_per_partner,
            "world": None if self.world is None else self.world.to_dict(),
            "storeNotes": self.store_notes,
            "faults": [f.to_dict() for f in self.faults],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        world = data.get("world")
        return cls(
            seed=int(data.get("seed", 0)),
            time_scale=float(data.get("timeScale", 1.0)),
            latency=LatencyModel.from_dict(data.get("latency", {})),
            rate_limits=RateLimits.from_dict(data.get("rateLimits", {})),
            idempotency_window=float(data.get("idempotencyWindow", 86_400.0)),
            max_body_bytes=int(data.get("maxBodyBytes", 30_000_000)),
            partners=int(data.get("partners", 3)),
            cases_per_partner=int(data.get("casesPerPartner", 200)),
            world=None if world is None else World.from_dict(world),
            store_notes=bool(data.get("storeNotes", True)),
            faults=tuple(Fault.from_dict(f) for f in data.get("faults", [])),
        )
