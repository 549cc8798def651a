"""LSTM and GRU kernels against loop references, finite differences and PyTorch."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import GRU, LSTM
from rnntheory import strategies as rst
from rnntheory._oracles import central_gradient, central_jacobian

CELLS = [LSTM, GRU]


def _model(cls, n_in=3, n=4, n_out=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed + 100)
    m = cls.init(n_in, n, n_out, seed=seed, dtype=dtype)
    return m.replace(
        bias_ih=(rng.normal(size=m.bias_ih.shape) * 0.5).astype(dtype),
        bias_hh=(rng.normal(size=m.bias_hh.shape) * 0.5).astype(dtype),
        b_y=(rng.normal(size=m.b_y.shape) * 0.5).astype(dtype),
    )


def torch_twin(torch, m):
    """A float64 ``nn.LSTMCell``/``nn.GRUCell`` holding ``m``'s weights, and its
    readout ``(W_yh, b_y)`` as leaf tensors that collect gradients."""
    cell = (torch.nn.LSTMCell if m.NAME == "LSTM" else torch.nn.GRUCell)(m.n_in, m.n_hidden, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.tensor(getattr(m, name)))
    return cell, torch.tensor(m.W_yh, requires_grad=True), torch.tensor(m.b_y, requires_grad=True)


def _states(cls, rng, n, B=None):
    shape = (n,) if B is None else (B, n)
    kw = {"h0": rng.normal(size=shape)}
    if cls is LSTM:
        kw["c0"] = rng.normal(size=shape)
    return kw


@pytest.mark.parametrize("cls", CELLS)
def test_forward_matches_the_definition(cls):
    """h_t (and c_t) from the kernel equal the step-by-step definition of
    torch's LSTMCell / GRUCell written as a loop in tests/naive.py."""
    rng = np.random.default_rng(1)
    m = _model(cls)
    x = rng.normal(size=(9, 3)) * 2
    kw = _states(cls, rng, 4)
    tr = m.forward(x, **kw)
    if cls is LSTM:
        hs, cs = naive.lstm_forward(m, x, kw["h0"], kw["c0"])
        np.testing.assert_allclose(tr.c, cs, rtol=1e-12, atol=1e-14)
    else:
        hs = naive.gru_forward(m, x, kw["h0"])
    np.testing.assert_allclose(tr.h, hs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_gradients_equal_central_differences(cls, loss):
    """Every entry of every parameter gradient and of ∂E/∂h_0 (and ∂E/∂c_0)
    equals the central difference of the loop-reference loss (float64, ≤ 1e-7)."""
    rng = np.random.default_rng(2)
    m = _model(cls, seed=3)
    T = 6
    x = rng.normal(size=(T, 3))
    y = rng.integers(0, 3, T) if loss == "xent" else rng.normal(size=(T, 3))
    kw = _states(cls, rng, 4)
    _, g = m.value_and_grad(x, y, loss=loss, **kw)
    eps = 1e-6
    fds = central_gradient(lambda q: naive.gated_loss(m.replace(**q), x, y, loss, **kw), m.params(), eps)
    for name, fd in fds.items():
        got = g.params()[name]
        assert np.max(np.abs(got - fd)) <= 1e-7 * max(1.0, np.max(np.abs(fd))), name
    flows = {"h0": g.flow[0], "c0": g.flow_c[0] if cls is LSTM else None}
    fds = central_gradient(lambda k: naive.gated_loss(m, x, y, loss, **k), kw, eps)
    for state, fd in fds.items():
        flow = flows[state]
        assert np.max(np.abs(flow - fd)) <= 1e-7 * max(1.0, np.max(np.abs(fd))), state


@pytest.mark.oracle
@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("B", [1, 3])
def test_against_torch_autograd(cls, B):
    """Loss, every parameter gradient and the flows ∂E/∂h_k (∂E/∂c_k) equal
    PyTorch autograd through nn.LSTMCell / nn.GRUCell in float64 (≤ 1e-10),
    with a mask and nonzero initial states."""
    torch = torch_or_skip()
    rng = np.random.default_rng(4 + B)
    n_in, n, n_out, T = 3, 5, 4, 7
    m = _model(cls, n_in, n, n_out, seed=5)
    x = rng.normal(size=(T, B, n_in))
    y = rng.integers(0, n_out, (T, B))
    mask = (rng.random((T, B)) > 0.3).astype(float)
    kw = _states(cls, rng, n, B)
    L, g = m.value_and_grad(x, y, loss="xent", mask=mask, **kw)
    cell, Wy, by = torch_twin(torch, m)
    h = torch.tensor(kw["h0"], requires_grad=True)
    hs = [h]
    c = torch.tensor(kw["c0"], requires_grad=True) if cls is LSTM else None
    cs = [c]
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        if cls is LSTM:
            h, c = cell(torch.tensor(x[t]), (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(torch.tensor(x[t]), h)
        h.retain_grad()
        hs.append(h)
        lp = torch.log_softmax(h @ Wy.T + by, -1)
        total = total - (lp[torch.arange(B), torch.tensor(y[t])] * torch.tensor(mask[t])).sum()
    total.backward()

    def close(a, b):
        b = b.detach().numpy()
        return np.max(np.abs(a - b)) <= 1e-10 * max(1.0, np.max(np.abs(b)))

    assert abs(L - total.item()) <= 1e-10 * max(1.0, abs(total.item()))
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert close(getattr(g, name), getattr(cell, name).grad), name
    assert close(g.W_yh, Wy.grad) and close(g.b_y, by.grad)
    for k in range(T + 1):
        assert close(g.flow[k], hs[k].grad), k
        if cls is LSTM:
            assert close(g.flow_c[k], cs[k].grad), k


@pytest.mark.parametrize("cls", CELLS)
def test_batch_is_the_sum_of_its_sequences(cls):
    """A batch's loss and gradients are the sums over its sequences (Eq. 4 summed
    over the batch); each flow row is that sequence's own flow."""
    rng = np.random.default_rng(6)
    m = _model(cls, seed=7)
    x = rng.normal(size=(5, 3, 3))
    y = rng.integers(0, 3, (5, 3))
    L, g = m.value_and_grad(x, y)
    parts = [m.value_and_grad(x[:, b], y[:, b]) for b in range(3)]
    assert abs(L - sum(p[0] for p in parts)) <= 1e-12 * max(1.0, abs(L))
    for name, G in g.params().items():
        np.testing.assert_allclose(G, sum(p[1].params()[name] for p in parts), rtol=1e-11, atol=1e-13)
    for b in range(3):
        np.testing.assert_allclose(g.flow[:, b], parts[b][1].flow, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("cls", CELLS)
def test_float32_tracks_float64(cls):
    """The float32 computation stays within float32 rounding of the float64 one."""
    rng = np.random.default_rng(8)
    m64 = _model(cls, seed=9)
    m32 = cls(**{k: v.astype(np.float32) for k, v in m64.params().items()})
    x = rng.normal(size=(8, 2, 3))
    y = rng.integers(0, 3, (8, 2))
    L64, g64 = m64.value_and_grad(x, y)
    L32, g32 = m32.value_and_grad(x, y)
    assert g32.weight_hh.dtype == np.float32
    assert abs(L32 - L64) <= 1e-4 * max(1.0, abs(L64))
    for name, G in g64.params().items():
        assert np.max(np.abs(g32.params()[name] - G)) <= 1e-4 * max(1.0, np.max(np.abs(G))), name


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: LSTM(np.zeros((8, 2)), np.zeros((7, 2))), ValueError, "`weight_hh`"),
        (lambda: LSTM(np.zeros((7, 2)), np.zeros((8, 2))), ValueError, "`weight_ih`"),
        (lambda: GRU(np.zeros((6, 2)), np.zeros((6, 2)), np.zeros(5)), ValueError, "`bias_ih`"),
        (lambda: GRU(np.zeros((6, 2), np.float32), np.zeros((6, 2))), TypeError, "`weight_ih`"),
        (lambda: LSTM(np.zeros((8, 1)), np.full((8, 2), np.nan)), ValueError, "`weight_hh`"),
        (lambda: LSTM.init(2, 3, None, scheme="xavier"), ValueError, "`scheme`"),
        (lambda: GRU.init(2, 3, None, forget_bias=1.0), ValueError, "`forget_bias`"),
        (lambda: LSTM.init(2, 3, None).forward(np.zeros((4, 3))), ValueError, "`x`"),
        (lambda: LSTM.init(2, 3, None).forward(np.zeros((4, 2)), c0=np.zeros(4)), ValueError, "`c0`"),
        (lambda: GRU.init(2, 3, 2).value_and_grad(np.zeros((4, 2)), np.full(4, 2)), ValueError, "`y`"),
    ],
)
def test_bad_inputs(call, exc, match):
    """Bad arguments raise the documented error, naming the argument."""
    with pytest.raises(exc, match=match):
        call()


def test_init_schemes():
    """PyTorch's default init draws from U(−1/√n, 1/√n); the orthogonal scheme makes
    each gate block of weight_hh orthogonal; forget_bias shifts the LSTM's f block."""
    n = 6
    m = LSTM.init(3, n, None, seed=1)
    k = 1 / np.sqrt(n)
    assert np.all(np.abs(m.weight_hh) <= k) and np.all(np.abs(m.bias_ih) <= k)
    o = GRU.init(3, n, None, scheme="orthogonal", seed=2)
    for gate in range(3):
        Q = o.weight_hh[gate * n:(gate + 1) * n]
        np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-12)
    fb = LSTM.init(3, n, None, scheme="orthogonal", forget_bias=1.0)
    np.testing.assert_array_equal(fb.bias_hh[n:2 * n], 1.0)
    assert np.all(fb.bias_hh[:n] == 0) and np.all(fb.bias_hh[2 * n:] == 0)


