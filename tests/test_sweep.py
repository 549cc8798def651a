"""Sweeps: RunSpec canonical form and hash, run_one's metrics, grid expansion,
Dask execution, and resuming a sweep killed with SIGKILL."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnntheory.cli import main
from rnntheory.experiments import RunSpec, run_one
from rnntheory.experiments import sweep as sw
from rnntheory.experiments.runspec import build_model
from rnntheory.experiments.store import Store

TINY = {"n_hidden": 6, "steps": 20, "batch_size": 5, "eval_size": 40}


# ----------------------------------------------------------------------------- RunSpec


def test_key_is_sha256_of_the_canonical_json():
    """key() = SHA-256 of the JSON of every field with sorted keys, remedies sorted and the
    remedy's default hyperparameters filled in; built here by hand from the field values."""
    spec = RunSpec("temporal_order", 50, remedies=("omega", "clip"), seed=3)
    expected = {
        "task": "temporal_order", "length": 50, "cell": "rnn", "n_hidden": 50,
        "init": "smart_tanh", "activation": "tanh", "remedies": ["clip", "omega"],
        "optimizer": "sgd", "lr": 0.01, "steps": 1000, "batch_size": 20, "seed": 3,
        "hparams": {"clip": 1.0, "omega": 2.0}, "eval_size": 1000,
    }
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert spec.key() == hashlib.sha256(text.encode()).hexdigest()


_REMEDY_SETS = [(), ("clip",), ("clip", "omega"), ("projection",), ("l2", "clip")]


@given(
    st.sampled_from(_REMEDY_SETS), st.sampled_from(_REMEDY_SETS),
    st.integers(0, 3), st.integers(0, 3), st.sampled_from([10, 20]), st.sampled_from([10, 20]),
)
def test_keys_equal_exactly_when_specs_equal(r1, r2, s1, s2, l1, l2):
    """For specs differing in remedies (any order), seed and length: a.key() == b.key() iff
    a == b iff (set(r1), s1, l1) == (set(r2), s2, l2); and from_dict(as_dict()) is the identity."""
    a = RunSpec("adding", l1, remedies=r1, seed=s1)
    b = RunSpec("adding", l2, remedies=tuple(reversed(r2)), seed=s2)
    same = (set(r1), s1, l1) == (set(r2), s2, l2)
    assert (a == b) is same
    assert (a.key() == b.key()) is same
    assert RunSpec.from_dict(json.loads(json.dumps(a.as_dict()))) == a


def test_gated_default_init_is_pytorch_and_synonyms_share_a_key():
    """cell='lstm' with the default init means the gated 'pytorch' scheme; a '+'-joined
    remedy string equals the tuple; an explicit default hyperparameter equals none given."""
    assert RunSpec("adding", 10, cell="lstm").init == "pytorch"
    assert RunSpec("adding", 10, cell="lstm") == RunSpec("adding", 10, cell="lstm", init="pytorch")
    assert RunSpec("adding", 10, remedies="clip+l2") == RunSpec("adding", 10, remedies=("l2", "clip"))
    assert RunSpec("adding", 10, remedies=("clip",), hparams={"clip": 1}).key() == \
        RunSpec("adding", 10, remedies=("clip",)).key()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"task": "nope"}, ValueError, "`task` must be one of"),
        ({"length": 5}, ValueError, r"`length` must be >= 10, got 5"),
        ({"length": 10.0}, TypeError, "`length` must be an integer"),
        ({"cell": "transformer"}, ValueError, "`cell` must be one of"),
        ({"init": "xavier"}, ValueError, "`init` must be one of"),
        ({"cell": "gru", "activation": "relu"}, ValueError, "must be 'tanh' for cell='gru'"),
        ({"remedies": ("clip", "clip")}, ValueError, "lists a remedy twice"),
        ({"remedies": ("teleport",)}, ValueError, "`remedies entry` must be one of"),
        ({"remedies": ("orthogonal",)}, ValueError, "is an initialisation; pass it as init="),
        ({"remedies": ("tbptt",)}, ValueError, "must give 'tbptt'"),
        ({"remedies": ("leaky",), "cell": "lstm"}, ValueError,
         r"`remedies`: 'leaky' is not supported for cell='lstm': Elman-specific by definition"),
        ({"hparams": {"clip": 1.0}}, ValueError, "belongs to the remedy 'clip'"),
        ({"hparams": {"warp": 1.0}}, ValueError, "`hparams` name must be one of"),
        ({"remedies": ("clip",), "hparams": {"clip": -1.0}}, ValueError, r"hparams\['clip'\]"),
        ({"remedies": ("clip",), "hparams": {"clip": float("nan")}}, ValueError, "must be finite"),
        ({"hparams": {"momentum": 0.5}}, ValueError, "applies to optimizer 'momentum'"),
        ({"optimizer": "lbfgs"}, ValueError, "`optimizer` must be one of"),
        ({"hparams": {"hf_lam": 1.0}}, ValueError, "applies to optimizer 'hf'"),
        ({"remedies": ("leaky",), "cell": "gru"}, ValueError, r"'leaky' is not supported for cell='gru'"),
        ({"lr": 0.0}, ValueError, "`lr` must be > 0"),
        ({"steps": 0}, ValueError, "`steps` must be >= 1"),
        ({"seed": -1}, ValueError, "`seed` must be >= 0"),
    ],
)
def test_runspec_rejects_bad_fields(kwargs, exc, match):
    """Each bad field raises the named error, naming the argument and the value."""
    base = {"task": "temporal_order", "length": 10}
    with pytest.raises(exc, match=match):
        RunSpec(**{**base, **kwargs})


