"""Inputs whose contribution to a pre-activation could pass the float range are refused.

The kernels accumulate ``a_t = W_hh h_{t−1} + W_hx x_t + b`` entry by entry
(fused multiply-add or not): with ``W_hx = [[2, 2]]`` and ``x_1 = [1e308,
−1e308]`` the first product is already ``inf`` and ``inf − 2e308`` stays
``inf``, so ``a_1 = inf`` and ``h_1 = tanh(inf) = 1`` where the exact ``a_1`` is 0
and ``h_1 = 0``; ``value_and_grad`` then returned a finite gradient built on it.
Every public entry point that runs the forward pass now bounds each
pre-activation before the pass, ``rows(W_in)·max|x| + max|b| + rows(W_hh)·sup|h|``
(``rows``: the largest row sum of magnitudes; ``sup|h| = 1`` after ``h_0`` for
tanh/sigmoid units and the gated cells), and refuses a bound beyond the dtype's
range with a ``ValueError`` naming the argument that carries the large values.
For ReLU and identity units only the input part (``x``, ``h_0``) is checked: their
states may still grow over time into the documented non-finite traces.

Oracles: exact rational arithmetic (``fractions``) for pre-activations, the
loop references of ``tests/naive.py`` for traces, closed forms for the bounds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import naive
import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.training.hessian_free import GaussNewton, gauss_newton_product, hf_step

F32 = np.float32
F64_MAX = float(np.finfo(np.float64).max)
F32_MAX = float(np.finfo(F32).max)
X_REPRO = np.array([[1e308, -1e308]])
X_REPRO32 = np.array([[3e38, -3e38]])  # inside float32's range; 4·3e38 is not


def _msg(what: str, reach: str, dt: str, xs: str, weight: str) -> str:
    return (rf"^`x` is too large for this model: the {what} could reach {reach}, beyond {dt}'s range "
            rf"\(max \|x\| = {xs}, max row sum of \|{weight}\| = 4\); rescale `x`$")


def _repro_models(dt):
    """``(label, model, weight)``: models whose input term is ``rows = 4`` times ``max|x|``."""
    out = []
    for form in ("standard", "pascanu"):
        for alpha in (None, 0.5):
            for act in ("tanh", "sigmoid", "relu", "identity"):
                m = ElmanRNN(np.zeros((1, 1), dt), np.array([[2.0, 2.0]], dt), np.zeros(1, dt),
                             activation=act, form=form, alpha=alpha)
                out.append((f"elman-{form}-{'leaky' if alpha else 'plain'}-{act}", m, "W_hx"))
    out.append(("lstm", LSTM(np.full((4, 2), 2.0, dt), np.zeros((4, 1), dt)), "weight_ih"))
    out.append(("gru", GRU(np.full((3, 2), 2.0, dt), np.zeros((3, 1), dt)), "weight_ih"))
    out.append(("generator", GeneratorRNN(np.zeros((1, 1), dt), np.array([[2.0, 2.0]], dt), np.zeros((1, 2), dt),
                                          np.zeros(1, dt), np.ones((2, 1), dt), np.zeros(2, dt)), "W_hx"))
    return out


def _entry_points(m, x):
    """Every public call of ``m`` that runs the forward pass over ``x``."""
    B = (x.shape[1],) if x.ndim == 3 else ()
    y = np.zeros(x.shape[:1] + B, dtype=int)
    if isinstance(m, GeneratorRNN):
        calls = [("forward free", lambda: m.forward(x, mode="free")),
                 ("forward teacher", lambda: m.forward(x, y, mode="teacher")),
                 ("value_and_grad scheduled", lambda: m.value_and_grad(x, y, mode="scheduled", p=0.5, seed=0))]
        if x.ndim == 2:
            calls.append(("generate", lambda: m.generate(x.shape[0], x)))
        return calls
    calls = [("forward", lambda: m.forward(x)), ("value_and_grad", lambda: m.value_and_grad(x, y))]
    if isinstance(m, ElmanRNN):
        v = np.zeros(sum(p.size for p in m.params().values()))
        calls += [("GaussNewton", lambda: GaussNewton(m, x, y, loss="xent")),
                  ("gauss_newton_product", lambda: gauss_newton_product(m, x, y, v, loss="xent")),
                  ("hf_step", lambda: hf_step(m, x, y, loss="xent"))]
    return calls


# ----------------------------------------------------------------------------- the reproducer


MODEL_IDS = [label for label, _, _ in _repro_models(np.float64)]


@pytest.mark.parametrize("dt", [np.float64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
@pytest.mark.parametrize("which", range(len(MODEL_IDS)), ids=MODEL_IDS)
def test_the_reproducer_is_refused_by_name_at_every_entry_point(which, batched, dt):
    """``W_hx x_1`` with rows(W_hx) = 4 and max|x| = 1e308 (float32: 3e38) could
    reach 4e308 (1.2e39): refused by forward, value_and_grad, the generator's
    modes and the Gauss–Newton product, naming `x` and the numbers of the bound."""
    x = X_REPRO if dt is np.float64 else X_REPRO32
    if batched:  # the large values in the second of two sequences
        x = np.stack([np.full_like(x, 0.5), x], axis=1)
    reach, xs, name = ("4.0e+308", "1e+308", "float64") if dt is np.float64 else ("1.2e+39", "3e+38", "float32")
    _, m, weight = _repro_models(dt)[which]
    what = r"gate pre-activations .+" if weight == "weight_ih" else r"pre-activations .+"
    for _, call in _entry_points(m, x):
        with pytest.raises(ValueError, match=_msg(what, re_num(reach), name, re_num(xs), weight)):
            call()


def re_num(text: str) -> str:
    return text.replace(".", r"\.").replace("+", r"\+")


def test_the_exact_reproducer_values():
    """The exact pre-activation of the reproducer is 0 (so ``h_1 = tanh(0) = 0``),
    while the bound the message reports is 4e308, beyond float64's range."""
    W = [Fraction(2), Fraction(2)]
    x = [Fraction(1e308), Fraction(-1e308)]
    assert sum(w * v for w, v in zip(W, x, strict=True)) == 0
    assert sum(abs(w) for w in W) * max(abs(v) for v in x) > Fraction(F64_MAX)
    # the same model computes the exact answer once the input is rescaled
    m = ElmanRNN(np.zeros((1, 1)), np.array([[2.0, 2.0]]), np.zeros(1))
    tr = m.forward(X_REPRO * 1e-10)
    assert tr.a[0, 0] == 0.0 and tr.h[1, 0] == 0.0


