"""LSTM and GRU single steps in PyTorch's conventions, and their step Jacobians.

``torch.nn.LSTMCell``: ``gates = W_ih x + b_ih + W_hh h + b_hh`` split in the order
``i, f, g, o``; ``i, f, o = σ(·)``, ``g = tanh(·)``; ``c′ = f ⊙ c + i ⊙ g``,
``h′ = o ⊙ tanh(c′)``.

``torch.nn.GRUCell``: rows of ``W_ih``/``W_hh`` in the order ``r, z, n``;
``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h′ = (1 − z) ⊙ n + z ⊙ h``.

Parameters are named as PyTorch names them: ``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.core.function import ArgumentIndexError

from ._base import (
    Identity,
    cached,
    check_choice_arg,
    check_int_arg,
    check_matrix_field,
    check_same_field,
    check_symbol_matrix,
    is_zero_matrix,
    sym_scalar,
)

__all__ = [
    "GatedCell",
    "GatedFunctions",
    "gated_cell",
    "gru_closed_form_jacobian",
    "lambdify_cell",
    "prove_gru_jacobian",
    "prove_lstm_direct_path",
    "sigmoid",
    "step_jacobian",
]

KINDS = ("lstm", "gru")


class _ArgumentIndexError(ArgumentIndexError):
    """SymPy's error for a derivative by an argument a function does not have,
    worded with the argument's name."""

    def __str__(self) -> str:
        return f"`argindex` must be 1 (`sigmoid` has one argument), got {self.args[1]!r:.60}"


