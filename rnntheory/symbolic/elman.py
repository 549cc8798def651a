"""Symbolic Elman cells and their step Jacobians (Eqs. 2a/2b, 9 and 14 of the article).

Conventions are the library's: column vectors, numerator layout
``J[a, b] = ∂h_t[a]/∂h_{t−1}[b]``.

* ``form="standard"`` (Eq. 2a): ``a = W_hh h + W_hx x + b``, ``h′ = f(a)``;
  ``J = diag(f′(a)) W_hh``.
* ``form="pascanu"``: ``h′ = W_hh f(h) + W_hx x + b``; ``J = W_hh diag(f′(h))``.
* ``leaky=True`` (Eq. 14, ``α`` the retention): ``h′ = α ⊙ h + (1 − α) ⊙ g`` with
  ``g`` the update above; ``J = diag(α) + diag(1 − α) J̃``.

The activation is an abstract ``sympy.Function('f')`` by default, so the
identities proved here hold for every differentiable ``f``.
"""

from __future__ import annotations

import math
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
    check_symbol_matrix,
    is_zero_matrix,
    sym_matrix,
    sym_scalar,
)

__all__ = [
    "ACTIVATIONS",
    "FORMS",
    "SymbolicCell",
    "activation",
    "article_eq9_matrix",
    "closed_form_jacobian",
    "elman_cell",
    "eq9_numbers",
    "fprime",
    "prove_eq9_row_reading",
    "prove_step_jacobian",
    "step_jacobian",
]

FORMS = ("standard", "pascanu")
ACTIVATIONS = ("f", "tanh", "sigmoid", "identity")
_XI = sp.Dummy("xi")


def activation(name: str = "f") -> Callable[[Any], Any]:
    """The scalar activation as a SymPy callable.

    Parameters
    ----------
    name : {"f", "tanh", "sigmoid", "identity"}
        ``"f"`` is the abstract ``sympy.Function('f')``; ``"sigmoid"`` is
        ``1/(1 + e^{−x})``.

    Returns
    -------
    callable
        Maps a SymPy expression to ``f(expression)``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the four.

    Examples
    --------
    >>> import sympy as sp
    >>> activation("sigmoid")(sp.Symbol("x"))
    1/(1 + exp(-x))
    """
    name = check_choice_arg("name", name, ACTIVATIONS)
    if name == "f":
        return sp.Function("f")
    if name == "tanh":
        return sp.tanh
    if name == "sigmoid":
        return lambda e: 1 / (1 + sp.exp(-e))
    return lambda e: e


def fprime(f: Callable[[Any], Any], arg: Any) -> Any:
    """``f′(arg)`` for a SymPy activation ``f`` (an unevaluated ``Subs`` when ``f`` is abstract).

    Examples
    --------
    >>> import sympy as sp
    >>> fprime(sp.tanh, sp.Integer(0))
    1

    ``arg`` is a number (``int``, ``float``, ``Fraction``, NumPy scalar) or a
    SymPy expression; strings are never parsed (``TypeError``).
    """
    if not callable(f) or isinstance(f, str):
        raise TypeError(f"`f` must be a SymPy function or callable, got {type(f).__name__}")
    arg = sym_scalar("arg", arg)
    if isinstance(f, sp.core.function.UndefinedFunction):
        return sp.Subs(sp.Derivative(f(_XI), _XI), _XI, arg)
    return sp.diff(f(_XI), _XI).subs(_XI, arg)


@dataclass(frozen=True)
class SymbolicCell:
    """One step of a symbolic Elman cell.

    Attributes
    ----------
    n, n_in : int
        Hidden and input sizes.
    form : str
        ``"standard"`` or ``"pascanu"``.
    leaky : bool
        Whether Eq. 14's leaky integration is applied.
    W_hh, W_hx : sympy.Matrix
        Symbol matrices ``(n, n)`` and ``(n, n_in)``, entries ``w_i_j``, ``u_i_j``.
    b, h, x : sympy.Matrix
        Column vectors of symbols: bias ``b_i``, previous state ``h_i`` (``h_{t−1}``),
        input ``x_i``.
    alpha : sympy.Matrix or None
        Retention coefficients ``alpha_i`` (leaky cells).
    f : callable
        The activation.
    arg : sympy.Matrix
        The argument of ``f``: ``a`` (standard) or ``h`` (Pascanu).
    update : sympy.Matrix
        ``h_t`` as an expression in the symbols above.
    """

    n: int
    n_in: int
    form: str
    leaky: bool
    W_hh: sp.Matrix
    W_hx: sp.Matrix
    b: sp.Matrix
    h: sp.Matrix
    x: sp.Matrix
    alpha: sp.Matrix | None
    f: Callable[[Any], Any]
    arg: sp.Matrix
    update: sp.Matrix


