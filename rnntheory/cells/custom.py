"""A numeric model of a cell written as a SymPy expression (:func:`rnntheory.symbolic.custom.custom_cell`).

:class:`CustomRNN` runs the cell's update ``h_t = F(h_{t−1}, x_t; θ)`` over a
sequence with given parameter values and evaluates its step Jacobians
``∂h_t/∂h_{t−1}`` (and input Jacobians ``∂h_t/∂x_t``) from the SymPy
derivatives compiled to NumPy, so :mod:`rnntheory.jacobians`
(``step_jacobians``, ``log_norms``, ``log_norm_profile``, ``lyapunov_spectrum``,
…) and :mod:`rnntheory.bounds` (``step_log_bounds``, ``certify``) accept its
trajectories. SymPy is imported only when a model is built (the cell already
holds it), never by ``import rnntheory``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, frozen_array
from ._base import TraceBase

__all__ = ["CustomRNN", "CustomTrace"]


@dataclass(frozen=True)
class CustomTrace(TraceBase):
    """What :meth:`CustomRNN.forward` leaves behind.

    Attributes
    ----------
    h : ndarray, shape ``(T+1, n)``
        States; ``h[0]`` is ``h_0`` and ``h[t]`` is ``h_t``.
    x : ndarray, shape ``(T, n_in)``
        The inputs; ``x[t-1]`` is ``x_t``, read by step ``t``.
    """

    h: np.ndarray
    x: np.ndarray


class CustomRNN:
    """A recurrent model whose cell is a :class:`~rnntheory.symbolic.custom.CustomCell`.

    Parameters
    ----------
    cell : CustomCell
        From :func:`rnntheory.symbolic.custom.custom_cell`, with a concrete
        (evaluable) update.
    params : mapping of str to array, optional
        A value for every parameter of the cell, by name, of the shape in
        ``cell.param_shapes`` (``()`` for a scalar symbol, ``(k,)`` for a
        column, also accepted as ``(k, 1)``, ``(r, c)`` for a matrix). Finite; huge values are allowed
        (a forward pass that then overflows leaves NaN or inf in the trace,
        and the steps there cannot be evaluated, as for the built-in cells).
    bound : SymPy expression, optional
        A claimed bound ``γ(h_{t−1}, x_t; θ) ≥ ‖∂h_t/∂h_{t−1}‖₂`` in the cell's
        symbols: :func:`rnntheory.bounds.step_log_bounds` with ``bound="claim"``
        evaluates ``ln γ`` at each step and :func:`rnntheory.bounds.certify`
        checks ``‖∂h_t/∂h_k‖₂ ≤ Π γ_i`` on every pair of a trajectory.

    Attributes
    ----------
    cell, params, bound
        As given (``params`` as read-only float64 arrays).
    n_hidden, n_in : int
        State and input sizes.

    Raises
    ------
    TypeError
        If ``cell`` is not a CustomCell, ``params`` is not a mapping, a value
        is not a real array, or ``bound`` is not a SymPy expression or number.
    ValueError
        If a parameter is missing, unknown, of the wrong shape or not finite,
        the cell holds an undefined function, or ``bound`` holds symbols that
        are not the cell's.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from rnntheory.symbolic.custom import custom_cell
    >>> from rnntheory import jacobians
    >>> h, x, w = sp.symbols("h x w", real=True)
    >>> m = CustomRNN(custom_cell(sp.tanh(w * h + x), h, x, params={"w": w}), {"w": 0.5})
    >>> tr = m.forward(np.zeros((3, 1)))
    >>> jacobians.step_jacobians(m, tr)[:, 0, 0]      # w·tanh′(0) = w at the fixed point 0
    array([0.5, 0.5, 0.5])
    """

    def __init__(self, cell: Any, params: Mapping[str, Any] | None = None, *, bound: Any = None) -> None:
        from ..symbolic.custom import CustomCell

        if not isinstance(cell, CustomCell):
            raise TypeError(
                f"`cell` must be a CustomCell (from rnntheory.symbolic.custom.custom_cell), got {type(cell).__name__}"
            )
        numeric = cell.lambdify()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise TypeError(f"`params` must be a mapping of parameter names to arrays, got {type(params).__name__}")
        shapes = dict(cell.param_shapes)
        unknown = sorted(str(k) for k in params if k not in shapes)
        if unknown:
            raise ValueError(f"`params` has no parameter(s) {unknown} in the cell; its parameters are {sorted(shapes)}")
        values: dict[str, np.ndarray] = {}
        for key, shape in cell.param_shapes:
            if key not in params:
                raise ValueError(f"`params` must give every parameter of the cell {sorted(shapes)}, missing {key!r}")
            v = as_float_array(f"params[{key!r}]", params[key], dtype=np.dtype(np.float64))
            v = v.reshape(np.shape(params[key]))  # keep a 0-d value 0-d
            full = tuple(int(d) for d in dict(cell.params)[key].shape)
            if v.shape not in (shape, full):
                raise ValueError(f"`params[{key!r}]` must have shape {shape}, got shape {v.shape}")
            v = v.reshape(shape)
            values[key] = frozen_array(v)
        self.cell = cell
        self.params = values
        self.n_hidden = cell.n
        self.n_in = cell.n_in
        self._numeric = numeric
        self.bound = None
        self._bound_fn = None
        if bound is not None:
            from ..symbolic.custom import claim_expression

            self.bound = claim_expression(cell, bound, name="bound")
            self._bound_fn = numeric.expression(self.bound)

    def __repr__(self) -> str:
        return f"CustomRNN({self.cell.name!r}, n_hidden={self.n_hidden}, n_in={self.n_in})"

    def forward(self, x: Any, h0: Any = None) -> CustomTrace:
        """Run the cell over one sequence.

        Parameters
        ----------
        x : array, shape ``(T, n_in)``
            Inputs, time-major, finite; ``x[0]`` is ``x_1``.
        h0 : array, shape ``(n,)``, optional
            Initial state ``h_0`` (zeros by default), finite.

        Returns
        -------
        CustomTrace
            ``h (T+1, n)`` and ``x (T, n_in)`` in float64. A state that
            overflows is kept as NaN/inf (the steps from there on cannot be
            evaluated; see :mod:`rnntheory.jacobians`).

        Raises
        ------
        TypeError, ValueError
            On a non-real, non-finite or misshapen ``x`` or ``h0`` (a batch
            ``(T, B, n_in)`` included: run one sequence at a time).
        """
        x = as_float_array("x", x, dtype=np.dtype(np.float64))
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"`x` must have shape (T, n_in) = (T, {self.n_in}), got shape {x.shape}")
        if h0 is None:
            h = np.zeros(self.n_hidden)
        else:
            h = as_float_array("h0", h0, dtype=np.dtype(np.float64))
            if h.shape != (self.n_hidden,):
                raise ValueError(f"`h0` must have shape ({self.n_hidden},), got shape {h.shape}")
        T = x.shape[0]
        H = np.empty((T + 1, self.n_hidden))
        H[0] = h
        step = self._numeric.step_function(self.params)
        for t in range(T):
            H[t + 1] = step(H[t], x[t])
        return CustomTrace(H, x.copy())

    def _points(self, trace: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(h_{i−1}, x_i)`` of every step of a single-sequence trace of this model, checked."""
        if not isinstance(trace, CustomTrace):
            raise TypeError(f"`trace` must be a CustomTrace from CustomRNN.forward, got {type(trace).__name__}")
        h = as_float_array("trace.h", trace.h, dtype=np.dtype(np.float64), finite=False)
        x = as_float_array("trace.x", trace.x, dtype=np.dtype(np.float64), finite=False)
        if h.ndim != 2 or h.shape[0] < 1 or h.shape[1] != self.n_hidden:
            raise ValueError(f"`trace.h` must have shape (T+1, {self.n_hidden}), got shape {h.shape}")
        if x.shape != (h.shape[0] - 1, self.n_in):
            raise ValueError(f"`trace.x` must have shape (T, n_in) = {(h.shape[0] - 1, self.n_in)}, got shape {x.shape}")
        return h[:-1], x

    def step_jacobians(self, trace: Any) -> np.ndarray:
        """``(T, n, n)``: entry ``i−1`` is ``∂h_i/∂h_{i−1}`` at the recorded
        ``(h_{i−1}, x_i)`` (use :func:`rnntheory.jacobians.step_jacobians`,
        which also checks the trace and marks the steps that cannot be evaluated)."""
        h, x = self._points(trace)
        return np.ascontiguousarray(self._numeric.step_jacobian(h, x, self.params))

    def input_jacobians(self, trace: Any) -> np.ndarray:
        """``(T, n, n_in)``: entry ``i−1`` is ``∂h_i/∂x_i`` at the recorded point."""
        h, x = self._points(trace)
        return np.ascontiguousarray(self._numeric.input_jacobian(h, x, self.params))

    def bound_values(self, trace: Any) -> np.ndarray:
        """``(T,)``: the claimed bound ``γ`` at each step's recorded ``(h_{i−1}, x_i)``.

        Raises
        ------
        ValueError
            If the model was built without ``bound``, or ``trace`` is not a
            single-sequence trace of this model's sizes.
        TypeError
            If ``trace`` is not a CustomTrace.
        """
        if self._bound_fn is None:
            raise ValueError("`model` has no claimed bound: build it with CustomRNN(cell, params, bound=γ)")
        h, x = self._points(trace)
        return np.asarray(self._bound_fn(h, x, self.params), np.float64)
