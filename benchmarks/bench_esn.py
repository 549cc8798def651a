"""The library's echo state network against ReservoirPy, measured in the same run.

Run from the repository root (ReservoirPy comes with the optional ``peers``
extra, ``pip install -e .[peers]``; without it the script says so and exits)::

    python benchmarks/bench_esn.py                 # full run (several minutes on a busy machine)
    python benchmarks/bench_esn.py --quick         # fewer runs and repeats, sizes 400 and 1000
    python benchmarks/bench_esn.py --json benchmarks/results/esn.json

Both libraries get the same reservoir settings (size, spectral radius,
connectivity, leak rate, input/feedback scaling, bias scaling, ridge,
washout) and the same series; each draws its own random reservoir from them
(uniform weights on [-1, 1] times the scalings in both: ReservoirPy's
``mat_gen.uniform`` initialisers with ``input_connectivity=1``).

* **MG17**: Jaeger's (2001) Mackey–Glass (τ = 17) protocol: teacher-forced
  output feedback (in ReservoirPy the teacher is the reservoir's input and the
  free run feeds the prediction back as the next input; the two are the same
  network), 1000 washout and 3000 training steps, an 84-step free run; pooled
  NRMSE84 over the runs (run ``r`` uses the series ``mackey_glass(seed=[seed, r])``).
* **NARMA10** (Atiya & Parlos 2000): input ``u ~ U[0, 0.5]``, one-step target
  ``y``; 200 washout, 2000 training and 1000 test steps; NRMSE on the test
  steps. The readout sees ``[x; u; 1]`` in both (ReservoirPy's ``Ridge`` is
  fitted on ``[x; u]`` with its own bias).
* **Readout model**: ReservoirPy's ``Ridge`` does not penalise its bias (it
  centres the features and targets); ours is fitted with
  ``penalize_bias=False``, the same model, so that with the same matrices the
  two differ only in how accurately they solve it (ours: a least-squares
  solve; ReservoirPy: the normal equations of the centred data).
* **Time**: set-up (reservoir drawn and scaled) plus fit (teacher-forced run
  over the MG17 training series and the ridge readout) at 400, 1000 and 2000
  units, medians over repeats; each repeat runs both libraries in turn, and
  the printed spread is the range of the per-repeat ratios.

The ratios are ours / ReservoirPy's: accuracy floor ``NRMSE ratio ≤ 1``, time
floor ``time ratio ≤ 1``.
"""

from __future__ import annotations

import os

_THREADS = 1
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(_THREADS)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import rnntheory  # noqa: E402
from rnntheory.esn import fit, random_esn  # noqa: E402
from rnntheory.tasks import mackey_glass, narma10  # noqa: E402

MG17 = dict(n_hidden=400, spectral_radius=0.9, connectivity=0.05, leak_rate=0.5,
            feedback_scaling=1.0, bias_scaling=0.5, ridge=1e-8, washout=1000, train=3000, horizon=84)
NARMA = dict(n_hidden=400, spectral_radius=0.9, connectivity=0.05, leak_rate=1.0,
             input_scaling=1.0, bias_scaling=0.5, ridge=1e-8, washout=200, train=2000, test=1000)


def _rpy_shared(esn: Any, W_in: np.ndarray) -> Any:
    """A ReservoirPy reservoir holding our ESN's matrices (``W``, input weights, bias, leak)."""
    from reservoirpy.nodes import Reservoir

    return Reservoir(W=esn.W.copy(), Win=np.array(W_in), bias=np.array(esn.b), lr=esn.leak_rate)


def _rpy_reservoir(n: int, *, sr: float, connectivity: float, lr: float, in_scale: float,
                   bias_scale: float, seed: int) -> Any:
    from reservoirpy.mat_gen import uniform
    from reservoirpy.nodes import Reservoir

    return Reservoir(
        n, lr=lr, sr=sr, input_scaling=in_scale, input_connectivity=1.0, rc_connectivity=connectivity,
        W=uniform(low=-1.0, high=1.0), Win=uniform(low=-1.0, high=1.0),
        bias=uniform(low=-bias_scale, high=bias_scale), seed=seed,
    )


# ----------------------------------------------------------------------------- MG17
def _mg_series(seed: int, r: int) -> np.ndarray:
    s = MG17
    return mackey_glass(s["washout"] + s["train"] + s["horizon"], seed=np.random.default_rng([seed, r]))[:, None]


def _mg_esn(n: int, seed: int) -> Any:
    s = MG17
    return random_esn(n, 0, 1, spectral_radius=s["spectral_radius"], connectivity=s["connectivity"],
                      feedback_scaling=s["feedback_scaling"], bias_scaling=s["bias_scaling"],
                      leak_rate=s["leak_rate"], seed=seed)


