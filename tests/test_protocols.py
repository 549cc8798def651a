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
    assert p.scale_values("default")["steps"] <= p.scale_values("full")["steps"] <= (p.budget or np.inf)
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


# ----------------------------------------------------------------------------- the remedies table


def _store_rows(db):
    import json
    import sqlite3

    with sqlite3.connect(db) as con:
        return [(json.loads(s), json.loads(m) if m else None, st, fin) for s, m, st, fin in
                con.execute("SELECT spec, metrics, status, finished FROM runs")]


_TINY = (("steps", 3), ("n_hidden", 4), ("batch_size", 2), ("eval_size", 20), ("eval_every", 1),
         ("washout", 50), ("train", 200), ("horizon", 10))


def test_remedies_under_own_protocols_recount_from_the_store(tmp_path, monkeypatch):
    """Each row's success count and median updates-to-solve equal a recount of the
    store's raw rows of that row's protocol; every row that solves the main length is
    run at the sweep lengths; a second invocation resumes (nothing rerun or duplicated)."""
    from rnntheory.experiments import run_experiment, runspec
    from rnntheory.experiments.remedies_table import Config

    # a threshold every run meets, so that the sweep branch runs at this tiny scale
    monkeypatch.setattr(runspec, "SOLVED_THRESHOLD", 1.01)
    rows = ("none (MSGD)", "GRU", "Ω regularizer", "teacher forcing")
    cfg = Config(length=10, seeds=2, sweep_lengths=(12,), sweep_seeds=1, workers=1, scheduler="sync",
                 overrides=_TINY, rows=rows)
    res = run_experiment("remedies", out=tmp_path, seed=4, config=cfg)
    raw = _store_rows(tmp_path / "remedies.db")
    assert len(raw) == 3 * 2 + 3 * 1 and all(st == "done" for _, _, st, _ in raw)
    for name in ("none (MSGD)", "GRU", "Ω regularizer"):
        p = P.protocol_for(name)
        mine = [(s, m) for s, m, _, _ in raw if s["length"] == 10 and s["optimizer"] == p.optimizer
                and tuple(s["remedies"]) == tuple(sorted(p.remedies)) and s["cell"] == p.spec("adding", 10, seed=0).cell]
        r = res.numbers["rows"][name]
        assert r["runs"] == len(mine) == 2 and sorted(s["seed"] for s, _ in mine) == [4, 5]
        assert r["solved"] == sum(m["final_error"] < 1.01 for _, m in mine) == 2
        steps = sorted(m["steps_to_solve"] for _, m in mine)
        assert r["median_updates_to_solve"] == (steps[0] + steps[1]) / 2
        assert r["lr"] == p.scale_values("default")["lr"] and r["protocol"] == p.name
        sweep = res.numbers["sweep"][name]
        assert sweep["10"]["solved"] == 2 and sweep["12"]["runs"] == 1
    assert "teacher forcing" not in res.numbers["sweep"]
    assert res.numbers["rows"]["teacher forcing"]["runs"] == 2
    assert "| GRU | chung2014-gru (Chung, Gulcehre, Cho & Bengio 2014) |" in res.markdown
    assert (tmp_path / "remedies-success.png").stat().st_size > 1000
    before = {tuple(sorted(s.items(), key=str)).__repr__(): fin for s, _, _, fin in raw}
    again = run_experiment("remedies", out=tmp_path, seed=4, config=cfg)
    raw2 = _store_rows(tmp_path / "remedies.db")
    assert len(raw2) == len(raw)
    assert {tuple(sorted(s.items(), key=str)).__repr__(): fin for s, _, _, fin in raw2} == before
    assert again.numbers["rows"]["GRU"]["final_errors"] == res.numbers["rows"]["GRU"]["final_errors"]


def test_remedies_esn_row_runs_jaegers_protocol():
    """The echo state network row is Jaeger's Mackey–Glass protocol: its per-run NRMSE84
    are mackey_glass_protocol's, and a run succeeds when it is at most 2.8e-4."""
    from rnntheory.experiments.mg17 import mackey_glass_protocol
    from rnntheory.experiments.remedies_table import Config, run

    cfg = Config(seeds=2, overrides=_TINY, rows=("echo state network",), workers=1, scheduler="sync")
    r = run(cfg, None, 3).numbers["rows"]["echo state network"]
    ref = mackey_glass_protocol(4, 2, seed=3, washout=50, train=200, horizon=10, validation=100).per_run
    assert np.allclose(r["final_errors"], ref, rtol=1e-12)
    assert r["solved"] == int(np.sum(ref <= 2.8e-4)) and r["runs"] == 2


