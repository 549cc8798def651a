"""C17, C19: what Eq. 12 says about ‖∂h_t/∂h_k‖ and about the influence of past inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory.bounds import certify, gamma_w, log_bound, spectral_radius, vanishing_guaranteed
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array
from ._trajectory import cycle, g4, realize, step, within

_T = 30


# ============================================================================ C17
def _naive_log_norm(W: np.ndarray, ds: list[np.ndarray], T: int) -> float:
    P = np.eye(W.shape[0])
    s = 0.0
    for t in range(T):
        P = step(W, ds[t % len(ds)]) @ P
        m = float(np.abs(P).max())
        if m == 0:
            return -np.inf
        P /= m
        s += np.log(m)
    return s + float(np.log(np.linalg.norm(P, 2)))


def search_c17() -> dict[str, Any]:
    """Hypothesis search over `strategies.non_normal_matrices` (n = 2..3, ρ ≤ 0.5,
    σ_max ≥ 2.5, every |λ| ≥ 0.2) and two tanh′ patterns in [0.3, 1]: maximise the gap
    T ln(γ_W γ_h) − ln ‖∂h_T/∂h_0‖ between Eq. 12's bound and the observed norm."""
    from hypothesis import given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from rnntheory import strategies as rst

    best: dict[str, Any] = {}
    gains = st.floats(0.3, 1.0, allow_nan=False)

    @settings(max_examples=150, database=None, deadline=None, derandomize=True)
    @given(st.integers(2, 3).flatmap(lambda n: st.tuples(
        rst.non_normal_matrices(n, radius=0.5, min_norm=2.5),
        hnp.arrays(np.float64, n, elements=gains), hnp.arrays(np.float64, n, elements=gains))))
    def explore(args):
        W, d1, d2 = args
        if np.abs(np.linalg.eigvals(W)).min() < 0.2:
            return  # keep det W away from 0: no cancellation, norms well above rounding
        obs = _naive_log_norm(W, [d1, d2], _T)
        score = _T * float(np.log(np.linalg.norm(W, 2))) - obs
        target(min(score, 1e6))
        if score > best.get("score", -np.inf):
            best.update(W=W, d1=d1, d2=d2, score=score)

    explore()
    return {"W": best["W"], "d1": best["d1"], "d2": best["d2"], "T": _T}


@claim(
    "C17",
    claim="‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k), and the norm is \"essentially given by\" this",
    where="Eq. 12",
    method="counterexample + numeric check",
    search=search_c17,
)
def c17() -> Proof:
    ce = load_counterexample("C17")
    W, d1, d2, T = as_array(ce["W"]), as_array(ce["d1"]), as_array(ce["d2"]), int(ce["T"])
    r = realize(W, cycle([d1, d2], T))
    cert = certify(r.model, r.trace, bounds=("eq12",))
    L = cert.log_norms
    steps = np.array([10, 20, T])
    bound = np.asarray(log_bound(W, "tanh", steps))
    gaps = L[steps, 0] - bound  # ln(observed / bound) at t − k = 10, 20, T
    # The bound is attained for a normal W at the origin (tanh′ = 1): W = 1.2·rotation.
    th = 0.4
    Wn = 1.2 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    rn = realize(Wn, np.ones((T, 2)))
    Ln = jacobians.log_norm_profile(rn.model, rn.trace, 0)
    tight = float(np.max(np.abs(Ln - np.arange(T + 1) * np.log(1.2))))
    ok = (r.error < 1e-9 and cert["eq12"].holds and float(L[T, 0]) < 0 and bound[-1] > 0
          and bool(np.all(np.diff(gaps) < -1.0)) and rn.error < 1e-12 and tight < 1e-10)
    return Proof(
        "false",
        "The inequality holds with γ_W = σ_max(W) and γ_h = sup|f′| (Eq. 12, checked on every "
        "pair), but it is only an upper bound: ‖∂h_t/∂h_k‖ is not \"essentially given by\" "
        "(γ_W γ_h)^(t−k). The ratio of the observed norm to the bound can tend to 0 "
        "exponentially fast in t − k (non-normal W, saturated units); the bound is attained "
        "only in special cases (e.g. W a multiple of an orthogonal matrix at a state where "
        "f′ = γ_h). The actual growth rate is the top Lyapunov exponent of the trajectory, "
        "which can be far below ln(γ_W γ_h).",
        (
            f"W ({W.shape[0]}×{W.shape[0]}, non-normal): σ_max = {g4(gamma_w(W))}, "
            f"ρ = {g4(spectral_radius(W))}; tanh trajectory realised with inputs (library "
            f"Jacobians {within(r.error, 1e-9)})",
            f"bounds.certify: Eq. 12 holds on all {cert['eq12'].pairs_checked} pairs: "
            f"{cert['eq12'].holds} (the inequality part is true)",
            f"ln of the bound at t − k = {T}: {g4(bound[-1])} > 0 (it grows), observed "
            f"ln ‖∂h_{T}/∂h_0‖ = {g4(L[T, 0])} < 0 (it vanishes)",
            "ln(observed/bound) at t − k = 10, 20, 30: " + ", ".join(g4(g) for g in gaps)
            + ": the ratio tends to 0 geometrically",
            f"tight case: W = 1.2·R(0.4) at the origin gives ln ‖∂h_t/∂h_0‖ = t ln 1.2 "
            f"{within(tight, 1e-10)} for t ≤ {T}",
        ),
        ok,
        Counterexample(
            "A non-normal W with large σ_max and small spectral radius in a tanh RNN: Eq. 12's "
            "bound grows geometrically while every observed ‖∂h_t/∂h_0‖ decays.",
            dict(ce),
            {"log_bound_T": float(bound[-1]), "log_norm_dhT_dh0": float(L[T, 0]),
             "log_ratio_T": float(gaps[-1])},
        ),
    )


