"""The ``rnntheory`` command line: ``verify`` and ``bounds``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rnntheory.cli import main


def test_verify_json_reports_every_check_passed(capsys):
    """``verify --json --T 30`` exits 0 and its JSON lists the checks, all passed."""
    rc = main(["verify", "--json", "--T", "30"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert rc == 0
    assert data["config"]["T"] == 30
    names = [c["check"] for c in data["checks"]]
    assert len(names) == len(set(names)) >= 10
    for c in data["checks"]:
        assert c["passed"] is True and c["verdict"] == "pass", c["check"]
    assert data["passed"] is True


def test_verify_rejects_nonpositive_T():
    with pytest.raises(SystemExit, match="`--T` must be >= 1"):
        main(["verify", "--T", "0"])


def _write(tmp_path, name="w.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_bounds_prints_spectral_norm(tmp_path, capsys):
    """``bounds W.npz`` prints γ_W = σ_max(W) (numpy's 2-norm, computed here), ρ,
    and Pascanu's conditions, for a W whose σ_max and ρ differ."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(6, 6)) / 2
    p = _write(tmp_path, W_hh=W, other=np.ones(3))
    assert main(["bounds", str(p)]) == 0
    out = capsys.readouterr().out
    gw = np.linalg.norm(W, 2)
    rho = np.max(np.abs(np.linalg.eigvals(W)))
    assert f"{gw:.6g}" in out
    line = next(l for l in out.splitlines() if "σ_max(W_hh)" in l)
    assert float(line.split()[-1]) == pytest.approx(gw, rel=1e-5)
    line = next(l for l in out.splitlines() if "ρ(W_hh)" in l)
    assert float(line.split()[1]) == pytest.approx(rho, rel=1e-5)
    assert f"explosion possible      {gw > 1}" in out
    assert f"vanishing guaranteed    {gw < 1}" in out


def test_bounds_json_sigmoid(tmp_path, capsys):
    """JSON output: γ_W, γ_h = 1/4, rate γ_W γ_h and the conditions' truth values."""
    W = np.diag([3.0, -1.0, 0.5])
    p = _write(tmp_path, "d.npz", W=W)
    assert main(["bounds", str(p), "--activation", "sigmoid", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["gamma_w"] == pytest.approx(3.0, rel=1e-14)
    assert d["gamma_h"] == 0.25
    assert d["rate"] == pytest.approx(0.75, rel=1e-14)
    assert d["vanishing_guaranteed"] is True and d["explosion_possible"] is False
    s = d["steps_to_1e-8"]
    assert 0.75**s <= 1e-8 < 0.75 ** (s - 1)


def test_bounds_missing_file(tmp_path):
    with pytest.raises(SystemExit, match=r"file not found"):
        main(["bounds", str(tmp_path / "nope.npz")])


def test_bounds_ambiguous_npz(tmp_path):
    p = _write(tmp_path, "amb.npz", A=np.eye(2), Bm=np.eye(3))
    with pytest.raises(SystemExit, match=r"cannot tell which array is W_hh.*--key"):
        main(["bounds", str(p)])
    with pytest.raises(SystemExit, match=r"`--key` 'C' not in the file"):
        main(["bounds", str(p), "--key", "C"])


def test_bounds_non_square(tmp_path):
    p = _write(tmp_path, "ns.npz", W_hh=np.ones((2, 3)))
    with pytest.raises(SystemExit, match=r"`W` must be square"):
        main(["bounds", str(p)])


def test_console_script_subprocess(tmp_path):
    """The module entry point runs in a fresh interpreter: exit status 0 and the
    same γ_W in its JSON."""
    W = np.array([[0.5, 4.0], [0.0, 0.5]])
    p = _write(tmp_path, "nn.npz", W_hh=W)
    r = subprocess.run(
        [sys.executable, "-m", "rnntheory.cli", "bounds", str(p), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["gamma_w"] == pytest.approx(np.linalg.norm(W, 2), rel=1e-14)
    assert d["spectral_radius"] == pytest.approx(0.5, rel=1e-12)
    r = subprocess.run(
        [sys.executable, "-m", "rnntheory.cli", "bounds", str(tmp_path / "missing.npz")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert r.returncode != 0
    assert "not found" in r.stderr


def test_verify_report_writes_table_and_figures(tmp_path, capsys):
    """``verify --report DIR`` writes verify.md with one table row per check
    (the same checks and verdicts as ``--json``), the three gradient-flow
    sections whose largest excess over Eq. 12 is ≤ 0 (the bound holds), and
    PNG figures that matplotlib reads back as non-blank images."""
    import re

    import matplotlib.image as mpimg

    assert main(["verify", "--json", "--no-proofs", "--T", "20", "--report", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    page = (tmp_path / "verify.md").read_text(encoding="utf-8")
    for c in data["checks"]:
        assert re.search(rf"^\| {re.escape(c['check'])} \|.*\| pass \|", page, re.M), c["check"]
    excess = [float(v) for v in re.findall(r"rate = (-?[0-9.]+) over", page)]
    assert len(excess) == 3 and max(excess) <= 0.0
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 7
    for p in pngs:
        assert f"]({p.name})" in page
        img = mpimg.imread(p)
        assert img.ndim == 3 and float(img[..., :3].std()) > 0.01, p.name
