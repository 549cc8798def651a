"""``init-spectra``: spectral radius against largest singular value at initialisation.

Pascanu et al. 2013 (§2.1): in the nonlinear case ``σ_max(W_hh) < 1/γ_h`` is
*sufficient* for the long-term components to vanish, whereas the spectral
radius ``ρ(W_hh)`` bounds nothing. Their "smart tanh" initialisation rescales a
sparse ``W_hh`` to ``ρ = 0.95``; its ``σ_max`` is well above 1, so the
sufficient condition does not hold although every eigenvalue lies inside the
unit circle. This experiment draws ``W_hh`` for the three initialisations of
the paper (:meth:`rnntheory.ElmanRNN.init`, schemes ``"sigmoid"``,
``"basic_tanh"``, ``"smart_tanh"``; Pascanu et al. 2013, §4) over several seeds and
reports ``ρ``, ``σ_max``, ``γ_h`` and both conditions of
:mod:`rnntheory.bounds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int
from .registry import (
    Experiment,
    ExperimentResult,
    check_run,
    check_sequence,
    figure_path,
    fmt,
    markdown_table,
    stats,
)
from .runspec import PASCANU_2013_N_HIDDEN

__all__ = ["Config", "run"]

NAME = "init-spectra"
_SCHEMES = ("sigmoid", "basic_tanh", "smart_tanh")


@dataclass(frozen=True)
class Config:
    """Configuration of ``init-spectra``.

    Attributes
    ----------
    n_hidden : int
        Hidden units (50 in the paper).
    seeds : int
        Models drawn per scheme (seeds ``seed … seed + seeds − 1``).
    schemes : tuple of str
        Initialisation schemes of :meth:`rnntheory.ElmanRNN.init`.
    """

    n_hidden: int = PASCANU_2013_N_HIDDEN
    seeds: int = 5
    schemes: tuple[str, ...] = _SCHEMES

    def __post_init__(self) -> None:
        check_int("n_hidden", self.n_hidden, minimum=2)
        check_int("seeds", self.seeds, minimum=1)
        check_sequence("schemes", self.schemes)
        if not self.schemes:
            raise ValueError("`schemes` must name at least one scheme, got ()")
        for s in self.schemes:
            check_choice("schemes", s, _SCHEMES)

    @classmethod
    def full(cls) -> Config:
        """The paper's size (50 units) with 100 seeds per scheme."""
        return cls(n_hidden=PASCANU_2013_N_HIDDEN, seeds=100)


def _draw(scheme: str, n: int, seed: int) -> Any:
    from ..cells.elman import ElmanRNN

    return ElmanRNN.init(1, n, 1, scheme=scheme, seed=seed)


def run(config: Config, out: Path | None, seed: int) -> ExperimentResult:
    """Draw the models, measure ``ρ`` and ``σ_max``, write the table and the figure.

    Parameters
    ----------
    config : Config
    out : Path or None
        Folder for the figure ``init-spectra-eigenvalues.png``.
    seed : int
        Base seed: model ``j`` of every scheme uses seed ``seed + j``.

    Returns
    -------
    ExperimentResult
        ``numbers["schemes"][scheme]`` holds per-seed lists ``rho``, ``sigma_max``,
        ``vanishing_guaranteed``, ``explosion_possible`` and their summaries.

    Examples
    --------
    >>> from rnntheory.experiments.init_spectra import Config, run
    >>> r = run(Config(n_hidden=20, seeds=2, schemes=("smart_tanh",)), None, 0)
    >>> r.numbers["schemes"]["smart_tanh"]["vanishing_guaranteed_count"]
    0
    """
    seed = check_run(config, Config, out, seed)
    from .. import bounds

    per: dict[str, Any] = {}
    mats: dict[str, list[np.ndarray]] = {}
    for scheme in config.schemes:
        rho, smax, van, exp = [], [], [], []
        mats[scheme] = []
        act = None
        for j in range(config.seeds):
            m = _draw(scheme, config.n_hidden, seed + j)
            act = m.activation.name
            W = np.asarray(m.W_hh, np.float64)
            mats[scheme].append(W)
            rho.append(bounds.spectral_radius(W))
            smax.append(bounds.gamma_w(W))
            van.append(bool(bounds.vanishing_guaranteed(W, act)))
            exp.append(bool(bounds.explosion_possible(W, act)))
        assert act is not None
        gh = bounds.gamma_h(act)
        per[scheme] = {
            "activation": act,
            "gamma_h": gh,
            "threshold": 1.0 / gh,
            "seeds": list(range(seed, seed + config.seeds)),
            "rho": {"values": rho, **stats(rho)},
            "sigma_max": {"values": smax, **stats(smax)},
            "ratio_sigma_over_rho": stats(np.asarray(smax) / np.asarray(rho)),
            "vanishing_guaranteed": van,
            "vanishing_guaranteed_count": int(sum(van)),
            "rho_below_1_count": int(sum(r < 1 for r in rho)),
            "explosion_possible": exp,
            "explosion_possible_count": int(sum(exp)),
        }
    smart = per.get("smart_tanh")
    target = None
    if smart is not None:
        target = {
            "rho_mean": smart["rho"]["mean"],
            "sigma_max_mean": smart["sigma_max"]["mean"],
            "reference": "smart tanh: ρ ≈ 0.95 with σ_max ≈ 1.6–1.8 (Pascanu et al. 2013, §4)",
            "sigma_max_in_1.6_1.8": bool(1.6 <= smart["sigma_max"]["mean"] <= 1.8),
        }
    numbers = {"n_hidden": config.n_hidden, "schemes": per, "target": target}
    figs: list[str] = []
    p = figure_path(out, NAME, "eigenvalues")
    if p is not None:
        from ..plotting import eigenvalues_unit_circle

        labels = {s: f"{s} ({per[s]['activation']}, {len(v)} seeds)" for s, v in mats.items()}
        last = seed + config.seeds - 1
        eigenvalues_unit_circle(
            {labels[s]: v for s, v in mats.items()}, p,
            activations={labels[s]: per[s]["activation"] for s in mats},
            context=(f"init-spectra: W_hh of Elman RNNs at initialisation, n_hidden = "
                     f"{config.n_hidden}, seed{'s' if last > seed else ''} "
                     f"{seed}{f'–{last}' if last > seed else ''}"),
        )
        figs.append(str(p))
    return ExperimentResult(NAME, {}, numbers, _markdown(numbers, config, figs), tuple(figs))


