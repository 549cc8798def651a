"""C20, C23, C25, C26: truncated BPTT, teacher forcing, echo state networks, Hessian-free."""

from __future__ import annotations

import numpy as np

from rnntheory import jacobians
from rnntheory.bounds import gamma_w
from rnntheory.cells.elman import ElmanRNN, Trace
from rnntheory.ledger import Proof, claim

from ._trajectory import g4, realize, within


def _bptt_by_lag(model: ElmanRNN, trace: Trace, e: np.ndarray) -> tuple[np.ndarray, float]:
    """The terms of Eq. 6 for ∂E/∂W_hh (standard form), summed by lag j = t − k.

    ``e[t-1] = ∂E_t/∂h_t``. The term of the pair (t, k) is
    ``C_{t,k} = (f′(a_k) ⊙ (∂h_t/∂h_k)ᵀ e_t) h_{k−1}ᵀ``, with ``∂h_t/∂h_k`` an explicit
    product of the library's step Jacobians. Returns the sums per lag ``(T, n, n)`` and
    the largest ``‖C_{t,k}‖_F / (γ_h γ^(t−k) ‖e_t‖ ‖h_{k−1}‖)`` over all pairs
    (≤ 1 by Eq. 12; γ = σ_max(W_hh) γ_h).
    """
    J = jacobians.step_jacobians(model, trace)
    T, n = J.shape[0], J.shape[1]
    fp = model.activation.fprime(np.asarray(trace.a, dtype=np.float64))
    gh = model.activation.gamma_h
    gam = gamma_w(model.W_hh) * gh
    by_lag = np.zeros((T, n, n))
    worst = 0.0
    for k in range(1, T + 1):
        P = np.eye(n)
        hk = trace.h[k - 1]
        for t in range(k, T + 1):
            if t > k:
                P = J[t - 1] @ P
            C = np.outer(fp[k - 1] * (P.T @ e[t - 1]), hk)
            by_lag[t - k] += C
            den = gh * gam ** (t - k) * np.linalg.norm(e[t - 1]) * np.linalg.norm(hk)
            if den > 0:
                worst = max(worst, float(np.linalg.norm(C) / den))
    return by_lag, worst


# ============================================================================ C20
@claim(
    "C20",
    claim="Truncated BPTT bounds the growth by limiting the number of steps",
    where="TBPTT paragraph",
    method="calculus + numeric check",
)
def c20() -> Proof:
    T, k2 = 30, 5
    th = 0.9
    W = 1.5 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    r = realize(W, np.full((T, 2), 0.9))  # every ‖J_i‖ = 1.35: the exploding regime
    y = np.random.default_rng(20).uniform(-1, 1, size=(T, 2))
    _, grads = r.model.value_and_grad(r.x, y, loss="mse")
    e = r.trace.h[1:] - y  # ∂E_t/∂h_t for ½‖h_t − y_t‖² without readout
    by_lag, worst = _bptt_by_lag(r.model, r.trace, e)
    g_full = by_lag.sum(axis=0)
    full_err = float(np.linalg.norm(g_full - grads.W_hh) / np.linalg.norm(grads.W_hh))
    g_trunc = by_lag[:k2].sum(axis=0)
    gam = gamma_w(W)  # γ_h = 1 for tanh
    geo = (gam**k2 - 1) / (gam - 1)
    bound = float(np.linalg.norm(e, axis=1).sum() * np.linalg.norm(r.trace.h[:-1], axis=1).max() * geo)
    n_full, n_trunc = float(np.linalg.norm(g_full)), float(np.linalg.norm(g_trunc))
    bias = float(np.linalg.norm(g_full - g_trunc) / n_full)
    ok = (r.error < 1e-12 and full_err < 1e-10 and worst <= 1 + 1e-9 and n_trunc <= bound
          and n_full > 10 * bound)
    return Proof(
        "holds with conditions",
        "With truncation window k₂ (each E_t is backpropagated at most k₂ − 1 steps), the "
        "truncated gradient keeps only the terms of Eq. 6 with t − k < k₂, each bounded by "
        "γ_h (σ_max(W_hh) γ_h)^(t−k) ‖∂E_t/∂h_t‖ ‖h_{k−1}‖, so ‖g_trunc‖ ≤ "
        "Σ_t ‖∂E_t/∂h_t‖ · max_k ‖h_{k−1}‖ · γ_h (γ^{k₂} − 1)/(γ − 1) with γ = σ_max γ_h: a bound "
        "that no longer grows with the distance t − k. Conditions: the bound is still "
        "exponential in k₂ when γ > 1 (k₂ must be small); it limits the number of Jacobian "
        "factors, not their size; and g_trunc is not the gradient of E — the dropped terms "
        "are exactly the dependencies longer than k₂ steps.",
        (
            f"tanh RNN, W_hh = 1.5·R(0.9), realised trajectory with every ‖J_i‖ = 1.35 "
            f"(library Jacobians {within(r.error, 1e-12)}), T = {T}, squared-error loss",
            "Eq. 6 summed over all pairs from explicit Jacobian products equals the library's "
            f"BPTT gradient ∂E/∂W_hh {within(full_err, 1e-10)} (relative)",
            f"every pair term satisfies ‖C_t,k‖ ≤ γ_h γ^(t−k) ‖e_t‖ ‖h_(k−1)‖: max ratio "
            f"{g4(worst)} ≤ 1",
            f"window k₂ = {k2}: ‖g_trunc‖ = {g4(n_trunc)} ≤ bound {g4(bound)}; the full "
            f"gradient has norm {g4(n_full)}",
            f"‖g_full − g_trunc‖/‖g_full‖ = {g4(bias)}: truncation changes the gradient",
        ),
        ok,
    )


