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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._helper_kernels import activate_both, rowmat, rowmat_acc

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
