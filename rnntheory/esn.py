r"""Echo state networks: reservoirs, the echo-state certificate, ridge readouts.

An echo state network (Jaeger 2001) is a fixed random recurrent *reservoir*
whose only trained part is a linear readout. With leak rate ``a``, input
``u``, output feedback ``y`` and bias ``b`` the state update is

.. math::

    x_{t+1} = (1 - a)\,x_t + a \tanh\!\big(W x_t + W_{in} u_{t+1}
              + W_{fb}\, y_t + b\big),

and the readout is ``y_{t+1} = W_out [x_{t+1}; u_{t+1}; 1]``. Arrays are
time-major: ``inputs[t]`` is ``u_{t+1}``, ``teacher[t]`` is ``y_{t+1}`` and
``states[t]`` is ``x_{t+1}``; ``x_0`` and ``y_0`` default to zero.

* :func:`random_esn` samples a reservoir (dense or sparse) and scales it to a
  requested spectral radius ``ρ(W)`` or spectral norm ``σ_max(W)``.
* :func:`echo_state_certificate` checks the contraction condition
  ``(1 − a) + a γ_h σ_max(W) < 1`` (sufficient for the echo state property).
* :func:`fit` harvests teacher-forced states and solves the ridge regression
  for ``W_out`` in closed form; :meth:`ESN.generate` runs freely, feeding its
  own output back.
* Jaeger's Mackey–Glass (τ = 17) 84-step prediction protocol, which drives
  these pieces, is the ``mg17-esn`` experiment's:
  :func:`rnntheory.experiments.mg17.mackey_glass_protocol`.

Examples
--------
>>> import numpy as np
>>> from rnntheory.esn import random_esn, echo_state_certificate, fit
>>> esn = random_esn(50, n_in=1, n_out=1, spectral_radius=0.9, seed=0)
>>> cert = echo_state_certificate(esn)
>>> bool(abs(esn.spectral_radius - 0.9) < 1e-10)
True
>>> t = np.arange(400.0)
>>> u, y = np.sin(t / 5)[:, None], np.sin((t + 1) / 5)[:, None]  # predict one step ahead
>>> result = fit(esn, u, y, washout=100, ridge=1e-8)
>>> bool(result.train_nrmse < 1e-2)
True
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse
import scipy.sparse.linalg

from . import _linalg as LA
from ._validation import (
    all_finite,
    as_float_array,
    as_generator,
    check_bool,
    check_choice,
    check_int,
    check_path,
    check_real,
    check_seed,
    deprecated_alias,
    frozen_array,
    read_only,
    renamed_arguments,
)
from .cells._esn_kernels import esn_run_csr

__all__ = [
    "ESN",
    "ESNFit",
    "EchoStateCertificate",
    "Generation",
    "echo_state_certificate",
    "fit",
    "random_esn",
    "ridge_gains",
    "ridge_path",
    "ridge_regression",
    "scale_to_spectral_norm",
    "scale_to_spectral_radius",
]

_F64 = np.dtype(np.float64)

#: Dense reservoirs with more units than this are measured (``ρ``, ``σ_max``)
#: by ARPACK's implicitly restarted Arnoldi/Lanczos iteration instead of a
#: full dense eigen- or singular value decomposition.
ITERATIVE_FROM = 512
#: The same for sparse (CSR) reservoirs: ARPACK beyond this many units.
SPARSE_ITERATIVE_FROM = 64
#: :func:`random_esn` stores the reservoir as a sparse CSR matrix when
#: ``connectivity`` is at most this and the reservoir has at least
#: :data:`SPARSE_MIN_UNITS` units (``sparse=None``).
SPARSE_CONNECTIVITY = 0.1
#: Below this many units a dense product is as fast as a sparse one.
SPARSE_MIN_UNITS = 100

Matrix = Any
"""A reservoir matrix: a float64 ndarray or a ``scipy.sparse`` CSR array."""


def _square(name: str, W: Any) -> Any:
    """``W`` as a float64 square matrix: a C-contiguous ndarray, or a
    canonical CSR array (sorted indices, no duplicates) for sparse input."""
    if scipy.sparse.issparse(W):
        if W.ndim != 2:  # pragma: no cover - scipy sparse is 2-D until 1.13's coo arrays
            raise ValueError(f"`{name}` must have 2 dimension(s), got shape {W.shape}")
        if W.dtype.kind not in "fiu" or W.dtype.kind == "b":
            raise TypeError(f"`{name}` must be a real floating-point matrix, got dtype {W.dtype}")
        S = scipy.sparse.csr_array(W, dtype=_F64, copy=True)
        S.sum_duplicates()
        S.sort_indices()
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"`{name}` must be square, got shape {W.shape}")
        if W.shape[0] == 0:
            raise ValueError(f"`{name}` must have at least one row, got shape {W.shape}")
        if not all_finite(S.data):
            bad = int(S.data.size - np.count_nonzero(np.isfinite(S.data)))
            raise ValueError(f"`{name}` must be finite, got {bad} NaN/inf entr{'y' if bad == 1 else 'ies'}")
        return S
    W = as_float_array(name, W, ndim=2, dtype=_F64)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"`{name}` must be square, got shape {W.shape}")
    if W.shape[0] == 0:
        raise ValueError(f"`{name}` must have at least one row, got shape {W.shape}")
    return W


def _leak_rate(value: Any, n: int) -> Any:
    """A float in ``(0, 1]``, or a read-only float64 vector of ``n`` such rates."""
    if isinstance(value, bool) or np.ndim(value) == 0:
        return check_real("leak_rate", value, low=0.0, high=1.0, low_open=True)
    a = as_float_array("leak_rate", value, ndim=1, dtype=_F64)
    if a.shape != (n,):
        raise ValueError(
            f"`leak_rate` must be a number or have shape ({n},) (one rate per unit), got shape {a.shape}"
        )
    bad = np.flatnonzero(~((a > 0.0) & (a <= 1.0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"`leak_rate` must be in (0, 1] for every unit, got {float(a[i])!r} at unit {i}"
            f" ({bad.size} unit{'s' if bad.size > 1 else ''} out of range)"
        )
    return frozen_array(a)


def _frozen_csr(S: Any) -> Any:
    """A CSR array whose data and index arrays are read-only copies nothing can write."""
    F = scipy.sparse.csr_array(
        (frozen_array(S.data), frozen_array(S.indices), frozen_array(S.indptr)), shape=S.shape, copy=False
    )
    F.has_sorted_indices = True
    return F


_HALF_MAX = float(np.finfo(np.float64).max) / 2

_MARKER = "rnntheory_esn_format"
_FORMAT_VERSION = 1


def _is_esn_file(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` file that :meth:`ESN.save` wrote."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return bool(_MARKER in getattr(data, "files", ()))
    except Exception:  # any unreadable file is "not ours"
        return False


def _entries(W: Any) -> np.ndarray:
    """The stored entries of a dense or CSR matrix (for scale and finiteness checks)."""
    return W.data if scipy.sparse.issparse(W) else W


def _times(W: Any, c: float, e: int = 0) -> Any:
    """``W · c · 2**e`` for a dense or CSR matrix (the pattern of a CSR matrix is kept)."""
    if scipy.sparse.issparse(W):
        data = np.ldexp(W.data, e) * c if e else W.data * c
        return scipy.sparse.csr_array((data, W.indices.copy(), W.indptr.copy()), shape=W.shape)
    return np.ldexp(W, e) * c if e else W * c


def _matvec_into(W: Any) -> Any:
    """``(x, y) ↦ y := W x`` for the run loop, writing into the buffer ``y``
    (no allocation per step): for a CSR ``W``, SciPy's compiled CSR product
    called directly (the same sums, in the same order, as ``W @ x``, without
    the dispatch that costs more than the product at a few hundred units);
    ``np.matmul(W, x, out=y)`` for a dense ``W``."""
    if not scipy.sparse.issparse(W):
        def dense(x: np.ndarray, y: np.ndarray) -> None:
            np.matmul(W, x, out=y)

        return dense
    try:
        from scipy.sparse._sparsetools import csr_matvec
    except ImportError:  # pragma: no cover - a SciPy that moved its private routine
        def fallback(x: np.ndarray, y: np.ndarray) -> None:
            y[...] = W @ x

        return fallback
    n_rows, n_cols = W.shape
    indptr, indices, data = W.indptr, W.indices, W.data

    def product(x: np.ndarray, y: np.ndarray) -> None:
        y.fill(0.0)
        csr_matvec(n_rows, n_cols, indptr, indices, data, x, y)

    return product


def _drive_bounded(W_in: np.ndarray, u: np.ndarray, W_fb: np.ndarray, y: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``|W_in u_t + b + W_fb y_t|`` is bounded below ``2¹⁰⁰⁰`` for every step,
    by ``|W_in| max|u| + |b| + |W_fb| max|y|`` (so that no drive can overflow and
    the sparse run loop need not form the ``T × n`` drive to check it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        top = np.abs(b)
        for M, v in ((W_in, u), (W_fb, y)):
            if v.size:
                top = top + np.abs(M) @ np.max(np.abs(v), axis=0)
        return bool(np.all(top < 2.0**1000))


def _start_vector(n: int) -> np.ndarray:
    """ARPACK's starting vector: fixed, so that a measurement is reproducible bit for bit."""
    return np.random.default_rng(0x5EED).uniform(0.5, 1.5, n)


def _operator(W: Any, power: int = 1) -> Any:
    """``W^power`` for ARPACK: a CSR ``W`` as a linear operator whose product calls
    the compiled CSR routine directly (the same sums as ``W @ x``; SciPy's
    dispatch otherwise costs more than the product itself at a thousand units,
    over the hundreds to thousands of products ARPACK asks for), applied
    ``power`` times; a dense ``W`` as it is (:func:`_ritz_power` never asks
    for a power of a dense one)."""
    if not scipy.sparse.issparse(W) or W.format != "csr":
        if power != 1:  # pragma: no cover - a caller's error
            raise ValueError(f"`power` of a dense W must be 1, got {power}")
        return W
    product = _matvec_into(W)
    n = W.shape[0]

    def matvec(x: np.ndarray) -> np.ndarray:
        if np.result_type(W.dtype, x.dtype) != np.float64:  # complex vectors: the plain product
            y = np.ravel(x)
            for _ in range(power):
                y = W @ y
            return np.asarray(y)
        y = np.ascontiguousarray(np.ravel(x), dtype=np.float64)
        for _ in range(power):
            z = np.empty(n)
            product(y, z)
            y = z
        return y

    return scipy.sparse.linalg.LinearOperator(W.shape, matvec=matvec, dtype=W.dtype)


_RITZ = 4  # Ritz values ARPACK converges for the spectral radius
_RITZ_NCV = 64  # the smallest Krylov basis it uses (see _ritz_basis)
_RITZ_TOL = 1e-12  # ARPACK's relative residual tolerance for them
_RITZ_CHECK = 1e-10  # the largest residual ‖W v − θ v‖ / |θ| accepted afterwards


def _ritz_basis(n: int) -> int:
    """The Krylov basis size for ``ρ`` of an ``n``-unit reservoir: ``1.5 √n``, at least
    :data:`_RITZ_NCV` (and below ``n``)."""
    return min(n - 1, max(_RITZ_NCV, round(1.5 * math.sqrt(n))))


