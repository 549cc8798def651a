"""Pascanu's vanishing-gradient regularizer Ω (Eqs. 15–16 of the article), symbolically.

``Ω_k = (‖v J_{k+1}‖/‖v‖ − 1)²`` with ``v = ∂E/∂h_{k+1}`` a row vector and
``J_{k+1} = ∂h_{k+1}/∂h_k`` (numerator layout). In the library's conventions:

* Pascanu's form: ``J_{k+1} = W_hh diag(f′(h_k))``;
* standard form: ``J_{k+1} = diag(f′(a_{k+1})) W_hh``, ``a_{k+1} = W_hh h_k + c``.

Pascanu's gradient holds ``v`` fixed (the "immediate" derivative). With
``u = v J`` and ``r = ‖u‖/‖v‖``, for Pascanu's form

``∂Ω_k/∂W_hh = 2 (r − 1)/(‖v‖ ‖u‖) · vᵀ (u ⊙ f′(h_k))``,

and for the standard form a second term from ``f′(a_{k+1})``'s dependence on ``W_hh``:

``∂Ω_k/∂W_hh = 2 (r − 1)/(‖v‖ ‖u‖) · [ (v ⊙ f′(a))ᵀ u + (v ⊙ f″(a) ⊙ W_hh uᵀ) h_kᵀ ]``.

The squared-ratio variant ``(‖u‖²/‖v‖² − 1)²`` (Pascanu's Eq. 10 and code)
replaces ``2(r − 1)/(‖v‖‖u‖)`` by ``4(s − 1)/‖v‖²`` with ``s = ‖u‖²/‖v‖²``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ._base import (
    Identity,
    cached,
    check_bool_arg,
    check_choice_arg,
    check_int_arg,
    check_matrix_field,
    check_same_field,
    is_zero_matrix,
)
from .elman import ACTIVATIONS, FORMS, activation

__all__ = ["OmegaSetup", "omega", "omega_functions", "omega_gradient_closed_form", "prove_omega_gradient"]

_XI = sp.Dummy("xi")


@dataclass(frozen=True)
class OmegaSetup:
    """The symbols and expressions of one term ``Ω_k``.

    Attributes
    ----------
    n : int
    form : str
    squared : bool
        The squared-ratio variant.
    W, v, h, c : sympy.Matrix
        ``W_hh`` ``(n, n)``, ``v`` ``(1, n)``, ``h_k`` ``(n, 1)``, and (standard
        form) ``c = W_hx x_{k+1} + b`` ``(n, 1)``.
    D, D2 : sympy.Matrix
        Columns ``f′`` and ``f″`` at the argument of ``f``.
    J : sympy.Matrix
        The step Jacobian ``J_{k+1}``.
    u : sympy.Matrix
        ``v J``.
    value : sympy.Expr
        ``Ω_k``.
    """

    n: int
    form: str
    squared: bool
    W: sp.Matrix
    v: sp.Matrix
    h: sp.Matrix
    c: sp.Matrix
    D: sp.Matrix
    D2: sp.Matrix
    J: sp.Matrix
    u: sp.Matrix
    value: Any


def _derivs(f: Callable[[Any], Any], arg: Any) -> tuple[Any, Any]:
    if isinstance(f, sp.core.function.UndefinedFunction):
        return (sp.Subs(sp.Derivative(f(_XI), _XI), _XI, arg),
                sp.Subs(sp.Derivative(f(_XI), (_XI, 2)), _XI, arg))
    e = f(_XI)
    return sp.diff(e, _XI).subs(_XI, arg), sp.diff(e, _XI, 2).subs(_XI, arg)


def omega(n: int = 2, form: str = "pascanu", *, squared: bool = False, act: str = "f") -> OmegaSetup:
    """Build ``Ω_k`` for an ``n``-unit cell.

    Parameters
    ----------
    n : int
        Hidden units, 2 to 4 (for ``n = 1`` the norms collapse to absolute
        values, which SymPy differentiates to ``sign``).
    form : {"pascanu", "standard"}
    squared : bool
        Use ``(‖vJ‖²/‖v‖² − 1)²`` instead of ``(‖vJ‖/‖v‖ − 1)²``.
    act : {"f", "tanh", "sigmoid", "identity"}

    Returns
    -------
    OmegaSetup

    Raises
    ------
    TypeError
        On a non-integer ``n`` or a non-bool ``squared``.
    ValueError
        On an out-of-range ``n`` or unknown ``form``/``act``.

    Examples
    --------
    >>> omega(2, act="identity").u
    Matrix([[v_0*w_0_0 + v_1*w_1_0, v_0*w_0_1 + v_1*w_1_1]])

    Eqs. 15–16 of the article; Pascanu et al. 2013, Eqs. 9–10.
    """
    n = check_int_arg("n", n, 2, 4)
    form = check_choice_arg("form", form, FORMS)
    squared = check_bool_arg("squared", squared)
    f = activation(check_choice_arg("act", act, ACTIVATIONS))
    W = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"w_{i}_{j}", real=True))
    v = sp.Matrix(1, n, lambda _, j: sp.Symbol(f"v_{j}", real=True))
    h = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"h_{i}", real=True))
    c = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"c_{i}", real=True))
    arg = h if form == "pascanu" else W * h + c
    pairs = [_derivs(f, a) for a in arg]
    D = sp.Matrix([p[0] for p in pairs])
    D2 = sp.Matrix([p[1] for p in pairs])
    J, u, value = _compose(form, squared, W, v, D)
    return OmegaSetup(n, form, bool(squared), W, v, h, c, D, D2, J, u, value)


def _compose(form: str, squared: bool, W: Any, v: Any, D: Any) -> tuple[Any, Any, Any]:
    """``J_{k+1}``, ``u = v J_{k+1}`` and ``Ω_k`` from ``W``, ``v`` and the column ``D`` of ``f′``."""
    J = W * sp.diag(*D) if form == "pascanu" else sp.diag(*D) * W
    u = v * J
    nu2 = sum(e**2 for e in u)
    nv2 = sum(e**2 for e in v)
    value = (nu2 / nv2 - 1) ** 2 if squared else (sp.sqrt(nu2) / sp.sqrt(nv2) - 1) ** 2
    return J, u, value


_FIELDS = ("W", "v", "h", "c", "D", "D2", "J", "u")


def _check_setup(s: Any) -> OmegaSetup:
    """``s`` if it is an :class:`OmegaSetup` whose fields agree with each other
    (as :func:`omega` builds them), else a ``TypeError`` (a field of the wrong
    type) or ``ValueError`` (a size, shape or expression that does not fit)
    naming ``s`` and the field."""
    if not isinstance(s, OmegaSetup):
        raise TypeError(f"`s` must be an OmegaSetup (from `omega`), got {type(s).__name__}")
    for name in _FIELDS:
        check_matrix_field(f"s.{name}", getattr(s, name))
    if not isinstance(s.value, sp.Expr):
        raise TypeError(f"`s.value` must be a SymPy expression, got {type(s.value).__name__}")
    n = check_int_arg("s.n", s.n, 1)
    form = check_choice_arg("s.form", s.form, FORMS)
    squared = check_bool_arg("s.squared", s.squared)
    shapes = {"W": (n, n), "v": (1, n), "h": (n, 1), "c": (n, 1), "D": (n, 1), "D2": (n, 1), "J": (n, n),
              "u": (1, n)}
    for name in _FIELDS:
        check_matrix_field(f"s.{name}", getattr(s, name), shapes[name])
    J, u, value = _compose(form, squared, s.W, s.v, s.D)
    check_same_field("s.J", s.J, J, f"the step Jacobian of the {form} form from `s.W` and `s.D`")
    check_same_field("s.u", s.u, u, "`s.v` times `s.J`")
    kind = "squared ratio" if squared else "ratio"
    check_same_field("s.value", s.value, value, f"Ω_k ({kind}) of `s.u` and `s.v`")
    return s


def omega_gradient_closed_form(s: OmegaSetup) -> sp.Matrix:
    """``∂Ω_k/∂W_hh`` with ``v`` held fixed, in closed form (see the module docstring).

    Raises
    ------
    TypeError
        If ``s`` is not an :class:`OmegaSetup` or a field has the wrong type.
    ValueError
        If the fields of ``s`` do not fit together (sizes, shapes, or ``J``,
        ``u`` and ``value`` not those that ``W``, ``v``, ``D`` and ``squared`` give).

    Examples
    --------
    >>> omega_gradient_closed_form(omega(2, act="identity")).shape
    (2, 2)
    """
    _check_setup(s)
    nu2 = sum(e**2 for e in s.u)
    nv2 = sum(e**2 for e in s.v)
    if s.squared:
        coef = 4 * (nu2 / nv2 - 1) / nv2
    else:
        coef = 2 * (sp.sqrt(nu2) / sp.sqrt(nv2) - 1) / (sp.sqrt(nv2) * sp.sqrt(nu2))
    n = int(s.n)
    if s.form == "pascanu":
        M = sp.Matrix(n, n, lambda i, j: s.v[i] * s.u[j] * s.D[j])
    else:
        Wu = s.W * s.u.T
        M = sp.Matrix(
            n, n, lambda i, j: s.v[i] * s.D[i] * s.u[j] + s.v[i] * s.D2[i] * Wu[i] * s.h[j]
        )
    return coef * M


@cached(maxsize=16)
def prove_omega_gradient(n: int = 2, form: str = "pascanu", squared: bool = False) -> Identity:
    """Prove the closed-form ``∂Ω_k/∂W_hh`` against SymPy's derivative (abstract ``f``).

    Examples
    --------
    >>> prove_omega_gradient(2).holds
    True

    Eq. 16 of the article, corrected; Pascanu et al. 2013, Eq. 10.
    """
    s = omega(n, form, squared=squared)
    auto = s.W.applyfunc(lambda w: sp.diff(s.value, w))
    ok, R = is_zero_matrix(auto - omega_gradient_closed_form(s))
    kind = "squared ratio" if squared else "ratio"
    return Identity(f"closed-form ∂Ω_k/∂W_hh = SymPy's derivative ({form}, {kind}, n = {n})", ok, R)


def omega_functions(
    n: int = 2, form: str = "pascanu", *, squared: bool = False, act: str = "tanh"
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """NumPy functions ``value(W, h, c, v)`` and ``gradient(W, h, c, v)`` of ``Ω_k``.

    ``W`` is ``(n, n)``, ``h``, ``c``, ``v`` are length-``n`` arrays (``c`` is
    ignored in Pascanu's form). The gradient is the closed form.

    Examples
    --------
    >>> import numpy as np
    >>> val, grad = omega_functions(2, act="identity")
    >>> float(val(2 * np.eye(2), np.zeros(2), np.zeros(2), np.ones(2)))
    1.0
    """
    s = omega(n, form, squared=squared, act=act)
    syms = [*s.W, *s.h, *s.c, *s.v]
    fv = sp.lambdify(syms, s.value, "numpy")
    fg = sp.lambdify(syms, omega_gradient_closed_form(s), "numpy")

    import numpy as np

    from .._validation import as_float_array

    f64 = np.dtype(np.float64)

    def pack(W: Any, h: Any, c: Any, v: Any) -> list[Any]:
        out: list[Any] = []
        for name, a, shape in (("W", W, (s.n, s.n)), ("h", h, (s.n,)), ("c", c, (s.n,)), ("v", v, (s.n,))):
            arr = as_float_array(name, a, dtype=f64)
            if arr.shape != shape:
                raise ValueError(f"`{name}` must have shape {shape}, got shape {arr.shape}")
            out += arr.ravel().tolist()
        return out

    return (lambda W, h, c, v: fv(*pack(W, h, c, v)),
            lambda W, h, c, v: fg(*pack(W, h, c, v)))
