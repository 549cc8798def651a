"""Gradient clipping by norm (Eq. 13 of the article; Pascanu et al. 2013, Alg. 1), symbolically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from .._validation import renamed_arguments
from ._base import Identity, cached, check_int_arg, is_zero_matrix, sym_matrix, sym_scalar

__all__ = ["ClippingProof", "clip_by_norm", "prove_clipping"]


@renamed_arguments(tau="threshold")
def clip_by_norm(g: Any, threshold: Any) -> sp.Matrix:
    """Eq. 13 as a piecewise SymPy vector: ``τ g/‖g‖`` if ``‖g‖ ≥ τ``, else ``g``.

    Parameters
    ----------
    g : sympy.Matrix, shape ``(n, 1)``, or a sequence or NumPy array of length ``n``
        The gradient (any real entries: numbers or SymPy expressions).
    threshold : number or sympy expression
        The threshold ``τ > 0`` (named as :func:`rnntheory.remedies.clip_by_norm`
        names it; the former keyword ``tau`` still works for one release, with a
        ``DeprecationWarning``).

    Numbers are ``int``, ``float``, ``Fraction`` or NumPy scalars; strings are
    never parsed.

    Returns
    -------
    sympy.Matrix
        Entries are ``Piecewise`` expressions.

    Raises
    ------
    TypeError
        If ``g`` or ``threshold`` holds a string or another non-numeric object.
    ValueError
        If ``g`` is not a non-empty column vector, or ``threshold`` is a number that
        is not real, finite and positive.

    Examples
    --------
    >>> import sympy as sp
    >>> clip_by_norm(sp.Matrix([3, 4]), 1).T
    Matrix([[3/5, 4/5]])

    Eq. 13 of the article.
    """
    g = sym_matrix("g", g)
    if g.shape[1] != 1 or g.shape[0] == 0:
        raise ValueError(f"`g` must be a column vector with at least one entry, got shape {g.shape}")
    tau = sym_scalar("threshold", threshold)
    if tau.is_number and not (tau.is_extended_real and tau.is_finite and tau > 0):
        raise ValueError(f"`threshold` must be a finite real number > 0, got {tau}")
    norm = sp.sqrt(sum(gi**2 for gi in g))
    return g.applyfunc(lambda gi: sp.Piecewise((tau * gi / norm, norm >= tau), (gi, True)))


@dataclass(frozen=True)
class ClippingProof:
    """The four properties of Eq. 13 (each an :class:`~rnntheory.symbolic._base.Identity`).

    Attributes
    ----------
    norm_is_tau, same_direction, idempotent, identity_below : Identity
    """

    norm_is_tau: Identity
    same_direction: Identity
    idempotent: Identity
    identity_below: Identity

    @property
    def holds(self) -> bool:
        """All four hold."""
        return all((self.norm_is_tau, self.same_direction, self.idempotent, self.identity_below))


@cached(maxsize=8)
def prove_clipping(n: int = 3) -> ClippingProof:
    """Prove Eq. 13's properties for ``g`` a vector of ``n`` real symbols and ``τ > 0``.

    With ``‖g‖ ≥ τ``: (1) ``‖τ g/‖g‖‖ = τ``; (2) the clipped vector is ``c g``
    with ``c = τ/‖g‖ > 0`` (same direction); (3) clipping the clipped vector
    changes nothing (its norm is ``τ ≥ τ``, and ``τ·(τ g/‖g‖)/τ = τ g/‖g‖``);
    (4) below the threshold (here ``g = (τ/(2√n), …)``) the map is the identity.

    Examples
    --------
    >>> prove_clipping(2).holds
    True

    Eq. 13 of the article; Pascanu et al. 2013, Alg. 1.
    """
    n = check_int_arg("n", n, 1, 8)
    tau = sp.Symbol("tau", positive=True)
    g = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"g_{i}", real=True))
    norm = sp.sqrt(sum(gi**2 for gi in g))
    clipped = tau * g / norm  # the branch ‖g‖ ≥ τ
    cnorm = sp.simplify(sp.sqrt(sum(ci**2 for ci in clipped)))
    p1 = Identity("‖τ g/‖g‖‖ = τ", sp.simplify(cnorm - tau) == 0, cnorm - tau)
    r = sp.Symbol("r", positive=True)  # ‖g‖, positive since ‖g‖ ≥ τ > 0
    c = tau / r
    ok2, R2 = is_zero_matrix(clipped - (tau / norm) * g)
    p2 = Identity("τ g/‖g‖ = c g with c = τ/‖g‖ > 0", ok2 and bool(c.is_positive), R2)
    # Clip again: the norm of the clipped vector is τ, so the first branch applies.
    again_branch = bool(sp.Ge(cnorm, tau))
    ok3, R3 = is_zero_matrix(tau * clipped / cnorm - clipped)
    p3 = Identity("clip(clip(g)) = clip(g)", ok3 and again_branch, R3)
    small = sp.Matrix([tau / (2 * sp.sqrt(n))] * n)
    ok4, R4 = is_zero_matrix(clip_by_norm(small, tau) - small)
    p4 = Identity("clip(g) = g when ‖g‖ < τ", ok4, R4)
    return ClippingProof(p1, p2, p3, p4)
