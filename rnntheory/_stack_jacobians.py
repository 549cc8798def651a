"""Input Jacobians of one step, the step Jacobian of a stack, and block-norm products.

Everything here is float64 NumPy, vectorised over the steps, like
:mod:`rnntheory._gated_jacobians` (numerator layout, ``J[a, b] = ∂out[a]/∂in[b]``).

Input Jacobians ``X_t = ∂s_t/∂x_t``
-----------------------------------
With ``U = W_hx`` (Elman) or the gate block ``U_x`` of ``weight_ih`` (rows
``x·n … (x+1)·n``), and ``a`` the step's recorded arguments:

* Elman, standard form: ``X_t = diag(f′(a_t)) W_hx``; Pascanu's form
  (``h_t = W_hh f(h_{t−1}) + W_hx x_t + b_h``): ``X_t = W_hx``; leaky (Eq. 14):
  ``diag(1 − α)`` times the non-leaky one (the retention term ``α h_{t−1}``
  does not read ``x_t``).
* LSTM, state ``(h, c)``, ``(2n × n_in)``::

      ∂c′/∂x = diag(c σ′(a_f)) U_f + diag(g σ′(a_i)) U_i + diag(i tanh′(a_g)) U_g
      ∂h′/∂x = diag(tanh(c′) σ′(a_o)) U_o + diag(o tanh′(c′)) ∂c′/∂x

* GRU: ``a_n = U_n x + b_in + r (W_hn h + b_hn)``: the reset gate multiplies
  the hidden part only, so ``U_n`` enters without ``r``::

      ∂h′/∂x = diag((h − n) σ′(a_z)) U_z
               + diag((1 − z) tanh′(a_n)) [diag((W_hn h + b_hn) σ′(a_r)) U_r + U_n]

The step Jacobian of a stack
----------------------------
The state of a stack of ``L`` layers is ``s = (s¹, …, s^L)``, layer 1 first,
each layer in its cell's order (LSTM: ``h`` then ``c``). Layer ``l`` at step
``t`` reads its own state ``s^l_{t−1}`` and the hidden state of layer ``l−1``
*at the same step*, ``x^l_t = E_h s^{l−1}_t`` (``E_h`` keeps the ``h`` rows).
The chain rule gives block row ``l`` of ``J_t = ∂s_t/∂s_{t−1}``::

    J_t[l, l] = A^l_t,   J_t[l, m] = X^l_t E_h J_t[l−1, m]   (m < l),   J_t[l, m] = 0 (m > l)

with ``A^l_t`` the layer's own step Jacobian and ``X^l_t`` its input Jacobian.
So ``J_t`` is block lower-triangular, and in closed form
``J_t = (I − S_t)^{-1} D_t`` with ``D_t = blockdiag(A^l_t)`` and ``S_t`` the
strictly lower block matrix with ``S_t[l, l−1] = X^l_t E_h`` (nilpotent, so
``(I − S_t)^{-1} = I + S_t + … + S_t^{L−1}``).

Products of block lower-triangular matrices are block lower-triangular, and
their diagonal blocks are the products of the diagonal blocks. So the
diagonal block ``l`` of ``∂s_t/∂s_k`` is ``A^l_t ⋯ A^l_{k+1}``: layer ``l``'s
own product, its recurrence with its input held fixed.

Block-norm matrices
-------------------
For an ``L × L`` non-negative ``N`` with ``N[l, m] ≥ ‖M[l, m]‖₂`` (blocks of a
matrix ``M``), ``‖M‖₂ ≤ ‖N‖₂``; and block norms are submultiplicative
entrywise, ``‖(AB)[l, m]‖ ≤ Σ_j ‖A[l, j]‖ ‖B[j, m]‖``. Hence
``‖J_t ⋯ J_{k+1}‖₂ ≤ ‖N_t ⋯ N_{k+1}‖₂``. :func:`log_block_products` forms every
such product in log space (entries as logs, sums by log-sum-exp), so nothing
overflows or underflows for any ``T``.

The layer factors
-----------------
The cross blocks of ``J_t`` are products of ``l − m + 1`` layers' matrices:
with weights of 1e300 in two layers they reach 1e600, beyond float64. The
same step is ``J_t = M^L_t ⋯ M^1_t``, with ``M^l_t`` the identity but for block
row ``l`` (``X^l_t E_h`` left of ``A^l_t``: layer ``l`` updated from the
already updated layer ``l−1``); each factor holds one layer's blocks only
(:func:`stack_factors`), so products over them stay exact where the
assembled ``J_t`` cannot be stored. :func:`block_log_norms` and
:func:`log_step_norms` form the blocks and the steps from the factors with
exact power-of-two rescaling after each multiplication.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._gated_jacobians import log_spectral_norms
from .activations import get_activation

__all__ = [
    "block_log_norms",
    "elman_input_jacobians",
    "gru_input_jacobians",
    "log_block_norm",
    "log_block_products",
    "log_matmul",
    "log_step_norms",
    "log_top_singular_values",
    "lstm_input_jacobians",
    "stack_factors",
    "stack_step_jacobians",
]

_SIG = get_activation("sigmoid")
_TANH = get_activation("tanh")
_LN2 = 0.6931471805599453


def elman_input_jacobians(
    W_hx: np.ndarray, fprime: np.ndarray, form: str, alpha: np.ndarray | None
) -> np.ndarray:
    """``(T, n, n_in)`` input Jacobians ``∂h_t/∂x_t`` of an Elman layer.

    ``fprime`` ``(T, n)`` is ``f′`` at the step's recorded argument (read in
    the standard form only); ``alpha`` the retention coefficients or ``None``.
    """
    U = np.asarray(W_hx, np.float64)
    fp = np.asarray(fprime, np.float64)
    T = fp.shape[0]
    if form == "standard":
        X = fp[:, :, None] * U[None]
    else:
        X = np.broadcast_to(U, (T, *U.shape)).copy()
    if alpha is not None:
        X = (1.0 - np.asarray(alpha, np.float64))[None, :, None] * X
    return np.ascontiguousarray(X)


def lstm_input_jacobians(weight_ih: np.ndarray, c: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """``(T, 2n, n_in)`` input Jacobians ``∂(h, c)_t/∂x_t`` of an LSTM layer.

    ``c`` ``(T+1, n)`` the cell states, ``pre`` ``(T, 4n)`` the gate
    pre-activations ``(i, f, g, o)``.
    """
    U = np.asarray(weight_ih, np.float64)
    a = np.asarray(pre, np.float64)
    c = np.asarray(c, np.float64)
    n = a.shape[1] // 4
    ai, af, ag, ao = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    i, g, o = _SIG.f(ai), _TANH.f(ag), _SIG.f(ao)
    Ui, Uf, Ug, Uo = U[:n], U[n:2 * n], U[2 * n:3 * n], U[3 * n:]
    dc = (
        (c[:-1] * _SIG.fprime(af))[:, :, None] * Uf[None]
        + (g * _SIG.fprime(ai))[:, :, None] * Ui[None]
        + (i * _TANH.fprime(ag))[:, :, None] * Ug[None]
    )
    tc, dtc = _TANH.f(c[1:]), _TANH.fprime(c[1:])
    dh = (tc * _SIG.fprime(ao))[:, :, None] * Uo[None] + (o * dtc)[:, :, None] * dc
    return np.ascontiguousarray(np.concatenate([dh, dc], axis=1))


def gru_input_jacobians(weight_ih: np.ndarray, h: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """``(T, n, n_in)`` input Jacobians ``∂h_t/∂x_t`` of a GRU layer.

    ``h`` ``(T+1, n)`` the hidden states, ``pre`` ``(T, 4n)``:
    ``(a_r, a_z, a_n, W_hn h_{t−1} + b_hn)``.
    """
    U = np.asarray(weight_ih, np.float64)
    a = np.asarray(pre, np.float64)
    n = a.shape[1] // 4
    ar, az, an, hn = a[:, :n], a[:, n:2 * n], a[:, 2 * n:3 * n], a[:, 3 * n:]
    z, nn = _SIG.f(az), _TANH.f(an)
    h_prev = np.asarray(h, np.float64)[:-1]
    Ur, Uz, Un = U[:n], U[n:2 * n], U[2 * n:]
    dn = _TANH.fprime(an)[:, :, None] * ((hn * _SIG.fprime(ar))[:, :, None] * Ur[None] + Un[None])
    X = ((h_prev - nn) * _SIG.fprime(az))[:, :, None] * Uz[None] + (1.0 - z)[:, :, None] * dn
    return np.ascontiguousarray(X)


def stack_step_jacobians(A: Sequence[np.ndarray], X: Sequence[np.ndarray | None], n_hidden: int) -> np.ndarray:
    """``(T, S, S)`` step Jacobians of a stack from its layers' ``A^l`` and ``X^l``.

    ``A[l]`` ``(T, s_l, s_l)`` is layer ``l``'s own step Jacobian, ``X[l]``
    ``(T, s_l, n_hidden)`` its input Jacobian (``X[0]`` is not read: layer 1's
    input is not part of the state). Layer ``l`` reads the first ``n_hidden``
    entries (``h``) of layer ``l−1``'s state. Block row ``l`` is ``A^l`` on the
    diagonal and ``X^l E_h`` (block row ``l−1``) left of it; the blocks above
    the diagonal are exactly 0.
    """
    sizes = [int(a.shape[1]) for a in A]
    T = int(A[0].shape[0])
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    S = int(off[-1])
    J = np.zeros((T, S, S))
    for l, Al in enumerate(A):
        r0, r1 = off[l], off[l + 1]
        J[:, r0:r1, r0:r1] = Al
        if l > 0:
            Xl = np.asarray(X[l], np.float64)
            p0 = off[l - 1]
            # rows of layer l−1's h, columns of every earlier layer (a contiguous copy:
            # NumPy's batched matmul of a strided slice is 10-20x slower than of a copy)
            J[:, r0:r1, :r0] = np.matmul(Xl, np.ascontiguousarray(J[:, p0:p0 + n_hidden, :r0]))
    return J


def stack_factors(A: Sequence[np.ndarray], X: Sequence[np.ndarray | None], n_hidden: int) -> np.ndarray:
    """``(T·L, S, S)``: the step Jacobians of a stack as ``J_t = M^L_t ⋯ M^1_t``.

    ``M^l_t`` is the identity but for block row ``l``: ``X^l_t E_h`` in column
    ``l−1`` and ``A^l_t`` in column ``l`` (layer ``l`` updated from the already
    updated layer ``l−1``). Factor ``(t−1)·L + (l−1)`` is ``M^l_t``, so the
    product of factors ``k·L … t·L`` (later factors on the left) is
    ``∂s_t/∂s_k``. Each factor holds only one layer's blocks, so its entries
    are within float64 whenever the layers' are, while the assembled ``J_t``'s
    cross blocks are products of ``l − m + 1`` of them (weights of 1e300 give
    entries of 1e600 there, which no float64 holds).
    """
    sizes = [int(a.shape[1]) for a in A]
    T, L = int(A[0].shape[0]), len(A)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    S = int(off[-1])
    F = np.zeros((T, L, S, S))
    idx = np.arange(S)
    F[:, :, idx, idx] = 1.0
    for l, Al in enumerate(A):
        r0, r1 = off[l], off[l + 1]
        F[:, l, r0:r1, r0:r1] = Al
        if l > 0:
            p0 = off[l - 1]
            F[:, l, r0:r1, p0:p0 + n_hidden] = np.asarray(X[l], np.float64)
    return F.reshape(T * L, S, S)


def _rescaled(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``B`` ``(T, p, q)`` with each matrix scaled by the power of two that brings its
    largest |entry| into [1/2, 1) (exact; zero and non-finite matrices are left
    as they are), and the exponents ``e`` (``B = 2^e · scaled``)."""
    with np.errstate(invalid="ignore"):
        big = np.abs(B).max(axis=(1, 2)) if B.size else np.zeros(B.shape[0])
    ok = np.isfinite(big) & (big > 0)
    e = np.zeros(B.shape[0], dtype=np.int64)
    e[ok] = np.frexp(big[ok])[1]
    return np.ldexp(B, -e[:, None, None]), e


