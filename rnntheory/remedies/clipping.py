"""Gradient clipping: by global norm (Eq. 13) and by value.

Both are small pure transforms in the spirit of Optax's clipping transforms:
they take the gradients, return new gradients and a small record of what they
did, and never modify their input.

``clip_by_norm`` is the clipping of the article's Eq. 13 and of Pascanu et al.
(2013), Algorithm 1: one *global* norm over every parameter tensor together,
and when ``‖g‖ ≥ τ`` the whole gradient is rescaled to ``τ g/‖g‖``. Its
direction never changes, and ``‖clip(g, τ)‖ ≤ τ`` holds in exact arithmetic,
not only as a rounded norm measures it: the sum of squares is enclosed by a
compensated summation with a rigorous error bound (Ogita, Rump & Oishi 2005),
and the rescaling factor is shrunk by the few roundings that form the result.

Thresholds below the smallest normal number of the gradients'
dtype (2.2250738585072014e-308 for float64, 1.1754944e-38 for float32) are
refused with a ``ValueError``: the clipped entries would be subnormal, whose
spacing is comparable to the entries themselves, so neither the bound nor
the direction could be kept (``τ = 5e-324`` turned ``(3, 4)`` into ``(0, 0)``,
and ``τ = 1e-320`` into a vector of norm above ``τ``). ``clip_by_value`` is Mikolov's element-wise variant,
``g_i ← min(max(g_i, −threshold), threshold)``: a *different* operation, which
changes the direction of ``g`` whenever it acts and bounds the norm only by
``threshold·√N``. Both name their bound ``threshold`` (``clip_by_value``'s
former ``limit`` still works for one release, with a ``DeprecationWarning``).

Gradients are a dict ``name → array`` (as from ``ElmanGrads.params()``) or any
record with a ``.params()`` method returning such a dict (``ElmanGrads``,
``LSTMGrads``, ``GRUGrads``). A dict comes back as a dict with the same keys in
the same order; a record comes back as a dict too. Every array keeps its dtype.

Non-finite gradients
--------------------
If any entry is NaN or ±inf, both transforms return the gradients *unchanged*
(copied) with ``info.finite = False`` and ``info.clipped = False``: they never
turn NaN or inf into zeros or finite numbers, so the training loop sees the
explosion and can apply a fallback of its choice (skip the step, stop with a
report, or take a small step of its own as in Pascanu et al.'s public code).
PyTorch's ``clip_grad_norm_`` instead multiplies every gradient by a NaN
coefficient (unless ``error_if_nonfinite=True``), and element-wise clipping
would silently map ``inf`` to ``threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .._validation import (
    as_float_array,
    check_real,
    deprecated_alias,
    renamed_arguments,
    show_value,
)
from . import _clip_kernels as K

__all__ = ["ClipInfo", "ValueClipInfo", "clip_by_norm", "clip_by_value", "global_norm"]

_U = 2.0**-53  # unit roundoff of float64


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`clip_by_norm` did.

    Attributes
    ----------
    norm : float
        The global norm ``‖g‖`` of the gradients *before* clipping, in float64:
        ``inf`` if an entry is infinite or the norm exceeds the float64 range
        (the clipping itself stays exact then), ``nan`` if an entry is NaN.
    threshold : float
        ``τ``.
    clipped : bool
        Whether the gradients were rescaled: ``‖g‖ > τ`` in exact arithmetic
        and every entry finite. (At ``‖g‖ = τ`` the rescaling of Eq. 13 is the
        identity and the input is returned as is; such ties are decided
        exactly, e.g. ``‖(3, 4)‖ = 5``.)
    scale : float
        The factor ``c`` with ``clipped = c·g`` (to rounding): ``τ/‖g‖``, a few
        ulp below it, when clipped, else 1. It may underflow to 0 when
        ``‖g‖/τ`` exceeds the float64 range; the clipped gradients are then
        computed without forming it.
    finite : bool
        Whether every entry of the input was finite. When False the gradients
        are returned unchanged: apply your own fallback.
    """

    norm: float
    threshold: float
    clipped: bool
    scale: float
    finite: bool


