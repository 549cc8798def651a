"""``verify`` rows on the curvature that Hessian-free optimisation sees: the
Gauss–Newton product is symmetric positive semi-definite, and equals central
differences of the linearised gradient (Martens & Sutskever 2011)."""

from __future__ import annotations

import time

import numpy as np

from ..cells.curvature import GaussNewton, flatten_params, unflatten_params
from ..cells.elman import FORMS, ElmanRNN
from . import check
from ._context import CheckContext
from ._result import CheckResult


@check("gv-psd", order=230)
def gv_psd(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: ``vᵀ G v ≥ 0`` and ``uᵀ(Gv) = vᵀ(Gu)`` on small models."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(2011)
    worst_neg, worst_sym, n_models, pairs = 0.0, 0.0, 0, 0
    for form in FORMS:
        for act in ("tanh", "sigmoid"):
            for alpha in (None, 0.3):
                for loss in ("xent", "mse"):
                    m = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=1.2, seed=int(rng.integers(1 << 30)),
                                      activation=act, form=form, alpha=alpha)
                    x = rng.normal(size=(12, 2, 2))
                    y = rng.integers(0, 3, (12, 2)) if loss == "xent" else rng.normal(size=(12, 2, 3))
                    G = GaussNewton(m, x, y, loss=loss, lam_struct=0.1)
                    n_models += 1
                    for _ in range(3):
                        u, v = rng.normal(size=(2, G.n_params))
                        Gu, Gv = G(u), G(v)
                        scale = float(np.linalg.norm(Gv) * np.linalg.norm(v)) or 1.0
                        worst_neg = max(worst_neg, -float(v @ Gv) / scale)
                        worst_sym = max(worst_sym, abs(float(u @ Gv) - float(v @ Gu))
                                        / (float(np.linalg.norm(u) * np.linalg.norm(Gv)) or 1.0))
                        pairs += 1
    worst = max(worst_neg, worst_sym)
    return CheckResult(
        "gv-psd",
        "Gauss–Newton (+ structural damping) product: vᵀGv ≥ 0 and uᵀGv = vᵀGu (Martens & Sutskever 2011)",
        n_models, pairs, worst, bool(worst <= 1e-12),
        f"worst relative −vᵀGv {worst_neg:.2g}, worst relative asymmetry {worst_sym:.2g}",
        time.perf_counter() - t0,
    )


@check("gv-fd", order=240)
def gv_fd(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: ``G v`` against central differences of the linearised gradient.

    The oracle: ``J_z v`` and ``J_h v`` by central differences of the forward pass
    in float64, then ``J_zᵀ (H_L J_z v)`` as the gradient of ``θ ↦ ⟨z(θ), H_L J_z v⟩``
    by central differences (each through :meth:`ElmanRNN.forward` only).
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(2012)
    worst, n_models, entries = 0.0, 0, 0
    eps = 1e-6
    for form in FORMS:
        for alpha in (None, 0.4):
            m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.1, seed=int(rng.integers(1 << 30)),
                              form=form, alpha=alpha)
            x = rng.normal(size=(6, 2))
            y = rng.integers(0, 2, 6)
            mask = rng.uniform(0.2, 1.0, 6)
            theta = flatten_params(m.params())
            v = rng.normal(size=theta.size)

            def outs(th: np.ndarray, m: ElmanRNN = m, x: np.ndarray = x) -> tuple[np.ndarray, np.ndarray]:
                tr = m.replace(**unflatten_params(m, th)).forward(x)
                assert tr.y is not None
                return tr.y, tr.h[1:]

            zp, hp = outs(theta + eps * v)
            zm, hm = outs(theta - eps * v)
            Jz_v, Jh_v = (zp - zm) / (2 * eps), (hp - hm) / (2 * eps)
            z0, _ = outs(theta)
            P = np.exp(z0 - z0.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            Hq = mask[:, None] * (P * Jz_v - P * np.sum(P * Jz_v, axis=1, keepdims=True))
            lam_s = 0.3
            ref = np.empty(theta.size)
            for j in range(theta.size):
                e = np.zeros(theta.size)
                e[j] = eps
                za, ha = outs(theta + e)
                zb, hb = outs(theta - e)
                ref[j] = (np.sum(Hq * (za - zb)) + lam_s * np.sum(Jh_v * (ha - hb))) / (2 * eps)
            got = GaussNewton(m, x, y, loss="xent", mask=mask, lam_struct=lam_s)(v)
            worst = max(worst, float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))))
            n_models += 1
            entries += theta.size
    return CheckResult(
        "gv-fd",
        "Gv = J_zᵀ H_L J_z v + λμ Σ J_hᵀ J_h v, against central differences of the forward pass",
        n_models, entries, worst, bool(worst <= 1e-6),
        "relative max error, float64, ε = 1e-6",
        time.perf_counter() - t0,
    )
