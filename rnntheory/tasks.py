"""Seeded generators for the long-term-dependency benchmarks.

Pascanu, Mikolov & Bengio (2013) trained on six *pathological* synthetic tasks
(after Hochreiter & Schmidhuber 1997); Arjovsky, Shah & Bengio (2016) added the
copy and adding tasks used for orthogonal/unitary RNNs; reservoir computing
measures itself on Mackey–Glass and NARMA-10. Every task here is a
:class:`Task` whose :meth:`Task.sample` returns a :class:`Batch`:

* ``x`` — inputs ``(T, B, n_in)`` float64, time-major (``x[0]`` is ``x_1``);
* ``y`` — targets: class indices ``(T, B)`` int64 with ``-1`` where a step has
  no target (``loss == "xent"``), or values ``(T, B, n_out)`` float64, zero
  where a step has no target (``loss == "mse"``);
* ``mask`` — ``(T, B)`` float64, ``1`` exactly where a target exists;
* ``lengths`` — ``(B,)`` each sequence's own length.

Variable-length tasks (addition, multiplication: ``l = L + randint(⌊0.1 L⌋)``
drawn per sequence) are padded with zero input vectors to the longest
sequence of the batch; each sequence's target sits at *its own* last step
``lengths[b] − 1`` (and ``mask`` marks it), so a causal model's output there
does not see the padding. Pascanu's code draws one length per batch; a batch of
size 1 reproduces that.

:meth:`Task.error` implements the task's error criterion (the fraction of
sequences that are wrong; for the two time series, the normalised RMSE), and
:meth:`Task.loss_value` the per-step loss averaged over the target steps.
Positions ``⌊k L / 10⌋`` are computed in integer arithmetic. ``randint(n)`` is
uniform on ``{0, …, n − 1}``; every draw comes from one
:func:`numpy.random.default_rng`, so the same seed gives the same batch.

Examples
--------
>>> from rnntheory.tasks import TemporalOrder
>>> task = TemporalOrder(length=50)
>>> batch = task.sample(4, seed=0)
>>> batch.x.shape, batch.y.shape, task.n_in, task.n_out, task.loss
((50, 4, 6), (50, 4), 6, 4, 'xent')
>>> bool((batch.mask[:-1] == 0).all() and (batch.mask[-1] == 1).all())
True
>>> bool((task.sample(4, seed=0).x == batch.x).all())
True
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from ._validation import as_float_array, as_generator, check_choice, check_int, check_real

__all__ = [
    "NARMA10",
    "TASKS",
    "Adding",
    "Addition",
    "Batch",
    "Copy",
    "MackeyGlass",
    "Multiplication",
    "NARMASeries",
    "NoiselessMemorization",
    "RandomPermutation",
    "Task",
    "TemporalOrder",
    "TemporalOrder3Bit",
    "mackey_glass",
    "make_task",
    "narma10",
]

Seed = int | np.integer | np.random.Generator | None
_F64 = np.dtype(np.float64)


def _rng(seed: Any) -> np.random.Generator:
    return as_generator("seed", seed)


def _frac(k: int, length: int) -> int:
    """``⌊k · length / 10⌋`` without floating point."""
    return (k * length) // 10


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of sequences, time-major.

    Attributes
    ----------
    x : ndarray, shape (T, B, n_in), float64
        Inputs; ``x[t, b]`` is input ``t + 1`` of sequence ``b``.
    y : ndarray, shape (T, B) int64 or (T, B, n_out) float64
        Class indices (``-1`` where no target) for ``loss == "xent"``; target
        values (``0`` where no target) for ``loss == "mse"``.
    mask : ndarray, shape (T, B), float64
        ``1.0`` where step ``t`` of sequence ``b`` has a target, else ``0.0``.
    lengths : ndarray, shape (B,), int64
        The length of each sequence before padding (all ``T`` unless the task
        has variable lengths).
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray

    @property
    def T(self) -> int:
        """Number of time steps (after padding)."""
        return int(self.x.shape[0])

    @property
    def batch_size(self) -> int:
        """Number of sequences ``B``."""
        return int(self.x.shape[1])


class Task(ABC):
    """A sequence task: sizes, loss, a seeded sampler and an error criterion.

    Subclasses set ``n_in``, ``n_out``, ``loss`` (``"xent"`` for a softmax
    over ``n_out`` classes, ``"mse"`` for a linear output) and ``metric``
    (``"sequence_error"``: fraction of sequences with a wrong target step;
    ``"nrmse"``: normalised root-mean-square error).
    """

    name: ClassVar[str]
    n_in: ClassVar[int]
    n_out: ClassVar[int]
    loss: ClassVar[str]
    metric: ClassVar[str] = "sequence_error"
    min_length: ClassVar[int] = 1

    def __init__(self, length: int) -> None:
        self.length = check_int("length", length, minimum=self.min_length)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"

    @abstractmethod
    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch: ...

    def sample(self, batch_size: int, seed: Seed = None) -> Batch:
        """Draw ``batch_size`` sequences.

        Parameters
        ----------
        batch_size : int
            Number of sequences ``B >= 1``.
        seed : int, numpy.random.Generator or None
            An integer seed (the same seed gives the same batch), a generator
            (advanced by the call), or ``None`` for fresh entropy.

        Returns
        -------
        Batch
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        return self._generate(batch_size, _rng(seed))

    def _check_batch(self, batch: Any) -> Batch:
        """Raise unless ``batch`` is a :class:`Batch` this task could have drawn:
        ``x (T, B, n_in)``, targets of the task's kind (class indices in
        ``[0, n_out)`` on the target steps, or finite values ``(T, B, n_out)``)
        and a finite non-negative ``mask (T, B)``, with ``T, B ≥ 1``."""
        if not isinstance(batch, Batch):
            raise TypeError(
                f"`batch` must be a Batch (from {type(self).__name__}.sample), got {type(batch).__name__}"
            )
        x = batch.x
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            shown = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"`batch.x` must be a float array of shape (T, B, {self.n_in}), got {shown}")
        if x.ndim != 3 or x.shape[2] != self.n_in or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"`batch.x` must have shape (T, B, {self.n_in}) with T, B >= 1 (a batch of "
                f"{type(self).__name__}), got shape {x.shape}"
            )
        T, B = x.shape[:2]
        mask = as_float_array("batch.mask", batch.mask, dtype=_F64)
        if mask.shape != (T, B):
            raise ValueError(f"`batch.mask` must have shape ({T}, {B}) (as `batch.x`), got shape {mask.shape}")
        if np.any(mask < 0):
            raise ValueError("`batch.mask` must be non-negative (a step with mask > 0 has a target)")
        y = batch.y
        if self.loss == "xent":
            if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
                shown = f"dtype {y.dtype}" if isinstance(y, np.ndarray) else type(y).__name__
                raise TypeError(f"`batch.y` must be an integer array of class indices, got {shown}")
            if y.shape != (T, B):
                raise ValueError(f"`batch.y` must have shape ({T}, {B}) (class indices), got shape {y.shape}")
            on = y[mask > 0]
            if on.size and not (int(on.min()) >= 0 and int(on.max()) < self.n_out):
                raise ValueError(
                    f"`batch.y` class indices must lie in [0, {self.n_out}) on the target steps, "
                    f"got values from {int(on.min())} to {int(on.max())}"
                )
        else:
            y = as_float_array("batch.y", y, dtype=_F64)
            if y.shape != (T, B, self.n_out):
                raise ValueError(f"`batch.y` must have shape ({T}, {B}, {self.n_out}), got shape {y.shape}")
        return Batch(x, y, mask, batch.lengths)

    def _check_outputs(self, outputs: Any, batch: Batch) -> tuple[np.ndarray, Batch]:
        batch = self._check_batch(batch)
        out = as_float_array("outputs", outputs, ndim=3, dtype=_F64, finite=False)
        want = (batch.T, batch.batch_size, self.n_out)
        if out.shape != want:
            raise ValueError(f"`outputs` must have shape {want}, got shape {out.shape}")
        return out, batch

    def _wrong_steps(self, out: np.ndarray, batch: Batch) -> np.ndarray:
        """Boolean ``(T, B)``: a target step whose prediction is wrong.

        A step with any non-finite output is wrong: ``argmax`` of a NaN row is
        the first NaN's index, which could match the target class.
        """
        on = batch.mask > 0
        bad = ~np.isfinite(out).all(axis=-1)
        if self.loss == "xent":
            return on & (bad | (np.argmax(out, axis=-1) != batch.y))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing error is > tolerance
            sq = np.sum((out - batch.y) ** 2, axis=-1)
        return on & (bad | ~(sq <= self.tolerance))

    tolerance: ClassVar[float] = 0.04

    def error(self, outputs: Any, batch: Batch) -> float:
        """The task's error criterion on ``outputs`` of shape ``(T, B, n_out)``.

        For classification tasks a target step is wrong when the argmax of the
        output differs from the target class; for regression tasks when the
        squared error exceeds ``tolerance`` (0.04, Pascanu et al. 2013). A
        target step whose output holds a NaN or an infinity is always wrong.
        A sequence is wrong when any of its target steps is wrong. Returns the
        fraction of wrong sequences (in ``[0, 1]``).

        Raises
        ------
        TypeError, ValueError
            When ``outputs`` is not a float array of shape ``(T, B, n_out)``
            or ``batch`` is not a :class:`Batch` of this task's kind (shapes,
            target dtype and range, a finite non-negative mask).
        """
        out, batch = self._check_outputs(outputs, batch)
        return float(np.mean(self._wrong_steps(out, batch).any(axis=0)))

    def loss_value(self, outputs: Any, batch: Batch) -> float:
        """Mean loss per target step.

        ``"xent"``: ``outputs`` are logits; the loss is the negative
        log-softmax probability of the target class (natural log), computed
        as ``(m − z_y) + log1p(Σ_{c≠j} exp(z_c − m))`` with ``m = z_j`` the
        largest logit: the target is subtracted from ``m`` before anything is
        added, so the value is accurate for logits of any finite size (all
        ``1e17`` or all ``−1e300``: ``ln C``). ``"mse"``: the squared error
        summed over output channels. Both are averaged over the steps where
        ``mask == 1``.

        Non-finite outputs are accepted (a diverged model's outputs are
        scored, not refused) and give a non-finite loss, never a finite
        number that hides them: a NaN output on a target step gives NaN; an
        infinite one ``inf`` or NaN (``inf − inf``), except a ``−inf`` logit
        of a class other than the target, which is a probability of 0 and
        leaves the loss finite. A squared error beyond float64's range is
        ``inf``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`error`, and when ``batch`` has no target step (the mean
            is undefined).
        """
        out, batch = self._check_outputs(outputs, batch)
        on = batch.mask > 0
        if not on.any():
            raise ValueError("`batch` has no target steps (its mask is 0 everywhere): the mean loss is undefined")
        with np.errstate(over="ignore", invalid="ignore"):
            if self.loss == "xent":
                per_step = _xent(out, np.where(on, batch.y, 0))
            else:
                per_step = np.sum((out - batch.y) ** 2, axis=-1)
            return float(per_step[on].mean())


