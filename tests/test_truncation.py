"""Truncated BPTT (``value_and_grad(truncate=k2)``) and its guarantees."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import ElmanRNN
from rnntheory import strategies as rst


@given(
    rst.elman_models(n_out=st.just(3), leaky=st.booleans(), activation=st.sampled_from(["tanh", "sigmoid", "identity"])),
    st.integers(1, 8),
    st.integers(1, 10),
    st.integers(0, 2**32 - 1),
)
def test_truncated_gradient_is_the_windowed_double_sum(model, T, k2, seed):
    """∂E/∂W_hh with truncate=k2 equals Σ_t Σ_{0 ≤ t−k < k2} (∂E_t/∂h_t)(∂h_t/∂h_k)(∂⁺h_k/∂W_hh),
    computed term by term from explicit Jacobian products (tests/naive.py), and
    the truncated flow matches too: every contribution with t − k ≥ k2 is zero."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, model.n_in))
    y = rng.integers(0, 3, T)
    _, g = model.value_and_grad(x, y, truncate=k2)
    dW, flow = naive.bptt_windowed(model, x, y, "xent", k2)
    scale = max(1.0, np.max(np.abs(dW)))
    assert np.max(np.abs(g.W_hh - dW)) <= 1e-10 * scale
    assert np.max(np.abs(g.flow - flow)) <= 1e-10 * max(1.0, np.max(np.abs(flow)))


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_window_at_least_T_is_full_bptt(form):
    """With k2 ≥ T no parameter contribution is cut (t − k ≤ T − 1 for k ≥ 1): every
    parameter gradient equals full BPTT, and with k2 > T the flow too; k2 = T − 1
    differs (E_T no longer reaches the input weights of step 1)."""
    rng = np.random.default_rng(1)
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.5, seed=2, form=form)
    x = rng.normal(size=(9, 2))
    y = rng.integers(0, 3, 9)
    _, full = m.value_and_grad(x, y)
    for k2 in (9, 10, 50):
        _, tr = m.value_and_grad(x, y, truncate=k2)
        for name, G in full.params().items():
            np.testing.assert_allclose(tr.params()[name], G, rtol=1e-12, atol=1e-14)
        if k2 > 9:
            np.testing.assert_allclose(tr.flow, full.flow, rtol=1e-12, atol=1e-14)
    _, cut = m.value_and_grad(x, y, truncate=8)
    assert not np.allclose(cut.W_hx, full.W_hx, rtol=1e-9, atol=0)


def test_window_one_keeps_only_immediate_terms():
    """With k2 = 1 each E_t reaches only the parameters of its own step:
    ∂E/∂W_hh = Σ_t (f′(a_t) ⊙ ∂E_t/∂h_t) h_{t−1}ᵀ, and a batch is the sum of its sequences."""
    rng = np.random.default_rng(3)
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=2.0, seed=4)
    x = rng.normal(size=(6, 2, 2))
    y = rng.normal(size=(6, 2, 2))
    _, g = m.value_and_grad(x, y, loss="mse", truncate=1)
    expect = np.zeros((3, 3))
    for b in range(2):
        hs = naive.forward(m, x[:, b])
        for t in range(1, 7):
            e = m.W_yh.T @ (m.W_yh @ hs[t] + m.b_y - y[t - 1, b])
            a = m.W_hh @ hs[t - 1] + m.W_hx @ x[t - 1, b] + m.b_h
            expect += np.outer(e * naive.act_prime("tanh", a), hs[t - 1])
    np.testing.assert_allclose(g.W_hh, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_truncate_must_be_a_positive_integer(bad):
    """A window that is not a positive integer is refused, naming `truncate`."""
    m = ElmanRNN.init(1, 2, 2, seed=0)
    with pytest.raises((ValueError, TypeError), match="`truncate`"):
        m.value_and_grad(np.zeros((3, 1)), np.zeros(3, int), truncate=bad)


@given(
    rst.elman_models(n_out=st.just(3), leaky=st.booleans()),
    st.integers(1, 9),
    st.integers(1, 4),
    st.integers(0, 4),
    st.integers(0, 2**32 - 1),
)
def test_williams_peng_schedule_is_the_block_windowed_sum(model, T, k1, extra, seed):
    """BPTT(k1, k2) with k2 = k1 + extra: E_t reaches h_k exactly when
    e(t) − k < k2, e(t) = min(⌈t/k1⌉ k1, T) the end of t's block; gradient and
    flow equal that double sum built from explicit Jacobian products."""
    k2 = k1 + extra
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, model.n_in))
    y = rng.integers(0, 3, T)
    _, g = model.value_and_grad(x, y, truncate=(k1, k2))
    dW, flow = naive.bptt_windowed(model, x, y, "xent", k2, k1=k1)
    assert np.max(np.abs(g.W_hh - dW)) <= 1e-10 * max(1.0, np.max(np.abs(dW)))
    assert np.max(np.abs(g.flow - flow)) <= 1e-10 * max(1.0, np.max(np.abs(flow)))


