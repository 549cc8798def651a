"""The task generators match their definitions (Pascanu et al. 2013, §4; Arjovsky et al. 2016) and baselines.

Targets are recomputed here from the inputs alone, so a generator that places a
symbol in one place and its target in another fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnntheory import tasks as T
from rnntheory.tasks import (
    NARMA10,
    Adding,
    Addition,
    Copy,
    MackeyGlass,
    Multiplication,
    NoiselessMemorization,
    RandomPermutation,
    TemporalOrder,
    TemporalOrder3Bit,
    mackey_glass,
    make_task,
    narma10,
)


def _binomial_tol(p: float, n: int, k: float = 5.0) -> float:
    """``k`` binomial standard deviations of a rate ``p`` over ``n`` trials."""
    return k * math.sqrt(p * (1 - p) / n)


def _is_one_hot(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)) and np.all(x.sum(axis=-1) == 1))


@pytest.mark.parametrize("name", sorted(T.TASKS))
def test_seeded_and_well_formed(name: str) -> None:
    """Same seed → same batch; dtypes, sizes and the mask agree with ``y``."""
    task = make_task(name, 23)
    a, b, c = task.sample(5, 7), task.sample(5, 7), task.sample(5, 8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.x.dtype == np.float64 and a.x.shape[1:] == (5, task.n_in)
    assert a.mask.shape == a.x.shape[:2] and set(np.unique(a.mask)) <= {0.0, 1.0}
    on = a.mask > 0
    if task.loss == "xent":
        assert a.y.dtype == np.int64 and a.y.shape == a.x.shape[:2]
        assert np.all((a.y >= 0) == on) and np.all(a.y < task.n_out)
    else:
        assert a.y.dtype == np.float64 and a.y.shape == (*a.x.shape[:2], task.n_out)
        assert np.all(a.y[~on] == 0)
    # every sequence's target steps lie inside its own length
    t = np.arange(a.T)[:, None]
    assert np.all(~on | (t < a.lengths[None, :]))
    gen = np.random.default_rng(3)
    assert task.sample(2, gen).x.shape[1] == 2


@pytest.mark.parametrize("cls", [TemporalOrder, TemporalOrder3Bit])
@pytest.mark.parametrize("L", [10, 37, 200])
def test_temporal_order_definition(cls: type[TemporalOrder], L: int) -> None:
    """One-hot input; A/B only at the stated positions; target = Σ 2^k v_k."""
    batch = cls(L).sample(300, seed=L)
    assert _is_one_hot(batch.x) and batch.x.shape == (L, 300, 6)
    sym = batch.x.argmax(-1)
    ranges = [(1, 2), (5, 6)] if cls is TemporalOrder else [(1, 2), (3, 4), (6, 7)]
    for b in range(300):
        pos = np.flatnonzero(sym[:, b] < 2)
        assert len(pos) == len(ranges)
        target = 0
        for k, (p, (lo, hi)) in enumerate(zip(pos, ranges, strict=True)):
            assert lo * L // 10 <= p < hi * L // 10
            target += int(sym[p, b]) << k
        assert batch.y[-1, b] == target and np.all(batch.y[:-1, b] == -1)
    # both values of every position occur (uniform draws, not constants)
    assert set(np.unique(batch.y[-1])) == set(range(cls.n_out))


def test_temporal_order_chance() -> None:
    """Uniform predictor: NLL = ln 4 exactly; argmax (class 0) wrong 75 % ± 5σ."""
    task, B = TemporalOrder(20), 20000
    batch = task.sample(B, seed=1)
    out = np.zeros((batch.T, B, 4))
    assert task.loss_value(out, batch) == pytest.approx(math.log(4), rel=1e-12)
    err = task.error(out, batch)
    assert abs(err - 0.75) < _binomial_tol(0.75, B)
    # the oracle that reads the two symbols is always right
    sym = batch.x.argmax(-1)
    oracle = np.zeros_like(out)
    for b in range(B):
        v = sym[sym[:, b] < 2, b]
        oracle[-1, b, v[0] + 2 * v[1]] = 1.0
    assert task.error(oracle, batch) == 0.0


@pytest.mark.parametrize("cls", [Addition, Multiplication])
@pytest.mark.parametrize("L", [10, 50, 101])
def test_addition_definition(cls: type[Addition], L: int) -> None:
    """Per-sequence length l ∈ [L, L + ⌊0.1L⌋); markers at p0 < ⌊0.1l⌋ ≤ p1 < ⌊0.5l⌋."""
    batch = cls(L).sample(200, seed=L)
    assert batch.T == batch.lengths.max()
    assert np.all((batch.lengths >= L) & (batch.lengths < L + max(L // 10, 1)))
    if L >= 50:
        assert len(np.unique(batch.lengths)) > 1  # lengths vary within a batch
    for b in range(200):
        l = int(batch.lengths[b])
        x = batch.x[:, b]
        assert np.all(x[l:] == 0)  # zero padding
        assert np.all((x[:l, 1] >= 0) & (x[:l, 1] < 1))
        p0, p1 = np.flatnonzero(x[:, 0])
        assert 0 <= p0 < l // 10 <= p1 < 5 * l // 10
        a, c = x[p0, 1], x[p1, 1]
        want = (a + c) / 2 if cls is Addition else a * c
        assert batch.mask[:, b].sum() == 1 and batch.mask[l - 1, b] == 1
        assert batch.y[l - 1, b, 0] == want


def test_addition_constant_predictor_error() -> None:
    """Best constant (the mean target, ≈ 1/2) errs on P(|y − 1/2| > 0.2) = 0.36.

    ``y = (a + c)/2`` is triangular on [0, 1], so ``P(y > 0.7) = 2·0.3² = 0.18``
    and the two tails give 0.36. Tolerance 5 binomial σ (B = 20 000: ±0.017).
    """
    task, B = Addition(20), 20000
    batch = task.sample(B, seed=2)
    on = batch.mask > 0
    mean = batch.y[on].mean()
    out = np.where(on[..., None], mean, 0.0)
    err = task.error(out, batch)
    assert abs(err - 0.36) < _binomial_tol(0.36, B)
    # the predictor at 0.5 misses exactly the sequences with (y − 0.5)² > 0.04
    y = batch.y[on][:, 0]
    assert task.error(np.where(on[..., None], 0.5, 0.0), batch) == np.mean((y - 0.5) ** 2 > 0.04)


def test_random_permutation_definition_and_chance() -> None:
    """First symbol ∈ {0, 1}, later ones ∈ {2..99}; target = first symbol; chance 50 %."""
    task, B = RandomPermutation(30), 4000
    batch = task.sample(B, seed=3)
    assert _is_one_hot(batch.x)
    sym = batch.x.argmax(-1)
    assert np.all(sym[0] < 2) and np.all(sym[1:] >= 2)
    assert len(np.unique(sym[1:])) == 98
    assert np.array_equal(batch.y[-1], sym[0])
    const = np.zeros((batch.T, B, 100))
    assert abs(task.error(const, batch) - 0.5) < _binomial_tol(0.5, B)


@pytest.mark.parametrize("L", [1, 15, 60])
def test_memorization_definition(L: int) -> None:
    """10 symbols of 5 values, blanks, delimiter at step L + 10; targets blank then symbols."""
    task = NoiselessMemorization(L)
    batch = task.sample(50, seed=L)
    assert batch.x.shape == (L + 20, 50, 7) and _is_one_hot(batch.x)
    sym = batch.x.argmax(-1)
    assert np.all(sym[:10] < 5)
    delim = np.zeros(L + 20, dtype=bool)
    delim[L + 10] = True
    assert np.all(sym[delim] == 6) and np.all(sym[10:][~delim[10:]] == 5)
    assert np.all(batch.y[: L + 10] == 5) and np.array_equal(batch.y[L + 10 :], sym[:10])
    assert np.all(batch.mask == 1)
    # any step wrong makes the sequence wrong
    perfect = np.eye(6)[batch.y]
    assert task.error(perfect, batch) == 0.0
    spoiled = perfect.copy()
    spoiled[0, 3] = np.eye(6)[0]
    assert task.error(spoiled, batch) == pytest.approx(1 / 50)


@pytest.mark.parametrize("Tdelay", [1, 10, 100])
def test_copy_definition(Tdelay: int) -> None:
    """10 symbols from 8, T − 1 blanks, delimiter, 10 blanks; target T + 10 blanks, symbols."""
    batch = Copy(Tdelay).sample(40, seed=Tdelay)
    assert batch.x.shape == (Tdelay + 20, 40, 10) and _is_one_hot(batch.x)
    sym = batch.x.argmax(-1)
    assert np.all((sym[:10] >= 1) & (sym[:10] <= 8))
    assert np.all(sym[10 : 10 + Tdelay - 1] == 0)
    assert np.all(sym[10 + Tdelay - 1] == 9) and np.all(sym[10 + Tdelay :] == 0)
    assert np.all(batch.y[: Tdelay + 10] == 0) and np.array_equal(batch.y[Tdelay + 10 :], sym[:10])


def test_copy_memoryless_baseline() -> None:
    """The marginal predictor's cross-entropy is ``10 ln 8 / (T + 20)`` per step.

    The marginal of each position is estimated on one batch and scored on
    another; with B = 4000 the estimate's error is well below 1e-2 nats/step.
    """
    task, Tdelay = Copy(30), 30
    fit = task.sample(4000, seed=10)
    counts = np.stack([(fit.y == k).sum(axis=1) for k in range(9)], axis=-1) + 1e-12
    logp = np.log(counts / counts.sum(-1, keepdims=True))
    test = task.sample(4000, seed=11)
    out = np.broadcast_to(logp[:, None, :], (test.T, 4000, 9))
    want = 10 * math.log(8) / (Tdelay + 20)
    assert task.loss_value(out, test) == pytest.approx(want, abs=5e-3)
    # and exactly, for the exact marginal
    exact = np.full((test.T, 9), -np.inf)
    exact[: Tdelay + 10, 0] = 0.0
    exact[Tdelay + 10 :, 1:] = -math.log(8)
    exact = np.where(np.isinf(exact), -1e300, exact)
    out = np.broadcast_to(exact[:, None, :], (test.T, 4000, 9))
    assert task.loss_value(out, test) == pytest.approx(want, rel=1e-12)


def test_adding_definition_and_constant_mse() -> None:
    """One marker per half; target = sum of marked values; MSE of the constant 1 → 1/6.

    ``Var(a + c) = 2/12``; with B = 40 000 the sample variance's relative
    standard error is ≈ sqrt(Var((s−1)²))/(1/6)/√B < 1 %; tolerance 4 %.
    """
    task, B, L = Adding(40), 40000, 40
    batch = task.sample(B, seed=4)
    x = batch.x
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    for b in range(200):
        p0, p1 = np.flatnonzero(x[:, b, 1])
        assert 0 <= p0 < L // 2 <= p1 < L
        assert batch.y[-1, b, 0] == x[p0, b, 0] + x[p1, b, 0]
    assert np.all(x[:, :, 1].sum(0) == 2)
    out = np.ones((L, B, 1))
    assert task.loss_value(out, batch) == pytest.approx(1 / 6, rel=0.04)


def _mg_reference(history: np.ndarray, n: int, discard: int) -> np.ndarray:
    """Plain-Python Euler (dt 0.1, τ 17 → 170 steps), one sample per 10 steps."""
    y = list(history)
    d = 170
    for _ in range((n + discard) * 10):
        lag = y[-1 - d]
        y.append(y[-1] + 0.1 * (0.2 * lag / (1 + lag**10) - 0.1 * y[-1]))
    out = np.array(y[d + 1 :])[9::10][discard:]
    return np.tanh(out - 1)


def test_mackey_glass() -> None:
    """Values in (−1, 1); deterministic given the history; equal to a plain Euler loop."""
    hist = 1.2 + 0.2 * (np.random.default_rng(5).random(171) - 0.5)
    s = mackey_glass(300, history=hist, discard=50)
    assert np.all(np.abs(s) < 1)
    assert np.array_equal(s, mackey_glass(300, history=hist, discard=50))
    np.testing.assert_allclose(s, _mg_reference(hist, 300, 50), rtol=0, atol=1e-12)
    # seeded random histories differ, and the series is chaotic but bounded
    a, b = mackey_glass(1000, seed=1), mackey_glass(1000, seed=2)
    assert not np.allclose(a, b) and a.std() > 0.1
    assert np.array_equal(mackey_glass(50, history=1.2), mackey_glass(50))
    # the task: input s(t), target s(t + 1)
    batch = MackeyGlass(100).sample(2, seed=0)
    assert np.array_equal(batch.x[1:], batch.y[:-1])
    assert MackeyGlass(100).error(batch.y, batch) == 0.0


def test_narma10_recursion() -> None:
    """y(t+1) = 0.3y(t) + 0.05y(t)Σ_{i=0}^{9}y(t−i) + 1.5u(t−9)u(t) + 0.1, u ~ U[0, 0.5]."""
    s = narma10(400, seed=6, discard=50)
    u, y = s.u, s.y
    assert np.all((u >= 0) & (u <= 0.5))
    for t in range(9, 399):
        rhs = 0.3 * y[t] + 0.05 * y[t] * sum(y[t - i] for i in range(10)) + 1.5 * u[t - 9] * u[t] + 0.1
        assert y[t + 1] == pytest.approx(rhs, rel=1e-13)
    batch = NARMA10(60).sample(3, seed=1)
    assert batch.y.shape == (60, 3, 1) and np.all(batch.y > 0)
    # the recursion diverges for about 2 % of inputs at length 2000: reported, not returned
    first = next((i for i in range(500) if _diverges(i)), None)
    assert first is not None, "expected a diverging seed among 500"


def _diverges(seed: int) -> bool:
    try:
        narma10(2000, seed=seed)
    except FloatingPointError:
        return True
    return False


BAD_INPUTS = [
    (lambda: TemporalOrder(9), ValueError, "`length` must be >= 10, got 9"),
    (lambda: Addition(5.0), TypeError, "`length` must be an integer"),
    (lambda: Copy(10).sample(0), ValueError, "`batch_size` must be >= 1, got 0"),
    (lambda: Copy(10).sample(2, seed="x"), TypeError, r"`seed` must be an integer in \[0, 2\*\*64\)"),
    (lambda: Copy(10).sample(2, seed=-1), ValueError, r"`seed` must be an integer in \[0, 2\*\*64\), got -1"),
    (lambda: make_task("nope", 10), ValueError, "`name` must be one of"),
    (lambda: mackey_glass(10, tau=17.05), ValueError, "`tau` must be a positive multiple"),
    (lambda: mackey_glass(10, history=[1.0, 2.0]), ValueError, r"`history` must be a scalar or have shape \(171,\)"),
    (lambda: mackey_glass(0), ValueError, "`n_samples` must be >= 1"),
    # a subnormal step made tau / dt infinite (OverflowError in round); a huge
    # delay asked NumPy for an impossible array (found by tests/test_fuzz.py)
    (lambda: mackey_glass(10, dt=5e-324), ValueError, r"`tau` / `dt` = inf delay steps"),
    (lambda: mackey_glass(10, tau=1e300), ValueError, r"`tau` / `dt` = 1e\+301 delay steps, at most"),
    (
        lambda: TemporalOrder(10).error(np.zeros((10, 2, 3)), TemporalOrder(10).sample(2, 0)),
        ValueError,
        r"`outputs` must have shape \(10, 2, 4\), got shape \(10, 2, 3\)",
    ),
    # a malformed batch raised AttributeError, IndexError (tuple index out of
    # range, boolean index did not match, `indices` must be an integer array),
    # a DTypePromotionError or a RuntimeWarning
    (lambda: _scored("copy", batch="batch"), TypeError, r"`batch` must be a Batch \(from Copy\.sample\), got str"),
    (lambda: _scored("copy", x=lambda b: b.x.ravel()), ValueError, r"`batch\.x` must have shape \(T, B, 10\)"),
    (lambda: _scored("narma10", x=lambda b: np.float64(1.0)), TypeError, r"`batch\.x` must be a float array"),
    (lambda: _scored("narma10", x=lambda b: b.x[:, :0]), ValueError, r"`batch\.x` must have shape \(T, B, 1\) with T, B >= 1"),
    (lambda: _scored("copy", y=lambda b: b.y.astype(np.float16)), TypeError, r"`batch\.y` must be an integer array"),
    (lambda: _scored("copy", y=lambda b: b.y.astype(str)), TypeError, r"`batch\.y` must be an integer array"),
    (lambda: _scored("copy", y=lambda b: b.y + 9), ValueError, r"`batch\.y` class indices must lie in \[0, 9\)"),
    (lambda: _scored("copy", y=lambda b: b.y[:, :1]), ValueError, r"`batch\.y` must have shape \(22, 2\)"),
    (lambda: _scored("mackey_glass", y=lambda b: np.where(b.y == b.y[0, 0, 0], np.inf, b.y)), ValueError,
     r"`batch\.y` must be finite"),
    (lambda: _scored("narma10", y=lambda b: b.y[..., 0]), ValueError, r"`batch\.y` must have shape \(4, 2, 1\)"),
    (lambda: _scored("mackey_glass", mask=lambda b: b.mask[:-1]), ValueError, r"`batch\.mask` must have shape \(4, 2\)"),
    (lambda: _scored("adding", mask=lambda b: -b.mask), ValueError, r"`batch\.mask` must be non-negative"),
    (lambda: _scored("adding", mask=lambda b: b.mask * np.nan), ValueError, r"`batch\.mask` must be finite"),
    (lambda: _scored("adding", "loss_value", mask=lambda b: 0 * b.mask), ValueError, r"`batch` has no target steps"),
    (lambda: _scored("narma10", mask=lambda b: 0 * b.mask), ValueError, r"`batch` has no target steps"),
]


def _scored(name: str, method: str = "error", batch=None, **fields):
    """``task.<method>(outputs, batch)`` on a batch of the task (length 2 for
    copy, 4 otherwise) whose fields are replaced by ``fields[f](batch)``."""
    task = make_task(name, 2 if name == "copy" else 4)
    b = task.sample(2, seed=0)
    parts = {f: fields[f](b) if f in fields else getattr(b, f) for f in ("x", "y", "mask", "lengths")}
    out = np.zeros((b.T, 2, task.n_out))
    return getattr(task, method)(out, T.Batch(**parts) if batch is None else batch)


@pytest.mark.parametrize(("call", "exc", "match"), BAD_INPUTS)
def test_bad_inputs(call, exc, match) -> None:
    """Each message names the argument, shows the value and says what was expected."""
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- non-finite outputs


def _perfect(task: T.Task, batch: T.Batch) -> np.ndarray:
    """Outputs the criterion scores as right on every step: one-hot logits of
    the target class (``xent``), the target itself (``mse``)."""
    if task.loss == "xent":
        return np.eye(task.n_out)[np.where(batch.mask > 0, batch.y, 0)]
    return batch.y.copy()


def _first_target_step(batch: T.Batch, b: int) -> int:
    return int(np.flatnonzero(batch.mask[:, b] > 0)[0])


@pytest.mark.parametrize("name", sorted(T.TASKS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_counts_non_finite_outputs_wrong(name: str, bad: float) -> None:
    """A target step whose output holds NaN or ±inf is wrong for every task: the
    fraction-of-sequences tasks count exactly the spoiled sequence (1/B), the
    NRMSE tasks return inf. Spoiled: the target class's own channel (where
    ``argmax`` would pick the target) and, separately, the whole row (all-NaN:
    ``argmax`` is 0, the target class of some sequences)."""
    task = make_task(name, 12)
    B = 6
    batch = task.sample(B, seed=3)
    good = _perfect(task, batch)
    assert task.error(good, batch) == 0.0
    for b in range(B):
        t = _first_target_step(batch, b)
        ch = int(batch.y[t, b]) if task.loss == "xent" else 0
        for whole_row in (False, True):
            out = good.copy()
            if whole_row:
                out[t, b, :] = bad
            else:
                out[t, b, ch] = bad
            got = task.error(out, batch)
            if task.metric == "nrmse":
                assert got == math.inf
            else:
                assert got == 1 / B, (b, whole_row, got)


@pytest.mark.parametrize("name", sorted(T.TASKS))
def test_error_all_nan_outputs_is_total(name: str) -> None:
    """All-NaN outputs are wrong on every sequence (error 1, or inf for NRMSE),
    whatever the target classes (class 0 included: ``argmax`` of NaN is 0)."""
    task = make_task(name, 12)
    batch = task.sample(8, seed=0)
    if task.loss == "xent":  # make every target class 0, where argmax of NaN points
        batch = T.Batch(batch.x, np.where(batch.mask > 0, 0, batch.y), batch.mask, batch.lengths)
    out = np.full((batch.T, batch.batch_size, task.n_out), np.nan)
    assert task.error(out, batch) == (math.inf if task.metric == "nrmse" else 1.0)


def _nrmse_mp(out: np.ndarray, batch: T.Batch) -> float:
    """NRMSE in mpmath (50 digits): sqrt(mean (o − y)² / var y) over target steps."""
    import mpmath

    on = batch.mask > 0
    o, y = out[on].ravel(), batch.y[on].ravel()
    with mpmath.workdps(50):
        ys = [mpmath.mpf(float(v)) for v in y]
        mean = mpmath.fsum(ys) / len(ys)
        var = mpmath.fsum((v - mean) ** 2 for v in ys) / len(ys)
        mse = mpmath.fsum((mpmath.mpf(float(a)) - v) ** 2 for a, v in zip(o, ys, strict=True)) / len(ys)
        return float(mpmath.sqrt(mse / var))


@pytest.mark.parametrize("cls", [MackeyGlass, NARMA10])
@pytest.mark.parametrize(
    ("scale", "offset"),
    [(1.0, 0.1), (1.0, 1e200), (1.0, 1e300), (1e-200, 1e-201), (1e-300, 5e-301), (1.5e308, 1e307), (-1.5e308, 1e306)],
)
def test_nrmse_matches_mpmath_at_extreme_scales(cls, scale: float, offset: float) -> None:
    """The NRMSE of targets scaled by 1e-200 or 1e-300 and of outputs off by
    1e200 or 1e300 is the finite value mpmath gives (squaring the errors or
    the targets' deviations would overflow or underflow); so is that of
    targets near float64's limit, whose plain mean overflowed."""
    task = cls(20)
    raw = task.sample(2, seed=0)
    batch = T.Batch(raw.x, raw.y * scale, raw.mask, raw.lengths)
    rng = np.random.default_rng(1)
    out = batch.y + offset * rng.uniform(0.5, 1.0, batch.y.shape)
    want = _nrmse_mp(out, batch)
    assert 0.0 < want < math.inf
    assert math.isclose(task.error(out, batch), want, rel_tol=1e-12)


def test_nrmse_constant_target() -> None:
    """One target value (variance 0): an exact prediction scores 0, any other inf
    (not 0/0)."""
    task = MackeyGlass(1)
    batch = task.sample(1, seed=0)
    assert task.error(batch.y, batch) == 0.0
    assert task.error(batch.y + 1e-3, batch) == math.inf
