"""``verify`` rows on Jacobians and gradients: the step Jacobian (Eq. 9), the chain
rule (Eqs. 7–8), log-norms of long products, and BPTT (Eqs. 5–8), each against
an oracle independent of the kernels (central differences of a NumPy step, SVDs
and mpmath products of explicit matrices)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .. import jacobians as jac
from .._oracles import central_gradient, central_jacobian, elman_step, mp_log_norms, rel_err
from ..cells.elman import ElmanRNN, Trace
from . import check
from ._context import CheckContext
from ._result import CheckResult


def _step(model: ElmanRNN, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One step of ``model`` written from the definitions, in float64 (the oracle's model)."""
    return np.asarray(elman_step(model.W_hh, model.W_hx, model.b_h, h, x, f=model.activation.f,
                                 form=model.form, alpha=model.alpha))


def _central_row(
    ctx: CheckContext,
    name: str,
    claim: str,
    tol: float,
    pairs: Callable[[int], Iterable[tuple[int, int]]],
    kernel: Callable[[ElmanRNN, Trace], Callable[[int, int], np.ndarray]],
) -> CheckResult:
    """The row ``name``: ``kernel(m, tr)(t, k)`` against central differences of
    ``h_t`` as a function of ``h_k`` (the NumPy step rolled from ``k`` to
    ``t``), over ``pairs(T)`` of every default model's trace; it passes when the
    worst relative error is below ``tol``."""
    models = ctx.models
    worst, count = 0.0, 0
    for _, m, x in models:
        tr = m.forward(x)
        got = kernel(m, tr)
        for t, k in pairs(tr.T):
            def roll(
                h: np.ndarray, t: int = t, k: int = k, m: ElmanRNN = m, x: np.ndarray = x
            ) -> np.ndarray:
                for i in range(k + 1, t + 1):
                    h = _step(m, h, x[i - 1])
                return h

            fd = central_jacobian(roll, tr.h[k], relative=True)
            worst = max(worst, rel_err(got(t, k), fd))
            count += 1
    return CheckResult(name, claim, len(models), count, worst, worst < tol, "relative error, central differences")


def _steps(m: ElmanRNN, tr: Trace) -> Callable[[int, int], np.ndarray]:
    """``(t, k) ↦ J_t``, the step Jacobians of the trace (``k = t − 1``)."""
    J = jac.step_jacobians(m, tr)
    return lambda t, k: J[t - 1]


def _products(m: ElmanRNN, tr: Trace) -> Callable[[int, int], np.ndarray]:
    """``(t, k) ↦ J_t ⋯ J_{k+1}``, the product as :func:`rnntheory.jacobians.product` computes it."""
    def one(t: int, k: int) -> np.ndarray:
        P = jac.product(m, tr, t, k)
        assert isinstance(P, np.ndarray)
        return P

    return one


@check("step-jacobian", order=10)
def step_jacobian(ctx: CheckContext) -> CheckResult:
    """Eq. 9: each step Jacobian of every default model against central differences of one NumPy step."""
    return _central_row(
        ctx, "step-jacobian", "Eq. 9: ∂h_i/∂h_{i−1} (each form) equals finite differences", 1e-6,
        lambda T: [(i, i - 1) for i in range(1, T + 1, 7)], _steps,
    )


