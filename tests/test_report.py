"""Reports: the tables recomputed from the raw store rows, the figures read back as PNGs."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from rnntheory.cli import main
from rnntheory.experiments import RunSpec
from rnntheory.experiments import report as rep_mod
from rnntheory.experiments.report import _median_curve, method_labels, write_report
from rnntheory.experiments.store import Row, Store
from rnntheory.plotting import success_vs_length, training_curves

REMEDIES = ("", "clip", "clip+omega")


def _fake_metrics(rng: np.random.Generator, steps: int = 40) -> dict:
    solved = bool(rng.random() < 0.5)
    ev = list(range(0, steps + 1, 10))
    err = sorted((rng.random(len(ev)) * 0.5).tolist(), reverse=True)
    if solved:
        err[-1] = 0.0
    first = next((s for s, e in zip(ev, err, strict=True) if e < 0.01), None)
    gn = (rng.random(steps) * 3).tolist()
    return {
        "final_error": err[-1], "solved": solved, "steps_to_solve": first,
        "grad_norm_median": float(np.median(gn)), "grad_norm_max": float(max(gn)),
        "n_clips": int(rng.integers(0, 5)), "n_fallbacks": 0, "n_nonfinite_grads": 0,
        "wall_s": 0.1,
        "curve": {"eval_steps": ev, "eval_error": err, "loss_steps": list(range(1, steps + 1)),
                  "loss": gn, "grad_norm": gn},
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A store of 3 methods × 2 lengths × 4 seeds with synthetic metrics, one failed run."""
    path = tmp_path_factory.mktemp("rep") / "r.db"
    rng = np.random.default_rng(7)
    with Store(path) as s:
        for rem in REMEDIES:
            for length in (20, 40):
                for seed in range(4):
                    spec = RunSpec("temporal_order", length, remedies=rem, seed=seed)
                    if (rem, length, seed) == ("clip", 40, 3):
                        s.record(spec, status="failed", error="RuntimeError: diverged")
                    else:
                        s.record(spec, metrics=_fake_metrics(rng))
    return path


def _raw(db):
    con = sqlite3.connect(db)
    out = [(json.loads(sp), st, json.loads(m) if m else None)
           for sp, st, m in con.execute("SELECT spec, status, metrics FROM runs")]
    con.close()
    return out


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    i = next(j for j, line in enumerate(lines) if line.startswith(header))
    out = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_success_table_equals_counts_from_the_raw_rows(db, tmp_path):
    """For each (remedy set, task, length): runs = done rows, solved = done rows with
    solved true, success = solved/runs, median updates to solve = median of steps_to_solve
    over solved rows — all recomputed here from the raw SQLite rows."""
    rep = write_report(db, tmp_path / "out", title="T")
    text = rep.path.read_text()
    assert text.startswith("# T\n")
    groups = defaultdict(list)
    for spec, status, m in _raw(db):
        groups[("+".join(spec["remedies"]) or "none", spec["task"], spec["length"])].append((status, m))
    table = _table(text, "| method | task | length |")
    assert len(table) == len(groups) == 6
    for method, task, length, runs, solved, success, med_steps, _ in table:
        grp = groups[(method, task, int(length))]
        done = [m for st, m in grp if st == "done"]
        ok = [m for m in done if m["solved"]]
        assert int(runs) == len(done) and int(solved) == len(ok)
        assert float(success) == pytest.approx(len(ok) / len(done), abs=0.005)
        steps = [m["steps_to_solve"] for m in ok]
        if steps:
            assert float(med_steps) == pytest.approx(np.median(steps), abs=0.5)
        else:
            assert med_steps == "–"
    assert rep.n_failed == 1 and "RuntimeError: diverged" in text


def test_gradient_table_equals_the_raw_rows(db, tmp_path):
    """Per (method, task): max norm = max of grad_norm_max, clips = sum of n_clips, runs =
    done rows, recomputed from the raw rows."""
    rep = write_report(db, tmp_path / "out", figures=False)
    table = _table(rep.path.read_text(), "| method | task | runs | median norm |")
    raw = defaultdict(list)
    for spec, status, m in _raw(db):
        if status == "done":
            raw["+".join(spec["remedies"]) or "none"].append(m)
    assert len(table) == 3
    for method, _task, runs, _med, mx, clips, _fb, _nf in table:
        ms = raw[method]
        assert int(runs) == len(ms)
        assert float(mx) == pytest.approx(max(m["grad_norm_max"] for m in ms), rel=1e-3)
        assert int(clips) == sum(m["n_clips"] for m in ms)


