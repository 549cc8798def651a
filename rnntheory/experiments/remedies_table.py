"""``remedies``: the article's 11 remedies side by side, each under its own paper's protocol.

Every remedy of the article (truncated BPTT, an L1/L2 penalty, teacher
forcing, gradient clipping, an echo state network, Hessian-free with
structural damping, leaky integration, the Ω regulariser, LSTM, GRU,
orthogonal initialisation), plus plain MSGD as the reference row, is trained
under the protocol of the paper it comes from
(:data:`rnntheory.experiments.protocols.REMEDY_PROTOCOLS`): its optimizer,
learning rate, initialisation, batch size and budget. The table reports, at
length 50 of Pascanu et al.'s temporal order problem, the success rate over
the seeds (≥ 5; a run succeeds below 1 % errors on fresh sequences) and the
median number of updates to solve, and — for every remedy that solves length
50 on at least one seed — the success rate against the length, in the style of
Pascanu et al.'s (2013) Fig. 7. Each row names its protocol and where the run
departs from the paper (the task, the budget at this scale, …); a result is
never presented as matching its paper: the comparisons with the papers'
numbers live in the ``reproduce`` experiment.

Two rows are not trained on temporal order, because their remedy does not
apply to it: **teacher forcing** needs a target at every step (claim C23) and
runs on one-step Mackey–Glass generation with a
:class:`~rnntheory.cells.generator.GeneratorRNN` (success: NRMSE below 0.1);
the **echo state network** runs Jaeger's (2001) Mackey–Glass protocol
(:func:`rnntheory.experiments.mg17.mackey_glass_protocol`; success: NRMSE84
at most 2.8·10⁻⁴). The gradient-trained rows go through the sweep machinery
into the resumable store ``OUT/remedies.db`` (the local Dask cluster, or
``scheduler`` = an address).

``protocol="common"`` keeps the former table: every remedy trained by the same
SGD (lr 0.1, ``steps`` updates) on one task, with final error, loss, the
gradient-norm profile ``ln ‖∂h_τ/∂h_0‖`` after training
(:func:`rnntheory.jacobians.log_norm_profile`) and wall time. It is a
statement about that one protocol, not about the remedies. A remedy whose
implementation is missing from this installation is reported as "not
available", never with a number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_real, deprecated_alias, renamed_arguments
from ..remedies.stages import PASCANU_2013_OMEGA_WEIGHT
from .registry import (
    Experiment,
    ExperimentResult,
    check_budget,
    check_run,
    check_sequence,
    check_workers,
    done_runs,
    figure_path,
    fmt,
    fmt_updates,
    markdown_table,
    run_specs,
)

__all__ = ["REMEDIES", "Config", "run"]

NAME = "remedies"
_OVERRIDES = ("steps", "n_hidden", "batch_size", "eval_size", "eval_every", "washout", "train", "horizon")

#: row name -> what it is (the table's second column)
REMEDIES: dict[str, str] = {
    "none (MSGD)": "reference: smart tanh RNN, plain mini-batch SGD",
    "truncated BPTT": "TruncatedBPTT(k2 = length/5)",
    "L1/L2 penalty": "Penalty('l2', weight) on W_hh",
    "teacher forcing": "GeneratorRNN, mode='teacher', on Mackey–Glass generation",
    "gradient clipping": "GradientClipping(1.0), global norm (Eq. 13)",
    "echo state network": "random reservoir ρ = 0.95, ridge readout on the final state",
    "Hessian-free": "HessianFree(μ = 1/30), structural damping",
    "leaky integration": "per-unit leak rates 1 − α ∈ U[0.02, 0.2] (Eq. 14)",
    "Ω regularizer": "Omega(weight) with clipping 1.0 (Pascanu et al.'s MSGD-CR)",
    "LSTM": "LSTM cell (forget bias 1)",
    "GRU": "GRU cell",
    "orthogonal init": "W_hh Haar-orthogonal",
}


@dataclass(frozen=True)
class Config:
    """Configuration of ``remedies``.

    Attributes
    ----------
    protocol : {"own", "common"}
        ``"own"``: each remedy under its paper's protocol (the default);
        ``"common"``: the former table, every remedy trained by one SGD setting
        (``lr``, ``steps``, ``n_hidden``, ``batch_size``, ``eval_size``, ``l2``,
        ``omega``, ``hf_steps``, ``esn_n_hidden`` below apply to it only).
    scale : {"default", "full"}
        The protocols' scale (:meth:`rnntheory.experiments.protocols.Protocol.scale_values`):
        ``"default"`` has reduced budgets (about 30 minutes for the length-50
        stage on a 2-core machine shared with other work, and 15 for the length
        sweep of the solving rows at 100 and 200 on an idle one); ``"full"`` is
        the protocols' own (days of CPU; meant for a Dask cluster).
    seeds : int
        Runs per row at ``length`` (≥ 5 for the report's success rates).
    sweep_lengths : tuple of int
        Further lengths run by every row that solves ``length`` on at least one seed
        (Pascanu et al.'s Fig. 7 lengths by default).
    sweep_seeds : int
        Runs per row at each sweep length.
    overrides : tuple of (str, int)
        Values that replace every protocol's (``"steps"``, ``"n_hidden"``,
        ``"batch_size"``, ``"eval_size"``, ``"eval_every"``, and for the echo
        state network ``"washout"``, ``"train"``, ``"horizon"``): tiny runs
        for tests; the report lists them.
    workers : int
        Parallel workers of the sweep (``"own"`` only).
    scheduler : str
        ``"processes"``, ``"threads"``, ``"sync"`` or a Dask scheduler address.
    task : str
        Main task (a key of :data:`rnntheory.tasks.TASKS` with one target at the
        last step: ``"temporal_order"``, ``"addition"``, ``"adding"``, …).
    length : int
    n_hidden : int
    lr : float
        SGD learning rate shared by the gradient-based rows (0.1, the rate with
        which ``pascanu-tasks`` solves temporal order; the paper: 0.01).
    steps : int
        Gradient steps per row.
    hf_steps : int
        Hessian-free outer iterations.
    batch_size : int
    eval_size : int
        Fresh sequences for the final error.
    l2 : float
        Weight of the L2 penalty.
    omega : float
        Weight of Ω.
    esn_n_hidden : int
        Reservoir size (hidden size) of the echo state network. (Formerly
        ``esn_units``: the keyword and the attribute still work for one
        release, with a ``DeprecationWarning``.)
    rows : tuple of str
        Keys of :data:`REMEDIES` to run.
    """

    protocol: str = "own"
    scale: str = "default"
    seeds: int = 5
    sweep_lengths: tuple[int, ...] = (100, 150, 200)
    sweep_seeds: int = 3
    overrides: tuple[tuple[str, int], ...] = ()
    workers: int = 2
    scheduler: str = "processes"
    task: str = "temporal_order"
    length: int = 50
    n_hidden: int = 50
    lr: float = 0.1
    steps: int = 2500
    hf_steps: int = 40
    batch_size: int = 20
    eval_size: int = 1000
    l2: float = 1e-3
    omega: float = PASCANU_2013_OMEGA_WEIGHT
    esn_n_hidden: int = 200
    rows: tuple[str, ...] = tuple(REMEDIES)

    def __post_init__(self) -> None:
        from ..tasks import TASKS

        check_choice("task", self.task, tuple(k for k in TASKS if k not in ("mackey_glass", "narma10", "copy")))
        check_int("length", self.length, minimum=10)
        check_budget(self)
        check_int("hf_steps", self.hf_steps, minimum=1)
        check_int("eval_size", self.eval_size, minimum=1)
        check_real("l2", self.l2, low=0.0)
        check_real("omega", self.omega, low=0.0)
        check_int("esn_n_hidden", self.esn_n_hidden, minimum=1)
        check_sequence("rows", self.rows)
        if not self.rows:
            raise ValueError("`rows` must name at least one remedy, got ()")
        for r in self.rows:
            check_choice("rows", r, tuple(REMEDIES))
        check_choice("protocol", self.protocol, ("own", "common"))
        check_choice("scale", self.scale, ("default", "full"))
        check_int("seeds", self.seeds, minimum=1)
        check_sequence("sweep_lengths", self.sweep_lengths)
        for n in self.sweep_lengths:
            check_int("sweep_lengths", n, minimum=10)
        check_int("sweep_seeds", self.sweep_seeds, minimum=1)
        check_sequence("overrides", self.overrides)
        for pair in self.overrides:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"`overrides` must hold (name, value) pairs, got {pair!r}")
            check_choice("overrides", pair[0], _OVERRIDES)
            check_int(f"overrides[{pair[0]!r}]", pair[1], minimum=1)
        check_workers(self.workers, self.scheduler)

    @classmethod
    def full(cls) -> Config:
        """Every remedy at its protocol's full scale, lengths 50–200 for the rows that solve 50."""
        return cls(scale="full", sweep_lengths=(100, 150, 200), sweep_seeds=5)

    esn_units = deprecated_alias("esn_n_hidden")
    """Deprecated spelling of :attr:`esn_n_hidden` (removed in the next release)."""


Config.__init__ = renamed_arguments(esn_units="esn_n_hidden")(Config.__init__)  # type: ignore[method-assign]


class _NotAvailable(Exception):
    """A remedy whose implementation this installation lacks."""


def _spec(config: Config, seed: int, **kw: Any) -> Any:
    from .runspec import RunSpec

    base: dict[str, Any] = dict(task=config.task, length=config.length, n_hidden=config.n_hidden,
                                lr=config.lr, steps=config.steps, batch_size=config.batch_size,
                                seed=seed, eval_size=config.eval_size)
    base.update(kw)
    return RunSpec(**base)


def _train_spec(spec: Any, optimizer: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train ``spec`` with :func:`rnntheory.training.train`; the trained model and counters."""
    from ..tasks import make_task
    from ..training import train
    from .runspec import build_model, build_optimizer, build_remedies

    task = make_task(spec.task, spec.length)
    model = build_model(spec, task.n_in, task.n_out)
    opt = optimizer if optimizer is not None else build_optimizer(spec)
    hist = train(model, task, optimizer=opt, remedies=build_remedies(spec), steps=spec.steps,
                 batch_size=spec.batch_size, seed=spec.seed, eval_every=max(1, spec.steps),
                 eval_size=min(spec.eval_size, 200), divergence="fallback", progress=False)
    gn = np.asarray(hist.grad_norm, np.float64)
    fin = gn[np.isfinite(gn)]
    return hist.model, {"n_clips": hist.count("clip"), "n_fallbacks": hist.count("fallback"),
                        "grad_norm_median": float(np.median(fin)) if fin.size else None}


def _final(model: Any, config: Config, seed: int) -> tuple[float, float, Any]:
    """Error and loss on fresh sequences, and the profile on the first of them."""
    from .. import jacobians
    from ..tasks import make_task

    task = make_task(config.task, config.length)
    test = task.sample(config.eval_size, seed + 104729)
    with np.errstate(over="ignore", invalid="ignore"):
        tr = model.forward(test.x)
        out = np.asarray(tr.y, np.float64)
    prof = jacobians.log_norm_profile(model, model.forward(test.x[:, 0]), 0)
    return float(task.error(out, test)), float(task.loss_value(out, test)), prof


def _row_gradient(config: Config, seed: int, **kw: Any) -> dict[str, Any]:
    opt = kw.pop("_optimizer", None)
    spec = _spec(config, seed, **kw)
    model, extra = _train_spec(spec, opt)
    err, loss, prof = _final(model, config, seed)
    return {"task": config.task, "final_error": err, "final_loss": loss, "profile": prof, **extra}


def _row_hf(config: Config, seed: int) -> dict[str, Any]:
    from .. import training

    hf = getattr(training, "HessianFree", None)
    if hf is None:
        raise _NotAvailable("rnntheory.training.HessianFree is missing")
    try:
        return _row_gradient(config, seed, steps=config.hf_steps, _optimizer=hf())
    except TypeError as exc:  # the training loop does not accept it
        raise _NotAvailable(f"training.train does not accept HessianFree: {exc}") from exc


def _row_esn(config: Config, seed: int) -> dict[str, Any]:
    from .. import jacobians
    from ..cells.elman import ElmanRNN
    from ..esn import random_esn, ridge_regression
    from ..tasks import make_task

    task = make_task(config.task, config.length)
    esn = random_esn(config.esn_n_hidden, task.n_in, task.n_out, spectral_radius=0.95,
                     connectivity=min(1.0, 15.0 / config.esn_n_hidden), input_scaling=1.0, seed=seed)
    # Without feedback and leak, the reservoir is an Elman RNN (standard form, tanh):
    # run it on whole batches with the Numba kernels (a sparse reservoir made dense).
    W = esn.W.toarray() if hasattr(esn.W, "toarray") else np.asarray(esn.W)
    res = ElmanRNN(W, esn.W_in, esn.b, activation="tanh")

    def feats(batch: Any) -> np.ndarray:
        h = res.forward(batch.x).h  # (T+1, B, n)
        last = batch.lengths - 1
        cols = np.arange(batch.batch_size)
        return np.hstack([h[last + 1, cols], batch.x[last, cols], np.ones((batch.batch_size, 1))])

    def targets(batch: Any) -> np.ndarray:
        last = batch.lengths - 1
        y = batch.y[last, np.arange(batch.batch_size)]
        return np.eye(task.n_out)[y] if task.loss == "xent" else y

    train = task.sample(min(config.steps * config.batch_size, 20_000), seed)
    W_out = ridge_regression(feats(train), targets(train), 1e-6)
    test = task.sample(config.eval_size, seed + 104729)
    out = np.zeros((test.T, test.batch_size, task.n_out))
    last = test.lengths - 1
    out[last, np.arange(test.batch_size)] = feats(test) @ W_out.T
    err = float(task.error(out, test))
    loss = float(task.loss_value(out, test)) if task.loss == "mse" else None
    prof = jacobians.log_norm_profile(res, res.forward(test.x[:, 0]), 0)
    return {"task": config.task, "final_error": err, "final_loss": loss, "profile": prof,
            "note": "loss not defined for a ridge readout on a classification task" if loss is None else None}


def _row_teacher(config: Config, seed: int) -> dict[str, Any]:
    from .. import jacobians
    from ..cells.elman import ElmanRNN
    from ..cells.generator import GeneratorRNN
    from ..remedies.clipping import clip_by_norm
    from ..tasks import make_task
    from ..training import SGD, apply_updates

    task = make_task("mackey_glass", config.length)
    model = GeneratorRNN.init(1, config.n_hidden, 1, seed=seed, scale=0.95)
    opt = SGD(config.lr)
    params = model.params()
    state = opt.init(params)
    rng = np.random.default_rng(seed)
    # MG batches are slow to integrate: draw a pool once and cycle through it.
    pool = task.sample(max(config.batch_size, 200), rng)
    n_clips = 0
    for _ in range(config.steps):
        idx = rng.choice(pool.batch_size, config.batch_size, replace=False)
        x = np.zeros((pool.T, config.batch_size, 1))
        y = pool.y[:, idx]
        with np.errstate(over="ignore", invalid="ignore"):
            _, g = model.value_and_grad(x, y, mode="teacher", loss="mse")
        grads = {k: v / config.batch_size for k, v in g.params().items()}
        grads, info = clip_by_norm(grads, 1.0)
        n_clips += int(info.clipped)
        if not info.finite:  # a non-finite gradient: the step is skipped (SGD refuses it)
            continue
        upd, new_state = opt.update(grads, state)
        try:
            new = apply_updates(params, upd)
        except ValueError:  # a step beyond float64's range: skipped
            continue
        if all(np.isfinite(v).all() for v in new.values()):
            params, state = new, new_state
            model = model.replace(**params)
    test = task.sample(min(config.eval_size, 200), seed + 104729)
    x = np.zeros((test.T, test.batch_size, 1))
    tr = model.forward(x, test.y, mode="teacher", loss="mse")
    out = np.asarray(tr.y, np.float64)
    err = float(task.error(out, test))
    loss = float(task.loss_value(out, test))
    # Under teacher forcing the generator is an Elman RNN reading [x_t; y_{t-1}].
    el = ElmanRNN(model.W_hh, np.hstack([model.W_hx, model.W_hy]), model.b_h, model.W_yh, model.b_y)
    fed = np.vstack([np.zeros((1, 1)), test.y[:-1, 0]])
    prof = jacobians.log_norm_profile(el, el.forward(np.hstack([x[:, 0], fed])), 0)
    return {"task": "mackey_glass (one-step generation, NRMSE)", "final_error": err,
            "final_loss": loss, "profile": prof, "n_clips": n_clips}


def _rows(config: Config) -> dict[str, Callable[[Config, int], dict[str, Any]]]:
    def leaky(c: Config, s: int) -> dict[str, Any]:
        from .. import init as _init  # noqa: F401 - raises ImportError when missing

        return _row_gradient(c, s, remedies=("leaky",))

    def omega(c: Config, s: int) -> dict[str, Any]:
        from .. import training

        if getattr(training, "Omega", None) is None:
            raise _NotAvailable("rnntheory.training.Omega is missing")
        return _row_gradient(c, s, remedies=("clip", "omega"), hparams={"omega": c.omega})

    return {
        "none (MSGD)": lambda c, s: _row_gradient(c, s),
        "truncated BPTT": lambda c, s: _row_gradient(
            c, s, remedies=("tbptt",), hparams={"tbptt": max(1, c.length // 5)}),
        "L1/L2 penalty": lambda c, s: _row_gradient(c, s, remedies=("l2",), hparams={"l2": c.l2}),
        "teacher forcing": _row_teacher,
        "gradient clipping": lambda c, s: _row_gradient(c, s, remedies=("clip",)),
        "echo state network": _row_esn,
        "Hessian-free": _row_hf,
        "leaky integration": leaky,
        "Ω regularizer": omega,
        "LSTM": lambda c, s: _row_gradient(c, s, cell="lstm", hparams={"forget_bias": 1.0}),
        "GRU": lambda c, s: _row_gradient(c, s, cell="gru"),
        "orthogonal init": lambda c, s: _row_gradient(c, s, init="orthogonal"),
    }


def _run_common(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Run each remedy's row and tabulate error, gradient profile and wall time.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for ``remedies-profiles.png``.
    seed : int
        Seed of every row (models, batches, test sequences).

    Returns
    -------
    ExperimentResult
        ``numbers["rows"][name]``: ``status`` (``"ok"``, ``"not available"`` or
        ``"failed"``), ``task``, ``final_error``, ``final_loss``, ``wall_s``,
        ``profile`` (``ln ‖∂h_τ/∂h_0‖`` for ``τ = 0…T``) and ``decay_rate``
        (the least-squares slope of the profile per step).
    """
    seed = check_run(config, Config, out, seed)
    table = _rows(config)
    rows: dict[str, Any] = {}
    notes: list[str] = []
    for name in config.rows:
        t0 = time.perf_counter()
        try:
            r = table[name](config, seed)
            status = "ok"
        except (_NotAvailable, ImportError) as exc:
            r, status = {"reason": str(exc)}, "not available"
            notes.append(f"{name}: not available ({exc})")
        except (ValueError, TypeError, FloatingPointError) as exc:
            r, status = {"reason": f"{type(exc).__name__}: {exc}"}, "failed"
            notes.append(f"{name}: failed ({type(exc).__name__}: {exc})")
        r["wall_s"] = time.perf_counter() - t0
        r["status"] = status
        r["what"] = REMEDIES[name]
        prof = r.get("profile")
        if prof is not None:
            p = np.asarray(prof, np.float64)
            ok = np.isfinite(p)
            lag = np.arange(p.size)
            r["decay_rate"] = (float(np.polyfit(lag[ok], p[ok], 1)[0]) if ok.sum() >= 2 else None)
            r["profile"] = [float(v) if np.isfinite(v) else None for v in p]
            r["log_norm_at_T"] = r["profile"][-1]
        rows[name] = r
    numbers = {"task": config.task, "length": config.length, "rows": rows}
    figs: list[str] = []
    fp = figure_path(out, NAME, "profiles")
    if fp is not None and any(r.get("profile") for r in rows.values()):
        _figure(fp, rows, f"{config.task}, length {config.length}; Elman (smart tanh) "
                f"n_hidden = {config.n_hidden} unless the row says otherwise, SGD lr {config.lr:g}, "
                f"batch {config.batch_size}, {config.steps} updates, seed {seed}")
        figs.append(str(fp))
    return ExperimentResult(NAME, {}, numbers, _markdown(numbers, config, figs), tuple(figs),
                            notes=tuple(notes))


def _figure(path: Path, rows: dict[str, Any], context: str | None = None) -> None:
    from .._figures import DPI, figure_style, legend_outside, new_figure, save_figure, with_context

    fig = new_figure((8.4, 4.6))
    with figure_style():
        ax = fig.add_subplot()
        for j, (name, r) in enumerate(rows.items()):
            prof = r.get("profile")
            if not prof:
                continue
            y = np.array([np.nan if v is None else v for v in prof])
            ls = "--" if j >= 10 else "-"
            ax.plot(np.arange(y.size), y, ls=ls, color=f"C{j % 10}", lw=1.3, label=name, gid=name)
        ax.set_xlabel(r"lag $\tau$")
        ax.set_ylabel(r"$\ln\Vert\partial h_\tau/\partial h_0\Vert$ after training")
        ax.set_title(with_context("Gradient-norm profile of each remedy", context, width=80),
                     fontsize=9)
        legend_outside(ax, fontsize=7)
        ax.grid(alpha=0.3)
    save_figure(fig, path, DPI)


def _markdown(numbers: dict[str, Any], config: Config, figs: list[str]) -> str:
    rows = numbers["rows"]
    T = config.length
    tab = []
    for name, r in rows.items():
        if r["status"] != "ok":
            tab.append([name, r["what"], r["status"], r["status"], "—", "—", "—", r["wall_s"]])
            continue
        tab.append([name, r["what"], r["task"], r.get("final_error"), r.get("final_loss"),
                    r.get("log_norm_at_T"), r.get("decay_rate"), r["wall_s"]])
    lines = [
        f"# remedies: the 11 remedies on {config.task}, length {T}, under one common protocol "
        f"({config.n_hidden} units, SGD lr {config.lr:g}, {config.steps} steps, batch {config.batch_size})",
        "",
        "Every remedy is trained with the same optimizer and budget here: the table is a statement about "
        "that protocol, not about the remedies (`protocol=\"own\"`, the default, trains each under its "
        "paper's protocol).",
        "",
        markdown_table(["remedy", "setting", "task", "final error", "final loss",
                        f"ln‖∂h_T/∂h_0‖ (T = {T})", "profile slope per step", "wall s"], tab),
        "",
        "Error: fraction of wrong sequences on fresh data (NRMSE for the teacher-forcing row's "
        "generation task). The profile is measured on one fresh sequence with the trained model.",
        "",
        "## Interpretation",
        "",
    ]
    ok = {n: r for n, r in rows.items() if r["status"] == "ok" and r["task"] == config.task}
    if ok:
        best = min(ok, key=lambda n: ok[n]["final_error"])
        lines.append(f"- Lowest error on {config.task}: {best} ({fmt(ok[best]['final_error'])}).")
        prof = {n: r for n, r in ok.items() if r.get("log_norm_at_T") is not None}
        if prof:
            keep = max(prof, key=lambda n: prof[n]["log_norm_at_T"])
            lose = min(prof, key=lambda n: prof[n]["log_norm_at_T"])
            lines.append(
                f"- Gradient flow over the whole sequence: largest ‖∂h_T/∂h_0‖ with {keep} "
                f"(e^{fmt(prof[keep]['log_norm_at_T'])}), smallest with {lose} "
                f"(e^{fmt(prof[lose]['log_norm_at_T'])})."
            )
        ref = ok.get("none (MSGD)")
        if ref is not None:
            better = [n for n, r in ok.items() if n != "none (MSGD)" and r["final_error"] < ref["final_error"] - 0.02]
            lines.append(
                f"- Against plain MSGD (error {fmt(ref['final_error'])}): "
                + (f"lower error with {', '.join(better)}." if better else
                   "no remedy lowers the error by more than 0.02 within this budget.")
            )
    slow = max(rows, key=lambda n: rows[n]["wall_s"])
    lines.append(f"- Slowest row: {slow} ({fmt(rows[slow]['wall_s'])} s).")
    for n, r in rows.items():
        if r["status"] != "ok":
            lines.append(f"- {n}: **{r['status']}** — {r.get('reason', '')}.")
    for f in figs:
        lines += ["", f"![gradient-norm profiles]({Path(f).name})"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- own protocols
_TEACHER_SOLVED = 0.1  # one-step NRMSE below which a teacher-forced generator counts as solved


def _override(config: Config, name: str, value: Any) -> Any:
    return dict(config.overrides).get(name, value)


def _protocol_spec(config: Config, name: str, length: int, seed: int) -> Any:
    from .protocols import protocol_for

    p = protocol_for(name)
    ov = dict(config.overrides)
    return p.spec(config.task, length, seed=seed, scale=config.scale, steps=ov.get("steps"),
                  eval_size=ov.get("eval_size"), eval_every=ov.get("eval_every"), n_hidden=ov.get("n_hidden"),
                  batch_size=ov.get("batch_size"))


def _summary(solved: Sequence[bool], steps: Sequence[int | None], errors: Sequence[float | None]) -> dict[str, Any]:
    from .protocols import median_updates_to_solve, success_rate

    errs = [e for e in errors if e is not None]
    return {"runs": len(solved), "solved": int(sum(solved)), "success_rate": success_rate(solved),
            "median_updates_to_solve": median_updates_to_solve(steps),
            "median_final_error": float(np.median(errs)) if errs else None, "final_errors": list(errors)}


def _esn_own(config: Config, seed: int) -> dict[str, Any]:
    from .mg17 import JAEGER_2001, mackey_glass_protocol
    from .protocols import protocol_for

    p = protocol_for("echo state network")
    runs = p.scale_values(config.scale)["seeds"] if config.scale == "full" else config.seeds
    kw: dict[str, Any] = {k: v for k, v in config.overrides if k in ("washout", "train", "horizon")}
    if "train" in kw:  # a short training stretch: the ridge validation stretch inside it
        kw["validation"] = max(kw.get("horizon", 84) + 1, kw["train"] // 2)
    res = mackey_glass_protocol(_override(config, "n_hidden", p.n_hidden), runs, seed=seed, **kw)
    per = [float(v) for v in res.per_run]
    out = _summary([v <= JAEGER_2001 for v in per], [None] * len(per), per)
    out.update(task="mackey_glass (NRMSE84, Jaeger's protocol)", nrmse84=float(res.nrmse84),
               criterion=f"NRMSE84 ≤ {JAEGER_2001:g} per run")
    return out


def _teacher_own(config: Config, seed: int) -> dict[str, Any]:
    from dataclasses import replace

    from .protocols import protocol_for

    p = protocol_for("teacher forcing")
    v = p.scale_values(config.scale)
    c = replace(config, protocol="common", lr=float(p.lr or 0.1), steps=_override(config, "steps", v["steps"]),
                n_hidden=_override(config, "n_hidden", p.n_hidden),
                batch_size=_override(config, "batch_size", v["batch_size"]),
                eval_size=_override(config, "eval_size", v["eval_size"]), rows=("teacher forcing",))
    errs = [float(_row_teacher(c, seed + s)["final_error"]) for s in range(config.seeds)]
    out = _summary([e < _TEACHER_SOLVED for e in errs], [None] * len(errs), errs)
    out.update(task="mackey_glass (one-step generation, NRMSE)", criterion=f"NRMSE < {_TEACHER_SOLVED:g}")
    return out


def _departures(config: Config, name: str) -> list[str]:
    """Short reasons this row's run is not the paper's experiment."""
    from .protocols import protocol_for

    p = protocol_for(name)
    out: list[str] = []
    if p.route in ("train", "hessian_free") and config.task not in p.tasks:
        out.append(f"task {config.task} (paper: {', '.join(p.tasks)})")
    if p.route in ("train", "hessian_free") and config.length not in p.lengths:
        out.append(f"length {config.length} (paper: {', '.join(map(str, p.lengths))})")
    v = p.scale_values(config.scale)
    steps = _override(config, "steps", v["steps"])
    if p.route in ("train", "hessian_free", "generator"):
        if p.budget is None:
            out.append(f"budget {steps:,} (ours: the paper states none for this task)")
        elif steps < p.budget:
            out.append(f"budget {steps:,} (paper: up to {p.budget:,})")
    if p.route in ("train", "hessian_free") and config.task in p.tasks and p.budget is None:
        out.append("the paper's own data are not in the library: task and settings are ours")
    if v["lr"] != p.lr:
        out.append(f"lr {v['lr']:g} (paper: {p.lr:g})")
    runs = config.seeds
    if p.route == "esn" and config.scale == "full":
        runs = v["seeds"]
    if runs < p.seeds:
        out.append(f"{runs} runs (paper: {p.seeds})")
    if config.overrides:
        out.append("overrides " + ", ".join(f"{k}={val}" for k, val in config.overrides))
    return out


def _run_own(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    from .protocols import protocol_for
    from .reproduce import solve_steps

    gradient = [n for n in config.rows if protocol_for(n).route in ("train", "hessian_free")]
    specs = {(n, s): _protocol_spec(config, n, config.length, seed + s) for n in gradient for s in range(config.seeds)}
    done = run_specs(list(specs.values()), out, NAME, workers=config.workers, scheduler=config.scheduler)
    rows: dict[str, Any] = {}
    notes: list[str] = []
    for name in config.rows:
        p = protocol_for(name)
        head = {"protocol": p.name, "source": p.source.short(), "title": p.title,
                "departures": _departures(config, name), "criterion": p.our_criterion,
                "paper_criterion": p.criterion, "target": p.target}
        t0 = time.perf_counter()
        if name in gradient:
            sps = [specs[(name, s)] for s in range(config.seeds)]
            got = done_runs(done, sps)
            if len(got) < len(sps):
                notes.append(f"{name}: {len(sps) - len(got)} run(s) failed")
            r = _summary([bool(g.metrics["solved"]) for g in got],
                         [solve_steps(g.metrics) for g in got],
                         [g.metrics["final_error"] for g in got])
            sp = sps[0]
            flows = [g.metrics.get("flow") for g in got]
            lT = [f["log_norm"][-1] for f in flows if f and f["log_norm"] and f["log_norm"][-1] is not None]
            r.update(task=config.task, optimizer=sp.optimizer, lr=None if sp.optimizer == "hf" else sp.lr,
                     steps=sp.steps, batch_size=sp.batch_size, n_hidden=sp.n_hidden, init=sp.init,
                     wall_s=float(sum(g.wall_s or 0.0 for g in got)),
                     log_norm_at_T=float(np.median(lT)) if lT else None, status="ok")
        else:
            try:
                r = _esn_own(config, seed) if p.route == "esn" else _teacher_own(config, seed)
                r["status"] = "ok"
            except (ValueError, TypeError, FloatingPointError) as exc:
                r = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                notes.append(f"{name}: failed ({type(exc).__name__}: {exc})")
            r["wall_s"] = time.perf_counter() - t0
        rows[name] = {**head, **r}
    # success against length for the rows that solve the main length on at least one seed
    solvers = [n for n in gradient if rows[n].get("solved", 0) > 0]
    sweep_specs = {(n, L, s): _protocol_spec(config, n, L, seed + s)
                   for n in solvers for L in config.sweep_lengths for s in range(config.sweep_seeds)}
    sweep: dict[str, dict[int, Any]] = {}
    if sweep_specs:
        got_rows = run_specs(list(sweep_specs.values()), out, NAME, workers=config.workers,
                             scheduler=config.scheduler)
        for n in solvers:
            sweep[n] = {config.length: {k: rows[n][k] for k in ("runs", "solved", "success_rate",
                                                                 "median_updates_to_solve")}}
            for L in config.sweep_lengths:
                got = done_runs(got_rows, [sweep_specs[(n, L, s)] for s in range(config.sweep_seeds)])
                sm = _summary([bool(g.metrics["solved"]) for g in got],
                              [solve_steps(g.metrics) for g in got],
                              [g.metrics["final_error"] for g in got])
                sweep[n][L] = {k: sm[k] for k in ("runs", "solved", "success_rate", "median_updates_to_solve")}
    numbers = {"protocol": "own", "scale": config.scale, "task": config.task, "length": config.length,
               "rows": rows, "sweep": {n: {str(L): v for L, v in d.items()} for n, d in sweep.items()}}
    figs: list[str] = []
    fp = figure_path(out, NAME, "success")
    if fp is not None and sweep:
        from ..plotting import success_vs_length

        rates = {n: (sorted(d), [d[L]["success_rate"] or 0.0 for L in sorted(d)]) for n, d in sweep.items()}
        fig = success_vs_length(rates, fp, title=(
            f"{config.task}: success rate vs length, each remedy under its protocol "
            f"({config.scale} scale; {config.seeds} seeds at {config.length}, {config.sweep_seeds} beyond)"))
        import matplotlib.pyplot as plt

        plt.close(fig)
        figs.append(str(fp))
    return ExperimentResult(NAME, {}, numbers, _markdown_own(numbers, config, figs, notes), tuple(figs),
                            notes=tuple(notes))


def _markdown_own(numbers: dict[str, Any], config: Config, figs: list[str], notes: list[str]) -> str:
    rows = numbers["rows"]
    tab = []
    for name, r in rows.items():
        if r["status"] != "ok":
            tab.append([name, f"{r['protocol']} ({r['source']})", r["status"], "—", "—", "—", "—",
                        "; ".join(r["departures"]) or "none"])
            continue
        if "optimizer" in r:
            setting = (f"{r['optimizer']}" + ("" if r["lr"] is None else f" lr {r['lr']:g}")
                       + f", batch {r['batch_size']}, {r['steps']:,} updates, {r['n_hidden']} units, {r['init']}")
        else:
            setting = r["criterion"]
        tab.append([name, f"{r['protocol']} ({r['source']})", setting, r["task"],
                    f"{r['solved']}/{r['runs']}", fmt_updates(r["median_updates_to_solve"]), r["median_final_error"],
                    "; ".join(r["departures"]) or "none"])
    lines = [
        f"# remedies: each remedy under its own protocol ({config.scale} scale), {config.task} "
        f"at length {config.length}",
        "",
        "A run succeeds when it makes fewer than 1 % errors on fresh test sequences (teacher forcing: "
        f"one-step NRMSE < {_TEACHER_SOLVED:g}; echo state network: NRMSE84 ≤ 2.8·10⁻⁴). Median updates to solve "
        "are over the solving runs, resolved to the evaluation interval (a run solved on its final test whose "
        "evaluations never fell below 1 % counts its whole budget). The last column says where the run "
        "departs from its paper: no row here is a reproduction of its paper (see the `reproduce` experiment).",
        "",
        markdown_table(["remedy", "protocol (source)", "setting", "task", "solved", "median updates to solve",
                        "median final error", "departs from the paper in"], tab),
        "",
    ]
    if numbers["sweep"]:
        lens = sorted({int(L) for d in numbers["sweep"].values() for L in d})
        head = ["remedy", *[f"L = {L}" for L in lens]]
        body = []
        for n, d in numbers["sweep"].items():
            body.append([n, *[(f"{d[str(L)]['solved']}/{d[str(L)]['runs']}" if str(L) in d else "—")
                              for L in lens]])
        lines += ["## Success against length (rows that solve the main length on at least one seed)", "",
                  markdown_table(head, body), ""]
    lines += ["## Interpretation", ""]
    ok = {n: r for n, r in rows.items() if r["status"] == "ok"}
    solved = [n for n, r in ok.items() if r["solved"] > 0]
    if solved:
        fast = [n for n in solved if ok[n]["median_updates_to_solve"] is not None]
        counts = ", ".join(f"{n} ({ok[n]['solved']}/{ok[n]['runs']})" for n in solved)
        lines.append(f"- Solved on at least one seed: {counts}.")
        if fast:
            best = min(fast, key=lambda n: ok[n]["median_updates_to_solve"])
            lines.append(f"- Fewest median updates to solve: {best} ({fmt_updates(ok[best]['median_updates_to_solve'])}).")
    unsolved = [n for n, r in ok.items() if r["solved"] == 0]
    if unsolved:
        lines.append(f"- Not solved on any seed within this scale's budget: {', '.join(unsolved)}; where the "
                     "budget is below the paper's this is not evidence against the paper.")
    for n, d in numbers["sweep"].items():
        rates = [d[L]["success_rate"] for L in sorted(d, key=int)]
        if rates and rates[-1] is not None and rates[0] is not None and rates[-1] < rates[0]:
            lines.append(f"- {n}: the success rate falls from {fmt(rates[0])} to {fmt(rates[-1])} as the length "
                         f"grows to {max(int(L) for L in d)}.")
    for n, r in rows.items():
        if r["status"] != "ok":
            lines.append(f"- {n}: **{r['status']}** — {r.get('reason', '')}.")
    for n in notes:
        lines.append(f"- Note: {n}.")
    lines += ["", "## The protocols", ""]
    for name, r in rows.items():
        lines.append(f"- **{name}** — {r['title']}; {r['protocol']} ({r['source']}). Paper's criterion: "
                     f"{r['paper_criterion']}. Ours: {r['criterion']}. Paper's result: {r['target']}.")
    for f in figs:
        lines += ["", f"![success rate against length]({Path(f).name})"]
    return "\n".join(lines)


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Run the remedies table: each remedy under its protocol (default) or under one common protocol.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the store ``remedies.db`` and the figures
        (``remedies-success.png``; ``remedies-profiles.png`` with ``protocol="common"``).
    seed : int
        Run seeds ``seed … seed + seeds − 1``.

    Returns
    -------
    ExperimentResult
        With ``protocol="own"``: ``numbers["rows"][name]`` holds ``protocol``,
        ``source``, ``departures``, ``runs``, ``solved``, ``success_rate``,
        ``median_updates_to_solve``, ``median_final_error``, ``final_errors``
        and the setting; ``numbers["sweep"][name][length]`` the success counts
        at each length for the rows that solve ``config.length``. With
        ``protocol="common"``: ``numbers["rows"][name]`` holds ``status``
        (``"ok"``, ``"not available"`` or ``"failed"``), ``task``,
        ``final_error``, ``final_loss``, ``wall_s``, ``profile`` (``ln ‖∂h_τ/∂h_0‖``
        for ``τ = 0…T``) and ``decay_rate`` (its least-squares slope per step).
    """
    seed = check_run(config, Config, out, seed)
    if config.protocol == "common":
        return _run_common(config, out, seed)
    return _run_own(config, out, seed)


EXPERIMENT = Experiment(NAME, "the 11 remedies side by side, each under its own paper's protocol", Config, run)