def _mg_ours(series: np.ndarray, n: int, seed: int, shared: bool) -> tuple[float, float]:
    s = MG17
    T = s["washout"] + s["train"]
    esn = _mg_esn(n, seed)
    res = fit(esn, None, series[:T], washout=s["washout"], ridge=s["ridge"], penalize_bias=False)
    gen = res.esn.generate(s["horizon"], x0=res.final_state, y0=res.final_output)
    return float(gen.outputs[-1, 0]), float(series[-1, 0])


def _mg_rpy(series: np.ndarray, n: int, seed: int, shared: bool) -> tuple[float, float]:
    from reservoirpy.nodes import Ridge

    s = MG17
    T = s["washout"] + s["train"]
    if shared:  # our reservoir's matrices; the feedback weights are ReservoirPy's input weights
        esn = _mg_esn(n, seed)
        res = _rpy_shared(esn, esn.W_fb)
    else:
        res = _rpy_reservoir(n, sr=s["spectral_radius"], connectivity=s["connectivity"], lr=s["leak_rate"],
                             in_scale=s["feedback_scaling"], bias_scale=s["bias_scaling"], seed=seed)
    u = np.vstack([np.zeros((1, 1)), series[: T - 1]])  # the fed-back teacher y_{t-1}
    X = res.run(u)
    ro = Ridge(ridge=s["ridge"])
    ro.fit(X[s["washout"]:], series[s["washout"]:T])
    y = series[T - 1]
    for _ in range(s["horizon"]):
        y = ro.step(res.step(y))
    return float(y[0]), float(series[-1, 0])


def mg17_accuracy(runs: int, seed: int, shared: bool) -> dict[str, Any]:
    sq: dict[str, list[float]] = {"ours": [], "reservoirpy": []}
    segs = []
    for r in range(runs):
        series = _mg_series(seed, r)
        segs.append(series[MG17["washout"]: MG17["washout"] + MG17["train"], 0])
        for name, f in (("ours", _mg_ours), ("reservoirpy", _mg_rpy)):
            pred, true = f(series, MG17["n_hidden"], 1000 * seed + r, shared)
            sq[name].append((pred - true) ** 2)
    var = float(np.var(np.concatenate(segs)))
    out = {k: float(np.sqrt(np.mean(v) / var)) for k, v in sq.items()}
    med = {k: float(np.median(np.sqrt(np.asarray(v) / var))) for k, v in sq.items()}
    a, b = np.asarray(sq["ours"]), np.asarray(sq["reservoirpy"])
    # the spread of the pooled ratio: a paired bootstrap over the runs (5 %–95 %)
    pick = np.random.default_rng(0).integers(0, runs, (2000, runs))
    boot = np.sqrt(a[pick].mean(axis=1) / np.maximum(b[pick].mean(axis=1), 1e-300))
    return {"nrmse84": out, "median_run_nrmse84": med, "runs": runs,
            "ratio": out["ours"] / out["reservoirpy"],
            "ratio_5_95": [float(np.quantile(boot, 0.05)), float(np.quantile(boot, 0.95))],
            "runs_ours_better": int(np.sum(a < b)), "runs_equal": int(np.sum(a == b))}


# ----------------------------------------------------------------------------- NARMA10
def _narma(k: int) -> Any:
    s = NARMA
    while True:  # a few seeds make the recursion diverge: take the next
        try:
            return narma10(s["washout"] + s["train"] + s["test"], seed=k)
        except FloatingPointError:
            k += 10_000


