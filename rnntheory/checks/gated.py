"""``verify`` row on the gated cells: truncated BPTT of the LSTM and GRU is
Williams & Peng's BPTT(k1, k2), against central differences of forward passes."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..cells.gated import GRU, LSTM
from . import check
from ._context import CheckContext
from ._result import CheckResult


def _block_loss(m: LSTM | GRU, x: np.ndarray, y: np.ndarray, loss: str, w: np.ndarray, start: dict[str, Any]) -> float:
    """``Σ_t w_t E_t`` of a forward pass over ``x`` from the states ``start``."""
    tr = m.forward(x, **start)
    assert tr.y is not None
    Z = np.asarray(tr.y, np.float64)
    if loss == "xent":
        Z = Z - Z.max(axis=-1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=-1, keepdims=True))
        return float(-(w * logp[np.arange(len(y)), y]).sum())
    return float(0.5 * (w * ((Z - y) ** 2).sum(axis=-1)).sum())


@check("gated-truncation", order=160)
def gated_truncation(ctx: CheckContext) -> CheckResult:
    """``rnntheory verify`` row: truncated BPTT of the LSTM and GRU is BPTT(k1, k2).

    The oracle: for a random direction ``v`` of the parameters, ``⟨g, v⟩`` must
    equal the central difference along ``v`` of ``Σ_blocks Σ_{t∈block} w_t E_t``
    where each block's losses come from a forward pass started at the state
    ``(h, c)`` of step ``e − k2`` of the unperturbed run, held fixed (the
    definition of Williams & Peng's BPTT(k1, k2): nothing before the cut is
    differentiated). Forward passes only: independent of the backward kernels.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(1990)
    T, eps = 7, 1e-6
    worst, n_models, pairs = 0.0, 0, 0
    for cls in (LSTM, GRU):
        for loss in ("xent", "mse"):
            m = cls.init(2, 3, 3, seed=int(rng.integers(1 << 30)))
            n_models += 1
            x = rng.normal(size=(T, 2))
            y = rng.integers(0, 3, T) if loss == "xent" else rng.normal(size=(T, 3))
            mask = rng.uniform(0.2, 1.5, T)
            tr = m.forward(x)
            names = list(m.params())
            for k1, k2 in ((1, 1), (1, 3), (1, T), (2, 3), (3, 3), (2, 5)):
                _, g = m.value_and_grad(x, y, loss=loss, mask=mask, truncate=k2 if k1 == 1 else (k1, k2))
                v = {name: rng.normal(size=p.shape) for name, p in m.params().items()}
                got = sum(float(np.vdot(g.params()[name], v[name])) for name in names)
                fd = 0.0
                for e in range(k1, T + k1, k1):
                    e = min(e, T)
                    first, cut = ((e - 1) // k1) * k1 + 1, max(e - k2, 0)
                    w = np.zeros(T)
                    w[first - 1 : e] = mask[first - 1 : e]
                    start = {"h0": tr.h[cut]} | ({"c0": tr.c[cut]} if tr.c is not None else {})
                    for sign in (1.0, -1.0):
                        mv = m.replace(**{nm: m.params()[nm] + sign * eps * v[nm] for nm in names})
                        fd += sign * _block_loss(mv, x[cut:e], y[cut:e], loss, w[cut:e], start) / (2 * eps)
                worst = max(worst, abs(got - fd) / max(1.0, abs(fd)))
                pairs += 1
    return CheckResult(
        "gated-truncation",
        "LSTM/GRU truncated BPTT (sliding k2, BPTT(k1, k2)): ⟨g, v⟩ = directional derivative of the "
        "block losses with the state (h, c) held fixed at e − k2 (Williams & Peng 1990)",
        n_models, pairs, worst, bool(worst <= 1e-6),
        f"worst relative error {worst:.2g} against central differences of forward passes",
        time.perf_counter() - t0,
    )
