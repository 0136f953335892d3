"""Thin aiohttp.web layer of the emulator: parse raw JSON (orjson), render, route, inject faults.

All of Debitura's rules live in :mod:`.core`; this module only turns HTTP into core calls and
core answers into HTTP. One middleware converts every ``HTTPException`` (unknown route, wrong
method, oversized body) and every unexpected exception into the documented error body, so a client
never sees a 500 with a traceback for bad input. Unexpected exceptions are logged on the
``debitura_async.emulator`` logger. The API key is never logged.

Request pipeline for the four Debitura operations::

    fault plan (slow → drop_before / http_error / rate_limit) → rate limit (429; unknown keys
    share one fallback partition) → XApiKey (401) → Content-Type (415) → body size (413)
    → JSON (400) → core rule (400/404/422/2xx) → drop_after (connection closed, no response)
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

import attrs
import orjson
from aiohttp import web

from .config import EmulatorConfig, Fault, FaultKind, Partner, World
from .core import Accepted, ApiProblem, EmulatorCore, JobFaults
from .faults import FaultDecision, FaultPlan
from .introspection import BOUND_HOST_KEY, TOKEN_KEY, guard, new_token
from .oracle import JobScheduledCallback, ScheduledJob

__all__ = [
    "SERVICE_KEY",
    "ApiError",
    "EmulatorService",
    "ModelClock",
    "build_app",
]

LOGGER: Final = logging.getLogger("debitura_async.emulator")

POST_JOBS: Final = "POST /ingestion-jobs"
GET_JOB: Final = "GET /ingestion-jobs/{jobId}"
POST_NOTE: Final = "POST /cases/{id}/notes"
GET_ME: Final = "GET /me"
INTROSPECTION_PREFIX: Final = "/_emulator/"

_ENDPOINT: Final = web.RequestKey("debitura_endpoint", str)
_JSON_TYPES: Final = frozenset({"application/json", "text/json"})
_SERVER_ERRORS: Final = {
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ModelClock:
    """Model time = real elapsed monotonic seconds * ``time_scale``."""

    def __init__(
        self, time_scale: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.time_scale = time_scale
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> float:
        return (self._monotonic() - self._origin) * self.time_scale

    def to_real(self, model_seconds: float) -> float:
        return model_seconds / self.time_scale

    def to_monotonic(self, model_time: float) -> float:
        """The ``time.monotonic()`` reading at a model instant (system-wide on Linux, so other
        processes on the machine can compare it with their own clock)."""
        return self._origin + model_time / self.time_scale


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ApiError(Exception):
    """Raised inside handlers; rendered by the middleware as an ``ApiErrorResponseDto``."""

    def __init__(self, problem: ApiProblem, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.headers = dict(headers or {})


class _RateLimited(Exception):
    def __init__(self, retry_after_model: float) -> None:
        super().__init__("rate limited")
        self.retry_after_model = retry_after_model


class _Dropped(Exception):
    """The connection was closed on purpose (fault injection); nothing is sent."""


class EmulatorService:
    """Core + clock + fault plan: the object behind both the HTTP app and :class:`Emulator`."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        world: World | None = None,
        clock: ModelClock | None = None,
        utcnow: Callable[[], datetime] = _utcnow,
        on_job_scheduled: JobScheduledCallback | None = None,
        token: str | None = None,
    ) -> None:
        self.clock = clock if clock is not None else ModelClock(config.time_scale)
        if config.rate_limits.clock_epoch is None:  # the model wall clock starts at real UTC now
            epoch = utcnow().timestamp() - self.clock.now() / config.time_scale
            limits = attrs.evolve(config.rate_limits, clock_epoch=epoch)
            config = attrs.evolve(config, rate_limits=limits)
        self.config = config
        self.token = token if token is not None else new_token()
        """The ``X-Emulator-Token`` that ``/_emulator/*`` over HTTP requires (random per run)."""
        self.core = EmulatorCore(config, world)
        self.on_job_scheduled = on_job_scheduled
        self.faults = FaultPlan(config.faults, seed=config.seed)
        self.utcnow = utcnow

    # Introspection, shared by the HTTP routes and the in-process Emulator.

    def notes(
        self, *, case_id: uuid.UUID | str | None = None, external_ref: str | None = None
    ) -> list[dict[str, Any]]:
        return self.core.notes(self.clock.now(), case_id=case_id, external_ref=external_ref)

    def note_count(self) -> int:
        return self.core.note_count(self.clock.now())

    def stats(self) -> dict[str, Any]:
        return self.core.stats(self.clock.now())

    def jobs(self) -> list[dict[str, Any]]:
        """Jobs as the core lists them, plus the real ``time.monotonic()`` instants at which each
        was created, started and finished (``createdAtMonotonic`` ...), for benchmarks."""
        jobs = self.core.jobs(self.clock.now())
        for job in jobs:
            for key in ("createdAt", "startedAt", "processingAt", "finishedAt"):
                job[f"{key}Monotonic"] = self.clock.to_monotonic(job[key])
        return jobs

    def job_schedule(self, job_id: uuid.UUID | str) -> ScheduledJob | None:
        """When a job starts and finishes, known from its submission on (see :mod:`.oracle`)."""
        try:
            key = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
        except ValueError:
            return None
        return self.core.scheduled_job(key, to_monotonic=self.clock.to_monotonic)

    def job_scheduled(self, job_id: uuid.UUID) -> None:
        """Tell ``on_job_scheduled`` about a new job (its exceptions are logged, not raised)."""
        callback = self.on_job_scheduled
        job = None if callback is None else self.job_schedule(job_id)
        if callback is None or job is None:
            return
        try:
            callback(job)
        except Exception:
            LOGGER.exception("on_job_scheduled callback failed")

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def restart(self, *, keep_notes: bool = True) -> None:
        self.core.restart(self.clock.now(), keep_notes=keep_notes)

    def reset(self) -> None:
        self.core.reset()
        self.faults.reset(self.config.faults)

    def world(self) -> dict[str, Any]:
        return self.core.world_dict()


