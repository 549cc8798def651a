"""C30–C31: the LSTM self-loop and the GRU update gate."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory.ledger import Proof, claim


def _sig(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _params(G: int, n: int, gate: int, bias: float, rng: Any) -> dict[str, np.ndarray]:
    p = {
        "weight_ih": 0.5 * rng.normal(size=(G * n, 1)),
        "weight_hh": 0.5 * rng.normal(size=(G * n, n)),
        "bias_ih": 0.5 * rng.normal(size=G * n),
        "bias_hh": np.zeros(G * n),
    }
    p["bias_ih"][gate * n : (gate + 1) * n] = bias
    p["weight_ih"][gate * n : (gate + 1) * n] = 0.0
    p["weight_hh"][gate * n : (gate + 1) * n] = 0.0
    return p


@claim(
    "C30",
    claim="LSTM gates create a linear self-loop that carries information indefinitely",
    where="LSTM paragraph",
    method="symbolic identity + numeric check",
)
def c30() -> Proof:
    import sympy as sp

    from rnntheory.symbolic.gated import gated_cell, lambdify_cell, prove_lstm_direct_path

    ids = [prove_lstm_direct_path(1), prove_lstm_direct_path(2)]
    # The 1997 cell: no forget gate, c_t = c_{t−1} + i ⊙ g.
    cell = gated_cell("lstm", 1)
    c = cell.state[1]
    cec = sp.diff(c + cell.gates["i"][0] * cell.gates["g"][0], c) == 1
    fns = lambdify_cell(gated_cell("lstm", 2))
    rng = np.random.default_rng(30)
    worst = 0.0
    for b in (5.0, 10.0):
        p = _params(4, 2, 1, b, rng)
        x, h, cc = rng.normal(size=1), rng.normal(size=2), rng.normal(size=2)
        J = fns.jacobian(p, x, h, cc)
        f = fns.gates(p, x, h, cc)["f"]
        worst = max(worst, float(np.max(np.abs(J[2:, 2:] - np.diag(f)))), float(np.max(np.abs(f - _sig(b)))))
    lines = []
    for b in (5.0, 10.0):
        f = _sig(b)
        lines.append(
            f"f = σ({b:g}) = 1 − {1 - f:.4g}: f¹⁰⁰ = {f ** 100:.4g}, f¹⁰⁰⁰ = {f ** 1000:.4g}, "
            f"steps to decay by 1/e: {-1 / np.log(f):.4g}"
        )
    ok = all(i.holds for i in ids) and cec and worst < 1e-12
    return Proof(
        "holds with conditions",
        "The direct path of the cell state is ∂c_t/∂c_{t−1} = diag(f_t) (PyTorch's cell, no "
        "peepholes). It is the identity only when f_t = 1 exactly, as in the 1997 LSTM (constant "
        "error carousel of weight 1, no forget gate): then information and gradient along c are "
        "carried unchanged for any number of steps. A sigmoid forget gate is never exactly 1; with "
        "f = 1 − ε the carried signal decays as (1 − ε)^t, slowly but not indefinitely. The "
        "other paths (through h_{t−1} and the gates) can add or remove more.",
        (*tuple(f"SymPy: {i.statement}: {i.holds}" for i in ids), f"SymPy: without a forget gate (c_t = c_{{t−1}} + i g), ∂c_t/∂c_{{t−1}} = 1: {cec}", "numeric: lambdified 2-unit LSTMCell, forget bias 5 and 10 (other weights random): the " f"c→c block of the step Jacobian against diag(f): {'below 1e-12' if worst < 1e-12 else f'{worst:.1e}'}", *lines),
        bool(ok),
    )


@claim(
    "C31",
    claim="GRU's two gates let information flow indefinitely",
    where="GRU paragraph",
    method="symbolic identity + numeric check",
)
def c31() -> Proof:
    from rnntheory.symbolic.gated import gated_cell, lambdify_cell, prove_gru_jacobian

    ids = [prove_gru_jacobian(1), prove_gru_jacobian(2)]
    fns = lambdify_cell(gated_cell("gru", 2))
    rng = np.random.default_rng(31)
    lines = []
    ratios = []
    for b in (5.0, 10.0):
        p = _params(3, 2, 1, b, rng)
        x, h = rng.normal(size=1), rng.normal(size=2)
        J = fns.jacobian(p, x, h)
        z = fns.gates(p, x, h)["z"]
        dev = float(np.max(np.abs(J - np.diag(z))))
        ratios.append(dev / (1 - _sig(b)))
        lines.append(
            f"z = σ({b:g}) = 1 − {1 - _sig(b):.4g}: max|∂h_t/∂h_(t−1) − diag(z)| = {dev:.3g}; "
            f"z¹⁰⁰⁰ = {_sig(b) ** 1000:.4g}"
        )
    ok = all(i.holds for i in ids) and max(ratios) < 10.0
    return Proof(
        "holds with conditions",
        "∂h_t/∂h_{t−1} = diag(z) + diag(1 − z) ∂n/∂h + diag(h − n) diag(z(1 − z)) W_hz, so as the "
        "update gate z → 1 it tends to diag(z) → I (the deviation is O(1 − z)): the state is copied "
        "and the gradient passes unchanged. A sigmoid never gives z = 1 exactly, so the copy decays "
        "as z^t; and at z = 1 nothing new is written. 'Indefinitely' holds only in that limit.",
        tuple(f"SymPy: {i.statement}: {i.holds}" for i in ids)
        + tuple(lines)
        + ("the deviation divided by 1 − z stays below 10 for both biases: "
           f"{max(ratios) < 10.0}",),
        bool(ok),
    )
