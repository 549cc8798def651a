"""Private Numba kernel for :func:`rnntheory.remedies.clip_by_norm`: a sum of
squares with a rigorous error bound.

``sumsq_compensated`` adds ``Σ (x_i 2^-e)²`` for one tensor to a running
compensated sum: each square is split exactly into ``p + err`` (Dekker's
TwoProduct) and each addition into ``s + q`` (Knuth's TwoSum), so
``s + Σ(q + err)`` is the sum of the squares *exactly*; the terms ``q`` and
``err`` are summed into ``c`` (Ogita, Rump & Oishi 2005, "Accurate sum and dot
product", Algorithm Dot2), with TwoSum again, whose errors ``r`` are summed
into ``d`` in float64; ``Σ |r|`` is kept too, so ``|d − Σ r| ≤ γ_{2N} Σ |r|``
bounds what the computed ``s + c + d`` lost. The
scaling by ``2^-e`` (largest |entry| in [1/2, 1)) is exact wherever the result
is a normal number; entries below ``2^-480`` after scaling are only counted
(their squares, below ``2^-960`` each, are bounded, not summed), so every
TwoProduct is exact and ``Σ (x_i 2^-e)²`` lies in
``[s + c + d − γ a, s + c + d + γ a + small·2^-960]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SPLIT = 134217729.0  # 2^27 + 1: Dekker's splitter for float64
_SMALL = 2.0**-480  # below this a scaled entry's square might not split exactly


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _two_sum(a, b):
    """``(s, r)`` with ``s = fl(a + b)`` and ``a + b = s + r`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _add_square(y, s, c, d, a):
    """One step of the cascade for a scaled entry ``y`` with ``|y| ≥ 2^-480``."""
    p = y * y
    t = _SPLIT * y
    hi = t - (t - y)
    lo = y - hi
    err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo  # y² = p + err exactly
    s, q = _two_sum(s, p)
    c, r1 = _two_sum(c, q)
    c, r2 = _two_sum(c, err)
    return s, c, d + (r1 + r2), a + (abs(r1) + abs(r2))


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def sumsq_compensated(x, e, acc):
    """Add ``Σ (x_i 2^-e)²`` of the flat array ``x`` to ``acc``.

    ``acc`` (float64, length 5) holds ``[s, c, d, a, small]``: the sum is
    ``s + c + D`` exactly, where ``c`` accumulates the error terms ``q`` and
    ``err`` with TwoSum too and ``D`` is the exact sum of *its* rounding
    errors, ``d`` their float64 sum and ``a`` the sum of their magnitudes (so
    ``|d − D| ≤ γ_{2N+8} a``; ``a = 0`` when no addition to ``c`` rounded, as
    for ‖(3, 4)‖² = 25); ``small`` counts the entries left out because
    ``|x_i 2^-e| < 2^-480``. Four interleaved cascades (entries ``i mod 4``)
    keep the processor busy; they are merged with TwoSum at the end, their
    errors going the same way.
    """
    k1 = -e // 2
    f1 = math.ldexp(1.0, k1)  # 2^-e as two factors in the normal range
    f2 = math.ldexp(1.0, -e - k1)
    s0 = s1 = s2 = s3 = 0.0
    c0 = c1 = c2 = c3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    a0 = a1 = a2 = a3 = 0.0
    small = 0.0
    n = x.size
    n4 = n - n % 4
    for i in range(0, n4, 4):
        y0 = (np.float64(x[i]) * f1) * f2
        y1 = (np.float64(x[i + 1]) * f1) * f2
        y2 = (np.float64(x[i + 2]) * f1) * f2
        y3 = (np.float64(x[i + 3]) * f1) * f2
        if min(min(abs(y0), abs(y1)), min(abs(y2), abs(y3))) >= _SMALL:
            s0, c0, d0, a0 = _add_square(y0, s0, c0, d0, a0)
            s1, c1, d1, a1 = _add_square(y1, s1, c1, d1, a1)
            s2, c2, d2, a2 = _add_square(y2, s2, c2, d2, a2)
            s3, c3, d3, a3 = _add_square(y3, s3, c3, d3, a3)
            continue
        for j in range(i, i + 4):
            xj = np.float64(x[j])
            y = (xj * f1) * f2
            if abs(y) >= _SMALL:
                s0, c0, d0, a0 = _add_square(y, s0, c0, d0, a0)
            elif xj != 0.0:  # (a nonzero entry may even have scaled to 0)
                small += 1.0
    for j in range(n4, n):
        xj = np.float64(x[j])
        y = (xj * f1) * f2
        if abs(y) >= _SMALL:
            s0, c0, d0, a0 = _add_square(y, s0, c0, d0, a0)
        elif xj != 0.0:
            small += 1.0
    # merge the lanes and the running totals: s + c + (exact errors) is kept exact
    s, c, d, a = acc[0], acc[1], acc[2], acc[3]
    for sj, cj, dj, aj in ((s0, c0, d0, a0), (s1, c1, d1, a1), (s2, c2, d2, a2), (s3, c3, d3, a3)):
        s, q = _two_sum(s, sj)
        c, r1 = _two_sum(c, q)
        c, r2 = _two_sum(c, cj)
        d += dj + (r1 + r2)
        a += aj + (abs(r1) + abs(r2))
    acc[0] = s
    acc[1] = c
    acc[2] = d
    acc[3] = a
    acc[4] += small
