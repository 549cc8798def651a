"""Step Jacobians, their products and norms in log space (Eqs. 7–9, 12).

Conventions: numerator layout, ``J[a, b] = ∂h_t[a]/∂h_k[b]``; products are
ordered ``J_t J_{t−1} ⋯ J_{k+1}`` and ``∂h_t/∂h_t = I``. Entry ``i−1`` of
:func:`step_jacobians` is ``J_i = ∂h_i/∂h_{i−1}``:

* standard form: ``J_i = diag(f′(a_i)) W_hh``;
* Pascanu's form: ``J_i = W_hh diag(f′(h_{i−1}))``;
* leaky (Eq. 14): ``J_i = diag(α) + diag(1 − α) J̃_i`` with ``J̃_i`` the
  Jacobian of the non-leaky update above.

Everything is computed in float64, whatever the model's dtype: the Jacobian
is that of the recorded trajectory, evaluated exactly from its stored values.
Natural logs throughout.

Traces that overflowed
----------------------
A forward pass can leave NaN or inf in a trace (huge weights with the
identity or ReLU, inputs near the float64 limit). Step ``i`` *cannot be
evaluated* when ``h_{i−1}``, ``h_i`` (and ``c_{i−1}``, ``c_i`` for the LSTM)
or the step's arguments (``a_i``, or the gate pre-activations) are not all
finite: the formulas above would give numbers there (``tanh′(±inf) = 0``,
the identity's ``J = W``), but they are not the Jacobian of any computation
the model did. Every function here says so instead of returning such numbers:
:func:`step_jacobians` fills those steps with NaN, products, :func:`log_norms`
and :func:`log_norm_profile` are NaN exactly on the pairs ``(t, k)`` whose
stretch ``k < i ≤ t`` contains one (pairs before or after it are unaffected),
and :func:`lyapunov_spectrum`, which needs every step, raises a
``ValueError`` that names the first such step.

Stacked models
--------------
The state of a :class:`~rnntheory.StackedRNN` of ``L`` layers is
``s = (s¹, …, s^L)``, layer 1 first, each layer in its cell's order (LSTM:
``h`` then ``c``), ``S = model.state_size`` entries. Layer ``l`` at step ``t``
reads its own ``s^l_{t−1}`` and layer ``l−1``'s hidden state *at the same step*,
``x^l_t = E_h s^{l−1}_t`` (``E_h`` keeps the ``h`` rows). With ``A^l_t`` the
layer's own step Jacobian and ``X^l_t = ∂s^l_t/∂x^l_t`` its input Jacobian
(:func:`input_jacobians`), the chain rule gives block row ``l`` of
``J_t = ∂s_t/∂s_{t−1}``: ``A^l_t`` on the diagonal and ``X^l_t E_h`` (block row
``l−1``) left of it, so ``J_t`` is *block lower-triangular*; in closed form
``J_t = (I − S_t)^{-1} D_t`` with ``D_t = blockdiag(A^l_t)`` and ``S_t`` the
nilpotent matrix of the blocks ``S_t[l, l−1] = X^l_t E_h``. Every function of
this module then works on the whole state unchanged.

What it implies (proved): a product of block lower-triangular matrices is
block lower-triangular with the products of the diagonal blocks on its
diagonal, so block ``(l, l)`` of ``∂s_t/∂s_k`` is ``A^l_t ⋯ A^l_{k+1}``, layer
``l``'s own product, its recurrence with its input held fixed
(:func:`layer_traces`). The norm of a matrix is at least that of any block, so
``‖∂s_t/∂s_k‖ ≥ max_l ‖A^l_t ⋯ A^l_{k+1}‖``: the whole state's gradient never
vanishes faster than the slowest layer's own. What is not proved here: that
the top Lyapunov exponent of the stack *equals* the largest of the diagonal
blocks' (for stationary ergodic block-triangular cocycles with log-integrable
blocks the Lyapunov spectrum is the union of the diagonal blocks' spectra, a
limit statement; for a finite trajectory the finite-time exponents of
:func:`lyapunov_spectrum` can differ, and the cross-layer blocks can add a
factor polynomial in ``t − k``). :mod:`rnntheory.bounds` bounds it from
above, by the largest per-layer rate for Elman stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from . import _gated_jacobians as GJ
from . import _jacobian_kernels as JK
from . import _stack_jacobians as SJ
from ._parallel import blas_threads_for, run_parallel, threads_for
from ._traces import (
    AnyTrace,
    Model,
    check_model_trace,
    finite_or_zero,
    nonfinite_steps,
    single_trace,
)
from ._validation import as_float_array, check_int, check_seed, read_only
from .cells.bidirectional import BidirectionalRNN, BidirectionalTrace
from .cells.custom import CustomRNN
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GRU, LSTM, GatedTrace
from .cells.stacked import StackedRNN, StackedTrace

__all__ = [
    "ScaledMatrix",
    "block_log_norms",
    "input_jacobians",
    "layer_traces",
    "log_norm_profile",
    "log_norm_profile_from_jacobians",
    "log_norm_reach",
    "log_norm_reach_from_jacobians",
    "log_norms",
    "log_norms_from_jacobians",
    "lyapunov_spectrum",
    "product",
    "product_factors",
    "step_jacobians",
]

# Largest (T+1)² matrix log_norms will allocate (8 bytes an entry: 400 MB).
_MAX_PAIRS = 50_000_000


def _nonfinite_message(bad: np.ndarray, what: str) -> str:
    """The ``ValueError`` text for a function that needs every step finite."""
    first = int(np.argmax(bad)) + 1
    fix = (
        f"use the first {first - 1} steps, model.forward(x[:{first - 1}])"
        if first > 1
        else "the first step already overflows: scale the weights or the inputs down"
    )
    return (
        f"`trace` has non-finite values from step {first} on ({int(bad.sum())} of "
        f"{bad.size} steps have NaN or inf in h, c or the arguments of the step: the "
        f"forward pass overflowed); {what} needs every step finite: {fix}"
    )


def step_jacobians(model: Model, trace: AnyTrace, *, block: str = "full") -> np.ndarray:
    """All step Jacobians of a trajectory.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU, StackedRNN or CustomRNN
        The model that produced ``trace`` (a
        :class:`~rnntheory.cells.CustomRNN`: a cell written as a SymPy
        expression, its Jacobians from SymPy's derivative; so for every
        function of this module).
    trace : Trace, GatedTrace, StackedTrace or CustomTrace
        A single-sequence trace from ``model.forward``.
    block : {"full", "c"}
        LSTM only: ``"full"`` gives the ``2n × 2n`` Jacobians of the whole state
        ``(h, c)`` (``h`` first); ``"c"`` gives the ``n × n`` direct path
        ``∂c_t/∂c_{t−1}|direct = diag(f_t)`` (the constant error carousel).

    Returns
    -------
    ndarray, shape ``(T, n, n)`` (``(T, 2n, 2n)`` for the full LSTM state), float64
        Entry ``i−1`` is ``∂s_i/∂s_{i−1}`` (numerator layout). It is NaN (every
        entry) when step ``i`` cannot be evaluated: ``h_{i−1}``, ``h_i`` (and
        ``c`` for the LSTM) or the step's arguments are not finite because the
        forward pass overflowed (see the module docstring). For a
        :class:`~rnntheory.StackedRNN`, ``(T, S, S)`` with ``S =
        model.state_size``: the Jacobians of the whole state, block
        lower-triangular across layers (see "Stacked models" in the module
        docstring), NaN at a step that cannot be evaluated in some layer. A
        cross block is a product of several layers' matrices: where its true
        entries exceed float64 (weights of 1e300 in two layers) they are
        ``±inf`` here, while :func:`product`, :func:`log_norms`,
        :func:`log_norm_profile` and :func:`lyapunov_spectrum` multiply the
        layers' own factors instead (:func:`product_factors`) and stay finite.

    Raises
    ------
    ValueError
        If ``trace`` holds a batch (select one sequence with
        ``trace.sequence(b)``), or its fields do not have the shapes a forward
        pass gives them (``h`` ``(T+1, n)``, ``a`` ``(T, n)``; ``c`` like ``h``
        and ``pre`` ``(T, 4n)`` for the gated cells); the same for every
        function of this module that takes a trace.
    TypeError
        If ``trace`` is not a trace or a field is not a real float32/float64
        array (complex values are refused, never cast to their real part).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, jacobians
    >>> m = ElmanRNN.init(1, 3, None, scheme="gaussian", seed=1)
    >>> tr = m.forward(np.zeros((4, 1)))
    >>> jacobians.step_jacobians(m, tr).shape
    (4, 3, 3)

    Eq. 9 of the article (with the corrected evaluation point and order).
    """
    trace = single_trace(trace, "step_jacobians")
    check_model_trace(model, trace)
    if block not in ("full", "c") or (block == "c" and not isinstance(model, LSTM)):
        raise ValueError(f"`block` must be 'full' (or 'c' for an LSTM), got {block!r}")
    bad = nonfinite_steps(trace)
    if isinstance(model, StackedRNN):
        assert isinstance(trace, StackedTrace)
        A, X = _stack_parts(model, trace, bool(bad.any()))
        with np.errstate(over="ignore", invalid="ignore"):  # cross blocks beyond float64: inf
            J = SJ.stack_step_jacobians(A, X, model.n_hidden)
    else:
        J = _step_jacobians(model, trace, block, bool(bad.any()))
    J[bad] = np.nan
    return J


def _step_jacobians(model: Model, trace: AnyTrace, block: str, clean: bool) -> np.ndarray:
    """The step Jacobians from the trace's values (NaN/inf first set to 0 when ``clean``)."""

    def fix(x: Any) -> np.ndarray:
        return finite_or_zero(x) if clean else x

    if isinstance(model, CustomRNN):  # from its SymPy Jacobian; the caller marks the bad steps NaN
        return model.step_jacobians(_custom_trace(trace, fix))
    if isinstance(model, LSTM):
        assert isinstance(trace, GatedTrace) and trace.c is not None
        return GJ.lstm_step_jacobians(model.weight_hh, fix(trace.c), fix(trace.pre), block)
    if isinstance(model, GRU):
        assert isinstance(trace, GatedTrace)
        return GJ.gru_step_jacobians(model.weight_hh, fix(trace.h), fix(trace.pre))
    assert isinstance(trace, Trace) and isinstance(model, ElmanRNN)
    W = np.asarray(model.W_hh, dtype=np.float64)
    fp = model.activation.fprime(np.asarray(fix(trace.a), dtype=np.float64))  # (T, n)
    if model.form == "standard":
        J = fp[:, :, None] * W[None, :, :]
    else:
        J = W[None, :, :] * fp[:, None, :]
    if model.alpha is not None:
        alpha = np.asarray(model.alpha, dtype=np.float64)
        J = (1.0 - alpha)[None, :, None] * J
        idx = np.arange(model.n_hidden)
        J[:, idx, idx] += alpha[None, :]
    return np.ascontiguousarray(J)


