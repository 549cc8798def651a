"""Generators of the gated cells: LSTM and GRU with output feedback.

The model (``GeneratorRNN(cell="lstm" | "gru")``) is the gated cell of
``rnntheory.LSTM`` / ``rnntheory.GRU`` (PyTorch's LSTMCell / GRUCell) reading
``[x_t; o^fb_t]`` through one input matrix ``weight_ih (G·n, n_in + m)``, with
a readout ``z_t = W_yh h_t + b_y`` and ``o_t = s(z_t)`` (softmax for "xent",
identity for "mse"). ``o^fb_1`` is the start value, ``o^fb_t`` (t ≥ 2) the
target ``y_{t−1}`` (teacher forcing), the own output ``o_{t−1}`` (free running)
or either by a seeded coin (scheduled sampling).

Oracles, none of which runs the generator's kernels: ``rnntheory.LSTM`` /
``rnntheory.GRU`` on constant inputs (the teacher-forcing identity), the loop
reference ``naive.gated_generator_loss`` written from the equations
(differentiated by central finite differences in float64), and PyTorch
autograd of a ``torch.nn.LSTMCell`` / ``GRUCell`` loop with feedback.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from naive import gated_generator_loss
from oracle import torch_or_skip

from rnntheory import GRU, LSTM
from rnntheory._oracles import central_gradient
from rnntheory.cells.generator import GatedGeneratorGrads, GeneratorRNN

KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "W_yh", "b_y")
CELLS = ("lstm", "gru")


def make(cell, seed, *, n_in=2, n=4, m=3, scale=0.8, dtype=np.float64):
    """A generator with nonzero biases and weights large enough for real curvature."""
    rng = np.random.default_rng(seed)
    G = 4 if cell == "lstm" else 3
    return GeneratorRNN(
        cell=cell,
        weight_ih=rng.normal(0.0, scale, (G * n, n_in + m)).astype(dtype),
        weight_hh=rng.normal(0.0, scale, (G * n, n)).astype(dtype),
        bias_ih=rng.normal(0.0, 0.3, G * n).astype(dtype),
        bias_hh=rng.normal(0.0, 0.3, G * n).astype(dtype),
        W_yh=rng.normal(0.0, 1.0, (m, n)).astype(dtype),
        b_y=rng.normal(0.0, 0.3, m).astype(dtype),
    )


def data(seed, loss, *, T=6, n_in=2, m=3, B=None):
    rng = np.random.default_rng(seed + 1000)
    lead = (T,) if B is None else (T, B)
    x = rng.normal(0.0, 1.0, (*lead, n_in))
    y = rng.integers(0, m, lead) if loss == "xent" else rng.normal(0.0, 1.0, (*lead, m))
    return x, y


def fed_targets(y, loss, m, start=None):
    """``[o_0; y_1; …; y_{T−1}]``: what teacher forcing feeds (one-hot for "xent")."""
    y = np.asarray(y)
    tail = np.eye(m)[y[:-1]] if loss == "xent" else y[:-1]
    first = np.zeros((1, *tail.shape[1:])) if start is None else np.asarray(start, float)[None]
    if y.shape[0] == 1:
        return first
    return np.concatenate([first, tail], axis=0)


def cell_of(model):
    """The plain gated cell with the generator's parameters (readout included)."""
    return (LSTM if model.cell == "lstm" else GRU)(**model.params())


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ------------------------------------------------------------------ 1. the teacher-forcing identity
@given(
    cell=st.sampled_from(CELLS),
    loss=st.sampled_from(("xent", "mse")),
    T=st.integers(1, 7),
    B=st.one_of(st.none(), st.integers(1, 3)),
    n_in=st.integers(1, 3),
    n=st.integers(1, 5),
    m=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    with_state=st.booleans(),
)
def test_teacher_forcing_identity_property(cell, loss, T, B, n_in, n, m, seed, with_state):
    """The teacher-forcing identity: under teacher forcing the value fed into
    step t is the data ``y_{t−1}`` (``o_0`` at t = 1), whose Jacobian with
    respect to every parameter is zero, so the generator's loss and gradient
    equal those of the same gated cell run on the constant inputs
    ``[x_t; y_{t−1}]``: ``dE/dθ = ∂E/∂θ|_{o^fb fixed}``. Checked against
    ``LSTM``/``GRU.value_and_grad`` on those inputs, with the same parameters,
    initial states and mask: the generator runs that cell's own kernels, so
    the two agree exactly (every bit), flows included."""
    model = make(cell, seed, n_in=n_in, n=n, m=m)
    x, y = data(seed, loss, T=T, n_in=n_in, m=m, B=B)
    rng = np.random.default_rng(seed + 7)
    lead = () if B is None else (B,)
    kw = {}
    if with_state:
        kw["h0"] = rng.uniform(-1, 1, (*lead, n))
        if cell == "lstm":
            kw["c0"] = rng.normal(0, 1, (*lead, n))
    mask = rng.uniform(0, 2, (T, *lead))
    start = rng.uniform(0, 1, (*lead, m))
    E, g = model.value_and_grad(x, y, loss=loss, mode="teacher", mask=mask, start=start, **kw)
    assert isinstance(g, GatedGeneratorGrads)
    xf = np.concatenate([x, fed_targets(y, loss, m, start)], axis=-1)
    E_c, g_c = cell_of(model).value_and_grad(xf, y, loss=loss, mask=mask, **kw)
    assert E == E_c
    assert list(g.params()) == list(g_c.params()) == list(KEYS)
    for k in KEYS:
        assert np.array_equal(g.params()[k], g_c.params()[k]), k
    assert np.array_equal(g.flow, g_c.flow)
    if cell == "lstm":
        assert np.array_equal(g.flow_c, g_c.flow_c)
    else:
        assert g.flow_c is None


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_teacher_feedback_is_the_input_derivative_of_the_cell(cell, loss):
    """``feedback[t-1] = ∂E/∂o^fb_t`` holding the fed value as an input: under
    teacher forcing it is the derivative of the plain cell's loss with respect
    to the feedback columns of its input ``[x_t; y_{t−1}]`` (central finite
    differences of that loss, 1e-7), nonzero, yet it reaches no parameter."""
    model = make(cell, 3)
    x, y = data(4, loss, B=2)
    _, g = model.value_and_grad(x, y, loss=loss, mode="teacher")
    xf = np.concatenate([x, fed_targets(y, loss, 3)], axis=-1)
    core = cell_of(model)
    eps = 1e-6
    fd = np.empty_like(g.feedback)
    for idx in np.ndindex(*fd.shape):
        t, b, j = idx
        up, dn = xf.copy(), xf.copy()
        up[t, b, 2 + j] += eps
        dn[t, b, 2 + j] -= eps
        fd[idx] = (core.value_and_grad(up, y, loss=loss)[0] - core.value_and_grad(dn, y, loss=loss)[0]) / (2 * eps)
    assert np.abs(g.feedback - fd).max() < 1e-7
    assert np.abs(g.feedback).max() > 1e-3


