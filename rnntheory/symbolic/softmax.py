"""The error ``ŷ − y`` at the output (before Eq. 4 of the article), symbolically.

For softmax + cross-entropy, ``∂/∂z (−log softmax(z)_y) = softmax(z) − e_y``;
for a linear output with ``½‖z − y‖²``, ``∂/∂z = z − y``. For other pairings
(softmax + squared error) the gradient is not ``ŷ − y``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ._base import Identity, cached, check_int_arg, is_zero_matrix, sym_matrix

__all__ = [
    "logits",
    "prove_mse_linear_gradient",
    "prove_xent_gradient",
    "softmax",
    "softmax_mse_gradient",
]


def logits(C: int = 3) -> sp.Matrix:
    """A column of ``C`` real logit symbols ``z_0 … z_{C−1}`` (``C`` from 2 to 8).

    Examples
    --------
    >>> logits(2).T
    Matrix([[z_0, z_1]])
    """
    C = check_int_arg("C", C, 2, 8)
    return sp.Matrix(C, 1, lambda i, _: sp.Symbol(f"z_{i}", real=True))


def softmax(z: Any) -> sp.Matrix:
    """``softmax(z)_i = e^{z_i}/Σ_j e^{z_j}`` (Eq. 3 of the article).

    ``z`` is a column: a SymPy matrix ``(C, 1)`` or a sequence or NumPy array of
    numbers or SymPy expressions (strings are never parsed).

    Raises
    ------
    TypeError
        If ``z`` holds a string or another non-numeric object.
    ValueError
        If ``z`` is not a non-empty column.

    Examples
    --------
    >>> import sympy as sp
    >>> softmax(sp.Matrix([0, 0])).T
    Matrix([[1/2, 1/2]])
    """
    z = sym_matrix("z", z)
    if z.shape[1] != 1 or z.shape[0] == 0:
        raise ValueError(f"`z` must be a column vector with at least one entry, got shape {z.shape}")
    e = z.applyfunc(sp.exp)
    return e / sum(e)


@cached(maxsize=8)
def prove_xent_gradient(C: int = 3) -> Identity:
    """Prove ``∂/∂z (−log softmax(z)_y) = softmax(z) − e_y`` for every class ``y``.

    Examples
    --------
    >>> prove_xent_gradient(2).holds
    True

    Eqs. 3–4 of the article.
    """
    z = logits(C)
    p = softmax(z)
    res = []
    for y in range(C):
        loss = -sp.log(p[y])
        grad = sp.Matrix([sp.diff(loss, zi) for zi in z])
        res.append(grad - (p - sp.eye(C)[:, y]))
    ok, R = is_zero_matrix(sp.Matrix.hstack(*res))
    return Identity(f"∂(−log softmax(z)_y)/∂z = softmax(z) − e_y (C = {C}, every y)", ok, R)


@cached(maxsize=8)
def prove_mse_linear_gradient(C: int = 3) -> Identity:
    """Prove ``∂/∂z ½‖z − y‖² = z − y`` (linear output, squared error).

    Examples
    --------
    >>> prove_mse_linear_gradient(2).holds
    True
    """
    z = logits(C)
    y = sp.Matrix(C, 1, lambda i, _: sp.Symbol(f"y_{i}", real=True))
    loss = sum((z - y).applyfunc(lambda e: e**2)) / 2
    ok, R = is_zero_matrix(sp.Matrix([sp.diff(loss, zi) for zi in z]) - (z - y))
    return Identity(f"∂(½‖z − y‖²)/∂z = z − y (C = {C})", ok, R)


def softmax_mse_gradient(z: Any, y: Any) -> tuple[sp.Matrix, sp.Matrix]:
    """Gradient of ``½‖softmax(z) − y‖²`` w.r.t. ``z``, next to ``ŷ − y``.

    With ``p = softmax(z)`` the gradient is ``J_softmaxᵀ (p − y)``,
    ``J_softmax = diag(p) − p pᵀ``. Both results are formed as rational
    functions of ``e_i = exp(z_i)``, put over one denominator and factored, and
    only then is ``exp(z_i)`` put in. The result is exact however large the
    logits are (``exp(2**63)`` stays an unevaluated factor: nothing evaluates
    it numerically), and float logits lose nothing to cancellation: at
    ``z = (1e300, 0)``, ``y = (1, 0)`` the first entry is
    ``−2 e^{−2·10³⁰⁰}/(1 + e^{−10³⁰⁰})³`` although ``p₀`` rounds to 1.

    Parameters
    ----------
    z : sequence, NumPy array or sympy.Matrix
        Logits (numbers or SymPy expressions; strings are never parsed),
        length ``2 ≤ C ≤ 8``.
    y : sequence, NumPy array or sympy.Matrix
        Target, same length.

    Numbers must be finite and real; ``int``, ``float``, ``Fraction``, NumPy
    scalars and SymPy numbers of any size are accepted.

    Returns
    -------
    gradient, error : sympy.Matrix
        The true gradient ``J_softmaxᵀ (ŷ − y)`` and the article's ``ŷ − y``.

    Raises
    ------
    TypeError
        If ``z`` or ``y`` holds a string or another non-numeric object.
    ValueError
        If ``z`` and ``y`` are not columns of one length from 2 to 8, or hold a
        number that is not finite and real.

    Examples
    --------
    >>> g, e = softmax_mse_gradient([0, 0], [1, 0])
    >>> g.T, e.T
    (Matrix([[-1/4, 1/4]]), Matrix([[-1/2, 1/2]]))
    """
    zm = sym_matrix("z", z)
    ym = sym_matrix("y", y)
    if zm.shape != ym.shape or zm.shape[1] != 1 or not 2 <= zm.shape[0] <= 8:
        raise ValueError(
            f"`z` and `y` must be column vectors of one length from 2 to 8, got shapes {zm.shape} and {ym.shape}"
        )
    for name, M in (("z", zm), ("y", ym)):
        for i, v in enumerate(M):
            if v.is_number and not (v.is_extended_real and v.is_finite):
                raise ValueError(f"`{name}` must hold finite real numbers, got {v} at index {i}")
    C = zm.shape[0]
    e = [sp.Dummy(f"e_{i}", positive=True) for i in range(C)]
    total = sum(e, sp.Integer(0))
    p = sp.Matrix([ei / total for ei in e])
    err = p - ym
    pe = sum((p[j] * err[j] for j in range(C)), sp.Integer(0))
    grad = sp.Matrix([p[i] * (err[i] - pe) for i in range(C)])  # (diag(p) − p pᵀ)(p − y)
    rep = {ei: sp.exp(zi) for ei, zi in zip(e, zm, strict=True)}
    return grad.applyfunc(sp.factor).xreplace(rep), err.applyfunc(sp.factor).xreplace(rep)
