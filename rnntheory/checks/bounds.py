"""``verify`` rows on the bounds: Eq. 12 and its refinements on every pair of the
default models, the leaky bound of Eq. 14, the sufficient condition for
vanishing, the eigenvalue reading's counterexample, and the Lyapunov exponent."""

from __future__ import annotations

import numpy as np

from .. import bounds as bd
from .. import jacobians as jac
from ..cells.elman import ElmanRNN
from . import check
from ._context import CheckContext
from ._result import CheckResult


def _bound_row(models: list[tuple[str, ElmanRNN, np.ndarray]], name: str, leaky: bool) -> CheckResult:
    worst, count, tried, failed = -np.inf, 0, 0, []
    for label, m, x in models:
        if m.leaky != leaky:
            continue
        c = bd.certify(m, m.forward(x), bounds=(name,))[name]
        tried += 1
        count += c.pairs_checked
        worst = max(worst, c.max_log_ratio) if not np.isnan(c.max_log_ratio) else np.nan
        if not c.holds:
            failed.append(label)
    title = {
        "eq12": "Eq. 12: ‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k), γ_W = σ_max",
        "activation": "‖∂h_t/∂h_k‖ ≤ Π γ_W max|f′(a_i)| on every pair",
        "step_norm": "‖∂h_t/∂h_k‖ ≤ Π ‖J_i‖ on every pair",
    }[name]
    if leaky:
        title = "Eq. 14: leaky bound (max α + max(1−α) γ_W γ_h)^(t−k)" if name == "eq12" else title + " (leaky)"
    return CheckResult(
        f"{name}{'-leaky' if leaky else ''}", title, tried, count, float(worst), not failed,
        "max ln(observed/bound) over pairs" + (f"; failed: {', '.join(failed)}" if failed else ""),
    )


@check("eq12", order=60)
def eq12(ctx: CheckContext) -> CheckResult:
    """Eq. 12 on every pair of the non-leaky default models."""
    return _bound_row(ctx.models, "eq12", False)


@check("activation", order=70)
def activation_bound(ctx: CheckContext) -> CheckResult:
    """The activation-aware bound ``Π γ_W max|f′(a_i)|`` on every pair (non-leaky models)."""
    return _bound_row(ctx.models, "activation", False)


@check("step_norm", order=80)
def step_norm_bound(ctx: CheckContext) -> CheckResult:
    """The step-norm bound ``Π ‖J_i‖`` on every pair (non-leaky models)."""
    return _bound_row(ctx.models, "step_norm", False)


@check("eq12-leaky", order=90)
def eq12_leaky(ctx: CheckContext) -> CheckResult:
    """Eq. 14's leaky bound on every pair of the leaky default models."""
    return _bound_row(ctx.models, "eq12", True)


@check("vanishing", order=100)
def vanishing(ctx: CheckContext) -> CheckResult:
    """``σ_max < 1/γ_h`` gives decay at least like ``(σ_max γ_h)^(t−k)`` (models meeting the condition)."""
    models = ctx.models
    worst, count, tried, failed = -np.inf, 0, 0, []
    for label, m, x in models:
        if m.leaky or not bd.vanishing_guaranteed(m.W_hh, m.activation):
            continue
        tried += 1
        L = jac.log_norms(m, m.forward(x))
        rate = np.log(bd.decay_rate(m.W_hh, m.activation))
        t, k = np.tril_indices(L.shape[0], -1)
        r = L[t, k] - (t - k) * rate
        count += r.size
        worst = max(worst, float(np.max(r)))
        if np.max(r) > 1e-9 * (1 + np.max(t - k)):
            failed.append(label)
    return CheckResult(
        "vanishing", "σ_max < 1/γ_h ⇒ ‖∂h_t/∂h_k‖ decays at least like (σ_max γ_h)^(t−k)",
        tried, count, worst, tried > 0 and not failed,
        "max ln(observed/bound); models meeting the condition only",
    )


@check("rho-not-a-bound", order=110)
def rho_not_a_bound(ctx: CheckContext) -> CheckResult:
    """C12/C14/C18: a non-normal W with ρ < 1 < σ_max breaks the eigenvalue reading."""
    cfg = ctx.cfg
    rng = np.random.default_rng(cfg.seed + 7)
    best, count, tried = -np.inf, 0, 0
    for trial in range(4):
        n = 4 + trial
        Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        Tm = np.diag(rng.uniform(-0.5, 0.5, n)) + np.triu(rng.normal(0, 2.0, (n, n)), 1)
        W = Q @ Tm @ Q.T
        for act in ("tanh", "identity"):
            m = ElmanRNN(W, 0.1 * rng.normal(size=(n, 1)), np.zeros(n), activation=act)
            tr = m.forward(0.1 * rng.normal(size=(30, 1)))
            L = jac.log_norms(m, tr)
            rho = bd.spectral_radius(W)
            t, k = np.tril_indices(L.shape[0], -1)
            excess = L[t, k] - (t - k) * np.log(rho * m.activation.gamma_h)
            best = max(best, float(np.max(excess)))
            count += excess.size
            tried += 1
    return CheckResult(
        "rho-not-a-bound",
        "C12/C14/C18: with ρ(W) < 1 < σ_max(W), (ρ γ_h)^(t−k) fails to bound some pair",
        tried, count, best, best > 0,
        "max ln(observed/(ρ γ_h)^(t−k)); > 0 means the eigenvalue reading is refuted",
    )


@check("lyapunov", order=120)
def lyapunov(ctx: CheckContext) -> CheckResult:
    """The largest Lyapunov exponent is at most ``ln(γ_W γ_h)`` (non-leaky models)."""
    models = ctx.models
    worst, tried = -np.inf, 0
    for _, m, x in models:
        if m.leaky:
            continue
        lam = jac.lyapunov_spectrum(m, m.forward(x), k=1)[0]
        worst = max(worst, lam - np.log(bd.decay_rate(m.W_hh, m.activation)))
        tried += 1
    return CheckResult(
        "lyapunov", "largest Lyapunov exponent ≤ ln(γ_W γ_h) (the rate Eq. 12 bounds)",
        tried, tried, float(worst), worst <= 1e-9, "max (λ₁ − ln γ_W γ_h) per step",
    )
