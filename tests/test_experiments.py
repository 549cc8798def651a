"""The experiments registry (``rnntheory experiment NAME``) at tiny configurations.

Every number an experiment reports is recomputed here by an independent route:
NumPy's eigenvalue and singular-value routines for the spectra, explicit
products of loop-built step Jacobians (``tests/naive.py``) for the gradient
norms, the analytic memoryless baselines, and the raw rows of the SQLite store
for the success counts.
"""

from __future__ import annotations

import json
import math
import sqlite3

import naive
import numpy as np
import pytest
from matplotlib.image import imread

from rnntheory.cli import main
from rnntheory.experiments import EXPERIMENT_NAMES, get_experiment, list_experiments, run_experiment
from rnntheory.experiments.runspec import RunSpec, build_model, build_optimizer, build_remedies


def _png_ok(path):
    """The file is a PNG matplotlib can read, with more than one colour in it."""
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    flat = img.reshape(-1, img.shape[2])
    assert np.unique(flat[:, :3].round(3), axis=0).shape[0] > 5, f"{path} looks blank"


# ----------------------------------------------------------------------------- registry / CLI


def test_list_names_all_seven(capsys):
    """``rnntheory experiment --list`` prints each of the seven experiments once (the
    reproduction subset, ``reproduce``, is the seventh)."""
    rc = main(["experiment", "--list"])
    out = capsys.readouterr().out
    assert rc == 0
    want = ["pascanu-tasks", "init-spectra", "bound-tightness", "copy-adding", "mg17-esn", "remedies", "reproduce"]
    for name in want:
        assert sum(line.split()[0] == name for line in out.splitlines() if line.strip()) == 1
    assert sorted(EXPERIMENT_NAMES) == sorted(want)
    assert [n for n, _ in list_experiments()] == list(EXPERIMENT_NAMES)
    for name in want:  # each module loads and names itself
        assert get_experiment(name).name == name


