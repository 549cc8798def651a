"""The shared oracles, each against closed forms it does not compute itself."""

from __future__ import annotations

import doctest

import mpmath
import naive
import numpy as np
import pytest

import rnntheory._oracles as oracles
from rnntheory._oracles import (
    central_gradient,
    central_jacobian,
    complex_step_gradient,
    complex_step_jacobian,
    elman_step,
    mp_log_norms,
    rel_err,
)
from rnntheory.cells.elman import ElmanRNN


def test_docstring_examples_run():
    result = doctest.testmod(oracles, raise_on_error=False)
    assert result.attempted >= 10 and result.failed == 0


# ----------------------------------------------------------------------------- differences
W3 = np.array([[0.5, -1.0, 0.3], [2.0, 0.25, -0.7], [0.1, 0.9, 1.5]])
X3 = np.array([0.3, -0.2, 0.45])


def _tanh_jac(W, x):
    return (1.0 / np.cosh(W @ x) ** 2)[:, None] * W


@pytest.mark.parametrize("relative", [False, True])
def test_central_jacobian_of_a_cubic_and_of_tanh(relative):
    """``∂x³/∂x = diag(3x²)`` and ``∂tanh(Wx)/∂x = diag(sech²(Wx)) W`` to 1e-8."""
    x = np.array([0.7, -1.3, 2.5, 0.0])
    J = central_jacobian(lambda v: v**3, x, relative=relative)
    np.testing.assert_allclose(J, np.diag(3 * x**2), rtol=0, atol=1e-8 * max(1.0, np.max(3 * x**2)))
    J = central_jacobian(lambda v: np.tanh(W3 @ v), X3, relative=relative)
    np.testing.assert_allclose(J, _tanh_jac(W3, X3), rtol=0, atol=1e-9)


def test_central_jacobian_numerator_layout_of_a_rectangular_map():
    """``f(x) = A x`` with ``A`` (2, 3): ``J = A`` (rows index outputs), exact to 1e-9."""
    A = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 0.0]])
    J = central_jacobian(lambda v: A @ v, np.array([0.1, 0.2, 0.3]))
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, A, rtol=0, atol=1e-9)


def test_central_jacobian_of_a_scalar_function_of_a_matrix_is_its_gradient():
    """``∂ tr(Wᵀ A W)/∂W = (A + Aᵀ) W`` (shape of W)."""
    A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 2.0]])
    W = np.array([[0.2, -0.4], [1.1, 0.3], [-0.6, 0.9]])
    G = central_jacobian(lambda M: np.trace(M.T @ A @ M), W)
    assert G.shape == W.shape
    np.testing.assert_allclose(G, (A + A.T) @ W, rtol=0, atol=1e-8)


def test_relative_step_follows_the_coordinate_scale():
    """At ``x = 1e150`` an absolute step of 1e-6 is below one ulp (the difference
    is 0); the relative step ``eps·|x|`` recovers ``∂x²/∂x = 2x`` to 1e-9; at
    ``x = 1e-300`` the two steps are equal (``max(1, |x|) = 1``)."""
    x = np.array([1e150])
    assert central_jacobian(lambda v: v * v, x)[0, 0] == 0.0
    got = central_jacobian(lambda v: v * v, x, relative=True)[0, 0]
    assert got == pytest.approx(2e150, rel=1e-9)
    tiny = np.array([1e-300, 5e-324])
    a = central_jacobian(lambda v: np.sin(v), tiny)
    b = central_jacobian(lambda v: np.sin(v), tiny, relative=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.diag(a), np.cos(tiny), rtol=1e-9)


def test_complex_step_of_a_cubic_and_of_tanh_to_rounding():
    """Complex step has no cancellation: ``3x²`` and ``diag(sech²(Wx)) W`` to ~1e-15.
    Its truncation error is absolute: ``Im (x + ih)³ / h = 3x² − h²``, so at
    ``x = 1e-300`` (where 3x² underflows to 0) the oracle gives ``−h² = −1e-60``."""
    x = np.array([0.7, -1.3, 2.5, 1e100])
    J = complex_step_jacobian(lambda v: v**3, x)
    np.testing.assert_allclose(np.diag(J), 3 * x**2, rtol=2e-16)
    assert complex_step_jacobian(lambda v: v**3, np.array([1e-300]))[0, 0] == pytest.approx(-1e-60, rel=1e-15)
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), 0.0)
    J = complex_step_jacobian(lambda v: np.tanh(W3 @ v), X3)
    np.testing.assert_allclose(J, _tanh_jac(W3, X3), rtol=1e-15, atol=1e-16)


def test_complex_step_beats_central_on_exp():
    """``d eˣ/dx`` at 0.5 (mpmath's e^0.5 rounded): complex step to 2 ulp, central to 1e-9."""
    x = np.array([0.5])
    exact = float(mpmath.e ** mpmath.mpf(0.5))
    assert complex_step_jacobian(np.exp, x)[0, 0] == pytest.approx(exact, rel=4.5e-16)
    assert central_jacobian(np.exp, x)[0, 0] == pytest.approx(exact, rel=1e-9)