def test_remedies_config_refuses_bad_fields():
    from rnntheory.experiments.remedies_table import Config

    with pytest.raises(ValueError, match=r"`protocol` must be one of"):
        Config(protocol="mine")
    with pytest.raises(ValueError, match=r"`overrides` must be one of"):
        Config(overrides=(("lr", 1),))
    with pytest.raises(TypeError, match=r"`overrides` must hold \(name, value\) pairs"):
        Config(overrides=("steps",))
    with pytest.raises(ValueError, match=r"`sweep_lengths` must be >= 10"):
        Config(sweep_lengths=(5,))


# ----------------------------------------------------------------------------- the reproduction subset


@pytest.mark.parametrize(
    ("runs", "workers", "want"),
    [
        ([(1000, 0.01, 2.0), (1000, 0.02, 2.0)], 2, 22.0),  # sum/2 = 17 < the longest run, 22
        ([(1000, 0.01, 2.0)] * 3, 2, 3 * 12.0 / 2),
        ([(3000, 0.05, 10.0)] * 4, 2, 4 * 160.0 / 2),
        ([(10, 1.0, 0.0), (1, 1.0, 0.0)], 4, 10.0),  # never below the longest run
        ([], 2, 0.0),
    ],
)
def test_estimate_seconds_by_hand(runs, workers, want):
    from rnntheory.experiments.reproduce import estimate_seconds

    assert estimate_seconds(runs, workers) == pytest.approx(want, rel=1e-15)


def _line(item, length, seed, solved, steps_to_solve, err):
    from rnntheory.experiments.reproduce import SUBSET

    it = next(i for i in SUBSET if i.key == item)
    return {"item": item, "protocol": it.protocol, "task": it.task, "length": length, "seed": seed, "steps": 3000,
            "lr": 0.1, "solved": solved, "steps_to_solve": steps_to_solve, "final_error": err, "final_loss": 0.1,
            "wall_s": 1.0}


def test_summaries_against_the_paper_by_hand():
    """4/5 solved (updates 100, 200, 300, 400) against the paper's 5/5 is a rate 0.8, a
    median of 250 updates, a difference of −0.2 and 'does not match'; 5/5 matches; a row
    without runs is 'not run yet'; a row whose paper gives no rate says so."""
    from rnntheory.experiments.reproduce import _csv_text as export_csv
    from rnntheory.experiments.reproduce import _summarise as summarise
    from rnntheory.experiments.reproduce import read_csv, render_page

    key = "temporal order, MSGD + clipping + Ω"
    lines = [_line(key, 50, s, s != 2, None if s == 2 else 100 * (s + 1) - (100 if s > 2 else 0), 0.0 if s != 2
                   else 0.3) for s in range(5)]
    lines += [_line(key, 100, s, True, 1000, 0.0) for s in range(5)]
    lines += [_line("adding, GRU", 150, 0, True, 250, 0.001)]
    rows = {(r["item"], r["length"]): r for r in summarise(lines)}
    r = rows[(key, 50)]
    assert (r["runs"], r["solved"], r["success_rate"], r["median_updates_to_solve"]) == (5, 4, 0.8, 250.0)
    assert r["difference"] == pytest.approx(-0.2) and r["verdict"] == "does not match the paper"
    assert r["median_final_error"] == 0.0
    assert rows[(key, 100)]["verdict"] == "matches the paper's rate" and rows[(key, 100)]["difference"] == 0.0
    assert rows[(key, 150)]["verdict"] == "not run yet" and rows[(key, 150)]["runs"] == 0
    assert rows[("adding, GRU", 150)]["verdict"] == "no number in the paper to compare"
    # the page is generated from the CSV: the round trip gives the same page
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.csv"
        path.write_text(export_csv(lines), encoding="utf-8")
        back = read_csv(path)
    assert render_page(back) == render_page(lines)
    page = render_page(lines)
    assert "**3 of 16 rows have been run** (11 runs in all)" in page
    assert "| 4/5 solved; median updates to solve 250; median final error 0 | -0.20 | does not match" in page
    with pytest.raises(ValueError, match=r"must be a reproduce CSV with columns"):
        bad = Path(tempfile.mkdtemp()) / "bad.csv"
        bad.write_text("a,b\n1,2\n", encoding="utf-8")
        read_csv(bad)


