"""The wire format: row encoding, response decoding, error bodies and Retry-After."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import _wire
from debitura_async.errors import BusinessError, DecodeError, ErrorBody
from debitura_async.models import (
    AsyncJobStatus,
    CollectionPartner,
    IngestionJobAccepted,
    IngestionJobRow,
    IngestionJobStatus,
    Note,
    NoteAuthor,
)

from ._strategies import in_utc, valid_rows

CASE = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
JOB = uuid.UUID("789e4567-e89b-12d3-a456-426614174999")
NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: such a datetime is naive in all but name."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


# -- rows -> wire ------------------------------------------------------------------------------


def test_full_row_uses_camel_case_names_and_z_timestamps() -> None:
    row = IngestionJobRow(
        CASE,
        "Contacted debtor by phone.",
        event_date=datetime(2026, 2, 1, 9, 30, tzinfo=UTC),
        external_ref="CRM-NOTE-98765",
    )
    assert _wire.row_to_wire(row) == {
        "type": 0,
        "caseId": "123e4567-e89b-12d3-a456-426614174000",
        "description": "Contacted debtor by phone.",
        "eventDate": "2026-02-01T09:30:00Z",
        "externalRef": "CRM-NOTE-98765",
    }


def test_minimal_row_always_sends_type_and_omits_none_optionals() -> None:
    wire = _wire.row_to_wire(IngestionJobRow(CASE, "No answer."))
    assert wire == {
        "type": 0,
        "caseId": "123e4567-e89b-12d3-a456-426614174000",
        "description": "No answer.",
    }
    assert type(wire["type"]) is int  # a plain int, not the IntEnum


def test_empty_external_ref_is_sent_not_omitted() -> None:
    wire = _wire.row_to_wire(IngestionJobRow(CASE, "x", external_ref=""))
    assert wire["externalRef"] == ""


def test_encode_rows_is_the_post_body() -> None:
    rows = [
        IngestionJobRow(CASE, "one"),
        IngestionJobRow(CASE, "two", event_date=datetime(2026, 2, 1, 10, 15, tzinfo=UTC)),
    ]
    body = _wire.encode_rows(rows)
    assert isinstance(body, bytes)
    assert orjson.loads(body) == {
        "rows": [
            {"type": 0, "caseId": str(CASE), "description": "one"},
            {
                "type": 0,
                "caseId": str(CASE),
                "description": "two",
                "eventDate": "2026-02-01T10:15:00Z",
            },
        ]
    }
    assert _wire.encode_rows([]) == b'{"rows":[]}'
    assert _wire.encode_rows(iter(rows)) == body  # any iterable, e.g. a generator


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 2, 1, 9, 30, tzinfo=UTC), "2026-02-01T09:30:00Z"),
        (datetime(2026, 2, 1, 9, 30, 0, 123, tzinfo=UTC), "2026-02-01T09:30:00.000123Z"),
        (datetime(2026, 2, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))), "2026-02-01T09:30:00Z"),
        (
            datetime(2026, 1, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2026-02-01T03:00:00Z",
        ),
        (
            datetime(2026, 1, 1, 0, 0, 30, tzinfo=timezone(timedelta(seconds=30))),
            "2026-01-01T00:00:00Z",
        ),
        (datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen")), "2026-07-01T10:00:00Z"),
        (datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen")), "2026-01-01T11:00:00Z"),
        (
            datetime(2026, 2, 1, 9, 30, tzinfo=ZoneInfo("Asia/Kathmandu")),
            "2026-02-01T03:45:00Z",
        ),
    ],
)
def test_format_datetime_renders_utc_with_z(value: datetime, expected: str) -> None:
    assert _wire.format_datetime(value) == expected
    wire = _wire.row_to_wire(IngestionJobRow(CASE, "x", event_date=value))
    assert wire["eventDate"] == expected


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 1, 1, 0, 0), datetime(2026, 1, 1, 0, 0, tzinfo=_NoOffset())],
    ids=["naive", "tzinfo-without-offset"],
)
def test_naive_datetime_is_refused_with_a_clear_message(value: datetime) -> None:
    with pytest.raises(ValueError, match=r"naive datetime 2026-01-01T00:00:00 has no time zone"):
        _wire.format_datetime(value)
    with pytest.raises(ValueError, match=r"pass an aware datetime"):
        _wire.encode_rows([IngestionJobRow(CASE, "x", event_date=value)])


# -- parse_datetime ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01T09:30:00Z", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T09:30:00+00:00", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        # .NET writes 7 fractional digits; Python keeps microseconds (the 7th digit is dropped).
        ("2026-02-01T09:30:00.1234567Z", datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-02-01T09:30:00.1234567", datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC)),
        # A naive server timestamp is read as UTC.
        ("2026-02-01T09:30:00", datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T09:30:00.5", datetime(2026, 2, 1, 9, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = _wire.parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_datetime_keeps_a_given_offset() -> None:
    parsed = _wire.parse_datetime("2026-02-01T10:30:00+01:00")
    assert parsed == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(hours=1)


def test_parse_datetime_reads_a_naive_datetime_object_as_utc() -> None:
    assert _wire.parse_datetime(datetime(2026, 2, 1, 9, 30)) == datetime(
        2026, 2, 1, 9, 30, tzinfo=UTC
    )


def test_parse_datetime_refuses_garbage() -> None:
    with pytest.raises(ValueError, match=r"^'yesterday' is not an ISO 8601 date-time$"):
        _wire.parse_datetime("yesterday")
    with pytest.raises(TypeError, match=r"^expected an ISO 8601 string, got int$"):
        _wire.parse_datetime(5)


@pytest.mark.parametrize(
    ("name", "camel"),
    [
        ("rows_succeeded", "rowsSucceeded"),
        ("case_id", "caseId"),
        ("type", "type"),
        ("company_registration_number", "companyRegistrationNumber"),
        ("id", "id"),
    ],
)
def test_to_camel(name: str, camel: str) -> None:
    assert _wire.to_camel(name) == camel


# -- decode ------------------------------------------------------------------------------------


def test_decode_accepted_ignores_unknown_fields() -> None:
    raw = orjson.dumps({"jobId": str(JOB), "rowsQueued": 2, "futureField": {"x": [1, 2]}})
    assert _wire.decode(IngestionJobAccepted, raw) == IngestionJobAccepted(
        job_id=JOB, rows_queued=2
    )


@pytest.mark.parametrize("status", list(AsyncJobStatus))
def test_decode_status_every_value(status: AsyncJobStatus) -> None:
    raw = orjson.dumps(
        {"status": int(status), "rowsTotal": 5, "rowsSucceeded": 3, "rowsFailed": 1, "new": 1}
    )
    decoded = _wire.decode(IngestionJobStatus, raw)
    assert decoded == IngestionJobStatus(
        status=status, rows_total=5, rows_succeeded=3, rows_failed=1
    )
    assert decoded.status is status
    assert decoded.is_terminal is (int(status) >= 2)
    assert decoded.rows_processed == 4


def test_decode_note_with_dotnet_and_naive_timestamps() -> None:
    raw = orjson.dumps(
        {
            "id": str(JOB),
            "caseReference": "C-1",
            "title": None,
            "description": "Called.",
            "visibility": "Internal",
            "createdAt": "2026-02-01T09:30:00.1234567Z",
            "eventDate": "2026-01-31T08:00:00",
            "createdBy": {"userId": 7, "userName": "Ann", "role": "partner"},
        }
    )
    assert _wire.decode(Note, raw) == Note(
        id=JOB,
        case_reference="C-1",
        title=None,
        description="Called.",
        visibility="Internal",
        created_at=datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC),
        event_date=datetime(2026, 1, 31, 8, 0, tzinfo=UTC),
        created_by=NoteAuthor(user_id=7, user_name="Ann"),
    )


def test_decode_collection_partner_without_booleans() -> None:
    raw = orjson.dumps(
        {
            "id": str(CASE),
            "companyName": "Acme Collect",
            "zipCode": "2100",
            "invoiceCurrency": 3,
            "preLegalRevenueShare": 0.25,
            "legalRevenueShare": 1,
            "unknownFlag": True,
        }
    )
    assert _wire.decode(CollectionPartner, raw) == CollectionPartner(
        id=CASE,
        company_name="Acme Collect",
        zip_code="2100",
        invoice_currency=3,
        pre_legal_revenue_share=0.25,
        legal_revenue_share=1.0,
    )


@pytest.mark.parametrize("flag", [True, False, None])
def test_decode_collection_partner_verified_profile(flag: bool | None) -> None:
    # The spec's verifiedProfile is a non-nullable boolean; bool is an int subclass, so the int
    # hook must not swallow it (it did: GET /me could not be decoded).
    raw = orjson.dumps({"id": str(CASE), "verifiedProfile": flag})
    assert _wire.decode(CollectionPartner, raw).verified_profile is flag


@pytest.mark.parametrize("value", ["false", 1, 0, "true"])
def test_decode_mistyped_bool_is_refused(value: object) -> None:
    raw = orjson.dumps({"id": str(CASE), "verifiedProfile": value})
    with pytest.raises(DecodeError, match=r"@ \$\.verifiedProfile$"):
        _wire.decode(CollectionPartner, raw)


@pytest.mark.parametrize("value", ["0.3", True], ids=["string", "bool"])
def test_decode_mistyped_float_is_refused(value: object) -> None:
    raw = orjson.dumps({"id": str(CASE), "preLegalRevenueShare": value})
    with pytest.raises(DecodeError, match=r"@ \$\.preLegalRevenueShare"):
        _wire.decode(CollectionPartner, raw)


_STATUS_OK: dict[str, Any] = {"status": 1, "rowsTotal": 2, "rowsSucceeded": 0, "rowsFailed": 0}


@pytest.mark.parametrize(
    ("cls", "payload", "expected"),
    [
        (
            IngestionJobStatus,
            {"status": 1, "rowsSucceeded": 0, "rowsFailed": 0},
            "response does not match IngestionJobStatus: required field missing @ $.rowsTotal",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "status": 5},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected AsyncJobStatus @ $.status",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "status": -1},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected AsyncJobStatus @ $.status",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "status": True},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected AsyncJobStatus @ $.status",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "status": "2"},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected AsyncJobStatus @ $.status",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "rowsFailed": False},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected int @ $.rowsFailed",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "rowsTotal": "2"},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected int @ $.rowsTotal",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "rowsTotal": 2.0},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected int @ $.rowsTotal",
        ),
        (
            IngestionJobStatus,
            {**_STATUS_OK, "rowsSucceeded": None},
            "response does not match IngestionJobStatus: "
            "invalid value for type, expected int @ $.rowsSucceeded",
        ),
        (
            IngestionJobAccepted,
            {"jobId": "not-a-uuid", "rowsQueued": 1},
            "response does not match IngestionJobAccepted: "
            "invalid value for type, expected UUID @ $.jobId",
        ),
        (
            IngestionJobAccepted,
            {"jobId": 42, "rowsQueued": 1},
            "response does not match IngestionJobAccepted: "
            "invalid value for type, expected UUID @ $.jobId",
        ),
        (
            Note,
            {"createdBy": {"userId": "seven"}},
            "response does not match Note: invalid value for type, expected int | None "
            "@ $.createdBy.userId",
        ),
        (
            Note,
            {"createdAt": "last tuesday"},
            "response does not match Note: invalid value for type, "
            "expected datetime.datetime | None @ $.createdAt",
        ),
        (
            Note,
            {"caseReference": 12},
            "response does not match Note: invalid value for type, expected str | None "
            "@ $.caseReference",
        ),
    ],
)
def test_decode_reports_the_wire_path(
    cls: type[Any], payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(DecodeError) as info:
        _wire.decode(cls, orjson.dumps(payload))
    assert str(info.value) == expected
    assert info.value.__cause__ is not None


def test_decode_lists_every_bad_field() -> None:
    raw = orjson.dumps({"status": 9, "rowsTotal": "x", "rowsFailed": 0})
    with pytest.raises(DecodeError) as info:
        _wire.decode(IngestionJobStatus, raw)
    message = str(info.value)
    for path in ("$.status", "$.rowsTotal", "$.rowsSucceeded"):
        assert f"@ {path}" in message
    assert "rows_total" not in message
    assert "rows_succeeded" not in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"<html>Bad gateway</html>", r"^response is not JSON \(.*\): '<html>Bad gateway</html>'"),
        (b"", r"^response is not JSON \(.*\): ''"),
        (b"[1, 2]", r"^expected a JSON object for IngestionJobStatus, got list$"),
        (b"null", r"^expected a JSON object for IngestionJobStatus, got NoneType$"),
        (b'"done"', r"^expected a JSON object for IngestionJobStatus, got str$"),
        (b"3", r"^expected a JSON object for IngestionJobStatus, got int$"),
    ],
)
def test_decode_non_object_bodies(raw: bytes, expected: str) -> None:
    with pytest.raises(DecodeError, match=expected):
        _wire.decode(IngestionJobStatus, raw)


def test_decode_error_carries_request_context() -> None:
    with pytest.raises(DecodeError) as info:
        _wire.decode(
            IngestionJobStatus, b"oops", method="GET", path=f"/ingestion-jobs/{JOB}", status=200
        )
    err = info.value
    assert (err.method, err.path, err.status) == ("GET", f"/ingestion-jobs/{JOB}", 200)
    assert str(err).endswith(f" (GET /ingestion-jobs/{JOB} -> 200)")
    assert isinstance(err.__cause__, orjson.JSONDecodeError)


def test_decode_snippet_is_bounded() -> None:
    with pytest.raises(DecodeError) as info:
        _wire.decode(IngestionJobStatus, b"x" * 10_000)
    assert "x" * 80 in str(info.value)
    assert "x" * 81 not in str(info.value)


# -- round trip --------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(valid_rows(), min_size=1, max_size=5))
def test_rows_round_trip_through_the_wire(rows: list[IngestionJobRow]) -> None:
    body = orjson.loads(_wire.encode_rows(rows))
    assert list(body) == ["rows"]
    decoded = [IngestionJobRow.from_mapping(item) for item in body["rows"]]
    assert decoded == [in_utc(row) for row in rows]
    for item, row in zip(body["rows"], rows, strict=True):
        assert item["type"] == 0
        assert ("eventDate" in item) is (row.event_date is not None)
        assert ("externalRef" in item) is (row.external_ref is not None)
        if row.event_date is not None:
            assert item["eventDate"].endswith("Z")
            assert "+" not in item["eventDate"]


@settings(max_examples=100, deadline=None)
@given(
    value=st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(9000, 1, 1),
        timezones=st.timezones(),
    )
)
def test_format_then_parse_is_the_same_instant(value: datetime) -> None:
    text = _wire.format_datetime(value)
    assert text.endswith("Z")
    assert _wire.parse_datetime(text) == value.astimezone(UTC)


# -- error bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {
                "error": "Unprocessable Entity",
                "message": "Idempotency key reused",
                "businessErrors": [
                    {
                        "type": "IdempotencyConflict",
                        "message": "Key was used with another body",
                        "solutionUrl": "https://docs.debitura.com/idempotency",
                    },
                    {"type": None, "message": "second"},
                    "not-an-object",
                ],
            },
            ErrorBody(
                error="Unprocessable Entity",
                message="Idempotency key reused",
                business_errors=(
                    BusinessError(
                        type="IdempotencyConflict",
                        message="Key was used with another body",
                        solution_url="https://docs.debitura.com/idempotency",
                    ),
                    BusinessError(type=None, message="second"),
                ),
            ),
            id="ApiErrorResponseDto",
        ),
        pytest.param(
            {"error": None, "message": None, "businessErrors": None},
            ErrorBody(),
            id="ApiErrorResponseDto-all-null",
        ),
        pytest.param(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
                "title": "Not Found",
                "status": 404,
                "detail": "Job not found",
                "traceId": "00-abc-def-00",
            },
            ErrorBody(
                error="Not Found",
                message="Job not found",
                problem_type="https://tools.ietf.org/html/rfc9110#section-15.5.5",
            ),
            id="ProblemDetails",
        ),
        pytest.param(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": {
                    "rows": ["At least one row is required"],
                    "rows[0].caseId": ["bad uuid", "required"],
                },
            },
            ErrorBody(
                error="One or more validation errors occurred.",
                field_errors=(
                    ("rows", ("At least one row is required",)),
                    ("rows[0].caseId", ("bad uuid", "required")),
                ),
                problem_type="https://tools.ietf.org/html/rfc9110#section-15.5.1",
            ),
            id="ProblemDetails-with-errors-map",
        ),
        pytest.param(
            {"errors": {"description": ["The description field is required."]}},
            ErrorBody(field_errors=(("description", ("The description field is required.",)),)),
            id="errors-map",
        ),
        pytest.param(
            {
                "Rows": ["Batch limit exceeded"],
                "Rows[3].Type": ["Event type not currently supported"],
                "empty": [],
                "numbers": [1, 2],
                "text": "plain",
            },
            ErrorBody(
                field_errors=(
                    ("Rows", ("Batch limit exceeded",)),
                    ("Rows[3].Type", ("Event type not currently supported",)),
                )
            ),
            id="bare-field-map",
        ),
        pytest.param(
            {"error": "rate_limit_exceeded", "message": "Too many requests", "retryAfter": 42.0},
            ErrorBody(error="rate_limit_exceeded", message="Too many requests", retry_after=42.0),
            id="429",
        ),
        pytest.param({"retryAfter": 7}, ErrorBody(retry_after=7.0), id="retryAfter-int"),
        pytest.param({"retryAfter": "12.5"}, ErrorBody(retry_after=12.5), id="retryAfter-str"),
        pytest.param({"retryAfter": True}, ErrorBody(), id="retryAfter-bool-ignored"),
        pytest.param({"retryAfter": "soon"}, ErrorBody(), id="retryAfter-garbage-ignored"),
        pytest.param({"type": "IdempotencyConflict"}, ErrorBody(), id="type-without-title"),
        pytest.param({"error": 500, "message": 1.5}, ErrorBody(error="500", message="1.5")),
    ],
)
def test_parse_error_body_shapes(raw: dict[str, Any], expected: ErrorBody) -> None:
    body = _wire.parse_error_body(orjson.dumps(raw))
    assert body == expected
    assert body.raw == raw


@pytest.mark.parametrize(
    ("raw", "expected", "expected_raw"),
    [
        (b"", ErrorBody(), None),
        (
            b"  Internal Server Error\n",
            ErrorBody(message="Internal Server Error"),
            "Internal Server Error",
        ),
        (b"   ", ErrorBody(), ""),
        (b"\xff\xfe oops", ErrorBody(message="\ufffd\ufffd oops"), "\ufffd\ufffd oops"),
        (b'["a", "b"]', ErrorBody(message="['a', 'b']"), ["a", "b"]),
        (b'"Service unavailable"', ErrorBody(message="Service unavailable"), "Service unavailable"),
        (b"null", ErrorBody(), None),
    ],
    ids=["empty", "text", "blank", "bad-utf8", "json-array", "json-string", "json-null"],
)
def test_parse_error_body_non_object(raw: bytes, expected: ErrorBody, expected_raw: Any) -> None:
    body = _wire.parse_error_body(raw)
    assert body == expected
    assert body.raw == expected_raw


def test_parse_error_body_truncates_long_text() -> None:
    body = _wire.parse_error_body(b"e" * 5000)
    assert body.message == "e" * 500


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200))
def test_parse_error_body_never_raises_on_bytes(raw: bytes) -> None:
    assert isinstance(_wire.parse_error_body(raw), ErrorBody)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_error_keys = st.sampled_from(
    ["error", "message", "businessErrors", "errors", "type", "title", "status", "detail",
     "retryAfter", "solutionUrl"]
) | st.text(max_size=8)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(_error_keys, _json, max_size=6))
def test_parse_error_body_never_raises_on_json(data: dict[str, Any]) -> None:
    body = _wire.parse_error_body(json.dumps(data).encode())
    assert isinstance(body, ErrorBody)
    assert body.error is None or isinstance(body.error, str)
    assert body.message is None or isinstance(body.message, str)
    assert isinstance(body.describe(), str)


# -- Retry-After -------------------------------------------------------------------------------

_NO_BODY = ErrorBody()
_BODY_42 = ErrorBody(retry_after=42.0)


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("120", _NO_BODY, 120.0),
        ("1.5", _NO_BODY, 1.5),
        (" 7 ", _NO_BODY, 7.0),
        ("0", _BODY_42, 0.0),  # a zero header is an answer, not a missing one
        ("-5", _NO_BODY, 0.0),
        ("Sun, 01 Feb 2026 09:30:42 GMT", _NO_BODY, 42.0),
        ("Sun, 01 Feb 2026 09:31:00 -0000", _NO_BODY, 60.0),  # naive HTTP date: UTC
        ("Sun, 01 Feb 2026 10:31:00 +0100", _NO_BODY, 60.0),
        ("Sun, 01 Feb 2026 09:29:00 GMT", _NO_BODY, 0.0),  # in the past
        ("10", _BODY_42, 10.0),  # header beats body
        ("Sun, 01 Feb 2026 09:30:05 GMT", _BODY_42, 5.0),
        (None, _BODY_42, 42.0),
        ("", _BODY_42, 42.0),
        ("   ", _BODY_42, 42.0),
        ("soon", _BODY_42, 42.0),  # garbage header falls back to the body
        ("soon", _NO_BODY, None),
        (None, _NO_BODY, None),
        (None, ErrorBody(retry_after=-3.0), 0.0),
        (None, ErrorBody(retry_after=0.25), 0.25),
    ],
)
def test_parse_retry_after(header: str | None, body: ErrorBody, expected: float | None) -> None:
    assert _wire.parse_retry_after(header, body, now=NOW) == expected


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    header = "Sun, 01 Feb 2026 09:32:00 GMT"
    assert _wire.parse_retry_after(header, _NO_BODY, now=NOW) == 120.0
    later = NOW + timedelta(seconds=100)
    assert _wire.parse_retry_after(header, _NO_BODY, now=later) == 20.0


def test_parse_retry_after_from_a_parsed_429_body() -> None:
    body = _wire.parse_error_body(
        b'{"error": "rate_limit_exceeded", "message": "slow down", "retryAfter": 42.0}'
    )
    assert _wire.parse_retry_after(None, body, now=NOW) == 42.0


@pytest.mark.parametrize("header", ["inf", "Infinity", "1e999", "nan"])
def test_parse_retry_after_non_finite_header_is_garbage(header: str) -> None:
    assert _wire.parse_retry_after(header, _BODY_42, now=NOW) == 42.0
