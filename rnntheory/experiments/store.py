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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runspec import RunSpec

__all__ = ["Row", "Store", "StoreSummary"]

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
    from .. import __version__

    return __version__


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
        The database file; created (with its table) when missing.

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    ValueError
        If the file exists but is not a results store of this schema.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rnntheory.experiments.store import Store
    >>> with tempfile.TemporaryDirectory() as d, Store(pathlib.Path(d) / "r.db") as s:
    ...     print(s.summary())
    0 runs: 0 done (0 solved), 0 failed; 0.0 s of runs; versions -; hosts -
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__}")
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,)
            )
            got = self._conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            cols = tuple(r[1] for r in self._conn.execute("PRAGMA table_info(runs)"))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ValueError(f"`path` {str(path)!r} is not an rnntheory results store: {exc}") from exc
        if got is None or got[0] != _SCHEMA_VERSION or cols != _COLUMNS:
            self._conn.close()
            raise ValueError(
                f"`path` {str(path)!r} holds a `runs` table of another schema "
                f"(columns {cols}, schema {got[0] if got else None})"
            )

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
            JSON-able metrics; required when ``status == "done"``.
        error : str, optional
            The error text; required when ``status == "failed"``.
        started, finished : str, optional
            ISO 8601 timestamps (``finished`` defaults to now).
        wall_s : float, optional
            Defaults to ``metrics["wall_s"]`` when present.
        version, host : str, optional
            Default to this process's ``rnntheory.__version__`` and host name.

        Raises
        ------
        TypeError
            If ``spec`` is not a :class:`RunSpec` or the metrics are not JSON-able.
        ValueError
            On an unknown ``status``, a done run without metrics, a failed run
            without an error text, or non-finite numbers in the metrics.
        """
        if not isinstance(spec, RunSpec):
            raise TypeError(f"`spec` must be a RunSpec, got {type(spec).__name__}")
        if status not in ("done", "failed"):
            raise ValueError(f"`status` must be one of ('done', 'failed'), got {status!r}")
        if status == "done" and metrics is None:
            raise ValueError("`metrics` must be given for a run with status 'done'")
        if status == "failed" and not error:
            raise ValueError(f"`error` must be a non-empty text for a failed run, got {error!r}")
        mjson = None
        if metrics is not None:
            try:
                mjson = json.dumps(dict(metrics), sort_keys=True, allow_nan=False)
            except ValueError as exc:
                raise ValueError(f"`metrics` must hold finite numbers only (use None): {exc}") from exc
            except TypeError as exc:
                raise TypeError(f"`metrics` must be JSON-able: {exc}") from exc
            if wall_s is None and isinstance(metrics.get("wall_s"), int | float):
                wall_s = float(metrics["wall_s"])
        values = (
            spec.key(), spec.canonical_json(), status, mjson, error, started,
            finished or now_utc(), wall_s, version or _version(), host or socket.gethostname(),
        )
        conn = self._conn
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

    # ------------------------------------------------------------ reading
    def done_keys(self) -> set[str]:
        """The keys of the runs recorded as done (a sweep skips these)."""
        return {r[0] for r in self._conn.execute("SELECT key FROM runs WHERE status = 'done'")}

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

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
        for r in self._conn.execute(sql, args):
            d = dict(zip(_COLUMNS, r, strict=True))
            out.append(Row(
                key=d["key"], spec=RunSpec.from_dict(json.loads(d["spec"])), status=d["status"],
                metrics=json.loads(d["metrics"]) if d["metrics"] else {}, error=d["error"],
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

        Returns
        -------
        pathlib.Path
            The file written.
        """
        recs = self.records()
        p = Path(path)
        with p.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self._columns(recs), restval="")
            w.writeheader()
            for r in recs:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return p

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`records` as Parquet (needs ``pyarrow``, or ``pandas`` with a Parquet engine).

        Raises
        ------
        ImportError
            If neither pyarrow nor pandas is installed (CSV, :meth:`to_csv`,
            needs nothing).
        """
        recs = self.records()
        cols = self._columns(recs)
        p = Path(path)
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