@dataclass(frozen=True)
class ValueClipInfo:
    """What :func:`clip_by_value` did.

    Attributes
    ----------
    threshold : float
        Entries were clipped to ``[−threshold, threshold]``. (Formerly
        ``limit``: the attribute and the keyword still work for one release,
        with a ``DeprecationWarning``.)
    max_abs : float
        The largest ``|g_i|`` before clipping (``nan`` if an entry is NaN).
    n_clipped : int
        Number of entries changed (0 when ``finite`` is False).
    clipped : bool
        ``n_clipped > 0``.
    finite : bool
        Whether every entry of the input was finite. When False the gradients
        are returned unchanged.
    """

    threshold: float
    max_abs: float
    n_clipped: int
    clipped: bool
    finite: bool

    limit = deprecated_alias("threshold")
    """Deprecated spelling of :attr:`threshold` (removed in the next release)."""


ValueClipInfo.__init__ = renamed_arguments(limit="threshold")(ValueClipInfo.__init__)  # type: ignore[method-assign]


def _as_grads(grads: Any) -> dict[str, np.ndarray]:
    """Validate ``grads`` into a dict of float arrays (non-finite entries allowed)."""
    if isinstance(grads, Mapping):
        items = grads
    elif callable(getattr(grads, "params", None)):
        items = grads.params()
        if not isinstance(items, Mapping):
            raise TypeError(
                f"`grads.params()` must return a dict of arrays, got {show_value(items)}"
            )
    else:
        raise TypeError(
            "`grads` must be a dict name → array or a record with a .params() method "
            f"(such as ElmanGrads), got {show_value(grads)}"
        )
    out: dict[str, np.ndarray] = {}
    for key, value in items.items():
        if not isinstance(key, str):
            raise TypeError(f"`grads` keys must be parameter names (str), got {show_value(key)}")
        arr = as_float_array(f"grads[{key!r}]", value, finite=False)
        # as_float_array returns np.ascontiguousarray(...), which turns 0-d into (1,).
        out[key] = arr.reshape(np.shape(value)) if arr.ndim != np.ndim(value) else arr
    return out


def _max_abs(arrays: dict[str, np.ndarray]) -> float:
    """``max |g_i|`` over every entry, in float64 (NaN if any entry is NaN)."""
    m = 0.0
    for a in arrays.values():
        if a.size:
            v = max(abs(float(a.max())), abs(float(a.min())))  # no |a| temporary
            if math.isnan(v):
                return math.nan
            m = max(m, v)
    return m


def _sumsq(a: np.ndarray, e: int = 0) -> float:
    """``Σ (a_i·2^−e)²`` in float64 (one BLAS dot; the scaling is exact)."""
    v = a.astype(np.float64, copy=False).ravel()
    if e:
        v = np.ldexp(v, -e)
    return float(np.dot(v, v))


# Below 2**-600 an entry's square may lose digits to underflow; above 2**1000 the
# sum may overflow. Between, the unscaled sum is as accurate as the scaled one and
# bit-identical to it (scaling by a power of two is exact), so it is used directly.
_SAFE_LOW, _SAFE_HIGH = 2.0**-600, 2.0**1000


def _scaled_norm(arrays: dict[str, np.ndarray]) -> tuple[float, int]:
    """Return ``(s, e)`` with ``‖g‖ = s·2**e``.

    When the plain sum of squares lies safely inside the float64 range it is
    used as it is (``e = 0``). Otherwise every entry is scaled by the power of
    two ``2**−e`` that brings the largest one into ``[1/2, 1)``: the scaling is
    exact, nothing overflows (the sum of squares is at most N) and nothing that
    matters underflows (an entry lost to underflow is below ``2**−1074`` times
    the largest, far below rounding). For ``g = 0`` it returns ``(0, 0)``; for
    a non-finite entry ``s`` is ``inf`` or ``nan``.
    """
    total = 0.0
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for a in arrays.values():
            if a.size:
                total += _sumsq(a)
    if _SAFE_LOW < total < _SAFE_HIGH:
        return math.sqrt(total), 0
    m = _max_abs(arrays)
    if m == 0.0 or not math.isfinite(m):
        return m, 0
    e = math.frexp(m)[1]
    total = 0.0
    for a in arrays.values():
        if a.size:
            total += _sumsq(a, e)
    return math.sqrt(total), e


