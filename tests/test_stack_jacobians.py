"""Input Jacobians of one step and the step Jacobians of a stack of layers.

Oracles: complex-step derivatives (exact to rounding) of one step and of the
rollout ``s_k ↦ s_t`` of a stack written here from the definitions (Elman's
from tests/naive.py, the gated cells' from torch's LSTMCell/GRUCell equations),
central differences for ReLU, and torch autograd's Jacobian of the final full
state with respect to an earlier full state of a hand-written torch stack.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory import _stack_jacobians as SJ
from rnntheory import jacobians as jac
from rnntheory._oracles import central_jacobian, complex_step_jacobian

# ----------------------------------------------------------------------------- references


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def cell_step(m, s_prev, x_t):
    """One step of cell ``m`` from its state ``s_prev`` (LSTM: ``(h, c)``) and input
    ``x_t``, written from the definitions with complex-safe operations."""
    if isinstance(m, ElmanRNN):
        p = naive.param_dict(m)
        return naive._step_p(p["W_hh"], p["W_hx"], p["b_h"], p["alpha"], m.activation.name, m.form,
                             s_prev, x_t)
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


def assembled(layers, traces):
    """The stack's step Jacobians (the package's assembly of its layers' blocks)."""
    return jac._stack_step_jacobians(layers, traces, False)


ELMAN_OPTS = [
    {"activation": "tanh"},
    {"activation": "sigmoid", "form": "pascanu"},
    {"activation": "tanh", "alpha": np.array([0.2, 0.7, 0.0])},
    {"activation": "identity", "form": "pascanu", "alpha": np.array([0.5, 0.9, 1.0])},
]
CELLS = [("elman", o) for o in ELMAN_OPTS] + [("lstm", {}), ("gru", {})]


# ----------------------------------------------------------------------------- input Jacobians
@pytest.mark.parametrize(("cell", "opts"), CELLS)
def test_input_jacobians_equal_complex_step(cell, opts):
    """``X_t = ∂s_t/∂x_t`` of one step (Elman ``diag(f′(a)) W_hx``, Pascanu ``W_hx``,
    leaky ``diag(1−α)·that``; the LSTM's ``(2n × n_in)`` for ``(h, c)``; the GRU's with
    the reset gate on the hidden part only) is the complex-step derivative of the
    step written from the definitions, at every recorded step."""
    (m,) = make_layers(cell, 1, 2, 3, seed=7, scale=1.2, **opts)
    x = np.random.default_rng(1).normal(size=(5, 2))
    (tr,) = hand_stack([m], x)
    s = full_states([m], [tr])
    X = jac._input_jacobians(m, tr, False)
    for t in range(1, 6):
        ref = complex_step_jacobian(lambda xt, t=t: cell_step(m, s[t - 1], xt), x[t - 1])
        np.testing.assert_allclose(X[t - 1], ref, rtol=1e-12, atol=1e-14)


def test_gru_input_jacobian_reset_gate_reads_hidden_part_only():
    """With ``W_hn = 0``, ``b_hn = 0`` and the reset gate nearly closed (``r ≈ 0``), the
    candidate is ``tanh(U_n x + b_in)``: its input derivative keeps ``U_n`` in full.
    A formula that multiplied ``U_n`` by ``r`` would give ≈ 0 there."""
    n, ni = 2, 1
    Wi = np.zeros((3 * n, ni))
    Wi[2 * n:] = [[1.0], [2.0]]
    bi = np.zeros(3 * n)
    bi[:n] = -40.0            # r = σ(−40) ≈ 4e-18
    bi[n:2 * n] = -40.0       # z ≈ 0: h′ ≈ n
    m = GRU(Wi, np.zeros((3 * n, n)), bi, np.zeros(3 * n))
    tr = m.forward(np.array([[0.1]]))
    X = jac._input_jacobians(m, tr, False)[0]
    expect = np.array([[1.0], [2.0]]) / np.cosh(np.array([[0.1], [0.2]])) ** 2
    np.testing.assert_allclose(X, expect, rtol=1e-12)