def narma_accuracy(runs: int, seed: int, shared: bool) -> dict[str, Any]:
    from reservoirpy.nodes import Ridge

    s = NARMA
    w, tr = s["washout"], s["washout"] + s["train"]
    errs: dict[str, list[float]] = {"ours": [], "reservoirpy": []}
    solver: dict[str, list[float]] = {"ours": [], "reservoirpy": []}
    for r in range(runs):
        d = _narma(1000 * seed + r)
        u, y = d.u[:, None], d.y[:, None]
        esn = random_esn(s["n_hidden"], 1, 1, spectral_radius=s["spectral_radius"],
                         connectivity=s["connectivity"], input_scaling=s["input_scaling"],
                         bias_scaling=s["bias_scaling"], leak_rate=s["leak_rate"], seed=r)
        res = fit(esn, u[:tr], y[:tr], washout=w, ridge=s["ridge"], penalize_bias=False)
        X = res.esn.run(u)
        pred = res.esn.readout(X[tr:], u[tr:])
        errs["ours"].append(float(np.sqrt(np.mean((pred - y[tr:]) ** 2) / np.var(y[tr:]))))
        rp = _rpy_shared(esn, esn.W_in) if shared else _rpy_reservoir(
            s["n_hidden"], sr=s["spectral_radius"], connectivity=s["connectivity"], lr=s["leak_rate"],
            in_scale=s["input_scaling"], bias_scale=s["bias_scaling"], seed=r)
        Xr = rp.run(u)
        F = np.hstack([Xr, u])
        ro = Ridge(ridge=s["ridge"])
        ro.fit(F[w:tr], y[w:tr])
        pr = ro.run(F[tr:])
        errs["reservoirpy"].append(float(np.sqrt(np.mean((pr - y[tr:]) ** 2) / np.var(y[tr:]))))
        if shared:  # each solver on the same feature rows, against an independent reference
            for k, v in _solver_errors(res.esn.features(X[w:tr], u[w:tr])[:, :-1], y[w:tr], s["ridge"]).items():
                solver[k].append(v)
    out = {k: float(np.mean(v)) for k, v in errs.items()}
    result = {"nrmse": out, "per_run": errs, "runs": runs, "ratio": out["ours"] / out["reservoirpy"]}
    if shared:
        result["readout_error"] = {k: float(np.median(v)) for k, v in solver.items()}
        result["readout_error_per_run"] = solver
    return result


def _solver_errors(F: np.ndarray, y: np.ndarray, lam: float) -> dict[str, float]:
    """How far each library's ridge readout (unpenalised bias) lies from the exact one,
    relative: the reference is NumPy's least-squares solve of the stacked, centred
    system ``[F − F̄; √λ I] w = [y − ȳ; 0]`` (an SVD, independent of both libraries)."""
    from reservoirpy.nodes import Ridge

    Fc, yc = F - F.mean(axis=0), y - y.mean(axis=0)
    p = F.shape[1]
    ref = np.linalg.lstsq(np.vstack([Fc, np.sqrt(lam) * np.eye(p)]), np.vstack([yc, np.zeros((p, 1))]),
                          rcond=None)[0][:, 0]
    ours = fit_readout(F, y, lam)
    ro = Ridge(ridge=lam)
    ro.fit(F, y)
    theirs = np.ravel(ro.Wout)
    size = float(np.linalg.norm(ref))
    return {"ours": float(np.linalg.norm(ours - ref)) / size, "reservoirpy": float(np.linalg.norm(theirs - ref)) / size}


