"""Bidirectional recurrent models, in the conventions of PyTorch's ``bidirectional=True``.

Each layer ``l`` has two recurrences of one cell type (Elman, LSTM or GRU): the
forward direction reads the layer's input ``u_1, …, u_T`` in order, the backward
direction reads it reversed, ``u_T, …, u_1``. The layer's output at original time
``t`` is the concatenation ``[h^fwd_t, h^bwd_t]`` (``2n`` values), where
``h^bwd_t`` is the backward state after it has read ``u_T, …, u_t``; layer
``l ≥ 1`` reads that concatenation as its input. This is what
``torch.nn.RNN/LSTM/GRU(bidirectional=True)`` computes, with the same ordering
of the initial and final states: index ``2l + d`` of ``h0``/``c0`` (``d = 0``
forward, ``d = 1`` backward).

Each direction is a recurrence of its own: its step Jacobians are those of its
cell with the input held fixed, so the theory of one layer (Eqs. 5–12 of the
article; Pascanu et al. 2013) applies to each direction separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, check_choice, check_int
from ._base import SequenceModel, TraceBase, readout_params
from .elman import ElmanRNN
from .gated import GRU, LSTM, GatedTrace

__all__ = ["BidirectionalRNN", "BidirectionalTrace"]

CELLS = ("elman", "lstm", "gru")


def _tag(layer: int, d: int) -> str:
    """PyTorch's parameter suffix of layer ``layer``, direction ``d``: ``_l0``, ``_l1_reverse``."""
    return f"_l{layer}" + ("_reverse" if d else "")


def _cell_name(cell: Any) -> str:
    if isinstance(cell, LSTM):
        return "lstm"
    if isinstance(cell, GRU):
        return "gru"
    return "elman"


