"""Penalties on W_hh, the spectral projection, and claim C21 (a penalty bounds nothing).

Oracles: central finite differences in float64 for every gradient; NumPy's SVD
for the singular values; ``bounds.certify`` for Eq. 12 after the projection.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rnntheory import GRU, LSTM, ElmanRNN, bounds
from rnntheory._oracles import central_jacobian
from rnntheory.remedies import l1_penalty, l2_penalty, project_spectral_norm, spectral_penalty
from rnntheory.strategies import elman_models

models = elman_models(n_hidden=st.integers(1, 5), weight_norm=st.floats(0.1, 4.0))
# Penalty weights: 0 or a normal number (a subnormal λ is refused).
weights = st.just(0.0) | st.floats(1e-3, 10.0)
# Projection bounds: 0 or at least the smallest normal float64 (a subnormal c is refused).
bounds_c = st.just(0.0) | st.floats(float(np.finfo(np.float64).tiny), 3.0)


def fd_grad(penalty, model, h=1e-6):
    """Central differences (P(W + hE_ij) − P(W − hE_ij)) / 2h for every entry of W_hh."""
    return central_jacobian(lambda W: penalty(model.replace(W_hh=W)), model.W_hh, h)


def svals(W):
    return np.linalg.svd(np.asarray(W, np.float64), compute_uv=False)


# ----------------------------------------------------------------- gradients


@given(models, weights)
def test_l1_gradient_matches_finite_differences(model, lam):
    """∂/∂W (λ Σ|W_ij|) = λ sign(W) wherever W_ij ≠ 0 (entries within 1e-4 of
    the kink |W_ij| = 0 are skipped: there the 0 returned is a subgradient)."""
    value, g = l1_penalty(model, lam)
    assert list(g) == ["W_hh"] and g["W_hh"].dtype == model.W_hh.dtype
    assert value == pytest.approx(lam * np.abs(model.W_hh).sum(), rel=1e-14)
    fd = fd_grad(lambda m: l1_penalty(m, lam)[0], model)
    smooth = np.abs(model.W_hh) > 1e-4
    np.testing.assert_allclose(g["W_hh"][smooth], fd[smooth], rtol=1e-7, atol=1e-7 * lam)
    assert np.all(g["W_hh"][model.W_hh == 0] == 0)


@given(models, weights)
def test_l2_gradient_matches_finite_differences(model, lam):
    """P = ½λ‖W‖_F², ∂P/∂W = λW: equal to central differences (P is quadratic,
    so central differences are exact up to rounding)."""
    value, g = l2_penalty(model, lam)
    assert list(g) == ["W_hh"]
    assert value == pytest.approx(0.5 * lam * np.sum(model.W_hh**2), rel=1e-14)
    fd = fd_grad(lambda m: l2_penalty(m, lam)[0], model)
    np.testing.assert_allclose(g["W_hh"], fd, rtol=1e-7, atol=1e-8 * (1 + lam))


@given(models, st.floats(0.0, 4.0), weights)
def test_spectral_gradient_matches_finite_differences(model, c, lam):
    """P = λ max(0, σ₁ − c)², ∂P/∂W = 2λ max(0, σ₁ − c) u₁v₁ᵀ when σ₁ is simple
    (gap σ₁ − σ₂ > 0.01), away from the kink of P's second derivative at σ₁ = c."""
    s = svals(model.W_hh)
    gap = s[0] - (s[1] if s.size > 1 else 0.0)
    assume(gap > 1e-2 and abs(s[0] - c) > 1e-3)
    value, g = spectral_penalty(model, lam, c=c)
    assert list(g) == ["W_hh"]
    assert value == pytest.approx(lam * max(0.0, s[0] - c) ** 2, rel=1e-13, abs=1e-300)
    fd = fd_grad(lambda m: spectral_penalty(m, lam, c=c)[0], model)
    np.testing.assert_allclose(g["W_hh"], fd, rtol=1e-6, atol=1e-6 * (1 + lam))
    if s[0] <= c:
        assert np.all(g["W_hh"] == 0)


