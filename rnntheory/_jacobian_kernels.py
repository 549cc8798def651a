"""Private Numba kernels for long products of step Jacobians.

Products are accumulated with rescaling: the running product ``P`` is kept
with its largest entry near 1 and the scale is carried separately as a natural
log, so nothing overflows or underflows whatever the number of factors. A
step whose factors' smallest entries could form a term below float64's normal
range runs on (mantissa, exponent) pairs instead (:func:`_times`), so no part
of a product is lost to underflow either.

Spectral norms of the rescaled products come from a warm-started power
iteration on ``P Pᵀ`` (the dominant left singular vector of ``J_t ⋯ J_{k+1}``
changes little from one ``k`` to the next); when it has not converged in
``_POWER_MAXIT`` iterations (the top singular values are close, as in short
products of many similar factors), Lanczos with full reorthogonalisation
takes over from its vector (:func:`_lanczos`). Either only gives a lower
bound ``s ≤ σ_max`` (up to rounding) and can settle on a smaller singular
value when the warm start is orthogonal to the dominant direction, so every
value is *certified* before it is returned, that is ``σ_max² ≤ s²(1 + δ)`` is
proved:

1. cheaply, in O(n²): with unit ``u, v`` from the iteration and ``α = uᵀPv``,
   write ``P`` in orthonormal bases that start with ``u`` and ``v``:
   ``[[α, bᵀ], [c, D]]`` with ``b = Pᵀu − αv``, ``c = Pv − αu`` (formed as
   vectors) and ``‖D‖_F² = ‖P‖_F² − α² − ‖b‖² − ‖c‖²``. The spectral norm of
   a block matrix is at most that of the 2 × 2 matrix of its blocks' norms,
   so ``σ_max ≤ σ_max([[α, ‖b‖], [‖c‖, ‖D‖_F]])``, a closed form, evaluated
   on upper bounds of the four norms that cover their rounding. This succeeds
   whenever the rest of the spectrum is clearly below ``α`` (the usual case).
   Every power iteration has the two products it needs, so it is tried at
   each one, and the iteration stops as soon as it succeeds with the bound
   also within the convergence test's 1e-14 of ``α``;
2. otherwise by a successful Cholesky factorisation of ``s²(1 + δ) I − PᵀP``
   (positive definite exactly when every singular value is below ``s√(1+δ)``);
3. otherwise LAPACK's SVD decides, and its dominant vector becomes the next
   warm start.

Block-triangular factors. The whole-state step Jacobians of a stack of layers
are block lower-triangular, and an LSTM's columns for its cell state hold
diagonal blocks only; :func:`tile_plan` finds such exact zero and diagonal
tiles (in every finite factor) and the products and Gram matrices skip them
(:func:`tiled_matmul`): the same sums without their exactly zero terms.

With ``δ = 1e-11`` the value is within ``5e-12`` relative of σ_max, up to the
rounding of ``α`` itself (about n·1e-16).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._vecmath import bits_as_float, pow2

_POWER_TOL = 1e-14
_POWER_MAXIT = 20  # then Lanczos, which converges faster on a clustered top spectrum
_LANCZOS_STEPS = 64
_LANCZOS_TOL = 1e-15  # stop when the top Ritz value is this close to an eigenvalue (relative)
_CERT_DELTA = 1e-11


@njit(cache=True, fastmath=False, error_model="numpy")
def _norm2(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return np.sqrt(s)


_TINY = 1e-150  # a unit vector's components below this are set to 0 (see _scaled_into)


@njit(cache=True, fastmath=False, error_model="numpy")
def _scaled_into(src, s, dst):
    """``dst = src / s``, components below ``_TINY`` in magnitude set to 0.

    The iteration vectors are unit vectors carried from one product to the
    next as warm starts; components along directions the products shrink
    decay geometrically, reach the subnormal range after a few hundred
    iterations, and every later product touching them then runs tens of
    times slower (subnormal arithmetic: 40× on a power iteration over a
    stacked LSTM's products whose warm start had picked up such
    components). A component below 1e-150 of a unit vector changes no product by
    more than 1e-150 relative, far below rounding, and every value is
    certified afterwards whatever its starting vector.
    """
    for i in range(dst.shape[0]):
        x = src[i] / s
        dst[i] = x if abs(x) >= _TINY else 0.0


# ---------------------------------------------------------------------------
# Tiles. The step Jacobians of a stack of layers are block lower-triangular
# (the blocks above the diagonal are exactly 0), and an LSTM's columns for its
# cell state c hold only diagonal blocks (∂h_t/∂c_{t−1} and ∂c_t/∂c_{t−1} are
# diagonal). A *plan* cuts the n × n matrices into b × b tiles and records,
# from the nonzero entries of every finite factor, which tiles of a factor are
# exactly 0, which are diagonal and which are dense, and which tiles of a
# running product can be nonzero (the closure of the factors' pattern under
# multiplication, the identity included). Products and Gram matrices then
# multiply only the tiles that can contribute: same sums, fewer terms (the
# terms skipped are exact zeros). ``b = 0`` is the plain dense product.
# ---------------------------------------------------------------------------
_TILE_MIN = 8  # smallest tile tried
_TILE_OVERHEAD = 32.0  # a b × b BLAS product costs about 2b³(1 + 32/b) flops here


@njit(cache=True, fastmath=False, error_model="numpy")
def _tile_pattern(nz, b):
    """Kinds of the ``b × b`` tiles of the pattern ``nz``: 0 zero, 1 nonzero only
    on the tile's own diagonal, 2 dense."""
    nt = nz.shape[0] // b
    pat = np.zeros((nt, nt), np.int8)
    for i in range(nt):
        for j in range(nt):
            kind = 0
            for r in range(b):
                for c in range(b):
                    if nz[i * b + r, j * b + c]:
                        if r == c and kind == 0:
                            kind = 1
                        elif r != c:
                            kind = 2
            pat[i, j] = kind
    return pat


