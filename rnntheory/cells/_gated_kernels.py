"""Private Numba kernels of the LSTM and GRU cells (PyTorch's conventions).

Arrays are time-major and batched: ``x (T, B, n_in)``, states ``(T+1, B, n)``
with index 0 the initial state. Weights are passed transposed and
C-contiguous (``W_ihT (n_in, G·n)``, ``W_hhT (n, G·n)``, G = 4 gates for the
LSTM, 3 for the GRU) for the forward pass, as they are (``W_hh (G·n, n)``) for
the backward pass. Every elementwise nonlinearity goes through the
vectorisable functions of ``rnntheory._vecmath``; derivatives are taken from
pre-activations (``σ′(a) = e^{−|a|}/(1+e^{−|a|})²``, ``tanh′ = sech²``), never
as ``s(1 − s)`` or ``1 − tanh²``, which lose all digits in saturation.

LSTM (``torch.nn.LSTMCell``): gates ``i, f, g, o`` from
``W_ih x + b_ih + W_hh h + b_hh``; ``c′ = σ(f)⊙c + σ(i)⊙tanh(g)``,
``h′ = σ(o)⊙tanh(c′)``.

GRU (``torch.nn.GRUCell``): ``r, z`` from the sum of both projections,
``n = tanh(W_in x + b_in + σ(r)⊙(W_hn h + b_hn))``, ``h′ = (1 − z)⊙n + z⊙h``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._vecmath import sigmoid_prime, sigmoid_prime_f32, tanh_sech2, tanh_sech2_f32
from ._elman_kernels import _BLAS_MIN_WORK, _rowmat_acc, _rowmat_blas_if, add_readout_grad


@njit(cache=True, fastmath=False, error_model="numpy")
def _project(X, MT, bias1, bias2, out, blas):
    """``out = X @ MT + bias1 + bias2`` (biases may be empty: then skipped).

    The product is one BLAS ``dot`` when ``blas``, else the kernels' own loops;
    the caller decides ``blas`` from the whole batch, so the arithmetic of a
    sequence does not depend on the range of the batch it is run in.
    """
    B = X.shape[0]
    m = MT.shape[1]
    _rowmat_blas_if(X, MT, out, blas)
    for b in range(B):
        o = out[b]
        if bias1.shape[0] > 0:
            for j in range(m):
                o[j] += bias1[j]
        if bias2.shape[0] > 0:
            for j in range(m):
                o[j] += bias2[j]


@njit(cache=True, fastmath=False, error_model="numpy")
def _sig_map(src, val, der):
    """``val = σ(src)``, ``der = σ′(src)`` over 1-D arrays (a loop LLVM vectorises;
    float32 arrays are computed in float32)."""
    if src.itemsize == 4:
        for j in range(src.shape[0]):
            v, d = sigmoid_prime_f32(src[j])
            val[j] = v
            der[j] = d
    else:
        for j in range(src.shape[0]):
            v, d = sigmoid_prime(src[j])
            val[j] = v
            der[j] = d


@njit(cache=True, fastmath=False, error_model="numpy")
def _tanh_map(src, val, der):
    """``val = tanh(src)``, ``der = sech²(src)`` over 1-D arrays (float32 in float32)."""
    if src.itemsize == 4:
        for j in range(src.shape[0]):
            v, d = tanh_sech2_f32(src[j])
            val[j] = v
            der[j] = d
    else:
        for j in range(src.shape[0]):
            v, d = tanh_sech2(src[j])
            val[j] = v
            der[j] = d


# ----------------------------------------------------------------------------- LSTM
@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_forward(W_ihT, W_hhT, b_ih, b_hh, x, h0, c0, H, C, P, b0=0, b1=-1):
    """Fill ``H, C (T+1, B, n)`` and the gate pre-activations ``P (T, B, 4n)``.

    Only the sequences ``b0 ≤ b < b1`` of the batch are run (``b1 < 0``: to the
    end). Sequences never interact, so disjoint ranges may run in concurrent
    threads on the same arrays (the kernel releases the GIL); whether a step's
    products go to BLAS is decided from the whole batch, so each sequence's
    arithmetic does not depend on the range it belongs to.
    """
    T, Ball, n_in = x.shape
    if b1 < 0:
        b1 = Ball
    B = b1 - b0
    n = h0.shape[1]
    blas_x = Ball * n_in * 4 * n >= _BLAS_MIN_WORK  # the whole batch decides
    blas_h = Ball * n * 4 * n >= _BLAS_MIN_WORK
    H[0, b0:b1, :] = h0[b0:b1]
    C[0, b0:b1, :] = c0[b0:b1]
    gh = np.empty((B, 4 * n), dtype=H.dtype)
    val = np.empty(4 * n, dtype=H.dtype)  # gate values i, f, g, o
    der = np.empty(4 * n, dtype=H.dtype)  # (their derivatives, unused here)
    tc = np.empty(n, dtype=H.dtype)
    dtc = np.empty(n, dtype=H.dtype)
    for t in range(1, T + 1):
        pt = P[t - 1, b0:b1]
        _project(x[t - 1, b0:b1], W_ihT, b_ih, b_hh, pt, blas_x)
        _project(H[t - 1, b0:b1], W_hhT, b_ih[:0], b_hh[:0], gh, blas_h)
        for b in range(B):
            pb = pt[b]
            gb = gh[b]
            cp = C[t - 1, b0 + b]
            cb = C[t, b0 + b]
            hb = H[t, b0 + b]
            for j in range(4 * n):
                pb[j] += gb[j]
            # one simple map per nonlinearity: each loop vectorises
            _sig_map(pb[: 2 * n], val[: 2 * n], der[: 2 * n])
            _tanh_map(pb[2 * n : 3 * n], val[2 * n : 3 * n], der[2 * n : 3 * n])
            _sig_map(pb[3 * n :], val[3 * n :], der[3 * n :])
            for j in range(n):
                cb[j] = val[n + j] * cp[j] + val[j] * val[2 * n + j]
            _tanh_map(cb, tc, dtc)
            for j in range(n):
                hb[j] = val[3 * n + j] * tc[j]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_backward(W_hh, W_yh, dZ, C, P, flow_h, flow_c, D, chunk=0, b0=0, b1=-1):
    """BPTT for the LSTM.

    ``dZ (T, B, n_out)`` is ``∂E/∂y_t`` (``W_yh`` None: ``∂E/∂h_t`` itself).
    Fills ``flow_h``, ``flow_c (T+1, B, n)`` with the total derivatives
    ``∂E/∂h_k`` and ``∂E/∂c_k`` (k = 0..T) and ``D (T, B, 4n)`` with
    ``∂E/∂(gate pre-activations)``, from which every weight gradient is one
    matrix product (done by the caller).

    ``chunk > 0`` is chunked truncated BPTT, BPTT(chunk, chunk) of Williams &
    Peng: nothing (through ``h`` or ``c``) propagates from a step ``t`` with
    ``t − 1`` a multiple of ``chunk`` back to step ``t − 1``.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    if b1 < 0:
        b1 = Ball
    B = b1 - b0
    n = n4 // 4
    blas = Ball * n4 * n >= _BLAS_MIN_WORK  # the whole batch decides
    flow_h[T, b0:b1, :] = 0.0
    carry_c = np.zeros((B, n), dtype=flow_h.dtype)
    val = np.empty(4 * n, dtype=flow_h.dtype)
    der = np.empty(4 * n, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    for t in range(T, 0, -1):
        dh = flow_h[t, b0:b1]
        add_readout_grad(dZ[t - 1, b0:b1], W_yh, dh)
        d = D[t - 1, b0:b1]
        for b in range(B):
            pb = P[t - 1, b0 + b]
            db = d[b]
            cp = C[t - 1, b0 + b]
            dcb = flow_c[t, b0 + b]
            dhb = dh[b]
            ccb = carry_c[b]
            _sig_map(pb[: 2 * n], val[: 2 * n], der[: 2 * n])
            _tanh_map(pb[2 * n : 3 * n], val[2 * n : 3 * n], der[2 * n : 3 * n])
            _sig_map(pb[3 * n :], val[3 * n :], der[3 * n :])
            _tanh_map(C[t, b0 + b], tc, dtc)
            for j in range(n):
                dhj = dhb[j]
                dc = ccb[j] + dhj * val[3 * n + j] * dtc[j]
                dcb[j] = dc
                db[j] = dc * val[2 * n + j] * der[j]
                db[n + j] = dc * cp[j] * der[n + j]
                db[2 * n + j] = dc * val[j] * der[2 * n + j]
                db[3 * n + j] = dhj * tc[j] * der[3 * n + j]
                ccb[j] = dc * val[n + j]
        out = flow_h[t - 1, b0:b1]
        if chunk > 0 and (t - 1) % chunk == 0:  # a block boundary: nothing crosses it
            out[:, :] = 0.0
            carry_c[:, :] = 0.0
            continue
        # ∂E/∂h_{t−1} = D_t W_hh (the only path from h_{t−1} is through the gates)
        _rowmat_blas_if(d, W_hh, out, blas)
    flow_c[0, b0:b1, :] = carry_c


# ----------------------------------------------------------------------------- GRU
@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_forward(W_ihT, W_hhT, b_ih, b_hh, x, h0, H, P, b0=0, b1=-1):
    """Fill ``H (T+1, B, n)`` and ``P (T, B, 4n)``: pre-activations of r, z, n
    and the hidden projection of the candidate ``W_hn h + b_hn``.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n_in = x.shape
    if b1 < 0:
        b1 = Ball
    B = b1 - b0
    n = h0.shape[1]
    blas_x = Ball * n_in * 3 * n >= _BLAS_MIN_WORK  # the whole batch decides
    blas_h = Ball * n * 3 * n >= _BLAS_MIN_WORK
    H[0, b0:b1, :] = h0[b0:b1]
    gi = np.empty((B, 3 * n), dtype=H.dtype)
    gh = np.empty((B, 3 * n), dtype=H.dtype)
    val = np.empty(3 * n, dtype=H.dtype)
    der = np.empty(3 * n, dtype=H.dtype)
    for t in range(1, T + 1):
        _project(x[t - 1, b0:b1], W_ihT, b_ih, b_ih[:0], gi, blas_x)
        _project(H[t - 1, b0:b1], W_hhT, b_hh, b_hh[:0], gh, blas_h)
        for b in range(B):
            pb = P[t - 1, b0 + b]
            ib = gi[b]
            hb_ = gh[b]
            hp = H[t - 1, b0 + b]
            hb = H[t, b0 + b]
            for j in range(2 * n):
                pb[j] = ib[j] + hb_[j]
            _sig_map(pb[: 2 * n], val[: 2 * n], der[: 2 * n])
            for j in range(n):
                hn = hb_[2 * n + j]
                pb[3 * n + j] = hn
                pb[2 * n + j] = ib[2 * n + j] + val[j] * hn
            _tanh_map(pb[2 * n : 3 * n], val[2 * n :], der[2 * n :])
            for j in range(n):
                z = val[n + j]
                hb[j] = (1.0 - z) * val[2 * n + j] + z * hp[j]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_backward(W_hh, W_yh, dZ, H, P, flow, D_hid, D_in, chunk=0, b0=0, b1=-1):
    """BPTT for the GRU.

    Fills ``flow (T+1, B, n)`` with ``∂E/∂h_k`` and the derivatives with
    respect to the hidden-side pre-activations ``D_hid (T, B, 3n)``
    (``r, z`` and ``W_hn h + b_hn``) and the input-side ones ``D_in`` (``r, z``
    and ``W_in x + b_in``), from which the weight gradients follow.
    ``chunk`` as in :func:`lstm_backward`; ``b0, b1``: only these sequences of
    the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    if b1 < 0:
        b1 = Ball
    B = b1 - b0
    n = n4 // 4
    blas = Ball * 3 * n * n >= _BLAS_MIN_WORK  # the whole batch decides
    flow[T, b0:b1, :] = 0.0
    tmp = np.empty((B, n), dtype=flow.dtype)
    val = np.empty(3 * n, dtype=flow.dtype)
    der = np.empty(3 * n, dtype=flow.dtype)
    for t in range(T, 0, -1):
        dh = flow[t, b0:b1]
        add_readout_grad(dZ[t - 1, b0:b1], W_yh, dh)
        dhid = D_hid[t - 1, b0:b1]
        din = D_in[t - 1, b0:b1]
        for b in range(B):
            pb = P[t - 1, b0 + b]
            hp = H[t - 1, b0 + b]
            _sig_map(pb[: 2 * n], val[: 2 * n], der[: 2 * n])
            _tanh_map(pb[2 * n : 3 * n], val[2 * n :], der[2 * n :])
            for j in range(n):
                r, dr_ = val[j], der[j]
                z, dz_ = val[n + j], der[n + j]
                nn, dn_ = val[2 * n + j], der[2 * n + j]
                hn = pb[3 * n + j]
                g = dh[b, j]
                dan = g * (1.0 - z) * dn_
                dar = dan * hn * dr_
                daz = g * (hp[j] - nn) * dz_
                dhid[b, j] = dar
                dhid[b, n + j] = daz
                dhid[b, 2 * n + j] = dan * r
                din[b, j] = dar
                din[b, n + j] = daz
                din[b, 2 * n + j] = dan
                tmp[b, j] = g * z  # the direct path z ⊙ ∂E/∂h_t
        out = flow[t - 1, b0:b1]
        if chunk > 0 and (t - 1) % chunk == 0:
            out[:, :] = 0.0
            continue
        if blas:
            np.dot(dhid, W_hh, out)
            for b in range(B):
                ob = out[b]
                tb = tmp[b]
                for j in range(n):
                    ob[j] += tb[j]
        else:
            out[:, :] = tmp
            _rowmat_acc(dhid, W_hh, out)
