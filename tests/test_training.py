"""The training loop: determinism, divergence handling, remedies wired through."""

from __future__ import annotations

import numpy as np
import pytest

from rnntheory import LSTM, ElmanRNN
from rnntheory.tasks import TemporalOrder, make_task
from rnntheory.training import (
    SGD,
    Adam,
    GradientClipping,
    HessianFree,
    Omega,
    Penalty,
    RMSProp,
    SpectralProjection,
    TruncatedBPTT,
    apply_updates,
    train,
)


def _model(task, n=8, seed=0, **kw):
    return ElmanRNN.init(task.n_in, n, task.n_out, scheme="smart_tanh", seed=seed, **kw)


def test_same_seed_same_history_bitwise():
    """Two runs with the same seed give bitwise-identical histories (losses,
    norms, evaluation errors, final weights); another seed differs."""
    task = TemporalOrder(12)
    runs = [
        train(_model(task), task, optimizer=SGD(0.05, momentum=0.9), steps=15, batch_size=5,
              seed=s, eval_every=5, eval_size=20, remedies=(GradientClipping(1.0),))
        for s in (3, 3, 4)
    ]
    a, b, c = runs
    for name in ("loss", "grad_norm", "grad_norm_clipped", "gamma_w", "eval_error", "eval_loss"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert np.array_equal(a.model.W_hh, b.model.W_hh)
    assert not np.array_equal(a.loss, c.loss)


def test_clipping_bounds_every_applied_gradient():
    """With clipping at τ, every applied gradient has global norm ≤ τ(1 + 1e-12),
    and each step whose raw norm exceeded τ is logged as a clip event."""
    task = TemporalOrder(12)
    h = train(ElmanRNN.init(6, 8, 4, scheme="gaussian", scale=3.0, seed=1), task, optimizer=SGD(0.1), steps=20, batch_size=4, seed=0, eval_every=10, eval_size=10,
              remedies=(GradientClipping(0.5),))
    assert np.all(h.grad_norm_clipped <= 0.5 * (1 + 1e-12))
    assert h.count("clip") == int(np.sum(h.grad_norm > 0.5))
    assert h.count("clip") > 0


def test_divergence_fallback_never_applies_a_non_finite_gradient():
    """A model whose gradient explodes past the threshold: with the fallback the
    parameters stay finite and W_hh is shrunk by 0.02·lr per fallback step;
    with 'stop' the run stops and returns the last finite model."""
    task = make_task("addition", 20)
    m = ElmanRNN.init(2, 6, 1, scheme="gaussian", scale=1.0, seed=2, activation="identity")
    m = m.replace(W_hh=np.eye(6) * 3.0)  # linear RNN, |W^t| = 3^t: the gradient explodes
    h = train(m, task, optimizer=SGD(0.01), steps=4, batch_size=2, seed=0, eval_every=2, eval_size=5,
              divergence_threshold=1e3)
    assert h.count("fallback") == 4
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())
    np.testing.assert_allclose(h.model.W_hh, np.eye(6) * 3.0 * (1 - 0.02 * 0.01) ** 4, rtol=1e-14)
    s = train(m, task, optimizer=SGD(0.01), steps=4, batch_size=2, seed=0, eval_every=2, eval_size=5,
              divergence="stop", divergence_threshold=1e3)
    assert s.stopped is not None and s.steps == 1
    np.testing.assert_array_equal(s.model.W_hh, m.W_hh)


def test_projection_keeps_sigma_max_at_most_c():
    """With SpectralProjection(c), σ_max(W_hh) ≤ c after every step."""
    task = TemporalOrder(10)
    h = train(ElmanRNN.init(6, 8, 4, scheme="gaussian", scale=2.0, seed=3), task,
              optimizer=SGD(0.5), steps=10, batch_size=4, seed=1, eval_every=5, eval_size=10,
              remedies=(SpectralProjection(0.9),))
    assert np.all(h.gamma_w <= 0.9 * (1 + 1e-12))


