"""Training stacked models with every first-order remedy, each with its guarantee.

Every (stack of Elman / LSTM / GRU layers) × (SGD, Adam, RMSProp, gradient
clipping by norm and by value, L1 / L2 / spectral penalty, spectral
projection, truncated BPTT, the divergence fallback) trains through
``train`` on a tiny task, and the step it takes is checked against what the
remedy promises: the applied gradient's norm (or every entry) within the
threshold, σ_max ≤ c for every layer after a projection, the penalty's
gradient equal to central differences of the penalty, the truncated step
equal to the truncated gradient (itself checked against explicit Jacobian
products in tests/test_stacked_truncation.py), the fallback's exact factor on
every layer's recurrent matrix.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnntheory import StackedRNN, bounds
from rnntheory.remedies import l1_penalty, l2_penalty, project_spectral_norm, spectral_penalty
from rnntheory.tasks import TemporalOrder
from rnntheory.training import (
    GradientClipping,
    Penalty,
    SpectralProjection,
    TruncatedBPTT,
    train,
)
from rnntheory.training._loop_parts import fallback_factor, recurrent_names
from rnntheory.training.optimizers import SGD, Adam, RMSProp

CELLS = {
    "elman": {"scheme": "gaussian", "scale": 1.2},
    "pascanu": {"scheme": "gaussian", "form": "pascanu", "scale": 1.2},
    "leaky": {"scheme": "gaussian", "alpha": 0.3},
    "lstm": {},
    "gru": {},
}
TASK = TemporalOrder(length=10)
RUN = {"steps": 1, "batch_size": 4, "eval_size": 4, "seed": 3}


def stack(kind, L=2, seed=0, scheme=None):
    cell = "elman" if kind in ("elman", "pascanu", "leaky") else kind
    opts = dict(CELLS[kind])
    if scheme is not None:
        opts["scheme"] = scheme
    return StackedRNN.init(TASK.n_in, 5, TASK.n_out, cell=cell, n_layers=L, seed=seed, **opts)


def batch_grad(m, truncate=None):
    """The batch-mean gradient of the first step of a run with RUN's seed (the
    loop draws its batches from a generator seeded with ``seed``)."""
    batch = TASK.sample(RUN["batch_size"], np.random.default_rng(RUN["seed"]))
    _, g = m.value_and_grad(batch.x, batch.y, loss=TASK.loss, mask=batch.mask, truncate=truncate)
    return {k: v / RUN["batch_size"] for k, v in g.params().items()}


def step(m, h):
    """Every parameter's change in the run's (only) step."""
    new = h.model.params()
    return {k: new[k] - v for k, v in m.params().items()}


def norm(tree):
    return float(np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in tree.values())))


@pytest.mark.parametrize("kind", list(CELLS))
def test_the_raw_key_error_is_gone(kind):
    """``train`` on a stack used to raise ``KeyError: 'weight_hh'`` (it looked for
    one recurrent matrix); now the History records σ_max as the largest over the
    layers, and ρ the largest spectral radius (nan for gated layers' stacked gates)."""
    m = stack(kind)
    h = train(m, TASK, optimizer=SGD(lr=0.01), steps=3, batch_size=4, eval_size=4)
    assert isinstance(h.model, StackedRNN) and h.steps == 3 and np.all(np.isfinite(h.loss))
    names = recurrent_names(h.model)
    assert names == tuple(f"{'W_hh' if m.cell == 'elman' else 'weight_hh'}_l{i}" for i in range(2))
    Ws = [h.model.params()[k] for k in names]
    assert h.gamma_w[-1] == max(bounds.gamma_w(W) for W in Ws)
    if m.cell == "elman":
        assert h.rho[-1] == max(bounds.spectral_radius(W) for W in Ws)
    else:
        assert np.isnan(h.rho[-1])


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("opt", ["sgd", "adam", "rmsprop"])
def test_optimizers_take_their_step(kind, opt):
    """SGD: ``Δθ = −lr·g``; Adam's first step is ``−lr·g/(|g| + ε)`` (bias-corrected
    moments ``m̂ = g``, ``v̂ = g²``), at most ``lr`` per entry; RMSProp's first
    ``−lr·g/(√(1 − ρ)|g| + ε)``, at most ``lr/√(1 − ρ)``."""
    m = stack(kind)
    g = batch_grad(m)
    lr = 0.05
    optimizer = {"sgd": SGD(lr=lr), "adam": Adam(lr=lr), "rmsprop": RMSProp(lr=lr)}[opt]
    d = step(m, train(m, TASK, optimizer=optimizer, **RUN))
    for k, v in d.items():
        if opt == "sgd":
            np.testing.assert_allclose(v, -lr * g[k], rtol=1e-12, atol=1e-15, err_msg=k)
        elif opt == "adam":  # m̂ = g, √v̂ = |g|: −lr·g/(|g| + ε)
            assert np.abs(v).max() <= lr * (1 + 1e-12)
            np.testing.assert_allclose(v, -lr * g[k] / (np.abs(g[k]) + optimizer.eps), rtol=1e-9, atol=1e-15)
        else:  # s = (1 − ρ) g²: −lr·g/(√(1 − ρ)|g| + ε)
            assert np.abs(v).max() <= lr / np.sqrt(1 - optimizer.decay) * (1 + 1e-12)
            want = -lr * g[k] / (np.sqrt(1 - optimizer.decay) * np.abs(g[k]) + optimizer.eps)
            np.testing.assert_allclose(v, want, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("clip", ["norm", "value"])
def test_clipping_bounds_the_applied_gradient(kind, clip):
    """The gradient the optimizer applies has global norm ≤ threshold (``"norm"``)
    or every entry within ``[−threshold, threshold]`` (``"value"``), and points
    the way the raw gradient does (norm) / equals it where it was inside (value)."""
    m = stack(kind)
    g = batch_grad(m)
    threshold = 0.5 * norm(g) if clip == "norm" else 0.5 * max(np.abs(v).max() for v in g.values())
    lr = 0.1
    h = train(m, TASK, optimizer=SGD(lr=lr), remedies=(GradientClipping(threshold, kind=clip),), **RUN)
    assert h.count("clip") == 1
    applied = {k: -v / lr for k, v in step(m, h).items()}
    if clip == "norm":
        assert h.grad_norm_clipped[0] <= threshold
        assert norm(applied) <= threshold * (1 + 1e-12)
        scale = threshold / norm(g)
        for k, v in applied.items():
            np.testing.assert_allclose(v, scale * g[k], rtol=1e-10, atol=1e-15, err_msg=k)
    else:
        for k, v in applied.items():
            assert np.abs(v).max() <= threshold * (1 + 1e-12)
            np.testing.assert_allclose(v, np.clip(g[k], -threshold, threshold), rtol=1e-10, atol=1e-15)


def central(m, fn, key, eps=1e-6):
    """Central differences of ``fn(model)`` with respect to ``m.params()[key]``."""
    W = m.params()[key]
    out = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        out[idx] = (fn(m.replace(**{key: Wp})) - fn(m.replace(**{key: Wm}))) / (2 * eps)
    return out


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("pen", ["l1", "l2", "spectral"])
def test_penalty_gradient_is_the_finite_difference(kind, pen):
    """A stack's penalty is the sum of its layers' (each layer's recurrent matrix;
    a gated layer's stacked ``weight_hh``, ``(G·n, n)``, as for one cell), and its
    gradient equals central differences of that sum with respect to every
    layer's recurrent matrix (nothing else is penalised)."""
    m = stack(kind, L=3, scheme="gaussian" if kind == "elman" else None)
    m = m.replace(**{k: 2.0 * v for k, v in m.params().items() if "hh" in k and "bias" not in k})
    fn = {
        "l1": lambda mm: l1_penalty(mm, 0.3),
        "l2": lambda mm: l2_penalty(mm, 0.3),
        "spectral": lambda mm: spectral_penalty(mm, 0.3, c=0.5),
    }[pen]
    value, grads = fn(m)
    names = recurrent_names(m)
    assert sorted(grads) == sorted(names)
    assert value == pytest.approx(sum(fn(layer)[0] for layer in m.layers), rel=1e-15)
    for key in names:
        fd = central(m, lambda mm: fn(mm)[0], key)
        np.testing.assert_allclose(grads[key], fd, rtol=1e-6, atol=1e-8, err_msg=key)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("pen", ["l1", "l2", "spectral"])
def test_penalty_adds_its_gradient_to_the_step(kind, pen):
    """One SGD step with a penalty differs from the plain step by ``−lr·∂P/∂θ``
    (the penalty's gradient, checked against finite differences above)."""
    m = stack(kind)
    lr = 0.05
    rec = Penalty(pen, 0.2, c=0.3)
    plain = step(m, train(m, TASK, optimizer=SGD(lr=lr), **RUN))
    d = step(m, train(m, TASK, optimizer=SGD(lr=lr), remedies=(rec,), **RUN))
    _, pg = rec.penalty(m, None, RUN["batch_size"], {"events": []})
    assert set(pg) == set(recurrent_names(m))
    for k, v in d.items():
        want = plain[k] - lr * pg.get(k, 0.0)
        np.testing.assert_allclose(v, want, rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("kind", list(CELLS))
def test_projection_bounds_every_layer(kind):
    """After every step σ_max ≤ c for each layer's recurrent matrix (a gated
    layer's stacked ``weight_hh`` as one matrix, so each gate block too)."""
    c = 0.6
    m = stack(kind, L=3)
    h = train(m, TASK, optimizer=SGD(lr=0.5), remedies=(SpectralProjection(c),), steps=3, batch_size=4, eval_size=4)
    for key in recurrent_names(h.model):
        W = h.model.params()[key]
        assert bounds.gamma_w(W) <= c
        for b in range(W.shape[0] // W.shape[1]):
            assert bounds.gamma_w(W[b * W.shape[1]:(b + 1) * W.shape[1]]) <= c
    assert np.all(h.gamma_w <= c)
    p = project_spectral_norm(m, c)
    for i, (a, b) in enumerate(zip(m.layers, p.layers, strict=True)):
        q = project_spectral_norm(a, c)  # per layer: what the cell itself gets
        assert all(np.array_equal(v, b.params()[k]) for k, v in q.params().items()), i


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("truncate", [1, 3, (2, 4), (4, 4)])
def test_truncated_bptt_takes_the_truncated_step(kind, truncate):
    """``TruncatedBPTT`` makes the step ``−lr·g`` with ``g`` the truncated gradient
    (tests/test_stacked_truncation.py checks it against Jacobian products); it
    differs from the full-BPTT step."""
    m = stack(kind)
    rec = TruncatedBPTT(truncate) if isinstance(truncate, int) else TruncatedBPTT(truncate[1], truncate[0])
    lr = 0.05
    d = step(m, train(m, TASK, optimizer=SGD(lr=lr), remedies=(rec,), **RUN))
    g = batch_grad(m, truncate)
    full = batch_grad(m)
    for k, v in d.items():
        np.testing.assert_allclose(v, -lr * g[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert max(np.abs(g[k] - full[k]).max() for k in g) > 1e-8


@pytest.mark.parametrize("kind", list(CELLS))
def test_fallback_shrinks_every_layer(kind):
    """A diverging step (here: every step, threshold 1e-30) is skipped and every
    layer's recurrent matrix is multiplied by φ(lr) exactly; nothing else moves."""
    m = stack(kind)
    lr = 0.5
    h = train(m, TASK, optimizer=SGD(lr=lr), divergence_threshold=1e-30, steps=2, batch_size=4, eval_size=4)
    assert h.count("fallback") == 2
    phi = fallback_factor(lr)
    names = recurrent_names(m)
    for k, v in m.params().items():
        got = h.model.params()[k]
        if k in names:
            assert np.array_equal(got, (v * phi) * phi)
            assert np.linalg.norm(got) < np.linalg.norm(v)
        else:
            assert np.array_equal(got, v)
    assert all(", ".join(names) in d for _, kind_, d in h.events if kind_ == "fallback")


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_every_remedy_at_once(kind):
    """All first-order remedies together train a stack: finite, the projection holds."""
    m = stack(kind)
    rems = (TruncatedBPTT(3), Penalty("l2", 1e-3), Penalty("spectral", 0.1, c=0.9),
            GradientClipping(1.0), SpectralProjection(0.9))
    h = train(m, TASK, optimizer=Adam(lr=0.01), remedies=rems, steps=4, batch_size=4, eval_size=4)
    assert h.steps == 4 and np.all(np.isfinite(h.loss)) and np.all(h.grad_norm_clipped <= 1.0)
    assert np.all(h.gamma_w <= 0.9)


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_orthogonal_init_per_gate_per_layer(kind):
    """``StackedRNN.init(..., scheme="orthogonal")``: every gate block of every
    layer's recurrent matrix is orthogonal (``QᵀQ = I`` to 1e-12), the layers'
    matrices differ (each layer its own seed), and float32 keeps it to 1e-6."""
    n = 6
    m = StackedRNN.init(3, n, 2, cell=kind, n_layers=3, scheme="orthogonal", seed=4)
    blocks = []
    for key in recurrent_names(m):
        W = m.params()[key]
        for b in range(W.shape[0] // n):
            Q = W[b * n:(b + 1) * n]
            np.testing.assert_allclose(Q.T @ Q, np.eye(n), rtol=0, atol=1e-12)
            np.testing.assert_allclose(Q @ Q.T, np.eye(n), rtol=0, atol=1e-12)
            blocks.append(Q)
    assert len(blocks) == 3 * {"elman": 1, "lstm": 4, "gru": 3}[kind]
    assert all(not np.allclose(a, b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    m32 = StackedRNN.init(3, n, 2, cell=kind, n_layers=2, scheme="orthogonal", seed=4, dtype=np.float32)
    for key in recurrent_names(m32):
        W = m32.params()[key].astype(np.float64)
        for b in range(W.shape[0] // n):
            Q = W[b * n:(b + 1) * n]
            np.testing.assert_allclose(Q.T @ Q, np.eye(n), rtol=0, atol=1e-6)


def test_bad_models_for_remedies():
    """Something that is not a model is refused with the argument named."""
    with pytest.raises(TypeError, match=r"`model` must be an rnntheory model \(ElmanRNN, LSTM, GRU, StackedRNN or "):
        train([stack("lstm")], TASK, steps=1)
    with pytest.raises(TypeError, match=r"(?s)`model` must be an ElmanRNN, LSTM or GRU, got .* \(or a StackedRNN of such layers\)"):
        l2_penalty("W", 0.1)
    with pytest.raises(TypeError, match=r"(?s)`model` must be an ElmanRNN, LSTM or GRU, got .* \(or a StackedRNN of such layers\)"):
        project_spectral_norm(np.eye(2), 1.0)
    m = stack("lstm")
    with pytest.raises(ValueError, match=r"`weight` must be >= 0.0, got -1.0"):
        l1_penalty(m, -1.0)
    with pytest.raises(ValueError, match=r"`c` must be 0 or at least"):
        project_spectral_norm(m, 5e-324)
    assert all(np.array_equal(v, 0 * v) for k, v in project_spectral_norm(m, 0.0).params().items()
               if k in recurrent_names(m))
