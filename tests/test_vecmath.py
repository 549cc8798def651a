"""The kernels' vectorisable tanh, sech², σ and σ′ against mpmath at 40 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory.cells import _elman_kernels as K

mpmath.mp.dps = 40

_FINITE = st.floats(-800.0, 800.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _ulps_rel(got: float, want: mpmath.mpf) -> float:
    if want == 0:
        return abs(got)
    return float(abs((mpmath.mpf(got) - want) / want))


def _run(code: int, prime: bool, x: float) -> float:
    src = np.array([x])
    dst = np.empty(1)
    (K._activate_prime if prime else K._activate)(code, src, dst)
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
    K._activate(code, src, f)
    K._activate_prime(code, src, fp)
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
    (K._activate_prime if prime else K._activate)(code, src, dst)
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
    K._activate_both(0, src, f, fp)
    assert np.isnan(f[0]) and np.isnan(fp[0])
    assert f[1] == 1 and f[2] == -1 and fp[1] == 0 and fp[2] == 0
    assert f[3] == 0 and fp[3] == 1