@njit(cache=True, fastmath=False, error_model="numpy")
def _closure(fpat):
    """Tiles that can be nonzero in a product of factors of tile pattern
    ``fpat`` (the identity included): the least ``C ⊇ I`` with ``C·F ⊆ C``."""
    nt = fpat.shape[0]
    C = np.zeros((nt, nt), np.bool_)
    for i in range(nt):
        C[i, i] = True
    changed = True
    while changed:
        changed = False
        for i in range(nt):
            for j in range(nt):
                if C[i, j]:
                    continue
                for l in range(nt):
                    if C[i, l] and fpat[l, j] != 0:
                        C[i, j] = True
                        changed = True
                        break
    return C


@njit(cache=True, fastmath=False, error_model="numpy")
def _tile_cost(ppat, fpat, b):
    """Estimated flops of one product ``P F`` with tiles of size ``b``."""
    nt = fpat.shape[0]
    dense = 0
    diag = 0
    for i in range(nt):
        for j in range(nt):
            for l in range(nt):
                if ppat[i, l]:
                    if fpat[l, j] == 2:
                        dense += 1
                    elif fpat[l, j] == 1:
                        diag += 1
    return dense * 2.0 * b ** 3 * (1.0 + _TILE_OVERHEAD / b) + diag * 2.0 * b * b


@njit(cache=True, fastmath=False, error_model="numpy")
def tile_plan(J, logs, transpose):
    """``(b, fpat, ppat, ppat_t, pdense)`` for products of the factors ``J``
    (of ``Jᵀ`` with ``transpose``): the tile size (0: dense products are
    cheaper), the factors' tile kinds, the tiles a running product can have
    nonzero, their transpose, and the running product read as a factor (for
    the Gram matrix ``PᵀP``). Factors with a non-finite ``logs`` entry are
    left out: a product over one is NaN whatever its tiles hold."""
    T, n, _ = J.shape
    nz = np.zeros((n, n), np.bool_)
    for k in range(T):
        if not np.isfinite(logs[k]):
            continue
        for i in range(n):
            for j in range(n):
                if J[k, i, j] != 0.0:
                    if transpose:
                        nz[j, i] = True
                    else:
                        nz[i, j] = True
    best_b = 0
    best = 2.0 * n ** 3 * (1.0 + _TILE_OVERHEAD / n)
    limit = 0.8 * best  # tiles only when they save a fifth
    for b in range(_TILE_MIN, n):
        if n % b != 0 or n // b > 32:
            continue
        fpat = _tile_pattern(nz, b)
        cost = _tile_cost(_closure(fpat), fpat, b)
        if cost < best and cost < limit:
            best, best_b = cost, b
    if best_b == 0:
        e8 = np.zeros((0, 0), np.int8)
        eb = np.zeros((0, 0), np.bool_)
        return 0, e8, eb, eb, e8
    fpat = _tile_pattern(nz, best_b)
    ppat = _closure(fpat)
    pdense = np.zeros(ppat.shape, np.int8)
    for i in range(ppat.shape[0]):
        for j in range(ppat.shape[1]):
            if ppat[i, j]:
                pdense[i, j] = 2
    return best_b, fpat, ppat, ppat.T.copy(), pdense


@njit(cache=True, fastmath=False, error_model="numpy")
def dense_plan():
    """The plan of plain dense products."""
    e8 = np.zeros((0, 0), np.int8)
    eb = np.zeros((0, 0), np.bool_)
    return 0, e8, eb, eb, e8


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _tiles(n, plan):
    """The plan with one thread's work space of :func:`tiled_matmul`:
    ``(b, fpat, ppat, ppat_t, pdense, At, Bt, C, tmp)``."""
    b, fpat, ppat, ppat_t, pdense = plan
    nt = n // b if b > 0 else 0
    return (b, fpat, ppat, ppat_t, pdense, np.empty((nt, nt, b, b)), np.empty((nt, nt, b, b)),
            np.empty((b, b)), np.empty((b, b)))


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _product_into(P, M, tw, out):
    """``out = P M`` for a running product ``P`` and a factor ``M`` (tiled by ``tw``)."""
    if tw[0] == 0:
        np.dot(P, M, out)
    else:
        tiled_matmul(P, tw[2], M, tw[1], tw[0], tw[5], tw[6], tw[7], tw[8], out, False)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _gram_into(P, tw, out):
    """``out = PᵀP`` for a running product ``P`` (tiled by ``tw``)."""
    if tw[0] == 0:
        np.dot(P.T, P, out)
    else:
        tiled_matmul(P.T, tw[3], P, tw[4], tw[0], tw[5], tw[6], tw[7], tw[8], out, True)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def tiled_matmul(A, apat, B, bpat, b, At, Bt, C, tmp, out, upper):
    """``out = A B`` over ``b × b`` tiles: tile ``(i, l)`` of ``A`` is read only
    where ``apat[i, l]``, tile ``(l, j)`` of ``B`` by its kind ``bpat[l, j]``
    (0 zero, 1 diagonal, 2 dense); every other tile must be exactly 0. With
    ``upper`` only the tiles ``j ≥ i`` are formed and the rest mirrored
    (for a symmetric result). ``At``, ``Bt``, ``C``, ``tmp`` are work space."""
    nt = apat.shape[0]
    for i in range(nt):
        for l in range(nt):
            if apat[i, l]:
                for r in range(b):
                    for c in range(b):
                        At[i, l, r, c] = A[i * b + r, l * b + c]
    for l in range(nt):
        for j in range(nt):
            if bpat[l, j] == 2:
                for r in range(b):
                    for c in range(b):
                        Bt[l, j, r, c] = B[l * b + r, j * b + c]
    for i in range(nt):
        for j in range(i if upper else 0, nt):
            first = True
            for l in range(nt):
                if not apat[i, l] or bpat[l, j] == 0:
                    continue
                if bpat[l, j] == 2:
                    if first:
                        np.dot(At[i, l], Bt[l, j], C)
                    else:
                        np.dot(At[i, l], Bt[l, j], tmp)
                        for r in range(b):
                            for c in range(b):
                                C[r, c] += tmp[r, c]
                else:  # a diagonal tile of B scales the columns of A's tile
                    for r in range(b):
                        for c in range(b):
                            d = At[i, l, r, c] * B[l * b + c, j * b + c]
                            C[r, c] = d if first else C[r, c] + d
                first = False
            for r in range(b):
                for c in range(b):
                    out[i * b + r, j * b + c] = 0.0 if first else C[r, c]
    if upper:
        for i in range(nt):
            for j in range(i):
                for r in range(b):
                    for c in range(b):
                        out[i * b + r, j * b + c] = out[j * b + c, i * b + r]