def _ritz_power(W: Any, ncv: int) -> int:
    """The power ``p`` of ``W`` whose eigenvalues ARPACK converges for ``ρ``: 3 when a
    product with ``W`` costs less than an Arnoldi step's orthogonalisation
    (``nnz(W) ≤ n · ncv``), else 1 (see :func:`_arpack_radius`)."""
    n = W.shape[0]
    nnz = W.nnz if scipy.sparse.issparse(W) else n * n
    return 3 if nnz <= n * ncv else 1


def _arpack_radius(W: Any) -> float:
    """``ρ(W)`` by ARPACK (``eigs(which="LM")``, relative residuals below
    ``1e-12``); a dense decomposition when ARPACK does not converge or its
    answer fails the check.

    The largest modulus among four converged Ritz values from a Krylov basis
    of ``max(64, 1.5 √n)`` vectors (:func:`_ritz_basis`). A random reservoir
    has many eigenvalues near its spectral circle, and a small basis
    sometimes converges to Ritz values just inside it, which are genuine
    eigenvalues (they pass the residual check) but not the largest. Measured
    against ``numpy.linalg.eigvals`` on 77 uniform reservoirs of 400–4000
    units at 1–100 % connectivity: four Ritz values from a 24-vector basis
    (the earlier setting here) gave ρ up to 1.1 % too small
    on 14 of them, from 700 units up (7 of 16 at 2000 units and 5 %);
    ``k=1`` with a 20-vector basis (ReservoirPy's setting) on 15 of the 43
    measured with it; four from
    a 64-vector basis matched every one to 4e-14, in about the same time as
    the 24-vector basis (fewer restarts).

    A sparse reservoir whose product is cheaper than an Arnoldi step
    (:func:`_ritz_power`) is measured through ``W³``: ``ρ(W³) = ρ(W)³``
    (spectral mapping), and cubing thins the eigenvalues near the spectral
    circle (a uniform disc of eigenvalues maps to one whose density falls
    towards its rim), so ARPACK converges in fewer Arnoldi steps, each of
    three products. On the same reservoirs (sparse ones, 1–10 %) this matched
    every ρ to 1.3e-14 and took 0.010 s instead of 0.021 s at 400 units
    (median), 0.051 s instead of 0.074 s at 1000; where the products
    dominate (2000 units at 10 %, 4000 at 5 %) it is slower, and ``W`` itself
    is used.

    The chosen Ritz pair ``(θ, v)`` of ``W^p`` is checked:
    ``‖W^p v − θ v‖ ≤ 10⁻¹⁰ |θ| ‖v‖`` (θ is then within that distance of an
    eigenvalue of ``W^p`` up to its condition), and ``ρ = |θ|^{1/p}``;
    when ARPACK fails or the check does, ``W`` itself is tried (for
    ``p = 3``), and then the dense decomposition decides."""
    n = W.shape[0]
    ncv = _ritz_basis(n)
    for p in dict.fromkeys((_ritz_power(W, ncv), 1)):
        op = _operator(W, p)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.sparse.SparseEfficiencyWarning)
                vals, vecs = scipy.sparse.linalg.eigs(
                    op, k=min(_RITZ, n - 2), which="LM", tol=_RITZ_TOL, ncv=ncv,
                    maxiter=100 * n, v0=_start_vector(n), return_eigenvectors=True,
                )
        except (scipy.sparse.linalg.ArpackNoConvergence, scipy.sparse.linalg.ArpackError):
            continue
        i = int(np.argmax(np.abs(vals)))
        theta, v = vals[i], vecs[:, i]
        value = float(abs(theta))
        if math.isfinite(value) and value > 0.0:
            Wv = v
            for _ in range(p):
                Wv = W @ Wv
            resid = float(np.linalg.norm(Wv - theta * v))
            if resid <= _RITZ_CHECK * value * float(np.linalg.norm(v)):
                return value if p == 1 else value ** (1.0 / p)
    dense = W.toarray() if scipy.sparse.issparse(W) else W
    return LA.spectral_radius(dense)


def _arpack_norm(W: Any) -> float:
    """``σ_max(W)`` by ARPACK (``svds(k=1)``, Lanczos on ``WᵀW`` to machine
    precision); a dense SVD when ARPACK does not converge."""
    n = W.shape[0]
    try:
        vals = scipy.sparse.linalg.svds(
            W, k=1, tol=0.0, ncv=min(n - 1, 20), maxiter=100 * n, v0=_start_vector(n),
            return_singular_vectors=False, solver="arpack",
        )
        value = float(np.max(vals))
        if math.isfinite(value):
            return value
    except (scipy.sparse.linalg.ArpackNoConvergence, scipy.sparse.linalg.ArpackError):
        pass
    dense = W.toarray() if scipy.sparse.issparse(W) else W
    return LA.spectral_norm(dense)


def _iterative(W: Any) -> bool:
    """Whether ``W`` is measured by ARPACK (else by a dense decomposition)."""
    limit = SPARSE_ITERATIVE_FROM if scipy.sparse.issparse(W) else ITERATIVE_FROM
    return bool(W.shape[0] > limit)


def _measure(W: Any, what: str) -> float:
    """``ρ(W)`` (``what="radius"``) or ``σ_max(W)`` of a dense or CSR float64
    matrix: exact dense LAPACK up to :data:`ITERATIVE_FROM` units
    (:data:`SPARSE_ITERATIVE_FROM` for CSR), ARPACK beyond. Entries outside
    ``[2⁻⁴⁰⁰, 2⁴⁰⁰]`` are first brought to unit scale by a power of two (exact)."""
    if not _iterative(W):
        dense = W.toarray() if scipy.sparse.issparse(W) else W
        return LA.spectral_radius(dense) if what == "radius" else LA.spectral_norm(dense)
    e = LA.pow2_exponent(_entries(W))
    Wp = _times(W, 1.0, -e) if e else W
    value = _arpack_radius(Wp) if what == "radius" else _arpack_norm(Wp)
    return LA.ldexp(value, e)


def _scale(W: Any, target: float, what: str) -> Any:
    """``W · target / measure(W)``, computed on ``W`` brought to unit scale by a
    power of two (the factor cancels), so that neither ``measure(W)`` nor the
    ratio overflows or underflows for entries anywhere in float64's range.

    Up to :data:`ITERATIVE_FROM` units (:data:`SPARSE_ITERATIVE_FROM` for a
    CSR matrix) the measure is exact (dense LAPACK) and a second measurement
    absorbs the rounding of the first (a small CSR matrix is scaled densely
    and returned as CSR); beyond, one ARPACK measurement to machine precision
    sets the factor.
    """
    label = "spectral radius" if what == "radius" else "spectral norm"
    sparse = scipy.sparse.issparse(W)
    if not _iterative(W):
        measure = LA.spectral_radius if what == "radius" else LA.spectral_norm
        R = _scale_dense(W.toarray() if sparse else W, target, measure, label)
        return scipy.sparse.csr_array(R) if sparse else R
    data = _entries(W)
    e = LA.pow2_exponent(data)
    Wp = _times(W, 1.0, -e) if e else W
    current = _arpack_radius(Wp) if what == "radius" else _arpack_norm(Wp)
    if current == 0.0:
        if target == 0.0:
            return W.copy()
        raise ValueError(
            f"`W` has {label} 0 and cannot be scaled to {target}"
            " (a zero or nilpotent matrix; raise `connectivity`)"
        )
    with np.errstate(over="ignore", under="ignore"):
        c = target / current
        R = _times(Wp, c) if math.isfinite(c) else Wp
    big = float(np.max(np.abs(_entries(R)), initial=0.0))
    if not (math.isfinite(c) and math.isfinite(big)):
        raise ValueError(
            f"`W` cannot be scaled to {label} {target}: the scaled entries overflow float64"
            f" (largest entry {float(np.max(np.abs(data))):.6g}, {label} {LA.ldexp(current, e):.6g})"
        )
    if target > 0.0 and big < 2.0**-969:
        raise ValueError(
            f"`W` cannot be scaled to {label} {target}: the scaled entries underflow float64"
            f" (largest scaled entry {big:.6g})"
        )
    return R


def _scale_dense(W: np.ndarray, target: float, measure: Any, what: str) -> np.ndarray:
    """The exact dense path of :func:`_scale` (``measure`` is a LAPACK measure)."""
    e = LA.pow2_exponent(W)
    Wp = np.ldexp(W, -e) if e else W
    current = measure(Wp)
    if current == 0.0:
        if target == 0.0:
            return W.copy()
        raise ValueError(
            f"`W` has {what} 0 and cannot be scaled to {target}"
            " (a zero or nilpotent matrix; raise `connectivity`)"
        )
    if target == 0.0:
        return np.zeros_like(W)
    with np.errstate(over="ignore", under="ignore"):
        c = target / current
        R = Wp * c if math.isfinite(c) else Wp
    got = measure(R) if math.isfinite(c) and all_finite(R) else math.inf
    if not np.isfinite(got):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries overflow float64"
            f" (largest entry {float(np.max(np.abs(W))):.6g}, {what} {LA.ldexp(current, e):.6g})"
        )
    # Entries near float64's smallest normal numbers have lost digits: the
    # scaled matrix then no longer has the requested measure.
    if got == 0.0 or (np.max(np.abs(R)) < 2.0**-969 and abs(got - target) > 1e-6 * target):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries underflow float64"
            f" (the result would have {what} {got:.6g})"
        )
    # one refinement pass absorbs the rounding of the first measurement
    with np.errstate(over="ignore"):
        R = R * (target / got)
    if not np.all(np.isfinite(R)):
        raise ValueError(
            f"`W` cannot be scaled to {what} {target}: the scaled entries overflow float64"
        )
    return R


def scale_to_spectral_radius(W: Any, rho: float) -> Any:
    """Return ``W · rho / ρ(W)``, whose spectral radius is ``rho``.

    Up to :data:`ITERATIVE_FROM` units (:data:`SPARSE_ITERATIVE_FROM` for a
    sparse ``W``) ``ρ(W)`` comes from a dense eigendecomposition, measured twice (the second pass absorbs the rounding
    of the first); beyond, from ARPACK (``scipy.sparse.linalg.eigs(k=4,
    which="LM", tol=1e-12)``, the largest of four Ritz values, a fixed start
    vector so that the result is reproducible; its residual ``‖W v − θ v‖`` is
    checked to be below ``1e-10 |θ|``), falling back to the dense decomposition when
    ARPACK does not converge or the check fails. The result has spectral radius
    ``rho`` to about 1e-13 relative (dense) or 1e-12 (ARPACK).

    Parameters
    ----------
    W : array_like or scipy.sparse matrix, shape (n, n)
        A sparse ``W`` gives a CSR array with the same sparsity pattern.
    rho : float
        The requested spectral radius, ``>= 0``.

    Returns
    -------
    ndarray or scipy.sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        If ``ρ(W) = 0`` (nilpotent) and ``rho > 0``.

    Examples
    --------
    >>> W = scale_to_spectral_radius([[0.0, 2.0], [1.0, 0.0]], 0.5)
    >>> round(float(np.max(np.abs(np.linalg.eigvals(W)))), 12)
    0.5
    """
    W = _square("W", W)
    rho = check_real("rho", rho, low=0.0)
    return _scale(W, rho, "radius")


