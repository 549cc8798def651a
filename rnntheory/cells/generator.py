"""Generator RNNs whose output feeds back as the next input: teacher forcing,
free running and scheduled sampling (claim C23 of the article).

The model is an Elman network in the standard form with an output-feedback
matrix ``W_hy``::

    a_t = W_hh h_{t−1} + W_hx x_t + W_hy o^fb_t + b_h,    h_t = f(a_t),
    z_t = W_yh h_t + b_y,                                  o_t = s(z_t),

where ``s`` is the softmax for ``loss="xent"`` (``o_t`` the predicted
probabilities) and the identity for ``loss="mse"`` (``o_t = z_t``). The value fed
into step ``t`` is ``o^fb_1 = o_0`` (a start value, zeros by default) and, for
``t ≥ 2``, per ``mode``:

* ``"teacher"`` (teacher forcing): the target ``y_{t−1}`` (one-hot for
  ``"xent"``, the target vector for ``"mse"``). The fed-back value is a
  constant: its Jacobian with respect to every parameter is zero, so the
  gradient has no path through earlier outputs and equals the gradient of a
  plain Elman network whose input is ``[x_t, y_{t−1}]``.
* ``"free"`` (free running): the model's own previous output ``o_{t−1}``;
  backpropagation through time follows the feedback path
  ``o_{t−1} → a_t`` back into ``h_{t−1}``.
* ``"scheduled"`` (scheduled sampling, Bengio et al. 2015): at each step
  ``t ≥ 2`` and for each sequence, independently, the own output with
  probability ``p`` and the target otherwise. The coin flips come from
  ``numpy.random.default_rng(seed)`` (one array ``(T−1, B)`` of uniforms drawn
  before the pass) and are constants of the gradient: the sampling choice
  itself is not differentiated, but where the own output is fed the gradient
  flows through it exactly as in free running. ``p = 0`` is teacher forcing and
  ``p = 1`` free running, exactly.

Stacks (``n_layers ≥ 2``, any of the three cells): the top layer's output is
fed back into the bottom layer's input ``[x_t; o^fb_t]``; under teacher
forcing the model is the :class:`~rnntheory.StackedRNN` on ``[x_t; y_{t−1}]``.

Losses are summed over steps and sequences (Eq. 4), with an optional mask of
per-step weights, as for :class:`~rnntheory.ElmanRNN`. Only ``n_in ≥ 1`` is
supported: a generator without external inputs is one whose inputs are zeros
(what :meth:`GeneratorRNN.generate` feeds).

Examples
--------
>>> import numpy as np
>>> from rnntheory.cells.generator import GeneratorRNN
>>> model = GeneratorRNN.init(1, 6, 3, seed=0)
>>> x, y = np.zeros((5, 1)), np.array([0, 1, 2, 0, 1])
>>> E_tf, g_tf = model.value_and_grad(x, y, loss="xent", mode="teacher")
>>> E_fr, g_fr = model.value_and_grad(x, y, loss="xent", mode="free")
>>> bool(np.allclose(g_tf.W_hh, g_fr.W_hh))   # the feedback path matters
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._parallel import blas_threads_for, own_threads, threads_for
from .._validation import (
    abs_max,
    as_float_array,
    as_generator,
    as_model_dtype,
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
from ..activations import Activation, get_activation
from . import _elman_kernels as K
from . import _gated_kernels as GK
from . import _generator_kernels as G
from ._base import (
    LOSSES,
    GradsBase,
    SequenceModel,
    TraceBase,
    readout_rows,
    recurrent_matrix,
    same_dtype,
    sum_over_rows,
)
from .elman import ElmanGrads, ElmanRNN
from .gated import GRU, LSTM, GRUGrads, LSTMGrads
from .stacked import StackedGrads, StackedRNN

__all__ = [
    "CELLS", "MODES", "GatedGeneratorGrads", "GeneratorGrads", "GeneratorRNN", "GeneratorTrace",
    "StackedGeneratorGrads",
]

MODES = ("free", "teacher", "scheduled")
CELLS = ("elman", "lstm", "gru")


@dataclass(frozen=True)
class GeneratorTrace(TraceBase):
    """What a forward pass of a :class:`GeneratorRNN` leaves behind.

    Attributes
    ----------
    h : ndarray, shape ``(T+1, n)`` or ``(T+1, B, n)``
        Hidden states; ``h[0]`` is ``h_0``.
    a : ndarray, shape ``(T, n)`` or ``(T, B, n)``
        Pre-activations; ``a[t-1]`` is ``a_t``.
    y : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        Readouts ``z_t = W_yh h_t + b_y`` (the logits for ``"xent"``).
    o : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        The model's own outputs ``o_t = s(z_t)`` (softmax probabilities for
        ``"xent"``, ``z_t`` itself for ``"mse"``).
    fed : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        ``fed[t-1]`` is the value fed into step ``t`` (``fed[0]`` the start value).
    own : ndarray of bool, shape ``(T,)`` or ``(T, B)``
        ``own[t-1]`` is whether ``fed[t-1]`` is the model's own output ``o_{t−1}``
        (always ``False`` at ``t = 1``).
    c : ndarray or None
        LSTM generators: the cell states, shaped as ``h`` (``c[0] = c_0``);
        ``None`` for the Elman and GRU generators.
    s : ndarray or None
        Stacked generators (``n_layers ≥ 2``): the whole state ``s_k`` for
        ``k = 0..T``, ``(T+1, S)`` or ``(T+1, B, S)``, the layers' states
        concatenated, layer 0 first, LSTM layers ``h`` then ``c`` (as
        :attr:`rnntheory.StackedTrace.state`); ``None`` for one layer. Then
        ``h``, ``a`` and ``c`` are those of the top layer.

    Notes
    -----
    For the gated generators ``a`` holds the gate pre-activations of each step,
    shape ``(T, 4n)`` or ``(T, B, 4n)``, laid out as ``GatedTrace.pre``: LSTM
    ``(i, f, g, o)``; GRU ``(r, z, n, W_hn h_{t−1} + b_hn)``.
    """

    h: np.ndarray
    a: np.ndarray
    y: np.ndarray
    o: np.ndarray
    fed: np.ndarray
    own: np.ndarray
    c: np.ndarray | None = None
    s: np.ndarray | None = None


@dataclass(frozen=True)
class GeneratorGrads(GradsBase):
    """Gradients of the loss, one field per parameter, plus the gradient flow.

    Attributes
    ----------
    W_hh, W_hx, W_hy, b_h, W_yh, b_y : ndarray
        ``∂E/∂W_hh`` etc., shaped as the parameters (total derivatives, through
        the feedback path where the own output was fed).
    flow : ndarray, shape ``(T+1, n)`` or ``(T+1, B, n)``
        ``flow[k] = ∂E/∂h_k`` for k = 0..T, through every later step (and through
        the fed-back outputs in free running).
    feedback : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        ``feedback[t-1] = ∂E/∂o^fb_t = W_hyᵀ δ_t``: the derivative of the loss with
        respect to the value fed into step ``t``, holding it as an input. Under
        teacher forcing it is generally nonzero, but it reaches no parameter: the
        fed-back target does not depend on them.
    """

    W_hh: np.ndarray
    W_hx: np.ndarray
    W_hy: np.ndarray
    b_h: np.ndarray
    W_yh: np.ndarray
    b_y: np.ndarray
    flow: np.ndarray = field(repr=False)
    feedback: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class GatedGeneratorGrads(GradsBase):
    """Gradients of an LSTM or GRU :class:`GeneratorRNN`, one field per parameter.

    Attributes
    ----------
    weight_ih, weight_hh, bias_ih, bias_hh, W_yh, b_y : ndarray
        ``∂E/∂weight_ih`` etc., shaped as the parameters (total derivatives,
        through the feedback path where the own output was fed).
        ``weight_ih`` reads ``[x_t; o^fb_t]``: its first ``n_in`` columns are
        the input weights, the last ``m`` the feedback weights.
    flow : ndarray, shape ``(T+1, n)`` or ``(T+1, B, n)``
        ``flow[k] = ∂E/∂h_k`` for k = 0..T.
    flow_c : ndarray or None
        LSTM: ``flow_c[k] = ∂E/∂c_k`` (as :class:`~rnntheory.LSTM` reports it);
        ``None`` for the GRU.
    feedback : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        ``feedback[t-1] = ∂E/∂o^fb_t``, the derivative with respect to the value
        fed into step ``t`` held as an input: ``D_t W_f`` with ``D_t`` the
        gradient at the (input-side, for the GRU) gate pre-activations and
        ``W_f`` the feedback columns of ``weight_ih``.
    """

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    W_yh: np.ndarray
    b_y: np.ndarray
    flow: np.ndarray = field(repr=False)
    flow_c: np.ndarray | None = field(repr=False)
    feedback: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class StackedGeneratorGrads(StackedGrads):
    """Gradients of a stacked :class:`GeneratorRNN` (``n_layers ≥ 2``).

    Attributes
    ----------
    layers, W_yh, b_y, flow
        As :class:`~rnntheory.StackedGrads`: per-layer gradient records
        (layer 0's input matrix reads ``[x_t; o^fb_t]``: its first ``n_in``
        columns act on the inputs, the last ``m`` on the fed-back value),
        the readout's, and ``flow[k] = ∂E/∂s_k`` of the whole state (through
        the fed-back outputs where the own output was fed). ``params()`` keys
        are those of :meth:`GeneratorRNN.params`.
    feedback : ndarray, shape ``(T, m)`` or ``(T, B, m)``
        ``feedback[t-1] = ∂E/∂o^fb_t``, the derivative with respect to the
        value fed into step ``t`` held as an input (``D^0_t W_f``: the
        gradient at layer 0's input-side pre-activations times the feedback
        columns of its input matrix).
    """

    feedback: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


class GeneratorRNN(SequenceModel):
    """A recurrent network whose output feeds back as the next input: an Elman
    RNN (standard form, the default), an LSTM or a GRU.

    ``cell="elman"``: ``a_t = W_hh h_{t−1} + W_hx x_t + W_hy o^fb_t + b_h``,
    ``h_t = f(a_t)``, ``z_t = W_yh h_t + b_y``; the fed-back value ``o^fb_t``
    depends on the mode (see the module docstring).

    ``cell="lstm"`` or ``"gru"``: the cell of :class:`~rnntheory.LSTM` /
    :class:`~rnntheory.GRU` (PyTorch's ``LSTMCell`` / ``GRUCell``) reading the
    concatenated input ``[x_t; o^fb_t]``: one input matrix ``weight_ih``
    ``(G·n, n_in + m)`` whose first ``n_in`` columns act on ``x_t`` and whose
    last ``m`` columns ``W_f`` act on the fed-back value (G = 4 gates
    ``(i, f, g, o)`` for the LSTM, 3 ``(r, z, n)`` for the GRU), then
    ``z_t = W_yh h_t + b_y``, ``o_t = s(z_t)``. So the gated generator *is* the
    gated cell run on ``[x_t; o^fb_t]``; under teacher forcing that input is
    data and the model computes exactly what the cell computes on it.

    Parameters
    ----------
    W_hh : array, shape ``(n, n)``
        Elman: recurrent weights; their dtype (float32 or float64) is the compute dtype.
    W_hx : array, shape ``(n, n_in)``, ``n_in ≥ 1``
        Elman: input weights.
    W_hy : array, shape ``(n, m)``
        Elman: output-feedback weights.
    b_h : array, shape ``(n,)``
        Elman: hidden bias.
    W_yh : array, shape ``(m, n)``
        Readout weights (every cell).
    b_y : array, shape ``(m,)``
        Readout bias (every cell).
    activation : {"tanh", "sigmoid", "identity", "relu"}
        Elman: the hidden nonlinearity ``f`` (gated cells: leave it at ``"tanh"``;
        their nonlinearities are fixed).
    cell : {"elman", "lstm", "gru"}
        The recurrent cell.
    weight_ih : array, shape ``(G·n, n_in + m)``, ``n_in ≥ 1``
        Gated cells: input weights over ``[x_t; o^fb_t]``; with ``weight_hh``
        it sets the compute dtype.
    weight_hh : array, shape ``(G·n, n)``
        Gated cells: recurrent weights.
    bias_ih, bias_hh : array, shape ``(G·n,)``, optional
        Gated cells: biases (zeros when omitted).
    layers : sequence of ElmanRNN, LSTM or GRU, optional
        A stacked generator (``n_layers = len(layers)``): the layers of a
        :class:`~rnntheory.StackedRNN`, bottom first, of the class named by
        ``cell``, without readouts, with ``W_yh``, ``b_y`` its readout on the
        top layer. The top layer's output is fed back into the **bottom**
        layer: layer 0 reads ``[x_t; o^fb_t]`` (``n_in + m`` inputs, its
        input matrix's last ``m`` columns act on the fed-back value), layer
        ``l ≥ 1`` reads ``h^{l−1}_t``. Elman layers must be in the standard
        form without a leak (the form the one-layer generator has); their
        activations may differ. Under teacher forcing the stacked generator
        *is* the :class:`~rnntheory.StackedRNN` run on ``[x_t; y_{t−1}]``.

    Raises
    ------
    ValueError
        On a non-square ``W_hh``, mismatched shapes, ``n_in = 0``, non-finite
        weights, an unknown activation or cell, or parameters of the other
        kind of cell.
    TypeError
        On non-float weights or weights of different dtypes.

    Notes
    -----
    The model owns its parameters: it keeps read-only copies of the arrays it
    is given, so changing the caller's arrays afterwards does not change it,
    writing into ``W_hh`` (or any array of :meth:`params`) raises
    ``ValueError``, and its attributes cannot be reassigned. Forward pass,
    BPTT and the cached transposes read the same values. A changed model is
    a new one: ``model.replace(W_hh=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.cells.generator import GeneratorRNN
    >>> model = GeneratorRNN.init(2, 8, 3, seed=0)
    >>> tr = model.forward(np.zeros((5, 2)), mode="free")
    >>> tr.h.shape, tr.o.shape, bool(tr.own[1:].all())
    ((6, 8), (5, 3), True)
    >>> lstm = GeneratorRNN.init(2, 8, 3, cell="lstm", seed=0)
    >>> lstm.weight_ih.shape, lstm.forward(np.zeros((5, 2)), mode="free").c.shape
    ((32, 5), (6, 8))
    >>> deep = GeneratorRNN.init(2, 8, 3, cell="gru", n_layers=2, seed=0)
    >>> deep.params()["weight_ih_l0"].shape, deep.forward(np.zeros((5, 2)), mode="free").s.shape
    ((24, 5), (6, 16))

    Claim C23 of the article (teacher forcing); Williams & Zipser 1989.
    """

    def __init__(
        self,
        W_hh: Any = None,
        W_hx: Any = None,
        W_hy: Any = None,
        b_h: Any = None,
        W_yh: Any = None,
        b_y: Any = None,
        *,
        activation: str | Activation = "tanh",
        cell: str = "elman",
        weight_ih: Any = None,
        weight_hh: Any = None,
        bias_ih: Any = None,
        bias_hh: Any = None,
        layers: Any = None,
    ) -> None:
        cell = check_choice("cell", cell, CELLS)
        self.cell: str = cell
        if layers is not None:
            self._init_stacked(
                cell, layers, W_hh, W_hx, W_hy, b_h, W_yh, b_y, activation, weight_ih, weight_hh, bias_ih, bias_hh
            )
            return
        if cell != "elman":
            self._init_gated(
                cell, W_hh, W_hx, W_hy, b_h, W_yh, b_y, activation, weight_ih, weight_hh, bias_ih, bias_hh
            )
            return
        for name, v in (("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias_ih", bias_ih),
                        ("bias_hh", bias_hh)):
            if v is not None:
                raise ValueError(f"`{name}` is a parameter of the gated generators (cell='lstm' or 'gru'), "
                                 "not of cell='elman'")
        W_hh = recurrent_matrix(W_hh)
        n = W_hh.shape[0]
        dtype = W_hh.dtype
        W_hx = same_dtype("W_hx", as_float_array("W_hx", W_hx, ndim=2), dtype, "W_hh")
        if W_hx.shape[0] != n or W_hx.shape[1] == 0:
            raise ValueError(
                f"`W_hx` must have shape ({n}, n_in) with n_in >= 1, got shape {W_hx.shape}"
            )
        W_yh = same_dtype("W_yh", as_float_array("W_yh", W_yh, ndim=2), dtype, "W_hh")
        if W_yh.shape[1] != n or W_yh.shape[0] == 0:
            raise ValueError(
                f"`W_yh` must have shape (m, {n}) with m >= 1, got shape {W_yh.shape}"
            )
        m = W_yh.shape[0]
        W_hy = same_dtype("W_hy", as_float_array("W_hy", W_hy, ndim=2), dtype, "W_hh")
        check_shape("W_hy", W_hy, (n, m))
        b_h = same_dtype("b_h", as_float_array("b_h", b_h, ndim=1), dtype, "W_hh")
        check_shape("b_h", b_h, (n,))
        b_y = same_dtype("b_y", as_float_array("b_y", b_y, ndim=1), dtype, "W_hh")
        check_shape("b_y", b_y, (m,))
        self.activation: Activation = get_activation(activation)
        # the model owns read-only copies (every pass reads these same arrays)
        self.W_hh, self.W_hx = frozen_array(W_hh), frozen_array(W_hx)
        self.W_hy, self.b_h = frozen_array(W_hy), frozen_array(b_h)
        self.W_yh: np.ndarray = frozen_array(W_yh)
        self.b_y: np.ndarray = frozen_array(b_y)
        self.dtype: np.dtype = dtype
        self._freeze()

    def _init_gated(
        self, cell: str, W_hh: Any, W_hx: Any, W_hy: Any, b_h: Any, W_yh: Any, b_y: Any,
        activation: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any, bias_hh: Any,
    ) -> None:
        """The constructor of an LSTM or GRU generator: the cell (with its
        readout) built by :class:`~rnntheory.LSTM` / :class:`~rnntheory.GRU`,
        which validates and owns the arrays; the generator holds the same ones."""
        for name, v in (("W_hh", W_hh), ("W_hx", W_hx), ("W_hy", W_hy), ("b_h", b_h)):
            if v is not None:
                raise ValueError(
                    f"`{name}` is a parameter of cell='elman'; the {cell.upper()} generator takes "
                    "`weight_ih` over [x_t; o^fb_t], `weight_hh`, `bias_ih`, `bias_hh`, `W_yh`, `b_y`"
                )
        if not (isinstance(activation, str) and activation == "tanh"):
            raise ValueError(
                f"`activation` applies to cell='elman' only (the {cell.upper()}'s nonlinearities are "
                f"fixed), got {activation!r}"
            )
        if weight_ih is None or weight_hh is None or W_yh is None:
            missing = next(k for k, v in (("weight_ih", weight_ih), ("weight_hh", weight_hh), ("W_yh", W_yh))
                           if v is None)
            raise ValueError(f"`{missing}` is required for cell={cell!r}")
        core = (LSTM if cell == "lstm" else GRU)(weight_ih, weight_hh, bias_ih, bias_hh, W_yh, b_y)
        assert core.W_yh is not None and core.b_y is not None
        G_n, cols = core.weight_ih.shape
        m = core.W_yh.shape[0]
        if cols < m + 1:
            raise ValueError(
                f"`weight_ih` must have shape ({G_n}, n_in + {m}) with n_in >= 1 (it reads "
                f"[x_t; o^fb_t], m = {m} fed-back values), got shape {core.weight_ih.shape}"
            )
        n_in = cols - m
        self._core = core
        self.weight_ih, self.weight_hh = core.weight_ih, core.weight_hh
        self.bias_ih, self.bias_hh = core.bias_ih, core.bias_hh
        self.W_yh, self.b_y = core.W_yh, core.b_y
        self.dtype = core.dtype
        # the column blocks of weight_ih the feedback kernels read
        self._W_xT = transposed(core.weight_ih[:, :n_in])
        self._W_fT = transposed(core.weight_ih[:, n_in:])
        self._W_f = np.ascontiguousarray(core.weight_ih[:, n_in:])
        self._W_yhT = transposed(core.W_yh)
        self._freeze()

    def _init_stacked(
        self, cell: str, layers: Any, W_hh: Any, W_hx: Any, W_hy: Any, b_h: Any, W_yh: Any, b_y: Any,
        activation: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any, bias_hh: Any,
    ) -> None:
        """The constructor of a stacked generator: the layers and readout
        validated by :class:`~rnntheory.StackedRNN`, which owns them."""
        for name, v in (("W_hh", W_hh), ("W_hx", W_hx), ("W_hy", W_hy), ("b_h", b_h), ("weight_ih", weight_ih),
                        ("weight_hh", weight_hh), ("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if v is not None:
                raise ValueError(
                    f"`{name}` is a parameter of a one-layer generator; a stacked generator takes `layers` "
                    "(each holding its own parameters), `W_yh` and `b_y`"
                )
        if not (isinstance(activation, str) and activation == "tanh"):
            raise ValueError(
                f"`activation` applies to a one-layer Elman generator (a stack's Elman layers carry their own), "
                f"got {activation!r}"
            )
        if W_yh is None:
            raise ValueError("`W_yh` is required for a stacked generator (its output is fed back)")
        stack = StackedRNN(layers, W_yh, b_y)
        if stack.cell != cell:
            raise ValueError(
                f"`layers` must be {cell.upper() if cell != 'elman' else 'ElmanRNN'} layers for cell={cell!r}, "
                f"got {type(stack.layers[0]).__name__} layers"
            )
        for i, layer in enumerate(stack.layers):
            if isinstance(layer, ElmanRNN) and (layer.form != "standard" or layer.alpha is not None):
                raise ValueError(
                    f"`layers[{i}]` must be an Elman layer in the standard form without a leak (the form of "
                    f"the generator), got form={layer.form!r}"
                    + ("" if layer.alpha is None else " with a leak alpha")
                )
        assert stack.W_yh is not None and stack.b_y is not None
        m = stack.W_yh.shape[0]
        l0 = stack.layers[0]
        W0 = l0.W_hx if isinstance(l0, ElmanRNN) else l0.weight_ih
        if l0.n_in < m + 1:
            raise ValueError(
                f"`layers[0]` must read n_in + {m} inputs with n_in >= 1 ([x_t; o^fb_t], m = {m} fed-back "
                f"values), got an input matrix of shape {W0.shape}"
            )
        n_in = l0.n_in - m
        self._stack = stack
        self.layers: tuple[Any, ...] = stack.layers
        self.W_yh, self.b_y = stack.W_yh, stack.b_y
        self.dtype = stack.dtype
        L, n, dt = stack.n_layers, stack.n_hidden, stack.dtype
        elman = cell == "elman"

        def w_in(layer: Any) -> np.ndarray:
            return np.asarray(layer.W_hx if elman else layer.weight_ih)

        def w_hh(layer: Any) -> np.ndarray:
            return np.asarray(layer.W_hh if elman else layer.weight_hh)

        Gn = w_hh(l0).shape[0]
        # the kernels' stacked per-layer arrays (see _generator_kernels)
        self._k_W_xT = transposed(W0[:, :n_in])
        self._k_W_fT = transposed(W0[:, n_in:])
        self._k_W_f = np.ascontiguousarray(W0[:, n_in:])
        ups = [w_in(layer) for layer in stack.layers[1:]] or [np.zeros((Gn, n), dt)]
        self._k_W_up = np.ascontiguousarray(np.stack(ups))
        self._k_W_upT = np.ascontiguousarray(np.stack([u.T for u in ups]))
        self._k_W_hh = np.ascontiguousarray(np.stack([w_hh(layer) for layer in stack.layers]))
        self._k_W_hhT = np.ascontiguousarray(np.stack([w_hh(layer).T for layer in stack.layers]))
        ls: tuple[Any, ...] = stack.layers
        if elman:
            self._k_b_ih = np.ascontiguousarray(np.stack([layer.b_h for layer in ls]))
            self._k_b_hh = np.zeros((L, Gn), dt)
            self._k_acts = np.array([layer.activation.code for layer in ls], dtype=np.int64)
        else:
            self._k_b_ih = np.ascontiguousarray(np.stack([layer.bias_ih for layer in ls]))
            self._k_b_hh = np.ascontiguousarray(np.stack([layer.bias_hh for layer in ls]))
            self._k_acts = np.zeros(L, dtype=np.int64)
        self._W_yhT = transposed(stack.W_yh)
        self._freeze()

    @property
    def _is_stack(self) -> bool:
        return "_stack" in self.__dict__

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of layers ``L`` (1 unless built from ``layers``)."""
        return self._stack.n_layers if self._is_stack else 1

    @property
    def state_size(self) -> int:
        """Size ``S`` of the whole state ``s``: ``L·n``, ``2·L·n`` for LSTM layers."""
        return self.n_layers * self.n_hidden * (2 if self.cell == "lstm" else 1)

    @property
    def n_hidden(self) -> int:
        """Number of hidden units ``n`` (of every layer)."""
        if self._is_stack:
            return self._stack.n_hidden
        if self.cell != "elman":
            return int(self.weight_hh.shape[1])
        return int(self.W_hh.shape[0])

    @property
    def n_in(self) -> int:
        """Input size (at least 1; the gated cells' ``weight_ih`` has ``n_in + m`` columns)."""
        if self._is_stack:
            return self._stack.n_in - self.n_out
        if self.cell != "elman":
            return int(self.weight_ih.shape[1]) - self.n_out
        return int(self.W_hx.shape[1])

    def params(self) -> dict[str, np.ndarray]:
        """The parameters by name, in constructor order.

        Elman: ``W_hh, W_hx, W_hy, b_h, W_yh, b_y``; LSTM and GRU:
        ``weight_ih, weight_hh, bias_ih, bias_hh, W_yh, b_y``; a stack: those
        of :meth:`rnntheory.StackedRNN.params` (``"<name>_l<l>"``, then
        ``W_yh``, ``b_y``; layer 0's input matrix over ``[x_t; o^fb_t]``).

        The arrays are the model's own read-only arrays, not copies: writing
        into one raises ``ValueError``. Compute new arrays from them and pass
        those to :meth:`replace`.
        """
        if self._is_stack:
            return self._stack.params()
        if self.cell != "elman":
            return self._core.params()
        return {
            "W_hh": self.W_hh,
            "W_hx": self.W_hx,
            "W_hy": self.W_hy,
            "b_h": self.b_h,
            "W_yh": self.W_yh,
            "b_y": self.b_y,
        }

    def replace(self, **params: Any) -> GeneratorRNN:
        """A copy with some parameters (or, for the Elman cell, ``activation``) replaced
        (a stack: keyed as :meth:`params`)."""
        if self._is_stack:
            st = self._stack.replace(**params)
            return GeneratorRNN(cell=self.cell, layers=st.layers, W_yh=st.W_yh, b_y=st.b_y)
        what = "parameter or option of GeneratorRNN" if self.cell == "elman" else (
            f"parameter of GeneratorRNN(cell={self.cell!r})")
        return GeneratorRNN(**self._replaced(params, what))

    def _init_kwargs(self) -> dict[str, Any]:
        if self._is_stack:
            return {"cell": self.cell, "layers": self.layers, "W_yh": self.W_yh, "b_y": self.b_y}
        if self.cell != "elman":
            return {**self.params(), "cell": self.cell}
        return {**self.params(), "activation": self.activation}

    def __repr__(self) -> str:
        if self._is_stack:
            return self._describe("GeneratorRNN", f", cell={self.cell!r}, n_layers={self.n_layers}")
        if self.cell != "elman":
            return self._describe("GeneratorRNN", f", cell={self.cell!r}")
        return self._describe("GeneratorRNN", f", activation={self.activation.name!r}")

    # ------------------------------------------------------------------ init
    @classmethod
    def init(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int,
        *,
        cell: str = "elman",
        seed: int | None = 0,
        scale: float = 1.0,
        activation: str = "tanh",
        dtype: Any = np.float64,
        scheme: str = "pytorch",
        forget_bias: float = 0.0,
        n_layers: int = 1,
    ) -> GeneratorRNN:
        """Draw a model.

        ``cell="elman"``: Gaussian weights and zero biases; ``W_hh`` has entries
        ``N(0, scale²/n)`` (spectral radius near ``scale``), ``W_hx``
        ``N(0, 1/n_in)``, ``W_hy`` ``N(0, 1/m)``, ``W_yh`` ``N(0, 1/n)``.
        ``cell="lstm"``/``"gru"``: the draw of :meth:`rnntheory.LSTM.init` /
        :meth:`rnntheory.GRU.init` for a cell with ``n_in + n_out`` inputs
        (``[x_t; o^fb_t]``) and a readout of ``n_out``.

        Parameters
        ----------
        n_in, n_hidden, n_out : int
            Input (≥ 1), hidden and output sizes.
        cell : {"elman", "lstm", "gru"}
            The recurrent cell.
        seed : int or None
            Seed of NumPy's PCG64 generator.
        scale : float
            Elman: scale of ``W_hh``.
        activation : str
            Elman: the hidden nonlinearity.
        dtype : float32 or float64
            Dtype of every parameter.
        scheme : {"pytorch", "orthogonal"}
            Gated cells: as in :meth:`rnntheory.LSTM.init` (orthogonal: each gate
            block of ``weight_hh`` Haar-random orthogonal).
        forget_bias : float
            LSTM: added to the forget-gate block of ``bias_hh``.
        n_layers : int
            ``L ≥ 1``. ``L ≥ 2``: a stacked generator, drawn as
            :meth:`rnntheory.StackedRNN.init` draws a stack of ``cell`` layers
            with ``n_in + n_out`` inputs (layer 0 reads ``[x_t; o^fb_t]``) and a
            readout of ``n_out`` (Elman layers: ``ElmanRNN.init``'s default
            scheme and ``activation``; ``scale`` is for one layer only).
            ``L = 1`` is the one-layer generator above.

        Returns
        -------
        GeneratorRNN

        Raises
        ------
        ValueError
            On bad sizes, an unknown cell, or an option of the other kind of
            cell set away from its default.

        Examples
        --------
        >>> GeneratorRNN.init(1, 4, 2, seed=1)
        GeneratorRNN(n_in=1, n_hidden=4, n_out=2, activation='tanh', dtype=float64)
        >>> GeneratorRNN.init(1, 4, 2, cell="gru", seed=1)
        GeneratorRNN(n_in=1, n_hidden=4, n_out=2, cell='gru', dtype=float64)
        """
        cell = check_choice("cell", cell, CELLS)
        n_in = check_int("n_in", n_in, minimum=1)
        n = check_int("n_hidden", n_hidden, minimum=1)
        m = check_int("n_out", n_out, minimum=1)
        L = check_int("n_layers", n_layers, minimum=1)
        if L >= 2:
            return cls._init_stacked_draw(cell, n_in, n, m, L, seed, scale, activation, dtype, scheme, forget_bias)
        if cell != "elman":
            if scale != 1.0 or activation != "tanh":
                name = "scale" if scale != 1.0 else "activation"
                raise ValueError(f"`{name}` applies to cell='elman' only, got {name}="
                                 f"{scale if name == 'scale' else activation!r} with cell={cell!r}")
            core = (LSTM if cell == "lstm" else GRU).init(
                n_in + m, n, m, scheme=scheme, seed=seed, dtype=dtype, forget_bias=forget_bias
            )
            return cls(cell=cell, **core.params())
        if scheme != "pytorch" or forget_bias != 0.0:
            name = "scheme" if scheme != "pytorch" else "forget_bias"
            raise ValueError(f"`{name}` applies to the gated cells (cell='lstm' or 'gru'), not to cell='elman'")
        # + 0.0 turns -0.0 into 0.0: NumPy's normal() refuses a scale with the sign bit set
        scale = check_real("scale", scale, low=0.0) + 0.0
        dt = check_dtype("dtype", dtype)
        rng = as_generator("seed", seed)
        W_hh = rng.normal(0.0, scale / np.sqrt(n), (n, n))
        W_hx = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n, n_in))
        W_hy = rng.normal(0.0, 1.0 / np.sqrt(m), (n, m))
        W_yh = rng.normal(0.0, 1.0 / np.sqrt(n), (m, n))
        return cls(
            W_hh.astype(dt), W_hx.astype(dt), W_hy.astype(dt), np.zeros(n, dt),
            W_yh.astype(dt), np.zeros(m, dt), activation=activation,
        )

    @classmethod
    def _init_stacked_draw(
        cls, cell: str, n_in: int, n: int, m: int, L: int, seed: Any, scale: float, activation: str,
        dtype: Any, scheme: str, forget_bias: float,
    ) -> GeneratorRNN:
        """:meth:`init` with ``n_layers = L ≥ 2``."""
        if scale != 1.0:
            raise ValueError(f"`scale` applies to a one-layer Elman generator (n_layers=1), got scale={scale!r} "
                             f"with n_layers={L}")
        opts: dict[str, Any] = {}
        if cell == "elman":
            if forget_bias != 0.0:
                raise ValueError("`forget_bias` applies to the LSTM, not to cell='elman'")
            opts["activation"] = activation
            if scheme != "pytorch":
                opts["scheme"] = scheme
        else:
            if activation != "tanh":
                raise ValueError(f"`activation` applies to cell='elman' only, got activation={activation!r} "
                                 f"with cell={cell!r}")
            opts["scheme"] = scheme
            opts["forget_bias"] = forget_bias
        st = StackedRNN.init(n_in + m, n, m, cell=cell, n_layers=L, seed=seed, dtype=dtype, **opts)
        return cls(cell=cell, layers=st.layers, W_yh=st.W_yh, b_y=st.b_y)

    # ------------------------------------------------------------------ setup
    def _start(self, start: Any, B: int, batched: bool) -> np.ndarray:
        m = self.n_out
        if start is None:
            return np.zeros((B, m), dtype=self.dtype)
        s = as_float_array("start", start, ndim=(1, 2))
        want = (B, m) if batched else (m,)
        if s.shape != want:
            raise ValueError(f"`start` must have shape {want}, got shape {s.shape}")
        return np.array(as_model_dtype("start", s, self.dtype).reshape(B, m), order="C", copy=True)

    def _setup(
        self,
        x: Any,
        y: Any,
        *,
        mode: str,
        loss: str,
        mask: Any,
        p: Any,
        seed: int | None,
        h0: Any,
        start: Any,
        need_loss: bool,
        c0: Any = None,
    ) -> dict[str, Any]:
        """Validate everything and build the teacher values and the choices."""
        mode = check_choice("mode", mode, MODES)
        loss = check_choice("loss", loss, LOSSES)
        if mode == "scheduled":
            if p is None:
                raise ValueError("`p` is required for mode='scheduled' (a probability in [0, 1])")
            p = check_real("p", p, low=0.0, high=1.0)
        elif p is not None:
            raise ValueError(f"`p` is only used with mode='scheduled', got p={p!r} with mode={mode!r}")
        x3, batched = self._inputs(x)
        T, B, _ = x3.shape
        if self._is_stack:
            h, c = self._stack_states(h0, c0, B, batched)
        else:
            h = self._state("h0", h0, B, batched)
        if c0 is not None and self.cell != "lstm":
            raise ValueError(f"`c0` applies to cell='lstm' only; a generator with cell={self.cell!r} has no cell state")
        if not self._is_stack:
            c = self._state("c0", c0, B, batched) if self.cell == "lstm" else None
        o0 = self._start(start, B, batched)
        if y is None:
            if need_loss or mode != "free":
                raise ValueError(f"`y` (the targets) is required for mode={mode!r}")
            tgt = m = None
        else:
            loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        mo = self.n_out
        TF = np.zeros((T, B, mo), dtype=self.dtype)
        TF[0] = o0
        if mode != "free" and T > 1:
            assert tgt is not None
            if loss == "xent":
                fed = tgt[:-1]
                if fed.min() < 0 or fed.max() >= mo:
                    raise ValueError(
                        f"`y` class indices fed back in mode={mode!r} (steps 1..T-1) must lie in "
                        f"[0, {mo}), got range [{fed.min()}, {fed.max()}]"
                    )
                tt, bb = np.meshgrid(np.arange(1, T), np.arange(B), indexing="ij")
                TF[tt, bb, fed] = 1.0
            else:
                TF[1:] = tgt[:-1]
        self._check_reach(x3, None if h0 is None else h, o0, mode, loss, tgt, T)
        own = np.zeros((T, B), dtype=np.uint8)
        if mode == "free":
            own[1:] = 1
        elif mode == "scheduled":
            u = as_generator("seed", seed).random((T - 1, B))
            own[1:] = u < p
        return {
            "x3": x3, "h": h, "c": c, "TF": TF, "own": own, "batched": batched,
            "loss": loss, "tgt": tgt, "m": m,
        }

    def _check_reach(
        self, x3: np.ndarray, h0: np.ndarray | None, o0: np.ndarray, mode: str, loss: str,
        tgt: np.ndarray | None, T: int,
    ) -> None:
        """Refuse inputs with which a pre-activation could pass the dtype's range.

        ``|a_t| ≤ rows(W_hx)·max|x| + max|b_h| + rows(W_hh)·sup|h| +
        rows(W_hy)·max|o^fb|``, the fed-back values being the start value, the
        teacher values (one-hot, or the targets ``y`` for ``"mse"``) and the
        own outputs (softmax probabilities, or for ``"mse"`` with tanh/sigmoid
        units ``|z_t| ≤ rows(W_yh) + max|b_y|``, itself checked; with ReLU or
        identity units their growth is the dynamics of the model).
        """
        # gated cells: every h_t (t ≥ 1) lies in [-1, 1] (LSTM), or within
        # max(1, max|h_0|) (GRU: a convex combination of h_{t−1} and tanh(·))
        top: Any = self.layers[-1] if self._is_stack else self
        bounded = True if self.cell != "elman" else top.activation.name in self._BOUNDED
        sup_h = max(1.0, abs_max(h0)) if self.cell == "gru" and h0 is not None else 1.0
        fed: list[tuple[str, float, str | None, bool]] = [("max |start|", abs_max(o0), "start", True)]
        if T > 1 and mode != "free":  # teacher values at steps 2..T
            if loss == "xent":
                fed.append(("max |o^fb|", 1.0, None, False))
            else:
                assert tgt is not None
                fed.append(("max |y|", abs_max(tgt[:-1]), "y", True))
        if T > 1 and mode != "teacher":  # own outputs at steps 2..T
            if loss == "xent":
                fed.append(("max |o^fb|", 1.0, None, False))
            elif bounded:
                z = [
                    self._weight_term("W_yh", "sup |h|", 1.0, None, False) if sup_h == 1.0
                    else self._weight_term("W_yh", "max |h0|", sup_h, "h0", True),
                    self._bias_term("b_y"),
                ]
                n_sum = self.n_hidden + 1
                check_reach("the outputs W_yh h_t + b_y fed back", z, self.dtype, n_sum)
                fed.append(("max |o_t|", z[0][5] * z[0][6] + z[1][1], "W_yh", False))
        label, value, blame, is_arg = max(fed, key=lambda f: (f[1], f[3]))
        if self._is_stack:
            self._stack_check_reach(x3, h0, (label, value, blame, is_arg))
            return
        if self.cell != "elman":
            # [x_t; o^fb_t] meets the same matrix: the larger of the two bounds both
            xin = ("max |x|", abs_max(x3), "x", True)
            label, value, blame, is_arg = max([xin, (label, value, blame, is_arg)], key=lambda f: (f[1], f[3]))
            check_reach(
                "the gate pre-activations weight_ih [x_t; o^fb_t] + bias_ih + weight_hh h_{t−1} + bias_hh",
                [
                    self._weight_term("weight_ih", label, value, blame, is_arg),
                    self._bias_term("bias_ih"),
                    self._bias_term("bias_hh"),
                    self._state_term("weight_hh", h0, True),
                ],
                self.dtype, self.n_hidden + self.n_in + self.n_out + 2,
            )
            return
        check_reach(
            "the pre-activations W_hh h_{t−1} + W_hx x_t + W_hy o^fb_t + b_h",
            [
                self._weight_term("W_hx", "max |x|", abs_max(x3), "x", True),
                self._bias_term("b_h"),
                self._state_term("W_hh", h0, bounded),
                self._weight_term("W_hy", label, value, blame, is_arg),
            ],
            self.dtype, self.n_hidden + self.n_in + self.n_out + 2,
        )

    # ------------------------------------------------------------------ stacks
    def _stack_states(self, h0: Any, c0: Any, B: int, batched: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``h0`` (and ``c0``, LSTM) of shape ``(L, n)`` or ``(L, B, n)`` as
        ``(L, B, n)`` arrays (zeros when not given)."""
        L, n = self.n_layers, self.n_hidden
        hs = self._stack._initial("h0", h0, B, batched)
        h = np.zeros((L, B, n), dtype=self.dtype) if h0 is None else np.ascontiguousarray(np.stack([np.asarray(a) for a in hs]))
        c = None
        if self.cell == "lstm":
            cs = self._stack._initial("c0", c0, B, batched)
            c = np.zeros((L, B, n), dtype=self.dtype) if c0 is None else np.ascontiguousarray(np.stack([np.asarray(a) for a in cs]))
        return h, c

    def _stack_check_reach(self, x3: np.ndarray, h0: np.ndarray | None, fed: tuple[Any, ...]) -> None:
        """The reach check of a stack: layer 0's pre-activations with the larger
        of ``max|x|`` and the fed-back values' bound (as the one-layer gated
        generator), then each layer ``l ≥ 1`` with the bound of layer ``l−1``'s
        states as its input (1, or ``max(1, max|h0|)`` for GRU and tanh/sigmoid
        Elman layers; ReLU/identity Elman states: their growth is the dynamics)."""
        l0 = self.layers[0]
        xin = ("max |x|", abs_max(x3), "x", True)
        label, value, blame, is_arg = max([xin, fed], key=lambda f: (f[1], f[3]))
        h00 = None if h0 is None else h0[0]
        if self.cell == "elman":
            terms = [
                l0._weight_term("W_hx", label, value, blame, is_arg),
                l0._bias_term("b_h"),
                l0._state_term("W_hh", h00, l0.activation.name in self._BOUNDED),
            ]
            what = "layer 0: the pre-activations W_hx [x_t; o^fb_t] + b_h + W_hh h_{t−1}"
        else:
            terms = [
                l0._weight_term("weight_ih", label, value, blame, is_arg),
                l0._bias_term("bias_ih"),
                l0._bias_term("bias_hh"),
                l0._state_term("weight_hh", h00, True),
            ]
            what = "layer 0: the gate pre-activations weight_ih [x_t; o^fb_t] + bias_ih + weight_hh h_{t−1} + bias_hh"
        check_reach(what, terms, self.dtype, self.n_hidden + self.n_in + self.n_out + 2)
        for i in range(1, self.n_layers):
            below = self.layers[i - 1]
            if isinstance(below, ElmanRNN) and below.activation.name not in self._BOUNDED:
                continue
            sup = 1.0 if h0 is None or self.cell == "lstm" else max(1.0, abs_max(h0[i - 1]))
            try:
                self.layers[i]._check_reach(np.full((1, 1, self.n_hidden), sup, self.dtype),
                                            None if h0 is None else h0[i])
            except ValueError as exc:
                raise type(exc)(f"layer {i} (it reads the states of layer {i - 1} as its input `x`): {exc}") from None

    def _stack_forward(self, s: dict[str, Any]) -> tuple[np.ndarray, ...]:
        """The stack's forward pass through the feedback kernel:
        ``(H, C, P, Z, O, FB)`` with ``H, C (L, T+1, B, n)``, ``P (L, T, B, W)``."""
        x3, TF, own = s["x3"], s["TF"], s["own"]
        T, B, _ = x3.shape
        L, n, mo = self.n_layers, self.n_hidden, self.n_out
        width = n if self.cell == "elman" else 4 * n
        H = np.empty((L, T + 1, B, n), dtype=self.dtype)
        lstm = self.cell == "lstm"
        C = np.empty((L, T + 1, B, n), dtype=self.dtype) if lstm else np.empty((L, 1, 1, 1), dtype=self.dtype)
        c0 = s["c"] if lstm else np.empty((L, 1, 1), dtype=self.dtype)
        P = np.empty((L, T, B, width), dtype=self.dtype)
        Z = np.empty((T, B, mo), dtype=self.dtype)
        O = np.empty((T, B, mo), dtype=self.dtype)
        FB = np.empty((T, B, mo), dtype=self.dtype)
        kind = G.KIND_SOFTMAX if s["loss"] == "xent" else G.KIND_LINEAR
        G.stack_generator_forward(
            _CELL_CODE[self.cell], self._k_acts, self._k_W_xT, self._k_W_fT, self._k_W_upT, self._k_W_hhT,
            self._k_b_ih, self._k_b_hh, self._W_yhT, self.b_y, x3, s["h"], c0, TF, own, kind, H, C, P, Z, O, FB,
        )
        return H, C, P, Z, O, FB

    def _stack_trace(self, s: dict[str, Any]) -> GeneratorTrace:
        """:meth:`forward` of a stack (every mode through the feedback kernel)."""
        H, C, P, Z, O, FB = self._stack_forward(s)
        lstm = self.cell == "lstm"
        parts: list[np.ndarray] = []
        for i in range(self.n_layers):
            parts.append(H[i])
            if lstm:
                parts.append(C[i])
        S = np.concatenate(parts, axis=-1)
        tr = GeneratorTrace(H[-1], P[-1], Z, O, FB, s["own"].astype(bool), C[-1] if lstm else None, S)
        return tr if s["batched"] else tr.sequence(0)

    def _stack_value_and_grad(self, s: dict[str, Any]) -> tuple[float, StackedGeneratorGrads]:
        """Loss and gradient of a stack (see :meth:`value_and_grad`)."""
        x3, own, batched = s["x3"], s["own"], s["batched"]
        T, B, _ = x3.shape
        if not own.any():
            return self._stack_teacher(s)
        L, n, mo = self.n_layers, self.n_hidden, self.n_out
        lstm, gru = self.cell == "lstm", self.cell == "gru"
        H, C, P, Z, O, FB = self._stack_forward(s)
        value, dZ = self._loss_grad(Z, s["loss"], s["tgt"], s["m"])
        Gn = self._k_W_hh.shape[1]
        flow_h = np.empty((L, T + 1, B, n), dtype=self.dtype)
        flow_c = np.empty((L, T + 1, B, n), dtype=self.dtype) if lstm else np.empty((L, 1, 1, 1), self.dtype)
        D_hid = np.empty((L, T, B, Gn), dtype=self.dtype)
        D_in = np.empty((L, T, B, Gn), dtype=self.dtype) if gru else D_hid
        SENT = np.empty((L, T, B, n), dtype=self.dtype)
        DZ = np.empty((T, B, mo), dtype=self.dtype)
        DF = np.empty((T, B, mo), dtype=self.dtype)
        kind = G.KIND_SOFTMAX if s["loss"] == "xent" else G.KIND_LINEAR
        G.stack_generator_backward(
            _CELL_CODE[self.cell], self._k_acts, self._k_W_f, self._k_W_up, self._k_W_hh, self.W_yh, dZ, H, C, P,
            O, own, kind, flow_h, flow_c, D_hid, D_in, SENT, DZ, DF,
        )
        XF = np.concatenate((x3, FB), axis=2)
        layer_grads: list[Any] = []
        for i in range(L):
            xin = XF if i == 0 else H[i - 1, 1:]
            Di = D_in[i].reshape(T * B, Gn)
            Dh = D_hid[i].reshape(T * B, Gn)
            g_in = K.gemm_tn(Di, np.ascontiguousarray(xin).reshape(T * B, -1))
            g_hh = K.gemm_tn(Dh, H[i, :-1].reshape(T * B, n))
            g_bi = K.column_sums(Di)
            if self.cell == "elman":
                layer_grads.append(ElmanGrads(g_hh, g_in, g_bi, None, None, flow_h[i], None))
            elif lstm:
                layer_grads.append(LSTMGrads(g_in, g_hh, g_bi, g_bi.copy(), None, None, flow_h[i], flow_c[i]))
            else:
                layer_grads.append(GRUGrads(g_in, g_hh, g_bi, K.column_sums(Dh), None, None, flow_h[i]))
        DZ2 = DZ.reshape(T * B, mo)
        g_yh = K.gemm_tn(DZ2, H[L - 1, 1:].reshape(T * B, n))
        g_by = K.column_sums(DZ2)
        saved: list[tuple[np.ndarray, ...]] = [(H[i], C[i], P[i]) if lstm else (H[i], P[i]) for i in range(L)]
        flow = self._stack._state_flow(layer_grads, [SENT[i] for i in range(L)], saved, T, B)
        return self._stack_grads(float(value), layer_grads, g_yh, g_by, flow, DF, batched)

    def _stack_teacher(self, s: dict[str, Any]) -> tuple[float, StackedGeneratorGrads]:
        """Teacher forcing of a stack (no own output fed): the
        :class:`~rnntheory.StackedRNN` on ``[x_t; y_{t−1}]``, its forward pass
        and its layers' backward passes, with layer 0's input derivative kept
        for ``∂E/∂o^fb_t``."""
        st = self._stack
        x3, batched = s["x3"], s["batched"]
        T, B, n_in = x3.shape
        L, n = self.n_layers, self.n_hidden
        XF = np.concatenate((x3, s["TF"]), axis=2)
        h, c = s["h"], s["c"]
        h0s = [h[i] for i in range(L)]
        c0s = [None] * L if c is None else [c[i] for i in range(L)]
        inputs, saved = st._run_layers(XF, h0s, c0s, for_grad=True)
        H_top = saved[-1][0]
        k = threads_for(B, T * B * n * max(n, self.n_out))
        with own_threads(k):
            Y = st._readout(H_top, k)
        assert Y is not None and self.W_yh is not None
        value, dZ = self._loss_grad(Y, s["loss"], s["tgt"], s["m"])
        with own_threads(k):
            dh = readout_rows(dZ.reshape(T * B, -1), self.W_yh, np.zeros(n, self.dtype), k).reshape(T, B, n)
            g_yh, g_by = st._readout_grads(dZ, H_top, k)
        grads: list[Any] = [None] * L
        sent: list[np.ndarray] = [dh] * L
        for i in range(L - 1, -1, -1):
            sent[i] = dh
            grads[i], dh = self.layers[i]._vjp_backward(inputs[i], saved[i], dh, need_dx=True)
        flow = st._state_flow(grads, sent, saved, T, B)
        DF = np.ascontiguousarray(dh[:, :, n_in:])
        assert g_yh is not None and g_by is not None
        return self._stack_grads(float(value), grads, g_yh, g_by, flow, DF, batched)

    @staticmethod
    def _stack_grads(
        value: float, grads: list[Any], g_yh: np.ndarray, g_by: np.ndarray, flow: np.ndarray, DF: np.ndarray,
        batched: bool,
    ) -> tuple[float, StackedGeneratorGrads]:
        if not batched:
            flow, DF = flow[:, 0], DF[:, 0]
            grads = [_single_grads(g) for g in grads]
        return value, StackedGeneratorGrads(tuple(grads), g_yh, g_by, flow, DF)

    def _run(
        self, x3: np.ndarray, h: np.ndarray, TF: np.ndarray, own: np.ndarray, loss: str
    ) -> tuple[np.ndarray, ...]:
        T, B, _ = x3.shape
        n, mo = self.n_hidden, self.n_out
        H = np.empty((T + 1, B, n), dtype=self.dtype)
        A = np.empty((T, B, n), dtype=self.dtype)
        FP = np.empty((T, B, n), dtype=self.dtype)
        Z = np.empty((T, B, mo), dtype=self.dtype)
        O = np.empty((T, B, mo), dtype=self.dtype)
        FB = np.empty((T, B, mo), dtype=self.dtype)
        kind = G.KIND_SOFTMAX if loss == "xent" else G.KIND_LINEAR
        G.generator_forward(
            transposed(self.W_hh), transposed(self.W_hx),
            transposed(self.W_hy), self.b_h, transposed(self.W_yh),
            self.b_y, read_only(x3), h, TF, own, self.activation.code, kind, H, A, FP, Z, O, FB,
        )
        return H, A, FP, Z, O, FB

    @staticmethod
    def _trace(
        H: np.ndarray, A: np.ndarray, Z: np.ndarray, O: np.ndarray, FB: np.ndarray,
        own: np.ndarray, batched: bool, C: np.ndarray | None = None,
    ) -> GeneratorTrace:
        tr = GeneratorTrace(H, A, Z, O, FB, own.astype(bool), C)
        return tr if batched else tr.sequence(0)

    # ------------------------------------------------------------------ gated cells
    def _gated_forward(
        self, s: dict[str, Any], temporary: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """The forward pass of an LSTM or GRU generator: ``(H, C, P, Z, O, XF, k)``
        with ``XF = [x; o^fb]`` ``(T, B, n_in + m)`` and ``k`` the threads the
        backward pass may use.

        Where no own output is fed (teacher forcing, or scheduled sampling whose
        coins all chose the target) the fed values are data: the gated cell's
        own kernels run on ``[x_t; y_{t−1}]`` (on ``k`` threads, as
        :meth:`rnntheory.LSTM.value_and_grad` runs them; ``temporary``: per-thread
        scratch arrays, which must not leave the call, and ``O`` is left unset:
        the gradient does not read it). Otherwise the feedback
        kernels run the recurrence step by step (one thread).
        """
        core = self._core
        x3, h, TF, own = s["x3"], s["h"], s["TF"], s["own"]
        T, B, _ = x3.shape
        n, mo = self.n_hidden, self.n_out
        kind = G.KIND_SOFTMAX if s["loss"] == "xent" else G.KIND_LINEAR
        C: np.ndarray | None
        if not own.any():
            XF = np.concatenate((x3, TF), axis=2)
            k = core._threads(T, B)
            with own_threads(k):
                if isinstance(core, LSTM):
                    H, C, P = core._run(XF, h, s["c"], k, temporary=temporary)
                else:
                    H, P = core._run(XF, h, k, temporary=temporary)
                    C = None
                Z = core._readout(H, k)
            assert Z is not None
            O = np.empty_like(Z)
            if not temporary:  # the gradient of teacher forcing never reads the outputs
                G.outputs(kind, Z, O)
            return H, C, P, Z, O, XF, k
        H = np.empty((T + 1, B, n), dtype=self.dtype)
        P = np.empty((T, B, 4 * n), dtype=self.dtype)
        Z = np.empty((T, B, mo), dtype=self.dtype)
        O = np.empty((T, B, mo), dtype=self.dtype)
        FB = np.empty((T, B, mo), dtype=self.dtype)
        head = (self._W_xT, self._W_fT, core._W_hhT, self.bias_ih, self.bias_hh, self._W_yhT, self.b_y, x3, h)
        if isinstance(core, LSTM):
            C = np.empty((T + 1, B, n), dtype=self.dtype)
            G.lstm_generator_forward(*head, s["c"], TF, own, kind, H, C, P, Z, O, FB)
        else:
            C = None
            G.gru_generator_forward(*head, TF, own, kind, H, P, Z, O, FB)
        return H, C, P, Z, O, np.concatenate((x3, FB), axis=2), 1

    def _gated_value_and_grad(self, s: dict[str, Any]) -> tuple[float, GatedGeneratorGrads]:
        """Loss and gradient of an LSTM or GRU generator (see :meth:`value_and_grad`)."""
        core = self._core
        x3, own, batched = s["x3"], s["own"], s["batched"]
        T, B, n_in = x3.shape
        n, mo = self.n_hidden, self.n_out
        n_cols = n_in + mo
        lstm = isinstance(core, LSTM)
        teacher = not own.any()
        H, C, P, Z, O, XF, k = self._gated_forward(s, temporary=True)
        value, dZ = self._loss_grad(Z, s["loss"], s["tgt"], s["m"])
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        flow_c = np.empty((T + 1, B, n), dtype=self.dtype) if lstm else None
        G3 = (4 if lstm else 3) * n
        if teacher:  # the gated cell's own BPTT on [x_t; y_{t−1}]
            DZ = dZ
            if lstm:
                assert C is not None and flow_c is not None
                D_in = D_hid = core._array("lstm_D", (T, B, G3), True)
                core._backward(GK.lstm_backward, GK.lstm_backward_truncated, dZ, C, P, (flow, flow_c, D_in),
                               (1, 0, 0), k)
            else:
                D_hid = core._array("gru_Dh", (T, B, G3), True)
                D_in = core._array("gru_Di", (T, B, G3), True)
                core._backward(GK.gru_backward, GK.gru_backward_truncated, dZ, H, P, (flow, D_hid, D_in),
                               (1, 0, 0), k)
        else:  # through the fed-back outputs
            kind = G.KIND_SOFTMAX if s["loss"] == "xent" else G.KIND_LINEAR
            DZ = np.empty((T, B, mo), dtype=self.dtype)
            DF = np.empty((T, B, mo), dtype=self.dtype)
            if lstm:
                assert C is not None and flow_c is not None
                D_in = D_hid = np.empty((T, B, G3), dtype=self.dtype)
                G.lstm_generator_backward(
                    self.weight_hh, self._W_f, self.W_yh, dZ, C, P, O, own, kind, flow, flow_c, D_in, DZ, DF
                )
            else:
                D_hid = np.empty((T, B, G3), dtype=self.dtype)
                D_in = np.empty((T, B, G3), dtype=self.dtype)
                G.gru_generator_backward(
                    self.weight_hh, self._W_f, self.W_yh, dZ, H, P, O, own, kind, flow, D_hid, D_in, DZ, DF
                )
        Di = D_in.reshape(T * B, G3)
        Dh = D_hid.reshape(T * B, G3)
        with own_threads(k), blas_threads_for(T * B * G3 * max(n, n_cols, mo)):
            g_ih = sum_over_rows(K.gemm_tn, (Di, XF.reshape(T * B, n_cols)), k)
            g_hh = sum_over_rows(K.gemm_tn, (Dh, H[:-1].reshape(T * B, n)), k)
            g_bi = sum_over_rows(K.column_sums, (Di,), k)
            g_bh = g_bi.copy() if lstm else sum_over_rows(K.column_sums, (Dh,), k)
            g_yh, g_by = core._readout_grads(DZ, H, k)
            if teacher:  # ∂E/∂o^fb_t = D_t W_f, which reaches no parameter (one BLAS product)
                DF = np.dot(Di, self._W_f).reshape(T, B, mo)
        assert g_yh is not None and g_by is not None
        if not batched:
            flow, DF = flow[:, 0], DF[:, 0]
            flow_c = None if flow_c is None else flow_c[:, 0]
        return float(value), GatedGeneratorGrads(g_ih, g_hh, g_bi, g_bh, g_yh, g_by, flow, flow_c, DF)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: Any,
        y: Any = None,
        *,
        mode: str = "free",
        p: float | None = None,
        seed: int | None = None,
        loss: str = "xent",
        h0: Any = None,
        start: Any = None,
        c0: Any = None,
    ) -> GeneratorTrace:
        """Run the generator over ``x`` in one of the three modes.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
            External inputs; ``x[0]`` is ``x_1``.
        y : array, optional
            Targets (integer classes ``(T,)``/``(T, B)`` for ``"xent"``, floats
            ``(T, m)``/``(T, B, m)`` for ``"mse"``); required unless ``mode="free"``.
            ``y[t-1]`` is fed into step ``t+1`` under teacher forcing.
        mode : {"free", "teacher", "scheduled"}
            What is fed back (see the module docstring).
        p : float, optional
            Probability in ``[0, 1]`` of feeding the own output, for
            ``mode="scheduled"`` only.
        seed : int, optional
            Seed of the scheduled-sampling coin flips (``None``: fresh entropy).
        loss : {"xent", "mse"}
            Sets the output ``s``: softmax (and one-hot teacher values) or identity.
        h0 : array, shape ``(n,)`` or ``(B, n)``, optional
            Initial state (zeros by default); a stack's of every layer,
            ``(L, n)`` or ``(L, B, n)``.
        start : array, shape ``(m,)`` or ``(B, m)``, optional
            The start value ``o_0`` fed into step 1 (zeros by default).
        c0 : array, shape ``(n,)`` or ``(B, n)``, optional
            ``cell="lstm"`` only: the initial cell state (zeros by default);
            shaped as ``h0``.

        Returns
        -------
        GeneratorTrace
            For a stack: ``h``, ``a``, ``c`` of the top layer and ``s`` the
            whole state (every mode runs the stack's feedback kernel).

        Raises
        ------
        ValueError
            On a bad mode, loss, ``p``, missing ``y`` or a shape mismatch; and
            when a pre-activation could pass the dtype's range:
            ``rows(W_hx)·max|x| + max|b_h| + rows(W_hh)·sup|h| +
            rows(W_hy)·max|o^fb|`` beyond it (``rows``: the largest row sum of
            magnitudes; ``sup|h| = max(1, max|h_0|)`` for tanh/sigmoid units,
            ``max|h_0|`` for ReLU/identity units; ``o^fb`` the start value, the
            teacher values and the own outputs, the latter for ``"mse"`` with
            tanh/sigmoid units bounded by ``rows(W_yh) + max|b_y|``, itself
            checked). The message names the argument (``x``, ``h0``,
            ``start``, ``y``) or parameter that carries the large values.
            Gated cells: the same for the gate pre-activations,
            ``rows(weight_ih)·max(max|x|, max|o^fb|) + max|bias_ih| +
            max|bias_hh| + rows(weight_hh)·max(1, max|h_0|)``, the own
            ``"mse"`` outputs bounded by ``rows(W_yh)·sup|h| + max|b_y|``
            (``sup|h| = 1`` for the LSTM, ``max(1, max|h_0|)`` for the GRU).
            A ``c0`` given to an Elman or GRU generator.
        """
        s = self._setup(
            x, y, mode=mode, loss=loss, mask=None, p=p, seed=seed, h0=h0, start=start,
            need_loss=False, c0=c0,
        )
        if self._is_stack:
            return self._stack_trace(s)
        if self.cell != "elman":
            H, C, P, Z, O, XF, _ = self._gated_forward(s, temporary=False)
            FB = np.ascontiguousarray(XF[:, :, self.n_in:])
            return self._trace(H, P, Z, O, FB, s["own"], s["batched"], C)
        H, A, _, Z, O, FB = self._run(s["x3"], s["h"], s["TF"], s["own"], s["loss"])
        return self._trace(H, A, Z, O, FB, s["own"], s["batched"])

    def generate(
        self,
        T: int,
        x: Any = None,
        h0: Any = None,
        *,
        loss: str = "xent",
        start: Any = None,
        c0: Any = None,
    ) -> GeneratorTrace:
        """Free-running generation for ``T`` steps.

        Equal to ``forward(x, mode="free")`` with ``x`` zeros when not given.

        Parameters
        ----------
        T : int
            Number of steps (≥ 1).
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``, optional
            External inputs; zeros ``(T, n_in)`` by default, or ``(T, B, n_in)``
            when ``h0`` (or, without ``h0``, ``c0``) is batched ``(B, n)``.
        h0 : array, shape ``(n,)`` or ``(B, n)``, optional
            Initial state (a stack's: ``(L, n)`` or ``(L, B, n)``, and then a
            batched ``h0`` or ``c0`` is ``(L, B, n)``).
        loss : {"xent", "mse"}
            Output ``s`` fed back: softmax probabilities or the linear output.
        start : array, optional
            The start value ``o_0``.
        c0 : array, optional
            ``cell="lstm"`` only: the initial cell state.

        Returns
        -------
        GeneratorTrace

        Examples
        --------
        >>> import numpy as np
        >>> model = GeneratorRNN.init(1, 5, 2, seed=3)
        >>> tr = model.generate(4)
        >>> bool(np.allclose(tr.fed[1:], tr.o[:-1]))
        True
        """
        T = check_int("T", T, minimum=1)
        if x is None:
            shape: tuple[int, ...] = (T, self.n_in)
            nd, ax = (3, 1) if self._is_stack else (2, 0)  # a stack's h0: (L, B, n)
            if h0 is not None and np.ndim(h0) == nd:
                shape = (T, np.shape(h0)[ax], self.n_in)
            elif h0 is None and c0 is not None and np.ndim(c0) == nd:
                shape = (T, np.shape(c0)[ax], self.n_in)
            x = np.zeros(shape, dtype=self.dtype)
        elif np.shape(x)[:1] != (T,):
            raise ValueError(f"`x` must have T = {T} steps in its first axis, got shape {np.shape(x)}")
        return self.forward(x, mode="free", loss=loss, h0=h0, start=start, c0=c0)

    # ------------------------------------------------------------------ gradients
    def value_and_grad(
        self,
        x: Any,
        y: Any,
        *,
        mode: str,
        loss: str = "xent",
        mask: Any = None,
        p: float | None = None,
        seed: int | None = None,
        h0: Any = None,
        start: Any = None,
        c0: Any = None,
    ) -> tuple[float, Any]:
        """Loss (Eq. 4) and its gradient by BPTT, through the feedback where fed.

        Parameters
        ----------
        x, y, mode, p, seed, loss, h0, start, c0
            As for :meth:`forward` (``y`` is required).
        mask : array, shape ``(T,)`` or ``(T, B)``, optional
            Non-negative per-step loss weights. Under teacher forcing the targets
            fed back (steps 1..T−1) must be valid even where the weight is 0.

        Returns
        -------
        loss : float
            ``E = Σ_t Σ_b mask[t, b] · E_t`` (float64).
        grads : GeneratorGrads, GatedGeneratorGrads or StackedGeneratorGrads
            Every parameter gradient, the flow ``∂E/∂h_k`` (and ``∂E/∂c_k`` for
            the LSTM) and ``∂E/∂o^fb_t``: :class:`GeneratorGrads` for the Elman
            cell, :class:`GatedGeneratorGrads` for the LSTM and GRU,
            :class:`StackedGeneratorGrads` for a stack (per-layer records and
            the whole state's flow ``∂E/∂s_k``).

        Raises
        ------
        ValueError
            As :meth:`forward` (bad arguments; a pre-activation that could
            pass the dtype's range), and on a bad mask.

        Notes
        -----
        Backward, for ``t = T..1`` (row form, ``δ_t = ∂E/∂a_t``):
        ``∂E/∂z_t = ∂E_t/∂z_t + [o_t fed] J_s(z_t)ᵀ W_hyᵀ δ_{t+1}``,
        ``∂E/∂h_t = W_yhᵀ ∂E/∂z_t + W_hhᵀ δ_{t+1}``, ``δ_t = f′(a_t) ⊙ ∂E/∂h_t``.
        Under teacher forcing ``[o_t fed] = 0``: the same recursion as a plain
        Elman network with the fed-back targets as extra inputs.

        Gated cells: the same with the cell's own step backwards (that of
        :meth:`rnntheory.LSTM.value_and_grad` / :meth:`rnntheory.GRU.value_and_grad`),
        ``W_hyᵀ δ_{t+1}`` replaced by ``W_fᵀ D_{t+1}``: ``W_f`` the feedback
        columns of ``weight_ih``, ``D`` the gradient at the (input-side) gate
        pre-activations. Where no own output is fed (teacher forcing; scheduled
        sampling whose coins all chose the target) the model *is* the gated
        cell on the constant inputs ``[x_t; y_{t−1}]`` and runs that cell's
        kernels: its loss and gradients are those of
        ``LSTM(weight_ih, weight_hh, bias_ih, bias_hh, W_yh, b_y).value_and_grad``
        on ``[x_t; y_{t−1}]``.

        Stacks: backwards through every layer at each step (each layer's own
        step backwards, its input derivative sent to the layer below); the
        fed-back value enters layer 0, so ``W_f`` is the feedback columns of
        layer 0's input matrix. Under teacher forcing the stack's loss and
        gradients are those of :meth:`rnntheory.StackedRNN.value_and_grad` on
        ``[x_t; y_{t−1}]``, bit for bit (it runs that stack's passes).

        Examples
        --------
        >>> import numpy as np
        >>> model = GeneratorRNN.init(1, 4, 2, seed=0)
        >>> x, y = np.zeros((6, 1)), np.array([0, 1, 0, 1, 0, 1])
        >>> E0, g0 = model.value_and_grad(x, y, mode="scheduled", p=0.0, seed=1)
        >>> E1, g1 = model.value_and_grad(x, y, mode="teacher")
        >>> E0 == E1 and bool((g0.W_hh == g1.W_hh).all())
        True
        """
        s = self._setup(
            x, y, mode=mode, loss=loss, mask=mask, p=p, seed=seed, h0=h0, start=start,
            need_loss=True, c0=c0,
        )
        if self._is_stack:
            return self._stack_value_and_grad(s)
        if self.cell != "elman":
            return self._gated_value_and_grad(s)
        x3, own, batched = s["x3"], s["own"], s["batched"]
        T, B, n_in = x3.shape
        n, mo = self.n_hidden, self.n_out
        H, _, FP, Z, O, FB = self._run(x3, s["h"], s["TF"], own, s["loss"])
        value, dZ = self._loss_grad(Z, s["loss"], s["tgt"], s["m"])
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        D = np.empty((T, B, n), dtype=self.dtype)
        DZ = np.empty((T, B, mo), dtype=self.dtype)
        DF = np.empty((T, B, mo), dtype=self.dtype)
        kind = G.KIND_SOFTMAX if s["loss"] == "xent" else G.KIND_LINEAR
        G.generator_backward(
            self.W_hh, self.W_yh, self.W_hy, dZ, FP, O, own, kind, flow, D, DZ, DF
        )
        D2 = D.reshape(T * B, n)
        DZ2 = DZ.reshape(T * B, mo)
        grads = GeneratorGrads(
            W_hh=K.gemm_tn(D2, H[:-1].reshape(T * B, n)),
            W_hx=K.gemm_tn(D2, x3.reshape(T * B, n_in)),
            W_hy=K.gemm_tn(D2, FB.reshape(T * B, mo)),
            b_h=K.column_sums(D2),
            W_yh=K.gemm_tn(DZ2, H[1:].reshape(T * B, n)),
            b_y=K.column_sums(DZ2),
            flow=flow if batched else flow[:, 0],
            feedback=DF if batched else DF[:, 0],
        )
        return float(value), grads


_CELL_CODE = {"elman": G.CELL_ELMAN, "lstm": G.CELL_LSTM, "gru": G.CELL_GRU}


def _single_grads(g: Any) -> Any:
    """A layer's batched gradient record as that of one sequence (flows ``[:, 0]``)."""
    if isinstance(g, ElmanGrads):
        return ElmanGrads(g.W_hh, g.W_hx, g.b_h, None, None, g.flow[:, 0], g.alpha)
    if isinstance(g, LSTMGrads):
        return LSTMGrads(g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, None, None, g.flow[:, 0], g.flow_c[:, 0])
    return GRUGrads(g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, None, None, g.flow[:, 0])
