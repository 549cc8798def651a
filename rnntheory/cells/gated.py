"""LSTM and GRU cells in exactly the conventions of ``torch.nn.LSTMCell`` / ``GRUCell``.

Parameters carry PyTorch's names and layouts, so weights load from a PyTorch
module unchanged: ``weight_ih (G·n, n_in)``, ``weight_hh (G·n, n)``,
``bias_ih (G·n,)``, ``bias_hh (G·n,)`` with the gate blocks stacked in
PyTorch's order: ``(i, f, g, o)`` for the LSTM (G = 4), ``(r, z, n)`` for the
GRU (G = 3, the reset gate applied after the hidden matmul:
``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h′ = (1 − z) ⊙ n + z ⊙ h``).
An optional linear readout ``y_t = W_yh h_t + b_y`` and the losses are those of
:class:`~rnntheory.ElmanRNN`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .. import init as _init
from .._parallel import blas_threads_for, own_threads, run_rows, scratch, threads_for
from .._validation import (
    abs_max,
    as_float_array,
    as_generator,
    check_choice,
    check_dtype,
    check_int,
    check_reach,
    check_real,
    check_shape,
    frozen_array,
    read_only,
    transposed,
)
from . import _elman_kernels as EK
from . import _gated_kernels as GK
from ._base import (
    GradsBase,
    SequenceModel,
    TraceBase,
    parse_truncate,
    readout_params,
    readout_rows,
    same_dtype,
    sum_over_rows,
)
from .curvature import GaussNewton

__all__ = ["GRU", "LSTM", "GRUGrads", "GatedTrace", "LSTMGrads"]

INIT_SCHEMES = ("pytorch", "orthogonal")


def _keep_trace_temporary(keep_trace: Any) -> bool:
    """Whether the forward arrays may live in scratch (``keep_trace`` False or ``"scratch"``)."""
    if not (keep_trace is False or keep_trace is True or keep_trace == "scratch"):
        raise ValueError(f"`keep_trace` must be True, False or 'scratch', got {keep_trace!r}")
    return keep_trace is not True


@dataclass(frozen=True)
class GatedTrace(TraceBase):
    """What a forward pass of a gated cell leaves behind.

    Attributes
    ----------
    h : ndarray, ``(T+1, n)`` or ``(T+1, B, n)``
        Hidden states, ``h[0] = h_0``.
    c : ndarray or None
        LSTM cell states (same shape as ``h``), ``None`` for the GRU.
    pre : ndarray, ``(T, 4n)`` or ``(T, B, 4n)``
        Gate pre-activations of each step: LSTM ``(i, f, g, o)``; GRU
        ``(r, z, n, W_hn h_{t−1} + b_hn)`` (the last block is what the reset
        gate multiplies).
    y : ndarray or None
        Readouts.
    """

    h: np.ndarray
    c: np.ndarray | None
    pre: np.ndarray
    y: np.ndarray | None


@dataclass(frozen=True)
class _GatedGrads(GradsBase):
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    W_yh: np.ndarray | None
    b_y: np.ndarray | None
    flow: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class LSTMGrads(_GatedGrads):
    """Gradients of an :class:`LSTM`: one field per parameter, and the flows.

    ``flow[k] = ∂E/∂h_k`` and ``flow_c[k] = ∂E/∂c_k`` (k = 0..T), total
    derivatives through every later step.
    """

    flow_c: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    #: The forward pass, when ``value_and_grad(keep_trace=...)`` asked for it.
    trace: GatedTrace | None = field(default=None, repr=False)


@dataclass(frozen=True)
class GRUGrads(_GatedGrads):
    """Gradients of a :class:`GRU`: one field per parameter, and ``flow[k] = ∂E/∂h_k``."""

    #: The forward pass, when ``value_and_grad(keep_trace=...)`` asked for it.
    trace: GatedTrace | None = field(default=None, repr=False)


class _Gated(SequenceModel):
    GATES: ClassVar[int] = 4
    NAME: ClassVar[str] = "LSTM"

    @staticmethod
    def _schedule(truncate: Any, T: int) -> tuple[int, int, int]:
        """``truncate`` as ``(k1, k2, chunk)`` for a sequence of ``T`` steps.

        ``k2 = 0``: the full-BPTT kernel, with the flow cut at block starts when
        ``chunk > 0`` (aligned chunks, ``k1 = k2`` dividing T: the fast path;
        ``k2 > T`` keeps every pair, so it is plain full BPTT). Otherwise the
        truncated kernel runs BPTT(k1, k2).
        """
        k1, k2 = parse_truncate(truncate)
        if k2 is None or k2 > T:
            return k1, 0, 0
        if k1 == k2 and T % k1 == 0:
            return k1, 0, k1
        return k1, k2, 0

    def _backward(
        self,
        full: Any,
        truncated: Any,
        dZ: np.ndarray,
        S: np.ndarray,
        P: np.ndarray,
        outs: tuple[np.ndarray, ...],
        sched: tuple[int, int, int],
        k: int,
        parts: tuple[np.ndarray, ...] = (),
    ) -> None:
        """Fill ``outs`` (flows and pre-activation derivatives) by the full-BPTT
        kernel ``full`` (chunks as its fast path) or, for the schedule
        ``(k1, k2)``, by ``truncated``, on ``k`` ranges of the batch. ``S``: the
        states the kernels read (``C`` for the LSTM, ``H`` for the GRU).
        ``parts``: what Ω reads, the LSTM's ``(UH, CC)`` (:func:`lstm_backward`)
        or the GRU's ``(UH,)`` (:func:`gru_backward`); empty arrays when not
        wanted, the only choice under truncation."""
        k1, k2, chunk = sched
        head = (self.weight_hh, self.W_yh, read_only(dZ), S, P)
        parts = parts if parts else (self._no_parts(),) * (2 if isinstance(self, LSTM) else 1)
        with own_threads(k):
            if k2:
                run_rows(truncated, (*head, k1, k2, *outs), P.shape[1], k)
            else:
                run_rows(full, (*head, *outs, *parts, chunk), P.shape[1], k)

    def __init__(
        self,
        weight_ih: Any,
        weight_hh: Any,
        bias_ih: Any = None,
        bias_hh: Any = None,
        W_yh: Any = None,
        b_y: Any = None,
    ) -> None:
        G = self.GATES
        weight_hh = as_float_array("weight_hh", weight_hh, ndim=2)
        dtype = weight_hh.dtype
        gn, n = weight_hh.shape
        if n == 0 or gn != G * n:
            raise ValueError(
                f"`weight_hh` must have shape ({G}·n, n) with n ≥ 1 ({self.NAME} gates stacked), "
                f"got shape {weight_hh.shape}"
            )
        weight_ih = same_dtype("weight_ih", as_float_array("weight_ih", weight_ih, ndim=2), dtype, "weight_hh")
        if weight_ih.shape[0] != G * n:
            raise ValueError(
                f"`weight_ih` must have shape ({G * n}, n_in), got shape {weight_ih.shape}"
            )
        biases = []
        for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if b is None:
                b = np.zeros(G * n, dtype=dtype)
            b = same_dtype(name, as_float_array(name, b, ndim=1), dtype, "weight_hh")
            check_shape(name, b, (G * n,))
            biases.append(b)
        # the model owns read-only copies; the transposes below are made from
        # them, so the forward and backward passes read the same values
        self.weight_ih, self.weight_hh = frozen_array(weight_ih), frozen_array(weight_hh)
        self.bias_ih, self.bias_hh = frozen_array(biases[0]), frozen_array(biases[1])
        self.W_yh, self.b_y = readout_params(W_yh, b_y, n, dtype, "weight_hh")
        self.dtype = dtype
        self._W_ihT = transposed(self.weight_ih)
        self._W_hhT = transposed(self.weight_hh)
        self._freeze()

    def _check_reach(self, x3: np.ndarray, h0: np.ndarray | None) -> None:
        """Refuse inputs with which a gate pre-activation could pass the dtype's range.

        ``|pre| ≤ rows(weight_ih)·max|x| + max|bias_ih| + max|bias_hh| +
        rows(weight_hh)·max(1, max|h_0|)``: every hidden state after ``h_0`` lies
        in ``[-1, 1]`` (LSTM: ``σ(o) tanh(c)``; GRU: a convex combination of
        ``h_{t−1}`` and ``tanh(·)``). The cell state ``c`` enters no
        pre-activation, and ``|c_t| ≤ |c_{t−1}| + 1`` cannot overflow.
        """
        xmax = abs_max(x3)
        sup = 1.0 if h0 is None else max(1.0, abs_max(h0))
        if self._reach_ok(("weight_ih", "weight_hh"), ("bias_ih", "bias_hh"), (xmax, sup)):
            return
        check_reach(
            "the gate pre-activations weight_ih x_t + bias_ih + weight_hh h_{t−1} + bias_hh",
            [
                self._weight_term("weight_ih", "max |x|", xmax, "x", True),
                self._bias_term("bias_ih"),
                self._bias_term("bias_hh"),
                self._state_term("weight_hh", h0, True),
            ],
            self.dtype, self.n_hidden + self.n_in + 2,
        )

    def _no_parts(self) -> np.ndarray:
        """An empty ``(0, 0, 0)`` array of the model's dtype: "not wanted" for an optional
        output of a kernel (one compiled signature whether or not it is wanted)."""
        return np.empty((0, 0, 0), dtype=self.dtype)

    def _array(self, name: str, shape: tuple[int, ...], temporary: bool) -> np.ndarray:
        """An uninitialised array of the model's dtype: the per-thread scratch
        array ``name`` when ``temporary`` (it must not leave the call), else fresh."""
        return scratch(name, shape, self.dtype) if temporary else np.empty(shape, dtype=self.dtype)

    def _threads(self, T: int, B: int) -> int:
        """Threads of our own for a batched pass over ``T`` steps of ``B`` sequences:
        its work is ``T·B·G·n·(n + n_in)`` multiply-adds (the gate projections)."""
        n = self.n_hidden
        return threads_for(B, T * B * self.GATES * n * (n + self.n_in))

    @property
    def n_hidden(self) -> int:
        """Number of hidden units ``n``."""
        return int(self.weight_hh.shape[1])

    @property
    def n_in(self) -> int:
        """Input size."""
        return int(self.weight_ih.shape[1])

    def params(self) -> dict[str, np.ndarray]:
        """The parameters by name (readout left out when absent).

        The arrays are the model's own read-only arrays, not copies: writing
        into one raises ``ValueError``. Compute new arrays from them and pass
        those to :meth:`replace`.
        """
        out = {
            "weight_ih": self.weight_ih,
            "weight_hh": self.weight_hh,
            "bias_ih": self.bias_ih,
            "bias_hh": self.bias_hh,
        }
        if self.W_yh is not None:
            assert self.b_y is not None
            out["W_yh"] = self.W_yh
            out["b_y"] = self.b_y
        return out

    def replace(self, **params: Any) -> Any:
        """A copy with some parameters replaced."""
        return type(self)(**self._replaced(params, f"parameter of {self.NAME}"))

    def _init_kwargs(self) -> dict[str, Any]:
        return {"W_yh": None, "b_y": None, **self.params()}

    def __repr__(self) -> str:
        return self._describe(self.NAME)

    @classmethod
    def init(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int | None,
        *,
        scheme: str = "pytorch",
        seed: int | None = 0,
        dtype: Any = np.float64,
        forget_bias: float = 0.0,
    ) -> Any:
        """Draw a model.

        Parameters
        ----------
        n_in, n_hidden : int
        n_out : int or None
            Readout size (``None``: no readout).
        scheme : {"pytorch", "orthogonal"}
            ``"pytorch"``: every weight and bias ``U(−1/√n, 1/√n)``, as
            ``torch.nn.LSTMCell``/``GRUCell`` do; ``"orthogonal"``: each gate
            block of ``weight_hh`` an independent Haar-random orthogonal
            ``n × n`` matrix (:func:`rnntheory.init.gate_blocks` with
            :func:`rnntheory.init.haar_orthogonal`), input weights as in
            ``"pytorch"``, biases zero.
        seed : int or None
        dtype : float32 or float64
        forget_bias : float
            LSTM only: added to the forget-gate block of ``bias_hh`` (1 is the
            usual choice to start with open forget gates).
        """
        n_in = check_int("n_in", n_in, minimum=1)
        n = check_int("n_hidden", n_hidden, minimum=1)
        if n_out is not None:
            n_out = check_int("n_out", n_out, minimum=1)
        scheme = check_choice("scheme", scheme, INIT_SCHEMES)
        forget_bias = check_real("forget_bias", forget_bias)
        if forget_bias != 0.0 and cls.GATES != 4:
            raise ValueError(f"`forget_bias` applies to the LSTM only, got {forget_bias} for a GRU")
        dt = check_dtype("dtype", dtype)
        rng = as_generator("seed", seed)
        G = cls.GATES
        k = 1.0 / np.sqrt(n)
        W_ih = rng.uniform(-k, k, (G * n, n_in))
        if scheme == "pytorch":
            W_hh = rng.uniform(-k, k, (G * n, n))
            b_ih = rng.uniform(-k, k, G * n)
            b_hh = rng.uniform(-k, k, G * n)
        else:
            W_hh = _init.gate_blocks(n, G, _init.haar_orthogonal, seed=rng)
            b_ih = np.zeros(G * n)
            b_hh = np.zeros(G * n)
        if G == 4:
            b_hh[n : 2 * n] += forget_bias
        W_yh = b_y = None
        if n_out is not None:
            W_yh = rng.uniform(-k, k, (n_out, n)).astype(dt)
            b_y = np.zeros(n_out, dt)
        return cls(W_ih.astype(dt), W_hh.astype(dt), b_ih.astype(dt), b_hh.astype(dt), W_yh, b_y)


class LSTM(_Gated):
    """A long short-term memory cell (``torch.nn.LSTMCell`` conventions) with readout.

    Parameters
    ----------
    weight_ih : array ``(4n, n_in)``
        Input weights of the gates ``(i, f, g, o)`` stacked; its dtype must match
        ``weight_hh``'s, which sets the compute dtype.
    weight_hh : array ``(4n, n)``
    bias_ih, bias_hh : array ``(4n,)``, optional
        Zeros when omitted.
    W_yh, b_y : arrays, optional
        Linear readout.

    Notes
    -----
    The model owns its parameters: it keeps read-only copies of the arrays it
    is given, so changing the caller's arrays afterwards does not change it,
    writing into ``weight_hh`` (or any array of :meth:`params`) raises
    ``ValueError``, and its attributes cannot be reassigned. Forward pass,
    BPTT and the cached transposes read the same values. A changed model is
    a new one: ``model.replace(weight_hh=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import LSTM
    >>> m = LSTM.init(3, 5, 2, seed=0)
    >>> tr = m.forward(np.zeros((4, 3)))
    >>> tr.h.shape, tr.c.shape
    ((5, 5), (5, 5))

    Hochreiter & Schmidhuber 1997; Gers et al. 2000 (forget gate); PyTorch's LSTMCell.
    """

    GATES = 4
    NAME = "LSTM"

    def _run(
        self, x3: np.ndarray, h0: np.ndarray, c0: np.ndarray, k: int = 1, temporary: bool = False,
        tag: str = "",
    ) -> tuple[np.ndarray, ...]:
        """The forward pass on ``k`` threads (ranges of the batch; the caller
        holds :func:`own_threads` when ``k > 1``). ``temporary``: the states live
        only inside the caller (``value_and_grad``), so per-thread scratch arrays
        are reused instead of fresh ones (a page fault per 4 kB on first touch)."""
        T, B, _ = x3.shape
        n = self.n_hidden
        H = self._array("lstm_H" + tag, (T + 1, B, n), temporary)
        C = self._array("lstm_C" + tag, (T + 1, B, n), temporary)
        P = self._array("lstm_P" + tag, (T, B, 4 * n), temporary)
        run_rows(
            GK.lstm_forward,
            (self._W_ihT, self._W_hhT, self.bias_ih, self.bias_hh, read_only(x3), h0, c0, H, C, P),
            B, k,
        )
        return H, C, P

    def forward(self, x: Any, h0: Any = None, c0: Any = None, *, batch_first: bool = False) -> GatedTrace:
        """Run the cell over ``x`` (``(T, n_in)`` or ``(T, B, n_in)``); zero initial states by default.

        A large batch is split into ranges of sequences run on threads of our
        own (:func:`rnntheory.set_num_threads`); the result agrees with one
        thread's to rounding. ``batch_first=True`` reads ``x`` as ``(B, T,
        n_in)``, the layout of a PyTorch module built with ``batch_first=True``
        (a 2-D ``x`` is refused); ``h0``, ``c0`` stay ``(B, n)``. Traces are always time-major, with ``batch_first=True`` too: ``trace.h`` is ``(T+1, B, n)``.

        Raises
        ------
        ValueError
            On a bad shape or non-finite input; and when a gate pre-activation
            could pass the dtype's range: ``rows(weight_ih)·max|x| +
            max|bias_ih| + max|bias_hh| + rows(weight_hh)·max(1, max|h_0|)``
            (``rows``: the largest row sum of magnitudes; every later state
            lies in ``[-1, 1]``; ``c_0`` enters no pre-activation) beyond it.
            The message names the argument (``x``, ``h0``) or parameter that
            carries the large values.
        """
        x, = self._time_major(batch_first, x)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        h0_, c0_ = self._state("h0", h0, B, batched), self._state("c0", c0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        k = self._threads(T, B)
        with own_threads(k):
            H, C, P = self._run(x3, h0_, c0_, k)
            Y = self._readout(H, k)
        if batched:
            return GatedTrace(H, C, P, Y)
        return GatedTrace(H[:, 0], C[:, 0], P[:, 0], None if Y is None else Y[:, 0])

    def loss(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        c0: Any = None,
        batch_first: bool = False,
    ) -> float:
        """The loss (Eq. 4) on a batch, by a forward pass alone.

        The value ``E`` that :meth:`value_and_grad` returns, without the
        backward pass: what a line search or a trial step needs (Hessian-free
        reads a trial point's loss here).

        Parameters
        ----------
        x, y, loss, mask, h0, c0, batch_first
            As in :meth:`value_and_grad`.

        Returns
        -------
        float
            ``E = Σ_t Σ_b mask[t, b] · E_t``, accumulated in float64; ``inf``
            when it is not finite (a loss beyond float64's range).

        Raises
        ------
        ValueError
            On bad inputs, targets or mask, and for inputs with which a gate
            pre-activation could pass the dtype's range (as :meth:`forward`;
            a :class:`~rnntheory._validation.ReachError`, which a trainer can
            tell from other bad input).
        TypeError
            On non-numeric inputs or non-integer classes for ``loss="xent"``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import LSTM
        >>> m = LSTM.init(2, 4, 3, seed=0)
        >>> x = np.ones((5, 2)); y = np.array([0, 1, 2, 1, 0])
        >>> bool(m.loss(x, y) == m.value_and_grad(x, y)[0])
        True

        Eq. 4 of the article; Hochreiter & Schmidhuber 1997.
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        h0_, c0_ = self._state("h0", h0, B, batched), self._state("c0", c0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        k = self._threads(T, B)
        with own_threads(k), np.errstate(all="ignore"):
            H, _, _ = self._run(x3, h0_, c0_, k, temporary=True)
            Y = self._readout(H, k)
            value, _ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H[1:]), loss, tgt, m)
        return float(value) if np.isfinite(value) else float("inf")

    def gauss_newton(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        c0: Any = None,
        lam_struct: float = 0.0,
    ) -> GaussNewton:
        """The Gauss–Newton matrix of the loss at these parameters, as a product ``v ↦ G v``.

        .. math::

            G v = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t} v
                  + λ_s \\sum_{b,t} \\bigl(J_{h_t}^⊤ J_{h_t} + J_{c_t}^⊤ J_{c_t}\\bigr) v

        ``G`` is the curvature of the summed loss ``E`` of
        :meth:`value_and_grad` (``z_t`` the readout, ``H_{L,t}`` the loss's
        Hessian in ``z_t`` times the mask weight). The second sum is structural
        damping (Martens & Sutskever 2011, §4.2) on the LSTM's whole state
        ``s_t = (h_t, c_t)``: Martens & Sutskever damp the change of the hidden
        units, the state the recurrence carries; for the LSTM that state is the
        pair, and the cell state ``c`` is the path long-range information takes
        (a change of the parameters that moves ``c`` a lot while ``h`` stays put
        through a closed output gate would go unpenalised if only ``h`` were
        damped). The forward trace is stored once; each product is one
        R-forward pass along it and one backward pass of the cell (see
        :class:`~rnntheory.cells.curvature.GaussNewton`).

        Parameters
        ----------
        x, y, loss, mask, h0, c0
            As in :meth:`value_and_grad`.
        lam_struct : float
            Structural-damping weight ``λ_s ≥ 0`` (``0``: plain Gauss–Newton).

        Returns
        -------
        GaussNewton
            A callable ``G(v) -> G v`` on flat float64 vectors in the order of
            :meth:`params` (:func:`~rnntheory.cells.curvature.flatten_params`),
            with ``n_params`` and the counter ``products``.

        Raises
        ------
        ValueError
            On bad inputs (as :meth:`value_and_grad`) or a negative ``lam_struct``.
        TypeError
            On non-numeric inputs.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import LSTM
        >>> m = LSTM.init(2, 4, 3, seed=0)
        >>> rng = np.random.default_rng(0)
        >>> G = m.gauss_newton(rng.normal(size=(6, 2)), rng.integers(0, 3, 6), lam_struct=0.1)
        >>> u, v = rng.normal(size=(2, G.n_params))
        >>> bool(v @ G(v) >= 0), bool(np.isclose(u @ G(v), v @ G(u))), G.products
        (True, True, 3)

        Martens & Sutskever 2011, §3–4; Schraudolph 2002.
        """
        return GaussNewton(self, x, y, loss=loss, mask=mask, h0=h0, c0=c0, lam_struct=lam_struct)

    def value_and_grad(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        c0: Any = None,
        truncate: int | tuple[int, int] | None = None,
        batch_first: bool = False,
        keep_trace: bool | str = False,
    ) -> tuple[float, LSTMGrads]:
        """Loss (summed over steps and sequences) and its gradient by BPTT.

        Backpropagation through time for the cell ``c_t = σ(f_t)⊙c_{t−1} +
        σ(i_t)⊙tanh(g_t)``, ``h_t = σ(o_t)⊙tanh(c_t)``, through both ``h`` and
        ``c``: ``∂E/∂c_t = ∂E/∂c_{t+1}⊙σ(f_{t+1}) + ∂E/∂h_t⊙σ(o_t)⊙tanh′(c_t)``
        and ``∂E/∂h_{t−1} = (∂E/∂a_t) W_hh`` with ``a_t`` the gate
        pre-activations.

        Parameters
        ----------
        x, y, loss, mask, h0
            As in :meth:`rnntheory.ElmanRNN.value_and_grad`.
        c0 : array, optional
            Initial cell state (zeros by default).
        truncate : int or (int, int), optional
            Truncated BPTT with the schedules and semantics of
            :meth:`rnntheory.ElmanRNN.value_and_grad`, the state being the pair
            ``(h_k, c_k)``: ``k2`` keeps the contribution of ``E_t`` through
            ``(h_k, c_k)`` only when ``t − k < k2`` (a sliding window, cost
            ``O(T·k2)``); ``(k1, k2)`` with ``k2 ≥ k1`` is Williams & Peng's
            BPTT(k1, k2): blocks of ``k1`` losses ending at ``e = k1, 2k1, …, T``,
            each backpropagated ``k2`` steps from its end (kept when
            ``e(t) − k < k2``), as if the state were detached at ``e − k2``.
            ``(k, k)`` with ``k`` dividing T (chunks) runs at the cost of full
            BPTT. ``flow`` and ``flow_c`` are truncated the same way. ``None`` is
            full BPTT; so is any ``k2 ≥ T`` for the parameter gradients
            (``k2 > T`` for the flows at step 0 too).
        batch_first : bool
            ``x`` is ``(B, T, n_in)``, ``y`` ``(B, T)`` or ``(B, T, n_out)``,
            ``mask`` ``(B, T)``: the layout of a PyTorch
            module built with ``batch_first=True``. A 2-D ``x`` is refused.
        keep_trace : bool or "scratch"
            Also return the forward pass as ``grads.trace`` (a :class:`GatedTrace`,
            time-major); ``"scratch"`` returns it in per-thread scratch arrays that
            the next call overwrites (no fresh allocation; what
            :class:`~rnntheory.remedies.Omega` uses within one step). Under
            full BPTT, ``"scratch"`` also keeps, in the same way, the halves of
            the whole-state flow that :func:`~rnntheory.remedies.omega` reads
            when this record is its ``flow`` (the gates are then not
            recomputed); nothing else the call returns changes.

        Returns
        -------
        loss : float
            ``E = Σ_t Σ_b mask[t, b] · E_t``.
        grads : LSTMGrads
            Parameter gradients, ``flow[k] = ∂E/∂h_k`` and ``flow_c[k] = ∂E/∂c_k``
            for ``k = 0..T``. The flows are always time-major, ``(T+1, B, n)``
            with ``batch_first=True`` too.

        Raises
        ------
        ValueError
            If ``truncate`` is not a positive ``k2`` or a pair ``(k1, k2)`` with
            ``k2 ≥ k1 ≥ 1`` (or for bad inputs, as for the Elman RNN), or for
            inputs with which a gate pre-activation could pass the dtype's range
            (as :meth:`forward`).

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import LSTM
        >>> m = LSTM.init(2, 3, 2, seed=0)
        >>> x, y = np.ones((6, 2)), np.zeros(6, dtype=int)
        >>> _, g = m.value_and_grad(x, y, truncate=(4, 4))  # blocks 1–4 and 5–6
        >>> bool(np.all(g.flow[0] == 0)), bool(np.all(g.flow_c[0] == 0))
        (True, True)

        Hochreiter & Schmidhuber 1997; Williams & Peng 1990 (BPTT(k1, k2)).
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, batched = self._inputs(x)
        T, B, n_in = x3.shape
        n = self.n_hidden
        sched = self._schedule(truncate, T)
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        h0_, c0_ = self._state("h0", h0, B, batched), self._state("c0", c0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        temporary = _keep_trace_temporary(keep_trace)
        # threads of our own for large batches (then BLAS runs on one thread)
        k = self._threads(T, B)
        with own_threads(k):
            H, C, P = self._run(x3, h0_, c0_, k, temporary=temporary)
            Y = self._readout(H, k)
        value, dZ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H[1:]), loss, tgt, m)
        flow_h = np.empty((T + 1, B, n), dtype=self.dtype)
        flow_c = np.empty((T + 1, B, n), dtype=self.dtype)
        D = self._array("lstm_D", (T, B, 4 * n), True)
        # under full BPTT, a "scratch" trace (train's Ω step) also keeps the halves of the
        # whole-state flow that Ω reads, so Ω need not recompute the gates (omega.py)
        parts: tuple[np.ndarray, ...] = ()
        if keep_trace == "scratch" and sched[1:] == (0, 0):
            parts = (self._array("lstm_UH", (T, B, n), True), self._array("lstm_CC", (T + 1, B, n), True))
        self._backward(GK.lstm_backward, GK.lstm_backward_truncated, dZ, C, P, (flow_h, flow_c, D), sched, k,
                       parts)
        D2 = D.reshape(T * B, 4 * n)
        with own_threads(k), blas_threads_for(T * B * 4 * n * max(n, n_in, self.n_out)):
            g_ih = sum_over_rows(EK.gemm_tn, (D2, x3.reshape(T * B, n_in)), k)
            g_hh = sum_over_rows(EK.gemm_tn, (D2, H[:-1].reshape(T * B, n)), k)
            g_b = sum_over_rows(EK.column_sums, (D2,), k)
            g_yh, g_by = self._readout_grads(dZ, H, k)
        trace = None
        if keep_trace:
            trace = GatedTrace(H, C, P, Y) if batched else GatedTrace(
                H[:, 0], C[:, 0], P[:, 0], None if Y is None else Y[:, 0])
        if not batched:
            flow_h, flow_c = flow_h[:, 0], flow_c[:, 0]
        grads = LSTMGrads(g_ih, g_hh, g_b, g_b.copy(), g_yh, g_by, flow_h, flow_c, trace)
        if parts:  # not a field: valid only until this thread's next call, like the scratch trace
            object.__setattr__(grads, "_omega_parts", (self.weight_hh, trace, D, *parts))
        return value, grads

    def vjp(
        self,
        x: Any,
        dh: Any,
        *,
        h0: Any = None,
        c0: Any = None,
        dc: Any = None,
        batch_first: bool = False,
    ) -> tuple[LSTMGrads, np.ndarray]:
        """The vector–Jacobian product of ``(x, params, h_0, c_0) ↦ (h_1..h_T, c_1..c_T)``.

        For ``E = Σ_t dh_t · h_t + dc_t · c_t`` (``dh[t-1] = ∂E/∂h_t`` and
        ``dc[t-1] = ∂E/∂c_t``, the direct parts; ``dc`` omitted: zero), BPTT
        through the cell gives every parameter's gradient, the total flows
        ``∂E/∂h_k``, ``∂E/∂c_k`` (k = 0..T) and ``∂E/∂x_t = D_t W_ih`` with
        ``D_t = ∂E/∂(gate pre-activations i, f, g, o)`` (``x_t`` enters only
        them). No readout is involved, even when the model has one.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
        dh : array, shape ``(T, n)`` or ``(T, B, n)``
            Cotangent of ``h[1:]``; finite, cast to the model's dtype.
        h0, c0 : array, optional
            Initial states, as in :meth:`forward`.
        dc : array, shape of ``dh``, optional
            Cotangent of ``c[1:]`` (the direct ``∂E/∂c_t``).
        batch_first : bool
            ``x`` is ``(B, T, n_in)``, ``dh`` and ``dc`` ``(B, T, n)``: the layout of a PyTorch
            module built with ``batch_first=True``. A 2-D ``x`` is refused.

        Returns
        -------
        grads : LSTMGrads
            Parameter gradients (readout fields ``None``), ``flow[k] = ∂E/∂h_k``
            and ``flow_c[k] = ∂E/∂c_k`` for ``k = 0..T``; as in
            :meth:`value_and_grad`, ``flow_c[k]`` counts the path through
            ``h_k = σ(o_k) tanh(c_k)`` too (``flow_c[0]`` is the gradient at ``c_0``).
            The flows are always time-major, ``(T+1, B, n)`` with ``batch_first=True`` too.
        dx : ndarray, shape of ``x``
            ``∂E/∂x`` (``(B, T, n_in)`` with ``batch_first=True``).

        Raises
        ------
        ValueError
            On bad ``x``, ``h0``, ``c0`` (as :meth:`forward`), or ``dh``/``dc``
            of the wrong shape or with NaN/inf.
        TypeError
            On a non-float ``dh`` or ``dc``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import LSTM
        >>> m = LSTM.init(2, 3, None, seed=0)
        >>> x = np.ones((4, 2)); dh = np.zeros((4, 3)); dc = np.zeros((4, 3)); dc[-1] = 1.0
        >>> g, dx = m.vjp(x, dh, dc=dc)
        >>> bool(np.array_equal(g.flow_c[-1], dc[-1])), bool(np.all(g.flow[-1] == 0))
        (True, True)

        Hochreiter & Schmidhuber 1997 (BPTT through ``h`` and ``c``).
        """
        x, dh, dc = self._time_major(batch_first, x, dh=dh, dc=dc)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        h0_, c0_ = self._state("h0", h0, B, batched), self._state("c0", c0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        dh3 = self._cotangent("dh", dh, T, B, batched)
        dc3 = None if dc is None else self._cotangent("dc", dc, T, B, batched)
        grads, dx = self._vjp_backward(x3, self._vjp_forward(x3, h0_, c0_), dh3, dc3)
        if batched:
            return grads, self._batch_major(dx, bool(batch_first))
        return LSTMGrads(
            grads.weight_ih, grads.weight_hh, grads.bias_ih, grads.bias_hh, None, None,
            grads.flow[:, 0], grads.flow_c[:, 0],
        ), dx[:, 0]

    def _vjp_forward(
        self, x3: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None, tag: str | None = None
    ) -> tuple[np.ndarray, ...]:
        """The forward pass :meth:`_vjp_backward` reads, on checked arrays (the
        building block of :meth:`vjp` and of stacked models): ``(H, C, P)``, no
        readout; fresh arrays, or per-thread scratch arrays named with ``tag``
        (overwritten by the next call with that tag). ``c0`` None: zeros."""
        T, B = x3.shape[0], x3.shape[1]
        if c0 is None:
            c0 = np.zeros((B, self.n_hidden), dtype=self.dtype)
        k = self._threads(T, B)
        with own_threads(k):
            return self._run(x3, h0, c0, k, temporary=tag is not None, tag=tag or "")

    def _vjp_backward(
        self,
        x3: np.ndarray,
        saved: tuple[np.ndarray, ...],
        dh3: np.ndarray,
        dc3: np.ndarray | None = None,
        need_dx: bool = True,
        parts: str | None = None,
    ) -> tuple[LSTMGrads, np.ndarray]:
        """BPTT of :meth:`vjp` from ``saved = (H, C, P)`` of :meth:`_vjp_forward`
        and the cotangents ``dh3`` (and ``dc3``) ``(T, B, n)``: batched grads
        and ``dx (T, B, n_in)`` (an empty array when not ``need_dx``).

        ``parts`` (a scratch-name suffix, one per layer of a stack; ``dc3`` None):
        also keep ``(D, UH, CC)`` of :func:`lstm_backward` as the record's
        ``_omega_parts``, in scratch arrays of that suffix, for Ω."""
        H, C, P = saved
        T, B, n_in = x3.shape
        n = self.n_hidden
        flow_h = np.empty((T + 1, B, n), dtype=self.dtype)
        flow_c = np.empty((T + 1, B, n), dtype=self.dtype)
        keep = parts is not None and dc3 is None
        tag = parts if parts is not None and keep else ""
        D = self._array("lstm_vjp_D" + tag, (T, B, 4 * n), True)
        UH, CC = ((self._array("lstm_vjp_UH" + tag, (T, B, n), True),
                   self._array("lstm_vjp_CC" + tag, (T + 1, B, n), True)) if keep
                  else (self._no_parts(), self._no_parts()))
        k = self._threads(T, B)
        with own_threads(k):
            if dc3 is None:
                run_rows(GK.lstm_backward, (self.weight_hh, None, read_only(dh3), C, P, flow_h, flow_c, D, UH, CC, 0),
                         B, k)
            else:
                run_rows(GK.lstm_backward_direct,
                         (self.weight_hh, read_only(dh3), read_only(dc3), C, P, flow_h, flow_c, D), B, k)
        D2 = D.reshape(T * B, 4 * n)
        with own_threads(k), blas_threads_for(T * B * 4 * n * max(n, n_in)):
            g_ih = sum_over_rows(EK.gemm_tn, (D2, x3.reshape(T * B, n_in)), k)
            g_hh = sum_over_rows(EK.gemm_tn, (D2, H[:-1].reshape(T * B, n)), k)
            g_b = sum_over_rows(EK.column_sums, (D2,), k)
            dx = (
                readout_rows(D2, self.weight_ih, np.zeros(n_in, self.dtype), k).reshape(T, B, n_in)
                if need_dx else np.empty((0, B, n_in), dtype=self.dtype)
            )
        grads = LSTMGrads(g_ih, g_hh, g_b, g_b.copy(), None, None, flow_h, flow_c)
        if keep:  # not a field: valid only until this thread's next call with the same suffix
            object.__setattr__(grads, "_omega_parts", (D, UH, CC))
        return grads, dx


class GRU(_Gated):
    """A gated recurrent unit (``torch.nn.GRUCell`` conventions) with readout.

    Parameters
    ----------
    weight_ih : array ``(3n, n_in)``
        Input weights of ``(r, z, n)`` stacked; its dtype must match ``weight_hh``'s.
    weight_hh : array ``(3n, n)``
    bias_ih, bias_hh : array ``(3n,)``, optional
    W_yh, b_y : arrays, optional

    Notes
    -----
    The model owns its parameters: it keeps read-only copies of the arrays it
    is given, so changing the caller's arrays afterwards does not change it,
    writing into ``weight_hh`` (or any array of :meth:`params`) raises
    ``ValueError``, and its attributes cannot be reassigned. Forward pass,
    BPTT and the cached transposes read the same values. A changed model is
    a new one: ``model.replace(weight_hh=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import GRU
    >>> m = GRU.init(2, 4, None, seed=0)
    >>> m.forward(np.zeros((3, 2))).h.shape
    (4, 4)

    Cho et al. 2014; PyTorch's GRUCell (reset gate after the hidden matmul).
    """

    GATES = 3
    NAME = "GRU"

    def _run(
        self, x3: np.ndarray, h0: np.ndarray, k: int = 1, temporary: bool = False, tag: str = ""
    ) -> tuple[np.ndarray, np.ndarray]:
        """The forward pass on ``k`` threads (as :meth:`LSTM._run`)."""
        T, B, _ = x3.shape
        n = self.n_hidden
        H = self._array("gru_H" + tag, (T + 1, B, n), temporary)
        P = self._array("gru_P" + tag, (T, B, 4 * n), temporary)
        run_rows(GK.gru_forward, (self._W_ihT, self._W_hhT, self.bias_ih, self.bias_hh, read_only(x3), h0, H, P),
                 B, k)
        return H, P

    def forward(self, x: Any, h0: Any = None, *, batch_first: bool = False) -> GatedTrace:
        """Run the cell over ``x`` (``(T, n_in)`` or ``(T, B, n_in)``); zero ``h_0`` by default.

        Large batches run on threads of our own, as in :meth:`LSTM.forward`.
        ``batch_first=True`` reads ``x`` as ``(B, T, n_in)``, as there. Traces are always time-major, with ``batch_first=True`` too: ``trace.h`` is ``(T+1, B, n)``.

        Raises
        ------
        ValueError
            As :meth:`LSTM.forward` (bad inputs; a gate pre-activation that
            could pass the dtype's range, naming ``x`` or ``h0``).
        """
        x, = self._time_major(batch_first, x)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        h0_ = self._state("h0", h0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        k = self._threads(T, B)
        with own_threads(k):
            H, P = self._run(x3, h0_, k)
            Y = self._readout(H, k)
        if batched:
            return GatedTrace(H, None, P, Y)
        return GatedTrace(H[:, 0], None, P[:, 0], None if Y is None else Y[:, 0])

    def loss(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        batch_first: bool = False,
    ) -> float:
        """The loss (Eq. 4) on a batch, by a forward pass alone.

        The value ``E`` that :meth:`value_and_grad` returns, without the
        backward pass (Hessian-free reads a trial point's loss here).

        Parameters
        ----------
        x, y, loss, mask, h0, batch_first
            As in :meth:`value_and_grad`.

        Returns
        -------
        float
            ``E = Σ_t Σ_b mask[t, b] · E_t``, accumulated in float64; ``inf``
            when it is not finite.

        Raises
        ------
        ValueError, TypeError
            As :meth:`LSTM.loss`.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import GRU
        >>> m = GRU.init(2, 4, 3, seed=0)
        >>> x = np.ones((5, 2)); y = np.array([0, 1, 2, 1, 0])
        >>> bool(m.loss(x, y) == m.value_and_grad(x, y)[0])
        True

        Eq. 4 of the article; Cho et al. 2014.
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        h0_ = self._state("h0", h0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        k = self._threads(T, B)
        with own_threads(k), np.errstate(all="ignore"):
            H, _ = self._run(x3, h0_, k, temporary=True)
            Y = self._readout(H, k)
            value, _ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H[1:]), loss, tgt, m)
        return float(value) if np.isfinite(value) else float("inf")

    def gauss_newton(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        lam_struct: float = 0.0,
    ) -> GaussNewton:
        """The Gauss–Newton matrix of the loss at these parameters, as a product ``v ↦ G v``.

        .. math::

            G v = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t} v
                  + λ_s \\sum_{b,t} J_{h_t}^⊤ J_{h_t} v

        As :meth:`LSTM.gauss_newton`; the GRU's state is ``h`` alone, so
        structural damping penalises the change of ``h_t``.

        Parameters
        ----------
        x, y, loss, mask, h0
            As in :meth:`value_and_grad`.
        lam_struct : float
            Structural-damping weight ``λ_s ≥ 0``.

        Returns
        -------
        GaussNewton

        Raises
        ------
        ValueError, TypeError
            As :meth:`LSTM.gauss_newton`.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import GRU
        >>> m = GRU.init(2, 4, 3, seed=0)
        >>> rng = np.random.default_rng(0)
        >>> G = m.gauss_newton(rng.normal(size=(6, 2)), rng.integers(0, 3, 6))
        >>> v = rng.normal(size=G.n_params)
        >>> bool(v @ G(v) >= 0)
        True

        Martens & Sutskever 2011, §3–4; Schraudolph 2002.
        """
        return GaussNewton(self, x, y, loss=loss, mask=mask, h0=h0, lam_struct=lam_struct)

    def value_and_grad(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        truncate: int | tuple[int, int] | None = None,
        batch_first: bool = False,
        keep_trace: bool | str = False,
    ) -> tuple[float, GRUGrads]:
        """Loss and its gradient by BPTT.

        Backpropagation through time for ``h_t = (1 − σ(z_t))⊙n_t + σ(z_t)⊙h_{t−1}``:
        ``∂E/∂h_{t−1} = (∂E/∂a_t) W_hh + ∂E/∂h_t⊙σ(z_t)`` with ``a_t`` the
        hidden-side pre-activations.

        Parameters
        ----------
        x, y, loss, mask, h0
            As in :meth:`rnntheory.ElmanRNN.value_and_grad`.
        truncate : int or (int, int), optional
            Truncated BPTT, every schedule of
            :meth:`rnntheory.ElmanRNN.value_and_grad` (sliding window ``k2``;
            Williams & Peng's BPTT(k1, k2); chunks ``(k, k)``), with the same
            semantics: the contribution of ``E_t`` through ``h_k`` is kept when
            ``e(t) − k < k2``. ``flow`` is truncated the same way.
        batch_first : bool
            ``x`` is ``(B, T, n_in)``, ``y`` ``(B, T)`` or ``(B, T, n_out)``,
            ``mask`` ``(B, T)``: the layout of a PyTorch
            module built with ``batch_first=True``. A 2-D ``x`` is refused.
        keep_trace : bool or "scratch"
            Also return the forward pass as ``grads.trace`` (a :class:`GatedTrace`,
            time-major); ``"scratch"`` returns it in per-thread scratch arrays that
            the next call overwrites (no fresh allocation; what
            :class:`~rnntheory.remedies.Omega` uses within one step). Under
            full BPTT, ``"scratch"`` also keeps, in the same way, the flow's
            part ``u = J_{k+1}ᵀ v_{k+1}`` that :func:`~rnntheory.remedies.omega`
            reads when this record is its ``flow`` (the gates are then not
            recomputed); nothing else the call returns changes.

        Returns
        -------
        loss : float
            ``E = Σ_t Σ_b mask[t, b] · E_t``.
        grads : GRUGrads
            Parameter gradients and ``flow[k] = ∂E/∂h_k`` for ``k = 0..T``. The
            flow is always time-major, ``(T+1, B, n)`` with ``batch_first=True`` too.

        Raises
        ------
        ValueError
            As :meth:`LSTM.value_and_grad`.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import GRU
        >>> m = GRU.init(2, 3, 2, seed=0)
        >>> x, y = np.ones((5, 2)), np.zeros(5, dtype=int)
        >>> _, g = m.value_and_grad(x, y, truncate=1)  # E_t reaches h_t only
        >>> bool(np.all(g.flow[0] == 0)), bool(np.any(g.flow[1] != 0))
        (True, True)

        Cho et al. 2014; Williams & Peng 1990 (BPTT(k1, k2)).
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, batched = self._inputs(x)
        T, B, n_in = x3.shape
        n = self.n_hidden
        sched = self._schedule(truncate, T)
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        h0_ = self._state("h0", h0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        temporary = _keep_trace_temporary(keep_trace)
        # threads of our own for large batches (then BLAS runs on one thread)
        k = self._threads(T, B)
        with own_threads(k):
            H, P = self._run(x3, h0_, k, temporary=temporary)
            Y = self._readout(H, k)
        value, dZ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H[1:]), loss, tgt, m)
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        D_hid = self._array("gru_Dh", (T, B, 3 * n), True)
        D_in = self._array("gru_Di", (T, B, 3 * n), True)
        # under full BPTT, a "scratch" trace (train's Ω step) also keeps u = J_{k+1}ᵀ v_{k+1} for Ω
        parts: tuple[np.ndarray, ...] = ()
        if keep_trace == "scratch" and sched[1:] == (0, 0):
            parts = (self._array("gru_UH", (T, B, n), True),)
        self._backward(GK.gru_backward, GK.gru_backward_truncated, dZ, H, P, (flow, D_hid, D_in), sched, k,
                       parts)
        Dh = D_hid.reshape(T * B, 3 * n)
        Di = D_in.reshape(T * B, 3 * n)
        with own_threads(k), blas_threads_for(T * B * 3 * n * max(n, n_in, self.n_out)):
            g_ih = sum_over_rows(EK.gemm_tn, (Di, x3.reshape(T * B, n_in)), k)
            g_hh = sum_over_rows(EK.gemm_tn, (Dh, H[:-1].reshape(T * B, n)), k)
            g_bi = sum_over_rows(EK.column_sums, (Di,), k)
            g_bh = sum_over_rows(EK.column_sums, (Dh,), k)
            g_yh, g_by = self._readout_grads(dZ, H, k)
        trace = None
        if keep_trace:
            trace = GatedTrace(H, None, P, Y) if batched else GatedTrace(
                H[:, 0], None, P[:, 0], None if Y is None else Y[:, 0])
        if not batched:
            flow = flow[:, 0]
        grads = GRUGrads(g_ih, g_hh, g_bi, g_bh, g_yh, g_by, flow, trace)
        if parts:  # not a field: valid only until this thread's next call, like the scratch trace
            object.__setattr__(grads, "_omega_parts", (self.weight_hh, trace, D_hid, parts[0], None))
        return value, grads

    def vjp(
        self,
        x: Any,
        dh: Any,
        *,
        h0: Any = None,
        c0: Any = None,
        dc: Any = None,
        batch_first: bool = False,
    ) -> tuple[GRUGrads, np.ndarray]:
        """The vector–Jacobian product of ``(x, params, h_0) ↦ (h_1, …, h_T)``.

        For ``E = Σ_t dh_t · h_t`` (``dh[t-1] = ∂E/∂h_t``, the direct part),
        BPTT through the cell gives every parameter's gradient, the total flow
        ``∂E/∂h_k`` (k = 0..T) and ``∂E/∂x_t = D^in_t W_ih`` with ``D^in_t``
        the gradient at the input-side pre-activations ``(r, z, W_in x_t +
        b_in)``. No readout is involved, even when the model has one.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
        dh : array, shape ``(T, n)`` or ``(T, B, n)``
            Cotangent of ``h[1:]``; finite, cast to the model's dtype.
        h0 : array, optional
            Initial state, as in :meth:`forward`.
        c0, dc : None
            For the LSTM only (the signature is shared); must be ``None``.
        batch_first : bool
            ``x`` is ``(B, T, n_in)`` and ``dh`` ``(B, T, n)``: the layout of a PyTorch
            module built with ``batch_first=True``. A 2-D ``x`` is refused.

        Returns
        -------
        grads : GRUGrads
            Parameter gradients (readout fields ``None``) and
            ``flow[k] = ∂E/∂h_k`` for ``k = 0..T``. The flow is always
            time-major, ``(T+1, B, n)`` with ``batch_first=True`` too.
        dx : ndarray, shape of ``x``
            ``∂E/∂x`` (``(B, T, n_in)`` with ``batch_first=True``).

        Raises
        ------
        ValueError
            On bad ``x`` or ``h0`` (as :meth:`forward`), ``dh`` of the wrong
            shape or with NaN/inf, or ``c0``/``dc`` given.
        TypeError
            On a non-float ``dh``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import GRU
        >>> m = GRU.init(2, 3, None, seed=0)
        >>> g, dx = m.vjp(np.ones((4, 2)), np.ones((4, 3)))
        >>> g.flow.shape, dx.shape
        ((5, 3), (4, 2))

        Cho et al. 2014 (BPTT through the GRU).
        """
        if c0 is not None or dc is not None:
            name = "c0" if c0 is not None else "dc"
            raise ValueError(f"`{name}` applies to the LSTM only; a GRU has no cell state")
        x, dh = self._time_major(batch_first, x, dh=dh)
        x3, batched = self._inputs(x)
        T, B = x3.shape[0], x3.shape[1]
        h0_ = self._state("h0", h0, B, batched)
        self._check_reach(x3, None if h0 is None else h0_)
        dh3 = self._cotangent("dh", dh, T, B, batched)
        grads, dx = self._vjp_backward(x3, self._vjp_forward(x3, h0_), dh3)
        if batched:
            return grads, self._batch_major(dx, bool(batch_first))
        return GRUGrads(
            grads.weight_ih, grads.weight_hh, grads.bias_ih, grads.bias_hh, None, None, grads.flow[:, 0]
        ), dx[:, 0]

    def _vjp_forward(
        self, x3: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None, tag: str | None = None
    ) -> tuple[np.ndarray, ...]:
        """The forward pass :meth:`_vjp_backward` reads, on checked arrays:
        ``(H, P)``, no readout (``c0`` is ignored); fresh arrays, or per-thread
        scratch arrays named with ``tag``."""
        T, B = x3.shape[0], x3.shape[1]
        k = self._threads(T, B)
        with own_threads(k):
            return self._run(x3, h0, k, temporary=tag is not None, tag=tag or "")

    def _vjp_backward(
        self,
        x3: np.ndarray,
        saved: tuple[np.ndarray, ...],
        dh3: np.ndarray,
        dc3: np.ndarray | None = None,
        need_dx: bool = True,
        parts: str | None = None,
    ) -> tuple[GRUGrads, np.ndarray]:
        """BPTT of :meth:`vjp` from ``saved = (H, P)`` of :meth:`_vjp_forward` and
        ``dh3 (T, B, n)``: batched grads and ``dx (T, B, n_in)`` (an empty array
        when not ``need_dx``).

        ``parts`` (a scratch-name suffix, one per layer of a stack): also keep
        ``(D_hid, UH, None)`` of :func:`gru_backward` as the record's
        ``_omega_parts``, in scratch arrays of that suffix, for Ω."""
        H, P = saved
        T, B, n_in = x3.shape
        n = self.n_hidden
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        tag = parts or ""
        D_hid = self._array("gru_vjp_Dh" + tag, (T, B, 3 * n), True)
        D_in = self._array("gru_vjp_Di", (T, B, 3 * n), True)
        UH = self._array("gru_vjp_UH" + tag, (T, B, n), True) if parts is not None else self._no_parts()
        k = self._threads(T, B)
        with own_threads(k):
            run_rows(GK.gru_backward, (self.weight_hh, None, read_only(dh3), H, P, flow, D_hid, D_in, UH, 0), B, k)
        Dh = D_hid.reshape(T * B, 3 * n)
        Di = D_in.reshape(T * B, 3 * n)
        with own_threads(k), blas_threads_for(T * B * 3 * n * max(n, n_in)):
            g_ih = sum_over_rows(EK.gemm_tn, (Di, x3.reshape(T * B, n_in)), k)
            g_hh = sum_over_rows(EK.gemm_tn, (Dh, H[:-1].reshape(T * B, n)), k)
            g_bi = sum_over_rows(EK.column_sums, (Di,), k)
            g_bh = sum_over_rows(EK.column_sums, (Dh,), k)
            dx = (
                readout_rows(Di, self.weight_ih, np.zeros(n_in, self.dtype), k).reshape(T, B, n_in)
                if need_dx else np.empty((0, B, n_in), dtype=self.dtype)
            )
        grads = GRUGrads(g_ih, g_hh, g_bi, g_bh, None, None, flow)
        if parts is not None:  # not a field: valid only until this thread's next call with the same suffix
            object.__setattr__(grads, "_omega_parts", (D_hid, UH, None))
        return grads, dx