@check("chain-rule", order=20)
def chain_rule(ctx: CheckContext) -> CheckResult:
    """Eqs. 7–8: the product ``J_t ⋯ J_{k+1}`` against central differences of ``h_t`` as a function of ``h_k``."""
    return _central_row(
        ctx, "chain-rule", "Eqs. 7–8: ∂h_t/∂h_k = J_t⋯J_{k+1} equals finite differences of h_t(h_k)", 1e-5,
        lambda T: sorted({(min(5, T), 0), (T // 2, T // 4), (T, max(0, T - 6)), (T, T - 1)}), _products,
    )


@check("log-norms", order=30)
def log_norms(ctx: CheckContext) -> CheckResult:
    """``log_norms`` against ``ln σ_max`` of the explicit product (SVD), every pair of every fourth model."""
    models = ctx.models
    worst, count = 0.0, 0
    for _, m, x in models[::4]:
        tr = m.forward(x[:40])
        L = jac.log_norms(m, tr)
        J = jac.step_jacobians(m, tr)
        for t in range(0, tr.T + 1, 3):
            P = np.eye(m.n_hidden)
            for k in range(t, -1, -1):
                if k < t:
                    P = P @ J[k]
                s = np.linalg.svd(P, compute_uv=False)[0]
                if s > 0:
                    worst = max(worst, abs(L[t, k] - np.log(s)) / max(1.0, abs(np.log(s))))
                count += 1
    return CheckResult(
        "log-norms", "log_norms equals ln σ_max of the explicit product (SVD)",
        len(models[::4]), count, worst, worst < 1e-9, "relative error of the log",
    )


@check("log-norm-range", order=40)
def log_norm_range(ctx: CheckContext) -> CheckResult:
    """Products whose entries span more than float64's range: closed forms and
    exponent-unbounded explicit products."""
    cfg = ctx.cfg
    worst, count, stacks = 0.0, 0, 0

    def compare(L: np.ndarray, R: np.ndarray) -> None:
        nonlocal worst, count
        low = np.tril_indices(R.shape[0])
        r, l_ = R[low], L[low]
        same_zero = np.array_equal(np.isfinite(r), np.isfinite(l_))
        fin = np.isfinite(r)
        err = np.abs(l_[fin] - r[fin]) / np.maximum(1.0, np.abs(r[fin]))
        worst = max(worst, float(err.max(initial=0.0)) if same_zero else np.inf)
        count += r.size

    def compare_column(out: np.ndarray, R: np.ndarray, k: int) -> None:
        nonlocal worst, count
        r, o = R[k:, k], out[k:]
        if not np.array_equal(np.isfinite(r), np.isfinite(o)):
            worst = np.inf
            return
        fin = np.isfinite(r)
        err = np.abs(o[fin] - r[fin]) / np.maximum(1.0, np.abs(r[fin]))
        worst = max(worst, float(err.max(initial=0.0)))
        count += r.size

    # diag(1, ε, 1)^m then the projection onto e2: ‖·‖ = ε^m (e^-13816 for the first)
    for eps, m in [(1e-200, 30), (1e-5, 200), (3e-155, 7)]:
        E = np.zeros((3, 3))
        E[1, 1] = 1.0
        J = np.stack([np.diag([1.0, eps, 1.0])] * m + [E])
        T = J.shape[0]
        R = np.full((T + 1, T + 1), -np.inf)
        for t in range(T + 1):
            for k in range(t + 1):
                R[t, k] = (m - k) * np.log(eps) if k <= m < t else 0.0
        compare(jac.log_norms_from_jacobians(J), R)
        for k in (0, m // 2):  # the profile multiplies from the other end
            compare_column(jac.log_norm_profile_from_jacobians(J, k), R, k)
        stacks += 1
    # entries 0 or ±u·10^e, e in [-320, 0] (subnormals included), against mpmath
    rng = np.random.default_rng(cfg.seed)
    for _ in range(12):
        T, n = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        mag = rng.uniform(1.0, 10.0, (T, n, n)) * 10.0 ** rng.integers(-320, 1, (T, n, n)).astype(float)
        J = np.where(rng.random((T, n, n)) < 0.2, 0.0, rng.choice([-1.0, 1.0], (T, n, n)) * mag)
        R = mp_log_norms(J)
        compare(jac.log_norms_from_jacobians(J), R)
        for k in range(T + 1):
            compare_column(jac.log_norm_profile_from_jacobians(J, k), R, k)
        stacks += 1
    # ReLU, W_hh with entries 1, 1.955e-138 and -7.44e-197 (a case Hypothesis found):
    # ‖∂h_3/∂h_0‖ = e^-768.7, which plain rescaled float64 products put at e^-951
    a, e = 1.955e-138, -7.4437e-197
    W = np.array([[a, e, e, e], [e, e, 1.0, e], [e, e, e, e], [e, e, e, e]])
    m_relu = ElmanRNN(W, np.zeros((4, 1)), np.array([1.0, 1.0, -1.0, -1.0]), activation="relu")
    tr = m_relu.forward(np.zeros((3, 1)))
    R = mp_log_norms(jac.step_jacobians(m_relu, tr))
    compare(jac.log_norms(m_relu, tr), R)
    for k in range(4):
        compare_column(jac.log_norm_profile(m_relu, tr, k), R, k)
    stacks += 1
    return CheckResult(
        "log-norm-range",
        "log_norms stays exact where a product's entries span more than float64's range",
        stacks, count, worst, worst < 1e-9,
        "relative error of the log against closed forms and mpmath explicit products",
    )


@check("bptt", order=50)
def bptt(ctx: CheckContext) -> CheckResult:
    """Eqs. 5–8: the BPTT gradient of every parameter against central differences of the loss."""
    cfg = ctx.cfg
    rng = np.random.default_rng(cfg.seed + 1)
    worst, count, tried = 0.0, 0, 0
    for i in range(cfg.fd_models):
        form = ("standard", "pascanu")[i % 2]
        act = ("tanh", "sigmoid")[(i // 2) % 2]
        alpha = None if i % 3 else rng.uniform(0.1, 0.9, cfg.fd_hidden)
        m = ElmanRNN.init(2, cfg.fd_hidden, 3, activation=act, scheme="gaussian", scale=1.3,
                          seed=cfg.seed + i, form=form, alpha=alpha)
        m = m.replace(b_h=rng.normal(0, 0.5, cfg.fd_hidden), b_y=rng.normal(0, 0.5, 3))
        x = rng.normal(size=(cfg.fd_T, 2))
        y = rng.integers(0, 3, cfg.fd_T)
        _, g = m.value_and_grad(x, y)
        tried += 1

        def loss(p: dict[str, np.ndarray], m: ElmanRNN = m, x: np.ndarray = x, y: np.ndarray = y) -> float:
            return float(m.replace(**p).value_and_grad(x, y)[0])

        fd = central_gradient(loss, m.params(), 1e-6, keys=list(g.params()))
        for name, grad in g.params().items():
            worst = max(worst, rel_err(grad, fd[name]))
            count += int(np.size(grad))
    return CheckResult(
        "bptt", "Eqs. 5–8: BPTT gradient of every parameter equals finite differences",
        tried, count, worst, worst < 1e-6, "relative error, central differences",
    )
