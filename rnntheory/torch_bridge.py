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

Only single-layer, unidirectional modules without projections can be loaded;
anything else is refused with a message that says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cells.elman import ElmanRNN
from .cells.gated import GRU, LSTM

__all__ = ["from_torch", "to_torch"]


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


def from_torch(module: Any, readout: Any = None) -> ElmanRNN | LSTM | GRU:
    """A library model with the weights of a PyTorch recurrent module.

    Parameters
    ----------
    module : torch.nn.RNN, LSTM, GRU, RNNCell, LSTMCell or GRUCell
        Single layer, unidirectional, no ``proj_size``; float32 or float64.
    readout : torch.nn.Linear, optional
        A linear readout ``y_t = W h_t + b`` to attach.

    Returns
    -------
    ElmanRNN, LSTM or GRU

    Raises
    ------
    TypeError
        If ``module`` is not one of the supported classes, or its (or the
        readout's) parameters are not all float32 or all float64.
    ValueError
        For several layers, bidirectional modules, projections, an
        unsupported nonlinearity, parameters on the ``meta`` device, a readout
        whose input size is not the hidden size, or an Elman bias
        ``bias_ih + bias_hh`` that overflows.

    Examples
    --------
    >>> import torch
    >>> from rnntheory import from_torch
    >>> lstm = torch.nn.LSTM(3, 5, dtype=torch.float64)
    >>> from_torch(lstm)
    LSTM(n_in=3, n_hidden=5, n_out=5, dtype=float64)
    """
    import torch

    nn = torch.nn
    suffix = ""
    if isinstance(module, nn.RNNBase):
        if module.num_layers != 1:
            raise ValueError(f"`module` must have a single layer, got num_layers={module.num_layers}")
        if module.bidirectional:
            raise ValueError("`module` must be unidirectional, got bidirectional=True")
        if getattr(module, "proj_size", 0):
            raise ValueError(f"`module` must have no projection, got proj_size={module.proj_size}")
        suffix = "_l0"
    elif not isinstance(module, nn.RNNCellBase):
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
        if readout.in_features != module.hidden_size:
            raise ValueError(
                f"`readout` must take {module.hidden_size} inputs (the module's hidden size),"
                f" got in_features={readout.in_features}"
            )
    w_ih = _np(getattr(module, "weight_ih" + suffix))
    w_hh = _np(getattr(module, "weight_hh" + suffix))
    if module.bias:
        b_ih = _np(getattr(module, "bias_ih" + suffix))
        b_hh = _np(getattr(module, "bias_hh" + suffix))
    else:
        b_ih = np.zeros(w_hh.shape[0], w_hh.dtype)
        b_hh = np.zeros(w_hh.shape[0], w_hh.dtype)
    if isinstance(module, nn.LSTM | nn.LSTMCell):
        return LSTM(w_ih, w_hh, b_ih, b_hh, W_yh, b_y)
    if isinstance(module, nn.GRU | nn.GRUCell):
        return GRU(w_ih, w_hh, b_ih, b_hh, W_yh, b_y)
    nonlinearity = module.nonlinearity if isinstance(module, nn.RNN | nn.RNNCell) else None
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"`module` must use tanh or relu, got nonlinearity={nonlinearity!r}")
    with np.errstate(over="ignore"):
        b_h = b_ih + b_hh
    if not np.all(np.isfinite(b_h)) and np.all(np.isfinite(b_ih)) and np.all(np.isfinite(b_hh)):
        raise ValueError(
            f"`module`'s bias_ih + bias_hh (the Elman cell's one bias) overflows {b_h.dtype}"
        )
    return ElmanRNN(w_hh, w_ih, b_h, W_yh, b_y, activation=nonlinearity)


def to_torch(model: ElmanRNN | LSTM | GRU) -> Any:
    """The PyTorch module (``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``) with the model's weights.

    The readout, which PyTorch's recurrent modules do not have, is left out;
    ``model.W_yh``/``model.b_y`` go into an ``nn.Linear`` if you need them.
    An Elman RNN must be in the standard form, without leak, with tanh or relu
    (what ``nn.RNN`` computes); its bias goes to ``bias_ih`` (``bias_hh = 0``).

    Returns
    -------
    torch.nn.Module
        Same dtype as the model; ``batch_first=False`` (time-major, as here).
    """
    import torch

    if not isinstance(model, ElmanRNN | LSTM | GRU):
        raise TypeError(f"`model` must be an ElmanRNN, LSTM or GRU, got {type(model).__name__}")
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32

    def tensor(a: np.ndarray) -> Any:
        return torch.tensor(np.asarray(a), dtype=dtype)

    mod: Any
    if isinstance(model, LSTM | GRU):
        cls = torch.nn.LSTM if isinstance(model, LSTM) else torch.nn.GRU
        mod = cls(model.n_in, model.n_hidden, dtype=dtype)
        ih, hh, bih, bhh = model.weight_ih, model.weight_hh, model.bias_ih, model.bias_hh
    else:
        if model.form != "standard" or model.alpha is not None:
            raise ValueError(
                "`model` must be a standard-form Elman RNN without leak to become a torch.nn.RNN, "
                f"got form={model.form!r}, leaky={model.alpha is not None}"
            )
        if model.activation.name not in ("tanh", "relu"):
            raise ValueError(
                f"`model` must use tanh or relu to become a torch.nn.RNN, got {model.activation.name!r}"
            )
        mod = torch.nn.RNN(model.n_in, model.n_hidden, nonlinearity=model.activation.name, dtype=dtype)
        ih, hh, bih, bhh = model.W_hx, model.W_hh, model.b_h, np.zeros_like(model.b_h)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(tensor(ih))
        mod.weight_hh_l0.copy_(tensor(hh))
        mod.bias_ih_l0.copy_(tensor(bih))
        mod.bias_hh_l0.copy_(tensor(bhh))
    return mod
