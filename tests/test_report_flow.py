"""Gradient flow in the sweep: run_one's ``flow`` metric checked against explicit Jacobian
products and finite differences, and the report's flow figure and sentence against the raw
store rows."""

from __future__ import annotations

import json
import sqlite3

import naive
import numpy as np
import pytest

import rnntheory.training
from rnntheory._oracles import central_jacobian
from rnntheory.experiments import RunSpec, run_one
from rnntheory.experiments.report import flow_profiles, method_labels, write_report
from rnntheory.experiments.runspec import _streams
from rnntheory.experiments.store import Row, Store
from rnntheory.experiments.sweep import run_sweep
from rnntheory.tasks import make_task

TINY = {"n_hidden": 4, "steps": 3, "batch_size": 2, "eval_size": 4}


def _run_capturing_model(spec, monkeypatch):
    """run_one(spec), plus the final model it trained (captured from training.train)."""
    seen = {}
    real = rnntheory.training.train

    def spy(*args, **kwargs):
        hist = real(*args, **kwargs)
        seen["model"] = hist.model
        return hist

    monkeypatch.setattr(rnntheory.training, "train", spy)
    metrics = run_one(spec)
    return metrics, seen["model"]


def _test_sequence(spec):
    """Sequence 0 of the fresh test batch run_one draws, ``(T, n_in)``."""
    task = make_task(spec.task, spec.length)
    _, test_seed = _streams(spec.seed)
    return np.asarray(task.sample(spec.eval_size, test_seed).x[:, 0, :], dtype=np.float64)


@pytest.mark.parametrize("remedies", ["", "leaky"])
def test_elman_flow_is_the_explicit_product_and_obeys_eq12(remedies, monkeypatch):
    """For an Elman run (plain and leaky units), at every stored t:
    log_norm[t] = ln σ_max(J_t ⋯ J_1), the step Jacobians J_i = ∂h_i/∂h_{i−1} written out
    from the definitions (tests/naive.py) on test sequence 0 and multiplied explicitly,
    σ_max by SVD, to 1e-9; bound_slope = ln(σ_max(W_hh) γ_h) with γ_h = sup tanh′ = 1
    (leaky: ln(max α + max(1 − α) σ_max(W_hh))), computed with numpy; and Eq. 12,
    ln ‖∂h_t/∂h_0‖ ≤ t · bound_slope, holds at every stored point (+1e-9)."""
    spec = RunSpec("adding", 6, remedies=remedies, **TINY)
    metrics, model = _run_capturing_model(spec, monkeypatch)
    flow = metrics["flow"]
    x = _test_sequence(spec)
    Js = naive.jacobians(model, x)
    assert flow["t"] == list(range(x.shape[0] + 1))
    for t, v in zip(flow["t"], flow["log_norm"], strict=True):
        P = naive.product(Js, t, 0)
        ref = float(np.log(np.linalg.svd(P, compute_uv=False)[0]))
        assert v == pytest.approx(ref, abs=1e-9), t
    sw = np.linalg.svd(np.asarray(model.W_hh, float), compute_uv=False)[0]
    if remedies == "leaky":
        a = np.asarray(model.alpha, float)
        slope = np.log(a.max() + (1.0 - a).max() * sw)
    else:
        slope = np.log(sw * 1.0)
    assert flow["bound_slope"] == pytest.approx(float(slope), abs=1e-12)
    for t, v in zip(flow["t"], flow["log_norm"], strict=True):
        assert v <= t * flow["bound_slope"] + 1e-9, (t, v)