def test_cli_unknown_name_exits_2(capsys):
    assert main(["experiment", "no-such-thing"]) == 2
    assert "unknown experiment 'no-such-thing'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: run_experiment("nope"), ValueError, "`name` must be one of"),
        (lambda: run_experiment("init-spectra", seed=-1), ValueError, "`seed` must be >= 0"),
        (lambda: run_experiment("init-spectra", config=object()), TypeError, "`config` must be a"),
        # found by tests/test_fuzz.py: Path(3) raised an unnamed TypeError, and a
        # truthy non-bool `full` silently ran the paper-scale configuration
        (lambda: run_experiment("init-spectra", out=3), TypeError, "`out` must be a folder"),
        (lambda: run_experiment("init-spectra", full="no"), TypeError, "`full` must be True or False"),
        (lambda: get_experiment("init-spectra").default_config(full=1), TypeError,
         "`full` must be True or False"),
        (lambda: get_experiment("init-spectra").config_type(n_hidden=1), ValueError,
         "`n_hidden` must be >= 2"),
        (lambda: get_experiment("init-spectra").config_type(schemes=("relu",)), ValueError,
         "`schemes` must be one of"),
        (lambda: get_experiment("bound-tightness").config_type(models=("x",)), ValueError,
         "`models` must be one of"),
        (lambda: get_experiment("copy-adding").config_type(lr=0.0), ValueError, "`lr` must be > 0"),
        (lambda: get_experiment("mg17-esn").config_type(runs=0), ValueError, "`runs` must be >= 1"),
        (lambda: get_experiment("pascanu-tasks").config_type(methods=("Adam",)), ValueError,
         "`methods` must be one of"),
        (lambda: get_experiment("remedies").config_type(rows=("magic",)), ValueError,
         "`rows` must be one of"),
        # found by tests/test_fuzz.py: a non-sequence was iterated ("'int' object is
        # not iterable"), a NaN input scale was kept, and run() read attributes of
        # whatever it was given (AttributeError) or passed a bad seed to NumPy
        (lambda: get_experiment("bound-tightness").config_type(models=3), TypeError,
         "`models` must be a tuple, got 3"),
        (lambda: get_experiment("bound-tightness").config_type(input_scale=float("nan")), ValueError,
         "`input_scale` must be finite"),
        (lambda: get_experiment("copy-adding").config_type(copy_lengths=None), TypeError,
         "`copy_lengths` must be a tuple, got None"),
        (lambda: get_experiment("init-spectra").config_type(schemes="smart_tanh"), TypeError,
         "`schemes` must be a tuple"),
        (lambda: get_experiment("pascanu-tasks").config_type(lengths=50), TypeError,
         "`lengths` must be a tuple, got 50"),
        (lambda: get_experiment("remedies").config_type(rows=1.5), TypeError, "`rows` must be a tuple"),
        (lambda: RunSpec.from_dict({}), ValueError, r"`data` lacks the RunSpec fields \['task', 'length'\]"),
        (lambda: RunSpec.from_dict(["adding", 6]), TypeError, "`data` must be a mapping of RunSpec fields"),
        (lambda: RunSpec.from_dict({"task": "adding", "length": 6, 1: 2}), ValueError,
         r"`data` has keys that are not RunSpec fields: \['1'\]"),
        (lambda: RunSpec("adding", 6).hp(["clip"]), TypeError, "`name` must be a hyperparameter name"),
        (lambda: build_model("adding", 2, 1), TypeError, "`spec` must be a RunSpec, got str"),
        (lambda: build_optimizer(None), TypeError, "`spec` must be a RunSpec, got NoneType"),
        (lambda: build_remedies({"remedies": ()}), TypeError, "`spec` must be a RunSpec, got dict"),
        (lambda: get_experiment("copy-adding").config_type(scheduler=3), TypeError,
         "`scheduler` must be a str"),
        (lambda: get_experiment("pascanu-tasks").config_type(scheduler=None), TypeError,
         "`scheduler` must be a str"),
        (lambda: get_experiment("init-spectra").runner("cfg", None, 0), TypeError,
         "`config` must be a rnntheory.experiments.init_spectra.Config, got str"),
        (lambda: get_experiment("init-spectra").runner(get_experiment("init-spectra").config_type(), None, -1),
         ValueError, "`seed` must be >= 0, got -1"),
        (lambda: get_experiment("mg17-esn").runner(get_experiment("mg17-esn").config_type(), "out", 0),
         TypeError, "`out` must be a pathlib.Path or None, got 'out'"),
    ],
)
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bound_tightness_input_scale_minus_zero_is_zero():
    """-0.0 is a valid scale (NumPy's normal() refused it, found by tests/test_fuzz.py):
    the run is the same as with 0.0, inputs all zero."""
    from rnntheory.experiments.bound_tightness import Config, run

    kw = {"T": 4, "n_hidden": 3, "models": ("elman-smart_tanh",), "figures": "none"}
    a = run(Config(input_scale=-0.0, **kw), None, 0).numbers
    b = run(Config(input_scale=0.0, **kw), None, 0).numbers
    assert a == b


# ----------------------------------------------------------------------------- init-spectra


def test_init_spectra_matches_numpy_linalg(tmp_path, capsys):
    """ρ = max|eig(W)| and σ_max = largest singular value (numpy.linalg.svd) for the
    same seeds; 'vanishing guaranteed' is exactly σ_max < 1/γ_h with γ_h = 1 (tanh),
    1/4 (sigmoid); and ρ ≤ σ_max for every matrix."""
    from rnntheory import ElmanRNN

    rc = main(["experiment", "init-spectra", "--out", str(tmp_path), "--seed", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    per = data["numbers"]["schemes"]
    gh = {"sigmoid": 0.25, "basic_tanh": 1.0, "smart_tanh": 1.0}
    for scheme, d in per.items():
        assert d["seeds"] == [3, 4, 5, 6, 7]
        for j, s in enumerate(d["seeds"]):
            W = ElmanRNN.init(1, 50, 1, scheme=scheme, seed=s).W_hh
            rho = np.max(np.abs(np.linalg.eigvals(W)))
            smax = np.linalg.svd(W, compute_uv=False)[0]
            assert d["rho"]["values"][j] == pytest.approx(rho, rel=1e-10)
            assert d["sigma_max"]["values"][j] == pytest.approx(smax, rel=1e-10)
            assert d["vanishing_guaranteed"][j] == bool(smax < 1 / gh[scheme])
            assert rho <= smax * (1 + 1e-12)
    assert per["smart_tanh"]["rho"]["min"] == pytest.approx(0.95, abs=1e-12)
    assert (tmp_path / "init-spectra.md").read_text().count("| smart_tanh |") == 1
    _png_ok(tmp_path / "init-spectra-eigenvalues.png")


def test_eigenvalue_figure_draws_the_spectrum():
    """The figure's scatter holds exactly the eigenvalues and its dashed circle has
    radius σ_max (SVD)."""
    from rnntheory.plotting import eigenvalues_unit_circle

    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(5, 5)) / 3 for _ in range(2)]
    fig = eigenvalues_unit_circle({"a": Ws})
    ax = fig.axes[0]
    pts = next(c for c in ax.collections if c.get_gid() == "eigenvalues").get_offsets()
    eig = np.concatenate([np.linalg.eigvals(W) for W in Ws])
    got = np.sort_complex(np.asarray(pts)[:, 0] + 1j * np.asarray(pts)[:, 1])
    assert np.allclose(got, np.sort_complex(eig), atol=1e-12)
    circ = {ln.get_gid(): ln for ln in ax.lines}["sigma_max"]
    r = np.hypot(*circ.get_data())
    assert np.allclose(r, max(np.linalg.svd(W, compute_uv=False)[0] for W in Ws))
    with pytest.raises(ValueError, match="must hold square matrices"):
        eigenvalues_unit_circle({"b": [np.ones((2, 3))]})