@njit(cache=True, fastmath=False, error_model="numpy")
def _fro2(P):
    """``‖P‖_F²``: column sums first (one accumulator per column, so the inner
    loop is elementwise and vectorises), then their sum; each entry passes
    through at most ``n + m`` additions, a rounding bound no larger than that
    of one running sum."""
    n, m = P.shape
    col = np.zeros(m)
    for i in range(n):
        for j in range(m):
            col[j] += P[i, j] * P[i, j]
    s = 0.0
    for j in range(m):
        s += col[j]
    return s


@njit(cache=True, fastmath=False, error_model="numpy")
def _power(P, u, v, w, y, fro2, out):
    """Warm-started power iteration; a lower bound of σ_max (or −1 on failure).

    ``s1 = ‖Pᵀu‖`` and ``s2 = ‖P v‖`` with ``v = Pᵀu/s1`` are both lower
    bounds of σ_max that increase monotonically; stop when they agree. Each
    iteration has ``w = Pᵀu`` and ``y = Pv`` for the same unit ``u``, ``v``:
    all that step 1 of the certificate needs besides ``‖P‖_F² = fro2``. So it
    is tried on the way (O(n), no product), asking also for the accuracy of the
    convergence test, so that stopping early does not make the value less
    accurate than running to convergence. ``out[1]``: 1 when certified so
    (the value in ``out[0]``), 0 when converged, 2 when not converged in
    ``_POWER_MAXIT`` iterations or, from the rate at which ``s2 − s1``
    shrinks (about ``(σ₂/σ₁)²`` a step), not about to.
    """
    out[1] = 2.0
    gap_prev = np.inf
    for it in range(_POWER_MAXIT):
        np.dot(u, P, w)  # w = Pᵀ u
        s1 = _norm2(w)
        if not (s1 > 0.0 and np.isfinite(s1)):
            return -1.0
        _scaled_into(w, s1, v)
        np.dot(P, v, y)
        s2 = _norm2(y)
        if not (s2 > 0.0 and np.isfinite(s2)):
            return -1.0
        if _two_by_two_ok(u, v, w, y, fro2, _POWER_TOL, out):
            out[1] = 1.0
            return s2
        _scaled_into(y, s2, u)
        gap = s2 - s1
        if it >= 1 and gap <= _POWER_TOL * s2:
            out[1] = 0.0
            return s2
        if it >= 3:  # the gap shrinks by about (σ₂/σ₁)² a step: hand over early if too slow
            rate = gap / gap_prev
            if not (0.0 < rate < 1.0):
                return s2
            if it + np.log(_POWER_TOL * s2 / gap) / np.log(rate) > _POWER_MAXIT:
                return s2
        gap_prev = gap
    return s2


