"""Output folders, and the files in them that the library owns.

Commands that write files into a folder (``rnntheory report --out DIR``,
``rnntheory verify --report DIR``, ``rnntheory experiment NAME --out DIR``)
record each file they write in ``DIR/.rnntheory-outputs.json`` with its
SHA-256. A file there is *owned* by the library when it is recorded and has not
changed since. Before writing, a command lists the existing files its names
could take (glob patterns such as ``report.md`` or ``success_*.png``): owned
files are replaced; any other file (yours, or one of ours that you edited)
makes it refuse with :class:`FileExistsError`, unless ``force`` is given. A
symbolic link is never written through: with ``force`` it is removed first.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MANIFEST = ".rnntheory-outputs.json"
_FORMAT = "rnntheory-outputs/1"


def prepare_folder(path: str | os.PathLike[str], name: str) -> Path:
    """Return ``path`` as an existing folder, creating it (and its parents) when missing.

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    ValueError
        If ``path`` is empty, exists and is not a folder, or cannot be created.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`{name}` must be a str or os.PathLike, got {type(path).__name__}")
    if not os.fspath(path).strip():
        raise ValueError(f"`{name}` must name a folder, got {os.fspath(path)!r}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"`{name}` {str(p)!r} exists and is not a folder; give a folder "
                         "(it is created when missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`{name}`: cannot create the folder {str(p)!r}: "
                         f"{exc.strerror or exc}") from exc
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns)


class OutputClaim:
    """The files a command may write in a folder, checked before it writes (see the module).

    Parameters
    ----------
    folder : path
        An existing folder (see :func:`prepare_folder`).
    patterns : sequence of str
        Glob patterns of the file names the command writes there.
    force : bool
        Overwrite files the library does not own.
    name : str
        The argument's name for messages (``"--out"``).

    Raises
    ------
    FileExistsError
        If a file matching ``patterns`` exists that the library does not own
        (and not ``force``), or the folder's record of owned files is not one
        the library can read.
    """

    def __init__(self, folder: Path, patterns: Sequence[str], *, force: bool, name: str) -> None:
        self.folder = folder
        self.patterns = tuple(patterns)
        self.manifest = folder / MANIFEST
        self.owned = self._read_manifest(force, name)
        foreign = []
        for entry in sorted(os.listdir(folder)):
            if not any(fnmatch.fnmatchcase(entry, p) for p in self.patterns):
                continue
            p = folder / entry
            if self._is_owned(p):
                continue
            if not force:
                foreign.append(entry)
            elif p.is_symlink():
                p.unlink()  # write a new file, never through the link
        if foreign:
            shown = ", ".join(repr(f) for f in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise FileExistsError(
                f"`{name}` {str(folder)!r} already holds {shown}, which rnntheory did not "
                "write (or which changed since); it was left untouched. Choose another "
                "folder, or pass --force (force=True) to overwrite"
            )
        self.before = {e: _stat(folder / e) for e in os.listdir(folder)}

    def _read_manifest(self, force: bool, name: str) -> dict[str, str]:
        p = self.manifest
        if not p.exists() and not p.is_symlink():
            return {}
        try:
            if not p.is_file() or p.is_symlink():
                raise ValueError("not a regular file")
            data: Any = json.loads(p.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and data.get("format") == _FORMAT
                    and isinstance(data.get("files"), dict)):
                raise ValueError("not a record of rnntheory's outputs")
            return {str(k): str(v) for k, v in data["files"].items()}
        except (OSError, ValueError) as exc:
            if force:
                if p.is_symlink():
                    p.unlink()
                return {}
            raise FileExistsError(
                f"`{name}` {str(self.folder)!r} holds {MANIFEST!r}, which is not a record "
                f"rnntheory can read ({exc}); it was left untouched. Choose another folder, "
                "or pass --force (force=True)"
            ) from exc

    def _is_owned(self, p: Path) -> bool:
        digest = self.owned.get(p.name)
        if digest is None or p.is_symlink() or not p.is_file():
            return False
        try:
            return _sha256(p) == digest
        except OSError:
            return False

    def record(self) -> list[Path]:
        """Record the files matching the patterns that were written since the check.

        Returns
        -------
        list of pathlib.Path
            The files recorded now.
        """
        written = []
        for entry in sorted(os.listdir(self.folder)):
            p = self.folder / entry
            if (not any(fnmatch.fnmatchcase(entry, pat) for pat in self.patterns)
                    or p.is_symlink() or not p.is_file()):
                continue
            if entry not in self.before or _stat(p) != self.before[entry]:
                self.owned[entry] = _sha256(p)
                written.append(p)
        self.owned = {k: v for k, v in self.owned.items() if (self.folder / k).is_file()}
        text = json.dumps({"format": _FORMAT, "files": self.owned}, indent=1, sort_keys=True)
        tmp = self.folder / f"{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest)
        return written


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a folder, FIFO, socket or device)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def json_safe(value: Any, *, nonfinite: str = "string", dataclasses: bool = False) -> Any:
    """``value`` as JSON-able builtins: the one encoder of the package's JSON output.

    NumPy scalars and arrays become Python numbers and lists, tuples lists, and
    mapping keys strings. JSON has no non-finite numbers, so each caller says
    what a NaN or infinity becomes:

    * ``nonfinite="string"`` (the command line's ``--json`` and the stored
      counterexamples): ``NaN`` becomes ``"nan"``, ``+∞`` ``"inf"`` and ``−∞``
      ``"-inf"`` (the strings Python's ``float`` reads back);
    * ``nonfinite="null"`` (the experiments' numbers and configurations):
      ``None``.

    With ``dataclasses=True`` a dataclass instance becomes the dict of its
    fields (:func:`dataclasses.asdict`). Anything else is returned as it is, for
    :func:`json.dumps` to encode or refuse. The run store, which refuses
    non-finite metrics instead, encodes through :func:`json_default`.

    Examples
    --------
    >>> json_safe({"a": float("inf"), "b": [1.5, float("nan")], "c": (-float("inf"),)})
    {'a': 'inf', 'b': [1.5, 'nan'], 'c': ['-inf']}
    >>> json_safe({"a": float("inf"), "b": (1, 2.5)}, nonfinite="null")
    {'a': None, 'b': [1, 2.5]}
    """
    if nonfinite not in ("string", "null"):
        raise ValueError(f"`nonfinite` must be one of ('string', 'null'), got {nonfinite!r}")
    return _json_safe(value, nonfinite == "null", dataclasses)


def _json_safe(value: Any, null: bool, dataclasses: bool) -> Any:
    import math
    from dataclasses import asdict, is_dataclass

    import numpy as np

    if dataclasses and is_dataclass(value) and not isinstance(value, type):
        return _json_safe(asdict(value), null, dataclasses)
    if isinstance(value, dict):
        return {str(k): _json_safe(v, null, dataclasses) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, null, dataclasses) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist(), null, dataclasses)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isfinite(v):
            return v
        if null:
            return None
        if math.isnan(v):
            return "nan"
        return "inf" if v > 0 else "-inf"
    return value


def json_default(obj: Any) -> Any:
    """The ``default=`` hook of :func:`json.dumps` for NumPy values: scalars and
    real arrays as the equivalent Python values; anything else stays an error.

    Used with ``allow_nan=False`` where non-finite numbers must be refused (the
    run store's metrics) rather than written as strings or nulls
    (:func:`json_safe`).

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> json.dumps({"n": np.int64(3), "x": np.arange(2.0)}, default=json_default)
    '{"n": 3, "x": [0.0, 1.0]}'
    """
    import numpy as np

    if isinstance(obj, np.bool_ | np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
