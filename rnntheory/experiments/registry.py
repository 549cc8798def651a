"""The registry of named experiments behind ``rnntheory experiment NAME``.

Each experiment is a module of :mod:`rnntheory.experiments` that defines a
frozen configuration dataclass (with a small default, ``Config()``, that runs in
minutes on a 2-core laptop, and ``Config.full()`` at the paper's scale) and a
function ``run(config, out, seed) -> ExperimentResult``. The module is imported
only when the experiment is asked for, so listing the experiments imports
nothing heavy.

An :class:`ExperimentResult` holds the measured numbers (JSON-able), the
Markdown report computed from them (a table and an interpretation whose every
sentence depends on the numbers), and the paths of the figures written.
:func:`run_experiment` writes ``OUT/<name>.md`` and the figures ``OUT/<name>-*.png``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._outputs import json_safe
from .._validation import check_int, check_real, show_value

__all__ = [
    "EXPERIMENT_NAMES",
    "Experiment",
    "ExperimentResult",
    "get_experiment",
    "list_experiments",
    "run_experiment",
]

# name -> (module, one-line summary); modules are imported on demand.
_MODULES: dict[str, tuple[str, str]] = {
    "pascanu-tasks": (
        "pascanu_tasks",
        "MSGD, MSGD + clipping, MSGD + clipping + Ω on the pathological tasks (Pascanu et al. 2013)",
    ),
    "init-spectra": (
        "init_spectra",
        "ρ vs σ_max of W_hh for the sigmoid / basic tanh / smart tanh initialisations",
    ),
    "bound-tightness": (
        "bound_tightness",
        "observed ‖∂h_t/∂h_k‖ against Eq. 12, the data-dependent bounds and the Lyapunov rate",
    ),
    "copy-adding": (
        "copy_adding",
        "RNN (orthogonal / IRNN), LSTM, GRU on copy and adding against the memoryless baselines",
    ),
    "mg17-esn": (
        "mg17",
        "echo state network on Mackey–Glass τ = 17: NRMSE84 over runs (Jaeger 2001)",
    ),
    "remedies": (
        "remedies_table",
        "the 11 remedies side by side, each under its own paper's protocol: success rates over seeds",
    ),
    "reproduce": (
        "reproduce",
        "the papers' headline claims under their protocols (≤ 2.5 h on 2 cores, resumable), against the papers",
    ),
}

#: The names of the registered experiments, in the order ``--list`` prints them.
EXPERIMENT_NAMES: tuple[str, ...] = tuple(_MODULES)

#: Expected wall-clock time of each experiment on 2 CPU cores, ``(default, --full)``,
#: for ``rnntheory experiment --list``. The defaults were timed on a shared 2-core
#: machine (CPU time of the default run, or of a slice of its updates and seeds scaled
#: up, halved where two Dask workers share the runs); ``reproduce``: its 78 runs took
#: 25.6 min end to end on two workers from an empty store. The ``--full`` times are extrapolated by the number of runs,
#: updates and sizes: only their order of magnitude is meant.
DURATIONS: dict[str, tuple[str, str]] = {
    "pascanu-tasks": ("about 6 min", "weeks"),
    "init-spectra": ("about 10 s", "about 30 s"),
    "bound-tightness": ("about 10 s", "about 2 min"),
    "copy-adding": ("about 5 min", "weeks"),
    "mg17-esn": ("about 1 min", "about 1 min"),
    "remedies": ("about 10 min", "days"),
    "reproduce": ("about 25 min", "weeks"),
}


@dataclass(frozen=True)
class ExperimentResult:
    """What one experiment measured.

    Attributes
    ----------
    name : str
        The experiment's registry name.
    config : dict
        The configuration it ran with (the dataclass as a dict) and the seed.
    numbers : dict
        The measured numbers, JSON-able (what ``--json`` prints).
    markdown : str
        The report: a Markdown table and an interpretation computed from ``numbers``.
    figures : tuple of str
        Paths of the PNG figures written (empty when no output folder was given).
    wall_s : float
        Wall-clock seconds of the run.
    notes : tuple of str
        Caveats recorded during the run (e.g. a remedy that is not available).
    """

    name: str
    config: dict[str, Any]
    numbers: dict[str, Any]
    markdown: str
    figures: tuple[str, ...] = ()
    wall_s: float = 0.0
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-able builtins (the Markdown left out)."""
        return {
            "name": self.name,
            "config": _jsonable(self.config),
            "numbers": _jsonable(self.numbers),
            "figures": list(self.figures),
            "wall_s": self.wall_s,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Experiment:
    """A registered experiment.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"init-spectra"``.
    summary : str
        One line for ``rnntheory experiment --list``.
    config_type : type
        Its configuration dataclass: ``config_type()`` is the small default,
        ``config_type.full()`` the paper-scale configuration.
    runner : callable
        ``runner(config, out, seed) -> ExperimentResult``; ``out`` is a folder
        (figures are written there) or ``None``.

    Examples
    --------
    >>> from rnntheory.experiments import get_experiment
    >>> exp = get_experiment("pascanu-tasks")
    >>> exp.default_config().lengths, exp.default_config(full=True).lengths
    ((50,), (50, 100, 150, 200))
    """

    name: str
    summary: str
    config_type: type
    runner: Callable[[Any, Path | None, int], ExperimentResult] = field(repr=False)

    def default_config(self, full: bool = False) -> Any:
        """The small default configuration, or the paper-scale one with ``full=True``."""
        if not isinstance(full, bool | np.bool_):
            raise TypeError(f"`full` must be True or False, got {full!r}")
        return self.config_type.full() if full else self.config_type()  # type: ignore[attr-defined]


def list_experiments() -> list[tuple[str, str]]:
    """The registered experiments as ``(name, summary)`` pairs (imports nothing heavy).

    Examples
    --------
    >>> from rnntheory.experiments import list_experiments
    >>> [name for name, _ in list_experiments()][:2]
    ['pascanu-tasks', 'init-spectra']
    """
    return [(n, s) for n, (_, s) in _MODULES.items()]


def get_experiment(name: str) -> Experiment:
    """Look an experiment up by name (its module is imported now).

    Raises
    ------
    ValueError
        If ``name`` is not registered.

    Examples
    --------
    >>> from rnntheory.experiments import get_experiment
    >>> get_experiment("init-spectra").config_type().n_hidden
    50
    """
    if not isinstance(name, str) or name not in _MODULES:
        raise ValueError(f"`name` must be one of {EXPERIMENT_NAMES}, got {show_value(name)}")
    mod = importlib.import_module(f".{_MODULES[name][0]}", __package__)
    exp = mod.EXPERIMENT
    assert isinstance(exp, Experiment) and exp.name == name
    return exp


def run_experiment(
    name: str,
    *,
    full: bool = False,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: Any = None,
) -> ExperimentResult:
    """Run a registered experiment and write its report.

    Parameters
    ----------
    name : str
        One of :data:`EXPERIMENT_NAMES`.
    full : bool
        Use the paper-scale configuration instead of the small default.
    out : str or os.PathLike, optional
        Folder for ``<name>.md`` and the figures ``<name>-*.png`` (created if
        needed). ``None`` writes nothing (the report is still in the result).
    seed : int
        Base seed; the experiment's seeds are ``seed, seed + 1, …``.
    config : dataclass, optional
        A configuration of the experiment's own type, overriding ``full``
        (tests use tiny ones).

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError
        On an unknown name or a negative seed.
    TypeError
        If ``config`` is not the experiment's configuration type.

    Examples
    --------
    >>> from rnntheory.experiments import run_experiment
    >>> from rnntheory.experiments.init_spectra import Config
    >>> r = run_experiment("init-spectra", config=Config(n_hidden=20, seeds=2))
    >>> round(r.numbers["schemes"]["smart_tanh"]["rho"]["mean"], 9)
    0.95
    """
    exp = get_experiment(name)
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(full, bool | np.bool_):
        raise TypeError(f"`full` must be True or False, got {full!r}")
    used_full = bool(full) and config is None
    if config is None:
        config = exp.default_config(full)
    elif not isinstance(config, exp.config_type):
        raise TypeError(
            f"`config` must be a {exp.config_type.__module__}.{exp.config_type.__name__}, "
            f"got {type(config).__name__}"
        )
    folder: Path | None = None
    if out is not None:
        if not isinstance(out, str | os.PathLike) or not isinstance(os.fspath(out), str) or not str(out):
            raise TypeError(f"`out` must be a folder (a non-empty str or os.PathLike) or None, got {out!r}")
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = exp.runner(config, folder, seed)
    wall = time.perf_counter() - t0
    cfg = dict(_config_dict(config), seed=seed, full=used_full)
    res = ExperimentResult(res.name, cfg, res.numbers, res.markdown, res.figures, wall, res.notes)
    if folder is not None:
        md = res.markdown.rstrip() + "\n\n" + _footer(res) + "\n"
        (folder / f"{name}.md").write_text(md, encoding="utf-8")
    return res


# ----------------------------------------------------------------------------- helpers


def check_sequence(name: str, value: Any) -> tuple[Any, ...]:
    """``value`` as a tuple, or a ``TypeError`` naming it (a str is not a sequence of names)."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise TypeError(f"`{name}` must be a tuple, got {show_value(value)}")
    return tuple(value)


def check_run(config: Any, config_type: type, out: Any, seed: Any) -> int:
    """The arguments of an experiment's ``run(config, out, seed)``; returns the seed as an int."""
    if not isinstance(config, config_type):
        raise TypeError(
            f"`config` must be a {config_type.__module__}.{config_type.__name__}, got {type(config).__name__}"
        )
    if out is not None and not isinstance(out, Path):
        raise TypeError(f"`out` must be a pathlib.Path or None, got {show_value(out)}")
    return check_int("seed", seed, minimum=0)


def check_budget(config: Any) -> None:
    """The training budget of a configuration: ``n_hidden``, ``steps`` and ``batch_size``
    at least 1, a learning rate ``lr > 0``."""
    check_int("n_hidden", config.n_hidden, minimum=1)
    check_real("lr", config.lr, low=0.0, low_open=True)
    check_int("steps", config.steps, minimum=1)
    check_int("batch_size", config.batch_size, minimum=1)


def check_workers(workers: Any, scheduler: Any) -> None:
    """The parallel-run fields of a configuration whose runs go through :func:`run_specs`."""
    check_int("workers", workers, minimum=1)
    if not isinstance(scheduler, str):
        raise TypeError(f"`scheduler` must be a str (a scheduler name or address), got {scheduler!r}")


def _config_dict(config: Any) -> dict[str, Any]:
    if is_dataclass(config) and not isinstance(config, type):
        return {f.name: _jsonable(getattr(config, f.name)) for f in fields(config)}
    return {"config": repr(config)}


def _jsonable(v: Any) -> Any:
    """Builtins only: tuples become lists, NumPy scalars Python numbers, non-finite floats None."""
    return json_safe(v, nonfinite="null", dataclasses=True)


def _footer(res: ExperimentResult) -> str:
    cfg = json.dumps(res.config, ensure_ascii=False, sort_keys=True)
    return (
        f"*Run in {res.wall_s:.1f} s with configuration* `{cfg}`; "
        f"`rnntheory experiment {res.name} --json` prints the numbers."
    )


def fmt(v: Any, digits: int = 3) -> str:
    """A number for a Markdown cell: ``—`` for None/NaN, 3 significant digits."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    f = float(v)
    if not math.isfinite(f):
        return "—" if math.isnan(f) else ("∞" if f > 0 else "−∞")
    if f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e5):
        return f"{f:.{digits - 1}e}"
    return f"{f:.{digits}g}"


def fmt_updates(v: float | None) -> str:
    """A number of updates for a table cell: ``—`` for none, else a whole number with thousands separators."""
    return "—" if v is None else f"{v:,.0f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; cells are formatted with :func:`fmt` unless strings,
    then escaped by the library's one table writer (:func:`rnntheory._tables.markdown_table`)."""
    from .._tables import markdown_table as write

    return write(headers, [[x if isinstance(x, str) else fmt(x) for x in r] for r in rows])


def figure_path(out: Path | None, name: str, what: str) -> Path | None:
    """``out/<name>-<what>.png`` (``None`` when there is no output folder)."""
    return None if out is None else out / f"{name}-{what}.png"


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, min and max of a non-empty sequence of finite numbers."""
    import numpy as np

    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}


def cli_experiment(args: Any) -> int:
    """``rnntheory experiment NAME [--full] [--out DIR] [--seed N] [--json] [--force]`` and ``--list``.

    Before anything runs, ``DIR`` is created when missing and checked: an
    existing ``DIR/<name>.md`` or ``DIR/<name>-*.png`` that rnntheory did not
    write (or that changed since) makes the command refuse unless ``--force``,
    and an existing ``DIR/<name>.db`` must be an rnntheory results store.

    Returns
    -------
    int
        0 on success, 2 when neither a name nor ``--list`` is given.

    Raises
    ------
    ValueError, FileExistsError
        On an unknown name or an output folder that cannot be used;
        :func:`rnntheory.cli.main` prints them as one line (exit status 2).
    """
    import glob
    import sys

    from .._outputs import OutputClaim, json_safe, prepare_folder
    from .store import Store

    if args.list or args.name is None:
        if args.name is None and not args.list:
            print("rnntheory experiment: error: give an experiment NAME or --list",
                  file=sys.stderr)
        width = max(len(n) for n in EXPERIMENT_NAMES)
        for n, s in list_experiments():
            print(f"{n:<{width}}  {s}")
        return 0 if args.list else 2
    if args.name not in _MODULES:
        raise ValueError(f"unknown experiment {args.name!r}; choose one of "
                         f"{', '.join(EXPERIMENT_NAMES)}")
    seed = check_int("--seed", args.seed, minimum=0)
    folder = prepare_folder(args.out, "--out")
    stem = glob.escape(args.name)
    claim = OutputClaim(folder, (f"{stem}.md", f"{stem}-*.png"),
                        force=bool(getattr(args, "force", False)), name="--out")
    db = folder / f"{args.name}.db"
    if db.exists() or db.is_symlink():
        Store(db, readonly=True).close()  # refuses (ValueError) a file that is not a store
    config = _cli_config(args)
    res = run_experiment(args.name, full=args.full, out=folder, seed=seed, config=config)
    claim.record()
    if args.json:
        d = res.as_dict()
        d["numbers"] = res.numbers
        json.dump(json_safe(d), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
        sys.stdout.write("\n")
    else:  # the report's tables as aligned text; the Markdown is in the file
        import shutil

        from .._tables import markdown_to_text

        width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
        print(markdown_to_text(res.markdown, width=max(40, width)))
        print()
        print(f"wrote {folder / (args.name + '.md')} and {len(res.figures)} figure(s) "
              f"in {res.wall_s:.1f} s")
    return 0


def _cli_config(args: Any) -> Any:
    """The configuration ``--protocol`` / ``--scheduler`` ask for (``None``: the experiment's own default)."""
    from dataclasses import fields as _fields
    from dataclasses import replace

    changes: dict[str, Any] = {}
    for opt in ("protocol", "scheduler"):
        value = getattr(args, opt, None)
        if value is not None:
            changes[opt] = value
    if not changes:
        return None
    exp = get_experiment(args.name)
    config = exp.default_config(bool(args.full))
    names = {f.name for f in _fields(config)}
    for opt in changes:
        if opt not in names:
            raise ValueError(f"`--{opt}` does not apply to the experiment {args.name!r}")
    return replace(config, **changes)


def run_specs(
    specs: Sequence[Any],
    out: Path | None,
    name: str,
    *,
    workers: int = 2,
    scheduler: str = "processes",
) -> dict[str, Any]:
    """Run training specs through the sweep machinery; return ``{spec.key(): Row}``.

    The runs go into the SQLite store ``out/<name>.db`` through
    :func:`rnntheory.experiments.sweep.run_sweep`, so an interrupted experiment
    resumes where it stopped: runs already recorded as done are skipped. With
    ``out=None`` the store lives in a temporary folder and nothing resumes.
    A failed run is absent from the result's done rows (its ``Row`` has
    ``status == "failed"`` and the error text).
    """
    import tempfile

    from .store import Store
    from .sweep import run_sweep

    def go(db: Path) -> dict[str, Any]:
        sched = "sync" if workers == 1 and "://" not in scheduler else scheduler
        run_sweep(list(specs), db, workers=workers, scheduler=sched, progress=None)
        with Store(db) as store:
            return {r.key: r for r in store.rows()}

    if out is not None:
        return go(out / f"{name}.db")
    with tempfile.TemporaryDirectory() as d:
        return go(Path(d) / f"{name}.db")


def budget_spec(config: Any, task: str, length: int, seed: int, **spec: Any) -> Any:
    """The :class:`~rnntheory.experiments.RunSpec` of one run of ``task`` at ``length``
    with the training budget of ``config`` (its ``n_hidden``, ``optimizer``, ``lr``,
    ``steps``, ``batch_size`` and ``eval_size``); ``spec`` gives the other fields."""
    from .runspec import RunSpec

    return RunSpec(task, length, n_hidden=config.n_hidden, optimizer=config.optimizer, lr=config.lr,
                   steps=config.steps, batch_size=config.batch_size, seed=seed,
                   eval_size=config.eval_size, **spec)


def done_runs(rows: dict[str, Any], specs: Sequence[Any]) -> list[Any]:
    """The records in ``rows`` (as :func:`run_specs` returns them) of the runs of
    ``specs`` that are done, in the order of ``specs``; failed or missing runs are left out."""
    got = [rows.get(sp.key()) for sp in specs]
    return [r for r in got if r is not None and r.status == "done"]