def test_figures_are_pngs_matplotlib_can_read_and_not_blank(db, tmp_path):
    """Each figure named in the report exists, starts with the PNG signature, reads back
    with matplotlib.image.imread as an RGB(A) image whose pixels are not all equal."""
    import matplotlib.image as mpimg

    rep = write_report(db, tmp_path / "out")
    assert set(rep.figures) == {"success_temporal_order", "curves_temporal_order_L20",
                                "curves_temporal_order_L40", "gradnorm_temporal_order_L20",
                                "gradnorm_temporal_order_L40"}
    text = rep.path.read_text()
    for stem, path in rep.figures.items():
        assert f"]({path.name})" in text
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[2] in (3, 4) and img.shape[0] > 100
        assert float(img[..., :3].std()) > 0.01, stem


def test_median_curve_is_the_columnwise_median():
    """Runs sharing their steps: the median curve is np.median over runs at every step; a
    run's None (non-finite) points are ignored where the others have values."""
    rng = np.random.default_rng(0)
    ys = rng.random((5, 6))
    rows = [Row(str(i), RunSpec("adding", 10, seed=i), "done",
                {"curve": {"s": [0, 1, 2, 3, 4, 5], "y": ys[i].tolist()}}) for i in range(5)]
    x, med = _median_curve(rows, "s", "y")
    assert x.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.allclose(med, np.median(ys, axis=0), rtol=0, atol=1e-15)


def test_method_labels_name_only_varying_fields():
    """Only fields that vary across rows appear in labels."""
    rows = [Row(str(i), RunSpec("adding", 10, lr=lr, remedies=r, seed=i), "done")
            for i, (lr, r) in enumerate([(0.1, ""), (0.01, "clip"), (0.1, "clip")])]
    assert list(method_labels(rows).values()) == [
        "remedies=none, lr=0.1", "remedies=clip, lr=0.01", "remedies=clip, lr=0.1"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _err_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnntheory report: error: "), captured.err
    return lines[0]


def test_report_cli(db, tmp_path, capsys):
    """`rnntheory report DB --out DIR` writes DIR/report.md (exit 0), creating missing
    folders; a missing DB exits 2 with one line on stderr."""
    out = tmp_path / "a" / "b" / "o"
    assert main(["report", str(db), "--out", str(out)]) == 0
    assert (out / "report.md").is_file()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "none.db"), "--out", str(tmp_path / "o2")]) == 2
    assert "results store not found" in _err_line(capsys)
    assert not (tmp_path / "o2").exists()


def _foreign_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO contacts (name) VALUES ('Ada')")
    con.commit()
    con.close()


