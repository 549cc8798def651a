"""``verify`` rows on the remedies: gradient clipping (Eq. 13), truncated BPTT of
the Elman network, the spectral-norm projection, and the Ω regularizer (Eqs. 15–16)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import bounds as bd
from .. import jacobians as jac
from .._oracles import rel_err
from ..cells.elman import ElmanRNN, Trace
from ..remedies import clip_by_norm, global_norm, project_spectral_norm
from ..remedies.omega import omega
from . import check
from ._context import CheckContext
from ._result import CheckResult


@check("clipping", order=130)
def clipping(ctx: CheckContext) -> CheckResult:
    """Eq. 13: the clipped global norm is min(‖g‖, τ) and the direction is kept."""
    cfg = ctx.cfg
    rng = np.random.default_rng(cfg.seed + 11)
    worst, count = 0.0, 0
    for e in (-200, -5, 0, 5, 200):
        for tau in (1e-3, 1.0, 1e3):
            g = {"W_hh": rng.normal(size=(7, 7)) * 10.0**e, "b_h": rng.normal(size=7) * 10.0**e}
            norm = float(np.sqrt(sum(np.sum((v / 10.0**e) ** 2) for v in g.values()))) * 10.0**e
            out, _ = clip_by_norm(g, tau)
            got = global_norm(out)
            want = min(norm, tau)

            def unit(d: dict[str, np.ndarray]) -> np.ndarray:
                v = np.concatenate([a.ravel() for a in d.values()])
                v = v / np.max(np.abs(v))  # rescale first: no under/overflow
                return v / np.linalg.norm(v)

            cos = float(unit(out) @ unit(g))
            worst = max(worst, abs(got - want) / want, abs(cos - 1.0))
            count += 1
    return CheckResult(
        "clipping", "Eq. 13: ‖clip(g)‖ = min(‖g‖, τ), same direction (norms from 1e-200 to 1e200)",
        count, count, worst, worst < 1e-13, "relative error of the norm and of the cosine",
    )


@check("truncation", order=140)
def truncation(ctx: CheckContext) -> CheckResult:
    """Truncated BPTT equals the windowed double sum of Eq. 6 from explicit products."""
    models = ctx.models
    worst, count, tried = 0.0, 0, 0
    rng = np.random.default_rng(5)
    for _, m0, x in models[::6]:
        m = m0.replace(W_yh=rng.normal(size=(3, m0.n_hidden)), b_y=np.zeros(3))
        xs = x[:12]
        y = np.asarray(rng.integers(0, 3, xs.shape[0]))
        tr = m.forward(xs)
        J = jac.step_jacobians(m, tr)
        for k2 in (1, 3, 7):
            _, g = m.value_and_grad(xs, y, truncate=k2)
            V = np.asarray(m.W_yh, np.float64)
            flow = np.zeros_like(tr.h)
            for t in range(1, xs.shape[0] + 1):
                z = V @ tr.h[t] + m.b_y
                p = np.exp(z - z.max())
                p /= p.sum()
                p[y[t - 1]] -= 1.0
                e = V.T @ p
                P = np.eye(m.n_hidden)
                for k in range(t, max(t - k2, -1), -1):
                    if k < t:
                        P = P @ J[k]
                    flow[k] += P.T @ e
            worst = max(worst, rel_err(g.flow, flow))
            count += 1
        tried += 1
    return CheckResult(
        "truncation", "TBPTT(k2): the flow is the windowed double sum of Eq. 6 (t − k < k2)",
        tried, count, worst, worst < 1e-10, "relative error against explicit Jacobian products",
    )


@check("projection", order=150)
def projection(ctx: CheckContext) -> CheckResult:
    """After projecting W_hh onto σ_max ≤ c, certify proves Eq. 12 with γ_W ≤ c."""
    models = ctx.models
    worst, count, tried, failed = -np.inf, 0, 0, []
    for label, m, x in models:
        if m.leaky:
            continue
        for c in (0.5, 1.0):
            mp = project_spectral_norm(m, c)
            cert = bd.certify(mp, mp.forward(x), bounds=("eq12",))["eq12"]
            ok = cert.holds and bd.gamma_w(mp.W_hh) <= c
            worst = max(worst, cert.max_log_ratio)
            count += cert.pairs_checked
            tried += 1
            if not ok:
                failed.append(label)
    return CheckResult(
        "projection", "σ_max(W_hh) ≤ c after projection, and Eq. 12 holds with γ_W ≤ c",
        tried, count, float(worst), not failed, "max ln(observed/bound)",
    )


@check("omega", order=220)
def omega_row(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: Ω ≥ 0, Ω = 0 for an orthogonal linear RNN, and
    the fixed-flow gradient against central differences of Ω with the flow,
    ``h_k`` and the input terms held fixed (three forms, both variants)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(29)
    n, T, B = 3, 6, 2
    worst_fd, min_value, entries, models = 0.0, np.inf, 0, 0
    cases = [("standard", "tanh", None, "squared"), ("pascanu", "sigmoid", None, "norm"),
             ("standard", "tanh", rng.uniform(0.0, 1.0, n), "norm"), ("pascanu", "tanh", 0.3, "squared")]
    for form, act, alpha, variant in cases:
        m = ElmanRNN(rng.normal(0.0, 0.8, (n, n)), rng.normal(size=(n, 2)), rng.normal(0.0, 0.3, n),
                     rng.normal(size=(2, n)), np.zeros(2), activation=act, form=form, alpha=alpha)
        x = rng.normal(size=(T, B, 2))
        y = rng.integers(0, 2, size=(T, B))
        _, g = m.value_and_grad(x, y)
        tr = m.forward(x)
        res = omega(m, tr, g.flow, variant=variant)
        min_value = min(min_value, res.value)
        hk = tr.h[:-1]

        def fixed(W: np.ndarray, m: ElmanRNN = m, tr: Any = tr, hk: np.ndarray = hk,
                  flow: np.ndarray = g.flow, variant: str = variant) -> float:
            a = tr.a if m.form == "pascanu" else tr.a + hk @ (W - m.W_hh).T
            return omega(m.replace(W_hh=W), Trace(tr.h, a, tr.y), flow, variant=variant).value

        scale = float(np.max(np.abs(res.W_hh)))
        for i in range(n):
            for j in range(n):
                E = np.zeros((n, n))
                E[i, j] = 1e-6
                fd = (fixed(m.W_hh + E) - fixed(m.W_hh - E)) / 2e-6
                worst_fd = max(worst_fd, abs(fd - float(res.W_hh[i, j])) / scale)
                entries += 1
        models += 1
    # orthogonal W_hh, identity units: every ‖J_{k+1}ᵀ v‖ = ‖v‖
    q, r = np.linalg.qr(rng.normal(size=(4, 4)))
    lin = ElmanRNN(q * np.sign(np.diag(r)), rng.normal(size=(4, 2)), np.zeros(4), rng.normal(size=(3, 4)),
                   np.zeros(3), activation="identity")
    x = rng.normal(size=(T, B, 2))
    _, g = lin.value_and_grad(x, rng.normal(size=(T, B, 3)), loss="mse")
    orth = omega(lin, lin.forward(x), g.flow).value
    models += 1
    ok = worst_fd < 1e-6 and min_value >= 0.0 and orth < 1e-24
    return CheckResult(
        "omega",
        "Eqs. 15–16: Ω ≥ 0; Ω = 0 for orthogonal W_hh with linear units; "
        "fixed-flow ∂Ω/∂W_hh = central differences",
        models, entries, worst_fd, bool(ok),
        f"max |FD − ∂Ω/∂W|/max|∂Ω/∂W| (standard, Pascanu, leaky; both variants); "
        f"min Ω {min_value:.3g}; orthogonal-linear Ω {orth:.1e}",
        time.perf_counter() - t0,
    )
