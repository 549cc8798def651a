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
   ``[[α, bᵀ], [c, D]]`` with ``‖b‖² = ‖Pᵀu‖² − α²``, ``‖c‖² = ‖Pv‖² − α²``
   and ``‖D‖_F² = ‖P‖_F² − α² − ‖b‖² − ‖c‖²``. The spectral norm of a block
   matrix is at most that of the 2 × 2 matrix of its blocks' norms, so
   ``σ_max ≤ σ_max([[α, ‖b‖], [‖c‖, ‖D‖_F]])``, a closed form. This succeeds
   whenever the rest of the spectrum is clearly below ``α`` (the usual case);
2. otherwise by a successful Cholesky factorisation of ``s²(1 + δ) I − PᵀP``
   (positive definite exactly when every singular value is below ``s√(1+δ)``);
3. otherwise LAPACK's SVD decides, and its dominant vector becomes the next
   warm start.

With ``δ = 1e-11`` the value is within ``5e-12`` relative of σ_max, up to the
rounding of the quantities above (about 1e-15).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._vecmath import _pow2

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
    """Step 1 of the certificate; ``u``, ``v`` unit. Writes ``α`` to ``alpha_out[0]``."""
    n, m = P.shape
    w = np.dot(u, P)  # Pᵀu
    np.dot(P, v, y)  # Pv
    alpha = 0.0
    for j in range(m):
        alpha += w[j] * v[j]
    alpha = abs(alpha)
    alpha_out[0] = alpha
    a2 = alpha * alpha
    fro2 = 0.0
    for i in range(n):
        for j in range(m):
            fro2 += P[i, j] * P[i, j]
    b2 = max(_norm2(w) ** 2 - a2, 0.0)
    c2 = max(_norm2(y) ** 2 - a2, 0.0)
    d2 = max(fro2 - a2 - b2 - c2, 0.0)
    tr = a2 + b2 + c2 + d2
    det = alpha * np.sqrt(d2) - np.sqrt(b2 * c2)
    disc = max(tr * tr - 4.0 * det * det, 0.0)
    top2 = 0.5 * (tr + np.sqrt(disc))
    # 1e-14 absorbs the rounding of the sums above.
    return top2 * (1.0 + 1e-14) <= a2 * (1.0 + _CERT_DELTA)


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
def _rescale(P):
    """Divide ``P`` by its largest absolute entry.

    Returns ``(ln s, ln m)``: the log of that entry (``−inf`` for a zero
    matrix, NaN for a non-finite one) and the log of the smallest nonzero
    |entry| after the division (``+inf`` if there is none).
    """
    flat = P.reshape(-1)  # P is C-contiguous: flat, branch-free loops vectorise
    s = 0.0
    m = np.inf
    bad = False
    for i in range(flat.size):
        a = abs(flat[i])
        s = max(s, a)
        m = min(m, a if a > 0.0 else np.inf)
        bad |= a != a
    if bad or not np.isfinite(s):
        return np.nan, np.inf
    if s == 0.0:
        return -np.inf, np.inf
    for i in range(flat.size):
        flat[i] /= s
    ls = np.log(s)
    return ls, np.log(m) - ls


@njit(cache=True, fastmath=False, error_model="numpy")
def prescale(J):
    """``(Js, logs, mins)``: every step Jacobian divided by its largest |entry|,
    the log of that entry (``−inf`` for a zero matrix, NaN for a non-finite
    one), and the log of the smallest nonzero |entry| of the rescaled factor.

    The products are then formed from factors whose largest entry is 1, so a
    factor whose entries are all tiny (a saturated unit, a weight of 1e-181)
    cannot drive a product below float64's range before it is rescaled; the
    log of the product's scale collects ``logs``. ``mins`` tells
    :func:`_times` when a float64 product could underflow.
    """
    Js = J.copy()
    logs = np.empty(J.shape[0])
    mins = np.empty(J.shape[0])
    for i in range(J.shape[0]):
        logs[i], mins[i] = _rescale(Js[i])
    return Js, logs, mins