# ----------------------------------------------------------------------------- run_one


def test_run_one_is_deterministic_and_self_consistent():
    """Same spec twice: identical metrics except wall_s. solved ⇔ final_error < 0.01;
    steps_to_solve is the first eval step whose error < 0.01; with steps ≤ 200 the loss
    curve holds every step and grad_norm_median/max are the median/max of its finite norms."""
    spec = RunSpec("temporal_order", 10, remedies=("clip",), **TINY)
    a, b = run_one(spec), run_one(spec)
    a.pop("wall_s")
    b.pop("wall_s")
    assert a == b
    assert a["solved"] == (a["final_error"] < 0.01)
    c = a["curve"]
    hits = [s for s, e in zip(c["eval_steps"], c["eval_error"], strict=True) if e < 0.01]
    assert a["steps_to_solve"] == (hits[0] if hits else None)
    assert c["loss_steps"] == list(range(1, spec.steps + 1))
    g = np.array(c["grad_norm"], dtype=float)
    assert a["grad_norm_median"] == pytest.approx(float(np.median(g)), rel=0, abs=0)
    assert a["grad_norm_max"] == float(g.max())
    assert 0.0 <= a["best_error"] <= 1.0 and 0.0 <= a["final_error"] <= 1.0


def test_run_one_remedies_take_effect():
    """Clipping at 1e-9 clips every step (every gradient norm of an untrained net is > 1e-9),
    so n_clips = steps; spectral projection onto σ_max ≤ 0.5 leaves the final recurrent
    matrix with σ_max ≤ 0.5 (and ρ ≤ σ_max), computed here with numpy's SVD."""
    m = run_one(RunSpec("adding", 10, remedies=("clip",), hparams={"clip": 1e-9}, **TINY))
    assert m["n_clips"] == TINY["steps"]
    m = run_one(RunSpec("adding", 10, remedies=("projection",), hparams={"projection": 0.5},
                        **TINY))
    assert m["gamma_w"] <= 0.5 * (1 + 1e-9)
    assert m["rho"] <= m["gamma_w"] * (1 + 1e-9)


