"""Shared pieces of the symbolic side: the result record and small helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

__all__ = ["Identity", "check_choice_arg", "check_int_arg", "is_zero_matrix"]


@dataclass(frozen=True)
class Identity:
    """The outcome of a symbolic identity check.

    Attributes
    ----------
    statement : str
        The identity, in words and symbols.
    holds : bool
        Whether ``lhs − rhs`` simplified to zero.
    residual : sympy.Matrix or sympy.Expr
        The simplified difference ``lhs − rhs`` (zero when ``holds``).
    """

    statement: str
    holds: bool
    residual: Any

    def __bool__(self) -> bool:
        return self.holds


def check_int_arg(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or a ``ValueError``/``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"`{name}` must lie in [{low}, {high}], got {value}")
    return value


def check_choice_arg(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return str(value)


def is_zero_matrix(M: Any) -> tuple[bool, Any]:
    """Expand (then simplify if needed) every entry; return ``(all zero, result)``."""
    R = sp.Matrix(M).doit().applyfunc(sp.expand)
    if not R.is_zero_matrix:
        R = R.applyfunc(sp.simplify)
    return bool(R.is_zero_matrix), R