def _custom_trace(trace: Any, fix: Any) -> Any:
    """A custom model's trace with ``fix`` applied to its states and inputs."""
    return replace(trace, h=fix(trace.h), x=fix(trace.x))


def _input_jacobians(model: Model, trace: AnyTrace, clean: bool) -> np.ndarray:
    """``(T, s, n_in)`` input Jacobians ``∂s_t/∂x_t`` of one cell from its trace
    (NaN/inf first set to 0 when ``clean``; see :mod:`rnntheory._stack_jacobians`)."""

    def fix(x: Any) -> np.ndarray:
        return finite_or_zero(x) if clean else np.asarray(x, np.float64)

    if isinstance(model, CustomRNN):
        return model.input_jacobians(_custom_trace(trace, fix))
    if isinstance(model, LSTM):
        assert isinstance(trace, GatedTrace) and trace.c is not None
        return SJ.lstm_input_jacobians(model.weight_ih, fix(trace.c), fix(trace.pre))
    if isinstance(model, GRU):
        assert isinstance(trace, GatedTrace)
        return SJ.gru_input_jacobians(model.weight_ih, fix(trace.h), fix(trace.pre))
    assert isinstance(trace, Trace) and isinstance(model, ElmanRNN)
    fp = model.activation.fprime(fix(trace.a))
    return SJ.elman_input_jacobians(model.W_hx, fp, model.form, model.alpha)