def test_build_model_leaky_and_gated():
    """'leaky' draws per-unit leak rates 1 − α in [leak_low, leak_high]; an LSTM spec builds
    an LSTM of the task's sizes whose run reports no spectral radius (stacked gate blocks)."""
    spec = RunSpec("adding", 10, remedies=("leaky",), hparams={"leak_low": 0.1, "leak_high": 0.3},
                   n_hidden=8)
    model = build_model(spec, 2, 1)
    leak = 1.0 - model.alpha
    assert leak.min() >= 0.1 - 1e-12 and leak.max() <= 0.3 + 1e-12
    lstm = build_model(RunSpec("adding", 10, cell="lstm", n_hidden=3), 2, 1)
    assert type(lstm).__name__ == "LSTM" and lstm.n_in == 2 and lstm.n_out == 1
    m = run_one(RunSpec("adding", 10, cell="gru", n_hidden=3, steps=3, batch_size=2, eval_size=5))
    assert m["rho"] is None and m["steps_done"] == 3


def test_records_built_from_specs():
    """Remedy names and optimizers map to the training records with the spec's values:
    'omega' → Omega(weight=2.0) by default, 'hf' → HessianFree with hf_* hyperparameters."""
    from rnntheory.experiments.runspec import build_optimizer, build_remedies
    from rnntheory.training import GradientClipping, HessianFree, Omega, SpectralProjection

    spec = RunSpec("adding", 10, remedies=("omega", "clip", "projection"),
                   hparams={"clip": 0.5, "projection": 0.9})
    assert set(build_remedies(spec)) == {Omega(weight=2.0), GradientClipping(0.5),
                                         SpectralProjection(0.9)}
    hf = build_optimizer(RunSpec("adding", 10, optimizer="hf",
                                 hparams={"hf_lam": 0.5, "hf_max_cg": 7}))
    assert hf == HessianFree(lam=0.5, max_cg=7)


def test_run_one_rejects_a_non_spec():
    """run_one needs a RunSpec."""
    with pytest.raises(TypeError, match="`spec` must be a RunSpec"):
        run_one({"task": "adding"})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- grids


def test_expand_grid_is_the_cartesian_product():
    """The grid has prod(len(axis)) points in axis order (last fastest); hyperparameters of
    remedies that a point lacks are dropped, so they do not multiply those points."""
    grid = {"task": "adding", "length": [10, 20], "remedies": ["none", "clip", "clip+l2"],
            "seed": [0, 1, 2], "hparams": {"clip": [0.5, 2.0], "l2": 0.1}}
    specs = sw.expand_grid(grid)
    expected = []
    for L, rem, s, c in itertools.product([10, 20], ["none", "clip", "clip+l2"], [0, 1, 2],
                                          [0.5, 2.0]):
        hp = {} if rem == "none" else ({"clip": c} if rem == "clip" else {"clip": c, "l2": 0.1})
        expected.append((L, () if rem == "none" else tuple(sorted(rem.split("+"))), s, hp))
    seen = []
    for L, rem, s, hp in expected:
        if (L, rem, s, hp) not in seen:
            seen.append((L, rem, s, hp))
    assert [(x.length, x.remedies, x.seed, dict(x.hparams)) for x in specs] == seen
    assert len(specs) == 2 * 3 * (1 + 2 + 2)
    assert len({x.key() for x in specs}) == len(specs)


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({"task": "adding"}, "must give 'length'"),
        ({"task": "adding", "length": 10, "colour": "red"}, "must be RunSpec fields"),
        ({"task": "adding", "length": []}, "empty axis"),
        ({"task": "adding", "length": [10, 1]}, r"grid point .*`length` must be >= 2, got 1"),
        ({"task": "adding", "length": 10, "remedies": [1, 2]}, "`grid.remedies` must be"),
        ({"task": "adding", "length": 10, "hparams": 3}, "`grid.hparams` must be a table"),
    ],
)
def test_expand_grid_rejects_bad_grids(grid, match):
    """Bad grids raise ValueError naming the problem (and the grid point)."""
    with pytest.raises(ValueError, match=match):
        sw.expand_grid(grid)