def test_central_differences_of_an_mpmath_function_are_taken_in_mpmath():
    """``f(x) = 1e20 + x²/2`` in mpmath (60 digits): in float64 the two values
    round to the same number and the difference is 0; the oracle subtracts the
    mpmath values, then rounds: ``∂f/∂x = x`` to 1e-9, a float64 array."""
    with mpmath.workdps(60):
        G = central_jacobian(lambda v: mpmath.mpf(10) ** 20 + mpmath.mpf(float(v[0])) ** 2 / 2,
                             np.array([0.75]))
    assert G.dtype == np.float64 and G.shape == (1,)
    assert G[0] == pytest.approx(0.75, rel=1e-9)


def test_empty_point_gives_an_empty_jacobian():
    x = np.zeros(0)
    assert central_jacobian(lambda v: np.ones(2) + v.sum(), x).shape == (2, 0)
    assert complex_step_jacobian(lambda v: np.ones(2) + v.sum(), x).shape == (2, 0)


def _quadratic(q):
    return q["u"] @ q["A"] @ q["u"] + np.sum(q["b"] ** 3)


P_QUAD = {"A": np.array([[1.0, 2.0], [0.0, 3.0]]), "u": np.array([0.5, -1.0]),
          "b": np.array([1.5, -0.25, 2.0]), "none": None}


def _quadratic_grads(p):
    return {"A": np.outer(p["u"], p["u"]), "u": (p["A"] + p["A"].T) @ p["u"], "b": 3 * p["b"] ** 2}


