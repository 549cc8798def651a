"""Cells of one's own: a SymPy update, its Jacobian, claims checked, trajectories analysed.

Oracles: complex-step and central differences of the lambdified *update* (not
of SymPy's derivative); the library's own ElmanRNN route for an Elman cell
written as a custom expression; mpmath at 60 digits, from formulas written
out here, for every counterexample.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rnntheory import CustomRNN, CustomTrace, ElmanRNN, bounds, jacobians
from rnntheory._oracles import central_jacobian, complex_step_jacobian
from rnntheory.symbolic import check_bound, check_jacobian, custom_cell
from rnntheory.symbolic.custom import claim_expression

R = {"real": True}


@functools.cache
def _indrnn(act=sp.tanh, n: int = 2):  # type: ignore[no-untyped-def]
    h = sp.Matrix(sp.symbols(f"h0:{n}", **R))
    x = sp.Matrix([sp.Symbol("x", **R)])
    w = sp.Matrix(sp.symbols(f"w0:{n}", **R))
    u = sp.Matrix(sp.symbols(f"u0:{n}", **R))
    a = sp.matrix_multiply_elementwise(w, h) + u * x[0]
    cell = custom_cell(a.applyfunc(act), h, x, params={"w": w, "u": u}, name="IndRNN")
    return cell, h, x, w, u, a


@functools.cache
def _elman(n: int = 2, n_in: int = 1):  # type: ignore[no-untyped-def]
    h = sp.Matrix(sp.symbols(f"h0:{n}", **R))
    x = sp.Matrix(sp.symbols(f"x0:{n_in}", **R))
    W = sp.Matrix(n, n, sp.symbols(f"W0:{n * n}", **R))
    U = sp.Matrix(n, n_in, sp.symbols(f"U0:{n * n_in}", **R))
    b = sp.Matrix(sp.symbols(f"b0:{n}", **R))
    cell = custom_cell((W * h + U * x + b).applyfunc(sp.tanh), h, x,
                       params={"W_hh": W, "W_hx": U, "b": b}, name="Elman")
    return cell, h, x, W, U, b


@pytest.fixture(scope="module")
def indrnn():  # type: ignore[no-untyped-def]
    return _indrnn()


@pytest.fixture(scope="module")
def elman():  # type: ignore[no-untyped-def]
    return _elman()


# ----------------------------------------------------------------------------- the Jacobian
def _point(cell, rng):  # type: ignore[no-untyped-def]
    return rng.normal(size=len(cell.symbols))


@functools.cache
def _compiled(which: str):  # type: ignore[no-untyped-def]
    """A cell, its update and its SymPy Jacobian compiled to NumPy (once per cell)."""
    cell = {"indrnn": lambda: _indrnn()[0], "elman": lambda: _elman()[0], "mgu": lambda: _mgu()[0]}[which]()
    syms = list(cell.symbols)
    return cell, sp.lambdify(syms, list(cell.update), "numpy"), sp.lambdify(syms, cell.step_jacobian(), "numpy")


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["indrnn", "elman", "mgu"]))
def test_symbolic_jacobian_is_the_complex_step_derivative_of_the_update(seed: int, which: str) -> None:
    """∂F/∂h from SymPy equals Im F(h + i·ε e_j)/ε of the lambdified update F
    (complex step: exact to rounding for analytic F), at random points."""
    cell, F, J = _compiled(which)
    p = _point(cell, np.random.default_rng(seed))
    n = cell.n

    def upd(hz: np.ndarray) -> np.ndarray:
        return np.array(F(*hz, *p[n:]), dtype=complex)

    oracle = complex_step_jacobian(upd, p[:n])
    np.testing.assert_allclose(np.asarray(J(*p), float), oracle, rtol=1e-12, atol=1e-14)


@functools.cache
def _mgu():  # type: ignore[no-untyped-def]
    """A minimal gated unit (Zhou et al. 2016): f = σ(w_f h + u_f x), h̃ = tanh(w (f h) + u x),
    h′ = (1 − f) h + f h̃; one unit."""
    h, x, wf, uf, w, u = sp.symbols("h x w_f u_f w u", **R)
    f = 1 / (1 + sp.exp(-(wf * h + uf * x)))
    upd = (1 - f) * h + f * sp.tanh(w * f * h + u * x)
    return custom_cell(upd, h, x, params={"w_f": wf, "u_f": uf, "w": w, "u": u}, name="MGU"), h


def test_relu_jacobian_matches_central_differences() -> None:
    """Away from the kink, the ReLU cell's Jacobian diag(H(a)) ⊙ w is the
    central difference of the update."""
    cell, *_ = _indrnn(lambda a: sp.Max(0, a))
    num = cell.lambdify()
    rng = np.random.default_rng(3)
    p = {"w": rng.normal(size=2), "u": rng.normal(size=2)}
    for _ in range(5):
        h, x = rng.normal(size=(1, 2)), rng.normal(size=(1, 1))
        fd = central_jacobian(lambda v, x=x: num.update(v[None, :], x, p)[0], h[0])
        np.testing.assert_allclose(num.step_jacobian(h, x, p)[0], fd, atol=1e-8)


# ----------------------------------------------------------------------------- Jacobian claims
def test_true_jacobian_claim_is_proved(indrnn) -> None:  # type: ignore[no-untyped-def]
    cell, _h, _x, w, _u, a = indrnn
    claim = sp.diag(*[w[i] / sp.cosh(a[i]) ** 2 for i in range(2)])  # diag(f′(a) ⊙ w)
    res = check_jacobian(cell, claim)
    assert res.verdict == "proved" and res.proved and bool(res)
    assert res.identity is not None and res.identity.holds
    assert sp.Matrix(res.identity.residual).is_zero_matrix
    assert res.counterexample is None and res.n_samples == 0


def test_jacobian_missing_a_transpose_is_refuted_by_an_exact_point(elman) -> None:  # type: ignore[no-untyped-def]
    """Claim diag(f′(a)) W_hhᵀ (a transpose too many): the counterexample is
    re-computed here with mpmath at 60 digits from the formula diag(sech²(a)) W_hh."""
    cell, h, x, W, U, b = elman
    a = W * h + U * x + b
    res = check_jacobian(cell, sp.diag(*[1 - sp.tanh(ai) ** 2 for ai in a]) * W.T)
    assert res.verdict == "refuted" and not res and res.refuted
    ce = res.counterexample
    assert ce is not None
    assert all(isinstance(v, sp.Rational) for v in ce.point.values())
    with mpmath.workdps(60):
        val = {str(k): mpmath.mpf(v.p) / v.q for k, v in ce.point.items()}
        Wm = mpmath.matrix([[val[f"W{2 * i + j}"] for j in range(2)] for i in range(2)])
        hv = mpmath.matrix([val["h0"], val["h1"]])
        av = Wm * hv + mpmath.matrix([val["U0"] * val["x0"] + val["b0"], val["U1"] * val["x0"] + val["b1"]])
        s = [mpmath.sech(av[i]) ** 2 for i in range(2)]
        truth = [[s[i] * Wm[i, j] for j in range(2)] for i in range(2)]
        claim = [[s[i] * Wm[j, i] for j in range(2)] for i in range(2)]
        gap = max(abs(truth[i][j] - claim[i][j]) for i in range(2) for j in range(2))
        assert gap > mpmath.mpf(10) ** -6
        assert abs(gap - ce.gap) < 1e-12 * (1 + gap)
        for i in range(2):
            for j in range(2):
                assert abs(truth[i][j] - ce.actual[i, j]) < mpmath.mpf(10) ** -40
                assert abs(claim[i][j] - ce.claimed[i, j]) < mpmath.mpf(10) ** -40


def test_claim_differing_only_off_the_samples_is_not_proved() -> None:
    """J = Heaviside(h) for the ReLU unit h′ = max(0, h); the claim 1 is false only
    for h < 0 — on a domain h ∈ [0, 1] no point refutes it, and the verdict
    stays 'not refuted' (or 'proved' only if SymPy proves it), never a false refutation."""
    h, x = sp.symbols("h x", **R)
    cell = custom_cell(sp.Max(0, h) + x, h, x)
    res = check_jacobian(cell, sp.Integer(1), domain={h: (0.5, 1)}, n_samples=50)
    assert res.verdict in ("not refuted", "proved")
    assert res.counterexample is None
    bad = check_jacobian(cell, sp.Integer(1), n_samples=50)
    assert bad.verdict == "refuted"
    assert bad.counterexample is not None and bad.counterexample.point[h] < 0


# ----------------------------------------------------------------------------- bound claims
def test_entrywise_bound_of_a_diagonal_jacobian_is_proved() -> None:
    """IndRNN with tanh: |w_i tanh′(a_i)| ≤ |w_i| ≤ max_i |w_i|, proved from the diagonal."""
    cell, _h, _x, w, _u, _a = _indrnn(n=1)
    res = check_bound(cell, sp.Abs(w[0]))
    assert res.verdict == "proved" and res.n_samples == 0


def test_false_bound_is_refuted_and_the_point_really_violates_it(elman) -> None:  # type: ignore[no-untyped-def]
    """‖J‖₂ ≤ max_i Σ_j |W_ij| (the max row sum: the ∞-norm, not the 2-norm) is
    false; the counterexample's ‖J‖₂ is recomputed with mpmath's SVD."""
    cell, _h, _x, W, _U, _b = elman
    claim = sp.Max(sp.Abs(W[0, 0]) + sp.Abs(W[0, 1]), sp.Abs(W[1, 0]) + sp.Abs(W[1, 1]))
    res = check_bound(cell, claim, n_samples=200, n_starts=1)
    assert res.verdict == "refuted"
    ce = res.counterexample
    assert ce is not None
    with mpmath.workdps(60):
        val = {str(k): mpmath.mpf(v.p) / v.q for k, v in ce.point.items()}
        Wm = mpmath.matrix([[val[f"W{2 * i + j}"] for j in range(2)] for i in range(2)])
        av = Wm * mpmath.matrix([val["h0"], val["h1"]])
        av += mpmath.matrix([val["U0"] * val["x0"] + val["b0"], val["U1"] * val["x0"] + val["b1"]])
        J = mpmath.diag([mpmath.sech(av[i]) ** 2 for i in range(2)]) * Wm
        norm = max(mpmath.svd_r(J, compute_uv=False))
        gamma = max(abs(Wm[0, 0]) + abs(Wm[0, 1]), abs(Wm[1, 0]) + abs(Wm[1, 1]))
        assert norm > gamma
        assert abs(norm - ce.actual) < mpmath.mpf(10) ** -40
        assert abs(gamma - ce.claimed) < mpmath.mpf(10) ** -40


def test_true_bound_that_sympy_cannot_prove_is_only_not_refuted(elman) -> None:  # type: ignore[no-untyped-def]
    """‖diag(sech²(a)) W‖₂ ≤ ‖W‖_F is true but not diagonal: a search, never 'proved'."""
    cell, _h, _x, W, _U, _b = elman
    res = check_bound(cell, sp.sqrt(sum(v**2 for v in W)), n_samples=100, n_starts=1)
    assert res.verdict == "not refuted" and not res
    assert res.n_samples >= 100 and "not a proof" in res.evidence
    assert res.worst is not None and res.worst.gap <= 0


def test_symbols_with_assumptions_are_sampled_within_them() -> None:
    """For w > 0, the claim J = |w| of the linear unit h′ = w h + x is true (proved)
    and ‖J‖ ≤ w too; for a real w the same claim is refuted at a negative w."""
    h, x = sp.symbols("h x", real=True)
    wp = sp.Symbol("w", positive=True)
    assert check_jacobian(custom_cell(wp * h + x, h, x, params={"w": wp}), sp.Abs(wp)).verdict == "proved"
    assert check_bound(custom_cell(wp * h + x, h, x, params={"w": wp}), wp).verdict == "proved"
    w = sp.Symbol("w", real=True)
    res = check_jacobian(custom_cell(w * h + x, h, x, params={"w": w}), sp.Abs(w), n_samples=30)
    assert res.verdict == "refuted" and res.counterexample is not None
    assert res.counterexample.point[w] < 0


def test_counterexample_stays_in_a_tiny_domain_and_huge_ranges_do_not_overflow() -> None:
    """With h ∈ [5e-324, 1e-300] (subnormal to tiny) the rounded point would be h = 0,
    outside the domain: the exact float is kept. The claim J = w is false where
    w h + x ≠ 0; mpmath confirms |w − w sech²(w h + x)| > 0 there. A domain of
    ±1e308 samples without overflow warnings (pytest turns them into errors)."""
    h, x, w = sp.symbols("h x w", **R)
    cell = custom_cell(sp.tanh(w * h + x), h, x, params={"w": w})
    res = check_jacobian(cell, w, domain={w: (-3, 3), h: (5e-324, 1e-300)}, n_samples=20)
    assert res.verdict == "refuted"
    pt = res.counterexample.point
    assert 5e-324 <= float(pt[h]) <= 1e-300
    with mpmath.workdps(60):
        v = {s: mpmath.mpf(r.p) / r.q for s, r in pt.items()}
        assert abs(v[w] - v[w] * mpmath.sech(v[w] * v[h] + v[x]) ** 2) > mpmath.mpf(10) ** -20
    big = check_bound(cell, sp.Abs(w) / 2, domain={w: (-1e308, 1e308)}, n_samples=20, n_starts=1)
    assert big.verdict == "refuted" and big.counterexample.actual > big.counterexample.claimed


# ----------------------------------------------------------------------------- trajectories
def test_custom_elman_route_equals_the_builtin_elman(elman) -> None:  # type: ignore[no-untyped-def]
    """The same Elman cell through CustomRNN and through ElmanRNN: same states,
    step Jacobians, log_norms (1e-12), profile and Lyapunov exponents."""
    cell = elman[0]
    m = ElmanRNN.init(1, 2, None, scheme="gaussian", scale=1.4, seed=5)
    c = CustomRNN(cell, {"W_hh": m.W_hh, "W_hx": m.W_hx, "b": m.b_h})
    x = np.random.default_rng(1).normal(size=(25, 1))
    t1, t2 = m.forward(x), c.forward(x)
    assert isinstance(t2, CustomTrace)
    np.testing.assert_allclose(t2.h, t1.h, rtol=0, atol=1e-14)
    np.testing.assert_allclose(jacobians.step_jacobians(c, t2), jacobians.step_jacobians(m, t1), rtol=1e-13, atol=1e-15)
    L1, L2 = jacobians.log_norms(m, t1), jacobians.log_norms(c, t2)
    fin = np.isfinite(L1)
    assert np.array_equal(fin, np.isfinite(L2)) and np.array_equal(np.isneginf(L1), np.isneginf(L2))
    assert np.max(np.abs(L1[fin] - L2[fin])) < 1e-12
    np.testing.assert_allclose(jacobians.log_norm_profile(c, t2, 3), jacobians.log_norm_profile(m, t1, 3), atol=1e-12)
    np.testing.assert_allclose(jacobians.lyapunov_spectrum(c, t2), jacobians.lyapunov_spectrum(m, t1), atol=1e-12)
    np.testing.assert_allclose(jacobians.input_jacobians(c, t2), jacobians.input_jacobians(m, t1), atol=1e-14)
    np.testing.assert_allclose(bounds.step_log_bounds(c, t2, "step_norm"),
                               bounds.step_log_bounds(m, t1, "step_norm"), atol=1e-12)


def test_leaky_pascanu_cell_written_out_equals_the_builtin_leaky_pascanu_elman() -> None:
    """Eq. 14 around Pascanu's form, h′ = α ⊙ h + (1 − α) ⊙ (W_hh tanh(h) + W_hx x + b),
    with α a parameter of the custom cell: log_norms equal ElmanRNN(form="pascanu",
    alpha=α)'s to 1e-12."""
    h = sp.Matrix(sp.symbols("h0:2", **R))
    x = sp.Matrix([sp.Symbol("x", **R)])
    W = sp.Matrix(2, 2, sp.symbols("W0:4", **R))
    U = sp.Matrix(sp.symbols("U0:2", **R))
    b = sp.Matrix(sp.symbols("b0:2", **R))
    al = sp.Matrix(sp.symbols("alpha0:2", **R))
    g = W * h.applyfunc(sp.tanh) + U * x[0] + b
    upd = sp.Matrix([al[i] * h[i] + (1 - al[i]) * g[i] for i in range(2)])
    cell = custom_cell(upd, h, x, params={"W_hh": W, "W_hx": U, "b": b, "alpha": al}, name="leaky Pascanu")
    rng = np.random.default_rng(4)
    Wv, Uv, bv, av = rng.normal(size=(2, 2)) * 1.5, rng.normal(size=(2, 1)), rng.normal(size=2), np.array([0.3, 0.8])
    m = ElmanRNN(Wv, Uv, bv, form="pascanu", alpha=av)
    c = CustomRNN(cell, {"W_hh": Wv, "W_hx": Uv, "b": bv, "alpha": av})
    xs = rng.normal(size=(30, 1))
    t1, t2 = m.forward(xs), c.forward(xs)
    np.testing.assert_allclose(t2.h, t1.h, atol=1e-13)
    L1, L2 = jacobians.log_norms(m, t1), jacobians.log_norms(c, t2)
    fin = np.isfinite(L1)
    assert np.array_equal(fin, np.isfinite(L2)) and np.max(np.abs(L1[fin] - L2[fin])) < 1e-12


