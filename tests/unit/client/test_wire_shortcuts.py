"""Issue 18: the 202 and the status answer are built without cattrs in their usual form; any
other form goes to the converter. A shortcut either builds exactly what the converter builds
or steps aside, so results and error messages are the converter's."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debitura_async import _wire
from debitura_async.errors import DecodeError
from debitura_async.models import AsyncJobStatus, IngestionJobAccepted, IngestionJobStatus

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
UUID_TEXTS = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: str(u)[:-1]),
)
COUNTS = st.one_of(st.integers(min_value=0, max_value=1000), ODD_VALUES)
EXTRA = st.dictionaries(st.sampled_from(["extra", "jobid", "Status", "x"]), ODD_VALUES, max_size=2)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or the key left out (``...``)."""
    return st.one_of(value, st.just(...))


def _obj(extra: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**extra, **{k: v for k, v in fields.items() if v is not ...}}


def _converter_or_error(data: dict[str, Any], cls: type) -> object:
    try:
        return _wire.converter.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - the converter's verdict, compared below
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(
    job_id=_maybe(st.one_of(UUID_TEXTS, ODD_VALUES)),
    queued=_maybe(COUNTS),
    extra=EXTRA,
)
def test_the_202_shortcut_builds_what_the_converter_builds(
    job_id: Any, queued: Any, extra: dict[str, Any]
) -> None:
    data = _obj(extra, jobId=job_id, rowsQueued=queued)
    made = _wire._accepted(data)
    if made is not None:
        assert made == _converter_or_error(data, IngestionJobAccepted)
        assert type(made.job_id) is uuid.UUID
        assert type(made.rows_queued) is int


@settings(max_examples=400, deadline=None)
@given(
    status=_maybe(st.one_of(st.integers(min_value=-1, max_value=6), ODD_VALUES)),
    counts=st.tuples(_maybe(COUNTS), _maybe(COUNTS), _maybe(COUNTS)),
    extra=EXTRA,
)
def test_the_status_shortcut_builds_what_the_converter_builds(
    status: Any, counts: tuple[Any, Any, Any], extra: dict[str, Any]
) -> None:
    total, succeeded, failed = counts
    data = _obj(extra, status=status, rowsTotal=total, rowsSucceeded=succeeded, rowsFailed=failed)
    made = _wire._job_status(data)
    if made is not None:
        assert made == _converter_or_error(data, IngestionJobStatus)
        assert type(made.status) is AsyncJobStatus


@pytest.mark.parametrize(
    ("cls", "body"),
    [
        (IngestionJobAccepted, {"jobId": "6803c1c4-6534-45fd-84b9-84bb9385bc41", "rowsQueued": 3}),
        (IngestionJobAccepted, {"jobId": "6803C1C4-6534-45FD-84B9-84BB9385BC41", "rowsQueued": 0}),
        (IngestionJobStatus, {"status": 3, "rowsTotal": 9, "rowsSucceeded": 7, "rowsFailed": 2}),
    ],
)
def test_the_usual_answers_take_the_shortcut(cls: type, body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    shortcut = _wire._SHORTCUTS[cls]
    assert shortcut(orjson.loads(raw)) is not None
    assert _wire.decode(cls, raw) == _wire.converter.structure(orjson.loads(raw), cls)


@pytest.mark.parametrize(
    ("cls", "body", "message"),
    [
        (IngestionJobAccepted, {"jobId": "nope", "rowsQueued": 3}, "jobId"),
        (IngestionJobAccepted, {"jobId": str(uuid.uuid4()), "rowsQueued": True}, "rowsQueued"),
        (IngestionJobAccepted, {"rowsQueued": 3}, "jobId"),
        (
            IngestionJobStatus,
            {"status": 7, "rowsTotal": 1, "rowsSucceeded": 1, "rowsFailed": 0},
            "status",
        ),
        (
            IngestionJobStatus,
            {"status": 2, "rowsTotal": 1.0, "rowsSucceeded": 1, "rowsFailed": 0},
            "rowsTotal",
        ),
    ],
)
def test_the_rest_is_worded_by_the_converter(cls: type, body: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=f"does not match {cls.__name__}.*{message}"):
        _wire.decode(cls, orjson.dumps(body), method="GET", path="/p", status=200)
