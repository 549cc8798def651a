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

* :class:`GaussNewton` and :func:`gauss_newton_product`: ``G v`` for an
  :class:`~rnntheory.ElmanRNN` by an R-forward pass (Numba kernel) along a
  stored trace and one backward pass (BPTT of the linearised model), with the
  structural-damping term added inside the backward pass;
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
from functools import partial
from typing import Any

import numpy as np

from .._parallel import (
    blas_threads_for,
    own_threads,
    row_ranges,
    run_parallel,
    run_rows,
    scratch,
    threads_for,
)
from .._validation import (
    ReachError,
    abs_max,
    all_finite,
    as_float_array,
    as_model_dtype,
    check_int,
    check_real,
    format_log10,
)
from ..cells import _elman_kernels as K
from ..cells import _gv_kernels as GK
from ..cells._base import (
    readout_rows,
)
from ..cells.elman import FORMS, ElmanRNN

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


# ---------------------------------------------------------------- flat vectors
def flatten_params(params: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate a dict of arrays (in its order, each raveled in C order) into float64.

    Parameters
    ----------
    params : dict of str to ndarray
        Typically ``model.params()`` or ``grads.params()``.

    Returns
    -------
    ndarray, shape ``(N,)``, float64
        The entries as they are (NaN and ±inf included: this only lays the
        arrays end to end).

    Raises
    ------
    TypeError
        When ``params`` is not a dict, or a value is not a real (integer or
        floating-point) array: complex, string, object and boolean arrays are
        refused rather than cast.

    Examples
    --------
    >>> import numpy as np
    >>> flatten_params({"a": np.ones((2, 2)), "b": np.zeros(1)}).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0]
    """
    if not isinstance(params, dict):
        raise TypeError(f"`params` must be a dict of arrays, got {type(params).__name__}")
    if not params:
        return np.zeros(0)
    arrays = [as_float_array(f"params[{k!r}]", p, dtype=np.dtype(np.float64), finite=False) for k, p in params.items()]
    return np.concatenate([a.ravel() for a in arrays])


def unflatten_params(model: Any, vector: Any) -> dict[str, np.ndarray]:
    """Split a flat vector into arrays shaped like ``model.params()`` (model dtype).

    Parameters
    ----------
    model : ElmanRNN (or any model with ``params()`` and ``dtype``)
    vector : array, shape ``(N,)``
        ``N`` the total number of parameters.

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    TypeError
        When ``model`` has no ``params()`` and ``dtype``.
    ValueError
        When ``vector`` has the wrong length, non-finite entries, or (for a
        float32 model) entries beyond float32's range.

    Examples
    --------
    >>> from rnntheory import ElmanRNN
    >>> m = ElmanRNN.init(1, 2, 1, seed=0)
    >>> v = flatten_params(m.params())
    >>> bool(all((unflatten_params(m, v)[k] == p).all() for k, p in m.params().items()))
    True
    """
    params = getattr(model, "params", None) if not isinstance(model, type) else None
    if not callable(params) or not hasattr(model, "dtype"):
        raise TypeError(f"`model` must be a model with params() and dtype (e.g. an ElmanRNN), got {type(model).__name__}")
    shapes = [(k, p.shape) for k, p in params().items()]
    total = sum(math.prod(s) for _, s in shapes)
    v = as_float_array("vector", vector, ndim=1, dtype=np.dtype(np.float64))
    if v.shape != (total,):
        raise ValueError(f"`vector` must have shape ({total},) (the model's parameter count), got shape {v.shape}")
    v = as_model_dtype("vector", v, model.dtype)
    out: dict[str, np.ndarray] = {}
    i = 0
    for k, s in shapes:
        size = math.prod(s)
        out[k] = v[i : i + size].reshape(s).copy()
        i += size
    return out


def _check_elman(model: Any) -> ElmanRNN:
    if not isinstance(model, ElmanRNN):
        raise TypeError(
            f"`model` must be an ElmanRNN (Gauss–Newton products exist for the Elman RNN only), "
            f"got {type(model).__name__}"
        )
    if getattr(model, "learn_alpha", False):
        raise ValueError(
            "`model` learns its retention α (learn_alpha=True); Gauss–Newton products treat α "
            "as fixed: pass model.replace(learn_alpha=False)"
        )
    return model


# ---------------------------------------------------------------- Gauss–Newton
class GaussNewton:
    """The Gauss–Newton matrix of an Elman RNN's loss at fixed parameters, as a product.

    .. math::

        G v = \\sum_b \\sum_{t=1}^T J_{z_t}^⊤ H_{L,t} J_{z_t} v
              \\;+\\; λ_s \\sum_b \\sum_{t=1}^T J_{h_t}^⊤ J_{h_t} v

    where ``z_t`` are the readout outputs (the logits for ``loss="xent"``, the
    linear outputs for ``loss="mse"``; ``h_t`` itself without a readout),
    ``J_{z_t}`` and ``J_{h_t}`` the Jacobians of ``z_t`` and ``h_t`` with respect
    to all parameters, ``H_{L,t} = w_t (diag(p_t) − p_t p_tᵀ)`` (softmax
    cross-entropy, ``p_t`` the softmax of ``z_t``) or ``w_t I`` (squared error),
    ``w_t`` the mask weight, and ``λ_s = lam_struct``. The second sum is
    structural damping (Martens & Sutskever 2011, §4.2) with the squared-error
    penalty ``½‖h_t − h_t(θ)‖²`` on the hidden state, whose Gauss–Newton matrix is
    ``D_t = I``; it applies to every step and sequence, whatever the mask. ``G``
    is the curvature of the *summed* loss ``E`` of
    :meth:`ElmanRNN.value_and_grad`.

    The forward trace (states, ``f′``, softmax) is stored once at construction;
    each product is one R-forward pass (``R{h_t}``, ``R{z_t}``), the output
    Hessian, and one backward pass in which ``λ_s R{h_t}`` is added to the flow
    at every step. Batched problems of more than a few million multiply-adds
    run on threads of our own, as :meth:`ElmanRNN.value_and_grad` does
    (:func:`rnntheory.set_num_threads`): the two recurrences over ranges of
    sequences, the rest over ranges of the ``T·B`` rows; the product does not
    depend on the split beyond the rounding of the row sums.

    Parameters
    ----------
    model : ElmanRNN
        Any form (standard, Pascanu, leaky); float64 or float32.
    x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
    y : array
        Targets as in :meth:`ElmanRNN.value_and_grad` (validated; ``G`` does not
        depend on them for these two matching losses).
    loss : {"xent", "mse"}
    mask : array, shape ``(T,)`` or ``(T, B)``, optional
    h0 : array, optional
    lam_struct : float
        The structural-damping weight ``λ_s ≥ 0`` (``λ μ`` in Hessian-free).

    Attributes
    ----------
    n_params : int
        Length of the flat vectors.
    products : int
        Products computed so far.

    Raises
    ------
    TypeError
        For a model that is not an ElmanRNN, or bad arrays.
    ValueError
        For bad shapes, ``loss`` or ``lam_struct``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> m = ElmanRNN.init(2, 4, 3, scheme="gaussian", seed=0)
    >>> rng = np.random.default_rng(0)
    >>> G = GaussNewton(m, rng.normal(size=(6, 2)), rng.integers(0, 3, 6), loss="xent")
    >>> v = rng.normal(size=G.n_params)
    >>> bool(v @ G(v) >= 0)
    True

    Martens & Sutskever 2011, §3–4; Schraudolph 2002.
    """

    def __init__(
        self,
        model: ElmanRNN,
        x: Any,
        y: Any,
        *,
        loss: str,
        mask: Any = None,
        h0: Any = None,
        lam_struct: float = 0.0,
    ) -> None:
        model = _check_elman(model)
        self.lam_struct = check_real("lam_struct", lam_struct, low=0.0)
        x3, h, batched = model._inputs_h0(x, h0)
        T, B, n_in = x3.shape
        loss, _, m = model._loss_setup(y, loss, mask, T, B, batched)
        self.model = model
        self.loss = loss
        n = model.n_hidden
        dt = model.dtype
        self._T, self._B, self._n, self._n_in = T, B, n, n_in
        self._shapes = [(k, p.shape) for k, p in model.params().items()]
        self.n_params = int(sum(math.prod(s) for _, s in self._shapes))
        self.products = 0
        with np.errstate(over="ignore", invalid="ignore"):
            H, _, Y, FP = model._forward3(x3, h, keep_fprime=True)
        self._H = H
        self._FP = FP
        self._H1 = H[1:].reshape(T * B, n)
        if model.form == "standard":
            prev = H[:-1].reshape(T * B, n)
        else:
            prev = K.activate_array(model.activation.code, np.ascontiguousarray(H[:-1].reshape(T * B, n)))
        self._PX = np.ascontiguousarray(np.concatenate([prev, x3.reshape(T * B, n_in)], axis=1))
        self._mask = np.ascontiguousarray(m.reshape(T * B))
        self._work = T * B * n * max(n + n_in, model.n_out)
        self._P = None
        if loss == "xent":
            Z = np.ascontiguousarray((Y if Y is not None else H[1:]).reshape(T * B, -1))
            self._P = np.empty_like(Z)
            k, rows = self._threads()
            with own_threads(k):
                run_parallel([partial(GK.softmax_rows_into, Z[r0:r1], self._P[r0:r1]) for r0, r1 in rows])
        self._W_hh = np.ascontiguousarray(model.W_hh)
        self._W_hhT = np.ascontiguousarray(model.W_hh.T)
        self._V = None if model.W_yh is None else np.ascontiguousarray(model.W_yh)
        self._VT = None if model.W_yh is None else np.ascontiguousarray(model.W_yh.T)
        self._zeros_n = np.zeros(n, dtype=dt)
        self._zeros_o = np.zeros(model.n_out, dtype=dt)
        self._form = FORMS.index(model.form)

    def _threads(self) -> tuple[int, list[tuple[int, int]]]:
        """Threads of our own for this call (as ``value_and_grad``: one below a few
        million multiply-adds) and the ranges of the ``T·B`` rows they take; the
        recurrences take ranges of sequences (:func:`~rnntheory._parallel.run_rows`)."""
        k = threads_for(self._B, self._work)
        rows = self._T * self._B
        return k, row_ranges(rows, max(1, min(k, rows)))

    def _split(self, v: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        i = 0
        for k, s in self._shapes:
            size = math.prod(s)
            out[k] = v[i : i + size].reshape(s)
            i += size
        return out

    def __call__(self, v: Any, *, lam_struct: float | None = None) -> np.ndarray:
        """``G v`` for a flat vector ``v (n_params,)`` (float64 out).

        Parameters
        ----------
        v : array, shape ``(n_params,)``
        lam_struct : float, optional
            Overrides the structural-damping weight for this product
            (``0`` gives plain Gauss–Newton).

        Returns
        -------
        ndarray, shape ``(n_params,)``, float64
            Finite.

        Raises
        ------
        TypeError, ValueError
            When ``v`` is not a finite real vector of length ``n_params``, or
            ``G v`` is beyond float64's range (a ``v`` near the limit times a
            curvature above 1, or products of the linearised model that
            overflow along the sequence): the message names the argument.
        """
        v = as_float_array("v", v, ndim=1, dtype=np.dtype(np.float64))
        if v.shape != (self.n_params,):
            raise ValueError(f"`v` must have shape ({self.n_params},), got shape {v.shape}")
        ls = self.lam_struct if lam_struct is None else check_real("lam_struct", lam_struct, low=0.0)
        out, e = self._scaled_product(v, ls)
        if not all_finite(out):
            raise ValueError(
                "`model`'s Gauss–Newton product is not finite on this batch (the linearised model's "
                "products along the sequence overflow its dtype): G v cannot be formed"
            )
        with np.errstate(over="ignore"):
            Gv = np.ldexp(out, e)
        if not all_finite(Gv):
            raise ValueError(
                f"`v` is too large: G v has entries beyond float64's range "
                f"(max |v| = {abs_max(v):.3g}, max |G v| = "
                f"{format_log10(math.log10(abs_max(out)) + e * math.log10(2.0), 3)}); rescale `v`"
            )
        return Gv

    def _product(self, v: np.ndarray, lam_struct: float | None = None) -> np.ndarray:
        """``G v`` without checks (``v`` a finite float64 vector of the right
        length; ±inf where the product passes float64's range): the
        Hessian-free loop's product, which detects non-finite results itself."""
        out, e = self._scaled_product(v, self.lam_struct if lam_struct is None else lam_struct)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.ldexp(out, e)

    def _scaled_product(self, v: np.ndarray, ls: float) -> tuple[np.ndarray, int]:
        """``(G (v·2^-e), e)``: the product of ``v`` scaled to a largest entry in
        ``[1/2, 1)`` (exact; ``G v`` is linear), so no ``v`` in float64's range,
        nor one beyond float32's for a float32 model, overflows inside the
        passes; ``G v = out·2^e``."""
        self.products += 1
        model = self.model
        dt = model.dtype
        T, B, n = self._T, self._B, self._n
        k, rows = self._threads()
        e = math.frexp(abs_max(v))[1]
        vs = np.ldexp(v, -e) if e != 0 else v
        d = {name: as_model_dtype("v", a, dt) for name, a in self._split(vs).items()}
        dWU_T = np.ascontiguousarray(np.concatenate([d["W_hh"], d["W_hx"]], axis=1).T)
        dWyT = None if self._V is None else np.ascontiguousarray(d["W_yh"].T)
        # every temporary is a per-thread scratch array reused by the next product
        # (a fresh one cost a page fault per 4 kB: ~3000 a product at h = 64,
        # B = 32, T = 200); none of them leaves this call
        S = scratch("gv_S", (T * B, n), dt)
        RH = scratch("gv_RH", (T + 1, B, n), dt)
        Q = scratch("gv_Q", (T * B, model.n_out), dt)
        flow = scratch("gv_flow", (T + 1, B, n), dt)
        D = scratch("gv_D", (T, B, n), dt)
        RH1 = RH[1:].reshape(T * B, n)
        with (own_threads(k) if k > 1 else blas_threads_for(self._work),
              np.errstate(over="ignore", invalid="ignore")):
            # ΔW p_t + ΔU x_t + Δb, every step at once (ranges of rows)
            readout_rows(self._PX, dWU_T, d["b_h"], k, out=S)
            run_rows(GK.gv_rforward, (self._W_hhT, S.reshape(T, B, n), self._FP, self._form,
                                      model.leaky, model._alpha_arg(), RH), B, k)
            # R{z_t}, the output Hessian and ∂/∂h_t of the linearised loss (ranges of rows)
            if self._V is None:
                dE = Q  # no readout: the loss acts on h_t itself
                run_parallel([partial(self._outputs_rows, RH1, None, Q, None, None, ls, r0, r1)
                              for r0, r1 in rows])
            else:
                assert dWyT is not None
                RZ = scratch("gv_RZ", (T * B, model.n_out), dt)
                Y2 = scratch("gv_Y2", (T * B, model.n_out), dt)
                dE = scratch("gv_dE", (T * B, n), dt)
                run_parallel([partial(self._outputs_rows, RH1, RZ, Q, dE, (Y2, dWyT, d["b_y"]), ls, r0, r1)
                              for r0, r1 in rows])
            run_rows(
                K.elman_backward,
                (self._W_hh, None, dE.reshape(T, B, n), self._FP, self._form,
                 model.leaky, model._alpha_arg(), flow, D, 0),
                B, k,
            )
            partials = run_parallel([partial(self._grad_rows, D.reshape(T * B, n), Q, r0, r1)
                                     for r0, r1 in rows])
        parts = partials[0]
        for more in partials[1:]:
            for total, part in zip(parts, more, strict=True):
                total += part
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]), e

    def _outputs_rows(
        self,
        RH1: np.ndarray,
        RZ: np.ndarray | None,
        Q: np.ndarray,
        dE: np.ndarray | None,
        readout: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        ls: float,
        r0: int,
        r1: int,
    ) -> None:
        """Rows ``r0:r1`` of ``R{z} = V R{h} + ΔV h + Δb_y`` (into ``RZ``; ``R{h}`` itself
        without a readout), ``Q = H_L R{z}``, and ``dE = Vᵀ Q + λ_s R{h}`` (``dE`` is
        ``Q`` without a readout). Only nogil kernels: rows ranges run concurrently."""
        rh = RH1[r0:r1]
        q = Q[r0:r1]
        if readout is not None:
            assert RZ is not None and dE is not None and self._VT is not None and self._V is not None
            Y2, dWyT, db_y = readout
            rz = RZ[r0:r1]
            K.readout_into(rh, self._VT, db_y, rz)
            K.readout_into(self._H1[r0:r1], dWyT, self._zeros_o, Y2[r0:r1])
            GK.add_scaled(rz, 1.0, Y2[r0:r1])
        else:
            rz = rh
        if self._P is not None:
            GK.xent_hessian_apply(self._P[r0:r1], rz, self._mask[r0:r1], q)
        else:
            GK.mse_hessian_apply(rz, self._mask[r0:r1], q)
        de = q
        if readout is not None:
            assert dE is not None
            de = dE[r0:r1]
            K.readout_into(q, self._V, self._zeros_n, de)
        if ls != 0.0:
            GK.add_scaled(de, ls, rh)  # structural damping enters the backward flow here

    def _grad_rows(self, D2: np.ndarray, Q: np.ndarray, r0: int, r1: int) -> list[np.ndarray]:
        """The parameter gradients of the linearised loss summed over rows ``r0:r1``
        (``W_hh``, ``W_hx``, ``b_h`` from ``D``; ``W_yh``, ``b_y`` from ``Q``)."""
        n = self._n
        d = D2[r0:r1]
        gWU = K.gemm_tn(d, self._PX[r0:r1])
        parts = [gWU[:, :n], gWU[:, n:], K.column_sums(d)]
        if self._V is not None:
            q = Q[r0:r1]
            parts += [K.gemm_tn(q, self._H1[r0:r1]), K.column_sums(q)]
        return parts


