"""Truncated BPTT of stacked models: every schedule against the double sum built
from explicit Jacobian products, and the properties that pin the semantics.

The window is on the whole state ``s_k`` (every layer; LSTM ``h`` and ``c``).
With ``e(t)`` the end of the block holding the loss ``E_t`` (``e(t) = t`` for
the sliding window ``k2``; ``min(⌈t/k1⌉·k1, T)`` for BPTT(k1, k2)), the
truncated flow and gradient are

    flow[k] = Σ_{t ≥ k, e(t) − k < k2} (J_t ⋯ J_{k+1})ᵀ ∂E_t/∂s_t,
    ∂E/∂θ  = Σ_{k = 1..T} (∂⁺s_k/∂θ)ᵀ flow[k],

``J_t = ∂s_t/∂s_{t−1}`` the stack's step Jacobian and ``∂⁺s_k/∂θ`` the
derivative of one step with ``s_{k−1}`` held fixed (through every layer at
step ``k``). The oracle builds both from complex-step Jacobians of the loop
references in tests/naive_stack.py and explicit products.
"""

from __future__ import annotations

import naive_stack as NS
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN

T, B, N_IN, N, N_OUT, L = 7, 2, 2, 3, 2, 2

KINDS = {
    "standard": ("elman", {"scheme": "gaussian", "scale": 1.1}),
    "pascanu": ("elman", {"scheme": "gaussian", "form": "pascanu"}),
    "leaky": ("elman", {"scheme": "gaussian", "alpha": 0.4, "learn_alpha": True}),
    "lstm": ("lstm", {"forget_bias": 0.5}),
    "gru": ("gru", {}),
}

SCHEDULES = [1, 2, 3, (2, 3), (2, 5), (3, 3), (2, 2), (3, 4), (4, 7), 6, T, (3, T), (T, T)]


def make(kind, n_layers=L, seed=0):
    cell, opts = KINDS[kind]
    m = StackedRNN.init(N_IN, N, N_OUT, cell=cell, n_layers=n_layers, seed=seed, **opts)
    rng = np.random.default_rng(seed + 7)
    if cell == "elman":  # nonzero biases, so they are exercised
        m = m.replace(**{f"b_h_l{i}": rng.normal(0, 0.3, N) for i in range(n_layers)})
    return m


def data(seed=1, n_layers=L, lstm=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, N_IN))
    y = rng.normal(size=(T, B, N_OUT))
    mask = rng.uniform(0.2, 1.5, size=(T, B))
    h0 = rng.uniform(-0.5, 0.5, size=(n_layers, B, N))
    c0 = rng.uniform(-0.5, 0.5, size=(n_layers, B, N)) if lstm else None
    return x, y, mask, h0, c0