def _xent(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Softmax cross-entropy of logits ``z (..., C)`` at classes ``y (...)``.

    ``(m − z_y) + log1p(Σ_{c≠j} e^{z_c − m})`` with ``m = z_j = max z``: two
    non-negative terms (no cancellation), ``log1p`` keeps a confident
    prediction's small loss accurate. NaN propagates (``argmax`` returns the
    first NaN, so ``m`` is NaN).
    """
    j = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, j, axis=-1)
    e = np.exp(z - m)
    np.put_along_axis(e, j, 0.0, axis=-1)
    picked = np.take_along_axis(z, y[..., None], axis=-1)
    return ((m - picked) + np.log1p(e.sum(axis=-1, keepdims=True)))[..., 0]


def _one_hot(symbols: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((*symbols.shape, n), dtype=_F64)
    np.put_along_axis(out, symbols[..., None], 1.0, axis=-1)
    return out


def _last_step_classes(targets: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    B = targets.shape[0]
    y = np.full((T, B), -1, dtype=np.int64)
    y[-1] = targets
    mask = np.zeros((T, B))
    mask[-1] = 1.0
    return y, mask


class TemporalOrder(Task):
    """Temporal order (Hochreiter & Schmidhuber 1997; Pascanu et al. 2013).

    One-hot symbols over 6 channels: 0, 1 are ``A``, ``B``; 2–5 distractors.
    ``A`` or ``B`` (value ``v0``) appears at ``p0 ∈ [⌊0.1L⌋, ⌊0.2L⌋)`` and
    ``v1`` at ``p1 ∈ [⌊0.5L⌋, ⌊0.6L⌋)``; every other step is a uniform
    distractor. The target, at the last step, is class ``v0 + 2 v1``.
    Chance: 75 % error, NLL ``ln 4``.
    """

    name = "temporal_order"
    n_in = 6
    n_out = 4
    loss = "xent"
    min_length = 10
    _ranges: ClassVar[tuple[tuple[int, int], ...]] = ((1, 2), (5, 6))

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B = self.length, batch_size
        symbols = rng.integers(2, 6, size=(L, B))
        target = np.zeros(B, dtype=np.int64)
        cols = np.arange(B)
        for k, (lo, hi) in enumerate(self._ranges):
            p = rng.integers(_frac(lo, L), _frac(hi, L), size=B)
            v = rng.integers(0, 2, size=B)
            symbols[p, cols] = v
            target += v << k
        y, mask = _last_step_classes(target, L)
        return Batch(_one_hot(symbols, 6), y, mask, np.full(B, L, dtype=np.int64))


class TemporalOrder3Bit(TemporalOrder):
    """3-bit temporal order: as :class:`TemporalOrder` with three symbols.

    Positions in ``[⌊0.1L⌋, ⌊0.2L⌋)``, ``[⌊0.3L⌋, ⌊0.4L⌋)``,
    ``[⌊0.6L⌋, ⌊0.7L⌋)``; target ``v0 + 2 v1 + 4 v2`` (8 classes, chance 87.5 %).
    """

    name = "temporal_order_3bit"
    n_out = 8
    _ranges = ((1, 2), (3, 4), (6, 7))


class Addition(Task):
    """Pascanu's addition task (after Hochreiter & Schmidhuber 1997).

    Each sequence has its own length ``l = L + randint(⌊0.1L⌋)``. Channel 1
    holds values ``~ U[0, 1)``; channel 0 is ``1`` at ``p0 ∈ [0, ⌊0.1 l⌋)``
    and ``p1 ∈ [⌊0.1 l⌋, ⌊0.5 l⌋)`` and ``0`` elsewhere. The target at step
    ``l − 1`` is ``(x[p0] + x[p1]) / 2``; linear output, squared error; a
    sequence is wrong when its squared error exceeds 0.04. Padding (steps
    ``≥ l``) is all zeros.
    """

    name = "addition"
    n_in = 2
    n_out = 1
    loss = "mse"
    min_length = 10

    @staticmethod
    def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a + b) / 2.0

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B = self.length, batch_size
        lengths = L + rng.integers(0, _frac(1, L), size=B)
        T = int(lengths.max())
        x = np.zeros((T, B, 2))
        y = np.zeros((T, B, 1))
        mask = np.zeros((T, B))
        for b in range(B):
            l = int(lengths[b])
            vals = rng.random(l)
            p0 = rng.integers(0, _frac(1, l))
            p1 = rng.integers(_frac(1, l), _frac(5, l))
            x[:l, b, 1] = vals
            x[p0, b, 0] = 1.0
            x[p1, b, 0] = 1.0
            y[l - 1, b, 0] = self._combine(vals[p0], vals[p1])
            mask[l - 1, b] = 1.0
        return Batch(x, y, mask, lengths.astype(np.int64))


class Multiplication(Addition):
    """Pascanu's multiplication task: as :class:`Addition`, target ``x[p0]·x[p1]``."""

    name = "multiplication"

    @staticmethod
    def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b


