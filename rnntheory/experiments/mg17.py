"""``mg17-esn``: the echo state network on Mackey–Glass τ = 17, NRMSE84 over runs.

Holds Jaeger's protocol, :func:`mackey_glass_protocol` (Jaeger 2001: teacher-forced
output-feedback ESN, 1000 washout steps, 3000 training steps, 84 free-running
steps; a fresh reservoir and a fresh series per run) with the protocol's own
defaults and compares the NRMSE84 over the runs with Jaeger's 2.8·10⁻⁴
(400 units, 3000 training steps; Jaeger 2001, *The "echo state" approach to
analysing and training recurrent neural networks*, GMD Report 148).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from .._validation import (
    as_float_array,
    check_int,
    check_real,
    check_seed,
    deprecated_alias,
    renamed_arguments,
)
from ..esn import ESN, nrmse, random_esn, ridge_gains, ridge_path, ridge_regression
from ..tasks import mackey_glass
from .registry import Experiment, ExperimentResult, check_run, figure_path, fmt, markdown_table

__all__ = ["JAEGER_2001", "Config", "MG17Result", "mackey_glass_protocol", "run"]

NAME = "mg17-esn"
#: Jaeger (2001), 400 units, 3 000 training steps: NRMSE84.
JAEGER_2001 = 2.8e-4
# The protocol's published sizes (Jaeger 2001, *The "echo state" approach to
# analysing and training recurrent neural networks*, GMD Report 148), written
# once for the experiment's Config and the protocol's defaults.
#: Reservoir size of Jaeger's (2001) Mackey–Glass protocol.
JAEGER_2001_UNITS = 400
#: Independent runs of Jaeger's (2001) protocol.
JAEGER_2001_RUNS = 50
#: Teacher-forced steps discarded before training (Jaeger 2001).
JAEGER_2001_WASHOUT = 1000
#: Teacher-forced training steps (Jaeger 2001).
JAEGER_2001_TRAIN = 3000
#: Free-running prediction horizon, the 84 of NRMSE84 (Jaeger 2001).
JAEGER_2001_HORIZON = 84


@dataclass(frozen=True)
class Config:
    """Configuration of ``mg17-esn``.

    Attributes
    ----------
    n_hidden : int
        Reservoir size (400 in Jaeger 2001). (Formerly ``n_units``: the
        keyword and the attribute still work for one release, with a
        ``DeprecationWarning``.)
    runs : int
        Independent runs (50 in Jaeger 2001).
    washout, train, horizon : int
        The protocol's lengths (1000, 3000, 84).
    """

    n_hidden: int = JAEGER_2001_UNITS
    runs: int = JAEGER_2001_RUNS
    washout: int = JAEGER_2001_WASHOUT
    train: int = JAEGER_2001_TRAIN
    horizon: int = JAEGER_2001_HORIZON

    def __post_init__(self) -> None:
        check_int("n_hidden", self.n_hidden, minimum=1)
        check_int("runs", self.runs, minimum=1)
        check_int("washout", self.washout, minimum=0)
        check_int("train", self.train, minimum=1)
        check_int("horizon", self.horizon, minimum=1)

    @classmethod
    def full(cls) -> Config:
        """Jaeger's protocol: 400 units, 50 runs (the default already is: it
        takes about half a minute)."""
        return cls(runs=JAEGER_2001_RUNS)

    n_units = deprecated_alias("n_hidden")
    """Deprecated spelling of :attr:`n_hidden` (removed in the next release)."""


Config.__init__ = renamed_arguments(n_units="n_hidden")(Config.__init__)  # type: ignore[method-assign]


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Run the protocol and compare NRMSE84 with Jaeger's 2.8·10⁻⁴.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for ``mg17-esn-runs.png`` (per-run errors against the reference).
    seed : int
        The protocol's seed (run ``r`` uses ``[seed, r]``).

    Returns
    -------
    ExperimentResult
        ``numbers``: ``nrmse84``, ``log10_nrmse84``, ``below_jaeger``,
        ``per_run_nrmse`` (``sqrt(err_r/σ²)``), ``train_nrmse`` and the settings.

    Examples
    --------
    >>> from rnntheory.experiments.mg17 import Config, run
    >>> r = run(Config(n_hidden=50, runs=2, washout=100, train=300, horizon=10), None, 0)
    >>> len(r.numbers["per_run_nrmse"])
    2
    """
    seed = check_run(config, Config, out, seed)
    import inspect

    kw: dict[str, Any] = {}
    val = inspect.signature(mackey_glass_protocol).parameters.get("validation")
    if val is not None and not config.horizon < val.default < config.train:
        # a small test configuration: shrink the protocol's validation window to fit
        kw["validation"] = max(config.horizon + 1, config.train // 2)
    res = mackey_glass_protocol(
        config.n_hidden, config.runs, seed=seed, washout=config.washout, train=config.train,
        horizon=config.horizon, **kw,
    )
    per_run = np.sqrt(np.asarray(res.squared_errors, np.float64) / res.variance)
    numbers: dict[str, Any] = {
        "nrmse84": float(res.nrmse84),
        "log10_nrmse84": float(np.log10(res.nrmse84)) if res.nrmse84 > 0 else None,
        "reference": JAEGER_2001,
        "below_jaeger": bool(res.nrmse84 < JAEGER_2001),
        "ratio_to_jaeger": float(res.nrmse84 / JAEGER_2001),
        "per_run_nrmse": [float(v) for v in per_run],
        "per_run_median": float(np.median(per_run)),
        "runs_below_jaeger": int(np.sum(per_run < JAEGER_2001)),
        "train_nrmse_median": float(np.median(res.train_nrmse)),
        "variance": float(res.variance),
        "settings": {k: (v if isinstance(v, int | float | str | bool) or v is None else repr(v))
                     for k, v in dict(res.settings).items()},
    }
    figs: list[str] = []
    p = figure_path(out, NAME, "runs")
    if p is not None:
        _figure(p, per_run, float(res.nrmse84), config)
        figs.append(str(p))
    return ExperimentResult(NAME, {}, numbers, _markdown(numbers, config, figs), tuple(figs))


def _figure(path: Path, per_run: np.ndarray, pooled: float, config: Config) -> None:
    from .._figures import DPI, figure_style, legend_outside, new_figure, save_figure

    fig = new_figure((8.0, 3.6))
    with figure_style():
        ax = fig.add_subplot()
        runs = np.arange(per_run.size)
        shown = np.maximum(per_run, 1e-12)  # an exact 0 is drawn at the floor of the axis
        ax.semilogy(runs, shown, "o", color="C0", ms=4, label="per-run NRMSE at step 84", gid="runs")
        ax.axhline(pooled, color="C0", lw=1.5, label=f"NRMSE84 over the runs = {pooled:.3g}", gid="pooled")
        ax.axhline(JAEGER_2001, color="C3", ls="--", lw=1.5, label="Jaeger 2001: 2.8e-4", gid="jaeger")
        ax.set_xlabel("run")
        ax.set_ylabel("NRMSE")
        ax.set_title(f"ESN (n_hidden = {config.n_hidden}) on Mackey–Glass τ = 17: {config.runs} "
                     f"runs, {config.train} training steps, error {config.horizon} steps ahead",
                     fontsize=9)
        legend_outside(ax)
        ax.grid(alpha=0.3, which="both")
    save_figure(fig, path, DPI)


def _markdown(n: dict[str, Any], config: Config, figs: list[str]) -> str:
    rows = [[config.n_hidden, config.runs, config.train, n["nrmse84"], n["log10_nrmse84"],
             n["per_run_median"], f"{n['runs_below_jaeger']}/{config.runs}", JAEGER_2001,
             "yes" if n["below_jaeger"] else "no"]]
    comp = "below" if n["below_jaeger"] else "above"
    lines = [
        f"# mg17-esn: Mackey–Glass τ = 17, NRMSE84 over {config.runs} runs",
        "",
        markdown_table(
            ["units", "runs", "training steps", "NRMSE84", "log10 NRMSE84", "median per-run NRMSE",
             "runs below 2.8e-4", "Jaeger 2001", "below Jaeger"],
            rows,
        ),
        "",
        "## Interpretation",
        "",
        f"- NRMSE84 = {fmt(n['nrmse84'])} is {fmt(n['ratio_to_jaeger'])} × Jaeger's 2.8·10⁻⁴, "
        f"i.e. {comp} the reference, with the protocol's default reservoir "
        f"(settings: {', '.join(f'{k} = {v}' for k, v in n['settings'].items())}).",
        (
            "- The pooled error is dominated by the worst runs: "
            if n["nrmse84"] > 1.5 * n["per_run_median"] else
            "- The runs are of similar quality: "
        )
        + f"the median run's NRMSE is {fmt(n['per_run_median'])}, and "
        f"{n['runs_below_jaeger']} of {config.runs} runs are individually below the reference.",
        f"- The one-step teacher-forced training NRMSE (median {fmt(n['train_nrmse_median'])}) "
        "is far smaller than the 84-step free-running error: the readout is fitted under "
        "teacher forcing and errors compound once the network feeds back its own output.",
    ]
    if figs:
        lines += ["", f"![per-run errors]({Path(figs[0]).name})"]
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "ESN on Mackey–Glass: NRMSE84 over runs", Config, run)


