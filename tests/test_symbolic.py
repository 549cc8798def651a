"""rnntheory.symbolic: the identities hold, and agree with the numeric library (lambdify)."""

from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rnntheory import ElmanRNN, jacobians
from rnntheory._oracles import central_jacobian
from rnntheory.bounds import gamma_w
from rnntheory.strategies import elman_models, input_sequences
from rnntheory.symbolic import activation, chain, clipping, elman, gated, leaky, omega, softmax
from rnntheory.symbolic._base import is_zero_matrix

X = sp.Symbol("x", real=True)


# ----------------------------------------------------------------------------- Elman
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("form", elman.FORMS)
@pytest.mark.parametrize("leak", [False, True])
def test_step_jacobian_closed_form(n: int, form: str, leak: bool) -> None:
    assert elman.prove_step_jacobian(n, form, leak).holds


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "identity"])
def test_step_jacobian_concrete_activations(act: str) -> None:
    assert elman.prove_step_jacobian(2, "standard", False, act).holds


def test_eq9_is_not_the_jacobian_of_eq2a() -> None:
    d = elman.eq9_numbers()
    assert not np.allclose(d["jacobian_eq2a"], d["article_eq9"])
    # Same spectrum as the Pascanu-form Jacobian, different norm.
    A, P = np.array(d["article_eq9"]), np.array(d["pascanu_form"])
    assert np.allclose(np.sort_complex(np.linalg.eigvals(A)), np.sort_complex(np.linalg.eigvals(P)))
    assert abs(np.linalg.norm(A, 2) - np.linalg.norm(P, 2)) > 0.1
    assert elman.prove_eq9_row_reading(2).holds


def _lambdified_jacobian(form: str, act: str, leak: bool, n: int):  # type: ignore[no-untyped-def]
    cell = elman.elman_cell(n, form=form, act=act, leaky=leak, n_in=2)
    syms = [*cell.W_hh, *cell.W_hx, *cell.b, *cell.h, *cell.x]
    if cell.alpha is not None:
        syms += list(cell.alpha)
    return sp.lambdify(syms, elman.closed_form_jacobian(cell), "numpy")


