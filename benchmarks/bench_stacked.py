"""Speed of the stacked training step against ``torch.nn.RNN/LSTM/GRU(num_layers=2)``.

Run from the repository root::

    python benchmarks/bench_stacked.py            # T = 1000
    python benchmarks/bench_stacked.py --quick    # T = 200, fewer repeats

One training step of a 2-layer stack (float64, h = 64, input size 8), as in
``bench_gated.py``: forward through both layers, linear readout on the top
layer (``n_out = 8``), squared error summed over every output and step,
backward for every parameter gradient. Ours is ``StackedRNN.value_and_grad``;
torch's is ``nn.RNN``/``nn.LSTM``/``nn.GRU(num_layers=2)`` + ``nn.Linear`` +
``.backward()`` with the same weights, measured in the same run on 2 threads
(Elman: tanh, ``b_h`` as ``bias_ih``, ``bias_hh = 0``). Before timing, the
loss and the gradient of the top layer's recurrent weights are checked
against torch's. Ratios are torch ÷ ours, of the medians (the verdict) and of
the minima (less sensitive to background load).
"""

# ruff: noqa: I001  (bench_elman must load first: it fixes the thread counts before NumPy/torch)
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_elman
from bench_elman import (
    N_IN,
    N_OUT,
    _interleaved_medians,
    describe_threads,
    load_average,
    make_data,
    set_threads,
)

import numpy as np
import torch

from rnntheory import StackedRNN

N_LAYERS = 2
N_HIDDEN = 64
CONFIGS: list[tuple[str, int]] = [(cell, B) for cell in ("elman", "lstm", "gru") for B in (1, 32)]
FLOORS = {1: (10.0, "f64 ≥10× (B=1)"), 32: (2.0, "f64 ≥2× (B=32)")}


def make_pair(cell: str, B: int, T: int) -> tuple[Any, Any]:
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    model = StackedRNN.init(N_IN, N_HIDDEN, N_OUT, cell=cell, n_layers=N_LAYERS, seed=0, **opts)
    x, y = make_data(np.float64, T, B)
    mod = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        N_IN, N_HIDDEN, num_layers=N_LAYERS, dtype=torch.float64)
    lin = torch.nn.Linear(N_HIDDEN, N_OUT, dtype=torch.float64)
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            p = layer.params()
            if cell == "elman":
                p = {"weight_ih": p["W_hx"], "weight_hh": p["W_hh"], "bias_ih": p["b_h"],
                     "bias_hh": np.zeros(N_HIDDEN)}
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(mod, f"{k}_l{i}").copy_(torch.from_numpy(np.array(p[k])))
        lin.weight.copy_(torch.from_numpy(np.array(model.W_yh)))
        lin.bias.copy_(torch.from_numpy(np.array(model.b_y)))
    params = list(mod.parameters()) + list(lin.parameters())
    x3 = x[:, None, :] if x.ndim == 2 else x
    y3 = y[:, None, :] if y.ndim == 2 else y
    xt, yt = torch.from_numpy(np.ascontiguousarray(x3)), torch.from_numpy(np.ascontiguousarray(y3))
    top = f"{'W_hh' if cell == 'elman' else 'weight_hh'}_l{N_LAYERS - 1}"

    def ours() -> tuple[float, np.ndarray]:
        v, g = model.value_and_grad(x, y, loss="mse")
        return v, g.params()[top]

    def theirs() -> tuple[float, np.ndarray]:
        for p in params:
            p.grad = None
        out, _ = mod(xt)
        loss = 0.5 * ((lin(out) - yt) ** 2).sum()
        loss.backward()
        return float(loss.detach()), getattr(mod, f"weight_hh_l{N_LAYERS - 1}").grad.numpy()

    return ours, theirs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="T = 200, fewer repeats")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    args = ap.parse_args(argv)
    limits = set_threads()
    for line in describe_threads():
        print(line)
    print(load_average())
    T, repeats, budget = (200, 6, 1.0) if args.quick else (1000, 15, 4.0)
    rows = []
    for cell, B in CONFIGS:
        ours, theirs = make_pair(cell, B, T)
        v1, g1 = ours()
        v2, g2 = theirs()
        err = float(np.max(np.abs(g1 - g2)) / max(np.max(np.abs(g2)), 1e-300))
        if abs(v1 - v2) > 1e-8 * max(1.0, abs(v2)) or err > 1e-8:
            raise AssertionError(f"{cell} B={B}: mismatch with torch ({err:.2e})")
        med = _interleaved_medians({"ours": ours, "torch": theirs}, repeats, budget)
        ratio = med["torch"] / med["ours"]
        fl = FLOORS[B]
        rows.append({
            "cell": cell, "dtype": "float64", "n_hidden": N_HIDDEN, "n_layers": N_LAYERS, "batch": B, "T": T,
            "ours_ms": med["ours"] * 1e3, "torch_ms": med["torch"] * 1e3, "ratio": ratio,
            "floor": fl[0], "floor_text": fl[1], "pass": ratio >= fl[0], "max_rel_err": err,
            "min_ms": {k: 1e3 * v for k, v in bench_elman._MINIMA.items()},
        })
        print(f"  done: {cell} B={B}: ours {med['ours'] * 1e3:.2f} ms, torch {med['torch'] * 1e3:.2f} ms")
    print(f"\nStacked training step, L = {N_LAYERS}, h = {N_HIDDEN}, float64, T = {T}")
    head = f"{'config':<18} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10} {'of minima':>9}  floor"
    print(head)
    print("-" * (len(head) + 26))
    for r in rows:
        verdict = "PASS" if r["pass"] else "BELOW"
        mins = r["min_ms"]
        print(f"{r['cell']:<5} B={r['batch']:<3}        {r['ours_ms']:>9.2f} {r['torch_ms']:>9.2f} "
              f"{r['ratio']:>9.1f}x {mins['torch'] / mins['ours']:>8.1f}x  {r['floor_text']} {verdict}")
    print(load_average())
    if args.json:
        Path(args.json).write_text(json.dumps({"T": T, "rows": rows}, indent=1))
    del limits
    return 0


if __name__ == "__main__":
    sys.exit(main())