@njit(cache=True, fastmath=False, error_model="numpy")
def _two_by_two_ok(u, v, w, y, fro2, accuracy, alpha_out):
    """Step 1 of the certificate from ``w = Pᵀu``, ``y = Pv`` (``u``, ``v``
    unit) and ``fro2 = ‖P‖_F²``; writes ``|α|`` to ``alpha_out[0]``. With
    ``accuracy > 0`` it also asks that the same bound without the rounding
    allowances be within ``accuracy`` of ``|α|`` (relative): ``σ_max − |α|``
    is of that size, as small as after the power iteration's convergence
    test, so stopping there changes no value by more than that.

    ``b = Pᵀu − αv`` and ``c = Pv − αu`` are formed as vectors, not as
    ``‖Pᵀu‖² − α²``: when the two largest singular values nearly coincide the
    2 × 2 bound depends on ``‖b‖``, ``‖c‖`` to first order, and the squared
    difference would lose them to rounding below ``√ε α``. Each of
    ``α, ‖b‖, ‖c‖, ‖D‖_F`` is replaced by an upper bound that covers its
    rounding (the 2 × 2 norm grows with each entry).
    """
    n = u.shape[0]
    m = v.shape[0]
    alpha = 0.0
    for j in range(m):
        alpha += w[j] * v[j]
    b2 = 0.0
    for j in range(m):
        r = w[j] - alpha * v[j]
        b2 += r * r
    c2 = 0.0
    for i in range(n):
        r = y[i] - alpha * u[i]
        c2 += r * r
    a = abs(alpha)
    alpha_out[0] = a
    eps = 2.220446049250313e-16
    k = n + m + 4.0
    slack = k * eps * np.sqrt(fro2)  # absolute rounding of α, ‖b‖, ‖c‖
    a_up = a + slack
    b_up = np.sqrt(b2) + slack
    c_up = np.sqrt(c2) + slack
    d_up = np.sqrt(max(fro2 - a * a - b2 - c2, 0.0) + 4.0 * k * eps * fro2)
    # spectral norm of [[a, b], [c, d]], a closed form without cancellation
    top = 0.5 * (np.sqrt((a_up + d_up) ** 2 + (b_up - c_up) ** 2)
                 + np.sqrt((a_up - d_up) ** 2 + (b_up + c_up) ** 2))
    if not top * (1.0 + 8.0 * eps) <= a * np.sqrt(1.0 + _CERT_DELTA):
        return False
    if accuracy <= 0.0:
        return True
    bb, cc = np.sqrt(b2), np.sqrt(c2)
    dd = np.sqrt(max(fro2 - a * a - b2 - c2, 0.0))
    top0 = 0.5 * (np.sqrt((a + dd) ** 2 + (bb - cc) ** 2) + np.sqrt((a - dd) ** 2 + (bb + cc) ** 2))
    return top0 <= a * (1.0 + accuracy)


@njit(cache=True, fastmath=False, error_model="numpy")
def _block_bound_ok(P, u, v, y, alpha_out):
    """Step 1 of the certificate for unit ``u``, ``v`` (see :func:`_two_by_two_ok`)."""
    w = np.dot(u, P)  # Pᵀu
    np.dot(P, v, y)  # Pv
    return _two_by_two_ok(u, v, w, y, _fro2(P), 0.0, alpha_out)


@njit(cache=True, fastmath=False, error_model="numpy")
def _cholesky_ok(P, s, A, tw):
    """Step 2 of the certificate: ``s²(1 + δ) I − PᵀP`` is positive definite."""
    m = P.shape[1]
    thr = s * s * (1.0 + _CERT_DELTA)
    _gram_into(P, tw, A)
    for i in range(m):
        for j in range(m):
            A[i, j] = -A[i, j]
        A[i, i] += thr
    try:
        np.linalg.cholesky(A)
    except Exception:  # not positive definite: s is not within δ of σ_max
        return False
    return True


@njit(cache=True, fastmath=False, error_model="numpy")
def _lanczos(P, u, K):
    """Top Ritz value of ``PPᵀ`` from Lanczos with full reorthogonalisation,
    started at ``u``: ``√θ``, a lower bound of σ_max up to rounding (−1 on
    failure); ``u`` becomes the Ritz vector (the next warm start).

    Power iteration converges at the rate ``(σ₂/σ₁)²``, which is slow when the
    top singular values are close (short products of many similar factors);
    Lanczos converges at about the square root of that rate. At most ``K``
    steps; it stops once ``r²/(θ − θ₂) ≤ _LANCZOS_TOL θ`` (``r`` the residual
    of the top Ritz pair, ``θ₂`` the next Ritz value: the distance from θ to
    an eigenvalue is below ``r²/gap``), or at an invariant subspace; the caller
    certifies the value.
    """
    n, m = P.shape
    K = min(K, n)
    Q = np.zeros((K + 1, n))
    a = np.zeros(K)
    b = np.zeros(K)
    z = np.empty(m)
    w = np.empty(n)
    z2 = np.empty(n)
    d = np.empty(K + 1)
    nu = _norm2(u)
    if not (nu > 0.0 and np.isfinite(nu)):
        return -1.0
    _scaled_into(u, nu, Q[0])
    theta = -1.0
    best = np.zeros(1)
    kk = 0
    for j in range(K):
        np.dot(Q[j], P, z)  # Pᵀ q_j
        np.dot(P, z, w)  # P Pᵀ q_j
        aj = 0.0
        for i in range(n):
            aj += Q[j, i] * w[i]
        a[j] = aj
        Qj = Q[: j + 1]
        for _ in range(2):  # full reorthogonalisation (classical Gram-Schmidt, twice is enough)
            np.dot(Qj, w, d[: j + 1])
            np.dot(d[: j + 1], Qj, z2)
            for i in range(n):
                w[i] -= z2[i]
        bj = _norm2(w)
        b[j] = bj
        kk = j + 1
        # the Ritz values at steps 1-8, then every 4th step and the last
        if bj == 0.0 or kk <= 8 or kk % 4 == 0 or kk == K:
            Tm = np.zeros((kk, kk))
            for l in range(kk):
                Tm[l, l] = a[l]
                if l + 1 < kk:
                    Tm[l, l + 1] = b[l]
                    Tm[l + 1, l] = b[l]
            ev, evec = np.linalg.eigh(Tm)
            theta = ev[kk - 1]
            best = evec[:, kk - 1].copy()
            if not np.isfinite(theta):
                return -1.0
            if bj == 0.0:
                break  # an invariant subspace: θ is an eigenvalue
            if kk >= 2:  # |λ − θ| ≤ r²/gap for the residual r of the Ritz pair
                r = bj * abs(best[kk - 1])
                if r * r <= _LANCZOS_TOL * theta * (theta - ev[kk - 2]):
                    break
        if j == K - 1:
            break
        _scaled_into(w, bj, Q[j + 1])
    if not theta > 0.0:
        return -1.0
    for i in range(n):
        acc = 0.0
        for l in range(kk):
            acc += best[l] * Q[l, i]
        u[i] = acc if abs(acc) >= _TINY else 0.0
    return np.sqrt(theta)


