"""Numba helpers shared by the kernel modules: row products, one activation helper.

Package-internal: the kernels of the Elman, gated and generator cells, the
Gauss–Newton product and Pascanu's regularizer Ω compose these; nothing here
validates its input. Arrays are C-contiguous; the conventions of the callers
hold (time-major, batched, rows are sequences).

* :func:`rowmat`, :func:`rowmat_blas_if`, :func:`rowmat_acc`: the dense
  per-step product ``X @ M``, by explicit loops whose inner loop is a
  contiguous axpy (vectorised by LLVM without ``fastmath``) for small problems,
  by BLAS ``dot`` once a product has :data:`BLAS_MIN_WORK` multiply-adds.
* :func:`activate_row`: the one place that switches on the activation code.
  It fills ``f``, ``f′`` and ``f″`` of a row, each on request, in the precision
  of the row (float32 rows in float32 arithmetic), through the vectorisable
  functions of :mod:`rnntheory._vecmath`; :func:`activate`,
  :func:`activate_prime` and :func:`activate_both` name its usual requests
  (compiled functions of their own, called once per row: inlining the helper
  at every call site would multiply the kernels' compile time for no speed).
* :func:`leaky_update`: the leaky-integrator blend of Eq. 14.
* :func:`batch_range`, :func:`truncation_block`, :func:`add_rows`: the
  bookkeeping of kernels that run a range of a batch or the blocks of
  truncated BPTT (Williams & Peng 1990).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._vecmath import sigmoid_prime, sigmoid_prime_f32, tanh_sech2, tanh_sech2_f32

# Use BLAS for the per-step product once B·k·m reaches this many multiply-adds.
BLAS_MIN_WORK = 32 * 64 * 64

# Activation codes (``Activation.code``).
ACT_TANH = 0
ACT_SIGMOID = 1
ACT_IDENTITY = 2
ACT_RELU = 3

# What :func:`activate_row` writes (a bit mask of requests).
WANT_F = 1
WANT_FPRIME = 2
WANT_FSECOND = 4


@njit(cache=True, fastmath=False, error_model="numpy")
def rowmat(X, M, out):
    """``out = X @ M`` for ``X (B, k)``, ``M (k, m)``, all C-contiguous, no aliasing."""
    B, k = X.shape
    rowmat_blas_if(X, M, out, B * k * M.shape[1] >= BLAS_MIN_WORK)


@njit(cache=True, fastmath=False, error_model="numpy")
def rowmat_blas_if(X, M, out, blas):
    """``out = X @ M`` by BLAS ``dot`` when ``blas``, else by :func:`rowmat_acc`.

    Kernels that run a range of a batch decide ``blas`` from the whole batch, so
    a sequence takes the same code path however the batch was split.
    """
    if blas:
        np.dot(X, M, out)
        return
    for b in range(X.shape[0]):
        out[b, :] = 0.0
    rowmat_acc(X, M, out)


@njit(cache=True, fastmath=False, error_model="numpy")
def rowmat_acc(X, M, out):
    """``out += X @ M`` by explicit loops; eight rows of ``M`` per pass over ``out``.

    The inner loops are contiguous multiply-adds that LLVM vectorises without
    reassociation (each output element is summed in a fixed order, so the
    result does not depend on the vector width). Fewer passes mean fewer loads
    and stores of ``out``.
    """
    B, k = X.shape
    m = M.shape[1]
    k8 = k - k % 8
    for b in range(B):
        o = out[b]
        xb = X[b]
        for i in range(0, k8, 8):
            # unrolled by hand on purpose: eight scalars and eight rows held in
            # registers for one pass over ``o`` (a loop over them would not be)
            x0 = xb[i]
            x1 = xb[i + 1]
            x2 = xb[i + 2]
            x3 = xb[i + 3]
            x4 = xb[i + 4]
            x5 = xb[i + 5]
            x6 = xb[i + 6]
            x7 = xb[i + 7]
            r0 = M[i]
            r1 = M[i + 1]
            r2 = M[i + 2]
            r3 = M[i + 3]
            r4 = M[i + 4]
            r5 = M[i + 5]
            r6 = M[i + 6]
            r7 = M[i + 7]
            for j in range(m):
                o[j] += (
                    ((x0 * r0[j] + x1 * r1[j]) + (x2 * r2[j] + x3 * r3[j]))
                     + ((x4 * r4[j] + x5 * r5[j]) + (x6 * r6[j] + x7 * r7[j]))
                )
        for i in range(k8, k):
            xi = xb[i]
            r = M[i]
            for j in range(m):
                o[j] += xi * r[j]


@njit(cache=True, fastmath=False, error_model="numpy")
def add_readout_grad(dZt, W_yh, g):
    """``g += dZ_t W_yh``: the immediate ``∂E_t/∂h_t`` from the readout (``W_yh``
    None: the loss applies to ``h_t`` itself and ``g += dZ_t``)."""
    if W_yh is None:
        add_rows(g, dZt)
    else:
        rowmat_acc(dZt, W_yh, g)


@njit(cache=True, fastmath=False, error_model="numpy")
def add_rows(dst, src):
    """``dst += src`` over 2-D arrays (rows of a batch range)."""
    for b in range(dst.shape[0]):
        db = dst[b]
        sb = src[b]
        for j in range(db.shape[0]):
            db[j] += sb[j]


@njit(cache=True, fastmath=False, error_model="numpy")
def leaky_update(out, prev, g, alpha, leaky):
    """``out = α ⊙ prev + (1 − α) ⊙ g`` (Eq. 14, ``alpha (n,)`` the retention)
    when ``leaky``, else ``out = g``; 2-D arrays, rows of a batch range."""
    n = out.shape[1]
    for b in range(out.shape[0]):
        ob = out[b]
        pb = prev[b]
        gb = g[b]
        if leaky:
            for i in range(n):
                ob[i] = alpha[i] * pb[i] + (1.0 - alpha[i]) * gb[i]
        else:
            for i in range(n):
                ob[i] = gb[i]


@njit(cache=True, fastmath=False, error_model="numpy")
def batch_range(Ball, b0, b1):
    """The end of a kernel's range of sequences (``b1 < 0``: the batch's end)
    and the range's length."""
    if b1 < 0:
        b1 = Ball
    return b1, b1 - b0