# ----------------------------------------------------------------------------- bound-tightness


def test_bound_tightness_observed_below_eq12_on_every_pair(tmp_path):
    """For each Elman model: ln‖∂h_t/∂h_k‖ from explicit products of loop-built
    Jacobians (SVD) is ≤ (t−k)·ln(σ_max γ_h) on every pair, the experiment says the
    bound holds, and its observed rate is ln‖∂h_T/∂h_0‖/T of the explicit product."""
    from rnntheory.experiments.bound_tightness import Config, build_model

    cfg = Config(T=12, n_hidden=5, models=("elman-smart_tanh", "elman-gaussian-1.5", "gru"),
                 figures="first")
    res = run_experiment("bound-tightness", out=tmp_path, seed=4, config=cfg)
    x = np.random.default_rng(4).normal(0.0, 1.0, (12, 2))
    for i, label in enumerate(cfg.models):
        e = res.numbers["models"][label]
        assert all(b["holds"] for b in e["bounds"].values())
        if label == "gru":
            assert e["eq12_rate"] is None
            continue
        m = build_model(label, 2, 5, 4 + i)
        L = naive.log_norms_svd(naive.jacobians(m, x))
        rate = math.log(np.linalg.svd(m.W_hh, compute_uv=False)[0] * 1.0)  # tanh: γ_h = 1
        t, k = np.tril_indices(13, -1)
        assert np.all(L[t, k] <= (t - k) * rate + 1e-9)
        assert e["eq12_rate"] == pytest.approx(rate, rel=1e-10)
        assert e["observed_rate"] == pytest.approx(L[12, 0] / 12, rel=1e-8, abs=1e-12)
        assert e["bounds"]["eq12"]["pairs"] == t.size
    _png_ok(tmp_path / "bound-tightness-elman-smart_tanh-heatmap.png")
    _png_ok(tmp_path / "bound-tightness-elman-smart_tanh-lag.png")
    assert "| elman-gaussian-1.5 | eq12 | yes |" in (tmp_path / "bound-tightness.md").read_text()


# ----------------------------------------------------------------------------- copy-adding