def test_k1_one_is_the_sliding_window_and_chunks_cut_between_blocks():
    """(1, k2) equals truncate=k2; with k1 = k2 = 3 no gradient crosses a block
    boundary: the loss of step 4 has no path to the input weights of step 3."""
    rng = np.random.default_rng(7)
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.2, seed=8)
    x = rng.normal(size=(9, 2))
    y = rng.integers(0, 3, 9)
    _, a = m.value_and_grad(x, y, truncate=4)
    _, b = m.value_and_grad(x, y, truncate=(1, 4))
    for name, G in a.params().items():
        np.testing.assert_array_equal(b.params()[name], G)
    mask = np.zeros(9)
    mask[3] = 1.0  # only E_4 counts
    xs = x.copy()
    _, g0 = m.value_and_grad(xs, y, truncate=(3, 3), mask=mask)
    xs[2] += 1.0  # change x_3 (the last input of the previous block)
    _, g1 = m.value_and_grad(xs, y, truncate=(3, 3), mask=mask)
    # E_4's gradient w.r.t. the bias still depends on x_3 through the forward state,
    # but nothing flows back into step 3: flow[3] is exactly zero in both runs
    assert np.all(g0.flow[3] == 0.0) and np.all(g1.flow[3] == 0.0)


@pytest.mark.parametrize("bad", [(0, 2), (3, 2), (1, 2, 3), (1.5, 2)])
def test_bad_schedules(bad):
    """(k1, k2) must be positive integers with k2 ≥ k1, named `truncate`."""
    m = ElmanRNN.init(1, 2, 2, seed=0)
    with pytest.raises((ValueError, TypeError), match="`truncate`"):
        m.value_and_grad(np.zeros((4, 1)), np.zeros(4, int), truncate=bad)


def _blockwise(model, x, y, k, loss):
    """Chunked truncation from its definition: run the model forward once, then,
    block by block, differentiate the block's own losses with full BPTT from the
    block's first state held constant (given as h0/c0), and add the gradients."""
    tr = model.forward(x)
    total: dict[str, np.ndarray] = {}
    flow = np.zeros_like(tr.h)  # flow[s] of a block's first state: only the previous block's
    for s in range(0, x.shape[0], k):
        kw = {"h0": tr.h[s]}
        if getattr(tr, "c", None) is not None:
            kw["c0"] = tr.c[s]
        _, g = model.value_and_grad(x[s : s + k], y[s : s + k], loss=loss, **kw)
        for name, G in g.params().items():
            total[name] = total.get(name, 0.0) + G
        flow[s + 1 : s + k + 1] = g.flow[1:]
    return total, flow


@given(
    st.sampled_from(["lstm", "gru", "elman"]),
    st.sampled_from([(6, 1), (6, 2), (6, 3), (8, 4), (6, 6)]),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_chunked_truncation_is_blockwise_bptt_for_every_cell(cell, Tk, B, seed):
    """truncate=(k, k) with k | T equals, for every parameter, the sum over blocks
    of the full-BPTT gradient of the block's losses with the block's initial
    state (h, and c for the LSTM) held constant, and the flow ∂E/∂h_k is the
    blocks' flows put side by side: no gradient crosses a block boundary and
    none is lost inside a block (Williams & Peng's BPTT(k, k))."""
    from rnntheory import GRU, LSTM

    T, k = Tk
    rng = np.random.default_rng(seed)
    if cell == "elman":
        m = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=1.3, seed=seed % 1000)
    else:
        m = (LSTM if cell == "lstm" else GRU).init(2, 5, 3, seed=seed % 1000)
    x = rng.normal(size=(T, B, 2))
    y = rng.normal(size=(T, B, 3))
    _, g = m.value_and_grad(x, y, loss="mse", truncate=(k, k))
    want, flow = _blockwise(m, x, y, k, "mse")
    for name, G in g.params().items():
        scale = max(1.0, float(np.max(np.abs(want[name]))))
        assert np.max(np.abs(G - want[name])) <= 1e-12 * scale, name
    # ∂E/∂h_k: a block's first state sees only the previous block's losses (h_0 none)
    assert np.max(np.abs(g.flow - flow)) <= 1e-12 * max(1.0, float(np.max(np.abs(flow))))
    assert np.all(g.flow[0] == 0.0)


@pytest.mark.parametrize("bad", [0, (3, 2), (0, 0)])
def test_gated_truncation_refuses_invalid_schedules(bad):
    """Gated cells take every schedule Elman takes (tests/test_gated_truncation.py)
    and refuse what is no schedule (k2 < 1, k2 < k1), naming `truncate`."""
    from rnntheory import LSTM

    m = LSTM.init(1, 2, 2, seed=0)
    with pytest.raises(ValueError, match="`truncate`"):
        m.value_and_grad(np.zeros((6, 1)), np.zeros(6, int), truncate=bad)
