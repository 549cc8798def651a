"""Input Jacobians of one step and the step Jacobians of a stack of layers.

Oracles: complex-step derivatives (exact to rounding) of one step and of the
rollout ``s_k ↦ s_t`` of a stack written here from the definitions (Elman's
from tests/naive.py, the gated cells' from torch's LSTMCell/GRUCell equations),
central differences for ReLU, and torch autograd's Jacobian of the final full
state with respect to an earlier full state of a hand-written torch stack.
"""

from __future__ import annotations

import mpmath
import naive
import numpy as np
import pytest
from naive_stack import cell_step, full_states, hand_stack, make_layers, stack_step, state_size

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory import _stack_jacobians as SJ
from rnntheory import jacobians as jac
from rnntheory._oracles import central_jacobian, complex_step_jacobian


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


# ----------------------------------------------------------------------------- torch autograd
def _torch_stack_step(torch, layers, s_prev, x_t):
    """One step of the stack in torch (float64), written from torch's cell equations."""
    out, off, inp = [], 0, x_t
    for m in layers:
        n = m.n_hidden
        sz = state_size(m)
        s = s_prev[off:off + sz]
        if isinstance(m, ElmanRNN):
            W, U, b = (torch.tensor(np.asarray(a, float)) for a in (m.W_hh, m.W_hx, m.b_h))
            f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda v: v}[m.activation.name]
            g = f(W @ s + U @ inp + b) if m.form == "standard" else W @ f(s) + U @ inp + b
            if m.alpha is not None:
                a = torch.tensor(np.asarray(m.alpha, float))
                g = a * s + (1.0 - a) * g
            new = g
        else:
            Wi, Wh, bi, bh = (torch.tensor(np.asarray(a, float))
                              for a in (m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh))
            if isinstance(m, LSTM):
                h, c = s[:n], s[n:]
                a = Wi @ inp + bi + Wh @ h + bh
                i, fg, gg, o = (torch.sigmoid(a[:n]), torch.sigmoid(a[n:2 * n]),
                                torch.tanh(a[2 * n:3 * n]), torch.sigmoid(a[3 * n:]))
                c = fg * c + i * gg
                new = torch.cat([o * torch.tanh(c), c])
            else:
                gi, gh = Wi @ inp + bi, Wh @ s + bh
                r, z = torch.sigmoid(gi[:n] + gh[:n]), torch.sigmoid(gi[n:2 * n] + gh[n:2 * n])
                nn = torch.tanh(gi[2 * n:] + r * gh[2 * n:])
                new = (1.0 - z) * nn + z * s
        out.append(new)
        inp = new[:n]
        off += sz
    return torch.cat(out)


@pytest.mark.oracle
@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize(("cell", "opts"), CELLS)
def test_stack_products_equal_torch_autograd(cell, opts, L):
    """``jacobians.product`` of a StackedRNN, ``∂s_T/∂s_k = J_T ⋯ J_{k+1}``, is torch
    autograd's Jacobian of the final full state ``s_T`` with respect to the full
    state ``s_k`` (a hand-written torch stack, float64), to 1e-10, for every ``k``."""
    from oracle import torch_or_skip

    from rnntheory import StackedRNN

    torch = torch_or_skip()
    m = StackedRNN(make_layers(cell, L, 2, 3, seed=21 + L, scale=1.2, **opts))
    T = 6
    x = np.random.default_rng(9).normal(size=(T, 2))
    tr = m.forward(x)
    s = tr.state
    xt = torch.tensor(x)

    for k in range(T):
        def rollout(sk, k=k):
            for i in range(k + 1, T + 1):
                sk = _torch_stack_step(torch, m.layers, sk, xt[i - 1])
            return sk

        ref = torch.autograd.functional.jacobian(rollout, torch.tensor(s[k])).numpy()
        P = jac.product(m, tr, T, k)
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert np.max(np.abs(P - ref)) <= 1e-10 * scale