def test_spectral_gradient_at_repeated_top_singular_value_is_a_subgradient():
    """At W = 2I (σ₁ = σ₂ = 2 > c = 1) P is not differentiable; the value returned,
    G = 2λ(σ₁ − c) u vᵀ for one top pair, is a subgradient of the convex P:
    P(W + D) ≥ P(W) + ⟨G, D⟩ for every direction D tried."""
    m = ElmanRNN(2.0 * np.eye(2), np.zeros((2, 1)), np.zeros(2))
    value, g = spectral_penalty(m, 0.5, c=1.0)
    assert value == 0.5
    G = g["W_hh"]
    assert np.linalg.norm(G, 2) == pytest.approx(1.0)  # 2·0.5·1·‖u vᵀ‖
    rng = np.random.default_rng(0)
    for _ in range(50):
        D = rng.normal(size=(2, 2)) * 10.0 ** rng.uniform(-4, 0)
        p = spectral_penalty(m.replace(W_hh=m.W_hh + D), 0.5, c=1.0)[0]
        assert p >= value + np.sum(G * D) - 1e-12


def test_penalties_on_gated_cells_use_weight_hh():
    """For an LSTM/GRU the stacked recurrent matrix weight_hh is penalised;
    the gradient dict's only key is "weight_hh"."""
    for cls in (LSTM, GRU):
        m = cls.init(2, 3, None, seed=0)
        W = m.weight_hh
        v1, g1 = l1_penalty(m, 0.5)
        v2, g2 = l2_penalty(m, 0.5)
        assert v2 == pytest.approx(0.25 * np.sum(W * W))
        v3, g3 = spectral_penalty(m, 1.0, c=0.0)
        assert list(g1) == list(g2) == list(g3) == ["weight_hh"]
        assert v1 == pytest.approx(0.5 * np.abs(W).sum())
        np.testing.assert_array_equal(g2["weight_hh"], 0.5 * W)
        assert v3 == pytest.approx(svals(W)[0] ** 2)
        p = project_spectral_norm(m, 0.1)
        assert isinstance(p, cls) and bounds.gamma_w(p.weight_hh) <= 0.1
        np.testing.assert_array_equal(p.weight_ih, m.weight_ih)


# ----------------------------------------------------------------- projection


@given(models, bounds_c)
def test_projection_clips_singular_values(model, c):
    """Π_c(W) = U diag(min(σ_i, c)) Vᵀ: its singular values are min(σ_i, c)
    (to 1e-12 relative to σ₁), so σ_max ≤ c, and σ_max ≤ c holds exactly as
    bounds.gamma_w computes it; every other parameter and option is unchanged."""
    p = project_spectral_norm(model, c)
    s = svals(model.W_hh)
    assert isinstance(p, ElmanRNN) and p is not model
    assert bounds.gamma_w(p.W_hh) <= c
    np.testing.assert_allclose(svals(p.W_hh), np.minimum(s, c), rtol=0, atol=1e-12 * s[0])
    if s[0] > c:
        assert bounds.gamma_w(p.W_hh) == pytest.approx(c, rel=1e-12, abs=1e-300)
    for k in ("W_hx", "b_h"):
        assert np.array_equal(getattr(p, k), getattr(model, k))
    assert (p.activation, p.form) == (model.activation, model.form)
    # the singular vectors of the kept part: Π_c(W) − W = U diag(min(σ,c) − σ) Vᵀ
    U, _, Vt = np.linalg.svd(model.W_hh)
    np.testing.assert_allclose(
        U.T @ (p.W_hh - model.W_hh) @ Vt.T, np.diag(np.minimum(s, c) - s), atol=1e-12 * s[0]
    )


@given(models, bounds_c)
def test_projection_is_idempotent(model, c):
    """Π_c(Π_c(W)) = Π_c(W) bitwise (the projected matrix already satisfies σ_max ≤ c)."""
    once = project_spectral_norm(model, c)
    twice = project_spectral_norm(once, c)
    assert np.array_equal(once.W_hh, twice.W_hh)


