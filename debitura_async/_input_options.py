"""How to read an input file: delimiter, encoding, time zone of naive date-times, DST policy.

:class:`InputOptions` is the one typed, frozen options object the readers take; every value a
user can pass is checked when it is built (an :class:`InputOptionError` naming the option and
what is accepted), so a bad option never reaches the reading.

>>> options = InputOptions(encoding="Windows-1252", assume_timezone="Europe/Copenhagen")
>>> options.encoding, options.zone
('cp1252', zoneinfo.ZoneInfo(key='Europe/Copenhagen'))
>>> parse_delimiter("tab")
'\\t'
"""

from __future__ import annotations

import codecs
import difflib
import zoneinfo
from functools import lru_cache
from typing import Final, Literal

import attrs

__all__ = [
    "DELIMITERS",
    "DstPolicy",
    "InputError",
    "InputOptionError",
    "InputOptions",
    "load_zone",
    "parse_delimiter",
]

DstPolicy = Literal["rfc5545", "reject"]

DELIMITERS: Final = (",", ";", "\t", "|")
"""The delimiters sniffing chooses from (any other single character may be given explicitly)."""

_DELIMITER_NAMES: Final = {
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "\\t": "\t",
    "pipe": "|",
}


class InputError(Exception):
    """The input cannot be read at all: no such file, no header, a mapped column is missing, an
    option that cannot be used, a file in another encoding."""


class InputOptionError(InputError, ValueError):
    """An input option has a value that cannot be used (raised when the options are built)."""


def parse_delimiter(text: str) -> str:
    """The CLI's ``--delimiter`` value: one character, or ``comma``/``semicolon``/``tab``/``\\t``/
    ``pipe``. Refuses quotes, line ends, spaces, letters and digits."""
    value = _DELIMITER_NAMES.get(text.strip().lower(), text) if len(text) != 1 else text
    _check_delimiter(value)
    return value


def _check_delimiter(value: str) -> None:
    if len(value) != 1:
        raise InputOptionError(
            f"--delimiter: {value!r} is not one character (use ',', ';', tab, '|' or a name:"
            " comma, semicolon, tab, pipe)"
        )
    if value in '"\r\n ' or value.isalnum() or (not value.isprintable() and value != "\t"):
        raise InputOptionError(
            f"--delimiter: {value!r} cannot separate fields (quotes, line ends, spaces, letters"
            " and digits are part of the data)"
        )


def _check_encoding(name: str) -> str:
    """A text encoding's canonical name; refuses unknown and bytes-to-bytes codecs."""
    try:
        info = codecs.lookup(name)
        "\n".encode(info.name)  # LookupError for bytes-to-bytes codecs such as base64
    except LookupError:
        raise InputOptionError(
            f"--encoding: {name!r} is not a text encoding Python knows (for example utf-8,"
            " utf-16, cp1252, latin-1)"
        ) from None
    return info.name


@lru_cache(maxsize=32)
def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Copenhagen``), or an InputOptionError
    naming it and the closest known names."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    try:
        known = zoneinfo.available_timezones()
    except OSError:  # pragma: no cover - unreadable time zone data
        known = set()
    close = difflib.get_close_matches(name, sorted(known), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise InputOptionError(
        f"--assume-timezone: {name!r} is not an IANA time zone name (for example UTC,"
        f" Europe/Copenhagen){hint}"
    )


def _delimiter(value: str | None) -> str | None:
    if value is not None:
        if not isinstance(value, str):
            raise InputOptionError(f"--delimiter: expected a character, got {value!r}")
        _check_delimiter(value)
    return value


def _encoding(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputOptionError(f"--encoding: expected an encoding name, got {value!r}")
    return None if value is None else _check_encoding(value)


def _zone(value: str | None) -> str | None:
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            raise InputOptionError("--assume-timezone: give a time zone name such as UTC")
        load_zone(value)
    return value


def _dst(value: str) -> DstPolicy:
    if not isinstance(value, str) or value not in ("rfc5545", "reject"):
        raise InputOptionError(f"--dst: {value!r} is not one of rfc5545, reject")
    return value  # type: ignore[return-value]


@attrs.frozen(kw_only=True)
class InputOptions:
    """How the readers decode and split an input.

    * ``delimiter``: ``None`` sniffs it from the header line among ``,`` ``;`` tab ``|`` (and
      honours Excel's ``sep=;`` first line); a character forces it. CSV only.
    * ``encoding``: ``None`` detects it from a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32) and
      else reads UTF-8; a name (``cp1252``, ``latin-1``, ``utf-16-le`` …) forces it (a BOM of that
      encoding is still skipped).
    * ``assume_timezone``: the IANA zone in which date-times without an offset are read
      (``UTC``, ``Europe/Copenhagen``); ``None`` leaves them to validation, which refuses them.
    * ``dst``: what a local time in a DST change means: ``"rfc5545"`` (the default; as RFC 5545
      and ``zoneinfo`` with ``fold=0``: an ambiguous time is its first occurrence, a skipped time
      is read with the offset before the gap) or ``"reject"`` (such rows are rejected).
    * ``check_encoding``: scan a seekable input for undecodable bytes when the reader opens, so a
      file in the wrong encoding fails before anything is sent (a stream cannot be scanned: its
      undecodable lines become rejected rows).
    """

    delimiter: str | None = attrs.field(default=None, converter=_delimiter)
    encoding: str | None = attrs.field(default=None, converter=_encoding)
    assume_timezone: str | None = attrs.field(default=None, converter=_zone)
    dst: DstPolicy = attrs.field(default="rfc5545", converter=_dst)
    check_encoding: bool = True

    @property
    def zone(self) -> zoneinfo.ZoneInfo | None:
        return None if self.assume_timezone is None else load_zone(self.assume_timezone)

    def settings(self) -> dict[str, object]:
        """The JSON-able options that change what rows a file gives (for a journal's run)."""
        return {
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "assumeTimezone": self.assume_timezone,
            "dst": self.dst,
        }
