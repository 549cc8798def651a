"""Step Jacobians of the LSTM and GRU from a recorded trajectory (float64, vectorised).

Numerator layout, ``J[a, b] = ∂s_t[a]/∂s_{t−1}[b]``. The LSTM's state is
``s = (h, c)`` (``2n`` entries, ``h`` first); the GRU's is ``h``. With
``W_x`` the gate block ``x`` of ``weight_hh`` (rows ``x·n … (x+1)·n``):

LSTM, gates ``i, f, g, o`` at pre-activations ``a``::

    ∂c′/∂h = diag(c σ′(a_f)) W_f + diag(g σ′(a_i)) W_i + diag(i tanh′(a_g)) W_g
    ∂c′/∂c = diag(f)                                  (the "carousel")
    ∂h′/∂h = diag(tanh(c′) σ′(a_o)) W_o + diag(o tanh′(c′)) ∂c′/∂h
    ∂h′/∂c = diag(o tanh′(c′) f)

GRU, ``h′ = (1 − z) n + z h`` with ``n = tanh(a_n)``, ``a_n = W_in x + b_in + r (W_hn h + b_hn)``::

    ∂h′/∂h = diag(z) + diag((h − n) σ′(a_z)) W_z
             + diag((1 − z) tanh′(a_n)) [diag((W_hn h + b_hn) σ′(a_r)) W_r + diag(r) W_n]
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation

_SIG = get_activation("sigmoid")
_TANH = get_activation("tanh")


def _lstm_parts(
    weight_hh: np.ndarray, c: np.ndarray, pre: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """``weight_hh``, the cells ``c`` and the pre-activations ``(a_i, a_f, a_g, a_o)``, in float64."""
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    return W, np.asarray(c, np.float64), (a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:])


def _gru_parts(
    weight_hh: np.ndarray, h: np.ndarray, pre: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``weight_hh``, ``h_{t−1}``, ``W_hn h_{t−1} + b_hn``, the pre-activations
    ``(a_r, a_z, a_n)`` and the gates ``(r, z, n)``, in float64."""
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    ar, az, an, hn = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    return W, np.asarray(h, np.float64)[:-1], hn, (ar, az, an), (_SIG.f(ar), _SIG.f(az), _TANH.f(an))


def lstm_step_jacobians(weight_hh: np.ndarray, c: np.ndarray, pre: np.ndarray, block: str) -> np.ndarray:
    """``(T, 2n, 2n)`` Jacobians of ``(h, c)``, or the ``(T, n, n)`` carousel ``diag(f_t)``."""
    W, c, (ai, af, ag, ao) = _lstm_parts(weight_hh, c, pre)
    n = W.shape[1]
    T = ai.shape[0]
    f = _SIG.f(af)
    if block == "c":
        out = np.zeros((T, n, n))
        idx = np.arange(n)
        out[:, idx, idx] = f
        return out
    i, g, o = _SIG.f(ai), _TANH.f(ag), _SIG.f(ao)
    c_prev, c_new = c[:-1], c[1:]
    Wi, Wf, Wg, Wo = W[:n], W[n:2 * n], W[2 * n:3 * n], W[3 * n:]
    dc_dh = (
        (c_prev * _SIG.fprime(af))[:, :, None] * Wf[None]
        + (g * _SIG.fprime(ai))[:, :, None] * Wi[None]
        + (i * _TANH.fprime(ag))[:, :, None] * Wg[None]
    )
    tc, dtc = _TANH.f(c_new), _TANH.fprime(c_new)
    dh_dh = (tc * _SIG.fprime(ao))[:, :, None] * Wo[None] + (o * dtc)[:, :, None] * dc_dh
    J = np.zeros((T, 2 * n, 2 * n))
    idx = np.arange(n)
    J[:, :n, :n] = dh_dh
    J[:, idx, n + idx] = o * dtc * f
    J[:, n:, :n] = dc_dh
    J[:, n + idx, n + idx] = f
    return J


