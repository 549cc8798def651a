"""Gradient clipping (Eq. 13; Pascanu et al. 2013, Alg. 1) keeps its guarantees.

The oracle for the global norm is :func:`math.hypot` over every entry, which
Python computes with its own overflow/underflow-safe, correctly scaled algorithm
(independent of the power-of-two scaling used in ``rnntheory``).
"""

from __future__ import annotations

import math
from fractions import Fraction

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


def exact_sumsq(grads) -> Fraction:
    """Reference ‖g‖²: the sum of the squares of every entry in exact rational arithmetic."""
    return sum((Fraction(float(v)) ** 2 for a in grads.values() for v in np.ravel(a)), Fraction(0))


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
    (Eq. 13: the rescaled gradient τ g/‖g‖ has norm exactly τ); it clips
    exactly when ‖g‖ > τ in exact arithmetic."""
    out, info = clip_by_norm(g, tau)
    n_in, n_out = hypot_norm(g), hypot_norm(out)
    assert info.norm == pytest.approx(n_in, rel=1e-14, abs=0)
    assert n_out == pytest.approx(min(n_in, tau), rel=1e-14, abs=0)
    assert global_norm(out) <= tau
    assert info.clipped == (exact_sumsq(g) > Fraction(tau) ** 2)
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
    """If ‖g‖ ≤ τ (in exact arithmetic) the output equals the input bitwise
    (Eq. 13 does nothing), in new arrays: the input is never aliased or
    modified. τ = ‖g‖ as computed is included: when that rounded value lies
    below the exact norm, the gradient is clipped (by an ulp), and its norm
    is then at most τ exactly."""
    tau = global_norm(g) * factor
    if tau == 0:
        tau = 1.0
    before = {k: a.copy() for k, a in g.items()}
    out, info = clip_by_norm(g, tau)
    assert same(g, before) and all(out[k] is not g[k] for k in g)
    if exact_sumsq(g) <= Fraction(tau) ** 2:
        assert same(out, g)
        assert not info.clipped and info.scale == 1.0
    else:
        assert factor == 1.0 and info.clipped
        assert exact_sumsq(out) <= Fraction(tau) ** 2


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
        (1e-300, 4, 2.2250738585072014e-308),  # the smallest τ: subnormal outputs
        (1.5e308, 1, 1.7e308 / 1.5),  # τ/‖g‖ near 1, m_τ/Y above 1 (τ/Y overflowed)
    ],
)
def test_clip_extreme_magnitudes(value, n, tau):
    """Clipping stays exact where ‖g‖², τ/‖g‖ or ‖g‖ itself leave the float64
    range: the output is (τ/√N, …) to a few ulp and at most τ in norm
    (exactly), since (v, …, v) has norm v√N."""
    g = {"W": np.full(n, value)}
    out, info = clip_by_norm(g, tau)
    assert info.clipped and info.finite
    expected = tau / math.sqrt(n)
    np.testing.assert_allclose(out["W"], expected, rtol=3e-15 if tau > 1e-300 else 1e-14)
    assert global_norm(out) <= tau
    assert exact_sumsq(out) <= Fraction(tau) ** 2


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
    assert vinfo == ValueClipInfo(threshold=1.0, max_abs=3.0, n_clipped=1, clipped=True, finite=True)
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
        (clip_by_norm, {"threshold": 5e-324}, ValueError,
         r"`threshold` must be at least 2\.2250738585072014e-308, the smallest normal float64 "
         r"number \(the gradients' dtype\), got 5e-324: below it the clipped entries are subnormal"),
        (clip_by_norm, {"threshold": 1e-310}, ValueError, r"`threshold` must be at least 2\.22.*got 1e-310"),
        (clip_by_norm, {"threshold": 1e-40, "grads": {"W": np.ones(2, np.float32)}}, ValueError,
         r"`threshold` must be at least 1\.1754943508222875e-38, the smallest normal float32 number"),
        (clip_by_norm, {"threshold": 1e-40, "grads": {"a": np.ones(2), "b": np.ones(1, np.float32)}},
         ValueError, r"smallest normal float32 number"),
        (clip_by_value, {"threshold": 5e-324}, ValueError, r"`threshold` must be at least 2\.22.*got 5e-324"),
        (clip_by_value, {"threshold": 1e-45, "grads": {"W": np.ones(2, np.float32)}}, ValueError,
         r"`threshold` must be at least 1\.17.*float32.*got 1e-45"),
        (clip_by_value, {"threshold": 0.0}, ValueError, r"`threshold` must be > 0\.0, got 0\.0"),
        (clip_by_value, {"threshold": math.nan}, ValueError, r"`threshold` must be finite, got nan"),
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


# ------------------------------------------------------- exact arithmetic, extremes

TINY64 = float(np.finfo(np.float64).tiny)
TINY32 = float(np.finfo(np.float32).tiny)


@st.composite
def wide_grads(draw):
    """1–3 float64 or float32 arrays whose entries span 1e±300 (float32: its
    own range), zeros and subnormals included, and a threshold from the
    smallest normal number of the dtype up to the largest float."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    info = np.finfo(dtype)
    lo_exp, hi_exp = (-1074, 1020) if dtype == np.float64 else (-149, 125)
    out = {}
    for i in range(draw(st.integers(1, 3))):
        size = draw(st.integers(0, 5))
        exps = draw(st.lists(st.integers(lo_exp, hi_exp), min_size=size, max_size=size))
        mants = draw(st.lists(st.floats(-1.0, 1.0), min_size=size, max_size=size))
        a = np.array([math.ldexp(m, e) for m, e in zip(mants, exps, strict=True)], dtype=np.float64)
        out[f"p{i}"] = a.astype(dtype)
    tiny = float(info.tiny)
    special = [t for t in (tiny, 2 * tiny, 1e-300, 1e-30, 1.0, 1e30, 1e300, float(info.max), 1.7e308)
               if t >= tiny]
    tau = draw(st.one_of(st.sampled_from(special), st.floats(tiny, 1.7e308)))
    return out, tau