@njit(cache=True, fastmath=False, error_model="numpy")
def sigma_max(P, u, v, y, A, tw):
    """Largest singular value of ``P``, certified; ``u`` is the warm start (updated).

    ``v``, ``y`` (length n) and ``A`` (n × n) are work arrays; ``tw`` the
    tiles of ``P`` (:func:`_tiles`).
    """
    w = np.empty(P.shape[1])
    status = np.empty(2)
    s = _power(P, u, v, w, y, _fro2(P), status)
    if status[1] == 1.0:  # certified on the way
        return status[0]
    if s > 0.0 and status[1] == 0.0:
        alpha = np.empty(1)
        if _block_bound_ok(P, u, v, y, alpha):
            return alpha[0]
        if _cholesky_ok(P, s, A, tw):
            return s
    elif s > 0.0:  # the top singular values are close: Lanczos, then the Cholesky certificate
        s = _lanczos(P, u, _LANCZOS_STEPS)
        if s > 0.0 and _cholesky_ok(P, s, A, tw):
            return s
    if not np.all(np.isfinite(P)):
        return np.nan
    U, S, _ = np.linalg.svd(P)
    _scaled_into(U[:, 0], 1.0, u)
    return S[0]


@njit(cache=True, fastmath=False, error_model="numpy")
def _start_vector(n):
    u = np.empty(n)
    for i in range(n):
        u[i] = 1.0 + 0.1 * np.sin(1.0 + i)
    u /= _norm2(u)
    return u


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _scan(flat):
    """``(largest |entry|, smallest nonzero |entry|, any NaN)`` of a contiguous
    vector in one pass on the bits: a float64's magnitude orders like its bits
    with the sign cleared, as integers (NaNs above inf), and integer max/min
    reductions vectorise where strict floating-point ones do not (about 5×
    faster). With a NaN the first value is meaningless (``bad`` says so)."""
    bits = flat.view(np.int64)
    mask = np.int64(0x7FFFFFFFFFFFFFFF)
    hi = np.int64(0)
    lo = mask
    for i in range(bits.size):
        a = bits[i] & mask
        hi = max(hi, a)
        lo = min(lo, a if a != 0 else mask)
    pair = np.empty(2, np.int64)
    pair[0] = hi
    pair[1] = lo
    f = pair.view(np.float64)
    return f[0], (f[1] if lo != mask else np.inf), hi > np.int64(0x7FF0000000000000)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _times_pow2(src, dst, e):
    """``dst = src · 2^-e``: exact wherever the result is a normal float64."""
    if -1022 <= -e <= 1023:
        f = bits_as_float((1023 - e) << 52)
        for i in range(src.size):
            dst[i] = src[i] * f
    else:
        for i in range(src.size):
            dst[i] = math.ldexp(src[i], -e)


# ---------------------------------------------------------------------------
# Scaling. Every factor and every running product is multiplied by a power of
# two, 2^-e, that brings its largest |entry| into [1/2, 1), and e·ln 2 is
# carried as a log-scale: nothing overflows or underflows whatever the number
# of factors, and the scaling itself is exact.
#
# Extended exponents. That keeps the *largest* entry in range, but the entries
# of one product can span more than float64's ~600 orders of magnitude
# (weights of 1e-200 beside weights of 1, units saturated to f' = 1e-250): a
# term a_ik b_kj below 2^-1022 then loses its bits or vanishes, and a later
# factor that annihilates the large entries turns that loss into a wrong (or
# −inf) norm. So a step runs in float64 only when the smallest nonzero entries
# of its two factors cannot form such a term, and a product stays in float64
# only while its scaled entries are all normal numbers. Otherwise it is held as
# m·2^e (float64 mantissa m in [1/2, 1), int64 exponent e), which cannot
# underflow: each term's exponent is formed exactly and its mantissa to float64
# rounding, and the terms of a sum are aligned on their largest exponent (terms
# more than 2^-1075 below it are dropped: less than the rounding of the largest
# term). Subnormal entries of a factor are read exactly from the unscaled factor.
# ---------------------------------------------------------------------------
_LN_SAFE = -707.0  # a product of two numbers above e^-707 is a normal float64 (> 2^-1022)
_LN2 = 0.6931471805599453
_ZERO_EXP = -(1 << 40)  # the exponent of a zero: sums of two stay far below any term


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _scale_into(src, dst):
    """``(log, ln_min, shift)`` of one factor, with ``dst = src · 2^-shift``
    (flat, contiguous): :func:`prescale` for one matrix."""
    s, m, bad = _scan(src)
    if bad or not np.isfinite(s) or s == 0.0:
        dst[:] = src  # unscaled: the log-scale (NaN or −inf) stops every product here
        return (np.nan if (bad or not np.isfinite(s)) else -np.inf), np.inf, 0
    e = math.frexp(s)[1]
    _times_pow2(src, dst, e)
    return e * _LN2, np.log(m) - e * _LN2, e


