"""Cost of a teacher-forced step of a gated generator against the plain gated step.

Run from the repository root::

    python benchmarks/bench_generator.py            # longer timing budget
    python benchmarks/bench_generator.py --quick    # fewer repeats

The *plain step* is ``LSTM.value_and_grad`` / ``GRU.value_and_grad`` (forward,
cross-entropy on every step, full BPTT, every parameter gradient) of a cell
with ``n_in`` inputs and a readout of ``n_out``. The *teacher-forced step* is
``GeneratorRNN(cell=...).value_and_grad(mode="teacher")`` of the generator of
the same sizes: the same cell reading ``[x_t; y_{t−1}]`` (``n_in + n_out``
input columns), the one-hot targets built and fed, and ``∂E/∂o^fb_t``
computed as well. The issue's floor: teacher-forced gated generator step ≤
1.2× the plain gated step. Also printed, without a floor: the free-running and
scheduled-sampling (``p = 0.5``) steps, which run the feedback kernels one
step at a time.

Sizes: ``n_hidden = 64``, ``B = 32``, ``T = 200``, ``n_in = n_out = 8``,
float64 and float32. All contenders are timed in the same run, alternating
calls, on one thread (BLAS limited by threadpoolctl,
``rnntheory.set_num_threads(1)``), by *CPU time* (``time.process_time``): on a
shared machine wall time mostly measures the neighbours. Times are medians.
Before timing, the teacher-forced gradient is checked to equal the plain
cell's on ``[x_t; y_{t−1}]`` (the teacher-forcing identity), so a fast wrong
path fails.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _timing import median_times  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import rnntheory  # noqa: E402
from rnntheory import GRU, LSTM  # noqa: E402
from rnntheory.cells.generator import GeneratorRNN  # noqa: E402

FLOOR = 1.2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    budget = 1.0 if a.quick else 4.0
    n_in, n, m, B, T = 8, 64, 8, 32, 200
    print(f"load average {os.getloadavg()[0]:.2f}; n_hidden={n} B={B} T={T} n_in={n_in} n_out={m}")
    print(f"{'config':<14} {'plain ms':>9} {'teacher ms':>11} {'ratio':>6} {'floor':>6}  verdict  "
          f"{'free ×':>7} {'sched ×':>8}")
    worst = 0.0
    for cell, Cell in (("lstm", LSTM), ("gru", GRU)):
        for dtype in (np.float64, np.float32):
            plain_model = Cell.init(n_in, n, m, seed=0, dtype=dtype)
            gen = GeneratorRNN.init(n_in, n, m, cell=cell, seed=0, dtype=dtype)
            rng = np.random.default_rng(1)
            x = rng.normal(size=(T, B, n_in)).astype(dtype)
            y = rng.integers(0, m, size=(T, B))
            # the teacher-forcing identity, before any timing
            fed = np.concatenate([np.zeros((1, B, m)), np.eye(m)[y[:-1]]]).astype(dtype)
            _, g_gen = gen.value_and_grad(x, y, mode="teacher")
            _, g_cell = Cell(**gen.params()).value_and_grad(np.concatenate([x, fed], axis=2), y)
            for k, v in g_cell.params().items():
                if not np.array_equal(g_gen.params()[k], v):
                    raise RuntimeError(f"teacher-forced {cell} gradient {k} differs from the plain cell's")

            def plain(model: object = plain_model, x: np.ndarray = x, y: np.ndarray = y) -> object:
                return model.value_and_grad(x, y)  # type: ignore[attr-defined]

            def teacher(gen: GeneratorRNN = gen, x: np.ndarray = x, y: np.ndarray = y) -> object:
                return gen.value_and_grad(x, y, mode="teacher")

            def free(gen: GeneratorRNN = gen, x: np.ndarray = x, y: np.ndarray = y) -> object:
                return gen.value_and_grad(x, y, mode="free")

            def sched(gen: GeneratorRNN = gen, x: np.ndarray = x, y: np.ndarray = y) -> object:
                return gen.value_and_grad(x, y, mode="scheduled", p=0.5, seed=0)

            rnntheory.set_num_threads(1)  # the ratio of arithmetic, not of thread hand-offs
            with threadpool_limits(1):
                for f in (plain, teacher, free, sched):
                    f()
                t = median_times(
                    {"plain": plain, "teacher": teacher, "free": free, "sched": sched}, budget,
                    clock=time.process_time,
                )
            ratio = t["teacher"] / t["plain"]
            worst = max(worst, ratio)
            verdict = "PASS" if ratio <= FLOOR else "BELOW"
            label = f"{cell} {np.dtype(dtype).name}"
            print(
                f"{label:<14} {1e3 * t['plain']:>9.2f} {1e3 * t['teacher']:>11.2f} {ratio:>6.2f} {FLOOR:>6.1f}  "
                f"{verdict:<8} {t['free'] / t['plain']:>7.2f} {t['sched'] / t['plain']:>8.2f}"
            )
    print(f"worst teacher-forced ratio {worst:.2f} (floor ≤ {FLOOR}): {'PASS' if worst <= FLOOR else 'BELOW'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