def input_jacobians(model: Model, trace: AnyTrace) -> np.ndarray:
    """The input Jacobians ``∂s_t/∂x_t`` of every step of a trajectory.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        The model that produced ``trace``.
    trace : Trace, GatedTrace or StackedTrace
        A single-sequence trace from ``model.forward``.

    Returns
    -------
    ndarray, shape ``(T, S, n_in)``, float64
        Entry ``t−1`` is ``∂s_t/∂x_t`` (numerator layout) with the state ``s``
        of :func:`step_jacobians`: Elman ``diag(f′(a_t)) W_hx`` (standard form),
        ``W_hx`` (Pascanu's form), times ``diag(1 − α)`` for leaky units; the
        LSTM's ``(2n × n_in)`` for ``(h, c)``; the GRU's, in which the reset
        gate multiplies only ``W_hn h + b_hn`` (see
        :mod:`rnntheory._stack_jacobians`). For a stack, the whole state's:
        block ``l`` is ``X^l_t E_h`` (block ``l−1``), ``X^1_t`` at the bottom.
        NaN (every entry) at a step that cannot be evaluated.

    Raises
    ------
    ValueError, TypeError
        As :func:`step_jacobians`.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, jacobians
    >>> m = ElmanRNN(np.zeros((2, 2)), np.eye(2), np.zeros(2), activation="identity", form="pascanu")
    >>> jacobians.input_jacobians(m, m.forward(np.ones((3, 2))))[2]
    array([[1., 0.],
           [0., 1.]])
    """
    trace = single_trace(trace, "input_jacobians")
    check_model_trace(model, trace)
    bad = nonfinite_steps(trace)
    clean = bool(bad.any())
    if isinstance(model, StackedRNN):
        assert isinstance(trace, StackedTrace)
        blocks = [_input_jacobians(model.layers[0], trace.layers[0], clean)]
        n = model.n_hidden
        for m, tr in zip(model.layers[1:], trace.layers[1:], strict=True):
            blocks.append(np.matmul(_input_jacobians(m, tr, clean), blocks[-1][:, :n]))
        X = np.concatenate(blocks, axis=1)
    else:
        X = _input_jacobians(model, trace, clean)
    X[bad] = np.nan
    return X


