"""Private Numba kernels for long products of step Jacobians.

Products are accumulated with rescaling: the running product ``P`` is kept
with its largest entry near 1 and the scale is carried separately as a natural
log, so nothing overflows or underflows whatever the number of factors.
Spectral norms of the rescaled products come from a warm-started power
iteration on ``P Pᵀ`` (the dominant left singular vector of ``J_t ⋯ J_{k+1}``
changes little from one ``k`` to the next), with LAPACK's SVD as the fallback
when the iteration does not settle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POWER_TOL = 1e-14
_POWER_MAXIT = 200


@njit(cache=True, fastmath=False, error_model="numpy")
def _norm2(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return np.sqrt(s)


@njit(cache=True, fastmath=False, error_model="numpy")
def sigma_max(P, u, v, y):
    """Largest singular value of ``P``; ``u`` is the warm start, updated in place.

    Power iteration on ``P Pᵀ``: ``s1 = ‖Pᵀu‖`` and ``s2 = ‖P v‖`` with
    ``v = Pᵀu/s1`` are both lower bounds of σ_max that increase monotonically;
    stop when they agree to ``_POWER_TOL`` relative, else use the SVD.
    """
    n, m = P.shape
    for it in range(_POWER_MAXIT):
        np.dot(u, P, v)  # v = Pᵀ u
        s1 = _norm2(v)
        if not (s1 > 0.0 and np.isfinite(s1)):
            break
        for j in range(m):
            v[j] /= s1
        np.dot(P, v, y)
        s2 = _norm2(y)
        if not (s2 > 0.0 and np.isfinite(s2)):
            break
        for i in range(n):
            u[i] = y[i] / s2
        if it >= 1 and s2 - s1 <= _POWER_TOL * s2:
            return s2
    # Fallback: the iteration met a null vector, a non-finite value, or did not settle.
    if not np.all(np.isfinite(P)):
        return np.nan
    s = np.linalg.svd(P)[1]
    for i in range(n):
        u[i] = 1.0 / np.sqrt(n)
    return s[0]


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
def log_norms(J):
    """``L[t, k] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``k ≤ t`` (``J[i-1] = ∂h_i/∂h_{i−1}``).

    Row t accumulates ``P ← P J_k`` for k = t−1 down to 0; ``−inf`` above the
    diagonal and for products that are exactly zero.
    """
    T, n, _ = J.shape
    L = np.full((T + 1, T + 1), -np.inf)
    P = np.empty((n, n))
    buf = np.empty((n, n))
    v = np.empty(n)
    y = np.empty(n)
    for t in range(T + 1):
        L[t, t] = 0.0
        if t == 0:
            continue
        P[:, :] = J[t - 1]
        log_scale = _rescale(P)
        u = _start_vector(n)
        for k in range(t - 1, -1, -1):
            if k < t - 1:
                np.dot(P, J[k], buf)
                P[:, :] = buf
                log_scale += _rescale(P)
            if log_scale == -np.inf:
                break  # the product is zero from here on: L stays -inf
            if not np.isfinite(log_scale):
                for kk in range(k, -1, -1):
                    L[t, kk] = np.nan
                break
            L[t, k] = log_scale + np.log(sigma_max(P, u, v, y))
    return L


@njit(cache=True, fastmath=False, error_model="numpy")
def log_norm_profile(J, k):
    """``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``t ≥ k`` (``−inf`` for ``t < k``).

    Accumulates the transpose ``S = Pᵀ ← S J_tᵀ`` so that the warm-started
    vector is the right singular vector of ``P``, which settles as t grows.
    """
    T, n, _ = J.shape
    out = np.full(T + 1, -np.inf)
    out[k] = 0.0
    S = np.eye(n)
    buf = np.empty((n, n))
    u = _start_vector(n)
    v = np.empty(n)
    y = np.empty(n)
    log_scale = 0.0
    for t in range(k + 1, T + 1):
        np.dot(S, J[t - 1].T, buf)
        S[:, :] = buf
        log_scale += _rescale(S)
        if log_scale == -np.inf:
            break
        if not np.isfinite(log_scale):
            out[t:] = np.nan
            break
        out[t] = log_scale + np.log(sigma_max(S, u, v, y))
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
def lyapunov(J, k):
    """Sum over steps of ``ln |diag R|`` from QR re-orthonormalisation (k directions)."""
    T, n, _ = J.shape
    Q = np.ascontiguousarray(np.eye(n)[:, :k])
    sums = np.zeros(k)
    for i in range(T):
        Z = np.dot(J[i], np.ascontiguousarray(Q))
        Q, R = np.linalg.qr(Z)
        for j in range(k):
            sums[j] += np.log(abs(R[j, j]))
    return sums