# ---------------------------------------------------------------------------
# Extended exponents. Rescaling the whole product keeps its *largest* entry in
# range, but the entries of one product can span more than float64's ~600
# orders of magnitude (weights of 1e-200 beside weights of 1, units saturated
# to f' = 1e-250): a term a_ik b_kj below 2^-1022 then loses its bits or
# vanishes, and a later factor that annihilates the large entries turns that
# loss into a wrong (or −inf) norm. When the smallest nonzero entries of the
# two factors could form such a term, the step is done instead on numbers
# m·2^e (float64 mantissa m in [1/2, 1), int64 exponent e), which cannot
# underflow: each term is formed exactly in exponent and to float64 rounding in
# mantissa, then the terms of a sum are aligned on their largest exponent
# (terms more than 2^-1074 below it are dropped: an absolute error below that of
# the rounding of the largest term). The product stays in that form until all
# of its nonzero entries fit float64's normal range relative to its largest.
# ---------------------------------------------------------------------------
_LN_SAFE = -707.0  # a product of two entries above e^-707 is a normal float64 (> 2^-1022)
_LN2 = 0.6931471805599453
_ZERO_EXP = -(1 << 40)  # the exponent of a zero: sums of two stay far below any term


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _to_ext(A, Am, Ae, transpose):
    """``A`` (or ``Aᵀ``) as mantissas and exponents; a zero gets exponent
    ``_ZERO_EXP``, so its terms fall below any sum without a branch."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            m, e = math.frexp(A[i, j])
            if m == 0.0:
                e = _ZERO_EXP
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
                acc += (Am[i, k] * BmT[j, k]) * _pow2(d)
            m, e = math.frexp(acc)
            Cm[i, j] = m
            Ce[i, j] = e + emax if m != 0.0 else _ZERO_EXP


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _times(P, M, ln_min_M, state, Pm, Pe, Mm, Me, Cm, Ce, buf):
    """``P ← P M / s`` with ``s`` the largest |entry| of ``P M``; returns ``ln s``.

    ``P`` and ``M`` have largest entry 1; ``ln_min_M`` is the log of the
    smallest nonzero |entry| of ``M``. ``state[0]`` is the log of the smallest
    nonzero |entry| of the running product, ``state[1]`` is 1 while it is held
    in extended form ``Pm·2^Pe`` (then ``P`` is its float64 image, with entries
    below float64's range relative to the largest flushed, which moves σ_max by
    less than n·2^-1074 relative). The other arrays are work space.
    """
    if state[1] == 0.0 and state[0] + ln_min_M >= _LN_SAFE:
        np.dot(P, M, buf)
        P[:, :] = buf
        s, state[0] = _rescale(P)
        return s
    if state[1] == 0.0:
        _to_ext(P, Pm, Pe, False)
    _to_ext(M, Mm, Me, True)
    _ext_matmul(Pm, Pe, Mm, Me, Cm, Ce)
    n, q = Cm.shape
    emax = _ZERO_EXP
    for i in range(n):
        for j in range(q):
            if not np.isfinite(Cm[i, j]):
                return np.nan
            emax = max(emax, Ce[i, j])
    if emax <= _ZERO_EXP:
        P[:, :] = 0.0
        return -np.inf
    emin = 0  # the largest entry now has exponent 0
    for i in range(n):
        for j in range(q):
            Pm[i, j] = Cm[i, j]
            if Cm[i, j] != 0.0:
                Pe[i, j] = Ce[i, j] - emax
                emin = min(emin, Pe[i, j])
                P[i, j] = math.ldexp(Pm[i, j], Pe[i, j])
            else:
                Pe[i, j] = _ZERO_EXP
                P[i, j] = 0.0
    if emin - 1 >= -1021:  # every nonzero entry is a normal float64: back to float64
        state[1] = 0.0
        m = np.inf
        for i in range(n):
            for j in range(q):
                a = abs(P[i, j])
                if 0.0 < a < m:
                    m = a
        state[0] = np.log(m)
    else:
        state[1] = 1.0
    return emax * _LN2


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _work(n):
    """Work arrays for :func:`_times`: ``state, Pm, Pe, Mm, Me, Cm, Ce, buf``."""
    return (
        np.zeros(2), np.empty((n, n)), np.empty((n, n), np.int64), np.empty((n, n)),
        np.empty((n, n), np.int64), np.empty((n, n)), np.empty((n, n), np.int64),
        np.empty((n, n)),
    )


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _start(P, state):
    """Begin a product at ``P`` (largest entry 1, float64 form)."""
    m = np.inf
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            a = abs(P[i, j])
            if 0.0 < a < m:
                m = a
    state[0] = np.log(m)
    state[1] = 0.0


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norms_rows(J, logs, mins, L, r, k):
    """Rows ``t ≡ r (mod k)`` of ``L[t, k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for ``k' ≤ t``
    (``J[i-1] = ∂h_i/∂h_{i−1}``), written into ``L (T+1, T+1)``.

    ``J``, ``logs`` and ``mins`` are :func:`prescale`'s: ``J_i = e^{logs[i-1]} J[i-1]``.
    Row t accumulates ``P ← P J_k'`` for k' = t−1 down to 0 (:func:`_times`);
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
        L[t, t] = 0.0
        if t == 0:
            continue
        P[:, :] = J[t - 1]
        _start(P, state)
        log_scale = logs[t - 1]
        u = _start_vector(n)
        for kk in range(t - 1, -1, -1):
            if kk < t - 1:
                log_scale += logs[kk] + _times(
                    P, J[kk], mins[kk], state, Pm, Pe, Mm, Me, Cm, Ce, buf
                )
            if log_scale == -np.inf:
                break  # the product is zero from here on: L stays -inf
            if not np.isfinite(log_scale):
                for j in range(kk, -1, -1):
                    L[t, j] = np.nan
                break
            L[t, kk] = log_scale + np.log(sigma_max(P, u, v, y, work))


@njit(cache=True, fastmath=False, error_model="numpy")
def log_norm_profile(J, logs, mins, k):
    """``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``t ≥ k`` (``−inf`` for ``t < k``).

    Accumulates the transpose ``S = Pᵀ ← S J_tᵀ`` (:func:`_times`) so that the
    warm-started vector is the right singular vector of ``P``, which settles
    as t grows. ``J``, ``logs`` and ``mins`` are :func:`prescale`'s.
    """
    T, n, _ = J.shape
    out = np.full(T + 1, -np.inf)
    out[k] = 0.0
    S = np.eye(n)
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    _start(S, state)
    u = _start_vector(n)
    v = np.empty(n)
    y = np.empty(n)
    log_scale = 0.0
    for t in range(k + 1, T + 1):
        log_scale += logs[t - 1] + _times(
            S, J[t - 1].T, mins[t - 1], state, Pm, Pe, Mm, Me, Cm, Ce, buf
        )
        if log_scale == -np.inf:
            break
        if not np.isfinite(log_scale):
            out[t:] = np.nan
            break
        out[t] = log_scale + np.log(sigma_max(S, u, v, y, work))
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def scaled_product(J, logs, mins, t, k):
    """``(P, s)`` with ``J_t ⋯ J_{k+1} = e^s P`` (``P`` rescaled, largest entry
    1); ``J``, ``logs`` and ``mins`` are :func:`prescale`'s. Accumulated as the
    transpose, like :func:`log_norm_profile`."""
    n = J.shape[1]
    S = np.eye(n)
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    _start(S, state)
    s = 0.0
    for i in range(k + 1, t + 1):
        s += logs[i - 1] + _times(S, J[i - 1].T, mins[i - 1], state, Pm, Pe, Mm, Me, Cm, Ce, buf)
        if not np.isfinite(s):
            break
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
