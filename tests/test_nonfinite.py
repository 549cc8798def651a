"""Traces that the forward pass itself made non-finite, and weights at the float64 limits.

A step ``i`` of a trace *cannot be evaluated* when ``h_{i−1}``, ``h_i`` (``c``
too for the LSTM) or the step's arguments hold NaN or inf. Every function of
``rnntheory.jacobians`` and ``rnntheory.bounds`` that reads a trace must then
say so (NaN exactly on the steps and pairs that involve such a step, a named
``ValueError`` where the result needs every step, a violation in a
certificate), never raise a raw LinAlgError and never return a number from the
overflowed values. Each trace here comes from ``model.forward``, except those of
inputs the models now refuse (an input term beyond float64's range: the traces a
float64 loop computes from them, built by ``loop_trace``); the oracles
are the loop references of ``tests/naive.py`` (Elman), central differences of
the loop-reference step (LSTM, GRU), explicit products with LAPACK's SVD, and
mpmath for the logs of norms beyond float64's range.
"""

from __future__ import annotations

import math

import mpmath
import naive
import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory import bounds as bd
from rnntheory import jacobians as jac
from rnntheory._oracles import central_jacobian
from rnntheory.cells.elman import Trace
from rnntheory.cells.gated import GatedTrace

# ----------------------------------------------------------------------------- traces


def _rotation(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


def elman_cases():
    """``(label, model, x)``: each forward pass overflows somewhere."""
    rng = np.random.default_rng(5)
    cases = []
    # identity units, W = 1e3·rotation: |h| grows 1e3 per step, inf at step ~103, then NaN
    cases.append(("identity", ElmanRNN(1e3 * _rotation(0.3), np.ones((2, 1)), np.zeros(2),
                                       activation="identity"), np.ones((108, 1))))
    # ReLU, positive weights: overflow after a few steps (standard and Pascanu's form)
    W = 1e100 * np.abs(rng.normal(size=(3, 3)))
    for form in ("standard", "pascanu"):
        cases.append((f"relu-{form}", ElmanRNN(W, np.ones((3, 1)), np.zeros(3), activation="relu",
                                               form=form), np.ones((7, 1))))
    # tanh: an input of 1e308 makes a_6 = +inf (h_6 = tanh(inf) = 1 is finite again).
    # The model refuses that input (its term W_hx x_t is beyond float64's range):
    # the trace is the loop's (see REFUSED)
    U = np.full((3, 2), 2.0)
    x = rng.normal(size=(12, 2))
    x[5] = [1e308, 1e308]
    cases.append(("tanh-inf-then-finite", ElmanRNN(rng.normal(size=(3, 3)), U, np.zeros(3)), x))
    # leaky sigmoid units in Pascanu's form, the same input: h_6 = +inf, and
    # α·inf keeps every later state infinite
    cases.append(("leaky-sigmoid-pascanu", ElmanRNN(rng.normal(size=(3, 3)), U, np.zeros(3),
                                                    activation="sigmoid", form="pascanu",
                                                    alpha=rng.uniform(0.1, 0.9, 3)), x))
    # float32 identity units: inf at step ~39 (float32 overflows at 3.4e38)
    cases.append(("identity-float32", ElmanRNN((10.0 * _rotation(0.7)).astype(np.float32),
                                               np.ones((2, 1), np.float32), np.zeros(2, np.float32),
                                               activation="identity"), np.ones((45, 1), np.float32)))
    return cases


CASES = elman_cases()
IDS = [c[0] for c in CASES]
# inputs the models refuse since their input term could pass float64's range
REFUSED = ("tanh-inf-then-finite", "leaky-sigmoid-pascanu")


def loop_trace(m, x):
    """The trace a float64 loop computes over ``x`` (overflow and all): what a
    forward pass without the range check left, for an input the model refuses."""
    x = np.asarray(x, float)
    with np.errstate(all="ignore"):
        if isinstance(m, ElmanRNN):
            h = naive.forward(m, x)
            W, U, b, _, _, _ = naive.params(m)
            a = h[:-1] if m.form == "pascanu" else np.array(
                [W @ h[t] + U @ x[t] + b for t in range(x.shape[0])])
            return Trace(h, a, None)
        # gated cells: products summed one by one (2·1e308 + 2·(−1e308) = inf − inf = NaN)
        n = m.n_hidden
        Wi, Wh = np.asarray(m.weight_ih, float), np.asarray(m.weight_hh, float)
        bi, bh = np.asarray(m.bias_ih, float), np.asarray(m.bias_hh, float)
        lstm = isinstance(m, LSTM)
        h, c = np.zeros(n), np.zeros(n)
        hs, cs, pre = [h], [c], []
        for xt in x:
            gi, gh = (Wi * xt).sum(axis=1) + bi, (Wh * h).sum(axis=1) + bh
            if lstm:
                a = gi + gh
                i, f, g, o = naive._sig(a[:n]), naive._sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), naive._sig(a[3 * n:])
                c = f * c + i * g
                h = o * np.tanh(c)
                cs.append(c)
            else:
                r = naive._sig(gi[:n] + gh[:n])
                z = naive._sig(gi[n:2 * n] + gh[n:2 * n])
                a = np.concatenate([gi[:2 * n] + gh[:2 * n], gi[2 * n:] + r * gh[2 * n:], gh[2 * n:]])
                h = (1.0 - z) * np.tanh(a[2 * n:3 * n]) + z * h
            hs.append(h)
            pre.append(a)
    return GatedTrace(np.array(hs), np.array(cs) if lstm else None, np.array(pre), None)


