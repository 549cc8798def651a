"""``γ_h = sup|f′|`` by calculus (the constant after Eq. 10 of the article)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

__all__ = ["GammaH", "gamma_h"]


@dataclass(frozen=True)
class GammaH:
    """The supremum of ``|f′|`` over the reals and where it is attained.

    Attributes
    ----------
    value : sympy.Expr
        ``sup_x |f′(x)|`` (exact).
    argmax : sympy.Expr
        A point where ``|f′|`` attains ``value``.
    derivative : sympy.Expr
        ``f′`` as an expression in ``x``.
    candidates : tuple of sympy.Expr
        The critical points of ``f′`` (roots of ``f″``) that were compared.
    """

    value: Any
    argmax: Any
    derivative: Any
    candidates: tuple[Any, ...]


def gamma_h(expr: Any, x: Any) -> GammaH:
    """``γ_h = sup_x |f′(x)|``, found by calculus, for a smooth activation ``f(x)``.

    The supremum of ``|f′|`` over ℝ is the largest of ``|f′|`` at the real roots
    of ``f″`` and the limits of ``|f′|`` at ``±∞``. The function returns it when
    it is finite and attained at a critical point (or ``f′`` is constant).

    Parameters
    ----------
    expr : sympy expression
        ``f(x)``.
    x : sympy.Symbol
        The variable.

    Returns
    -------
    GammaH

    Raises
    ------
    TypeError
        If ``x`` is not a SymPy symbol, or ``expr`` is not a SymPy expression.
    ValueError
        If ``expr`` does not depend on ``x`` or has other free symbols; if
        ``f′`` is a constant that is not a finite real number; if the critical points of ``f′``
        are not a finite set SymPy can list; if the supremum is infinite
        (``x²``); or if it is only approached at ``±∞`` and not attained
        (softplus ``log(1 + eˣ)``, whose ``f′ → 1`` as ``x → ∞``).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> gamma_h(sp.tanh(x), x).value
    1
    >>> r = gamma_h(1 / (1 + sp.exp(-x)), x)
    >>> r.value, r.argmax
    (1/4, 0)

    After Eq. 10 of the article (γ_h = 1 for tanh, 1/4 for the sigmoid).
    """
    if not isinstance(x, sp.Symbol):
        raise TypeError(f"`x` must be a sympy Symbol, got {x!r}")
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"`expr` must be a sympy expression, got {type(expr).__name__}")
    if not expr.has(x):
        raise ValueError(f"`expr` must depend on `x` = {x}, got {expr}")
    others = expr.free_symbols - {x}
    if others:
        raise ValueError(
            f"`expr` must depend on `x` = {x} only, got {expr} (free symbols {sorted(map(str, others))})"
        )
    xr = sp.Symbol(x.name, real=True)
    e = expr.xreplace({x: xr})
    d = sp.simplify(sp.diff(e, xr))
    d2 = sp.simplify(sp.diff(d, xr))
    if d2 == 0:
        value = sp.Abs(d)
        if value.has(xr):
            raise ValueError(
                f"`expr` = {expr}: f″ = 0 but |f′| = {value} still depends on x"
                " (f is not smooth: a kink or a jump)"
            )
        if not (value.is_extended_real and value.is_finite):
            raise ValueError(f"`expr` = {expr}: sup|f′| is not a finite real number, got {value}")
        return GammaH(value, sp.Integer(0), d.xreplace({xr: x}), ())
    crit = sp.solveset(d2, xr, sp.S.Reals)
    if crit is not sp.S.EmptySet and not isinstance(crit, sp.FiniteSet):
        raise ValueError(
            f"`expr` = {expr}: the critical points of f′ (roots of f″ = {d2}) are not a "
            f"finite set SymPy can list, got {crit}"
        )
    pts = () if crit is sp.S.EmptySet else tuple(sorted(crit, key=lambda p: float(p)))
    at_pts = [(sp.simplify(sp.Abs(d.subs(xr, p))), p) for p in pts]
    limits = [sp.limit(sp.Abs(d), xr, s) for s in (sp.oo, -sp.oo)]
    for lim in limits:
        if lim in (sp.oo, sp.zoo, -sp.oo) or lim.has(sp.oo, sp.zoo, sp.nan):
            raise ValueError(f"`expr` = {expr}: sup|f′| is not finite (|f′| → {lim} at ±∞)")
    best_lim = max(limits, key=float)
    if not at_pts:
        raise ValueError(
            f"`expr` = {expr}: sup|f′| = {best_lim} is approached at ±∞ but not attained"
        )
    value, where = max(at_pts, key=lambda vp: float(vp[0]))
    if float(best_lim) > float(value):
        raise ValueError(
            f"`expr` = {expr}: sup|f′| = {best_lim} is approached at ±∞ but not attained"
        )
    return GammaH(value, where, d.xreplace({xr: x}), pts)
