"""Property tests of Eqs. 10–12 and 14, Pascanu's conditions and certificates.

Observed norms ``‖∂h_t/∂h_k‖`` are computed independently of the library's
log-space kernels: naive step Jacobians (tests/naive.py), explicit products
and LAPACK SVDs, restricted to pairs whose products stay clear of underflow.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory import ElmanRNN
from rnntheory import bounds as bd
from rnntheory import strategies as rst

TANH_SIG = st.sampled_from(["tanh", "sigmoid"])
FORMS = st.sampled_from(["standard", "pascanu"])


def observed_log_norms(m, x):
    """``ln σ_max(J_t ⋯ J_{k+1})`` by SVD of explicit naive products, and a mask of
    the pairs where that oracle is faithful (every partial product ≥ e^−600 or 0)."""
    with np.errstate(divide="ignore"):
        R = naive.log_norms_svd(naive.jacobians(m, x))
    T = x.shape[0]
    usable = np.zeros_like(R, dtype=bool)
    for k in range(T + 1):
        ok = True
        for t in range(k, T + 1):
            ok = ok and (R[t, k] > -600 or R[t, k] == -np.inf)
            usable[t, k] = ok
    return R, usable


def pairs(T):
    return np.tril_indices(T + 1, -1)


@st.composite
def model_inputs(draw, activation=TANH_SIG, form=FORMS, leaky=False, weight_norm=None, T=None):
    kw = {}
    if weight_norm is not None:
        kw["weight_norm"] = weight_norm
    m = draw(rst.elman_models(activation=activation, form=form, leaky=leaky, **kw))
    x = draw(rst.input_sequences(rst.sizes(1, 12) if T is None else T, m.n_in))
    return m, x


# ----------------------------------------------------------------------------- (a) Eqs. 10–12
@given(model_inputs())
def test_eq12_holds_on_every_pair(problem):
    """Eqs. 10–12: ``‖∂h_t/∂h_k‖ ≤ (γ_W γ_h)^(t−k)`` on every pair with
    ``γ_W = σ_max(W_hh)`` (numpy's 2-norm) and ``γ_h`` = 1 (tanh), 1/4 (sigmoid),
    for both forms; the tighter data-dependent bounds ``Π γ_W max_j|f′(a_i)_j|``
    and ``Π ‖J_i‖`` hold too; ``certify`` agrees (holds, nothing violated)."""
    m, x = problem
    R, usable = observed_log_norms(m, x)
    gh = {"tanh": 1.0, "sigmoid": 0.25}[m.activation.name]
    gw = np.linalg.norm(m.W_hh, 2)
    J = naive.jacobians(m, x)
    hs = naive.forward(m, x)
    if m.form == "standard":
        args = np.array([m.W_hh @ hs[i - 1] + m.W_hx @ x[i - 1] + m.b_h for i in range(1, len(hs))])
    else:
        args = hs[:-1]
    fpmax = np.abs(naive.act_prime(m.activation.name, args)).max(axis=1)
    step_norm = np.array([np.linalg.norm(Ji, 2) for Ji in J])
    t_idx, k_idx = pairs(x.shape[0])
    for t, k in zip(t_idx, k_idx, strict=True):
        if not usable[t, k] or R[t, k] == -np.inf:
            continue
        slack = 1e-9 * (1 + t - k)
        assert R[t, k] <= (t - k) * np.log(gw * gh) + slack
        with np.errstate(divide="ignore"):
            assert R[t, k] <= np.sum(np.log(gw * fpmax[k:t])) + slack
            assert R[t, k] <= np.sum(np.log(step_norm[k:t])) + slack
    cert = bd.certify(m, m.forward(x))
    assert cert.holds
    for name in ("eq12", "activation", "step_norm"):
        c = cert[name]
        assert c.holds and len(c.violations) == 0
        assert c.pairs_checked == len(t_idx)


# ----------------------------------------------------------------------------- (b) vanishing
@st.composite
def contracting(draw):
    act = draw(TANH_SIG)
    gh = {"tanh": 1.0, "sigmoid": 0.25}[act]
    frac = draw(st.floats(0.05, 0.95))
    m = draw(rst.elman_models(activation=st.just(act), weight_norm=frac / gh))
    x = draw(rst.input_sequences(rst.sizes(1, 12), m.n_in))
    return m, x


@given(contracting())
def test_sigma_below_inverse_gamma_h_gives_geometric_decay(problem):
    """``σ_max(W) < 1/γ_h ⇒ ln‖∂h_t/∂h_k‖ ≤ (t−k)·ln(σ_max γ_h) < 0``: geometric
    decay on every pair, and vanishing_guaranteed says so (sufficient)."""
    m, x = problem
    s = np.linalg.norm(m.W_hh, 2)
    gh = {"tanh": 1.0, "sigmoid": 0.25}[m.activation.name]
    assert s * gh < 1
    cond = bd.vanishing_guaranteed(m.W_hh, m.activation)
    assert cond.holds and cond.logic == "sufficient"
    R, usable = observed_log_norms(m, x)
    t_idx, k_idx = pairs(x.shape[0])
    rate = np.log(s * gh)
    for t, k in zip(t_idx, k_idx, strict=True):
        if usable[t, k] and R[t, k] > -np.inf:
            assert R[t, k] <= (t - k) * rate + 1e-9 * (1 + t - k)


# ----------------------------------------------------------------------------- (c) eigenvalues
@given(rst.non_normal_matrices(rst.sizes(2, 5)), st.data())
def test_spectral_radius_is_not_a_bound(W, data):
    """A non-normal W with ``ρ(W) < 1 < σ_max(W)``: with the identity activation
    (γ_h = 1, J_i = W) some pair has ``‖∂h_t/∂h_k‖ > ρ^(t−k)`` — the eigenvalue
    reading of Eq. 12 fails, while the σ_max reading holds on every pair."""
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    s = np.linalg.norm(W, 2)
    assert s > 1 > rho
    assert bd.gamma_w(W) > 1 > bd.spectral_radius(W)
    assert abs(bd.gamma_w(W) - s) <= 1e-12 * s
    assert abs(bd.spectral_radius(W) - rho) <= 1e-9
    n = W.shape[0]
    T = data.draw(st.integers(1, 10), label="T")
    m = ElmanRNN(W, np.full((n, 1), 0.1), np.zeros(n), activation="identity")
    x = np.zeros((T, 1))
    R, usable = observed_log_norms(m, x)
    t_idx, k_idx = pairs(T)
    with np.errstate(divide="ignore"):
        rho_bound = (t_idx - k_idx) * np.log(rho)
    obs = R[t_idx, k_idx]
    assert np.any((obs > rho_bound + 1e-9) & usable[t_idx, k_idx])
    sig_bound = (t_idx - k_idx) * np.log(s)
    ok = usable[t_idx, k_idx] & np.isfinite(obs)
    assert np.all(obs[ok] <= sig_bound[ok] + 1e-9 * (1 + t_idx - k_idx)[ok])
    assert bd.certify(m, m.forward(x), bounds=("eq12",)).holds


def test_spectral_radius_is_not_a_bound_with_tanh_small_inputs():
    """Same counterexample through tanh at near-zero states (f′ ≈ 1):
    ``W = [[0.5, 4], [0, 0.5]]`` has ρ = 0.5 but ``‖∂h_1/∂h_0‖ ≈ σ_max ≈ 4.06``."""
    W = np.array([[0.5, 4.0], [0.0, 0.5]])
    m = ElmanRNN(W, np.full((2, 1), 1e-3), np.zeros(2), activation="tanh")
    x = np.full((6, 1), 1e-3)
    R, _ = observed_log_norms(m, x)
    assert R[1, 0] > np.log(0.5) + 1.0
    assert R[2, 0] > 2 * np.log(0.5) + 1.0
    assert bd.certify(m, m.forward(x)).holds


# ----------------------------------------------------------------------------- (d) leaky
@given(model_inputs(leaky=True))
def test_leaky_bound_on_every_pair(problem):
    """Eq. 14: with ``J = diag(α) + diag(1−α) J̃`` and ``‖J̃‖ ≤ γ_W γ_h``,
    ``‖∂h_t/∂h_k‖ ≤ (max α + max(1−α) γ_W γ_h)^(t−k)`` on every pair; the
    library's leaky_log_bound is that log (computed here independently)."""
    m, x = problem
    a = m.alpha
    gh = {"tanh": 1.0, "sigmoid": 0.25}[m.activation.name]
    rate = np.log(a.max() + (1 - a).max() * np.linalg.norm(m.W_hh, 2) * gh)
    R, usable = observed_log_norms(m, x)
    t_idx, k_idx = pairs(x.shape[0])
    steps = t_idx - k_idx
    lib = bd.leaky_log_bound(m.W_hh, m.activation, a, steps)
    np.testing.assert_allclose(lib, steps * rate, rtol=1e-12, atol=1e-15)
    obs = R[t_idx, k_idx]
    ok = usable[t_idx, k_idx] & np.isfinite(obs)
    assert np.all(obs[ok] <= lib[ok] + 1e-9 * (1 + steps[ok]))
    assert bd.leaky_log_bound(m.W_hh, m.activation, a, 0) == 0.0
    assert bd.certify(m, m.forward(x)).holds


# ----------------------------------------------------------------------------- (e) certificates
def test_pair_log_bounds_are_partial_sums():
    """``B[t, k] = Σ_{i=k+1}^{t} b_i``, 0 on the diagonal, −inf above it and
    wherever a factor is −inf (a zero step bound)."""
    b = np.array([0.3, -1.2, -np.inf, 0.7, 2.0])
    B = bd.pair_log_bounds(b)
    T = b.size
    for t in range(T + 1):
        for k in range(T + 1):
            if k > t:
                assert B[t, k] == -np.inf
            elif k == t:
                assert B[t, k] == 0.0
            else:
                seg = b[k:t]
                if np.any(seg == -np.inf):
                    assert B[t, k] == -np.inf
                else:
                    assert abs(B[t, k] - sum(seg)) <= 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_certify_violations_are_exactly_the_failing_pairs(seed, monkeypatch):
    """With a deliberately wrong (too small) per-step bound substituted, the
    certificate's violations are exactly the pairs where the independently
    computed ``ln‖∂h_t/∂h_k‖`` exceeds ``Σ b_i`` (computed here), holds is False
    and max_log_ratio is the largest excess."""
    rng = np.random.default_rng(seed)
    n, T = 4, 9
    m = ElmanRNN(rng.normal(0, 1.5 / np.sqrt(n), (n, n)), rng.normal(size=(n, 2)),
                 rng.normal(0, 0.3, n), activation="tanh", form=("standard", "pascanu")[seed % 2])
    x = rng.normal(size=(T, 2))
    tr = m.forward(x)
    R, usable = observed_log_norms(m, x)
    assert usable[pairs(T)].all()
    J = naive.jacobians(m, x)
    true_steps = np.log([np.linalg.norm(Ji, 2) for Ji in J])
    wrong = true_steps - rng.uniform(0.0, 0.6, T)  # too small on some steps

    def fake(model, trace, bound):
        return wrong.copy()

    monkeypatch.setattr(bd, "step_log_bounds", fake)
    cert = bd.certify(m, tr, bounds=("step_norm",))
    c = cert["step_norm"]
    t_idx, k_idx = pairs(T)
    mine = np.array([wrong[k:t].sum() for t, k in zip(t_idx, k_idx, strict=True)])
    excess = R[t_idx, k_idx] - mine
    tol = 1e-9 * (1 + t_idx - k_idx)
    # keep the comparison away from the rounding boundary
    assert np.all(np.abs(excess - tol) > 1e-7)
    expected = {(int(t), int(k)) for t, k, e, tl in zip(t_idx, k_idx, excess, tol, strict=True)
                if e > tl}
    assert expected  # the wrong bound is violated somewhere
    assert {tuple(map(int, v)) for v in c.violations} == expected
    assert len(c.violations) == len(expected)
    assert not c.holds and not cert.holds
    assert abs(c.max_log_ratio - excess.max()) <= 1e-9
    assert tuple(c.worst_pair) == (int(t_idx[np.argmax(excess)]), int(k_idx[np.argmax(excess)]))


def test_certify_real_bounds_have_no_violations_and_match_svd():
    """On a generic model the true bounds hold with an empty violation list, and
    the certificate's log_norms equal the SVD oracle."""
    rng = np.random.default_rng(7)
    m = ElmanRNN(rng.normal(0, 2.0 / np.sqrt(5), (5, 5)), rng.normal(size=(5, 1)),
                 rng.normal(0, 0.3, 5), activation="sigmoid", form="pascanu",
                 alpha=rng.uniform(0, 0.5, 5))
    x = rng.normal(size=(10, 1))
    cert = bd.certify(m, m.forward(x))
    R, usable = observed_log_norms(m, x)
    assert usable[pairs(10)].all()
    t_idx, k_idx = pairs(10)
    np.testing.assert_allclose(cert.log_norms[t_idx, k_idx], R[t_idx, k_idx], rtol=1e-9)
    assert cert.holds
    for c in cert.checks:
        assert c.violations.shape == (0, 2)
        assert c.max_log_ratio <= 1e-9


@pytest.mark.parametrize(
    ("W", "act", "x"),
    [
        # identity activation, h overflows to inf and then NaN (0·inf off the diagonal)
        (1e200 * np.eye(2), "identity", np.ones((4, 2))),
        # ReLU, h overflows to inf in one unit
        (1e200 * np.array([[1.0, -1.0], [1.0, 1.0]]), "relu", np.ones((5, 2))),
    ],
)
def test_certify_refuses_a_non_finite_trace(W, act, x):
    """A trajectory that overflowed is not a trajectory of the model in exact
    arithmetic: a certificate on it must not report holds."""
    m = ElmanRNN(W, np.eye(2), np.zeros(2), activation=act)
    tr = m.forward(x)
    assert not np.all(np.isfinite(tr.h))  # the premise: the trace is not finite
    cert = bd.certify(m, tr)
    assert cert.holds is False


# ----------------------------------------------------------------------------- (f) conditions
def test_gamma_h_equals_numerical_sup_of_fprime():
    """``γ_h = sup|f′|``: 1 (tanh), 1/4 (sigmoid), 1 (identity), 1 (ReLU), against
    the maximum of |f′| on a fine grid (derivatives by central differences of f)."""
    grid = np.linspace(-20, 20, 400_001)
    h = 1e-6
    fs = {
        "tanh": np.tanh,
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "identity": lambda v: v,
        "relu": lambda v: np.maximum(v, 0.0),
    }
    for name, f in fs.items():
        with np.errstate(over="ignore"):
            d = np.abs((f(grid + h) - f(grid - h)) / (2 * h))
        sup = d[np.abs(grid) > 2 * h].max() if name == "relu" else d.max()
        assert abs(bd.gamma_h(name) - sup) <= 1e-6, name
    assert (bd.gamma_h("tanh"), bd.gamma_h("sigmoid"), bd.gamma_h("identity"),
            bd.gamma_h("relu")) == (1.0, 0.25, 1.0, 1.0)


@pytest.mark.parametrize(
    ("diag", "act", "vanish", "explode"),
    [
        ([0.5, -0.9], "tanh", True, False),
        ([0.5, -1.0], "tanh", False, False),  # σ = 1/γ_h: neither strict inequality
        ([1.5, 0.1], "tanh", False, True),
        ([3.9, -1.0], "sigmoid", True, False),
        ([-4.0, 2.0], "sigmoid", False, False),
        ([0.2, 4.5], "sigmoid", False, True),
        ([0.99], "identity", True, False),
        ([1.01, 0.0], "relu", False, True),
    ],
)
def test_pascanu_conditions_on_diagonal_matrices(diag, act, vanish, explode):
    """``vanishing_guaranteed ⇔ σ_max < 1/γ_h`` (sufficient) and
    ``explosion_possible ⇔ σ_max > 1/γ_h`` (necessary), with σ_max = max|d_i|
    for ``W = diag(d)``."""
    W = np.diag(np.asarray(diag, dtype=float))
    smax = np.max(np.abs(diag))
    v = bd.vanishing_guaranteed(W, act)
    e = bd.explosion_possible(W, act)
    assert v.holds is vanish and bool(v) is vanish
    assert e.holds is explode and bool(e) is explode
    assert v.logic == "sufficient" and e.logic == "necessary"
    assert v.sigma_max == pytest.approx(smax, rel=1e-14)
    thr = {"tanh": 1.0, "sigmoid": 4.0, "identity": 1.0, "relu": 1.0}[act]
    assert v.threshold == thr and e.threshold == thr
    assert bd.decay_rate(W, act) == pytest.approx(smax / thr, rel=1e-14)


def test_steps_to_vanish():
    """``(σ γ_h)^s ≤ tol`` first at ``s = ⌈ln tol / ln(σ γ_h)⌉``; None without decay."""
    W = np.diag([0.5, 0.1])
    s = bd.steps_to_vanish(W, "tanh", 1e-8)
    assert 0.5**s <= 1e-8 < 0.5 ** (s - 1)
    assert bd.steps_to_vanish(np.eye(2), "tanh") is None
    assert bd.steps_to_vanish(2.0 * np.eye(2), "sigmoid") is not None


# ----------------------------------------------------------------------------- (g) strategies
@given(st.floats(0.01, 10.0), st.data())
def test_strategy_spectral_norm(target, data):
    """Drawn matrices have σ_max (numpy SVD) equal to the target to 1e-10 (relative)."""
    W = data.draw(rst.matrices_with_spectral_norm(rst.sizes(1, 6), target), label="W")
    assert W.shape[0] == W.shape[1]
    assert abs(np.linalg.svd(W, compute_uv=False)[0] - target) <= 1e-10 * target


@given(st.floats(0.01, 10.0), st.data())
def test_strategy_spectral_radius(radius, data):
    """Drawn matrices have ρ = max|eig| equal to the target to 1e-10 (relative)."""
    W = data.draw(rst.matrices_with_spectral_radius(rst.sizes(1, 6), radius))
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    assert abs(rho - radius) <= 1e-10 * radius


@given(rst.orthogonal_matrices(rst.sizes(1, 6)))
def test_strategy_orthogonal(Q):
    """``QᵀQ = QQᵀ = I`` to rounding, hence every singular value is 1."""
    n = Q.shape[0]
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(Q @ Q.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(Q, compute_uv=False), np.ones(n), atol=1e-12)


@given(rst.non_normal_matrices(rst.sizes(2, 6), radius=0.8, min_norm=2.0))
def test_strategy_non_normal(W):
    """``ρ(W) ≤ radius`` and ``σ_max(W) ≥ min_norm`` (to 1e-10), and W is not
    normal (``WᵀW ≠ WWᵀ``).

    The eigenvalues of a (nearly) defective matrix move by up to ~(u‖W‖)^(1/n)
    under the rounding of ``Q (D + N) Qᵀ``, so ρ is checked to 1e-2 only, which
    still leaves ``ρ < 1 < σ_max`` — the property the counterexamples need.
    """
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    s = np.linalg.norm(W, 2)
    assert rho <= 0.8 + 1e-2
    assert s >= 2.0 - 1e-10
    assert np.linalg.norm(W.T @ W - W @ W.T) > 1e-6


@given(rst.elman_models(weight_norm=st.floats(0.1, 3.0), leaky=st.booleans()), st.data())
def test_strategy_models(m, data):
    """elman_models draws valid models whose σ_max(W_hh) is the requested norm,
    with α in [0, 1]; input_sequences respect shape and scale."""
    norm = data.draw(st.floats(0.2, 2.5), label="norm")
    m2 = data.draw(rst.elman_models(weight_norm=norm), label="m2")
    assert abs(np.linalg.norm(m2.W_hh, 2) - norm) <= 1e-10 * norm
    if m.alpha is not None:
        assert np.all((m.alpha >= 0) & (m.alpha <= 1))
    x = data.draw(rst.input_sequences(5, m.n_in, batch=2, scale=0.5), label="x")
    assert x.shape == (5, 2, m.n_in) and np.all(np.abs(x) <= 0.5)


# ----------------------------------------------------------------------------- bad inputs
_M = ElmanRNN.init(2, 3, None, scheme="gaussian", scale=1.3, seed=3)
_TR = _M.forward(np.random.default_rng(4).normal(size=(5, 2)))
_BATCH = _M.forward(np.zeros((5, 4, 2)))


def _with(trace, **fields):
    from dataclasses import replace

    return replace(trace, **fields)


BAD_INPUTS = [
    ("certify on a batch", lambda: bd.certify(_M, _BATCH), ValueError,
     r"`trace` must be a single-sequence trace, got a batch of 4; `certify` takes one sequence: "
     r"select one with trace.sequence\(b\)"),
    ("step_log_bounds on a batch", lambda: bd.step_log_bounds(_M, _BATCH, "eq12"), ValueError,
     r"`trace` must be a single-sequence trace, got a batch of 4; `step_log_bounds` takes one sequence"),
    ("certify h with an extra axis", lambda: bd.certify(_M, _with(_TR, h=_TR.h[None])), ValueError,
     r"`trace` must be a single-sequence trace"),
    ("certify h complex", lambda: bd.certify(_M, _with(_TR, h=_TR.h + 0j)), TypeError,
     r"`trace.h` must be a real floating-point array, got dtype complex128"),
    ("certify h a float", lambda: bd.certify(_M, _with(_TR, h=1.5)), ValueError,
     r"`trace.h` must have 2 or 3 dimension\(s\), got shape \(\)"),
    ("certify h a str", lambda: bd.certify(_M, _with(_TR, h="junk")), TypeError,
     r"`trace.h` must be a real floating-point array, got dtype <U4"),
    ("certify h strings", lambda: bd.certify(_M, _with(_TR, h=_TR.h.astype(str))), TypeError,
     r"`trace.h` must be a real floating-point array"),
    ("certify h without rows", lambda: bd.certify(_M, _with(_TR, h=_TR.h[:0])), ValueError,
     r"`trace.h` must have shape \(T\+1, n\) with T >= 0 \(h\[0\] is h_0\), got shape \(0, 3\)"),
    ("step_log_bounds a flattened", lambda: bd.step_log_bounds(_M, _with(_TR, a=_TR.a.ravel()), "activation"),
     ValueError, r"`trace.a` must have 2 dimension\(s\), got shape \(15,\)"),
    ("step_log_bounds a one row short", lambda: bd.step_log_bounds(_M, _with(_TR, a=_TR.a[:-1]), "activation"),
     ValueError, r"`trace.a` must have shape \(T, n\) = \(5, 3\) for `trace.h` of shape \(6, 3\), got shape \(4, 3\)"),
    ("certify bounds an object", lambda: bd.certify(_M, _TR, bounds=object()), TypeError,
     r"`bounds` must be a tuple of bound names from \('eq12', 'activation', 'step_norm', 'gated'\), got <object"),
    ("certify bounds of ints", lambda: bd.certify(_M, _TR, bounds=(1, 2)), TypeError,
     r"`bounds` must be a tuple of bound names"),
    ("certify bounds a str", lambda: bd.certify(_M, _TR, bounds="eq12"), TypeError,
     r"`bounds` must be a tuple of bound names .* got 'eq12'"),
    ("log_bound empty W", lambda: bd.log_bound(np.zeros((0, 3)), "tanh", 2), ValueError,
     r"`W` must be a non-empty matrix, got shape \(0, 3\)"),
    ("leaky_log_bound empty W", lambda: bd.leaky_log_bound(np.zeros((0, 3)), "tanh", 0.5, 2), ValueError,
     r"`W` must be a non-empty matrix, got shape \(0, 3\)"),
    ("leaky_log_lower_bound empty W", lambda: bd.leaky_log_lower_bound(np.zeros((3, 0)), "tanh", 0.5, 2),
     ValueError, r"`W` must be a non-empty matrix, got shape \(3, 0\)"),
    ("spectral_radius empty W", lambda: bd.spectral_radius(np.zeros((0, 0))), ValueError,
     r"`W` must be a non-empty matrix, got shape \(0, 0\)"),
    ("gamma_w empty W", lambda: bd.gamma_w(np.zeros((0, 2))), ValueError, r"`W` must be a non-empty matrix"),
    ("leaky_log_bound empty alpha", lambda: bd.leaky_log_bound(np.eye(3), "tanh", np.zeros(0), 2), ValueError,
     r"`alpha` must hold at least one retention coefficient, got shape \(0,\)"),
    ("leaky_log_lower_bound empty alpha", lambda: bd.leaky_log_lower_bound(np.eye(3), "tanh", [], 2),
     ValueError, r"`alpha` must hold at least one retention coefficient"),
    ("leaky_log_bound alpha > 1", lambda: bd.leaky_log_bound(np.eye(3), "tanh", 1.5, 2), ValueError,
     r"`alpha` must lie in \[0, 1\]"),
    ("pair_log_bounds complex", lambda: bd.pair_log_bounds(np.full(4, -0.1 + 1j)), TypeError,
     r"`step_logs` must be a real floating-point array, got dtype complex128"),
    ("pair_log_bounds a str", lambda: bd.pair_log_bounds("junk"), TypeError,
     r"`step_logs` must be a real floating-point array, got dtype <U4"),
    ("pair_log_bounds a dict", lambda: bd.pair_log_bounds({"a": 1}), TypeError,
     r"`step_logs` must be a real floating-point array, got dtype object"),
    ("pair_log_bounds 2-d", lambda: bd.pair_log_bounds(np.zeros((2, 2))), ValueError,
     r"`step_logs` must have 1 dimension\(s\), got shape \(2, 2\)"),
]


@pytest.mark.parametrize(("label", "call", "exc", "match"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_refused_by_name(label, call, exc, match):
    """A malformed trace, `bounds`, `W`, `alpha` or `step_logs` raises TypeError or
    ValueError naming the argument (they raised AttributeError, IndexError, a
    ComplexWarning or NumPy's reshape and reduction errors)."""
    with pytest.raises(exc, match=match):
        call()


def test_pair_log_bounds_of_a_list_of_integers_are_exact_partial_sums():
    """Integer step logs (a list) are exact float64 values: ``B[t, k] = Σ b_i``
    with integer sums, so equality is exact (Fractions would give the same)."""
    b = [1, -2, 3, 0, 5]
    B = bd.pair_log_bounds(b)
    c = np.concatenate([[0], np.cumsum(b)])
    t, k = np.tril_indices(len(b) + 1)
    assert np.array_equal(B[t, k], (c[t] - c[k]).astype(float))
    assert np.all(B[np.triu_indices(len(b) + 1, 1)] == -np.inf)


def test_certify_accepts_bounds_as_a_list_and_a_list_valued_trace():
    """``bounds`` as a list and a trace whose fields are nested lists give the
    certificate of the arrays: the observed log norms equal the SVDs of the
    explicit products of the naive step Jacobians, and every bound holds."""
    x = np.random.default_rng(4).normal(size=(5, 2))
    cert = bd.certify(_M, _with(_TR, h=_TR.h.tolist(), a=_TR.a.tolist()), bounds=["eq12", "step_norm"])
    want = naive.log_norms_svd(naive.jacobians(_M, x))
    t, k = np.tril_indices(6, -1)
    np.testing.assert_allclose(cert.log_norms[t, k], want[t, k], rtol=1e-12, atol=1e-12)
    assert [c.name for c in cert.checks] == ["eq12", "step_norm"] and cert.holds


def _mp_sigma_rho(W: np.ndarray) -> tuple[float, float]:
    """σ_max and ρ of ``W`` in 40-digit mpmath arithmetic (any exponent)."""
    import mpmath

    with mpmath.workdps(40):
        A = mpmath.matrix(W.tolist())
        s = max(mpmath.svd_r(A, compute_uv=False))
        r = max(abs(e) for e in mpmath.eig(A, left=False, right=False))
        return float(s), float(r)


@pytest.mark.parametrize("scale", [1e-300, 2.0**-450, 1e-150, 1.0, 1e150, 2.0**450, 1e300])
def test_sigma_and_rho_are_one_number_at_every_scale(scale):
    """``bounds.gamma_w`` / ``spectral_radius``, the ESN's ``spectral_norm`` /
    ``spectral_radius`` and the projection's measure are one computation: the same
    float for the same matrix (the ESN measured a power-of-two rescaled copy and
    ``bounds`` the matrix itself, so their last digits differed at 1e-300), and that
    float is σ_max / ρ to 1e-14 against mpmath at entries from 1e-300 to 1e300."""
    from rnntheory.esn import ESN
    from rnntheory.remedies import project_spectral_norm

    rng = np.random.default_rng(13)
    W = rng.normal(size=(6, 6)) * scale
    s, r = bd.gamma_w(W), bd.spectral_radius(W)
    want_s, want_r = _mp_sigma_rho(W)
    assert s == pytest.approx(want_s, rel=1e-14)
    assert r == pytest.approx(want_r, rel=1e-13)
    esn = ESN(W=W, W_in=np.zeros((6, 1)), W_fb=np.zeros((6, 1)), b=np.zeros(6))
    assert esn.spectral_norm == s and esn.spectral_radius == r
    m = ElmanRNN(W, np.zeros((6, 1)), np.zeros(6))
    assert project_spectral_norm(m, s).W_hh is m.W_hh  # σ_max ≤ c with c = gamma_w(W): kept


def test_sigma_beyond_float64_is_inf_and_rho_finite():
    """σ_max of a matrix whose entries are finite but whose norm passes float64's
    range is inf (documented), while ρ (one entry on the diagonal) stays exact."""
    W = np.array([[1.5e308, 1.5e308], [0.0, 1e-300]])
    assert bd.gamma_w(W) == np.inf
    assert bd.spectral_radius(W) == 1.5e308
