"""Vectorisable ``exp``, ``tanh``, ``sech²`` and the logistic sigmoid for the kernels.

LLVM cannot vectorise loops that call libm's ``tanh``/``cosh``/``exp`` (no
vector math library is available to Numba's pip build), and those calls were
most of the cost of a step at h ≤ 64. These functions are pure arithmetic, so
a loop over a row vectorises. They are accurate to a few ulp in the normal
range (checked against mpmath in ``tests/test_vecmath.py``):

``exp(y)`` for ``y ≤ 0``: Cody–Waite reduction ``y = k ln 2 + r`` with
``|r| ≤ ln2/2``, ``expm1(r)`` by its Taylor polynomial to degree 14 (remainder
below 1e-19, evaluated in Estrin's scheme), and ``2^k`` written straight into
the exponent bits (an LLVM bitcast, twice as fast as building it by selects).
``expm1`` comes with it without cancellation, which keeps ``tanh`` accurate
near 0: ``tanh|x| = −expm1(−2|x|) / (1 + e^{−2|x|})`` and
``sech² x = 4 e^{−2|x|} / (1 + e^{−2|x|})²`` (no ``1 − tanh²``).

Kernels using these must be compiled with ``error_model="numpy"`` (a division
then follows IEEE rules instead of raising, which is also what a library that
studies overflow wants).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import config as numba_config
from numba import njit, types
from numba.extending import intrinsic

_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm split of ln 2: k·_LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _expm1_reduced(r):
    """``expm1(r)`` for ``|r| ≤ ln2/2``: Taylor to degree 14 in Estrin's scheme.

    Estrin's grouping (pairs, then powers r², r⁴, r⁸) shortens the chain of
    dependent operations from 28 (Horner) to about 10, which matters because
    the kernels evaluate it for a whole row at once.
    """
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    p01 = 1.0 + r * (1.0 / 2)
    p23 = 1.0 / 6 + r * (1.0 / 24)
    p45 = 1.0 / 120 + r * (1.0 / 720)
    p67 = 1.0 / 5040 + r * (1.0 / 40320)
    p89 = 1.0 / 362880 + r * (1.0 / 3628800)
    pab = 1.0 / 39916800 + r * (1.0 / 479001600)
    pcd = 1.0 / 6227020800 + r * (1.0 / 87178291200)
    q0 = p01 + r2 * p23
    q1 = p45 + r2 * p67
    q2 = p89 + r2 * pab
    return r * ((q0 + r4 * q1) + r8 * (q2 + r4 * pcd))


@intrinsic
def _bits_as_float_llvm(typingctx, bits):
    """Reinterpret the bits of an int64 (int32) as a float64 (float32).

    An LLVM ``bitcast``: no conversion, no branch, so a loop using it still
    vectorises. It lets ``2^k`` be written straight into the exponent field.
    """
    if bits == types.int64:
        sig, llty = types.float64(types.int64), ir.DoubleType()
    elif bits == types.int32:
        sig, llty = types.float32(types.int32), ir.FloatType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llty)

    return sig, codegen


def _bits_as_float_numpy(bits: Any) -> Any:
    """The same reinterpretation in NumPy, for ``NUMBA_DISABLE_JIT=1`` (pure-Python kernels)."""
    if isinstance(bits, np.int32):
        return bits.view(np.float32)
    return np.int64(bits).view(np.float64)


bits_as_float: Any = _bits_as_float_numpy if getattr(numba_config, "DISABLE_JIT", False) else _bits_as_float_llvm


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def pow2(k):
    """``2^k`` for ``−1075 ≤ k ≤ 0`` (int64), as the product of two normal powers.

    Each factor ``2^j`` (``j ≥ −538``) is built from its exponent field
    ``(j + 1023) << 52``; their product is exact wherever ``2^k`` is a float
    (and rounds like any product below the subnormal range).
    """
    k1 = k >> 1
    k2 = k - k1
    return bits_as_float((k1 + 1023) << 52) * bits_as_float((k2 + 1023) << 52)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def exp_nonpos(y):
    """``(e^y, e^y − 1)`` for ``y ≤ 0`` (``y`` below −745.5 is clamped: e^y is 0).

    NaN propagates (the clamp is written so that a NaN compares false).
    """
    y = -745.5 if y < -745.5 else y
    kf = np.floor(y * _INV_LN2 + 0.5)
    r = (y - kf * _LN2_HI) - kf * _LN2_LO
    p = _expm1_reduced(r)
    s = pow2(np.int64(kf))
    return s * (1.0 + p), s * p + (s - 1.0)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def tanh_sech2(x):
    """``(tanh x, sech² x)`` with one reduced exponential."""
    e, em1 = exp_nonpos(-2.0 * abs(x))
    inv = 1.0 / (1.0 + e)  # one division; each result is then within 1.5 ulp
    return np.copysign(-em1 * inv, x), (4.0 * e) * (inv * inv)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def sigmoid_prime(x):
    """``(σ(x), σ′(x))`` with ``σ′ = e^{−|x|}/(1 + e^{−|x|})²``."""
    e = exp_nonpos(-abs(x))[0]
    inv = 1.0 / (1.0 + e)
    s = inv if x >= 0 else e * inv
    return s, e * (inv * inv)


# ----------------------------------------------------------------------------- float32
# The same functions in single precision, for float32 models: every constant is
# a float32, so the arithmetic stays in float32 (16 lanes of AVX-512 instead of
# 8) and the polynomial needs degree 7 only (remainder below 1e-8 relative on
# |r| ≤ ln2/2, under float32's ε = 6e-8). 2^k is built from its bits as above;
# e^y is 0 below y = −104 (the smallest float32 subnormal is 1.4e-45).
_F = np.float32
_INV_LN2_F = _F(1.4426950408889634)
_LN2_HI_F = _F(0.693359375)  # exact in 10 bits: k·_LN2_HI_F is exact for |k| < 2^14
_LN2_LO_F = _F(-2.12194440e-4)
_ONE_F = _F(1.0)
_HALF_F = _F(0.5)
_C3_F, _C4_F, _C5_F, _C6_F, _C7_F = (_F(1 / 6), _F(1 / 24), _F(1 / 120), _F(1 / 720), _F(1 / 5040))
_CLAMP_F = _F(-104.0)
_FOUR_F = _F(4.0)
_TWO_F = _F(2.0)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def exp_nonpos_f32(y):
    """``(e^y, e^y − 1)`` for float32 ``y ≤ 0`` in float32 arithmetic (NaN propagates)."""
    y = _CLAMP_F if y < _CLAMP_F else y
    kf = np.floor(y * _INV_LN2_F + _HALF_F)
    r = (y - kf * _LN2_HI_F) - kf * _LN2_LO_F
    p = r * (_ONE_F + r * (_HALF_F + r * (_C3_F + r * (_C4_F + r * (_C5_F + r * (_C6_F + r * _C7_F))))))
    k = np.int64(kf)
    k1 = k >> 1  # −150 ≤ k ≤ 0: two normal factors 2^k1 · 2^k2 (int32 bit patterns)
    k2 = k - k1
    s = bits_as_float(np.int32((k1 + 127) << 23)) * bits_as_float(np.int32((k2 + 127) << 23))
    return s * (_ONE_F + p), s * p + (s - _ONE_F)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def tanh_sech2_f32(x):
    """``(tanh x, sech² x)`` for float32 ``x`` in float32 arithmetic."""
    e, em1 = exp_nonpos_f32(-_TWO_F * abs(x))
    inv = _ONE_F / (_ONE_F + e)
    return np.copysign(-em1 * inv, x), (_FOUR_F * e) * (inv * inv)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def sigmoid_prime_f32(x):
    """``(σ(x), σ′(x))`` for float32 ``x`` in float32 arithmetic."""
    e = exp_nonpos_f32(-abs(x))[0]
    inv = _ONE_F / (_ONE_F + e)
    s = inv if x >= 0 else e * inv
    return s, e * (inv * inv)
