"""Private Numba kernels of the Elman RNN: forward, losses, BPTT.

Kernels take C-contiguous arrays and scalars only; ``rnntheory.cells.elman``
validates, converts and allocates. Arrays are time-major and always batched
here: ``x (T, B, n_in)``, ``H (T+1, B, n)`` with ``H[0] = h_0``.

``form``: 0 = standard (Eq. 2b), 1 = Pascanu's form ``W f(h) + U x + b``.
``leaky``: when true, ``h_t = α ⊙ h_{t−1} + (1 − α) ⊙ g_t`` (Eq. 14) where
``g_t`` is the non-leaky update of the chosen form.

The dense recurrent products and the activation run through the helpers of
:mod:`rnntheory.cells._helper_kernels` (``rowmat``: explicit loops whose inner
loop is a contiguous axpy, vectorised by LLVM without ``fastmath``, for small
problems, BLAS ``dot`` for larger ones; ``activate_row``: ``f`` and ``f′``).
Everything that does not depend on the recurrence (input projection, readout, weight
gradients) is one large matrix product over all ``T·B`` rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._helper_kernels import (
    BLAS_MIN_WORK,
    activate,
    activate_both,
    add_readout_grad,
    batch_range,
    leaky_update,
    rowmat,
    rowmat_acc,
    rowmat_blas_if,
    truncation_block,
)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def elman_forward(W_hhT, W_hxT, b_h, x, h0, act, form, leaky, alpha, H, A, FP, U, b0=0, b1=-1):
    """Run the recurrence; fill ``H (T+1, B, n)``, ``A (T, B, n)`` and ``FP``.

    ``A[t-1]`` holds the argument of ``f`` at step t: the pre-activation
    ``a_t`` (standard form) or ``h_{t−1}`` (Pascanu's form). ``FP`` receives
    ``f′`` of it (for the backward pass) when it has ``T`` rows; pass an empty
    ``(0, B, n)`` array to skip it (and likewise ``A``, which the backward pass
    does not need).
    ``W_hhT`` and ``W_hxT`` are the transposed weights, C-contiguous.
    ``U``: when it has ``T`` rows (standard form), the precomputed input
    projection plus bias ``W_hx x_t + b_h`` of every step, which the caller
    forms in one product for small problems; otherwise (an empty array) the
    projection is done step by step, so no ``(T, B, n)`` temporary is needed.

    Only the sequences ``b0 ≤ b < b1`` of the batch are run (``b1 < 0``: to the
    end). Sequences never interact, so disjoint ranges may run in concurrent
    threads on the same arrays (the kernel releases the GIL). Whether a step's
    product goes to BLAS is decided from the whole batch, so a sequence takes
    the same code path in any range (BLAS's own rounding may still depend on
    the number of rows it is given).
    """
    T = x.shape[0]
    b1, B = batch_range(x.shape[1], b0, b1)
    n = h0.shape[1]
    keep = FP.shape[0] == T
    store_a = A.shape[0] == T
    pre = U.shape[0] == T
    blas = x.shape[1] * n * n >= BLAS_MIN_WORK  # the whole batch decides (see rowmat_blas_if)
    scratch = np.empty((B, n), dtype=H.dtype)
    H[0, b0:b1, :] = h0[b0:b1]
    G = np.empty((B, n), dtype=H.dtype)
    F = np.empty((B, n), dtype=H.dtype)
    for t in range(1, T + 1):
        hp = H[t - 1, b0:b1]
        ht = H[t, b0:b1]
        xt = x[t - 1, b0:b1]
        at = A[t - 1, b0:b1] if store_a else scratch
        fpt = FP[t - 1, b0:b1] if keep else F
        if form == 0:
            ut = U[t - 1, b0:b1] if pre else scratch
            if blas:
                np.dot(hp, W_hhT, at)
                for b in range(B):
                    ab = at[b]
                    ub = ut[b] if pre else b_h
                    for i in range(n):
                        ab[i] += ub[i]
            else:
                for b in range(B):
                    at[b, :] = ut[b] if pre else b_h
                rowmat_acc(hp, W_hhT, at)
            if not pre:
                rowmat_acc(xt, W_hxT, at)
            gt = G if leaky else ht
            for b in range(B):
                if keep:
                    activate_both(act, at[b], gt[b], fpt[b])
                else:
                    activate(act, at[b], gt[b])
            if leaky:
                leaky_update(ht, hp, G, alpha, True)
        else:
            if store_a:
                at[:, :] = hp
            for b in range(B):
                if keep:
                    activate_both(act, hp[b], F[b], fpt[b])
                else:
                    activate(act, hp[b], F[b])
            rowmat_blas_if(F, W_hhT, G, blas)
            rowmat_acc(xt, W_hxT, G)
            for b in range(B):
                hb = ht[b]
                gb = G[b]
                if leaky:
                    pb = hp[b]
                    for i in range(n):
                        hb[i] = alpha[i] * pb[i] + (1.0 - alpha[i]) * (gb[i] + b_h[i])
                else:
                    for i in range(n):
                        hb[i] = gb[i] + b_h[i]


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _skipped(w, dz):
    """A masked-out step (weight ``w = 0``) is skipped: its gradient row ``dz`` is
    zeroed and its target never read."""
    if w == 0.0:
        for c in range(dz.shape[0]):
            dz[c] = 0.0
        return True
    return False


@njit(cache=True, fastmath=False, error_model="numpy")
def xent_loss_grad(Z, targets, mask, dZ):
    """Softmax cross-entropy summed over steps and batch (Eqs. 3–4).

    ``Z (T, B, C)`` logits, ``targets (T, B)`` int class indices, ``mask (T, B)``
    weights. Fills ``dZ = mask · (softmax(Z) − onehot)``; returns the loss in
    float64. Masked-out steps (weight 0) are skipped, so their targets may be
    any integer.

    Subtract before adding: with ``m = max_c z_c`` (at index ``j``) and
    ``e_c = exp(z_c − m)`` (so ``e_j = 1``), each step's loss is
    ``(m − z_y) + log1p(Σ_{c≠j} e_c)``: two non-negative terms, so nothing
    cancels and the loss is accurate to a few ulp for logits of any finite
    size (all ``1e17``: ``ln C``, not ``1e17 + ln C − 1e17 = 0``) and for a
    confident prediction (``log1p``, not ``log(1 + tiny)``). The gradient of
    the target class, ``p_y − 1``, is formed as ``−Σ_{c≠y} e_c / Σ_c e_c``,
    without the cancellation of ``p_y − 1`` when ``p_y`` is close to 1.
    """
    T, B, C = Z.shape
    total = 0.0
    p = np.empty(C, dtype=np.float64)
    for t in range(T):
        for b in range(B):
            w = mask[t, b]
            if _skipped(w, dZ[t, b]):
                continue
            z = Z[t, b]
            y = targets[t, b]
            j = 0
            m = np.float64(z[0])
            for c in range(1, C):
                if z[c] > m:
                    m = np.float64(z[c])
                    j = c
            rest = 0.0  # Σ_{c≠j} e_c
            other = 0.0  # Σ_{c≠y} e_c
            for c in range(C):
                e = np.exp(np.float64(z[c]) - m)
                p[c] = e
                if c != j:
                    rest += e
                if c != y:
                    other += e
            s = p[j] + rest
            total += w * ((m - np.float64(z[y])) + np.log1p(rest))
            for c in range(C):
                dZ[t, b, c] = w * (p[c] / s)
            dZ[t, b, y] = -w * (other / s)
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
            if _skipped(w, dZ[t, b]):
                continue
            for c in range(C):
                d = Z[t, b, c] - Y[t, b, c]
                total += 0.5 * w * np.float64(d) * np.float64(d)
                dZ[t, b, c] = w * d
    return total


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def elman_backward(W_hh, W_yh, dZ, FP, form, leaky, alpha, flow, D, UH, chunk=0, b0=0, b1=-1):
    """Backpropagation through time for the Elman recurrence.

    ``dZ (T, B, n_out)`` is ``∂E/∂y_t``; the immediate derivative
    ``∂E_t/∂h_t = dZ_t W_yh`` is formed step by step (``W_yh (n_out, n)``, or
    ``None`` for a model without readout, where it is ``dZ_t`` itself). Fills
    ``flow (T+1, B, n)`` with the total derivative ``∂E/∂h_k`` for k = 0..T and
    ``D (T, B, n)`` with the derivative of the loss with respect to the
    pre-activation of step t (standard form) or with respect to
    ``g_t = W f(h_{t−1}) + U x_t + b`` (Pascanu's form). Weight gradients follow
    from ``D`` by one matrix product each (done by the caller).

    ``FP (T, B, n)`` holds ``f′`` at the arguments of ``f`` (from the forward
    pass). ``D`` may be the same array as ``FP``: ``FP[t-1]`` is read before
    ``D[t-1]`` is written (element by element in the standard form, where
    ``D = flow ⊙ f′`` entry-wise; from a copy in Pascanu's form) and never again.

    Where ``UH (T, B, n)`` is not empty, also ``UH[k] = J_{k+1}ᵀ ∂E/∂h_{k+1}``,
    the part of ``∂E/∂h_k`` that comes through step ``k+1`` (before the loss at
    step ``k`` is added): the ``u`` that Pascanu's Ω compares with
    ``v = ∂E/∂h_{k+1}``.

    ``chunk > 0`` (dividing T) is chunked truncated BPTT, BPTT(chunk, chunk):
    nothing propagates from a step ``t`` with ``t − 1`` a multiple of ``chunk``
    to ``h_{t−1}``, so each block of ``chunk`` losses reaches back only to the
    block's first state. Same result as :func:`elman_backward_truncated` with
    ``k1 = k2 = chunk`` when ``chunk`` divides T, at the cost of full BPTT.

    ``b0, b1``: only these sequences of the batch, as in :func:`elman_forward`.
    """
    T = FP.shape[0]
    b1, B = batch_range(FP.shape[1], b0, b1)
    n = FP.shape[2]
    blas = FP.shape[1] * n * n >= BLAS_MIN_WORK  # the whole batch decides
    fp = np.empty((B, n), dtype=flow.dtype)
    parts = UH.shape[0] > 0
    flow[T, b0:b1, :] = 0.0
    for t in range(T, 0, -1):
        g = flow[t, b0:b1]
        add_readout_grad(dZ[t - 1, b0:b1], W_yh, g)
        d = D[t - 1, b0:b1]
        out = flow[t - 1, b0:b1]
        cut = chunk > 0 and (t - 1) % chunk == 0  # a block boundary: nothing crosses it
        if form == 0:
            fpt = FP[t - 1, b0:b1]
            for b in range(B):
                db = d[b]
                gb = g[b]
                fb = fpt[b]
                if leaky:
                    for i in range(n):
                        db[i] = gb[i] * (1.0 - alpha[i]) * fb[i]
                else:
                    for i in range(n):
                        db[i] = gb[i] * fb[i]
            if cut:
                out[:, :] = 0.0
                if parts:
                    UH[t - 1, b0:b1, :] = 0.0
                continue
            rowmat_blas_if(d, W_hh, out, blas)
        else:
            fp[:, :] = FP[t - 1, b0:b1]
            for b in range(B):
                db = d[b]
                gb = g[b]
                if leaky:
                    for i in range(n):
                        db[i] = gb[i] * (1.0 - alpha[i])
                else:
                    for i in range(n):
                        db[i] = gb[i]
            if cut:
                out[:, :] = 0.0
                if parts:
                    UH[t - 1, b0:b1, :] = 0.0
                continue
            rowmat_blas_if(d, W_hh, out, blas)
            for b in range(B):
                ob = out[b]
                fb = fp[b]
                for i in range(n):
                    ob[i] *= fb[i]
        if leaky:
            for b in range(B):
                ob = out[b]
                gb = g[b]
                for i in range(n):
                    ob[i] += alpha[i] * gb[i]
        if parts:
            UH[t - 1, b0:b1, :] = out


@njit(cache=True, fastmath=False, error_model="numpy")
def activate_array(act, src):
    """``f`` applied to every row of a 2-D array (a new array)."""
    out = np.empty_like(src)
    for r in range(src.shape[0]):
        activate(act, src[r], out[r])
    return out


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gemm_tn(X, Y):
    """``Xᵀ Y`` for ``X (N, a)``, ``Y (N, b)`` C-contiguous: a weight gradient
    summed over all ``N = T·B`` rows in one BLAS call.

    Done here rather than with NumPy's ``@`` so that one BLAS library (the one
    Numba links, SciPy's) serves the whole step: two OpenBLAS thread pools
    busy-waiting on two cores slowed a step down by a third.
    """
    return np.dot(X.T, Y)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def readout(H1, W_yhT, b_y):
    """``H1 @ W_yhᵀ + b_y`` for ``H1 (N, n)`` (all steps and sequences at once)."""
    Y = np.empty((H1.shape[0], W_yhT.shape[1]), dtype=H1.dtype)
    readout_into(H1, W_yhT, b_y, Y)
    return Y


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def readout_into(H1, W_yhT, b_y, Y):
    """:func:`readout` into a given ``Y (N, m)`` (a scratch array)."""
    np.dot(H1, W_yhT, Y)
    for r in range(Y.shape[0]):
        for c in range(Y.shape[1]):
            Y[r, c] += b_y[c]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def column_sums(X):
    """Sum of the rows of ``X (N, a)`` (a bias gradient), accumulated in order."""
    out = np.zeros(X.shape[1], dtype=X.dtype)
    for r in range(X.shape[0]):
        for c in range(X.shape[1]):
            out[c] += X[r, c]
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def elman_backward_truncated(W_hh, W_yh, dZ, FP, form, leaky, alpha, k1, k2, flow, D):
    """Truncated BPTT, BPTT(k1, k2) of Williams & Peng 1990.

    The sequence is cut into blocks of ``k1`` steps ending at ``e = k1, 2k1, …``
    (the last one at ``T``); at each block end the losses of the block are
    propagated back to ``h_{e−k2+1}``. So the contribution of ``E_t`` through
    ``h_k`` is kept when ``e(t) − k < k2`` (``e(t)`` the end of ``t``'s block) and
    is exactly zero otherwise. ``k1 = 1`` is the sliding window ``t − k < k2``
    (the windowed double sum of Eq. 6, cost ``O(T·k2)``); ``k1 = k2`` is the usual
    chunked truncation (cost ``O(T)``, like full BPTT). Needs ``k2 ≥ k1``.
    ``flow[k]`` and ``D[k−1]`` are truncated the same way; ``FP`` is read only.
    Arguments otherwise as in :func:`elman_backward`.
    """
    T, B, n = FP.shape
    flow[:, :, :] = 0.0
    D[:, :, :] = 0.0
    g = np.empty((B, n), dtype=flow.dtype)
    d = np.empty((B, n), dtype=flow.dtype)
    tmp = np.empty((B, n), dtype=flow.dtype)
    n_blocks = (T + k1 - 1) // k1
    for blk in range(n_blocks, 0, -1):
        t, first, lo = truncation_block(blk, k1, k2, T)  # h_k lies inside the window exactly when k > lo
        g[:, :] = 0.0
        for k in range(t, max(lo, 0), -1):
            if k >= first:
                add_readout_grad(dZ[k - 1], W_yh, g)  # the block's own losses enter here
            fl = flow[k]
            fp = FP[k - 1]
            for b in range(B):
                for j in range(n):
                    fl[b, j] += g[b, j]
                    s = 1.0 - alpha[j] if leaky else 1.0
                    d[b, j] = g[b, j] * s * (fp[b, j] if form == 0 else 1.0)
                    D[k - 1, b, j] += d[b, j]
            if k - 1 > lo:
                # propagate to h_{k−1}, still inside the window
                rowmat(d, W_hh, tmp)
                for b in range(B):
                    for j in range(n):
                        v = tmp[b, j]
                        if form == 1:
                            v *= fp[b, j]
                        if leaky:
                            v += alpha[j] * g[b, j]
                        g[b, j] = v
                if k - 1 == 0:
                    for b in range(B):
                        for j in range(n):
                            flow[0, b, j] += g[b, j]
