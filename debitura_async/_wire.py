"""The wire format, in one place: the one cattrs converter and the error-body reader.

* Names are camelCase on the wire and snake_case in :mod:`debitura_async.models`.
* UUIDs are strings; datetimes are ISO 8601 in UTC with a ``Z`` suffix. A naive datetime is
  refused when encoding (its time zone is unknowable); a naive timestamp *from the server* is read
  as UTC.
* Unknown response fields are ignored, so the API can grow without breaking clients; a missing or
  mistyped field raises :class:`~debitura_async.errors.DecodeError` saying which one.
* Bodies are encoded and decoded with orjson (about ten times stdlib json on 1000-row bodies; see
  ``benchmarks/``).
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import BusinessError, DecodeError, ErrorBody
from .models import (
    AsyncJobStatus,
    Case,
    CaseCreditor,
    CaseDebtor,
    CaseTimeline,
    CollectionPartner,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionJobStatus,
    Note,
    NoteAuthor,
    TimelineActor,
    TimelineItem,
)

__all__ = [
    "converter",
    "decode",
    "decode_case_map",
    "encode_array",
    "encode_row",
    "encode_rows",
    "format_datetime",
    "parse_datetime",
    "parse_error_body",
    "parse_retry_after",
    "row_dict",
]

T = TypeVar("T")

_CAMEL_RE = re.compile(r"_([a-z])")


def to_camel(name: str) -> str:
    """``rows_succeeded`` -> ``rowsSucceeded``."""
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name)


def format_datetime(value: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with ``Z``; a naive one is refused."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} has no time zone; "
            "pass an aware datetime (e.g. datetime(..., tzinfo=UTC))"
        )
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z"  # "+00:00" -> "Z"


def parse_datetime(value: object) -> datetime:
    """Read an ISO 8601 timestamp; a string without offset is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    else:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _structure_uuid(value: object, _: type) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _structure_int(value: object, cl: type[int]) -> int:
    # Also serves IntEnum fields (singledispatch matches subclasses): cl(value) checks members.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer {cl.__name__}, got {value!r}")
    return cl(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(uuid.UUID, _structure_uuid)
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
    conv.register_unstructure_hook(datetime, format_datetime)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)  # bool is an int: needs its own hook
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.IntEnum), int
    )

    for cls in (
        IngestionJobAccepted,
        IngestionJobStatus,
        Note,
        NoteAuthor,
        CollectionPartner,
        IngestionJobRow,
    ):
        renames: dict[str, Any] = {
            a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)
        }
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **renames))

    # Rows: ``type`` is required on the wire; optional fields left at None are not sent.
    row_fields: dict[str, Any] = {
        a.name: override(rename=to_camel(a.name), omit_if_default=a.name != "type")
        for a in attrs.fields(IngestionJobRow)
    }
    conv.register_unstructure_hook(
        IngestionJobRow, make_dict_unstructure_fn(IngestionJobRow, conv, **row_fields)
    )
    return conv


converter: cattrs.Converter = _make_converter()
"""The one converter holding the wire format. Use :func:`decode` / :func:`encode_rows`."""

_unstructure_row = converter.get_unstructure_hook(IngestionJobRow)


def row_to_wire(row: IngestionJobRow) -> dict[str, Any]:
    """One row as the API's camelCase mapping."""
    result: dict[str, Any] = _unstructure_row(row)
    return result


def _row_dict(row: IngestionJobRow) -> dict[str, Any]:
    """A row as orjson (with ``OPT_UTC_Z``) turns it into exactly the converter's bytes.

    The shortcuts keep to the converter's output: a ``uuid.UUID`` and a datetime already in UTC
    are left to orjson, which writes them as ``str()`` and :func:`format_datetime` do; any other
    id or datetime goes through the converter's rules (so a naive datetime is refused here too).
    Checked against the converter by hypothesis in ``tests/benchmarks/test_library_fast_paths.py``.
    """
    case_id = row.case_id
    wire: dict[str, Any] = {
        "caseId": case_id if type(case_id) is uuid.UUID else str(case_id),
        "description": row.description,
        "type": row.type,  # an IntEnum: orjson writes its value
    }
    event_date = row.event_date
    if event_date is not None:
        if type(event_date) is datetime and event_date.tzinfo is UTC:
            wire["eventDate"] = event_date
        else:
            wire["eventDate"] = format_datetime(event_date)
    if row.external_ref is not None:
        wire["externalRef"] = row.external_ref
    return wire


WireRow = dict[str, Any]
"""A row already in its wire form: :func:`row_dict`'s mapping (the pipeline's fast path makes
these straight from the input, see :mod:`debitura_async._fast`); orjson with ``OPT_UTC_Z``
writes it as the converter would write the row."""


