"""Leaky integration units (Eq. 14) as a remedy: bounds on every pair, learned α, C27.

Oracles: the loop references of tests/naive.py (forward, step Jacobians, BPTT
flow), explicit Jacobian products with NumPy's SVD, float64 central finite
differences, and bounds computed here from their formulas.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnntheory import ElmanRNN, bounds, init, jacobians
from rnntheory import strategies as rst
from rnntheory._oracles import central_jacobian
from rnntheory.tasks import TemporalOrder
from rnntheory.training import SGD, train

EPS = np.finfo(np.float64).eps
GAMMA_H = {"tanh": 1.0, "sigmoid": 0.25, "identity": 1.0}


def _products(J: np.ndarray):
    """Every explicit product ∂h_t/∂h_k = J_t ⋯ J_{k+1} (naive.product) with its singular values."""
    T = J.shape[0]
    for t in range(1, T + 1):
        for k in range(t):
            yield t, k, np.linalg.svd(naive.product(J, t, k), compute_uv=False)


def _model_and_input(draw, alpha_lo: float, alpha_hi: float, norm_hi: float):
    act = draw(st.sampled_from(["tanh", "sigmoid", "identity"]))
    base = draw(rst.elman_models(
        n_in=2, n_hidden=rst.sizes(1, 4), activation=act, weight_norm=st.floats(0.05, norm_hi),
    ))
    n = base.n_hidden
    alpha = draw(hnp.arrays(np.float64, n, elements=st.floats(alpha_lo, alpha_hi)))
    m = base.replace(alpha=alpha)
    x = draw(rst.input_sequences(rst.sizes(1, 7), 2))
    return m, x


@st.composite
def leaky_cases(draw):
    """Any leaky model (α ∈ [0, 1]^n, σ_max(W_hh) ∈ [0.05, 3])."""
    return _model_and_input(draw, 0.0, 1.0, 3.0)


@st.composite
def slow_leaky_cases(draw):
    """Leaky models where the lower bound is often positive (α ∈ [0.6, 1], σ_max ≤ 1)."""
    return _model_and_input(draw, 0.6, 1.0, 1.0)


@given(leaky_cases())
def test_leaky_upper_bound_on_every_pair(case) -> None:
    """Eq. 14: J = diag(α) + diag(1 − α) J̃ with ‖J̃‖ ≤ γ_W γ_h, so
    ‖J‖ ≤ max α + max(1 − α) γ_W γ_h =: R and ‖∂h_t/∂h_k‖ ≤ R^(t−k) on every pair.
    Observed: naive step Jacobians, explicit products, SVD; and the library's log_norms."""
    m, x = case
    a = np.asarray(m.alpha)
    gw = np.linalg.svd(np.asarray(m.W_hh), compute_uv=False)[0]
    R = a.max() + (1 - a).max() * gw * GAMMA_H[m.activation.name]
    J = naive.jacobians(m, x)
    L = jacobians.log_norms(m, m.forward(x))
    for t, k, s in _products(J):
        assert s[0] <= R ** (t - k) * (1 + 1e-9 * (t - k + 1)) + 1e-300
        assert L[t, k] <= (t - k) * np.log(R) + 1e-9 * (t - k + 1)
        lib = bounds.leaky_log_bound(m.W_hh, m.activation, m.alpha, t - k)
        assert lib == pytest.approx((t - k) * np.log(R), rel=1e-12, abs=1e-12)