# ------------------------------------------------------------------ 2. scheduled sampling's end points
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_scheduled_p0_is_teacher_and_p1_is_free_exactly(cell, loss):
    """Scheduled sampling with ``p = 0`` never feeds the own output (every
    coin ``u < 0`` is false) and with ``p = 1`` always does (``u < 1`` for
    ``u ∈ [0, 1)``): the loss, every gradient, the flows and the trace are
    exactly those of teacher forcing and of free running."""
    model = make(cell, 11)
    x, y = data(12, loss, T=7, B=3)
    E_tf, g_tf = model.value_and_grad(x, y, loss=loss, mode="teacher")
    E_fr, g_fr = model.value_and_grad(x, y, loss=loss, mode="free")
    E0, g0 = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=0.0, seed=5)
    E1, g1 = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=1.0, seed=5)
    assert E0 == E_tf and E1 == E_fr and E_tf != E_fr
    for k in KEYS:
        assert np.array_equal(g0.params()[k], g_tf.params()[k]), k
        assert np.array_equal(g1.params()[k], g_fr.params()[k]), k
    assert np.array_equal(g0.flow, g_tf.flow) and np.array_equal(g1.flow, g_fr.flow)
    assert np.array_equal(g0.feedback, g_tf.feedback) and np.array_equal(g1.feedback, g_fr.feedback)
    tr1 = model.forward(x, y, loss=loss, mode="scheduled", p=1.0, seed=5)
    tr_fr = model.forward(x, loss=loss, mode="free")
    assert np.array_equal(tr1.h, tr_fr.h) and np.array_equal(tr1.fed, tr_fr.fed)
    assert np.array_equal(tr_fr.fed[1:], tr_fr.o[:-1])