def test_penalty_and_truncation_are_wired_in():
    """An L2 penalty adds ½λ‖W_hh‖_F² to the logged loss of the same batch, and
    TruncatedBPTT(k2) changes the gradient."""
    task = TemporalOrder(10)
    m = _model(task, seed=4)
    plain = train(m, task, steps=1, batch_size=3, seed=5, eval_every=1, eval_size=5)
    pen = train(m, task, steps=1, batch_size=3, seed=5, eval_every=1, eval_size=5,
                remedies=(Penalty("l2", 1.0),))
    l2 = float(np.sum(m.W_hh**2))
    assert pen.loss[0] - plain.loss[0] == pytest.approx(0.5 * l2, rel=1e-9)
    trunc = train(m, task, steps=1, batch_size=3, seed=5, eval_every=1, eval_size=5,
                  remedies=(TruncatedBPTT(2),))
    assert trunc.grad_norm[0] != plain.grad_norm[0]


@pytest.mark.parametrize("opt", [SGD(0.05, momentum=0.9, nesterov=True), RMSProp(0.01), Adam(0.01)])
def test_training_reduces_the_loss_on_a_short_task(opt):
    """A few dozen steps of each optimizer lower the evaluation loss of temporal
    order at length 10 below its starting value (a real learning signal)."""
    task = TemporalOrder(10)
    h = train(_model(task, n=12, seed=6), task, optimizer=opt, steps=60, batch_size=10, seed=2,
              eval_every=60, eval_size=200, remedies=(GradientClipping(1.0),))
    first = TemporalOrder(10)
    start = train(_model(task, n=12, seed=6), first, steps=0, eval_size=200, seed=2)
    assert h.eval_loss[-1] < start.eval_loss[-1]


def test_gated_model_trains():
    """An LSTM goes through the same loop (recurrent matrix weight_hh)."""
    task = TemporalOrder(10)
    m = LSTM.init(task.n_in, 6, task.n_out, seed=7)
    h = train(m, task, optimizer=Adam(0.01), steps=5, batch_size=4, seed=0, eval_every=5, eval_size=10,
              remedies=(GradientClipping(1.0),))
    assert h.steps == 5 and np.all(np.isfinite(h.loss))


def _train(**kw):
    task = TemporalOrder(10)
    args = {"model": _model(task), "task": task, "steps": 1, "batch_size": 2, "eval_size": 2, **kw}
    return lambda: train(**args)


def _params():
    return {"W": np.array([[0.5, -1.0], [2.0, 0.25]]), "b": np.array([1.0, -0.5])}


def _update(opt, grads=None, state=None):
    """``opt.update(grads, state)`` with valid defaults (the state of ``_params()``)."""
    g = _params() if grads is None else grads
    st = opt.init(_params()) if state is None else state
    return lambda: opt.update(g, st)


