"""What every recurrent model shares: input, state, target and mask handling,
the readout (Eq. 3) and the loss (Eq. 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from functools import partial
from typing import Any

import numpy as np

from .._parallel import row_ranges, run_parallel
from .._validation import (
    ReachTerm,
    abs_max,
    as_float_array,
    as_model_dtype,
    check_choice,
    check_int,
    check_shape,
    frozen_array,
    reach_limit,
    read_only,
    row_sum_scale,
    show_value,
    transposed,
)
from . import _elman_kernels as K

LOSSES = ("xent", "mse")

def readout_rows(X: np.ndarray, MT: np.ndarray, bias: np.ndarray, k: int, out: np.ndarray | None = None) -> np.ndarray:
    """``X @ MT + bias`` for ``X (N, a)`` (into ``out`` if given), as ``k``
    concurrent products over ranges of the rows."""
    Y = np.empty((X.shape[0], MT.shape[1]), dtype=X.dtype) if out is None else out
    run_parallel([
        partial(K.readout_into, X[r0:r1], MT, bias, Y[r0:r1]) for r0, r1 in row_ranges(X.shape[0], max(1, min(k, X.shape[0])))
    ])
    return Y


def sum_over_rows(kernel: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...], k: int) -> np.ndarray:
    """``kernel(*arrays)`` for a kernel that sums over the rows of its arrays
    (a weight gradient ``Xᵀ Y``, a bias gradient), as the sum of ``k`` partial
    results over contiguous row ranges computed concurrently."""
    n_rows = arrays[0].shape[0]
    k = max(1, min(k, n_rows))
    parts = run_parallel([partial(kernel, *(a[r0:r1] for a in arrays)) for r0, r1 in row_ranges(n_rows, k)])
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total


class TraceBase:
    """What every trace shares (``h`` is ``(T+1, n)`` or ``(T+1, B, n)``;
    every array field is time-major with the batch, if any, on axis 1)."""

    h: np.ndarray

    @property
    def batched(self) -> bool:
        """Whether the trace holds a batch (``h`` has three axes)."""
        return self.h.ndim == 3

    @property
    def T(self) -> int:
        """Number of steps."""
        return int(self.h.shape[0] - 1)

    def sequence(self, b: int) -> Any:
        """The trace of sequence ``b`` of a batch, as a single-sequence trace."""
        if not self.batched:
            raise ValueError("`sequence` needs a batched trace, got a single sequence")
        B = self.h.shape[1]
        b = check_int("b", b, minimum=0)
        if b >= B:
            raise ValueError(f"`b` must be < batch size {B}, got {b}")
        parts = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return type(self)(**{k: None if v is None else v[:, b] for k, v in parts.items()})


def same_dtype(name: str, arr: np.ndarray, dtype: np.dtype, ref: str) -> np.ndarray:
    """Raise unless ``arr`` has the compute dtype (that of the parameter ``ref``)."""
    if arr.dtype != dtype:
        raise TypeError(f"`{name}` must have the dtype of `{ref}` ({dtype}), got dtype {arr.dtype}")
    return arr


def readout_params(
    W_yh: Any, b_y: Any, n: int, dtype: np.dtype, ref: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validate the optional readout ``(W_yh (n_out, n), b_y (n_out,))``."""
    if W_yh is None:
        if b_y is not None:
            raise ValueError("`b_y` was given without `W_yh`; pass both or neither")
        return None, None
    W_yh = same_dtype("W_yh", as_float_array("W_yh", W_yh, ndim=2), dtype, ref)
    if W_yh.shape[1] != n:
        raise ValueError(f"`W_yh` must have shape (n_out, {n}), got shape {W_yh.shape}")
    if b_y is None:
        b_y = np.zeros(W_yh.shape[0], dtype=dtype)
    b_y = same_dtype("b_y", as_float_array("b_y", b_y, ndim=1), dtype, ref)
    check_shape("b_y", b_y, (W_yh.shape[0],))
    return frozen_array(W_yh), frozen_array(b_y)


