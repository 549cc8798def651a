"""Batched LSTM and GRU passes split over threads.

The forward and backward kernels of the gated cells run on contiguous ranges of
the batch's sequences (``rnntheory._parallel.run_rows``), and the weight
gradients are sums of per-range partial products (``sum_over_rows``).
Sequences never interact, so the loss, every parameter gradient and the flows
``∂E/∂h_k`` (and ``∂E/∂c_k``) must equal the independent references whatever
the thread count: the loss against the loop definition in ``tests/naive.py``,
the gradients and flows against PyTorch autograd through ``nn.LSTMCell`` /
``nn.GRUCell`` in float64 (as in ``tests/test_gated.py``). The threshold that
keeps small problems on one thread is lowered to 0 here so that tiny problems
take the threaded path.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from oracle import torch_or_skip
from test_elman_kernels import make_mask, masked_targets, rel_err
from test_gated import torch_twin

import rnntheory
from rnntheory import GRU, LSTM

CELLS = [LSTM, GRU]
PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "W_yh", "b_y")


def _torch():
    return torch_or_skip()


def _model(cls, rng, n_in=3, n=4, n_out=3):
    """A cell with nonzero biases everywhere (PyTorch's init for the weights)."""
    m = cls.init(n_in, n, n_out, seed=int(rng.integers(2**31)))
    return m.replace(
        bias_ih=rng.normal(size=m.bias_ih.shape) * 0.5,
        bias_hh=rng.normal(size=m.bias_hh.shape) * 0.5,
        b_y=rng.normal(size=m.b_y.shape) * 0.5,
    )


def _data(cls, rng, m, loss, T, B):
    x = rng.normal(size=(T, B, m.n_in))
    if loss == "xent":
        y = rng.integers(0, m.n_out, (T, B))
    else:
        y = rng.normal(size=(T, B, m.n_out))
    states = {"h0": rng.normal(0.0, 0.5, (B, m.n_hidden))}
    if cls is LSTM:
        states["c0"] = rng.normal(0.0, 0.5, (B, m.n_hidden))
    return x, y, states


def _naive_masked_loss(m, x, y, loss, mask, states):
    """Σ_b Σ_t w_tb E_tb by the loop definition: the forward pass is causal, so
    the loss of step t alone is ``gated_loss(x[:t]) − gated_loss(x[:t−1])``."""
    total = 0.0
    for b in range(x.shape[1]):
        st = {k: v[b] for k, v in states.items()}
        prev = 0.0
        for t in range(1, x.shape[0] + 1):
            cur = naive.gated_loss(m, x[:t, b], y[:t, b], loss, **st)
            total += mask[t - 1, b] * (cur - prev)
            prev = cur
    return total


def _torch_reference(m, x, y, loss, mask, states, chunk=0):
    """Loss, parameter gradients and flows by PyTorch autograd (float64).

    ``chunk > 0``: the state is detached at the start of every block of
    ``chunk`` steps, the first included (chunked truncated BPTT,
    BPTT(chunk, chunk)); a block's last state then gets only the flow of its
    own loss, and the initial states none.
    """
    torch = _torch()
    lstm = m.NAME == "LSTM"
    T, B, _ = x.shape
    cell, Wy, by = torch_twin(torch, m)
    h = torch.tensor(states["h0"], requires_grad=True)
    c = torch.tensor(states["c0"], requires_grad=True) if lstm else None
    hs, cs = [h], [c]
    w = torch.tensor(mask)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(1, T + 1):
        if chunk and (t - 1) % chunk == 0:
            h = h.detach()
            c = c.detach() if lstm else None
        if lstm:
            h, c = cell(torch.tensor(x[t - 1]), (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(torch.tensor(x[t - 1]), h)
        h.retain_grad()
        hs.append(h)
        z = h @ Wy.T + by
        if loss == "xent":
            lp = torch.log_softmax(z, -1)
            total = total - (lp[torch.arange(B), torch.tensor(y[t - 1])] * w[t - 1]).sum()
        else:
            total = total + 0.5 * (((z - torch.tensor(y[t - 1])) ** 2).sum(-1) * w[t - 1]).sum()
    total.backward()

    def grad(v):
        return np.zeros((B, m.n_hidden)) if v.grad is None else v.grad.numpy().copy()

    grads = {name: getattr(cell, name).grad.numpy().copy() for name in PARAMS[:4]}
    grads["W_yh"], grads["b_y"] = Wy.grad.numpy().copy(), by.grad.numpy().copy()
    flow_c = np.stack([grad(v) for v in cs]) if lstm else None
    return total.item(), grads, np.stack([grad(v) for v in hs]), flow_c


@pytest.mark.oracle
@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("cls", CELLS)
def test_threaded_value_and_grad_matches_references(threaded, cls, loss, threads):
    """Split over 2, 3 or 8 threads (B = 5: ranges of 1–3 sequences, and more
    threads than sequences), with a weighted mask and garbage targets at masked
    steps: the loss equals Σ_b Σ_t w_tb E_tb of the loop definition, and every
    parameter gradient, ∂E/∂h_k (and ∂E/∂c_k), k = 0..T, equals PyTorch autograd
    through the cell, to 1e-10; the forward states equal the loop forward."""
    rnntheory.set_num_threads(threads)
    rng = np.random.default_rng([threads, len(loss), CELLS.index(cls)])
    T, B = 6, 5
    m = _model(cls, rng)
    x, y, states = _data(cls, rng, m, loss, T, B)
    mask = make_mask(rng, T, B)
    val, g = m.value_and_grad(x, masked_targets(y, mask, loss), loss=loss, mask=mask, **states)
    want = _naive_masked_loss(m, x, y, loss, mask, states)
    assert abs(val - want) <= 1e-10 * abs(want)
    ref_val, ref, flow, flow_c = _torch_reference(m, x, y, loss, mask, states)
    assert abs(val - ref_val) <= 1e-10 * abs(ref_val)
    for name in PARAMS:
        assert rel_err(getattr(g, name), ref[name]) <= 1e-10, name
    assert rel_err(g.flow, flow) <= 1e-10
    if cls is LSTM:
        assert rel_err(g.flow_c, flow_c) <= 1e-10
    tr = m.forward(x, **states)
    for b in range(B):
        if cls is LSTM:
            hs, cs = naive.lstm_forward(m, x[:, b], states["h0"][b], states["c0"][b])
            assert rel_err(tr.c[:, b], cs) <= 1e-10
        else:
            hs = naive.gru_forward(m, x[:, b], states["h0"][b])
        assert rel_err(tr.h[:, b], hs) <= 1e-10


def _chunked(cls, T=9, B=5):
    rng = np.random.default_rng([17, CELLS.index(cls)])
    m = _model(cls, rng)
    x, y, states = _data(cls, rng, m, "mse", T, B)
    return m, x, y, states


@pytest.mark.parametrize("cls", CELLS)
def test_threaded_chunked_truncation_matches_one_thread(threaded, cls):
    """Chunked truncated BPTT(3, 3) over T = 9 on 3 threads (B = 5) equals one
    thread to rounding (1e-12: only the order of the per-range sums of the
    weight gradients differs), ∂E/∂h_k and ∂E/∂c_k included."""
    m, x, y, states = _chunked(cls)
    rnntheory.set_num_threads(1)
    v1, g1 = m.value_and_grad(x, y, loss="mse", truncate=(3, 3), **states)
    rnntheory.set_num_threads(3)
    v3, g3 = m.value_and_grad(x, y, loss="mse", truncate=(3, 3), **states)
    flows = ("flow", "flow_c") if cls is LSTM else ("flow",)
    assert abs(v3 - v1) <= 1e-12 * abs(v1)
    for name in (*PARAMS, *flows):
        assert rel_err(getattr(g3, name), getattr(g1, name)) <= 1e-12, name


@pytest.mark.oracle
@pytest.mark.parametrize("cls", CELLS)
def test_threaded_chunked_truncation_matches_detached_autograd(threaded, cls):
    """Chunked truncated BPTT(3, 3) on 3 threads is the gradient of the same loss
    with the state (h, and c for the LSTM) detached at every block start:
    every parameter gradient, ∂E/∂h_k and ∂E/∂c_k equal PyTorch autograd on the
    detached graph to 1e-10 (a state at a block end gets only ∂E_k/∂h_k, the
    initial states nothing)."""
    m, x, y, states = _chunked(cls)
    rnntheory.set_num_threads(3)
    _, g = m.value_and_grad(x, y, loss="mse", truncate=(3, 3), **states)
    _, ref, flow, flow_c = _torch_reference(m, x, y, "mse", np.ones(x.shape[:2]), states, chunk=3)
    for name in PARAMS:
        assert rel_err(getattr(g, name), ref[name]) <= 1e-10, name
    assert rel_err(g.flow, flow) <= 1e-10
    if cls is LSTM:
        assert rel_err(g.flow_c, flow_c) <= 1e-10


@pytest.mark.parametrize(("cls", "n"), [(LSTM, 32), (GRU, 37)])
def test_threaded_blas_sized_batch_matches_one_thread(threaded, cls, n):
    """At B·G·n² ≥ the per-step BLAS threshold (B = 32; LSTM n = 32, GRU n = 37)
    each thread's range still takes the BLAS product (the whole batch decides),
    and two threads give the one-thread loss, gradients and flows to rounding
    (1e-12), and the forward states equal the loop definition (1e-10)."""
    rng = np.random.default_rng([23, n])
    T, B = 3, 32
    m = _model(cls, rng, n_in=3, n=n, n_out=2)
    x, y, states = _data(cls, rng, m, "mse", T, B)
    rnntheory.set_num_threads(1)
    v1, g1 = m.value_and_grad(x, y, loss="mse", **states)
    tr1 = m.forward(x, **states)
    rnntheory.set_num_threads(2)
    v2, g2 = m.value_and_grad(x, y, loss="mse", **states)
    tr2 = m.forward(x, **states)
    flows = ("flow", "flow_c") if cls is LSTM else ("flow",)
    assert abs(v2 - v1) <= 1e-12 * abs(v1)
    for name in (*PARAMS, *flows):
        assert rel_err(getattr(g2, name), getattr(g1, name)) <= 1e-12, name
    assert rel_err(tr2.h, tr1.h) <= 1e-12
    assert rel_err(tr2.pre, tr1.pre) <= 1e-12
    for b in (0, 15, 16, 31):  # the first and last sequence of each thread's range
        if cls is LSTM:
            hs = naive.lstm_forward(m, x[:, b], states["h0"][b], states["c0"][b])[0]
        else:
            hs = naive.gru_forward(m, x[:, b], states["h0"][b])
        assert rel_err(tr2.h[:, b], hs) <= 1e-10