class sigmoid(sp.Function):
    """The logistic function ``σ(x) = 1/(1 + e^{−x})`` with ``σ′ = σ (1 − σ)``.

    Kept unevaluated so that Jacobians stay polynomial in the gate values
    (fast to simplify); ``.rewrite(sp.exp)`` gives the explicit form.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(sigmoid(x), x)
    (1 - sigmoid(x))*sigmoid(x)
    >>> sigmoid(x).rewrite(sp.exp)
    1/(1 + exp(-x))
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Function.__new__ sympifies its arguments, which runs a string as Python:
        # every argument goes through sym_scalar (numbers and SymPy expressions only).
        checked = []
        for a in args:
            if isinstance(a, str | bytes):
                raise TypeError(
                    f"`sigmoid` takes a SymPy expression or a number as its argument `arg`, "
                    f"got the string {a!r:.60}"
                )
            checked.append(sym_scalar("arg", a))
        return super().__new__(cls, *checked, **kwargs)

    @classmethod
    def eval(cls, arg: Any) -> Any:
        """``σ(0) = 1/2``; any other argument stays unevaluated (``None``).

        ``arg`` is a number or a SymPy expression (a string raises a
        ``TypeError`` naming ``arg``).
        """
        arg = sym_scalar("arg", arg)
        if arg.is_zero:
            return sp.Rational(1, 2)
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        """``σ′ = σ (1 − σ)``; ``argindex`` must be 1 (σ has one argument)."""
        if isinstance(argindex, bool | np.bool_) or not isinstance(argindex, int | np.integer) or argindex != 1:
            raise _ArgumentIndexError(self, argindex)
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, arg: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sp.exp(-arg))


def _np_sigmoid(x: Any) -> Any:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_MODULES = [{"sigmoid": _np_sigmoid}, "numpy"]
_sigmoid = sigmoid


@dataclass(frozen=True)
class GatedCell:
    """One symbolic step of an LSTM or GRU cell.

    Attributes
    ----------
    kind : str
        ``"lstm"`` or ``"gru"``.
    n, n_in : int
        Hidden and input sizes.
    params : dict of sympy.Matrix
        ``weight_ih`` ``(G n, n_in)``, ``weight_hh`` ``(G n, n)``, ``bias_ih``,
        ``bias_hh`` ``(G n, 1)`` with ``G = 4`` (LSTM) or ``3`` (GRU).
    x : sympy.Matrix
        Input ``(n_in, 1)``.
    state : sympy.Matrix
        ``h`` (GRU) or ``(h; c)`` stacked (LSTM), the previous state.
    new_state : sympy.Matrix
        ``h′`` (GRU) or ``(h′; c′)`` (LSTM).
    gates : dict of sympy.Matrix
        ``i, f, g, o`` (LSTM) or ``r, z, n`` (GRU), as expressions.
    """

    kind: str
    n: int
    n_in: int
    params: dict[str, sp.Matrix]
    x: sp.Matrix
    state: sp.Matrix
    new_state: sp.Matrix
    gates: dict[str, sp.Matrix]


def gated_cell(kind: str, n: int = 1, n_in: int = 1) -> GatedCell:
    """Build one step of ``torch.nn.LSTMCell`` or ``torch.nn.GRUCell`` symbolically.

    Parameters
    ----------
    kind : {"lstm", "gru"}
    n : int
        Hidden units, 1 or 2.
    n_in : int
        Input size, 1 or 2.

    Returns
    -------
    GatedCell

    Raises
    ------
    TypeError
        On a size that is not an int (Python or NumPy).
    ValueError
        On an unknown ``kind`` or sizes out of range.

    Examples
    --------
    >>> cell = gated_cell("lstm")
    >>> cell.new_state.shape
    (2, 1)

    Hochreiter & Schmidhuber 1997 (with the forget gate of Gers et al. 2000);
    Cho et al. 2014; PyTorch's LSTMCell/GRUCell.
    """
    kind = check_choice_arg("kind", kind, KINDS)
    n = check_int_arg("n", n, 1, 2)
    n_in = check_int_arg("n_in", n_in, 1, 2)
    G = _G[kind]

    def mat(name: str, r: int, c: int) -> sp.Matrix:
        return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))

    params = {
        "weight_ih": mat("Wi", G * n, n_in),
        "weight_hh": mat("Wh", G * n, n),
        "bias_ih": mat("bi", G * n, 1),
        "bias_hh": mat("bh", G * n, 1),
    }
    x = mat("x", n_in, 1)
    state = mat("h", n, 1).col_join(mat("c", n, 1)) if kind == "lstm" else mat("h", n, 1)
    new_state, gates = _compose(kind, n, params, x, state)
    return GatedCell(kind, n, n_in, params, x, state, new_state, gates)


_G = {"lstm": 4, "gru": 3}
_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def _compose(
    kind: str, n: int, params: dict[str, Any], x: Any, state: Any
) -> tuple[Any, dict[str, Any]]:
    """The new state and the gates of one ``kind`` step with these parts
    (``state`` is ``h``, or ``(h; c)`` stacked for an LSTM)."""
    h = state[:n, :]
    gi = params["weight_ih"] * x + params["bias_ih"]
    gh = params["weight_hh"] * h + params["bias_hh"]

    def blk(M: sp.Matrix, k: int) -> sp.Matrix:
        return M[k * n : (k + 1) * n, :]

    if kind == "lstm":
        c = state[n:, :]
        pre = gi + gh
        i, f, g, o = (blk(pre, k) for k in range(4))
        i, f, o = (m.applyfunc(_sigmoid) for m in (i, f, o))
        g = g.applyfunc(sp.tanh)
        c_new = f.multiply_elementwise(c) + i.multiply_elementwise(g)
        h_new = o.multiply_elementwise(c_new.applyfunc(sp.tanh))
        return h_new.col_join(c_new), {"i": i, "f": f, "g": g, "o": o}
    r = (blk(gi, 0) + blk(gh, 0)).applyfunc(_sigmoid)
    z = (blk(gi, 1) + blk(gh, 1)).applyfunc(_sigmoid)
    nn = (blk(gi, 2) + r.multiply_elementwise(blk(gh, 2))).applyfunc(sp.tanh)
    h_new = (sp.ones(n, 1) - z).multiply_elementwise(nn) + z.multiply_elementwise(h)
    return h_new, {"r": r, "z": z, "n": nn}


def _check_cell(cell: Any) -> GatedCell:
    """``cell`` if it is a :class:`GatedCell` whose fields agree with each other
    (as :func:`gated_cell` builds them), else raise naming ``cell`` and the field.

    Every part is checked to be a SymPy matrix first (``lambdify`` would run a
    string in its place as code): a ``TypeError``. Then the sizes, the keys of
    ``params`` and ``gates``, the shapes, the state's symbols and the new state
    and gates against those the parameters give: a ``ValueError``.
    """
    if not isinstance(cell, GatedCell):
        raise TypeError(f"`cell` must be a GatedCell (from `gated_cell`), got {type(cell).__name__}")
    for field in ("params", "gates"):
        value = getattr(cell, field)
        if not isinstance(value, dict):
            raise TypeError(
                f"`cell.{field}` must be a dict of SymPy matrices keyed by name, got {type(value).__name__}"
            )
    parts = {"x": cell.x, "state": cell.state, "new_state": cell.new_state}
    parts.update({f"params[{k!r}]": v for k, v in cell.params.items()})
    parts.update({f"gates[{k!r}]": v for k, v in cell.gates.items()})
    for name, part in parts.items():
        check_matrix_field(f"cell.{name}", part)
    kind = check_choice_arg("cell.kind", cell.kind, KINDS)
    n = check_int_arg("cell.n", cell.n, 1)
    n_in = check_int_arg("cell.n_in", cell.n_in, 1)
    for field, keys in (("params", _PARAMS), ("gates", _GATES[kind])):
        got = list(getattr(cell, field))
        if len(got) != len(keys) or set(got) != set(keys):
            raise ValueError(f"`cell.{field}` must have the keys {keys} for kind {kind!r}, got {got}")
    G, S = _G[kind], (2 if kind == "lstm" else 1)
    shapes = {"weight_ih": (G * n, n_in), "weight_hh": (G * n, n), "bias_ih": (G * n, 1), "bias_hh": (G * n, 1)}
    for k, shape in shapes.items():
        check_matrix_field(f"cell.params[{k!r}]", cell.params[k], shape)
    check_matrix_field("cell.x", cell.x, (n_in, 1))
    check_matrix_field("cell.state", cell.state, (S * n, 1))
    check_matrix_field("cell.new_state", cell.new_state, (S * n, 1))
    for k in _GATES[kind]:
        check_matrix_field(f"cell.gates[{k!r}]", cell.gates[k], (n, 1))
    check_symbol_matrix(("cell.state", cell.state), ("cell.x", cell.x))
    new_state, gates = _compose(kind, n, cell.params, cell.x, cell.state)
    check_same_field("cell.new_state", cell.new_state, new_state, f"the {kind} step of the cell's parameters")
    for k in _GATES[kind]:
        check_same_field(f"cell.gates[{k!r}]", cell.gates[k], gates[k], f"the {kind} gate {k} of the cell's parameters")
    return cell


def step_jacobian(cell: GatedCell) -> sp.Matrix:
    """``∂(new state)/∂(state)``: ``n × n`` (GRU) or ``2n × 2n`` for ``(h, c)`` (LSTM).

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`GatedCell` or one of its fields has the
        wrong type (``params``/``gates`` not dicts, a part that is not a SymPy
        matrix, a size that is not an int).
    ValueError
        If the fields of ``cell`` do not fit together: an unknown ``kind``,
        sizes below 1, missing or extra keys in ``params``/``gates``, shapes
        that disagree with ``n``/``n_in``, a state or input that is not distinct
        symbols, or a new state or gates not those the parameters give (as
        :func:`gated_cell` builds them).

    Examples
    --------
    >>> step_jacobian(gated_cell("gru")).shape
    (1, 1)
    """
    _check_cell(cell)
    return cell.new_state.jacobian(cell.state)


@cached(maxsize=4)
def prove_lstm_direct_path(n: int = 1) -> Identity:
    """Prove ``∂c_t/∂c_{t−1} = diag(f_t)`` (the c→c block of the LSTM step Jacobian).

    With ``h_{t−1}`` held fixed the only path from ``c_{t−1}`` to ``c_t`` is
    ``f ⊙ c``: PyTorch's cell has no peepholes, so the gates do not see ``c``.

    Examples
    --------
    >>> prove_lstm_direct_path(1).holds
    True

    The constant error carousel of Hochreiter & Schmidhuber 1997.
    """
    cell = gated_cell("lstm", n)
    J = step_jacobian(cell)
    block = J[n:, n:]
    ok, R = is_zero_matrix(block - sp.diag(*cell.gates["f"]))
    return Identity(f"∂c_t/∂c_(t−1) (h_(t−1) fixed) = diag(f_t) (n = {n})", ok, R)


def gru_closed_form_jacobian(cell: GatedCell) -> sp.Matrix:
    """``diag(1 − z) ∂n/∂h + diag(z) + diag(h − n) diag(z ⊙ (1 − z)) W_hz``.

    ``∂n/∂h = diag(1 − n²) [diag(W_hn h + b_hn) diag(r ⊙ (1 − r)) W_hr + diag(r) W_hn]``.

    Raises
    ------
    TypeError
        As :func:`step_jacobian`, for a ``cell`` that is not a :class:`GatedCell`
        or has a field of the wrong type.
    ValueError
        As :func:`step_jacobian`, for fields that do not fit together; and if
        ``cell`` is not a GRU cell.

    Examples
    --------
    >>> gru_closed_form_jacobian(gated_cell("gru")).shape
    (1, 1)
    """
    _check_cell(cell)
    if cell.kind != "gru":
        raise ValueError(f"`cell` must be a GRU cell, got kind {cell.kind!r}")
    n = int(cell.n)
    Wh, bh = cell.params["weight_hh"], cell.params["bias_hh"]
    W_hr, W_hz, W_hn = Wh[:n, :], Wh[n : 2 * n, :], Wh[2 * n :, :]
    b_hn = bh[2 * n :, :]
    r, z, nn = cell.gates["r"], cell.gates["z"], cell.gates["n"]
    h = cell.state

    def dg(v: sp.Matrix) -> sp.Matrix:
        return sp.diag(*v)

    one = sp.ones(n, 1)
    dr = dg(r.multiply_elementwise(one - r)) * W_hr
    dz = dg(z.multiply_elementwise(one - z)) * W_hz
    dn = dg(one - nn.applyfunc(lambda e: e**2)) * (dg(W_hn * h + b_hn) * dr + dg(r) * W_hn)
    return dg(one - z) * dn + dg(z) + dg(h - nn) * dz


@cached(maxsize=4)
def prove_gru_jacobian(n: int = 1) -> Identity:
    """Prove :func:`gru_closed_form_jacobian` equals SymPy's Jacobian.

    Examples
    --------
    >>> prove_gru_jacobian(1).holds
    True
    """
    cell = gated_cell("gru", n)
    ok, R = is_zero_matrix(step_jacobian(cell) - gru_closed_form_jacobian(cell))
    return Identity(f"GRU ∂h_t/∂h_(t−1) closed form (n = {n})", ok, R)


@dataclass(frozen=True)
class GatedFunctions:
    """NumPy functions of one gated step (from :func:`lambdify_cell`).

    Each takes ``(params, x, h)`` (GRU) or ``(params, x, h, c)`` (LSTM) with
    ``params`` a dict of arrays in PyTorch's shapes (``weight_ih (G n, n_in)``,
    ``weight_hh (G n, n)``, ``bias_ih (G n,)``, ``bias_hh (G n,)``).

    Attributes
    ----------
    step : callable
        Returns the new state: ``h′`` ``(n,)`` (GRU) or ``(h′, c′)`` (LSTM).
    jacobian : callable
        Returns the step Jacobian, ``(n, n)`` or ``(2n, 2n)``.
    gates : callable
        Returns a dict of the gate values.
    """

    step: Callable[..., Any]
    jacobian: Callable[..., Any]
    gates: Callable[..., Any]


def lambdify_cell(cell: GatedCell) -> GatedFunctions:
    """NumPy functions for ``cell``'s step, Jacobian and gates.

    Raises
    ------
    TypeError
        As :func:`step_jacobian`, for a ``cell`` that is not a :class:`GatedCell`
        or has a field of the wrong type.
    ValueError
        As :func:`step_jacobian`, for fields that do not fit together; and if
        the entries of ``cell.params`` are not distinct symbols (they are the
        functions' arguments).

    Examples
    --------
    >>> import numpy as np
    >>> fns = lambdify_cell(gated_cell("gru"))
    >>> p = {k: np.zeros((3, 1)) if k.startswith("weight") else np.zeros(3)
    ...      for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    >>> float(fns.step(p, np.zeros(1), np.ones(1))[0])  # z = n = 1/2 and 0: h′ = h/2
    0.5
    """
    from .._validation import as_float_array

    _check_cell(cell)
    names = _PARAMS
    check_symbol_matrix(*[(f"cell.params[{k!r}]", cell.params[k]) for k in names],
                        ("cell.x", cell.x), ("cell.state", cell.state))
    syms = [s for k in names for s in cell.params[k]] + list(cell.x) + list(cell.state)
    f_step = sp.lambdify(syms, cell.new_state, _MODULES)
    f_jac = sp.lambdify(syms, step_jacobian(cell), _MODULES)
    gate_names = tuple(cell.gates)
    f_gates = sp.lambdify(syms, [cell.gates[g] for g in gate_names], _MODULES)
    n = int(cell.n)

    f64 = np.dtype(np.float64)
    n_states = 2 if cell.kind == "lstm" else 1
    state_names = ("h", "c")[:n_states]

    def pack(params: dict[str, Any], x: Any, *state: Any) -> list[float]:
        if not isinstance(params, dict):
            raise TypeError(f"`params` must be a dict of arrays keyed {names}, got {type(params).__name__}")
        if len(state) != n_states:
            raise TypeError(
                f"a {cell.kind} step takes {n_states} state array(s) {state_names}, got {len(state)}"
            )
        vals: list[float] = []
        for k in names:
            if k not in params:
                raise ValueError(f"`params` must hold {names}, missing {k!r}")
            want = tuple(cell.params[k].shape)
            a = as_float_array(f"params[{k!r}]", params[k], dtype=f64)
            if a.size != want[0] * want[1] or a.ndim > 2:
                raise ValueError(f"`params[{k!r}]` must have shape {want}, got shape {a.shape}")
            vals += a.ravel().tolist()
        for name, v, size in (("x", x, cell.n_in), *zip(state_names, state, (n,) * n_states, strict=True)):
            a = as_float_array(name, v, dtype=f64)
            if a.size != size:
                raise ValueError(f"`{name}` must have {size} entries, got shape {a.shape}")
            vals += a.ravel().tolist()
        return vals

    def step(params: dict[str, Any], x: Any, *state: Any) -> Any:
        out = np.asarray(f_step(*pack(params, x, *state)), float).ravel()
        return (out[:n], out[n:]) if cell.kind == "lstm" else out

    def jac(params: dict[str, Any], x: Any, *state: Any) -> Any:
        return np.asarray(f_jac(*pack(params, x, *state)), float)

    def gates(params: dict[str, Any], x: Any, *state: Any) -> dict[str, Any]:
        vals = f_gates(*pack(params, x, *state))
        return {g: np.asarray(v, float).ravel() for g, v in zip(gate_names, vals, strict=True)}

    return GatedFunctions(step, jac, gates)