def trace_of(label, m, x):
    """``m.forward(x)``, or the loop's trace for the inputs in REFUSED."""
    return loop_trace(m, x) if label in REFUSED else m.forward(x)


def bad_steps(trace) -> np.ndarray:
    """Oracle: ``bad[i-1]`` iff step i reads a non-finite value (from the definition)."""
    h = np.asarray(trace.h, float).reshape(trace.h.shape[0], -1)
    fin = np.isfinite(h).all(axis=1)
    if getattr(trace, "c", None) is not None:
        fin &= np.isfinite(np.asarray(trace.c, float)).all(axis=1)
    args = trace.a if hasattr(trace, "a") else trace.pre
    fin_args = np.isfinite(np.asarray(args, float)).all(axis=1)
    return ~(fin[:-1] & fin[1:] & fin_args)


def spans(bad: np.ndarray) -> np.ndarray:
    """``[t, k]`` (k < t): some step ``k < i ≤ t`` is bad."""
    T = bad.size
    out = np.zeros((T + 1, T + 1), dtype=bool)
    for t in range(T + 1):
        for k in range(t):
            out[t, k] = bad[k:t].any()
    return out


def naive_jacobians(m, tr, x):
    """Loop-reference step Jacobians at the trace's own states (NaN/inf included)."""
    x = np.asarray(x, float)
    with np.errstate(all="ignore"):
        return np.array([naive.step_jacobian(m, np.asarray(tr.h[i - 1], float), x[i - 1])
                         for i in range(1, tr.T + 1)])


def test_every_case_overflows_in_forward():
    """The premise: each forward pass leaves NaN or inf in the trace, at some
    steps only (so that the pairs before the overflow still have values)."""
    for label, m, x in CASES:
        bad = bad_steps(trace_of(label, m, x))
        assert bad.any() and not bad[0], label
        if label in REFUSED:
            with pytest.raises(ValueError, match=r"^`x` is too large for this model"):
                m.forward(x)


