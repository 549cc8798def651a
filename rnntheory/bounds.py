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
from . import _stack_jacobians as SJ
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
from .cells.custom import CustomRNN
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GatedTrace
from .cells.stacked import StackedRNN
from .jacobians import (
    block_log_norms,
    layer_traces,
    log_norms,
    product_factors,
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
    "stack_log_bound",
    "stack_pair_log_bounds",
    "stack_step_log_bounds",
    "stack_weight_log_matrix",
    "step_log_bounds",
    "steps_to_vanish",
    "vanishing_guaranteed",
]

BOUND_NAMES = ("eq12", "activation", "step_norm", "gated")
ELMAN_BOUNDS = ("eq12", "activation", "step_norm")
GATED_BOUNDS = ("gated", "step_norm")
# a CustomRNN's: its claimed step bound γ (if it has one) and the step norms
CUSTOM_BOUNDS = ("claim", "step_norm")


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
    model : ElmanRNN, LSTM, GRU or CustomRNN
    trace : Trace, GatedTrace or CustomTrace
        Single-sequence trace from ``model.forward``.
    bound : {"eq12", "activation", "step_norm", "gated", "claim"}
        ``"eq12"``: ``ln(γ_W γ_h)`` (leaky: ``ln(max α + max(1−α) γ_W γ_h)``);
        ``"activation"``: ``ln(γ_W max_j |f′_i|_j)`` with ``f′`` at the step's
        actual arguments (leaky: ``ln(max α + max_j((1−α_j)|f′_ij|) γ_W)`` in
        the standard form, ``ln(max α + max(1−α) γ_W max|f′_i|)`` in Pascanu's);
        ``"step_norm"``: ``ln ‖J_i‖`` itself; ``"gated"`` (LSTM, GRU): the bound
        from gate values and gate-block norms of ``rnntheory._gated_jacobians``;
        ``"claim"`` (a :class:`~rnntheory.cells.CustomRNN` built with
        ``bound=γ``): ``ln γ`` at each step's recorded ``(h_{i−1}, x_i)``,
        NaN where ``γ < 0``. A CustomRNN takes ``"claim"`` and ``"step_norm"``
        only.

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
    if isinstance(model, CustomRNN):
        return _custom_step_log_bounds(model, trace, bound)
    if bound not in BOUND_NAMES:
        raise ValueError(f"`bound` must be one of {BOUND_NAMES}, got {bound!r}")
    bad = nonfinite_steps(trace)
    if bound == "step_norm":
        if isinstance(model, StackedRNN):
            F, per = product_factors(model, trace)
            out = SJ.log_step_norms(F, per)
        else:
            out = GJ.log_spectral_norms(step_jacobians(model, trace))
        out[bad] = np.nan
        return out
    if isinstance(model, StackedRNN):
        raise ValueError(
            f"`bound` {bound!r} is a single cell's; for a StackedRNN use bound='step_norm' (the "
            "whole state), stack_step_log_bounds(model, trace) (block norms), or each layer's "
            "own bounds through jacobians.layer_traces(model, trace)"
        )
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


def _custom_step_log_bounds(model: CustomRNN, trace: Any, bound: str) -> np.ndarray:
    """``step_log_bounds`` of a :class:`~rnntheory.cells.CustomRNN`: ``"claim"``
    (``ln γ`` of its claimed bound at each step) or ``"step_norm"``."""
    if bound not in CUSTOM_BOUNDS:
        raise ValueError(
            f"`bound` must be one of {CUSTOM_BOUNDS} for a CustomRNN (its claimed bound, or the step "
            f"norms), got {bound!r}"
        )
    bad = nonfinite_steps(trace)
    if bound == "step_norm":
        out = GJ.log_spectral_norms(step_jacobians(model, trace))
    else:
        g = model.bound_values(trace)
        with np.errstate(divide="ignore", invalid="ignore"):
            # a negative γ bounds no norm: NaN, so certify counts the pairs over it as violations
            out = np.where(g >= 0, np.log(np.where(g >= 0, g, 1.0)), np.nan)
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
        The observed ``ln ‖∂h_t/∂h_k‖`` the bounds were checked against (of
        the whole state ``s`` for a stacked model).
    layers : tuple of (str, Certificate)
        For a stacked model: each layer's own certificate (its recurrence with
        its input held fixed), labelled ``"layer 1"``, ``"layer 2"``, …;
        empty for a single cell.
    """

    checks: tuple[BoundCheck, ...]
    T: int
    n_hidden: int
    log_norms: np.ndarray = field(repr=False)
    layers: tuple[tuple[str, Certificate], ...] = field(default=(), repr=False)

    @property
    def holds(self) -> bool:
        """True when every bound held on every pair (and every layer's, for a stack)."""
        return all(c.holds for c in self.checks) and all(c.holds for _, c in self.layers)

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
        for label, cert in self.layers:
            lines.append(f"  {label} (its input held fixed):")
            lines.extend("  " + line for line in str(cert).splitlines()[1:])
        return "\n".join(lines)


def _assumptions(model: Model, name: str) -> tuple[str, ...]:
    if isinstance(model, CustomRNN):
        return (
            f"custom cell {model.cell.name!r}: Jacobians from its SymPy derivative, in float64",
            "spectral norms; evaluated at the recorded trajectory",
            "valid for this trajectory only",
        )
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
    model : ElmanRNN, LSTM, GRU or CustomRNN
    trace : Trace, GatedTrace or CustomTrace
        Single-sequence trace from ``model.forward``.
    bounds : tuple of str, optional
        Any of ``"eq12"``, ``"activation"``, ``"step_norm"``; all three by
        default for an Elman RNN; ``("gated", "step_norm")`` for the LSTM and
        GRU (the article's bound does not apply to them; ``"gated"`` is the
        step bound of ``lstm_step_bounds`` / ``gru_step_bounds``);
        ``("claim", "step_norm")`` for a :class:`~rnntheory.cells.CustomRNN`
        built with a claimed step bound ``γ`` (``‖∂h_t/∂h_k‖ ≤ Π_i γ_i`` on
        every pair), ``("step_norm",)`` for one without.
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
    if isinstance(model, StackedRNN):
        return _certify_stack(model, trace, bounds, rtol)
    if isinstance(model, CustomRNN):
        return _certify_custom(model, trace, bounds, rtol)
    if bounds is None:
        bounds = ELMAN_BOUNDS if isinstance(model, ElmanRNN) else GATED_BOUNDS
    if not isinstance(bounds, tuple | list) or not all(isinstance(b, str) for b in bounds):
        raise TypeError(f"`bounds` must be a tuple of bound names from {BOUND_NAMES}, got {show_value(bounds)}")
    for b in bounds:
        if b not in BOUND_NAMES:
            raise ValueError(f"`bounds` entries must be in {BOUND_NAMES}, got {b!r}")
    T = trace.T
    L, obs, unevaluable = _observed(model, trace)
    checks = [
        _bound_check(
            name, _STATEMENTS[name], _assumptions(model, name),
            pair_log_bounds(step_log_bounds(model, trace, name)), L, obs, unevaluable, rtol,
        )
        for name in bounds
    ]
    return Certificate(tuple(checks), T, model.n_hidden, L)


def _certify_custom(model: CustomRNN, trace: Any, bounds: Any, rtol: float) -> Certificate:
    """:func:`certify` for a :class:`~rnntheory.cells.CustomRNN`: its claimed
    bound (``"claim"``, when it has one) and ``"step_norm"``."""
    if bounds is None:
        bounds = CUSTOM_BOUNDS if model.bound is not None else ("step_norm",)
    if not isinstance(bounds, tuple | list) or not all(isinstance(b, str) for b in bounds):
        raise TypeError(f"`bounds` must be a tuple of bound names from {CUSTOM_BOUNDS}, got {show_value(bounds)}")
    for b in bounds:
        if b not in CUSTOM_BOUNDS:
            raise ValueError(f"`bounds` entries must be in {CUSTOM_BOUNDS} for a CustomRNN, got {b!r}")
    statements = {
        "claim": f"‖∂h_t/∂h_k‖ ≤ Π_i γ_i, γ = {model.bound} (the claimed step bound)",
        "step_norm": _STATEMENTS["step_norm"],
    }
    L, obs, unevaluable = _observed(model, trace)
    checks = [
        _bound_check(
            name, statements[name], _assumptions(model, name),
            pair_log_bounds(step_log_bounds(model, trace, name)), L, obs, unevaluable, rtol,
        )
        for name in bounds
    ]
    return Certificate(tuple(checks), trace.T, model.n_hidden, L)


def _observed(model: Any, trace: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log_norms`` of the trajectory, its entries below the diagonal (NaN on the
    pairs that cannot be evaluated), and which pairs those are."""
    T = trace.T
    L = log_norms(model, trace)
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    obs = L[t_idx, k_idx]
    # A pair whose stretch of trajectory is not finite cannot be evaluated: its
    # Jacobians may look harmless (tanh′(±inf) = 0, the identity's J = W) while
    # the state has overflowed. Such pairs count as violations (obs = NaN).
    bad_before = np.concatenate([[0], np.cumsum(nonfinite_steps(trace))])  # in steps 1..i
    unevaluable = (bad_before[t_idx] - bad_before[k_idx]) > 0
    obs = np.where(unevaluable, np.nan, obs)
    return L, obs, unevaluable


def _bound_check(
    name: str,
    statement: str,
    assumptions: tuple[str, ...],
    B_pairs: np.ndarray,
    L: np.ndarray,
    obs: np.ndarray,
    unevaluable: np.ndarray,
    rtol: float,
) -> BoundCheck:
    """One bound ``B_pairs`` ``(T+1, T+1)`` checked on every pair ``k < t`` against ``obs``."""
    t_idx, k_idx = np.tril_indices(L.shape[0], -1)
    tol = rtol * (1.0 + (t_idx - k_idx))
    B = B_pairs[t_idx, k_idx]
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
    return BoundCheck(
        name=name,
        statement=statement,
        holds=bool(not bad.any()),
        pairs_checked=int(obs.size),
        max_log_ratio=mlr,
        worst_pair=(int(t_idx[worst]), int(k_idx[worst])) if obs.size else (0, 0),
        violations=viol,
        assumptions=assumptions,
        unevaluable=int(np.count_nonzero(unevaluable)),
    )


# ----------------------------------------------------------------------------- stacked models
STACK_BOUNDS = ("eq12", "block_norm", "step_norm")
ELMAN_STACK_BOUNDS = ("eq12", "block_norm", "step_norm")
GATED_STACK_BOUNDS = ("block_norm", "step_norm")

_STACK_STATEMENTS = {
    "eq12": (
        "‖∂s_t/∂s_k‖ ≤ ‖N^(t−k)‖, N = (I − |S|)^(-1) |D| from the weights: N[l, l] = Eq. 12's "
        "γ_W γ_h of layer l, N[l, m] = Π_(j=m+1..l) ‖W_hx^j‖ γ_h · N[m, m] (Elman stacks)"
    ),
    "block_norm": "‖∂s_t/∂s_k‖ ≤ ‖N_t ⋯ N_(k+1)‖, N_i[l, m] = ‖block (l, m) of ∂s_i/∂s_(i−1)‖ (data-dependent)",
    "step_norm": "‖∂s_t/∂s_k‖ ≤ Π_i ‖∂s_i/∂s_(i−1)‖ of the whole state (submultiplicativity)",
}


def _stacked(model: Any, func: str) -> StackedRNN:
    if not isinstance(model, StackedRNN):
        raise TypeError(f"`model` must be a StackedRNN for `{func}`, got {type(model).__name__}")
    return model


def _elman_stack(model: Any, func: str) -> StackedRNN:
    model = _stacked(model, func)
    if model.cell != "elman":
        raise ValueError(
            f"`{func}` is for stacks of Elman layers (Eq. 12 does not bound a gated cell: its "
            f"carry terms are not of the form diag(f′) W), got cell {model.cell!r}; use "
            "bound='block_norm' or 'step_norm'"
        )
    return model


def _elman_layer_log_rates(m: ElmanRNN) -> tuple[float, float]:
    """``(ln a, ln x)``: ``a ≥ ‖∂h_t/∂h_{t−1}‖`` (Eq. 12's step; leaky: Eq. 14's) and
    ``x ≥ ‖∂h_t/∂x_t‖`` for every input and state of layer ``m``."""
    lgh = float(np.log(m.activation.gamma_h))
    la = _log_gamma_w(m.W_hh) + lgh
    lx = float(GJ.log_spectral_norms(np.asarray(m.W_hx, np.float64)))
    if m.form == "standard":
        lx += lgh
    if m.alpha is not None:
        alpha = np.asarray(m.alpha, np.float64)
        la = float(_log_affine(alpha.max(), (1.0 - alpha).max(), la))
        lx += _log(float((1.0 - alpha).max()))
    return la, lx


def stack_weight_log_matrix(model: Any) -> np.ndarray:
    r"""The constant block-norm matrix of an Elman stack, as logs ``(L, L)``.

    For every input and state, the step Jacobian of the stack factors as
    ``J_t = (I − S_t)^{-1} D_t`` (see :mod:`rnntheory.jacobians`), with
    ``D_t = blockdiag(A^l_t)`` the layers' own step Jacobians and ``S_t`` the
    strictly lower block matrix with ``S_t[l, l−1] = X^l_t E_h`` (the input
    Jacobian of layer ``l``). ``S_t`` is nilpotent, so block ``(l, m)`` of
    ``(I − S_t)^{-1}`` is ``X^l_t E_h ⋯ X^{m+1}_t E_h`` and, with
    ``‖A^l_t‖ ≤ a_l`` and ``‖X^l_t‖ ≤ x_l``,

    .. math::

        \|J_t[l, m]\|_2 \le N[l, m] = a_m \prod_{j=m+1}^{l} x_j \quad (m \le l),
        \qquad N[l, m] = 0 \quad (m > l).

    Here ``a_l = γ_W(W_hh^l) γ_h`` (Eq. 12's step; leaky units:
    ``max α + max(1 − α) γ_W γ_h``, Eq. 14), and ``x_l = ‖W_hx^l‖ γ_h`` in the
    standard form (``∂h_t/∂x_t = diag(f′) W_hx``), ``‖W_hx^l‖`` in Pascanu's
    form (``∂h_t/∂x_t = W_hx``), each times ``max(1 − α)`` for leaky units. The
    entries are formed as logs (``−inf`` for a zero entry), finite for weights
    of 1e300.

    Note that ``N`` is lower-triangular in full, not bidiagonal: layer ``l``
    at step ``t`` reads layer ``l−1`` at the same step, which has already
    read layer ``l−2``, so one step carries a perturbation of ``s^m_{t−1}`` up
    through every layer above ``m``.

    Raises
    ------
    TypeError
        If ``model`` is not a StackedRNN.
    ValueError
        If its layers are not Elman layers.
    """
    model = _elman_stack(model, "stack_weight_log_matrix")
    rates = [_elman_layer_log_rates(m) for m in model.layers]
    L = len(rates)
    out = np.full((L, L), -np.inf)
    for m in range(L):
        acc = rates[m][0]
        out[m, m] = acc
        for l in range(m + 1, L):
            acc = acc + rates[l][1]
            out[l, m] = acc
    return out


def _log_matrix_powers(logN: np.ndarray, top: int) -> np.ndarray:
    """``ln ‖N^τ‖₂`` for ``τ = 0..top`` from the entries' logs of ``N``."""
    L = logN.shape[0]
    P = np.where(np.eye(L, dtype=bool), 0.0, -np.inf)
    out = np.empty(top + 1)
    out[0] = 0.0
    for tau in range(1, top + 1):
        P = SJ.log_matmul(logN, P)
        out[tau] = float(SJ.log_block_norm(P))
    return out


def _log_matrix_power(logN: np.ndarray, k: int) -> float:
    """``ln ‖N^k‖₂`` from the entries' logs of ``N`` by repeated squaring in log space."""
    L = logN.shape[0]
    result = np.where(np.eye(L, dtype=bool), 0.0, -np.inf)
    base = logN
    while k:
        if k & 1:
            result = SJ.log_matmul(base, result)
        k >>= 1
        if k:
            base = SJ.log_matmul(base, base)
    return float(SJ.log_block_norm(result))


def stack_log_bound(model: Any, steps: Any) -> Any:
    """The weights-only bound of an Elman stack, as a log: ``ln ‖N^steps‖₂``.

    ``‖∂s_t/∂s_k‖₂ ≤ ‖N^(t−k)‖₂`` for every input and initial state, with
    ``N`` from :func:`stack_weight_log_matrix` (the stack's Eq. 12). Proof:
    ``‖M‖₂ ≤ ‖(‖M[l, m]‖₂)_{l,m}‖₂`` for any block matrix, block norms are
    submultiplicative entrywise (``‖(AB)[l, m]‖ ≤ Σ_j ‖A[l, j]‖ ‖B[j, m]‖``)
    and ``N ≥`` the block norms of every ``J_t``, so the block norms of
    ``J_t ⋯ J_{k+1}`` are at most the entries of ``N^(t−k)`` and the spectral
    norm is monotone on non-negative matrices.

    ``N`` is lower-triangular, so ``ln ‖N^τ‖ / τ → max_l ln N[l, l]`` (Gelfand's
    formula): the stack's exponential rate is at most the largest of its
    layers' Eq. 12 rates; the cross-layer blocks add at most a factor
    polynomial in ``τ`` (of degree ``L − 1``).

    Parameters
    ----------
    model : StackedRNN
        A stack of Elman layers (any form, activation, leak).
    steps : int or array of int
        ``t − k ≥ 0``.

    Returns
    -------
    float or ndarray
        ``ln ‖N^steps‖₂`` (0 for ``steps = 0``), formed with log-space
        products, so finite for any ``steps`` and weights of 1e300.

    Raises
    ------
    TypeError, ValueError
        As :func:`stack_weight_log_matrix`; ``ValueError`` for negative or
        non-integer ``steps``.
    """
    logN = stack_weight_log_matrix(model)
    s = np.asarray(steps)
    if not np.issubdtype(s.dtype, np.integer) or (s < 0).any():
        raise ValueError(f"`steps` must be non-negative integers, got {show_value(steps)}")
    if s.size > 8:  # every power up to the largest, one product each
        out = _log_matrix_powers(logN, int(s.max()))[s]
    else:  # a few (possibly huge) powers by repeated squaring
        out = np.vectorize(lambda k: _log_matrix_power(logN, int(k)), otypes=[float])(s)
    return float(out) if out.ndim == 0 else out


def stack_step_log_bounds(model: Any, trace: Any, bound: str = "block_norm") -> np.ndarray:
    """Per-step block-norm matrices of a stack, as logs: ``(T, L, L)``.

    Entry ``[i−1, l, m]`` is ``ln N_i[l, m]`` with ``N_i[l, m] ≥ ‖block (l, m)
    of ∂s_i/∂s_{i−1}‖₂`` (rows: the layer written to; columns: the layer read
    from; ``−inf`` above the diagonal, where the blocks are exactly 0).

    Parameters
    ----------
    model : StackedRNN
    trace : StackedTrace
        A single-sequence trace from ``model.forward``.
    bound : {"block_norm", "eq12"}
        ``"block_norm"``: the blocks' spectral norms themselves at the
        recorded trajectory (each block scaled by a power of two before its
        SVD, so finite for weights of 1e300); NaN at the steps that cannot be
        evaluated (the trace is not finite there). ``"eq12"`` (Elman stacks):
        the weights-only matrix of :func:`stack_weight_log_matrix` at every step.

    Raises
    ------
    TypeError
        If ``model`` is not a StackedRNN or ``trace`` not its trace.
    ValueError
        On an unknown ``bound`` or one that does not apply (``"eq12"`` of a
        gated stack), or a batched or malformed trace.
    """
    model = _stacked(model, "stack_step_log_bounds")
    trace = single_trace(trace, "stack_step_log_bounds")
    check_model_trace(model, trace)
    if bound not in ("block_norm", "eq12"):
        raise ValueError(f"`bound` must be 'block_norm' or 'eq12', got {show_value(bound)}")
    if bound == "eq12":
        logN = stack_weight_log_matrix(model)
        return np.broadcast_to(logN, (trace.T, *logN.shape)).copy()
    return block_log_norms(model, trace)


def stack_pair_log_bounds(model: Any, trace: Any, bound: str = "block_norm") -> np.ndarray:
    """Bounds on ``ln ‖∂s_t/∂s_k‖₂`` of a stack's whole state for every pair: ``(T+1, T+1)``.

    ``"block_norm"``: ``ln ‖N_t ⋯ N_{k+1}‖₂`` with ``N_i`` of
    :func:`stack_step_log_bounds` (products of the ``L × L`` matrices formed in
    log space: finite for any ``T``); ``"eq12"`` (Elman stacks):
    ``ln ‖N^(t−k)‖₂`` of :func:`stack_log_bound`; ``"step_norm"``:
    ``Σ_i ln ‖∂s_i/∂s_{i−1}‖₂``. ``0`` on the diagonal, ``−inf`` above it, NaN
    on the pairs whose stretch contains a step that cannot be evaluated
    (``"eq12"`` depends on the weights only and has none).

    Each holds because ``‖M‖₂ ≤ ‖(‖M[l, m]‖₂)‖₂`` for a block matrix and block
    norms are submultiplicative entrywise (see :func:`stack_log_bound`).
    """
    model = _stacked(model, "stack_pair_log_bounds")
    trace = single_trace(trace, "stack_pair_log_bounds")
    check_model_trace(model, trace)
    if bound not in STACK_BOUNDS:
        raise ValueError(f"`bound` must be one of {STACK_BOUNDS}, got {show_value(bound)}")
    if bound == "step_norm":
        return pair_log_bounds(step_log_bounds(model, trace, "step_norm"))
    if bound == "block_norm":
        return SJ.log_block_products(stack_step_log_bounds(model, trace, "block_norm"))
    T = trace.T
    powers = _log_matrix_powers(stack_weight_log_matrix(model), T)
    lag = np.arange(T + 1)[:, None] - np.arange(T + 1)[None, :]
    return np.where(lag >= 0, powers[np.maximum(lag, 0)], -np.inf)


def _stack_assumptions(model: StackedRNN, name: str) -> tuple[str, ...]:
    out = [
        f"{model.n_layers} {model.cell} layers; state s = (s^1, …, s^L), layer 1 first"
        + (" (each h then c)" if model.cell == "lstm" else ""),
        "layer l reads layer l−1's h at the same step: J_t block lower-triangular",
        "spectral norms; Jacobians evaluated in float64 at the recorded trajectory",
    ]
    if name == "eq12":
        out.append(
            "x_l = ‖W_hx^l‖ γ_h (standard form), ‖W_hx^l‖ (Pascanu's), times max(1−α) for "
            "leaky units; a_l = γ_W γ_h (leaky: max α + max(1−α) γ_W γ_h)"
        )
        out.append("holds for every input and state (not data-dependent)")
    else:
        out.append("valid for this trajectory only")
    return tuple(out)


def _certify_stack(
    model: StackedRNN, trace: Any, bounds: tuple[str, ...] | list[str] | None, rtol: float
) -> Certificate:
    """:func:`certify` for a stacked model: the whole state, then every layer."""
    if bounds is None:
        bounds = ELMAN_STACK_BOUNDS if model.cell == "elman" else GATED_STACK_BOUNDS
    if not isinstance(bounds, tuple | list) or not all(isinstance(b, str) for b in bounds):
        raise TypeError(
            f"`bounds` must be a tuple of bound names from {STACK_BOUNDS}, got {show_value(bounds)}"
        )
    for b in bounds:
        if b not in STACK_BOUNDS:
            raise ValueError(f"`bounds` entries for a stacked model must be in {STACK_BOUNDS}, got {b!r}")
    L, obs, unevaluable = _observed(model, trace)
    checks = tuple(
        _bound_check(
            name, _STACK_STATEMENTS[name], _stack_assumptions(model, name),
            stack_pair_log_bounds(model, trace, name), L, obs, unevaluable, rtol,
        )
        for name in bounds
    )
    layers = tuple(
        (label, certify(m, tr, rtol=rtol)) for label, m, tr in layer_traces(model, trace)
    )
    return Certificate(checks, trace.T, model.n_hidden, L, layers)


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
