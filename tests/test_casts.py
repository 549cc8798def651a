"""Casts to a float32 model's dtype never make an infinity the caller did not pass.

A float64 array holding finite values beyond float32's range (``|v| ≳ 3.4e38``)
used to become ±inf on its way into a float32 model, and the model then
returned inf/NaN losses and gradients. Every public entry point that casts a
user array to the model dtype now refuses such values with a ``ValueError``
naming the argument; values inside the range (up to rounding at its edge) and
values that underflow are computed as the cast rounds them, and the
Gauss–Newton product, linear in ``v``, scales ``v`` instead of refusing it.
"""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.training.hessian_free import GaussNewton, gauss_newton_product, unflatten_params

F32 = np.float32
BIG = 1e39  # finite in float64, beyond float32's range
F32_MAX = float(np.finfo(F32).max)
# the smallest float64 that rounds to inf in float32: max + half an ulp (a tie,
# rounded to the even neighbour, which is the infinity)
F32_OVERFLOW = F32_MAX + 2.0**103

T, N_IN, N, M = 4, 2, 3, 3


def _big(shape, at=(0,), value=BIG):
    a = np.full(shape, 0.25)
    a[at] = value
    return a


def _models():
    return {
        "elman": ElmanRNN.init(N_IN, N, M, dtype=F32, seed=0),
        "lstm": LSTM.init(N_IN, N, M, dtype=F32, seed=0),
        "gru": GRU.init(N_IN, N, M, dtype=F32, seed=0),
        "generator": GeneratorRNN.init(N_IN, N, M, dtype=F32, seed=0),
    }


