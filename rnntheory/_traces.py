"""Package-internal checks of a model and its trace, shared by the analysis modules.

:mod:`rnntheory.jacobians` and :mod:`rnntheory.bounds` both read a recorded
trajectory (a :class:`~rnntheory.cells.Trace` or
:class:`~rnntheory.cells.GatedTrace`): these helpers check that it is one
well-formed sequence made by the model at hand, and find the steps that cannot
be evaluated because the forward pass overflowed. Not public API.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ._validation import all_finite, as_float_array
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GRU, LSTM, GatedTrace

__all__ = [
    "AnyTrace",
    "Model",
    "check_model_trace",
    "finite_or_zero",
    "nonfinite_steps",
    "single_trace",
    "trace_array",
]

Model = ElmanRNN | LSTM | GRU
AnyTrace = Trace | GatedTrace


def trace_array(field: str, value: Any, ndim: int | tuple[int, ...] = 2) -> np.ndarray:
    """One array field of a trace as a float32/float64 array (NaN/inf allowed:
    a trace the forward pass made non-finite is documented to give NaN)."""
    return as_float_array(f"trace.{field}", value, ndim=ndim, finite=False)


def single_trace(trace: AnyTrace, func: str) -> AnyTrace:
    """``trace`` checked to be one well-formed single-sequence trace.

    Every field the Jacobians read (``h``, ``a``; ``c``, ``pre`` for the gated
    cells) must be a real float array of the shape the forward pass gives it;
    the message names ``trace`` (and the field) otherwise. Returns the trace
    with those fields as arrays.
    """
    if not isinstance(trace, Trace | GatedTrace):
        raise TypeError(f"`trace` must be a Trace from model.forward, got {type(trace).__name__}")
    h = trace_array("h", trace.h, (2, 3))
    if h.ndim == 3:
        raise ValueError(
            f"`trace` must be a single-sequence trace, got a batch of {h.shape[1]}; "
            f"`{func}` takes one sequence: select one with trace.sequence(b)"
        )
    if h.shape[0] < 1:
        raise ValueError(
            f"`trace.h` must have shape (T+1, n) with T >= 0 (h[0] is h_0), got shape {h.shape}"
        )
    T, n = h.shape[0] - 1, h.shape[1]
    if isinstance(trace, GatedTrace):
        pre = trace_array("pre", trace.pre)
        if pre.shape != (T, 4 * n):
            raise ValueError(
                f"`trace.pre` must have shape (T, 4n) = {(T, 4 * n)} for `trace.h` of shape "
                f"{h.shape}, got shape {pre.shape}"
            )
        c = None if trace.c is None else trace_array("c", trace.c)
        if c is not None and c.shape != h.shape:
            raise ValueError(
                f"`trace.c` must have the shape of `trace.h` {h.shape}, got shape {c.shape}"
            )
        return replace(trace, h=h, c=c, pre=pre)
    a = trace_array("a", trace.a)
    if a.shape != (T, n):
        raise ValueError(
            f"`trace.a` must have shape (T, n) = {(T, n)} for `trace.h` of shape {h.shape}, "
            f"got shape {a.shape}"
        )
    return replace(trace, h=h, a=a)


def check_model_trace(model: Model, trace: AnyTrace) -> None:
    """Raise unless ``model`` is an Elman, LSTM or GRU model and ``trace`` was made by one of its kind and width."""
    if not isinstance(model, ElmanRNN | LSTM | GRU):
        raise TypeError(f"`model` must be an ElmanRNN, LSTM or GRU, got {type(model).__name__}")
    if isinstance(model, ElmanRNN) != isinstance(trace, Trace) or (
        isinstance(model, LSTM) and trace.c is None  # type: ignore[union-attr]
    ):
        raise TypeError(f"`trace` ({type(trace).__name__}) was not made by a {type(model).__name__}")
    if trace.h.shape[-1] != model.n_hidden:
        raise ValueError(
            f"`trace` has {trace.h.shape[-1]} hidden units but `model` has {model.n_hidden}"
        )


def nonfinite_steps(trace: AnyTrace) -> np.ndarray:
    """``bad[i-1]`` is True when step ``i`` cannot be evaluated: ``h_{i−1}``,
    ``h_i`` (``c`` too for the LSTM) or the step's arguments (``a_i``, or the
    gate pre-activations) hold NaN or inf. Shape ``(T,)``."""
    T = trace.T
    states = [trace.h]
    if isinstance(trace, GatedTrace):
        args = trace.pre
        if trace.c is not None:
            states.append(trace.c)
    else:
        args = trace.a
    arrays = [np.asarray(x) for x in (*states, args)]
    if all(all_finite(x) for x in arrays):
        return np.zeros(T, dtype=bool)
    ok_state = np.ones(T + 1, dtype=bool)
    for x in arrays[:-1]:
        ok_state &= np.isfinite(x.reshape(T + 1, -1)).all(axis=1)
    ok_args = np.isfinite(arrays[-1].reshape(T, -1)).all(axis=1)
    return ~(ok_state[:-1] & ok_state[1:] & ok_args)


def finite_or_zero(x: Any) -> np.ndarray:
    """``x`` in float64 with NaN/inf replaced by 0 (steps computed from them are overwritten)."""
    x = np.asarray(x, np.float64)
    return np.where(np.isfinite(x), x, 0.0)
