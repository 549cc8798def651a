"""Initialisers for recurrent weights: orthogonal families and leaky retentions.

Every function returns a NumPy array (float64 by default). The orthogonal
families are the remedy of the article's "orthogonal initialisation"
paragraph; :func:`leaky_alpha` draws the per-unit coefficients of leaky
integration units (Eq. 14).

* :func:`haar_orthogonal`: a Haar-distributed orthogonal matrix, from the QR
  factorisation of a Gaussian matrix with the sign correction
  ``Q ← Q · diag(sign(diag R))`` (Mezzadri 2007). Without the correction the
  law depends on the QR routine's sign convention and is **not** Haar.
* :func:`scaled_orthogonal`: ``scale`` times a Haar orthogonal matrix
  (all singular values equal to ``scale``).
* :func:`identity`: ``scale · I``, the IRNN initialisation (Le, Jaitly &
  Hinton 2015, used with ReLU units).
* :func:`henaff`: ``W = expm(A)`` with ``A`` block-diagonal skew-symmetric
  made of 2 × 2 rotation generators with angles from ``U[−π, π]`` (Henaff,
  Szlam & LeCun 2016), optionally conjugated by a Haar orthogonal matrix.
* :func:`gate_blocks`: ``k`` independent ``n × n`` blocks stacked vertically,
  the layout of the recurrent weights of an LSTM (``k = 4``) or GRU (``k = 3``).
* :func:`leaky_alpha`: per-unit retention coefficients ``α`` of Eq. 14 drawn
  from a range given either as retentions or as leak rates ``a = 1 − α``.

What orthogonality gives, and what it does not (claim C33): for a *linear*
RNN, ``‖∂h_t/∂h_k‖ = ‖W^(t−k)‖ = 1`` on every pair; with a saturating ``f`` the
step Jacobians are ``diag(f′(a_t)) W`` and ``‖∂h_t/∂h_k‖ ≤ Π_i max_j |f′(a_i)_j|``,
which still vanishes.

Examples
--------
>>> import numpy as np
>>> from rnntheory import init
>>> Q = init.haar_orthogonal(4, seed=0)
>>> bool(np.allclose(Q.T @ Q, np.eye(4), atol=1e-12))
True
>>> init.leaky_alpha(3, 0.02, 0.2, kind="leak", seed=0).round(3)
array([0.865, 0.931, 0.973])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._linalg import sign_corrected_q
from ._validation import all_finite, as_generator, check_choice, check_dtype, check_int, check_real

__all__ = [
    "ALPHA_KINDS",
    "gate_blocks",
    "haar_orthogonal",
    "henaff",
    "henaff_generator",
    "identity",
    "leaky_alpha",
    "scaled_orthogonal",
]

ALPHA_KINDS = ("retention", "leak")

Seed = int | np.random.Generator | None


def _generator(seed: Any) -> np.random.Generator:
    """A PCG64 generator from an int or ``None``; a Generator is used as it is
    (so that callers can draw several initialisations from one stream)."""
    return as_generator("seed", seed)


def _float_dtype(dtype: Any) -> np.dtype:
    return check_dtype("dtype", dtype)


def _cast(name: str, value: float, W: np.ndarray, dt: np.dtype) -> np.ndarray:
    """``W`` (float64) cast to ``dt``, refusing a factor ``value`` that overflows ``dt``."""
    if dt != W.dtype and abs(value) > float(np.finfo(dt).max):
        raise ValueError(
            f"`{name}` must be at most {float(np.finfo(dt).max):.6g} for dtype {dt}"
            f" (larger entries overflow), got {value}"
        )
    return W.astype(dt)


def haar_orthogonal(n: int, *, seed: Seed = None, dtype: Any = np.float64) -> np.ndarray:
    r"""A Haar-distributed random orthogonal matrix.

    With ``M`` an ``n × n`` matrix of independent ``N(0, 1)`` entries and
    ``M = QR`` its QR factorisation,

    .. math::

        W = Q \operatorname{diag}(\operatorname{sign} R_{11}, \dots, \operatorname{sign} R_{nn})

    is distributed according to the Haar measure on ``O(n)`` (Mezzadri 2007,
    "How to generate random matrices from the classical compact groups",
    Notices AMS 54). The sign correction makes the factorisation unique
    (``R`` with a positive diagonal), so the law of ``W`` inherits the
    invariance of the Gaussian law under ``M ↦ UM``; LAPACK's QR alone does not.

    Parameters
    ----------
    n : int
        Size, ``n ≥ 1``.
    seed : int, numpy Generator or None
        Seed of NumPy's PCG64 generator, or a Generator to draw from (the
        ``n²`` normals are drawn from it in one call).
    dtype : float32 or float64
        Dtype of the result (computed in float64).

    Returns
    -------
    ndarray, shape ``(n, n)``
        ``WᵀW = I`` to rounding; every eigenvalue has modulus 1.

    Raises
    ------
    TypeError
        On a non-integer ``n``, a seed that is not an int, Generator or None,
        or a ``dtype`` other than float32/float64.
    ValueError
        On ``n < 1`` or a seed outside ``[0, 2**64)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.init import haar_orthogonal
    >>> W = haar_orthogonal(5, seed=1)
    >>> bool(np.allclose(np.abs(np.linalg.eigvals(W)), 1.0))
    True
    """
    n = check_int("n", n, minimum=1)
    dt = _float_dtype(dtype)
    rng = _generator(seed)
    return sign_corrected_q(rng.normal(size=(n, n))).astype(dt)


def scaled_orthogonal(
    n: int, scale: float, *, seed: Seed = None, dtype: Any = np.float64
) -> np.ndarray:
    """``scale`` times a Haar orthogonal matrix: every singular value is ``scale``.

    So ``γ_W = σ_max(W) = scale`` and every eigenvalue has modulus ``scale``:
    for a linear RNN ``‖∂h_t/∂h_k‖ = scale^(t−k)`` exactly.

    Parameters
    ----------
    n : int
        Size.
    scale : float
        Non-negative factor.
    seed, dtype
        As in :func:`haar_orthogonal`.

    Returns
    -------
    ndarray, shape ``(n, n)``

    Raises
    ------
    ValueError
        On ``scale < 0`` or not finite, ``n < 1``, or a ``scale`` beyond the
        largest number of ``dtype`` (the entries would overflow).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.init import scaled_orthogonal
    >>> W = scaled_orthogonal(3, 0.5, seed=0)
    >>> np.linalg.svd(W, compute_uv=False).round(12)
    array([0.5, 0.5, 0.5])
    """
    scale = check_real("scale", scale, low=0.0)
    n = check_int("n", n, minimum=1)
    dt = _float_dtype(dtype)
    return _cast("scale", scale, scale * haar_orthogonal(n, seed=seed), dt)


def identity(
    n: int, scale: float = 1.0, *, seed: Seed = None, dtype: Any = np.float64
) -> np.ndarray:
    """``scale · I``: the IRNN initialisation of the recurrent matrix.

    Le, Jaitly & Hinton 2015 ("A simple way to initialize recurrent networks
    of rectified linear units") start ReLU RNNs from ``W_hh = I`` and zero
    biases: at initialisation a unit copies its state, and with ``f = relu``
    on active units the step Jacobian is the identity. ``scale < 1`` gives
    their "np-RNN"-like shrunk variants.

    Parameters
    ----------
    n : int
        Size.
    scale : float
        Non-negative multiple of the identity.
    seed : ignored
        Accepted so that every initialiser of this module has the same call
        signature (see :func:`gate_blocks`); still checked like every seed.
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape ``(n, n)``

    Raises
    ------
    ValueError
        On ``scale < 0``, ``n < 1``, or a ``scale`` beyond the largest number
        of ``dtype``.

    Examples
    --------
    >>> from rnntheory.init import identity
    >>> identity(2, 0.9)
    array([[0.9, 0. ],
           [0. , 0.9]])
    """
    n = check_int("n", n, minimum=1)
    scale = check_real("scale", scale, low=0.0)
    dt = _float_dtype(dtype)
    if seed is not None:  # ignored, but still a seed: refuse what no other initialiser takes
        _generator(seed)
    return _cast("scale", scale, scale * np.eye(n), dt)


def henaff_generator(n: int, *, seed: Seed = None, conjugate: bool = False) -> np.ndarray:
    r"""The skew-symmetric generator ``A`` of :func:`henaff` (float64).

    ``A = blockdiag(B(θ_1), …, B(θ_m)[, 0])`` with
    ``B(θ) = [[0, θ], [−θ, 0]]``, ``m = ⌊n/2⌋`` angles ``θ_j ~ U[−π, π]`` and,
    for odd ``n``, one trailing ``1 × 1`` zero block. With ``conjugate=True``,
    ``A ← Q A Qᵀ`` for a Haar orthogonal ``Q`` (still skew-symmetric).

    Parameters
    ----------
    n : int
        Size.
    seed : int, numpy Generator or None
        The angles are drawn first, then (with ``conjugate``) the ``n²``
        normals of ``Q``.
    conjugate : bool
        Rotate the invariant planes to random directions.

    Returns
    -------
    ndarray, shape ``(n, n)``
        ``Aᵀ = −A``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.init import henaff_generator
    >>> A = henaff_generator(3, seed=0)
    >>> bool(np.array_equal(A.T, -A)), float(A[2, 2])
    (True, 0.0)
    """
    n = check_int("n", n, minimum=1)
    if not isinstance(conjugate, bool | np.bool_):
        raise TypeError(f"`conjugate` must be a bool, got {conjugate!r}")
    rng = _generator(seed)
    theta = rng.uniform(-np.pi, np.pi, n // 2)
    A = np.zeros((n, n))
    idx = 2 * np.arange(n // 2)
    A[idx, idx + 1] = theta
    A[idx + 1, idx] = -theta
    if conjugate:
        Q = haar_orthogonal(n, seed=rng)
        A = Q @ A @ Q.T
        A = 0.5 * (A - A.T)  # exactly skew-symmetric after rounding
    return A


def henaff(
    n: int, *, seed: Seed = None, conjugate: bool = False, dtype: Any = np.float64
) -> np.ndarray:
    r"""Henaff et al.'s orthogonal initialisation ``W = expm(A)``, ``A`` skew-symmetric.

    Henaff, Szlam & LeCun 2016 ("Recurrent orthogonal networks and long-memory
    tasks", ICML) initialise ``W_hh`` as the exponential of a block-diagonal
    skew-symmetric matrix whose ``2 × 2`` blocks carry angles drawn from
    ``U[−π, π]`` (*recalled*: the paper's exact sampling range should be
    checked against its §4). The exponential of each block is a plane rotation,

    .. math::

        \exp\begin{pmatrix} 0 & \theta \\ -\theta & 0 \end{pmatrix}
        = \begin{pmatrix} \cos\theta & \sin\theta \\ -\sin\theta & \cos\theta \end{pmatrix},

    so ``W`` is computed in closed form (no series): a rotation by ``θ_j`` in
    each coordinate plane ``(2j, 2j+1)``, and a fixed coordinate for odd ``n``.
    Then ``W`` is orthogonal with ``det W = 1`` (``W ∈ SO(n)``) and its
    eigenvalues are ``e^{±iθ_j}`` (and 1), spread uniformly over the circle.
    With ``conjugate=True`` the planes are rotated by a Haar orthogonal ``Q``:
    ``W = Q expm(A) Qᵀ = expm(Q A Qᵀ)``, same eigenvalues, no longer
    block-diagonal in the unit basis (a library extension; the paper's matrix
    is the block-diagonal one).

    Parameters
    ----------
    n : int
        Size.
    seed : int, numpy Generator or None
        As in :func:`henaff_generator` (the same seed gives the ``A`` whose
        exponential this is).
    conjugate : bool
        Conjugate by a Haar orthogonal matrix.
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape ``(n, n)``
        ``WᵀW = I``, ``det W = 1``.

    Raises
    ------
    TypeError, ValueError
        On a bad ``n``, ``seed``, ``conjugate`` or ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.init import henaff
    >>> W = henaff(4, seed=0)
    >>> round(float(np.linalg.det(W)), 12), bool(np.allclose(W.T @ W, np.eye(4)))
    (1.0, True)
    """
    dt = _float_dtype(dtype)
    n = check_int("n", n, minimum=1)
    if not isinstance(conjugate, bool | np.bool_):
        raise TypeError(f"`conjugate` must be a bool, got {conjugate!r}")
    rng = _generator(seed)
    A = henaff_generator(n, seed=rng)  # block-diagonal; conjugation applied below
    W = np.eye(n)
    idx = 2 * np.arange(n // 2)
    theta = A[idx, idx + 1]
    c, s = np.cos(theta), np.sin(theta)
    W[idx, idx] = c
    W[idx + 1, idx + 1] = c
    W[idx, idx + 1] = s
    W[idx + 1, idx] = -s
    if conjugate:
        Q = haar_orthogonal(n, seed=rng)
        W = Q @ W @ Q.T
    return W.astype(dt)


def gate_blocks(
    n: int,
    k: int,
    initializer: Callable[..., np.ndarray] = haar_orthogonal,
    *,
    seed: Seed = None,
    dtype: Any = np.float64,
    **kwargs: Any,
) -> np.ndarray:
    """``k`` independent ``n × n`` blocks stacked vertically: ``(k·n, n)``.

    The recurrent weights of a gated cell in PyTorch's layout: block ``j`` is
    rows ``j·n … (j+1)·n − 1``, in torch's gate order ``(i, f, g, o)`` for the
    LSTM (``k = 4``) and ``(r, z, n)`` for the GRU (``k = 3``). Each block is
    drawn by ``initializer(n, seed=rng, **kwargs)`` from one generator, one
    block after the other, so each gate's block is, e.g., Haar orthogonal by
    itself (the stacked matrix is not square and cannot be orthogonal).

    Parameters
    ----------
    n : int
        Hidden size.
    k : int
        Number of gate blocks.
    initializer : callable
        One of this module's matrix initialisers (or any callable with the
        signature ``f(n, *, seed, **kwargs) -> (n, n) array``).
    seed : int, numpy Generator or None
    dtype : float32 or float64
    **kwargs
        Passed to ``initializer`` (e.g. ``scale`` for :func:`scaled_orthogonal`).

    Returns
    -------
    ndarray, shape ``(k·n, n)``

    Raises
    ------
    TypeError
        When ``initializer`` is not callable or returns something that is not
        a real array.
    ValueError
        When it does not return a finite ``(n, n)`` array, or on bad sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.init import gate_blocks, haar_orthogonal
    >>> W = gate_blocks(3, 4, haar_orthogonal, seed=0)
    >>> W.shape, bool(np.allclose(W[3:6].T @ W[3:6], np.eye(3)))
    ((12, 3), True)
    """
    n = check_int("n", n, minimum=1)
    k = check_int("k", k, minimum=1)
    if not callable(initializer):
        raise TypeError(f"`initializer` must be callable, got {initializer!r}")
    dt = _float_dtype(dtype)
    rng = _generator(seed)
    blocks = []
    for _ in range(k):
        out = initializer(n, seed=rng, **kwargs)
        try:
            B = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"`initializer` must return a real ({n}, {n}) array, got {type(out).__name__}"
            ) from None
        if B.shape != (n, n):
            raise ValueError(f"`initializer` must return an ({n}, {n}) array, got shape {B.shape}")
        if not all_finite(B):
            bad = int(B.size - np.count_nonzero(np.isfinite(B)))
            raise ValueError(f"`initializer` must return finite entries, got {bad} NaN/inf entries")
        blocks.append(B)
    return np.concatenate(blocks, axis=0).astype(dt)


def leaky_alpha(
    n: int,
    low: float = 0.02,
    high: float = 0.2,
    *,
    kind: str,
    seed: Seed = None,
    dtype: Any = np.float64,
) -> np.ndarray:
    r"""Per-unit retention coefficients ``α`` of Eq. 14, drawn from a range.

    Eq. 14 reads ``h_t = α ⊙ h_{t−1} + (1 − α) ⊙ f(a_t)``: ``α`` is the
    *retention*, and a unit's time constant is ``1/(1 − α)`` steps. The same
    units are often written with the *leak rate* ``a = 1 − α``
    (``h_t = (1 − a) h_{t−1} + a f(a_t)``, Jaeger's leaky ESNs and Bengio et
    al.'s leaky units). This function draws ``u_i ~ U[low, high]`` per unit and
    returns the retention

    .. math::

        \alpha_i = u_i \;(\text{kind} = \text{"retention"}), \qquad
        \alpha_i = 1 - u_i \;(\text{kind} = \text{"leak"}).

    The article's range ``(0.02, 0.2)`` (claim C27) only makes units slow as
    leak rates: read as retentions the time constants are 1.02–1.25 steps
    (fast units), read as leak rates they are 5–50 steps. ``kind`` has no
    default on purpose; see the C27 note in ``docs/conventions.md``.

    Parameters
    ----------
    n : int
        Number of units.
    low, high : float
        The range, ``0 ≤ low ≤ high ≤ 1``.
    kind : {"retention", "leak"}
        What the numbers in the range are.
    seed : int, numpy Generator or None
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape ``(n,)``
        Retentions ``α ∈ [0, 1]``, as :class:`~rnntheory.ElmanRNN` takes them.

    Raises
    ------
    ValueError
        On an unknown ``kind`` or a range outside ``[0, 1]`` or with ``low > high``.

    Examples
    --------
    >>> from rnntheory.init import leaky_alpha
    >>> a = leaky_alpha(1000, 0.02, 0.2, kind="leak", seed=0)
    >>> bool(a.min() >= 0.8 and a.max() <= 0.98)
    True

    Eq. 14 of the article; Bengio, Boulanger-Lewandowski & Pascanu 2013.
    """
    n = check_int("n", n, minimum=1)
    kind = check_choice("kind", kind, ALPHA_KINDS)
    low = check_real("low", low, low=0.0, high=1.0)
    high = check_real("high", high, low=0.0, high=1.0)
    if low > high:
        raise ValueError(f"`low` must be <= `high` = {high}, got {low}")
    dt = _float_dtype(dtype)
    u = _generator(seed).uniform(low, high, n)
    alpha = u if kind == "retention" else 1.0 - u
    return np.clip(alpha, 0.0, 1.0).astype(dt)
