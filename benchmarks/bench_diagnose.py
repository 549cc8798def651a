"""Speed of ``rnntheory.diagnose`` on a 2-layer LSTM (h = 64, T = 500, one sequence).

Run from the repository root::

    python benchmarks/bench_diagnose.py            # h = 64, T = 500; floor: 2 s
    python benchmarks/bench_diagnose.py --quick    # T = 100, fewer repeats

The model is ``StackedRNN.init(8, 64, None, cell="lstm", n_layers=2)``
(whole state of 256 numbers: each layer's ``(h, c)``); the input a standard
normal sequence. One call diagnoses the whole state and both layers (profile,
exponent, Lyapunov exponent, horizon, bounds). Before timing, the whole-state
profile is checked against ``jacobians.log_norm_reach`` of the same trace. A
warm-up call comes first (Numba compiles or loads its cache); the time is the
median (and best) of 7 timed calls on 2 threads (wall clock,
``time.perf_counter``; CPU time beside it), printed beside the floor with
PASS/BELOW.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import numpy as np

import rnntheory
from rnntheory import diagnose, jacobians
from rnntheory.cells.stacked import StackedRNN

FLOOR_S = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 100, fewer repeats")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    args = ap.parse_args()
    T, n, repeats = (100, 64, 3) if args.quick else (500, 64, 7)
    rnntheory.set_num_threads(2)
    try:
        load = "load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average: unavailable"
    print(f"rnntheory {rnntheory.__version__}, numpy {np.__version__}, {os.cpu_count()} cores; {load}")
    model = StackedRNN.init(8, n, None, cell="lstm", n_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((T, 8))

    d = diagnose(model, x)  # warm-up (compiles or loads the Numba cache)
    ref = jacobians.log_norm_reach(model, model.forward(x))
    if not np.allclose(d.profile, ref, rtol=1e-12, atol=1e-12, equal_nan=True):
        raise SystemExit("the diagnosis's profile differs from log_norm_reach: not timed")
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        diagnose(model, x)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    t, best, cpu = statistics.median(walls), min(walls), statistics.median(cpus)
    verdict = "PASS" if t <= FLOOR_S else "BELOW"
    print(f"diagnose, 2-layer LSTM, h = {n}, T = {T}, 1 sequence: median {t:.3f} s wall "
          f"(best {best:.3f} s), {cpu:.3f} s CPU; floor {FLOOR_S:.1f} s wall at T = 500 "
          f"{verdict if not args.quick else ''}".rstrip())
    print("(CPU time sums the threads; on a machine shared with other work the wall time "
          "includes waiting for a core)")
    print(d)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"T": T, "n_hidden": n, "seconds": t, "best_seconds": best,
                                               "cpu_seconds": cpu, "floor_s": FLOOR_S}))
    return 0 if (args.quick or t <= FLOOR_S) else 1


if __name__ == "__main__":
    sys.exit(main())