def log_top_singular_values(M: np.ndarray) -> np.ndarray:
    """``ln σ_max`` of each matrix of a stack ``(..., p, q)``, from the Gram matrix:
    :func:`rnntheory._gated_jacobians.log_spectral_norms` with ``gram=True``
    (the same power-of-two scaling, ``−inf`` for a zero matrix, NaN for one with
    a NaN or inf entry), about three times faster than an SVD for the blocks of
    a stack; the Gram matrix's rounding, a relative ``O(min(p, q) ε)`` in
    ``σ_max``, lies far inside the per-step tolerance of the certificates.
    """
    return log_spectral_norms(M, gram=True)


def block_log_norms(A: Sequence[np.ndarray], X: Sequence[np.ndarray | None], n_hidden: int) -> np.ndarray:
    """``(T, L, L)``: ``ln ‖J_t[l, m]‖₂`` of each block of the stack's step Jacobian.

    Block ``(l, m)`` is ``X^l_t E_h ⋯ X^{m+1}_t E_h A^m_t`` (0 above the
    diagonal, ``−inf`` here). It is formed one factor at a time, rescaled by a
    power of two after each (exact), and its log norm taken by
    :func:`log_top_singular_values` with the exponents
    added back: finite for weights of 1e300 in every layer, whose cross blocks
    (1e600) no float64 holds. NaN for a block with a NaN or inf entry.
    """
    L, T = len(A), int(A[0].shape[0])
    out = np.full((T, L, L), -np.inf)
    for m in range(L):
        B, e = _rescaled(np.asarray(A[m], np.float64))
        out[:, m, m] = log_top_singular_values(B) + e * _LN2
        for l in range(m + 1, L):
            B, e2 = _rescaled(np.matmul(np.asarray(X[l], np.float64), B[:, :n_hidden, :]))
            e = e + e2
            out[:, l, m] = log_top_singular_values(B) + e * _LN2
    return out


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """``ln Σ e^x`` along ``axis`` (``−inf`` when every term is; NaN propagates)."""
    with np.errstate(invalid="ignore"):
        top = np.max(x, axis=axis, keepdims=True)
    ref = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.log(np.sum(np.exp(x - ref), axis=axis, keepdims=True)) + ref
    s = np.where(np.isneginf(top), -np.inf, s)
    s = np.where(np.isposinf(top), np.inf, s)
    s = np.where(np.isnan(top), np.nan, s)
    return np.squeeze(s, axis=axis)


