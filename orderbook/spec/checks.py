"""The checks every spec runs at construction: each raises ``ValueError`` saying what was expected and what came."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation


def to_decimal(value: object, what: str) -> Decimal:
    """``value`` as an exact Decimal (floats go through ``repr`` so 0.01 stays 0.01)."""
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{what} must be a decimal number, got {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return d


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def is_real(x: object) -> bool:
    """An int or float, not a bool (``True`` is not a number of steps)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_probability(owner: str, name: str, p: float) -> None:
    require(
        isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0,
        f"{owner}.{name} must be a probability in [0, 1], got {p!r}",
    )


def check_nonnegative(owner: str, name: str, x: float) -> None:
    require(
        isinstance(x, (int, float)) and math.isfinite(x) and x >= 0,
        f"{owner}.{name} must be a finite number >= 0, got {x!r}",
    )
