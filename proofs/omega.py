"""C29: Pascanu's vanishing-gradient regularizer Ω (Eqs. 15–16)."""

from __future__ import annotations

import numpy as np

from rnntheory._oracles import central_jacobian
from rnntheory.ledger import Proof, claim


def _fd_check(form: str, squared: bool, seed: int) -> float:
    from rnntheory.symbolic.omega import omega_functions

    val, grad = omega_functions(2, form, squared=squared, act="tanh")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(5):
        W, h, c, v = rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=2), rng.normal(size=2)
        G = np.asarray(grad(W, h, c, v), dtype=float)

        def omega_k(M: np.ndarray, h: np.ndarray = h, c: np.ndarray = c, v: np.ndarray = v) -> float:
            return float(val(M, h, c, v))

        F = central_jacobian(omega_k, W, eps=1e-6)
        worst = max(worst, float(np.max(np.abs(G - F)) / max(1e-3, float(np.max(np.abs(F))))))
    return worst


@claim(
    "C29",
    claim="The regularizer Ω of Eqs. 15–16",
    where="Eqs. 15–16",
    method="symbolic identity + numeric check",
)
def c29() -> Proof:
    from rnntheory.symbolic.elman import prove_eq9_row_reading
    from rnntheory.symbolic.omega import prove_omega_gradient

    ids = [prove_omega_gradient(2, "pascanu", False), prove_omega_gradient(2, "pascanu", True),
           prove_omega_gradient(2, "standard", False)]
    row = prove_eq9_row_reading(2)
    fd = max(_fd_check("pascanu", False, 29), _fd_check("standard", False, 30), _fd_check("pascanu", True, 31))
    # The article's factor read with W = W_hh (column convention) measures another vector.
    W = np.array([[1.0, 2.0], [0.0, 1.0]])
    d = 1.0 / np.cosh(np.array([0.5, -1.0])) ** 2
    v = np.array([1.0, 0.0])
    right = float(np.linalg.norm(v @ W * d) / np.linalg.norm(v))
    as_read = float(np.linalg.norm(v @ W.T * d) / np.linalg.norm(v))
    ok = all(i.holds for i in ids) and row.holds and fd < 1e-6 and abs(right - as_read) > 0.1
    return Proof(
        "holds with conditions",
        "Ω = Σ_k Ω_k with Ω_k = (‖v J_{k+1}‖/‖v‖ − 1)², v = ∂E/∂h_{k+1} a row vector and "
        "J_{k+1} = ∂h_{k+1}/∂h_k; the article's Wᵀ diag(f′(h_k)) is J_{k+1} for Pascanu's form "
        "written with row vectors (h_{k+1} = f(h_k) W + …). In the library's column conventions: "
        "J_{k+1} = W_hh diag(f′(h_k)) (Pascanu's form) or diag(f′(a_{k+1})) W_hh (standard form). "
        "Eq. 16 lacks a ∂ (∂Ω_k/∂W_hh). The gradient is taken with v held fixed (Pascanu's choice); "
        "with u = v J and r = ‖u‖/‖v‖ it is 2(r − 1)/(‖v‖‖u‖) · vᵀ(u ⊙ f′(h_k)) for Pascanu's form. "
        "Pascanu et al.'s Eq. 10 and code use the squared ratio (‖u‖²/‖v‖² − 1)² instead.",
        (*tuple(f"SymPy (abstract f, v fixed): {i.statement}: {i.holds}" for i in ids), f"SymPy: {row.statement}: {row.holds}", "numeric: closed-form gradients against central differences of Ω_k (tanh, 15 random " f"instances: Pascanu's form with both ratios, standard form): relative error {'below 1e-06' if fd < 1e-06 else f'{fd:.1e}'}", f"W = [[1, 2], [0, 1]], h_k = (0.5, −1), v = (1, 0): ‖v W diag(f′)‖/‖v‖ = {right:.4f}, but with " f"the article's W read as W_hh, ‖v W_hhᵀ diag(f′)‖/‖v‖ = {as_read:.4f}"),
        bool(ok),
    )