def test_reproduce_resumes_without_losing_or_duplicating(tmp_path, capsys):
    """Half the runs are in the store (an interrupted run); the experiment runs only the
    others, leaves the recorded ones untouched, stores each run once, prints its estimate
    first, and its CSV recounts the store."""
    import sqlite3

    from rnntheory.experiments import run_experiment
    from rnntheory.experiments.registry import run_specs
    from rnntheory.experiments.reproduce import Config, read_csv
    from rnntheory.experiments.reproduce import _plan as plan

    tiny = (("steps", 2), ("n_hidden", 4), ("batch_size", 2), ("eval_size", 8), ("eval_every", 1))
    cfg = Config(items=("temporal order, MSGD + clipping", "adding, GRU", "addition, Hessian-free"), seeds=2,
                 lengths=(100, 150), overrides=tiny, workers=1, scheduler="sync")
    specs = [sp for *_, sp in plan(cfg, 7)]
    assert len(specs) == 2 * 2 + 2 + 2 and len({sp.key() for sp in specs}) == len(specs)
    run_specs(specs[::2], tmp_path, "reproduce", workers=1, scheduler="sync")  # interrupted half-way
    with sqlite3.connect(tmp_path / "reproduce.db") as con:
        first = dict(con.execute("SELECT key, finished FROM runs").fetchall())
    assert len(first) == 4
    res = run_experiment("reproduce", out=tmp_path, seed=7, config=cfg)
    err = capsys.readouterr().err
    assert re.search(r"reproduce: 8 runs, estimated \d+\.\d\d h on 1 worker", err)
    assert err.index("estimated") < err.index("sweep: 8 runs, 4 already done, 4 to run")
    with sqlite3.connect(tmp_path / "reproduce.db") as con:
        after = dict(con.execute("SELECT key, finished FROM runs").fetchall())
        n_rows = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert n_rows == len(after) == 8 and set(after) == {sp.key() for sp in specs}
    assert all(after[k] == v for k, v in first.items())  # the recorded runs were not rerun
    lines = read_csv(tmp_path / "reproduce.csv")
    assert len(lines) == 8 == res.numbers["runs"]
    got = {r["item"]: r for r in res.numbers["rows"] if r["runs"] and r["length"] == 150}
    assert got["adding, GRU"]["solved"] == sum(ln["solved"] for ln in lines if ln["item"] == "adding, GRU")
    # the whole store exports to the same lines, and the page command writes the page of the CSV
    from rnntheory.experiments.reproduce import _csv_text as export_csv
    from rnntheory.experiments.reproduce import export_store, main, render_page

    exported = tmp_path / "exported.csv"
    exported.write_text(export_csv(export_store(tmp_path / "reproduce.db", seed=7, overrides=tiny)), encoding="utf-8")
    assert read_csv(exported) == lines
    assert main(["page", str(tmp_path / "reproduce.csv"), str(tmp_path / "page.md")]) == 0
    assert (tmp_path / "page.md").read_text(encoding="utf-8") == render_page(lines)
    assert main(["export", str(tmp_path / "reproduce.db"), str(tmp_path / "all.csv")]) == 0
    assert read_csv(tmp_path / "all.csv") == []  # the store holds no run of the untouched subset
    assert main([]) == 2
    # a rerun changes nothing
    again = run_experiment("reproduce", out=tmp_path, seed=7, config=cfg)
    assert again.numbers["rows"] == res.numbers["rows"]
    with sqlite3.connect(tmp_path / "reproduce.db") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 8


def test_reproduce_config_refuses_bad_fields():
    from rnntheory.experiments.reproduce import Config, Item

    with pytest.raises(ValueError, match=r"`items` must be one of"):
        Config(items=("copy, everything",))
    with pytest.raises(ValueError, match=r"`items` must name at least one row"):
        Config(items=())
    with pytest.raises(TypeError, match=r"`probe` must be True or False"):
        Config(probe=1)
    with pytest.raises(ValueError, match=r"route 'esn'"):
        Item("esn", "jaeger2001-esn", "mackey_glass", (10,), 1, 1, None, "claim", None)
    with pytest.raises(ValueError, match=r"`target_rate` must be <= 1"):
        Item("x", "pascanu2013-msgd", "temporal_order", (50,), 1, 1, None, "claim", 1.5)


