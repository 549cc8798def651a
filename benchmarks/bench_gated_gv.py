"""Cost of one Gauss–Newton–vector product of an LSTM, a GRU and 2-layer stacks against one gradient (issue 15).

Run from the repository root::

    python benchmarks/bench_gated_gv.py            # h = 64, B = 32, T = 200, float64
    python benchmarks/bench_gated_gv.py --repeats 30 --dtype float32

For each cell, and for a 2-layer :class:`~rnntheory.StackedRNN` of LSTM and of
GRU layers (``h`` units per layer; structural damping on every layer's state),
two timings of ``G v`` are printed against the model's ``value_and_grad`` on
the same batch (linear readout, 8 outputs, ``loss="mse"``, input size 8,
structural damping on):

* **product**: one call of the :class:`~rnntheory.training.GaussNewton` operator
  ``model.gauss_newton(...)`` built once (the trace stored), which is what each
  CG iteration of Hessian-free pays; the floor of the issue is
  ``Gv ≤ 3× gradient`` (for the cells; the stacks' ratio is reported against
  the same line);
* **one-shot**: :func:`~rnntheory.training.gauss_newton_product`, which also runs
  and stores the forward pass (for reference).

The product is first checked against central differences of the gradient on
the readout block, where the squared error's Hessian is its Gauss–Newton matrix
(the full checks are in ``tests/test_gated_curvature.py``). Times are medians
of interleaved repeats (each the median of 3 calls); threads are fixed at 2.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "2"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from rnntheory import GRU, LSTM, StackedRNN  # noqa: E402
from rnntheory.training import gauss_newton_product  # noqa: E402
from rnntheory.training.hessian_free import flatten_params, unflatten_params  # noqa: E402

FLOOR = 3.0


def _stack(cell: str) -> Any:
    """A 2-layer stack of ``cell`` layers with the cells' ``init`` signature."""

    def init(n_in: int, n: int, n_out: int, seed: int = 0, dtype: Any = np.float64) -> StackedRNN:
        return StackedRNN.init(n_in, n, n_out, cell=cell, n_layers=2, seed=seed, dtype=dtype)

    init.__name__ = f"2-layer {cell.upper()} stack"
    return init


MODELS: list[tuple[str, Any]] = [
    ("LSTM", LSTM.init), ("GRU", GRU.init), ("2-layer LSTM stack", _stack("lstm")), ("2-layer GRU stack", _stack("gru")),
]


def check_readout_block(init: Any) -> float:
    """Relative error of the readout rows of ``G v`` (``v`` on the readout block)
    against central differences of the gradient.

    ``z = W_yh h + b_y`` is linear in the readout parameters, so on that block the
    Hessian of the squared error equals its Gauss–Newton matrix exactly.
    """
    m = init(3, 6, 2, seed=5)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 4, 3)), rng.normal(size=(20, 4, 2))
    theta = flatten_params(m.params())
    n_ro = m.W_yh.size + m.b_y.size
    v = np.zeros(theta.size)
    v[-n_ro:] = rng.normal(size=n_ro)
    eps = 1e-5

    def grad(th: np.ndarray) -> np.ndarray:
        return flatten_params(m.replace(**unflatten_params(m, th)).value_and_grad(x, y, loss="mse")[1].params())

    fd = ((grad(theta + eps * v) - grad(theta - eps * v)) / (2 * eps))[-n_ro:]
    gv = m.gauss_newton(x, y, loss="mse")(v)[-n_ro:]
    return float(np.max(np.abs(fd - gv)) / np.max(np.abs(fd)))


def median_time(fn: Any, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(init: Any, n: int, B: int, T: int, dtype: Any, repeats: int) -> tuple[float, float, float]:
    m = init(8, n, 8, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(T, B, 8)).astype(dtype), rng.normal(size=(T, B, 8)).astype(dtype)
    G = m.gauss_newton(x, y, loss="mse", lam_struct=1 / 30)
    v = rng.normal(size=G.n_params)
    for _ in range(3):  # compile and warm up
        m.value_and_grad(x, y, loss="mse")
        G(v)
        gauss_newton_product(m, x, y, v, loss="mse", lam_struct=1 / 30)
    grad_t, prod_t, shot_t = [], [], []
    for _ in range(repeats):
        grad_t.append(median_time(lambda: m.value_and_grad(x, y, loss="mse"), 3))
        prod_t.append(median_time(lambda: G(v), 3))
        shot_t.append(median_time(lambda: gauss_newton_product(m, x, y, v, loss="mse", lam_struct=1 / 30), 3))
    g, p, s = (statistics.median(t) for t in (grad_t, prod_t, shot_t))
    return g, p, s


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    for name, init in MODELS:
        err = check_readout_block(init)
        print(f"check ({name}): G v vs central differences of the gradient (readout block): rel err {err:.2e}")
        if err > 1e-6:
            raise SystemExit("G v disagrees with finite differences; not timing")
    n, B, T = args.hidden, args.batch, args.steps
    print(f"h={n} B={B} T={T} {dtype}, structural damping on, medians of {args.repeats} interleaved repeats")
    for name, init in MODELS:
        g, p, s = bench(init, n, B, T, dtype, args.repeats)
        print(name)
        print(f"  gradient (value_and_grad)      {1e3 * g:8.2f} ms")
        print(f"  Gv product (stored trace)      {1e3 * p:8.2f} ms   ratio {p / g:5.2f}  floor <= {FLOOR:.2f}  "
              f"{'PASS' if p / g <= FLOOR else 'BELOW'}")
        print(f"  Gv one-shot (forward + Gv)     {1e3 * s:8.2f} ms   ratio {s / g:5.2f}")


if __name__ == "__main__":
    main()
