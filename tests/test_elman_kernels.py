"""The Numba forward and BPTT kernels against independent references.

Oracles: ``tests/naive.py`` (loops written from Eqs. 2–8 and 14), central finite
differences of the loss, and complex-step differentiation of a complex-capable
copy of the naive loss. None of them calls the kernels under test.
"""

from __future__ import annotations

import itertools
import zlib

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import ElmanRNN
from rnntheory import strategies as rst
from rnntheory._oracles import (
    central_gradient,
    central_jacobian,
    complex_step_gradient,
    complex_step_jacobian,
)

FORMS = ("standard", "pascanu")
ALPHAS = (None, "scalar", "vector")
ACTS = ("tanh", "sigmoid", "identity", "relu")
LOSSES = ("xent", "mse")
PARAMS = ("W_hh", "W_hx", "b_h", "W_yh", "b_y")


# ----------------------------------------------------------------------------- helpers
def seed_of(*key):
    """A reproducible seed from a tuple of labels (``hash`` of str is salted)."""
    return zlib.crc32(repr(key).encode())


def rel_err(a, b, floor=0.0):
    """Norm-wise relative error ``max|a − b| / max(max|b|, floor)`` (``b`` is the oracle).

    ``floor`` is for results that are zero up to rounding (a cancellation), whose
    relative error is meaningless; it defaults to a purely relative comparison.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, floor)
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    if scale == 0.0:
        return diff
    return diff / scale


def make_model(rng, *, n_in=2, n=4, n_out=3, act="tanh", form="standard", alpha=None,
               dtype=np.float64, w_scale=1.2):
    W = rng.normal(0.0, w_scale / np.sqrt(n), (n, n))
    U = rng.normal(0.0, 1.0, (n, n_in))
    b = rng.normal(0.0, 0.5, n)
    V = c = None
    if n_out is not None:
        V = rng.normal(0.0, 1.0, (n_out, n))
        c = rng.normal(0.0, 0.5, n_out)
    if alpha == "scalar":
        a = 0.35
    elif alpha == "vector":
        a = rng.uniform(0.0, 1.0, n).astype(dtype)
    else:
        a = None

    def cast(v):
        return None if v is None else np.asarray(v, dtype=dtype)

    return ElmanRNN(cast(W), cast(U), cast(b), cast(V), cast(c), activation=act, form=form,
                    alpha=a)


def make_targets(rng, model, kind, T, batch=None):
    shape = (T,) if batch is None else (T, batch)
    if kind == "xent":
        return rng.integers(0, model.n_out, shape)
    return rng.normal(0.0, 1.0, (*shape, model.n_out))


def make_mask(rng, T, batch=None):
    shape = (T,) if batch is None else (T, batch)
    m = rng.uniform(0.2, 1.5, shape)
    m[rng.uniform(size=shape) < 0.35] = 0.0
    m.flat[0] = 0.0  # at least one masked step
    return m


def masked_targets(y, mask, kind):
    """Targets at masked steps replaced by garbage the loss must ignore (−1 for xent)."""
    y = y.copy()
    y[mask == 0] = -1 if kind == "xent" else 1e6
    return y


# ----------------------------------------------------------------------------- vs naive
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("form", FORMS)
def test_forward_and_bptt_match_naive_float64(form, alpha, act, loss, masked):
    """Forward (Eqs. 2, 3, 14) and BPTT (Eqs. 5–8) equal the loop reference to 1e-10.

    Single sequence with ``h_0 ≠ 0``; for a batch, sequence b of the batched trace
    equals the single-sequence trace of sequence b, the batch loss is the sum of
    the per-sequence losses and every batch gradient is the sum of the
    per-sequence gradients (flows are per sequence).
    """
    seed = seed_of((form, alpha, act, loss, masked))
    rng = np.random.default_rng(seed)
    T, B = 7, 3
    m = make_model(rng, act=act, form=form, alpha=alpha)
    x = rng.normal(0.0, 1.0, (T, B, m.n_in))
    h0 = rng.normal(0.0, 0.5, (B, m.n_hidden))
    y = make_targets(rng, m, loss, T, B)
    mask = make_mask(rng, T, B) if masked else None
    if masked:
        y = masked_targets(y, mask, loss)

    # single sequence
    tr = m.forward(x[:, 0], h0=h0[0])
    hs = naive.forward(m, x[:, 0], h0[0])
    assert rel_err(tr.h, hs) <= 1e-10
    _, _, _, V, c, _ = naive.params(m)
    assert rel_err(tr.y, hs[1:] @ V.T + c) <= 1e-10
    val, g = m.value_and_grad(x[:, 0], y[:, 0], loss=loss, mask=None if mask is None else mask[:, 0],
                              h0=h0[0])
    ref_val = naive.loss(m, x[:, 0], y[:, 0], loss, None if mask is None else mask[:, 0], h0[0])
    ref = naive.bptt(m, x[:, 0], y[:, 0], loss, None if mask is None else mask[:, 0], h0[0])
    assert abs(val - ref_val) <= 1e-10 * abs(ref_val)
    for name in (*PARAMS, "flow"):
        assert rel_err(getattr(g, name), ref[name]) <= 1e-10, name

    # batch
    trb = m.forward(x, h0=h0)
    assert trb.h.shape == (T + 1, B, m.n_hidden)
    assert rel_err(trb.h, naive.forward_batch(m, x, h0)) <= 1e-10
    valb, gb = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
    refs = naive.bptt_batch(m, x, y, loss, mask, h0)
    ref_vals = [
        naive.loss(m, x[:, i], y[:, i], loss, None if mask is None else mask[:, i], h0[i])
        for i in range(B)
    ]
    assert abs(valb - sum(ref_vals)) <= 1e-10 * abs(sum(ref_vals))
    for name in PARAMS:
        assert rel_err(getattr(gb, name), sum(r[name] for r in refs)) <= 1e-10, name
    assert rel_err(gb.flow, np.stack([r["flow"] for r in refs], axis=1)) <= 1e-10
    for i in range(B):
        single = m.forward(x[:, i], h0=h0[i])
        seq = trb.sequence(i)
        np.testing.assert_allclose(seq.h, single.h, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(seq.a, single.a, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(seq.y, single.y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("form", FORMS)
def test_float32_matches_naive(form, alpha, act, loss):
    """The float32 kernels agree with the float64 loop reference run on the same
    (float32-representable) parameters and inputs, to 1e-4 relative."""
    rng = np.random.default_rng(seed_of((form, alpha, act, loss, 32)))
    T, B = 6, 2
    m = make_model(rng, act=act, form=form, alpha=alpha, dtype=np.float32)
    assert m.dtype == np.float32
    x = rng.normal(0.0, 1.0, (T, B, m.n_in)).astype(np.float32)
    h0 = rng.normal(0.0, 0.5, (B, m.n_hidden)).astype(np.float32)
    y = make_targets(rng, m, loss, T, B)
    if loss == "mse":
        y = y.astype(np.float32)
    mask = make_mask(rng, T, B).astype(np.float32)
    y = masked_targets(y, mask, loss)
    tr = m.forward(x, h0=h0)
    assert tr.h.dtype == np.float32
    assert rel_err(tr.h, naive.forward_batch(m, x, h0)) <= 1e-5
    val, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
    refs = naive.bptt_batch(m, x, y, loss, mask, h0)
    ref_val = sum(
        naive.loss(m, x[:, i], y[:, i], loss, mask[:, i], h0[i]) for i in range(B)
    )
    assert abs(val - ref_val) <= 1e-4 * abs(ref_val)
    for name in PARAMS:
        assert getattr(g, name).dtype == np.float32
        assert rel_err(getattr(g, name), sum(r[name] for r in refs)) <= 1e-4, name
    assert rel_err(g.flow, np.stack([r["flow"] for r in refs], axis=1)) <= 1e-4


@pytest.mark.parametrize("form", FORMS)
def test_no_readout_and_bool_mask(form):
    """Without a readout the loss applies to ``h_t`` itself (``W_yh = I``,
    ``b_y = 0``), and a boolean mask weighs steps by 0/1."""
    rng = np.random.default_rng(11)
    m = make_model(rng, n=3, n_out=None, form=form, alpha="vector")
    T = 6
    x = rng.normal(size=(T, m.n_in))
    y = rng.normal(size=(T, 3))
    mask = np.array([True, False, True, True, False, True])
    val, g = m.value_and_grad(x, y, loss="mse", mask=mask)
    ref = naive.bptt(m, x, y, "mse", mask.astype(float))
    assert g.W_yh is None and g.b_y is None
    assert set(g.params()) == {"W_hh", "W_hx", "b_h"}
    assert abs(val - naive.loss(m, x, y, "mse", mask.astype(float))) <= 1e-12 * abs(val)
    for name in ("W_hh", "W_hx", "b_h", "flow"):
        assert rel_err(getattr(g, name), ref[name]) <= 1e-10


@pytest.mark.parametrize("form", FORMS)
def test_blas_path_matches_naive(form):
    """Large enough ``B·n·n`` to take the BLAS branch of the per-step product:
    forward and BPTT still equal the loop reference sequence by sequence."""
    rng = np.random.default_rng(5)
    n, B, T = 64, 32, 3
    m = make_model(rng, n_in=2, n=n, n_out=3, form=form, alpha="vector")
    x = rng.normal(size=(T, B, 2))
    y = rng.integers(0, 3, (T, B))
    tr = m.forward(x)
    assert rel_err(tr.h, naive.forward_batch(m, x)) <= 1e-10
    _, g = m.value_and_grad(x, y)
    refs = naive.bptt_batch(m, x, y, "xent")
    for name in PARAMS:
        assert rel_err(getattr(g, name), sum(r[name] for r in refs)) <= 1e-10, name
    assert rel_err(g.flow, np.stack([r["flow"] for r in refs], axis=1)) <= 1e-10


# ----------------------------------------------------------------------------- Hypothesis
@st.composite
def problems(draw, batch=None):
    """A drawn model (any activation, form, leak, readout) with inputs, targets, mask, h0."""
    model = draw(
        rst.elman_models(
            n_in=rst.sizes(1, 3),
            n_hidden=rst.sizes(1, 5),
            n_out=st.one_of(st.none(), rst.sizes(1, 4)),
            activation=st.sampled_from(ACTS),
            form=st.sampled_from(FORMS),
            leaky=st.booleans(),
        )
    )
    T = draw(rst.sizes(1, 10))
    x = draw(rst.input_sequences(T, model.n_in, batch=batch))
    kind = draw(st.sampled_from(LOSSES))
    shape = (T,) if batch is None else (T, batch)
    mask = None
    if draw(st.booleans()):
        mask = draw(
            st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=int(np.prod(shape)),
                     max_size=int(np.prod(shape)))
        )
        mask = np.array(mask).reshape(shape)
    if kind == "xent":
        y = np.array(
            draw(st.lists(st.integers(0, model.n_out - 1), min_size=int(np.prod(shape)),
                          max_size=int(np.prod(shape))))
        ).reshape(shape)
        if mask is not None:
            y[mask == 0] = -1
    else:
        y = draw(rst.input_sequences(T, model.n_out, batch=batch, scale=1.0))
    h0 = None
    if draw(st.booleans()):
        h0_shape = (model.n_hidden,) if batch is None else (batch, model.n_hidden)
        h0 = np.array(
            draw(st.lists(st.floats(-1, 1), min_size=int(np.prod(h0_shape)),
                          max_size=int(np.prod(h0_shape))))
        ).reshape(h0_shape)
    return model, x, y, kind, mask, h0


@given(problems())
def test_property_single_sequence_matches_naive(problem):
    """For any drawn model and sequence: ``h_t`` (Eqs. 2, 14), ``E`` (Eq. 4) and
    every ``∂E/∂θ`` and ``∂E/∂h_k`` (BPTT, Eqs. 5–8) equal the loop reference
    to 1e-10 relative (absolute below 1: a gradient that cancels to ~1e-16, e.g.
    a softmax at equal logits, has no meaningful relative error)."""
    m, x, y, kind, mask, h0 = problem
    tr = m.forward(x, h0=h0)
    assert rel_err(tr.h, naive.forward(m, x, h0)) <= 1e-10
    val, g = m.value_and_grad(x, y, loss=kind, mask=mask, h0=h0)
    ref_val = naive.loss(m, x, y, kind, mask, h0)
    assert abs(val - ref_val) <= 1e-10 * max(abs(ref_val), 1e-300)
    ref = naive.bptt(m, x, y, kind, mask, h0)
    for name, grad in g.params().items():
        assert rel_err(grad, ref[name], floor=1.0) <= 1e-10, name
    assert rel_err(g.flow, ref["flow"], floor=1.0) <= 1e-10


@given(problems(batch=3))
def test_property_batch_is_sum_of_sequences(problem):
    """Batch semantics: the loss and parameter gradients of a batch are the sums
    over its sequences; the trace and flow of sequence b are those of sequence b
    run alone (checked against the kernel's own single-sequence path and naive)."""
    m, x, y, kind, mask, h0 = problem
    val, g = m.value_and_grad(x, y, loss=kind, mask=mask, h0=h0)
    tr = m.forward(x, h0=h0)
    total = 0.0
    sums = {name: np.zeros_like(v) for name, v in g.params().items()}
    for b in range(3):
        hb = None if h0 is None else h0[b]
        mb = None if mask is None else mask[:, b]
        vb, gbb = m.value_and_grad(x[:, b], y[:, b], loss=kind, mask=mb, h0=hb)
        total += vb
        for name in sums:
            sums[name] += getattr(gbb, name)
        assert rel_err(g.flow[:, b], gbb.flow, floor=1.0) <= 1e-12
        np.testing.assert_allclose(tr.sequence(b).h, naive.forward(m, x[:, b], hb), rtol=1e-10,
                                   atol=1e-12)
        ref = naive.bptt(m, x[:, b], y[:, b], kind, mb, hb)
        assert rel_err(gbb.flow, ref["flow"], floor=1.0) <= 1e-10
    assert abs(val - total) <= 1e-12 * max(abs(total), 1e-300)
    for name, s in sums.items():
        assert rel_err(getattr(g, name), s, floor=1.0) <= 1e-12, name


# ----------------------------------------------------------------------------- finite differences
FD_CASES = [
    (form, alpha, act, loss)
    for form, alpha, act, loss in itertools.product(FORMS, ALPHAS, ACTS, LOSSES)
]


def _fd_setup(form, alpha, act, loss):
    rng = np.random.default_rng(seed_of(("fd", form, alpha, act, loss)))
    T = 5
    m = make_model(rng, n_in=2, n=3, n_out=3, act=act, form=form, alpha=alpha)
    x = rng.normal(size=(T, 2))
    h0 = rng.normal(0.0, 0.5, 3)
    y = make_targets(rng, m, loss, T)
    mask = np.array([1.0, 0.0, 0.7, 1.0, 1.3])
    y = masked_targets(y, mask, loss)
    return m, x, y, mask, h0


@pytest.mark.parametrize(("form", "alpha", "act", "loss"), FD_CASES)
def test_bptt_matches_finite_differences(form, alpha, act, loss):
    """``∂E/∂θ`` for every entry of every parameter, and ``∂E/∂h_0 = flow[0]``,
    equal central differences ``(E(θ+ε) − E(θ−ε))/2ε`` of the kernel's own loss
    to 1e-7 relative (float64; ``ε = 1e-5``, error O(ε²) + O(u/ε))."""
    m, x, y, mask, h0 = _fd_setup(form, alpha, act, loss)
    _, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
    eps = 1e-5
    fds = central_gradient(
        lambda q: m.replace(**q).value_and_grad(x, y, loss=loss, mask=mask, h0=h0)[0], m.params(), eps
    )
    for name, fd in fds.items():
        assert rel_err(getattr(g, name), fd) <= 1e-7, name
    fd0 = central_jacobian(lambda h: m.value_and_grad(x, y, loss=loss, mask=mask, h0=h)[0], h0, eps)
    assert rel_err(g.flow[0], fd0) <= 1e-7


@pytest.mark.parametrize(("form", "alpha", "act", "loss"), FD_CASES)
def test_flow_matches_midsequence_finite_differences(form, alpha, act, loss):
    """``flow[k] = ∂E/∂h_k`` (total derivative through every later step, including
    the direct term ``∂E_k/∂h_k``) equals central differences of
    ``Σ_{t≥k} E_t`` with ``h_k`` perturbed and the naive step rolled forward from it."""
    m, x, y, mask, h0 = _fd_setup(form, alpha, act, loss)
    _, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
    hs = naive.forward(m, x, h0)
    p = naive.param_dict(m)
    T = x.shape[0]
    eps = 1e-6
    fd = np.stack([
        central_jacobian(lambda h, k=k: naive_tail_loss(p, m, x, y, loss, mask, k, h), hs[k], eps)
        for k in range(T + 1)
    ])
    assert rel_err(g.flow, fd) <= 1e-7


def naive_tail_loss(p, m, x, y, loss, mask, k, h_k):
    if m.activation.name == "relu":
        # loss_p is written for analytic activations; relu only via the float reference.
        hs = [h_k]
        for t in range(k, x.shape[0]):
            hs.append(naive.step(m, hs[-1], x[t]))
        total = 0.0
        _, _, _, V, c, _ = naive.params(m)
        for t in range(max(k, 1), x.shape[0] + 1):
            w = mask[t - 1]
            if w == 0:
                continue
            z = V @ hs[t - k] + c
            if loss == "xent":
                zmax = z.max()
                total += w * (zmax + np.log(np.exp(z - zmax).sum()) - z[y[t - 1]])
            else:
                total += w * 0.5 * np.sum((z - y[t - 1]) ** 2)
        return total
    return naive.loss_p(p, m.activation.name, m.form, x, y, loss, mask, k_start=k, h_k=h_k)


# ----------------------------------------------------------------------------- complex step
CS_CASES = [
    (form, alpha, act, loss)
    for form, alpha, act, loss in itertools.product(FORMS, ALPHAS, ("tanh", "sigmoid", "identity"),
                                                     LOSSES)
]


@pytest.mark.parametrize(("form", "alpha", "act", "loss"), CS_CASES)
def test_naive_bptt_matches_complex_step(form, alpha, act, loss):
    """Complex step ``∂E/∂θ = Im E(θ + iε)/ε`` (ε = 1e-30, no cancellation) on the
    complex-capable reference validates naive.bptt for every parameter entry,
    ``h_0`` and every ``flow[k]`` to 1e-12; the kernels are compared with
    naive.bptt in the tests above, closing the chain."""
    m, x, y, mask, h0 = _fd_setup(form, alpha, act, loss)
    p = naive.param_dict(m)
    name_act = m.activation.name
    ref = naive.bptt(m, x, y, loss, mask, h0)
    real_val = naive.loss_p(p, name_act, form, x, y, loss, mask, h0=h0)
    assert abs(real_val - naive.loss(m, x, y, loss, mask, h0)) <= 1e-12 * abs(real_val)
    h = 1e-30
    cs = complex_step_gradient(lambda q: naive.loss_p(q, name_act, form, x, y, loss, mask, h0=h0),
                               p, h, keys=PARAMS)
    for name in PARAMS:
        assert rel_err(ref[name], cs[name]) <= 1e-12, name
    hs = naive.forward(m, x, h0)

    def tail(hk, k):
        if k == 0:
            return naive.loss_p(p, name_act, form, x, y, loss, mask, h0=hk)
        return naive.loss_p(p, name_act, form, x, y, loss, mask, k_start=k, h_k=hk)

    cs = np.stack([complex_step_jacobian(lambda hk, k=k: tail(hk, k), hs[k], h)
                   for k in range(x.shape[0] + 1)])
    assert rel_err(ref["flow"], cs) <= 1e-12


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 3.0, 30.0, 400.0, 1e6])
@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("form", FORMS)
def test_saturated_and_tiny_arguments_match_naive(form, act, scale):
    """Arguments of f from 1e-9 (tanh x ≈ x, no cancellation) to 1e6 (deep
    saturation, f′ underflows to 0): forward states and the gradients still
    equal the loop reference (NumPy's tanh/cosh) to 1e-10 relative, up to an
    absolute 1e-15 (states) / 1e-12 (gradients) of the largest entry."""
    rng = np.random.default_rng(seed_of(form, act, scale))
    n, T = 4, 6
    m = ElmanRNN(rng.normal(size=(n, n)) * min(scale, 1.0), rng.normal(size=(n, 2)) * scale,
                 np.zeros(n), rng.normal(size=(3, n)), np.zeros(3), activation=act, form=form)
    x = rng.normal(size=(T, 2))
    tr = m.forward(x)
    with np.errstate(over="ignore"):  # cosh overflows to inf in the reference: sech² = 0
        hs = naive.forward(m, x)
        y = rng.integers(0, 3, T)
        ref = naive.bptt(m, x, y, "xent")
    # naive's σ(x) = (1 + tanh(x/2))/2 is only absolutely accurate (~1e-16) where σ ≈ 0
    np.testing.assert_allclose(tr.h, hs, rtol=1e-10, atol=1e-15 * max(1.0, np.abs(hs).max()))
    _, g = m.value_and_grad(x, y)
    for name in (*PARAMS, "flow"):
        np.testing.assert_allclose(getattr(g, name), ref[name], rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(ref[name]).max()), err_msg=name)