@pytest.mark.oracle
@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stack_products_equal_autograd_through_torch_modules(cell, L):
    """The same, through torch's own ``nn.RNN/LSTM/GRU(num_layers=L)``: run the module
    from the full state ``s_k`` (as its ``h0``/``c0``) over ``x_{k+1..T}`` and take
    autograd's Jacobian of ``(h_n[, c_n])`` reordered to ``s_T`` (layer 1 first, LSTM
    ``h`` then ``c``); it equals ``jacobians.product(model, trace, T, k)`` to 1e-10."""
    from oracle import torch_or_skip

    from rnntheory import StackedRNN

    torch = torch_or_skip()
    n = 3
    layers = make_layers(cell, L, 2, n, seed=5 + L, scale=1.1, activation="tanh") if cell == "elman" \
        else make_layers(cell, L, 2, n, seed=5 + L, scale=1.1)
    m = StackedRNN(layers)
    T = 5
    x = np.random.default_rng(2).normal(size=(T, 2))
    tr = m.forward(x)
    s = tr.state
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    mod = cls(2, n, num_layers=L).double().eval()
    with torch.no_grad():
        for l, layer in enumerate(layers):
            if cell == "elman":
                w_ih, w_hh, b_ih, b_hh = layer.W_hx, layer.W_hh, layer.b_h, np.zeros(n)
            else:
                w_ih, w_hh, b_ih, b_hh = layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh
            for name, val in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
                getattr(mod, f"{name}_l{l}").copy_(torch.tensor(np.asarray(val, float)))
    w = 2 * n if cell == "lstm" else n
    xt = torch.tensor(x)

    for k in range(T):
        def run(sk, k=k):
            blocks = sk.reshape(L, w)
            if cell == "lstm":
                _, (hn, cn) = mod(xt[k:].unsqueeze(1), (blocks[:, :n].unsqueeze(1).contiguous(),
                                                       blocks[:, n:].unsqueeze(1).contiguous()))
                return torch.cat([hn[:, 0], cn[:, 0]], dim=1).reshape(-1)
            _, hn = mod(xt[k:].unsqueeze(1), blocks.unsqueeze(1).contiguous())
            return hn[:, 0].reshape(-1)

        ref = torch.autograd.functional.jacobian(run, torch.tensor(s[k])).numpy()
        P = jac.product(m, tr, T, k)
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert np.max(np.abs(P - ref)) <= 1e-10 * scale


