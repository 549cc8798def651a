"""Bridge to PyTorch: load ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (and their cells) and back.

PyTorch is an optional dependency (the ``oracle`` extra) and is imported only
inside these functions.

* ``nn.RNN`` / ``nn.RNNCell`` (tanh or relu) become an :class:`~rnntheory.ElmanRNN`
  in the standard form with ``W_hh = weight_hh``, ``W_hx = weight_ih`` and
  ``b_h = bias_ih + bias_hh`` (the Elman cell has one bias; the sum is the same
  function).
* ``nn.LSTM`` / ``nn.LSTMCell`` and ``nn.GRU`` / ``nn.GRUCell`` become
  :class:`~rnntheory.LSTM` / :class:`~rnntheory.GRU` with the same parameter
  names and layouts.

Stacked (``num_layers > 1``) and bidirectional modules load as
:class:`~rnntheory.StackedRNN` and :class:`~rnntheory.BidirectionalRNN`, through
:func:`rnntheory.from_state_dict` (the module's state dict as NumPy arrays).
Projections (``proj_size``) are refused with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cells.bidirectional import BidirectionalRNN
from .cells.elman import ElmanRNN
from .cells.gated import GRU, LSTM
from .cells.stacked import StackedRNN
from .checkpoints import from_state_dict

__all__ = ["from_torch", "to_torch"]


def _torch(func: str) -> Any:
    """``torch``, or an ``ImportError`` that says how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"`{func}` needs PyTorch, which is not installed: "
            'pip install "rnntheory[oracle]" (or any torch from 2.2)'
        ) from None
    return torch


def _np(p: Any) -> np.ndarray:
    return np.ascontiguousarray(p.detach().cpu().numpy())


def _check_params(name: str, module: Any) -> Any:
    """The common dtype of ``module``'s parameters (float32 or float64), or raise
    naming ``name``: other dtypes (float16, bfloat16, complex) and parameters
    without data (the ``meta`` device) cannot be loaded."""
    import torch

    params = list(module.parameters())
    for p in params:
        if p.is_meta:
            raise ValueError(f"`{name}` has parameters on the meta device (no values to load)")
        if p.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"`{name}` must have float32 or float64 parameters, got {p.dtype}"
                " (convert it with .double() or .float())"
            )
    dtypes = {p.dtype for p in params}
    if len(dtypes) > 1:
        raise TypeError(f"`{name}` must have parameters of one dtype, got {sorted(map(str, dtypes))}")
    return dtypes.pop() if dtypes else None


def _readout(readout: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if readout is None:
        return None, None
    import torch

    if not isinstance(readout, torch.nn.Linear):
        raise TypeError(f"`readout` must be a torch.nn.Linear, got {type(readout).__name__}")
    _check_params("readout", readout)
    W = _np(readout.weight)
    b = _np(readout.bias) if readout.bias is not None else np.zeros(W.shape[0], W.dtype)
    return W, b


def from_torch(module: Any, readout: Any = None) -> Any:
    """A library model with the weights of a PyTorch recurrent module.

    The module's state dict, as NumPy arrays, goes through
    :func:`rnntheory.from_state_dict` with the module's nonlinearity: one path
    for modules and checkpoints.

    Parameters
    ----------
    module : torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell
        Any ``num_layers``, ``bidirectional`` or not, with or without biases
        (``bias=False`` loads as zero biases). ``module.batch_first`` is not
        part of the weights and is not recorded (the models here are
        time-major by default): for a ``batch_first=True`` module pass
        ``batch_first=True`` to the model's passes (``forward``, ``loss``,
        ``value_and_grad``, ``vjp``), which then read ``(B, T, n_in)`` as the
        module does. float32 or float64. ``proj_size`` is refused: the
        projection changes the recurrence the theory analyses,
        ``h_t = W_hr (o_t ⊙ tanh c_t)``.
    readout : torch.nn.Linear, optional
        A linear readout ``y_t = W h_t + b`` to attach to the top layer
        (``2·hidden_size`` inputs for a bidirectional module).

    Returns
    -------
    ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN
        A cell for one layer and one direction, a stacked model for several
        layers, a bidirectional model for two directions.

    Raises
    ------
    TypeError
        If ``module`` is not one of the supported classes, or its (or the
        readout's) parameters are not all float32 or all float64.
    ValueError
        For projections, an unsupported nonlinearity, parameters on the
        ``meta`` device, a readout whose input size is not the top layer's
        output size, or an Elman bias ``bias_ih + bias_hh`` that overflows.

    Examples
    --------
    >>> import torch
    >>> from rnntheory import from_torch
    >>> lstm = torch.nn.LSTM(3, 5, dtype=torch.float64)
    >>> from_torch(lstm)
    LSTM(n_in=3, n_hidden=5, n_out=5, dtype=float64)
    >>> from_torch(torch.nn.GRU(3, 5, bidirectional=True, dtype=torch.float64))
    BidirectionalRNN(n_in=3, n_hidden=5, n_out=10, cell='gru', n_layers=1, dtype=float64)
    """
    torch = _torch("from_torch")
    nn = torch.nn
    if isinstance(module, nn.RNNBase):
        if getattr(module, "proj_size", 0):
            raise ValueError(
                f"`module` must have no projection, got proj_size={module.proj_size}: the projection "
                "changes the recurrence the theory analyses, h_t = W_hr (o_t ⊙ tanh c_t)"
            )
        width = module.hidden_size * (2 if module.bidirectional else 1)
        cell = False
    elif isinstance(module, nn.RNNCellBase):
        width, cell = module.hidden_size, True
    else:
        raise TypeError(
            "`module` must be a torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell, "
            f"got {type(module).__name__}"
        )
    dtype = _check_params("module", module)
    W_yh, b_y = _readout(readout)
    if W_yh is not None:
        if readout.weight.dtype != dtype:
            raise TypeError(
                f"`readout` must have the module's dtype {dtype}, got {readout.weight.dtype}"
            )
        if readout.in_features != width:
            what = ("the module's hidden size" if width == module.hidden_size
                    else "the module's hidden size times 2 directions")
            raise ValueError(
                f"`readout` must take {width} inputs ({what}), got in_features={readout.in_features}"
            )
    elman = isinstance(module, nn.RNN | nn.RNNCell)
    nonlinearity = module.nonlinearity if elman else "tanh"
    if elman and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"`module` must use tanh or relu, got nonlinearity={nonlinearity!r}")
    state = {name + ("_l0" if cell else ""): _np(p) for name, p in module.named_parameters()}
    if elman:
        for name in state:
            if name.startswith("bias_ih"):
                with np.errstate(over="ignore"):
                    b_h = state[name] + state[name.replace("bias_ih", "bias_hh")]
                if not np.all(np.isfinite(b_h)):
                    raise ValueError(
                        f"`module`'s bias_ih + bias_hh (the Elman cell's one bias) overflows {b_h.dtype}"
                    )
    head = None
    if W_yh is not None and b_y is not None:
        state["readout.weight"], state["readout.bias"] = W_yh, b_y
        head = "readout."
    return from_state_dict(state, nonlinearity=nonlinearity, readout=head)


