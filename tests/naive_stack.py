"""Slow, obvious references for stacks of layers, written from the definitions.

One step of each cell (Elman's from tests/naive.py, the gated cells' from
torch's LSTMCell/GRUCell equations) with complex-safe operations, so
complex-step derivatives of them are exact to rounding; a stack's step in
which layer ``l`` reads layer ``l−1``'s new ``h``; traces of layers chained by
hand (layer ``l``'s input is layer ``l−1``'s ``h[1:]``). Nothing here calls
the package's Jacobians.
"""

from __future__ import annotations

import naive
import numpy as np

from rnntheory import GRU, LSTM, ElmanRNN


def _sig(x):
    """σ(x) = (1 + tanh(x/2))/2: analytic, and no overflow for a large |x| (complex too)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


_ACT = {"tanh": np.tanh, "sigmoid": _sig, "identity": lambda v: v}


def cell_step(m, s_prev, x_t):
    """One step of cell ``m`` from its state ``s_prev`` (LSTM: ``(h, c)``) and input
    ``x_t``, written from the definitions with complex-safe operations."""
    if isinstance(m, ElmanRNN):
        p = naive.param_dict(m)
        f = _ACT[m.activation.name]
        W, U, b, alpha = p["W_hh"], p["W_hx"], p["b_h"], p["alpha"]
        g = f(W @ s_prev + U @ x_t + b) if m.form == "standard" else W @ f(s_prev) + U @ x_t + b
        return g if alpha is None else alpha * s_prev + (1.0 - alpha) * g
    n = m.n_hidden
    Wi, Wh = np.asarray(m.weight_ih, float), np.asarray(m.weight_hh, float)
    bi, bh = np.asarray(m.bias_ih, float), np.asarray(m.bias_hh, float)
    if isinstance(m, LSTM):
        h, c = s_prev[:n], s_prev[n:]
        a = Wi @ x_t + bi + Wh @ h + bh
        i, f, g, o = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
        c = f * c + i * g
        return np.concatenate([o * np.tanh(c), c])
    gi, gh = Wi @ x_t + bi, Wh @ s_prev + bh
    r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
    nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])  # the reset gate multiplies the hidden part only
    return (1.0 - z) * nn + z * s_prev


def state_size(m):
    return 2 * m.n_hidden if isinstance(m, LSTM) else m.n_hidden


def stack_step(layers, s_prev, x_t):
    """One step of the stack: layer l reads layer l−1's new h."""
    out, off, inp = [], 0, x_t
    for m in layers:
        sz = state_size(m)
        s = cell_step(m, s_prev[off:off + sz], inp)
        out.append(s)
        inp = s[:m.n_hidden]
        off += sz
    return np.concatenate(out)


def hand_stack(layers, x, seed=0):
    """The layers' traces with layer l fed layer l−1's ``h[1:]`` (random initial states)."""
    rng = np.random.default_rng(seed)
    traces, inp = [], x
    for m in layers:
        n = m.n_hidden
        h0 = rng.uniform(-0.5, 0.5, n)
        tr = m.forward(inp, h0, rng.uniform(-0.5, 0.5, n)) if isinstance(m, LSTM) else m.forward(inp, h0)
        traces.append(tr)
        inp = tr.h[1:]
    return traces


def full_states(layers, traces):
    """``(T+1, S)`` whole states, layer 1 first (LSTM: h then c)."""
    parts = []
    for m, tr in zip(layers, traces, strict=True):
        parts.append(tr.h)
        if isinstance(m, LSTM):
            parts.append(tr.c)
    return np.concatenate(parts, axis=1)


def make_layers(cell, L, n_in, n, seed, scale=1.0, **opts):
    rng = np.random.default_rng(seed)
    out = []
    for l in range(L):
        ni = n_in if l == 0 else n
        if cell == "elman":
            W = rng.normal(size=(n, n)) * scale / np.sqrt(n)
            U = rng.normal(size=(n, ni)) * scale
            out.append(ElmanRNN(W, U, rng.normal(size=n) * 0.3, **opts))
        else:
            cls, G = (LSTM, 4) if cell == "lstm" else (GRU, 3)
            out.append(cls(rng.normal(size=(G * n, ni)) * scale, rng.normal(size=(G * n, n)) * scale,
                           rng.normal(size=G * n) * 0.5, rng.normal(size=G * n) * 0.5))
    return out




def stack_jacobians(layers, x, s, h=1e-30):
    """``(T, S, S)`` complex-step derivatives ``∂s_t/∂s_{t−1}`` of :func:`stack_step` at
    the recorded whole states ``s`` ``(T+1, S)`` (exact to rounding)."""
    T, S = x.shape[0], s.shape[1]
    out = np.empty((T, S, S))
    for t in range(1, T + 1):
        for j in range(S):
            e = np.zeros(S, dtype=complex)
            e[j] = 1j * h
            out[t - 1, :, j] = np.imag(stack_step(layers, s[t - 1] + e, x[t - 1])) / h
    return out


