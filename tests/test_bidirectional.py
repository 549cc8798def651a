"""BidirectionalRNN: PyTorch's bidirectional=True (oracle, float64, 1e-12), the
definition written out with the cells, and its refusals."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from rnntheory import GRU, LSTM, BidirectionalRNN, BidirectionalTrace, ElmanRNN


def _model(cell, layers, n_out=None, seed=0, dtype=np.float64):
    return BidirectionalRNN.init(3, 4, n_out, cell=cell, n_layers=layers, seed=seed, dtype=dtype)


@pytest.mark.oracle
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batched", [False, True])
def test_forward_equals_torch(cell, layers, batched):
    """output, h_n (and c_n) equal torch.nn.RNN/LSTM/GRU(bidirectional=True) with the same
    weights and initial states, in float64 to 1e-12 (the module built here from the cells'
    parameters, not by to_torch)."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    m = _model(cell, layers, seed=layers)
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    mod = cls(3, 4, num_layers=layers, bidirectional=True, dtype=torch.float64)
    with torch.no_grad():
        for i, pair in enumerate(m.layers):
            for d, c in enumerate(pair):
                tag = f"_l{i}" + ("_reverse" if d else "")
                if cell == "elman":
                    vals = (c.W_hx, c.W_hh, c.b_h, np.zeros(4))
                else:
                    vals = (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)
                for name, v in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), vals, strict=True):
                    getattr(mod, name + tag).copy_(torch.tensor(np.asarray(v)))
    rng = np.random.default_rng(5)
    shape = (7, 2, 3) if batched else (7, 3)
    x = rng.normal(size=shape)
    h0 = rng.normal(size=(2 * layers, 2, 4) if batched else (2 * layers, 4))
    c0 = rng.normal(size=h0.shape)
    with torch.no_grad():
        state = (torch.tensor(h0), torch.tensor(c0)) if cell == "lstm" else torch.tensor(h0)
        out, hn = mod(torch.tensor(x), state)
    tr = m.forward(x, h0, c0 if cell == "lstm" else None)
    np.testing.assert_allclose(tr.output, out.numpy(), rtol=1e-12, atol=1e-13)
    if cell == "lstm":
        hn, cn = hn
        np.testing.assert_allclose(tr.c_n, cn.numpy(), rtol=1e-12, atol=1e-13)
    else:
        assert tr.c_n is None
    np.testing.assert_allclose(tr.h_n, hn.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_definition_with_the_cells(cell):
    """Layer 1's backward trace is its cell run on the reversed input; layer 2 reads
    [h_fwd_t, h_bwd_t] at original time t; the readout is W_yh [..] + b_y. Written out
    with the cells and NumPy."""
    m = _model(cell, 2, n_out=2, seed=3)
    x = np.random.default_rng(6).normal(size=(5, 3))
    tr = m.forward(x)
    (f0, b0), (f1, b1) = m.layers
    hf = f0.forward(x).h[1:]
    hb = b0.forward(x[::-1].copy()).h[1:][::-1]
    u = np.hstack([hf, hb])
    np.testing.assert_array_equal(tr.layer_output(0), u)
    top = np.hstack([f1.forward(u).h[1:], b1.forward(u[::-1].copy()).h[1:][::-1]])
    np.testing.assert_allclose(tr.output, top, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(tr.y, top @ m.W_yh.T + m.b_y, rtol=1e-14, atol=1e-15)
    # time reversal: the model on reversed x swaps the directions when both cells are equal
    same = BidirectionalRNN([(f0, f0)])
    a, b = same.forward(x), same.forward(x[::-1].copy())
    np.testing.assert_allclose(a.output[:, :4], b.output[::-1, 4:], rtol=1e-14, atol=1e-15)


def test_batch_equals_each_sequence():
    """A batched pass equals the single-sequence passes, and sequence(b) picks one."""
    m = _model("lstm", 2, n_out=3, seed=7)
    x = np.random.default_rng(8).normal(size=(6, 3, 3))
    tr = m.forward(x)
    assert tr.batched and tr.T == 6
    for b in range(3):
        one = m.forward(x[:, b])
        np.testing.assert_allclose(tr.sequence(b).output, one.output, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(tr.sequence(b).y, one.y, rtol=1e-13, atol=1e-15)


def test_float32_and_extremes():
    """float32 models compute in float32; inputs of 1e300 saturate tanh cells to ±1 and the
    output stays finite; a subnormal input gives the zero-input output to rounding."""
    m32 = _model("gru", 1, dtype=np.float32)
    assert m32.forward(np.zeros((3, 3), np.float32)).output.dtype == np.float32
    m = _model("elman", 1, seed=1)
    big = m.forward(np.full((4, 3), 1e300))
    assert np.all(np.isfinite(big.output)) and np.all(np.abs(big.output) <= 1)
    tiny = m.forward(np.full((4, 3), 5e-324)).output
    np.testing.assert_allclose(tiny, m.forward(np.zeros((4, 3))).output, rtol=0, atol=1e-300)


def test_immutable_params_replace_repr_pickle():
    """No reassignment; params named as torch names them; replace changes only what it is
    given; pickling gives an equal model."""
    m = _model("gru", 2, n_out=2, seed=9)
    with pytest.raises(AttributeError, match="immutable"):
        m.W_yh = None
    p = m.params()
    assert list(p)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_hh_l1_reverse" in p and list(p)[-2:] == ["W_yh", "b_y"]
    W = np.eye(12, 4)
    r = m.replace(weight_hh_l1_reverse=W)
    np.testing.assert_array_equal(r.layers[1][1].weight_hh, W)
    assert r.layers[1][0] is m.layers[1][0] and r.layers[0][1] is m.layers[0][1]
    assert r.replace(W_yh=None).W_yh is None
    with pytest.raises(ValueError, match=r"`W_hh_l0` is not a parameter of BidirectionalRNN"):
        m.replace(W_hh_l0=W)
    assert repr(m) == "BidirectionalRNN(n_in=3, n_hidden=4, n_out=2, cell='gru', n_layers=2, dtype=float64)"
    back = pickle.loads(pickle.dumps(m))
    x = np.random.default_rng(1).normal(size=(3, 3))
    np.testing.assert_array_equal(back.forward(x).y, m.forward(x).y)
    assert isinstance(m.forward(x), BidirectionalTrace)


def _cells(cls, n_in=3, n=4, seed=0):
    return cls.init(n_in, n, None, seed=seed)


BAD = [
    (lambda: BidirectionalRNN([]), ValueError, r"`layers` must hold at least one"),
    (lambda: BidirectionalRNN("ab"), TypeError, r"`layers` must be a sequence"),
    (lambda: BidirectionalRNN([(_cells(GRU),)]), TypeError, r"`layers\[0\]` must be a \(forward, backward\) pair"),
    (lambda: BidirectionalRNN([(_cells(GRU), _cells(LSTM))]), TypeError, r"`layers\[0\]\[1\]` must be a GRU"),
    (lambda: BidirectionalRNN([(_cells(GRU), _cells(GRU, n=5))]), ValueError, r"n_hidden = 4"),
    (lambda: BidirectionalRNN([(_cells(GRU), _cells(GRU, n_in=2))]), ValueError, r"`layers\[0\]\[1\]` must have n_in = 3"),
    (lambda: BidirectionalRNN([(_cells(GRU), _cells(GRU))] * 2), ValueError, r"`layers\[1\]\[0\]` must have n_in = 8"),
    (lambda: BidirectionalRNN([(GRU.init(3, 4, 2), _cells(GRU))]), ValueError, r"must have no readout"),
    (lambda: BidirectionalRNN([("x", "y")]), TypeError, r"`layers\[0\]\[0\]` must be an ElmanRNN, LSTM or GRU"),
    (lambda: BidirectionalRNN([(_cells(GRU), _cells(GRU))], W_yh=np.ones((2, 4))), ValueError, r"`W_yh` must have shape \(n_out, 8\)"),
    (lambda: BidirectionalRNN([(ElmanRNN.init(3, 4, None), ElmanRNN.init(3, 4, None, dtype=np.float32))]), TypeError, r"dtype float64"),
    (lambda: _model("gru", 2).forward(np.zeros((3, 3)), h0=np.zeros((2, 4))), ValueError, r"`h0` must have shape \(4, 4\)"),
    (lambda: _model("gru", 1).forward(np.zeros((3, 3)), c0=np.zeros((2, 4))), ValueError, r"`c0` applies to LSTM cells only"),
    (lambda: _model("lstm", 1).forward(np.zeros((3, 2, 3)), c0=np.zeros((2, 4))), ValueError, r"`c0` must have shape \(2, 2, 4\)"),
    (lambda: _model("lstm", 1).forward(np.zeros((3, 5))), ValueError, r"`x` must have 3 input features"),
    (lambda: _model("lstm", 1).forward(np.zeros((3, 3)), h0=np.full((2, 4), np.nan)), ValueError, r"`h0` must be finite"),
    (lambda: _model("lstm", 1).forward(np.zeros((3, 3))).sequence(0), ValueError, r"`sequence` needs a batched trace"),
    (lambda: _model("lstm", 1).forward(np.zeros((3, 3))).layer_output(1), ValueError, r"`layer` must be < n_layers = 1"),
    (lambda: BidirectionalRNN.init(3, 4, None, cell="rnn"), ValueError, r"`cell`"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_refusals(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
