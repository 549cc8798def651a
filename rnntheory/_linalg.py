"""Package-internal matrix measures, written once for every floor that needs them.

``σ_max`` and ``ρ`` are computed on the matrix brought to unit scale by a
power of two when its largest entry lies outside ``[2**-400, 2**400]`` (the
factor is exact and is put back at the end), so that LAPACK sees neither
overflow nor subnormals; ordinary matrices are measured as they are. The
public faces are :func:`rnntheory.bounds.gamma_w` and
:func:`rnntheory.bounds.spectral_radius` (which validate their argument); the
echo state network (a floor below ``bounds``) and the spectral-norm projection
use these functions directly, so all of them report the same number.

Not public API.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "SAFE_EXP",
    "ldexp",
    "pow2_exponent",
    "sign_corrected_q",
    "spectral_norm",
    "spectral_radius",
]

SAFE_EXP = 400
"""Matrices whose largest entry lies in ``[2**-400, 2**400]`` are measured as
they are; outside that range they are first brought to ``[1/2, 1)`` by a power
of two (exact), so that LAPACK sees neither overflow nor subnormals."""


def pow2_exponent(A: np.ndarray) -> int:
    """``e`` with ``max|A · 2**-e|`` in ``[1/2, 1)`` when ``A``'s largest entry is
    outside ``[2**-400, 2**400]``; 0 for ordinary (or zero, or empty) arrays."""
    # max|A| as max(max A, −min A): two reductions, no |A| temporary (NaN propagates)
    m = float(np.maximum(np.max(A), -np.min(A))) if A.size else 0.0
    if m == 0.0 or 2.0**-SAFE_EXP <= m <= 2.0**SAFE_EXP:
        return 0
    return math.frexp(m)[1]


def ldexp(x: float, e: int) -> float:
    """``x · 2**e``; ``inf`` when the value is beyond float64's range."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(x, e))


def spectral_radius(W: np.ndarray) -> float:
    """``ρ(W) = max_i |λ_i(W)|`` of a square float64 ``W`` (0 for an empty one);
    ``inf`` only when ``ρ`` itself is beyond float64's range."""
    if not W.size:
        return 0.0
    e = pow2_exponent(W)
    return ldexp(float(np.max(np.abs(np.linalg.eigvals(np.ldexp(W, -e))))), e)


def spectral_norm(W: np.ndarray) -> float:
    """``σ_max(W)``, the largest singular value of a float64 matrix (0 for an empty one);
    ``inf`` only when ``σ_max`` itself is beyond float64's range."""
    if not W.size:
        return 0.0
    e = pow2_exponent(W)
    return ldexp(float(np.linalg.norm(np.ldexp(W, -e), 2)), e)


def sign_corrected_q(M: np.ndarray) -> np.ndarray:
    """``Q · diag(sign(diag R))`` for ``M = QR`` (a zero diagonal entry counts as +):
    the orthogonal factor made unique, Haar-distributed when ``M`` is Gaussian
    (Mezzadri 2007, "How to generate random matrices from the classical compact groups")."""
    q, r = np.linalg.qr(M)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)
