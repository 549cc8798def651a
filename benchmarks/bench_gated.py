"""Speed of the LSTM and GRU training step against ``torch.nn.LSTM`` / ``nn.GRU``.

Run from the repository root::

    python benchmarks/bench_gated.py            # T = 1000
    python benchmarks/bench_gated.py --quick    # T = 200, fewer repeats

One training step, as in ``bench_elman.py``: forward over the sequence, linear
readout (``n_out = 8``), squared error summed over every output and step,
backward for every parameter gradient. Ours is ``LSTM/GRU.value_and_grad``;
torch's is ``nn.LSTM``/``nn.GRU`` + ``nn.Linear`` + ``.backward()`` with the
same weights, measured in the same run on 2 threads. Before timing, the loss
and ``∂E/∂weight_hh`` are checked against torch's. Ratios are torch ÷ ours.
"""

# ruff: noqa: I001  (bench_elman must load first: it fixes the thread counts before NumPy/torch)
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

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

from rnntheory import GRU, LSTM

CONFIGS: list[tuple[str, Any, int, int]] = [
    ("lstm", np.float64, 16, 1),
    ("lstm", np.float64, 64, 1),
    ("lstm", np.float64, 16, 32),
    ("lstm", np.float64, 256, 32),
    ("lstm", np.float32, 64, 1),
    ("lstm", np.float32, 64, 32),
    ("gru", np.float64, 16, 1),
    ("gru", np.float64, 64, 1),
    ("gru", np.float64, 256, 32),
    ("gru", np.float32, 64, 1),
    ("gru", np.float32, 64, 32),
]


def floor(cell: str, dtype: Any, n: int, B: int) -> tuple[float, str] | None:
    """The issue's floors (torch ÷ ours)."""
    if np.dtype(dtype) == np.float64:
        if n <= 64 and B == 1:
            return 5.0, "f64 ≥5× (h≤64, B=1)"
        if n == 256 and B == 32:
            return 1.0, "f64 ≥1× (h=256, B=32)"
        return None
    if cell == "gru":
        return 1.0, "f32 GRU ≥1×"
    if B == 1 and n <= 64:
        return 1.5, "f32 LSTM ≥1.5× (B=1)"
    if B == 32:
        return 0.8, "f32 LSTM ≥0.8× (B=32)"
    return None


def make_pair(cell: str, dtype: Any, n: int, B: int, T: int) -> tuple[Any, Any, Any]:
    cls = LSTM if cell == "lstm" else GRU
    model = cls.init(N_IN, n, N_OUT, seed=0, dtype=dtype)
    x, y = make_data(dtype, T, B)
    tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    mod = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(N_IN, n, dtype=tdt)
    lin = torch.nn.Linear(n, N_OUT, dtype=tdt)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(model.weight_ih))
        mod.weight_hh_l0.copy_(torch.from_numpy(model.weight_hh))
        mod.bias_ih_l0.copy_(torch.from_numpy(model.bias_ih))
        mod.bias_hh_l0.copy_(torch.from_numpy(model.bias_hh))
        lin.weight.copy_(torch.from_numpy(model.W_yh))
        lin.bias.copy_(torch.from_numpy(model.b_y))
    params = list(mod.parameters()) + list(lin.parameters())
    x3 = x[:, None, :] if x.ndim == 2 else x
    y3 = y[:, None, :] if y.ndim == 2 else y
    xt, yt = torch.from_numpy(np.ascontiguousarray(x3)), torch.from_numpy(np.ascontiguousarray(y3))

    def ours() -> tuple[float, np.ndarray]:
        v, g = model.value_and_grad(x, y, loss="mse")
        return v, g.weight_hh

    def theirs() -> tuple[float, np.ndarray]:
        for p in params:
            p.grad = None
        out, _ = mod(xt)
        loss = 0.5 * ((lin(out) - yt) ** 2).sum()
        loss.backward()
        return float(loss), mod.weight_hh_l0.grad.numpy()

    return model, ours, theirs


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
    for cell, dtype, n, B in CONFIGS:
        _, ours, theirs = make_pair(cell, dtype, n, B, T)
        v1, g1 = ours()
        v2, g2 = theirs()
        rtol = 1e-8 if np.dtype(dtype) == np.float64 else 1e-3
        err = float(np.max(np.abs(g1 - g2)) / max(np.max(np.abs(g2)), 1e-300))
        if abs(v1 - v2) > rtol * max(1.0, abs(v2)) or err > rtol:
            raise AssertionError(f"{cell} {np.dtype(dtype)} h={n} B={B}: mismatch with torch ({err:.2e})")
        med = _interleaved_medians({"ours": ours, "torch": theirs}, repeats, budget)
        ratio = med["torch"] / med["ours"]
        fl = floor(cell, dtype, n, B)
        rows.append({
            "cell": cell, "dtype": str(np.dtype(dtype)), "n_hidden": n, "batch": B, "T": T,
            "ours_ms": med["ours"] * 1e3, "torch_ms": med["torch"] * 1e3, "ratio": ratio,
            "floor": None if fl is None else fl[0], "floor_text": "" if fl is None else fl[1],
            "pass": None if fl is None else ratio >= fl[0], "max_rel_err": err,
        })
        print(f"  done: {cell} {np.dtype(dtype)} h={n} B={B}: ours {med['ours'] * 1e3:.2f} ms")
    print(f"\nTraining step (forward + readout + MSE + BPTT, all gradients), T = {T}")
    head = f"{'config':<26} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10}  floor"
    print(head)
    print("-" * (len(head) + 26))
    for r in rows:
        verdict = "" if r["pass"] is None else ("PASS" if r["pass"] else "BELOW")
        print(f"{r['cell']:<4} {r['dtype']:<7} h={r['n_hidden']:<3} B={r['batch']:<3}    "
              f"{r['ours_ms']:>9.2f} {r['torch_ms']:>9.2f} {r['ratio']:>9.1f}x  {r['floor_text']} {verdict}")
    print(load_average())
    if args.json:
        Path(args.json).write_text(json.dumps({"T": T, "rows": rows}, indent=1))
    del limits
    return 0


if __name__ == "__main__":
    sys.exit(main())