# ----------------------------------------------------------------------------- inside the range


@pytest.mark.parametrize(("dt", "inside", "outside"), [
    (np.float64, 8.9e307, 9e307),  # bounds 1.78e308 (< 1.797e308) and 1.8e308
    (F32, 1.69e38, 1.75e38),       # bounds 3.38e38 (< 3.403e38) and 3.5e38
], ids=["float64", "float32"])
@pytest.mark.parametrize("act", ["tanh", "identity"])
def test_a_bound_just_inside_the_range_is_computed_exactly(dt, inside, outside, act):
    """``W_hx = [[1, 1]]``, ``x_1 = [v, −v]``, ``b = 0``: the exact pre-activation
    is 0 (any order of the sum), then ``x_2 = [0.5, 0.25]`` gives 0.75. With
    ``2v`` just inside the range the pass runs and gives exactly those; with
    ``2v`` beyond it the bound is refused (conservatively: this input cancels,
    but the check is on the bound)."""
    m = ElmanRNN(np.zeros((1, 1), dt), np.ones((1, 2), dt), np.zeros(1, dt), activation=act)
    x = np.array([[inside, -inside], [0.5, 0.25]])
    tr = m.forward(x)
    assert tr.a[0, 0] == 0.0 and tr.a[1, 0] == 0.75
    f = math.tanh if act == "tanh" else float
    assert tr.h[1, 0] == 0.0 and tr.h[2, 0] == pytest.approx(f(0.75), rel=1e-6 if dt is F32 else 1e-15)
    np.testing.assert_allclose(tr.h, naive.forward(m, x.astype(dt)), rtol=1e-6 if dt is F32 else 1e-15)
    with pytest.raises(ValueError, match=r"^`x` is too large for this model: .* could reach (1\.8e\+308|3\.5e\+38)"):
        m.forward(np.array([[outside, -outside]]))


