"""Divergence handling of ``train``: the fallback shrinks, for any learning rate.

Pascanu et al.'s fallback multiplies the recurrent matrix by ``1 − 0.02·lr``;
past ``lr = 50`` that factor is ≤ 0 (signs flip, and past 100 the weights grow),
and at ``lr = 1e300`` it overflowed and ``train`` raised, losing the History.
The factor is ``min(max(1 − 0.02·lr, 1/2), 1 − u)``: the tests check, for every
optimizer and learning rates from 1e-3 to 1e300, that the Frobenius norm of the
recurrent matrix strictly decreases (its spectral norm too), every parameter
stays finite, ``train`` returns its History with the event, and that for
``lr ≤ 25`` the factor is exactly Pascanu et al.'s ``1 − 0.02·lr`` (computed
here in exact rational arithmetic).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory.tasks import TemporalOrder, make_task
from rnntheory.training import SGD, Adam, HessianFree, History, RMSProp, train

LRS = [1e-3, 0.1, 10.0, 50.0, 1e10, 1e300]
OPTIMIZERS = {
    "sgd": lambda lr: SGD(lr),
    "momentum": lambda lr: SGD(lr, momentum=0.9),
    "nesterov": lambda lr: SGD(lr, momentum=0.999, nesterov=True),
    "rmsprop": lambda lr: RMSProp(lr),
    "adam": lambda lr: Adam(lr),
}


def _pascanu(W: np.ndarray, lr: float) -> np.ndarray:
    """``(1 − lr/50)·W`` entry by entry in exact rationals, rounded once."""
    f = 1 - Fraction(lr) / 50
    return np.array([float(f * Fraction(float(w))) for w in W.ravel()]).reshape(W.shape)


def _rec(model) -> str:
    return "W_hh" if "W_hh" in model.params() else "weight_hh"


def _one_fallback(model, task, opt) -> History:
    """One step whose gradient exceeds the threshold (1e-300): a fallback."""
    return train(model, task, optimizer=opt, steps=1, batch_size=2, seed=0, eval_every=1,
                 eval_size=3, divergence_threshold=1e-300)


def _check_shrunk(before, h: History, lr: float) -> None:
    rec = _rec(before)
    assert isinstance(h, History) and h.steps == 1 and h.stopped is None
    assert h.count("fallback") == 1 and h.events[0][:2] == (1, "fallback")
    W0, W1 = before.params()[rec], h.model.params()[rec]
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())
    assert np.linalg.norm(W1) < np.linalg.norm(W0)                      # Frobenius, strictly
    assert np.linalg.norm(W1, 2) < np.linalg.norm(W0, 2)                # spectral too
    assert np.all(np.abs(W1) <= np.abs(W0)) and np.all(np.sign(W1) == np.sign(W0))
    if 0.02 * lr <= 0.5:  # Pascanu et al.'s factor, to rounding (two roundings: 1 − c·lr, product)
        np.testing.assert_allclose(W1, _pascanu(W0, lr), rtol=2.3e-16, atol=0)
    else:  # halved, exactly
        np.testing.assert_array_equal(W1, W0 / 2)
    for name, p in before.params().items():  # the update itself was skipped
        if name != rec:
            np.testing.assert_array_equal(h.model.params()[name], p)
    assert np.all(np.isfinite(h.eval_error)) and np.all(np.isfinite(h.eval_loss))


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("lr", LRS)
def test_fallback_shrinks_for_every_lr_and_optimizer(opt, lr):
    task = TemporalOrder(10)
    m = ElmanRNN.init(task.n_in, 5, task.n_out, scheme="gaussian", scale=1.5, seed=1)
    _check_shrunk(m, _one_fallback(m, task, OPTIMIZERS[opt](lr)), lr)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("lr", [1e-3, 50.0, 1e300])
def test_fallback_shrinks_gated_weight_hh(cls, lr):
    task = TemporalOrder(10)
    m = cls.init(task.n_in, 3, task.n_out, seed=2)
    _check_shrunk(m, _one_fallback(m, task, Adam(lr)), lr)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("lr", LRS)
def test_exploding_gradient_run_returns_finite_history(opt, lr):
    """The reported failure: a linear RNN with ``W = 3I`` (gradient ~1e20 > 1e3)
    at ``lr = 1e300`` raised inside the recovery. Both steps now fall back,
    ‖W‖_F strictly decreases at each, and the History comes back finite."""
    task = make_task("addition", 20)
    m = ElmanRNN.init(2, 6, 1, scheme="gaussian", seed=2, activation="identity").replace(W_hh=np.eye(6) * 3.0)
    h = train(m, task, optimizer=OPTIMIZERS[opt](lr), steps=2, batch_size=2, seed=0, eval_every=2,
              eval_size=4, divergence_threshold=1e3)
    assert isinstance(h, History) and h.steps == 2 and h.count("fallback") == 2
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())
    f = float(1 - Fraction(lr) / 50) if lr <= 25 else 0.5
    assert math.isclose(np.linalg.norm(h.model.W_hh), 3.0 * math.sqrt(6) * f**2, rel_tol=1e-15)
    assert np.all(np.diff(h.gamma_w) < 0) and h.gamma_w[0] < 3.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_lr_fallback_still_shrinks(dtype):
    """At ``lr = 1e-20`` the factor ``1 − 2e-22`` rounds to 1; the fallback
    multiplies by the largest number below 1 of the dtype instead (``1 − 2^-53``,
    ``1 − 2^-24``), so every normal entry still strictly shrinks."""
    task = TemporalOrder(10)
    m = ElmanRNN.init(task.n_in, 5, task.n_out, scheme="gaussian", scale=1.5, seed=1, dtype=dtype)
    h = _one_fallback(m, task, SGD(1e-20))
    W0, W1 = m.W_hh, h.model.W_hh
    u = Fraction(1, 2**53) if dtype == np.float64 else Fraction(1, 2**24)
    want = np.array([dtype((1 - u) * Fraction(float(w))) for w in W0.ravel()]).reshape(W0.shape)
    np.testing.assert_array_equal(W1, want)
    assert np.all(np.abs(W1) < np.abs(W0))
    assert W1.dtype == dtype


def test_non_finite_update_falls_back():
    """A gradient under the threshold whose update overflows (``1e300 · 1e20``)
    is a fallback too: the update is skipped and ``W_hh`` halved; with
    ``"stop"`` the run stops with the initial parameters."""
    task = make_task("addition", 20)
    m = ElmanRNN.init(2, 6, 1, scheme="gaussian", seed=2, activation="identity").replace(W_hh=np.eye(6) * 3.0)
    h = train(m, task, optimizer=SGD(1e300), steps=1, batch_size=2, seed=0, eval_every=1,
              eval_size=4, divergence_threshold=1e300)
    assert h.count("fallback") == 1 and h.events[0][2].startswith("non-finite update")
    np.testing.assert_array_equal(h.model.W_hh, m.W_hh / 2)
    np.testing.assert_array_equal(h.model.W_yh, m.W_yh)
    s = train(m, task, optimizer=SGD(1e300), steps=1, batch_size=2, seed=0, eval_every=1,
              eval_size=4, divergence_threshold=1e300, divergence="stop")
    assert s.stopped is not None and "non-finite update" in s.stopped
    for name, p in m.params().items():
        np.testing.assert_array_equal(s.model.params()[name], p)


@pytest.mark.parametrize("opt", [Adam(1e-3), RMSProp(1e-3)])
def test_overflowing_optimizer_state_falls_back(opt):
    """A gradient of ~1e157 (a readout of 1e157; the cross-entropy stays finite)
    passes a threshold of 1e300, but its square overflows Adam's and RMSProp's
    second moment: the step would leave ``inf`` in the state (and zero
    updates) silently. It is a fallback: the state and parameters are not updated."""
    task = TemporalOrder(10)
    m = ElmanRNN.init(task.n_in, 4, task.n_out, scheme="gaussian", seed=0)
    m = m.replace(W_yh=m.W_yh * 1e157)
    h = train(m, task, optimizer=opt, steps=1, batch_size=4, seed=0, eval_every=1, eval_size=3,
              divergence_threshold=1e300)
    assert h.count("fallback") == 1 and h.events[0][2].startswith("non-finite update")
    assert np.isfinite(h.grad_norm[0]) and h.grad_norm[0] > 1e156
    np.testing.assert_array_equal(h.model.W_yh, m.W_yh)
    np.testing.assert_allclose(h.model.W_hh, _pascanu(m.W_hh, 1e-3), rtol=2.3e-16, atol=0)


def test_hessian_free_fallback_is_pascanus_factor():
    """HF falls back with the factor at Pascanu et al.'s lr 0.01: ``1 − 2e-4``
    (exact rationals), the History returned, parameters finite."""
    task = make_task("addition", 20)
    m = ElmanRNN.init(2, 6, 1, scheme="gaussian", seed=2, activation="identity").replace(W_hh=np.eye(6) * 3.0)
    h = train(m, task, optimizer=HessianFree(), steps=2, batch_size=2, seed=0, eval_every=2,
              eval_size=4, divergence_threshold=1e3)
    assert isinstance(h, History) and h.count("fallback") == 2
    np.testing.assert_allclose(h.model.W_hh, _pascanu(_pascanu(m.W_hh, 0.01), 0.01), rtol=5e-16, atol=0)
    assert np.linalg.norm(h.model.W_hh) < np.linalg.norm(m.W_hh)


@pytest.mark.parametrize("cls", [ElmanRNN, LSTM, GRU])
def test_weights_beyond_the_float_range_are_a_divergence(cls):
    """Recurrent weights whose largest row sum of magnitudes is 1.797e308: a
    pre-activation could pass float64's range, so the model refuses the pass by
    name and no gradient can be computed. ``train`` takes that as a divergence:
    ``"fallback"`` halves the recurrent weights (exactly, at any lr where
    0.02·lr > 1/2), skips the update, and goes on (the halved weights are inside
    the range); its History comes back with finite parameters. ``"stop"`` ends
    the run naming the reason. Nothing raises."""
    task = make_task("addition", 10)
    base = cls.init(2, 4, 1, seed=0)
    rec = _rec(base)
    W = base.params()[rec]
    m = base.replace(**{rec: W * (1.797e308 / np.abs(W).sum(axis=1).max())})
    h = train(m, task, optimizer=SGD(100.0), steps=1, batch_size=2, seed=0, eval_every=1, eval_size=2)
    assert isinstance(h, History) and h.steps == 1 and h.stopped is None
    assert h.events == [(1, "fallback", f"pre-activations beyond the float range; {rec} scaled by 0.5")]
    np.testing.assert_array_equal(h.model.params()[rec], m.params()[rec] / 2)
    for name, p in m.params().items():  # the update itself was skipped
        if name != rec:
            np.testing.assert_array_equal(h.model.params()[name], p)
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())
    assert np.isnan(h.loss[0]) and np.isnan(h.grad_norm[0])
    stop = train(m, task, optimizer=SGD(100.0), steps=3, batch_size=2, seed=0, eval_every=1,
                 eval_size=2, divergence="stop")
    assert stop.steps == 1 and stop.stopped is not None
    assert stop.stopped.startswith("no gradient at step 1: ")
    assert f"`{rec}` of this model is too large" in stop.stopped
