"""Value models and the exception tree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attrs
import pytest

from debitura_async.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BusinessError,
    ConfigurationError,
    ConnectError,
    DebituraError,
    DecodeError,
    ErrorBody,
    IdempotencyConflictError,
    JobWaitTimeout,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeout,
    RowProblem,
    ServerError,
    TLSError,
    TransportError,
    UnprocessableEntityError,
    ValidationError,
    status_error_class,
)
from debitura_async.models import (
    AsyncJobStatus,
    IngestionJobRow,
    IngestionJobStatus,
    PartnerIngestEventType,
)

CASE = "123e4567-e89b-12d3-a456-426614174000"
JOB = uuid.UUID("789e4567-e89b-12d3-a456-426614174999")

# -- models ------------------------------------------------------------------------------------


def test_row_defaults_and_uuid_string_conversion() -> None:
    row = IngestionJobRow(CASE, "Called the debtor.")
    assert row.case_id == uuid.UUID(CASE)
    assert isinstance(row.case_id, uuid.UUID)
    assert row.type is PartnerIngestEventType.NOTE
    assert row.event_date is None
    assert row.external_ref is None


def test_row_is_frozen() -> None:
    row = IngestionJobRow(CASE, "x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        row.description = "y"  # type: ignore[misc]


def test_row_equality_and_hash() -> None:
    when = datetime(2026, 2, 1, tzinfo=UTC)
    a = IngestionJobRow(CASE, "x", event_date=when, external_ref="r")
    b = IngestionJobRow(uuid.UUID(CASE), "x", event_date=when, external_ref="r", type=0)
    assert a == b
    assert hash(a) == hash(b)
    assert a != IngestionJobRow(CASE, "x", event_date=when, external_ref="other")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"case_id": "nope"}, ValueError, r"^case_id: 'nope' is not a valid UUID$"),
        ({"case_id": 5}, TypeError, r"^case_id: expected a UUID or its string, got int$"),
        ({"type": 1}, ValueError, r"^type: unsupported event type 1 \(only 0 = Note"),
        ({"type": -1}, ValueError, r"^type: unsupported event type -1 "),
        ({"type": True}, TypeError, r"^type: expected an integer event type, got bool$"),
        ({"type": "0"}, TypeError, r"^type: expected an integer event type, got str$"),
        ({"type": 0.0}, TypeError, r"^type: expected an integer event type, got float$"),
    ],
)
def test_row_constructor_refuses_bad_values(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {"case_id": CASE, "description": "x", **kwargs}
    with pytest.raises(error, match=message):
        IngestionJobRow(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (AsyncJobStatus.QUEUED, False),
        (AsyncJobStatus.IN_PROGRESS, False),
        (AsyncJobStatus.COMPLETED, True),
        (AsyncJobStatus.COMPLETED_WITH_ERRORS, True),
        (AsyncJobStatus.FAILED, True),
    ],
)
def test_job_status_terminal(status: AsyncJobStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal
    job = IngestionJobStatus(status=status, rows_total=10, rows_succeeded=6, rows_failed=3)
    assert job.is_terminal is terminal
    assert job.rows_processed == 9


def test_async_job_status_values_match_the_guide() -> None:
    assert [(s.name, int(s)) for s in AsyncJobStatus] == [
        ("QUEUED", 0),
        ("IN_PROGRESS", 1),
        ("COMPLETED", 2),
        ("COMPLETED_WITH_ERRORS", 3),
        ("FAILED", 4),
    ]
    assert [int(t) for t in PartnerIngestEventType] == [0]


# -- RowProblem / ValidationError --------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (RowProblem(3, "caseId", "required"), "row 3: caseId: required"),
        (
            RowProblem(0, "description", "must not be empty"),
            "row 0: description: must not be empty",
        ),
        (
            RowProblem(-1, "rows", "at least one row is required"),
            "rows: at least one row is required",
        ),
    ],
)
def test_row_problem_str(problem: RowProblem, text: str) -> None:
    assert str(problem) == text


def test_validation_error_lists_problems() -> None:
    problems = [RowProblem(-1, "rows", "too many"), RowProblem(2, "type", "unsupported")]
    err = ValidationError(problems)
    assert err.problems == tuple(problems)
    assert str(err) == "invalid batch: 2 problem(s): rows: too many; row 2: type: unsupported"
    assert isinstance(err, ValueError)
    assert str(ValidationError(problems[1:], what="row")).startswith("invalid row: 1 problem(s)")


def test_validation_error_message_is_capped_at_twenty_problems() -> None:
    problems = [RowProblem(i, "caseId", "required") for i in range(25)]
    err = ValidationError(problems)
    message = str(err)
    assert message.startswith("invalid batch: 25 problem(s): row 0: caseId: required; ")
    assert "row 19: caseId" in message
    assert "row 20: caseId" not in message
    assert message.endswith("; … and 5 more")
    assert len(err.problems) == 25


# -- other errors ------------------------------------------------------------------------------


def test_decode_error_message() -> None:
    assert str(DecodeError("bad")) == "bad"
    err = DecodeError("bad", method="GET", path="/me", status=200)
    assert str(err) == "bad (GET /me -> 200)"
    assert (err.method, err.path, err.status) == ("GET", "/me", 200)


def test_transport_error_message() -> None:
    err = RequestTimeout("no complete response in time", method="POST", path="/ingestion-jobs")
    assert str(err) == "POST /ingestion-jobs: no complete response in time"
    assert (err.method, err.path) == ("POST", "/ingestion-jobs")


def test_job_wait_timeout_message() -> None:
    err = JobWaitTimeout(JOB, 2.5, None)
    assert str(err) == f"job {JOB} not terminal after 2.5 s (no status seen)"
    assert isinstance(err, TimeoutError)
    last = IngestionJobStatus(
        status=AsyncJobStatus.IN_PROGRESS, rows_total=3, rows_succeeded=1, rows_failed=0
    )
    err = JobWaitTimeout(JOB, 30.0, last)
    assert str(err) == f"job {JOB} not terminal after 30 s (last status IN_PROGRESS)"
    assert (err.job_id, err.timeout, err.last_status) == (JOB, 30.0, last)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ConfigurationError, DebituraError),
        (ConfigurationError, ValueError),
        (ValidationError, DebituraError),
        (DecodeError, DebituraError),
        (JobWaitTimeout, DebituraError),
        (ConnectError, TransportError),
        (TLSError, ConnectError),
        (RemoteProtocolError, TransportError),
        (RequestTimeout, TransportError),
        (TransportError, DebituraError),
        (IdempotencyConflictError, UnprocessableEntityError),
        (RateLimitError, APIStatusError),
        (ServerError, APIStatusError),
        (APIStatusError, DebituraError),
    ],
)
def test_exception_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)


def test_transport_errors_are_not_api_status_errors() -> None:
    assert not issubclass(TransportError, APIStatusError)
    assert not issubclass(RemoteProtocolError, ConnectError)
    assert not issubclass(RequestTimeout, ConnectError)


# -- status_error_class / APIStatusError -------------------------------------------------------

_CONFLICT = ErrorBody(
    business_errors=(BusinessError(type="IdempotencyConflict", message="key reused"),)
)
_OTHER_BUSINESS = ErrorBody(business_errors=(BusinessError(type="CaseClosed", message="closed"),))


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, ErrorBody(), BadRequestError),
        (400, _CONFLICT, BadRequestError),
        (401, ErrorBody(), AuthenticationError),
        (403, ErrorBody(), PermissionDeniedError),
        (404, ErrorBody(), NotFoundError),
        (413, ErrorBody(), PayloadTooLargeError),
        (422, ErrorBody(), UnprocessableEntityError),
        (422, _OTHER_BUSINESS, UnprocessableEntityError),
        (422, _CONFLICT, IdempotencyConflictError),
        (429, ErrorBody(), RateLimitError),
        (429, _CONFLICT, RateLimitError),
        (500, ErrorBody(), ServerError),
        (501, ErrorBody(), ServerError),
        (502, ErrorBody(), ServerError),
        (503, ErrorBody(), ServerError),
        (504, ErrorBody(), ServerError),
        (599, ErrorBody(), ServerError),
        (409, ErrorBody(), APIStatusError),
        (418, ErrorBody(), APIStatusError),
        (451, ErrorBody(), APIStatusError),
    ],
)
def test_status_error_class(status: int, body: ErrorBody, cls: type[APIStatusError]) -> None:
    assert status_error_class(status, body) is cls


def test_api_status_error_message_includes_the_description() -> None:
    body = ErrorBody(
        error="Unprocessable Entity",
        message="Idempotency conflict",
        business_errors=(BusinessError(type="IdempotencyConflict", message="key reused"),),
    )
    err = IdempotencyConflictError(
        status=422, method="POST", path="/ingestion-jobs", body=body, job_id=JOB, retry_after=None
    )
    assert str(err) == (
        "POST /ingestion-jobs -> 422: Unprocessable Entity | Idempotency conflict | "
        "IdempotencyConflict: key reused"
    )
    assert err.business_errors == body.business_errors
    assert (err.status, err.method, err.path, err.job_id, err.retry_after) == (
        422,
        "POST",
        "/ingestion-jobs",
        JOB,
        None,
    )


def test_api_status_error_without_body_detail() -> None:
    err = ServerError(status=500, method="GET", path="/me", body=ErrorBody())
    assert str(err) == "GET /me -> 500"
    rate = RateLimitError(status=429, method="GET", path="/me", body=ErrorBody(), retry_after=42.0)
    assert rate.retry_after == 42.0


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (ErrorBody(), ""),
        (ErrorBody(error="Bad Request"), "Bad Request"),
        (ErrorBody(error="Same", message="Same"), "Same"),
        (ErrorBody(message="only message"), "only message"),
        (
            ErrorBody(
                error="Bad Request",
                message="Validation failed",
                business_errors=(
                    BusinessError(type="IdempotencyConflict", message="Key reused"),
                    BusinessError(message="untyped"),
                ),
                field_errors=(("rows", ("a", "b")), ("caseId", ("c",))),
            ),
            "Bad Request | Validation failed | IdempotencyConflict: Key reused | untyped | "
            "rows: a; b | caseId: c",
        ),
    ],
)
def test_error_body_describe(body: ErrorBody, text: str) -> None:
    assert body.describe() == text


def test_error_body_equality_ignores_raw() -> None:
    assert ErrorBody(message="m", raw={"message": "m"}) == ErrorBody(message="m", raw="other")
    assert "raw" not in repr(ErrorBody(raw={"secret": 1}))