@pytest.mark.parametrize("cell", CELLS)
def test_scheduled_coins_follow_the_seeding_rule(cell):
    """The coins are ``default_rng(seed).random((T−1, B)) < p``, the rule of the
    Elman generator: the same ``own`` for the same seed, and the fed value is
    the own output exactly where chosen and the one-hot target elsewhere."""
    model = make(cell, 21)
    x, y = data(22, "xent", T=8, B=4)
    tr = model.forward(x, y, mode="scheduled", p=0.4, seed=9)
    want = np.zeros((8, 4), bool)
    want[1:] = np.random.default_rng(9).random((7, 4)) < 0.4
    assert np.array_equal(tr.own, want)
    own = tr.own[1:]
    assert np.array_equal(tr.fed[1:][own], tr.o[:-1][own])
    assert np.array_equal(tr.fed[1:][~own], np.eye(3)[y[:-1]][~own])


# ------------------------------------------------------------------ 3. against the loop reference
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("mode", ["free", "scheduled", "teacher"])
def test_gradient_matches_finite_differences_of_the_loop_reference(cell, loss, mode):
    """The loss equals the NumPy loop reference (1e-12) and every parameter
    gradient, ``∂E/∂h_0`` (and ``∂E/∂c_0``) equal its central finite
    differences (1e-7 relative), with an initial state, a start value and a
    mask; in free running and scheduled sampling the gradient follows the
    feedback path ``o_{t−1} → gates_t`` back into ``h_{t−1}``."""
    model = make(cell, 31)
    x, y = data(32, loss, T=6)
    rng = np.random.default_rng(33)
    h0 = rng.uniform(-0.8, 0.8, 4)
    c0 = rng.normal(0, 1, 4) if cell == "lstm" else None
    start = rng.uniform(0, 1, 3)
    mask = rng.uniform(0.2, 2.0, 6)
    p = 0.5 if mode == "scheduled" else None
    kw = dict(loss=loss, mode=mode, p=p, seed=3, h0=h0, c0=c0, start=start)
    E, g = model.value_and_grad(x, y, mask=mask, **kw)
    own = model.forward(x, y, **kw).own
    assert (mode == "teacher") == (not own.any())

    def ref(P, h0=h0, c0=c0):
        return gated_generator_loss(cell, P, x, y, loss, own, h0=h0, c0=c0, start=start, mask=mask)

    P = {k: np.asarray(v, float) for k, v in model.params().items()}
    assert abs(E - ref(P)) <= 1e-12 * abs(E)
    fd = central_gradient(ref, P, 1e-6, keys=KEYS)
    for k in KEYS:
        assert rel_err(g.params()[k], fd[k]) < 1e-7, k
    fd_h = central_gradient(lambda q: ref(P, h0=q["h"]), {"h": h0}, 1e-6)["h"]
    assert rel_err(g.flow[0], fd_h) < 1e-7
    if cell == "lstm":
        fd_c = central_gradient(lambda q: ref(P, c0=q["c"]), {"c": c0}, 1e-6)["c"]
        assert rel_err(g.flow_c[0], fd_c) < 1e-7


@pytest.mark.parametrize("cell", CELLS)
def test_batched_free_running_is_the_sum_of_single_sequences(cell):
    """Sequences never interact: the batched free-running loss and gradients
    are the sums over the sequences run one at a time (1e-12), and the flows
    are theirs, sequence by sequence."""
    model = make(cell, 41)
    x, y = data(42, "mse", T=5, B=3)
    E, g = model.value_and_grad(x, y, loss="mse", mode="free")
    parts = [model.value_and_grad(x[:, b], y[:, b], loss="mse", mode="free") for b in range(3)]
    assert abs(E - sum(e for e, _ in parts)) <= 1e-12 * abs(E)
    for k in KEYS:
        assert rel_err(g.params()[k], sum(gb.params()[k] for _, gb in parts)) < 1e-12, k
    for b, (_, gb) in enumerate(parts):
        assert rel_err(g.flow[:, b], gb.flow) < 1e-12


