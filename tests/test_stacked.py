"""StackedRNN: forward against a hand-chained loop reference and torch's
``nn.RNN/LSTM/GRU(num_layers=L)``, gradients against central differences and
torch autograd, the whole-state flow, and the refusals."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from naive import forward as elman_forward_ref
from naive import gru_forward, lstm_forward
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN, StackedGrads, StackedRNN, StackedTrace

T, B, N_IN, N, N_OUT = 5, 3, 2, 4, 3

# every kind of layer: Elman in each form, LSTM, GRU
KINDS = {
    "standard": ("elman", {"scheme": "gaussian", "scale": 1.1}),
    "pascanu": ("elman", {"scheme": "gaussian", "form": "pascanu"}),
    "leaky": ("elman", {"scheme": "gaussian", "alpha": 0.4}),
    "relu": ("elman", {"scheme": "identity", "scale": 0.9}),
    "lstm": ("lstm", {"forget_bias": 0.5}),
    "gru": ("gru", {}),
}


def stack(kind, L=2, n_out=N_OUT, dtype=np.float64, seed=0):
    cell, opts = KINDS[kind]
    m = StackedRNN.init(N_IN, N, n_out, cell=cell, n_layers=L, seed=seed, dtype=dtype, **opts)
    if cell == "elman":  # nonzero biases, so they are exercised
        rng = np.random.default_rng(seed + 100)
        m = m.replace(**{f"b_h_l{i}": rng.normal(0, 0.3, N).astype(dtype) for i in range(L)})
    return m


def ref_states(m, x, h0=None, c0=None):
    """Hidden (and cell) states of every layer of one sequence, by chaining the
    loop references of tests/naive.py by hand."""
    hs, cs = [], []
    inp = np.asarray(x, float)
    for i, layer in enumerate(m.layers):
        h0_i = None if h0 is None else h0[i]
        if isinstance(layer, LSTM):
            h, c = lstm_forward(layer, inp, h0_i, None if c0 is None else c0[i])
            cs.append(c)
        elif isinstance(layer, GRU):
            h = gru_forward(layer, inp, h0_i)
        else:
            h = elman_forward_ref(layer, inp, h0_i)
        hs.append(h)
        inp = h[1:]
    return hs, cs


def data(seed, batched=False, L=2):
    rng = np.random.default_rng(seed)
    lead = (T, B) if batched else (T,)
    x = rng.normal(size=(*lead, N_IN))
    h0 = rng.uniform(-0.5, 0.5, size=(L, *lead[1:], N))
    c0 = rng.uniform(-0.5, 0.5, size=(L, *lead[1:], N))
    return x, h0, c0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("L", [1, 3])
def test_forward_matches_the_chained_reference(kind, L):
    m = stack(kind, L)
    x, h0, c0 = data(1, L=L)
    lstm = m.cell == "lstm"
    tr = m.forward(x, h0=h0, c0=c0 if lstm else None)
    hs, cs = ref_states(m, x, h0, c0 if lstm else None)
    assert isinstance(tr, StackedTrace) and len(tr.layers) == L
    for i in range(L):
        np.testing.assert_allclose(tr.layers[i].h, hs[i], rtol=0, atol=1e-13)
        if lstm:
            np.testing.assert_allclose(tr.layers[i].c, cs[i], rtol=0, atol=1e-13)
    np.testing.assert_allclose(tr.y, hs[-1][1:] @ m.W_yh.T + m.b_y, rtol=0, atol=1e-13)
    want = np.concatenate([a for i in range(L) for a in ((hs[i], cs[i]) if lstm else (hs[i],))], axis=-1)
    np.testing.assert_allclose(tr.state, want, rtol=0, atol=1e-13)
    assert tr.state.shape == (T + 1, m.state_size)
    np.testing.assert_array_equal(tr.h, tr.layers[-1].h)


@pytest.mark.parametrize("kind", ["standard", "lstm", "gru"])
def test_forward_batch_is_its_sequences(kind):
    m = stack(kind, 2)
    x, h0, c0 = data(2, batched=True)
    kw = {"c0": c0} if m.cell == "lstm" else {}
    tr = m.forward(x, h0=h0, **kw)
    assert tr.batched and tr.T == T and tr.state.shape == (T + 1, B, m.state_size)
    for b in range(B):
        kb = {"c0": c0[:, b]} if m.cell == "lstm" else {}
        one = m.forward(x[:, b], h0=h0[:, b], **kb)
        np.testing.assert_allclose(tr.sequence(b).state, one.state, rtol=0, atol=1e-14)
        np.testing.assert_allclose(tr.sequence(b).y, one.y, rtol=0, atol=1e-14)


def test_init_is_deterministic_with_distinct_layers_and_passes_cell_options():
    a = StackedRNN.init(N_IN, N, N_OUT, cell="elman", n_layers=3, seed=5, scheme="gaussian", form="pascanu",
                        activation="sigmoid", alpha=0.3)
    b = StackedRNN.init(N_IN, N, N_OUT, cell="elman", n_layers=3, seed=5, scheme="gaussian", form="pascanu",
                        activation="sigmoid", alpha=0.3)
    for k, v in a.params().items():
        np.testing.assert_array_equal(v, b.params()[k])
    assert not np.array_equal(a.params()["W_hh_l1"], a.params()["W_hh_l2"])
    assert all(lay.form == "pascanu" and lay.activation.name == "sigmoid" and lay.leaky for lay in a.layers)
    assert a.layers[0].n_in == N_IN and a.layers[1].n_in == N
    c = StackedRNN.init(N_IN, N, None, cell="gru", n_layers=2, seed=6)
    assert c.W_yh is None and c.n_out == N and c.cell == "gru" and c.state_size == 2 * N
    assert StackedRNN.init(N_IN, N, None, cell="lstm", n_layers=3).state_size == 6 * N


def test_params_replace_repr_and_pickle():
    m = stack("lstm", 2)
    keys = list(m.params())
    assert keys == [f"{k}_l{i}" for i in range(2) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] + [
        "W_yh", "b_y"]
    assert repr(m) == "StackedRNN(n_in=2, n_hidden=4, n_out=3, cell='lstm', n_layers=2, dtype=float64)"
    W = np.ones((4 * N, N))
    m2 = m.replace(weight_hh_l1=W, b_y=np.ones(N_OUT))
    np.testing.assert_array_equal(m2.layers[1].weight_hh, W)
    np.testing.assert_array_equal(m2.b_y, np.ones(N_OUT))
    np.testing.assert_array_equal(m2.layers[0].weight_hh, m.layers[0].weight_hh)
    np.testing.assert_array_equal(m.layers[1].weight_hh, stack("lstm", 2).layers[1].weight_hh)  # unchanged
    with pytest.raises(ValueError, match=r"`weight_hh_l2` is not a parameter of StackedRNN"):
        m.replace(weight_hh_l2=W)
    with pytest.raises(ValueError, match=r"`W_hh_l0` is not a parameter of StackedRNN \(layer 0 has no `W_hh`\)"):
        m.replace(W_hh_l0=W)
    with pytest.raises(AttributeError, match="immutable"):
        m.layers = ()
    x, _, _ = data(3)
    m3 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m3.forward(x).state, m.forward(x).state)
    e = stack("leaky", 2).replace(form_l1="pascanu")
    assert e.layers[1].form == "pascanu" and e.layers[0].form == "standard"


def _elman(n_in=N_IN, n=N, dtype=np.float64, **kw):
    return ElmanRNN.init(n_in, n, None, scheme="gaussian", dtype=dtype, **kw)


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: StackedRNN([]), ValueError, r"`layers` must hold at least one layer \(n_layers >= 1\), got 0"),
        (lambda: StackedRNN(_elman()), TypeError, r"`layers` must be a list or tuple"),
        (lambda: StackedRNN([_elman(), "x"]), TypeError, r"`layers\[1\]` must be an ElmanRNN, LSTM or GRU, got str"),
        (lambda: StackedRNN([_elman(), LSTM.init(N, N, None)]), TypeError,
         r"`layers` must all be one cell class, got ElmanRNN \(layer 0\) and LSTM \(layer 1\)"),
        (lambda: StackedRNN([_elman(), _elman(N, dtype=np.float32)]), TypeError,
         r"`layers` must all have one dtype, got float64 \(layer 0\) and float32 \(layer 1\)"),
        (lambda: StackedRNN([_elman(), _elman(N, N + 1)]), ValueError,
         r"`layers` must all have one n_hidden, got 4 \(layer 0\) and 5 \(layer 1\)"),
        (lambda: StackedRNN([_elman(), _elman(N_IN)]), ValueError,
         r"`layers\[1\]` must have n_in = n_hidden = 4 \(it reads layer 0's states\), got n_in = 2"),
        (lambda: StackedRNN([ElmanRNN.init(N_IN, N, 2), _elman(N)]), ValueError,
         r"`layers\[0\]` has a readout .* only the top of a stack reads out"),
        (lambda: StackedRNN([_elman()], W_yh=np.ones((2, N + 1))), ValueError, r"`W_yh` must have shape \(n_out, 4\)"),
        (lambda: StackedRNN([_elman()], W_yh=np.ones((2, N), np.float32)), TypeError, r"`W_yh` must have the dtype"),
        (lambda: StackedRNN.init(N_IN, N, N_OUT, n_layers=0), ValueError, r"`n_layers` must be >= 1"),
        (lambda: StackedRNN.init(N_IN, N, N_OUT, cell="rnn"), ValueError, r"`cell` must be one of"),
        (lambda: StackedRNN.init(N_IN, N, N_OUT, cell="gru", forget_bias=1.0), ValueError, r"`forget_bias`"),
        (lambda: StackedRNN.init(N_IN, N, N_OUT, cell="gru", form="pascanu"), TypeError, r"`cell_options`"),
    ],
)
def test_constructor_refuses_bad_layers(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    ("kind", "kwargs", "exc", "match"),
    [
        ("standard", {"h0": np.zeros((N,))}, ValueError, r"`h0` must have 2 or 3 dimension"),
        ("standard", {"h0": np.zeros((1, N))}, ValueError, r"`h0` must have shape \(L, n\) = \(2, 4\), got shape \(1, 4\)"),
        ("lstm", {"c0": np.zeros((2, N + 1))}, ValueError, r"`c0` must have shape \(L, n\) = \(2, 4\)"),
        ("gru", {"c0": np.zeros((2, N))}, ValueError, r"`c0` applies to a stack of LSTM layers only"),
        ("gru", {"x": np.full((T, N_IN), np.nan)}, ValueError, r"`x` must be finite"),
        ("lstm", {"x": np.ones((T, N_IN + 1))}, ValueError, r"`x` must have 2 input features"),
        ("lstm", {"x": np.ones((0, N_IN))}, ValueError, r"`x` must have at least one time step"),
        ("standard", {"h0": np.full((2, N), np.inf)}, ValueError, r"`h0` must be finite"),
    ],
)
def test_forward_refuses_bad_input(kind, kwargs, exc, match):
    m = stack(kind)
    args = {"x": np.ones((T, N_IN)), **kwargs}
    with pytest.raises(exc, match=match):
        m.forward(**args)


def test_batched_h0_shape_is_named():
    m = stack("gru")
    with pytest.raises(ValueError, match=r"`h0` must have shape \(L, B, n\) = \(2, 3, 4\), got shape \(2, 4\)"):
        m.forward(np.ones((T, B, N_IN)), h0=np.zeros((2, N)))


@pytest.mark.parametrize("kind", ["standard", "lstm", "gru"])
def test_huge_input_is_refused_by_the_reach_check_naming_x(kind):
    m = stack(kind)
    w = "W_hx_l0" if kind == "standard" else "weight_ih_l0"
    m = m.replace(**{w: m.params()[w] * 1e10})
    with pytest.raises(ValueError, match=r"layer 0: `x` is too large"):
        m.forward(np.full((T, N_IN), 1e300))


def test_reach_check_of_an_upper_relu_layer_runs_on_its_real_input():
    """ReLU states are unbounded: layer 1 reads layer 0's huge states and is refused, naming layer 1's input."""
    m = stack("relu", 2).replace(W_hx_l0=np.full((N, N_IN), 1e150), W_hx_l1=np.full((N, N), 1e160))
    with pytest.raises(ValueError, match=r"layer 1 \(it reads the states of layer 0 as its input `x`\): .* \(max \|x\| = 8\.\d+e\+150"):
        m.forward(np.ones((T, N_IN)))
    tanh = stack("standard", 2).replace(W_hx_l1=np.full((N, N), 1e300))  # bounded states: accepted
    assert np.all(np.isfinite(tanh.forward(np.ones((T, N_IN))).state))


# --------------------------------------------------------------------------- torch parity


def _torch_module(torch, m):
    """``nn.RNN/LSTM/GRU(num_layers=L)`` (float64, eval) with the stack's weights
    (Elman: ``b_h`` as ``bias_ih``, ``bias_hh = 0``)."""
    L = m.n_layers
    if m.cell == "elman":
        mod = torch.nn.RNN(m.n_in, m.n_hidden, num_layers=L, nonlinearity=m.layers[0].activation.name)
    else:
        mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[m.cell](m.n_in, m.n_hidden, num_layers=L)
    mod = mod.double().eval()
    with torch.no_grad():
        for i, layer in enumerate(m.layers):
            p = layer.params()
            if m.cell == "elman":
                src = {"weight_ih": p["W_hx"], "weight_hh": p["W_hh"], "bias_ih": p["b_h"],
                       "bias_hh": np.zeros(m.n_hidden)}
            else:
                src = p
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(mod, f"{k}_l{i}").copy_(torch.tensor(np.asarray(src[k], np.float64)))
    return mod


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["standard", "relu", "lstm", "gru"])
@pytest.mark.parametrize("batched", [False, True])
def test_forward_matches_torch(kind, batched):
    torch = torch_or_skip()
    m = stack(kind, 3)
    x, h0, c0 = data(4, batched=batched, L=3)
    mod = _torch_module(torch, m)
    lstm = m.cell == "lstm"
    hx = (torch.tensor(h0), torch.tensor(c0)) if lstm else torch.tensor(h0)
    with torch.no_grad():
        out, hn = mod(torch.tensor(x), hx)
    tr = m.forward(x, h0=h0, c0=c0 if lstm else None)
    np.testing.assert_allclose(tr.h[1:], out.numpy(), rtol=0, atol=1e-12)
    h_n = hn[0] if lstm else hn
    np.testing.assert_allclose(np.stack([t.h[-1] for t in tr.layers]), h_n.numpy(), rtol=0, atol=1e-12)
    if lstm:
        np.testing.assert_allclose(np.stack([t.c[-1] for t in tr.layers]), hn[1].numpy(), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- gradients

GRAD_KINDS = [*KINDS, "learned"]
KINDS_ALL = {**KINDS, "learned": ("elman", {"scheme": "gaussian", "alpha": 0.4, "learn_alpha": True})}


def stack_any(kind, L=2, **kw):
    if kind in KINDS:
        return stack(kind, L, **kw)
    cell, opts = KINDS_ALL[kind]
    return StackedRNN.init(N_IN, N, N_OUT, cell=cell, n_layers=L, seed=0, **opts)


def targets(rng, loss, batched):
    lead = (T, B) if batched else (T,)
    if loss == "xent":
        return rng.integers(0, N_OUT, size=lead)
    return rng.normal(size=(*lead, N_OUT))


def central_params(m, E):
    """Central differences of ``E(model)`` for every parameter of ``m``."""
    out = {}
    for key, v in m.params().items():
        g = np.zeros(v.shape)
        for i in np.ndindex(v.shape):
            p, q = np.array(v, dtype=np.float64), np.array(v, dtype=np.float64)
            p[i] += 1e-6
            q[i] -= 1e-6
            g[i] = (E(m.replace(**{key: p})) - E(m.replace(**{key: q}))) / 2e-6
        out[key] = g
    return out


def close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, float(np.max(np.abs(b)))), np.max(np.abs(a - b))


# (kind, L, batched, loss, mask): every kind at L = 1, 2, 3, batched and not, both losses, a mask
GRAD_CASES = [
    (kind, L, (L + j) % 2 == 0, ("xent", "mse")[(L + j) % 2], L == 2)
    for j, kind in enumerate(GRAD_KINDS) for L in (1, 2, 3)
]


@pytest.mark.parametrize(("kind", "L", "batched", "loss", "masked"), GRAD_CASES)
def test_gradients_match_central_differences(kind, L, batched, loss, masked):
    m = stack_any(kind, L)
    x, h0, c0 = data(6, batched=batched, L=L)
    c0 = c0 if m.cell == "lstm" else None
    rng = np.random.default_rng(7)
    y = targets(rng, loss, batched)
    mask = rng.uniform(0, 1, size=(T, B) if batched else T) * (rng.uniform(size=(T, B) if batched else T) > 0.3) \
        if masked else None
    E, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0, c0=c0)
    assert isinstance(g, StackedGrads)
    assert E == m.loss(x, y, loss=loss, mask=mask, h0=h0, c0=c0)
    fd = central_params(m, lambda mm: mm.loss(x, y, loss=loss, mask=mask, h0=h0, c0=c0))
    assert list(g.params()) == list(m.params())
    for key, v in g.params().items():
        close(v, fd[key], 1e-7)
    # flow[0] is the gradient at every layer's h0 (and c0)
    S = m.state_size // L
    for i in range(L):
        def E_h(v, i=i):
            h = h0.copy()
            h[i] = v
            return m.loss(x, y, loss=loss, mask=mask, h0=h, c0=c0)
        fd_h = np.zeros(h0[i].shape)
        for j in np.ndindex(h0[i].shape):
            p, q = h0[i].copy(), h0[i].copy()
            p[j] += 1e-6
            q[j] -= 1e-6
            fd_h[j] = (E_h(p) - E_h(q)) / 2e-6
        close(g.flow[0][..., i * S:i * S + N], fd_h, 1e-7)
        if c0 is not None:
            def E_c(v, i=i):
                c = c0.copy()
                c[i] = v
                return m.loss(x, y, loss=loss, mask=mask, h0=h0, c0=c)
            fd_c = np.zeros(c0[i].shape)
            for j in np.ndindex(c0[i].shape):
                p, q = c0[i].copy(), c0[i].copy()
                p[j] += 1e-6
                q[j] -= 1e-6
                fd_c[j] = (E_c(p) - E_c(q)) / 2e-6
            close(g.flow[0][..., i * S + N:(i + 1) * S], fd_c, 1e-7)


@pytest.mark.parametrize("kind", ["standard", "lstm", "gru"])
@pytest.mark.parametrize("k", [1, 3, T])
def test_flow_is_the_gradient_at_the_whole_state_of_every_step(kind, k):
    """flow[k] = ∂E/∂s_k with the state's coordinates independent: perturb s_k,
    run the stack on from step k (h0, c0 = the perturbed s_k), and add the
    loss of step k, which reads the top layer's h_k (squared error)."""
    L = 3
    m = stack(kind, L)
    x, h0, c0 = data(8, L=L)
    lstm = m.cell == "lstm"
    rng = np.random.default_rng(9)
    y = targets(rng, "mse", False)
    _, g = m.value_and_grad(x, y, loss="mse", h0=h0, c0=c0 if lstm else None)
    s_k = m.forward(x, h0=h0, c0=c0 if lstm else None).state[k]
    per = m.state_size // L

    def E(s):
        parts = s.reshape(L, per)
        hk, ck = parts[:, :N], (parts[:, N:] if lstm else None)
        top = m.W_yh @ hk[-1] + m.b_y
        e = 0.5 * float(np.sum((top - y[k - 1]) ** 2)) if k >= 1 else 0.0
        if k < T:
            e += m.loss(x[k:], y[k:], loss="mse", h0=hk, c0=ck)
        return e

    fd = np.zeros(m.state_size)
    for j in range(m.state_size):
        p, q = s_k.copy(), s_k.copy()
        p[j] += 1e-6
        q[j] -= 1e-6
        fd[j] = (E(p) - E(q)) / 2e-6
    close(g.flow[k], fd, 1e-7)


