"""C01, C03–C05: the model (Eqs. 1–3), the output error, Eq. 5 and Eq. 6."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array


def _below(x: float, tol: float) -> str:
    return f"below {tol:.0e}" if x < tol else f"{x:.2e} (too large)"


@claim(
    "C01",
    claim="The model h_t = f_W(h_{t−1}, x_t), Eqs. 2a/2b/3 and the shapes of the weights",
    where="Eqs. 1–3",
    method="symbolic identity + numeric check",
)
def c01() -> Proof:
    import sympy as sp

    from rnntheory.symbolic.elman import elman_cell
    from rnntheory.symbolic.softmax import softmax

    n, n_in, C = 3, 2, 4
    cell = elman_cell(n, n_in=n_in, act="tanh")
    shapes_ok = (
        cell.W_hh.shape == (n, n) and cell.W_hx.shape == (n, n_in)
        and cell.b.shape == (n, 1) and cell.update.shape == (n, 1)
    )
    # Eq. 2b is Eq. 2a with f = tanh: substitute tanh into the abstract cell.
    abstract = elman_cell(n, n_in=n_in)
    f = sp.Function("f")
    eq2b = abstract.update.replace(f, sp.tanh)
    eq2b_ok = (eq2b - cell.update).is_zero_matrix
    # Eq. 3: W_yh ∈ R^{C×n}, b_y ∈ R^C, and the softmax is a probability vector.
    W_yh = sp.Matrix(C, n, lambda i, j: sp.Symbol(f"v_{i}_{j}", real=True))
    b_y = sp.Matrix(C, 1, lambda i, _: sp.Symbol(f"c_{i}", real=True))
    y = softmax(W_yh * cell.h + b_y)
    eq3_ok = y.shape == (C, 1) and sp.simplify(sum(y) - 1) == 0
    # The library's forward pass is the symbolic update, step by step.
    rng = np.random.default_rng(1)
    W, U, b = rng.normal(size=(n, n)), rng.normal(size=(n, n_in)), rng.normal(size=n)
    model = ElmanRNN(W, U, b, rng.normal(size=(C, n)), rng.normal(size=C), activation="tanh")
    x = rng.normal(size=(5, n_in))
    tr = model.forward(x)
    step = sp.lambdify([*cell.W_hh, *cell.W_hx, *cell.b, *cell.h, *cell.x], cell.update, "numpy")
    err = max(
        float(np.max(np.abs(np.ravel(step(*W.ravel(), *U.ravel(), *b, *tr.h[t], *x[t])) - tr.h[t + 1])))
        for t in range(5)
    )
    num_ok = err < 1e-12
    return Proof(
        "holds",
        "h_t = f(W_hh h_{t−1} + W_hx x_t + b_h) with W_hh ∈ R^{n×n}, W_hx ∈ R^{n×n_in}, "
        "b_h ∈ R^n (Eq. 2b is Eq. 2a with f = tanh), and ŷ_t = softmax(W_yh h_t + b_y) with "
        "W_yh ∈ R^{C×n}, b_y ∈ R^C is a probability vector.",
        (
            f"SymPy: the cell's matrices and update have the stated shapes (n = {n}, n_in = {n_in}): {shapes_ok}",
            f"SymPy: Eq. 2a with f = tanh is Eq. 2b: {eq2b_ok}",
            f"SymPy: softmax(W_yh h + b_y) has shape ({C}, 1) and sums to 1: {eq3_ok}",
            f"numeric: the library's forward pass against the lambdified Eq. 2b over 5 steps: {_below(err, 1e-12)}",
        ),
        bool(shapes_ok and eq2b_ok and eq3_ok and num_ok),
    )


@claim(
    "C03",
    claim="The per-step error is ŷ_t − y_t",
    where="before Eq. 4",
    method="symbolic identity + numeric check",
)
def c03() -> Proof:
    from rnntheory.symbolic.softmax import (
        prove_mse_linear_gradient,
        prove_xent_gradient,
        softmax_mse_gradient,
    )

    xent = prove_xent_gradient(3)
    mse = prove_mse_linear_gradient(3)
    rng = np.random.default_rng(3)
    model = ElmanRNN.init(2, 3, 3, scheme="gaussian", seed=3)
    x = rng.normal(size=(1, 2))
    y_out = model.forward(x).y
    assert y_out is not None
    z = y_out[0]
    p = np.exp(z - z.max())
    p /= p.sum()
    _, g = model.value_and_grad(x, np.array([1]), loss="xent")
    err_x = float(np.max(np.abs(g.b_y - (p - np.eye(3)[1]))))
    target = rng.normal(size=(1, 3))
    _, g2 = model.value_and_grad(x, target, loss="mse")
    err_m = float(np.max(np.abs(g2.b_y - (z - target[0]))))
    grad, e = softmax_mse_gradient([1, 0, -1], [0, 1, 0])
    gap = max(abs(float(a - b)) for a, b in zip(grad, e, strict=True))
    ok = xent.holds and mse.holds and err_x < 1e-12 and err_m < 1e-12 and gap > 0.1
    return Proof(
        "holds with conditions",
        "ŷ_t − y_t is the gradient of the per-step loss with respect to the output "
        "pre-activation z_t when the output and loss are matched: softmax with cross-entropy "
        "(y one-hot) or a linear output with ½‖ŷ − y‖². For other pairings it is not: with "
        "a softmax and the squared error the gradient is J_softmaxᵀ(ŷ − y).",
        (
            f"SymPy: {xent.statement}: {xent.holds}",
            f"SymPy: {mse.statement}: {mse.holds}",
            f"numeric: ElmanRNN.value_and_grad, T = 1: ∂E/∂b_y − (softmax(z) − e_y): {_below(err_x, 1e-12)}; "
            f"∂E/∂b_y − (z − target) for loss='mse': {_below(err_m, 1e-12)}",
            f"softmax + squared error at z = (1, 0, −1), y = e_1: the gradient differs from ŷ − y "
            f"by {gap:.4f} (max entry)",
        ),
        bool(ok),
    )


@claim(
    "C04",
    claim="∂E/∂W = Σ_t ∂E_t/∂W",
    where="Eq. 5",
    method="symbolic identity + numeric check",
)
def c04() -> Proof:
    import sympy as sp

    w = sp.Symbol("w", real=True)
    Es = [sp.Function(f"E_{t}")(w) for t in range(1, 5)]
    sym_ok = sp.expand(sp.diff(sum(Es), w) - sum(sp.diff(E, w) for E in Es)) == 0
    model = ElmanRNN.init(2, 4, 3, scheme="gaussian", seed=4, scale=1.2)
    rng = np.random.default_rng(4)
    T = 6
    x = rng.normal(size=(T, 2))
    y = rng.integers(0, 3, size=T)
    _, full = model.value_and_grad(x, y)
    parts = [model.value_and_grad(x, y, mask=np.eye(T)[t])[1] for t in range(T)]
    err = max(
        float(np.max(np.abs(sum(getattr(p, k) for p in parts) - getattr(full, k))))
        for k in ("W_hh", "W_hx", "b_h", "W_yh", "b_y")
    )
    return Proof(
        "holds",
        "E = Σ_t E_t, and differentiation is linear, so ∂E/∂W = Σ_t ∂E_t/∂W for every parameter.",
        (
            f"SymPy: d/dw Σ_t E_t(w) = Σ_t dE_t/dw for 4 abstract E_t: {sym_ok}",
            f"numeric: the full BPTT gradient against the sum of {T} one-step-masked gradients "
            f"(every parameter): {_below(err, 1e-12)}",
        ),
        bool(sym_ok and err < 1e-12),
    )


# ----------------------------------------------------------------------------- C05
def _eq6_pieces(model: ElmanRNN, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """True ∂E/∂W_hh and the three readings of Eq. 6, from library code."""
    T = x.shape[0]
    _, g = model.value_and_grad(x, y)
    tr = model.forward(x)
    # ∂E_t/∂h_t: the flow of the loss restricted to step t (mask e_t), at step t.
    delta = [model.value_and_grad(x, y, mask=np.eye(T)[t - 1])[1].flow[t] for t in range(1, T + 1)]
    fp = model.activation.fprime(tr.a)  # f′(a_k), row k−1

    def term(t: int, k: int) -> np.ndarray:
        row = delta[t - 1] @ jacobians.product(model, tr, t, k)
        return np.outer(fp[k - 1] * row, tr.h[k - 1])  # immediate ∂⁺h_k/∂W_hh

    n = model.n_hidden
    double = sum((term(t, k) for t in range(1, T + 1) for k in range(1, t + 1)), np.zeros((n, n)))
    diag = sum((term(t, t) for t in range(1, T + 1)), np.zeros((n, n)))
    first = sum((term(t, 1) for t in range(1, T + 1)), np.zeros((n, n)))
    return {"true": g.W_hh, "double_sum": double, "k_equals_t": diag, "k_equals_1": first}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _c05_model(d: dict[str, Any]) -> tuple[ElmanRNN, np.ndarray, np.ndarray]:
    model = ElmanRNN(as_array(d["W_hh"]), as_array(d["W_hx"]), np.zeros(2),
                     as_array(d["W_yh"]), np.zeros(2), activation="tanh")
    return model, as_array(d["x"]), np.asarray(d["y"], dtype=np.int64)


def search_c05() -> dict[str, Any]:
    """Hypothesis search: a 2-unit tanh RNN (T = 3) where both single-index readings of
    Eq. 6 are furthest from the true gradient (relative error, the smaller of the two)."""
    from hypothesis import example, given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}
    el = st.floats(-1.5, 1.5, allow_nan=False, allow_subnormal=False)

    @settings(max_examples=150, database=None, deadline=None, derandomize=True)
    @example(np.array([[0.5, 1.0], [-1.0, 0.5]]), np.array([[1.0, 0.0], [0.0, 1.0]]),
             np.array([[1.0, -1.0], [0.5, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]]))
    @given(hnp.arrays(np.float64, (2, 2), elements=el), hnp.arrays(np.float64, (2, 2), elements=el),
           hnp.arrays(np.float64, (2, 2), elements=el), hnp.arrays(np.float64, (3, 2), elements=el))
    def explore(W, U, V, x):
        d = {"W_hh": W, "W_hx": U, "W_yh": V, "x": x, "y": [0, 1, 0]}
        model, xx, yy = _c05_model(d)
        pieces = _eq6_pieces(model, xx, yy)
        if np.linalg.norm(pieces["true"]) < 1e-3:
            return
        score = min(_rel(pieces["k_equals_t"], pieces["true"]), _rel(pieces["k_equals_1"], pieces["true"]))
        target(score)
        if score > best.get("score", -1.0):
            best.update(d, score=score)

    explore()
    return {k: best[k] for k in ("W_hh", "W_hx", "W_yh", "x", "y")}


@claim(
    "C05",
    claim="∂E/∂W = Σ_t ∂E/∂y_t · ∂y_t/∂h_t · ∂h_t/∂h_k · ∂h_k/∂W",
    where="Eq. 6",
    method="symbolic identity + counterexample",
    search=search_c05,
)
def c05() -> Proof:
    from rnntheory.symbolic.chain import eq6_terms, prove_eq6

    sym = prove_eq6(2, 2)
    terms = eq6_terms(2, 2)
    diag_differs = not (terms["true"] - terms["diagonal"]).applyfunc(lambda e: e.expand()).is_zero_matrix
    d = load_counterexample("C05")
    model, x, y = _c05_model(d)
    p = _eq6_pieces(model, x, y)
    e_double = _rel(p["double_sum"], p["true"])
    e_diag = _rel(p["k_equals_t"], p["true"])
    e_first = _rel(p["k_equals_1"], p["true"])
    ok = sym.holds and diag_differs and e_double < 1e-10 and e_diag > 0.05 and e_first > 0.05
    return Proof(
        "false",
        "Eq. 6 needs a second sum and the immediate derivative: for E = Σ_t E_t(h_t), "
        "∂E/∂W = Σ_t Σ_{k=1}^{t} (∂E_t/∂h_t)(∂h_t/∂h_k)(∂⁺h_k/∂W), where ∂⁺h_k/∂W "
        "differentiates step k alone (h_{k−1} held fixed) and ∂h_t/∂h_k = J_t⋯J_{k+1}. "
        "With one free index k the expression is not the gradient (it is one column or the "
        "diagonal of that double sum); only with the total derivative dh_t/dW and k = t does "
        "it reduce to Eq. 5, and then the Jacobian product does not appear.",
        (
            f"SymPy (abstract f and E_t, n = 2, T = 2): {sym.statement}: {sym.holds}",
            f"SymPy: the k = t terms alone differ from ∂E/∂W_hh: {diag_differs}",
            f"numeric (stored 2-unit tanh RNN, T = {x.shape[0]}, softmax cross-entropy): the double sum "
            f"built from library Jacobians matches value_and_grad's ∂E/∂W_hh: relative error {_below(e_double, 1e-10)}",
            f"relative error of the single-index readings: k = t (immediate derivative): {e_diag:.4f}; "
            f"k = 1 fixed: {e_first:.4f} (h_0 = 0, so every k = 1 term vanishes)",
        ),
        bool(ok),
        Counterexample(
            "A 2-unit tanh RNN with a softmax readout over 3 steps: both single-index readings of "
            "Eq. 6 (k = t, or k = 1) give a matrix different from the BPTT gradient ∂E/∂W_hh.",
            {k: d[k] for k in ("W_hh", "W_hx", "W_yh", "x", "y")},
            {"relative_error_k_equals_t": e_diag, "relative_error_k_equals_1": e_first,
             "relative_error_double_sum": e_double},
        ),
    )