def _rng_text(d: dict[str, float]) -> str:
    if d["max"] - d["min"] < 5e-4 * max(1.0, abs(d["mean"])):
        return fmt(d["mean"], 4)
    return f"{fmt(d['mean'], 4)} [{fmt(d['min'], 3)}, {fmt(d['max'], 3)}]"


def _markdown(numbers: dict[str, Any], config: Config, figs: list[str]) -> str:
    per = numbers["schemes"]
    k = config.seeds
    rows = []
    for s, d in per.items():
        rows.append([
            s, d["activation"], fmt(d["gamma_h"]), _rng_text(d["rho"]), _rng_text(d["sigma_max"]),
            fmt(d["threshold"]), f"{d['rho_below_1_count']}/{k}",
            f"{d['vanishing_guaranteed_count']}/{k}", f"{d['explosion_possible_count']}/{k}",
        ])
    lines = [
        f"# init-spectra: ρ vs σ_max of W_hh ({config.n_hidden} units, {k} seeds per scheme)",
        "",
        markdown_table(
            ["scheme", "f", "γ_h", "ρ(W_hh) mean [min, max]", "σ_max(W_hh) mean [min, max]",
             "1/γ_h", "ρ < 1", "σ_max < 1/γ_h (vanishing guaranteed)", "σ_max > 1/γ_h (explosion possible)"],
            rows,
        ),
        "",
        "## Interpretation",
        "",
    ]
    for s, d in per.items():
        r, sm = d["rho"], d["sigma_max"]
        gap = d["ratio_sigma_over_rho"]["mean"]
        if d["vanishing_guaranteed_count"] == k:
            verdict = (
                f"σ_max < 1/γ_h = {fmt(d['threshold'])} in every seed, so Eq. 12 guarantees that "
                f"‖∂h_t/∂h_k‖ decays at least like ({fmt(sm['max'] * d['gamma_h'])})^(t−k)"
            )
        elif d["vanishing_guaranteed_count"] == 0:
            verdict = (
                f"σ_max ≥ 1/γ_h = {fmt(d['threshold'])} in every seed, so the sufficient "
                "condition for vanishing does not hold"
            )
        else:
            verdict = (
                f"the sufficient condition σ_max < 1/γ_h holds in {d['vanishing_guaranteed_count']} "
                f"of {k} seeds"
            )
        trap = ""
        if d["rho_below_1_count"] == k and d["vanishing_guaranteed_count"] < k:
            trap = (
                " Every eigenvalue lies inside the unit circle (ρ < 1) yet vanishing is not "
                "guaranteed: ρ < 1 is not a sufficient condition in the nonlinear case."
            )
        lines.append(
            f"- **{s}**: ρ = {_rng_text(r)}, σ_max = {_rng_text(sm)} (σ_max/ρ = {fmt(gap)}); "
            f"{verdict}.{trap}"
        )
    t = numbers["target"]
    if t is not None:
        inside = "inside" if t["sigma_max_in_1.6_1.8"] else "outside"
        lines += [
            "",
            f"Target ({t['reference']}): measured ρ = {fmt(t['rho_mean'], 4)} and "
            f"σ_max = {fmt(t['sigma_max_mean'], 4)} ({inside} the range 1.6–1.8).",
        ]
    if figs:
        lines += ["", f"![eigenvalues against the unit circle]({Path(figs[0]).name})"]
    return "\n".join(lines)


EXPERIMENT = Experiment(NAME, "ρ vs σ_max of W_hh for the three initialisations", Config, run)
