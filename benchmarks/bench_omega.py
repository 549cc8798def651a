"""Cost of Pascanu's regularizer Ω inside one training step.

Run from the repository root::

    python benchmarks/bench_omega.py            # longer timing budget
    python benchmarks/bench_omega.py --quick    # fewer repeats
    python benchmarks/bench_omega.py --repeat 5 --only stacked   # median and range of 5 runs

A *plain step* is what ``train`` does without Ω: ``value_and_grad`` (forward,
cross-entropy on every step, full BPTT, every parameter gradient) followed by
``clip_by_norm``. The *Ω step* is what ``train`` does for ``Omega(weight)``:
``value_and_grad(keep_trace="scratch")`` (the forward pass's trace comes with
the gradient), :func:`rnntheory.remedies.omega` (value and gradient with the
flow and ``f′`` — for the LSTM and GRU the gates — held fixed, the record's
default as in Pascanu et al.'s code), its gradient added to the recurrent
matrix before clipping (Ω reads ``u = J_{k+1}ᵀ v_{k+1}``, which this full-BPTT
pass kept, instead of recomputing it and the gates: ``omega_parts``; for every
cell and stack). Cells: the Elman RNN, the LSTM (Ω of the whole state
``(h, c)``) and the GRU, and two-layer stacks of each (``StackedRNN``, Ω of the
whole state of both layers, the gradient for both recurrent matrices), in
float64 and float32. The issue's floor: Ω step ≤ 1.5× the plain step for every
cell, stack and dtype. Also printed: ``omega`` alone (on a record kept with
``keep_trace=True``, so the LSTM's gates are recomputed),
and the ratio with the exact fixed-flow gradient (``hold_fprime=False``: the
``f″`` term, or the gates' dependence on the recurrent matrix).

All contenders are timed in the same run, alternating calls, on one thread
(BLAS limited by threadpoolctl, ``rnntheory.set_num_threads(1)``), by *CPU time* (``time.process_time``): on a
shared machine wall time mostly measures the neighbours. Times are medians.
Before timing, Ω and its gradient (Elman), or the ratios of the first steps
(LSTM, GRU and stacks: explicit step Jacobians of the whole state), are checked against
NumPy formulas written from the definitions, so a fast wrong kernel fails.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _timing import median_times  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import rnntheory  # noqa: E402
from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN, jacobians  # noqa: E402
from rnntheory._gated_jacobians import gru_step_jacobians, lstm_step_jacobians  # noqa: E402
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


def _check_gated(model: LSTM | GRU, x: np.ndarray, y: np.ndarray) -> None:
    """The ratios of the first 3 steps against explicit whole-state Jacobians."""
    _, g = model.value_and_grad(x, y, keep_trace=True)
    res = omega(model, g.trace, g, threshold=0.0)
    tr = g.trace
    n = model.n_hidden
    W = model.weight_hh.astype(np.float64)
    f_next = 1.0 / (1.0 + np.exp(-tr.pre[1:4, :, n:2 * n].astype(np.float64)))
    err = 0.0
    for b in range(x.shape[1]):
        if isinstance(model, LSTM):
            J = lstm_step_jacobians(W, tr.c[:4, b], tr.pre[:3, b], "state")
            v = np.concatenate([g.flow[1:4, b], f_next[:, b] * g.flow_c[2:5, b]], axis=1)
        else:
            J = gru_step_jacobians(W, tr.h[:4, b], tr.pre[:3, b])
            v = g.flow[1:4, b].astype(np.float64)
        u = np.einsum("kij,ki->kj", J, v)
        want = np.sqrt(np.sum(u * u, axis=1) / np.sum(v * v, axis=1))
        err = max(err, float(np.max(np.abs(res.ratio[:3, b] - want) / want)))
    tol = 1e-9 if model.dtype == np.float64 else 1e-3
    if err > tol:
        raise RuntimeError(f"omega of the {type(model).__name__} differs from the Jacobian reference by {err:.2e}")


def _check_stacked(model: StackedRNN, x: np.ndarray, y: np.ndarray) -> None:
    """The ratios of the first 3 steps of two sequences against explicit whole-state Jacobians."""
    _, g = model.value_and_grad(x, y, keep_trace=True)
    res = omega(model, g.trace, g, threshold=0.0)
    err = 0.0
    for b in range(2):
        J = jacobians.step_jacobians(model, g.trace.sequence(b))[:3].astype(np.float64)
        v = g.flow[1:4, b].astype(np.float64)
        u = np.einsum("kij,ki->kj", J, v)
        want = np.sqrt(np.sum(u * u, axis=1) / np.sum(v * v, axis=1))
        err = max(err, float(np.max(np.abs(res.ratio[:3, b] - want) / want)))
    tol = 1e-9 if model.dtype == np.float64 else 1e-3
    if err > tol:
        raise RuntimeError(f"omega of the {model.cell} stack differs from the Jacobian reference by {err:.2e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=1,
                   help="time each configuration this many times; print the median ratio and its range")
    p.add_argument("--only", default="", help="only the configurations whose cell name starts with this")
    a = p.parse_args(argv)
    budget = 1.0 if a.quick else 4.0
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'config':<44} {'plain ms':>9} {'Ω step ms':>10} {'ratio':>6} {'floor':>6}  verdict  "
          f"{'omega() ms':>10} {'exact ratio':>11}")
    worst = 0.0
    configs = [
        ("elman", np.float64, 64, 32, 200), ("elman", np.float64, 50, 20, 100), ("elman", np.float32, 64, 32, 200),
        ("lstm", np.float64, 64, 32, 200), ("lstm", np.float32, 64, 32, 200),
        ("gru", np.float64, 64, 32, 200), ("gru", np.float32, 64, 32, 200),
        ("stacked-elman", np.float64, 64, 32, 200), ("stacked-elman", np.float32, 64, 32, 200),
        ("stacked-lstm", np.float64, 64, 32, 200), ("stacked-lstm", np.float32, 64, 32, 200),
        ("stacked-gru", np.float64, 64, 32, 200), ("stacked-gru", np.float32, 64, 32, 200),
    ]
    for cell, dtype, n, B, T in configs:
        if not cell.startswith(a.only):
            continue
        model: Any
        stacked = cell.startswith("stacked-")
        if stacked:
            model = StackedRNN.init(8, n, 8, cell=cell.split("-")[1], n_layers=2, seed=0, dtype=dtype)
        elif cell == "elman":
            model = ElmanRNN.init(8, n, 8, scheme="smart_tanh", seed=0, dtype=dtype)
        else:
            model = (LSTM if cell == "lstm" else GRU).init(8, n, 8, seed=0, dtype=dtype)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(T, B, 8)).astype(dtype)
        y = rng.integers(0, 8, size=(T, B))
        if stacked:
            _check_stacked(model, x, y)
        elif cell == "elman":
            _, g = model.value_and_grad(x, y)
            tr = model.forward(x)
            res = omega(model, tr, g.flow, threshold=0.0)
            want, G = _reference(model, tr.h, tr.a, g.flow)
            tol = 1e-9 if dtype == np.float64 else 1e-3
            err = max(abs(res.value - want) / want, float(np.max(np.abs(res.W_hh - G)) / np.max(np.abs(G))))
            if err > tol:
                raise RuntimeError(f"omega differs from the NumPy reference by {err:.2e}")
        else:
            _check_gated(model, x, y)

        def plain(model: Any = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y)
            return clip_by_norm(gr.params(), 1.0)

        def with_omega(model: Any = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y, keep_trace="scratch")
            r = omega(model, gr.trace, gr, hold_fprime=True)  # Omega(weight)'s default
            grads = gr.params()
            for k, G in r.grads().items():
                grads[k] = grads[k] + 2.0 * G
            return clip_by_norm(grads, 1.0)

        def with_omega_exact(model: Any = model, x: np.ndarray = x, y: np.ndarray = y) -> object:
            _, gr = model.value_and_grad(x, y, keep_trace="scratch")
            r = omega(model, gr.trace, gr, hold_fprime=False)  # the exact fixed-flow gradient
            grads = gr.params()
            for k, G in r.grads().items():
                grads[k] = grads[k] + 2.0 * G
            return clip_by_norm(grads, 1.0)

        kept = model.value_and_grad(x, y, keep_trace=True)[1]
        kept_flow = kept

        def omega_only(model: Any = model, tr: object = kept.trace, flow: Any = kept_flow) -> object:
            return omega(model, tr, flow, hold_fprime=True)

        rnntheory.set_num_threads(1)  # the ratio of arithmetic, not of thread hand-offs
        with threadpool_limits(1):
            for f in (plain, with_omega, with_omega_exact, omega_only):
                f()
            runs = [
                _median_times_cpu(
                    {"plain": plain, "omega": with_omega, "exact": with_omega_exact, "only": omega_only}, budget
                )
                for _ in range(a.repeat)
            ]
        ratios = sorted(r["omega"] / r["plain"] for r in runs)
        t = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        ratio = statistics.median(ratios)
        worst = max(worst, ratio)
        label = f"{cell} {np.dtype(dtype).name} h={n} B={B} T={T}"
        verdict = "PASS" if ratio <= FLOOR else "ABOVE"
        spread = f"  [{ratios[0]:.2f}, {ratios[-1]:.2f}] over {a.repeat} runs" if a.repeat > 1 else ""
        print(
            f"{label:<44} {1e3 * t['plain']:>9.2f} {1e3 * t['omega']:>10.2f} {ratio:>6.2f} {FLOOR:>6.1f}  "
            f"{verdict:<8} {1e3 * t['only']:>10.2f} "
            f"{statistics.median(r['exact'] / r['plain'] for r in runs):>11.2f}{spread}",
            flush=True,
        )
    print(f"worst ratio {worst:.2f} over every cell and dtype (floor ≤ {FLOOR})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