# ----------------------------------------------------------------------------- StackedRNN
def _stack(cell, L, n_in=2, n=3, seed=0, scale=1.2, **opts):
    from rnntheory import StackedRNN

    return StackedRNN(make_layers(cell, L, n_in, n, seed, scale=scale, **opts))


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize(("cell", "opts"), CELLS)
def test_step_jacobians_of_a_stacked_model_equal_complex_step(cell, opts, L):
    """``step_jacobians(StackedRNN, StackedTrace)`` is ``∂s_t/∂s_{t−1}`` of the whole
    state ``s = (s¹, …, s^L)`` (layer 1 first, LSTM h then c): the complex-step
    derivative of the stack's step from the definitions at the recorded states."""
    m = _stack(cell, L, seed=L, **opts)
    x = np.random.default_rng(3).normal(size=(5, 2))
    tr = m.forward(x)
    s = full_states(m.layers, tr.layers)
    J = jac.step_jacobians(m, tr)
    assert J.shape == (5, m.state_size, m.state_size)
    for t in range(1, 6):
        ref = complex_step_jacobian(lambda sp, t=t: stack_step(m.layers, sp, x[t - 1]), s[t - 1])
        np.testing.assert_allclose(J[t - 1], ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stacked_products_norms_profile_and_lyapunov(cell):
    """``product``, ``log_norms``, ``log_norm_profile`` and ``lyapunov_spectrum`` of a
    stack are those of its whole state: the product equals the complex-step
    derivative of the rollout ``s_k ↦ s_t``, the logs its SVD, and the diagonal
    block ``l`` of every product is layer ``l``'s own product (its recurrence with
    its input held fixed); the stack's Lyapunov exponents sum to the sum of its
    layers' (a block-triangular determinant is the product of the diagonal
    blocks')."""
    m = _stack(cell, 2, seed=5, scale=1.1)
    T = 6
    x = np.random.default_rng(4).normal(size=(T, 2))
    tr = m.forward(x)
    s = full_states(m.layers, tr.layers)
    L = jac.log_norms(m, tr)
    sz = m.state_size // 2
    for k in range(T + 1):
        prof = jac.log_norm_profile(m, tr, k)
        for t in range(k, T + 1):
            def roll(sk, k=k, t=t):
                for i in range(k + 1, t + 1):
                    sk = stack_step(m.layers, sk, x[i - 1])
                return sk

            ref = complex_step_jacobian(roll, s[k])
            P = jac.product(m, tr, t, k)
            np.testing.assert_allclose(P, ref, rtol=1e-11, atol=1e-13)
            lref = np.log(np.linalg.norm(ref, 2))
            assert L[t, k] == pytest.approx(lref, rel=1e-10, abs=1e-12)
            assert prof[t] == pytest.approx(lref, rel=1e-10, abs=1e-12)
            for l, (lm, ltr) in enumerate(zip(m.layers, tr.layers, strict=True)):
                blk = P[l * sz:(l + 1) * sz, l * sz:(l + 1) * sz]
                np.testing.assert_allclose(blk, jac.product(lm, ltr, t, k), rtol=1e-12, atol=1e-14)
                assert P[:l * sz, l * sz:].size == 0 or np.all(P[:l * sz, l * sz:] == 0.0)
    lam = jac.lyapunov_spectrum(m, tr, seed=1)
    assert lam.shape == (m.state_size,)
    lam_layers = [jac.lyapunov_spectrum(lm, ltr, seed=2) for lm, ltr in zip(m.layers, tr.layers, strict=True)]
    # with a full frame, Σ_j λ_j = (1/T) Σ_i ln |det J_i| whatever the frame, and the
    # determinant of a block-triangular J_i is the product of its diagonal blocks':
    # the stack's exponents sum to the sum of its layers' (and of ln|det| of the products)
    assert lam.sum() == pytest.approx(sum(v.sum() for v in lam_layers), rel=1e-9, abs=1e-9)
    J = jac.step_jacobians(m, tr)
    assert lam.sum() == pytest.approx(np.linalg.slogdet(J)[1].sum() / T, rel=1e-9, abs=1e-9)


def test_stacked_input_jacobians_are_the_whole_states():
    """``input_jacobians`` of a stack is ``∂s_t/∂x_t`` of the whole state (layer 1's
    input): complex-step derivative of the stack's step in ``x_t``."""
    m = _stack("lstm", 3, seed=2)
    x = np.random.default_rng(6).normal(size=(4, 2))
    tr = m.forward(x)
    s = full_states(m.layers, tr.layers)
    X = jac.input_jacobians(m, tr)
    for t in range(1, 5):
        ref = complex_step_jacobian(lambda xt, t=t: stack_step(m.layers, s[t - 1], xt), x[t - 1])
        np.testing.assert_allclose(X[t - 1], ref, rtol=1e-12, atol=1e-13)


def test_layer_traces_of_cells_and_stacks():
    """Each recurrence with its input held fixed: the layer's trace is the layer's own
    forward pass on the hidden states of the layer below (so its Jacobians are the
    diagonal blocks of the stack's)."""
    m = _stack("gru", 3, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 2))
    tr = m.forward(x)
    out = jac.layer_traces(m, tr)
    assert [label for label, _, _ in out] == ["layer 1", "layer 2", "layer 3"]
    inp = x
    J = jac.step_jacobians(m, tr)
    for l, (_, lm, ltr) in enumerate(out):
        assert lm is m.layers[l]
        np.testing.assert_array_equal(ltr.h, lm.forward(inp, tr.layers[l].h[0]).h)
        np.testing.assert_array_equal(jac.step_jacobians(lm, ltr), J[:, 3 * l:3 * l + 3, 3 * l:3 * l + 3])
        inp = ltr.h[1:]
    (cell,) = m.layers[:1]
    ctr = cell.forward(x)
    assert jac.layer_traces(cell, ctr) == [("layer 1", cell, ctr)]
    with pytest.raises(TypeError, match="`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or BidirectionalRNN"):
        jac.layer_traces(np.eye(2), ctr)
    with pytest.raises(TypeError, match=r"`trace` \(GatedTrace\) was not made by a StackedRNN"):
        jac.layer_traces(m, ctr)


# ----------------------------------------------------------------------------- extremes
@pytest.mark.parametrize("c", [1e300, 1e-300, 5e-324])
def test_stack_log_norms_with_extreme_weights_are_finite_and_exact(c):
    """Two identity layers with ``W_hh = W_hx = c·I`` and zero input: every state is 0,
    ``J_t = c [[I, 0], [c I, I]]`` and ``∂s_τ/∂s_0 = c^τ [[I, 0], [τ c I, I]]``, whose
    norm is ``c^τ (τc + √(τ²c² + 4))/2``. The logs are finite and exact in log space
    (the entries themselves overflow or underflow float64)."""
    from rnntheory import StackedRNN, bounds

    n, T = 2, 5
    layers = [ElmanRNN(c * np.eye(n), c * np.eye(n), np.zeros(n), activation="identity") for _ in range(2)]
    m = StackedRNN(layers)
    tr = m.forward(np.zeros((T, n)))
    L = jac.log_norms(m, tr)
    for tau in range(T + 1):
        # ln((a + √(a² + 4))/2) = asinh(a/2), a = τc, which mpmath forms without overflow
        ref = float(tau * mpmath.log(c) + mpmath.asinh(mpmath.mpf(tau) * c / 2))
        assert np.isfinite(L[tau, 0])
        assert L[tau, 0] == pytest.approx(ref, rel=1e-12, abs=1e-12)
        # the reach from T and the profile from 0 read the same products
        reach = jac.log_norm_reach(m, tr, tau)
        assert reach[tau] == pytest.approx(ref, rel=1e-12, abs=1e-12)
        assert jac.log_norm_profile(m, tr)[tau] == pytest.approx(ref, rel=1e-12, abs=1e-12)
    cert = bounds.certify(m, tr)
    assert cert.holds, str(cert)
    assert np.all(np.isfinite(bounds.stack_pair_log_bounds(m, tr, "block_norm")[np.tril_indices(T + 1)]))