def row_dict(row: IngestionJobRow | WireRow) -> WireRow:
    """A row's wire dict (a wire dict is returned as it is)."""
    return row if type(row) is dict else _row_dict(row)  # type: ignore[arg-type]


def encode_rows(rows: Iterable[IngestionJobRow | WireRow]) -> bytes:
    """The ``POST /ingestion-jobs`` body for these rows (or wire dicts), in one orjson call.

    Byte for byte what ``orjson.dumps({"rows": [row_to_wire(r) for r in rows]})`` gives, in a
    fraction of the time: the pipeline encodes every row it sends through here.
    """
    return orjson.dumps({"rows": _items(rows)}, option=orjson.OPT_UTC_Z)


def encode_array(rows: Iterable[IngestionJobRow | WireRow]) -> bytes:
    """The rows as a JSON array: exactly the ``rows`` array of :func:`encode_rows`' body."""
    return orjson.dumps(_items(rows), option=orjson.OPT_UTC_Z)


def _items(rows: Iterable[IngestionJobRow | WireRow]) -> Iterable[Any]:
    if type(rows) in (tuple, list) and _DICTS.issuperset(map(type, rows)):
        return rows  # wire dicts only: orjson writes a tuple or a list as an array
    return [r if type(r) is dict else _row_dict(r) for r in rows]  # type: ignore[arg-type]


_DICTS = frozenset({dict})


def encode_row(row: IngestionJobRow | WireRow) -> bytes:
    """One row's JSON, as it appears inside the ``rows`` array (used to size rows against a
    body cap). The result is copied out of orjson's buffer: keeping many of those buffers alive
    made each ``dumps`` ten times slower (allocator churn)."""
    return memoryview(orjson.dumps(row_dict(row), option=orjson.OPT_UTC_Z)).tobytes()


def encode_json(payload: Any) -> bytes:
    return orjson.dumps(payload)


def _load_object(raw: bytes, what: str, method: str, path: str, status: int) -> dict[str, Any]:
    """A response body that must be one JSON object; anything else is a :class:`DecodeError`."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise DecodeError(
            f"response is not JSON ({exc}): {snippet!r}", method=method, path=path, status=status
        ) from exc
    if not isinstance(data, dict):
        raise DecodeError(
            f"expected {what}, got {type(data).__name__}", method=method, path=path, status=status
        )
    return data


def _accepted(data: dict[str, Any]) -> IngestionJobAccepted | None:
    """The 202's usual form, built as the converter builds it (None: the converter decides)."""
    job_id, queued = data.get("jobId"), data.get("rowsQueued")
    if type(job_id) is not str or type(queued) is not int:
        return None
    try:
        return IngestionJobAccepted(job_id=uuid.UUID(job_id), rows_queued=queued)
    except ValueError:
        return None


_JOB_STATUSES: Final = {int(s): s for s in AsyncJobStatus}


def _job_status(data: dict[str, Any]) -> IngestionJobStatus | None:
    """A status answer's usual form, built as the converter builds it (None: it decides)."""
    status, total = data.get("status"), data.get("rowsTotal")
    succeeded, failed = data.get("rowsSucceeded"), data.get("rowsFailed")
    if not (
        type(status) is int
        and type(total) is int
        and type(succeeded) is int
        and type(failed) is int
        and status in _JOB_STATUSES
    ):
        return None
    return IngestionJobStatus(
        status=_JOB_STATUSES[status],
        rows_total=total,
        rows_succeeded=succeeded,
        rows_failed=failed,
    )


_SHORTCUTS: Final[dict[type, Callable[[dict[str, Any]], Any]]] = {
    IngestionJobAccepted: _accepted,
    IngestionJobStatus: _job_status,
}
"""The two answers every job gets: built without cattrs when they are in their usual form
(hypothesis-tested against the converter in ``tests/unit/client/test_wire_shortcuts.py``)."""


def decode(cls: type[T], raw: bytes, *, method: str = "", path: str = "", status: int = 0) -> T:
    """Parse a response body into ``cls``; every failure becomes a :class:`DecodeError`."""
    data = _load_object(raw, f"a JSON object for {cls.__name__}", method, path, status)
    shortcut = _SHORTCUTS.get(cls)
    if shortcut is not None:
        made = shortcut(data)
        if made is not None:
            result: T = made
            return result
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        reasons = "; ".join(_describe_structure_error(exc))
        raise DecodeError(
            f"response does not match {cls.__name__}: {reasons}",
            method=method,
            path=path,
            status=status,
        ) from exc


def _describe_structure_error(exc: BaseException) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, path="$")
        return [_camel_path(m) for m in messages]
    return [str(exc)]


_PATH_RE = re.compile(r"(@ \$\S*)")


def _camel_path(message: str) -> str:
    # transform_error reports Python attribute names; show the wire names instead.
    return _PATH_RE.sub(lambda m: to_camel(m.group(1)), message)