def _exact_preactivations(m, tr, x):
    """``W_hh h_{t−1} + W_hx x_t + b`` in rationals, from the trace's own states
    (float64 values, exact), and ``Σ|W_hh||h| + Σ|W_hx||x| + |b|`` per entry."""
    W = [[Fraction(float(v)) for v in row] for row in m.W_hh]
    U = [[Fraction(float(v)) for v in row] for row in m.W_hx]
    b = [Fraction(float(v)) for v in m.b_h]
    exact, mag = [], []
    for t in range(x.shape[0]):
        h = [Fraction(float(v)) for v in tr.h[t]]
        xt = [Fraction(float(v)) for v in x[t]]
        exact.append([sum(W[i][j] * h[j] for j in range(len(h))) + sum(U[i][j] * xt[j] for j in range(len(xt))) + b[i]
                      for i in range(len(b))])
        mag.append([sum(abs(W[i][j] * h[j]) for j in range(len(h))) + sum(abs(U[i][j] * xt[j]) for j in range(len(xt)))
                    + abs(b[i]) for i in range(len(b))])
    return exact, mag


@pytest.mark.parametrize("seed", range(4))
def test_pre_activations_near_1e307_equal_exact_rationals(seed):
    """Random weights, inputs scaled so that the bound is 0.9 of float64's
    largest value, some steps cancelling to about 1e307 · 2^-40: each
    pre-activation equals the exact rational value to the rounding of an
    (n + n_in + 1)-term sum, and the states equal the loop reference."""
    rng = np.random.default_rng(seed)
    n, n_in, T = 3, 4, 6
    W, U, b = rng.normal(size=(n, n)), rng.normal(size=(n, n_in)), rng.normal(size=n)
    m = ElmanRNN(W, U, b)
    rows_u = max(sum(abs(Fraction(float(v))) for v in row) for row in U)
    rows_w = max(sum(abs(Fraction(float(v))) for v in row) for row in W)
    scale = float((Fraction(9, 10) * Fraction(F64_MAX) - rows_w - max(abs(Fraction(float(v))) for v in b)) / rows_u)
    x = rng.uniform(-1.0, 1.0, (T, n_in)) * scale
    x[np.arange(T), rng.integers(0, n_in, T)] = scale  # max|x| = scale
    x[2] = [scale, -scale, 0.5 * scale, 0.0]
    x[3] = x[2] * (1 - 2.0**-40)                     # a_4 − a_3 cancels to ~1e267
    tr = m.forward(x)
    assert np.isfinite(tr.a).all() and np.isfinite(tr.h).all()
    exact, mag = _exact_preactivations(m, tr, x)
    u = Fraction(1, 2**53)
    for t in range(T):
        for i in range(n):
            err = abs(Fraction(float(tr.a[t, i])) - exact[t][i])
            assert err <= (n + n_in + 1) * u * mag[t][i], (t, i)
    np.testing.assert_allclose(tr.h, naive.forward(m, x), rtol=1e-12, atol=1e-300)


