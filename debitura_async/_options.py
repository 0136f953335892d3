"""The options of ``ingest()`` / ``ingest_all()``: typed for mypy, checked at the call.

:class:`IngestKwargs` is the ``TypedDict`` behind ``**options: Unpack[IngestKwargs]`` (as stamina
types its retry keywords), so a misspelled option fails ``mypy --strict``; at runtime
:func:`make_options` refuses unknown names with a "did you mean" and every wrong value with a
:class:`~debitura_async.ConfigurationError` raised from the call itself — before any task starts.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Final, Literal, TypedDict

import attrs

from ._journal_api import IngestJournal
from ._polling import PollPolicy
from ._validate import MAX_BATCH_ROWS
from .errors import ConfigurationError
from .models import IngestProgress

__all__ = ["IngestKwargs", "IngestOptions", "OnInvalid", "make_options"]

OnInvalid = Literal["skip", "raise"]
_RUN_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_JOURNAL_METHODS: Final = ("lookup", "batch_submitting", "batch_accepted", "batch_finished")


def _fail(name: str, expected: str, value: object) -> ConfigurationError:
    return ConfigurationError(f"{name} must be {expected}, got {value!r}")


def _int(
    minimum: int, maximum: int | None = None
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        span = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(attribute.name, f"an int {span}", value)
        if value < minimum or (maximum is not None and value > maximum):
            raise _fail(attribute.name, f"an int {span}", value)

    return check


def _seconds(
    *, optional: bool, zero_ok: bool = False
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        expected = "a number of seconds" + (" >= 0" if zero_ok else " > 0")
        expected += " or None" if optional else ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(attribute.name, expected, value)
        if math.isnan(value) or value < 0 or (value == 0 and not zero_ok) or math.isinf(value):
            raise _fail(attribute.name, expected, value)

    return check


def _check_journal(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    missing = [
        m for m in _JOURNAL_METHODS if not inspect.iscoroutinefunction(getattr(value, m, None))
    ]
    if missing:
        raise ConfigurationError(
            f"journal must be an IngestJournal (async {', '.join(_JOURNAL_METHODS)}); "
            f"{type(value).__name__} lacks async {', '.join(missing)}"
        )


def _check_callable(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise _fail(attribute.name, "a callable or None", value)


def _check_instance(cls: type) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, cls):
            raise _fail(attribute.name, f"a {cls.__name__}", value)

    return check


def _check_validated_at(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise _fail(attribute.name, "a timezone-aware datetime or None", value)


@attrs.frozen(kw_only=True)
class IngestOptions:
    """Options of :meth:`DebituraClient.ingest` (all keyword arguments there).

    * ``batch_size`` — rows per job, 1..1000.
    * ``max_concurrent_submits`` — POSTs in flight at once.
    * ``max_jobs_in_flight`` — batches sent (or being sent) and not yet finished. When full, the
      pipeline stops reading input. The default suits Debitura's guide (a 1000-row job takes up
      to 30 s): 8 jobs move about a million rows an hour on ~2.2 requests per 1000 rows.
    * ``on_invalid`` — ``"skip"``: report bad rows (REJECTED results) and go on; ``"raise"``:
      stop with a :class:`ValidationError`. For a list or tuple the whole input is checked before
      anything is sent; for a stream, nothing more is sent after the first bad row.
    * ``deadline`` — seconds from the start (> 0); then everything unfinished is reported
      UNRESOLVED (resumable by its Idempotency-Key and job id).
    * ``run_id`` — names the run in Idempotency-Keys; pass the same id (and the same input) to
      resume a run. Default: random.
    * ``polling`` — :class:`PollPolicy` for this run's jobs (default: the client's, set by
      ``DebituraClient(polling=...)``; ``PollPolicy.fixed(3.0)`` is the guide's cadence). Jobs
      are polled by the client's shared tracker.
    * ``on_progress`` — called with an :class:`IngestProgress` at most every
      ``progress_interval`` seconds, and once at the end. An exception it raises stops the run
      and reaches the caller.
    * ``max_body_bytes`` — cap on a request body; batches are cut to fit.
    * ``result_buffer`` — results buffered for a slow consumer before the pipeline waits.
    * ``journal`` — an :class:`IngestJournal` to record and resume the run.
    * ``validated_at`` — the "now" for the future-eventDate rule (a resumed run passes the
      original run's start, so the same rows are valid and the same batches form).
    * ``max_poll_failures`` — consecutive failed polls of one job before it is UNRESOLVED.
    * ``max_failed_submits`` — consecutive batches whose POST failed even after retries
      (server unreachable, 5xx) before the run stops sending: the rest of the input is still
      read and accounted for, each batch reported UNRESOLVED at once (resumable).
    * ``row_key`` — a function of each input item giving the key a :class:`JobResult` and a
      :class:`RejectedRow` carry for it (default: the row's ``externalRef``), to match results
      back to your own records.
    """

    batch_size: int = attrs.field(default=MAX_BATCH_ROWS, validator=_int(1, MAX_BATCH_ROWS))
    max_concurrent_submits: int = attrs.field(default=4, validator=_int(1, 1024))
    max_jobs_in_flight: int = attrs.field(default=8, validator=_int(1, 100_000))
    on_invalid: OnInvalid = "skip"
    deadline: float | None = attrs.field(default=None, validator=_seconds(optional=True))
    run_id: str | None = None
    polling: PollPolicy | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_instance(PollPolicy))
    )
    on_progress: Callable[[IngestProgress], object] | None = attrs.field(
        default=None, validator=_check_callable
    )
    progress_interval: float = attrs.field(
        default=0.25, validator=_seconds(optional=False, zero_ok=True)
    )
    max_body_bytes: int | None = None
    result_buffer: int = attrs.field(default=64, validator=_int(0, 1_000_000))
    journal: IngestJournal | None = attrs.field(default=None, validator=_check_journal)
    validated_at: datetime | None = attrs.field(default=None, validator=_check_validated_at)
    max_poll_failures: int = attrs.field(default=10, validator=_int(1, 10_000))
    max_failed_submits: int = attrs.field(default=3, validator=_int(1, 1_000_000))
    row_key: Callable[[Any], Hashable] | None = attrs.field(default=None, validator=_check_callable)

    def __attrs_post_init__(self) -> None:
        if self.on_invalid not in ("skip", "raise"):
            raise _fail("on_invalid", "'skip' or 'raise'", self.on_invalid)
        if self.run_id is not None and (
            not isinstance(self.run_id, str) or not _RUN_ID.fullmatch(self.run_id)
        ):
            raise _fail("run_id", "1..64 characters of A-Z a-z 0-9 _ . : -", self.run_id)
        body = self.max_body_bytes
        if body is not None and (isinstance(body, bool) or not isinstance(body, int) or body < 64):
            raise _fail("max_body_bytes", "an int >= 64 or None", body)


class IngestKwargs(TypedDict, total=False):
    """The keyword options of ``ingest()`` / ``ingest_all()`` (see :class:`IngestOptions`)."""

    batch_size: int
    max_concurrent_submits: int
    max_jobs_in_flight: int
    on_invalid: OnInvalid
    deadline: float | None
    run_id: str | None
    polling: PollPolicy | None
    on_progress: Callable[[IngestProgress], object] | None
    progress_interval: float
    max_body_bytes: int | None
    result_buffer: int
    journal: IngestJournal | None
    validated_at: datetime | None
    max_poll_failures: int
    max_failed_submits: int
    row_key: Callable[[Any], Hashable] | None


_NAMES: Final = tuple(a.name for a in attrs.fields(IngestOptions))


def make_options(options: dict[str, Any]) -> IngestOptions:
    """Check the keyword options of an ``ingest()`` call; raise from that call if wrong."""
    unknown = [name for name in options if name not in _NAMES]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; options are {', '.join(_NAMES)}"
        raise TypeError(f"ingest() got an unexpected keyword argument {name!r}{hint}")
    return IngestOptions(**options)
