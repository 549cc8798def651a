"""Shared pieces of the symbolic side: the result record and small helpers."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar, cast

import numpy as np
import sympy as sp

__all__ = [
    "Identity",
    "cached",
    "check_bool_arg",
    "check_choice_arg",
    "check_int_arg",
    "check_matrix_field",
    "check_same_field",
    "check_symbol_matrix",
    "is_zero_matrix",
    "sym_matrix",
    "sym_scalar",
]

_F = TypeVar("_F", bound=Callable[..., Any])


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


def check_int_arg(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``high=None``: no upper end), or a
    ``ValueError``/``TypeError`` naming ``name``.

    Python and NumPy integers are accepted (``np.int64(2)`` is ``2``); bools,
    floats (even integral ones) and everything else are refused.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    v = int(value)
    if high is None:
        if v < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {v}")
    elif not low <= v <= high:
        raise ValueError(f"`{name}` must lie in [{low}, {high}], got {v}")
    return v


def check_choice_arg(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return str(value)


def check_bool_arg(name: str, value: Any) -> bool:
    """``value`` as a bool if it is one (Python or NumPy), else a ``TypeError`` naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return bool(value)


def cached(maxsize: int) -> Callable[[_F], _F]:
    """``functools.lru_cache(maxsize, typed=True)`` that validates before it looks up.

    ``typed=True`` keeps ``2.0`` and ``True`` from hitting the entry cached for
    ``2`` (they must be refused, not answered); arguments that cannot be hashed
    (a list) skip the cache, so the function's own validation reports them.
    """

    def deco(fn: _F) -> _F:
        memo = functools.lru_cache(maxsize=maxsize, typed=True)(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                hash((args, tuple(kwargs.items())))
            except TypeError:
                return fn(*args, **kwargs)
            return memo(*args, **kwargs)

        wrapper.cache_clear = memo.cache_clear  # type: ignore[attr-defined]
        wrapper.cache_info = memo.cache_info  # type: ignore[attr-defined]
        return cast(_F, wrapper)

    return deco


_NUMBERS = "a number (int, float, Fraction or NumPy scalar) or a SymPy expression"


def sym_scalar(name: str, value: Any) -> Any:
    """``value`` as a SymPy expression, **without ever parsing a string**.

    ``sympy.sympify`` (and everything that calls it: ``Matrix(...)``,
    ``nsimplify``, ``Max``, ``subs``) evaluates strings as Python code. The
    symbolic side therefore takes numbers and SymPy objects only: ``int`` and
    NumPy integers become ``Integer``, ``Fraction`` becomes ``Rational``,
    ``float`` and NumPy floats become ``Float`` (finite only), a SymPy
    expression is used as it is. Anything else (a string, bytes, a bool, a
    complex number, a list) raises a ``TypeError`` naming ``name``.
    """
    if isinstance(value, sp.Basic):
        if isinstance(value, sp.Expr):
            return value
        raise TypeError(f"`{name}` must be {_NUMBERS}, got the SymPy object {type(value).__name__}")
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be {_NUMBERS}, got the bool {value!r}")
    if isinstance(value, int | np.integer):
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"`{name}` must be finite, got {v}")
        return sp.Float(v)
    what = type(value).__name__
    if isinstance(value, str | bytes):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise TypeError(
            f"`{name}` must be {_NUMBERS}, got the {what} {shown} (strings are never parsed)"
        )
    raise TypeError(f"`{name}` must be {_NUMBERS}, got {what}")


def sym_matrix(name: str, value: Any) -> Any:
    """``value`` as a ``sympy.Matrix`` whose entries went through :func:`sym_scalar`.

    Accepts a SymPy matrix, a NumPy array of integers, floats or objects (1-D:
    a column), or a list/tuple of entries (a column) or of equal-length rows.
    Strings are never parsed (see :func:`sym_scalar`).
    """
    if isinstance(value, sp.MatrixBase):
        rows, cols = value.shape
        flat = [sym_scalar(f"{name}[{i}, {j}]", value[i, j]) for i in range(rows) for j in range(cols)]
        return sp.Matrix(rows, cols, flat)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iufO":
            raise TypeError(f"`{name}` must hold numbers or SymPy expressions, got dtype {value.dtype}")
        if value.ndim not in (1, 2):
            raise ValueError(f"`{name}` must have 1 or 2 dimensions, got shape {value.shape}")
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise TypeError(
            f"`{name}` must be a sequence, NumPy array or SymPy matrix of numbers, got {type(value).__name__}"
        )
    if all(isinstance(r, list | tuple) for r in value) and value:
        cols = len(value[0])
        if any(len(r) != cols for r in value):
            raise ValueError(f"`{name}` must have rows of one length, got lengths {[len(r) for r in value]}")
        flat = [sym_scalar(f"{name}[{i}][{j}]", v) for i, r in enumerate(value) for j, v in enumerate(r)]
        return sp.Matrix(len(value), cols, flat)
    return sp.Matrix(len(value), 1, [sym_scalar(f"{name}[{i}]", v) for i, v in enumerate(value)])


def check_matrix_field(name: str, value: Any, shape: tuple[int, int] | None = None) -> Any:
    """``value`` if it is a SymPy matrix of expressions (of ``shape`` when given).

    For the fields of a record passed back to the library (``cell.W_hh``):
    a ``TypeError`` naming ``name`` if ``value`` is not a SymPy matrix or holds
    something that is not an expression, a ``ValueError`` if its shape is not
    ``shape``.
    """
    if not isinstance(value, sp.MatrixBase):
        raise TypeError(f"`{name}` must be a SymPy matrix, got {type(value).__name__}")
    for entry in value:
        if not isinstance(entry, sp.Expr):
            raise TypeError(f"`{name}` must hold SymPy expressions, got the {type(entry).__name__} {entry}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}, got shape {tuple(value.shape)}")
    return value


def check_symbol_matrix(*named: tuple[str, Any]) -> None:
    """Raise a ``ValueError`` naming the field unless the entries of the SymPy
    matrices in ``named`` (``(name, matrix)`` pairs) are symbols, all distinct
    (the variables a record differentiates by, substitutes for, or takes as
    arguments)."""
    seen: dict[Any, str] = {}
    for name, value in named:
        for entry in value:
            if not isinstance(entry, sp.Symbol):
                raise ValueError(f"`{name}` must hold SymPy symbols (the variables), got the entry {entry}")
            if entry in seen:
                where = "twice" if seen[entry] == name else f"(also in `{seen[entry]}`)"
                raise ValueError(f"`{name}` must hold distinct symbols, got {entry} {where}")
            seen[entry] = name


def check_same_field(name: str, got: Any, want: Any, what: str) -> None:
    """Raise a ``ValueError`` naming ``name`` unless the record field ``got``
    equals ``want`` (what the record's other fields determine, described by
    ``what``): structurally, or after expanding the difference."""
    if got == want:
        return
    diff = got - want
    zero = diff.applyfunc(sp.expand).is_zero_matrix if isinstance(diff, sp.MatrixBase) else sp.expand(diff) == 0
    if zero is not True:
        raise ValueError(f"`{name}` does not match the record's other fields: it must be {what}")


def is_zero_matrix(M: Any) -> tuple[bool, Any]:
    """Expand (then simplify if needed) every entry; return ``(all zero, result)``."""
    R = sp.Matrix(M).doit().applyfunc(sp.expand)
    if not R.is_zero_matrix:
        R = R.applyfunc(sp.simplify)
    return bool(R.is_zero_matrix), R