# ----------------------------------------------------------------------------- jacobians


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_step_jacobians_nan_exactly_where_the_trace_overflowed(label, m, x):
    """Entry i−1 is all NaN iff step i reads NaN/inf; every other entry equals
    the loop reference ``diag(f′) W`` (or its Pascanu / leaky form)."""
    tr = trace_of(label, m, x)
    bad = bad_steps(tr)
    J = jac.step_jacobians(m, tr)
    assert np.array_equal(np.isnan(J).all(axis=(1, 2)), bad)
    assert not np.isnan(J[~bad]).any()
    ref = naive_jacobians(m, tr, x)
    rtol = 1e-6 if m.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(J[~bad], ref[~bad], rtol=rtol, atol=1e-300)


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_log_norms_nan_exactly_on_pairs_over_the_overflow(label, m, x):
    """``log_norms`` is NaN exactly on the pairs whose stretch k < i ≤ t holds a
    step that cannot be evaluated, and equals ln σ_max of the explicit product
    (LAPACK SVD) on the others; ``log_norm_profile`` is each column of it;
    ``product`` is all NaN on the same pairs and the explicit product elsewhere."""
    tr = trace_of(label, m, x)
    bad = bad_steps(tr)
    S = spans(bad)
    L = jac.log_norms(m, tr)
    T = tr.T
    t_idx, k_idx = np.tril_indices(T + 1, -1)
    assert np.array_equal(np.isnan(L[t_idx, k_idx]), S[t_idx, k_idx])
    Jr = naive_jacobians(m, tr, x)
    rtol = 1e-5 if m.dtype == np.float32 else 1e-9
    for t, k in zip(t_idx, k_idx, strict=True):
        if S[t, k]:
            continue
        with np.errstate(all="ignore"):  # the oracle's own products may overflow
            P = naive.product(Jr, t, k)
        if np.all(np.isfinite(P)) and np.any(P != 0):
            ref = np.log(np.linalg.svd(P, compute_uv=False)[0])
            assert L[t, k] == pytest.approx(ref, rel=rtol, abs=1e-9)
    for k in (0, int(np.argmax(bad)), T):
        prof = jac.log_norm_profile(m, tr, k)
        np.testing.assert_allclose(prof[k:], L[k:, k], rtol=1e-12, atol=0)
    for t, k in [(T, 0), (int(np.argmax(bad)), 0), (T, T - 1), (int(np.argmax(bad)) - 1, 0)]:
        P = jac.product(m, tr, t, k)
        Ps = jac.product(m, tr, t, k, scaled=True)
        if S[t, k]:
            assert np.isnan(P).all() and np.isnan(Ps.matrix).all()
            assert math.isnan(Ps.log_scale) and math.isnan(Ps.log_norm())
        else:
            assert not np.isnan(P).any()
            assert Ps.log_norm() == pytest.approx(L[t, k], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_jacobian_stacks_with_nan_factors(label, m, x):
    """The ``*_from_jacobians`` forms on the stack ``step_jacobians`` returns:
    the same NaN pattern, and no error (a NaN factor used to reach LAPACK)."""
    tr = trace_of(label, m, x)
    S = spans(bad_steps(tr))
    J = jac.step_jacobians(m, tr)
    L = jac.log_norms_from_jacobians(J)
    t_idx, k_idx = np.tril_indices(tr.T + 1, -1)
    assert np.array_equal(np.isnan(L[t_idx, k_idx]), S[t_idx, k_idx])
    prof = jac.log_norm_profile_from_jacobians(J, 0)
    assert np.array_equal(np.isnan(prof[1:]), S[1:, 0])


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_lyapunov_spectrum_refuses_an_overflowed_trace_by_name(label, m, x):
    """The exponents average ln|R_jj| over every step, so one step that cannot
    be evaluated leaves none defined: a ValueError names `trace` and the first
    such step (a NaN factor used to raise numpy's LinAlgError from the QR, and
    an inf state with the identity gave finite exponents of a computation that
    never happened). The finite prefix the message suggests works."""
    tr = trace_of(label, m, x)
    bad = bad_steps(tr)
    first = int(np.argmax(bad)) + 1
    with pytest.raises(ValueError, match=rf"`trace` has non-finite values from step {first} on "
                                         rf"\({bad.sum()} of {bad.size} steps"):
        jac.lyapunov_spectrum(m, tr)
    lam = jac.lyapunov_spectrum(m, m.forward(x[: first - 1]))
    assert not np.isnan(lam).any()


# ----------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_step_log_bounds_nan_where_the_trace_overflowed(label, m, x):
    """Data-dependent step bounds are NaN at the steps that cannot be evaluated
    and equal ln(γ_W max|f′|) / ln‖J_i‖ from the loop reference elsewhere; the
    weights-only Eq. 12 bound is ln(σ_max γ_h) at every step."""
    tr = trace_of(label, m, x)
    bad = bad_steps(tr)
    Jr = naive_jacobians(m, tr, x)
    rtol = 1e-5 if m.dtype == np.float32 else 1e-12
    sn = bd.step_log_bounds(m, tr, "step_norm")
    assert np.array_equal(np.isnan(sn), bad)
    ref = np.array([np.linalg.norm(Ji, 2) if np.all(np.isfinite(Ji)) else np.nan for Ji in Jr])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(sn[~bad], np.log(ref[~bad]), rtol=rtol, atol=1e-12)
    act = bd.step_log_bounds(m, tr, "activation")
    assert np.array_equal(np.isnan(act), bad)
    assert np.all(act[~bad] >= sn[~bad] - 1e-9)  # a bound on ‖J_i‖
    eq12 = bd.step_log_bounds(m, tr, "eq12")
    gw = np.linalg.svd(np.asarray(m.W_hh, float), compute_uv=False)[0]
    if m.alpha is None:
        expected = np.log(gw * m.activation.gamma_h)
    else:
        a = np.asarray(m.alpha, float)
        expected = np.log(a.max() + (1 - a).max() * gw * m.activation.gamma_h)
    np.testing.assert_allclose(eq12, expected, rtol=1e-12)


def test_pair_log_bounds_nan_and_infinite_steps():
    """B[t, k] = Σ_{k<i≤t} b_i; a NaN step makes exactly the pairs over it NaN
    (also when a −inf step is in the same stretch), a −inf step makes the
    pairs over it −inf, a +inf step +inf, −inf with +inf (0·∞) NaN; pairs
    outside those stretches are the plain sums."""
    b = np.array([0.5, -np.inf, 0.25, np.nan, 1.0, np.inf, -0.5])
    B = bd.pair_log_bounds(b)
    T = b.size
    for t in range(T + 1):
        for k in range(T + 1):
            seg = b[k:t]
            if k > t:
                assert B[t, k] == -np.inf
            elif np.isnan(seg).any() or (np.isneginf(seg).any() and np.isposinf(seg).any()):
                assert np.isnan(B[t, k]), (t, k)
            elif np.isneginf(seg).any():
                assert B[t, k] == -np.inf
            elif np.isposinf(seg).any():
                assert B[t, k] == np.inf
            else:
                assert B[t, k] == pytest.approx(float(np.sum(seg)), abs=1e-15)


@pytest.mark.parametrize(("label", "m", "x"), CASES, ids=IDS)
def test_certify_counts_pairs_over_the_overflow_as_unevaluable(label, m, x):
    """No exception (the step_norm bound used to raise LinAlgError on a NaN
    Jacobian); every bound fails exactly on the pairs over a step that cannot be
    evaluated (``unevaluable`` counts them, max_log_ratio is NaN), and holds on
    every other pair; the summary says so."""
    tr = trace_of(label, m, x)
    S = spans(bad_steps(tr))
    t_idx, k_idx = np.tril_indices(tr.T + 1, -1)
    expected = {(int(t), int(k)) for t, k in zip(t_idx, k_idx, strict=True) if S[t, k]}
    cert = bd.certify(m, tr)
    assert not cert.holds
    for c in cert.checks:
        assert {tuple(map(int, v)) for v in c.violations} == expected
        assert c.unevaluable == len(expected) and not c.holds
        assert math.isnan(c.max_log_ratio)
    assert "not finite" in str(cert)


# ----------------------------------------------------------------------------- gated cells


def gated_case(cls):
    """An LSTM/GRU whose pre-activations become NaN at step 6 (2·1e308 − 2·1e308)
    in a float64 loop (the model itself refuses the input)."""
    rng = np.random.default_rng(11)
    n, G = 3, 4 if cls is LSTM else 3
    m = cls(np.full((G * n, 2), 2.0), rng.normal(size=(G * n, n)), rng.normal(size=G * n),
            np.zeros(G * n))
    x = rng.normal(size=(10, 2))
    x[5] = [1e308, -1e308]
    return m, x


def fd_gated_jacobian(m, x_t, h, c, eps=1e-6):
    """Central differences of the loop-reference step with respect to (h, c)."""
    lstm = c is not None
    s = np.concatenate([h, c]) if lstm else h.copy()
    n = h.size

    def step(state):
        if lstm:
            hs, cs = naive.lstm_forward(m, x_t[None], state[:n], state[n:])
            return np.concatenate([hs[1], cs[1]])
        return naive.gru_forward(m, x_t[None], state)[1]

    return central_jacobian(step, s, eps)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_gated_paths_on_an_overflowed_trace(cls):
    """LSTM and GRU: step Jacobians NaN exactly at the steps that read NaN and
    equal to central differences of the loop-reference step elsewhere; gated
    and step-norm bounds NaN there; log_norms NaN exactly on the pairs over it;
    certify fails those pairs only; lyapunov_spectrum names step 6."""
    m, x = gated_case(cls)
    with pytest.raises(ValueError, match=r"^`x` is too large for this model"):
        m.forward(x)  # the input term 2·1e308 is beyond float64: refused; the loop's trace
    tr = loop_trace(m, x)
    bad = bad_steps(tr)
    assert bad[5:].all() and not bad[:5].any()
    J = jac.step_jacobians(m, tr)
    assert np.array_equal(np.isnan(J).all(axis=(1, 2)), bad)
    for i in np.flatnonzero(~bad):
        c = None if tr.c is None else tr.c[i]
        np.testing.assert_allclose(J[i], fd_gated_jacobian(m, x[i], tr.h[i], c), atol=1e-8)
    if cls is LSTM:
        Jc = jac.step_jacobians(m, tr, block="c")
        assert np.array_equal(np.isnan(Jc).all(axis=(1, 2)), bad)
    for name in ("gated", "step_norm"):
        b = bd.step_log_bounds(m, tr, name)
        assert np.array_equal(np.isnan(b), bad)
    assert np.all(bd.step_log_bounds(m, tr, "gated")[~bad] >= np.log(
        [np.linalg.norm(Ji, 2) for Ji in J[~bad]]) - 1e-12)
    S = spans(bad)
    t_idx, k_idx = np.tril_indices(tr.T + 1, -1)
    L = jac.log_norms(m, tr)
    assert np.array_equal(np.isnan(L[t_idx, k_idx]), S[t_idx, k_idx])
    cert = bd.certify(m, tr)
    for chk in cert.checks:
        assert chk.unevaluable == int(S.sum()) == len(chk.violations)
    with pytest.raises(ValueError, match=r"`trace` has non-finite values from step 6 on"):
        jac.lyapunov_spectrum(m, tr)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("scale", [1e160, 1e200, 1e300])
def test_gated_bound_holds_for_huge_weights(cls, scale):
    """Weights of 1e160 and more with a finite trace: the gated step bound is
    a finite log that bounds ln‖J_i‖ (the 2 × 2 norm of block norms used to
    square 1e160, reach inf − inf = NaN, and certify reported a false FAIL)."""
    rng = np.random.default_rng(2)
    n, G = 3, 4 if cls is LSTM else 3
    m = cls(rng.normal(size=(G * n, 1)), scale * rng.normal(size=(G * n, n)),
            rng.normal(size=G * n), np.zeros(G * n))
    tr = m.forward(rng.normal(size=(8, 1)))
    assert not bad_steps(tr).any()
    b = bd.step_log_bounds(m, tr, "gated")
    assert np.all(np.isfinite(b) | np.isneginf(b))
    J = jac.step_jacobians(m, tr)
    with np.errstate(divide="ignore"):
        obs = np.log([np.linalg.norm(Ji, 2) for Ji in J])
    assert np.all(obs <= b + 1e-12)
    assert bd.certify(m, tr).holds


# ----------------------------------------------------------------------------- scale


def mp_log_sigma_max_2x2(W) -> float:
    """ln σ_max of a 2 × 2 matrix in mpmath (largest eigenvalue of WᵀW, closed form)."""
    mpmath.mp.dps = 50
    a, b = mpmath.mpf(float(W[0, 0])), mpmath.mpf(float(W[0, 1]))
    c, d = mpmath.mpf(float(W[1, 0])), mpmath.mpf(float(W[1, 1]))
    tr = a * a + b * b + c * c + d * d
    det = a * d - b * c
    lam = (tr + mpmath.sqrt(tr * tr - 4 * det * det)) / 2
    return float(mpmath.log(lam) / 2)


@pytest.mark.parametrize("scale", [1e300, 1.5e308, 1e-300, 5e-324])
def test_log_bounds_at_the_float64_limits(scale):
    """ln γ_W is formed from W scaled by a power of two, so Eq. 12's log bound
    is (t − k)·ln(σ_max γ_h) to rounding (mpmath oracle) also where σ_max itself
    is beyond float64 (1.5e308·[[1, 1], [1, 1]] has σ_max = 3e308: the bound
    was +inf) or subnormal; the leaky bounds likewise, and α = 1 gives the
    exact J = I bounds (0, not NaN from 0·inf)."""
    W = scale * np.array([[1.0, 1.0], [1.0, 1.0]]) if scale > 1 else scale * np.array([[1.0, 0.0], [1.0, 1.0]])
    ref = mp_log_sigma_max_2x2(W)
    got = bd.log_bound(W, "sigmoid", 3)
    assert got == pytest.approx(3 * (ref + math.log(0.25)), rel=1e-14)
    lk = bd.leaky_log_bound(W, "tanh", [0.5, 0.25], 2)
    big = ref + math.log(0.75)
    assert lk == pytest.approx(2 * float(mpmath.log(mpmath.mpf(0.5) + mpmath.e ** big)), rel=1e-14)
    assert bd.leaky_log_lower_bound(W, "tanh", 1.0, 4) == 0.0
    assert bd.leaky_log_bound(W, "tanh", 1.0, 4) == 0.0
    expected_lower = -math.inf if scale > 1e-300 else 4 * float(
        mpmath.log(mpmath.mpf(0.5) - mpmath.mpf(0.5) * mpmath.e ** mpmath.mpf(ref)))
    assert bd.leaky_log_lower_bound(W, "tanh", 0.5, 4) == pytest.approx(expected_lower, rel=1e-14)


def test_trajectory_bounds_and_lyapunov_for_weights_near_1e308():
    """A linear model resting at h = 0 has J_i = W at every step. With
    W = 1.5e308·[[1, 1], [1, 1]] (σ_max = 3e308, beyond float64): the step
    bounds are ln 3e308 (mpmath), ln‖W^t‖ = t·ln 3e308 (W^t = 2^(t−1)·1.5e308^t·
    [[1, 1], [1, 1]] in closed form), the certificate holds, and the leading
    Lyapunov exponent of the scaled QR steps is ln 3e308 (the unscaled QR
    overflowed to inf; the second exponent is far below, W having rank one)."""
    W = 1.5e308 * np.ones((2, 2))
    m = ElmanRNN(W, np.zeros((2, 1)), np.zeros(2), activation="identity")
    tr = m.forward(np.zeros((6, 1)))
    assert np.all(tr.h == 0)
    long = m.forward(np.zeros((400, 1)))
    ln_sigma = mp_log_sigma_max_2x2(W)
    for name in ("eq12", "activation", "step_norm"):
        np.testing.assert_allclose(bd.step_log_bounds(m, tr, name), ln_sigma, rtol=1e-14)
    L = jac.log_norms(m, tr)
    for t in range(1, 7):
        assert L[t, 0] == pytest.approx(t * ln_sigma, rel=1e-13)
    assert bd.certify(m, tr).holds
    # the first QR step sees the random frame, every later one the dominant
    # direction: λ_1 = ln σ_max up to (ln σ_max − ln‖W q_1‖)/T
    lam = jac.lyapunov_spectrum(m, long)
    assert lam[0] == pytest.approx(ln_sigma, rel=1e-4) and lam[0] <= ln_sigma + 1e-12
    assert lam[1] < lam[0] - 30  # rank one: only rounding is left along the second direction


def test_lyapunov_of_a_scaled_rotation_is_its_log_scale():
    """W = s·Q with Q orthogonal and s = 1.7e308: every exponent is ln s
    (each QR step of s·Q has |R_jj| = s); unscaled, J·Q overflowed."""
    s = 1.7e308
    m = ElmanRNN(s * _rotation(0.4), np.zeros((2, 1)), np.zeros(2), activation="identity")
    lam = jac.lyapunov_spectrum(m, m.forward(np.zeros((5, 1))))
    np.testing.assert_allclose(lam, math.log(s), rtol=1e-14)