class RandomPermutation(Task):
    """Random permutation (Pascanu et al. 2013).

    One-hot symbols over 100 channels; symbol 1 (step 0) is a random bit in
    ``{0, 1}``, every later symbol uniform in ``{2, …, 99}``. The target, at
    the last step, is the first symbol (chance 50 %).
    """

    name = "random_permutation"
    n_in = 100
    n_out = 100
    loss = "xent"
    min_length = 2

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B = self.length, batch_size
        symbols = rng.integers(2, 100, size=(L, B))
        v = rng.integers(0, 2, size=B)
        symbols[0] = v
        y, mask = _last_step_classes(v, L)
        return Batch(_one_hot(symbols, 100), y, mask, np.full(B, L, dtype=np.int64))


class NoiselessMemorization(Task):
    """Noiseless memorization (Pascanu et al. 2013; Martens & Sutskever 2011).

    Inputs over 7 channels (0–4 the five values, 5 blank, 6 delimiter), length
    ``L + 20``: steps 0–9 carry 10 symbols drawn uniformly from 5 values,
    steps 10 … ``L + 19`` are blank except the delimiter at step ``L + 10``.
    Targets over 6 classes (0–4 values, 5 blank) at every step: blank for
    steps 0 … ``L + 9``, then the 10 symbols. A sequence is wrong if any step
    is wrong.
    """

    name = "noiseless_memorization"
    n_in = 7
    n_out = 6
    loss = "xent"
    min_length = 1
    n_symbols: ClassVar[int] = 10
    n_values: ClassVar[int] = 5

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B, k = self.length, batch_size, self.n_symbols
        T = L + 2 * k
        data = rng.integers(0, self.n_values, size=(k, B))
        blank, delim = self.n_values, self.n_values + 1
        inp = np.full((T, B), blank, dtype=np.int64)
        inp[:k] = data
        inp[L + k] = delim
        y = np.full((T, B), blank, dtype=np.int64)
        y[T - k :] = data
        return Batch(_one_hot(inp, self.n_in), y, np.ones((T, B)), np.full(B, T, dtype=np.int64))