def elman_cell(
    n: int, *, form: str = "standard", act: str = "f", leaky: bool = False, n_in: int = 1
) -> SymbolicCell:
    """Build a symbolic Elman cell.

    Parameters
    ----------
    n : int
        Hidden units, 1 to 8.
    form : {"standard", "pascanu"}
        Eq. 2a (``h′ = f(W_hh h + W_hx x + b)``) or Pascanu's form
        (``h′ = W_hh f(h) + W_hx x + b``).
    act : {"f", "tanh", "sigmoid", "identity"}
        The activation (abstract by default).
    leaky : bool
        Apply Eq. 14: ``h′ = α ⊙ h + (1 − α) ⊙ g``.
    n_in : int
        Input size, 1 to 8.

    Returns
    -------
    SymbolicCell

    Raises
    ------
    TypeError
        On a non-integer size or a non-bool ``leaky``.
    ValueError
        On sizes out of range or an unknown ``form``/``act``.

    Examples
    --------
    >>> cell = elman_cell(1)
    >>> cell.update
    Matrix([[f(b_0 + h_0*w_0_0 + u_0_0*x_0)]])

    Eqs. 2a/2b and 14 of the article.
    """
    n = check_int_arg("n", n, 1, 8)
    n_in = check_int_arg("n_in", n_in, 1, 8)
    form = check_choice_arg("form", form, FORMS)
    leaky = check_bool_arg("leaky", leaky)
    f = activation(check_choice_arg("act", act, ACTIVATIONS))
    W = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"w_{i}_{j}", real=True))
    U = sp.Matrix(n, n_in, lambda i, j: sp.Symbol(f"u_{i}_{j}", real=True))
    b = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"b_{i}", real=True))
    h = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"h_{i}", real=True))
    x = sp.Matrix(n_in, 1, lambda i, _: sp.Symbol(f"x_{i}", real=True))
    alpha = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"alpha_{i}", real=True)) if leaky else None
    arg, g = _compose(form, f, W, U, b, h, x, alpha)
    return SymbolicCell(n, n_in, form, bool(leaky), W, U, b, h, x, alpha, f, arg, g)


def _compose(
    form: str, f: Callable[[Any], Any], W: Any, U: Any, b: Any, h: Any, x: Any, alpha: Any
) -> tuple[Any, Any]:
    """The argument of ``f`` and the update ``h_t`` of a cell with these parts."""
    if form == "standard":
        arg = W * h + U * x + b
        g = arg.applyfunc(f)
    else:
        arg = h
        g = W * h.applyfunc(f) + U * x + b
    if alpha is not None:
        g = sp.Matrix(g.rows, 1, lambda i, _: alpha[i] * h[i] + (1 - alpha[i]) * g[i])
    return arg, g


_FIELDS = ("W_hh", "W_hx", "b", "h", "x", "arg", "update")


def check_symbolic_cell(cell: Any) -> SymbolicCell:
    """``cell`` if it is a :class:`SymbolicCell` whose fields agree with each
    other (as :func:`elman_cell` builds them), else a ``TypeError`` (a field of
    the wrong type) or ``ValueError`` (sizes, shapes or expressions that do not
    fit together) naming ``cell`` and the field. Package-internal: the chain
    rule module checks its cells with it too."""
    if not isinstance(cell, SymbolicCell):
        raise TypeError(f"`cell` must be a SymbolicCell (from `elman_cell`), got {type(cell).__name__}")
    n = check_int_arg("cell.n", cell.n, 1)
    n_in = check_int_arg("cell.n_in", cell.n_in, 1)
    form = check_choice_arg("cell.form", cell.form, FORMS)
    leaky = check_bool_arg("cell.leaky", cell.leaky)
    if not callable(cell.f) or isinstance(cell.f, str | bytes):
        raise TypeError(f"`cell.f` must be a SymPy function or callable, got {type(cell.f).__name__}")
    if cell.alpha is not None and not isinstance(cell.alpha, sp.MatrixBase):
        raise TypeError(f"`cell.alpha` must be None or a SymPy matrix, got {type(cell.alpha).__name__}")
    shapes = {"W_hh": (n, n), "W_hx": (n, n_in), "b": (n, 1), "h": (n, 1), "x": (n_in, 1),
              "arg": (n, 1), "update": (n, 1)}
    for name in _FIELDS:
        check_matrix_field(f"cell.{name}", getattr(cell, name))
    if cell.alpha is not None:
        check_matrix_field("cell.alpha", cell.alpha)
    for name in _FIELDS:
        check_matrix_field(f"cell.{name}", getattr(cell, name), shapes[name])
    if leaky != (cell.alpha is not None):
        raise ValueError(
            "`cell.alpha` must be a column of retention coefficients when `cell.leaky` is True "
            f"and None when it is False, got leaky={leaky} and alpha={cell.alpha}"
        )
    if cell.alpha is not None:
        check_matrix_field("cell.alpha", cell.alpha, (n, 1))
    check_symbol_matrix(("cell.h", cell.h), ("cell.x", cell.x))
    arg, update = _compose(form, cell.f, cell.W_hh, cell.W_hx, cell.b, cell.h, cell.x, cell.alpha)
    check_matrix_field("cell.f(...)", update)
    check_same_field("cell.arg", cell.arg, arg, f"the argument of `f` in the {form} form")
    leak = "leaky " if leaky else ""
    check_same_field("cell.update", cell.update, update, f"the {leak}{form} update built from the cell's fields")
    return cell