def test_copy_adding_baselines_and_store(tmp_path):
    """The memoryless baselines: copy 10 ln 8 / (T + 20) (measured exactly by the
    predictor 'blank, then uniform'), adding Var(U₁ + U₂) = 1/6 (measured within
    4 standard errors, Var((S−1)²) = 1/15 − 1/36); each run is one row of the store,
    and each verdict follows from loss / baseline."""
    from rnntheory.experiments.copy_adding import Config

    cfg = Config(copy_lengths=(5,), adding_lengths=(8,), models=("lstm", "rnn-orthogonal"),
                 n_hidden=3, steps=2, batch_size=2, eval_size=400, workers=1, scheduler="sync")
    res = run_experiment("copy-adding", out=tmp_path, seed=1, config=cfg)
    b = res.numbers["baselines"]
    assert b["copy-5"]["analytic"] == pytest.approx(10 * math.log(8) / 25, rel=1e-14)
    assert b["copy-5"]["measured"] == pytest.approx(10 * math.log(8) / 25, rel=1e-9)
    assert b["adding-8"]["analytic"] == pytest.approx(1 / 6, rel=1e-14)
    se = math.sqrt((1 / 15 - 1 / 36) / 400)
    assert abs(b["adding-8"]["measured"] - 1 / 6) < 4 * se
    with sqlite3.connect(tmp_path / "copy-adding.db") as con:
        rows = con.execute("SELECT spec, metrics FROM runs WHERE status = 'done'").fetchall()
    assert len(rows) == 4
    for r in res.numbers["runs"]:
        base = b[f"{r['task']}-{r['T']}"]["analytic"]
        mine = [json.loads(m)["final_loss"] for s, m in rows
                if json.loads(s)["task"] == r["task"] and json.loads(s)["cell"] == ("lstm" if r["model"] == "lstm" else "rnn")]
        assert r["losses"] == pytest.approx(mine)
        ratio = float(np.median(mine)) / base
        assert r["loss_over_baseline"] == pytest.approx(ratio)
        want = ("beats" if ratio < 0.8 else "at baseline" if 0.9 <= ratio <= 1.1
                else "worse" if ratio > 1.1 else "between")
        assert r["verdict"] == want
    _png_ok(tmp_path / "copy-adding-losses.png")


# ----------------------------------------------------------------------------- mg17-esn


def test_mg17_pools_the_runs(tmp_path):
    """NRMSE84 = sqrt(mean_r NRMSE_r²) (pooling squared errors with one variance), and
    'below Jaeger' is the comparison with 2.8e-4."""
    from rnntheory.experiments.mg17 import Config

    cfg = Config(n_hidden=30, runs=3, washout=50, train=200, horizon=10)
    res = run_experiment("mg17-esn", out=tmp_path, config=cfg)
    n = res.numbers
    per = np.asarray(n["per_run_nrmse"])
    assert per.size == 3
    assert n["nrmse84"] == pytest.approx(math.sqrt(np.mean(per**2)), rel=1e-12)
    assert n["below_jaeger"] == (n["nrmse84"] < 2.8e-4)
    assert n["runs_below_jaeger"] == int(np.sum(per < 2.8e-4))
    _png_ok(tmp_path / "mg17-esn-runs.png")
    assert "NRMSE84" in (tmp_path / "mg17-esn.md").read_text()


# ----------------------------------------------------------------------------- pascanu-tasks


def test_pascanu_counts_match_the_store(tmp_path):
    """Success counts and updates-to-solve equal a recount of the store's raw rows."""
    from rnntheory.experiments.pascanu_tasks import Config

    cfg = Config(lengths=(10,), seeds=2, steps=3, n_hidden=4, eval_size=20, eval_every=1,
                 batch_size=2, workers=1, scheduler="sync")
    res = run_experiment("pascanu-tasks", out=tmp_path, config=cfg)
    with sqlite3.connect(tmp_path / "pascanu-tasks.db") as con:
        rows = [(json.loads(s), json.loads(m)) for s, m in
                con.execute("SELECT spec, metrics FROM runs WHERE status = 'done'")]
    assert len(rows) == 3 * 2
    by_rem = {(): "MSGD", ("clip",): "MSGD+clip", ("clip", "omega"): "MSGD+clip+Ω"}
    for c in res.numbers["cells"]:
        mine = [m for s, m in rows if by_rem[tuple(s["remedies"])] == c["method"]]
        assert c["runs"] == len(mine) == 2
        assert c["solved"] == sum(m["final_error"] < 0.01 for m in mine)
        assert sorted(c["final_errors"]) == sorted(m["final_error"] for m in mine)
    assert res.numbers["target"] is None  # length 50 was not run
    _png_ok(tmp_path / "pascanu-tasks-success.png")
    _png_ok(tmp_path / "pascanu-tasks-curves.png")
    # a second invocation resumes from the store: nothing is rerun, same numbers
    again = run_experiment("pascanu-tasks", out=tmp_path, config=cfg)
    assert again.numbers == res.numbers


