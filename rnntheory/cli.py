"""Command line: ``rnntheory verify``, ``rnntheory prove``, ``rnntheory bounds WEIGHTS`` (a
``W_hh`` in ``.npz``/``.npy``, or a checkpoint in ``.npz``/``.safetensors``/``.pt``),
``rnntheory diagnose CHECKPOINT``, ``rnntheory sweep CONFIG.toml``, ``rnntheory report
RESULTS.db`` and ``rnntheory experiment NAME``.

Every subcommand follows one contract. The exit status is 0 on success, 1
when a verification fails (``verify``, ``prove``; a ``sweep`` with a failed
run), 2 on a usage or input error (a missing, unreadable, empty, truncated or
misnamed file, a folder where a file is expected, an output that would
overwrite a file the library does not own, an unreachable Dask scheduler) and
130 when interrupted (Ctrl-C). An error is one line on standard error,
``rnntheory <command>: error: <message>``, never a traceback (set the
environment variable ``RNNTHEORY_TRACEBACK=1`` to see one). ``--json`` output is
valid JSON: non-finite numbers are written as the strings ``"nan"``, ``"inf"``
and ``"-inf"``.

Plain output is text for a terminal: tables are aligned columns that fit the
terminal's width (``COLUMNS``, or 100 when the output is not a terminal), long
texts end in ``…``, and Markdown is written only into files (``verify --report``,
``experiment --out``, ``report --out``). ``verify`` prints one row per check as
it finishes and one line summing up the claims ledger (``--verbose``: the
evidence). On a terminal, and only there, verdicts are coloured (unless the
environment variable ``NO_COLOR`` is set) and a transient line shows which
check or claim is running. ``python -m rnntheory`` is the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np

from ._outputs import OutputClaim, is_regular_file, json_safe, prepare_folder
from ._version import VERSION

__all__ = ["build_parser", "main"]

# exit statuses of the ``rnntheory`` command (see the module docstring)
_EXIT_FAILED, _EXIT_INPUT, _EXIT_INTERRUPTED = 1, 2, 130


def _dump_json(obj: Any) -> None:
    """Print ``obj`` as strict JSON (non-finite numbers as strings, see :func:`json_safe`)."""
    json.dump(json_safe(obj), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


def _fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v: .3e}"


class _Console:
    """Where the plain-text output goes: on a terminal, transient progress lines
    (overwritten with ``\r``) and coloured verdicts; in a pipe or a file, neither.

    Colour is used only on a terminal, and never when the environment variable
    ``NO_COLOR`` is set to a non-empty value or ``TERM`` is ``dumb``. The width is
    the terminal's, or ``COLUMNS`` (default 100) when the output is not a terminal.
    """

    _CODES: ClassVar[dict[str, str]] = {"pass": "32", "fail": "1;31"}

    def __init__(self, stream: Any) -> None:
        import shutil

        self.stream = stream
        try:
            self.tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self.colour = (self.tty and not os.environ.get("NO_COLOR")
                       and os.environ.get("TERM", "") != "dumb")
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns
        else:
            try:
                width = int(os.environ.get("COLUMNS", "100"))
            except ValueError:
                width = 100
        self.width = max(40, width if width > 0 else 100)
        self._shown = 0

    def paint(self, text: str, kind: str) -> str:
        """``text`` in the colour of ``kind`` (on a terminal that allows colour only)."""
        return f"\033[{self._CODES[kind]}m{text}\033[0m" if self.colour else text

    def status(self, text: str) -> None:
        """A transient line on a terminal (nothing elsewhere), replaced by the next output."""
        if not self.tty:
            return
        from ._tables import display_width, shorten

        text = shorten(text, self.width - 1)
        self.stream.write("\r" + text + " " * max(0, self._shown - display_width(text)))
        self.stream.flush()
        self._shown = display_width(text)

    def line(self, text: str = "") -> None:
        """One line of output, after clearing a transient line."""
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0
        self.stream.write(text + "\n")
        self.stream.flush()


def _with_status(items: Any, names: Sequence[str], console: _Console, what: str) -> Any:
    """Yield from ``items``, showing ``running <what> k/n: <name>…`` before each one."""
    it = iter(items)
    n = len(names)
    k = 0
    while True:
        if k < n:
            console.status(f"running {what} {k + 1}/{n}: {names[k]}…")
        try:
            item = next(it)
        except StopIteration:
            return
        k += 1
        yield item


def _ledger_summary(claims: list[Any], console: _Console) -> str:
    """``ledger: 34/34 claims re-verified — 8 hold, …``: the verdicts counted, in one line."""
    from .ledger import VERDICTS

    words = {"holds": "hold", "holds with conditions": "hold with conditions"}
    counts = [(sum(c.verdict == v for c in claims), words.get(v, v)) for v in VERDICTS]
    ok = sum(bool(c.verified) for c in claims)
    done = f"{ok}/{len(claims)} claims re-verified"
    return (f"ledger: {console.paint(done, 'pass' if ok == len(claims) else 'fail')} — "
            + ", ".join(f"{n} {v}" for n, v in counts if n))


def _check_columns(names: Sequence[str], width: int, T: int) -> tuple[list[int], int]:
    """Widths of the columns check, models, pairs, worst, verdict; and what is left for the claim.

    ``pairs`` is wide enough for every pair (t, k) of 50 models at this ``T``; ``worst``
    for any float64 in ``.3e`` (``-1.000e-300``)."""
    pairs = len(str(50 * T * (T + 1) // 2))
    widths = [max([5, *(len(n) for n in names)]), 6, max(7, pairs), 11, 7]
    used = sum(widths) + 2 * len(widths)
    return widths, max(len("claim"), width - used)


def _print_checks_summary(rows: list[Any], cfg: Any, console: _Console) -> None:
    import textwrap

    n_ok = sum(r.passed for r in rows)
    done = f"{n_ok}/{len(rows)} checks passed"
    text = (f"{done} (T = {cfg.T}, n_hidden = {cfg.n_hidden}, seed = {cfg.seed}). 'worst' is "
            "max ln(observed/bound) for a bound (≤ 0: it holds), the largest relative error "
            "for an identity.")
    lines = textwrap.wrap(text, console.width)
    lines[0] = lines[0].replace(done, console.paint(done, "pass" if n_ok == len(rows) else "fail"), 1)
    for line in lines:
        console.line(line)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .checks import registry as check_registry
    from .verification import VerifyConfig, run_checks

    cfg = VerifyConfig(T=args.T, seed=args.seed)
    claim = None
    if args.report:
        folder = prepare_folder(args.report, "--report")
        claim = OutputClaim(folder, ("verify.md", "flow-*.png", "lag-*.png", "eigenvalues.png"),
                            force=args.force, name="--report")
    if args.json:
        rows = list(run_checks(cfg, progress=False))
        claims: list[Any] = []
        if not args.no_proofs:
            from . import ledger

            claims = list(ledger.run(progress=False))
    else:
        rows, claims = _verify_text(args, cfg, check_registry, run_checks)
    failed = [r for r in rows if not r.passed] + [c for c in claims if not c.verified]
    if args.report:
        from .verification import write_report

        page = write_report(rows, args.report, cfg, claims)
        if claim is not None:
            claim.record()
        if not args.json:
            print(f"report: {page}")
    if args.json:
        _dump_json(
            {"config": {"T": cfg.T, "n_hidden": cfg.n_hidden, "seed": cfg.seed},
             "checks": [r.as_dict() | {"worst": r.worst} for r in rows],
             "claims": [c.as_dict() for c in claims],
             "passed": not failed},
        )
    return 1 if failed else 0


def _verify_text(args: argparse.Namespace, cfg: Any, check_registry: Any,
                 run_checks: Any) -> tuple[list[Any], list[Any]]:
    """The plain-text output of ``verify``: each check's row as it finishes, then the
    ledger (one summary line, or every claim's evidence with ``--verbose``)."""
    from ._tables import pad, shorten

    console = _Console(sys.stdout)
    names = [spec.name for spec in check_registry()]
    widths, room = _check_columns(names, console.width, cfg.T)
    heads = ["check", "models", "pairs", "worst", "verdict"]
    aligns = ["left", "right", "right", "right", "left"]
    console.line("  ".join(pad(h, w, a) for h, w, a in zip(heads, widths, aligns, strict=True))
                 + "  claim")
    console.line("  ".join("-" * w for w in widths) + "  " + "-" * min(room, 40))
    rows = []
    for r in _with_status(run_checks(cfg, progress=False), names, console, "check"):
        rows.append(r)
        verdict = console.paint(pad("pass" if r.passed else "FAIL", widths[4]),
                                "pass" if r.passed else "fail")
        cells = [pad(r.check, widths[0]), pad(str(r.models), widths[1], "right"),
                 pad(str(r.pairs), widths[2], "right"), pad(_fmt(r.worst).strip(), widths[3], "right"),
                 verdict]
        text = r.claim if args.verbose else shorten(" ".join(r.claim.split()), room)
        console.line("  ".join(cells) + "  " + text)
    console.line()
    _print_checks_summary(rows, cfg, console)
    claims: list[Any] = []
    if args.no_proofs:
        return rows, claims
    from . import ledger

    ids = list(ledger.registry())
    claims = list(_with_status(ledger.run(progress=False), ids, console, "claim"))
    console.line()
    if args.verbose:
        _print_ledger(claims, console)
        console.line()
    console.line(_ledger_summary(claims, console))
    for c in claims:
        if not c.verified:
            why = f" ({' '.join(str(c.error).split())})" if c.error else ""
            text = shorten(f"  {c.id} NOT re-verified: {' '.join(c.claim.split())}{why}",
                           console.width)
            console.line(text.replace("NOT re-verified", console.paint("NOT re-verified", "fail"), 1))
    if not args.verbose:
        console.line("false = refuted by a counterexample recomputed in this run. "
                      "Evidence: rnntheory verify --verbose")
    return rows, claims


def _print_ledger(results: list[Any], console: _Console | None = None) -> None:
    out = console if console is not None else _Console(sys.stdout)
    width = max(len(r.verdict) for r in results) if results else 7
    out.line(f"{'ID':<4} {'verdict':<{width}}  {'ok':<3} claim")
    out.line("-" * (width + 60))
    for r in results:
        ok = out.paint(f"{'yes' if r.verified else 'NO':<3}", "pass" if r.verified else "fail")
        out.line(f"{r.id:<4} {r.verdict:<{width}}  {ok} {r.claim}")
        if r.corrected and r.verdict != "holds":
            out.line(f"{'':<4} {'':<{width}}      corrected: {r.corrected}")
        for line in r.evidence:
            out.line(f"{'':<4} {'':<{width}}      - {line}")
        if r.error:
            out.line(f"{'':<4} {'':<{width}}      ERROR: {r.error}")


def _cmd_prove(args: argparse.Namespace) -> int:
    from . import ledger

    results = list(ledger.run(args.claim, search=args.search,
                              progress=None if not (args.json or args.markdown) else False))
    failed = [r for r in results if not r.verified]
    if args.json:
        _dump_json({"claims": [r.as_dict() for r in results], "passed": not failed})
    elif args.markdown:
        sys.stdout.write(ledger.to_markdown(results))
    else:
        _print_ledger(results)
        counts = {v: sum(r.verdict == v for r in results) for v in ledger.VERDICTS}
        print()
        print(f"{len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + f"; {len(results) - len(failed)}/{len(results)} re-verified.")
    return 1 if failed else 0


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_W_NAMES = ("W_hh", "weight_hh_l0", "W", "recurrent")


def _load_weights(path: str, key: str | None) -> tuple[np.ndarray, str]:
    """The recurrent matrix in a .npz archive or .npy file, and the name it was found under.

    The format is read from the file's first bytes, not from its extension.
    Raises FileNotFoundError or ValueError naming ``WEIGHTS`` on anything but a
    readable NumPy file holding a numeric array.
    """
    p = Path(path)
    where = repr(path)
    if not p.exists():
        raise FileNotFoundError(f"`WEIGHTS` file not found: {where}")
    if p.is_dir():
        raise ValueError(f"`WEIGHTS` {where} is a folder; expected a .npz or .npy file")
    if not is_regular_file(p):
        raise ValueError(f"`WEIGHTS` {where} is not a regular file; expected a .npz or .npy file")
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise ValueError(f"`WEIGHTS` {where} cannot be read: {exc.strerror or exc}") from exc
    with fh:
        head = fh.read(6)
        fh.seek(0)
        if not head:
            raise ValueError(f"`WEIGHTS` {where} is an empty file; expected a .npz or .npy file")
        if head.startswith(_NPY_MAGIC):
            if key is not None:
                raise ValueError(f"`--key` {key!r} names an array in a .npz archive, but "
                                 f"{where} is a single .npy array; leave --key out")
            return _read_array(fh, where, ".npy file"), f"the array of {where}"
        if head[:4] not in _ZIP_MAGICS:
            raise ValueError(f"`WEIGHTS` {where} is not a NumPy .npz or .npy file "
                             f"(it starts with {head!r})")
        try:
            data = np.load(fh, allow_pickle=False)
        except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, ...
            raise ValueError(f"`WEIGHTS` {where} is not a readable .npz archive (truncated or "
                             f"corrupt): {type(exc).__name__}: {exc}") from exc
        with data:
            names = [n for n in data.files]
            if not names:
                raise ValueError(f"`WEIGHTS` {where} is a .npz archive with no arrays")
            if key is None:
                key = next((n for n in _W_NAMES if n in names), names[0] if len(names) == 1 else None)
                if key is None:
                    raise ValueError(f"cannot tell which array of {where} is W_hh among {names}; "
                                     "pass --key NAME")
            elif key not in names:
                raise ValueError(f"`--key` {key!r} not in the file, which has {names}")
            if not data.zip.namelist() or f"{key}.npy" not in data.zip.namelist():
                raise ValueError(f"`WEIGHTS` {where}: member {key!r} is not a NumPy array "
                                 "(.npy) member")
            with data.zip.open(f"{key}.npy") as member:
                return (_read_array(member, where, f"array {key!r} of the .npz archive"),
                        f"array {key!r} of {where}")


def _read_array(fh: Any, where: str, what: str) -> np.ndarray:
    try:
        W = np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"`WEIGHTS` {where}: the {what} holds Python objects, which are "
                             "never loaded (only numeric arrays are read)") from exc
        raise ValueError(f"`WEIGHTS` {where}: the {what} is truncated or corrupt: {exc}") from exc
    except Exception as exc:  # EOFError, zlib.error, zipfile.BadZipFile (CRC), OSError
        raise ValueError(f"`WEIGHTS` {where}: the {what} is truncated or corrupt: "
                         f"{type(exc).__name__}: {exc}") from exc
    return W


def _as_recurrent_matrix(W: np.ndarray, name: str) -> np.ndarray:
    """``W`` as a non-empty square float64 matrix, or ValueError (no silent rounding to 0/inf)."""
    if W.dtype.kind not in "f":
        raise ValueError(f"`W_hh` ({name}) must be a real floating-point array, got dtype {W.dtype}")
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.size == 0:
        raise ValueError(f"`W_hh` ({name}) must be a non-empty square matrix, got shape {W.shape}")
    bad = int(W.size - np.count_nonzero(np.isfinite(W)))
    if bad:
        raise ValueError(f"`W_hh` ({name}) must be finite, got {bad} NaN/inf "
                         f"entr{'y' if bad == 1 else 'ies'}")
    with np.errstate(over="ignore", under="ignore"):
        W64 = W.astype(np.float64)
    if W.dtype.itemsize > 8:
        lost = (np.isfinite(W) != np.isfinite(W64)) | ((W != 0) != (W64 != 0))
        if lost.any():
            i, j = np.argwhere(lost)[0]
            raise ValueError(f"`W_hh` ({name}) has entries outside float64's range, e.g. "
                             f"[{i}, {j}] = {W[i, j]!r}; they would become 0 or ±inf")
    return W64


_GATE_NAMES = {"lstm": "ifgo", "gru": "rzn"}


def _is_checkpoint(path: str, key: str | None) -> bool:
    """Whether ``WEIGHTS`` is a PyTorch-style checkpoint (``.safetensors``, ``.pt``, or an
    ``.npz`` whose keys are a recurrent module's ``weight_ih_l<k>``/``weight_hh_l<k>``
    without a ``W_hh`` of its own) rather than a file holding one ``W_hh``. An ``.npz``
    whose one recurrent matrix is a square ``weight_hh_l0`` (a one-layer Elman module)
    is read as before, as that ``W_hh``. The format is read from the first bytes; the
    extension decides only for a file that is none of these formats. A zip archive
    that cannot be read is left to the ``W_hh`` reader, which names the problem."""
    import zipfile

    from .checkpoints import KEY, is_state_dict

    if key is not None:
        return False
    p = Path(path)
    if not is_regular_file(p):
        return False
    try:
        with p.open("rb") as fh:
            head = fh.read(9)
        if head[:4] in _ZIP_MAGICS:  # an .npz, or torch's zip format
            with zipfile.ZipFile(p) as z:
                members = z.namelist()
            if any(m == "data.pkl" or m.endswith("/data.pkl") for m in members):
                return True
            names = [m[:-4] for m in members if m.endswith(".npy")]
            if any(n in names for n in ("W_hh", "W", "recurrent")) or not is_state_dict(names):
                return False
            recurrent = [n for n in names if (m := KEY.match(n)) and m["kind"] in ("weight_hh", "weight_hr")]
            if recurrent == ["weight_hh_l0"]:  # one square W_hh under PyTorch's name: read as before
                with np.load(p, allow_pickle=False) as data:
                    shape = data["weight_hh_l0"].shape
                return not (len(shape) == 2 and shape[0] == shape[1])
            return True
    except Exception:  # OSError, BadZipFile, zlib.error, ...: the W_hh reader names it
        return False
    if head[:1] == b"\x80" or (len(head) == 9 and head[8:9] == b"{"):  # a pickle (torch), safetensors
        return True
    return p.suffix.lower() in (".safetensors", ".pt", ".pth")  # damaged: the checkpoint reader names it


def _recurrences(model: Any) -> list[tuple[str, int, str, Any]]:
    """``(label, layer, direction, cell)`` for every recurrence of a loaded model."""
    from .cells import BidirectionalRNN

    if isinstance(model, BidirectionalRNN):
        return [(f"layer {i + 1}" + (" (backward)" if d else ""), i + 1, "backward" if d else "forward", c)
                for i, pair in enumerate(model.layers) for d, c in enumerate(pair)]
    cells = getattr(model, "layers", None) or [model]
    return [(f"layer {i + 1}", i + 1, "forward", c) for i, c in enumerate(cells)]


def _checkpoint_bounds(args: argparse.Namespace) -> int:
    """``bounds`` on a checkpoint: every layer and direction; gated matrices per gate block."""
    from . import bounds as bd
    from .cells import GRU, LSTM
    from .checkpoints import from_state_dict

    act = args.activation
    model = from_state_dict(args.weights, nonlinearity=act if act in ("tanh", "relu") else "tanh",
                            readout=None)
    recs = _recurrences(model)
    first = recs[0][3]
    cell = "lstm" if isinstance(first, LSTM) else "gru" if isinstance(first, GRU) else "elman"
    rows = []
    for label, layer, direction, c in recs:
        W = np.asarray(c.W_hh if cell == "elman" else c.weight_hh, dtype=np.float64)
        row: dict[str, Any] = {"label": label, "layer": layer, "direction": direction,
                               "shape": list(W.shape), "gamma_w": bd.gamma_w(W)}
        if cell == "elman":
            row["gamma_h"] = bd.gamma_h(act)
            row["spectral_radius"] = bd.spectral_radius(W)
            row["rate"] = row["gamma_w"] * row["gamma_h"]
            van, exp = bd.vanishing_guaranteed(W, act), bd.explosion_possible(W, act)
            row["vanishing_guaranteed"], row["explosion_possible"] = van.holds, exp.holds
            row["steps_to_1e-8"] = bd.steps_to_vanish(W, act, 1e-8)
        else:
            n = W.shape[1]
            row["blocks"] = {g: {"gamma_w": bd.gamma_w(W[j * n:(j + 1) * n]),
                                 "spectral_radius": bd.spectral_radius(W[j * n:(j + 1) * n])}
                             for j, g in enumerate(_GATE_NAMES[cell])}
            row["vanishing_guaranteed"] = row["explosion_possible"] = None
        rows.append(row)
    n_dir = 2 if any(r["direction"] == "backward" for r in rows) else 1
    out: dict[str, Any] = {
        "cell": cell, "n_layers": len(rows) // n_dir, "bidirectional": n_dir == 2,
        "n_in": model.n_in, "n_hidden": model.n_hidden, "dtype": str(model.dtype),
        "activation": act if cell == "elman" else None, "recurrences": rows,
    }
    if args.json:
        _dump_json(out)
        return 0
    what = {"elman": f"Elman ({act})", "lstm": "LSTM", "gru": "GRU"}[cell]
    print(f"{what}, {out['n_layers']} layer(s){', bidirectional' if n_dir == 2 else ''}, "
          f"n_in = {model.n_in}, n_hidden = {model.n_hidden}, {model.dtype}")
    name = "W_hh" if cell == "elman" else "weight_hh"
    for r in rows:
        print(f"{r['label']}: {name} {tuple(r['shape'])}")
        print(f"  γ_W = σ_max({name}){'':<{10 - len(name)}}{r['gamma_w']:.6g}")
        if cell == "elman":
            print(f"  γ_h = sup|f′|           {r['gamma_h']:.6g}")
            print(f"  ρ(W_hh)                 {r['spectral_radius']:.6g}   (does not bound gradients)")
            print(f"  γ_W γ_h (Eq. 12 rate)   {r['rate']:.6g}")
            print(f"  vanishing guaranteed    {r['vanishing_guaranteed']}   [sufficient]")
            print(f"  explosion possible      {r['explosion_possible']}   [necessary]")
            if r["steps_to_1e-8"] is not None:
                print(f"  Eq. 12 guarantees ‖∂h_t/∂h_k‖ ≤ 1e-8 once t − k ≥ {r['steps_to_1e-8']}")
        else:
            for g, b in r["blocks"].items():
                print(f"  gate {g}: γ_W = {b['gamma_w']:.6g}   ρ = {b['spectral_radius']:.6g}")
    if cell != "elman":
        print("Pascanu's conditions apply to Elman cells only: in a gated cell the gates multiply the "
              "recurrence, so γ_W alone neither guarantees vanishing nor allows explosion.")
    return 0


def _cmd_bounds(args: argparse.Namespace) -> int:
    from . import bounds as bd

    if _is_checkpoint(args.weights, args.key):
        return _checkpoint_bounds(args)
    raw, name = _load_weights(args.weights, args.key)
    W = _as_recurrent_matrix(raw, name)
    out: dict[str, Any] = {
        "shape": list(W.shape),
        "activation": args.activation,
        "gamma_w": bd.gamma_w(W),
        "gamma_h": bd.gamma_h(args.activation),
        "spectral_radius": bd.spectral_radius(W),
    }
    van = bd.vanishing_guaranteed(W, args.activation)
    exp = bd.explosion_possible(W, args.activation)
    out["rate"] = out["gamma_w"] * out["gamma_h"]
    out["vanishing_guaranteed"] = van.holds
    out["explosion_possible"] = exp.holds
    out["steps_to_1e-8"] = bd.steps_to_vanish(W, args.activation, 1e-8)
    if args.json:
        _dump_json(out)
        return 0
    print(f"W_hh {tuple(W.shape)}, activation {args.activation}")
    print(f"  γ_W = σ_max(W_hh)       {out['gamma_w']:.6g}")
    print(f"  γ_h = sup|f′|           {out['gamma_h']:.6g}")
    print(f"  ρ(W_hh)                 {out['spectral_radius']:.6g}   (does not bound gradients)")
    print(f"  γ_W γ_h (Eq. 12 rate)   {out['rate']:.6g}")
    print(f"  vanishing guaranteed    {van.holds}   [sufficient] {van.statement}")
    print(f"  explosion possible      {exp.holds}   [necessary]  {exp.statement}")
    if out["steps_to_1e-8"] is not None:
        print(f"  Eq. 12 guarantees ‖∂h_t/∂h_k‖ ≤ 1e-8 once t − k ≥ {out['steps_to_1e-8']}")
    return 0


def _load_input(path: str) -> np.ndarray:
    """The input sequence of ``rnntheory diagnose --input``: a ``.npy`` array, read without pickles."""
    p = Path(path)
    where = repr(path)
    if not p.exists():
        raise FileNotFoundError(f"`--input` file not found: {where}")
    if not is_regular_file(p):
        raise ValueError(f"`--input` {where} is not a regular file; expected a .npy array")
    with p.open("rb") as fh:
        if not fh.read(6).startswith(_NPY_MAGIC):
            raise ValueError(f"`--input` {where} is not a NumPy .npy file; save the input with "
                             "numpy.save (shape (T, n_in) or (T, B, n_in))")
        fh.seek(0)
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except Exception as exc:  # a pickled object array, truncated data
            raise ValueError(f"`--input` {where} cannot be read as a numeric array: "
                             f"{type(exc).__name__}: {exc}") from exc


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from .checkpoints import from_state_dict
    from .diagnosis import diagnose

    model = from_state_dict(args.checkpoint, nonlinearity=args.nonlinearity)
    if args.input is not None:
        x = _load_input(args.input)
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((args.random, model.n_in)).astype(model.dtype)
    d = diagnose(model, x, batch_first=args.batch_first, tolerance=args.tolerance, seed=args.seed)
    if args.json:
        _dump_json(d.to_dict())
    else:
        print(d)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    try:
        from .experiments.sweep import SweepInterrupted, SweepStopped, cli_sweep

        try:
            return cli_sweep(args)
        except SweepStopped as exc:  # a lost scheduler (2), Ctrl-C (130): one line
            kind = "" if isinstance(exc, SweepInterrupted) else "error: "
            print(f"rnntheory sweep: {kind}{exc}", file=sys.stderr)
            return int(exc.status)
    except KeyboardInterrupt:  # outside the runs: every recorded run is complete
        print("rnntheory sweep: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130


def _cmd_report(args: argparse.Namespace) -> int:
    from .experiments.report import cli_report

    return cli_report(args)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments.registry import cli_experiment

    if args.list or args.name is None:
        if args.name is None and not args.list:
            print("rnntheory experiment: error: give an experiment NAME or --list", file=sys.stderr)
        _list_experiments()
        return 0 if args.list else _EXIT_INPUT
    return cli_experiment(args)


def _list_experiments() -> None:
    """``experiment --list``: each experiment, its expected wall time at the default and at
    ``--full`` scale, and what it measures, as an aligned table shortened to the width."""
    from ._tables import text_table
    from .experiments.registry import DURATIONS, list_experiments

    console = _Console(sys.stdout)
    rows = [[name, *DURATIONS.get(name, ("not measured", "not measured")), summary]
            for name, summary in list_experiments()]
    for line in text_table(["experiment", "default", "--full", "what it measures"], rows,
                           width=console.width):
        console.line(line)
    console.line()
    console.line("Times are wall-clock on 2 CPU cores; --full times are estimated from the "
                 "default runs.")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_INPUT, f"{self.prog}: error: {' '.join(message.split())} "
                              f"(see '{self.prog} --help')\n")


def _int_at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rnntheory`` command.

    Returns
    -------
    argparse.ArgumentParser
        A usage error makes it print one line on stderr and exit with status 2.
    """
    p = _Parser(
        prog="rnntheory",
        description="Check the theory of vanishing and exploding gradients in RNNs.",
        epilog="Exit status: 0 success, 1 a check or claim failed, 2 a usage or input error, "
               "130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"rnntheory {VERSION}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("verify", help="run the numeric checks on the embedded default models")
    v.add_argument("--json", action="store_true",
                   help="machine-readable output: every check and claim with its evidence")
    v.add_argument("--verbose", "-v", action="store_true",
                   help="print each claim's evidence and the checks' claims in full "
                        "(default: one row per check and a one-line ledger summary)")
    v.add_argument("--T", type=_int_at_least(1), default=100, help="sequence length (default 100)")
    v.add_argument("--seed", type=_int_at_least(0), default=2013,
                   help="seed of the default models")
    v.add_argument("--no-proofs", action="store_true", help="skip the claims ledger")
    v.add_argument("--report", default=None, metavar="DIR",
                   help="also write DIR/verify.md with the table and gradient-flow figures "
                        "(DIR is created when missing)")
    v.add_argument("--force", action="store_true",
                   help="with --report: overwrite files in DIR that rnntheory did not write")
    v.set_defaults(func=_cmd_verify)
    pr = sub.add_parser("prove", help="the claims ledger: a verdict and evidence for every claim")
    pr.add_argument("--claim", action="append", default=None, metavar="ID",
                    help="only this claim (repeatable), e.g. --claim C12")
    out = pr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--markdown", action="store_true", help="the ledger as a Markdown page")
    pr.add_argument("--search", action="store_true",
                    help="re-run the counterexample searches and store their results")
    pr.set_defaults(func=_cmd_prove)
    b = sub.add_parser("bounds", help="γ_W, γ_h, ρ and Pascanu's conditions for your W_hh "
                                      "or every layer of a checkpoint")
    b.add_argument("weights", metavar="WEIGHTS",
                   help=".npz (or .npy) file holding W_hh (loaded with allow_pickle=False), or a "
                        "PyTorch checkpoint (.npz, .safetensors or .pt with an nn.RNN/LSTM/GRU's "
                        "keys: every layer and direction, gated matrices per gate block)")
    b.add_argument("--key", default=None, help="name of W_hh in the .npz")
    b.add_argument("--activation", default="tanh", choices=["tanh", "sigmoid", "identity", "relu"],
                   help="the Elman nonlinearity (a checkpoint does not record it; gated cells "
                        "ignore it)")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.set_defaults(func=_cmd_bounds)
    dg = sub.add_parser("diagnose", help="how far back the gradients of a trained model reach, "
                        "with a verdict and the theory's bounds (per layer and direction)")
    dg.add_argument("checkpoint", metavar="CHECKPOINT",
                    help="state dict of a torch.nn.RNN/LSTM/GRU: .pt/.pth, .npz or .safetensors")
    src = dg.add_mutually_exclusive_group()
    src.add_argument("--input", default=None, metavar="X.npy",
                     help="input sequence, shape (T, n_in) or (T, B, n_in) (loaded with "
                          "allow_pickle=False)")
    src.add_argument("--random", type=_int_at_least(1), default=100, metavar="T",
                     help="a standard normal input of T steps (default 100)")
    dg.add_argument("--batch-first", action="store_true",
                    help="the --input array is (B, T, n_in)")
    dg.add_argument("--nonlinearity", default="tanh", choices=["tanh", "relu"],
                    help="nn.RNN's nonlinearity (a state dict does not record it; default tanh)")
    dg.add_argument("--tolerance", type=float, default=1e-3,
                    help="horizon tolerance in (0, 1), relative to the lag-0 gradient "
                         "(default 1e-3)")
    dg.add_argument("--seed", type=_int_at_least(0), default=0,
                    help="seed of --random and of the Lyapunov frame (default 0)")
    dg.add_argument("--json", action="store_true", help="machine-readable output")
    dg.set_defaults(func=_cmd_diagnose)
    sw = sub.add_parser("sweep", help="run a grid of training runs on Dask into a SQLite store")
    sw.add_argument("config", help="the sweep's TOML file ([sweep] and [grid] tables)")
    sw.add_argument("--db", default=None, help="results store (default: [sweep] db of the file)")
    sw.add_argument("--workers", type=int, default=None, help="local Dask workers")
    sw.add_argument("--scheduler", default=None,
                    help="processes (default), threads, sync, or a Dask address tcp://HOST:PORT")
    sw.add_argument("--scheduler-timeout", type=float, default=None, metavar="SECONDS",
                    help="stop when the Dask scheduler cannot be reached or is silent this long "
                         "(default: [sweep] scheduler_timeout of the file, else 60)")
    sw.add_argument("--dry-run", action="store_true", help="list the runs and whether each is done")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    sw.add_argument("--progress-every", type=float, default=None, metavar="SECONDS",
                    help="seconds between progress lines when stderr is not a terminal "
                         "(default 30)")
    sw.set_defaults(func=_cmd_sweep)
    rp = sub.add_parser("report", help="a Markdown report with figures from a sweep's results store")
    rp.add_argument("db", help="the results store (SQLite) of a sweep; opened read-only")
    rp.add_argument("--out", default="report",
                    help="output folder (default ./report; created when missing)")
    rp.add_argument("--title", default=None, help="the report's title")
    rp.add_argument("--force", action="store_true",
                    help="overwrite files in the output folder that rnntheory did not write")
    rp.set_defaults(func=_cmd_report)
    ex = sub.add_parser("experiment", help="run a named experiment (small default; --full: paper scale)")
    ex.add_argument("name", nargs="?", default=None, help="the experiment (see --list)")
    ex.add_argument("--list", action="store_true", help="list the experiments")
    ex.add_argument("--full", action="store_true", help="the paper-scale configuration")
    ex.add_argument("--out", default="experiments",
                    help="output folder (default ./experiments; created when missing)")
    ex.add_argument("--seed", type=_int_at_least(0), default=0, help="base seed (default 0)")
    ex.add_argument("--json", action="store_true", help="print the measured numbers as JSON")
    ex.add_argument("--protocol", choices=("own", "common"), default=None,
                    help="remedies: each remedy under its paper's protocol (own, the default) or one common SGD")
    ex.add_argument("--scheduler", default=None,
                    help="experiments that sweep: 'processes', 'threads', 'sync' or a Dask scheduler address")
    ex.add_argument("--force", action="store_true",
                    help="overwrite files in the output folder that rnntheory did not write")
    ex.set_defaults(func=_cmd_experiment)
    return p


def _one_line(exc: BaseException) -> str:
    """The message of an exception on one line (an OSError as 'reason: file')."""
    if isinstance(exc, OSError) and len(exc.args) != 1 and exc.strerror:
        text = exc.strerror + (f": {exc.filename!r}" if exc.filename else "")
    else:
        text = str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def _fail(command: str, message: str) -> None:
    sys.stderr.write(f"rnntheory {command}: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnntheory`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a check, claim or run failed, 2 on an input error
        (the library's ``ValueError``, ``TypeError``, ``OSError`` and the like,
        printed as one line ``rnntheory <command>: error: <message>`` on
        stderr), 130 on Ctrl-C, 141 when stdout is closed early (a pipe into
        ``head``). Another exception is a bug: one line naming it, status 1
        (``RNNTHEORY_TRACEBACK=1`` re-raises it).

    Raises
    ------
    SystemExit
        On a usage error (status 2, one line on stderr), ``--help`` and
        ``--version`` (status 0), as argparse does.

    Examples
    --------
    >>> from rnntheory.cli import main
    >>> main(["bounds", "no-such-file.npz"])
    2
    """
    import sqlite3

    args = build_parser().parse_args(argv)
    command = str(args.command)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _fail(command, "interrupted")
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        try:  # no "Exception ignored" message when the interpreter flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise
        _fail(command, f"error: {' '.join(str(exc.code).split())}")
        return _EXIT_INPUT
    except (ValueError, TypeError, OSError, ImportError, MemoryError, sqlite3.Error) as exc:
        if os.environ.get("RNNTHEORY_TRACEBACK"):
            raise
        _fail(command, f"error: {_one_line(exc)}")
        return _EXIT_INPUT
    except Exception as exc:
        if os.environ.get("RNNTHEORY_TRACEBACK"):
            raise
        _fail(command, f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (a bug in "
                       "rnntheory; RNNTHEORY_TRACEBACK=1 shows where)")
        return _EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
