"""Remedy records as stages of a training step, and the sweep's one table of remedies.

Each record says what it does at each stage (backward options, penalty,
gradient transform, projection) and how a sweep builds it; ``train`` runs the
stages in a fixed order for any record, its own kind or a user's subclass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pytest

from rnntheory import LSTM, ElmanRNN
from rnntheory.remedies import stages
from rnntheory.remedies.stages import (
    GradientClipping,
    Omega,
    Penalty,
    Remedy,
    SpectralProjection,
    TruncatedBPTT,
)
from rnntheory.tasks import TemporalOrder, make_task
from rnntheory.training import SGD, train


def _task():
    return TemporalOrder(12)


def _model(task, n=6, seed=0, **kw):
    return ElmanRNN.init(task.n_in, n, task.n_out, scheme="gaussian", seed=seed, **kw)


def _row():
    return {"events": []}


def _fd_gradient(f, W, eps=1e-6):
    g = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        g[idx] = (f(Wp) - f(Wm)) / (2 * eps)
    return g


# ----------------------------------------------------------------- the records' stages


def test_records_reexported_from_training_are_the_stage_records():
    """The old import path keeps working: the same classes."""
    from rnntheory import training

    for name in ("GradientClipping", "Omega", "Penalty", "SpectralProjection", "TruncatedBPTT"):
        assert getattr(training, name) is getattr(stages, name)
        assert issubclass(getattr(stages, name), Remedy)


def test_truncation_backward_option_is_k1_k2():
    """TBPTT's backward stage passes ``truncate=k2`` (k1 = 1) or ``(k1, k2)``; the
    other stages are no-ops."""
    assert TruncatedBPTT(7).backward_options() == {"truncate": 7}
    assert TruncatedBPTT(7, 3).backward_options() == {"truncate": (3, 7)}
    assert Omega(1.0).backward_options() == {"keep_trace": "scratch"}
    assert GradientClipping(1.0).backward_options() == {}
    g = {"W_hh": np.array([[3.0, 4.0]])}
    assert TruncatedBPTT(7).transform(g, _row()) is g
    m = _model(_task())
    assert TruncatedBPTT(7).project(m) is m
    assert TruncatedBPTT(7).penalty(m, None, 1, _row()) is None


def test_clipping_transform_rescales_to_the_threshold_and_logs():
    """Eq. 13 at the transform stage: g·τ/‖g‖ when ‖g‖ > τ (‖g‖ the global norm
    over every array), with a "clip" event; untouched below τ."""
    rng = np.random.default_rng(0)
    g = {"W_hh": rng.normal(size=(3, 3)), "b_h": rng.normal(size=3)}
    norm = np.sqrt(sum(float(np.sum(v**2)) for v in g.values()))
    tau = norm / 4
    row = _row()
    out = GradientClipping(tau).transform(g, row)
    for k in g:
        np.testing.assert_allclose(out[k], g[k] * (tau / norm), rtol=1e-14)
    assert [e[0] for e in row["events"]] == ["clip"]
    row = _row()
    out = GradientClipping(2 * norm).transform(g, row)
    assert all(np.array_equal(out[k], g[k]) for k in g) and row["events"] == []
    row = _row()
    out = GradientClipping(0.1, kind="value").transform({"w": np.array([0.5, -0.05, -3.0])}, row)
    assert out["w"].tolist() == [0.1, -0.05, -0.1]
    assert row["events"] == [("clip", "2 entries")]


@pytest.mark.parametrize("kind", ["l1", "l2", "spectral"])
def test_penalty_stage_value_and_gradient_match_finite_differences(kind):
    """The penalty stage's gradient is the derivative of its value (central
    differences on W_hh), and the value is the penalty's formula."""
    m = _model(_task(), n=4, seed=2, scale=1.5)
    rec = Penalty(kind, 0.3, c=0.5)
    value, grads = rec.penalty(m, None, 5, _row())

    def f(W):
        return rec.penalty(m.replace(W_hh=W), None, 5, _row())[0]

    W = np.array(m.W_hh)
    expected = {"l1": 0.3 * np.sum(np.abs(W)), "l2": 0.15 * np.sum(W**2),
                "spectral": 0.3 * max(0.0, np.linalg.svd(W, compute_uv=False)[0] - 0.5) ** 2}[kind]
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(grads["W_hh"], _fd_gradient(f, W), rtol=1e-6, atol=1e-8)


