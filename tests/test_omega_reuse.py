"""Ω from the model's own BPTT pass (``_omega_kernels.omega_parts``).

Under full BPTT, ``value_and_grad(keep_trace="scratch")`` (what ``train`` asks for
with ``Omega``) keeps what Ω reads: ``u = J_{k+1}ᵀ v_{k+1}``, the part of the flow
at ``h_k`` that comes through step ``k+1`` before the loss at step ``k`` is added
(Elman of the standard form: ``(β ⊙ f′ ⊙ v) W_hh + α ⊙ v``; GRU: ``D W_hh + z ⊙ v``;
LSTM: ``u_h = D W_hh`` and the carry ``u_c = σ(a_f) ⊙ δ = v_c(k)``), and ``D``, the
derivatives at the pre-activations that ``W_hh`` multiplies. With the flow and ``f′``
(the gates) held, Ω is then norms of arrays BPTT already formed, and its gradient
one product ``Σ Dᵀ ḡ``. The mathematics checked: these arrays are ``J_{k+1}ᵀ v_{k+1}``
and ``∂u/∂W_hh``, so this route gives the same Ω, ratios and gradient as the kernels
that recompute them — against the loop reference of ``test_omega_gated``
(complex-step Jacobians of the whole state), central differences, and the
recomputing kernels on random models; and it is used only where it is valid
(gates held, full BPTT, the record's own model and trace, the LSTM's whole state,
Elman's standard form, flows in range), falling back to the recomputing kernel
elsewhere. The same kernel serves stacks of LSTMs and GRUs, layer by layer (one
cell is a stack of one).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_omega_gated import _central, _data, _model, _omega_ref, _reference, _rel

import rnntheory.remedies  # noqa: F401  (the module below, not the function of the same name)
from rnntheory import LSTM, ElmanRNN, StackedRNN
from rnntheory._gated_jacobians import gru_step_jacobians, lstm_step_jacobians
from rnntheory.remedies import omega

OM = sys.modules["rnntheory.remedies.omega"]
K = sys.modules["rnntheory.remedies._omega_kernels"]


#: the cells whose BPTT pass keeps Ω's parts (Elman: standard form; leaky and ReLU too)
CELLS = ("elman", "leaky", "relu", "lstm", "gru")


def _cell(cell, n=3, seed=0, scale=1.0, dtype=np.float64):
    """A model of ``cell`` (two inputs, two outputs), its recurrent matrix scaled."""
    if cell in ("lstm", "gru"):
        return _model(cell, n=n, seed=seed, scale=scale, dtype=dtype)
    kw = {"alpha": np.linspace(0.2, 0.7, n)} if cell == "leaky" else {}
    if cell == "relu":
        kw = {"activation": "relu", "scheme": "identity"}
    m = ElmanRNN.init(2, n, 2, seed=seed, dtype=dtype, **kw)
    return m.replace(W_hh=m.W_hh * scale) if scale != 1.0 else m


def _rec(m):
    return m.W_hh if isinstance(m, ElmanRNN) else m.weight_hh


def _scratch(m, x, y, **kw):
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace="scratch", **kw)
    return g


def _reused(m, g, **kw):
    """Ω from the record's parts, after checking that this route is the one taken."""
    T, B = g.trace.h.shape[0] - 1, g.trace.h.shape[1]
    assert OM._bptt_parts(m, g.trace, g, kw.get("path", "state"), K.GRAD_FIXED_FPRIME,
                          (T, B, m.n_hidden)) is not None
    return omega(m, g.trace, g, hold_fprime=True, **kw)


def _close(got, want, rtol=1e-12):
    """The same counted terms and count exactly; value and ratios to ``rtol``; the
    gradient to ``rtol`` relative to its largest entry."""
    assert got.count == want.count
    np.testing.assert_array_equal(got.counted, want.counted)
    assert got.value == pytest.approx(want.value, rel=rtol, abs=1e-300)
    np.testing.assert_allclose(got.ratio, want.ratio, rtol=rtol)
    gw, gg = want.grads(), got.grads()
    assert list(gg) == list(gw)
    for k in gw:
        np.testing.assert_allclose(gg[k], gw[k], rtol=10 * rtol, atol=rtol * max(1.0, np.abs(gw[k]).max()),
                                   err_msg=k)