class Copy(Task):
    """The copy task (Arjovsky, Shah & Bengio 2016), delay ``T = length``.

    Input symbols (one-hot over 10 channels: 0 blank, 1–8 data, 9 delimiter):
    10 data symbols uniform in ``{1, …, 8}``, ``T − 1`` blanks, the delimiter,
    10 blanks (total ``T + 20``). Targets (9 classes: 0 blank, 1–8 data) at
    every step: ``T + 10`` blanks, then the 10 data symbols. The memoryless
    baseline has cross-entropy ``10 ln 8 / (T + 20)`` per step. A sequence is
    wrong if any step is wrong.
    """

    name = "copy"
    n_in = 10
    n_out = 9
    loss = "xent"
    min_length = 1
    n_symbols: ClassVar[int] = 10

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        Tdelay, B, k = self.length, batch_size, self.n_symbols
        T = Tdelay + 2 * k
        data = rng.integers(1, 9, size=(k, B))
        inp = np.zeros((T, B), dtype=np.int64)
        inp[:k] = data
        inp[k + Tdelay - 1] = 9
        y = np.zeros((T, B), dtype=np.int64)
        y[T - k :] = data
        return Batch(_one_hot(inp, self.n_in), y, np.ones((T, B)), np.full(B, T, dtype=np.int64))


