"""from_torch / to_torch: the same function on both sides, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN, from_torch, to_torch

torch = torch_or_skip()

pytestmark = pytest.mark.oracle


def _run_torch(mod, x):
    with torch.no_grad():
        out, _ = mod(torch.tensor(x))
    return out.numpy()


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.nn.RNN(3, 4, dtype=torch.float64),
        lambda: torch.nn.RNN(3, 4, nonlinearity="relu", dtype=torch.float64),
        lambda: torch.nn.LSTM(3, 4, dtype=torch.float64),
        lambda: torch.nn.GRU(3, 4, dtype=torch.float64),
        lambda: torch.nn.GRU(3, 4, bias=False, dtype=torch.float64),
    ],
)
def test_from_torch_computes_the_same_states(make):
    """The loaded model's h_1..h_T equal the torch module's outputs (float64, 1e-12)."""
    torch.manual_seed(0)
    mod = make()
    x = np.random.default_rng(0).normal(size=(7, 2, 3))
    model = from_torch(mod)
    np.testing.assert_allclose(model.forward(x).h[1:], _run_torch(mod, x), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    ("cell", "cls"),
    [(torch.nn.RNNCell, ElmanRNN), (torch.nn.LSTMCell, LSTM), (torch.nn.GRUCell, GRU)],
)
def test_from_torch_cells(cell, cls):
    """Cells load too; one step matches the cell's own step."""
    torch.manual_seed(1)
    c = cell(3, 4, dtype=torch.float64)
    m = from_torch(c)
    assert isinstance(m, cls)
    x = np.random.default_rng(1).normal(size=(1, 2, 3))
    with torch.no_grad():
        out = c(torch.tensor(x[0]))
    h = out[0] if isinstance(out, tuple) else out
    np.testing.assert_allclose(m.forward(x).h[1], h.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "model",
    [
        ElmanRNN.init(3, 4, None, scheme="gaussian", seed=2),
        LSTM.init(3, 4, None, seed=3),
        GRU.init(3, 4, None, seed=4),
    ],
)
def test_round_trip(model):
    """to_torch then from_torch gives back the same function (and to_torch's
    module computes the model's states)."""
    x = np.random.default_rng(5).normal(size=(6, 3))
    mod = to_torch(model)
    np.testing.assert_allclose(_run_torch(mod, x[:, None, :])[:, 0], model.forward(x).h[1:], rtol=1e-12, atol=1e-13)
    back = from_torch(mod)
    np.testing.assert_allclose(back.forward(x).h, model.forward(x).h, rtol=1e-12, atol=1e-13)


def test_float32_modules_stay_float32():
    """A float32 torch module loads as a float32 model."""
    m = from_torch(torch.nn.LSTM(2, 3))
    assert m.dtype == np.float32


def test_readout_attaches():
    """A torch Linear readout becomes W_yh, b_y."""
    lin = torch.nn.Linear(4, 2, dtype=torch.float64)
    m = from_torch(torch.nn.GRU(3, 4, dtype=torch.float64), readout=lin)
    np.testing.assert_array_equal(m.W_yh, lin.weight.detach().numpy())
    np.testing.assert_array_equal(m.b_y, lin.bias.detach().numpy())


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: from_torch(torch.nn.LSTM(2, 3, proj_size=2)), ValueError, "projection"),
        (lambda: from_torch(torch.nn.Linear(2, 3)), TypeError, "`module`"),
        (lambda: from_torch(torch.nn.GRU(2, 3), readout=torch.nn.ReLU()), TypeError, "`readout`"),
        (lambda: to_torch(ElmanRNN.init(2, 3, None, form="pascanu")), ValueError, "`model`"),
        (lambda: to_torch(ElmanRNN.init(2, 3, None, activation="sigmoid", scheme="sigmoid")), ValueError, "`model`"),
        (lambda: to_torch("not a model"), TypeError, "`model`"),
    ],
)
def test_refusals(call, exc, match):
    """Unsupported modules and models are refused with the reason."""
    with pytest.raises(exc, match=match):
        call()


def test_gradient_flow_of_a_trained_torch_lstm():
    """The issue's use case: take a torch LSTM, load it, get log_norms of its
    (h, c) Jacobians and a certificate; the certificate's bound holds."""
    from rnntheory import bounds, jacobians

    torch.manual_seed(6)
    lstm = torch.nn.LSTM(2, 5, dtype=torch.float64)
    m = from_torch(lstm)
    tr = m.forward(np.random.default_rng(7).normal(size=(20, 2)))
    L = jacobians.log_norms(m, tr)
    assert L.shape == (21, 21) and np.all(np.isfinite(np.tril(L)))
    assert bounds.certify(m, tr).holds


