"""``remedies``: the article's 11 remedies side by side on one task.

Every remedy of the article (truncated BPTT, an L1/L2 penalty, teacher
forcing, gradient clipping, an echo state network, Hessian-free with
structural damping, leaky integration, the Ω regulariser, LSTM, GRU,
orthogonal initialisation), plus plain MSGD as the reference row, is trained
with the same budget and measured the same way: final error and loss on fresh
sequences, the gradient-norm profile ``ln ‖∂h_τ/∂h_0‖`` against the lag ``τ``
on one evaluation sequence at the end of training
(:func:`rnntheory.jacobians.log_norm_profile`), and wall time.

The task is Pascanu et al.'s temporal order (a target at the last step only),
where every remedy but one applies. The exception is **teacher forcing**,
which needs a target at every step (claim C23): it is run on a generation
task, one-step-ahead Mackey–Glass prediction, with
:class:`rnntheory.cells.generator.GeneratorRNN` in ``mode="teacher"`` (its row
says so, and its error is the NRMSE of that task). The **echo state network**
(:mod:`rnntheory.esn`) is a fixed random reservoir whose readout on the final
state ``[h_T; x_T; 1]`` is fitted by ridge regression to one-hot targets on
the same number of training sequences the other rows see. Hessian-free
(:class:`rnntheory.training.HessianFree`) takes ``hf_steps`` outer iterations
(each a CG solve) instead of ``steps`` gradient steps. A remedy whose
implementation is missing from this installation is reported as
"not available", never with a number.

Training runs are executed in-process (not through the sweep store): the
gradient profile needs the trained model, which the store does not keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    figure_path,
    fmt,
    markdown_table,
)

__all__ = ["REMEDIES", "Config", "run"]

NAME = "remedies"

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

    @classmethod
    def full(cls) -> Config:
        """Pascanu's budget scale: length 100, 50 000 steps, 10 000 test sequences."""
        return cls(length=100, steps=50_000, hf_steps=500, eval_size=10_000, esn_n_hidden=500)

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
    # run it on whole batches with the Numba kernels.
    res = ElmanRNN(esn.W, esn.W_in, esn.b, activation="tanh")

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


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
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
        _figure(fp, rows)
        figs.append(str(fp))
    return ExperimentResult(NAME, {}, numbers, _markdown(numbers, config, figs), tuple(figs),
                            notes=tuple(notes))


def _figure(path: Path, rows: dict[str, Any]) -> None:
    from .._figures import DPI, figure_style, new_figure, save_figure

    fig = new_figure((7.0, 4.4))
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
        ax.set_title("Gradient-norm profile of each remedy")
        ax.legend(frameon=False, fontsize=7, ncol=2)
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
        f"# remedies: the 11 remedies on {config.task}, length {T} "
        f"({config.n_hidden} units, SGD lr {config.lr:g}, {config.steps} steps, batch {config.batch_size})",
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


EXPERIMENT = Experiment(NAME, "the 11 remedies side by side", Config, run)