@njit(cache=True, fastmath=False, error_model="numpy")
def step_logs(J):
    """:func:`prescale`'s ``logs`` alone (no scaled copy): the log-scale of
    each factor, ``−inf`` for a zero one, NaN for a non-finite one."""
    T = J.shape[0]
    logs = np.empty(T)
    for i in range(T):
        s, _, bad = _scan(J[i].reshape(-1))
        if bad or not np.isfinite(s):
            logs[i] = np.nan
        elif s == 0.0:
            logs[i] = -np.inf
        else:
            logs[i] = math.frexp(s)[1] * _LN2
    return logs


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _factor(J, Js, logs, mins, shifts, i, Mb):
    """Factor ``i`` scaled, with its ``(log, ln_min, shift)``: read from
    :func:`prescale`'s arrays, or, when ``Js`` is empty, scaled now into
    ``Mb`` (a row reads each factor once, so it needs no scaled copy of all)."""
    if Js.shape[0] == 0:
        lg, mn, sh = _scale_into(J[i].reshape(-1), Mb.reshape(-1))
        return Mb, lg, mn, sh
    return Js[i], logs[i], mins[i], shifts[i]


@njit(cache=True, fastmath=False, error_model="numpy")
def prescale(J):
    """``(Js, logs, mins, shifts)`` for the step Jacobians ``J (T, n, n)``.

    ``Js[i] = J[i] · 2^-shifts[i]`` has its largest |entry| in [1/2, 1);
    ``logs[i] = shifts[i] ln 2`` (``−inf`` for a zero matrix, NaN for a
    non-finite one); ``mins[i]`` is the log of the smallest nonzero |entry| of
    ``Js[i]``, which tells :func:`_times` whether a float64 step is safe (where
    it is not, an entry of ``Js[i]`` may have lost bits, and the exact ``J[i]``
    is read instead). A factor whose entries are all tiny (a saturated unit, a
    weight of 1e-181) thus cannot drive a product below float64's range.
    """
    T = J.shape[0]
    Js = np.empty_like(J)
    logs = np.empty(T)
    mins = np.full(T, np.inf)
    shifts = np.zeros(T, np.int64)
    for i in range(T):
        logs[i], mins[i], shifts[i] = _scale_into(J[i].reshape(-1), Js[i].reshape(-1))
    return Js, logs, mins, shifts


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _to_ext(A, shift, Am, Ae, transpose):
    """``A · 2^-shift`` (or its transpose) as mantissas and exponents, exactly;
    a zero gets exponent ``_ZERO_EXP``, so its terms fall below any sum
    without a branch."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            m, e = math.frexp(A[i, j])
            e = _ZERO_EXP if m == 0.0 else e - shift
            if transpose:
                Am[j, i] = m
                Ae[j, i] = e
            else:
                Am[i, j] = m
                Ae[i, j] = e


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _ext_matmul(Am, Ae, BmT, BeT, Cm, Ce):
    """``C = A B`` on extended-exponent matrices, ``B`` given transposed.

    Each term's exponent is formed exactly and its mantissa product (in
    [1/4, 1)) to float64 rounding; the terms of one sum are aligned on the
    largest exponent by a power of two, so a term more than 2^-1075 below the
    largest is dropped (an error smaller than the largest term's rounding).
    """
    n, p = Am.shape
    q = BmT.shape[0]
    for i in range(n):
        for j in range(q):
            emax = _ZERO_EXP
            for k in range(p):
                emax = max(emax, Ae[i, k] + BeT[j, k])
            if emax <= _ZERO_EXP:  # every term has a zero factor
                Cm[i, j] = 0.0
                Ce[i, j] = _ZERO_EXP
                continue
            acc = 0.0
            for k in range(p):
                d = max(Ae[i, k] + BeT[j, k] - emax, -1075)
                acc += (Am[i, k] * BmT[j, k]) * pow2(d)
            m, e = math.frexp(acc)
            Cm[i, j] = m
            Ce[i, j] = e + emax if m != 0.0 else _ZERO_EXP


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _settle(Cm, Ce, P, state, Pm, Pe):
    """Make the extended matrix ``C`` the running product: scaled so that its
    largest entry has exponent 0, kept as ``Pm·2^Pe`` (``state[1] = 1``) unless
    every nonzero entry is then a normal float64, in which case the product
    goes back to float64 (``state[1] = 0``, ``state[0]`` = log of its smallest
    nonzero |entry|). ``P`` receives the float64 image either way (entries
    below float64's range flushed, which moves σ_max by less than n·2^-1074
    relative). Returns the log of the scale taken out."""
    n, q = Cm.shape
    emax = _ZERO_EXP
    for i in range(n):
        for j in range(q):
            if not np.isfinite(Cm[i, j]):
                P[:, :] = np.nan
                return np.nan
            emax = max(emax, Ce[i, j])
    if emax <= _ZERO_EXP:
        P[:, :] = 0.0
        return -np.inf
    emin = 0  # the largest entry now has exponent 0
    m = np.inf
    for i in range(n):
        for j in range(q):
            Pm[i, j] = Cm[i, j]
            if Cm[i, j] != 0.0:
                Pe[i, j] = Ce[i, j] - emax
                emin = min(emin, Pe[i, j])
                P[i, j] = math.ldexp(Pm[i, j], int(Pe[i, j]))
                m = min(m, abs(P[i, j]))
            else:
                Pe[i, j] = _ZERO_EXP
                P[i, j] = 0.0
    if emin - 1 >= -1021:  # every nonzero entry is a normal float64
        state[1] = 0.0
        state[0] = np.log(m)
    else:
        state[1] = 1.0
    return emax * _LN2


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _times(P, Ms, M, shift, ln_min_M, state, Pm, Pe, Mm, Me, Cm, Ce, buf, tw):
    """``P ← P M_s · 2^-e`` with ``2^-e`` bringing the largest |entry| into
    [1/2, 1); returns ``e ln 2`` (``−inf`` for a zero product, NaN for a
    non-finite one).

    ``Ms = M · 2^-shift`` is the scaled factor and ``M`` the exact one;
    ``ln_min_M`` is the log of the smallest nonzero |entry| of ``Ms``.
    ``state[0]`` is the log of the smallest nonzero |entry| of the running
    product and ``state[1]`` is 1 while it is held in extended form
    ``Pm·2^Pe`` (``P`` is then its float64 image). ``tw`` says which tiles
    of ``P`` and ``Ms`` can be nonzero (:func:`_tiles`). The other arrays are
    work space.
    """
    if state[1] == 0.0 and state[0] + ln_min_M >= _LN_SAFE:
        _product_into(P, Ms, tw, buf)  # every nonzero term is a normal float64
        s, m, bad = _scan(buf.reshape(-1))
        if bad or not np.isfinite(s):
            P[:, :] = buf
            return np.nan
        if s == 0.0:
            P[:, :] = 0.0
            return -np.inf
        e = math.frexp(s)[1]
        ln_m = np.log(m) - e * _LN2
        if ln_m >= _LN_SAFE:  # scaled, every nonzero entry stays normal: exact
            _times_pow2(buf.reshape(-1), P.reshape(-1), e)
            state[0] = ln_m
            return e * _LN2
        _to_ext(buf, 0, Cm, Ce, False)  # keep the small entries' bits
        return _settle(Cm, Ce, P, state, Pm, Pe)
    if state[1] == 0.0:
        _to_ext(P, 0, Pm, Pe, False)
    _to_ext(M, shift, Mm, Me, True)
    _ext_matmul(Pm, Pe, Mm, Me, Cm, Ce)
    return _settle(Cm, Ce, P, state, Pm, Pe)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _work(n):
    """Work arrays for :func:`_times`: ``state, Pm, Pe, Mm, Me, Cm, Ce, buf``."""
    return (
        np.zeros(2), np.empty((n, n)), np.empty((n, n), np.int64), np.empty((n, n)),
        np.empty((n, n), np.int64), np.empty((n, n)), np.empty((n, n), np.int64),
        np.empty((n, n)),
    )


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _begin(P, Js, J, shift, ln_min, state, Pm, Pe, Cm, Ce):
    """Start a running product at one factor (``P ← Js``, float64 form when
    its entries are all normal, else the exact ``J`` in extended form)."""
    if ln_min >= _LN_SAFE:
        P[:, :] = Js
        state[0] = ln_min
        state[1] = 0.0
        return
    _to_ext(J, shift, Cm, Ce, False)
    _settle(Cm, Ce, P, state, Pm, Pe)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def _row(J, Js, logs, mins, shifts, t, out, P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y, tw):
    """``out[k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for k' = 0 … t (``out`` of length ≥ t+1,
    entries after t untouched); ``P`` … ``y`` are work space. ``Js`` …
    ``shifts`` are :func:`prescale`'s, or empty (``Js`` of length 0): each
    factor is then scaled as it is read (:func:`_factor`), the same bits.

    Accumulates ``P ← P J_k'`` for k' = t−1 down to 0 (:func:`_times`); ``−inf``
    from an exactly zero partial product on, NaN from a partial product with
    a non-finite scale on (the caller marks every pair over a non-finite
    factor, which a zero product stops short of).
    """
    n = J.shape[1]
    out[:t] = -np.inf
    out[t] = 0.0
    if t == 0:
        return
    Mb = np.empty((n if Js.shape[0] == 0 else 0, n))
    M, log_scale, ln_min, shift = _factor(J, Js, logs, mins, shifts, t - 1, Mb)
    if np.isfinite(log_scale):
        _begin(P, M, J[t - 1], shift, ln_min, state, Pm, Pe, Cm, Ce)
    u = _start_vector(n)
    for kk in range(t - 1, -1, -1):
        if kk < t - 1:
            M, lg, ln_min, shift = _factor(J, Js, logs, mins, shifts, kk, Mb)
            log_scale += lg + _times(P, M, J[kk], shift, ln_min, state, Pm, Pe, Mm, Me, Cm, Ce, buf, tw)
        if log_scale == -np.inf:
            break  # the product is zero from here on: out stays -inf
        if not np.isfinite(log_scale):
            for j in range(kk, -1, -1):
                out[j] = np.nan
            break
        out[kk] = log_scale + np.log(sigma_max(P, u, v, y, work, tw))


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norms_rows(J, Js, logs, mins, shifts, plan, L, r, k):
    """Rows ``t ≡ r (mod k)`` of ``L[t, k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for ``k' ≤ t``
    (``J[i-1] = ∂h_i/∂h_{i−1}``), written into ``L (T+1, T+1)``.

    ``Js``, ``logs``, ``mins`` and ``shifts`` are :func:`prescale`'s, ``plan``
    :func:`tile_plan`'s (of ``J``). Row t accumulates ``P ← P J_k'`` for k' = t−1 down to 0 (:func:`_row`);
    ``−inf`` above the diagonal and for products that are exactly zero. Rows
    are independent, so the ``k`` residue classes may run in concurrent
    threads (the GIL is released); taking every k-th row balances their cost,
    which grows with t.
    """
    T, n, _ = J.shape
    P = np.empty((n, n))
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    v = np.empty(n)
    y = np.empty(n)
    tw = _tiles(n, plan)
    for t in range(r, T + 1, k):
        L[t, :] = -np.inf
        _row(J, Js, logs, mins, shifts, t, L[t], P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y, tw)


@njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
def log_norm_row(J, plan, t):
    """``out[k'] = ln ‖J_t ⋯ J_{k'+1}‖₂`` for k' = 0 … t: row t of
    :func:`log_norms_rows`, the same arithmetic, in memory linear in t (the
    same ``plan`` gives the same bits; each factor is scaled as it is read,
    so no scaled copy of ``J`` is made)."""
    n = J.shape[1]
    Js = np.empty((0, n, n))
    logs = np.empty(0)
    mins = np.empty(0)
    shifts = np.empty(0, np.int64)
    out = np.empty(t + 1)
    P = np.empty((n, n))
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    v = np.empty(n)
    y = np.empty(n)
    _row(J, Js, logs, mins, shifts, t, out, P, work, state, Pm, Pe, Mm, Me, Cm, Ce, buf, v, y,
         _tiles(n, plan))
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def _transposed_product(J, Js, logs, mins, shifts, plan, k, t_end, out):
    """``S = (J_t ⋯ J_{k+1})ᵀ``, accumulated as ``S ← S J_tᵀ`` for t = k+1 …
    t_end; with ``out`` given (length T+1), ``out[t] = ln σ_max`` at each t.
    ``plan`` is :func:`tile_plan`'s for the transposed factors. Returns
    ``(S, log-scale)``."""
    n = J.shape[1]
    S = np.eye(n)
    work = np.empty((n, n))
    state, Pm, Pe, Mm, Me, Cm, Ce, buf = _work(n)
    state[0] = 0.0
    u = _start_vector(n)
    v = np.empty(n)
    y = np.empty(n)
    log_scale = 0.0
    tw = _tiles(n, plan)
    for t in range(k + 1, t_end + 1):
        log_scale += logs[t - 1] + _times(
            S, Js[t - 1].T, J[t - 1].T, shifts[t - 1], mins[t - 1],
            state, Pm, Pe, Mm, Me, Cm, Ce, buf, tw,
        )
        if log_scale == -np.inf:
            break
        if not np.isfinite(log_scale):
            if out.size:
                out[t:] = np.nan
            break
        if out.size:
            out[t] = log_scale + np.log(sigma_max(S, u, v, y, work, tw))
    return S, log_scale


@njit(cache=True, fastmath=False, error_model="numpy")
def log_norm_profile(J, Js, logs, mins, shifts, plan, k):
    """``out[t] = ln ‖J_t ⋯ J_{k+1}‖₂`` for ``t ≥ k`` (``−inf`` for ``t < k``).

    Accumulates the transpose ``S = Pᵀ ← S J_tᵀ`` (:func:`_times`) so that the
    warm-started vector is the right singular vector of ``P``, which settles
    as t grows. ``plan`` is :func:`tile_plan`'s (transposed factors), the
    other arguments are :func:`prescale`'s.
    """
    T = J.shape[0]
    out = np.full(T + 1, -np.inf)
    out[k] = 0.0
    _transposed_product(J, Js, logs, mins, shifts, plan, k, T, out)
    return out


@njit(cache=True, fastmath=False, error_model="numpy")
def scaled_product(J, Js, logs, mins, shifts, t, k):
    """``(P, s)`` with ``J_t ⋯ J_{k+1} = e^s P`` (``P`` scaled, largest entry
    in [1/2, 1)); the other arguments are :func:`prescale`'s."""
    S, s = _transposed_product(J, Js, logs, mins, shifts, dense_plan(), k, t, np.empty(0))
    return np.ascontiguousarray(S.T), s


@njit(cache=True, fastmath=False, error_model="numpy")
def lyapunov(J, Q0):
    """Sum over steps of ``ln |diag R|`` from QR re-orthonormalisation.

    ``J (T, n, n)`` are the unscaled step Jacobians (C-contiguous). Each is
    scaled by the power of two that brings its largest |entry| into [1/2, 1)
    (exact, as :func:`prescale` does) just before its QR step, and the
    exponents are added back at the end as one integer times ln 2: weights of
    1e300 give finite sums, and no scaled copy of all ``T`` factors is made
    (262 MB for a 2-layer LSTM with h = 64 over 500 steps). A zero factor
    gives ``−inf``, a non-finite one NaN. ``Q0 (n, k)`` is the orthonormal
    starting frame; it must be generic (not inside an invariant subspace of
    the Jacobians), so the caller draws it at random.
    """
    T, n, _ = J.shape
    k = Q0.shape[1]
    Q = np.ascontiguousarray(Q0)
    sums = np.zeros(k)
    Js = np.empty((n, n))
    shift = 0  # the sum of the factors' exponents
    extra = 0.0  # −inf for a zero factor, NaN for a non-finite one
    for i in range(T):
        lg, _, e = _scale_into(J[i].reshape(-1), Js.reshape(-1))
        shift += e
        if not np.isfinite(lg):
            extra += lg
        Z = np.dot(Js, Q)
        Q, R = np.linalg.qr(Z)
        Q = np.ascontiguousarray(Q)
        for j in range(k):
            sums[j] += np.log(abs(R[j, j]))
    return sums + (shift * _LN2 + extra)
