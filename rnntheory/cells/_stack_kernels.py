"""Private Numba kernels of stacked models: the whole state's flow from the layers' own.

Arrays are time-major and batched, C-contiguous: the whole state's flow
``flow (T+1, B, S)``, a layer's flows ``(T+1, B, n)``, its cotangent
``(T, B, n)``, an LSTM layer's pre-activations ``P (T, B, 4n)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._helper_kernels import ACT_SIGMOID, activate, batch_range


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def state_flow_h(flow, col, layer_flow, sent, subtract, b0=0, b1=-1):
    """``flow[:, :, col:col+n] = layer_flow``, less ``sent[t-1]`` at every step
    ``t ≥ 1`` when ``subtract`` (a layer below the top: the part that reached
    ``h_t`` through the layer above at the same step). ``b0, b1``: only these
    sequences of the batch."""
    T1 = layer_flow.shape[0]
    b1, _ = batch_range(layer_flow.shape[1], b0, b1)
    n = layer_flow.shape[2]
    for t in range(T1):
        for b in range(b0, b1):
            src = layer_flow[t, b]
            dst = flow[t, b]
            if subtract and t >= 1:
                s = sent[t - 1, b]
                for j in range(n):
                    dst[col + j] = src[j] - s[j]
            else:
                for j in range(n):
                    dst[col + j] = src[j]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def state_flow_c(flow, col, flow_c, P, b0=0, b1=-1):
    """An LSTM layer's ``∂E/∂c_k`` with ``h_k`` held fixed, into
    ``flow[:, :, col:col+n]``: ``σ(f_{k+1}) ⊙ flow_c[k+1]`` for ``k < T`` (the
    forget gate's pre-activation in ``P[k, :, n:2n]``, σ as the forward pass
    computed it) and 0 at ``k = T``. ``b0, b1`` as in :func:`state_flow_h`."""
    T = P.shape[0]
    b1, _ = batch_range(P.shape[1], b0, b1)
    n = flow_c.shape[2]
    sig = np.empty(n, dtype=flow.dtype)
    for t in range(T):
        for b in range(b0, b1):
            activate(ACT_SIGMOID, P[t, b, n:2 * n], sig)
            src = flow_c[t + 1, b]
            dst = flow[t, b]
            for j in range(n):
                dst[col + j] = sig[j] * src[j]
    for b in range(b0, b1):
        for j in range(n):
            flow[T, b, col + j] = 0.0
