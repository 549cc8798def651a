"""Bounds of stacked models: per layer and for the whole state, on every pair ``(t, k)``.

Observed norms ``‖∂s_t/∂s_k‖`` are computed independently of the library's
Jacobians and log-space kernels: complex-step derivatives of the stack's step
written from the definitions (tests/naive_stack.py), explicit products and
LAPACK SVDs, on pairs whose products stay clear of underflow.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from naive_stack import full_states, stack_jacobians

from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN
from rnntheory import bounds as bd
from rnntheory import jacobians as jac

SLACK = 1e-9  # per step, in log space: the rounding of t − k float64 products


def observed_log_norms(layers, x, trace):
    """``ln σ_max(∂s_t/∂s_k)`` by SVD of explicit products of complex-step step
    Jacobians, and a mask of the pairs where that oracle is faithful (every
    partial product ≥ e^−600 or exactly 0)."""
    s = full_states(layers, trace.layers)
    with np.errstate(divide="ignore"):
        R = naive.log_norms_svd(stack_jacobians(layers, x, s))
    T = x.shape[0]
    usable = np.zeros_like(R, dtype=bool)
    for k in range(T + 1):
        ok = True
        for t in range(k, T + 1):
            ok = ok and (R[t, k] > -600 or R[t, k] == -np.inf)
            usable[t, k] = ok
    return R, usable


@st.composite
def stacks(draw, cells=("elman", "lstm", "gru"), smooth=True):
    """A stack of 1–3 layers of one cell, its input, drawn weights of any scale."""
    cell = draw(st.sampled_from(cells))
    L = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    n_in = draw(st.integers(1, 2))
    T = draw(st.integers(1, 7))
    scale = draw(st.floats(0.1, 3.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = []
    for l in range(L):
        ni = n_in if l == 0 else n
        if cell == "elman":
            acts = ["tanh", "sigmoid", "identity"] if smooth else ["tanh", "sigmoid", "identity", "relu"]
            act = draw(st.sampled_from(acts))
            form = draw(st.sampled_from(["standard", "pascanu"]))
            alpha = rng.uniform(0, 1, n) if draw(st.booleans()) else None
            layers.append(ElmanRNN(rng.normal(size=(n, n)) * scale, rng.normal(size=(n, ni)) * scale,
                                   rng.normal(size=n), activation=act, form=form, alpha=alpha))
        else:
            cls, G = (LSTM, 4) if cell == "lstm" else (GRU, 3)
            layers.append(cls(rng.normal(size=(G * n, ni)) * scale, rng.normal(size=(G * n, n)) * scale,
                              rng.normal(size=G * n) * 2, rng.normal(size=G * n) * 2))
    x = rng.uniform(-2, 2, size=(T, n_in))
    return layers, x


def _check_pairs(B, R, usable, T):
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    sel = usable[t_idx, k_idx]
    t_idx, k_idx = t_idx[sel], k_idx[sel]
    obs, bnd = R[t_idx, k_idx], B[t_idx, k_idx]
    ok = np.isneginf(obs) | (obs <= bnd + SLACK * (1 + t_idx - k_idx))
    assert ok.all(), list(zip(t_idx[~ok], k_idx[~ok], obs[~ok], bnd[~ok], strict=True))


@given(stacks())
def test_whole_state_block_norm_bound_holds_on_every_pair(problem):
    """With ``N_i[l, m] = ‖block (l, m) of J_i‖``: ``‖J_t ⋯ J_{k+1}‖ ≤ ‖N_t ⋯ N_{k+1}‖``
    for every pair, because ``‖M‖₂ ≤ ‖(‖M[l, m]‖₂)‖₂`` for any block matrix (the
    norm of a vector of block norms), block norms are submultiplicative
    entrywise, ``‖(AB)[l, m]‖ ≤ Σ_j ‖A[l, j]‖ ‖B[j, m]‖``, and the spectral norm is
    monotone on non-negative matrices. Observed norms from complex-step Jacobians."""
    layers, x = problem
    m = StackedRNN(layers)
    tr = m.forward(x)
    R, usable = observed_log_norms(layers, x, tr)
    T = x.shape[0]
    _check_pairs(bd.stack_pair_log_bounds(m, tr, "block_norm"), R, usable, T)
    _check_pairs(bd.stack_pair_log_bounds(m, tr, "step_norm"), R, usable, T)
    # the bound is at least the observed norm's exact value on one step (N_i ≥ blocks)
    B = bd.stack_pair_log_bounds(m, tr, "block_norm")
    assert np.all(np.diag(B) == 0.0)


@given(stacks(cells=("elman",)))
def test_whole_state_weights_only_bound_holds_on_every_pair(problem):
    """Elman stacks: ``J_t = (I − S_t)^{-1} D_t`` with ``‖D_t[l, l]‖ ≤ a_l`` (Eq. 12's
    ``γ_W γ_h``, leaky ``max α + max(1 − α) γ_W γ_h``) and ``‖S_t[l, l−1]‖ ≤ x_l``
    (``‖W_hx‖ γ_h`` standard, ``‖W_hx‖`` Pascanu, times ``max(1 − α)``). ``S_t`` is
    nilpotent, so every block of ``J_t`` is bounded by ``N[l, m] = a_m Π x_j`` and
    ``‖∂s_t/∂s_k‖ ≤ ‖N^(t−k)‖`` for every input: checked on every pair, and the
    weight matrix checked against its definition."""
    layers, x = problem
    m = StackedRNN(layers)
    tr = m.forward(x)
    R, usable = observed_log_norms(layers, x, tr)
    T = x.shape[0]
    _check_pairs(bd.stack_pair_log_bounds(m, tr, "eq12"), R, usable, T)
    a = [bd.leaky_log_bound(l.W_hh, l.activation, l.alpha, 1) if l.alpha is not None
         else bd.log_bound(l.W_hh, l.activation, 1) for l in layers]
    xs = []
    for l in layers:
        v = np.linalg.norm(l.W_hx, 2) * (l.activation.gamma_h if l.form == "standard" else 1.0)
        if l.alpha is not None:
            v *= np.max(1.0 - l.alpha)
        xs.append(v)
    N = np.zeros((len(layers), len(layers)))
    for mm in range(len(layers)):
        for ll in range(mm, len(layers)):
            N[ll, mm] = np.exp(a[mm]) * np.prod(xs[mm + 1:ll + 1])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(np.exp(bd.stack_weight_log_matrix(m)), N, rtol=1e-12)
    taus = np.arange(T + 1)
    ref = [np.log(np.linalg.norm(np.linalg.matrix_power(N, int(s)), 2)) for s in taus]
    np.testing.assert_allclose(bd.stack_log_bound(m, taus), ref, rtol=1e-12, atol=1e-12)


@given(stacks(smooth=False))
def test_per_layer_bounds_hold_on_every_pair(problem):
    """Each layer's own bounds (its recurrence with its input held fixed: Eq. 12,
    the activation bound and Π‖J_i‖ for Elman layers, the gated bound and Π‖J_i‖
    for the LSTM and GRU) hold on every pair of its trace, and the stack's
    certificate says so for the whole state and for each layer."""
    layers, x = problem
    m = StackedRNN(layers)
    tr = m.forward(x)
    cert = bd.certify(m, tr)
    assert [label for label, _ in cert.layers] == [f"layer {l + 1}" for l in range(len(layers))]
    for (_, c), layer, ltr in zip(cert.layers, layers, tr.layers, strict=True):
        assert c.holds, str(c)
        L = jac.log_norms(layer, ltr)
        for name in ((("eq12", "activation", "step_norm")) if isinstance(layer, ElmanRNN)
                     else ("gated", "step_norm")):
            B = bd.pair_log_bounds(bd.step_log_bounds(layer, ltr, name))
            t_idx, k_idx = np.tril_indices(x.shape[0] + 1, -1)
            obs = L[t_idx, k_idx]
            assert np.all(np.isneginf(obs) | (obs <= B[t_idx, k_idx] + SLACK * (1 + t_idx - k_idx)))
    assert cert.holds, str(cert)


def test_weights_only_matrix_must_be_lower_triangular_in_full():
    """One step of a two-layer linear stack with ``W_hh¹ = 3I``, ``W_hh² = 0``,
    ``W_hx² = I``: ``J = [[3I, 0], [3I, 0]]`` has norm ``3√2``. A bidiagonal block
    matrix with ``N[2, 1] = ‖W_hx²‖ γ_h = 1`` would give ``‖[[3, 0], [1, 0]]‖ = √10 <
    3√2``: not a bound. The cross block is ``X² A¹``, so ``N[2, 1] = ‖W_hx²‖ γ_h a_1 = 3``
    and ``‖N‖ = 3√2`` exactly."""
    n = 2
    l1 = ElmanRNN(3 * np.eye(n), np.eye(n), np.zeros(n), activation="identity")
    l2 = ElmanRNN(np.zeros((n, n)), np.eye(n), np.zeros(n), activation="identity")
    m = StackedRNN([l1, l2])
    tr = m.forward(np.ones((1, n)))
    obs = jac.log_norms(m, tr)[1, 0]
    assert obs == pytest.approx(np.log(3 * np.sqrt(2)), rel=1e-14)
    assert obs > np.log(np.linalg.norm([[3.0, 0.0], [1.0, 0.0]], 2))
    assert bd.stack_log_bound(m, 1) == pytest.approx(np.log(3 * np.sqrt(2)), rel=1e-14)
    assert bd.stack_pair_log_bounds(m, tr, "block_norm")[1, 0] == pytest.approx(obs, rel=1e-14)


def test_weights_only_rate_is_the_largest_layer_rate():
    """``N`` is lower-triangular with diagonal ``a_l``: ``ln ‖N^τ‖ / τ → max_l ln a_l``
    (Gelfand's formula). With ``a = (0.5, 0.9)`` and ``x_2 = 1`` (identity layers,
    ``W_hx² = I``), ``N = [[0.5, 0], [0.5, 0.9]]`` and by induction
    ``N^τ = [[0.5^τ, 0], [1.25 (0.9^τ − 0.5^τ), 0.9^τ]]``, so at τ = 4000 (0.5^τ far
    below float64) ``ln ‖N^τ‖ = τ ln 0.9 + ln ‖[[0, 0], [1.25, 1]]‖`` to rounding."""
    n = 2
    l1 = ElmanRNN(0.5 * np.eye(n), np.eye(n), np.zeros(n), activation="identity")
    l2 = ElmanRNN(0.9 * np.eye(n), np.eye(n), np.zeros(n), activation="identity")
    m = StackedRNN([l1, l2])
    np.testing.assert_allclose(np.exp(bd.stack_weight_log_matrix(m)), [[0.5, 0.0], [0.5, 0.9]], rtol=1e-15)
    tau = 4000
    exact = tau * np.log(0.9) + np.log(np.linalg.norm([[0.0, 0.0], [1.25, 1.0]], 2))
    assert bd.stack_log_bound(m, tau) == pytest.approx(exact, rel=1e-12)
    assert bd.stack_log_bound(m, 7) == pytest.approx(
        np.log(np.linalg.norm([[0.5**7, 0.0], [1.25 * (0.9**7 - 0.5**7), 0.9**7]], 2)), rel=1e-13)


def test_weights_only_bound_for_a_huge_number_of_steps():
    """``ln ‖N^τ‖`` for τ = 10⁹ by repeated squaring equals the closed form of
    ``N = [[a, 0], [b, a]]``: ``N^τ = a^τ [[1, 0], [τ b/a, 1]]``, whose norm is
    ``a^τ (u + √(u² + 4))/2`` with ``u = τ b / a``, i.e. ``τ ln a + asinh(u/2)``."""
    n = 2
    l1 = ElmanRNN(0.5 * np.eye(n), 2.0 * np.eye(n), np.zeros(n), activation="identity")
    l2 = ElmanRNN(0.5 * np.eye(n), 2.0 * np.eye(n), np.zeros(n), activation="identity")
    m = StackedRNN([l1, l2])  # a = 0.5, x_2 = 2: N[2, 1] = 2 · 0.5 = 1
    tau = 10**9
    exact = tau * np.log(0.5) + np.arcsinh(tau * 1.0 / 0.5 / 2)
    assert bd.stack_log_bound(m, tau) == pytest.approx(exact, rel=1e-12)
    small = bd.stack_log_bound(m, np.arange(12))
    ref = [np.log(np.linalg.norm(np.linalg.matrix_power([[0.5, 0.0], [1.0, 0.5]], k), 2)) for k in range(12)]
    np.testing.assert_allclose(small, ref, rtol=1e-13, atol=1e-13)
    assert bd.stack_log_bound(m, 7) == pytest.approx(ref[7], rel=1e-13)


def _gru_stack():
    rng = np.random.default_rng(0)
    return StackedRNN([GRU(rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), None, None) for _ in range(2)])


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda m, tr: bd.stack_weight_log_matrix(m.layers[0]), TypeError,
         "`model` must be a StackedRNN for `stack_weight_log_matrix`, got ElmanRNN"),
        (lambda m, tr: bd.stack_log_bound(_gru_stack(), 3), ValueError,
         "`stack_weight_log_matrix` is for stacks of Elman layers .* got cell 'gru'"),
        (lambda m, tr: bd.stack_log_bound(m, -1), ValueError, "`steps` must be non-negative integers, got -1"),
        (lambda m, tr: bd.stack_log_bound(m, 1.5), ValueError, "`steps` must be non-negative integers, got 1.5"),
        (lambda m, tr: bd.stack_pair_log_bounds(m, tr, "gated"), ValueError,
         r"`bound` must be one of \('eq12', 'block_norm', 'step_norm'\), got 'gated'"),
        (lambda m, tr: bd.stack_step_log_bounds(m, tr, "step_norm"), ValueError,
         "`bound` must be 'block_norm' or 'eq12', got 'step_norm'"),
        (lambda m, tr: bd.stack_pair_log_bounds(m, tr.layers[0]), TypeError,
         r"`trace` \(Trace\) was not made by a StackedRNN"),
        (lambda m, tr: bd.certify(m, tr, bounds=("activation",)), ValueError,
         r"`bounds` entries for a stacked model must be in \('eq12', 'block_norm', 'step_norm'\), got 'activation'"),
        (lambda m, tr: bd.certify(m, tr, bounds="eq12"), TypeError, "`bounds` must be a tuple of bound names"),
        (lambda m, tr: bd.step_log_bounds(m, tr, "eq12"), ValueError,
         "`bound` 'eq12' is a single cell's; for a StackedRNN use bound='step_norm'"),
        (lambda m, tr: bd.stack_pair_log_bounds(m, m.forward(np.zeros((3, 2, 1)))), ValueError,
         r"`trace.layers\[0\]` must be a single-sequence trace"),
    ],
)
def test_stack_bounds_refuse_bad_input_by_name(call, exc, match):
    """Every stack bound names the argument that is wrong and what was expected."""
    rng = np.random.default_rng(1)
    m = StackedRNN([ElmanRNN(rng.normal(size=(2, 2)), rng.normal(size=(2, 1)), np.zeros(2)),
                    ElmanRNN(rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), np.zeros(2))])
    tr = m.forward(np.zeros((3, 1)))
    with pytest.raises(exc, match=match):
        call(m, tr)


def test_stack_certificate_of_one_step_and_gated_default():
    """T = 1: one pair (1, 0) per bound, where ``block_norm`` is ``‖ |J_1| ‖ ≥ ‖J_1‖`` and
    ``step_norm`` is ``‖J_1‖`` itself (ratio 0); a gated stack's defaults are the
    block-norm and step-norm bounds (Eq. 12 does not bound a gated cell)."""
    m = _gru_stack()
    tr = m.forward(np.ones((1, 2)))
    cert = bd.certify(m, tr)
    assert [c.name for c in cert.checks] == ["block_norm", "step_norm"]
    assert all(c.pairs_checked == 1 for c in cert.checks) and cert.holds
    J = jac.step_jacobians(m, tr)[0]
    assert cert["step_norm"].max_log_ratio == pytest.approx(0.0, abs=1e-13)
    blocks = np.array([[np.linalg.norm(J[2 * l:2 * l + 2, 2 * k:2 * k + 2], 2) for k in range(2)] for l in range(2)])
    assert bd.stack_pair_log_bounds(m, tr)[1, 0] == pytest.approx(np.log(np.linalg.norm(blocks, 2)), rel=1e-13)
    assert "layer 2 (its input held fixed)" in str(cert)