# ----------------------------------------------------------------------------- the protocol

RIDGE_GRID: tuple[float, ...] = tuple(10.0**k for k in range(-16, -7))
"""Default ridge candidates of :func:`mackey_glass_protocol`: ``10⁻¹⁶, 10⁻¹⁵, …, 10⁻⁸``."""


def _free_run_batch(
    esn: ESN, W_out: np.ndarray, X0: np.ndarray, Y0: np.ndarray, n_steps: int
) -> np.ndarray:
    """Free-run ``K`` copies of an input-free ESN at once; return ``ŷ`` after ``n_steps``.

    Row ``k`` of ``X0`` / ``Y0`` is one start ``(x_t, y_t)``; the update is the
    one of :meth:`rnntheory.esn.ESN.generate` with ``W_out`` (shape ``(n_out, n + 1)``).
    """
    n = esn.n_hidden
    W_x, c = W_out[:, :n], W_out[:, n]
    X, Y = X0.copy(), Y0.copy()
    a = esn.leak_rate
    for _ in range(n_steps):
        # (W Xᵀ)ᵀ rather than X Wᵀ: the same product for a dense or a sparse W
        new = np.tanh((esn.W @ X.T).T + Y @ esn.W_fb.T + esn.b)
        X = new if isinstance(a, float) and a == 1.0 else (1.0 - a) * X + a * new
        Y = X @ W_x.T + c
    return Y