@given(slow_leaky_cases())
def test_leaky_lower_bound_on_every_pair(case) -> None:
    """Weyl: σ_min(diag(α) + B) ≥ min α − ‖B‖, ‖B‖ ≤ max(1 − α) γ_W γ_h, so with
    r = min α − max(1 − α) γ_W γ_h > 0, σ_min(∂h_t/∂h_k) ≥ r^(t−k) on every pair
    (σ_min(AB) ≥ σ_min(A) σ_min(B)): the flow cannot vanish faster than r per step.
    σ_min of the explicit product by SVD; tolerance: the rounding of the product and the
    SVD, (t − k + 1)·n·8ε·Π‖J_i‖ absolute, 1e−9 per step relative."""
    m, x = case
    a = np.asarray(m.alpha)
    n = m.n_hidden
    gw = np.linalg.svd(np.asarray(m.W_hh), compute_uv=False)[0]
    r = a.min() - (1 - a).max() * gw * GAMMA_H[m.activation.name]
    J = naive.jacobians(m, x)
    norms = np.linalg.svd(J, compute_uv=False)[:, 0]
    for t, k, s in _products(J):
        lib = bounds.leaky_log_lower_bound(m.W_hh, m.activation, m.alpha, t - k)
        if r <= 0:
            assert lib == -np.inf
            continue
        assert lib == pytest.approx((t - k) * np.log(r), rel=1e-12, abs=1e-12)
        err = 8 * (t - k + 1) * n * EPS * np.prod(norms[k:t])
        assert s[-1] >= r ** (t - k) * (1 - 1e-9 * (t - k + 1)) - err


def test_leaky_bounds_are_attained() -> None:
    """The bounds are tight: W_hh = ±w I, identity f, scalar α give J = (α ± (1 − α) w) I,
    so ‖∂h_t/∂h_k‖ = (α + (1 − α)w)^(t−k) and σ_min = (α − (1 − α)w)^(t−k) exactly."""
    alpha, w, T = 0.9, 0.5, 12
    up = ElmanRNN(w * np.eye(3), np.ones((3, 1)), np.zeros(3), activation="identity", alpha=alpha)
    lo = up.replace(W_hh=-w * np.eye(3))
    x = np.random.default_rng(0).normal(size=(T, 1))
    L_up = jacobians.log_norms(up, up.forward(x))
    J_lo = naive.jacobians(lo, x)
    for t, k, s in _products(J_lo):
        assert L_up[t, k] == pytest.approx((t - k) * np.log(alpha + (1 - alpha) * w), abs=1e-12)
        assert np.log(s[-1]) == pytest.approx((t - k) * np.log(alpha - (1 - alpha) * w), abs=1e-12)
        assert bounds.leaky_log_lower_bound(lo.W_hh, "identity", alpha, t - k) == pytest.approx(
            np.log(s[-1]), abs=1e-12)


def test_lower_bound_rejects_bad_alpha() -> None:
    """α outside [0, 1] is refused with a message naming `alpha`; negative steps too."""
    with pytest.raises(ValueError, match="`alpha` must lie in \\[0, 1\\]"):
        bounds.leaky_log_lower_bound(np.eye(2), "tanh", [0.5, 1.5], 1)
    with pytest.raises(ValueError, match="`steps`"):
        bounds.leaky_log_lower_bound(np.eye(2), "tanh", 0.5, -1)


