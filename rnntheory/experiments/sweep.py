"""Sweeps: a grid of runs executed on Dask, recorded in a resumable SQLite store.

A sweep is a TOML file (read with the standard library's :mod:`tomllib`)::

    [sweep]
    db = "results.db"        # the store, relative to the TOML file
    workers = 2              # local Dask workers
    scheduler = "processes"  # "processes" | "threads" | "sync" | "tcp://HOST:PORT"

    [grid]                   # any RunSpec field; a list is an axis, a scalar is fixed
    task = "temporal_order"
    length = [50, 100]
    remedies = ["none", "clip", "clip+omega"]   # each entry one remedy set
    seed = [0, 1, 2, 3, 4]
    steps = 2000

    [grid.hparams]           # hyperparameters; a list is an axis here too
    clip = 1.0
    omega = [2.0, 4.0]

The grid is the Cartesian product of its axes (in the order the file lists
them, the last axis varying fastest). A hyperparameter that belongs to a
remedy a run does not use is dropped from that run (so the runs without
``"omega"`` above are not doubled by the ``omega`` axis). :func:`run_sweep`
skips every run whose key is already recorded as done in the store and
executes the rest on Dask, recording each result in the driver as it
completes; only the driver writes to SQLite.

Schedulers:

* ``"processes"`` (the default): a :class:`dask.distributed.LocalCluster` of
  ``workers`` single-threaded worker processes. The Numba kernels are compiled
  without ``nogil=True`` (they hold the GIL), so processes are what gives
  parallel speed-up on one machine.
* ``"threads"``: an in-process :class:`~dask.distributed.LocalCluster` with
  ``workers`` threads; starts in about a second, runs hold the GIL in turn.
* ``"sync"``: no Dask; the runs execute one after the other in the driver.
* an address such as ``"tcp://10.0.0.5:8786"``: a
  :class:`dask.distributed.Client` connects to a running cluster (started
  with ``dask scheduler`` and ``dask worker``; the workers need rnntheory
  installed, in the same version).

A failed run (an exception) is recorded with status ``"failed"`` and its
error text; the sweep carries on, exits with status 1, and the next
invocation retries the failed runs (only ``"done"`` runs are skipped).
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._validation import check_choice, check_int
from .runspec import _OWNER, RunSpec, run_one
from .store import Store, now_utc

__all__ = [
    "SCHEDULERS",
    "SweepConfig",
    "SweepResult",
    "execute",
    "expand_grid",
    "load_config",
    "run_sweep",
]

SCHEDULERS = ("processes", "threads", "sync")
_SPEC_FIELDS = tuple(f.name for f in fields(RunSpec))


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep file.

    Attributes
    ----------
    specs : tuple of RunSpec
        The grid, expanded (duplicates removed, first occurrence kept).
    db : pathlib.Path
        The results store.
    workers : int
        Local Dask workers.
    scheduler : str
        ``"processes"``, ``"threads"``, ``"sync"`` or a scheduler address.
    source : pathlib.Path or None
        The TOML file.
    """

    specs: tuple[RunSpec, ...]
    db: Path
    workers: int = 2
    scheduler: str = "processes"
    source: Path | None = None


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    total : int
        Runs in the grid.
    skipped : int
        Runs already done in the store before this invocation.
    done, failed : int
        Runs of this invocation that finished, or raised.
    failed_keys : list of str
    wall_s : float
    """

    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    failed_keys: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether no run of this invocation failed."""
        return self.failed == 0

    def __str__(self) -> str:
        return (
            f"{self.total} runs in the grid: {self.skipped} already done, {self.done} done now, "
            f"{self.failed} failed ({self.wall_s:.1f} s)"
        )


def _axis(name: str, value: Any) -> list[Any]:
    """The values of one grid entry: a list is an axis, anything else a fixed value."""
    if name == "remedies":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)  # each string one remedy set, "clip+omega"
        if isinstance(value, list) and all(isinstance(v, list) for v in value):
            return [tuple(v) for v in value]
        raise ValueError(
            "`grid.remedies` must be a string (\"clip+omega\"), a list of such strings, or a "
            f"list of lists of remedy names, got {value!r}"
        )
    if isinstance(value, list):
        if not value:
            raise ValueError(f"`grid.{name}` is an empty axis")
        return list(value)
    return [value]