def test_stack_steps_that_cannot_be_evaluated_are_nan():
    """Layer 2 (identity, ``W_hh = 1e3·I``) overflows to inf at some step while layer 1
    stays finite: the whole state's step Jacobians are NaN from that step on (the
    stack's step cannot be evaluated when one layer's cannot), ``log_norms`` NaN
    exactly on the pairs over it, ``lyapunov_spectrum`` refuses by name, and the
    stack's certificate counts those pairs as unevaluable, never as holding."""
    from rnntheory import StackedRNN, bounds

    n = 2
    l1 = ElmanRNN(0.5 * np.eye(n), np.eye(n), np.zeros(n), activation="tanh")
    l2 = ElmanRNN(1e3 * np.eye(n), np.eye(n), np.zeros(n), activation="identity")
    m = StackedRNN([l1, l2])
    T = 110
    tr = m.forward(np.ones((T, n)))
    bad = ~np.isfinite(tr.layers[1].h).all(axis=1)
    first = int(np.argmax(bad))
    assert 0 < first < T and np.isfinite(tr.layers[0].h).all()
    J = jac.step_jacobians(m, tr)
    assert np.isnan(J[first - 1:]).all() and np.isfinite(J[:first - 1]).all()
    L = jac.log_norms(m, tr)
    assert np.isnan(L[first:, :first]).all()
    assert np.isfinite(L[:first, :first][np.tril_indices(first)]).all()
    with pytest.raises(ValueError, match=f"non-finite values from step {first} on"):
        jac.lyapunov_spectrum(m, tr)
    cert = bounds.certify(m, tr)
    assert not cert.holds
    # every step from `first` on is bad: the pairs k < t with t ≥ first
    n_bad = sum(range(first, T + 1))
    assert all(c.unevaluable == n_bad for c in cert.checks)
    assert cert.layers[0][1].holds and not cert.layers[1][1].holds


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stack_of_one_step(cell):
    """T = 1: one step Jacobian; ``log_norms`` is ``[[0, −inf], [ln‖J_1‖, 0]]``."""
    m = _stack(cell, 2, seed=9)
    tr = m.forward(np.ones((1, 2)))
    J = jac.step_jacobians(m, tr)
    L = jac.log_norms(m, tr)
    assert L[0, 0] == 0.0 and L[1, 1] == 0.0 and L[0, 1] == -np.inf
    assert L[1, 0] == pytest.approx(np.log(np.linalg.norm(J[0], 2)), rel=1e-13)


def test_stacked_traces_are_checked_by_name():
    """A batched stacked trace, a layer trace of the wrong kind or width, and a
    stack's trace given for a single cell are refused, naming what is wrong."""
    from rnntheory import StackedRNN

    m = _stack("lstm", 2, seed=0)
    x = np.zeros((3, 2, 2))
    with pytest.raises(ValueError, match=r"`trace.layers\[0\]` must be a single-sequence trace"):
        jac.step_jacobians(m, m.forward(x))
    tr = m.forward(np.zeros((3, 2)))
    g = StackedRNN(make_layers("gru", 2, 2, 3, 0))
    with pytest.raises(TypeError, match=r"`trace.layers\[0\]` \(GatedTrace\) was not made by a GRU"):
        jac.log_norms(g, tr)
    with pytest.raises(TypeError, match=r"`trace` \(GatedTrace\) was not made by a GRU"):
        jac.log_norms(g.layers[0], tr.layers[0])  # an LSTM's trace (it has c) for a GRU
    with pytest.raises(TypeError, match=r"`trace` \(StackedTrace\) was not made by a LSTM"):
        jac.step_jacobians(m.layers[0], tr)
    with pytest.raises(ValueError, match="`trace` has 2 layers but `model` has 3"):
        jac.step_jacobians(StackedRNN(make_layers("lstm", 3, 2, 3, 0)), tr)