@dataclass(frozen=True)
class BidirectionalTrace(TraceBase):
    """What a forward pass of a :class:`BidirectionalRNN` leaves behind.

    Attributes
    ----------
    layers : tuple of (trace, trace)
        Per layer, the forward direction's trace and the backward direction's
        trace (:class:`~rnntheory.Trace` or :class:`~rnntheory.GatedTrace`). The
        backward trace is in the backward cell's own time: its ``h[t]`` is the
        state after reading ``u_T, …, u_{T+1−t}`` (step ``t`` read input
        ``u_{T+1−t}``), ``h[0]`` its initial state.
    y : ndarray or None, ``(T, n_out)`` or ``(T, B, n_out)``
        The readout of the top layer's :attr:`output`, when the model has one.
    """

    layers: tuple[tuple[Any, Any], ...]
    y: np.ndarray | None

    @property
    def batched(self) -> bool:
        """Whether the trace holds a batch."""
        return bool(self.layers[0][0].h.ndim == 3)

    @property
    def T(self) -> int:
        """Number of steps."""
        return int(self.layers[0][0].h.shape[0] - 1)

    def layer_output(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s output ``(T, [B,] 2n)``: ``[h^fwd_t, h^bwd_t]`` at
        original time ``t = 1..T`` (the backward states reversed to that time)."""
        layer = check_int("layer", layer, minimum=0)
        if layer >= len(self.layers):
            raise ValueError(f"`layer` must be < n_layers = {len(self.layers)}, got {layer}")
        fwd, bwd = self.layers[layer]
        return np.concatenate([fwd.h[1:], bwd.h[1:][::-1]], axis=-1)

    @property
    def output(self) -> np.ndarray:
        """The top layer's output ``(T, [B,] 2n)``, PyTorch's ``output``."""
        return self.layer_output(len(self.layers) - 1)

    @property
    def h_n(self) -> np.ndarray:
        """Final hidden states ``(2L, [B,] n)``, index ``2l + d`` as PyTorch's ``h_n``
        (the backward direction's final state is its state after reading ``u_1``)."""
        return np.stack([tr.h[-1] for pair in self.layers for tr in pair])

    @property
    def c_n(self) -> np.ndarray | None:
        """Final LSTM cell states ``(2L, [B,] n)`` as PyTorch's ``c_n``; ``None`` for other cells."""
        first = self.layers[0][0]
        if not isinstance(first, GatedTrace) or first.c is None:
            return None
        return np.stack([tr.c[-1] for pair in self.layers for tr in pair])

    def sequence(self, b: int) -> BidirectionalTrace:
        """The trace of sequence ``b`` of a batch, as a single-sequence trace."""
        if not self.batched:
            raise ValueError("`sequence` needs a batched trace, got a single sequence")
        B = self.layers[0][0].h.shape[1]
        b = check_int("b", b, minimum=0)
        if b >= B:
            raise ValueError(f"`b` must be < batch size {B}, got {b}")
        layers = tuple((f.sequence(b), r.sequence(b)) for f, r in self.layers)
        return BidirectionalTrace(layers, None if self.y is None else self.y[:, b])


class BidirectionalRNN(SequenceModel):
    """A bidirectional recurrent model of ``L`` layers (PyTorch's ``bidirectional=True``).

    Parameters
    ----------
    layers : sequence of (cell, cell)
        Per layer, the forward-direction and the backward-direction cell: all
        :class:`~rnntheory.ElmanRNN`, all :class:`~rnntheory.LSTM` or all
        :class:`~rnntheory.GRU`, one dtype, one ``n_hidden = n``, no readout on a
        cell. Layer 0's two cells read the model's input (one ``n_in``); layer
        ``l ≥ 1`` reads the ``2n`` values ``[h^fwd_t, h^bwd_t]`` of layer
        ``l − 1`` (``n_in = 2n``).
    W_yh : array ``(n_out, 2n)``, optional
        Readout of the top layer's output ``y_t = W_yh [h^fwd_t, h^bwd_t] + b_y``.
    b_y : array ``(n_out,)``, optional
        Readout bias (zeros when ``W_yh`` is given without it).

    Notes
    -----
    Forward pass only (no ``value_and_grad``). The model is immutable like every
    model here: a changed one comes from :meth:`replace`. Each direction of each
    layer is a recurrence of its own; analyse it with its input held fixed (the
    backward one on its reversed input).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import BidirectionalRNN
    >>> m = BidirectionalRNN.init(3, 4, None, cell="gru", n_layers=2, seed=0)
    >>> m
    BidirectionalRNN(n_in=3, n_hidden=4, n_out=8, cell='gru', n_layers=2, dtype=float64)
    >>> tr = m.forward(np.zeros((5, 3)))
    >>> tr.output.shape, tr.h_n.shape
    ((5, 8), (4, 4))

    Schuster & Paliwal 1997, "Bidirectional recurrent neural networks"; PyTorch's
    ``nn.RNN/LSTM/GRU(bidirectional=True)``.
    """

    def __init__(self, layers: Sequence[Sequence[Any]], W_yh: Any = None, b_y: Any = None) -> None:
        if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
            raise TypeError(f"`layers` must be a sequence of (forward, backward) cell pairs, got {type(layers).__name__}")
        if len(layers) == 0:
            raise ValueError("`layers` must hold at least one (forward, backward) pair, got none")
        pairs = []
        for i, pair in enumerate(layers):
            if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise TypeError(f"`layers[{i}]` must be a (forward, backward) pair of cells, got {type(pair).__name__}")
            pairs.append((pair[0], pair[1]))
        first = pairs[0][0]
        if not isinstance(first, ElmanRNN | LSTM | GRU):
            raise TypeError(f"`layers[0][0]` must be an ElmanRNN, LSTM or GRU, got {type(first).__name__}")
        cls, n, dtype = type(first), first.n_hidden, first.dtype
        for i, pair in enumerate(pairs):
            for d, cell in enumerate(pair):
                where = f"`layers[{i}][{d}]`"
                if type(cell) is not cls:
                    raise TypeError(f"{where} must be a {cls.__name__} like layers[0][0] (one cell type), "
                                    f"got {type(cell).__name__}")
                if cell.dtype != dtype:
                    raise TypeError(f"{where} must have dtype {dtype} like layers[0][0], got {cell.dtype}")
                if cell.n_hidden != n:
                    raise ValueError(f"{where} must have n_hidden = {n} like layers[0][0], got {cell.n_hidden}")
                if cell.W_yh is not None:
                    raise ValueError(f"{where} must have no readout (the model's readout is `W_yh`), "
                                     f"got W_yh of shape {cell.W_yh.shape}")
                want = pairs[0][0].n_in if i == 0 else 2 * n
                if cell.n_in != want:
                    what = "layers[0][0]'s" if i == 0 else "2·n_hidden, the previous layer's [forward, backward] output"
                    raise ValueError(f"{where} must have n_in = {want} ({what}), got {cell.n_in}")
        self.layers: tuple[tuple[Any, Any], ...] = tuple(pairs)
        self.cell: str = _cell_name(first)
        self.dtype: np.dtype = dtype
        self.W_yh, self.b_y = readout_params(W_yh, b_y, 2 * n, dtype, "layers")
        self._freeze()

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of layers ``L`` (each with two directions)."""
        return len(self.layers)

    @property
    def n_hidden(self) -> int:
        """Hidden units ``n`` of every cell."""
        return int(self.layers[0][0].n_hidden)

    @property
    def n_in(self) -> int:
        """Input size."""
        return int(self.layers[0][0].n_in)

    @property
    def n_out(self) -> int:
        """Readout size (``2·n_hidden``, the top layer's output, without a readout)."""
        return 2 * self.n_hidden if self.W_yh is None else int(self.W_yh.shape[0])

    def params(self) -> dict[str, np.ndarray]:
        """The parameters by name: each cell's under ``<name>_l<l>`` (forward) and
        ``<name>_l<l>_reverse`` (backward), as PyTorch names them (``weight_hh_l0``,
        ``W_hh_l1_reverse``), then ``W_yh``, ``b_y`` when there is a readout.

        The arrays are the cells' own read-only arrays.
        """
        out: dict[str, np.ndarray] = {}
        for i, pair in enumerate(self.layers):
            for d, cell in enumerate(pair):
                suffix = _tag(i, d)
                out.update({k + suffix: v for k, v in cell.params().items()})
        if self.W_yh is not None:
            assert self.b_y is not None
            out["W_yh"], out["b_y"] = self.W_yh, self.b_y
        return out

    def replace(self, **params: Any) -> BidirectionalRNN:
        """A copy with some parameters replaced (names as in :meth:`params`)."""
        changes: dict[tuple[int, int], dict[str, Any]] = {}
        top: dict[str, Any] = {}
        known = self.params()
        for key, value in params.items():
            if key in ("W_yh", "b_y", "layers"):
                top[key] = value
                continue
            if key not in known:
                raise ValueError(f"`{key}` is not a parameter of BidirectionalRNN (names: {sorted(known)})")
            stem, d = (key[: -len("_reverse")], 1) if key.endswith("_reverse") else (key, 0)
            name, _, layer = stem.rpartition("_l")
            changes.setdefault((int(layer), d), {})[name] = value
        kw = self._replaced(top, "parameter of BidirectionalRNN")
        if changes:
            layers = [list(pair) for pair in self.layers]
            for (i, d), change in changes.items():
                try:
                    layers[i][d] = layers[i][d].replace(**change)
                except (ValueError, TypeError) as exc:
                    keys = ", ".join(f"`{k}{_tag(i, d)}`" for k in change)
                    raise type(exc)(f"{keys} (layer {i}, {'backward' if d else 'forward'} cell): {exc}") from exc
            kw["layers"] = tuple(tuple(pair) for pair in layers)
        if "W_yh" in top and top["W_yh"] is None and "b_y" not in top:
            kw["b_y"] = None
        return BidirectionalRNN(**kw)

    def _init_kwargs(self) -> dict[str, Any]:
        return {"layers": self.layers, "W_yh": self.W_yh, "b_y": self.b_y}

    def __repr__(self) -> str:
        return self._describe("BidirectionalRNN", f", cell={self.cell!r}, n_layers={self.n_layers}")

    @classmethod
    def init(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int | None,
        *,
        cell: str = "lstm",
        n_layers: int = 1,
        seed: int = 0,
        dtype: Any = np.float64,
        **cell_options: Any,
    ) -> BidirectionalRNN:
        """Draw a model: each of the ``2L`` cells by its class's ``init``
        (``cell_options`` passed on) with seeds ``seed, seed + 1, …``.

        Parameters
        ----------
        n_in, n_hidden : int
        n_out : int or None
            Readout size (``None``: no readout).
        cell : {"elman", "lstm", "gru"}
        n_layers : int
        seed : int
        dtype : float32 or float64
        """
        cell = check_choice("cell", cell, CELLS)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        n_in = check_int("n_in", n_in, minimum=1)
        n = check_int("n_hidden", n_hidden, minimum=1)
        seed = check_int("seed", seed, minimum=0)
        klass: Any = {"elman": ElmanRNN, "lstm": LSTM, "gru": GRU}[cell]
        pairs = []
        for i in range(n_layers):
            width = n_in if i == 0 else 2 * n
            pairs.append(tuple(
                klass.init(width, n, None, seed=seed + 2 * i + d, dtype=dtype, **cell_options) for d in (0, 1)
            ))
        W_yh = b_y = None
        if n_out is not None:
            n_out = check_int("n_out", n_out, minimum=1)
            rng = np.random.default_rng(seed + 2 * n_layers)
            k = 1.0 / np.sqrt(2 * n)
            W_yh = rng.uniform(-k, k, (n_out, 2 * n)).astype(pairs[0][0].dtype)
            b_y = np.zeros(n_out, dtype=pairs[0][0].dtype)
        return cls(pairs, W_yh, b_y)

    # ------------------------------------------------------------------ forward
    def _initial(self, name: str, value: Any, B: int, batched: bool) -> np.ndarray | None:
        """``h0``/``c0`` validated: ``(2L, n)`` or ``(2L, B, n)``."""
        if value is None:
            return None
        s = as_float_array(name, value, ndim=(2, 3))
        want = (2 * self.n_layers, B, self.n_hidden) if batched else (2 * self.n_layers, self.n_hidden)
        if s.shape != want:
            raise ValueError(
                f"`{name}` must have shape {want} (2·n_layers states, index 2l + d as in PyTorch), "
                f"got shape {s.shape}"
            )
        return s

    def forward(self, x: Any, h0: Any = None, c0: Any = None, *, batch_first: bool = False) -> BidirectionalTrace:
        """Run both directions of every layer over ``x`` (``(T, n_in)`` or ``(T, B, n_in)``).

        Parameters
        ----------
        x : array ``(T, n_in)`` or ``(T, B, n_in)``
            Inputs, time-major.
        h0, c0 : array ``(2L, n)`` or ``(2L, B, n)``, optional
            Initial hidden (and, for the LSTM, cell) states, index ``2l + d``
            (``d = 1`` the backward direction) as in PyTorch; zeros by default.
        batch_first : bool
            ``x`` is ``(B, T, n_in)``: the layout of a PyTorch module built
            with ``batch_first=True`` (``h0``, ``c0`` keep their shapes, as
            there). A 2-D ``x`` is refused.

        Returns
        -------
        BidirectionalTrace
            Per layer the two directions' traces; ``output``, ``h_n``, ``c_n``
            as PyTorch returns them for a time-major module. Traces are always
            time-major, with ``batch_first=True`` too: each direction's
            ``trace.h`` is ``(T+1, B, n)`` and ``output`` ``(T, B, 2n)`` (PyTorch's
            batch-first ``output`` is ``output.swapaxes(0, 1)``).

        Raises
        ------
        ValueError
            On bad shapes, ``c0`` for a cell that is not an LSTM, or inputs a
            cell refuses (see the cells' ``forward``).
        """
        x, = self._time_major(batch_first, x)
        x3, batched = self._inputs(x)
        B = x3.shape[1]
        h0_ = self._initial("h0", h0, B, batched)
        if c0 is not None and self.cell != "lstm":
            raise ValueError(f"`c0` applies to LSTM cells only, got a value for a {self.cell} model")
        c0_ = self._initial("c0", c0, B, batched)
        u = x3 if batched else x3[:, 0]
        traces = []
        for i, pair in enumerate(self.layers):
            pair_traces = []
            for d, cell in enumerate(pair):
                inp = u if d == 0 else u[::-1]
                kw: dict[str, Any] = {}
                if h0_ is not None:
                    kw["h0"] = h0_[2 * i + d]
                if c0_ is not None:
                    kw["c0"] = c0_[2 * i + d]
                pair_traces.append(cell.forward(inp, **kw))
            fwd, bwd = pair_traces
            traces.append((fwd, bwd))
            u = np.concatenate([fwd.h[1:], bwd.h[1:][::-1]], axis=-1)
        y = None
        if self.W_yh is not None:
            assert self.b_y is not None
            y = u @ self.W_yh.T + self.b_y
        return BidirectionalTrace(tuple(traces), y)