# ============================================================================ C23
@claim(
    "C23",
    claim="Teacher forcing initialises the model in the right regime; it needs a target at "
    "every step",
    where="Teacher forcing",
    method="reading + numeric check",
)
def c23() -> Proof:
    # Output feedback: h_t = tanh(W h_{t−1} + U ŷ_{t−1} + b), ŷ_t = V h_t.
    # Free running feeds ŷ_{t−1} = V h_{t−1}: an Elman RNN with W + U V and no input.
    # Teacher forcing feeds the target y_{t−1}: an Elman RNN with W and input U y_{t−1}.
    rng = np.random.default_rng(23)
    n, T = 3, 20
    W = 0.6 * rng.normal(size=(n, n)) / np.sqrt(n)
    U = rng.normal(size=(n, 1))
    V = rng.normal(size=(1, n))
    b = 0.3 * rng.normal(size=n)
    h0 = rng.normal(size=n)
    free = ElmanRNN(W + U @ V, np.zeros((n, 1)), b)
    tr_free = free.forward(np.zeros((T, 1)), h0=h0)
    y = tr_free.h[:-1] @ V.T  # targets equal to the model's own outputs ŷ_0..ŷ_{T−1}
    tf = ElmanRNN(W, U, b)
    tr_tf = tf.forward(y, h0=h0)
    same = float(np.max(np.abs(tr_tf.h - tr_free.h)))
    J_free = jacobians.step_jacobians(free, tr_free)
    J_tf = jacobians.step_jacobians(tf, tr_tf)
    fp = free.activation.fprime(tr_free.a)
    diff_err = float(np.max(np.abs((J_free - J_tf) - fp[:, :, None] * (U @ V)[None])))
    L_free = float(jacobians.log_norm_profile(free, tr_free, 0)[T])
    L_tf = float(jacobians.log_norm_profile(tf, tr_tf, 0)[T])
    ok = same < 1e-12 and diff_err < 1e-12 and abs(L_free - L_tf) > 0.5
    return Proof(
        "not mathematical",
        "\"Initialises the model in the right regime\" is a statement about training practice, "
        "not a theorem. What is precise: teacher forcing feeds the target y_{t−1} where the "
        "model would feed its own output ŷ_{t−1}, so it needs y_{t−1} at every step whose "
        "output is fed back; the step Jacobian loses the path through the output, "
        "diag(f′)(W + U V) becomes diag(f′) W, so the gradient it computes is that of a "
        "different (open-loop) system, and it coincides with the free-running trajectory "
        "only when the outputs equal the targets.",
        (
            "output-feedback tanh RNN (n = 3, T = 20): teacher forcing with targets equal to "
            f"the free-running outputs reproduces the free-running states {within(same, 1e-12)}",
            "library step Jacobians: free running − teacher forced = diag(f′) U V "
            + within(diff_err, 1e-12),
            f"ln ‖∂h_{T}/∂h_0‖: free running {g4(L_free)}, teacher forced {g4(L_tf)}: "
            "different gradient paths",
        ),
        ok,
    )


