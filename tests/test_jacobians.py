"""Step Jacobians, their products, log norms, profiles and Lyapunov exponents.

Oracles: central finite differences of the naive step and of the naive rollout
``h_k ↦ h_t``, explicit matrix products (naive.product) and LAPACK SVDs
(naive.log_norms_svd), and closed forms for diagonal and scaled permutation
weights.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import ElmanRNN, Trace
from rnntheory import jacobians as jac
from rnntheory import strategies as rst
from rnntheory._oracles import central_jacobian, complex_step_jacobian
from rnntheory.bounds import gamma_h, gamma_w
from rnntheory.jacobians import ScaledMatrix


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def fd_jacobian(fun, h, eps=1e-6):
    """Central-difference Jacobian, numerator layout: column j is ∂fun/∂h[j]."""
    return central_jacobian(fun, h, eps * max(1.0, float(np.max(np.abs(h)))))


BOOLS = st.booleans()
TANH_SIG = st.sampled_from(["tanh", "sigmoid"])
STEPS = rst.sizes(1, 12)


@st.composite
def model_and_inputs(draw, leaky=BOOLS, activation=TANH_SIG, T=STEPS):
    m = draw(rst.elman_models(activation=activation, leaky=leaky))
    x = draw(rst.input_sequences(T, m.n_in))
    return m, x


SMOOTH = st.sampled_from(["tanh", "sigmoid", "identity"])


# ----------------------------------------------------------------------------- Eq. 9
@given(model_and_inputs(activation=SMOOTH))
def test_step_jacobians_equal_finite_differences(problem):
    """Eq. 9: entry i−1 of step_jacobians is ∂h_i/∂h_{i−1} (numerator layout) —
    central differences of one naive step at the recorded h_{i−1}, every form
    (standard ``diag(f′(a_i)) W``, Pascanu ``W diag(f′(h_{i−1}))``, leaky
    ``diag(α) + diag(1−α) J̃``)."""
    m, x = problem
    tr = m.forward(x)
    J = jac.step_jacobians(m, tr)
    assert J.shape == (x.shape[0], m.n_hidden, m.n_hidden)
    for i in range(1, x.shape[0] + 1):
        fd = fd_jacobian(lambda h, i=i: naive.step(m, h, x[i - 1]), tr.h[i - 1])
        np.testing.assert_allclose(J[i - 1], fd, rtol=0, atol=1e-8 * max(1.0, np.abs(fd).max()))
        # and the closed-form reference
        np.testing.assert_allclose(J[i - 1], naive.step_jacobian(m, tr.h[i - 1], x[i - 1]),
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_step_jacobian_of_relu_is_masked_weights(form):
    """ReLU: ``f′ ∈ {0, 1}``, so J_i is W_hh with rows (standard: units whose
    pre-activation is ≤ 0) or columns (Pascanu: units with h_{i−1} ≤ 0) zeroed."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(4, 4))
    m = ElmanRNN(W, rng.normal(size=(4, 2)), rng.normal(size=4), activation="relu", form=form)
    x = rng.normal(size=(6, 2))
    tr = m.forward(x)
    J = jac.step_jacobians(m, tr)
    for i in range(1, 7):
        if form == "standard":
            a = W @ tr.h[i - 1] + m.W_hx @ x[i - 1] + m.b_h
            expect = (a > 0)[:, None] * W
        else:
            expect = W * (tr.h[i - 1] > 0)[None, :]
        np.testing.assert_array_equal(J[i - 1], expect)