def test_load_config_errors(tmp_path):
    """Missing file, invalid TOML, unknown tables/keys and bad workers are named errors;
    a relative db path is resolved against the TOML file's folder."""
    with pytest.raises(FileNotFoundError, match="sweep file not found"):
        sw.load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    for text, exc, match in [
        ("[grid\n", ValueError, "not valid TOML"),
        ("[grid]\ntask='adding'\nlength=10\n[extra]\n", ValueError, "unknown tables"),
        ("[sweep]\nspeed=1\n[grid]\ntask='adding'\nlength=10\n", ValueError, "unknown \\[sweep\\] keys"),
        ("[sweep]\nworkers=0\n[grid]\ntask='adding'\nlength=10\n", ValueError, "`sweep.workers` must be >= 1"),
        ("[sweep]\nscheduler='gpu'\n[grid]\ntask='adding'\nlength=10\n", ValueError, "`scheduler` must be one of"),
        ("[sweep]\n", ValueError, "has no \\[grid\\] table"),
    ]:
        bad.write_text(text)
        with pytest.raises(exc, match=match):
            sw.load_config(bad)
    bad.write_text("[sweep]\ndb='sub/r.db'\n[grid]\ntask='adding'\nlength=10\n")
    assert sw.load_config(bad).db == tmp_path / "sub" / "r.db"


_ONE = RunSpec("adding", 6, n_hidden=3, steps=2, batch_size=2, eval_size=4)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda d: sw.run_sweep(object(), d / "r.db"), TypeError,
         r"`specs` must be an iterable of RunSpec or a SweepConfig, got object"),
        (lambda d: sw.run_sweep(_ONE, d / "r.db"), TypeError,
         r"`specs` must be an iterable of RunSpec or a SweepConfig, got RunSpec"),
        (lambda d: sw.run_sweep("adding", d / "r.db"), TypeError,
         r"`specs` must be an iterable of RunSpec or a SweepConfig, got str"),
        (lambda d: sw.run_sweep([_ONE, None], d / "r.db"), TypeError,
         r"`specs\[1\]` must be a RunSpec, got NoneType"),
        (lambda d: sw.run_sweep(sw.SweepConfig(3, d / "r.db"), None), TypeError,
         r"`specs\.specs` must be an iterable of RunSpec"),
        (lambda d: sw.run_sweep([_ONE], ""), ValueError, r"`db` must be a non-empty path, got ''"),
        (lambda d: sw.run_sweep([_ONE], 3), TypeError, r"`db` must be a str or os\.PathLike, got int"),
        (lambda d: sw.run_sweep([_ONE], ["r.db"]), TypeError, r"`db` must be a str or os\.PathLike"),
        (lambda d: sw.run_sweep([_ONE], d), ValueError,
         r"`db` '.*' is a folder, not an rnntheory results store"),
        (lambda d: sw.run_sweep([_ONE], d / "r.db", progress="yes"), TypeError,
         r"`progress` must be a bool, got 'yes'"),
        (lambda d: sw.run_sweep([_ONE], d / "r.db", on_result="print"), TypeError,
         r"`on_result` must be a callable or None, got str"),
        (lambda d: sw.load_config(["a.toml"]), TypeError, r"`path` must be a str or os\.PathLike, got list"),
        (lambda d: sw.load_config(b"a.toml"), TypeError, r"`path` must be a str or os\.PathLike, got bytes"),
        (lambda d: sw.load_config(""), ValueError, r"`path` must be a non-empty path, got ''"),
    ],
)
def test_run_sweep_and_load_config_reject_bad_arguments(tmp_path, call, exc, match):
    """Bad ``specs``, ``db``, ``progress``, ``on_result`` and ``path`` raise the error naming
    the argument (a bad spec entry by its index), before any store is created."""
    with pytest.raises(exc, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"[grid]\ntask = '\xff'\n", r"`path` '.*' is not UTF-8 text"),
        (b"sweep = 3\n[grid]\ntask = 'adding'\nlength = 10\n", r"`sweep` must be a table"),
        (b"grid = 3\n", r"`grid` must be a table"),
    ],
)
def test_load_config_rejects_bad_files(tmp_path, content, match):
    """A sweep file that is not UTF-8, or whose [sweep] or [grid] is not a table, is a
    ValueError naming the file and the problem."""
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        sw.load_config(path)


