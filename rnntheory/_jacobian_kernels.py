"""Private Numba kernels for long products of step Jacobians.

Products are accumulated with rescaling: the running product ``P`` is kept
with its largest entry near 1 and the scale is carried separately as a natural
log, so nothing overflows or underflows whatever the number of factors.

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

import numpy as np
from numba import njit

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


@njit(cache=True, fastmath=False, error_model="numpy")
def _rescale(P):
    """Divide ``P`` by its largest absolute entry; return the log of that entry."""
    s = 0.0
    ok = True
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            a = abs(P[i, j])
            if a > s:
                s = a
            elif not (a == a):
                ok = False
    if not ok or not np.isfinite(s):
        return np.nan
    if s == 0.0:
        return -np.inf
    for i in range(P.shape[0]):
        for j in range(P.shape[1]):
            P[i, j] /= s
    return np.log(s)


@njit(cache=True, fastmath=False, error_model="numpy")
def prescale(J):
    """``(Js, logs)``: every step Jacobian divided by its largest |entry|, and the
    log of that entry (``−inf`` for a zero matrix, NaN for a non-finite one).

    The products are then formed from factors whose largest entry is 1, so a
    factor whose entries are all tiny (a saturated unit, a weight of 1e-181)
    cannot drive a product below float64's range before it is rescaled; the
    log of the product's scale collects ``logs``.
    """
    Js = J.copy()
    logs = np.empty(J.shape[0])
    for i in range(J.shape[0]):
        logs[i] = _rescale(Js[i])
    return Js, logs


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norms_rows(J, logs, L, r, k):
    """Rows ``t ≡ r (mod k)`` of ``L[t, k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for ``k' ≤ t``
    (``J[i-1] = ∂h_i/∂h_{i−1}``), written into ``L (T+1, T+1)``.

    ``J`` and ``logs`` are :func:`prescale`'s: ``J_i = e^{logs[i-1]} J[i-1]``.
    Row t accumulates ``P ← P J_k'`` for k' = t−1 down to 0; ``−inf`` above the
    diagonal and for products that are exactly zero. Rows are independent, so
    the ``k`` residue classes may run in concurrent threads (the GIL is
    released); taking every k-th row balances their cost, which grows with t.
    """
    T, n, _ = J.shape
    P = np.empty((n, n))
    buf = np.empty((n, n))
    work = np.empty((n, n))
    v = np.empty(n)
    y = np.empty(n)
    for t in range(r, T + 1, k):
        L[t, :] = -np.inf
        L[t, t] = 0.0
        if t == 0:
            continue
        P[:, :] = J[t - 1]
        log_scale = logs[t - 1]
        u = _start_vector(n)
        for kk in range(t - 1, -1, -1):
            if kk < t - 1:
                np.dot(P, J[kk], buf)
                P[:, :] = buf
                log_scale += logs[kk] + _rescale(P)
            if log_scale == -np.inf:
                break  # the product is zero from here on: L stays -inf
            if not np.isfinite(log_scale):
                for j in range(kk, -1, -1):
                    L[t, j] = np.nan
                break
            L[t, kk] = log_scale + np.log(sigma_max(P, u, v, y, work))


@njit(cache=True, fastmath=False, error_model="numpy")
def log_norm_profile(J, logs, k):
    """``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``t ≥ k`` (``−inf`` for ``t < k``).

    Accumulates the transpose ``S = Pᵀ ← S J_tᵀ`` so that the warm-started
    vector is the right singular vector of ``P``, which settles as t grows.
    ``J`` and ``logs`` are :func:`prescale`'s.
    """
    T, n, _ = J.shape
    out = np.full(T + 1, -np.inf)
    out[k] = 0.0
    S = np.eye(n)
    buf = np.empty((n, n))
    work = np.empty((n, n))
    u = _start_vector(n)
    v = np.empty(n)
    y = np.empty(n)
    log_scale = 0.0
    for t in range(k + 1, T + 1):
        np.dot(S, J[t - 1].T, buf)
        S[:, :] = buf
        log_scale += logs[t - 1] + _rescale(S)
        if log_scale == -np.inf:
            break
        if not np.isfinite(log_scale):
            out[t:] = np.nan
            break
        out[t] = log_scale + np.log(sigma_max(S, u, v, y, work))
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def scaled_product(J, t, k):
    """``(P, s)`` with ``J_t ⋯ J_{k+1} = e^s P`` (``P`` rescaled, largest entry 1)."""
    n = J.shape[1]
    P = np.eye(n)
    buf = np.empty((n, n))
    s = 0.0
    for i in range(k + 1, t + 1):
        np.dot(J[i - 1], P, buf)
        P[:, :] = buf
        s += _rescale(P)
        if not np.isfinite(s):
            break
    return P, s


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
