"""``verify`` rows on the initialisers: orthogonal initialisers are orthogonal
and keep a linear network's gradient norms at 1; leaky units (Eq. 14) obey their
lower and upper bounds on every pair."""

from __future__ import annotations

import time

import numpy as np

from .. import bounds, jacobians
from ..cells.elman import ElmanRNN
from ..init import gate_blocks, haar_orthogonal, henaff, leaky_alpha, scaled_orthogonal
from . import check
from ._context import CheckContext
from ._result import CheckResult


def _log_sigma_min_pairs(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ln σ_min`` and ``ln σ_max`` of every explicit product ``J_t ⋯ J_{k+1}``
    (``k < t``), by SVD of the float64 product (small ``T`` only)."""
    T, n, _ = J.shape
    lo = np.full((T + 1, T + 1), -np.inf)
    hi = np.full((T + 1, T + 1), -np.inf)
    for k in range(T + 1):
        P = np.eye(n)
        lo[k, k] = hi[k, k] = 0.0
        for t in range(k + 1, T + 1):
            P = J[t - 1] @ P
            s = np.linalg.svd(P, compute_uv=False)
            with np.errstate(divide="ignore"):
                lo[t, k], hi[t, k] = np.log(s[-1]), np.log(s[0])
    return lo, hi


def _cum_log_norms(J: np.ndarray) -> np.ndarray:
    """``[t, k] = Σ_{i=k+1}^{t} ln ‖J_i‖`` (the log of the product of the factors' norms)."""
    with np.errstate(divide="ignore"):
        b = np.log(np.linalg.norm(J, 2, axis=(1, 2)))
    c = np.concatenate([[0.0], np.cumsum(b)])
    return c[:, None] - c[None, :]


@check("orthogonal-init", order=200)
def orthogonal_init(ctx: CheckContext) -> CheckResult:
    """Verify row: every orthogonal initialiser has ``WᵀW = I`` and ``|λ| = 1``;
    a linear RNN with such a ``W_hh`` has ``‖∂h_t/∂h_k‖ = 1`` on every pair."""
    start = time.perf_counter()
    worst, entries, tried = 0.0, 0, 0
    rng = np.random.default_rng(6)
    for n in (1, 2, 5, 8):
        for make in (
            lambda m: haar_orthogonal(m, seed=rng),
            lambda m: henaff(m, seed=rng),
            lambda m: henaff(m, seed=rng, conjugate=True),
            lambda m: gate_blocks(m, 4, seed=rng)[m : 2 * m],
        ):
            W = make(n)
            tried += 1
            worst = max(worst, float(np.max(np.abs(W.T @ W - np.eye(n)))))
            worst = max(worst, float(np.max(np.abs(np.abs(np.linalg.eigvals(W)) - 1.0))))
            entries += n * n + n
            m = ElmanRNN(W, rng.normal(size=(n, 2)), rng.normal(size=n), activation="identity")
            L = jacobians.log_norms(m, m.forward(rng.normal(size=(20, 2))))
            low = np.tril_indices(21, -1)
            worst = max(worst, float(np.max(np.abs(L[low]))))
            entries += low[0].size
    return CheckResult(
        "orthogonal-init",
        "WᵀW = I and |λ| = 1 for Haar/Henaff/per-gate orthogonal W; linear RNN: ‖∂h_t/∂h_k‖ = 1",
        tried, entries, worst, worst < 1e-10,
        "max of |WᵀW − I|, ||λ| − 1| and |ln‖∂h_t/∂h_k‖| (linear units, T = 20)",
        time.perf_counter() - start,
    )


@check("leaky-bounds", order=210)
def leaky_bounds(ctx: CheckContext) -> CheckResult:
    """Verify row: leaky units (Eq. 14) obey, on every pair,
    ``σ_min(∂h_t/∂h_k) ≥ (min α − c)^(t−k)`` (where positive) and
    ``‖∂h_t/∂h_k‖ ≤ (max α + c')^(t−k)``, ``c = c' = max(1 − α) γ_W γ_h``."""
    start = time.perf_counter()
    rng = np.random.default_rng(14)
    worst, pairs, tried, failed, nontrivial = -np.inf, 0, 0, 0, 0
    T = 10
    for i in range(12):
        n = 2 + i % 4
        act = ("tanh", "sigmoid", "identity")[i % 3]
        form = ("standard", "pascanu")[i % 2]
        alpha = leaky_alpha(n, 0.02, 0.2, kind="leak", seed=rng) if i % 4 else rng.uniform(0, 1, n)
        W = scaled_orthogonal(n, float(rng.uniform(0.05, 2.0)), seed=rng) @ np.diag(rng.uniform(0.3, 1, n))
        m = ElmanRNN(W, rng.normal(size=(n, 2)), rng.normal(size=n), activation=act, form=form, alpha=alpha)
        tr = m.forward(rng.normal(size=(T, 2)))
        J = jacobians.step_jacobians(m, tr)
        lo_obs, hi_obs = _log_sigma_min_pairs(J)
        steps = np.subtract.outer(np.arange(T + 1), np.arange(T + 1))
        low = np.tril_indices(T + 1, -1)
        s = steps[low]
        up = bounds.leaky_log_bound(m.W_hh, act, m.alpha, s)
        lb = bounds.leaky_log_lower_bound(m.W_hh, act, m.alpha, s)
        tol = 1e-9 * (1 + s)
        r_up = hi_obs[low] - up
        # rounding of the explicit product and its SVD: absolute error in σ_min
        # of order (t − k + 1)·n·ε·Π‖J_i‖
        err = 8 * (s + 1) * n * np.finfo(float).eps * np.exp(_cum_log_norms(J)[low])
        with np.errstate(invalid="ignore", over="ignore"):
            ok_lo = np.isneginf(lb) | (lo_obs[low] - lb >= -tol) | (np.exp(lo_obs[low]) >= np.exp(lb) - err)
            r_lo = np.where(np.isneginf(lb), -np.inf, lb - lo_obs[low])
        tried += 1
        nontrivial += int(np.isfinite(lb).all())
        pairs += s.size + int(np.isfinite(lb).sum())
        worst = max(worst, float(np.max(r_up)), float(np.max(r_lo)))
        if not (np.all(r_up <= tol) and np.all(ok_lo)):
            failed += 1
    return CheckResult(
        "leaky-bounds",
        "Eq. 14: (min α − c)^(t−k) ≤ σ_min(∂h_t/∂h_k) ≤ ‖∂h_t/∂h_k‖ ≤ (max α + c)^(t−k), "
        "c = max(1−α) γ_W γ_h",
        tried, pairs, worst, failed == 0,
        "max ln(observed/upper) and ln(lower/σ_min) over pairs (T = 10, explicit products by SVD); "
        f"lower bound positive for {nontrivial} of {tried} models"
        + (f"; {failed} model(s) failed" if failed else ""),
        time.perf_counter() - start,
    )
