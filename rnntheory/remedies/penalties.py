"""Penalties on the recurrent weights, and the projection that actually bounds them.

Each penalty returns ``(value, grads)``: the penalty's value (a float) and its
gradient as a dict holding **only** the recurrent matrix's key (``"W_hh"`` for
an :class:`~rnntheory.ElmanRNN`, ``"weight_hh"`` for an LSTM or GRU). A key
that is absent means a zero gradient for that parameter; add the penalty's
gradient to the loss gradient key by key::

    loss, g = model.value_and_grad(x, y)
    value, pg = l2_penalty(model, 1e-3)
    total = {k: v + pg.get(k, 0) for k, v in g.params().items()}

The gradient has the dtype of the model's weights; values are computed in float64,
from the recurrent matrix scaled by a power of two (exactly), so a penalty of
weights near 1e308 is finite whenever its value is (``½·1e-300·‖W‖²`` with
entries of 1e200 is about 1e100; the unscaled sum of squares overflowed to inf).
A value or gradient entry beyond the float64 range is ``inf``. Weights ``λ``
(and the projection's bound ``c``) strictly between 0 and the smallest normal
number of the model's dtype (2.2250738585072014e-308 for float64,
1.1754944e-38 for float32) are refused: the gradient ``λ·sign(W)`` or ``λW``
would be subnormal or 0 (a float32 model's L1 gradient with ``λ = 5e-324``
was all zeros), so it could not hold its value.

A penalty *lowers* the size of ``W_hh`` but *bounds nothing*: after any number
of gradient steps on loss + penalty, ``σ_max(W_hh)`` can still exceed 1, and at
a minimum of ``E + ½λ‖W‖²`` it can be as large as the loss pulls it. Claim C21
of the article ("an L1/L2 penalty on W_hh ensures its spectral radius ≤ 1") is
false; :func:`project_spectral_norm` is the hard constraint that does give
``σ_max(W_hh) ≤ c`` and with it Eq. 12's ``‖∂h_t/∂h_k‖ ≤ (c γ_h)^(t−k)``.

Gated cells and stacks. A gated cell's recurrent matrix is its stacked
``weight_hh`` ``(G·n, n)`` (``G = 4`` gate blocks for the LSTM, 3 for the GRU):
the L1 and L2 penalties are sums over entries, so over the gate blocks too;
the spectral penalty and the projection act on the stacked matrix as one, and
``σ_max`` of the stacked matrix bounds every gate block's. For a
:class:`~rnntheory.StackedRNN` each function acts on **each layer's**
recurrent matrix as it acts on that cell: the value is the sum of the layers'
penalties, the gradient holds one key per layer (``"W_hh_l0"``,
``"weight_hh_l1"``, … as in ``StackedRNN.params()``), and the projection gives
``σ_max ≤ c`` for every layer.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._linalg import spectral_norm
from .._validation import check_real, show_value
from ..cells.elman import ElmanRNN
from ..cells.gated import GRU, LSTM
from ..cells.stacked import StackedRNN

__all__ = ["l1_penalty", "l2_penalty", "project_spectral_norm", "spectral_penalty"]


def _recurrents(model: Any) -> list[tuple[str, np.ndarray]]:
    """The recurrent matrices' parameter names and values: one for a cell
    (``W_hh``, or the stacked ``weight_hh`` of a gated cell), one per layer for
    a :class:`~rnntheory.StackedRNN` (``W_hh_l<l>`` / ``weight_hh_l<l>``,
    bottom layer first)."""
    if isinstance(model, ElmanRNN):
        return [("W_hh", model.W_hh)]
    if isinstance(model, LSTM | GRU):
        return [("weight_hh", model.weight_hh)]
    if isinstance(model, StackedRNN):
        name = "W_hh" if model.cell == "elman" else "weight_hh"
        return [(f"{name}_l{i}", getattr(layer, name)) for i, layer in enumerate(model.layers)]
    raise TypeError(
        f"`model` must be an ElmanRNN, LSTM or GRU, got {show_value(model)} (or a StackedRNN of such layers)"
    )


def _check_scale(name: str, value: Any, dtype: np.dtype) -> float:
    """``value`` ≥ 0 and finite, and 0 or at least the smallest normal number of ``dtype``."""
    v = check_real(name, value, low=0.0)
    tiny = float(np.finfo(dtype).tiny)
    if 0.0 < v < tiny:
        raise ValueError(
            f"`{name}` must be 0 or at least {tiny!r}, the smallest normal {np.dtype(dtype)} number "
            f"(the model's dtype), got {v!r}: a subnormal `{name}` leaves the result too few "
            "digits (or none) to hold its value"
        )
    return v


def _times_pow2(x: float, e: int) -> float:
    """``x · 2^e`` (``±inf`` beyond the float64 range, 0 or subnormal below it)."""
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(math.inf, x)


def _scaled(W: np.ndarray) -> tuple[np.ndarray, int]:
    """``(W 2^-e, e)`` with the largest |entry| of ``W 2^-e`` in [1/2, 1) (``e = 0`` for W = 0)."""
    W64 = np.asarray(W, np.float64)
    m = float(np.max(np.abs(W64))) if W64.size else 0.0
    if m == 0.0:
        return W64, 0
    e = math.frexp(m)[1]
    return np.ldexp(W64, -e), e


def _lam_times(lam: float, x: float, e: int) -> float:
    """``λ · x · 2^e`` for ``x ≥ 0`` without overflow or underflow on the way."""
    if lam == 0.0 or x == 0.0:
        return 0.0
    ml, kl = math.frexp(lam)
    return _times_pow2(ml * x, kl + e)


def l1_penalty(model: Any, weight: float) -> tuple[float, dict[str, np.ndarray]]:
    """The L1 penalty ``λ Σ_ij |W_ij|`` on the recurrent weights, and its gradient.

    .. math::

        P(W) = \\lambda \\sum_{ij} \\lvert W_{ij}\\rvert,\\qquad
        \\frac{\\partial P}{\\partial W} = \\lambda\\,\\operatorname{sign}(W)

    At an entry ``W_ij = 0`` the penalty is not differentiable; the gradient
    returned there is 0, the minimum-norm subgradient.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        Its recurrent matrix (``W_hh``, or ``weight_hh`` for gated cells) is
        penalised; for a stack, each layer's (the penalties add up).
    weight : float
        ``λ ≥ 0``.

    Returns
    -------
    value : float
        ``P(W)``.
    grads : dict
        ``{"W_hh": λ sign(W_hh)}`` (``"weight_hh"`` for LSTM/GRU, one key per
        layer for a stack) only: the
        other parameters have zero gradient and are left out.

    Raises
    ------
    ValueError
        If ``weight`` is negative, not finite, or subnormal (strictly between 0
        and the smallest normal number of the model's dtype).
    TypeError
        If ``model`` is not an ElmanRNN, LSTM, GRU or StackedRNN, or ``weight`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> from rnntheory.remedies import l1_penalty
    >>> m = ElmanRNN([[1.0, -2.0], [0.0, 0.5]], np.zeros((2, 1)), np.zeros(2))
    >>> value, g = l1_penalty(m, 0.1)
    >>> round(value, 12), g["W_hh"]
    (0.35, array([[ 0.1, -0.1],
           [ 0. ,  0.1]]))

    The L1 penalty of the article's "L1/L2 regularization" paragraph (claim C21).
    """
    mats = _recurrents(model)
    lam = _check_scale("weight", weight, mats[0][1].dtype)
    value, grads = 0.0, {}
    for name, W in mats:
        Ws, e = _scaled(W)
        value += _lam_times(lam, float(np.sum(np.abs(Ws))), e)
        grads[name] = (lam * np.sign(W.astype(np.float64, copy=False))).astype(W.dtype, copy=False)
    return value, grads


def l2_penalty(model: Any, weight: float) -> tuple[float, dict[str, np.ndarray]]:
    """The L2 penalty ``½ λ ‖W‖_F²`` on the recurrent weights, and its gradient ``λ W``.

    .. math::

        P(W) = \\tfrac12 \\lambda \\lVert W\\rVert_F^2,\\qquad
        \\frac{\\partial P}{\\partial W} = \\lambda W

    The factor ½ is the weight-decay convention: a gradient step of size ``η``
    on ``P`` alone multiplies ``W`` by ``1 − ηλ``, which shrinks ``σ_max(W)``
    geometrically but never bounds it after finitely many steps, and with a
    loss gradient in the step bounds nothing at all (claim C21).

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        Its recurrent matrix (``W_hh``, or ``weight_hh`` for gated cells) is
        penalised; for a stack, each layer's (the penalties add up).
    weight : float
        ``λ ≥ 0``.

    Returns
    -------
    value : float
        ``P(W)``.
    grads : dict
        ``{"W_hh": λ W_hh}`` (``"weight_hh"`` for LSTM/GRU, one key per layer
        for a stack) only: the other
        parameters have zero gradient and are left out.

    Raises
    ------
    ValueError
        If ``weight`` is negative, not finite, or subnormal (strictly between 0
        and the smallest normal number of the model's dtype).
    TypeError
        If ``model`` is not an ElmanRNN, LSTM, GRU or StackedRNN, or ``weight`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> from rnntheory.remedies import l2_penalty
    >>> m = ElmanRNN([[3.0, 0.0], [0.0, 4.0]], np.zeros((2, 1)), np.zeros(2))
    >>> value, g = l2_penalty(m, 0.5)
    >>> value, g["W_hh"]
    (6.25, array([[1.5, 0. ],
           [0. , 2. ]]))

    The L2 penalty of the article's "L1/L2 regularization" paragraph (claim C21).
    """
    mats = _recurrents(model)
    lam = _check_scale("weight", weight, mats[0][1].dtype)
    value, grads = 0.0, {}
    for name, W in mats:
        Ws, e = _scaled(W)
        value += _lam_times(lam, 0.5 * float(np.sum(Ws * Ws)), 2 * e)
        with np.errstate(over="ignore"):  # inf where λ W_ij is beyond the float range
            grads[name] = (lam * W.astype(np.float64, copy=False)).astype(W.dtype, copy=False)
    return value, grads


def _weight_first(fn: Callable[..., tuple[float, dict[str, np.ndarray]]]) -> Callable[..., tuple[float, dict[str, np.ndarray]]]:
    """Accept the old order ``spectral_penalty(model, c, weight)`` for one release.

    The new order, ``(model, weight, *, c)``, is the penalties' common one
    (``l1_penalty(model, weight)``). ``c`` is keyword-only now, so three
    positional arguments, or two with ``weight=`` by keyword, can only be the
    old order: they are mapped to it with a ``DeprecationWarning``.
    """

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> tuple[float, dict[str, np.ndarray]]:
        old = None
        if len(args) == 3 and "c" not in kwargs and "weight" not in kwargs:
            old = {"model": args[0], "c": args[1], "weight": args[2]}
        elif len(args) == 2 and "weight" in kwargs and "c" not in kwargs:
            old = {"model": args[0], "c": args[1], "weight": kwargs.pop("weight")}
        if old is None:
            return fn(*args, **kwargs)
        warnings.warn(
            "`spectral_penalty(model, c, weight)` is deprecated and will be removed in the next "
            "release; use `spectral_penalty(model, weight, c=c)` (the penalties' common order)",
            DeprecationWarning,
            stacklevel=2,
        )
        return fn(old["model"], old["weight"], c=old["c"], **kwargs)

    return inner


@_weight_first
def spectral_penalty(
    model: Any, weight: float, *, c: float
) -> tuple[float, dict[str, np.ndarray]]:
    """The hinge penalty ``λ max(0, σ_max(W) − c)²`` on the recurrent weights, and its gradient.

    .. math::

        P(W) = \\lambda\\,\\max(0, \\sigma_1(W) - c)^2,\\qquad
        \\frac{\\partial P}{\\partial W} = 2\\lambda\\,\\max(0, \\sigma_1 - c)\\,u_1 v_1^{\\top}

    where ``W = Σ_i σ_i u_i v_iᵀ`` is the SVD: ``∂σ_1/∂W = u_1 v_1ᵀ`` when the
    largest singular value is simple. ``P`` is continuously differentiable in
    ``σ_1`` (zero gradient when ``σ_1 ≤ c``). When ``σ_1 > c`` is *repeated*
    (``σ_1 = σ_2``), ``σ_1`` and so ``P`` are not differentiable at ``W``; the
    value returned is then ``2λ(σ_1 − c) u vᵀ`` for the top singular pair LAPACK
    returns, a subgradient (``P`` is convex: a convex non-decreasing function of
    the convex ``σ_1``), not a gradient. Like every penalty, it bounds nothing:
    use :func:`project_spectral_norm` for a hard ``σ_max ≤ c``.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        Its recurrent matrix (``W_hh``, or ``weight_hh`` for gated cells) is
        penalised; for a stack, each layer's (the penalties add up).
    weight : float
        ``λ ≥ 0``.
    c : float, keyword-only
        Target bound ``c ≥ 0`` on ``σ_max``. (The former order
        ``spectral_penalty(model, c, weight)`` still works for one release,
        with a ``DeprecationWarning``.)

    Returns
    -------
    value : float
        ``P(W)``.
    grads : dict
        ``{"W_hh": ∂P/∂W_hh}`` (``"weight_hh"`` for LSTM/GRU, one key per layer
        for a stack) only.

    Raises
    ------
    ValueError
        If ``c`` or ``weight`` is negative or not finite, or ``weight`` is
        subnormal (strictly between 0 and the smallest normal number of the
        model's dtype).
    TypeError
        If ``model`` is not an ElmanRNN, LSTM, GRU or StackedRNN, or ``c``/``weight`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> from rnntheory.remedies import spectral_penalty
    >>> m = ElmanRNN([[3.0, 0.0], [0.0, 0.5]], np.zeros((2, 1)), np.zeros(2))
    >>> value, g = spectral_penalty(m, 0.25, c=1.0)
    >>> round(value, 12), np.round(g["W_hh"], 12)    # 0.25·(3−1)², 2·0.25·2·e1e1ᵀ
    (1.0, array([[1., 0.],
           [0., 0.]]))

    A soft version of the constraint ``σ_max(W_hh) ≤ c`` under which Eq. 12 gives
    ``‖∂h_t/∂h_k‖ ≤ (c γ_h)^(t−k)``.
    """
    cc = check_real("c", c, low=0.0)
    mats = _recurrents(model)
    lam = _check_scale("weight", weight, mats[0][1].dtype)
    value, grads = 0.0, {}
    for name, W in mats:
        Ws, e = _scaled(W)  # σ_1(W) = 2^e σ_1(W 2^-e): no overflow for entries near 1e308
        U, s, Vt = np.linalg.svd(Ws)
        excess = max(0.0, float(s[0]) - _times_pow2(cc, -e))  # (σ_1 − c)·2^-e
        value += _lam_times(lam, excess * excess, 2 * e)
        coef = _lam_times(lam, 2.0 * excess, 0)  # 2λ(σ_1 − c)·2^-e
        with np.errstate(over="ignore"):  # inf where an entry is beyond the float range
            G = np.ldexp(coef * np.outer(U[:, 0], Vt[0]), e)
        grads[name] = G.astype(W.dtype, copy=False)
    return value, grads


def project_spectral_norm(model: Any, c: float) -> Any:
    """A copy of the model whose recurrent matrix has ``σ_max ≤ c``.

    The Euclidean (Frobenius) projection onto ``{W : σ_max(W) ≤ c}``: with the
    SVD ``W = U diag(σ) Vᵀ``,

    .. math:: \\Pi_c(W) = U\\,\\operatorname{diag}(\\min(\\sigma_i, c))\\,V^{\\top}

    so singular values above ``c`` are set to ``c`` and the others (and the
    singular vectors) are left alone. If ``σ_max(W) ≤ c`` already, ``W`` is kept
    bitwise. Rounding in ``U diag(·) Vᵀ`` (and in the cast to float32) can
    leave the computed ``σ_max`` an ulp above ``c``; the clipped singular values
    are then lowered by a few ulp until ``bounds.gamma_w(W) ≤ c`` holds exactly
    in floating point, which also makes the projection idempotent bitwise.

    Unlike a penalty, this is a hard constraint: with ``c γ_h ≤ 1`` Eq. 12
    gives ``‖∂h_t/∂h_k‖ ≤ 1`` for every input, so gradients cannot explode.
    For an LSTM/GRU the stacked ``weight_hh`` ``(G·n, n)`` is projected as one
    matrix (so each gate block also has ``σ_max ≤ c``). For a
    :class:`~rnntheory.StackedRNN`, each layer's recurrent matrix is projected
    so (every layer ends with ``σ_max ≤ c``).

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        The model (not modified).
    c : float
        The bound, ``c ≥ 0`` (``c = 0`` gives a zero recurrent matrix).

    Returns
    -------
    ElmanRNN, LSTM, GRU or StackedRNN
        A new model of the same kind, every other parameter and option unchanged.

    Raises
    ------
    ValueError
        If ``c`` is negative, not finite, or subnormal (strictly between 0 and
        the smallest normal number of the model's dtype: the projection's
        entries would be subnormal, too coarse to keep its singular vectors).
    TypeError
        If ``model`` is not an ElmanRNN, LSTM, GRU or StackedRNN, or ``c`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN, bounds
    >>> from rnntheory.remedies import project_spectral_norm
    >>> m = ElmanRNN.init(2, 6, None, scheme="gaussian", scale=3.0, seed=0)
    >>> bounds.gamma_w(m.W_hh) > 1
    True
    >>> p = project_spectral_norm(m, 1.0)
    >>> bounds.gamma_w(p.W_hh) <= 1.0
    True
    >>> project_spectral_norm(p, 1.0).W_hh is p.W_hh   # already inside: kept
    True

    The hard counterpart of the penalties of the article's "L1/L2 regularization"
    paragraph; the constraint that makes claim C21's conclusion true.
    """
    mats = _recurrents(model)
    cc = _check_scale("c", c, mats[0][1].dtype)
    return model.replace(**{name: _project(W, cc) for name, W in mats})


def _project(W: np.ndarray, cc: float) -> np.ndarray:
    """``Π_c(W)`` of :func:`project_spectral_norm` (``W`` itself when ``σ_max(W) ≤ c``)."""
    if _sigma_max(W) <= cc:
        return W
    U, s, Vt = np.linalg.svd(W.astype(np.float64, copy=False), full_matrices=False)
    eps = float(np.finfo(W.dtype).eps)
    cap = cc
    # 2^k ulp below c for k = 0, 1, …; reaches cap = 0 (and Wp = 0) at the latest
    # after 1/eps, so the loop always ends with σ_max(Wp) ≤ c.
    for attempt in range(np.finfo(W.dtype).nmant + 2):
        Wp = ((U * np.minimum(s, cap)) @ Vt).astype(W.dtype)
        if _sigma_max(Wp) <= cc:
            break
        cap = cc * max(0.0, 1.0 - eps * 2.0**attempt)
    return Wp


def _sigma_max(W: np.ndarray) -> float:
    """``σ_max(W)`` computed exactly as :func:`rnntheory.bounds.gamma_w` does."""
    return spectral_norm(np.asarray(W, dtype=np.float64))
