"""Private Numba kernels of the Gauss–Newton–vector product of the LSTM and the GRU.

The R-forward pass (Pearlmutter's R-operator ``R{·} = d(·)/dε`` along a
parameter direction ``v``) runs along a forward trace the caller stored once
(:func:`rnntheory.cells._gated_kernels.lstm_forward` /
:func:`~rnntheory.cells._gated_kernels.gru_forward`). The gate values and
their derivatives at the stored pre-activations do not depend on ``v``: the
``*_gv_trace`` kernels compute them once, and every product then runs the
recurrence on them with one matrix product per step. Derivatives are taken from
the pre-activations (``σ′(a) = e^{−|a|}/(1+e^{−|a|})²``, ``tanh′ = sech²``), as
in the cells' own kernels. Arrays are time-major, batched and C-contiguous; the
kernels release the GIL and run a range ``b0 ≤ b < b1`` of the sequences, so
the caller may run disjoint ranges in threads of its own (whether a step's
product goes to BLAS is decided from the whole batch).

The part of ``R{a_t}`` that does not depend on the recurrence (``ΔW_ih x_t +
ΔW_hh h_{t−1} + Δb``, the parameter direction applied to the stored inputs and
states) is formed by the caller for all steps in one matrix product and passed
in; the kernels run the recurrence only.

LSTM (``torch.nn.LSTMCell``): with ``a_t`` the gate pre-activations
``(i, f, g, o)``, ``c_t = σ(f)⊙c_{t−1} + σ(i)⊙tanh(g)``, ``h_t = σ(o)⊙tanh(c_t)``:
``R{a_t} = S_t + W_hh R{h_{t−1}}``,
``R{c_t} = σ′(f)R{f}⊙c_{t−1} + σ(f)⊙R{c_{t−1}} + σ′(i)R{i}⊙tanh(g) + σ(i)⊙tanh′(g)R{g}``,
``R{h_t} = σ′(o)R{o}⊙tanh(c_t) + σ(o)⊙tanh′(c_t)⊙R{c_t}``.

GRU (``torch.nn.GRUCell``): ``r = σ(a_r)``, ``z = σ(a_z)``,
``n = tanh(a_n)`` with ``a_n = W_in x + b_in + r⊙(W_hn h + b_hn)``,
``h′ = (1 − z)⊙n + z⊙h``:
``R{a_{r,z}} = S^in + S^hid + (W_hh R{h})_{r,z}``,
``R{a_n} = S^in_n + R{r}⊙(W_hn h + b_hn) + r⊙(S^hid_n + (W_hh R{h})_n)``,
``R{h′} = (1 − z)⊙R{n} + R{z}⊙(h − n) + z⊙R{h}``.

Martens & Sutskever 2011, §3 (R-forward pass, Gauss–Newton products);
Pearlmutter 1994 (the R-operator); Schraudolph 2002.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._helper_kernels import (
    ACT_SIGMOID,
    ACT_TANH,
    BLAS_MIN_WORK,
    activate_both,
    batch_range,
    rowmat_blas_if,
)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_gv_trace(P, C, VAL, DER, TC, DTC, b0=0, b1=-1):
    """Fill the LSTM's gate values ``VAL (T, B, 4n)`` and derivatives ``DER``
    at the stored pre-activations ``P (T, B, 4n)``, and ``TC = tanh(c_t)``,
    ``DTC = tanh′(c_t)`` ``(T, B, n)`` from the cell states ``C (T+1, B, n)``
    (t = 1..T). ``b0, b1``: only these sequences."""
    T, Ball, n4 = P.shape
    b1, _ = batch_range(Ball, b0, b1)
    n = n4 // 4
    for t in range(T):
        for b in range(b0, b1):
            p = P[t, b]
            v = VAL[t, b]
            d = DER[t, b]
            activate_both(ACT_SIGMOID, p[: 2 * n], v[: 2 * n], d[: 2 * n])
            activate_both(ACT_TANH, p[2 * n : 3 * n], v[2 * n : 3 * n], d[2 * n : 3 * n])
            activate_both(ACT_SIGMOID, p[3 * n :], v[3 * n :], d[3 * n :])
            activate_both(ACT_TANH, C[t + 1, b], TC[t, b], DTC[t, b])


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_gv_rforward(W_hhT, S, VAL, DER, C, TC, DTC, RH, RC, b0=0, b1=-1):
    """Fill ``RH``, ``RC (T+1, B, n)`` with ``R{h_t}``, ``R{c_t}`` for t = 0..T
    (``R{h_0} = R{c_0} = 0``: the initial states do not depend on the parameters).

    ``W_hhT (n, 4n)`` is ``weight_hhᵀ``; ``S (T, B, 4n)`` the input- and
    state-driven part ``ΔW_ih x_t + ΔW_hh h_{t−1} + Δb_ih + Δb_hh``; ``VAL``,
    ``DER``, ``TC``, ``DTC`` from :func:`lstm_gv_trace`; ``C`` the stored cell
    states. ``b0, b1``: only these sequences (the rest is not touched).
    """
    T, Ball, n4 = S.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    blas = Ball * n * n4 >= BLAS_MIN_WORK  # the whole batch decides
    RH[0, b0:b1, :] = 0.0
    RC[0, b0:b1, :] = 0.0
    ra = np.empty((B, n4), dtype=RH.dtype)
    for t in range(1, T + 1):
        rowmat_blas_if(RH[t - 1, b0:b1], W_hhT, ra, blas)  # W_hh R{h_{t−1}}
        for b in range(B):
            bb = b0 + b
            r = ra[b]
            s = S[t - 1, bb]
            v = VAL[t - 1, bb]
            d = DER[t - 1, bb]
            cp = C[t - 1, bb]
            rcp = RC[t - 1, bb]
            tc = TC[t - 1, bb]
            dtc = DTC[t - 1, bb]
            rc = RC[t, bb]
            rh = RH[t, bb]
            for j in range(n):
                ri = d[j] * (r[j] + s[j])
                rf = d[n + j] * (r[n + j] + s[n + j])
                rg = d[2 * n + j] * (r[2 * n + j] + s[2 * n + j])
                ro = d[3 * n + j] * (r[3 * n + j] + s[3 * n + j])
                rcj = (rf * cp[j] + v[n + j] * rcp[j]) + (ri * v[2 * n + j] + v[j] * rg)
                rc[j] = rcj
                rh[j] = ro * tc[j] + v[3 * n + j] * (dtc[j] * rcj)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_gv_trace(P, VAL, DER, b0=0, b1=-1):
    """Fill the GRU's gate values ``VAL (T, B, 3n)`` (``r, z, n``) and their
    derivatives ``DER`` at the stored pre-activations ``P (T, B, 4n)`` (the
    layout of :func:`~rnntheory.cells._gated_kernels.gru_forward`).
    ``b0, b1``: only these sequences."""
    T, Ball, n4 = P.shape
    b1, _ = batch_range(Ball, b0, b1)
    n = n4 // 4
    for t in range(T):
        for b in range(b0, b1):
            p = P[t, b]
            v = VAL[t, b]
            d = DER[t, b]
            activate_both(ACT_SIGMOID, p[: 2 * n], v[: 2 * n], d[: 2 * n])
            activate_both(ACT_TANH, p[2 * n : 3 * n], v[2 * n :], d[2 * n :])


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_gv_rforward(W_hhT, S_in, S_hid, VAL, DER, P, H, RH, b0=0, b1=-1):
    """Fill ``RH (T+1, B, n)`` with ``R{h_t}`` for t = 0..T (``R{h_0} = 0``).

    ``W_hhT (n, 3n)`` is ``weight_hhᵀ``; ``S_in (T, B, 3n)`` is
    ``ΔW_ih x_t + Δb_ih`` and ``S_hid`` is ``ΔW_hh h_{t−1} + Δb_hh``; ``VAL``,
    ``DER`` from :func:`gru_gv_trace`; ``P`` the stored pre-activations (its
    last block ``W_hn h_{t−1} + b_hn``), ``H`` the stored states.
    ``b0, b1``: only these sequences.
    """
    T, Ball, n3 = S_in.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n3 // 3
    blas = Ball * n * n3 >= BLAS_MIN_WORK  # the whole batch decides
    RH[0, b0:b1, :] = 0.0
    rg = np.empty((B, n3), dtype=RH.dtype)
    for t in range(1, T + 1):
        rowmat_blas_if(RH[t - 1, b0:b1], W_hhT, rg, blas)  # W_hh R{h_{t−1}}
        for b in range(B):
            bb = b0 + b
            r = rg[b]
            si = S_in[t - 1, bb]
            sh = S_hid[t - 1, bb]
            v = VAL[t - 1, bb]
            d = DER[t - 1, bb]
            p = P[t - 1, bb]
            hp = H[t - 1, bb]
            rhp = RH[t - 1, bb]
            rh = RH[t, bb]
            for j in range(n):
                rr = d[j] * ((si[j] + sh[j]) + r[j])
                rz = d[n + j] * ((si[n + j] + sh[n + j]) + r[n + j])
                rn = d[2 * n + j] * (si[2 * n + j] + (rr * p[3 * n + j] + v[j] * (sh[2 * n + j] + r[2 * n + j])))
                z = v[n + j]
                rh[j] = ((1.0 - z) * rn + rz * (hp[j] - v[2 * n + j])) + z * rhp[j]
