"""Every public entry point rejects bad arguments with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

from rnntheory import ElmanRNN, Trace
from rnntheory import jacobians as jac

RNG = np.random.default_rng(0)
W = RNG.normal(size=(3, 3))
U = RNG.normal(size=(3, 2))
B = RNG.normal(size=3)
V = RNG.normal(size=(4, 3))
C = RNG.normal(size=4)
X = RNG.normal(size=(5, 2))
Y = np.array([0, 1, 2, 3, 0])


def model(**kw):
    return ElmanRNN(W, U, B, V, C, **kw)


def with_nan(a, idx=(0, 0), value=np.nan):
    a = a.copy()
    a[idx] = value
    return a


M = model()
TRACE_BATCH = M.forward(RNG.normal(size=(5, 2, 2)))
TRACE = M.forward(X)

CASES = [
    ("non-square W_hh", lambda: ElmanRNN(RNG.normal(size=(3, 4)), U, B), ValueError, r"`W_hh` must be square"),
    ("W_hh 1-d", lambda: ElmanRNN(B, U, B), ValueError, r"`W_hh` must have 2 dimension"),
    ("W_hx rows", lambda: ElmanRNN(W, RNG.normal(size=(4, 2)), B), ValueError, r"`W_hx` must have shape"),
    ("b_h length", lambda: ElmanRNN(W, U, np.zeros(4)), ValueError, r"`b_h` must have shape"),
    ("W_yh columns", lambda: ElmanRNN(W, U, B, np.zeros((4, 2)), C), ValueError, r"`W_yh` must have shape"),
    ("b_y length", lambda: ElmanRNN(W, U, B, V, np.zeros(3)), ValueError, r"`b_y` must have shape"),
    ("b_y without W_yh", lambda: ElmanRNN(W, U, B, None, C), ValueError, r"`b_y`.*`W_yh`"),
    ("NaN W_hh", lambda: ElmanRNN(with_nan(W), U, B), ValueError, r"`W_hh` must be finite"),
    ("inf W_hx", lambda: ElmanRNN(W, with_nan(U, value=np.inf), B), ValueError, r"`W_hx` must be finite"),
    ("NaN b_h", lambda: ElmanRNN(W, U, with_nan(B, (1,))), ValueError, r"`b_h` must be finite"),
    ("inf W_yh", lambda: ElmanRNN(W, U, B, with_nan(V, value=-np.inf), C), ValueError, r"`W_yh` must be finite"),
    ("NaN x", lambda: M.forward(with_nan(X)), ValueError, r"`x` must be finite"),
    ("NaN h0", lambda: M.forward(X, h0=with_nan(B, (0,))), ValueError, r"`h0` must be finite"),
    ("T = 0", lambda: M.forward(np.zeros((0, 2))), ValueError, r"`x` must have at least one time step"),
    ("T = 0 grad", lambda: M.value_and_grad(np.zeros((0, 2)), np.zeros(0, int)), ValueError, r"`x` must have at least one time step"),
    ("x features", lambda: M.forward(np.zeros((5, 3))), ValueError, r"`x` must have 2 input features"),
    ("x 1-d", lambda: M.forward(np.zeros(5)), ValueError, r"`x` must have 2 or 3 dimension"),
    ("h0 shape", lambda: M.forward(X, h0=np.zeros(4)), ValueError, r"`h0` must have shape"),
    ("unknown activation", lambda: ElmanRNN(W, U, B, activation="softsign"), ValueError, r"`activation` must be one of"),
    ("unknown form", lambda: ElmanRNN(W, U, B, form="lstm"), ValueError, r"`form` must be one of"),
    ("alpha < 0", lambda: ElmanRNN(W, U, B, alpha=-0.1), ValueError, r"`alpha` must be >= 0"),
    ("alpha > 1", lambda: ElmanRNN(W, U, B, alpha=1.5), ValueError, r"`alpha` must be <= 1"),
    ("alpha vector < 0", lambda: ElmanRNN(W, U, B, alpha=np.array([0.5, -0.2, 0.1])), ValueError, r"`alpha` must lie in \[0, 1\]"),
    ("alpha vector > 1", lambda: ElmanRNN(W, U, B, alpha=np.array([0.5, 0.2, 1.1])), ValueError, r"`alpha` must lie in \[0, 1\]"),
    ("alpha vector length", lambda: ElmanRNN(W, U, B, alpha=np.array([0.5, 0.2])), ValueError, r"`alpha` must have shape"),
    ("alpha NaN", lambda: ElmanRNN(W, U, B, alpha=float("nan")), ValueError, r"`alpha` must be finite"),
    ("integer W_hh", lambda: ElmanRNN(np.ones((3, 3), dtype=int), U, B), TypeError, r"`W_hh` must have dtype float32 or float64"),
    ("integer b_h", lambda: ElmanRNN(W, U, np.zeros(3, dtype=np.int64)), TypeError, r"`b_h` must have dtype float32 or float64"),
    ("complex W_hh", lambda: ElmanRNN(W.astype(complex), U, B), TypeError, r"`W_hh` must be a real floating-point array"),
    ("mixed float32/64 W_hx", lambda: ElmanRNN(W, U.astype(np.float32), B), TypeError, r"`W_hx` must have the dtype of `W_hh`"),
    ("mixed float32/64 b_y", lambda: ElmanRNN(W.astype(np.float32), U.astype(np.float32), B.astype(np.float32), V.astype(np.float32), C), TypeError, r"`b_y` must have the dtype of `W_hh`"),
    ("xent targets float", lambda: M.value_and_grad(X, Y.astype(float)), TypeError, r"`y` must hold integer class indices"),
    ("xent targets shape", lambda: M.value_and_grad(X, Y[:4]), ValueError, r"`y` must have shape"),
    ("class index too large", lambda: M.value_and_grad(X, np.array([0, 1, 4, 0, 0])), ValueError, r"`y` class indices must lie in \[0, 4\)"),
    ("class index negative", lambda: M.value_and_grad(X, np.array([0, -1, 2, 0, 0])), ValueError, r"`y` class indices must lie in"),
    ("negative class where unmasked", lambda: M.value_and_grad(X, np.array([0, -1, 2, 0, 0]), mask=np.array([1, 0.5, 1, 1, 1])), ValueError, r"`y` class indices"),
    ("mse targets shape", lambda: M.value_and_grad(X, np.zeros((5, 3)), loss="mse"), ValueError, r"`y` must have shape"),
    ("bad mask shape", lambda: M.value_and_grad(X, Y, mask=np.ones(4)), ValueError, r"`mask` must have shape"),
    ("negative mask", lambda: M.value_and_grad(X, Y, mask=np.array([1.0, -0.5, 1, 1, 1])), ValueError, r"`mask` must be non-negative"),
    ("NaN mask", lambda: M.value_and_grad(X, Y, mask=with_nan(np.ones(5), (2,))), ValueError, r"`mask` must be finite"),
    ("unknown loss", lambda: M.value_and_grad(X, Y, loss="hinge"), ValueError, r"`loss` must be one of"),
    ("log_norms on batch", lambda: jac.log_norms(M, TRACE_BATCH), ValueError, r"`trace` must be a single-sequence trace, got a batch of 2; `log_norms` takes one sequence"),
    ("step_jacobians on batch", lambda: jac.step_jacobians(M, TRACE_BATCH), ValueError, r"`trace` must be a single-sequence trace, got a batch of 2; `step_jacobians` takes one sequence"),
    ("trace.h list of str", lambda: jac.log_norms(M, Trace(["a", "b"], TRACE.a, TRACE.y)), TypeError, r"`trace.h` must be a real floating-point array, got dtype <U1"),
    ("trace.h complex", lambda: jac.step_jacobians(M, Trace(TRACE.h + 0j, TRACE.a, TRACE.y)), TypeError, r"`trace.h` must be a real floating-point array, got dtype complex128"),
    ("trace.a short", lambda: jac.log_norms(M, Trace(TRACE.h, TRACE.a[:-1], TRACE.y)), ValueError, r"`trace.a` must have shape \(T, n\) = \(5, 3\)"),
    ("lyapunov seed -1", lambda: jac.lyapunov_spectrum(M, TRACE, seed=-1), ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
    ("product k > t", lambda: jac.product(M, TRACE, 2, 3), ValueError, r"`k` must be <= t"),
    ("product t > T", lambda: jac.product(M, TRACE, 6, 0), ValueError, r"`t` must be <= T"),
    ("product negative k", lambda: jac.product(M, TRACE, 2, -1), ValueError, r"`k` must be >= 0"),
    ("profile k > T", lambda: jac.log_norm_profile(M, TRACE, 6), ValueError, r"`k` must be <= T"),
    ("lyapunov k > n", lambda: jac.lyapunov_spectrum(M, TRACE, k=4), ValueError, r"`k` must be <= the state size"),
    ("trace not a Trace", lambda: jac.log_norms(M, TRACE.h), TypeError, r"`trace` must be a Trace"),
    ("unknown init scheme", lambda: ElmanRNN.init(2, 3, 4, scheme="xavier"), ValueError, r"`scheme` must be one of"),
    ("init dtype", lambda: ElmanRNN.init(2, 3, 4, dtype=np.float16), TypeError, r"`dtype` must be float32 or float64"),
    ("init n_hidden 0", lambda: ElmanRNN.init(2, 0, 4), ValueError, r"`n_hidden` must be >= 1"),
    ("init alpha range NaN", lambda: ElmanRNN.init(2, 3, 4, alpha=(float("nan"), 0.2), alpha_kind="leak"), ValueError, r"`alpha` range \(low, high\) = \(nan, 0.2\) is invalid: `low` must be finite"),
    ("init alpha range inverted", lambda: ElmanRNN.init(2, 3, 4, alpha=(0.5, 0.2), alpha_kind="leak"), ValueError, r"`alpha` range \(low, high\) = \(0.5, 0.2\) is invalid"),
    ("init alpha range of dicts", lambda: ElmanRNN.init(2, 3, 4, alpha=({"a": 1}, 0.2), alpha_kind="leak"), TypeError, r"`alpha` range \(low, high\) = .* is invalid: `low` must be a real number"),
    ("replace unknown", lambda: M.replace(V_hh=W), ValueError, r"`V_hh` is not a parameter"),
    ("sequence of single", lambda: TRACE.sequence(0), ValueError, r"`sequence` needs a batched trace"),
    ("sequence index", lambda: TRACE_BATCH.sequence(2), ValueError, r"`b` must be < batch size 2"),
]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [pytest.param(c, e, m, id=name) for name, c, e, m in CASES],
)
def test_bad_arguments_are_rejected(call, exc, match):
    """Each bad argument raises the documented exception type, and the message
    names the offending argument in backticks."""
    assert "`" in match  # every message names its argument
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("scheme", ["gaussian", "orthogonal", "identity", "henaff"])
def test_init_scale_negative_zero_is_scale_zero(scheme):
    """``scale = -0.0`` passes ``scale >= 0`` and means ``W_hh = 0·(…) = 0``:
    the model equals the one for ``scale = 0.0`` (NumPy's normal() refused the
    signed zero with its own unnamed "scale < 0")."""
    from rnntheory import GeneratorRNN

    neg = ElmanRNN.init(2, 3, 4, scheme=scheme, scale=-0.0, seed=1)
    pos = ElmanRNN.init(2, 3, 4, scheme=scheme, scale=0.0, seed=1)
    assert not neg.W_hh.any()
    for name, value in pos.params().items():
        np.testing.assert_array_equal(neg.params()[name], value)
    g_neg = GeneratorRNN.init(2, 3, 2, scale=-0.0, seed=1)
    g_pos = GeneratorRNN.init(2, 3, 2, scale=0.0, seed=1)
    assert not g_neg.W_hh.any()
    for name, value in g_pos.params().items():
        np.testing.assert_array_equal(g_neg.params()[name], value)


def test_renamed_arguments_helper():
    """The shared helper behind every renamed public argument: the old keyword
    gives the new one's result with a DeprecationWarning pointing at the
    caller's line (not at the library), both keywords together are a
    TypeError, and the signature shows only the new name."""
    import inspect
    import warnings

    from rnntheory._validation import renamed_arguments

    @renamed_arguments(limit="threshold")
    def clip(x, threshold=1.0):
        return min(max(x, -threshold), threshold)

    assert list(inspect.signature(clip).parameters) == ["x", "threshold"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert clip(-5.0, limit=2.0) == clip(-5.0, threshold=2.0) == -2.0
    assert len(caught) == 1 and caught[0].category is DeprecationWarning
    assert "`limit` is deprecated" in str(caught[0].message) and "use `threshold`" in str(caught[0].message)
    assert caught[0].filename == __file__
    with pytest.raises(TypeError, match=r"pass `threshold` only \(`limit` is its deprecated old name\), not both"):
        clip(1.0, limit=2.0, threshold=2.0)


def test_deprecated_alias_helper():
    """The shared descriptor behind every renamed attribute: reading the old
    name returns the new attribute's value (the same object) with one
    DeprecationWarning that names owner, old and new and points at the
    reader's line; on the class it is the descriptor; it is not a dataclass
    field. The three renamed attributes of the package read through it."""
    import dataclasses
    import warnings

    from rnntheory._validation import deprecated_alias
    from rnntheory.experiments import mg17, remedies_table
    from rnntheory.remedies.clipping import ValueClipInfo

    @dataclasses.dataclass(frozen=True, slots=True)
    class Info:
        threshold: float
        limit = deprecated_alias("threshold")

    assert [f.name for f in dataclasses.fields(Info)] == ["threshold"]
    assert isinstance(Info.limit, deprecated_alias)
    info = Info(5e-324)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert info.limit == 5e-324 and info.limit is info.threshold
    assert len(caught) == 2 and all(c.category is DeprecationWarning for c in caught)
    assert str(caught[0].message) == (
        "`Info.limit` is deprecated and will be removed in the next release; use `threshold`"
    )
    assert caught[0].filename == __file__
    for owner, old, new in [
        (ValueClipInfo, "limit", "threshold"),
        (mg17.Config, "n_units", "n_hidden"),
        (remedies_table.Config, "esn_units", "esn_n_hidden"),
    ]:
        alias = vars(owner)[old]
        assert isinstance(alias, deprecated_alias) and alias.new == new and alias.owner == owner.__name__


def test_replace_of_every_model_names_an_unknown_key_and_changes_only_what_it_is_given():
    """Every model's ``replace`` starts from the same constructor keywords: an
    unknown key is a ValueError naming the key, the model and (where the
    constructor has options) that it is no option either; a known one changes
    that parameter alone (the others are the very same arrays), and the
    replaced model's forward pass is the loop reference's with the new value."""
    from naive import forward as naive_forward

    from rnntheory import GRU, LSTM, GeneratorRNN

    models = [
        (ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=1), "W_hh", "parameter or option of ElmanRNN"),
        (LSTM.init(2, 3, 2, seed=1), "weight_hh", "parameter of LSTM"),
        (GRU.init(2, 3, 2, seed=1), "weight_hh", "parameter of GRU"),
        (GeneratorRNN.init(2, 3, 2, seed=1), "W_hh", "parameter or option of GeneratorRNN"),
    ]
    for m, name, what in models:
        with pytest.raises(ValueError, match=rf"^`V_hh` is not a {what}$"):
            m.replace(V_hh=np.eye(3))
        new = 0.5 * m.params()[name]
        m2 = m.replace(**{name: new})
        np.testing.assert_array_equal(m2.params()[name], new)
        for k, v in m.params().items():
            if k != name:
                assert m2.params()[k] is v
    elman = models[0][0].replace(W_hh=0.25 * np.eye(3))
    x = np.random.default_rng(0).normal(size=(6, 2))
    h_ref = naive_forward(elman, x)
    np.testing.assert_allclose(elman.forward(x).h, h_ref, rtol=1e-12, atol=1e-15)


def test_every_model_repr_names_its_sizes_options_and_dtype():
    """One format for every model: ``Name(n_in, n_hidden, n_out[, options], dtype)``."""
    from rnntheory import GRU, LSTM, GeneratorRNN

    cases = [
        (ElmanRNN.init(2, 3, 4), "ElmanRNN(n_in=2, n_hidden=3, n_out=4, activation='tanh', form='standard', dtype=float64)"),
        (ElmanRNN.init(2, 3, None, alpha=0.5), "ElmanRNN(n_in=2, n_hidden=3, n_out=3, activation='tanh', form='standard', leaky, dtype=float64)"),
        (ElmanRNN.init(2, 3, 1, alpha=0.5, learn_alpha=True, dtype=np.float32),
         "ElmanRNN(n_in=2, n_hidden=3, n_out=1, activation='tanh', form='standard', leaky (α learned), dtype=float32)"),
        (LSTM.init(2, 3, 4), "LSTM(n_in=2, n_hidden=3, n_out=4, dtype=float64)"),
        (GRU.init(2, 3, None), "GRU(n_in=2, n_hidden=3, n_out=3, dtype=float64)"),
        (GeneratorRNN.init(2, 3, 2), "GeneratorRNN(n_in=2, n_hidden=3, n_out=2, activation='tanh', dtype=float64)"),
    ]
    for model, text in cases:
        assert repr(model) == text
