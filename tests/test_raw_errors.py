"""Bad input at the edges raises ``ValueError``/``TypeError`` naming the argument.

One table: bad seeds, unknown dtypes, empty matrices, extreme finite values
that leave float64's (or float32's) range, and malformed arguments of the
initialisers, the ESN, the activations, the strategies, the ledger and the
symbolic side. Before these checks each row leaked a NumPy, SciPy or
Python error (``SeedSequence expects int``, ``data type 'banana' not
understood``, ``ZeroDivisionError``, ``LinAlgError``, ``OverflowError``,
``AttributeError``, ``KeyError``) or returned a wrong number silently.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from rnntheory import GRU, LSTM, ElmanRNN, esn, init, ledger
from rnntheory import strategies as rst
from rnntheory.activations import get_activation
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.experiments import mg17
from rnntheory.symbolic import chain, clipping, elman, gated, leaky, omega, softmax
from rnntheory.symbolic.activation import gamma_h
from rnntheory.tasks import TemporalOrder
from rnntheory.training import HessianFree, train

RNG = np.random.default_rng(0)
A5 = RNG.uniform(-1.0, 1.0, (5, 5))

# ----------------------------------------------------------------------------- seeds
SEEDED = {
    "haar_orthogonal": lambda s: init.haar_orthogonal(3, seed=s),
    "scaled_orthogonal": lambda s: init.scaled_orthogonal(3, 0.5, seed=s),
    "identity": lambda s: init.identity(3, seed=s),
    "henaff": lambda s: init.henaff(3, seed=s),
    "henaff_generator": lambda s: init.henaff_generator(3, seed=s),
    "gate_blocks": lambda s: init.gate_blocks(3, 4, seed=s),
    "leaky_alpha": lambda s: init.leaky_alpha(3, kind="leak", seed=s),
    "random_esn": lambda s: esn.random_esn(4, spectral_radius=0.9, seed=s),
    "ESN.run": lambda s: esn.random_esn(4, spectral_radius=0.9, seed=0).run(
        None, np.zeros((3, 1)), noise=0.1, seed=s
    ),
    "ElmanRNN.init": lambda s: ElmanRNN.init(2, 3, 1, seed=s),
    "LSTM.init": lambda s: LSTM.init(2, 3, 1, seed=s),
    "GRU.init": lambda s: GRU.init(2, 3, None, seed=s),
    "GeneratorRNN.init": lambda s: GeneratorRNN.init(2, 3, 1, seed=s),
    "Task.sample": lambda s: TemporalOrder(10).sample(2, seed=s),
    "GeneratorRNN.value_and_grad(scheduled)": lambda s: GeneratorRNN.init(1, 3, 2, seed=0).value_and_grad(
        np.zeros((4, 1)), np.zeros(4, dtype=int), mode="scheduled", p=0.5, seed=s
    ),
}
BAD_SEEDS = [
    ("negative", -1, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
    ("2**200", 2**200, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got 16069"),
    ("2**64", 2**64, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\)"),
    ("float", 1.5, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), a numpy Generator or None, got 1\.5"),
    ("numpy float", np.float64(3.0), TypeError, r"`seed` must be .*got np\.float64\(3\.0\)"),
    ("string", "0", TypeError, r"`seed` must be .*got '0'"),
    ("bool", True, TypeError, r"`seed` must be .*got True"),
    ("RandomState", np.random.RandomState(0), TypeError, r"`seed` must be .*got RandomState"),
    ("bit generator", np.random.PCG64(0), TypeError, r"`seed` must be .*got PCG64"),
    ("seed sequence", np.random.SeedSequence(0), TypeError, r"`seed` must be .*got SeedSequence"),
]
SEED_CASES = [
    pytest.param(call, value, exc, match, id=f"{fname}-{label}")
    for fname, call in SEEDED.items()
    for label, value, exc, match in BAD_SEEDS
]
_TASK = TemporalOrder(10)
SEED_CASES += [
    pytest.param(
        lambda v, trainer=trainer: trainer(v), value, exc, match, id=f"{name}-{label}"
    )
    for name, trainer in {
        "train": lambda v: train(ElmanRNN.init(6, 3, 4, seed=0), _TASK, steps=1, batch_size=2,
                                 eval_every=1, eval_size=2, seed=v),
        "train_hf": lambda v: train(ElmanRNN.init(6, 3, 4, seed=0), _TASK, steps=1, batch_size=2,
                                    eval_every=1, eval_size=2, seed=v, optimizer=HessianFree()),
    }.items()
    for label, value, exc, match in [
        ("negative", -1, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
        ("last", 2**64 - 1, ValueError, r"`seed` must be an integer in \[0, 2\*\*64 - 1\) \(the evaluation batch"),
        ("float", 1.5, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), got 1\.5"),
        ("None", None, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), got None"),
        ("generator", np.random.default_rng(0), TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), got Generator"),
    ]
]
SEED_CASES += [
    pytest.param(
        lambda _s, v=v: mg17.mackey_glass_protocol(5, runs=1, seed=v), None, exc, m, id=f"mackey_glass-{lab}"
    )
    for lab, v, exc, m in [
        ("negative", -1, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
        ("2**200", 2**200, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\)"),
        ("Generator", np.random.default_rng(0), TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), got Generator"),
        ("None", None, TypeError, r"`seed` must be an integer in \[0, 2\*\*64\), got None"),
    ]
]


@pytest.mark.parametrize(("call", "value", "exc", "match"), SEED_CASES)
def test_bad_seeds(call, value, exc, match):
    """Every seeded entry point takes an int in [0, 2**64), a Generator or None, nothing else."""
    with pytest.raises(exc, match=match):
        call(value)


def test_good_seeds_still_reproduce():
    """The checks change no stream: an int seed and a Generator seeded alike give
    the draws of ``numpy.random.default_rng`` (the independent reference)."""
    want = np.random.default_rng(7).uniform(0.02, 0.2, 5)
    np.testing.assert_array_equal(init.leaky_alpha(5, 0.02, 0.2, kind="retention", seed=7), want)
    got = init.leaky_alpha(5, 0.02, 0.2, kind="retention", seed=np.random.default_rng(7))
    np.testing.assert_array_equal(got, want)
    big = 2**64 - 1
    np.testing.assert_array_equal(
        init.leaky_alpha(3, kind="retention", seed=big), np.random.default_rng(big).uniform(0.02, 0.2, 3)
    )


# ----------------------------------------------------------------------------- dtypes
DTYPED = {
    "haar_orthogonal": lambda d: init.haar_orthogonal(3, dtype=d),
    "scaled_orthogonal": lambda d: init.scaled_orthogonal(3, 0.5, dtype=d),
    "identity": lambda d: init.identity(3, dtype=d),
    "henaff": lambda d: init.henaff(3, dtype=d),
    "gate_blocks": lambda d: init.gate_blocks(3, 4, dtype=d),
    "leaky_alpha": lambda d: init.leaky_alpha(3, kind="leak", dtype=d),
    "ElmanRNN.init": lambda d: ElmanRNN.init(2, 3, 1, dtype=d),
    "LSTM.init": lambda d: LSTM.init(2, 3, 1, dtype=d),
    "GeneratorRNN.init": lambda d: GeneratorRNN.init(2, 3, 1, dtype=d),
    "strategies.elman_models": lambda d: rst.elman_models(dtype=d),
}
BAD_DTYPES = [
    ("float16", "float16", r"`dtype` must be float32 or float64, got float16"),
    ("int32", "int32", r"`dtype` must be float32 or float64, got int32"),
    ("complex128", np.complex128, r"`dtype` must be float32 or float64, got complex128"),
    ("banana", "banana", r"`dtype` must be float32 or float64, got 'banana'"),
    ("None", None, r"`dtype` must be float32 or float64, got None"),
    ("big-endian", ">f8", r"`dtype` must be float32 or float64, got >f8"),
]


@pytest.mark.parametrize(
    ("call", "value", "match"),
    [
        pytest.param(call, value, match, id=f"{fname}-{label}")
        for fname, call in DTYPED.items()
        for label, value, match in BAD_DTYPES
    ],
)
def test_bad_dtypes(call, value, match):
    """float32 and float64 only; anything else is a TypeError that shows what came."""
    with pytest.raises(TypeError, match=match):
        call(value)


# ----------------------------------------------------------------------------- everything else
def _esn(W):
    n = np.shape(W)[0]
    return esn.ESN(W, np.zeros((n, 0)), np.zeros((n, 1)), np.zeros(n))


_TRAINED = esn.fit(esn.random_esn(4, n_in=1, spectral_radius=0.5, seed=0), np.ones((5, 1)), np.ones((5, 1)))


class _FakeCell:
    kind = "gru"


CASES = [
    # ESN scalers: empty and extreme matrices
    ("radius of a (0, 0) matrix", lambda: esn.scale_to_spectral_radius(np.zeros((0, 0)), 0.9),
     ValueError, r"`W` must have at least one row, got shape \(0, 0\)"),
    ("norm of a (0, 3) matrix", lambda: esn.scale_to_spectral_norm(np.zeros((0, 3)), 0.9),
     ValueError, r"`W` must be square, got shape \(0, 3\)"),
    ("ESN with a (0, 0) reservoir", lambda: _esn(np.zeros((0, 0))),
     ValueError, r"`W` must have at least one row"),
    ("radius scaling that overflows", lambda: esn.scale_to_spectral_radius([[0.0, 1.0], [1e-300, 0.0]], 1e300),
     ValueError, r"`W` cannot be scaled to spectral radius 1e\+300: the scaled entries overflow float64"),
    ("radius scaling that underflows", lambda: esn.scale_to_spectral_radius(A5, 5e-324),
     ValueError, r"`W` cannot be scaled to spectral radius 5e-324: the scaled entries underflow float64"),
    ("norm target a huge int", lambda: esn.scale_to_spectral_norm(A5, 2**2000),
     ValueError, r"`sigma` must be finite \(within float64's range\), got 1148"),
    ("ridge on (0, 3) features", lambda: esn.ridge_regression(np.zeros((0, 3)), np.zeros((0, 1)), 1e-8),
     ValueError, r"`features` must have at least one row and one column, got shape \(0, 3\)"),
    ("ridge on (3, 0) features", lambda: esn.ridge_regression(np.zeros((3, 0)), np.zeros((3, 1)), 1e-8),
     ValueError, r"`features` must have at least one row and one column, got shape \(3, 0\)"),
    ("ridge on (3, 0) targets", lambda: esn.ridge_regression(np.ones((3, 2)), np.zeros((3, 0)), 1e-8),
     ValueError, r"`targets` must have at least one column, got shape \(3, 0\)"),
    ("ridge path with a negative λ", lambda: esn.ridge_path(np.ones((4, 2)), np.ones((4, 1)), [1e-3, -1.0]),
     ValueError, r"`ridges` must be a non-empty sequence of λ >= 0"),
    ("ridge readout beyond float64", lambda: esn.ridge_regression(RNG.normal(size=(6, 2)) * 1e-320, np.ones((6, 1)), 0.0),
     ValueError, r"`targets` are too large relative to `features`: the readout W_out is beyond float64's range"),
    ("ridge a huge int", lambda: esn.ridge_regression(np.ones((3, 2)), np.ones((3, 1)), 2**2000),
     ValueError, r"`ridge` must be finite \(within float64's range\)"),
    ("ESN drive beyond float64", lambda: esn.ESN(np.eye(2), np.full((2, 1), 1e308), np.zeros((2, 1)), np.zeros(2)).run(
        np.full((3, 1), 1e308)), ValueError, r"`inputs`/`teacher` drive the reservoir beyond float64's range"),
    ("ESN free run beyond float64", lambda: esn.ESN(
        _TRAINED.esn.W, _TRAINED.esn.W_in, np.full((4, 1), 1e308), _TRAINED.esn.b, W_out=np.full((1, 6), 1e308)
    ).generate(3, x0=np.ones(4), y0=np.ones(1), inputs=np.ones((3, 1))),
     ValueError, r"the free run left float64's range"),
    # initialisers: extremes and junk
    ("identity float32 beyond range", lambda: init.identity(2, 1e300, dtype="float32"),
     ValueError, r"`scale` must be at most 3\.40282e\+38 for dtype float32 \(larger entries overflow\), got 1e\+300"),
    ("scaled_orthogonal float32 beyond range", lambda: init.scaled_orthogonal(2, 1e39, dtype=np.float32, seed=0),
     ValueError, r"`scale` must be at most 3\.40282e\+38 for dtype float32"),
    ("identity scale a huge int", lambda: init.identity(2, 2**2000),
     ValueError, r"`scale` must be finite \(within float64's range\)"),
    ("leaky_alpha bound a huge int", lambda: init.leaky_alpha(2, 2**2000, kind="leak"),
     ValueError, r"`low` must be finite \(within float64's range\)"),
    ("gate_blocks initializer returns text", lambda: init.gate_blocks(2, 2, lambda n, seed: "abc"),
     TypeError, r"`initializer` must return a real \(2, 2\) array, got str"),
    ("gate_blocks initializer returns NaN", lambda: init.gate_blocks(2, 2, lambda n, seed: np.full((n, n), np.nan)),
     ValueError, r"`initializer` must return finite entries, got 4 NaN/inf entries"),
    # activations
    ("tanh of text", lambda: get_activation("tanh").f("abc"),
     TypeError, r"`x` must be a real array \(integers or floats\), got dtype <U3"),
    ("relu of a complex number", lambda: get_activation("relu").f(1 + 2j),
     TypeError, r"`x` must be a real array \(integers or floats\), got dtype complex128"),
    ("sigmoid′ of objects", lambda: get_activation("sigmoid").fprime(np.array([None])),
     TypeError, r"`x` must be a real array \(integers or floats\), got dtype object"),
    ("tanh of a ragged list", lambda: get_activation("tanh").f([[1.0], [1.0, 2.0]]),
     TypeError, r"`x` must be a real array, got list of ragged shape"),
    # strategies (argument validation when the strategy is made)
    ("sizes text", lambda: rst.sizes("a", 3), TypeError, r"`min_value` must be an integer, got 'a'"),
    ("sizes reversed", lambda: rst.sizes(5, 3), ValueError, r"`min_value` must be <= `max_value` = 3, got 5"),
    ("spectral norm subnormal", lambda: rst.matrices_with_spectral_norm(3, 5e-324),
     ValueError, r"`norm` must be at least 2\.2250738585072014e-308 \(the smallest normal float64\), got 5e-324"),
    ("spectral radius size text", lambda: rst.matrices_with_spectral_radius("3", 1.0),
     TypeError, r"`n` must be an integer, got '3'"),
    ("input_sequences n_in text", lambda: rst.input_sequences(3, "2"), TypeError, r"`n_in` must be an integer, got '2'"),
    ("input_sequences batch 0", lambda: rst.input_sequences(3, 2, batch=0), ValueError, r"`batch` must be >= 1, got 0"),
    ("elman_models input_scale text", lambda: rst.elman_models(input_scale="x"),
     TypeError, r"`input_scale` must be a real number, got 'x'"),
    ("elman_models weight_norm beyond float32", lambda: rst.elman_models(weight_norm=1e39, dtype="float32"),
     ValueError, r"`weight_norm` must be <= 3\.4028234663852886e\+38, got 1e\+39"),
    ("gated_models unknown cell", lambda: rst.gated_models("banana"),
     ValueError, r"`cell` must be one of \('lstm', 'gru'\), got 'banana'"),
    ("non_normal radius/min_norm overflow", lambda: rst.non_normal_matrices(3, radius=1e308, min_norm=1e-10),
     ValueError, r"`radius` = 1e\+308 is too large for `min_norm` = 1e-10"),
    # ledger
    ("counterexample id is a path", lambda: ledger.load_counterexample("../../pyproject"),
     ValueError, r"`id` must be 'C' followed by two digits \(such as 'C01'\), got '\.\./\.\./pyproject'"),
    ("counterexample id an int", lambda: ledger.counterexample_path(5),
     TypeError, r"`id` must be a claim ID string such as 'C01', got int"),
    ("run ids ints", lambda: list(ledger.run([1])), TypeError, r"`ids` must hold claim ID strings such as 'C01', got 1"),
    ("run ids a bare string", lambda: list(ledger.run("C01")),
     TypeError, r"`ids` must be an iterable of claim IDs such as \['C01'\], got the string 'C01'"),
    ("run ids not iterable", lambda: list(ledger.run(5)), TypeError, r"`ids` must be an iterable of claim IDs"),
    ("claim method an int", lambda: ledger.claim("C99", claim="x", where="y", method=5),
     TypeError, r"`method` must be a string, got int"),
    ("to_markdown of junk", lambda: ledger.to_markdown([1]),
     TypeError, r"`results` must hold ClaimResult rows \(from `run`\), got int"),
    # symbolic side: numbers and SymPy objects only
    ("leaky bound alpha text", lambda: leaky.leaky_step_bound(["0.5"], 1, 1),
     TypeError, r"`alpha\[0\]` must be a number .* got the str '0\.5' \(strings are never parsed\)"),
    ("leaky bound alpha a string", lambda: leaky.leaky_step_bound("0.5", 1, 1),
     TypeError, r"`alpha` must be a sequence, NumPy array or SymPy matrix of numbers, got str"),
    ("leaky bound gamma_w text", lambda: leaky.leaky_step_bound([0.5], "2", 1),
     TypeError, r"`gamma_w` must be a number .*\(strings are never parsed\)"),
    ("leaky bound alpha NaN", lambda: leaky.leaky_step_bound([sp.nan], 1, 1), ValueError, r"`alpha` must lie in \[0, 1\], got nan"),
    ("leaky bound alpha complex", lambda: leaky.leaky_step_bound([sp.I], 1, 1), ValueError, r"`alpha` must lie in \[0, 1\], got I"),
    ("leaky bound gamma_h infinite", lambda: leaky.leaky_step_bound([0.5], 1, sp.oo),
     ValueError, r"`gamma_h` must be a finite real number >= 0, got oo"),
    ("leaky bound gamma_w a float NaN", lambda: leaky.leaky_step_bound([0.5], float("nan"), 1),
     ValueError, r"`gamma_w` must be finite, got nan"),
    ("clip text entry", lambda: clipping.clip_by_norm(["3", 4], 1), TypeError, r"`g\[0\]` must be a number"),
    ("clip numpy strings", lambda: clipping.clip_by_norm(np.array(["3", "4"]), 1),
     TypeError, r"`g` must hold numbers or SymPy expressions, got dtype <U1"),
    ("clip tau text", lambda: clipping.clip_by_norm([3, 4], "1"), TypeError, r"`threshold` must be a number"),
    ("clip tau negative", lambda: clipping.clip_by_norm([3, 4], -1), ValueError, r"`threshold` must be a finite real number > 0, got -1"),
    ("clip empty g", lambda: clipping.clip_by_norm([], 1),
     ValueError, r"`g` must be a column vector with at least one entry, got shape \(0, 1\)"),
    ("softmax text", lambda: softmax.softmax(["0", 1]), TypeError, r"`z\[0\]` must be a number"),
    ("softmax_mse_gradient length 9", lambda: softmax.softmax_mse_gradient([0] * 9, [0] * 9),
     ValueError, r"`z` and `y` must be column vectors of one length from 2 to 8, got shapes \(9, 1\) and \(9, 1\)"),
    ("softmax_mse_gradient ragged", lambda: softmax.softmax_mse_gradient([[0, 1], [0]], [0, 1]),
     ValueError, r"`z` must have rows of one length, got lengths \[2, 1\]"),
    ("eq9_numbers text", lambda: elman.eq9_numbers([["1", 0], [0, 1]]), TypeError, r"`W\[0\]\[0\]` must be a number"),
    ("eq9_numbers symbol", lambda: elman.eq9_numbers([[sp.Symbol("w"), 0], [0, 1]]),
     TypeError, r"`W` must hold numbers, got the expression w"),
    ("eq9_numbers NaN", lambda: elman.eq9_numbers([[np.nan, 0], [0, 1]]), ValueError, r"`W\[0\]\[0\]` must be finite, got nan"),
    ("eq9_numbers complex", lambda: elman.eq9_numbers([[sp.I, 0], [0, 1]]),
     ValueError, r"`W` must hold finite real numbers, got I"),
    ("eq9_numbers beyond float64", lambda: elman.eq9_numbers([[1, -1.7e308], [1.7e308, 1]], h=(1, 1), act="identity"),
     ValueError, r"a result of `eq9_numbers` is beyond float64's range"),
    ("fprime text", lambda: elman.fprime(sp.tanh, "0"), TypeError, r"`arg` must be a number"),
    ("fprime of a string", lambda: elman.fprime("tanh", 0), TypeError, r"`f` must be a SymPy function or callable, got str"),
    ("elman_cell leaky text", lambda: elman.elman_cell(1, leaky="yes"), TypeError, r"`leaky` must be a bool, got 'yes'"),
    ("elman_cell act a list", lambda: elman.elman_cell(1, act=["tanh"]), ValueError, r"`act` must be one of"),
    ("step_jacobian of junk", lambda: elman.step_jacobian("cell"), TypeError, r"`cell` must be a SymbolicCell"),
    ("unroll of junk", lambda: chain.unroll(None, 2), TypeError, r"`cell` must be a SymbolicCell"),
    ("Unrolled.at step 0", lambda: chain.unroll(elman.elman_cell(1), 2).at(sp.Matrix([1]), 0),
     ValueError, r"`t` must lie in \[1, 2\], got 0"),
    ("Unrolled.product k > t", lambda: chain.unroll(elman.elman_cell(1), 2).product(1, 2),
     ValueError, r"`k` must lie in \[0, 1\], got 2"),
    ("cached proof with a float size", lambda: (leaky.prove_diag_norm(2), leaky.prove_diag_norm(2.0)),
     TypeError, r"`n` must be an int, got 2\.0"),
    ("cached proof with a list size", lambda: clipping.prove_clipping([2]), TypeError, r"`n` must be an int, got \[2\]"),
    ("omega squared text", lambda: omega.omega(2, squared="no"), TypeError, r"`squared` must be a bool, got 'no'"),
    ("omega gradient of junk", lambda: omega.omega_gradient_closed_form(None), TypeError, r"`s` must be an OmegaSetup"),
    ("omega function W shape", lambda: omega.omega_functions(2, act="identity")[0](np.eye(3), [0, 0], [0, 0], [1, 1]),
     ValueError, r"`W` must have shape \(2, 2\), got shape \(3, 3\)"),
    ("gated step of junk", lambda: gated.step_jacobian(_FakeCell()), TypeError, r"`cell` must be a GatedCell"),
    ("lambdify a cell holding a string", lambda: gated.lambdify_cell(
        gated.GatedCell("gru", 1, 1, {}, sp.Matrix([0]), sp.Matrix([0]), "__import__('os')", {})),
     TypeError, r"`cell\.new_state` must be a SymPy matrix, got str"),
    ("gated step without params", lambda: gated.lambdify_cell(gated.gated_cell("gru")).step({}, [0.0], [0.0]),
     ValueError, r"`params` must hold .* missing 'weight_ih'"),
    ("sigmoid of a string", lambda: gated.sigmoid("x"), TypeError, r"`sigmoid` takes a SymPy expression or a number"),
    ("gamma_h of an equation", lambda: gamma_h(sp.Eq(sp.Symbol("x"), 1), sp.Symbol("x")),
     TypeError, r"`expr` must be a sympy expression, got Equality"),
    ("gamma_h with a parameter", lambda: gamma_h(sp.Symbol("a") * sp.Symbol("x"), sp.Symbol("x")),
     ValueError, r"`expr` must depend on `x` = x only"),
    ("gamma_h infinite slope", lambda: gamma_h(sp.oo * sp.Symbol("x"), sp.Symbol("x")),
     ValueError, r"sup\|f′\| is not a finite real number"),
]


@pytest.mark.parametrize(("label", "call", "exc", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_inputs(label, call, exc, match):
    """Each bad input raises the documented error naming the argument."""
    with pytest.raises(exc, match=match):
        call()


def test_torch_bridge_refusals():
    """Modules whose parameters cannot be loaded are refused naming ``module``/``readout``
    (before: ``Got unsupported ScalarType BFloat16``, ``Cannot copy out of meta
    tensor``, an overflowing float32 bias sum, messages naming ``W_yh``)."""
    from oracle import torch_or_skip

    torch = torch_or_skip()
    from rnntheory import from_torch

    cases = [
        (lambda: from_torch(torch.nn.LSTM(2, 3, dtype=torch.bfloat16)),
         TypeError, r"`module` must have float32 or float64 parameters, got torch\.bfloat16"),
        (lambda: from_torch(torch.nn.RNN(2, 3, dtype=torch.float16)),
         TypeError, r"`module` must have float32 or float64 parameters, got torch\.float16"),
        (lambda: from_torch(torch.nn.GRUCell(2, 3, dtype=torch.complex64)),
         TypeError, r"`module` must have float32 or float64 parameters, got torch\.complex64"),
        (lambda: from_torch(torch.nn.RNN(2, 3, device="meta")),
         ValueError, r"`module` has parameters on the meta device"),
        (lambda: from_torch(torch.nn.RNN(2, 3), torch.nn.Linear(4, 1)),
         ValueError, r"`readout` must take 3 inputs \(the module's hidden size\), got in_features=4"),
        (lambda: from_torch(torch.nn.RNN(2, 3), torch.nn.Linear(3, 1, dtype=torch.float64)),
         TypeError, r"`readout` must have the module's dtype torch\.float32, got torch\.float64"),
        (lambda: from_torch(torch.nn.RNN(2, 3), torch.nn.Linear(3, 1, dtype=torch.float16)),
         TypeError, r"`readout` must have float32 or float64 parameters, got torch\.float16"),
    ]
    rnn = torch.nn.RNN(2, 3)
    with torch.no_grad():
        rnn.bias_ih_l0.fill_(3e38)
        rnn.bias_hh_l0.fill_(3e38)
    cases.append((lambda: from_torch(rnn), ValueError, r"`module`'s bias_ih \+ bias_hh .* overflows float32"))
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