def _layers(model: Any) -> tuple[list[list[Any]], bool]:
    """The cells of ``model`` per layer and direction, and whether it is bidirectional."""
    if isinstance(model, BidirectionalRNN):
        return [list(pair) for pair in model.layers], True
    if isinstance(model, ElmanRNN | LSTM | GRU):
        return [[model]], False
    if isinstance(model, StackedRNN):
        return [[c] for c in model.layers], False
    raise TypeError(
        "`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN, "
        f"got {type(model).__name__}"
    )


def to_torch(model: Any) -> Any:
    """The PyTorch module (``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``) with the model's weights.

    A stacked model becomes a module with ``num_layers = L``, a bidirectional
    one a module with ``bidirectional=True``. The readout, which PyTorch's
    recurrent modules do not have, is left out; ``model.W_yh``/``model.b_y`` go
    into an ``nn.Linear`` if you need them. Elman cells must be in the standard
    form, without leak, all with tanh or all with relu (what ``nn.RNN``
    computes); each bias goes to ``bias_ih`` (``bias_hh = 0``).

    Returns
    -------
    torch.nn.Module
        Same dtype as the model; ``batch_first=False`` (time-major, as here).
    """
    torch = _torch("to_torch")

    grid, bidirectional = _layers(model)
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32

    def tensor(a: np.ndarray) -> Any:
        return torch.tensor(np.asarray(a), dtype=dtype)

    first = grid[0][0]
    n_layers = len(grid)
    mod: Any
    if isinstance(first, LSTM | GRU):
        cls = torch.nn.LSTM if isinstance(first, LSTM) else torch.nn.GRU
        mod = cls(first.n_in, first.n_hidden, num_layers=n_layers, bidirectional=bidirectional, dtype=dtype)
    else:
        for row in grid:
            for c in row:
                if c.form != "standard" or c.alpha is not None:
                    raise ValueError(
                        "`model` must be a standard-form Elman RNN without leak to become a torch.nn.RNN, "
                        f"got form={c.form!r}, leaky={c.alpha is not None}"
                    )
                if c.activation.name not in ("tanh", "relu") or c.activation.name != first.activation.name:
                    raise ValueError(
                        "`model` must use tanh or relu (one for every layer) to become a torch.nn.RNN, "
                        f"got {c.activation.name!r}"
                    )
        mod = torch.nn.RNN(first.n_in, first.n_hidden, num_layers=n_layers, nonlinearity=first.activation.name,
                           bidirectional=bidirectional, dtype=dtype)
    with torch.no_grad():
        for i, row in enumerate(grid):
            for d, c in enumerate(row):
                if isinstance(c, LSTM | GRU):
                    ih, hh, bih, bhh = c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh
                else:
                    ih, hh, bih, bhh = c.W_hx, c.W_hh, c.b_h, np.zeros_like(c.b_h)
                tag = f"_l{i}" + ("_reverse" if d else "")
                getattr(mod, "weight_ih" + tag).copy_(tensor(ih))
                getattr(mod, "weight_hh" + tag).copy_(tensor(hh))
                getattr(mod, "bias_ih" + tag).copy_(tensor(bih))
                getattr(mod, "bias_hh" + tag).copy_(tensor(bhh))
    return mod