def layer_traces(model: Model, trace: AnyTrace) -> list[tuple[str, Any, Any]]:
    """Every recurrence of a model with its own trace, its input held fixed.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN
    trace : its trace from ``model.forward`` (single sequence or batch)

    Returns
    -------
    list of (str, model, trace)
        ``(label, layer_model, layer_trace)`` per recurrence: a plain cell gives
        ``[("layer 1", model, trace)]``; a stack ``("layer l", layers[l−1],
        trace.layers[l−1])`` for ``l = 1..L``, each layer's trace reading the
        recorded hidden states of the layer below as its (fixed) input; a
        bidirectional model ``("layer l (forward)", …)`` and ``("layer l
        (backward)", …)``, the backward cell's trace in its own time (its step
        ``t`` read ``x_{T+1−t}``). Each entry is a plain cell and its trace, so
        every function of this module and of :mod:`rnntheory.bounds` applies to
        it: the result describes that layer's recurrence alone, not how a
        perturbation of it travels through the layers above (that is the whole
        state's :func:`step_jacobians`).

    Raises
    ------
    TypeError
        If ``model`` is not one of the models above, or ``trace`` was not made
        by it.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import StackedRNN, jacobians
    >>> m = StackedRNN.init(2, 3, None, cell="gru", n_layers=2, seed=0)
    >>> [label for label, _, _ in jacobians.layer_traces(m, m.forward(np.zeros((4, 2))))]
    ['layer 1', 'layer 2']
    """
    if isinstance(model, StackedRNN):
        if not isinstance(trace, StackedTrace) or not isinstance(trace.layers, tuple | list) \
                or len(trace.layers) != model.n_layers:
            raise TypeError(f"`trace` ({type(trace).__name__}) was not made by a StackedRNN of {model.n_layers} layers")
        return [(f"layer {l + 1}", m, tr) for l, (m, tr) in enumerate(zip(model.layers, trace.layers, strict=True))]
    if isinstance(model, BidirectionalRNN):
        if not isinstance(trace, BidirectionalTrace) or not isinstance(trace.layers, tuple | list) \
                or len(trace.layers) != model.n_layers:
            raise TypeError(
                f"`trace` ({type(trace).__name__}) was not made by a BidirectionalRNN of "
                f"{model.n_layers} layers"
            )
        return [
            (f"layer {l + 1} ({direction})", cell, tr)
            for l, (cells, trs) in enumerate(zip(model.layers, trace.layers, strict=True))
            for direction, cell, tr in zip(("forward", "backward"), cells, trs, strict=True)
        ]
    if isinstance(model, CustomRNN):
        check_model_trace(model, trace)
        return [("layer 1", model, trace)]
    if isinstance(model, ElmanRNN | LSTM | GRU):
        if not isinstance(trace, Trace | GatedTrace):
            raise TypeError(f"`trace` ({type(trace).__name__}) was not made by a {type(model).__name__}")
        return [("layer 1", model, trace)]
    raise TypeError(
        f"`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN, got {type(model).__name__}"
    )


def _stack_step_jacobians(layers: Sequence[Model], traces: Sequence[AnyTrace], clean: bool) -> np.ndarray:
    """The ``(T, S, S)`` step Jacobians of a stack from its layers and their traces."""
    A, X = _layer_parts(layers, traces, clean)
    return SJ.stack_step_jacobians(A, X, layers[0].n_hidden)


