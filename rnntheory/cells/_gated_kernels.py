"""Private Numba kernels of the LSTM and GRU cells (PyTorch's conventions).

Arrays are time-major and batched: ``x (T, B, n_in)``, states ``(T+1, B, n)``
with index 0 the initial state. Weights are passed transposed and
C-contiguous (``W_ihT (n_in, G·n)``, ``W_hhT (n, G·n)``, G = 4 gates for the
LSTM, 3 for the GRU) for the forward pass, as they are (``W_hh (G·n, n)``) for
the backward pass. Every elementwise nonlinearity goes through
``activate_row`` of :mod:`rnntheory.cells._helper_kernels` (the vectorisable
functions of ``rnntheory._vecmath``); derivatives are taken from
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

from ._helper_kernels import (
    ACT_SIGMOID,
    ACT_TANH,
    BLAS_MIN_WORK,
    activate,
    activate_both,
    add_readout_grad,
    add_rows,
    batch_range,
    rowmat_acc,
    rowmat_blas_if,
    truncation_block,
)


@njit(cache=True, fastmath=False, error_model="numpy")
def _project(X, MT, bias1, bias2, out, blas):
    """``out = X @ MT + bias1 + bias2`` (biases may be empty: then skipped).

    The product is one BLAS ``dot`` when ``blas``, else the kernels' own loops;
    the caller decides ``blas`` from the whole batch, so a sequence takes the
    same code path in any range of the batch.
    """
    B = X.shape[0]
    m = MT.shape[1]
    rowmat_blas_if(X, MT, out, blas)
    for b in range(B):
        o = out[b]
        if bias1.shape[0] > 0:
            for j in range(m):
                o[j] += bias1[j]
        if bias2.shape[0] > 0:
            for j in range(m):
                o[j] += bias2[j]


# ----------------------------------------------------------------------------- LSTM
@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_forward(W_ihT, W_hhT, b_ih, b_hh, x, h0, c0, H, C, P, b0=0, b1=-1):
    """Fill ``H, C (T+1, B, n)`` and the gate pre-activations ``P (T, B, 4n)``.

    Only the sequences ``b0 ≤ b < b1`` of the batch are run (``b1 < 0``: to the
    end). Sequences never interact, so disjoint ranges may run in concurrent
    threads on the same arrays (the kernel releases the GIL); whether a step's
    products go to BLAS is decided from the whole batch, so each sequence takes
    the same code path in any range (BLAS's rounding may still depend on the
    number of rows it is given).
    """
    T, Ball, n_in = x.shape
    b1, B = batch_range(Ball, b0, b1)
    n = h0.shape[1]
    blas_x = Ball * n_in * 4 * n >= BLAS_MIN_WORK  # the whole batch decides
    blas_h = Ball * n * 4 * n >= BLAS_MIN_WORK
    H[0, b0:b1, :] = h0[b0:b1]
    C[0, b0:b1, :] = c0[b0:b1]
    gh = np.empty((B, 4 * n), dtype=H.dtype)
    val = np.empty(4 * n, dtype=H.dtype)  # gate values i, f, g, o
    tc = np.empty(n, dtype=H.dtype)
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
            activate(ACT_SIGMOID, pb[: 2 * n], val[: 2 * n])
            activate(ACT_TANH, pb[2 * n : 3 * n], val[2 * n : 3 * n])
            activate(ACT_SIGMOID, pb[3 * n :], val[3 * n :])
            for j in range(n):
                cb[j] = val[n + j] * cp[j] + val[j] * val[2 * n + j]
            activate(ACT_TANH, cb, tc)
            for j in range(n):
                hb[j] = val[3 * n + j] * tc[j]


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _lstm_step_back(p, c_prev, c_t, dh, carry, dc, d, val, der, tc, dtc):
    """One LSTM step ``t`` of one sequence, backwards.

    In: ``p (4n)`` the gate pre-activations of step ``t``, ``c_prev = c_{t−1}``,
    ``c_t``, ``dh`` the gradient reaching ``h_t``, ``carry`` the gradient reaching
    ``c_t`` through ``c_{t+1}``. Out: ``dc = carry + dh ⊙ σ(o) ⊙ tanh′(c_t)`` (the
    gradient at ``c_t``), ``d (4n)`` the gradient at the pre-activations
    ``(i, f, g, o)``, and ``carry ← dc ⊙ σ(f)`` (what reaches ``c_{t−1}``
    through the cell). ``val, der (4n)``, ``tc, dtc (n)`` are scratch.
    """
    n = c_t.shape[0]
    activate_both(ACT_SIGMOID, p[: 2 * n], val[: 2 * n], der[: 2 * n])
    activate_both(ACT_TANH, p[2 * n : 3 * n], val[2 * n : 3 * n], der[2 * n : 3 * n])
    activate_both(ACT_SIGMOID, p[3 * n :], val[3 * n :], der[3 * n :])
    activate_both(ACT_TANH, c_t, tc, dtc)
    for j in range(n):
        dhj = dh[j]
        dcj = carry[j] + dhj * val[3 * n + j] * dtc[j]
        dc[j] = dcj
        d[j] = dcj * val[2 * n + j] * der[j]
        d[n + j] = dcj * c_prev[j] * der[n + j]
        d[2 * n + j] = dcj * val[j] * der[2 * n + j]
        d[3 * n + j] = dhj * tc[j] * der[3 * n + j]
        carry[j] = dcj * val[n + j]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_backward(W_hh, W_yh, dZ, C, P, flow_h, flow_c, D, UH, CC, chunk=0, b0=0, b1=-1):
    """BPTT for the LSTM.

    ``dZ (T, B, n_out)`` is ``∂E/∂y_t`` (``W_yh`` None: ``∂E/∂h_t`` itself).
    Fills ``flow_h``, ``flow_c (T+1, B, n)`` with the total derivatives
    ``∂E/∂h_k`` and ``∂E/∂c_k`` (k = 0..T) and ``D (T, B, 4n)`` with
    ``∂E/∂(gate pre-activations)``, from which every weight gradient is one
    matrix product (done by the caller).

    Where ``UH`` and ``CC`` are not empty, also the two halves of the
    whole-state flow that Pascanu's Ω reads (the state ``(h, c)``, ``h_k`` and
    ``c_k`` taken as separate coordinates): ``UH[k] = D[k] W_hh`` (``T, B, n``),
    the part of ``∂E/∂h_k`` that comes through step ``k+1``, before the loss
    at step ``k`` is added; ``CC[k] (T+1, B, n)``, the derivative at ``c_k``
    through ``c_{k+1}`` alone (the carry ``σ(a_f) ⊙ ∂E/∂c_{k+1}``; ``CC[T] = 0``).

    ``chunk > 0`` is chunked truncated BPTT, BPTT(chunk, chunk) of Williams &
    Peng: nothing (through ``h`` or ``c``) propagates from a step ``t`` with
    ``t − 1`` a multiple of ``chunk`` back to step ``t − 1``.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    blas = Ball * n4 * n >= BLAS_MIN_WORK  # the whole batch decides
    flow_h[T, b0:b1, :] = 0.0
    carry_c = np.zeros((B, n), dtype=flow_h.dtype)
    val = np.empty(4 * n, dtype=flow_h.dtype)
    der = np.empty(4 * n, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    parts = UH.shape[0] > 0
    for t in range(T, 0, -1):
        dh = flow_h[t, b0:b1]
        add_readout_grad(dZ[t - 1, b0:b1], W_yh, dh)
        d = D[t - 1, b0:b1]
        if parts:
            CC[t, b0:b1, :] = carry_c
        for b in range(B):
            _lstm_step_back(
                P[t - 1, b0 + b], C[t - 1, b0 + b], C[t, b0 + b], dh[b], carry_c[b],
                flow_c[t, b0 + b], d[b], val, der, tc, dtc,
            )
        out = flow_h[t - 1, b0:b1]
        if chunk > 0 and (t - 1) % chunk == 0:  # a block boundary: nothing crosses it
            out[:, :] = 0.0
            carry_c[:, :] = 0.0
            if parts:
                UH[t - 1, b0:b1, :] = 0.0
            continue
        # ∂E/∂h_{t−1} = D_t W_hh (the only path from h_{t−1} is through the gates)
        rowmat_blas_if(d, W_hh, out, blas)
        if parts:
            UH[t - 1, b0:b1, :] = out
    flow_c[0, b0:b1, :] = carry_c
    if parts:
        CC[0, b0:b1, :] = carry_c


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_backward_truncated(W_hh, W_yh, dZ, C, P, k1, k2, flow_h, flow_c, D, b0=0, b1=-1):
    """Truncated BPTT for the LSTM, BPTT(k1, k2) of Williams & Peng 1990.

    The losses are cut into blocks of ``k1`` steps ending at ``e = k1, 2k1, …``
    (the last one at ``T``); at each block end the block's losses are
    propagated back, through ``h`` and ``c`` together, to the state
    ``(h_{e−k2+1}, c_{e−k2+1})``. So the contribution of ``E_t`` through the
    state ``(h_k, c_k)`` is kept when ``e(t) − k < k2`` and is exactly zero
    otherwise; ``k1 = 1`` is the sliding window ``t − k < k2``. Needs
    ``k2 ≥ k1``. ``flow_h``, ``flow_c`` and ``D`` (what
    :func:`lstm_backward` fills) are accumulated over the blocks, so the weight
    gradients stay one product each. Cost ``O(T·k2/k1)`` steps.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    blas = Ball * n4 * n >= BLAS_MIN_WORK  # the whole batch decides
    flow_h[:, b0:b1, :] = 0.0
    flow_c[:, b0:b1, :] = 0.0
    D[:, b0:b1, :] = 0.0
    g = np.empty((B, n), dtype=flow_h.dtype)  # the block's gradient reaching h_k
    carry = np.empty((B, n), dtype=flow_h.dtype)  # … reaching c_k through c_{k+1}
    dc = np.empty((B, n), dtype=flow_h.dtype)
    d = np.empty((B, n4), dtype=flow_h.dtype)
    val = np.empty(n4, dtype=flow_h.dtype)
    der = np.empty(n4, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    for blk in range((T + k1 - 1) // k1, 0, -1):
        e, first, lo = truncation_block(blk, k1, k2, T)
        g[:, :] = 0.0
        carry[:, :] = 0.0
        for k in range(e, max(lo, 0), -1):  # the state (h_k, c_k) is inside the window
            if k >= first:
                add_readout_grad(dZ[k - 1, b0:b1], W_yh, g)  # the block's own losses enter here
            add_rows(flow_h[k, b0:b1], g)
            for b in range(B):
                _lstm_step_back(P[k - 1, b0 + b], C[k - 1, b0 + b], C[k, b0 + b], g[b], carry[b], dc[b], d[b], val, der, tc, dtc)
            add_rows(flow_c[k, b0:b1], dc)
            add_rows(D[k - 1, b0:b1], d)
            if k - 1 > lo:  # propagate to (h_{k−1}, c_{k−1}), still inside the window
                rowmat_blas_if(d, W_hh, g, blas)
                if k == 1:
                    add_rows(flow_h[0, b0:b1], g)
                    add_rows(flow_c[0, b0:b1], carry)


# ----------------------------------------------------------------------------- GRU
@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_forward(W_ihT, W_hhT, b_ih, b_hh, x, h0, H, P, b0=0, b1=-1):
    """Fill ``H (T+1, B, n)`` and ``P (T, B, 4n)``: pre-activations of r, z, n
    and the hidden projection of the candidate ``W_hn h + b_hn``.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n_in = x.shape
    b1, B = batch_range(Ball, b0, b1)
    n = h0.shape[1]
    blas_x = Ball * n_in * 3 * n >= BLAS_MIN_WORK  # the whole batch decides
    blas_h = Ball * n * 3 * n >= BLAS_MIN_WORK
    H[0, b0:b1, :] = h0[b0:b1]
    gi = np.empty((B, 3 * n), dtype=H.dtype)
    gh = np.empty((B, 3 * n), dtype=H.dtype)
    val = np.empty(3 * n, dtype=H.dtype)
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
            activate(ACT_SIGMOID, pb[: 2 * n], val[: 2 * n])
            for j in range(n):
                hn = hb_[2 * n + j]
                pb[3 * n + j] = hn
                pb[2 * n + j] = ib[2 * n + j] + val[j] * hn
            activate(ACT_TANH, pb[2 * n : 3 * n], val[2 * n :])
            for j in range(n):
                z = val[n + j]
                hb[j] = (1.0 - z) * val[2 * n + j] + z * hp[j]


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _gru_step_back(p, h_prev, dh, dhid, din, direct, val, der):
    """One GRU step ``t`` of one sequence, backwards.

    In: ``p (4n)`` as stored by :func:`gru_forward`, ``h_prev = h_{t−1}``,
    ``dh`` the gradient reaching ``h_t``. Out: the gradients at the
    hidden-side pre-activations ``dhid (3n)`` (``r, z, W_hn h + b_hn``) and the
    input-side ones ``din (3n)`` (``r, z, W_in x + b_in``), and
    ``direct = dh ⊙ σ(z)`` (the path to ``h_{t−1}`` that bypasses the gates).
    ``val, der (3n)`` are scratch.
    """
    n = h_prev.shape[0]
    activate_both(ACT_SIGMOID, p[: 2 * n], val[: 2 * n], der[: 2 * n])
    activate_both(ACT_TANH, p[2 * n : 3 * n], val[2 * n :], der[2 * n :])
    for j in range(n):
        r, dr_ = val[j], der[j]
        z, dz_ = val[n + j], der[n + j]
        nn, dn_ = val[2 * n + j], der[2 * n + j]
        hn = p[3 * n + j]
        g = dh[j]
        dan = g * (1.0 - z) * dn_
        dar = dan * hn * dr_
        daz = g * (h_prev[j] - nn) * dz_
        dhid[j] = dar
        dhid[n + j] = daz
        dhid[2 * n + j] = dan * r
        din[j] = dar
        din[n + j] = daz
        din[2 * n + j] = dan
        direct[j] = g * z


@njit(cache=True, fastmath=False, error_model="numpy")
def _gru_flow_back(dhid, W_hh, direct, out, blas):
    """``out = dhid W_hh + direct`` over a range of sequences: the gradient
    reaching ``h_{t−1}`` (through the gates, and directly through ``z``)."""
    if blas:
        np.dot(dhid, W_hh, out)
        for b in range(out.shape[0]):
            ob = out[b]
            tb = direct[b]
            for j in range(ob.shape[0]):
                ob[j] += tb[j]
    else:
        out[:, :] = direct
        rowmat_acc(dhid, W_hh, out)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_backward(W_hh, W_yh, dZ, H, P, flow, D_hid, D_in, UH, chunk=0, b0=0, b1=-1):
    """BPTT for the GRU.

    Fills ``flow (T+1, B, n)`` with ``∂E/∂h_k`` and the derivatives with
    respect to the hidden-side pre-activations ``D_hid (T, B, 3n)``
    (``r, z`` and ``W_hn h + b_hn``) and the input-side ones ``D_in`` (``r, z``
    and ``W_in x + b_in``), from which the weight gradients follow.
    Where ``UH (T, B, n)`` is not empty, also ``UH[k] = D_hid[k] W_hh + z ⊙
    ∂E/∂h_{k+1}``, the part of ``∂E/∂h_k`` that comes through step ``k+1``
    (before the loss at step ``k`` is added), the ``u`` of Pascanu's Ω.
    ``chunk`` as in :func:`lstm_backward`; ``b0, b1``: only these sequences of
    the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    blas = Ball * 3 * n * n >= BLAS_MIN_WORK  # the whole batch decides
    flow[T, b0:b1, :] = 0.0
    tmp = np.empty((B, n), dtype=flow.dtype)
    val = np.empty(3 * n, dtype=flow.dtype)
    der = np.empty(3 * n, dtype=flow.dtype)
    parts = UH.shape[0] > 0
    for t in range(T, 0, -1):
        dh = flow[t, b0:b1]
        add_readout_grad(dZ[t - 1, b0:b1], W_yh, dh)
        dhid = D_hid[t - 1, b0:b1]
        din = D_in[t - 1, b0:b1]
        for b in range(B):
            _gru_step_back(P[t - 1, b0 + b], H[t - 1, b0 + b], dh[b], dhid[b], din[b], tmp[b], val, der)
        out = flow[t - 1, b0:b1]
        if chunk > 0 and (t - 1) % chunk == 0:
            out[:, :] = 0.0
            if parts:
                UH[t - 1, b0:b1, :] = 0.0
            continue
        _gru_flow_back(dhid, W_hh, tmp, out, blas)
        if parts:
            UH[t - 1, b0:b1, :] = out


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gru_backward_truncated(W_hh, W_yh, dZ, H, P, k1, k2, flow, D_hid, D_in, b0=0, b1=-1):
    """Truncated BPTT for the GRU, BPTT(k1, k2) of Williams & Peng 1990.

    The schedule of :func:`lstm_backward_truncated` with the state ``h_k``
    alone: the contribution of ``E_t`` through ``h_k`` is kept when
    ``e(t) − k < k2`` (``e(t)`` the end of ``t``'s block of ``k1`` losses) and is
    exactly zero otherwise. ``flow``, ``D_hid`` and ``D_in`` (what
    :func:`gru_backward` fills) are accumulated over the blocks.

    ``b0, b1``: only these sequences of the batch, as in :func:`lstm_forward`.
    """
    T, Ball, n4 = P.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    n3 = 3 * n
    blas = Ball * n3 * n >= BLAS_MIN_WORK  # the whole batch decides
    flow[:, b0:b1, :] = 0.0
    D_hid[:, b0:b1, :] = 0.0
    D_in[:, b0:b1, :] = 0.0
    g = np.empty((B, n), dtype=flow.dtype)  # the block's gradient reaching h_k
    dhid = np.empty((B, n3), dtype=flow.dtype)
    din = np.empty((B, n3), dtype=flow.dtype)
    direct = np.empty((B, n), dtype=flow.dtype)
    val = np.empty(n3, dtype=flow.dtype)
    der = np.empty(n3, dtype=flow.dtype)
    for blk in range((T + k1 - 1) // k1, 0, -1):
        e, first, lo = truncation_block(blk, k1, k2, T)
        g[:, :] = 0.0
        for k in range(e, max(lo, 0), -1):  # h_k is inside the window
            if k >= first:
                add_readout_grad(dZ[k - 1, b0:b1], W_yh, g)  # the block's own losses enter here
            add_rows(flow[k, b0:b1], g)
            for b in range(B):
                _gru_step_back(P[k - 1, b0 + b], H[k - 1, b0 + b], g[b], dhid[b], din[b], direct[b], val, der)
            add_rows(D_hid[k - 1, b0:b1], dhid)
            add_rows(D_in[k - 1, b0:b1], din)
            if k - 1 > lo:  # propagate to h_{k−1}, still inside the window
                _gru_flow_back(dhid, W_hh, direct, g, blas)
                if k == 1:
                    add_rows(flow[0, b0:b1], g)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def lstm_backward_direct(W_hh, dH, dC, C, P, flow_h, flow_c, D, b0=0, b1=-1):
    """BPTT for the LSTM from direct cotangents of both states (no readout).

    ``dH``, ``dC (T, B, n)``: ``dH[t-1] = ∂E/∂h_t`` and ``dC[t-1] = ∂E/∂c_t``,
    the direct parts (t = 1..T), as for ``E = Σ_t dH_t·h_t + dC_t·c_t``. Fills
    ``flow_h``, ``flow_c (T+1, B, n)`` with the total derivatives and
    ``D (T, B, 4n)`` as :func:`lstm_backward` does (which is this kernel with
    ``dC = 0``); ``b0, b1`` as there.
    """
    T, Ball, n4 = P.shape
    b1, B = batch_range(Ball, b0, b1)
    n = n4 // 4
    blas = Ball * n4 * n >= BLAS_MIN_WORK  # the whole batch decides
    flow_h[T, b0:b1, :] = 0.0
    carry_c = np.zeros((B, n), dtype=flow_h.dtype)
    val = np.empty(4 * n, dtype=flow_h.dtype)
    der = np.empty(4 * n, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    for t in range(T, 0, -1):
        dh = flow_h[t, b0:b1]
        add_rows(dh, dH[t - 1, b0:b1])
        add_rows(carry_c, dC[t - 1, b0:b1])  # the direct ∂E/∂c_t joins what reaches c_t through c_{t+1}
        d = D[t - 1, b0:b1]
        for b in range(B):
            _lstm_step_back(
                P[t - 1, b0 + b], C[t - 1, b0 + b], C[t, b0 + b], dh[b], carry_c[b],
                flow_c[t, b0 + b], d[b], val, der, tc, dtc,
            )
        rowmat_blas_if(d, W_hh, flow_h[t - 1, b0:b1], blas)
    flow_c[0, b0:b1, :] = carry_c


# Public names of the one-step backward helpers, for the kernels of other cell
# modules that run the same cells with a different input path (the gated
# generators of ``_generator_kernels``): one copy of each step's mathematics.
lstm_step_back = _lstm_step_back
gru_step_back = _gru_step_back
