"""The Gauss–Newton matrix of the loss of an Elman RNN, an LSTM or a GRU, as a product ``v ↦ G v``.

The curvature belongs to the model that knows its own forward pass: the
operator stores the cell's forward trace (states, ``f′`` or the gate values and
derivatives, softmax) once and forms each product by an R-forward pass along it
(the Numba kernels of :mod:`rnntheory.cells._gv_kernels` for the Elman RNN, of
:mod:`rnntheory.cells._gated_gv_kernels` for the LSTM and GRU) and one backward
pass of the linearised model (the cell's own BPTT kernels:
:func:`rnntheory.cells._elman_kernels.elman_backward`,
:func:`~rnntheory.cells._gated_kernels.lstm_backward_direct`,
:func:`~rnntheory.cells._gated_kernels.gru_backward`), with the
structural-damping term added to the cotangents of the states.

* :meth:`ElmanRNN.gauss_newton <rnntheory.cells.elman.ElmanRNN.gauss_newton>`,
  :meth:`LSTM.gauss_newton <rnntheory.cells.gated.LSTM.gauss_newton>`,
  :meth:`GRU.gauss_newton <rnntheory.cells.gated.GRU.gauss_newton>`
  (the usual way in) and :class:`GaussNewton`: the operator, a callable
  ``G(v) -> G v`` with its counter of products;
* :func:`gauss_newton_product`: one product (flat vector or dict in, same out);
* :func:`flatten_params`, :func:`unflatten_params`: the flat vectors, the
  parameters in the order of ``model.params()``, each raveled in C order.

Hessian-free (:mod:`rnntheory.training.hessian_free`) sees the curvature only
through this operator.

Martens & Sutskever 2011, *Learning recurrent neural networks with
Hessian-free optimization* (structural damping, RNNs); Schraudolph 2002,
*Fast curvature matrix-vector products for second-order gradient descent*
(Gauss–Newton products); Pearlmutter 1994, *Fast exact multiplication by the
Hessian* (the R-operator).
"""

from __future__ import annotations

import math
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
    abs_max,
    all_finite,
    as_float_array,
    as_model_dtype,
    check_real,
    format_log10,
    read_only,
    transposed,
)
from . import _elman_kernels as K
from . import _gated_gv_kernels as GGK
from . import _gated_kernels as CK
from . import _gv_kernels as GK
from ._base import readout_rows, sum_over_rows