def test_relu_input_jacobian_is_masked_input_weights():
    """ReLU (not analytic): ``∂h_t/∂x_t = diag(1[a_t > 0]) W_hx``, checked against
    central differences away from the kink."""
    (m,) = make_layers("elman", 1, 2, 3, seed=3, activation="relu")
    x = np.random.default_rng(2).normal(size=(4, 2))
    (tr,) = hand_stack([m], x)
    X = jac._input_jacobians(m, tr, False)
    assert np.min(np.abs(tr.a)) > 1e-4
    for t in range(1, 5):
        ref = central_jacobian(lambda xt, t=t: naive.step(m, tr.h[t - 1], xt), x[t - 1], 1e-7)
        np.testing.assert_allclose(X[t - 1], ref, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- the stack's step
@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize(("cell", "opts"), CELLS)
def test_stack_step_jacobians_equal_complex_step(cell, opts, L):
    """Entry ``t−1`` of the stack's step Jacobians is ``∂s_t/∂s_{t−1}`` of the whole
    state (layer l reads layer l−1's h at the same step): the complex-step
    derivative of the stack's step written from the definitions."""
    layers = make_layers(cell, L, 2, 3, seed=11 + L, scale=1.1, **opts)
    x = np.random.default_rng(5).normal(size=(4, 2))
    traces = hand_stack(layers, x)
    s = full_states(layers, traces)
    J = assembled(layers, traces)
    for t in range(1, 5):
        ref = complex_step_jacobian(lambda sp, t=t: stack_step(layers, sp, x[t - 1]), s[t - 1])
        np.testing.assert_allclose(J[t - 1], ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stack_products_equal_complex_step_of_the_rollout(cell, L):
    """``J_t ⋯ J_{k+1} = ∂s_t/∂s_k`` of the whole state: the complex-step derivative of
    the stack's rollout from ``s_k`` with the inputs fixed, for every pair (the
    product from the public ``log_norms_from_jacobians``' factors, by matmul)."""
    layers = make_layers(cell, L, 2, 2, seed=3, scale=1.3)
    x = np.random.default_rng(8).normal(size=(5, 2))
    traces = hand_stack(layers, x)
    s = full_states(layers, traces)
    J = assembled(layers, traces)

    def rollout(sk, k, t):
        for i in range(k + 1, t + 1):
            sk = stack_step(layers, sk, x[i - 1])
        return sk

    Lg = jac.log_norms_from_jacobians(J)
    for k in range(5):
        for t in range(k, 6):
            ref = complex_step_jacobian(lambda sk, k=k, t=t: rollout(sk, k, t), s[k])
            P = naive.product(J, t, k)
            np.testing.assert_allclose(P, ref, rtol=1e-11, atol=1e-13)
            assert Lg[t, k] == pytest.approx(np.log(np.linalg.norm(ref, 2)), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stack_step_jacobians_are_block_lower_triangular(cell, L):
    """Layer l at step t reads layers m ≤ l only: every block above the diagonal is
    exactly 0, block (l, l) is the layer's own step Jacobian, and block (l, l−1) is
    ``X^l E_h A^{l−1}`` (the input Jacobian times the h rows of the layer below)."""
    layers = make_layers(cell, L, 2, 3, seed=4, scale=1.2)
    traces = hand_stack(layers, np.random.default_rng(0).normal(size=(6, 2)))
    J = assembled(layers, traces)
    sizes = [state_size(m) for m in layers]
    off = np.concatenate([[0], np.cumsum(sizes)])
    for l in range(L):
        rows = slice(off[l], off[l + 1])
        assert np.all(J[:, rows, off[l + 1]:] == 0.0)
        np.testing.assert_array_equal(J[:, rows, rows], jac.step_jacobians(layers[l], traces[l]))
        if l:
            X = jac._input_jacobians(layers[l], traces[l], False)
            A = jac.step_jacobians(layers[l - 1], traces[l - 1])[:, :3]
            np.testing.assert_allclose(J[:, rows, off[l - 1]:off[l]], X @ A, rtol=1e-13, atol=1e-15)


def test_log_block_products_equal_explicit_products():
    """``ln ‖N_t ⋯ N_{k+1}‖₂`` from the entries' logs (log-sum-exp products) equals the
    SVD of the explicit product, and stays finite where the product would overflow."""
    rng = np.random.default_rng(0)
    N = np.abs(rng.normal(size=(6, 3, 3)))
    N[:, 0, 2] = 0.0
    with np.errstate(divide="ignore"):
        B = SJ.log_block_products(np.log(N))
    for k in range(7):
        for t in range(k, 7):
            ref = np.log(np.linalg.norm(naive.product(N, t, k), 2))
            assert B[t, k] == pytest.approx(ref, rel=1e-13, abs=1e-13)
    with np.errstate(divide="ignore"):
        big = SJ.log_block_products(np.log(N) + 300 * np.log(10))
    assert np.isfinite(big[6, 0]) and big[6, 0] == pytest.approx(B[6, 0] + 6 * 300 * np.log(10), rel=1e-13)