def expand_grid(grid: Mapping[str, Any]) -> list[RunSpec]:
    """The :class:`RunSpec` of every point of a grid (a Cartesian product).

    Parameters
    ----------
    grid : mapping
        RunSpec field → value or list of values (an axis); ``remedies`` takes
        strings such as ``"clip+omega"`` (``"none"`` for none) or lists of
        names; ``hparams`` is a mapping name → value or list of values. A
        hyperparameter of a remedy that a point does not use is dropped from
        that point. Duplicate points are kept once.

    Returns
    -------
    list of RunSpec
        In the order of the axes, the last one varying fastest.

    Raises
    ------
    ValueError
        On a key that is not a RunSpec field, an empty axis, a missing
        ``task`` or ``length``, or a point that is not a valid RunSpec (the
        message names the point).

    Examples
    --------
    >>> from rnntheory.experiments.sweep import expand_grid
    >>> specs = expand_grid({"task": "adding", "length": [10, 20],
    ...                      "remedies": ["none", "clip"], "hparams": {"clip": [0.5, 1.0]}})
    >>> [(s.length, s.remedies, s.hparams) for s in specs]  # doctest: +NORMALIZE_WHITESPACE
    [(10, (), ()), (10, ('clip',), (('clip', 0.5),)), (10, ('clip',), (('clip', 1.0),)),
     (20, (), ()), (20, ('clip',), (('clip', 0.5),)), (20, ('clip',), (('clip', 1.0),))]
    """
    if not isinstance(grid, Mapping):
        raise TypeError(f"`grid` must be a mapping of RunSpec fields, got {type(grid).__name__}")
    unknown = [k for k in grid if k not in _SPEC_FIELDS]
    if unknown:
        raise ValueError(f"`grid` keys must be RunSpec fields {_SPEC_FIELDS}, got {unknown}")
    for need in ("task", "length"):
        if need not in grid:
            raise ValueError(f"`grid` must give {need!r}")
    names = [k for k in grid if k != "hparams"]
    axes = [_axis(k, grid[k]) for k in names]
    hp = grid.get("hparams", {})
    if not isinstance(hp, Mapping):
        raise ValueError(f"`grid.hparams` must be a table name → value(s), got {hp!r}")
    hp_names = list(hp)
    hp_axes = [_axis(f"hparams.{k}", hp[k]) for k in hp_names]
    out: list[RunSpec] = []
    seen: set[str] = set()
    for point in itertools.product(*axes, *hp_axes):
        kw = dict(zip(names, point[: len(names)], strict=True))
        hps = dict(zip(hp_names, point[len(names):], strict=True))
        rem = kw.get("remedies", ())
        active = set(rem.split("+") if isinstance(rem, str) else rem)
        opt = kw.get("optimizer", "sgd")
        cell = kw.get("cell", "rnn")
        drop = [k for k in hps if (k in _OWNER and _OWNER[k] not in active)
                or (k == "momentum" and opt not in ("momentum", "nesterov"))
                or (k == "forget_bias" and cell != "lstm")
                or (k.startswith("hf_") and opt != "hf")]
        for k in drop:
            del hps[k]
        try:
            spec = RunSpec(**kw, hparams=tuple(hps.items()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"grid point {kw | {'hparams': hps}}: {exc}") from exc
        key = spec.key()
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def load_config(path: str | os.PathLike[str]) -> SweepConfig:
    """Read a sweep TOML file (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    SweepConfig
        ``db`` resolved relative to the file's folder (default ``results.db``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        On invalid TOML, an unknown table or key, or an invalid grid.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`path`: sweep file not found: {str(path)!r}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"`path` {str(path)!r} is not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"sweep", "grid"})
    if extra:
        raise ValueError(f"sweep file {str(path)!r}: unknown tables {extra} (expected [sweep], [grid])")
    sw = data.get("sweep", {})
    bad = sorted(set(sw) - {"db", "workers", "scheduler"})
    if bad:
        raise ValueError(f"sweep file {str(path)!r}: unknown [sweep] keys {bad}")
    if "grid" not in data:
        raise ValueError(f"sweep file {str(path)!r} has no [grid] table")
    db = Path(sw.get("db", "results.db"))
    if not db.is_absolute():
        db = p.parent / db
    workers = check_int("sweep.workers", sw.get("workers", 2), minimum=1)
    scheduler = _check_scheduler(sw.get("scheduler", "processes"))
    return SweepConfig(tuple(expand_grid(data["grid"])), db, workers, scheduler, p)


def _check_scheduler(value: Any) -> str:
    if isinstance(value, str) and "://" in value:
        return value
    return check_choice("scheduler", value, SCHEDULERS)


def execute(spec: RunSpec) -> dict[str, Any]:
    """Run one spec and return everything the store records about it (never raises).

    Runs :func:`~rnntheory.experiments.runspec.run_one` with one BLAS thread
    and one rnntheory thread (parallelism comes from the workers). An exception becomes a failed
    result carrying its traceback.

    Parameters
    ----------
    spec : RunSpec

    Returns
    -------
    dict
        ``status`` (``"done"`` or ``"failed"``), ``metrics`` or ``error``,
        ``started``, ``finished``, ``wall_s``, ``host``, ``version``.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.sweep import execute
    >>> r = execute(RunSpec("adding", 6, n_hidden=4, steps=3, batch_size=2, eval_size=4))
    >>> r["status"], r["metrics"]["steps_done"]
    ('done', 3)
    """
    from threadpoolctl import threadpool_limits

    from .. import __version__
    from ..cells._base import thread_limit

    started = now_utc()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"host": socket.gethostname(), "version": __version__,
                           "started": started}
    try:
        with threadpool_limits(limits=1), thread_limit(1):
            metrics = run_one(spec)
        out.update(status="done", metrics=metrics, error=None)
    except Exception as exc:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        out.update(status="failed", metrics=None,
                   error=f"{type(exc).__name__}: {exc}\n" + "".join(tb[-6:]))
    out["finished"] = now_utc()
    out["wall_s"] = time.perf_counter() - t0
    return out


def _record(store: Store, spec: RunSpec, res: Mapping[str, Any]) -> None:
    store.record(spec, status=res["status"], metrics=res.get("metrics"), error=res.get("error"),
                 started=res.get("started"), finished=res.get("finished"),
                 wall_s=res.get("wall_s"), version=res.get("version"), host=res.get("host"))


def _client(scheduler: str, workers: int) -> Any:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the sweep extra is in dev
        raise ImportError(
            "rnntheory sweeps need Dask: pip install 'rnntheory[sweep]' "
            "(or use scheduler='sync')"
        ) from exc
    if "://" in scheduler:
        return Client(scheduler), None
    if scheduler == "processes":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
    else:  # "threads": one in-process worker with `workers` threads
        cluster = LocalCluster(n_workers=1, threads_per_worker=workers, processes=False,
                               dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def run_sweep(
    specs: Iterable[RunSpec] | SweepConfig,
    db: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    on_result: Callable[[RunSpec, Mapping[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every spec not yet done in the store ``db``, on Dask, recording each as it completes.

    Parameters
    ----------
    specs : iterable of RunSpec, or SweepConfig
        The runs (a :class:`SweepConfig` also supplies ``db``, ``workers`` and
        ``scheduler``; the arguments below override it).
    db : str or os.PathLike
        The results store (created when missing).
    workers : int, optional
        Local workers (default 2).
    scheduler : str, optional
        ``"processes"`` (default), ``"threads"``, ``"sync"`` or a Dask
        scheduler address ``"tcp://HOST:PORT"``.
    progress : bool or None
        A tqdm bar of runs done / total with an ETA (``None``: only on a terminal).
    on_result : callable, optional
        Called in the driver as ``on_result(spec, result)`` after each run is recorded.

    Returns
    -------
    SweepResult

    Raises
    ------
    TypeError, ValueError
        On a spec that is not a :class:`RunSpec`, a missing ``db`` or a bad
        ``workers``/``scheduler``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.sweep import run_sweep
    >>> specs = [RunSpec("adding", 6, n_hidden=4, steps=3, batch_size=2, eval_size=4, seed=s)
    ...          for s in range(2)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     first = run_sweep(specs, pathlib.Path(d) / "r.db", scheduler="sync", progress=False)
    ...     again = run_sweep(specs, pathlib.Path(d) / "r.db", scheduler="sync", progress=False)
    >>> (first.done, first.skipped), (again.done, again.skipped)
    ((2, 0), (0, 2))
    """
    t0 = time.perf_counter()
    if isinstance(specs, SweepConfig):
        cfg = specs
        spec_list = list(cfg.specs)
        db = cfg.db if db is None else db
        workers = cfg.workers if workers is None else workers
        scheduler = cfg.scheduler if scheduler is None else scheduler
    else:
        spec_list = list(specs)
    for s in spec_list:
        if not isinstance(s, RunSpec):
            raise TypeError(f"`specs` entries must be RunSpec, got {type(s).__name__}")
    if db is None:
        raise ValueError("`db` must be given (the results store's path)")
    workers = check_int("workers", 2 if workers is None else workers, minimum=1)
    scheduler = _check_scheduler("processes" if scheduler is None else scheduler)
    unique: dict[str, RunSpec] = {}
    for s in spec_list:
        unique.setdefault(s.key(), s)
    from tqdm import tqdm

    with Store(db) as store:
        done = store.done_keys()
        todo = [s for k, s in unique.items() if k not in done]
        result = SweepResult(total=len(unique), skipped=len(unique) - len(todo))
        bar = tqdm(total=len(unique), initial=result.skipped, desc="sweep", unit="run",
                   disable=(None if progress is None else not progress), file=sys.stderr)

        def finish(spec: RunSpec, res: Mapping[str, Any]) -> None:
            _record(store, spec, res)
            if res["status"] == "done":
                result.done += 1
            else:
                result.failed += 1
                result.failed_keys.append(spec.key())
            bar.update(1)
            bar.set_postfix(failed=result.failed)
            if on_result is not None:
                on_result(spec, res)

        try:
            if todo and scheduler == "sync":
                for spec in todo:
                    finish(spec, execute(spec))
            elif todo:
                _run_dask(todo, scheduler, workers, finish)
        finally:
            bar.close()
    result.wall_s = time.perf_counter() - t0
    return result


def _run_dask(todo: Sequence[RunSpec], scheduler: str, workers: int,
              finish: Callable[[RunSpec, Mapping[str, Any]], None]) -> None:
    """Submit the runs (a bounded number in flight) and record them as they complete."""
    from dask.distributed import as_completed

    client, cluster = _client(scheduler, workers)
    try:
        n_slots = max(1, sum(client.nthreads().values())) if "://" in scheduler else workers
        window = 2 * n_slots + 2
        pending = iter(todo)
        by_key: dict[str, RunSpec] = {}

        def submit() -> Any:
            spec = next(pending, None)
            if spec is None:
                return None
            fut = client.submit(execute, spec, key=f"run-{spec.key()}", pure=False)
            by_key[fut.key] = spec
            return fut

        first = [f for f in (submit() for _ in range(window)) if f is not None]
        ac = as_completed(first)
        for fut in ac:
            spec = by_key.pop(fut.key)
            try:
                res = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task was lost
                res = {"status": "failed", "metrics": None, "started": None,
                       "finished": now_utc(), "wall_s": None, "host": "?",
                       "error": f"{type(exc).__name__}: {exc} (raised by Dask, not by the run)"}
            fut.release()
            finish(spec, res)
            nxt = submit()
            if nxt is not None:
                ac.add(nxt)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _describe(spec: RunSpec) -> str:
    hp = ",".join(f"{k}={v:g}" for k, v in spec.hparams)
    return (f"{spec.task:<15} L={spec.length:<5} {spec.label():<36} lr={spec.lr:g} "
            f"steps={spec.steps} seed={spec.seed}" + (f" [{hp}]" if hp else ""))


def cli_sweep(args: Any) -> int:
    """The ``rnntheory sweep CONFIG.toml`` command (``args`` from :mod:`argparse`).

    Returns
    -------
    int
        0 when every run of this invocation finished, 1 when one failed, 2 on a
        bad configuration.
    """
    try:
        cfg = load_config(args.config)
        db = Path(args.db) if args.db else cfg.db
        workers = cfg.workers if args.workers is None else args.workers
        scheduler = cfg.scheduler if args.scheduler is None else _check_scheduler(args.scheduler)
        check_int("--workers", workers, minimum=1)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"rnntheory sweep: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        done: set[str] = set()
        if db.exists():
            with Store(db) as store:
                done = store.done_keys()
        for spec in cfg.specs:
            mark = "done" if spec.key() in done else "todo"
            print(f"{spec.key()[:12]}  {mark}  {_describe(spec)}")
        n_done = sum(s.key() in done for s in cfg.specs)
        print(f"{len(cfg.specs)} runs, {n_done} already done in {db}, "
              f"{len(cfg.specs) - n_done} to run (scheduler {scheduler}, {workers} workers)")
        return 0
    res = run_sweep(cfg, db, workers=workers, scheduler=scheduler,
                    progress=False if args.no_progress else None)
    print(f"{res}; results in {db}")
    if res.failed:
        with Store(db) as store:
            failed = {r.key: r for r in store.rows(status="failed")}
        for k in res.failed_keys:
            r = failed.get(k)
            first = (r.error or "").splitlines()[0] if r is not None else ""
            print(f"  failed {k[:12]}: {first}", file=sys.stderr)
        print("Failed runs are retried by running the same command again.", file=sys.stderr)
    return 0 if res.ok else 1



class _Interrupt(Exception):
    """Raised by the verify row to stop a sweep part-way."""


def _check_sweep_resume() -> Any:
    """``rnntheory verify`` row: a sweep interrupted after some runs and resumed records
    every grid point exactly once, with the metrics of an uninterrupted sweep."""
    import sqlite3
    import tempfile

    from ..verification import CheckResult

    t0 = time.perf_counter()
    specs = [RunSpec("adding", 4, n_hidden=3, steps=3, batch_size=2, eval_size=4, seed=s,
                     remedies=r) for s in range(2) for r in ((), ("clip",))]
    n = len(specs)

    def stop_after(k: int) -> Callable[[RunSpec, Mapping[str, Any]], None]:
        seen = [0]

        def cb(spec: RunSpec, res: Mapping[str, Any]) -> None:
            seen[0] += 1
            if seen[0] >= k:
                raise _Interrupt

        return cb

    def table(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
        import json

        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT key, status, metrics FROM runs").fetchall()
        finally:
            con.close()
        out = []
        for key, status, m in rows:
            d = json.loads(m) if m else {}
            d.pop("wall_s", None)
            out.append((key, status, d))
        return out

    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "a.db", Path(d) / "b.db"
        try:
            run_sweep(specs, a, scheduler="sync", progress=False, on_result=stop_after(2))
        except _Interrupt:
            pass
        partial = len(table(a))
        resumed = run_sweep(specs, a, scheduler="sync", progress=False)
        run_sweep(specs, b, scheduler="sync", progress=False)
        ra, rb = table(a), table(b)
    keys = [k for k, _, _ in ra]
    mismatches = sum(x != y for x, y in zip(sorted(ra), sorted(rb), strict=False))
    ok = (partial == 2 and resumed.skipped == 2 and resumed.done == n - 2
          and len(ra) == n and len(set(keys)) == n and set(keys) == {s.key() for s in specs}
          and len(rb) == n and mismatches == 0 and all(st == "done" for _, st, _ in ra))
    return CheckResult(
        check="sweep-resume",
        claim="an interrupted sweep resumes: every run recorded once, same metrics",
        models=n, pairs=len(ra), worst=float(mismatches + abs(len(ra) - n)), passed=ok,
        detail=(f"{partial}/{n} recorded before the interruption; resume skipped "
                f"{resumed.skipped}, ran {resumed.done}; {mismatches} metric mismatches "
                "against an uninterrupted sweep"),
        seconds=time.perf_counter() - t0,
    )
