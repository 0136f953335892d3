"""The server's row and batch rules, checked on the client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import _validate, _wire
from debitura_async.errors import RowProblem, ValidationError
from debitura_async.models import IngestionJobRow, PartnerIngestEventType

from ._strategies import NOW, SKEW, in_utc, valid_row_mappings, valid_rows

CASE = "123e4567-e89b-12d3-a456-426614174000"
CASE_UUID = uuid.UUID(CASE)


def ok(**extra: Any) -> dict[str, Any]:
    """A valid camelCase row, with ``extra`` keys replacing or adding fields."""
    return {"type": 0, "caseId": CASE, "description": "Called the debtor.", **extra}


def without(key: str) -> dict[str, Any]:
    data = ok()
    del data[key]
    return data


def check(items: Any) -> list[IngestionJobRow]:
    return _validate.check_batch(items, now=NOW, skew=SKEW)


def outcome(items: Any) -> list[IngestionJobRow] | ValidationError:
    try:
        return check(items)
    except ValidationError as exc:
        return exc


def problems_of(items: Any) -> list[tuple[int, str, str]]:
    with pytest.raises(ValidationError) as info:
        check(items)
    return [(p.index, p.field, p.message) for p in info.value.problems]


# -- one rule at a time ------------------------------------------------------------------------

_NAIVE = datetime(2026, 1, 1, 0, 0)
_NON_STR_KEY: dict[Any, Any] = {**ok(), 1: "x"}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(ok(caseId="nope"), (0, "caseId", "'nope' is not a valid UUID"), id="bad-uuid"),
        pytest.param(ok(caseId=""), (0, "caseId", "'' is not a valid UUID"), id="empty-uuid"),
        pytest.param(ok(caseId=5), (0, "caseId", "expected a UUID string, got 5"), id="int-uuid"),
        pytest.param(without("caseId"), (0, "caseId", "required"), id="missing-caseId"),
        pytest.param(ok(caseId=None), (0, "caseId", "required"), id="null-caseId"),
        pytest.param(
            without("description"),
            (0, "description", "required for Note events"),
            id="missing-description",
        ),
        pytest.param(
            ok(description=None),
            (0, "description", "required for Note events"),
            id="null-description",
        ),
        pytest.param(
            ok(description=7), (0, "description", "expected text, got int"), id="int-description"
        ),
        pytest.param(
            ok(description=""), (0, "description", "must not be empty"), id="empty-description"
        ),
        pytest.param(
            ok(description=" \t\n "),
            (0, "description", "must not be empty"),
            id="blank-description",
        ),
        pytest.param(
            ok(description="x" * 10_001),
            (0, "description", "10001 characters, over the limit of 10000"),
            id="description-10001",
        ),
        pytest.param(
            ok(type=1), (0, "type", "unsupported event type 1 (only 0 = Note)"), id="type-1"
        ),
        pytest.param(
            ok(type=-1), (0, "type", "unsupported event type -1 (only 0 = Note)"), id="type-neg"
        ),
        pytest.param(ok(type="0"), (0, "type", "expected an integer, got '0'"), id="type-str"),
        pytest.param(ok(type=True), (0, "type", "expected an integer, got True"), id="type-bool"),
        pytest.param(ok(type=False), (0, "type", "expected an integer, got False"), id="type-F"),
        pytest.param(ok(type=0.0), (0, "type", "expected an integer, got 0.0"), id="type-float"),
        pytest.param(ok(type=None), (0, "type", "expected an integer, got None"), id="type-null"),
        pytest.param(ok(note="hi"), (0, "note", "unknown field"), id="unknown-field"),
        pytest.param(ok(CaseId=CASE), (0, "CaseId", "unknown field"), id="wrong-case-key"),
        pytest.param(_NON_STR_KEY, (0, "1", "unknown field"), id="non-str-key"),
        pytest.param(ok(case_id=CASE), (0, "caseId", "given twice"), id="dup-caseId"),
        pytest.param(
            ok(eventDate=None, event_date=None), (0, "eventDate", "given twice"), id="dup-eventDate"
        ),
        pytest.param(
            ok(externalRef="a", external_ref="b"),
            (0, "externalRef", "given twice"),
            id="dup-externalRef",
        ),
        pytest.param(
            ok(eventDate=_NAIVE),
            (
                0,
                "eventDate",
                "2026-01-01T00:00:00 has no time zone (give an offset or 'Z', or name"
                " the zone such times are in: --assume-timezone ZONE)",
            ),
            id="naive-eventDate",
        ),
        pytest.param(
            ok(eventDate="2026-01-01T00:00:00"),
            (
                0,
                "eventDate",
                "2026-01-01T00:00:00 has no time zone (give an offset or 'Z', or name"
                " the zone such times are in: --assume-timezone ZONE)",
            ),
            id="naive-eventDate-string",
        ),
        pytest.param(
            ok(eventDate=NOW + SKEW + timedelta(microseconds=1)),
            (0, "eventDate", "2026-09-01T12:00:05.000001+00:00 is in the future"),
            id="future-beyond-skew",
        ),
        pytest.param(
            ok(eventDate="2026-09-01T14:00:06+02:00"),
            (0, "eventDate", "2026-09-01T14:00:06+02:00 is in the future"),
            id="future-other-zone",
        ),
        pytest.param(
            ok(eventDate="next week"),
            (0, "eventDate", "'next week' is not an ISO 8601 date-time"),
            id="eventDate-garbage",
        ),
        pytest.param(
            ok(eventDate=12345),
            (0, "eventDate", "expected an ISO 8601 string, got int"),
            id="eventDate-int",
        ),
        pytest.param(
            ok(externalRef=42), (0, "externalRef", "expected text, got int"), id="externalRef-int"
        ),
        pytest.param("not a row", (0, "row", "expected a mapping, got str"), id="not-a-mapping"),
        pytest.param(None, (0, "row", "expected a mapping, got NoneType"), id="none-row"),
    ],
)
def test_each_rule(row: Any, expected: tuple[int, str, str]) -> None:
    assert problems_of([row]) == [expected]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(ok(), IngestionJobRow(CASE, "Called the debtor."), id="minimal"),
        pytest.param(
            without("type"), IngestionJobRow(CASE, "Called the debtor."), id="type-defaults-to-0"
        ),
        pytest.param(
            ok(type=PartnerIngestEventType.NOTE),
            IngestionJobRow(CASE, "Called the debtor."),
            id="type-enum",
        ),
        pytest.param(
            ok(caseId=CASE_UUID), IngestionJobRow(CASE, "Called the debtor."), id="uuid-object"
        ),
        pytest.param(
            ok(caseId=CASE.upper()), IngestionJobRow(CASE, "Called the debtor."), id="upper-uuid"
        ),
        pytest.param(
            ok(description="x" * 10_000),
            IngestionJobRow(CASE, "x" * 10_000),
            id="description-10000",
        ),
        pytest.param(
            ok(description="ø" * 10_000),
            IngestionJobRow(CASE, "ø" * 10_000),
            id="description-10000-unicode",
        ),
        pytest.param(
            ok(eventDate=None, externalRef=None),
            IngestionJobRow(CASE, "Called the debtor."),
            id="explicit-nulls",
        ),
        pytest.param(
            ok(eventDate="2026-02-01T09:30:00Z", externalRef="CRM-1"),
            IngestionJobRow(
                CASE,
                "Called the debtor.",
                event_date=datetime(2026, 2, 1, 9, 30, tzinfo=UTC),
                external_ref="CRM-1",
            ),
            id="eventDate-Z",
        ),
        pytest.param(
            ok(eventDate=" 2026-02-01T10:30:00+01:00 "),
            IngestionJobRow(
                CASE,
                "Called the debtor.",
                event_date=datetime(2026, 2, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
            ),
            id="eventDate-offset-padded",
        ),
        pytest.param(
            ok(eventDate="2026-02-01T09:30:00.1234567Z"),
            IngestionJobRow(
                CASE,
                "Called the debtor.",
                event_date=datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC),
            ),
            id="eventDate-7-digits",
        ),
        pytest.param(
            ok(eventDate=NOW + SKEW),
            IngestionJobRow(CASE, "Called the debtor.", event_date=NOW + SKEW),
            id="future-exactly-skew",
        ),
        pytest.param(
            ok(eventDate=NOW + timedelta(seconds=4)),
            IngestionJobRow(CASE, "Called the debtor.", event_date=NOW + timedelta(seconds=4)),
            id="future-within-skew",
        ),
        pytest.param(
            {
                "case_id": CASE,
                "description": "snake",
                "event_date": "2026-02-01T09:30:00Z",
                "external_ref": "r",
            },
            IngestionJobRow(
                CASE,
                "snake",
                event_date=datetime(2026, 2, 1, 9, 30, tzinfo=UTC),
                external_ref="r",
            ),
            id="snake-case-keys",
        ),
        pytest.param(
            ok(externalRef=""),
            IngestionJobRow(CASE, "Called the debtor.", external_ref=""),
            id="empty-externalRef",
        ),
    ],
)
def test_accepted_rows(row: dict[str, Any], expected: IngestionJobRow) -> None:
    assert check([row]) == [expected]


def test_accepted_event_date_keeps_its_offset() -> None:
    (row,) = check([ok(eventDate="2026-02-01T10:30:00+01:00")])
    assert row.event_date is not None
    assert row.event_date.utcoffset() == timedelta(hours=1)


# -- batches -----------------------------------------------------------------------------------


def test_empty_batch_is_refused() -> None:
    assert problems_of([]) == [(-1, "rows", "at least one row is required")]


def test_empty_generator_is_refused() -> None:
    assert problems_of(iter(())) == [(-1, "rows", "at least one row is required")]


def test_1000_rows_are_accepted() -> None:
    rows = check([ok(externalRef=str(i)) for i in range(1000)])
    assert len(rows) == 1000
    assert [r.external_ref for r in rows] == [str(i) for i in range(1000)]


def test_1001_rows_are_refused() -> None:
    assert problems_of([ok()] * 1001) == [(-1, "rows", "1001 rows, over the batch limit of 1000")]


def test_1001_rows_from_a_generator_are_refused() -> None:
    def rows() -> Iterator[dict[str, Any]]:
        for _ in range(1001):
            yield ok()

    assert problems_of(rows()) == [(-1, "rows", "1001 rows, over the batch limit of 1000")]


def test_one_error_lists_every_problem_of_the_batch() -> None:
    batch: list[Any] = [
        ok(),
        ok(caseId="bad", type=1),
        IngestionJobRow(CASE, "   "),
        ok(extra=True, description=None),
        ok(),
        ok(eventDate=NOW + timedelta(days=1)),
        42,
    ]
    with pytest.raises(ValidationError) as info:
        check(batch)
    assert info.value.problems == (
        RowProblem(1, "caseId", "'bad' is not a valid UUID"),
        RowProblem(1, "type", "unsupported event type 1 (only 0 = Note)"),
        RowProblem(2, "description", "must not be empty"),
        RowProblem(3, "extra", "unknown field"),
        RowProblem(3, "description", "required for Note events"),
        RowProblem(5, "eventDate", "2026-09-02T12:00:00+00:00 is in the future"),
        RowProblem(6, "row", "expected a mapping, got int"),
    )
    assert str(info.value).startswith("invalid batch: 7 problem(s): row 1: caseId: ")


def test_batch_limit_problem_comes_first_with_row_problems() -> None:
    batch = [ok()] * 1000 + [ok(caseId="bad")]
    assert problems_of(batch) == [
        (-1, "rows", "1001 rows, over the batch limit of 1000"),
        (1000, "caseId", "'bad' is not a valid UUID"),
    ]


def test_row_objects_are_checked_too() -> None:
    naive = IngestionJobRow(CASE, "x", event_date=datetime(2026, 1, 1))
    long = IngestionJobRow(CASE, "y" * 10_001)
    assert problems_of([naive, long]) == [
        (
            0,
            "eventDate",
            "2026-01-01T00:00:00 has no time zone (give an offset or 'Z', or name"
            " the zone such times are in: --assume-timezone ZONE)",
        ),
        (1, "description", "10001 characters, over the limit of 10000"),
    ]


def test_valid_row_objects_are_returned_as_given() -> None:
    row = IngestionJobRow(CASE, "x", event_date=NOW - timedelta(days=1))
    (result,) = check([row])
    assert result is row


def test_skew_is_a_parameter() -> None:
    row = ok(eventDate=NOW + timedelta(minutes=1))
    assert _validate.check_batch([row], now=NOW, skew=timedelta(minutes=2))
    with pytest.raises(ValidationError):
        _validate.check_batch([row], now=NOW, skew=timedelta(0))


# -- helpers -----------------------------------------------------------------------------------


def test_row_from_mapping_raises_a_row_error() -> None:
    with pytest.raises(ValidationError) as info:
        IngestionJobRow.from_mapping({"caseId": "x", "type": 2})
    assert info.value.problems == (
        RowProblem(0, "caseId", "'x' is not a valid UUID"),
        RowProblem(0, "description", "required for Note events"),
        RowProblem(0, "type", "unsupported event type 2 (only 0 = Note)"),
    )
    assert str(info.value).startswith("invalid row: 3 problem(s): ")


def test_row_from_mapping_accepts_snake_case() -> None:
    assert _validate.row_from_mapping(
        {"case_id": CASE, "description": "d", "external_ref": "e"}
    ) == IngestionJobRow(CASE, "d", external_ref="e")


def test_coerce_row_uses_the_given_index() -> None:
    row, problems = _validate.coerce_row({"caseId": CASE}, 17)
    assert row is None
    assert problems == [RowProblem(17, "description", "required for Note events")]
    row, problems = _validate.coerce_row(ok(), 17)
    assert row == IngestionJobRow(CASE, "Called the debtor.")
    assert problems == []


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("ok", []),
        ("x" * 10_000, []),
        (None, [RowProblem(4, "description", "required for Note events")]),
        (3, [RowProblem(4, "description", "required for Note events")]),
        ("", [RowProblem(4, "description", "must not be empty")]),
        ("\u3000\n", [RowProblem(4, "description", "must not be empty")]),
        ("x" * 10_001, [RowProblem(4, "description", "10001 characters, over the limit of 10000")]),
    ],
)
def test_check_description(description: object, expected: list[RowProblem]) -> None:
    assert _validate.check_description(description, 4) == expected


@pytest.mark.parametrize(
    ("event_date", "expected"),
    [
        (None, []),
        (NOW, []),
        (NOW + SKEW, []),
        (datetime(2026, 9, 1, 14, 0, 5, tzinfo=timezone(timedelta(hours=2))), []),
        (
            NOW + SKEW + timedelta(seconds=1),
            ["2026-09-01T12:00:06+00:00 is in the future"],
        ),
        (
            datetime(2026, 9, 1, 14, 0, 6, tzinfo=timezone(timedelta(hours=2))),
            ["2026-09-01T14:00:06+02:00 is in the future"],
        ),
        (
            datetime(2020, 1, 1),
            [
                "2020-01-01T00:00:00 has no time zone (give an offset or 'Z', or name"
                " the zone such times are in: --assume-timezone ZONE)"
            ],
        ),
    ],
)
def test_check_event_date(event_date: datetime | None, expected: list[str]) -> None:
    problems = _validate.check_event_date(event_date, 2, now=NOW, skew=SKEW)
    assert problems == [RowProblem(2, "eventDate", m) for m in expected]


@pytest.mark.parametrize(("length", "valid"), [(0, False), (1, True), (255, True), (256, False)])
def test_check_idempotency_key(length: int, valid: bool) -> None:
    key = "k" * length
    if valid:
        _validate.check_idempotency_key(key)
        return
    with pytest.raises(ValidationError) as info:
        _validate.check_idempotency_key(key)
    assert info.value.problems == (
        RowProblem(-1, "Idempotency-Key", f"must be 1..255 characters, got {length}"),
    )
    assert str(info.value).startswith("invalid request: 1 problem(s): Idempotency-Key: ")


def test_limits() -> None:
    assert _validate.MAX_BATCH_ROWS == 1000
    assert _validate.MAX_DESCRIPTION_CHARS == 10_000
    assert _validate.MAX_IDEMPOTENCY_KEY_CHARS == 255


# -- known gaps (documented bugs) --------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [ok(description="broken \ud800 text"), ok(externalRef="ref-\udfff")],
    ids=["description", "externalRef"],
)
def test_lone_surrogates_are_refused(row: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        check([row])


@pytest.mark.parametrize(
    "case_id",
    [" " + "1" * 30 + " ", "\u0663" * 32],
    ids=["space-padded-30-digits", "arabic-indic-digits"],
)
def test_malformed_case_id_is_refused(case_id: str) -> None:
    assert problems_of([ok(caseId=case_id)])[0][:2] == (0, "caseId")


def test_event_date_before_year_one_in_utc_is_refused_or_encodable() -> None:
    result = outcome([ok(eventDate="0001-01-01T00:00:00+05:00")])
    if isinstance(result, ValidationError):
        assert result.problems[0].field == "eventDate"
    else:
        _wire.encode_rows(result)


# -- properties --------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    ["type", "caseId", "case_id", "description", "eventDate", "event_date", "externalRef",
     "external_ref"]
) | st.text(max_size=6) | st.integers(-2, 2)  # fmt: skip
_AWARE = st.datetimes(min_value=datetime(2, 1, 1), timezones=st.timezones())
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.uuids(),
    st.uuids().map(str),
    st.datetimes(),
    # From year 2: an aware year-1 datetime east of UTC cannot be encoded (validation refuses it).
    _AWARE,
    _AWARE.map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.lists(st.integers(), max_size=2),
    st.just(CASE),
    st.just(0),
)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=7), max_size=6))
def test_check_batch_only_ever_raises_validation_error(items: list[dict[Any, Any]]) -> None:
    result = outcome(items)
    if isinstance(result, ValidationError):
        assert result.problems
        assert all(-1 <= p.index < len(items) for p in result.problems)
        assert all(isinstance(p.field, str) and p.message for p in result.problems)
        return
    assert len(result) == len(items)
    for row in result:
        assert isinstance(row.case_id, uuid.UUID)
        assert row.type is PartnerIngestEventType.NOTE
        assert row.description.strip()
        assert len(row.description) <= 10_000
        assert row.event_date is None or row.event_date <= NOW + SKEW
        _wire.encode_rows([row])  # anything accepted can be sent


@settings(max_examples=150, deadline=None)
@given(pairs=st.lists(valid_row_mappings(), min_size=1, max_size=8))
def test_every_valid_mapping_is_accepted(
    pairs: list[tuple[Mapping[str, Any], IngestionJobRow]],
) -> None:
    rows = check([data for data, _ in pairs])
    assert [in_utc(r) for r in rows] == [in_utc(expected) for _, expected in pairs]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(valid_rows(), min_size=1, max_size=8))
def test_every_valid_row_object_is_accepted(rows: list[IngestionJobRow]) -> None:
    assert check(rows) == rows
