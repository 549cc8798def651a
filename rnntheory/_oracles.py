"""Independent oracles shared by the checks, the proofs and the tests.

Each function here is written from a definition, never from the kernels it is
used to check: central finite differences, complex-step differences, products
of Jacobians in mpmath's unbounded exponent range, and one step of the Elman
recurrence in plain NumPy. They are package-internal (a leaf of the package:
they import NumPy, the standard library, the validation helpers and, inside a
function, mpmath).

Conventions: Jacobians are in numerator layout, ``J[a, b] = ∂fun(x)[a] / ∂x[b]``;
for an ``x`` of any shape the result has shape ``fun(x).shape + x.shape``, so
the Jacobian of a scalar function is its gradient, shaped like ``x``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ._validation import check_choice, check_real

__all__ = [
    "central_gradient",
    "central_jacobian",
    "complex_step_gradient",
    "complex_step_jacobian",
    "elman_step",
    "mp_log_norms",
    "rel_err",
]


def _step_size(eps: float, xj: Any, relative: bool) -> float:
    return eps * max(1.0, abs(float(xj))) if relative else eps


def central_jacobian(
    fun: Callable[[np.ndarray], Any],
    x: Any,
    eps: float = 1e-6,
    *,
    relative: bool = False,
) -> np.ndarray:
    r"""Central finite-difference Jacobian of ``fun`` at ``x``, numerator layout.

    .. math::

        J[\ldots, j] = \frac{f(x + h_j e_j) - f(x - h_j e_j)}{2 h_j},

    with ``h_j = eps`` or, with ``relative=True``, ``h_j = eps · max(1, |x_j|)``
    (a step that follows the scale of the coordinate). The truncation error is
    ``O(h²)`` and the rounding error ``O(u/h)``: about 1e-10 relative for
    ``eps = 1e-6`` on smooth functions of moderate size.

    Parameters
    ----------
    fun : callable
        ``fun(x)`` returns an array (or a scalar) of any shape; numbers of
        arbitrary precision (mpmath) are differenced in their own arithmetic
        and the quotient rounded to float64.
    x : array_like of float
        The point, of any shape; it is not modified.
    eps : float, default 1e-6
        The step, > 0.
    relative : bool, default False
        Scale the step of coordinate ``j`` by ``max(1, |x_j|)``.

    Returns
    -------
    numpy.ndarray
        Shape ``np.shape(fun(x)) + x.shape``: for 1-D ``fun`` and ``x``,
        ``J[a, b] = ∂fun[a]/∂x[b]``; for a scalar ``fun``, the gradient.

    Raises
    ------
    ValueError
        If ``eps`` is not a finite number > 0.

    Examples
    --------
    The Jacobian of ``tanh(W x)`` is ``diag(sech²(W x)) W``:

    >>> import numpy as np
    >>> W = np.array([[0.5, -1.0], [2.0, 0.25]])
    >>> x = np.array([0.3, -0.2])
    >>> J = central_jacobian(lambda v: np.tanh(W @ v), x)
    >>> bool(np.allclose(J, (1.0 / np.cosh(W @ x) ** 2)[:, None] * W, rtol=0, atol=1e-9))
    True
    """
    eps = check_real("eps", eps, low=0.0, low_open=True)
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for idx in np.ndindex(x.shape):
        step = _step_size(eps, x[idx], relative)
        e = np.zeros(x.shape)
        e[idx] = step
        d = np.asarray((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * step))
        # a function of arbitrary-precision numbers (mpmath) is differenced in its
        # own arithmetic, then rounded
        cols.append(d.astype(np.float64) if d.dtype == object else d)
    if not cols:  # an empty x: no columns
        return np.zeros(np.shape(fun(x)) + x.shape)
    return np.stack(cols, axis=-1).reshape(np.shape(cols[0]) + x.shape)


def complex_step_jacobian(
    fun: Callable[[np.ndarray], Any],
    x: Any,
    h: float = 1e-30,
) -> np.ndarray:
    r"""Complex-step Jacobian of ``fun`` at a real ``x``, numerator layout.

    .. math::

        J[\ldots, j] = \operatorname{Im} f(x + i h e_j) / h,

    exact to rounding (no subtraction, so no cancellation) for ``fun`` analytic
    and real on real arguments, written with operations that carry a complex
    perturbation (no ``abs``, ``max`` or casts to float). Squire & Trapp 1998,
    "Using complex variables to estimate derivatives of real functions".

    Parameters
    ----------
    fun : callable
        ``fun(z)`` accepts a complex array shaped like ``x``.
    x : array_like of float
        The real point, of any shape.
    h : float, default 1e-30
        The imaginary step, > 0.

    Returns
    -------
    numpy.ndarray of float64
        Shape ``np.shape(fun(x)) + x.shape``.

    Raises
    ------
    ValueError
        If ``h`` is not a finite number > 0.

    Examples
    --------
    The derivative of ``x³`` is ``3x²``, to the last digit:

    >>> import numpy as np
    >>> complex_step_jacobian(lambda v: v**3, np.array([2.0]))
    array([[12.]])
    """
    h = check_real("h", h, low=0.0, low_open=True)
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for idx in np.ndindex(x.shape):
        z = x.astype(complex)
        z[idx] += 1j * h
        cols.append(np.imag(np.asarray(fun(z))) / h)
    if not cols:
        return np.zeros(np.shape(fun(x.astype(complex))) + x.shape)
    return np.stack(cols, axis=-1).reshape(np.shape(cols[0]) + x.shape)


def _gradient_keys(params: Mapping[str, Any], keys: Any) -> list[str]:
    if keys is None:
        return [k for k, v in params.items() if v is not None]
    return list(keys)


def _copies(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: None if v is None else np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}


def _entrywise(
    params: Mapping[str, Any],
    keys: Any,
    partial: Callable[[str, np.ndarray, tuple[int, ...]], Any],
) -> dict[str, np.ndarray]:
    """``{k: g}`` with ``g[idx] = partial(k, params[k] as float64, idx)`` for every
    entry of every differentiated parameter: the loop both gradients share."""
    out: dict[str, np.ndarray] = {}
    for k in _gradient_keys(params, keys):
        base = np.asarray(params[k], dtype=np.float64)
        g = np.zeros(base.shape)
        for idx in np.ndindex(base.shape):
            g[idx] = partial(k, base, idx)
        out[k] = g
    return out


def central_gradient(
    fun: Callable[[dict[str, Any]], Any],
    params: Mapping[str, Any],
    eps: float = 1e-6,
    *,
    keys: Any = None,
) -> dict[str, np.ndarray]:
    r"""Central finite differences of a scalar function of a parameter dict.

    For each entry ``θ`` of each array ``params[k]``:
    ``(fun(θ + ε) − fun(θ − ε)) / 2ε``, the other entries held fixed.

    Parameters
    ----------
    fun : callable
        ``fun(p)`` returns a real scalar for a dict ``p`` with the keys of
        ``params``.
    params : mapping of str to array_like
        The point; it is not modified (``fun`` receives copies).
    eps : float, default 1e-6
        The step, > 0.
    keys : iterable of str, optional
        The parameters to differentiate; default every key whose value is not
        None.

    Returns
    -------
    dict of str to numpy.ndarray
        ``∂fun/∂params[k]``, shaped like ``params[k]``, for each key.

    Raises
    ------
    ValueError
        If ``eps`` is not a finite number > 0.

    Examples
    --------
    ``∂(uᵀ A u)/∂u = (A + Aᵀ) u`` and ``∂(uᵀ A u)/∂A = u uᵀ``:

    >>> import numpy as np
    >>> p = {"A": np.array([[1.0, 2.0], [0.0, 3.0]]), "u": np.array([0.5, -1.0])}
    >>> g = central_gradient(lambda q: q["u"] @ q["A"] @ q["u"], p)
    >>> bool(np.allclose(g["u"], (p["A"] + p["A"].T) @ p["u"], rtol=0, atol=1e-9))
    True
    >>> bool(np.allclose(g["A"], np.outer(p["u"], p["u"]), rtol=0, atol=1e-9))
    True
    """
    eps = check_real("eps", eps, low=0.0, low_open=True)

    def partial(k: str, base: np.ndarray, idx: tuple[int, ...]) -> Any:
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        return (fun({**_copies(params), k: plus}) - fun({**_copies(params), k: minus})) / (2 * eps)

    return _entrywise(params, keys, partial)


def complex_step_gradient(
    fun: Callable[[dict[str, Any]], Any],
    params: Mapping[str, Any],
    h: float = 1e-30,
    *,
    keys: Any = None,
) -> dict[str, np.ndarray]:
    r"""Complex-step gradient of a real-analytic scalar function of a parameter dict.

    For each entry ``θ`` of each array ``params[k]``: ``Im fun(θ + ih) / h``,
    the other parameters passed unchanged (real). Exact to rounding for an
    analytic ``fun`` written with complex-safe operations (see
    :func:`complex_step_jacobian`).

    Parameters
    ----------
    fun : callable
        ``fun(p)`` returns a scalar for a dict ``p`` (one array of it complex).
    params : mapping of str to array_like
        The real point; it is not modified.
    h : float, default 1e-30
        The imaginary step, > 0.
    keys : iterable of str, optional
        The parameters to differentiate; default every key whose value is not
        None.

    Returns
    -------
    dict of str to numpy.ndarray
        ``∂fun/∂params[k]``, shaped like ``params[k]``, for each key.

    Raises
    ------
    ValueError
        If ``h`` is not a finite number > 0.

    Examples
    --------
    ``∂ Σ exp(a) b / ∂a = exp(a) b``:

    >>> import numpy as np
    >>> p = {"a": np.array([0.0, 1.0]), "b": np.array([2.0, 3.0])}
    >>> g = complex_step_gradient(lambda q: np.sum(np.exp(q["a"]) * q["b"]), p, keys=["a"])
    >>> bool(np.allclose(g["a"], np.exp(p["a"]) * p["b"], rtol=1e-15, atol=0))
    True
    """
    h = check_real("h", h, low=0.0, low_open=True)

    def partial(k: str, base: np.ndarray, idx: tuple[int, ...]) -> Any:
        z = base.astype(complex)
        z[idx] += 1j * h
        return np.imag(fun({**params, k: z})) / h

    return _entrywise(params, keys, partial)


def rel_err(a: Any, b: Any) -> float:
    r"""Largest absolute difference relative to the reference's scale.

    .. math:: \max|a - b| / \max(1, \max|b|)

    An absolute error for references of entries below 1, a relative one above.

    Parameters
    ----------
    a : array_like
        The value checked.
    b : array_like
        The reference.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rel_err(np.array([101.0, 0.0]), np.array([100.0, 0.0]))
    0.01
    >>> rel_err(np.array([0.25]), np.array([0.5]))
    0.25
    """
    a = np.asarray(a)
    b = np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale)


def mp_log_norms(J: Any) -> np.ndarray:
    r"""``ln σ_max(J_t ⋯ J_{k+1})`` for every pair ``k ≤ t``, in mpmath.

    For each ``t`` the product is extended to the right, ``P ← P J_{k+1}``, in
    mpmath at 30 digits (unbounded exponents; the float64 entries are converted
    exactly) and σ_max is mpmath's SVD (``svd_r``). So nothing underflows or
    overflows where a float64 product would.

    Parameters
    ----------
    J : array_like of float, shape (T, n, n)
        The step Jacobians, ``J[i]`` standing for ``J_{i+1}``.

    Returns
    -------
    numpy.ndarray, shape (T + 1, T + 1)
        ``out[t, k] = ln σ_max(J_t ⋯ J_{k+1})`` for ``k < t``, ``out[t, t] = 0``;
        ``-inf`` above the diagonal and, once a product is exactly zero, for
        that ``t`` and every smaller ``k``.

    Examples
    --------
    ``diag(2, 1/2)`` twice: ``σ_max = 4``; the lone ``diag(1e-300, 0)`` gives
    ``ln 1e-300``:

    >>> import numpy as np
    >>> L = mp_log_norms(np.stack([np.diag([2.0, 0.5])] * 2))
    >>> bool(np.isclose(L[2, 0], np.log(4.0), rtol=1e-15))
    True
    >>> float(mp_log_norms(np.diag([1e-300, 0.0])[None])[1, 0]) == float(np.log(1e-300))
    True
    """
    import mpmath

    J = np.asarray(J)
    T, n, _ = J.shape
    out = np.full((T + 1, T + 1), -np.inf)
    with mpmath.workdps(30):
        mats = [mpmath.matrix(Ji.tolist()) for Ji in J]
        for t in range(T + 1):
            out[t, t] = 0.0
            P = mpmath.eye(n)
            for k in range(t - 1, -1, -1):
                P = P * mats[k]
                top = max(mpmath.svd_r(P, compute_uv=False))
                if top == 0:
                    break
                out[t, k] = float(mpmath.log(top))
    return out


def elman_step(
    W_hh: Any,
    W_hx: Any,
    b_h: Any,
    h: Any,
    x: Any,
    *,
    f: Callable[[Any], Any] = np.tanh,
    form: str = "standard",
    alpha: Any = None,
) -> Any:
    r"""One step of the Elman recurrence, written from the definitions.

    * ``form="standard"`` (Eq. 2b): ``g = f(W_hh h + W_hx x + b_h)``;
    * ``form="pascanu"`` (Eq. 2a): ``g = W_hh f(h) + W_hx x + b_h``;
    * leaky (Eq. 14), with ``alpha`` the retention coefficient (scalar or per
      unit): ``h' = α h + (1 − α) g``; without it, ``h' = g``.

    Real weights are taken in float64; ``h`` and ``x`` are not cast, so a
    complex perturbation flows through (with an analytic ``f``).

    Parameters
    ----------
    W_hh : array_like, shape (n_hidden, n_hidden)
    W_hx : array_like, shape (n_hidden, n_in)
    b_h : array_like, shape (n_hidden,)
    h : array_like, shape (n_hidden,)
        The previous state ``h_{t−1}``.
    x : array_like, shape (n_in,)
        The input ``x_t``.
    f : callable, default numpy.tanh
        The activation, elementwise.
    form : {"standard", "pascanu"}, default "standard"
    alpha : float or array_like of shape (n_hidden,), optional
        The leak (retention coefficient); None for no leak.

    Returns
    -------
    numpy.ndarray, shape (n_hidden,)
        ``h_t``.

    Raises
    ------
    ValueError
        If ``form`` is not one of the two forms.

    Examples
    --------
    >>> import numpy as np
    >>> W, U, b = np.eye(2), np.ones((2, 1)), np.zeros(2)
    >>> h, x = np.array([0.5, -0.5]), np.array([0.5])
    >>> bool(np.allclose(elman_step(W, U, b, h, x), np.tanh([1.0, 0.0])))
    True
    >>> bool(np.allclose(elman_step(W, U, b, h, x, form="pascanu", alpha=0.5),
    ...                  0.5 * h + 0.5 * (np.tanh(h) + 0.5)))
    True
    """
    check_choice("form", form, ("standard", "pascanu"))
    W = _real64(W_hh)
    U = _real64(W_hx)
    b = _real64(b_h)
    g = f(W @ h + U @ x + b) if form == "standard" else W @ f(h) + U @ x + b
    if alpha is None:
        return g
    a = _real64(alpha)
    return a * h + (1.0 - a) * g


def _real64(v: Any) -> np.ndarray:
    arr = np.asarray(v)
    return arr if np.iscomplexobj(arr) else arr.astype(np.float64, copy=False)