@given(wide_grads())
def test_clip_by_norm_guarantee_in_exact_arithmetic(problem):
    """For every admitted τ (≥ the smallest normal number of the dtype: 5e-324
    and 1e-310 are refused by name) and gradients with entries from subnormal
    to 1e300, in exact rational arithmetic:

    * ‖clip(g, τ)‖ ≤ τ, and ‖clip(g, τ)‖ = min(‖g‖, τ) up to 24 roundings of
      the dtype and the absolute rounding of subnormal entries;
    * clip(g, τ) = g bitwise if ‖g‖ ≤ τ, else s·g with s = info.scale ∈ (0, 1],
      entry by entry to two roundings (plus twice the subnormal spacing): the
      direction is kept, signs and zeros too (an entry whose clipped value is
      below the subnormal spacing may round to 0), and the result is not all
      zero;
    * clipping twice is clipping once.

    (Before: τ = 1e-320 turned (3, 4) into a vector of norm above τ, τ = 5e-324
    into (0, 0), and a norm an ulp above τ was accepted whenever its *rounded*
    value was ≤ τ: (6, 8) clipped to 1 gave (0.6, 0.8), of norm² 1 + 4e-17.)"""
    g, tau = problem
    out, info = clip_by_norm(g, tau)
    dt_eps = max((float(np.finfo(a.dtype).eps) for a in g.values()), default=2.0**-52)
    sub = max((float(np.finfo(a.dtype).smallest_subnormal) for a in g.values()), default=5e-324)
    n = sum(a.size for a in g.values())
    T2 = Fraction(tau) ** 2
    G2, O2 = exact_sumsq(g), exact_sumsq(out)
    assert O2 <= T2
    assert {k: a.dtype for k, a in out.items()} == {k: a.dtype for k, a in g.items()}
    if G2 <= T2:
        assert same(out, g) and not info.clipped and info.scale == 1.0
    else:
        assert info.clipped and 0 <= info.scale <= 1
        flat_g = np.concatenate([np.ravel(a).astype(float) for a in g.values()])
        flat_o = np.concatenate([np.ravel(a).astype(float) for a in out.values()])
        big = int(np.argmax(np.abs(flat_g)))
        assert flat_o[big] != 0  # not all zero
        if info.scale >= 1e-290:
            sc, rel = Fraction(info.scale), Fraction(2 * dt_eps)
        else:  # τ/‖g‖ below float64's normal range (info.scale may be 0): o_max/g_max
            sc = Fraction(flat_o[big]) / Fraction(flat_g[big])
            rel = Fraction(2 * dt_eps) + 2 * Fraction(sub) / abs(Fraction(flat_o[big]))
        assert 0 < sc <= 1
        for gi, oi in zip(flat_g, flat_o, strict=True):
            want = sc * Fraction(gi)
            assert abs(Fraction(oi) - want) <= rel * abs(want) + 2 * Fraction(sub), (gi, oi)
            # signs kept, zeros kept; only a value below the subnormal spacing may round to 0
            assert np.sign(oi) == np.sign(gi) or (oi == 0 and abs(want) <= Fraction(sub))
        low = tau * (1 - 24 * dt_eps) - 4 * math.sqrt(n) * sub
        if low > 0:
            assert O2 >= Fraction(low) ** 2
    twice, info2 = clip_by_norm(out, tau)
    assert same(twice, out) and not info2.clipped


@given(wide_grads())
def test_clip_by_value_guarantee_in_exact_arithmetic(problem):
    """|clip(g, ℓ)_i| ≤ ℓ exactly for every admitted ℓ (≥ the smallest normal
    number of the dtype), entries with |g_i| ≤ ℓ unchanged bitwise, the others
    ±ℓ rounded towards zero in the dtype (never 0: float32 turned ℓ = 1e-46 into
    0 and every entry with it), entries from subnormal to 1e300."""
    g, limit = problem
    out, info = clip_by_value(g, limit)
    L = Fraction(limit)
    changed = 0
    for k, a in g.items():
        top = np.finfo(a.dtype).max
        lim_dt = a.dtype.type(limit) if limit < float(top) else top
        if Fraction(float(lim_dt)) > L:
            lim_dt = np.nextafter(lim_dt, a.dtype.type(0))
        assert lim_dt > 0
        for gi, oi in zip(np.ravel(a), np.ravel(out[k]), strict=True):
            assert abs(Fraction(float(oi))) <= L
            if abs(Fraction(float(gi))) <= Fraction(float(lim_dt)):
                assert oi == gi and np.signbit(oi) == np.signbit(gi)
            else:
                assert oi == np.sign(gi) * lim_dt
                changed += 1
    assert info.n_clipped == changed and info.clipped == (changed > 0)


