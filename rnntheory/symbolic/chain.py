"""The chain rule through time (Eqs. 6–8 of the article), proved on unrolled symbolic cells.

* Eqs. 7–8: ``∂h_T/∂h_0 = J_T J_{T−1} ⋯ J_1`` (ordered product of step Jacobians).
* Eq. 6, corrected: for ``E = Σ_t E_t(h_t)``,
  ``∂E/∂W_hh[i, j] = Σ_t Σ_{k≤t} (∂E_t/∂h_t) (∂h_t/∂h_k) (∂⁺h_k/∂W_hh[i, j])``,
  where ``∂⁺h_k/∂W`` is the *immediate* derivative (``h_{k−1}`` held fixed).
  The article's single-index form has no sum over ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from ._base import Identity, cached, check_choice_arg, check_int_arg, is_zero_matrix
from .elman import FORMS, SymbolicCell, check_symbolic_cell, closed_form_jacobian, elman_cell

__all__ = [
    "Unrolled",
    "eq6_terms",
    "prove_eq6",
    "prove_eq7_8",
    "unroll",
]


@dataclass(frozen=True)
class Unrolled:
    """A cell unrolled over ``T`` steps.

    Attributes
    ----------
    cell : SymbolicCell
        The one-step cell (its symbols ``h`` and ``x`` are the placeholders).
    h0 : sympy.Matrix
        Symbols of the initial state ``h_0`` (``s_i``).
    xs : tuple of sympy.Matrix
        Input symbols ``x_1 … x_T`` (``x_t_i``).
    states : tuple of sympy.Matrix
        ``h_0, h_1, …, h_T`` as expressions in ``h_0``, the inputs and the weights.
    """

    cell: SymbolicCell
    h0: sp.Matrix
    xs: tuple[sp.Matrix, ...]
    states: tuple[sp.Matrix, ...]

    @property
    def T(self) -> int:
        """Number of unrolled steps."""
        return len(self.xs)

    def _step(self, name: str, t: Any, low: int) -> int:
        return check_int_arg(name, t, low, self.T)

    def at(self, expr: sp.Matrix, t: int) -> sp.Matrix:
        """``expr`` (in the cell's placeholders) evaluated at step ``t``: ``h → h_{t−1}``, ``x → x_t``.

        ``t`` runs from 1 to ``T``; ``expr`` is a SymPy matrix or expression.
        """
        t = self._step("t", t, 1)
        if not isinstance(expr, sp.MatrixBase | sp.Expr):
            raise TypeError(f"`expr` must be a SymPy matrix or expression, got {type(expr).__name__}")
        c = self.cell
        rep = {c.h[i]: self.states[t - 1][i] for i in range(c.n)}
        rep.update({c.x[i]: self.xs[t - 1][i] for i in range(c.n_in)})
        return expr.xreplace(rep)

    def step_jacobian(self, t: int) -> sp.Matrix:
        """``J_t = ∂h_t/∂h_{t−1}`` in closed form, evaluated on the trajectory."""
        return self.at(closed_form_jacobian(self.cell), t)

    def product(self, t: int, k: int) -> sp.Matrix:
        """``J_t J_{t−1} ⋯ J_{k+1}`` (the identity for ``t == k``), ``0 ≤ k ≤ t ≤ T``."""
        t = self._step("t", t, 0)
        k = check_int_arg("k", k, 0, t)
        P = sp.eye(self.cell.h.rows)
        for i in range(k + 1, t + 1):
            P = self.step_jacobian(i) * P
        return P


def unroll(cell: SymbolicCell, T: int) -> Unrolled:
    """Compose ``T`` steps of ``cell`` from a symbolic ``h_0``.

    Parameters
    ----------
    cell : SymbolicCell
    T : int
        Number of steps, 1 to 6.

    Returns
    -------
    Unrolled

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`~rnntheory.symbolic.elman.SymbolicCell`
        (or a field of it has the wrong type) or ``T`` is not an int (Python
        or NumPy).
    ValueError
        If ``T`` is out of range, or the fields of ``cell`` do not fit together
        (see :func:`~rnntheory.symbolic.elman.step_jacobian`).

    Examples
    --------
    >>> u = unroll(elman_cell(1, act="identity"), 2)
    >>> sp.expand(u.states[2][0]).coeff(u.h0[0])
    w_0_0**2
    """
    check_symbolic_cell(cell)
    T = check_int_arg("T", T, 1, 6)
    n, n_in = cell.h.rows, cell.x.rows
    h0 = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"s_{i}", real=True))
    xs = tuple(
        sp.Matrix(n_in, 1, lambda i, _, t=t: sp.Symbol(f"x_{t}_{i}", real=True))
        for t in range(1, T + 1)
    )
    states = [h0]
    for t in range(T):
        rep = {cell.h[i]: states[-1][i] for i in range(n)}
        rep.update({cell.x[i]: xs[t][i] for i in range(n_in)})
        states.append(cell.update.xreplace(rep))
    return Unrolled(cell, h0, xs, tuple(states))


@cached(maxsize=16)
def prove_eq7_8(T: int = 3, n: int = 2, form: str = "standard", leaky: bool = False) -> Identity:
    """Prove ``Jacobian(h_T, h_0) = J_T ⋯ J_1`` on a ``T``-step unrolled cell (abstract ``f``).

    Parameters
    ----------
    T : int
        Steps (1–4 are quick).
    n : int
        Hidden units.
    form, leaky
        As in :func:`rnntheory.symbolic.elman.elman_cell`.

    Returns
    -------
    Identity

    Examples
    --------
    >>> prove_eq7_8(2, 2).holds
    True

    Eqs. 7–8 of the article.
    """
    form = check_choice_arg("form", form, FORMS)
    u = unroll(elman_cell(n, form=form, leaky=leaky), T)
    direct = u.states[T].jacobian(u.h0)
    ok, R = is_zero_matrix(direct - u.product(T, 0))
    return Identity(
        f"∂h_{T}/∂h_0 = J_{T} ⋯ J_1 (ordered product; {form}, n = {n}, abstract f)", ok, R
    )


def _loss_gradient(u: Unrolled, t: int) -> sp.Matrix:
    """Row vector ``∂E_t/∂h_t`` of the abstract loss ``E_t(h_t)`` at the trajectory."""
    n = u.cell.n
    ys = sp.symbols(f"y0:{n}", real=True)
    E = sp.Function(f"E_{t}")(*ys)
    return sp.Matrix(1, n, lambda _, j: sp.Subs(sp.diff(E, ys[j]), ys, tuple(u.states[t])))


@cached(maxsize=8)
def eq6_terms(T: int = 2, n: int = 2, form: str = "standard") -> dict[str, sp.Matrix]:
    """The gradient ``∂E/∂W_hh`` of ``E = Σ_t E_t(h_t)`` and the pieces of Eq. 6.

    Parameters
    ----------
    T : int
        Steps (2 or 3 are quick).
    n : int
        Hidden units.
    form : {"standard", "pascanu"}

    Returns
    -------
    dict of sympy.Matrix, each ``(n, n)``
        ``"true"`` (SymPy's derivative of the unrolled loss), ``"double_sum"``
        (corrected Eq. 6, all ``k ≤ t``), ``"diagonal"`` (only ``k = t``: no
        backpropagation through time) and ``"first"`` (only ``k = 1``).

    Examples
    --------
    >>> sorted(eq6_terms(1, 1))
    ['diagonal', 'double_sum', 'first', 'true']

    Eq. 6 of the article; Pascanu et al. 2013, Eq. 5.
    """
    T = check_int_arg("T", T, 1, 4)
    u = unroll(elman_cell(n, form=form), T)
    W = u.cell.W_hh
    ys = sp.symbols(f"y0:{n}", real=True)
    E = sum(
        (sp.Function(f"E_{t}")(*ys).xreplace(dict(zip(ys, u.states[t], strict=True))) for t in range(1, T + 1)),
        sp.Integer(0),
    )
    true = W.applyfunc(lambda w: sp.diff(E, w))
    grads = {t: _loss_gradient(u, t) for t in range(1, T + 1)}
    imm = {k: [u.at(u.cell.update.diff(w), k) for w in W] for k in range(1, T + 1)}

    def term(t: int, k: int) -> sp.Matrix:
        row = grads[t] * u.product(t, k)
        return sp.Matrix(n, n, [(row * col)[0] for col in imm[k]])

    zero = sp.zeros(n, n)
    double = sum((term(t, k) for t in range(1, T + 1) for k in range(1, t + 1)), zero)
    diagonal = sum((term(t, t) for t in range(1, T + 1)), zero)
    first = sum((term(t, 1) for t in range(1, T + 1)), zero)
    return {"true": true, "double_sum": double, "diagonal": diagonal, "first": first}


@cached(maxsize=8)
def prove_eq6(T: int = 2, n: int = 2, form: str = "standard") -> Identity:
    """Prove the corrected Eq. 6 (double sum, immediate derivative) for an abstract loss.

    Examples
    --------
    >>> prove_eq6(2, 1).holds
    True

    Eq. 6 of the article, corrected; Pascanu et al. 2013, Eqs. 5–6.
    """
    terms = eq6_terms(T, n, form)
    ok, R = is_zero_matrix(terms["true"] - terms["double_sum"])
    return Identity(
        f"∂E/∂W_hh = Σ_t Σ_(k≤t) (∂E_t/∂h_t)(∂h_t/∂h_k)(∂⁺h_k/∂W_hh) (T = {T}, n = {n}, {form})",
        ok,
        R,
    )