@settings(max_examples=10, deadline=None)
@given(
    elman_models(n_in=2, n_hidden=st.integers(1, 3), leaky=st.booleans()),
    input_sequences(st.integers(1, 3), 2),
)
def test_symbolic_jacobian_matches_library(model: ElmanRNN, x: np.ndarray) -> None:
    n = model.n_hidden
    fn = _lambdified_jacobian(model.form, model.activation.name, model.leaky, n)
    tr = model.forward(x)
    J = jacobians.step_jacobians(model, tr)
    for t in range(x.shape[0]):
        args = [*model.W_hh.ravel(), *model.W_hx.ravel(), *model.b_h, *tr.h[t], *x[t]]
        if model.alpha is not None:
            args += list(model.alpha)
        np.testing.assert_allclose(np.asarray(fn(*args), float), J[t], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- chain
@pytest.mark.parametrize("T", [1, 2, 3, 4])
def test_eq7_8_ordered_product(T: int) -> None:
    assert chain.prove_eq7_8(T, 2).holds


def test_eq7_8_pascanu_and_leaky() -> None:
    assert chain.prove_eq7_8(3, 2, "pascanu").holds
    assert chain.prove_eq7_8(2, 2, "pascanu", True).holds


@pytest.mark.parametrize("T", [2, 3])
def test_eq6_double_sum(T: int) -> None:
    assert chain.prove_eq6(T, 2).holds


def test_eq6_single_index_readings_differ() -> None:
    terms = chain.eq6_terms(2, 2)
    for key in ("diagonal", "first"):
        assert not (terms["true"] - terms[key]).applyfunc(sp.expand).is_zero_matrix


# ----------------------------------------------------------------------------- activation
@pytest.mark.parametrize(
    ("expr", "value", "where"),
    [(sp.tanh(X), 1, 0), (1 / (1 + sp.exp(-X)), sp.Rational(1, 4), 0), (X, 1, 0),
     (sp.atan(X), 1, 0)],
)
def test_gamma_h_values(expr: sp.Expr, value: sp.Expr, where: sp.Expr) -> None:
    r = activation.gamma_h(expr, X)
    assert sp.simplify(r.value - value) == 0
    assert r.argmax == where


@settings(max_examples=20, deadline=None)
@given(st.floats(-30, 30))
def test_gamma_h_bounds_the_derivative(x0: float) -> None:
    for expr in (sp.tanh(X), 1 / (1 + sp.exp(-X))):
        r = _cached_gamma(expr)
        assert abs(float(r.derivative.subs(X, x0))) <= float(r.value) + 1e-15


_GAMMA: dict[sp.Expr, activation.GammaH] = {}


def _cached_gamma(expr: sp.Expr) -> activation.GammaH:
    if expr not in _GAMMA:
        _GAMMA[expr] = activation.gamma_h(expr, X)
    return _GAMMA[expr]


# ----------------------------------------------------------------------------- bad inputs
BAD = [
    (lambda: activation.gamma_h(sp.log(1 + sp.exp(X)), X), ValueError, "not attained"),
    (lambda: activation.gamma_h(X**2, X), ValueError, "not finite"),
    (lambda: activation.gamma_h(sp.sin(X), X), ValueError, "`expr`"),
    (lambda: activation.gamma_h(sp.Integer(3), X), ValueError, "`expr` must depend on `x`"),
    (lambda: activation.gamma_h(sp.tanh(X), "x"), TypeError, "`x` must be a sympy Symbol"),
    (lambda: activation.gamma_h("tanh(x)", X), TypeError, "`expr` must be a sympy expression"),
    (lambda: elman.elman_cell(0), ValueError, "`n` must lie in"),
    (lambda: elman.elman_cell(2, form="lstm"), ValueError, "`form` must be one of"),
    (lambda: elman.elman_cell(2, act="relu"), ValueError, "`act` must be one of"),
    (lambda: elman.elman_cell(2.0), TypeError, "`n` must be an int"),  # type: ignore[arg-type]
    (lambda: elman.eq9_numbers(W=[[1, 2, 3]]), ValueError, "`W` must be 2×2"),
    (lambda: elman.eq9_numbers(h=[1, 2, 3]), ValueError, "`h` must have length 2"),
    (lambda: chain.unroll(elman.elman_cell(1), 0), ValueError, "`T` must lie in"),
    (lambda: clipping.clip_by_norm(sp.Matrix([[1, 2]]), 1), ValueError, "`g` must be a column"),
    (lambda: softmax.logits(1), ValueError, "`C` must lie in"),
    (lambda: softmax.softmax_mse_gradient([1, 2], [1]), ValueError, "`z` and `y`"),
    (lambda: leaky.leaky_step_bound([], 1, 1), ValueError, "`alpha` must hold"),
    (lambda: leaky.leaky_step_bound([1.5], 1, 1), ValueError, "`alpha` must lie in"),
    (lambda: omega.omega(1), ValueError, "`n` must lie in"),
    (lambda: omega.omega(2, "leaky"), ValueError, "`form` must be one of"),
    (lambda: gated.gated_cell("rnn"), ValueError, "`kind` must be one of"),
    (lambda: gated.gated_cell("gru", 3), ValueError, "`n` must lie in"),
    (lambda: gated.gru_closed_form_jacobian(gated.gated_cell("lstm")), ValueError, "`cell` must be a GRU"),
    # sizes and steps: NumPy integers are ints, NumPy bools and floats are not
    (lambda: elman.elman_cell(np.bool_(True)), TypeError, "`n` must be an int, got np.True_"),
    (lambda: softmax.logits(np.float64(2.0)), TypeError, "`C` must be an int"),
    (lambda: chain.unroll(elman.elman_cell(1), np.int64(7)), ValueError, r"`T` must lie in \[1, 6\], got 7"),
    # records passed back: checked for type, then for fields that fit together
    (lambda: chain.unroll(_forged_elman(n=-1), 2), ValueError, "`cell.n` must be an int >= 1, got -1"),
    (lambda: elman.article_eq9_matrix(_forged_elman(W_hh="junk")), TypeError,
     "`cell.W_hh` must be a SymPy matrix, got str"),
    (lambda: elman.closed_form_jacobian(_forged_elman(W_hh="junk")), TypeError,
     "`cell.W_hh` must be a SymPy matrix, got str"),
    (lambda: elman.step_jacobian(_forged_elman(h="junk")), TypeError, "`cell.h` must be a SymPy matrix, got str"),
    (lambda: elman.step_jacobian(_forged_elman(h=sp.Matrix([1]))), ValueError, "`cell.h` must hold SymPy symbols"),
    (lambda: elman.step_jacobian(_forged_elman(x=_forged_elman().h)), ValueError,
     r"`cell.x` must hold distinct symbols, got h_0 \(also in `cell.h`\)"),
    (lambda: elman.step_jacobian(_forged_elman(n=2)), ValueError, r"`cell.W_hh` must have shape \(2, 2\)"),
    (lambda: elman.step_jacobian(_forged_elman(form="lstm")), ValueError, "`cell.form` must be one of"),
    (lambda: elman.step_jacobian(_forged_elman(leaky=True)), ValueError, "`cell.alpha` must be a column"),
    (lambda: elman.step_jacobian(_forged_elman(alpha=1.5)), TypeError, "`cell.alpha` must be None or a SymPy"),
    (lambda: elman.closed_form_jacobian(_forged_elman(update=2 * _forged_elman().update)), ValueError,
     "`cell.update` does not match the record's other fields"),
    (lambda: elman.closed_form_jacobian(_forged_elman(form="pascanu")), ValueError,
     "`cell.arg` does not match the record's other fields"),
    (lambda: gated.gru_closed_form_jacobian(_forged_gated(n=0)), ValueError, "`cell.n` must be an int >= 1, got 0"),
    (lambda: gated.gru_closed_form_jacobian(_forged_gated(n=2)), ValueError,
     r"`cell.params\['weight_ih'\]` must have shape \(6, 1\), got shape \(3, 1\)"),
    (lambda: gated.lambdify_cell(_forged_gated(params=list(gated.gated_cell("gru").params.values()))),
     TypeError, "`cell.params` must be a dict of SymPy matrices"),
    (lambda: gated.step_jacobian(_forged_gated(params=list(gated.gated_cell("gru").params.values()))),
     TypeError, "`cell.params` must be a dict of SymPy matrices"),
    (lambda: gated.step_jacobian(_forged_gated(params={**gated.gated_cell("gru").params, 1: sp.Matrix([0])})),
     ValueError, r"`cell.params` must have the keys \('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'\)"),
    (lambda: gated.step_jacobian(_forged_gated(params={**gated.gated_cell("gru").params, "bias_hh": None})),
     TypeError, r"`cell.params\['bias_hh'\]` must be a SymPy matrix, got NoneType"),
    (lambda: gated.step_jacobian(_forged_gated(gates={})), ValueError, r"`cell.gates` must have the keys \('r', 'z', 'n'\)"),
    (lambda: gated.step_jacobian(_forged_gated(kind="lstm")), ValueError, "`cell.gates` must have the keys"),
    (lambda: gated.step_jacobian(_forged_gated(new_state=2 * gated.gated_cell("gru").new_state)), ValueError,
     "`cell.new_state` does not match the record's other fields"),
    (lambda: gated.lambdify_cell(_gru_without_input_bias()), ValueError,
     r"`cell.params\['bias_ih'\]` must hold SymPy symbols"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(n=-1)), ValueError, "`s.n` must be an int >= 1, got -1"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(n=2.5)), TypeError, r"`s.n` must be an int, got 2\.5"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(n=3)), ValueError, r"`s.W` must have shape \(3, 3\)"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(W="junk")), TypeError, "`s.W` must be a SymPy matrix"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(value=-7)), TypeError, "`s.value` must be a SymPy"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(squared=True)), ValueError,
     "`s.value` does not match the record's other fields"),
    (lambda: omega.omega_gradient_closed_form(_forged_omega(u=2 * _forged_omega().u)), ValueError,
     "`s.u` does not match the record's other fields"),
    # sigmoid: its argument is `arg`, checked like every symbolic number
    (lambda: gated.sigmoid("junk"), TypeError, "as its argument `arg`, got the string 'junk'"),
    (lambda: gated.sigmoid(None), TypeError, "`arg` must be a number"),
    (lambda: gated.sigmoid(float("nan")), ValueError, "`arg` must be finite"),
    (lambda: gated.sigmoid.eval("junk"), TypeError, "`arg` must be a number .* got the str 'junk'"),
    (lambda: gated.sigmoid.eval([0]), TypeError, "`arg` must be a number .* got list"),
    (lambda: gated.sigmoid(X).fdiff(2), ValueError, r"`argindex` must be 1 \(`sigmoid` has one argument\), got 2"),
    (lambda: gated.sigmoid(X).fdiff("1"), ValueError, "`argindex` must be 1"),
    # softmax_mse_gradient: numbers are finite and real
    (lambda: softmax.softmax_mse_gradient([sp.zoo, 0], [1, 0]), ValueError, "`z` must hold finite real numbers, got zoo"),
    (lambda: softmax.softmax_mse_gradient([0, 0], [sp.I, 0]), ValueError, "`y` must hold finite real numbers, got I"),
    (lambda: softmax.softmax_mse_gradient([np.float64("inf"), 0], [1, 0]), ValueError, r"`z\[0\]` must be finite"),
]