def scale_to_spectral_norm(W: Any, sigma: float) -> Any:
    """Return ``W · sigma / σ_max(W)``, whose spectral norm is ``sigma``.

    ``σ_max`` is measured as the spectral radius is in
    :func:`scale_to_spectral_radius` (dense SVD up to :data:`ITERATIVE_FROM`
    units, ARPACK's ``svds(k=1)`` beyond); a sparse ``W`` stays sparse.

    Examples
    --------
    >>> W = scale_to_spectral_norm([[0.0, 2.0], [1.0, 0.0]], 0.5)
    >>> round(float(np.linalg.norm(W, 2)), 12)
    0.5
    """
    W = _square("W", W)
    sigma = check_real("sigma", sigma, low=0.0)
    return _scale(W, sigma, "norm")


@dataclass(frozen=True, eq=False)
class Generation:
    """Free-running output of an ESN.

    Attributes
    ----------
    outputs : ndarray, shape (n_steps, n_out)
        ``outputs[t]`` is ``ŷ_{t+1}``, fed back to make ``x_{t+2}``.
    states : ndarray, shape (n_steps, n)
        ``states[t]`` is ``x_{t+1}``.
    """

    outputs: np.ndarray
    states: np.ndarray


@dataclass(frozen=True, eq=False)
class ESN:
    """An echo state network: reservoir, input, feedback, bias, leak, readout.

    Attributes
    ----------
    W : ndarray or scipy.sparse.csr_array, shape (n, n)
        Reservoir matrix. A ``scipy.sparse`` matrix is held as a CSR array
        (see :attr:`is_sparse`), and the state update uses the sparse product.
    W_in : ndarray, shape (n, n_in)
        Input weights (``n_in`` may be 0).
    W_fb : ndarray, shape (n, n_out)
        Output-feedback weights (all zero: no feedback).
    b : ndarray, shape (n,)
        Bias.
    leak_rate : float or ndarray, shape (n,)
        Leak rate ``a ∈ (0, 1]`` (1: no leak), the ``1 − α`` of a leaky
        Elman unit's retention ``α`` (Eq. 14); a vector gives every unit its
        own rate (each in ``(0, 1]``). Formerly ``leak``: the keyword
        and the attribute still work for one release, with a
        ``DeprecationWarning``.
    W_out : ndarray, shape (n_out, n + n_in + 1), optional
        Readout on ``[x; u; 1]``; None until trained (see :func:`fit`).

    The ESN owns its arrays: it holds read-only float64 copies of what it was
    given (writing into ``esn.W`` raises ``ValueError``; changing the caller's
    array afterwards does not change the ESN). A changed ESN is a new one:
    ``dataclasses.replace(esn, W=...)``. :meth:`save` and :meth:`load` write
    and read it as an ``.npz`` file.
    """

    W: Any
    W_in: np.ndarray
    W_fb: np.ndarray
    b: np.ndarray
    leak_rate: Any = 1.0
    W_out: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        W = _square("W", self.W)
        n = W.shape[0]
        W_in = as_float_array("W_in", self.W_in, ndim=2, dtype=_F64)
        W_fb = as_float_array("W_fb", self.W_fb, ndim=2, dtype=_F64)
        b = as_float_array("b", self.b, ndim=1, dtype=_F64)
        for name, arr in (("W_in", W_in), ("W_fb", W_fb), ("b", b)):
            if arr.shape[0] != n:
                raise ValueError(
                    f"`{name}` must have {n} rows (the reservoir size), got shape {arr.shape}"
                )
        leak_rate = _leak_rate(self.leak_rate, n)
        # the ESN owns read-only copies of its arrays (see the class docstring)
        object.__setattr__(self, "W", _frozen_csr(W) if scipy.sparse.issparse(W) else frozen_array(W))
        object.__setattr__(self, "W_in", frozen_array(W_in))
        object.__setattr__(self, "W_fb", frozen_array(W_fb))
        object.__setattr__(self, "b", frozen_array(b))
        object.__setattr__(self, "leak_rate", leak_rate)
        if self.W_out is not None:
            W_out = as_float_array("W_out", self.W_out, ndim=2, dtype=_F64)
            want = (W_fb.shape[1], n + W_in.shape[1] + 1)
            if W_out.shape != want:
                raise ValueError(f"`W_out` must have shape {want}, got shape {W_out.shape}")
            object.__setattr__(self, "W_out", frozen_array(W_out))

    @property
    def n_hidden(self) -> int:
        """Reservoir size ``n`` (the hidden size, as every model names it)."""
        return int(self.W.shape[0])

    n_units = deprecated_alias("n_hidden")
    leak = deprecated_alias("leak_rate")

    @property
    def n_in(self) -> int:
        """Input size (0: no external input)."""
        return int(self.W_in.shape[1])

    @property
    def n_out(self) -> int:
        """Output size."""
        return int(self.W_fb.shape[1])

    @property
    def has_feedback(self) -> bool:
        """Whether any output-feedback weight is nonzero."""
        return bool(np.any(self.W_fb != 0))

    @property
    def is_sparse(self) -> bool:
        """Whether the reservoir ``W`` is held as a sparse CSR array."""
        return bool(scipy.sparse.issparse(self.W))

    @property
    def spectral_radius(self) -> float:
        """``ρ(W)``, the largest eigenvalue modulus (dense LAPACK up to
        :data:`ITERATIVE_FROM` units, or :data:`SPARSE_ITERATIVE_FROM` for a
        sparse ``W``; ARPACK beyond)."""
        return _measure(self.W, "radius")

    @property
    def spectral_norm(self) -> float:
        """``σ_max(W)``, the largest singular value (measured as
        :attr:`spectral_radius` is)."""
        return _measure(self.W, "norm")

    def __repr__(self) -> str:
        a = self.leak_rate
        leak = f"{a}" if isinstance(a, float) else f"per-unit in [{float(a.min()):.3g}, {float(a.max()):.3g}]"
        sparse = ", sparse" if self.is_sparse else ""
        return (
            f"ESN(n_hidden={self.n_hidden}, n_in={self.n_in}, n_out={self.n_out}, "
            f"leak_rate={leak}, feedback={self.has_feedback}, trained={self.W_out is not None}{sparse})"
        )

    # ------------------------------------------------------------------ helpers
    def _inputs(self, inputs: Any, T: int | None) -> np.ndarray:
        if inputs is None:
            if self.n_in != 0:
                raise ValueError(f"`inputs` is required: the ESN has n_in={self.n_in}")
            if T is None:  # pragma: no cover - callers always know T
                raise ValueError("`inputs` or a length is required")
            return np.zeros((T, 0))
        u = as_float_array("inputs", inputs, ndim=2, dtype=_F64)
        if u.shape[1] != self.n_in or (T is not None and u.shape[0] != T):
            want = f"({'T' if T is None else T}, {self.n_in})"
            raise ValueError(f"`inputs` must have shape {want}, got shape {u.shape}")
        return u

    def _vec(self, name: str, value: Any, size: int) -> np.ndarray:
        if value is None:
            return np.zeros(size)
        v = as_float_array(name, value, ndim=1, dtype=_F64)
        if v.shape != (size,):
            raise ValueError(f"`{name}` must have shape ({size},), got shape {v.shape}")
        return v

    def _step(self, x: np.ndarray, drive: np.ndarray) -> np.ndarray:
        return self._stepper()(x, drive)

    def _stepper(self) -> Any:
        """``(x, drive) ↦ x_next``, one update: for a sparse reservoir the run loop's
        kernel over one step (the drive as its bias; its fixed arguments prepared
        once here), else NumPy's ``tanh(W x + drive)`` and the blend."""
        if self.is_sparse:
            n = self.n_hidden
            fixed = self._sparse_fixed()
            none, no_weights, no_noise = (read_only(np.empty(shape)) for shape in ((1, 0), (0, n), (0, n)))

            # calls the kernel directly rather than through _run_sparse: generate()
            # steps thousands of times, and _run_sparse's conversions of its five
            # input arrays cost about 6 µs a step (23 µs instead of 17 µs at 400 units)
            def sparse(x: np.ndarray, drive: np.ndarray) -> np.ndarray:
                out = np.empty((1, n))
                ip, ix, data, rates, leaky = fixed
                esn_run_csr(ip, ix, data, no_weights, none, no_weights, none,
                            read_only(np.ascontiguousarray(drive, dtype=_F64)), no_noise,
                            read_only(np.ascontiguousarray(x, dtype=_F64)), rates, leaky, out)
                return out[0]

            return sparse
        a = self.leak_rate
        W = self.W

        def dense(x: np.ndarray, drive: np.ndarray) -> np.ndarray:
            new = np.tanh(W @ x + drive)
            if isinstance(a, float) and a == 1.0:
                return new
            return (1.0 - a) * x + a * new

        return dense

    def _sparse_fixed(self) -> tuple[Any, ...]:
        """The CSR run kernel's fixed arguments: the index arrays as unsigned
        read-only views (an unsigned index skips the kernel's negative-index
        test), the entries, the leak rates as a vector, and whether to blend."""
        W = self.W
        a = self.leak_rate
        unsigned = np.uint32 if W.indices.dtype == np.int32 else np.uint64
        rates = read_only(np.full(self.n_hidden, a)) if isinstance(a, float) else read_only(a)
        return (
            read_only(W.indptr.astype(W.indices.dtype, copy=False).view(unsigned)),
            read_only(W.indices.view(unsigned)),
            read_only(W.data),
            rates,
            not (isinstance(a, float) and a == 1.0),
        )

    def _run_sparse(
        self, W_in_t: np.ndarray, u: np.ndarray, W_fb_t: np.ndarray, y_prev: np.ndarray, b: np.ndarray,
        noise: np.ndarray | None, x0: np.ndarray, states: np.ndarray,
    ) -> None:
        """Fill ``states`` (a new ``(T, n)`` float64 array) by the compiled CSR run loop
        (:func:`rnntheory.cells._esn_kernels.esn_run_csr`, whose arguments these
        are, the weights transposed; ``noise`` is ``(T, n)`` or None). Every
        array the kernel only reads is passed read-only and contiguous, so the
        kernel is compiled once."""
        ip, ix, data, rates, leaky = self._sparse_fixed()
        w_in, u_, w_fb, y_, b_ = (read_only(np.ascontiguousarray(v, dtype=_F64)) for v in (W_in_t, u, W_fb_t, y_prev, b))
        nu = np.empty((0, self.n_hidden)) if noise is None else np.ascontiguousarray(noise)
        esn_run_csr(ip, ix, data, w_in, u_, w_fb, y_, b_, read_only(nu),
                    read_only(np.ascontiguousarray(x0, dtype=_F64)), rates, leaky, states)

    def features(self, states: Any, inputs: Any = None) -> np.ndarray:
        """The readout's regressors ``[x_t; u_t; 1]``, shape ``(T, n + n_in + 1)``."""
        return self._regressors(states, inputs, bias=True)

    def _regressors(self, states: Any, inputs: Any, *, bias: bool) -> np.ndarray:
        """``[x_t; u_t; 1]`` (``bias``) or ``[x_t; u_t]``, a new C-ordered array."""
        X = as_float_array("states", states, ndim=2, dtype=_F64)
        if X.shape[1] != self.n_hidden:
            raise ValueError(f"`states` must have shape (T, {self.n_hidden}), got shape {X.shape}")
        u = self._inputs(inputs, X.shape[0])
        Z = np.empty((X.shape[0], self.n_hidden + self.n_in + int(bias)))
        Z[:, : self.n_hidden] = X
        Z[:, self.n_hidden: self.n_hidden + self.n_in] = u
        if bias:
            Z[:, -1] = 1.0
        return Z

    def readout(self, states: Any, inputs: Any = None) -> np.ndarray:
        """``W_out [x_t; u_t; 1]`` for every step, shape ``(T, n_out)``.

        Raises
        ------
        ValueError
            When the ESN has no readout yet, and when a readout value leaves
            float64's range (naming ``states`` or ``inputs``, whichever carries
            the larger values): an overflowed output is never returned.
        """
        if self.W_out is None:
            raise ValueError("`esn` has no readout yet: train it with `fit` first")
        Z = self.features(states, inputs)
        with np.errstate(over="ignore", invalid="ignore"):
            out = Z @ self.W_out.T
        if not np.all(np.isfinite(out)):
            n = self.W.shape[0]
            big_x = float(np.max(np.abs(Z[:, :n]), initial=0.0))
            big_u = float(np.max(np.abs(Z[:, n:-1]), initial=0.0))
            name, big = ("inputs", big_u) if big_u > big_x else ("states", big_x)
            raise ValueError(
                f"`{name}` is too large for this readout: W_out [x_t; u_t; 1] leaves float64's "
                f"range (max |{name}| = {big:.3g}); rescale `{name}`"
            )
        return out

    # ------------------------------------------------------------------ running
    def run(
        self, inputs: Any = None, teacher: Any = None, *, x0: Any = None, y0: Any = None,
        n_steps: int | None = None, noise: float = 0.0, seed: Any = None,
    ) -> np.ndarray:
        """Drive the reservoir; with output feedback, teacher-forced.

        Parameters
        ----------
        inputs : array_like, shape (T, n_in), optional
            ``u_1 … u_T`` (omit when ``n_in == 0``; then ``T`` comes from
            ``teacher`` or ``n_steps``).
        teacher : array_like, shape (T, n_out), optional
            ``y_1 … y_T``; ``x_{t+1}`` sees ``y_t`` (``y_0 = y0``). Required
            when the ESN has output feedback.
        x0 : array_like, shape (n,), optional
            Initial state (zeros).
        y0 : array_like, shape (n_out,), optional
            Output fed back into ``x_1`` (zeros).
        n_steps : int, optional
            ``T`` when neither ``inputs`` nor ``teacher`` is given.
        noise : float
            Half-width ``s`` of i.i.d. ``U[−s, s]`` noise added to every state
            after its update (Jaeger's stabiliser for feedback training; 0: none).
            Any finite ``s`` is drawn; a ``ValueError`` names ``noise`` when the
            states it makes leave float64's range.
        seed : int, Generator or None
            Seed for the noise (an int in ``[0, 2**64)``; checked even when
            ``noise`` is 0).

        Returns
        -------
        ndarray, shape (T, n)
            ``states[t] = x_{t+1}``.
        """
        T: int | None = None
        if teacher is not None:
            Y = as_float_array("teacher", teacher, ndim=2, dtype=_F64)
            if Y.shape[1] != self.n_out:
                raise ValueError(
                    f"`teacher` must have shape (T, {self.n_out}), got shape {Y.shape}"
                )
            T = Y.shape[0]
        elif self.has_feedback:
            raise ValueError(
                "`teacher` is required: the ESN has output feedback"
                " (use `generate` to feed back its own outputs)"
            )
        if inputs is None and T is None:
            if n_steps is None:
                raise ValueError("`n_steps` is required when neither `inputs` nor `teacher` is given")
            T = check_int("n_steps", n_steps, minimum=0)
        u = self._inputs(inputs, T)
        T = u.shape[0]
        x = self._vec("x0", x0, self.n_hidden)
        y_prev = self._vec("y0", y0, self.n_out)
        noise = check_real("noise", noise, low=0.0)
        seed = check_seed("seed", seed)
        overflow = (
            "`inputs`/`teacher` drive the reservoir beyond float64's range: "
            "W_in u + W_fb y + b overflows (rescale them)"
        )
        sparse = self.is_sparse
        fed = np.vstack([y_prev[None, :], Y[:-1]]) if teacher is not None else np.zeros((T, 0))
        fb = self.W_fb if teacher is not None else np.zeros((self.n_hidden, 0))
        if not sparse or not _drive_bounded(self.W_in, u, fb, fed, self.b):
            with np.errstate(over="ignore", invalid="ignore"):
                # (u W_inᵀ + b) + y W_fbᵀ, summed in place (no T × n temporaries);
                # the sparse kernel forms the same sums step by step
                drive = u @ self.W_in.T
                drive += self.b
                if teacher is not None:
                    drive += fed @ self.W_fb.T
            if not all_finite(drive):
                raise ValueError(overflow)
        states = np.empty((T, self.n_hidden))
        if noise > 0:
            rng = as_generator("seed", seed)
            if noise <= _HALF_MAX:
                nu = rng.uniform(-noise, noise, (T, self.n_hidden))
            else:  # the width 2·noise overflows: draw at half the width and double (exact)
                nu = 2.0 * rng.uniform(-noise / 2, noise / 2, (T, self.n_hidden))
            with np.errstate(over="ignore", invalid="ignore"):
                if sparse:
                    self._run_sparse(self.W_in.T, u, fb.T, fed, self.b, nu, x, states)
                else:
                    step = self._stepper()
                    for t in range(T):
                        x = step(x, drive[t]) + nu[t]
                        states[t] = x
            if not all_finite(states):
                raise ValueError(
                    f"`noise` = {noise:.6g} drives the reservoir state beyond float64's range"
                    " (the noise accumulates in the leaky state, and W x grows with it); "
                    "lower `noise`"
                )
        elif sparse:
            self._run_sparse(self.W_in.T, u, fb.T, fed, self.b, None, x, states)
        else:
            # the update of _step, with its constants hoisted out of the loop and
            # every step written into preallocated buffers (the same operations,
            # in the same order, as _step: bit for bit its result)
            a = self.leak_rate
            product = _matvec_into(self.W)
            buf = np.empty(self.n_hidden)
            prev = np.ascontiguousarray(x)
            if isinstance(a, float) and a == 1.0:
                for t in range(T):
                    product(prev, buf)
                    np.add(buf, drive[t], out=buf)
                    prev = states[t]
                    np.tanh(buf, out=prev)
            else:
                keep = 1.0 - a
                for t in range(T):
                    product(prev, buf)
                    np.add(buf, drive[t], out=buf)
                    np.tanh(buf, out=buf)
                    np.multiply(buf, a, out=buf)
                    row = states[t]
                    np.multiply(prev, keep, out=row)
                    np.add(row, buf, out=row)
                    prev = row
        if not all_finite(states):
            raise ValueError(
                "the reservoir state left float64's range: W x overflows for this `W`"
                f" (largest entry {float(np.max(np.abs(_entries(self.W)), initial=0.0)):.6g}); rescale `W`"
            )
        return states

    def generate(
        self, n_steps: int, *, x0: Any, y0: Any, inputs: Any = None
    ) -> Generation:
        """Run freely for ``n_steps``, feeding the readout's output back.

        ``x_{t+1} = (1 − a) x_t + a tanh(W x_t + W_in u_{t+1} + W_fb ŷ_t + b)``,
        ``ŷ_{t+1} = W_out [x_{t+1}; u_{t+1}; 1]``, from ``x_0 = x0`` and
        ``ŷ_0 = y0`` (typically the last teacher-forced state and the last
        teacher value, as :class:`ESNFit` records them).

        Returns
        -------
        Generation
        """
        if self.W_out is None:
            raise ValueError("`esn` has no readout yet: train it with `fit` first")
        n_steps = check_int("n_steps", n_steps, minimum=0)
        u = self._inputs(inputs, n_steps)
        x = self._vec("x0", x0, self.n_hidden)
        y = self._vec("y0", y0, self.n_out)
        W_out_x = self.W_out[:, : self.n_hidden]
        W_out_rest = self.W_out[:, self.n_hidden :]
        outputs = np.empty((n_steps, self.n_out))
        states = np.empty((n_steps, self.n_hidden))
        with np.errstate(over="ignore", invalid="ignore"):
            drive = u @ self.W_in.T + self.b
            rest = np.hstack([u, np.ones((n_steps, 1))]) @ W_out_rest.T
            step = self._stepper()
            for t in range(n_steps):
                x = step(x, drive[t] + self.W_fb @ y)
                y = W_out_x @ x + rest[t]
                states[t] = x
                outputs[t] = y
        if not (all_finite(outputs) and all_finite(states)):
            raise ValueError(
                "the free run left float64's range: the fed-back output overflows"
                " (the readout `W_out` or the feedback `W_fb` is too large)"
            )
        return Generation(outputs, states)

    # ------------------------------------------------------------------ files
    def save(self, path: Any, *, overwrite: bool = False) -> Path:
        """Write the ESN to an ``.npz`` file (NumPy's zip of arrays; no pickle).

        The file holds ``W`` (dense, or a CSR matrix as its ``data``,
        ``indices``, ``indptr`` and shape), ``W_in``, ``W_fb``, ``b``,
        ``leak_rate`` and, when trained, ``W_out``, with a format marker.
        It is written to a temporary file beside ``path`` and then moved into
        place, so a failed write leaves no half-written file.

        Parameters
        ----------
        path : str or os.PathLike
            The file, written exactly there (no suffix is added; ``.npz`` is
            the convention).
        overwrite : bool
            An existing rnntheory ESN file is always replaced. Any other
            existing file is replaced only with ``overwrite=True``: the
            library does not silently write over a file it does not own.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            When ``path`` is a folder, its folder does not exist, or it is an
            existing file that is not an rnntheory ESN file and ``overwrite``
            is False.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> esn = random_esn(20, n_in=1, spectral_radius=0.9, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = esn.save(pathlib.Path(d) / "esn.npz")
        ...     back = ESN.load(p)
        >>> bool(np.array_equal(back.W, esn.W)), back.leak_rate == esn.leak_rate
        (True, True)
        """
        target = check_path("path", path)
        overwrite = check_bool("overwrite", overwrite)
        if target.is_dir():
            raise ValueError(f"`path` must be a file, got the folder {str(target)!r}")
        if not target.parent.is_dir():
            raise ValueError(f"`path` must be in an existing folder, got {str(target)!r}")
        if target.exists() and not overwrite and not _is_esn_file(target):
            raise ValueError(
                f"`path` {str(target)!r} exists and is not an rnntheory ESN file: refusing to"
                " overwrite it (pass overwrite=True to replace it)"
            )
        arrays: dict[str, Any] = {
            _MARKER: np.array(_FORMAT_VERSION, dtype=np.int64),
            "W_in": self.W_in, "W_fb": self.W_fb, "b": self.b,
            "leak_rate": np.asarray(self.leak_rate, dtype=_F64),
        }
        if self.is_sparse:
            arrays.update(
                W_data=self.W.data, W_indices=self.W.indices.astype(np.int64),
                W_indptr=self.W.indptr.astype(np.int64), W_shape=np.array(self.W.shape, dtype=np.int64),
            )
        else:
            arrays["W"] = self.W
        if self.W_out is not None:
            arrays["W_out"] = self.W_out
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: Any) -> ESN:
        """Read an ESN written by :meth:`save` (``allow_pickle=False``).

        Every array's dtype is checked (float64 weights, integer CSR
        indices) and the ESN is rebuilt through its constructor, which checks
        the shapes; a sparse reservoir comes back sparse, bit for bit.

        Raises
        ------
        ValueError
            When ``path`` does not exist, is not an ``.npz`` file, is not an
            rnntheory ESN file (no marker, or another format version), or holds
            arrays of the wrong dtype or shape (the message names the array).
        """
        source = check_path("path", path)
        if not source.is_file():
            raise ValueError(f"`path` {str(source)!r} does not exist or is not a file")
        try:
            with np.load(source, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(
                f"`path` {str(source)!r} is not an rnntheory ESN file (.npz without pickled objects): {exc}"
            ) from None
        if _MARKER not in arrays:
            raise ValueError(f"`path` {str(source)!r} is not an rnntheory ESN file (no {_MARKER!r} entry)")
        version = arrays.pop(_MARKER)
        if version.shape != () or version.dtype.kind not in "iu" or int(version) != _FORMAT_VERSION:
            raise ValueError(
                f"`path` {str(source)!r} has ESN file format {version!r}; this release reads"
                f" format {_FORMAT_VERSION}"
            )

        def get(key: str, *, integer: bool = False, required: bool = True) -> Any:
            if key not in arrays:
                if required:
                    raise ValueError(f"`path` {str(source)!r} has no {key!r} array")
                return None
            arr = arrays[key]
            if integer:
                if arr.dtype.kind not in "iu":
                    raise ValueError(f"{key!r} in {str(source)!r} must be an integer array, got dtype {arr.dtype}")
            elif arr.dtype != _F64:
                raise ValueError(f"{key!r} in {str(source)!r} must have dtype float64, got dtype {arr.dtype}")
            return arr

        if "W" in arrays:
            W: Any = get("W")
        else:
            shape = get("W_shape", integer=True)
            if shape.shape != (2,):
                raise ValueError(f"'W_shape' in {str(source)!r} must have shape (2,), got shape {shape.shape}")
            data_, indices, indptr = get("W_data"), get("W_indices", integer=True), get("W_indptr", integer=True)
            n_rows, n_cols = (int(v) for v in shape)
            ok = (
                data_.ndim == indices.ndim == indptr.ndim == 1 and n_rows >= 0 and n_cols >= 0
                and indptr.size == n_rows + 1 and data_.size == indices.size
                and (indptr.size == 0 or (indptr[0] == 0 and indptr[-1] == data_.size))
                and bool(np.all(np.diff(indptr) >= 0))
                and (indices.size == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n_cols))
            )
            if not ok:
                raise ValueError(
                    f"the sparse reservoir in {str(source)!r} is malformed: W_data {data_.shape},"
                    f" W_indices {indices.shape}, W_indptr {indptr.shape}, W_shape {tuple(shape.tolist())}"
                )
            W = scipy.sparse.csr_array((data_, indices, indptr), shape=(n_rows, n_cols))
        leak = get("leak_rate")
        if leak.ndim > 1:
            raise ValueError(f"'leak_rate' in {str(source)!r} must be a number or a vector, got shape {leak.shape}")
        return cls(
            W, get("W_in"), get("W_fb"), get("b"), float(leak) if leak.ndim == 0 else leak,
            get("W_out", required=False),
        )


