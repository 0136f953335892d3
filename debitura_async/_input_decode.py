"""Bytes to numbered text lines for the readers: the encoding, its BOM, and undecodable bytes.

* No encoding given: a byte order mark decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE), else UTF-8.
* An encoding given (``cp1252``, ``utf-16-le`` …): used as is; a BOM of that encoding is skipped,
  a BOM of another one is an error (the file says it is something else).
* Lines end at ``\\n`` (``\\r\\n`` kept for the csv module). Encodings in which ``\\n`` is the byte
  ``0x0A`` (UTF-8, cp1252, latin-1 …) are split as bytes and decoded line by line; the others
  (UTF-16, UTF-32) are decoded in chunks and split as text.
* An undecodable line comes out as ``(number, None, reason, size)``: the readers make it a
  rejected row naming the line.
* :func:`scan_encoding` reads a seekable input whole, before any row is read, and raises
  :class:`InputEncodingError` naming the first bad line, how many there are, and the
  ``--encoding`` that would read them (a cp1252 guess for a UTF-8 failure).
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Iterator
from typing import IO, Final

from ._input_options import InputError

__all__ = [
    "InputEncodingError",
    "Line",
    "LineSource",
    "scan_encoding",
]

# (number, text or None when undecodable, why undecodable, size)
Line = tuple[int, str | None, str, int]

_BOMS: Final = (  # the UTF-32 marks first: UTF-16 LE's is a prefix of UTF-32 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_LABELS: Final = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32-le": "UTF-32 LE",
    "utf-32-be": "UTF-32 BE",
    "cp1252": "cp1252 (Windows Western European)",
}
_MARK: Final = "\udcff"  # what an undecodable sequence becomes in split-as-text decoding
_ERRORS: Final = "debitura-async-input"
_CHUNK: Final = 1 << 16
_SCAN_CHUNK: Final = 1 << 20
_ASCII_CHARS: Final = frozenset({"utf-8", "ascii", "iso8859-1", "cp1252"})
"""Encodings (as :func:`codecs.lookup` names them) in which each ASCII byte is a character by
itself, whatever comes before it (not so in UTF-16, nor in ISO-2022's escape sequences)."""
_CLEAN: Final = (b"", 0)
"""An incremental decoder's state between characters."""


def _mark(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):  # pragma: no cover - registered for decoding
        raise exc
    return _MARK, exc.end


codecs.register_error(_ERRORS, _mark)


class InputEncodingError(InputError):
    """The input is not in the encoding it is read in (raised before any row is read)."""


def label(encoding: str) -> str:
    """``utf-16-le`` -> ``UTF-16 LE``: an encoding as people name it."""
    return _LABELS.get(encoding, encoding)


def _family(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return {"utf-8-sig": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32"}.get(
        name, name.rsplit("-", 1)[0] if name.startswith(("utf-16", "utf-32")) else name
    )


def _splits_as_bytes(encoding: str) -> bool:
    sample = '\n\r,;\t|"abcXYZ019 ='
    try:
        return sample.encode(encoding) == sample.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def _read_head(stream: IO[bytes]) -> bytes:
    head = b""
    while len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    return head


def choose_encoding(head: bytes, explicit: str | None) -> tuple[str, int]:
    """``(encoding to decode with, length of the BOM to skip)`` for a file starting ``head``."""
    found = next(((bom, enc) for bom, enc in _BOMS if head.startswith(bom)), None)
    if explicit is None:
        return (found[1], len(found[0])) if found is not None else ("utf-8", 0)
    if found is None:
        return codecs.lookup(explicit).name, 0
    bom, bom_encoding = found
    if _family(explicit) in (bom_encoding, _family(bom_encoding)):
        return bom_encoding, len(bom)
    raise InputEncodingError(
        f"the file starts with a {label(bom_encoding)} byte order mark, but the encoding"
        f" {explicit!r} was given: leave out --encoding to read it as {label(bom_encoding)}"
    )


class LineSource:
    """Numbered decoded lines of a binary stream; counts the bytes it has consumed."""

    def __init__(self, stream: IO[bytes], encoding: str | None) -> None:
        self._stream = stream
        self.seekable = _seekable(stream)
        self.start = stream.tell() if self.seekable else 0
        head = _read_head(stream)
        self.encoding, bom = choose_encoding(head, encoding)
        self.bom = bom
        self._head = head[bom:]
        self.bytes_read = bom
        self.as_bytes = _splits_as_bytes(self.encoding)
        self.lineno = 0
        """The number of the last line handed out (by :meth:`lines` or :meth:`read_block`)."""
        self._held: deque[bytes] = deque()

    def rewind(self) -> None:
        """Back to the first line (seekable streams only: after :func:`scan_encoding`)."""
        self._stream.seek(self.start + self.bom)
        self._head = b""
        self._held = deque()
        self.bytes_read = self.bom
        self.lineno = 0

    def lines(self) -> Iterator[Line]:
        return self._byte_lines() if self.as_bytes else self._text_lines()

    def _raw_lines(self) -> Iterator[bytes]:
        head, self._head = self._head, b""
        if head:
            if not head.endswith(b"\n"):
                head += self._stream.readline()
            self._held.extend(_nl_split(head))
        held = self._held
        while held:
            yield held.popleft()
        # Not "yield from": closing this generator would close the stream (PEP 380).
        for raw in self._stream:  # noqa: UP028
            yield raw

    def _byte_lines(self) -> Iterator[Line]:
        encoding = self.encoding
        for raw in self._raw_lines():
            self.lineno += 1
            size = len(raw)
            self.bytes_read += size
            try:
                yield self.lineno, raw.decode(encoding), "", size
            except UnicodeDecodeError as exc:
                yield self.lineno, None, _describe_bytes(exc, encoding), size

    def read_block(self, size: int = _CHUNK) -> tuple[int, bytes] | None:
        """The next whole lines, about ``size`` bytes of them, undecoded, with the number of the
        first: for a reader that splits many plain lines at once. Only for encodings split as
        bytes, and only between lines (None when :meth:`lines` holds some back, or at the end);
        :meth:`split_block` makes them lines again when they are not plain after all. The reader,
        which counts the lines as it splits them, tells how many there were
        (:meth:`end_block`) before it reads on."""
        if not self.as_bytes or self._head or self._held:
            return None
        data = self._stream.read(size)
        if not data:
            return None
        if not data.endswith(b"\n"):
            data += self._stream.readline()
        self.bytes_read += len(data)
        return self.lineno + 1, data

    def end_block(self, count: int) -> None:
        """The block :meth:`read_block` gave held ``count`` lines (``\\n`` and a last line
        without one, each)."""
        self.lineno += count

    def split_block(self, first: int, data: bytes) -> list[Line]:
        """A block's lines as :meth:`lines` would have given them (and its end: see
        :meth:`end_block`)."""
        encoding = self.encoding
        out: list[Line] = []
        for lineno, raw in enumerate(_nl_split(data), first):
            try:
                out.append((lineno, raw.decode(encoding), "", len(raw)))
            except UnicodeDecodeError as exc:
                out.append((lineno, None, _describe_bytes(exc, encoding), len(raw)))
        self.end_block(len(out))
        return out

    def _text_lines(self) -> Iterator[Line]:
        decoder = codecs.getincrementaldecoder(self.encoding)(errors=_ERRORS)
        lineno = 0
        pending = ""
        head, self._head = self._head, b""
        while True:
            chunk = head or self._stream.read(_CHUNK)
            head = b""
            final = not chunk
            self.bytes_read += len(chunk)
            text = pending + decoder.decode(chunk, final=final)
            start = 0
            while (end := text.find("\n", start)) >= 0:
                lineno += 1
                yield self._text_line(lineno, text[start : end + 1])
                start = end + 1
            pending = text[start:]
            if final:
                if pending:
                    yield self._text_line(lineno + 1, pending)
                return

    def _text_line(self, lineno: int, line: str) -> Line:
        at = line.find(_MARK)
        if at < 0:
            return lineno, line, "", len(line)
        reason = f"not valid {label(self.encoding)} (at character {at + 1})"
        return lineno, None, reason, len(line)


def _nl_split(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    last = parts.pop()
    out = [p + b"\n" for p in parts]
    if last:
        out.append(last)
    return out


def _seekable(stream: IO[bytes]) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
    except (OSError, ValueError):
        return False
    return True


def _describe_bytes(exc: UnicodeDecodeError, encoding: str) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex()
    return f"not valid {label(encoding)} (byte 0x{bad} at column {exc.start + 1})"


def _decodes_whole(stream: IO[bytes], encoding: str) -> bool:
    """The whole stream decodes in ``encoding``. Read into one reused buffer; in an encoding in
    which every ASCII byte is a character by itself, an ASCII chunk met between characters (no
    partial sequence pending) decodes, so it is checked with ``isascii`` instead of decoded."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    ascii_chars = codecs.lookup(encoding).name in _ASCII_CHARS
    buffer = bytearray(_SCAN_CHUNK)
    readinto = getattr(stream, "readinto", None)
    try:
        while True:
            if readinto is not None:
                size = readinto(buffer)
                if not size:
                    break
                chunk: bytes | bytearray = buffer if size == len(buffer) else buffer[:size]
            else:
                chunk = stream.read(_SCAN_CHUNK)
                if not chunk:
                    break
            if ascii_chars and chunk.isascii() and decoder.getstate() == _CLEAN:
                continue
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def scan_encoding(source: LineSource, *, what: str) -> None:
    """Raise :class:`InputEncodingError` when a seekable ``source`` looks like a file in another
    encoding; leave it at its first line.

    "Another encoding" means: at least two lines cannot be decoded and no line that can holds a
    non-ASCII character (a cp1252 file read as UTF-8 fails on every line with an ``ø``). A file
    that decodes, and one with a few damaged lines among good non-ASCII text, pass: each damaged
    line is then a rejected row naming its line. The whole file is decoded in large chunks (C
    speed); a line-by-line pass runs only for a file that fails, stopping at the first good
    non-ASCII line.
    """
    if not source.seekable:
        raise ValueError("only a seekable input can be scanned before reading")
    source.rewind()
    ok = _decodes_whole(source._stream, source.encoding)
    source.rewind()
    if ok:
        return
    first, bad, damaged_only = _count_bad_lines(source)
    if not damaged_only:
        source.rewind()
        return  # good non-ASCII text: damaged lines, not another encoding
    source.rewind()
    if first is None or bad < 2:
        return
    guess = _guess(source)
    raise InputEncodingError(
        f"{what}: {bad:,} lines are not valid {label(source.encoding)}, the first is line"
        f" {first[0]} ({first[2].partition('(')[2].rstrip(')')}), and no line holds valid"
        f" non-ASCII text: the file is in another encoding; nothing was read or sent. {guess}"
    )


def _count_bad_lines(source: LineSource) -> tuple[Line | None, int, bool]:
    """``(first bad line, bad lines, True)``, or ``(..., False)`` at the first good line holding
    non-ASCII text. ASCII lines of an ASCII-compatible encoding are skipped undecoded."""
    first: Line | None = None
    bad = 0
    if source.as_bytes:
        encoding = source.encoding
        for lineno, raw in enumerate(source._raw_lines(), 1):
            if raw.isascii():
                continue
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                bad += 1
                first = first or (lineno, None, _describe_bytes(exc, encoding), len(raw))
            else:
                return first, bad, False
        return first, bad, True
    for line in source.lines():
        text = line[1]
        if text is None:
            bad += 1
            first = first or line
        elif not text.isascii():
            return first, bad, False
    return first, bad, True


def _guess(source: LineSource) -> str:
    """The ``--encoding`` that reads every line, when a one-byte Western encoding does."""
    if source.encoding == "utf-8" and source.as_bytes:
        for candidate in ("cp1252", "latin-1"):
            if _decodes_whole(source._stream, candidate):
                source.rewind()
                return (
                    f"It reads as {label(candidate)}: if that is its encoding, pass"
                    f" --encoding {candidate} (or export the file as UTF-8)."
                )
            source.rewind()
    return "Pass --encoding with the file's encoding (for example cp1252, latin-1, utf-16)."