__all__ = [
    "GaussNewton",
    "flatten_params",
    "gauss_newton_product",
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


def is_stack(model: Any) -> bool:
    """Whether ``model`` is a stack of layers (a :class:`~rnntheory.StackedRNN`),
    told apart by its ``layers`` (the stack's module imports this one)."""
    return not isinstance(model, type) and isinstance(getattr(model, "layers", None), tuple) \
        and hasattr(model, "n_layers")


def check_gauss_newton_model(model: Any) -> Any:
    """``model`` itself when it has a Gauss–Newton product (an Elman RNN whose
    retention α is fixed, an LSTM, a GRU, or a stack of these with no layer
    that learns α), else a ``TypeError``/``ValueError`` naming `model`.

    Package-internal: Hessian-free refuses other models with the same message.
    """
    if isinstance(model, type) or not callable(getattr(model, "gauss_newton", None)):
        raise TypeError(
            f"`model` must be an ElmanRNN, LSTM or GRU (Gauss–Newton products exist for these cells), "
            f"or a StackedRNN of such layers, got {type(model).__name__}"
        )
    if is_stack(model):
        for i, layer in enumerate(model.layers):
            if getattr(layer, "learn_alpha", False):
                raise ValueError(
                    f"`model`'s layer {i} learns its retention α (learn_alpha_l{i}=True); Gauss–Newton "
                    f"products treat α as fixed: pass model.replace(learn_alpha_l{i}=False)"
                )
    if getattr(model, "learn_alpha", False):
        raise ValueError(
            "`model` learns its retention α (learn_alpha=True); Gauss–Newton products treat α "
            "as fixed: pass model.replace(learn_alpha=False)"
        )
    return model


# ---------------------------------------------------------------- Gauss–Newton
class GaussNewton:
    """The Gauss–Newton matrix of a model's loss at fixed parameters, as a product.

    One operator for the Elman RNN, the LSTM and the GRU:

    .. math::

        G v = \\sum_b \\sum_{t=1}^T J_{z_t}^⊤ H_{L,t} J_{z_t} v
              \\;+\\; λ_s \\sum_b \\sum_{t=1}^T J_{s_t}^⊤ J_{s_t} v

    where ``z_t`` are the readout outputs (the logits for ``loss="xent"``, the
    linear outputs for ``loss="mse"``; ``h_t`` itself without a readout),
    ``J_{z_t}`` and ``J_{h_t}`` the Jacobians of ``z_t`` and ``h_t`` with respect
    to all parameters, ``H_{L,t} = w_t (diag(p_t) − p_t p_tᵀ)`` (softmax
    cross-entropy, ``p_t`` the softmax of ``z_t``) or ``w_t I`` (squared error),
    ``w_t`` the mask weight, and ``λ_s = lam_struct``. The second sum is
    structural damping (Martens & Sutskever 2011, §4.2) with the squared-error
    penalty ``½‖s_t − s_t(θ)‖²`` on the state ``s_t``, whose Gauss–Newton matrix is
    ``D_t = I``; it applies to every step and sequence, whatever the mask. The
    state is ``h_t`` for the Elman RNN and the GRU, and the whole state
    ``s_t = (h_t, c_t)`` for the LSTM: Martens & Sutskever damp the change of
    the hidden units, the state the recurrence carries, and the LSTM's is the
    pair (``c`` carries the long-range memory; damping ``h`` alone would leave a
    change of ``c`` hidden behind a closed output gate unpenalised). ``J_{s_t}``
    is the Jacobian of ``s_t``. ``G`` is the curvature of the *summed* loss
    ``E`` of the model's ``value_and_grad``.

    The forward trace (states, ``f′``, softmax) is stored once at construction;
    each product is one R-forward pass (``R{h_t}``, ``R{z_t}``), the output
    Hessian, and one backward pass in which ``λ_s R{h_t}`` is added to the flow
    at every step (for the LSTM, ``λ_s R{c_t}`` to the flow of ``c``; the
    gated cells store their gate values and derivatives once, and the
    transposed pass is the cell's own BPTT from these cotangents). Batched
    problems of more than a few million multiply-adds
    run on threads of our own, as :meth:`ElmanRNN.value_and_grad` does
    (:func:`rnntheory.set_num_threads`): the two recurrences over ranges of
    sequences, the rest over ranges of the ``T·B`` rows; the product does not
    depend on the split beyond the rounding of the row sums.

    :meth:`ElmanRNN.gauss_newton <rnntheory.cells.elman.ElmanRNN.gauss_newton>`
    builds the same operator from the model (``model.gauss_newton(x, y,
    loss=...)`` is ``GaussNewton(model, x, y, loss=...)``), as do
    :meth:`LSTM.gauss_newton <rnntheory.cells.gated.LSTM.gauss_newton>` and
    :meth:`GRU.gauss_newton <rnntheory.cells.gated.GRU.gauss_newton>` and
    :meth:`StackedRNN.gauss_newton <rnntheory.cells.stacked.StackedRNN.gauss_newton>`.

    For a stack the state ``s_t`` is the whole state of the stack (every layer's
    ``h^l_t``, and ``c^l_t`` after it for LSTM layers), so structural damping
    covers every layer; each product is an R-forward pass up the layers (layer
    ``l``'s ``R{x_t}`` is layer ``l−1``'s ``R{h_t}``, through ``W_ih``), the
    output Hessian on the top readout, and the stack's own backward pass (each
    layer's, top down) with ``λ_s R{h^l_t}`` (and ``λ_s R{c^l_t}``) added to
    layer ``l``'s cotangents.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU or StackedRNN
        An Elman RNN of any form (standard, Pascanu, leaky) with its retention
        ``α`` fixed (``learn_alpha=False``), an LSTM, a GRU, or a stack of these
        (no layer learning ``α``); float64 or float32.
    x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
    y : array
        Targets as in :meth:`ElmanRNN.value_and_grad` (validated; ``G`` does not
        depend on them for these two matching losses).
    loss : {"xent", "mse"}
    mask : array, shape ``(T,)`` or ``(T, B)``, optional
    h0 : array, optional
        As the model's ``value_and_grad`` takes it (``(L, [B,] n)`` for a stack).
    c0 : array, optional
        The LSTM's (or a stack of LSTM layers') initial cell state (zeros by
        default); other models refuse it.
    lam_struct : float
        The structural-damping weight ``λ_s ≥ 0`` (``λ μ`` in Hessian-free).

    Attributes
    ----------
    model : ElmanRNN, LSTM or GRU
        The model at whose parameters ``G`` is taken.
    loss : str
        The loss (``"xent"`` or ``"mse"``).
    lam_struct : float
        The structural-damping weight of the products (unless overridden per call).
    n_params : int
        Length of the flat vectors.
    products : int
        Products computed so far (the counter Hessian-free reports).

    Raises
    ------
    TypeError
        For a model without a Gauss–Newton product (not an ElmanRNN, LSTM or
        GRU), or bad arrays.
    ValueError
        For bad shapes, ``loss`` or ``lam_struct``, a model that learns its
        ``α``, ``c0`` given for a model other than the LSTM, or inputs with
        which a pre-activation could pass the dtype's range (as the model's
        ``forward``).

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
        model: Any,
        x: Any,
        y: Any,
        *,
        loss: str,
        mask: Any = None,
        h0: Any = None,
        c0: Any = None,
        lam_struct: float = 0.0,
    ) -> None:
        model = check_gauss_newton_model(model)
        self.lam_struct = check_real("lam_struct", lam_struct, low=0.0)
        self._gated = getattr(model, "GATES", None) in (3, 4)
        self._stacked = is_stack(model)
        if self._stacked:
            self._init_stacked(model, x, y, loss, mask, h0, c0)
            return
        if self._gated:
            self._init_gated(model, x, y, loss, mask, h0, c0)
            return
        if c0 is not None:
            raise ValueError("`c0` applies to the LSTM only; this model has no cell state")
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
        self._W_hhT = transposed(model.W_hh)
        self._V = None if model.W_yh is None else np.ascontiguousarray(model.W_yh)
        self._VT = None if model.W_yh is None else transposed(model.W_yh)
        self._zeros_n = np.zeros(n, dtype=dt)
        self._zeros_o = np.zeros(model.n_out, dtype=dt)
        self._form = int(model.form == "pascanu")  # the kernels' form code: 0 standard, 1 Pascanu
        self._alpha = read_only(model.alpha if model.alpha is not None else np.zeros(1, dtype=dt))

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

    def __call__(self, v: Any, *, lam_struct: float | None = None, strict: bool = True) -> np.ndarray:
        """``G v`` for a flat vector ``v (n_params,)`` (float64 out).

        Parameters
        ----------
        v : array, shape ``(n_params,)``
            A finite direction, in the order of :func:`flatten_params`.
        lam_struct : float, optional
            Overrides the structural-damping weight for this product
            (``0`` gives plain Gauss–Newton).
        strict : bool
            ``True`` (default): a product beyond float64's range is refused
            (see Raises). ``False``: it is returned as it comes, with ``±inf``
            or NaN entries where it passes the range (what truncated CG wants:
            it stops on a non-finite product by itself).

        Returns
        -------
        ndarray, shape ``(n_params,)``, float64
            Finite when ``strict``.

        Raises
        ------
        TypeError, ValueError
            When ``v`` is not a finite real vector of length ``n_params``, or
            (``strict``) ``G v`` is beyond float64's range (a ``v`` near the
            limit times a curvature above 1, or products of the linearised model
            that overflow along the sequence): the message names the argument.
        """
        v = as_float_array("v", v, ndim=1, dtype=np.dtype(np.float64))
        if v.shape != (self.n_params,):
            raise ValueError(f"`v` must have shape ({self.n_params},), got shape {v.shape}")
        ls = self.lam_struct if lam_struct is None else check_real("lam_struct", lam_struct, low=0.0)
        if not isinstance(strict, bool | np.bool_):
            raise TypeError(f"`strict` must be a bool, got {strict!r}")
        out, e = self._scaled_product(v, ls)
        if not strict:
            with np.errstate(over="ignore", invalid="ignore"):
                return np.ldexp(out, e)
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

    def _scaled_product(self, v: np.ndarray, ls: float) -> tuple[np.ndarray, int]:
        """``(G (v·2^-e), e)``: the product of ``v`` scaled to a largest entry in
        ``[1/2, 1)`` (exact; ``G v`` is linear), so no ``v`` in float64's range,
        nor one beyond float32's for a float32 model, overflows inside the
        passes; ``G v = out·2^e``."""
        if self._stacked:
            return self._stacked_scaled_product(v, ls)
        if self._gated:
            return self._gated_scaled_product(v, ls)
        self.products += 1
        model = self.model
        dt = model.dtype
        T, B, n = self._T, self._B, self._n
        k, rows = self._threads()
        e = math.frexp(abs_max(v))[1]
        vs = np.ldexp(v, -e) if e != 0 else v
        d = {name: as_model_dtype("v", a, dt) for name, a in self._split(vs).items()}
        dWU_T = transposed(np.concatenate([d["W_hh"], d["W_hx"]], axis=1))
        dWyT = None if self._V is None else transposed(d["W_yh"])
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
                                      model.leaky, self._alpha, RH), B, k)
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
                (self._W_hh, None, read_only(dE.reshape(T, B, n)), self._FP, self._form,
                 model.leaky, self._alpha, flow, D, np.empty((0, 0, 0), dt), 0),
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

    # ------------------------------------------------------------ gated cells
    def _init_gated(self, model: Any, x: Any, y: Any, loss: str, mask: Any, h0: Any, c0: Any) -> None:
        """Store the forward trace of an LSTM or GRU (states, pre-activations, the
        gate values and derivatives, the softmax) for the products."""
        lstm = model.GATES == 4
        if not lstm and c0 is not None:
            raise ValueError("`c0` applies to the LSTM only; a GRU has no cell state")
        x3, batched = model._inputs(x)
        T, B, n_in = x3.shape
        h = model._state("h0", h0, B, batched)
        c = model._state("c0", c0, B, batched) if lstm else None
        model._check_reach(x3, None if h0 is None else h)
        loss, _, m = model._loss_setup(y, loss, mask, T, B, batched)
        self.model = model
        self.loss = loss
        n = model.n_hidden
        G = model.GATES
        dt = model.dtype
        self._T, self._B, self._n, self._n_in = T, B, n, n_in
        self._shapes = [(k, p.shape) for k, p in model.params().items()]
        self.n_params = int(sum(math.prod(s) for _, s in self._shapes))
        self.products = 0
        self._work = T * B * G * n * (n + n_in)
        self._gv_trace: tuple[np.ndarray, ...]
        k = threads_for(B, self._work)
        with own_threads(k), np.errstate(over="ignore", invalid="ignore"):
            if lstm:
                H, C, P = model._vjp_forward(x3, h, c)
                VAL = np.empty((T, B, 4 * n), dtype=dt)
                DER = np.empty((T, B, 4 * n), dtype=dt)
                TC = np.empty((T, B, n), dtype=dt)
                DTC = np.empty((T, B, n), dtype=dt)
                run_rows(GGK.lstm_gv_trace, (P, C, VAL, DER, TC, DTC), B, k)
                self._C = C
                self._gv_trace = (VAL, DER, TC, DTC)
            else:
                H, P = model._vjp_forward(x3, h)
                VAL = np.empty((T, B, 3 * n), dtype=dt)
                DER = np.empty((T, B, 3 * n), dtype=dt)
                run_rows(GGK.gru_gv_trace, (P, VAL, DER), B, k)
                self._gv_trace = (VAL, DER)
            Y = model._readout(H, k)
        self._H, self._Pre = H, P
        self._H1 = H[1:].reshape(T * B, n)
        X2 = x3.reshape(T * B, n_in)
        if lstm:
            # [x_t, h_{t−1}]: the rows that ΔW_ih and ΔW_hh act on, in one product
            self._PX = np.ascontiguousarray(np.concatenate([X2, H[:-1].reshape(T * B, n)], axis=1))
        else:
            self._X2 = np.ascontiguousarray(X2)
            self._Hp = np.ascontiguousarray(H[:-1].reshape(T * B, n))
        self._mask = np.ascontiguousarray(m.reshape(T * B))
        self._P = None
        if loss == "xent":
            Z = np.ascontiguousarray((Y if Y is not None else H[1:]).reshape(T * B, -1))
            self._P = np.empty_like(Z)
            GK.softmax_rows_into(Z, self._P)
        self._W_hh = np.ascontiguousarray(model.weight_hh)
        self._W_hhT = transposed(model.weight_hh)
        self._V = None if model.W_yh is None else np.ascontiguousarray(model.W_yh)
        self._VT = None if model.W_yh is None else transposed(model.W_yh)
        self._zeros_n = np.zeros(n, dtype=dt)
        self._zeros_o = np.zeros(model.n_out, dtype=dt)

    def _gated_scaled_product(self, v: np.ndarray, ls: float) -> tuple[np.ndarray, int]:
        """:meth:`_scaled_product` for an LSTM or GRU: the R-forward pass along
        the stored trace (:mod:`rnntheory.cells._gated_gv_kernels`), the output
        Hessian, and one backward pass of the cell at the trace (its own BPTT
        kernels) from the cotangents ``∂/∂h_t = V ᵀH_L R{z_t} + λ_s R{h_t}`` and,
        for the LSTM, ``∂/∂c_t = λ_s R{c_t}``."""
        self.products += 1
        model = self.model
        dt = model.dtype
        T, B, n, n_in = self._T, self._B, self._n, self._n_in
        lstm = model.GATES == 4
        G = model.GATES
        N = T * B
        k = threads_for(B, self._work)
        e = math.frexp(abs_max(v))[1]
        vs = np.ldexp(v, -e) if e != 0 else v
        d = {name: as_model_dtype("v", a, dt) for name, a in self._split(vs).items()}
        RH = scratch("ggv_RH", (T + 1, B, n), dt)
        RH1 = RH[1:].reshape(N, n)
        with (own_threads(k) if k > 1 else blas_threads_for(self._work),
              np.errstate(over="ignore", invalid="ignore")):
            if lstm:
                VAL, DER, TC, DTC = self._gv_trace
                RC = scratch("ggv_RC", (T + 1, B, n), dt)
                S = scratch("ggv_S", (N, G * n), dt)
                dWT = transposed(np.concatenate([d["weight_ih"], d["weight_hh"]], axis=1))
                readout_rows(self._PX, dWT, d["bias_ih"] + d["bias_hh"], k, out=S)
                run_rows(GGK.lstm_gv_rforward,
                         (self._W_hhT, S.reshape(T, B, G * n), VAL, DER, self._C, TC, DTC, RH, RC), B, k)
            else:
                VAL, DER = self._gv_trace
                S_in = scratch("ggv_Si", (N, G * n), dt)
                S_hid = scratch("ggv_Sh", (N, G * n), dt)
                readout_rows(self._X2, transposed(d["weight_ih"]), d["bias_ih"], k, out=S_in)
                readout_rows(self._Hp, transposed(d["weight_hh"]), d["bias_hh"], k, out=S_hid)
                run_rows(GGK.gru_gv_rforward,
                         (self._W_hhT, S_in.reshape(T, B, G * n), S_hid.reshape(T, B, G * n), VAL, DER,
                          self._Pre, self._H, RH), B, k)
            # R{z_t}, Q = H_L R{z_t}, and the cotangent of h_t (structural damping added)
            Q = scratch("ggv_Q", (N, model.n_out), dt)
            if self._V is None:
                RZ = RH1
            else:
                assert self._VT is not None
                RZ = scratch("ggv_RZ", (N, model.n_out), dt)
                Y2 = scratch("ggv_Y2", (N, model.n_out), dt)
                readout_rows(RH1, self._VT, d["b_y"], k, out=RZ)
                readout_rows(self._H1, transposed(d["W_yh"]), self._zeros_o, k, out=Y2)
                GK.add_scaled(RZ, 1.0, Y2)
            if self._P is not None:
                GK.xent_hessian_apply(self._P, RZ, self._mask, Q)
            else:
                GK.mse_hessian_apply(RZ, self._mask, Q)
            dH = scratch("ggv_dH", (N, n), dt)
            if self._V is None:
                dH[:] = Q
            else:
                readout_rows(Q, self._V, self._zeros_n, k, out=dH)
            if ls != 0.0:
                GK.add_scaled(dH, ls, RH1)  # structural damping on h_t
            dH3 = dH.reshape(T, B, n)
            flow_h = scratch("ggv_flow", (T + 1, B, n), dt)
            if lstm:
                flow_c = scratch("ggv_flow_c", (T + 1, B, n), dt)
                D = scratch("ggv_D", (T, B, G * n), dt)
                if ls != 0.0:
                    dC = scratch("ggv_dC", (N, n), dt)
                    dC[:] = 0.0
                    GK.add_scaled(dC, ls, RC[1:].reshape(N, n))  # structural damping on c_t
                    run_rows(CK.lstm_backward_direct,
                             (self._W_hh, read_only(dH3), read_only(dC.reshape(T, B, n)), self._C, self._Pre,
                              flow_h, flow_c, D), B, k)
                else:
                    none = np.empty((0, 0, 0), dtype=D.dtype)
                    run_rows(CK.lstm_backward,
                             (self._W_hh, None, read_only(dH3), self._C, self._Pre, flow_h, flow_c, D, none, none, 0),
                             B, k)
                D2 = D.reshape(N, G * n)
                g_b = sum_over_rows(K.column_sums, (D2,), k)
                gW = sum_over_rows(K.gemm_tn, (D2, self._PX), k)  # [∂/∂W_ih, ∂/∂W_hh]
                parts = [gW[:, :n_in], gW[:, n_in:], g_b, g_b]
            else:
                D_hid = scratch("ggv_Dh", (T, B, G * n), dt)
                D_in = scratch("ggv_Di", (T, B, G * n), dt)
                run_rows(CK.gru_backward, (self._W_hh, None, read_only(dH3), self._H, self._Pre, flow_h, D_hid, D_in,
                                          np.empty((0, 0, 0), dt), 0), B, k)
                Dh = D_hid.reshape(N, G * n)
                Di = D_in.reshape(N, G * n)
                parts = [
                    sum_over_rows(K.gemm_tn, (Di, self._X2), k),
                    sum_over_rows(K.gemm_tn, (Dh, self._Hp), k),
                    sum_over_rows(K.column_sums, (Di,), k),
                    sum_over_rows(K.column_sums, (Dh,), k),
                ]
            if self._V is not None:
                parts += [sum_over_rows(K.gemm_tn, (Q, self._H1), k), sum_over_rows(K.column_sums, (Q,), k)]
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]), e

    # ------------------------------------------------------------ stacked models
    def _init_stacked(self, model: Any, x: Any, y: Any, loss: str, mask: Any, h0: Any, c0: Any) -> None:
        """Store the forward trace of a :class:`~rnntheory.StackedRNN`: every
        layer's inputs and forward arrays (as its ``value_and_grad`` keeps them),
        the gate values and derivatives of gated layers, the top softmax."""
        x3, batched, h0s, c0s = model._setup(x, h0, c0)
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
        G = {"elman": 1, "lstm": 4, "gru": 3}[model.cell]
        self._work = T * B * G * n * (n + max(n_in, n)) * model.n_layers
        N = T * B
        k = threads_for(B, self._work)
        with np.errstate(over="ignore", invalid="ignore"):
            inputs, saved = model._run_layers(x3, h0s, c0s, for_grad=True, fresh=True)
        self._inputs = inputs
        self._saved = saved
        traces: list[dict[str, Any]] = []
        with own_threads(k), np.errstate(over="ignore", invalid="ignore"):
            for layer, xl, arrs in zip(model.layers, inputs, saved, strict=True):
                H = arrs[0]
                ni = xl.shape[2]
                X2 = xl.reshape(N, ni)
                tr: dict[str, Any] = {"H": H, "W_ihT": None}
                if model.cell == "elman":
                    FP = arrs[1]
                    if layer.form == "standard":
                        prev = H[:-1].reshape(N, n)
                    else:
                        prev = K.activate_array(layer.activation.code, np.ascontiguousarray(H[:-1].reshape(N, n)))
                    tr.update(
                        FP=np.array(FP),  # the layer's backward pass overwrites its copy
                        PX=np.ascontiguousarray(np.concatenate([prev, X2], axis=1)),
                        W_hhT=transposed(layer.W_hh),
                        W_ihT=transposed(layer.W_hx),
                        form=int(layer.form == "pascanu"),
                        leaky=layer.leaky,
                        alpha=layer.alpha if layer.alpha is not None else np.zeros(1, dtype=dt),
                    )
                elif model.cell == "lstm":
                    _, C, P = arrs
                    VAL = np.empty((T, B, 4 * n), dtype=dt)
                    DER = np.empty((T, B, 4 * n), dtype=dt)
                    TC = np.empty((T, B, n), dtype=dt)
                    DTC = np.empty((T, B, n), dtype=dt)
                    run_rows(GGK.lstm_gv_trace, (P, C, VAL, DER, TC, DTC), B, k)
                    tr.update(
                        C=C, trace=(VAL, DER, TC, DTC),
                        PX=np.ascontiguousarray(np.concatenate([X2, H[:-1].reshape(N, n)], axis=1)),
                        W_hhT=transposed(layer.weight_hh),
                        W_ihT=transposed(layer.weight_ih),
                    )
                else:
                    _, P = arrs
                    VAL = np.empty((T, B, 3 * n), dtype=dt)
                    DER = np.empty((T, B, 3 * n), dtype=dt)
                    run_rows(GGK.gru_gv_trace, (P, VAL, DER), B, k)
                    tr.update(
                        P=P, trace=(VAL, DER),
                        X2=np.ascontiguousarray(X2),
                        Hp=np.ascontiguousarray(H[:-1].reshape(N, n)),
                        W_hhT=transposed(layer.weight_hh),
                        W_ihT=transposed(layer.weight_ih),
                    )
                traces.append(tr)
            H_top = saved[-1][0]
            Y = model._readout(H_top, k)
        self._layer_traces = traces
        self._H1 = np.ascontiguousarray(H_top[1:].reshape(N, n))
        self._mask = np.ascontiguousarray(m.reshape(N))
        self._P = None
        if loss == "xent":
            Z = np.ascontiguousarray((Y if Y is not None else H_top[1:]).reshape(N, -1))
            self._P = np.empty_like(Z)
            GK.softmax_rows_into(Z, self._P)
        self._V = None if model.W_yh is None else np.ascontiguousarray(model.W_yh)
        self._VT = None if model.W_yh is None else transposed(model.W_yh)
        self._zeros_n = np.zeros(n, dtype=dt)
        self._zeros_o = np.zeros(model.n_out, dtype=dt)

    def _stacked_scaled_product(self, v: np.ndarray, ls: float) -> tuple[np.ndarray, int]:
        """:meth:`_scaled_product` for a stack: the R-forward pass through the
        layers bottom up (layer ``l``'s ``R{x_t}`` is layer ``l−1``'s ``R{h_t}``,
        entering through ``W_ih R{x_t}``; each layer by its cell's R-forward
        kernel), the output Hessian on the top readout, and the stack's own
        backward pass (each layer's ``_vjp_backward``, top down, passing
        ``∂/∂x`` down) from the cotangents ``∂/∂h^l_t`` (the readout's on the
        top layer) ``+ λ_s R{h^l_t}`` and, for LSTM layers,
        ``∂/∂c^l_t = λ_s R{c^l_t}``."""
        self.products += 1
        model = self.model
        dt = model.dtype
        T, B, n = self._T, self._B, self._n
        N = T * B
        k = threads_for(B, self._work)
        e = math.frexp(abs_max(v))[1]
        vs = np.ldexp(v, -e) if e != 0 else v
        d = {name: as_model_dtype("v", a, dt) for name, a in self._split(vs).items()}
        RHs: list[np.ndarray] = []
        RCs: list[np.ndarray | None] = []
        with (own_threads(k) if k > 1 else blas_threads_for(self._work),
              np.errstate(over="ignore", invalid="ignore")):
            RX: np.ndarray | None = None  # R{x_t} of the layer, (N, n) rows; None for layer 0
            for i, tr in enumerate(self._layer_traces):
                RH = np.empty((T + 1, B, n), dtype=dt)
                RC = None
                if model.cell == "elman":
                    dWU_T = transposed(np.concatenate([d[f"W_hh_l{i}"], d[f"W_hx_l{i}"]], axis=1))
                    S = readout_rows(tr["PX"], dWU_T, d[f"b_h_l{i}"], k)
                    if RX is not None:
                        GK.add_scaled(S, 1.0, readout_rows(RX, tr["W_ihT"], self._zeros_n, k))
                    run_rows(GK.gv_rforward, (tr["W_hhT"], S.reshape(T, B, n), tr["FP"], tr["form"],
                                              tr["leaky"], tr["alpha"], RH), B, k)
                elif model.cell == "lstm":
                    dWT = transposed(np.concatenate([d[f"weight_ih_l{i}"], d[f"weight_hh_l{i}"]], axis=1))
                    S = readout_rows(tr["PX"], dWT, d[f"bias_ih_l{i}"] + d[f"bias_hh_l{i}"], k)
                    if RX is not None:
                        GK.add_scaled(S, 1.0, readout_rows(RX, tr["W_ihT"], np.zeros(4 * n, dtype=dt), k))
                    RC = np.empty((T + 1, B, n), dtype=dt)
                    VAL, DER, TC, DTC = tr["trace"]
                    run_rows(GGK.lstm_gv_rforward,
                             (tr["W_hhT"], S.reshape(T, B, 4 * n), VAL, DER, tr["C"], TC, DTC, RH, RC), B, k)
                else:
                    S_in = readout_rows(tr["X2"], transposed(d[f"weight_ih_l{i}"]),
                                        d[f"bias_ih_l{i}"], k)
                    if RX is not None:
                        GK.add_scaled(S_in, 1.0, readout_rows(RX, tr["W_ihT"], np.zeros(3 * n, dtype=dt), k))
                    S_hid = readout_rows(tr["Hp"], transposed(d[f"weight_hh_l{i}"]),
                                         d[f"bias_hh_l{i}"], k)
                    VAL, DER = tr["trace"]
                    run_rows(GGK.gru_gv_rforward,
                             (tr["W_hhT"], S_in.reshape(T, B, 3 * n), S_hid.reshape(T, B, 3 * n), VAL, DER,
                              tr["P"], tr["H"], RH), B, k)
                RHs.append(RH)
                RCs.append(RC)
                RX = RH[1:].reshape(N, n)
            assert RX is not None
            # R{z_t} on the top layer, Q = H_L R{z_t}, the top layer's cotangent
            Q = np.empty((N, model.n_out), dtype=dt)
            if self._V is None:
                RZ = RX
            else:
                assert self._VT is not None
                RZ = readout_rows(RX, self._VT, d["b_y"], k)
                GK.add_scaled(RZ, 1.0, readout_rows(self._H1, transposed(d["W_yh"]), self._zeros_o, k))
            if self._P is not None:
                GK.xent_hessian_apply(self._P, RZ, self._mask, Q)
            else:
                GK.mse_hessian_apply(RZ, self._mask, Q)
            dh = np.array(Q) if self._V is None else readout_rows(Q, self._V, self._zeros_n, k)
            dh3 = dh.reshape(T, B, n)
        grads: dict[str, np.ndarray] = {}
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(model.n_layers - 1, -1, -1):
                layer = model.layers[i]
                dc3 = None
                if ls != 0.0:
                    dh3 = np.ascontiguousarray(dh3)
                    GK.add_scaled(dh3.reshape(N, n), ls, RHs[i][1:].reshape(N, n))  # damping on h^l_t
                    RC = RCs[i]
                    if RC is not None:
                        dc3 = np.zeros((T, B, n), dtype=dt)
                        GK.add_scaled(dc3.reshape(N, n), ls, RC[1:].reshape(N, n))  # damping on c^l_t
                arrs = self._saved[i]
                if model.cell == "elman":  # its backward pass overwrites FP: a fresh copy each product
                    arrs = (arrs[0], np.array(self._layer_traces[i]["FP"]))
                g, dx = layer._vjp_backward(self._inputs[i], arrs, np.ascontiguousarray(dh3), dc3, need_dx=i > 0)
                for name, a in g.params().items():
                    grads[f"{name}_l{i}"] = a
                dh3 = dx
            if self._V is not None:
                with own_threads(k):
                    grads["W_yh"] = sum_over_rows(K.gemm_tn, (Q, self._H1), k)
                    grads["b_y"] = sum_over_rows(K.column_sums, (Q,), k)
        return np.concatenate([np.asarray(grads[name], dtype=np.float64).ravel() for name, _ in self._shapes]), e


def gauss_newton_product(
    model: Any,
    x: Any,
    y: Any,
    v: Any,
    *,
    loss: str,
    mask: Any = None,
    h0: Any = None,
    lam_struct: float = 0.0,
    c0: Any = None,
) -> Any:
    """One Gauss–Newton–vector product ``G v`` (see :class:`GaussNewton`).

    .. math::

        G v = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t} v + λ_s \\sum_{b,t} J_{s_t}^⊤ J_{s_t} v

    (``s_t = h_t``; ``(h_t, c_t)`` for the LSTM).

    Parameters
    ----------
    model : ElmanRNN, LSTM or GRU
    x, y, loss, mask, h0
        As in the model's ``value_and_grad`` (``G`` is the curvature of the same
        summed loss).
    v : array of shape ``(n_params,)``, or dict like ``model.params()``
        The direction. A flat vector follows the order of ``model.params()``.
    lam_struct : float
        Structural-damping weight ``λ_s ≥ 0`` (``0``: plain Gauss–Newton).
    c0 : array, optional
        The LSTM's initial cell state (zeros by default).

    Returns
    -------
    ndarray or dict
        ``G v`` in the form ``v`` was given: a flat float64 vector, or a dict of
        arrays in the model's dtype.

    Raises
    ------
    TypeError, ValueError
        On a model without a Gauss–Newton product or bad inputs (the message
        names the argument).

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
    G = GaussNewton(model, x, y, loss=loss, mask=mask, h0=h0, c0=c0, lam_struct=lam_struct)
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