def _forged_elman(**fields):  # type: ignore[no-untyped-def]
    """``elman_cell(1, act="identity")`` with ``fields`` replaced (the record stores what it is given)."""
    return dataclasses.replace(elman.elman_cell(1, act="identity"), **fields)


def _forged_gated(**fields):  # type: ignore[no-untyped-def]
    return dataclasses.replace(gated.gated_cell("gru"), **fields)


def _gru_without_input_bias() -> gated.GatedCell:
    """The GRU cell with ``bias_ih = 0`` put in everywhere: a consistent record."""
    cell = gated.gated_cell("gru")
    rep = dict.fromkeys(cell.params["bias_ih"], sp.Integer(0))
    return dataclasses.replace(
        cell,
        params={**cell.params, "bias_ih": sp.zeros(3, 1)},
        new_state=cell.new_state.xreplace(rep),
        gates={k: v.xreplace(rep) for k, v in cell.gates.items()},
    )


def _forged_omega(**fields):  # type: ignore[no-untyped-def]
    return dataclasses.replace(omega.omega(2, act="identity"), **fields)


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_inputs(call, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- clipping
def test_clipping_properties() -> None:
    assert clipping.prove_clipping(3).holds


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=2), st.floats(0.01, 50))
def test_clip_by_norm_numeric(g: list[float], tau: float) -> None:
    gs = sp.Matrix(2, 1, sp.symbols("a b", real=True))
    ts = sp.Symbol("tau", positive=True)
    fn = sp.lambdify([*gs, ts], clipping.clip_by_norm(gs, ts), "numpy")
    with np.errstate(invalid="ignore", divide="ignore"):  # np.select evaluates both branches
        c = np.asarray(fn(*g, tau), float).ravel()
    if np.linalg.norm(g) >= tau:
        assert abs(np.linalg.norm(c) - tau) <= 1e-12 * tau
        assert float(c @ np.array(g)) > 0
    else:
        np.testing.assert_array_equal(c, g)