def test_layer_traces_of_a_bidirectional_model():
    """Each direction of each layer is a recurrence of its own: the forward cell's
    trace is its forward pass over the layer's input, the backward cell's is its
    forward pass over the input reversed (its own time), and layer 2 reads layer
    1's ``[h_fwd_t, h_bwd at original time t]``."""
    from rnntheory import BidirectionalRNN

    m = BidirectionalRNN.init(2, 3, None, cell="lstm", n_layers=2, seed=0)
    x = np.random.default_rng(1).normal(size=(5, 2))
    tr = m.forward(x)
    out = jac.layer_traces(m, tr)
    assert [label for label, _, _ in out] == [
        "layer 1 (forward)", "layer 1 (backward)", "layer 2 (forward)", "layer 2 (backward)"]
    u = x
    for l in range(2):
        (_, fc, ftr), (_, bc, btr) = out[2 * l], out[2 * l + 1]
        assert fc is m.layers[l][0] and bc is m.layers[l][1]
        np.testing.assert_allclose(ftr.h, fc.forward(u).h, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(btr.h, bc.forward(u[::-1]).h, rtol=1e-14, atol=1e-15)
        u = np.concatenate([ftr.h[1:], btr.h[1:][::-1]], axis=1)
        # every function of the module applies to each direction as to one cell
        assert jac.log_norms(bc, btr).shape == (6, 6)


@pytest.mark.parametrize("c", [1.5, 1e300])
def test_block_norms_step_norms_and_factors_of_a_stack(c):
    """Two identity layers with ``W_hh = W_hx = c·I``: ``J_t = c [[I, 0], [c I, I]]``, so the
    blocks' norms are ``[[c, 0], [c², c]]`` and ``‖J_t‖ = c (c + √(c² + 4))/2``
    (``ln`` of it ``ln c + asinh(c/2)``), for c = 1e300 too, where ``c²`` is beyond
    float64. The layer factors multiply to the step: ``M² M¹ = J_t``."""
    from rnntheory import StackedRNN, bounds

    n, T = 2, 3
    m = StackedRNN([ElmanRNN(c * np.eye(n), c * np.eye(n), np.zeros(n), activation="identity")
                    for _ in range(2)])
    tr = m.forward(np.zeros((T, n)))
    lc = np.log(c)
    B = jac.block_log_norms(m, tr)
    np.testing.assert_allclose(B[:, [0, 1, 1], [0, 0, 1]], np.tile([lc, 2 * lc, lc], (T, 1)), rtol=1e-14)
    assert np.all(B[:, 0, 1] == -np.inf)
    steps = bounds.step_log_bounds(m, tr, "step_norm")
    np.testing.assert_allclose(steps, float(lc + mpmath.asinh(mpmath.mpf(c) / 2)), rtol=1e-14)
    F, per = jac.product_factors(m, tr)
    if c == 1.5:
        assert per == 1
        np.testing.assert_array_equal(F, jac.step_jacobians(m, tr))
    else:
        assert per == 2 and np.isinf(jac.step_jacobians(m, tr)).any()
        M1, M2 = F[0], F[1]
        np.testing.assert_array_equal(M1, np.block([[c * np.eye(n), 0 * np.eye(n)], [0 * np.eye(n), np.eye(n)]]))
        np.testing.assert_array_equal(M2, np.block([[np.eye(n), 0 * np.eye(n)], [c * np.eye(n), c * np.eye(n)]]))


def test_top_singular_values_from_the_gram_matrix_equal_the_svd():
    """``ln σ_max`` through ``λ_max`` of the (smaller) Gram matrix equals LAPACK's SVD
    to a few ulp of σ, for wide, tall and square matrices at scales 1e±300 (scaled
    by a power of two first, so nothing over- or underflows), ``−inf`` for a zero
    matrix and NaN for one with a NaN or inf entry."""
    rng = np.random.default_rng(3)
    for shape in [(7, 3, 5), (7, 5, 3), (7, 6, 6)]:
        M = rng.normal(size=shape)
        ref = np.log(np.linalg.svd(M, compute_uv=False)[:, 0])
        for scale in (1.0, 1e300, 1e-300):
            got = SJ.log_top_singular_values(M * scale)
            np.testing.assert_allclose(got, ref + np.log(scale), rtol=0, atol=1e-13 * (1 + abs(np.log(scale))))
    Z = np.zeros((3, 2, 2))
    Z[1, 0, 0] = np.nan
    Z[2, 1, 1] = np.inf
    out = SJ.log_top_singular_values(Z)
    assert out[0] == -np.inf and np.isnan(out[1]) and np.isnan(out[2])
