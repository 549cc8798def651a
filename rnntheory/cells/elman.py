"""The Elman RNN (Eqs. 1–4 and 14 of the article) with Numba forward and BPTT.

Three forms of the recurrence, all with an optional leaky integration:

* ``form="standard"`` (Eq. 2b): ``a_t = W_hh h_{t−1} + W_hx x_t + b_h``,
  ``h_t = f(a_t)``.
* ``form="pascanu"``: ``h_t = W_hh f(h_{t−1}) + W_hx x_t + b_h`` (the form whose
  step Jacobian is ``W_hh diag(f′(h_{t−1}))``, the shape Eq. 9 writes).
* ``alpha`` (Eq. 14, the retention coefficient, scalar or per unit):
  ``h_t = α ⊙ h_{t−1} + (1 − α) ⊙ g_t`` with ``g_t`` the update of the chosen form.
  With ``learn_alpha=True`` the per-unit ``α`` is a parameter: ``params()``
  holds it, ``value_and_grad`` returns ``∂E/∂α = Σ_t ∂E/∂h_t ⊙ (h_{t−1} − g_t)``,
  and :meth:`ElmanRNN.replace` projects it onto ``[0, 1]``.

The readout (Eq. 3) is ``y_t = W_yh h_t + b_y``, followed by a softmax and the
cross-entropy (``loss="xent"``), or used as it is with the squared error
``½‖y_t − target_t‖²`` (``loss="mse"``). The loss is summed over steps (Eq. 4)
and over sequences of a batch, with an optional mask of per-step weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import init as _init
from .._linalg import spectral_radius
from .._parallel import blas_threads_for, own_threads, run_rows, scratch, threads_for
from .._validation import (
    abs_max,
    as_float_array,
    as_generator,
    as_model_dtype,
    check_choice,
    check_dtype,
    check_int,
    check_reach,
    check_real,
    check_shape,
    frozen_array,
    read_only,
    transposed,
)
from ..activations import Activation, get_activation
from . import _elman_kernels as K
from ._base import (
    GradsBase,
    SequenceModel,
    TraceBase,
    parse_truncate,
    readout_params,
    readout_rows,
    recurrent_matrix,
    same_dtype,
    sum_over_rows,
)
from .curvature import GaussNewton

__all__ = ["ElmanGrads", "ElmanRNN", "Trace"]

FORMS = ("standard", "pascanu")
# Up to this many state entries (T·B·n), per-step products that do not depend
# on the recurrence are done for all steps at once (one product, 8 MB at most).
_PRECOMPUTE_MAX = 1 << 20
SCHEMES = ("sigmoid", "basic_tanh", "smart_tanh", "gaussian", "orthogonal", "identity", "henaff")


@dataclass(frozen=True)
class Trace(TraceBase):
    """What a forward pass leaves behind.

    Attributes
    ----------
    h : ndarray, shape ``(T+1, n)`` or ``(T+1, B, n)``
        Hidden states; ``h[0]`` is ``h_0`` and ``h[t]`` is ``h_t``.
    a : ndarray, shape ``(T, n)`` or ``(T, B, n)``
        ``a[t-1]`` is the argument of ``f`` at step ``t``: the pre-activation
        ``a_t`` (standard form) or ``h_{t−1}`` (Pascanu's form).
    y : ndarray or None, shape ``(T, n_out)`` or ``(T, B, n_out)``
        Readout ``W_yh h_t + b_y`` (the logits when the loss is a softmax);
        ``None`` when the model has no readout.
    fprime : ndarray or None, shape like ``a``
        ``f′(a)``, kept by ``value_and_grad(keep_trace=True)`` (``None`` from
        :meth:`ElmanRNN.forward`).
    """

    h: np.ndarray
    a: np.ndarray
    y: np.ndarray | None
    fprime: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ElmanGrads(GradsBase):
    """Gradients of the loss, one field per parameter, plus the gradient flow.

    Attributes
    ----------
    W_hh, W_hx, b_h : ndarray
        ``∂E/∂W_hh`` etc., shaped as the parameters.
    W_yh, b_y : ndarray or None
        Readout gradients (``None`` for a model without readout).
    flow : ndarray, shape ``(T+1, n)`` or ``(T+1, B, n)``
        ``flow[k] = ∂E/∂h_k``, the total derivative of the loss with respect to
        the hidden state at step k (k = 0..T), through every later step: the
        gradient flow whose vanishing or explosion the article studies.
    alpha : ndarray, shape ``(n,)``, or None
        ``∂E/∂α`` for a model with ``learn_alpha=True`` (``None`` otherwise):
        ``Σ_t flow[t] ⊙ (h_{t−1} − g_t)``, ``g_t`` the non-leaky update.
    trace : Trace or None
        The forward pass, when ``value_and_grad(keep_trace=True)`` asked for it.
    """

    W_hh: np.ndarray
    W_hx: np.ndarray
    b_h: np.ndarray
    W_yh: np.ndarray | None
    b_y: np.ndarray | None
    flow: np.ndarray = field(repr=False)
    alpha: np.ndarray | None = None
    trace: Trace | None = field(default=None, repr=False)


class ElmanRNN(SequenceModel):
    """An Elman recurrent network with optional readout and leaky units.

    Parameters
    ----------
    W_hh : array, shape ``(n, n)``
        Recurrent weights. Its dtype (float32 or float64) sets the compute dtype;
        every other parameter must have the same dtype.
    W_hx : array, shape ``(n, n_in)``
        Input weights.
    b_h : array, shape ``(n,)``
        Hidden bias.
    W_yh : array, shape ``(n_out, n)``, optional
        Readout weights (Eq. 3). Without a readout the loss applies to ``h_t``
        directly (as if ``W_yh = I``, ``b_y = 0``).
    b_y : array, shape ``(n_out,)``, optional
        Readout bias; zeros when ``W_yh`` is given and ``b_y`` is not.
    activation : {"tanh", "sigmoid", "identity", "relu"}
        The hidden nonlinearity ``f``.
    form : {"standard", "pascanu"}
        Where ``f`` is applied (see the module docstring).
    alpha : float or array of shape ``(n,)``, optional
        Retention coefficient of Eq. 14, in ``[0, 1]``; ``None`` for no leak.
        (A retention, not a leak rate: see :func:`rnntheory.init.leaky_alpha`
        for the other convention.)
    learn_alpha : bool
        Make the per-unit ``α`` a trained parameter (needs ``alpha``): it
        appears in ``params()`` as ``"alpha"`` (always an ``(n,)`` array),
        ``value_and_grad`` returns ``∂E/∂α`` in ``grads.alpha``, and
        ``replace(alpha=...)`` clips it to ``[0, 1]`` (so a gradient step taken
        through ``replace``, as :func:`rnntheory.training.train` does, is a
        projected gradient step).

    Raises
    ------
    ValueError
        On a non-square ``W_hh``, mismatched shapes, non-finite weights, an
        unknown activation or form, ``alpha`` outside ``[0, 1]``, or
        ``learn_alpha`` without ``alpha``.
    TypeError
        On non-float weights or weights of different dtypes.

    Notes
    -----
    The model owns its parameters: it keeps read-only copies of the arrays it
    is given, so changing the caller's arrays afterwards does not change it,
    writing into ``W_hh`` (or any array of :meth:`params`) raises
    ``ValueError``, and its attributes cannot be reassigned. Forward pass,
    BPTT and the cached transposes read the same values. A changed model is
    a new one: ``model.replace(W_hh=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import ElmanRNN
    >>> model = ElmanRNN.init(2, 8, 3, scheme="smart_tanh", seed=0)
    >>> x = np.zeros((5, 2))
    >>> model.forward(x).h.shape
    (6, 8)

    Eqs. 1–4 and 14 of the article; Pascanu et al. 2013, §2.
    """

    def __init__(
        self,
        W_hh: Any,
        W_hx: Any,
        b_h: Any,
        W_yh: Any = None,
        b_y: Any = None,
        *,
        activation: str | Activation = "tanh",
        form: str = "standard",
        alpha: Any = None,
        learn_alpha: bool = False,
    ) -> None:
        W_hh = recurrent_matrix(W_hh)
        n = W_hh.shape[0]
        dtype = W_hh.dtype
        W_hx = same_dtype("W_hx", as_float_array("W_hx", W_hx, ndim=2), dtype, "W_hh")
        if W_hx.shape[0] != n:
            raise ValueError(f"`W_hx` must have shape ({n}, n_in), got shape {W_hx.shape}")
        b_h = same_dtype("b_h", as_float_array("b_h", b_h, ndim=1), dtype, "W_hh")
        check_shape("b_h", b_h, (n,))
        W_yh, b_y = readout_params(W_yh, b_y, n, dtype, "W_hh")
        self.activation: Activation = get_activation(activation)
        self.form: str = check_choice("form", form, FORMS)
        if alpha is None:
            self.alpha: np.ndarray | None = None
        else:
            if np.ndim(alpha) == 0:
                a = check_real("alpha", alpha, low=0.0, high=1.0)
                alpha_arr = np.full(n, a, dtype=dtype)
            else:
                alpha_arr = as_float_array("alpha", alpha, ndim=1, dtype=np.dtype(np.float64))
                check_shape("alpha", alpha_arr, (n,))
                bad = (alpha_arr < 0) | (alpha_arr > 1)
                if bad.any():
                    raise ValueError(
                        f"`alpha` must lie in [0, 1], got {float(alpha_arr[bad][0])!r} "
                        f"at unit {int(np.argmax(bad))}"
                    )
                alpha_arr = as_model_dtype("alpha", alpha_arr, dtype)
            self.alpha = frozen_array(alpha_arr)
        if not isinstance(learn_alpha, bool | np.bool_):
            raise TypeError(f"`learn_alpha` must be a bool, got {learn_alpha!r}")
        if learn_alpha and self.alpha is None:
            raise ValueError(
                "`learn_alpha=True` needs an initial `alpha` (retention in [0, 1]), got alpha=None"
            )
        self.learn_alpha: bool = bool(learn_alpha)
        # the model owns read-only copies; the transposes below are made from
        # them, so every path (forward, BPTT, ∂E/∂α) reads the same values
        self.W_hh, self.W_hx, self.b_h = frozen_array(W_hh), frozen_array(W_hx), frozen_array(b_h)
        self.W_yh, self.b_y = W_yh, b_y
        self.dtype: np.dtype = dtype
        self._W_hhT = transposed(self.W_hh)
        self._W_hxT = transposed(self.W_hx)
        self._alpha_zero = frozen_array(np.zeros(1, dtype=dtype))
        self._freeze()

    # ------------------------------------------------------------------ shape
    @property
    def n_hidden(self) -> int:
        """Number of hidden units ``n``."""
        return int(self.W_hh.shape[0])

    @property
    def n_in(self) -> int:
        """Input size."""
        return int(self.W_hx.shape[1])

    @property
    def leaky(self) -> bool:
        """Whether the model has leaky integration (``alpha`` given)."""
        return self.alpha is not None

    def params(self) -> dict[str, np.ndarray]:
        """The parameters by name (readout left out when absent; ``"alpha"``
        last when it is learned).

        The arrays are the model's own read-only arrays, not copies: writing
        into one raises ``ValueError``. Compute new arrays from them and pass
        those to :meth:`replace`.
        """
        out = {"W_hh": self.W_hh, "W_hx": self.W_hx, "b_h": self.b_h}
        if self.W_yh is not None:
            out["W_yh"] = self.W_yh
            assert self.b_y is not None
            out["b_y"] = self.b_y
        if self.learn_alpha:
            assert self.alpha is not None
            out["alpha"] = self.alpha
        return out

    def replace(self, **params: Any) -> ElmanRNN:
        """A copy with some parameters (or ``activation``/``form``/``alpha``/
        ``learn_alpha``) replaced.

        When the result learns ``α`` (``learn_alpha``), a finite ``alpha``
        given here is clipped to ``[0, 1]``: the projection that keeps a learned
        retention valid after a gradient step.
        """
        kw = self._replaced(params, "parameter or option of ElmanRNN")
        if kw["learn_alpha"] is True and "alpha" in params and params["alpha"] is not None:
            # projected in float64, then cast: a finite α beyond float32's range is clipped to 1
            a = np.clip(as_float_array("alpha", params["alpha"], ndim=(0, 1), dtype=np.dtype(np.float64)), 0.0, 1.0)
            kw["alpha"] = float(a.reshape(-1)[0]) if np.ndim(params["alpha"]) == 0 else a
        return ElmanRNN(**kw)

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "W_hh": self.W_hh, "W_hx": self.W_hx, "b_h": self.b_h, "W_yh": self.W_yh, "b_y": self.b_y,
            "activation": self.activation, "form": self.form, "alpha": self.alpha,
            "learn_alpha": self.learn_alpha,
        }

    def __repr__(self) -> str:
        leak = "" if self.alpha is None else (", leaky (α learned)" if self.learn_alpha else ", leaky")
        return self._describe("ElmanRNN", f", activation={self.activation.name!r}, form={self.form!r}{leak}")

    # ------------------------------------------------------------- init
    @classmethod
    def init(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int | None,
        *,
        activation: str | None = None,
        scheme: str = "smart_tanh",
        seed: int | None = 0,
        dtype: Any = np.float64,
        scale: float = 1.0,
        form: str = "standard",
        alpha: Any = None,
        alpha_kind: str | None = None,
        learn_alpha: bool = False,
    ) -> ElmanRNN:
        """Draw a model with one of the initialisations of Pascanu et al. 2013
        or an orthogonal-family initialisation of :mod:`rnntheory.init`.

        Parameters
        ----------
        n_in, n_hidden : int
            Input and hidden sizes.
        n_out : int or None
            Readout size; ``None`` for no readout.
        activation : str, optional
            Defaults to ``"sigmoid"`` for ``scheme="sigmoid"``, ``"relu"`` for
            ``scheme="identity"`` (the IRNN), else ``"tanh"``.
        scheme : str
            ``"sigmoid"``: every weight ``N(0, 0.01²)``; ``"basic_tanh"``: every
            weight ``N(0, 0.1²)``; ``"smart_tanh"``: input and output weights
            ``N(0, 0.01²)``, ``W_hh`` sparse with 15 nonzero ``N(0, 1)`` entries per
            row (dense when ``n ≤ 15``) rescaled to spectral radius 0.95;
            ``"gaussian"``: ``W_hh`` entries ``N(0, scale²/n)`` (spectral radius
            near ``scale``), input ``N(0, 1/n_in)``, readout ``N(0, 1/n)``;
            ``"orthogonal"``: ``W_hh`` Haar-random orthogonal times ``scale``
            (:func:`rnntheory.init.scaled_orthogonal`); ``"identity"``:
            ``W_hh = scale · I`` (IRNN, Le et al. 2015); ``"henaff"``:
            ``W_hh = scale · expm(A)``, ``A`` block-diagonal skew-symmetric
            (:func:`rnntheory.init.henaff`, Henaff et al. 2016); for these three,
            other weights as in ``"gaussian"``. Biases are zero throughout.
        seed : int or None
            Seed of NumPy's PCG64 generator.
        dtype : float32 or float64
            Dtype of every parameter (and so of the computation).
        scale : float
            Scale for ``"gaussian"``, ``"orthogonal"``, ``"identity"`` and ``"henaff"``.
        form : str
            Passed to the constructor.
        alpha : float, array of shape ``(n,)``, tuple (low, high) or None
            Leaky units (Eq. 14). A number or an array (or list) is used for
            every unit or per unit; a tuple ``(low, high)`` draws one value per unit from
            ``U[low, high]`` (:func:`rnntheory.init.leaky_alpha`, after every
            weight, so the weights do not depend on it).
        alpha_kind : {"retention", "leak"} or None
            What the numbers in ``alpha`` are: retentions ``α`` (Eq. 14's
            convention, the constructor's) or leak rates ``a = 1 − α``. ``None``
            means ``"retention"`` for a number or array and is an error for a
            range (the article's ``(0.02, 0.2)`` is ambiguous, claim C27: say
            which you mean).
        learn_alpha : bool
            Train the per-unit ``α`` (see the constructor).

        Returns
        -------
        ElmanRNN

        Raises
        ------
        ValueError
            On a bad size, scheme, ``scale``, ``alpha`` or ``alpha_kind``.
        TypeError
            On a non-float ``dtype``.

        Examples
        --------
        >>> from rnntheory import ElmanRNN
        >>> m = ElmanRNN.init(6, 8, 4, scheme="henaff", alpha=(0.02, 0.2),
        ...                   alpha_kind="leak", learn_alpha=True, seed=0)
        >>> bool(m.alpha.min() >= 0.8), sorted(m.params())[0]
        (True, 'W_hh')

        Pascanu et al. 2013, §4 (initialisations of the pathological tasks);
        Le et al. 2015 (identity); Henaff et al. 2016.
        """
        n_in = check_int("n_in", n_in, minimum=1)
        n = check_int("n_hidden", n_hidden, minimum=1)
        if n_out is not None:
            n_out = check_int("n_out", n_out, minimum=1)
        scheme = check_choice("scheme", scheme, SCHEMES)
        # + 0.0 turns -0.0 into 0.0: NumPy's normal() refuses a scale with the sign bit set
        scale = check_real("scale", scale, low=0.0) + 0.0
        dt = check_dtype("dtype", dtype)
        if activation is None:
            activation = {"sigmoid": "sigmoid", "identity": "relu"}.get(scheme, "tanh")
        if alpha_kind is not None:
            alpha_kind = check_choice("alpha_kind", alpha_kind, _init.ALPHA_KINDS)
        alpha_range = isinstance(alpha, tuple)
        if alpha_range and len(alpha) != 2:
            raise ValueError(
                f"`alpha` as a tuple is a range (low, high), got {alpha!r} "
                "(pass per-unit values as a list or array)"
            )
        if alpha_range and alpha_kind is None:
            raise ValueError(
                f"`alpha_kind` must be 'retention' or 'leak' when `alpha` is a range, got None "
                f"with alpha={alpha!r} (claim C27: (0.02, 0.2) are leak rates in the literature)"
            )
        rng = as_generator("seed", seed)
        n_o = n_out if n_out is not None else 0
        if scheme in ("sigmoid", "basic_tanh"):
            s = 0.01 if scheme == "sigmoid" else 0.1
            W_hh = rng.normal(0.0, s, (n, n))
            W_hx = rng.normal(0.0, s, (n, n_in))
            W_yh = rng.normal(0.0, s, (n_o, n))
        elif scheme == "smart_tanh":
            W_hh = np.zeros((n, n))
            nnz = min(15, n)
            for i in range(n):
                cols = rng.choice(n, size=nnz, replace=False)
                W_hh[i, cols] = rng.normal(0.0, 1.0, nnz)
            rho = spectral_radius(W_hh)
            if rho > 0:
                W_hh *= 0.95 / rho
            W_hx = rng.normal(0.0, 0.01, (n, n_in))
            W_yh = rng.normal(0.0, 0.01, (n_o, n))
        else:
            if scheme == "gaussian":
                W_hh = rng.normal(0.0, scale / np.sqrt(n), (n, n))
            elif scheme == "orthogonal":
                W_hh = _init.scaled_orthogonal(n, scale, seed=rng)
            elif scheme == "identity":
                W_hh = _init.identity(n, scale)
            else:
                W_hh = scale * _init.henaff(n, seed=rng)
            W_hx = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n, n_in))
            W_yh = rng.normal(0.0, 1.0 / np.sqrt(n), (n_o, n))
        if alpha_range:
            low, high = alpha
            try:
                alpha = _init.leaky_alpha(n, low, high, kind=alpha_kind or "retention", seed=rng)
            except (ValueError, TypeError) as exc:  # its message names `low`/`high`
                raise type(exc)(f"`alpha` range (low, high) = {alpha!r} is invalid: {exc}") from None
        elif alpha is not None and alpha_kind == "leak":
            a = as_float_array("alpha", alpha, ndim=(0, 1), dtype=np.dtype(np.float64))
            if (a < 0).any() or (a > 1).any():
                raise ValueError(f"`alpha` leak rates must lie in [0, 1], got {alpha!r}")
            alpha = float(1.0 - a[0]) if np.ndim(alpha) == 0 else 1.0 - a
        return cls(
            W_hh.astype(dt),
            W_hx.astype(dt),
            np.zeros(n, dt),
            None if n_out is None else W_yh.astype(dt),
            None if n_out is None else np.zeros(n_o, dt),
            activation=activation,
            form=form,
            alpha=alpha,
            learn_alpha=learn_alpha,
        )

    # ------------------------------------------------------------- forward
    def _inputs_h0(self, x: Any, h0: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        x3, batched = self._inputs(x)
        h = self._state("h0", h0, x3.shape[1], batched)
        self._check_reach(x3, None if h0 is None else h)
        return x3, h, batched

    def _check_reach(self, x3: np.ndarray, h0: np.ndarray | None) -> None:
        """Refuse inputs with which a pre-activation could pass the dtype's range.

        ``|a_t| ≤ rows(W_hx)·max|x| + max|b_h| + rows(W_hh)·sup|h|`` (``rows``:
        the largest row sum of magnitudes). With tanh or sigmoid every state the
        recurrence reads is bounded: ``f(h_{t−1})`` by 1 (Pascanu's form), or
        ``h_{t−1}`` by ``max(1, max|h_0|)`` (standard form, leaky or not: a
        convex combination). With ReLU or the identity only ``h_0``'s part of
        the first step is an input; growth over time is the dynamics.
        """
        bounded = self.activation.name in self._BOUNDED
        xmax = abs_max(x3)
        if bounded:
            sup = 1.0 if (h0 is None or self.form == "pascanu") else max(1.0, abs_max(h0))
        else:
            sup = 0.0 if h0 is None else abs_max(h0)
        if self._reach_ok(("W_hx", "W_hh"), ("b_h",), (xmax, sup)):
            return
        if bounded and self.form == "pascanu":
            rec = self._weight_term("W_hh", "sup |f|", 1.0, None, False)
        else:
            rec = self._state_term("W_hh", h0, bounded)
        f_arg = "f(h_{t−1})" if self.form == "pascanu" else "h_{t−1}"
        check_reach(
            f"the pre-activations W_hh {f_arg} + W_hx x_t + b_h",
            [self._weight_term("W_hx", "max |x|", xmax, "x", True), self._bias_term("b_h"), rec],
            self.dtype, self.n_hidden + self.n_in + 2,
        )

    def _alpha_arg(self) -> np.ndarray:
        return self.alpha if self.alpha is not None else self._alpha_zero

    def _forward3(
        self,
        x3: np.ndarray,
        h0: np.ndarray,
        keep_fprime: bool = False,
        keep_a: bool = False,
        temporary: bool = False,
        readout: bool = True,
        tag: str = "",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        T, B, _ = x3.shape
        n = self.n_hidden
        # ``temporary``: H and FP live only inside the caller (value_and_grad
        # without keep_trace), so per-thread scratch arrays are reused.
        H = scratch("H" + tag, (T + 1, B, n), self.dtype) if temporary else np.empty((T + 1, B, n), dtype=self.dtype)
        # value_and_grad needs f′ but not the arguments of f: skip them there.
        rows_a = T if (keep_a or not keep_fprime) else 0
        if temporary and rows_a:
            A = scratch("A" + tag, (rows_a, B, n), self.dtype)
        else:
            A = np.empty((rows_a, B, n), dtype=self.dtype)
        if keep_fprime and temporary:
            FP = scratch("FP" + tag, (T, B, n), self.dtype)
        else:
            FP = np.empty((T if keep_fprime else 0, B, n), dtype=self.dtype)
        k = threads_for(B, T * B * n * (n + self.n_in))
        with own_threads(k):
            if self.form == "standard" and T * B * n <= _PRECOMPUTE_MAX:
                # small problem: the input projection of every step in one product
                # (a scratch array: U never leaves this call)
                U = scratch("U", (T, B, n), self.dtype)
                readout_rows(x3.reshape(T * B, -1), self._W_hxT, self.b_h, k, out=U.reshape(T * B, n))
            else:
                U = np.empty((0, B, n), dtype=self.dtype)
            run_rows(
                K.elman_forward,
                (self._W_hhT, self._W_hxT, self.b_h, read_only(x3), h0, self.activation.code,
                 FORMS.index(self.form), self.leaky, self._alpha_arg(), H, A, FP, U),
                B, k,
            )
            return H, A, self._readout(H, k) if readout else None, FP

    def forward(self, x: Any, h0: Any = None, *, batch_first: bool = False) -> Trace:
        """Run the network over ``x``.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
            Inputs, time-major; ``x[0]`` is ``x_1``.
        h0 : array, shape ``(n,)`` or ``(B, n)``, optional
            Initial state ``h_0`` (zeros by default).
        batch_first : bool
            ``x`` is ``(B, T, n_in)``: the layout of a
            PyTorch module built with ``batch_first=True``. A 2-D ``x`` is refused.

        Returns
        -------
        Trace
            Hidden states ``h (T+1, …)``, arguments of ``f`` ``a (T, …)`` and
            readouts ``y (T, …)``. Traces are always time-major, with
            ``batch_first=True`` too: ``trace.h`` is ``(T+1, B, n)``.

        Raises
        ------
        ValueError
            On a bad shape or non-finite input; and when a pre-activation could
            pass the dtype's range: ``rows(W_hx)·max|x| + max|b_h| +
            rows(W_hh)·sup|h|`` (``rows``: the largest row sum of magnitudes;
            ``sup|h| = max(1, max|h_0|)`` for tanh/sigmoid units, ``1`` in
            Pascanu's form, ``max|h_0|`` for ReLU/identity units, whose growth
            over time is not checked) beyond it. The message names the argument
            (``x``, ``h0``) or parameter that carries the large values.
        """
        x, = self._time_major(batch_first, x)
        x3, h, batched = self._inputs_h0(x, h0)
        H, A, Y, _ = self._forward3(x3, h)
        if batched:
            return Trace(H, A, Y)
        return Trace(H[:, 0], A[:, 0], None if Y is None else Y[:, 0])

    def loss(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        batch_first: bool = False,
    ) -> float:
        """The loss (Eq. 4) on a batch, by a forward pass alone.

        The value ``E`` that :meth:`value_and_grad` returns, without the
        backward pass: what a line search or a trial step needs.

        Parameters
        ----------
        x, y, loss, mask, h0, batch_first
            As in :meth:`value_and_grad`.

        Returns
        -------
        float
            ``E = Σ_t Σ_b mask[t, b] · E_t``, accumulated in float64; ``inf``
            when it is not finite (states that overflow along the sequence, as
            ReLU or identity units may, or a loss beyond float64's range).

        Raises
        ------
        ValueError
            On bad inputs, targets or mask, and for inputs with which a
            pre-activation could pass the dtype's range (as :meth:`forward`;
            the error is a :class:`~rnntheory._validation.ReachError`, a
            ``ValueError`` a trainer can tell from other bad input).
        TypeError
            On non-numeric inputs or non-integer classes for ``loss="xent"``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import ElmanRNN
        >>> m = ElmanRNN.init(2, 4, 3, scheme="gaussian", seed=0)
        >>> x = np.ones((5, 2)); y = np.array([0, 1, 2, 1, 0])
        >>> bool(m.loss(x, y) == m.value_and_grad(x, y)[0])
        True

        Eq. 4 of the article.
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, h, batched = self._inputs_h0(x, h0)
        T, B, _ = x3.shape
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        with np.errstate(all="ignore"):
            H, _, Y, _ = self._forward3(x3, h)
            Z = Y if Y is not None else np.ascontiguousarray(H[1:])
            value, _ = self._loss_grad(Z, loss, tgt, m)
        return value if math.isfinite(value) else math.inf

    def gauss_newton(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        lam_struct: float = 0.0,
    ) -> GaussNewton:
        """The Gauss–Newton matrix of the loss at these parameters, as a product ``v ↦ G v``.

        .. math::

            G v = \\sum_{b,t} J_{z_t}^⊤ H_{L,t} J_{z_t} v
                  + λ_s \\sum_{b,t} J_{h_t}^⊤ J_{h_t} v

        ``G`` is the curvature of the summed loss ``E`` of
        :meth:`value_and_grad` (``z_t`` the readout, ``H_{L,t}`` the loss's
        Hessian in ``z_t`` times the mask weight); the second sum is structural
        damping (Martens & Sutskever 2011, §4.2), ``λ_s = lam_struct``. The
        forward trace is stored once; each product is one R-forward pass along
        it and one backward pass (see :class:`~rnntheory.cells.curvature.GaussNewton`).

        Parameters
        ----------
        x, y, loss, mask, h0
            As in :meth:`value_and_grad`.
        lam_struct : float
            Structural-damping weight ``λ_s ≥ 0`` (``0``: plain Gauss–Newton).

        Returns
        -------
        GaussNewton
            A callable ``G(v) -> G v`` on flat float64 vectors in the order of
            :func:`~rnntheory.cells.curvature.flatten_params`, with
            ``n_params`` and the counter ``products``.

        Raises
        ------
        ValueError
            On bad inputs (as :meth:`value_and_grad`), a negative
            ``lam_struct``, or a model that learns its ``α``
            (``learn_alpha=True``: the products treat ``α`` as fixed).
        TypeError
            On non-numeric inputs.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import ElmanRNN
        >>> m = ElmanRNN.init(2, 4, 3, scheme="gaussian", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> G = m.gauss_newton(rng.normal(size=(6, 2)), rng.integers(0, 3, 6), loss="xent")
        >>> u, v = rng.normal(size=(2, G.n_params))
        >>> bool(v @ G(v) >= 0), bool(np.isclose(u @ G(v), v @ G(u))), G.products
        (True, True, 3)

        Martens & Sutskever 2011, §3–4; Schraudolph 2002.
        """
        return GaussNewton(self, x, y, loss=loss, mask=mask, h0=h0, lam_struct=lam_struct)

    # ------------------------------------------------------------- gradients
    def value_and_grad(
        self,
        x: Any,
        y: Any,
        *,
        loss: str = "xent",
        mask: Any = None,
        h0: Any = None,
        truncate: int | tuple[int, int] | None = None,
        keep_trace: bool | str = False,
        batch_first: bool = False,
    ) -> tuple[float, ElmanGrads]:
        """Loss (Eq. 4) and its gradient with respect to every parameter (BPTT).

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
            Inputs.
        y : array
            Targets: integer classes ``(T,)``/``(T, B)`` for ``loss="xent"``;
            floats ``(T, n_out)``/``(T, B, n_out)`` for ``loss="mse"``.
        loss : {"xent", "mse"}
            Softmax cross-entropy or squared error ``½‖y_t − target_t‖²``.
        mask : array, shape ``(T,)`` or ``(T, B)``, optional
            Non-negative per-step weights (booleans allowed); targets at steps
            of weight 0 are ignored (and may be any integer, e.g. ``-1``).
        h0 : array, optional
            Initial state.
        truncate : int or (int, int), optional
            Truncated BPTT. ``k2``: the contribution of ``E_t`` through ``h_k``
            is kept only when ``t − k < k2`` (the windowed double sum of Eq. 6,
            cost ``O(T·k2)``). ``(k1, k2)`` with ``k2 ≥ k1``: Williams & Peng's
            BPTT(k1, k2), blocks of ``k1`` losses backpropagated ``k2`` steps from
            the block's end (``k1 = k2`` is the usual chunked truncation, cost
            ``O(T)``). The flow is truncated the same way. ``None`` is full BPTT;
            so is any ``k2 ≥ T`` for the parameter gradients (``k2 > T`` for the
            flow at ``h_0`` too).
        keep_trace : bool
            Also return the forward pass's :class:`Trace` as ``grads.trace``
            (what a regularizer of the flow, such as Ω, needs), without a
            second forward pass. ``"scratch"``: the same, but the trace's arrays
            are per-thread scratch, overwritten by the next ``value_and_grad``
            of this thread (what ``train`` uses for Ω: no fresh allocations);
            under full BPTT, for the standard form, it also keeps the flow's
            part ``u = J_{k+1}ᵀ v_{k+1}`` that :func:`~rnntheory.remedies.omega`
            reads when this record is its ``flow`` (instead of recomputing
            it); nothing else the call returns changes.
        batch_first : bool
            ``x`` is ``(B, T, n_in)``, ``y`` ``(B, T)`` or ``(B, T, n_out)`` and
            ``mask`` ``(B, T)``: the layout of a
            PyTorch module built with ``batch_first=True``. A 2-D ``x`` is refused.

        Returns
        -------
        loss : float
            ``E = Σ_t Σ_b mask[t, b] · E_t``, accumulated in float64.
        grads : ElmanGrads
            Gradients of ``E`` and the flow ``∂E/∂h_k`` for ``k = 0..T``
            (and ``trace`` with ``keep_trace=True``). Traces and flows are
            always time-major: ``trace.h`` is ``(T+1, B, n)``, ``flow``
            ``(T+1, B, n)``, with ``batch_first=True`` too.

        Raises
        ------
        ValueError
            On bad inputs, targets, mask or ``truncate``, and for inputs with
            which a pre-activation could pass the dtype's range (as
            :meth:`forward`).

        Eqs. 4–8 of the article (BPTT).
        """
        x, y, mask = self._time_major(batch_first, x, loss, y=y, mask=mask)
        x3, h, batched = self._inputs_h0(x, h0)
        T, B, n_in = x3.shape
        n = self.n_hidden
        k1, k2 = parse_truncate(truncate)
        loss, tgt, m = self._loss_setup(y, loss, mask, T, B, batched)
        if keep_trace not in (False, True, "scratch"):
            raise ValueError(f"`keep_trace` must be True, False or 'scratch', got {keep_trace!r}")
        temporary = keep_trace is False or keep_trace == "scratch"
        UH: np.ndarray | None = None
        H, A, Y, FP = self._forward3(x3, h, keep_fprime=True, keep_a=bool(keep_trace), temporary=temporary)
        Z = Y if Y is not None else np.ascontiguousarray(H[1:])
        value, dZ = self._loss_grad(Z, loss, tgt, m)
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        # threads of our own for large batches (then BLAS runs on one thread)
        k = threads_for(B, T * B * n * (n + max(n_in, self.n_out)))
        # k2 > T keeps every pair, flow at h_0 included. Aligned chunks (k1 = k2
        # dividing T) are full BPTT with the flow cut at block starts: the fast path.
        chunk = k1 if (k2 is not None and k2 == k1 and T % k1 == 0) else 0
        if k2 is not None and k2 <= T and not chunk:
            D = scratch("D", (T, B, n), self.dtype)
            K.elman_backward_truncated(
                self.W_hh, self.W_yh, dZ, FP, FORMS.index(self.form), self.leaky,
                self._alpha_arg(), k1, k2, flow, D,
            )
        else:
            # the kernel overwrites f′ with D step by step (f′ is not needed after),
            # unless the trace keeps it
            if not keep_trace:
                D = FP
            else:
                D = scratch("D", FP.shape, self.dtype) if temporary else np.empty_like(FP)
            W_yh, dE = self.W_yh, dZ
            if W_yh is not None and T * B * n <= _PRECOMPUTE_MAX:
                # small problem: ∂E_t/∂h_t = dZ_t W_yh for every step in one product
                dE = scratch("dE", (T, B, n), self.dtype)
                with own_threads(k):
                    readout_rows(dZ.reshape(T * B, -1), W_yh, np.zeros(n, self.dtype), k, out=dE.reshape(T * B, n))
                W_yh = None
            # a "scratch" trace (train's Ω step) under full BPTT also keeps u = J_{k+1}ᵀ v_{k+1},
            # which Ω of the standard form then reads instead of recomputing (remedies/omega.py)
            parts = keep_trace == "scratch" and not chunk and self.form == "standard"
            UH = scratch("elman_UH", (T, B, n), self.dtype) if parts else np.empty((0, 0, 0), self.dtype)
            with own_threads(k):
                run_rows(
                    K.elman_backward,
                    (self.W_hh, W_yh, read_only(dE), FP, FORMS.index(self.form), self.leaky, self._alpha_arg(),
                     flow, D, UH, chunk),
                    B, k,
                )
        D2 = D.reshape(T * B, n)
        if self.form == "standard":
            prev = H[:-1].reshape(T * B, n)
        else:
            prev = K.activate_array(self.activation.code, np.ascontiguousarray(H[:-1].reshape(T * B, n)))
        with own_threads(k), blas_threads_for(T * B * n * max(n, n_in, self.n_out)):
            g_hh = sum_over_rows(K.gemm_tn, (D2, prev), k)
            g_hx = sum_over_rows(K.gemm_tn, (D2, x3.reshape(T * B, n_in)), k)
            g_bh = sum_over_rows(K.column_sums, (D2,), k)
            g_yh, g_by = self._readout_grads(dZ, H, k)
        g_alpha = self._alpha_grad(H, x3, flow) if self.learn_alpha else None
        trace = None
        if keep_trace:
            trace = (
                Trace(H, A, Y, FP) if batched
                else Trace(H[:, 0], A[:, 0], None if Y is None else Y[:, 0], FP[:, 0])
            )
        if not batched:
            flow = flow[:, 0]
        grads = ElmanGrads(g_hh, g_hx, g_bh, g_yh, g_by, flow, g_alpha, trace)
        if UH is not None and UH.shape[0]:  # not a field: valid only until this thread's next call
            object.__setattr__(grads, "_omega_parts", (self.W_hh, trace, D, UH, None))
        return float(value), grads

    # ------------------------------------------------------------- vjp
    def vjp(
        self,
        x: Any,
        dh: Any,
        *,
        h0: Any = None,
        c0: Any = None,
        dc: Any = None,
        batch_first: bool = False,
    ) -> tuple[ElmanGrads, np.ndarray]:
        """The vector–Jacobian product of the map ``(x, params, h_0) ↦ (h_1, …, h_T)``.

        For the scalar ``E = Σ_t dh_t · h_t`` (``dh[t-1]`` the direct
        ``∂E/∂h_t``, e.g. what a layer above or a readout sends down), BPTT
        through the recurrence gives every parameter's gradient, the total
        flow ``∂E/∂h_k`` (k = 0..T) and the input gradient ``∂E/∂x_t``. No
        readout is involved, even when the model has one.

        With ``D_t = ∂E/∂(argument that x_t enters)``: the pre-activation
        ``a_t = W_hh h_{t−1} + W_hx x_t + b_h`` in the standard form
        (``D_t = flow_t ⊙ (1 − α) ⊙ f′(a_t)``), the update
        ``g_t = W_hh f(h_{t−1}) + W_hx x_t + b_h`` in Pascanu's form
        (``D_t = flow_t ⊙ (1 − α)``), with ``1 − α = 1`` without a leak (Eq. 14
        blends ``h_{t−1}`` and ``g_t``; ``x_t`` enters only ``g_t``). Then
        ``∂E/∂x_t = D_t W_hx`` in every form.

        Parameters
        ----------
        x : array, shape ``(T, n_in)`` or ``(T, B, n_in)``
            Inputs, as in :meth:`forward`.
        dh : array, shape ``(T, n)`` or ``(T, B, n)``
            The cotangent of ``h[1:]``: ``dh[t-1] = ∂E/∂h_t`` (direct part).
            Finite; cast to the model's dtype.
        h0 : array, optional
            Initial state, as in :meth:`forward`.
        c0, dc : None
            For the LSTM only (the signature is shared); must be ``None``.
        batch_first : bool
            ``x`` is ``(B, T, n_in)`` and ``dh`` ``(B, T, n)``: the layout of a
            PyTorch module built with ``batch_first=True``. A 2-D ``x`` is refused.

        Returns
        -------
        grads : ElmanGrads
            ``∂E`` for ``W_hh``, ``W_hx``, ``b_h`` (and ``alpha`` when it is
            learned); readout fields ``None``; ``flow[k] = ∂E/∂h_k`` for
            ``k = 0..T`` (``flow[0]`` is the gradient at ``h_0``). The flow is
            always time-major, ``(T+1, B, n)`` with ``batch_first=True`` too.
        dx : ndarray, shape of ``x``
            ``∂E/∂x`` (``(B, T, n_in)`` with ``batch_first=True``).

        Raises
        ------
        ValueError
            On bad ``x`` or ``h0`` (as :meth:`forward`, reach check included),
            on ``dh`` of the wrong shape or with NaN/inf, or on ``c0``/``dc``
            given.
        TypeError
            On a non-float ``dh``.

        Examples
        --------
        >>> import numpy as np
        >>> from rnntheory import ElmanRNN
        >>> m = ElmanRNN.init(2, 3, None, scheme="gaussian", seed=0)
        >>> x = np.ones((4, 2)); dh = np.zeros((4, 3)); dh[-1, 0] = 1.0
        >>> g, dx = m.vjp(x, dh)
        >>> bool(np.allclose(g.flow[-1], dh[-1])), dx.shape
        (True, (4, 2))

        Eqs. 5–8 of the article (BPTT) with the loss replaced by ``Σ_t dh_t · h_t``.
        """
        if c0 is not None or dc is not None:
            name = "c0" if c0 is not None else "dc"
            raise ValueError(f"`{name}` applies to the LSTM only; an ElmanRNN has no cell state")
        x, dh = self._time_major(batch_first, x, dh=dh)
        x3, h, batched = self._inputs_h0(x, h0)
        T, B, _ = x3.shape
        dh3 = self._cotangent("dh", dh, T, B, batched)
        H, FP = self._vjp_forward(x3, h)
        grads, dx = self._vjp_backward(x3, (H, FP), dh3)
        if batched:
            return grads, self._batch_major(dx, bool(batch_first))
        return ElmanGrads(
            grads.W_hh, grads.W_hx, grads.b_h, None, None, grads.flow[:, 0], grads.alpha
        ), dx[:, 0]

    def _vjp_forward(
        self, x3: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None, tag: str | None = None
    ) -> tuple[np.ndarray, ...]:
        """The forward pass that :meth:`_vjp_backward` reads, on checked arrays.

        Package-level building block of :meth:`vjp` and of stacked models (no
        validation: ``x3 (T, B, n_in)`` C-contiguous in the model's dtype,
        ``h0 (B, n)``, inputs already reach-checked). Returns ``(H, FP)``:
        states ``(T+1, B, n)`` and ``f′`` at the arguments of ``f``
        ``(T, B, n)`` (no readout; ``c0`` is ignored): fresh arrays, or per-thread
        scratch arrays named with ``tag`` (overwritten by the next call with it).
        """
        H, _, _, FP = self._forward3(
            x3, h0, keep_fprime=True, readout=False, temporary=tag is not None, tag=tag or ""
        )
        return H, FP

    def _vjp_backward(
        self,
        x3: np.ndarray,
        saved: tuple[np.ndarray, ...],
        dh3: np.ndarray,
        dc3: np.ndarray | None = None,
        need_dx: bool = True,
    ) -> tuple[ElmanGrads, np.ndarray]:
        """BPTT of :meth:`vjp` from the arrays of :meth:`_vjp_forward` (``saved =
        (H, FP)``; ``FP`` is overwritten) and ``dh3 (T, B, n)``: batched grads
        (``flow (T+1, B, n)``) and ``dx (T, B, n_in)`` (an empty array when not
        ``need_dx``). ``dc3`` must be None."""
        H, FP = saved
        T, B, n_in = x3.shape
        n = self.n_hidden
        flow = np.empty((T + 1, B, n), dtype=self.dtype)
        D = FP  # the kernel reads FP[t-1] before it writes D[t-1], and never again
        k = threads_for(B, T * B * n * (n + n_in))
        with own_threads(k):
            run_rows(
                K.elman_backward,
                (self.W_hh, None, read_only(dh3), FP, FORMS.index(self.form), self.leaky, self._alpha_arg(), flow, D,
                 np.empty((0, 0, 0), self.dtype), 0),
                B, k,
            )
        D2 = D.reshape(T * B, n)
        if self.form == "standard":
            prev = H[:-1].reshape(T * B, n)
        else:
            prev = K.activate_array(self.activation.code, np.ascontiguousarray(H[:-1].reshape(T * B, n)))
        with own_threads(k), blas_threads_for(T * B * n * max(n, n_in)):
            g_hh = sum_over_rows(K.gemm_tn, (D2, prev), k)
            g_hx = sum_over_rows(K.gemm_tn, (D2, x3.reshape(T * B, n_in)), k)
            g_bh = sum_over_rows(K.column_sums, (D2,), k)
            dx = (
                readout_rows(D2, self.W_hx, np.zeros(n_in, self.dtype), k).reshape(T, B, n_in)
                if need_dx else np.empty((0, B, n_in), dtype=self.dtype)
            )
        g_alpha = self._alpha_grad(H, x3, flow) if self.learn_alpha else None
        return ElmanGrads(g_hh, g_hx, g_bh, None, None, flow, g_alpha), dx

    def _alpha_grad(self, H: np.ndarray, x3: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``∂E/∂α = Σ_t Σ_b flow[t] ⊙ (h_{t−1} − g_t)`` (Eq. 14 differentiated in α
        with ``h_{t−1}`` held fixed), ``g_t`` recomputed from the stored states.

        Done in NumPy (two products over all steps) only for ``learn_alpha``
        models, so the kernels are untouched.
        """
        T, B, _ = x3.shape
        n = self.n_hidden
        prev = H[:-1].reshape(T * B, n)
        with blas_threads_for(T * B * n * max(n, self.n_in)):
            if self.form == "standard":
                g = self.activation.f(prev @ self._W_hhT + x3.reshape(T * B, -1) @ self._W_hxT + self.b_h)
            else:
                g = self.activation.f(prev) @ self._W_hhT + x3.reshape(T * B, -1) @ self._W_hxT + self.b_h
        diff = prev - g
        return np.asarray(
            np.einsum("ij,ij->j", flow[1:].reshape(T * B, n), diff), dtype=self.dtype
        )