@renamed_arguments(n_units="n_hidden", leak="leak_rate")
def random_esn(
    n_hidden: int,
    n_in: int = 0,
    n_out: int = 1,
    *,
    spectral_radius: float | None = None,
    spectral_norm: float | None = None,
    connectivity: float = 1.0,
    input_scaling: float = 1.0,
    feedback_scaling: float = 0.0,
    bias_scaling: float = 0.0,
    leak_rate: Any = 1.0,
    seed: int | np.random.Generator | None = None,
    sparse: bool | None = None,
) -> ESN:
    """Sample a reservoir and scale it.

    Every weight is uniform on ``[−1, 1]`` times its scaling: ``W`` keeps each
    entry with probability ``connectivity`` (1: dense) and is then scaled to
    exactly ``spectral_radius`` (``ρ(W)``) or ``spectral_norm``
    (``σ_max(W)``), exactly one of which must be given; ``W_in`` uses
    ``input_scaling``, ``W_fb`` ``feedback_scaling`` (0: no feedback), ``b``
    ``bias_scaling``.

    Parameters
    ----------
    n_hidden, n_in, n_out : int
        Reservoir, input and output sizes.
    spectral_radius, spectral_norm : float, optional
        The scale of ``W`` (exactly one).
    connectivity : float
        Fraction of nonzero reservoir weights, in ``(0, 1]``.
    input_scaling, feedback_scaling, bias_scaling : float
        Half-widths of the uniform distributions.
    leak_rate : float or array_like, shape (n_hidden,)
        Leak rate ``a ∈ (0, 1]``, one for all units or one per unit.
    seed : int, Generator or None
        Seed (an int in ``[0, 2**64)``), or a Generator to draw from.
    sparse : bool or None
        Store ``W`` as a ``scipy.sparse`` CSR array (True) or a dense array
        (False); None (default) chooses sparse when ``connectivity`` is at most
        :data:`SPARSE_CONNECTIVITY` (0.1) and ``n_hidden`` is at least
        :data:`SPARSE_MIN_UNITS` (100). The draws are the same either way:
        for the same seed the sparse and the dense reservoir hold the same
        matrix up to the spectral scale factor, which is measured by ARPACK
        for a sparse reservoir of more than :data:`SPARSE_ITERATIVE_FROM`
        units (by a dense decomposition for a dense one up to
        :data:`ITERATIVE_FROM` units), so the two agree to about 1e-14
        relative rather than bit for bit.
        (``n_units`` and ``leak`` are the former names of ``n_hidden`` and
        ``leak_rate``; they still work as keywords for one release, with a
        ``DeprecationWarning``.)

    Returns
    -------
    ESN

    Raises
    ------
    ValueError
        On a bad size or scaling; naming ``spectral_radius`` (or
        ``spectral_norm``) when the scaled reservoir cannot carry the target in
        float64 (``5e-324``: its entries would underflow).

    Examples
    --------
    >>> esn = random_esn(30, n_in=2, spectral_norm=0.5, connectivity=0.2, seed=1)
    >>> esn.n_hidden, esn.n_in, esn.n_out, round(esn.spectral_norm, 12)
    (30, 2, 1, 0.5)
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    n_in = check_int("n_in", n_in, minimum=0)
    n_out = check_int("n_out", n_out, minimum=1)
    if (spectral_radius is None) == (spectral_norm is None):
        raise ValueError(
            "exactly one of `spectral_radius` and `spectral_norm` must be given,"
            f" got spectral_radius={spectral_radius}, spectral_norm={spectral_norm}"
        )
    connectivity = check_real("connectivity", connectivity, low=0.0, high=1.0, low_open=True)
    input_scaling = check_real("input_scaling", input_scaling, low=0.0)
    feedback_scaling = check_real("feedback_scaling", feedback_scaling, low=0.0)
    bias_scaling = check_real("bias_scaling", bias_scaling, low=0.0)
    leak_rate = _leak_rate(leak_rate, n_hidden)
    if sparse is None:
        sparse = connectivity <= SPARSE_CONNECTIVITY and n_hidden >= SPARSE_MIN_UNITS
    else:
        sparse = check_bool("sparse", sparse)
    rng = as_generator("seed", seed)
    W = _draw_reservoir(rng, n_hidden, connectivity, sparse)
    if spectral_radius is not None:
        name, target = "spectral_radius", check_real("spectral_radius", spectral_radius, low=0.0)
    else:
        assert spectral_norm is not None
        name, target = "spectral_norm", check_real("spectral_norm", spectral_norm, low=0.0)
    try:
        if spectral_radius is not None:
            W = scale_to_spectral_radius(W, target)
        else:
            W = scale_to_spectral_norm(W, target)
    except ValueError as exc:  # a target the scaled entries cannot carry (5e-324)
        raise ValueError(
            f"`{name}` = {target!r} is out of reach for the sampled reservoir: {exc}"
        ) from None
    W_in = input_scaling * rng.uniform(-1.0, 1.0, (n_hidden, n_in))
    W_fb = feedback_scaling * rng.uniform(-1.0, 1.0, (n_hidden, n_out))
    b = bias_scaling * rng.uniform(-1.0, 1.0, n_hidden)
    return ESN(W, W_in, W_fb, b, leak_rate)


def _draw_reservoir(rng: np.random.Generator, n: int, connectivity: float, sparse: bool) -> Any:
    """The unscaled reservoir of :func:`random_esn`: ``n × n`` uniform draws on
    ``[−1, 1]``, then (``connectivity < 1``) ``n × n`` uniform draws on ``[0, 1)``
    keeping the entries whose draw is below ``connectivity``; a sparse reservoir
    holds exactly the nonzero entries of the dense one (the same draws, in the
    same order), its CSR arrays built from the kept positions without forming
    the masked dense matrix."""
    W = rng.uniform(-1.0, 1.0, (n, n))
    if connectivity >= 1.0:
        return scipy.sparse.csr_array(W) if sparse else W
    keep = rng.random((n, n)) < connectivity
    if not sparse:
        W *= keep
        return W
    flat = np.flatnonzero(keep)
    data = W.ravel()[flat]
    if not np.all(data):  # a draw of exactly 0.0 is not stored (as in the dense conversion)
        flat, data = flat[data != 0.0], data[data != 0.0]
    index = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index)
    np.cumsum(np.bincount(flat // n, minlength=n), out=indptr[1:])
    return scipy.sparse.csr_array((data, (flat % n).astype(index), indptr), shape=(n, n))


@dataclass(frozen=True)
class EchoStateCertificate:
    r"""The contraction certificate for the echo state property.

    ``rate = (1 − a) + a γ_h σ_max(W)`` bounds the Lipschitz constant of the
    state map ``x ↦ (1 − a) x + a tanh(W x + c)`` in the Euclidean norm, for
    every drive ``c`` (``tanh`` is ``γ_h = 1``-Lipschitz). With per-unit
    rates ``a_i`` it is ``max_i(1 − a_i) + max_i(a_i) γ_h σ_max(W)``
    (``‖I − A‖ + ‖A‖ γ_h σ_max(W)`` with ``A = diag(a)``). ``holds`` is
    ``rate < 1``: then two states driven by the same input sequence approach
    each other at least as ``rate^t`` (the echo state property). With output
    feedback this covers teacher forcing (the fed-back values are inputs);
    free-running generation closes a loop through ``W_out`` it does not bound.
    ``ρ(W) < 1`` is *not* sufficient (non-normal ``W`` can expand), and with
    input it is not necessary either.

    Attributes
    ----------
    rate : float
        ``(1 − a) + a γ_h σ_max(W)`` (per-unit rates: see above).
    holds : bool
        ``rate < 1``.
    spectral_norm, spectral_radius : float
        ``σ_max(W)`` and ``ρ(W)``.
    leak_rate, gamma_h : float (leak_rate: or the per-unit vector)
        ``a`` and ``γ_h`` (1 for tanh). (``leak`` is the former name of
        ``leak_rate``, kept for one release with a ``DeprecationWarning``.)
    """

    rate: float
    holds: bool
    spectral_norm: float
    spectral_radius: float
    leak_rate: Any
    gamma_h: float = 1.0

    leak = deprecated_alias("leak_rate")


ESN.__init__ = renamed_arguments(leak="leak_rate")(ESN.__init__)  # type: ignore[method-assign]
EchoStateCertificate.__init__ = renamed_arguments(leak="leak_rate")(  # type: ignore[method-assign]
    EchoStateCertificate.__init__
)


def echo_state_certificate(esn: ESN) -> EchoStateCertificate:
    """Certify the echo state property by contraction (Jaeger 2001; a sufficient condition).

    Parameters
    ----------
    esn : ESN

    Returns
    -------
    EchoStateCertificate

    Examples
    --------
    >>> cert = echo_state_certificate(random_esn(40, spectral_norm=0.9, leak_rate=0.5, seed=0))
    >>> round(cert.rate, 12), cert.holds
    (0.95, True)
    >>> echo_state_certificate(random_esn(40, spectral_radius=0.9, seed=0)).holds
    False
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"`esn` must be an ESN, got {type(esn).__name__}")
    sigma = esn.spectral_norm
    gamma_h = 1.0
    a = esn.leak_rate
    if isinstance(a, float):
        rate = (1.0 - a) + a * gamma_h * sigma
    else:  # per-unit rates: ‖I − A‖ + ‖A‖ γ_h σ_max(W) with A = diag(a)
        rate = float(np.max(1.0 - a)) + float(np.max(a)) * gamma_h * sigma
    return EchoStateCertificate(
        rate=rate,
        holds=bool(rate < 1.0),
        spectral_norm=sigma,
        spectral_radius=esn.spectral_radius,
        leak_rate=esn.leak_rate,
        gamma_h=gamma_h,
    )


