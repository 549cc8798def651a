"""Private Numba kernels of the generator RNN (output fed back as the next input).

Kernels take C-contiguous arrays and scalars only; ``rnntheory.cells.generator``
validates, converts and allocates. Arrays are time-major and always batched:
``x (T, B, n_in)``, ``H (T+1, B, n)`` with ``H[0] = h_0``, outputs ``(T, B, m)``.

The recurrence (standard Elman form with output feedback)::

    a_t = W_hh h_{t−1} + W_hx x_t + W_hy o^fb_t + b_h,   h_t = f(a_t)
    z_t = W_yh h_t + b_y,                                 o_t = s(z_t)

``s`` is the softmax (``kind = 0``, loss "xent") or the identity (``kind = 1``,
loss "mse"). The fed-back value ``o^fb_t`` (``FB[t-1]``) is the teacher value
``TF[t-1]`` unless ``own[t-1]`` is set, in which case it is the model's own
previous output ``o_{t−1} = O[t-2]`` (never at ``t = 1``: ``own[0]`` must be 0).

The LSTM and GRU generators (``lstm_generator_*``, ``gru_generator_*``) run
the gated cells of ``_gated_kernels`` on ``[x_t; o^fb_t]``, with the same
choice of the fed value; their backward passes follow the feedback path
``o_{t−1} → gates_t`` back into ``h_{t−1}``. Under teacher forcing the model
runs the gated cell's own kernels instead (the fed value is data).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._gated_kernels import gru_step_back, lstm_step_back
from ._helper_kernels import (
    ACT_SIGMOID,
    ACT_TANH,
    activate,
    activate_both,
    add_rows,
    rowmat,
    rowmat_acc,
)

KIND_SOFTMAX = 0
KIND_LINEAR = 1


@njit(cache=True, fastmath=False, error_model="numpy")
def _output(kind, z, o):
    """``o = softmax(z)`` (accumulated in float64) or ``o = z``, 1-D arrays."""
    m = z.shape[0]
    if kind == KIND_SOFTMAX:
        mx = np.float64(z[0])
        for c in range(1, m):
            if z[c] > mx:
                mx = np.float64(z[c])
        s = 0.0
        e = np.empty(m, dtype=np.float64)
        for c in range(m):
            e[c] = np.exp(np.float64(z[c]) - mx)
            s += e[c]
        for c in range(m):
            o[c] = e[c] / s
    else:
        for c in range(m):
            o[c] = z[c]


@njit(cache=True, fastmath=False, error_model="numpy")
def generator_forward(
    W_hhT, W_hxT, W_hyT, b_h, W_yhT, b_y, x, h0, TF, own, act, kind, H, A, FP, Z, O, FB
):
    """Run the recurrence with output feedback.

    Fills ``H (T+1, B, n)``, the pre-activations ``A (T, B, n)``, ``f′`` of them
    ``FP (T, B, n)``, the readouts ``Z (T, B, m)``, the outputs ``O = s(Z)`` and
    the fed-back values ``FB (T, B, m)``. ``TF (T, B, m)`` holds the teacher
    values (``TF[0]`` the start value), ``own (T, B)`` (uint8) the choice of
    the own output. Weights are passed transposed, C-contiguous.
    """
    T, B, _ = x.shape
    H[0, :, :] = h0
    for t in range(1, T + 1):
        fb = FB[t - 1]
        for b in range(B):
            if own[t - 1, b] != 0:
                fb[b, :] = O[t - 2, b]
            else:
                fb[b, :] = TF[t - 1, b]
        at = A[t - 1]
        for b in range(B):
            at[b, :] = b_h
        rowmat_acc(H[t - 1], W_hhT, at)
        rowmat_acc(x[t - 1], W_hxT, at)
        rowmat_acc(fb, W_hyT, at)
        for b in range(B):
            activate_both(act, at[b], H[t, b], FP[t - 1, b])
        zt = Z[t - 1]
        for b in range(B):
            zt[b, :] = b_y
        rowmat_acc(H[t], W_yhT, zt)
        for b in range(B):
            _output(kind, zt[b], O[t - 1, b])


@njit(cache=True, fastmath=False, error_model="numpy")
def generator_backward(W_hh, W_yh, W_hy, dZ, FP, O, own, kind, flow, D, DZ, DF):
    """Backpropagation through time, through the feedback path where it exists.

    ``dZ (T, B, m)`` is the immediate ``∂E/∂z_t`` of the loss. Fills

    * ``DF[t-1] = ∂E/∂o^fb_t = W_hyᵀ δ_t`` (row form ``δ_t W_hy``),
    * ``DZ[t-1]`` the total ``∂E/∂z_t``: ``dZ_t`` plus, when the own output
      ``o_t`` was fed into step ``t+1`` (``own[t]``), ``J_s(z_t)ᵀ DF[t]``
      (softmax: ``o ⊙ (v − o·v)``; identity: ``v``),
    * ``flow[k] = ∂E/∂h_k`` (k = 0..T) and ``D[t-1] = δ_t = ∂E/∂a_t``.

    The choice ``own`` is a constant: it is not differentiated.
    """
    T, B, n = FP.shape
    m = dZ.shape[2]
    flow[T, :, :] = 0.0
    for t in range(T, 0, -1):
        dz = DZ[t - 1]
        dz[:, :] = dZ[t - 1]
        if t < T:
            for b in range(B):
                if own[t, b] == 0:
                    continue
                v = DF[t, b]
                ob = O[t - 1, b]
                if kind == KIND_SOFTMAX:
                    pv = 0.0
                    for c in range(m):
                        pv += ob[c] * v[c]
                    for c in range(m):
                        dz[b, c] += ob[c] * (v[c] - pv)
                else:
                    for c in range(m):
                        dz[b, c] += v[c]
        g = flow[t]
        rowmat_acc(dz, W_yh, g)
        d = D[t - 1]
        fp = FP[t - 1]
        for b in range(B):
            for i in range(n):
                d[b, i] = g[b, i] * fp[b, i]
        rowmat(d, W_hh, flow[t - 1])
        rowmat(d, W_hy, DF[t - 1])


# ----------------------------------------------------------------------------- gated generators
# The LSTM and GRU generators read ``[x_t; o^fb_t]`` through ``weight_ih``; the
# kernels take its two column blocks apart: ``W_xT (n_in, G·n)`` and
# ``W_fT (m, G·n)`` (transposed) for the forward pass, ``W_f (G·n, m)`` for the
# backward pass. The gate mathematics is that of ``_gated_kernels`` (PyTorch's
# LSTMCell / GRUCell); the backward steps are its own helpers.


@njit(cache=True, fastmath=False, error_model="numpy")
def outputs(kind, Z, O):
    """``O[t, b] = s(Z[t, b])`` for every step and sequence (``s`` as in :func:`_output`)."""
    T, B, _ = Z.shape
    for t in range(T):
        for b in range(B):
            _output(kind, Z[t, b], O[t, b])


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _choose_fed(t, own, TF, O, FB):
    """Fill ``FB[t-1]`` (the value fed into step ``t``): ``O[t-2]`` where ``own[t-1]``, else ``TF[t-1]``."""
    fb = FB[t - 1]
    for b in range(fb.shape[0]):
        if own[t - 1, b] != 0:
            fb[b, :] = O[t - 2, b]
        else:
            fb[b, :] = TF[t - 1, b]


@njit(cache=True, fastmath=False, error_model="numpy")
def _readout_step(t, W_yhT, b_y, kind, H, Z, O):
    """``Z[t-1] = H[t] W_yhᵀ + b_y`` and ``O[t-1] = s(Z[t-1])``."""
    zt = Z[t - 1]
    for b in range(zt.shape[0]):
        zt[b, :] = b_y
    rowmat_acc(H[t], W_yhT, zt)
    for b in range(zt.shape[0]):
        _output(kind, zt[b], O[t - 1, b])


@njit(cache=True, fastmath=False, error_model="numpy")
def _dz_with_feedback(t, T, kind, dZ, O, own, DF, DZ):
    """``DZ[t-1] = dZ[t-1]`` plus, where the own output ``o_t`` was fed into
    step ``t+1``, ``J_s(z_t)ᵀ DF[t]`` (the gradient back through the feedback)."""
    dz = DZ[t - 1]
    dz[:, :] = dZ[t - 1]
    if t == T:
        return
    m = dz.shape[1]
    for b in range(dz.shape[0]):
        if own[t, b] == 0:
            continue
        v = DF[t, b]
        ob = O[t - 1, b]
        if kind == KIND_SOFTMAX:
            pv = 0.0
            for c in range(m):
                pv += ob[c] * v[c]
            for c in range(m):
                dz[b, c] += ob[c] * (v[c] - pv)
        else:
            for c in range(m):
                dz[b, c] += v[c]


@njit(cache=True, fastmath=False, error_model="numpy")
def lstm_generator_forward(
    W_xT, W_fT, W_hhT, b_ih, b_hh, W_yhT, b_y, x, h0, c0, TF, own, kind, H, C, P, Z, O, FB
):
    """The LSTM with output feedback: gates ``W_x x_t + W_f o^fb_t + b_ih +
    W_hh h_{t−1} + b_hh`` (PyTorch's order ``i, f, g, o``), ``c_t = σ(f)⊙c_{t−1}
    + σ(i)⊙tanh(g)``, ``h_t = σ(o)⊙tanh(c_t)``, ``z_t = W_yh h_t + b_y``,
    ``o_t = s(z_t)``.

    Fills ``H, C (T+1, B, n)``, the gate pre-activations ``P (T, B, 4n)``,
    ``Z``, ``O`` and the fed values ``FB (T, B, m)``; ``TF`` and ``own`` as in
    :func:`generator_forward`.
    """
    T, B, _ = x.shape
    n = h0.shape[1]
    H[0, :, :] = h0
    C[0, :, :] = c0
    val = np.empty(4 * n, dtype=H.dtype)
    tc = np.empty(n, dtype=H.dtype)
    for t in range(1, T + 1):
        _choose_fed(t, own, TF, O, FB)
        pt = P[t - 1]
        for b in range(B):
            for j in range(4 * n):
                pt[b, j] = b_ih[j] + b_hh[j]
        rowmat_acc(x[t - 1], W_xT, pt)
        rowmat_acc(FB[t - 1], W_fT, pt)
        rowmat_acc(H[t - 1], W_hhT, pt)
        for b in range(B):
            pb = pt[b]
            cp = C[t - 1, b]
            cb = C[t, b]
            hb = H[t, b]
            activate(ACT_SIGMOID, pb[: 2 * n], val[: 2 * n])
            activate(ACT_TANH, pb[2 * n : 3 * n], val[2 * n : 3 * n])
            activate(ACT_SIGMOID, pb[3 * n :], val[3 * n :])
            for j in range(n):
                cb[j] = val[n + j] * cp[j] + val[j] * val[2 * n + j]
            activate(ACT_TANH, cb, tc)
            for j in range(n):
                hb[j] = val[3 * n + j] * tc[j]
        _readout_step(t, W_yhT, b_y, kind, H, Z, O)


@njit(cache=True, fastmath=False, error_model="numpy")
def lstm_generator_backward(W_hh, W_f, W_yh, dZ, C, P, O, own, kind, flow_h, flow_c, D, DZ, DF):
    """BPTT of the LSTM generator, through the feedback path where the own output was fed.

    For ``t = T..1``: ``DZ[t-1]`` the total ``∂E/∂z_t`` (as in
    :func:`generator_backward`), ``∂E/∂h_t = flow_h[t] = DZ_t W_yh + D_{t+1} W_hh``,
    the LSTM step backwards (``flow_c[t] = ∂E/∂c_t``, ``D[t-1]`` the gradient at
    the gate pre-activations), and ``DF[t-1] = ∂E/∂o^fb_t = D_t W_f``. The
    choice ``own`` is a constant.
    """
    T, B, n4 = P.shape
    n = n4 // 4
    flow_h[T, :, :] = 0.0
    carry = np.zeros((B, n), dtype=flow_h.dtype)
    val = np.empty(n4, dtype=flow_h.dtype)
    der = np.empty(n4, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    for t in range(T, 0, -1):
        _dz_with_feedback(t, T, kind, dZ, O, own, DF, DZ)
        g = flow_h[t]
        rowmat_acc(DZ[t - 1], W_yh, g)
        d = D[t - 1]
        for b in range(B):
            lstm_step_back(P[t - 1, b], C[t - 1, b], C[t, b], g[b], carry[b], flow_c[t, b], d[b], val, der, tc, dtc)
        rowmat(d, W_hh, flow_h[t - 1])
        rowmat(d, W_f, DF[t - 1])
    flow_c[0, :, :] = carry


@njit(cache=True, fastmath=False, error_model="numpy")
def gru_generator_forward(
    W_xT, W_fT, W_hhT, b_ih, b_hh, W_yhT, b_y, x, h0, TF, own, kind, H, P, Z, O, FB
):
    """The GRU with output feedback (PyTorch's GRUCell on ``[x_t; o^fb_t]``):
    ``r, z`` from the sum of both projections, ``n = tanh(W_in [x; o^fb] + b_in
    + σ(r)⊙(W_hn h + b_hn))``, ``h′ = (1 − z)⊙n + z⊙h``; readout and outputs as
    in :func:`lstm_generator_forward`. ``P (T, B, 4n)`` as ``gru_forward`` stores it.
    """
    T, B, _ = x.shape
    n = h0.shape[1]
    H[0, :, :] = h0
    gi = np.empty((B, 3 * n), dtype=H.dtype)
    gh = np.empty((B, 3 * n), dtype=H.dtype)
    val = np.empty(3 * n, dtype=H.dtype)
    for t in range(1, T + 1):
        _choose_fed(t, own, TF, O, FB)
        for b in range(B):
            gi[b, :] = b_ih
            gh[b, :] = b_hh
        rowmat_acc(x[t - 1], W_xT, gi)
        rowmat_acc(FB[t - 1], W_fT, gi)
        rowmat_acc(H[t - 1], W_hhT, gh)
        for b in range(B):
            pb = P[t - 1, b]
            ib = gi[b]
            hb_ = gh[b]
            hp = H[t - 1, b]
            hb = H[t, b]
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
        _readout_step(t, W_yhT, b_y, kind, H, Z, O)


@njit(cache=True, fastmath=False, error_model="numpy")
def gru_generator_backward(W_hh, W_f, W_yh, dZ, H, P, O, own, kind, flow, D_hid, D_in, DZ, DF):
    """BPTT of the GRU generator, through the feedback path where the own output was fed.

    As :func:`lstm_generator_backward` with the GRU step: ``D_hid``, ``D_in``
    the gradients at the hidden-side and input-side pre-activations,
    ``flow[t-1] = D^hid_t W_hh + ∂E/∂h_t ⊙ σ(z_t)`` and
    ``DF[t-1] = ∂E/∂o^fb_t = D^in_t W_f``.
    """
    T, B, n4 = P.shape
    n = n4 // 4
    flow[T, :, :] = 0.0
    direct = np.empty((B, n), dtype=flow.dtype)
    val = np.empty(3 * n, dtype=flow.dtype)
    der = np.empty(3 * n, dtype=flow.dtype)
    for t in range(T, 0, -1):
        _dz_with_feedback(t, T, kind, dZ, O, own, DF, DZ)
        g = flow[t]
        rowmat_acc(DZ[t - 1], W_yh, g)
        dhid = D_hid[t - 1]
        din = D_in[t - 1]
        for b in range(B):
            gru_step_back(P[t - 1, b], H[t - 1, b], g[b], dhid[b], din[b], direct[b], val, der)
        out = flow[t - 1]
        out[:, :] = direct
        rowmat_acc(dhid, W_hh, out)
        rowmat(din, W_f, DF[t - 1])


# ----------------------------------------------------------------------------- stacked generators
# A stack of ``L`` layers of one cell with the top layer's output fed back into
# the bottom layer's input ``[x_t; o^fb_t]``. Per-layer parameters are stacked
# along a first axis: ``W_hhT (L, n, G·n)`` (forward), ``W_hh (L, G·n, n)``
# (backward), ``b_ih, b_hh (L, G·n)``; layer ``l ≥ 1`` reads ``h^{l−1}_t`` through
# ``W_upT[l−1] (n, G·n)`` (``W_up[l−1] (G·n, n)``); layer 0 through the column
# blocks of its input matrix as the one-layer generators. Elman layers (standard
# form, ``G = 1``) keep ``b_h`` in ``b_ih`` and zeros in ``b_hh``; ``acts (L,)``
# holds their activation codes. States ``H, C (L, T+1, B, n)``, pre-activations
# ``P (L, T, B, W)`` (``W = n`` Elman, ``4n`` LSTM and GRU, as the cells store them).

CELL_ELMAN = 0
CELL_LSTM = 1
CELL_GRU = 2


@njit(cache=True, fastmath=False, error_model="numpy")
def stack_generator_forward(
    cell, acts, W_xT, W_fT, W_upT, W_hhT, b_ih, b_hh, W_yhT, b_y, x, h0, c0, TF, own, kind, H, C, P, Z, O, FB
):
    """Run the stack with output feedback: at step ``t`` the fed value (chosen as
    in :func:`generator_forward`), then layer 0 on ``[x_t; o^fb_t]``, layer
    ``l ≥ 1`` on ``h^{l−1}_t``, then the readout of the top layer.

    ``h0, c0 (L, B, n)`` (``c0`` read for the LSTM only); fills ``H``, ``C``
    (LSTM), ``P``, ``Z``, ``O`` and ``FB``.
    """
    L = H.shape[0]
    T, B, _ = x.shape
    n = h0.shape[2]
    Gn = W_hhT.shape[2]
    for l in range(L):
        H[l, 0, :, :] = h0[l]
        if cell == CELL_LSTM:
            C[l, 0, :, :] = c0[l]
    gi = np.empty((B, Gn), dtype=H.dtype)
    gh = np.empty((B, Gn), dtype=H.dtype)
    val = np.empty(4 * n, dtype=H.dtype)
    tc = np.empty(n, dtype=H.dtype)
    for t in range(1, T + 1):
        _choose_fed(t, own, TF, O, FB)
        for l in range(L):
            for b in range(B):
                gi[b, :] = b_ih[l]
                gh[b, :] = b_hh[l]
            if l == 0:
                rowmat_acc(x[t - 1], W_xT, gi)
                rowmat_acc(FB[t - 1], W_fT, gi)
            else:
                rowmat_acc(H[l - 1, t], W_upT[l - 1], gi)
            rowmat_acc(H[l, t - 1], W_hhT[l], gh)
            for b in range(B):
                pb = P[l, t - 1, b]
                ib = gi[b]
                hb_ = gh[b]
                hp = H[l, t - 1, b]
                hb = H[l, t, b]
                if cell == CELL_ELMAN:
                    for j in range(n):
                        pb[j] = ib[j] + hb_[j]
                    activate(acts[l], pb, hb)
                elif cell == CELL_LSTM:
                    for j in range(4 * n):
                        pb[j] = ib[j] + hb_[j]
                    cp = C[l, t - 1, b]
                    cb = C[l, t, b]
                    activate(ACT_SIGMOID, pb[: 2 * n], val[: 2 * n])
                    activate(ACT_TANH, pb[2 * n : 3 * n], val[2 * n : 3 * n])
                    activate(ACT_SIGMOID, pb[3 * n :], val[3 * n :])
                    for j in range(n):
                        cb[j] = val[n + j] * cp[j] + val[j] * val[2 * n + j]
                    activate(ACT_TANH, cb, tc)
                    for j in range(n):
                        hb[j] = val[3 * n + j] * tc[j]
                else:
                    for j in range(2 * n):
                        pb[j] = ib[j] + hb_[j]
                    activate(ACT_SIGMOID, pb[: 2 * n], val[: 2 * n])
                    for j in range(n):
                        hn = hb_[2 * n + j]
                        pb[3 * n + j] = hn
                        pb[2 * n + j] = ib[2 * n + j] + val[j] * hn
                    activate(ACT_TANH, pb[2 * n : 3 * n], val[2 * n : 3 * n])
                    for j in range(n):
                        z = val[n + j]
                        hb[j] = (1.0 - z) * val[2 * n + j] + z * hp[j]
        _readout_step(t, W_yhT, b_y, kind, H[L - 1], Z, O)


@njit(cache=True, fastmath=False, error_model="numpy")
def stack_generator_backward(
    cell, acts, W_f, W_up, W_hh, W_yh, dZ, H, C, P, O, own, kind, flow_h, flow_c, D_hid, D_in, SENT, DZ, DF
):
    """BPTT of the stacked generator through every layer and, where the own
    output was fed, through the feedback path ``o_{t−1} → layer 0 at t``.

    For ``t = T..1``: ``DZ[t-1]`` the total ``∂E/∂z_t`` (as in
    :func:`generator_backward`); ``SENT[L-1, t-1] = DZ_t W_yh``; then for each
    layer from the top, ``∂E/∂h^l_t = flow_h[l, t]`` (its recurrent part from
    step ``t+1`` plus ``SENT[l, t-1]``, what the layer above, or the readout,
    sends back), the layer's step backwards (the cells' own step-backs;
    ``D_hid``, ``D_in (L, T, B, G·n)`` the gradients at the hidden-side and
    input-side pre-activations, one array passed twice for Elman and LSTM
    layers), ``flow_h[l, t-1]``, and what goes down: ``SENT[l-1, t-1] =
    D^in W_up[l-1]`` or, for layer 0, ``DF[t-1] = ∂E/∂o^fb_t = D^in W_f``.
    ``flow_c (L, T+1, B, n)``: LSTM layers' ``∂E/∂c_k``. ``own`` is a constant.
    """
    L = H.shape[0]
    T, B, _ = dZ.shape
    n = H.shape[3]
    flow_h[:, T, :, :] = 0.0
    carry = np.zeros((L, B, n), dtype=flow_h.dtype)
    val = np.empty(4 * n, dtype=flow_h.dtype)
    der = np.empty(4 * n, dtype=flow_h.dtype)
    tc = np.empty(n, dtype=flow_h.dtype)
    dtc = np.empty(n, dtype=flow_h.dtype)
    direct = np.empty((B, n), dtype=flow_h.dtype)
    for t in range(T, 0, -1):
        _dz_with_feedback(t, T, kind, dZ, O, own, DF, DZ)
        rowmat(DZ[t - 1], W_yh, SENT[L - 1, t - 1])
        for l in range(L - 1, -1, -1):
            g = flow_h[l, t]
            add_rows(g, SENT[l, t - 1])
            dhid = D_hid[l, t - 1]
            din = D_in[l, t - 1]
            for b in range(B):
                if cell == CELL_ELMAN:
                    activate_both(acts[l], P[l, t - 1, b], val[:n], der[:n])
                    for j in range(n):
                        dhid[b, j] = g[b, j] * der[j]
                elif cell == CELL_LSTM:
                    lstm_step_back(
                        P[l, t - 1, b], C[l, t - 1, b], C[l, t, b], g[b], carry[l, b], flow_c[l, t, b], dhid[b],
                        val, der, tc, dtc,
                    )
                else:
                    gru_step_back(P[l, t - 1, b], H[l, t - 1, b], g[b], dhid[b], din[b], direct[b], val, der)
            out = flow_h[l, t - 1]
            if cell == CELL_GRU:
                out[:, :] = direct
                rowmat_acc(dhid, W_hh[l], out)
            else:
                rowmat(dhid, W_hh[l], out)
            if l >= 1:
                rowmat(din, W_up[l - 1], SENT[l - 1, t - 1])
            else:
                rowmat(din, W_f, DF[t - 1])
    if cell == CELL_LSTM:
        for l in range(L):
            flow_c[l, 0, :, :] = carry[l]
