"""Cost of each supported (cell, remedy) pair of the matrix, relative to a plain step.

Run from the repository root::

    python benchmarks/bench_remedy_matrix.py            # writes benchmarks/results/remedy_matrix.json
    python benchmarks/bench_remedy_matrix.py --quick    # fewer repeats, prints only
    python -m rnntheory.remedies.support                # then regenerate docs/guides/remedy-matrix.md

Sizes: hidden size h = 32, batch B = 16, the addition task at length T = 50
(``make_task("addition", 50)``: 2 inputs, 1 output, squared error), float64,
``SGD(lr=0.01)``; two layers for a stacked row.

For every pair that :mod:`rnntheory.remedies.support` marks supported, one
step is timed the way the library trains the pair:

* route ``"train"`` (clipping, truncation, penalties, projection, Ω,
  orthogonal initialisation, leaky units, plain training): ``train(model, task,
  remedies=..., steps=S)`` with the records of ``support.records_for`` on
  ``support.model_for``'s model, divided by ``S`` (one evaluation of one
  sequence at the end); the plain step is the same call without remedies on
  the row's plain model;
* route ``"hessian_free"``: the same with ``optimizer=HessianFree(max_cg=10)``
  (one step = one outer iteration, up to 10 CG iterations);
* route ``"generator"`` (teacher forcing, free running, scheduled sampling
  with p = 0.5): one ``GeneratorRNN.value_and_grad(mode=...)`` on a fixed
  batch of the same sizes (3 classes, cross-entropy) and an SGD update
  (``apply_updates``, ``replace``); its plain step is the same loop on the
  row's plain model (``support.model_for``, the generator's sizes) with
  ``value_and_grad(loss="xent")``;
* route ``"esn"``: not timed (fitted in one ridge regression, no step).

The cost of a pair is the median time of its step divided by the median time
of the plain step of the same cell, both timed in the same run, alternating
(so background load hits all alike), on one thread (BLAS and the library's
own pool), as CPU time of the process (``time.process_time``: steadier than
wall time on a shared machine). The JSON records the date, the cores and
the load average of the run; the generated page prints them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RNNTHEORY_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _timing import median_times  # noqa: E402

from rnntheory.remedies import support  # noqa: E402
from rnntheory.tasks import make_task  # noqa: E402
from rnntheory.training import SGD, HessianFree, train  # noqa: E402
from rnntheory.training.optimizers import apply_updates  # noqa: E402

H, B, T, STEPS = 32, 16, 50, 4
SIZES = f"h = {H}, B = {B}, T = {T} (addition task), float64, SGD(lr=0.01), HessianFree(max_cg=10)"
OUT = Path(__file__).resolve().parent / "results" / "remedy_matrix.json"


def _train_step(cell: str, remedy: str) -> Callable[[], object]:
    task = make_task("addition", T)
    model = support.model_for(cell, task.n_in, H, task.n_out, remedy=remedy)
    kw = dict(steps=STEPS, batch_size=B, seed=0, eval_every=STEPS, eval_size=1)
    if remedy == "hessian_free":
        return lambda: train(model, task, optimizer=HessianFree(max_cg=10), **kw)
    records = support.records_for(remedy)
    return lambda: train(model, task, optimizer=SGD(0.01), remedies=records, **kw)


def _manual_step(model: object, x: np.ndarray, y: np.ndarray, **kw: object) -> Callable[[], object]:
    def run() -> object:
        m = model
        for _ in range(STEPS):
            _, g = m.value_and_grad(x, y, loss="xent", **kw)  # type: ignore[attr-defined]
            m = m.replace(**apply_updates(m.params(), {k: -0.01 * v for k, v in g.params().items()}))  # type: ignore[attr-defined]
        return m
    return run


def _generator_step(cell: str, remedy: str, x: np.ndarray, y: np.ndarray) -> Callable[[], object]:
    mode = {"teacher_forcing": "teacher", "free_running": "free", "scheduled_sampling": "scheduled"}[remedy]
    kw: dict[str, object] = {"mode": mode}
    if mode == "scheduled":
        kw.update(p=0.5, seed=0)
    return _manual_step(support.model_for(cell, x.shape[2], H, 3, remedy=remedy), x, y, **kw)


def measure(budget: float) -> tuple[dict[str, float], dict[str, float]]:
    """``(ratios, times_ms)`` keyed ``"cell|remedy"``."""
    m = support.matrix(costs=Path(os.devnull))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(T, B, 2)), rng.integers(0, 3, (T, B))
    ratios: dict[str, float] = {}
    times: dict[str, float] = {}
    for cell in support.CELLS:
        pairs = [r for r in support.REMEDIES if m[(cell, r)].supported and support.ROUTES[r] != "esn"]
        if not pairs:
            continue
        fns: dict[str, Callable[[], object]] = {"plain": _train_step(cell, "train")}
        gen = [r for r in pairs if support.ROUTES[r] == "generator"]
        if gen:
            fns["plain-generator"] = _manual_step(support.model_for(cell, 2, H, 3), x, y)
        for r in pairs:
            if r == "train":
                continue
            fns[r] = _generator_step(cell, r, x, y) if r in gen else _train_step(cell, r)
        for fn in fns.values():  # compile and warm up
            fn()
        med = median_times(fns, budget, min_rounds=7, clock=time.process_time)
        for r in pairs:
            key = "plain" if r == "train" else r
            ref = med["plain-generator"] if r in gen else med["plain"]
            ratios[f"{cell}|{r}"] = round(med[key] / ref, 3)
            times[f"{cell}|{r}"] = round(1e3 * med[key] / STEPS, 4)
            print(f"{cell:<14} {r:<20} {1e3 * med[key] / STEPS:9.3f} ms/step  {med[key] / ref:6.2f}x")
    return ratios, times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats; print only")
    p.add_argument("--json", type=Path, default=OUT, help=f"where to write the results (default {OUT})")
    a = p.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"{SIZES}; load average {load:.2f}")
    ratios, times = measure(0.3 if a.quick else 4.0)
    if a.quick:
        return 0
    data = {
        "run": {
            "script": "benchmarks/bench_remedy_matrix.py",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "cores": os.cpu_count(),
            "load": round(load, 2),
            "machine": platform.machine(),
            "sizes": SIZES,
        },
        "ratios": ratios,
        "ms_per_step": times,
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
