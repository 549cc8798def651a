"""The protocol registry: every remedy has its paper's protocol, every protocol is
complete and cites a paper, an unsupported combination cannot be declared, each
protocol runs end to end at a tiny scale and builds the model, optimizer and
remedies its paper states, and the success summaries equal hand-computed values."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from rnntheory.experiments import protocols as P
from rnntheory.experiments.runspec import build_model, build_optimizer, build_remedies, run_one
from rnntheory.remedies import support


def test_every_remedy_row_has_a_protocol():
    from rnntheory.experiments.remedies_table import REMEDIES

    assert set(P.REMEDY_PROTOCOLS) == set(REMEDIES)
    assert set(P.REMEDY_PROTOCOLS.values()) <= set(P.PROTOCOLS)
    for row in REMEDIES:
        assert P.protocol_for(row).name == P.REMEDY_PROTOCOLS[row]


@pytest.mark.parametrize("name", sorted(P.PROTOCOLS))
def test_protocol_fields_are_complete_and_cite_a_paper(name):
    p = P.PROTOCOLS[name]
    assert p.name == name
    for s in p.sources:
        # authors, a year, a title and a place in the paper
        assert re.fullmatch(r"[A-Z][^\d]+", s.authors) and 1950 <= s.year <= 2030
        assert len(s.title) > 10 and s.where and s.venue
        assert s.cite().startswith(f"{s.authors} {s.year}, *{s.title}*")
    for f in ("criterion", "our_criterion", "target", "schedule"):
        assert getattr(p, f).strip()
    assert p.notes, "every protocol says where its values come from"
    assert p.default_departures, "the default scale says what it reduces"
    for scale in P.SCALES:
        v = p.scale_values(scale)
        assert v["steps"] >= 1 and v["seeds"] >= 1 and v["eval_size"] >= 1
    assert p.scale_values("default")["steps"] <= p.scale_values("full")["steps"] <= max(p.budget, 1)
    # the ≥ 5 seeds the remedies table reports over
    assert p.scale_values("default")["seeds"] >= 5
    # every column the protocol uses is supported by the matrix train consults
    for c in p.columns:
        assert support.entry(p.cell, c).supported
    row = p.row()
    assert row["source"] == p.source.cite() and row["columns"] == list(p.columns)


def _replace(p, **kw):
    fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.init}
    fields.update(kw)
    return P.Protocol(**fields)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"cell": "lstm", "remedies": ("leaky",), "hparams": ()}, ValueError,
         r"leaky_units is not supported for cell 'lstm': Elman-specific"),
        ({"cell": "gru", "route": "esn"}, ValueError, r"esn is not supported for cell 'gru'"),
        ({"cell": "lstm", "init": "identity", "hparams": ()}, ValueError, r"`init` must be one of"),
        ({"remedies": ("dropout",)}, ValueError, r"`remedies` of protocol .* got 'dropout'"),
        ({"sources": ()}, ValueError, r"`sources` of protocol"),
        ({"notes": ()}, ValueError, r"`notes` of protocol .* must say where"),
        ({"criterion": " "}, ValueError, r"`criterion` of protocol"),
        ({"tasks": ("xor",)}, ValueError, r"`tasks` must be one of"),
        ({"default_budget": 0}, ValueError, r"`default_budget` must be >= 1"),
        ({"lr": None}, ValueError, r"`lr` of protocol .* must be > 0"),
        ({"route": "sideways"}, ValueError, r"`route` must be one of"),
    ],
)
def test_an_unsupported_or_incomplete_protocol_cannot_be_declared(kw, exc, match):
    base = P.PROTOCOLS["pascanu2013-msgd-clip"]
    with pytest.raises(exc, match=match):
        _replace(base, **kw)


def test_bad_lookups_and_summaries_raise():
    with pytest.raises(ValueError, match=r"`name` must be one of"):
        P.get_protocol("nope")
    with pytest.raises(ValueError, match=r"`remedy` must be one of"):
        P.protocol_for("dropout")
    with pytest.raises(ValueError, match=r"`scale` must be one of"):
        P.PROTOCOLS["le2015-irnn"].scale_values("huge")
    with pytest.raises(ValueError, match=r"route 'esn'\) is not run through a RunSpec"):
        P.PROTOCOLS["jaeger2001-esn"].spec("mackey_glass", 10, seed=0)
    with pytest.raises(TypeError, match=r"`solved` entries must be bools, got 1"):
        P.success_rate([True, 1])
    with pytest.raises(TypeError, match=r"`solved` must be a sequence"):
        P.success_rate("yes")
    with pytest.raises(ValueError, match=r"`steps entry` must be >= 0"):
        P.median_updates_to_solve([3, -1])


@pytest.mark.parametrize(
    ("solved", "steps", "rate", "median"),
    [
        ([True, True, False, True, False], [250, 750, None, 500, None], 3 / 5, 500.0),
        ([True, True], [100, 200], 1.0, 150.0),
        ([False] * 5, [None] * 5, 0.0, None),
        ([], [], None, None),
        ([True, False, True, True], [1000, None, 10**9, 3], 3 / 4, 1000.0),
    ],
)
def test_success_rate_and_median_updates_by_hand(solved, steps, rate, median):
    assert P.success_rate(solved) == rate
    assert P.median_updates_to_solve(steps) == median


def test_models_and_optimizers_are_the_papers():
    """The spec of each protocol builds the model, optimizer and remedies its paper states."""
    from rnntheory.training import SGD, Adam, GradientClipping, HessianFree, Omega, RMSProp

    def parts(name, task="temporal_order", scale="full"):
        p = P.PROTOCOLS[name]
        sp = p.spec(task, 20, seed=1, scale=scale)
        n_in, n_out = {"temporal_order": (6, 4), "adding": (2, 1), "copy": (10, 9)}[task]
        return sp, build_model(sp, n_in, n_out), build_optimizer(sp), build_remedies(sp)

    sp, m, opt, rem = parts("pascanu2013-msgd-clip-omega")
    assert opt == SGD(0.01) and rem == (GradientClipping(1.0), Omega(2.0))
    # smart tanh: 15 nonzeros per row, spectral radius 0.95
    assert (np.count_nonzero(m.W_hh, axis=1) == 15).all()
    assert np.max(np.abs(np.linalg.eigvals(m.W_hh))) == pytest.approx(0.95, rel=1e-9)
    assert parts("pascanu2013-msgd", scale="default")[2] == SGD(0.1)
    sp, m, opt, rem = parts("le2015-irnn", "adding")
    assert np.array_equal(m.W_hh, np.eye(100)) and m.activation.name == "relu" and opt == SGD(1e-3)
    sp, m, opt, rem = parts("arjovsky2016-orthogonal", "copy")
    assert np.allclose(m.W_hh.T @ m.W_hh, np.eye(80), atol=1e-12) and opt == RMSProp(1e-3)
    sp, m, opt, rem = parts("gers2000-lstm")
    # forget bias 1: the forget block of the summed biases is 1 above the same draw without it
    m0 = build_model(dataclasses.replace(sp, hparams=(("clip", 1.0), ("forget_bias", 0.0))), 6, 4)
    n, b, b0 = 50, m.bias_ih + m.bias_hh, m0.bias_ih + m0.bias_hh
    assert np.allclose(b[n:2 * n] - b0[n:2 * n], 1.0) and np.array_equal(b[:n], b0[:n])
    assert opt == Adam(0.01) and rem == (GradientClipping(1.0),)
    assert parts("chung2014-gru")[2] == RMSProp(1e-3)
    sp, m, opt, rem = parts("bengio2013-leaky-nesterov")
    assert opt == SGD(0.01, momentum=0.9, nesterov=True)
    leak = 1.0 - np.asarray(m.alpha)
    assert leak.min() >= 0.02 and leak.max() <= 0.2
    sp, m, opt, rem = parts("martens-sutskever2011-hf")
    assert isinstance(opt, HessianFree) and opt.mu == pytest.approx(1 / 30) and sp.batch_size == 200
    assert P.PROTOCOLS["martens-sutskever2011-hf"].spec("addition", 100, seed=0).batch_size == 50
    sp, m, opt, rem = parts("williams-peng1990-tbptt")
    assert (rem[0].k2, rem[0].k1) == (10, 5)


@pytest.mark.parametrize("name", sorted(n for n, p in P.PROTOCOLS.items() if p.route in ("train", "hessian_free")))
def test_each_protocol_runs_end_to_end_at_tiny_scale(name):
    """Two updates on each of the protocol's tasks at length 10: the run records two
    steps, a finite loss, and `solved` exactly when its fresh-sequence error is below 1 %."""
    p = P.PROTOCOLS[name]
    for task in p.tasks[:2]:
        sp = p.spec(task, 10, seed=0, steps=2, eval_size=8, eval_every=1, n_hidden=6, batch_size=4)
        m = run_one(sp)
        assert m["steps_done"] == 2 and len(m["curve"]["loss"]) == 2
        assert all(v is not None and np.isfinite(v) for v in m["curve"]["loss"])
        assert 0.0 <= m["final_error"] and m["solved"] == (m["final_error"] < 0.01)