@given(models, st.floats(1.0, 2.0))
def test_projection_leaves_feasible_weights_unchanged(model, factor):
    """If σ_max(W) ≤ c, Π_c(W) = W bitwise (no SVD round trip)."""
    c = bounds.gamma_w(model.W_hh) * factor
    p = project_spectral_norm(model, c)
    assert np.array_equal(p.W_hh, model.W_hh)


@given(
    elman_models(n_hidden=st.integers(1, 5), weight_norm=st.floats(1.0, 6.0), leaky=st.booleans()),
    st.floats(0.2, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_projection_certifies_eq12(model, c, seed):
    """After Π_c: bounds.gamma_w(W_hh) ≤ c and certify(…, bounds=("eq12",)) holds:
    every ‖∂h_t/∂h_k‖ ≤ r^(t−k) with r = c γ_h, or r = max α + max(1 − α) c γ_h
    for leaky units (Eq. 14). Without leak, c ≤ 1 and γ_h ≤ 1 give r ≤ 1: with
    the hard constraint the gradient cannot explode, for any input. (With a
    per-unit α, r can exceed 1 although σ_max(W_hh) ≤ 1: Hypothesis finds such
    models, e.g. α = (0, 1)-like units whose Jacobian norms grow.)"""
    p = project_spectral_norm(model, c)
    assert bounds.gamma_w(p.W_hh) <= c
    x = np.random.default_rng(seed).normal(size=(12, p.n_in)) * 3
    cert = bounds.certify(p, p.forward(x), bounds=("eq12",))
    assert cert.holds
    t, k = np.tril_indices(cert.T + 1, -1)
    gh = p.activation.gamma_h
    r = c * gh if p.alpha is None else p.alpha.max() + (1 - p.alpha).max() * c * gh
    assert np.all(cert.log_norms[t, k] <= (t - k) * math.log(r) + 1e-9 * (1 + t - k))
    if p.alpha is None:
        assert np.all(cert.log_norms[t, k] <= 1e-9 * (1 + t - k))


def test_projection_float32_and_zero():
    """float32 weights: σ_max ≤ c exactly after the cast (the clipped values are
    lowered by an ulp if rounding needs it). c = 0 gives W_hh = 0."""
    m = ElmanRNN.init(2, 7, None, scheme="gaussian", scale=3.0, seed=4, dtype=np.float32)
    p = project_spectral_norm(m, 0.9)
    assert p.W_hh.dtype == np.float32 and bounds.gamma_w(p.W_hh) <= 0.9
    assert bounds.gamma_w(p.W_hh) == pytest.approx(0.9, rel=1e-6)
    assert not project_spectral_norm(m, 0.0).W_hh.any()


# --------------------------------------------------------- C21: no hard bound


def test_c21_l2_penalty_step_leaves_sigma_max_above_one():
    """Claim C21 is false: gradient steps on loss + L2 penalty do not bound
    σ_max(W_hh). A tanh RNN with σ_max(W_hh) = 3, λ = 0.1, learning rate 0.1:
    after 20 steps on xent + ½λ‖W_hh‖² the recurrent matrix still has
    σ_max > 2 (the penalty alone shrinks it by (1 − ηλ) = 0.99 per step, and the
    loss gradient can push it back up). The projection gives σ_max ≤ 1 at once."""
    rng = np.random.default_rng(0)
    m = ElmanRNN.init(3, 6, 4, scheme="gaussian", scale=1.0, seed=0)
    m = m.replace(W_hh=m.W_hh * (3.0 / bounds.gamma_w(m.W_hh)))
    x = rng.normal(size=(25, 3))
    y = rng.integers(0, 4, size=25)
    lam, lr = 0.1, 0.1
    for _ in range(20):
        _, g = m.value_and_grad(x, y)
        _, pg = l2_penalty(m, lam)
        step = {k: v + pg.get(k, 0.0) for k, v in g.params().items()}
        m = m.replace(**{k: m.params()[k] - lr * step[k] for k in step})
    assert bounds.gamma_w(m.W_hh) > 2.0
    assert bounds.gamma_w(project_spectral_norm(m, 1.0).W_hh) <= 1.0


@given(st.floats(1e-3, 10.0), st.floats(1.01, 10.0), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_c21_penalised_optimum_can_have_any_sigma_max(lam, excess, n, seed):
    """No penalty weight λ gives a hard bound. For the loss E(W) = ½‖W − A‖_F²
    with σ_max(A) = a, the minimiser of E + ½λ‖W‖_F² is W* = A/(1 + λ): its total
    gradient (W* − A) + λW* vanishes, and σ_max(W*) = a/(1 + λ) > 1 whenever
    a > 1 + λ. So for every λ some loss puts the penalised optimum outside the
    unit ball; the projection Π_1 does not depend on the loss."""
    a = (1.0 + lam) * excess
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= a / bounds.gamma_w(A)
    W_star = A / (1.0 + lam)
    m = ElmanRNN(W_star, np.zeros((n, 1)), np.zeros(n))
    _, pg = l2_penalty(m, lam)
    total = (W_star - A) + pg["W_hh"]
    assert np.max(np.abs(total)) <= 1e-12 * a
    assert bounds.gamma_w(W_star) == pytest.approx(excess, rel=1e-12)
    assert bounds.gamma_w(W_star) > 1.0
    assert bounds.gamma_w(project_spectral_norm(m, 1.0).W_hh) <= 1.0


@given(st.floats(1e-3, 10.0), st.floats(0.1, 2.0), st.floats(0.01, 5.0))
def test_spectral_penalty_optimum_exceeds_c_too(lam, c, extra):
    """Even the spectral hinge penalty is soft: for E(W) = ½‖W − a e₁e₁ᵀ‖² with
    a > c, the minimiser of E + λ max(0, σ₁ − c)² is σ* e₁e₁ᵀ with
    σ* = (a + 2λc)/(1 + 2λ) > c; its total gradient vanishes."""
    a = c + extra
    sigma = (a + 2 * lam * c) / (1 + 2 * lam)
    E = np.zeros((2, 2))
    E[0, 0] = 1.0
    m = ElmanRNN(sigma * E, np.zeros((2, 1)), np.zeros(2))
    _, pg = spectral_penalty(m, lam, c=c)
    total = (m.W_hh - a * E) + pg["W_hh"]
    assert np.max(np.abs(total)) <= 1e-12 * (1 + a + lam)
    assert sigma > c


# ------------------------------------------------------------ bad arguments


M = ElmanRNN(np.eye(2), np.zeros((2, 1)), np.zeros(2))
M32 = ElmanRNN(np.eye(2, dtype=np.float32), np.zeros((2, 1), np.float32), np.zeros(2, np.float32))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: l1_penalty(M, -1.0), ValueError, r"`weight` must be >= 0\.0, got -1\.0"),
        (lambda: l2_penalty(M, math.nan), ValueError, r"`weight` must be finite, got nan"),
        (lambda: l2_penalty(M, "1"), TypeError, r"`weight` must be a real number, got '1'"),
        (lambda: spectral_penalty(M, 1.0, c=-0.5), ValueError, r"`c` must be >= 0\.0, got -0\.5"),
        (lambda: spectral_penalty(M, math.inf, c=1.0), ValueError, r"`weight` must be finite"),
        (lambda: project_spectral_norm(M, math.inf), ValueError, r"`c` must be finite, got inf"),
        (lambda: project_spectral_norm(M, -1), ValueError, r"`c` must be >= 0\.0, got -1"),
        (lambda: l1_penalty(M, 5e-324), ValueError,
         r"`weight` must be 0 or at least 2\.2250738585072014e-308, the smallest normal float64 "
         r"number \(the model's dtype\), got 5e-324"),
        (lambda: l2_penalty(M, 1e-310), ValueError, r"`weight` must be 0 or at least 2\.22.*got 1e-310"),
        (lambda: spectral_penalty(M, 1e-320, c=1.0), ValueError, r"`weight` must be 0 or at least"),
        (lambda: l1_penalty(M32, 1e-40), ValueError,
         r"`weight` must be 0 or at least 1\.1754943508222875e-38, the smallest normal float32"),
        (lambda: project_spectral_norm(M, 5e-324), ValueError, r"`c` must be 0 or at least 2\.22.*got 5e-324"),
        (lambda: project_spectral_norm(M32, 1e-39), ValueError, r"`c` must be 0 or at least 1\.17.*float32"),
        (lambda: l1_penalty(np.eye(2), 1.0), TypeError,
         r"`model` must be an ElmanRNN, LSTM or GRU, got array"),
        (lambda: project_spectral_norm({"W_hh": np.eye(2)}, 1.0), TypeError, r"`model` must be"),
    ],
)
def test_bad_arguments(call, exc, match):
    """Bad weights, bounds and models raise, naming the argument and showing the
    value; subnormal weights and bounds too (an L1 gradient λ·sign(W) with
    λ = 5e-324 was all zeros in float32, λW and the projection's entries kept
    almost no digits)."""
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------- extremes


