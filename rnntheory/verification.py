"""The numeric checks behind ``rnntheory verify``.

Each check runs over an embedded default set of models (random Gaussian
weights at several scales and Pascanu et al.'s initialisations, tanh and
sigmoid, standard and Pascanu forms, with and without leak; T = 100) and
returns a :class:`CheckResult`. Oracles are independent of the kernels they
check: central finite differences of a NumPy re-implementation of one step,
and SVDs of explicit products.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import bounds as bd
from . import jacobians as jac
from ._validation import check_int, check_real
from .cells.elman import ElmanRNN

__all__ = ["CheckResult", "VerifyConfig", "default_models", "run_checks", "write_report"]


@dataclass(frozen=True)
class CheckResult:
    """One row of the ``verify`` table.

    Attributes
    ----------
    check : str
        Short name.
    claim : str
        What is checked, with its equation.
    models : int
        Models tried.
    pairs : int
        Pairs ``(t, k)`` (or entries) checked.
    worst : float
        Worst value of the check's statistic: ``max ln(observed/bound)`` for
        bounds (≤ 0 means it holds; its magnitude is the slack), the largest
        relative error for identities, the largest ``ln(observed/ρ-bound)`` for
        the counterexample check (> 0 means the counterexample was found).
    passed : bool
    detail : str
    seconds : float
    """

    check: str
    claim: str
    models: int
    pairs: int
    worst: float
    passed: bool
    detail: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["worst"] = float(self.worst) if np.isfinite(self.worst) else None
        d["passed"] = bool(self.passed)
        d["models"], d["pairs"] = int(self.models), int(self.pairs)
        d["verdict"] = "pass" if self.passed else "FAIL"
        return d


@dataclass(frozen=True)
class VerifyConfig:
    """Sizes of the embedded default run."""

    T: int = 100
    n_hidden: int = 12
    n_in: int = 3
    seed: int = 2013
    scales: tuple[float, ...] = (0.5, 0.9, 1.5, 3.0)
    fd_models: int = 4
    fd_hidden: int = 5
    fd_T: int = 12
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("T", "n_hidden", "n_in", "fd_models", "fd_hidden", "fd_T"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0))
        scales = self.scales
        if isinstance(scales, str | bytes) or not isinstance(scales, tuple | list):
            raise TypeError(f"`scales` must be a tuple of positive numbers, got {type(scales).__name__}")
        object.__setattr__(
            self, "scales", tuple(check_real("scales", s, low=0.0, low_open=True) for s in scales)
        )
        if not isinstance(self.extra, dict):
            raise TypeError(f"`extra` must be a dict, got {type(self.extra).__name__}")


def _check_progress(progress: Any) -> None:
    if progress is not None and not isinstance(progress, bool | np.bool_):
        raise TypeError(f"`progress` must be True, False or None, got {progress!r}")


def _check_cfg(cfg: Any) -> VerifyConfig:
    if not isinstance(cfg, VerifyConfig):
        raise TypeError(f"`cfg` must be a VerifyConfig, got {type(cfg).__name__}")
    return cfg


def default_models(cfg: VerifyConfig) -> list[tuple[str, ElmanRNN, np.ndarray]]:
    """The embedded model set: ``(label, model, inputs)`` triples."""
    _check_cfg(cfg)
    out = []
    rng = np.random.default_rng(cfg.seed)
    n, ni, T = cfg.n_hidden, cfg.n_in, cfg.T
    seed = cfg.seed
    for act in ("tanh", "sigmoid"):
        schemes: list[tuple[str, float | None]] = (
            [("smart_tanh", None), ("basic_tanh", None)] if act == "tanh" else [("sigmoid", None)]
        )
        schemes += [("gaussian", s) for s in cfg.scales]
        for scheme, scale in schemes:
            for form in ("standard", "pascanu"):
                for alpha in (None, "range"):
                    seed += 1
                    a = None if alpha is None else rng.uniform(0.02, 0.2, n)
                    m = ElmanRNN.init(
                        ni, n, None, activation=act, scheme=scheme, seed=seed,
                        scale=1.0 if scale is None else scale, form=form, alpha=a,
                    )
                    m = m.replace(b_h=rng.normal(0.0, 0.5, n))
                    x = rng.normal(0.0, 1.0, (T, ni))
                    label = f"{act}/{scheme}{'' if scale is None else f'({scale})'}/{form}"
                    label += "" if a is None else "/leaky"
                    out.append((label, m, x))
    return out


# ----------------------------------------------------------------------------- oracles
def _step_numpy(model: ElmanRNN, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One step written from the definitions, in float64 (the FD oracle's model)."""
    W = np.asarray(model.W_hh, np.float64)
    U = np.asarray(model.W_hx, np.float64)
    b = np.asarray(model.b_h, np.float64)
    f = model.activation.f
    g = f(W @ h + U @ x + b) if model.form == "standard" else W @ f(h) + U @ x + b
    if model.alpha is None:
        return g
    a = np.asarray(model.alpha, np.float64)
    return a * h + (1.0 - a) * g


