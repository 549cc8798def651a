"""``bound-tightness``: observed ``‖∂h_t/∂h_k‖`` against the bounds and the Lyapunov rate.

For each model (Elman forms with the paper's initialisations and a Gaussian
matrix in the expanding regime; the LSTM and the GRU) one input sequence is run
and every ``ln ‖∂h_t/∂h_k‖`` is computed (:func:`rnntheory.jacobians.log_norms`).
The bounds of :func:`rnntheory.bounds.certify` are checked on every pair:
Eq. 12's ``(γ_W γ_h)^(t−k)``, the data-dependent ``Π γ_W max|f′|`` and
``Π ‖J_i‖`` (Elman), the gated step bound and ``Π ‖J_i‖`` (LSTM, GRU). The
largest finite-time Lyapunov exponent (:func:`rnntheory.jacobians.lyapunov_spectrum`)
is the rate the norms actually follow; Eq. 12's ``ln(γ_W γ_h)`` only bounds it.

Slack of a bound at lag ``τ``: the mean over ``k`` of ``ln bound − ln‖∂h_{k+τ}/∂h_k‖``
(0 = tight).
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
    check_run,
    check_sequence,
    figure_path,
    fmt,
    markdown_table,
)
from .runspec import PASCANU_2013_N_HIDDEN

__all__ = ["MODELS", "Config", "run"]

NAME = "bound-tightness"

#: label -> (cell, scheme, activation, scale) of the models compared.
MODELS: dict[str, tuple[str, str, str, float]] = {
    "elman-smart_tanh": ("rnn", "smart_tanh", "tanh", 1.0),
    "elman-basic_tanh": ("rnn", "basic_tanh", "tanh", 1.0),
    "elman-sigmoid": ("rnn", "sigmoid", "sigmoid", 1.0),
    "elman-gaussian-1.5": ("rnn", "gaussian", "tanh", 1.5),
    "elman-orthogonal": ("rnn", "orthogonal", "tanh", 1.0),
    "lstm": ("lstm", "pytorch", "tanh", 1.0),
    "gru": ("gru", "pytorch", "tanh", 1.0),
}


@dataclass(frozen=True)
class Config:
    """Configuration of ``bound-tightness``.

    Attributes
    ----------
    T : int
        Sequence length (``(T+1)²`` pairs per model).
    n_hidden : int
        Hidden units.
    n_in : int
        Input size; inputs are ``N(0, input_scale²)``.
    input_scale : float
    models : tuple of str
        Keys of :data:`MODELS`.
    figures : {"all", "first", "none"}
        Which models get their heatmap and norm-vs-lag figures.
    """

    T: int = 100
    n_hidden: int = 32
    n_in: int = 2
    input_scale: float = 1.0
    models: tuple[str, ...] = tuple(MODELS)
    figures: str = "all"

    def __post_init__(self) -> None:
        check_int("T", self.T, minimum=2)
        check_int("n_hidden", self.n_hidden, minimum=1)
        check_int("n_in", self.n_in, minimum=1)
        check_sequence("models", self.models)
        # + 0.0 turns -0.0 into 0.0 (NumPy's normal() refuses a scale of -0.0)
        object.__setattr__(self, "input_scale", check_real("input_scale", self.input_scale, low=0.0) + 0.0)
        if not self.models:
            raise ValueError("`models` must name at least one model, got ()")
        for m in self.models:
            check_choice("models", m, tuple(MODELS))
        check_choice("figures", self.figures, ("all", "first", "none"))

    @classmethod
    def full(cls) -> Config:
        """The paper's size: 50 units, T = 200."""
        return cls(T=200, n_hidden=PASCANU_2013_N_HIDDEN)


def build_model(label: str, n_in: int, n_hidden: int, seed: int) -> Any:
    """The model ``label`` of :data:`MODELS` (no readout)."""
    from ..cells.elman import ElmanRNN
    from ..cells.gated import GRU, LSTM

    cell, scheme, act, scale = MODELS[label]
    if cell == "lstm":
        return LSTM.init(n_in, n_hidden, None, scheme=scheme, seed=seed)
    if cell == "gru":
        return GRU.init(n_in, n_hidden, None, scheme=scheme, seed=seed)
    return ElmanRNN.init(n_in, n_hidden, None, scheme=scheme, activation=act, scale=scale, seed=seed)