def gru_step_jacobians(weight_hh: np.ndarray, h: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """``(T, n, n)`` Jacobians ``∂h_t/∂h_{t−1}`` of the GRU."""
    W, h_prev, hn, (ar, az, an), (r, z, nn) = _gru_parts(weight_hh, h, pre)
    n = W.shape[1]
    Wr, Wz, Wn = W[:n], W[n:2 * n], W[2 * n:]
    dn_dh = _TANH.fprime(an)[:, :, None] * (
        (hn * _SIG.fprime(ar))[:, :, None] * Wr[None] + r[:, :, None] * Wn[None]
    )
    J = ((h_prev - nn) * _SIG.fprime(az))[:, :, None] * Wz[None] + (1.0 - z)[:, :, None] * dn_dh
    idx = np.arange(n)
    J[:, idx, idx] += z
    return J


_LN2 = 0.6931471805599453


def log_spectral_norms(M: np.ndarray, *, gram: bool = False) -> np.ndarray:
    """``ln σ_max`` of each matrix of a stack ``(..., p, q)``, scaled so nothing overflows.

    Each matrix is multiplied by the power of two ``2^-e`` that brings its
    largest |entry| into [1/2, 1) (exact) before LAPACK's SVD, and ``e ln 2``
    is added back: finite for every finite matrix, entries of 1e308 included
    (``ln σ_max`` of such a matrix exceeds ``ln`` of the largest float64, so
    ``σ_max`` itself would overflow to inf). ``−inf`` for a zero matrix, NaN
    for one with a NaN or inf entry (no SVD is attempted on it).

    ``gram=True``: ``σ_max² = λ_max`` of the smaller Gram matrix ``M Mᵀ`` or
    ``MᵀM`` by a symmetric eigensolver instead of the SVD, about three times
    faster on a stack's blocks. After the scaling ``λ_max ≥ 1/4``, and the
    Gram matrix's rounding moves ``σ_max`` by a relative ``O(min(p, q) ε)``.
    """
    M = np.asarray(M, np.float64)
    lead = M.shape[:-2]
    flat = M.reshape(-1, *M.shape[-2:])
    out = np.full(flat.shape[0], np.nan)
    if flat.shape[1] == 0 or flat.shape[2] == 0:
        out[:] = -np.inf
        return out.reshape(lead)
    finite = np.isfinite(flat).all(axis=(1, 2))
    big = np.where(finite[:, None, None], np.abs(flat), 0.0).max(axis=(1, 2))
    out[finite & (big == 0.0)] = -np.inf
    ok = finite & (big > 0.0)
    if ok.any():
        e = np.frexp(big[ok])[1]
        scaled = np.ldexp(flat[ok], -e[:, None, None])
        if gram:
            St = np.swapaxes(scaled, 1, 2)
            with np.errstate(under="ignore"):
                G = scaled @ St if scaled.shape[1] <= scaled.shape[2] else St @ scaled
            out[ok] = 0.5 * np.log(np.linalg.eigvalsh(G)[:, -1]) + e * _LN2
        else:
            out[ok] = np.log(np.linalg.norm(scaled, 2, axis=(1, 2))) + e * _LN2
    return out.reshape(lead)


def _log_max_product(*factors: np.ndarray) -> np.ndarray:
    """``ln max_j |Π_f f[:, j]|`` per step, as ``max_j Σ_f ln|f[:, j]|``: no
    product is formed, so none underflows (``−inf`` where every product has a
    zero factor)."""
    with np.errstate(divide="ignore"):
        total = np.log(np.abs(factors[0]))
        for f in factors[1:]:
            total = total + np.log(np.abs(f))
    return total.max(axis=1)


def _log_sum(*logs: np.ndarray) -> np.ndarray:
    """``ln Σ_i e^{logs_i}`` elementwise (``−inf`` terms are zeros)."""
    out = logs[0]
    for x in logs[1:]:
        out = np.logaddexp(out, x)
    return out


def _log_two_by_two_norm(la: np.ndarray, lb: np.ndarray, lc: np.ndarray, ld: np.ndarray) -> np.ndarray:
    """``ln`` of the spectral norm of ``[[a, b], [c, d]]`` (entries ≥ 0) given their logs.

    The four entries are divided by the largest before the closed form, so
    their squares neither overflow (entries of 1e160) nor underflow (1e-200):
    the norm of the 2 × 2 matrix of blocks' norms is then formed from numbers
    in [0, 1].
    """
    top = np.maximum(np.maximum(la, lb), np.maximum(lc, ld))
    zero = top == -np.inf
    ref = np.where(zero, 0.0, top)
    a, b, c, d = (np.exp(x - ref) for x in (la, lb, lc, ld))
    tr = a * a + b * b + c * c + d * d
    det = a * d - b * c
    norm = np.sqrt(0.5 * (tr + np.sqrt(np.maximum(tr * tr - 4.0 * det * det, 0.0))))
    with np.errstate(divide="ignore"):
        return np.where(zero, -np.inf, np.log(norm) + ref)


def lstm_step_log_bounds(weight_hh: np.ndarray, c: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Per-step upper bounds on ``ln ‖∂(h, c)_t/∂(h, c)_{t−1}‖`` from gate values and weight norms.

    With ``J = [[A, B], [C, D]]`` (see the module docstring), the triangle
    inequality and ``‖diag(v) M‖ ≤ max|v| ‖M‖`` give
    ``‖C‖ ≤ κ_C = max|c σ′(a_f)| ‖W_f‖ + max|g σ′(a_i)| ‖W_i‖ + max|i tanh′(a_g)| ‖W_g‖``,
    ``‖A‖ ≤ max|tanh(c′) σ′(a_o)| ‖W_o‖ + max|o tanh′(c′)| κ_C``, ``‖B‖ = max|o tanh′(c′) f|``,
    ``‖D‖ = max f``; the norm of a block matrix is at most the norm of the
    2 × 2 matrix of its blocks' norms. Everything is formed as logs (products
    as sums of logs, sums by ``logaddexp``), so the bound neither overflows
    for weights of 1e200 nor underflows for saturated gates: it is finite
    wherever the step's values are.
    """
    W, c, (ai, af, ag, ao) = _lstm_parts(weight_hh, c, pre)
    n = W.shape[1]
    i, f, g, o = _SIG.f(ai), _SIG.f(af), _TANH.f(ag), _SIG.f(ao)
    lw = log_spectral_norms(W.reshape(4, n, n))
    c_prev, c_new = c[:-1], c[1:]
    tc, dtc = _TANH.f(c_new), _TANH.fprime(c_new)
    lkc = _log_sum(
        _log_max_product(c_prev, _SIG.fprime(af)) + lw[1],
        _log_max_product(g, _SIG.fprime(ai)) + lw[0],
        _log_max_product(i, _TANH.fprime(ag)) + lw[2],
    )
    lka = np.logaddexp(_log_max_product(tc, _SIG.fprime(ao)) + lw[3], _log_max_product(o, dtc) + lkc)
    lkb = _log_max_product(o, dtc, f)
    lkd = _log_max_product(f)
    return _log_two_by_two_norm(lka, lkb, lkc, lkd)


def gru_step_log_bounds(weight_hh: np.ndarray, h: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Per-step upper bounds on ``ln ‖∂h_t/∂h_{t−1}‖`` of the GRU from gate values and weight norms.

    ``‖J‖ ≤ max z + max|(h − n) σ′(a_z)| ‖W_z‖ + max|(1 − z) tanh′(a_n) (W_hn h + b_hn) σ′(a_r)| ‖W_r‖
    + max|(1 − z) tanh′(a_n) r| ‖W_n‖`` (triangle inequality, ``‖diag(v) M‖ ≤ max|v| ‖M‖``),
    formed as logs like :func:`lstm_step_log_bounds`. The carry term
    ``diag(z)`` alone can reach 1: no bound of the form ``(γ_W γ_h)^(t−k)`` applies.
    """
    W, h_prev, hn, (ar, az, an), (r, z, nn) = _gru_parts(weight_hh, h, pre)
    n = W.shape[1]
    lw = log_spectral_norms(W.reshape(3, n, n))
    one_minus_z, dtn = 1.0 - z, _TANH.fprime(an)
    return _log_sum(
        _log_max_product(z),
        _log_max_product(h_prev - nn, _SIG.fprime(az)) + lw[1],
        _log_max_product(one_minus_z, dtn, hn, _SIG.fprime(ar)) + lw[0],
        _log_max_product(one_minus_z, dtn, r) + lw[2],
    )
