"""Slow, obvious loop references that the Numba kernels are checked against.

Nothing here imports the code under test's kernels: each function is written
from the equations (Eqs. 2–9, 14 of the article) with plain Python loops over
steps and NumPy only for small matrix-vector products. Activations and their
derivatives are written out again here (not taken from ``rnntheory``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


# --------------------------------------------------------------------------
# Batched helpers: one single-sequence reference per sequence of the batch.
def forward_batch(model, x, h0=None):
    """Hidden states ``(T+1, B, n)`` of ``x (T, B, n_in)``, one sequence at a time."""
    x = np.asarray(x, float)
    B = x.shape[1]
    return np.stack(
        [forward(model, x[:, b], None if h0 is None else np.asarray(h0, float)[b]) for b in range(B)],
        axis=1,
    )


def bptt_batch(model, x, y, kind, mask=None, h0=None):
    """Per-sequence :func:`bptt` results, as a list (one dict per sequence)."""
    x = np.asarray(x, float)
    out = []
    for b in range(x.shape[1]):
        out.append(
            bptt(
                model,
                x[:, b],
                y[:, b],
                kind,
                None if mask is None else np.asarray(mask)[:, b],
                None if h0 is None else np.asarray(h0, float)[b],
            )
        )
    return out


# --------------------------------------------------------------------------
# Complex-capable reference (for complex-step differentiation).
#
# The functions above cast to float on purpose; these take the parameters as
# arguments and never cast, so a complex perturbation flows through. Only
# analytic operations are used (no abs, max of complex, conj): tanh, the
# logistic function written as 1/(1+exp(−x)), the identity.
def act_c(name, x):
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "identity":
        return x
    raise ValueError(f"{name} is not analytic; no complex-step reference")


def loss_p(p, name, form, x, y, kind, mask=None, h0=None, k_start=0, h_k=None):
    """Eq. 4 from a parameter dict ``p`` (W_hh, W_hx, b_h, W_yh, b_y, alpha), complex-safe.

    With ``h_k`` given, the state at step ``k_start`` is replaced by ``h_k`` and
    only the terms ``E_t`` for ``t ≥ max(k_start, 1)`` are summed: the part of
    the loss that depends on ``h_{k_start}``.
    """
    W, U, b, V, c, alpha = p["W_hh"], p["W_hx"], p["b_h"], p["W_yh"], p["b_y"], p["alpha"]
    T = x.shape[0]
    if h_k is None:
        h = np.zeros(W.shape[0]) if h0 is None else h0
        hs = [h]
        for t in range(T):
            hs.append(_step_p(W, U, b, alpha, name, form, hs[-1], x[t]))
        start = 1
    else:
        hs = [None] * k_start + [h_k]
        for t in range(k_start, T):
            hs.append(_step_p(W, U, b, alpha, name, form, hs[-1], x[t]))
        start = max(k_start, 1)
    total = 0.0
    for t in range(start, T + 1):
        w = 1.0 if mask is None else float(mask[t - 1])
        if w == 0.0:
            continue
        z = V @ hs[t] + c
        if kind == "xent":
            shift = np.max(np.real(z))  # any constant shift is exact for log-sum-exp
            lse = shift + np.log(np.sum(np.exp(z - shift)))
            total = total + w * (lse - z[int(y[t - 1])])
        else:
            d = z - y[t - 1]
            total = total + w * 0.5 * np.sum(d * d)
    return total


def _step_p(W, U, b, alpha, name, form, h_prev, x_t):
    if form == "standard":
        g = act_c(name, W @ h_prev + U @ x_t + b)
    else:
        g = W @ act_c(name, h_prev) + U @ x_t + b
    if alpha is None:
        return g
    return alpha * h_prev + (1.0 - alpha) * g


def param_dict(model):
    """The parameters as float64 arrays in a dict for :func:`loss_p`."""
    W, U, b, V, c, alpha = params(model)
    return {"W_hh": W, "W_hx": U, "b_h": b, "W_yh": V, "b_y": c, "alpha": alpha}


def step_c(model, h_prev, x_t):
    """:func:`step` without casts (complex-safe; tanh, sigmoid, identity)."""
    p = param_dict(model)
    return _step_p(p["W_hh"], p["W_hx"], p["b_h"], p["alpha"], model.activation.name, model.form,
                   h_prev, np.asarray(x_t, float))


def log_norms_mp(Js, dps=30):
    """``ln σ_max(J_t ⋯ J_{k+1})`` for every pair, in mpmath arithmetic.

    mpmath numbers have an unbounded exponent range, so this oracle neither
    underflows nor overflows where float64 explicit products would (a product
    of norm e^-800 is 0 in float64); an exactly zero product gives ``-inf``.
    The float64 Jacobians are converted exactly; σ_max is the square root of
    the largest eigenvalue of PᵀP (mpmath ``eigsy``).
    """
    import mpmath

    with mpmath.workdps(dps):
        T, n, _ = Js.shape
        mats = [mpmath.matrix(J.tolist()) for J in Js]
        out = np.full((T + 1, T + 1), -np.inf)
        for k in range(T + 1):
            out[k, k] = 0.0
            P = mpmath.eye(n)
            for t in range(k + 1, T + 1):
                P = mats[t - 1] * P
                if all(P[i, j] == 0 for i in range(n) for j in range(n)):
                    out[t:, k] = -np.inf
                    break
                ev = mpmath.eigsy(P.T * P, eigvals_only=True)
                out[t, k] = float(mpmath.log(max(ev)) / 2)
        return out


# ----------------------------------------------------------------------------- gated cells
def _sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def lstm_forward(m, x, h0=None, c0=None):
    """LSTM (PyTorch LSTMCell conventions) over a single sequence, by the definition."""
    n = m.n_hidden
    Wi, Wh = np.asarray(m.weight_ih, float), np.asarray(m.weight_hh, float)
    bi, bh = np.asarray(m.bias_ih, float), np.asarray(m.bias_hh, float)
    h = np.zeros(n) if h0 is None else np.asarray(h0, float)
    c = np.zeros(n) if c0 is None else np.asarray(c0, float)
    hs, cs = [h], [c]
    for xt in np.asarray(x, float):
        a = Wi @ xt + bi + Wh @ h + bh
        i, f, g, o = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.array(hs), np.array(cs)


def gru_forward(m, x, h0=None):
    """GRU (PyTorch GRUCell conventions) over a single sequence, by the definition."""
    n = m.n_hidden
    Wi, Wh = np.asarray(m.weight_ih, float), np.asarray(m.weight_hh, float)
    bi, bh = np.asarray(m.bias_ih, float), np.asarray(m.bias_hh, float)
    h = np.zeros(n) if h0 is None else np.asarray(h0, float)
    hs = [h]
    for xt in np.asarray(x, float):
        gi = Wi @ xt + bi
        gh = Wh @ h + bh
        r = _sig(gi[:n] + gh[:n])
        z = _sig(gi[n:2 * n] + gh[n:2 * n])
        nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
        h = (1.0 - z) * nn + z * h
        hs.append(h)
    return np.array(hs)


def gated_loss(m, x, y, kind, h0=None, c0=None):
    """Eq. 4 for a gated cell with its readout (single sequence)."""
    if m.NAME == "LSTM":
        hs, _ = lstm_forward(m, x, h0, c0)
    else:
        hs = gru_forward(m, x, h0)
    V = np.eye(m.n_hidden) if m.W_yh is None else np.asarray(m.W_yh, float)
    c_ = np.zeros(V.shape[0]) if m.b_y is None else np.asarray(m.b_y, float)
    total = 0.0
    for t in range(1, hs.shape[0]):
        z = V @ hs[t] + c_
        if kind == "xent":
            zm = z.max()
            total += zm + np.log(np.sum(np.exp(z - zm))) - z[int(y[t - 1])]
        else:
            total += 0.5 * np.sum((z - y[t - 1]) ** 2)
    return total


def bptt_windowed(model, x, y, kind, k2, h0=None, k1=1):
    """Truncated BPTT as the windowed double sum of Eq. 6, term by term.

    ``∂E/∂θ = Σ_t Σ_{k: 0 ≤ t−k < k2} (∂E_t/∂h_t)(∂h_t/∂h_k)(∂⁺h_k/∂θ)`` with the
    products ∂h_t/∂h_k formed explicitly from the step Jacobians and the
    immediate derivatives ∂⁺h_k/∂θ from the cell's definition (single sequence).
    With ``k1 > 1`` (Williams & Peng's BPTT(k1, k2)) the window of ``E_t`` is
    measured from the end ``e(t) = min(⌈t/k1⌉·k1, T)`` of its block of ``k1`` steps.
    Returns the recurrent-weight gradient ``W_hh`` and the truncated flow
    ``flow[k] = Σ_{t: 0 ≤ t−k < k2} ∂E_t/∂h_t ∂h_t/∂h_k``.
    """
    W, U, b, V, c, alpha = params(model)
    name = model.activation.name
    x = np.asarray(x, float)
    T = x.shape[0]
    n = W.shape[0]
    hs = forward(model, x, h0)
    Js = jacobians(model, x, h0)
    dW = np.zeros_like(W)
    flow = np.zeros((T + 1, n))
    for t in range(1, T + 1):
        z = V @ hs[t] + c
        if kind == "xent":
            p = np.exp(z - z.max())
            p /= p.sum()
            dz = p - np.eye(len(z))[int(y[t - 1])]
        else:
            dz = z - y[t - 1]
        e_t = V.T @ dz  # ∂E_t/∂h_t
        end = min(-(-t // k1) * k1, T)
        for k in range(max(0, end - k2 + 1), t + 1):
            row = product(Js, t, k).T @ e_t  # (∂E_t/∂h_t)(∂h_t/∂h_k) as a vector
            flow[k] += row
            if k == 0:
                continue
            hp = hs[k - 1]
            s = np.ones(n) if alpha is None else 1.0 - alpha
            if model.form == "standard":
                a = W @ hp + U @ x[k - 1] + b
                dW += np.outer(row * s * act_prime(name, a), hp)
            else:
                dW += np.outer(row * s, act(name, hp))
    return dW, flow


# --------------------------------------------------------------------------
# Pascanu's regularizer Ω (Eqs. 15–16), from explicit step Jacobians.
def omega_terms(model, x, flow, h0=None, W=None, variant="squared"):
    """Per-step ``(‖J_{k+1}ᵀ v‖/‖v‖)`` ratio terms of Ω for one sequence.

    ``J_{k+1}`` is :func:`step_jacobian` at the states of ``model`` (forward pass
    of ``model`` itself), but built with the recurrent matrix ``W`` when given
    (``h_k``, the input and ``v = flow[k+1]`` held fixed): the function whose
    derivative in ``W`` is the fixed-flow gradient. Returns
    ``(values Ω_k, squared norms ‖v‖²)`` for ``k = 0..T−1``.
    """
    x = np.asarray(x, float)
    hs = forward(model, x, h0)
    m = model if W is None else model.replace(W_hh=np.asarray(W))
    vals, nv2 = [], []
    for k in range(x.shape[0]):
        v = np.asarray(flow[k + 1], float)
        J = step_jacobian(m, hs[k], x[k])
        nv = float(v @ v)
        nu = float(np.sum((J.T @ v) ** 2))
        r = nu / nv if nv > 0 else 1.0
        vals.append((r - 1.0) ** 2 if variant == "squared" else (np.sqrt(r) - 1.0) ** 2)
        nv2.append(nv)
    return np.array(vals), np.array(nv2)


def omega(model, x, y, kind, mask=None, variant="squared", threshold=1e-20, W=None):
    """Ω of a single sequence ``(T, n_in)`` or a batch ``(T, B, n_in)``: the mean
    of ``Ω_k`` over every step and sequence with ``‖∂E/∂h_{k+1}‖² ≥ threshold``
    (0 when none counts); the flow from :func:`bptt`."""
    x = np.asarray(x, float)
    if x.ndim == 2:
        x = x[:, None]
        y = np.asarray(y)[:, None]
        mask = None if mask is None else np.asarray(mask)[:, None]
    total, count = 0.0, 0
    for b in range(x.shape[1]):
        mb = None if mask is None else np.asarray(mask)[:, b]
        flow = bptt(model, x[:, b], np.asarray(y)[:, b], kind, mb)["flow"]
        vals, nv2 = omega_terms(model, x[:, b], flow, W=W, variant=variant)
        keep = nv2 >= threshold
        total += float(np.sum(vals[keep]))
        count += int(np.sum(keep))
    return total / count if count else 0.0


# ----------------------------------------------------------------------------- gated cells, any dtype
def gated_states_p(cell, p, x, h0=None, c0=None):
    """The states of an LSTM (``cell="lstm"``) or GRU (``"gru"``) over one sequence
    from a parameter dict ``p`` (``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``), by the definition (PyTorch's LSTMCell/GRUCell), written with
    operations that carry a complex perturbation (complex-step derivatives).

    Returns ``(hs, cs)``: ``h_1..h_T`` and ``c_1..c_T`` as ``(T, n)`` arrays
    (``cs`` None for the GRU)."""
    Wi, Wh, bi, bh = p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    n = Wh.shape[1]
    dt = np.result_type(Wi, Wh, bi, bh, float)
    h = np.zeros(n, dtype=dt) if h0 is None else np.asarray(h0) + np.zeros(n, dtype=dt)
    c = np.zeros(n, dtype=dt) if c0 is None else np.asarray(c0) + np.zeros(n, dtype=dt)
    hs, cs = [], []
    for xt in np.asarray(x, float):
        if cell == "lstm":
            a = Wi @ xt + bi + Wh @ h + bh
            i, f, g, o = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
            c = f * c + i * g
            h = o * np.tanh(c)
            cs.append(c)
        else:
            gi = Wi @ xt + bi
            gh = Wh @ h + bh
            r = _sig(gi[:n] + gh[:n])
            z = _sig(gi[n:2 * n] + gh[n:2 * n])
            nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
            h = (1.0 - z) * nn + z * h
        hs.append(h)
    return np.array(hs), (np.array(cs) if cell == "lstm" else None)


# ----------------------------------------------------------------------------- gated generators
def gated_generator_loss(cell, p, x, y, kind, own, h0=None, c0=None, start=None, mask=None):
    """Eq. 4 of an LSTM/GRU generator over one sequence, by the definition.

    ``p``: ``weight_ih (G·n, n_in + m)`` over ``[x_t; o^fb_t]``, ``weight_hh``,
    ``bias_ih``, ``bias_hh``, ``W_yh``, ``b_y``. Step ``t`` (0-based here) is fed
    ``start`` (zeros) at ``t = 0``, else the own output ``o_{t−1}`` when
    ``own[t]`` and the target ``y_{t−1}`` (one-hot for ``"xent"``) otherwise;
    ``o = softmax(z)`` for ``"xent"``, ``z`` for ``"mse"``. PyTorch's
    LSTMCell/GRUCell equations, written here with NumPy (float64 or any
    dtype the arrays carry).
    """
    Wi, Wh, bi, bh = (np.asarray(p[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    V, c_ = np.asarray(p["W_yh"]), np.asarray(p["b_y"])
    n, m = Wh.shape[1], V.shape[0]
    h = np.zeros(n, Wh.dtype) if h0 is None else np.asarray(h0)
    c = np.zeros(n, Wh.dtype) if c0 is None else np.asarray(c0)
    prev_own = np.zeros(m, Wh.dtype) if start is None else np.asarray(start)
    prev_tgt = prev_own
    total = 0.0
    for t in range(len(x)):
        fb = prev_own if own[t] else prev_tgt
        u = np.concatenate([np.asarray(x[t]), fb])
        if cell == "lstm":
            a = Wi @ u + bi + Wh @ h + bh
            i, f, g, o = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
            c = f * c + i * g
            h = o * np.tanh(c)
        else:
            gi, gh = Wi @ u + bi, Wh @ h + bh
            r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
            h = (1.0 - z) * np.tanh(gi[2 * n:] + r * gh[2 * n:]) + z * h
        zt = V @ h + c_
        w = 1.0 if mask is None else float(mask[t])
        if kind == "xent":
            zm = zt.max()
            e = np.exp(zt - zm)
            total += w * (zm + np.log(e.sum()) - zt[int(y[t])])
            prev_own, prev_tgt = e / e.sum(), np.eye(m)[int(y[t])]
        else:
            total += w * 0.5 * float(np.sum((zt - y[t]) ** 2))
            prev_own, prev_tgt = zt, np.asarray(y[t])
    return total


# ---------------------------------------------------------------------------
# Pascanu's Ω of a stacked model: a NumPy reference (the library's first,
# vectorised implementation, kept as an oracle of the stacked kernels), with
# forward-mode tangents carried as value/derivative pairs over the N = T·B rows.
# ---------------------------------------------------------------------------


def _sigm(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _is_lstm(layer):
    return hasattr(layer, "weight_hh") and layer.weight_hh.shape[0] == 4 * layer.weight_hh.shape[1]


def _tsum(a: Any, b: Any) -> Any:
    """Sum of two tangents, ``None`` standing for zero."""
    if a is None:
        return b
    return a if b is None else a + b


def _tmul(t: Any, x: Any) -> Any:
    """A tangent times ``x`` (``None`` stays ``None``)."""
    return None if t is None else t * x


class _D:
    """A value with a tangent (forward-mode derivative along one direction), rows of
    ``(N, ·)`` arrays; a tangent of ``None`` is zero (the first pass needs values only)."""

    __slots__ = ("dot", "val")

    def __init__(self, val: np.ndarray, dot: Any) -> None:
        self.val: np.ndarray = val
        self.dot: Any = dot

    def __add__(self, o: Any) -> _D:
        if isinstance(o, _D):
            return _D(self.val + o.val, _tsum(self.dot, o.dot))
        return _D(self.val + o, self.dot)

    __radd__ = __add__

    def __sub__(self, o: Any) -> _D:
        if isinstance(o, _D):
            return _D(self.val - o.val, _tsum(self.dot, _tmul(o.dot, -1.0)))
        return _D(self.val - o, self.dot)

    def __rsub__(self, o: Any) -> _D:
        return _D(o - self.val, _tmul(self.dot, -1.0))

    def __mul__(self, o: Any) -> _D:
        if isinstance(o, _D):
            return _D(self.val * o.val, _tsum(_tmul(self.dot, o.val), _tmul(o.dot, self.val)))
        return _D(self.val * o, _tmul(self.dot, o))

    __rmul__ = __mul__

    def cols(self, j0: int, j1: int) -> _D:
        """Columns ``j0:j1`` of value and tangent."""
        return _D(self.val[:, j0:j1], None if self.dot is None else self.dot[:, j0:j1])


def _cat(parts: Sequence[_D]) -> _D:
    """Values and tangents side by side (columns)."""
    dots = [p.dot for p in parts]
    dot: Any = None if any(d is None for d in dots) else np.concatenate(dots, axis=1)
    return _D(np.concatenate([p.val for p in parts], axis=1), dot)


def _om_sig(a: _D) -> _D:
    s = _sigm(a.val)
    return _D(s, None if a.dot is None else act_prime("sigmoid", a.val) * a.dot)


def _om_dsig(a: _D) -> _D:
    """``σ′(a)`` with its tangent ``σ″(a) ȧ`` (``σ″ = σ′(1 − 2σ)``)."""
    p = act_prime("sigmoid", a.val)
    return _D(p, None if a.dot is None else p * (1.0 - 2.0 * _sigm(a.val)) * a.dot)


def _om_tanh(a: _D) -> _D:
    return _D(np.tanh(a.val), None if a.dot is None else act_prime("tanh", a.val) * a.dot)


def _om_dtanh(a: _D) -> _D:
    """``tanh′(a)`` with its tangent ``tanh″(a) ȧ`` (``tanh″ = −2 tanh · tanh′``)."""
    p = act_prime("tanh", a.val)
    return _D(p, None if a.dot is None else -2.0 * np.tanh(a.val) * p * a.dot)


def _gate(a: _D, rows: dict[str, np.ndarray], key: str, j0: int, j1: int) -> tuple[_D, _D]:
    """``(φ(a), φ′(a))`` with their tangents for the columns ``j0:j1`` of the cached
    ``rows[key]`` and ``rows[key + "'"]`` (``φ`` = σ for ``"sig"``, tanh for ``"tanh"``;
    ``σ″ = σ′(1 − 2σ)``, ``tanh″ = −2 tanh · tanh′``), evaluated once per layer."""
    v, p = rows[key][:, j0:j1], rows[key + "'"][:, j0:j1]
    if a.dot is None:
        return _D(v, None), _D(p, None)
    second = p * (1.0 - 2.0 * v) if key == "sig" else -2.0 * v * p
    return _D(v, p * a.dot), _D(p, second * a.dot)


def _dact(name: str, a: _D) -> _D:
    """``f′(a)`` with its tangent ``f″(a) ȧ`` (``f″ = 0`` for identity and ReLU)."""
    if name == "tanh":
        return _om_dtanh(a)
    if name == "sigmoid":
        return _om_dsig(a)
    return _D(act_prime(name, a.val), None)


def _layer_pull(
    layer: Any, rows: dict[str, np.ndarray], w: np.ndarray, zs: np.ndarray | None, zx: np.ndarray | None,
    need_x: bool,
) -> tuple[np.ndarray, np.ndarray | None, Any, _D, _D]:
    """One layer's step on ``N = T·B`` rows, with the cotangent ``w`` on its new state
    and the tangent ``(zs, zx)`` on its previous state and its input.

    Returns ``(Aᵀw, Xᵀw, A zs + X zx, δ, P)``: ``δ ⊗ P`` (summed over rows) is the
    gradient of ``wᵀ F`` with respect to the recurrent matrix (``δ`` the signal at the
    rows of ``W``, ``P`` what ``W`` multiplies), ``δ.dot`` and ``P.dot`` their
    derivatives along ``(zs, zx)``. ``zs=None``: values only (no tangent; ``A zs`` is
    ``None``); ``zx=None``: no input tangent (layer 1, whose input is not part of the
    state). ``Xᵀw`` is formed when ``need_x``.
    """
    f64 = np.float64
    h = rows["h"]
    tan = zs is not None
    zt: Any = zs
    if hasattr(layer, "W_hh"):
        W = np.asarray(layer.W_hh, f64)
        U = np.asarray(layer.W_hx, f64)
        n = W.shape[0]
        al = None if layer.alpha is None else np.broadcast_to(np.asarray(layer.alpha, f64), (n,))
        beta: Any = 1.0 if al is None else 1.0 - al
        ux: Any = zx @ U.T if zx is not None else 0.0
        aname = layer.activation.name
        Jz: Any = None
        if layer.form == "standard":  # h′ = α h + β f(W h + U x + b)
            a = _D(rows["a"], zt @ W.T + ux if tan else None)
            fp = _dact(aname, a)
            d = fp * (beta * w)  # δ = β f′(a) ⊙ w
            P = _D(h, zs)
            ATw = d.val @ W
            if tan:
                Jz = beta * fp.val * a.dot
        else:  # Pascanu's form: h′ = α h + β (W f(h) + U x + b)
            fph = act_prime(aname, h)
            P = _D(act(aname, h), fph * zt if tan else None)
            d = _D(beta * w, None)
            ATw = fph * (d.val @ W)
            if tan:
                Jz = beta * (P.dot @ W.T + ux)
        if al is not None:
            ATw = ATw + al * w
            if tan:
                Jz = Jz + al * zt
        return ATw, (d.val @ U if need_x else None), Jz, d, P
    W = np.asarray(layer.weight_hh, f64)
    U = np.asarray(layer.weight_ih, f64)
    n = W.shape[1]
    pre = rows["pre"]
    zh = zs[:, :n] if zs is not None else None
    gh: Any = None
    if zh is not None:
        gh = zh @ W.T
        if zx is not None:
            gh = gh + zx @ U.T
    P = _D(h, zh)
    if _is_lstm(layer):
        a = _D(pre, gh)
        ai, af, ag, ao = (a.cols(j * n, (j + 1) * n) for j in range(4))
        (i, di), (f, df) = _gate(ai, rows, "sig", 0, n), _gate(af, rows, "sig", n, 2 * n)
        (g, dg), (o, do) = _gate(ag, rows, "tanh", 0, n), _gate(ao, rows, "sig", 3 * n, 4 * n)
        c = _D(rows["c"], zs[:, n:] if zs is not None else None)
        c2 = _D(rows["c2"], (f * c + i * g).dot if tan else None)  # the recorded c_{k+1}, its tangent
        tc, dtc = _gate(c2, rows, "tanhc", 0, n)
        wh, wc = w[:, :n], w[:, n:]
        dc = (o * dtc) * wh + wc  # δc′ = w_c + w_h ⊙ o ⊙ tanh′(c′)
        d = _cat((dc * g * di, dc * c * df, dc * i * dg, (tc * do) * wh))
        ATw = np.concatenate([d.val @ W, dc.val * f.val], axis=1)
        Jz = np.concatenate([(o * tc).dot, c2.dot], axis=1) if tan else None
        return ATw, (d.val @ U if need_x else None), Jz, d, P
    # GRU: pre = (a_r, a_z, a_n, W_hn h + b_hn); a_n = U_n x + b_in + r ⊙ (W_hn h + b_hn)
    ar = _D(pre[:, :n], gh[:, :n] if tan else None)
    az = _D(pre[:, n:2 * n], gh[:, n:2 * n] if tan else None)
    hn = _D(pre[:, 3 * n:], zh @ W[2 * n:].T if zh is not None else None)
    (r, dr), (z, dz) = _gate(ar, rows, "sig", 0, n), _gate(az, rows, "sig", n, 2 * n)
    an_dot: Any = None
    if tan:
        an_dot = (r * hn).dot
        if zx is not None:
            an_dot = an_dot + zx @ U[2 * n:].T
    an = _D(pre[:, 2 * n:3 * n], an_dot)
    nn, dnn = _gate(an, rows, "tanh", 0, n)
    dan = (1.0 - z) * dnn * w  # δ at a_n
    daz = (P - nn) * dz * w  # δ at a_z
    dar = dan * hn * dr  # δ at a_r
    d = _cat((dar, daz, dan * r))  # the last: δ at W_hn h + b_hn
    ATw = d.val @ W + z.val * w
    XTw = np.concatenate([dar.val, daz.val, dan.val], axis=1) @ U if need_x else None
    return ATw, XTw, ((1.0 - z) * nn + z * P).dot if tan else None, d, P


def _stack_rows(model, trace):
    """Each layer's recorded arrays as ``(N, ·)`` float64 rows, with ``T`` and the batch shape."""
    f64 = np.float64
    n = model.n_hidden
    H0 = np.asarray(trace.layers[0].h)
    T, lead = H0.shape[0] - 1, H0.shape[1:-1]
    N = T * int(np.prod(lead, dtype=np.int64))
    out = []
    for layer, tr in zip(model.layers, trace.layers, strict=True):
        H = np.asarray(tr.h, f64)
        rows = {"h": H[:-1].reshape(N, n)}
        if getattr(layer, "form", None) == "standard":
            rows["a"] = np.asarray(tr.a, f64).reshape(N, n)
        elif hasattr(layer, "weight_hh"):
            pre = np.asarray(tr.pre, f64).reshape(N, 4 * n)
            rows["pre"] = pre
            lstm = layer.weight_hh.shape[0] == 4 * n
            sg = pre if lstm else pre[:, :2 * n]
            tg = pre[:, 2 * n:3 * n]
            rows["sig"], rows["sig'"] = _sigm(sg), act_prime("sigmoid", sg)
            rows["tanh"], rows["tanh'"] = np.tanh(tg), act_prime("tanh", tg)
            if lstm:
                C = np.asarray(tr.c, f64)
                rows["c"], rows["c2"] = C[:-1].reshape(N, n), C[1:].reshape(N, n)
                rows["tanhc"], rows["tanhc'"] = np.tanh(rows["c2"]), act_prime("tanh", rows["c2"])
        out.append(rows)
    return out, T, lead


def stacked_omega(
    model: Any, trace: Any, flow: Any, variant: str, threshold: float, hold: bool
) -> tuple[float, dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Ω of a stack's whole state and its fixed-flow gradient for every layer's recurrent
    matrix (``hold``: the gates and ``f′`` held too), in float64 NumPy: value,
    ``{name: gradient}``, ratio, counted, count. Top-down ``w^l``/``u^l = A^lᵀ w^l``,
    then bottom-up tangents ``ω^l = A^l ḡ^l + X^l E_h ω^{l−1}``."""
    rows, T, lead = _stack_rows(model, trace)
    if hasattr(flow, "flow") and not isinstance(flow, np.ndarray):
        flow = flow.flow
    n, L = model.n_hidden, model.n_layers
    sizes = [2 * n if _is_lstm(m) else n for m in model.layers]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    S = int(off[-1])
    N = T * int(np.prod(lead, dtype=np.int64))
    V = np.asarray(flow, np.float64)[1:].reshape(N, S)
    # each v_{k+1} scaled by a power of two (exact): Ω and its gradient do not change
    big = np.abs(V).max(axis=1) if S else np.zeros(N)
    e = np.zeros(N, dtype=np.int64)
    nz = big > 0
    e[nz] = np.frexp(big[nz])[1]
    Vs = np.ldexp(V, -e[:, None])
    nv2 = np.einsum("ij,ij->i", Vs, Vs)
    with np.errstate(divide="ignore"):
        lg = np.log2(np.where(nz, nv2, 1.0)) + 2.0 * e
    counted = nz if threshold == 0 else nz & (lg >= np.log2(threshold))
    # top-down: w^L = v^L, u^l = A^lᵀ w^l, w^{l−1} = v^{l−1} + E_hᵀ X^lᵀ w^l
    ws: list[np.ndarray] = [np.empty(0)] * L
    us: list[np.ndarray] = [np.empty(0)] * L
    down: np.ndarray | None = None
    for l in range(L - 1, -1, -1):
        w = Vs[:, off[l]:off[l + 1]].copy()
        if down is not None:
            w[:, :n] += down
        ws[l] = w
        us[l], down, _, _, _ = _layer_pull(model.layers[l], rows[l], w, None, None, l > 0)
    u = np.concatenate(us, axis=1)
    nu2 = np.einsum("ij,ij->i", u, u)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(counted, nu2 / np.where(counted, nv2, 1.0), 1.0)
    rho = np.sqrt(r2)
    count = int(counted.sum())
    if variant == "squared":
        terms = (r2 - 1.0) ** 2
        coef = 4.0 * (r2 - 1.0) / np.where(counted, nv2, 1.0)
    else:
        terms = (rho - 1.0) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = np.where(rho > 0, 2.0 * (rho - 1.0) / (rho * np.where(counted, nv2, 1.0)), 0.0)
    scale = 1.0 / count if count else 0.0
    value = float(np.sum(terms[counted]) * scale)
    gbar = np.where(counted, coef * scale, 0.0)[:, None] * u  # ∂Ω/∂u
    # bottom-up: ω^l = A^l ḡ^l + X^l E_h ω^{l−1} (ω = J ḡ); the gradient of W^l is the
    # derivative along (ḡ^l, E_h ω^{l−1}) of w^lᵀ F^l's gradient δ ⊗ P
    grads: dict[str, np.ndarray] = {}
    up: np.ndarray | None = None
    for l, layer in enumerate(model.layers):
        zs = np.ascontiguousarray(gbar[:, off[l]:off[l + 1]])
        _, _, Jz, d, P = _layer_pull(layer, rows[l], ws[l], zs, None if up is None else up[:, :n], False)
        G = d.val.T @ P.dot
        if not hold and d.dot is not None:
            G = G + d.dot.T @ P.val
        name = "W_hh" if hasattr(layer, "W_hh") else "weight_hh"
        grads[f"{name}_l{l}"] = G.astype(model.dtype)
        up = Jz
    shape = (T, *lead)
    return value, grads, rho.reshape(shape), counted.reshape(shape), count
