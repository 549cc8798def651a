"""The SQLite results store: schema, transactions, replacement, exports, summary."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from rnntheory import __version__
from rnntheory.experiments import RunSpec
from rnntheory.experiments import store as store_mod
from rnntheory.experiments.store import APPLICATION_ID, Store

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


def _self_referring() -> dict:
    d: dict = {"x": 1.0}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"status": "running", "metrics": {}}, ValueError, "`status` must be one of"),
        ({"status": "done"}, ValueError, "`metrics` must be given"),
        ({"status": "failed"}, ValueError, "`error` must be a non-empty text"),
        ({"metrics": {"x": float("nan")}}, ValueError, "finite numbers only"),
        ({"metrics": {"x": object()}}, TypeError, "JSON-able"),
        ({"metrics": {"x": np.float64("nan")}}, ValueError, "finite numbers only"),
        ({"metrics": {"x": np.float32("inf")}}, ValueError, "finite numbers only"),
        ({"metrics": {"x": np.complex128(1j)}}, TypeError, "JSON-able"),
        ({"metrics": {"x": np.array(["a"])}}, TypeError, "JSON-able"),
        ({"metrics": ["a", "b"]}, TypeError, r"`metrics` must be a mapping of metric names"),
        ({"metrics": {1: 2.0}}, TypeError, r"`metrics` names must be str, got 1 \(int\)"),
        ({"metrics": _self_referring()}, ValueError, r"`metrics` must not contain itself"),
        ({"metrics": {"wall_s": 10**400}}, ValueError,
         r"`metrics\['wall_s'\]` must be finite \(within float64's range\)"),
        ({"metrics": {"wall_s": -2.0}}, ValueError, r"`metrics\['wall_s'\]` must be >= 0"),
        ({"status": ["done"], "metrics": {}}, ValueError, "`status` must be one of"),
        ({"metrics": {}, "error": ["a"]}, TypeError, r"`error` must be a str or None, got list"),
        ({"status": "failed", "error": b"boom"}, TypeError, r"`error` must be a str or None"),
        ({"metrics": {}, "started": ["2026-01-01"]}, TypeError, r"`started` must be a str or None"),
        ({"metrics": {}, "started": "yesterday"}, ValueError,
         r"`started` must be an ISO 8601 timestamp.*'yesterday'"),
        ({"metrics": {}, "finished": ["2026-01-01"]}, TypeError, r"`finished` must be a str or None"),
        ({"metrics": {}, "finished": " 2026-01-01T00:00:00 "}, ValueError,
         r"`finished` must be an ISO 8601 timestamp"),
        ({"metrics": {}, "wall_s": 10**400}, ValueError,
         r"`wall_s` must be finite \(within float64's range\)"),
        ({"metrics": {}, "wall_s": float("inf")}, ValueError, r"`wall_s` must be finite"),
        ({"metrics": {}, "wall_s": -1.0}, ValueError, r"`wall_s` must be >= 0"),
        ({"metrics": {}, "wall_s": True}, TypeError, r"`wall_s` must be a real number"),
        ({"metrics": {}, "wall_s": "1.0"}, TypeError, r"`wall_s` must be a real number"),
        ({"metrics": {}, "version": ["0.1.0"]}, TypeError, r"`version` must be a str or None"),
        ({"metrics": {}, "host": ["h"]}, TypeError, r"`host` must be a str or None, got list"),
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


def test_numpy_scalars_are_stored_as_the_equal_python_values(tmp_path):
    """Metrics holding NumPy scalars and arrays (np.bool_, np.int64, np.float32, ...) are
    stored as the same JSON text, byte for byte, as the equal plain Python values, and read
    back (raw SQL and rows()) as Python bool, int, float and lists; a NumPy wall_s in the
    metrics fills the wall_s column, and the solved np.bool_ counts in the summary."""
    plain = {"solved": True, "steps_to_solve": 7, "final_error": 0.25, "wall_s": 2.5,
             "curve": {"eval_steps": [0, 10, 20], "eval_error": [0.5, 0.125, 0.0]},
             "flow": {"bound_slope": -0.75, "t": [0.0, 1.0]}, "n_clips": 0}
    numpy = {"solved": np.bool_(True), "steps_to_solve": np.int64(7),
             "final_error": np.float32(0.25), "wall_s": np.float32(2.5),
             "curve": {"eval_steps": np.arange(0, 30, 10, dtype=np.int32),
                       "eval_error": np.array([0.5, 0.125, 0.0])},
             "flow": {"bound_slope": np.float16(-0.75), "t": np.array([0.0, 1.0], np.float32)},
             "n_clips": np.uint8(0)}
    a, b = RunSpec("adding", 10, seed=0), RunSpec("adding", 10, seed=1)
    with Store(tmp_path / "r.db") as s:
        s.record(a, metrics=plain)
        s.record(b, metrics=numpy, wall_s=None)
        rows = {r.key: r for r in s.rows()}
        summary = s.summary()
    con = sqlite3.connect(tmp_path / "r.db")
    raw = dict(con.execute("SELECT key, metrics FROM runs").fetchall())
    walls = dict(con.execute("SELECT key, wall_s FROM runs").fetchall())
    con.close()
    assert raw[b.key()] == raw[a.key()] == json.dumps(plain, sort_keys=True)
    back = json.loads(raw[b.key()])
    assert type(back["solved"]) is bool and type(back["steps_to_solve"]) is int
    assert type(back["final_error"]) is float and back["curve"]["eval_steps"] == [0, 10, 20]
    assert rows[b.key()].metrics == plain and walls[b.key()] == 2.5
    assert summary.n_solved == 2 and summary.wall_s == 5.0


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda d, s: Store(""), ValueError, r"`path` must be a non-empty path, got ''"),
        (lambda d, s: Store(b"r.db"), TypeError, r"`path` must be a str or os\.PathLike, got bytes"),
        (lambda d, s: Store(d / "n.db", readonly=1), TypeError, r"`readonly` must be a bool, got 1"),
        (lambda d, s: s.to_csv(["a"]), TypeError, r"`path` must be a str or os\.PathLike, got list"),
        (lambda d, s: s.to_csv(""), ValueError, r"`path` must be a non-empty path"),
        (lambda d, s: s.to_parquet(3), TypeError, r"`path` must be a str or os\.PathLike, got int"),
    ],
)
def test_bad_paths_and_flags_are_named(store, tmp_path, call, exc, match):
    """A path that is not a str/PathLike, an empty path and a non-bool ``readonly`` raise
    the named error and write nothing."""
    before = _listing(tmp_path)
    with pytest.raises(exc, match=match):
        call(tmp_path, store)
    assert _listing(tmp_path) == before


def test_readonly_accepts_a_numpy_bool(store):
    """Store(path, readonly=np.bool_(True)) is a reader: same rows as the writer, and
    record() is refused."""
    with Store(store.path, readonly=np.bool_(True)) as r:
        assert r.readonly is True
        assert [(x.key, x.metrics) for x in r.rows()] == [(x.key, x.metrics) for x in store.rows()]
        with pytest.raises(ValueError, match="opened with readonly=True"):
            r.record(SPECS[0], metrics={"x": 1})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _sqlite(path: Path, *sql: str, wal: bool = False) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
    for q in sql:
        con.execute(q)
    con.close()


def _old_store(path: Path) -> None:
    """A store as the first release wrote it: same schema, no application_id."""
    _sqlite(path, *[q for q in store_mod._SCHEMA.split(";") if q.strip()],
            "INSERT INTO meta (name, value) VALUES ('schema', '1')", wal=True)


def _foreign(kind: str, path: Path) -> str:
    """Write a file that is not a results store; return the expected error's pattern."""
    if kind == "app-db":  # another program's database, rollback journal
        _sqlite(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
                "INSERT INTO notes (body) VALUES ('keep me')")
        return r"SQLite database of another program.*tables \['notes'\]"
    if kind == "app-db-wal":  # another program's database in WAL mode
        _sqlite(path, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)", wal=True)
        return r"SQLite database of another program"
    if kind == "app-id":  # another program that marks its files
        _sqlite(path, "PRAGMA application_id = 1234", "CREATE TABLE runs (x)",
                "CREATE TABLE meta (name, value)")
        return r"SQLite database of another program \(application_id 0x000004d2\)"
    if kind == "other-runs":  # a `runs` table of another schema, with our meta row
        _sqlite(path, "CREATE TABLE runs (id INTEGER)", "CREATE TABLE meta (name, value)",
                "INSERT INTO meta VALUES ('schema', '1')")
        return r"holds a `runs` table of another schema"
    if kind == "text":
        path.write_text("key,status\nabc,done\n" * 20)
        return r"not an SQLite database: it starts with b'key,status"
    if kind == "empty":
        path.write_bytes(b"")
        return r"is an empty file"
    if kind == "truncated":
        with Store(path) as s:
            for i in range(60):
                s.record(RunSpec("adding", 10, seed=i), metrics={"pad": "x" * 500})
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return r"is a truncated SQLite database"
    if kind == "header-only":
        path.write_bytes(b"SQLite format 3\x00" + bytes(40))
        return r"not an SQLite database"
    raise AssertionError(kind)


