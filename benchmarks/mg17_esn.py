"""Jaeger's (2001) Mackey–Glass τ = 17 benchmark for the echo state network.

Run from the repository root::

    python benchmarks/mg17_esn.py                    # 50 runs, 400 units, library defaults
    python benchmarks/mg17_esn.py --quick            # 5 runs, 200 units
    python benchmarks/mg17_esn.py --ridge 1e-14      # a fixed ridge instead of validation
    python benchmarks/mg17_esn.py --leak-rate 1 --spectral-radius 0.8 --ridge 1e-14   # the old defaults

Protocol (:func:`rnntheory.experiments.mg17.mackey_glass_protocol`): per run a new seeded
reservoir and a new Mackey–Glass series (random initial history), 1 000
washout steps, teacher-forced training of the ridge readout on 3 000 steps
(the ridge chosen per run by free-running validation on the last 500 of
them), then 84 free-running steps; NRMSE84 = sqrt(mean over runs of the
squared error at step 84 / variance of the squashed signal). Every option left
out takes the library's default. Printed next to Jaeger's 400-unit result
(2.8·10⁻⁴ with 3 000 training steps), with every run's error.
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from rnntheory.experiments.mg17 import JAEGER_2001, mackey_glass_protocol  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="5 runs, 200 units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spectral-radius", type=float)
    p.add_argument("--connectivity", type=float)
    p.add_argument("--feedback-scaling", type=float)
    p.add_argument("--bias-scaling", type=float)
    p.add_argument("--leak-rate", type=float)
    p.add_argument("--ridge", type=float, help="fixed ridge (default: chosen per run by validation)")
    p.add_argument("--noise", type=float)
    a = p.parse_args(argv)
    runs, units = (5, 200) if a.quick else (a.runs, a.units)
    names = ("spectral_radius", "connectivity", "feedback_scaling", "bias_scaling", "leak_rate", "ridge", "noise")
    overrides = {k: getattr(a, k) for k in names if getattr(a, k) is not None}
    t0 = time.perf_counter()
    r = mackey_glass_protocol(units, runs, seed=a.seed, **overrides)
    dt = time.perf_counter() - t0
    per_run = r.per_run
    print("settings:", ", ".join(f"{k}={v}" for k, v in r.settings.items() if k != "ridge_grid"))
    print("per-run NRMSE84 (run: error, log10 ridge):")
    for i in range(runs):
        end = "\n" if i % 5 == 4 or i == runs - 1 else "   "
        print(f"  {i:2d}: {per_run[i]:.2e} {np.log10(max(r.ridges[i], 1e-300)):5.1f}", end=end)
    print(f"signal variance (squashed / original) {r.variance:.4f} / {r.variance_original:.4f}")
    print(f"median train NRMSE (1 step) {np.median(r.train_nrmse):.2e}")
    print(f"per-run NRMSE84: median {np.median(per_run):.2e}, worst {per_run.max():.2e} (run {per_run.argmax()})")
    print(f"NRMSE84 ({units} units, {runs} runs)  {r.nrmse84:.2e}"
          f"   (original coordinates {r.nrmse84_original:.2e})")
    print(f"Jaeger 2001 (400 units, 50 runs) {JAEGER_2001:.2e}   ratio {r.nrmse84 / JAEGER_2001:.2f}")
    print(f"time {dt:.1f} s")


if __name__ == "__main__":
    main()