class GradsBase:
    """What every gradient record shares: :meth:`params`, the parameter gradients
    without the flows (``flow``, ``flow_c``) and the generator's ``feedback``."""

    _NOT_PARAMS = ("flow", "flow_c", "feedback", "trace")

    def params(self) -> dict[str, np.ndarray]:
        """The parameter gradients as a dict keyed like the model's ``params()``
        (``None`` entries, such as an absent readout, left out)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if f.name not in self._NOT_PARAMS and getattr(self, f.name) is not None
        }


def _rebuild(cls: type, kwargs: dict[str, Any]) -> Any:
    """Unpickle a model: through its constructor, so that it owns its parameters again."""
    return cls(**kwargs)


def recurrent_matrix(W_hh: Any) -> np.ndarray:
    """Validate a square, non-empty recurrent matrix (its dtype sets the compute dtype)."""
    W_hh = as_float_array("W_hh", W_hh, ndim=2)
    if W_hh.shape[0] != W_hh.shape[1]:
        raise ValueError(f"`W_hh` must be square, got shape {W_hh.shape}")
    if W_hh.shape[0] == 0:
        raise ValueError("`W_hh` must have at least one hidden unit, got shape (0, 0)")
    return W_hh


class SequenceModel:
    """Base of :class:`~rnntheory.ElmanRNN`, :class:`~rnntheory.LSTM`,
    :class:`~rnntheory.GRU` and :class:`~rnntheory.cells.generator.GeneratorRNN`
    (private machinery; not instantiated directly).

    Subclasses set ``dtype``, ``W_yh``, ``b_y``, define ``n_hidden``, ``n_in`` and
    ``_init_kwargs`` (the constructor's arguments that rebuild the model), hold
    every parameter as a :func:`~rnntheory._validation.frozen_array` and call
    ``_freeze()`` at the end of ``__init__``.

    A model owns its parameters: the constructor copies them into read-only
    arrays (``m.W_hh[0, 0] = 1.0`` raises ``ValueError``), its attributes cannot
    be reassigned (``AttributeError``), and every computation (forward pass,
    BPTT, cached transposes) reads those same values. A model changes only by
    ``replace``, which builds a new one.
    """

    dtype: np.dtype
    W_yh: np.ndarray | None
    b_y: np.ndarray | None

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(
                f"cannot reassign `{key}` of this {type(self).__name__}: models are immutable; "
                f"use `model.replace({key}=...)` for a model with new parameters"
            )
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"cannot delete `{key}` of this {type(self).__name__}: models are immutable")

    def _init_kwargs(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _replaced(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        """The constructor's keywords with ``params`` put in (what every ``replace``
        starts from); a key the constructor lacks is a ``ValueError``: "`key` is
        not a {what}"."""
        kw = self._init_kwargs()
        for key, value in params.items():
            if key not in kw:
                raise ValueError(f"`{key}` is not a {what}")
            kw[key] = value
        return kw

    # immutable: a copy is the model itself; a pickle goes through the constructor
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self._init_kwargs())

    @property
    def n_hidden(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def n_in(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def n_out(self) -> int:
        """Readout size (``n_hidden`` without a readout)."""
        return self.n_hidden if self.W_yh is None else int(self.W_yh.shape[0])

    def _describe(self, name: str, options: str = "") -> str:
        """``name(n_in=…, n_hidden=…, n_out=…<options>, dtype=…)``: every model's ``repr``."""
        return f"{name}(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}{options}, dtype={self.dtype})"

    # ------------------------------------------------------------------ reach
    # Activations whose values lie in [-1, 1]: with them the recurrent part of a
    # pre-activation is bounded by the weights alone.
    _BOUNDED = ("tanh", "sigmoid")

    def _cache(self) -> dict[Any, Any]:
        """This model's cache of derived values (the parameters never change)."""
        cache = self.__dict__.get("_reach_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_reach_cache", cache)
        return cache

    def _cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """A per-model value computed once (the parameters never change)."""
        cache = self._cache()
        value = cache.get(key)
        if value is None:
            value = cache[key] = make()
        return value

    def _reach_ok(self, weights: tuple[str, ...], biases: tuple[str, ...], values: tuple[float, ...]) -> bool:
        """The fast path of a reach check: whether ``Σ_k rows(weights[k])·values[k] +
        Σ max|bias|`` stays within :func:`~rnntheory._validation.reach_limit` for
        sums of ``n_hidden + n_in + 2`` terms (a caller runs ``check_reach``, to
        raise with a message, when it does not).

        Cached per model, in two tiers: first the looser ``rows(W) ≤ ncols·max|W|``
        (one ``max|W|`` per weight on a new model, as in a training loop where
        every step makes one); only when that fails the row sums themselves.
        Then a few float operations a call.
        """
        cache = self._cache()
        const = cache.get(weights)
        if const is None:
            loose = []
            for w in weights:
                W = getattr(self, w)
                loose.append((float(W.shape[1]), abs_max(W)))
            bsum = 0.0
            for b in biases:
                bsum += abs_max(getattr(self, b))
            const = cache[weights] = (loose, bsum, reach_limit(self.dtype, self.n_hidden + self.n_in + 2), False)
        rows, bsum, limit, exact = const
        total = bsum
        for (s, top), v in zip(rows, values, strict=True):
            total += (top * v) * s  # top, s finite; s = 0 only with top = 0: never 0·inf
        if total <= limit:
            return True
        if exact:
            return False
        cache[weights] = ([self._rows(w) for w in weights], bsum, limit, True)
        return self._reach_ok(weights, biases, values)

    def _weight_term(
        self, weight: str, label: str, value: float, blame: str | None, is_arg: bool
    ) -> ReachTerm:
        """The term ``max row sum of |weight| · value`` of a reach check."""
        s, top = self._rows(weight)
        return (label, value, blame, is_arg, weight, s, top)

    def _bias_term(self, bias: str) -> ReachTerm:
        """The term ``max |bias|`` of a reach check."""
        return (f"max |{bias}|", self._max(bias), bias, False, None, 1.0, 1.0)

    def _rows(self, weight: str) -> tuple[float, float]:
        """:func:`~rnntheory._validation.row_sum_scale` of a parameter, cached."""
        return self._cached("rows " + weight, lambda: row_sum_scale(getattr(self, weight)))

    def _max(self, name: str) -> float:
        """``max |parameter|``, cached."""
        return self._cached("max " + name, lambda: abs_max(getattr(self, name)))

    def _state_term(self, weight: str, h0: np.ndarray | None, bounded_states: bool) -> ReachTerm:
        """The recurrent term ``rows(weight) · sup|h|``: ``sup|h| = max(1, max|h0|)``
        when every later state lies in ``[-1, 1]``, else ``max|h0|`` (the first
        step only: later growth is the dynamics of the model, not an input)."""
        h0max = 0.0 if h0 is None else abs_max(h0)
        if bounded_states and h0max <= 1.0:
            return self._weight_term(weight, "sup |h|", 1.0, None, False)
        return self._weight_term(weight, "max |h0|", h0max, "h0", True)

    # ------------------------------------------------------------------ inputs
    def _inputs(self, x: Any) -> tuple[np.ndarray, bool]:
        x = as_model_dtype("x", as_float_array("x", x, ndim=(2, 3)), self.dtype)
        if x.shape[0] == 0:
            raise ValueError(f"`x` must have at least one time step (T >= 1), got shape {x.shape}")
        if x.shape[-1] != self.n_in:
            raise ValueError(
                f"`x` must have {self.n_in} input features in its last axis, got shape {x.shape}"
            )
        batched = x.ndim == 3
        x3 = x if batched else x[:, None, :]
        if x3.shape[1] == 0:
            raise ValueError(f"`x` must hold at least one sequence, got shape {x.shape}")
        return np.ascontiguousarray(x3), batched

    def _state(self, name: str, value: Any, B: int, batched: bool) -> np.ndarray:
        """An initial state ``(B, n)``: zeros, or ``value`` validated."""
        n = self.n_hidden
        if value is None:
            return np.zeros((B, n), dtype=self.dtype)
        s = as_float_array(name, value, ndim=(1, 2))
        want = (B, n) if batched else (n,)
        if s.shape != want:
            raise ValueError(f"`{name}` must have shape {want}, got shape {s.shape}")
        # a copy (as_model_dtype returns `s` itself when no cast is needed)
        return np.array(as_model_dtype(name, s, self.dtype).reshape(B, n), order="C", copy=True)

    def _cotangent(self, name: str, value: Any, T: int, B: int, batched: bool) -> np.ndarray:
        """A cotangent of the states ``h_1..h_T`` (``dh``, ``dc`` of ``vjp``) as a
        C-contiguous ``(T, B, n)`` array of the model's dtype: a finite float
        array of the shape of ``h[1:]``, ``(T, n)`` or ``(T, B, n)`` as ``x``."""
        n = self.n_hidden
        arr = as_float_array(name, value, ndim=(2, 3))
        want = (T, B, n) if batched else (T, n)
        if arr.shape != want:
            raise ValueError(
                f"`{name}` must have the shape of the states h_1..h_T, {want}, got shape {arr.shape}"
            )
        return read_only(np.ascontiguousarray(as_model_dtype(name, arr, self.dtype).reshape(T, B, n)))

    def _time_major(self, batch_first: Any, x: Any, loss: Any = None, **batch_major: Any) -> tuple[Any, ...]:
        """``(x, *batch_major.values())`` time-major: PyTorch's ``batch_first`` of the public passes.

        ``batch_first=False`` returns every argument as it came (the time-major
        path is untouched). ``batch_first=True`` needs ``x`` of shape
        ``(B, T, n_in)`` and every other array given (``y``, ``mask``, ``dh``,
        ``dc``) with ``(B, T)`` in front: targets ``(B, T)`` for
        ``loss="xent"``, ``(B, T, n_out)`` for ``"mse"``; ``mask (B, T)``;
        cotangents ``(B, T, n_hidden)``. Those shapes are checked here, so that
        a message shows the shape the caller passed; then axes 0 and 1 are
        swapped (views: the time-major checks and copies that follow are the
        usual ones, and the results bit-identical to a time-major call).
        """
        if not isinstance(batch_first, bool | np.bool_):
            raise TypeError(
                f"`batch_first` must be a bool, got {show_value(batch_first)} ({type(batch_first).__name__})"
            )
        if not batch_first:
            return (x, *batch_major.values())
        arr = as_float_array("x", x, finite=False)
        if arr.ndim != 3:
            raise ValueError(f"`x` must be a batch: batch_first=True needs (B, T, n_in), got shape {arr.shape}")
        B, T = arr.shape[0], arr.shape[1]
        if T == 0:
            raise ValueError(f"`x` must have at least one time step (T >= 1), got shape {arr.shape} (B, T, n_in)")
        if B == 0:
            raise ValueError(f"`x` must hold at least one sequence, got shape {arr.shape} (B, T, n_in)")
        if arr.shape[2] != self.n_in:
            raise ValueError(
                f"`x` must have {self.n_in} input features in its last axis, got shape {arr.shape}"
            )
        out: list[Any] = [np.swapaxes(arr, 0, 1)]
        for name, value in batch_major.items():
            if value is None:
                out.append(None)
                continue
            v = value if isinstance(value, np.ndarray) else np.asarray(value)
            if name == "y":
                want: tuple[int, ...] | None = (
                    (B, T) if loss == "xent" else (B, T, self.n_out) if loss == "mse" else None
                )
            elif name == "mask":
                want = (B, T)
            else:  # dh, dc
                want = (B, T, self.n_hidden)
            if want is None:  # an unknown loss: the time-major checks name it
                if v.ndim < 2 or v.shape[:2] != (B, T):
                    raise ValueError(f"`{name}` must have shape (B, T, ...) = ({B}, {T}, ...) with "
                                     f"batch_first=True, got shape {v.shape}")
            elif v.shape != want:
                what = f" for loss={loss!r}" if name == "y" else ""
                raise ValueError(
                    f"`{name}` must have shape {want}{what} with batch_first=True (batch first, "
                    f"as `x` {arr.shape}), got shape {v.shape}"
                )
            out.append(np.swapaxes(v, 0, 1))
        return tuple(out)

    @staticmethod
    def _batch_major(dx: np.ndarray, batch_first: bool) -> np.ndarray:
        """An input gradient ``(T, B, n_in)`` in the caller's layout (``(B, T, n_in)`` if ``batch_first``)."""
        return np.ascontiguousarray(np.swapaxes(dx, 0, 1)) if batch_first else dx

    # ------------------------------------------------------------------ readout
    def _readout(self, H: np.ndarray, k: int = 1) -> np.ndarray | None:
        """``y_t = W_yh h_t + b_y`` for t = 1..T from states ``H (T+1, B, n)``
        (``k`` threads, each over a range of the ``T·B`` rows)."""
        if self.W_yh is None:
            return None
        T, B, n = H.shape[0] - 1, H.shape[1], H.shape[2]
        assert self.b_y is not None
        W_yhT = transposed(self.W_yh)
        return readout_rows(H[1:].reshape(T * B, n), W_yhT, self.b_y, k).reshape(T, B, -1)

    def _readout_grads(
        self, dZ: np.ndarray, H: np.ndarray, k: int = 1
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``∂E/∂W_yh`` and ``∂E/∂b_y`` from ``dZ = ∂E/∂y``, summed over all
        steps (``k`` threads, each over a range of the rows)."""
        if self.W_yh is None:
            return None, None
        T, B, n = H.shape[0] - 1, H.shape[1], H.shape[2]
        dZ2 = dZ.reshape(T * B, -1)
        return sum_over_rows(K.gemm_tn, (dZ2, H[1:].reshape(T * B, n)), k), sum_over_rows(K.column_sums, (dZ2,), k)

    # ------------------------------------------------------------------ loss
    def _targets(self, y: Any, loss: str, T: int, B: int, batched: bool) -> np.ndarray:
        if loss == "xent":
            arr = np.asarray(y)
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(
                    f"`y` must hold integer class indices for loss='xent', got dtype {arr.dtype}"
                )
            want: tuple[int, ...] = (T, B) if batched else (T,)
            if arr.shape != want:
                raise ValueError(f"`y` must have shape {want} for loss='xent', got shape {arr.shape}")
            return np.ascontiguousarray(arr.reshape(T, B).astype(np.int64))
        arr = as_float_array("y", y, ndim=(2, 3))
        want = (T, B, self.n_out) if batched else (T, self.n_out)
        if arr.shape != want:
            raise ValueError(f"`y` must have shape {want} for loss='mse', got shape {arr.shape}")
        return np.array(as_model_dtype("y", arr, self.dtype).reshape(T, B, self.n_out), order="C", copy=True)

    def _mask(self, mask: Any, T: int, B: int, batched: bool) -> np.ndarray:
        if mask is None:
            return np.ones((T, B), dtype=self.dtype)
        m = np.asarray(mask)
        if m.dtype == bool:
            m = m.astype(self.dtype)
        m = as_float_array("mask", m, ndim=(1, 2), dtype=self.dtype)
        want = (T, B) if batched else (T,)
        if m.shape != want:
            raise ValueError(f"`mask` must have shape {want}, got shape {m.shape}")
        if (m < 0).any():
            raise ValueError("`mask` must be non-negative (per-step loss weights)")
        return np.ascontiguousarray(m.reshape(T, B))

    def _loss_setup(
        self, y: Any, loss: str, mask: Any, T: int, B: int, batched: bool
    ) -> tuple[str, np.ndarray, np.ndarray]:
        """Validate ``loss``, targets and mask before any computation."""
        loss = check_choice("loss", loss, LOSSES)
        tgt = self._targets(y, loss, T, B, batched)
        m = self._mask(mask, T, B, batched)
        if loss == "xent":
            valid = m != 0
            if valid.any():
                t_valid = tgt[valid]
                if t_valid.min() < 0 or t_valid.max() >= self.n_out:
                    raise ValueError(
                        f"`y` class indices must lie in [0, {self.n_out}) where the mask is "
                        f"nonzero, got range [{t_valid.min()}, {t_valid.max()}]"
                    )
        return loss, tgt, m

    @staticmethod
    def _loss_grad(Z: np.ndarray, loss: str, tgt: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
        """Eq. 4 summed over steps and sequences, and ``∂E/∂y_t``."""
        dZ = np.empty_like(Z)
        if loss == "xent":
            value = K.xent_loss_grad(Z, tgt, m, dZ)
        else:
            value = K.mse_loss_grad(Z, tgt, m, dZ)
        return float(value), dZ


def parse_truncate(truncate: Any) -> tuple[int, int | None]:
    """``truncate`` of ``value_and_grad`` as ``(k1, k2)``: ``None`` → ``(1, None)``
    (full BPTT), ``k2`` → ``(1, k2)`` (sliding window), ``(k1, k2)`` with
    ``k2 ≥ k1`` (Williams & Peng's BPTT(k1, k2))."""
    if truncate is None:
        return 1, None
    if isinstance(truncate, tuple):
        if len(truncate) != 2:
            raise ValueError(f"`truncate` must be k2 or (k1, k2), got {truncate!r}")
        k1 = check_int("truncate", truncate[0], minimum=1)
        k2 = check_int("truncate", truncate[1], minimum=1)
        if k2 < k1:
            raise ValueError(f"`truncate` (k1, k2) needs k2 >= k1, got {truncate!r}")
        return k1, k2
    return 1, check_int("truncate", truncate, minimum=1)
