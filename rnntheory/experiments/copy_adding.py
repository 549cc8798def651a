"""``copy-adding``: recurrent cells on the copy and adding tasks against their memoryless baselines.

Arjovsky, Shah & Bengio (2016) measure long-memory models on two tasks whose
*memoryless* solutions are known in closed form (Arjovsky, Shah & Bengio 2016,
*Unitary evolution recurrent neural networks*, ICML):

* copy (delay ``T``, sequences of ``T + 20`` steps): a model that remembers
  nothing predicts blanks until the output phase and then a uniform guess over
  the 8 symbols; its cross-entropy per step is ``10 ln 8 / (T + 20)``;
* adding (length ``T``): the best constant predictor outputs the mean of the
  target, 1; its mean squared error is the variance of the sum of two
  ``U[0, 1]`` values, ``1/6``.

Each model (tanh RNN with orthogonal ``W_hh``; the IRNN, ReLU with
``W_hh = I``; LSTM; GRU) is trained by :func:`rnntheory.experiments.run_one`
(specs executed through the sweep machinery, so the experiment resumes after
an interruption) and its loss on fresh sequences is compared with the baseline.
The baselines are also measured on fresh sequences, as a check of the analytic
constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_real
from .registry import (
    Experiment,
    ExperimentResult,
    budget_spec,
    check_budget,
    check_run,
    check_sequence,
    check_workers,
    done_runs,
    figure_path,
    fmt,
    markdown_table,
    run_specs,
)

__all__ = ["MODELS", "Config", "adding_baseline", "copy_baseline", "run"]

NAME = "copy-adding"

#: label -> (cell, init, activation)
MODELS: dict[str, tuple[str, str, str]] = {
    "rnn-orthogonal": ("rnn", "orthogonal", "tanh"),
    "irnn": ("rnn", "identity", "relu"),
    "lstm": ("lstm", "pytorch", "tanh"),
    "gru": ("gru", "pytorch", "tanh"),
}
# Verdict thresholds on loss / baseline.
AT_BASELINE = (0.9, 1.1)
BEATS = 0.8


def copy_baseline(T: int) -> float:
    """The memoryless cross-entropy per step of the copy task, ``10 ln 8 / (T + 20)``.

    Examples
    --------
    >>> from rnntheory.experiments.copy_adding import copy_baseline
    >>> round(copy_baseline(100), 6)
    0.173287
    """
    T = check_int("T", T, minimum=1)
    return float(10.0 * np.log(8.0) / (T + 20))


def adding_baseline() -> float:
    """The best constant predictor's MSE on the adding task, ``Var(U₁ + U₂) = 1/6``."""
    return 1.0 / 6.0


def measured_baseline(task_name: str, T: int, n: int, seed: int) -> float:
    """The memoryless predictor's mean loss on ``n`` fresh sequences."""
    from ..tasks import make_task

    task = make_task(task_name, T)
    batch = task.sample(n, seed)
    if task_name == "copy":
        # certain blank before the output phase, uniform over the 8 symbols in it
        logits = np.zeros((batch.T, n, task.n_out))
        logits[: batch.T - 10, :, 0] = 60.0
        logits[batch.T - 10 :, :, 0] = -60.0
        return task.loss_value(logits, batch)
    out = np.ones((batch.T, n, 1))
    return task.loss_value(out, batch)


@dataclass(frozen=True)
class Config:
    """Configuration of ``copy-adding``.

    Attributes
    ----------
    copy_lengths, adding_lengths : tuple of int
        Delays ``T`` of the copy task and lengths of the adding task.
    models : tuple of str
        Keys of :data:`MODELS`.
    n_hidden, steps, batch_size : int
    optimizer : str
        A :class:`~rnntheory.experiments.RunSpec` optimizer.
    lr : float
    clip : float
        Gradient clipping threshold (global norm) for every model; 0 for none.
    seeds : int
    eval_size : int
        Fresh sequences for the final loss and for the measured baselines.
    workers : int
        Parallel runs (local Dask workers; 1 runs in-process).
    scheduler : str
        ``"processes"``, ``"threads"``, ``"sync"`` or a Dask address.
    """

    copy_lengths: tuple[int, ...] = (20,)
    adding_lengths: tuple[int, ...] = (100,)
    models: tuple[str, ...] = tuple(MODELS)
    n_hidden: int = 16
    steps: int = 3000
    batch_size: int = 20
    optimizer: str = "adam"
    lr: float = 0.003
    clip: float = 1.0
    seeds: int = 1
    eval_size: int = 1000
    workers: int = 2
    scheduler: str = "processes"

    def __post_init__(self) -> None:
        check_sequence("copy_lengths", self.copy_lengths)
        check_sequence("adding_lengths", self.adding_lengths)
        check_sequence("models", self.models)
        for t in self.copy_lengths:
            check_int("copy_lengths", t, minimum=1)
        for t in self.adding_lengths:
            check_int("adding_lengths", t, minimum=2)
        if not self.models:
            raise ValueError("`models` must name at least one model, got ()")
        for m in self.models:
            check_choice("models", m, tuple(MODELS))
        check_budget(self)
        check_real("clip", self.clip, low=0.0)
        check_int("seeds", self.seeds, minimum=1)
        check_int("eval_size", self.eval_size, minimum=2)
        check_workers(self.workers, self.scheduler)

    @classmethod
    def full(cls) -> Config:
        """Arjovsky et al.'s lengths (copy 100–500, adding 100–750), 128 units, 3 seeds."""
        return cls(copy_lengths=(100, 200, 500), adding_lengths=(100, 200, 400, 750),
                   n_hidden=128, steps=20000, seeds=3, lr=0.001)


