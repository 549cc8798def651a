"""Gradient clipping: by global norm (Eq. 13) and by value.

Both are small pure transforms in the spirit of Optax's clipping transforms:
they take the gradients, return new gradients and a small record of what they
did, and never modify their input.

``clip_by_norm`` is the clipping of the article's Eq. 13 and of Pascanu et al.
(2013), Algorithm 1: one *global* norm over every parameter tensor together,
and when ``‖g‖ ≥ τ`` the whole gradient is rescaled to ``τ g/‖g‖``. Its
direction never changes. ``clip_by_value`` is Mikolov's element-wise variant,
``g_i ← min(max(g_i, −limit), limit)``: a *different* operation, which changes
the direction of ``g`` whenever it acts and bounds the norm only by
``limit·√N``.

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
would silently map ``inf`` to ``limit``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import _show, as_float_array, check_real

__all__ = ["ClipInfo", "ValueClipInfo", "clip_by_norm", "clip_by_value", "global_norm"]


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
        Whether the gradients were rescaled: ``‖g‖ > τ`` and every entry finite.
        (At ``‖g‖ = τ`` the rescaling of Eq. 13 is the identity and the input
        is returned as is.)
    scale : float
        The factor ``c`` with ``clipped = c·g``: ``τ/‖g‖`` when clipped, else 1.
        It may underflow to 0 when ``‖g‖/τ`` exceeds the float64 range; the
        clipped gradients are computed without forming it and stay exact.
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
    limit : float
        Entries were clipped to ``[−limit, limit]``.
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

    limit: float
    max_abs: float
    n_clipped: int
    clipped: bool
    finite: bool


def _as_grads(grads: Any) -> dict[str, np.ndarray]:
    """Validate ``grads`` into a dict of float arrays (non-finite entries allowed)."""
    if isinstance(grads, Mapping):
        items = grads
    elif callable(getattr(grads, "params", None)):
        items = grads.params()
        if not isinstance(items, Mapping):
            raise TypeError(
                f"`grads.params()` must return a dict of arrays, got {_show(items)}"
            )
    else:
        raise TypeError(
            "`grads` must be a dict name → array or a record with a .params() method "
            f"(such as ElmanGrads), got {_show(grads)}"
        )
    out: dict[str, np.ndarray] = {}
    for key, value in items.items():
        if not isinstance(key, str):
            raise TypeError(f"`grads` keys must be parameter names (str), got {_show(key)}")
        arr = as_float_array(f"grads[{key!r}]", value, finite=False)
        # as_float_array returns np.ascontiguousarray(...), which turns 0-d into (1,).
        out[key] = arr.reshape(np.shape(value)) if arr.ndim != np.ndim(value) else arr
    return out


def _max_abs(arrays: dict[str, np.ndarray]) -> float:
    """``max |g_i|`` over every entry, in float64 (NaN if any entry is NaN)."""
    m = 0.0
    for a in arrays.values():
        if a.size:
            v = float(np.max(np.abs(a)))
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
    Guarantees (each checked by a property test): the output norm is
    ``min(‖g‖, τ)`` to rounding and never above ``τ`` (a clipped result whose
    rounded norm would exceed ``τ`` by an ulp is shrunk by an ulp); the output is ``c·g`` with ``c > 0`` (the
    direction is unchanged); below ``τ`` the output equals the input bitwise;
    ``g = 0`` is returned unchanged (no ``0/0``); clipping twice is clipping
    once. Unlike PyTorch's ``clip_grad_norm_``, there is no ``+1e-6`` in the
    denominator: the clipped norm is ``τ`` exactly, not ``τ‖g‖/(‖g‖ + 10⁻⁶)``.

    Parameters
    ----------
    grads : dict of str → array, or a record with ``.params()``
        The gradients, e.g. ``ElmanGrads`` or ``grads.params()``.
    threshold : float
        ``τ``, finite and ``> 0``.

    Returns
    -------
    clipped : dict of str → ndarray
        New arrays (same keys, order, shapes and dtypes).
    info : ClipInfo
        The pre-clip norm, whether it clipped, the scale, whether ``g`` was finite.

    Raises
    ------
    ValueError
        If ``threshold`` is not finite or not ``> 0``.
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
    >>> info.norm, info.clipped, info.scale
    (5.0, True, 0.2)
    >>> clip_by_norm(g, 10.0)[1].clipped   # below the threshold: unchanged
    False

    Eq. 13 of the article; Pascanu et al. 2013, Alg. 1.
    """
    tau = check_real("threshold", threshold, low=0.0, low_open=True)
    arrays = _as_grads(grads)
    s, e = _scaled_norm(arrays)
    if not math.isfinite(s):
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ClipInfo(norm=s, threshold=tau, clipped=False, scale=1.0, finite=False)
    norm = _ldexp(s, e)
    # ‖g‖ > τ  ⇔  s > τ·2^−e, decided without overflow (s ∈ [1/2, √N] or s = 0).
    # At ‖g‖ = τ, Eq. 13's rescaling is the identity: the input is returned as is.
    if s == 0.0 or s <= _ldexp(tau, -e):
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ClipInfo(norm=norm, threshold=tau, clipped=False, scale=1.0, finite=True)
    # c = τ/‖g‖ = (τ/s)·2^−e; apply the exact power of two and τ/s separately so
    # that neither c nor c·g overflows or underflows when c alone would.
    r = tau / s
    # Rounding can leave the result's norm an ulp above τ; shrink r by a few
    # ulp until it is not, so that ‖clipped‖ ≤ τ exactly (as global_norm
    # measures it) and clipping twice gives the same arrays as clipping once.
    eps = max(float(np.finfo(a.dtype).eps) for a in arrays.values())
    scaled = {
        k: np.ldexp(a.astype(np.float64, copy=False), -e) if e else a.astype(np.float64, copy=False)
        for k, a in arrays.items()
    }
    for attempt in range(8):
        out = {k: np.asarray(x * r, dtype=arrays[k].dtype) for k, x in scaled.items()}
        s_out, e_out = _scaled_norm(out)
        if s_out <= _ldexp(tau, -e_out):
            break
        r *= 1.0 - eps * 2.0**attempt
    return out, ClipInfo(
        norm=norm, threshold=tau, clipped=True, scale=math.ldexp(r, -e), finite=True
    )