def test_long_sequence_profile_is_subsampled_with_ends(monkeypatch):
    """T = 250 > 100: at most 101 stored steps, strictly increasing, 0 and T included, and
    each stored value is still ln σ_max of the explicit product at its own t (1e-9)."""
    spec = RunSpec("adding", 250, **TINY)
    metrics, model = _run_capturing_model(spec, monkeypatch)
    flow = metrics["flow"]
    x = _test_sequence(spec)
    T = x.shape[0]
    t = np.asarray(flow["t"])
    assert len(t) <= 101 and t[0] == 0 and t[-1] == T and (np.diff(t) > 0).all()
    Js = naive.jacobians(model, x)
    stored = dict(zip(flow["t"], flow["log_norm"], strict=True))
    assert stored[0] == 0.0
    P, log_scale = np.eye(4), 0.0  # J_i ⋯ J_1 = exp(log_scale) · P, rescaled every step
    for i in range(1, T + 1):
        P = Js[i - 1] @ P
        s = np.abs(P).max()
        P, log_scale = P / s, log_scale + np.log(s)
        if i in stored:
            ref = log_scale + np.log(np.linalg.svd(P, compute_uv=False)[0])
            assert stored[i] == pytest.approx(float(ref), abs=1e-9), i


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_flow_matches_finite_differences(cell, monkeypatch):
    """Gated cells: bound_slope is None (Eq. 12 does not bound them) and log_norm[t] is
    ln σ_max of ∂s_t/∂s_0 from float64 central finite differences of the model's forward
    pass in its initial state, s = h for the GRU and s = (h, c) for the LSTM (rel. 1e-5)."""
    spec = RunSpec("adding", 6, cell=cell, **TINY)
    metrics, model = _run_capturing_model(spec, monkeypatch)
    flow = metrics["flow"]
    assert flow["bound_slope"] is None
    x = _test_sequence(spec)
    n = model.n_hidden
    m = 2 * n if cell == "lstm" else n
    s0 = np.zeros(m)  # run_one's forward pass starts from the zero state

    def states(s):
        tr = model.forward(x, h0=s[:n], c0=s[n:]) if cell == "lstm" else model.forward(x, h0=s)
        h = np.asarray(tr.h, float)
        return np.concatenate([h, np.asarray(tr.c, float)], axis=1) if cell == "lstm" else h

    eps = 1e-6
    D = central_jacobian(states, s0, eps)  # D[t] = ∂s_t/∂s_0
    for t, v in zip(flow["t"], flow["log_norm"], strict=True):
        ref = np.log(np.linalg.svd(D[t], compute_uv=False)[0])
        assert v == pytest.approx(float(ref), rel=1e-5, abs=1e-6), t


def test_flow_failure_stores_none(monkeypatch):
    """A failure while computing the diagnostic leaves the run intact: flow is None and the
    other metrics equal those of an unpatched run."""
    spec = RunSpec("adding", 6, **TINY)
    ref = run_one(spec)

    def boom(*args, **kwargs):
        raise RuntimeError("no")

    monkeypatch.setattr("rnntheory.jacobians.log_norm_profile", boom)
    m = run_one(spec)
    assert m["flow"] is None and ref["flow"] is not None
    drop = ("flow", "wall_s")
    assert {k: v for k, v in m.items() if k not in drop} == {
        k: v for k, v in ref.items() if k not in drop}


@pytest.fixture(scope="module")
def sweep_db(tmp_path_factory):
    """A synchronous sweep: 2 methods (no remedy, clipping) × 3 seeds on adding, length 6."""
    specs = [RunSpec("adding", 6, remedies=r, seed=s, **TINY) for r in ("", "clip")
             for s in range(3)]
    db = tmp_path_factory.mktemp("flow") / "r.db"
    res = run_sweep(specs, db, scheduler="sync", progress=False)
    assert res.failed == 0
    return db


def _raw_flows(db):
    con = sqlite3.connect(db)
    out = [(json.loads(sp), json.loads(m)) for sp, m in
           con.execute("SELECT spec, metrics FROM runs WHERE status = 'done'")]
    con.close()
    return out


