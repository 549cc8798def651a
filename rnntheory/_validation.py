"""Argument validation shared by every public function.

Every message names the argument, shows the offending value (or its shape or
dtype) and says what was expected, in the form
``ValueError("`W_hh` must be square, got shape (3, 4)")``.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

F = TypeVar("F", bound=Callable[..., Any])


def show_value(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for an error message.

    Package-internal: every module that names a bad value in a message uses it.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def all_finite(arr: np.ndarray) -> bool:
    """Whether every entry of a float array is finite.

    A sum is finite only if every entry is (a NaN or ±inf summand makes it NaN
    or ±inf), so one cheap reduction clears most arrays; a sum that overflows
    on finite entries falls through to the entry-wise test.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(arr)):
            return True
    return bool(np.all(np.isfinite(arr)))


def is_real_dtype(dtype: np.dtype) -> bool:
    """Whether ``dtype`` holds real numbers: an integer or floating dtype (bool, complex,
    object and str are not). Package-internal: the array checks use it."""
    dt = np.dtype(dtype)
    return dt.kind != "O" and (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer))


def as_float_array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: np.dtype | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``value`` as a C-contiguous float32/float64 array, or raise.

    Integer and boolean inputs are rejected rather than silently promoted when no
    ``dtype`` is imposed, because the parameters' dtype sets the compute dtype.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy raises many types
            raise TypeError(f"`{name}` must be array-like, got {show_value(value)}") from exc
    if not is_real_dtype(arr.dtype):
        raise TypeError(
            f"`{name}` must be a real floating-point array, got dtype {arr.dtype}"
        )
    if dtype is None:
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"`{name}` must have dtype float32 or float64, got dtype {arr.dtype}"
            )
    else:
        if np.issubdtype(arr.dtype, np.floating) and arr.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"`{name}` must have dtype float32 or float64, got dtype {arr.dtype}"
            )
        arr = as_model_dtype(name, arr, dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"`{name}` must have {want} dimension(s), got shape {arr.shape}"
            )
    if finite and not all_finite(arr):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"`{name}` must be finite, got {bad} NaN/inf entr{'y' if bad == 1 else 'ies'}")
    return np.ascontiguousarray(arr)