FOREIGN = ["app-db", "app-db-wal", "app-id", "other-runs", "text", "empty", "truncated",
           "header-only"]


@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_file_is_refused_and_left_byte_identical(tmp_path, kind, readonly):
    """Another program's SQLite database (rollback or WAL journal, with or without its own
    application_id), a `runs` table of another schema, a text file, an empty file, a
    truncated store and a 40-byte stub: Store(path) (a writer, as a sweep) and
    Store(path, readonly=True) (a report) both raise ValueError naming why, the file's
    SHA-256 is unchanged, and no journal, -wal or -shm file is left beside it."""
    path = tmp_path / "results.db"
    match = _foreign(kind, path)
    before, names = _sha(path), _listing(tmp_path)
    with pytest.raises(ValueError, match=match):
        Store(path, readonly=readonly)
    assert _sha(path) == before
    assert _listing(tmp_path) == names


def test_a_folder_or_missing_file(tmp_path):
    """A folder is refused by name; a missing file is created (with its folders) by a writer
    and is FileNotFoundError for a reader."""
    with pytest.raises(ValueError, match=r"is a folder, not an rnntheory results store"):
        Store(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"results store not found"):
        Store(tmp_path / "none.db", readonly=True)
    assert not (tmp_path / "none.db").exists()
    with Store(tmp_path / "a" / "b" / "r.db") as s:
        assert len(s) == 0
    with pytest.raises(TypeError, match=r"`path` must be a str or os\.PathLike"):
        Store(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`readonly` must be a bool"):
        Store(tmp_path / "r.db", readonly="yes")  # type: ignore[arg-type]


def test_a_new_store_is_marked(tmp_path):
    """A new store carries application_id 0x524E4E54 ("RNNT" at bytes 68-71 of the SQLite
    header, read here from the raw file) and user_version 1."""
    path = tmp_path / "r.db"
    with Store(path) as s:
        s.record(SPECS[0], metrics={"x": 1})
    head = path.read_bytes()[:100]
    assert head[68:72] == b"RNNT" and int.from_bytes(head[68:72], "big") == APPLICATION_ID
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


def test_an_unmarked_store_of_the_first_release(tmp_path):
    """A store of this schema without the mark is read unchanged by a reader and adopted by
    a writer, which marks it; its rows survive."""
    path = tmp_path / "old.db"
    _old_store(path)
    before = _sha(path)
    with Store(path, readonly=True) as s:
        assert len(s) == 0
    assert _sha(path) == before
    with Store(path) as s:
        s.record(SPECS[0], metrics={"x": 2})
    with Store(path, readonly=True) as s:
        assert [r.metrics for r in s.rows()] == [{"x": 2}]
    assert path.read_bytes()[68:72] == b"RNNT"


def test_a_reader_never_writes(store, tmp_path):
    """Store(readonly=True) on a 0444 file reads every row (equal to the raw SQL), refuses
    record(), its connection refuses SQL writes, and the file is byte-identical with no
    -wal/-shm left behind. (The tests run as root, which ignores 0444; the read-only open is
    what keeps the file unchanged, and the refused SQL write shows it is in force.)"""
    store.close()
    path = store.path
    os.chmod(path, 0o444)
    before, names = _sha(path), _listing(tmp_path)
    try:
        with Store(path, readonly=True) as r:
            assert r.readonly
            rows = {x.key: (x.status, x.metrics) for x in r.rows()}
            with pytest.raises(ValueError, match=r"opened with readonly=True"):
                r.record(SPECS[0], metrics={"x": 1})
            with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
                r._conn.execute("DELETE FROM runs")
    finally:
        os.chmod(path, 0o644)
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)  # leaves no files
    raw = {k: (st, json.loads(m) if m else {}) for k, st, m in
           con.execute("SELECT key, status, metrics FROM runs")}
    con.close()
    assert rows == raw and len(rows) == len(SPECS)
    assert _sha(path) == before and _listing(tmp_path) == names


