"""The SQLite results store: schema, transactions, replacement, exports, summary."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys

import pytest

from rnntheory import __version__
from rnntheory.experiments import RunSpec
from rnntheory.experiments.store import Store

SPECS = [RunSpec("adding", 10, seed=s, remedies=r) for s in range(3) for r in ("", "clip")]


def _metrics(i: int) -> dict:
    return {"final_error": i / 10, "solved": i % 2 == 0, "steps_to_solve": None if i % 2 else 5 * i,
            "wall_s": 0.5 + i, "curve": {"eval_steps": [1, 2], "eval_error": [0.5, None]}}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "r.db") as s:
        for i, spec in enumerate(SPECS):
            if i == 4:
                s.record(spec, status="failed", error="ValueError: bad")
            else:
                s.record(spec, metrics=_metrics(i), started="2026-01-01T00:00:00+00:00")
        yield s


def test_rows_round_trip_against_raw_sql(store):
    """Every recorded run is one row whose raw columns (read with sqlite3 directly) hold the
    spec's key and canonical JSON, the status, the metrics JSON, the version and wall time."""
    con = sqlite3.connect(store.path)
    raw = {r[0]: r for r in con.execute(
        "SELECT key, spec, status, metrics, error, wall_s, version FROM runs")}
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert len(raw) == len(SPECS)
    for i, spec in enumerate(SPECS):
        _, spec_json, status, metrics, error, wall_s, version = raw[spec.key()]
        assert RunSpec.from_dict(json.loads(spec_json)) == spec
        assert version == __version__
        if i == 4:
            assert (status, metrics, error, wall_s) == ("failed", None, "ValueError: bad", None)
        else:
            assert status == "done" and json.loads(metrics) == _metrics(i)
            assert wall_s == _metrics(i)["wall_s"]
    rows = {r.key: r for r in store.rows()}
    assert {k: r.metrics for k, r in rows.items()} == {
        s.key(): ({} if i == 4 else _metrics(i)) for i, s in enumerate(SPECS)}
    assert store.done_keys() == {s.key() for i, s in enumerate(SPECS) if i != 4}


def test_recording_a_key_again_replaces_its_row(store):
    """A failed run recorded later as done leaves one row, now done (no duplicate key)."""
    store.record(SPECS[4], metrics={"solved": True})
    assert len(store) == len(SPECS)
    assert SPECS[4].key() in store.done_keys()
    (row,) = [r for r in store.rows() if r.key == SPECS[4].key()]
    assert row.status == "done" and row.error is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"status": "running", "metrics": {}}, ValueError, "`status` must be one of"),
        ({"status": "done"}, ValueError, "`metrics` must be given"),
        ({"status": "failed"}, ValueError, "`error` must be a non-empty text"),
        ({"metrics": {"x": float("nan")}}, ValueError, "finite numbers only"),
        ({"metrics": {"x": object()}}, TypeError, "JSON-able"),
    ],
)
def test_bad_records_write_nothing(store, kwargs, exc, match):
    """A rejected record raises the named error and leaves the table unchanged."""
    before = len(store)
    with pytest.raises(exc, match=match):
        store.record(RunSpec("copy", 5), **kwargs)
    assert len(store) == before
    with pytest.raises(TypeError, match="`spec` must be a RunSpec"):
        store.record({"task": "copy"}, metrics={})  # type: ignore[arg-type]


def test_not_a_store(tmp_path):
    """A file that is not SQLite, or a database with another `runs` table, is refused."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="is not an rnntheory results store"):
        Store(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE runs (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="another schema"):
        Store(other)
    with pytest.raises(TypeError, match=r"`path` must be a str or os\.PathLike"):
        Store(3)  # type: ignore[arg-type]


def test_to_csv_matches_the_rows(store, tmp_path):
    """The CSV has one line per run; its key, status, task, seed, remedies and final_error
    columns equal the recorded values (missing values as empty cells); no curve column."""
    path = store.to_csv(tmp_path / "r.csv")
    with path.open(newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == len(SPECS)
    by_key = {line["key"]: line for line in lines}
    for i, spec in enumerate(SPECS):
        line = by_key[spec.key()]
        assert line["task"] == "adding" and int(line["seed"]) == spec.seed
        assert line["remedies"] == ("clip" if spec.remedies else "none")
        assert line["status"] == ("failed" if i == 4 else "done")
        assert line["final_error"] == ("" if i == 4 else str(_metrics(i)["final_error"]))
        assert "curve" not in line


def test_to_parquet_without_an_engine_is_a_clear_error(store, tmp_path, monkeypatch):
    """With neither pyarrow nor pandas importable, to_parquet raises ImportError naming both."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"needs pyarrow .* or pandas"):
        store.to_parquet(tmp_path / "r.parquet")


def test_summary_counts_match_raw_sql(store):
    """summary() counts = COUNT(*) by status, and solved = done rows whose metrics say so."""
    con = sqlite3.connect(store.path)
    rows = con.execute("SELECT status, metrics, wall_s FROM runs").fetchall()
    con.close()
    s = store.summary()
    assert s.n_runs == len(rows)
    assert s.n_done == sum(st == "done" for st, _, _ in rows)
    assert s.n_failed == sum(st == "failed" for st, _, _ in rows)
    assert s.n_solved == sum(json.loads(m)["solved"] for st, m, _ in rows if st == "done")
    assert s.wall_s == pytest.approx(sum(w or 0.0 for _, _, w in rows))
    assert s.versions == (__version__,)
    assert f"{s.n_runs} runs" in str(s)


def test_a_second_connection_sees_committed_rows_only(tmp_path):
    """Rows are committed one transaction each: a second connection opened while a store is
    open sees exactly the rows recorded so far (WAL: readers do not block the writer)."""
    with Store(tmp_path / "r.db") as a:
        reader = sqlite3.connect(tmp_path / "r.db")
        for i, spec in enumerate(SPECS[:3]):
            a.record(spec, metrics={"i": i})
            assert reader.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == i + 1
        reader.close()
