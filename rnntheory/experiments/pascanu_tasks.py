"""``pascanu-tasks``: MSGD, MSGD + clipping, MSGD + clipping + Ω on the pathological tasks.

Pascanu, Mikolov & Bengio (2013, §4 and Fig. 7) train a 50-unit tanh RNN
(smart tanh initialisation) with mini-batch SGD (lr 0.01, batch 20, no
momentum), with gradient clipping (threshold 1) and with clipping plus their
regulariser Ω, on the pathological tasks of Hochreiter & Schmidhuber, over
sequence lengths 50–200 and 5 seeds. A run *solves* its task when it makes
fewer than 1 % errors on 10 000 fresh sequences (their §4).

The three methods are the protocol registry's ``pascanu2013-msgd``,
``pascanu2013-msgd-clip`` and ``pascanu2013-msgd-clip-omega``
(:mod:`rnntheory.experiments.protocols`): every run is the protocol's
:class:`~rnntheory.experiments.RunSpec` (:meth:`~rnntheory.experiments.protocols.Protocol.spec`)
with this experiment's configuration applied on top, the report lists the
protocol's source and departures, and :meth:`Config.full` is the protocol's
full scale.

Each run is a :class:`~rnntheory.experiments.RunSpec` executed by
:func:`~rnntheory.experiments.run_one` through the sweep machinery (results
in the SQLite store ``OUT/pascanu-tasks.db``, so an interrupted experiment
resumes). Differences from the paper, all visible in the configuration: the
small default uses learning rate 0.1 (the paper: 0.01) with a budget of 4 000
updates (the paper allows up to 5·10⁶), tests on ``eval_size`` = 1 000 fresh
sequences (not 10 000), and uses a fixed length per run (the paper samples
lengths 50–200 per batch). With these settings clipping + Ω solved temporal
order at length 50 on 5/5 seeds (solved after 1 500–3 250 updates).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_real
from ..remedies.stages import PASCANU_2013_OMEGA_WEIGHT
from .protocols import get_protocol
from .registry import (
    Experiment,
    ExperimentResult,
    check_budget,
    check_run,
    check_sequence,
    check_workers,
    done_runs,
    figure_path,
    markdown_table,
    run_specs,
)
from .runspec import PASCANU_2013_BATCH_SIZE, PASCANU_2013_N_HIDDEN

__all__ = ["METHODS", "PROTOCOLS", "Config", "run"]

NAME = "pascanu-tasks"

#: method -> its protocol (a key of :data:`rnntheory.experiments.protocols.PROTOCOLS`)
PROTOCOLS: dict[str, str] = {
    "MSGD": "pascanu2013-msgd",
    "MSGD+clip": "pascanu2013-msgd-clip",
    "MSGD+clip+Ω": "pascanu2013-msgd-clip-omega",
}
#: method -> remedies of its RunSpec (the protocol's)
METHODS: dict[str, tuple[str, ...]] = {m: get_protocol(k).remedies for m, k in PROTOCOLS.items()}
_PAPER = get_protocol(PROTOCOLS["MSGD"])
_PATHOLOGICAL = _PAPER.tasks


@dataclass(frozen=True)
class Config:
    """Configuration of ``pascanu-tasks``.

    Attributes
    ----------
    tasks : tuple of str
        Pathological tasks (keys of :data:`rnntheory.tasks.TASKS`).
    lengths : tuple of int
    methods : tuple of str
        Keys of :data:`METHODS`.
    seeds : int
    n_hidden : int
    init : str
        Elman initialisation scheme.
    optimizer : str
        ``"sgd"`` is Pascanu's MSGD; ``"momentum"``/``"nesterov"`` add momentum 0.9.
    lr : float
    steps : int
        Updates per run.
    batch_size : int
    clip : float
        Clipping threshold.
    omega : float
        Ω weight.
    eval_size : int
        Fresh test sequences (10 000 in the paper).
    eval_every : int
        Steps between evaluations (updates-to-solve are resolved to this).
    workers : int
    scheduler : str
    """

    tasks: tuple[str, ...] = ("temporal_order",)
    lengths: tuple[int, ...] = (50,)
    methods: tuple[str, ...] = tuple(METHODS)
    seeds: int = 5
    n_hidden: int = PASCANU_2013_N_HIDDEN
    init: str = "smart_tanh"
    optimizer: str = "sgd"
    lr: float = 0.1
    steps: int = 4000
    batch_size: int = PASCANU_2013_BATCH_SIZE
    clip: float = 1.0
    omega: float = PASCANU_2013_OMEGA_WEIGHT
    eval_size: int = 1000
    eval_every: int = 250
    workers: int = 2
    scheduler: str = "processes"

    def __post_init__(self) -> None:
        for name in ("tasks", "lengths", "methods"):
            check_sequence(name, getattr(self, name))
        if not self.tasks or not self.lengths or not self.methods:
            raise ValueError("`tasks`, `lengths` and `methods` must each be non-empty")
        for t in self.tasks:
            check_choice("tasks", t, _PATHOLOGICAL)
        for n in self.lengths:
            check_int("lengths", n, minimum=10)
        for m in self.methods:
            check_choice("methods", m, tuple(METHODS))
        check_int("seeds", self.seeds, minimum=1)
        check_choice("optimizer", self.optimizer, ("sgd", "momentum", "nesterov"))
        check_budget(self)
        check_real("clip", self.clip, low=0.0, low_open=True)
        check_real("omega", self.omega, low=0.0)
        check_int("eval_size", self.eval_size, minimum=1)
        check_int("eval_every", self.eval_every, minimum=1)
        check_workers(self.workers, self.scheduler)

    @classmethod
    def full(cls) -> Config:
        """The protocols' full scale: six tasks, lengths 50–200, 5 seeds, 10 000 test sequences.

        The update budget is 10⁶ per run (the paper's cap is 5·10⁶): days of CPU.
        """
        v = _PAPER.scale_values("full")
        return cls(tasks=_PAPER.tasks, lengths=_PAPER.lengths, seeds=_PAPER.seeds, lr=v["lr"],
                   steps=v["steps"], eval_size=v["eval_size"], eval_every=5000)


def _spec(config: Config, task: str, L: int, method: str, seed: int) -> Any:
    """The run: the method's protocol spec, with this configuration applied on top."""
    sp = get_protocol(PROTOCOLS[method]).spec(
        task, L, seed=seed, steps=config.steps, eval_size=config.eval_size, eval_every=config.eval_every,
        n_hidden=config.n_hidden, batch_size=config.batch_size)
    hp = dict(sp.hparams)
    for name in ("clip", "omega"):
        if name in hp:
            hp[name] = getattr(config, name)
    return replace(sp, init=config.init, optimizer=config.optimizer, lr=config.lr, hparams=tuple(hp.items()))


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Train every (task, length, method, seed); count the solved runs.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the store ``pascanu-tasks.db`` and the figures
        ``pascanu-tasks-success.png`` and ``pascanu-tasks-curves.png``.
    seed : int
        Run seeds ``seed … seed + seeds − 1``.

    Returns
    -------
    ExperimentResult
        ``numbers["cells"]``: one entry per (task, length, method) with
        ``solved`` (count), ``runs``, ``success_rate``, ``steps_to_solve``
        (list, ``None`` for unsolved runs), ``final_errors``; and
        ``numbers["target"]``: the clipping + Ω successes on temporal order at
        length 50 when that cell was run.
    """
    seed = check_run(config, Config, out, seed)
    index = []
    for task in config.tasks:
        for L in config.lengths:
            for method in config.methods:
                for s in range(config.seeds):
                    index.append((task, L, method, _spec(config, task, L, method, seed + s)))
    rows = run_specs([sp for *_, sp in index], out, NAME, workers=config.workers,
                     scheduler=config.scheduler)
    cells: list[dict[str, Any]] = []
    curves: dict[str, list[Any]] = {}
    notes: list[str] = []
    for task in config.tasks:
        for L in config.lengths:
            for method in config.methods:
                sps = [sp for (t, n, m, sp) in index if (t, n, m) == (task, L, method)]
                done = done_runs(rows, sps)
                if len(done) < len(sps):
                    notes.append(f"{task} L={L} {method}: {len(sps) - len(done)} run(s) failed")
                solved = [bool(r.metrics["solved"]) for r in done]
                sts = [r.metrics["steps_to_solve"] if r.metrics["solved"] else None for r in done]
                cells.append({
                    "task": task, "length": L, "method": method, "runs": len(done),
                    "solved": int(sum(solved)),
                    "success_rate": float(np.mean(solved)) if done else None,
                    "steps_to_solve": sts,
                    "median_steps_to_solve": (float(np.median([v for v in sts if v is not None]))
                                              if any(v is not None for v in sts) else None),
                    "final_errors": [r.metrics["final_error"] for r in done],
                    "n_clips": int(sum(r.metrics.get("n_clips", 0) for r in done)),
                    "n_fallbacks": int(sum(r.metrics.get("n_fallbacks", 0) for r in done)),
                    "wall_s": float(sum(r.wall_s or 0.0 for r in done)),
                })
                if task == config.tasks[0] and L == config.lengths[0]:
                    curves[method] = [r.metrics["curve"] for r in done]
    numbers: dict[str, Any] = {"cells": cells, "target": None}
    tgt = [c for c in cells if c["task"] == "temporal_order" and c["length"] == 50
           and c["method"] == "MSGD+clip+Ω"]
    if tgt:
        numbers["target"] = {"solved": tgt[0]["solved"], "runs": tgt[0]["runs"],
                             "met": tgt[0]["solved"] >= 4 and tgt[0]["runs"] == 5}
    figs: list[str] = []
    if out is not None:
        figs += _figures(out, cells, curves, config)
    md = _markdown(numbers, config, figs, notes)
    return ExperimentResult(NAME, {}, numbers, md, tuple(figs), notes=tuple(notes))


def _figures(out: Path, cells: list[dict[str, Any]], curves: dict[str, list[Any]],
             config: Config) -> list[str]:
    from .._figures import (
        DPI,
        draw_success,
        figure_style,
        legend_outside,
        new_figure,
        save_figure,
        with_context,
    )

    context = (f"Elman ({config.init} init), n_hidden = {config.n_hidden}, {config.optimizer} "
               f"lr {config.lr:g}, batch {config.batch_size}, {config.steps} updates, "
               f"{config.seeds} seeds; solved: error < 1 % on {config.eval_size} fresh sequences")
    paths = []
    p = figure_path(out, NAME, "success")
    assert p is not None
    fig = new_figure((3.6 * len(config.tasks) + 1.6, 4.0))
    with figure_style():
        bars = False
        for i, task in enumerate(config.tasks):
            ax = fig.add_subplot(1, len(config.tasks), i + 1)
            rates = {}
            for method in config.methods:
                cs = [c for c in cells if c["task"] == task and c["method"] == method]
                rates[method] = ([c["length"] for c in cs],
                                 [c["success_rate"] or 0.0 for c in cs])
            bars = draw_success(ax, rates, percent=True)
            ax.set_ylabel("success rate (%)" if i == 0 else "")
            ax.set_title(task, fontsize=10)
            ax.grid(alpha=0.3, axis="y" if bars else "both")
        if not bars:
            legend_outside(fig.axes[-1], fontsize=7)
        fig.suptitle(with_context("pascanu-tasks: success rate", context,
                                  width=int(10 * (3.6 * len(config.tasks) + 1.6))),
                     fontsize=10)
    save_figure(fig, p, DPI)
    paths.append(str(p))
    p2 = figure_path(out, NAME, "curves")
    assert p2 is not None
    fig = new_figure((7.6, 4.0))
    with figure_style():
        ax = fig.add_subplot()
        for j, (method, cs) in enumerate(curves.items()):
            for k, c in enumerate(cs):
                e = np.array([np.nan if v is None else v for v in c["eval_error"]], dtype=float)
                ax.plot(c["eval_steps"], 100.0 * e, color=f"C{j}", lw=1.0, alpha=0.7,
                        label=method if k == 0 else None, gid=f"curve-{method}-{k}")
        ax.axhline(1.0, color="k", ls=":", lw=1.0, label="1 % (solved)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0.0, 100.0)
        ax.set_xlabel("update")
        ax.set_ylabel("evaluation error (%)")
        ax.set_title(with_context(f"{config.tasks[0]}, length {config.lengths[0]}: one line per seed",
                                  context, width=70), fontsize=10)
        legend_outside(ax, fontsize=7)
        ax.grid(alpha=0.3)
    save_figure(fig, p2, DPI)
    paths.append(str(p2))
    return paths


def _markdown(numbers: dict[str, Any], config: Config, figs: list[str], notes: list[str]) -> str:
    rows = []
    for c in numbers["cells"]:
        errs = [e for e in c["final_errors"] if e is not None]
        med = c["median_steps_to_solve"]
        rows.append([c["task"], c["length"], c["method"], f"{c['solved']}/{c['runs']}",
                     None if med is None else round(med), float(np.median(errs)) if errs else None,
                     c["n_clips"], c["n_fallbacks"]])
    lines = [
        f"# pascanu-tasks: success rates ({config.n_hidden} units, {config.init}, "
        f"{config.optimizer} lr {config.lr:g}, batch {config.batch_size}, {config.steps} updates, "
        f"clip {config.clip:g}, Ω weight {config.omega:g}, {config.seeds} seeds)",
        "",
        f"Solved = error < 1 % on {config.eval_size} fresh sequences "
        f"({'as in the paper' if config.eval_size >= 10_000 else 'the paper uses 10 000'}); "
        f"updates-to-solve are resolved to the evaluation interval ({config.eval_every}).",
        "",
        markdown_table(["task", "length", "method", "solved", "median updates to solve",
                        "median final error", "clips", "fallbacks"], rows),
        "",
        "## Protocol",
        "",
        f"Each method is its entry in the protocol registry ({', '.join(f'`{k}`' for k in PROTOCOLS.values())}), "
        f"after {_PAPER.source.cite()}. Where this run departs from it:",
        "",
        *[f"- {d}" for d in _departures(config)],
        "",
        "## Interpretation",
        "",
    ]
    for task in config.tasks:
        for L in config.lengths:
            cs = {c["method"]: c for c in numbers["cells"] if c["task"] == task and c["length"] == L}
            best = max(cs.values(), key=lambda c: (c["solved"], -(c["median_steps_to_solve"] or np.inf)))
            parts = [f"{m}: {c['solved']}/{c['runs']}" for m, c in cs.items()]
            lead = (f"{best['method']} solves the most runs" if best["solved"] > 0
                    else "no method solves any run within this budget")
            lines.append(f"- {task}, length {L}: {', '.join(parts)}; {lead}.")
    t = numbers["target"]
    if t is not None:
        lines.append(f"- Target (clipping + Ω solves temporal order at length 50 on ≥ 4/5 seeds): "
                     f"{t['solved']}/{t['runs']} — {'met' if t['met'] else 'not met'}.")
    for n in notes:
        lines.append(f"- Note: {n}.")
    for f in figs:
        lines += ["", f"![{Path(f).stem}]({Path(f).name})"]
    return "\n".join(lines)


def _departures(config: Config) -> list[str]:
    """The paper's protocol as the registry states it, against this configuration."""
    out = list(_PAPER.departures)
    paper = {"lr": _PAPER.lr, "n_hidden": _PAPER.n_hidden, "batch_size": _PAPER.batch_size,
             "init": _PAPER.init, "optimizer": _PAPER.optimizer, "eval_size": _PAPER.test_size}
    for name, want in paper.items():
        got = getattr(config, name)
        if got != want:
            out.append(f"{name} {got} (the paper: {want})")
    out.append(f"{config.steps:,} updates per run (the paper allows up to {_PAPER.budget:,})")
    for name in ("clip", "omega"):
        want = dict(get_protocol(PROTOCOLS["MSGD+clip+Ω"]).hparams)[name]
        if getattr(config, name) != want:
            out.append(f"{name} {getattr(config, name):g} (the protocol: {want:g})")
    return out


EXPERIMENT = Experiment(NAME, "MSGD / clipping / clipping + Ω on the pathological tasks", Config, run)
