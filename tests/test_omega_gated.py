"""Pascanu's regularizer Ω for the LSTM and the GRU (``rnntheory.remedies.omega``).

The references here are independent of the library's kernels: states by the
definition (tests/naive.py), step Jacobians of the whole state by the complex
step of the step map written from PyTorch's LSTMCell/GRUCell equations, the
whole-state flow ``v_k = J_{k+1}ᵀ v_{k+1} + (∂E_k/∂h_k, 0)`` by that loop,
and Ω's gradient by central differences with the flow held fixed; PyTorch's
double backward as the oracle.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import GRU, LSTM
from rnntheory._gated_jacobians import gru_step_jacobians, lstm_step_jacobians
from rnntheory.cells.gated import GatedTrace
from rnntheory.remedies import Omega, omega
from rnntheory.tasks import TemporalOrder
from rnntheory.training import SGD, train

CASES = [("lstm", "state"), ("lstm", "h"), ("gru", "state")]


def _model(cell, n_in=2, n=3, n_out=2, seed=0, scale=1.0, dtype=np.float64):
    M = LSTM if cell == "lstm" else GRU
    m = M.init(n_in, n, n_out, seed=seed, dtype=dtype)
    if scale != 1.0:
        m = m.replace(weight_hh=m.weight_hh * scale)
    return m


def _data(m, T, B, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, m.n_in)), rng.normal(size=(T, B, m.n_out))


def _step(m, W, x, s):
    """The step map ``s_{k+1} = F(s_k, x_{k+1})`` of the whole state (complex-safe)."""
    n = m.n_hidden
    Wi, bi, bh = (np.asarray(a, float) for a in (m.weight_ih, m.bias_ih, m.bias_hh))
    sig = naive._sig
    if isinstance(m, LSTM):
        h, c = s[:n], s[n:]
        a = Wi @ x + bi + W @ h + bh
        i, f, g, o = sig(a[:n]), sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), sig(a[3 * n:])
        c2 = f * c + i * g
        return np.concatenate([o * np.tanh(c2), c2])
    gi, gh = Wi @ x + bi, W @ s + bh
    r, z = sig(gi[:n] + gh[:n]), sig(gi[n:2 * n] + gh[n:2 * n])
    return (1.0 - z) * np.tanh(gi[2 * n:] + r * gh[2 * n:]) + z * s


def _jacobian(m, W, x, s):
    """``∂F/∂s`` by the complex step (exact to rounding)."""
    d = s.shape[0]
    J = np.empty((d, d))
    for j in range(d):
        e = np.zeros(d, complex)
        e[j] = 1e-30j
        J[:, j] = _step(m, W, x, s + e).imag / 1e-30
    return J


def _reference(m, x, y):
    """States ``s_k`` and whole-state flows ``v_k`` (mse loss), per sequence, by loops."""
    n = m.n_hidden
    W = np.asarray(m.weight_hh, float)
    V, by = np.asarray(m.W_yh, float), np.asarray(m.b_y, float)
    T, B = x.shape[:2]
    S, F = [], []
    for b in range(B):
        if isinstance(m, LSTM):
            hs, cs = naive.lstm_forward(m, x[:, b])
            s = np.concatenate([hs, cs], axis=1)
        else:
            hs = naive.gru_forward(m, x[:, b])
            s = hs
        d = s.shape[1]
        v = np.zeros((T + 1, d))
        for k in range(T, 0, -1):
            direct = np.zeros(d)
            direct[:n] = V.T @ (V @ hs[k] + by - y[k - 1, b])
            nxt = _jacobian(m, W, x[k, b], s[k]).T @ v[k + 1] if k < T else 0.0
            v[k] = direct + nxt
        S.append(s)
        F.append(v)
    return S, F


def _omega_ref(m, x, S, F, W, path, variant="squared", threshold=1e-20, jac=None):
    """Ω at the recurrent matrix ``W`` with the states and flows held fixed."""
    n = m.n_hidden
    T, B = x.shape[:2]
    terms, ratios = [], np.ones((T, B))
    for b in range(B):
        for k in range(T):
            J = jac(W, b, k) if jac is not None else _jacobian(m, W, x[k, b], S[b][k])
            v = F[b][k + 1]
            if path == "h":
                J, v = J[:n, :n], v[:n]
            nv = float(v @ v)
            if not (nv >= threshold and nv > 0):
                continue
            s = float(np.sum((J.T @ v) ** 2)) / nv
            ratios[k, b] = np.sqrt(s)
            terms.append((s - 1.0) ** 2 if variant == "squared" else (np.sqrt(s) - 1.0) ** 2)
    return (float(np.mean(terms)) if terms else 0.0), ratios


def _central(f, W, eps=1e-6):
    G = np.empty_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        G[idx] = (f(Wp) - f(Wm)) / (2 * eps)
    return G


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _run(m, x, y, **kw):
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    return g, omega(m, g.trace, g, **kw)


@pytest.mark.parametrize(("cell", "path"), CASES)
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_value_matches_the_loop_reference(cell, path, variant):
    """Ω and every ratio ‖J_{k+1}ᵀ v_{k+1}‖/‖v_{k+1}‖ equal the loop reference:
    complex-step Jacobians of the whole state, v from the whole-state BPTT loop
    (so the LSTM's v_c = σ(a_f) ⊙ flow_c of the next step is checked too)."""
    m = _model(cell, seed=1, scale=1.5)
    x, y = _data(m, 6, 2, 3)
    _, res = _run(m, x, y, variant=variant, path=path)
    S, F = _reference(m, x, y)
    want, ratios = _omega_ref(m, x, S, F, np.asarray(m.weight_hh), path, variant)
    assert res.count == 12
    assert res.value == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(res.ratio, ratios, rtol=1e-12)
    assert list(res.grads()) == ["weight_hh"]


@pytest.mark.parametrize(("cell", "path"), CASES)
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_fixed_flow_gradient_equals_central_differences(cell, path, variant):
    """∂Ω/∂weight_hh (every gate block) with the flow, the previous state and the
    input terms held fixed, the gates following weight_hh: central differences
    of the loop reference Ω in weight_hh (rel 1e-6)."""
    m = _model(cell, seed=2, scale=1.3)
    x, y = _data(m, 5, 2, 4)
    _, res = _run(m, x, y, variant=variant, path=path)
    S, F = _reference(m, x, y)
    G = _central(lambda W: _omega_ref(m, x, S, F, W, path, variant)[0], np.array(m.weight_hh, float))
    assert res.gradient == "fixed flow"
    assert _rel(res.W_hh, G) < 1e-6


@pytest.mark.parametrize(("cell", "path"), CASES)
def test_gates_held_gradient_equals_central_differences(cell, path):
    """hold_fprime=True: the gradient of Ω(W) with J_{k+1}(W) = Σ_gates diag(coefficients
    of the recorded step) W_gate (the step Jacobians of rnntheory._gated_jacobians at the
    recorded pre-activations, built with W): central differences (rel 1e-6); it differs
    from the exact fixed-flow gradient."""
    m = _model(cell, seed=3, scale=1.2)
    x, y = _data(m, 5, 2, 5)
    g, res = _run(m, x, y, hold_fprime=True, path=path)
    S, F = _reference(m, x, y)
    tr = g.trace

    def jac(W, b, k):
        if cell == "lstm":
            return lstm_step_jacobians(W, tr.c[k:k + 2, b], tr.pre[k:k + 1, b], "state")[0]
        return gru_step_jacobians(W, tr.h[k:k + 2, b], tr.pre[k:k + 1, b])[0]

    G = _central(lambda W: _omega_ref(m, x, S, F, W, path, jac=jac)[0], np.array(m.weight_hh, float))
    assert res.gradient == "fixed flow and gates"
    assert _rel(res.W_hh, G) < 1e-6
    exact = omega(m, tr, g, path=path)
    assert exact.value == res.value
    assert _rel(exact.W_hh, res.W_hh) > 1e-3


@pytest.mark.oracle
@pytest.mark.parametrize(("cell", "path"), CASES)
def test_matches_torch_double_backward(cell, path):
    """PyTorch: states by torch's LSTMCell/GRUCell, v by vector-Jacobian products
    of the step map (whole state) plus ∂E_k/∂h_k, detached; u = J_{k+1}ᵀ v by
    autograd with create_graph; Ω's gradient in weight_hh by double backward.
    Value and gradient agree to 1e-10 (float64)."""
    torch = torch_or_skip()
    m = _model(cell, seed=4, scale=1.4)
    T, B, n = 6, 3, m.n_hidden
    x, y = _data(m, T, B, 6)
    Cell = torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell
    tc = Cell(m.n_in, n, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(tc, name).copy_(torch.tensor(np.asarray(getattr(m, name))))
    V, by = torch.tensor(np.asarray(m.W_yh)), torch.tensor(np.asarray(m.b_y))
    xt, yt = torch.tensor(x), torch.tensor(y)
    lstm = cell == "lstm"

    def step(k, s):  # s_k -> s_{k+1}
        if lstm:
            h2, c2 = tc(xt[k], (s[0], s[1]))
            return (h2, c2)
        return (tc(xt[k], s[0]),)

    z = torch.zeros(B, n, dtype=torch.float64)
    states = [(z, z) if lstm else (z,)]
    with torch.no_grad():
        for k in range(T):
            states.append(step(k, states[-1]))
    v = [None] * (T + 1)
    for k in range(T, 0, -1):
        s = tuple(a.clone().requires_grad_(True) for a in states[k])
        E = 0.5 * torch.sum((s[0] @ V.T + by - yt[k - 1]) ** 2)
        direct = torch.autograd.grad(E, s[0])[0]
        if k == T:
            v[k] = (direct, torch.zeros_like(direct)) if lstm else (direct,)
            continue
        out = step(k, s)
        back = torch.autograd.grad(out, s, grad_outputs=v[k + 1])
        v[k] = (back[0] + direct, *back[1:])
    terms = []
    for k in range(T):
        s = tuple(a.clone().requires_grad_(True) for a in states[k])
        out = step(k, s)
        vk = v[k + 1] if path == "state" else v[k + 1][:1]
        outs = out if path == "state" else out[:1]
        u = torch.autograd.grad(outs, s, grad_outputs=vk, create_graph=True)
        u = u if path == "state" else u[:1]
        nu = sum(torch.sum(a**2, dim=1) for a in u)
        nv = sum(torch.sum(a**2, dim=1) for a in vk)
        terms.append((nu / nv - 1.0) ** 2)
    omega_t = torch.cat(terms).mean()
    (gW,) = torch.autograd.grad(omega_t, tc.weight_hh)
    _, res = _run(m, x, y, path=path)
    assert res.value == pytest.approx(float(omega_t.detach()), rel=1e-10)
    assert _rel(res.W_hh, gW.numpy()) < 1e-10


@given(seed=st.integers(0, 10_000), cell=st.sampled_from(["lstm", "gru"]), n=st.integers(1, 5),
       T=st.integers(1, 6), B=st.integers(1, 3), scale=st.floats(0.1, 3.0))
def test_properties(seed, cell, n, T, B, scale):
    """Mathematics that holds for every model and input:

    * Ω ≥ 0 and every ratio ≥ 0 (a mean of squares of real numbers);
    * Ω does not depend on the scale of the flow: v ↦ 2^j v leaves every
      ratio ‖J v‖/‖v‖ and so Ω and its gradient bit-identical (the kernel
      rescales each v by a power of two first);
    * with weight_hh = 0 the step Jacobian has no W term: GRU J = diag(z), so
      Ω_k = (Σ z²v²/Σ v² − 1)²; LSTM J = [[0, diag(o tanh′(c′) f)], [0, diag(f)]]
      so on the h-to-h path u = 0 and every counted Ω_k = 1 exactly.
    """
    m = _model(cell, n_in=2, n=n, n_out=2, seed=seed, scale=scale)
    x, y = _data(m, T, B, seed + 1)
    g, res = _run(m, x, y, threshold=0.0)
    assert res.value >= 0.0 and np.all(res.ratio >= 0.0)
    k = 2.0 ** (seed % 40 - 20)
    flows = (g.flow * k, g.flow_c * k) if cell == "lstm" else g.flow * k
    scaled = omega(m, g.trace, flows, threshold=0.0)
    assert scaled.value == res.value and np.array_equal(scaled.W_hh, res.W_hh)
    m0 = m.replace(weight_hh=np.zeros_like(m.weight_hh))
    g0, r0 = _run(m0, x, y, threshold=0.0, path="h")
    if cell == "lstm":
        assert np.all(r0.ratio[r0.counted] == 0.0)
        assert r0.value == (1.0 if r0.count else 0.0)
    else:
        z = naive._sig(g0.trace.pre[..., n:2 * n])
        v = g0.flow[1:]
        s = np.sum((z * v) ** 2, axis=-1) / np.sum(v**2, axis=-1)
        want = np.mean(((s - 1.0) ** 2)[r0.counted]) if r0.count else 0.0
        assert r0.value == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("cell", "path"), CASES)
def test_extreme_flows_and_zero_flow(cell, path):
    """Flows scaled by 1e-300 or 1e300 give Ω and gradient within rounding of the
    flow itself (no overflow in ‖v‖², no lost digits); a zero flow counts no term:
    Ω = 0, gradient 0, every ratio 1; an unbatched sequence gives its batch's result."""
    m = _model(cell, seed=7, scale=1.2)
    x, y = _data(m, 4, 1, 8)
    g, res = _run(m, x, y, path=path)
    for k in (1e-300, 1e300):
        flows = (g.flow * k, g.flow_c * k) if cell == "lstm" else g.flow * k
        r = omega(m, g.trace, flows, path=path, threshold=0.0)
        assert r.value == pytest.approx(res.value, rel=1e-13)
        assert _rel(r.W_hh, res.W_hh) < 1e-13
    zero = (np.zeros_like(g.flow), np.zeros_like(g.flow_c)) if cell == "lstm" else np.zeros_like(g.flow)
    r = omega(m, g.trace, zero, path=path, threshold=0.0)
    assert (r.value, r.count) == (0.0, 0) and not np.any(r.W_hh) and np.all(r.ratio == 1.0)
    _, g1 = m.value_and_grad(x[:, 0], y[:, 0], loss="mse", keep_trace=True)
    r1 = omega(m, g1.trace, g1, path=path)
    assert r1.value == pytest.approx(res.value, rel=1e-14) and _rel(r1.W_hh, res.W_hh) < 1e-14


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_agrees_with_float64(cell):
    """A float32 model gives Ω and its gradient within 1e-4 (relative) of the same
    weights in float64, the gradient in float32."""
    m64 = _model(cell, n=6, seed=5, scale=1.2)
    m32 = m64.replace(**{k: v.astype(np.float32) for k, v in m64.params().items()})
    x, y = _data(m64, 10, 4, 2)
    r = [_run(m, x.astype(m.dtype), y.astype(m.dtype))[1] for m in (m64, m32)]
    assert r[1].W_hh.dtype == np.float32
    assert r[1].value == pytest.approx(r[0].value, rel=1e-4)
    assert _rel(r[1].W_hh, r[0].W_hh) < 1e-4


def test_keep_trace_of_gated_cells():
    """value_and_grad(keep_trace=True/"scratch") returns the forward pass: equal to
    forward(x) bit for bit, the gradient unchanged; a bad keep_trace is named."""
    for cell in ("lstm", "gru"):
        m = _model(cell, seed=9)
        x, y = _data(m, 5, 3, 1)
        v0, g0 = m.value_and_grad(x, y, loss="mse")
        tr = m.forward(x)
        for keep in (True, "scratch"):
            v, g = m.value_and_grad(x, y, loss="mse", keep_trace=keep)
            assert v == v0 and np.array_equal(g.weight_hh, g0.weight_hh)
            assert np.array_equal(g.trace.h, tr.h) and np.array_equal(g.trace.pre, tr.pre)
            assert (tr.c is None and g.trace.c is None) or np.array_equal(g.trace.c, tr.c)
        assert g0.trace is None and "trace" not in g0.params()
        with pytest.raises(ValueError, match="`keep_trace` must be True, False or 'scratch', got 'yes'"):
            m.value_and_grad(x, y, loss="mse", keep_trace="yes")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_train_with_omega(cell):
    """train(..., remedies=(Omega(w),)) on an LSTM and a GRU: Ω is recorded every
    step (finite, ≥ 0); at step 1 it equals the loop reference on the step's batch
    (xent; flows of the batch-summed loss, threshold scaled by B²), the recorded
    loss is E/B + w·Ω, and the SGD update is
    weight_hh − lr·(∂E/∂weight_hh / B + w·∂Ω/∂weight_hh) (gates held, the default)."""
    task = TemporalOrder(10)
    m = _model(cell, n_in=task.n_in, n=4, n_out=task.n_out, seed=0, scale=1.5)
    h = train(m, task, optimizer=SGD(0.01), remedies=(Omega(weight=2.0),), steps=4, batch_size=3, seed=1,
              eval_every=2, eval_size=6)
    assert h.omega.shape == (4,) and np.all(np.isfinite(h.omega)) and np.all(h.omega >= 0)
    batch = task.sample(3, np.random.default_rng(1))
    value, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask, keep_trace=True)
    res = omega(m, g.trace, g, threshold=1e-20 * 9, hold_fprime=True)
    assert h.omega[0] == pytest.approx(res.value, rel=1e-12)
    assert h.loss[0] == pytest.approx(value / 3 + 2.0 * res.value, rel=1e-12)
    one = train(m, task, optimizer=SGD(0.01), remedies=(Omega(weight=2.0),), steps=1, batch_size=3, seed=1,
                eval_every=1, eval_size=3)
    np.testing.assert_allclose(one.model.weight_hh, m.weight_hh - 0.01 * (g.weight_hh / 3 + 2.0 * res.W_hh),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(one.model.weight_ih, m.weight_ih - 0.01 * (g.weight_ih / 3))


def test_bad_inputs_raise_named_errors():
    """Each bad argument raises TypeError/ValueError naming it."""
    m = _model("lstm", seed=0)
    gm = _model("gru", seed=0)
    x, y = _data(m, 3, 2, 0)
    g, _ = _run(m, x, y)
    gg, _ = _run(gm, x, y)
    with pytest.raises(TypeError, match=r"`flow` of an LSTM must be its gradient record .* \(flow, flow_c\)"):
        omega(m, g.trace, g.flow)
    with pytest.raises(ValueError, match="`path` must be one of"):
        omega(m, g.trace, g, path="c")
    with pytest.raises(ValueError, match="`flow` must be finite"):
        omega(m, g.trace, (np.full_like(g.flow, np.nan), g.flow_c))
    with pytest.raises(ValueError, match="`flow_c` must have shape"):
        omega(m, g.trace, (g.flow, g.flow_c[1:]))
    with pytest.raises(ValueError, match=r"`trace.pre` must have shape \(3, 2, 12\)"):
        omega(m, GatedTrace(g.trace.h, g.trace.c, g.trace.pre[..., 1:], None), g)
    with pytest.raises(TypeError, match="`trace` must be a GatedTrace from LSTM"):
        omega(m, gg.trace, g)  # a GRU's trace has no c
    with pytest.raises(ValueError, match=r"`flow` must have shape \(4, 2, 3\)"):
        omega(gm, gg.trace, gg.flow[1:])
    with pytest.raises(TypeError, match="`trace` must be a GatedTrace from LSTM"):
        omega(m, "trace", g)
    with pytest.raises(ValueError, match="`path` must be one of"):
        Omega(1.0, path="c")
    from rnntheory.cells.stacked import StackedRNN

    task = TemporalOrder(10)
    stack = StackedRNN.init(task.n_in, 3, task.n_out, cell="lstm", n_layers=2)
    with pytest.raises(ValueError, match="`path` of Omega must be 'state' for a StackedRNN"):
        Omega(1.0, path="h").check_model(stack)  # stacks: tests/test_omega_stacked.py
