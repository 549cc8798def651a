"""Private Numba kernels of the Elman RNN: forward, losses, BPTT.

Kernels take C-contiguous arrays and scalars only; ``rnntheory.cells.elman``
validates, converts and allocates. Arrays are time-major and always batched
here: ``x (T, B, n_in)``, ``H (T+1, B, n)`` with ``H[0] = h_0``.

``form``: 0 = standard (Eq. 2b), 1 = Pascanu's form ``W f(h) + U x + b``.
``leaky``: when true, ``h_t = α ⊙ h_{t−1} + (1 − α) ⊙ g_t`` (Eq. 14) where
``g_t`` is the non-leaky update of the chosen form.

The dense recurrent products run through one helper, ``_rowmat``: explicit
loops whose inner loop is a contiguous axpy (vectorised by LLVM without
``fastmath``) for small problems, BLAS ``dot`` for larger ones. Everything
that does not depend on the recurrence (input projection, readout, weight
gradients) is one large matrix product over all ``T·B`` rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._vecmath import sigmoid_prime, tanh_sech2

# Use BLAS for the per-step product once B·n·n reaches this many multiply-adds.
_BLAS_MIN_WORK = 32 * 64 * 64

ACT_TANH = 0
ACT_SIGMOID = 1
ACT_IDENTITY = 2
ACT_RELU = 3


@njit(cache=True, fastmath=False, error_model="numpy")
def _rowmat(X, M, out):
    """``out = X @ M`` for ``X (B, k)``, ``M (k, m)``, all C-contiguous."""
    B, k = X.shape
    m = M.shape[1]
    if B * k * m >= _BLAS_MIN_WORK:
        out[:, :] = np.dot(X, M)
        return
    for b in range(B):
        o = out[b]
        for j in range(m):
            o[j] = 0.0
        for i in range(k):
            xi = X[b, i]
            row = M[i]
            for j in range(m):
                o[j] += xi * row[j]


@njit(cache=True, fastmath=False, error_model="numpy")
def _activate(code, src, dst):
    """``dst = f(src)`` element-wise over 1-D arrays."""
    n = src.shape[0]
    if code == ACT_TANH:
        for i in range(n):
            dst[i] = tanh_sech2(src[i])[0]
    elif code == ACT_SIGMOID:
        for i in range(n):
            dst[i] = sigmoid_prime(src[i])[0]
    elif code == ACT_IDENTITY:
        for i in range(n):
            dst[i] = src[i]
    else:
        for i in range(n):
            v = src[i]
            dst[i] = v if v > 0 else 0.0


@njit(cache=True, fastmath=False, error_model="numpy")
def _activate_prime(code, src, dst):
    """``dst = f′(src)`` element-wise over 1-D arrays, stable in saturation."""
    n = src.shape[0]
    if code == ACT_TANH:
        for i in range(n):
            dst[i] = tanh_sech2(src[i])[1]
    elif code == ACT_SIGMOID:
        for i in range(n):
            dst[i] = sigmoid_prime(src[i])[1]
    elif code == ACT_IDENTITY:
        for i in range(n):
            dst[i] = 1.0
    else:
        for i in range(n):
            dst[i] = 1.0 if src[i] > 0 else 0.0


@njit(cache=True, fastmath=False, error_model="numpy")
def elman_forward(W_hhT, W_hxT, b_h, x, h0, act, form, leaky, alpha, H, A):
    """Run the recurrence; fill ``H (T+1, B, n)`` and ``A (T, B, n)``.

    ``A[t-1]`` holds the argument of ``f`` at step t: the pre-activation
    ``a_t`` (standard form) or ``h_{t−1}`` (Pascanu's form).
    ``W_hhT`` and ``W_hxT`` are the transposed weights, C-contiguous.
    """
    T, B, n_in = x.shape
    n = h0.shape[1]
    U = np.dot(x.reshape(T * B, n_in), W_hxT).reshape(T, B, n)
    H[0, :, :] = h0
    G = np.empty((B, n), dtype=H.dtype)
    F = np.empty((B, n), dtype=H.dtype)
    for t in range(1, T + 1):
        hp = H[t - 1]
        if form == 0:
            _rowmat(hp, W_hhT, G)
            for b in range(B):
                for i in range(n):
                    G[b, i] += U[t - 1, b, i] + b_h[i]
                A[t - 1, b, :] = G[b]
                _activate(act, G[b], G[b])
        else:
            for b in range(B):
                A[t - 1, b, :] = hp[b]
                _activate(act, hp[b], F[b])
            _rowmat(F, W_hhT, G)
            for b in range(B):
                for i in range(n):
                    G[b, i] += U[t - 1, b, i] + b_h[i]
        if leaky:
            for b in range(B):
                for i in range(n):
                    H[t, b, i] = alpha[i] * hp[b, i] + (1.0 - alpha[i]) * G[b, i]
        else:
            H[t, :, :] = G


@njit(cache=True, fastmath=False, error_model="numpy")
def xent_loss_grad(Z, targets, mask, dZ):
    """Softmax cross-entropy summed over steps and batch (Eqs. 3–4).

    ``Z (T, B, C)`` logits, ``targets (T, B)`` int class indices, ``mask (T, B)``
    weights. Fills ``dZ = mask · (softmax(Z) − onehot)``; returns the loss in
    float64. Masked-out steps (weight 0) are skipped, so their targets may be
    any integer.
    """
    T, B, C = Z.shape
    total = 0.0
    p = np.empty(C, dtype=np.float64)
    for t in range(T):
        for b in range(B):
            w = mask[t, b]
            if w == 0.0:
                for c in range(C):
                    dZ[t, b, c] = 0.0
                continue
            z = Z[t, b]
            m = z[0]
            for c in range(1, C):
                if z[c] > m:
                    m = z[c]
            s = 0.0
            for c in range(C):
                p[c] = np.exp(np.float64(z[c]) - m)
                s += p[c]
            y = targets[t, b]
            total += w * (np.log(s) + m - z[y])
            for c in range(C):
                dZ[t, b, c] = w * (p[c] / s)
            dZ[t, b, y] -= w
    return total


@njit(cache=True, fastmath=False, error_model="numpy")
def mse_loss_grad(Z, Y, mask, dZ):
    """Squared error ``½‖z_t − y_t‖²`` summed over steps and batch.

    Fills ``dZ = mask · (Z − Y)``; returns the loss in float64.
    """
    T, B, C = Z.shape
    total = 0.0
    for t in range(T):
        for b in range(B):
            w = mask[t, b]
            if w == 0.0:
                for c in range(C):
                    dZ[t, b, c] = 0.0
                continue
            for c in range(C):
                d = Z[t, b, c] - Y[t, b, c]
                total += 0.5 * w * np.float64(d) * np.float64(d)
                dZ[t, b, c] = w * d
    return total


@njit(cache=True, fastmath=False, error_model="numpy")
def elman_backward(W_hh, x, H, A, dH_out, act, form, leaky, alpha, flow, D):
    """Backpropagation through time for the Elman recurrence.

    ``dH_out (T, B, n)``: the immediate derivative ``∂E_t/∂h_t`` from the
    readout at steps 1..T. Fills ``flow (T+1, B, n)`` with the total derivative
    ``∂E/∂h_k`` for k = 0..T and ``D (T, B, n)`` with the derivative of the
    loss with respect to the pre-activation of step t (standard form) or with
    respect to ``g_t = W f(h_{t−1}) + U x_t + b`` (Pascanu's form). Weight
    gradients follow from ``D`` by one matrix product each (done by the caller).
    """
    T, B, n = A.shape
    fp = np.empty(n, dtype=H.dtype)
    tmp = np.empty((B, n), dtype=H.dtype)
    flow[T, :, :] = dH_out[T - 1]
    for t in range(T, 0, -1):
        g = flow[t]
        if form == 0:
            for b in range(B):
                _activate_prime(act, A[t - 1, b], fp)
                if leaky:
                    for i in range(n):
                        D[t - 1, b, i] = g[b, i] * (1.0 - alpha[i]) * fp[i]
                else:
                    for i in range(n):
                        D[t - 1, b, i] = g[b, i] * fp[i]
            _rowmat(D[t - 1], W_hh, tmp)
        else:
            for b in range(B):
                if leaky:
                    for i in range(n):
                        D[t - 1, b, i] = g[b, i] * (1.0 - alpha[i])
                else:
                    D[t - 1, b, :] = g[b]
            _rowmat(D[t - 1], W_hh, tmp)
            for b in range(B):
                _activate_prime(act, A[t - 1, b], fp)
                for i in range(n):
                    tmp[b, i] *= fp[i]
        out = flow[t - 1]
        for b in range(B):
            for i in range(n):
                v = tmp[b, i]
                if leaky:
                    v += alpha[i] * g[b, i]
                if t >= 2:
                    v += dH_out[t - 2, b, i]
                out[b, i] = v


@njit(cache=True, fastmath=False, error_model="numpy")
def activate_array(act, src):
    """``f`` applied to every row of a 2-D array (a new array)."""
    out = np.empty_like(src)
    for r in range(src.shape[0]):
        _activate(act, src[r], out[r])
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def activate_prime_array(act, src):
    """``f′`` applied to every row of a 2-D array (a new array)."""
    out = np.empty_like(src)
    for r in range(src.shape[0]):
        _activate_prime(act, src[r], out[r])
    return out
