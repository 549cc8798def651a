"""Leaky integration (Eq. 14 of the article): the step Jacobian and its norm bound.

``h_t = α ⊙ h_{t−1} + (1 − α) ⊙ g_t`` (``α`` the retention) has
``J = diag(α) + diag(1 − α) J̃`` with ``J̃`` the non-leaky Jacobian, and

``‖J‖ ≤ ‖diag(α)‖ + ‖diag(1 − α)‖ ‖J̃‖ = max α + max(1 − α) ‖J̃‖ ≤ max α + max(1 − α) γ_W γ_h``

for ``α ∈ [0, 1]`` (triangle inequality, submultiplicativity, and
``‖diag(d)‖₂ = max|d_i|``).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ._base import Identity, cached, check_int_arg, is_zero_matrix, sym_matrix, sym_scalar
from .elman import prove_step_jacobian

__all__ = ["BOUND_STEPS", "leaky_step_bound", "prove_diag_norm", "prove_leaky_jacobian"]

BOUND_STEPS = (
    "‖diag(α) + diag(1 − α) J̃‖ ≤ ‖diag(α)‖ + ‖diag(1 − α) J̃‖ (triangle inequality)",
    "‖diag(1 − α) J̃‖ ≤ ‖diag(1 − α)‖ ‖J̃‖ (submultiplicativity)",
    "‖diag(d)‖₂ = max_i |d_i| (the singular values of diag(d) are |d_i|)",
    "with α ∈ [0, 1]: max|α| = max α and max|1 − α| = max(1 − α)",
    "‖J̃‖ ≤ γ_W γ_h (Eq. 11 with γ_W = σ_max(W_hh), γ_h = sup|f′|)",
)


def prove_leaky_jacobian(n: int = 2, form: str = "standard") -> Identity:
    """Prove that the leaky cell's Jacobian is ``diag(α) + diag(1 − α) J̃`` (abstract ``f``).

    Examples
    --------
    >>> prove_leaky_jacobian(2, "pascanu").holds
    True

    Eq. 14 of the article.
    """
    return prove_step_jacobian(n, form, True)


@cached(maxsize=8)
def prove_diag_norm(n: int = 2) -> Identity:
    """Prove that ``diag(d)ᵀ diag(d)`` has eigenvalues ``d_i²``, so ``‖diag(d)‖₂ = max|d_i|``.

    Examples
    --------
    >>> prove_diag_norm(3).holds
    True
    """
    n = check_int_arg("n", n, 1, 8)
    d = sp.symbols(f"d0:{n}", real=True)
    D = sp.diag(*d)
    lam = sp.Symbol("lambda")
    charpoly = (D.T * D).charpoly(lam).as_expr()
    target = sp.Mul(*[(lam - di**2) for di in d])
    ok, R = is_zero_matrix(sp.Matrix([charpoly - target]))
    return Identity(f"eigenvalues of diag(d)ᵀdiag(d) are d_i² (n = {n})", ok, R[0])


def leaky_step_bound(alpha: Any, gamma_w: Any, gamma_h: Any) -> Any:
    """``max α + max(1 − α) γ_W γ_h``, the bound on ``‖∂h_t/∂h_{t−1}‖`` of a leaky cell.

    Parameters
    ----------
    alpha : sequence, NumPy array or SymPy matrix of numbers or symbols
        Retention coefficients in ``[0, 1]`` (one per unit).
    gamma_w, gamma_h : number or SymPy expression
        ``σ_max(W_hh)`` and ``sup|f′|`` (``≥ 0`` when numbers).

    Numbers are ``int``, ``float``, ``Fraction`` or NumPy scalars; strings are
    never parsed (SymPy's ``sympify`` would run them as Python code).

    Returns
    -------
    sympy expression

    Raises
    ------
    TypeError
        If an argument (or an entry of ``alpha``) is a string or another
        non-numeric object.
    ValueError
        If ``alpha`` is empty or holds a number outside ``[0, 1]``, or
        ``gamma_w``/``gamma_h`` is a negative, infinite or non-real number.

    Examples
    --------
    >>> leaky_step_bound([0.5, 0.9], 2, 1)
    1.90000000000000
    """
    a = list(sym_matrix("alpha", alpha))
    if not a:
        raise ValueError("`alpha` must hold at least one coefficient, got an empty sequence")
    for v in a:
        if v.is_number and not (v.is_extended_real and 0 <= v <= 1):
            raise ValueError(f"`alpha` must lie in [0, 1], got {v}")
    gw = sym_scalar("gamma_w", gamma_w)
    gh = sym_scalar("gamma_h", gamma_h)
    for name, g in (("gamma_w", gw), ("gamma_h", gh)):
        if g.is_number and not (g.is_extended_real and g.is_finite and g >= 0):
            raise ValueError(f"`{name}` must be a finite real number >= 0, got {g}")
    return sp.Max(*a) + sp.Max(*[1 - v for v in a]) * gw * gh
