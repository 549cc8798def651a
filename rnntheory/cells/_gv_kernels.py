"""Private Numba kernels of the Gauss–Newton–vector product of the Elman RNN.

The R-forward pass (Pearlmutter's R-operator ``R{·} = d(·)/dε`` along a
parameter direction ``v``) runs along a trace that the caller stored once:
``H (T+1, B, n)`` the hidden states and ``FP (T, B, n)`` the derivatives ``f′``
at the arguments of ``f``. Arrays are time-major, batched and C-contiguous, as
in :mod:`rnntheory.cells._elman_kernels`, whose per-step product
``rowmat_blas_if`` of :mod:`rnntheory.cells._helper_kernels` (explicit loops
for small problems, BLAS above) serves here too. The R-forward pass and the row kernels release the GIL: the caller runs
them on ranges of sequences or of rows in threads of its own.

The part of ``R{a_t}`` (standard form) or ``R{g_t}`` (Pascanu's form) that does
not depend on the recurrence, ``ΔW_hh p_t + ΔW_hx x_t + Δb_h`` with ``p_t = h_{t−1}``
or ``f(h_{t−1})``, is formed by the caller for all steps in one matrix product
and passed as ``S (T, B, n)``; the kernel runs the recurrence only.

Martens & Sutskever 2011, §3 (R-forward pass, Gauss–Newton products);
Schraudolph 2002 (Gauss–Newton matrix of a matching loss).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._helper_kernels import BLAS_MIN_WORK, add_rows, batch_range, leaky_update, rowmat_blas_if


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def gv_rforward(W_hhT, S, FP, form, leaky, alpha, RH, b0=0, b1=-1):
    """Fill ``RH (T+1, B, n)`` with ``R{h_t}`` for t = 0..T (``R{h_0} = 0``).

    Standard form: ``R{a_t} = W_hh R{h_{t−1}} + S_t`` and
    ``R{g_t} = f′(a_t) ⊙ R{a_t}``. Pascanu's form:
    ``R{g_t} = W_hh (f′(h_{t−1}) ⊙ R{h_{t−1}}) + S_t``. Leaky (Eq. 14):
    ``R{h_t} = α ⊙ R{h_{t−1}} + (1 − α) ⊙ R{g_t}``; otherwise ``R{h_t} = R{g_t}``.

    ``W_hhT`` is ``W_hhᵀ`` (C-contiguous), ``S (T, B, n)`` the input-driven part,
    ``FP (T, B, n)`` the stored ``f′``; ``form`` 0 = standard, 1 = Pascanu.

    Only the sequences ``b0 ≤ b < b1`` are run (``b1 < 0``: to the end), as in
    :func:`rnntheory.cells._elman_kernels.elman_forward`: disjoint ranges may
    run in concurrent threads on the same arrays (the kernel releases the GIL),
    and the per-step product takes BLAS or loops by the size of the whole
    batch, so a sequence's arithmetic does not depend on the split.
    """
    T, Bt, n = FP.shape
    b1, B = batch_range(Bt, b0, b1)
    blas = Bt * n * n >= BLAS_MIN_WORK  # the whole batch decides
    RH[0, b0:b1, :] = 0.0
    tmp = np.empty((B, n), dtype=RH.dtype)
    u = np.empty((B, n), dtype=RH.dtype)
    for t in range(1, T + 1):
        prev = RH[t - 1, b0:b1]
        fp = FP[t - 1, b0:b1]
        st = S[t - 1, b0:b1]
        out = RH[t, b0:b1]
        if form == 0:
            rowmat_blas_if(prev, W_hhT, tmp, blas)
            for b in range(B):
                tb = tmp[b]
                sb = st[b]
                fb = fp[b]
                for i in range(n):
                    tb[i] = fb[i] * (tb[i] + sb[i])  # R{g_t} = f′(a_t) ⊙ R{a_t}
        else:
            for b in range(B):
                ub = u[b]
                pb = prev[b]
                fb = fp[b]
                for i in range(n):
                    ub[i] = fb[i] * pb[i]
            rowmat_blas_if(u, W_hhT, tmp, blas)
            add_rows(tmp, st)  # R{g_t}
        leaky_update(out, prev, tmp, alpha, leaky)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def softmax_rows(Z):
    """Softmax of every row of ``Z (N, C)`` (max-shifted; a new array)."""
    P = np.empty_like(Z)
    softmax_rows_into(Z, P)
    return P


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def softmax_rows_into(Z, P):
    """:func:`softmax_rows` into a given ``P (N, C)`` (rows are independent, so
    disjoint row ranges may run in concurrent threads)."""
    N, C = Z.shape
    for r in range(N):
        z = Z[r]
        m = z[0]
        for c in range(1, C):
            if z[c] > m:
                m = z[c]
        s = 0.0
        for c in range(C):
            e = np.exp(z[c] - m)
            P[r, c] = e
            s += e
        for c in range(C):
            P[r, c] = P[r, c] / s


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def xent_hessian_apply(P, RZ, mask, Q):
    """``Q_r = w_r (diag(p_r) − p_r p_rᵀ) RZ_r`` for every row r.

    The Hessian of the softmax cross-entropy with respect to the logits, times
    a vector, weighted by the per-step mask ``w (N,)``. ``P``, ``RZ``, ``Q`` are
    ``(N, C)``.
    """
    N, C = P.shape
    for r in range(N):
        w = mask[r]
        if w == 0.0:
            for c in range(C):
                Q[r, c] = 0.0
            continue
        p = P[r]
        v = RZ[r]
        s = 0.0
        for c in range(C):
            s += p[c] * v[c]
        for c in range(C):
            Q[r, c] = w * (p[c] * (v[c] - s))


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def mse_hessian_apply(RZ, mask, Q):
    """``Q_r = w_r RZ_r``: the Hessian of ``½‖z − y‖²`` is the identity."""
    N, C = RZ.shape
    for r in range(N):
        w = mask[r]
        for c in range(C):
            Q[r, c] = w * RZ[r, c]


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def add_scaled(A, s, X):
    """``A += s · X`` in place for 2-D ``A``, ``X`` of the same shape."""
    N, C = A.shape
    for r in range(N):
        for c in range(C):
            A[r, c] += s * X[r, c]