def _available(label: str) -> bool:
    from ..cells import elman

    cell, init, _ = MODELS[label]
    return cell != "rnn" or init in elman.SCHEMES


def _spec(config: Config, label: str, task: str, T: int, seed: int) -> Any:
    cell, init, act = MODELS[label]
    hp: dict[str, float] = {}
    rem: tuple[str, ...] = ()
    if config.clip > 0:
        rem, hp["clip"] = ("clip",), config.clip
    if cell == "lstm":
        hp["forget_bias"] = 1.0
    return budget_spec(config, task, T, seed, cell=cell, init=init, activation=act, remedies=rem,
                       hparams=tuple(hp.items()))


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Train every (task, length, model, seed) and compare the losses with the baselines.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the results store ``copy-adding.db`` and the figure
        ``copy-adding-losses.png``.
    seed : int
        Run seeds are ``seed … seed + seeds − 1``.

    Returns
    -------
    ExperimentResult
        ``numbers["baselines"]``: per (task, T) the analytic and the measured
        baseline; ``numbers["runs"]``: one entry per (task, T, model) with the
        final losses over the seeds, ``loss_over_baseline`` (median) and the
        verdict ``"beats"`` (< 0.8 × baseline), ``"at baseline"`` (within
        ±10 %), ``"between"``, ``"worse"`` (> 1.1 ×) or ``"not available"``.
    """
    seed = check_run(config, Config, out, seed)
    jobs: list[tuple[str, int]] = [("copy", T) for T in config.copy_lengths]
    jobs += [("adding", T) for T in config.adding_lengths]
    baselines: dict[str, Any] = {}
    for task, T in jobs:
        analytic = copy_baseline(T) if task == "copy" else adding_baseline()
        measured = measured_baseline(task, T, config.eval_size, seed + 7919)
        baselines[f"{task}-{T}"] = {"task": task, "T": T, "analytic": float(analytic),
                                    "measured": float(measured)}
    notes: list[str] = []
    specs = []
    index: list[tuple[str, int, str, Any]] = []
    for task, T in jobs:
        for label in config.models:
            if not _available(label):
                continue
            for s in range(config.seeds):
                sp = _spec(config, label, task, T, seed + s)
                specs.append(sp)
                index.append((task, T, label, sp))
    rows = run_specs(specs, out, NAME, workers=config.workers, scheduler=config.scheduler) if specs else {}
    runs: list[dict[str, Any]] = []
    for task, T in jobs:
        base = baselines[f"{task}-{T}"]["analytic"]
        for label in config.models:
            entry: dict[str, Any] = {"task": task, "T": T, "model": label}
            if not _available(label):
                entry.update(verdict="not available", losses=[], errors=[])
                notes.append(f"{label}: its initialisation scheme {MODELS[label][1]!r} is not available")
                runs.append(entry)
                continue
            sps = [sp for (tk, tt, lb, sp) in index if (tk, tt, lb) == (task, T, label)]
            done = done_runs(rows, sps)
            losses = [r.metrics["final_loss"] for r in done]
            errors = [r.metrics["final_error"] for r in done]
            failed = len(sps) - len(done)
            if failed:
                notes.append(f"{task} T={T} {label}: {failed} run(s) failed (see the store)")
            finite = [v for v in losses if v is not None]
            med = float(np.median(finite)) if finite else None
            ratio = None if med is None else med / base
            entry.update(
                losses=losses, errors=errors, median_loss=med, loss_over_baseline=ratio,
                wall_s=float(sum(r.wall_s or 0.0 for r in done)),
                n_fallbacks=int(sum(r.metrics.get("n_fallbacks", 0) for r in done)),
                verdict=_verdict(ratio),
            )
            runs.append(entry)
    numbers: dict[str, Any] = {"baselines": baselines, "runs": runs}
    lstm100 = [r for r in runs if r["task"] == "adding" and r["T"] == 100 and r["model"] == "lstm"]
    if lstm100:
        numbers["target_lstm_beats_adding_100"] = lstm100[0]["verdict"] == "beats"
    figs: list[str] = []
    p = figure_path(out, NAME, "losses")
    if p is not None and any(r.get("median_loss") is not None for r in runs):
        _figure(p, runs, baselines,
                f"n_hidden = {config.n_hidden}, {config.steps} steps of {config.optimizer} "
                f"lr {config.lr:g}, batch {config.batch_size}, clip {config.clip:g}, "
                f"{config.seeds} seed{'s' if config.seeds > 1 else ''} from {seed}")
        figs.append(str(p))
    md = _markdown(numbers, config, figs, notes)
    return ExperimentResult(NAME, {}, numbers, md, tuple(figs), notes=tuple(notes))


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "failed"
    if ratio < BEATS:
        return "beats"
    if AT_BASELINE[0] <= ratio <= AT_BASELINE[1]:
        return "at baseline"
    return "worse" if ratio > AT_BASELINE[1] else "between"


def _figure(path: Path, runs: list[dict[str, Any]], baselines: dict[str, Any], context: str) -> None:
    from .._figures import DPI, figure_style, new_figure, save_figure, with_context

    keys = list(baselines)
    fig = new_figure((3.4 * len(keys), 4.2))
    with figure_style():
        for i, k in enumerate(keys):
            b = baselines[k]
            ax = fig.add_subplot(1, len(keys), i + 1)
            rs = [r for r in runs if r["task"] == b["task"] and r["T"] == b["T"]]
            labels = [r["model"] for r in rs]
            vals = [r.get("median_loss") or 0.0 for r in rs]
            ax.bar(range(len(rs)), vals, color=[f"C{j}" for j in range(len(rs))], gid="loss")
            ax.axhline(b["analytic"], color="k", ls="--", lw=1.2, label="memoryless baseline",
                       gid="baseline")
            ax.set_xticks(range(len(rs)), labels, rotation=30, fontsize=8)
            ax.set_title(f"{b['task']}, T = {b['T']}")
            ax.set_ylabel("loss on fresh sequences" if i == 0 else "")
        # one legend for every panel, below them: the bars fill the axes
        fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside lower center",
                   frameon=False, fontsize=7)
        fig.suptitle(with_context("copy-adding: loss against the memoryless baseline", context,
                                  width=int(30 * len(keys))), fontsize=10)
    save_figure(fig, path, DPI)


def _markdown(numbers: dict[str, Any], config: Config, figs: list[str], notes: list[str]) -> str:
    b = numbers["baselines"]
    brow = [[v["task"], v["T"], v["analytic"], v["measured"],
             "10 ln 8 / (T + 20)" if v["task"] == "copy" else "1/6 (constant predictor 1)"]
            for v in b.values()]
    rrow = []
    for r in numbers["runs"]:
        base = b[f"{r['task']}-{r['T']}"]["analytic"]
        rrow.append([r["task"], r["T"], r["model"], base, r.get("median_loss"),
                     r.get("loss_over_baseline"),
                     float(np.median(r["errors"])) if r.get("errors") else None, r["verdict"]])
    lines = [
        f"# copy-adding: recurrent cells against the memoryless baselines "
        f"({config.n_hidden} units, {config.steps} steps of {config.optimizer} lr {config.lr:g}, "
        f"{config.seeds} seed(s))",
        "",
        "## Baselines (analytic, and measured on fresh sequences)",
        "",
        markdown_table(["task", "T", "analytic", "measured", "formula"], brow),
        "",
        "## Models",
        "",
        markdown_table(["task", "T", "model", "baseline", "loss (median over seeds)",
                        "loss / baseline", "error (sequences wrong)", "verdict"], rrow),
        "",
        f"Verdict: *beats* when loss < {BEATS} × baseline, *at baseline* within "
        f"±{round((AT_BASELINE[1] - 1) * 100)} %.",
        "",
        "## Interpretation",
        "",
    ]
    for v in b.values():
        rel = abs(v["measured"] - v["analytic"]) / v["analytic"]
        lines.append(f"- {v['task']} T = {v['T']}: the memoryless predictor measures "
                     f"{fmt(v['measured'], 4)} against the analytic {fmt(v['analytic'], 4)} "
                     f"(relative difference {fmt(rel)}).")
    for verdict in ("beats", "at baseline", "between", "worse", "failed", "not available"):
        who = [f"{r['model']} ({r['task']} T = {r['T']})" for r in numbers["runs"] if r["verdict"] == verdict]
        if who:
            lines.append(f"- {verdict}: {', '.join(who)}.")
    if "target_lstm_beats_adding_100" in numbers:
        ok = numbers["target_lstm_beats_adding_100"]
        lines.append(f"- Target (LSTM beats the adding baseline at T = 100): "
                     f"{'met' if ok else 'not met'} within this budget.")
    for n in notes:
        lines.append(f"- Note: {n}.")
    for f in figs:
        lines += ["", f"![losses against the baselines]({Path(f).name})"]
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "RNN/IRNN/LSTM/GRU on copy and adding vs baselines", Config, run)