# ----------------------------------------------------------------------------- Jacobians
@pytest.mark.parametrize("cls", CELLS)
def test_step_jacobians_equal_finite_differences(cls):
    """∂s_t/∂s_{t−1} (s = (h, c) for the LSTM, h for the GRU) equals central
    differences of one step of the loop reference, at every step."""
    from rnntheory import jacobians

    rng = np.random.default_rng(10)
    m = _model(cls, n=3, seed=11)
    x = rng.normal(size=(6, 3))
    tr = m.forward(x)
    J = jacobians.step_jacobians(m, tr)
    n = 3
    for t in range(1, 7):
        if cls is LSTM:
            def step(s, t=t):
                hs, cs = naive.lstm_forward(m, x[t - 1:t], s[:n], s[n:])
                return np.concatenate([hs[1], cs[1]])

            s0 = np.concatenate([tr.h[t - 1], tr.c[t - 1]])
        else:
            def step(s, t=t):
                return naive.gru_forward(m, x[t - 1:t], s)[1]

            s0 = tr.h[t - 1]
        np.testing.assert_allclose(J[t - 1], central_jacobian(step, s0), atol=1e-8)


def test_lstm_carousel_is_diag_f_and_the_identity_when_saturated():
    """The direct path ∂c_t/∂c_{t−1}|direct is diag(f_t) exactly; with the forget
    gate saturated open (σ(40) = 1 in float64) and the input gate closed, the
    c → c block of ∂(h,c)_t/∂(h,c)_k is the identity to 1e-12 over 30 steps
    (the constant error carousel)."""
    from rnntheory import jacobians

    rng = np.random.default_rng(12)
    n = 3
    m = LSTM.init(2, n, None, seed=13)
    tr = m.forward(rng.normal(size=(5, 2)))
    f = 1.0 / (1.0 + np.exp(-tr.pre[:, n:2 * n]))
    np.testing.assert_allclose(
        jacobians.step_jacobians(m, tr, block="c"), np.einsum("ti,ij->tij", f, np.eye(n)), rtol=1e-15
    )
    b = np.zeros(4 * n)
    b[n:2 * n] = 40.0  # forget gate open
    b[:n] = -40.0  # input gate closed
    W = np.zeros((4 * n, n))
    W[3 * n:] = rng.normal(size=(n, n))  # the output gate still reads h
    sat = LSTM(rng.normal(size=(4 * n, 2)) * 0.1, W, b, np.zeros(4 * n))
    tr = sat.forward(rng.normal(size=(30, 2)))
    P = jacobians.product(sat, tr, 30, 0)
    np.testing.assert_allclose(P[n:, n:], np.eye(n), atol=1e-12)
    np.testing.assert_allclose(P[n:, :n], 0.0, atol=1e-12)


