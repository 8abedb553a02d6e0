"""The primitive checks of case-file values: required keys, unknown keys,
numbers, integers, choices and lists, each failing with the key's dotted name."""

from __future__ import annotations

import math
from typing import Any

from mfpde.errors import CaseError

_INT_LIMIT = 2**63     # integers in a case are machine integers


def _require(table: dict, key: str, where: str) -> Any:
    if key not in table:
        raise CaseError(f"{where}.{key}" if where else key, "missing")
    return table[key]


def _check_keys(table: dict, known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise CaseError(f"{where}.{key}" if where else key,
                            f"unknown key (known: {', '.join(sorted(known))})")


def _number(value: Any, key: str, *, positive=False, nonnegative=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(key, f"must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise CaseError(key, "is too large for a number (|value| >= 1e308)") from None
    if not math.isfinite(value):
        raise CaseError(key, f"must be finite, got {value}")
    if positive and value <= 0:
        raise CaseError(key, f"must be > 0, got {value}")
    if nonnegative and value < 0:
        raise CaseError(key, f"must be >= 0, got {value}")
    return value


def _integer(value: Any, key: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseError(key, f"must be an integer, got {value!r}")
    if abs(value) >= _INT_LIMIT:
        raise CaseError(key, "is out of range for an integer (|value| >= 2^63)")
    if minimum is not None and value < minimum:
        raise CaseError(key, f"must be >= {minimum}, got {value}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CaseError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _int_list(value: Any, key: str, *, minimum: int) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise CaseError(key, f"must be a non-empty list of integers, got {value!r}")
    return [_integer(v, f"{key}[{i}]", minimum=minimum) for i, v in enumerate(value)]