def _ldexp(s: float, e: int) -> float:
    try:
        return math.ldexp(s, e)
    except OverflowError:
        return math.inf


def _smallest_normal(name: str, value: float, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a threshold below the smallest normal number of the gradients' dtype.

    Clipping by norm to such a ``τ`` makes every clipped entry subnormal, where
    the spacing of floats is comparable to the entries themselves: the result
    could keep neither ``‖·‖ ≤ τ`` to rounding nor the direction (``τ = 5e-324``
    turned ``(3, 4)`` into ``(0, 0)``); clipping by value to such a threshold would
    round the threshold itself to a coarser value or to 0 in float32.
    """
    dts = {a.dtype for a in arrays.values()} or {np.dtype(np.float64)}
    dt = max(dts, key=lambda d: float(np.finfo(d).tiny))
    tiny = float(np.finfo(dt).tiny)
    if value < tiny:
        raise ValueError(
            f"`{name}` must be at least {tiny!r}, the smallest normal {dt} number "
            f"(the gradients' dtype), got {value!r}: below it the clipped entries are "
            "subnormal and keep too few digits to hold the bound and the direction"
        )


def _sumsq_enclosure(
    arrays: dict[str, np.ndarray], e: int
) -> tuple[float, float, float, float, float, int]:
    """``(s, c, d, B, small, N)`` with ``Σ (g_i 2^-e)² ∈ [s + c + d − B, s + c + d + B + small]``.

    A compensated sum (``rnntheory.remedies._clip_kernels``): ``s + c + d`` is
    the sum of squares to far below one rounding, and ``B`` bounds what the
    float64 sum ``d`` of the last error terms lost, ``γ_{2N} Σ |r|`` with
    ``γ_m = m u/(1 − m u) ≤ 2 m u`` (taken twice over, so the float64 evaluation
    of ``B`` itself is covered); ``B = 0`` when no rounding was left to bound.
    """
    acc = np.zeros(5)
    N = 0
    for a in arrays.values():
        if a.size:
            K.sumsq_compensated(a.reshape(-1), e, acc)
            N += a.size
    s, c, d, a_sum, small = (float(v) for v in acc)
    B = 8.0 * (2 * N + 2) * _U * a_sum
    return s, c, d, B, small * 2.0**-960, N


def _norm_at_most(
    s: float, c: float, d: float, B: float, small: float, tau: float, e: int,
    arrays: dict[str, np.ndarray],
) -> bool:
    """Whether ``‖g‖ ≤ τ``, i.e. ``Σ (g_i 2^-e)² ≤ (τ 2^-e)²``: decided by the
    enclosure of :func:`_sumsq_enclosure` with float64 margins, then on its
    few numbers in exact rational arithmetic, and only when the enclosure
    (about 1e-30 wide, relative) straddles ``τ²`` (an exact tie such as
    ‖(3, 4)‖ = 5) on every entry in exact rational arithmetic."""
    lt = math.frexp(tau)[1] - e  # τ 2^-e lies in [2^(lt-1), 2^lt); Σ lies in [1/4, N]
    if lt > 600:
        return True
    if lt < -600:
        return False
    tp = math.ldexp(tau, -e)  # a normal number: exact
    t2 = tp * tp
    if (s + c + d + B + small) * (1.0 + 6.0 * _U) <= t2 * (1.0 - 2.0 * _U):
        return True
    if (s + c + d - B) * (1.0 - 6.0 * _U) >= t2 * (1.0 + 2.0 * _U):
        return False
    t2_exact = Fraction(tp) ** 2
    centre = Fraction(s) + Fraction(c) + Fraction(d)
    if centre + Fraction(B) + Fraction(small) <= t2_exact:
        return True
    if centre - Fraction(B) > t2_exact:
        return False
    exact = sum(
        (Fraction(float(v)) ** 2 for a in arrays.values() for v in a.reshape(-1) if v != 0),
        Fraction(0),
    )
    return exact <= Fraction(tau) ** 2


def global_norm(grads: Any) -> float:
    """The global Euclidean norm ``‖g‖ = sqrt(Σ_tensors Σ_i g_i²)`` over all tensors.

    Overflow- and underflow-safe: the entries are scaled by a power of two
    (exactly) before squaring, so entries of ``1e200`` give ``1e200·√N`` (not
    ``inf``) and entries of ``1e-200`` give ``1e-200·√N`` (not 0), accurate to a
    few ulp. Computed in float64 whatever the dtype of the gradients.

    Parameters
    ----------
    grads : dict of str → array, or a record with ``.params()``
        The gradients (any shapes; float32 or float64).

    Returns
    -------
    float
        ``‖g‖``; ``inf`` if an entry is infinite or the norm exceeds the
        float64 range, ``nan`` if an entry is NaN, 0 for no entries.

    Raises
    ------
    TypeError
        If ``grads`` is neither a dict nor a record, or an entry is not a
        float32/float64 array.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.remedies import global_norm
    >>> global_norm({"W": np.array([[3.0]]), "b": np.array([4.0])})
    5.0
    >>> global_norm({"W": np.full(4, 1e200)})  # no overflow: 1e200·√4
    2e+200
    >>> global_norm({"W": np.full(4, 1e-200)})  # no underflow
    2e-200

    The norm of Eq. 13 of the article; Pascanu et al. 2013, Alg. 1.
    """
    s, e = _scaled_norm(_as_grads(grads))
    return _ldexp(s, e) if math.isfinite(s) else s


def clip_by_norm(grads: Any, threshold: float) -> tuple[dict[str, np.ndarray], ClipInfo]:
    """Rescale the gradients to global norm ``τ`` when ``‖g‖ ≥ τ`` (Eq. 13).

    .. math::

        \\hat g \\leftarrow \\frac{\\partial E}{\\partial \\theta},\\qquad
        \\text{if } \\lVert \\hat g\\rVert \\ge \\tau:\\quad
        \\hat g \\leftarrow \\frac{\\tau}{\\lVert \\hat g\\rVert}\\,\\hat g

    with ``‖·‖`` the global norm over all tensors together (:func:`global_norm`).
    Guarantees, for every admitted ``τ`` and every finite ``g`` (each checked
    by a property test in exact rational arithmetic, entries from subnormal to
    1e300, float32 and float64):

    * ``‖clip(g, τ)‖ ≤ τ`` exactly, and ``‖clip(g, τ)‖ = min(‖g‖, τ)`` to
      rounding: a clipped norm lies in ``[τ(1 − 16u − 3u_dt − δ), τ]`` with
      ``u = 2^-53``, ``u_dt`` the unit roundoff of float32 gradients (0 for
      float64) and ``δ ≤ 4√N·2^-1074/τ`` the relative size of subnormal
      rounding (below 1e-290 unless ``τ`` is within a factor ``10^15·√N`` of
      the smallest normal number);
    * the output is ``c·g`` with ``c ∈ (0, 1]``, entry by entry to one or two
      roundings (an entry whose clipped value is below the subnormal spacing
      rounds to 0): the direction is unchanged;
    * if ``‖g‖ ≤ τ`` exactly, the output equals the input bitwise; ``g = 0`` is
      returned unchanged (no ``0/0``); clipping twice is clipping once.

    Unlike PyTorch's ``clip_grad_norm_``, there is no ``+1e-6`` in the
    denominator: the clipped norm is ``τ`` to rounding, not ``τ‖g‖/(‖g‖ + 10⁻⁶)``.

    Parameters
    ----------
    grads : dict of str → array, or a record with ``.params()``
        The gradients, e.g. ``ElmanGrads`` or ``grads.params()``.
    threshold : float
        ``τ``, finite and at least the smallest normal number of the
        gradients' dtype (2.2250738585072014e-308 for float64,
        1.1754944e-38 when a tensor is float32).

    Returns
    -------
    clipped : dict of str → ndarray
        New arrays (same keys, order, shapes and dtypes).
    info : ClipInfo
        The pre-clip norm, whether it clipped, the scale, whether ``g`` was finite.

    Raises
    ------
    ValueError
        If ``threshold`` is not finite, not ``> 0``, or below the smallest
        normal number of the gradients' dtype (subnormal: the clipped entries
        could keep neither the bound nor the direction).
    TypeError
        If ``threshold`` is not a real number, or ``grads`` is not a dict of
        float arrays or a record with ``.params()``.

    Notes
    -----
    Non-finite gradients (any NaN or ±inf entry) are returned unchanged with
    ``info.finite = False``, ``info.clipped = False``: they are never turned
    into finite numbers. The training loop decides what to do (Pascanu et al.
    2013 discuss the fallback; skipping the step is the simplest).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.remedies import clip_by_norm
    >>> g = {"W_hh": np.array([[3.0, 0.0]]), "b_h": np.array([4.0])}
    >>> out, info = clip_by_norm(g, 1.0)
    >>> out["W_hh"], out["b_h"]
    (array([[0.6, 0. ]]), array([0.8]))
    >>> info.norm, info.clipped, round(info.scale, 14)
    (5.0, True, 0.2)
    >>> float(out["W_hh"][0, 0]) ** 2 + float(out["b_h"][0]) ** 2 <= 1.0   # (0.6, 0.8) itself: 1 + 4e-17
    True
    >>> clip_by_norm(g, 5.0)[1].clipped   # ‖g‖ = τ exactly: unchanged
    False

    Eq. 13 of the article; Pascanu et al. 2013, Alg. 1.
    """
    tau = check_real("threshold", threshold, low=0.0, low_open=True)
    arrays = _as_grads(grads)
    _smallest_normal("threshold", tau, arrays)
    m = _max_abs(arrays)
    if m == 0.0 or not math.isfinite(m):
        s_nf, _ = _scaled_norm(arrays)  # 0, or NaN/inf: returned unchanged
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ClipInfo(norm=s_nf, threshold=tau, clipped=False, scale=1.0, finite=m == 0.0)
    e = math.frexp(m)[1]
    s, c, d, B, small, N = _sumsq_enclosure(arrays, e)
    norm = _ldexp(math.sqrt(s + (c + d)), e)
    # Identity when ‖g‖ ≤ τ is proved (Eq. 13 does nothing at ‖g‖ = τ either).
    if _norm_at_most(s, c, d, B, small, tau, e, arrays):
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ClipInfo(norm=norm, threshold=tau, clipped=False, scale=1.0, finite=True)
    # Output o = fl(fl(g 2^(kt−e)) · ρ_m) in the gradients' dtype, τ = m_τ 2^kt:
    # o ≈ g τ/‖g‖ without forming τ/‖g‖ (which can over- or underflow), and
    # g 2^(kt−e) already has the magnitude of the output, so no entry leaves
    # the normal range that the output itself does not. ρ_m is m_τ/Y with
    # Y ≥ ‖g 2^-e‖ an upper bound from the enclosure, shrunk by the rounding of
    # every operation that forms o (u per float64 operation, u_dt for the cast
    # to float32) and by the absolute rounding of subnormal entries (δ), so
    # that ‖o‖ ≤ τ holds exactly, not only to rounding.
    mt, kt = math.frexp(tau)
    # Y ≥ ‖g 2^-e‖ + √N 2^(−1075−kt) (the rounding of subnormal g 2^(kt−e)):
    # the sum of the enclosure's terms (four roundings) times 1 + 6u, its square
    # root and the product with 1 + 2u (one rounding each)
    root_n = math.sqrt(N) * (1.0 + 4.0 * _U)
    y_up = math.sqrt((s + c + d + B + small) * (1.0 + 6.0 * _U)) * (1.0 + 2.0 * _U)
    y_up = y_up + _ldexp(root_n, -1074 - kt) * (1.0 + 4.0 * _U)
    f32 = any(a.dtype == np.float32 for a in arrays.values())
    u_dt, a_dt = (2.0**-24, 2.0**-150) if f32 else (0.0, 0.0)  # the cast to float32
    delta = 2.0 * root_n * (2.0**-1074 + a_dt) / tau * (1.0 + 8.0 * _U) + root_n * 2.0**-1072
    # three roundings form ρ, one the product y·ρ, u_dt the cast: (1 + u)⁴(1 + u_dt)(1 − 5u − 2u_dt) < 1
    rho = mt * (1.0 - delta) / y_up * (1.0 - 5.0 * _U - 2.0 * u_dt)
    scale = math.ldexp(rho, kt - e)
    if scale >= 2.0**-1022:  # τ/‖g‖ is a normal number: o = fl(g·scale), one rounding
        out = {k: np.asarray(np.multiply(a, scale, dtype=np.float64), dtype=a.dtype)
               for k, a in arrays.items()}
    else:
        out = {
            k: np.asarray(np.ldexp(a.astype(np.float64), kt - e) * rho, dtype=a.dtype)
            for k, a in arrays.items()
        }
    return out, ClipInfo(norm=norm, threshold=tau, clipped=True, scale=scale, finite=True)


@renamed_arguments(limit="threshold")
def clip_by_value(grads: Any, threshold: float) -> tuple[dict[str, np.ndarray], ValueClipInfo]:
    """Clip every entry to ``[−threshold, threshold]`` (Mikolov's element-wise clipping).

    .. math:: g_i \\leftarrow \\min(\\max(g_i, -\\ell), \\ell)

    This is **not** Eq. 13: it acts on each entry separately, so it changes the
    *direction* of ``g`` whenever it clips, and bounds the norm only by
    ``ℓ·√N`` (N entries), not by ``ℓ``. Entries already in range are unchanged
    bitwise.

    Parameters
    ----------
    grads : dict of str → array, or a record with ``.params()``
        The gradients.
    threshold : float
        ``ℓ``, finite and at least the smallest normal number of the
        gradients' dtype (as for :func:`clip_by_norm`). In a float32 tensor
        the threshold is rounded towards zero, so ``|out_i| ≤ ℓ`` holds
        exactly. (Formerly ``limit``, still accepted as a keyword for one
        release with a ``DeprecationWarning``.)

    Returns
    -------
    clipped : dict of str → ndarray
        New arrays (same keys, order, shapes and dtypes).
    info : ValueClipInfo
        The largest ``|g_i|`` before clipping and how many entries changed.

    Raises
    ------
    ValueError
        If ``threshold`` is not finite, not ``> 0``, or below the smallest
        normal number of the gradients' dtype (a subnormal threshold is rounded
        to a coarser value, or to 0 in float32, which zeroed every entry).
    TypeError
        If ``threshold`` is not a real number, or both ``threshold`` and
        ``limit`` are passed, or ``grads`` is not a dict of float
        arrays or a record with ``.params()``.

    Notes
    -----
    Non-finite gradients are returned unchanged with ``info.finite = False``
    (``np.clip`` would silently map ``±inf`` to ``±threshold``).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.remedies import clip_by_value
    >>> out, info = clip_by_value({"W_hh": np.array([3.0, -0.5, -4.0])}, 1.0)
    >>> out["W_hh"], info.n_clipped
    (array([ 1. , -0.5, -1. ]), 2)

    Mikolov's element-wise clipping, discussed by Pascanu et al. 2013, §3.2.
    """
    lim = check_real("threshold", threshold, low=0.0, low_open=True)
    arrays = _as_grads(grads)
    _smallest_normal("threshold", lim, arrays)
    finite = all(bool(np.isfinite(a).all()) for a in arrays.values())
    m = _max_abs(arrays)
    if not finite:
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ValueClipInfo(threshold=lim, max_abs=m, n_clipped=0, clipped=False, finite=False)
    out = {}
    n_clipped = 0
    for k, a in arrays.items():
        # The threshold in the array's dtype, rounded towards zero so |out| ≤ threshold
        # (beyond the dtype's range every finite entry is inside it).
        top = np.finfo(a.dtype).max
        lo_dt = a.dtype.type(lim) if lim < float(top) else top
        if float(lo_dt) > lim:
            lo_dt = np.nextafter(lo_dt, a.dtype.type(0))
        n_clipped += int(np.count_nonzero(np.abs(a) > lo_dt))
        out[k] = np.asarray(np.clip(a, -lo_dt, lo_dt), dtype=a.dtype)
    return out, ValueClipInfo(
        threshold=lim, max_abs=m, n_clipped=n_clipped, clipped=n_clipped > 0, finite=True
    )