def check_shape(name: str, arr: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise unless ``arr.shape`` matches ``shape`` (``None`` matches any size)."""
    ok = arr.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, arr.shape, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"`{name}` must have shape {want}, got shape {arr.shape}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Raise unless ``value`` is one of the string ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {show_value(value)}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Raise unless ``value`` is an integer (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got {show_value(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Raise unless ``value`` is a finite real number in the given interval."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a real number, got {show_value(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float64's range
        raise ValueError(f"`{name}` must be finite (within float64's range), got {show_value(value)}") from None
    if not np.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"`{name}` must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"`{name}` must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def as_model_dtype(name: str, arr: np.ndarray, dtype: Any) -> np.ndarray:
    """``arr`` cast to the model's ``dtype``, refusing values the cast would overflow.

    A cast to a narrower float (float64 → float32) turns finite values beyond
    the narrower range (``|x| > 3.4028235e38`` for float32, up to rounding) into
    ±inf, and the model would then compute with infinities the caller never
    passed. Such values raise a ``ValueError`` naming the argument instead.
    Entries that are already NaN or ±inf pass through unchanged (each caller
    applies its own policy to them), and values below the narrower dtype's
    smallest subnormal round to zero as the cast rounds them (an absolute error
    below that dtype's resolution). Returns ``arr`` itself when no cast is needed.

    Raises
    ------
    ValueError
        ``"`x` has values beyond float32's range (max |x| = 1e+39) for a float32
        model; ..."``.
    """
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return arr
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(dtype)
    if np.issubdtype(arr.dtype, np.floating) and not all_finite(out):
        lost = np.isfinite(arr) & ~np.isfinite(out)
        if lost.any():
            worst = float(np.max(np.abs(arr[lost])))
            raise ValueError(
                f"`{name}` has values beyond {dtype}'s range (max |{name}| = {worst:.3g}) "
                f"for a {dtype} model; rescale `{name}` or use a float64 model"
            )
    return out


def _immutable(arr: np.ndarray) -> bool:
    """Whether ``arr``'s memory belongs to a ``bytes`` object (nothing can write it)."""
    root: Any = arr
    while isinstance(root, np.ndarray):
        root = root.base
    return type(root) is bytes


def frozen_array(arr: np.ndarray) -> np.ndarray:
    """A read-only, C-contiguous copy of ``arr`` that nothing can write.

    The copy lives in an immutable ``bytes`` buffer, so its ``writeable`` flag
    cannot be set back to ``True`` and no other array shares its memory: what
    a model holds as a parameter stays what it was given at construction,
    whatever the caller later does to the array it passed. An array that is
    already such a copy (a parameter of another model) is returned as it is.
    """
    if arr.flags.c_contiguous and not arr.flags.writeable and _immutable(arr):
        return arr
    data = np.ascontiguousarray(arr).tobytes()
    return np.frombuffer(data, dtype=arr.dtype).reshape(arr.shape)


def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a read-only view (``arr`` itself when it is read-only already).

    Numba types an array's read-only flag: a kernel called once with a
    writable and once with a read-only array of the same dtype and rank is
    compiled twice (3–30 s each). A model's parameters are read-only (see
    :func:`frozen_array`), so every array a kernel only reads is passed
    read-only, and each kernel is compiled once per dtype.
    """
    if not arr.flags.writeable:
        return arr
    view = arr.view()
    view.flags.writeable = False
    return view


def transposed(arr: np.ndarray) -> np.ndarray:
    """``arr.T`` as a C-contiguous, read-only array: the form in which the kernels
    read a transposed weight matrix (read-only as :func:`read_only` explains)."""
    return read_only(np.ascontiguousarray(arr.T))


SEED_LIMIT = 2**64
"""Seeds are integers in ``[0, 2**64)``: what every generator the library uses
(NumPy's PCG64 seeding, PyTorch's ``manual_seed``) accepts as one 64-bit word."""


def check_seed(
    name: str, value: Any, *, allow_generator: bool = True, allow_none: bool = True
) -> int | np.random.Generator | None:
    """Return ``value`` if it is a valid seed, else raise naming ``name``.

    A seed is an integer in ``[0, 2**64)`` (not a bool), a
    :class:`numpy.random.Generator` (drawn from as it is, so several calls can
    share one stream; when ``allow_generator``) or ``None`` (fresh entropy; when
    ``allow_none``). Floats, strings, bools, legacy ``RandomState`` objects, bare
    bit generators and seed sequences are refused: they are either ambiguous or
    would silently give a different stream than the same seed elsewhere.
    """
    if isinstance(value, np.random.Generator):
        if allow_generator:
            return value
    elif value is None:
        if allow_none:
            return None
    elif not isinstance(value, bool) and isinstance(value, int | np.integer):
        if not 0 <= value < SEED_LIMIT:
            raise ValueError(f"`{name}` must be an integer in [0, 2**64), got {show_value(value)}")
        return int(value)
    kinds = ["an integer in [0, 2**64)"]
    if allow_generator:
        kinds.append("a numpy Generator")
    if allow_none:
        kinds.append("None")
    want = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
    shown = type(value).__name__ if isinstance(
        value, np.random.RandomState | np.random.BitGenerator | np.random.SeedSequence
    ) else show_value(value)
    raise TypeError(f"`{name}` must be {want}, got {shown}")


def as_generator(name: str, value: Any) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed checked by :func:`check_seed`
    (a Generator is returned as it is)."""
    seed = check_seed(name, value)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_dtype(name: str, value: Any) -> np.dtype:
    """``value`` as ``float32`` or ``float64`` (native byte order), else a ``TypeError``.

    Accepts what :class:`numpy.dtype` reads as one of the two (``np.float32``,
    ``"float64"``, ``"f4"``, ``float``, a ``numpy.dtype``). ``None`` is refused:
    NumPy reads it as float64 and PyTorch as float32, so it says nothing.
    """
    if value is not None:
        try:
            dt = np.dtype(value)
        except Exception:  # numpy raises TypeError, ValueError, ... on unknown specs
            dt = None
        if dt is not None and dt in FLOAT_DTYPES and dt.isnative:
            return dt
        if dt is not None:
            raise TypeError(f"`{name}` must be float32 or float64, got {dt}")
    raise TypeError(f"`{name}` must be float32 or float64, got {show_value(value)}")


# ----------------------------------------------------------- reach of a pass

_FMAX = {np.dtype(d): float(np.finfo(d).max) for d in (np.float32, np.float64)}
_EPS = {np.dtype(d): float(np.finfo(d).eps) for d in (np.float32, np.float64)}


def abs_max(arr: np.ndarray) -> float:
    """``max |arr|`` as a Python float (``0.0`` for an empty array); a large
    array is read twice (max and min) rather than copied into ``|arr|``."""
    if arr.size <= 1 << 16:
        return float(np.abs(arr).max()) if arr.size else 0.0
    return max(float(arr.max()), -float(arr.min()))


def row_sum_scale(W: np.ndarray) -> tuple[float, float]:
    """``(s, top)`` with ``max_i Σ_j |W[i, j]| = s · top``, formed without overflow.

    ``top = max |W|`` and ``s = max_i Σ_j |W[i, j]| / top`` lies in ``[1, W.shape[1]]``
    (both 0 for a zero or empty matrix), so a row sum beyond float64's range
    (``[[1e308, 1e308]]``) is still described by two finite numbers. Summed in
    float64 whatever ``W``'s dtype.
    """
    if W.size == 0:
        return 0.0, 0.0
    top = abs_max(W)
    if top == 0.0:
        return 0.0, 0.0
    s = float(np.max(np.sum(np.abs(W.astype(np.float64, copy=False)) / top, axis=1)))
    return s, top


def _log10(v: float) -> float:
    return math.log10(v) if v > 0.0 else -math.inf


def format_log10(L: float, digits: int) -> str:
    """``10**L`` in e-notation from its log10 (works beyond float64's range)."""
    e = math.floor(L)
    m = 10.0 ** (L - e)
    text = f"{m:.{digits}g}" if digits > 1 else f"{m:.1f}"
    if float(text) >= 10.0:
        e += 1
        text = f"{m / 10.0:.{digits}g}" if digits > 1 else f"{m / 10.0:.1f}"
    return f"{text}e{e:+03d}"


ReachTerm = tuple[str, float, str | None, bool, str | None, float, float]
"""One term ``rows(weight) · source`` of :func:`check_reach`: ``(source label,
source value, name refused when the source dominates (None: the weight), whether
that name is a call argument (else a model parameter), weight name (None for a
bias: the term is the source itself), s, top)`` with ``(s, top)`` from
:func:`row_sum_scale` (``1.0, 1.0`` for a bias)."""


def reach_limit(dtype: Any, n_sum: int) -> float:
    """The largest bound :func:`check_reach` accepts for sums of ``n_sum`` terms:
    ``dtype``'s largest value less 2^-10 of it and ``(n_sum + 4)`` units of
    rounding (the partial sums of a kernel exceed the exact sum of magnitudes by
    at most about ``n_sum`` roundings)."""
    dt = np.dtype(dtype)
    return _FMAX[dt] * (1.0 - 2.0**-10) / (1.0 + (n_sum + 4) * _EPS[dt])


class ReachError(ValueError):
    """A pre-activation could pass the dtype's range with these inputs and weights.

    A ``ValueError`` (bad input for this model); its own type lets a trainer
    tell it from other bad input: a training step whose weights have grown so
    far is a divergence, handled like a non-finite gradient.
    """


def check_reach(what: str, terms: list[ReachTerm], dtype: Any, n_sum: int) -> None:
    """Raise unless ``Σ rows(weight) · source`` over ``terms`` stays inside ``dtype``'s range.

    The bound of a sum of products ``Σ_j W[i, j] v_j + b_i`` (every partial sum
    too, in any order, fused multiply-add or not) is ``max_i Σ_j |W[i, j]| ·
    max_j |v_j| + max |b|``. A kernel that meets an intermediate beyond the
    range gets ``±inf`` and then a wrong finite value (``2·1e308 − 2·1e308``
    accumulated gives ``inf``, ``tanh(inf) = 1``, while the sum is 0), so
    callers refuse such inputs before the pass. ``n_sum`` is the number of
    summands of one entry (for the rounding margin). Python floats only: no
    NumPy warning, and ``inf`` where a product overflows.

    Raises
    ------
    ReachError
        A ``ValueError``: ``"`x` is too large for this model: the pre-activations W_hh h_{t−1} +
        W_hx x_t + b_h could reach 4.0e+308, beyond float64's range (max |x| =
        1e+308, max row sum of |W_hx| = 4); rescale `x`"``, naming the argument
        (or the model parameter) that carries the largest term.
    """
    dt = np.dtype(dtype)
    fmax = _FMAX[dt]
    limit = reach_limit(dt, n_sum)
    total = 0.0
    for term in terms:
        v, s, top = term[1], term[5], term[6]
        if v and s:
            total += (top * v) * s
    if total <= limit:
        return
    # refused: describe it in log10 (the bound itself may be beyond float64)
    logs = [(_log10(t[5]) + _log10(t[6]) + _log10(t[1]), t) for t in terms if t[1] and t[5]]
    top_log, worst = max(logs, key=lambda p: p[0])
    L = top_log + math.log10(sum(10.0 ** (lg - top_log) for lg, _ in logs))
    label, v, blame, is_arg, weight, s, top = worst
    w_log = _log10(s) + _log10(top)
    if weight is None or (blame is not None and _log10(v) >= w_log):
        name, arg = (blame or weight), is_arg
    else:
        name, arg = weight, False
    parts = [f"{label} = {v:.3g}"]
    if weight is not None:
        rows = s * top
        shown = f"{rows:.3g}" if math.isfinite(rows) else format_log10(w_log, 3)
        parts.append(f"max row sum of |{weight}| = {shown}")
    reach = f"{total:.1e}" if math.isfinite(total) else format_log10(L, 1)
    edge = "beyond" if L > math.log10(fmax) else "at the edge of"
    head = f"`{name}` is too large for this model" if arg else f"`{name}` of this model is too large"
    raise ReachError(
        f"{head}: {what} could reach {reach}, {edge} {dt}'s range ({', '.join(parts)}); rescale `{name}`"
    )


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a Python bool if it is a ``bool`` or a NumPy bool, else a ``TypeError``.

    Integers (``0``, ``1``), strings and NaN are refused: ``bool("no")`` is ``True``.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"`{name}` must be a bool, got {show_value(value)}")


