"""Pascanu's regularizer Ω for stacked models (``rnntheory.remedies.omega`` on a ``StackedRNN``).

Ω_k = (‖J_{k+1}ᵀ v_{k+1}‖² / ‖v_{k+1}‖² − 1)² with ``J`` the step Jacobian of the
whole state ``s`` (every layer, LSTM ``h`` then ``c``) and ``v = ∂E/∂s``.

The references are independent of the code under test: the value from the explicit
whole-state step Jacobians of :func:`rnntheory.jacobians.step_jacobians` (which
assembles the block lower-triangular matrix from each layer's own Jacobians); the
gradient by central differences of that explicit evaluation as a function of one
layer's recurrent matrix, each layer's step rerun (``layer.forward``, one step per
row) from its recorded previous state and its recorded input (held fixed, as the
flow is); and the one-layer cell's Ω (the cell kernels, another implementation).
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import ElmanRNN, StackedRNN, jacobians
from rnntheory.cells.gated import GRU, LSTM
from rnntheory.cells.stacked import StackedTrace
from rnntheory.remedies import Omega, omega
from rnntheory.tasks import TemporalOrder
from rnntheory.training import SGD, train

# (cell, Elman options): the standard form, Pascanu's form, leaky units of both forms
CASES = [
    ("elman", {}),
    ("elman", {"form": "pascanu"}),
    ("elman", {"alpha": 0.3}),
    ("elman", {"form": "pascanu", "alpha": 0.6, "activation": "sigmoid"}),
    ("lstm", {}),
    ("gru", {}),
]
IDS = ["elman", "elman-pascanu", "elman-leaky", "elman-pascanu-leaky", "lstm", "gru"]


def _stack(cell, opts, n_layers=2, n_in=2, n=3, n_out=2, seed=1):
    return StackedRNN.init(n_in, n, n_out, cell=cell, n_layers=n_layers, seed=seed, **opts)


def _data(m, T, B, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, m.n_in)), rng.normal(size=(T, B, m.n_out))


def _held_trace(m, trace, x):
    """Each layer's step rerun with ``m``'s weights from the recorded previous state and the
    recorded input of ``trace`` (the N = T·B steps as one batch of one step)."""
    H0 = trace.layers[0].h
    T, n = H0.shape[0] - 1, m.n_hidden
    N = T * int(np.prod(H0.shape[1:-1]))
    out = []
    for l, (layer, tr) in enumerate(zip(m.layers, trace.layers, strict=True)):
        inp = x if l == 0 else trace.layers[l - 1].h[1:]
        kw = {"c0": tr.c[:-1].reshape(N, n)} if getattr(tr, "c", None) is not None else {}
        out.append(layer.forward(inp.reshape(1, N, -1), tr.h[:-1].reshape(N, n), **kw))
    return StackedTrace(tuple(out)), N


def _omega_ref(m, trace, x, flow, variant="squared"):
    """Ω from explicit whole-state step Jacobians at the held states and inputs."""
    held, N = _held_trace(m, trace, x)
    V = np.asarray(flow)[1:].reshape(N, -1)
    total = 0.0
    for i in range(N):
        J = jacobians.step_jacobians(m, held.sequence(i))[0]
        u = J.T @ V[i]
        r = (u @ u) / (V[i] @ V[i])
        total += (r - 1.0) ** 2 if variant == "squared" else (np.sqrt(r) - 1.0) ** 2
    return total / N


@pytest.mark.parametrize(("cell", "opts"), CASES, ids=IDS)
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_value_matches_explicit_whole_state_jacobians(cell, opts, variant):
    """Ω and every per-term ratio equal those of Jᵀv with J from step_jacobians (three layers)."""
    m = _stack(cell, opts, n_layers=3)
    x, y = _data(m, 5, 2)
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    res = omega(m, tr, g, variant=variant)
    J = np.stack([jacobians.step_jacobians(m, tr.sequence(b)) for b in range(2)], axis=1)
    V = g.flow[1:]
    u = np.einsum("tbij,tbi->tbj", J, V)
    ratio = np.linalg.norm(u, axis=-1) / np.linalg.norm(V, axis=-1)
    terms = (ratio**2 - 1.0) ** 2 if variant == "squared" else (ratio - 1.0) ** 2
    assert res.count == 10 and res.counted.all()
    np.testing.assert_allclose(res.ratio, ratio, rtol=1e-13)
    assert res.value == pytest.approx(terms.mean(), rel=1e-13)
    assert sorted(res.grads()) == sorted(k for k in m.params() if k.startswith(("W_hh_", "weight_hh_")))


@pytest.mark.parametrize(("cell", "opts"), CASES, ids=IDS)
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_gradient_matches_central_differences_with_flow_states_and_inputs_held(cell, opts, variant):
    """∂Ω/∂W^l of every layer against central differences of the explicit evaluation, the
    flow, every layer's previous state and its input held (the cross-layer blocks X^l E_h
    move with layer l's recurrent weights through its gates)."""
    m = _stack(cell, opts, n=2)
    x, y = _data(m, 3, 2, seed=3)
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    res = omega(m, tr, g.flow, variant=variant)
    assert res.value == pytest.approx(_omega_ref(m, tr, x, g.flow, variant), rel=1e-12)
    for name, G in res.grads().items():
        W = m.params()[name]
        fd = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            Wp, Wm = W.copy(), W.copy()
            Wp[idx] += 1e-6
            Wm[idx] -= 1e-6
            fd[idx] = (_omega_ref(m.replace(**{name: Wp}), tr, x, g.flow, variant)
                       - _omega_ref(m.replace(**{name: Wm}), tr, x, g.flow, variant)) / 2e-6
        np.testing.assert_allclose(G, fd, atol=2e-9 * max(1.0, np.abs(fd).max()), err_msg=name)


