"""Hessian-free optimisation with structural damping (Martens & Sutskever 2011).

A trainer of its own: each outer iteration takes the gradient of the batch
loss, solves the damped Gauss–Newton system

.. math::

    \\bigl(G + λ I + λ μ\\,S\\bigr)\\,p = −∇f(θ),\\qquad
    G = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t},\\qquad
    S = \\sum_{b,t} J_{h_t}^⊤ J_{h_t},

by truncated conjugate gradient that sees the curvature only through a
product ``v ↦ (G + λI + λμS) v`` (like SciPy's ``hessp``), picks one of the
saved CG iterates by its actual loss, and adapts ``λ`` by the
Levenberg–Marquardt rule.

Pieces, usable on their own:

* the curvature is the model's: :meth:`ElmanRNN.gauss_newton
  <rnntheory.cells.elman.ElmanRNN.gauss_newton>`, :meth:`LSTM.gauss_newton
  <rnntheory.cells.gated.LSTM.gauss_newton>` and :meth:`GRU.gauss_newton
  <rnntheory.cells.gated.GRU.gauss_newton>` return the operator
  ``G(v) -> G v`` (:class:`~rnntheory.cells.curvature.GaussNewton`, an
  R-forward pass along a stored trace and one backward pass of the linearised
  model, structural damping inside the backward pass: on ``h`` for the Elman
  RNN and the GRU, on the whole state ``(h, c)`` for the LSTM), and a trial
  point's loss is the model's ``loss`` (:meth:`ElmanRNN.loss
  <rnntheory.cells.elman.ElmanRNN.loss>`, :meth:`LSTM.loss
  <rnntheory.cells.gated.LSTM.loss>`, :meth:`GRU.loss <rnntheory.cells.gated.GRU.loss>`);
  ``GaussNewton``, :func:`gauss_newton_product`, :func:`flatten_params` and
  :func:`unflatten_params` are re-exported here from
  :mod:`rnntheory.cells.curvature`;
* :func:`truncated_cg`: CG with a warm start, Martens' relative-progress stopping
  rule and iterates saved at ``⌈1.3^j⌉``;
* :func:`hf_step`: one outer iteration (CG, backtracking, LM update, line search);
* :class:`HessianFree`: the settings, accepted by
  :func:`rnntheory.training.train` as its ``optimizer``.

Vectors are flat float64 arrays holding the parameters in the order of
``model.params()``, each raveled in C order (:func:`flatten_params`,
:func:`unflatten_params`).

Martens 2010 (HF, CG backtracking, LM damping); Martens & Sutskever 2011
(structural damping, RNNs); Schraudolph 2002 (Gauss–Newton products).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import (
    ReachError,
    abs_max,
    all_finite,
    as_float_array,
    check_int,
    check_real,
)
from ..cells.curvature import (
    GaussNewton,
    check_gauss_newton_model,
    flatten_params,
    gauss_newton_product,
    is_stack,
    unflatten_params,
)
from ._loop_parts import Gradient, History, StepMethod, run_steps, train_args, train_seed

__all__ = [
    "CGResult",
    "GaussNewton",
    "HFStepResult",
    "HessianFree",
    "flatten_params",
    "gauss_newton_product",
    "hf_step",
    "truncated_cg",
    "unflatten_params",
]


# ---------------------------------------------------------------- truncated CG
@dataclass(frozen=True)
class CGResult:
    """What :func:`truncated_cg` did.

    Attributes
    ----------
    x : ndarray
        The last iterate.
    iterations : int
        CG iterations done (each one curvature product).
    products : int
        Curvature products, the one for a nonzero ``x0`` included.
    phi : ndarray, shape ``(iterations + 1,)``
        The quadratic model ``φ(x_i) = ½ x_iᵀ A x_i − bᵀ x_i`` at every iterate
        (``phi[0]`` at ``x0``).
    saved : list of (int, ndarray)
        The iterates kept for backtracking: ``(i, x_i)`` for ``i = ⌈1.3^j⌉`` and
        for the last iterate, ascending.
    stop : str
        ``"progress"`` (Martens' rule), ``"max_iter"``, ``"residual"``
        (``‖r‖ ≤ 10⁻¹⁵‖b‖``: solved to rounding), ``"curvature"`` (``pᵀAp ≤ 0``) or
        ``"nonfinite"`` (a product ``A p`` was not finite, or the next iterate or
        its ``φ`` would pass float64's range: the result holds the last finite
        iterate; a non-finite product at a warm start gives ``x = 0`` and no
        iteration). Every number in the result is finite.
    """

    x: np.ndarray
    iterations: int
    products: int
    phi: np.ndarray
    saved: list[tuple[int, np.ndarray]] = field(repr=False)
    stop: str


def _norm(v: np.ndarray) -> float:
    """``‖v‖₂`` of a finite vector, formed on ``v·2^-e`` (no overflow of ``vᵀv``);
    ``inf`` only when the norm itself is beyond float64's range."""
    e = math.frexp(abs_max(v))[1]
    with np.errstate(over="ignore"):
        return float(np.ldexp(np.linalg.norm(np.ldexp(v, -e)), e))


class _StartTooLarge(ValueError):
    """A warm start whose quadratic-model value is beyond float64's range."""


def _save_points(max_iter: int, base: float) -> set[int]:
    pts: set[int] = set()
    j = 0
    while True:
        i = math.ceil(base**j)
        if i > max_iter:
            return pts
        pts.add(i)
        j += 1


def truncated_cg(
    Gv: Callable[[np.ndarray], np.ndarray],
    b: Any,
    x0: Any = None,
    *,
    max_iter: int = 250,
    eps: float = 5e-4,
    save_base: float = 1.3,
) -> CGResult:
    """Truncated conjugate gradient on ``φ(x) = ½ xᵀ A x − bᵀ x``, seeing ``A`` only through ``Gv``.

    Standard CG from ``x0`` (zeros by default), stopped by Martens' relative
    progress rule: with ``k = max(10, ⌈0.1 i⌉)``, stop at iteration ``i > k`` when
    ``φ(x_i) < 0``, ``φ(x_{i−k}) < 0`` and

    .. math::

        \\frac{φ(x_i) − φ(x_{i−k})}{φ(x_i)} < k\\,ε,

    or after ``max_iter`` iterations. ``φ`` is tracked from the residual
    ``r = b − A x`` as ``φ(x) = −½ xᵀ(b + r)`` (no extra product). The iterates
    at ``i = ⌈save_base^j⌉`` and the last one are saved for backtracking.

    Parameters
    ----------
    Gv : callable
        ``v ↦ A v`` for a symmetric positive (semi-)definite ``A`` (e.g. a damped
        Gauss–Newton product); takes and returns float64 vectors.
    b : array, shape ``(N,)``
        Right-hand side (``−∇f`` in Hessian-free).
    x0 : array, shape ``(N,)``, optional
        Warm start (Hessian-free passes ``0.95×`` the previous solution).
    max_iter : int
        Iteration cap (≥ 1).
    eps : float
        ``ε`` of the stopping rule (``5·10⁻⁴`` in Martens 2010).
    save_base : float
        Base (> 1) of the saved-iterate schedule.

    Returns
    -------
    CGResult

    CG is linear in ``(b, x0)``: it runs on ``b·2^-e`` and ``x0·2^-e`` (the
    largest entry in ``[1/2, 1)``, an exact scaling) and scales the iterates
    back, so a ``b`` anywhere in float64's range neither overflows ``rᵀr`` nor
    loses digits; ``φ`` is reported unscaled, and CG stops (``"nonfinite"``)
    before an iterate whose ``x`` or ``φ(x)`` would pass float64's range.

    Raises
    ------
    ValueError, TypeError
        On bad arguments (non-finite ``b`` or ``x0``), a ``Gv`` returning
        something other than a real vector of shape ``(N,)``, or a warm start
        whose ``φ(x0)`` is beyond float64's range.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]])
    >>> res = truncated_cg(lambda v: A @ v, np.array([1.0, 1.0]))
    >>> np.allclose(A @ res.x, [1.0, 1.0]), res.stop
    (True, 'residual')

    Martens 2010, §4.4–4.6 (stopping rule, warm start, backtracking).
    """
    if not callable(Gv):
        raise TypeError(f"`Gv` must be callable (v -> A v), got {type(Gv).__name__}")
    b = as_float_array("b", b, ndim=1, dtype=np.dtype(np.float64))
    N = b.shape[0]
    max_iter = check_int("max_iter", max_iter, minimum=1)
    eps = check_real("eps", eps, low=0.0, low_open=True)
    save_base = check_real("save_base", save_base, low=1.0, low_open=True)
    xs = None
    if x0 is not None:
        xs = as_float_array("x0", x0, ndim=1, dtype=np.dtype(np.float64))
        if xs.shape != (N,):
            raise ValueError(f"`x0` must have shape ({N},), got shape {xs.shape}")
        if not np.any(xs != 0):
            xs = None

    def prod(v: np.ndarray) -> np.ndarray:
        out = as_float_array("Gv(v)", Gv(v), dtype=np.dtype(np.float64), finite=False)
        if out.shape != (N,):
            raise ValueError(f"`Gv` must return shape ({N},), got shape {out.shape}")
        return out

    # CG is linear in (b, x0): run it on b·2^-e, x0·2^-e (largest entry in [1/2, 1);
    # exact scaling) and scale back, so |b| up to float64's limit neither
    # overflows rᵀr nor the products; φ scales by 2^(2e)
    e = math.frexp(max(abs_max(b), 0.0 if xs is None else abs_max(xs)))[1]
    b = np.ldexp(b, -e)
    products = 0
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        if xs is None:
            x = np.zeros(N)
            r = b.copy()
        else:
            x = np.ldexp(xs, -e)
            r = b - prod(x)
            products += 1
        if not all_finite(r):  # the product at the start is not finite
            return CGResult(np.zeros(N), 0, products, np.zeros(1), [(0, np.zeros(N))], "nonfinite")
        phi0 = float(-0.5 * x @ (b + r))
        if not (math.isfinite(phi0) and math.isfinite(float(np.ldexp(phi0, 2 * e)))):
            raise _StartTooLarge(
                f"`x0` is too large for this system: the quadratic model φ(x0) = ½ x0ᵀA x0 − bᵀx0 is beyond "
                f"float64's range (max |x0| = {abs_max(np.ldexp(x, e)):.3g}); rescale `x0` and `b`"
            )
        points = _save_points(max_iter, save_base)
        phi = [phi0]
        saved: list[tuple[int, np.ndarray]] = []
        p = r.copy()
        rr = float(r @ r)
        bb = float(b @ b)
        i = 0
        stop = "max_iter"
        if rr <= 1e-30 * bb or bb == 0.0:
            stop = "residual"
        while stop == "max_iter" and i < max_iter:
            Ap = prod(p)
            products += 1
            pAp = float(p @ Ap)
            if not math.isfinite(pAp) or not all_finite(Ap):
                stop = "nonfinite"
                break
            if pAp <= 0.0:
                stop = "curvature"
                break
            a = rr / pAp
            x_new = x + a * p
            r_new = r - a * Ap
            phi_new = float(-0.5 * x_new @ (b + r_new))
            # the iterate and its φ must be finite here and once scaled back
            if not (math.isfinite(phi_new) and all_finite(x_new) and all_finite(r_new)
                    and math.isfinite(float(np.ldexp(abs_max(x_new), e)))
                    and math.isfinite(float(np.ldexp(phi_new, 2 * e)))):
                stop = "nonfinite"
                break
            x, r = x_new, r_new
            i += 1
            phi.append(phi_new)
            if i in points:
                saved.append((i, x.copy()))
            rr_new = float(r @ r)
            if rr_new <= 1e-30 * bb:  # solved to rounding
                stop = "residual"
                break
            k = max(10, math.ceil(0.1 * i))
            if i > k and phi[i] < 0 and phi[i - k] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * eps:
                stop = "progress"
                break
            p = r + (rr_new / rr) * p
            rr = rr_new
            if not all_finite(p):
                stop = "nonfinite"
                break
        if not saved or saved[-1][0] != i:
            saved.append((i, x.copy()))
    return CGResult(
        np.ldexp(x, e), i, products, np.ldexp(np.asarray(phi), 2 * e),
        [(j, np.ldexp(xj, e)) for j, xj in saved], stop,
    )


# ---------------------------------------------------------------- Hessian-free
@dataclass(frozen=True)
class HessianFree:
    """Settings of Hessian-free optimisation with structural damping.

    Pass to :func:`rnntheory.training.train` as ``optimizer=HessianFree(...)``
    (one training step = one outer iteration on the step's batch), or to
    :func:`hf_step`. The objective is the batch loss averaged over sequences.

    Parameters
    ----------
    lam : float
        Initial Levenberg–Marquardt damping ``λ > 0``.
    mu : float
        Structural-damping weight ``μ ≥ 0`` (the curvature is
        ``G + λI + λμS``); ``0`` disables it. ``1/30`` after Martens &
        Sutskever 2011, *Learning recurrent neural networks with Hessian-free
        optimization*, ICML (a recalled value, not re-checked here).
    max_cg : int
        Cap on CG iterations per outer iteration.
    gv_batch : float or int
        Sequences used for the curvature: a float in ``(0, 1]`` is a fraction of
        the batch, an int ``≥ 1`` a number (capped at the batch size); the first
        ones of the batch are used. ``1.0``: the whole batch.
    eps : float
        ``ε`` of Martens' CG stopping rule.
    decay : float
        Warm start: CG starts from ``decay ×`` the previous CG solution.
    lm_factor : float
        ``λ ← lm_factor·λ`` when ``ρ < 1/4``, ``λ ← λ/lm_factor`` when ``ρ > 3/4``.
    max_line_search : int
        Step scales ``0.8^k``, ``k = 1..max_line_search``, tried when the chosen
        iterate does not reduce the loss; ``0`` disables the line search.

    Raises
    ------
    ValueError, TypeError
        On out-of-range settings (the message names the field).

    Examples
    --------
    >>> HessianFree(lam=0.5, mu=0.0).mu
    0.0

    Martens 2010; Martens & Sutskever 2011.
    """

    lam: float = 1.0
    mu: float = 1.0 / 30.0
    max_cg: int = 250
    gv_batch: float | int = 1.0
    eps: float = 5e-4
    decay: float = 0.95
    lm_factor: float = 1.5
    max_line_search: int = 20

    def __post_init__(self) -> None:
        check_real("lam", self.lam, low=0.0, low_open=True)
        check_real("mu", self.mu, low=0.0)
        check_int("max_cg", self.max_cg, minimum=1)
        if isinstance(self.gv_batch, bool) or not isinstance(self.gv_batch, int | float | np.integer | np.floating):
            raise TypeError(f"`gv_batch` must be a fraction in (0, 1] or a number of sequences, got {self.gv_batch!r}")
        if isinstance(self.gv_batch, int | np.integer):
            check_int("gv_batch", self.gv_batch, minimum=1)
        else:
            check_real("gv_batch", self.gv_batch, low=0.0, high=1.0, low_open=True)
        check_real("eps", self.eps, low=0.0, low_open=True)
        check_real("decay", self.decay, low=0.0, high=1.0)
        check_real("lm_factor", self.lm_factor, low=1.0, low_open=True)
        check_int("max_line_search", self.max_line_search, minimum=0)

    def curvature_size(self, batch_size: int) -> int:
        """Number of sequences used for the curvature out of ``batch_size`` (an int ``≥ 1``).

        Raises
        ------
        TypeError, ValueError
            When ``batch_size`` is not an integer ``≥ 1``.

        Examples
        --------
        >>> HessianFree(gv_batch=0.3).curvature_size(10), HessianFree(gv_batch=4).curvature_size(3)
        (3, 3)
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        if isinstance(self.gv_batch, int | np.integer):
            return min(int(self.gv_batch), batch_size)
        return max(1, min(batch_size, math.ceil(float(self.gv_batch) * batch_size)))


@dataclass(frozen=True)
class HFStepResult:
    """One Hessian-free outer iteration.

    Attributes
    ----------
    model : ElmanRNN, LSTM or GRU
        The model after the step (the input model when no step was taken).
    loss_before, loss_after : float
        Batch loss (mean over sequences) before and after.
    lam_before, lam_after : float
        Damping ``λ`` before and after the Levenberg–Marquardt update.
    rho : float
        Reduction ratio (actual / predicted reduction) of the chosen iterate;
        the prediction uses the undamped Gauss–Newton model
        ``gᵀp + ½ pᵀGp``. ``-inf`` (the one non-finite field) when that
        prediction is not negative: no step (``p = 0``), a zero gradient (an
        all-zero mask), or a reduction below float64's range (mask weights
        near 1e-300, where both reductions underflow to 0); λ then grows.
    cg_iterations : int
    gv_products : int
        Curvature products (CG, plus one for the predicted reduction).
    loss_evals : int
        Loss evaluations (backtracking and line search).
    chosen_iterate : int
        CG iteration index of the iterate chosen by backtracking.
    step_scale : float
        Scale applied to that iterate (1, ``0.8^k`` after a line search, or 0
        when no scale reduced the loss).
    cg_stop : str
        Why CG stopped (see :class:`CGResult`).
    cg_solution : ndarray
        The last CG iterate (the next step's warm start, before ``decay``).
    grad_norm : float
        Norm of the gradient.
    """

    model: Any
    loss_before: float
    loss_after: float
    lam_before: float
    lam_after: float
    rho: float
    cg_iterations: int
    gv_products: int
    loss_evals: int
    chosen_iterate: int
    step_scale: float
    cg_stop: str
    cg_solution: np.ndarray = field(repr=False)
    grad_norm: float = 0.0


def _mean_loss(model: Any, x3: np.ndarray, h: np.ndarray, loss: str, tgt: np.ndarray, m: np.ndarray) -> float:
    """Batch loss averaged over sequences (the model's ``loss``); ``inf`` when it is
    not finite, and when a pre-activation of this (trial) model could pass the
    float range (the model refuses such inputs with a ``ReachError``)."""
    try:
        value = model.loss(x3, tgt, loss=loss, mask=m, h0=h)
    except ReachError:
        return math.inf
    v = value / x3.shape[1]
    return v if np.isfinite(v) else math.inf


def _batched(
    model: Any, x: Any, y: Any, mask: Any, h0: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, h0, y, mask)`` laid out by sequence, ``(T, B, …)``, ``(B, n)`` (``(L, B, n)``
    for a stack),
    ``(T, B[, n_out])``, ``(T, B)`` (zeros for ``h0`` and ones for ``mask`` when
    omitted), for a batch the model has validated: HF takes the curvature on the
    first sequences, and the model's own methods check and cast each slice."""
    xa = np.asarray(x)
    batched = xa.ndim == 3
    x3 = xa if batched else xa[:, None, :]
    T, B = x3.shape[:2]
    ya = np.asarray(y)
    tgt = ya if batched else ya[:, None]
    if mask is None:
        m = np.ones((T, B), dtype=model.dtype)
    else:
        m = np.asarray(mask) if batched else np.asarray(mask)[:, None]
    if is_stack(model):  # a stack's initial states are (L, B, n), as PyTorch's
        if h0 is None:
            h = np.zeros((model.n_layers, B, model.n_hidden), dtype=model.dtype)
        else:
            h = np.asarray(h0) if batched else np.asarray(h0)[:, None, :]
    elif h0 is None:
        h = np.zeros((B, model.n_hidden), dtype=model.dtype)
    else:
        h = np.asarray(h0) if batched else np.asarray(h0)[None, :]
    return x3, h, tgt, m


def _with_step(model: Any, theta: np.ndarray, p: np.ndarray) -> Any:
    with np.errstate(all="ignore"):
        new = theta + p
        # a step beyond the model dtype's range (float32) is not finite there either
        fits = all_finite(new.astype(model.dtype))
    if not fits:
        return None
    return model.replace(**unflatten_params(model, new))


def _hf_iteration(
    model: Any,
    x3: np.ndarray,
    h: np.ndarray,
    loss: str,
    tgt: np.ndarray,
    m: np.ndarray,
    f0: float,
    g: np.ndarray,
    hf: HessianFree,
    lam: float,
    x0: np.ndarray | None,
) -> HFStepResult:
    """The outer iteration once the (mean) loss ``f0`` and gradient ``g`` are known."""
    B = x3.shape[1]
    Bc = hf.curvature_size(B)
    # the curvature on the first Bc sequences, seen only through the model's operator
    h_c = h[:, :Bc] if is_stack(model) else h[:Bc]  # a stack's h0 is (L, B, n)
    G = model.gauss_newton(x3[:, :Bc], tgt[:, :Bc], loss=loss, mask=m[:, :Bc], h0=h_c,
                           lam_struct=lam * hf.mu)

    def damped(v: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # CG checks what comes back
            return G(v, strict=False) / Bc + lam * v

    start = None if x0 is None else hf.decay * x0
    try:
        cg = truncated_cg(damped, -g, start, max_iter=hf.max_cg, eps=hf.eps)
    except _StartTooLarge:
        # the warm start is a hint: one whose φ is beyond float64's range is dropped
        cg = truncated_cg(damped, -g, None, max_iter=hf.max_cg, eps=hf.eps)
    theta = flatten_params(model.params())
    evals = 0

    def loss_at(p: np.ndarray) -> tuple[float, Any]:
        nonlocal evals
        evals += 1
        cand = _with_step(model, theta, p)
        if cand is None:
            return math.inf, None
        return _mean_loss(cand, x3, h, loss, tgt, m), cand

    # backtracking over the saved iterates (Martens 2010, §4.6): from the last one
    # back, while the previous saved iterate has a lower actual loss
    j = len(cg.saved) - 1
    best, best_model = loss_at(cg.saved[j][1])
    while j > 0:
        val, cand = loss_at(cg.saved[j - 1][1])
        if not val < best:
            break
        j -= 1
        best, best_model = val, cand
    chosen_i, p = cg.saved[j]
    # reduction ratio against the undamped Gauss–Newton model
    with np.errstate(all="ignore"):
        pred = float(g @ p + 0.5 * p @ (G(p, lam_struct=0.0, strict=False) / Bc))
    rho = (best - f0) / pred if (pred < 0 and np.isfinite(pred)) else -math.inf
    if not np.isfinite(rho):
        rho = -math.inf
    lam_after = lam
    if rho < 0.25:
        lam_after = lam * hf.lm_factor
    elif rho > 0.75:
        lam_after = lam / hf.lm_factor
    scale = 1.0
    f1, new_model = best, best_model
    if not f1 < f0:
        # line search on the step scale (Armijo, c = 10⁻²)
        with np.errstate(over="ignore", invalid="ignore"):
            slope = float(g @ p)
        scale, f1, new_model = 0.0, f0, None
        c = 1.0
        for _ in range(hf.max_line_search):
            c *= 0.8
            val, cand = loss_at(c * p)
            if val <= f0 + 1e-2 * c * min(slope, 0.0) and val < f0:
                scale, f1, new_model = c, val, cand
                break
    return HFStepResult(
        model=new_model if new_model is not None else model,
        loss_before=float(f0), loss_after=float(f1),
        lam_before=float(lam), lam_after=float(lam_after), rho=float(rho),
        cg_iterations=cg.iterations, gv_products=G.products, loss_evals=evals,
        chosen_iterate=int(chosen_i), step_scale=float(scale), cg_stop=cg.stop,
        cg_solution=cg.x, grad_norm=_norm(g),
    )


def hf_step(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: str,
    mask: Any = None,
    h0: Any = None,
    hf: HessianFree | None = None,
    lam: float | None = None,
    x0: Any = None,
) -> HFStepResult:
    """One Hessian-free outer iteration on a batch (Martens 2010, Alg. 1).

    With ``f`` the loss of the model's ``value_and_grad`` averaged over the
    batch's sequences and ``g = ∇f``: run :func:`truncated_cg` on
    ``(G/B_c + λI + λμS/B_c) p = −g`` (``G``, ``S`` of the operator
    :meth:`ElmanRNN.gauss_newton` (or the LSTM's, the GRU's) returns for the
    first ``B_c`` sequences) from
    ``x0·decay``; backtrack over the saved CG iterates to the one with the
    lowest actual loss (the trial model's ``loss``, ``inf`` for
    one whose pre-activations could pass the float range; scanning back from
    the last); compute ``ρ = (f(θ+p) − f(θ)) / (gᵀp + ½pᵀGp/B_c)``; set
    ``λ ← 1.5λ`` if ``ρ < 1/4``, ``λ ← λ/1.5`` if ``ρ > 3/4``; if ``f(θ+p) ≥ f(θ)``,
    try ``θ + 0.8^k p`` (Armijo) and take no step if none reduces the loss.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        A model with a Gauss–Newton product (an Elman RNN whose ``α`` is fixed,
        an LSTM, a GRU, or a stack of these with no layer that learns ``α``).
    x, y, loss, mask, h0
        As in :meth:`ElmanRNN.value_and_grad` (for a stack, ``h0`` of shape
        ``(L, n)`` or ``(L, B, n)``, as :meth:`StackedRNN.value_and_grad
        <rnntheory.cells.stacked.StackedRNN.value_and_grad>` takes it). For an
        LSTM (or a stack of LSTM layers) the initial cell state is zero
        (``c0 = 0``) in the gradient, the curvature and every trial loss alike;
        ``h0`` is the one initial state HF takes.
    hf : HessianFree, optional
        Settings (defaults when omitted).
    lam : float, optional
        Current damping (``hf.lam`` when omitted); pass the previous result's
        ``lam_after`` to continue.
    x0 : array, optional
        Previous CG solution (``cg_solution`` of the previous result) for the
        warm start; it is multiplied by ``hf.decay``. A warm start whose
        quadratic-model value is beyond float64's range is dropped (CG starts
        from zero).

    Returns
    -------
    HFStepResult

    Raises
    ------
    TypeError, ValueError
        On bad inputs, or when the loss or gradient at ``model`` is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> m = ElmanRNN.init(1, 4, 1, scheme="gaussian", seed=0)
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 5, 1)); y = np.cumsum(x, axis=0) / 4
    >>> r = hf_step(m, x, y, loss="mse", hf=HessianFree(lam=1.0))
    >>> r.loss_after < r.loss_before
    True

    Martens 2010; Martens & Sutskever 2011.
    """
    model = check_gauss_newton_model(model)
    hf = HessianFree() if hf is None else hf
    if not isinstance(hf, HessianFree):
        raise TypeError(f"`hf` must be a HessianFree record, got {type(hf).__name__}")
    lam = hf.lam if lam is None else check_real("lam", lam, low=0.0, low_open=True)
    # the model validates the batch (x, h0, range, loss, y, mask, in that order)
    with np.errstate(all="ignore"):
        value, grads = model.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
    x3, h, tgt, m = _batched(model, x, y, mask, h0)
    B = x3.shape[1]
    xw = None
    if x0 is not None:
        n_params = sum(p.size for p in model.params().values())
        xw = as_float_array("x0", x0, ndim=1, dtype=np.dtype(np.float64))
        if xw.shape != (n_params,):
            raise ValueError(f"`x0` must have shape ({n_params},), got shape {xw.shape}")
    g = flatten_params(grads.params()) / B
    f0 = value / B
    if not (np.isfinite(f0) and np.all(np.isfinite(g))):
        raise ValueError(f"`model` has a non-finite loss or gradient on this batch (loss {f0!r})")
    return _hf_iteration(model, x3, h, loss, tgt, m, f0, g, hf, lam, xw)


# ---------------------------------------------------------------- train()
class _HFStep(StepMethod):
    """Hessian-free's step for the shared loop: one outer iteration per step."""

    desc = "train (HF)"
    fallback_lr = 0.01  # HF has no learning rate: the fallback uses Pascanu et al.'s
    clipped_norm_is_norm = True  # no remedies transform HF's gradient

    def __init__(self, hf: HessianFree, loss: str) -> None:
        self.hf = hf
        self.loss = loss
        self.lam = hf.lam
        self.warm: np.ndarray | None = None

    def gradient(self, model: Any, batch: Any, row: dict[str, Any]) -> Gradient:
        from ..remedies import clipping as C

        with np.errstate(all="ignore"):
            value, gr = model.value_and_grad(batch.x, batch.y, loss=self.loss, mask=batch.mask)
        x3, h, tgt, m = _batched(model, batch.x, batch.y, batch.mask, None)
        B = x3.shape[1]
        g = flatten_params(gr.params()) / B
        f0 = value / B
        norm = C.global_norm(gr.params()) / B
        return Gradient(loss=f0, norm=norm, data=(x3, h, tgt, m, g), usable=bool(np.isfinite(f0)))

    def update(
        self, model: Any, params: dict[str, np.ndarray], grad: Gradient, step: int, row: dict[str, Any],
    ) -> tuple[dict[str, np.ndarray] | None, Any, float, tuple[str, str] | None]:
        x3, h, tgt, m, g = grad.data
        res = _hf_iteration(model, x3, h, self.loss, tgt, m, float(grad.loss), g, self.hf, self.lam, self.warm)
        row["events"].append(("hf", (
            f"lam={res.lam_before:.4g}->{res.lam_after:.4g} cg={res.cg_iterations} "
            f"gv={res.gv_products} rho={res.rho:.3g} iterate={res.chosen_iterate} "
            f"scale={res.step_scale:g} loss={res.loss_before:.4g}->{res.loss_after:.4g}"
        )))
        self.lam, self.warm = res.lam_after, res.cg_solution
        return res.model.params(), res.model, grad.norm, None


def train_hf(
    model: Any,
    task: Any,
    hf: HessianFree,
    *,
    remedies: tuple[Any, ...],
    steps: int,
    batch_size: int,
    seed: int,
    eval_every: int,
    eval_size: int,
    divergence: str,
    divergence_threshold: float,
    progress: bool | None,
) -> History:
    """``train(..., optimizer=HessianFree(...))``: one step = one HF outer iteration.

    Records each step as a History event ``(step, "hf", "lam=… cg=… gv=… rho=…
    scale=…")``. Divergence (a non-finite gradient, or one whose norm exceeds
    ``divergence_threshold``) is handled as in the first-order loop: ``"stop"``
    returns the last finite model; ``"fallback"`` skips the step and multiplies
    ``W_hh`` by the first-order loop's factor at Pascanu et al.'s learning rate
    0.01, ``1 − 0.02·0.01`` (HF has no learning rate of its own). HF never
    applies a non-finite step. A model whose pre-activations could pass the
    float range (no gradient exists) takes the same divergence path, as in the
    first-order loop. The loop itself (batches, seeds, History, divergence,
    evaluation) is the one :func:`~rnntheory.training.train` runs for
    first-order optimizers; HF plugs in its step.
    """
    if remedies:
        raise ValueError(
            "`remedies` are not supported with HessianFree (it is a trainer of its own: "
            f"no clipping, truncation, penalties or projection), got {tuple(type(r).__name__ for r in remedies)}"
        )
    model = check_gauss_newton_model(model)
    steps, batch_size, eval_every, eval_size, divergence, divergence_threshold = train_args(
        model, task, steps, batch_size, eval_every, eval_size, divergence, divergence_threshold
    )
    seed = train_seed(seed)
    return run_steps(
        model, task, _HFStep(hf, task.loss), (), steps=steps, batch_size=batch_size, seed=seed,
        eval_every=eval_every, eval_size=eval_size, divergence=divergence,
        divergence_threshold=divergence_threshold, progress=progress,
    )