def test_projection_stage_bounds_sigma_max():
    """The project stage leaves σ_max(W_hh) ≤ c (SVD oracle) and keeps W_hh when already inside."""
    m = _model(_task(), n=5, seed=1, scale=3.0)
    out = SpectralProjection(0.9).project(m)
    assert np.linalg.svd(out.W_hh, compute_uv=False)[0] <= 0.9 * (1 + 1e-12)
    small = SpectralProjection(1e6).project(m)
    assert np.array_equal(small.W_hh, m.W_hh)


def test_omega_refuses_a_stacked_model():
    """Ω covers the Elman RNN, LSTM and GRU (tests/test_omega_gated.py) and stacks of them
    (tests/test_omega_stacked.py); a stack's Ω is of the whole state, so ``path="h"`` is
    refused with the reason."""
    from rnntheory.cells.stacked import StackedRNN

    Omega(1.0).check_model(LSTM.init(2, 3, 1, seed=0))
    Omega(1.0).check_model(StackedRNN.init(2, 3, 1, cell="lstm", n_layers=2))
    with pytest.raises(ValueError, match="`path` of Omega must be 'state' for a StackedRNN"):
        Omega(1.0, path="h").check_model(StackedRNN.init(2, 3, 1, cell="lstm", n_layers=2))


# ----------------------------------------------------------------- train runs stages


def test_stage_order_does_not_depend_on_the_order_given():
    """Penalties are added before clipping whatever the order of ``remedies``: the
    first step's clipped norm is min(τ, ‖g_loss/B + g_penalty‖) computed by hand."""
    task = _task()
    m = _model(task, seed=3, scale=2.0)
    pen, clip = Penalty("l2", 0.5), GradientClipping(0.05)
    a = train(m, task, optimizer=SGD(0.1), remedies=(clip, pen), steps=3, batch_size=4, eval_every=10, eval_size=4)
    b = train(m, task, optimizer=SGD(0.1), remedies=(pen, clip), steps=3, batch_size=4, eval_every=10, eval_size=4)
    for name in ("loss", "grad_norm", "grad_norm_clipped", "gamma_w"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    batch = task.sample(4, np.random.default_rng(0))
    value, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    grads = {k: v / 4 for k, v in g.params().items()}
    grads["W_hh"] = grads["W_hh"] + 0.5 * np.asarray(m.W_hh)
    norm = np.sqrt(sum(float(np.sum(v**2)) for v in grads.values()))
    assert a.grad_norm[0] == pytest.approx(norm, rel=1e-12)
    assert a.loss[0] == pytest.approx(value / 4 + 0.25 * float(np.sum(np.asarray(m.W_hh) ** 2)), rel=1e-12)
    assert a.grad_norm_clipped[0] == pytest.approx(min(0.05, norm), rel=1e-12)


@dataclass(frozen=True)
class _HalveGradient(Remedy):
    """A user's remedy: a gradient transform that halves every gradient."""

    stage_rank = 3

    def transform(self, grads, row):
        row["events"].append(("halve", ""))
        return {k: 0.5 * v for k, v in grads.items()}


def test_train_runs_the_stages_of_any_remedy_record():
    """``train`` does not dispatch on the records' types: a Remedy subclass that
    halves the gradient trains exactly as SGD with half the learning rate (the
    factor 1/2 is exact in binary floating point), and logs its events."""
    task = _task()
    m = _model(task, seed=4)
    a = train(m, task, optimizer=SGD(0.2), remedies=(_HalveGradient(),), steps=6, batch_size=3,
              eval_every=3, eval_size=4)
    b = train(m, task, optimizer=SGD(0.1), steps=6, batch_size=3, eval_every=3, eval_size=4)
    assert np.array_equal(a.loss, b.loss)
    assert np.array_equal(a.model.W_hh, b.model.W_hh)
    np.testing.assert_array_equal(a.grad_norm_clipped, 0.5 * a.grad_norm)
    assert a.count("halve") == 6


def test_history_sigma_max_and_rho_are_the_bounds_values():
    """History.gamma_w / rho are σ_max and ρ of the recurrent matrix after each step
    (SVD and eigenvalue oracles, float64); ρ is NaN for a gated cell's stacked matrix."""
    task = _task()
    h = train(_model(task, seed=5), task, optimizer=SGD(0.1), steps=2, batch_size=3, eval_every=5, eval_size=4)
    W = np.asarray(h.model.W_hh)
    assert h.gamma_w[-1] == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-14)
    assert h.rho[-1] == pytest.approx(np.max(np.abs(np.linalg.eigvals(W))), rel=1e-14)
    g = train(LSTM.init(task.n_in, 3, task.n_out, seed=0), task, steps=2, batch_size=3, eval_every=5, eval_size=4)
    Wg = np.asarray(g.model.params()["weight_hh"])
    assert g.gamma_w[-1] == pytest.approx(np.linalg.svd(Wg, compute_uv=False)[0], rel=1e-14)
    assert np.isnan(g.rho).all()


