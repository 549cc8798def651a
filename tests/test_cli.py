"""The ``rnntheory`` command line: ``verify`` and ``bounds``, and the contract every
subcommand keeps: one line on stderr per error, exit status 2 for input errors, 1 for a
failed verification, 130 when interrupted, strict JSON."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import rnntheory
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


def _strict_json(text: str):
    """json.loads that refuses the non-standard constants NaN, Infinity and -Infinity."""
    def refuse(name):
        raise AssertionError(f"invalid JSON constant {name} in the output")

    return json.loads(text, parse_constant=refuse)


def _one_error_line(err: str, command: str) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rnntheory {command}: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "command", "match"),
    [
        (["verify", "--T", "0"], "verify", r"argument --T: must be >= 1, got 0"),
        (["verify", "--T", "ten"], "verify", r"argument --T: must be an integer, got 'ten'"),
        (["verify", "--seed", "-1"], "verify", r"argument --seed: must be >= 0, got -1"),
        (["experiment", "init-spectra", "--seed", "-3"], "experiment", r"must be >= 0, got -3"),
        (["bounds"], "bounds", r"required: WEIGHTS"),
        (["bounds", "w.npz", "--activation", "softsign"], "bounds", r"invalid choice: 'softsign'"),
        (["frobnicate"], "", r"invalid choice: 'frobnicate'"),
        ([], "", r"required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(argv, command, match, capsys):
    """argparse's usage errors: SystemExit(2) and exactly one line on stderr, naming the
    argument; nothing runs."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err, command) if command else captured.err.strip()
    assert len(captured.err.splitlines()) == 1
    assert line.startswith(f"rnntheory{(' ' + command) if command else ''}: error: ")
    assert re.search(match, line), line
    assert captured.out == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnntheory {rnntheory.__version__}"


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


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy_bytes(a) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _zip_with(name: str, data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data)
    return buf.getvalue()


def _corrupt_member() -> bytes:
    """An .npz whose zip directory is intact but whose array bytes are damaged (CRC fails)."""
    b = bytearray(_npz_bytes(W_hh=np.arange(64.0).reshape(8, 8)))
    i = b.index(b"\x93NUMPY") + 200
    b[i:i + 8] = b"\xff" * 8
    return bytes(b)


_LD = np.eye(2, dtype=np.longdouble)
_LD[0, 1] = np.longdouble("1e-4000")  # 0 where long double is float64 (the test skips there)

