"""Stacked generators: ``GeneratorRNN(cell=..., layers=[...])`` / ``GeneratorRNN.init(..., n_layers=L)``.

The model is a :class:`rnntheory.StackedRNN` of ``L`` Elman (standard form),
LSTM or GRU layers whose top readout ``z_t = W_yh h^{L−1}_t + b_y`` gives
``o_t = s(z_t)`` (softmax for "xent", identity for "mse"), fed back into the
**bottom** layer's input ``[x_t; o^fb_t]``; layer ``l ≥ 1`` reads
``h^{l−1}_t``. ``o^fb_1`` is the start value, ``o^fb_t`` (t ≥ 2) the target
``y_{t−1}`` (teacher forcing), the own output ``o_{t−1}`` (free running) or
either by a seeded coin (scheduled sampling).

Oracles, none of which runs the generator's kernels: ``StackedRNN`` on the
constant inputs ``[x_t; y_{t−1}]`` (the teacher-forcing identity), the loop
reference ``naive_stack.stack_generator_loss`` written from the equations
(differentiated by central finite differences in float64), and PyTorch
autograd of a two-layer loop of ``torch.nn.RNNCell`` / ``LSTMCell`` /
``GRUCell`` with feedback.
"""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from naive_stack import stack_generator_loss
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN
from rnntheory._oracles import central_gradient
from rnntheory.cells.generator import GeneratorRNN, StackedGeneratorGrads
from rnntheory.training import apply_updates

CELLS = ("elman", "lstm", "gru")