def _as_opt_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _as_float(value: object) -> float | None:
    """A finite number from a number or its text; anything else (inf, nan, bool) is None."""
    if isinstance(value, bool):
        return None
    result: float | None = None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
    return result if result is not None and math.isfinite(result) else None


def parse_error_body(raw: bytes) -> ErrorBody:
    """Read an error body in any documented shape; never raises.

    Shapes: ``ApiErrorResponseDto`` ``{error, message, businessErrors}``; RFC 7807
    ``{type, title, status, detail}``; ASP.NET validation ``{errors: {field: [msg]}}`` or a bare
    ``{field: [msg]}`` map; and the 429 body ``{error, message, retryAfter}``. Non-JSON bodies
    become the message text.
    """
    if not raw:
        return ErrorBody()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:500].decode("utf-8", "replace").strip()
        return ErrorBody(message=text or None, raw=text)
    if not isinstance(data, dict):
        return ErrorBody(message=_as_opt_str(data), raw=data)

    business: list[BusinessError] = []
    items = data.get("businessErrors")
    if isinstance(items, list):
        business.extend(
            BusinessError(
                type=_as_opt_str(item.get("type")),
                message=_as_opt_str(item.get("message")),
                solution_url=_as_opt_str(item.get("solutionUrl")),
            )
            for item in items
            if isinstance(item, dict)
        )

    field_errors: list[tuple[str, tuple[str, ...]]] = []
    errors_map = data.get("errors")
    candidates = errors_map if isinstance(errors_map, dict) else data
    for key, value in candidates.items():
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            field_errors.append((str(key), tuple(value)))

    error = _as_opt_str(data.get("error")) or _as_opt_str(data.get("title"))
    message = _as_opt_str(data.get("message")) or _as_opt_str(data.get("detail"))
    problem_type = _as_opt_str(data.get("type")) if "title" in data or "status" in data else None
    return ErrorBody(
        error=error,
        message=message,
        business_errors=tuple(business),
        field_errors=tuple(field_errors),
        problem_type=problem_type,
        retry_after=_as_float(data.get("retryAfter")),
        raw=data,
    )


def parse_retry_after(header: str | None, body: ErrorBody, *, now: datetime) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header (seconds or HTTP date) or the body.

    The header wins when both are present; negative values count as zero.
    """
    if header:
        value = header.strip()
        seconds = _as_float(value)
        if seconds is None:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                seconds = (when - now).total_seconds()
        if seconds is not None:
            return max(0.0, seconds)
    if body.retry_after is not None:
        return max(0.0, body.retry_after)
    return None


# -- cases (lookup by partner reference, timeline): registered on the same converter -----------


def _object_only(cls: type[T], structure: Callable[[Any, type], T]) -> Callable[[Any, type], T]:
    """A structure hook that refuses anything but a JSON object (cattrs' generated hooks would
    read a string as an object with every field missing)."""

    def hook(value: Any, cl: type) -> T:
        if not isinstance(value, dict):
            raise TypeError(
                f"expected a JSON object for {cls.__name__}, got {type(value).__name__}"
            )
        return structure(value, cl)

    return hook


def _register_case_models(conv: cattrs.Converter) -> None:
    for cls in (CaseDebtor, CaseCreditor, Case, TimelineActor, TimelineItem):
        renames: dict[str, Any] = {
            a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)
        }
        structure = make_dict_structure_fn(cls, conv, **renames)
        conv.register_structure_hook(cls, _object_only(cls, structure))
    timeline = make_dict_structure_fn(
        CaseTimeline, conv, current_engagement_phase=override(rename="currentEngagementPhase")
    )

    def structure_timeline(value: Any, cl: type) -> CaseTimeline:
        # ``items`` is required but nullable in the spec: null reads as no items.
        if isinstance(value, dict):
            items = value.get("items", ())
            if items is None:
                value = {**value, "items": ()}
            elif not isinstance(items, list):
                raise TypeError(f"items: expected a JSON array, got {type(items).__name__}")
        result: CaseTimeline = timeline(value, cl)
        return result

    conv.register_structure_hook(CaseTimeline, _object_only(CaseTimeline, structure_timeline))


_register_case_models(converter)


def decode_case_map(
    raw: bytes, *, method: str = "", path: str = "", status: int = 0
) -> dict[str, Case]:
    """The batch lookup's ``{partnerReference: InvoiceDto}`` body as ``{reference: Case}``."""
    data = _load_object(raw, "a JSON object mapping references to cases", method, path, status)
    try:
        return converter.structure(data, dict[str, Case])
    except Exception as exc:
        reasons = "; ".join(_describe_structure_error(exc))
        raise DecodeError(
            f"response does not match {{reference: Case}}: {reasons}",
            method=method,
            path=path,
            status=status,
        ) from exc
