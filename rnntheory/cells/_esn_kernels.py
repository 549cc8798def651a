"""Numba kernel of the echo state network's run loop over a sparse (CSR) reservoir.

Package-internal: :meth:`rnntheory.esn.ESN.run` (and its single step) call it
after validating every argument; nothing here checks its input. The arrays
are C-contiguous float64, except the CSR index arrays, which come as
*unsigned* views of SciPy's (nonnegative) ``int32`` or ``int64`` arrays: an
unsigned index lets the compiled loop skip the test for a negative
(wrap-around) index, which otherwise doubles the cost of the sparse product.

One step, for every unit ``i``, is

``x_{t+1,i} = (1 − a_i) x_{t,i} + a_i tanh(Σ_j W_ij x_{t,j} + d_{t,i}) + ν_{t,i}``,
``d_{t,i} = (Σ_k W_in,ik u_{t,k} + b_i) + Σ_k W_fb,ik y_{t−1,k}``

where the sum over ``j`` runs over row ``i``'s stored entries in their
stored order (the same terms and order as SciPy's ``W @ x``), the drive's
sums run in index order, ``tanh`` is the vectorisable one of
:mod:`rnntheory._vecmath` (within 1.5 ulp) and the blend is skipped when the
leak rate is 1 (the plain ``x_{t+1} = tanh(…)``). The drive is formed step
by step, never as a ``T × n`` array.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._vecmath import tanh_sech2


@njit(inline="always", cache=True, fastmath=False, error_model="numpy")
def _weighted_rows(M, c, out):
    """``out = Σ_k c_k M[k]``, each entry summed in index order from 0."""
    out[:] = 0.0
    for k in range(M.shape[0]):
        ck = c[k]
        row = M[k]
        for i in range(out.shape[0]):
            out[i] += row[i] * ck


@njit(cache=True, fastmath=False, error_model="numpy")
def esn_run_csr(indptr, indices, data, W_in_t, u, W_fb_t, y_prev, b, noise, x0, a, leaky, states):
    """Fill ``states[t] = x_{t+1}`` for ``t < T`` from ``x_0 = x0``.

    Parameters
    ----------
    indptr, indices : uint32 or uint64 arrays
        The CSR structure of the ``n × n`` reservoir (canonical: sorted, no duplicates).
    data : float64 array
        Its stored entries.
    W_in_t, u : float64 arrays, shapes (n_in, n) and (T, n_in)
        The input weights *transposed* (rows contiguous) and the inputs.
    W_fb_t, y_prev : float64 arrays, shapes (n_out, n) and (T, n_out)
        The feedback weights transposed, and ``y_prev[t] = y_{t−1}`` (``n_out = 0``: none).
    b : float64 array, shape (n,)
    noise : float64 array, shape (T, n) or (0, n)
        ``ν_t`` added after each update; an empty array adds nothing.
    x0 : float64 array, shape (n,)
    a : float64 array, shape (n,)
        Leak rates (read only when ``leaky``).
    leaky : bool
        False when every leak rate is exactly 1.
    states : float64 array, shape (T, n)
        Output.

    The caller makes sure that no drive overflows.
    """
    T, n = states.shape
    n_out = y_prev.shape[1]
    noisy = noise.shape[0] > 0
    buf = np.empty(n)
    fed = np.empty(n)
    prev = x0
    for t in range(T):
        # d_t, each sum in index order, by loops over the units (vectorised)
        _weighted_rows(W_in_t, u[t], buf)
        for i in range(n):
            buf[i] += b[i]
        if n_out:
            _weighted_rows(W_fb_t, y_prev[t], fed)
            for i in range(n):
                buf[i] += fed[i]
        for i in range(n):
            s = 0.0
            j = np.uint64(indptr[i])  # unsigned throughout (an int64 step would make it signed)
            end = np.uint64(indptr[i + 1])
            while j < end:
                s += data[j] * prev[indices[j]]
                j += np.uint64(1)
            buf[i] = s + buf[i]
        row = states[t]
        if leaky:
            for i in range(n):
                v, _ = tanh_sech2(buf[i])
                row[i] = (1.0 - a[i]) * prev[i] + a[i] * v
        else:
            for i in range(n):
                v, _ = tanh_sech2(buf[i])
                row[i] = v
        if noisy:
            nu = noise[t]
            for i in range(n):
                row[i] += nu[i]
        prev = row