def kept(t, k, schedule):
    """Whether the pair (loss E_t, state s_k) is kept: the definition of the schedules."""
    if schedule is None:
        return True
    k1, k2 = (1, schedule) if isinstance(schedule, int) else schedule
    e = min(-(-t // k1) * k1, T)
    return e - k < k2


class Oracle:
    """Complex-step step Jacobians and parameter Jacobians of one model on one batch
    (independent of the package's BPTT), reused for every schedule."""

    def __init__(self, m, x, y, mask, h0, c0):
        self.m, self.mask = m, mask
        tr = m.forward(x, h0, c0)
        s = tr.state  # (T+1, B, S)
        self.S = s.shape[-1]
        Yp = np.asarray(tr.y)
        dZ = mask[..., None] * (Yp - y)  # mse: E_t = mask·½‖y_t − target‖²
        top = (L - 1) * N * (2 if m.cell == "lstm" else 1)
        self.e = np.zeros((T, B, self.S))  # ∂E_t/∂s_t: only the top layer's h
        self.e[..., top:top + N] = dZ @ m.W_yh
        self.W_yh = np.einsum("tbo,tbn->on", dZ, tr.h[1:])
        self.b_y = dZ.sum(axis=(0, 1))
        layer_params = {k: v for k, v in m.params().items() if k not in ("W_yh", "b_y")}
        self.J = [NS.stack_jacobians(m.layers, x[:, b], s[:, b]) for b in range(B)]
        self.Jp = [NS.stack_param_jacobians(m.layers, layer_params, x[:, b], s[:, b]) for b in range(B)]
        self.keys = list(layer_params)
        self.shapes = {k: v.shape for k, v in layer_params.items()}

    def grads(self, schedule):
        flow = np.zeros((T + 1, B, self.S))
        for b in range(B):
            J = self.J[b]
            for k in range(T + 1):
                for t in range(max(k, 1), T + 1):
                    if not kept(t, k, schedule):
                        continue
                    v = self.e[t - 1, b]
                    for j in range(t, k, -1):  # (J_t ⋯ J_{k+1})ᵀ v, product written out
                        v = J[j - 1].T @ v
                    flow[k, b] += v
        params = {}
        for key in self.keys:
            g = np.zeros(int(np.prod(self.shapes[key])))
            for b in range(B):
                for k in range(1, T + 1):
                    g += self.Jp[b][key][k - 1].T @ flow[k, b]
            params[key] = g.reshape(self.shapes[key])
        params["W_yh"], params["b_y"] = self.W_yh, self.b_y
        return flow, params


@pytest.fixture(scope="module", params=list(KINDS))
def case(request):
    kind = request.param
    m = make(kind)
    x, y, mask, h0, c0 = data(lstm=m.cell == "lstm")
    return m, (x, y, mask, h0, c0), Oracle(m, x, y, mask, h0, c0)


@pytest.mark.parametrize("schedule", [None, *SCHEDULES])
def test_truncated_gradient_equals_the_double_sum(case, schedule):
    """Every schedule, every cell, batched, float64: the parameter gradients and
    the whole-state flow equal the double sum of explicit Jacobian products."""
    m, (x, y, mask, h0, c0), oracle = case
    flow_ref, params_ref = oracle.grads(schedule)
    E, g = m.value_and_grad(x, y, loss="mse", mask=mask, h0=h0, c0=c0, truncate=schedule)
    assert E == m.loss(x, y, loss="mse", mask=mask, h0=h0, c0=c0)
    got = g.params()
    assert sorted(got) == sorted(params_ref)
    for key, ref in params_ref.items():
        np.testing.assert_allclose(got[key], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=key)
    np.testing.assert_allclose(g.flow, flow_ref, rtol=0, atol=1e-12 * max(1.0, np.abs(flow_ref).max()))


def test_truncation_changes_the_gradient(case):
    """The oracle can tell schedules apart: a window of 1 step differs from full BPTT."""
    _, _, oracle = case
    _, full = oracle.grads(None)
    _, one = oracle.grads(1)
    assert max(np.abs(full[k] - one[k]).max() for k in oracle.keys) > 1e-3


@pytest.mark.parametrize("kind", list(KINDS))
def test_k2_beyond_T_is_full_bptt(kind):
    """``k2 > T`` keeps every pair: bitwise full BPTT. ``k2 = T`` keeps every pair
    with ``k ≥ 1`` (``t − k ≤ T − 1 < T``): the same parameter gradients and flows
    but at ``s_0``, where ``E_T`` (``T − 0 = k2``) is dropped."""
    m = make(kind)
    x, y, mask, h0, c0 = data(lstm=m.cell == "lstm")
    kw = {"loss": "mse", "mask": mask, "h0": h0, "c0": c0}
    _, full = m.value_and_grad(x, y, **kw)
    for k2 in (T + 1, 10 * T, (3, T + 1)):
        _, g = m.value_and_grad(x, y, truncate=k2, **kw)
        for key, v in full.params().items():
            assert np.array_equal(g.params()[key], v)
        assert np.array_equal(g.flow, full.flow)
    _, gT = m.value_and_grad(x, y, truncate=T, **kw)
    for key, v in full.params().items():
        np.testing.assert_allclose(gT.params()[key], v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gT.flow[1:], full.flow[1:], rtol=1e-12, atol=1e-14)
    # flow[0] without E_T: the full flow at s_0 less E_T's part, which a mask on step T alone gives
    only_T = np.zeros_like(mask)
    only_T[-1] = mask[-1]
    _, gE = m.value_and_grad(x, y, loss="mse", mask=only_T, h0=h0, c0=c0)
    np.testing.assert_allclose(gT.flow[0], full.flow[0] - gE.flow[0], rtol=1e-12, atol=1e-14)


@given(
    kind=st.sampled_from(list(KINDS)),
    schedule=st.sampled_from(SCHEDULES),
    a=st.floats(0, 3),
    seed=st.integers(0, 50),
)
def test_truncated_gradient_is_linear_in_the_loss_weights(kind, schedule, a, seed):
    """With the mse loss ``∂E/∂y_t`` is linear in the mask (the loss weights), and
    truncation keeps or drops whole pairs (t, k), so the truncated gradient is
    linear in the mask: ``g(m1 + a·m2) = g(m1) + a·g(m2)`` (masks non-negative)."""
    m = make(kind)
    x, y, m1, h0, c0 = data(seed=seed, lstm=m.cell == "lstm")
    m2 = np.random.default_rng(seed + 1).uniform(0, 1, size=m1.shape)
    kw = {"loss": "mse", "h0": h0, "c0": c0, "truncate": schedule}
    _, gs = m.value_and_grad(x, y, mask=m1 + a * m2, **kw)
    _, g1 = m.value_and_grad(x, y, mask=m1, **kw)
    _, g2 = m.value_and_grad(x, y, mask=m2, **kw)
    for key, v in gs.params().items():
        rhs = g1.params()[key] + a * g2.params()[key]
        np.testing.assert_allclose(v, rhs, rtol=1e-10, atol=1e-11 * max(1.0, np.abs(rhs).max()), err_msg=key)
    np.testing.assert_allclose(gs.flow, g1.flow + a * g2.flow, rtol=1e-10, atol=1e-11)


@given(kind=st.sampled_from(list(KINDS)), schedule=st.sampled_from(SCHEDULES), seed=st.integers(0, 50))
def test_one_layer_stack_is_the_cell(kind, schedule, seed):
    """A stack of one layer truncates exactly as the cell itself does (the single
    cells' schedules are checked against their own references)."""
    m = make(kind, n_layers=1, seed=seed)
    layer = m.layers[0]
    cell = type(layer)(**{**layer._init_kwargs(), "W_yh": m.W_yh, "b_y": m.b_y})
    x, y, mask, h0, c0 = data(seed=seed, n_layers=1, lstm=m.cell == "lstm")
    kw = {"loss": "mse", "mask": mask, "truncate": schedule}
    cs = {"c0": c0[0]} if c0 is not None else {}
    _, g = m.value_and_grad(x, y, h0=h0, c0=c0, **kw)
    _, gc = cell.value_and_grad(x, y, h0=h0[0], **cs, **kw)
    for key, v in gc.params().items():
        got = g.params()[key if key in ("W_yh", "b_y") else f"{key}_l0"]
        np.testing.assert_allclose(got, v, rtol=1e-12, atol=1e-14, err_msg=key)
    np.testing.assert_allclose(g.flow[..., :N], gc.flow, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.layers[0].flow, gc.flow, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["lstm", "gru", "standard"])
def test_batch_is_the_sum_of_its_sequences(kind):
    """Truncated gradients of a batch are the sums of the sequences' (single-sequence
    calls, 2-D inputs), and the flows are the sequences' flows."""
    m = make(kind)
    x, y, mask, h0, c0 = data(lstm=m.cell == "lstm")
    for schedule in (2, (2, 3), (3, 3)):
        _, g = m.value_and_grad(x, y, loss="mse", mask=mask, h0=h0, c0=c0, truncate=schedule)
        total = None
        for b in range(B):
            _, gb = m.value_and_grad(x[:, b], y[:, b], loss="mse", mask=mask[:, b], h0=h0[:, b],
                                     c0=None if c0 is None else c0[:, b], truncate=schedule)
            np.testing.assert_allclose(gb.flow, g.flow[:, b], rtol=1e-12, atol=1e-14)
            p = gb.params()
            total = p if total is None else {k: total[k] + v for k, v in p.items()}
        assert total is not None
        for key, v in g.params().items():
            np.testing.assert_allclose(v, total[key], rtol=1e-12, atol=1e-14, err_msg=key)


def test_large_windows_run_in_slices():
    """Many windows (T = 300, k2 = 3, batch 40) are taken in several slices; the
    result is the same as slice-free arithmetic: sliding window k2 = 1 is the sum
    over t of one-step gradients from the stored states."""
    m = make("gru", seed=3)
    rng = np.random.default_rng(5)
    Tl, Bl = 300, 40
    x = rng.normal(size=(Tl, Bl, N_IN))
    y = rng.normal(size=(Tl, Bl, N_OUT))
    _, g = m.value_and_grad(x, y, loss="mse", truncate=1)
    tr = m.forward(x)
    # k2 = 1: each E_t from the stored s_{t−1}, a batch of T·B one-step sequences
    h0 = np.stack([lt.h[:-1].reshape(Tl * Bl, N) for lt in tr.layers])
    _, g1 = m.value_and_grad(x.reshape(1, Tl * Bl, N_IN), y.reshape(1, Tl * Bl, N_OUT), loss="mse", h0=h0)
    for key, v in g1.params().items():
        np.testing.assert_allclose(g.params()[key], v, rtol=1e-11, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(
    ("truncate", "err", "match"),
    [
        (0, ValueError, r"`truncate` must be >= 1, got 0"),
        ((3, 2), ValueError, r"`truncate` \(k1, k2\) needs k2 >= k1, got \(3, 2\)"),
        ((1, 2, 3), ValueError, r"`truncate` must be k2 or \(k1, k2\)"),
        (2.5, TypeError, r"`truncate` must be an integer"),
        ("3", TypeError, r"`truncate` must be an integer"),
    ],
)
def test_bad_truncate(truncate, err, match):
    m = make("lstm")
    x, y, _, _, _ = data(lstm=True)
    with pytest.raises(err, match=match):
        m.value_and_grad(x, y, loss="mse", truncate=truncate)


def test_huge_T_and_extremes():
    """T = 1 with any window is full BPTT; a float32 stack truncates like float64
    (to float32 rounding); the cells exist for every layer kind tested here."""
    assert {ElmanRNN, LSTM, GRU} >= {type(make(k).layers[0]) for k in KINDS}
    m = make("lstm")
    x, y, _, h0, c0 = data(lstm=True)
    _, g_full = m.value_and_grad(x[:1], y[:1], loss="mse", h0=h0, c0=c0)
    _, g_one = m.value_and_grad(x[:1], y[:1], loss="mse", h0=h0, c0=c0, truncate=1)
    for key, v in g_full.params().items():
        np.testing.assert_allclose(g_one.params()[key], v, rtol=1e-13, atol=1e-15)
    m32 = m.replace(**{k: v.astype(np.float32) for k, v in m.params().items()})
    _, g32 = m32.value_and_grad(x.astype(np.float32), y.astype(np.float32), loss="mse",
                                h0=h0.astype(np.float32), c0=c0.astype(np.float32), truncate=(2, 3))
    _, g64 = m.value_and_grad(x, y, loss="mse", h0=h0, c0=c0, truncate=(2, 3))
    for key, v in g64.params().items():
        assert g32.params()[key].dtype == np.float32
        np.testing.assert_allclose(g32.params()[key], v, rtol=1e-4, atol=1e-5)


def _within_step(layers, s_prev, s_k, x_t, l, h, n):
    """``s_k`` with layer ``l``'s ``h`` replaced by ``h`` and the layers above it
    recomputed at the same step (their previous states from ``s_prev``)."""
    sizes = [NS.state_size(m) for m in layers]
    offs = np.cumsum([0, *sizes])
    out = s_k.astype(complex)
    out[offs[l]:offs[l] + n] = h
    inp = h
    for i in range(l + 1, len(layers)):
        s = NS.cell_step(layers[i], s_prev[offs[i]:offs[i + 1]].astype(complex), inp)
        out[offs[i]:offs[i + 1]] = s
        inp = s[:n]
    return out


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("schedule", [2, (2, 3), (3, 3), None])
def test_layer_flows_count_the_layers_above(kind, schedule):
    """Every layer's own ``flow[k] = ∂E/∂h^l_k`` (the path through the layers above
    at step k included) is the whole state's truncated flow pulled back through
    that within-step path: ``(∂s_k/∂h^l_k)ᵀ flow[k]`` for ``k ≥ 1`` (complex step
    of the loop reference), ``flow[0]``'s part at ``k = 0``."""
    m = make(kind)
    x, y, mask, h0, c0 = data(lstm=m.cell == "lstm")
    _, g = m.value_and_grad(x, y, loss="mse", mask=mask, h0=h0, c0=c0, truncate=schedule)
    s = m.forward(x, h0, c0).state
    sz = NS.state_size(m.layers[0])
    for l in range(L):
        got = g.layers[l].flow
        np.testing.assert_allclose(got[0], g.flow[0][..., l * sz:l * sz + N], rtol=0, atol=1e-13)
        for b in range(B):
            for k in range(1, T + 1):
                hk = s[k, b, l * sz:l * sz + N]
                M = np.empty((s.shape[-1], N))
                for j in range(N):
                    e = np.zeros(N, dtype=complex)
                    e[j] = 1e-30j
                    M[:, j] = np.imag(_within_step(m.layers, s[k - 1, b], s[k, b], x[k - 1, b], l, hk + e, N)) / 1e-30
                np.testing.assert_allclose(got[k, b], M.T @ g.flow[k, b], rtol=1e-11, atol=1e-12,
                                           err_msg=f"layer {l}, step {k}")


@pytest.mark.parametrize("scale", [1e300, 5e-324, 0.0])
def test_extreme_inputs(scale):
    """Inputs of 1e300 (saturated gates), subnormal or zero: the truncated
    gradient is finite, and a window that cuts nothing is full BPTT bitwise. A
    ReLU stack whose inputs could pass the float range is refused with the
    layer named, truncated or not."""
    m = make("lstm")
    x = np.full((T, B, N_IN), scale)
    y = np.ones((T, B, N_OUT))
    _, full = m.value_and_grad(x, y, loss="mse")
    for schedule in (1, (2, 3), T + 1):
        _, g = m.value_and_grad(x, y, loss="mse", truncate=schedule)
        assert all(np.isfinite(v).all() for v in g.params().values()) and np.isfinite(g.flow).all()
    assert all(np.array_equal(g.params()[k], v) for k, v in full.params().items())
    relu = StackedRNN.init(N_IN, N, N_OUT, cell="elman", n_layers=2, scheme="identity", seed=0)
    for schedule in (None, 2):
        with pytest.raises(ValueError, match=r"^layer 0: `x` is too large for this model"):
            relu.value_and_grad(np.full((T, B, N_IN), 1e308) * 1.7, y, loss="mse", truncate=schedule)
        # layer 0 accepts 1e308 but its ReLU states overflow: layer 1 is refused with a message
        # (it raised "cannot convert float NaN to integer" from the reach check's formatting)
        with pytest.raises(ValueError, match=r"^layer 1 .*the states of layer 0 are not finite"):
            relu.value_and_grad(np.full((T, B, N_IN), 1e308), y, loss="mse", truncate=schedule)
        with pytest.raises(ValueError, match=r"^layer 1 .*the states of layer 0 are not finite"):
            relu.forward(np.full((T, B, N_IN), 1e308))