def _mp_sigma_max_2x2(W) -> float:
    import mpmath

    mpmath.mp.dps = 50
    a, b, c, d = (mpmath.mpf(float(v)) for v in np.ravel(W))
    tr = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return (tr + mpmath.sqrt(tr * tr - 4 * det * det)) / 2  # σ_max², exact to 50 digits


@pytest.mark.parametrize("scale", [1e200, 1e300, 1.4e308, 1e-200, 1e-300])
def test_penalty_values_and_gradients_at_the_float64_limits(scale):
    """For weights near 1e±300 the penalties' values are their exact values
    (rational arithmetic for L1/L2, mpmath σ_max for the spectral penalty) to
    1e-14, finite wherever those are; the unscaled sums of |W| and W² over-
    or underflowed (½·1e-300·‖W‖² with entries of 1e200 was inf, not 1e100).
    Gradients: λ sign(W) and λW exactly, and the spectral gradient equals λs
    times central differences of the unit-scale penalty (homogeneity).
    The L2 and spectral values of 1.4e308-sized weights exceed float64 and
    are inf."""
    from fractions import Fraction

    import mpmath

    W = scale * np.array([[1.0, -0.5], [0.25, 0.75]])
    m = ElmanRNN(W, np.zeros((2, 1)), np.zeros(2))
    lam = 1e-300 if scale > 1 else 1e300
    v1, g1 = l1_penalty(m, lam)
    assert v1 == pytest.approx(float(Fraction(lam) * sum(abs(Fraction(float(w))) for w in W.ravel())), rel=1e-14)
    assert np.array_equal(g1["W_hh"], lam * np.sign(W))
    v2, g2 = l2_penalty(m, lam)
    want2 = Fraction(lam) / 2 * sum(Fraction(float(w)) ** 2 for w in W.ravel())
    if want2 > Fraction(np.finfo(float).max):  # 1e-300·(1.4e308)² ≈ 1e316: beyond float64
        assert v2 == math.inf
    else:
        assert v2 == pytest.approx(float(want2), rel=1e-14)
    assert np.array_equal(g2["W_hh"], lam * W)
    c = 0.5 * scale
    vs, gs = spectral_penalty(m, lam, c=c)
    sigma = mpmath.sqrt(_mp_sigma_max_2x2(W))
    want_s = mpmath.mpf(lam) * (sigma - c) ** 2
    if want_s > np.finfo(float).max:
        assert vs == math.inf
    else:
        assert vs == pytest.approx(float(want_s), rel=1e-13)
    # P(s W₀; λ, s c₀) = λ s² P(W₀; 1, c₀): the gradient at s W₀ is λ s times the
    # gradient at W₀ with λ = 1, which central differences give at scale 1
    W0 = W / scale
    m0 = m.replace(W_hh=W0)
    fd = fd_grad(lambda mm: spectral_penalty(mm, 1.0, c=0.5)[0], m0)
    np.testing.assert_allclose(gs["W_hh"], lam * scale * fd, rtol=1e-7)


