"""The numeric checks behind ``rnntheory verify``.

Each check runs over an embedded default set of models (random Gaussian
weights at several scales and Pascanu et al.'s initialisations, tanh and
sigmoid, standard and Pascanu forms, with and without leak; T = 100) and
returns a :class:`CheckResult`. Oracles are independent of the kernels they
check: central finite differences of a NumPy re-implementation of one step,
and SVDs of explicit products.

The checks themselves live in the topic modules of :mod:`rnntheory.checks`,
registered with :func:`rnntheory.checks.check`; :func:`run_checks` runs the
registry in its order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from . import bounds as bd
from . import jacobians as jac
from ._tables import markdown_table
from .cells.elman import ElmanRNN
from .checks import CheckContext, registry
from .checks._context import VerifyConfig, check_cfg, default_models
from .checks._result import CheckResult

__all__ = ["CheckResult", "VerifyConfig", "default_models", "run_checks", "write_report"]


def _check_progress(progress: Any) -> None:
    if progress is not None and not isinstance(progress, bool | np.bool_):
        raise TypeError(f"`progress` must be True, False or None, got {progress!r}")


def run_checks(cfg: VerifyConfig | None = None, *, progress: bool | None = None) -> Iterator[CheckResult]:
    """Run every numeric check, yielding one :class:`CheckResult` at a time."""
    from tqdm import tqdm

    cfg = VerifyConfig() if cfg is None else check_cfg(cfg)
    _check_progress(progress)
    ctx = CheckContext(cfg)
    jobs = registry()
    bar = tqdm(jobs, desc="verify", unit="check", disable=(None if progress is None else not progress), leave=False)
    for job in bar:
        t0 = time.perf_counter()
        r = job.run(ctx)
        fields = asdict(r)
        fields.update(passed=bool(r.passed), worst=float(r.worst), seconds=time.perf_counter() - t0)
        yield CheckResult(**fields)


def write_report(
    rows: list[CheckResult],
    out_dir: Any,
    cfg: VerifyConfig | None = None,
    claims: list[Any] | None = None,
) -> Path:
    """Write ``verify.md`` and its figures into ``out_dir`` (``rnntheory verify --report``).

    The page holds the table of checks (and of the claims, when the ledger ran)
    and, for three of the embedded default models (Pascanu et al.'s smart tanh,
    basic tanh and sigmoid initialisations, standard form, no leak), the figures
    the theory is about, computed here from the models:

    * ``flow-<init>.png``: the heatmap of ``ln ‖∂h_t/∂h_k‖`` with the contours
      of the Eq. 12 bound ``(t − k) ln(γ_W γ_h)``;
    * ``lag-<init>.png``: the norm against the lag, with the bound's line;
    * ``eigenvalues.png``: the eigenvalues of each ``W_hh`` against the unit
      circle and the ``σ_max`` circle.

    Parameters
    ----------
    rows : list of CheckResult
        From :func:`run_checks`.
    out_dir : str or os.PathLike
        Created when missing.
    cfg : VerifyConfig, optional
        The configuration the rows were computed with (default ``VerifyConfig()``).
    claims : list of ledger results, optional

    Returns
    -------
    pathlib.Path
        The Markdown file.

    Examples
    --------
    >>> import tempfile
    >>> from rnntheory.verification import CheckResult, VerifyConfig, write_report
    >>> row = CheckResult("demo", "a claim", 1, 1, 0.0, True)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     page = write_report([row], d, VerifyConfig(T=10))
    ...     "| demo |" in page.read_text()
    True
    """
    from .plotting import eigenvalues_unit_circle, gradient_flow_heatmap, norm_vs_lag

    cfg = VerifyConfig() if cfg is None else check_cfg(cfg)
    if isinstance(rows, str | bytes) or not isinstance(rows, list | tuple):
        raise TypeError(f"`rows` must be a list of CheckResult, got {type(rows).__name__}")
    for r in rows:
        if not isinstance(r, CheckResult):
            raise TypeError(f"`rows` must hold CheckResult records, got {type(r).__name__}")
    if claims is not None:
        if isinstance(claims, str | bytes) or not isinstance(claims, list | tuple):
            raise TypeError(f"`claims` must be a list of ledger results or None, got {type(claims).__name__}")
        for c in claims:
            if not all(hasattr(c, a) for a in ("id", "verdict", "verified", "claim")):
                raise TypeError(f"`claims` must hold ledger results (ClaimResult), got {type(c).__name__}")
    if not isinstance(out_dir, str | os.PathLike) or str(out_dir) == "":
        raise TypeError(f"`out_dir` must be a non-empty str or os.PathLike, got {out_dir!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# rnntheory verify",
        "",
        f"Embedded default: T = {cfg.T}, n = {cfg.n_hidden}, seed = {cfg.seed}. "
        f"{sum(r.passed for r in rows)}/{len(rows)} checks passed. "
        "'worst' is max ln(observed/bound) for bounds (≤ 0 holds), the largest "
        "relative error for identities.",
        "",
        markdown_table(
            ["check", "models", "pairs", "worst", "verdict", "claim"],
            [[r.check, r.models, r.pairs, f"{r.worst:.3e}" if np.isfinite(r.worst) else str(r.worst),
              "pass" if r.passed else "FAIL", r.claim] for r in rows],
            align=["left", "right", "right", "right", "left", "left"],
        ),
    ]
    if claims:
        lines += ["", "## Claims ledger", "",
                  markdown_table(["ID", "verdict", "re-verified", "claim"],
                                 [[c.id, c.verdict, "yes" if c.verified else "NO", c.claim]
                                  for c in claims])]
    lines += ["", "## Gradient flow of three default models", ""]
    picked: dict[str, tuple[ElmanRNN, np.ndarray]] = {}
    for label, m, x in default_models(cfg):
        init = label.split("/")[1]
        if label.endswith("/standard") and init in ("smart_tanh", "basic_tanh", "sigmoid"):
            picked.setdefault(init, (m, x))
    mats: dict[str, list[np.ndarray]] = {}
    acts: dict[str, str] = {}
    for init, (m, x) in picked.items():
        L = jac.log_norms(m, m.forward(x))
        rate = float(np.log(bd.decay_rate(m.W_hh, m.activation)))
        lag = np.subtract.outer(np.arange(L.shape[0]), np.arange(L.shape[0])).astype(float)
        bound = np.where(lag >= 0, lag * rate, -np.inf)
        context = (f"Elman ({m.activation.name}), {init} init, n_hidden = {m.n_hidden}, "
                   f"T = {L.shape[0] - 1}, verify's default inputs, seed {cfg.seed}")
        gradient_flow_heatmap(L, out / f"flow-{init}.png", bound=bound, context=context)
        norm_vs_lag(L, out / f"lag-{init}.png", rate=rate, context=context)
        mats[init] = [m.W_hh]
        acts[init] = m.activation.name
        finite = L[np.isfinite(L) & (lag > 0)]
        lines += [
            f"### {init}",
            "",
            f"γ_W = {bd.gamma_w(m.W_hh):.3f}, ρ = {bd.spectral_radius(m.W_hh):.3f}, "
            f"γ_h = {m.activation.gamma_h:.3f}; Eq. 12 rate ln(γ_W γ_h) = {rate:.3f} per step; "
            f"largest observed ln‖∂h_t/∂h_k‖ − (t − k)·rate = "
            f"{float(np.max(L[lag > 0] - bound[lag > 0])):.3f} over {finite.size} pairs.",
            "",
            f"![flow {init}](flow-{init}.png) ![lag {init}](lag-{init}.png)",
            "",
        ]
    eigenvalues_unit_circle(mats, out / "eigenvalues.png", activations=acts,
                            context=f"W_hh of verify's default Elman models, n_hidden = "
                                    f"{cfg.n_hidden}, seed {cfg.seed}")
    lines += ["## Eigenvalues against the unit circle", "", "![eigenvalues](eigenvalues.png)", ""]
    page = out / "verify.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