def test_run_sweep_accepts_numpy_bools_and_records_run_one(tmp_path):
    """``progress=np.bool_(False)`` is accepted like False; the recorded run's metrics equal
    an independent run_one of the same spec (timings aside), so the sweep stored that run."""
    res = sw.run_sweep([_ONE], tmp_path / "r.db", scheduler="sync", progress=np.bool_(False))
    assert (res.total, res.done, res.failed) == (1, 1, 0)
    with Store(tmp_path / "r.db", readonly=True) as s:
        (row,) = s.rows()
    ref = run_one(_ONE)
    assert row.key == _ONE.key() and row.status == "done"
    assert (row.metrics["solved"], row.metrics["steps_done"]) == (ref["solved"], ref["steps_done"])
    assert row.metrics["final_error"] == pytest.approx(ref["final_error"], rel=1e-12, abs=0)


# ----------------------------------------------------------------------------- running

CFG = """
[sweep]
db = "{db}"
workers = {workers}
scheduler = "threads"

[grid]
task = "temporal_order"
length = 10
n_hidden = 6
steps = 20
batch_size = 5
eval_size = 40
remedies = ["none", "clip"]
seed = [0, 1, 2, 3]

[grid.hparams]
clip = 0.1
"""


def _raw_rows(db: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT key, status, metrics FROM runs").fetchall()
    finally:
        con.close()


def _metrics_wo_time(rows: list[tuple[str, str, str]]) -> dict[str, dict]:
    out = {}
    for key, _, m in rows:
        d = json.loads(m)
        d.pop("wall_s")
        out[key] = d
    return out


def _count_done(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(con.execute("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sweep_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    """Kill -9 a `rnntheory sweep` subprocess once 1 ≤ done < N rows are recorded; rerun the
    same command. Then: the store is intact (integrity_check ok), holds exactly the N grid
    keys once each, all done; the resumed run skipped exactly the rows present after the kill;
    and every run's metrics (except wall_s) equal those of an uninterrupted sweep."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CFG.format(db="killed.db", workers=1))
    grid = sw.load_config(cfg).specs
    n = len(grid)
    assert n == 8
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "rnntheory.cli", "sweep", str(cfg), "--no-progress"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    caught = None
    for _attempt in range(3):
        for f in tmp_path.glob("killed.db*"):
            f.unlink()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            k = _count_done(db) if db.exists() else 0
            if 1 <= k < n:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                caught = k
                break
            time.sleep(0.005)
        else:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        if caught is not None:
            break
    assert caught is not None, "the sweep never stopped mid-way; could not test the kill"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after_kill = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    con.close()
    assert 1 <= after_kill < n
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) runs in the grid: (\d+) already done, (\d+) done now, 0 failed", r.stdout)
    assert m is not None, r.stdout
    assert (int(m[1]), int(m[2]), int(m[3])) == (n, after_kill, n - after_kill)

    rows = _raw_rows(db)
    keys = [k for k, _, _ in rows]
    assert len(rows) == n and len(set(keys)) == n
    assert set(keys) == {s.key() for s in grid}
    assert all(s == "done" for _, s, _ in rows)

    ref_db = tmp_path / "ref.db"
    res = sw.run_sweep(grid, ref_db, scheduler="threads", workers=2, progress=False)
    assert (res.done, res.failed, res.skipped) == (n, 0, 0)
    assert _metrics_wo_time(rows) == _metrics_wo_time(_raw_rows(ref_db))


def test_failed_runs_are_recorded_reported_and_retried(tmp_path, monkeypatch, capsys):
    """A run that raises is stored with status 'failed' and its error; the command exits 1;
    the next invocation retries only the failed run, which replaces its row (no duplicate)."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CFG.format(db="r.db", workers=1).replace("seed = [0, 1, 2, 3]", "seed = [0, 1]"))
    specs = sw.load_config(cfg).specs
    victim = specs[1]
    real = sw.run_one

    def flaky(spec):
        if spec == victim:
            raise RuntimeError("boom")
        return real(spec)

    monkeypatch.setattr(sw, "run_one", flaky)
    assert main(["sweep", str(cfg), "--scheduler", "sync", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "retried" in err
    rows = {k: (s, m) for k, s, m in _raw_rows(tmp_path / "r.db")}
    assert rows[victim.key()] == ("failed", None)
    with Store(tmp_path / "r.db") as store:
        (bad,) = store.rows(status="failed")
        assert bad.error.startswith("RuntimeError: boom")
    monkeypatch.setattr(sw, "run_one", real)
    calls = []
    res = sw.run_sweep(specs, tmp_path / "r.db", scheduler="sync", progress=False,
                       on_result=lambda s, r: calls.append(s))
    assert calls == [victim] and res.skipped == len(specs) - 1
    rows2 = _raw_rows(tmp_path / "r.db")
    assert len(rows2) == len(specs) and {s for _, s, _ in rows2} == {"done"}


def test_dry_run_lists_runs_and_their_state(tmp_path, capsys):
    """--dry-run prints one line per grid point marked todo/done and runs nothing."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CFG.format(db="r.db", workers=1))
    specs = sw.load_config(cfg).specs
    with Store(tmp_path / "r.db") as store:
        store.record(specs[0], metrics={"solved": False})
    assert main(["sweep", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    marks = [line.split()[1] for line in out[:-1]]
    assert marks == ["done"] + ["todo"] * (len(specs) - 1)
    assert f"{len(specs)} runs, 1 already done" in out[-1]
    assert len(_raw_rows(tmp_path / "r.db")) == 1
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2


def test_verify_row_sweep_resume_passes():
    """The `verify` row for resuming: an interrupted then resumed sweep stores each of its
    4 runs once with the metrics of an uninterrupted sweep (worst = mismatches = 0)."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.experiments import sweep_resume

    row = sweep_resume(CheckContext())
    assert row.passed and row.worst == 0.0 and row.pairs == row.models == 4, row.detail


def test_processes_scheduler_gives_the_sync_results(tmp_path):
    """The default scheduler, a LocalCluster of 2 single-threaded worker processes,
    records every run of a 4-run grid once, each with the metrics (except wall_s)
    of the same run done in the driver without Dask: run_one is a deterministic
    function of its spec, wherever it runs."""
    grid = sw.expand_grid({"task": "adding", "length": 8, "n_hidden": 4, "steps": 5,
                           "batch_size": 3, "eval_size": 10, "seed": [0, 1],
                           "remedies": ["none", "clip"]})
    res = sw.run_sweep(grid, tmp_path / "p.db", scheduler="processes", workers=2, progress=False)
    assert (res.total, res.done, res.failed, res.skipped) == (4, 4, 0, 0)
    ref = sw.run_sweep(grid, tmp_path / "s.db", scheduler="sync", progress=False)
    assert ref.done == 4
    got, want = _raw_rows(tmp_path / "p.db"), _raw_rows(tmp_path / "s.db")
    assert sorted(k for k, _, _ in got) == sorted(s.key() for s in grid)
    assert _metrics_wo_time(got) == _metrics_wo_time(want)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("remedy", ["clip", "clip_value", "tbptt", "l1", "l2", "spectral", "projection", "omega",
                                    "leaky", "hf"])
def test_runspec_follows_the_remedy_matrix(cell, remedy):
    """A sweep accepts exactly the cell × remedy pairs the remedy matrix
    (rnntheory.remedies.support, which train consults too) marks supported, and
    refuses the others with the matrix's reason."""
    from rnntheory.experiments.runspec import _MATRIX_COLUMN, _MATRIX_ROW
    from rnntheory.remedies import support

    column = "hessian_free" if remedy == "hf" else _MATRIX_COLUMN[remedy]
    e = support.entry(_MATRIX_ROW[cell], column)
    kw = {"optimizer": "hf"} if remedy == "hf" else {"remedies": (remedy,)}
    if remedy == "tbptt":
        kw["hparams"] = {"tbptt": 3}
    if e.supported:
        RunSpec("temporal_order", 10, cell=cell, **kw)
    else:
        with pytest.raises(ValueError, match=re.escape(e.reason)):
            RunSpec("temporal_order", 10, cell=cell, **kw)