def step_jacobian(cell: SymbolicCell) -> sp.Matrix:
    """``∂h_t/∂h_{t−1}`` of ``cell`` by ``Matrix.jacobian`` (numerator layout).

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`SymbolicCell` or one of its fields has the
        wrong type (a size that is not an int, a part that is not a SymPy matrix).
    ValueError
        If the fields of ``cell`` do not fit together: sizes below 1, shapes
        that disagree with ``n``/``n_in``, ``h`` or ``x`` not distinct symbols,
        ``alpha`` present without ``leaky`` (or missing with it), or ``arg`` and
        ``update`` not those its other fields give (as :func:`elman_cell`
        builds them).

    Examples
    --------
    >>> step_jacobian(elman_cell(1, act="identity"))
    Matrix([[w_0_0]])
    """
    check_symbolic_cell(cell)
    return cell.update.jacobian(cell.h)


def closed_form_jacobian(cell: SymbolicCell) -> sp.Matrix:
    """The closed-form step Jacobian (Eq. 9, corrected).

    ``diag(f′(a)) W_hh`` (standard), ``W_hh diag(f′(h_{t−1}))`` (Pascanu), and
    ``diag(α) + diag(1 − α) J̃`` for a leaky cell with ``J̃`` the non-leaky one.

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`SymbolicCell` or one of its fields has the
        wrong type (a size that is not an int, a part that is not a SymPy matrix).
    ValueError
        If the fields of ``cell`` do not fit together: sizes below 1, shapes
        that disagree with ``n``/``n_in``, ``h`` or ``x`` not distinct symbols,
        ``alpha`` present without ``leaky`` (or missing with it), or ``arg`` and
        ``update`` not those its other fields give (as :func:`elman_cell`
        builds them).

    Examples
    --------
    >>> closed_form_jacobian(elman_cell(1, form="pascanu", act="identity"))
    Matrix([[w_0_0]])
    """
    check_symbolic_cell(cell)
    D = sp.diag(*[fprime(cell.f, a) for a in cell.arg])
    J = D * cell.W_hh if cell.form == "standard" else cell.W_hh * D
    if cell.alpha is not None:
        A = sp.diag(*cell.alpha)
        J = A + (sp.eye(cell.W_hh.rows) - A) * J
    return J


@cached(maxsize=64)
def prove_step_jacobian(n: int, form: str = "standard", leaky: bool = False, act: str = "f") -> Identity:
    """Prove ``step_jacobian(cell) == closed_form_jacobian(cell)`` for an ``n``-unit cell.

    Parameters
    ----------
    n : int
        Hidden units (1–4 are quick).
    form, leaky, act
        As in :func:`elman_cell`.

    Returns
    -------
    Identity
        ``holds`` is true when the difference simplifies to the zero matrix.

    Examples
    --------
    >>> prove_step_jacobian(2, "pascanu").holds
    True

    Eq. 9 of the article (in its corrected form).
    """
    cell = elman_cell(n, form=form, act=act, leaky=leaky)
    ok, R = is_zero_matrix(step_jacobian(cell) - closed_form_jacobian(cell))
    lhs = {"standard": "diag(f′(a_t)) W_hh", "pascanu": "W_hh diag(f′(h_{t−1}))"}[form]
    if leaky:
        lhs = f"diag(α) + diag(1 − α) {lhs}"
    return Identity(f"∂h_t/∂h_{{t−1}} = {lhs} ({form}, n = {n}, f = {act})", ok, R)


def article_eq9_matrix(cell: SymbolicCell) -> sp.Matrix:
    """What Eq. 9 of the article writes for the step Jacobian: ``Wᵀ diag(f′(h_{t−1}))``.

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`SymbolicCell` or one of its fields has the
        wrong type (a size that is not an int, a part that is not a SymPy matrix).
    ValueError
        If the fields of ``cell`` do not fit together: sizes below 1, shapes
        that disagree with ``n``/``n_in``, ``h`` or ``x`` not distinct symbols,
        ``alpha`` present without ``leaky`` (or missing with it), or ``arg`` and
        ``update`` not those its other fields give (as :func:`elman_cell`
        builds them).

    Examples
    --------
    >>> article_eq9_matrix(elman_cell(1, act="identity"))
    Matrix([[w_0_0]])
    """
    check_symbolic_cell(cell)
    return cell.W_hh.T * sp.diag(*[fprime(cell.f, hi) for hi in cell.h])