def test_clip_by_norm_tau_is_the_deprecated_spelling_of_threshold() -> None:
    """Every clipping bound is `threshold`; the symbolic clip_by_norm's former
    `tau=` warns and gives the same exact vector: (3, 4) clipped to norm 1 is (3/5, 4/5)."""
    new = clipping.clip_by_norm([3, 4], threshold=1)
    with pytest.warns(DeprecationWarning, match=r"`tau` is deprecated.*use `threshold`"):
        old = clipping.clip_by_norm([3, 4], tau=1)
    assert new == old == sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])


# ----------------------------------------------------------------------------- softmax
def test_softmax_gradients() -> None:
    assert softmax.prove_xent_gradient(3).holds
    assert softmax.prove_mse_linear_gradient(3).holds
    grad, err = softmax.softmax_mse_gradient([1, 0, -1], [0, 1, 0])
    assert grad != err


@settings(max_examples=10, deadline=None)
@given(elman_models(n_in=2, n_out=3), input_sequences(1, 2), st.integers(0, 2))
def test_xent_gradient_matches_value_and_grad(model: ElmanRNN, x: np.ndarray, y: int) -> None:
    z = softmax.logits(3)
    grad = sp.lambdify(list(z), sp.Matrix([sp.diff(-sp.log(softmax.softmax(z)[y]), zi) for zi in z]))
    logits_ = model.forward(x).y[0]
    _, g = model.value_and_grad(x, np.array([y]))
    np.testing.assert_allclose(np.asarray(grad(*logits_), float).ravel(), g.b_y, atol=1e-12)


# ----------------------------------------------------------------------------- leaky
def test_leaky_identities() -> None:
    assert leaky.prove_leaky_jacobian(2, "standard").holds
    assert leaky.prove_leaky_jacobian(2, "pascanu").holds
    assert leaky.prove_diag_norm(3).holds


