"""Gradient clipping (Eq. 13; Pascanu et al. 2013, Alg. 1) keeps its guarantees.

The oracle for the global norm is :func:`math.hypot` over every entry, which
Python computes with its own overflow/underflow-safe, correctly scaled algorithm
(independent of the power-of-two scaling used in ``rnntheory``).
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import ElmanGrads, ElmanRNN
from rnntheory.remedies import (
    ClipInfo,
    ValueClipInfo,
    clip_by_norm,
    clip_by_value,
    global_norm,
)

# --------------------------------------------------------------------- helpers


@st.composite
def grad_dicts(draw, dtype=np.float64, log10_scale=(-8, 8), min_size=1):
    """1–3 named float arrays (0-d to 2-d, possibly empty), entries in ±10^k."""
    count = draw(st.integers(1, 3))
    scale = 10.0 ** draw(st.integers(*log10_scale))
    out = {}
    for i in range(count):
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=min_size, max_side=4))
        a = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 1.0, width=32)))
        out[f"p{i}"] = np.asarray(a * scale, dtype=dtype)
    return out


def hypot_norm(grads) -> float:
    """Reference ‖g‖: math.hypot over every entry (float64)."""
    return math.hypot(*(float(v) for a in grads.values() for v in np.ravel(a)))


def nonzero(grads) -> bool:
    return any(np.any(a != 0) for a in grads.values())


def same(a, b) -> bool:
    """Bitwise equality of two dicts of arrays (dtype, shape, NaN included)."""
    return list(a) == list(b) and all(
        isinstance(a[k], np.ndarray)
        and isinstance(b[k], np.ndarray)
        and a[k].dtype == b[k].dtype
        and a[k].shape == b[k].shape
        and a[k].tobytes() == b[k].tobytes()
        for k in a
    )


thresholds = st.floats(1e-6, 1e6)

# ------------------------------------------------------------------ global norm


@given(grad_dicts(log10_scale=(-300, 300)))
def test_global_norm_matches_hypot(g):
    """‖g‖ = sqrt(Σ_tensors Σ_i g_i²) over all tensors together, to a few ulp,
    at every magnitude from 1e-300 to 1e300 (where naive Σ g_i² over- or underflows)."""
    ref = hypot_norm(g)
    got = global_norm(g)
    if ref == 0:
        assert got == 0.0
    else:
        assert got == pytest.approx(ref, rel=1e-14, abs=0)


@pytest.mark.parametrize("value", [1e200, 1e-200, 1e300, 1e-300, 5e-324, 1.7e308])
@pytest.mark.parametrize("n", [1, 4, 9, 1000])
def test_global_norm_overflow_underflow_safe(value, n):
    """N equal entries v have ‖g‖ = v·√N: no overflow at v = 1e200 (v² = inf),
    no underflow at v = 1e-200 (v² = 0), subnormal entries included; beyond
    the float64 range (1.7e308·√N) the norm is +inf, not NaN."""
    g = {"W": np.full(n, value)}
    expected = value * math.sqrt(n)
    got = global_norm(g)
    if math.isinf(expected):
        assert got == math.inf
    else:
        assert got == pytest.approx(expected, rel=4e-16 if value > 1e-300 else 1e-10)
        assert got > 0


def test_global_norm_exact_small_cases():
    """‖(3, 4)‖ = 5 across two tensors; no tensors or empty tensors give 0."""
    assert global_norm({"a": np.array([[3.0]]), "b": np.array([4.0])}) == 5.0
    assert global_norm({}) == 0.0
    assert global_norm({"a": np.zeros((0, 3))}) == 0.0
    assert global_norm({"a": np.zeros((2, 2))}) == 0.0


# ------------------------------------------------------------- clip_by_norm


@given(grad_dicts(), thresholds)
def test_clip_output_norm_is_min_of_norm_and_threshold(g, tau):
    """‖clip(g)‖ = min(‖g‖, τ) to relative 1e-14, and never exceeds τ
    (Eq. 13: the rescaled gradient τ g/‖g‖ has norm exactly τ)."""
    out, info = clip_by_norm(g, tau)
    n_in, n_out = hypot_norm(g), hypot_norm(out)
    assert info.norm == pytest.approx(n_in, rel=1e-14, abs=0)
    assert n_out == pytest.approx(min(n_in, tau), rel=1e-14, abs=0)
    assert global_norm(out) <= tau
    assert info.clipped == (info.norm > tau)
    assert info.finite and info.threshold == tau


@given(grad_dicts(), thresholds)
def test_clip_keeps_direction(g, tau):
    """clip(g) = c·g with c = info.scale ∈ (0, 1]: every entry is scaled by the
    same positive factor (signs and zeros kept), so the direction is unchanged."""
    out, info = clip_by_norm(g, tau)
    c = info.scale
    assert 0 < c <= 1
    if info.clipped:
        assert c == pytest.approx(tau / info.norm, rel=1e-14)
    for k in g:
        assert np.array_equal(np.sign(out[k]), np.sign(g[k]))
        np.testing.assert_allclose(out[k], c * g[k], rtol=1e-14, atol=0)


@given(grad_dicts(), thresholds)
def test_clip_is_idempotent(g, tau):
    """clip(clip(g)) = clip(g) bitwise: after clipping ‖g‖ ≤ τ, and below τ
    clipping is the identity."""
    once, _ = clip_by_norm(g, tau)
    twice, info2 = clip_by_norm(once, tau)
    assert same(once, twice)
    assert not info2.clipped


@given(grad_dicts(), st.floats(1.0, 1e3))
def test_clip_is_identity_below_threshold(g, factor):
    """If ‖g‖ ≤ τ the output equals the input bitwise (Eq. 13 does nothing),
    in new arrays: the input is never aliased or modified. (‖g‖ as computed:
    τ = ‖g‖ exactly is included.)"""
    tau = global_norm(g) * factor
    if tau == 0:
        tau = 1.0
    before = {k: a.copy() for k, a in g.items()}
    out, info = clip_by_norm(g, tau)
    assert same(out, g) and same(g, before)
    assert not info.clipped and info.scale == 1.0
    assert all(out[k] is not g[k] for k in g)


def test_clip_at_threshold_exactly_is_identity():
    """At ‖g‖ = τ the rescaling τ/‖g‖ = 1 is the identity; the input comes back bitwise."""
    g = {"W": np.array([3.0, 4.0])}
    out, info = clip_by_norm(g, 5.0)
    assert same(out, g) and not info.clipped and info.norm == 5.0


@pytest.mark.parametrize("shape", [(0,), (3,), (2, 2)])
def test_clip_zero_gradient_unchanged(shape):
    """g = 0 is returned unchanged with norm 0 and scale 1: no 0/0 (a
    RuntimeWarning would fail the test under filterwarnings=error)."""
    g = {"W": np.zeros(shape), "b": -np.zeros(2)}
    out, info = clip_by_norm(g, 1.0)
    assert same(out, g)
    assert info == ClipInfo(norm=0.0, threshold=1.0, clipped=False, scale=1.0, finite=True)
    assert clip_by_norm({}, 1.0) == ({}, info)


@pytest.mark.parametrize(
    ("value", "n", "tau"),
    [
        (1e200, 16, 1.0),  # ‖g‖² overflows
        (1e-200, 16, 1e-201),  # ‖g‖² underflows
        (1e300, 4, 1e-300),  # τ/‖g‖ = 5e-601 underflows
        (1.7e308, 4, 2.0),  # ‖g‖ itself is beyond float64
        (5e-324, 4, 5e-324),  # subnormal entries
    ],
)
def test_clip_extreme_magnitudes(value, n, tau):
    """Clipping stays exact where ‖g‖², τ/‖g‖ or ‖g‖ itself leave the float64
    range: the output is (τ/√N, …) to rounding, since (v, …, v) has norm v√N."""
    g = {"W": np.full(n, value)}
    out, info = clip_by_norm(g, tau)
    assert info.clipped and info.finite
    expected = tau / math.sqrt(n)
    rel = 1e-15 if value > 1e-300 else 0.5
    np.testing.assert_allclose(out["W"], expected, rtol=rel)
    assert global_norm(out) <= tau


def test_clip_float32_keeps_dtype_and_bound():
    """float32 gradients stay float32; ‖clip(g)‖ ≤ τ exactly and = τ to float32 rounding."""
    rng = np.random.default_rng(0)
    g = {"W": rng.normal(size=(5, 5)).astype(np.float32) * 100, "b": np.ones(5, np.float32)}
    out, info = clip_by_norm(g, 1.0)
    assert {k: a.dtype for k, a in out.items()} == {"W": np.float32, "b": np.float32}
    assert info.clipped and global_norm(out) <= 1.0
    assert global_norm(out) == pytest.approx(1.0, rel=1e-6)


def test_clip_accepts_grads_record():
    """An ElmanGrads record (from BPTT) is clipped over all of its parameter
    tensors together (not the flow) and comes back as a dict of those tensors."""
    m = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=2.0, seed=1)
    x = np.random.default_rng(1).normal(size=(30, 2))
    _, grads = m.value_and_grad(x, np.zeros(30, dtype=int))
    assert isinstance(grads, ElmanGrads)
    params = grads.params()
    tau = 0.5 * hypot_norm(params)
    out, info = clip_by_norm(grads, tau)
    assert list(out) == ["W_hh", "W_hx", "b_h", "W_yh", "b_y"]
    assert info.norm == pytest.approx(hypot_norm(params), rel=1e-14)
    assert hypot_norm(out) == pytest.approx(tau, rel=1e-14)
    for k in out:
        np.testing.assert_allclose(out[k], 0.5 * params[k], rtol=1e-14, atol=1e-300)


# -------------------------------------------------------------- non-finite


@given(
    grad_dicts(min_size=1),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.data(),
)
def test_nonfinite_gradients_returned_unchanged(g, bad, data):
    """A NaN or ±inf entry anywhere: both clippers return the gradients
    unchanged (NaN stays NaN, inf stays inf, the finite entries untouched) with
    finite = False, clipped = False; the norm is NaN (a NaN entry) or inf.
    Never are NaN/inf turned into zeros or finite numbers: the training loop
    must see the explosion and apply its fallback."""
    key = data.draw(st.sampled_from(sorted(g)))
    a = g[key].copy()
    if a.size == 0:
        a = np.zeros(1)
    flat = a.reshape(-1)
    flat[data.draw(st.integers(0, flat.size - 1))] = bad
    g[key] = flat.reshape(a.shape)
    out, info = clip_by_norm(g, 1e-3)
    assert same(out, g)
    assert not info.finite and not info.clipped and info.scale == 1.0
    assert (math.isnan(info.norm)) if math.isnan(bad) else info.norm == math.inf
    assert math.isnan(global_norm(g)) == math.isnan(bad)
    out_v, info_v = clip_by_value(g, 1e-3)
    assert same(out_v, g)
    assert not info_v.finite and not info_v.clipped and info_v.n_clipped == 0


# -------------------------------------------------------------- clip_by_value


@given(grad_dicts(), thresholds)
def test_clip_by_value_bounds_each_entry(g, limit):
    """Every entry of the output lies in [−ℓ, ℓ]; entries inside are unchanged
    bitwise; entries outside become sign(g_i)·ℓ; the norm is ≤ ℓ·√N."""
    out, info = clip_by_value(g, limit)
    n = sum(a.size for a in g.values())
    changed = 0
    for k, a in g.items():
        inside = np.abs(a) <= limit
        assert np.all(np.abs(out[k]) <= limit)
        assert np.array_equal(out[k][inside], a[inside])
        assert np.array_equal(out[k][~inside], np.sign(a[~inside]) * limit)
        changed += int(np.count_nonzero(~inside))
    assert info.n_clipped == changed and info.clipped == (changed > 0)
    assert hypot_norm(out) <= limit * math.sqrt(n) * (1 + 1e-15)
    assert info.max_abs == max((float(np.max(np.abs(a))) for a in g.values() if a.size), default=0.0)


def test_clip_by_value_is_a_different_operation():
    """Element-wise clipping changes the direction whenever it acts, and does not
    bound the norm by ℓ: g = (3, 0.5), ℓ = 1 gives (1, 0.5), not parallel to g,
    with norm √1.25 > 1; norm clipping gives (0.986…, 0.164…) ∥ g with norm 1."""
    g = {"W": np.array([3.0, 0.5])}
    by_value, vinfo = clip_by_value(g, 1.0)
    by_norm, _ = clip_by_norm(g, 1.0)
    assert np.array_equal(by_value["W"], [1.0, 0.5])
    assert vinfo == ValueClipInfo(limit=1.0, max_abs=3.0, n_clipped=1, clipped=True, finite=True)
    cos = by_value["W"] @ g["W"] / (global_norm(by_value) * global_norm(g))
    assert cos < 0.98  # the direction turned by more than 11°
    cos_norm = by_norm["W"] @ g["W"] / (global_norm(by_norm) * global_norm(g))
    assert cos_norm == pytest.approx(1.0, rel=1e-15)
    assert global_norm(by_value) == pytest.approx(math.sqrt(1.25))
    assert global_norm(by_norm) == pytest.approx(1.0, rel=1e-15)


def test_clip_by_value_float32_stays_within_limit():
    """For float32 the limit is rounded towards zero, so |out| ≤ ℓ holds exactly."""
    g = {"W": np.array([1.0, -1.0], np.float32)}
    out, _ = clip_by_value(g, 0.1)
    assert out["W"].dtype == np.float32
    assert np.all(np.abs(out["W"].astype(np.float64)) <= 0.1)


# ------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("func", "kwargs", "exc", "match"),
    [
        (clip_by_norm, {"threshold": 0.0}, ValueError, r"`threshold` must be > 0\.0, got 0\.0"),
        (clip_by_norm, {"threshold": -1.0}, ValueError, r"`threshold` must be > 0\.0, got -1\.0"),
        (clip_by_norm, {"threshold": math.nan}, ValueError, r"`threshold` must be finite, got nan"),
        (clip_by_norm, {"threshold": math.inf}, ValueError, r"`threshold` must be finite, got inf"),
        (clip_by_norm, {"threshold": -math.inf}, ValueError, r"`threshold` must be finite"),
        (clip_by_norm, {"threshold": True}, TypeError, r"`threshold` must be a real number"),
        (clip_by_norm, {"threshold": "1"}, TypeError, r"`threshold` must be a real number, got '1'"),
        (clip_by_value, {"limit": 0.0}, ValueError, r"`limit` must be > 0\.0, got 0\.0"),
        (clip_by_value, {"limit": math.nan}, ValueError, r"`limit` must be finite, got nan"),
        (clip_by_norm, {"threshold": 1.0, "grads": [1.0]}, TypeError, r"`grads` must be a dict"),
        (global_norm, {"grads": np.ones(3)}, TypeError, r"`grads` must be a dict"),
        (clip_by_norm, {"threshold": 1.0, "grads": {"W": np.ones(2, int)}}, TypeError,
         r"`grads\['W'\]` must have dtype float32 or float64, got dtype int"),
        (clip_by_norm, {"threshold": 1.0, "grads": {"W": ["a"]}}, TypeError,
         r"`grads\['W'\]` must be a real floating-point array"),
        (clip_by_norm, {"threshold": 1.0, "grads": {1: np.ones(2)}}, TypeError,
         r"`grads` keys must be parameter names \(str\), got 1"),
    ],
)
def test_bad_arguments(func, kwargs, exc, match):
    """Bad thresholds (≤ 0, NaN, ±inf, non-numbers) and bad gradients raise,
    naming the argument, showing the value, saying what was expected."""
    kwargs = {"grads": {"W": np.ones(2)}, **kwargs}
    with pytest.raises(exc, match=match):
        func(**kwargs)


# ------------------------------------------------------------------ PyTorch


def _torch():
    return torch_or_skip()


def _torch_clip(g, tau):
    torch = _torch()
    params = []
    for a in g.values():
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64))
        p.grad = torch.tensor(a)
        params.append(p)
    total = float(torch.nn.utils.clip_grad_norm_(params, tau))
    return total, {k: p.grad.numpy().copy() for k, p in zip(g, params, strict=True)}


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("norm", "tau", "torch_deficit"),
    [
        (10.0, 1.0, 1e-7),  # large gradient: torch is 1e-7 (relative) short of τ
        (1e-5, 1e-6, 1e-6 / (1e-5 + 1e-6)),  # tiny gradient: torch is 9.1 % short of τ
        (1.0, 1.0, 1e-6 / (1.0 + 1e-6)),  # ‖g‖ = τ: torch still rescales, we do not
    ],
)
def test_torch_clip_grad_norm_divides_by_norm_plus_eps(norm, tau, torch_deficit):
    """PyTorch's clip_grad_norm_ scales by min(1, τ/(‖g‖ + 1e-6)), so its output
    norm is τ‖g‖/(‖g‖ + 1e-6): relative deficit 1e-6/(‖g‖ + 1e-6) below τ,
    negligible for large gradients, 9 % at ‖g‖ = 1e-5. Eq. 13 (ours) gives τ
    exactly, and the identity at ‖g‖ = τ. Both agree on the pre-clip norm and
    on the direction."""
    rng = np.random.default_rng(3)
    raw = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=4)}
    s = norm / hypot_norm(raw)
    g = {k: a * s for k, a in raw.items()}
    total, theirs = _torch_clip(g, tau)
    ours, info = clip_by_norm(g, tau)
    assert total == pytest.approx(info.norm, rel=1e-13)
    assert hypot_norm(theirs) == pytest.approx(tau * info.norm / (info.norm + 1e-6), rel=1e-12)
    deficit = 1 - hypot_norm(theirs) / tau
    assert deficit == pytest.approx(torch_deficit, rel=1e-6)
    assert hypot_norm(ours) == pytest.approx(min(info.norm, tau), rel=1e-14)
    for k in g:  # same direction: torch's output is a positive multiple of ours
        ratio = (theirs[k] / ours[k]).ravel()
        np.testing.assert_allclose(ratio, 1 - torch_deficit, rtol=1e-9)


@pytest.mark.oracle
def test_torch_turns_nan_gradient_into_all_nan():
    """With one NaN entry PyTorch (error_if_nonfinite=False, the default)
    multiplies every gradient by a NaN coefficient, so the finite entries are
    lost too; ours returns them unchanged with info.finite = False."""
    g = {"W": np.array([1.0, math.nan]), "b": np.array([2.0, 3.0])}
    _, theirs = _torch_clip(g, 1.0)
    assert np.isnan(theirs["b"]).all()
    ours, info = clip_by_norm(g, 1.0)
    assert np.array_equal(ours["b"], [2.0, 3.0]) and not info.finite
