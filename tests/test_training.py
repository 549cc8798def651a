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
    Penalty,
    RMSProp,
    SpectralProjection,
    TruncatedBPTT,
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


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"steps": -1}, ValueError, "`steps`"),
        ({"divergence": "ignore"}, ValueError, "`divergence`"),
        ({"remedies": ("clip",)}, TypeError, "`remedies`"),
        ({"optimizer": "sgd"}, TypeError, "`optimizer`"),
    ],
)
def test_bad_arguments(kw, exc, match):
    """Bad arguments are refused, naming the argument."""
    task = TemporalOrder(10)
    with pytest.raises(exc, match=match):
        train(_model(task), task, **kw)


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