def test_claimed_bound_certified_along_a_trajectory(indrnn) -> None:  # type: ignore[no-untyped-def]
    """IndRNN: the proved γ = max|w_i| bounds every ‖∂h_t/∂h_k‖ by γ^(t−k); the
    false γ/4 does not (at steps where the units are not saturated)."""
    cell, _h, _x, w, _u, _a = indrnn
    p = {"w": np.array([1.5, -0.7]), "u": np.array([0.3, 0.2])}
    gamma = sp.Max(sp.Abs(w[0]), sp.Abs(w[1]))
    ok = CustomRNN(cell, p, bound=gamma)
    tr = ok.forward(np.random.default_rng(2).normal(size=(20, 1)) * 0.1)
    np.testing.assert_allclose(bounds.step_log_bounds(ok, tr, "claim"), np.full(20, np.log(1.5)), rtol=1e-15)
    cert = bounds.certify(ok, tr)
    assert cert.holds and [c.name for c in cert.checks] == ["claim", "step_norm"]
    bad = CustomRNN(cell, p, bound=gamma / 4)
    c2 = bounds.certify(bad, tr, bounds=("claim",))["claim"]
    assert not c2.holds and c2.max_log_ratio > 0
    # the observed norm of one step is max_i |w_i sech²(a_i)|: recomputed here
    a1 = p["w"] * tr.h[0] + p["u"] * tr.x[0, 0]
    assert np.isclose(np.exp(cert.log_norms[1, 0]), np.max(np.abs(p["w"] / np.cosh(a1) ** 2)), rtol=1e-13)