def test_generator_pre_activation_near_the_limit_is_exact():
    """The generator's first pre-activation ``W_hx x_1 + W_hy o_0 + b_h`` with
    terms of 6e307 that cancel (bound 1.5e308): computed, and exactly the
    rational value 0 (an overflowing accumulation gives ±inf); a start value of
    1.7e308 (bound 2.6e308) is refused by name."""
    m = GeneratorRNN(np.zeros((1, 1)), np.array([[1.0]]), np.array([[1.0, 0.5]]), np.array([0.0]),
                     np.ones((2, 1)), np.zeros(2), activation="identity")
    x = np.array([[6e307], [0.0]])
    start = np.array([-6e307, 0.0])
    tr = m.forward(x, np.zeros((2, 2)), mode="teacher", loss="mse", start=start)
    exact = Fraction(6e307) + Fraction(-6e307) + Fraction(0.5) * 0
    assert Fraction(float(tr.a[0, 0])) == exact == 0
    with pytest.raises(ValueError, match=r"^`start` is too large for this model: .* \(max \|start\| = 1\.7e\+308, "
                                         r"max row sum of \|W_hy\| = 1\.5\); rescale `start`$"):
        m.forward(x, np.zeros((2, 2)), mode="teacher", loss="mse", start=np.array([1.7e308, 0.0]))


# ----------------------------------------------------------------------------- who is named


