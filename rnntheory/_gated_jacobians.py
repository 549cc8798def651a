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


def lstm_step_jacobians(weight_hh: np.ndarray, c: np.ndarray, pre: np.ndarray, block: str) -> np.ndarray:
    """``(T, 2n, 2n)`` Jacobians of ``(h, c)``, or the ``(T, n, n)`` carousel ``diag(f_t)``."""
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    c = np.asarray(c, np.float64)
    ai, af, ag, ao = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    f = _SIG.f(af)
    if block == "c":
        T = a.shape[0]
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
    T = a.shape[0]
    J = np.zeros((T, 2 * n, 2 * n))
    idx = np.arange(n)
    J[:, :n, :n] = dh_dh
    J[:, idx, n + idx] = o * dtc * f
    J[:, n:, :n] = dc_dh
    J[:, n + idx, n + idx] = f
    return J


def gru_step_jacobians(weight_hh: np.ndarray, h: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """``(T, n, n)`` Jacobians ``∂h_t/∂h_{t−1}`` of the GRU."""
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    h_prev = np.asarray(h, np.float64)[:-1]
    ar, az, an, hn = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    r, z, nn = _SIG.f(ar), _SIG.f(az), _TANH.f(an)
    Wr, Wz, Wn = W[:n], W[n:2 * n], W[2 * n:]
    dn_dh = _TANH.fprime(an)[:, :, None] * (
        (hn * _SIG.fprime(ar))[:, :, None] * Wr[None] + r[:, :, None] * Wn[None]
    )
    J = ((h_prev - nn) * _SIG.fprime(az))[:, :, None] * Wz[None] + (1.0 - z)[:, :, None] * dn_dh
    idx = np.arange(n)
    J[:, idx, idx] += z
    return J


def _two_by_two_norm(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Spectral norm of ``[[a, b], [c, d]]`` (entries ≥ 0, vectorised over steps)."""
    tr = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt(0.5 * (tr + np.sqrt(np.maximum(tr * tr - 4.0 * det * det, 0.0))))


def lstm_step_bounds(weight_hh: np.ndarray, c: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Per-step upper bounds on ``‖∂(h, c)_t/∂(h, c)_{t−1}‖`` from gate values and weight norms.

    With ``J = [[A, B], [C, D]]`` (see the module docstring), the triangle
    inequality and ``‖diag(v) M‖ ≤ max|v| ‖M‖`` give
    ``‖C‖ ≤ κ_C = max|c σ′(a_f)| ‖W_f‖ + max|g σ′(a_i)| ‖W_i‖ + max|i tanh′(a_g)| ‖W_g‖``,
    ``‖A‖ ≤ max|tanh(c′) σ′(a_o)| ‖W_o‖ + max|o tanh′(c′)| κ_C``, ``‖B‖ = max|o tanh′(c′) f|``,
    ``‖D‖ = max f``; the norm of a block matrix is at most the norm of the
    2 × 2 matrix of its blocks' norms.
    """
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    c = np.asarray(c, np.float64)
    ai, af, ag, ao = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    i, f, g, o = _SIG.f(ai), _SIG.f(af), _TANH.f(ag), _SIG.f(ao)
    norms = [np.linalg.norm(W[k * n:(k + 1) * n], 2) for k in range(4)]
    c_prev, c_new = c[:-1], c[1:]
    tc, dtc = _TANH.f(c_new), _TANH.fprime(c_new)
    kc = (
        np.abs(c_prev * _SIG.fprime(af)).max(axis=1) * norms[1]
        + np.abs(g * _SIG.fprime(ai)).max(axis=1) * norms[0]
        + np.abs(i * _TANH.fprime(ag)).max(axis=1) * norms[2]
    )
    ka = np.abs(tc * _SIG.fprime(ao)).max(axis=1) * norms[3] + np.abs(o * dtc).max(axis=1) * kc
    kb = np.abs(o * dtc * f).max(axis=1)
    kd = f.max(axis=1)
    return _two_by_two_norm(ka, kb, kc, kd)


def gru_step_bounds(weight_hh: np.ndarray, h: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Per-step upper bounds on ``‖∂h_t/∂h_{t−1}‖`` of the GRU from gate values and weight norms.

    ``‖J‖ ≤ max z + max|(h − n) σ′(a_z)| ‖W_z‖ + max|(1 − z) tanh′(a_n) (W_hn h + b_hn) σ′(a_r)| ‖W_r‖
    + max|(1 − z) tanh′(a_n) r| ‖W_n‖`` (triangle inequality, ``‖diag(v) M‖ ≤ max|v| ‖M‖``).
    The carry term ``diag(z)`` alone can reach 1: no bound of the form
    ``(γ_W γ_h)^(t−k)`` applies.
    """
    W = np.asarray(weight_hh, np.float64)
    n = W.shape[1]
    a = np.asarray(pre, np.float64)
    h_prev = np.asarray(h, np.float64)[:-1]
    ar, az, an, hn = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    r, z, nn = _SIG.f(ar), _SIG.f(az), _TANH.f(an)
    nr, nz, nw = (np.linalg.norm(W[k * n:(k + 1) * n], 2) for k in range(3))
    dn = (1.0 - z) * _TANH.fprime(an)
    return (
        z.max(axis=1)
        + np.abs((h_prev - nn) * _SIG.fprime(az)).max(axis=1) * nz
        + np.abs(dn * hn * _SIG.fprime(ar)).max(axis=1) * nr
        + np.abs(dn * r).max(axis=1) * nw
    )