@pytest.mark.parametrize("scale", [1e200, 1.4e308, 1e-300])
def test_projection_at_the_float64_limits(scale):
    """Π_c for weights of 1e200 to 1.4e308 (σ_max beyond float64) and 1e-300,
    with c from the smallest normal number up: σ_max(Π_c W) ≤ c (to 1e-15,
    mpmath σ_max of the result) and equal to c to 1e-12 relative, and
    Π_c W = U diag(min(σ_i, c)) Vᵀ with W's own singular vectors."""
    import mpmath

    W = scale * np.array([[1.0, -0.5], [0.25, 0.75]])
    m = ElmanRNN(W, np.zeros((2, 1)), np.zeros(2))
    for c in (float(np.finfo(np.float64).tiny), 1e-300, 1e-100, 1.0, 0.5 * scale):
        if c >= scale * 0.5 and scale < 1:
            continue
        p = project_spectral_norm(m, c)
        s2 = _mp_sigma_max_2x2(p.W_hh)
        assert s2 <= mpmath.mpf(c) ** 2 * (1 + mpmath.mpf(1e-15))
        assert float(mpmath.sqrt(s2)) == pytest.approx(c, rel=1e-12)
        # Π_c W = U diag(min(σ_i, c)) Vᵀ, compared in units of c (the singular
        # vectors are kept; only σ moves)
        U, sv, Vt = np.linalg.svd(W / scale)
        with np.errstate(over="ignore"):
            ratio = np.minimum(sv * (scale / c), 1.0)
        np.testing.assert_allclose(np.asarray(p.W_hh) / c, (U * ratio) @ Vt, rtol=0, atol=1e-12)