def test_cli_protocol_and_scheduler_options_build_the_configuration(capsys, tmp_path):
    """`--protocol common` gives the former one-SGD table's configuration, `--scheduler`
    the address the sweep connects to; an option an experiment lacks is refused by name."""
    import argparse

    from rnntheory.cli import main
    from rnntheory.experiments.registry import _cli_config
    from rnntheory.experiments.remedies_table import Config

    ns = argparse.Namespace(name="remedies", full=False, protocol="common", scheduler=None)
    assert _cli_config(ns) == Config(protocol="common")
    ns = argparse.Namespace(name="reproduce", full=True, protocol=None, scheduler="tcp://10.0.0.1:8786")
    cfg = _cli_config(ns)
    assert cfg.scheduler == "tcp://10.0.0.1:8786" and cfg.scale == "full"
    assert _cli_config(argparse.Namespace(name="remedies", full=False, protocol=None, scheduler=None)) is None
    assert main(["experiment", "init-spectra", "--protocol", "common", "--out", str(tmp_path)]) == 2
    assert "`--protocol` does not apply to the experiment 'init-spectra'" in capsys.readouterr().err


def test_the_committed_reproductions_page_is_generated_from_the_committed_csv():
    """docs/guides/reproductions.md is render_page of docs/results/reproduce.csv (never
    hand-typed numbers); every run in the CSV is a run the subset plans."""
    from pathlib import Path

    from rnntheory.experiments.reproduce import Config, read_csv, render_page
    from rnntheory.experiments.reproduce import _plan as plan

    root = Path(__file__).resolve().parents[1]
    lines = read_csv(root / "docs" / "results" / "reproduce.csv")
    fig = root / "docs" / "results" / "reproduce-success.png"
    want = render_page(lines, figure="../results/reproduce-success.png" if fig.is_file() else None)
    assert (root / "docs" / "guides" / "reproductions.md").read_text(encoding="utf-8") == want
    planned = {(it.key, L, s, sp.steps) for it, L, s, sp in plan(Config(), 0)}
    assert {(ln["item"], ln["length"], ln["seed"], ln["steps"]) for ln in lines} <= planned


def test_updates_to_solve_of_a_run_by_hand():
    """Unsolved: none; solved with an evaluation below 1 %: that evaluation's step; solved
    on the final test only (its evaluations never below 1 %): its whole budget."""
    from rnntheory.experiments.reproduce import solve_steps

    assert solve_steps({"solved": False, "steps_to_solve": 250, "steps_done": 3000}) is None
    assert solve_steps({"solved": True, "steps_to_solve": 250, "steps_done": 3000}) == 250
    assert solve_steps({"solved": True, "steps_to_solve": None, "steps_done": 3000}) == 3000
    # the Ω row of the first slice: 1200, 2250, 2700 from evaluations, one solved only at the end
    runs = [{"solved": True, "steps_to_solve": None, "steps_done": 3000},
            *({"solved": True, "steps_to_solve": s, "steps_done": 3000} for s in (1200, 2250, 2700)),
            {"solved": False, "steps_to_solve": None, "steps_done": 3000}]
    assert P.median_updates_to_solve([solve_steps(m) for m in runs]) == (2250 + 2700) / 2


def test_common_protocol_esn_row_runs_on_a_sparse_reservoir():
    """The common table's ESN row on a reservoir large enough to be stored sparse (it
    failed with a TypeError when the reservoir became a CSR array): its profile at lag 0
    is 0 and its error is the fraction of wrong sequences of a ridge readout."""
    from rnntheory.esn import random_esn
    from rnntheory.experiments.remedies_table import Config, run

    esn = random_esn(400, 6, 4, spectral_radius=0.95, connectivity=15 / 400, input_scaling=1.0, seed=1)
    assert hasattr(esn.W, "toarray")  # this size is stored sparse
    cfg = Config(protocol="common", length=10, n_hidden=4, steps=2, batch_size=2, eval_size=20,
                 esn_n_hidden=400, rows=("echo state network",))
    r = run(cfg, None, 1).numbers["rows"]["echo state network"]
    assert r["status"] == "ok" and r["profile"][0] == 0.0 and 0.0 <= r["final_error"] <= 1.0
