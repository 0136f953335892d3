"""Naive date-times of an export, read in the zone the user names (``--assume-timezone``). Pure.

``2024-01-01 00:00:00`` in a column ``Created Date (UTC)`` has no offset: only the user knows
its zone. :func:`localize` reads it there and returns ISO 8601 UTC text (``...Z``); text with
an offset, and text that is not a date-time, is returned unchanged (validation judges it).

Daylight saving changes (``dst``):

* ``"rfc5545"`` (the default): as RFC 5545 section 3.3.5 and :mod:`zoneinfo` with ``fold=0`` —
  a time that occurs twice (clocks turned back) is its *first* occurrence; a time that does not
  exist (clocks turned forward) is read with the offset *before* the gap, so
  ``2024-03-31 02:30`` in Europe/Copenhagen is 01:30 UTC (03:30 local summer time).
* ``"reject"``: both are refused, naming the row's time and the zone.

>>> from zoneinfo import ZoneInfo
>>> localize("2024-01-01 00:00:00", ZoneInfo("Europe/Copenhagen"), "rfc5545")
'2023-12-31T23:00:00Z'
>>> localize("2024-01-01T00:00:00+02:00", ZoneInfo("UTC"), "rfc5545")
'2024-01-01T00:00:00+02:00'
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from ._input_options import DstPolicy

__all__ = ["LocalTimeError", "localize"]


class LocalTimeError(ValueError):
    """A local time that a DST change makes ambiguous or skips, under ``dst="reject"``."""


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()[:-6] + "Z"


def localize(text: str, zone: tzinfo, dst: DstPolicy) -> str:
    """``text`` as UTC ISO 8601 when it is a naive date-time; else ``text`` itself."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    if parsed.tzinfo is not None:
        return text
    first = parsed.replace(tzinfo=zone, fold=0)
    if dst == "reject":
        second = parsed.replace(tzinfo=zone, fold=1)
        before, after = first.utcoffset(), second.utcoffset()
        if before != after and before is not None and after is not None:
            name = str(zone)
            if before > after:
                raise LocalTimeError(
                    f"{parsed.isoformat(sep=' ')} occurs twice in {name} (the clocks were turned"
                    f" back); give it an offset, or read such times as their first occurrence"
                    f" (--dst rfc5545)"
                )
            raise LocalTimeError(
                f"{parsed.isoformat(sep=' ')} does not exist in {name} (the clocks were turned"
                f" forward); give it an offset, or read it with the offset before the change"
                f" (--dst rfc5545)"
            )
    try:
        return _utc_text(first)
    except OverflowError:
        return text  # year 1 / 9999 at the edge of the zone: validation names it