# ============================================================================ C19
def _influence_naive(model: ElmanRNN, x: np.ndarray) -> np.ndarray:
    """∂h_T/∂x_1 by explicit numpy products (standard form)."""
    tr = model.forward(x)
    fp = model.activation.fprime(tr.a)
    M = fp[0][:, None] * model.W_hx
    for t in range(1, x.shape[0]):
        M = (fp[t][:, None] * model.W_hh) @ M
    return M


def search_c19() -> dict[str, Any]:
    """Hypothesis search: a 3-unit tanh RNN with σ_max(W_hh) = 0.9 (vanishing guaranteed)
    and inputs, maximising ln ‖∂h_T/∂x_1‖ − (T−1) ln 0.9 (the influence of the first input
    relative to Eq. 12's bound)."""
    from hypothesis import given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from rnntheory import strategies as rst

    best: dict[str, Any] = {}
    ent = st.floats(-1, 1, allow_nan=False, allow_subnormal=False)

    @settings(max_examples=150, database=None, deadline=None, derandomize=True)
    @given(rst.matrices_with_spectral_norm(3, 0.9), hnp.arrays(np.float64, (3, 3), elements=ent),
           rst.input_sequences(_T, 3, scale=1.0))
    def explore(W, U, x):
        if np.linalg.norm(U, 2) < 0.1:
            return
        m = ElmanRNN(W, U, np.zeros(3))
        M = _influence_naive(m, x)
        s = float(np.linalg.norm(M, 2))
        if s == 0:
            return
        score = float(np.log(s)) - (_T - 1) * np.log(0.9)
        target(score)
        if score > best.get("score", -np.inf):
            best.update(W=W, U=U, x=x, score=score)

    explore()
    return {"W_hh": best["W"], "W_hx": best["U"], "x": best["x"]}


@claim(
    "C19",
    claim="These problems prevent the input at step k from having any influence at step t",
    where="after Eq. 12",
    method="counterexample",
    search=search_c19,
)
def c19() -> Proof:
    ce = load_counterexample("C19")
    W, U, x = as_array(ce["W_hh"]), as_array(ce["W_hx"]), as_array(ce["x"])
    T = x.shape[0]
    model = ElmanRNN(W, U, np.zeros(W.shape[0]))
    tr = model.forward(x)
    P = jacobians.product(model, tr, T, 1, scaled=True)
    assert not isinstance(P, np.ndarray)
    fp1 = model.activation.fprime(tr.a[0])
    G = P.value() @ (fp1[:, None] * U)  # ∂h_T/∂x_1
    _, s, Vt = np.linalg.svd(G)
    infl = float(s[0])
    eps = 1e-4
    x2 = x.copy()
    x2[0] += eps * Vt[0]
    dh = float(np.linalg.norm(model.forward(x2).h[T] - tr.h[T]) / eps)
    fd_rel = abs(dh - infl) / infl
    bound = 0.9 ** (T - 1) * float(np.linalg.norm(U, 2))  # γ_h = 1, σ_max = 0.9
    # The exploding regime: the influence is large, not absent (linear RNN, W = 1.1 I).
    lin = ElmanRNN(1.1 * np.eye(3), U, np.zeros(3), activation="identity")
    lt = lin.forward(x)
    Pl = jacobians.product(lin, lt, T, 1, scaled=True)
    assert not isinstance(Pl, np.ndarray)
    infl_lin = float(np.exp(Pl.log_scale) * np.linalg.norm(Pl.matrix @ U, 2))
    ok = (vanishing_guaranteed(W, "tanh").holds and infl > 0 and fd_rel < 1e-2
          and infl <= bound * (1 + 1e-9) and infl_lin > 10 * float(np.linalg.norm(U, 2)))
    return Proof(
        "false",
        "No influence would mean ∂h_t/∂x_k = 0. What is true: with γ = σ_max(W_hh) γ_h < 1 the "
        "influence decays geometrically, ‖∂h_t/∂x_k‖ = ‖(∂h_t/∂h_k) diag(f′(a_k)) W_hx‖ ≤ "
        "γ^(t−k) γ_h ‖W_hx‖, so a long-range signal is exponentially small against the "
        "short-range terms of the gradient (hard to learn), but generically not zero. In the "
        "exploding regime the influence of early inputs is large, not absent.",
        (
            f"tanh RNN with σ_max(W_hh) = {g4(gamma_w(W))} < 1 (bounds.vanishing_guaranteed holds), "
            f"T = {T}",
            f"‖∂h_{T}/∂x_1‖ from the library's Jacobian product = {infl:.4g} > 0, at most "
            f"the bound 0.9^{T - 1}·γ_h·‖W_hx‖ = {bound:.4g} (Eq. 12 for inputs)",
            f"finite difference through the model (x_1 moved by 1e-4 along the top singular "
            f"direction): ‖Δh_{T}‖/ε matches it to {'1e-2' if fd_rel < 1e-2 else g4(fd_rel)} "
            "(relative): the past input does change h_T",
            f"exploding regime (linear RNN, W = 1.1 I, same W_hx): ‖∂h_{T}/∂x_1‖ = {infl_lin:.4g}",
        ),
        ok,
        Counterexample(
            "A tanh RNN in the vanishing regime (σ_max(W_hh) < 1) in which the first input "
            "still changes the last state: the influence is small, not zero.",
            dict(ce),
            {"influence_dhT_dx1": infl, "eq12_bound": bound},
        ),
    )
