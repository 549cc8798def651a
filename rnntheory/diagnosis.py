"""Diagnose a model on its data: how far back its gradients reach, and what the theory says.

:func:`diagnose` runs a model over an input and answers, in one record, the
question "do the gradients of *my* model vanish or explode on *my* data, how
far back do they reach, and what does the theory promise?":

* the **profile** ``profile[τ] = ln ‖∂s_T/∂s_{T−τ}‖₂``, ``τ = 0 … T``: how
  much of the gradient of a loss at the last step reaches the state ``τ``
  steps earlier (``profile[0] = 0``);
* the **exponent**, the least-squares slope of the profile against ``τ``
  (nats per step), with the top finite-time Lyapunov exponent beside it;
* the **verdict** and the **horizon** (the rule is below);
* the **theory** beside it: Eq. 12's rate ``ln(γ_W γ_h)`` and its slack,
  the tightest data-dependent bound of :mod:`rnntheory.bounds`, and Pascanu
  et al.'s conditions (one sufficient, one only necessary).

The state ``s`` is the model's whole state: ``h`` for the Elman RNN and the
GRU, ``(h, c)`` for the LSTM, and for a stacked model every layer's state,
layer 1 first. Each recurrence is also diagnosed on its own, with its input
held fixed (:func:`rnntheory.jacobians.layer_traces`): each layer of a stack,
each direction of each layer of a bidirectional model.

The verdict rule
----------------
With ``θ = ln(1/tolerance)`` nats (6.91 for the default ``tolerance = 1e-3``)
and ``e`` the exponent measured over the ``T`` steps of the sequence, the
fitted change of the gradient's size across the whole sequence is ``e·T``:

* ``"vanishing"`` when ``e·T < −θ``: along the fitted line, the gradient of a
  loss at the end is below ``tolerance`` of its size by the first step;
* ``"exploding"`` when ``e·T > θ``: it grows by more than ``1/tolerance``;
* ``"neutral"`` otherwise.

The verdict is about *this* input and *this* length: a rate of −0.01 nats per
step is "neutral" on 100 steps and "vanishing" on 1000. The **horizon** is the
largest lag ``τ`` with ``profile[τ] ≥ ln(tolerance)``: the gradient is still at
least ``tolerance`` of its lag-0 size there (``T`` when it never falls below).

A trace that overflowed
-----------------------
A forward pass may leave NaN or inf in the states (huge weights, inputs near
the float64 limit). The steps at which the Jacobian cannot be evaluated are
listed in ``overflow``; the profile, exponent, Lyapunov exponent and bounds
are then taken from the last step before the first of them (``end``), and the
profile is NaN for the lags beyond ``end``. When even step 1 cannot be
evaluated, nothing can be measured: the verdict is ``"undetermined"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _gated_jacobians as GJ
from . import _jacobian_kernels as JK
from . import bounds as BD
from . import jacobians as JAC
from ._outputs import json_safe
from ._validation import check_real, check_seed, read_only
from .cells.bidirectional import BidirectionalRNN
from .cells.elman import ElmanRNN
from .cells.gated import GRU, LSTM
from .cells.stacked import StackedRNN

__all__ = ["Diagnosis", "LayerDiagnosis", "diagnose"]

VERDICTS = ("vanishing", "exploding", "neutral", "undetermined")

# States up to this size also get the per-step spectral-norm bound Π‖J_i‖
# (an SVD per step); larger ones get the cheaper data-dependent bounds only.
_STEP_NORM_MAX_STATE = 64

_GATED_NOTE = (
    "Eq. 12 and Pascanu et al.'s conditions do not apply to {cell} cells: their step "
    "Jacobian is not of the form diag(f′)·W_hh (the carry term {carry} adds to it), so "
    "σ_max(W_hh)·γ_h bounds nothing; the data-dependent bounds are the gated one (gate "
    "values and gate-block norms) and Π‖J_i‖"
)
_LEAKY_NOTE = (
    "Pascanu et al.'s conditions are stated for units without a leak; for leaky units "
    "(Eq. 14) the step bound max α + max(1 − α)·γ_W γ_h is the Eq. 12 rate shown"
)
_STACK_NOTE = (
    "Eq. 12 and Pascanu et al.'s conditions are per layer (each recurrence with its input "
    "held fixed); the whole state's step Jacobian also has the cross-layer blocks (for a "
    "stack of Elman layers, bounds.stack_log_bound gives the whole state's weights-only bound)"
)
_CONDITIONS_NOTE = (
    "Pascanu et al. 2013: σ_max(W_hh) < 1/γ_h is sufficient for vanishing (it guarantees "
    "it for every input); σ_max(W_hh) > 1/γ_h is only necessary for explosion (without "
    "it nothing can explode; with it explosion is possible, not implied)"
)


@dataclass(frozen=True)
class LayerDiagnosis:
    """The diagnosis of one recurrence (or of the whole state) on the input.

    For a single sequence the per-sequence attributes are numbers (a string
    for ``verdict``); for a batch of ``B`` sequences they are arrays of
    ``B`` values (a tuple of strings for ``verdict``, a tuple of tuples for
    ``overflow``), and ``summary`` holds their median and worst.

    Attributes
    ----------
    label : str
        ``"whole state"``, ``"layer 1"``, ``"layer 2 (backward)"``, …
    cell : str
        ``"elman"``, ``"lstm"`` or ``"gru"``.
    state_size : int
        Size of the state ``s`` whose Jacobians are measured (``2n`` for an
        LSTM's ``(h, c)``, the sum over layers for a stack's whole state).
    profile : ndarray, shape ``(T+1,)`` or ``(B, T+1)``
        ``profile[τ] = ln ‖∂s_end/∂s_{end−τ}‖₂`` (natural log, spectral norm;
        ``end = T`` unless the trace overflowed); NaN for ``τ > end``.
    exponent : float or ndarray
        Least-squares slope of ``profile[0..end]`` against ``τ`` (with an
        intercept), in nats per step; ``−inf`` when a product is exactly zero,
        NaN when ``end = 0``.
    lyapunov : float or ndarray
        Top finite-time Lyapunov exponent over steps ``1..end`` (nats per step).
    verdict : str or tuple of str
        ``"vanishing"``, ``"exploding"``, ``"neutral"`` (the rule is in the
        module docstring) or ``"undetermined"`` (no step could be evaluated).
    horizon : int or ndarray
        Largest ``τ ≤ end`` with ``profile[τ] ≥ ln(tolerance)``.
    end : int or ndarray
        The step the profile is measured from: ``T``, or the last step before
        the first one that overflowed.
    overflow : tuple of int, or tuple of tuples
        The steps (1-based) whose Jacobian cannot be evaluated because the
        forward pass left NaN or inf there; empty when the trace is finite.
    eq12_rate : float or None
        Eq. 12's rate ``ln(γ_W γ_h)`` in nats per step (leaky units: the log
        of Eq. 14's step bound); None where it does not apply (see ``notes``).
    eq12_slack : float, ndarray or None
        ``end·eq12_rate − profile[end]``: how many nats Eq. 12's bound lies
        above the observed norm at the largest lag (``≥ 0``: the bound holds).
    bound_name : str or None
        The tightest data-dependent bound of :mod:`rnntheory.bounds` on this
        input (``"step_norm"``, ``"activation"`` or ``"gated"``): the per-step
        bounds of :func:`rnntheory.bounds.step_log_bounds` summed over steps
        ``1..end``; the smallest sum wins. ``"step_norm"`` (an SVD per step)
        is computed for states of at most 64 numbers; the whole state of a
        larger stack has no bound computed (None, ``bound`` NaN; ``notes``
        names the functions that give one).
    bound : float or ndarray
        That bound at the largest lag, ``ln`` of the bound on
        ``‖∂s_end/∂s_0‖``.
    bound_slack : float or ndarray
        ``bound − profile[end]`` in nats (``≥ 0``; ``inf`` when the product
        is exactly zero).
    vanishing_guaranteed : bool or None
        Pascanu et al.'s ``σ_max(W_hh) < 1/γ_h``, **sufficient** for
        vanishing; None where it does not apply.
    explosion_possible : bool or None
        Pascanu et al.'s ``σ_max(W_hh) > 1/γ_h``, only **necessary** for
        explosion; None where it does not apply.
    notes : tuple of str
        What the conditions mean, or why they do not apply, and which bounds
        were computed.
    summary : dict or None
        For a batch: the median and worst over the sequences (``"worst"``
        exponent: the one farthest from 0; ``"worst"`` horizon: the
        shortest), the count of each verdict, the verdict of the median
        exponent, and the pointwise median, lowest and highest profile.
    """

    label: str
    cell: str
    state_size: int
    profile: np.ndarray = field(repr=False)
    exponent: Any
    lyapunov: Any
    verdict: Any
    horizon: Any
    end: Any
    overflow: Any
    eq12_rate: float | None
    eq12_slack: Any
    bound_name: str | None
    bound: Any
    bound_slack: Any
    vanishing_guaranteed: bool | None
    explosion_possible: bool | None
    notes: tuple[str, ...] = ()
    summary: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able builtins (non-finite numbers as ``"nan"``, ``"inf"``, ``"-inf"``)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return dict(json_safe(out))


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found: the whole state and each recurrence.

    Attributes
    ----------
    model : str
        The model's repr.
    T : int
        Number of steps of the input.
    batch_size : int or None
        ``B`` for a batch, None for one sequence.
    tolerance : float
        The horizon's tolerance (relative to the lag-0 size).
    threshold : float
        ``ln(1/tolerance)``: the verdict's threshold on ``|exponent·T|`` in nats.
    state : LayerDiagnosis
        The whole state (for a single cell, its one recurrence; for a
        bidirectional model, which has no single recurring state, the
        recurrence with the most severe verdict: exploding before vanishing
        before neutral, then the exponent farthest from 0; its ``label`` says
        which).
    layers : tuple of LayerDiagnosis
        Each recurrence with its input held fixed: ``"layer 1"``, …, and
        ``"layer l (forward)"`` / ``"layer l (backward)"`` for a bidirectional
        model (the backward direction in its own time, on the reversed input).

    ``profile``, ``exponent``, ``lyapunov``, ``verdict``, ``horizon`` and
    ``overflow`` are those of ``state``.
    """

    model: str
    T: int
    batch_size: int | None
    tolerance: float
    threshold: float
    state: LayerDiagnosis
    layers: tuple[LayerDiagnosis, ...]

    @property
    def profile(self) -> np.ndarray:
        """``ln ‖∂s_T/∂s_{T−τ}‖₂`` for ``τ = 0 … T`` (``(B, T+1)`` for a batch)."""
        return self.state.profile

    @property
    def exponent(self) -> Any:
        """Least-squares slope of the profile in nats per step."""
        return self.state.exponent

    @property
    def lyapunov(self) -> Any:
        """Top finite-time Lyapunov exponent (nats per step)."""
        return self.state.lyapunov

    @property
    def verdict(self) -> Any:
        """``"vanishing"``, ``"exploding"``, ``"neutral"`` (or ``"undetermined"``)."""
        return self.state.verdict

    @property
    def horizon(self) -> Any:
        """Largest lag with ``‖∂s_T/∂s_{T−τ}‖ ≥ tolerance``."""
        return self.state.horizon

    @property
    def overflow(self) -> Any:
        """Steps whose Jacobian cannot be evaluated (the forward pass overflowed)."""
        return self.state.overflow

    @property
    def rule(self) -> str:
        """The verdict rule, in words, with this diagnosis's threshold."""
        return (
            f"vanishing if exponent·T < −{self.threshold:.3g} nats (= ln(1/tolerance), "
            f"tolerance {self.tolerance:g}), exploding if > +{self.threshold:.3g}, else neutral"
        )

    def to_dict(self) -> dict[str, Any]:
        """The diagnosis as JSON-able builtins (non-finite numbers as ``"nan"``, ``"inf"``, ``"-inf"``)."""
        return {
            "model": self.model,
            "T": self.T,
            "batch_size": self.batch_size,
            "tolerance": self.tolerance,
            "threshold": json_safe(self.threshold),
            "rule": self.rule,
            "verdict": json_safe(self.verdict),
            "exponent": json_safe(self.exponent),
            "lyapunov": json_safe(self.lyapunov),
            "horizon": json_safe(self.horizon),
            "state": self.state.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as a strict JSON string (``json.dumps(d.to_dict(), indent=2)``
        for an indented one)."""
        return json.dumps(self.to_dict(), allow_nan=False, ensure_ascii=False)

    def __str__(self) -> str:
        return _summary_text(self)


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Seq:
    """One recurrence on one sequence."""

    profile: np.ndarray
    exponent: float
    lyapunov: float
    verdict: str
    horizon: int
    end: int
    overflow: tuple[int, ...]
    eq12_slack: float | None
    bound_name: str | None
    bound: float
    bound_slack: float


def _slope(p: np.ndarray) -> float:
    """Least-squares slope (with an intercept) of ``p[τ]`` against ``τ = 0..len−1``."""
    if p.size < 2:
        return float("nan")
    if np.isneginf(p).any():
        return float("-inf")
    tau = np.arange(p.size, dtype=np.float64)
    tc = tau - tau.mean()
    return float(np.dot(tc, p - p.mean()) / np.dot(tc, tc))


def _verdict(exponent: float, steps: int, threshold: float) -> str:
    if steps == 0 or np.isnan(exponent):
        return "undetermined"
    change = exponent * steps
    if change < -threshold:
        return "vanishing"
    if change > threshold:
        return "exploding"
    return "neutral"


def _top_lyapunov(J: np.ndarray, steps: int, seed: int | np.random.Generator) -> float:
    """:func:`rnntheory.jacobians.lyapunov_spectrum`'s first exponent, from the
    finite factors ``J`` of ``steps`` steps (the same frame and arithmetic)."""
    if steps == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    n = J.shape[1]
    Q0, _ = np.linalg.qr(rng.normal(size=(n, 1)))
    sums = JK.lyapunov(J, np.ascontiguousarray(Q0))
    return float(sums[0] / steps)


def _theory(model: Any) -> tuple[str, float | None, bool | None, bool | None, tuple[str, ...]]:
    """``(cell, eq12 rate, vanishing_guaranteed, explosion_possible, notes)`` of one cell."""
    if isinstance(model, LSTM):
        return "lstm", None, None, None, (_GATED_NOTE.format(cell="LSTM", carry="diag(f)"),)
    if isinstance(model, GRU):
        return "gru", None, None, None, (_GATED_NOTE.format(cell="GRU", carry="diag(1 − z)"),)
    assert isinstance(model, ElmanRNN)
    if model.alpha is not None:
        rate = float(BD.leaky_log_bound(model.W_hh, model.activation, model.alpha, 1))
        return "elman", rate, None, None, (_LEAKY_NOTE,)
    rate = float(BD.log_bound(model.W_hh, model.activation, 1))
    van = BD.vanishing_guaranteed(model.W_hh, model.activation)
    exp = BD.explosion_possible(model.W_hh, model.activation)
    return "elman", rate, van.holds, exp.holds, (_CONDITIONS_NOTE,)


def _bound_names(model: Any, state_size: int) -> tuple[str, ...]:
    norm = ("step_norm",) if state_size <= _STEP_NORM_MAX_STATE else ()
    if isinstance(model, StackedRNN):  # the whole state: only Π‖J_i‖ is a per-step bound
        return norm
    return ("activation" if isinstance(model, ElmanRNN) else "gated", *norm)


def _one(model: Any, trace: Any, names: tuple[str, ...], eq12_rate: float | None,
         threshold: float, log_tol: float, seed: int | np.random.Generator) -> tuple[_Seq, int]:
    """The diagnosis of one recurrence on one sequence, and the size of its state.

    The products are those of :func:`rnntheory.jacobians.product_factors`: the
    step Jacobians, or for a stack whose cross blocks leave float64 the ``per``
    layer factors of each step (their products are the step Jacobians).
    """
    F, per = JAC.product_factors(model, trace)
    T = F.shape[0] // per
    # a NaN or inf entry; F read-only, the layout every Jacobian kernel takes (one signature)
    bad = np.isnan(JK.step_logs(read_only(F))).reshape(T, per).any(axis=1)
    overflow = tuple(int(i) + 1 for i in np.flatnonzero(bad))
    end = int(np.argmax(bad)) if bad.any() else T
    profile = np.full(T + 1, np.nan)
    reach = JAC.log_norm_reach_from_jacobians(F, end * per)[::per]
    profile[: end + 1] = reach
    exponent = _slope(reach)
    lyap = _top_lyapunov(np.ascontiguousarray(F[: end * per]), end, seed)
    verdict = _verdict(exponent, end, threshold)
    ok = np.flatnonzero(reach >= log_tol)
    horizon = int(ok[-1]) if ok.size else 0
    last = float(reach[end])
    eq12_slack = None if eq12_rate is None else _gap(end * eq12_rate if end else 0.0, last)
    best_name, best = None, float("nan")
    for name in names:
        if name == "step_norm" and per == 1:  # ln ‖J_i‖ as bounds.step_log_bounds gives it, from J at hand
            b = GJ.log_spectral_norms(F[:end])
        else:
            b = BD.step_log_bounds(model, trace, name)[:end]
        total = float(np.sum(b)) if end else 0.0
        if best_name is None or total < best:
            best_name, best = name, total
    seq = _Seq(profile, exponent, lyap, verdict, horizon, end, overflow, eq12_slack,
               best_name, best, _gap(best, last))
    return seq, int(F.shape[1])


def _gap(bound: float, observed: float) -> float:
    """``bound − observed`` in nats (``inf`` when the observed product is exactly zero)."""
    if observed == -np.inf:
        return float("inf")
    return float(bound - observed)


def _analyse(label: str, model: Any, traces: list[Any], batched: bool, threshold: float,
             log_tol: float, seed: int | np.random.Generator,
             theory: Any = None) -> LayerDiagnosis:
    """One recurrence over every sequence: ``traces`` holds one single-sequence trace each."""
    cell, rate, van, exp, notes = _theory(model) if theory is None else theory
    seqs = []
    state_size = 0
    names: tuple[str, ...] = ()
    for tr in traces:
        state_size = int(getattr(model, "state_size", 2 * model.n_hidden if isinstance(model, LSTM)
                                 else model.n_hidden))
        names = _bound_names(model, state_size)
        seq, state_size = _one(model, tr, names, rate, threshold, log_tol, seed)
        seqs.append(seq)
    notes = (*notes, _bounds_note(names, isinstance(model, StackedRNN)))
    if not batched:
        s = seqs[0]
        return LayerDiagnosis(label, cell, state_size, s.profile, s.exponent, s.lyapunov,
                              s.verdict, s.horizon, s.end, s.overflow, rate, s.eq12_slack,
                              s.bound_name, s.bound, s.bound_slack, van, exp, notes, None)

    def arr(name: str, dtype: Any = np.float64) -> np.ndarray:
        return np.array([getattr(s, name) for s in seqs], dtype=dtype)

    profile = np.stack([s.profile for s in seqs])
    exponent, horizon = arr("exponent"), arr("horizon", np.int64)
    record = LayerDiagnosis(
        label, cell, state_size, profile, exponent, arr("lyapunov"),
        tuple(s.verdict for s in seqs), horizon, arr("end", np.int64),
        tuple(s.overflow for s in seqs), rate,
        None if rate is None else arr("eq12_slack"),
        seqs[0].bound_name, arr("bound"), arr("bound_slack"), van, exp, notes,
        _batch_summary(seqs, profile, exponent, horizon, threshold),
    )
    return record


def _bounds_note(names: tuple[str, ...], stack: bool) -> str:
    text = "data-dependent bounds computed: " + (", ".join(names) if names else "none")
    if "step_norm" not in names:
        text += (f" (Π‖J_i‖ needs an SVD per step; computed for states of at most "
                 f"{_STEP_NORM_MAX_STATE} numbers: call bounds.step_log_bounds(model, trace, "
                 "'step_norm')" + (", or bounds.stack_pair_log_bounds for the block-norm bound"
                                   if stack else "") + ")")
    return text


def _median(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def _batch_summary(seqs: list[_Seq], profile: np.ndarray, exponent: np.ndarray,
                   horizon: np.ndarray, threshold: float) -> dict[str, Any]:
    T = profile.shape[1] - 1
    finite = ~np.isnan(exponent)
    if finite.any():
        far = np.where(finite, np.abs(exponent), -1.0)
        w_exp = int(np.argmax(far))
    else:
        w_exp = 0
    w_hor = int(np.argmin(horizon))
    med_exp = _median(exponent)
    counts = {v: sum(s.verdict == v for s in seqs) for v in VERDICTS}
    cols = [profile[:, j][~np.isnan(profile[:, j])] for j in range(T + 1)]
    return {
        "sequences": len(seqs),
        "verdicts": {k: v for k, v in counts.items() if v},
        "verdict": _verdict(med_exp, T, threshold),
        "exponent": {"median": med_exp, "worst": float(exponent[w_exp]), "worst_sequence": w_exp},
        "lyapunov": {"median": _median(np.array([s.lyapunov for s in seqs]))},
        "horizon": {"median": float(np.median(horizon)), "worst": int(horizon[w_hor]),
                    "worst_sequence": w_hor},
        "profile_median": np.array([float(np.median(c)) if c.size else np.nan for c in cols]),
        "profile_lowest": np.array([float(c.min()) if c.size else np.nan for c in cols]),
        "profile_highest": np.array([float(c.max()) if c.size else np.nan for c in cols]),
    }


# --------------------------------------------------------------------------- inputs


def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "torch"


def _as_model(model: Any) -> Any:
    if _is_torch(model):
        from .torch_bridge import from_torch

        return from_torch(model)
    if not isinstance(model, ElmanRNN | LSTM | GRU | StackedRNN | BidirectionalRNN):
        raise TypeError(
            "`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN, or a "
            f"torch.nn.RNN, LSTM or GRU, got {type(model).__name__}"
        )
    return model


def _as_input(x: Any, batch_first: bool) -> Any:
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    if batch_first:
        arr = np.asarray(x)
        if arr.ndim == 3:
            return np.ascontiguousarray(np.swapaxes(arr, 0, 1))
    return x


def _forward(model: Any, x: Any, h0: Any, c0: Any) -> Any:
    if _is_torch(h0):
        h0 = h0.detach().cpu().numpy()
    if _is_torch(c0):
        c0 = c0.detach().cpu().numpy()
    lstm = isinstance(model, LSTM) or getattr(model, "cell", None) == "lstm"
    if c0 is not None and not lstm:
        cell = type(model).__name__ if isinstance(model, ElmanRNN | GRU) else f"{model.cell} stack"
        raise ValueError(f"`c0` is the LSTM's initial cell state; a {cell} has none: leave `c0` out")
    if lstm:
        return model.forward(x, h0, c0)
    return model.forward(x, h0)


def _recurrences(model: Any, trace: Any) -> list[tuple[str, Any, Any]]:
    """``(label, cell, cell trace)`` for each recurrence, its input held fixed."""
    if isinstance(model, ElmanRNN | LSTM | GRU):
        return [("layer 1", model, trace)]
    return list(JAC.layer_traces(model, trace))


# --------------------------------------------------------------------------- the call


def diagnose(
    model: Any,
    x: Any,
    *,
    h0: Any = None,
    c0: Any = None,
    batch_first: bool = False,
    tolerance: float = 1e-3,
    seed: int | np.random.Generator = 0,
) -> Diagnosis:
    """Diagnose the gradient flow of ``model`` on the input ``x``.

    .. math::

        \\mathrm{profile}[\\tau] = \\ln \\Big\\| \\frac{\\partial s_T}{\\partial s_{T-\\tau}} \\Big\\|_2,
        \\qquad \\tau = 0, \\dots, T,

    for the whole state ``s`` and for each recurrence with its input held
    fixed, with the exponent (slope of the profile), the top Lyapunov
    exponent, a verdict, the horizon, and the theory's bounds beside them
    (see the module docstring for the verdict rule).

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN, or a torch module
        A ``torch.nn.RNN``, ``LSTM`` or ``GRU`` is converted with
        :func:`rnntheory.from_torch` (torch is imported only then).
    x : array or torch tensor, shape ``(T, n_in)`` or ``(T, B, n_in)``
        The input (``(B, T, n_in)`` with ``batch_first=True``).
    h0, c0 : array or torch tensor, optional
        Initial states as the model's ``forward`` takes them (``c0`` for an
        LSTM only); for a stacked model ``(L, n)`` or ``(L, B, n)`` as PyTorch
        shapes them.
    batch_first : bool
        ``x`` is ``(B, T, n_in)`` (PyTorch's ``batch_first=True``).
    tolerance : float
        In ``(0, 1)``: the horizon is the largest lag whose gradient is at
        least ``tolerance`` of its lag-0 size; the verdict's threshold is
        ``ln(1/tolerance)`` nats.
    seed : int or numpy.random.Generator
        Seed of the Lyapunov exponent's random starting frame.

    Returns
    -------
    Diagnosis
        ``print(d)`` gives a short summary; ``d.to_dict()`` and
        ``d.to_json()`` the numbers.

    Raises
    ------
    TypeError
        If ``model`` is not one of the models above, or ``tolerance`` or
        ``seed`` has the wrong type.
    ValueError
        If ``tolerance`` is not in ``(0, 1)``, ``c0`` is given for a model
        without a cell state, or the model's ``forward`` refuses ``x``, ``h0``
        or ``c0`` (its message names the argument). A forward pass that
        overflows raises nothing: the diagnosis lists the steps.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, diagnose
    >>> W = 0.9 * np.eye(3)   # linear, ‖∂h_T/∂h_{T−τ}‖ = 0.9^τ
    >>> m = ElmanRNN(W, np.ones((3, 1)), np.zeros(3), activation="identity")
    >>> d = diagnose(m, np.zeros((100, 1)))
    >>> d.verdict, d.horizon, round(d.exponent, 6)
    ('vanishing', 65, -0.105361)

    Pascanu et al. 2013, "On the difficulty of training recurrent neural
    networks" (the conditions); Eq. 12 of the article (the rate).
    """
    tolerance = check_real("tolerance", tolerance, low=0.0, high=1.0, low_open=True, high_open=True)
    seed_ = check_seed("seed", seed, allow_none=False)
    assert seed_ is not None
    if not isinstance(batch_first, bool | np.bool_):
        raise TypeError(f"`batch_first` must be a bool, got {type(batch_first).__name__}")
    model = _as_model(model)
    x = _as_input(x, bool(batch_first))
    trace = _forward(model, x, h0, c0)
    batched = bool(trace.batched)
    seqs = [trace.sequence(b) for b in range(np.shape(x)[1])] if batched else [trace]
    threshold = float(-np.log(tolerance))
    log_tol = float(np.log(tolerance))
    args = (batched, threshold, log_tol, seed_)

    per_seq = [_recurrences(model, tr) for tr in seqs]
    layers = tuple(
        _analyse(label, cell_model, [p[i][2] for p in per_seq], *args)
        for i, (label, cell_model, _) in enumerate(per_seq[0])
    )
    if isinstance(model, ElmanRNN | LSTM | GRU):
        state = layers[0]
    elif isinstance(model, BidirectionalRNN):  # no single state recurs: the most severe direction
        state = max(layers, key=_severity)
    else:  # a stack: the whole state, layer 1 first
        state = _analyse(
            "whole state", model, seqs, *args,
            theory=(_cell_name(model), None, None, None, (_STACK_NOTE,)),
        )
    return Diagnosis(repr(model), int(trace.T), len(seqs) if batched else None,
                     tolerance, threshold, state, layers)


def _cell_name(model: Any) -> str:
    return str(getattr(model, "cell", type(model).__name__.lower()))


def _severity(r: LayerDiagnosis) -> tuple[int, float]:
    verdicts = r.verdict if isinstance(r.verdict, tuple) else (r.verdict,)
    rank = {"exploding": 3, "vanishing": 2, "neutral": 1, "undetermined": 0}
    exps = np.atleast_1d(np.asarray(r.exponent, np.float64))
    exps = np.abs(exps[~np.isnan(exps)])
    return max(rank[v] for v in verdicts), float(exps.max()) if exps.size else 0.0


# --------------------------------------------------------------------------- text


def _num(v: Any, fmt: str = ".3g") -> str:
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "−inf"
    return format(v, fmt).replace("-", "−")


def _slack(v: Any) -> str:
    """A slack in nats, rounding noise (below 1e-9 nats) shown as 0."""
    v = float(v)
    return _num(0.0 if abs(v) < 1e-9 else v)


def _profile_line(profile: np.ndarray, end: int, what: str) -> str:
    marks = sorted({0, end // 4, end // 2, (3 * end) // 4, end})
    cells = " | ".join(f"τ={t} {_num(profile[t])}" for t in marks)
    return f"  {what}: {cells}"


def _summary_text(d: Diagnosis) -> str:
    s = d.state
    batched = d.batch_size is not None
    who = f"{d.batch_size} sequences" if batched else "1 sequence"
    lines = [f"diagnosis of {d.model}", f"  on {who} of T = {d.T} steps; tolerance {d.tolerance:g}"]
    head = "whole state" if s.label == "whole state" or len(d.layers) == 1 else f"{s.label} (most severe)"
    lines.append(f"{head} (state size {s.state_size}):")
    if batched:
        sm = s.summary or {}
        counts = ", ".join(f"{k} {v}" for k, v in sm.get("verdicts", {}).items())
        lines.append(f"  verdict: {sm.get('verdict')} for the median sequence ({counts} of {d.batch_size})")
        ex, hz = sm["exponent"], sm["horizon"]
        lines.append(f"  exponent: median {_num(ex['median'])} nats/step, worst {_num(ex['worst'])} "
                     f"(sequence {ex['worst_sequence']}); top Lyapunov median {_num(sm['lyapunov']['median'])}")
        lines.append(f"  horizon: median {hz['median']:g} steps, shortest {hz['worst']} "
                     f"(sequence {hz['worst_sequence']})")
        lines.append(_profile_line(sm["profile_median"], d.T, "median ln‖∂s_T/∂s_{T−τ}‖"))
    else:
        lines.append(f"  verdict: {s.verdict} (exponent·T = {_num(s.exponent * s.end if s.end else np.nan)} nats; "
                     f"threshold ±{d.threshold:.3g})")
        lines.append(f"  exponent {_num(s.exponent)} nats/step (slope of the profile); "
                     f"top Lyapunov exponent {_num(s.lyapunov)}")
        lines.append(f"  horizon {s.horizon} steps (largest τ with ‖∂s_T/∂s_{{T−τ}}‖ ≥ {d.tolerance:g})")
        lines.append(_profile_line(s.profile, s.end, "ln‖∂s_T/∂s_{T−τ}‖"))
        if s.overflow:
            shown = ", ".join(map(str, s.overflow[:5])) + (", …" if len(s.overflow) > 5 else "")
            lines.append(f"  overflow: the forward pass is not finite at steps {shown}; "
                         f"measured from step {s.end}")
    lines.extend(_theory_lines(s, batched))
    if len(d.layers) > 1 or d.layers[0] is not s:
        lines.append("per recurrence (input held fixed):")
        for r in d.layers:
            lines.append("  " + _layer_line(r, batched))
    lines.append(f"rule: {d.rule}")
    return "\n".join(lines)


def _pick(v: Any, batched: bool, summary: dict[str, Any] | None, key: str) -> Any:
    if not batched:
        return v
    return (summary or {}).get(key, {}).get("median", np.nan)


def _theory_lines(s: LayerDiagnosis, batched: bool) -> list[str]:
    out = []
    end = int(np.max(s.end)) if batched else int(s.end)
    med = (lambda v: _median(np.asarray(v, np.float64))) if batched else float
    tag = "median " if batched else ""
    if s.eq12_rate is not None:
        out.append(f"  Eq. 12: rate ln(γ_W γ_h) {_num(s.eq12_rate)} nats/step; bound − observed "
                   f"at τ = {end}: {tag}{_slack(med(s.eq12_slack))} nats")
    if s.bound_name is not None:
        out.append(f"  tightest data-dependent bound ({s.bound_name}) at τ = {end}: {tag}"
                   f"{_num(med(s.bound))} nats, slack {_slack(med(s.bound_slack))} nats")
    else:
        out.append(f"  data-dependent bounds: not computed for a state of {s.state_size} numbers "
                   "(Π‖J_i‖ takes an SVD per step; see notes)")
    if s.vanishing_guaranteed is not None:
        out.append(f"  Pascanu et al.: vanishing guaranteed {_yes(s.vanishing_guaranteed)} "
                   f"[sufficient]; explosion possible {_yes(s.explosion_possible)} [necessary only]")
    elif s.cell in ("lstm", "gru") and s.label != "whole state":
        out.append(f"  Eq. 12, Pascanu et al.: do not apply to {s.cell.upper()} cells "
                   "(the carry term is not diag(f′)W_hh)")
    return out


def _yes(b: bool | None) -> str:
    return "yes" if b else "no"


def _layer_line(r: LayerDiagnosis, batched: bool) -> str:
    if batched:
        sm = r.summary or {}
        return (f"{r.label:<20} {sm.get('verdict', ''):<10} exponent {_num(sm['exponent']['median'])} "
                f"λ₁ {_num(sm['lyapunov']['median'])} horizon {sm['horizon']['median']:g} (medians)")
    extra = ""
    if r.eq12_rate is not None:
        extra = f"  Eq. 12 slack {_slack(r.eq12_slack)}"
    elif r.bound_name is not None:
        extra = f"  {r.bound_name} slack {_slack(r.bound_slack)}"
    return (f"{r.label:<20} {r.verdict:<10} exponent {_num(r.exponent)}  λ₁ {_num(r.lyapunov)}  "
            f"horizon {r.horizon}{extra}")