def log_matmul(la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """``ln(AB)`` of non-negative matrices given entrywise ``ln A``, ``ln B``
    (``(..., p, q)`` by ``(..., q, r)``): ``ln Σ_j e^{la[l, j] + lb[j, m]}``."""
    with np.errstate(invalid="ignore"):
        terms = la[..., :, :, None] + lb[..., None, :, :]
    return _logsumexp(terms, axis=-2)


def log_block_norm(lm: np.ndarray) -> np.ndarray:
    """``ln ‖M‖₂`` of non-negative ``(..., p, q)`` matrices from their entries' logs.

    The entries are divided by the largest before the SVD (so they lie in
    ``[0, 1]``), then its log is added back: finite for every finite log.
    ``−inf`` for a zero matrix, NaN where an entry's log is NaN.
    """
    lm = np.asarray(lm, np.float64)
    lead = lm.shape[:-2]
    flat = lm.reshape(-1, *lm.shape[-2:])
    out = np.full(flat.shape[0], np.nan)
    nan = np.isnan(flat).any(axis=(1, 2))
    top = np.where(nan[:, None, None], -np.inf, flat).max(axis=(1, 2))
    zero = ~nan & np.isneginf(top)
    inf = ~nan & np.isposinf(top)
    out[zero] = -np.inf
    out[inf] = np.inf
    ok = ~nan & np.isfinite(top)
    if ok.any():
        with np.errstate(under="ignore"):
            M = np.exp(flat[ok] - top[ok][:, None, None])
        out[ok] = np.log(np.linalg.norm(M, 2, axis=(1, 2))) + top[ok]
    return out.reshape(lead)


def log_block_products(logN: np.ndarray) -> np.ndarray:
    """``B[t, k] = ln ‖N_t ⋯ N_{k+1}‖₂`` for every pair ``k ≤ t`` (``(T+1, T+1)``).

    ``logN`` ``(T, L, L)`` holds the entries' logs of non-negative matrices
    (``logN[i−1]`` is ``N_i``). ``B[t, t] = 0`` (the identity), ``−inf`` above
    the diagonal; NaN on the pairs whose stretch ``k < i ≤ t`` has a factor
    with a NaN entry. The products are formed in log space, one row ``t`` at
    a time for every ``k < t`` at once (``P_{t,k} = N_t P_{t−1,k}``).
    """
    logN = np.asarray(logN, np.float64)
    T, L = logN.shape[0], logN.shape[1]
    out = np.full((T + 1, T + 1), -np.inf)
    out[np.diag_indices(T + 1)] = 0.0
    eye = np.where(np.eye(L, dtype=bool), 0.0, -np.inf)
    P = np.empty((0, L, L))  # P[k] = ln(N_t ⋯ N_{k+1}) for k < t
    for t in range(1, T + 1):
        P = np.concatenate([P, eye[None]], axis=0)  # the factor over k = t−1 starts from I
        P = log_matmul(np.broadcast_to(logN[t - 1], P.shape), P)
        out[t, :t] = log_block_norm(P)
    bad = np.isnan(logN).any(axis=(1, 2))
    if bad.any():
        n_bad = np.concatenate([[0], np.cumsum(bad)])
        out[(n_bad[:, None] - n_bad[None, :]) > 0] = np.nan
    return out


def log_step_norms(F: np.ndarray, per: int) -> np.ndarray:
    """``ln ‖F_{t·per−1} ⋯ F_{(t−1)·per}‖₂`` for ``t = 1..T``: the log norm of each
    step from its ``per`` factors, multiplied with an exact power-of-two
    rescaling after each factor (so products beyond float64 stay finite)."""
    F = np.asarray(F, np.float64)
    if per == 1:
        return log_top_singular_values(F)
    T = F.shape[0] // per
    G = F.reshape(T, per, *F.shape[1:])
    P, e = _rescaled(G[:, 0])
    for j in range(1, per):
        P, e2 = _rescaled(np.matmul(G[:, j], P))
        e = e + e2
    return log_top_singular_values(P) + e * _LN2