# ============================================================================ C25
def _time_below(logs: np.ndarray, level: float) -> int:
    """First t after which ln‖∂h_t/∂h_0‖ stays ≤ level (len(logs) if never)."""
    above = np.nonzero(logs > level)[0]
    return int(above[-1] + 1) if above.size else 0


@claim(
    "C25",
    claim="An ESN with spectral radius slightly below 1 holds information for a limited, "
    "small number of steps",
    where="ESN paragraph",
    method="reading + numeric check",
)
def c25() -> Proof:
    T = 3000
    rng = np.random.default_rng(25)
    q, rr = np.linalg.qr(rng.normal(size=(4, 4)))
    Q = q * np.where(np.diag(rr) < 0, -1.0, 1.0)
    res: dict[str, np.ndarray] = {}
    for name, Wr in (("0.99", 0.99 * Q), ("0.999", 0.999 * Q)):
        m = ElmanRNN(Wr, np.zeros((4, 1)), np.zeros(4), activation="identity")
        res[name] = jacobians.log_norm_profile(m, m.forward(np.zeros((T, 1))), 0)
    Wn = np.array([[0.99, 1.0], [0.0, 0.99]])
    mn = ElmanRNN(Wn, np.zeros((2, 1)), np.zeros(2), activation="identity")
    Ln = jacobians.log_norm_profile(mn, mn.forward(np.zeros((T, 1))), 0)
    # A tanh reservoir driven by inputs: saturation shortens the memory.
    mt = ElmanRNN(0.99 * Q, np.eye(4), np.zeros(4))
    trt = mt.forward(rng.normal(size=(200, 4)))
    Lt = jacobians.log_norm_profile(mt, trt, 0)
    err100 = abs(float(res["0.99"][100]) - 100 * np.log(0.99))
    t99, t999, tn = (_time_below(res["0.99"], -1.0), _time_below(res["0.999"], -1.0),
                     _time_below(Ln, -1.0))
    ok = (err100 < 1e-10 and t99 == 100 and 990 <= t999 <= 1010 and tn > 3 * t99
          and float(Ln.max()) > 3 and float(Lt[100]) < float(res["0.99"][100]) - 1)
    return Proof(
        "not mathematical",
        "\"Small\" is not defined. What is precise, for a linear reservoir h_t = W h_{t−1} + …: "
        "if ρ(W) < 1 then ‖W^t‖ → 0 (memory is finite), for a normal W exactly "
        "‖∂h_t/∂h_0‖ = ρ^t, a time constant −1/ln ρ ≈ 1/(1 − ρ) that grows without bound as "
        "ρ → 1 (100 steps at ρ = 0.99, 1000 at 0.999); for a non-normal W, ‖W^t‖ can exceed "
        "ρ^t by a large factor and memory lasts longer; with tanh units driven by inputs "
        "saturation shortens it. The echo state property is guaranteed by σ_max(W) γ_h < 1, "
        "not by ρ(W) < 1.",
        (
            f"linear reservoir 0.99·Q (Q orthogonal, n = 4): ‖∂h_100/∂h_0‖ = "
            f"{g4(np.exp(res['0.99'][100]))} = 0.99^100 {within(err100, 1e-10)} (in ln)",
            f"steps until ‖∂h_t/∂h_0‖ stays below 1/e: {t99} at ρ = 0.99, {t999} at ρ = 0.999",
            f"non-normal reservoir [[0.99, 1], [0, 0.99]] (ρ = 0.99): peak ‖W^t‖ = "
            f"{g4(np.exp(Ln.max()))}, below 1/e only after {tn} steps",
            f"tanh reservoir 0.99·Q driven by N(0, 1) inputs: ln ‖∂h_100/∂h_0‖ = {g4(Lt[100])} "
            f"vs {g4(res['0.99'][100])} for the linear one",
        ),
        ok,
    )