@pytest.mark.parametrize("kind", ["sqlite", "text", "empty", "truncated", "folder"])
def test_report_on_a_file_it_does_not_own(db, tmp_path, capsys, kind):
    """`rnntheory report` on another program's SQLite file, a text file, an empty file, a
    truncated store or a folder: status 2, one line, no output folder, and the file is
    byte-identical (before the fix the SQLite file gained `runs`/`meta` tables and WAL mode)."""
    path = tmp_path / "input.db"
    if kind == "sqlite":
        _foreign_sqlite(path)
    elif kind == "text":
        path.write_text("not a database\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = Path(db).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.mkdir()
    before = None if kind == "folder" else _sha(path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "rnntheory results store" in _err_line(capsys)
    if before is not None:
        assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    if kind == "sqlite":
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] \
            == ["contacts"]
        con.close()


def test_report_of_a_read_only_store(db, tmp_path, capsys):
    """A store copied into a folder and made read-only (file 0444, folder 0555) is reported:
    status 0, the success table's run counts equal the raw rows, and the store is
    byte-identical with no -wal/-shm beside it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "r.db"
    path.write_bytes(Path(db).read_bytes())
    before = _sha(path)
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    try:
        assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 0
    finally:
        os.chmod(folder, 0o755)
        os.chmod(path, 0o644)
    assert _sha(path) == before and sorted(p.name for p in folder.iterdir()) == ["r.db"]
    table = _table((tmp_path / "rep" / "report.md").read_text(), "| method | task | length |")
    n_done = sum(st == "done" for _, st, _ in _raw(db))
    assert sum(int(row[3]) for row in table) == n_done


def test_report_out_never_overwrites_a_file_it_does_not_own(db, tmp_path, capsys):
    """--out checks: an existing file as the folder (refused, unchanged); a folder holding
    the user's report.md or a success_*.png (refused before anything is written, unchanged);
    --force overwrites them; a second report into the same folder replaces its own files
    without --force; a report.md edited since is refused again."""
    f = tmp_path / "notes.md"
    f.write_text("mine")
    assert main(["report", str(db), "--out", str(f)]) == 2
    assert "exists and is not a folder" in _err_line(capsys)
    assert f.read_text() == "mine"

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("my report")
    (out / "success_temporal_order.png").write_bytes(b"my figure")
    (out / "unrelated.txt").write_text("left alone")
    assert main(["report", str(db), "--out", str(out)]) == 2
    line = _err_line(capsys)
    assert "'report.md', 'success_temporal_order.png', which rnntheory did not write" in line
    assert "--force" in line
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "success_temporal_order.png",
                                                     "unrelated.txt"]
    assert (out / "report.md").read_text() == "my report"

    assert main(["report", str(db), "--out", str(out), "--force"]) == 0
    assert (out / "report.md").read_text().startswith("# Sweep report")
    assert (out / "success_temporal_order.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "unrelated.txt").read_text() == "left alone"
    assert main(["report", str(db), "--out", str(out), "--title", "Again"]) == 0
    assert (out / "report.md").read_text().startswith("# Again")
    with (out / "report.md").open("a") as fh:
        fh.write("my notes\n")
    capsys.readouterr()
    assert main(["report", str(db), "--out", str(out)]) == 2
    assert "'report.md', which rnntheory did not write (or which changed since)" in _err_line(capsys)
    assert (out / "report.md").read_text().endswith("my notes\n")


def test_render_figures_keeps_foreign_figures(db, tmp_path):
    """render_figures alone refuses a foreign curves_*.png (unchanged), overwrites it with
    force=True, and then replaces its own figures without force; the PNGs it returns are the
    ones on disk."""
    from rnntheory.experiments.report import load_rows, render_figures

    rows = load_rows(db)
    out = tmp_path / "figs"
    out.mkdir()
    mine = out / "curves_temporal_order_L20.png"
    mine.write_bytes(b"my plot")
    with pytest.raises(FileExistsError, match=r"'curves_temporal_order_L20.png'"):
        render_figures(rows, out)
    assert mine.read_bytes() == b"my plot" and sorted(p.name for p in out.iterdir()) == [mine.name]
    figs = render_figures(rows, out, force=True)
    again = render_figures(rows, out)
    assert figs == again and mine in figs.values()
    for path in figs.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"`prefix` must be text without a folder separator"):
        render_figures(rows, out, prefix="../p-")


def test_write_report_never_writes_through_a_link(db, tmp_path):
    """A symbolic link named report.md is refused; with force=True the link is replaced by
    the report and its target is unchanged."""
    target = tmp_path / "elsewhere.md"
    target.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").symlink_to(target)
    with pytest.raises(FileExistsError, match=r"'report.md', which rnntheory did not write"):
        write_report(db, out, figures=False)
    rep = write_report(db, out, figures=False, force=True)
    assert not rep.path.is_symlink() and target.read_text() == "precious"
    with pytest.raises(ValueError, match=r"`name` must be a plain file name"):
        write_report(db, out, figures=False, name="../x.md")
    with pytest.raises(ValueError, match=r"`out_dir` must name a folder, got ''"):
        write_report(db, "", figures=False)  # not silently the current folder


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: success_vs_length({}), "non-empty dict"),
        (lambda: success_vs_length({"a": ([1, 2], [0.5])}), "same non-zero length"),
        (lambda: success_vs_length({"a": ([1, 2], [0.5, 1.5])}), r"must lie in \[0, 1\]"),
        (lambda: training_curves({"a": ([np.nan], [1.0])}), "x must be finite"),
        (lambda: training_curves({"a": [1, 2, 3]}), "must be a pair"),
    ],
)
def test_plot_functions_reject_bad_input(call, match):
    """The new plotting functions raise ValueError naming the bad argument."""
    with pytest.raises(ValueError, match=match):
        call()


def _good_row(seed: int = 0) -> Row:
    return Row(str(seed), RunSpec("adding", 10, seed=seed), "done",
               {"solved": seed == 0, "final_error": 0.1 * seed})


_ROW_FUNCTIONS = ["flow_profiles", "gradient_table", "method_labels", "success_table",
                  "render_figures"]
_BAD_ROWS = [
    ([_good_row(), None], TypeError, r"`rows\[1\]` must be a store Row \(the record of a stored run\), got NoneType"),
    ([None], TypeError, r"`rows\[0\]` must be a store Row"),
    ("rows", TypeError, r"`rows` must be a sequence of store Rows .*got str"),
    (_good_row(), TypeError, r"`rows` must be a sequence of store Rows .*got Row"),
    (object(), TypeError, r"`rows` must be a sequence of store Rows .*got object"),
    ({"0": _good_row()}, TypeError, r"`rows` must be a sequence of store Rows .*got dict"),
    ([Row("0", "adding", "done")], TypeError, r"`rows\[0\]\.spec` must be a RunSpec, got str"),
    ([Row("0", RunSpec("adding", 10), "done", ["solved"])], TypeError,
     r"`rows\[0\]\.metrics` must be a dict, got list"),
    ([_good_row(), Row("1", RunSpec("adding", 10, seed=1), "running")], ValueError,
     r"`rows\[1\]` is not the record of a stored run: key '1', status 'running'"),
]


@pytest.mark.parametrize("fn", _ROW_FUNCTIONS)
@pytest.mark.parametrize(("rows", "exc", "match"), _BAD_ROWS)
def test_report_functions_reject_bad_rows(fn, rows, exc, match, tmp_path):
    """Each table/figure function refuses rows that are not stored-run records with the
    named error (the index of the bad entry); render_figures writes nothing first."""
    args = (rows, tmp_path / "figs") if fn == "render_figures" else (rows,)
    with pytest.raises(exc, match=match):
        getattr(rep_mod, fn)(*args)
    assert not (tmp_path / "figs").exists()


@pytest.mark.parametrize(
    ("source", "exc", "match"),
    [
        ([_good_row(), None], TypeError, r"`source\[1\]` must be a store Row"),
        ("", ValueError, r"`source` must be a non-empty path, got ''"),
        (b"r.db", TypeError, r"`source` must be a path, a Store or rows, got bytes"),
        (3, TypeError, r"`source` must be a path, a Store or rows, got int"),
    ],
)
def test_load_rows_rejects_bad_sources(source, exc, match):
    """load_rows names `source` (and a bad entry's index)."""
    with pytest.raises(exc, match=match):
        rep_mod.load_rows(source)


def test_load_rows_names_source_for_a_folder(tmp_path):
    """A folder given as the store is refused naming `source`, not the Store's `path`."""
    with pytest.raises(ValueError, match=r"`source` '.*' is a folder, not an rnntheory results store"):
        rep_mod.load_rows(tmp_path)


def test_tables_of_an_iterator_equal_those_of_the_list(db):
    """Rows given as a one-shot iterator give the same tables as the list (the rows are read
    once into a list, not consumed by the labelling pass), and the runs per group add up to
    the done rows counted from the raw store."""
    with Store(db, readonly=True) as s:
        rows = s.rows()
    n_done = sum(st == "done" for _, st, _ in _raw(db))
    for fn in (rep_mod.success_table, rep_mod.gradient_table):
        table = fn(iter(rows))
        assert table == fn(rows) and table
        assert sum(d["runs"] for d in table) == n_done