def make(cell, seed, *, L=2, n_in=2, n=4, m=3, scale=0.8, dtype=np.float64, acts=None):
    """A stacked generator with nonzero biases and weights large enough for real curvature."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(L):
        k = n_in + m if i == 0 else n
        if cell == "elman":
            layers.append(ElmanRNN(
                rng.normal(0.0, scale, (n, n)).astype(dtype), rng.normal(0.0, scale, (n, k)).astype(dtype),
                rng.normal(0.0, 0.3, n).astype(dtype), activation=(acts or ["tanh"] * L)[i],
            ))
        else:
            G = 4 if cell == "lstm" else 3
            layers.append((LSTM if cell == "lstm" else GRU)(
                rng.normal(0.0, scale, (G * n, k)).astype(dtype), rng.normal(0.0, scale, (G * n, n)).astype(dtype),
                rng.normal(0.0, 0.3, G * n).astype(dtype), rng.normal(0.0, 0.3, G * n).astype(dtype),
            ))
    return GeneratorRNN(cell=cell, layers=layers, W_yh=rng.normal(0.0, 1.0, (m, n)).astype(dtype),
                        b_y=rng.normal(0.0, 0.3, m).astype(dtype))


def data(seed, loss, *, T=6, n_in=2, m=3, B=None):
    rng = np.random.default_rng(seed + 1000)
    lead = (T,) if B is None else (T, B)
    x = rng.normal(0.0, 1.0, (*lead, n_in))
    y = rng.integers(0, m, lead) if loss == "xent" else rng.normal(0.0, 1.0, (*lead, m))
    return x, y


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def same(g1, g2):
    p1, p2 = g1.params(), g2.params()
    return p1.keys() == p2.keys() and all(np.array_equal(p1[k], p2[k]) for k in p1)


# ------------------------------------------------------------------ 1. the teacher-forcing identity
@given(
    cell=st.sampled_from(CELLS),
    loss=st.sampled_from(["xent", "mse"]),
    T=st.integers(1, 6),
    B=st.integers(1, 3),
    L=st.integers(2, 3),
    seed=st.integers(0, 2**16),
    with_state=st.booleans(),
)
def test_teacher_forcing_identity_property(cell, loss, T, B, L, seed, with_state):
    """Teacher forcing of a stacked generator *is* the StackedRNN on the constant
    inputs ``[x_t; y_{t−1}]`` (``y_0`` the start value): the loss and every
    parameter gradient and the whole state's flow are equal, bit for bit, to
    ``StackedRNN(layers, W_yh, b_y).value_and_grad`` on those inputs; and
    ``∂E/∂o^fb_t`` is that stack's input derivative at the fed columns
    (central finite differences of its loss, 1e-6)."""
    model = make(cell, seed, L=L)
    x, y = data(seed, loss, T=T, B=B)
    rng = np.random.default_rng(seed)
    h0 = rng.uniform(-0.9, 0.9, (L, B, 4)) if with_state else None
    c0 = rng.normal(0, 1, (L, B, 4)) if with_state and cell == "lstm" else None
    start = rng.uniform(0, 1, (B, 3)) if with_state else None
    E, g = model.value_and_grad(x, y, loss=loss, mode="teacher", h0=h0, c0=c0, start=start)
    assert isinstance(g, StackedGeneratorGrads)
    m = 3
    tail = np.eye(m)[y[:-1]] if loss == "xent" else y[:-1]
    first = np.zeros((1, B, m)) if start is None else start[None]
    fed = np.concatenate([first, tail], axis=0)
    stack = StackedRNN(model.layers, model.W_yh, model.b_y)
    u = np.concatenate([x, fed], axis=2)
    E_s, g_s = stack.value_and_grad(u, y, loss=loss, h0=h0, c0=c0)
    assert E == E_s
    assert same(g, g_s)
    assert np.array_equal(g.flow, g_s.flow)
    fd = central_gradient(lambda q: stack.loss(np.concatenate([x, q["f"]], 2), y, loss=loss, h0=h0, c0=c0),
                          {"f": fed}, 1e-6)["f"]
    assert np.allclose(g.feedback, fd, rtol=1e-6, atol=1e-8 * max(1.0, abs(E)))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_scheduled_p0_is_teacher_and_p1_is_free_exactly(cell, loss):
    """``p = 0`` feeds no own output (teacher forcing) and ``p = 1`` every one
    (free running): loss, gradients, flows and feedback derivatives equal bit
    for bit, whatever the seed; and ``0 < p < 1`` differs from both."""
    model = make(cell, 11, L=3)
    x, y = data(12, loss, T=7, B=2)
    E_t, g_t = model.value_and_grad(x, y, loss=loss, mode="teacher")
    E_f, g_f = model.value_and_grad(x, y, loss=loss, mode="free")
    for seed in (0, 5):
        E0, g0 = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=0.0, seed=seed)
        E1, g1 = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=1.0, seed=seed)
        assert E0 == E_t and same(g0, g_t) and np.array_equal(g0.flow, g_t.flow)
        assert np.array_equal(g0.feedback, g_t.feedback)
        assert E1 == E_f and same(g1, g_f) and np.array_equal(g1.flow, g_f.flow)
        assert np.array_equal(g1.feedback, g_f.feedback)
    E_h, _ = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=0.5, seed=2)
    assert E_h not in (E_t, E_f)


def test_scheduled_coins_follow_the_seeding_rule():
    """The coins are ``default_rng(seed).random((T−1, B)) < p`` at steps 2..T, as
    for one layer; the same seed gives the same pass."""
    model = make("gru", 13)
    x, y = data(14, "xent", T=8, B=3)
    tr = model.forward(x, y, mode="scheduled", p=0.4, seed=9)
    want = np.random.default_rng(9).random((7, 3)) < 0.4
    assert not tr.own[0].any() and np.array_equal(tr.own[1:], want)
    assert np.array_equal(tr.fed[1:][want], tr.o[:-1][want])
    E1, _ = model.value_and_grad(x, y, mode="scheduled", p=0.4, seed=9)
    E2, _ = model.value_and_grad(x, y, mode="scheduled", p=0.4, seed=9)
    assert E1 == E2


# ------------------------------------------------------------------ 2. finite differences of the loop reference
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("mode", ["free", "scheduled", "teacher"])
def test_gradient_matches_finite_differences_of_the_loop_reference(cell, loss, mode):
    """The loss equals the NumPy loop reference (1e-12) and every parameter
    gradient of every layer, the whole state's flow at ``s_0`` (``∂E/∂h0`` of
    every layer, and ``∂E/∂c0`` for the LSTM) and ``∂E/∂start`` equal its
    central finite differences (1e-7 relative), with initial states, a start
    value and a mask; in free running and scheduled sampling the gradient
    follows the feedback ``o_{t−1} → layer 0 at t`` back through every layer."""
    L, n, m = 3, 4, 3
    acts = ["tanh", "sigmoid", "tanh"] if cell == "elman" else None
    model = make(cell, 31, L=L, acts=acts)
    x, y = data(32, loss, T=6)
    rng = np.random.default_rng(33)
    h0 = rng.uniform(-0.8, 0.8, (L, n))
    c0 = rng.normal(0, 1, (L, n)) if cell == "lstm" else None
    start = rng.uniform(0, 1, m)
    mask = rng.uniform(0.2, 2.0, 6)
    p = 0.5 if mode == "scheduled" else None
    kw = dict(loss=loss, mode=mode, p=p, seed=3, h0=h0, c0=c0, start=start)
    E, g = model.value_and_grad(x, y, mask=mask, **kw)
    own = model.forward(x, y, **kw).own
    assert (mode == "teacher") == (not own.any())
    if mode == "scheduled":
        assert own[1:].any() and not own[1:].all()

    def ref(P, h0=h0, c0=c0, start=start):
        return stack_generator_loss(cell, P, x, y, loss, own, L=L, n_in=2, h0=h0, c0=c0, start=start, mask=mask,
                                    acts=acts)

    P = {k: np.asarray(v, float) for k, v in model.params().items()}
    assert abs(E - ref(P)) <= 1e-12 * abs(E)
    fd = central_gradient(ref, P, 1e-6)
    for k in P:
        assert rel_err(g.params()[k], fd[k]) < 1e-7, k
    S = 2 * n if cell == "lstm" else n
    fd_h = central_gradient(lambda q: ref(P, h0=q["h"]), {"h": h0}, 1e-6)["h"]
    for i in range(L):
        assert rel_err(g.flow[0, i * S:i * S + n], fd_h[i]) < 1e-7, i
        assert rel_err(g.layers[i].flow[0], fd_h[i]) < 1e-7, i
    if cell == "lstm":
        fd_c = central_gradient(lambda q: ref(P, c0=q["c"]), {"c": c0}, 1e-6)["c"]
        for i in range(L):
            assert rel_err(g.flow[0, i * S + n:(i + 1) * S], fd_c[i]) < 1e-7, i
    fd_s = central_gradient(lambda q: ref(P, start=q["s"]), {"s": start}, 1e-6)["s"]
    assert rel_err(g.feedback[0], fd_s) < 1e-7


def test_elman_layers_of_every_activation_match_the_loop_reference():
    """Elman layers may differ in activation (ReLU, identity, sigmoid, tanh):
    the free-running loss equals the loop reference (1e-12) and every gradient
    its central finite differences (1e-7)."""
    acts = ["relu", "identity", "sigmoid", "tanh"]
    model = make("elman", 35, L=4, acts=acts, scale=0.5)
    x, y = data(36, "mse", T=5)
    E, g = model.value_and_grad(x, y, loss="mse", mode="free")
    own = model.forward(x, y, loss="mse", mode="free").own

    def ref(P):
        return stack_generator_loss("elman", P, x, y, "mse", own, L=4, n_in=2, acts=acts)

    P = {k: np.asarray(v, float) for k, v in model.params().items()}
    assert abs(E - ref(P)) <= 1e-12 * abs(E)
    fd = central_gradient(ref, P, 1e-6)
    for k in P:
        assert rel_err(g.params()[k], fd[k]) < 1e-7, k


@pytest.mark.parametrize("cell", CELLS)
def test_batched_free_running_is_the_sum_of_single_sequences(cell):
    """Sequences never interact: the batched free-running loss and gradients are
    the sums over the sequences run one at a time (1e-12), flows sequence by sequence."""
    model = make(cell, 41)
    x, y = data(42, "mse", T=5, B=3)
    E, g = model.value_and_grad(x, y, loss="mse", mode="free")
    parts = [model.value_and_grad(x[:, b], y[:, b], loss="mse", mode="free") for b in range(3)]
    assert abs(E - sum(e for e, _ in parts)) <= 1e-12 * abs(E)
    for k, v in g.params().items():
        assert rel_err(v, sum(gb.params()[k] for _, gb in parts)) < 1e-12, k
    for b, (_, gb) in enumerate(parts):
        assert rel_err(g.flow[:, b], gb.flow) < 1e-12
        assert rel_err(g.feedback[:, b], gb.feedback) < 1e-12


# ------------------------------------------------------------------ 3. PyTorch
@pytest.mark.oracle
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("mode", ["free", "scheduled", "teacher"])
def test_matches_torch_autograd_of_a_two_layer_loop_with_feedback(cell, loss, mode):
    """Loss and every gradient against PyTorch autograd (float64) of a loop of
    two ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` layers whose top
    output (softmax probabilities for "xent", the linear output for "mse") is
    fed back into the bottom layer where the coins chose it and the target
    elsewhere: 1e-10 relative."""
    torch = torch_or_skip()
    model = make(cell, 51)
    T, B, n_in, n, m = 7, 2, 2, 4, 3
    x, y = data(52, loss, T=T, B=B)
    p = 0.5 if mode == "scheduled" else None
    E, g = model.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=4)
    own = model.forward(x, y, loss=loss, mode=mode, p=p, seed=4).own
    P = model.params()
    tcs = []
    for i in range(2):
        k = n_in + m if i == 0 else n
        if cell == "elman":
            tc = torch.nn.RNNCell(k, n, nonlinearity="tanh").double()
            src = {"weight_ih": P[f"W_hx_l{i}"], "weight_hh": P[f"W_hh_l{i}"], "bias_ih": P[f"b_h_l{i}"],
                   "bias_hh": np.zeros(n)}
        else:
            tc = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(k, n).double()
            src = {w: P[f"{w}_l{i}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        with torch.no_grad():
            for w, v in src.items():
                getattr(tc, w).copy_(torch.from_numpy(np.array(v)))
        tcs.append(tc)
    V = torch.tensor(np.array(model.W_yh), requires_grad=True)
    c_ = torch.tensor(np.array(model.b_y), requires_grad=True)
    xt = torch.from_numpy(x)
    hs = [torch.zeros(B, n, dtype=torch.float64) for _ in range(2)]
    cs = [torch.zeros(B, n, dtype=torch.float64) for _ in range(2)]
    tgt = torch.from_numpy(y)
    teach = torch.nn.functional.one_hot(tgt, m).double() if loss == "xent" else tgt
    fb_own = fb_tgt = torch.zeros(B, m, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        sel = torch.from_numpy(own[t])[:, None]
        u = torch.cat([xt[t], torch.where(sel, fb_own, fb_tgt)], dim=1)
        for i, tc in enumerate(tcs):
            if cell == "lstm":
                hs[i], cs[i] = tc(u, (hs[i], cs[i]))
            else:
                hs[i] = tc(u, hs[i])
            u = hs[i]
        z = u @ V.T + c_
        if loss == "xent":
            total = total + torch.nn.functional.cross_entropy(z, tgt[t], reduction="sum")
            fb_own = torch.softmax(z, dim=1)
        else:
            total = total + 0.5 * ((z - tgt[t]) ** 2).sum()
            fb_own = z
        fb_tgt = teach[t]
    total.backward()
    assert abs(E - total.item()) <= 1e-12 * abs(E)
    got = g.params()
    for i, tc in enumerate(tcs):
        if cell == "elman":
            pairs = [("W_hx", "weight_ih"), ("W_hh", "weight_hh"), ("b_h", "bias_ih")]
        else:
            pairs = [(w, w) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        for ours, theirs in pairs:
            assert rel_err(got[f"{ours}_l{i}"], getattr(tc, theirs).grad.numpy()) < 1e-10, (ours, i)
    assert rel_err(got["W_yh"], V.grad.numpy()) < 1e-10
    assert rel_err(got["b_y"], c_.grad.numpy()) < 1e-10


# ------------------------------------------------------------------ 4. construction, one layer, extremes
def test_one_layer_generators_are_unchanged():
    """``n_layers=1`` (the default) is the one-layer generator: the same draw,
    the same class of gradients, bit for bit."""
    for cell in CELLS:
        a = GeneratorRNN.init(2, 4, 3, cell=cell, seed=5)
        b = GeneratorRNN.init(2, 4, 3, cell=cell, seed=5, n_layers=1)
        assert a.n_layers == b.n_layers == 1
        assert all(np.array_equal(a.params()[k], b.params()[k]) for k in a.params())


@pytest.mark.parametrize("cell", CELLS)
def test_init_draws_the_stack_of_stacked_rnn(cell):
    """``init(..., n_layers=L)`` is ``StackedRNN.init`` of ``n_in + n_out`` inputs
    and an ``n_out`` readout (same seed: the same arrays); replace, pickling and
    generate keep the model."""
    model = GeneratorRNN.init(2, 5, 3, cell=cell, n_layers=3, seed=7)
    st_ = StackedRNN.init(5, 5, 3, cell=cell, n_layers=3, seed=7)
    assert model.n_layers == 3 and model.n_in == 2 and model.n_out == 3 and model.n_hidden == 5
    assert model.state_size == (30 if cell == "lstm" else 15)
    assert all(np.array_equal(model.params()[k], st_.params()[k]) for k in st_.params())
    assert "n_layers=3" in repr(model)
    again = pickle.loads(pickle.dumps(model))
    x = np.zeros((4, 2))
    assert np.array_equal(again.generate(4).o, model.generate(4).o)
    assert np.array_equal(model.generate(4, x).o, model.forward(x, mode="free").o)
    W = model.params()["b_y"] + 1.0
    moved = model.replace(b_y=W)
    assert np.array_equal(moved.b_y, W) and moved.n_layers == 3
    tr = model.generate(3, h0=np.zeros((3, 2, 5)))
    assert tr.o.shape == (3, 2, 3) and tr.s.shape[:2] == (4, 2)
    with pytest.raises(ValueError, match="read-only"):
        model.params()["W_yh"][0, 0] = 1.0


@pytest.mark.parametrize("cell", CELLS)
def test_trace_state_is_the_stacks_state_under_teacher_forcing(cell):
    """The trace's whole state ``s`` and top-layer ``h`` under teacher forcing
    are those of StackedRNN.forward on ``[x_t; y_{t−1}]`` (to rounding: the
    generator's forward runs the feedback kernel), and ``fed`` is that input."""
    model = make(cell, 61)
    x, y = data(62, "xent", T=5, B=2)
    tr = model.forward(x, y, mode="teacher")
    ref = StackedRNN(model.layers, model.W_yh, model.b_y).forward(np.concatenate([x, tr.fed], 2))
    assert np.array_equal(tr.fed[1:], np.eye(3)[y[:-1]])
    assert rel_err(tr.s, ref.state) < 1e-13 and rel_err(tr.y, ref.y) < 1e-13


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["free", "teacher"])
def test_float32_computes_in_float32_to_its_accuracy(cell, mode):
    """A float32 stack computes in float32 (gradients and flows float32) and
    agrees with the same weights in float64 to float32's accuracy (1e-5)."""
    m32 = GeneratorRNN.init(2, 4, 3, cell=cell, n_layers=2, seed=0, dtype=np.float32)
    m64 = m32.replace(**{k: v.astype(np.float64) for k, v in m32.params().items()})
    x, y = data(81, "xent", T=6, B=2)
    E32, g32 = m32.value_and_grad(x.astype(np.float32), y, mode=mode)
    E64, g64 = m64.value_and_grad(x, y, mode=mode)
    assert g32.flow.dtype == np.float32 and g32.feedback.dtype == np.float32
    assert abs(E32 - E64) <= 1e-5 * E64
    for k, v in g64.params().items():
        assert g32.params()[k].dtype == np.float32
        assert rel_err(g32.params()[k], v) < 1e-5, k


@pytest.mark.parametrize("cell", CELLS)
def test_one_step_every_mode_is_the_same(cell):
    """With T = 1 only the start value is fed: the three modes give one loss and one gradient."""
    model = make(cell, 91)
    x, y = data(92, "mse", T=1, B=2)
    E_t, g_t = model.value_and_grad(x, y, loss="mse", mode="teacher")
    E_f, g_f = model.value_and_grad(x, y, loss="mse", mode="free")
    E_s, _ = model.value_and_grad(x, y, loss="mse", mode="scheduled", p=0.5, seed=0)
    assert E_t == E_f == E_s
    for k, v in g_t.params().items():
        assert rel_err(g_f.params()[k], v) < 1e-13, k


def _bad_cases():
    lstm = [LSTM.init(5, 4, None, seed=0), LSTM.init(4, 4, None, seed=1)]
    W_yh = np.zeros((3, 4))
    x = np.zeros((3, 2))
    model = GeneratorRNN(cell="lstm", layers=lstm, W_yh=W_yh)
    return [
        ("pascanu", lambda: GeneratorRNN(layers=[ElmanRNN.init(5, 4, None, form="pascanu"),
                                                 ElmanRNN.init(4, 4, None)], W_yh=W_yh),
         ValueError, r"`layers\[0\]` must be an Elman layer in the standard form"),
        ("leaky", lambda: GeneratorRNN(layers=[ElmanRNN.init(5, 4, None), ElmanRNN.init(4, 4, None, alpha=0.5)],
                                       W_yh=W_yh),
         ValueError, r"`layers\[1\]` must be an Elman layer .* leak"),
        ("cell", lambda: GeneratorRNN(cell="gru", layers=lstm, W_yh=W_yh), ValueError,
         r"`layers` must be GRU layers for cell='gru', got LSTM"),
        ("no readout", lambda: GeneratorRNN(cell="lstm", layers=lstm), ValueError, r"`W_yh` is required"),
        ("narrow", lambda: GeneratorRNN(cell="lstm", layers=[LSTM.init(3, 4, None), lstm[1]], W_yh=W_yh),
         ValueError, r"`layers\[0\]` must read n_in \+ 3 inputs"),
        ("mixed", lambda: GeneratorRNN(cell="lstm", layers=lstm, W_yh=W_yh, weight_hh=np.eye(4)), ValueError,
         r"`weight_hh` is a parameter of a one-layer generator"),
        ("not layers", lambda: GeneratorRNN(cell="lstm", layers=lstm[0], W_yh=W_yh), TypeError,
         r"`layers` must be a list or tuple"),
        ("n_layers", lambda: GeneratorRNN.init(2, 4, 3, n_layers=0), ValueError, r"`n_layers`"),
        ("scale", lambda: GeneratorRNN.init(2, 4, 3, n_layers=2, scale=0.5), ValueError,
         r"`scale` applies to a one-layer Elman generator"),
        ("h0", lambda: model.forward(x, h0=np.zeros((3, 4))), ValueError, r"`h0` must have shape \(L, n\)"),
        ("c0 batch", lambda: model.forward(np.zeros((3, 2, 2)), c0=np.zeros((2, 4))), ValueError,
         r"`c0` must have shape \(L, B, n\)"),
        ("c0 gru", lambda: GeneratorRNN.init(2, 4, 3, cell="gru", n_layers=2).forward(x, c0=np.zeros((2, 4))),
         ValueError, r"`c0` applies to cell='lstm' only"),
        ("bad key", lambda: model.replace(W_hh=np.eye(4)), ValueError, r"`W_hh` is not a parameter of StackedRNN"),
        ("nan x", lambda: model.forward(np.full((3, 2), np.nan)), ValueError, r"`x`"),
        ("nan h0", lambda: model.forward(x, h0=np.full((2, 4), np.inf)), ValueError, r"`h0`"),
        ("y class", lambda: model.value_and_grad(x, np.array([0, 5, 1]), mode="teacher"), ValueError,
         r"`y`"),
        ("p", lambda: model.value_and_grad(x, np.array([0, 1, 1]), mode="scheduled", p=1.5), ValueError, r"`p`"),
    ]


@pytest.mark.parametrize(("name", "call", "exc", "match"), _bad_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_name_the_argument(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("cell", CELLS)
def test_extreme_inputs(cell):
    """Inputs of 1e308 whose pre-activations would pass the float range are
    refused naming `x` (layer 0) or the start value; subnormal inputs and a
    long sequence (T = 3000) run to finite values; a huge input matrix of layer 0
    weight is refused naming it."""
    model = make(cell, 71)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match=r"layer 0.*`x`"):
        model.value_and_grad(np.full((4, 2), 1e308), y, mode="free")
    with pytest.raises(ValueError, match=r"layer 0.*`start`"):
        model.forward(np.zeros((4, 2)), mode="free", start=np.full(3, 1e308))
    E, g = model.value_and_grad(np.full((4, 2), 5e-324), y, mode="free")
    assert np.isfinite(E) and all(np.all(np.isfinite(v)) for v in g.params().values())
    # the loop reference agrees at subnormal inputs
    own = model.forward(np.full((4, 2), 5e-324), mode="free").own
    P = {k: np.asarray(v, float) for k, v in model.params().items()}
    assert abs(E - stack_generator_loss(cell, P, np.full((4, 2), 5e-324), y, "xent", own, L=2, n_in=2)) <= 1e-12 * E
    rng = np.random.default_rng(0)
    T = 3000
    E, g = model.value_and_grad(rng.normal(size=(T, 2)), rng.integers(0, 3, T), mode="free")
    assert np.isfinite(E) and np.all(np.isfinite(g.flow))
    big = model.replace(**{("W_hx_l0" if cell == "elman" else "weight_ih_l0"):
                           np.full_like(model.params()["W_hx_l0" if cell == "elman" else "weight_ih_l0"], 1e308)})
    with pytest.raises(ValueError, match=r"W_hx|weight_ih"):
        big.forward(np.ones((3, 2)), mode="free")


# ------------------------------------------------------------------ 5. training
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["free", "scheduled", "teacher"])
def test_training_lowers_the_loss(cell, mode):
    """A short gradient-descent run of a two-layer generator on a repeating
    sequence (fixed coins for scheduled sampling): the loss decreases at every
    step (a small step on one smooth function, the coins held fixed)."""
    model = GeneratorRNN.init(1, 8, 3, cell=cell, n_layers=2, seed=3)
    T, B = 9, 4
    y = np.tile(np.array([0, 1, 2]), (B, T // 3)).T
    x = np.zeros((T, B, 1))
    kw = dict(p=0.5, seed=1) if mode == "scheduled" else {}
    losses = []
    for _ in range(10):
        E, g = model.value_and_grad(x, y, mode=mode, **kw)
        losses.append(E)
        model = model.replace(**apply_updates(model.params(), {k: -v / (T * B) for k, v in g.params().items()}))
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < (1 - 1e-3) * losses[0]