# ============================================================================ C26
@claim(
    "C26",
    claim="Hessian-free with structural damping rescales long-term components independently",
    where="HF paragraph",
    method="reading + numeric check",
)
def c26() -> Proof:
    rng = np.random.default_rng(26)
    n, T = 3, 6
    model = ElmanRNN.init(2, n, None, scheme="gaussian", scale=1.2, seed=26)
    x = rng.normal(size=(T, 2))
    y = rng.uniform(-0.5, 0.5, size=(T, n))
    tr = model.forward(x)
    _, grads = model.value_and_grad(x, y, loss="mse")
    g = grads.W_hh.ravel()
    # Gauss–Newton matrix G = Σ_t J_tᵀ J_t, J_t = ∂h_t/∂vec(W_hh), row j read from the
    # library's BPTT: with target h_t − e_j at step t only, ∂E/∂W_hh = e_jᵀ ∂h_t/∂W_hh.
    rows = []
    for t in range(T):
        mask = np.eye(T)[t]
        for j in range(n):
            yt = np.zeros((T, n))
            yt[t] = tr.h[t + 1] - np.eye(n)[j]
            rows.append(model.value_and_grad(x, yt, loss="mse", mask=mask)[1].W_hh.ravel())
    Jm = np.array(rows)
    G = Jm.T @ Jm
    lam = 1e-2 * float(np.trace(G)) / G.shape[0]
    delta = -np.linalg.solve(G + lam * np.eye(G.shape[0]), g)
    mu, Ue = np.linalg.eigh(G)
    pred = -(Ue.T @ g) / (mu + lam)
    rescale_err = float(np.linalg.norm(Ue.T @ delta - pred) / np.linalg.norm(pred))
    spread = float((mu.max() + lam) / (mu.min() + lam))
    # Short- and long-term parts of the gradient (lags < 2 and ≥ 2), from Eq. 6.
    by_lag, _ = _bptt_by_lag(model, tr, tr.h[1:] - y)
    g_short, g_long = by_lag[:2].sum(axis=0).ravel(), by_lag[2:].sum(axis=0).ravel()
    recon = float(np.linalg.norm(g_short + g_long - g) / np.linalg.norm(g))
    cos = float(g_short @ g_long / (np.linalg.norm(g_short) * np.linalg.norm(g_long)))
    ok = rescale_err < 1e-10 and recon < 1e-10 and abs(cos) > 1e-3 and spread > 10
    return Proof(
        "not mathematical",
        "What is precise: a damped Gauss–Newton (Hessian-free) step solves (G + λI) δ = −g, so "
        "in the eigenbasis of the curvature matrix G each component of the gradient is "
        "rescaled independently, by 1/(μ_i + λ). Nothing makes the long-term and short-term "
        "parts of the gradient (the terms of Eq. 6 with large or small t − k) lie along "
        "different eigenvectors of G, or be orthogonal; that they do is a hope, not a "
        "guarantee. Structural damping adds the Gauss–Newton matrix of a penalty on changes "
        "of the hidden states to G; it changes G, not this argument.",
        (
            "3-unit tanh RNN, T = 6: Gauss–Newton matrix of the hidden-state outputs w.r.t. "
            "W_hh built from the library's BPTT rows",
            "in the eigenbasis of G the damped step equals −(u_iᵀ g)/(μ_i + λ) "
            f"{within(rescale_err, 1e-10)} (relative); the factors span a ratio of {g4(spread)}",
            f"Eq. 6 split into lags < 2 and ≥ 2 adds up to the library gradient "
            f"{within(recon, 1e-10)}; cos(short-term, long-term part) = {g4(cos)}: not orthogonal",
        ),
        ok,
    )