SERVICE_KEY: Final = web.AppKey("debitura_emulator_service", EmulatorService)


# ---------------------------------------------------------------------- rendering


def _json(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _problem_response(
    problem: ApiProblem, headers: Mapping[str, str] | None = None
) -> web.Response:
    return _json(problem.body(), problem.status, headers)


def _retry_after_header(seconds: float) -> str:
    """Whole seconds rounded up from 1 s on; a decimal below (never "0")."""
    if seconds >= 1.0:
        return str(math.ceil(seconds))
    return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")


def _rate_limited_response(service: EmulatorService, retry_after_model: float) -> web.Response:
    real = service.clock.to_real(retry_after_model)
    limits = service.config.rate_limits
    body: dict[str, Any] = {"error": "rate_limit_exceeded", "message": "Rate limit exceeded."}
    if limits.retry_after_body:  # off: the body gives no hint of the wait (header only, or none)
        body["message"] = f"Rate limit exceeded. Retry after {real:.3f} seconds."
        body["retryAfter"] = math.ceil(real * 1000.0 - 1e-6) / 1000.0  # never early
    headers = {}
    if limits.retry_after_header:
        headers["Retry-After"] = _retry_after_header(real)
    return _json(body, 429, headers)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    headers: dict[str, str] = {}
    if status == 404:
        problem = ApiProblem.not_found(f"No route for {request.method} {request.path}")
    elif status == 405:
        allow = exc.headers.get("Allow", "")
        headers["Allow"] = allow
        problem = ApiProblem.simple(
            405,
            "method_not_allowed",
            "MethodNotAllowed",
            f"{request.method} is not allowed on {request.path}; allowed: {allow}",
        )
    elif status == 413:
        problem = ApiProblem.simple(
            413,
            "payload_too_large",
            "PayloadTooLarge",
            f"Request body exceeds {request.app[SERVICE_KEY].config.max_body_bytes} bytes",
        )
    else:
        label = exc.reason.lower().replace(" ", "_").replace("-", "_") or "error"
        problem = ApiProblem.simple(status, label, exc.reason or "Error", exc.reason or str(status))
    return _problem_response(problem, headers)


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    response: web.StreamResponse
    dropped = False
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _problem_response(exc.problem, exc.headers)
    except _RateLimited as exc:
        response = _rate_limited_response(service, exc.retry_after_model)
    except _Dropped:
        # The transport is closed already: aiohttp fails to write this and moves on quietly.
        response = web.Response(status=204)
        dropped = True
    except web.HTTPException as exc:
        response = _from_http_exception(request, exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        LOGGER.exception("unexpected error while handling %s %s", request.method, request.path)
        response = _problem_response(
            ApiProblem.simple(
                500, "internal_server_error", "InternalError", "Unexpected emulator error"
            )
        )
    status: int | str = "dropped" if dropped else response.status
    if not request.path.startswith(INTROSPECTION_PREFIX):
        service.core.record_request(request.get(_ENDPOINT, "other"), status)
    return response


# ---------------------------------------------------------------------- request helpers


def _drop(request: web.Request) -> NoReturn:
    transport = request.transport
    if transport is not None:
        transport.close()
    raise _Dropped


async def _prelude(request: web.Request, endpoint: str) -> tuple[Partner, FaultDecision]:
    """Faults, then rate limiting, then auth, for one of the four Debitura operations."""
    request[_ENDPOINT] = endpoint
    service = request.app[SERVICE_KEY]
    core = service.core
    decision = service.faults.decide(endpoint)
    if decision.fired:
        for kind in decision.fired:
            core.record_fault(kind)
        if decision.delay > 0:
            await asyncio.sleep(service.clock.to_real(decision.delay))
        if decision.action is FaultKind.DROP_BEFORE:
            _drop(request)
        if decision.action is FaultKind.HTTP_ERROR:
            status = decision.status
            raise ApiError(
                ApiProblem.simple(
                    status,
                    _SERVER_ERRORS.get(status, "server_error"),
                    "ServerError",
                    f"Injected fault: HTTP {status}",
                )
            )
        if decision.action is FaultKind.RATE_LIMIT:
            raise _RateLimited(decision.retry_after)
    key = request.headers.get("XApiKey")
    partner = core.partner_for_key(key)
    wait = core.admit(key or "", service.clock.now())  # unknown keys share one partition
    if wait is not None:
        raise _RateLimited(wait)
    if partner is None:
        message = "Invalid API key" if key else "Missing API key: send it in the XApiKey header"
        raise ApiError(ApiProblem.simple(401, "unauthorized", "Unauthorized", message))
    return partner, decision


def _is_json_media_type(media_type: str) -> bool:
    """application/json, text/json and application/*+json (incl. application/json-patch+json)."""
    if media_type in _JSON_TYPES:
        return True
    return media_type.startswith("application/") and media_type.endswith("+json")


async def _read_json(request: web.Request) -> object:
    """Presence (400), Content-Type (415), size (413), syntax (400): the parsed document."""
    service = request.app[SERVICE_KEY]
    if not request.body_exists:
        raise ApiError(ApiProblem.validation(["body: a non-empty request body is required"]))
    raw_type = request.headers.get("Content-Type")
    if raw_type is None or not _is_json_media_type(request.content_type):
        raise ApiError(
            ApiProblem.simple(
                415,
                "unsupported_media_type",
                "UnsupportedMediaType",
                f"Content-Type must be a JSON media type (application/json), got {raw_type!r}",
            )
        )
    charset = (request.charset or "utf-8").lower()
    codec: codecs.CodecInfo | None = None
    if charset not in ("utf-8", "utf8"):
        try:
            codec = codecs.lookup(charset)
        except LookupError:
            raise ApiError(
                ApiProblem.simple(
                    415,
                    "unsupported_media_type",
                    "UnsupportedMediaType",
                    f"Unsupported charset {charset!r}",
                )
            ) from None
    limit = service.config.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise web.HTTPRequestEntityTooLarge(limit, length)
    body = await request.read()
    if not body:
        raise ApiError(ApiProblem.validation(["body: a non-empty request body is required"]))
    try:
        if codec is not None:
            return orjson.loads(codec.decode(body)[0])
        return orjson.loads(body)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(ApiProblem.validation([f"body: malformed JSON ({exc})"])) from None


def _path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    text = request.match_info[name]
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError(
            ApiProblem.not_found(f"{what} not found ({name} is not a valid UUID)")
        ) from None


def _finish(request: web.Request, decision: FaultDecision, response: web.Response) -> web.Response:
    if decision.drop_after:
        _drop(request)
    return response


# ---------------------------------------------------------------------- Debitura operations


async def _post_ingestion_job(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, POST_JOBS)
    service = request.app[SERVICE_KEY]
    document = await _read_json(request)
    key = request.headers.get("Idempotency-Key") or None

    def job_faults() -> JobFaults:
        faults, fired = service.faults.decide_job()
        for kind in fired:
            service.core.record_fault(kind)
        return faults

    result = service.core.submit_job(
        partner,
        document,
        now=service.clock.now(),
        utcnow=service.utcnow(),
        idempotency_key=key,
        job_faults=job_faults,
    )
    if isinstance(result, Accepted):
        if not result.replayed:
            service.job_scheduled(result.job_id)
        response = _json(result.body(), 202)
    else:
        response = _problem_response(result)
    return _finish(request, decision, response)


async def _get_ingestion_job(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, GET_JOB)
    service = request.app[SERVICE_KEY]
    job_id = _path_uuid(request, "jobId", "Ingestion job")
    view = service.core.job_status(partner, job_id, now=service.clock.now())
    if view is None:
        response = _problem_response(
            ApiProblem.not_found("Ingestion job not found or not owned by this partner")
        )
    else:
        response = _json(view.as_dict())
    return _finish(request, decision, response)


async def _post_case_note(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, POST_NOTE)
    service = request.app[SERVICE_KEY]
    case_id = _path_uuid(request, "id", "Case")
    document = await _read_json(request)
    result = service.core.create_note(
        partner, case_id, document, now=service.clock.now(), utcnow=service.utcnow()
    )
    response = _problem_response(result) if isinstance(result, ApiProblem) else _json(result)
    return _finish(request, decision, response)


async def _get_me(request: web.Request) -> web.Response:
    partner, decision = await _prelude(request, GET_ME)
    service = request.app[SERVICE_KEY]
    return _finish(request, decision, _json(service.core.me(partner)))


# ---------------------------------------------------------------------- introspection


def _flag(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


async def _emu_world(request: web.Request) -> web.Response:
    return _json(request.app[SERVICE_KEY].world())


async def _emu_notes(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    case_id = request.query.get("caseId") or None
    external_ref = request.query.get("externalRef")
    return _json(service.notes(case_id=case_id, external_ref=external_ref))


async def _emu_stats(request: web.Request) -> web.Response:
    return _json(request.app[SERVICE_KEY].stats())


async def _emu_jobs(request: web.Request) -> web.Response:
    return _json(request.app[SERVICE_KEY].jobs())


async def _emu_job(request: web.Request) -> web.Response:
    job = request.app[SERVICE_KEY].job_schedule(request.match_info["jobId"])
    if job is None:
        raise ApiError(ApiProblem.not_found("No such job in this emulator run"))
    return _json(job.to_dict())


async def _emu_get_faults(request: web.Request) -> web.Response:
    return _json(request.app[SERVICE_KEY].faults.describe())


async def _emu_add_fault(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ApiError(ApiProblem.validation([f"fault: malformed JSON ({exc})"])) from None
    if not isinstance(data, dict):
        raise ApiError(ApiProblem.validation(["fault: must be a JSON object"]))
    try:
        fault = Fault.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ApiError(ApiProblem.validation([f"fault: {exc}"])) from None
    service.add_fault(fault)
    return _json(service.faults.describe(), 201)


async def _emu_clear_faults(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    service.clear_faults()
    return _json(service.faults.describe())


async def _emu_restart(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    service.restart(keep_notes=_flag(request, "keepNotes", default=True))
    return _json({"restarted": True})


async def _emu_reset(request: web.Request) -> web.Response:
    request.app[SERVICE_KEY].reset()
    return _json({"reset": True})


def build_app(service: EmulatorService, *, host: str = "127.0.0.1") -> web.Application:
    """The aiohttp application serving ``service`` (Debitura paths + ``/_emulator/``, the latter
    guarded by :mod:`.introspection`; ``host`` is the bound address it accepts in ``Host``)."""
    from .case_routes import add_case_routes  # noqa: PLC0415 - case_routes imports this module

    app = web.Application(
        middlewares=[_error_middleware, guard], client_max_size=service.config.max_body_bytes
    )
    app[SERVICE_KEY] = service
    app[TOKEN_KEY] = service.token
    app[BOUND_HOST_KEY] = host
    add_case_routes(app)
    app.router.add_post("/ingestion-jobs", _post_ingestion_job)
    app.router.add_get("/ingestion-jobs/{jobId}", _get_ingestion_job, allow_head=False)
    app.router.add_post("/cases/{id}/notes", _post_case_note)
    app.router.add_get("/me", _get_me, allow_head=False)
    app.router.add_get("/_emulator/world", _emu_world, allow_head=False)
    app.router.add_get("/_emulator/notes", _emu_notes, allow_head=False)
    app.router.add_get("/_emulator/stats", _emu_stats, allow_head=False)
    app.router.add_get("/_emulator/jobs", _emu_jobs, allow_head=False)
    app.router.add_get("/_emulator/jobs/{jobId}", _emu_job, allow_head=False)
    app.router.add_get("/_emulator/faults", _emu_get_faults, allow_head=False)
    app.router.add_post("/_emulator/faults", _emu_add_fault)
    app.router.add_delete("/_emulator/faults", _emu_clear_faults)
    app.router.add_post("/_emulator/restart", _emu_restart)
    app.router.add_post("/_emulator/reset", _emu_reset)
    return app