def gauss_newton_product(
    model: ElmanRNN,
    x: Any,
    y: Any,
    v: Any,
    *,
    loss: str,
    mask: Any = None,
    h0: Any = None,
    lam_struct: float = 0.0,
) -> Any:
    """One Gauss–Newton–vector product ``G v`` (see :class:`GaussNewton`).

    .. math::

        G v = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t} v + λ_s \\sum_{b,t} J_{h_t}^⊤ J_{h_t} v

    Parameters
    ----------
    model : ElmanRNN
    x, y, loss, mask, h0
        As in :meth:`ElmanRNN.value_and_grad` (``G`` is the curvature of the same
        summed loss).
    v : array of shape ``(n_params,)``, or dict like ``model.params()``
        The direction. A flat vector follows the order of ``model.params()``.
    lam_struct : float
        Structural-damping weight ``λ_s ≥ 0`` (``0``: plain Gauss–Newton).

    Returns
    -------
    ndarray or dict
        ``G v`` in the form ``v`` was given: a flat float64 vector, or a dict of
        arrays in the model's dtype.

    Raises
    ------
    TypeError, ValueError
        On a non-Elman model or bad inputs (the message names the argument).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> m = ElmanRNN.init(1, 3, 1, scheme="gaussian", seed=1)
    >>> x = np.ones((4, 1)); y = np.zeros((4, 1))
    >>> v = {k: np.ones_like(p) for k, p in m.params().items()}
    >>> Gv = gauss_newton_product(m, x, y, v, loss="mse")
    >>> list(Gv) == list(m.params())
    True

    Martens & Sutskever 2011, §3–4.
    """
    G = GaussNewton(model, x, y, loss=loss, mask=mask, h0=h0, lam_struct=lam_struct)
    if isinstance(v, dict):
        names = list(model.params())
        if list(v) != names:
            raise ValueError(f"`v` as a dict must have the keys {names} in that order, got {list(v)}")
        vd = {}
        for k, p in model.params().items():
            a = as_float_array(f"v[{k!r}]", v[k], dtype=np.dtype(np.float64))
            if a.shape != p.shape:
                raise ValueError(f"`v[{k!r}]` must have shape {p.shape}, got shape {a.shape}")
            vd[k] = a
        return unflatten_params(model, G(flatten_params(vd)))
    return G(v)


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
    model : ElmanRNN
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

    model: ElmanRNN
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