def fit_readout(F: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Our ridge readout with an unpenalised bias on the feature rows ``F`` (the weights of ``F``'s columns)."""
    from rnntheory.esn import ridge_regression

    Fc, yc = F - F.mean(axis=0), y - y.mean(axis=0)
    return ridge_regression(Fc, yc, lam)[0]


# ----------------------------------------------------------------------------- time
def _time_ours(n: int, series: np.ndarray, seed: int) -> float:
    s = MG17
    t0 = time.perf_counter()
    esn = random_esn(n, 0, 1, spectral_radius=s["spectral_radius"], connectivity=s["connectivity"],
                     feedback_scaling=s["feedback_scaling"], bias_scaling=s["bias_scaling"],
                     leak_rate=s["leak_rate"], seed=seed)
    fit(esn, None, series, washout=s["washout"], ridge=s["ridge"], penalize_bias=False)
    return time.perf_counter() - t0


def _time_rpy(n: int, series: np.ndarray, seed: int) -> float:
    from reservoirpy.nodes import Ridge

    s = MG17
    t0 = time.perf_counter()
    res = _rpy_reservoir(n, sr=s["spectral_radius"], connectivity=s["connectivity"], lr=s["leak_rate"],
                         in_scale=s["feedback_scaling"], bias_scale=s["bias_scaling"], seed=seed)
    u = np.vstack([np.zeros((1, 1)), series[:-1]])
    res.initialize(u[:1])
    X = res.run(u)
    Ridge(ridge=s["ridge"]).fit(X[s["washout"]:], series[s["washout"]:])
    return time.perf_counter() - t0


def timing(sizes: list[int], repeats: int) -> dict[str, Any]:
    series = _mg_series(0, 0)[: MG17["washout"] + MG17["train"]]
    out: dict[str, Any] = {}
    for n in sizes:
        ours, theirs = [], []
        for k in range(repeats):
            order = [("ours", _time_ours), ("reservoirpy", _time_rpy)]
            if k % 2:
                order.reverse()
            for name, f in order:
                time.sleep(0.2)
                (ours if name == "ours" else theirs).append(f(n, series, k))
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        out[str(n)] = {
            "ours_s": statistics.median(ours), "reservoirpy_s": statistics.median(theirs),
            "ratio": statistics.median(ours) / statistics.median(theirs),
            "ratio_min": min(ratios), "ratio_max": max(ratios), "repeats": repeats,
            "ours_all_s": ours, "reservoirpy_all_s": theirs,
        }
        print(f"  {n:5d} units: ours {out[str(n)]['ours_s']:.3f} s, ReservoirPy "
              f"{out[str(n)]['reservoirpy_s']:.3f} s, ratio {out[str(n)]['ratio']:.2f} "
              f"(per repeat {min(ratios):.2f}–{max(ratios):.2f})", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=str, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ridges", type=float, nargs="+", default=[1e-8, 1e-12],
                   help="the ridge settings to measure (the same for both libraries)")
    a = p.parse_args(argv)
    try:
        import reservoirpy
    except ImportError:
        print("ReservoirPy is not installed (pip install -e .[peers]); nothing to compare against.")
        return 0
    from threadpoolctl import threadpool_limits

    mg_runs, narma_runs, sizes, repeats = (5, 2, [400, 1000], 3) if a.quick else (20, 10, [400, 1000, 2000], 9)
    print(f"rnntheory {rnntheory.__version__}, ReservoirPy {reservoirpy.__version__}, NumPy {np.__version__},"
          f" Python {platform.python_version()}, {_THREADS} BLAS thread(s), load average {os.getloadavg()}")
    per_ridge: dict[str, Any] = {}
    with threadpool_limits(_THREADS):
        for lam in a.ridges:
            MG17["ridge"] = NARMA["ridge"] = lam
            print(f"=== ridge {lam:g}")
            print("MG17 settings:", MG17)
            mg, na = {}, {}
            for shared, label in ((True, "same_matrices"), (False, "own")):
                what = "the same matrices" if shared else "each library's own draw"
                mg[label] = m = mg17_accuracy(mg_runs, a.seed, shared)
                lo, hi = m["ratio_5_95"]
                print(f"  {what}: NRMSE84 over {mg_runs} runs: ours {m['nrmse84']['ours']:.6g}, ReservoirPy "
                      f"{m['nrmse84']['reservoirpy']:.6g}, ratio {m['ratio']:.6f} (bootstrap 5–95 % "
                      f"{lo:.4f}–{hi:.4f}; ours closer in {m['runs_ours_better']} of {mg_runs} runs) "
                      f"{'PASS' if m['ratio'] <= 1 else 'BELOW'} (floor ≤ 1)", flush=True)
            print("NARMA10 settings:", NARMA)
            for shared, label in ((True, "same_matrices"), (False, "own")):
                what = "the same matrices" if shared else "each library's own draw"
                na[label] = m = narma_accuracy(narma_runs, a.seed, shared)
                print(f"  {what}: test NRMSE over {narma_runs} runs: ours {m['nrmse']['ours']:.9g}, ReservoirPy "
                      f"{m['nrmse']['reservoirpy']:.9g}, ratio {m['ratio']:.10f} "
                      f"{'PASS' if m['ratio'] <= 1 else 'BELOW'} (floor ≤ 1)", flush=True)
                if "readout_error" in m:
                    e = m["readout_error"]
                    print(f"    readout against an independent least-squares reference (median relative error): "
                          f"ours {e['ours']:.2e}, ReservoirPy {e['reservoirpy']:.2e}", flush=True)
            print(f"set-up + fit (MG17 training series, {MG17['washout'] + MG17['train']} steps), medians of {repeats}:")
            tm = timing(sizes, repeats)
            # the accuracy floors are judged with the same matrices (the libraries' computation
            # alone); with each library's own draw the ratio mixes in the luck of the draw
            floors = {"mg17_accuracy": mg["same_matrices"]["ratio"] <= 1, "narma10_accuracy": na["same_matrices"]["ratio"] <= 1,
                      **{f"time_{n}": v["ratio"] <= 1 for n, v in tm.items()}}
            print("floors:", ", ".join(f"{k} {'PASS' if v else 'BELOW'}" for k, v in floors.items()), flush=True)
            per_ridge[f"{lam:g}"] = {"mg17": mg, "narma10": na, "time": tm, "floors": floors,
                                     "mg17_settings": dict(MG17), "narma10_settings": dict(NARMA)}
    if a.json:
        result = {
            "versions": {"rnntheory": rnntheory.__version__, "reservoirpy": reservoirpy.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            "machine": {"threads": _THREADS, "loadavg": os.getloadavg(), "platform": platform.platform(),
                        "note": "a 2-core machine that other work may share (loadavg: the 1, 5 and 15 min load averages at the end)"},
            "quick": a.quick, "per_ridge": per_ridge,
        }
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1)
        print("wrote", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