def test_pascanu_tasks_runs_the_registry_protocols():
    """``pascanu-tasks --full`` is the protocol registry's full scale, run for run: each
    method's spec equals its protocol's full-scale spec (the same store key, so a store
    of either resumes the other); at the default scale only the budget, the test set
    and the evaluation interval differ from the protocol's default; the report lists the
    registry's departures and this configuration's own."""
    from rnntheory.experiments import pascanu_tasks
    from rnntheory.experiments.protocols import get_protocol

    full = pascanu_tasks.Config.full()
    for method, key in pascanu_tasks.PROTOCOLS.items():
        p = get_protocol(key)
        assert pascanu_tasks.METHODS[method] == p.remedies
        assert set(full.tasks) == set(p.tasks) and full.lengths == p.lengths and full.seeds == p.seeds
        for task in ("temporal_order", "multiplication"):
            got = pascanu_tasks._spec(full, task, 150, method, 3)
            assert got == p.spec(task, 150, seed=3, scale="full", eval_every=5000)
            assert got.key() == p.spec(task, 150, seed=3, scale="full", eval_every=5000).key()
        small = pascanu_tasks._spec(pascanu_tasks.Config(), "temporal_order", 50, method, 0)
        ref = p.spec("temporal_order", 50, seed=0)
        differ = {f for f in ("steps", "eval_size", "hparams", "lr", "init", "optimizer", "n_hidden",
                              "batch_size", "remedies", "cell") if getattr(small, f) != getattr(ref, f)}
        assert differ <= {"steps", "eval_size", "hparams"}, differ
        assert {k: v for k, v in small.hparams if k != "eval_every"} == \
            {k: v for k, v in ref.hparams if k != "eval_every"}
    lines = pascanu_tasks._departures(pascanu_tasks.Config(lr=0.05, clip=0.5))
    assert "lr 0.05 (the paper: 0.01)" in lines and "clip 0.5 (the protocol: 1)" in lines
    assert any("one nominal length" in d or "fixed length" in d.lower() for d in lines), lines


# ----------------------------------------------------------------------------- remedies


def test_remedies_profiles_and_missing_remedy(tmp_path, monkeypatch):
    """Under the former common protocol (no longer the default: each remedy now runs
    under its own paper's protocol, see tests/test_protocols.py): the ESN row's profile equals ln‖∂h_τ/∂h_0‖ from explicit products of the
    reservoir's step Jacobians; a remedy whose implementation is missing is reported
    'not available' with no numbers."""
    from rnntheory import ElmanRNN, training
    from rnntheory.esn import random_esn
    from rnntheory.experiments.remedies_table import Config
    from rnntheory.tasks import make_task

    monkeypatch.setattr(training, "HessianFree", None)
    cfg = Config(protocol="common", length=10, n_hidden=4, steps=3, batch_size=2, eval_size=30,
                 esn_n_hidden=12, rows=("none (MSGD)", "echo state network", "Hessian-free", "teacher forcing"))
    res = run_experiment("remedies", out=tmp_path, seed=2, config=cfg)
    rows = res.numbers["rows"]
    assert rows["Hessian-free"]["status"] == "not available"
    assert "final_error" not in rows["Hessian-free"] and "profile" not in rows["Hessian-free"]
    assert "| Hessian-free |" in res.markdown and "not available" in res.markdown
    esn = random_esn(12, 6, 4, spectral_radius=0.95, connectivity=1.0, input_scaling=1.0, seed=2)
    test = make_task("temporal_order", 10).sample(30, 2 + 104729)
    Js = naive.jacobians(ElmanRNN(esn.W, esn.W_in, esn.b), test.x[:, 0])
    L = naive.log_norms_svd(Js)
    assert np.allclose(rows["echo state network"]["profile"], L[:, 0], rtol=1e-9, atol=1e-12)
    for name in ("none (MSGD)", "echo state network", "teacher forcing"):
        r = rows[name]
        assert r["status"] == "ok" and 0.0 <= r["final_error"] and r["profile"][0] == 0.0
    assert rows["teacher forcing"]["task"].startswith("mackey_glass")
    _png_ok(tmp_path / "remedies-profiles.png")


