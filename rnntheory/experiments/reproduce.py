r"""``reproduce``: the reproduction subset — the papers' headline claims, under their protocols.

A subset of the protocols of :mod:`rnntheory.experiments.protocols`, chosen
so that it tests each paper's headline claim and completes in at most 2.5
hours on a 2-core machine through the local Dask cluster:

- Pascanu, Mikolov & Bengio (2013, Fig. 7): temporal order at lengths 50,
  100, 150 and 200 with MSGD, MSGD + clipping and MSGD + clipping + Ω, 5 seeds;
- the adding problem at length 150 (the shortest of Le, Jaitly & Hinton's
  lengths) for the LSTM, the GRU and the IRNN, 5 seeds;
- Martens & Sutskever (2011): Hessian-free with structural damping on the
  addition problem at length 100, 3 seeds.

Every run is a :class:`~rnntheory.experiments.RunSpec` built by its protocol
(:meth:`~rnntheory.experiments.protocols.Protocol.spec`) and run through
:func:`rnntheory.experiments.sweep.run_sweep` into the SQLite store
``OUT/reproduce.db``: an interrupted run resumes where it stopped, without
losing or duplicating a result (the store's primary key is the spec's hash).
Before anything runs, a short probe measures the time of one update at each
(protocol, task, length) and the experiment prints its estimate of the whole
subset's duration (:func:`estimate_seconds`).

The budgets are the subset's, far below the papers' (Pascanu et al. allow up
to 5·10⁶ updates per run); each row of the report says so, and a row whose
result does not match its paper is reported as not matching. The store is
exported to a small CSV (``OUT/reproduce.csv``, one line per run:
:func:`_csv_text`) from which :func:`render_page` writes the docs page
``docs/guides/reproductions.md`` (our numbers next to the papers', generated,
never typed by hand)::

    python -m rnntheory.experiments.reproduce export OUT/reproduce.db docs/results/reproduce.csv
    python -m rnntheory.experiments.reproduce page docs/results/reproduce.csv docs/guides/reproductions.md \
        docs/results/reproduce-success.png

``--full`` runs the same subset at the protocols' full budgets: meant for a
Dask cluster (``rnntheory experiment reproduce --full --scheduler tcp://HOST:PORT``).
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_items, check_path, check_real, show_value
from .protocols import get_protocol, median_updates_to_solve, success_rate
from .registry import (
    Experiment,
    ExperimentResult,
    check_run,
    check_sequence,
    check_workers,
    figure_path,
    fmt,
    fmt_updates,
    markdown_table,
    run_specs,
)

__all__ = ["CSV_COLUMNS", "MAX_HOURS", "SUBSET", "Config", "Item", "estimate_seconds", "export_store", "main",
           "read_csv", "render_page", "run", "solve_steps"]

NAME = "reproduce"
#: The time the subset must fit in on a 2-core machine, in hours.
MAX_HOURS = 2.5
#: The columns of the exported CSV, one line per run.
CSV_COLUMNS = ("item", "protocol", "task", "length", "seed", "steps", "lr", "solved", "steps_to_solve",
               "final_error", "final_loss", "wall_s")


@dataclass(frozen=True)
class Item:
    """One row of the reproduction subset: a protocol on one task over some lengths.

    Attributes
    ----------
    key : str
        The row's name in the report and the CSV.
    protocol : str
        A key of :data:`rnntheory.experiments.protocols.PROTOCOLS`.
    task : str
    lengths : tuple of int
    seeds : int
    steps : int
        Updates per run (outer iterations for Hessian-free) in the subset.
    lr : float or None
        The learning rate in the subset (``None``: the protocol's at the default scale).
    claim : str
        The paper's claim this row tests, in words.
    target_rate : float or None
        The paper's success rate at every length, where the paper gives one.
    """

    key: str
    protocol: str
    task: str
    lengths: tuple[int, ...]
    seeds: int
    steps: int
    lr: float | None
    claim: str
    target_rate: float | None

    def __post_init__(self) -> None:
        p = get_protocol(self.protocol)
        if p.route not in ("train", "hessian_free"):
            raise ValueError(f"`protocol` of item {self.key!r} must be trained by `train`, got route {p.route!r}")
        check_int("seeds", self.seeds, minimum=1)
        check_int("steps", self.steps, minimum=1)
        if self.target_rate is not None:
            check_real("target_rate", self.target_rate, low=0.0, high=1.0)
        p.spec(self.task, self.lengths[0], seed=0, steps=self.steps)  # RunSpec checks task, length, cell × remedy

    def spec(self, length: int, seed: int, *, scale: str = "default", **kw: Any) -> Any:
        """The run's :class:`~rnntheory.experiments.RunSpec` (``kw`` overrides, as for
        :meth:`~rnntheory.experiments.protocols.Protocol.spec`)."""
        p = get_protocol(self.protocol)
        kw.setdefault("steps", self.steps if scale == "default" else p.full_budget)
        sp = p.spec(self.task, length, seed=seed, scale=scale, **kw)
        if scale == "default" and self.lr is not None and sp.optimizer != "hf":
            from dataclasses import replace

            sp = replace(sp, lr=self.lr)
        return sp


_LR_NOTE = 0.1
#: The subset, in the order of the report.
SUBSET: tuple[Item, ...] = (
    Item("temporal order, MSGD", "pascanu2013-msgd", "temporal_order", (50, 100, 150, 200), 5, 3000, _LR_NOTE,
         "MSGD's success rate falls with the length (Fig. 7)", None),
    Item("temporal order, MSGD + clipping", "pascanu2013-msgd-clip", "temporal_order", (50, 100, 150, 200), 5,
         3000, _LR_NOTE, "clipping raises the success rate at long lengths (Fig. 7)", None),
    Item("temporal order, MSGD + clipping + Ω", "pascanu2013-msgd-clip-omega", "temporal_order",
         (50, 100, 150, 200), 5, 3000, _LR_NOTE, "clipping + Ω solves every length 50–200 on 5/5 seeds", 1.0),
    Item("adding, LSTM", "gers2000-lstm", "adding", (150,), 5, 3000, None,
         "LSTM solves the adding problem at long lags (Hochreiter & Schmidhuber 1997, Experiment 4)", None),
    Item("adding, GRU", "chung2014-gru", "adding", (150,), 5, 3000, None,
         "the GRU's gates carry the two marked values to the end (no number in the paper)", None),
    Item("adding, IRNN", "le2015-irnn", "adding", (150,), 5, 3000, None,
         "the IRNN brings the adding problem's test MSE close to 0 at length 150", None),
    Item("addition, Hessian-free", "martens-sutskever2011-hf", "addition", (100,), 3, 40, None,
         "HF with structural damping solves the addition problem at length 100", None),
)


@dataclass(frozen=True)
class Config:
    """Configuration of ``reproduce``.

    Attributes
    ----------
    items : tuple of str
        Keys of the :data:`SUBSET` rows to run (all by default; a slice runs a part).
    scale : {"default", "full"}
        ``"default"``: the subset's budgets (≤ 2.5 h on 2 cores); ``"full"``: the
        protocols' full budgets (a Dask cluster).
    seeds : int or None
        Runs per (row, length) (``None``: each row's).
    lengths : tuple of int
        Run only these lengths (``()``: each row's).
    overrides : tuple of (str, int)
        Replace ``"steps"``, ``"n_hidden"``, ``"batch_size"``, ``"eval_size"``
        or ``"eval_every"`` in every run (tiny runs for tests; the report lists them).
    probe : bool
        Measure the per-update times and print the estimate before running.
    workers : int
    scheduler : str
        ``"processes"``, ``"threads"``, ``"sync"`` or a Dask scheduler address.
    """

    items: tuple[str, ...] = tuple(i.key for i in SUBSET)
    scale: str = "default"
    seeds: int | None = None
    lengths: tuple[int, ...] = ()
    overrides: tuple[tuple[str, int], ...] = ()
    probe: bool = True
    workers: int = 2
    scheduler: str = "processes"

    def __post_init__(self) -> None:
        check_sequence("items", self.items)
        if not self.items:
            raise ValueError("`items` must name at least one row of the subset, got ()")
        for k in self.items:
            check_choice("items", k, tuple(i.key for i in SUBSET))
        check_choice("scale", self.scale, ("default", "full"))
        if self.seeds is not None:
            check_int("seeds", self.seeds, minimum=1)
        check_sequence("lengths", self.lengths)
        for n in self.lengths:
            check_int("lengths", n, minimum=2)
        check_sequence("overrides", self.overrides)
        for pair in self.overrides:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"`overrides` must hold (name, value) pairs, got {pair!r}")
            check_choice("overrides", pair[0], ("steps", "n_hidden", "batch_size", "eval_size", "eval_every"))
            check_int(f"overrides[{pair[0]!r}]", pair[1], minimum=1)
        if not isinstance(self.probe, bool):
            raise TypeError(f"`probe` must be True or False, got {self.probe!r}")
        check_workers(self.workers, self.scheduler)

    @classmethod
    def full(cls) -> Config:
        """The same subset at the protocols' full budgets (days of CPU: run it on a cluster)."""
        return cls(scale="full")


def _items(config: Config) -> list[Item]:
    return [i for i in SUBSET if i.key in config.items]


def _plan(config: Config, seed: int) -> list[tuple[Item, int, int, Any]]:
    """Every run of ``config``: ``(item, length, seed, spec)``, in the report's order."""
    ov = dict(config.overrides)
    out = []
    for it in _items(config):
        lengths = [L for L in it.lengths if not config.lengths or L in config.lengths]
        n = it.seeds if config.seeds is None else config.seeds
        for L in lengths:
            for s in range(n):
                out.append((it, L, seed + s, it.spec(L, seed + s, scale=config.scale, **ov)))
    return out


def estimate_seconds(runs: Sequence[tuple[int, float, float]], workers: int) -> float:
    """The wall time of a set of runs on ``workers`` workers.

    Each run is ``(steps, per_update_s, fixed_s)``: it takes
    ``steps · per_update_s + fixed_s`` seconds; the runs are spread evenly over
    the workers (the sum divided by ``workers``, and never less than the longest run).

    Examples
    --------
    >>> estimate_seconds([(1000, 0.01, 2.0), (1000, 0.02, 2.0)], workers=2)
    22.0
    """
    workers = check_int("workers", workers, minimum=1)
    if isinstance(runs, str | bytes) or not isinstance(runs, Sequence):
        raise TypeError(f"`runs` must be a sequence of (steps, per_update_s, fixed_s), got {type(runs).__name__}")
    each = []
    for i, run in enumerate(runs):
        if isinstance(run, str | bytes) or not isinstance(run, Sequence) or len(run) != 3:
            raise TypeError(f"`runs[{i}]` must be a (steps, per_update_s, fixed_s) triple, got {run!r:.80}")
        steps, t, c = run
        check_int("steps", steps, minimum=0)
        check_real("per_update_s", t, low=0.0)
        check_real("fixed_s", c, low=0.0)
        each.append(steps * t + c)
    return max(sum(each) / workers, max(each, default=0.0))


def _probe(specs: Sequence[Any]) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Measured seconds per update of each (label, task, length), and the estimated seconds
    of one evaluation: after a warm-up run of the same size (compilation), the faster of two runs of 10
    updates (2 outer iterations for Hessian-free) on an evaluation batch of 8 sequences,
    on one thread as a sweep worker runs them; an evaluation of ``eval_size`` sequences
    is a forward pass, about a third of an update's work per sequence."""
    from dataclasses import replace

    from threadpoolctl import threadpool_limits

    from .._parallel import thread_limit
    from .runspec import run_one

    out: dict[tuple[str, str, int], tuple[float, float]] = {}
    for sp in specs:
        k = (sp.label(), sp.task, sp.length)
        if k in out:
            continue
        n = 2 if sp.optimizer == "hf" else 10
        hp = (*((name, v) for name, v in sp.hparams if name != "eval_every"), ("eval_every", float(n)))
        times = []
        with threadpool_limits(limits=1), thread_limit(1):
            # compile and warm with the timed configuration itself (its evaluation included):
            # a one-update warm-up left the evaluation's compilation in the timed runs
            run_one(replace(sp, steps=n, eval_size=8, hparams=hp))
            for _ in range(2):
                t0 = time.perf_counter()
                run_one(replace(sp, steps=n, eval_size=8, hparams=hp))
                times.append(time.perf_counter() - t0)
        per = min(times) / n
        out[k] = (per, per * sp.eval_size / sp.batch_size / 3.0)
    return out


def _estimate(specs: Sequence[Any], probes: dict[tuple[str, str, int], tuple[float, float]],
              workers: int) -> tuple[float, dict[str, Any]]:
    runs = []
    per_length: dict[str, Any] = {}
    for sp in specs:
        per, ev = probes[(sp.label(), sp.task, sp.length)]
        n_evals = sp.steps // sp.eval_every + 2  # the evaluations, the final test and the flow metric
        runs.append((sp.steps, per, ev * n_evals))
        per_length[f"{sp.label()} {sp.task} L={sp.length}"] = {"per_update_ms": 1e3 * per, "eval_s": ev}
    return estimate_seconds(runs, workers), per_length


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Run the reproduction subset through the store and compare with the papers.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the store ``reproduce.db``, the CSV ``reproduce.csv`` and the
        figure ``reproduce-success.png``.
    seed : int
        Run seeds ``seed … seed + seeds − 1``.

    Returns
    -------
    ExperimentResult
        ``numbers["estimate_s"]`` (the printed estimate, ``None`` without a
        probe), ``numbers["per_update"]`` (the measured times), and
        ``numbers["rows"]``: per (row, length) the runs, successes, success
        rate, median updates to solve, median final error, the paper's target
        rate and ``verdict``.
    """
    seed = check_run(config, Config, out, seed)
    runs = _plan(config, seed)
    specs = [sp for *_, sp in runs]
    estimate = None
    per_update: dict[str, Any] = {}
    if config.probe:
        probes = _probe(specs)
        estimate, per_update = _estimate(specs, probes, config.workers)
        budget = "within" if estimate <= MAX_HOURS * 3600 else "OVER"
        print(f"reproduce: {len(specs)} runs, estimated {estimate / 3600:.2f} h on {config.workers} worker(s) "
              f"({budget} the {MAX_HOURS:g} h budget; from the per-update times just measured)",
              file=sys.stderr, flush=True)
    done = run_specs(specs, out, NAME, workers=config.workers, scheduler=config.scheduler)
    lines = _collect(runs, done)
    rows = _summarise(lines)
    numbers = {"scale": config.scale, "estimate_s": estimate, "per_update": per_update, "runs": len(lines),
               "planned": len(specs), "rows": rows, "overrides": [list(p) for p in config.overrides]}
    figs: list[str] = []
    if out is not None:
        (out / f"{NAME}.csv").write_text(_csv_text(lines), encoding="utf-8")
        fp = figure_path(out, NAME, "success")
        if fp is not None and _figure(fp, rows):
            figs.append(str(fp))
    notes = [f"{len(specs) - len(lines)} of {len(specs)} runs failed"] if len(lines) < len(specs) else []
    md = render_page(lines, title=f"# reproduce: the papers' headline claims ({config.scale} scale)",
                     figure=Path(figs[0]).name if figs else None)
    return ExperimentResult(NAME, {}, numbers, md, tuple(figs), notes=tuple(notes))


def solve_steps(metrics: dict[str, Any]) -> int | None:
    """Updates to solve of one run's metrics: ``None`` when unsolved; the first evaluation
    below 1 % when there is one; else (a run solved on its final test whose evaluations
    never fell below 1 %) the updates it took, an upper bound.

    Raises
    ------
    TypeError, ValueError
        When ``metrics`` is not a mapping with ``solved`` (and, for a solved run,
        ``steps_to_solve`` or ``steps_done``).
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"`metrics` must be a mapping of a run's metrics, got {show_value(metrics)}")
    if "solved" not in metrics:
        raise ValueError(f"`metrics` must have 'solved', got keys {sorted(map(str, metrics))}")
    if not metrics["solved"]:
        return None
    s = metrics.get("steps_to_solve")
    if s is None:
        if "steps_done" not in metrics:
            raise ValueError("`metrics` of a solved run must have 'steps_to_solve' or 'steps_done', "
                             f"got keys {sorted(map(str, metrics))}")
        s = metrics["steps_done"]
    if isinstance(s, float) and s.is_integer():  # a whole number that went through JSON as a float
        s = int(s)
    return check_int("metrics['steps_to_solve']", s, minimum=0)


def _collect(runs: Sequence[tuple[Item, int, int, Any]], done: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV lines of the runs of ``runs`` (as :func:`_plan` returns them) that are done in
    ``done`` (``{key: Row}``, as a store's rows); runs not done (yet) are left out, so a
    store whose sweep was interrupted exports what it holds."""
    lines: list[dict[str, Any]] = []
    for it, L, s, sp in runs:
        r = done.get(sp.key())
        if r is None or r.status != "done":
            continue
        m = r.metrics
        lines.append({"item": it.key, "protocol": it.protocol, "task": sp.task, "length": L, "seed": s,
                      "steps": sp.steps, "lr": None if sp.optimizer == "hf" else sp.lr, "solved": bool(m["solved"]),
                      "steps_to_solve": solve_steps(m),
                      "final_error": m["final_error"], "final_loss": m["final_loss"], "wall_s": r.wall_s})
    return lines


def _summarise(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (row, length) of the subset: runs, successes, success rate, median updates to solve,
    median final error, the paper's target rate, the difference and the verdict.

    Rows of :data:`SUBSET` with no run in ``lines`` appear with ``runs = 0`` (not run yet).
    """
    out = []
    for it in SUBSET:
        for L in it.lengths:
            mine = [ln for ln in lines if ln["item"] == it.key and int(ln["length"]) == L]
            solved = [bool(ln["solved"]) for ln in mine]
            rate = success_rate(solved)
            errs = [float(ln["final_error"]) for ln in mine if ln["final_error"] is not None]
            steps = sorted({int(ln["steps"]) for ln in mine})
            diff = None if rate is None or it.target_rate is None else rate - it.target_rate
            if not mine:
                verdict = "not run yet"
            elif it.target_rate is None:
                verdict = "no number in the paper to compare"
            elif diff is not None and abs(diff) < 1e-12:
                verdict = "matches the paper's rate"
            else:
                verdict = "does not match the paper"
            out.append({"item": it.key, "protocol": it.protocol, "length": L, "runs": len(mine),
                        "solved": int(sum(solved)), "success_rate": rate,
                        "median_updates_to_solve": median_updates_to_solve(
                            [None if ln["steps_to_solve"] in (None, "") else int(ln["steps_to_solve"]) for ln in mine]),
                        "median_final_error": float(np.median(errs)) if errs else None,
                        "steps": steps, "target_rate": it.target_rate, "difference": diff, "verdict": verdict})
    return out


def _csv_text(lines: Sequence[dict[str, Any]]) -> str:
    """The runs as CSV text (:data:`CSV_COLUMNS`; empty cells for ``None``), sorted by row, length, seed."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    order = {it.key: k for k, it in enumerate(SUBSET)}
    for ln in sorted(lines, key=lambda d: (order.get(d["item"], 99), int(d["length"]), int(d["seed"]))):
        row = []
        for c in CSV_COLUMNS:
            v = ln[c]
            if v is None:
                row.append("")
            elif isinstance(v, bool):
                row.append("1" if v else "0")
            elif isinstance(v, float):
                row.append(repr(round(v, 6)) if c == "wall_s" else repr(v))
            else:
                row.append(str(v))
        w.writerow(row)
    return buf.getvalue()


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """The runs of an exported CSV, typed back (``None`` for empty cells).

    Raises
    ------
    TypeError
        When ``path`` is not a path.
    OSError
        When the file cannot be read (the message names ``path``).
    ValueError
        When the header is not :data:`CSV_COLUMNS`, or a line has the wrong
        number of cells or a cell that is not of its column's type (the
        message gives the line number).
    """
    p = check_path("path", path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"`path` {str(p)!r} must be a UTF-8 CSV file: {exc}") from None
    except OSError as exc:
        raise type(exc)(f"`path` {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    rd = csv.reader(io.StringIO(text))
    head = tuple(next(rd, ()))
    if head != CSV_COLUMNS:
        raise ValueError(f"`path` {str(p)!r} must be a reproduce CSV with columns {list(CSV_COLUMNS)}, "
                         f"got {show_value(list(head))}")
    out = []
    ints = ("length", "seed", "steps", "steps_to_solve")
    floats = ("lr", "final_error", "final_loss", "wall_s")
    for row in rd:
        where = f"`path` {str(p)!r}, line {rd.line_num}"
        if len(row) != len(CSV_COLUMNS):
            raise ValueError(f"{where}: expected {len(CSV_COLUMNS)} cells, got {len(row)}")
        d: dict[str, Any] = dict(zip(CSV_COLUMNS, row, strict=True))
        try:
            for c in ints:
                d[c] = None if d[c] == "" else int(d[c])
            for c in floats:
                d[c] = None if d[c] == "" else float(d[c])
        except ValueError:
            raise ValueError(f"{where}: column {c!r} must be a number or empty, got {d[c]!r}") from None
        if d["solved"] not in ("0", "1"):
            raise ValueError(f"{where}: column 'solved' must be 0 or 1, got {d['solved']!r}")
        d["solved"] = d["solved"] == "1"
        out.append(d)
    return out


def _check_lines(lines: Any) -> list[dict[str, Any]]:
    """``lines`` as a list of run mappings with every CSV column, or a ``TypeError``/``ValueError``
    naming ``lines``."""
    out = check_items("lines", lines, Mapping, expected="a sequence of runs (as read_csv returns them)",
                      item="a mapping of the CSV columns")
    for i, ln in enumerate(out):
        missing = [c for c in CSV_COLUMNS if c not in ln]
        if missing:
            raise ValueError(f"`lines[{i}]` must have every CSV column {list(CSV_COLUMNS)}; missing {missing}")
        for c in ("length", "seed", "steps"):
            check_int(f"lines[{i}][{c!r}]", ln[c], minimum=0)
    return out


def _figure(path: Path, rows: Sequence[dict[str, Any]]) -> bool:
    from ..plotting import success_vs_length

    rates: dict[str, tuple[list[int], list[float]]] = {}
    for r in rows:
        if r["runs"] and r["item"].startswith("temporal order"):
            xs, ys = rates.setdefault(r["item"].removeprefix("temporal order, "), ([], []))
            xs.append(r["length"])
            ys.append(float(r["success_rate"]))
    if not rates:
        return False
    steps = sorted({s for r in rows if r["item"].startswith("temporal order") for s in r["steps"]})
    fig = success_vs_length(rates, path, title="Temporal order: success rate against length", context=(
        "tanh RNN, 50 units, smart tanh init, SGD, batch 20, "
        f"{'/'.join(map(str, steps))} updates, 5 seeds per length; Pascanu et al. 2013's methods"))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return True


def _departures(it: Item, steps: Sequence[int]) -> str:
    p = get_protocol(it.protocol)
    parts = []
    if steps:
        paper = "none stated for this task" if p.budget is None else f"up to {p.budget:,}"
        parts.append(f"{'/'.join(f'{s:,}' for s in steps)} updates per run (paper: {paper})")
    if it.lr is not None and p.lr is not None and it.lr != p.lr:
        parts.append(f"lr {it.lr:g} (paper: {p.lr:g}), so that a run can solve within this budget")
    if it.task not in p.tasks:
        parts.append(f"task {it.task} (paper: {', '.join(p.tasks)})")
    parts += list(p.departures)
    return "; ".join(parts)


def render_page(lines: Sequence[dict[str, Any]], *, title: str = "# Reproductions",
                figure: str | None = None) -> str:
    """The reproductions page: each row of the subset with the paper's target (and its
    citation), our number, the difference, and where our protocol differs.

    Generated from the runs (as :func:`read_csv` returns them); rows with no run say
    "not run yet". Never hand-edited: ``python -m rnntheory.experiments.reproduce page CSV PAGE``.

    Raises
    ------
    TypeError, ValueError
        When ``lines`` is not a sequence of runs with every column of :data:`CSV_COLUMNS`.
    """
    rows = _summarise(_check_lines(lines))
    if not isinstance(title, str):
        raise TypeError(f"`title` must be a str, got {show_value(title)}")
    if figure is not None and not isinstance(figure, str):
        raise TypeError(f"`figure` must be a str (the figure's file name) or None, got {show_value(figure)}")
    n_run = sum(1 for r in rows if r["runs"])
    out = [
        title,
        "",
        "<!-- Generated by `python -m rnntheory.experiments.reproduce page` from the exported runs: do not edit. -->",
        "",
        "Each row is one of the papers' headline claims, tested under that paper's protocol "
        "(the protocol registry, `rnntheory.experiments.protocols`) at the reproduction subset's budget, "
        "which is far below the papers'. A run *succeeds* when it makes fewer than 1 % errors on fresh test "
        "sequences. *Difference* is our success rate minus the paper's, where the paper gives a rate.",
        "",
        f"**{n_run} of {len(rows)} rows have been run** "
        f"({sum(r['runs'] for r in rows)} runs in all); the others say *not run yet*.",
        "",
    ]
    tab = []
    for r in rows:
        it = next(i for i in SUBSET if i.key == r["item"])
        p = get_protocol(it.protocol)
        ours = ("not run yet" if not r["runs"] else
                f"{r['solved']}/{r['runs']} solved; median updates to solve {fmt_updates(r['median_updates_to_solve'])}; "
                f"median final error {fmt(r['median_final_error'])}")
        target = it.claim + ("" if it.target_rate is None else f" (rate {fmt(it.target_rate)})")
        tab.append([it.key, str(r["length"]), f"{target} — {p.source.short()}, {p.source.where}", ours,
                    "—" if r["difference"] is None else f"{r['difference']:+.2f}", r["verdict"],
                    _departures(it, r["steps"] or [it.steps])])
    out += [markdown_table(["row", "length", "paper's claim (source)", "ours", "difference", "verdict",
                            "where our protocol differs"], tab), ""]
    if figure is not None:
        out += [f"![success rate against length]({figure})", ""]
    out += ["## Sources", ""]
    seen = []
    for it in SUBSET:
        for s in get_protocol(it.protocol).sources:
            if s not in seen:
                seen.append(s)
    out += [f"- {s.cite()}" for s in seen]
    return "\n".join(out).rstrip("\n") + "\n"


def export_store(db: str | Path, *, seed: int = 0, scale: str = "default",
                 overrides: tuple[tuple[str, int], ...] = ()) -> list[dict[str, Any]]:
    """The CSV lines of every run of the whole subset (seeds from ``seed``, at ``scale``,
    with ``overrides`` as in :class:`Config`) that the store ``db`` holds as done —
    whichever invocations put them there.

    Raises
    ------
    ValueError
        When ``db`` is not a results store.
    """
    from .store import Store

    runs = _plan(Config(scale=scale, overrides=overrides), check_int("seed", seed, minimum=0))
    db = check_path("db", db)
    if not db.is_file():
        raise FileNotFoundError(f"`db`: results store not found: {str(db)!r}")
    with Store(db, readonly=True) as store:
        done = {r.key: r for r in store.rows()}
    return _collect(runs, done)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the exported CSV or the docs page::

        python -m rnntheory.experiments.reproduce export DB CSV
        python -m rnntheory.experiments.reproduce page CSV PAGE [FIGURE]

    ``export`` writes the runs of the subset the store holds (:func:`export_store`);
    ``page`` writes :func:`render_page` of a CSV, and the success-against-length
    figure of its temporal-order rows to ``FIGURE`` (linked from the page) when given
    and some of those rows have been run.

    Returns
    -------
    int
        0, or 2 on bad arguments.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "export":
        lines = export_store(args[1])
        Path(args[2]).write_text(_csv_text(lines), encoding="utf-8")
        print(f"wrote {args[2]}: {len(lines)} runs")
        return 0
    if len(args) in (3, 4) and args[0] == "page":
        import os

        lines = read_csv(args[1])
        page = Path(args[2])
        link = None
        if len(args) == 4 and _figure(Path(args[3]), _summarise(lines)):
            link = Path(os.path.relpath(Path(args[3]).resolve(), page.resolve().parent)).as_posix()
        page.write_text(render_page(lines, figure=link), encoding="utf-8")
        print(f"wrote {page} from {len(lines)} runs" + (f" and {args[3]}" if link else ""))
        return 0
    print("usage: python -m rnntheory.experiments.reproduce export DB CSV\n"
          "       python -m rnntheory.experiments.reproduce page CSV PAGE [FIGURE]", file=sys.stderr)
    return 2


EXPERIMENT = Experiment(NAME, "the papers' headline claims under their protocols, through the resumable store",
                        Config, run)

if __name__ == "__main__":
    raise SystemExit(main())