def test_float32_penalty_with_the_smallest_admitted_weight():
    """A float32 model with λ = 1.1754944e-38 (the smallest normal float32):
    the L1 gradient is ±λ, not 0 (λ = 5e-324 used to give zeros)."""
    tiny = float(np.finfo(np.float32).tiny)
    v, g = l1_penalty(M32, tiny)
    assert np.array_equal(g["W_hh"], np.float32(tiny) * np.eye(2, dtype=np.float32))
    assert v == pytest.approx(2 * tiny, rel=1e-15)


def test_spectral_penalty_old_argument_order_warns_and_agrees():
    """The penalties take (model, weight, ...): spectral_penalty(model, weight, c=c).
    The old order (model, c, weight) still works for one release with a warning
    and gives the same value: W = diag(3, 0.5), c = 1, λ = 0.25 gives
    P = 0.25·(3 − 1)² = 1 and ∂P/∂W = 2·0.25·2·e₁e₁ᵀ."""
    m = ElmanRNN(np.diag([3.0, 0.5]), np.zeros((2, 1)), np.zeros(2))
    want = np.array([[1.0, 0.0], [0.0, 0.0]])
    v_new, g_new = spectral_penalty(m, 0.25, c=1.0)
    assert v_new == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(g_new["W_hh"], want, atol=1e-15)
    for call in (lambda: spectral_penalty(m, 1.0, 0.25), lambda: spectral_penalty(m, 1.0, weight=0.25)):
        with pytest.warns(DeprecationWarning, match=r"spectral_penalty\(model, c, weight\)` is deprecated.*"
                          r"spectral_penalty\(model, weight, c=c\)"):
            v_old, g_old = call()
        assert v_old == v_new and np.array_equal(g_old["W_hh"], g_new["W_hh"])
    # keywords in any order are unambiguous and do not warn
    assert spectral_penalty(m, c=1.0, weight=0.25)[0] == v_new
    assert spectral_penalty(m, weight=0.25, c=1.0)[0] == v_new
