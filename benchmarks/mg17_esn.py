"""Jaeger's (2001) Mackey–Glass τ = 17 benchmark for the echo state network.

Run from the repository root::

    python benchmarks/mg17_esn.py                    # 50 runs, 400 units (~25 s)
    python benchmarks/mg17_esn.py --quick            # 5 runs, 200 units (~2 s)
    python benchmarks/mg17_esn.py --runs 50 --units 400 --spectral-radius 0.95

Protocol (:func:`rnntheory.esn.mackey_glass_protocol`): per run a new seeded
reservoir and a new Mackey–Glass series (random initial history), 1 000
washout steps, teacher-forced training of the ridge readout on 3 000 steps,
then 84 free-running steps; NRMSE84 = sqrt(mean over runs of the squared error
at step 84 / variance of the signal). Printed next to Jaeger's 400-unit result
(2.8·10⁻⁴ with 3 000 training steps).
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from rnntheory.esn import JAEGER_2001_NRMSE84, mackey_glass_protocol  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="5 runs, 200 units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spectral-radius", type=float, default=0.8)
    p.add_argument("--connectivity", type=float, default=0.05)
    p.add_argument("--feedback-scaling", type=float, default=1.0)
    p.add_argument("--bias-scaling", type=float, default=0.5)
    p.add_argument("--leak", type=float, default=1.0)
    p.add_argument("--ridge", type=float, default=1e-14)
    p.add_argument("--noise", type=float, default=0.0)
    a = p.parse_args(argv)
    runs, units = (5, 200) if a.quick else (a.runs, a.units)
    t0 = time.perf_counter()
    r = mackey_glass_protocol(
        units, runs, seed=a.seed, spectral_radius=a.spectral_radius,
        connectivity=a.connectivity, feedback_scaling=a.feedback_scaling,
        bias_scaling=a.bias_scaling, leak=a.leak, ridge=a.ridge, noise=a.noise,
    )
    dt = time.perf_counter() - t0
    per_run = np.sqrt(r.squared_errors / r.variance)
    print("settings:", ", ".join(f"{k}={v}" for k, v in r.settings.items()))
    print(f"signal variance            {r.variance:.4f}")
    print(f"median train NRMSE (1 step) {np.median(r.train_nrmse):.2e}")
    print(f"per-run NRMSE84: median {np.median(per_run):.2e}, worst {per_run.max():.2e}")
    print(f"NRMSE84 ({units} units, {runs} runs)  {r.nrmse84:.2e}")
    print(f"Jaeger 2001 (400 units, 50 runs) {JAEGER_2001_NRMSE84:.2e}   ratio {r.nrmse84 / JAEGER_2001_NRMSE84:.2f}")
    print(f"time {dt:.1f} s")


if __name__ == "__main__":
    main()
