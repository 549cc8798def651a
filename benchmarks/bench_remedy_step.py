"""Cost of the exploding-gradient remedies inside one training step.

Run from the repository root::

    python benchmarks/bench_remedy_step.py            # T = 1000
    python benchmarks/bench_remedy_step.py --quick    # T = 200, fewer repeats

A *plain step* is ``ElmanRNN.value_and_grad(x, target, loss="mse")`` (forward,
squared error on every output, full BPTT, every parameter gradient). The
*remedy step* is the same call with chunked truncated BPTT
(``truncate=(k, k)``, Williams & Peng's BPTT(k, k)) followed by
``clip_by_norm`` of the global gradient norm (Eq. 13), as ``train`` does it.
The issue's floor: remedy step ≤ 1.1× the plain step. Sliding-window
truncation (``truncate=k``, cost ``O(T·k)``) is printed for information.

Both contenders are timed in the same run, alternating blocks of calls, on
one thread (NumPy's BLAS limited by threadpoolctl); times are medians.
Before timing, the truncated gradient with ``k ≥ T`` is checked against the
full one, so a broken fast path cannot pass.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _timing import median_times  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from rnntheory import ElmanRNN  # noqa: E402
from rnntheory.remedies import clip_by_norm  # noqa: E402

FLOOR = 1.1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--k", type=int, default=50, help="truncation length (default 50)")
    a = p.parse_args(argv)
    T = 200 if a.quick else 1000
    budget = 1.0 if a.quick else 4.0
    print(f"T = {T}, truncation k = {a.k}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'config':<22} {'plain ms':>9} {'TBPTT+clip ms':>14} {'ratio':>6} {'floor':>6}  verdict   sliding k ms")
    worst = 0.0
    for dtype, n, B in [(np.float64, 64, 1), (np.float64, 64, 32), (np.float64, 256, 32), (np.float32, 64, 32)]:
        model = ElmanRNN.init(8, n, 8, scheme="gaussian", scale=1.0, seed=0, dtype=dtype)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(T, B, 8)).astype(dtype)
        y = rng.normal(size=(T, B, 8)).astype(dtype)
        # guard: truncation longer than the sequence is full BPTT
        _, g_full = model.value_and_grad(x, y, loss="mse")
        _, g_long = model.value_and_grad(x, y, loss="mse", truncate=(T, T))
        err = np.max(np.abs(g_full.W_hh - g_long.W_hh)) / np.max(np.abs(g_full.W_hh))
        if err > (1e-10 if dtype == np.float64 else 1e-4):
            raise RuntimeError(f"truncate=(T, T) differs from full BPTT by {err:.2e}")

        def plain(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            return model.value_and_grad(x, y, loss="mse")

        def remedy(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, g = model.value_and_grad(x, y, loss="mse", truncate=(a.k, a.k))
            return clip_by_norm(g.params(), 1.0)

        def sliding(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, g = model.value_and_grad(x, y, loss="mse", truncate=a.k)
            return clip_by_norm(g.params(), 1.0)

        with threadpool_limits(2):
            for f in (plain, remedy, sliding):
                f()
            t = median_times({"plain": plain, "remedy": remedy, "sliding": sliding}, budget)
        ratio = t["remedy"] / t["plain"]
        worst = max(worst, ratio)
        label = f"{np.dtype(dtype).name} h={n} B={B}"
        verdict = "PASS" if ratio <= FLOOR else "ABOVE"
        print(
            f"{label:<22} {1e3 * t['plain']:>9.2f} {1e3 * t['remedy']:>14.2f} {ratio:>6.2f} {FLOOR:>6.1f}  "
            f"{verdict:<8}  {1e3 * t['sliding']:>10.2f}"
        )
    print(f"worst ratio {worst:.2f} (floor ≤ {FLOOR})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
