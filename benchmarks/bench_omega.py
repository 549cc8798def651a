"""Cost of Pascanu's regularizer Ω inside one training step.

Run from the repository root::

    python benchmarks/bench_omega.py            # longer timing budget
    python benchmarks/bench_omega.py --quick    # fewer repeats

A *plain step* is what ``train`` does without Ω: ``ElmanRNN.value_and_grad``
(forward, cross-entropy on every step, full BPTT, every parameter gradient)
followed by ``clip_by_norm``. The *Ω step* is what ``train`` does for
``Omega(weight)``: ``value_and_grad(keep_trace=True)`` (the forward pass's
trace comes with the gradient), :func:`rnntheory.remedies.omega` (value and
gradient with the flow and ``f′`` held fixed, the record's default as in
Pascanu et al.'s code), its gradient added to ``W_hh`` before clipping. The
issue's floor: Ω step ≤ 1.5× the plain step. Also printed: ``omega`` alone,
and the ratio with the exact fixed-flow gradient (``hold_fprime=False``, the
``f″`` term: two more products).

All contenders are timed in the same run, alternating calls, on one thread
(BLAS limited by threadpoolctl, ``rnntheory.set_num_threads(1)``), by *CPU time* (``time.process_time``): on a
shared machine wall time mostly measures the neighbours. Times are medians.
Before timing, Ω and its gradient are checked against a NumPy formula written
from the definitions, so a fast wrong kernel fails.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from _timing import median_times  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import rnntheory  # noqa: E402
from rnntheory import ElmanRNN  # noqa: E402
from rnntheory.remedies import clip_by_norm, omega  # noqa: E402

FLOOR = 1.5


def _median_times_cpu(fns: dict[str, Callable[[], object]], budget: float) -> dict[str, float]:
    return median_times(fns, budget, clock=time.process_time)


def _reference(model: ElmanRNN, h: np.ndarray, a: np.ndarray, flow: np.ndarray) -> tuple[float, np.ndarray]:
    """Ω ("squared", every term counted) and its fixed-flow gradient, standard tanh, in NumPy."""
    W = model.W_hh.astype(np.float64)
    v = flow[1:].astype(np.float64)
    d = 1.0 / np.cosh(a.astype(np.float64)) ** 2
    f2 = -2.0 * np.tanh(a.astype(np.float64)) * d
    p = v * d
    u = p @ W
    nv2 = np.sum(v * v, axis=-1)
    s = np.sum(u * u, axis=-1) / nv2
    N = s.size
    value = float(np.sum((s - 1.0) ** 2) / N)
    gu = (4.0 * (s - 1.0) / nv2 / N)[..., None] * u
    hk = h[:-1].astype(np.float64)
    G = np.einsum("tbi,tbj->ij", p, gu) + np.einsum("tbi,tbj->ij", v * f2 * (gu @ W.T), hk)
    return value, G


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    budget = 1.0 if a.quick else 4.0
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'config':<30} {'plain ms':>9} {'Ω step ms':>10} {'ratio':>6} {'floor':>6}  verdict  "
          f"{'omega() ms':>10} {'f″ ratio':>9}")
    worst = 0.0
    for dtype, n, B, T in [(np.float64, 64, 32, 200), (np.float64, 50, 20, 100), (np.float32, 64, 32, 200)]:
        model = ElmanRNN.init(8, n, 8, scheme="smart_tanh", seed=0, dtype=dtype)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(T, B, 8)).astype(dtype)
        y = rng.integers(0, 8, size=(T, B))
        _, g = model.value_and_grad(x, y)
        tr = model.forward(x)
        res = omega(model, tr, g.flow, threshold=0.0)
        want, G = _reference(model, tr.h, tr.a, g.flow)
        tol = 1e-9 if dtype == np.float64 else 1e-3
        err = max(abs(res.value - want) / want, float(np.max(np.abs(res.W_hh - G)) / np.max(np.abs(G))))
        if err > tol:
            raise RuntimeError(f"omega differs from the NumPy reference by {err:.2e}")

        def plain(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y)
            return clip_by_norm(gr.params(), 1.0)

        def with_omega(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y, keep_trace="scratch")
            r = omega(model, gr.trace, gr.flow, hold_fprime=True)  # Omega(weight)'s default
            grads = gr.params()
            grads["W_hh"] = grads["W_hh"] + 2.0 * r.W_hh
            return clip_by_norm(grads, 1.0)

        def with_omega_f2(model: ElmanRNN = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y, keep_trace="scratch")
            r = omega(model, gr.trace, gr.flow, hold_fprime=False)  # with the f″ term
            grads = gr.params()
            grads["W_hh"] = grads["W_hh"] + 2.0 * r.W_hh
            return clip_by_norm(grads, 1.0)

        kept = model.value_and_grad(x, y, keep_trace=True)[1]

        def omega_only(model: ElmanRNN = model, tr: object = kept.trace, flow: np.ndarray = kept.flow) -> object:
            return omega(model, tr, flow, hold_fprime=True)

        rnntheory.set_num_threads(1)  # the ratio of arithmetic, not of thread hand-offs
        with threadpool_limits(1):
            for f in (plain, with_omega, with_omega_f2, omega_only):
                f()
            t = _median_times_cpu(
                {"plain": plain, "omega": with_omega, "f2": with_omega_f2, "only": omega_only}, budget
            )
        ratio = t["omega"] / t["plain"]
        if dtype == np.float64:
            worst = max(worst, ratio)
        label = f"{np.dtype(dtype).name} h={n} B={B} T={T}"
        verdict = "PASS" if ratio <= FLOOR else "ABOVE"
        print(
            f"{label:<30} {1e3 * t['plain']:>9.2f} {1e3 * t['omega']:>10.2f} {ratio:>6.2f} {FLOOR:>6.1f}  "
            f"{verdict:<8} {1e3 * t['only']:>10.2f} {t['f2'] / t['plain']:>9.2f}"
        )
    print(f"worst float64 ratio {worst:.2f} (floor ≤ {FLOOR})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