@settings(max_examples=10, deadline=None)
@given(
    st.lists(st.floats(-3, 3), min_size=2, max_size=2),
    st.lists(st.floats(-3, 3), min_size=2, max_size=2),
    st.integers(0, 2**32 - 1),
)
def test_proved_bound_holds_on_every_step_of_random_trajectories(w: list[float], u: list[float], seed: int) -> None:
    """The bound proved symbolically, ‖J_t‖₂ ≤ max_i |w_i| for the tanh IndRNN,
    holds numerically at every step of a trajectory: ln ‖J_t‖₂ (from the step
    Jacobians) ≤ ln γ (from the lambdified claim) up to rounding, and the
    observed norm equals max_i |w_i| sech²(a_i) recomputed here."""
    cell, _h, _x, ws, _u, _a = _indrnn()
    gamma = sp.Max(sp.Abs(ws[0]), sp.Abs(ws[1]))
    m = CustomRNN(cell, {"w": np.array(w), "u": np.array(u)}, bound=gamma)
    tr = m.forward(np.random.default_rng(seed).normal(size=(6, 1)))
    obs = bounds.step_log_bounds(m, tr, "step_norm")
    claim = bounds.step_log_bounds(m, tr, "claim")
    with np.errstate(divide="ignore"):
        assert np.all(obs <= claim + 1e-12)
        a = np.array(w) * tr.h[:-1] + np.array(u) * tr.x
        np.testing.assert_allclose(obs, np.log(np.max(np.abs(np.array(w) / np.cosh(a) ** 2), axis=1)), rtol=1e-13)