def _fd_jacobian(fun: Callable[[np.ndarray], np.ndarray], h: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    n = h.size
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps * max(1.0, abs(h[j]))
        cols.append((fun(h + e) - fun(h - e)) / (2 * e[j]))
    return np.stack(cols, axis=1)


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale)


# ----------------------------------------------------------------------------- checks
def _check_step_jacobian(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
    worst, count = 0.0, 0
    for _, m, x in models:
        tr = m.forward(x)
        J = jac.step_jacobians(m, tr)
        for i in range(1, tr.T + 1, 7):
            def one(h: np.ndarray, i: int = i, m: ElmanRNN = m, x: np.ndarray = x) -> np.ndarray:
                return _step_numpy(m, h, x[i - 1])

            fd = _fd_jacobian(one, tr.h[i - 1])
            worst = max(worst, _rel_err(J[i - 1], fd))
            count += 1
    return CheckResult(
        "step-jacobian", "Eq. 9: ∂h_i/∂h_{i−1} (each form) equals finite differences",
        len(models), count, worst, worst < 1e-6, "relative error, central differences",
    )


def _check_chain_rule(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
    worst, count = 0.0, 0
    for _, m, x in models:
        tr = m.forward(x)
        T = tr.T
        pairs = {(min(5, T), 0), (T // 2, T // 4), (T, max(0, T - 6)), (T, T - 1)}
        for t, k in sorted(pairs):
            def roll(
                h: np.ndarray, t: int = t, k: int = k, m: ElmanRNN = m, x: np.ndarray = x
            ) -> np.ndarray:
                for i in range(k + 1, t + 1):
                    h = _step_numpy(m, h, x[i - 1])
                return h

            fd = _fd_jacobian(roll, tr.h[k])
            P = jac.product(m, tr, t, k)
            assert isinstance(P, np.ndarray)
            worst = max(worst, _rel_err(P, fd))
            count += 1
    return CheckResult(
        "chain-rule", "Eqs. 7–8: ∂h_t/∂h_k = J_t⋯J_{k+1} equals finite differences of h_t(h_k)",
        len(models), count, worst, worst < 1e-5, "relative error, central differences",
    )


def _check_log_norms(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
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


def _mp_log_norms(J: np.ndarray) -> np.ndarray:
    """``ln σ_max(J_t ⋯ J_{k+1})`` for every pair: for each t the product is
    extended to the right, ``P ← P J_{k+1}``, in mpmath (unbounded exponents;
    the float64 entries are converted exactly) and σ_max is mpmath's SVD."""
    import mpmath

    T, n, _ = J.shape
    out = np.full((T + 1, T + 1), -np.inf)
    with mpmath.workdps(30):
        mats = [mpmath.matrix(Ji.tolist()) for Ji in J]
        for t in range(T + 1):
            out[t, t] = 0.0
            P = mpmath.eye(n)
            for k in range(t - 1, -1, -1):
                P = P * mats[k]
                top = max(mpmath.svd_r(P, compute_uv=False))
                if top == 0:
                    break
                out[t, k] = float(mpmath.log(top))
    return out


def _check_log_norm_range(cfg: VerifyConfig) -> CheckResult:
    """Products whose entries span more than float64's range: closed forms and
    exponent-unbounded explicit products."""
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
        R = _mp_log_norms(J)
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
    R = _mp_log_norms(jac.step_jacobians(m_relu, tr))
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


def _check_bptt(cfg: VerifyConfig) -> CheckResult:
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
        for name, grad in g.params().items():
            P = m.params()[name]
            fd = np.zeros_like(P)
            for idx in np.ndindex(P.shape):
                eps = 1e-6
                Pp, Pm = P.copy(), P.copy()
                Pp[idx] += eps
                Pm[idx] -= eps
                lp, _ = m.replace(**{name: Pp}).value_and_grad(x, y)
                lm, _ = m.replace(**{name: Pm}).value_and_grad(x, y)
                fd[idx] = (lp - lm) / (2 * eps)
                count += 1
            worst = max(worst, _rel_err(grad, fd))
    return CheckResult(
        "bptt", "Eqs. 5–8: BPTT gradient of every parameter equals finite differences",
        tried, count, worst, worst < 1e-6, "relative error, central differences",
    )


def _check_bound(models: list[tuple[str, ElmanRNN, np.ndarray]], name: str, leaky: bool) -> CheckResult:
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


def _check_vanishing(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
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


def _check_eigen_reading(cfg: VerifyConfig) -> CheckResult:
    """C12/C14/C18: a non-normal W with ρ < 1 < σ_max breaks the eigenvalue reading."""
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


def _check_lyapunov(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
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


def _check_clipping(cfg: VerifyConfig) -> CheckResult:
    """Eq. 13: the clipped global norm is min(‖g‖, τ) and the direction is kept."""
    from .remedies import clip_by_norm, global_norm

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


def _check_truncation(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
    """Truncated BPTT equals the windowed double sum of Eq. 6 from explicit products."""
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
            worst = max(worst, _rel_err(g.flow, flow))
            count += 1
        tried += 1
    return CheckResult(
        "truncation", "TBPTT(k2): the flow is the windowed double sum of Eq. 6 (t − k < k2)",
        tried, count, worst, worst < 1e-10, "relative error against explicit Jacobian products",
    )


def _check_projection(models: list[tuple[str, ElmanRNN, np.ndarray]]) -> CheckResult:
    """After projecting W_hh onto σ_max ≤ c, certify proves Eq. 12 with γ_W ≤ c."""
    from .remedies import project_spectral_norm

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


def _remedy_checks() -> list[Callable[[], CheckResult]]:
    """The guarantee rows of truncated BPTT for gated cells, the echo state
    network, the remedies for vanishing gradients and the sweeps.

    Each lives next to the code it checks; they are imported here, lazily.
    """
    from .cells.gated import _check_gated_truncation
    from .esn import _check_esn_certificate, _check_esn_ridge, _check_esn_spectral_radius
    from .experiments.copy_adding import _check_memoryless_baselines
    from .experiments.init_spectra import _check_init_spectra
    from .experiments.report import _check_flow_metric
    from .experiments.sweep import _check_sweep_resume
    from .init import _check_leaky_bounds, _check_orthogonal
    from .remedies.omega import _check_omega
    from .training.hessian_free import _check_gv_fd, _check_gv_psd

    return [
        _check_gated_truncation,
        _check_esn_spectral_radius,
        _check_esn_certificate,
        _check_esn_ridge,
        _check_orthogonal,
        _check_leaky_bounds,
        _check_omega,
        _check_gv_psd,
        _check_gv_fd,
        _check_init_spectra,
        _check_memoryless_baselines,
        _check_sweep_resume,
        _check_flow_metric,
    ]


def run_checks(cfg: VerifyConfig | None = None, *, progress: bool | None = None) -> Iterator[CheckResult]:
    """Run every numeric check, yielding one :class:`CheckResult` at a time."""
    from tqdm import tqdm

    cfg = VerifyConfig() if cfg is None else _check_cfg(cfg)
    _check_progress(progress)
    models = default_models(cfg)
    jobs: list[Callable[[], CheckResult]] = [
        lambda: _check_step_jacobian(models),
        lambda: _check_chain_rule(models),
        lambda: _check_log_norms(models),
        lambda: _check_log_norm_range(cfg),
        lambda: _check_bptt(cfg),
        lambda: _check_bound(models, "eq12", False),
        lambda: _check_bound(models, "activation", False),
        lambda: _check_bound(models, "step_norm", False),
        lambda: _check_bound(models, "eq12", True),
        lambda: _check_vanishing(models),
        lambda: _check_eigen_reading(cfg),
        lambda: _check_lyapunov(models),
        lambda: _check_clipping(cfg),
        lambda: _check_truncation(models),
        lambda: _check_projection(models),
        *_remedy_checks(),
    ]
    bar = tqdm(jobs, desc="verify", unit="check", disable=(None if progress is None else not progress), leave=False)
    for job in bar:
        t0 = time.perf_counter()
        r = job()
        fields = asdict(r)
        fields.update(passed=bool(r.passed), worst=float(r.worst), seconds=time.perf_counter() - t0)
        yield CheckResult(**fields)


def write_report(
    rows: list[CheckResult],
    out_dir: Any,
    cfg: VerifyConfig | None = None,
    claims: list[Any] | None = None,
) -> Path:
    """Write ``verify.md`` and its figures into ``out_dir`` (``rnntheory verify --report``).

    The page holds the table of checks (and of the claims, when the ledger ran)
    and, for three of the embedded default models (Pascanu et al.'s smart tanh,
    basic tanh and sigmoid initialisations, standard form, no leak), the figures
    the theory is about, computed here from the models:

    * ``flow-<init>.png``: the heatmap of ``ln ‖∂h_t/∂h_k‖`` with the contours
      of the Eq. 12 bound ``(t − k) ln(γ_W γ_h)``;
    * ``lag-<init>.png``: the norm against the lag, with the bound's line;
    * ``eigenvalues.png``: the eigenvalues of each ``W_hh`` against the unit
      circle and the ``σ_max`` circle.

    Parameters
    ----------
    rows : list of CheckResult
        From :func:`run_checks`.
    out_dir : str or os.PathLike
        Created when missing.
    cfg : VerifyConfig, optional
        The configuration the rows were computed with (default ``VerifyConfig()``).
    claims : list of ledger results, optional

    Returns
    -------
    pathlib.Path
        The Markdown file.

    Examples
    --------
    >>> import tempfile
    >>> from rnntheory.verification import CheckResult, VerifyConfig, write_report
    >>> row = CheckResult("demo", "a claim", 1, 1, 0.0, True)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     page = write_report([row], d, VerifyConfig(T=10))
    ...     "| demo |" in page.read_text()
    True
    """
    from .plotting import eigenvalues_unit_circle, gradient_flow_heatmap, norm_vs_lag

    cfg = VerifyConfig() if cfg is None else _check_cfg(cfg)
    if isinstance(rows, str | bytes) or not isinstance(rows, list | tuple):
        raise TypeError(f"`rows` must be a list of CheckResult, got {type(rows).__name__}")
    for r in rows:
        if not isinstance(r, CheckResult):
            raise TypeError(f"`rows` must hold CheckResult records, got {type(r).__name__}")
    if claims is not None:
        if isinstance(claims, str | bytes) or not isinstance(claims, list | tuple):
            raise TypeError(f"`claims` must be a list of ledger results or None, got {type(claims).__name__}")
        for c in claims:
            if not all(hasattr(c, a) for a in ("id", "verdict", "verified", "claim")):
                raise TypeError(f"`claims` must hold ledger results (ClaimResult), got {type(c).__name__}")
    if not isinstance(out_dir, str | os.PathLike) or str(out_dir) == "":
        raise TypeError(f"`out_dir` must be a non-empty str or os.PathLike, got {out_dir!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# rnntheory verify",
        "",
        f"Embedded default: T = {cfg.T}, n = {cfg.n_hidden}, seed = {cfg.seed}. "
        f"{sum(r.passed for r in rows)}/{len(rows)} checks passed. "
        "'worst' is max ln(observed/bound) for bounds (≤ 0 holds), the largest "
        "relative error for identities.",
        "",
        "| check | models | pairs | worst | verdict | claim |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        worst = f"{r.worst:.3e}" if np.isfinite(r.worst) else str(r.worst)
        lines.append(
            f"| {r.check} | {r.models} | {r.pairs} | {worst} | {'pass' if r.passed else 'FAIL'} | {r.claim} |"
        )
    if claims:
        lines += ["", "## Claims ledger", "", "| ID | verdict | re-verified | claim |", "|---|---|---|---|"]
        for c in claims:
            lines.append(f"| {c.id} | {c.verdict} | {'yes' if c.verified else 'NO'} | {c.claim} |")
    lines += ["", "## Gradient flow of three default models", ""]
    picked: dict[str, tuple[ElmanRNN, np.ndarray]] = {}
    for label, m, x in default_models(cfg):
        init = label.split("/")[1]
        if label.endswith("/standard") and init in ("smart_tanh", "basic_tanh", "sigmoid"):
            picked.setdefault(init, (m, x))
    mats: dict[str, list[np.ndarray]] = {}
    for init, (m, x) in picked.items():
        L = jac.log_norms(m, m.forward(x))
        rate = float(np.log(bd.decay_rate(m.W_hh, m.activation)))
        lag = np.subtract.outer(np.arange(L.shape[0]), np.arange(L.shape[0])).astype(float)
        bound = np.where(lag >= 0, lag * rate, -np.inf)
        gradient_flow_heatmap(L, out / f"flow-{init}.png", bound=bound)
        norm_vs_lag(L, out / f"lag-{init}.png", rate=rate)
        mats[init] = [m.W_hh]
        finite = L[np.isfinite(L) & (lag > 0)]
        lines += [
            f"### {init}",
            "",
            f"γ_W = {bd.gamma_w(m.W_hh):.3f}, ρ = {bd.spectral_radius(m.W_hh):.3f}, "
            f"γ_h = {m.activation.gamma_h:.3f}; Eq. 12 rate ln(γ_W γ_h) = {rate:.3f} per step; "
            f"largest observed ln‖∂h_t/∂h_k‖ − (t − k)·rate = "
            f"{float(np.max(L[lag > 0] - bound[lag > 0])):.3f} over {finite.size} pairs.",
            "",
            f"![flow {init}](flow-{init}.png) ![lag {init}](lag-{init}.png)",
            "",
        ]
    eigenvalues_unit_circle(mats, out / "eigenvalues.png")
    lines += ["## Eigenvalues against the unit circle", "", "![eigenvalues](eigenvalues.png)", ""]
    page = out / "verify.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
