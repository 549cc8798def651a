"""Hypothesis strategies for recurrent weights, models and sequences.

Public so that users can property-test their own claims about RNN gradients
with the same generators the library's tests use. Every matrix strategy draws
its entries with Hypothesis (so failures shrink) and then rescales them to the
prescribed norm or radius exactly.

Examples
--------
>>> from hypothesis import given, settings
>>> from rnntheory import strategies as rst
>>> from rnntheory.bounds import gamma_w
>>> @settings(max_examples=5)
... @given(rst.matrices_with_spectral_norm(3, 0.9))
... def check(W):
...     assert abs(gamma_w(W) - 0.9) < 1e-12
>>> check()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ._linalg import sign_corrected_q, spectral_norm, spectral_radius
from ._validation import check_choice, check_dtype, check_int, check_real
from .cells.elman import FORMS, ElmanRNN
from .cells.gated import GRU, LSTM

__all__ = [
    "elman_models",
    "gated_models",
    "input_sequences",
    "matrices_with_spectral_norm",
    "matrices_with_spectral_radius",
    "non_normal_matrices",
    "orthogonal_matrices",
    "sizes",
]

_ENTRY = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def _as_strategy(value: Any) -> st.SearchStrategy[Any]:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def _eager(check: Any, name: str, value: Any, **kw: Any) -> Any:
    """Check a plain value now (a strategy's draws are checked when drawn)."""
    return value if isinstance(value, st.SearchStrategy) else check(name, value, **kw)


_TINY = float(np.finfo(np.float64).tiny)


def _target(name: str, value: Any) -> float:
    """A prescribed norm or radius: finite, and a normal float64 (a subnormal
    target would leave the scaled entries with few or no significant digits)."""
    v = check_real(name, value, low=0.0, low_open=True)
    if v < _TINY:
        raise ValueError(
            f"`{name}` must be at least {_TINY} (the smallest normal float64), got {v}"
        )
    return v


def _scaled(M: np.ndarray, measure: float, target: float, what: str) -> np.ndarray:
    """``M · target / measure`` as ``(M / measure) · target`` (no overflow of the
    ratio), or a ``ValueError`` if the scaled matrix leaves float64's range."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = (M / measure) * target
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} is too large: a drawn matrix scaled to it overflows float64")
    return out


def sizes(min_value: int = 1, max_value: int = 6) -> st.SearchStrategy[int]:
    """Small integer sizes (hidden units, inputs, steps).

    Raises
    ------
    TypeError, ValueError
        If a bound is not an integer, or ``min_value > max_value``.
    """
    min_value = check_int("min_value", min_value)
    max_value = check_int("max_value", max_value)
    if min_value > max_value:
        raise ValueError(f"`min_value` must be <= `max_value` = {max_value}, got {min_value}")
    return st.integers(min_value, max_value)


def _square(n: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, (n, n), elements=_ENTRY)


def _rescaled_squares(
    n: int | st.SearchStrategy[int],
    name: str,
    value: float | st.SearchStrategy[float],
    measure: Callable[[np.ndarray], float],
) -> st.SearchStrategy[np.ndarray]:
    """Drawn square matrices (``measure`` above 1e-3) rescaled so that ``measure`` is
    the target ``value``, checked under the argument name ``name``."""
    _eager(check_int, "n", n, minimum=1)
    _eager(_target, name, value)

    @st.composite
    def build(draw: Any) -> np.ndarray:
        size = check_int("n", draw(_as_strategy(n)), minimum=1)
        target = _target(name, draw(_as_strategy(value)))
        M = draw(_square(size).filter(lambda A: measure(A) > 1e-3))
        return _scaled(M, measure(M), target, f"`{name}` = {target}")

    return build()


def matrices_with_spectral_norm(
    n: int | st.SearchStrategy[int], norm: float | st.SearchStrategy[float]
) -> st.SearchStrategy[np.ndarray]:
    """Square float64 matrices with ``σ_max = norm`` (to rounding).

    Parameters
    ----------
    n : int or strategy
        Size.
    norm : float or strategy
        Target spectral norm, ``> 0``.
    """
    return _rescaled_squares(n, "norm", norm, spectral_norm)


def matrices_with_spectral_radius(
    n: int | st.SearchStrategy[int], radius: float | st.SearchStrategy[float]
) -> st.SearchStrategy[np.ndarray]:
    """Square float64 matrices with spectral radius ``ρ = radius`` (to rounding)."""
    return _rescaled_squares(n, "radius", radius, spectral_radius)


def orthogonal_matrices(n: int | st.SearchStrategy[int]) -> st.SearchStrategy[np.ndarray]:
    """Orthogonal matrices: QR of a drawn matrix with ``Q ← Q · sign(diag R)``.

    (Haar-distributed when the entries are Gaussian; here the entries are drawn
    by Hypothesis, so the law is not Haar but every draw is exactly orthogonal
    to rounding.)
    """

    _eager(check_int, "n", n, minimum=1)

    @st.composite
    def build(draw: Any) -> np.ndarray:
        size = check_int("n", draw(_as_strategy(n)), minimum=1)
        M = draw(_square(size).filter(lambda A: np.linalg.svd(A, compute_uv=False)[-1] > 1e-3))
        return sign_corrected_q(M)

    return build()


def non_normal_matrices(
    n: int | st.SearchStrategy[int],
    *,
    radius: float = 0.9,
    min_norm: float = 1.5,
) -> st.SearchStrategy[np.ndarray]:
    """Non-normal matrices with ``ρ(W) ≤ radius`` but ``σ_max(W) ≥ min_norm``.

    Built as ``Q (D + N) Qᵀ`` with ``Q`` orthogonal, ``D`` diagonal with entries
    in ``[−radius, radius]`` (the eigenvalues) and ``N`` strictly upper
    triangular, scaled so that the spectral norm reaches ``min_norm``: the
    counterexamples to reading Eq. 12 with eigenvalues. Needs ``n ≥ 2``.

    The eigenvalues of such a nearly defective matrix are ill-conditioned, so
    the spectral radius that ``np.linalg.eigvals`` reports for the rounded
    product can exceed ``radius`` slightly (by about 1e-3 at ``radius = 0.8``);
    keep ``radius`` a little below the value a property needs.
    """
    radius = check_real("radius", radius, low=0.0)
    min_norm = _target("min_norm", min_norm)
    _eager(check_int, "n", n, minimum=2)
    # Built at unit norm (radius/min_norm, 1) and scaled by min_norm at the end,
    # so no intermediate overflows whatever the two magnitudes.
    with np.errstate(over="ignore"):
        rel = radius / min_norm
    if not np.isfinite(rel):
        raise ValueError(
            f"`radius` = {radius} is too large for `min_norm` = {min_norm}: "
            "radius/min_norm overflows float64"
        )

    @st.composite
    def build(draw: Any) -> np.ndarray:
        size = check_int("n", draw(_as_strategy(n)), minimum=2)
        d = draw(hnp.arrays(np.float64, size, elements=_ENTRY)) * rel
        U = draw(
            hnp.arrays(np.float64, (size, size), elements=_ENTRY).filter(
                lambda A: np.linalg.norm(np.triu(A, 1)) > 1e-2
            )
        )
        N = np.triu(U, 1)
        D = np.diag(d)
        # σ_max(D + sN) is continuous and grows without bound in s: find s by bisection.
        lo, hi = 0.0, 1.0
        while np.linalg.norm(D + hi * N, 2) < 1.0:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if np.linalg.norm(D + mid * N, 2) < 1.0:
                lo = mid
            else:
                hi = mid
        Q = draw(orthogonal_matrices(size))
        with np.errstate(over="ignore", invalid="ignore"):
            X = Q @ (D + hi * N) @ Q.T
        return _scaled(X, 1.0, min_norm, f"`radius` = {radius} with `min_norm` = {min_norm}")

    return build()


def elman_models(
    n_in: int | st.SearchStrategy[int] = sizes(1, 3),
    n_hidden: int | st.SearchStrategy[int] = sizes(1, 5),
    n_out: int | st.SearchStrategy[int | None] | None = None,
    *,
    activation: str | st.SearchStrategy[str] = st.sampled_from(["tanh", "sigmoid"]),
    form: str | st.SearchStrategy[str] = st.sampled_from(list(FORMS)),
    leaky: bool | st.SearchStrategy[bool] = False,
    weight_norm: float | st.SearchStrategy[float] = st.floats(0.1, 3.0),
    input_scale: float = 1.0,
    dtype: Any = np.float64,
) -> st.SearchStrategy[ElmanRNN]:
    """Elman models with ``σ_max(W_hh) = weight_norm`` and drawn input weights and biases.

    Parameters
    ----------
    n_in, n_hidden, n_out : int, None or strategy
        Sizes; ``n_out=None`` for no readout.
    activation, form : str or strategy
    leaky : bool or strategy
        Draw a per-unit retention ``α ∈ [0, 1]``.
    weight_norm : float or strategy
        Spectral norm of ``W_hh``.
    input_scale : float
        Bound on the entries of ``W_hx`` and ``b_h``.
    dtype : float32 or float64

    Raises
    ------
    TypeError, ValueError
        On a bad size, ``dtype``, ``input_scale`` or ``weight_norm`` (checked
        when the strategy is made; values drawn from strategies when drawn), or
        a scale beyond the largest number of ``dtype``.
    """
    dt = check_dtype("dtype", dtype)
    big = float(np.finfo(dt).max)
    input_scale = check_real("input_scale", input_scale, low=0.0, high=big)
    _eager(check_int, "n_in", n_in, minimum=1)
    _eager(check_int, "n_hidden", n_hidden, minimum=1)
    if n_out is not None:
        _eager(check_int, "n_out", n_out, minimum=1)
    _eager(check_real, "weight_norm", weight_norm, low=0.0, low_open=True, high=big)
    _eager(_target, "weight_norm", weight_norm)

    @st.composite
    def build(draw: Any) -> ElmanRNN:
        ni = check_int("n_in", draw(_as_strategy(n_in)), minimum=1)
        nh = check_int("n_hidden", draw(_as_strategy(n_hidden)), minimum=1)
        no = draw(_as_strategy(n_out))
        if no is not None:
            no = check_int("n_out", no, minimum=1)
        wn = check_real("weight_norm", draw(_as_strategy(weight_norm)), low=0.0, low_open=True, high=big)
        wn = _target("weight_norm", wn)
        W = draw(matrices_with_spectral_norm(nh, wn))
        U = draw(hnp.arrays(np.float64, (nh, ni), elements=_ENTRY)) * input_scale
        b = draw(hnp.arrays(np.float64, nh, elements=_ENTRY)) * input_scale
        V = c = None
        if no is not None:
            V = draw(hnp.arrays(np.float64, (no, nh), elements=_ENTRY))
            c = draw(hnp.arrays(np.float64, no, elements=_ENTRY))
        alpha = None
        if draw(_as_strategy(leaky)):
            alpha = draw(hnp.arrays(np.float64, nh, elements=st.floats(0.0, 1.0)))
        def cast(a: Any) -> Any:
            return None if a is None else np.asarray(a, dtype=dt)

        return ElmanRNN(
            cast(W), cast(U), cast(b), cast(V), cast(c),
            activation=draw(_as_strategy(activation)),
            form=draw(_as_strategy(form)),
            alpha=cast(alpha),
        )

    return build()


def input_sequences(
    T: int | st.SearchStrategy[int],
    n_in: int,
    *,
    batch: int | None = None,
    scale: float = 2.0,
) -> st.SearchStrategy[np.ndarray]:
    """Input sequences ``(T, n_in)`` (or ``(T, batch, n_in)``) with entries in ``[−scale, scale]``.

    Raises
    ------
    TypeError, ValueError
        On a non-integer or non-positive ``T`` (when drawn), ``n_in`` or
        ``batch``, or a negative or non-finite ``scale``.
    """
    scale = check_real("scale", scale, low=0.0)
    n_in = check_int("n_in", n_in, minimum=1)
    if batch is not None:
        batch = check_int("batch", batch, minimum=1)
    _eager(check_int, "T", T, minimum=1)

    @st.composite
    def build(draw: Any) -> np.ndarray:
        steps = check_int("T", draw(_as_strategy(T)), minimum=1)
        shape = (steps, n_in) if batch is None else (steps, batch, n_in)
        return draw(hnp.arrays(np.float64, shape, elements=_ENTRY)) * scale

    return build()


def gated_models(
    cell: str | st.SearchStrategy[str] = st.sampled_from(["lstm", "gru"]),
    n_in: int | st.SearchStrategy[int] = sizes(1, 3),
    n_hidden: int | st.SearchStrategy[int] = sizes(1, 4),
    n_out: int | st.SearchStrategy[int | None] | None = None,
    *,
    weight_scale: float | st.SearchStrategy[float] = st.floats(0.1, 3.0),
    bias_scale: float = 3.0,
) -> st.SearchStrategy[LSTM | GRU]:
    """LSTM or GRU models with entries drawn in ``[−1, 1]`` times ``weight_scale``
    (``bias_scale`` for the biases, wide enough to saturate gates).

    Parameters
    ----------
    cell : {"lstm", "gru"} or strategy
    n_in, n_hidden, n_out : int, None or strategy
    weight_scale : float or strategy
    bias_scale : float

    Raises
    ------
    TypeError, ValueError
        On an unknown ``cell``, a bad size or a negative or non-finite scale
        (checked when the strategy is made; values drawn from strategies when drawn).
    """
    bias_scale = check_real("bias_scale", bias_scale, low=0.0)
    _eager(check_choice, "cell", cell, choices=("lstm", "gru"))
    _eager(check_int, "n_in", n_in, minimum=1)
    _eager(check_int, "n_hidden", n_hidden, minimum=1)
    if n_out is not None:
        _eager(check_int, "n_out", n_out, minimum=1)
    _eager(check_real, "weight_scale", weight_scale, low=0.0)

    @st.composite
    def build(draw: Any) -> LSTM | GRU:
        kind = check_choice("cell", draw(_as_strategy(cell)), ("lstm", "gru"))
        cls: type[LSTM] | type[GRU] = LSTM if kind == "lstm" else GRU
        ni = check_int("n_in", draw(_as_strategy(n_in)), minimum=1)
        nh = check_int("n_hidden", draw(_as_strategy(n_hidden)), minimum=1)
        no = draw(_as_strategy(n_out))
        if no is not None:
            no = check_int("n_out", no, minimum=1)
        ws = check_real("weight_scale", draw(_as_strategy(weight_scale)), low=0.0)
        G = cls.GATES
        def arr(shape: Any) -> np.ndarray:
            return draw(hnp.arrays(np.float64, shape, elements=_ENTRY))

        V = c = None
        if no is not None:
            V, c = arr((no, nh)), arr(no)
        return cls(
            arr((G * nh, ni)) * ws, arr((G * nh, nh)) * ws,
            arr(G * nh) * bias_scale, arr(G * nh) * bias_scale, V, c,
        )

    return build()
