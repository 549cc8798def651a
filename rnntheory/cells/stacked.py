"""Stacked recurrent models: ``L`` layers of one cell, layer ``l`` reading layer ``l−1``'s states.

A :class:`StackedRNN` is what ``torch.nn.RNN/LSTM/GRU(num_layers=L)`` computes
(eval mode, one direction): layer 0 reads the inputs ``x_t``, layer ``l ≥ 1``
reads ``h^{l−1}_t``, the hidden states of the layer below at the same step,
and an optional linear readout ``y_t = W_yh h^{L−1}_t + b_y`` sits on the top
layer, with the losses of :class:`~rnntheory.ElmanRNN` (Eqs. 3–4 of the
article). Each layer is an :class:`~rnntheory.ElmanRNN` (any form, activation
or leak), :class:`~rnntheory.LSTM` or :class:`~rnntheory.GRU` without a
readout of its own; all layers are one cell class, one dtype and one width.

The state of the stack at step ``k`` is ``s_k``, the concatenation of the
layers' states, layer 0 first, each in its cell's order (LSTM: ``h`` then
``c``), of size ``state_size`` (``L·n``, ``2·L·n`` for the LSTM). One step maps
``s_{k−1}`` to ``s_k`` (layer ``l`` first reads the new ``h^{l−1}_k``), so the
step Jacobian ``∂s_k/∂s_{k−1}`` is block lower-triangular across layers.

Initial states are shaped as PyTorch shapes them: ``h0`` (and ``c0``) of shape
``(L, n)`` for one sequence, ``(L, B, n)`` for a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from .._parallel import own_threads, run_rows, scratch, threads_for
from .._validation import (
    ReachError,
    all_finite,
    as_float_array,
    as_generator,
    as_model_dtype,
    check_choice,
    check_dtype,
    check_int,
)
from . import _stack_kernels as SK
from ._base import GradsBase, SequenceModel, TraceBase, parse_truncate, readout_params, readout_rows
from .curvature import GaussNewton
from .elman import ElmanGrads, ElmanRNN, Trace
from .gated import GRU, LSTM, GatedTrace, GRUGrads, LSTMGrads

__all__ = ["StackedGrads", "StackedRNN", "StackedTrace"]

CELLS = ("elman", "lstm", "gru")
_CLASSES: dict[str, Any] = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU}
_ELMAN_OPTIONS = ("activation", "form", "alpha", "learn_alpha")

Layer = ElmanRNN | LSTM | GRU
LayerTrace = Trace | GatedTrace
LayerGrads = ElmanGrads | LSTMGrads | GRUGrads


def _cell_name(layer: Any) -> str:
    return "elman" if isinstance(layer, ElmanRNN) else ("lstm" if isinstance(layer, LSTM) else "gru")


@dataclass(frozen=True)
class StackedTrace(TraceBase):
    """What a forward pass of a :class:`StackedRNN` leaves behind.

    Attributes
    ----------
    layers : tuple of Trace or GatedTrace
        Layer ``l``'s own trace (``layers[l].h[0]`` is its initial state; its
        ``y`` is ``None``). Layer ``l``'s input at step ``t`` is
        ``layers[l-1].h[t]`` (``t = 1..T``); layer 0's is ``x``.
    y : ndarray or None, shape ``(T, n_out)`` or ``(T, B, n_out)``
        The top readout (``None`` without a readout).
    h : ndarray (property)
        The top layer's hidden states ``(T+1, [B,] n)``.
    state : ndarray (property)
        The whole state ``s_k`` for ``k = 0..T``, ``(T+1, [B,] S)``: the layers'
        states concatenated, layer 0 first, LSTM layers ``h`` then ``c``.
    """

    layers: tuple[LayerTrace, ...]
    y: np.ndarray | None = None

    @property
    def h(self) -> np.ndarray:  # type: ignore[override]
        """The top layer's hidden states."""
        return self.layers[-1].h

    @property
    def state(self) -> np.ndarray:
        """``s_k`` for ``k = 0..T``: ``(T+1, S)`` or ``(T+1, B, S)``."""
        parts: list[np.ndarray] = []
        for tr in self.layers:
            parts.append(tr.h)
            c = getattr(tr, "c", None)
            if c is not None:
                parts.append(c)
        return np.concatenate(parts, axis=-1)

    def sequence(self, b: int) -> StackedTrace:
        """The trace of sequence ``b`` of a batch, as a single-sequence trace."""
        layers = tuple(tr.sequence(b) for tr in self.layers)
        return StackedTrace(layers, None if self.y is None else self.y[:, b])


@dataclass(frozen=True)
class StackedGrads(GradsBase):
    """Gradients of a :class:`StackedRNN`'s loss, and the flow of the whole state.

    Attributes
    ----------
    layers : tuple of ElmanGrads, LSTMGrads or GRUGrads
        Layer ``l``'s parameter gradients (readout fields ``None``); their
        ``flow`` (and ``flow_c``) is that of the layer's own backward pass with
        ``∂E/∂h^l_t`` taken through everything above it, as
        :meth:`~rnntheory.ElmanRNN.vjp` returns it.
    W_yh, b_y : ndarray or None
        Gradients of the top readout.
    flow : ndarray, shape ``(T+1, S)`` or ``(T+1, B, S)``
        ``flow[k] = ∂E/∂s_k`` for ``k = 0..T``, the gradient with respect to
        the whole state of step ``k`` (its parts held independent, as in the
        step map ``s_{k−1} ↦ s_k``): ``flow[k] = J_{k+1}ᵀ flow[k+1] + ∂E_k/∂s_k``
        with ``J_{k+1} = ∂s_{k+1}/∂s_k``. ``flow[0]`` is the gradient at
        ``(h0, c0)`` of every layer. Formed from the layers' own flows: a layer
        below the top loses the part that reached it through the layer above at
        the same step (a coordinate of its own in ``s_k``), so its rounding
        error is relative to the larger of the two; an LSTM layer's ``c`` part
        is ``σ(f_{k+1}) ⊙ flow_c[k+1]`` (``∂E/∂c_k`` with ``h_k`` held fixed,
        where the cell's ``flow_c[k]`` also counts the path through
        ``h_k = σ(o_k) tanh(c_k)``).
    trace : StackedTrace or None
        The forward pass of the same inputs, kept by
        ``value_and_grad(..., keep_trace=True)`` (``None`` otherwise).
    """

    layers: tuple[LayerGrads, ...]
    W_yh: np.ndarray | None
    b_y: np.ndarray | None
    flow: np.ndarray = field(repr=False)
    trace: StackedTrace | None = field(default=None, repr=False, kw_only=True)

    def params(self) -> dict[str, np.ndarray]:
        """The parameter gradients keyed like :meth:`StackedRNN.params`
        (``"<name>_l<l>"``, then ``W_yh``, ``b_y`` when there is a readout)."""
        out: dict[str, np.ndarray] = {}
        for i, g in enumerate(self.layers):
            for k, v in g.params().items():
                out[f"{k}_l{i}"] = v
        if self.W_yh is not None:
            out["W_yh"] = self.W_yh
            assert self.b_y is not None
            out["b_y"] = self.b_y
        return out