BAD_INPUTS = [
    (_train(steps=-1), ValueError, "`steps`"),
    (_train(divergence="ignore"), ValueError, "`divergence`"),
    (_train(remedies=("clip",)), TypeError, "`remedies`"),
    (_train(optimizer="sgd"), TypeError, "`optimizer`"),
    # a str model or task raised AttributeError ('str' object has no attribute 'n_in')
    (_train(model="elman"), TypeError, "`model` must be an rnntheory model"),
    (_train(task="copy"), TypeError, r"`task` must be an rnntheory\.tasks\.Task"),
    (_train(task="copy", optimizer=HessianFree()), TypeError, r"`task` must be an rnntheory\.tasks\.Task"),
    # a non-iterable raised "'object' object is not iterable"; a repeated kind kept the last
    (_train(remedies=object()), TypeError, "`remedies` must be a tuple"),
    (_train(remedies=object(), optimizer=HessianFree()), TypeError, "`remedies` must be a tuple"),
    (_train(remedies=(GradientClipping(1.0), GradientClipping(2.0))), ValueError,
     "`remedies` may hold one GradientClipping"),
    (_train(progress="yes"), TypeError, "`progress` must be a bool"),
    (lambda: Omega(1.0, hold_fprime=1), TypeError, "`hold_fprime` must be a bool"),
    # SGD(nesterov=nan) was accepted (NaN is truthy)
    (lambda: SGD(0.1, momentum=0.9, nesterov=float("nan")), TypeError, "`nesterov` must be a bool"),
    # init/update on a list raised AttributeError ('list' object has no attribute 'items')
    (lambda: SGD().init(list(_params().values())), TypeError, "`params` must be a dict of arrays"),
    (lambda: Adam().init({"W": np.array([1.0 + 1j])}), TypeError, r"`params\['W'\]` must be a real"),
    (_update(SGD(), grads=list(_params().values())), TypeError, "`grads` must be a dict of arrays"),
    # an extra or a missing key raised KeyError
    (_update(Adam(), grads={**_params(), "junk": np.zeros(1)}), ValueError, r"`grads` must have the keys of `state\['m'\]`"),
    (_update(RMSProp(), grads={"W": _params()["W"]}), ValueError, r"`grads` must have the keys of `state\['s'\]`"),
    (_update(Adam(), grads={**_params(), 1: np.zeros(1)}), TypeError, "`grads` keys must be parameter names"),
    (_update(SGD(0.1, momentum=0.5), grads={**_params(), "W": np.ones((2, 3))}), ValueError,
     r"`grads\['W'\]` must have shape \(2, 2\)"),
    (_update(RMSProp(), grads={**_params(), "W": np.full((2, 2), np.nan)}), ValueError,
     r"`grads\['W'\]` must be finite, got 4 NaN/inf entries"),
    (_update(SGD(), grads={**_params(), "W": np.array([["a", "b"], ["c", "d"]])}), TypeError,
     r"`grads\['W'\]` must be a real floating-point array"),
    # a malformed state raised KeyError ('t', 's') or divided by zero (t = -1)
    (_update(Adam(), state={}), ValueError, r"`state` must be the dict Adam\.init returned, with the keys \['m', 't', 'v'\]"),
    (_update(RMSProp(), state=[]), TypeError, "`state` must be the dict RMSProp.init returned"),
    (_update(Adam(), state={**Adam().init(_params()), "t": -1}), ValueError, r"`state\['t'\]` must be >= 0, got -1"),
    (_update(Adam(), state={**Adam().init(_params()), "t": float("inf")}), TypeError, r"`state\['t'\]` must be an integer"),
    (_update(RMSProp(), state={"s": {"W": -np.ones((2, 2)), "b": np.zeros(2)}}), ValueError,
     r"`state\['s'\]\['W'\]` must be non-negative"),
    (_update(SGD(0.1, momentum=0.9), state={"v": {"W": np.zeros((2, 2))}}), ValueError,
     r"`grads` must have the keys of `state\['v'\]` \['W'\], got \['W', 'b'\] \(not in `state\['v'\]`: \['b'\]\)"),
    (_update(Adam(), state={**Adam().init(_params()), "v": {"W": np.zeros((2, 2))}}), ValueError,
     r"`state\['v'\]` must have the keys of `state\['m'\]`"),
    # g² overflowed the second moment: a RuntimeWarning and inf in the state
    (_update(Adam(), grads={**_params(), "W": np.full((2, 2), 1e300)}), ValueError,
     r"`grads` \(max \|g\| = 1e\+300\) gives a non-finite Adam step"),
    (_update(RMSProp(), grads={"W": np.full((2, 2), 1e20, np.float32), "b": np.zeros(2, np.float32)},
             state=RMSProp().init({"W": np.zeros((2, 2), np.float32), "b": np.zeros(2, np.float32)})),
     ValueError, "gives a non-finite RMSProp step"),
    (lambda: apply_updates(list(_params().values()), _params()), TypeError, "`params` must be a dict of arrays"),
    (lambda: apply_updates(_params(), list(_params().values())), TypeError, "`updates` must be a dict of arrays"),
    (lambda: apply_updates(_params(), {"junk": np.zeros(1)}), ValueError,
     r"`updates` must have a subset of the keys of `params` \['W', 'b'\], got \['junk'\]"),
    (lambda: apply_updates(_params(), {"b": np.zeros(3)}), ValueError, r"`updates\['b'\]` must have shape \(2,\)"),
    (lambda: apply_updates({**_params(), "W": np.full((2, 2), np.nan)}, _params()), ValueError,
     r"`params\['W'\]` must be finite"),
    # float32 parameters + 1e39 gave inf with a RuntimeWarning
    (lambda: apply_updates({"W": np.ones(2, np.float32)}, {"W": np.array([1e39, 0.0])}), ValueError,
     r"`updates\['W'\]` \(max \|update\| = 1e\+39\) takes `params\['W'\]` \(max \|entry\| = 1\) beyond float32's range"),
    (lambda: apply_updates({"W": np.array([1.7e308])}, {"W": np.array([1.7e308])}), ValueError,
     "beyond float64's range"),
]


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)))
def test_bad_inputs(case):
    """Bad arguments are refused with a TypeError/ValueError naming the argument
    (never AttributeError, KeyError or a RuntimeWarning)."""
    call, exc, match = BAD_INPUTS[case]
    with pytest.raises(exc, match=match):
        call()


