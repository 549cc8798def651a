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
from .cells.custom import CustomRNN, CustomTrace
from .cells.elman import ElmanRNN, Trace
from .cells.gated import GRU, LSTM, GatedTrace
from .cells.stacked import StackedRNN, StackedTrace

__all__ = [
    "AnyTrace",
    "Model",
    "check_model_trace",
    "finite_or_zero",
    "nonfinite_steps",
    "single_trace",
    "trace_array",
]

Model = ElmanRNN | LSTM | GRU | StackedRNN | CustomRNN
AnyTrace = Trace | GatedTrace | StackedTrace | CustomTrace


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
    if isinstance(trace, StackedTrace):
        return _single_stacked_trace(trace, func)
    if isinstance(trace, CustomTrace):
        return _single_custom_trace(trace, func)
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


def _single_custom_trace(trace: CustomTrace, func: str) -> CustomTrace:
    """A :class:`CustomTrace` checked as :func:`single_trace` checks a cell's:
    ``h`` ``(T+1, n)`` and ``x`` ``(T, n_in)``."""
    h = trace_array("h", trace.h, (2, 3))
    if h.ndim == 3 or h.shape[0] < 1:
        raise ValueError(
            f"`trace.h` must have shape (T+1, n) with T >= 0 (one sequence; `{func}` takes one), "
            f"got shape {h.shape}"
        )
    x = trace_array("x", trace.x)
    if x.shape[0] != h.shape[0] - 1:
        raise ValueError(
            f"`trace.x` must have T = {h.shape[0] - 1} rows for `trace.h` of shape {h.shape}, got shape {x.shape}"
        )
    return replace(trace, h=h, x=x)


def _single_stacked_trace(trace: StackedTrace, func: str) -> StackedTrace:
    """A :class:`StackedTrace` checked layer by layer as :func:`single_trace`
    checks one cell's (the message names ``trace.layers[l]``), with one ``T``."""
    layers = trace.layers
    if not isinstance(layers, tuple | list):
        raise TypeError(
            f"`trace.layers` must be a tuple of the layers' traces, got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("`trace.layers` must hold one trace per layer, got none")
    out: list[Any] = []
    for l, tr in enumerate(layers):
        try:
            out.append(single_trace(tr, func))
        except (TypeError, ValueError) as err:
            raise type(err)(str(err).replace("`trace", f"`trace.layers[{l}]", 1)) from None
    steps = {tr.T for tr in out}
    if len(steps) > 1:
        raise ValueError(
            f"`trace.layers` must all have the same number of steps, got {[tr.T for tr in out]}"
        )
    return replace(trace, layers=tuple(out))


def check_model_trace(model: Model, trace: AnyTrace) -> None:
    """Raise unless ``model`` is an Elman, LSTM or GRU model (or a stack of them)
    and ``trace`` was made by one of its kind and width."""
    if isinstance(model, CustomRNN) or isinstance(trace, CustomTrace):
        if not isinstance(model, CustomRNN) or not isinstance(trace, CustomTrace):
            raise TypeError(f"`trace` ({type(trace).__name__}) was not made by a {type(model).__name__}")
        if trace.h.shape[-1] != model.n_hidden or trace.x.shape[-1] != model.n_in:
            raise ValueError(
                f"`trace` has {trace.h.shape[-1]} state units and {trace.x.shape[-1]} inputs but `model` "
                f"has {model.n_hidden} and {model.n_in}"
            )
        return
    if not isinstance(model, ElmanRNN | LSTM | GRU | StackedRNN):
        raise TypeError(
            f"`model` must be an ElmanRNN, LSTM, GRU or StackedRNN, got {type(model).__name__}"
        )
    if isinstance(model, StackedRNN) or isinstance(trace, StackedTrace):
        if not isinstance(model, StackedRNN) or not isinstance(trace, StackedTrace):
            raise TypeError(
                f"`trace` ({type(trace).__name__}) was not made by a {type(model).__name__}"
            )
        if len(trace.layers) != model.n_layers:
            raise ValueError(
                f"`trace` has {len(trace.layers)} layers but `model` has {model.n_layers}"
            )
        for l, (layer, tr) in enumerate(zip(model.layers, trace.layers, strict=True)):
            try:
                check_model_trace(layer, tr)
            except (TypeError, ValueError) as err:
                msg = str(err).replace("`trace`", f"`trace.layers[{l}]`", 1)
                raise type(err)(msg.replace("`model`", f"`model.layers[{l}]`", 1)) from None
        return
    if isinstance(model, ElmanRNN) != isinstance(trace, Trace) or (
        isinstance(model, LSTM | GRU)
        and isinstance(model, LSTM) != (trace.c is not None)  # type: ignore[union-attr]
    ):
        raise TypeError(f"`trace` ({type(trace).__name__}) was not made by a {type(model).__name__}")
    if trace.h.shape[-1] != model.n_hidden:
        raise ValueError(
            f"`trace` has {trace.h.shape[-1]} hidden units but `model` has {model.n_hidden}"
        )


def nonfinite_steps(trace: AnyTrace) -> np.ndarray:
    """``bad[i-1]`` is True when step ``i`` cannot be evaluated: ``h_{i−1}``,
    ``h_i`` (``c`` too for the LSTM) or the step's arguments (``a_i``, or the
    gate pre-activations) hold NaN or inf. Shape ``(T,)``. For a stack, step
    ``i`` cannot be evaluated when it cannot in some layer."""
    if isinstance(trace, StackedTrace):
        bad = np.zeros(trace.T, dtype=bool)
        for tr in trace.layers:
            bad |= nonfinite_steps(tr)
        return bad
    T = trace.T
    states = [trace.h]
    if isinstance(trace, GatedTrace):
        args = trace.pre
        if trace.c is not None:
            states.append(trace.c)
    elif isinstance(trace, CustomTrace):
        args = trace.x
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