@settings(max_examples=15, deadline=None)
@given(elman_models(n_in=2, leaky=True), input_sequences(st.integers(1, 5), 2))
def test_leaky_bound_holds(model: ElmanRNN, x: np.ndarray) -> None:
    assert model.alpha is not None
    bound = float(leaky.leaky_step_bound(list(model.alpha), gamma_w(model.W_hh), model.activation.gamma_h))
    J = jacobians.step_jacobians(model, model.forward(x))
    assert np.max(np.linalg.norm(J, 2, axis=(1, 2))) <= bound * (1 + 1e-12)


# ----------------------------------------------------------------------------- omega
@pytest.mark.parametrize(("form", "squared"), [("pascanu", False), ("pascanu", True), ("standard", False), ("standard", True)])
def test_omega_gradient_closed_form(form: str, squared: bool) -> None:
    assert omega.prove_omega_gradient(2, form, squared).holds


@pytest.mark.parametrize("form", ["pascanu", "standard"])
def test_omega_gradient_finite_differences(form: str) -> None:
    val, grad = omega.omega_functions(2, form, act="tanh")
    rng = np.random.default_rng(0)
    W, h, c, v = rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=2), rng.normal(size=2)
    F = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            E = np.zeros((2, 2))
            E[i, j] = 1e-6
            F[i, j] = (val(W + E, h, c, v) - val(W - E, h, c, v)) / 2e-6
    np.testing.assert_allclose(np.asarray(grad(W, h, c, v), float), F, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- gated
def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = h.shape[0]
    g = p["weight_ih"] @ x + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"]
    i, f, gg, o = _np_sigmoid(g[:n]), _np_sigmoid(g[n:2 * n]), np.tanh(g[2 * n:3 * n]), _np_sigmoid(g[3 * n:])
    c2 = f * c + i * gg
    return np.concatenate([o * np.tanh(c2), c2])


def _np_gru(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = h.shape[0]
    gi, gh = p["weight_ih"] @ x + p["bias_ih"], p["weight_hh"] @ h + p["bias_hh"]
    r, z = _np_sigmoid(gi[:n] + gh[:n]), _np_sigmoid(gi[n:2 * n] + gh[n:2 * n])
    nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
    return (1 - z) * nn + z * h


@pytest.mark.parametrize("n", [1, 2])
def test_lstm_against_numpy(n: int) -> None:
    fns = gated.lambdify_cell(gated.gated_cell("lstm", n))
    rng = np.random.default_rng(n)
    p = {"weight_ih": rng.normal(size=(4 * n, 1)), "weight_hh": rng.normal(size=(4 * n, n)),
         "bias_ih": rng.normal(size=4 * n), "bias_hh": rng.normal(size=4 * n)}
    x, h, c = rng.normal(size=1), rng.normal(size=n), rng.normal(size=n)
    h2, c2 = fns.step(p, x, h, c)
    np.testing.assert_allclose(np.concatenate([h2, c2]), _np_lstm(p, x, h, c), rtol=1e-12)
    F = central_jacobian(lambda s: _np_lstm(p, x, s[:n], s[n:]), np.concatenate([h, c]))
    J = fns.jacobian(p, x, h, c)
    np.testing.assert_allclose(J, F, atol=1e-8)
    np.testing.assert_allclose(J[n:, n:], np.diag(fns.gates(p, x, h, c)["f"]), atol=1e-14)


@pytest.mark.parametrize("n", [1, 2])
def test_gru_against_numpy(n: int) -> None:
    assert gated.prove_gru_jacobian(n).holds
    fns = gated.lambdify_cell(gated.gated_cell("gru", n))
    rng = np.random.default_rng(10 + n)
    p = {"weight_ih": rng.normal(size=(3 * n, 1)), "weight_hh": rng.normal(size=(3 * n, n)),
         "bias_ih": rng.normal(size=3 * n), "bias_hh": rng.normal(size=3 * n)}
    x, h = rng.normal(size=1), rng.normal(size=n)
    np.testing.assert_allclose(fns.step(p, x, h), _np_gru(p, x, h), rtol=1e-12)
    np.testing.assert_allclose(fns.jacobian(p, x, h), central_jacobian(lambda s: _np_gru(p, x, s), h), atol=1e-8)


def test_lstm_direct_path() -> None:
    assert gated.prove_lstm_direct_path(1).holds
    assert gated.prove_lstm_direct_path(2).holds


# ----------------------------------------------------------------------------- no user string runs
def _payload(path) -> str:
    """A string that, handed to ``sympy.sympify``, runs a shell command creating ``path``."""
    return f"__import__('os').system('touch {path}')"


_STRING_ENTRY_POINTS = {
    "leaky alpha": lambda s: leaky.leaky_step_bound([s], 1, 1),
    "leaky alpha array": lambda s: leaky.leaky_step_bound(np.array([s]), 1, 1),
    "leaky gamma_w": lambda s: leaky.leaky_step_bound([0.5], s, 1),
    "leaky gamma_h": lambda s: leaky.leaky_step_bound([0.5], 1, s),
    "clip g": lambda s: clipping.clip_by_norm([s, 1], 1),
    "clip g array": lambda s: clipping.clip_by_norm(np.array([s, "1"]), 1),
    "clip g object array": lambda s: clipping.clip_by_norm(np.array([s, 1], dtype=object), 1),
    "clip tau": lambda s: clipping.clip_by_norm([3, 4], s),
    "softmax": lambda s: softmax.softmax([s, 0]),
    "softmax_mse z": lambda s: softmax.softmax_mse_gradient([s, 0], [1, 0]),
    "softmax_mse y": lambda s: softmax.softmax_mse_gradient([0, 0], [s, 0]),
    "eq9 W": lambda s: elman.eq9_numbers([[s, 0], [0, 1]]),
    "eq9 h": lambda s: elman.eq9_numbers(h=[s, 0]),
    "fprime tanh": lambda s: elman.fprime(sp.tanh, s),
    "fprime abstract": lambda s: elman.fprime(sp.Function("f"), s),
    "sigmoid": lambda s: gated.sigmoid(s),
    "gamma_h": lambda s: activation.gamma_h(s, X),
    "Unrolled.at": lambda s: chain.unroll(elman.elman_cell(1), 1).at(s, 1),
    "lambdify a forged cell": lambda s: gated.lambdify_cell(
        gated.GatedCell("gru", 1, 1, {}, sp.Matrix([0]), sp.Matrix([0]), s, {})
    ),
    "omega function": lambda s: omega.omega_functions(2, act="identity")[0](np.eye(2), [s, 0], [0, 0], [1, 1]),
}


@pytest.mark.parametrize("call", list(_STRING_ENTRY_POINTS.values()), ids=list(_STRING_ENTRY_POINTS))
def test_user_strings_are_never_evaluated(call, tmp_path) -> None:
    """A string is refused with a TypeError naming the argument, and nothing runs.

    Before: ``sympify`` (directly, or inside ``Matrix``, ``nsimplify``, ``Max``,
    ``subs``, ``Function``) or ``lambdify`` evaluated the string as Python, so
    the payload created the file.
    """
    target = tmp_path / "pwned"
    with pytest.raises(TypeError, match=r"^`[A-Za-z_][^`]*` (must|takes) "):
        call(_payload(target))
    assert not target.exists()


def test_numbers_of_every_accepted_kind_give_the_exact_bound() -> None:
    """int, float, Fraction, NumPy scalars and SymPy numbers are accepted and read
    exactly: the bound ``max α + max(1 − α) γ_W γ_h`` against exact fractions."""
    from fractions import Fraction

    got = leaky.leaky_step_bound([Fraction(1, 4), np.float32(0.5), sp.Rational(3, 4)], np.int64(3), 2)
    want = Fraction(3, 4) + Fraction(3, 4) * 3 * 2  # max α = 3/4, max(1 − α) = 3/4
    assert sp.nsimplify(got) == sp.Rational(want.numerator, want.denominator)
    g = clipping.clip_by_norm(np.array([3, 4]), Fraction(1, 1))
    assert list(g) == [sp.Rational(3, 5), sp.Rational(4, 5)]


# ----------------------------------------------------------------------------- NumPy integers, records
def test_numpy_integer_steps_unroll_the_same_product() -> None:
    """``np.int64`` sizes and steps are ints: the identity cell ``h′ = w h + u x + b``
    unrolled over 3 steps has ``∂h_3/∂h_0 = w³`` (before, NumPy integers were refused)."""
    u = chain.unroll(elman.elman_cell(np.int64(1), act="identity", n_in=np.int64(1)), np.int64(3))
    w = u.cell.W_hh[0, 0]
    assert u.product(np.int64(3), np.int64(0)) == sp.Matrix([[w**3]])
    assert u.product(np.int64(3), np.int64(1)) == sp.Matrix([[w**2]])
    assert u.step_jacobian(np.int64(2)) == sp.Matrix([[w]])
    assert sp.expand(u.states[3][0]).coeff(u.h0[0]) == w**3
    assert type(u.cell.n) is int and type(u.T) is int


_NP_SIZED = {
    "prove_eq6": lambda i: chain.prove_eq6(i(1), i(1), "pascanu"),
    "prove_eq7_8": lambda i: chain.prove_eq7_8(i(2), i(1), "standard", True),
    "prove_clipping": lambda i: clipping.prove_clipping(i(2)),
    "prove_eq9_row_reading": lambda i: elman.prove_eq9_row_reading(i(2)),
    "prove_step_jacobian": lambda i: elman.prove_step_jacobian(i(1), "pascanu", False, "f"),
    "prove_gru_jacobian": lambda i: gated.prove_gru_jacobian(i(1)),
    "prove_lstm_direct_path": lambda i: gated.prove_lstm_direct_path(i(1)),
    "prove_diag_norm": lambda i: leaky.prove_diag_norm(i(2)),
    "prove_leaky_jacobian": lambda i: leaky.prove_leaky_jacobian(i(1), "pascanu"),
    "prove_omega_gradient": lambda i: omega.prove_omega_gradient(i(2), "pascanu", False),
    "prove_mse_linear_gradient": lambda i: softmax.prove_mse_linear_gradient(i(2)),
    "prove_xent_gradient": lambda i: softmax.prove_xent_gradient(i(2)),
}


@pytest.mark.parametrize("prove", list(_NP_SIZED.values()), ids=list(_NP_SIZED))
def test_numpy_integer_sizes_prove_the_same_identity(prove) -> None:  # type: ignore[no-untyped-def]
    """Each identity holds with NumPy-integer sizes and reads as with Python ints."""
    got = prove(np.int64)
    assert got.holds
    assert got == prove(int)


def test_numpy_integer_sizes_build_the_same_objects() -> None:
    """Cells, Ω and logits built from NumPy integers compute the same mathematics:
    Ω at ``W = 2I`` with ``v = 1`` is ``(‖2v‖/‖v‖ − 1)² = 1``, and the GRU's
    closed-form Jacobian equals SymPy's."""
    c = gated.gated_cell("gru", np.int64(2), np.int64(1))
    ok, _ = is_zero_matrix(gated.step_jacobian(c) - gated.gru_closed_form_jacobian(c))
    assert ok and c.n == 2 and type(c.n) is int
    val, _grad = omega.omega_functions(np.int64(2), act="identity")
    assert float(val(2 * np.eye(2), np.zeros(2), np.zeros(2), np.ones(2))) == 1.0
    assert omega.omega(np.int64(3), act="identity").W.shape == (3, 3)
    assert list(softmax.logits(np.int64(2))) == list(sp.symbols("z_0 z_1", real=True))


def test_hand_built_records_that_fit_are_accepted() -> None:
    """The record checks refuse what does not fit, not what differs from the
    builder: a standard tanh cell with numeric ``W_hh`` (arg and update rebuilt)
    has ``J = diag(sech²(a)) W_hh``, checked against SymPy's Jacobian at a point;
    a GRU with ``bias_ih = 0`` put in keeps its closed-form Jacobian."""
    base = elman.elman_cell(2, act="tanh")
    W = sp.Matrix([[2, 0], [1, 3]])
    arg = W * base.h + base.W_hx * base.x + base.b
    cell = dataclasses.replace(base, W_hh=W, arg=arg, update=arg.applyfunc(sp.tanh))
    J = elman.closed_form_jacobian(cell)
    point = {s: sp.Rational(k + 1, 7) for k, s in enumerate([*cell.h, *cell.x, *cell.b, *cell.W_hx])}
    want = cell.update.jacobian(cell.h).xreplace(point)
    assert max(abs(float(v)) for v in (J.xreplace(point) - want).evalf(30)) < 1e-25
    g = _gru_without_input_bias()
    ok, _ = is_zero_matrix(gated.step_jacobian(g) - gated.gru_closed_form_jacobian(g))
    assert ok


# ----------------------------------------------------------------------------- sigmoid
def test_sigmoid_reads_numbers_and_its_one_derivative() -> None:
    """σ(0) = 1/2 from every kind of zero; σ(2) is ``1/(1 + e⁻²)``; ``fdiff(1)`` is
    the derivative of ``1/(1 + e⁻ˣ)`` (SymPy's), whatever integer type says 1."""
    for zero in (0, 0.0, np.int64(0), np.float64(0.0), sp.Integer(0)):
        assert gated.sigmoid(zero) == sp.Rational(1, 2)
        assert gated.sigmoid.eval(zero) == sp.Rational(1, 2)
    assert gated.sigmoid.eval(X) is None
    assert gated.sigmoid(np.int64(2)).rewrite(sp.exp) == 1 / (1 + sp.exp(-2))
    d = gated.sigmoid(X).fdiff(np.int64(1)).rewrite(sp.exp)
    assert sp.simplify(d - sp.diff(1 / (1 + sp.exp(-X)), X)) == 0


# ----------------------------------------------------------------------------- softmax + squared error
def _two_class_gradient(q: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    """``∂/∂z₀`` of ``½‖softmax(z) − (1, 0)‖²`` and ``p₀ − 1`` for two classes, by hand:
    with ``q = e^{z₀ − z₁}``, ``p₀ = q/(1 + q)`` and the loss is ``(1 − p₀)²``, so the
    derivative is ``−2 p₀ (1 − p₀)² = −2q/(1 + q)³``."""
    return -2 * q / (1 + q) ** 3, -1 / (1 + q)


@pytest.mark.parametrize(
    ("z", "log_q"),
    [((-(2**63), 0), -(2**63)), ((2**63, 0), 2**63), ((2**70, 5), 2**70 - 5), ((-(2**70), 2**70), -(2**71)),
     ((1e300, 0.0), 1e300), ((-1e300, 0.0), -1e300), ((5e-324, 0), 5e-324)],
    ids=["-2**63", "2**63", "2**70-5", "-2**71", "1e300", "-1e300", "subnormal"],
)
def test_softmax_mse_gradient_extreme_logits(z: tuple[float, float], log_q: float) -> None:
    """Exact for integer logits of any size and without cancellation for floats.

    Before: simplifying after putting the numbers in ran mpmath on ``exp(2**63)``
    (``OverflowError: too many digits in integer``, or a ``MemoryError``, or
    minutes for ``2**20``), and at ``z = (1e300, 0)`` it returned ``−e^{−2·10³⁰⁰}``,
    half the gradient, because ``p₀`` rounded to 1.
    """
    grad, err = softmax.softmax_mse_gradient(list(z), [1, 0])
    with mpmath.workdps(40):
        want_g, want_e = _two_class_gradient(mpmath.exp(mpmath.mpf(log_q)))  # z₀ − z₁ exactly
        for got, want in ((grad[0], want_g), (grad[1], -want_g), (err[0], want_e), (err[1], -want_e)):
            got_mp = mpmath.mpf(str(sp.N(got, 40)))
            assert abs(got_mp - want) <= mpmath.mpf(10) ** -13 * abs(want)


@settings(max_examples=10, deadline=None)
@given(
    st.lists(st.integers(-6, 6) | st.fractions(-3, 3, max_denominator=4), min_size=2, max_size=4),
    st.data(),
)
def test_softmax_mse_gradient_is_the_derivative(z: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    """Against SymPy's derivative of ``½‖softmax(z) − y‖²``, taken in symbols and
    evaluated at the point with 40 digits."""
    y = data.draw(st.lists(st.integers(-2, 2), min_size=len(z), max_size=len(z)))
    grad, err = softmax.softmax_mse_gradient(z, y)
    zs = sp.symbols(f"a0:{len(z)}", real=True)
    p = [sp.exp(a) / sum(sp.exp(b) for b in zs) for a in zs]
    loss = sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / 2
    point = {a: sp.Rational(v.numerator, v.denominator) if not isinstance(v, int) else v
             for a, v in zip(zs, z, strict=True)}
    for i, a in enumerate(zs):
        want = sp.diff(loss, a).xreplace(point)
        assert abs(sp.N(grad[i] - want, 40)) < 1e-30
        assert abs(sp.N(err[i] - (p[i] - y[i]).xreplace(point), 40)) < 1e-30