@pytest.mark.parametrize(
    ("g", "tau", "deficit"),
    [
        ([6.0, 8.0], 1.0, 2e-15),  # (0.6, 0.8) has norm² 1 + 4.4e-17 > 1
        ([3.0, 4.0], 1e-300, 2e-15),
        ([1.0, 1.0, 1.0], 1.0, 2e-15),  # 1/√3 rounds up in each entry
        # subnormal outputs: their absolute rounding, 2^-1075 ≈ 2.2e-16 τ, is kept off too
        ([1e300, 1e-300, 0.0], 2.2250738585072014e-308, 1e-14),
    ],
)
def test_clipped_norm_never_exceeds_tau_exactly(g, tau, deficit):
    """Regression cases where rounding used to leave ‖clip(g)‖ above τ in exact
    arithmetic (the check compared a rounded norm with τ); now ≤ τ exactly and
    within a few roundings of τ."""
    out, info = clip_by_norm({"W": np.array(g)}, tau)
    assert info.clipped
    O2 = exact_sumsq(out)
    assert O2 <= Fraction(tau) ** 2
    assert O2 >= Fraction(tau * (1 - deficit)) ** 2


def test_clip_at_threshold_exact_tie_is_identity():
    """Exact ties are decided exactly: ‖(3, 4)‖ = 5, ‖(0.1)‖ = 0.1,
    ‖(2^-1000·3, 2^-1000·4)‖ = 5·2^-1000 and ‖(x, x, x, x)‖ = 2x are at most
    τ: unchanged."""
    for g, tau in [([3.0, 4.0], 5.0), ([0.1], 0.1), ([math.ldexp(3, -1000), math.ldexp(4, -1000)],
                                                      math.ldexp(5, -1000)),
                   ([0.000875] * 4, 0.00175)]:  # 4·x² = (2x)² exactly, but not in the float sums
        out, info = clip_by_norm({"W": np.array(g)}, tau)
        assert not info.clipped and np.array_equal(out["W"], g)


def test_clip_kernel_python_body_runs_without_the_jit():
    """With NUMBA_DISABLE_JIT=1 the compensated sum of squares runs as plain
    Python and clip_by_norm keeps its exact guarantee (bounds-checked)."""
    import os
    import subprocess
    import sys

    code = """
import math
from fractions import Fraction
import numpy as np
from rnntheory.remedies import clip_by_norm
rng = np.random.default_rng(0)
for scale in (1e-300, 1.0, 1e300):
    g = {"a": rng.normal(size=7) * scale, "b": rng.normal(size=(2, 3)).astype(np.float32)}
    tau = float(np.finfo(np.float32).tiny) * 4 if scale < 1 else 0.5
    out, info = clip_by_norm(g, tau)
    n2 = sum(Fraction(float(v)) ** 2 for a in out.values() for v in np.ravel(a))
    assert info.clipped and n2 <= Fraction(tau) ** 2, (scale, info)
print("ok")
"""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300, check=False)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


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


# ---------------------------------------------------- renamed arguments (one release)


def test_clip_by_value_limit_is_the_deprecated_spelling_of_threshold():
    """`limit=` (the old name) warns, names `threshold`, and clips exactly as
    `threshold=` does: (3, −0.5, −4) clipped to [−1, 1] is (1, −0.5, −1)."""
    g = {"W": np.array([3.0, -0.5, -4.0])}
    new, info_new = clip_by_value(g, threshold=1.0)
    with pytest.warns(DeprecationWarning, match=r"`limit` is deprecated .*use `threshold`"):
        old, info_old = clip_by_value(g, limit=1.0)
    assert np.array_equal(new["W"], [1.0, -0.5, -1.0])
    assert np.array_equal(old["W"], new["W"]) and info_old == info_new
    assert info_new.threshold == 1.0 and info_new.n_clipped == 2
    with pytest.warns(DeprecationWarning, match=r"`ValueClipInfo.limit` is deprecated.*use `threshold`"):
        assert info_new.limit == 1.0
    with pytest.warns(DeprecationWarning, match=r"`limit` is deprecated"):
        assert ValueClipInfo(limit=1.0, max_abs=4.0, n_clipped=2, clipped=True, finite=True) == info_new
    with pytest.raises(TypeError, match=r"pass `threshold` only \(`limit` is its deprecated old name\), not both"):
        clip_by_value(g, threshold=1.0, limit=1.0)
