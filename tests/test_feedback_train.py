"""``train`` on generators through the :class:`Feedback` record: teacher forcing,
free running and scheduled sampling for every cell.

Each test states what it checks against an independent computation: the
generator's own ``value_and_grad`` on the batch ``train`` draws (the batch
stream is ``default_rng(seed)``), the SGD update written out, and the
evaluation as a free run of the final model.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnntheory import LSTM, tasks
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.training import SGD, Feedback, GradientClipping, Omega, TruncatedBPTT, train

CELLS = ("elman", "lstm", "gru")
TASK = tasks.make_task("mackey_glass", length=12)


def _model(cell: str) -> GeneratorRNN:
    return GeneratorRNN.init(TASK.n_in, 5, TASK.n_out, cell=cell, seed=3)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("fb", [Feedback("teacher"), Feedback("free"), Feedback("scheduled", p=0.4, seed=9)])
def test_first_step_is_the_generators_own_gradient_step(cell: str, fb: Feedback) -> None:
    """Step 1 of ``train`` is ``θ − lr·∇E/B`` with ``E`` the generator's summed
    loss in the record's mode on the first batch of ``default_rng(seed)``, its
    coins (scheduled) the first draws of ``default_rng(fb.seed)``; the History's
    first loss is ``E/B``."""
    m, lr, B = _model(cell), 0.05, 6
    h = train(m, TASK, optimizer=SGD(lr=lr), remedies=(fb,), steps=1, batch_size=B, seed=11,
              eval_every=1, eval_size=2)
    batch = TASK.sample(B, np.random.default_rng(11))
    kw = {"p": fb.p, "seed": np.random.default_rng(fb.seed)} if fb.mode == "scheduled" else {}
    E, g = m.value_and_grad(batch.x, batch.y, mode=fb.mode, loss=TASK.loss, mask=batch.mask, **kw)
    assert h.loss[0] == pytest.approx(E / B, rel=1e-13)
    new = h.model.params()
    for k, v in m.params().items():
        np.testing.assert_allclose(new[k], v - lr * g.params()[k] / B, rtol=1e-12, atol=1e-15)


def test_scheduled_coins_advance_from_step_to_step() -> None:
    """Step 2 draws its coins after step 1's from the one generator of the run:
    its loss equals the generator's scheduled loss at the starting
    parameters (a learning rate of 1e-300 moves them by less than rounding)
    with the generator advanced by step 1's draw."""
    m, B, fb = _model("lstm"), 4, Feedback("scheduled", p=0.5, seed=2)
    h = train(m, TASK, optimizer=SGD(lr=1e-300), remedies=(fb,), steps=2, batch_size=B, seed=5,
              eval_every=2, eval_size=2)
    rng, coins = np.random.default_rng(5), np.random.default_rng(2)
    losses = []
    for _ in range(2):
        batch = TASK.sample(B, rng)
        E, _ = m.value_and_grad(batch.x, batch.y, mode="scheduled", p=0.5, seed=coins, loss=TASK.loss,
                                mask=batch.mask)
        losses.append(E / B)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_evaluation_runs_the_generator_freely(cell: str) -> None:
    """The evaluation error is the task's error of the final model's free run
    (its own outputs fed back) on the batch drawn from ``seed + 1``."""
    h = train(_model(cell), TASK, remedies=(Feedback("teacher"), GradientClipping(1.0)), steps=3,
              batch_size=4, seed=7, eval_every=3, eval_size=5)
    ev = TASK.sample(5, 8)
    out = h.model.forward(ev.x, mode="free", loss=TASK.loss).y
    assert h.eval_error[-1] == pytest.approx(TASK.error(np.asarray(out, np.float64), ev), rel=1e-12)


def test_same_seed_same_run() -> None:
    """The coins come from the record's seed: two runs are bit-identical."""
    kw = dict(remedies=(Feedback("scheduled", p=0.5),), steps=4, batch_size=3, eval_every=4, eval_size=2)
    a, b = train(_model("gru"), TASK, **kw), train(_model("gru"), TASK, **kw)
    assert np.array_equal(a.loss, b.loss)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: train(_model("elman"), TASK, steps=1), ValueError, r"GeneratorRNN trains with a Feedback record"),
        (lambda: train(LSTM.init(TASK.n_in, 3, TASK.n_out), TASK, remedies=(Feedback(),), steps=1),
         ValueError, r"`model` \(LSTM\) feeds nothing back"),
        (lambda: train(_model("gru"), TASK, remedies=(Feedback(), TruncatedBPTT(3)), steps=1),
         ValueError, r"TruncatedBPTT needs the backward-pass options \['truncate'\]"),
        (lambda: train(_model("elman"), TASK, remedies=(Feedback(), Omega(1.0)), steps=1),
         ValueError, r"Omega needs the backward-pass options \['keep_trace'\]"),
        (lambda: Feedback("scheduled"), ValueError, r"`p` is required for mode='scheduled'"),
        (lambda: Feedback("free", p=0.3), ValueError, r"`p` applies to mode='scheduled' only"),
        (lambda: Feedback("scheduled", p=1.5), ValueError, r"`p`"),
        (lambda: Feedback("scheduled", p=float("nan")), ValueError, r"`p`"),
        (lambda: Feedback("teach"), ValueError, r"`mode` must be one of"),
        (lambda: Feedback("free", seed=-1), ValueError, r"`seed`"),
        (lambda: Feedback("free", seed=True), TypeError, r"`seed`"),
    ],
)
def test_bad_feedback_is_refused_by_name(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()
