"""Argument validation shared by every public function.

Every message names the argument, shows the offending value (or its shape or
dtype) and says what was expected, in the form
``ValueError("`W_hh` must be square, got shape (3, 4)")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _show(value: Any, limit: int = 60) -> str:
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
            raise TypeError(f"`{name}` must be array-like, got {_show(value)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
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
        raise ValueError(f"`{name}` must be one of {choices}, got {_show(value)}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Raise unless ``value`` is an integer (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got {_show(value)}")
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
        raise TypeError(f"`{name}` must be a real number, got {_show(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float64's range
        raise ValueError(f"`{name}` must be finite (within float64's range), got {_show(value)}") from None
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
            raise ValueError(f"`{name}` must be an integer in [0, 2**64), got {_show(value)}")
        return int(value)
    want = "an integer in [0, 2**64)"
    if allow_generator:
        want += ", a numpy Generator"
    if allow_none:
        want += " or None"
    shown = type(value).__name__ if isinstance(
        value, np.random.RandomState | np.random.BitGenerator | np.random.SeedSequence
    ) else _show(value)
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
    raise TypeError(f"`{name}` must be float32 or float64, got {_show(value)}")
