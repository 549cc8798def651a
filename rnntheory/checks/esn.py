"""``verify`` rows on the echo state network: the reservoir's scaling, the
echo-state certificate's contraction rate, and the ridge readout."""

from __future__ import annotations

import numpy as np

from ..esn import echo_state_certificate, random_esn, ridge_regression
from . import check
from ._context import CheckContext
from ._result import CheckResult


def _rho(W: np.ndarray) -> float:
    """``ρ(W)`` from NumPy's eigenvalues (independent of the scaling under test)."""
    return float(np.max(np.abs(np.linalg.eigvals(W))))


@check("esn-scaling", order=170)
def esn_scaling(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: a scaled reservoir has exactly the requested ρ(W) and σ_max(W).

    The dense reservoirs are measured by LAPACK; the sparse (CSR)
    ones (120 units) by ARPACK, the path of large reservoirs. Both are checked here against
    NumPy's dense eigenvalues and singular values.
    """
    worst, count = 0.0, 0
    cases = [(5, 1.0, False), (20, 0.5, False), (40, 0.2, False), (60, 0.1, False), (120, 0.1, True)]
    for k, (n, conn, sparse) in enumerate(cases):
        for target in (0.3, 0.9, 1.5):
            esn = random_esn(n, spectral_radius=target, connectivity=conn, sparse=sparse, seed=k)
            W = esn.W.toarray() if sparse else esn.W
            worst = max(worst, abs(_rho(W) - target) / target)
            esn = random_esn(n, spectral_norm=target, connectivity=conn, sparse=sparse, seed=k)
            W = esn.W.toarray() if sparse else esn.W
            worst = max(worst, abs(float(np.linalg.svd(W, compute_uv=False)[0]) - target) / target)
            count += 2
    return CheckResult(
        "esn-scaling", "random_esn: ρ(W) or σ_max(W) equals the requested value (1e−10; dense and sparse)",
        count, count, worst, worst <= 1e-10, "max relative error",
    )


@check("esn-certificate", order=180)
def esn_certificate(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: the echo-state certificate's rate bounds the contraction."""
    worst, count, tried = -np.inf, 0, 0
    for k, (sigma, leak) in enumerate([(0.5, 1.0), (0.9, 0.5), (0.99, 0.2), (0.7, 0.9)]):
        rng = np.random.default_rng(k)
        esn = random_esn(30, 2, 1, spectral_norm=sigma, leak_rate=leak, input_scaling=2.0,
                         bias_scaling=0.5, feedback_scaling=0.5, seed=rng)
        rate = echo_state_certificate(esn).rate
        u, y = rng.uniform(-2, 2, (40, 2)), rng.uniform(-1, 1, (40, 1))
        x0, x1 = rng.uniform(-1, 1, 30), rng.uniform(-1, 1, 30)
        gap = np.linalg.norm(esn.run(u, y, x0=x0) - esn.run(u, y, x0=x1), axis=1)
        bound = rate ** np.arange(1, 41) * np.linalg.norm(x0 - x1)
        ok = gap > 1e-280
        worst = max(worst, float(np.max(np.log(gap[ok] / bound[ok]))))
        count += 40
        tried += 1
    return CheckResult(
        "esn-certificate",
        "(1 − a) + a·σ_max(W) < 1 ⇒ ‖x_t − x′_t‖ ≤ rate^t ‖x_0 − x′_0‖ (same input)",
        tried, count, worst, worst <= 1e-9, "max ln(gap/bound)",
    )


@check("esn-ridge", order=190)
def esn_ridge(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: both ridge solvers equal the closed form (ZᵀZ + λI)⁻¹ZᵀY."""
    worst, count = 0.0, 0
    rng = np.random.default_rng(0)
    for lam in (0.0, 1e-6, 1e-2, 1.0):
        Z, Y = rng.normal(size=(50, 8)), rng.normal(size=(50, 2))
        want = (np.linalg.inv(Z.T @ Z + lam * np.eye(8)) @ Z.T @ Y).T
        for solver in ("lstsq", "normal"):
            got = ridge_regression(Z, Y, lam, solver=solver)
            worst = max(worst, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
            count += want.size
    return CheckResult(
        "esn-ridge", "ridge readout W_outᵀ = (ZᵀZ + λI)⁻¹ZᵀY (both solvers)",
        8, count, worst, worst <= 1e-9, "max relative error",
    )
