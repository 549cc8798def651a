"""Private Numba kernels of Pascanu's regularizer Ω (Eqs. 15–16 of the article).

The Elman kernel, :func:`omega_kernel`, takes the ``N = T·B`` terms of a trajectory as
rows of C-contiguous ``(N, n)`` arrays and computes the value of Ω and (on
request) its gradient with respect to ``W_hh`` with the flow held fixed.
``rnntheory.remedies.omega`` validates, reshapes and allocates.

Per row ``r`` (one pair ``(k, b)``): ``v = ∂E/∂h_{k+1}`` and ``u = J_{k+1}ᵀ v``
(the row vector ``v J_{k+1}``), written with ``β = 1 − α`` (``β = 1``, ``α = 0``
without leak) and ``d = f′`` at the argument of ``f``:

* standard form: ``u = α ⊙ v + Wᵀ p`` with ``p = β ⊙ d ⊙ v``;
* Pascanu's form: ``u = α ⊙ v + d ⊙ (Wᵀ p)`` with ``p = β ⊙ v``.

Stacking the rows, ``Wᵀ p`` for every term is one matrix product ``P W`` and
the gradient is one or two more (``Pᵀ G_u``, and ``Qᵀ H`` for the ``f″`` term
of the standard form, with ``Q = β ⊙ v ⊙ f″(a) ⊙ (G_u Wᵀ)``), so the cost is
two to four ``(N × n) · (n × n)`` products plus element-wise passes.

Norms and the value are accumulated in float64 whatever the dtype of the arrays.
The LSTM and GRU kernels, and those of stacked models (one per cell class, the
whole state's Jacobian taken layer by layer), follow the same plan further down.

Ω does not depend on the scale of the flow (``u`` is linear in ``v`` and each
term is a ratio), so every ``v`` is first multiplied by the power of two
``2^-e`` that brings its largest |entry| into [1/2, 1): exact, and afterwards
the arithmetic is the same as for a flow of size 1, so flows of 1e±300
give the same Ω and gradient as the flow itself (squaring a flow of 1e155
overflowed to ``inf/inf = NaN``; a flow of 1e-160 lost digits in its
subnormal squares; one of 1e-300 squared to 0 and its terms were dropped).
The threshold is compared with the unscaled ``‖v‖² = ‖v 2^-e‖²·4^e`` on
mantissas and exponents, so that comparison neither overflows nor underflows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.typed import List

from .._vecmath import bits_as_float
from ..cells._helper_kernels import (
    ACT_IDENTITY,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    WANT_F,
    WANT_FPRIME,
    WANT_FSECOND,
    activate_row,
)

GRAD_NONE = 0
GRAD_FIXED_FLOW = 1  # v held fixed; f′(a_{k+1}) follows W_hh (the f″ term)
GRAD_FIXED_FPRIME = 2  # v and f′ held fixed (Pascanu et al.'s Theano code)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _sumsq_scaled(x, f):
    """``Σ (x_i · f)²`` in float64, ``f`` a power of two (each ``x_i · f`` exact
    where it is a normal number: the sum of squares of ``x`` scaled by ``f``,
    without forming the scaled array), with eight partial sums (i mod 8) added in
    a fixed tree: eight independent chains instead of one, so the loop is not
    bound by the latency of a single running sum."""
    n = x.shape[0]
    n8 = n - n % 8
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for i in range(0, n8, 8):
        x0 = np.float64(x[i]) * f
        x1 = np.float64(x[i + 1]) * f
        x2 = np.float64(x[i + 2]) * f
        x3 = np.float64(x[i + 3]) * f
        x4 = np.float64(x[i + 4]) * f
        x5 = np.float64(x[i + 5]) * f
        x6 = np.float64(x[i + 6]) * f
        x7 = np.float64(x[i + 7]) * f
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
        s4 += x4 * x4
        s5 += x5 * x5
        s6 += x6 * x6
        s7 += x7 * x7
    t = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for i in range(n8, n):
        xi = np.float64(x[i]) * f
        t += xi * xi
    return t


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _sumsq(x):
    """``Σ x_i²`` in float64 (:func:`_sumsq_scaled` with ``f = 1``, an exact factor)."""
    return _sumsq_scaled(x, 1.0)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _abs_max(v):
    """``max_i |v_i|`` in the dtype of ``v`` (exact), with eight running maxima
    (i mod 8) so the loop is not one chain of dependent comparisons."""
    n = v.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = abs(v[0])
    n8 = n - n % 8
    for i in range(0, n8, 8):
        m0 = max(m0, abs(v[i]))
        m1 = max(m1, abs(v[i + 1]))
        m2 = max(m2, abs(v[i + 2]))
        m3 = max(m3, abs(v[i + 3]))
        m4 = max(m4, abs(v[i + 4]))
        m5 = max(m5, abs(v[i + 5]))
        m6 = max(m6, abs(v[i + 6]))
        m7 = max(m7, abs(v[i + 7]))
    mx = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for i in range(n8, n):
        mx = max(mx, abs(v[i]))
    return mx


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _scale_row(v, out):
    """``out = v · 2^-e`` with the largest |entry| of ``out`` in [1/2, 1) (exact
    where the result is a normal number); returns ``e`` (0 for ``v = 0``).

    Each ``v_i · 2^-e`` is formed in float64 and rounded once to the dtype. For
    float64, ``2^-e`` (``e`` from −1073 to 1024) is applied as two factors in
    the normal range; for float32, ``e`` lies in [−148, 129], so ``2^-e`` is one
    float64 factor and ``v_i · 2^-e`` is exact in float64: the same float32
    results as two factors, in one multiplication."""
    n = v.shape[0]
    mx = np.float64(_abs_max(v))
    if mx == 0.0:
        for i in range(n):
            out[i] = v[i]
        return 0
    e = math.frexp(mx)[1]
    if v.itemsize == 4:
        f = _pow2(-e)
        for i in range(n):
            out[i] = np.float64(v[i]) * f
        return e
    k1 = -e // 2
    f1 = _pow2(k1)
    f2 = _pow2(-e - k1)
    for i in range(n):
        out[i] = (np.float64(v[i]) * f1) * f2
    return e


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _pow2(k):
    """``2^k`` for ``−1022 ≤ k ≤ 1023``, written into the exponent bits (what
    ``math.ldexp(1.0, k)`` gives, without a library call)."""
    return bits_as_float((np.int64(k) + 1023) << 52)


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _at_least(s2, e2, threshold):
    """Whether ``s2 · 2^e2 ≥ threshold`` and ``s2 > 0`` (``s2, threshold ≥ 0``),
    decided exactly: where ``s2 · 2^e2`` is a normal float64 (``|e2| ≤ 960``
    and ``2^-60 ≤ s2 < 2^60``) it is formed, exactly, and compared; elsewhere on
    mantissas and exponents (``s2 · 2^e2`` is never formed)."""
    if s2 == 0.0:
        return False
    if threshold == 0.0:
        return True
    if -960 <= e2 <= 960 and 8.673617379884035e-19 <= s2 < 1.152921504606847e18:
        return s2 * _pow2(e2) >= threshold
    ms, es = math.frexp(s2)
    mt, et = math.frexp(threshold)
    es += e2
    if es != et:
        return es > et
    return ms >= mt


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def omega_kernel(W, WT, V, AR, FPR, HK, alpha, act, form, leaky, squared, grad_mode, threshold,
                 mask, given_mask, R, G):
    """Value of Ω and, when ``grad_mode > 0``, ``∂Ω/∂W_hh`` into ``G``.

    The rows are processed in blocks of about 16 384 entries, so the
    intermediates of a block stay in cache; the normalisation by the number of
    counted terms is applied at the end (Ω and its gradient are linear in it).

    Parameters (all arrays C-contiguous, one dtype)
    ----------
    W, WT : (n, n)
        ``W_hh`` and its transpose.
    V : (N, n)
        ``v`` for every term (rows of ``flow[1:]``).
    AR : (N, n)
        The argument of ``f`` of step ``k+1`` (``trace.a``).
    FPR : (N, n) or (0, n)
        ``f′`` of ``AR`` when the forward pass kept it; then ``f′`` is copied
        instead of recomputed (``f″``, when needed, is still computed from ``AR``).
    HK : (N, n) or (0, n)
        ``h_k`` (standard form with ``grad_mode == 1`` only).
    alpha : (n,) or (1,)
        Retention coefficients (read only when ``leaky``).
    act, form : int
        Activation code; 0 standard, 1 Pascanu's form.
    leaky, squared : bool
    grad_mode : int
        0 value only, 1 flow fixed, 2 flow and ``f′`` fixed.
    threshold : float
        A term counts when ``‖v‖² ≥ threshold`` and ``v ≠ 0`` (``‖v‖²`` of the
        unscaled ``v``, compared without forming it).
    mask : (N,) uint8
        Written with the counted terms, or read when ``given_mask``.
    R : (N,) float64
        Receives ``‖u‖/‖v‖`` (1 for a term that does not count).
    G : (n, n)
        Receives the gradient (untouched when ``grad_mode == 0``).

    Returns
    -------
    (value, count) : (float, int)
    """
    N, n = V.shape
    dt = V.dtype
    f2 = form == 0 and grad_mode == GRAD_FIXED_FLOW and act != ACT_IDENTITY and act != ACT_RELU
    have_fp = FPR.shape[0] == N
    rows = max(1, min(N, 16384 // max(n, 1)))
    P = np.empty((rows, n), dtype=dt)
    U = np.empty((rows, n), dtype=dt)
    D = np.empty((rows if form == 1 else 0, n), dtype=dt)
    E = np.empty((rows if f2 else 0, n), dtype=dt)  # β ⊙ v ⊙ f″(a)
    Y = np.empty((rows if f2 else 0, n), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    A64 = np.empty(n, dtype=np.float64)  # the argument of f, in float64 (f′, f″ in float64)
    VS = np.empty((rows, n), dtype=dt)  # v · 2^-e, largest |entry| in [1/2, 1)
    if grad_mode > 0:
        G[:, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(0, N, rows):
        m = min(rows, N - r0)
        Pb = P[:m]
        Ub = U[:m]
        # pass 1: ‖v‖², the counted terms, p = β ⊙ d ⊙ v (standard) or β ⊙ v
        for j in range(m):
            r = r0 + j
            v = VS[j]
            e = _scale_row(V[r], v)
            a = AR[r]
            p = P[j]
            nv2 = _sumsq(v)
            NV[j] = nv2
            if not given_mask:
                mask[r] = 1 if _at_least(nv2, 2 * e, threshold) else 0
            if mask[r] != 0:
                count += 1
            if form == 0 and have_fp and not f2:
                # f′ kept by the forward pass: p = β ⊙ f′ ⊙ v in one pass
                fr = FPR[r]
                if leaky:
                    for i in range(n):
                        p[i] = fr[i] * ((1.0 - alpha[i]) * v[i])
                else:
                    for i in range(n):
                        p[i] = fr[i] * v[i]
            elif form == 0:
                er = E[j] if f2 else E[0:0].reshape(0)
                for i in range(n):
                    A64[i] = a[i]
                if f2:
                    activate_row(act, A64, p, p, er, WANT_FPRIME | WANT_FSECOND)
                else:
                    activate_row(act, A64, p, p, p, WANT_FPRIME)
                if leaky:
                    for i in range(n):
                        p[i] *= (1.0 - alpha[i]) * v[i]
                    if f2:
                        for i in range(n):
                            er[i] *= (1.0 - alpha[i]) * v[i]
                else:
                    for i in range(n):
                        p[i] *= v[i]
                    if f2:
                        for i in range(n):
                            er[i] *= v[i]
            else:
                if have_fp:
                    D[j, :] = FPR[r]
                else:
                    for i in range(n):
                        A64[i] = a[i]
                    activate_row(act, A64, D[j], D[j], D[j], WANT_FPRIME)
                if leaky:
                    for i in range(n):
                        p[i] = (1.0 - alpha[i]) * v[i]
                else:
                    for i in range(n):
                        p[i] = v[i]
        np.dot(Pb, W, Ub)  # row j: (Wᵀ p_j)ᵀ
        # pass 2: u, the ratio, the term, and ∂Ω_k/∂(Wᵀp) (unnormalised) into U
        for j in range(m):
            r = r0 + j
            u = U[j]
            v = VS[j]
            if form == 1:
                for i in range(n):
                    u[i] *= D[j, i]
            if leaky:
                for i in range(n):
                    u[i] += alpha[i] * v[i]
            nu2 = _sumsq(u)
            if mask[r] == 0:
                R[r] = 1.0
                if grad_mode > 0:
                    u[:] = 0.0
                continue
            s = nu2 / NV[j]
            rat = np.sqrt(s)
            R[r] = rat
            if squared:
                total += (s - 1.0) * (s - 1.0)
                coef = 2.0 * (s - 1.0) / NV[j]  # dΩ_k/d‖u‖²
            else:
                total += (rat - 1.0) * (rat - 1.0)
                # dΩ_k/d‖u‖² = (r − 1)/(‖u‖‖v‖); 0 at u = 0, where Ω_k is not differentiable
                coef = (rat - 1.0) / (np.sqrt(nu2) * np.sqrt(NV[j])) if nu2 > 0.0 else 0.0
            if grad_mode > 0:
                c2 = 2.0 * coef  # ∂Ω_k/∂u = 2 coef u
                if form == 1:
                    for i in range(n):
                        u[i] = c2 * np.float64(u[i]) * D[j, i]
                else:
                    for i in range(n):
                        u[i] = c2 * np.float64(u[i])
        if grad_mode > 0:
            G += np.dot(Pb.T, Ub)
            if f2:
                Yb = Y[:m]
                np.dot(Ub, WT, Yb)  # row j: (W g_u)ᵀ
                for j in range(m):
                    y = Y[j]
                    er = E[j]
                    for i in range(n):
                        y[i] = er[i] * y[i]
                G += np.dot(Yb.T, HK[r0:r0 + m])
    scale = 1.0 / count if count > 0 else 0.0
    if grad_mode > 0:
        G *= scale
    return total * scale, count


# --------------------------------------------------------------------------
# Gated cells. The terms are rows ``r = k·B + b`` of time-major arrays; a
# kernel call takes the rows ``r_lo ≤ r < r_hi`` (a thread's range) in blocks.
#
# LSTM (gates (i, f, g, o) at the pre-activations ``a`` of step k+1, ``c = c_k``,
# ``c′ = c_{k+1}``), whole state ``s = (h, c)``, ``v = (v_h, v_c)``:
#   δ = v_c + v_h ⊙ o ⊙ tanh′(c′)                  (what reaches c′)
#   D = [δ g σ′(a_i), δ c σ′(a_f), δ i tanh′(a_g), v_h tanh(c′) σ′(a_o)]
#   u_h = D W_hh,  u_c = δ ⊙ f                      (u = J_{k+1}ᵀ v)
# On the h-to-h path ``v_c = 0`` and ``u = u_h``.
# GRU (``a_r, a_z, a_n`` and ``m = W_hn h_k + b_hn``, ``r, z, ñ = tanh(a_n)``):
#   p = v ⊙ (1 − z) ⊙ tanh′(a_n)
#   D = [p m σ′(a_r), v (h_k − ñ) σ′(a_z), p r]
#   u = z ⊙ v + D W_hh
# The gradient with the flow held fixed is ``Dᵀ G_u`` (W_hh as it multiplies D)
# plus, unless the gates are held (grad_mode 2), ``Āᵀ H_k`` with ``Ā`` the
# derivative of Ω_k with respect to the pre-activations ``W_hh h_k + …``
# (through every gate value, derivative and, for the LSTM, c′), by reverse
# differentiation of the formulas above.
# --------------------------------------------------------------------------


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _term(nu2, nv2, squared):
    """``(Ω_k, ratio, c2)`` with ``∂Ω_k/∂u = c2 · u``."""
    s = nu2 / nv2
    rat = np.sqrt(s)
    if squared:
        return (s - 1.0) * (s - 1.0), rat, 4.0 * (s - 1.0) / nv2
    coef = (rat - 1.0) / (np.sqrt(nu2) * np.sqrt(nv2)) if nu2 > 0.0 else 0.0
    return (rat - 1.0) * (rat - 1.0), rat, 2.0 * coef


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_omega_kernel(W, WT, PRE, CP, CN, HK, VH, FC, B, path_state, squared, grad_mode, threshold,
                      mask, given_mask, R, G, r_lo, r_hi):
    """Ω of the LSTM over the rows ``r_lo..r_hi`` and (``grad_mode > 0``) its gradient into ``G``.

    ``W (4n, n)`` is ``weight_hh``, ``WT`` its transpose; ``PRE (N, 4n)`` the
    gate pre-activations of step k+1, ``CP``/``CN (N, n)`` ``c_k``/``c_{k+1}``,
    ``HK (N, n)`` ``h_k`` (read when ``grad_mode == 1``), ``VH (N, n)``
    ``flow[k+1]``, ``FC ((T+1)·B, n)`` the cell's ``flow_c`` (read when
    ``path_state``): ``v_c`` of row ``r`` is ``FC[r+B] − VH[r] ⊙ o ⊙ tanh′(c_{k+1})``,
    the whole-state derivative at ``c_{k+1}`` (``σ(a_f) ⊙ flow_c`` of the next
    step under full BPTT, 0 at the last step, to rounding). Returns the
    unnormalised sum of the counted terms and their number; ``G`` receives the
    unnormalised gradient.
    """
    n = W.shape[1]
    n4 = 4 * n
    dt = PRE.dtype
    exact = grad_mode == GRAD_FIXED_FLOW
    rows = max(1, min(max(r_hi - r_lo, 1), 16384 // max(n4, 1)))
    D = np.empty((rows, n4), dtype=dt)
    U = np.empty((rows, n), dtype=dt)
    UC = np.empty((rows, n), dtype=dt)
    VS = np.empty((rows, 2 * n), dtype=dt)
    VAL = np.empty((rows, n4), dtype=dt)
    DER = np.empty((rows, n4), dtype=dt)
    SEC = np.empty((rows if exact else 1, n4), dtype=dt)
    TC = np.empty((rows, n), dtype=dt)
    DTC = np.empty((rows, n), dtype=dt)
    DEL = np.empty((rows, n), dtype=dt)
    GD = np.empty((rows if exact else 0, n4), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    raw = np.empty(2 * n, dtype=dt)
    if grad_mode > 0:
        G[:, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        for j in range(m):
            r = r0 + j
            p = PRE[r]
            val = VAL[j]
            der = DER[j]
            if exact:
                sec = SEC[j]
                activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], sec[:2 * n],
                             WANT_F | WANT_FPRIME | WANT_FSECOND)
                activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:3 * n], der[2 * n:3 * n], sec[2 * n:3 * n],
                             WANT_F | WANT_FPRIME | WANT_FSECOND)
                activate_row(ACT_SIGMOID, p[3 * n:], val[3 * n:], der[3 * n:], sec[3 * n:],
                             WANT_F | WANT_FPRIME | WANT_FSECOND)
            else:
                activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], der[:2 * n], WANT_F | WANT_FPRIME)
                activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:3 * n], der[2 * n:3 * n], der[2 * n:3 * n],
                             WANT_F | WANT_FPRIME)
                activate_row(ACT_SIGMOID, p[3 * n:], val[3 * n:], der[3 * n:], der[3 * n:], WANT_F | WANT_FPRIME)
            tc = TC[j]
            dtc = DTC[j]
            activate_row(ACT_TANH, CN[r], tc, dtc, dtc, WANT_F | WANT_FPRIME)
            # v = (flow[k+1], flow_c[k+1] − flow[k+1] ⊙ o ⊙ tanh′(c_{k+1})): the
            # cell's flow_c counts the path c_{k+1} → h_{k+1}; what is left is what
            # reaches c_{k+1} through c_{k+2} (the products as the BPTT kernel forms them)
            vh_r = VH[r]
            for i in range(n):
                raw[i] = vh_r[i]
            if path_state:
                fc_r = FC[r + B]
                for i in range(n):
                    raw[n + i] = fc_r[i] - vh_r[i] * val[3 * n + i] * dtc[i]
            else:
                for i in range(n):
                    raw[n + i] = 0.0
            v = VS[j]
            e = _scale_row(raw, v)
            nv2 = _sumsq(v)
            NV[j] = nv2
            if not given_mask:
                mask[r] = 1 if _at_least(nv2, 2 * e, threshold) else 0
            if mask[r] != 0:
                count += 1
            d = D[j]
            dl = DEL[j]
            cp = CP[r]
            for i in range(n):
                vh = v[i]
                de = v[n + i] + vh * val[3 * n + i] * dtc[i]
                dl[i] = de
                d[i] = de * val[2 * n + i] * der[i]
                d[n + i] = de * cp[i] * der[n + i]
                d[2 * n + i] = de * val[i] * der[2 * n + i]
                d[3 * n + i] = vh * tc[i] * der[3 * n + i]
                UC[j, i] = de * val[n + i]
        Db = D[:m]
        Ub = U[:m]
        np.dot(Db, W, Ub)
        for j in range(m):
            r = r0 + j
            u = U[j]
            uc = UC[j]
            nu2 = _sumsq(u)
            if path_state:
                nu2 += _sumsq(uc)
            if mask[r] == 0:
                R[r] = 1.0
                if grad_mode > 0:
                    u[:] = 0.0
                    uc[:] = 0.0
                continue
            term, rat, c2 = _term(nu2, NV[j], squared)
            total += term
            R[r] = rat
            if grad_mode > 0:
                for i in range(n):
                    u[i] = c2 * np.float64(u[i])
                if path_state:
                    for i in range(n):
                        uc[i] = c2 * np.float64(uc[i])
                else:
                    uc[:] = 0.0
        if grad_mode > 0:
            G += np.dot(Db.T, Ub)
            if exact:
                GDb = GD[:m]
                np.dot(Ub, WT, GDb)  # ∂Ω_k/∂D
                for j in range(m):
                    r = r0 + j
                    gd = GD[j]
                    if mask[r] == 0:
                        gd[:] = 0.0
                        continue
                    v = VS[j]
                    val = VAL[j]
                    der = DER[j]
                    sec = SEC[j]
                    tc = TC[j]
                    dtc = DTC[j]
                    dl = DEL[j]
                    cp = CP[r]
                    gc = UC[j]
                    for i in range(n):
                        vh = v[i]
                        de = dl[i]
                        gi, gf, gg, go = gd[i], gd[n + i], gd[2 * n + i], gd[3 * n + i]
                        si, sf, tg, so = val[i], val[n + i], val[2 * n + i], val[3 * n + i]
                        dsi, dsf, dtg, dso = der[i], der[n + i], der[2 * n + i], der[3 * n + i]
                        gdel = gi * tg * dsi + gf * cp[i] * dsf + gg * si * dtg + gc[i] * sf
                        # c′ enters tanh(c′) (in d_o) and tanh′(c′) (in δ); tanh″ = −2 tanh tanh′
                        gcn = go * vh * dso * dtc[i] + gdel * vh * so * (-2.0 * tc[i] * dtc[i])
                        gd[i] = gi * de * tg * sec[i] + gg * de * dtg * dsi + gcn * tg * dsi
                        gd[n + i] = gf * de * cp[i] * sec[n + i] + gc[i] * de * dsf + gcn * cp[i] * dsf
                        gd[2 * n + i] = gg * de * si * sec[2 * n + i] + gi * de * dsi * dtg + gcn * si * dtg
                        gd[3 * n + i] = go * vh * tc[i] * sec[3 * n + i] + gdel * vh * dtc[i] * dso
                G += np.dot(GDb.T, HK[r0:r0 + m])
    return total, count


#: The largest |e| (a row's flow scaled by 2^-e) for which :func:`omega_parts`
#: may use the BPTT pass's unscaled products: there, whatever of them underflowed
#: or overflowed would lie far below the rounding of the row's terms.
PARTS_MAX_EXPONENT_F64 = 200
PARTS_MAX_EXPONENT_F32 = 60


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def omega_parts(Ds, UHs, CCs, V, B, squared, grad, threshold, mask, R, G, r_lo, r_hi):
    """Ω with the flow and ``f′`` (the gates) held, from what a full BPTT pass
    kept: one Elman cell (standard form), LSTM or GRU, or a stack of LSTMs or
    GRUs (one cell: lists of one layer).

    BPTT has already formed every quantity that :func:`omega_kernel`,
    :func:`lstm_omega_kernel`, :func:`gru_omega_kernel` and the stacked kernels
    recompute. ``D^l (N, g·n)`` are the derivatives at the pre-activations that
    ``W^l_hh`` multiplies (Elman ``β ⊙ f′ ⊙ v``, g = 1; LSTM's four gates; GRU's
    ``r, z`` and ``W_hn h + b_hn``), and ``UH^l (N, n)`` is the part of the flow
    at ``h^l_k`` that comes through step ``k+1`` (``D^l W^l_hh``, plus ``α ⊙ v``
    for leaky units and ``z ⊙ v`` for the GRU), taken before the loss at step
    ``k`` is added: the ``h`` part of ``u = J_{k+1}ᵀ v_{k+1}``. In a stack,
    layer ``l``'s backward pass receives what layer ``l+1`` sends down at the
    same step, so ``v`` there is the flow plus what comes down, as in the
    stacked kernels. The LSTM's state also holds ``c``: ``CC^l ((T+1)·B, n)``
    is the carry, so ``u^l_c`` of row ``r`` is ``CC^l[r]`` (and ``v^l_c`` is
    ``CC^l[r+B]``); for the other cells ``CC^l`` is empty ``(0, n)``.

    ``Ds``, ``UHs``, ``CCs``: typed lists of those rows per layer; ``V (N, S)``
    the whole-state flow ``v_{k+1}`` (layer 1 first; for the LSTM ``h`` then
    ``c``), or for one LSTM cell ``(N, n)``, ``flow[k+1]`` alone (``v_c`` is
    then read from ``CC[r+B]``); ``G (L, g·n, n)``. No activation is evaluated
    and ``u`` costs no product: the value is norms, the gradient (``grad``)
    one product ``Σ D^l[r]ᵀ ḡ^l_r`` per layer.

    Each row is scaled by its own ``2^-e`` as in the kernels; ``u`` and ``ḡ``
    by the same exact power of two, so the results agree with theirs to
    rounding. A counted row with ``|e|`` above :data:`PARTS_MAX_EXPONENT_F64`
    (float32: ``_F32``) returns ``count = -1`` at once: the caller then runs
    the recomputing kernel instead. Returns the unnormalised sum of the
    counted terms and their number.
    """
    L = len(Ds)
    n = UHs[0].shape[1]
    carry = CCs[0].shape[0] > 0  # the LSTM: the state holds c
    S = (2 if carry else 1) * L * n
    own_c = carry and V.shape[1] == n  # one LSTM cell: V holds flow[k+1] alone, v_c is read from CC
    dt = V.dtype
    limit = PARTS_MAX_EXPONENT_F32 if V.itemsize == 4 else PARTS_MAX_EXPONENT_F64
    # blocks of about 64K entries of D: the gradient's product per block is then large
    # enough for BLAS to run near its peak
    rows = max(1, min(max(r_hi - r_lo, 1), 65536 // max(Ds[0].shape[1], 1)))
    VS = np.empty((rows, S), dtype=dt)
    US = np.empty((rows, n), dtype=dt)
    raw = np.empty(S if own_c else 0, dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    NU = np.empty(rows, dtype=np.float64)
    F = np.empty(rows, dtype=np.float64)  # 2^-e of each row
    C = np.empty(rows, dtype=np.float64)  # ∂Ω_k/∂u = C · u (scaled)
    cc0 = CCs[0]
    if grad:
        G[:, :, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        # v of every row scaled, the counted rows, their scales
        for j in range(m):
            r = r0 + j
            v = VS[j]
            if own_c:
                vh_r = V[r]
                vc_r = cc0[r + B]
                for i in range(n):
                    raw[i] = vh_r[i]
                    raw[n + i] = vc_r[i]
                e = _scale_row(raw, v)
                nv2 = _sumsq(v)
            else:
                # ‖v‖² at the scale 2^-e without storing the scaled row, where 2^-e is
                # one normal factor (else as the kernels do, with two)
                vr = V[r]
                mx = np.float64(_abs_max(vr))
                e = math.frexp(mx)[1] if mx > 0.0 else 0
                if -1000 <= e <= 1000:
                    nv2 = _sumsq_scaled(vr, _pow2(-e))
                else:
                    e = _scale_row(vr, v)
                    nv2 = _sumsq(v)
            NV[j] = nv2
            NU[j] = 0.0
            mask[r] = 1 if _at_least(nv2, 2 * e, threshold) else 0
            if mask[r] != 0 and (e > limit or e < -limit):
                return total, -1
            F[j] = _pow2(-e)
        # ‖u‖² of every layer at the row's scale 2^-e (one list access per layer and block)
        for l in range(L):
            uh_l = UHs[l]
            cc_l = CCs[l]
            for j in range(m):
                r = r0 + j
                if mask[r] == 0:
                    continue
                f = F[j]
                NU[j] += _sumsq_scaled(uh_l[r], f)
                if carry:
                    NU[j] += _sumsq_scaled(cc_l[r], f)
        for j in range(m):
            r = r0 + j
            if mask[r] == 0:
                R[r] = 1.0
                continue
            count += 1
            term, rat, c2 = _term(NU[j], NV[j], squared)
            total += term
            R[r] = rat
            C[j] = c2
        if grad:
            # ∂Ω_k/∂u at the unscaled u: C · 2^-e times the scaled u, so C · 2^-2e times u
            for l in range(L):
                uh_l = UHs[l]
                for j in range(m):
                    u = US[j]
                    if mask[r0 + j] == 0:
                        u[:] = 0.0
                        continue
                    c = C[j] * (F[j] * F[j])
                    uh = uh_l[r0 + j]
                    for i in range(n):
                        u[i] = np.float64(uh[i]) * c
                G[l] += np.dot(Ds[l][r0:r0 + m].T, US[:m])
    return total, count


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_omega_kernel(W, WT, PRE, HK, V, squared, grad_mode, threshold, mask, given_mask, R, G, r_lo, r_hi):
    """Ω of the GRU over the rows ``r_lo..r_hi`` and (``grad_mode > 0``) its gradient into ``G``.

    ``W (3n, n)`` is ``weight_hh``, ``WT`` its transpose; ``PRE (N, 4n)``
    the trace's ``(a_r, a_z, a_n, W_hn h_k + b_hn)`` of step k+1, ``HK (N, n)``
    ``h_k``, ``V (N, n)`` ``flow[k+1]``. Returns the unnormalised sum of the
    counted terms and their number; ``G`` receives the unnormalised gradient.
    """
    n = W.shape[1]
    n3 = 3 * n
    dt = PRE.dtype
    exact = grad_mode == GRAD_FIXED_FLOW
    rows = max(1, min(max(r_hi - r_lo, 1), 16384 // max(n3, 1)))
    D = np.empty((rows, n3), dtype=dt)
    U = np.empty((rows, n), dtype=dt)
    VS = np.empty((rows, n), dtype=dt)
    VAL = np.empty((rows, n3), dtype=dt)
    DER = np.empty((rows, n3), dtype=dt)
    SEC = np.empty((rows if exact else 1, n3), dtype=dt)
    GD = np.empty((rows if exact else 0, n3), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    if grad_mode > 0:
        G[:, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        for j in range(m):
            r = r0 + j
            v = VS[j]
            e = _scale_row(V[r], v)
            nv2 = _sumsq(v)
            NV[j] = nv2
            if not given_mask:
                mask[r] = 1 if _at_least(nv2, 2 * e, threshold) else 0
            if mask[r] != 0:
                count += 1
            p = PRE[r]
            val = VAL[j]
            der = DER[j]
            if exact:
                sec = SEC[j]
                activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], sec[:2 * n],
                             WANT_F | WANT_FPRIME | WANT_FSECOND)
                activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:], der[2 * n:], sec[2 * n:],
                             WANT_F | WANT_FPRIME | WANT_FSECOND)
            else:
                activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], der[:2 * n], WANT_F | WANT_FPRIME)
                activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:], der[2 * n:], der[2 * n:], WANT_F | WANT_FPRIME)
            d = D[j]
            hk = HK[r]
            for i in range(n):
                vi = v[i]
                q = vi * (1.0 - val[n + i]) * der[2 * n + i]
                d[i] = q * p[3 * n + i] * der[i]
                d[n + i] = vi * (hk[i] - val[2 * n + i]) * der[n + i]
                d[2 * n + i] = q * val[i]
        Db = D[:m]
        Ub = U[:m]
        np.dot(Db, W, Ub)
        for j in range(m):
            r = r0 + j
            u = U[j]
            v = VS[j]
            val = VAL[j]
            for i in range(n):
                u[i] += val[n + i] * v[i]
            nu2 = _sumsq(u)
            if mask[r] == 0:
                R[r] = 1.0
                if grad_mode > 0:
                    u[:] = 0.0
                continue
            term, rat, c2 = _term(nu2, NV[j], squared)
            total += term
            R[r] = rat
            if grad_mode > 0:
                for i in range(n):
                    u[i] = c2 * np.float64(u[i])
        if grad_mode > 0:
            G += np.dot(Db.T, Ub)
            if exact:
                GDb = GD[:m]
                np.dot(Ub, WT, GDb)  # ∂Ω_k/∂D
                for j in range(m):
                    r = r0 + j
                    gd = GD[j]
                    if mask[r] == 0:
                        gd[:] = 0.0
                        continue
                    v = VS[j]
                    val = VAL[j]
                    der = DER[j]
                    sec = SEC[j]
                    gu = U[j]
                    p = PRE[r]
                    hk = HK[r]
                    for i in range(n):
                        vi = v[i]
                        rr, z, nn = val[i], val[n + i], val[2 * n + i]
                        dr, dz, dn = der[i], der[n + i], der[2 * n + i]
                        mm = p[3 * n + i]
                        grr, gz, gn = gd[i], gd[n + i], gd[2 * n + i]
                        q = vi * (1.0 - z) * dn
                        gq = grr * mm * dr + gn * rr
                        g_z = gu[i] * vi - gq * vi * dn
                        g_an = -gz * vi * dz * dn + gq * vi * (1.0 - z) * sec[2 * n + i]
                        g_r = g_an * mm + gn * q
                        gd[i] = grr * q * mm * sec[i] + g_r * dr
                        gd[n + i] = gz * vi * (hk[i] - nn) * sec[n + i] + g_z * dz
                        gd[2 * n + i] = g_an * rr + grr * q * dr
                G += np.dot(GDb.T, HK[r0:r0 + m])
    return total, count


@njit(cache=True, fastmath={"reassoc"}, error_model="numpy", nogil=True)
def all_finite_flat(a):
    """Whether every entry of the 1-D array ``a`` is finite: ``Σ a_i · 0`` is 0
    exactly then (``inf · 0`` and ``NaN · 0`` are NaN). One vectorised pass,
    about four times faster than NumPy's sum of a float32 array; only the order
    of the additions is relaxed, which cannot turn a NaN into 0."""
    z = 0.0
    for i in range(a.shape[0]):
        z += a[i] * 0.0
    return z == 0.0


# --------------------------------------------------------------------------
# Stacked models. The whole state s = (s¹, …, s^L) (layer 1 first, an LSTM
# layer's h then c) has a block lower-triangular step Jacobian: block row l is
# A^l (the layer's own step Jacobian) on the diagonal and X^l E_h (its input
# Jacobian times the rows of h in layer l−1's state) left of it. Per row
# (term) and per block of rows:
#
# * values, top-down: w^L = v^L; u^l = A^lᵀ w^l; w^{l−1} = v^{l−1} + E_hᵀ X^lᵀ w^l.
#   Each layer forms its signal D^l at the rows of its recurrent matrix (as the
#   cells' kernels do), u^l_h = D^l W^l (+ the layer's diagonal terms) and, for
#   l ≥ 2, X^lᵀ w^l = D^l_x U^l (U^l the input weights); so every product is a
#   (rows × G·n)·(G·n × n) matrix product.
# * ḡ = ∂Ω_k/∂u = c2 · u, from the ratio ‖u‖²/‖v‖² of the whole state.
# * gradient: ∂Ω/∂W^l = D^lᵀ Ṗ^l (Ṗ^l: the tangent ḡ^l of what W^l multiplies)
#   plus, unless the gates are held, Ḋ^lᵀ P^l, with Ḋ^l the derivative of the
#   signal along the tangent (ḡ^l, E_h ω^{l−1}) of (s^l_k, x^l_{k+1}); the
#   tangents ω^l = A^l ḡ^l + X^l E_h ω^{l−1} are formed bottom-up. With the
#   gates held no tangent pass is needed (Ṗ^l reads ḡ^l alone).
#
# Weights come as (L, ·, ·) arrays (slot 0 of the input weights unused: layer
# 1's input is not part of the state); the trace as typed lists of one (N, ·)
# array per layer (a list's type, unlike a tuple's, does not carry its length:
# one compilation per dtype serves every layer count). The arithmetic is in the
# dtype of the arrays, norms and the value in float64, as for one cell.
# --------------------------------------------------------------------------


@njit(cache=True)
def layer_list(arrays):
    """A typed list of the arrays of a homogeneous tuple (one per layer): built in
    compiled code, about 4 µs, where appending from Python took 50–200 µs per call
    (a cost of every training step at small sizes). Compiled per tuple length, in
    under a second; the stacked kernels that take the list, once per dtype."""
    out = List()
    for a in arrays:
        out.append(a)
    return out


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _stack_scale_rows(V, r0, m, VS, NV, mask, threshold):
    """Each row ``v`` of ``V[r0:r0+m]`` times ``2^-e`` into ``VS``, ``‖·‖²`` into ``NV``,
    ``mask`` from the threshold on the unscaled ``‖v‖²``; returns the number counted."""
    count = 0
    for j in range(m):
        r = r0 + j
        v = VS[j]
        e = _scale_row(V[r], v)
        nv2 = _sumsq(v)
        NV[j] = nv2
        mask[r] = 1 if _at_least(nv2, 2 * e, threshold) else 0
        count += mask[r]
    return count


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _stack_terms(UA, UB, two, NV, r0, m, mask, squared, R, C2):
    """The terms of the rows ``r0..r0+m`` from ``u`` of every layer (``UA (L, rows, ·)``,
    and ``UB`` too when ``two``: an LSTM layer's ``c`` part): the ratio into ``R``, and
    ``u`` overwritten by ``ḡ = ∂Ω_k/∂u`` (0 for a term that does not count); returns
    their sum. ``C2``: a one-entry array of the dtype (the factor of ``u`` rounded once)."""
    L = UA.shape[0]
    total = 0.0
    for j in range(m):
        r = r0 + j
        if mask[r] == 0:
            R[r] = 1.0
            for l in range(L):
                UA[l, j, :] = 0.0
                if two:
                    UB[l, j, :] = 0.0
            continue
        nu2 = 0.0
        for l in range(L):
            nu2 += _sumsq(UA[l, j])
            if two:
                nu2 += _sumsq(UB[l, j])
        term, rat, c2 = _term(nu2, NV[j], squared)
        total += term
        R[r] = rat
        C2[0] = c2
        c = C2[0]
        for l in range(L):
            ua = UA[l, j]
            for i in range(ua.shape[0]):
                ua[i] = c * ua[i]
            if two:
                ub = UB[l, j]
                for i in range(ub.shape[0]):
                    ub[i] = c * ub[i]
    return total


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def stacked_elman_omega(Ws, WTs, Us, UTs, HK, AR, FPR, acts, forms, leaky, alphas, betas, V, squared, exact,
                        threshold, mask, R, G, r_lo, r_hi):
    """Ω of a stack of Elman layers over the rows ``r_lo..r_hi``, its gradient into ``G (L, n, n)``.

    ``Ws``/``Us (L, n, n)`` every layer's ``W_hh``/``W_hx`` (``Us[0]`` unused),
    ``WTs``/``UTs`` their transposes; ``HK``, ``AR``, ``FPR``: typed lists of one
    ``(N, n)`` array per layer, ``h_k``, ``a_{k+1}`` (standard form) and
    ``f′(a_{k+1})`` (or ``(0, n)`` arrays where not given; a standard layer
    reads ``AR`` when ``FPR`` is empty or ``exact``); ``acts``, ``forms``
    (0 standard, 1 Pascanu's), ``leaky`` per layer, ``alphas (L, n)`` and
    ``betas = 1 − alphas``; ``V (N, L·n)`` the flow ``v_{k+1}`` of each row.
    ``exact``: the gradient with ``f′`` following ``W_hh`` (the ``f″`` terms),
    else ``f′`` held. Returns the unnormalised sum of the counted terms and
    their number.
    """
    L = Ws.shape[0]
    n = Ws.shape[2]
    S = L * n
    dt = V.dtype
    rows = max(1, min(max(r_hi - r_lo, 1), 16384 // max(S, 1)))
    VS = np.empty((rows, S), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    UA = np.empty((L, rows, n), dtype=dt)  # u of each layer, then ḡ
    D = np.empty((L, rows, n), dtype=dt)
    WB = np.empty((L, rows, n), dtype=dt)
    FP = np.empty((L, rows, n), dtype=dt)  # f′(a) (standard) or f′(h_k) (Pascanu's form)
    F2 = np.empty((L if exact else 1, rows, n), dtype=dt)  # f″(a) (standard, exact)
    T1 = np.empty((rows, n), dtype=dt)
    T2 = np.empty((rows, n), dtype=dt)
    DOWN = np.empty((rows, n), dtype=dt)
    UP = np.empty((rows, n), dtype=dt)
    PD = np.empty((rows, n), dtype=dt)
    C2 = np.empty(1, dtype=dt)
    G[:, :, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        count += _stack_scale_rows(V, r0, m, VS, NV, mask, threshold)
        # values, top-down
        for l in range(L - 1, -1, -1):
            hk_l = HK[l]  # one list access per layer and block, not per row
            ar_l = AR[l]  # one list access per layer and block, not per row
            fpr_l = FPR[l]  # one list access per layer and block, not per row
            o = l * n
            code = acts[l]
            al = alphas[l]
            be = betas[l]
            lk = leaky[l]
            std = forms[l] == 0
            kept = (not exact) and fpr_l.shape[0] > 0
            for j in range(m):
                r = r0 + j
                w = WB[l, j]
                vs = VS[j]
                if l < L - 1:
                    dn = DOWN[j]
                    for i in range(n):
                        w[i] = vs[o + i] + dn[i]
                else:
                    for i in range(n):
                        w[i] = vs[o + i]
                d = D[l, j]
                if std:
                    if kept:
                        fp = fpr_l[r]
                    else:
                        fp = FP[l, j]
                        if exact:
                            activate_row(code, ar_l[r], fp, fp, F2[l, j], WANT_FPRIME | WANT_FSECOND)
                        else:
                            activate_row(code, ar_l[r], fp, fp, fp, WANT_FPRIME)
                    if lk:
                        for i in range(n):
                            d[i] = fp[i] * (be[i] * w[i])
                    else:
                        for i in range(n):
                            d[i] = fp[i] * w[i]
                else:
                    activate_row(code, hk_l[r], FP[l, j], FP[l, j], FP[l, j], WANT_FPRIME)
                    if lk:
                        for i in range(n):
                            d[i] = be[i] * w[i]
                    else:
                        for i in range(n):
                            d[i] = w[i]
            Db = D[l, :m]
            np.dot(Db, Ws[l], UA[l, :m])
            if lk or not std:
                for j in range(m):
                    t = UA[l, j]
                    w = WB[l, j]
                    fp = FP[l, j]
                    if not std:
                        for i in range(n):
                            t[i] = fp[i] * t[i]
                    if lk:
                        for i in range(n):
                            t[i] = t[i] + al[i] * w[i]
            if l > 0:
                np.dot(Db, Us[l], DOWN[:m])
        total += _stack_terms(UA, UA, False, NV, r0, m, mask, squared, R, C2)
        # gradient, bottom-up (tangents only for the exact gradient)
        for l in range(L):
            hk_l = HK[l]  # one list access per layer and block, not per row
            al = alphas[l]
            be = betas[l]
            lk = leaky[l]
            pascanu = forms[l] == 1
            if pascanu:
                for j in range(m):
                    g = UA[l, j]
                    p = PD[j]
                    fp = FP[l, j]
                    for i in range(n):
                        p[i] = fp[i] * g[i]
                PDb = PD[:m]
            else:
                PDb = UA[l, :m]
            G[l] += np.dot(D[l, :m].T, PDb)
            if not exact:
                continue
            last = l == L - 1
            if pascanu:
                if last:
                    continue
                # ω^l = β (f′(h) ḡ Wᵀ + ω^{l−1} Uᵀ) + α ḡ
                np.dot(PDb, WTs[l], T1[:m])
                if l > 0:
                    np.dot(UP[:m], UTs[l], T2[:m])
                for j in range(m):
                    t = T1[j]
                    up = UP[j]
                    g = UA[l, j]
                    for i in range(n):
                        s = t[i] + T2[j, i] if l > 0 else t[i]
                        if lk:
                            s = be[i] * s + al[i] * g[i]
                        up[i] = s
                continue
            # standard: ȧ = ḡ Wᵀ + ω^{l−1} Uᵀ; Ḋ = β f″(a) ȧ w; ω^l = β f′(a) ȧ + α ḡ
            np.dot(PDb, WTs[l], T1[:m])
            if l > 0:
                np.dot(UP[:m], UTs[l], T2[:m])
            for j in range(m):
                ad = T1[j]
                if l > 0:
                    for i in range(n):
                        ad[i] += T2[j, i]
                fp = FP[l, j]
                f2 = F2[l, j]
                w = WB[l, j]
                dd = T2[j]
                up = UP[j]
                g = UA[l, j]
                if lk:
                    for i in range(n):
                        dd[i] = f2[i] * ad[i] * (be[i] * w[i])
                        up[i] = be[i] * fp[i] * ad[i] + al[i] * g[i]
                else:
                    for i in range(n):
                        dd[i] = f2[i] * ad[i] * w[i]
                        up[i] = fp[i] * ad[i]
            G[l] += np.dot(T2[:m].T, hk_l[r0:r0 + m])
    return total, count


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def stacked_lstm_omega(Ws, WTs, Us, UTs, HK, CP, CN, PRE, V, squared, exact, threshold, mask, R, G,
                       r_lo, r_hi):
    """Ω of a stack of LSTM layers over the rows ``r_lo..r_hi``, its gradient into ``G (L, 4n, n)``.

    ``Ws``/``Us (L, 4n, n)`` every layer's ``weight_hh``/``weight_ih`` (``Us[0]``
    unused), ``WTs``/``UTs`` their transposes; ``HK``, ``CP``, ``CN``: typed lists of
    ``(N, n)`` arrays ``h_k``, ``c_k``, ``c_{k+1}`` per layer, ``PRE`` of
    ``(N, 4n)`` pre-activations; ``V (N, 2Ln)`` the whole-state flow. Per layer
    (``w = (w_h, w_c)``): ``δ = w_c + w_h ⊙ o ⊙ tanh′(c′)``,
    ``D = [δ g σ′(a_i), δ c σ′(a_f), δ i tanh′(a_g), w_h tanh(c′) σ′(a_o)]``,
    ``u = (D W, δ ⊙ f)``, ``Xᵀw = D U``. Returns the unnormalised sum of the
    counted terms and their number.
    """
    L = Ws.shape[0]
    n = Ws.shape[2]
    n4 = 4 * n
    S = 2 * L * n
    dt = V.dtype
    rows = max(1, min(max(r_hi - r_lo, 1), 16384 // max(n4, 1)))
    VS = np.empty((rows, S), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    UH = np.empty((L, rows, n), dtype=dt)  # u_h, then ḡ_h
    UC = np.empty((L, rows, n), dtype=dt)  # u_c, then ḡ_c
    D = np.empty((L, rows, n4), dtype=dt)
    VAL = np.empty((L, rows, n4), dtype=dt)
    DER = np.empty((L, rows, n4), dtype=dt)
    SEC = np.empty((L if exact else 1, rows, n4), dtype=dt)
    TC = np.empty((L, rows, n), dtype=dt)
    DTC = np.empty((L, rows, n), dtype=dt)
    WH = np.empty((L, rows, n), dtype=dt)
    DC = np.empty((L, rows, n), dtype=dt)
    AD = np.empty((rows, n4), dtype=dt)
    AX = np.empty((rows, n4), dtype=dt)
    DD = np.empty((rows, n4), dtype=dt)
    DOWN = np.empty((rows, n), dtype=dt)
    UP = np.empty((rows, n), dtype=dt)
    C2 = np.empty(1, dtype=dt)
    G[:, :, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        count += _stack_scale_rows(V, r0, m, VS, NV, mask, threshold)
        for l in range(L - 1, -1, -1):
            pre_l = PRE[l]  # one list access per layer and block, not per row
            cp_l = CP[l]  # one list access per layer and block, not per row
            cn_l = CN[l]  # one list access per layer and block, not per row
            o = 2 * l * n
            for j in range(m):
                r = r0 + j
                p = pre_l[r]
                val = VAL[l, j]
                der = DER[l, j]
                if exact:
                    sec = SEC[l, j]
                    activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], sec[:2 * n],
                                 WANT_F | WANT_FPRIME | WANT_FSECOND)
                    activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:3 * n], der[2 * n:3 * n], sec[2 * n:3 * n],
                                 WANT_F | WANT_FPRIME | WANT_FSECOND)
                    activate_row(ACT_SIGMOID, p[3 * n:], val[3 * n:], der[3 * n:], sec[3 * n:],
                                 WANT_F | WANT_FPRIME | WANT_FSECOND)
                else:
                    activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], der[:2 * n], WANT_F | WANT_FPRIME)
                    activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:3 * n], der[2 * n:3 * n], der[2 * n:3 * n],
                                 WANT_F | WANT_FPRIME)
                    activate_row(ACT_SIGMOID, p[3 * n:], val[3 * n:], der[3 * n:], der[3 * n:], WANT_F | WANT_FPRIME)
                tc = TC[l, j]
                dtc = DTC[l, j]
                activate_row(ACT_TANH, cn_l[r], tc, dtc, dtc, WANT_F | WANT_FPRIME)
                vs = VS[j]
                wh = WH[l, j]
                dc = DC[l, j]
                d = D[l, j]
                cp = cp_l[r]
                uc = UC[l, j]
                if l < L - 1:
                    dn = DOWN[j]
                    for i in range(n):
                        wh[i] = vs[o + i] + dn[i]
                else:
                    for i in range(n):
                        wh[i] = vs[o + i]
                for i in range(n):
                    h_ = wh[i]
                    de = (val[3 * n + i] * dtc[i]) * h_ + vs[o + n + i]
                    dc[i] = de
                    d[i] = de * val[2 * n + i] * der[i]
                    d[n + i] = de * cp[i] * der[n + i]
                    d[2 * n + i] = de * val[i] * der[2 * n + i]
                    d[3 * n + i] = tc[i] * der[3 * n + i] * h_
                    uc[i] = de * val[n + i]
            Db = D[l, :m]
            np.dot(Db, Ws[l], UH[l, :m])
            if l > 0:
                np.dot(Db, Us[l], DOWN[:m])
        total += _stack_terms(UH, UC, True, NV, r0, m, mask, squared, R, C2)
        for l in range(L):
            hk_l = HK[l]  # one list access per layer and block, not per row
            cp_l = CP[l]  # one list access per layer and block, not per row
            ZH = UH[l, :m]
            G[l] += np.dot(D[l, :m].T, ZH)
            if not exact:
                continue
            np.dot(ZH, WTs[l], AD[:m])  # ȧ = ḡ_h Wᵀ + ω^{l−1} Uᵀ
            if l > 0:
                np.dot(UP[:m], UTs[l], AX[:m])
            for j in range(m):
                r = r0 + j
                ad = AD[j]
                if l > 0:
                    ax = AX[j]
                    for i in range(n4):
                        ad[i] += ax[i]
                val = VAL[l, j]
                der = DER[l, j]
                sec = SEC[l, j]
                tc = TC[l, j]
                dtc = DTC[l, j]
                wh = WH[l, j]
                dc = DC[l, j]
                cp = cp_l[r]
                gc = UC[l, j]
                dd = DD[j]
                up = UP[j]
                for i in range(n):
                    si, sf, tg, so = val[i], val[n + i], val[2 * n + i], val[3 * n + i]
                    dsi, dsf, dtg, dso = der[i], der[n + i], der[2 * n + i], der[3 * n + i]
                    ai, af, ag, ao = ad[i], ad[n + i], ad[2 * n + i], ad[3 * n + i]
                    zc = gc[i]
                    i_d = dsi * ai
                    f_d = dsf * af
                    g_d = dtg * ag
                    o_d = dso * ao
                    c2_d = f_d * cp[i] + sf * zc + i_d * tg + si * g_d
                    tc_d = dtc[i] * c2_d
                    dtc_d = -2.0 * tc[i] * dtc[i] * c2_d
                    de = dc[i]
                    dc_d = (o_d * dtc[i] + so * dtc_d) * wh[i]
                    dd[i] = dc_d * tg * dsi + de * g_d * dsi + de * tg * (sec[i] * ai)
                    dd[n + i] = dc_d * cp[i] * dsf + de * zc * dsf + de * cp[i] * (sec[n + i] * af)
                    dd[2 * n + i] = dc_d * si * dtg + de * i_d * dtg + de * si * (sec[2 * n + i] * ag)
                    dd[3 * n + i] = (tc_d * dso + tc[i] * (sec[3 * n + i] * ao)) * wh[i]
                    up[i] = o_d * tc[i] + so * tc_d
            G[l] += np.dot(DD[:m].T, hk_l[r0:r0 + m])
    return total, count


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def stacked_gru_omega(Ws, WTs, Us, UTs, HK, PRE, V, squared, exact, threshold, mask, R, G, r_lo, r_hi):
    """Ω of a stack of GRU layers over the rows ``r_lo..r_hi``, its gradient into ``G (L, 3n, n)``.

    ``Ws``/``Us (L, 3n, n)`` every layer's ``weight_hh``/``weight_ih`` (``Us[0]``
    unused), ``WTs``/``UTs`` their transposes; ``HK``: typed list of ``(N, n)``
    arrays ``h_k``, ``PRE`` of ``(N, 4n)`` arrays ``(a_r, a_z, a_n, W_hn h_k +
    b_hn)``; ``V (N, Ln)`` the whole-state flow. Per layer, with ``m = W_hn h_k
    + b_hn``: ``δ_n = (1 − z) tanh′(a_n) w``, ``δ_z = (h_k − ñ) σ′(a_z) w``,
    ``δ_r = δ_n m σ′(a_r)``; ``D = [δ_r, δ_z, δ_n r]``, ``u = D W + z ⊙ w``,
    ``Xᵀw = [δ_r, δ_z, δ_n] U``. Returns the unnormalised sum of the counted
    terms and their number.
    """
    L = Ws.shape[0]
    n = Ws.shape[2]
    n3 = 3 * n
    S = L * n
    dt = V.dtype
    rows = max(1, min(max(r_hi - r_lo, 1), 16384 // max(n3, 1)))
    VS = np.empty((rows, S), dtype=dt)
    NV = np.empty(rows, dtype=np.float64)
    UA = np.empty((L, rows, n), dtype=dt)  # u, then ḡ
    D = np.empty((L, rows, n3), dtype=dt)
    DX = np.empty((rows, n3), dtype=dt)
    VAL = np.empty((L, rows, n3), dtype=dt)
    DER = np.empty((L, rows, n3), dtype=dt)
    SEC = np.empty((L if exact else 1, rows, n3), dtype=dt)
    WB = np.empty((L, rows, n), dtype=dt)
    AD = np.empty((rows, n3), dtype=dt)
    AX = np.empty((rows, n3), dtype=dt)
    DD = np.empty((rows, n3), dtype=dt)
    DOWN = np.empty((rows, n), dtype=dt)
    UP = np.empty((rows, n), dtype=dt)
    C2 = np.empty(1, dtype=dt)
    G[:, :, :] = 0.0
    count = 0
    total = 0.0
    for r0 in range(r_lo, r_hi, rows):
        m = min(rows, r_hi - r0)
        count += _stack_scale_rows(V, r0, m, VS, NV, mask, threshold)
        for l in range(L - 1, -1, -1):
            hk_l = HK[l]  # one list access per layer and block, not per row
            pre_l = PRE[l]  # one list access per layer and block, not per row
            o = l * n
            for j in range(m):
                r = r0 + j
                p = pre_l[r]
                val = VAL[l, j]
                der = DER[l, j]
                if exact:
                    sec = SEC[l, j]
                    activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], sec[:2 * n],
                                 WANT_F | WANT_FPRIME | WANT_FSECOND)
                    activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:], der[2 * n:], sec[2 * n:],
                                 WANT_F | WANT_FPRIME | WANT_FSECOND)
                else:
                    activate_row(ACT_SIGMOID, p[:2 * n], val[:2 * n], der[:2 * n], der[:2 * n], WANT_F | WANT_FPRIME)
                    activate_row(ACT_TANH, p[2 * n:3 * n], val[2 * n:], der[2 * n:], der[2 * n:], WANT_F | WANT_FPRIME)
                vs = VS[j]
                w = WB[l, j]
                d = D[l, j]
                dx = DX[j]
                hk = hk_l[r]
                if l < L - 1:
                    dn = DOWN[j]
                    for i in range(n):
                        w[i] = vs[o + i] + dn[i]
                else:
                    for i in range(n):
                        w[i] = vs[o + i]
                for i in range(n):
                    wi = w[i]
                    dan = (1.0 - val[n + i]) * der[2 * n + i] * wi
                    daz = (hk[i] - val[2 * n + i]) * der[n + i] * wi
                    dar = dan * p[3 * n + i] * der[i]
                    d[i] = dar
                    d[n + i] = daz
                    d[2 * n + i] = dan * val[i]
                    dx[i] = dar
                    dx[n + i] = daz
                    dx[2 * n + i] = dan
            np.dot(D[l, :m], Ws[l], UA[l, :m])
            for j in range(m):
                ua = UA[l, j]
                w = WB[l, j]
                val = VAL[l, j]
                for i in range(n):
                    ua[i] = ua[i] + val[n + i] * w[i]
            if l > 0:
                np.dot(DX[:m], Us[l], DOWN[:m])
        total += _stack_terms(UA, UA, False, NV, r0, m, mask, squared, R, C2)
        for l in range(L):
            hk_l = HK[l]  # one list access per layer and block, not per row
            pre_l = PRE[l]  # one list access per layer and block, not per row
            ZH = UA[l, :m]
            G[l] += np.dot(D[l, :m].T, ZH)
            if not exact:
                continue
            np.dot(ZH, WTs[l], AD[:m])  # ḡ_h Wᵀ: the r, z and W_hn h rows
            if l > 0:
                np.dot(UP[:m], UTs[l], AX[:m])
            for j in range(m):
                r = r0 + j
                ad = AD[j]
                ax = AX[j]
                val = VAL[l, j]
                der = DER[l, j]
                sec = SEC[l, j]
                w = WB[l, j]
                hk = hk_l[r]
                p = pre_l[r]
                zh = ZH[j]
                dd = DD[j]
                up = UP[j]
                for i in range(n):
                    rr, z, nn = val[i], val[n + i], val[2 * n + i]
                    dr, dz, dn = der[i], der[n + i], der[2 * n + i]
                    mm = p[3 * n + i]
                    ar = ad[i] + ax[i] if l > 0 else ad[i]
                    az = ad[n + i] + ax[n + i] if l > 0 else ad[n + i]
                    hn_d = ad[2 * n + i]
                    r_d = dr * ar
                    an = r_d * mm + rr * hn_d + (ax[2 * n + i] if l > 0 else 0.0)
                    z_d = dz * az
                    n_d = dn * an
                    wi = w[i]
                    dan = (1.0 - z) * dn * wi
                    dan_d = (-z_d * dn + (1.0 - z) * (sec[2 * n + i] * an)) * wi
                    dd[i] = dan_d * mm * dr + dan * hn_d * dr + dan * mm * (sec[i] * ar)
                    dd[n + i] = (zh[i] - n_d) * dz * wi + (hk[i] - nn) * (sec[n + i] * az) * wi
                    dd[2 * n + i] = dan_d * rr + dan * r_d
                    up[i] = -z_d * nn + (1.0 - z) * n_d + z_d * hk[i] + z * zh[i]
            G[l] += np.dot(DD[:m].T, hk_l[r0:r0 + m])
    return total, count
