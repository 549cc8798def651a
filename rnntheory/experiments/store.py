"""A resumable results store: one SQLite row per finished run.

The store is a single SQLite file (standard library :mod:`sqlite3`) with one
table, ``runs``:

==========  ==================================================================
column      meaning
==========  ==================================================================
key         primary key: :meth:`RunSpec.key`, the SHA-256 of the spec's
            canonical JSON
spec        the spec as canonical JSON
status      ``"done"`` or ``"failed"``
metrics     the metrics of :func:`~rnntheory.experiments.run_one` as JSON
            (``NULL`` for a failed run)
error       the error text of a failed run (``NULL`` when done)
started     when the run started, ISO 8601 UTC
finished    when it finished, ISO 8601 UTC
wall_s      wall time in seconds
version     ``rnntheory.__version__`` of the process that ran it
host        the host that ran it
==========  ==================================================================

A store is marked when it is created: ``PRAGMA application_id`` is
:data:`APPLICATION_ID` (``0x524E4E54``, "RNNT") and ``PRAGMA user_version`` is 1.
Opening a file checks it before anything is written: a folder, an empty file,
a file that is not SQLite, a truncated database, or another program's SQLite
database (another ``application_id``, or no ``runs`` and ``meta`` tables of
this schema) raises :class:`ValueError` and the file stays byte-identical; a
sweep never adopts such a file as its store. ``Store(path, readonly=True)``
opens the file read-only (SQLite ``mode=ro``, and ``immutable=1`` where a
read-only open could not otherwise proceed or would leave ``-wal``/``-shm``
files behind), so a report can read a store in a read-only folder or a file
with mode 0444 and never changes it.

A row is written in one transaction when its run is complete (the database is
in WAL mode with ``synchronous=FULL``), so a process killed at any moment
(``kill -9`` included) leaves every finished run recorded and no partial row;
a run in flight is simply absent and is run again on resume. Recording a key
again replaces its row: a failed run that succeeds on a retry becomes
``"done"``, and a key is never stored twice.

Examples
--------
>>> import tempfile, pathlib
>>> from rnntheory.experiments import RunSpec
>>> from rnntheory.experiments.store import Store
>>> spec = RunSpec("adding", 6, n_hidden=4, steps=2)
>>> with tempfile.TemporaryDirectory() as d:
...     with Store(pathlib.Path(d) / "r.db") as store:
...         store.record(spec, metrics={"final_error": 0.5, "solved": False})
...         keys = store.done_keys()
...         row = store.rows()[0]
>>> keys == {spec.key()}, row.status, row.metrics["final_error"], row.spec == spec
(True, 'done', 0.5, True)
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import socket
import sqlite3
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._outputs import json_default
from .._validation import check_bool, check_path, check_real
from .runspec import RunSpec

__all__ = ["APPLICATION_ID", "Row", "Store", "StoreSummary"]

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key      TEXT PRIMARY KEY,
    spec     TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    metrics  TEXT,
    error    TEXT,
    started  TEXT,
    finished TEXT,
    wall_s   REAL,
    version  TEXT NOT NULL,
    host     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = ("key", "spec", "status", "metrics", "error", "started", "finished", "wall_s",
            "version", "host")


#: ``PRAGMA application_id`` of a results store ("RNNT"), set when the store is created.
APPLICATION_ID = 0x524E4E54
_USER_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _where(path: Path) -> str:
    return repr(str(path))


def _probe(path: Path, arg: str = "path") -> bool:
    """Whether ``path`` exists; if it does, check from its first bytes (read with plain file
    I/O, nothing written) that it can be an rnntheory results store. Raises ValueError naming
    why not: a folder, not a regular file, empty, not SQLite, another program's SQLite
    database (its ``application_id``), or a truncated database."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ValueError(f"`{arg}` {_where(path)} cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"`{arg}` {_where(path)} is a folder, not an rnntheory results store")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"`{arg}` {_where(path)} is not a regular file, so not an rnntheory "
                         "results store")
    if st.st_size == 0:
        raise ValueError(f"`{arg}` {_where(path)} is an empty file, not an rnntheory results "
                         "store (it was left untouched; remove it or choose another path)")
    try:
        with path.open("rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise ValueError(f"`{arg}` {_where(path)} cannot be read: {exc.strerror or exc}") from exc
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise ValueError(f"`{arg}` {_where(path)} is not an rnntheory results store (not an "
                         f"SQLite database: it starts with {head[:16]!r})")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise ValueError(f"`{arg}` {_where(path)} is the SQLite database of another program "
                         f"(application_id {app_id:#010x}), not an rnntheory results store")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    n_pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and n_pages and st.st_size < page * n_pages:
        raise ValueError(f"`{arg}` {_where(path)} is a truncated SQLite database ({st.st_size} "
                         f"bytes of {page * n_pages}), not a readable rnntheory results store")
    return True


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{path.resolve().as_uri()}?{query}"


def _connect(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)


def _open_reader(path: Path, arg: str = "path") -> sqlite3.Connection:
    """A read-only connection to a validated store (nothing is ever written to the file).

    The file is opened ``mode=ro``; ``immutable=1`` is added when its folder is read-only,
    or when it is in WAL mode without a ``-wal`` file (no writer has it open, and a
    plain read-only open would leave ``-wal``/``-shm`` files behind), or when a plain
    read-only open fails (a WAL database in a folder where they cannot be created).
    """
    if not _probe(path, arg):
        raise FileNotFoundError(f"`{arg}`: results store not found: {_where(path)}")
    wal = Path(f"{path}-wal")
    with path.open("rb") as fh:
        wal_mode = fh.read(20)[18] == 2
    immutable = not os.access(path.parent, os.W_OK) or (wal_mode and not wal.exists())
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(_uri(path, mode="ro", **({"immutable": "1"} if immutable else {})))
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            if immutable:
                raise
            conn.close()
            conn = _connect(_uri(path, mode="ro", immutable="1"))
        conn.execute("PRAGMA query_only = ON")
        _validate(conn, path, arg)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error):
            raise ValueError(f"`{arg}` {_where(path)} is not an rnntheory results store "
                             f"(SQLite: {exc})") from exc
        raise
    return conn