def test_history_is_built_by_keyword_with_omega_column_only_for_omega():
    task = _task()
    m = _model(task, seed=6)
    plain = train(m, task, steps=2, batch_size=3, eval_every=5, eval_size=4)
    assert plain.omega.shape == (0,)
    om = train(m, task, remedies=(Omega(1.0),), steps=2, batch_size=3, eval_every=5, eval_size=4)
    assert om.omega.shape == (2,) and np.isfinite(om.omega).all()


# ----------------------------------------------------------------- built from a sweep's hyper-parameters


@pytest.mark.parametrize(("name", "hyper", "expected"), [
    ("clip", {}, GradientClipping(1.0)),
    ("clip", {"clip": 2.5}, GradientClipping(2.5)),
    ("clip_value", {"clip_value": 0.5}, GradientClipping(0.5, kind="value")),
    ("tbptt", {"tbptt": 5.0}, TruncatedBPTT(5, 1)),
    ("tbptt", {"tbptt": 6.0, "tbptt_k1": 3.0}, TruncatedBPTT(6, 3)),
    ("l1", {}, Penalty("l1", 1e-4)),
    ("l2", {"l2": 0.01, "clip": 3.0}, Penalty("l2", 0.01)),
    ("spectral", {"spectral_c": 0.9}, Penalty("spectral", 1.0, c=0.9)),
    ("projection", {"projection": 1.1}, SpectralProjection(1.1)),
    ("omega", {}, Omega(weight=2.0)),
])
def test_from_hyper_builds_the_record(name, hyper, expected):
    record = stages.__dict__[type(expected).__name__]
    assert record.from_hyper(name, hyper) == expected


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: TruncatedBPTT.from_hyper("tbptt", {}), ValueError, "`hyper` must give 'tbptt'"),
    (lambda: TruncatedBPTT.from_hyper("tbptt", {"tbptt": 2.5}), ValueError, r"`hyper\['tbptt'\]` must be a whole"),
    (lambda: GradientClipping.from_hyper("l1", {}), ValueError, "`name` must be one of"),
    (lambda: GradientClipping.from_hyper("clip", [("clip", 1.0)]), TypeError, "`hyper` must be a mapping"),
    (lambda: GradientClipping.from_hyper("clip", {"clip": "x"}), TypeError, r"`hyper\['clip'\]`"),
    (lambda: GradientClipping.from_hyper("clip", {"clip": -1.0}), ValueError, "`threshold`"),
    (lambda: Penalty.hyper_defaults(3), ValueError, "`name`"),
])
def test_from_hyper_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_runspec_remedy_table_keeps_names_defaults_and_keys():
    """One table from remedy name to record: the names, their order and the
    defaults are those the sweep store was written with, and a spec's key (the
    store's primary key) is the SHA-256 of the same canonical JSON."""
    from rnntheory.experiments import runspec

    assert runspec.REMEDIES == ("clip", "clip_value", "tbptt", "l1", "l2", "spectral", "projection", "omega", "leaky")
    assert runspec._REMEDY_HPARAMS == {
        "clip": {"clip": 1.0}, "clip_value": {"clip_value": 1.0}, "tbptt": {"tbptt": None, "tbptt_k1": 1.0},
        "l1": {"l1": 1e-4}, "l2": {"l2": 1e-4}, "spectral": {"spectral": 1.0, "spectral_c": 1.0},
        "projection": {"projection": 1.0}, "omega": {"omega": 2.0},
        "leaky": {"leak_low": 0.02, "leak_high": 0.2},
    }
    spec = runspec.RunSpec("adding", 10, remedies=("tbptt", "spectral", "omega"), hparams={"tbptt": 4})
    text = json.dumps({
        "activation": "tanh", "batch_size": 20, "cell": "rnn", "eval_size": 1000,
        "hparams": {"omega": 2.0, "spectral": 1.0, "spectral_c": 1.0, "tbptt": 4.0, "tbptt_k1": 1.0},
        "init": "smart_tanh", "length": 10, "lr": 0.01, "n_hidden": 50, "optimizer": "sgd",
        "remedies": ["omega", "spectral", "tbptt"], "seed": 0, "steps": 1000, "task": "adding",
    }, sort_keys=True, separators=(",", ":"))
    assert spec.key() == hashlib.sha256(text.encode()).hexdigest()
    assert runspec.build_remedies(spec) == (Omega(2.0), Penalty("spectral", 1.0, c=1.0), TruncatedBPTT(4, 1))