def test_h0_is_named_when_it_carries_the_large_values():
    """rows(W_hh) = 4 and max|h0| = 1e308: standard form (plain and leaky) and
    ReLU units refuse `h0`; Pascanu's form with tanh reads only f(h_0) ∈ [-1, 1]
    and computes exactly (W_hh tanh(h_0) = 2·1 + 2·(−1) = 0, so h_1 = b_h)."""
    W, U, b = np.full((2, 2), 2.0), np.ones((2, 1)), np.array([0.5, -0.25])
    h0 = np.array([1e308, -1e308])
    x = np.zeros((3, 1))
    msg = (r"^`h0` is too large for this model: the pre-activations W_hh h_\{t−1\} \+ W_hx x_t \+ b_h could "
           r"reach 4\.0e\+308, beyond float64's range \(max \|h0\| = 1e\+308, max row sum of \|W_hh\| = 4\); "
           r"rescale `h0`$")
    for kw in ({}, {"alpha": 0.5}, {"activation": "relu"}, {"activation": "identity", "form": "pascanu"}):
        m = ElmanRNN(W, U, b, **kw)
        with pytest.raises(ValueError, match=msg.replace("h_\\{t−1\\}", "(f\\()?h_\\{t−1\\}\\)?")):
            m.forward(x, h0=h0)
        with pytest.raises(ValueError, match=r"^`h0` is too large"):
            m.value_and_grad(x, np.zeros(3, int), h0=h0)
    m = ElmanRNN(W, U, b, form="pascanu")
    tr = m.forward(x, h0=h0)
    assert np.array_equal(tr.h[1], b)
    np.testing.assert_allclose(tr.h, naive.forward(m, x, h0), rtol=1e-15)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_gated_h0_is_named_and_c0_enters_no_pre_activation(cls):
    """Gated cells: ``h_0`` of 1e308 times rows(weight_hh) = 2 is refused by name;
    a cell state ``c_0`` at float64's largest value is computed and equals the
    loop reference (``|c_1| ≤ |c_0| + 1`` rounds to at most the largest value)."""
    G = cls.GATES
    rng = np.random.default_rng(3)
    m = cls(rng.normal(size=(G * 2, 1)), np.full((G * 2, 2), 1.0), rng.normal(size=G * 2), np.zeros(G * 2))
    x = rng.normal(size=(4, 1))
    with pytest.raises(ValueError, match=r"^`h0` is too large for this model: the gate pre-activations .* "
                                         r"\(max \|h0\| = 1e\+308, max row sum of \|weight_hh\| = 2\); rescale `h0`$"):
        m.forward(x, h0=np.array([1e308, -1e308]))
    if cls is LSTM:
        c0 = np.array([F64_MAX, -F64_MAX])
        tr = m.forward(x, c0=c0)
        hs, cs = naive.lstm_forward(m, x, c0=c0)
        assert np.isfinite(tr.c).all()
        np.testing.assert_allclose(tr.h, hs, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(tr.c, cs, rtol=1e-12, atol=1e-15)


def test_weights_are_named_when_they_carry_the_large_values():
    """A row sum of |W_hx| beyond float64 (2e308) with moderate inputs names
    `W_hx` (the larger factor of the largest term, also against max|x| = 1e308);
    with zero inputs that term is exactly 0 and the pass runs (no 0·inf); the
    reported reach is formed in log space (2e616, no overflow)."""
    m = ElmanRNN(np.zeros((1, 1)), np.array([[1e308, 1e308]]), np.array([0.5]))
    with pytest.raises(ValueError, match=r"^`W_hx` of this model is too large: .* could reach 2\.0e\+308, beyond "
                                         r"float64's range \(max \|x\| = 1, max row sum of \|W_hx\| = 2e\+308\); "
                                         r"rescale `W_hx`$"):
        m.forward(np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match=r"^`W_hx` of this model is too large: .* could reach 2\.0e\+616, beyond "
                                         r"float64's range \(max \|x\| = 1e\+308, max row sum of \|W_hx\| = 2e\+308\)"):
        m.forward(np.array([[1e308, 0.0]]))
    tr = m.forward(np.zeros((2, 2)))
    assert np.all(tr.h[1:] == math.tanh(0.5))
    # tanh units with rows(W_hh) = 2e308: even |h| ≤ 1 could overflow
    with pytest.raises(ValueError, match=r"^`W_hh` of this model is too large: .* \(sup \|h\| = 1, "
                                         r"max row sum of \|W_hh\| = 2e\+308\); rescale `W_hh`$"):
        ElmanRNN(np.full((2, 2), 1e308), np.ones((2, 1)), np.zeros(2)).forward(np.ones((2, 1)))


def test_generator_names_start_targets_and_fed_back_outputs():
    """Generator: the teacher targets fed back (mse) are named `y`; own outputs
    fed back under tanh, bounded by rows(W_yh) + max|b_y| = 2e308, name `W_yh`;
    the same weights under teacher forcing feed no own output and run."""
    W_hy = np.ones((1, 2))
    m = GeneratorRNN(np.zeros((1, 1)), np.ones((1, 1)), W_hy, np.zeros(1), np.full((2, 1), 1e308),
                     np.array([1e308, 0.0]))
    x = np.zeros((3, 1))
    y = np.zeros((3, 2))
    y[0] = [1e308, 1e308]
    with pytest.raises(ValueError, match=r"^`y` is too large for this model: .* \(max \|y\| = 1e\+308, "
                                         r"max row sum of \|W_hy\| = 2\); rescale `y`$"):
        m.value_and_grad(x, y, mode="teacher", loss="mse")
    with pytest.raises(ValueError, match=r"^`W_yh` of this model is too large: the outputs W_yh h_t \+ b_y fed back "
                                         r"could reach 2\.0e\+308"):
        m.forward(x, mode="free", loss="mse")
    tr = m.forward(x, np.zeros((3, 2)), mode="teacher", loss="mse")
    assert np.all(tr.h == 0.0)


# ----------------------------------------------------------------------------- what still runs


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_huge_weights_with_saturating_units_still_run(act, form):
    """W_hh of 1e300 (rows ≈ 4e300, finite) with tanh/sigmoid units and moderate
    inputs: computed and equal to the loop reference; in the standard form
    (states in [-1, 1]) loss and gradient are finite (in Pascanu's form the
    states themselves are ~1e300, and so is the readout gradient's square)."""
    rng = np.random.default_rng(7)
    m = ElmanRNN(1e300 * rng.normal(size=(4, 4)), rng.normal(size=(4, 2)), rng.normal(size=4),
                 rng.normal(size=(3, 4)), np.zeros(3), activation=act, form=form)
    x = rng.normal(size=(8, 2))
    tr = m.forward(x)
    np.testing.assert_allclose(tr.h, naive.forward(m, x), rtol=1e-12, atol=1e-300)
    with np.errstate(all="ignore"):  # saturated units: f′ underflows to 0, not an error
        E, g = m.value_and_grad(x, rng.integers(0, 3, 8))
    assert math.isfinite(E)
    if form == "standard":
        assert all(np.isfinite(v).all() for v in g.params().values())


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_gated_huge_recurrent_weights_still_run(cls):
    """weight_hh of 1e300 with moderate inputs: |h| ≤ 1 keeps the bound finite;
    the trace equals the loop reference."""
    rng = np.random.default_rng(8)
    G = cls.GATES
    m = cls(rng.normal(size=(G * 3, 1)), 1e300 * rng.normal(size=(G * 3, 3)), rng.normal(size=G * 3),
            np.zeros(G * 3))
    x = rng.normal(size=(6, 1))
    tr = m.forward(x)
    ref = naive.lstm_forward(m, x)[0] if cls is LSTM else naive.gru_forward(m, x)
    np.testing.assert_allclose(tr.h, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_relu_explosion_over_time_still_gives_the_non_finite_trace(form):
    """ReLU units with W_hh of 1e100 and inputs of 1: every input term is tiny,
    so nothing is refused; the states grow by ~1e100 per step into inf, the
    documented non-finite trace (finite before the overflow, like the loop)."""
    rng = np.random.default_rng(5)
    W = 1e100 * np.abs(rng.normal(size=(3, 3)))
    m = ElmanRNN(W, np.ones((3, 1)), np.zeros(3), activation="relu", form=form)
    x = np.ones((7, 1))
    with np.errstate(all="ignore"):
        tr = m.forward(x)
        ref = naive.forward(m, x)
    assert not np.isfinite(tr.h[-1]).all()
    fin = np.isfinite(ref).all(axis=1)
    assert fin[:2].all() and not fin[-1]
    np.testing.assert_allclose(tr.h[fin], ref[fin], rtol=1e-12)
    with np.errstate(all="ignore"):
        m.value_and_grad(x, np.zeros(7, int))  # not refused either


def test_identity_units_at_huge_weights_with_zero_inputs_run():
    """Identity units, W_hh = 1.5e308·ones (rows 3e308, beyond float64) and
    zero inputs and state: every term of the bound is exactly 0; h stays 0."""
    m = ElmanRNN(1.5e308 * np.ones((2, 2)), np.zeros((2, 1)), np.zeros(2), activation="identity")
    assert np.all(m.forward(np.zeros((5, 1))).h == 0.0)


@pytest.mark.parametrize("cls", [ElmanRNN, LSTM])
def test_the_bound_is_the_largest_row_sum(cls):
    """The check uses max_i Σ_j |W[i, j]|, not a looser ``n_in·max|W|``: with one
    nonzero input weight per row (row sum 1, four inputs) an input of 1.5e308
    runs and gives exactly W·x (identity units: h_1 = a_1; the LSTM's gate
    pre-activations hold it), the same call repeated runs again, and 1.5 times
    more (bound 2.25e308, shown to two digits) is refused, reporting the row sum 1.5."""
    x = np.zeros((1, 4))
    x[0, 0] = 1.5e308
    if cls is ElmanRNN:
        m = ElmanRNN(np.zeros((2, 2)), np.array([[1.0, 0, 0, 0], [0, -0.5, 0, 0]]), np.zeros(2),
                     activation="identity")
        for _ in range(2):
            assert np.array_equal(m.forward(x).h[1], [1.5e308, 0.0])
        m = m.replace(W_hx=np.array([[1.5, 0, 0, 0], [0, -0.5, 0, 0]]))
        weight, what = "W_hx", "pre-activations"
    else:
        W = np.zeros((4, 4))
        W[:, 0] = [1.0, -1.0, 0.5, 0.25]
        m = LSTM(W, np.zeros((4, 1)))
        for _ in range(2):
            assert np.array_equal(m.forward(x).pre[0], [1.5e308, -1.5e308, 0.75e308, 0.375e308])
        W[0, 0] = 1.5
        m = m.replace(weight_ih=W)
        weight, what = "weight_ih", "gate pre-activations"
    with pytest.raises(ValueError, match=rf"^`x` is too large for this model: the {what} .* could reach 2\.[23]e\+308, "
                                         rf"beyond float64's range \(max \|x\| = 1\.5e\+308, "
                                         rf"max row sum of \|{weight}\| = 1\.5\); rescale `x`$"):
        m.forward(x)
