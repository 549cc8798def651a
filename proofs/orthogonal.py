"""C32–C34: orthogonal matrices, λ^t, and "λ₁ = 1 avoids both problems"."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory.bounds import spectral_radius
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array, realize_jacobians
from ._trajectory import g4, within


@claim(
    "C32",
    claim="All eigenvalues of an orthogonal matrix have modulus 1",
    where="Orthogonal paragraph",
    method="symbolic identity + numeric check",
)
def c32() -> Proof:
    import sympy as sp

    # General statement: Qᵀ Q = I and Q v = λ v (v ≠ 0, complex) give
    # ‖v‖² = v* Qᵀ Q v = ‖Q v‖² = |λ|² ‖v‖², so |λ| = 1. Checked symbolically on
    # the two families that make up O(2) (rotations and reflections), whose
    # eigenvalues SymPy computes in closed form, and numerically on Haar-random
    # orthogonal matrices of sizes 2..12.
    th = sp.symbols("theta", real=True)
    rot = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    ref = sp.Matrix([[sp.cos(th), sp.sin(th)], [sp.sin(th), -sp.cos(th)]])
    mods = []
    for M in (rot, ref):
        assert sp.simplify(M.T * M - sp.eye(2)) == sp.zeros(2, 2)
        for lam in M.eigenvals():
            mods.append(sp.simplify(sp.Abs(lam) ** 2 - 1))
    symbolic_ok = all(m == 0 for m in mods)
    rng = np.random.default_rng(32)
    worst = 0.0
    for n in range(2, 13):
        q, r = np.linalg.qr(rng.normal(size=(n, n)))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        worst = max(worst, float(np.max(np.abs(np.abs(np.linalg.eigvals(q)) - 1.0))))
    numeric_ok = worst < 1e-12
    return Proof(
        "holds",
        "Every eigenvalue λ of a real orthogonal Q satisfies |λ| = 1 (from ‖Qv‖ = ‖v‖).",
        (
            f"SymPy: |λ|² − 1 simplifies to 0 for every eigenvalue of the rotation and "
            f"reflection families of O(2): {symbolic_ok}",
            "numeric: max ||λ| − 1| over Haar-random orthogonal Q, n = 2..12: "
            + ("below 1e-12" if numeric_ok else f"{worst:.1e} (too large)"),
        ),
        symbolic_ok and numeric_ok,
    )


# ============================================================================ C33
_T33 = 50


def search_c33() -> dict[str, Any]:
    """Hypothesis search: a 3×3 orthogonal W (strategies.orthogonal_matrices) in a tanh RNN
    with W_hx = I and inputs in [−1, 1], minimising ln ‖∂h_T/∂h_0‖ (T = 50)."""
    from hypothesis import given, settings, target

    from rnntheory import jacobians
    from rnntheory import strategies as rst

    best: dict[str, Any] = {}

    @settings(max_examples=100, database=None, deadline=None, derandomize=True)
    @given(rst.orthogonal_matrices(3), rst.input_sequences(_T33, 3, scale=1.0))
    def explore(Q, x):
        m = ElmanRNN(Q, np.eye(3), np.zeros(3))
        score = -float(jacobians.log_norm_profile(m, m.forward(x), 0)[_T33])
        target(score)
        if score > best.get("score", -np.inf):
            best.update(Q=Q, x=x, score=score)

    explore()
    return {"W": best["Q"], "x": best["x"]}


@claim(
    "C33",
    claim="Orthogonal W gives λ1^t = 1 and so avoids both vanishing and exploding gradients",
    where="Orthogonal paragraph",
    method="counterexample + numeric check",
    search=search_c33,
)
def c33() -> Proof:
    from rnntheory import jacobians
    from rnntheory.bounds import certify

    ce = load_counterexample("C33")
    Q, x = as_array(ce["W"]), as_array(ce["x"])
    T, n = x.shape[0], Q.shape[0]
    orth = float(np.max(np.abs(Q.T @ Q - np.eye(n))))
    m = ElmanRNN(Q, np.eye(n), np.zeros(n))
    tr = m.forward(x)
    cert = certify(m, tr, bounds=("eq12",))
    L = cert.log_norms
    lin = ElmanRNN(Q, np.eye(n), np.zeros(n), activation="identity")
    Ll = jacobians.log_norms(lin, lin.forward(x))
    lin_dev = float(np.max(np.abs(Ll[np.tril_indices(T + 1)])))
    lam = np.linalg.eigvals(Q)
    pow_dev = float(np.max(np.abs(lam**T - 1)))
    ok = (orth < 1e-12 and cert["eq12"].holds and float(L[T, 0]) < -5 and lin_dev < 1e-10
          and pow_dev > 0.1)
    return Proof(
        "false",
        "For a linear RNN an orthogonal W preserves norms exactly, ‖∂h_t/∂h_k‖ = ‖W^(t−k)‖ = 1: "
        "neither problem occurs. For h_t = f(W h_{t−1} + …) the Jacobians are diag(f′)W: with "
        "σ_max(W) = 1 and γ_h = 1 (tanh) every ‖∂h_t/∂h_k‖ ≤ 1, so nothing explodes, but "
        "‖∂h_t/∂h_k‖ ≤ Π_i max_j f′(a_i)_j, which vanishes as soon as the units leave the "
        "linear region. Also λ1^t = 1 is wrong for complex λ1 = e^{iθ}: |λ1^t| = 1, λ1^t rotates.",
        (
            f"W orthogonal (3×3, from strategies.orthogonal_matrices): ‖WᵀW − I‖_max "
            f"{within(orth, 1e-12)}",
            f"tanh RNN with inputs in [−1, 1], T = {T}: Eq. 12 (≤ 1) holds on all "
            f"{cert['eq12'].pairs_checked} pairs: {cert['eq12'].holds} (no explosion), but "
            f"ln ‖∂h_{T}/∂h_0‖ = {g4(L[T, 0])}: the gradient vanishes",
            f"linear RNN with the same W: |ln ‖∂h_t/∂h_k‖| {within(lin_dev, 1e-10)} on every "
            "pair (norm exactly 1)",
            f"eigenvalues of W have modulus 1 but max_i |λ_i^{T} − 1| = {g4(pow_dev)}",
        ),
        ok,
        Counterexample(
            "A tanh RNN with an orthogonal recurrent matrix and moderate inputs: the Jacobian "
            "products never exceed norm 1 but decay geometrically.",
            dict(ce),
            {"log_norm_dhT_dh0": float(L[T, 0]), "linear_max_abs_log_norm": lin_dev},
        ),
    )


# ============================================================================ C34
def _rho(M: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def search_c34() -> dict[str, Any]:
    """Hypothesis search: a 2×2 W rescaled to spectral radius exactly 1 and two tanh′
    patterns, maximising the spectral radius of the two-step product diag(d₂)W diag(d₁)W."""
    from hypothesis import example, given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}
    entries = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)
    gains = st.floats(0.01, 1.0, allow_nan=False)

    @settings(max_examples=300, database=None, deadline=None, derandomize=True)
    @example(np.array([[1.0, 2.0], [-1.0, -1.0]]), np.array([1.0, 0.01]), np.array([0.01, 1.0]))
    @given(hnp.arrays(np.float64, (2, 2), elements=entries),
           hnp.arrays(np.float64, 2, elements=gains), hnp.arrays(np.float64, 2, elements=gains))
    def explore(W, d1, d2):
        r = _rho(W)
        if r < 1e-3:
            return
        W = W / r
        score = _rho(d2[:, None] * W @ (d1[:, None] * W))
        target(score)
        if score > best.get("score", 0.0):
            best.update(W=W, d1=d1, d2=d2, score=score)

    explore()
    return {"W": best["W"], "d1": best["d1"], "d2": best["d2"], "T": 40}


@claim(
    "C34",
    claim="λ1 = 1 would avoid both vanishing and exploding gradients",
    where="Conclusions",
    method="counterexample",
    search=search_c34,
)
def c34() -> Proof:
    from rnntheory import jacobians

    ce = load_counterexample("C34")
    W, d1, d2, T = as_array(ce["W"]), as_array(ce["d1"]), as_array(ce["d2"]), int(ce["T"])
    d_seq = np.array([d1 if t % 2 == 0 else d2 for t in range(T)])
    model, x = realize_jacobians(W, d_seq)
    tr = model.forward(x)
    J = jacobians.step_jacobians(model, tr)
    realized = float(np.max(np.abs(J - d_seq[:, :, None] * W[None])))
    growth = float(jacobians.log_norm_profile(model, tr, 0)[T])
    rho_w = spectral_radius(W)
    # Linear RNN with a Jordan block: ρ = 1, ‖W^t‖ ≥ t (its (1, 2) entry is t).
    Tj = 1000
    Jb = np.array([[1.0, 1.0], [0.0, 1.0]])
    lin = ElmanRNN(Jb, np.zeros((2, 1)), np.zeros(2), activation="identity")
    Lj = jacobians.log_norm_profile(lin, lin.forward(np.zeros((Tj, 1))), 0)
    jordan_ok = bool(np.all(Lj[1:] >= np.log(np.arange(1, Tj + 1)) - 1e-12))
    # ρ = 1 and vanishing: a rotation with every tanh′ = 0.5.
    th = 1.0
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    mr, xr = realize_jacobians(R, np.full((T, 2), 0.5))
    Lr = float(jacobians.log_norm_profile(mr, mr.forward(xr), 0)[T])
    ok = (abs(rho_w - 1) < 1e-12 and realized < 1e-9 and growth > 5 and jordan_ok
          and abs(Lr - T * np.log(0.5)) < 1e-8)
    return Proof(
        "false",
        "ρ(W) = 1 (or a leading Jacobian eigenvalue of modulus 1) controls neither problem. "
        "Linear RNN: ‖W^t‖ stays bounded with ρ(W) = 1 only if every eigenvalue of modulus 1 "
        "is semisimple (no Jordan block), and ‖W^t‖ = 1 for every t exactly when, in "
        "addition, σ_max(W) = 1 (e.g. W orthogonal). Nonlinear RNN: σ_max(W) γ_h ≤ 1 rules out "
        "explosion (every ‖∂h_t/∂h_k‖ ≤ 1) but not vanishing; nothing about eigenvalues "
        "prevents either.",
        (
            f"tanh RNN with ρ(W) = 1 {within(abs(rho_w - 1), 1e-12)}, inputs realising "
            f"alternating saturation (library Jacobians {within(realized, 1e-9)}): "
            f"ln ‖∂h_{T}/∂h_0‖ = {growth:.4g}: it explodes geometrically",
            f"linear RNN with the Jordan block [[1, 1], [0, 1]] (ρ = 1): ‖W^t‖ ≥ t for all "
            f"t ≤ {Tj}: {jordan_ok}; ‖W^{Tj}‖ = {np.exp(Lj[Tj]):.4g} (unbounded growth)",
            f"tanh RNN with a rotation W (ρ = 1) and tanh′ = 0.5 at every step: "
            f"ln ‖∂h_{T}/∂h_0‖ = {Lr:.4g} = {T} ln 0.5: it vanishes",
        ),
        ok,
        Counterexample(
            "A 2-unit tanh RNN with ρ(W) = 1 whose gradient explodes geometrically, and a "
            "linear RNN with a Jordan block (ρ = 1) whose Jacobian norm grows like t.",
            dict(ce),
            {"spectral_radius_W": rho_w, "log_norm_dhT_dh0": growth,
             "jordan_norm_at_1000": float(np.exp(Lj[Tj]))},
        ),
    )