# ----------------------------------------------------------------------------- extremes
def test_overflowing_trajectory_gives_nan_steps_not_numbers() -> None:
    """h′ = w h + x with w = 1e300 and x = 1e10 overflows at step 2: the steps from
    there on cannot be evaluated (NaN), the first stays exact (ln 1e300)."""
    h, x, w = sp.symbols("h x w", **R)
    m = CustomRNN(custom_cell(w * h + x, h, x, params={"w": w}), {"w": 1e300})
    tr = m.forward(np.full((3, 1), 1e10))
    assert np.isinf(tr.h[2, 0])
    L = jacobians.log_norm_profile(m, tr)
    assert L[0] == 0 and np.isclose(L[1], np.log(1e300), rtol=1e-15) and np.isnan(L[2:]).all()
    with pytest.raises(ValueError, match="non-finite values from step 2"):
        jacobians.lyapunov_spectrum(m, tr)


def test_singular_jacobian_and_subnormal_parameters() -> None:
    """h′ = tanh(x) has J = 0: every product is exactly zero (ln = −inf). A
    subnormal w keeps its exact logarithm."""
    h, x, w = sp.symbols("h x w", **R)
    m = CustomRNN(custom_cell(sp.tanh(x) + 0 * h, h, x), {})
    L = jacobians.log_norms(m, m.forward(np.ones((3, 1))))
    assert np.isneginf(L[1:, 0]).all() and (np.diag(L) == 0).all()
    tiny = CustomRNN(custom_cell(w * h + x, h, x, params={"w": w}), {"w": 5e-324})
    prof = jacobians.log_norm_profile(tiny, tiny.forward(np.zeros((4, 1))))
    np.testing.assert_allclose(prof, np.arange(5) * np.log(5e-324), rtol=1e-15)