def test_report_flow_figure_and_sentence_from_raw_rows(sweep_db, tmp_path):
    """The report of a 2-method sweep writes flow_adding_L6.png (a PNG matplotlib reads,
    not blank), links it from the Markdown, and its sentence names the method whose median
    over seeds of the stored ln ‖∂h_T/∂h_0‖ (recomputed from the raw SQLite rows) is the
    largest; flow_profiles' medians equal numpy medians of the raw profiles at every t."""
    import matplotlib.image as mpimg

    rep = write_report(sweep_db, tmp_path / "out")
    assert "flow_adding_L6" in rep.figures
    path = rep.figures["flow_adding_L6"]
    text = rep.path.read_text()
    assert "](flow_adding_L6.png)" in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and float(img[..., :3].std()) > 0.01
    raw: dict[str, list[list[float]]] = {}
    for spec, m in _raw_flows(sweep_db):
        raw.setdefault("+".join(spec["remedies"]) or "none", []).append(m["flow"]["log_norm"])
    med = {k: np.median(np.asarray(v, float), axis=0) for k, v in raw.items()}
    profs = {p["method"]: p for p in rep.flow}
    assert set(profs) == {"none", "clip"}
    for k, p in profs.items():
        assert p["runs"] == 3
        assert np.allclose(p["log_norm"], med[k], rtol=0, atol=1e-12)
    best = max(med, key=lambda k: med[k][-1])
    worst = min(med, key=lambda k: med[k][-1])
    line = next(ln for ln in text.splitlines() if ln.startswith("**adding, length 6.**"))
    assert f"`{best}` keeps the largest" in line and f"`{worst}` the smallest" in line
    assert f"({med[best][-1]:.3g}," in line


def test_report_without_flow_metric_omits_the_figure(tmp_path):
    """Rows whose metrics lack 'flow' (an older store), plus one with flow None: the report
    renders its other figures, no flow_* figure, no gradient-flow section, and
    flow_profiles is empty."""
    rows = []
    for i, rem in enumerate(["", "clip", "clip"]):
        m = {"solved": False, "final_error": 0.5, "grad_norm_median": 1.0, "grad_norm_max": 2.0,
             "curve": {"eval_steps": [0, 5], "eval_error": [0.6, 0.5], "loss_steps": [1, 2],
                       "loss": [1.0, 0.9], "grad_norm": [1.0, 2.0]}}
        if i == 2:
            m["flow"] = None
        rows.append(Row(str(i), RunSpec("adding", 10, remedies=rem, seed=i), "done", m))
    with Store(tmp_path / "old.db") as s:
        for r in rows:
            s.record(r.spec, metrics=r.metrics)
    rep = write_report(tmp_path / "old.db", tmp_path / "out")
    assert rep.flow == [] and flow_profiles(rows) == []
    assert not any(k.startswith("flow_") for k in rep.figures)
    assert "curves_adding_L10" in rep.figures
    text = rep.path.read_text()
    assert "## Gradient flow" not in text and "flow_" not in text


def test_flow_profiles_median_skips_missing_and_nonfinite():
    """Per method: a run without flow is skipped; None (non-finite) points are ignored where
    other runs have values; the median slope is over the runs that have one."""
    flows = [{"t": [0, 1, 2], "log_norm": [0.0, -1.0, None], "bound_slope": 0.5},
             {"t": [0, 1, 2], "log_norm": [0.0, -3.0, -4.0], "bound_slope": None},
             {"t": [0, 1, 2], "log_norm": [0.0, -2.0, -6.0], "bound_slope": 0.1}]
    rows = [Row(str(i), RunSpec("adding", 10, seed=i), "done", {"flow": f})
            for i, f in enumerate(flows)]
    rows.append(Row("x", RunSpec("adding", 10, seed=9), "done", {}))
    (p,) = flow_profiles(rows)
    assert p["runs"] == 3
    assert p["log_norm"].tolist() == [0.0, -2.0, -5.0]
    assert p["bound_slope"] == pytest.approx(0.3, abs=1e-15)
    assert set(method_labels(rows).values()) == {"rnn/smart_tanh/sgd/none"}


def test_verify_row_passes():
    """The `rnntheory verify` row for the flow metric (explicit products and Eq. 12 on 16
    small Elman models) passes, with every point checked and the bound respected."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.experiments import sweep_flow

    row = sweep_flow(CheckContext())
    assert row.passed and row.models == 16 and row.pairs == 160 and row.worst <= 1e-9