#: Above this many features (columns of ``Z``), ``solver="lstsq"`` with
#: ``λ > 0`` or full column rank solves by refined normal equations (see
#: :func:`ridge_regression`) instead of an SVD, about ten times faster.
REFINE_FROM = 256
_REFINE_STEPS = 50

RIDGE_CANDIDATES: tuple[float, ...] = tuple(10.0**k for k in range(-16, 1))
"""The candidates of ``fit(..., ridge="auto")``: ``10⁻¹⁶, 10⁻¹⁵, …, 1``."""


def _regression_arrays(features: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    Z = as_float_array("features", features, ndim=2, dtype=_F64)
    Y = as_float_array("targets", targets, ndim=2, dtype=_F64)
    if 0 in Z.shape:
        raise ValueError(f"`features` must have at least one row and one column, got shape {Z.shape}")
    if Y.shape[0] != Z.shape[0]:
        raise ValueError(
            f"`targets` must have {Z.shape[0]} rows (one per feature row), got shape {Y.shape}"
        )
    if Y.shape[1] == 0:
        raise ValueError(f"`targets` must have at least one column, got shape {Y.shape}")
    return Z, Y


def ridge_regression(
    features: Any, targets: Any, ridge: float, *, solver: str = "lstsq"
) -> np.ndarray:
    r"""Ridge regression in closed form: ``W_outᵀ = (ZᵀZ + λI)⁻¹ ZᵀY``.

    The regulariser ``λ‖W_out‖_F²`` applies to every column, the bias
    column included.

    ``solver="lstsq"`` (default) gives the least-squares accuracy (an error
    about ``cond(Z)·ε``, not the ``cond(Z)²·ε`` of the normal equations):

    * up to :data:`REFINE_FROM` features, or with fewer rows than features,
      the SVD ``Z = U diag(s) Vᵀ``: ``W_outᵀ = V diag(s/(s² + λ)) UᵀY``, and
      for ``λ = 0`` the minimum-norm least-squares solution of
      :func:`scipy.linalg.lstsq`;
    * beyond, *refined normal equations*: a Cholesky factor of ``ZᵀZ + λI``
      gives a first solution, then each step solves for the correction from
      the residual ``Zᵀ(Y − Z w) − λ w`` computed from ``Z`` itself (fixed
      precision iterative refinement; Björck 1967, *Iterative refinement of
      linear least squares solutions*). Each step costs ``O(T p m)``, and the
      refined solution reaches the rounding floor of the least-squares
      problem (the corrections stop shrinking at ``cond(Z)·ε`` relative,
      typically 1e-12 to 1e-10 with reservoir states) whenever
      ``cond(ZᵀZ + λI)·ε`` is well below 1 (the Gram matrix comes from BLAS
      ``dsyrk``). When the corrections stop halving at each step while
      still above ``2⁻³⁰ ≈ 9e-10`` of the solution (ill-conditioned: with
      reservoir states typically ``λ ≤ 1e-10``), or the Cholesky
      factorisation fails, a Householder QR of the stacked ``[Z; √λ I]``
      gives the readout for ``0 < √λ ≤ max|Z|`` (backward stable, as the
      SVD, at a fraction of its cost), and the SVD above when ``R`` is
      singular to working precision, ``√λ`` is larger, or ``λ = 0``.

    ``solver="normal"`` solves the normal equations alone with
    :func:`scipy.linalg.solve` (``assume_a="pos"``); when ``ZᵀZ + λI`` is
    singular or ill-conditioned to working precision (reciprocal condition
    below ``ε``) it falls back to ``"lstsq"`` instead of raising (:func:`fit`
    records which solver produced the readout in :attr:`ESNFit.solver`).

    Parameters
    ----------
    features : array_like, shape (T, p)
        ``Z``.
    targets : array_like, shape (T, m)
        ``Y``.
    ridge : float
        ``λ >= 0``.
    solver : {"lstsq", "normal"}

    Returns
    -------
    ndarray, shape (m, p)
        ``W_out``.

    Raises
    ------
    ValueError
        On empty ``features``/``targets``, mismatched rows, ``λ < 0``; when
        ``W_out`` is beyond float64's range.

    See Also
    --------
    ridge_path : the readouts for many ``λ`` from one SVD.

    Notes
    -----
    ``Z`` and ``Y`` whose entries lie outside ``[2⁻⁴⁰⁰, 2⁴⁰⁰]`` are first
    brought to unit scale by powers of two, ``Z = 2ᵃ Z′`` and ``Y = 2ᵇ Y′``
    (exact); with ``w = 2ᵇ⁻ᵃ v`` the problem becomes
    ``min ‖Z′ v − Y′‖² + λ 4⁻ᵃ ‖v‖²``, so entries anywhere in float64's range
    (``1e300``, subnormals) give the readout to working precision.

    Examples
    --------
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> ridge_regression(Z, Z @ np.array([[2.0], [-1.0]]), 0.0).round(12)
    array([[ 2., -1.]])
    """
    return _ridge_solve(features, targets, ridge, solver)[0]


def _ridge_solve(features: Any, targets: Any, ridge: Any, solver: str) -> tuple[np.ndarray, str]:
    """:func:`ridge_regression`, and the solver that produced the readout."""
    Z, Y = _regression_arrays(features, targets)
    lam = check_real("ridge", ridge, low=0.0)
    check_choice("solver", solver, ("lstsq", "normal"))
    a, b = LA.pow2_exponent(Z), LA.pow2_exponent(Y)
    Zp = np.ldexp(Z, -a) if a else Z
    Yp = np.ldexp(Y, -b) if b else Y
    lam_p = lam
    if a and lam > 0:
        mant, le = math.frexp(lam)
        k = le - 2 * a  # λ 4⁻ᵃ = mant · 2ᵏ
        if k > 1000:
            # λ 4⁻ᵃ exceeds ‖Z′‖² (≤ T p) by a factor 2¹⁰⁰⁰/(T p): v = Z′ᵀY′/(λ 4⁻ᵃ)
            # to that relative accuracy, and w = 2ᵇ⁻ᵃ v.
            return _readout_from((Zp.T @ Yp) / mant, b - a - k), solver
        lam_p = math.ldexp(mant, k) if k > -1100 else 0.0
    if solver == "normal":
        v = _normal_equations(Zp, Yp, lam_p)
        if v is not None:
            return _readout_from(v, b - a), "normal"
    return _readout_from(_least_squares(Zp, Yp, lam_p), b - a), "lstsq"


def _normal_equations(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray | None:
    """``(ZᵀZ + λI)⁻¹ZᵀY`` by a symmetric positive definite solve; None when the
    matrix is singular or ill-conditioned to working precision."""
    A = Z.T @ Z
    A[np.diag_indices_from(A)] += lam
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            v = scipy.linalg.solve(A, Z.T @ Y, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
        return None
    return v if all_finite(v) else None


def _least_squares(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """The ``"lstsq"`` solver on unit-scale ``Z``, ``Y`` (see :func:`ridge_regression`)."""
    T, p = Z.shape
    if p > REFINE_FROM and T >= p:
        v = _refined_normal(Z, Y, lam)
        if v is not None:
            return v
        v = _stacked_qr(Z, Y, lam) if lam > 0 else None
        if v is not None:
            return v
    if lam > 0:
        # w = V diag(s/(s² + λ)) Uᵀ Y from the SVD Z = U diag(s) Vᵀ: the
        # minimiser of ‖Z w − Y‖² + λ‖w‖², accurate for every λ (the stacked
        # system [Z; √λ I] loses digits in Householder QR once √λ ≫ ‖Z‖).
        U, sv, Vt = np.linalg.svd(Z, full_matrices=False)
        return np.asarray(Vt.T @ ((sv / (sv * sv + lam))[:, None] * (U.T @ Y)))
    return np.asarray(scipy.linalg.lstsq(Z, Y)[0])


def _refined_normal(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray | None:
    """Cholesky of ``ZᵀZ + λI`` plus iterative refinement on residuals from ``Z``;
    None when the factorisation fails or the corrections stop halving above
    ``2⁻³⁰`` of the solution (then the SVD is used)."""
    A = _gram(Z)
    A[np.diag_indices_from(A)] += lam
    try:
        factor = scipy.linalg.cho_factor(A, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        W = scipy.linalg.cho_solve(factor, Z.T @ Y, check_finite=False)
        prev = math.inf
        for _ in range(_REFINE_STEPS):
            G = Z.T @ (Y - Z @ W)
            if lam:
                G -= lam * W
            D = scipy.linalg.cho_solve(factor, G, check_finite=False)
            W = W + D
            top = float(np.max(np.abs(W)))
            size = float(np.max(np.abs(D))) / top if top > 0 else 0.0
            if not math.isfinite(size):
                return None
            if size <= 2.0**-52:
                return W
            if size > prev / 2:  # no longer contracting: accept only at the rounding floor
                return W if size <= 2.0**-30 else None
            prev = size
    return W if prev <= 2.0**-30 else None


def _gram(Z: np.ndarray) -> np.ndarray:
    """The upper triangle of ``ZᵀZ`` by BLAS ``dsyrk`` (half the flops of
    ``Z.T @ Z``; the strict lower triangle is not referenced by the Cholesky
    factorisation that reads it, ``lower=False``)."""
    from scipy.linalg.blas import dsyrk

    # a C-ordered Z is its transpose in Fortran order: ZᵀZ = Zᵀ (Zᵀ)ᵀ, no copy
    if Z.flags.c_contiguous:
        return np.asarray(dsyrk(1.0, Z.T, trans=0, lower=0))
    return np.asarray(dsyrk(1.0, np.asfortranarray(Z), trans=1, lower=0))


def _stacked_qr(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray | None:
    """The ridge readout from a Householder QR of the stacked ``[Z; √λ I]``
    (backward stable: an error about ``cond·ε``, as the SVD, at a fraction of
    its cost) for unit-scale ``Z`` with at least as many rows as columns and
    ``√λ`` below ``‖Z‖``, where the refined normal equations do not converge
    (``λ`` of ``1e-10`` and below with reservoir states); None when ``λ`` is
    larger (the stacked rows then lose digits) or ``R`` is singular to working
    precision (the SVD decides).

    The QR runs in two stages: ``Z = Q₁ R₁`` (LAPACK ``geqrf``), then the
    triangle-over-triangle ``[R₁; √λ I] = Q₂ R`` (``tpqrt``, which works on the
    two triangles only); ``Q₂ᵀ [Q₁ᵀ Y; 0]`` comes from ``tpmqrt``. The product
    ``diag(Q₁, I) Q₂`` is an orthogonal factor of the stacked matrix, so this
    is its Householder QR, in about 60 % of the flops of factoring the
    ``(T + p) × p`` stack at once."""
    p = Z.shape[1]
    root = math.sqrt(lam)
    if root > float(np.max(np.abs(Z))):
        return None
    QtY, R1 = scipy.linalg.qr_multiply(np.asfortranarray(Z), Y.T, mode="right")
    B = np.zeros((p, p), order="F")
    B[np.arange(p), np.arange(p)] = root
    R, V, Tf, info = scipy.linalg.lapack.dtpqrt(p, min(p, 64), np.asfortranarray(R1), B,
                                                overwrite_a=1, overwrite_b=1)
    if info != 0:  # pragma: no cover - LAPACK reports only argument errors here
        return None
    c, _, info = scipy.linalg.lapack.dtpmqrt(p, V, Tf, np.asfortranarray(QtY.T),
                                             np.zeros((p, Y.shape[1]), order="F"), side="L", trans="T")
    if info != 0:  # pragma: no cover
        return None
    R = np.triu(R)
    d = np.abs(np.diag(R))
    if not (d.size and float(np.min(d)) > p * np.finfo(np.float64).eps * float(np.max(d))):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        v = scipy.linalg.solve_triangular(R, c, check_finite=False)
    return v if all_finite(v) else None


def ridge_gains(s: np.ndarray, lam: float) -> np.ndarray:
    """``s/(s² + λ)`` for singular values ``s ≥ 0``, formed as ``1/(s + λ/s)``.

    ``s²`` overflows for ``s`` near 1e300 and underflows below 1e-154 (then
    ``s/λ`` where ``λ/s`` overflows). 0 where ``s = 0``; ``inf`` where the
    value itself exceeds float64's range (``λ = 0`` and a subnormal ``s``).
    The ridge filter of :func:`ridge_path` and of the Mackey–Glass protocol.

    Parameters
    ----------
    s : array_like, shape (k,)
        Singular values, each ``>= 0``.
    lam : float
        ``λ >= 0``.

    Returns
    -------
    ndarray, shape (k,)

    Examples
    --------
    >>> ridge_gains(np.array([2.0, 0.0]), 1.0)
    array([0.4, 0. ])
    """
    sv = as_float_array("s", s, ndim=1, dtype=_F64)
    if np.any(sv < 0):
        raise ValueError(f"`s` must be singular values (>= 0), got minimum {float(np.min(sv))!r}")
    return _gains(sv, check_real("lam", lam, low=0.0))


def _gains(s: np.ndarray, lam: float) -> np.ndarray:
    """:func:`ridge_gains` without the checks (the ridge path's inner loop)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r = lam / s
        return np.where(s > 0, np.where(np.isfinite(r), 1.0 / (s + r), s / lam), 0.0)


def _candidates(name: str, value: Any) -> np.ndarray:
    """A non-empty 1-D float64 array of ridge values ``λ >= 0``."""
    if isinstance(value, str):
        raise ValueError(
            f"`{name}` must be a number >= 0, 'auto' or a sequence of candidates, got {value!r}"
        )
    lams = as_float_array(name, value, ndim=1, dtype=_F64)
    if lams.size == 0 or np.any(lams < 0):
        raise ValueError(f"`{name}` must be a non-empty sequence of λ >= 0, got {lams}")
    return lams


class _RidgeSVD:
    """One SVD of the unit-scaled features, and the readout and GCV score of any ``λ``."""

    def __init__(self, Z: np.ndarray, Y: np.ndarray) -> None:
        self.T, self.p = Z.shape
        self.a, self.b = LA.pow2_exponent(Z), LA.pow2_exponent(Y)
        Zp = np.ldexp(Z, -self.a) if self.a else Z
        Yp = np.ldexp(Y, -self.b) if self.b else Y
        U, self.s, self.Vt = np.linalg.svd(Zp, full_matrices=False)
        self.Uy = U.T @ Yp
        outside = Yp - U @ self.Uy  # the part of Y no readout can reach
        self.rss_outside = float(np.sum(outside * outside))
        self.cut = float(np.finfo(np.float64).eps) * max(self.T, self.p) * float(np.max(self.s, initial=0.0))

    def _lam(self, lam: float) -> float:
        return LA.ldexp(lam, -2 * self.a) if lam > 0 else 0.0

    def _gains(self, lam_p: float) -> np.ndarray:
        if lam_p > 0:
            return _gains(self.s, lam_p)
        # λ = 0: the minimum-norm least-squares solution, singular values below
        # ε·max(T, p)·s_max treated as zero (as LAPACK's gelsd does)
        return _gains(np.where(self.s > self.cut, self.s, 0.0), 0.0)

    def readout(self, lam: float) -> np.ndarray:
        """``W_out`` (shape ``(m, p)``); entries beyond float64's range come back as ±inf."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            v = self.Vt.T @ (self._gains(self._lam(lam))[:, None] * self.Uy)
            w = np.ldexp(v, self.b - self.a) if self.b - self.a else v
        return np.ascontiguousarray(w.T)

    def gcv(self, lam: float, *, unit_scale: bool = False) -> float:
        """Generalised cross-validation ``(RSS(λ)/T) / (1 − df(λ)/T)²`` (Golub, Heath
        & Wahba 1979), with ``df(λ) = Σ s²/(s² + λ)``; ``inf`` when ``df ≥ T``.
        ``unit_scale``: the score of the power-of-two scaled targets (the same
        ordering over λ, never overflowing)."""
        lam_p = self._lam(lam)
        s = self.s
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            if lam_p > 0:
                q = (s / math.sqrt(lam_p)) ** 2  # s²/λ
                kept = q / (1.0 + q)  # s²/(s² + λ)
                kept = np.where(np.isfinite(q), kept, 1.0)
            else:
                kept = (s > self.cut).astype(np.float64)
            left = 1.0 - kept
            rss = self.rss_outside + float(np.sum((left[:, None] * self.Uy) ** 2))
        df = float(np.sum(kept))
        denom = 1.0 - df / self.T
        if denom <= 0.0:
            return math.inf
        score = rss / self.T / denom**2
        return score if unit_scale else LA.ldexp(score, 2 * self.b)


def ridge_path(features: Any, targets: Any, ridges: Any) -> np.ndarray:
    r"""The ridge readouts for many ``λ`` from one SVD of the features.

    With ``Z = U diag(s) Vᵀ`` (one SVD, after the power-of-two scaling of
    :func:`ridge_regression`), each ``λ`` costs ``O(p·(p + m))``:
    ``W_out(λ)ᵀ = V diag(s/(s² + λ)) UᵀY`` (the filter :func:`ridge_gains`).
    For ``λ = 0`` singular values below ``ε·max(T, p)·s_max`` count as zero
    (the minimum-norm least-squares solution of a rank-deficient ``Z``, as
    :func:`scipy.linalg.lstsq`). Never the normal equations, so ``λ`` down to
    0 keeps the least-squares accuracy.

    Parameters
    ----------
    features : array_like, shape (T, p)
    targets : array_like, shape (T, m)
    ridges : sequence of float
        The ``λ`` values (each ``>= 0``).

    Returns
    -------
    ndarray, shape (len(ridges), m, p)
        ``W_out`` for each ``λ``, in order. A readout beyond float64's range
        comes back with ``±inf`` entries (:func:`ridge_regression` raises
        instead), so that a search over ``λ`` can score it as useless.

    Examples
    --------
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> W = ridge_path(Z, Z @ np.array([[2.0], [-1.0]]), [0.0, 1.0])
    >>> W.shape, W[0].round(12)
    ((2, 1, 2), array([[ 2., -1.]]))
    """
    Z, Y = _regression_arrays(features, targets)
    lams = _candidates("ridges", ridges)
    path = _RidgeSVD(Z, Y)
    return np.stack([path.readout(float(lam)) for lam in lams])


def nrmse(resid: np.ndarray, Y: np.ndarray) -> float:
    """Package-internal (the Mackey–Glass protocol uses it): ``sqrt(mean(resid²) / var(Y))`` without overflow or underflow: both arrays
    are brought to unit scale by powers of two first. A constant ``Y`` gives 0
    for a zero residual and ``inf`` otherwise (the ratio has no finite value)."""
    er = math.frexp(float(np.max(np.abs(resid))))[1] if resid.size else 0
    ey = math.frexp(float(np.max(np.abs(Y))))[1] if Y.size else 0
    num = float(np.sqrt(np.mean(np.ldexp(resid, -er) ** 2)))
    den = float(np.std(np.ldexp(Y, -ey)))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return LA.ldexp(num / den, er - ey)


def _readout_from(v: np.ndarray, e: int) -> np.ndarray:
    """``(v · 2**e)ᵀ`` as a C-contiguous array, or a ``ValueError`` if it overflows."""
    with np.errstate(over="ignore", under="ignore"):
        w = np.ldexp(v, e) if e else v
    if not all_finite(w):
        raise ValueError(
            "`targets` are too large relative to `features`: the readout W_out"
            " is beyond float64's range"
        )
    return np.ascontiguousarray(w.T)


@dataclass(frozen=True, eq=False)
class ESNFit:
    """The result of :func:`fit`.

    Attributes
    ----------
    esn : ESN
        The network with its trained ``W_out``.
    states : ndarray, shape (T, n), or tuple of such arrays
        All teacher-forced states (washout included); one array per sequence
        when :func:`fit` was given a list of sequences.
    train_nrmse : float
        ``sqrt(mean squared error / var(teacher))`` after the washout, over
        every sequence's rows (for a constant teacher: 0 if it is fitted
        exactly, ``inf`` otherwise).
    final_state : ndarray, shape (n,)
        ``x_T`` of the (last) sequence, where :meth:`ESN.generate` continues.
    final_output : ndarray, shape (n_out,)
        ``y_T``, the (last) sequence's last teacher value (fed back into ``x_{T+1}``).
    washout : int or tuple of int
        The washout used (one per sequence for a list of sequences).
    ridge : float
        The ridge ``λ`` of the readout (the selected one when :func:`fit`
        was given candidates).
    solver : str
        The solver that produced the readout: ``"lstsq"`` or ``"normal"``
        (``"lstsq"`` when ``solver="normal"`` fell back, or when ``λ`` was
        selected from candidates).
    ridge_candidates, ridge_scores : ndarray or None
        With ridge selection: the candidates and their GCV scores
        (see :func:`fit`); None for a fixed ``λ``.
    """

    esn: ESN
    states: Any
    train_nrmse: float
    final_state: np.ndarray
    final_output: np.ndarray
    washout: Any
    ridge: float
    solver: str = "lstsq"
    ridge_candidates: np.ndarray | None = None
    ridge_scores: np.ndarray | None = None


def _centred(
    Z: np.ndarray, Y: np.ndarray, *, overwrite_z: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``Z − z̄``, ``Y − ȳ`` and the means ``(z̄, ȳ)`` (column means taken at unit
    scale, a power of two, so that they never overflow). ``overwrite_z``: ``Z``
    (a float64 array the caller owns) may be centred in place."""
    out = []
    for name, A, inplace in (("inputs", Z, overwrite_z), ("teacher", Y, False)):
        e = LA.pow2_exponent(A)
        Ap = np.ldexp(A, -e) if e else A
        m = Ap.mean(axis=0)
        with np.errstate(over="ignore", invalid="ignore"):
            if e:
                C = np.ldexp(Ap - m, e)
            elif inplace:
                C = np.subtract(A, m, out=A)
            else:
                C = Ap - m
        if not all_finite(C):
            raise ValueError(f"`{name}` is too large to centre for an unpenalised bias (entries near float64's limit)")
        out.append((C, np.ldexp(m, e) if e else m))
    (Zc, z_mean), (Yc, y_mean) = out
    return Zc, Yc, (z_mean, y_mean)


def _sequences(inputs: Any, teacher: Any, washout: Any) -> tuple[list[Any], list[np.ndarray], list[int]]:
    """The sequences of a multi-sequence :func:`fit`, validated."""
    teachers = list(teacher)
    k = len(teachers)
    if k == 0:
        raise ValueError("`teacher` must be a non-empty list of arrays (one per sequence), got an empty list")
    Ys = [as_float_array(f"teacher[{i}]", t, ndim=2, dtype=_F64) for i, t in enumerate(teachers)]
    if inputs is None:
        ins: list[Any] = [None] * k
    elif isinstance(inputs, list | tuple):
        if len(inputs) != k:
            raise ValueError(
                f"`inputs` must be a list of {k} arrays (one per teacher sequence), got {len(inputs)}"
            )
        ins = list(inputs)
    else:
        raise TypeError(
            "`inputs` must be a list of arrays (one per sequence) or None when `teacher` is a list,"
            f" got {type(inputs).__name__}"
        )
    if isinstance(washout, list | tuple | np.ndarray):
        if len(washout) != k:
            raise ValueError(f"`washout` must be one int or {k} ints (one per sequence), got {len(washout)}")
        ws = [check_int(f"washout[{i}]", w, minimum=0) for i, w in enumerate(washout)]
    else:
        ws = [check_int("washout", washout, minimum=0)] * k
    for i, (Y, w) in enumerate(zip(Ys, ws, strict=True)):
        if w >= Y.shape[0]:
            raise ValueError(
                f"`washout` must be < the number of steps {Y.shape[0]} of sequence {i}, got {w}"
            )
    return ins, Ys, ws


def fit(
    esn: ESN,
    inputs: Any,
    teacher: Any,
    *,
    washout: Any = 0,
    ridge: Any = 1e-8,
    x0: Any = None,
    y0: Any = None,
    solver: str = "lstsq",
    noise: float = 0.0,
    seed: Any = None,
    penalize_bias: bool = True,
) -> ESNFit:
    """Teacher-forced training of the readout by ridge regression.

    Runs :meth:`ESN.run` with the teacher fed back, drops the first
    ``washout`` states, and solves ``W_out = ridge_regression([x; u; 1], y, λ)``.

    **Several sequences.** ``teacher`` (and ``inputs``, unless the ESN has no
    input) may be lists of arrays, one per sequence: each sequence is run
    from ``x0``/``y0`` (states are not carried from one to the next), loses
    its own washout, and the feature rows of all sequences are stacked into
    one regression.

    **Ridge selection.** ``ridge="auto"`` (the candidates
    :data:`RIDGE_CANDIDATES`, ``10⁻¹⁶ … 1``) or a sequence of candidates
    chooses ``λ`` by generalised cross-validation (Golub, Heath & Wahba 1979,
    *Generalized cross-validation as a method for choosing a good ridge
    parameter*): with the SVD ``Z = U diag(s) Vᵀ`` of the feature rows,

    ``GCV(λ) = (‖Y − Z W_out(λ)ᵀ‖²_F / T) / (1 − df(λ)/T)²``, ``df(λ) = Σ s²/(s² + λ)``,

    ``T`` the number of rows; the smallest score wins (the first candidate on
    ties; ``inf`` when ``df ≥ T``). All candidates share that one SVD
    (:func:`ridge_path`), and the readout is the selected ``λ``'s from it.

    Parameters
    ----------
    esn : ESN
    inputs : array_like, shape (T, n_in), None, or a list of those
    teacher : array_like, shape (T, n_out), or a list of those
    washout : int or sequence of int
        Initial steps excluded from the regression (``< T``), one for all
        sequences or one per sequence.
    ridge : float, "auto" or sequence of float
        ``λ >= 0`` (see :func:`ridge_regression`), or candidates to select from.
    x0, y0 : array_like, optional
        Initial state and fed-back output of every sequence (zeros).
    solver : {"lstsq", "normal"}
        See :func:`ridge_regression`; ``"normal"`` falls back to ``"lstsq"``
        when the normal equations are singular (recorded in :attr:`ESNFit.solver`).
    noise : float
        State noise during harvesting, see :meth:`ESN.run` (0: none).
    seed : int, Generator or None
        Seed for the noise, see :meth:`ESN.run` (one generator for all sequences).
    penalize_bias : bool
        True (default): ``λ`` applies to the bias weight as to every other.
        False: the bias is not penalised (the intercept of classical ridge
        regression, as in ReservoirPy's ``Ridge``): the features ``[x; u]``
        and the targets are centred on their means, the ridge problem is
        solved on the centred data (any ``ridge``, any solver, ridge
        selection included: its scores are then those of the centred
        problem), and the bias weight is ``ȳ − W [x̄; ū]``.

    Returns
    -------
    ESNFit

    Examples
    --------
    >>> esn = random_esn(40, n_in=1, spectral_radius=0.9, seed=0)
    >>> t = np.arange(300.0)
    >>> runs = [np.sin(t / 5 + phase)[:, None] for phase in (0.0, 1.0)]
    >>> res = fit(esn, [u[:-1] for u in runs], [u[1:] for u in runs], washout=50, ridge="auto")
    >>> len(res.states), bool(res.ridge in res.ridge_candidates), bool(res.train_nrmse < 1e-3)
    (2, True, True)
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"`esn` must be an ESN, got {type(esn).__name__}")
    check_choice("solver", solver, ("lstsq", "normal"))
    penalize_bias = check_bool("penalize_bias", penalize_bias)
    if isinstance(teacher, list | tuple):
        ins, Ys, ws = _sequences(inputs, teacher, washout)
        rng = as_generator("seed", seed) if check_real("noise", noise, low=0.0) > 0 else seed
        runs = [esn.run(u, Y, x0=x0, y0=y0, noise=noise, seed=rng) for u, Y in zip(ins, Ys, strict=True)]
        Z = np.vstack([
            esn._regressors(X[w:], esn._inputs(u, Y.shape[0])[w:], bias=penalize_bias)
            for X, u, Y, w in zip(runs, ins, Ys, ws, strict=True)
        ])
        Yw = np.vstack([Y[w:] for Y, w in zip(Ys, ws, strict=True)])
        states: Any = tuple(runs)
        last_state, last_output = runs[-1][-1], Ys[-1][-1]
        used_washout: Any = tuple(ws)
    else:
        Y = as_float_array("teacher", teacher, ndim=2, dtype=_F64)
        w = check_int("washout", washout, minimum=0)
        if w >= Y.shape[0]:
            raise ValueError(f"`washout` must be < the number of steps {Y.shape[0]}, got {w}")
        states = esn.run(inputs, Y, x0=x0, y0=y0, noise=noise, seed=seed)
        u = esn._inputs(inputs, Y.shape[0])
        Z = esn._regressors(states[w:], u[w:], bias=penalize_bias)
        Yw = Y[w:]
        last_state, last_output = states[-1], Y[-1]
        used_washout = w
    centre = None
    if not penalize_bias:  # Z = [x; u], a new array of fit's own: centred in place
        Z, Yw, centre = _centred(Z, Yw, overwrite_z=True)
    candidates = scores = None
    if isinstance(ridge, bool) or not isinstance(ridge, int | float | np.integer | np.floating):
        candidates = np.array(RIDGE_CANDIDATES) if isinstance(ridge, str) and ridge == "auto" \
            else _candidates("ridge", ridge)
        path = _RidgeSVD(Z, Yw)
        unit = np.array([path.gcv(float(lam), unit_scale=True) for lam in candidates])
        best = int(np.argmin(np.where(np.isnan(unit), np.inf, unit)))
        scores = np.array([LA.ldexp(float(v), 2 * path.b) for v in unit])
        lam = float(candidates[best])
        W_out = path.readout(lam)
        if not all_finite(W_out):
            raise ValueError(
                "`teacher` is too large relative to the features: the readout W_out"
                " is beyond float64's range"
            )
        used = "lstsq"
    else:
        lam = check_real("ridge", ridge, low=0.0)
        W_out, used = _ridge_solve(Z, Yw, lam, solver)
    if centre is not None:
        z_mean, y_mean = centre
        with np.errstate(over="ignore", invalid="ignore"):
            bias = y_mean - W_out @ z_mean
        if not all_finite(bias):
            raise ValueError(
                "`teacher` is too large relative to the features: the bias weight"
                " is beyond float64's range"
            )
        resid = Z @ W_out.T - Yw  # (Z − z̄) W_xuᵀ − (Y − ȳ) = [Z 1] W_outᵀ − Y
        W_out = np.hstack([W_out, bias[:, None]])
    else:
        resid = Z @ W_out.T - Yw
    trained = replace(esn, W_out=W_out)
    return ESNFit(
        esn=trained,
        states=states,
        train_nrmse=nrmse(resid, Yw),
        final_state=np.array(last_state, copy=True),
        final_output=np.array(last_output, copy=True),
        washout=used_washout,
        ridge=lam,
        solver=used,
        ridge_candidates=candidates,
        ridge_scores=scores,
    )



# ----------------------------------------------------------------------------- moved names

_MOVED = {  # old name here -> (new home, name there)
    "mackey_glass_protocol": ("rnntheory.experiments.mg17", "mackey_glass_protocol"),
    "MG17Result": ("rnntheory.experiments.mg17", "MG17Result"),
    "RIDGE_GRID": ("rnntheory.experiments.mg17", "RIDGE_GRID"),
    "JAEGER_2001_NRMSE84": ("rnntheory.experiments.mg17", "JAEGER_2001"),
}


def __getattr__(name: str) -> Any:
    """The Mackey–Glass protocol moved to its experiment, :mod:`rnntheory.experiments.mg17`.

    Its old names here keep working for one release with a ``DeprecationWarning``.
    The lookup is by module name at call time on purpose: the ESN sits below
    the experiments and imports nothing from them; this shim (and the upward
    lookup with it) goes away in the next release.
    """
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home, new = _MOVED[name]
    warnings.warn(
        f"`rnntheory.esn.{name}` is deprecated and will be removed in the next release; "
        f"use `{home}.{new}`",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), new)
