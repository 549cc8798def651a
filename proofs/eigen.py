"""C08–C12, C14, C18: the eigenvalue intuition of the article, checked on real trajectories.

Every counterexample is a sequence of step Jacobians ``diag(d_t) W`` realised
as a tanh trajectory (:func:`proofs._common.realize_jacobians`); the numbers
are read back through ``rnntheory.jacobians`` and ``rnntheory.bounds``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory.bounds import (
    certify,
    explosion_possible,
    gamma_w,
    pair_log_bounds,
    spectral_radius,
    vanishing_guaranteed,
)
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array
from ._trajectory import cycle, g4, realize, rho, step, within

_T = 40



def _gains() -> Any:
    from hypothesis import strategies as st

    return st.floats(0.01, 1.0, allow_nan=False)


def _entries() -> Any:
    from hypothesis import strategies as st

    return st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False)


# ============================================================================ C08
def search_c08() -> dict[str, Any]:
    """Hypothesis search: a 2×2 W and gains d whose step Jacobian diag(d)W (rescaled to
    spectral radius 0.9) has a complex-conjugate pair, maximising |Im λ|/|λ| (so rounding cannot make it real)."""
    from hypothesis import example, given, settings, target
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}

    @settings(max_examples=200, database=None, deadline=None, derandomize=True)
    @example(np.array([[0.6, -0.9], [0.8, 0.3]]), np.array([0.9, 0.5]))
    @given(hnp.arrays(np.float64, (2, 2), elements=_entries()),
           hnp.arrays(np.float64, 2, elements=_gains()))
    def explore(W, d):
        lam = np.linalg.eigvals(step(W, d))
        m = np.abs(lam).max()
        if m < 1e-3:
            return
        W = W * (0.9 / m)  # a step Jacobian with spectral radius 0.9
        score = float(np.abs(lam.imag).max() / m)
        target(score)
        if score > best.get("score", -1.0):
            best.update(W=W, d=d, score=score)

    explore()
    return {"W": best["W"], "d": best["d"],
            "W_jordan": [[0.5, 1.0], [0.0, 0.5]], "d_jordan": [1.0, 1.0]}


@claim(
    "C08",
    claim="The step Jacobian has eigenvalues |λ1| > |λ2| > … > |λn| with eigenvectors v1, …, vn",
    where="after Eq. 9",
    method="counterexample",
    search=search_c08,
)
def c08() -> Proof:
    ce = load_counterexample("C08")
    W, d = as_array(ce["W"]), as_array(ce["d"])
    r = realize(W, d[None, :])
    lam = np.linalg.eigvals(r.J[0])
    mods = np.abs(lam)
    pair_gap = float(abs(mods[0] - mods[1]) / mods.max())
    im_ratio = float(np.abs(lam.imag).max() / mods.max())
    Wj, dj = as_array(ce["W_jordan"]), as_array(ce["d_jordan"])
    rj = realize(Wj, dj[None, :])
    Jj = rj.J[0]
    lam_j = np.linalg.eigvals(Jj)
    mu = float(np.mean(lam_j.real))
    geo = 2 - int(np.linalg.matrix_rank(Jj - mu * np.eye(2), tol=1e-9))
    ok = (r.error < 1e-9 and rj.error < 1e-12 and pair_gap < 1e-12 and im_ratio > 0.1
          and geo == 1 and float(np.max(np.abs(lam_j - mu))) < 1e-6)
    return Proof(
        "false",
        "The eigenvalues of a real n×n step Jacobian can only be ordered non-strictly, "
        "|λ1| ≥ |λ2| ≥ … ≥ |λn|: complex eigenvalues come in conjugate pairs of equal "
        "modulus, and repeated eigenvalues occur. A basis of eigenvectors v1…vn exists only "
        "when the Jacobian is diagonalisable (for example when its eigenvalues are distinct); "
        "a defective (Jordan) Jacobian has fewer independent eigenvectors. In general use the "
        "Schur or Jordan form, or the singular value decomposition.",
        (
            "tanh trajectory realised with inputs: library step Jacobian equals diag(d)W "
            + within(r.error, 1e-9),
            f"its eigenvalues {g4(lam[0].real)} ± {g4(abs(lam[0].imag))}i form a conjugate pair: "
            f"|λ1| = |λ2| {within(pair_gap, 1e-12)} (relative); |Im λ|/|λ| = {g4(im_ratio)}",
            f"second trajectory (zero input at the origin): J = {Jj.tolist()} has the double "
            f"eigenvalue {g4(mu)} and rank(J − {g4(mu)} I) = 1, so one independent eigenvector "
            "for n = 2: no basis of eigenvectors",
        ),
        ok,
        Counterexample(
            "A 2-unit tanh RNN whose step Jacobian has a complex-conjugate eigenvalue pair "
            "(equal moduli), and one whose step Jacobian is a Jordan block (one eigenvector).",
            dict(ce),
            {"modulus_lambda1": float(mods[0]), "modulus_lambda2": float(mods[1]),
             "imag_over_modulus": im_ratio, "jordan_eigenvector_count": float(geo)},
        ),
    )


# ============================================================================ C09
@claim(
    "C09",
    claim="A change of h along the eigenvector v_i is multiplied by λ_i",
    where="after Eq. 9",
    method="calculus + numeric check",
)
def c09() -> Proof:
    # J v = λ v is the definition; the claim is about the state change, for which
    # h_t(h_{t−1} + ε v) − h_t(h_{t−1}) = ε J v + O(ε²) = ε λ v + O(ε²) (Taylor).
    # Symmetric W: diag(d) W is similar to diag(√d) W diag(√d), so its eigenvalues are real.
    rng = np.random.default_rng(9)
    A = rng.normal(size=(3, 3))
    W = (A + A.T) / 2
    d = np.array([0.9, 0.6, 0.8])
    r = realize(W, d[None, :])
    J = r.J[0]
    lam, V = np.linalg.eig(J)
    i = int(np.argmax(np.abs(lam)))
    li, v = float(lam[i].real), V[:, i].real / np.linalg.norm(V[:, i].real)
    eig_res = float(np.linalg.norm(J @ v - li * v))
    h0 = r.trace.h[0]
    base = r.trace.h[1]

    def rel_err(eps: float) -> float:
        h1 = r.model.forward(r.x, h0=h0 + eps * v).h[1]
        return float(np.linalg.norm(h1 - base - eps * li * v) / (eps * abs(li)))

    e3, e4, big = rel_err(1e-3), rel_err(1e-4), rel_err(0.5)
    order = e3 / e4  # ≈ 10 for an O(ε) relative error (second-order remainder)
    # A complex eigenvalue of a real Jacobian: no real direction is only scaled.
    th = 0.7
    R = 0.9 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    rc = realize(R, np.ones((1, 2)))
    lam_c, Vc = np.linalg.eig(rc.J[0])
    u = Vc[:, 0].real / np.linalg.norm(Vc[:, 0].real)
    Ju = rc.J[0] @ u
    sin_angle = float(abs(u[0] * Ju[1] - u[1] * Ju[0]) / np.linalg.norm(Ju))
    ok = (r.error < 1e-12 and eig_res < 1e-12 and e3 < 1e-2 and 5 < order < 20
          and big > 1e-2 and rc.error < 1e-12 and sin_angle > 0.5)
    return Proof(
        "holds with conditions",
        "If v_i is an eigenvector of the step Jacobian J_t = ∂h_t/∂h_{t−1} at the current "
        "state (J_t v_i = λ_i v_i), a small change Δ = ε v_i of h_{t−1} changes h_t by "
        "λ_i Δ + O(ε²): the statement is about the linearisation, for one step and that "
        "step's Jacobian only. For a complex λ_i the eigenvector is complex: a real change in "
        "the invariant plane of the pair is rotated and scaled by |λ_i|, not multiplied by a "
        "number.",
        (
            f"tanh step realised with the library: J = diag(d)W {within(r.error, 1e-12)}; "
            f"leading eigenpair λ = {g4(li)}, ‖Jv − λv‖ {within(eig_res, 1e-12)}",
            f"actual state change through the model vs λεv: relative error {g4(e3)} at "
            f"ε = 1e-3 and {g4(e4)} at ε = 1e-4 (ratio {g4(order)}: first-order accurate only)",
            f"at ε = 0.5 the relative error is {g4(big)}: the nonlinearity breaks the scaling",
            f"rotation 0.9·R(0.7): eigenvalues {g4(lam_c[0].real)} ± {g4(abs(lam_c[0].imag))}i; "
            f"the real part u of an eigenvector is turned by J (|sin ∠(u, Ju)| = {g4(sin_angle)})",
        ),
        ok,
    )


# ============================================================================ C10
def _search_alternating(objective: Any, seeds: list[tuple[Any, Any, Any]],
                        n_examples: int = 300) -> dict[str, Any]:
    """Hypothesis search over a 2×2 W and two gain patterns; ``objective`` returns
    (W_rescaled, score) or None."""
    from hypothesis import example, given, settings, target
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}

    def explore(W, d1, d2):
        res = objective(W, d1, d2)
        if res is None:
            return
        Ws, score = res
        target(score)
        if score > best.get("score", -np.inf):
            best.update(W=Ws, d1=d1, d2=d2, score=score)

    fn = given(hnp.arrays(np.float64, (2, 2), elements=_entries()),
               hnp.arrays(np.float64, 2, elements=_gains()),
               hnp.arrays(np.float64, 2, elements=_gains()))(explore)
    for W, d1, d2 in seeds:
        fn = example(np.asarray(W, float), np.asarray(d1, float), np.asarray(d2, float))(fn)
    settings(max_examples=n_examples, database=None, deadline=None, derandomize=True)(fn)()
    return {"W": best["W"], "d1": best["d1"], "d2": best["d2"], "T": _T}


def _c10_objective(W: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> Any:
    s = max(rho(step(W, d1)), rho(step(W, d2)))
    if s < 1e-3:
        return None
    W = W * (0.9 / s)
    return W, float(np.log(rho(step(W, d2) @ step(W, d1))))


def search_c10() -> dict[str, Any]:
    """Hypothesis search: W and two tanh′ patterns with ρ(diag(d_i)W) = 0.9 for both
    step Jacobians, maximising the spectral radius of their product."""
    return _search_alternating(
        _c10_objective, [([[0.0, 2.0], [2.0, 0.0]], [0.01, 1.0], [1.0, 0.01])])


def _alternating_evidence(W: np.ndarray, d1: np.ndarray, d2: np.ndarray, T: int) -> dict[str, Any]:
    r = realize(W, cycle([d1, d2], T))
    prof = jacobians.log_norm_profile(r.model, r.trace, 0)
    step_rhos = np.array([rho(Ji) for Ji in r.J])
    return {"r": r, "logT": float(prof[T]), "step_rhos": step_rhos,
            "rho2": rho(r.J[1] @ r.J[0])}


@claim(
    "C10",
    claim="Over time steps the product of Jacobians scales that change by λ_i^t",
    where="after Eq. 9",
    method="counterexample",
    search=search_c10,
)
def c10() -> Proof:
    ce = load_counterexample("C10")
    W, d1, d2, T = as_array(ce["W"]), as_array(ce["d1"]), as_array(ce["d2"]), int(ce["T"])
    e = _alternating_evidence(W, d1, d2, T)
    r = e["r"]
    lam, V = np.linalg.eig(r.J[0])
    i = int(np.argmax(np.abs(lam)))
    P = jacobians.product(r.model, r.trace, T, 0, scaled=True)
    assert not isinstance(P, np.ndarray)
    v = V[:, i] / np.linalg.norm(V[:, i])
    log_pv = float(P.log_scale + np.log(np.linalg.norm(P.matrix @ v)))
    log_pred = T * float(np.log(abs(lam[i])))
    ok = (r.error < 1e-9 and float(e["step_rhos"].max()) < 1.0 and e["rho2"] > 1.0
          and e["logT"] > 5.0 and log_pv - log_pred > 5.0)
    return Proof(
        "false",
        "λ_i^t describes the t-th power of one fixed matrix: for J^t with J v_i = λ_i v_i, "
        "J^t v_i = λ_i^t v_i. The step Jacobians diag(f′(a_i))W of an RNN change from step "
        "to step and have different eigenvectors, so the eigenvalues of the factors say "
        "nothing about the product: products of Jacobians that each have spectral radius "
        "< 1 can grow geometrically. What is true is the norm bound "
        "‖∂h_t/∂h_k‖ ≤ Π_i ‖J_i‖ ≤ (σ_max(W) γ_h)^(t−k); the growth rate of the product is "
        "its top Lyapunov exponent, not an eigenvalue of a factor.",
        (
            "tanh trajectory realised with inputs: library step Jacobians equal diag(d_t)W "
            + within(r.error, 1e-9),
            f"every step Jacobian has spectral radius ≤ {g4(e['step_rhos'].max())} < 1",
            f"but ρ(J_2 J_1) = {g4(e['rho2'])} > 1, and ln ‖∂h_{T}/∂h_0‖ = {g4(e['logT'])}",
            f"along the leading eigenvector v of J_1 (|λ| = {g4(abs(lam[i]))}): "
            f"ln ‖(∂h_{T}/∂h_0) v‖ = {g4(log_pv)} while ln |λ|^{T} = {g4(log_pred)}",
        ),
        ok,
        Counterexample(
            "A 2-unit tanh RNN whose step Jacobians alternate between two matrices with "
            "spectral radius < 1; their product grows geometrically instead of scaling like λ^t.",
            dict(ce),
            {"max_step_spectral_radius": float(e["step_rhos"].max()),
             "two_step_spectral_radius": e["rho2"], "log_norm_dhT_dh0": e["logT"],
             "log_lambda_power_T": log_pred},
        ),
    )


# ============================================================================ C11
def search_c11() -> dict[str, Any]:
    """Hypothesis search: a 2×2 W with real eigenvalues and ρ(W) = 0.9, maximising the
    gap ln(|λ1|/|λ2|) (so the leading direction dominates clearly while it decays)."""
    from hypothesis import example, given, settings, target
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}

    @settings(max_examples=200, database=None, deadline=None, derandomize=True)
    @example(np.array([[0.9, 0.3], [0.0, 0.45]]))  # eigenvalues 0.9 and 0.45
    @given(hnp.arrays(np.float64, (2, 2), elements=_entries()))
    def explore(W):
        lam = np.linalg.eigvals(W)
        if np.abs(lam.imag).max() > 0 or np.abs(lam).max() < 1e-3:
            return
        W = W * (0.9 / np.abs(lam).max())
        m = np.sort(np.abs(np.linalg.eigvals(W)))
        if m[0] < 0.3:  # keep the second component well above rounding over T steps
            return
        score = float(np.log(m[1] / m[0]))
        target(score)
        if score > best.get("score", -1.0):
            best.update(W=W, score=score)

    explore()
    return {"W": best["W"], "T": 20}


@claim(
    "C11",
    claim="λ_i^t grows exponentially as t → ∞ and dominates the changes",
    where="after Eq. 9",
    method="counterexample",
    search=search_c11,
)
def c11() -> Proof:
    ce = load_counterexample("C11")
    W, T = as_array(ce["W"]), int(ce["T"])
    lam, V = np.linalg.eig(W)
    order = np.argsort(-np.abs(lam))
    l1, l2 = float(lam[order[0]].real), float(lam[order[1]].real)
    v1 = V[:, order[0]].real / np.linalg.norm(V[:, order[0]].real)
    v2 = V[:, order[1]].real / np.linalg.norm(V[:, order[1]].real)
    model = ElmanRNN(W, np.eye(2), np.zeros(2), activation="identity")
    x = np.zeros((T, 2))
    h = model.forward(x, h0=v1).h
    norms = np.linalg.norm(h, axis=1)
    pred = np.abs(l1) ** np.arange(T + 1)
    err = float(np.max(np.abs(norms - pred) / pred))
    # The two components of h0 = v1 + v2 along the eigenbasis, after T steps.
    hT = model.forward(x, h0=v1 + v2).h[T]
    c = np.linalg.solve(np.stack([v1, v2], axis=1), hT)
    ratio = float(abs(c[1] / c[0]))
    ok = (err < 1e-10 and abs(l1) < 1 and norms[T] < 0.5
          and abs(ratio - abs(l2 / l1) ** T) / abs(l2 / l1) ** T < 1e-6)
    return Proof(
        "false",
        "|λ_i^t| = |λ_i|^t grows exponentially only when |λ_i| > 1; it decays "
        "exponentially when |λ_i| < 1 and keeps modulus 1 when |λ_i| = 1 (for complex λ_i "
        "it rotates). What is true, for powers of one fixed diagonalisable matrix, is that "
        "the component along the eigenvalue of largest modulus dominates the others "
        "relatively: the ratio of the i-th to the first component is multiplied by "
        "(|λ_i|/|λ_1|)^t → 0 when |λ_i| < |λ_1|, whether λ_1^t grows or not.",
        (
            f"linear RNN (identity activation), W with eigenvalues {g4(l1)} and {g4(l2)}",
            f"starting on the leading eigenvector, ‖h_t‖ = |λ1|^t for t = 0..{T} "
            f"{within(err, 1e-10)} (relative): ‖h_{T}‖ = {g4(norms[T])}, it decays",
            f"from h0 = v1 + v2: second/first component ratio after {T} steps = {g4(ratio)} = "
            f"(|λ2|/|λ1|)^{T}: the leading one dominates relatively while both shrink",
        ),
        ok,
        Counterexample(
            "A linear RNN whose leading eigenvalue has modulus < 1: λ1^t shrinks "
            "geometrically instead of growing.",
            dict(ce),
            {"lambda1": l1, "lambda2": l2, "norm_hT_from_v1": float(norms[T])},
        ),
    )


# ============================================================================ C12
def _c12_explode(W: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> Any:
    s = max(rho(W), rho(step(W, d1)), rho(step(W, d2)))
    if s < 1e-3:
        return None
    W = W * (0.95 / s)
    return W, float(np.log(rho(step(W, d2) @ step(W, d1))))


def _c12_vanish(W: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> Any:
    s = min(rho(W), rho(step(W, d1)), rho(step(W, d2)))
    if s < 1e-3:
        return None
    W = W * (1.05 / s)
    r2 = rho(step(W, d2) @ step(W, d1))
    return W, float(-np.log(max(r2, 1e-300)))


def search_c12() -> dict[str, Any]:
    """Two Hypothesis searches over a 2×2 W and two tanh′ patterns: (a) ρ(W) and every
    step's ρ(J) ≤ 0.95, maximising ρ(J_2 J_1); (b) ρ(W) and every step's ρ(J) ≥ 1.05,
    minimising ρ(J_2 J_1)."""
    a = _search_alternating(
        _c12_explode, [([[-4.49, -4.31], [5.19, 4.78]], [0.77, 0.98], [0.75, 0.47])])
    b = _search_alternating(
        _c12_vanish, [([[1.41, -0.62], [0.14, 1.08]], [0.019, 0.97], [0.75, 0.018])])
    return {"explode": a, "vanish": b}


@claim(
    "C12",
    claim="If the largest eigenvalue λ1 < 1 the gradient vanishes; if λ1 > 1 it explodes",
    where="after Eq. 9, Conclusions",
    method="counterexample",
    search=search_c12,
)
def c12() -> Proof:
    ce = load_counterexample("C12")
    a, b = ce["explode"], ce["vanish"]
    Wa, Wb = as_array(a["W"]), as_array(b["W"])
    ea = _alternating_evidence(Wa, as_array(a["d1"]), as_array(a["d2"]), int(a["T"]))
    eb = _alternating_evidence(Wb, as_array(b["d1"]), as_array(b["d2"]), int(b["T"]))
    Ta, Tb = int(a["T"]), int(b["T"])
    # The linear RNN with the same W_a: ρ < 1 is sufficient for vanishing there.
    lin = ElmanRNN(Wa, np.eye(2), np.zeros(2), activation="identity")
    Tl = 400
    lin_tr = lin.forward(np.zeros((Tl, 2)), h0=np.ones(2))
    lin_log = float(jacobians.log_norm_profile(lin, lin_tr, 0)[Tl])
    ok = (ea["r"].error < 1e-9 and eb["r"].error < 1e-9
          and spectral_radius(Wa) < 1 and float(ea["step_rhos"].max()) < 1 and ea["logT"] > 5
          and spectral_radius(Wb) > 1 and float(eb["step_rhos"].min()) > 1 and eb["logT"] < -5
          and lin_log < -5 and explosion_possible(Wa, "tanh").holds)
    return Proof(
        "false",
        "Eigenvalues decide neither way in a nonlinear RNN. Pascanu et al.'s precise "
        "statements: for a linear RNN (h_t = W h_{t−1} + …), ρ(W) < 1 is sufficient for the "
        "long-term Jacobians W^(t−k) to vanish and ρ(W) > 1 is necessary for them to explode. "
        "For h_t = f(W h_{t−1} + …) with |f′| ≤ γ_h: σ_max(W) < 1/γ_h is sufficient for "
        "vanishing (‖∂h_t/∂h_k‖ ≤ (σ_max γ_h)^(t−k)) and σ_max(W) > 1/γ_h is necessary for "
        "exploding. Neither converse holds.",
        (
            "(a) tanh trajectory realised with inputs (library Jacobians "
            f"{within(ea['r'].error, 1e-9)}): ρ(W) = {g4(spectral_radius(Wa))} < 1 and every "
            f"step Jacobian has ρ ≤ {g4(ea['step_rhos'].max())} < 1, yet "
            f"ln ‖∂h_{Ta}/∂h_0‖ = {g4(ea['logT'])}: it explodes (ρ(J_2 J_1) = {g4(ea['rho2'])})",
            f"(a) consistent with Pascanu: σ_max(W) = {g4(gamma_w(Wa))} > 1/γ_h = 1 "
            "(explosion possible); and the linear RNN with the same W vanishes: "
            f"ln ‖W^{Tl}‖ = {g4(lin_log)}",
            "(b) tanh trajectory realised with inputs (library Jacobians "
            f"{within(eb['r'].error, 1e-9)}): ρ(W) = {g4(spectral_radius(Wb))} > 1 and every "
            f"step Jacobian has ρ ≥ {g4(eb['step_rhos'].min())} > 1, yet "
            f"ln ‖∂h_{Tb}/∂h_0‖ = {g4(eb['logT'])}: it vanishes (ρ(J_2 J_1) = {g4(eb['rho2'])})",
        ),
        ok,
        Counterexample(
            "Two 2-unit tanh RNNs with alternating saturation: (a) every eigenvalue of W and of "
            "each step Jacobian has modulus < 1 and the gradient explodes; (b) every such "
            "eigenvalue has modulus > 1 and the gradient vanishes.",
            dict(ce),
            {"a_spectral_radius_W": spectral_radius(Wa),
             "a_max_step_spectral_radius": float(ea["step_rhos"].max()),
             "a_log_norm_dhT_dh0": ea["logT"],
             "b_spectral_radius_W": spectral_radius(Wb),
             "b_min_step_spectral_radius": float(eb["step_rhos"].min()),
             "b_log_norm_dhT_dh0": eb["logT"]},
        ),
    )


# ============================================================================ C14
_T14 = 8


def _rho_gap(W: np.ndarray, T: int) -> tuple[float, tuple[int, int]]:
    """max over pairs of ln‖W^(t−k)‖ − (t−k) ln ρ(W), and the pair (numpy only)."""
    lr = np.log(rho(W))
    best, pair, P = -np.inf, (0, 0), np.eye(W.shape[0])
    for s in range(1, T + 1):
        P = W @ P
        g = float(np.log(np.linalg.norm(P, 2)) - s * lr)
        if g > best:
            best, pair = g, (s, 0)
    return best, pair


def search_c14() -> dict[str, Any]:
    """Hypothesis search over `strategies.non_normal_matrices` (n = 2..4, ρ ≤ 0.8,
    σ_max ≥ 2): maximise how far ‖∂h_t/∂h_k‖ exceeds (ρ(W) γ_h)^(t−k)."""
    from hypothesis import given, settings, target
    from hypothesis import strategies as st

    from rnntheory import strategies as rst

    best: dict[str, Any] = {}

    @settings(max_examples=150, database=None, deadline=None, derandomize=True)
    @given(rst.non_normal_matrices(st.integers(2, 4), radius=0.8, min_norm=2.0))
    def explore(W):
        if rho(W) < 0.05:
            return
        score = _rho_gap(W, _T14)[0]
        target(score)
        if score > best.get("score", -np.inf):
            best.update(W=W, score=score)

    explore()
    return {"W": best["W"], "T": _T14}


@claim(
    "C14",
    claim="γ_W is \"the largest eigenvalue associated with ‖Wᵀ‖\"",
    where="after Eq. 10",
    method="counterexample",
    search=search_c14,
)
def c14() -> Proof:
    ce = load_counterexample("C14")
    W, T = as_array(ce["W"]), int(ce["T"])
    n = W.shape[0]
    r = realize(W, np.ones((T, n)))  # zero input at the origin: tanh′ = 1, J = W
    cert = certify(r.model, r.trace, bounds=("eq12",))
    L = cert.log_norms
    rho_w = spectral_radius(W)
    B = pair_log_bounds(np.full(T, np.log(rho_w)))
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    gap = L[t_idx, k_idx] - B[t_idx, k_idx]
    w = int(np.argmax(gap))
    tw, kw = int(t_idx[w]), int(k_idx[w])
    sv = float(np.sqrt(np.max(np.linalg.eigvalsh(W.T @ W))))
    ok = (r.error < 1e-12 and cert["eq12"].holds and float(gap[w]) > 1.0
          and abs(sv - gamma_w(W)) < 1e-12 * sv)
    return Proof(
        "false",
        "Read as an eigenvalue of W (or Wᵀ), the constant is the spectral radius ρ(W), "
        "and (ρ(W) γ_h)^(t−k) does not bound ‖∂h_t/∂h_k‖ for a non-normal W. The constant "
        "that makes Eqs. 10–12 hold is the spectral norm γ_W = ‖Wᵀ‖ = ‖W‖ = σ_max(W) = "
        "√λ_max(WᵀW): the square root of the largest eigenvalue of WᵀW, not an eigenvalue "
        "of W. Always ρ(W) ≤ σ_max(W), with equality for normal W.",
        (
            f"W ({n}×{n}, from strategies.non_normal_matrices): ρ(W) = {g4(rho_w)}, "
            f"σ_max(W) = {g4(gamma_w(W))} = √λ_max(WᵀW) {within(abs(sv - gamma_w(W)) / sv, 1e-12)}",
            "tanh trajectory at the origin (zero inputs, tanh′ = 1): library step Jacobians "
            f"equal W {within(r.error, 1e-12)}",
            f"with γ_W = ρ(W) the bound fails: at (t, k) = ({tw}, {kw}) "
            f"ln ‖∂h_t/∂h_k‖ − (t−k) ln(ρ(W) γ_h) = {g4(gap[w])} > 0; "
            f"{int((gap > 0).sum())} of {gap.size} pairs violate it",
            f"with γ_W = σ_max(W) bounds.certify confirms Eq. 12 on all {cert['eq12'].pairs_checked} "
            f"pairs: {cert['eq12'].holds}",
        ),
        ok,
        Counterexample(
            "A non-normal W with small spectral radius and large spectral norm; at the origin "
            "of a tanh RNN the Jacobian norms exceed (ρ(W) γ_h)^(t−k).",
            dict(ce),
            {"spectral_radius_W": rho_w, "sigma_max_W": gamma_w(W),
             "max_log_excess_over_rho_bound": float(gap[w])},
        ),
    )


# ============================================================================ C18
def search_c18() -> dict[str, Any]:
    """Hypothesis search: W (2×2 or 3×3) and one tanh′ pattern d ∈ [0.05, 1] with
    ‖diag(d)W‖ = 0.9, maximising σ_max(W) (so γ = σ_max γ_h ≫ 1 while nothing grows)."""
    from hypothesis import example, given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    best: dict[str, Any] = {}
    gains = st.floats(0.05, 1.0, allow_nan=False)

    @settings(max_examples=300, database=None, deadline=None, derandomize=True)
    @example((np.array([[0.5, 0.0], [0.0, 5.0]]), np.array([1.0, 0.1])))
    @given(st.integers(2, 3).flatmap(lambda n: st.tuples(
        hnp.arrays(np.float64, (n, n), elements=_entries()),
        hnp.arrays(np.float64, n, elements=gains))))
    def explore_pair(pair):
        W, d = pair
        s = float(np.linalg.norm(step(W, d), 2))
        if s < 1e-3:
            return
        W = W * (0.9 / s)
        score = float(np.log(np.linalg.norm(W, 2)))
        target(score)
        if score > best.get("score", -np.inf):
            best.update(W=W, d=d, score=score)

    explore_pair()
    return {"W": best["W"], "d": best["d"], "T": 30}


@claim(
    "C18",
    claim="γ < 1 makes the gradient vanish, γ > 1 makes it explode; γ is tied to the "
    "leading eigenvalues of the Jacobians",
    where="after Eq. 12",
    method="counterexample + numeric check",
    search=search_c18,
)
def c18() -> Proof:
    ce = load_counterexample("C18")
    W, d, T = as_array(ce["W"]), as_array(ce["d"]), int(ce["T"])
    n = W.shape[0]
    r = realize(W, np.tile(d, (T, 1)))
    cert = certify(r.model, r.trace, bounds=("eq12", "step_norm"))
    L = cert.log_norms
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    max_pair = float(L[t_idx, k_idx].max())
    gam = gamma_w(W)
    step_norm = float(np.linalg.norm(r.J[0], 2))
    step_rho = rho(r.J[0])
    # The true half: γ = σ_max γ_h < 1 is sufficient, on a random model and inputs.
    m = ElmanRNN.init(3, 5, None, scheme="gaussian", scale=1.0, seed=18)
    m = m.replace(W_hh=m.W_hh * (0.9 / gamma_w(m.W_hh)))
    tr = m.forward(np.random.default_rng(18).normal(size=(T, 3)))
    cert_v = certify(m, tr, bounds=("eq12",))
    ok = (r.error < 1e-9 and explosion_possible(W, "tanh").holds and max_pair < 0
          and float(L[T, 0]) < -2 and cert["eq12"].holds and cert["step_norm"].holds
          and vanishing_guaranteed(m.W_hh, "tanh").holds and cert_v["eq12"].holds
          and step_rho < gam - 1.0)
    return Proof(
        "false",
        "With γ = σ_max(W) γ_h (γ_h = sup|f′|): γ < 1 is sufficient for vanishing, since "
        "‖∂h_t/∂h_k‖ ≤ γ^(t−k) for every input and state; γ > 1 is only necessary for "
        "exploding (it makes explosion possible, not certain: saturated units can make every "
        "product contract). And γ is a singular-value bound, not an eigenvalue: every "
        "eigenvalue λ of a step Jacobian satisfies |λ| ≤ ‖J_i‖ ≤ γ, often with a wide gap.",
        (
            f"W ({n}×{n}): γ = σ_max(W)·γ_h = {g4(gam)} > 1 (bounds.explosion_possible holds), "
            f"ρ(W) = {g4(spectral_radius(W))}",
            "tanh trajectory realised with inputs (partly saturated units, library Jacobians "
            f"{within(r.error, 1e-9)}): every step has ‖J_i‖ = {g4(step_norm)}",
            f"every pair 0 ≤ k < t ≤ {T}: ln ‖∂h_t/∂h_k‖ ≤ {g4(max_pair)} < 0, and "
            f"ln ‖∂h_{T}/∂h_0‖ = {g4(L[T, 0])}: nothing explodes, the gradient vanishes",
            f"γ vs eigenvalues: ρ(J_i) = {g4(step_rho)} while γ = {g4(gam)}",
            f"sufficient half: a 5-unit tanh RNN with σ_max(W) = 0.9 satisfies Eq. 12 on all "
            f"{cert_v['eq12'].pairs_checked} pairs of a random trajectory: {cert_v['eq12'].holds}",
        ),
        ok,
        Counterexample(
            "A tanh RNN with γ = σ_max(W) γ_h ≫ 1 whose inputs keep some units saturated; "
            "every ‖∂h_t/∂h_k‖ decays.",
            dict(ce),
            {"gamma": gam, "step_norm": step_norm, "log_norm_dhT_dh0": float(L[T, 0])},
        ),
    )