BAD_WEIGHTS = [
    # (file name, contents (bytes) or None for "missing" / "dir" for a folder, extra argv, match)
    ("missing.npz", None, [], r"`WEIGHTS` file not found: '.*missing.npz'"),
    ("folder.npz", "dir", [], r"is a folder; expected a .npz or .npy file"),
    ("empty.npz", b"", [], r"is an empty file"),
    ("notes.npz", b"W_hh = [[1, 0], [0, 1]]\n", [], r"is not a NumPy .npz or .npy file \(it starts with b'W_hh ='\)"),
    ("store.npz", b"SQLite format 3\x00" + bytes(200), [], r"is not a NumPy .npz or .npy file"),
    ("trunc.npz", _npz_bytes(W_hh=np.eye(4))[:150], [], r"not a readable .npz archive \(truncated or corrupt\): BadZipFile"),
    ("trunc.npy", _npy_bytes(np.eye(4))[:-9], [], r"the .npy file is truncated or corrupt"),
    ("crc.npz", _corrupt_member(), [], r"array 'W_hh' of the .npz archive is truncated or corrupt"),
    ("none.npz", _npz_bytes(), [], r"is a .npz archive with no arrays"),
    ("text.zip", _zip_with("readme.txt", b"hi"), [], r"member 'readme.txt' is not a NumPy array"),
    ("obj.npz", _npz_bytes(W_hh=np.array([[1.0, None]], dtype=object)), [], r"holds Python objects, which are never loaded"),
    ("obj.npy", _npy_bytes(np.array([[1.0, None]], dtype=object)), [], r"holds Python objects"),
    ("two.npz", _npz_bytes(A=np.eye(2), B=np.eye(3)), [], r"cannot tell which array .* among \['A', 'B'\]; pass --key NAME"),
    ("two.npz", _npz_bytes(A=np.eye(2), B=np.eye(3)), ["--key", "C"], r"`--key` 'C' not in the file, which has \['A', 'B'\]"),
    ("single.npy", _npy_bytes(np.eye(2)), ["--key", "W"], r"`--key` 'W' names an array in a .npz archive"),
    ("rect.npz", _npz_bytes(W_hh=np.ones((2, 3))), [], r"`W_hh` \(array 'W_hh' of .*\) must be a non-empty square matrix, got shape \(2, 3\)"),
    ("zero.npz", _npz_bytes(W_hh=np.zeros((0, 0))), [], r"non-empty square matrix, got shape \(0, 0\)"),
    ("vec.npy", _npy_bytes(np.ones(3)), [], r"non-empty square matrix, got shape \(3,\)"),
    ("int.npz", _npz_bytes(W_hh=np.eye(2, dtype=np.int64)), [], r"must be a real floating-point array, got dtype int64"),
    ("cplx.npz", _npz_bytes(W_hh=1j * np.eye(2)), [], r"got dtype complex128"),
    ("nan.npz", _npz_bytes(W_hh=np.array([[np.nan, 0.0], [np.inf, 1.0]])), [], r"must be finite, got 2 NaN/inf entries"),
    ("ld.npz", _npz_bytes(W_hh=_LD), [], r"outside float64's range, e\.g\. \[0, 1\]"),
]


@pytest.mark.parametrize(("name", "content", "extra", "match"), BAD_WEIGHTS,
                         ids=[f"{b[0]}{'-key' if b[2] else ''}" for b in BAD_WEIGHTS])
def test_bounds_bad_inputs_exit_2_with_one_line(tmp_path, capsys, name, content, extra, match):
    """Missing, folder, empty, non-NumPy, truncated or corrupt files, archives without a
    usable array, wrong keys, non-square, non-real, non-finite or out-of-float64 matrices:
    status 2, one line ``rnntheory bounds: error: ...`` naming the problem, no stdout, and the
    file is not changed."""
    if name == "ld.npz" and not _LD[0, 1]:
        pytest.skip("long double has no range beyond float64 here")
    p = tmp_path / name
    if content == "dir":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)
    before = _sha(p) if p.is_file() else None
    assert main(["bounds", str(p), *extra, "--json"]) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err, "bounds")
    assert line.startswith("rnntheory bounds: error: ")
    assert re.search(match, line), line
    assert captured.out == ""
    if before is not None:
        assert _sha(p) == before


def test_bounds_unreadable_file(tmp_path, capsys, monkeypatch):
    """A file the process may not read (simulated: the tests run as root, which reads
    everything): status 2 and one line with the OS's reason."""
    p = _write(tmp_path, "secret.npz", W_hh=np.eye(2))
    real_open = Path.open

    def guarded(self, *args, **kwargs):
        if self == p:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    assert main(["bounds", str(p)]) == 2
    line = _one_error_line(capsys.readouterr().err, "bounds")
    assert line.endswith("cannot be read: Permission denied")


