"""Models from PyTorch state dicts and checkpoint files, without PyTorch.

:func:`from_state_dict` builds an :class:`~rnntheory.ElmanRNN`,
:class:`~rnntheory.LSTM`, :class:`~rnntheory.GRU`, a stacked model (several
layers) or a :class:`~rnntheory.BidirectionalRNN` (two directions) from the
parameters of a ``torch.nn.RNN/LSTM/GRU`` as ``module.state_dict()`` names them
(``weight_ih_l0``, ``weight_hh_l1_reverse``, ``bias_hh_l0``, …), whatever module
holds it (``rnn.weight_hh_l0``, ``encoder.rnn.weight_hh_l0``). The source is a
mapping of names to arrays, or a file:

* ``.npz`` (``numpy.savez`` of the state dict, read with ``allow_pickle=False``);
* ``.safetensors``, read here (no ``safetensors`` package): an 8-byte
  little-endian header length, a JSON header ``{name: {dtype, shape,
  data_offsets}}`` (and an optional ``__metadata__``), then the data. F64 and
  F32 tensors are read as they are, F16 and BF16 converted exactly to float32,
  other dtypes refused; offsets are checked against the file's size before
  anything is read, and only the tensors the model needs are read;
* ``.pt``/``.pth`` (``torch.save`` of a state dict, or of a checkpoint holding
  one under ``"state_dict"``, ``"model_state_dict"`` or ``"model"``), read with
  ``torch.load(weights_only=True)``, which reads tensors and plain containers
  and never runs code from the file. This one format needs PyTorch.

The format is read from the file's first bytes, not from its extension.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_choice, check_path
from .cells.bidirectional import BidirectionalRNN
from .cells.elman import ElmanRNN
from .cells.gated import GRU, LSTM
from .cells.stacked import StackedRNN

__all__ = ["from_state_dict", "is_state_dict", "read_state_dict"]

#: A recurrent module's parameter name: ``<prefix><kind>_l<k>[_reverse]``.
KEY = re.compile(
    r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)
_LOOKED_FOR = (
    "keys ending in weight_ih_l<k>, weight_hh_l<k> (and bias_ih_l<k>, bias_hh_l<k>; "
    "_reverse for the backward direction), as torch.nn.RNN/LSTM/GRU name their parameters"
)
_NESTED = ("state_dict", "model_state_dict", "model")
_CELLS = {1: "elman", 3: "gru", 4: "lstm"}
_INSTALL = 'pip install "rnntheory[oracle]"'
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
# safetensors dtypes read here: (stored layout, what it becomes)
_ST_DTYPES = {"F64": ("<f8", "float64"), "F32": ("<f4", "float32"), "F16": ("<f2", "float16"), "BF16": ("<u2", "bfloat16")}
_READ = ("float64", "float32", "float16", "bfloat16")  # stored dtypes that are read
_ST_HEADER_MAX = 100_000_000  # the safetensors format's own limit on the header


@dataclass(frozen=True)
class _Tensor:
    """One stored tensor: its shape, its stored dtype (a label) and how to read it."""

    shape: tuple[int, ...]
    dtype: str
    read: Callable[[], np.ndarray]


def _short(names: Iterable[str], limit: int = 20) -> str:
    names = sorted(names)
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return "[" + ", ".join(repr(n) for n in names[:limit]) + more + "]"


def _half_to_float32(raw: np.ndarray, kind: str) -> np.ndarray:
    """float16 (``<f2``) or bfloat16 (``<u2`` bits) values as float32, exactly."""
    if kind == "bfloat16":
        return (raw.astype("<u4") << 16).view("<f4").astype(np.float32)
    return raw.astype(np.float32)


def _finished(arr: np.ndarray, key: str, kind: str, where: str) -> np.ndarray:
    """``arr`` as a float32/float64 array, or ValueError/TypeError naming ``key``."""
    if kind in ("float16", "bfloat16"):
        arr = _half_to_float32(arr, kind)
    elif kind not in ("float32", "float64"):
        raise TypeError(
            f"`source` {where}: tensor {key!r} has dtype {kind}; only float64, float32, float16 "
            "and bfloat16 (the last two converted exactly to float32) are read"
        )
    arr = np.ascontiguousarray(arr, dtype=np.dtype(kind) if kind in ("float32", "float64") else np.float32)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"`source` {where}: tensor {key!r} must be finite, got {bad} NaN/inf "
                         f"entr{'y' if bad == 1 else 'ies'}")
    return arr


# --------------------------------------------------------------------------- mappings


def _is_torch_tensor(v: Any) -> bool:
    return hasattr(v, "detach") and hasattr(v, "cpu") and hasattr(v, "shape") and hasattr(v, "dtype")


def _mapping_entry(key: str, v: Any) -> _Tensor | None:
    """A mapping's value as a tensor entry (``None`` for values that are not arrays)."""
    if _is_torch_tensor(v):
        label = str(v.dtype).removeprefix("torch.")

        def read_torch() -> np.ndarray:
            if label not in _READ:
                return _finished(np.empty(0), key, label, "mapping")  # refused, naming the key
            t = v.detach().cpu()
            if label == "bfloat16":  # NumPy has no bfloat16: widen in torch, exactly
                return _finished(t.float().numpy(), key, "float32", "mapping")
            return _finished(t.numpy(), key, label, "mapping")

        return _Tensor(tuple(int(s) for s in v.shape), label, read_torch)
    if isinstance(v, np.ndarray):
        arr = v
    elif isinstance(v, list | tuple) or (KEY.match(key) and not isinstance(v, Mapping | str | bytes)):
        try:  # nested lists, or any array-like under a recurrent module's name
            arr = np.asarray(v)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"`source` mapping: {key!r} is not an array ({type(v).__name__}: {exc})") from exc
    else:
        return None
    return _Tensor(arr.shape, arr.dtype.name, lambda: _finished(arr, key, arr.dtype.name, "mapping"))