@pytest.mark.parametrize("cls", [torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_loads_every_module(cls, layers, bidirectional, bias):
    """Layers, directions and bias=False: the loaded model's top output and every layer's
    (and direction's) final state equal the module's, float64, 1e-12; batch_first modules have
    the same weights (their batch-first output is the time-major one transposed)."""
    torch.manual_seed(layers + 2 * bidirectional + 4 * bias)
    mod = cls(3, 4, num_layers=layers, bidirectional=bidirectional, bias=bias, dtype=torch.float64)
    m = from_torch(mod)
    x = np.random.default_rng(3).normal(size=(6, 2, 3))
    tr = m.forward(x)
    with torch.no_grad():
        out, hn = mod(torch.tensor(x))
    mine = tr.output if bidirectional else tr.h[1:]
    np.testing.assert_allclose(mine, out.numpy(), rtol=1e-12, atol=1e-13)
    hn = hn[0] if isinstance(hn, tuple) else hn
    if bidirectional:
        finals = tr.h_n
    elif layers > 1:
        finals = np.stack([layer.h[-1] for layer in tr.layers])
    else:
        finals = tr.h[-1][None]
    np.testing.assert_allclose(finals, hn.numpy(), rtol=1e-12, atol=1e-13)
    if not bias:
        assert all(not v.any() for k, v in m.params().items() if k.startswith(("b_h", "bias")))
    bf = cls(3, 4, num_layers=layers, bidirectional=bidirectional, bias=bias, batch_first=True, dtype=torch.float64)
    bf.load_state_dict(mod.state_dict())
    with torch.no_grad():
        out_bf, _ = bf(torch.tensor(x.transpose(1, 0, 2)))
    m_bf = from_torch(bf)
    np.testing.assert_allclose(out_bf.numpy().transpose(1, 0, 2), mine, rtol=1e-12, atol=1e-13)
    for k, v in m.params().items():
        np.testing.assert_array_equal(m_bf.params()[k], v)


def test_bidirectional_readout_and_to_torch_round_trip():
    """A readout of 2n inputs attaches to a bidirectional module; to_torch gives a
    bidirectional module computing the model's output; from_torch of it is the model again."""
    from rnntheory import BidirectionalRNN

    lin = torch.nn.Linear(8, 2, dtype=torch.float64)
    m = from_torch(torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64), readout=lin)
    np.testing.assert_array_equal(m.W_yh, lin.weight.detach().numpy())
    with pytest.raises(ValueError, match=r"`readout` must take 8 inputs \(the module's hidden size times 2 directions\)"):
        from_torch(torch.nn.GRU(3, 4, bidirectional=True, dtype=torch.float64), readout=torch.nn.Linear(4, 1, dtype=torch.float64))
    for cell in ("elman", "lstm", "gru"):
        model = BidirectionalRNN.init(3, 4, None, cell=cell, n_layers=2, seed=1)
        mod = to_torch(model)
        assert mod.bidirectional and mod.num_layers == 2
        x = np.random.default_rng(2).normal(size=(5, 3))
        np.testing.assert_allclose(_run_torch(mod, x[:, None, :])[:, 0], model.forward(x).output, rtol=1e-12, atol=1e-13)
        back = from_torch(mod)
        np.testing.assert_allclose(back.forward(x).output, model.forward(x).output, rtol=1e-12, atol=1e-13)


def test_stacked_to_torch_round_trip():
    """to_torch of a stacked model is a num_layers = L module computing its top states."""
    from rnntheory import StackedRNN

    for cell in ("elman", "lstm", "gru"):
        model = StackedRNN.init(3, 4, None, cell=cell, n_layers=3, seed=2)
        mod = to_torch(model)
        assert mod.num_layers == 3 and not mod.bidirectional
        x = np.random.default_rng(4).normal(size=(5, 3))
        np.testing.assert_allclose(_run_torch(mod, x[:, None, :])[:, 0], model.forward(x).h[1:], rtol=1e-12, atol=1e-13)
        assert type(from_torch(mod)) is StackedRNN


def test_projection_is_refused_with_the_reason():
    """proj_size changes the recurrence: refused, saying so."""
    with pytest.raises(ValueError, match=r"proj_size=2: the projection changes the recurrence the theory analyses"):
        from_torch(torch.nn.LSTM(2, 3, proj_size=2))


def test_without_torch_the_error_says_how_to_install_it(monkeypatch):
    """With torch not importable, to_torch (and from_torch) raise an ImportError
    with the install hint, not a bare ModuleNotFoundError from deep inside."""
    import sys

    from rnntheory import ElmanRNN, from_torch, to_torch

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    m = ElmanRNN.init(2, 3, None, scheme="gaussian", seed=0)
    with pytest.raises(ImportError, match=r"`to_torch` needs PyTorch.*rnntheory\[oracle\]"):
        to_torch(m)
    with pytest.raises(ImportError, match=r"`from_torch` needs PyTorch.*rnntheory\[oracle\]"):
        from_torch(object())