def _validate(conn: sqlite3.Connection, path: Path, arg: str = "path") -> None:
    """Raise ValueError unless the open database is a results store of this schema."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id not in (0, APPLICATION_ID) or not {"runs", "meta"} <= tables:
            raise ValueError(
                f"`{arg}` {_where(path)} is an SQLite database of another program, not an "
                f"rnntheory results store (application_id {app_id:#010x}, tables "
                f"{sorted(tables)}); it was left untouched"
            )
        cols = tuple(r[1] for r in conn.execute("PRAGMA table_info(runs)"))
        got = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    except sqlite3.Error as exc:
        raise ValueError(f"`{arg}` {_where(path)} is not an rnntheory results store (SQLite: "
                         f"{exc})") from exc
    if got is None or got[0] != _SCHEMA_VERSION or cols != _COLUMNS:
        raise ValueError(
            f"`{arg}` {_where(path)} holds a `runs` table of another schema "
            f"(columns {cols}, schema {got[0] if got else None}); it was left untouched"
        )


def _open_writer(path: Path, arg: str = "path") -> sqlite3.Connection:
    """A read-write connection: an existing file is validated read-only first (a file that
    is not a store of this schema is never written to); a missing one is created, with
    its folders, and marked with :data:`APPLICATION_ID`."""
    if _probe(path, arg):
        _open_reader(path, arg).close()
        created = False
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"`{arg}` {_where(path)}: cannot create its folder: "
                             f"{exc.strerror or exc}") from exc
        created = True
    try:
        conn = _connect(_uri(path, mode="rw" if not created else "rwc"))
    except sqlite3.Error as exc:
        raise ValueError(f"`{arg}` {_where(path)} cannot be opened for writing: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if created:
            conn.executescript(
                f"BEGIN IMMEDIATE; PRAGMA application_id = {APPLICATION_ID}; "
                f"PRAGMA user_version = {_USER_VERSION}; {_SCHEMA} "
                f"INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', '{_SCHEMA_VERSION}'); "
                "COMMIT;"
            )
        _validate(conn, path, arg)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            # a store written before stores were marked: mark it (it passed validation)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {_USER_VERSION}")
    except sqlite3.Error as exc:
        conn.close()
        if created and path.is_file() and path.stat().st_size == 0:
            path.unlink()
        raise ValueError(f"`{arg}` {_where(path)} cannot be used as a results store: "
                         f"{exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _optional_text(name: str, value: Any) -> str | None:
    """``value`` as a plain ``str`` (``np.str_`` included) or ``None``, else a TypeError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str or None, got {type(value).__name__}")
    return str(value)