def test_bounds_reads_the_format_not_the_extension(tmp_path, capsys):
    """An .npy array named ``.npz`` and an .npz archive named ``.npy`` give the same γ_W as
    correctly named files: σ_max computed here by NumPy's SVD of the same matrix."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 5))
    a = tmp_path / "really_npy.npz"
    a.write_bytes(_npy_bytes(W))
    b = tmp_path / "really_npz.npy"
    b.write_bytes(_npz_bytes(W_hh=W, other=np.ones(2)))
    for p in (a, b):
        assert main(["bounds", str(p), "--json"]) == 0
        d = _strict_json(capsys.readouterr().out)
        assert d["gamma_w"] == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-13)


def test_bounds_json_extremes_are_valid_json(tmp_path, capsys):
    """--json stays strict JSON at the ends of float64: σ_max of the all-1e308 2x2 matrix is
    2e308, beyond float64 (checked with exact rationals), so γ_W, ρ and the rate are written
    as the string "inf"; a subnormal diagonal 5e-324 gives exactly 5e-324 and a rate that
    meets 1e-8 after one step."""
    big = np.full((2, 2), 1e308)
    p = _write(tmp_path, "big.npz", W_hh=big)
    assert main(["bounds", str(p), "--json"]) == 0
    d = _strict_json(capsys.readouterr().out)
    exact = 2 * Fraction(1e308)  # σ_max of [[a, a], [a, a]] is 2a
    assert exact > Fraction(sys.float_info.max)
    assert d["gamma_w"] == d["spectral_radius"] == d["rate"] == "inf"
    assert float(d["gamma_w"]) == math.inf
    assert d["explosion_possible"] is True and d["steps_to_1e-8"] is None
    p = _write(tmp_path, "tiny.npz", W_hh=np.diag([5e-324, 5e-324]))
    assert main(["bounds", str(p), "--json"]) == 0
    d = _strict_json(capsys.readouterr().out)
    assert d["gamma_w"] == 5e-324 and d["spectral_radius"] == 5e-324
    assert d["vanishing_guaranteed"] is True and d["steps_to_1e-8"] == 1


def test_verify_json_encodes_nonfinite_worst_and_fails_with_status_1(monkeypatch, capsys):
    """A check whose worst value is NaN or +inf (a failed check): ``verify --json`` exits 1,
    its output parses as strict JSON, and the values are the strings "nan" and "inf"."""
    import rnntheory.verification as V

    rows = [V.CheckResult("a", "claim a", 1, 1, math.nan, False, "d", 0.0),
            V.CheckResult("b", "claim b", 1, 1, math.inf, False, "d", 0.0),
            V.CheckResult("c", "claim c", 1, 1, -0.5, True, "d", 0.0)]
    monkeypatch.setattr(V, "run_checks", lambda cfg, progress=None: iter(rows))
    assert main(["verify", "--json", "--no-proofs", "--T", "3"]) == 1
    d = _strict_json(capsys.readouterr().out)
    assert [c["worst"] for c in d["checks"]] == ["nan", "inf", -0.5]
    assert d["passed"] is False


def test_experiment_json_encodes_nonfinite_numbers(monkeypatch, tmp_path, capsys):
    """``experiment --json`` writes measured ±inf and NaN as strings (strict JSON)."""
    from rnntheory.experiments import registry

    def fake(name, *, full=False, out=None, seed=0, config=None):
        return registry.ExperimentResult(name, {"seed": seed}, {
            "rate": math.inf, "lyap": -math.inf, "err": math.nan, "ok": np.float64(0.25),
            "curve": np.array([1.0, np.inf])}, "md")

    monkeypatch.setattr(registry, "run_experiment", fake)
    assert main(["experiment", "init-spectra", "--out", str(tmp_path), "--json"]) == 0
    d = _strict_json(capsys.readouterr().out)
    assert d["numbers"] == {"rate": "inf", "lyap": "-inf", "err": "nan", "ok": 0.25,
                            "curve": [1.0, "inf"]}


def test_prove_unknown_claim_exits_2_with_one_line(capsys):
    assert main(["prove", "--claim", "C99"]) == 2
    line = _one_error_line(capsys.readouterr().err, "prove")
    assert line.startswith("rnntheory prove: error: ") and "'C99'" in line


def test_verify_report_refuses_a_file_before_running(tmp_path, monkeypatch, capsys):
    """``verify --report FILE`` (an existing file, not a folder): status 2 before any check
    runs, and the file is unchanged; a missing nested folder is created."""
    import rnntheory.verification as V

    f = tmp_path / "notes.txt"
    f.write_text("mine")
    monkeypatch.setattr(V, "run_checks", lambda *a, **k: pytest.fail("checks ran"))
    assert main(["verify", "--no-proofs", "--report", str(f)]) == 2
    line = _one_error_line(capsys.readouterr().err, "verify")
    assert "exists and is not a folder" in line and f.read_text() == "mine"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "verify.md").write_text("my page")
    assert main(["verify", "--no-proofs", "--report", str(tmp_path / "d")]) == 2
    line = _one_error_line(capsys.readouterr().err, "verify")
    assert "'verify.md', which rnntheory did not write" in line and "--force" in line
    assert (tmp_path / "d" / "verify.md").read_text() == "my page"


def test_experiment_out_guards(tmp_path, monkeypatch, capsys):
    """``experiment NAME --out DIR`` checks DIR before running: an existing file as DIR, a
    foreign ``DIR/NAME.md`` or a ``DIR/NAME.db`` that is not a results store each give
    status 2 and one line, leave the file byte-identical, and run nothing; ``--force``
    overwrites the foreign page."""
    from rnntheory.experiments import registry

    calls = []

    def fake(name, *, full=False, out=None, seed=0, config=None):
        calls.append(out)
        (Path(out) / f"{name}.md").write_text("# result\n")
        return registry.ExperimentResult(name, {}, {"x": 1.0}, "# result")

    monkeypatch.setattr(registry, "run_experiment", fake)
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["experiment", "init-spectra", "--out", str(f)]) == 2
    assert "exists and is not a folder" in _one_error_line(capsys.readouterr().err, "experiment")
    d = tmp_path / "out"
    d.mkdir()
    page = d / "init-spectra.md"
    page.write_text("my notes")
    assert main(["experiment", "init-spectra", "--out", str(d)]) == 2
    assert "did not write" in _one_error_line(capsys.readouterr().err, "experiment")
    assert page.read_text() == "my notes" and calls == []
    db = d / "init-spectra.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(100))
    before = _sha(db)
    assert main(["experiment", "init-spectra", "--out", str(d), "--force"]) == 2
    assert "not an rnntheory results store" in _one_error_line(capsys.readouterr().err,
                                                               "experiment")
    assert _sha(db) == before and calls == []
    db.unlink()
    assert main(["experiment", "init-spectra", "--out", str(d), "--force"]) == 0
    assert page.read_text() == "# result\n" and len(calls) == 1
    assert main(["experiment", "init-spectra", "--out", str(d)]) == 0  # now its own page
    assert main(["experiment", "no-such-thing"]) == 2
    assert "unknown experiment 'no-such-thing'" in _one_error_line(capsys.readouterr().err,
                                                                   "experiment")


def test_sweep_errors_from_the_scheduler_are_one_line(tmp_path, monkeypatch, capsys):
    """An OSError raised by the sweep machinery (what Dask raises for an unreachable
    scheduler address) reaches the user as one line with status 2."""
    from rnntheory.experiments import sweep as sw

    cfg = tmp_path / "s.toml"
    cfg.write_text('[sweep]\ndb = "r.db"\n[grid]\ntask = "adding"\nlength = 6\nsteps = 2\n')

    def unreachable(*args, **kwargs):
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:9 after 1 s")

    monkeypatch.setattr(sw, "run_sweep", unreachable)
    assert main(["sweep", str(cfg), "--scheduler", "tcp://127.0.0.1:9", "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, "sweep")
    assert line == ("rnntheory sweep: error: Timed out trying to connect to tcp://127.0.0.1:9 "
                    "after 1 s")


@pytest.mark.parametrize("dry_run", [False, True])
def test_sweep_refuses_to_adopt_another_programs_database(tmp_path, capsys, dry_run):
    """``sweep --db app.sqlite`` where app.sqlite is another program's SQLite database:
    status 2, one line, nothing run, and the database is byte-identical (no runs/meta
    tables, still in its rollback journal mode)."""
    import sqlite3

    db = tmp_path / "app.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    con.execute("INSERT INTO orders (total) VALUES (9.5)")
    con.commit()
    con.close()
    before = _sha(db)
    cfg = tmp_path / "s.toml"
    cfg.write_text('[grid]\ntask = "adding"\nlength = 6\nn_hidden = 3\nsteps = 2\n')
    argv = ["sweep", str(cfg), "--db", str(db), "--scheduler", "sync", "--no-progress"]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 2
    line = _one_error_line(capsys.readouterr().err, "sweep")
    assert "SQLite database of another program" in line and "['orders']" in line
    assert _sha(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "s.toml"]


def test_interrupt_is_one_line_with_status_130(tmp_path, monkeypatch, capsys):
    import rnntheory.bounds as bd

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bd, "gamma_w", interrupted)
    p = _write(tmp_path, W_hh=np.eye(2))
    assert main(["bounds", str(p)]) == 130
    assert _one_error_line(capsys.readouterr().err, "bounds") == "rnntheory bounds: interrupted"


def test_unexpected_errors_are_one_line_and_can_show_their_traceback(tmp_path, monkeypatch,
                                                                     capsys):
    """A bug (an exception that is not an input error) is one line with status 1; with
    RNNTHEORY_TRACEBACK=1 it propagates."""
    import rnntheory.bounds as bd

    def bug(*args, **kwargs):
        raise KeyError("oops\nsecond line")

    monkeypatch.setattr(bd, "gamma_w", bug)
    p = _write(tmp_path, W_hh=np.eye(2))
    monkeypatch.delenv("RNNTHEORY_TRACEBACK", raising=False)
    assert main(["bounds", str(p)]) == 1
    line = _one_error_line(capsys.readouterr().err, "bounds")
    assert line.startswith("rnntheory bounds: error: unexpected KeyError: ")
    monkeypatch.setenv("RNNTHEORY_TRACEBACK", "1")
    with pytest.raises(KeyError, match="oops"):
        main(["bounds", str(p)])


def test_a_closed_stdout_is_silent(tmp_path, monkeypatch, capsys):
    """stdout closed by the reader (``| head``): status 141 and nothing on stderr."""
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    p = _write(tmp_path, W_hh=np.eye(2))
    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["bounds", str(p)]) == 141
    assert capsys.readouterr().err == ""


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
    assert r.returncode == 2
    assert r.stderr == f"rnntheory bounds: error: `WEIGHTS` file not found: '{tmp_path / 'missing.npz'}'\n"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["bounds", "{trunc}"], "bounds"),
        (["report", "{foreign}", "--out", "{out}"], "report"),
        (["sweep", "{toml}", "--dry-run"], "sweep"),
        (["verify", "--T", "-5"], "verify"),
    ],
)
def test_no_traceback_reaches_stderr_in_a_fresh_interpreter(tmp_path, argv, command):
    """The console entry point: a truncated archive, another program's SQLite file given to
    ``report``, a sweep file that is not UTF-8 TOML and a bad option each end with status 2
    and exactly one line on stderr; the foreign database is byte-identical afterwards."""
    import sqlite3

    trunc = tmp_path / "w.npz"
    trunc.write_bytes(_npz_bytes(W_hh=np.eye(3))[:100])
    foreign = tmp_path / "app.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    con.execute("INSERT INTO notes (body) VALUES ('keep me')")
    con.commit()
    con.close()
    before = _sha(foreign)
    toml = tmp_path / "s.toml"
    toml.write_bytes(b"\xff\xfe[sweep]\n")
    argv = [a.format(trunc=trunc, foreign=foreign, out=tmp_path / "o", toml=toml) for a in argv]
    r = subprocess.run([sys.executable, "-m", "rnntheory.cli", *argv], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, command)
    assert _sha(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "s.toml", "w.npz"]


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
