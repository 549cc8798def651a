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