def _has_recurrent_keys(m: Mapping[Any, Any]) -> bool:
    return any(isinstance(k, str) and KEY.match(k) for k in m)


def _state_level(m: Mapping[Any, Any], where: str) -> Mapping[Any, Any]:
    """The mapping that holds the recurrent parameters: ``m`` itself, or one of
    its values one level down (a checkpoint ``{"state_dict": {...}, "epoch": 3}``)."""
    if _has_recurrent_keys(m):
        return m
    inner = [(k, v) for k, v in m.items() if isinstance(v, Mapping) and _has_recurrent_keys(v)]
    if len(inner) == 1:
        return inner[0][1]
    if len(inner) > 1:
        for name in _NESTED:
            for k, v in inner:
                if k == name:
                    return v
        raise ValueError(
            f"`source` {where} holds recurrent parameters under several entries "
            f"{_short(str(k) for k, _ in inner)}; pass the one you mean (e.g. checkpoint[{inner[0][0]!r}])"
        )
    return m


def _from_mapping(m: Mapping[Any, Any], where: str) -> dict[str, _Tensor]:
    m = _state_level(m, where)
    out = {}
    for k, v in m.items():
        if isinstance(k, str):
            entry = _mapping_entry(k, v)
            if entry is not None:
                out[k] = entry
    return out


# --------------------------------------------------------------------------- files


def _read_npz(p: Path, where: str) -> dict[str, _Tensor]:
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, ...
        raise ValueError(f"`source` {where} is not a readable .npz archive (truncated or corrupt): "
                         f"{type(exc).__name__}: {exc}") from exc
    out: dict[str, np.ndarray] = {}
    with data:
        for name in data.files:
            try:
                out[name] = data[name]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise ValueError(f"`source` {where}: array {name!r} holds Python objects, which "
                                     "are never loaded (only numeric arrays are read)") from exc
                raise ValueError(f"`source` {where}: array {name!r} is truncated or corrupt: {exc}") from exc
            except Exception as exc:  # zlib.error, BadZipFile (CRC), EOFError
                raise ValueError(f"`source` {where}: array {name!r} is truncated or corrupt: "
                                 f"{type(exc).__name__}: {exc}") from exc
    def reader(arr: np.ndarray, key: str) -> Callable[[], np.ndarray]:
        return lambda: _finished(arr, key, arr.dtype.name, where)

    return {name: _Tensor(arr.shape, arr.dtype.name, reader(arr, name)) for name, arr in out.items()}


