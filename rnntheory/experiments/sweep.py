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

A failed run (an exception raised by the run's own code) is recorded with
status ``"failed"`` and its error text; the sweep carries on, exits with
status 1, and the next invocation retries the failed runs (only ``"done"``
runs are skipped).

Faults of the cluster are not faults of the runs. A run that Dask could not
finish (its worker died again and again, the worker could not load it) is
left unrecorded, counted in :attr:`SweepResult.not_run`, and runs again on
the next invocation. A scheduler that goes away or stops answering for
``scheduler_timeout`` seconds (default 60) stops the sweep with
:class:`SchedulerLost` (:class:`SchedulerUnreachable` when it cannot be
reached at the start); the runs it did not finish stay unrecorded, never
``"failed"``. ``KeyboardInterrupt`` (Ctrl-C) closes the Dask client and
leaves the store consistent: every row is written in one transaction, so a
resume neither loses nor repeats a run.
"""

from __future__ import annotations

import itertools
import os
import shlex
import socket
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._validation import check_bool, check_choice, check_int, check_items, check_path, check_real
from .runspec import HPARAM_OWNER, RunSpec, run_one
from .store import Store, now_utc

__all__ = [
    "DEFAULT_SCHEDULER_TIMEOUT",
    "SCHEDULERS",
    "SchedulerLost",
    "SchedulerUnreachable",
    "SweepConfig",
    "SweepInterrupted",
    "SweepResult",
    "SweepStopped",
    "execute",
    "expand_grid",
    "load_config",
    "resume_command",
    "run_sweep",
]

SCHEDULERS = ("processes", "threads", "sync")
DEFAULT_SCHEDULER_TIMEOUT = 60.0
"""Seconds of silence after which a sweep gives up on its Dask scheduler."""
_SPEC_FIELDS = tuple(f.name for f in fields(RunSpec))


class SweepStopped(RuntimeError):
    """A sweep stopped before its last run; the runs it did not finish are not recorded.

    The message is one line. ``status`` is the exit status of ``rnntheory
    sweep`` for this stop; ``result`` is the :class:`SweepResult` of the
    runs recorded before the stop (``None`` when no run was started).
    Running the same sweep again resumes it.
    """

    status = 2

    def __init__(self, message: str, result: SweepResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class SchedulerLost(SweepStopped):
    """The Dask scheduler went away, or stopped answering, part-way through a sweep.

    Raised when the connection to the scheduler is lost, or when it has not
    answered for ``scheduler_timeout`` seconds (a frozen or overloaded
    scheduler). The runs in flight are not recorded; they run again when the
    sweep is resumed. ``address`` is the scheduler's address.

    Examples
    --------
    >>> from rnntheory.experiments.sweep import SchedulerLost
    >>> str(SchedulerLost("the Dask scheduler tcp://127.0.0.1:8786 did not answer for 60 s",
    ...                   address="tcp://127.0.0.1:8786"))
    'the Dask scheduler tcp://127.0.0.1:8786 did not answer for 60 s'
    """

    def __init__(self, message: str, result: SweepResult | None = None, *,
                 address: str = "") -> None:
        super().__init__(message, result)
        self.address = address


class SchedulerUnreachable(SchedulerLost):
    """No connection to the Dask scheduler within ``scheduler_timeout`` seconds; nothing ran."""


class SweepInterrupted(SweepStopped):
    """The sweep was interrupted (Ctrl-C); raised by :func:`cli_sweep` with exit status 130.

    :func:`run_sweep` itself lets ``KeyboardInterrupt`` through, after closing
    its Dask client; this class carries the command's one-line message.
    """

    status = 130


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
    scheduler_timeout : float
        Seconds without an answer from the Dask scheduler after which the
        sweep stops (:class:`SchedulerLost`); also the connection timeout.
    """

    specs: tuple[RunSpec, ...]
    db: Path
    workers: int = 2
    scheduler: str = "processes"
    source: Path | None = None
    scheduler_timeout: float = DEFAULT_SCHEDULER_TIMEOUT


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
        Runs of this invocation that finished, or raised (recorded as failed).
    failed_keys : list of str
    not_run : int
        Runs that Dask could not finish (not the run's own error: its worker
        died repeatedly, or could not load it); not recorded, they run again
        on the next invocation.
    not_run_errors : list of str
        The Dask error of each of them, one line each.
    wall_s : float
    """

    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    failed_keys: list[str] = field(default_factory=list)
    not_run: int = 0
    not_run_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every run of this invocation finished without an error."""
        return self.failed == 0 and self.not_run == 0

    @property
    def pending(self) -> int:
        """Runs of the grid neither done nor failed (still to run)."""
        return self.total - self.skipped - self.done - self.failed

    def __str__(self) -> str:
        extra = f", {self.not_run} not run (Dask)" if self.not_run else ""
        return (
            f"{self.total} runs in the grid: {self.skipped} already done, {self.done} done now, "
            f"{self.failed} failed{extra} ({self.wall_s:.1f} s)"
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
        drop = [k for k in hps if (k in HPARAM_OWNER and HPARAM_OWNER[k] not in active)
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
    TypeError
        If ``path`` is not a str or os.PathLike.
    FileNotFoundError
        If the file does not exist.
    ValueError
        On an empty ``path``, a file that is not UTF-8 text or not valid TOML,
        an unknown table or key, or an invalid grid.
    """
    p = check_path("path", path)
    if not p.is_file():
        raise FileNotFoundError(f"`path`: sweep file not found: {str(path)!r}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"`path` {str(path)!r} is not UTF-8 text, so not a TOML file: "
                         f"{exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"`path` {str(path)!r} is not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"sweep", "grid"})
    if extra:
        raise ValueError(f"sweep file {str(path)!r}: unknown tables {extra} (expected [sweep], [grid])")
    sw = data.get("sweep", {})
    if not isinstance(sw, dict):
        raise ValueError(f"sweep file {str(path)!r}: `sweep` must be a table ([sweep]), "
                         f"got {sw!r}")
    bad = sorted(set(sw) - {"db", "workers", "scheduler", "scheduler_timeout"})
    if bad:
        raise ValueError(f"sweep file {str(path)!r}: unknown [sweep] keys {bad}")
    if "grid" not in data:
        raise ValueError(f"sweep file {str(path)!r} has no [grid] table")
    if not isinstance(data["grid"], dict):
        raise ValueError(f"sweep file {str(path)!r}: `grid` must be a table ([grid]), "
                         f"got {data['grid']!r}")
    db = Path(sw.get("db", "results.db"))
    if not db.is_absolute():
        db = p.parent / db
    workers = check_int("sweep.workers", sw.get("workers", 2), minimum=1)
    scheduler = _check_scheduler(sw.get("scheduler", "processes"))
    timeout = _check_timeout("sweep.scheduler_timeout",
                             sw.get("scheduler_timeout", DEFAULT_SCHEDULER_TIMEOUT))
    return SweepConfig(tuple(expand_grid(data["grid"])), db, workers, scheduler, p, timeout)


def _check_scheduler(value: Any) -> str:
    if isinstance(value, str) and "://" in value:
        scheme, _, rest = value.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme in ("tcp", "tls") and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"`scheduler` address must be {scheme}://HOST:PORT with a port in "
                             f"1..65535, got {value!r}")
        return value
    return check_choice("scheduler", value, SCHEDULERS)


_MAX_SECONDS = 1e6  # about 11 days; longer waits overflow the timers of threading and asyncio


def _check_timeout(name: str, value: Any) -> float:
    return check_real(name, value, low=0.0, low_open=True, high=_MAX_SECONDS)


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

    from .._parallel import thread_limit
    from .._version import VERSION

    started = now_utc()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"host": socket.gethostname(), "version": VERSION,
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


def _one_line(exc: BaseException) -> str:
    """An exception as one short line: its first non-empty line, or its type's name."""
    for line in str(exc).splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= 200 else text[:197] + "..."
    return type(exc).__name__


def _hms(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _client(scheduler: str, workers: int, timeout: float = DEFAULT_SCHEDULER_TIMEOUT) -> Any:
    """A Dask client (and the local cluster it owns, or ``None``) for ``scheduler``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the sweep extra is in dev
        raise ImportError(
            "rnntheory sweeps need Dask: pip install 'rnntheory[sweep]' "
            "(or use scheduler='sync')"
        ) from exc
    if "://" in scheduler:
        return _connect(Client, scheduler, timeout), None
    # The dashboard listens on the loopback interface, on a free port. Ctrl-C is ignored
    # while the cluster starts: the worker processes inherit that, so Ctrl-C at a terminal
    # (sent to the whole process group) reaches only the driver, which closes the cluster.
    with _ignoring_sigint():
        try:
            if scheduler == "processes":
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0", silence_logs=40)
            else:  # "threads": one in-process worker with `workers` threads
                cluster = LocalCluster(n_workers=1, threads_per_worker=workers,
                                       processes=False, dashboard_address="127.0.0.1:0",
                                       silence_logs=40)
        except Exception as exc:  # Dask's own failure (a worker process that cannot start)
            raise SweepStopped(f"could not start a local Dask cluster ({scheduler}, {workers} "
                               f"worker{'' if workers == 1 else 's'}): {_one_line(exc)}") from exc
    try:
        return Client(cluster, set_as_default=False), cluster
    except BaseException:
        cluster.close()
        raise


def _connect(client_class: Any, address: str, timeout: float) -> Any:
    """``Client(address)``, or :class:`SchedulerUnreachable` after ``timeout`` seconds.

    The client is made in a helper thread: Dask's own connection timeout
    does not cover a scheduler that accepts the connection and then never
    answers (a frozen process), where the constructor would wait forever.
    """
    import threading

    box: dict[str, Any] = {}

    def make() -> None:
        try:
            box["client"] = client_class(address, timeout=timeout, set_as_default=False)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=make, name="rnntheory-sweep-connect", daemon=True)
    t.start()
    t.join(timeout + 2.0)
    if "client" in box:
        return box["client"]
    exc = box.get("error")
    why = "" if exc is None else _one_line(exc)
    why = "" if not why or why.startswith("Timed out trying to connect") else f" ({why})"
    raise SchedulerUnreachable(
        f"cannot reach the Dask scheduler {address} within {timeout:g} s{why}", address=address)


def _dashboard(client: Any, cluster: Any, timeout: float) -> str:
    """The dashboard's link, or why there is none (one line)."""
    if cluster is not None:
        if not _has_bokeh():
            return "no dashboard (it needs bokeh: pip install 'rnntheory[sweep]')"
        port = (cluster.scheduler_info.get("services") or {}).get("dashboard")
        return f"dashboard http://127.0.0.1:{port}/status" if port else "no dashboard"
    try:
        link = client.dashboard_link
    except Exception:
        link = None
    if not link:
        return "no dashboard (the scheduler serves none)"
    import urllib.error
    import urllib.request

    try:  # the scheduler serves /status only where bokeh is installed
        with urllib.request.urlopen(link, timeout=min(2.0, timeout)) as r:
            ok = r.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        ok = False
    if ok:
        return f"dashboard {link}"
    return (f"dashboard {link} does not answer from here (install bokeh where the "
            "scheduler runs: pip install 'rnntheory[sweep]')")


class _Progress:
    """The sweep's progress: a tqdm bar on a terminal, periodic lines otherwise, or nothing."""

    def __init__(self, result: SweepResult, progress: bool | None, every: float) -> None:
        from tqdm import tqdm

        self.result = result
        self.every = every
        if progress is None:
            self.mode = "bar" if sys.stderr.isatty() else "lines"
        else:
            self.mode = "bar" if progress else "off"
        self.t0 = self.last = time.monotonic()
        self.workers: int | None = None
        self.bar = tqdm(total=result.total, initial=result.skipped, desc="sweep", unit="run",
                        disable=self.mode != "bar", file=sys.stderr)

    def say(self, text: str) -> None:
        """One information line (not in silent mode)."""
        if self.mode == "bar":
            self.bar.write(text, file=sys.stderr)
        elif self.mode == "lines":
            print(text, file=sys.stderr, flush=True)

    def update(self) -> None:
        """After each run of this invocation."""
        if self.mode == "bar":
            self.bar.update(1)
            self.bar.set_postfix(failed=self.result.failed)
        self.tick()

    def line(self) -> str:
        r = self.result
        now = time.monotonic()
        finished = r.done + r.failed + r.not_run
        left = r.total - r.skipped - finished
        elapsed = now - self.t0
        if not left:
            eta = "0:00:00"
        elif finished:
            eta = _hms(elapsed / finished * left)
        else:
            eta = "unknown"
        extra = f", {r.not_run} not run" if r.not_run else ""
        who = "" if self.workers is None else \
            f" on {self.workers} worker{'' if self.workers == 1 else 's'}"
        return (f"sweep: {r.skipped + r.done}/{r.total} done, {r.failed} failed{extra}, "
                f"{left} pending{who}; {_hms(elapsed)} elapsed, ETA {eta}")

    def tick(self) -> None:
        """A progress line when ``every`` seconds have passed since the last one (lines mode)."""
        if self.mode != "lines":
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


class _Watch:
    """Notices a Dask scheduler that is gone or silent for ``timeout`` seconds."""

    def __init__(self, client: Any, address: str, timeout: float) -> None:
        self.client = client
        self.address = address
        self.timeout = timeout
        self.every = min(5.0, timeout / 4)
        self.heard_at = self.probed_at = time.monotonic()
        self.nthreads: dict[str, int] = {}

    def heard(self) -> None:
        """The scheduler just answered (a result arrived)."""
        self.heard_at = time.monotonic()

    def left(self) -> float:
        """Seconds until the scheduler has been silent for ``timeout`` seconds."""
        return self.heard_at + self.timeout - time.monotonic()

    def lost(self) -> SchedulerLost:
        return SchedulerLost(f"lost the connection to the Dask scheduler {self.address}",
                             address=self.address)

    def silent(self) -> SchedulerLost:
        return SchedulerLost(
            f"the Dask scheduler {self.address} did not answer for "
            f"{time.monotonic() - self.heard_at:.0f} s (scheduler timeout {self.timeout:g} s)",
            address=self.address)

    def check(self, force: bool = False) -> None:
        """Ask the scheduler for its workers (every few seconds); raise SchedulerLost when it
        is gone or has been silent for ``timeout`` seconds."""
        now = time.monotonic()
        if not force and now - self.probed_at < self.every:
            return
        self.probed_at = now
        refused = False
        while (left := self.left()) > 0:
            if self.client.status != "running":  # its stream to the scheduler broke
                raise self.lost()
            try:
                self.nthreads = dict(self.client.nthreads(callback_timeout=left))
            except TimeoutError:
                break
            except Exception:  # refused, reset: retry until the deadline
                refused = True
                time.sleep(min(0.2, max(0.0, self.left())))
                continue
            self.heard()
            return
        raise self.lost() if refused else self.silent()


def _spec_list(specs: Any, name: str) -> list[RunSpec]:
    """``specs`` as a list of :class:`RunSpec`, else a TypeError naming ``name`` (and the
    index of the first entry that is not a spec)."""
    return check_items(name, specs, RunSpec, expected="an iterable of RunSpec or a SweepConfig",
                       item="a RunSpec")


def run_sweep(
    specs: Iterable[RunSpec] | SweepConfig,
    db: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_timeout: float | None = None,
    progress: bool | None = None,
    progress_every: float = 30.0,
    on_result: Callable[[RunSpec, Mapping[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every spec not yet done in the store ``db``, on Dask, recording each as it completes.

    Parameters
    ----------
    specs : iterable of RunSpec, or SweepConfig
        The runs (a :class:`SweepConfig` also supplies ``db``, ``workers``,
        ``scheduler`` and ``scheduler_timeout``; the arguments below override it).
    db : str or os.PathLike
        The results store (created when missing).
    workers : int, optional
        Local workers (default 2).
    scheduler : str, optional
        ``"processes"`` (default), ``"threads"``, ``"sync"`` or a Dask
        scheduler address ``"tcp://HOST:PORT"``.
    scheduler_timeout : float, optional
        Seconds (default :data:`DEFAULT_SCHEDULER_TIMEOUT`, 60; in (0, 1e6])
        to connect to the scheduler, and without an answer from it, after
        which the sweep stops with :class:`SchedulerUnreachable` or
        :class:`SchedulerLost`.
    progress : bool or None
        ``True``: a tqdm bar of runs done / total with an ETA on stderr;
        ``False``: nothing; ``None`` (default): the bar on a terminal, else
        a line every ``progress_every`` seconds (done, failed, pending,
        elapsed, ETA). Either way a first line names the scheduler and its
        dashboard.
    progress_every : float
        Seconds between progress lines (default 30; in (0, 1e6]).
    on_result : callable, optional
        Called in the driver as ``on_result(spec, result)`` after each run is recorded.

    Returns
    -------
    SweepResult

    Raises
    ------
    TypeError, ValueError
        On ``specs`` that is neither an iterable of :class:`RunSpec` nor a
        :class:`SweepConfig` (a bad entry is named ``specs[i]``), a missing
        ``db`` or one that is not a path or not a results store (named
        ``db``; the file is left untouched), a bad
        ``workers``/``scheduler``/``scheduler_timeout``/``progress_every``,
        a ``progress`` that is not a bool or None, or an ``on_result`` that
        is not callable.
    SchedulerUnreachable
        If no connection to the scheduler is made within ``scheduler_timeout``.
    SchedulerLost
        If the scheduler goes away, or is silent for ``scheduler_timeout``
        seconds, part-way; ``exc.result`` holds what was recorded. The runs
        it did not finish are not recorded (never as failed).
    KeyboardInterrupt
        Passed on after the Dask client is closed; every recorded run is
        complete, and a resume neither loses nor repeats one.

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
        spec_list = _spec_list(cfg.specs, "specs.specs")
        db = cfg.db if db is None else db
        workers = cfg.workers if workers is None else workers
        scheduler = cfg.scheduler if scheduler is None else scheduler
        scheduler_timeout = cfg.scheduler_timeout if scheduler_timeout is None \
            else scheduler_timeout
    else:
        spec_list = _spec_list(specs, "specs")
    if db is None:
        raise ValueError("`db` must be given (the results store's path)")
    db = check_path("db", db)
    workers = check_int("workers", 2 if workers is None else workers, minimum=1)
    scheduler = _check_scheduler("processes" if scheduler is None else scheduler)
    timeout = _check_timeout("scheduler_timeout", DEFAULT_SCHEDULER_TIMEOUT
                             if scheduler_timeout is None else scheduler_timeout)
    every = _check_timeout("progress_every", progress_every)
    if progress is not None:
        progress = check_bool("progress", progress)
    if on_result is not None and not callable(on_result):
        raise TypeError(f"`on_result` must be a callable or None, got {type(on_result).__name__}")
    unique: dict[str, RunSpec] = {}
    for s in spec_list:
        unique.setdefault(s.key(), s)

    with Store._for_argument(db, "db") as store:
        done = store.done_keys()
        todo = [s for k, s in unique.items() if k not in done]
        result = SweepResult(total=len(unique), skipped=len(unique) - len(todo))
        bar = _Progress(result, progress, every)

        def finish(spec: RunSpec, res: Mapping[str, Any]) -> None:
            _record(store, spec, res)
            if res["status"] == "done":
                result.done += 1
            else:
                result.failed += 1
                result.failed_keys.append(spec.key())
            bar.update()
            if on_result is not None:
                on_result(spec, res)

        def not_run(spec: RunSpec, error: str) -> None:
            result.not_run += 1
            result.not_run_errors.append(error)
            bar.update()

        try:
            if todo and scheduler == "sync":
                bar.say(f"sweep: {result.total} runs, {result.skipped} already done, "
                        f"{len(todo)} to run in this process (scheduler 'sync')")
                for spec in todo:
                    finish(spec, execute(spec))
            elif todo:
                _run_dask(todo, scheduler, workers, timeout, finish, not_run, bar)
        except SweepStopped as exc:
            result.wall_s = time.perf_counter() - t0
            exc.result = result
            raise
        finally:
            bar.close()
    result.wall_s = time.perf_counter() - t0
    return result


def _ignoring_sigint() -> Any:
    """A context in which Ctrl-C is ignored (main thread only), so cleanup completes."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def ctx() -> Any:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)

    return ctx()


def _close(client: Any, cluster: Any, timeout: float) -> None:
    """Close the client within ``timeout`` seconds, and the local cluster, quietly.

    A local cluster gets at least 15 s: its workers finish or abandon their
    runs (a busy worker process is stopped after about 4 s); a shorter
    limit would leave the cluster half-closed for the exit handlers of Dask.
    """
    with _ignoring_sigint():
        try:
            client.close(timeout=timeout)
        except Exception:  # a lost scheduler cannot acknowledge; nothing is left to save
            pass
        if cluster is not None:
            try:
                cluster.close(timeout=max(timeout, 15.0))
            except Exception:
                pass


def _run_dask(todo: Sequence[RunSpec], scheduler: str, workers: int, timeout: float,
              finish: Callable[[RunSpec, Mapping[str, Any]], None],
              not_run: Callable[[RunSpec, str], None], bar: _Progress) -> None:
    """Submit the runs (a bounded number in flight), record them as they complete, and watch
    the scheduler: gone, or silent for ``timeout`` seconds, raises :class:`SchedulerLost`."""
    from dask.distributed import as_completed

    client, cluster = _client(scheduler, workers, timeout)
    remote = cluster is None
    ok = False
    try:
        address = scheduler if remote else str(client.scheduler.address)
        watch = _Watch(client, address, timeout)
        watch.check(force=True)
        bar.workers = len(watch.nthreads)
        if remote:
            where = f"scheduler {address}"
        elif scheduler == "threads":
            where = f"an in-process cluster ({workers} thread{'' if workers == 1 else 's'})"
        else:
            where = f"a local cluster, scheduler {address}"
        r = bar.result
        bar.say(f"sweep: {r.total} runs, {r.skipped} already done, {len(todo)} to run on "
                f"{where}, {bar.workers} worker{'' if bar.workers == 1 else 's'}; "
                f"{_dashboard(client, cluster, timeout)}")
        pending = iter(todo)
        by_key: dict[str, RunSpec] = {}
        more = True

        def window() -> int:
            slots = sum(watch.nthreads.values()) if remote else workers
            return 2 * max(1, slots) + 2

        def top_up(ac: Any) -> None:
            nonlocal more
            while more and len(by_key) < window():
                spec = next(pending, None)
                if spec is None:
                    more = False
                    return
                try:
                    fut = client.submit(execute, spec, key=f"run-{spec.key()}", pure=False)
                except Exception:
                    raise watch.lost() from None
                by_key[fut.key] = spec
                ac.add(fut)

        ac = as_completed([], loop=client.loop)
        woken = getattr(ac, "thread_condition", None)  # notified on each completion
        top_up(ac)
        while by_key:
            batch = ac.next_batch(block=False)
            if not batch:
                watch.check()
                bar.workers = len(watch.nthreads)
                bar.tick()
                top_up(ac)
                if woken is None:
                    time.sleep(0.05)
                else:
                    with woken:
                        if not ac.has_ready():
                            woken.wait(timeout=0.2)
                continue
            watch.heard()
            for fut in batch:
                spec = by_key.pop(fut.key)
                if fut.status == "cancelled":  # we cancel nothing: the scheduler went away
                    raise watch.lost()
                if fut.status == "finished":
                    try:
                        res = fut.result(timeout=max(watch.left(), 0.1))
                    except TimeoutError:
                        raise watch.silent() from None
                    except Exception as exc:
                        if client.status != "running":
                            raise watch.lost() from None
                        not_run(spec, f"{type(exc).__name__}: {_one_line(exc)}")
                    else:
                        finish(spec, res)
                else:  # "error": raised by Dask (KilledWorker, a load error), not by the run
                    err = fut.exception(timeout=max(watch.left(), 0.1))
                    not_run(spec, f"{type(err).__name__}: {_one_line(err)}")
                fut.release()
            top_up(ac)
        ok = True
    finally:
        _close(client, cluster, timeout if ok else min(timeout, 2.0))


def _describe(spec: RunSpec) -> str:
    hp = ",".join(f"{k}={v:g}" for k, v in spec.hparams)
    return (f"{spec.task:<15} L={spec.length:<5} {spec.label():<36} lr={spec.lr:g} "
            f"steps={spec.steps} seed={spec.seed}" + (f" [{hp}]" if hp else ""))


def resume_command(args: Any) -> str:
    """The ``rnntheory sweep`` command line that ``args`` (from :mod:`argparse`) came from.

    Running it again resumes the sweep: done runs are skipped.

    Examples
    --------
    >>> import argparse
    >>> from rnntheory.experiments.sweep import resume_command
    >>> resume_command(argparse.Namespace(config="my sweep.toml", scheduler="tcp://h:8786",
    ...                                   workers=None, db=None, scheduler_timeout=30.0))
    "rnntheory sweep 'my sweep.toml' --scheduler tcp://h:8786 --scheduler-timeout 30"
    """
    config = getattr(args, "config", None)
    if not isinstance(config, str | os.PathLike):
        raise TypeError("`args` must be the parsed options of `rnntheory sweep` (with a "
                        f"`config` path), got {type(args).__name__}")
    parts = ["rnntheory", "sweep", str(config)]
    for flag, name in (("--db", "db"), ("--workers", "workers"), ("--scheduler", "scheduler"),
                       ("--scheduler-timeout", "scheduler_timeout"),
                       ("--progress-every", "progress_every")):
        value = getattr(args, name, None)
        if isinstance(value, float):
            short = f"{value:g}"
            parts += [flag, short if float(short) == value else repr(value)]
        elif value is not None:
            parts += [flag, str(value)]
    if getattr(args, "no_progress", False):
        parts.append("--no-progress")
    return shlex.join(parts)


def _store_counts(db: Path, specs: Sequence[RunSpec]) -> str:
    """``"3/8 runs done, 1 failed, 4 not run in results.db"`` read back from the store."""
    try:
        with Store(db) as store:
            done = store.done_keys()
            failed = {r.key for r in store.rows(status="failed")}
    except Exception:  # the store is untouched when it cannot be read; say nothing of it
        return f"results in {db}"
    keys = {s.key() for s in specs}
    n_done, n_failed = len(keys & done), len(keys & failed - done)
    return (f"{n_done}/{len(keys)} runs done, {n_failed} failed, "
            f"{len(keys) - n_done - n_failed} not run in {db}")


def _quiet_dask() -> Any:
    """A context in which Dask's own log lines (connection errors, reconnect attempts) are
    silent: the command says what happened in one line of its own."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def ctx() -> Any:
        import distributed  # noqa: F401  (configures its loggers; silence them after)

        known = logging.root.manager.loggerDict
        names = ["tornado", "bokeh", "distributed"] + [
            n for n in known if n.startswith("distributed.")]  # some have levels of their own
        saved = {n: logging.getLogger(n).level for n in names}
        for n in names:
            logging.getLogger(n).setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)

    return ctx()


def cli_sweep(args: Any) -> int:
    """The ``rnntheory sweep CONFIG.toml`` command (``args`` from :mod:`argparse`).

    Returns
    -------
    int
        0 when every run of this invocation finished, 1 when one failed (or
        Dask could not run it), 2 on a bad configuration.

    Raises
    ------
    SchedulerLost, SchedulerUnreachable
        With a one-line message that counts the runs recorded and gives the
        command that resumes; ``exc.status`` is 2.
    SweepInterrupted
        On Ctrl-C, with the same kind of message; ``exc.status`` is 130.
    """
    try:
        cfg = load_config(args.config)
        db = Path(args.db) if args.db else cfg.db
        workers = cfg.workers if args.workers is None else args.workers
        scheduler = cfg.scheduler if args.scheduler is None else _check_scheduler(args.scheduler)
        check_int("--workers", workers, minimum=1)
        given = getattr(args, "scheduler_timeout", None)
        timeout = cfg.scheduler_timeout if given is None else \
            _check_timeout("--scheduler-timeout", given)
        every = getattr(args, "progress_every", None)
        every = 30.0 if every is None else _check_timeout("--progress-every", every)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"rnntheory sweep: error: {exc}", file=sys.stderr)
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
    again = resume_command(args)
    import contextlib

    try:
        with (_quiet_dask() if scheduler != "sync" else contextlib.nullcontext()):
            res = run_sweep(cfg, db, workers=workers, scheduler=scheduler,
                            scheduler_timeout=timeout, progress_every=every,
                            progress=False if args.no_progress else None)
    except SchedulerUnreachable as exc:
        exc.args = (f"{exc}; no run started ({_store_counts(db, cfg.specs)}); start the "
                    f"scheduler or correct --scheduler, then run: {again}",)
        raise
    except SchedulerLost as exc:
        exc.args = (f"{exc}; stopped with {_store_counts(db, cfg.specs)} (runs in flight are "
                    f"not recorded); resume with: {again}",)
        raise
    except KeyboardInterrupt:
        raise SweepInterrupted(f"interrupted; {_store_counts(db, cfg.specs)}; resume with: "
                               f"{again}") from None
    print(f"{res}; results in {db}")
    if res.failed:
        with Store(db) as store:
            failed = {r.key: r for r in store.rows(status="failed")}
        for k in res.failed_keys:
            r = failed.get(k)
            first = (r.error or "").splitlines()[0] if r is not None else ""
            print(f"  failed {k[:12]}: {first}", file=sys.stderr)
        print("Failed runs are retried by running the same command again.", file=sys.stderr)
    if res.not_run:
        print(f"rnntheory sweep: Dask could not run {res.not_run} run(s) ({res.not_run_errors[0]}); "
              f"they are not recorded and run again with: {again}", file=sys.stderr)
    return 0 if res.ok else 1