def _recomputed(m, x, y, **kw):
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    assert not hasattr(g, "_omega_parts")
    return omega(m, g.trace, g, hold_fprime=True, **kw)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_value_and_ratios_match_the_loop_reference(cell, variant):
    """Ω and every ratio ‖J_{k+1}ᵀ v_{k+1}‖/‖v_{k+1}‖ from the BPTT parts equal the loop
    reference (complex-step whole-state Jacobians, v by the whole-state loop), rel 1e-12."""
    m = _model(cell, seed=1, scale=1.5)
    x, y = _data(m, 6, 2, 3)
    res = _reused(m, _scratch(m, x, y), variant=variant)
    S, F = _reference(m, x, y)
    want, ratios = _omega_ref(m, x, S, F, np.asarray(m.weight_hh), "state", variant)
    assert res.count == 12
    assert res.value == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(res.ratio, ratios, rtol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_held_gradient_equals_central_differences(cell):
    """∂Ω/∂weight_hh with the flow and the gates held (J_{k+1}(W) built from the recorded
    pre-activations with W): central differences of the loop reference, rel 1e-6."""
    m = _model(cell, seed=3, scale=1.2)
    x, y = _data(m, 5, 2, 5)
    g = _scratch(m, x, y)
    tr = g.trace
    pre = np.array(tr.pre)  # copies: the scratch trace is reused below
    states = np.array(tr.c if cell == "lstm" else tr.h)
    res = _reused(m, g)
    S, F = _reference(m, x, y)

    def jac(W, b, k):
        if cell == "gru":
            return gru_step_jacobians(W, states[k:k + 2, b], pre[k:k + 1, b])[0]
        return lstm_step_jacobians(W, states[k:k + 2, b], pre[k:k + 1, b], "state")[0]

    G = _central(lambda W: _omega_ref(m, x, S, F, W, "state", jac=jac)[0], np.array(m.weight_hh, float))
    assert res.gradient == "fixed flow and gates"
    assert _rel(res.W_hh, G) < 1e-6


@settings(max_examples=60, deadline=None)
@given(cell=st.sampled_from(CELLS), seed=st.integers(0, 10_000), n=st.integers(1, 6), T=st.integers(1, 12),
       B=st.integers(1, 4), scale=st.sampled_from([0.3, 1.0, 2.5]), variant=st.sampled_from(["squared", "norm"]),
       threshold=st.sampled_from([0.0, 1e-20, 1e-3]))
def test_reused_parts_equal_the_recomputing_kernel(cell, seed, n, T, B, scale, variant, threshold):
    """For any cell (Elman standard form, leaky, ReLU; LSTM; GRU), data and threshold, Ω from
    the BPTT parts equals Ω of the kernel that recomputes u (itself checked against the
    references in test_omega and test_omega_gated): the counted terms and count exactly,
    the value, ratios and gradient to 1e-12 relative."""
    m = _cell(cell, n=n, seed=seed, scale=scale)
    x, y = _data(m, T, B, seed + 1)
    want = _recomputed(m, x, y, variant=variant, threshold=threshold)
    got = _reused(m, _scratch(m, x, y), variant=variant, threshold=threshold)
    _close(got, want)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_parts_agree_with_float64(cell):
    """A float32 model's Ω from its parts agrees with the float64 model's to float32 rounding."""
    m64 = _cell(cell, n=5, seed=7, scale=1.3)
    m32 = _cell(cell, n=5, seed=7, scale=1.3, dtype=np.float32)
    x, y = _data(m64, 20, 3, 8)
    r64 = _reused(m64, _scratch(m64, x, y))
    r32 = _reused(m32, _scratch(m32, x.astype(np.float32), y.astype(np.float32)))
    assert r32.value == pytest.approx(r64.value, rel=1e-4)
    assert _rel(r32.W_hh.astype(float), r64.W_hh) < 1e-4


@pytest.mark.parametrize("cell", CELLS)
def test_flows_beyond_the_range_fall_back_to_the_recomputing_kernel(cell):
    """Targets of 1e250 give flows near 2^830, beyond the parts' range: the parts kernel
    refuses (count −1) and the result is the recomputing kernel's, bit for bit."""
    m = _cell(cell, seed=5, scale=1.1)
    x, y = _data(m, 6, 2, 6)
    y = y * 1e250
    g = _scratch(m, x, y)
    D, UH, CC = OM._bptt_parts(m, g.trace, g, "state", K.GRAD_FIXED_FPRIME, (6, 2, m.n_hidden))
    V = np.ascontiguousarray(g.flow[1:].reshape(-1, m.n_hidden))
    mask, R, G = np.empty(12, np.uint8), np.empty(12), np.zeros((1, *np.shape(_rec(m))))
    assert K.omega_parts(D, UH, CC, V, 2, True, True, 1e-20, mask, R, G, 0, 12)[1] == -1
    got = omega(m, g.trace, g, hold_fprime=True)
    want = _recomputed(m, x, y)
    assert (got.value, got.count) == (want.value, want.count)
    np.testing.assert_array_equal(got.W_hh, want.W_hh)
    np.testing.assert_array_equal(got.ratio, want.ratio)


def test_elman_and_gru_parts_only_where_valid():
    """Elman and GRU: no parts for truncation or a keep_trace=True record, and none kept for
    Pascanu's form (its u multiplies f′(h_k) after W_hh); not read for the exact gradient
    (f″ or the gates follow W), another model or trace."""
    for m in (_cell("elman", seed=6), _cell("gru", seed=6)):
        x, y = _data(m, 8, 2, 7)
        shape = (8, 2, m.n_hidden)
        g = _scratch(m, x, y)
        assert OM._bptt_parts(m, g.trace, g, "state", K.GRAD_FIXED_FPRIME, shape) is not None
        assert OM._bptt_parts(m, g.trace, g, "state", K.GRAD_FIXED_FLOW, shape) is None
        assert OM._bptt_parts(m, m.forward(x), g, "state", K.GRAD_FIXED_FPRIME, shape) is None
        other = m.replace(**{"W_hh" if isinstance(m, ElmanRNN) else "weight_hh": np.array(_rec(m))})
        assert OM._bptt_parts(other, g.trace, g, "state", K.GRAD_FIXED_FPRIME, shape) is None
        for trunc in (4, (2, 4), (3, 5)):
            _, gt = m.value_and_grad(x, y, loss="mse", keep_trace="scratch", truncate=trunc)
            assert not hasattr(gt, "_omega_parts"), trunc
        _, gk = m.value_and_grad(x, y, loss="mse", keep_trace=True)
        assert not hasattr(gk, "_omega_parts")
    p = ElmanRNN.init(2, 3, 2, seed=0, form="pascanu")
    _, gp = p.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    assert not hasattr(gp, "_omega_parts")


def test_the_parts_are_used_only_where_they_are_valid():
    """No parts (the recomputing kernel runs) for: truncated BPTT, a trace other than the
    record's own, another model (even one with equal weights), the h-to-h path, the exact
    gradient (gates following W), and a record kept with keep_trace=True."""
    m = _model("lstm", seed=6)
    x, y = _data(m, 8, 2, 7)
    shape = (8, 2, m.n_hidden)
    held = K.GRAD_FIXED_FPRIME
    g = _scratch(m, x, y)
    assert OM._bptt_parts(m, g.trace, g, "state", held, shape) is not None
    assert OM._bptt_parts(m, g.trace, g, "h", held, shape) is None
    assert OM._bptt_parts(m, g.trace, g, "state", K.GRAD_FIXED_FLOW, shape) is None
    other = LSTM(m.weight_ih, np.array(m.weight_hh), m.bias_ih, m.bias_hh, m.W_yh, m.b_y)
    assert OM._bptt_parts(other, g.trace, g, "state", held, shape) is None
    assert OM._bptt_parts(m, m.forward(x), g, "state", held, shape) is None
    for trunc in (4, (2, 4), (3, 5)):
        _, gt = m.value_and_grad(x, y, loss="mse", keep_trace="scratch", truncate=trunc)
        assert not hasattr(gt, "_omega_parts"), trunc
    _, gk = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    assert not hasattr(gk, "_omega_parts")


@pytest.mark.parametrize("cell", CELLS)
def test_the_parts_do_not_change_the_gradient(cell):
    """Keeping the parts changes nothing else the BPTT pass returns: every parameter gradient
    and every flow are bit-identical to a pass that keeps no trace."""
    m = _cell(cell, n=4, seed=8, scale=1.4)
    x, y = _data(m, 9, 3, 9)
    _assert_parts_change_nothing(m, x, y, ("flow", "flow_c") if cell == "lstm" else ("flow",))


def _assert_parts_change_nothing(m, x, y, flows):
    """value_and_grad with and without keep_trace="scratch": the same value, and every
    parameter gradient and flow bit for bit."""
    v0, g0 = m.value_and_grad(x, y, loss="mse")
    v1, g1 = m.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    assert v0 == v1
    for k, a in g0.params().items():
        np.testing.assert_array_equal(a, g1.params()[k], err_msg=k)
    for f in flows:
        np.testing.assert_array_equal(getattr(g0, f), getattr(g1, f), err_msg=f)


def _python_body_agrees(parts, V, B, G_shape):
    """The kernel's Python body (bounds-checked NumPy indexing: an index past a row or past
    CC's T+1 blocks raises; plain lists for the layers) gives the compiled kernel's value,
    ratios, mask and gradient, with about a third of the rows below the threshold."""
    N = V.shape[0]
    thr = float(np.quantile(np.sum(V * V, axis=1), 0.3))
    out = []
    for fn, lists in ((K.omega_parts, parts),
                      (K.omega_parts.py_func, tuple(list(a) for a in parts))):
        mask, R, G = np.empty(N, np.uint8), np.empty(N), np.zeros(G_shape)
        total, count = fn(*lists, V, B, True, True, thr, mask, R, G, 0, N)
        out.append((total, count, mask, R, G))
    (t1, c1, m1, R1, G1), (t2, c2, m2, R2, G2) = out
    assert 0 < c1 < N and c1 == c2
    assert t2 == pytest.approx(t1, rel=1e-14)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(R2, R1, rtol=1e-14)
    np.testing.assert_allclose(G2, G1, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cell", ["lstm", "gru", "leaky"])
def test_kernel_python_body_agrees_with_the_compiled_kernel(cell):
    """One cell (for the LSTM, V holds flow[k+1] alone and v_c is read from the carry; the
    others have no carry): see _python_body_agrees."""
    m = _cell(cell, n=3, seed=9, scale=1.3)
    x, y = _data(m, 5, 3, 10)
    g = _scratch(m, x, y)
    parts = OM._bptt_parts(m, g.trace, g, "state", K.GRAD_FIXED_FPRIME, (5, 3, 3))
    _python_body_agrees(parts, np.ascontiguousarray(g.flow[1:].reshape(-1, 3)), 3, (1, *np.shape(_rec(m))))


# ----------------------------------------------------------------------------- stacks of LSTMs and GRUs


def _stack(L, n=3, seed=0, scale=1.0, dtype=np.float64, cell="lstm"):
    m = StackedRNN.init(2, n, 2, cell=cell, n_layers=L, seed=seed, dtype=dtype)
    if scale != 1.0:
        m = m.replace(**{f"weight_hh_l{i}": layer.weight_hh * scale for i, layer in enumerate(m.layers)})
    return m


def _stack_data(T, B, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, 2)).astype(dtype), rng.normal(size=(T, B, 2)).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(["lstm", "gru"]), seed=st.integers(0, 10_000), L=st.integers(1, 3),
       n=st.integers(1, 4), T=st.integers(1, 10), B=st.integers(1, 3), scale=st.sampled_from([0.5, 1.0, 2.0]),
       variant=st.sampled_from(["squared", "norm"]), threshold=st.sampled_from([0.0, 1e-20, 1e-3]))