def test_gru_update_gate_near_one_gives_the_identity():
    """As z → 1 the GRU keeps its state: with z = σ(40) = 1 in float64,
    ∂h_t/∂h_k = I to 1e-12 over 30 steps."""
    from rnntheory import jacobians

    rng = np.random.default_rng(14)
    n = 3
    b = np.zeros(3 * n)
    b[n:2 * n] = 40.0
    g = GRU(rng.normal(size=(3 * n, 2)), rng.normal(size=(3 * n, n)), b, np.zeros(3 * n))
    tr = g.forward(rng.normal(size=(30, 2)))
    np.testing.assert_allclose(jacobians.product(g, tr, 30, 0), np.eye(n), atol=1e-12)


@pytest.mark.parametrize("cls", CELLS)
def test_certify_gated_uses_valid_bounds_only(cls):
    """For gated cells the gated bound and the submultiplicative bound Π‖J_i‖
    hold on every pair, and the Elman bound (γ_W γ_h)^(t−k) is refused with an
    explanation."""
    from rnntheory import bounds

    rng = np.random.default_rng(15)
    m = _model(cls, seed=16)
    tr = m.forward(rng.normal(size=(12, 3)))
    cert = bounds.certify(m, tr)
    assert [c.name for c in cert.checks] == ["gated", "step_norm"] and cert.holds
    with pytest.raises(ValueError, match="does not bound"):
        bounds.certify(m, tr, bounds=("eq12",))