def test_verify_rows():
    """The verify rows: ρ ≤ σ_max on every drawn matrix (worst = max ln(ρ/σ_max) ≤ 0,
    recomputed here), and the memoryless baselines equal their analytic constants."""
    from rnntheory import ElmanRNN
    from rnntheory.checks import CheckContext
    from rnntheory.checks.experiments import init_spectra, memoryless_baselines

    r1 = init_spectra(CheckContext())
    worst = max(
        np.log(np.max(np.abs(np.linalg.eigvals(W))) / np.linalg.svd(W, compute_uv=False)[0])
        for W in (ElmanRNN.init(1, 50, 1, scheme=s, seed=k).W_hh
                  for s in ("sigmoid", "basic_tanh", "smart_tanh") for k in range(5))
    )
    assert r1.passed and r1.models == 15 and r1.worst == pytest.approx(worst, rel=1e-12)
    r2 = memoryless_baselines(CheckContext())
    assert r2.passed and r2.worst < 1e-9


def test_experiment_configs_old_size_names_warn_and_agree():
    """Hidden sizes are `n_hidden`: the ESN experiments' former `n_units`
    (mg17) and `esn_units` (remedies) still build the same configuration for
    one release, with a warning; the runner sees the new name (the reservoir
    it samples has that many units)."""
    from rnntheory.experiments import mg17, remedies_table

    with pytest.warns(DeprecationWarning, match=r"`esn_units` is deprecated.*use `esn_n_hidden`"):
        old = remedies_table.Config(esn_units=12)
    assert old == remedies_table.Config(esn_n_hidden=12) and old.esn_n_hidden == 12
    with pytest.warns(DeprecationWarning, match=r"`Config.esn_units` is deprecated"):
        assert old.esn_units == 12
    with pytest.warns(DeprecationWarning, match=r"`n_units` is deprecated.*use `n_hidden`"):
        cfg = mg17.Config(n_units=20, runs=1, washout=20, train=60, horizon=5)
    res = mg17.run(cfg, None, 0)
    assert res.numbers["settings"]["n_hidden"] == 20


def test_published_protocol_figures_are_named_once():
    """The papers' protocol figures, written out here from the papers, are the
    defaults of every configuration that reproduces them, through one named
    constant each: Pascanu, Mikolov & Bengio (2013, §4) train 50 tanh units by
    SGD with learning rate 0.01 on mini-batches of 20 and test on 10 000 fresh
    sequences; Jaeger (2001) runs 400 units 50 times, 1000 washout, 3000
    training and 84 predicted steps."""
    import inspect

    from rnntheory.experiments import bound_tightness, init_spectra, mg17, pascanu_tasks, runspec

    assert (runspec.PASCANU_2013_N_HIDDEN, runspec.PASCANU_2013_LR, runspec.PASCANU_2013_BATCH_SIZE,
            runspec.PASCANU_2013_TEST_SEQUENCES) == (50, 0.01, 20, 10_000)
    spec = RunSpec("temporal_order", 50)
    tasks, full = pascanu_tasks.Config(), pascanu_tasks.Config.full()
    assert spec.n_hidden == tasks.n_hidden == init_spectra.Config().n_hidden == 50
    assert init_spectra.Config.full().n_hidden == bound_tightness.Config.full().n_hidden == 50
    assert spec.lr == full.lr == 0.01 and spec.batch_size == tasks.batch_size == 20
    assert full.eval_size == 10_000
    # Their public code weighs Ω by 2.0: one constant, owned by the Ω record.
    from rnntheory.experiments import remedies_table
    from rnntheory.remedies.stages import PASCANU_2013_OMEGA_WEIGHT, Omega

    assert PASCANU_2013_OMEGA_WEIGHT == 2.0
    assert tasks.omega == remedies_table.Config().omega == Omega.hyper["omega"]["omega"] == 2.0
    jaeger = (mg17.JAEGER_2001_UNITS, mg17.JAEGER_2001_RUNS, mg17.JAEGER_2001_WASHOUT,
              mg17.JAEGER_2001_TRAIN, mg17.JAEGER_2001_HORIZON)
    assert jaeger == (400, 50, 1000, 3000, 84)
    cfg = mg17.Config()
    assert (cfg.n_hidden, cfg.runs, cfg.washout, cfg.train, cfg.horizon) == jaeger
    params = inspect.signature(mg17.mackey_glass_protocol).parameters
    assert tuple(params[k].default for k in ("n_hidden", "runs", "washout", "train", "horizon")) == jaeger