class Adding(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    Length ``T``; channel 0 values ``~ U[0, 1)``, channel 1 a marker ``1`` at
    one position in ``[0, ⌊T/2⌋)`` and one in ``[⌊T/2⌋, T)``. The target at
    the last step is the sum of the two marked values. The best constant
    predictor (1) has MSE ``1/6``. A sequence counts as wrong when its squared
    error exceeds 0.04 (the threshold of Pascanu's addition task).
    """

    name = "adding"
    n_in = 2
    n_out = 1
    loss = "mse"
    min_length = 2

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        T, B = self.length, batch_size
        half = T // 2
        vals = rng.random((T, B))
        p0 = rng.integers(0, half, size=B)
        p1 = rng.integers(half, T, size=B)
        cols = np.arange(B)
        x = np.zeros((T, B, 2))
        x[:, :, 0] = vals
        x[p0, cols, 1] = 1.0
        x[p1, cols, 1] = 1.0
        y = np.zeros((T, B, 1))
        y[-1, :, 0] = vals[p0, cols] + vals[p1, cols]
        mask = np.zeros((T, B))
        mask[-1] = 1.0
        return Batch(x, y, mask, np.full(B, T, dtype=np.int64))


# ----------------------------------------------------------------------------- time series


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _mg_euler(
    history: np.ndarray, n_steps: int, dt: float, beta: float, gamma: float, power: float
) -> np.ndarray:
    d = history.shape[0] - 1
    y = np.empty(d + 1 + n_steps)
    y[: d + 1] = history
    for k in range(d, d + n_steps):
        lag = y[k - d]
        y[k + 1] = y[k] + dt * (beta * lag / (1.0 + lag**power) - gamma * y[k])
    return y[d + 1 :]


# The delay line holds tau / dt + 1 values; beyond this it would not fit in memory.
_MAX_DELAY_STEPS = 10_000_000


def mackey_glass(
    n_samples: int,
    *,
    tau: float = 17.0,
    dt: float = 0.1,
    subsample: int = 10,
    history: Any = None,
    seed: Seed = None,
    discard: int = 500,
    squash: bool = True,
) -> np.ndarray:
    r"""Mackey–Glass series, Euler-integrated and subsampled (Jaeger 2001).

    .. math::

        \dot y(t) = \frac{0.2\, y(t-\tau)}{1 + y(t-\tau)^{10}} - 0.1\, y(t),

    integrated by Euler with step ``dt`` (delay ``d = round(τ/dt)`` steps:
    ``y_{k+1} = y_k + dt (0.2 y_{k−d} / (1 + y_{k−d}^{10}) − 0.1 y_k)``),
    sampled every ``subsample`` steps (one sample per unit time for the
    defaults), the first ``discard`` samples dropped, then squashed to
    ``tanh(y − 1)``.

    The initial history is the ``d + 1`` grid values ``y_{−d}, …, y_0``: the
    given ``history`` (a scalar or an array of length ``d + 1``), or, when
    ``history`` is None, ``1.2 + U(−0.1, 0.1)`` i.i.d. per grid point drawn
    from ``seed`` (``seed=None`` and ``history=None`` give the constant 1.2).
    The series is a deterministic function of the history.

    Parameters
    ----------
    n_samples : int
        Number of samples returned.
    tau, dt : float
        Delay and Euler step; ``tau / dt`` must be a whole number.
    subsample : int
        Euler steps per sample.
    history : float or array_like, optional
        The initial history (see above).
    seed : int, Generator or None
        Seed for a random history.
    discard : int
        Samples dropped before the first returned one (transient).
    squash : bool
        Apply ``tanh(y − 1)`` (default); if False return ``y``.

    Returns
    -------
    ndarray, shape (n_samples,)

    Examples
    --------
    >>> s = mackey_glass(200, seed=1)
    >>> s.shape, bool(np.all(np.abs(s) < 1))
    ((200,), True)
    >>> bool(np.array_equal(s, mackey_glass(200, seed=1)))
    True
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    tau = check_real("tau", tau, low=0.0, low_open=True)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    subsample = check_int("subsample", subsample, minimum=1)
    discard = check_int("discard", discard, minimum=0)
    ratio = tau / dt  # inf when dt is subnormal
    if not ratio <= _MAX_DELAY_STEPS:
        raise ValueError(
            f"`tau` / `dt` = {ratio:.6g} delay steps, at most {_MAX_DELAY_STEPS} are held "
            f"(got tau={tau}, dt={dt})"
        )
    d = round(ratio)
    if d < 1 or abs(d * dt - tau) > 1e-9 * tau:
        raise ValueError(f"`tau` must be a positive multiple of `dt`={dt}, got {tau}")
    if history is None:
        if seed is None:
            hist = np.full(d + 1, 1.2)
        else:
            hist = 1.2 + 0.2 * (_rng(seed).random(d + 1) - 0.5)
    else:
        scalar = np.ndim(history) == 0
        hist = as_float_array("history", history, ndim=(0, 1), dtype=_F64)
        if scalar:
            hist = np.full(d + 1, float(hist.reshape(-1)[0]))
        elif hist.shape != (d + 1,):
            raise ValueError(
                f"`history` must be a scalar or have shape ({d + 1},), got shape {hist.shape}"
            )
        if np.any(hist < 0):
            raise ValueError("`history` must be non-negative (the delayed term uses y**10)")
    total = (n_samples + discard) * subsample
    y = _mg_euler(np.ascontiguousarray(hist, dtype=_F64), total, dt, 0.2, 0.1, 10.0)
    # sample k is the state after (k + 1) * subsample Euler steps
    samples = y[subsample - 1 :: subsample][discard:]
    return np.tanh(samples - 1.0) if squash else samples


@dataclass(frozen=True, eq=False)
class NARMASeries:
    """A NARMA-10 input/output pair.

    Attributes
    ----------
    u : ndarray, shape (n,)
        The input ``u(t) ~ U[0, 0.5]``.
    y : ndarray, shape (n,)
        The output; ``y[t]`` is ``y(t)``, so ``y[t + 1]`` depends on ``u[t]``.
    """

    u: np.ndarray
    y: np.ndarray


def narma10(n_samples: int, *, seed: Seed = None, discard: int = 200) -> NARMASeries:
    r"""NARMA-10 (Atiya & Parlos 2000), the reservoir-computing benchmark.

    .. math::

        y(t+1) = 0.3\,y(t) + 0.05\,y(t)\sum_{i=0}^{9} y(t-i)
                 + 1.5\,u(t-9)\,u(t) + 0.1, \qquad u(t) \sim U[0, 0.5].

    The recursion starts from ``y(0) = … = y(9) = 0`` and its first
    ``discard`` samples (of ``u`` and ``y`` alike) are dropped.

    Parameters
    ----------
    n_samples : int
        Length of the returned series.
    seed : int, Generator or None
        Seed for ``u``.
    discard : int
        Transient dropped (at least 0).

    Returns
    -------
    NARMASeries

    Raises
    ------
    FloatingPointError
        If the recursion leaves ``[0, 10]``: it diverges for rare inputs (about
        2 % of seeds at length 2000). :class:`NARMA10` redraws such sequences.

    Examples
    --------
    >>> s = narma10(500, seed=0)
    >>> s.u.shape, s.y.shape, bool(0 <= s.u.min() and s.u.max() <= 0.5)
    ((500,), (500,), True)
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    discard = check_int("discard", discard, minimum=0)
    n = n_samples + discard + 10
    u = _rng(seed).uniform(0.0, 0.5, size=n)
    y = np.zeros(n)
    for t in range(9, n - 1):
        y[t + 1] = (
            0.3 * y[t]
            + 0.05 * y[t] * np.sum(y[t - 9 : t + 1])
            + 1.5 * u[t - 9] * u[t]
            + 0.1
        )
        if not 0.0 <= y[t + 1] <= 10.0:  # diverging (a NaN fails too): stop before overflow
            raise FloatingPointError(
                f"NARMA-10 diverged at step {t + 1} (y = {y[t + 1]:.3g}) for this input;"
                " draw another seed"
            )
    start = n - n_samples
    return NARMASeries(u[start:].copy(), y[start:].copy())


def _rms(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """``(a, r)`` with ``a·r`` the RMS of ``u − v``, without squaring ``u − v``.

    ``a = max|u − v|`` and ``r = sqrt(mean(((u − v)/a)²))``, so nothing
    overflows or underflows; a difference past the largest float is formed
    as ``u/2 − v/2`` and ``a`` doubled (``inf`` only when ``a`` is).
    """
    with np.errstate(over="ignore"):
        d = u - v
    k = 1.0
    if not np.all(np.isfinite(d)):
        d, k = 0.5 * u - 0.5 * v, 2.0
    a = float(np.max(np.abs(d)))
    if a == 0.0:
        return 0.0, 1.0
    r = math.sqrt(float(np.mean((d / a) ** 2)))
    with np.errstate(over="ignore"):
        return float(np.float64(k) * a), r


def _nrmse(out: np.ndarray, batch: Batch) -> float:
    """``sqrt(mean squared error / var(target))`` over the target steps.

    A non-finite output on a target step gives ``inf``. Both root-mean-squares
    are formed from values scaled by their largest magnitude, so errors and
    targets near either end of float64's range give their finite NRMSE rather
    than an overflow or ``0/0``. Constant targets (variance 0): ``0.0`` for an
    exact prediction, else ``inf``.
    """
    on = batch.mask > 0
    o, y = out[on], batch.y[on]
    if not np.all(np.isfinite(o)):
        return math.inf
    if o.size == 0:
        raise ValueError("`batch` has no target steps: the NRMSE is undefined")
    a, r = _rms(o, y)
    if a == 0.0:
        return 0.0
    # the mean of y·2^-e (exact scaling, |y·2^-e| < 1) cannot overflow; y is finite
    e = math.frexp(float(np.max(np.abs(y))))[1]
    mean = math.ldexp(float(np.mean(np.ldexp(y, -e))), e)
    b, s = _rms(y, np.full_like(y, mean))
    if b == 0.0 or math.isinf(a):
        return math.inf
    with np.errstate(over="ignore", under="ignore"):
        return float(np.float64(a) / np.float64(b) * (r / s))


class _RegressionTask(Task):
    """A one-output regression task scored by the NRMSE (the series tasks)."""

    n_in = 1
    n_out = 1
    loss = "mse"
    metric = "nrmse"

    def error(self, outputs: Any, batch: Batch) -> float:
        """Normalised RMSE over all target steps (not a fraction of sequences).

        ``sqrt(mean squared error / var(target))``, computed from values scaled
        by their largest magnitude, so errors and targets anywhere in
        float64's range give their finite NRMSE.

        Returns
        -------
        float
            In ``[0, inf]``. ``inf`` when an output on a target step is NaN or
            infinite (a diverged model is infinitely wrong, never scored as a
            finite number), and when the targets are constant (variance 0) and
            the prediction is not exact (``0.0`` when it is).

        Raises
        ------
        TypeError, ValueError
            As :meth:`Task.error`, and when ``batch`` has no target step.
        """
        return _nrmse(*self._check_outputs(outputs, batch))


class MackeyGlass(_RegressionTask):
    """One-step-ahead prediction of the Mackey–Glass series (τ = 17 default).

    Each sequence has its own random initial history (see
    :func:`mackey_glass`); the input is ``s(t)``, the target ``s(t + 1)``, at
    every step. ``error`` is the NRMSE ``sqrt(mean sq. error / var(target))``.
    """

    name = "mackey_glass"

    def __init__(self, length: int, tau: float = 17.0) -> None:
        super().__init__(length)
        self.tau = check_real("tau", tau, low=0.0, low_open=True)

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B = self.length, batch_size
        s = np.stack([mackey_glass(L + 1, tau=self.tau, seed=rng) for _ in range(B)], axis=1)
        return Batch(s[:-1, :, None], s[1:, :, None], np.ones((L, B)), np.full(B, L, dtype=np.int64))


class NARMA10(_RegressionTask):
    """NARMA-10 system identification: input ``u(t)``, target ``y(t + 1)``.

    ``error`` is the NRMSE ``sqrt(mean sq. error / var(target))``.
    """

    name = "narma10"

    def _generate(self, batch_size: int, rng: np.random.Generator) -> Batch:
        L, B = self.length, batch_size
        x = np.zeros((L, B, 1))
        y = np.zeros((L, B, 1))
        for b in range(B):
            for _ in range(100):  # a diverging draw (about 2 % at length 2000) is redrawn
                try:
                    s = narma10(L + 1, seed=rng)
                    break
                except FloatingPointError:
                    continue
            else:  # pragma: no cover - probability ~ 0.02**100
                raise FloatingPointError("NARMA-10 diverged on 100 consecutive draws")
            x[:, b, 0] = s.u[:-1]
            y[:, b, 0] = s.y[1:]
        return Batch(x, y, np.ones((L, B)), np.full(B, L, dtype=np.int64))


TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        TemporalOrder,
        TemporalOrder3Bit,
        Addition,
        Multiplication,
        RandomPermutation,
        NoiselessMemorization,
        Copy,
        Adding,
        MackeyGlass,
        NARMA10,
    )
}


def make_task(name: str, length: int) -> Task:
    """Build a task by name (a key of :data:`TASKS`).

    Examples
    --------
    >>> make_task("copy", 100).sample(2, seed=0).x.shape
    (120, 2, 10)
    """
    check_choice("name", name, tuple(TASKS))
    return TASKS[name](length)