def _mean_loss(model: ElmanRNN, x3: np.ndarray, h: np.ndarray, loss: str, tgt: np.ndarray, m: np.ndarray) -> float:
    """Batch loss averaged over sequences; ``inf`` when it is not finite, and when
    a pre-activation of this (trial) model could pass the float range."""
    try:
        model._check_reach(x3, h)
    except ReachError:
        return math.inf
    with np.errstate(all="ignore"):
        H, _, Y, _ = model._forward3(x3, h)
        Z = Y if Y is not None else np.ascontiguousarray(H[1:])
        value, _ = model._loss_grad(Z, loss, tgt, m)
    v = value / x3.shape[1]
    return v if np.isfinite(v) else math.inf


def _with_step(model: ElmanRNN, theta: np.ndarray, p: np.ndarray) -> ElmanRNN | None:
    with np.errstate(all="ignore"):
        new = theta + p
        # a step beyond the model dtype's range (float32) is not finite there either
        fits = all_finite(new.astype(model.dtype))
    if not fits:
        return None
    return model.replace(**unflatten_params(model, new))


def _hf_iteration(
    model: ElmanRNN,
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
    G = GaussNewton(model, x3[:, :Bc], tgt[:, :Bc],
                    loss=loss, mask=m[:, :Bc], h0=h[:Bc], lam_struct=lam * hf.mu)

    def damped(v: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # CG checks what comes back
            return G._product(v) / Bc + lam * v

    start = None if x0 is None else hf.decay * x0
    try:
        cg = truncated_cg(damped, -g, start, max_iter=hf.max_cg, eps=hf.eps)
    except _StartTooLarge:
        # the warm start is a hint: one whose φ is beyond float64's range is dropped
        cg = truncated_cg(damped, -g, None, max_iter=hf.max_cg, eps=hf.eps)
    theta = flatten_params(model.params())
    evals = 0

    def loss_at(p: np.ndarray) -> tuple[float, ElmanRNN | None]:
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
        pred = float(g @ p + 0.5 * p @ (G._product(p, 0.0) / Bc))
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
    model: ElmanRNN,
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

    With ``f`` the loss of :meth:`ElmanRNN.value_and_grad` averaged over the
    batch's sequences and ``g = ∇f``: run :func:`truncated_cg` on
    ``(G/B_c + λI + λμS/B_c) p = −g`` (``G``, ``S`` of :class:`GaussNewton` on the
    first ``B_c`` sequences) from ``x0·decay``; backtrack over the saved CG
    iterates to the one with the lowest actual loss (scanning back from the
    last); compute ``ρ = (f(θ+p) − f(θ)) / (gᵀp + ½pᵀGp/B_c)``; set
    ``λ ← 1.5λ`` if ``ρ < 1/4``, ``λ ← λ/1.5`` if ``ρ > 3/4``; if ``f(θ+p) ≥ f(θ)``,
    try ``θ + 0.8^k p`` (Armijo) and take no step if none reduces the loss.

    Parameters
    ----------
    model : ElmanRNN
    x, y, loss, mask, h0
        As in :meth:`ElmanRNN.value_and_grad`.
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
    model = _check_elman(model)
    hf = HessianFree() if hf is None else hf
    if not isinstance(hf, HessianFree):
        raise TypeError(f"`hf` must be a HessianFree record, got {type(hf).__name__}")
    lam = hf.lam if lam is None else check_real("lam", lam, low=0.0, low_open=True)
    x3, h, batched = model._inputs_h0(x, h0)
    T, B, _ = x3.shape
    loss, tgt, m = model._loss_setup(y, loss, mask, T, B, batched)
    xw = None
    if x0 is not None:
        n_params = sum(p.size for p in model.params().values())
        xw = as_float_array("x0", x0, ndim=1, dtype=np.dtype(np.float64))
        if xw.shape != (n_params,):
            raise ValueError(f"`x0` must have shape ({n_params},), got shape {xw.shape}")
    with np.errstate(all="ignore"):
        value, grads = model.value_and_grad(x3, tgt, loss=loss, mask=m, h0=h)
    g = flatten_params(grads.params()) / B
    f0 = value / B
    if not (np.isfinite(f0) and np.all(np.isfinite(g))):
        raise ValueError(f"`model` has a non-finite loss or gradient on this batch (loss {f0!r})")
    return _hf_iteration(model, x3, h, loss, tgt, m, f0, g, hf, lam, xw)


# ---------------------------------------------------------------- train()
def _train_hf(
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
) -> Any:
    """``train(..., optimizer=HessianFree(...))``: one step = one HF outer iteration.

    Records each step as a History event ``(step, "hf", "lam=… cg=… gv=… rho=…
    scale=…")``. Divergence (a non-finite gradient, or one whose norm exceeds
    ``divergence_threshold``) is handled as in the first-order loop: ``"stop"``
    returns the last finite model; ``"fallback"`` skips the step and multiplies
    ``W_hh`` by the first-order loop's factor at Pascanu et al.'s learning rate
    0.01, ``1 − 0.02·0.01`` (HF has no learning rate of its own). HF never
    applies a non-finite step.
    """
    from ..remedies import clipping as C
    from .loop import History, _shrink, _train_args, _train_seed

    if remedies:
        raise ValueError(
            "`remedies` are not supported with HessianFree (it is a trainer of its own: "
            f"no clipping, truncation, penalties or projection), got {tuple(type(r).__name__ for r in remedies)}"
        )
    model = _check_elman(model)
    steps, batch_size, eval_every, eval_size, divergence, divergence_threshold = _train_args(
        model, task, steps, batch_size, eval_every, eval_size, divergence, divergence_threshold
    )
    from tqdm import tqdm

    seed = _train_seed(seed)
    rng = np.random.default_rng(seed)
    eval_batch = task.sample(eval_size, seed + 1)
    cols: dict[str, list[float]] = {k: [] for k in ("loss", "gn", "gw", "rho")}
    ev_steps: list[int] = []
    ev_err: list[float] = []
    ev_loss: list[float] = []
    events: list[tuple[int, str, str]] = []
    stopped = None
    lam = hf.lam
    warm: np.ndarray | None = None

    def record() -> None:
        W = model.W_hh
        cols["gw"].append(float(np.linalg.norm(W, 2)))
        cols["rho"].append(float(np.max(np.abs(np.linalg.eigvals(W)))))

    def evaluate(step: int) -> None:
        tr = model.forward(eval_batch.x)
        out = np.asarray(tr.y if tr.y is not None else tr.h[1:], dtype=np.float64)
        ev_steps.append(step)
        ev_err.append(task.error(out, eval_batch))
        ev_loss.append(task.loss_value(out, eval_batch))

    done = 0
    for step in tqdm(range(1, steps + 1), desc="train (HF)", disable=(None if progress is None else not progress), leave=False):
        done = step
        batch = task.sample(batch_size, rng)
        x3, h, _ = model._inputs_h0(batch.x, None)
        T, B, _ = x3.shape
        loss, tgt, m = model._loss_setup(batch.y, task.loss, batch.mask, T, B, True)
        with np.errstate(all="ignore"):
            value, gr = model.value_and_grad(x3, batch.y, loss=loss, mask=m)
        g = flatten_params(gr.params()) / B
        f0 = value / B
        norm = C.global_norm(gr.params()) / B
        cols["loss"].append(float(f0))
        cols["gn"].append(norm)
        if not (np.isfinite(norm) and np.isfinite(f0) and norm <= divergence_threshold):
            if divergence == "stop":
                stopped = f"gradient norm {norm:.3g} at step {step} (threshold {divergence_threshold:g})"
                events.append((step, "stop", stopped))
                record()
                break
            W, factor = _shrink(model.W_hh, 0.01)
            model = model.replace(W_hh=W)
            events.append((step, "fallback", f"gradient norm {norm:.3g}; W_hh scaled by {factor:.17g}"))
        else:
            res = _hf_iteration(model, x3, h, loss, tgt, m, float(f0), g, hf, lam, warm)
            events.append((step, "hf", (
                f"lam={res.lam_before:.4g}->{res.lam_after:.4g} cg={res.cg_iterations} "
                f"gv={res.gv_products} rho={res.rho:.3g} iterate={res.chosen_iterate} "
                f"scale={res.step_scale:g} loss={res.loss_before:.4g}->{res.loss_after:.4g}"
            )))
            model, lam, warm = res.model, res.lam_after, res.cg_solution
        record()
        if step % eval_every == 0:
            evaluate(step)
    if not ev_steps or ev_steps[-1] != done:
        evaluate(done)
    arr = np.asarray
    gn = arr(cols["gn"])
    return History(
        arr(cols["loss"]), gn, gn.copy(), arr(cols["gw"]), arr(cols["rho"]),
        arr(ev_steps), arr(ev_err), arr(ev_loss), events, model, stopped, done,
    )


# ---------------------------------------------------------------- verify rows
def _check_gv_psd() -> Any:
    """``rnntheory verify`` row: ``vᵀ G v ≥ 0`` and ``uᵀ(Gv) = vᵀ(Gu)`` on small models."""
    import time

    from ..verification import CheckResult

    t0 = time.perf_counter()
    rng = np.random.default_rng(2011)
    worst_neg, worst_sym, n_models, pairs = 0.0, 0.0, 0, 0
    for form in FORMS:
        for act in ("tanh", "sigmoid"):
            for alpha in (None, 0.3):
                for loss in ("xent", "mse"):
                    m = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=1.2, seed=int(rng.integers(1 << 30)),
                                      activation=act, form=form, alpha=alpha)
                    x = rng.normal(size=(12, 2, 2))
                    y = rng.integers(0, 3, (12, 2)) if loss == "xent" else rng.normal(size=(12, 2, 3))
                    G = GaussNewton(m, x, y, loss=loss, lam_struct=0.1)
                    n_models += 1
                    for _ in range(3):
                        u, v = rng.normal(size=(2, G.n_params))
                        Gu, Gv = G(u), G(v)
                        scale = float(np.linalg.norm(Gv) * np.linalg.norm(v)) or 1.0
                        worst_neg = max(worst_neg, -float(v @ Gv) / scale)
                        worst_sym = max(worst_sym, abs(float(u @ Gv) - float(v @ Gu))
                                        / (float(np.linalg.norm(u) * np.linalg.norm(Gv)) or 1.0))
                        pairs += 1
    worst = max(worst_neg, worst_sym)
    return CheckResult(
        "gv-psd",
        "Gauss–Newton (+ structural damping) product: vᵀGv ≥ 0 and uᵀGv = vᵀGu (Martens & Sutskever 2011)",
        n_models, pairs, worst, bool(worst <= 1e-12),
        f"worst relative −vᵀGv {worst_neg:.2g}, worst relative asymmetry {worst_sym:.2g}",
        time.perf_counter() - t0,
    )


def _check_gv_fd() -> Any:
    """``rnntheory verify`` row: ``G v`` against central differences of the linearised gradient.

    The oracle: ``J_z v`` and ``J_h v`` by central differences of the forward pass
    in float64, then ``J_zᵀ (H_L J_z v)`` as the gradient of ``θ ↦ ⟨z(θ), H_L J_z v⟩``
    by central differences (each through :meth:`ElmanRNN.forward` only).
    """
    import time

    from ..verification import CheckResult

    t0 = time.perf_counter()
    rng = np.random.default_rng(2012)
    worst, n_models, entries = 0.0, 0, 0
    eps = 1e-6
    for form in FORMS:
        for alpha in (None, 0.4):
            m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.1, seed=int(rng.integers(1 << 30)),
                              form=form, alpha=alpha)
            x = rng.normal(size=(6, 2))
            y = rng.integers(0, 2, 6)
            mask = rng.uniform(0.2, 1.0, 6)
            theta = flatten_params(m.params())
            v = rng.normal(size=theta.size)

            def outs(th: np.ndarray, m: ElmanRNN = m, x: np.ndarray = x) -> tuple[np.ndarray, np.ndarray]:
                tr = m.replace(**unflatten_params(m, th)).forward(x)
                assert tr.y is not None
                return tr.y, tr.h[1:]

            zp, hp = outs(theta + eps * v)
            zm, hm = outs(theta - eps * v)
            Jz_v, Jh_v = (zp - zm) / (2 * eps), (hp - hm) / (2 * eps)
            z0, _ = outs(theta)
            P = np.exp(z0 - z0.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            Hq = mask[:, None] * (P * Jz_v - P * np.sum(P * Jz_v, axis=1, keepdims=True))
            lam_s = 0.3
            ref = np.empty(theta.size)
            for j in range(theta.size):
                e = np.zeros(theta.size)
                e[j] = eps
                za, ha = outs(theta + e)
                zb, hb = outs(theta - e)
                ref[j] = (np.sum(Hq * (za - zb)) + lam_s * np.sum(Jh_v * (ha - hb))) / (2 * eps)
            got = GaussNewton(m, x, y, loss="xent", mask=mask, lam_struct=lam_s)(v)
            worst = max(worst, float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))))
            n_models += 1
            entries += theta.size
    return CheckResult(
        "gv-fd",
        "Gv = J_zᵀ H_L J_z v + λμ Σ J_hᵀ J_h v, against central differences of the forward pass",
        n_models, entries, worst, bool(worst <= 1e-6),
        "relative max error, float64, ε = 1e-6",
        time.perf_counter() - t0,
    )