@cached(maxsize=8)
def prove_eq9_row_reading(n: int = 2) -> Identity:
    """Prove the reading under which Eq. 9's ``Wᵀ diag(f′(h_{t−1}))`` is right.

    In the row-vector convention of Pascanu et al.'s code, Pascanu's form reads
    ``h_t = f(h_{t−1}) W + x_t U + b`` (``h`` a row). Its numerator-layout
    Jacobian ``∂h_t[a]/∂h_{t−1}[b] = W[b, a] f′(h_{t−1}[b])`` is exactly
    ``Wᵀ diag(f′(h_{t−1}))``. With ``W = W_hhᵀ`` this is the library's
    Pascanu-form Jacobian ``W_hh diag(f′(h_{t−1}))``.

    Examples
    --------
    >>> prove_eq9_row_reading(2).holds
    True
    """
    cell = elman_cell(n, form="pascanu")
    row = (cell.h.T.applyfunc(cell.f) * cell.W_hh + (cell.W_hx * cell.x).T + cell.b.T).T
    ok, R = is_zero_matrix(row.jacobian(cell.h) - article_eq9_matrix(cell))
    return Identity(
        "for the row-vector form h_t = f(h_{t−1}) W + x_t U + b, ∂h_t/∂h_{t−1} = Wᵀ diag(f′(h_{t−1}))",
        ok,
        R,
    )


def eq9_numbers(
    W: Any = ((1.0, 2.0), (0.0, 1.0)), h: Any = (0.5, -1.0), act: str = "tanh"
) -> dict[str, Any]:
    """Explicit numbers: Eq. 9 as written against the Jacobian of Eq. 2a.

    With ``W_hx x + b = 0`` the standard cell gives ``J = diag(f′(W h)) W``;
    Eq. 9 writes ``Wᵀ diag(f′(h))``. Exact SymPy values, returned as floats.

    Parameters
    ----------
    W : 2×2 nested sequence
        Recurrent weights.
    h : length-2 sequence
        The previous state ``h_{t−1}``.
    act : {"tanh", "sigmoid", "identity"}

    Returns
    -------
    dict
        ``"jacobian_eq2a"``, ``"article_eq9"``, ``"pascanu_form"`` (the
        Jacobian ``W diag(f′(h))`` of Pascanu's form), as nested lists of floats,
        and ``"max_abs_difference"`` between the first two.

    Entries are real numbers: ``int``, ``float``, ``Fraction``, NumPy scalars
    or numeric SymPy expressions (strings are never parsed).

    Raises
    ------
    TypeError
        If an entry is a string, a symbol or another non-numeric object.
    ValueError
        If ``W`` is not 2×2 or ``h`` not of length 2, an entry is not a finite
        real number, a result is beyond float64's range, or ``act`` is ``"f"``.

    Examples
    --------
    >>> d = eq9_numbers()
    >>> d["max_abs_difference"] > 1
    True
    """
    Wm = sym_matrix("W", W)
    hv = sym_matrix("h", h)
    if Wm.shape != (2, 2):
        raise ValueError(f"`W` must be 2×2, got shape {Wm.shape}")
    if hv.shape != (2, 1):
        raise ValueError(f"`h` must have length 2, got shape {hv.shape}")
    for name, M in (("W", Wm), ("h", hv)):
        for v in M:
            if not v.is_number:
                raise TypeError(f"`{name}` must hold numbers, got the expression {v}")
            if not (v.is_extended_real and v.is_finite):
                raise ValueError(f"`{name}` must hold finite real numbers, got {v}")
    act = check_choice_arg("act", act, ("tanh", "sigmoid", "identity"))
    f = activation(act)
    Wm = Wm.applyfunc(sp.nsimplify)
    hv = hv.applyfunc(sp.nsimplify)
    true = sp.diag(*[fprime(f, a) for a in Wm * hv]) * Wm
    art = Wm.T * sp.diag(*[fprime(f, v) for v in hv])
    pas = Wm * sp.diag(*[fprime(f, v) for v in hv])

    def fl(M: sp.Matrix) -> list[list[float]]:
        return [[_float(M[i, j]) for j in range(2)] for i in range(2)]

    diff = max(abs(_float(v)) for v in (true - art))
    return {
        "jacobian_eq2a": fl(true),
        "article_eq9": fl(art),
        "pascanu_form": fl(pas),
        "max_abs_difference": diff,
    }


def _float(v: Any) -> float:
    """An exact SymPy number as a float, refusing one beyond float64's range."""
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"a result of `eq9_numbers` is beyond float64's range: {sp.N(v, 6)}")
    return x