def test_stacked_parts_equal_the_recomputing_stacked_kernel(cell, seed, L, n, T, B, scale, variant, threshold):
    """For a stack of LSTMs or GRUs, layer l's BPTT pass (which receives what layer l+1
    sends down at the same step) forms D^l of w^l = v^l + (what comes down) and
    u^l = J^lᵀ w^l (LSTM: D^l W^l_hh and the carry; GRU: D^l W^l_hh + z ⊙ w^l): Ω of the
    whole state from them equals the stacked kernel that recomputes the gates (checked
    against explicit whole-state Jacobians in test_omega_stacked): counted terms exactly,
    value, ratios and every layer's gradient to 1e-12 relative."""
    m = _stack(L, n, seed, scale, cell=cell)
    x, y = _stack_data(T, B, seed + 1)
    _, gk = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    want = omega(m, gk.trace, gk, hold_fprime=True, variant=variant, threshold=threshold)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    assert OM._stacked_bptt_parts(m, g.trace, g, True) is not None
    got = omega(m, g.trace, g, hold_fprime=True, variant=variant, threshold=threshold)
    assert list(got.grads()) == [f"weight_hh_l{i}" for i in range(L)]
    _close(got, want)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stacked_parts_only_where_valid_and_the_fallback(cell):
    """No stack parts for the exact gradient, another trace or model, truncation, a
    keep_trace=True record, or Elman stacks; flows near 2^830 fall back to the
    recomputing kernel bit for bit; keeping the parts changes no gradient or flow."""
    m = _stack(2, seed=4, scale=1.2, cell=cell)
    x, y = _stack_data(7, 2, 5)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    assert OM._stacked_bptt_parts(m, g.trace, g, True) is not None
    assert OM._stacked_bptt_parts(m, g.trace, g, False) is None
    assert OM._stacked_bptt_parts(m, m.forward(x), g, True) is None
    other = m.replace(weight_hh_l1=np.array(m.layers[1].weight_hh))  # equal weights, another model
    assert OM._stacked_bptt_parts(other, g.trace, g, True) is None
    for trunc in (3, (2, 4)):
        _, gt = m.value_and_grad(x, y, loss="mse", keep_trace="scratch", truncate=trunc)
        assert not hasattr(gt, "_omega_parts"), trunc
    _, gk = m.value_and_grad(x, y, loss="mse", keep_trace=True)
    assert not hasattr(gk, "_omega_parts")
    s = StackedRNN.init(2, 3, 2, cell="elman", n_layers=2, seed=0)
    _, gs = s.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    assert not hasattr(gs, "_omega_parts")
    _assert_parts_change_nothing(m, x, y, ("flow",))
    # flows out of range: the recomputing kernel, bit for bit
    yb = y * 1e250
    _, gb = m.value_and_grad(x, yb, loss="mse", keep_trace="scratch")
    got = omega(m, gb.trace, gb, hold_fprime=True)
    _, gk = m.value_and_grad(x, yb, loss="mse", keep_trace=True)
    want = omega(m, gk.trace, gk, hold_fprime=True)
    assert (got.value, got.count) == (want.value, want.count)
    for k, a in want.grads().items():
        np.testing.assert_array_equal(got.grads()[k], a, err_msg=k)


@pytest.mark.parametrize(("cell", "G"), [("lstm", 4), ("gru", 3)])
def test_stacked_kernel_python_body_agrees_with_the_compiled_kernel(cell, G):
    """Three layers (V the whole-state flow): see _python_body_agrees."""
    m = _stack(3, n=2, seed=11, scale=1.3, cell=cell)
    x, y = _stack_data(5, 3, 12)
    _, g = m.value_and_grad(x, y, loss="mse", keep_trace="scratch")
    parts = OM._stacked_bptt_parts(m, g.trace, g, True)
    _python_body_agrees(parts, np.ascontiguousarray(g.flow[1:].reshape(15, -1)), 3, (3, G * 2, 2))