def clip_by_value(grads: Any, limit: float) -> tuple[dict[str, np.ndarray], ValueClipInfo]:
    """Clip every entry to ``[−limit, limit]`` (Mikolov's element-wise clipping).

    .. math:: g_i \\leftarrow \\min(\\max(g_i, -\\ell), \\ell)

    This is **not** Eq. 13: it acts on each entry separately, so it changes the
    *direction* of ``g`` whenever it clips, and bounds the norm only by
    ``ℓ·√N`` (N entries), not by ``ℓ``. Entries already in range are unchanged
    bitwise.

    Parameters
    ----------
    grads : dict of str → array, or a record with ``.params()``
        The gradients.
    limit : float
        ``ℓ``, finite and ``> 0``.

    Returns
    -------
    clipped : dict of str → ndarray
        New arrays (same keys, order, shapes and dtypes).
    info : ValueClipInfo
        The largest ``|g_i|`` before clipping and how many entries changed.

    Raises
    ------
    ValueError
        If ``limit`` is not finite or not ``> 0``.
    TypeError
        If ``limit`` is not a real number, or ``grads`` is not a dict of float
        arrays or a record with ``.params()``.

    Notes
    -----
    Non-finite gradients are returned unchanged with ``info.finite = False``
    (``np.clip`` would silently map ``±inf`` to ``±limit``).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.remedies import clip_by_value
    >>> out, info = clip_by_value({"W_hh": np.array([3.0, -0.5, -4.0])}, 1.0)
    >>> out["W_hh"], info.n_clipped
    (array([ 1. , -0.5, -1. ]), 2)

    Mikolov's element-wise clipping, discussed by Pascanu et al. 2013, §3.2.
    """
    lim = check_real("limit", limit, low=0.0, low_open=True)
    arrays = _as_grads(grads)
    finite = all(bool(np.isfinite(a).all()) for a in arrays.values())
    m = _max_abs(arrays)
    if not finite:
        out = {k: a.copy() for k, a in arrays.items()}
        return out, ValueClipInfo(limit=lim, max_abs=m, n_clipped=0, clipped=False, finite=False)
    out = {}
    n_clipped = 0
    for k, a in arrays.items():
        # The limit in the array's dtype, rounded towards zero so |out| ≤ limit.
        lo_dt = a.dtype.type(lim)
        if float(lo_dt) > lim:
            lo_dt = np.nextafter(lo_dt, a.dtype.type(0))
        n_clipped += int(np.count_nonzero(np.abs(a) > lo_dt))
        out[k] = np.asarray(np.clip(a, -lo_dt, lo_dt), dtype=a.dtype)
    return out, ValueClipInfo(
        limit=lim, max_abs=m, n_clipped=n_clipped, clipped=n_clipped > 0, finite=True
    )
