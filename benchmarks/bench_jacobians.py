"""Speed of ``jacobians.log_norms``, ``log_norm_profile`` and ``log_norm_reach``.

Run from the repository root::

    python benchmarks/bench_jacobians.py             # T = 200, a few repeats
    python benchmarks/bench_jacobians.py --repeats 1 --json results.json

Configurations (float64 step Jacobians of a trajectory of T = 200 steps on
Gaussian inputs):

* Elman, n = 128, ``smart_tanh`` initialisation (state 128, dense factors);
* LSTM, h = 64, state ``(h, c)`` (state 128);
* a 2-layer LSTM, h = 32 (state ``(h¹, c¹, h², c²)``, 128), whose step
  Jacobians are block lower-triangular: layer 2 runs on layer 1's hidden
  states, and the stack's Jacobian is assembled from the layers' own and input
  Jacobians (layer 2's block row is ``X² E_h`` times layer 1's block row
  beside its own ``A²``).

Before timing, each result is checked against an independent oracle: rows
T/2 and T of ``log_norms``, the profile from step 0 and the reach from step T
against ``ln σ_max`` of the explicit product from LAPACK's SVD, to 1e-9
relative. Times are medians over repeats of wall-clock and CPU seconds (the
CPU time of every thread of the process, which background load inflates
less), calls alternating between the functions; the load average is printed,
since the machine may be shared.
``log_norms`` deals its rows to 2 threads (``rnntheory.set_num_threads``).
"""

from __future__ import annotations

import os

_THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = str(_THREADS)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402, F401  (loads the BLAS Numba's np.dot calls)
from threadpoolctl import threadpool_limits  # noqa: E402

import rnntheory  # noqa: E402
from rnntheory import LSTM, ElmanRNN, jacobians  # noqa: E402
from rnntheory._stack_jacobians import lstm_input_jacobians, stack_step_jacobians  # noqa: E402

FLOOR_S = 1.0  # log_norms of a 2-layer LSTM state, h = 32, T = 200 (issue 14)


def elman_jacobians(T: int, n: int) -> np.ndarray:
    m = ElmanRNN.init(8, n, None, scheme="smart_tanh", seed=0)
    x = np.random.default_rng(1).normal(size=(T, 8))
    return jacobians.step_jacobians(m, m.forward(x))


def lstm_jacobians(T: int, n: int) -> np.ndarray:
    m = LSTM.init(8, n, None, seed=0)
    x = np.random.default_rng(1).normal(size=(T, 8))
    return jacobians.step_jacobians(m, m.forward(x))


def stacked_lstm_jacobians(T: int, n: int) -> np.ndarray:
    """``(T, 4n, 4n)``: two LSTM layers of h = n, layer 2 reading layer 1's h."""
    x = np.random.default_rng(1).normal(size=(T, 8))
    l1 = LSTM.init(8, n, None, seed=0)
    l2 = LSTM.init(n, n, None, seed=1)
    tr1 = l1.forward(x)
    tr2 = l2.forward(tr1.h[1:])
    A = [jacobians.step_jacobians(l1, tr1), jacobians.step_jacobians(l2, tr2)]
    X = [None, lstm_input_jacobians(l2.weight_ih, tr2.c, tr2.pre)]
    return stack_step_jacobians(A, X, n)


def svd_row(J: np.ndarray, t: int) -> np.ndarray:
    """``out[k] = ln σ_max(J_t ⋯ J_{k+1})`` for k = 0 … t from explicit rescaled
    products and LAPACK's SVD (the oracle)."""
    n = J.shape[1]
    out = np.empty(t + 1)
    out[t] = 0.0
    P, s = np.eye(n), 0.0
    for k in range(t - 1, -1, -1):
        P = P @ J[k]
        m = np.max(np.abs(P))
        P, s = P / m, s + np.log(m)
        out[k] = s + np.log(np.linalg.svd(P, compute_uv=False)[0])
    return out


def svd_column(J: np.ndarray) -> np.ndarray:
    """``out[t] = ln σ_max(J_t ⋯ J_1)`` (the oracle of the profile from step 0)."""
    T, n, _ = J.shape
    out = np.empty(T + 1)
    out[0] = 0.0
    P, s = np.eye(n), 0.0
    for t in range(1, T + 1):
        P = J[t - 1] @ P
        m = np.max(np.abs(P))
        P, s = P / m, s + np.log(m)
        out[t] = s + np.log(np.linalg.svd(P, compute_uv=False)[0])
    return out


def check(J: np.ndarray) -> None:
    """Rows T/2 and T of log_norms, the profile from 0 and the reach from T
    against the SVD oracle, to 1e-9 relative (a fast wrong kernel fails)."""
    T = J.shape[0]
    L = jacobians.log_norms_from_jacobians(J)
    pairs = [
        ("log_norms row T", L[T], svd_row(J, T)),
        ("log_norms row T/2", L[T // 2, : T // 2 + 1], svd_row(J, T // 2)),
        ("log_norm_profile", jacobians.log_norm_profile_from_jacobians(J, 0), svd_column(J)),
        ("log_norm_reach", jacobians.log_norm_reach_from_jacobians(J), svd_row(J, T)[::-1]),
    ]
    for name, g, r in pairs:
        err = np.max(np.abs(g - r) / np.maximum(1.0, np.abs(r)))
        if not err <= 1e-9:
            raise AssertionError(f"{name} differs from the SVD oracle by {err:.3g}")


def bench(J: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall-clock and CPU seconds (all threads of the process) per call."""
    fns = {
        "log_norms": lambda: jacobians.log_norms_from_jacobians(J),
        "log_norm_profile": lambda: jacobians.log_norm_profile_from_jacobians(J, 0),
        "log_norm_reach": lambda: jacobians.log_norm_reach_from_jacobians(J),
    }
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: {"wall": statistics.median(wall[k]), "cpu": statistics.median(cpu[k])} for k in fns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rnntheory.set_num_threads(_THREADS)
    T = args.T
    configs = {
        "Elman n=128": elman_jacobians(T, 128),
        "LSTM h=64": lstm_jacobians(T, 64),
        "2-layer LSTM h=32": stacked_lstm_jacobians(T, 32),
    }
    print(f"T = {T}, load average at start {os.getloadavg()}")
    results: dict[str, Any] = {}
    for name, J in configs.items():
        with threadpool_limits(1):
            check(J)  # also the warm-up (Numba compiles or loads its cache)
        res = bench(J, args.repeats)
        results[name] = res
        line = ", ".join(f"{k} {v['wall']:.3f} s (CPU {v['cpu']:.3f} s)" for k, v in res.items())
        print(f"{name:>20} (state {J.shape[1]}): {line}")
    ln = results["2-layer LSTM h=32"]["log_norms"]["wall"]
    verdict = "PASS" if ln <= FLOOR_S else "BELOW"
    print(f"floor: log_norms of the 2-layer LSTM state, h = 32: {ln:.3f} s <= {FLOOR_S} s: {verdict}")
    print(f"load average at end {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"T": T, "results": results, "load": os.getloadavg()}, fh, indent=1)


if __name__ == "__main__":
    main()
