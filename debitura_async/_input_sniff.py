"""Which character separates a CSV file's fields, told from its header line. Pure.

Excel writes ``,`` or, in locales whose decimal mark is a comma, ``;``; its "Unicode text" is
tab-separated; some systems write ``|``. The header decides, because it must name the columns
the reader needs: each candidate splits the header (with CSV quoting), and the winner is the one
whose cells name the most wanted columns (API field names or ``--map`` columns), then the one
that occurs most often outside quotes. A header none of them splits is read as ``,``.

>>> sniff_delimiter("caseId;description;Created Date (UTC)", {"caseid", "description"})
';'
>>> sniff_delimiter('"Note, text"\\tcaseId', set())
'\\t'
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection
from typing import Final

from ._input_options import DELIMITERS

__all__ = ["sep_line", "sniff_delimiter"]

_SEP_LINE: Final = re.compile(r'^"?sep=(.)"?\r?\n?$', re.IGNORECASE)


def sep_line(line: str) -> str | None:
    """Excel's ``sep=;`` first line: the delimiter it names, else None.

    >>> sep_line("sep=;\\r\\n"), sep_line("caseId,description")
    (';', None)
    """
    found = _SEP_LINE.match(line)
    return found.group(1) if found else None


def _unquoted_count(line: str, char: str) -> int:
    count = 0
    quoted = False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def sniff_delimiter(header: str, wanted: Collection[str]) -> str:
    """The delimiter of a header line; ``wanted`` holds casefolded column names to look for."""
    best = ","
    best_score = (0, 0)
    for delimiter in DELIMITERS:
        count = _unquoted_count(header, delimiter)
        if not count:
            continue
        try:
            cells = next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter))
        except csv.Error:
            cells = header.split(delimiter)
        named = sum(1 for cell in cells if cell.strip().casefold() in wanted)
        score = (named, count)
        if score > best_score:
            best, best_score = delimiter, score
    return best
