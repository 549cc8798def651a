"""Softmax cross-entropy is exact for logits of any finite size.

"Subtract before you add": the loss is ``(m − z_y) + log1p(Σ_{c≠j} e^{z_c − m})``
with ``m = z_j`` the largest logit, so all-equal logits of ``1e17`` give
``ln C`` (the naive ``m + log Σ e^{z − m} − z_y`` rounds ``1e17 + ln C`` to
``1e17`` and returns 0), and a confident prediction's tiny loss keeps its digits.

Oracles: mpmath at 400 digits (``log Σ e^{z_i} − z_y`` formed directly, with
``e^{1e300}`` and all), central finite differences of the loss, and the
softmax of mpmath for the gradient. Every place that computes the loss is
checked: the Numba kernel behind every cell's ``value_and_grad`` (Elman, LSTM,
GRU, generator) and :meth:`rnntheory.tasks.Task.loss_value`.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rnntheory import GRU, LSTM, ElmanRNN, GeneratorRNN
from rnntheory._oracles import central_jacobian
from rnntheory.tasks import Batch, TemporalOrder

DPS = 400  # 1e300 + ln 4 needs > 300 digits to keep ln 4


def _oracle(z, y: int) -> tuple[float, list[float]]:
    """``(−log softmax(z)[y], softmax(z) − onehot(y))`` in mpmath, rounded once."""
    with mpmath.workdps(DPS):
        zs = [mpmath.mpf(float(v)) for v in z]
        ex = [mpmath.exp(v) for v in zs]
        total = mpmath.fsum(ex)
        loss = mpmath.log(total) - zs[y]
        grad = [ex[c] / total - (1 if c == y else 0) for c in range(len(zs))]
        return float(loss), [float(g) for g in grad]


# (logits, target): equal huge logits, both signs, mixed, subnormal differences,
# a confident prediction whose loss is below the float spacing at 1
CASES = [
    ([1e17] * 4, 0),
    ([1e17] * 4, 3),
    ([1e300] * 4, 1),
    ([-1e300] * 4, 2),
    ([1e300, -1e300, 0.0, 5.0], 1),
    ([1e300, -1e300, 0.0, 5.0], 0),
    ([1e300, 1e300 * (1 - 2.0**-52), -1e300, 1.0], 1),
    ([5e-324, 0.0, -5e-324, 1e-320], 0),
    ([5e-324, 0.0, -5e-324, 1e-320], 2),
    ([0.0, -40.0, -50.0, -60.0], 0),
    ([0.0, -40.0, -50.0, -60.0], 1),
    ([1e17, 1e17 - 16.0, 1e17 - 32.0, -1e17], 1),
    ([-3.0, 2.5, 0.25, 1e-10], 2),
]


def _model(cls, logits: np.ndarray, dtype=np.float64):
    """A model whose readout is the constant ``logits`` (``W_yh = 0``, ``b_y = logits``)."""
    C = logits.size
    m = cls.init(2, 3, C, seed=0, dtype=dtype)
    return m.replace(W_yh=np.zeros((C, 3), dtype), b_y=logits.astype(dtype))


def _value_and_grad(m, x, y):
    if isinstance(m, GeneratorRNN):
        return m.value_and_grad(x, y, mode="teacher", loss="xent")
    return m.value_and_grad(x, y, loss="xent")


@pytest.mark.parametrize("cls", [ElmanRNN, LSTM, GRU, GeneratorRNN])
@pytest.mark.parametrize(("logits", "target"), CASES)
def test_value_and_grad_match_mpmath(cls, logits, target):
    """The loss and ``∂E/∂b_y = Σ_t (softmax − onehot)`` of every cell with a
    constant readout agree with mpmath to a few ulp; each of the T = 3 steps
    contributes the same term."""
    z = np.array(logits)
    m = _model(cls, z)
    T = 3
    x = np.random.default_rng(0).normal(size=(T, 2))
    y = np.full(T, target)
    value, g = _value_and_grad(m, x, y)
    loss, grad = _oracle(z, target)
    assert math.isclose(value, T * loss, rel_tol=2e-15), (value, T * loss)
    for c in range(z.size):
        assert math.isclose(g.b_y[c], T * grad[c], rel_tol=2e-15), (c, g.b_y[c], T * grad[c])
    assert np.all(np.isfinite(g.b_y))


def test_equal_large_logits_are_ln_c_not_zero():
    """The reported failure: logits all 1e17 over 4 classes give ln 4."""
    m = _model(ElmanRNN, np.full(4, 1e17))
    value, g = m.value_and_grad(np.zeros((1, 2)), np.array([0]), loss="xent")
    assert value == math.log(4)
    np.testing.assert_array_equal(g.b_y, [-0.75, 0.25, 0.25, 0.25])


def test_float32_readout_large_logits():
    """A float32 model (logits ±3e38, the top of float32) gives the float64 loss
    of its float32 logits: exact to float64 rounding, not float32's."""
    z32 = np.array([3e38, 3e38, -3e38, 1.0], np.float32)
    m = _model(ElmanRNN, z32, np.float32)
    for target in range(4):
        value, g = m.value_and_grad(np.zeros((1, 2), np.float32), np.array([target]), loss="xent")
        loss, grad = _oracle(z32.astype(np.float64), target)
        assert math.isclose(value, loss, rel_tol=1e-15), (target, value, loss)
        np.testing.assert_allclose(g.b_y, np.float32(grad), rtol=2e-7)


@pytest.mark.parametrize("seed", range(4))
def test_gradient_matches_finite_differences(seed):
    """On moderate logits the gradient is the central difference of the loss
    (step 1e-6, error O(1e-12) + rounding O(1e-10))."""
    rng = np.random.default_rng(seed)
    C, T = 5, 4
    z = rng.normal(scale=3.0, size=C)
    y = rng.integers(0, C, T)
    x = rng.normal(size=(T, 2))
    _, g = _model(ElmanRNN, z).value_and_grad(x, y, loss="xent")
    h = 1e-6
    fd = central_jacobian(lambda zz: _model(ElmanRNN, zz).value_and_grad(x, y, loss="xent")[0], z, h)
    for c in range(C):
        assert abs(fd[c] - g.b_y[c]) < 1e-8


@pytest.mark.parametrize(("logits", "target"), CASES)
def test_task_loss_value_matches_mpmath(logits, target):
    """``Task.loss_value`` (NumPy) agrees with mpmath for the same logits,
    averaged over target steps only."""
    task = TemporalOrder(10)
    batch = task.sample(3, seed=0)
    y = batch.y.copy()
    y[-1] = target
    b = Batch(batch.x, y, batch.mask, batch.lengths)
    out = np.zeros((10, 3, 4))
    out[-1] = logits
    out[:-1] = np.nan  # steps without a target never enter the loss
    got = task.loss_value(out, b)
    assert math.isclose(got, _oracle(np.array(logits), target)[0], rel_tol=2e-15)


def test_task_loss_value_non_finite_is_not_finite():
    """A NaN or +inf logit on a target step gives a non-finite loss, not a
    number (and no warning)."""
    task = TemporalOrder(10)
    batch = task.sample(2, seed=0)
    for bad in (np.nan, np.inf):
        out = np.zeros((10, 2, 4))
        out[-1, 0, (batch.y[-1, 0] + 1) % 4] = bad
        assert not math.isfinite(task.loss_value(out, batch))