def _cell_of(layer, W_yh, b_y):
    p = {k: v for k, v in layer.params().items()}
    if isinstance(layer, ElmanRNN):
        return ElmanRNN(p["W_hh"], p["W_hx"], p["b_h"], W_yh, b_y, activation=layer.activation.name,
                        form=layer.form, alpha=layer.alpha)
    M = LSTM if isinstance(layer, LSTM) else GRU
    return M(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], W_yh, b_y)


@given(
    case=st.sampled_from(range(len(CASES))),
    seed=st.integers(0, 2**16),
    hold=st.booleans(),
    variant=st.sampled_from(["squared", "norm"]),
)
def test_one_layer_stack_is_the_cell(case, seed, hold, variant):
    """A stack of one layer has the cell's state, step Jacobian and flow, so its Ω and
    gradient are the cell's (computed by the cell's kernels), to rounding; and Ω ≥ 0."""
    cell, opts = CASES[case]
    m = _stack(cell, opts, n_layers=1, seed=seed)
    c = _cell_of(m.layers[0], m.W_yh, m.b_y)
    x, y = _data(m, 4, 2, seed=seed)
    _, gs = m.value_and_grad(x, y, loss="mse")
    rs = omega(m, m.forward(x), gs, variant=variant, hold_fprime=hold)
    if isinstance(c, ElmanRNN):
        _, gc = c.value_and_grad(x, y, loss="mse")
        rc = omega(c, c.forward(x), gc.flow, variant=variant, hold_fprime=hold)
    else:
        _, gc = c.value_and_grad(x, y, loss="mse", keep_trace=True)
        rc = omega(c, gc.trace, gc, variant=variant, hold_fprime=hold)
    assert rs.value >= 0.0
    assert rs.value == pytest.approx(rc.value, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(rs.ratio, rc.ratio, rtol=1e-10)
    (G,) = rs.grads().values()
    np.testing.assert_allclose(G, rc.W_hh, rtol=1e-8, atol=1e-10 * max(1.0, np.abs(rc.W_hh).max()))


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_flow_scale_does_not_matter(cell):
    """Ω_k is homogeneous of degree 0 in v and the gradient too (ḡ ∝ 1/|v|, w ∝ |v|): flows
    scaled by 2^±900 (exact) give the same value and gradient bit for bit."""
    m = _stack(cell, {})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    base = omega(m, tr, g.flow, threshold=0.0)
    for e in (-900, 900):
        r = omega(m, tr, np.ldexp(g.flow, e), threshold=0.0)
        assert r.value == base.value
        for k, v in r.grads().items():
            assert np.array_equal(v, base.grads()[k])


def test_threshold_leaves_out_zero_flow_terms():
    """A zero v_{k+1} never counts (0/0); the mean is over the counted terms only."""
    m = _stack("gru", {})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse")
    F = g.flow.copy()
    F[2, 1] = 0.0  # term k = 1 of sequence 1
    res = omega(m, m.forward(x), F)
    assert res.count == 7 and not res.counted[1, 1] and res.ratio[1, 1] == 1.0
    full = omega(m, m.forward(x), g.flow)
    keep = np.ones((4, 2), bool)
    keep[1, 1] = False
    per = (full.ratio**2 - 1.0) ** 2
    assert res.value == pytest.approx(per[keep].mean(), rel=1e-13)


def test_pascanu_form_hold_fprime_changes_nothing():
    """Pascanu's form reads f′(h_k) of the held state only: hold_fprime is the same gradient."""
    m = _stack("elman", {"form": "pascanu"})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse")
    a = omega(m, m.forward(x), g)
    b = omega(m, m.forward(x), g, hold_fprime=True)
    for k in a.grads():
        assert np.array_equal(a.grads()[k], b.grads()[k])
    assert b.gradient == "fixed flow and gates"


def test_bad_inputs():
    m = _stack("lstm", {})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    with pytest.raises(TypeError, match="`trace` must be a StackedTrace of 2 layers"):
        omega(m, tr.layers[0], g)
    with pytest.raises(ValueError, match=r"`flow` must have shape \(5, 2, 12\)"):
        omega(m, tr, g.flow[:, :, :6])
    with pytest.raises(ValueError, match="`path` must be 'state' for a StackedRNN"):
        omega(m, tr, g, path="h")
    bad = g.flow.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`flow`"):
        omega(m, tr, bad)
    with pytest.raises(ValueError, match="`path` of Omega must be 'state' for a StackedRNN"):
        Omega(1.0, path="h").check_model(m)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_train_with_omega_on_a_two_layer_stack(cell):
    """train(..., remedies=(Omega(w),)) on 2-layer stacks: Ω recorded every step (finite,
    ≥ 0); at step 1 it is Ω of the step's batch (threshold scaled by B²), the loss is
    E/B + w·Ω, and the SGD update of every layer's recurrent matrix is
    W − lr·(∂E/∂W / B + w·∂Ω/∂W) (gates held, the default), the input weights' without Ω."""
    task = TemporalOrder(length=10)
    m = StackedRNN.init(task.n_in, 4, task.n_out, cell=cell, n_layers=2, seed=0)
    h = train(m, task, optimizer=SGD(0.01), remedies=(Omega(weight=2.0),), steps=3, batch_size=3, seed=1,
              eval_every=3, eval_size=6)
    assert h.omega.shape == (3,) and np.all(np.isfinite(h.omega)) and np.all(h.omega >= 0)
    batch = task.sample(3, np.random.default_rng(1))
    value, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    res = omega(m, m.forward(batch.x), g, threshold=1e-20 * 9, hold_fprime=True)
    assert h.omega[0] == pytest.approx(res.value, rel=1e-12)
    assert h.loss[0] == pytest.approx(value / 3 + 2.0 * res.value, rel=1e-12)
    one = train(m, task, optimizer=SGD(0.01), remedies=(Omega(weight=2.0),), steps=1, batch_size=3, seed=1,
                eval_every=1, eval_size=3)
    gp, new, old = g.params(), one.model.params(), m.params()
    for k, G in res.grads().items():
        np.testing.assert_allclose(new[k], old[k] - 0.01 * (gp[k] / 3 + 2.0 * G), rtol=1e-12, atol=1e-15)
    wi = "W_hx_l1" if cell == "elman" else "weight_ih_l1"
    np.testing.assert_array_equal(new[wi], old[wi] - 0.01 * (gp[wi] / 3))


def test_value_and_grad_keeps_the_trace():
    """keep_trace returns the forward pass of the same inputs (the whole state bit for bit)
    and changes none of the gradients; batch_first gives the time-major trace."""
    m = _stack("lstm", {})
    x, y = _data(m, 4, 2)
    v0, g0 = m.value_and_grad(x, y, loss="mse")
    v1, g1 = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    assert g0.trace is None and v0 == v1
    assert np.array_equal(g1.trace.state, m.forward(x).state)
    assert np.array_equal(g1.flow, g0.flow)
    for k, v in g0.params().items():
        assert np.array_equal(g1.params()[k], v)
    _, g2 = m.value_and_grad(x.swapaxes(0, 1), y.swapaxes(0, 1), loss="mse", keep_trace=True, batch_first=True)
    assert np.array_equal(g2.trace.state, g1.trace.state)


@pytest.mark.oracle
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_matches_torch_double_backward_on_a_two_layer_module(cell):
    """PyTorch: nn.LSTM/nn.GRU(num_layers=2) loaded by from_torch; each layer's step by
    torch.lstm_cell/gru_cell with the module's parameters at the recorded previous state and
    the recorded input (layer 2's input a leaf of its own: held in value, so layer 1's weights
    do not move layer 2's gates); u = J_{k+1}ᵀ v by the chain rule through layer 2's input
    (u² = A²ᵀv², w¹ = v¹ + E_hᵀ X²ᵀ v², u¹ = A¹ᵀ w¹), every product by autograd with
    create_graph; Ω's gradient in both weight_hh by double backward. Value and gradient
    agree to 1e-10 (float64)."""
    from oracle import torch_or_skip

    from rnntheory.torch_bridge import from_torch

    torch = torch_or_skip()
    torch.manual_seed(0)
    n_in, n, T, B = 2, 3, 5, 2
    Mod = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    mod = Mod(n_in, n, num_layers=2, dtype=torch.float64)
    lin = torch.nn.Linear(n, 2, dtype=torch.float64)
    m = from_torch(mod, readout=lin)
    assert isinstance(m, StackedRNN) and m.n_layers == 2
    x, y = _data(m, T, B, seed=5)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    res = omega(m, g.trace, g)
    P = [[getattr(mod, f"{w}_l{l}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] for l in range(2)]
    lstm = cell == "lstm"
    w = 2 if lstm else 1

    def layer(l, inp, s):
        if lstm:
            return torch.lstm_cell(inp, (s[0], s[1]), *P[l])
        return (torch.gru_cell(inp, s[0], *P[l]),)

    xt = torch.tensor(x)
    S = torch.tensor(g.trace.state)  # (T+1, B, S): layer 1 (h[, c]), layer 2 (h[, c])
    V = torch.tensor(g.flow)
    total = 0.0
    for k in range(T):
        s = [S[k][:, j * n:(j + 1) * n].clone().requires_grad_(True) for j in range(2 * w)]
        inp = S[k + 1][:, :n].clone().requires_grad_(True)  # layer 2's input, h¹_{k+1}
        vk = [V[k + 1][:, j * n:(j + 1) * n] for j in range(2 * w)]
        *u2, x2 = torch.autograd.grad(layer(1, inp, s[w:]), (*s[w:], inp), grad_outputs=vk[w:], create_graph=True)
        w1 = [vk[0] + x2, *vk[1:w]]
        u1 = torch.autograd.grad(layer(0, xt[k], s[:w]), s[:w], grad_outputs=w1, create_graph=True)
        nu = sum((a**2).sum(dim=1) for a in (*u1, *u2))
        nv = sum((a**2).sum(dim=1) for a in vk)
        total = total + ((nu / nv - 1.0) ** 2).sum()
    om = total / (T * B)
    grads = torch.autograd.grad(om, [P[0][1], P[1][1]])
    assert res.value == pytest.approx(float(om.detach()), rel=1e-10)
    for l, G in enumerate(grads):
        ref = G.detach().numpy()
        np.testing.assert_allclose(res.grads()[f"weight_hh_l{l}"], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_overflowing_ratios_give_inf_without_warnings(cell):
    """Recurrent weights ×1e150: at step 1 (h_0 = 0, gates unsaturated) ‖A¹‖ ~ 1e150, so
    ‖Jᵀv‖²/‖v‖² passes float64's range and Ω = inf (as for one cell), with no
    floating-point warning (pytest turns warnings into errors)."""
    m = _stack(cell, {})
    big = m.replace(**{k: v * 1e150 for k, v in m.params().items() if k.startswith(("W_hh_", "weight_hh_"))})
    x, y = _data(m, 3, 2)
    _, g = big.value_and_grad(x, y, loss="mse", keep_trace=True)
    assert omega(big, g.trace, g).value == np.inf


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_float32_stack_agrees_with_float64(cell):
    """A float32 stack's Ω (float32 arithmetic on its float32 trace and flow, norms and the
    value in float64) is that of the float64 stack with the same weights to float32's
    accuracy (the trace and flow rounded to 2⁻²⁴ relative); the gradients are float32."""
    m = _stack(cell, {}, seed=2)
    m32 = StackedRNN.init(2, 3, 2, cell=cell, n_layers=2, seed=2, dtype=np.float32)
    m = m.replace(**{k: np.asarray(v, np.float64) for k, v in m32.params().items()})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    _, g32 = m32.value_and_grad(x, y, loss="mse", keep_trace=True)
    r, r32 = omega(m, g.trace, g), omega(m32, g32.trace, g32)
    assert r32.value == pytest.approx(r.value, rel=1e-5)
    for k, G in r.grads().items():
        assert r32.grads()[k].dtype == np.float32
        np.testing.assert_allclose(r32.grads()[k], G, rtol=0, atol=1e-4 * np.abs(G).max())


@pytest.mark.parametrize(("cell", "opts"), CASES, ids=IDS)
@pytest.mark.parametrize("hold", [False, True])
def test_kernel_matches_the_numpy_reference(cell, opts, hold):
    """The stacked kernels against the vectorised NumPy reference of tests/naive.py (the
    library's first implementation: value/tangent pairs over the rows, float64), both
    variants, two and three layers, a term left out by a zero flow, and the flow f′(a)
    kept by value_and_grad(keep_trace=True) or recomputed from the trace of forward:
    value, ratios, counted terms and every layer's gradient to 1e-12 (relative)."""
    for L in (2, 3):
        m = _stack(cell, opts, n_layers=L, n=4, seed=L)
        x, y = _data(m, 5, 3, seed=L)
        _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
        F = g.flow.copy()
        F[3, 2] = 0.0
        for tr in (g.trace, m.forward(x)):
            for variant in ("squared", "norm"):
                res = omega(m, tr, F, variant=variant, hold_fprime=hold)
                value, grads, ratio, counted, count = naive.stacked_omega(m, tr, F, variant, 1e-20, hold)
                assert count == res.count == 14 and np.array_equal(res.counted, counted)
                assert res.value == pytest.approx(value, rel=1e-12)
                np.testing.assert_allclose(res.ratio, ratio, rtol=1e-12)
                assert sorted(res.grads()) == sorted(grads)
                for k, G in grads.items():
                    np.testing.assert_allclose(res.grads()[k], G, rtol=0, atol=1e-12 * np.abs(G).max(), err_msg=k)


def test_value_and_grad_keeps_f_prime_of_elman_layers():
    """keep_trace gives each Elman layer's f′(a) (the trace of forward has none): equal
    to tanh′ of the recorded pre-activations, and Ω from either trace is the same."""
    m = _stack("elman", {})
    x, y = _data(m, 4, 2)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    tr = m.forward(x)
    for kept, fresh in zip(g.trace.layers, tr.layers, strict=True):
        assert fresh.fprime is None
        np.testing.assert_allclose(kept.fprime, 1.0 / np.cosh(fresh.a) ** 2, rtol=1e-14)
    a, b = omega(m, g.trace, g, hold_fprime=True), omega(m, tr, g, hold_fprime=True)
    assert a.value == pytest.approx(b.value, rel=1e-14)