# ------------------------------------------------------------------ 4. PyTorch
@pytest.mark.oracle
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("mode", ["free", "scheduled", "teacher"])
def test_matches_torch_autograd_of_a_cell_loop_with_feedback(cell, loss, mode):
    """Loss and every gradient against PyTorch autograd (float64) of a
    ``torch.nn.LSTMCell`` / ``GRUCell`` loop that feeds back its own output
    (softmax probabilities for "xent", the linear output for "mse") where the
    coins chose it and the target elsewhere: 1e-10 relative."""
    torch = torch_or_skip()
    model = make(cell, 51)
    T, B, n_in, n, m = 7, 2, 2, 4, 3
    x, y = data(52, loss, T=T, B=B)
    p = 0.5 if mode == "scheduled" else None
    E, g = model.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=4)
    own = model.forward(x, y, loss=loss, mode=mode, p=p, seed=4).own
    Cell = torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell
    tc = Cell(n_in + m, n).double()
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(tc, k).copy_(torch.from_numpy(np.array(model.params()[k])))
    V = torch.tensor(np.array(model.W_yh), requires_grad=True)
    c_ = torch.tensor(np.array(model.b_y), requires_grad=True)
    xt = torch.from_numpy(x)
    h = torch.zeros(B, n, dtype=torch.float64)
    c = torch.zeros(B, n, dtype=torch.float64)
    tgt = torch.from_numpy(y)
    teach = torch.nn.functional.one_hot(tgt, m).double() if loss == "xent" else tgt
    fb_own = fb_tgt = torch.zeros(B, m, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        sel = torch.from_numpy(own[t])[:, None]
        fb = torch.where(sel, fb_own, fb_tgt)
        u = torch.cat([xt[t], fb], dim=1)
        if cell == "lstm":
            h, c = tc(u, (h, c))
        else:
            h = tc(u, h)
        z = h @ V.T + c_
        if loss == "xent":
            total = total + torch.nn.functional.cross_entropy(z, tgt[t], reduction="sum")
            fb_own = torch.softmax(z, dim=1)
        else:
            total = total + 0.5 * ((z - tgt[t]) ** 2).sum()
            fb_own = z
        fb_tgt = teach[t]
    total.backward()
    assert abs(E - total.item()) <= 1e-12 * abs(E)
    want = {k: getattr(tc, k).grad.numpy() for k in KEYS[:4]}
    want["W_yh"], want["b_y"] = V.grad.numpy(), c_.grad.numpy()
    for k in KEYS:
        assert rel_err(g.params()[k], want[k]) < 1e-10, k


# ------------------------------------------------------------------ 5. dtypes and extremes
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["free", "teacher"])
def test_float32_computes_in_float32_to_its_accuracy(cell, mode):
    """A float32 model computes in float32 (every gradient and flow float32)
    and agrees with the float64 model holding the same values to float32
    accuracy (1e-4 relative)."""
    m64 = make(cell, 61)
    m32 = make(cell, 61, dtype=np.float32)
    x, y = data(62, "mse", T=6, B=2)
    E64, g64 = m64.value_and_grad(x, y, loss="mse", mode=mode)
    E32, g32 = m32.value_and_grad(x.astype(np.float32), y.astype(np.float32), loss="mse", mode=mode)
    assert abs(E32 - E64) <= 1e-5 * abs(E64)
    for k in KEYS:
        assert g32.params()[k].dtype == np.float32
        assert rel_err(g32.params()[k], g64.params()[k].astype(np.float32).astype(float)) < 1e-4, k
    assert g32.flow.dtype == np.float32


@pytest.mark.parametrize("cell", CELLS)
def test_one_step_every_mode_is_the_same(cell):
    """With T = 1 only the start value is fed, so all three modes coincide."""
    model = make(cell, 71)
    x, y = data(72, "xent", T=1)
    E_t, g_t = model.value_and_grad(x, y, mode="teacher")
    E_f, g_f = model.value_and_grad(x, y, mode="free")
    assert E_t == E_f and all(np.array_equal(g_t.params()[k], g_f.params()[k]) for k in KEYS)