def _layer_parts(
    layers: Sequence[Model], traces: Sequence[AnyTrace], clean: bool
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Each layer's own step Jacobians ``A^l`` and input Jacobians ``X^l`` (``X^1`` unused)."""
    A = [_step_jacobians(m, tr, "full", clean) for m, tr in zip(layers, traces, strict=True)]
    X: list[np.ndarray | None] = [None]
    X += [_input_jacobians(m, tr, clean) for m, tr in zip(layers[1:], traces[1:], strict=True)]
    return A, X


def _stack_parts(model: Any, trace: Any, clean: bool) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    return _layer_parts(model.layers, trace.layers, clean)


# the assembled step Jacobians of a stack are used for products while their
# entries stay below 2^1000; beyond, the products run over the layer factors
_ASSEMBLED_MAX = 2.0**1000


def product_factors(model: Model, trace: AnyTrace) -> tuple[np.ndarray, int]:
    """The factors whose ordered products are ``∂s_t/∂s_k``, and how many make one step.

    Parameters
    ----------
    model, trace
        As in :func:`step_jacobians`.

    Returns
    -------
    factors : ndarray, shape ``(T·per, S, S)``, float64
        For a single cell, the step Jacobians (``per = 1``). For a stack, its
        assembled step Jacobians while their entries stay below ``2^1000``;
        otherwise (weights near 1e300 in several layers, whose cross blocks
        are products of several weights and exceed float64) the ``L`` layer
        factors of each step, ``J_t = M^L_t ⋯ M^1_t``, ``M^l_t`` the identity
        but for block row ``l`` (``X^l_t E_h`` left of ``A^l_t``): their entries
        are the layers' own, so nothing overflows. NaN factors at the steps
        that cannot be evaluated.
    per : int
        Factors per step: ``∂s_t/∂s_k`` is the product of factors
        ``k·per … t·per − 1`` (later on the left), so
        ``log_norms_from_jacobians(factors)[::per, ::per]`` is
        :func:`log_norms`.
    """
    trace = single_trace(trace, "product_factors")
    if not isinstance(model, StackedRNN):
        return np.ascontiguousarray(step_jacobians(model, trace), dtype=np.float64), 1
    J = step_jacobians(model, trace)
    bad = nonfinite_steps(trace)
    # the largest |entry| of each step from two reductions (no copy of J: a
    # 2-layer LSTM with h = 64 over 500 steps has 262 MB of step Jacobians)
    with np.errstate(invalid="ignore"):
        top = np.maximum(J.max(axis=(1, 2)), -J.min(axis=(1, 2)))
        fits = bool(np.all(top[~bad] < _ASSEMBLED_MAX))
    if fits:
        return np.ascontiguousarray(J), 1
    A, X = _stack_parts(model, trace, bool(bad.any()))
    F = SJ.stack_factors(A, X, model.n_hidden)
    L = model.n_layers
    F.reshape(trace.T, L, *F.shape[1:])[bad] = np.nan
    return np.ascontiguousarray(F), L


def block_log_norms(model: Model, trace: AnyTrace) -> np.ndarray:
    """``ln ‖J_t[l, m]‖₂`` of every block of a stack's step Jacobians.

    Parameters
    ----------
    model : StackedRNN (or a single cell: one block)
    trace : its single-sequence trace

    Returns
    -------
    ndarray, shape ``(T, L, L)``
        Entry ``[t−1, l, m]`` is the log of the spectral norm of block
        ``(l, m)`` of ``∂s_t/∂s_{t−1}`` (rows: the layer written to, columns:
        the layer read from): ``−inf`` above the diagonal (exactly zero
        blocks), NaN at the steps that cannot be evaluated. Formed from the
        layers' own factors with exact power-of-two rescaling, so finite for
        weights of 1e300, whose cross blocks exceed float64.
    """
    trace = single_trace(trace, "block_log_norms")
    check_model_trace(model, trace)
    bad = nonfinite_steps(trace)
    if isinstance(model, StackedRNN):
        A, X = _stack_parts(model, trace, bool(bad.any()))
        out = SJ.block_log_norms(A, X, model.n_hidden)
    else:
        out = GJ.log_spectral_norms(step_jacobians(model, trace))[:, None, None]
    out[bad] = np.nan
    return out


@dataclass(frozen=True)
class ScaledMatrix:
    """A matrix kept as ``exp(log_scale) · matrix`` so it neither overflows nor underflows.

    Attributes
    ----------
    matrix : ndarray
        The rescaled matrix (largest absolute entry in [1/2, 1): the scaling is
        by a power of two, so it is exact; or all zeros).
    log_scale : float
        Natural log of the scale (``−inf`` for the zero matrix).
    """

    matrix: np.ndarray
    log_scale: float

    def value(self) -> np.ndarray:
        """The matrix itself, ``exp(log_scale) · matrix`` (may overflow to inf)."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            if self.log_scale == -np.inf:
                return np.zeros_like(self.matrix)
            return np.exp(self.log_scale) * self.matrix

    def log_norm(self) -> float:
        """Natural log of the spectral norm (NaN when ``log_scale`` is NaN: a
        product over steps that cannot be evaluated)."""
        if self.log_scale == -np.inf or np.isnan(self.log_scale):
            return float(self.log_scale)
        return float(self.log_scale + np.log(np.linalg.norm(self.matrix, 2)))


def product(
    model: Model, trace: AnyTrace, t: int, k: int, *, scaled: bool = False
) -> np.ndarray | ScaledMatrix:
    """``∂h_t/∂h_k = J_t J_{t−1} ⋯ J_{k+1}`` (Eqs. 7–8); the identity when ``t == k``.

    Parameters
    ----------
    model, trace
        As in :func:`step_jacobians`.
    t, k : int
        Steps with ``0 ≤ k ≤ t ≤ T``.
    scaled : bool
        Return a :class:`ScaledMatrix` (safe for any ``t − k``) instead of the
        plain matrix (which may overflow to inf or underflow to 0).

    Returns
    -------
    ndarray, shape ``(n, n)``, or ScaledMatrix
        All NaN (``log_scale`` NaN) when a step ``k < i ≤ t`` cannot be
        evaluated because the trace is not finite there.
    """
    trace = single_trace(trace, "product")
    T = trace.T
    t = check_int("t", t, minimum=0)
    k = check_int("k", k, minimum=0)
    if t > T:
        raise ValueError(f"`t` must be <= T = {T}, got {t}")
    if k > t:
        raise ValueError(f"`k` must be <= t = {t}, got {k}")
    J, per = product_factors(model, trace)
    J = read_only(J)  # the kernels' one signature (see _jacobian_stack)
    t, k = t * per, k * per
    if np.isnan(J[k:t]).any():
        res = ScaledMatrix(np.full(J.shape[1:], np.nan), float("nan"))
        return res if scaled else res.value()
    with blas_threads_for(0):  # one sequence of small products: one BLAS thread
        Js, logs, mins, shifts = JK.prescale(J)
        P, s = JK.scaled_product(J, Js, logs, mins, shifts, t, k)
    res = ScaledMatrix(P, float(s))
    return res if scaled else res.value()


def _jacobian_stack(J: Any) -> np.ndarray:
    """``J`` as a float64 ``(T, n, n)`` stack (NaN/inf kept; complex refused by name),
    C-contiguous and read-only as the kernels take it: a strided, Fortran-ordered or
    read-only stack would otherwise compile every kernel again for its layout."""
    J = as_float_array("J", J, dtype=np.dtype(np.float64), finite=False)
    if J.ndim != 3 or J.shape[1] != J.shape[2]:
        raise ValueError(f"`J` must have shape (T, n, n), got shape {J.shape}")
    if J.shape[1] == 0:
        raise ValueError(f"`J` must have shape (T, n, n) with n >= 1, got shape {J.shape}")
    return read_only(np.ascontiguousarray(J))


def log_norms_from_jacobians(J: np.ndarray) -> np.ndarray:
    """:func:`log_norms` for a given stack of step Jacobians ``(T, n, n)``.

    A factor with a NaN or inf entry (as :func:`step_jacobians` gives for a
    step that cannot be evaluated) makes exactly the pairs whose product
    contains it NaN. ``J`` is read as float64 (integer entries are exact);
    complex, boolean or non-numeric stacks raise a ``TypeError`` naming ``J``,
    and a shape other than ``(T, n, n)`` with ``n ≥ 1`` a ``ValueError``.
    """
    J = _jacobian_stack(J)
    pairs = (J.shape[0] + 1) ** 2
    if pairs > _MAX_PAIRS:
        raise ValueError(
            f"`log_norms` would allocate {pairs} entries for T = {J.shape[0]}; "
            "use log_norm_profile(model, trace, k) for long sequences"
        )
    T = J.shape[0]
    L = np.empty((T + 1, T + 1))
    # rows are independent: one residue class of rows per thread
    k = threads_for(T + 1, T * T * J.shape[1] ** 3 // 2)
    # BLAS on one thread even for k = 1: two BLAS threads on products of this
    # size made a single row thread 5× slower on a busy machine
    with blas_threads_for(0):
        Js, logs, mins, shifts = JK.prescale(J)
        plan = JK.tile_plan(J, logs, False)
        run_parallel(
            [partial(JK.log_norms_rows, J, Js, logs, mins, shifts, plan, L, r, k) for r in range(k)]
        )
    bad = np.isnan(logs)  # a factor with a NaN or inf entry
    if bad.any():
        # the rows stop at an exactly zero partial product (−inf from there on);
        # a pair over a non-finite factor is NaN all the same (0·NaN)
        n_bad = np.concatenate([[0], np.cumsum(bad)])
        L[(n_bad[:, None] - n_bad[None, :]) > 0] = np.nan
    return L


def log_norms(model: Model, trace: AnyTrace) -> np.ndarray:
    """``ln ‖∂h_t/∂h_k‖₂`` for every pair ``k ≤ t``.

    Returns
    -------
    ndarray, shape ``(T+1, T+1)``
        ``[t, k]`` is the natural log of the spectral norm of ``∂h_t/∂h_k`` for
        ``k ≤ t`` (0 on the diagonal), ``−inf`` above the diagonal. Products are
        accumulated with rescaling (each step Jacobian, and each partial
        product, multiplied by the power of two that brings its largest entry
        into [1/2, 1): exact), so the logs are finite for any
        ``T`` and any growth rate: they are ``−inf`` only for an exactly zero
        product and NaN exactly on the pairs whose stretch ``k < i ≤ t``
        contains a step ``i`` where the trace is not finite (the forward pass
        overflowed; see the module docstring). The
        entries of one product may also span more than float64's range
        (weights of 1e-200 beside weights of 1, units saturated to
        ``f′ ≈ 1e-250``): whenever a float64 step could form a term below
        2^-1022, that step is done on numbers with a float64 mantissa and an
        integer exponent, which cannot underflow, until the product fits
        float64 again. So a product that is not zero is never reported as
        ``−inf``, nor as a wrong finite value because part of it underflowed.

    Notes
    -----
    Each value is certified: ``σ_max² ≤ s²(1 + 10⁻¹¹)`` is proved for the
    returned ``s`` (a 2 × 2 block bound, else a Cholesky factorisation, else an
    SVD), so it is within 5·10⁻¹² relative of the exact spectral norm. Factors
    with exactly zero blocks, such as the block lower-triangular Jacobians of a
    stack of layers or an LSTM's diagonal blocks in the columns of its cell
    state, are multiplied tile by tile, skipping those blocks (found in the
    factors themselves). Cost: ``(T+1)T/2`` products of ``n × n`` matrices;
    rows are dealt to threads (:func:`rnntheory.set_num_threads`).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, jacobians
    >>> W = 0.5 * np.eye(2)
    >>> m = ElmanRNN(W, np.zeros((2, 1)), np.zeros(2), activation="identity")
    >>> L = jacobians.log_norms(m, m.forward(np.zeros((3, 1))))
    >>> bool(np.isclose(L[3, 0], 3 * np.log(0.5)))
    True

    Eq. 12 of the article (the left-hand side, for every pair).
    """
    trace = single_trace(trace, "log_norms")
    J, per = product_factors(model, trace)
    out = log_norms_from_jacobians(J)
    return out if per == 1 else np.ascontiguousarray(out[::per, ::per])


def log_norm_profile(model: Model, trace: AnyTrace, k: int = 0) -> np.ndarray:
    """``ln ‖∂h_t/∂h_k‖₂`` for one source step ``k`` and every ``t`` (long sequences).

    Memory and time are linear in ``T`` (one column of :func:`log_norms`),
    so ``T = 10⁵`` is fine.

    Returns
    -------
    ndarray, shape ``(T+1,)``
        ``−inf`` for ``t < k``; NaN from the first step ``i > k`` at which the
        trace is not finite on (every later product contains that step).
    """
    trace = single_trace(trace, "log_norm_profile")
    k = check_int("k", k, minimum=0)
    if k > trace.T:
        raise ValueError(f"`k` must be <= T = {trace.T}, got {k}")
    J, per = product_factors(model, trace)
    out = log_norm_profile_from_jacobians(J, k * per)
    return out if per == 1 else np.ascontiguousarray(out[::per])


def log_norm_profile_from_jacobians(J: np.ndarray, k: int = 0) -> np.ndarray:
    """:func:`log_norm_profile` for a given stack of step Jacobians ``(T, n, n)``
    (``J[i-1] = ∂h_i/∂h_{i−1}``): ``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` (NaN from
    the first factor after ``k`` with a NaN or inf entry on). ``J`` is checked
    as in :func:`log_norms_from_jacobians`.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import jacobians
    >>> J = np.stack([np.diag([1.0, 1e-200])] * 3 + [np.diag([0.0, 1.0])])
    >>> out = jacobians.log_norm_profile_from_jacobians(J)
    >>> bool(np.isclose(out[4], 3 * np.log(1e-200)))   # 1e-600: no float64 holds it
    True
    """
    J = _jacobian_stack(J)
    k = check_int("k", k, minimum=0)
    if k > J.shape[0]:
        raise ValueError(f"`k` must be <= T = {J.shape[0]}, got {k}")
    with blas_threads_for(0):  # one sequence of small products: one BLAS thread
        Js, logs, mins, shifts = JK.prescale(J)
        out = JK.log_norm_profile(J, Js, logs, mins, shifts, JK.tile_plan(J, logs, True), k)
    bad = np.isnan(logs[k:])  # a factor with a NaN or inf entry
    if bad.any():  # NaN from it on, also after an exactly zero partial product
        out[k + 1 + int(np.argmax(bad)):] = np.nan
    return out


def log_norm_reach(model: Model, trace: AnyTrace, t: int | None = None) -> np.ndarray:
    """``ln ‖∂h_t/∂h_{t−τ}‖₂`` for one target step ``t`` and every lag ``τ`` (long sequences).

    How far back the gradient of a loss at step ``t`` reaches: row ``t`` of
    :func:`log_norms` read backwards, ``out[τ] = L[t, t − τ]``, with the same
    arithmetic (rescaled products, extended exponents, certified spectral
    norms), in memory linear in ``T`` (``T = 10⁵`` is fine).

    Parameters
    ----------
    model, trace
        As in :func:`step_jacobians`.
    t : int, optional
        The target step, ``0 ≤ t ≤ T`` (``T`` by default).

    Returns
    -------
    ndarray, shape ``(t+1,)``
        ``out[τ] = ln ‖J_t ⋯ J_{t−τ+1}‖₂`` (``out[0] = 0``); ``−inf`` for an
        exactly zero product; NaN from the first lag whose stretch contains a
        step at which the trace is not finite on.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, jacobians
    >>> m = ElmanRNN(0.5 * np.eye(2), np.zeros((2, 1)), np.zeros(2), activation="identity")
    >>> out = jacobians.log_norm_reach(m, m.forward(np.zeros((3, 1))))
    >>> bool(np.allclose(out, np.arange(4) * np.log(0.5)))
    True
    """
    trace = single_trace(trace, "log_norm_reach")
    tt = trace.T if t is None else check_int("t", t, minimum=0)
    if tt > trace.T:
        raise ValueError(f"`t` must be <= T = {trace.T}, got {tt}")
    J, per = product_factors(model, trace)
    out = log_norm_reach_from_jacobians(J, tt * per)
    return out if per == 1 else np.ascontiguousarray(out[::per])


def log_norm_reach_from_jacobians(J: np.ndarray, t: int | None = None) -> np.ndarray:
    """:func:`log_norm_reach` for a given stack of step Jacobians ``(T, n, n)``
    (``J[i-1] = ∂h_i/∂h_{i−1}``): ``out[τ] = ln ‖J_t ⋯ J_{t−τ+1}‖₂`` for
    ``τ = 0 … t`` (NaN from the first factor before ``t`` with a NaN or inf
    entry on). ``J`` is checked as in :func:`log_norms_from_jacobians`.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import jacobians
    >>> J = np.stack([np.diag([0.0, 1.0])] + [np.diag([1.0, 1e-200])] * 3)
    >>> out = jacobians.log_norm_reach_from_jacobians(J)
    >>> bool(np.isclose(out[4], 3 * np.log(1e-200)))   # 1e-600: no float64 holds it
    True
    """
    J = _jacobian_stack(J)
    T = J.shape[0]
    tt = T if t is None else check_int("t", t, minimum=0)
    if tt > T:
        raise ValueError(f"`t` must be <= T = {T}, got {tt}")
    with blas_threads_for(0):  # one sequence of small products: one BLAS thread
        # the tiles of the whole stack, as log_norms takes them: the same bits
        logs = JK.step_logs(J)
        plan = JK.tile_plan(J, logs, False)
        out = JK.log_norm_row(J, plan, tt)[::-1].copy()
    bad = np.isnan(logs[:tt])[::-1]  # bad[τ−1]: factor J_{t−τ+1} has a NaN or inf entry
    if bad.any():  # NaN from it on, also after an exactly zero partial product
        out[1 + int(np.argmax(bad)):] = np.nan
    return out


def lyapunov_spectrum(
    model: Model, trace: AnyTrace, k: int | None = None, *, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Finite-time Lyapunov exponents of the trajectory, by QR re-orthonormalisation.

    ``λ_j = (1/T) Σ_i ln |R_i[j, j]|`` where ``J_i Q_{i−1} = Q_i R_i``. The
    largest exponent is the asymptotic growth rate of ``ln ‖∂h_t/∂h_0‖ / t``,
    which Eq. 12's ``ln(γ_W γ_h)`` only bounds from above.

    Parameters
    ----------
    k : int, optional
        Number of leading exponents (all ``n`` by default).
    seed : int or numpy.random.Generator
        Seed (an integer in ``[0, 2**64)``) or generator of the random
        orthonormal starting frame. A random frame has a
        component along every Lyapunov direction with probability one; a fixed
        frame such as the first ``k`` unit vectors can lie in an invariant
        subspace and miss the leading exponent.

    Returns
    -------
    ndarray, shape ``(k,)``
        Exponents per step (natural log), in decreasing order. Each step
        Jacobian is scaled by a power of two (exactly) before its QR step and
        the scale is added back as a log, so weights of 1e300 give finite
        exponents. ``−inf`` when a step Jacobian is singular along the frame
        (an exactly zero ``R[j, j]``).

    Raises
    ------
    ValueError
        If the trace is not finite at some step (the forward pass overflowed):
        the exponents are averages over every step, so none can be evaluated;
        the message names the first such step. Also for a bad ``k``, or a
        ``seed`` outside ``[0, 2**64)``.
    TypeError
        If ``seed`` is neither an integer (not a bool) nor a Generator.
    """
    trace = single_trace(trace, "lyapunov_spectrum")
    rng = np.random.default_rng(check_seed("seed", seed, allow_none=False))
    J, _ = product_factors(model, trace)  # a stack's layer factors multiply to its steps
    n = J.shape[1]  # the state size (2n for the LSTM's (h, c))
    kk = n if k is None else check_int("k", k, minimum=1)
    if kk > n:
        raise ValueError(f"`k` must be <= the state size {n}, got {kk}")
    bad = nonfinite_steps(trace)
    if bad.any():
        raise ValueError(_nonfinite_message(bad, "lyapunov_spectrum"))
    Q0, _ = np.linalg.qr(rng.normal(size=(n, kk)))
    # each J_i is scaled by a power of two, exactly, and the scale added back
    sums = JK.lyapunov(np.ascontiguousarray(J), np.ascontiguousarray(Q0))
    return np.sort(sums / trace.T)[::-1]