_ridge_gains = ridge_gains  # the filter s/(s² + λ), shared with rnntheory.esn.ridge_path


def _select_ridge(
    esn: ESN, states: np.ndarray, teacher: np.ndarray, grid: np.ndarray,
    validation: int, horizon: int, starts: int,
) -> tuple[float, np.ndarray]:
    """Choose λ by free-running validation inside the training segment.

    ``states`` and ``teacher`` are the teacher-forced training segment (washout
    removed, ``T`` rows, no external input). The readout is fitted for every
    λ in ``grid`` on the first ``T − validation`` rows by
    :func:`rnntheory.esn.ridge_path` (one SVD: ``w(λ) = V diag(s/(s² + λ)) Uᵀ y``,
    the ridge path every ``fit`` uses to select λ); from ``starts`` evenly spaced
    teacher-forced states in the last ``validation`` rows the network then
    runs freely for ``horizon`` steps. The score of λ is the mean squared
    error at the horizon; the smallest score wins (the first on ties).
    """
    T = states.shape[0]
    m = T - validation
    Z = np.hstack([states[:m], np.ones((m, 1))])
    readouts = ridge_path(Z, teacher[:m], grid)
    t0 = np.unique(np.linspace(m, T - 1 - horizon, starts).round().astype(int))
    scores = np.empty(grid.size)
    for i, W_out in enumerate(readouts):
        # a λ that leaves the readout beyond float64's range scores inf, as
        # any non-finite error does
        with np.errstate(over="ignore", invalid="ignore"):
            Y_h = _free_run_batch(esn, W_out, states[t0], teacher[t0], horizon)
            err = np.mean((Y_h - teacher[t0 + horizon]) ** 2)
        scores[i] = err if np.isfinite(err) else np.inf
    return float(grid[int(np.argmin(scores))]), scores


@dataclass(frozen=True, eq=False)
class MG17Result:
    """Result of :func:`mackey_glass_protocol`.

    Attributes
    ----------
    nrmse84 : float
        ``sqrt(mean_runs (s_true − ŝ)² at the horizon / var(s))``, with ``s``
        the squashed signal ``tanh(y − 1)`` the network is trained on.
    squared_errors : ndarray, shape (runs,)
        Per-run squared error at the horizon (squashed coordinates).
    variance : float
        ``var(s)``, pooled over the runs' training segments.
    train_nrmse : ndarray, shape (runs,)
        Per-run teacher-forced training NRMSE (one step).
    settings : dict
        The protocol's and the reservoir's settings.
    ridges : ndarray, shape (runs,)
        The ridge ``λ`` each run used (chosen by validation when ``ridge`` is None).
    nrmse84_original : float
        The same error in the original Mackey–Glass coordinates: the
        prediction mapped back by ``y = 1 + artanh(ŝ)``, normalised by the
        pooled variance of the unsquashed ``y`` (``inf`` if a prediction left
        ``(−1, 1)``).
    variance_original : float
        ``var(y)``, pooled over the runs' training segments.
    """

    nrmse84: float
    squared_errors: np.ndarray
    variance: float
    train_nrmse: np.ndarray
    settings: dict[str, Any]
    ridges: np.ndarray
    nrmse84_original: float
    variance_original: float

    @property
    def per_run(self) -> np.ndarray:
        """Per-run normalised error ``|s_true − ŝ| / sqrt(var(s))`` at the horizon."""
        return np.sqrt(self.squared_errors / self.variance)