@pytest.mark.parametrize("cell", CELLS)
def test_extreme_inputs(cell):
    """Subnormal inputs (5e-324) give the loss of zero inputs to rounding and
    finite gradients; a long free run (T = 3000) stays finite and its loss is
    the loop reference's (1e-10); inputs of 1e300 saturate the gates (a finite
    loss and gradient, the gate pre-activations within the range), while
    1e308 (whose pre-activations could pass float64's range), NaN or inf are
    refused naming `x`."""
    model = make(cell, 81)
    T = 5
    y = np.arange(T) % 3
    E0, _ = model.value_and_grad(np.zeros((T, 2)), y, mode="free")
    E1, g1 = model.value_and_grad(np.full((T, 2), 5e-324), y, mode="free")
    assert abs(E1 - E0) <= 1e-14 * abs(E0)
    assert all(np.isfinite(v).all() for v in g1.params().values())
    TL = 3000
    yl = np.arange(TL) % 3
    xl = np.random.default_rng(0).normal(size=(TL, 2))
    EL, gL = model.value_and_grad(xl, yl, mode="free")
    own = np.r_[False, np.ones(TL - 1, bool)]
    P = {k: np.asarray(v, float) for k, v in model.params().items()}
    assert abs(EL - gated_generator_loss(cell, P, xl, yl, "xent", own)) <= 1e-10 * EL
    assert all(np.isfinite(v).all() for v in gL.params().values())
    E_big, g_big = model.value_and_grad(np.full((T, 2), 1e300), y, mode="free")
    assert np.isfinite(E_big) and all(np.isfinite(v).all() for v in g_big.params().values())
    for bad in (1e308, np.nan, np.inf):
        with pytest.raises(ValueError, match="`x`"):
            model.value_and_grad(np.full((T, 2), bad), y, mode="free")


@pytest.mark.parametrize("cell", CELLS)
def test_pre_activation_reach_names_the_argument(cell):
    """Values with which a gate pre-activation could pass float64's range are
    refused before the pass, naming what carries them: a huge start value
    (`start`), huge mse targets fed back by teacher forcing (`y`), a huge
    initial state (`h0`)."""
    model = make(cell, 91)
    x, _ = data(92, "mse", T=4)
    with pytest.raises(ValueError, match="`start`"):
        model.forward(x, mode="free", loss="mse", start=np.full(3, 1e308))
    with pytest.raises(ValueError, match="`y`"):
        model.value_and_grad(x, np.full((4, 3), 1e308), mode="teacher", loss="mse")
    with pytest.raises(ValueError, match="`h0`"):
        model.forward(x, mode="free", loss="mse", h0=np.full(4, 1e308))


# ------------------------------------------------------------------ 6. bad input
def _bad_cases():
    lstm = make("lstm", 1)
    gru = make("gru", 2)
    x, y = data(3, "xent", T=5)
    p = dict(lstm.params())
    return [
        ("cell", lambda: GeneratorRNN.init(1, 3, 2, cell="rnn")),
        ("cell", lambda: GeneratorRNN(cell="transformer", **p)),
        ("activation", lambda: GeneratorRNN.init(1, 3, 2, cell="lstm", activation="relu")),
        ("scale", lambda: GeneratorRNN.init(1, 3, 2, cell="gru", scale=0.5)),
        ("scheme", lambda: GeneratorRNN.init(1, 3, 2, scheme="orthogonal")),
        ("forget_bias", lambda: GeneratorRNN.init(1, 3, 2, forget_bias=1.0)),
        ("forget_bias", lambda: GeneratorRNN.init(1, 3, 2, cell="gru", forget_bias=1.0)),
        ("n_in", lambda: GeneratorRNN.init(0, 3, 2, cell="lstm")),
        ("weight_ih", lambda: lstm.replace(weight_ih=np.zeros((16, 3)))),
        ("weight_ih", lambda: GeneratorRNN(cell="lstm", weight_hh=p["weight_hh"], W_yh=p["W_yh"])),
        ("W_yh", lambda: GeneratorRNN(cell="gru", weight_ih=np.zeros((12, 5)), weight_hh=np.zeros((12, 4)))),
        ("weight_hh", lambda: lstm.replace(weight_hh=np.zeros((12, 4)))),
        ("W_hh", lambda: GeneratorRNN(np.zeros((4, 4)), cell="lstm", **p)),
        ("weight_ih", lambda: GeneratorRNN(np.zeros((4, 4)), np.zeros((4, 1)), np.zeros((4, 3)), np.zeros(4),
                                           np.zeros((3, 4)), np.zeros(3), weight_ih=p["weight_ih"])),
        ("W_hh", lambda: lstm.replace(W_hh=np.zeros((4, 4)))),
        ("activation", lambda: lstm.replace(activation="tanh")),
        ("c0", lambda: gru.value_and_grad(x, y, mode="free", c0=np.zeros(4))),
        ("c0", lambda: GeneratorRNN.init(2, 4, 3).forward(x, mode="free", c0=np.zeros(4))),
        ("c0", lambda: lstm.value_and_grad(x, y, mode="free", c0=np.zeros(5))),
        ("h0", lambda: gru.generate(5, h0=np.zeros(3))),
        ("mode", lambda: lstm.value_and_grad(x, y, mode="greedy")),
        ("p", lambda: gru.value_and_grad(x, y, mode="scheduled")),
        ("p", lambda: gru.value_and_grad(x, y, mode="scheduled", p=1.5)),
        ("y", lambda: lstm.value_and_grad(x, np.where(np.arange(5) == 1, 7, y), mode="teacher")),
        ("y", lambda: gru.forward(x, mode="teacher")),
        ("x", lambda: lstm.value_and_grad(x[:, :1], y, mode="free")),
        ("x", lambda: gru.value_and_grad(np.zeros((0, 2)), y[:0], mode="free")),
        ("start", lambda: lstm.value_and_grad(x, y, mode="free", start=np.zeros(4))),
        ("mask", lambda: gru.value_and_grad(x, y, mode="free", mask=-np.ones(5))),
    ]