class StackedRNN(SequenceModel):
    """``L`` recurrent layers of one cell class, with a readout on the top layer.

    Parameters
    ----------
    layers : sequence of ElmanRNN, LSTM or GRU
        The layers, bottom first: one cell class (Elman layers may differ in
        form, activation and leak), one dtype, one ``n_hidden``, no readout of
        their own; layer ``l ≥ 1`` has ``n_in == n_hidden``.
    W_yh : array, shape ``(n_out, n)``, optional
        Readout of the top layer (Eq. 3); without it the loss applies to the
        top layer's ``h_t``.
    b_y : array, shape ``(n_out,)``, optional
        Readout bias (zeros when ``W_yh`` is given and ``b_y`` is not).

    Raises
    ------
    ValueError
        On no layers, mismatched widths or sizes, a layer with a readout, or a
        bad readout shape.
    TypeError
        On a layer that is not an ElmanRNN, LSTM or GRU, layers of different
        classes or dtypes, or a readout of another dtype.

    Notes
    -----
    Immutable like the cells: the layers are models that own their
    parameters, attributes cannot be reassigned, and :meth:`replace` builds a
    new model. ``params()`` keys are ``"<cell parameter>_l<l>"`` (the layer
    index from 0, as PyTorch's ``weight_hh_l1``) plus ``W_yh``, ``b_y``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import StackedRNN
    >>> m = StackedRNN.init(3, 5, 2, cell="lstm", n_layers=2, seed=0)
    >>> tr = m.forward(np.zeros((4, 3)))
    >>> tr.h.shape, tr.state.shape, m.state_size
    ((5, 5), (5, 20), 20)
    >>> sorted(m.params())[:3]
    ['W_yh', 'b_y', 'bias_hh_l0']

    PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``num_layers = L``;
    Pascanu et al. 2014 (deep recurrent networks).
    """

    def __init__(self, layers: Sequence[Layer], W_yh: Any = None, b_y: Any = None) -> None:
        if isinstance(layers, ElmanRNN | LSTM | GRU) or not isinstance(layers, Sequence):
            raise TypeError(
                f"`layers` must be a list or tuple of ElmanRNN, LSTM or GRU models, got {type(layers).__name__}"
            )
        layers = tuple(layers)
        if not layers:
            raise ValueError("`layers` must hold at least one layer (n_layers >= 1), got 0")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ElmanRNN | LSTM | GRU):
                raise TypeError(
                    f"`layers[{i}]` must be an ElmanRNN, LSTM or GRU, got {type(layer).__name__}"
                )
        first = layers[0]
        n, dtype = first.n_hidden, first.dtype
        for i, layer in enumerate(layers):
            if type(layer) is not type(first):
                raise TypeError(
                    f"`layers` must all be one cell class, got {type(first).__name__} (layer 0) "
                    f"and {type(layer).__name__} (layer {i})"
                )
            if layer.dtype != dtype:
                raise TypeError(
                    f"`layers` must all have one dtype, got {dtype} (layer 0) and {layer.dtype} (layer {i})"
                )
            if layer.n_hidden != n:
                raise ValueError(
                    f"`layers` must all have one n_hidden, got {n} (layer 0) and {layer.n_hidden} (layer {i})"
                )
            if i >= 1 and layer.n_in != n:
                raise ValueError(
                    f"`layers[{i}]` must have n_in = n_hidden = {n} (it reads layer {i - 1}'s states), "
                    f"got n_in = {layer.n_in}"
                )
            if layer.W_yh is not None:
                raise ValueError(
                    f"`layers[{i}]` has a readout (W_yh of shape {layer.W_yh.shape}); only the top of a "
                    "stack reads out: pass it as StackedRNN(layers, W_yh=..., b_y=...)"
                )
        self.layers: tuple[Layer, ...] = layers
        self.dtype: np.dtype = dtype
        self.W_yh, self.b_y = readout_params(W_yh, b_y, n, dtype, "layers")
        self.cell: str = _cell_name(first)
        self._freeze()

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of layers ``L``."""
        return len(self.layers)

    @property
    def n_hidden(self) -> int:
        """Hidden units per layer ``n``."""
        return self.layers[0].n_hidden

    @property
    def n_in(self) -> int:
        """Input size (layer 0's)."""
        return self.layers[0].n_in

    @property
    def state_size(self) -> int:
        """Size ``S`` of the whole state: ``L·n``, ``2·L·n`` for the LSTM."""
        return self.n_layers * self.n_hidden * (2 if self.cell == "lstm" else 1)

    def params(self) -> dict[str, np.ndarray]:
        """The parameters by name: ``"<cell parameter>_l<l>"`` for every layer
        (e.g. ``weight_hh_l1``, ``W_hh_l0``, ``alpha_l0`` for a learned leak),
        then ``W_yh`` and ``b_y`` when there is a readout. The arrays are the
        layers' own read-only arrays."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            for k, v in layer.params().items():
                out[f"{k}_l{i}"] = v
        if self.W_yh is not None:
            assert self.b_y is not None
            out["W_yh"] = self.W_yh
            out["b_y"] = self.b_y
        return out

    def replace(self, **params: Any) -> StackedRNN:
        """A copy with some parameters replaced, keyed as :meth:`params`
        (``"<name>_l<l>"``, ``W_yh``, ``b_y``; Elman layers also take their
        options ``activation_l<l>``, ``form_l<l>``, ``alpha_l<l>``,
        ``learn_alpha_l<l>``)."""
        per_layer: list[dict[str, Any]] = [{} for _ in self.layers]
        W_yh, b_y = self.W_yh, self.b_y
        for key, value in params.items():
            if key == "W_yh":
                W_yh = value
                continue
            if key == "b_y":
                b_y = value
                continue
            name, sep, idx = key.rpartition("_l")
            layer_i = int(idx) if sep and idx.isdigit() else -1
            if not 0 <= layer_i < self.n_layers:
                raise ValueError(
                    f"`{key}` is not a parameter of StackedRNN: keys are '<parameter>_l<layer>' with a "
                    f"layer in 0..{self.n_layers - 1}, 'W_yh' or 'b_y'"
                )
            layer = self.layers[layer_i]
            allowed = set(layer.params()) | (set(_ELMAN_OPTIONS) if self.cell == "elman" else set())
            if name not in allowed:
                raise ValueError(f"`{key}` is not a parameter of StackedRNN (layer {layer_i} has no `{name}`)")
            per_layer[layer_i][name] = value
        layers = []
        for i, (layer, kw) in enumerate(zip(self.layers, per_layer, strict=True)):
            try:
                layers.append(layer.replace(**kw) if kw else layer)
            except (ValueError, TypeError) as exc:  # name the stack's key, not the layer's
                msg = str(exc)
                for name in kw:
                    msg = msg.replace(f"`{name}`", f"`{name}_l{i}`")
                raise type(exc)(msg) from None
        return StackedRNN(layers, W_yh, b_y)

    def _init_kwargs(self) -> dict[str, Any]:
        return {"layers": self.layers, "W_yh": self.W_yh, "b_y": self.b_y}

    def __repr__(self) -> str:
        return self._describe("StackedRNN", f", cell={self.cell!r}, n_layers={self.n_layers}")

    @classmethod
    def init(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int | None,
        *,
        cell: str = "lstm",
        n_layers: int = 2,
        seed: int | None = 0,
        dtype: Any = np.float64,
        **cell_options: Any,
    ) -> StackedRNN:
        """Draw a stack: each layer by its cell's ``init``, the readout uniform.

        Parameters
        ----------
        n_in, n_hidden : int
            Input size (of layer 0) and width of every layer.
        n_out : int or None
            Readout size; ``None`` for no readout.
        cell : {"elman", "lstm", "gru"}
        n_layers : int
            ``L ≥ 1``.
        seed : int or None
            Seed of NumPy's PCG64 generator; each layer gets its own seed drawn
            from it (distinct per layer, deterministic for an integer seed), the
            readout the next draws.
        dtype : float32 or float64
        **cell_options
            Passed to every layer's ``init`` (e.g. Elman's ``scheme``,
            ``activation``, ``form``, ``alpha``; the LSTM's ``forget_bias``).
            ``scheme="orthogonal"`` is the orthogonal initialisation per gate
            per layer: every gate block of every layer's recurrent matrix an
            independent Haar-random orthogonal ``n × n`` matrix (each layer
            draws from its own seed), as the cell's ``init`` draws it.

        Returns
        -------
        StackedRNN
            Readout ``W_yh`` entries ``U(−1/√n, 1/√n)`` (as PyTorch's
            ``nn.Linear``), ``b_y = 0``.

        Raises
        ------
        ValueError
            On a bad size, ``cell``, ``n_layers`` or cell option.
        TypeError
            On a non-float ``dtype`` or an option the cell's ``init`` does not take.
        """
        cell = check_choice("cell", cell, CELLS)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        n_in = check_int("n_in", n_in, minimum=1)
        n = check_int("n_hidden", n_hidden, minimum=1)
        if n_out is not None:
            n_out = check_int("n_out", n_out, minimum=1)
        dt = check_dtype("dtype", dtype)
        rng = as_generator("seed", seed)
        seeds = rng.integers(0, 2**63 - 1, size=n_layers)
        klass = _CLASSES[cell]
        layers = []
        for i in range(n_layers):
            try:
                layer = klass.init(n_in if i == 0 else n, n, None, seed=int(seeds[i]), dtype=dt, **cell_options)
            except TypeError as exc:
                if "unexpected keyword" in str(exc):
                    raise TypeError(
                        f"`cell_options` has an option {cell!r} layers do not take: {exc}"
                    ) from None
                raise
            layers.append(layer)
        W_yh = b_y = None
        if n_out is not None:
            k = 1.0 / np.sqrt(n)
            W_yh = rng.uniform(-k, k, (n_out, n)).astype(dt)
            b_y = np.zeros(n_out, dt)
        return cls(layers, W_yh, b_y)

    # ------------------------------------------------------------------ forward
    def _initial(self, name: str, value: Any, B: int, batched: bool) -> list[np.ndarray | None]:
        """``h0``/``c0`` of shape ``(L, n)`` or ``(L, B, n)`` as one ``(B, n)``
        array per layer (``None`` entries when not given)."""
        L, n = self.n_layers, self.n_hidden
        if value is None:
            return [None] * L
        s = as_float_array(name, value, ndim=(2, 3))
        want = (L, B, n) if batched else (L, n)
        if s.shape != want:
            form = "(L, B, n)" if batched else "(L, n)"
            raise ValueError(f"`{name}` must have shape {form} = {want}, got shape {s.shape}")
        s = np.array(as_model_dtype(name, s, self.dtype).reshape(L, B, n), order="C", copy=True)
        return [s[i] for i in range(L)]

    def _setup(self, x: Any, h0: Any, c0: Any) -> tuple[np.ndarray, bool, list[Any], list[Any]]:
        x3, batched = self._inputs(x)
        B = x3.shape[1]
        h0s = self._initial("h0", h0, B, batched)
        if self.cell != "lstm" and c0 is not None:
            raise ValueError(f"`c0` applies to a stack of LSTM layers only, got one of {self.cell} layers")
        c0s = self._initial("c0", c0, B, batched)
        return x3, batched, h0s, c0s

    def _run_layers(
        self, x3: np.ndarray, h0s: list[Any], c0s: list[Any], for_grad: bool, fresh: bool = False,
        kept: list[tuple[np.ndarray, ...]] | None = None,
    ) -> tuple[list[np.ndarray], list[tuple[np.ndarray, ...]]]:
        """Every layer's forward pass, bottom up: the inputs of each layer and
        what its backward pass (``for_grad``) or its trace needs. ``fresh``:
        the backward pass's arrays in new arrays rather than per-thread scratch
        (truncated BPTT keeps them while it runs several backward passes).
        ``kept`` (with ``for_grad``): a list that receives each layer's trace
        arrays as well, ``(H, A, FP)`` of an Elman layer (its ``f′`` copied, as
        the backward pass overwrites it), the backward pass's own arrays of a
        gated one (which it only reads)."""
        B, n = x3.shape[1], self.n_hidden
        inputs: list[np.ndarray] = []
        saved: list[tuple[np.ndarray, ...]] = []
        xl = x3
        for i, layer in enumerate(self.layers):
            h0 = h0s[i]
            if i >= 1 and not all_finite(xl):  # layer i−1's states grew past the float range
                raise ReachError(
                    f"layer {i} (it reads the states of layer {i - 1} as its input `x`): the states of "
                    f"layer {i - 1} are not finite (they grew beyond {self.dtype}'s range); rescale `x` "
                    f"or the weights of layer {i - 1}"
                )
            try:
                layer._check_reach(xl, h0)
            except ReachError as exc:
                where = "" if i == 0 else f" (it reads the states of layer {i - 1} as its input `x`)"
                raise ReachError(f"layer {i}{where}: {exc}") from None
            h = np.zeros((B, n), dtype=self.dtype) if h0 is None else h0
            inputs.append(xl)
            if isinstance(layer, ElmanRNN) and not for_grad:
                H, A, _, _ = layer._forward3(xl, h, keep_a=True, readout=False)
                arrays: tuple[np.ndarray, ...] = (H, A)
            elif isinstance(layer, ElmanRNN) and kept is not None:
                tag = f"_stack{i}"
                H, A, _, FP = layer._forward3(
                    xl, h, keep_fprime=True, keep_a=True, readout=False, temporary=not fresh, tag=tag
                )
                kept.append((H, A, FP))
                FPb = np.empty_like(FP) if fresh else scratch("FPb" + tag, FP.shape, self.dtype)
                FPb[...] = FP
                arrays = (H, FPb)
            else:
                # value_and_grad keeps these only for its own backward pass:
                # per-thread scratch arrays, one set per layer
                arrays = layer._vjp_forward(xl, h, c0s[i], f"_stack{i}" if for_grad and not fresh else None)
                if kept is not None:
                    kept.append(arrays)
            saved.append(arrays)
            xl = arrays[0][1:]
        return inputs, saved

    def forward(self, x: Any, h0: Any = None, c0: Any = None, *, batch_first: bool = False) -> StackedTrace:
        """Run the stack over ``x``.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
            Inputs, time-major; ``x[0]`` is ``x_1``.
        h0 : array, shape ``(L, n)`` or ``(L, B, n)``, optional
            Initial hidden state of every layer (zeros by default), as PyTorch.
        c0 : array, shape of ``h0``, optional
            Initial cell states (LSTM layers only).
        batch_first : bool
            ``x`` is ``(B, T, n_in)``: the layout of a PyTorch module built
            with ``batch_first=True`` (``h0``, ``c0`` stay ``(L, B, n)``, as
            there). A 2-D ``x`` is refused.

        Returns
        -------
        StackedTrace
            Every layer's trace, the top readout, and the whole state. Traces
            are always time-major, with ``batch_first=True`` too: ``trace.h``
            is ``(T+1, B, n)``.

        Raises
        ------
        ValueError
            On a bad shape or non-finite input, ``c0`` for non-LSTM layers,
            and when a layer's pre-activation could pass the dtype's range with
            its real input (layer 0: ``x``; layer ``l ≥ 1``: the states of layer
            ``l−1``, bounded by 1 for tanh/sigmoid and gated layers, not for
            ReLU or identity Elman layers): the message names the layer and
            the argument or parameter that carries the large values.
        """
        x, = self._time_major(batch_first, x)
        x3, batched, h0s, c0s = self._setup(x, h0, c0)
        _, saved = self._run_layers(x3, h0s, c0s, for_grad=False)
        T, B = x3.shape[0], x3.shape[1]
        k = threads_for(B, T * B * self.n_hidden * self.n_out)
        with own_threads(k):
            Y = self._readout(saved[-1][0], k)
        return self._trace(saved, Y, batched)

    def _trace(self, saved: list[tuple[np.ndarray, ...]], Y: np.ndarray | None, batched: bool) -> StackedTrace:
        """The :class:`StackedTrace` of every layer's forward arrays (``(H, A)`` or
        ``(H, A, FP)`` of an Elman layer, ``(H, C, P)``/``(H, P)`` of a gated one)."""
        traces: list[LayerTrace] = []
        for arrays in saved:
            if self.cell == "elman":
                H, A = arrays[0], arrays[1]
                FP = arrays[2] if len(arrays) > 2 else None
                tr: LayerTrace = (
                    Trace(H, A, None, FP) if batched
                    else Trace(H[:, 0], A[:, 0], None, None if FP is None else FP[:, 0])
                )
            elif self.cell == "lstm":
                H, C, P = arrays
                tr = GatedTrace(H, C, P, None) if batched else GatedTrace(H[:, 0], C[:, 0], P[:, 0], None)
            else:
                H, P = arrays
                tr = GatedTrace(H, None, P, None) if batched else GatedTrace(H[:, 0], None, P[:, 0], None)
            traces.append(tr)
        if not batched and Y is not None:
            Y = Y[:, 0]
        return StackedTrace(tuple(traces), Y)

    # ------------------------------------------------------------------ gradients
    def value_and_grad(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        c0: Any = None,
        truncate: Any = None,
        batch_first: bool = False,
        keep_trace: bool | str = False,
    ) -> tuple[float, StackedGrads]:
        """Loss (Eq. 4) and its gradient with respect to every parameter, by
        BPTT through the whole stack.

        One forward pass through every layer keeps what each layer's backward
        pass needs; the loss gradient enters at the top readout; then each
        layer, from the top down, runs its own BPTT (its cell's Numba kernels,
        as :meth:`~rnntheory.ElmanRNN.vjp`) with ``∂E/∂h^l_t`` the gradient the
        layer above sends back through its input (the readout's for the top
        layer), and passes ``∂E/∂x^l_t = D^l_t W^l_ih`` down.

        Parameters
        ----------
        x, y, loss, mask
            As in :meth:`rnntheory.ElmanRNN.value_and_grad`.
        h0, c0 : array, shape ``(L, n)`` or ``(L, B, n)``, optional
            Initial states of every layer, as in :meth:`forward`.
        truncate : int or (int, int), optional
            Truncated BPTT with the schedules of the single cells
            (:meth:`rnntheory.LSTM.value_and_grad`), the window on the **whole
            state** ``s_k`` (every layer, LSTM ``h`` and ``c``): the
            contribution of ``E_t`` through ``s_k`` is kept only when
            ``e(t) − k < k2``, so the gradient of each loss term flows back at
            most ``k2`` steps through the recurrence (``s_k → s_{k−1}``), and
            across the layers within a step without restriction (layer ``l``'s
            parameters at step ``k`` reach ``E_t`` through the layers above it
            at the same step ``k``). ``k2`` alone is the sliding window
            (``e(t) = t``); ``(k1, k2)`` with ``k2 ≥ k1`` is Williams & Peng's
            BPTT(k1, k2), blocks of ``k1`` losses ending at
            ``e = k1, 2k1, …, T`` (the last at ``T``), each backpropagated
            ``k2`` steps from its end, as if the whole state were detached at
            ``e − k2``; ``(k, k)`` is chunks. ``flow`` and every layer's
            ``flow``/``flow_c`` are truncated the same way; the readout's
            gradients and the loss are not. ``None`` is full BPTT, and so is
            any ``k2 > T``.

            Cost: the blocks whose window starts at ``s_0`` (``e < k2``) are
            one BPTT pass over their steps; every other block is a window of
            ``k2`` steps, recomputed from the stored ``s_{e−k2}`` (forward
            and backward, all windows run as one batch through the layers'
            kernels). With ``⌈T/k1⌉`` blocks that is ``O(T·k2/k1)`` steps of
            every layer: ``O(T·k2)`` for the sliding window, ``O(T)`` for
            chunks, against ``O(T)`` for full BPTT; memory ``O(T·k2/k1)``
            per layer, taken in slices of the windows.
        batch_first : bool
            ``x`` is ``(B, T, n_in)``, ``y`` ``(B, T)`` or ``(B, T, n_out)``,
            ``mask`` ``(B, T)``: the layout of a PyTorch module built with
            ``batch_first=True``. A 2-D ``x`` is refused.
        keep_trace : bool or "scratch"
            Any true value returns the forward pass in ``grads.trace`` (a
            :class:`StackedTrace`, time-major; an Elman layer's trace keeps
            ``f′(a)`` as ``fprime``), as Pascanu et al.'s Ω needs it
            (:func:`rnntheory.remedies.omega`): the arrays of this call's own
            forward pass (under truncation, one more forward pass).
            ``"scratch"``: the same in per-thread scratch arrays, overwritten by
            the next ``value_and_grad`` on this thread (for a caller that uses
            the trace at once, as ``train`` does for Ω); for a stack of LSTMs
            or GRUs under full BPTT it also keeps, in the same way, what Ω of the
            whole state reads from each layer's backward pass (the gates are
            then not recomputed); nothing else the call returns changes.

        Returns
        -------
        loss : float
            ``E = Σ_t Σ_b mask[t, b] · E_t``, accumulated in float64.
        grads : StackedGrads
            Per-layer gradients, the readout's, and ``flow[k] = ∂E/∂s_k`` of the
            whole state for ``k = 0..T``. Flows are always time-major,
            ``(T+1, B, S)`` with ``batch_first=True`` too.

        Raises
        ------
        ValueError
            On bad inputs, targets, mask or initial states (as :meth:`forward`,
            reach check included), or a ``truncate`` that is not a positive
            ``k2`` or a pair ``(k1, k2)`` with ``k2 ≥ k1 ≥ 1``.
        TypeError
            On non-numeric inputs or non-integer classes for ``loss="xent"``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import StackedRNN
        >>> m = StackedRNN.init(2, 4, 3, cell="gru", n_layers=2, seed=0)
        >>> x, y = np.ones((5, 2)), np.array([0, 1, 2, 1, 0])
        >>> E, g = m.value_and_grad(x, y)
        >>> bool(E == m.loss(x, y)), g.flow.shape, sorted(g.params())[-1]
        (True, (6, 8), 'weight_ih_l1')

        With ``truncate=1`` each ``E_t`` reaches only the parameters' use at
        step ``t`` (through every layer at that step), and no flow reaches ``s_0``:

        >>> _, g1 = m.value_and_grad(x, y, truncate=1)
        >>> bool(np.all(g1.flow[0] == 0)), bool(np.all(g1.W_yh == g.W_yh))
        (True, True)

        Eqs. 4–8 of the article (BPTT), through every layer; Williams & Peng
        1990 (BPTT(k1, k2)).
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        if keep_trace not in (False, True, "scratch"):
            raise ValueError(f"`keep_trace` must be True, False or 'scratch', got {keep_trace!r}")
        k1, k2 = parse_truncate(truncate)
        x3, batched, h0s, c0s = self._setup(x, h0, c0)
        T, B = x3.shape[0], x3.shape[1]
        if keep_trace and k2 is not None and k2 <= T:
            value, g = self.value_and_grad(x, y, loss=loss, mask=mask, h0=h0, c0=c0, truncate=truncate)
            return value, replace(g, trace=self.forward(x, h0, c0))
        n, L = self.n_hidden, self.n_layers
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        if k2 is not None and k2 <= T:
            return self._truncated(x3, batched, h0s, c0s, loss, tgt, m, k1, k2)
        # keep_trace: the trace is the forward arrays of this pass (no second forward
        # pass); True gives them in fresh arrays, "scratch" in per-thread scratch
        kept: list[tuple[np.ndarray, ...]] | None = [] if keep_trace else None
        inputs, saved = self._run_layers(x3, h0s, c0s, for_grad=True, fresh=keep_trace is True, kept=kept)
        H_top = saved[-1][0]
        k = threads_for(B, T * B * n * max(n, self.n_out))
        with own_threads(k):
            Y = self._readout(H_top, k)
        value, dZ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H_top[1:]), loss, tgt, m)
        if self.W_yh is not None:
            with own_threads(k):
                dh = readout_rows(dZ.reshape(T * B, -1), self.W_yh, np.zeros(n, self.dtype), k).reshape(T, B, n)
                g_yh, g_by = self._readout_grads(dZ, H_top, k)
        else:
            dh, g_yh, g_by = dZ, None, None
        grads: list[Any] = [None] * L
        sent: list[np.ndarray] = [dh] * L  # sent[l]: the cotangent layer l received
        # a "scratch" trace of a gated stack (train's Ω step) also keeps, per layer, what
        # Ω of the whole state reads from BPTT (remedies/omega.py): D^l, u^l_h (LSTM:
        # D^l W^l_hh and the c carry; GRU: D^l W^l_hh + z ⊙ w^l); layer l's records in
        # scratch arrays of its own suffix
        parts = keep_trace == "scratch" and self.cell in ("lstm", "gru")
        for i in range(L - 1, -1, -1):
            sent[i] = dh
            # layer 0's dx is not needed: skipped
            layer = self.layers[i]
            if parts and isinstance(layer, LSTM | GRU):
                grads[i], dh = layer._vjp_backward(inputs[i], saved[i], dh, need_dx=i > 0, parts=f"_l{i}")
            else:
                grads[i], dh = self.layers[i]._vjp_backward(inputs[i], saved[i], dh, need_dx=i > 0)
        flow = self._state_flow(grads, sent, saved, T, B)
        trace = self._trace(kept, Y, batched) if kept is not None else None
        layer_parts = [g._omega_parts for g in grads] if parts else None
        if not batched:
            flow = flow[:, 0]
            grads = [_single(g) for g in grads]
        result = StackedGrads(tuple(grads), g_yh, g_by, flow, trace=trace)
        if layer_parts is not None:  # not a field: valid until this thread's next call
            object.__setattr__(result, "_omega_parts",
                               (tuple(getattr(layer, "weight_hh", None) for layer in self.layers), trace,
                                layer_parts))
        return value, result

    def _backprop(
        self, inputs: list[np.ndarray], saved: list[tuple[np.ndarray, ...]], dh: np.ndarray
    ) -> tuple[list[Any], np.ndarray]:
        """Full BPTT of the stack from its layers' ``inputs`` and forward arrays
        ``saved`` (as :meth:`_run_layers` returns them, for ``T`` steps of ``B``
        sequences; overwritten) with the cotangent ``dh (T, B, n)`` of the top
        layer's ``h_1..h_T``: the layers' batched gradient records and the
        whole state's flow ``(T+1, B, S)``."""
        T, B, L = dh.shape[0], dh.shape[1], self.n_layers
        grads: list[Any] = [None] * L
        sent: list[np.ndarray] = [dh] * L
        for i in range(L - 1, -1, -1):
            sent[i] = dh
            grads[i], dh = self.layers[i]._vjp_backward(inputs[i], saved[i], dh, need_dx=i > 0)
        return grads, self._state_flow(grads, sent, saved, T, B)

    def _truncated(
        self, x3: np.ndarray, batched: bool, h0s: list[Any], c0s: list[Any], loss: str,
        tgt: np.ndarray, m: np.ndarray, k1: int, k2: int,
    ) -> tuple[float, StackedGrads]:
        """:meth:`value_and_grad` with the schedule ``(k1, k2)``, ``k2 ≤ T``.

        Blocks end at ``e_j = min(j·k1, T)``. Those with ``e < k2`` reach back
        to ``s_0`` with every pair kept: together one BPTT pass over steps
        ``1..E`` (``E`` the last such end) with their losses. Every other block
        is a window of ``k2`` steps ``e−k2+1..e`` started from the stored
        ``s_{e−k2}`` (held constant) with the block's losses: the windows run
        as one batch (in slices) through :meth:`_backprop`; their parameter
        gradients add up, their flows are added at steps ``e−k2+1..e`` (the
        window's start, where ``e − k = k2``, is dropped). A window's forward
        arrays are gathered from the one forward pass (the same trajectory:
        nothing is recomputed forward), so the cost is the windows' backward
        passes, ``O(T·k2/k1)`` steps of every layer."""
        T, B, n, L = x3.shape[0], x3.shape[1], self.n_hidden, self.n_layers
        inputs, saved = self._run_layers(x3, h0s, c0s, for_grad=True, fresh=True)
        H_top = saved[-1][0]
        k = threads_for(B, T * B * n * max(n, self.n_out))
        with own_threads(k):
            Y = self._readout(H_top, k)
        value, dZ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H_top[1:]), loss, tgt, m)
        if self.W_yh is not None:
            with own_threads(k):
                dh = readout_rows(dZ.reshape(T * B, -1), self.W_yh, np.zeros(n, self.dtype), k).reshape(T, B, n)
                g_yh, g_by = self._readout_grads(dZ, H_top, k)
        else:
            dh, g_yh, g_by = dZ, None, None
        ends = np.minimum(np.arange(1, -(-T // k1) + 1) * k1, T)
        lows = np.arange(0, ends.size) * k1  # block j holds the losses at steps lows[j]+1..ends[j]
        short = ends < k2
        # every record: layer fields summed, flows (T+1, B, ·) filled by the passes
        total: list[dict[str, Any]] = [{} for _ in range(L)]
        flows: list[dict[str, np.ndarray]] = [{} for _ in range(L)]
        flow = np.zeros((T + 1, B, self.state_size), dtype=self.dtype)

        def add(grads: list[Any], layer_flows: Any) -> None:
            for i, g in enumerate(grads):
                for f in fields(g):
                    v = getattr(g, f.name)
                    if f.name in ("flow", "flow_c"):
                        if v.size:
                            buf = flows[i].setdefault(f.name, np.zeros((T + 1, B, n), dtype=self.dtype))
                            layer_flows(buf, v)
                    elif v is not None:
                        total[i][f.name] = v if f.name not in total[i] else total[i][f.name] + v

        if short.any():
            E = int(ends[short][-1])
            # the forward arrays of steps 1..E (states 0..E): copies, as the backward pass overwrites some
            sv = [tuple(np.array(a[:E + 1] if a.shape[0] == T + 1 else a[:E]) for a in arrs) for arrs in saved]
            inp = [np.array(a[:E]) for a in inputs]
            grads, fl = self._backprop(inp, sv, np.ascontiguousarray(dh[:E]))
            flow[:E + 1] += fl

            def prefix(buf: np.ndarray, v: np.ndarray) -> None:
                buf[:E + 1] += v

            add(grads, prefix)
        full_ends = ends[~short]
        if full_ends.size:
            full_lows = lows[~short]
            step = np.arange(k2)
            # windows per slice: at most ~2^21 numbers in a layer's widest array
            per = max(1, (1 << 21) // max(1, k2 * B * n * (4 if self.cell == "lstm" else 3)))
            for w0 in range(0, full_ends.size, per):
                e = full_ends[w0:w0 + per]
                lo = full_lows[w0:w0 + per]
                W = e.size
                start = e - k2  # the window's s_{e−k2}
                idx = start[None, :] + step[:, None]  # (k2, W): x index of window step j+1
                xw = np.ascontiguousarray(x3[idx].reshape(k2, W * B, -1))
                keep = (idx >= lo[None, :]).astype(self.dtype)  # step idx+1 in the block
                dw = np.ascontiguousarray((dh[idx] * keep[:, :, None, None]).reshape(k2, W * B, n))
                idx_s = start[None, :] + np.arange(k2 + 1)[:, None]  # (k2+1, W): states s_{e−k2}..s_e
                sv = [
                    tuple(
                        a[idx_s].reshape(k2 + 1, W * B, -1) if a.shape[0] == T + 1 else a[idx].reshape(k2, W * B, -1)
                        for a in arrs
                    )
                    for arrs in saved
                ]
                inp = [xw] + [a[idx].reshape(k2, W * B, n) for a in inputs[1:]]
                grads, fl = self._backprop(inp, sv, dw)
                fl4 = fl.reshape(k2 + 1, W, B, -1)
                for j in range(1, k2 + 1):  # window step j is the model's step start + j (distinct ends)
                    flow[start + j] += fl4[j]

                def windows(buf: np.ndarray, v: np.ndarray, start: np.ndarray = start, W: int = W) -> None:
                    v4 = v.reshape(k2 + 1, W, B, n)
                    for j in range(1, k2 + 1):
                        buf[start + j] += v4[j]

                add(grads, windows)
        layer_grads: list[Any] = []
        for i, layer in enumerate(self.layers):
            rec = self._empty_grads(layer, T, B)
            kw = {**total[i], **flows[i]}
            layer_grads.append(replace(rec, **{k: v for k, v in kw.items() if k in {f.name for f in fields(rec)}}))
        if not batched:
            flow = flow[:, 0]
            layer_grads = [_single(g) for g in layer_grads]
        return value, StackedGrads(tuple(layer_grads), g_yh, g_by, flow)

    def _empty_grads(self, layer: Layer, T: int, B: int) -> Any:
        """A layer's batched gradient record of zeros (flows ``(T+1, B, n)``)."""
        z = {k: np.zeros_like(v) for k, v in layer.params().items()}
        n = self.n_hidden
        fl = np.zeros((T + 1, B, n), dtype=self.dtype)
        if isinstance(layer, ElmanRNN):
            return ElmanGrads(z["W_hh"], z["W_hx"], z["b_h"], None, None, fl, z.get("alpha"))
        if isinstance(layer, LSTM):
            return LSTMGrads(z["weight_ih"], z["weight_hh"], z["bias_ih"], z["bias_hh"], None, None, fl, fl.copy())
        return GRUGrads(z["weight_ih"], z["weight_hh"], z["bias_ih"], z["bias_hh"], None, None, fl)

    def _state_flow(
        self, grads: list[Any], sent: list[np.ndarray], saved: list[tuple[np.ndarray, ...]], T: int, B: int
    ) -> np.ndarray:
        """``∂E/∂s_k`` of the whole state from the layers' backward passes.

        A layer's own flow ``∂E/∂h^l_k`` counts the path through the layer
        above at the same step (``h^{l+1}_k`` as a function of ``h^l_k``); in the
        whole state ``h^{l+1}_k`` is a coordinate of its own, so that path
        (the cotangent ``sent`` down through the input, what layer ``l``
        received at step ``k``) is taken out for every layer below the top. An
        LSTM layer's ``∂E/∂c^l_k`` holding ``h^l_k`` fixed is what reaches
        ``c^l_k`` through ``c^l_{k+1}``: ``σ(f_{k+1}) ⊙ flow_c[k+1]`` (zero at
        ``k = T``, where no loss reads ``c``).
        """
        n, L = self.n_hidden, self.n_layers
        flow = np.empty((T + 1, B, self.state_size), dtype=self.dtype)
        k = threads_for(B, T * B * self.state_size * 8)
        col = 0
        with own_threads(k):
            for i in range(L):
                run_rows(SK.state_flow_h, (flow, col, grads[i].flow, sent[i], i < L - 1), B, k)
                col += n
                if self.cell == "lstm":
                    run_rows(SK.state_flow_c, (flow, col, grads[i].flow_c, saved[i][2]), B, k)
                    col += n
        return flow

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
                  + λ_s \\sum_{b,t} J_{s_t}^⊤ J_{s_t} v

        ``G`` is the curvature of the summed loss ``E`` of
        :meth:`value_and_grad` (``z_t`` the top readout, ``H_{L,t}`` the loss's
        Hessian in ``z_t`` times the mask weight). The second sum is structural
        damping (Martens & Sutskever 2011, §4.2) on the **whole state** ``s_t``
        of the stack: every layer's ``h^l_t``, and ``c^l_t`` too for LSTM
        layers, as the single :meth:`LSTM.gauss_newton
        <rnntheory.cells.gated.LSTM.gauss_newton>` damps ``(h_t, c_t)``. Every
        layer's state is damped, not only the top one's: each carries part of
        what the recurrence remembers.

        The forward trace of every layer is stored once. Each product is one
        R-forward pass up the stack (layer ``l``'s ``R{x_t}`` is layer
        ``l−1``'s ``R{h_t}``, entering as ``W_ih R{x_t}``; each layer runs its
        cell's R-forward kernel), the output Hessian on the top readout, and one
        backward pass of the stack (the per-layer backward passes that
        :meth:`value_and_grad` chains, top down) from the cotangents
        ``∂/∂h^l_t = (what layer l+1 sends down) + λ_s R{h^l_t}`` and, for LSTM
        layers, ``∂/∂c^l_t = λ_s R{c^l_t}``.

        Parameters
        ----------
        x, y, loss, mask
            As in :meth:`value_and_grad`.
        h0, c0 : array, shape ``(L, n)`` or ``(L, B, n)``, optional
            Initial states of every layer, as in :meth:`forward`.
        lam_struct : float
            Structural-damping weight ``λ_s ≥ 0`` (``0``: plain Gauss–Newton).

        Returns
        -------
        GaussNewton
            A callable ``G(v) -> G v`` on flat float64 vectors in the order of
            :meth:`params` (keys ``"<name>_l<l>"``, then ``W_yh``, ``b_y``;
            :func:`~rnntheory.cells.curvature.flatten_params`,
            :func:`~rnntheory.cells.curvature.unflatten_params`).

        Raises
        ------
        ValueError
            On bad inputs (as :meth:`value_and_grad`), a negative or non-finite
            ``lam_struct``, or a layer that learns its retention ``α``.
        TypeError
            On non-numeric inputs.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import StackedRNN
        >>> m = StackedRNN.init(2, 3, 2, cell="lstm", n_layers=2, seed=0)
        >>> rng = np.random.default_rng(0)
        >>> G = m.gauss_newton(rng.normal(size=(5, 2)), rng.integers(0, 2, 5), lam_struct=0.1)
        >>> v = rng.normal(size=G.n_params)
        >>> bool(v @ G(v) >= 0), G.n_params == sum(p.size for p in m.params().values())
        (True, True)

        Martens & Sutskever 2011, §3–4; Schraudolph 2002.
        """
        return GaussNewton(self, x, y, loss=loss, mask=mask, h0=h0, c0=c0, lam_struct=lam_struct)

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
        """The loss (Eq. 4) by a forward pass alone: :meth:`value_and_grad`'s
        value, ``inf`` when it is not finite.

        Parameters
        ----------
        x, y, loss, mask, h0, c0, batch_first
            As in :meth:`value_and_grad`.

        Returns
        -------
        float

        Raises
        ------
        ValueError, TypeError
            As :meth:`value_and_grad`.
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, batched, h0s, c0s = self._setup(x, h0, c0)
        T, B = x3.shape[0], x3.shape[1]
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        with np.errstate(all="ignore"):
            _, saved = self._run_layers(x3, h0s, c0s, for_grad=False)
            H_top = saved[-1][0]
            Y = self._readout(H_top)
            value, _ = self._loss_grad(Y if Y is not None else np.ascontiguousarray(H_top[1:]), loss, tgt, m)
        return float(value) if np.isfinite(value) else float("inf")


def _single(g: Any) -> Any:
    """A layer's batched gradient record as that of one sequence (flows ``[:, 0]``)."""
    if isinstance(g, ElmanGrads):
        return ElmanGrads(g.W_hh, g.W_hx, g.b_h, None, None, g.flow[:, 0], g.alpha)
    if isinstance(g, LSTMGrads):
        return LSTMGrads(g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, None, None, g.flow[:, 0], g.flow_c[:, 0])
    return GRUGrads(g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, None, None, g.flow[:, 0])
