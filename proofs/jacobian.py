"""C06, C07, C13, C15, C16: the Jacobian product, Eq. 9, and the bounds of Eqs. 10–11."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory._oracles import central_jacobian
from rnntheory.bounds import gamma_w, spectral_radius
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array


def _below(x: float, tol: float) -> str:
    return f"below {tol:.0e}" if x < tol else f"{x:.2e} (too large)"


def _fd_jacobian(model: ElmanRNN, x: np.ndarray, h0: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of h_T with respect to h_0, through model.forward."""
    return central_jacobian(lambda h: model.forward(x, h0=h).h[-1], h0, eps)


@claim(
    "C06",
    claim="∂h_t/∂h_k = Π_{i=k+1}^{t} ∂h_i/∂h_{i−1}",
    where="Eqs. 7–8",
    method="symbolic identity + numeric check",
)
def c06() -> Proof:
    from rnntheory.symbolic.chain import prove_eq7_8

    ids = [prove_eq7_8(3, 2, "standard"), prove_eq7_8(3, 2, "pascanu"), prove_eq7_8(2, 2, "standard", True)]
    rng = np.random.default_rng(6)
    worst = 0.0
    for form in ("standard", "pascanu"):
        for alpha in (None, 0.3):
            m = ElmanRNN.init(2, 3, None, scheme="gaussian", seed=6, scale=1.1, form=form, alpha=alpha)
            x = rng.normal(size=(5, 2))
            h0 = 0.3 * rng.normal(size=3)
            P = np.asarray(jacobians.product(m, m.forward(x, h0=h0), 5, 0))
            F = _fd_jacobian(m, x, h0)
            worst = max(worst, float(np.max(np.abs(P - F)) / np.max(np.abs(P))))
    ok = all(i.holds for i in ids) and worst < 1e-7
    return Proof(
        "holds",
        "By the chain rule, ∂h_t/∂h_k = J_t J_{t−1} ⋯ J_{k+1} with J_i = ∂h_i/∂h_{i−1}, an "
        "ordered product (numerator layout; the order matters since the J_i do not commute).",
        (*tuple(f"SymPy: {i.statement}: {i.holds}" for i in ids), f"numeric: jacobians.product(model, trace, 5, 0) against central differences of h_5(h_0), " f"standard/Pascanu forms, with and without leak: relative error {_below(worst, 1e-07)}"),
        bool(ok),
    )