def test_a_reader_in_a_read_only_folder(store, tmp_path, monkeypatch):
    """When the folder is read-only (simulated through os.access: root can write anywhere)
    the reader opens the file immutable and still reads every row."""
    store.close()
    real = os.access
    monkeypatch.setattr(store_mod.os, "access",
                        lambda p, mode, **kw: False if mode == os.W_OK else real(p, mode, **kw))
    seen = []
    real_connect = store_mod._connect
    monkeypatch.setattr(store_mod, "_connect", lambda uri: seen.append(uri) or real_connect(uri))
    before = _sha(store.path)
    with Store(store.path, readonly=True) as r:
        assert len(r.rows()) == len(SPECS)
    assert seen and all("mode=ro" in u and "immutable=1" in u for u in seen)
    assert _sha(store.path) == before


def test_a_reader_sees_a_live_writer(tmp_path):
    """While a sweep holds the store open (its -wal file exists), a reader opens it mode=ro
    without immutable and sees every committed row, the ones still in the WAL included."""
    path = tmp_path / "r.db"
    with Store(path) as w:
        for i, spec in enumerate(SPECS[:4]):
            w.record(spec, metrics={"i": i})
        assert Path(f"{path}-wal").exists()
        with Store(path, readonly=True) as r:
            assert sorted(x.metrics["i"] for x in r.rows()) == [0, 1, 2, 3]
            w.record(SPECS[4], metrics={"i": 4})
            assert len(r) == 5


def test_sqlite_errors_do_not_leak(store, tmp_path):
    """A locked database on record() is an OSError naming the store (nothing written); a row
    edited by hand into invalid JSON is a ValueError naming its key."""
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store._conn.execute("PRAGMA busy_timeout = 20")
    n = len(store)
    with pytest.raises(OSError, match=r"cannot record a run in the results store .*locked"):
        store.record(RunSpec("copy", 5), metrics={})
    other.execute("ROLLBACK")
    assert len(store) == n
    key = SPECS[0].key()
    other.execute("UPDATE runs SET spec = '{not json' WHERE key = ?", (key,))
    other.close()
    with pytest.raises(ValueError, match=rf"row that cannot be decoded \(key '{key[:12]}'\)"):
        store.rows()


def test_copying_a_store_keeps_it_a_store(store, tmp_path):
    """A closed store copied elsewhere (no -wal) opens read-only with the same rows."""
    store.close()
    dst = tmp_path / "copy" / "r.db"
    dst.parent.mkdir()
    shutil.copyfile(store.path, dst)
    with Store(dst, readonly=True) as r:
        assert {x.key for x in r.rows()} == {s.key() for s in SPECS}
    assert _listing(dst.parent) == ["r.db"]


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
