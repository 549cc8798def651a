"""The kernels' vectorisable tanh, sech², σ and σ′ against mpmath at 40 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory.cells import _helper_kernels as K


@pytest.fixture(autouse=True)
def _forty_digits():
    """The references of this module are computed to 40 digits."""
    with mpmath.workdps(40):
        yield

_FINITE = st.floats(-800.0, 800.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _ulps_rel(got: float, want: mpmath.mpf) -> float:
    if want == 0:
        return abs(got)
    return float(abs((mpmath.mpf(got) - want) / want))


def _run(code: int, prime: bool, x: float) -> float:
    src = np.array([x])
    dst = np.empty(1)
    (K.activate_prime if prime else K.activate)(code, src, dst)
    return float(dst[0])


@given(_FINITE)
def test_tanh_and_sech2_relative_accuracy(x):
    """|tanh_k(x) − tanh(x)| ≤ 4ε|tanh x| and |sech²_k(x) − sech² x| ≤ 8ε sech² x
    wherever the true value is a normal float (40-digit mpmath reference)."""
    t_true = mpmath.tanh(x)
    s_true = mpmath.sech(x) ** 2
    eps = np.finfo(float).eps
    if abs(t_true) > 1e-300:
        assert _ulps_rel(_run(0, False, x), t_true) <= 4 * eps
    if s_true > 1e-300:
        assert _ulps_rel(_run(0, True, x), s_true) <= 8 * eps


@given(_FINITE)
def test_sigmoid_and_derivative_relative_accuracy(x):
    """σ(x) = 1/(1+e^{−x}) and σ′(x) = e^{−x}/(1+e^{−x})² to a few ε relative
    (mpmath reference; σ′ is not formed as σ(1−σ), which cancels even at 40 digits)."""
    s_true = 1 / (1 + mpmath.exp(-x))
    d_true = mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2
    eps = np.finfo(float).eps
    if s_true > 1e-300:
        assert _ulps_rel(_run(1, False, x), s_true) <= 4 * eps
    if d_true > 1e-300:
        assert _ulps_rel(_run(1, True, x), d_true) <= 8 * eps


@pytest.mark.parametrize("code", [0, 1])
def test_special_values_propagate(code):
    """NaN stays NaN (an explosion is never hidden); ±inf saturate; f′(±inf) = 0;
    tanh keeps the sign of zero."""
    src = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    f = np.empty(5)
    fp = np.empty(5)
    K.activate(code, src, f)
    K.activate_prime(code, src, fp)
    assert np.isnan(f[0]) and np.isnan(fp[0])
    assert f[1] == 1.0 and f[2] == (-1.0 if code == 0 else 0.0)
    assert fp[1] == 0.0 and fp[2] == 0.0
    if code == 0:
        assert f[3] == 0.0 and not np.signbit(f[3])
        assert f[4] == 0.0 and np.signbit(f[4])
        assert fp[3] == 1.0
    else:
        assert f[3] == 0.5 and fp[3] == 0.25


_FINITE32 = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)


def _run32(code: int, prime: bool, x: float) -> float:
    src = np.array([x], dtype=np.float32)
    dst = np.empty(1, dtype=np.float32)
    (K.activate_prime if prime else K.activate)(code, src, dst)
    return float(dst[0])


@given(_FINITE32)
def test_float32_path_relative_accuracy(x):
    """float32 arrays take the single-precision path: tanh, sech², σ and σ′ are
    within a few float32 ε of the 40-digit values wherever those are normal floats."""
    eps = float(np.finfo(np.float32).eps)
    e = mpmath.exp(-x)
    for code, prime, want in (
        (0, False, mpmath.tanh(x)),
        (0, True, mpmath.sech(x) ** 2),
        (1, False, 1 / (1 + e)),
        (1, True, e / (1 + e) ** 2),
    ):
        if abs(want) > 1e-37:
            assert _ulps_rel(_run32(code, prime, x), want) <= 4 * eps, (code, prime)


def test_float32_special_values():
    """NaN propagates and ±inf saturate on the float32 path too."""
    src = np.array([np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    f = np.empty(4, dtype=np.float32)
    fp = np.empty(4, dtype=np.float32)
    K.activate_both(0, src, f, fp)
    assert np.isnan(f[0]) and np.isnan(fp[0])
    assert f[1] == 1 and f[2] == -1 and fp[1] == 0 and fp[2] == 0
    assert f[3] == 0 and fp[3] == 1


@given(_FINITE)
def test_second_derivative_relative_accuracy(x):
    """``f″`` of :func:`activate_row` against 40-digit mpmath: tanh″ = −2 tanh·sech²
    within 16ε relative; σ″ = −σ′ tanh(x/2) (= σ′(1 − 2σ), the form the kernel
    uses) within 16ε of σ″ plus 4ε·σ′ (the rounding of 1 − 2σ near x = 0),
    wherever the true value is a normal float."""
    eps = np.finfo(float).eps
    src = np.array([x])
    for code, want, slack in (
        (K.ACT_TANH, -2 * mpmath.tanh(x) * mpmath.sech(x) ** 2, 0.0),
        (K.ACT_SIGMOID, -mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2 * mpmath.tanh(x / 2),
         mpmath.exp(-abs(x)) / (1 + mpmath.exp(-abs(x))) ** 2),
    ):
        out = np.full(3, np.nan)
        K.activate_row(code, src, out[0:1], out[1:2], out[2:3], K.WANT_F | K.WANT_FPRIME | K.WANT_FSECOND)
        if abs(want) > 1e-300:
            err = abs(mpmath.mpf(float(out[2])) - want)
            assert err <= 16 * eps * abs(want) + 4 * eps * slack, (code, x, float(out[2]), float(want))


@pytest.mark.parametrize("code", [0, 1, 2, 3])
@pytest.mark.parametrize("want", [1, 2, 4, 3, 6, 7])
def test_activate_row_writes_only_what_is_requested(code, want):
    """Each requested output equals the one-output helpers' (f, f′) or the closed
    form (f″; 0 for identity and ReLU); an output not requested keeps its contents."""
    src = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 40.0])
    f, fp, fpp = (np.full(6, 7.5) for _ in range(3))
    K.activate_row(code, src, f, fp, fpp, want)
    ref_f = np.empty(6)
    ref_fp = np.empty(6)
    K.activate(code, src, ref_f)
    K.activate_prime(code, src, ref_fp)
    ref_fpp = {0: -2 * ref_f * ref_fp, 1: ref_fp * (1 - 2 * ref_f)}.get(code, np.zeros(6))
    for bit, got, ref in ((K.WANT_F, f, ref_f), (K.WANT_FPRIME, fp, ref_fp), (K.WANT_FSECOND, fpp, ref_fpp)):
        if want & bit:
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_array_equal(got, np.full(6, 7.5))
    # identity and ReLU by their definitions (ReLU′(0) = 0, PyTorch's convention)
    if code == 2 and want & K.WANT_F:
        np.testing.assert_array_equal(f, src)
    if code == 3 and want & K.WANT_FPRIME:
        np.testing.assert_array_equal(fp, (src > 0).astype(float))


@pytest.mark.parametrize("leaky", [True, False])
def test_leaky_update_is_eq14(leaky):
    """``out = α ⊙ prev + (1 − α) ⊙ g`` entry by entry (Eq. 14), in fractions;
    without leak ``out = g``."""
    from fractions import Fraction

    rng = np.random.default_rng(3)
    prev, g = rng.normal(size=(2, 3, 4))
    alpha = np.array([0.0, 0.25, 0.5, 1.0])
    out = np.empty((3, 4))
    K.leaky_update(out, prev, g, alpha, leaky)
    for b in range(3):
        for i in range(4):
            a = Fraction(alpha[i])
            want = a * Fraction(prev[b, i]) + (1 - a) * Fraction(g[b, i]) if leaky else Fraction(g[b, i])
            assert abs(Fraction(out[b, i]) - want) <= abs(want) * Fraction(2.3e-16) * 2


def test_pow2_is_exact():
    """``pow2(k) = 2^k`` exactly for −1074 ≤ k ≤ 0, subnormals included (its two
    factors are built by ``bits_as_float`` from exponent fields); 2^-1075 rounds
    to 0, ties to even."""
    from fractions import Fraction

    from rnntheory import _vecmath as V

    for k in (0, -1, -52, -1022, -1023, -1074):
        assert Fraction(float(V.pow2(np.int64(k)))) == Fraction(1, 2 ** -k)
    assert float(V.pow2(np.int64(-1075))) == 0.0