def _optional_timestamp(name: str, value: Any) -> str | None:
    """``value`` if it is an ISO 8601 date-time text (or ``None``), else a named error."""
    text = _optional_text(name, value)
    if text is not None:
        try:
            _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"`{name}` must be an ISO 8601 timestamp such as "
                             f"'2026-01-01T12:00:00+00:00', got {text!r}") from None
    return text


def _metrics_json(metrics: Any) -> tuple[str, dict[str, Any]]:
    """The canonical JSON text of a metrics mapping and its decoded form (NumPy scalars
    stored as the equal Python bool, int or float), or a named error."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"`metrics` must be a mapping of metric names to JSON-able values, "
                        f"got {type(metrics).__name__}")
    bad = [k for k in metrics if not isinstance(k, str)]
    if bad:
        raise TypeError(f"`metrics` names must be str, got {bad[0]!r} "
                        f"({type(bad[0]).__name__})")
    try:
        text = json.dumps(dict(metrics), sort_keys=True, allow_nan=False, default=json_default)
    except ValueError as exc:
        if "ircular" in str(exc):
            raise ValueError(f"`metrics` must not contain itself: {exc}") from exc
        raise ValueError(f"`metrics` must hold finite numbers only (use None): {exc}") from exc
    except (TypeError, RecursionError) as exc:
        raise TypeError(f"`metrics` must be JSON-able: {exc}") from exc
    return text, json.loads(text)


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string (seconds resolution).

    Examples
    --------
    >>> from rnntheory.experiments.store import now_utc
    >>> now_utc().endswith("+00:00")
    True
    """
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _version() -> str:
    from .._version import VERSION

    return VERSION


@dataclass(frozen=True)
class Row:
    """One run of the store, decoded.

    Attributes
    ----------
    key : str
        The spec's hash (primary key).
    spec : RunSpec
    status : {"done", "failed"}
    metrics : dict
        The run's metrics (empty for a failed run).
    error : str or None
    started, finished : str or None
        ISO 8601 UTC timestamps.
    wall_s : float or None
    version, host : str
    """

    key: str
    spec: RunSpec
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: str | None = None
    finished: str | None = None
    wall_s: float | None = None
    version: str = ""
    host: str = ""


@dataclass(frozen=True)
class StoreSummary:
    """Counts of a store: runs, done, failed, solved, and the library versions seen.

    Attributes
    ----------
    n_runs, n_done, n_failed, n_solved : int
    versions : tuple of str
    hosts : tuple of str
    wall_s : float
        Total wall time of the recorded runs.
    """

    n_runs: int
    n_done: int
    n_failed: int
    n_solved: int
    versions: tuple[str, ...]
    hosts: tuple[str, ...]
    wall_s: float

    def __str__(self) -> str:
        return (
            f"{self.n_runs} runs: {self.n_done} done ({self.n_solved} solved), "
            f"{self.n_failed} failed; {self.wall_s:.1f} s of runs; "
            f"versions {', '.join(self.versions) or '-'}; hosts {', '.join(self.hosts) or '-'}"
        )


