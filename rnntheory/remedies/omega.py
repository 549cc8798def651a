r"""Pascanu's vanishing-gradient regularizer Ω (Eqs. 15–16 of the article).

Pascanu, Mikolov & Bengio (2013, Eqs. 9–10) ask the back-propagated error to
keep its norm from one step to the next. With ``v_{k+1} = ∂E/∂h_{k+1}`` (a row
vector) and the step Jacobian ``J_{k+1} = ∂h_{k+1}/∂h_k`` (numerator layout),

.. math::

    \Omega = \frac{1}{|K|}\sum_{(k, b)\in K} \Omega_{k},\qquad
    \Omega_k = \left(\frac{\lVert v_{k+1} J_{k+1}\rVert^2}{\lVert v_{k+1}\rVert^2} - 1\right)^2
    \quad\text{("squared")}\quad\text{or}\quad
    \Omega_k = \left(\frac{\lVert v_{k+1} J_{k+1}\rVert}{\lVert v_{k+1}\rVert} - 1\right)^2
    \quad\text{("norm")},

for ``k = 0..T−1`` and every sequence ``b`` of a batch. In the library's column
conventions the row vector ``v J`` is ``u = J_{k+1}ᵀ flow[k+1]``, with

* standard form: ``J_{k+1} = diag(f′(a_{k+1})) W_hh``;
* Pascanu's form: ``J_{k+1} = W_hh diag(f′(h_k))``;
* leaky units (Eq. 14): ``J_{k+1} = diag(α) + diag(1 − α) J^{(form)}_{k+1}``.

These are the definitions of :mod:`rnntheory.symbolic.omega` (``squared=True``
is the "squared" variant), so the numeric and the symbolic Ω agree term by term.

Normalisation (as in Pascanu et al.'s public code)
---------------------------------------------------
A term counts when ``‖v_{k+1}‖² ≥ threshold`` (their ``bound``, ``1e-20`` by
default, on the *squared* norm); terms whose error signal is negligible (steps
after the last target, where the flow is exactly 0) are left out, and Ω is the
*mean* of the counted terms over all steps and all sequences of the batch,
``|K|`` being their number. With no counted term Ω = 0 (their code would give
0/0). The ratio is invariant to rescaling ``v``, so the mean-over-the-batch loss
of their code and the summed loss of :meth:`ElmanRNN.value_and_grad` give the
same Ω up to the threshold (``train`` rescales the threshold by ``B²``).

The gradient
------------
:func:`omega` returns ``∂Ω/∂W_hh`` with ``v_{k+1}`` **held fixed**, and ``h_k``
and the input term ``W_hx x_{k+1} + b_h`` held fixed too (Pascanu et al.'s
"immediate" derivative: Ω seen as a function of the ``W_hh`` that appears in
``J_{k+1}``). For the standard form, ``f′(a_{k+1})`` with ``a_{k+1} = W_hh h_k + …``
still depends on ``W_hh``, which adds an ``f″`` term (see
:mod:`rnntheory.symbolic.omega`); ``hold_fprime=True`` drops it, as their
Theano code does (it differentiates ``(v ⊙ f′) W_hhᵀ`` with ``f′`` computed
from ``h`` as a constant). :func:`omega_full_gradient` gives the *full*
derivative of Ω through the forward pass and BPTT, by central differences,
for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._parallel import blas_threads_for, own_threads, row_ranges, run_parallel, threads_for
from .._validation import (
    as_float_array,
    check_choice,
    check_real,
    read_only,
    show_value,
    transposed,
)
from ..cells.elman import ElmanRNN
from ..cells.gated import GRU, LSTM
from ..cells.stacked import StackedRNN, StackedTrace
from . import _omega_kernels as K

__all__ = ["OmegaResult", "omega", "omega_full_gradient"]

VARIANTS = ("squared", "norm")
DEFAULT_THRESHOLD = 1e-20  # Pascanu et al.'s `bound` on ‖∂E/∂h_{k+1}‖²


@dataclass(frozen=True)
class OmegaResult:
    """The value of Ω and its gradient with respect to ``W_hh``.

    Attributes
    ----------
    value : float
        Ω, the mean of the counted terms ``Ω_k`` (float64).
    W_hh : ndarray, shape ``(n, n)``, or ``(G·n, n)`` for a gated cell
        The gradient of Ω with respect to the recurrent matrix, in the model's
        dtype: ``∂Ω/∂W_hh`` of an Elman RNN, ``∂Ω/∂weight_hh`` (every gate's
        block) of an LSTM or GRU; with the flow held fixed (:func:`omega`) or
        the full derivative (:func:`omega_full_gradient`).
    ratio : ndarray, shape ``(T,)`` or ``(T, B)``
        ``‖v_{k+1} J_{k+1}‖/‖v_{k+1}‖`` of each term, row ``k`` for ``k = 0..T−1``
        (1.0 where the term does not count), float64.
    counted : ndarray of bool, shape ``(T,)`` or ``(T, B)``
        Which terms count (``‖v_{k+1}‖² ≥ threshold``).
    count : int
        Number of counted terms ``|K|``.
    variant : str
        ``"squared"`` or ``"norm"``.
    gradient : str
        ``"fixed flow"``, ``"fixed flow and f′"``, ``"fixed flow and gates"``
        (gated cells with ``hold_fprime``) or ``"full (central differences)"``.
    param : str
        The name of the recurrent matrix in the model's ``params()``:
        ``"W_hh"`` (Elman) or ``"weight_hh"`` (LSTM, GRU); for a
        :class:`~rnntheory.StackedRNN`, that of layer 1 (``"W_hh_l0"`` or
        ``"weight_hh_l0"``).
    layer_grads : dict or None
        For a :class:`~rnntheory.StackedRNN`: ``{"W_hh_l<l>" or
        "weight_hh_l<l>": ∂Ω/∂(that matrix)}`` for every layer ``l`` (layer 1's
        is ``W_hh``); ``None`` for a single cell.
    """

    value: float
    W_hh: np.ndarray
    ratio: np.ndarray
    counted: np.ndarray
    count: int
    variant: str
    gradient: str
    param: str = "W_hh"
    layer_grads: dict[str, np.ndarray] | None = None

    def grads(self) -> dict[str, np.ndarray]:
        """``{param: ∂Ω/∂param}`` keyed by the model's parameter name (``"W_hh"``
        or ``"weight_hh"``; every layer's ``"W_hh_l<l>"``/``"weight_hh_l<l>"`` for a
        stack), the shape the penalties return (other parameters: zero)."""
        if self.layer_grads is not None:
            return dict(self.layer_grads)
        return {self.param: self.W_hh}


def _check_model(model: Any) -> ElmanRNN:
    if not isinstance(model, ElmanRNN):
        raise TypeError(f"`model` must be an ElmanRNN, got {show_value(model)}")
    return model


def _check_any_model(model: Any) -> ElmanRNN | LSTM | GRU | StackedRNN:
    if not isinstance(model, ElmanRNN | LSTM | GRU | StackedRNN):
        raise TypeError(f"`model` must be an ElmanRNN, LSTM, GRU or StackedRNN, got {show_value(model)}")
    return model


PATHS = ("state", "h")


def _gated_flows(model: LSTM | GRU, flow: Any, path: str) -> tuple[Any, Any]:
    """``(flow, flow_c)`` from a gradient record, a pair or an array (``flow_c``
    is ``None`` where it is not read: the GRU, the LSTM's h-to-h path)."""
    need_c = isinstance(model, LSTM) and path == "state"
    if hasattr(flow, "flow") and not isinstance(flow, np.ndarray):
        fh, fc = flow.flow, getattr(flow, "flow_c", None)
    elif isinstance(flow, tuple | list) and len(flow) == 2 and isinstance(model, LSTM):
        fh, fc = flow
    else:
        fh, fc = flow, None
    if need_c and fc is None:
        raise TypeError(
            "`flow` of an LSTM must be its gradient record (with `flow` and `flow_c`) or the pair "
            f"(flow, flow_c) for `path` = 'state', got {show_value(flow)}"
        )
    return fh, fc if need_c else None


def _states(h: Any, finite: bool) -> np.ndarray:
    """``trace.h`` as a float array, its finiteness checked (when ``finite``) by one fast pass."""
    H = as_float_array("trace.h", h, ndim=(2, 3), finite=False)
    if finite and not K.all_finite_flat(H.reshape(-1)):
        as_float_array("trace.h", h, ndim=(2, 3))  # raises the error that names the NaN/inf entries
    return H


def _compute_gated(
    model: LSTM | GRU,
    trace: Any,
    flow: Any,
    path: str,
    variant: str,
    threshold: float,
    grad_mode: int,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate and call the gated kernels. Returns value, gradient, ratio, counted, count."""
    lstm = isinstance(model, LSTM)
    h = getattr(trace, "h", None)
    pre = getattr(trace, "pre", None)
    c = getattr(trace, "c", None)
    if h is None or pre is None or (lstm and c is None):
        raise TypeError(
            f"`trace` must be a GatedTrace from {type(model).__name__}.forward or "
            f"value_and_grad(keep_trace=True), got {show_value(trace)}"
        )
    fh, fc = _gated_flows(model, flow, path)
    n = model.n_hidden
    H = _states(h, True)
    if H.shape[0] < 2 or H.shape[-1] != n:
        raise ValueError(
            f"`trace.h` must have shape (T+1, n) or (T+1, B, n) with T >= 1 and n = {n}, "
            f"got shape {H.shape}"
        )
    dt = model.dtype
    T = H.shape[0] - 1
    lead = H.shape[1:-1]
    B = int(np.prod(lead, dtype=np.int64))
    N = T * B
    PRE = _rows("trace.pre", pre, (T, *lead, 4 * n), dt).reshape(N, 4 * n)
    V = _rows("flow", fh, H.shape, dt)[1:].reshape(N, n)
    HK = np.ascontiguousarray(H[:-1], dtype=dt).reshape(N, n)
    W = np.ascontiguousarray(model.weight_hh)
    WT = transposed(W)
    G_rows = W.shape[0]
    m = np.empty(N, np.uint8)
    R = np.empty(N, np.float64)
    if lstm:
        Cs = _rows("trace.c", c, H.shape, dt).reshape((T + 1) * B, n)
        CP, CN = Cs[:N], Cs[B:]
        FC = (_rows("flow_c", fc, H.shape, dt).reshape((T + 1) * B, n) if fc is not None
              else np.empty((0, n), dt))
    k = threads_for(N, 4 * N * G_rows * n)
    ranges = row_ranges(N, k)
    Gs = [np.zeros((G_rows, n), dtype=dt) for _ in ranges]
    squared = variant == "squared"

    reuse = _bptt_parts(model, trace, flow, path, grad_mode, (T, *lead, n))

    def part(i: int) -> tuple[float, int]:
        r0, r1 = ranges[i]
        if reuse is not None:  # the cell as a stack of one layer
            got = K.omega_parts(*reuse, V, B, squared, grad_mode > 0, float(threshold), m, R,
                                     Gs[i].reshape(1, *Gs[i].shape), r0, r1)
            if got[1] >= 0:
                return got
        if lstm:
            return K.lstm_omega_kernel(
                W, WT, PRE, CP, CN, HK, V, FC, B, path == "state", squared, grad_mode,
                float(threshold), m, False, R, Gs[i], r0, r1,
            )
        return K.gru_omega_kernel(W, WT, PRE, HK, V, squared, grad_mode, float(threshold), m, False, R,
                                  Gs[i], r0, r1)

    with own_threads(k) if k > 1 else blas_threads_for(N * G_rows * n):
        parts = run_parallel([partial(part, i) for i in range(len(ranges))])
    count = sum(cnt for _, cnt in parts)
    total = sum(t for t, _ in parts)
    scale = 1.0 / count if count else 0.0
    G = Gs[0]
    for Gi in Gs[1:]:
        G += Gi
    G *= scale
    shape = (T, *lead)
    return float(total * scale), G, R.reshape(shape), m.reshape(shape).astype(bool), int(count)


def _bptt_parts(
    model: Any, trace: Any, flow: Any, path: str, grad_mode: int, shape: tuple[int, ...]
) -> tuple[Any, Any, Any] | None:
    """``(D, UH, CC)`` as rows (typed lists of one layer) where Ω may read them from the
    model's BPTT pass (:func:`~rnntheory.remedies._omega_kernels.omega_parts`): the flow
    and ``f′`` (the gates) held, the LSTM's whole state, and ``flow`` the record of
    ``value_and_grad(keep_trace="scratch")`` under full BPTT of this very model (an
    Elman cell of the standard form, an LSTM or a GRU), with ``trace`` its own
    trace. ``CC`` is empty ``(0, n)`` where the state has no ``c``. Else ``None``."""
    parts = getattr(flow, "_omega_parts", None)
    weight = model.W_hh if isinstance(model, ElmanRNN) else model.weight_hh
    if (parts is None or grad_mode != K.GRAD_FIXED_FPRIME or (isinstance(model, LSTM) and path != "state")
            or parts[0] is not weight or parts[1] is not trace):
        return None
    D, UH, CC = parts[2:]
    T, *lead, n = shape
    if UH.shape != (T, int(np.prod(lead, dtype=np.int64)), n):
        return None
    N = UH.shape[0] * UH.shape[1]
    carry = CC.reshape(-1, n) if CC is not None else np.empty((0, n), UH.dtype)
    return (_layer_list([D.reshape(N, D.shape[-1])]), _layer_list([UH.reshape(N, n)]),
            _layer_list([carry]))


def _rows(name: str, arr: Any, shape: tuple[int, ...], dtype: np.dtype, finite: bool = True) -> np.ndarray:
    a = as_float_array(name, arr, ndim=(2, 3), finite=False)
    if a.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape} (from `trace.h`), got shape {a.shape}")
    if finite and not K.all_finite_flat(a.reshape(-1)):
        as_float_array(name, arr, ndim=(2, 3))  # raises the error that names the NaN/inf entries
    return np.ascontiguousarray(a, dtype=dtype)


def _compute(
    model: ElmanRNN,
    trace: Any,
    flow: Any,
    variant: str,
    threshold: float,
    grad_mode: int,
    mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate and call the kernel. Returns value, gradient, ratio, counted, count."""
    record = flow
    if hasattr(flow, "flow") and not isinstance(flow, np.ndarray):
        flow = flow.flow
    h = getattr(trace, "h", None)
    a = getattr(trace, "a", None)
    if h is None or a is None:
        raise TypeError(f"`trace` must be a Trace from ElmanRNN.forward, got {show_value(trace)}")
    n = model.n_hidden
    fp = getattr(trace, "fprime", None)  # f′(a) kept by value_and_grad(keep_trace=True)
    std_f2 = model.form == "standard" and grad_mode == K.GRAD_FIXED_FLOW
    # an array of the trace the kernel does not read is checked for its shape only
    # (h is read for the f″ term, a where f′ is not kept or for f″)
    H = _states(h, std_f2)
    if H.shape[0] < 2 or H.shape[-1] != n:
        raise ValueError(
            f"`trace.h` must have shape (T+1, n) or (T+1, B, n) with T >= 1 and n = {n}, "
            f"got shape {H.shape}"
        )
    dt = model.dtype
    T = H.shape[0] - 1
    lead = H.shape[1:-1]
    F = _rows("flow", flow, H.shape, dt)
    A = _rows("trace.a", a, (T, *lead, n), dt, finite=fp is None or std_f2)
    N = T * int(np.prod(lead, dtype=np.int64))
    V = F[1:].reshape(N, n)
    AR = A.reshape(N, n)
    FPR = _rows("trace.fprime", fp, (T, *lead, n), dt).reshape(N, n) if fp is not None else np.empty((0, n), dt)
    HK = np.ascontiguousarray(H[:-1], dtype=dt).reshape(N, n) if std_f2 else np.empty((0, n), dt)
    W = np.ascontiguousarray(model.W_hh)
    alpha = read_only(model.alpha if model.alpha is not None else np.zeros(1, dtype=dt))
    given = mask is not None
    m = np.ascontiguousarray(mask, dtype=np.uint8).reshape(N) if given else np.empty(N, np.uint8)
    R = np.empty(N, np.float64)
    WT = transposed(W)
    # the terms are independent rows: k threads take ranges of them, each
    # returning its mean over its own counted terms, recombined by the counts
    k = threads_for(N, 3 * N * n * n)
    ranges = row_ranges(N, k)
    Gs = [np.zeros((n, n), dtype=dt) for _ in ranges]
    reuse = None if given else _bptt_parts(model, trace, record, "state", grad_mode, (T, *lead, n))

    def part(i: int) -> tuple[float, int]:
        r0, r1 = ranges[i]
        if reuse is not None:  # u from the BPTT pass: the mean over this range's counted terms
            total, c = K.omega_parts(*reuse, V, 1, variant == "squared", grad_mode > 0, float(threshold), m, R,
                                     Gs[i].reshape(1, n, n), r0, r1)
            if c >= 0:
                Gs[i] *= 1.0 / c if c else 0.0
                return (total / c if c else 0.0), c
        return K.omega_kernel(
            W, WT, V[r0:r1], AR[r0:r1], FPR[r0:r1] if FPR.shape[0] else FPR, HK[r0:r1] if HK.shape[0] else HK,
            alpha, model.activation.code, 0 if model.form == "standard" else 1, model.leaky,
            variant == "squared", grad_mode, float(threshold), m[r0:r1], given, R[r0:r1], Gs[i],
        )

    with own_threads(k) if k > 1 else blas_threads_for(N * n * n):
        parts = run_parallel([partial(part, i) for i in range(len(ranges))])
    count = sum(c for _, c in parts)
    value = sum(v * c for v, c in parts) / count if count else 0.0
    G = Gs[0]
    if len(parts) > 1:
        G *= parts[0][1] / count if count else 0.0
        for (_, c), Gi in zip(parts[1:], Gs[1:], strict=True):
            if c:
                G += Gi * (c / count)
    shape = (T, *lead)
    return float(value), G, R.reshape(shape), m.reshape(shape).astype(bool), int(count)


# ---------------------------------------------------------------------------
# Stacked models
# ---------------------------------------------------------------------------


def _stack_arrays(
    model: StackedRNN, trace: Any, hold: bool
) -> tuple[list[dict[str, np.ndarray]], int, tuple[int, ...]]:
    """Each layer's recorded arrays as ``(N, ·)`` rows in the model's dtype, with ``T``
    and the batch shape (``"h"``: ``h_k``; ``"a"``, ``"fp"`` of an Elman layer, where
    recorded; ``"pre"``, and ``"c"``/``"c2"`` (``c_k``/``c_{k+1}``) of a gated one).
    An array the kernel does not read (``hold``: the gates or ``f′`` held) is checked
    for its shape only, as for one cell: ``h_k`` of a standard Elman or an LSTM layer,
    ``a`` where ``f′(a)`` was kept."""
    layers = getattr(trace, "layers", None)
    if not isinstance(trace, StackedTrace) or not isinstance(layers, tuple | list) or len(layers) != model.n_layers:
        raise TypeError(
            f"`trace` must be a StackedTrace of {model.n_layers} layers from StackedRNN.forward, "
            f"got {show_value(trace)}"
        )
    n = model.n_hidden
    H0 = as_float_array("trace.layers[0].h", getattr(layers[0], "h", None), ndim=(2, 3), finite=False)
    if H0.shape[0] < 2 or H0.shape[-1] != n:
        raise ValueError(
            f"`trace.layers[0].h` must have shape (T+1, n) or (T+1, B, n) with T >= 1 and n = {n}, "
            f"got shape {H0.shape}"
        )
    T, lead = H0.shape[0] - 1, H0.shape[1:-1]
    N = T * int(np.prod(lead, dtype=np.int64))
    dt = model.dtype
    out = []
    for l, (layer, tr) in enumerate(zip(model.layers, layers, strict=True)):
        fp = getattr(tr, "fprime", None) if isinstance(layer, ElmanRNN) else None  # f′(a), kept by value_and_grad
        read_h = not hold or isinstance(layer, GRU) or (isinstance(layer, ElmanRNN) and layer.form != "standard")
        H = _rows(f"trace.layers[{l}].h", getattr(tr, "h", None), H0.shape, dt, finite=read_h)
        rows = {"h": H[:-1].reshape(N, n)}
        if isinstance(layer, ElmanRNN):
            if layer.form == "standard":
                read_fp = hold and fp is not None
                rows["a"] = _rows(
                    f"trace.layers[{l}].a", getattr(tr, "a", None), (T, *lead, n), dt, finite=not read_fp
                ).reshape(N, n)
                if read_fp:
                    rows["fp"] = _rows(f"trace.layers[{l}].fprime", fp, (T, *lead, n), dt).reshape(N, n)
        else:
            rows["pre"] = _rows(
                f"trace.layers[{l}].pre", getattr(tr, "pre", None), (T, *lead, 4 * n), dt
            ).reshape(N, 4 * n)
            if isinstance(layer, LSTM):
                C = _rows(f"trace.layers[{l}].c", getattr(tr, "c", None), H0.shape, dt)
                rows["c"], rows["c2"] = C[:-1].reshape(N, n), C[1:].reshape(N, n)
        out.append(rows)
    return out, T, lead


def _layer_list(arrays: list[np.ndarray]) -> Any:
    """One array per layer as a Numba typed list of C-contiguous arrays: its type does
    not carry the number of layers (a tuple's does), so each stacked kernel compiles
    once per dtype instead of once per layer count (20–40 s each)."""
    return K.layer_list(tuple(np.ascontiguousarray(a) for a in arrays))


def _stacked_bptt_parts(model: StackedRNN, trace: Any, flow: Any, hold: bool) -> tuple[Any, Any, Any] | None:
    """Each layer's ``(D, UH, CC)`` as typed lists of rows, where Ω of a stack of LSTMs
    or GRUs may read them from its BPTT pass (:func:`~rnntheory.remedies._omega_kernels.omega_parts`):
    the gates held, and ``flow`` the record of ``value_and_grad(keep_trace="scratch")``
    under full BPTT of this very stack, with ``trace`` its own trace (``CC`` empty
    ``(0, n)`` for GRUs). Else ``None``."""
    kept = getattr(flow, "_omega_parts", None)
    if kept is None or not hold or not isinstance(model.layers[0], LSTM | GRU):
        return None
    weights, own_trace, layers = kept
    if own_trace is not trace or len(weights) != model.n_layers or any(
            w is not getattr(layer, "weight_hh", None) for w, layer in zip(weights, model.layers, strict=True)):
        return None
    n = model.n_hidden
    empty = np.empty((0, n), model.dtype)
    return (_layer_list([D.reshape(-1, D.shape[-1]) for D, _, _ in layers]),
            _layer_list([UH.reshape(-1, n) for _, UH, _ in layers]),
            _layer_list([empty if CC is None else CC.reshape(-1, n) for _, _, CC in layers]))


def _compute_stacked(
    model: StackedRNN, trace: Any, flow: Any, variant: str, threshold: float, hold: bool
) -> tuple[float, dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Ω of a stack's whole state and its fixed-flow gradient for every layer's recurrent
    matrix, by the stacked kernels (ranges of terms on threads, as for one cell).

    Returns value, ``{name: gradient}``, ratio, counted, count.
    """
    rows, T, lead = _stack_arrays(model, trace, hold)
    reuse = _stacked_bptt_parts(model, trace, flow, hold)
    if hasattr(flow, "flow") and not isinstance(flow, np.ndarray):
        flow = flow.flow
    n, L, dt = model.n_hidden, model.n_layers, model.dtype
    S = model.state_size
    N = T * int(np.prod(lead, dtype=np.int64))
    V = _rows("flow", flow, (T + 1, *lead, S), dt)[1:].reshape(N, S)
    layers: tuple[Any, ...] = model.layers  # one cell class (checked by StackedRNN)
    elman = isinstance(layers[0], ElmanRNN)
    rec = "W_hh" if elman else "weight_hh"
    Ws = np.ascontiguousarray(np.stack([getattr(m, rec) for m in layers]), dtype=dt)
    # layer 1's input weights are not read (its input is not part of the state)
    Us = np.zeros_like(Ws)
    for l in range(1, L):
        Us[l] = layers[l].W_hx if elman else layers[l].weight_ih
    WTs = np.ascontiguousarray(Ws.transpose(0, 2, 1))
    UTs = np.ascontiguousarray(Us.transpose(0, 2, 1))
    G_rows = Ws.shape[1]
    m = np.empty(N, np.uint8)
    R = np.empty(N, np.float64)
    squared = variant == "squared"
    exact = not hold
    k = threads_for(N, 4 * N * G_rows * n * L)
    ranges = row_ranges(N, k)
    Gs = [np.zeros((L, G_rows, n), dtype=dt) for _ in ranges]
    HK = _layer_list([r["h"] for r in rows])
    empty = np.empty((0, n), dt)
    if elman:
        AR = _layer_list([r.get("a", empty) for r in rows])
        FPR = _layer_list([r.get("fp", empty) for r in rows])
        acts = np.array([m_.activation.code for m_ in layers], np.int64)
        forms = np.array([0 if m_.form == "standard" else 1 for m_ in layers], np.int64)
        leaky = np.array([m_.leaky for m_ in layers], np.bool_)
        alphas = np.zeros((L, n), dt)
        for l, m_ in enumerate(layers):
            if m_.alpha is not None:
                alphas[l] = m_.alpha
        betas = (1 - alphas).astype(dt)
    elif isinstance(layers[0], LSTM):
        CP = _layer_list([r["c"] for r in rows])
        CN = _layer_list([r["c2"] for r in rows])
    PRE = _layer_list([r["pre"] for r in rows]) if not elman else None

    def part(i: int) -> tuple[float, int]:
        r0, r1 = ranges[i]
        if reuse is not None:
            got = K.omega_parts(*reuse, V, int(np.prod(lead, dtype=np.int64)), squared, True,
                                float(threshold), m, R, Gs[i], r0, r1)
            if got[1] >= 0:
                return got
        if elman:
            return K.stacked_elman_omega(Ws, WTs, Us, UTs, HK, AR, FPR, acts, forms, leaky, alphas, betas, V,
                                         squared, exact, float(threshold), m, R, Gs[i], r0, r1)
        if isinstance(layers[0], LSTM):
            return K.stacked_lstm_omega(Ws, WTs, Us, UTs, HK, CP, CN, PRE, V, squared, exact, float(threshold),
                                        m, R, Gs[i], r0, r1)
        return K.stacked_gru_omega(Ws, WTs, Us, UTs, HK, PRE, V, squared, exact, float(threshold), m, R,
                                   Gs[i], r0, r1)

    with own_threads(k) if k > 1 else blas_threads_for(N * G_rows * n * L):
        parts = run_parallel([partial(part, i) for i in range(len(ranges))])
    count = sum(c for _, c in parts)
    total = sum(t for t, _ in parts)
    scale = 1.0 / count if count else 0.0
    G = Gs[0]
    for Gi in Gs[1:]:
        G += Gi
    G *= scale
    grads = {f"{rec}_l{l}": G[l] for l in range(L)}
    shape = (T, *lead)
    return float(total * scale), grads, R.reshape(shape), m.reshape(shape).astype(bool), int(count)


def omega(
    model: Any,
    trace: Any,
    flow: Any,
    *,
    variant: str = "squared",
    threshold: float = DEFAULT_THRESHOLD,
    hold_fprime: bool = False,
    path: str = "state",
) -> OmegaResult:
    r"""Pascanu's regularizer Ω and its gradient w.r.t. ``W_hh`` with the flow held fixed.

    .. math::

        \Omega = \frac{1}{|K|}\sum_{(k,b)\in K}
        \left(\frac{\lVert J_{k+1}^{\top} v_{k+1}\rVert^2}{\lVert v_{k+1}\rVert^2} - 1\right)^2,
        \qquad v_{k+1} = \frac{\partial E}{\partial h_{k+1}},\quad
        K = \{(k, b) : \lVert v_{k+1}\rVert^2 \ge \text{threshold}\}

    (``variant="norm"``: the ratio of norms instead of squared norms). The
    gradient is ``∂Ω/∂W_hh`` with every ``v_{k+1}``, ``h_k`` and input term held
    fixed (the set ``K`` too); for the standard form it includes the ``f″``
    term from ``a_{k+1} = W_hh h_k + …`` unless ``hold_fprime``. For the
    ``"norm"`` variant at a term with ``J_{k+1}ᵀ v = 0`` (where ``Ω_k`` is not
    differentiable) that term contributes 0 to the gradient.

    Cost: two to four matrix products ``(T·B × n)·(n × n)`` (no recurrence),
    about a gradient computation's worth of arithmetic, run at BLAS speed.

    **LSTM and GRU.** ``J_{k+1}`` is the step Jacobian of the *whole state*
    ``s`` (LSTM ``s = (h, c)``, ``2n`` entries; GRU ``s = h``) and
    ``v_{k+1} = ∂E/∂s_{k+1}`` in the whole-state sense (``h`` and ``c`` of a
    step independent coordinates). For the GRU that is ``flow[k+1]``. For the
    LSTM, ``v = (flow[k+1], flow_c[k+1] − flow[k+1] ⊙ o_{k+1} ⊙ tanh′(c_{k+1}))``:
    the cell's ``flow_c[j]`` counts the path ``c_j → h_j = o_j ⊙ tanh(c_j)``
    too, and the whole-state derivative at ``c_j`` is what reaches it through
    ``c_{j+1} = σ(a_f) ⊙ c_j + …`` only (under full BPTT
    ``σ(a_f^{(j+1)}) ⊙ flow_c[j+1]``, and 0 at ``j = T``). The difference
    loses at most a rounding of ``flow[j]``'s size, which moves each ratio by
    ``O(ε)`` of ``‖v‖``. ``path="h"`` takes Ω on the ``h``-to-``h`` block
    ``∂h_{k+1}/∂h_k`` with ``v = flow[k+1]`` instead. The gradient is with
    respect to every gate block of ``weight_hh`` (``result.grads()`` is
    ``{"weight_hh": …}``) with the flow, the previous state ``(h_k, c_k)`` and
    the input terms ``weight_ih x + bias_ih + bias_hh`` (the GRU's ``b_hn``
    too) held fixed; the gate values and derivatives follow ``weight_hh``
    through the pre-activations ``weight_hh h_k + …`` (second derivatives of
    σ and tanh, and ``c_{k+1}``'s dependence for the LSTM) unless
    ``hold_fprime``, which holds them fixed too (the gradient is then that of
    ``weight_hh`` where it multiplies the back-propagated gate signal, as
    Pascanu et al.'s code does for the Elman RNN's ``f′``). Cost: two to four
    ``(T·B × G·n)·(G·n × n)`` products and element-wise passes.

    **Stacked models.** For a :class:`~rnntheory.StackedRNN` of ``L`` layers,
    ``J_{k+1}`` is the step Jacobian of the whole state ``s = (s¹, …, s^L)``
    (layer 1 first, LSTM layers ``h`` then ``c``) and ``v_{k+1}`` is
    ``grads.flow[k+1]`` of :meth:`StackedRNN.value_and_grad`. ``J`` is block
    lower-triangular: block row ``l`` is ``A^l`` (the layer's own step
    Jacobian) on the diagonal and ``X^l E_h`` (its input Jacobian times the
    rows of ``h`` in layer ``l−1``'s state) times block row ``l−1`` left of it.
    So ``u = Jᵀ v`` is formed top-down, one layer at a time:
    ``w^L = v^L``; ``u^l = A^lᵀ w^l``; ``w^{l−1} = v^{l−1} + E_hᵀ X^lᵀ w^l``
    (``w^l = ∂(vᵀ s_{k+1})/∂s^l_{k+1}`` with the layers above run through).
    The gradient with respect to every layer's recurrent matrix
    (``"W_hh_l<l>"`` / ``"weight_hh_l<l>"``, ``result.grads()``) holds the
    flow, every layer's previous state ``s^l_k`` and every layer's input
    (layer 1's ``x``, layer ``l``'s recorded ``h^{l−1}_{k+1}``) fixed, so
    ``W^l`` moves only ``A^l`` and ``X^l``, through layer ``l``'s
    pre-activations ``W^l h^l_k + …`` (its gates or ``f′(a)``); the
    cross-layer block ``X^{l+1}`` reads layer ``l+1``'s input weights and
    gates, not ``W^l``. With ``ḡ = ∂Ω/∂u`` and ``ω = J ḡ`` formed bottom-up
    (``ω^l = A^l ḡ^l + X^l E_h ω^{l−1}``), ``∂Ω/∂W^l`` is the derivative of
    ``∂(w^lᵀ F^l)/∂W^l = δ^l ⊗ p^l`` (the signal at ``W^l``'s rows times what
    ``W^l`` multiplies) along the tangent ``(ḡ^l, E_h ω^{l−1})`` of
    ``(s^l_k, x^l_{k+1})``, by forward-mode differentiation of each layer's
    step; the second derivatives of the gates (and ``f″``) enter as for one
    layer, and ``hold_fprime`` drops them (``δ^l`` held, the term
    ``δ^l ⊗ ṗ^l`` kept; no tangent pass is run then). Only ``path="state"``.
    Cost: a Numba kernel per cell class over blocks of terms, in the model's
    dtype (norms in float64): every layer's gates (or ``f′``, read from the
    trace where ``value_and_grad(keep_trace=...)`` kept it) evaluated once, then
    per layer one ``(T·B × G·n)·(G·n × n)`` product for ``u^l``, one for
    ``X^lᵀ w^l`` (layers above the first) and one for the gradient (two more
    for the tangent pass).

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        Any Elman form (standard, Pascanu's, leaky), float32 or float64; a
        stack of such layers.
    trace : Trace, GatedTrace or StackedTrace
        ``model.forward(x)`` (or ``value_and_grad(..., keep_trace=True).trace``):
        Elman ``h (T+1, [B,] n)`` and ``a (T, [B,] n)``; gated ``h``, ``pre``
        and, for the LSTM, ``c``.
    flow : array ``(T+1, [B,] n)``, or a gradient record
        ``∂E/∂h_k`` for ``k = 0..T``: ``grads.flow`` from
        ``model.value_and_grad(x, y)`` on the same inputs, or that gradient
        record itself (an Elman RNN's or GRU's). For the LSTM (with
        ``path="state"``) the gradient record or the pair
        ``(grads.flow, grads.flow_c)``; for a stack its ``StackedGrads`` or
        ``grads.flow`` ``(T+1, [B,] S)``. Given the record of
        ``value_and_grad(keep_trace="scratch")`` under full BPTT with its own
        ``trace`` and ``hold_fprime``, Ω reads ``u = J_{k+1}ᵀ v_{k+1}`` from
        that BPTT pass instead of recomputing it (an Elman RNN of the standard
        form, LSTM, GRU, stacks of gated cells; the same result to rounding). Its scale does not
        matter (only through ``threshold``): each ``v_{k+1}`` is rescaled by a
        power of two (exactly) before anything is squared, so flows of 1e-300
        and 1e300 give the same Ω and gradient as the flow itself, and the
        threshold is compared with the unscaled ``‖v_{k+1}‖²`` without
        forming it.
    variant : {"squared", "norm"}
        Ratio of squared norms (Pascanu et al.'s Eq. 10 and code) or of norms (Eq. 9).
    threshold : float
        Terms with ``‖v_{k+1}‖² < threshold`` are left out (Pascanu et al.'s
        ``bound = 1e-20``); ``0`` counts every term with a nonzero ``v``
        (a term with ``v = 0`` never counts: its ratio is 0/0).
    hold_fprime : bool
        Hold ``f′(a_{k+1})`` fixed as well (standard form; Pascanu et al.'s code).
        No effect for Pascanu's form, whose ``f′(h_k)`` does not involve ``W_hh``.
        For the LSTM and GRU: hold every gate value and derivative fixed.
    path : {"state", "h"}
        LSTM: Ω on the whole state ``(h, c)`` (default) or on the ``h``-to-``h``
        path. For the Elman RNN and the GRU the state is ``h`` and both mean the same.

    Returns
    -------
    OmegaResult
        ``value``, ``W_hh`` (the gradient, model dtype), per-term ``ratio`` and
        ``counted``, ``count``.

    Raises
    ------
    TypeError
        If ``model`` is not an :class:`~rnntheory.ElmanRNN`,
        :class:`~rnntheory.LSTM`, :class:`~rnntheory.GRU` or
        :class:`~rnntheory.StackedRNN`, ``trace`` not a
        trace, or ``flow`` not a float array (an LSTM's without ``flow_c``
        for ``path="state"``).
    ValueError
        If ``flow`` or the trace does not match the model or each other in
        shape, holds NaN/inf, or ``variant``/``threshold`` is invalid.

    Examples
    --------
    An orthogonal ``W_hh`` with linear units preserves every norm, so Ω = 0:

    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> from rnntheory.remedies import omega
    >>> Q = np.array([[0.6, -0.8], [0.8, 0.6]])
    >>> m = ElmanRNN(Q, np.ones((2, 1)), np.zeros(2), np.ones((1, 2)), activation="identity")
    >>> x, y = np.ones((4, 1)), np.zeros((4, 1))
    >>> _, g = m.value_and_grad(x, y, loss="mse")
    >>> res = omega(m, m.forward(x), g.flow)
    >>> round(res.value, 14), res.count, bool(np.all(np.abs(res.W_hh) < 1e-14))
    (0.0, 4, True)

    Doubling ``W_hh`` quadruples every squared norm, ``(4 − 1)² = 9``:

    >>> m2 = m.replace(W_hh=2 * Q)
    >>> _, g2 = m2.value_and_grad(x, y, loss="mse")
    >>> round(omega(m2, m2.forward(x), g2.flow).value, 12)
    9.0

    For an LSTM, Ω of the whole state from its gradient record:

    >>> from rnntheory import LSTM
    >>> lstm = LSTM.init(1, 3, 1, seed=0)
    >>> _, gl = lstm.value_and_grad(x, y, loss="mse", keep_trace=True)
    >>> res = omega(lstm, gl.trace, gl)
    >>> res.W_hh.shape, list(res.grads()), res.count
    ((12, 3), ['weight_hh'], 4)

    Eqs. 15–16 of the article; Pascanu et al. 2013, Eqs. 9–10.
    """
    model = _check_any_model(model)
    variant = check_choice("variant", variant, VARIANTS)
    threshold = check_real("threshold", threshold, low=0.0)
    if not isinstance(hold_fprime, bool | np.bool_):
        raise TypeError(f"`hold_fprime` must be a bool, got {show_value(hold_fprime)}")
    path = check_choice("path", path, PATHS)
    if isinstance(model, StackedRNN):
        if path != "state":
            raise ValueError(f"`path` must be 'state' for a StackedRNN (Ω of the whole state), got {path!r}")
        # weights whose step Jacobian passes float64's range give Ω = inf (as the cells' kernels do)
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            value, lg, R, counted, count = _compute_stacked(model, trace, flow, variant, threshold, bool(hold_fprime))
        first = next(iter(lg))
        kind = "fixed flow and gates" if hold_fprime else "fixed flow"
        return OmegaResult(value, lg[first], R, counted, count, variant, kind, first, lg)
    mode = K.GRAD_FIXED_FPRIME if hold_fprime else K.GRAD_FIXED_FLOW
    if not isinstance(model, ElmanRNN):
        value, G, R, counted, count = _compute_gated(model, trace, flow, path, variant, threshold, mode)
        kind = "fixed flow and gates" if hold_fprime else "fixed flow"
        return OmegaResult(value, G, R, counted, count, variant, kind, "weight_hh")
    value, G, R, counted, count = _compute(model, trace, flow, variant, threshold, mode)
    kind = "fixed flow and f′" if hold_fprime and model.form == "standard" else "fixed flow"
    return OmegaResult(value, G, R, counted, count, variant, kind)


def _as_float64(model: ElmanRNN) -> ElmanRNN:
    if model.dtype == np.float64:
        return model
    p: dict[str, Any] = {k: v.astype(np.float64) for k, v in model.params().items() if k != "alpha"}
    alpha = None if model.alpha is None else model.alpha.astype(np.float64)
    return model.replace(**p, alpha=alpha)


# Smallest relative step of omega_full_gradient, 2⁻⁵² (float64's machine
# epsilon): ε_ij = eps · max(1, |W_ij|) is then at least one unit in the last
# place of W_ij, so W_ij + ε_ij and W_ij − ε_ij are distinct float64 numbers
# and the central difference has a non-zero denominator.
_MIN_EPS = float(np.finfo(np.float64).eps)


def omega_full_gradient(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: str = "xent",
    mask: Any = None,
    h0: Any = None,
    variant: str = "squared",
    threshold: float = DEFAULT_THRESHOLD,
    eps: float = 6e-6,
) -> OmegaResult:
    r"""Ω and its *full* derivative w.r.t. ``W_hh``: through the states and the flow.

    Ω is recomputed from scratch (forward pass, BPTT for the flow, Ω) at
    ``W_hh ± ε_{ij} e_i e_jᵀ`` for every entry, in float64, and

    .. math::

        \frac{d\Omega}{dW_{ij}} \approx
        \frac{\Omega(W + \varepsilon_{ij} E_{ij}) - \Omega(W - \varepsilon_{ij} E_{ij})}{2\varepsilon_{ij}},
        \qquad \varepsilon_{ij} = \text{eps}\cdot\max(1, |W_{ij}|),

    with the set of counted terms held at that of ``W`` (so the threshold does
    not make Ω jump). Central differences: error ``O(ε²)`` plus rounding
    ``O(macheps/ε)``, about ``1e-9`` relative with the default ``eps``. Cost:
    ``2n²`` forward-and-BPTT passes, so for small models (and for comparing
    with the fixed-flow gradient of :func:`omega`, which is what Pascanu et al.
    train with); a float32 model is evaluated in float64.

    Parameters
    ----------
    model : ElmanRNN
    x, y, loss, mask, h0
        As for :meth:`ElmanRNN.value_and_grad`.
    variant : {"squared", "norm"}
    threshold : float
    eps : float
        Relative step, at least ``2⁻⁵² ≈ 2.2e-16`` (float64's machine epsilon):
        a smaller ``ε_ij`` need not move ``W_ij`` in float64 at all (the
        difference quotient would be ``0/0``).

    Returns
    -------
    OmegaResult
        ``W_hh`` is the full derivative (model dtype); ``gradient`` says so.

    Raises
    ------
    TypeError, ValueError
        As for :func:`omega` and :meth:`ElmanRNN.value_and_grad`; for ``eps``
        below ``2⁻⁵²``, or when Ω is not finite at a
        perturbed ``W_hh`` (the message names ``eps``).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> from rnntheory.remedies import omega, omega_full_gradient
    >>> m = ElmanRNN.init(1, 3, 1, scheme="gaussian", scale=1.2, seed=0)
    >>> x, y = np.linspace(-1, 1, 6)[:, None], np.zeros((6, 1))
    >>> full = omega_full_gradient(m, x, y, loss="mse")
    >>> _, g = m.value_and_grad(x, y, loss="mse")
    >>> fixed = omega(m, m.forward(x), g.flow)
    >>> abs(full.value - fixed.value) < 1e-12, full.gradient
    (True, 'full (central differences)')

    Eqs. 15–16 of the article; Pascanu et al. 2013, Eq. 10 (whose gradient is
    the fixed-flow one).
    """
    model = _check_model(model)
    variant = check_choice("variant", variant, VARIANTS)
    threshold = check_real("threshold", threshold, low=0.0)
    eps = check_real("eps", eps, low=_MIN_EPS)
    m64 = _as_float64(model)

    def evaluate(m: ElmanRNN, fixed: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray, int]:
        _, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
        value, _, R, counted, count = _compute(
            m, m.forward(x, h0), g.flow, variant, threshold, K.GRAD_NONE, fixed
        )
        return value, R, counted, count

    value, R, counted, count = evaluate(m64, None)
    W = m64.W_hh
    n = W.shape[0]
    G = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e = eps * max(1.0, abs(float(W[i, j])))
            Wp, Wm = W.copy(), W.copy()
            Wp[i, j] += e
            Wm[i, j] -= e
            fp = evaluate(m64.replace(W_hh=Wp), counted)[0]
            fm = evaluate(m64.replace(W_hh=Wm), counted)[0]
            G[i, j] = (fp - fm) / (Wp[i, j] - Wm[i, j])
    if not np.all(np.isfinite(G)):
        raise ValueError(
            f"`model`: Ω is not finite at W_hh ± ε_ij (`eps` = {eps:g}); no full gradient"
        )
    return OmegaResult(value, G.astype(model.dtype), R, counted, count, variant,
                       "full (central differences)")