# ----------------------------------------------------------------------------- C07
def _c07_gap(W: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(finite-difference Jacobian of Eq. 2a at h_{t−1} = h, library step Jacobian, Eq. 9 as written)."""
    model = ElmanRNN(W, np.eye(2), np.zeros(2), activation="tanh")
    x = np.zeros((1, 2))
    F = _fd_jacobian(model, x, h)
    J = jacobians.step_jacobians(model, model.forward(x, h0=h))[0]
    sech2 = 1.0 / np.cosh(h) ** 2
    art = W.T * sech2[None, :]
    return F, J, art


def search_c07() -> dict[str, Any]:
    """Hypothesis search: 2×2 W and h_{t−1} maximising the gap between Eq. 9 as written
    and the true Jacobian of Eq. 2a (max-abs entry), entries on the grid k/4 in [−2, 2]."""
    from hypothesis import example, given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}
    el = st.integers(-8, 8).map(lambda k: k / 4)

    @settings(max_examples=200, database=None, deadline=None, derandomize=True)
    @example(np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([0.5, -1.0]))
    @given(hnp.arrays(np.float64, (2, 2), elements=el), hnp.arrays(np.float64, 2, elements=el))
    def explore(W, h):
        F, _, art = _c07_gap(W, h)
        score = float(np.max(np.abs(art - F)))
        target(score)
        if score > best.get("score", -1.0):
            best.update(W=W, h=h, score=score)

    explore()
    return {"W": best["W"], "h": best["h"]}


@claim(
    "C07",
    claim="∂h_i/∂h_{i−1} = Wᵀ diag[f′(h_{i−1})] for the model of Eq. 2a",
    where="Eq. 9",
    method="symbolic identity + counterexample",
    search=search_c07,
)
def c07() -> Proof:
    from rnntheory.symbolic.elman import prove_eq9_row_reading, prove_step_jacobian

    sym = [prove_step_jacobian(n, "standard") for n in (1, 2, 3, 4)]
    pas = prove_step_jacobian(2, "pascanu")
    row = prove_eq9_row_reading(2)
    d = load_counterexample("C07")
    W, h = as_array(d["W"]), as_array(d["h"])
    F, J, art = _c07_gap(W, h)
    lib_err = float(np.max(np.abs(J - F)))
    gap = float(np.max(np.abs(art - F)))
    # Spectrum and norm of Wᵀ D against W D, on the fixed example of rnntheory.symbolic.elman.
    W2, d2 = np.array([[1.0, 2.0], [0.0, 1.0]]), 1.0 / np.cosh(np.array([0.5, -1.0])) ** 2
    art2, pas_J = W2.T * d2[None, :], W2 * d2[None, :]
    ev_art = np.sort_complex(np.linalg.eigvals(art2))
    ev_pas = np.sort_complex(np.linalg.eigvals(pas_J))
    same_spec = float(np.max(np.abs(ev_art - ev_pas)))
    n_art, n_pas = float(np.linalg.norm(art2, 2)), float(np.linalg.norm(pas_J, 2))
    ok = (all(s.holds for s in sym) and pas.holds and row.holds and lib_err < 1e-8 and gap > 0.1
          and same_spec < 1e-12 and abs(n_art - n_pas) > 0.1)
    return Proof(
        "false",
        "For Eq. 2a (a_i = W_hh h_{i−1} + W_hx x_i + b_h, h_i = f(a_i)) the step Jacobian in "
        "numerator layout is diag(f′(a_i)) W_hh: f′ is evaluated at the pre-activation a_i, not at "
        "h_{i−1}, and it multiplies from the left. The article's Wᵀ diag(f′(h_{i−1})) is the "
        "Jacobian of Pascanu's form written with row vectors, h_i = f(h_{i−1}) W + x_i U + b "
        "(i.e. W = W_hhᵀ in column form, where the Jacobian is W_hh diag(f′(h_{i−1}))). Read with "
        "W = W_hh it is not that Jacobian's transpose (diag(f′) W_hhᵀ) either; it only shares its "
        "eigenvalues, not its norm.",
        (*tuple(f"SymPy: {s.statement}: {s.holds}" for s in sym), f"SymPy: {pas.statement}: {pas.holds}", f"SymPy: {row.statement}: {row.holds}", f"numeric (stored W, h_{{i−1}}; tanh, W_hx x + b = 0): library step Jacobian against " f"central differences of Eq. 2a: {_below(lib_err, 1e-08)}", f"Eq. 9 as written differs from the finite-difference Jacobian by {gap:.4f} (max entry)", f"W = [[1, 2], [0, 1]], h = (0.5, −1): Wᵀ diag(f′(h)) and W diag(f′(h)) have the same " f"eigenvalues (gap {_below(same_spec, 1e-12)}) " f"but spectral norms {n_art:.4f} and {n_pas:.4f}"),
        bool(ok),
        Counterexample(
            "A 2-unit tanh cell of Eq. 2a (W_hx x + b = 0) at a given h_{i−1}: Wᵀ diag(tanh′(h_{i−1})) "
            "is not the finite-difference Jacobian of h_i with respect to h_{i−1}.",
            {"W": W.tolist(), "h": h.tolist()},
            {"max_abs_gap_article_vs_fd": gap, "max_abs_gap_library_vs_fd": lib_err,
             "fd_jacobian_00": float(F[0, 0]), "article_00": float(art[0, 0])},
        ),
    )


@claim(
    "C13",
    claim="‖∂h_i/∂h_{i−1}‖ ≤ ‖Wᵀ‖ ‖diag[f′]‖",
    where="Eq. 10",
    method="symbolic identity + numeric check",
)
def c13() -> Proof:
    import sympy as sp

    W = sp.Matrix(2, 2, sp.symbols("w0:4", real=True))
    lam = sp.Symbol("lambda")
    same = sp.expand((W.T * W).charpoly(lam).as_expr() - (W * W.T).charpoly(lam).as_expr()) == 0
    rng = np.random.default_rng(13)
    worst_sub = -np.inf
    worst_T = 0.0
    for _ in range(200):
        n = int(rng.integers(1, 7))
        A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n)) * rng.uniform(0.1, 3)
        worst_sub = max(worst_sub, float(np.linalg.norm(A @ B, 2) / (np.linalg.norm(A, 2) * np.linalg.norm(B, 2))))
        worst_T = max(worst_T, float(abs(np.linalg.norm(A.T, 2) - np.linalg.norm(A, 2)) / np.linalg.norm(A, 2)))
    worst_J = -np.inf
    for seed in range(10):
        for form in ("standard", "pascanu"):
            m = ElmanRNN.init(2, 4, None, scheme="gaussian", seed=seed, scale=1.5, form=form)
            tr = m.forward(rng.normal(size=(8, 2)))
            fp = m.activation.fprime(tr.a)
            for Ji, d in zip(jacobians.step_jacobians(m, tr), fp, strict=True):
                worst_J = max(worst_J, np.linalg.norm(Ji, 2) / (gamma_w(m.W_hh) * np.max(np.abs(d))))
    ok = same and worst_sub <= 1 + 1e-12 and worst_T < 1e-12 and worst_J <= 1 + 1e-12
    return Proof(
        "holds",
        "For any submultiplicative norm ‖AB‖ ≤ ‖A‖‖B‖; in the spectral norm ‖Wᵀ‖ = ‖W‖ (WᵀW and "
        "WWᵀ share their eigenvalues). So the bound holds for the true step Jacobian "
        "diag(f′(a_i)) W_hh (and W_hh diag(f′) in Pascanu's form), with ‖diag(f′)‖ = max|f′|.",
        (
            f"SymPy: WᵀW and WWᵀ have the same characteristic polynomial (2×2 symbolic W): {same}",
            "numeric: max ‖AB‖/(‖A‖‖B‖) over 200 random pairs (n ≤ 6) "
            + ("≤ 1" if worst_sub <= 1 + 1e-12 else f"= {worst_sub:.4f} (> 1)")
            + f"; |‖Aᵀ‖ − ‖A‖|/‖A‖ {_below(worst_T, 1e-12)}",
            "numeric: max ‖J_i‖/(‖W_hh‖ max|f′|) over 20 tanh models × 8 steps, both forms "
            + ("≤ 1" if worst_J <= 1 + 1e-12 else f"= {worst_J:.4f} (> 1)"),
        ),
        bool(ok),
    )


@claim(
    "C15",
    claim="γ_h = 1 for tanh and 1/4 for sigmoid",
    where="after Eq. 10",
    method="calculus",
)
def c15() -> Proof:
    import sympy as sp

    from rnntheory.activations import get_activation
    from rnntheory.symbolic.activation import gamma_h

    x = sp.Symbol("x", real=True)
    t = gamma_h(sp.tanh(x), x)
    s = gamma_h(1 / (1 + sp.exp(-x)), x)
    ok = (t.value == 1 and t.argmax == 0 and s.value == sp.Rational(1, 4) and s.argmax == 0
          and get_activation("tanh").gamma_h == 1.0 and get_activation("sigmoid").gamma_h == 0.25)
    return Proof(
        "holds",
        "sup|tanh′| = 1 (at 0) and sup|σ′| = 1/4 (at 0): the only critical point of f′ is 0 "
        "(f″(0) = 0) and f′ → 0 at ±∞.",
        (
            f"calculus (SymPy): tanh′ = {t.derivative}; roots of tanh″: {list(t.candidates)}; "
            f"sup = {t.value} at x = {t.argmax}",
            f"calculus (SymPy): σ′ = {s.derivative}; roots of σ″: {list(s.candidates)}; "
            f"sup = {s.value} at x = {s.argmax}",
            "the library's activations carry the same constants (1.0 and 0.25)",
        ),
        bool(ok),
    )


@claim(
    "C16",
    claim="‖∂h_i/∂h_{i−1}‖ ≤ γ_W γ_h",
    where="Eq. 11",
    method="numeric check + counterexample",
)
def c16() -> Proof:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rnntheory.strategies import elman_models, input_sequences

    worst = [-np.inf]
    count = [0]

    @settings(max_examples=60, database=None, deadline=None, derandomize=True)
    @given(elman_models(n_in=2), input_sequences(st.integers(1, 6), 2))
    def check(m, x):
        tr = m.forward(x)
        J = jacobians.step_jacobians(m, tr)
        bound = gamma_w(m.W_hh) * m.activation.gamma_h
        worst[0] = max(worst[0], float(np.max(np.linalg.norm(J, 2, axis=(1, 2)))) / bound)
        count[0] += 1

    check()
    # With "the largest eigenvalue" (spectral radius) in place of σ_max the bound fails.
    W = np.array([[0.5, 4.0], [0.0, 0.5]])
    m = ElmanRNN(W, np.zeros((2, 1)), np.zeros(2), activation="identity")
    Jn = float(np.linalg.norm(jacobians.step_jacobians(m, m.forward(np.zeros((1, 1))))[0], 2))
    rho = spectral_radius(W)
    ok = worst[0] <= 1 + 1e-12 and Jn > rho
    return Proof(
        "holds with conditions",
        "‖∂h_i/∂h_{i−1}‖₂ ≤ γ_W γ_h holds with γ_W = σ_max(W_hh) (the spectral norm, the largest "
        "singular value, not an eigenvalue) and γ_h = sup|f′|, for both forms. With the spectral "
        "radius in place of σ_max it fails for non-normal W_hh.",
        (
            f"numeric: max ‖J_i‖/(σ_max(W_hh) γ_h) over {count[0]} models drawn by "
            "rnntheory.strategies.elman_models (tanh/sigmoid, both forms, σ_max in [0.1, 3]) "
            + ("≤ 1" if worst[0] <= 1 + 1e-12 else f"= {worst[0]:.4f} (> 1)"),
            f"W = [[0.5, 4], [0, 0.5]], identity f: ‖J‖ = {Jn:.4f} > ρ(W)·γ_h = {rho:.4f}",
        ),
        bool(ok),
    )