def check_path(name: str, value: Any) -> Path:
    """Return ``value`` as a :class:`pathlib.Path`, or raise naming ``name``.

    A path is a ``str`` or an ``os.PathLike`` whose ``os.fspath`` is a ``str``
    (bytes paths and other objects are a ``TypeError``); an empty or blank
    string is a ``ValueError`` (``Path("")`` would silently mean the current
    folder).
    """
    if isinstance(value, str | os.PathLike):
        try:
            text = os.fspath(value)
        except TypeError:  # an __fspath__ that returns neither str nor bytes
            text = None
        if isinstance(text, str):
            if not text.strip():
                raise ValueError(f"`{name}` must be a non-empty path, got {text!r}")
            return Path(text)
    raise TypeError(f"`{name}` must be a str or os.PathLike, got {type(value).__name__}")


def check_items(name: str, value: Any, kind: type, *, expected: str, item: str) -> list[Any]:
    """Return ``value`` as a list of ``kind`` instances, or a ``TypeError`` naming ``name``.

    ``value`` must be an iterable; a single ``kind``, a str, bytes or a mapping
    is refused (``"`{name}` must be {expected}, got ..."``), and so is the first
    entry that is not a ``kind`` (``"`{name}[i]` must be {item}, got ..."``).
    Package-internal: the experiments' collections of runs and specs use it.
    """
    if isinstance(value, kind | str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"`{name}` must be {expected}, got {type(value).__name__}")
    out = list(value)
    for i, v in enumerate(out):
        if not isinstance(v, kind):
            raise TypeError(f"`{name}[{i}]` must be {item}, got {type(v).__name__}")
    return out


