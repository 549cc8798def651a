"""Sliding-window truncated BPTT of gated cells at k2 = 20: time against T, O(T·k2).

Run from the repository root::

    python benchmarks/bench_truncation.py            # T = 200, 400, 800, 1600
    python benchmarks/bench_truncation.py --quick    # T = 200, 400, fewer repeats

Models: a single ``LSTM`` and ``GRU`` and 2-layer ``StackedRNN`` of each,
``n_in = 8``, ``h = 32`` per layer, a readout of 4, float64, a batch of
``B = 8`` standard normal sequences, ``loss="mse"``. Timed:
``value_and_grad(x, y, loss="mse", truncate=20)`` (the sliding window: each
``E_t`` backpropagated 20 steps through the whole state) and, beside it, the
full-BPTT ``value_and_grad`` of the same batch. Then, at T = 400, the window
for ``k2 = 5, 10, 20, 40``: time/(T·k2) roughly constant once ``k2`` is large
enough that the windows' backward passes dominate (the fixed ``O(T)`` part of
the forward pass and the readout shows at small ``k2``).

Cost model (the docstrings of ``truncate``): the sliding window keeps the
pairs ``(t, k)`` with ``t − k < k2``, ``O(T·k2)`` step-backward work in all
(a single cell's truncated kernel runs back ``k2`` steps from every ``t``; a
stack recomputes each ``k2``-step window from the stored state and
backpropagates it through every layer). Full BPTT is ``O(T)``. So the time
per step ``time/T`` of the window stays roughly constant as T grows (linear
in T at fixed k2), and its ratio to full BPTT is about ``k2`` times a
constant (the stack also pays the windows' forward recomputation).

Before timing, each model's truncated gradient at the smallest T is checked:
``truncate = T + 1`` must equal full BPTT bitwise, and for the stacks the
window with ``k2 = 20`` must match a 1-layer stack against its own cell (to
1e-12). Each number is the median of the timed calls (after one warm-up call
that compiles or loads the Numba cache) on 2 threads (wall clock,
``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import numpy as np

import rnntheory
from rnntheory import GRU, LSTM, StackedRNN

K2, N_IN, N, N_OUT, B = 20, 8, 32, 4, 8
K2S = (5, 10, 20, 40)


def models() -> dict[str, object]:
    return {
        "LSTM": LSTM.init(N_IN, N, N_OUT, seed=0),
        "GRU": GRU.init(N_IN, N, N_OUT, seed=0),
        "stack LSTM x2": StackedRNN.init(N_IN, N, N_OUT, cell="lstm", n_layers=2, seed=0),
        "stack GRU x2": StackedRNN.init(N_IN, N, N_OUT, cell="gru", n_layers=2, seed=0),
    }


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def check(name: str, m, x, y) -> None:
    """The truncated gradient agrees with full BPTT when nothing is cut, and a
    1-layer stack with its cell: otherwise nothing is timed."""
    T = x.shape[0]
    _, full = m.value_and_grad(x, y, loss="mse")
    _, big = m.value_and_grad(x, y, loss="mse", truncate=T + 1)
    for k, v in full.params().items():
        if not np.array_equal(big.params()[k], v):
            raise SystemExit(f"{name}: truncate = T + 1 differs from full BPTT in {k}: not timed")
    if isinstance(m, StackedRNN):
        one = StackedRNN.init(N_IN, N, N_OUT, cell=m.cell, n_layers=1, seed=1)
        layer = one.layers[0]
        cell = type(layer)(**{**layer._init_kwargs(), "W_yh": one.W_yh, "b_y": one.b_y})
        _, gs = one.value_and_grad(x, y, loss="mse", truncate=K2)
        _, gc = cell.value_and_grad(x, y, loss="mse", truncate=K2)
        for k, v in gc.params().items():
            got = gs.params()[k if k in ("W_yh", "b_y") else f"{k}_l0"]
            if not np.allclose(got, v, rtol=1e-12, atol=1e-12):
                raise SystemExit(f"{name}: the 1-layer stack's window differs from its cell's in {k}: not timed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 200, 400, fewer repeats")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    args = ap.parse_args()
    Ts, repeats = ((200, 400), 3) if args.quick else ((200, 400, 800, 1600), 5)
    rnntheory.set_num_threads(2)
    try:
        load = "load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average: unavailable"
    print(f"rnntheory {rnntheory.__version__}, numpy {np.__version__}, {os.cpu_count()} cores; {load}")
    print(f"k2 = {K2}, n_in = {N_IN}, h = {N}, n_out = {N_OUT}, B = {B}, float64, median of {repeats}")
    rng = np.random.default_rng(0)
    out: dict[str, list[dict[str, float]]] = {}
    for name, m in models().items():
        x0 = rng.standard_normal((Ts[0], B, N_IN))
        check(name, m, x0, rng.standard_normal((Ts[0], B, N_OUT)))
        print(f"\n{name}")
        print(f"{'T':>6} {'window (s)':>11} {'us/step':>9} {'full (s)':>10} {'us/step':>9} {'ratio':>7}")
        rows = []
        for T in Ts:
            x = rng.standard_normal((T, B, N_IN))
            y = rng.standard_normal((T, B, N_OUT))
            tw = median_time(lambda m=m, x=x, y=y: m.value_and_grad(x, y, loss="mse", truncate=K2), repeats)
            tf = median_time(lambda m=m, x=x, y=y: m.value_and_grad(x, y, loss="mse"), repeats)
            rows.append({"T": T, "window_s": tw, "full_s": tf})
            print(f"{T:>6} {tw:>11.4f} {1e6 * tw / T:>9.1f} {tf:>10.4f} {1e6 * tf / T:>9.1f} {tw / tf:>7.1f}")
        per = [r["window_s"] / r["T"] for r in rows]
        print(f"window time/T, largest over smallest: {max(per) / min(per):.2f} (1 is exactly linear in T)")
        out[name] = rows
        # the other factor: k2 at a fixed T (T = 400; K2S)
        T = 400
        x = rng.standard_normal((T, B, N_IN))
        y = rng.standard_normal((T, B, N_OUT))
        print(f"{'k2':>6} {'window (s)':>11} {'ns/(T*k2)':>10}   (T = {T})")
        krows = []
        for k2 in K2S:
            tw = median_time(lambda m=m, x=x, y=y, k2=k2: m.value_and_grad(x, y, loss="mse", truncate=k2), repeats)
            krows.append({"k2": k2, "T": T, "window_s": tw})
            print(f"{k2:>6} {tw:>11.4f} {1e9 * tw / (T * k2):>10.0f}")
        out[name + " k2"] = krows
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"k2": K2, "h": N, "B": B, "results": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
