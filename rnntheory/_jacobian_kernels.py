"""Private Numba kernels for long products of step Jacobians.

Products are accumulated with rescaling: the running product ``P`` is kept
with its largest entry near 1 and the scale is carried separately as a natural
log, so nothing overflows or underflows whatever the number of factors. A
step whose factors' smallest entries could form a term below float64's normal
range runs on (mantissa, exponent) pairs instead (:func:`_times`), so no part
of a product is lost to underflow either.

Spectral norms of the rescaled products come from a warm-started power
iteration on ``P Pᵀ`` (the dominant left singular vector of ``J_t ⋯ J_{k+1}``
changes little from one ``k`` to the next). A power iteration only gives a
lower bound ``s ≤ σ_max`` and can settle on a smaller singular value when the
warm start is orthogonal to the dominant direction, so every value is
*certified* before it is returned, that is ``σ_max² ≤ s²(1 + δ)`` is proved:

1. cheaply, in O(n²): with unit ``u, v`` from the iteration and ``α = uᵀPv``,
   write ``P`` in orthonormal bases that start with ``u`` and ``v``:
   ``[[α, bᵀ], [c, D]]`` with ``b = Pᵀu − αv``, ``c = Pv − αu`` (formed as
   vectors) and ``‖D‖_F² = ‖P‖_F² − α² − ‖b‖² − ‖c‖²``. The spectral norm of
   a block matrix is at most that of the 2 × 2 matrix of its blocks' norms,
   so ``σ_max ≤ σ_max([[α, ‖b‖], [‖c‖, ‖D‖_F]])``, a closed form, evaluated
   on upper bounds of the four norms that cover their rounding. This succeeds
   whenever the rest of the spectrum is clearly below ``α`` (the usual case);
2. otherwise by a successful Cholesky factorisation of ``s²(1 + δ) I − PᵀP``
   (positive definite exactly when every singular value is below ``s√(1+δ)``);
3. otherwise LAPACK's SVD decides, and its dominant vector becomes the next
   warm start.

With ``δ = 1e-11`` the value is within ``5e-12`` relative of σ_max, up to the
rounding of ``α`` itself (about n·1e-16).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._vecmath import bits_as_float, pow2

_POWER_TOL = 1e-14
_POWER_MAXIT = 100
_CERT_DELTA = 1e-11


@njit(cache=True, fastmath=False, error_model="numpy")
def _norm2(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return np.sqrt(s)


@njit(cache=True, fastmath=False, error_model="numpy")
def _power(P, u, v, y):
    """Warm-started power iteration; a lower bound of σ_max (or −1 on failure).

    ``s1 = ‖Pᵀu‖`` and ``s2 = ‖P v‖`` with ``v = Pᵀu/s1`` are both lower
    bounds of σ_max that increase monotonically; stop when they agree.
    """
    n, m = P.shape
    for it in range(_POWER_MAXIT):
        np.dot(u, P, v)  # v = Pᵀ u
        s1 = _norm2(v)
        if not (s1 > 0.0 and np.isfinite(s1)):
            return -1.0
        for j in range(m):
            v[j] /= s1
        np.dot(P, v, y)
        s2 = _norm2(y)
        if not (s2 > 0.0 and np.isfinite(s2)):
            return -1.0
        for i in range(n):
            u[i] = y[i] / s2
        if it >= 1 and s2 - s1 <= _POWER_TOL * s2:
            return s2
    return -1.0


@njit(cache=True, fastmath=False, error_model="numpy")
def _block_bound_ok(P, u, v, y, alpha_out):
    """Step 1 of the certificate; ``u``, ``v`` unit. Writes ``|α|`` to ``alpha_out[0]``.

    ``b = Pᵀu − αv`` and ``c = Pv − αu`` are formed as vectors, not as
    ``‖Pᵀu‖² − α²``: when the two largest singular values nearly coincide the
    2 × 2 bound depends on ``‖b‖``, ``‖c‖`` to first order, and the squared
    difference would lose them to rounding below ``√ε α``. Each of
    ``α, ‖b‖, ‖c‖, ‖D‖_F`` is replaced by an upper bound that covers its
    rounding (the 2 × 2 norm grows with each entry).
    """
    n, m = P.shape
    w = np.dot(u, P)  # Pᵀu
    np.dot(P, v, y)  # Pv
    alpha = 0.0
    for j in range(m):
        alpha += w[j] * v[j]
    b2 = 0.0
    for j in range(m):
        r = w[j] - alpha * v[j]
        b2 += r * r
    c2 = 0.0
    for i in range(n):
        r = y[i] - alpha * u[i]
        c2 += r * r
    fro2 = 0.0
    for i in range(n):
        for j in range(m):
            fro2 += P[i, j] * P[i, j]
    a = abs(alpha)
    alpha_out[0] = a
    eps = 2.220446049250313e-16
    k = n + m + 4.0
    slack = k * eps * np.sqrt(fro2)  # absolute rounding of α, ‖b‖, ‖c‖
    a_up = a + slack
    b_up = np.sqrt(b2) + slack
    c_up = np.sqrt(c2) + slack
    d_up = np.sqrt(max(fro2 - a * a - b2 - c2, 0.0) + 4.0 * k * eps * fro2)
    # spectral norm of [[a, b], [c, d]], a closed form without cancellation
    top = 0.5 * (np.sqrt((a_up + d_up) ** 2 + (b_up - c_up) ** 2)
                 + np.sqrt((a_up - d_up) ** 2 + (b_up + c_up) ** 2))
    return top * (1.0 + 8.0 * eps) <= a * np.sqrt(1.0 + _CERT_DELTA)


@njit(cache=True, fastmath=False, error_model="numpy")
def _cholesky_ok(P, s, A):
    """Step 2 of the certificate: ``s²(1 + δ) I − PᵀP`` is positive definite."""
    m = P.shape[1]
    thr = s * s * (1.0 + _CERT_DELTA)
    np.dot(P.T, P, A)
    for i in range(m):
        for j in range(m):
            A[i, j] = -A[i, j]
        A[i, i] += thr
    try:
        np.linalg.cholesky(A)
    except Exception:  # not positive definite: s is not within δ of σ_max
        return False
    return True


@njit(cache=True, fastmath=False, error_model="numpy")
def sigma_max(P, u, v, y, A):
    """Largest singular value of ``P``, certified; ``u`` is the warm start (updated).

    ``v``, ``y`` (length n) and ``A`` (n × n) are work arrays.
    """
    n = P.shape[0]
    s = _power(P, u, v, y)
    if s > 0.0:
        alpha = np.empty(1)
        if _block_bound_ok(P, u, v, y, alpha):
            return alpha[0]
        if _cholesky_ok(P, s, A):
            return s
    if not np.all(np.isfinite(P)):
        return np.nan
    U, S, _ = np.linalg.svd(P)
    for i in range(n):
        u[i] = U[i, 0]
    return S[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def _start_vector(n):
    u = np.empty(n)
    for i in range(n):
        u[i] = 1.0 + 0.1 * np.sin(1.0 + i)
    u /= _norm2(u)
    return u


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _scan(flat):
    """``(largest |entry|, smallest nonzero |entry|, any NaN)`` in one
    branch-free pass (it vectorises)."""
    s = 0.0
    m = np.inf
    bad = False
    for i in range(flat.size):
        a = abs(flat[i])
        s = max(s, a)
        m = min(m, a if a > 0.0 else np.inf)
        bad |= a != a
    return s, m, bad


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _times_pow2(src, dst, e):
    """``dst = src · 2^-e``: exact wherever the result is a normal float64."""
    if -1022 <= -e <= 1023:
        f = bits_as_float((1023 - e) << 52)
        for i in range(src.size):
            dst[i] = src[i] * f
    else:
        for i in range(src.size):
            dst[i] = math.ldexp(src[i], -e)


# ---------------------------------------------------------------------------
# Scaling. Every factor and every running product is multiplied by a power of
# two, 2^-e, that brings its largest |entry| into [1/2, 1), and e·ln 2 is
# carried as a log-scale: nothing overflows or underflows whatever the number
# of factors, and the scaling itself is exact.
#
# Extended exponents. That keeps the *largest* entry in range, but the entries
# of one product can span more than float64's ~600 orders of magnitude
# (weights of 1e-200 beside weights of 1, units saturated to f' = 1e-250): a
# term a_ik b_kj below 2^-1022 then loses its bits or vanishes, and a later
# factor that annihilates the large entries turns that loss into a wrong (or
# −inf) norm. So a step runs in float64 only when the smallest nonzero entries
# of its two factors cannot form such a term, and a product stays in float64
# only while its scaled entries are all normal numbers. Otherwise it is held as
# m·2^e (float64 mantissa m in [1/2, 1), int64 exponent e), which cannot
# underflow: each term's exponent is formed exactly and its mantissa to float64
# rounding, and the terms of a sum are aligned on their largest exponent (terms
# more than 2^-1075 below it are dropped: less than the rounding of the largest
# term). Subnormal entries of a factor are read exactly from the unscaled factor.
# ---------------------------------------------------------------------------
_LN_SAFE = -707.0  # a product of two numbers above e^-707 is a normal float64 (> 2^-1022)
_LN2 = 0.6931471805599453
_ZERO_EXP = -(1 << 40)  # the exponent of a zero: sums of two stay far below any term


@njit(cache=True, fastmath=False, error_model="numpy")
def prescale(J):
    """``(Js, logs, mins, shifts)`` for the step Jacobians ``J (T, n, n)``.

    ``Js[i] = J[i] · 2^-shifts[i]`` has its largest |entry| in [1/2, 1);
    ``logs[i] = shifts[i] ln 2`` (``−inf`` for a zero matrix, NaN for a
    non-finite one); ``mins[i]`` is the log of the smallest nonzero |entry| of
    ``Js[i]``, which tells :func:`_times` whether a float64 step is safe (where
    it is not, an entry of ``Js[i]`` may have lost bits, and the exact ``J[i]``
    is read instead). A factor whose entries are all tiny (a saturated unit, a
    weight of 1e-181) thus cannot drive a product below float64's range.
    """
    T = J.shape[0]
    Js = np.empty_like(J)
    logs = np.empty(T)
    mins = np.full(T, np.inf)
    shifts = np.zeros(T, np.int64)
    for i in range(T):
        src = J[i].reshape(-1)
        dst = Js[i].reshape(-1)
        s, m, bad = _scan(src)
        if bad or not np.isfinite(s) or s == 0.0:
            dst[:] = src  # unscaled: the log-scale (NaN or −inf) stops every product here
            logs[i] = np.nan if (bad or not np.isfinite(s)) else -np.inf
            continue
        e = math.frexp(s)[1]
        _times_pow2(src, dst, e)
        shifts[i] = e
        logs[i] = e * _LN2
        mins[i] = np.log(m) - e * _LN2
    return Js, logs, mins, shifts


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _to_ext(A, shift, Am, Ae, transpose):
    """``A · 2^-shift`` (or its transpose) as mantissas and exponents, exactly;
    a zero gets exponent ``_ZERO_EXP``, so its terms fall below any sum
    without a branch."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            m, e = math.frexp(A[i, j])
            e = _ZERO_EXP if m == 0.0 else e - shift
            if transpose:
                Am[j, i] = m
                Ae[j, i] = e
            else:
                Am[i, j] = m
                Ae[i, j] = e


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _ext_matmul(Am, Ae, BmT, BeT, Cm, Ce):
    """``C = A B`` on extended-exponent matrices, ``B`` given transposed.

    Each term's exponent is formed exactly and its mantissa product (in
    [1/4, 1)) to float64 rounding; the terms of one sum are aligned on the
    largest exponent by a power of two, so a term more than 2^-1075 below the
    largest is dropped (an error smaller than the largest term's rounding).
    """
    n, p = Am.shape
    q = BmT.shape[0]
    for i in range(n):
        for j in range(q):
            emax = _ZERO_EXP
            for k in range(p):
                emax = max(emax, Ae[i, k] + BeT[j, k])
            if emax <= _ZERO_EXP:  # every term has a zero factor
                Cm[i, j] = 0.0
                Ce[i, j] = _ZERO_EXP
                continue
            acc = 0.0
            for k in range(p):
                d = max(Ae[i, k] + BeT[j, k] - emax, -1075)
                acc += (Am[i, k] * BmT[j, k]) * pow2(d)
            m, e = math.frexp(acc)
            Cm[i, j] = m
            Ce[i, j] = e + emax if m != 0.0 else _ZERO_EXP


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _settle(Cm, Ce, P, state, Pm, Pe):
    """Make the extended matrix ``C`` the running product: scaled so that its
    largest entry has exponent 0, kept as ``Pm·2^Pe`` (``state[1] = 1``) unless
    every nonzero entry is then a normal float64, in which case the product
    goes back to float64 (``state[1] = 0``, ``state[0]`` = log of its smallest
    nonzero |entry|). ``P`` receives the float64 image either way (entries
    below float64's range flushed, which moves σ_max by less than n·2^-1074
    relative). Returns the log of the scale taken out."""
    n, q = Cm.shape
    emax = _ZERO_EXP
    for i in range(n):
        for j in range(q):
            if not np.isfinite(Cm[i, j]):
                P[:, :] = np.nan
                return np.nan
            emax = max(emax, Ce[i, j])
    if emax <= _ZERO_EXP:
        P[:, :] = 0.0
        return -np.inf
    emin = 0  # the largest entry now has exponent 0
    m = np.inf
    for i in range(n):
        for j in range(q):
            Pm[i, j] = Cm[i, j]
            if Cm[i, j] != 0.0:
                Pe[i, j] = Ce[i, j] - emax
                emin = min(emin, Pe[i, j])
                P[i, j] = math.ldexp(Pm[i, j], int(Pe[i, j]))
                m = min(m, abs(P[i, j]))
            else:
                Pe[i, j] = _ZERO_EXP
                P[i, j] = 0.0
    if emin - 1 >= -1021:  # every nonzero entry is a normal float64
        state[1] = 0.0
        state[0] = np.log(m)
    else:
        state[1] = 1.0
    return emax * _LN2


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _times(P, Ms, M, shift, ln_min_M, state, Pm, Pe, Mm, Me, Cm, Ce, buf):
    """``P ← P M_s · 2^-e`` with ``2^-e`` bringing the largest |entry| into
    [1/2, 1); returns ``e ln 2`` (``−inf`` for a zero product, NaN for a
    non-finite one).

    ``Ms = M · 2^-shift`` is the scaled factor and ``M`` the exact one;
    ``ln_min_M`` is the log of the smallest nonzero |entry| of ``Ms``.
    ``state[0]`` is the log of the smallest nonzero |entry| of the running
    product and ``state[1]`` is 1 while it is held in extended form
    ``Pm·2^Pe`` (``P`` is then its float64 image). The other arrays are work
    space.
    """
    if state[1] == 0.0 and state[0] + ln_min_M >= _LN_SAFE:
        np.dot(P, Ms, buf)  # every nonzero term is a normal float64
        s, m, bad = _scan(buf.reshape(-1))
        if bad or not np.isfinite(s):
            P[:, :] = buf
            return np.nan
        if s == 0.0:
            P[:, :] = 0.0
            return -np.inf
        e = math.frexp(s)[1]
        ln_m = np.log(m) - e * _LN2
        if ln_m >= _LN_SAFE:  # scaled, every nonzero entry stays normal: exact
            _times_pow2(buf.reshape(-1), P.reshape(-1), e)
            state[0] = ln_m
            return e * _LN2
        _to_ext(buf, 0, Cm, Ce, False)  # keep the small entries' bits
        return _settle(Cm, Ce, P, state, Pm, Pe)
    if state[1] == 0.0:
        _to_ext(P, 0, Pm, Pe, False)
    _to_ext(M, shift, Mm, Me, True)
    _ext_matmul(Pm, Pe, Mm, Me, Cm, Ce)
    return _settle(Cm, Ce, P, state, Pm, Pe)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _work(n):
    """Work arrays for :func:`_times`: ``state, Pm, Pe, Mm, Me, Cm, Ce, buf``."""
    return (
        np.zeros(2), np.empty((n, n)), np.empty((n, n), np.int64), np.empty((n, n)),
        np.empty((n, n), np.int64), np.empty((n, n)), np.empty((n, n), np.int64),
        np.empty((n, n)),
    )


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _begin(P, Js, J, shift, ln_min, state, Pm, Pe, Cm, Ce):
    """Start a running product at one factor (``P ← Js``, float64 form when
    its entries are all normal, else the exact ``J`` in extended form)."""
    if ln_min >= _LN_SAFE:
        P[:, :] = Js
        state[0] = ln_min
        state[1] = 0.0
        return
    _to_ext(J, shift, Cm, Ce, False)
    _settle(Cm, Ce, P, state, Pm, Pe)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _row(J, Js, logs, mins, shifts, t, out, P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y):
    """``out[k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for k' = 0 … t (``out`` of length ≥ t+1,
    entries after t untouched); ``P`` … ``y`` are work space.

    Accumulates ``P ← P J_k'`` for k' = t−1 down to 0 (:func:`_times`); ``−inf``
    from an exactly zero partial product on, NaN from a partial product with
    a non-finite scale on (the caller marks every pair over a non-finite
    factor, which a zero product stops short of).
    """
    n = J.shape[1]
    out[:t] = -np.inf
    out[t] = 0.0
    if t == 0:
        return
    log_scale = logs[t - 1]
    if np.isfinite(log_scale):
        _begin(P, Js[t - 1], J[t - 1], shifts[t - 1], mins[t - 1], state, Pm, Pe, Cm, Ce)
    u = _start_vector(n)
    for kk in range(t - 1, -1, -1):
        if kk < t - 1:
            log_scale += logs[kk] + _times(
                P, Js[kk], J[kk], shifts[kk], mins[kk], state, Pm, Pe, Mm, Me, Cm, Ce, buf
            )
        if log_scale == -np.inf:
            break  # the product is zero from here on: out stays -inf
        if not np.isfinite(log_scale):
            for j in range(kk, -1, -1):
                out[j] = np.nan
            break
        out[kk] = log_scale + np.log(sigma_max(P, u, v, y, work))


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norms_rows(J, Js, logs, mins, shifts, L, r, k):
    """Rows ``t ≡ r (mod k)`` of ``L[t, k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for ``k' ≤ t``
    (``J[i-1] = ∂h_i/∂h_{i−1}``), written into ``L (T+1, T+1)``.

    ``Js``, ``logs``, ``mins`` and ``shifts`` are :func:`prescale`'s.
    Row t accumulates ``P ← P J_k'`` for k' = t−1 down to 0 (:func:`_row`);
    ``−inf`` above the diagonal and for products that are exactly zero. Rows
    are independent, so the ``k`` residue classes may run in concurrent
    threads (the GIL is released); taking every k-th row balances their cost,
    which grows with t.
    """
    T, n, _ = J.shape
    P = np.empty((n, n))
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    v = np.empty(n)
    y = np.empty(n)
    for t in range(r, T + 1, k):
        L[t, :] = -np.inf
        _row(J, Js, logs, mins, shifts, t, L[t], P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norm_row(J, Js, logs, mins, shifts, t):
    """``out[k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for k' = 0 … t: row t of
    :func:`log_norms_rows`, the same arithmetic, in memory linear in t."""
    n = J.shape[1]
    out = np.empty(t + 1)
    P = np.empty((n, n))
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    v = np.empty(n)
    y = np.empty(n)
    _row(J, Js, logs, mins, shifts, t, out, P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def _transposed_product(J, Js, logs, mins, shifts, k, t_end, out):
    """``S = (J_t ⋯ J_{k+1})ᵀ``, accumulated as ``S ← S J_tᵀ`` for t = k+1 …
    t_end; with ``out`` given (length T+1), ``out[t] = ln σ_max`` at each t.
    Returns ``(S, log-scale)``."""
    n = J.shape[1]
    S = np.eye(n)
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    state[0] = 0.0
    u = _start_vector(n)
    v = np.empty(n)
    y = np.empty(n)
    log_scale = 0.0
    for t in range(k + 1, t_end + 1):
        log_scale += logs[t - 1] + _times(
            S, Js[t - 1].T, J[t - 1].T, shifts[t - 1], mins[t - 1],
            state, Pm, Pe, Mm, Me, Cm, Ce, buf,
        )
        if log_scale == -np.inf:
            break
        if not np.isfinite(log_scale):
            if out.size:
                out[t:] = np.nan
            break
        if out.size:
            out[t] = log_scale + np.log(sigma_max(S, u, v, y, work))
    return S, log_scale


@njit(cache=True, fastmath=False, error_model="numpy")
def log_norm_profile(J, Js, logs, mins, shifts, k):
    """``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``t ≥ k`` (``−inf`` for ``t < k``).

    Accumulates the transpose ``S = Pᵀ ← S J_tᵀ`` (:func:`_times`) so that the
    warm-started vector is the right singular vector of ``P``, which settles
    as t grows. The other arguments are :func:`prescale`'s.
    """
    T = J.shape[0]
    out = np.full(T + 1, -np.inf)
    out[k] = 0.0
    _transposed_product(J, Js, logs, mins, shifts, k, T, out)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def scaled_product(J, Js, logs, mins, shifts, t, k):
    """``(P, s)`` with ``J_t ⋯ J_{k+1} = e^s P`` (``P`` scaled, largest entry
    in [1/2, 1)); the other arguments are :func:`prescale`'s."""
    S, s = _transposed_product(J, Js, logs, mins, shifts, k, t, np.empty(0))
    return np.ascontiguousarray(S.T), s


@njit(cache=True, fastmath=False, error_model="numpy")
def lyapunov(J, Q0):
    """Sum over steps of ``ln |diag R|`` from QR re-orthonormalisation.

    ``Q0 (n, k)`` is the orthonormal starting frame; it must be generic (not
    inside an invariant subspace of the Jacobians), so the caller draws it at random.
    """
    T = J.shape[0]
    k = Q0.shape[1]
    Q = np.ascontiguousarray(Q0)
    sums = np.zeros(k)
    for i in range(T):
        Z = np.dot(J[i], Q)
        Q, R = np.linalg.qr(Z)
        Q = np.ascontiguousarray(Q)
        for j in range(k):
            sums[j] += np.log(abs(R[j, j]))
    return sums