def _cases():
    ms = _models()
    x, y = np.full((T, N_IN), 0.25), np.zeros(T, dtype=int)
    ymse = np.zeros((T, M))
    xb = np.full((T, 2, N_IN), 0.25)
    cases = []
    for kind in ("elman", "lstm", "gru"):
        m = ms[kind]
        cases += [
            (f"{kind}.forward x", "x", lambda m=m: m.forward(_big((T, N_IN)))),
            (f"{kind}.forward x batched", "x", lambda m=m: m.forward(_big((T, 2, N_IN), at=(2, 1, 0)))),
            (f"{kind}.forward h0", "h0", lambda m=m: m.forward(x, h0=_big(N))),
            (f"{kind}.value_and_grad x", "x", lambda m=m: m.value_and_grad(_big((T, N_IN)), y)),
            (f"{kind}.value_and_grad y", "y", lambda m=m: m.value_and_grad(x, _big((T, M), value=-BIG), loss="mse")),
            (f"{kind}.value_and_grad y batched", "y",
             lambda m=m: m.value_and_grad(xb, _big((T, 2, M), at=(3, 1, 2)), loss="mse")),
            (f"{kind}.value_and_grad mask", "mask", lambda m=m: m.value_and_grad(x, y, mask=_big(T))),
            (f"{kind}.value_and_grad h0", "h0", lambda m=m: m.value_and_grad(x, y, h0=_big(N))),
        ]
    lstm = ms["lstm"]
    cases += [
        ("lstm.forward c0", "c0", lambda: lstm.forward(x, c0=_big(N))),
        ("lstm.value_and_grad c0", "c0", lambda: lstm.value_and_grad(x, y, c0=_big(N))),
    ]
    g = ms["generator"]
    cases += [
        ("generator.forward x", "x", lambda: g.forward(_big((T, N_IN)))),
        ("generator.forward y", "y", lambda: g.forward(x, _big((T, M)), mode="teacher", loss="mse")),
        ("generator.forward h0", "h0", lambda: g.forward(x, h0=_big(N))),
        ("generator.forward start", "start", lambda: g.forward(x, start=_big(M))),
        ("generator.generate x", "x", lambda: g.generate(T, x=_big((T, N_IN)))),
        ("generator.generate start", "start", lambda: g.generate(T, start=_big(M))),
        ("generator.value_and_grad x", "x", lambda: g.value_and_grad(_big((T, N_IN)), y, mode="free")),
        ("generator.value_and_grad y", "y", lambda: g.value_and_grad(x, _big((T, M)), mode="teacher", loss="mse")),
        ("generator.value_and_grad mask", "mask", lambda: g.value_and_grad(x, y, mode="free", mask=_big(T))),
        ("generator.value_and_grad h0", "h0", lambda: g.value_and_grad(x, y, mode="teacher", h0=_big(N))),
        ("generator.value_and_grad start", "start",
         lambda: g.value_and_grad(x, ymse, mode="free", loss="mse", start=_big(M))),
    ]
    e = ms["elman"]
    n_params = sum(p.size for p in e.params().values())
    cases += [
        ("GaussNewton x", "x", lambda: GaussNewton(e, _big((T, N_IN)), y, loss="xent")),
        ("GaussNewton mask", "mask", lambda: GaussNewton(e, x, y, loss="xent", mask=_big(T))),
        ("gauss_newton_product h0", "h0",
         lambda: gauss_newton_product(e, x, y, np.ones(n_params), loss="xent", h0=_big(N))),
        ("unflatten_params vector", "vector", lambda: unflatten_params(e, _big(n_params, at=(5,)))),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize(("label", "name", "call"), CASES, ids=[c[0] for c in CASES])
def test_values_beyond_float32_are_refused_by_name(label, name, call):
    big = r"1e\+39"
    with pytest.raises(ValueError, match=rf"^`{name}` has values beyond float32's range \(max \|{name}\| = {big}\) "
                                         rf"for a float32 model; rescale `{name}` or use a float64 model$"):
        call()


def test_the_range_edge_is_exact():
    """``F32_MAX + 2^103`` (a tie, rounded to inf) is refused; the float64 just
    below it rounds to float32's largest value, which the model takes."""
    m = ElmanRNN(np.zeros((1, 1), F32), np.full((1, 1), 2.0**-127, F32), np.zeros(1, F32),
                 activation="identity")
    with pytest.raises(ValueError, match=r"max \|x\| = 3.4e\+38"):
        m.forward(np.array([[F32_OVERFLOW]]))
    below = np.nextafter(F32_OVERFLOW, 0.0)
    assert np.float32(below) == np.finfo(F32).max
    h = m.forward(np.array([[below], [-below]])).h
    # identity activation, W_hh = 0: h_t = 2^-127 · x_t, exact in float32
    assert h[1, 0] == np.float32(np.finfo(F32).max * 2.0**-127)
    assert h[2, 0] == -h[1, 0]


def test_large_finite_inputs_inside_the_range_are_computed():
    """Inputs of magnitude 1e38 (inside float32's range) are taken as they round,
    and the model's loss matches a float64 loop reference at the float32 values."""
    rng = np.random.default_rng(4)
    W = rng.normal(0, 0.5, (N, N)).astype(F32)
    U = (rng.normal(0, 1.0, (N, N_IN)) * 1e-38).astype(F32)
    b = rng.normal(0, 0.3, N).astype(F32)
    V, c = rng.normal(0, 1.0, (M, N)).astype(F32), np.zeros(M, F32)
    m = ElmanRNN(W, U, b, V, c)
    x = rng.uniform(-3e38, 3e38, (T, N_IN))
    y = rng.integers(0, M, T)
    E, _ = m.value_and_grad(x, y)
    p = {k: np.asarray(a, np.float64) for k, a in m.params().items()} | {"alpha": None}
    ref = naive.loss_p(p, "tanh", "standard", x.astype(F32).astype(np.float64), y, "xent")
    assert math.isfinite(E)
    assert E == pytest.approx(ref, rel=1e-5)


def test_values_that_underflow_round_as_the_cast_rounds_them():
    """Below float32's subnormals a value rounds to 0 (an absolute error under
    float32's resolution); a float32 subnormal is kept exactly."""
    m = ElmanRNN(np.zeros((1, 1), F32), np.ones((1, 1), F32), np.zeros(1, F32), activation="identity")
    h = m.forward(np.array([[1e-50], [-5e-324], [1e-40]])).h
    assert h[1, 0] == 0.0 and h[2, 0] == 0.0
    assert h[3, 0] == np.float32(1e-40) and h[3, 0] != 0.0


def test_non_finite_inputs_keep_their_policy():
    """NaN/inf inputs are still refused as non-finite (not as out of range)."""
    m = _models()["elman"]
    x = np.full((T, N_IN), 0.25)
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"^`x` must be finite, got 1 NaN/inf entry$"):
        m.forward(x)
    with pytest.raises(ValueError, match=r"^`h0` must be finite"):
        m.forward(np.zeros((T, N_IN)), h0=np.array([np.inf, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"^`mask` must be finite"):
        m.value_and_grad(np.zeros((T, N_IN)), np.zeros(T, int), mask=np.array([1.0, np.nan, 1.0, 1.0]))


def test_float64_models_take_the_whole_float64_range():
    m = ElmanRNN.init(N_IN, N, M, seed=0)
    x = np.full((T, N_IN), 1e300)
    h = m.forward(x).h
    assert np.all(np.isfinite(h)) and np.all(np.abs(h[1:]) <= 1.0)


def test_alpha_beyond_float32_range():
    """The constructor refuses a retention outside [0, 1] (checked before any
    cast); ``replace`` of a learned α projects in float64, so 1e39 becomes 1."""
    W, U, b = np.zeros((N, N), F32), np.zeros((N, N_IN), F32), np.zeros(N, F32)
    with pytest.raises(ValueError, match=r"`alpha` must lie in \[0, 1\], got 1e\+39 at unit 1"):
        ElmanRNN(W, U, b, alpha=np.array([0.5, BIG, 0.5]))
    m = ElmanRNN(W, U, b, alpha=0.5, learn_alpha=True)
    m2 = m.replace(alpha=np.array([BIG, -BIG, 0.25]))
    assert m2.alpha.dtype == F32
    np.testing.assert_array_equal(m2.alpha, np.array([1.0, 0.0, 0.25], F32))


def test_gauss_newton_product_is_linear_beyond_float32_range():
    """``G (2^k v) = 2^k G v`` exactly for a float32 model, even when ``2^k v``
    is beyond float32's range (or in its subnormals): the product scales ``v``
    by a power of two instead of overflowing it."""
    rng = np.random.default_rng(1)
    m = ElmanRNN.init(N_IN, N, M, scheme="gaussian", seed=1, dtype=F32)
    x, y = rng.normal(size=(T, N_IN)), rng.integers(0, M, T)
    G = GaussNewton(m, x, y, loss="xent")
    v = rng.normal(size=G.n_params)
    base = G(v)
    assert np.all(np.isfinite(base)) and np.any(base != 0)
    for k in (140, -160):
        got = G(np.ldexp(v, k))
        np.testing.assert_array_equal(got, np.ldexp(base, k))
    # and the float32 product agrees with the float64 model's to float32 accuracy
    m64 = m.replace(**{k: p.astype(np.float64) for k, p in m.params().items()})
    ref = GaussNewton(m64, x, y, loss="xent")(v)
    assert np.max(np.abs(base - ref)) <= 1e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("start", [BIG, 1e100])
def test_hessian_free_step_from_a_warm_start_beyond_float32(start):
    """A float64 warm start ``x0`` beyond float32's range: the products stay
    finite (CG runs all its iterations instead of stopping on a non-finite
    curvature), steps that leave float32's range (CG iterates near 1e97 from
    1e100) are rejected like non-finite ones instead of raising, and the model
    returned is finite with a loss no larger than before."""
    from rnntheory.training.hessian_free import HessianFree, flatten_params, hf_step

    rng = np.random.default_rng(0)
    m = ElmanRNN.init(N_IN, 4, M, scheme="gaussian", seed=0, dtype=F32)
    x, y = rng.normal(size=(5, 3, N_IN)), rng.integers(0, M, (5, 3))
    n_params = sum(p.size for p in m.params().values())
    res = hf_step(m, x, y, loss="xent", hf=HessianFree(max_cg=5), x0=np.full(n_params, start))
    assert res.cg_stop == "max_iter" and res.cg_iterations == 5
    assert np.all(np.isfinite(flatten_params(res.model.params())))
    assert res.loss_after <= res.loss_before
    assert np.all(np.isfinite(res.cg_solution))
