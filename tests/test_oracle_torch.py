"""PyTorch autograd as an independent oracle for the loss and every gradient.

The recurrences are written by hand in torch (float64) from the definitions;
the standard form is also compared with ``torch.nn.RNN``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from oracle import torch_or_skip

from rnntheory import ElmanRNN

torch = torch_or_skip()

pytestmark = pytest.mark.oracle

TOL = 1e-10


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def make(seed, *, act="tanh", form="standard", alpha=None, n_in=3, n=5, n_out=4):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 1.3 / np.sqrt(n), (n, n))
    U = rng.normal(0.0, 1.0, (n, n_in))
    b = rng.normal(0.0, 0.5, n)
    V = rng.normal(0.0, 1.0, (n_out, n))
    c = rng.normal(0.0, 0.5, n_out)
    if alpha == "scalar":
        alpha = 0.4
    elif alpha == "vector":
        alpha = rng.uniform(0.0, 1.0, n)
    m = ElmanRNN(W, U, b, V, c, activation=act, form=form, alpha=alpha)
    return m, rng


def torch_act(name):
    return {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
            "identity": lambda v: v}[name]


def torch_loss_and_grads(m, x, y, *, h0=None, mask=None, kind="xent"):
    """Hand-written recurrence, readout and summed loss in torch; autograd gradients."""
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in m.params().items()}
    xt = torch.tensor(x, dtype=torch.float64)
    T, B = xt.shape[0], xt.shape[1]
    h = torch.zeros(B, m.n_hidden, dtype=torch.float64) if h0 is None else torch.tensor(h0)
    h = h.clone().requires_grad_(True)
    h_first = h
    f = torch_act(m.activation.name)
    alpha = None if m.alpha is None else torch.tensor(m.alpha, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        if m.form == "standard":
            g = f(h @ p["W_hh"].T + xt[t] @ p["W_hx"].T + p["b_h"])
        else:
            g = f(h) @ p["W_hh"].T + xt[t] @ p["W_hx"].T + p["b_h"]
        h = g if alpha is None else alpha * h + (1.0 - alpha) * g
        z = h @ p["W_yh"].T + p["b_y"]
        w = torch.ones(B, dtype=torch.float64) if mask is None else torch.tensor(mask[t])
        if kind == "xent":
            lt = torch.nn.functional.cross_entropy(z, torch.tensor(y[t]), reduction="none")
        else:
            lt = 0.5 * ((z - torch.tensor(y[t])) ** 2).sum(dim=1)
        total = total + (w * lt).sum()
    total.backward()
    grads = {k: v.grad.numpy() for k, v in p.items()}
    grads["h0"] = h_first.grad.numpy()
    return float(total.detach()), grads


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_forward_equals_torch_nn_rnn(act):
    """``torch.nn.RNN`` with ``W_ih = W_hx``, ``W_hh``, ``b_ih = b_h``, ``b_hh = 0``
    computes Eq. 2b; its hidden states equal the model's trace."""
    m, rng = make(1, act=act)
    T, B = 9, 3
    x = rng.normal(size=(T, B, m.n_in))
    h0 = rng.normal(0.0, 0.5, (B, m.n_hidden))
    rnn = torch.nn.RNN(m.n_in, m.n_hidden, nonlinearity=act, bias=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(m.W_hx))
        rnn.weight_hh_l0.copy_(torch.tensor(m.W_hh))
        rnn.bias_ih_l0.copy_(torch.tensor(m.b_h))
        rnn.bias_hh_l0.zero_()
        out, hT = rnn(torch.tensor(x), torch.tensor(h0)[None])
    tr = m.forward(x, h0=h0)
    assert rel_err(tr.h[1:], out.numpy()) <= TOL
    assert rel_err(tr.h[-1], hT[0].numpy()) <= TOL


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_nn_rnn_gradients_equal_bptt(act):
    """Autograd through ``torch.nn.RNN`` plus a linear readout and summed softmax
    cross-entropy gives the same ``E`` and gradients as the model's BPTT."""
    m, rng = make(2, act=act)
    T, B = 8, 2
    x = rng.normal(size=(T, B, m.n_in))
    y = rng.integers(0, m.n_out, (T, B))
    rnn = torch.nn.RNN(m.n_in, m.n_hidden, nonlinearity=act, bias=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(m.W_hx))
        rnn.weight_hh_l0.copy_(torch.tensor(m.W_hh))
        rnn.bias_ih_l0.copy_(torch.tensor(m.b_h))
        rnn.bias_hh_l0.zero_()
    V = torch.tensor(m.W_yh, requires_grad=True)
    c = torch.tensor(m.b_y, requires_grad=True)
    out, _ = rnn(torch.tensor(x))
    z = out @ V.T + c
    E = torch.nn.functional.cross_entropy(z.reshape(T * B, -1), torch.tensor(y).reshape(-1),
                                          reduction="sum")
    E.backward()
    val, g = m.value_and_grad(x, y)
    assert abs(val - float(E.detach())) <= TOL * abs(float(E.detach()))
    assert rel_err(g.W_hh, rnn.weight_hh_l0.grad.numpy()) <= TOL
    assert rel_err(g.W_hx, rnn.weight_ih_l0.grad.numpy()) <= TOL
    assert rel_err(g.b_h, rnn.bias_ih_l0.grad.numpy()) <= TOL
    # b_hh enters exactly like b_ih, so its gradient is the same ∂E/∂b_h.
    assert rel_err(g.b_h, rnn.bias_hh_l0.grad.numpy()) <= TOL
    assert rel_err(g.W_yh, V.grad.numpy()) <= TOL
    assert rel_err(g.b_y, c.grad.numpy()) <= TOL


CASES = [
    ("tanh", "standard", None),
    ("relu", "standard", None),
    ("tanh", "pascanu", None),
    ("sigmoid", "pascanu", None),
    ("tanh", "standard", "scalar"),
    ("sigmoid", "standard", "vector"),
    ("tanh", "pascanu", "scalar"),
    ("relu", "pascanu", "vector"),
]


@pytest.mark.parametrize("kind", ["xent", "mse"])
@pytest.mark.parametrize(("act", "form", "alpha"), CASES)
def test_hand_written_torch_loop(act, form, alpha, kind):
    """A hand-written torch loop of the chosen form (standard, Pascanu, leaky
    Eq. 14) with readout, per-step mask and ``h_0``: loss, every parameter
    gradient and ``∂E/∂h_0`` (``flow[0]``) equal autograd to 1e-10."""
    m, rng = make(zlib.crc32(repr((act, form, alpha, kind)).encode()), act=act, form=form, alpha=alpha)
    T, B = 10, 3
    x = rng.normal(size=(T, B, m.n_in))
    h0 = rng.normal(0.0, 0.5, (B, m.n_hidden))
    mask = rng.uniform(0.0, 2.0, (T, B))
    mask[rng.uniform(size=(T, B)) < 0.3] = 0.0
    if kind == "xent":
        y = rng.integers(0, m.n_out, (T, B))
    else:
        y = rng.normal(size=(T, B, m.n_out))
    ref_val, ref = torch_loss_and_grads(m, x, y, h0=h0, mask=mask, kind=kind)
    if kind == "xent":
        y = np.where(mask == 0, -1, y)  # ignored where masked
    val, g = m.value_and_grad(x, y, loss=kind, mask=mask, h0=h0)
    assert abs(val - ref_val) <= TOL * abs(ref_val)
    for name, grad in g.params().items():
        assert rel_err(grad, ref[name]) <= TOL, name
    assert rel_err(g.flow[0], ref["h0"]) <= TOL
