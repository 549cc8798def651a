"""Bounds on the gradient flow, Pascanu's conditions, and certificates.

The article's Eq. 12 reads ``‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k)``. It holds when
``γ_W`` is the spectral norm ``σ_max(W_hh)`` (not the spectral radius, not "the
largest eigenvalue"; see :func:`gamma_w`) and ``γ_h = sup|f′|``. Tighter bounds
use the trajectory: ``Π_i ‖W_hh‖ max_j |f′(a_i)_j|`` and ``Π_i ‖J_i‖``
(submultiplicativity). For leaky units (Eq. 14) the step bound is
``max α + max(1 − α) γ_W γ_h``, and ``min α − max(1 − α) γ_W γ_h``, where
positive, bounds the smallest singular value from below
(:func:`leaky_log_lower_bound`): such gradients cannot vanish faster.

Every bound here is returned as a natural log, so products of any length are
finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _gated_jacobians as GJ
from ._validation import as_float_array, check_int, check_real
from .activations import Activation, get_activation
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GatedTrace
from .jacobians import (
    AnyTrace,
    Model,
    _check_model,
    _single,
    log_norms_from_jacobians,
    step_jacobians,
)

__all__ = [
    "BoundCheck",
    "Certificate",
    "Condition",
    "certify",
    "decay_rate",
    "explosion_possible",
    "gamma_h",
    "gamma_w",
    "leaky_log_bound",
    "leaky_log_lower_bound",
    "log_bound",
    "pair_log_bounds",
    "spectral_radius",
    "step_log_bounds",
    "steps_to_vanish",
    "vanishing_guaranteed",
]

BOUND_NAMES = ("eq12", "activation", "step_norm", "gated")
ELMAN_BOUNDS = ("eq12", "activation", "step_norm")
GATED_BOUNDS = ("gated", "step_norm")


def _matrix(W: Any) -> np.ndarray:
    W = as_float_array("W", W, ndim=2)
    return np.asarray(W, dtype=np.float64)


def gamma_w(W: Any) -> float:
    """``γ_W = σ_max(W)``, the spectral norm (largest singular value).

    This is the constant for which Eq. 10–12 of the article hold. The spectral
    radius ``ρ(W) = max|λ_i|`` can be much smaller for a non-normal ``W`` and
    then bounds nothing (claims C12, C14, C18).

    Examples
    --------
    >>> from rnntheory.bounds import gamma_w, spectral_radius
    >>> W = [[0.5, 4.0], [0.0, 0.5]]
    >>> round(gamma_w(W), 4), spectral_radius(W)
    (4.0616, 0.5)
    """
    return float(np.linalg.norm(_matrix(W), 2))


def spectral_radius(W: Any) -> float:
    """``ρ(W) = max_i |λ_i(W)|`` (square ``W``)."""
    M = _matrix(W)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"`W` must be square, got shape {M.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def gamma_h(activation: str | Activation) -> float:
    """``γ_h = sup_x |f′(x)|``: 1 for tanh, identity and ReLU, 1/4 for the sigmoid."""
    return get_activation(activation).gamma_h


def _log(x: float) -> float:
    return float(np.log(x)) if x > 0 else -np.inf


def _steps_times(rate: float, steps: Any) -> Any:
    """``steps · rate`` for non-negative integer ``steps`` (0 where ``steps = 0``, even for ``−inf``)."""
    s = np.asarray(steps)
    if not np.issubdtype(s.dtype, np.integer) or (s < 0).any():
        raise ValueError(f"`steps` must be non-negative integers, got {steps!r}")
    with np.errstate(invalid="ignore"):
        out = np.where(s == 0, 0.0, s * rate)
    return float(out) if out.ndim == 0 else out


def log_bound(W: Any, activation: str | Activation, steps: Any) -> Any:
    """Eq. 12 as a log: ``steps · ln(γ_W γ_h)``.

    Parameters
    ----------
    W : array, shape ``(n, n)``
        Recurrent weights.
    activation : str or Activation
    steps : int or array of int
        ``t − k ≥ 0``.

    Returns
    -------
    float or ndarray
        ``ln`` of the bound on ``‖∂h_t/∂h_k‖`` (0 for ``steps = 0``).
    """
    rate = _log(gamma_w(W) * gamma_h(activation))
    return _steps_times(rate, steps)


def leaky_log_bound(W: Any, activation: str | Activation, alpha: Any, steps: Any) -> Any:
    """Eq. 14's step bound as a log: ``steps · ln(max α + max(1 − α) γ_W γ_h)``.

    For ``J = diag(α) + diag(1 − α) J̃`` with ``‖J̃‖ ≤ γ_W γ_h`` (either form).
    """
    a = np.atleast_1d(as_float_array("alpha", alpha, ndim=(0, 1), dtype=np.dtype(np.float64)))
    if (a < 0).any() or (a > 1).any():
        raise ValueError(f"`alpha` must lie in [0, 1], got values in [{a.min()}, {a.max()}]")
    rate = _log(float(a.max() + (1.0 - a).max() * gamma_w(W) * gamma_h(activation)))
    return _steps_times(rate, steps)


def leaky_log_lower_bound(W: Any, activation: str | Activation, alpha: Any, steps: Any) -> Any:
    r"""Eq. 14's lower bound on the smallest singular value, as a log.

    For leaky units the step Jacobian is ``J = diag(α) + diag(1 − α) J̃`` with
    ``‖J̃‖ ≤ γ_W γ_h`` (either form). Weyl's inequality for singular values,
    ``σ_min(A + B) ≥ σ_min(A) − ‖B‖``, gives

    .. math::

        \sigma_{\min}(J) \ge \min_i \alpha_i - \max_i(1 - \alpha_i)\,\gamma_W\gamma_h =: r,

    and ``σ_min(AB) ≥ σ_min(A) σ_min(B)`` gives
    ``σ_min(∂h_t/∂h_k) ≥ r^(t−k)`` when ``r > 0``: the gradient flow cannot
    vanish faster than ``r`` per step, whatever the inputs (for every vector
    ``v``, ``‖(∂h_t/∂h_k)ᵀ v‖ ≥ r^(t−k) ‖v‖``). When ``r ≤ 0`` the bound is the
    trivial ``σ_min ≥ 0`` (log ``−inf``).

    Parameters
    ----------
    W : array, shape ``(n, n)``
        Recurrent weights.
    activation : str or Activation
    alpha : float or array of shape ``(n,)``
        Retention coefficients in ``[0, 1]``.
    steps : int or array of int
        ``t − k ≥ 0``.

    Returns
    -------
    float or ndarray
        ``steps · ln r`` (0 for ``steps = 0``, ``−inf`` for ``steps > 0`` when ``r ≤ 0``).

    Raises
    ------
    ValueError
        On ``alpha`` outside ``[0, 1]`` or negative ``steps``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.bounds import leaky_log_lower_bound
    >>> W = 0.5 * np.eye(2)
    >>> round(float(np.exp(leaky_log_lower_bound(W, "tanh", [0.9, 0.8], 1))), 12)  # 0.8 − 0.2·0.5
    0.7
    >>> leaky_log_lower_bound(W, "tanh", 0.1, 3)  # 0.1 − 0.9·0.5 < 0: no bound
    -inf

    Eq. 14 of the article (the lower bound is the library's addition).
    """
    a = np.atleast_1d(as_float_array("alpha", alpha, ndim=(0, 1), dtype=np.dtype(np.float64)))
    if (a < 0).any() or (a > 1).any():
        raise ValueError(f"`alpha` must lie in [0, 1], got values in [{a.min()}, {a.max()}]")
    r = float(a.min() - (1.0 - a).max() * gamma_w(W) * gamma_h(activation))
    return _steps_times(_log(r), steps)


@dataclass(frozen=True)
class Condition:
    """The outcome of one of Pascanu et al.'s conditions on ``W_hh``.

    Attributes
    ----------
    name : str
    holds : bool
        Whether the condition is met.
    sigma_max : float
        ``σ_max(W_hh)``.
    threshold : float
        ``1/γ_h``.
    logic : str
        ``"sufficient"`` (the condition guarantees the phenomenon) or
        ``"necessary"`` (the phenomenon is impossible without it, but the
        condition does not make it happen).
    statement : str
        What a true/false value means, in words.
    """

    name: str
    holds: bool
    sigma_max: float
    threshold: float
    logic: str
    statement: str

    def __bool__(self) -> bool:
        return self.holds


def vanishing_guaranteed(W: Any, activation: str | Activation) -> Condition:
    """``σ_max(W) < 1/γ_h``: sufficient for vanishing.

    When it holds, ``‖∂h_t/∂h_k‖ ≤ (σ_max γ_h)^(t−k)`` decays geometrically for
    every input and state (standard and Pascanu forms, no leak). When it does
    not hold, vanishing may still happen. Pascanu et al. 2013, §2.1.
    """
    s = gamma_w(W)
    thr = 1.0 / gamma_h(activation)
    holds = s < thr
    return Condition(
        "vanishing_guaranteed",
        bool(holds),
        s,
        thr,
        "sufficient",
        (
            f"σ_max = {s:.6g} < 1/γ_h = {thr:.6g}: every ‖∂h_t/∂h_k‖ ≤ "
            f"{s / thr:.6g}^(t−k) decays geometrically"
            if holds
            else f"σ_max = {s:.6g} ≥ 1/γ_h = {thr:.6g}: vanishing is not guaranteed "
            "(it may still happen)"
        ),
    )


def explosion_possible(W: Any, activation: str | Activation) -> Condition:
    """``σ_max(W) > 1/γ_h``: necessary for explosion, not sufficient.

    When it fails, ``‖∂h_t/∂h_k‖ ≤ 1`` for every pair, so nothing can explode.
    When it holds, explosion is possible but not implied. Pascanu et al. 2013, §2.1.
    """
    s = gamma_w(W)
    thr = 1.0 / gamma_h(activation)
    holds = s > thr
    return Condition(
        "explosion_possible",
        bool(holds),
        s,
        thr,
        "necessary",
        (
            f"σ_max = {s:.6g} > 1/γ_h = {thr:.6g}: explosion is possible (not implied)"
            if holds
            else f"σ_max = {s:.6g} ≤ 1/γ_h = {thr:.6g}: gradients cannot explode "
            "(every ‖∂h_t/∂h_k‖ ≤ 1)"
        ),
    )


def step_log_bounds(model: Model, trace: AnyTrace, bound: str) -> np.ndarray:
    """Per-step log bounds ``b_i ≥ ln ‖J_i‖``, ``i = 1..T`` (shape ``(T,)``).

    Parameters
    ----------
    bound : {"eq12", "activation", "step_norm", "gated"}
        ``"eq12"``: ``ln(γ_W γ_h)`` (leaky: ``ln(max α + max(1−α) γ_W γ_h)``);
        ``"activation"``: ``ln(γ_W max_j |f′_i|_j)`` with ``f′`` at the step's
        actual arguments (leaky: ``ln(max α + max_j((1−α_j)|f′_ij|) γ_W)`` in
        the standard form, ``ln(max α + max(1−α) γ_W max|f′_i|)`` in Pascanu's);
        ``"step_norm"``: ``ln ‖J_i‖`` itself; ``"gated"`` (LSTM, GRU): the bound
        from gate values and gate-block norms of ``rnntheory._gated_jacobians``.
    """
    trace = _single(trace, "step_log_bounds")
    _check_model(model, trace)
    if bound not in BOUND_NAMES:
        raise ValueError(f"`bound` must be one of {BOUND_NAMES}, got {bound!r}")
    if bound == "step_norm":
        J = step_jacobians(model, trace)
        with np.errstate(divide="ignore"):
            return np.log(np.linalg.norm(J, 2, axis=(1, 2)))
    if not isinstance(model, ElmanRNN):
        if bound != "gated":
            raise ValueError(
                f"`bound` {bound!r} is the Elman RNN's; the article's (γ_W γ_h)^(t−k) does not "
                f"bound a {type(model).__name__} (the carry terms diag(f) / diag(z) are not of "
                "the form diag(f′)W); use bound='gated' or 'step_norm'"
            )
        assert isinstance(trace, GatedTrace)
        with np.errstate(divide="ignore"):
            if trace.c is not None:
                return np.log(GJ.lstm_step_bounds(model.weight_hh, trace.c, trace.pre))
            return np.log(GJ.gru_step_bounds(model.weight_hh, trace.h, trace.pre))
    if bound == "gated":
        raise ValueError("`bound` 'gated' is for LSTM and GRU models, got an ElmanRNN")
    assert isinstance(trace, Trace)
    T = trace.T
    gw = gamma_w(model.W_hh)
    alpha = None if model.alpha is None else np.asarray(model.alpha, np.float64)
    with np.errstate(divide="ignore"):
        if bound == "eq12":
            g = gw * model.activation.gamma_h
            if alpha is not None:
                g = alpha.max() + (1.0 - alpha).max() * g
            return np.full(T, _log(float(g)))
        # bound == "activation"
        fp = np.abs(model.activation.fprime(np.asarray(trace.a, np.float64)))
        if alpha is None:
            return np.log(gw * fp.max(axis=1))
        if model.form == "standard":
            return np.log(alpha.max() + ((1.0 - alpha)[None, :] * fp).max(axis=1) * gw)
        return np.log(alpha.max() + (1.0 - alpha).max() * gw * fp.max(axis=1))


def pair_log_bounds(step_logs: Any) -> np.ndarray:
    """``B[t, k] = Σ_{i=k+1}^{t} b_i`` for ``k ≤ t`` from per-step logs ``b`` ``(T,)``.

    ``0`` on the diagonal, ``−inf`` above it and wherever a step bound is
    ``−inf`` (an exactly zero factor).
    """
    b = np.asarray(step_logs, dtype=np.float64)
    if b.ndim != 1:
        raise ValueError(f"`step_logs` must be one-dimensional, got shape {b.shape}")
    zero = np.isneginf(b)
    c = np.concatenate([[0.0], np.cumsum(np.where(zero, 0.0, b))])
    z = np.concatenate([[0], np.cumsum(zero)])
    out = c[:, None] - c[None, :]
    killed = (z[:, None] - z[None, :]) > 0
    out[killed] = -np.inf
    out[np.triu_indices(b.size + 1, 1)] = -np.inf
    return out


_STATEMENTS = {
    "eq12": "‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k), γ_W = σ_max(W_hh), γ_h = sup|f′| (Eq. 12)",
    "activation": "‖∂h_t/∂h_k‖ ≤ Π_i γ_W max_j |f′(a_i)_j| (data-dependent)",
    "step_norm": "‖∂h_t/∂h_k‖ ≤ Π_i ‖∂h_i/∂h_{i−1}‖ (submultiplicativity)",
    "gated": "‖∂s_t/∂s_k‖ ≤ Π_i κ_i, κ_i from gate values and gate-block norms (LSTM, GRU)",
}


@dataclass(frozen=True)
class BoundCheck:
    """One bound checked on every pair ``(t, k)``, ``0 ≤ k < t ≤ T``.

    Attributes
    ----------
    name : str
        ``"eq12"``, ``"activation"`` or ``"step_norm"``.
    statement : str
        The inequality in words.
    holds : bool
        True only if every pair satisfied it (within ``rtol``) and every
        observed norm was finite.
    pairs_checked : int
    max_log_ratio : float
        ``max over pairs of ln‖∂h_t/∂h_k‖ − ln bound`` (≤ 0 when the bound holds:
        its magnitude is the worst slack). NaN if a norm was not finite.
    worst_pair : tuple of int
        The ``(t, k)`` attaining ``max_log_ratio``.
    violations : ndarray, shape ``(m, 2)``
        Every pair ``(t, k)`` where the bound failed or the norm was not finite.
    assumptions : tuple of str
    """

    name: str
    statement: str
    holds: bool
    pairs_checked: int
    max_log_ratio: float
    worst_pair: tuple[int, int]
    violations: np.ndarray = field(repr=False)
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Certificate:
    """The result of :func:`certify`: each bound checked on every pair.

    Attributes
    ----------
    checks : tuple of BoundCheck
    T : int
    n_hidden : int
    log_norms : ndarray, shape ``(T+1, T+1)``
        The observed ``ln ‖∂h_t/∂h_k‖`` the bounds were checked against.
    """

    checks: tuple[BoundCheck, ...]
    T: int
    n_hidden: int
    log_norms: np.ndarray = field(repr=False)

    @property
    def holds(self) -> bool:
        """True when every bound held on every pair."""
        return all(c.holds for c in self.checks)

    def __getitem__(self, name: str) -> BoundCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"certificate: T = {self.T}, n = {self.n_hidden}"]
        for c in self.checks:
            verdict = "holds" if c.holds else f"FAILS on {len(c.violations)} pair(s)"
            lines.append(
                f"  {c.name:<11} {verdict:<22} pairs {c.pairs_checked:>8}  "
                f"max ln(obs/bound) {c.max_log_ratio: .3e} at {c.worst_pair}"
            )
        return "\n".join(lines)


def _assumptions(model: Model, name: str) -> tuple[str, ...]:
    if not isinstance(model, ElmanRNN):
        state = "(h, c), 2n entries" if type(model).__name__ == "LSTM" else "h"
        return (
            f"{type(model).__name__} in torch's conventions; state {state}",
            "spectral norms; Jacobians evaluated in float64 at the recorded trajectory",
            "valid for this trajectory only",
        )
    out = [
        f"form = {model.form!r}, activation = {model.activation.name!r}",
        "spectral norms; γ_W = σ_max(W_hh) = " + f"{gamma_w(model.W_hh):.6g}",
        f"γ_h = sup|f′| = {model.activation.gamma_h:g}",
        "Jacobians evaluated in float64 at the recorded trajectory",
    ]
    if model.alpha is not None:
        out.append("leaky units: step bound max α + max(1−α)·(non-leaky bound)")
    if name == "eq12":
        out.append("holds for every input and state (not data-dependent)")
    else:
        out.append("valid for this trajectory only")
    return tuple(out)


def certify(
    model: Model,
    trace: AnyTrace,
    *,
    bounds: tuple[str, ...] | None = None,
    rtol: float = 1e-9,
) -> Certificate:
    """Check each bound on every pair ``(t, k)`` of a trajectory.

    A pair passes when ``ln‖∂h_t/∂h_k‖ ≤ ln bound + rtol·(1 + (t − k))``: the
    tolerance absorbs the rounding of ``t − k`` float64 products and nothing
    more. A pair whose norm is not finite is a violation: the certificate never
    reports a bound as holding when any pair fails it or cannot be evaluated.

    Parameters
    ----------
    model : ElmanRNN, LSTM or GRU
    trace : Trace or GatedTrace
        Single-sequence trace from ``model.forward``.
    bounds : tuple of str, optional
        Any of ``"eq12"``, ``"activation"``, ``"step_norm"``; all three by
        default for an Elman RNN; ``("gated", "step_norm")`` for the LSTM and
        GRU (the article's bound does not apply to them; ``"gated"`` is the
        step bound of ``lstm_step_bounds`` / ``gru_step_bounds``).
    rtol : float
        Relative tolerance per step, in log space.

    Returns
    -------
    Certificate

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, bounds
    >>> m = ElmanRNN.init(2, 6, None, scheme="gaussian", scale=1.3, seed=0)
    >>> cert = bounds.certify(m, m.forward(np.ones((20, 2))))
    >>> cert.holds, cert["eq12"].pairs_checked
    (True, 210)
    """
    trace = _single(trace, "certify")
    _check_model(model, trace)
    rtol = check_real("rtol", rtol, low=0.0)
    if bounds is None:
        bounds = ELMAN_BOUNDS if isinstance(model, ElmanRNN) else GATED_BOUNDS
    for b in bounds:
        if b not in BOUND_NAMES:
            raise ValueError(f"`bounds` entries must be in {BOUND_NAMES}, got {b!r}")
    T = trace.T
    L = log_norms_from_jacobians(step_jacobians(model, trace))
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    obs = L[t_idx, k_idx]
    # A pair whose stretch of trajectory is not finite cannot be evaluated: its
    # Jacobians may look harmless (tanh′(±inf) = 0, the identity's J = W) while
    # the state has overflowed. Such pairs count as violations (obs = NaN).
    h = np.asarray(trace.h, np.float64).reshape(T + 1, -1)
    if isinstance(trace, GatedTrace):
        a = np.asarray(trace.pre, np.float64).reshape(T, -1)
        if trace.c is not None:
            h = np.concatenate([h, np.asarray(trace.c, np.float64).reshape(T + 1, -1)], axis=1)
    else:
        a = np.asarray(trace.a, np.float64).reshape(T, -1)
    bad_step = np.asarray(~np.isfinite(h).all(axis=1))
    bad_step[1:] |= ~np.isfinite(a).all(axis=1)
    bad_before = np.concatenate([[0], np.cumsum(bad_step)])  # bad steps in [0, i)
    unevaluable = (bad_before[t_idx + 1] - bad_before[k_idx]) > 0
    obs = np.where(unevaluable, np.nan, obs)
    tol = rtol * (1.0 + (t_idx - k_idx))
    checks = []
    for name in bounds:
        B = pair_log_bounds(step_log_bounds(model, trace, name))[t_idx, k_idx]
        with np.errstate(invalid="ignore"):
            ratio = obs - B
            # -inf observed (exactly zero product) satisfies any bound.
            ratio = np.where(np.isneginf(obs), -np.inf, ratio)
            bad = ~(ratio <= tol)
        viol = np.stack([t_idx[bad], k_idx[bad]], axis=1)
        if ratio.size and np.isnan(ratio).any():
            worst = int(np.argmax(np.isnan(ratio)))
            mlr = float("nan")
        elif ratio.size:
            worst = int(np.argmax(ratio))
            mlr = float(ratio[worst])
        else:
            worst, mlr = 0, float("-inf")
        checks.append(
            BoundCheck(
                name=name,
                statement=_STATEMENTS[name],
                holds=bool(not bad.any()),
                pairs_checked=int(obs.size),
                max_log_ratio=mlr,
                worst_pair=(int(t_idx[worst]), int(k_idx[worst])) if obs.size else (0, 0),
                violations=viol,
                assumptions=_assumptions(model, name),
            )
        )
    return Certificate(tuple(checks), T, model.n_hidden, L)


def decay_rate(W: Any, activation: str | Activation) -> float:
    """``σ_max(W) γ_h``: the per-step contraction factor of Eq. 12."""
    return gamma_w(W) * gamma_h(activation)


def steps_to_vanish(W: Any, activation: str | Activation, tolerance: float = 1e-8) -> int | None:
    """Steps after which Eq. 12 guarantees ``‖∂h_t/∂h_k‖ ≤ tolerance``.

    ``None`` when ``σ_max γ_h ≥ 1`` (no guarantee).
    """
    tolerance = check_real("tolerance", tolerance, low=0.0, high=1.0, low_open=True, high_open=True)
    r = decay_rate(W, activation)
    if r >= 1.0:
        return None
    if r == 0.0:
        return 1
    return check_int("steps", int(np.ceil(np.log(tolerance) / np.log(r))), minimum=0)