def renamed_argument(old: str, new: str, old_value: Any, new_value: Any, *, missing: Any = None, stacklevel: int = 3) -> Any:
    """The value of an argument renamed from ``old`` to ``new``, warning if the old spelling was used.

    Package-internal: a public argument that changes its name keeps the old
    spelling working for one release. ``old_value`` is what the caller passed
    under the old name (``missing`` when it was not passed), ``new_value``
    what it passed under the new name (``missing`` when not passed). Passing
    both is a ``TypeError``; passing the old one gives a ``DeprecationWarning``
    that names the new one and returns the old value.
    """
    if old_value is missing:
        return new_value
    if new_value is not missing:
        raise TypeError(f"pass `{new}` only (`{old}` is its deprecated old name), not both")
    warnings.warn(
        f"`{old}` is deprecated and will be removed in the next release; use `{new}`",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return old_value


_MISSING: Any = object()


def renamed_arguments(**renames: str) -> Callable[[F], F]:
    """Decorator: keyword arguments renamed ``old=new`` keep their old spelling for one release.

    Package-internal. A call that passes an old keyword gets a
    ``DeprecationWarning`` naming the new one and runs as if the new keyword had
    been passed; passing both spellings is a ``TypeError``. The wrapped
    function's signature (``inspect.signature``) shows only the new names.

    Examples
    --------
    >>> import warnings
    >>> @renamed_arguments(limit="threshold")
    ... def clip(x, threshold=1.0):
    ...     return min(x, threshold)
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     clip(5.0, limit=2.0), w[0].category.__name__
    (2.0, 'DeprecationWarning')
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    value = kwargs.pop(old)
                    kwargs[new] = renamed_argument(
                        old, new, value, kwargs.get(new, _MISSING), missing=_MISSING, stacklevel=3
                    )
            return fn(*args, **kwargs)

        return cast(F, inner)

    return wrap


class deprecated_alias:
    """Descriptor: an attribute renamed to ``new`` keeps its old spelling for one release.

    Package-internal. Placed in a class body under the old name, reading it
    gives a ``DeprecationWarning`` (``"`Owner.old` is deprecated and will be
    removed in the next release; use `new`"``, pointing at the reader's line)
    and returns the attribute ``new``. Read on the class, it is the descriptor
    itself. The keyword's old spelling in the constructor is the business of
    :func:`renamed_arguments`.

    Parameters
    ----------
    new : str
        The attribute's current name.

    Examples
    --------
    >>> import warnings
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Info:
    ...     threshold: float
    ...     limit = deprecated_alias("threshold")
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     Info(2.0).limit, str(w[0].message)
    (2.0, '`Info.limit` is deprecated and will be removed in the next release; use `threshold`')
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = "?"
        self.owner = "?"
        self.__doc__ = f"Deprecated spelling of :attr:`{new}` (removed in the next release)."

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner.__name__
        self.old = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        warnings.warn(
            f"`{self.owner}.{self.old}` is deprecated and will be removed in the next release; use `{self.new}`",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(obj, self.new)