def _lag_mean(M: np.ndarray) -> np.ndarray:
    """Mean over ``k`` of the finite ``M[k+τ, k]`` for each lag ``τ`` (NaN when none)."""
    n = M.shape[0]
    out = np.full(n, np.nan)
    for tau in range(n):
        d = np.diagonal(M, offset=-tau)
        d = d[np.isfinite(d)]
        if d.size:
            out[tau] = d.mean()
    return out


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Check every bound on every pair of each model's trajectory.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the figures ``bound-tightness-<model>-heatmap.png`` and
        ``bound-tightness-<model>-lag.png``.
    seed : int
        Seeds the inputs (``seed``) and model ``i`` (``seed + i``).

    Returns
    -------
    ExperimentResult
        ``numbers["models"][label]`` holds, per bound, whether it held on every
        pair, the pairs checked, ``max ln(observed/bound)`` and the mean slack at
        the largest lag; the observed rate ``ln‖∂h_T/∂h_0‖ / T``, Eq. 12's rate
        (Elman) and the largest Lyapunov exponent.

    Examples
    --------
    >>> from rnntheory.experiments.bound_tightness import Config, run
    >>> r = run(Config(T=10, n_hidden=4, models=("elman-smart_tanh",)), None, 0)
    >>> r.numbers["models"]["elman-smart_tanh"]["bounds"]["eq12"]["holds"]
    True
    """
    seed = check_run(config, Config, out, seed)
    from .. import bounds, jacobians
    from ..cells.elman import ElmanRNN

    x = np.random.default_rng(seed).normal(0.0, config.input_scale, (config.T, config.n_in))
    per: dict[str, Any] = {}
    figs: list[str] = []
    T = config.T
    for i, label in enumerate(config.models):
        model = build_model(label, config.n_in, config.n_hidden, seed + i)
        trace = model.forward(x)
        cert = bounds.certify(model, trace)
        L = cert.log_norms
        lyap = float(jacobians.lyapunov_spectrum(model, trace, k=1, seed=seed)[0])
        entry: dict[str, Any] = {
            "cell": MODELS[label][0],
            "scheme": MODELS[label][1],
            "activation": MODELS[label][2],
            "observed_rate": float(L[T, 0] / T),
            "lyapunov_max": lyap,
            "bounds": {},
        }
        if isinstance(model, ElmanRNN):
            W = model.W_hh
            entry["gamma_w"] = bounds.gamma_w(W)
            entry["rho"] = bounds.spectral_radius(W)
            entry["gamma_h"] = model.activation.gamma_h
            entry["eq12_rate"] = float(np.log(bounds.decay_rate(W, model.activation)))
        else:
            entry["eq12_rate"] = None
        pair_bounds: dict[str, np.ndarray] = {}
        for chk in cert.checks:
            B = bounds.pair_log_bounds(bounds.step_log_bounds(model, trace, chk.name))
            pair_bounds[chk.name] = B
            with np.errstate(invalid="ignore"):
                slack = _lag_mean(np.where(np.isfinite(L) & np.isfinite(B), B - L, np.nan))
            entry["bounds"][chk.name] = {
                "holds": chk.holds,
                "pairs": chk.pairs_checked,
                "max_log_ratio": chk.max_log_ratio,
                "worst_pair": list(chk.worst_pair),
                "slack_at_T": float(slack[T]) if np.isfinite(slack[T]) else None,
                "statement": chk.statement,
            }
        per[label] = entry
        want = config.figures == "all" or (config.figures == "first" and i == 0)
        if out is not None and want:
            context = (f"{_describe(label)}, n_hidden = {config.n_hidden}, T = {T}, "
                       f"{config.n_in} input{'s' if config.n_in > 1 else ''} ~ N(0, {config.input_scale:g}²), "
                       f"seed {seed + i}")
            figs += _figures(out, label, L, pair_bounds, entry, context)
    numbers = {"T": T, "n_hidden": config.n_hidden, "models": per,
               "all_hold": all(b["holds"] for e in per.values() for b in e["bounds"].values())}
    return ExperimentResult(NAME, {}, numbers, _markdown(numbers, figs), tuple(figs))


def _describe(label: str) -> str:
    """``"Elman (tanh), smart_tanh init"`` for a model label of :data:`MODELS`."""
    cell, scheme, act, scale = MODELS[label]
    if cell == "rnn":
        return f"Elman ({act}), {scheme} init" + (f" × {scale:g}" if scale != 1.0 else "")
    return f"{cell.upper()}, {scheme} init"


def _figures(out: Path, label: str, L: np.ndarray, pair_bounds: dict[str, np.ndarray],
             entry: dict[str, Any], context: str) -> list[str]:
    from .._figures import DPI, figure_style, legend_outside, save_figure, with_context
    from ..plotting import gradient_flow_heatmap, norm_vs_lag

    main = "eq12" if "eq12" in pair_bounds else "gated"
    p1 = figure_path(out, NAME, f"{label}-heatmap")
    p2 = figure_path(out, NAME, f"{label}-lag")
    assert p1 is not None and p2 is not None
    gradient_flow_heatmap(L, p1, bound=pair_bounds[main], context=context)
    rate = entry["eq12_rate"]
    fig = norm_vs_lag(L, None, rate=rate, context=context)
    ax = fig.axes[0]
    lags = np.arange(L.shape[0])
    with figure_style():
        for j, (name, B) in enumerate(pair_bounds.items()):
            if name == "eq12":
                continue  # drawn by norm_vs_lag
            ax.plot(lags, _lag_mean(B), ls=":", lw=1.5, color=f"C{j + 4}",
                    label=f"bound '{name}' (mean over k)", gid=f"bound-{name}")
        ax.plot(lags, lags * entry["lyapunov_max"], ls="-.", lw=1.2, color="C2",
                label=rf"Lyapunov: $\tau\lambda_1$, $\lambda_1$ = {entry['lyapunov_max']:.3g}",
                gid="lyapunov")
        ax.set_title(with_context("Gradient norm against the lag", context), fontsize=10)
        legend_outside(ax, fontsize=7)
    save_figure(fig, p2, DPI)
    return [str(p1), str(p2)]


def _markdown(numbers: dict[str, Any], figs: list[str]) -> str:
    per = numbers["models"]
    T = numbers["T"]
    rows = []
    for label, e in per.items():
        for name, b in e["bounds"].items():
            rows.append([
                label, name, "yes" if b["holds"] else "NO", b["pairs"], b["max_log_ratio"],
                b["slack_at_T"], e["observed_rate"], e["eq12_rate"] if name == "eq12" else None,
                e["lyapunov_max"],
            ])
    lines = [
        f"# bound-tightness: ‖∂h_t/∂h_k‖ against the bounds (T = {T}, n = {numbers['n_hidden']})",
        "",
        markdown_table(
            ["model", "bound", "holds on every pair", "pairs", "max ln(obs/bound)",
             f"slack at lag {T} (ln)", "observed rate ln‖∂h_T/∂h_0‖/T", "Eq. 12 rate ln(γ_W γ_h)",
             "Lyapunov λ₁"],
            rows,
        ),
        "",
        "## Interpretation",
        "",
    ]
    n_b = sum(len(e["bounds"]) for e in per.values())
    n_ok = sum(b["holds"] for e in per.values() for b in e["bounds"].values())
    lines.append(f"- {n_ok} of {n_b} (model, bound) certificates hold on every pair (t, k).")
    for label, e in per.items():
        bs = e["bounds"]
        tight = min(bs, key=lambda n: bs[n]["slack_at_T"] if bs[n]["slack_at_T"] is not None else np.inf)
        parts = [f"**{label}**: the observed rate is {fmt(e['observed_rate'])} per step and λ₁ = "
                 f"{fmt(e['lyapunov_max'])}"]
        if e["eq12_rate"] is not None:
            gap = e["eq12_rate"] - e["lyapunov_max"]
            parts.append(
                f"Eq. 12's rate ln(γ_W γ_h) = {fmt(e['eq12_rate'])} exceeds λ₁ by {fmt(gap)} per step, "
                f"so at lag {T} it overestimates the norm by a factor e^{fmt(bs['eq12']['slack_at_T'])}"
                if bs["eq12"]["slack_at_T"] is not None else
                f"Eq. 12's rate is {fmt(e['eq12_rate'])}"
            )
            if e["eq12_rate"] > 1e-9 and e["lyapunov_max"] < 0:
                parts.append("Eq. 12 allows growth (γ_W γ_h > 1) while the norms actually vanish")
        else:
            parts.append("the article's (γ_W γ_h)^(t−k) does not apply to this gated cell")
        parts.append(f"the tightest bound at lag {T} is '{tight}'")
        lines.append("- " + "; ".join(parts) + ".")
    for f in figs:
        lines += ["", f"![{Path(f).stem}]({Path(f).name})"]
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "observed norms against the bounds and the Lyapunov rate", Config, run)