def test_mismatched_model_and_task():
    """A model whose sizes do not fit the task is refused, naming both."""
    with pytest.raises(ValueError, match=r"`model`.*`task`"):
        train(ElmanRNN.init(2, 4, 1, seed=0), TemporalOrder(10))


def test_chunked_truncation_in_training():
    """TruncatedBPTT(k2, k1) passes Williams & Peng's schedule through: the first
    step's gradient norm equals the norm of value_and_grad(truncate=(k1, k2)) on
    the same batch (mean over the batch)."""
    from rnntheory.remedies import global_norm

    task = TemporalOrder(12)
    m = _model(task, seed=9)
    h = train(m, task, steps=1, batch_size=4, seed=3, eval_every=1, eval_size=5,
              remedies=(TruncatedBPTT(4, k1=4),))
    batch = task.sample(4, np.random.default_rng(3))
    _, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask, truncate=(4, 4))
    assert h.grad_norm[0] == pytest.approx(global_norm({k: v / 4 for k, v in g.params().items()}), rel=1e-12)
    with pytest.raises(ValueError, match="`k2`"):
        TruncatedBPTT(2, k1=3)


def test_gated_model_stops_cleanly_on_divergence():
    """With divergence='stop' a gated model (whose recurrent matrix weight_hh is
    4n × n, so has no spectral radius) stops at the first step whose gradient norm
    exceeds the threshold, returns its initial (finite) parameters unchanged and
    records ρ as NaN rather than failing."""
    task = TemporalOrder(10)
    m = LSTM.init(task.n_in, 4, task.n_out, seed=8)
    h = train(m, task, steps=3, batch_size=2, seed=0, eval_every=3, eval_size=4,
              divergence="stop", divergence_threshold=1e-12)
    assert h.stopped is not None and h.steps == 1 and h.count("stop") == 1
    for name, p in m.params().items():
        np.testing.assert_array_equal(h.model.params()[name], p)
    assert np.isnan(h.rho[0]) and h.gamma_w[0] == pytest.approx(np.linalg.norm(m.weight_hh, 2))


def test_gated_cells_train_with_chunked_truncation():
    """An LSTM trained with TruncatedBPTT(k, k1=k) logs, on its first step, the
    gradient norm of the chunked gradient of that batch (recomputed here with
    value_and_grad(truncate=(k, k)) on the same batch), which differs from the
    full-BPTT norm (other schedules: tests/test_gated_truncation.py)."""
    from rnntheory.remedies import global_norm

    task = TemporalOrder(10)
    m = LSTM.init(task.n_in, 6, task.n_out, seed=3)
    h = train(m, task, steps=1, batch_size=4, seed=9, eval_every=1, eval_size=5,
              remedies=(TruncatedBPTT(5, k1=5),))
    batch = task.sample(4, np.random.default_rng(9))
    _, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask, truncate=(5, 5))
    _, full = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    want = global_norm({k: v / 4 for k, v in g.params().items()})
    assert h.grad_norm[0] == pytest.approx(want, rel=1e-12)
    assert abs(want - global_norm({k: v / 4 for k, v in full.params().items()})) > 1e-9 * want


