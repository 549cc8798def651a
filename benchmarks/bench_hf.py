"""Cost of one Gauss–Newton–vector product against one gradient (issue 6).

Run from the repository root::

    python benchmarks/bench_hf.py            # h = 64, B = 32, T = 200, float64
    python benchmarks/bench_hf.py --repeats 30

Two timings of ``G v`` are printed against ``ElmanRNN.value_and_grad`` on the
same batch (linear readout, 8 outputs, ``loss="mse"``, tanh, input size 8):

* **product**: one call of a :class:`~rnntheory.training.GaussNewton` operator
  built once (the trace stored), which is what each CG iteration of
  Hessian-free pays; the floor of the issue is ``Gv ≤ 3× gradient``;
* **one-shot**: :func:`~rnntheory.training.gauss_newton_product`, which also runs
  and stores the forward pass (for reference).

The product is first checked against central differences of the gradient on
the readout block, where the squared error's Hessian is its Gauss–Newton matrix
(the full check is in ``tests/test_hessian_free.py``). Times are medians of interleaved repeats; threads are
fixed at 2.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "2"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from rnntheory import ElmanRNN  # noqa: E402
from rnntheory.training import GaussNewton, gauss_newton_product  # noqa: E402
from rnntheory.training.hessian_free import flatten_params, unflatten_params  # noqa: E402


def check_readout_block() -> float:
    """Relative error of the readout rows of ``G v`` (``v`` on the readout block)
    against central differences of the gradient.

    ``z = W_yh h + b_y`` is linear in the readout parameters, so on that block the
    Hessian of the squared error equals its Gauss–Newton matrix exactly.
    """
    m = ElmanRNN.init(3, 6, 2, scheme="gaussian", scale=0.9, seed=5)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 4, 3)), rng.normal(size=(20, 4, 2))
    theta = flatten_params(m.params())
    assert m.W_yh is not None and m.b_y is not None
    n_ro = m.W_yh.size + m.b_y.size
    v = np.zeros(theta.size)
    v[-n_ro:] = rng.normal(size=n_ro)
    eps = 1e-5

    def grad(th: np.ndarray) -> np.ndarray:
        return flatten_params(m.replace(**unflatten_params(m, th)).value_and_grad(x, y, loss="mse")[1].params())

    fd = ((grad(theta + eps * v) - grad(theta - eps * v)) / (2 * eps))[-n_ro:]
    gv = GaussNewton(m, x, y, loss="mse")(v)[-n_ro:]
    return float(np.max(np.abs(fd - gv)) / np.max(np.abs(fd)))


def median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    err = check_readout_block()
    print(f"check: G v vs central differences of the gradient (readout block): rel err {err:.2e}")
    if err > 1e-6:
        raise SystemExit("G v disagrees with finite differences; not timing")
    n, B, T = args.hidden, args.batch, args.steps
    m = ElmanRNN.init(8, n, 8, scheme="gaussian", scale=1.0, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(T, B, 8)), rng.normal(size=(T, B, 8))
    G = GaussNewton(m, x, y, loss="mse", lam_struct=1 / 30)
    v = rng.normal(size=G.n_params)
    for _ in range(3):  # compile and warm up
        m.value_and_grad(x, y, loss="mse")
        G(v)
        gauss_newton_product(m, x, y, v, loss="mse", lam_struct=1 / 30)
    grad_t, prod_t, shot_t = [], [], []
    for _ in range(args.repeats):
        grad_t.append(median_time(lambda: m.value_and_grad(x, y, loss="mse"), 3))
        prod_t.append(median_time(lambda: G(v), 3))
        shot_t.append(median_time(lambda: gauss_newton_product(m, x, y, v, loss="mse", lam_struct=1 / 30), 3))
    g, p, s = (statistics.median(t) for t in (grad_t, prod_t, shot_t))
    print(f"h={n} B={B} T={T} float64, structural damping on")
    print(f"  gradient (value_and_grad)      {1e3 * g:8.2f} ms")
    print(f"  Gv product (stored trace)      {1e3 * p:8.2f} ms   ratio {p / g:5.2f}  floor <= 3.00  "
          f"{'PASS' if p / g <= 3.0 else 'ABOVE'}")
    print(f"  Gv one-shot (forward + Gv)     {1e3 * s:8.2f} ms   ratio {s / g:5.2f}")


if __name__ == "__main__":
    main()