@pytest.mark.parametrize("truncate", [None, 3, (2, 4)])
def test_results_do_not_share_memory_with_later_calls(truncate):
    """value_and_grad reuses per-thread scratch arrays for its temporaries; what
    it returns (gradients, flow, a kept trace) must be the caller's own: a second
    call with the same shapes and other inputs leaves the first results unchanged,
    and repeating the first call reproduces them bit for bit."""
    rng = np.random.default_rng(3)
    m = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=1.1, seed=4)
    x1, x2 = rng.normal(size=(2, 8, 4, 2))
    y1, y2 = rng.integers(0, 3, size=(2, 8, 4))
    _, g1 = m.value_and_grad(x1, y1, truncate=truncate, keep_trace=True)
    saved = {k: v.copy() for k, v in g1.params().items()}
    flow, h = g1.flow.copy(), g1.trace.h.copy()
    m.value_and_grad(x2, y2, truncate=truncate)
    m.value_and_grad(x2, y2, truncate=truncate, keep_trace=True)
    for k, v in g1.params().items():
        np.testing.assert_array_equal(v, saved[k])
    np.testing.assert_array_equal(g1.flow, flow)
    np.testing.assert_array_equal(g1.trace.h, h)
    _, again = m.value_and_grad(x1, y1, truncate=truncate)
    for k, v in again.params().items():
        np.testing.assert_array_equal(v, saved[k])


def test_scratch_trace_equals_kept_trace_until_the_next_call():
    """keep_trace="scratch" returns the same trace (h, a, f′) and gradients as
    keep_trace=True, bit for bit; a bad value is refused, naming `keep_trace`."""
    rng = np.random.default_rng(5)
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.2, seed=6)
    x, y = rng.normal(size=(6, 3, 2)), rng.integers(0, 3, size=(6, 3))
    _, kept = m.value_and_grad(x, y, keep_trace=True)
    _, tmp = m.value_and_grad(x, y, keep_trace="scratch")
    for name in ("h", "a", "fprime"):
        np.testing.assert_array_equal(getattr(tmp.trace, name), getattr(kept.trace, name))
    for k, v in kept.params().items():
        np.testing.assert_array_equal(tmp.params()[k], v)
    with pytest.raises(ValueError, match="`keep_trace`"):
        m.value_and_grad(x, y, keep_trace="yes")
