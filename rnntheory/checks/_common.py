"""Independent oracles the ``verify`` rows share: a NumPy one-step Elman
reference written from the definitions, central differences, a relative error,
and exponent-unbounded log-norms of explicit products in mpmath."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..cells.elman import ElmanRNN

__all__ = ["fd_jacobian", "mp_log_norms", "rel_err", "step_numpy"]


def step_numpy(model: ElmanRNN, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One step written from the definitions, in float64 (the FD oracle's model)."""
    W = np.asarray(model.W_hh, np.float64)
    U = np.asarray(model.W_hx, np.float64)
    b = np.asarray(model.b_h, np.float64)
    f = model.activation.f
    g = f(W @ h + U @ x + b) if model.form == "standard" else W @ f(h) + U @ x + b
    if model.alpha is None:
        return g
    a = np.asarray(model.alpha, np.float64)
    return a * h + (1.0 - a) * g


def fd_jacobian(fun: Callable[[np.ndarray], np.ndarray], h: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    n = h.size
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps * max(1.0, abs(h[j]))
        cols.append((fun(h + e) - fun(h - e)) / (2 * e[j]))
    return np.stack(cols, axis=1)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale)


def mp_log_norms(J: np.ndarray) -> np.ndarray:
    """``ln σ_max(J_t ⋯ J_{k+1})`` for every pair: for each t the product is
    extended to the right, ``P ← P J_{k+1}``, in mpmath (unbounded exponents;
    the float64 entries are converted exactly) and σ_max is mpmath's SVD."""
    import mpmath

    T, n, _ = J.shape
    out = np.full((T + 1, T + 1), -np.inf)
    with mpmath.workdps(30):
        mats = [mpmath.matrix(Ji.tolist()) for Ji in J]
        for t in range(T + 1):
            out[t, t] = 0.0
            P = mpmath.eye(n)
            for k in range(t - 1, -1, -1):
                P = P * mats[k]
                top = max(mpmath.svd_r(P, compute_uv=False))
                if top == 0:
                    break
                out[t, k] = float(mpmath.log(top))
    return out