# ----------------------------------------------------------------------------- Eqs. 7–8
@given(model_and_inputs(activation=SMOOTH, T=rst.sizes(1, 8)), st.data())
def test_product_equals_chain_rule_and_finite_differences(problem, data):
    """Eqs. 7–8: ``∂h_t/∂h_k = J_t ⋯ J_{k+1}`` equals the finite-difference
    Jacobian of the naive rollout ``h_k ↦ h_t`` and the explicit naive product;
    the plain and scaled forms agree; ``∂h_t/∂h_t = I``."""
    m, x = problem
    tr = m.forward(x)
    T = x.shape[0]
    t = data.draw(st.integers(0, T), label="t")
    k = data.draw(st.integers(0, t), label="k")

    def roll(h):
        for i in range(k + 1, t + 1):
            h = naive.step(m, h, x[i - 1])
        return h

    def roll_c(h):
        for i in range(k + 1, t + 1):
            h = naive.step_c(m, h, x[i - 1])
        return h

    P = jac.product(m, tr, t, k)
    # central differences: O(ε²) truncation amplified by the t − k steps, so 1e-5
    fd = fd_jacobian(roll, tr.h[k])
    np.testing.assert_allclose(P, fd, rtol=0, atol=1e-5 * max(1.0, np.abs(fd).max()))
    # complex step (no cancellation): column j is Im h_t(h_k + iε e_j)/ε
    cs = complex_step_jacobian(roll_c, tr.h[k], 1e-30)
    np.testing.assert_allclose(P, cs, rtol=0, atol=1e-11 * max(1.0, np.abs(cs).max()))
    Pn = naive.product(naive.jacobians(m, x), t, k)
    np.testing.assert_allclose(P, Pn, rtol=0, atol=1e-12 * max(1.0, np.abs(Pn).max()))
    S = jac.product(m, tr, t, k, scaled=True)
    assert isinstance(S, ScaledMatrix)
    np.testing.assert_allclose(S.value(), P, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(jac.product(m, tr, t, t), np.eye(m.n_hidden))


def test_product_identity_on_diagonal_every_t():
    """``product(t, t) = I`` exactly, plain and scaled (log norm 0), for every t."""
    m = ElmanRNN.init(2, 4, None, scheme="gaussian", scale=2.0, seed=4)
    tr = m.forward(np.ones((5, 2)))
    for t in range(6):
        np.testing.assert_array_equal(jac.product(m, tr, t, t), np.eye(4))
        assert jac.product(m, tr, t, t, scaled=True).log_norm() == 0.0


# ----------------------------------------------------------------------------- log norms
@given(model_and_inputs(leaky=st.booleans(), activation=st.sampled_from(
    ["tanh", "sigmoid", "identity", "relu"])))
def test_log_norms_equal_svd_of_explicit_products(problem):
    """``log_norms[t, k] = ln σ_max(J_t ⋯ J_{k+1})`` for every pair ``k ≤ t``
    (SVD of the explicit naive product) to 1e-9 relative; 0 on the diagonal,
    −inf above it; each ``log_norm_profile(k)`` is column k. The strategies
    mix entries down to 1e-300 with entries of 1, so some products fall below
    float64's range inside one step (the extended-exponent steps)."""
    m, x = problem
    tr = m.forward(x)
    L = jac.log_norms(m, tr)
    T = x.shape[0]
    assert L.shape == (T + 1, T + 1)
    # Oracle: explicit products in mpmath (unbounded exponent range), so pairs
    # whose product is far below float64's range are checked too.
    R = naive.log_norms_mp(naive.jacobians(m, x))
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    fin = np.isfinite(R[t_idx, k_idx])
    assert np.array_equal(np.isfinite(L[t_idx, k_idx]), fin)
    r, l_ = R[t_idx, k_idx][fin], L[t_idx, k_idx][fin]
    assert np.all(np.abs(l_ - r) <= 1e-9 * np.maximum(1.0, np.abs(r))), np.max(np.abs(l_ - r))
    assert np.all(np.diag(L) == 0.0)
    assert np.all(L[np.triu_indices(T + 1, 1)] == -np.inf)
    for k in range(T + 1):
        prof = jac.log_norm_profile(m, tr, k)
        assert prof.shape == (T + 1,)
        assert np.all(prof[:k] == -np.inf)
        assert prof[k] == 0.0
        # the profile is column k of log_norms (same quantity, another algorithm)
        col = L[k:, k]
        ok = np.isfinite(col)
        assert np.array_equal(np.isfinite(prof[k:]), ok)
        assert np.all(np.abs(prof[k:][ok] - col[ok]) <= 1e-9 * np.maximum(1.0, np.abs(col[ok])))


def _ext_regression_stack():
    """The step Jacobians of a case Hypothesis found (ReLU, zero input, h_0 = 0,
    ``W_hh`` with entries 1.955e-138, 1 and −7.44e-197, units 3 and 4 off):
    ``J_1 = J_2 = J_3`` is ``W_hh`` with its last two rows zeroed. ``J_3 J_2 J_1`` has
    norm e^-768.7, but its float64 product, rescaled after every step, loses
    terms of 1e-392 beside terms of 1 and reported e^-951.3 (finite and wrong)."""
    a, e = 1.9550e-138, -7.4437e-197
    W = np.array([[a, e, e, e], [e, e, 1.0, e], [e, e, e, e], [e, e, e, e]])
    D = W.copy()
    D[2:] = 0.0
    return W, np.stack([D, D, D])


def _diag_chain(eps, m, tail):
    """``m`` factors ``diag(1, ε, 1)``, the projection onto e2, then ``tail``
    rotations: ``‖J_t ⋯ J_1‖ = 1`` for ``t ≤ m`` and ``ε^m`` from ``t = m + 1`` on."""
    c, s = np.cos(0.3), np.sin(0.3)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    E = np.zeros((3, 3))
    E[1, 1] = 1.0
    return np.stack([np.diag([1.0, eps, 1.0])] * m + [E] + [R] * tail)


def test_log_norms_entries_spanning_more_than_float64():
    """Regression for :func:`_ext_regression_stack`: every pair equals the
    mpmath explicit product (unbounded exponent) to 1e-12 relative, in
    log_norms, each log_norm_profile and ``product(scaled=True)``."""
    W, J = _ext_regression_stack()
    R = naive.log_norms_mp(J)
    assert R[3, 0] == pytest.approx(-768.688, abs=1e-3)
    L = jac.log_norms_from_jacobians(J)
    np.testing.assert_allclose(L, R, rtol=1e-12)
    m = ElmanRNN(W, np.zeros((4, 1)), np.array([1.0, 1.0, -1.0, -1.0]), activation="relu")
    x = np.zeros((3, 1))
    np.testing.assert_array_equal(naive.jacobians(m, x), J)
    tr = m.forward(x)
    np.testing.assert_allclose(jac.log_norms(m, tr), R, rtol=1e-12)
    for k in range(4):
        np.testing.assert_allclose(jac.log_norm_profile(m, tr, k), R[:, k], rtol=1e-12)
        for t in range(k, 4):
            assert jac.product(m, tr, t, k, scaled=True).log_norm() == pytest.approx(
                R[t, k], rel=1e-12, abs=1e-12)


@st.composite
def wide_range_stacks(draw):
    """Stacks ``(T, n, n)`` of step Jacobians whose entries are 0 or
    ``±m·10^e`` with ``e`` anywhere in [-320, 0] (subnormals included), so
    products mix terms far apart in magnitude and far below float64's range."""
    T = draw(st.integers(1, 6))
    n = draw(st.integers(1, 4))
    entry = st.one_of(
        st.just(0.0),
        st.builds(lambda s, m, e: s * m * 10.0 ** e, st.sampled_from([-1.0, 1.0]),
                  st.floats(1.0, 9.99), st.integers(-320, 0)),
    )
    vals = draw(st.lists(entry, min_size=T * n * n, max_size=T * n * n))
    return np.array(vals).reshape(T, n, n)


@given(wide_range_stacks())
def test_log_norms_of_wide_range_products_equal_mpmath(J):
    """``log_norms_from_jacobians(J)[t, k] = ln σ_max(J_t ⋯ J_{k+1})`` to 1e-10
    relative for every pair, against the explicit product in mpmath (unbounded
    exponent), including which products are exactly zero (−inf); every
    ``log_norm_profile`` column and ``product(scaled=True)``'s log norm agree."""
    R = naive.log_norms_mp(J)
    L = jac.log_norms_from_jacobians(J)
    T = J.shape[0]
    t_idx, k_idx = np.tril_indices(T + 1)
    fin = np.isfinite(R[t_idx, k_idx])
    assert np.array_equal(np.isfinite(L[t_idx, k_idx]), fin)
    r, l_ = R[t_idx, k_idx][fin], L[t_idx, k_idx][fin]
    assert np.all(np.abs(l_ - r) <= 1e-10 * np.maximum(1.0, np.abs(r))), np.max(np.abs(l_ - r))
    Jr = jac._jacobian_stack(J)  # the kernels' one layout: C-contiguous, read-only
    F = jac.JK.prescale(Jr)
    for k in range(T + 1):
        out = jac.log_norm_profile_from_jacobians(J, k)
        np.testing.assert_allclose(out[k:], R[k:, k], rtol=1e-10, atol=1e-10)
        P, s = jac.JK.scaled_product(Jr, *F, T, k)
        if np.isfinite(R[T, k]):
            assert s + np.log(np.linalg.norm(P, 2)) == pytest.approx(R[T, k], rel=1e-10, abs=1e-10)
        else:
            assert s == -np.inf


@pytest.mark.parametrize("eps, m", [(1e-200, 2), (1e-200, 30), (1e-5, 200), (3e-155, 7)])
def test_log_norms_far_below_any_float_range(eps, m):
    """Closed form of :func:`_diag_chain`: ``ln ‖J_t ⋯ J_{k+1}‖`` is 0 while
    the chain holds the unit entries and ``(m − k) ln ε`` once the projection
    has removed them (k < m), for every t after it. With ε = 1e-200 and
    m = 30 that is e^-13816, below even an 80-bit long double's range: the
    product is reported finite and exact, not −inf. The rotations after the
    projection bring it back to plain float64 steps."""
    J = _diag_chain(eps, m, tail=5)
    T = J.shape[0]
    closed = np.full((T + 1, T + 1), -np.inf)
    for t in range(T + 1):
        for k in range(t + 1):
            crosses = k <= m < t  # the product contains the projection J_{m+1}
            closed[t, k] = (m - k) * np.log(eps) if crosses else 0.0
    for k in range(m + 1, T + 1):  # products of rotations alone, and E·(rotations)
        for t in range(k, T + 1):
            closed[t, k] = 0.0
    L = jac.log_norms_from_jacobians(J)
    np.testing.assert_allclose(L, closed, rtol=1e-12, atol=1e-12)
    for k in (0, m // 2, m):
        out = jac.log_norm_profile_from_jacobians(J, k)
        np.testing.assert_allclose(out, closed[:, k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [1e-6, 1e-8, 3e-9, 1e-10, 1e-12])
@pytest.mark.parametrize("n", [2, 5])
def test_log_norms_when_the_top_singular_values_nearly_coincide(eps, n):
    """Regression (found by Hypothesis): ``J = [[0, 1], [−1/2, ε]]`` has
    ``J² ≈ −I/2`` with singular values ``(1 ± ε)/2`` to first order, so the
    power iteration stops on either and the certificate must tell them apart.
    Its old form computed ``‖b‖² = ‖Pᵀu‖² − α²``, which loses ``‖b‖`` below
    ``√ε_mach α``, and reported ``ln(1/2)`` instead of ``ln(1/2) + ε/2``. For
    n = 5 the same block sits beside a contracting rest. Every pair, every
    profile and ``product`` against the mpmath explicit product, to 1e-12."""
    J1 = np.zeros((n, n))
    J1[:2, :2] = [[0.0, 1.0], [-0.5, eps]]
    for i in range(2, n):
        J1[i, i] = 0.1
    J = np.stack([J1] * 4)
    R = naive.log_norms_mp(J)
    assert R[2, 0] == pytest.approx(np.log(0.5) + eps / 2, abs=1e-14)
    L = jac.log_norms_from_jacobians(J)
    np.testing.assert_allclose(L, R, rtol=1e-12, atol=1e-14)
    for k in range(5):
        np.testing.assert_allclose(jac.log_norm_profile_from_jacobians(J, k), R[:, k],
                                   rtol=1e-12, atol=1e-14)


def _switching_model():
    """Diagonal W, tanh: step T saturates unit 2 (f′ ≈ 1e-6), step T−1 saturates
    unit 1 much harder (f′ ≈ 8e-9), so the dominant singular direction of
    ``J_T ⋯ J_{k+1}`` switches from e1 (k = T−1) to e2 (k = T−2)."""
    m = ElmanRNN(0.1 * np.eye(2), np.eye(2), np.zeros(2), activation="tanh")
    return m


@pytest.mark.parametrize(
    "x",
    [
        [[0.0, 0.0], [10.0, 0.0], [0.0, 7.6]],
        [[10.0, 0.0], [0.0, 7.6]],
        [[0.0, 0.0], [0.0, 0.0], [12.0, 0.0], [0.0, 6.0], [0.0, 0.0]],
    ],
)
def test_log_norms_when_the_dominant_direction_switches(x):
    """Regression: the products are diagonal, so ``‖J_t ⋯ J_{k+1}‖`` is the
    largest diagonal entry in closed form (checked with SVD too). A warm-started
    power iteration that keeps the previous dominant direction reports the
    smaller singular value instead."""
    m = _switching_model()
    x = np.asarray(x)
    tr = m.forward(x)
    J = naive.jacobians(m, x)
    T = x.shape[0]
    R = naive.log_norms_svd(J)
    closed = np.full((T + 1, T + 1), -np.inf)
    for t in range(T + 1):
        for k in range(t + 1):
            d = np.ones(2)
            for i in range(k + 1, t + 1):
                d = d * np.diag(J[i - 1])
            closed[t, k] = np.log(np.max(np.abs(d)))
    np.testing.assert_allclose(R, closed, rtol=1e-12)
    L = jac.log_norms(m, tr)
    np.testing.assert_allclose(L, closed, rtol=1e-9)
    for k in range(T + 1):
        np.testing.assert_allclose(jac.log_norm_profile(m, tr, k), closed[:, k], rtol=1e-9)


def test_log_norm_profile_when_the_warm_start_is_a_singular_vector():
    """Regression: ``W_hh = [[0, −1], [1/8, 0]]``, ``b_h = (1, 1)``, zero input,
    tanh, T = 2. ``J_2 J_1`` is diagonal (``W² = −I/8``), and the dominant right
    singular vector of ``J_1`` (e1 or e2) is an exact singular vector of
    ``J_2 J_1`` — for the smaller singular value. Both log_norms and
    log_norm_profile must still give ``ln σ_max`` (SVD of the explicit product)."""
    m = ElmanRNN(np.array([[0.0, -1.0], [0.125, 0.0]]), np.zeros((2, 1)), np.ones(2),
                 activation="tanh")
    x = np.zeros((2, 1))
    tr = m.forward(x)
    R = naive.log_norms_svd(naive.jacobians(m, x))
    np.testing.assert_allclose(jac.log_norms(m, tr), R, rtol=1e-9)
    np.testing.assert_allclose(jac.log_norm_profile(m, tr, 0), R[:, 0], rtol=1e-9)


# ----------------------------------------------------------------------------- long sequences
@pytest.mark.parametrize("gain", [10.0, 0.1])
def test_long_sequence_log_norms_are_exact(gain):
    """T = 100 000, identity activation, ``W_hh = g·P`` (P a permutation): every
    product is ``g^(t−k)`` times a permutation, so ``ln‖∂h_t/∂h_0‖ = t·ln g``
    (finite even where ``g^t`` over/underflows) to 1e-9 relative; and
    log_norms refuses the (T+1)² table with an error pointing at
    log_norm_profile."""
    T = 100_000
    P = np.eye(3)[[2, 0, 1]]
    m = ElmanRNN(gain * P, np.zeros((3, 1)), np.zeros(3), activation="identity")
    tr = m.forward(np.zeros((T, 1)))
    prof = jac.log_norm_profile(m, tr, 0)
    expect = np.arange(T + 1) * np.log(gain)
    assert np.all(np.isfinite(prof))
    np.testing.assert_allclose(prof[1:], expect[1:], rtol=1e-9)
    assert prof[0] == 0.0
    for t, k in ((T, 0), (T, 12_345), (77_777, 1)):
        S = jac.product(m, tr, t, k, scaled=True)
        lv = S.log_norm()
        assert np.isfinite(lv)
        assert abs(lv - (t - k) * np.log(gain)) <= 1e-9 * abs((t - k) * np.log(gain))
    with pytest.raises(ValueError, match="log_norm_profile"):
        jac.log_norms(m, tr)


# ----------------------------------------------------------------------------- Lyapunov
@pytest.mark.parametrize("d", [[0.5, 2.0, -1.5], [3.0, -0.2, 0.7, 1.1], [-0.9]])
def test_lyapunov_of_diagonal_linear_model(d):
    """Identity activation, ``W_hh = diag(d)`` with distinct |d_i|: once the QR
    frame has aligned with the coordinate axes (geometrically fast, at the
    rate of the ratios |d_j/d_i|), every further step adds exactly ``ln|d_i|``
    to the i-th sum. So ``T₂ λ(T₂) − T₁ λ(T₁) = (T₂ − T₁) · sort(ln|d|)``: the
    exponents are ``ln|d_i|`` up to an O(1/T) start-up term."""
    d = np.asarray(d)
    m = ElmanRNN(np.diag(d), np.ones((d.size, 1)), np.zeros(d.size), activation="identity")
    T1, T2 = 150, 400
    tr = m.forward(np.zeros((T2, 1)))
    lam2 = jac.lyapunov_spectrum(m, tr)
    lam1 = jac.lyapunov_spectrum(m, Trace(tr.h[: T1 + 1], tr.a[:T1], None))
    want = np.sort(np.log(np.abs(d)))[::-1]
    np.testing.assert_allclose(T2 * lam2 - T1 * lam1, (T2 - T1) * want, rtol=1e-9, atol=1e-9)
    assert np.all(np.abs(lam2 - want) <= 40.0 / T2)


def test_lyapunov_leading_exponent_of_diagonal_model():
    """``k=1`` asks for the leading exponent, which for ``W_hh = diag(0.5, 2)`` is
    ``ln 2``, the growth rate of ``‖∂h_t/∂h_0‖ = 2^t`` (from log_norm_profile).
    A frame started inside the invariant subspace of 0.5 would report ln 0.5."""
    m = ElmanRNN(np.diag([0.5, 2.0]), np.ones((2, 1)), np.zeros(2), activation="identity")
    tr = m.forward(np.zeros((300, 1)))
    rate = jac.log_norm_profile(m, tr, 0)[-1] / 300
    assert abs(rate - np.log(2.0)) <= 1e-12
    lam300 = jac.lyapunov_spectrum(m, tr, k=1)
    lam100 = jac.lyapunov_spectrum(m, Trace(tr.h[:101], tr.a[:100], None), k=1)
    assert lam300.shape == (1,)
    assert abs((300 * lam300[0] - 100 * lam100[0]) / 200 - np.log(2.0)) <= 1e-9


@given(model_and_inputs(leaky=False, T=rst.sizes(1, 15)))
def test_largest_lyapunov_exponent_below_eq12_rate(problem):
    """``λ_1 ≤ ln(γ_W γ_h)``: each ``|R_i[0,0]| ≤ ‖J_i‖ ≤ σ_max(W) γ_h``; also the
    exponents sum to ``(1/T) Σ ln|det J_i|`` (product of the diag R's), with
    ``det J_i`` from numpy."""
    m, x = problem
    tr = m.forward(x)
    lam = jac.lyapunov_spectrum(m, tr)
    assert lam[0] <= np.log(gamma_w(m.W_hh) * gamma_h(m.activation)) + 1e-12
    fin = lam[np.isfinite(lam)]
    assert np.all(np.diff(fin) <= 0)
    J = naive.jacobians(m, x)
    if max(np.linalg.cond(Ji) for Ji in J) < 1e8:
        logdet = np.mean([np.linalg.slogdet(Ji)[1] for Ji in J])
        assert abs(lam.sum() - logdet) <= 1e-9 * max(1.0, abs(logdet))


def test_tiny_factors_do_not_underflow_the_products():
    """A recurrent matrix mixing −1 with entries of 5.6e-181 (ReLU, Pascanu's form,
    a unit switched off): ‖J_3 J_2‖ ≈ e^−829 lies below float64's range, but its
    log is finite. ``log_norms`` and every ``log_norm_profile`` column give the
    40-digit mpmath value of ln σ_max of the explicit product; before the step
    Jacobians were rescaled one by one, the profile underflowed to −inf
    (a Hypothesis example)."""
    W = np.array([[-1.0, 5.587418985723089e-181], [5.587418985723089e-181, 5.587418985723089e-181]])
    m = ElmanRNN(W, np.zeros((2, 1)), np.ones(2), activation="relu", form="pascanu")
    x = np.zeros((3, 1))
    tr = m.forward(x)
    L = jac.log_norms(m, tr)
    R = naive.log_norms_mp(naive.jacobians(m, x))
    assert np.array_equal(np.isfinite(L), np.isfinite(R))
    assert R[3, 1] < -800
    fin = np.isfinite(R)
    assert np.all(np.abs(L[fin] - R[fin]) <= 1e-9 * np.maximum(1.0, np.abs(R[fin])))
    for k in range(4):
        prof = jac.log_norm_profile(m, tr, k)
        assert np.array_equal(np.isfinite(prof[k:]), fin[k:, k])
        assert np.all(np.abs(prof[k:][fin[k:, k]] - R[k:, k][fin[k:, k]]) <= 1e-9 * 830)


def test_products_below_float64_range_are_recomputed():
    """W = [[0, a, 1], [0, 0, a], [0, 0, 0]] with a = 1e-200 (a linear RNN):
    W² = a² e₀e₂ᵀ has norm 1e-400, below float64's range, and W³ = 0. ``log_norms``
    and ``log_norm_profile`` give ln σ_max(W²) = 400 ln(1e-1) (mpmath, 40 digits)
    for every pair two steps apart, and −inf only for the exactly zero W³."""
    a = 1e-200
    W = np.array([[0.0, a, 1.0], [0.0, 0.0, a], [0.0, 0.0, 0.0]])
    m = ElmanRNN(W, np.zeros((3, 1)), np.zeros(3), activation="identity")
    x = np.zeros((3, 1))
    tr = m.forward(x)
    R = naive.log_norms_mp(naive.jacobians(m, x))
    assert R[2, 0] == pytest.approx(-400 * np.log(10.0), rel=1e-12) and R[3, 0] == -np.inf
    L = jac.log_norms(m, tr)
    fin = np.isfinite(R)
    assert np.array_equal(np.isfinite(L), fin)
    assert np.all(np.abs(L[fin] - R[fin]) <= 1e-9 * np.maximum(1.0, np.abs(R[fin])))
    for k in range(4):
        prof = jac.log_norm_profile(m, tr, k)
        assert np.array_equal(np.isfinite(prof[k:]), fin[k:, k])
        assert np.all(np.abs(prof[k:][fin[k:, k]] - R[k:, k][fin[k:, k]]) <= 1e-9 * 922)


@pytest.mark.parametrize(
    "J, k, match",
    [
        (np.ones((3, 2, 3)), 0, r"`J` must have shape \(T, n, n\), got shape \(3, 2, 3\)"),
        (np.ones((2, 2)), 0, r"`J` must have shape \(T, n, n\), got shape \(2, 2\)"),
        (np.ones((3, 2, 2)), 4, r"`k` must be <= T = 3, got 4"),
        (np.ones((3, 2, 2)), -1, r"`k`"),
    ],
)
def test_log_norm_profile_from_jacobians_rejects_bad_input(J, k, match):
    """A wrong shape or source step ``k`` names the argument and its value."""
    with pytest.raises(ValueError, match=match):
        jac.log_norm_profile_from_jacobians(J, k)


def test_log_norm_profile_from_jacobians_is_the_model_profile():
    """The stack-level profile equals the model-level one (and so column k of
    log_norms) for a strategy-free random tanh model."""
    m = ElmanRNN.init(2, 5, None, scheme="gaussian", scale=1.5, seed=7)
    tr = m.forward(np.random.default_rng(0).normal(size=(30, 2)))
    J = jac.step_jacobians(m, tr)
    L = jac.log_norms(m, tr)
    for k in (0, 11, 30):
        out = jac.log_norm_profile_from_jacobians(J, k)
        np.testing.assert_array_equal(out, jac.log_norm_profile(m, tr, k))
        np.testing.assert_allclose(out[k:], L[k:, k], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- malformed traces
_M = ElmanRNN.init(2, 3, None, scheme="gaussian", scale=1.3, seed=3)
_X = np.random.default_rng(4).normal(size=(5, 2))
_TR = _M.forward(_X)


def _lstm_and_trace():
    from rnntheory import LSTM

    m = LSTM.init(2, 3, None, seed=0)
    return m, m.forward(_X)


def _with(trace, **fields):
    from dataclasses import replace

    return replace(trace, **fields)


_TRACE_FUNCS = {
    "step_jacobians": lambda tr: jac.step_jacobians(_M, tr),
    "product": lambda tr: jac.product(_M, tr, 3, 1),
    "log_norms": lambda tr: jac.log_norms(_M, tr),
    "log_norm_profile": lambda tr: jac.log_norm_profile(_M, tr, 0),
    "lyapunov_spectrum": lambda tr: jac.lyapunov_spectrum(_M, tr),
}
_BAD_TRACES = [
    # (label, trace, exception, message)
    ("batch", lambda: _M.forward(np.zeros((5, 4, 2))), ValueError,
     r"`trace` must be a single-sequence trace, got a batch of 4; `{f}` takes one sequence"),
    ("h with an extra axis", lambda: _with(_TR, h=_TR.h[None]), ValueError,
     r"`trace` must be a single-sequence trace, got a batch of 6"),
    ("h 0-d", lambda: _with(_TR, h=np.ones(())), ValueError,
     r"`trace.h` must have 2 or 3 dimension\(s\), got shape \(\)"),
    ("h without rows", lambda: _with(_TR, h=_TR.h[:0]), ValueError,
     r"`trace.h` must have shape \(T\+1, n\) with T >= 0 \(h\[0\] is h_0\), got shape \(0, 3\)"),
    ("h complex", lambda: _with(_TR, h=_TR.h.astype(complex)), TypeError,
     r"`trace.h` must be a real floating-point array, got dtype complex128"),
    ("h strings", lambda: _with(_TR, h=_TR.h.astype(str)), TypeError,
     r"`trace.h` must be a real floating-point array, got dtype <U"),
    ("h None", lambda: _with(_TR, h=None), TypeError, r"`trace.h` must be a real floating-point array"),
    ("h a str", lambda: _with(_TR, h="junk"), TypeError, r"`trace.h` must be a real floating-point array"),
    ("h integers", lambda: _with(_TR, h=np.ones((6, 3), dtype=int)), TypeError,
     r"`trace.h` must have dtype float32 or float64, got dtype int64"),
    ("a one row short", lambda: _with(_TR, a=_TR.a[:-1]), ValueError,
     r"`trace.a` must have shape \(T, n\) = \(5, 3\) for `trace.h` of shape \(6, 3\), got shape \(4, 3\)"),
    ("a flattened", lambda: _with(_TR, a=_TR.a.ravel()), ValueError,
     r"`trace.a` must have 2 dimension\(s\), got shape \(15,\)"),
    ("a a dict", lambda: _with(_TR, a={"a": 1}), TypeError, r"`trace.a` must be a real floating-point array"),
    ("a a float", lambda: _with(_TR, a=1.5), ValueError, r"`trace.a` must have 2 dimension\(s\), got shape \(\)"),
    ("trace a str", lambda: "junk", TypeError, r"`trace` must be a Trace from model.forward, got str"),
]


@pytest.mark.parametrize("func", list(_TRACE_FUNCS))
@pytest.mark.parametrize(("label", "make", "exc", "match"), _BAD_TRACES, ids=[b[0] for b in _BAD_TRACES])
def test_malformed_traces_are_refused_by_name(func, label, make, exc, match):
    """A batch or a trace whose fields are not the arrays a forward pass gives
    raises TypeError/ValueError naming `trace` (they raised AttributeError,
    IndexError, a ComplexWarning or NumPy's reshape errors)."""
    with pytest.raises(exc, match=match.replace("{f}", func)):
        _TRACE_FUNCS[func](make())


@pytest.mark.parametrize(
    ("label", "change", "exc", "match"),
    [
        ("c flattened", lambda tr: {"c": tr.c.ravel()}, ValueError,
         r"`trace.c` must have 2 dimension\(s\), got shape \(18,\)"),
        ("c one row short", lambda tr: {"c": tr.c[:-1]}, ValueError,
         r"`trace.c` must have the shape of `trace.h` \(6, 3\), got shape \(5, 3\)"),
        ("pre one block short", lambda tr: {"pre": tr.pre[:, :9]}, ValueError,
         r"`trace.pre` must have shape \(T, 4n\) = \(5, 12\) for `trace.h` of shape \(6, 3\), got shape \(5, 9\)"),
        ("pre complex", lambda tr: {"pre": tr.pre.astype(complex)}, TypeError,
         r"`trace.pre` must be a real floating-point array, got dtype complex128"),
    ],
)
def test_malformed_gated_traces_are_refused_by_name(label, change, exc, match):
    """The LSTM's cell states and gate pre-activations are checked too."""
    m, tr = _lstm_and_trace()
    with pytest.raises(exc, match=match):
        jac.product(m, _with(tr, **change(tr)), 3, 1)


def test_trace_fields_as_lists_or_float32_give_the_oracle_log_norms():
    """A trace whose fields are nested lists (or float32 arrays) is read as the
    arrays they hold: the log norms equal the SVDs of the explicit products of
    the naive step Jacobians."""
    want = naive.log_norms_svd(naive.jacobians(_M, _X))
    fin = np.isfinite(want)
    for tr in (_with(_TR, h=_TR.h.tolist(), a=_TR.a.tolist()),):
        L = jac.log_norms(_M, tr)
        assert np.array_equal(np.isfinite(L), fin)
        np.testing.assert_allclose(L[fin], want[fin], rtol=1e-12, atol=1e-12)
    tr32 = _with(_TR, h=_TR.h.astype(np.float32), a=_TR.a.astype(np.float32))
    L32 = jac.log_norms(_M, tr32)
    assert np.array_equal(np.isfinite(L32), fin)
    np.testing.assert_allclose(L32[fin], want[fin], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("J", "exc", "match"),
    [
        (np.ones((3, 2, 2), dtype=complex), TypeError, r"`J` must be a real floating-point array, got dtype complex128"),
        (np.ones((3, 2, 2)) + 1e-3j, TypeError, r"`J` must be a real floating-point array, got dtype complex128"),
        ("junk", TypeError, r"`J` must be a real floating-point array, got dtype <U4"),
        ({"a": 1}, TypeError, r"`J` must be a real floating-point array, got dtype object"),
        (np.ones((3, 0, 0)), ValueError, r"`J` must have shape \(T, n, n\) with n >= 1, got shape \(3, 0, 0\)"),
        (np.ones((3, 2, 2), dtype=np.float16), TypeError, r"`J` must have dtype float32 or float64, got dtype float16"),
    ],
)
@pytest.mark.parametrize("func", [jac.log_norms_from_jacobians, jac.log_norm_profile_from_jacobians])
def test_jacobian_stacks_refuse_complex_and_non_numeric_input(func, J, exc, match):
    """Complex Jacobians are refused by name, never cast to their real part
    (the cast raised a ComplexWarning and dropped the imaginary part)."""
    with pytest.raises(exc, match=match):
        func(J)


def test_jacobian_stacks_accept_integer_and_list_input_as_float64():
    """Integer entries and nested lists are exact float64 values: the log norms of
    ``J_i = 2·I`` are ``(t − k) ln 2``."""
    J = [[[2, 0], [0, 2]]] * 4
    L = jac.log_norms_from_jacobians(J)
    t, k = np.tril_indices(5)
    np.testing.assert_allclose(L[t, k], (t - k) * np.log(2.0), rtol=1e-15, atol=0)
    np.testing.assert_allclose(jac.log_norm_profile_from_jacobians(np.asarray(J), 1)[1:],
                               np.arange(4) * np.log(2.0), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    ("seed", "exc", "match"),
    [
        (-1, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
        (2**64, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\)"),
        (2.5, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\) or a numpy Generator, got 2.5"),
        ("0", TypeError, r"`seed` must be an integer"),
        (None, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\) or a numpy Generator, got None"),
        (True, TypeError, r"`seed` must be an integer"),
    ],
)
def test_lyapunov_seed_is_checked_by_name(seed, exc, match):
    """The seed goes through the library's seed check (NumPy's SeedSequence
    messages named nothing)."""
    with pytest.raises(exc, match=match):
        jac.lyapunov_spectrum(_M, _TR, seed=seed)


@pytest.mark.parametrize("seed", [np.int64(5), np.uint64(2**64 - 1), np.random.default_rng(5)])
def test_lyapunov_seed_accepts_numpy_integers_and_generators(seed):
    """``W_hh = diag(0.5, 2)``, identity activation: the exponents are ln 2 and
    ln 0.5 (up to the O(1/T) alignment of the frame) whatever the starting
    frame's seed, a NumPy integer or a Generator."""
    m = ElmanRNN(np.diag([0.5, 2.0]), np.ones((2, 1)), np.zeros(2), activation="identity")
    tr = m.forward(np.zeros((400, 1)))
    lam = jac.lyapunov_spectrum(m, tr, seed=seed)
    np.testing.assert_allclose(lam, [np.log(2.0), np.log(0.5)], atol=40.0 / 400)


# ----------------------------------------------------------------------------- reach (one row)
def _reach_mp(J, t):
    """``ln σ_max(J_t ⋯ J_{t−τ+1})`` for τ = 0 … t, the mpmath explicit products."""
    return naive.log_norms_mp(np.asarray(J[:t]))[t, ::-1]


@given(wide_range_stacks(), st.data())
def test_log_norm_reach_is_the_row_of_log_norms_and_the_mpmath_products(J, data):
    """``log_norm_reach_from_jacobians(J, t)[τ] = ln ‖J_t ⋯ J_{t−τ+1}‖₂``: the
    explicit product in mpmath (unbounded exponent) to 1e-10 relative,
    including exactly zero products (−inf), and row t of log_norms read
    backwards bit for bit (the same arithmetic)."""
    T = J.shape[0]
    t = data.draw(st.integers(0, T))
    out = jac.log_norm_reach_from_jacobians(J, t)
    assert out.shape == (t + 1,)
    R = _reach_mp(J, t)
    fin = np.isfinite(R)
    assert np.array_equal(np.isfinite(out), fin)
    assert np.all(out[~fin] == -np.inf)
    np.testing.assert_allclose(out[fin], R[fin], rtol=1e-10, atol=1e-10)
    L = jac.log_norms_from_jacobians(J)
    np.testing.assert_array_equal(out, L[t, t::-1])
    np.testing.assert_array_equal(jac.log_norm_reach_from_jacobians(J), L[T, ::-1])


@given(model_and_inputs(leaky=st.booleans(), activation=st.sampled_from(
    ["tanh", "sigmoid", "identity", "relu"])))
def test_log_norm_reach_of_a_model_equals_svd_of_explicit_products(problem):
    """For a model, ``log_norm_reach(m, tr)[τ] = ln σ_max(∂h_T/∂h_{T−τ})`` from
    the naive Jacobians' explicit products in mpmath, to 1e-9 relative; and
    every ``t`` gives row t of log_norms read backwards."""
    m, x = problem
    tr = m.forward(x)
    T = x.shape[0]
    R = naive.log_norms_mp(naive.jacobians(m, x))
    L = jac.log_norms(m, tr)
    for t in range(T + 1):
        out = jac.log_norm_reach(m, tr, t)
        want = R[t, t::-1]
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(out), fin)
        assert np.all(np.abs(out[fin] - want[fin]) <= 1e-9 * np.maximum(1.0, np.abs(want[fin])))
        np.testing.assert_array_equal(out, L[t, t::-1])
    np.testing.assert_array_equal(jac.log_norm_reach(m, tr), L[T, ::-1])


@pytest.mark.parametrize("eps, m", [(1e-200, 30), (5e-324, 3), (1e-5, 200)])
def test_log_norm_reach_far_below_any_float_range(eps, m):
    """:func:`_diag_chain` read from its end: after the projection (factor
    m + 1) and the rotations, ``‖J_T ⋯ J_{T−τ+1}‖ = 1`` while the stretch
    stays after the projection's predecessors and ``ε^(τ − tail − 1)`` once it
    reaches back over them, down to e^-13816 and products of subnormals."""
    tail = 5
    J = _diag_chain(eps, m, tail=tail)
    T = J.shape[0]
    out = jac.log_norm_reach_from_jacobians(J)
    tau = np.arange(T + 1)
    closed = np.where(tau <= tail + 1, 0.0, (tau - tail - 1) * np.log(eps))
    np.testing.assert_allclose(out, closed, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_log_norm_reach_of_huge_and_tiny_factors(scale):
    """Factors ``scale · R`` with R orthogonal: ``out[τ] = τ ln(scale)``,
    finite far outside float64's range (1e±300 per factor, 40 factors)."""
    c, s = np.cos(0.7), np.sin(0.7)
    J = np.stack([scale * np.array([[c, -s], [s, c]])] * 40)
    out = jac.log_norm_reach_from_jacobians(J)
    np.testing.assert_allclose(out, np.arange(41) * np.log(scale), rtol=1e-13)


def test_log_norm_reach_nan_exactly_over_a_non_finite_factor():
    """A NaN factor J_i makes exactly the lags whose stretch holds it NaN, even
    where an exactly zero partial product came first; stretches after it are
    unaffected; this is log_norms' row read backwards."""
    J = np.stack([np.eye(2) * 2.0] * 8)
    J[2] = np.nan  # J_3
    J[5] = 0.0  # J_6 annihilates: −inf from there, NaN over J_3 all the same
    out = jac.log_norm_reach_from_jacobians(J)
    assert out[0] == 0.0
    np.testing.assert_allclose(out[1:3], np.arange(1, 3) * np.log(2.0), rtol=1e-15)
    assert np.all(out[3:6] == -np.inf)
    assert np.all(np.isnan(out[6:]))
    np.testing.assert_array_equal(out, jac.log_norms_from_jacobians(J)[8, ::-1])
    out4 = jac.log_norm_reach_from_jacobians(J, 4)  # J_4 J_3 …: NaN from τ = 2 on
    np.testing.assert_allclose(out4[:2], [0.0, np.log(2.0)], rtol=1e-15)
    assert np.all(np.isnan(out4[2:]))
    np.testing.assert_allclose(jac.log_norm_reach_from_jacobians(J, 2),
                               np.arange(3) * np.log(2.0), rtol=1e-15)


def test_log_norm_reach_of_a_long_sequence_is_exact():
    """T = 100 000, identity activation, ``W_hh = g·P`` (P a permutation):
    ``ln ‖∂h_T/∂h_{T−τ}‖ = τ ln g`` for every lag, in memory linear in T
    (log_norms refuses that table)."""
    T = 100_000
    P = np.eye(3)[[2, 0, 1]]
    m = ElmanRNN(0.9 * P, np.zeros((3, 1)), np.zeros(3), activation="identity")
    tr = m.forward(np.zeros((T, 1)))
    out = jac.log_norm_reach(m, tr)
    np.testing.assert_allclose(out, np.arange(T + 1) * np.log(0.9), rtol=1e-9)
    out = jac.log_norm_reach(m, tr, 7)
    np.testing.assert_allclose(out, np.arange(8) * np.log(0.9), rtol=1e-12)


@pytest.mark.parametrize(
    ("t", "exc", "match"),
    [
        (6, ValueError, r"`t` must be <= T = 5, got 6"),
        (-1, ValueError, r"`t` must be .*0"),
        (True, TypeError, r"`t` must be an integer"),
        (2.5, TypeError, r"`t` must be an integer"),
    ],
)
def test_log_norm_reach_refuses_bad_t_by_name(t, exc, match):
    with pytest.raises(exc, match=match):
        jac.log_norm_reach(_M, _TR, t)
    with pytest.raises(exc, match=match):
        jac.log_norm_reach_from_jacobians(jac.step_jacobians(_M, _TR), t)


@pytest.mark.parametrize(
    ("J", "exc", "match"),
    [
        (np.ones((3, 2, 2), dtype=complex), TypeError, r"`J` must be a real floating-point array, got dtype complex128"),
        (np.ones((3, 0, 0)), ValueError, r"`J` must have shape \(T, n, n\) with n >= 1, got shape \(3, 0, 0\)"),
        (np.ones((3, 2, 3)), ValueError, r"`J` must have shape \(T, n, n\), got shape \(3, 2, 3\)"),
    ],
)
def test_log_norm_reach_refuses_bad_stacks_by_name(J, exc, match):
    with pytest.raises(exc, match=match):
        jac.log_norm_reach_from_jacobians(J)


def test_log_norm_reach_of_an_empty_stack_and_of_a_batch():
    """T = 0 gives ``[0.0]`` (the identity); a batched trace is refused by name."""
    np.testing.assert_array_equal(jac.log_norm_reach_from_jacobians(np.ones((0, 2, 2))), [0.0])
    with pytest.raises(ValueError, match=r"`log_norm_reach` takes one sequence"):
        jac.log_norm_reach(_M, _M.forward(np.zeros((5, 4, 2))))


# ----------------------------------------------------------------------------- speed paths
def _lstm_like_stack(seed, T, h, layers=2):
    """``(T, S, S)``, ``S = 2·h·layers``, shaped like a stack of LSTM layers'
    whole-state Jacobians: per layer, dense columns for ``h`` and diagonal
    blocks in the columns for ``c``; dense coupling blocks below the diagonal
    (layer l reads layer l−1) and exact zeros above it."""
    rng = np.random.default_rng(seed)
    S = 2 * h * layers
    J = np.zeros((T, S, S))
    idx = np.arange(h)
    for layer in range(layers):
        o = 2 * h * layer
        J[:, o:o + 2 * h, o:o + h] = rng.normal(size=(T, 2 * h, h)) / np.sqrt(h)
        J[:, o + idx, o + h + idx] = rng.uniform(0.2, 0.9, (T, h))
        J[:, o + h + idx, o + h + idx] = rng.uniform(0.2, 0.9, (T, h))
        if layer:
            J[:, o:o + 2 * h, :o] = rng.normal(size=(T, 2 * h, o)) / np.sqrt(o)
    return J


@pytest.mark.parametrize(("seed", "h", "layers"), [(0, 8, 2), (1, 4, 3), (2, 16, 1)])
def test_block_triangular_stacks_equal_svd_of_explicit_products(seed, h, layers):
    """Factors with exact zero blocks above the diagonal and diagonal blocks
    (a stack of LSTM-like layers) run on tiles that skip those blocks: every
    pair of log_norms, the profiles and the reach equal LAPACK's SVD of the
    explicit product to 1e-12, and the tiled products equal the dense ones
    (the tiles are chosen: the plan's tile size is not 0)."""
    J = jac._jacobian_stack(_lstm_like_stack(seed, 9, h, layers))  # the kernels' one layout
    Js, logs, mins, shifts = jac.JK.prescale(J)
    assert jac.JK.tile_plan(J, logs, False)[0] > 0
    assert jac.JK.tile_plan(J, logs, True)[0] > 0
    R = naive.log_norms_svd(J)
    L = jac.log_norms_from_jacobians(J)
    np.testing.assert_allclose(L, R, rtol=1e-12, atol=1e-12)
    for k in (0, 4):
        np.testing.assert_allclose(jac.log_norm_profile_from_jacobians(J, k), R[:, k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jac.log_norm_reach_from_jacobians(J), R[9, ::-1], rtol=1e-12, atol=1e-12)
    L_dense = np.empty_like(L)
    jac.JK.log_norms_rows(J, Js, logs, mins, shifts, jac.JK.dense_plan(), L_dense, 0, 1)
    np.testing.assert_allclose(L, L_dense, rtol=1e-13, atol=1e-13)


def test_block_triangular_stack_with_a_non_finite_step():
    """A step whose Jacobian is all NaN (as step_jacobians gives for a step that
    cannot be evaluated) does not spoil the tiles of the others: NaN exactly on
    the pairs over it, the SVD oracle elsewhere."""
    J = _lstm_like_stack(3, 8, 8)
    J[4] = np.nan  # J_5
    Jr = jac._jacobian_stack(J)  # the kernels' one layout
    assert jac.JK.tile_plan(Jr, jac.JK.prescale(Jr)[1], False)[0] > 0
    L = jac.log_norms_from_jacobians(J)
    t, k = np.tril_indices(9)
    over = (k < 5) & (t >= 5)
    assert np.all(np.isnan(L[t[over], k[over]]))
    for tt, kk in zip(t[~over], k[~over], strict=True):
        want = np.log(np.linalg.svd(naive.product(J, tt, kk), compute_uv=False)[0])
        assert L[tt, kk] == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_tiled_matmul_equals_the_dense_product(seed):
    """``tiled_matmul`` against NumPy on random tile patterns (zero, diagonal
    and dense tiles of the right factor, zero and dense tiles of the left), in
    both the plain and the symmetric (upper tiles mirrored) form."""
    rng = np.random.default_rng(seed)
    b, nt = int(rng.choice([2, 3, 5])), int(rng.integers(2, 5))
    n = b * nt
    apat = rng.random((nt, nt)) < 0.6
    bpat = rng.integers(0, 3, (nt, nt)).astype(np.int8)
    A = rng.normal(size=(n, n)) * np.kron(apat, np.ones((b, b)))
    B = rng.normal(size=(n, n))
    for i in range(nt):
        for j in range(nt):
            tile = B[i * b:(i + 1) * b, j * b:(j + 1) * b]
            if bpat[i, j] == 0:
                tile[:] = 0.0
            elif bpat[i, j] == 1:
                tile[:] = np.diag(np.diag(tile))
    At, Bt = np.empty((nt, nt, b, b)), np.empty((nt, nt, b, b))
    C, tmp, out = np.empty((b, b)), np.empty((b, b)), np.empty((n, n))
    jac.JK.tiled_matmul(A, apat, B, bpat, b, At, Bt, C, tmp, out, False)
    np.testing.assert_allclose(out, A @ B, rtol=1e-13, atol=1e-13)
    dense = np.where(apat, 2, 0).astype(np.int8)
    jac.JK.tiled_matmul(A.T, apat.T.copy(), A, dense, b, At, Bt, C, tmp, out, True)
    np.testing.assert_allclose(out, A.T @ A, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(("n", "gap"), [(64, 1e-5), (64, 1e-9), (40, 0.0), (128, 1e-3)])
def test_sigma_max_with_clustered_top_singular_values(n, gap):
    """Singular values ``1, 1 − gap, 1 − 2·gap, …`` (and many equal ones): the
    power iteration cannot separate them in its budget, so Lanczos and the
    Cholesky certificate (or the SVD) decide. The value equals LAPACK's σ_max to
    1e-13 and passes the certificate ``σ_max² ≤ s²(1 + δ)``."""
    rng = np.random.default_rng(7)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    sv = np.maximum(1.0 - gap * np.arange(n), 0.05)
    sv[n // 2:] = 0.3
    P = (U * sv) @ V.T
    want = np.linalg.svd(P, compute_uv=False)[0]
    u, v, y, A = jac.JK._start_vector(n), np.empty(n), np.empty(n), np.empty((n, n))
    s = jac.JK.sigma_max(P, u, v, y, A, jac.JK._tiles(n, jac.JK.dense_plan()))
    assert s == pytest.approx(want, rel=1e-13)
    assert want ** 2 <= s ** 2 * (1.0 + jac.JK._CERT_DELTA)


def test_log_norm_reach_of_a_stack_is_the_row_of_log_norms_bit_for_bit():
    """On tiled factors too, every row t of log_norms read backwards is
    log_norm_reach(J, t), bit for bit (the tiles come from the whole stack);
    a later factor that fills a zero block changes neither."""
    J = _lstm_like_stack(5, 10, 8)
    J[9, :16, 16:] = 0.5  # the last factor is dense: no tiles for the whole stack
    for JJ in (J[:9], J):
        L = jac.log_norms_from_jacobians(JJ)
        for t in range(JJ.shape[0] + 1):
            np.testing.assert_array_equal(jac.log_norm_reach_from_jacobians(JJ, t), L[t, t::-1])


@pytest.mark.parametrize(
    "x",
    [
        [0.0, 5e-324, -3.0, 2.5e-308, 1e300],
        [-0.0, -5e-324],
        [0.0, 0.0, -0.0],
        [-np.inf, 1.0, 1e-300],
        [1e-200, -7.0, np.nan, 0.0],
        [np.nan],
        [],
    ],
)
def test_scale_scan_on_bits_matches_numpy(x):
    """The bit-level scan gives NumPy's largest |entry| and smallest nonzero
    |entry| (subnormals, −0, inf included) and flags exactly the NaNs."""
    a = np.asarray(x, dtype=np.float64)
    s, m, bad = jac.JK._scan(a)
    assert bad == bool(np.isnan(a).any())
    if not bad:
        finite = np.abs(a)
        assert s == (finite.max() if a.size else 0.0)
        nz = finite[finite > 0]
        assert m == (nz.min() if nz.size else np.inf)


def test_frobenius_sum_by_columns_within_its_rounding_bound():
    """``‖P‖_F²`` from column sums against exact rational arithmetic: within
    ``(n + m)·ε`` relative, the bound the certificate's allowance covers."""
    from fractions import Fraction

    rng = np.random.default_rng(5)
    for shape, scale in (((7, 5), 1.0), ((16, 16), 1e150), ((3, 9), 1e-150), ((128, 128), 1.0)):
        P = rng.normal(size=shape) * scale
        P[0, :2] = [5e-324, 1e-170]  # squares below float64's range: negligible beside the rest
        exact = sum(Fraction(float(v)) ** 2 for v in P.ravel())
        got = jac.JK._fro2(P)
        assert abs(Fraction(got) - exact) <= Fraction(sum(shape) * 2.220446049250313e-16) * exact