@given(rst.gated_models(), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_gated_step_bound_holds_on_every_pair(model, T, seed):
    """Property: for strategy-drawn LSTM/GRU cells (saturating biases included)
    and random inputs, ‖∂s_t/∂s_k‖ ≤ Π_{i=k+1}^{t} κ_i on every pair (k < t),
    with κ_i the gated step bound and the observed norm the SVD of the explicit
    product of the step Jacobians (an oracle independent of log_norms)."""
    from rnntheory import bounds, jacobians

    x = np.random.default_rng(seed).normal(size=(T, model.n_in)) * 2
    tr = model.forward(x)
    J = jacobians.step_jacobians(model, tr)
    kappa = np.exp(bounds.step_log_bounds(model, tr, "gated"))
    assert np.all(np.linalg.norm(J, 2, axis=(1, 2)) <= kappa * (1 + 1e-12) + 1e-300)
    for k in range(T):
        P = np.eye(J.shape[1])
        for t in range(k + 1, T + 1):
            P = J[t - 1] @ P
            assert np.linalg.norm(P, 2) <= np.prod(kappa[k:t]) * (1 + 1e-10) + 1e-300
    assert bounds.certify(model, tr)["gated"].holds


@given(rst.gated_models(cell="gru"), st.integers(2, 10))
def test_gru_bound_is_at_least_the_carry(model, T):
    """The GRU's step bound is at least max z (the carry term diag(z) alone), so
    it can never certify vanishing while an update gate is open: unlike
    (γ_W γ_h)^(t−k), it respects the identity path."""
    from rnntheory import bounds

    tr = model.forward(np.zeros((T, model.n_in)))
    n = model.n_hidden
    z = 1 / (1 + np.exp(-tr.pre[:, n:2 * n]))
    assert np.all(np.exp(bounds.step_log_bounds(model, tr, "gated")) >= z.max(axis=1) * (1 - 1e-12))


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("n", [1, 2])
def test_kernels_and_jacobians_match_the_symbolic_cell(cls, n):
    """The Numba forward step and the analysis' step Jacobians equal SymPy's
    LSTM/GRU cell (derived from torch's equations in rnntheory.symbolic.gated)
    evaluated by lambdify, at every step of a trajectory."""
    from rnntheory import jacobians
    from rnntheory.symbolic import gated as sg

    fns = sg.lambdify_cell(sg.gated_cell(cls.NAME.lower(), n))
    rng = np.random.default_rng(20 + n)
    m = cls.init(1, n, None, seed=21 + n)
    m = m.replace(bias_ih=rng.normal(size=m.bias_ih.shape), bias_hh=rng.normal(size=m.bias_hh.shape))
    p = {k: getattr(m, k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    x = rng.normal(size=(5, 1)) * 2
    tr = m.forward(x)
    J = jacobians.step_jacobians(m, tr)
    for t in range(1, 6):
        if cls is LSTM:
            state = (tr.h[t - 1], tr.c[t - 1])
            got = np.concatenate([tr.h[t], tr.c[t]])
        else:
            state = (tr.h[t - 1],)
            got = tr.h[t]
        out = fns.step(p, x[t - 1], *state)
        out = np.concatenate(out) if cls is LSTM else out  # the LSTM returns (h′, c′)
        np.testing.assert_allclose(out, got, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(J[t - 1], fns.jacobian(p, x[t - 1], *state), rtol=1e-11, atol=1e-13)
