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
finite; ``ln γ_W`` is computed from ``W`` scaled by a power of two, so the logs
stay finite even where ``σ_max`` itself exceeds the float64 range (weights of
1e308).

A trace that overflowed (NaN or inf in a state or a step's arguments) has
steps at which no Jacobian, and so no data-dependent bound, can be evaluated:
:func:`step_log_bounds` is NaN there, :func:`pair_log_bounds` is NaN on the
pairs over such a step, and :func:`certify` counts those pairs as violations
(``BoundCheck.unevaluable``), never as holding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _gated_jacobians as GJ
from . import _linalg as LA
from ._traces import (
    AnyTrace,
    Model,
    check_model_trace,
    finite_or_zero,
    nonfinite_steps,
    single_trace,
)
from ._validation import as_float_array, check_int, check_real, show_value
from .activations import Activation, get_activation
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GatedTrace
from .jacobians import log_norms_from_jacobians, step_jacobians

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
    if W.size == 0:
        raise ValueError(f"`W` must be a non-empty matrix, got shape {W.shape}")
    return np.asarray(W, dtype=np.float64)


def _alpha(alpha: Any) -> np.ndarray:
    """Retention coefficients: a non-empty float or 1-D array with entries in ``[0, 1]``."""
    a = np.atleast_1d(as_float_array("alpha", alpha, ndim=(0, 1), dtype=np.dtype(np.float64)))
    if a.size == 0:
        raise ValueError(f"`alpha` must hold at least one retention coefficient, got shape {a.shape}")
    if (a < 0).any() or (a > 1).any():
        raise ValueError(f"`alpha` must lie in [0, 1], got values in [{a.min()}, {a.max()}]")
    return a


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

    ``inf`` when ``σ_max`` exceeds the float64 range (entries near 1e308);
    the log bounds of this module use ``ln σ_max``, computed with scaling, and
    stay finite then.
    """
    return LA.spectral_norm(_matrix(W))


def _log_gamma_w(W: Any) -> float:
    """``ln σ_max(W)`` from ``W`` scaled by a power of two: finite for every finite ``W ≠ 0``."""
    return float(GJ.log_spectral_norms(_matrix(W)))


def _log_gamma_h(activation: str | Activation) -> float:
    return float(np.log(gamma_h(activation)))


def _log_affine(a: Any, b: Any, log_g: Any) -> Any:
    """``ln(a + b·e^{log_g})`` for ``a, b ≥ 0`` without forming ``e^{log_g}``."""
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log(a), np.log(b) + log_g)


def spectral_radius(W: Any) -> float:
    """``ρ(W) = max_i |λ_i(W)|`` (square ``W``)."""
    M = _matrix(W)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"`W` must be square, got shape {M.shape}")
    return LA.spectral_radius(M)


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
    rate = _log_gamma_w(W) + _log_gamma_h(activation)
    return _steps_times(rate, steps)


def leaky_log_bound(W: Any, activation: str | Activation, alpha: Any, steps: Any) -> Any:
    """Eq. 14's step bound as a log: ``steps · ln(max α + max(1 − α) γ_W γ_h)``.

    For ``J = diag(α) + diag(1 − α) J̃`` with ``‖J̃‖ ≤ γ_W γ_h`` (either form).
    """
    a = _alpha(alpha)
    rate = float(_log_affine(a.max(), (1.0 - a).max(), _log_gamma_w(W) + _log_gamma_h(activation)))
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
        On ``alpha`` outside ``[0, 1]`` or empty, an empty ``W``, or negative ``steps``.

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
    a = _alpha(alpha)
    lower, leak = float(a.min()), float((1.0 - a).max())
    if leak == 0.0:  # α = 1: J = I whatever W (no 0·inf when σ_max overflows)
        return _steps_times(_log(lower), steps)
    log_sub = np.log(leak) + _log_gamma_w(W) + _log_gamma_h(activation)
    if lower == 0.0 or log_sub >= np.log(lower):
        return _steps_times(-np.inf, steps)
    # ln(lower − e^{log_sub}) with e^{log_sub} < lower ≤ 1: nothing overflows
    return _steps_times(float(np.log(lower - np.exp(log_sub))), steps)


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
    model : ElmanRNN, LSTM or GRU
    trace : Trace or GatedTrace
        Single-sequence trace from ``model.forward``.
    bound : {"eq12", "activation", "step_norm", "gated"}
        ``"eq12"``: ``ln(γ_W γ_h)`` (leaky: ``ln(max α + max(1−α) γ_W γ_h)``);
        ``"activation"``: ``ln(γ_W max_j |f′_i|_j)`` with ``f′`` at the step's
        actual arguments (leaky: ``ln(max α + max_j((1−α_j)|f′_ij|) γ_W)`` in
        the standard form, ``ln(max α + max(1−α) γ_W max|f′_i|)`` in Pascanu's);
        ``"step_norm"``: ``ln ‖J_i‖`` itself; ``"gated"`` (LSTM, GRU): the bound
        from gate values and gate-block norms of ``rnntheory._gated_jacobians``.

    Returns
    -------
    ndarray, shape ``(T,)``
        ``b_i``, formed as logs throughout (``ln γ_W`` from ``W_hh`` scaled by a
        power of two, products as sums of logs), so finite for weights of
        1e300 or saturated units; ``−inf`` for a step whose bound is exactly 0.
        For ``"activation"``, ``"step_norm"`` and ``"gated"``, NaN at every
        step ``i`` that cannot be evaluated: ``h_{i−1}``, ``h_i`` (``c`` for
        the LSTM) or the step's arguments are NaN or inf because the forward
        pass overflowed. ``"eq12"`` depends on the weights only and is the
        same at every step.

    Raises
    ------
    ValueError
        If ``bound`` is not one of the names above or does not apply to the
        model, or ``trace`` is batched or malformed (as in
        :func:`rnntheory.jacobians.step_jacobians`).
    """
    trace = single_trace(trace, "step_log_bounds")
    check_model_trace(model, trace)
    if bound not in BOUND_NAMES:
        raise ValueError(f"`bound` must be one of {BOUND_NAMES}, got {bound!r}")
    bad = nonfinite_steps(trace)
    if bound == "step_norm":
        out = GJ.log_spectral_norms(step_jacobians(model, trace))
        out[bad] = np.nan
        return out
    if not isinstance(model, ElmanRNN):
        if bound != "gated":
            raise ValueError(
                f"`bound` {bound!r} is the Elman RNN's; the article's (γ_W γ_h)^(t−k) does not "
                f"bound a {type(model).__name__} (the carry terms diag(f) / diag(z) are not of "
                "the form diag(f′)W); use bound='gated' or 'step_norm'"
            )
        assert isinstance(trace, GatedTrace)
        fix = finite_or_zero
        if trace.c is not None:
            out = GJ.lstm_step_log_bounds(model.weight_hh, fix(trace.c), fix(trace.pre))
        else:
            out = GJ.gru_step_log_bounds(model.weight_hh, fix(trace.h), fix(trace.pre))
        out[bad] = np.nan
        return out
    if bound == "gated":
        raise ValueError("`bound` 'gated' is for LSTM and GRU models, got an ElmanRNN")
    assert isinstance(trace, Trace)
    T = trace.T
    log_gw = _log_gamma_w(model.W_hh)
    alpha = None if model.alpha is None else np.asarray(model.alpha, np.float64)
    if bound == "eq12":
        rate = log_gw + float(np.log(model.activation.gamma_h))
        if alpha is not None:
            rate = float(_log_affine(alpha.max(), (1.0 - alpha).max(), rate))
        return np.full(T, rate)
    # bound == "activation"
    a = finite_or_zero(trace.a)
    fp = np.abs(model.activation.fprime(a))
    with np.errstate(divide="ignore"):
        if alpha is None:
            out = log_gw + np.log(fp.max(axis=1))
        elif model.form == "standard":
            out = _log_affine(alpha.max(), ((1.0 - alpha)[None, :] * fp).max(axis=1), log_gw)
        else:
            out = _log_affine(alpha.max(), (1.0 - alpha).max() * fp.max(axis=1), log_gw)
    out = np.asarray(out, np.float64)
    out[bad] = np.nan
    return out


def pair_log_bounds(step_logs: Any) -> np.ndarray:
    """``B[t, k] = Σ_{i=k+1}^{t} b_i`` for ``k ≤ t`` from per-step logs ``b`` ``(T,)``.

    ``0`` on the diagonal, ``−inf`` above it and wherever a step bound is
    ``−inf`` (an exactly zero factor), NaN wherever a step bound is NaN (a
    step that cannot be evaluated; it takes precedence over ``−inf``): only
    the pairs whose stretch ``k < i ≤ t`` contains such a step are affected.
    ``step_logs`` is read as float64; a complex or non-numeric one raises a
    ``TypeError`` naming it.
    """
    b = as_float_array("step_logs", step_logs, ndim=1, dtype=np.dtype(np.float64), finite=False)
    zero, inf, nan = np.isneginf(b), np.isposinf(b), np.isnan(b)

    def spans(mask: np.ndarray) -> np.ndarray:
        """``[t, k]``: some step ``k < i ≤ t`` has ``mask``."""
        n = np.concatenate([[0], np.cumsum(mask)])
        return (n[:, None] - n[None, :]) > 0

    c = np.concatenate([[0.0], np.cumsum(np.where(zero | inf | nan, 0.0, b))])
    out = c[:, None] - c[None, :]
    killed, unbounded = spans(zero), spans(inf)
    out[killed] = -np.inf
    out[unbounded] = np.inf
    out[(killed & unbounded) | spans(nan)] = np.nan  # 0·∞, or a step not evaluated
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
    unevaluable : int
        How many of the violations are pairs that could not be evaluated at
        all: their stretch of the trace holds NaN or inf (the forward pass
        overflowed), so neither the norm nor a data-dependent bound exists.
    """

    name: str
    statement: str
    holds: bool
    pairs_checked: int
    max_log_ratio: float
    worst_pair: tuple[int, int]
    violations: np.ndarray = field(repr=False)
    assumptions: tuple[str, ...] = ()
    unevaluable: int = 0


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
            if c.unevaluable:
                verdict += f" ({c.unevaluable} not finite)"
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
    In particular, on a trace that the forward pass made non-finite (NaN or
    inf in ``h``, ``c`` or a step's arguments), every pair whose stretch
    ``k < i ≤ t`` contains such a step is a violation, counted in
    ``BoundCheck.unevaluable``, with ``max_log_ratio`` NaN; pairs before the
    overflow are checked as usual. Nothing is raised.

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

    Raises
    ------
    ValueError
        If ``rtol`` is negative or not finite, ``bounds`` names an unknown
        bound or one that does not apply to the model, or the trace is batched
        or malformed (as in :func:`rnntheory.jacobians.step_jacobians`).
    TypeError
        If ``model``/``trace`` are not a model and its trace, or ``bounds`` is
        not a tuple (or list) of str.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, bounds
    >>> m = ElmanRNN.init(2, 6, None, scheme="gaussian", scale=1.3, seed=0)
    >>> cert = bounds.certify(m, m.forward(np.ones((20, 2))))
    >>> cert.holds, cert["eq12"].pairs_checked
    (True, 210)

    A linear model with ``W_hh = 1e3·I`` overflows to inf at step 104 (of 110): the
    pairs over the overflow cannot be evaluated and fail, the others hold.

    >>> lin = ElmanRNN(1e3 * np.eye(2), np.ones((2, 1)), np.zeros(2), activation="identity")
    >>> c = bounds.certify(lin, lin.forward(np.ones((110, 1))), bounds=("eq12",))["eq12"]
    >>> c.holds, c.unevaluable, len(c.violations), c.pairs_checked
    (False, 749, 749, 6105)
    """
    trace = single_trace(trace, "certify")
    check_model_trace(model, trace)
    rtol = check_real("rtol", rtol, low=0.0)
    if bounds is None:
        bounds = ELMAN_BOUNDS if isinstance(model, ElmanRNN) else GATED_BOUNDS
    if not isinstance(bounds, tuple | list) or not all(isinstance(b, str) for b in bounds):
        raise TypeError(f"`bounds` must be a tuple of bound names from {BOUND_NAMES}, got {show_value(bounds)}")
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
    bad_before = np.concatenate([[0], np.cumsum(nonfinite_steps(trace))])  # in steps 1..i
    unevaluable = (bad_before[t_idx] - bad_before[k_idx]) > 0
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
                unevaluable=int(np.count_nonzero(unevaluable)),
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