class Store:
    """The SQLite results store of sweeps (see the module docstring for the schema).

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created (with its tables and folders) when missing,
        unless ``readonly``.
    readonly : bool
        Open an existing store read-only: nothing is written to the file (not
        even its journal mode), and :meth:`record` raises.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike, or ``readonly`` not a bool
        (a NumPy bool is one).
    FileNotFoundError
        If ``readonly`` and there is no file at ``path``.
    ValueError
        If the file exists but is not a results store of this schema (a folder,
        an empty or truncated file, a file that is not SQLite, another
        program's SQLite database); the file is left untouched. Also when the
        file cannot be read or created, or ``path`` is an empty string.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rnntheory.experiments.store import Store
    >>> with tempfile.TemporaryDirectory() as d, Store(pathlib.Path(d) / "r.db") as s:
    ...     print(s.summary())
    0 runs: 0 done (0 solved), 0 failed; 0.0 s of runs; versions -; hosts -
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self._open(path, readonly, "path")

    def _open(self, path: Any, readonly: Any, arg: str) -> None:
        self.path = check_path(arg, path)
        self.readonly = check_bool("readonly", readonly)
        self._conn = (_open_reader(self.path, arg) if self.readonly
                      else _open_writer(self.path, arg))

    @classmethod
    def _for_argument(cls, path: Any, arg: str, *, readonly: bool = False) -> Store:
        """``Store(path, readonly=readonly)`` whose errors name the caller's argument ``arg``
        (``db`` of a sweep, ``source`` of a report) instead of ``path``."""
        store = cls.__new__(cls)
        store._open(path, readonly, arg)
        return store

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ------------------------------------------------------------ writing
    def record(
        self,
        spec: RunSpec,
        *,
        status: str = "done",
        metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
        started: str | None = None,
        finished: str | None = None,
        wall_s: float | None = None,
        version: str | None = None,
        host: str | None = None,
    ) -> None:
        """Write the row of ``spec`` in one transaction (replacing an earlier row of its key).

        Parameters
        ----------
        spec : RunSpec
        status : {"done", "failed"}
        metrics : mapping, optional
            JSON-able metrics keyed by str; required when ``status == "done"``.
            NumPy scalars (``np.bool_``, ``np.int64``, ``np.float32``, ...) and
            real NumPy arrays are stored as the equal Python values (``True``,
            ``3``, ``0.5``, lists), so they read back as plain JSON values.
        error : str, optional
            The error text; required when ``status == "failed"``.
        started, finished : str, optional
            ISO 8601 timestamps (``finished`` defaults to now).
        wall_s : float, optional
            Seconds, finite and ``>= 0``. Defaults to ``metrics["wall_s"]``
            when that is a number (then checked the same way).
        version, host : str, optional
            Default to this process's ``rnntheory.__version__`` and host name.

        Raises
        ------
        TypeError
            If ``spec`` is not a :class:`RunSpec`, ``metrics`` is not a mapping
            with str keys or holds values that are not JSON-able, ``error``,
            ``started``, ``finished``, ``version`` or ``host`` is neither a str
            nor None, or ``wall_s`` is not a real number.
        ValueError
            On an unknown ``status``, a done run without metrics, a failed run
            without an error text, non-finite numbers in the metrics, a
            timestamp that is not ISO 8601, a ``wall_s`` that is negative or
            not finite (``10**400`` included), or a store opened with
            ``readonly=True``.
        OSError
            If SQLite cannot write the row (the disk is full, the database is
            locked for longer than a minute); nothing is written.
        """
        if not isinstance(spec, RunSpec):
            raise TypeError(f"`spec` must be a RunSpec, got {type(spec).__name__}")
        if not isinstance(status, str) or status not in ("done", "failed"):
            raise ValueError(f"`status` must be one of ('done', 'failed'), got {status!r}")
        error = _optional_text("error", error)
        started = _optional_timestamp("started", started)
        finished = _optional_timestamp("finished", finished)
        version = _optional_text("version", version)
        host = _optional_text("host", host)
        if wall_s is not None:
            wall_s = check_real("wall_s", wall_s, low=0.0)
        if status == "done" and metrics is None:
            raise ValueError("`metrics` must be given for a run with status 'done'")
        if status == "failed" and not error:
            raise ValueError(f"`error` must be a non-empty text for a failed run, got {error!r}")
        mjson = None
        if metrics is not None:
            mjson, plain = _metrics_json(metrics)
            w = plain.get("wall_s")
            if wall_s is None and isinstance(w, int | float) and not isinstance(w, bool):
                wall_s = check_real("metrics['wall_s']", w, low=0.0)
        values = (
            spec.key(), spec.canonical_json(), status, mjson, error, started,
            finished or now_utc(), wall_s, version or _version(), host or socket.gethostname(),
        )
        if self.readonly:
            raise ValueError(f"`{self!r}` was opened with readonly=True; it records nothing")
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")  # one transaction: the whole row or nothing
            try:
                conn.execute(
                    f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    values,
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise OSError(f"cannot record a run in the results store {_where(self.path)}: "
                          f"{exc}") from exc

    # ------------------------------------------------------------ reading
    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query; an SQLite error becomes a ValueError naming the store."""
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise ValueError(f"the results store {_where(self.path)} cannot be read: "
                             f"{exc}") from exc

    def done_keys(self) -> set[str]:
        """The keys of the runs recorded as done (a sweep skips these)."""
        return {r[0] for r in self._query("SELECT key FROM runs WHERE status = 'done'")}

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM runs")[0][0])

    def rows(self, status: str | None = None) -> list[Row]:
        """Every row (or those with ``status``), decoded, ordered by finishing time then key."""
        if status is not None and status not in ("done", "failed"):
            raise ValueError(f"`status` must be 'done', 'failed' or None, got {status!r}")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY finished, key"
        out = []
        for r in self._query(sql, args):
            d = dict(zip(_COLUMNS, r, strict=True))
            try:
                spec = RunSpec.from_dict(json.loads(d["spec"]))
                metrics = json.loads(d["metrics"]) if d["metrics"] else {}
                if not isinstance(metrics, dict):
                    raise TypeError(f"metrics must be a JSON object, got {type(metrics).__name__}")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the results store {_where(self.path)} has a row that cannot "
                                 f"be decoded (key {str(d['key'])[:12]!r}): {exc}") from exc
            out.append(Row(
                key=d["key"], spec=spec, status=d["status"],
                metrics=metrics, error=d["error"],
                started=d["started"], finished=d["finished"], wall_s=d["wall_s"],
                version=d["version"], host=d["host"],
            ))
        return out

    def records(self) -> list[dict[str, Any]]:
        """Flat records: one dict per row with the spec's fields, the scalar metrics
        (prefixed ``m_`` where a name would clash) and the row's columns; the
        curves are left out. ``remedies`` is written ``"clip+omega"`` (``"none"``
        for none) and each hyperparameter becomes a column ``hp_<name>``."""
        out = []
        for row in self.rows():
            d: dict[str, Any] = {"key": row.key, "status": row.status}
            spec = row.spec.as_dict()
            spec["remedies"] = "+".join(row.spec.remedies) or "none"
            hp = spec.pop("hparams")
            d.update(spec)
            d.update({f"hp_{k}": v for k, v in hp.items()})
            for k, v in row.metrics.items():
                if k == "curve" or isinstance(v, dict | list):
                    continue
                d[k if k not in d else f"m_{k}"] = v
            d.update({"error": row.error, "started": row.started, "finished": row.finished,
                      "wall_s": row.wall_s, "version": row.version, "host": row.host})
            out.append(d)
        return out

    def _columns(self, recs: list[dict[str, Any]]) -> list[str]:
        cols: list[str] = []
        for r in recs:
            for k in r:
                if k not in cols:
                    cols.append(k)
        return cols

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`records` as CSV (one line per run; empty cells for missing values).

        Parameters
        ----------
        path : str or os.PathLike
            The CSV file to write (replaced if it exists).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        TypeError
            If ``path`` is not a str or os.PathLike.
        ValueError
            If ``path`` is empty.
        """
        p = check_path("path", path)
        recs = self.records()
        with p.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self._columns(recs), restval="")
            w.writeheader()
            for r in recs:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return p

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`records` as Parquet (needs ``pyarrow``, or ``pandas`` with a Parquet engine).

        Parameters
        ----------
        path : str or os.PathLike
            The Parquet file to write.

        Raises
        ------
        TypeError
            If ``path`` is not a str or os.PathLike.
        ValueError
            If ``path`` is empty.
        ImportError
            If neither pyarrow nor pandas is installed (CSV, :meth:`to_csv`,
            needs nothing).
        """
        p = check_path("path", path)
        recs = self.records()
        cols = self._columns(recs)
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            try:
                import pandas as pd
            except ImportError as exc:
                raise ImportError(
                    "Store.to_parquet needs pyarrow (pip install pyarrow) or pandas with a "
                    "Parquet engine; Store.to_csv needs nothing"
                ) from exc
            pd.DataFrame.from_records(recs, columns=cols).to_parquet(p)
            return p
        table = pa.table({c: [r.get(c) for r in recs] for c in cols})
        pq.write_table(table, p)
        return p

    def summary(self) -> StoreSummary:
        """Counts of runs, done, failed and solved runs, versions and hosts."""
        rows = self.rows()
        return StoreSummary(
            n_runs=len(rows),
            n_done=sum(r.status == "done" for r in rows),
            n_failed=sum(r.status == "failed" for r in rows),
            n_solved=sum(bool(r.metrics.get("solved")) for r in rows if r.status == "done"),
            versions=tuple(sorted({r.version for r in rows})),
            hosts=tuple(sorted({r.host for r in rows})),
            wall_s=float(sum(r.wall_s or 0.0 for r in rows)),
        )
