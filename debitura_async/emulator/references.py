"""Partners' own case references (``collectionPartnerReference``): rules and generation.

Pure values, no I/O. A reference is free text of 1..128 characters, unique among one partner's
cases (two partners may use the same text for different cases); a case may have none. The
generated world mixes the shapes CRM exports really hold: plain numbers, combined references
(``"112179442 & 112179443"``, the example in Debitura's docs), references with a comma (which
the batch lookup cannot carry), with spaces and slashes, non-ASCII text, one of exactly 128
characters, and cases without a reference.

>>> import uuid
>>> cases = [uuid.UUID(int=i + 1, version=4) for i in range(10)]
>>> refs = dict(generate_references(cases, seed=0, partner_index=0))
>>> refs[cases[0]], refs[cases[1]], cases[9] in refs
('112179442 & 112179443', '112179444', False)
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "MAX_REFERENCE_LENGTH",
    "check_reference",
    "generate_references",
    "parse_references",
]

MAX_REFERENCE_LENGTH: Final = 128
_NAMES: Final = ("Hansen", "Jørgensen", "Müller & Söhne", "O'Brien", "Núñez", "Smith")

References = tuple[tuple[uuid.UUID, str], ...]
"""``(case id, reference)`` pairs in case order (a frozen, hashable stand-in for a mapping)."""


def check_reference(value: object, where: str) -> str:
    """``value`` if it is a valid reference, else a ``ValueError``/``TypeError`` naming ``where``.

    >>> check_reference("A & B", "x")
    'A & B'
    >>> check_reference(" ", "x")
    Traceback (most recent call last):
    ...
    ValueError: x: a partner reference must not be empty or blank
    """
    if not isinstance(value, str):
        raise TypeError(f"{where}: a partner reference must be a string, got {value!r}")
    if not value.strip():
        raise ValueError(f"{where}: a partner reference must not be empty or blank")
    if len(value) > MAX_REFERENCE_LENGTH:
        raise ValueError(
            f"{where}: a partner reference has at most {MAX_REFERENCE_LENGTH} characters"
            f" (got {len(value)})"
        )
    return value


def parse_references(
    raw: object, case_ids: Sequence[uuid.UUID], *, partner: str = "partner"
) -> References:
    """The ``partnerReferences`` object of a world file (``{caseId: reference}``), checked.

    Every key must be one of the partner's ``case_ids``; references are unique per partner.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TypeError(f"{partner}: 'partnerReferences' must be an object {{caseId: reference}}")
    owned = set(case_ids)
    by_case: dict[uuid.UUID, str] = {}
    seen: dict[str, uuid.UUID] = {}
    for key, value in raw.items():
        try:
            case = uuid.UUID(str(key))
        except ValueError:
            message = f"{partner}: partnerReferences key {key!r} is not a case UUID"
            raise ValueError(message) from None
        if case not in owned:
            raise ValueError(f"{partner}: partnerReferences names {case}, not one of its caseIds")
        text = check_reference(value, f"{partner}: partnerReferences[{case}]")
        if text in seen:
            raise ValueError(f"{partner}: reference {text!r} is used by two cases")
        seen[text] = case
        by_case[case] = text
    return tuple((case, by_case[case]) for case in case_ids if case in by_case)


def generate_references(
    case_ids: Sequence[uuid.UUID], *, seed: int, partner_index: int
) -> References:
    """Reproducible references for a generated partner (same arguments, same references).

    By case index ``i`` (``n = 112179442 + 100000 * partner_index + 2 * i``): ``i % 10 == 0``
    combined ``"n & n+1"``; ``5`` with a comma ``"n, Name"``; ``7`` ``"INV n/2025"``; ``9`` none;
    ``i % 50 == 25`` exactly 128 characters; otherwise ``"n"``. Draws from its own RNG, so
    adding references changed no generated id or key.
    """
    rng = random.Random(f"debitura-emulator-references-{seed}-{partner_index}")  # noqa: S311 - test data
    result: list[tuple[uuid.UUID, str]] = []
    for i, case in enumerate(case_ids):
        n = 112_179_442 + 100_000 * partner_index + 2 * i
        slot = i % 10
        if slot == 9:
            continue
        if i % 50 == 25:
            text = f"LONG-{n}-".ljust(MAX_REFERENCE_LENGTH, "0")
        elif slot == 0:
            text = f"{n} & {n + 1}"
        elif slot == 5:
            text = f"{n}, {rng.choice(_NAMES)}"
        elif slot == 7:
            text = f"INV {n}/2025"
        else:
            text = str(n)
        result.append((case, text))
    return tuple(result)
