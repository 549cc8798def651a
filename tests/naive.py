"""Slow, obvious loop references that the Numba kernels are checked against.

Nothing here imports the code under test's kernels: each function is written
from the equations (Eqs. 2–9, 14 of the article) with plain Python loops over
steps and NumPy only for small matrix-vector products. Activations and their
derivatives are written out again here (not taken from ``rnntheory``).
"""

from __future__ import annotations

import numpy as np


def act(name, x):
    x = np.asarray(x, dtype=float)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # an independent formula for σ
    if name == "identity":
        return x.copy()
    if name == "relu":
        return np.where(x > 0, x, 0.0)
    raise ValueError(name)


def act_prime(name, x):
    x = np.asarray(x, dtype=float)
    if name == "tanh":
        return 1.0 / np.cosh(x) ** 2
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return s * (1.0 - s)
    if name == "identity":
        return np.ones_like(x)
    if name == "relu":
        return (x > 0).astype(float)
    raise ValueError(name)


def params(model):
    """The model's parameters as float64 arrays (readout filled in as identity)."""
    W = np.asarray(model.W_hh, float)
    U = np.asarray(model.W_hx, float)
    b = np.asarray(model.b_h, float)
    n = W.shape[0]
    V = np.eye(n) if model.W_yh is None else np.asarray(model.W_yh, float)
    c = np.zeros(V.shape[0]) if model.b_y is None else np.asarray(model.b_y, float)
    alpha = None if model.alpha is None else np.asarray(model.alpha, float)
    return W, U, b, V, c, alpha


def step(model, h_prev, x_t):
    """One step of the recurrence, written from the definitions."""
    W, U, b, _, _, alpha = params(model)
    name = model.activation.name
    if model.form == "standard":
        g = act(name, W @ h_prev + U @ x_t + b)
    else:
        g = W @ act(name, h_prev) + U @ x_t + b
    if alpha is None:
        return g
    return alpha * h_prev + (1.0 - alpha) * g


def forward(model, x, h0=None):
    """Hidden states ``(T+1, n)`` of a single sequence ``x (T, n_in)``."""
    x = np.asarray(x, float)
    n = model.n_hidden
    h = np.zeros(n) if h0 is None else np.asarray(h0, float)
    hs = [h]
    for t in range(x.shape[0]):
        h = step(model, h, x[t])
        hs.append(h)
    return np.array(hs)


def loss(model, x, y, kind, mask=None, h0=None):
    """Eq. 4: the per-step losses summed (single sequence), in float64."""
    _, _, _, V, c, _ = params(model)
    hs = forward(model, x, h0)
    total = 0.0
    for t in range(1, hs.shape[0]):
        w = 1.0 if mask is None else float(mask[t - 1])
        if w == 0.0:
            continue
        z = V @ hs[t] + c
        if kind == "xent":
            zmax = z.max()
            lse = zmax + np.log(np.sum(np.exp(z - zmax)))
            total += w * (lse - z[int(y[t - 1])])
        else:
            total += w * 0.5 * np.sum((z - y[t - 1]) ** 2)
    return total


def step_jacobian(model, h_prev, x_t):
    """``∂h_t/∂h_{t−1}`` (numerator layout) from the definitions."""
    W, U, b, _, _, alpha = params(model)
    name = model.activation.name
    if model.form == "standard":
        J = np.diag(act_prime(name, W @ h_prev + U @ x_t + b)) @ W
    else:
        J = W @ np.diag(act_prime(name, h_prev))
    if alpha is None:
        return J
    return np.diag(alpha) + np.diag(1.0 - alpha) @ J


def jacobians(model, x, h0=None):
    """All step Jacobians ``(T, n, n)``; entry ``i−1`` is ``∂h_i/∂h_{i−1}``."""
    hs = forward(model, x, h0)
    x = np.asarray(x, float)
    return np.array([step_jacobian(model, hs[i - 1], x[i - 1]) for i in range(1, hs.shape[0])])


def product(Js, t, k):
    """``∂h_t/∂h_k = J_t J_{t−1} ⋯ J_{k+1}`` by explicit multiplication."""
    n = Js.shape[1]
    P = np.eye(n)
    for i in range(k + 1, t + 1):
        P = Js[i - 1] @ P
    return P


def log_norms_svd(Js):
    """``[t, k] = ln σ_max(∂h_t/∂h_k)`` by one SVD per explicit product."""
    T = Js.shape[0]
    out = np.full((T + 1, T + 1), -np.inf)
    for t in range(T + 1):
        for k in range(t + 1):
            out[t, k] = np.log(np.linalg.svd(product(Js, t, k), compute_uv=False)[0])
    return out


def bptt(model, x, y, kind, mask=None, h0=None):
    """Reverse-mode gradients of a single sequence, one step at a time.

    Returns a dict with the parameter gradients and ``flow`` ``(T+1, n)``
    (``∂E/∂h_k`` for k = 0..T).
    """
    W, U, b, V, c, alpha = params(model)
    name = model.activation.name
    x = np.asarray(x, float)
    T = x.shape[0]
    n = W.shape[0]
    hs = forward(model, x, h0)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dV, dc = np.zeros_like(V), np.zeros_like(c)
    flow = np.zeros((T + 1, n))
    carry = np.zeros(n)  # ∂E/∂h_t arriving from step t+1
    for t in range(T, 0, -1):
        w = 1.0 if mask is None else float(mask[t - 1])
        z = V @ hs[t] + c
        if w == 0.0:
            dz = np.zeros_like(z)
        elif kind == "xent":
            p = np.exp(z - z.max())
            p /= p.sum()
            dz = w * (p - np.eye(len(z))[int(y[t - 1])])
        else:
            dz = w * (z - y[t - 1])
        dV += np.outer(dz, hs[t])
        dc += dz
        gh = V.T @ dz + carry
        flow[t] = gh
        hp = hs[t - 1]
        if alpha is None:
            gg = gh
            back = np.zeros(n)
        else:
            gg = (1.0 - alpha) * gh
            back = alpha * gh
        if model.form == "standard":
            a = W @ hp + U @ x[t - 1] + b
            da = gg * act_prime(name, a)
            dW += np.outer(da, hp)
            dU += np.outer(da, x[t - 1])
            db += da
            carry = back + W.T @ da
        else:
            fh = act(name, hp)
            dW += np.outer(gg, fh)
            dU += np.outer(gg, x[t - 1])
            db += gg
            carry = back + act_prime(name, hp) * (W.T @ gg)
    flow[0] = carry
    return {"W_hh": dW, "W_hx": dU, "b_h": db, "W_yh": dV, "b_y": dc, "flow": flow}