def _bad_st(where: str, what: str) -> ValueError:
    return ValueError(f"`source` {where} is not a valid .safetensors file: {what}")


def _read_safetensors(p: Path, where: str) -> dict[str, _Tensor]:
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _bad_st(where, f"{size} bytes, shorter than the 8-byte header length (truncated)")
        n = int.from_bytes(head, "little")
        if n == 0 or n > size - 8 or n > _ST_HEADER_MAX:
            raise _bad_st(where, f"its header length {n} does not fit the {size - 8} bytes after it "
                                 "(truncated or corrupt)")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad_st(where, f"its header is not UTF-8 JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict):
        raise _bad_st(where, f"its header is a JSON {type(header).__name__}, not an object")
    start, n_data = 8 + n, size - 8 - n
    out: dict[str, _Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict):
                raise _bad_st(where, f"__metadata__ must be an object, got {type(info).__name__}")
            continue
        if not isinstance(info, dict) or set(info) < {"dtype", "shape", "data_offsets"}:
            raise _bad_st(where, f"tensor {name!r} must have dtype, shape and data_offsets, got {info!r:.80}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str):
            raise _bad_st(where, f"tensor {name!r} has dtype {dtype!r:.40}, not a string")
        if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
            raise _bad_st(where, f"tensor {name!r} has shape {shape!r:.80}, not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise _bad_st(where, f"tensor {name!r} has data_offsets {offsets!r:.80}, not [begin, end]")
        b, e = offsets
        if not 0 <= b <= e <= n_data:
            raise _bad_st(where, f"tensor {name!r} has data_offsets [{b}, {e}] outside the {n_data} "
                                 "data bytes (truncated or corrupt)")
        if dtype in _ST_DTYPES:
            layout, kind = _ST_DTYPES[dtype]
            need = math.prod(shape) * np.dtype(layout).itemsize
            if e - b != need:
                raise _bad_st(where, f"tensor {name!r} spans {e - b} bytes, but dtype {dtype} and "
                                     f"shape {shape} need {need}")
        else:
            layout, kind = "", dtype

        def read(b: int = b, e: int = e, layout: str = layout, kind: str = kind, name: str = name,
                 shape: tuple[int, ...] = tuple(shape)) -> np.ndarray:
            if not layout:
                return _finished(np.empty(0), name, kind, where)  # refused, naming the key
            with p.open("rb") as fh:
                fh.seek(start + b)
                data = fh.read(e - b)
            if len(data) != e - b:
                raise _bad_st(where, f"tensor {name!r} is truncated (the file changed while it was read)")
            arr = np.frombuffer(data, dtype=layout).reshape(shape)
            return _finished(arr, name, kind, where)

        out[name] = _Tensor(tuple(shape), kind, read)
    return out


def _read_pt(p: Path, where: str) -> dict[str, _Tensor]:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"reading the PyTorch checkpoint {where} needs torch: {_INSTALL} (or save the state "
            "dict as .npz or .safetensors, which this library reads without torch)"
        ) from exc
    try:
        obj = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError, ...
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(
            f"`source` {where} cannot be read by torch.load(weights_only=True), which loads tensors "
            f"and plain containers only and never runs code from the file: {type(exc).__name__}: {first}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"`source` {where} holds a {type(obj).__name__}, not a state dict (a mapping of names to "
            "tensors); save module.state_dict() rather than the module"
        )
    return _from_mapping(obj, where)


def _read_path(path: Any) -> tuple[dict[str, _Tensor], str]:
    p = check_path("source", path)
    where = repr(str(path))
    if not p.exists():
        raise FileNotFoundError(f"`source` file not found: {where}")
    if p.is_dir():
        raise ValueError(f"`source` {where} is a folder; expected a .npz, .safetensors or .pt file")
    try:
        with p.open("rb") as fh:
            head = fh.read(9)
    except OSError as exc:
        raise ValueError(f"`source` {where} cannot be read: {exc.strerror or exc}") from exc
    if not head:
        raise ValueError(f"`source` {where} is an empty file; expected a .npz, .safetensors or .pt file")
    suffix = p.suffix.lower()
    if head[:4] in _ZIP_MAGICS:
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"`source` {where} is not a readable zip archive (.npz or .pt; truncated "
                             f"or corrupt): {type(exc).__name__}: {exc}") from exc
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return _read_pt(p, where), where
        return _read_npz(p, where), where
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"`source` {where} is a single .npy array, not a state dict; save the "
                         "parameters by name with numpy.savez")
    if head[:1] == b"\x80" or suffix in (".pt", ".pth"):  # a pickle (torch's legacy format)
        return _read_pt(p, where), where
    if (len(head) == 9 and head[8:9] == b"{") or suffix == ".safetensors":
        return _read_safetensors(p, where), where
    raise ValueError(f"`source` {where} is not a .npz, .safetensors or .pt checkpoint "
                     f"(it starts with {head[:8]!r})")


def _entries(source: Any) -> tuple[dict[str, _Tensor], str]:
    if isinstance(source, Mapping):
        return _from_mapping(source, "mapping"), "mapping"
    if isinstance(source, str | os.PathLike):
        return _read_path(source)
    raise TypeError(
        "`source` must be a mapping of names to arrays or the path of a .npz, .safetensors or .pt "
        f"file, got {type(source).__name__}"
    )


def read_state_dict(source: Any) -> dict[str, np.ndarray]:
    """Every tensor of a state dict as a NumPy array, by name.

    Parameters
    ----------
    source : mapping or str or os.PathLike
        A mapping of names to arrays (NumPy arrays or torch tensors; a
        checkpoint holding the state dict one level down is searched there),
        or the path of a ``.npz``, ``.safetensors`` or ``.pt``/``.pth`` file.

    Returns
    -------
    dict of str to ndarray
        float32 or float64 arrays (float16 and bfloat16 converted exactly to
        float32); entries that are not arrays are left out.

    Raises
    ------
    ValueError
        On a file that is missing its parts, truncated or corrupt (the message
        names the file), a non-finite value, or a ``.pt`` file that holds
        anything but tensors and plain containers.
    TypeError
        On a tensor of another dtype (integers, float8, complex), naming its key.
    ImportError
        For a ``.pt`` file without torch installed.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.checkpoints import read_state_dict
    >>> sorted(read_state_dict({"rnn.weight_hh_l0": np.eye(2), "step": 3}))
    ['rnn.weight_hh_l0']
    """
    entries, _ = _entries(source)
    return {k: e.read() for k, e in entries.items()}


def is_state_dict(names: Iterable[str]) -> bool:
    """Whether ``names`` hold a recurrent module's parameters in PyTorch's
    naming: some ``<prefix>weight_hh_l<k>`` with its ``<prefix>weight_ih_l<k>``.

    Examples
    --------
    >>> from rnntheory.checkpoints import is_state_dict
    >>> is_state_dict(["lstm.weight_ih_l0", "lstm.weight_hh_l0"]), is_state_dict(["W_hh"])
    (True, False)
    """
    if isinstance(names, str | bytes) or not isinstance(names, Iterable):
        raise TypeError(f"`names` must be an iterable of key names, got {type(names).__name__}")
    try:
        listed = list(names)
    except TypeError as exc:  # a 0-d array
        raise TypeError(f"`names` must be an iterable of key names, got {type(names).__name__}") from exc
    found = set()
    for name in listed:
        m = KEY.match(name) if isinstance(name, str) else None
        if m and m["kind"] in ("weight_ih", "weight_hh"):
            found.add((m["prefix"], m["kind"], m["layer"], m["reverse"]))
    return any((p, "weight_ih", k, r) in found for (p, kind, k, r) in found if kind == "weight_hh")


# --------------------------------------------------------------------------- matching


def _group(entries: Mapping[str, _Tensor]) -> dict[str, dict[tuple[str, int, int], str]]:
    groups: dict[str, dict[tuple[str, int, int], str]] = {}
    for key in entries:
        m = KEY.match(key)
        if m:
            groups.setdefault(m["prefix"], {})[(m["kind"], int(m["layer"]), 1 if m["reverse"] else 0)] = key
    return groups


def _pick_prefix(groups: dict[str, dict[tuple[str, int, int], str]], prefix: Any, entries: Mapping[str, _Tensor],
                 where: str) -> str:
    candidates = sorted(p for p, g in groups.items() if any(k[0] == "weight_hh" for k in g))
    if prefix is not None:
        if not isinstance(prefix, str):
            raise TypeError(f"`prefix` must be a str or None, got {type(prefix).__name__}")
        for p in (prefix, prefix + "."):
            if p in candidates:
                return p
        raise ValueError(f"`prefix` {prefix!r} names no recurrent module of `source` ({where}); "
                         f"its recurrent modules are {_short(candidates)}")
    if not candidates:
        raise ValueError(f"`source` ({where}) holds no recurrent module: looked for {_LOOKED_FOR}; "
                         f"its keys are {_short(entries)}")
    if len(candidates) > 1:
        raise ValueError(f"`source` ({where}) holds several recurrent modules, with prefixes "
                         f"{_short(candidates)}; pass prefix=... to pick one")
    return candidates[0]


def _tag(layer: int, d: int) -> str:
    return f"_l{layer}" + ("_reverse" if d else "")


def _readout_keys(entries: Mapping[str, _Tensor], rnn_prefix: str, readout: Any, width: int,
                  where: str) -> tuple[str, str | None] | None:
    """The ``(weight, bias)`` keys of the readout, or ``None`` for none."""
    if readout is None:
        return None

    def fits(p: str) -> bool:
        w = entries.get(p + "weight")
        if w is None or len(w.shape) != 2 or w.shape[1] != width or w.shape[0] == 0:
            return False
        b = entries.get(p + "bias")
        return b is None or b.shape == (w.shape[0],)

    if isinstance(readout, str) and readout != "auto":
        for p in (readout, readout + "."):
            if fits(p):
                return p + "weight", (p + "bias") if p + "bias" in entries else None
        w = entries.get(readout + "weight", entries.get(readout + ".weight"))
        found = "no such key" if w is None else f"its weight has shape {w.shape}"
        raise ValueError(f"`readout` {readout!r} names no linear readout of `source` ({where}): looked for "
                         f"{readout + 'weight'!r} of shape (n_out, {width}) and an optional bias (n_out,); {found}")
    if readout != "auto":
        raise TypeError(f"`readout` must be 'auto', a key prefix or None, got {type(readout).__name__}")
    prefixes = [k[: -len("weight")] for k in entries if k.endswith("weight") and not KEY.match(k)]
    fitting = sorted(p for p in prefixes if (p == "" or p.endswith(".")) and fits(p)
                     and not (rnn_prefix and p.startswith(rnn_prefix)))
    if not fitting:
        return None
    if len(fitting) > 1:
        raise ValueError(f"`source` ({where}) has several linear layers that could be the readout "
                         f"({width} inputs): {_short(p + 'weight' for p in fitting)}; pass readout=<prefix> "
                         "or readout=None")
    p = fitting[0]
    return p + "weight", (p + "bias") if p + "bias" in entries else None


def from_state_dict(
    source: Any,
    *,
    nonlinearity: str = "tanh",
    prefix: str | None = None,
    readout: str | None = "auto",
) -> Any:
    """A library model from a PyTorch recurrent module's state dict, without PyTorch.

    Keys are matched by suffix: ``<prefix>weight_ih_l<k>``, ``weight_hh_l<k>``,
    ``bias_ih_l<k>``, ``bias_hh_l<k>`` (``_reverse`` for the backward
    direction). The cell type comes from the shapes (``weight_hh`` with ``n``
    rows: Elman; ``3n``: GRU; ``4n``: LSTM), and so do the sizes, the number of
    layers and the directions; every layer must be there with consistent
    shapes, all of one stored dtype (float64 or float32; float16 and bfloat16
    are converted exactly to float32).

    Parameters
    ----------
    source : mapping or str or os.PathLike
        A mapping of names to arrays (NumPy arrays, or torch tensors: read
        through ``.detach().cpu().numpy()`` without importing torch), or the
        path of a ``.npz``, ``.safetensors`` or ``.pt``/``.pth`` file (the
        format read from the file's first bytes). A checkpoint holding the state
        dict one level down (``{"state_dict": …}``, ``{"model": …}``,
        ``{"model_state_dict": …}``) is searched there.
    nonlinearity : {"tanh", "relu"}
        The Elman cell's nonlinearity (``torch.nn.RNN``'s ``nonlinearity``). A
        state dict does not record it: pass the module's. Ignored for LSTM and
        GRU.
    prefix : str, optional
        The module to load when the source holds several (``"rnn."``,
        ``"encoder.rnn."``; the trailing dot may be left out).
    readout : "auto", str or None
        ``"auto"``: attach the linear layer ``<p>weight (n_out, n)`` (``2n``
        for a bidirectional model), ``<p>bias (n_out,)`` found outside the
        recurrent module when exactly one fits (none: no readout; several: a
        ``ValueError`` listing them). A string: the key prefix of the readout
        (``"fc."``). ``None``: no readout.

    Returns
    -------
    ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN
        One layer, one direction: the cell (an Elman cell in the standard form
        with ``b_h = bias_ih + bias_hh``, the same function). Several layers:
        a stacked model. Two directions: a bidirectional model. A module
        without biases (``bias=False``) gets zero biases. The dtype is the
        stored one (float32 for half precision).

    Raises
    ------
    ValueError
        When nothing matches (the message lists the keys and what was looked
        for), for several candidate modules without ``prefix``, a missing layer
        or direction, inconsistent shapes, mixed dtypes, projection weights
        (``weight_hr_l<k>``, PyTorch's ``proj_size``: the projection changes
        the recurrence the theory analyses, ``h_t = W_hr (o_t ⊙ tanh c_t)``,
        so such an LSTM is refused), non-finite values, or a corrupt file.
    TypeError
        On a bad ``source`` type or a tensor of a dtype that is not read.
    ImportError
        For a ``.pt`` file without torch (with the install hint).

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory import from_state_dict
    >>> rng = np.random.default_rng(0)
    >>> sd = {"rnn.weight_ih_l0": rng.normal(size=(9, 2)), "rnn.weight_hh_l0": rng.normal(size=(9, 3)),
    ...       "fc.weight": rng.normal(size=(1, 3)), "fc.bias": np.zeros(1)}
    >>> from_state_dict(sd)
    GRU(n_in=2, n_hidden=3, n_out=1, dtype=float64)

    PyTorch's ``state_dict`` naming for ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.
    """
    nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    entries, where = _entries(source)
    groups = _group(entries)
    rnn_prefix = _pick_prefix(groups, prefix, entries, where)
    g = groups[rnn_prefix]
    label = f"prefix {rnn_prefix!r}" if rnn_prefix else "no prefix"
    proj = sorted(key for (kind, _, _), key in g.items() if kind == "weight_hr")
    if proj:
        raise ValueError(
            f"`source` ({where}) has projection weights {_short(proj)} (PyTorch's proj_size): the "
            "projection changes the recurrence the theory analyses, h_t = W_hr (o_t ⊙ tanh c_t), so "
            "an LSTM with proj_size cannot be loaded"
        )
    n_layers = 1 + max(k[1] for k in g)
    n_dir = 2 if any(k[2] for k in g) else 1
    has_bias = any(k[0].startswith("bias") for k in g)
    kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if has_bias else ())
    for layer in range(n_layers):
        for d in range(n_dir):
            for kind in kinds:
                if (kind, layer, d) not in g:
                    need = ", ".join(kinds)
                    raise ValueError(
                        f"`source` ({where}, {label}) has no {rnn_prefix}{kind}{_tag(layer, d)}: each of its "
                        f"{n_layers} layer(s) and {n_dir} direction(s) needs {need}; found {_short(g.values())}"
                    )
    # shapes (from the headers, before reading any data)
    hh0 = entries[g[("weight_hh", 0, 0)]].shape
    if len(hh0) != 2 or hh0[1] == 0 or hh0[0] % hh0[1] or hh0[0] // hh0[1] not in _CELLS:
        raise ValueError(
            f"`source` ({where}): {g[('weight_hh', 0, 0)]!r} has shape {hh0}; expected (n, n) (Elman), "
            "(3n, n) (GRU) or (4n, n) (LSTM) with n >= 1"
        )
    n = hh0[1]
    gates = hh0[0] // n
    ih0 = entries[g[("weight_ih", 0, 0)]].shape
    n_in = ih0[1] if len(ih0) == 2 else -1
    if n_in < 1:
        raise ValueError(f"`source` ({where}): {g[('weight_ih', 0, 0)]!r} has shape {ih0}; "
                         f"expected ({gates * n}, n_in) with n_in >= 1")
    for (kind, layer, _), key in sorted(g.items()):
        if kind.startswith("bias"):
            want: tuple[int, ...] = (gates * n,)
        elif kind == "weight_hh":
            want = (gates * n, n)
        else:
            want = (gates * n, n_in if layer == 0 else n_dir * n)
        if entries[key].shape != want:
            why = (" (the previous layer's output)" if kind == "weight_ih" and layer > 0 else "")
            raise ValueError(f"`source` ({where}): {key!r} has shape {entries[key].shape}; expected "
                             f"{want}{why}, from {g[('weight_hh', 0, 0)]!r} of shape {hh0} "
                             f"({_CELLS[gates]}, n_hidden = {n})")
    head = _readout_keys(entries, rnn_prefix, readout, n_dir * n, where)
    used = list(g.values()) + ([k for k in head if k is not None] if head else [])
    stored = {key: entries[key].dtype for key in used}
    for key, kind in sorted(stored.items()):
        if kind not in _READ:
            entries[key].read()  # refused, naming the key and its dtype
    if len(set(stored.values())) > 1:
        raise ValueError(f"`source` ({where}) mixes dtypes: "
                         + ", ".join(f"{k!r}: {v}" for k, v in sorted(stored.items()))
                         + "; a model has one dtype (convert the module with .double() or .float())")
    arrays = {key: entries[key].read() for key in used}

    def get(kind: str, layer: int, d: int) -> np.ndarray:
        if (kind, layer, d) in g:
            return arrays[g[(kind, layer, d)]]
        return np.zeros(gates * n, dtype=arrays[g[("weight_hh", 0, 0)]].dtype)

    cells = [[_cell(gates, get, layer, d, nonlinearity, where) for d in range(n_dir)] for layer in range(n_layers)]
    W_yh = b_y = None
    if head is not None:
        W_yh = arrays[head[0]]
        b_y = arrays[head[1]] if head[1] is not None else np.zeros(W_yh.shape[0], W_yh.dtype)
    if n_dir == 2:
        return BidirectionalRNN([tuple(pair) for pair in cells], W_yh, b_y)
    if n_layers > 1:
        return StackedRNN([pair[0] for pair in cells], W_yh, b_y)
    if W_yh is None:
        return cells[0][0]
    return cells[0][0].replace(W_yh=W_yh, b_y=b_y)


def _cell(gates: int, get: Callable[[str, int, int], np.ndarray], layer: int, d: int, nonlinearity: str,
          where: str) -> Any:
    w_ih, w_hh = get("weight_ih", layer, d), get("weight_hh", layer, d)
    b_ih, b_hh = get("bias_ih", layer, d), get("bias_hh", layer, d)
    if gates == 4:
        return LSTM(w_ih, w_hh, b_ih, b_hh)
    if gates == 3:
        return GRU(w_ih, w_hh, b_ih, b_hh)
    with np.errstate(over="ignore"):
        b_h = b_ih + b_hh
    if not np.all(np.isfinite(b_h)):
        raise ValueError(f"`source` ({where}): bias_ih{_tag(layer, d)} + bias_hh{_tag(layer, d)} (the Elman "
                         f"cell's one bias) overflows {b_h.dtype}")
    return ElmanRNN(w_hh, w_ih, b_h, activation=nonlinearity)