@pytest.mark.parametrize(("name", "call"), _bad_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_name_the_argument(name, call):
    """Every invalid argument raises ValueError naming it."""
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()


def test_mixed_dtypes_are_a_type_error():
    """Parameters of different float dtypes are refused with TypeError naming the array."""
    p = dict(make("lstm", 5).params())
    p["weight_ih"] = p["weight_ih"].astype(np.float32)
    with pytest.raises(TypeError, match="`weight_ih`"):
        GeneratorRNN(cell="lstm", **p)


@pytest.mark.parametrize("cell", CELLS)
def test_model_owns_its_parameters_and_replace_rebuilds(cell):
    """The gated generator holds read-only parameters (writing raises), its
    ``params()`` are the cell's layout over ``[x_t; o^fb_t]``, and ``replace``
    gives a new model whose teacher-forced loss is the plain cell's with the
    new weights."""
    model = GeneratorRNN.init(2, 4, 3, cell=cell, seed=0)
    G = 4 if cell == "lstm" else 3
    assert list(model.params()) == list(KEYS)
    assert model.weight_ih.shape == (G * 4, 5) and (model.n_in, model.n_hidden, model.n_out) == (2, 4, 3)
    with pytest.raises(ValueError):
        model.weight_hh[0, 0] = 1.0
    W = np.array(model.weight_hh) * 0.5
    new = model.replace(weight_hh=W)
    x, y = data(6, "xent")
    xf = np.concatenate([x, fed_targets(y, "xent", 3)], axis=-1)
    assert new.value_and_grad(x, y, mode="teacher")[0] == cell_of(new).value_and_grad(xf, y)[0]
    assert np.array_equal(model.weight_hh * 0.5, new.weight_hh)
    back = pickle.loads(pickle.dumps(new))
    assert back.cell == cell and all(np.array_equal(back.params()[k], new.params()[k]) for k in KEYS)
    assert back.value_and_grad(x, y, mode="free")[0] == new.value_and_grad(x, y, mode="free")[0]


@pytest.mark.parametrize("cell", CELLS)
def test_generate_is_free_running_on_zero_inputs(cell):
    """``generate(T)`` is ``forward(zeros, mode="free")``: the same states, its
    fed values are its own previous outputs; a batched initial state (``h0``,
    or ``c0`` alone for the LSTM) makes a batched run."""
    model = make(cell, 8)
    gen = model.generate(6)
    assert np.array_equal(gen.h, model.forward(np.zeros((6, 2)), mode="free").h)
    assert np.array_equal(gen.fed[1:], gen.o[:-1])
    init = {"c0": np.full((3, 4), 0.5)} if cell == "lstm" else {"h0": np.full((3, 4), 0.5)}
    tr = model.generate(6, **init)
    assert tr.h.shape == (7, 3, 4)
    one = model.generate(6, **{k: v[0] for k, v in init.items()})
    assert np.allclose(tr.h[:, 1], one.h, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------ 7. training
@pytest.mark.parametrize("cell", CELLS)
def test_teacher_forcing_trains_a_gated_generator_to_repeat_a_sequence(cell):
    """As for the Elman generator: plain gradient descent (Adam-free, lr 0.5,
    300 steps) on the teacher-forced loss of 0 1 2 3 0 1 … cuts the loss by a
    factor of over 50, and free-running generation from the trained model then
    reproduces the pattern (argmax of the fed-back probabilities) beyond the
    training length."""
    T = 16
    y = np.arange(T) % 4
    x = np.zeros((T, 1))
    model = GeneratorRNN.init(1, 16, 4, cell=cell, seed=0)
    E0, _ = model.value_and_grad(x, y, mode="teacher")
    for _ in range(300):
        _, g = model.value_and_grad(x, y, mode="teacher")
        gp = g.params()
        model = model.replace(**{k: v - 0.5 * gp[k] / T for k, v in model.params().items()})
    E1, _ = model.value_and_grad(x, y, mode="teacher")
    assert E1 < E0 / 50
    gen = model.generate(2 * T)
    assert np.array_equal(gen.o.argmax(axis=-1), np.arange(2 * T) % 4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["free", "scheduled"])
def test_free_running_and_scheduled_sampling_train_a_gated_generator(cell, mode):
    """Gradient descent through the fed-back outputs on the sequence
    0 1 2 3 0 1 …. The loss is smooth and the gradient is its derivative
    through the feedback, so a small enough step lowers it: in free running
    every one of 60 steps at lr 0.5/T lowers the loss (strictly, each step);
    with scheduled sampling (p = 0.5, coins drawn afresh each step) 60 such
    steps lower the loss on a held-out set of coins and the free-running loss."""
    T = 12
    y = np.arange(T) % 4
    x = np.zeros((T, 1))
    model = GeneratorRNN.init(1, 12, 4, cell=cell, seed=1)
    held_out = {"mode": "scheduled", "p": 0.5, "seed": 999}
    E0_free = model.value_and_grad(x, y, mode="free")[0]
    E0_held = model.value_and_grad(x, y, **held_out)[0]
    losses = []
    for step in range(60):
        kw = {"p": 0.5, "seed": step} if mode == "scheduled" else {}
        E, g = model.value_and_grad(x, y, mode=mode, **kw)
        losses.append(E)
        gp = g.params()
        model = model.replace(**{k: v - 0.5 * gp[k] / T for k, v in model.params().items()})
    E1_free = model.value_and_grad(x, y, mode="free")[0]
    if mode == "free":
        assert np.all(np.diff([*losses, E1_free]) < 0)
    else:
        assert model.value_and_grad(x, y, **held_out)[0] < E0_held
    assert E1_free < E0_free


def test_kernels_without_jit(tmp_path):
    """The gated generator kernels' Python bodies (``NUMBA_DISABLE_JIT=1``,
    bounds-checked by NumPy indexing) give the compiled kernels' loss and
    gradients (1e-12) for both cells, both losses and all three modes."""
    import json
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import json, sys
        import numba
        import numpy as np
        assert numba.config.DISABLE_JIT
        from rnntheory.cells.generator import GeneratorRNN
        out = {}
        for cell in ("lstm", "gru"):
            m = GeneratorRNN.init(2, 3, 4, cell=cell, seed=1)
            rng = np.random.default_rng(0)
            x = rng.normal(size=(5, 2, 2))
            for loss in ("xent", "mse"):
                y = rng.integers(0, 4, (5, 2)) if loss == "xent" else rng.normal(size=(5, 2, 4))
                np.save(sys.argv[1] + f"/y_{cell}_{loss}.npy", y)
                for mode in ("free", "teacher", "scheduled"):
                    p = 0.5 if mode == "scheduled" else None
                    E, g = m.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=2)
                    out[f"{cell}/{loss}/{mode}"] = [E] + [v.ravel().tolist() for v in g.params().values()]
        json.dump(out, open(sys.argv[1] + "/out.json", "w"))
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)
    got = json.loads((tmp_path / "out.json").read_text())
    for cell in CELLS:
        m = GeneratorRNN.init(2, 3, 4, cell=cell, seed=1)
        x = np.random.default_rng(0).normal(size=(5, 2, 2))
        for loss in ("xent", "mse"):
            y = np.load(tmp_path / f"y_{cell}_{loss}.npy")
            for mode in ("free", "teacher", "scheduled"):
                p = 0.5 if mode == "scheduled" else None
                E, g = m.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=2)
                ref = got[f"{cell}/{loss}/{mode}"]
                assert abs(E - ref[0]) <= 1e-12 * abs(E)
                for k, r in zip(KEYS, ref[1:], strict=True):
                    assert rel_err(g.params()[k].ravel(), r) < 1e-12, (cell, loss, mode, k)