def cell_step_p(m, p, s_prev, x_t):
    """:func:`cell_step` with the parameters taken from ``p`` (keyed as ``m.params()``,
    complex allowed; an Elman cell's fixed ``alpha`` and options come from ``m``)."""
    if isinstance(m, ElmanRNN):
        f = _ACT[m.activation.name]
        alpha = p.get("alpha", naive.param_dict(m)["alpha"])
        W, U, b = p["W_hh"], p["W_hx"], p["b_h"]
        g = f(W @ s_prev + U @ x_t + b) if m.form == "standard" else W @ f(s_prev) + U @ x_t + b
        return g if alpha is None else alpha * s_prev + (1.0 - alpha) * g
    n = m.n_hidden
    Wi, Wh, bi, bh = p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    if isinstance(m, LSTM):
        h, c = s_prev[:n], s_prev[n:]
        a = Wi @ x_t + bi + Wh @ h + bh
        i, f, g, o = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
        c = f * c + i * g
        return np.concatenate([o * np.tanh(c), c])
    gi, gh = Wi @ x_t + bi, Wh @ s_prev + bh
    r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
    nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
    return (1.0 - z) * nn + z * s_prev


def stack_step_p(layers, P, s_prev, x_t):
    """:func:`stack_step` with the parameters taken from ``P`` (keyed as
    ``StackedRNN.params()``: ``"<name>_l<l>"``)."""
    out, off, inp = [], 0, x_t
    for i, m in enumerate(layers):
        p = {k: P[f"{k}_l{i}"] for k in m.params()}
        sz = state_size(m)
        s = cell_step_p(m, p, s_prev[off:off + sz], inp)
        out.append(s)
        inp = s[:m.n_hidden]
        off += sz
    return np.concatenate(out)


def stack_param_jacobians(layers, params, x, s, h=1e-30):
    """``{key: (T, S, size)}``: complex-step derivatives ``∂⁺s_t/∂θ`` of one step of
    the stack (``s_{t−1}`` and ``x_t`` held fixed) with respect to every entry of
    every layer parameter ``θ = params[key]`` (exact to rounding)."""
    T, S = x.shape[0], s.shape[1]
    base = {k: np.asarray(v, dtype=complex) for k, v in params.items()}
    out = {}
    for key, v in params.items():
        J = np.empty((T, S, v.size))
        for j in range(v.size):
            P = dict(base)
            pert = base[key].copy().reshape(-1)
            pert[j] += 1j * h
            P[key] = pert.reshape(v.shape)
            for t in range(1, T + 1):
                J[t - 1, :, j] = np.imag(stack_step_p(layers, P, s[t - 1].astype(complex), x[t - 1])) / h
        out[key] = J
    return out


def stack_generator_loss(cell, P, x, y, loss, own, *, L, n_in, h0=None, c0=None, start=None, mask=None,
                         acts=None):
    """The loss of a stacked generator for one sequence, by a plain loop from the equations.

    ``P`` holds the parameters keyed as ``GeneratorRNN.params()`` of a stack
    (``"<name>_l<l>"``, ``W_yh``, ``b_y``); layer 0 reads ``[x_t; o^fb_t]``
    (its input matrix's first ``n_in`` columns act on ``x_t``), layer ``l ≥ 1``
    reads layer ``l−1``'s new ``h``; the top's readout ``z_t = W_yh h_t + b_y``
    gives ``o_t`` (softmax for "xent", ``z_t`` for "mse"), fed into step
    ``t+1`` where ``own[t]`` is set and the target ``y_t`` (one-hot) otherwise;
    ``o^fb_1 = start``. ``acts``: Elman layers' activation names (tanh by
    default); ``h0``, ``c0`` of shape ``(L, n)``.
    """
    T = x.shape[0]
    W_yh, b_y = P["W_yh"], P["b_y"]
    m, n = W_yh.shape
    acts = acts or ["tanh"] * L
    h = [np.zeros(n) if h0 is None else np.asarray(h0[i], float) for i in range(L)]
    c = [np.zeros(n) if c0 is None else np.asarray(c0[i], float) for i in range(L)]
    fb = np.zeros(m) if start is None else np.asarray(start, float)
    E = 0.0
    for t in range(T):
        if t >= 1 and not own[t]:
            fb = np.eye(m)[y[t - 1]] if loss == "xent" else np.asarray(y[t - 1], float)
        inp = np.concatenate([x[t], fb])
        for i in range(L):
            if cell == "elman":
                a = P[f"W_hh_l{i}"] @ h[i] + P[f"W_hx_l{i}"] @ inp + P[f"b_h_l{i}"]
                h[i] = _ACT[acts[i]](a) if acts[i] != "relu" else np.maximum(a, 0.0)
            else:
                Wi, Wh, bi, bh = P[f"weight_ih_l{i}"], P[f"weight_hh_l{i}"], P[f"bias_ih_l{i}"], P[f"bias_hh_l{i}"]
                if cell == "lstm":
                    a = Wi @ inp + bi + Wh @ h[i] + bh
                    ig, fg, gg, og = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
                    c[i] = fg * c[i] + ig * gg
                    h[i] = og * np.tanh(c[i])
                else:
                    gi, gh = Wi @ inp + bi, Wh @ h[i] + bh
                    r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
                    nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
                    h[i] = (1.0 - z) * nn + z * h[i]
            inp = h[i]
        zt = W_yh @ h[-1] + b_y
        w = 1.0 if mask is None else float(mask[t])
        if loss == "xent":
            mx = np.max(zt)
            lse = mx + np.log(np.sum(np.exp(zt - mx)))
            E += w * (lse - zt[y[t]])
            fb_own = np.exp(zt - lse)
        else:
            E += w * 0.5 * float(np.sum((zt - y[t]) ** 2))
            fb_own = zt
        if t + 1 < T and own[t + 1]:
            fb = fb_own
    return E