def test_train_accepts_the_built_records_and_a_sweep_run_matches_train():
    """run_one trains with the records the table builds: its step count and
    fallbacks are those of train on the same model, task, records and seed."""
    from rnntheory.experiments.runspec import (
        RunSpec,
        build_model,
        build_optimizer,
        build_remedies,
        run_one,
    )

    spec = RunSpec("adding", 8, n_hidden=4, remedies=("clip", "l2", "projection"), steps=4, batch_size=3,
                   eval_size=4)
    task = make_task("adding", 8)
    h = train(build_model(spec, task.n_in, task.n_out), task, optimizer=build_optimizer(spec),
              remedies=build_remedies(spec), steps=4, batch_size=3, seed=0, eval_every=spec.eval_every,
              eval_size=4)
    m = run_one(spec)
    assert m["steps_done"] == h.steps == 4
    assert m["curve"]["loss"] == [float(v) for v in h.loss]
    assert m["n_clips"] == h.count("clip")
    W = np.asarray(h.model.W_hh)  # sigma_max and rho of the final model (SVD and eigenvalue oracles)
    assert m["gamma_w"] == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-14)
    assert m["rho"] == pytest.approx(np.max(np.abs(np.linalg.eigvals(W))), rel=1e-14)


def test_hessian_free_runs_in_the_shared_loop_and_takes_its_divergence_path():
    """Hessian-free plugs its step into the loop first-order optimizers run: a
    model whose pre-activations could pass float64's range (largest row sum of
    |W_hh| = 1.797e308) has no gradient, which is a divergence there as in the
    first-order loop (it raised before): ``"fallback"`` multiplies W_hh by
    1 − 0.02·0.01 per step (Pascanu et al.'s factor at lr 0.01), ``"stop"`` ends
    the run naming the reason; the History comes back either way."""
    from rnntheory.training import HessianFree

    task = make_task("addition", 10)
    base = ElmanRNN.init(2, 4, 1, seed=0)
    m = base.replace(W_hh=base.W_hh * (1.797e308 / np.abs(base.W_hh).sum(axis=1).max()))
    h = train(m, task, optimizer=HessianFree(max_cg=5), steps=2, batch_size=2, seed=0, eval_every=1, eval_size=2)
    assert [e[1] for e in h.events] == ["fallback", "fallback"]
    assert all(e[2].startswith("pre-activations beyond the float range; W_hh scaled by") for e in h.events)
    phi = 1.0 - 0.02 * 0.01
    np.testing.assert_allclose(h.model.W_hh, np.asarray(m.W_hh) * phi * phi, rtol=5e-16, atol=0)
    assert np.isnan(h.loss).all() and h.steps == 2 and h.eval_error.shape == (2,)
    stop = train(m, task, optimizer=HessianFree(max_cg=5), steps=3, batch_size=2, seed=0, eval_every=1,
                 eval_size=2, divergence="stop")
    assert stop.steps == 1 and stop.stopped.startswith("no gradient at step 1: ")


@dataclass(frozen=True)
class _LogsAColumn(Remedy):
    columns = ("my_column",)


def test_train_refuses_a_remedy_column_history_lacks():
    """A record may only fill per-step columns History has (today ``omega``):
    another is refused by name before the run, not after its last step."""
    task = _task()
    with pytest.raises(ValueError, match=r"`remedies`: _LogsAColumn fills the column 'my_column'"):
        train(_model(task), task, remedies=(_LogsAColumn(),), steps=1, batch_size=2, eval_size=2)
    with pytest.raises(TypeError, match="`remedies` entries must be remedy records, got str"):
        train(_model(task), task, remedies=("clip",), steps=1, batch_size=2, eval_size=2)