@njit(cache=True, fastmath=False, error_model="numpy")
def truncation_block(blk, k1, k2, T):
    """Block ``blk`` (1-based) of BPTT(k1, k2): its end ``e = min(blk·k1, T)``,
    its first loss step, and ``lo = e − k2`` (a state ``k`` lies inside the
    block's window exactly when ``k > lo``)."""
    e = min(blk * k1, T)
    return e, (blk - 1) * k1 + 1, e - k2


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _put(f, fp, fpp, i, v, d, dd, want):
    """Store ``f(x_i) = v``, ``f′(x_i) = d``, ``f″(x_i) = dd`` as ``want`` requests."""
    if want & WANT_F:
        f[i] = v
    if want & WANT_FPRIME:
        fp[i] = d
    if want & WANT_FSECOND:
        fpp[i] = dd


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def activate_row(code, src, f, fp, fpp, want):
    """``f = f(src)``, ``fp = f′(src)`` and ``fpp = f″(src)`` over 1-D arrays, as requested.

    ``want`` is a bit mask of :data:`WANT_F`, :data:`WANT_FPRIME` and
    :data:`WANT_FSECOND`; an output that is not requested is not written (pass
    any array of the right dtype in its place, for example another output).
    Callers pass ``want`` as a constant: the function is inlined, so the
    requests are resolved at compile time and each loop below is one
    branch-free pass that LLVM vectorises (what is not requested is not
    computed either).

    The arithmetic is in the precision of ``src``: float32 rows in float32
    (16 lanes of AVX-512 instead of 8), through the float32 functions of
    :mod:`rnntheory._vecmath`. The two precisions need two loops, since a
    scalar's type is fixed when a kernel is compiled (``src.itemsize`` is a
    compile-time constant, so only one of them is kept). The derivatives are
    taken from the argument, stable in saturation (``tanh′ = sech²``,
    ``σ′ = e^{−|a|}/(1 + e^{−|a|})²``, never ``1 − tanh²`` or ``σ(1 − σ)``), and
    one exponential serves ``f`` and its derivatives. ``f″``: ``−2 tanh·sech²``
    for tanh, ``σ′(1 − 2σ)`` for the sigmoid, 0 for the identity and ReLU.
    ReLU's derivative at 0 is 0 (PyTorch's convention).
    """
    n = src.shape[0]
    if code == ACT_TANH:
        if src.itemsize == 4:
            for i in range(n):
                v, d = tanh_sech2_f32(src[i])
                _put(f, fp, fpp, i, v, d, -2.0 * v * d, want)
        else:
            for i in range(n):
                v, d = tanh_sech2(src[i])
                _put(f, fp, fpp, i, v, d, -2.0 * v * d, want)
    elif code == ACT_SIGMOID:
        if src.itemsize == 4:
            for i in range(n):
                v, d = sigmoid_prime_f32(src[i])
                _put(f, fp, fpp, i, v, d, d * (1.0 - 2.0 * v), want)
        else:
            for i in range(n):
                v, d = sigmoid_prime(src[i])
                _put(f, fp, fpp, i, v, d, d * (1.0 - 2.0 * v), want)
    elif code == ACT_IDENTITY:
        for i in range(n):
            _put(f, fp, fpp, i, src[i], 1.0, 0.0, want)
    else:
        for i in range(n):
            v = src[i]
            _put(f, fp, fpp, i, v if v > 0 else 0.0, 1.0 if v > 0 else 0.0, 0.0, want)


@njit(cache=True, fastmath=False, error_model="numpy")
def activate(code, src, dst):
    """``dst = f(src)`` element-wise over 1-D arrays (:func:`activate_row`)."""
    activate_row(code, src, dst, dst, dst, WANT_F)


@njit(cache=True, fastmath=False, error_model="numpy")
def activate_prime(code, src, dst):
    """``dst = f′(src)`` element-wise over 1-D arrays, stable in saturation."""
    activate_row(code, src, dst, dst, dst, WANT_FPRIME)


@njit(cache=True, fastmath=False, error_model="numpy")
def activate_both(code, src, dst, dstp):
    """``dst = f(src)`` and ``dstp = f′(src)`` in one pass (one exponential each)."""
    activate_row(code, src, dst, dstp, dstp, WANT_F | WANT_FPRIME)
