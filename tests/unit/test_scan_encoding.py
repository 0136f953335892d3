"""The encoding scan a reader makes when it opens (``_input_decode._decodes_whole``) says a
stream decodes exactly when decoding it whole does, however its chunks fall: ASCII chunks are
checked with ``isascii`` only between characters, and only in encodings where an ASCII byte is a
character by itself."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from debitura_async import _input_decode
from debitura_async._input_decode import _decodes_whole

PIECES = st.sampled_from(
    [
        b"abc,",
        b"\n",
        "ø".encode(),
        "€".encode(),
        b"\xc3",
        b"\xa9",
        b"\x81",
        b"\xff",
        b"\x1b$B",
        "日本".encode("shift_jis"),
        b"\x00",
    ]
)
ENCODINGS = st.sampled_from(
    ["utf-8", "cp1252", "latin-1", "ascii", "shift_jis", "iso2022_jp", "utf-16-le"]
)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


class _ReadOnly:
    """A stream with ``read`` and no ``readinto`` (the scan falls back to reading)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


@settings(max_examples=500, deadline=None)
@example(pieces=[b"\xc3", b"abc,", b"\xa9"], encoding="utf-8", chunk=1, readinto=True)
@example(pieces=[b"\x1b$B", b"  "], encoding="iso2022_jp", chunk=3, readinto=False)
@given(
    pieces=st.lists(PIECES, max_size=20),
    encoding=ENCODINGS,
    chunk=st.integers(1, 9),
    readinto=st.booleans(),
)
def test_the_scan_agrees_with_decoding_whole(
    pieces: list[bytes], encoding: str, chunk: int, readinto: bool
) -> None:
    data = b"".join(pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_input_decode, "_SCAN_CHUNK", chunk)
        stream: Any = io.BytesIO(data) if readinto else _ReadOnly(data)
        assert _decodes_whole(stream, encoding) == _decodes(data, encoding)
