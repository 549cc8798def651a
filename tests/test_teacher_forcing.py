"""Teacher forcing, free running and scheduled sampling for generator RNNs (claim C23).

The model: ``a_t = W_hh h_{t−1} + W_hx x_t + W_hy o^fb_t + b_h``, ``h_t = f(a_t)``,
``z_t = W_yh h_t + b_y``, ``o_t = s(z_t)`` (softmax for "xent", identity for
"mse"); ``o^fb_1`` is the start value and ``o^fb_t`` (t ≥ 2) is the target
``y_{t−1}`` (teacher forcing) or the own output ``o_{t−1}`` (free running).

Oracles, none of which uses the code under test's kernels: a plain
``rnntheory.ElmanRNN`` (for the teacher-forcing guarantee), a loop reference
written here from the equations (differentiated by central finite differences
in float64), and PyTorch autograd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from oracle import torch_or_skip

from rnntheory import ElmanRNN
from rnntheory._oracles import central_gradient, central_jacobian
from rnntheory.cells.generator import GeneratorGrads, GeneratorRNN

PARAMS = ("W_hh", "W_hx", "W_hy", "b_h", "W_yh", "b_y")


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def make(seed, *, n_in=2, n=4, m=3, act="tanh"):
    """A model with nonzero biases and weights large enough for real curvature."""
    rng = np.random.default_rng(seed)
    return GeneratorRNN(
        rng.normal(0.0, 1.2 / np.sqrt(n), (n, n)),
        rng.normal(0.0, 1.0, (n, n_in)),
        rng.normal(0.0, 1.0, (n, m)),
        rng.normal(0.0, 0.3, n),
        rng.normal(0.0, 1.0, (m, n)),
        rng.normal(0.0, 0.3, m),
        activation=act,
    )


def data(seed, loss, *, T=6, n_in=2, m=3, B=None):
    rng = np.random.default_rng(seed + 1000)
    lead = (T,) if B is None else (T, B)
    x = rng.normal(0.0, 1.0, (*lead, n_in))
    y = rng.integers(0, m, lead) if loss == "xent" else rng.normal(0.0, 1.0, (*lead, m))
    return x, y


# --------------------------------------------------------------------- reference
def _f(act, a):
    if act == "tanh":
        return np.tanh(a)
    if act == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))
    if act == "identity":
        return a.copy()
    return np.where(a > 0, a, 0.0)


def ref_loss(P, x, y, *, loss, own, act="tanh", h0=None, start=None, mask=None, shift=None):
    """Loop reference for one sequence, written from the equations.

    ``own[t-1]`` says whether step t is fed the model's own output ``o_{t−1}``;
    otherwise it is fed the target ``y_{t−1}`` (one-hot for "xent"), and step 1
    the start value. ``shift[t-1]`` is added to the own output ``o_t`` after it
    is computed (a perturbation of the model's outputs; used only where fed).
    """
    W, U, V, b, C, c = (np.asarray(P[k], float) for k in PARAMS)
    T, m = x.shape[0], C.shape[0]
    h = np.zeros(W.shape[0]) if h0 is None else np.asarray(h0, float)
    prev_own = np.zeros(m) if start is None else np.asarray(start, float)
    prev_tgt = prev_own
    E = 0.0
    for t in range(T):
        fb = prev_own if own[t] else prev_tgt
        h = _f(act, W @ h + U @ x[t] + V @ fb + b)
        z = C @ h + c
        w = 1.0 if mask is None else float(mask[t])
        if loss == "xent":
            mx = z.max()
            E += w * (mx + np.log(np.sum(np.exp(z - mx))) - z[y[t]])
            o = np.exp(z - mx) / np.sum(np.exp(z - mx))
            prev_tgt = np.eye(m)[y[t]]
        else:
            E += w * 0.5 * float(np.sum((z - y[t]) ** 2))
            o = z
            prev_tgt = np.asarray(y[t], float)
        prev_own = o if shift is None else o + shift[t]
    return E


def fd_grads(fun, P, eps=1e-6):
    """Central finite differences of ``fun(P)`` with respect to every entry of ``P``."""
    return central_gradient(fun, P, eps, keys=PARAMS)


def own_flags(mode, T):
    return [False] + [mode == "free"] * (T - 1)


# ------------------------------------------------------------------ 1. guarantee
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
def test_teacher_forcing_equals_elman_with_constant_feedback_input(loss, batched, act):
    """Under teacher forcing the fed-back value ``o^fb_t`` is the target
    ``y_{t−1}``: a constant, ``∂o^fb_t/∂θ = 0``. So
    ``a_t = W_hh h_{t−1} + [W_hx, W_hy] [x_t; y_{t−1}] + b_h`` is a plain Elman
    network on the input ``[x_t; y_{t−1}]``, and the loss, every gradient (with
    ``∂E/∂[W_hx, W_hy]`` split into its blocks) and the flow ``∂E/∂h_k`` are
    those of ``ElmanRNN`` with that input (to 1e-12), here with a mask, an
    initial state and a start value."""
    model = make(1, act=act)
    B = 3 if batched else None
    x, y = data(2, loss, B=B)
    rng = np.random.default_rng(3)
    lead = x.shape[:-1]
    mask = rng.uniform(0.0, 2.0, lead)
    h0 = rng.normal(0.0, 0.5, (*lead[1:], 4))
    start = rng.normal(0.0, 0.5, (*lead[1:], 3))
    E, g = model.value_and_grad(
        x, y, loss=loss, mode="teacher", mask=mask, h0=h0, start=start
    )
    fb = np.empty((*lead, 3))
    fb[0] = start
    fb[1:] = np.eye(3)[y[:-1]] if loss == "xent" else y[:-1]
    elman = ElmanRNN(
        model.W_hh, np.hstack([model.W_hx, model.W_hy]), model.b_h, model.W_yh, model.b_y,
        activation=act,
    )
    E_ref, g_ref = elman.value_and_grad(
        np.concatenate([x, fb], axis=-1), y, loss=loss, mask=mask, h0=h0
    )
    assert abs(E - E_ref) <= 1e-12 * abs(E_ref)
    assert rel_err(g.W_hh, g_ref.W_hh) < 1e-12
    assert rel_err(g.W_hx, g_ref.W_hx[:, :2]) < 1e-12
    assert rel_err(g.W_hy, g_ref.W_hx[:, 2:]) < 1e-12
    assert rel_err(g.b_h, g_ref.b_h) < 1e-12
    assert rel_err(g.W_yh, g_ref.W_yh) < 1e-12
    assert rel_err(g.b_y, g_ref.b_y) < 1e-12
    assert rel_err(g.flow, g_ref.flow) < 1e-12


@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_teacher_gradient_has_no_path_through_own_outputs(loss):
    """Perturb the model's own outputs ``o_t ↦ o_t + s_t`` after they are formed.
    Under teacher forcing nothing reads them (the feedback is the target): the
    loss is bitwise unchanged for every ``s`` and every θ, so
    ``∂E/∂s_t = 0`` (finite differences, exactly) and the finite-difference
    parameter gradient of the perturbed reference still equals the model's
    teacher-forced gradient. In free running the same perturbation is fed into
    step t+1, and ``∂E/∂s_t`` equals ``grads.feedback[t] = W_hyᵀ δ_{t+1}``,
    nonzero: that is the path teacher forcing cuts."""
    model = make(4)
    x, y = data(5, loss)
    T = x.shape[0]
    P = model.params()
    shift = np.random.default_rng(6).normal(0.0, 0.3, (T, 3))
    teacher = own_flags("teacher", T)
    base = ref_loss(P, x, y, loss=loss, own=teacher)
    assert ref_loss(P, x, y, loss=loss, own=teacher, shift=shift) == base
    d_shift = central_jacobian(lambda s: ref_loss(P, x, y, loss=loss, own=teacher, shift=s), shift)
    assert np.all(d_shift == 0.0)
    _, g = model.value_and_grad(x, y, loss=loss, mode="teacher")
    fd = fd_grads(lambda Q: ref_loss(Q, x, y, loss=loss, own=teacher, shift=shift), P)
    for k in PARAMS:
        assert rel_err(getattr(g, k), fd[k]) < 1e-7, k
    assert np.abs(g.feedback[1:]).max() > 1e-3  # the input derivative exists; it reaches no θ

    free = own_flags("free", T)
    d_free = central_jacobian(  # at the unperturbed outputs (s = 0)
        lambda s: ref_loss(P, x, y, loss=loss, own=free, shift=s), np.zeros_like(shift)
    )
    _, gf = model.value_and_grad(x, y, loss=loss, mode="free")
    assert np.abs(d_free[:-1]).max() > 1e-3
    assert np.all(d_free[-1] == 0.0)  # o_T is fed nowhere
    assert rel_err(gf.feedback[1:], d_free[:-1]) < 1e-7


# ------------------------------------------------------------------ 2. free running
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_free_running_gradient_matches_finite_differences(loss, act):
    """Free running feeds ``o_{t−1} = s(W_yh h_{t−1} + b_y)`` into step t, so
    ``∂E/∂θ`` includes every path through the fed-back outputs. Each parameter
    gradient equals central finite differences (ε = 1e-6, float64) of the loop
    reference to 1e-7 relative; so does the flow at ``h_0`` (``∂E/∂h_0``) and
    at the start value's slot (``feedback[0] = ∂E/∂o_0``)."""
    model = make(7, act=act)
    x, y = data(8, loss)
    T = x.shape[0]
    rng = np.random.default_rng(9)
    h0, start = rng.normal(0.0, 0.5, 4), rng.normal(0.0, 0.5, 3)
    free = own_flags("free", T)
    E, g = model.value_and_grad(x, y, loss=loss, mode="free", h0=h0, start=start)
    P = model.params()
    assert abs(E - ref_loss(P, x, y, loss=loss, own=free, act=act, h0=h0, start=start)) < 1e-12 * E
    fd = fd_grads(
        lambda Q: ref_loss(Q, x, y, loss=loss, own=free, act=act, h0=h0, start=start), P
    )
    for k in PARAMS:
        assert rel_err(getattr(g, k), fd[k]) < 1e-7, k
    dh0 = central_jacobian(lambda v: ref_loss(P, x, y, loss=loss, own=free, act=act, h0=v, start=start), h0)
    assert rel_err(g.flow[0], dh0) < 1e-7
    ds = central_jacobian(lambda v: ref_loss(P, x, y, loss=loss, own=free, act=act, h0=h0, start=v), start)
    assert rel_err(g.feedback[0], ds) < 1e-7


def test_scheduled_gradient_matches_finite_differences_with_the_same_coins():
    """Scheduled sampling: with the coin flips fixed (``trace.own``), the loss is
    a smooth function of θ, and the gradient (through the own outputs where they
    were fed, not through the sampling choice) equals finite differences of the
    reference run with the same flips."""
    model = make(10)
    x, y = data(11, "xent", T=10)
    E, g = model.value_and_grad(x, y, loss="xent", mode="scheduled", p=0.5, seed=3)
    own = model.forward(x, y, loss="xent", mode="scheduled", p=0.5, seed=3).own
    assert 0 < own.sum() < len(own) - 1  # a real mix
    P = model.params()
    assert abs(E - ref_loss(P, x, y, loss="xent", own=own)) < 1e-12 * E
    fd = fd_grads(lambda Q: ref_loss(Q, x, y, loss="xent", own=own), P)
    for k in PARAMS:
        assert rel_err(getattr(g, k), fd[k]) < 1e-7, k


@pytest.mark.oracle
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("mode", ["free", "teacher", "scheduled"])
def test_gradients_match_torch_autograd(loss, mode):
    """The recurrence written in torch (float64, batched) and differentiated by
    autograd, with the same fed-back values (own output or target per step):
    the loss, every parameter gradient and ``∂E/∂h_0`` agree to 1e-10."""
    torch = torch_or_skip()
    model = make(12)
    T, B = 7, 3
    x, y = data(13, loss, T=T, B=B)
    h0 = np.random.default_rng(14).normal(0.0, 0.5, (B, 4))
    mask = np.random.default_rng(15).uniform(0.0, 1.0, (T, B))
    p = 0.5 if mode == "scheduled" else None
    E, g = model.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=0, h0=h0, mask=mask)
    own = model.forward(x, y, loss=loss, mode=mode, p=p, seed=0).own

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in model.params().items()}
    th0 = torch.tensor(h0, requires_grad=True)
    tx = torch.tensor(x)
    tm = torch.tensor(mask)
    h = th0
    o_own = torch.zeros(B, 3, dtype=torch.float64)
    o_tgt = torch.zeros(B, 3, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(T):
        sel = torch.tensor(own[t].astype(np.float64))[:, None]
        fb = sel * o_own + (1.0 - sel) * o_tgt  # the choice is a constant
        h = torch.tanh(h @ tp["W_hh"].T + tx[t] @ tp["W_hx"].T + fb @ tp["W_hy"].T + tp["b_h"])
        z = h @ tp["W_yh"].T + tp["b_y"]
        if loss == "xent":
            yt = torch.tensor(y[t])
            lt = torch.nn.functional.cross_entropy(z, yt, reduction="none")
            o_own = torch.softmax(z, dim=1)
            o_tgt = torch.nn.functional.one_hot(yt, 3).to(torch.float64)
        else:
            yt = torch.tensor(y[t])
            lt = 0.5 * ((z - yt) ** 2).sum(dim=1)
            o_own, o_tgt = z, yt
        total = total + (tm[t] * lt).sum()
    total.backward()
    assert abs(E - total.item()) <= 1e-12 * abs(total.item())
    for k in PARAMS:
        assert rel_err(getattr(g, k), tp[k].grad.numpy()) < 1e-10, k
    assert rel_err(g.flow[0], th0.grad.numpy()) < 1e-10


# ------------------------------------------------------------------ 3. modes
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_free_and_teacher_gradients_differ(loss):
    """On the same data, free running and teacher forcing differ in what is fed
    back (own outputs vs targets) and in the gradient path: their losses and
    every recurrent gradient differ (the feedback path matters)."""
    model = make(16)
    x, y = data(17, loss)
    E_tf, g_tf = model.value_and_grad(x, y, loss=loss, mode="teacher")
    E_fr, g_fr = model.value_and_grad(x, y, loss=loss, mode="free")
    assert abs(E_tf - E_fr) > 1e-3 * abs(E_tf)
    for k in ("W_hh", "W_hx", "W_hy", "b_h"):
        assert rel_err(getattr(g_fr, k), getattr(g_tf, k)) > 1e-2, k


@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("batched", [False, True])
def test_scheduled_sampling_endpoints_are_exact(loss, batched):
    """Scheduled sampling feeds the own output where ``u < p`` (u uniform on
    [0, 1)): never for ``p = 0`` (teacher forcing) and always for ``p = 1``
    (free running). Traces, losses and gradients are bitwise equal."""
    model = make(18)
    x, y = data(19, loss, B=4 if batched else None)
    for p, mode in ((0.0, "teacher"), (1.0, "free")):
        E_s, g_s = model.value_and_grad(x, y, loss=loss, mode="scheduled", p=p, seed=5)
        E_m, g_m = model.value_and_grad(x, y, loss=loss, mode=mode)
        assert E_s == E_m
        for k in (*PARAMS, "flow", "feedback"):
            assert np.array_equal(getattr(g_s, k), getattr(g_m, k)), (p, k)
        t_s = model.forward(x, y, loss=loss, mode="scheduled", p=p, seed=5)
        t_m = model.forward(x, y, loss=loss, mode=mode)
        for k in ("h", "y", "o", "fed", "own"):
            assert np.array_equal(getattr(t_s, k), getattr(t_m, k)), (p, k)


def test_traces_feed_what_each_mode_says():
    """``fed[0]`` is the start value; for t ≥ 2, ``fed[t-1]`` is ``onehot(y_{t−1})``
    under teacher forcing and ``o_{t−1} = softmax(z_{t−1})`` in free running;
    the hidden states follow ``h_t = tanh(W_hh h_{t−1} + W_hx x_t + W_hy fed_t + b_h)``."""
    model = make(20)
    x, y = data(21, "xent")
    start = np.array([0.2, -0.1, 0.4])
    tf = model.forward(x, y, mode="teacher", start=start)
    fr = model.forward(x, mode="free", start=start)
    assert np.array_equal(tf.fed[0], start) and np.array_equal(fr.fed[0], start)
    assert np.array_equal(tf.fed[1:], np.eye(3)[y[:-1]])
    assert np.array_equal(fr.fed[1:], fr.o[:-1])
    assert not tf.own.any() and fr.own[1:].all() and not fr.own[0]
    for tr in (tf, fr):
        e = np.exp(tr.y - tr.y.max(axis=-1, keepdims=True))
        assert np.allclose(tr.o, e / e.sum(axis=-1, keepdims=True), rtol=0, atol=1e-15)
        for t in range(1, x.shape[0] + 1):
            a = model.W_hh @ tr.h[t - 1] + model.W_hx @ x[t - 1] + model.W_hy @ tr.fed[t - 1] + model.b_h
            assert np.allclose(tr.h[t], np.tanh(a), rtol=0, atol=1e-14)


# ------------------------------------------------------------------ 4. generate, seeds, errors
def test_generate_is_free_running_on_zero_inputs():
    """``generate(T)`` is ``forward(zeros((T, n_in)), mode="free")``; with a
    batched ``h0 (B, n)`` it runs B sequences, each equal to its own
    single-sequence generation; with "mse" the linear output is fed back."""
    model = make(22)
    T = 9
    for loss in ("xent", "mse"):
        g = model.generate(T, loss=loss)
        f = model.forward(np.zeros((T, 2)), mode="free", loss=loss)
        for k in ("h", "y", "o", "fed", "own"):
            assert np.array_equal(getattr(g, k), getattr(f, k))
    assert np.array_equal(model.generate(T, loss="mse").fed[1:], model.generate(T, loss="mse").y[:-1])
    h0 = np.random.default_rng(23).normal(0.0, 0.5, (3, 4))
    gb = model.generate(T, h0=h0)
    assert gb.h.shape == (T + 1, 3, 4)
    for b in range(3):
        assert np.allclose(gb.h[:, b], model.generate(T, h0=h0[b]).h, rtol=0, atol=1e-15)
    xs = np.random.default_rng(24).normal(size=(T, 2))
    assert np.array_equal(model.generate(T, x=xs).h, model.forward(xs).h)


def test_scheduled_sampling_is_deterministic_with_a_seed():
    """The coin flips come from ``default_rng(seed)``: the same seed gives the
    same flips, trace and gradient; another seed other flips; over many steps
    and sequences the fraction of own outputs fed is close to ``p``."""
    model = make(25)
    x, y = data(26, "xent", T=40, B=50)
    kw = {"loss": "xent", "mode": "scheduled", "p": 0.3}
    a = model.forward(x, y, seed=7, **kw)
    b = model.forward(x, y, seed=7, **kw)
    c = model.forward(x, y, seed=8, **kw)
    assert np.array_equal(a.own, b.own) and np.array_equal(a.h, b.h)
    assert not np.array_equal(a.own, c.own)
    assert not a.own[0].any()
    assert abs(a.own[1:].mean() - 0.3) < 0.03  # 1950 draws: sd ≈ 0.010
    Ea, ga = model.value_and_grad(x, y, seed=7, **kw)
    Eb, gb = model.value_and_grad(x, y, seed=7, **kw)
    assert Ea == Eb and np.array_equal(ga.W_hh, gb.W_hh)


def _bad_cases():
    m = make(0)
    x, yx = data(0, "xent")
    _, ym = data(0, "mse")
    vg = m.value_and_grad
    return [
        ("mode", lambda: m.forward(x, mode="beam")),
        ("mode", lambda: vg(x, yx, mode="greedy")),
        ("loss", lambda: vg(x, yx, mode="teacher", loss="hinge")),
        ("p", lambda: vg(x, yx, mode="scheduled", p=1.5)),
        ("p", lambda: vg(x, yx, mode="scheduled", p=-0.1)),
        ("p", lambda: vg(x, yx, mode="scheduled")),
        ("p", lambda: vg(x, yx, mode="teacher", p=0.5)),
        ("y", lambda: m.forward(x, mode="teacher")),
        ("y", lambda: m.forward(x, mode="scheduled", p=0.5)),
        ("y", lambda: vg(x, None, mode="free")),
        ("y", lambda: vg(x, yx[:-1], mode="teacher")),
        ("y", lambda: vg(x, ym[:, :2], mode="teacher", loss="mse")),
        ("y", lambda: vg(x, np.where(np.arange(6) == 2, -1, yx), mode="teacher",
                         mask=np.arange(6) != 2)),
        ("x", lambda: vg(x[:, :1], yx, mode="teacher")),
        ("x", lambda: vg(np.zeros((0, 2)), yx[:0], mode="teacher")),
        ("h0", lambda: vg(x, yx, mode="free", h0=np.zeros(5))),
        ("start", lambda: vg(x, yx, mode="free", start=np.zeros(4))),
        ("mask", lambda: vg(x, yx, mode="free", mask=np.ones(5))),
        ("seed", lambda: vg(x, yx, mode="scheduled", p=0.5, seed=-1)),
        ("T", lambda: m.generate(0)),
        ("x", lambda: m.generate(4, x=np.zeros((5, 2)))),
        ("W_hy", lambda: m.replace(W_hy=np.zeros((4, 2)))),
        ("W_hx", lambda: m.replace(W_hx=np.zeros((4, 0)))),
        ("W_yh", lambda: m.replace(W_yh=np.zeros((3, 5)))),
        ("b_y", lambda: m.replace(b_y=np.zeros(2))),
        ("W_hh", lambda: m.replace(W_hh=np.zeros((4, 3)))),
        ("activation", lambda: m.replace(activation="softsign")),
        ("n_in", lambda: GeneratorRNN.init(0, 3, 2)),
    ]


@pytest.mark.parametrize(("name", "call"), _bad_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_name_the_argument(name, call):
    """Every invalid argument raises ValueError naming it."""
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()


# ------------------------------------------------------------------ 5. demo
def test_teacher_forcing_trains_a_generator_to_repeat_a_sequence():
    """200 SGD steps (learning rate 0.1) on the teacher-forced loss of the
    repeating sequence 0 1 2 3 0 1 2 3 … reduce the loss by a factor of over
    100; free-running generation from the trained model then reproduces the
    pattern (argmax of the fed-back probabilities) beyond the training length."""
    T = 16
    y = np.arange(T) % 4
    x = np.zeros((T, 1))
    model = GeneratorRNN.init(1, 16, 4, seed=0)
    E0, _ = model.value_and_grad(x, y, mode="teacher")
    for _ in range(200):
        _, g = model.value_and_grad(x, y, mode="teacher")
        gp = g.params()
        model = model.replace(**{k: v - 0.1 * gp[k] for k, v in model.params().items()})
    E1, _ = model.value_and_grad(x, y, mode="teacher")
    assert E1 < E0 / 100
    gen = model.generate(2 * T)
    assert np.array_equal(gen.o.argmax(axis=-1), np.arange(2 * T) % 4)


# ------------------------------------------------------------------ kernels without JIT
def test_kernels_without_jit(tmp_path: Path):
    """The kernels' Python bodies (``NUMBA_DISABLE_JIT=1``, bounds-checked by
    NumPy indexing) give the compiled kernels' loss and gradients (1e-12) on a
    small batched problem, for both losses and all three modes; a float32 copy
    of the model computes in float32 and agrees with float64 to float32 accuracy."""
    script = textwrap.dedent(
        """
        import json, sys
        import numba
        import numpy as np
        assert numba.config.DISABLE_JIT
        from rnntheory.cells.generator import GeneratorRNN
        m = GeneratorRNN.init(2, 3, 4, seed=1)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, 2, 2))
        out = {}
        for loss in ("xent", "mse"):
            y = rng.integers(0, 4, (5, 2)) if loss == "xent" else rng.normal(size=(5, 2, 4))
            np.save(sys.argv[1] + f"/y_{loss}.npy", y)
            for mode in ("free", "teacher", "scheduled"):
                p = 0.5 if mode == "scheduled" else None
                E, g = m.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=2)
                out[f"{loss}/{mode}"] = [E] + [g.params()[k].ravel().tolist() for k in
                    ("W_hh", "W_hx", "W_hy", "b_h", "W_yh", "b_y")] + [g.flow.ravel().tolist()]
        m32 = m.replace(**{k: v.astype(np.float32) for k, v in m.params().items()})
        y = np.load(sys.argv[1] + "/y_mse.npy")
        E32, g32 = m32.value_and_grad(x.astype(np.float32), y.astype(np.float32),
                                      loss="mse", mode="free")
        assert g32.W_hh.dtype == np.float32 and g32.flow.dtype == np.float32
        out["float32"] = [float(E32)] + [g32.params()[k].astype(float).ravel().tolist() for k in
            ("W_hh", "W_hx", "W_hy", "b_h", "W_yh", "b_y")]
        json.dump(out, open(sys.argv[1] + "/out.json", "w"))
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)
    got = json.loads((tmp_path / "out.json").read_text())
    m = GeneratorRNN.init(2, 3, 4, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 2, 2))
    for loss in ("xent", "mse"):
        y = np.load(tmp_path / f"y_{loss}.npy")
        for mode in ("free", "teacher", "scheduled"):
            p = 0.5 if mode == "scheduled" else None
            E, g = m.value_and_grad(x, y, loss=loss, mode=mode, p=p, seed=2)
            ref = got[f"{loss}/{mode}"]
            assert abs(E - ref[0]) <= 1e-12 * abs(E)
            for k, r in zip(PARAMS, ref[1:7], strict=True):
                assert rel_err(g.params()[k].ravel(), r) < 1e-12, (loss, mode, k)
            assert rel_err(g.flow.ravel(), ref[7]) < 1e-12
    E, g = m.value_and_grad(x, np.load(tmp_path / "y_mse.npy"), loss="mse", mode="free")
    ref = got["float32"]  # a float32 model computes in float32: agreement to ~1e-6
    assert abs(E - ref[0]) <= 1e-5 * abs(E)
    for k, r in zip(PARAMS, ref[1:7], strict=True):
        assert rel_err(g.params()[k].ravel(), r) < 1e-4, k


def test_grads_params_match_the_model():
    """``GeneratorGrads.params()`` has one entry per model parameter, in the
    model's order, each shaped like its parameter."""
    model = make(27)
    x, y = data(28, "mse")
    _, g = model.value_and_grad(x, y, loss="mse", mode="free")
    assert isinstance(g, GeneratorGrads)
    assert list(g.params()) == list(model.params())
    for k, v in model.params().items():
        assert g.params()[k].shape == v.shape