@renamed_arguments(n_units="n_hidden", leak="leak_rate")
def mackey_glass_protocol(
    n_hidden: int = JAEGER_2001_UNITS,
    runs: int = JAEGER_2001_RUNS,
    *,
    seed: int = 0,
    washout: int = JAEGER_2001_WASHOUT,
    train: int = JAEGER_2001_TRAIN,
    horizon: int = JAEGER_2001_HORIZON,
    spectral_radius: float = 0.9,
    connectivity: float = 0.05,
    feedback_scaling: float = 1.0,
    bias_scaling: float = 0.5,
    leak_rate: float = 0.5,
    ridge: float | None = None,
    ridge_grid: Any = RIDGE_GRID,
    validation: int = 500,
    validation_starts: int = 10,
    noise: float = 0.0,
) -> MG17Result:
    r"""Jaeger's (2001) Mackey–Glass (τ = 17) 84-step prediction benchmark.

    For each run ``r`` (generator ``np.random.default_rng([seed, r])``: a new
    reservoir and a new series from a new random initial history, see
    :func:`rnntheory.tasks.mackey_glass`) an output-feedback ESN without
    external input (bias ``b`` only) is teacher-forced on ``washout + train``
    samples of the squashed series ``s = tanh(y − 1)``; the readout is fitted
    on the last ``train`` states; the network then runs freely for
    ``horizon`` steps, and ``(s_true − ŝ)²`` at the horizon is recorded.

    .. math::

        \mathrm{NRMSE}_{84} = \sqrt{\frac{1}{R}\sum_{r=1}^{R}
            \big(s_r(T + 84) - \hat s_r(T + 84)\big)^2 \big/ \sigma^2},

    with ``σ²`` the variance of ``s`` pooled over the runs' training segments
    (the same coordinates as the errors). :attr:`MG17Result.nrmse84_original`
    gives the error in the unsquashed coordinates, normalised by ``var(y)``.

    The ridge ``λ`` is chosen per run when ``ridge`` is None, from the
    training segment alone: for every ``λ`` in ``ridge_grid`` the readout is
    fitted on the first ``train − validation`` steps and the network runs
    freely for ``horizon`` steps from ``validation_starts`` teacher-forced
    states in the last ``validation`` steps; the ``λ`` with the smallest mean
    squared error at the horizon is refitted on all ``train`` steps. The
    test continuation is never seen.

    Defaults (400 units, ρ(W) = 0.9, 5 % connectivity, leak rate 0.5, feedback
    and bias scalings 1.0 and 0.5, validated ridge) were chosen on the seed
    sequences 1 and 2, not on the reported ``seed=0``. Jaeger (2001), 400
    units, 3 000 training steps: 2.8·10⁻⁴ (:data:`JAEGER_2001`).

    Parameters
    ----------
    n_hidden, runs : int
        Reservoir size and number of runs.
    seed : int
        Seed of the run sequence, in ``[0, 2**64)``.
    washout, train, horizon : int
        Discarded, trained and predicted steps.
    spectral_radius, connectivity, feedback_scaling, bias_scaling, leak_rate : float
        Reservoir settings, see :func:`rnntheory.esn.random_esn`.
    ridge : float or None
        A fixed ``λ >= 0``, or None to choose it per run by validation.
    ridge_grid : sequence of float
        Candidates for ``λ`` (each ``>= 0``) when ``ridge`` is None.
    validation : int
        Steps at the end of the training segment held out to choose ``λ``;
        ``horizon < validation < train``.
    validation_starts : int
        Free-running validation starts (``>= 1``).
    noise : float
        State noise during harvesting, see :meth:`rnntheory.esn.ESN.run` (0: none).
        (``n_units`` and ``leak`` are the former names of ``n_hidden`` and
        ``leak_rate``; they still work as keywords for one release, with a
        ``DeprecationWarning``, as do this function's old names in
        :mod:`rnntheory.esn`, where it lived until this release.)

    Returns
    -------
    MG17Result

    Raises
    ------
    ValueError
        If a count or scaling is out of range, ``validation`` does not satisfy
        ``horizon < validation < train``, or ``ridge_grid`` is empty or has a
        negative entry.

    Examples
    --------
    >>> from rnntheory.experiments.mg17 import mackey_glass_protocol
    >>> r = mackey_glass_protocol(200, runs=2, washout=300, train=1000, horizon=20,
    ...                           validation=200, validation_starts=5)
    >>> bool(r.nrmse84 < 0.05), r.ridges.shape
    (True, (2,))
    """
    n_hidden = check_int("n_hidden", n_hidden, minimum=1)
    runs = check_int("runs", runs, minimum=1)
    seed = cast(int, check_seed("seed", seed, allow_generator=False, allow_none=False))
    washout = check_int("washout", washout, minimum=0)
    train = check_int("train", train, minimum=1)
    horizon = check_int("horizon", horizon, minimum=1)
    noise = check_real("noise", noise, low=0.0)
    if ridge is not None:
        ridge = check_real("ridge", ridge, low=0.0)
        grid = np.array([ridge])
    else:
        grid = as_float_array("ridge_grid", ridge_grid, ndim=1, dtype=np.dtype(np.float64))
        if grid.size == 0 or np.any(grid < 0):
            raise ValueError(f"`ridge_grid` must be a non-empty sequence of λ >= 0, got {grid}")
        validation = check_int("validation", validation, minimum=1)
        validation_starts = check_int("validation_starts", validation_starts, minimum=1)
        if not horizon < validation < train:
            raise ValueError(
                f"`validation` must satisfy horizon={horizon} < validation < train={train},"
                f" got {validation}"
            )
    sq = np.empty(runs)
    tr = np.empty(runs)
    lams = np.empty(runs)
    orig = np.empty(runs)
    signals = []
    for r in range(runs):
        rng = np.random.default_rng([seed, r])
        s = mackey_glass(washout + train + horizon, seed=rng)[:, None]
        teach, future = s[: washout + train], s[washout + train :]
        esn = random_esn(
            n_hidden, 0, 1, spectral_radius=spectral_radius, connectivity=connectivity,
            feedback_scaling=feedback_scaling, bias_scaling=bias_scaling, leak_rate=leak_rate, seed=rng,
        )
        states = esn.run(None, teach, noise=noise, seed=rng)
        if ridge is None:
            lam, _ = _select_ridge(
                esn, states[washout:], teach[washout:], grid, validation, horizon, validation_starts
            )
        else:
            lam = ridge
        Z = esn.features(states[washout:])
        W_out = ridge_regression(Z, teach[washout:], lam)
        trained = replace(esn, W_out=W_out)
        gen = trained.generate(horizon, x0=states[-1], y0=teach[-1])
        pred, true = gen.outputs[-1, 0], future[-1, 0]
        sq[r] = float((pred - true) ** 2)
        # back to the original coordinates y = 1 + artanh(s) (ŝ outside (−1, 1): no y)
        orig[r] = float((np.arctanh(pred) - np.arctanh(true)) ** 2) if abs(pred) < 1 else np.inf
        resid = Z @ W_out.T - teach[washout:]
        tr[r] = nrmse(resid, teach[washout:])
        lams[r] = lam
        signals.append(teach[washout:, 0])
    pooled = np.concatenate(signals)
    var = float(np.var(pooled))
    var_orig = float(np.var(np.arctanh(pooled)))  # y − 1 = artanh(s): the same variance as y
    settings: dict[str, Any] = dict(
        n_hidden=n_hidden, runs=runs, seed=seed, washout=washout, train=train, horizon=horizon,
        spectral_radius=spectral_radius, connectivity=connectivity,
        feedback_scaling=feedback_scaling, bias_scaling=bias_scaling, leak_rate=leak_rate,
        ridge="validated" if ridge is None else ridge, noise=noise,
    )
    if ridge is None:
        settings.update(
            ridge_grid=tuple(float(g) for g in grid), validation=validation,
            validation_starts=validation_starts,
        )
    return MG17Result(
        nrmse84=float(np.sqrt(sq.mean() / var)),
        squared_errors=sq,
        variance=var,
        train_nrmse=tr,
        settings=settings,
        ridges=lams,
        nrmse84_original=float(np.sqrt(orig.mean() / var_orig)),
        variance_original=var_orig,
    )