@pytest.mark.parametrize("kind", ["standard", "pascanu", "leaky", "learned", "lstm", "gru"])
@pytest.mark.parametrize("batched", [False, True])
def test_one_layer_is_the_plain_cell(kind, batched):
    """L = 1: the stack's loss, gradients and flow are the cell's own
    value_and_grad with the same readout (an LSTM's c-part of the state flow
    is ∂E/∂c_k holding h_k fixed: σ(f_{k+1}) ⊙ the cell's flow_c[k+1])."""
    m = stack_any(kind, 1)
    layer = m.layers[0]
    cell = layer.replace(W_yh=m.W_yh, b_y=m.b_y)
    x, h0, c0 = data(10, batched=batched, L=1)
    lstm = m.cell == "lstm"
    rng = np.random.default_rng(11)
    y = targets(rng, "xent", batched)
    kw = {"c0": c0[0]} if lstm else {}
    E1, g1 = cell.value_and_grad(x, y, h0=h0[0], **kw)
    E, g = m.value_and_grad(x, y, h0=h0, c0=c0 if lstm else None)
    assert E == E1
    for key, v in g1.params().items():
        got = g.params()[key if key in ("W_yh", "b_y") else f"{key}_l0"]
        np.testing.assert_allclose(got, v, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g.flow[..., :N], g1.flow, rtol=1e-13, atol=1e-15)
    if lstm:
        tr = cell.forward(x, h0=h0[0], c0=c0[0])
        f = 1.0 / (1.0 + np.exp(-tr.pre[..., N:2 * N]))
        np.testing.assert_allclose(g.flow[:-1, ..., N:], f * g1.flow_c[1:], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(g.flow[0, ..., N:], g1.flow_c[0], rtol=1e-13, atol=1e-15)
        assert not g.flow[-1, ..., N:].any()


def test_value_and_grad_extremes():
    """T = 1, B = 1, float32 against float64, NaN refused, a bad truncate refused."""
    m = stack("lstm", 2)
    x, h0, c0 = data(12, L=2)
    rng = np.random.default_rng(13)
    y = targets(rng, "xent", False)
    E, g = m.value_and_grad(x[:1], y[:1], h0=h0, c0=c0)
    assert E == m.loss(x[:1], y[:1], h0=h0, c0=c0) > 0
    fd = central_params(m, lambda mm: mm.loss(x[:1], y[:1], h0=h0, c0=c0))
    for key, v in g.params().items():
        close(v, fd[key], 1e-7)
    Eb, gb = m.value_and_grad(x[:, None], y[:, None], h0=h0[:, None], c0=c0[:, None])
    E0, g0 = m.value_and_grad(x, y, h0=h0, c0=c0)
    assert Eb == pytest.approx(E0, rel=1e-14)
    for key, v in g0.params().items():
        np.testing.assert_allclose(gb.params()[key], v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb.flow[:, 0], g0.flow, rtol=1e-12, atol=1e-15)
    m32 = m.replace(**{k: v.astype(np.float32) for k, v in m.params().items()})
    E32, g32 = m32.value_and_grad(x.astype(np.float32), y, h0=h0.astype(np.float32), c0=c0.astype(np.float32))
    assert E32 == pytest.approx(E0, rel=1e-5)
    for key, v in g0.params().items():
        assert g32.params()[key].dtype == np.float32
        close(g32.params()[key], v, 1e-4)
    with pytest.raises(ValueError, match=r"`x` must be finite"):
        m.value_and_grad(np.full((T, N_IN), np.nan), y)
    with pytest.raises(ValueError, match=r"`truncate` must be >= 1, got 0"):  # truncation: test_stacked_truncation.py
        m.value_and_grad(x, y, truncate=0)
    with pytest.raises(ValueError, match=r"`y` must have shape \(5,\) for loss='xent'"):
        m.value_and_grad(x, y[:-1])
    with pytest.raises(ValueError, match=r"`h0` must have shape \(L, n\) = \(2, 4\)"):
        m.value_and_grad(x, y, h0=h0[:1])


@pytest.mark.oracle
@pytest.mark.parametrize(("kind", "loss"), [("standard", "mse"), ("relu", "xent"), ("lstm", "xent"),
                                            ("lstm", "mse"), ("gru", "xent"), ("gru", "mse")])
@pytest.mark.parametrize("batched", [False, True])
def test_gradients_match_torch(kind, loss, batched):
    torch = torch_or_skip()
    L = 3 if kind in ("lstm", "gru") else 2
    m = stack(kind, L)
    x, h0, c0 = data(14, batched=batched, L=L)
    lstm = m.cell == "lstm"
    rng = np.random.default_rng(15)
    y = targets(rng, loss, batched)
    mod = _torch_module(torch, m)
    W = torch.tensor(np.asarray(m.W_yh), requires_grad=True)
    b = torch.tensor(np.asarray(m.b_y), requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    tc0 = torch.tensor(c0, requires_grad=True)
    out, _ = mod(torch.tensor(x), (th0, tc0) if lstm else th0)
    z = out @ W.T + b
    if loss == "mse":
        E_t = 0.5 * ((z - torch.tensor(y)) ** 2).sum()
    else:
        E_t = torch.nn.functional.cross_entropy(z.reshape(-1, N_OUT), torch.tensor(y).reshape(-1), reduction="sum")
    E_t.backward()
    E, g = m.value_and_grad(x, y, loss=loss, h0=h0, c0=c0 if lstm else None)
    assert E == pytest.approx(float(E_t.detach()), rel=1e-12)
    gp = g.params()

    def rel(a, t):
        t = t.detach().numpy()
        assert np.max(np.abs(np.asarray(a) - t)) <= 1e-12 * np.max(np.abs(t)), (a, t)

    rel(gp["W_yh"], W.grad)
    rel(gp["b_y"], b.grad)
    for i in range(L):
        if m.cell == "elman":
            rel(gp[f"W_hx_l{i}"], getattr(mod, f"weight_ih_l{i}").grad)
            rel(gp[f"W_hh_l{i}"], getattr(mod, f"weight_hh_l{i}").grad)
            rel(gp[f"b_h_l{i}"], getattr(mod, f"bias_ih_l{i}").grad)
        else:
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                rel(gp[f"{k}_l{i}"], getattr(mod, f"{k}_l{i}").grad)
        S = m.state_size // L
        rel(g.flow[0][..., i * S:i * S + N], th0.grad[i])
        if lstm:
            rel(g.flow[0][..., i * S + N:(i + 1) * S], tc0.grad[i])


@pytest.mark.parametrize("kind", ["standard", "lstm", "gru"])
def test_subnormal_inputs_and_initial_states_act_as_zeros(kind):
    """Inputs and initial states of 5e-324 change nothing measurable: the
    gradients equal those at exact zeros to rounding and stay finite."""
    m = stack(kind, 2)
    y = targets(np.random.default_rng(16), "mse", True)
    tiny = np.full((T, B, N_IN), 5e-324)
    s0 = np.full((2, B, N), 5e-324)
    kw = {"c0": s0} if m.cell == "lstm" else {}
    E, g = m.value_and_grad(tiny, y, loss="mse", h0=s0, **kw)
    E0, g0 = m.value_and_grad(np.zeros_like(tiny), y, loss="mse")
    assert E == pytest.approx(E0, rel=1e-15)
    for key, v in g0.params().items():
        np.testing.assert_allclose(g.params()[key], v, rtol=1e-13, atol=1e-300)
    assert np.all(np.isfinite(g.flow))