@pytest.mark.parametrize(("oracle", "tol"), [(central_gradient, 1e-8), (complex_step_gradient, 1e-15)])
def test_gradients_of_a_parameter_dict(oracle, tol):
    """``uᵀAu + Σ b³``: ``∂/∂A = uuᵀ``, ``∂/∂u = (A + Aᵀ)u``, ``∂/∂b = 3b²``;
    None values are skipped and the point is left untouched."""
    before = {k: None if v is None else v.copy() for k, v in P_QUAD.items()}
    g = oracle(_quadratic, P_QUAD)
    assert set(g) == {"A", "u", "b"}
    for k, ref in _quadratic_grads(P_QUAD).items():
        np.testing.assert_allclose(g[k], ref, rtol=tol, atol=tol)
    for k, v in before.items():
        if v is not None:
            np.testing.assert_array_equal(P_QUAD[k], v)
    only = oracle(_quadratic, P_QUAD, keys=["b"])
    assert set(only) == {"b"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: central_jacobian(np.sin, np.ones(2), eps=0.0), r"`eps` must be > 0\.0, got 0\.0"),
        (lambda: central_jacobian(np.sin, np.ones(2), eps=float("nan")), r"`eps` must be finite, got nan"),
        (lambda: complex_step_jacobian(np.sin, np.ones(2), h=-1e-30), r"`h` must be > 0\.0, got -1e-30"),
        (lambda: central_gradient(_quadratic, P_QUAD, eps=float("inf")), r"`eps` must be finite"),
        (lambda: complex_step_gradient(_quadratic, P_QUAD, h=0), r"`h` must be > 0\.0, got 0\.0"),
        (lambda: elman_step(np.eye(2), np.eye(2), np.zeros(2), np.zeros(2), np.zeros(2), form="leaky"),
         r"`form` must be one of \('standard', 'pascanu'\), got 'leaky'"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rel_err_is_absolute_below_one_and_relative_above():
    assert rel_err([101.0, 0.0], [100.0, 0.0]) == pytest.approx(0.01, rel=1e-15)
    assert rel_err([0.25], [0.5]) == 0.25
    assert rel_err([1e300], [1e300]) == 0.0
    assert rel_err(np.array([[2e-300]]), np.array([[1e-300]])) == 1e-300


# ----------------------------------------------------------------------------- mpmath log-norms
def _rot(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _mp_ln_sigma_max_2x2(M):
    """ln σ_max of a 2×2 mpmath matrix in closed form: σ² are the roots of
    ``s² − ‖M‖_F² s + det(M)² = 0``."""
    fro = sum(M[i, j] ** 2 for i in range(2) for j in range(2))
    det = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
    disc = mpmath.sqrt((fro - 2 * det) * (fro + 2 * det))
    return mpmath.log((fro + disc) / 2) / 2


@pytest.mark.parametrize(
    "scale", [1.0, 1e-300, 5e-324, 1e300, 2.2250738585072014e-308],
)
def test_mp_log_norms_against_closed_forms_in_2x2(scale):
    """Known SVDs: ``J = R(θ) diag(s, s/3)`` has σ_max(J) = s and the products of
    rotations and diagonals in closed form (mpmath at 60 digits); entries 1e-300
    and subnormal make the float64 products underflow, the oracle does not."""
    Js = np.stack([
        _rot(0.3) @ np.diag([scale, scale / 3]),
        np.array([[scale, 2 * scale], [0.0, 0.0]]),
        np.diag([2.0, 0.5]) @ _rot(-1.1),
    ])
    L = mp_log_norms(Js)
    T = Js.shape[0]
    with mpmath.workdps(60):
        mats = [mpmath.matrix(J.tolist()) for J in Js]
        for t in range(T + 1):
            assert L[t, t] == 0.0
            P = mpmath.eye(2)
            for k in range(t - 1, -1, -1):
                P = P * mats[k]
                ref = float(_mp_ln_sigma_max_2x2(P))
                assert L[t, k] == pytest.approx(ref, rel=1e-14, abs=1e-14), (t, k)
            for k in range(t + 1, T + 1):
                assert L[t, k] == -np.inf
    # σ_max of the first matrix is s itself (s/3 may round, s does not)
    assert L[1, 0] == pytest.approx(float(mpmath.log(mpmath.mpf(scale))), rel=1e-15)


def test_mp_log_norms_beyond_the_float_range_and_exact_zeros():
    """``diag(1e-300, 5e-324)³``: ln σ_max = 3 ln 1e-300 (the float64 product is 0);
    a zero matrix makes that product and every longer one ``-inf``."""
    J = np.stack([np.diag([1e-300, 5e-324])] * 3 + [np.zeros((2, 2)), np.eye(2)])
    L = mp_log_norms(J)
    ln = float(3 * mpmath.log(mpmath.mpf(1e-300)))
    assert L[3, 0] == pytest.approx(ln, rel=1e-15)
    assert np.prod(np.diag(J[0])) ** 3 == 0.0
    assert L[4, 3] == -np.inf and np.all(L[4, :4] == -np.inf) and np.all(L[5, :4] == -np.inf)
    assert L[5, 4] == 0.0


def test_mp_log_norms_agrees_with_the_eigenvalue_oracle():
    """Against tests/naive.py's log_norms_mp (σ_max from the eigenvalues of PᵀP)."""
    rng = np.random.default_rng(3)
    J = rng.normal(size=(5, 3, 3)) * np.array([1e-120, 1.0, 1e80])[:, None, None][[0, 1, 2, 1, 0]]
    np.testing.assert_allclose(mp_log_norms(J), naive.log_norms_mp(J), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------- the Elman step
FORMS = [("standard", None), ("pascanu", None), ("standard", 0.3), ("pascanu", "vector")]


@pytest.mark.parametrize(("form", "alpha"), FORMS)
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "identity"])
def test_elman_step_equals_the_loop_reference(form, alpha, act):
    rng = np.random.default_rng(7)
    n = 4
    a = rng.uniform(0.1, 0.9, n) if alpha == "vector" else alpha
    m = ElmanRNN(rng.normal(size=(n, n)), rng.normal(size=(n, 2)), rng.normal(size=n),
                 activation=act, form=form, alpha=a)
    for scale in (1e-300, 1.0, 30.0):
        h, x = rng.normal(size=n) * scale, rng.normal(size=2)
        got = elman_step(m.W_hh, m.W_hx, m.b_h, h, x, f=m.activation.f, form=form, alpha=m.alpha)
        # the reference's σ = (1 + tanh(a/2))/2 has an absolute rounding error of
        # about u/2 where σ is tiny; tanh and the identity are compared relatively
        atol = 2.3e-16 if act == "sigmoid" else 1e-300
        np.testing.assert_allclose(got, naive.step(m, h, x), rtol=1e-15, atol=atol)


@pytest.mark.parametrize(("form", "alpha"), FORMS)
def test_complex_step_of_the_elman_step_is_its_step_jacobian(form, alpha):
    """The complex perturbation flows through ``elman_step`` (tanh): its
    complex-step Jacobian is Eq. 9's closed form (``α I + (1 − α) diag(f′(a)) W``
    for the standard form, ``α I + (1 − α) W diag(f′(h))`` for Pascanu's) to 1e-15."""
    rng = np.random.default_rng(8)
    n = 3
    a = rng.uniform(0.1, 0.9, n) if alpha == "vector" else alpha
    W, U, b = rng.normal(size=(n, n)), rng.normal(size=(n, 2)), rng.normal(size=n)
    h, x = rng.normal(size=n), rng.normal(size=2)
    J = complex_step_jacobian(lambda v: elman_step(W, U, b, v, x, form=form, alpha=a), h)
    if form == "standard":
        ref = (1.0 / np.cosh(W @ h + U @ x + b) ** 2)[:, None] * W
    else:
        ref = W * (1.0 / np.cosh(h) ** 2)[None, :]
    if a is not None:
        av = np.broadcast_to(np.asarray(a, float), (n,))
        ref = np.diag(av) + (1.0 - av)[:, None] * ref
    np.testing.assert_allclose(J, ref, rtol=1e-14, atol=1e-15)
