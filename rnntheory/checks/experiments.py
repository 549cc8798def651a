"""``verify`` rows on the experiments: the paper's initialisations' spectra, the
memoryless baselines of the copy and adding tasks, a sweep's resumption after an
interruption, and the sweep's gradient-flow metric against explicit products."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cells.elman import ElmanRNN
from ..experiments.copy_adding import copy_baseline, measured_baseline
from ..experiments.runspec import RunSpec, flow_metric
from ..experiments.sweep import run_sweep
from . import check
from ._context import CheckContext
from ._result import CheckResult


@check("init-spectra", order=250)
def init_spectra(ctx: CheckContext) -> CheckResult:
    """Verify row: ρ(W) ≤ σ_max(W) for the paper's three initialisations, and smart
    tanh has ρ = 0.95 while σ_max > 1/γ_h = 1 (ρ < 1 does not give the sufficient
    vanishing condition). 50 units, seeds 0–4; NumPy eigvals and SVD."""
    t0 = time.perf_counter()
    worst = -np.inf
    tried = 0
    smart_ok = True
    for scheme in ("sigmoid", "basic_tanh", "smart_tanh"):
        for s in range(5):
            W = np.asarray(ElmanRNN.init(1, 50, 1, scheme=scheme, seed=s).W_hh, np.float64)
            rho = float(np.max(np.abs(np.linalg.eigvals(W))))
            smax = float(np.linalg.svd(W, compute_uv=False)[0])
            worst = max(worst, np.log(rho / smax))
            tried += 1
            if scheme == "smart_tanh":
                smart_ok &= abs(rho - 0.95) < 1e-9 and smax > 1.0
    return CheckResult(
        "init-spectra",
        "ρ(W_hh) ≤ σ_max(W_hh); smart tanh: ρ = 0.95 yet σ_max > 1/γ_h (Pascanu §2.1)",
        tried, tried, float(worst), bool(worst <= 1e-12 and smart_ok),
        "max ln(ρ/σ_max) over sigmoid / basic tanh / smart tanh, 50 units, 5 seeds each"
        + ("" if smart_ok else "; smart tanh: ρ ≠ 0.95 or σ_max ≤ 1"),
        time.perf_counter() - t0,
    )


@check("memoryless-baselines", order=260)
def memoryless_baselines(ctx: CheckContext) -> CheckResult:
    """Verify row: the memoryless predictors reach exactly the analytic baselines:
    copy ``10 ln 8 / (T + 20)`` (T = 5, 50, 100; relative error), adding ``1/6``
    (2000 fresh sequences, T = 100; within 4 standard errors of the sampling)."""
    t0 = time.perf_counter()
    rel = [abs(measured_baseline("copy", T, 64, T) / copy_baseline(T) - 1.0) for T in (5, 50, 100)]
    n = 2000
    z = abs(measured_baseline("adding", 100, n, 2016) - 1 / 6) / np.sqrt((1 / 15 - 1 / 36) / n)
    worst = float(max(rel))
    return CheckResult(
        "memoryless-baselines",
        "copy: memoryless cross-entropy 10 ln 8/(T+20); adding: constant predictor MSE 1/6",
        4, 3 * 64 + n, worst, bool(worst < 1e-9 and z < 4.0),
        f"largest relative error of the copy baseline (T = 5, 50, 100); adding |z| = {z:.2f} "
        f"on {n} sequences (pass < 4)",
        time.perf_counter() - t0,
    )


class _Interrupt(Exception):
    """Raised by the verify row to stop a sweep part-way."""


@check("sweep-resume", order=270)
def sweep_resume(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: a sweep interrupted after some runs and resumed records
    every grid point exactly once, with the metrics of an uninterrupted sweep."""
    t0 = time.perf_counter()
    specs = [RunSpec("adding", 4, n_hidden=3, steps=3, batch_size=2, eval_size=4, seed=s,
                     remedies=r) for s in range(2) for r in ((), ("clip",))]
    n = len(specs)

    def stop_after(k: int) -> Callable[[RunSpec, Mapping[str, Any]], None]:
        seen = [0]

        def cb(spec: RunSpec, res: Mapping[str, Any]) -> None:
            seen[0] += 1
            if seen[0] >= k:
                raise _Interrupt

        return cb

    def table(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT key, status, metrics FROM runs").fetchall()
        finally:
            con.close()
        out = []
        for key, status, m in rows:
            d = json.loads(m) if m else {}
            d.pop("wall_s", None)
            out.append((key, status, d))
        return out

    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "a.db", Path(d) / "b.db"
        try:
            run_sweep(specs, a, scheduler="sync", progress=False, on_result=stop_after(2))
        except _Interrupt:
            pass
        partial = len(table(a))
        resumed = run_sweep(specs, a, scheduler="sync", progress=False)
        run_sweep(specs, b, scheduler="sync", progress=False)
        ra, rb = table(a), table(b)
    keys = [k for k, _, _ in ra]
    mismatches = sum(x != y for x, y in zip(sorted(ra), sorted(rb), strict=False))
    ok = (partial == 2 and resumed.skipped == 2 and resumed.done == n - 2
          and len(ra) == n and len(set(keys)) == n and set(keys) == {s.key() for s in specs}
          and len(rb) == n and mismatches == 0 and all(st == "done" for _, st, _ in ra))
    return CheckResult(
        check="sweep-resume",
        claim="an interrupted sweep resumes: every run recorded once, same metrics",
        models=n, pairs=len(ra), worst=float(mismatches + abs(len(ra) - n)), passed=ok,
        detail=(f"{partial}/{n} recorded before the interruption; resume skipped "
                f"{resumed.skipped}, ran {resumed.done}; {mismatches} metric mismatches "
                "against an uninterrupted sweep"),
        seconds=time.perf_counter() - t0,
    )


@check("sweep-flow", order=280)
def sweep_flow(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: the sweep's ``flow`` metric against explicit products and Eq. 12.

    For small Elman models (tanh and sigmoid, both forms, with and without
    leaky units) at scales that shrink and grow gradients, the metric of
    :func:`rnntheory.experiments.runspec.flow_metric` on a batch's sequence 0 must
    equal ``ln σ_max(J_t ⋯ J_1)`` with the step Jacobians written out from the
    definitions here and multiplied explicitly, and its points must lie below
    ``t · bound_slope`` (Eq. 12; its Eq. 14 form for leaky units), with
    ``bound_slope = ln(σ_max(W) γ_h)`` recomputed here.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(2013)
    worst, worst_err, n_models, points = -np.inf, 0.0, 0, 0
    for act, gamma_h in (("tanh", 1.0), ("sigmoid", 0.25)):
        for form in ("standard", "pascanu"):
            for alpha in (None, 0.3):
                for scale in (0.5, 3.0):
                    m = ElmanRNN.init(2, 4, None, activation=act, scheme="gaussian",
                                      scale=scale * (4.0 if act == "sigmoid" else 1.0),
                                      seed=int(rng.integers(1 << 30)), form=form, alpha=alpha)
                    x = rng.normal(size=(9, 3, 2))
                    flow = flow_metric(m, m.forward(x))
                    if flow is None:
                        return CheckResult("sweep-flow", "sweep flow metric", n_models, points,
                                           np.inf, False, f"no flow for {act}/{form}",
                                           time.perf_counter() - t0)
                    W, U, b = (np.asarray(a, np.float64) for a in (m.W_hh, m.W_hx, m.b_h))
                    a_vec = np.full(4, 0.0 if alpha is None else alpha)
                    h, P, logs = np.zeros(4), np.eye(4), [0.0]
                    for i in range(x.shape[0]):
                        arg = W @ h + U @ x[i, 0] + b if form == "standard" else h
                        s = 1.0 / (1.0 + np.exp(-arg))
                        fp = 1.0 - np.tanh(arg) ** 2 if act == "tanh" else s * (1.0 - s)
                        J = (fp[:, None] * W) if form == "standard" else (W * fp[None, :])
                        J = np.diag(a_vec) + (1.0 - a_vec)[:, None] * J
                        f = np.tanh if act == "tanh" else (lambda z: 1.0 / (1.0 + np.exp(-z)))
                        g = f(W @ h + U @ x[i, 0] + b) if form == "standard" else (
                            W @ f(h) + U @ x[i, 0] + b)
                        h = a_vec * h + (1.0 - a_vec) * g
                        P = J @ P
                        logs.append(float(np.log(np.linalg.svd(P, compute_uv=False)[0])))
                    slope = float(np.log(a_vec.max() + (1.0 - a_vec).max()
                                         * np.linalg.svd(W, compute_uv=False)[0] * gamma_h))
                    n_models += 1
                    bs = flow["bound_slope"]
                    worst_err = max(worst_err, abs((bs if bs is not None else np.inf) - slope))
                    for t, v in zip(flow["t"], flow["log_norm"], strict=True):
                        val = np.nan if v is None else v
                        worst_err = max(worst_err, abs(val - logs[t]) if np.isfinite(val) else np.inf)
                        if t > 0:
                            worst = max(worst, val - t * slope)
                        points += 1
    ok = bool(worst <= 1e-9 and worst_err <= 1e-9)
    return CheckResult(
        "sweep-flow",
        "sweep `flow` metric = ln σ_max(J_t⋯J_1) of an explicit product and ≤ t·ln(γ_W γ_h) (Eq. 12)",
        n_models, points, float(worst), ok,
        f"max ln(observed/bound) {worst:.3g}; max abs error vs explicit product and slope "
        f"{worst_err:.2g}",
        time.perf_counter() - t0,
    )