def test_checked_updates_follow_their_formulas():
    """The checked ``update`` of each optimizer is its formula, two steps in a
    row, entry by entry against a loop written here (SGD with Nesterov momentum
    in exact rationals: dyadic inputs make every float operation exact), and a
    NumPy bool is accepted where a bool is (``nesterov=np.True_`` is Nesterov)."""
    from fractions import Fraction

    params = _params()
    g1 = {"W": np.array([[0.25, -0.5], [1.0, 2.0]]), "b": np.array([-0.125, 4.0])}
    g2 = {"W": np.array([[-1.0, 0.5], [0.75, -2.0]]), "b": np.array([0.5, -0.25])}
    opt = SGD(0.5, momentum=0.25, nesterov=np.True_)
    assert opt.nesterov is True
    state = opt.init(params)
    v = {k: [Fraction(0)] * p.size for k, p in params.items()}
    for g in (g1, g2):
        upd, state = opt.update(g, state)
        for k in params:
            gk = [Fraction(float(e)) for e in g[k].ravel()]
            v[k] = [Fraction(1, 4) * a + b for a, b in zip(v[k], gk, strict=True)]
            want = [-Fraction(1, 2) * (b + Fraction(1, 4) * a) for a, b in zip(v[k], gk, strict=True)]
            assert [Fraction(float(e)) for e in upd[k].ravel()] == want
    for opt in (Adam(0.01, b1=0.8, b2=0.9, eps=1e-3), RMSProp(0.01, decay=0.7, eps=1e-3)):
        state = opt.init(params)
        m = {k: np.zeros(p.size) for k, p in params.items()}
        s = {k: np.zeros(p.size) for k, p in params.items()}
        for t, g in enumerate((g1, g2), start=1):
            upd, state = opt.update(g, state)
            for k in params:
                for i, gi in enumerate(g[k].ravel()):
                    if isinstance(opt, Adam):
                        m[k][i] = 0.8 * m[k][i] + 0.2 * gi
                        s[k][i] = 0.9 * s[k][i] + 0.1 * gi * gi
                        want = -0.01 * (m[k][i] / (1 - 0.8**t)) / (np.sqrt(s[k][i] / (1 - 0.9**t)) + 1e-3)
                    else:
                        s[k][i] = 0.7 * s[k][i] + 0.3 * gi * gi
                        want = -0.01 * gi / (np.sqrt(s[k][i]) + 1e-3)
                    assert upd[k].ravel()[i] == pytest.approx(want, rel=1e-14)
    assert Omega(2.0, hold_fprime=np.True_) == Omega(2.0, hold_fprime=True)
    assert Omega(2.0, hold_fprime=np.False_).hold_fprime is False


def test_train_takes_the_divergence_path_the_checked_update_refuses():
    """A step the public ``update`` refuses (Adam's ``g²`` overflows at
    ``g ≈ 1e157``) is, inside ``train``, a fallback: the loop detects the
    non-finite step itself (the event says so) and the parameters stay finite;
    ``apply_updates`` refuses what the loop skips."""
    task = TemporalOrder(10)
    m = ElmanRNN.init(task.n_in, 4, task.n_out, scheme="gaussian", seed=0)
    m = m.replace(W_yh=m.W_yh * 1e157)
    h = train(m, task, optimizer=Adam(1e-3), steps=1, batch_size=4, seed=0, eval_every=1, eval_size=3,
              divergence_threshold=1e300)
    assert h.count("fallback") == 1 and h.events[0][2].startswith("non-finite update")
    batch = task.sample(4, np.random.default_rng(0))
    _, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    grads = {k: v / 4 for k, v in g.params().items()}
    opt = Adam(1e-3)
    with pytest.raises(ValueError, match=r"`grads` .* gives a non-finite Adam step"):
        opt.update(grads, opt.init(m.params()))