def test_abstract_activation_proves_but_does_not_evaluate() -> None:
    """With an undefined f, the chain rule is proved (J = w f′(w h + x)); numbers need a concrete f."""
    h, x, w = sp.symbols("h x w", **R)
    f = sp.Function("f")
    cell = custom_cell(f(w * h + x), h, x, params={"w": w})
    assert cell.abstract
    s = sp.Symbol("s", real=True)
    fprime = sp.Subs(sp.Derivative(f(s), s), s, w * h + x)   # f′ at the pre-activation
    assert check_jacobian(cell, w * fprime).verdict == "proved"
    res = check_jacobian(cell, fprime)   # the chain rule's factor w forgotten
    assert res.verdict != "proved"
    assert res.verdict == "not refuted" and "cannot be evaluated" in res.evidence
    with pytest.raises(ValueError, match=r"undefined function\(s\) \['f'\]"):
        CustomRNN(cell, {"w": 1.0})


# ----------------------------------------------------------------------------- bad input
H, X, W = sp.symbols("h x w", **R)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: custom_cell(W * H, "h", X, params={"w": W}), TypeError, r"`state` must be a SymPy symbol"),
        (lambda: custom_cell(W * H, [H + 1], X, params={"w": W}), TypeError, r"`state` must be a column of SymPy symbols"),
        (lambda: custom_cell(W * H, sp.Matrix([[H, X]]), W), ValueError, r"`state` must be a column of symbols .*got shape \(1, 2\)"),
        (lambda: custom_cell(sp.Matrix([W * H, H]), H, X, params={"w": W}), ValueError, r"`update` must have the shape of `state` \(1, 1\), got shape \(2, 1\)"),
        (lambda: custom_cell(W * H + sp.Symbol("q"), H, X, params={"w": W}), ValueError, r"free symbol\(s\) \['q'\]"),
        (lambda: custom_cell(H + X, H, H), ValueError, r"`inputs` must hold distinct symbols, got h \(also in `state`\)"),
        (lambda: custom_cell(W * H, H, X, params=[W]), TypeError, r"`params` must be a mapping"),
        (lambda: custom_cell(W * H, H, X, params={"not a name": W}), ValueError, r"`params` names must be identifiers"),
        (lambda: custom_cell(W * H, H, X, params={"w": W + 1}), TypeError, r"`params\['w'\]` must be a SymPy symbol"),
        (lambda: custom_cell("w*h", H, X), TypeError, r"strings are never parsed"),
        (lambda: custom_cell(sp.I * H, H, X), ValueError, r"`update` must be a real, finite expression"),
        (lambda: custom_cell(H, H, X, name=3), TypeError, r"`name` must be a str"),
        (lambda: check_jacobian("cell", 1), TypeError, r"`cell` must be a CustomCell"),
        (lambda: check_jacobian(custom_cell(W * H + X, H, X, params={"w": W}), sp.Matrix([[W, W]])), ValueError,
         r"`claim` must have the shape of the step Jacobian \(1, 1\), got shape \(1, 2\)"),
        (lambda: check_jacobian(custom_cell(W * H + X, H, X, params={"w": W}), sp.Symbol("z")), ValueError,
         r"`claim` holds the symbol\(s\) \['z'\], which are not the cell's"),
        (lambda: check_bound(custom_cell(W * H + X, H, X, params={"w": W}), 1, n_samples=0), ValueError,
         r"`n_samples` must lie in \[1, 1000000\], got 0"),
        (lambda: check_bound(custom_cell(W * H + X, H, X, params={"w": W}), 1, domain={W: (1, 0)}), ValueError,
         r"`domain\[w\]` must be finite with low <= high, got \(1.0, 0.0\)"),
        (lambda: claim_expression(custom_cell(W * H + X, H, X, params={"w": W}), sp.Matrix([1, 2])), ValueError,
         r"`bound` must be a scalar expression, got a matrix of shape \(2, 1\)"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {}), ValueError, r"missing 'w'"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": 1.0, "v": 2.0}), ValueError,
         r"no parameter\(s\) \['v'\]"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": [1.0, 2.0]}), ValueError,
         r"`params\['w'\]` must have shape \(\), got shape \(2,\)"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": np.nan}), ValueError,
         r"`params\['w'\]` must be finite"),
        (lambda: CustomRNN("cell"), TypeError, r"`cell` must be a CustomCell"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": 1.0}).forward(np.ones((2, 2))),
         ValueError, r"`x` must have shape \(T, n_in\) = \(T, 1\), got shape \(2, 2\)"),
        (lambda: CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": 1.0}).forward([[np.inf]]),
         ValueError, r"`x` must be finite"),
    ],
)
def test_bad_input(call, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        call()


def test_bad_bound_names_for_a_custom_model() -> None:
    m = CustomRNN(custom_cell(W * H + X, H, X, params={"w": W}), {"w": 0.5})
    tr = m.forward(np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"`bound` must be one of \('claim', 'step_norm'\) for a CustomRNN"):
        bounds.step_log_bounds(m, tr, "eq12")
    with pytest.raises(ValueError, match=r"`model` has no claimed bound"):
        bounds.step_log_bounds(m, tr, "claim")
    with pytest.raises(ValueError, match=r"`bounds` entries must be in \('claim', 'step_norm'\)"):
        bounds.certify(m, tr, bounds=("gated",))
    e = ElmanRNN.init(1, 1, None, seed=0)
    with pytest.raises(TypeError, match=r"`trace` \(CustomTrace\) was not made by a ElmanRNN"):
        jacobians.step_jacobians(e, tr)