# ---------------------------------------------------------------- learned α
def _alpha_grad_reference(m: ElmanRNN, x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Σ_t flow[t] ⊙ (h_{t−1} − g_t) with naive.bptt's flow and g_t from the definitions."""
    flow = naive.bptt(m, x, y, kind)["flow"]
    hs = naive.forward(m, x)
    W, U, b, _, _, _ = naive.params(m)
    total = np.zeros(m.n_hidden)
    for t in range(1, x.shape[0] + 1):
        if m.form == "standard":
            g = naive.act(m.activation.name, W @ hs[t - 1] + U @ x[t - 1] + b)
        else:
            g = W @ naive.act(m.activation.name, hs[t - 1]) + U @ x[t - 1] + b
        total += flow[t] * (hs[t - 1] - g)
    return total


@given(leaky_cases(), st.sampled_from(["standard", "pascanu"]), st.integers(0, 2**31))
def test_alpha_gradient_matches_finite_differences(case, form: str, seed: int) -> None:
    """∂E/∂α_i of Eq. 14 (h_t = α h_{t−1} + (1 − α) g_t) equals float64 central differences
    of the loss (relative to the gradient's scale, 1e−6), and the loop reference
    Σ_t ∂E/∂h_t ⊙ (h_{t−1} − g_t) to 1e−10."""
    m0, x = case
    a = np.clip(np.asarray(m0.alpha), 1e-3, 1 - 1e-3)  # central differences stay inside [0, 1]
    rng = np.random.default_rng(seed)
    m = ElmanRNN(m0.W_hh, m0.W_hx, m0.b_h, rng.normal(size=(2, m0.n_hidden)),
                 activation=m0.activation, form=form, alpha=a, learn_alpha=True)
    y = rng.integers(0, 2, size=x.shape[0])
    _, g = m.value_and_grad(x, y)
    assert g.alpha is not None
    ref = _alpha_grad_reference(m, x, y, "xent")
    assert np.allclose(g.alpha, ref, rtol=1e-10, atol=1e-12)
    h = 1e-6
    fd = central_jacobian(lambda al: m.replace(alpha=al).value_and_grad(x, y)[0], a, h)
    scale = max(1.0, float(np.max(np.abs(fd))))
    assert np.max(np.abs(fd - g.alpha)) <= 1e-6 * scale


def test_alpha_gradient_batched_masked_mse() -> None:
    """Batched with a mask and the squared error: ∂E/∂α is the sum over sequences of each
    sequence's loop-reference gradient (mask weights applied), and the other gradients
    are bitwise those of the same model without learn_alpha."""
    rng = np.random.default_rng(3)
    m = ElmanRNN.init(2, 4, 3, scheme="henaff", alpha=[0.9, 0.5, 0.2, 0.99], learn_alpha=True, seed=1)
    x = rng.normal(size=(6, 3, 2))
    y = rng.normal(size=(6, 3, 3))
    mask = rng.uniform(0, 1, size=(6, 3))
    _, g = m.value_and_grad(x, y, loss="mse", mask=mask)
    want = np.zeros(4)
    for b in range(3):
        flow = naive.bptt(m, x[:, b], y[:, b], "mse", mask=mask[:, b])["flow"]
        hs = naive.forward(m, x[:, b])
        for t in range(1, 7):
            g_t = np.tanh(m.W_hh @ hs[t - 1] + m.W_hx @ x[t - 1, b])
            want += flow[t] * (hs[t - 1] - g_t)
    assert np.allclose(g.alpha, want, rtol=1e-10, atol=1e-12)
    fixed = m.replace(learn_alpha=False)
    _, g0 = fixed.value_and_grad(x, y, loss="mse", mask=mask)
    assert g0.alpha is None and "alpha" not in g0.params() and "alpha" not in fixed.params()
    for k, v in g0.params().items():
        assert np.array_equal(v, g.params()[k]), k


def test_learned_alpha_is_a_parameter_and_stays_in_the_unit_interval() -> None:
    """params() holds α; replace() with learn_alpha projects it onto [0, 1] (clip), while the
    constructor still refuses α outside [0, 1]; learn_alpha needs an initial α."""
    m = ElmanRNN.init(2, 3, None, alpha=0.5, learn_alpha=True, seed=0)
    assert list(m.params()) == ["W_hh", "W_hx", "b_h", "alpha"]
    assert np.array_equal(m.params()["alpha"], np.full(3, 0.5))
    m2 = m.replace(alpha=np.array([-0.3, 0.4, 1.7]))
    assert np.array_equal(m2.alpha, [0.0, 0.4, 1.0]) and m2.learn_alpha
    with pytest.raises(ValueError, match="`alpha` must lie in \\[0, 1\\]"):
        ElmanRNN(m.W_hh, m.W_hx, m.b_h, alpha=[0.1, 1.2, 0.3])
    with pytest.raises(ValueError, match="`learn_alpha=True` needs an initial `alpha`"):
        ElmanRNN.init(2, 3, None, learn_alpha=True)
    with pytest.raises(TypeError, match="`learn_alpha` must be a bool"):
        ElmanRNN(m.W_hh, m.W_hx, m.b_h, alpha=0.5, learn_alpha="yes")


def test_train_updates_learned_alpha_with_projection() -> None:
    """train() with SGD moves a learned α by −lr·∂E/∂α (first step checked against the model's
    own gradient of the mean loss) and, with a huge learning rate, the projection leaves
    every α in [0, 1] with some at the boundary."""
    task = TemporalOrder(12)
    m = ElmanRNN.init(6, 5, 4, scheme="orthogonal", alpha=(0.02, 0.2), alpha_kind="leak",
                      learn_alpha=True, seed=0)
    h = train(m, task, optimizer=SGD(0.1), steps=1, batch_size=4, seed=7, eval_size=4)
    batch = task.sample(4, np.random.default_rng(7))
    _, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    assert np.allclose(h.model.alpha, np.clip(m.alpha - 0.1 * g.alpha / 4, 0, 1), rtol=0, atol=1e-14)
    assert not np.array_equal(h.model.alpha, m.alpha)
    big = train(m, task, optimizer=SGD(1e4), steps=3, batch_size=4, seed=7, eval_size=4)
    a = big.model.alpha
    assert np.all((a >= 0) & (a <= 1)) and np.any((a == 0) | (a == 1))


# ---------------------------------------------------------------- C27 conventions
def test_leaky_alpha_conventions() -> None:
    """leaky_alpha: "retention" returns u ~ U[low, high]; "leak" returns 1 − u from the same
    draws; ElmanRNN.init(alpha=(low, high)) needs alpha_kind, and a scalar leak rate a
    gives α = 1 − a."""
    r = init.leaky_alpha(50, 0.02, 0.2, kind="retention", seed=5)
    lk = init.leaky_alpha(50, 0.02, 0.2, kind="leak", seed=5)
    assert np.all((r >= 0.02) & (r <= 0.2))
    assert np.allclose(lk, 1.0 - r, rtol=0, atol=1e-15)
    with pytest.raises(TypeError):
        init.leaky_alpha(3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="`kind` must be one of"):
        init.leaky_alpha(3, kind="rate")
    with pytest.raises(ValueError, match="`low` must be <= `high`"):
        init.leaky_alpha(3, 0.5, 0.1, kind="leak")
    with pytest.raises(ValueError, match="`alpha_kind` must be 'retention' or 'leak'"):
        ElmanRNN.init(2, 3, None, alpha=(0.02, 0.2))
    m = ElmanRNN.init(2, 3, None, alpha=0.1, alpha_kind="leak", seed=0)
    assert np.allclose(m.alpha, 0.9, rtol=0, atol=1e-15)
    same = ElmanRNN.init(2, 3, None, seed=0)
    assert np.array_equal(m.W_hh, same.W_hh)  # α is drawn after the weights


def test_time_constants_of_the_two_readings() -> None:
    """C27: a leaky linear unit (W_hh = 0, f = identity) forgets as α^t. With the article's
    range read as retentions (α ≤ 0.2) an impulse is below 1e−6 within 9 steps; read as
    leak rates (α ≥ 0.8) it needs more than 60: only the second reading gives slow units."""
    for kind, lo, hi in (("retention", 1, 9), ("leak", 61, 10**6)):
        a = init.leaky_alpha(20, 0.02, 0.2, kind=kind, seed=0)
        m = ElmanRNN(np.zeros((20, 20)), np.ones((20, 1)), np.zeros(20), activation="identity", alpha=a)
        prof = jacobians.log_norm_profile(m, m.forward(np.zeros((800, 1))), 0)
        steps = int(np.argmax(prof < np.log(1e-6)))
        assert lo <= steps <= hi, (kind, steps)


def test_verify_row_leaky_bounds() -> None:
    """The `verify` row for the leaky bounds passes, with non-trivial lower bounds among its models."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.init import leaky_bounds

    row = leaky_bounds(CheckContext())
    assert row.passed and row.models == 12 and row.pairs > 0
    assert row.worst <= 1e-9
