"""Reports: a Markdown page with tables and figures from a results store.

``rnntheory report RESULTS.db --out DIR`` (or :func:`write_report`) writes
``DIR/report.md`` and PNG figures next to it:

* a table of success rates per (method, task, length): runs, solved runs,
  success rate, median updates to solve (over the solved runs) and median
  final error — the table of Pascanu, Mikolov & Bengio (2013, §4);
* ``success_<task>.png``: success rate against sequence length, one line per
  method (their Fig. 7);
* ``curves_<task>_L<length>.png``: evaluation error against the update, the
  median over seeds of each method;
* ``gradnorm_<task>_L<length>.png``: the global gradient norm (before
  remedies) against the update, median over seeds, on a log axis;
* a gradient-norm table per (method, task): median of the runs' median
  norms, the largest norm, clipping events and divergence fallbacks;
* ``flow_<task>_L<length>.png``: the gradient flow ``ln ‖∂h_t/∂h_0‖₂`` of
  each run's final model on one fresh test sequence (``run_one``'s ``flow``
  metric), median over seeds: a heatmap with one row per method and a panel
  of the same medians against ``t`` with Eq. 12's bound ``t · ln(γ_W γ_h)``
  dashed (Elman cells), with one sentence computed from the numbers
  (:func:`flow_profiles`). Runs without a ``flow`` metric (older stores) are
  left out; with none the figure is omitted.

A *method* is what a run's spec says apart from its task, length and seed;
its label lists only the fields that vary across the store (e.g. just the
remedies, ``"clip+omega"``). Failed runs are listed and left out of the rates.

The store is opened read-only and checked first (:class:`Store` with
``readonly=True``): a file that is not an rnntheory results store is refused
and left byte-identical. The report never overwrites a file in ``DIR`` that
rnntheory did not write (see :func:`write_report`'s ``force``).

matplotlib (the ``plot`` extra) is imported only when figures are drawn.
"""

from __future__ import annotations

import glob
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .._outputs import OutputClaim, prepare_folder
from .._tables import markdown_table
from .._validation import check_items, check_path
from .runspec import RunSpec
from .store import Row, Store

__all__ = [
    "ReportResult",
    "flow_profiles",
    "gradient_table",
    "load_rows",
    "method_labels",
    "render_figures",
    "success_table",
    "write_report",
]

_NOT_METHOD = ("task", "length", "seed")


def _check_rows(rows: Any, name: str = "rows") -> list[Row]:
    """``rows`` as a list of stored-run records (:class:`Row`), else a TypeError naming
    ``name`` and, for a bad entry, its index (``"`rows[2]` must be ..."``)."""
    out = check_items(name, rows, Row, expected="a sequence of store Rows (the records of stored runs)",
                      item="a store Row (the record of a stored run)")
    for i, r in enumerate(out):
        if not isinstance(r.spec, RunSpec):
            raise TypeError(f"`{name}[{i}].spec` must be a RunSpec, got {type(r.spec).__name__}")
        if not isinstance(r.metrics, Mapping):
            raise TypeError(f"`{name}[{i}].metrics` must be a dict, got "
                            f"{type(r.metrics).__name__}")
        if not isinstance(r.key, str) or r.status not in ("done", "failed"):
            raise ValueError(f"`{name}[{i}]` is not the record of a stored run: key {r.key!r}, "
                             f"status {r.status!r} (expected a str key and status 'done' or "
                             "'failed')")
    return out


def load_rows(source: str | os.PathLike[str] | Store | Iterable[Row]) -> list[Row]:
    """The rows of a store given by path, as a :class:`Store`, or already as rows.

    A path is opened read-only (``Store(path, readonly=True)``): the file is
    never written to, whatever it is.

    Raises
    ------
    FileNotFoundError
        If a path is given and no file is there.
    ValueError
        If the file at the path is not an rnntheory results store (a folder,
        an empty, truncated or non-SQLite file, another program's database);
        it is left byte-identical.
    TypeError
        If ``source`` is none of these, or rows hold an entry that is not a
        :class:`~rnntheory.experiments.store.Row` (named ``source[i]``).
    """
    if isinstance(source, Store):
        return source.rows()
    if isinstance(source, str | os.PathLike):
        p = check_path("source", source)
        if not p.exists():
            raise FileNotFoundError(f"`source`: results store not found: {str(source)!r}")
        with Store._for_argument(p, "source", readonly=True) as store:
            return store.rows()
    if isinstance(source, Iterable) and not isinstance(source, Row | bytes | Mapping):
        return _check_rows(source, "source")
    raise TypeError(f"`source` must be a path, a Store or rows, got {type(source).__name__}")


def _fmt_value(name: str, v: Any) -> str:
    if name == "remedies":
        return "+".join(v) if v else "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def method_labels(rows: Sequence[Row]) -> dict[str, str]:
    """A label per row key naming its method by the spec fields that vary across ``rows``.

    Fields other than ``task``, ``length`` and ``seed`` define the method. A
    field (or hyperparameter) with one value across the rows is left out of
    the labels; when only ``remedies`` varies the label is just the remedy set
    (``"clip+omega"``, ``"none"``). When nothing varies every label is
    :meth:`RunSpec.label`.

    Raises
    ------
    TypeError
        If ``rows`` is not a sequence of :class:`~rnntheory.experiments.store.Row`
        (the message names the first bad entry, ``rows[i]``), or an entry's
        ``spec`` is not a :class:`RunSpec` or its ``metrics`` not a dict.
    ValueError
        If an entry's ``status`` is not ``"done"`` or ``"failed"``.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.store import Row
    >>> rows = [Row(str(i), RunSpec("adding", 10, remedies=r, seed=i), "done")
    ...         for i, r in enumerate(["", "clip", "clip"])]
    >>> method_labels(rows)
    {'0': 'none', '1': 'clip', '2': 'clip'}
    """
    rows = _check_rows(rows)
    names = [f.name for f in fields(RunSpec) if f.name not in (*_NOT_METHOD, "hparams")]
    varying = [n for n in names if len({getattr(r.spec, n) for r in rows}) > 1]
    hp_values: dict[str, set[float]] = defaultdict(set)
    for r in rows:
        for k, v in r.spec.hparams:
            hp_values[k].add(v)
    hp_varying = sorted(k for k, vals in hp_values.items() if len(vals) > 1)
    out = {}
    for r in rows:
        if varying == ["remedies"] and not hp_varying:
            out[r.key] = _fmt_value("remedies", r.spec.remedies)
            continue
        parts = [f"{n}={_fmt_value(n, getattr(r.spec, n))}" for n in varying]
        hp = dict(r.spec.hparams)
        parts += [f"{k}={hp[k]:g}" for k in hp_varying if k in hp]
        out[r.key] = ", ".join(parts) if parts else r.spec.label()
    return out


def _median(values: Sequence[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def success_table(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Success rates per (method, task, length) over the done runs.

    Returns
    -------
    list of dict
        Keys ``method``, ``task``, ``length``, ``runs`` (done runs), ``solved``,
        ``success`` (``solved / runs``), ``median_steps_to_solve`` (over the
        solved runs that reached the threshold during training; ``None`` if
        none), ``median_final_error``, ``failed`` (failed runs of the group);
        sorted by task, length, method.

    Raises
    ------
    TypeError
        If ``rows`` is not a sequence of :class:`~rnntheory.experiments.store.Row`
        (the message names the first bad entry, ``rows[i]``), or an entry's
        ``spec`` is not a :class:`RunSpec` or its ``metrics`` not a dict.
    ValueError
        If an entry's ``status`` is not ``"done"`` or ``"failed"``.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.store import Row
    >>> rows = [Row(str(s), RunSpec("adding", 10, seed=s), "done",
    ...             {"solved": s < 2, "final_error": 0.0 if s < 2 else 0.5,
    ...              "steps_to_solve": 100 * (s + 1) if s < 2 else None}) for s in range(4)]
    >>> t = success_table(rows)[0]
    >>> t["runs"], t["solved"], t["success"], t["median_steps_to_solve"]
    (4, 2, 0.5, 150.0)
    """
    rows = _check_rows(rows)
    labels = method_labels(rows)
    groups: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(labels[r.key], r.spec.task, r.spec.length)].append(r)
    out = []
    for (method, task, length), grp in groups.items():
        done = [r for r in grp if r.status == "done"]
        solved = [r for r in done if r.metrics.get("solved")]
        out.append({
            "method": method, "task": task, "length": length, "runs": len(done),
            "solved": len(solved),
            "success": len(solved) / len(done) if done else None,
            "median_steps_to_solve": _median([r.metrics.get("steps_to_solve") for r in solved]),
            "median_final_error": _median([r.metrics.get("final_error") for r in done]),
            "failed": len(grp) - len(done),
        })
    out.sort(key=lambda d: (d["task"], d["length"], d["method"]))
    return out


def gradient_table(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Gradient-norm summary per (method, task) over the done runs.

    Returns
    -------
    list of dict
        Keys ``method``, ``task``, ``runs``, ``median_grad_norm`` (median over
        runs of each run's median global gradient norm), ``max_grad_norm``
        (largest finite norm of any run), ``clips``, ``fallbacks``,
        ``nonfinite`` (totals over the runs).

    Raises
    ------
    TypeError
        If ``rows`` is not a sequence of :class:`~rnntheory.experiments.store.Row`
        (the message names the first bad entry, ``rows[i]``), or an entry's
        ``spec`` is not a :class:`RunSpec` or its ``metrics`` not a dict.
    ValueError
        If an entry's ``status`` is not ``"done"`` or ``"failed"``.
    """
    rows = _check_rows(rows)
    labels = method_labels(rows)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.status == "done":
            groups[(labels[r.key], r.spec.task)].append(r)
    out = []
    for (method, task), grp in groups.items():
        mx = [r.metrics.get("grad_norm_max") for r in grp]
        mxf = [float(v) for v in mx if v is not None]
        out.append({
            "method": method, "task": task, "runs": len(grp),
            "median_grad_norm": _median([r.metrics.get("grad_norm_median") for r in grp]),
            "max_grad_norm": max(mxf) if mxf else None,
            "clips": sum(int(r.metrics.get("n_clips", 0)) for r in grp),
            "fallbacks": sum(int(r.metrics.get("n_fallbacks", 0)) for r in grp),
            "nonfinite": sum(int(r.metrics.get("n_nonfinite_grads", 0)) for r in grp),
        })
    out.sort(key=lambda d: (d["task"], d["method"]))
    return out


def flow_profiles(rows: Sequence[Row]) -> list[dict[str, Any]]:
    r"""Median gradient flow ``ln ‖∂h_t/∂h_0‖₂`` per (method, task, length) over the done runs.

    Each done run with a ``flow`` metric (see :func:`~rnntheory.experiments.run_one`)
    gives the log-norm profile of its final model on one fresh test
    sequence; the profiles of a group are interpolated onto the union of
    their steps ``t`` (a run only up to its last finite point) and their
    median is taken at every ``t``. ``bound_slope`` is the median of the
    runs' Eq. 12 slopes ``ln(γ_W γ_h)``, so the dashed line of the report
    is ``t · bound_slope``; each run's profile lies below its own line
    ``t · ln(γ_W γ_h)`` (Pascanu, Mikolov & Bengio 2013, Eq. 12).

    Parameters
    ----------
    rows : sequence of Row

    Returns
    -------
    list of dict
        Keys ``method``, ``task``, ``length``, ``runs`` (runs with a finite
        profile), ``t`` (float array of steps), ``log_norm`` (median at each
        ``t``; NaN where no run has a value), ``bound_slope`` (median slope,
        ``None`` for gated cells or when no run has one); sorted by task,
        length, method. Groups without any profile are left out.

    Raises
    ------
    TypeError
        If ``rows`` is not a sequence of :class:`~rnntheory.experiments.store.Row`
        (the message names the first bad entry, ``rows[i]``), or an entry's
        ``spec`` is not a :class:`RunSpec` or its ``metrics`` not a dict.
    ValueError
        If an entry's ``status`` is not ``"done"`` or ``"failed"``.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.store import Row
    >>> rows = [Row(str(s), RunSpec("adding", 10, seed=s), "done",
    ...             {"flow": {"t": [0, 1, 2], "log_norm": [0.0, -s, -2.0 * s],
    ...                       "bound_slope": 0.1 * s}}) for s in range(3)]
    >>> p = flow_profiles(rows)[0]
    >>> p["runs"], p["t"].tolist(), p["log_norm"].tolist(), round(p["bound_slope"], 12)
    (3, [0.0, 1.0, 2.0], [0.0, -1.0, -2.0], 0.1)
    """
    rows = _check_rows(rows)
    done = [r for r in rows if r.status == "done"]
    labels = method_labels(done)
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for r in done:
        groups[(r.spec.task, r.spec.length, labels[r.key])].append(r)
    out = []
    for (task, length, method), grp in sorted(groups.items()):
        curves, slopes = [], []
        for r in grp:
            flow = r.metrics.get("flow") if isinstance(r.metrics, dict) else None
            xy = _xy(flow, "t", "log_norm")
            if xy is None or not np.isfinite(xy[1]).any():
                continue
            curves.append(xy)
            slope = flow.get("bound_slope") if isinstance(flow, dict) else None
            if isinstance(slope, int | float) and np.isfinite(slope):
                slopes.append(float(slope))
        if not curves:
            continue
        t, med = _median_of(curves)
        out.append({
            "method": method, "task": task, "length": length, "runs": len(curves),
            "t": t, "log_norm": med,
            "bound_slope": float(np.median(slopes)) if slopes else None,
        })
    return out


def _norm_text(log_value: float) -> str:
    """``exp(log_value)`` as text, as a power of ten where it would overflow."""
    if abs(log_value) < 700.0:
        return f"{np.exp(log_value):.3g}"
    return f"10^{log_value / np.log(10.0):.0f}"


def _flow_sentence(profiles: Sequence[dict[str, Any]]) -> str:
    """One sentence on the profiles of one (task, length): who keeps the largest gradient."""
    ends = []
    for p in profiles:
        ok = np.flatnonzero(np.isfinite(p["log_norm"]))
        if ok.size:
            j = ok[-1]
            ends.append((float(p["log_norm"][j]), float(p["t"][j]), p))
    if not ends:
        return "No run has a finite gradient-flow profile."
    ends.sort(key=lambda e: -e[0])
    v, t, p = ends[0]
    text = (f"At its last step t = {t:.0f}, `{p['method']}` keeps the largest median "
            f"ln ‖∂h_t/∂h_0‖ ({v:.3g}, a norm of {_norm_text(v)})")
    if len(ends) > 1:
        v2, t2, p2 = ends[-1]
        text += (f" and `{p2['method']}` the smallest ({v2:.3g} at t = {t2:.0f}, "
                 f"a norm of {_norm_text(v2)})")
    if p["bound_slope"] is not None:
        text += (f"; Eq. 12 bounds it there by t · ln(γ_W γ_h) = "
                 f"{t * p['bound_slope']:.3g} (median slope {p['bound_slope']:.3g})")
    return text + "."


def _xy(c: Any, xkey: str, ykey: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` float arrays from a stored curve dict (``None`` → NaN), or ``None``."""
    if not isinstance(c, dict):
        return None
    try:
        x = np.asarray(c.get(xkey, []), dtype=np.float64)
        y = np.asarray([np.nan if v is None else v for v in c.get(ykey, [])], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if x.ndim == 1 and x.size and x.shape == y.shape and np.isfinite(x).all():
        return x, y
    return None


def _median_curve(runs: Sequence[Row], xkey: str, ykey: str) -> tuple[np.ndarray, np.ndarray]:
    """The median over runs of a curve, each run interpolated onto the union of the steps."""
    curves = []
    for r in runs:
        xy = _xy(r.metrics.get("curve") or {}, xkey, ykey)
        if xy is not None:
            curves.append(xy)
    return _median_of(curves)


def _median_of(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Columnwise median of curves interpolated onto the union of their x (NaN where none)."""
    if not curves:
        return np.zeros(0), np.zeros(0)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    stack = np.full((len(curves), grid.size), np.nan)
    for i, (x, y) in enumerate(curves):
        ok = np.isfinite(y)
        if ok.any():
            vals = np.interp(grid, x[ok], y[ok])
            vals[grid > x[ok].max()] = np.nan  # not past the run's last finite point
            stack[i] = vals
    med = np.full(grid.size, np.nan)
    for j in range(grid.size):
        col = stack[:, j][np.isfinite(stack[:, j])]
        if col.size:
            med[j] = np.median(col)
    return grid, med


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


_FIGURE_KINDS = ("success", "curves", "gradnorm", "flow")


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or Path(prefix or "x").name != (prefix or "x"):
        raise ValueError(f"`prefix` must be text without a folder separator, got {prefix!r}")
    return prefix


def _figure_patterns(prefix: str) -> tuple[str, ...]:
    return tuple(f"{glob.escape(prefix)}{k}_*.png" for k in _FIGURE_KINDS)


def render_figures(
    rows: Sequence[Row], out_dir: str | os.PathLike[str], *, prefix: str = "",
    force: bool = False,
) -> dict[str, Path]:
    """Draw the report's figures for ``rows`` into ``out_dir``.

    Parameters
    ----------
    rows : sequence of Row
        For a single experiment, pass only its rows.
    out_dir : str or os.PathLike
        Created when missing.
    prefix : str
        Prepended to every file name.
    force : bool
        Overwrite figure files (``<prefix>success_*.png``, ``curves_*``,
        ``gradnorm_*``, ``flow_*``) that the library did not write; without
        it such a file makes the call refuse before drawing (see
        :func:`write_report`).

    Returns
    -------
    dict of str to pathlib.Path
        Figure name (the file's stem) → file, in drawing order: ``success_<task>``
        per task, then ``curves_<task>_L<length>`` and ``gradnorm_<task>_L<length>``
        per (task, length), then ``flow_<task>_L<length>`` per (task, length)
        whose runs have a ``flow`` metric (:func:`flow_profiles`).

    Raises
    ------
    TypeError
        If ``rows`` is not a sequence of :class:`~rnntheory.experiments.store.Row`
        (the message names the first bad entry, ``rows[i]``); nothing is written.
    FileExistsError
        If ``out_dir`` holds a figure file of these names that the library does
        not own, and not ``force``.
    ValueError
        If ``out_dir`` is not a folder (or cannot be created) or ``prefix``
        holds a folder separator.
    """
    rows = _check_rows(rows)
    out = prepare_folder(out_dir, "out_dir")
    claim = OutputClaim(out, _figure_patterns(_check_prefix(prefix)), force=bool(force),
                        name="out_dir")
    figs = _render_figures(rows, out, prefix)
    claim.record()
    return figs


def _figure_context(rows: Sequence[Row]) -> str:
    """The model, sizes and budget shared by ``rows`` (what varies is in the method labels)."""

    def one(name: str) -> Any:
        vals = {getattr(r.spec, name) for r in rows}
        return next(iter(vals)) if len(vals) == 1 else None

    parts = []
    cell = one("cell")
    if cell is not None:
        name = "Elman" if cell == "rnn" else str(cell).upper()
        init, act = one("init"), one("activation") if cell == "rnn" else None
        inner = ", ".join(str(v) for v in (act, f"{init} init" if init else None) if v)
        parts.append(f"{name} ({inner})" if inner else name)
    for key, pattern in (("n_hidden", "n_hidden = {}"), ("optimizer", "{}"), ("lr", "lr {:g}"),
                        ("batch_size", "batch {}"), ("steps", "{} updates")):
        v = one(key)
        if v is not None:
            parts.append(pattern.format(v))
    seeds = sorted({r.spec.seed for r in rows})
    parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    return ", ".join(parts)


def _render_figures(rows: Sequence[Row], out: Path, prefix: str) -> dict[str, Path]:
    from ..plotting import success_vs_length, training_curves

    done = [r for r in rows if r.status == "done"]
    labels = method_labels(done)
    figs: dict[str, Path] = {}
    table = success_table(done)
    for task in sorted({d["task"] for d in table}):
        rates: dict[str, tuple[list[float], list[float]]] = {}
        for d in table:
            if d["task"] == task and d["success"] is not None:
                xs, ys = rates.setdefault(d["method"], ([], []))
                xs.append(float(d["length"]))
                ys.append(float(d["success"]))
        name = f"{prefix}success_{_slug(task)}"
        figs[name] = out / f"{name}.png"
        success_vs_length(rates, figs[name], title=f"{task}: success rate (error < 1 %)",
                          context=_figure_context([r for r in done if r.spec.task == task]))
    groups: dict[tuple[str, int], dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in done:
        groups[(r.spec.task, r.spec.length)][labels[r.key]].append(r)
    for (task, length), by_method in sorted(groups.items()):
        for kind, xkey, ykey, ylabel, logy in (
            ("curves", "eval_steps", "eval_error", "evaluation error", False),
            ("gradnorm", "loss_steps", "grad_norm", "global gradient norm", True),
        ):
            curves = {}
            for method, runs in sorted(by_method.items()):
                x, y = _median_curve(runs, xkey, ykey)
                if x.size:
                    curves[method] = (x, y)
            if not curves:
                continue
            name = f"{prefix}{kind}_{_slug(task)}_L{length}"
            figs[name] = out / f"{name}.png"
            training_curves(curves, figs[name], ylabel=ylabel, logy=logy,
                            title=f"{task}, length {length}: {ylabel} (median over seeds)",
                            context=_figure_context([r for rs in by_method.values() for r in rs]))
    flows: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for p in flow_profiles(done):
        flows[(p["task"], p["length"])].append(p)
    for (task, length), profs in sorted(flows.items()):
        name = f"{prefix}flow_{_slug(task)}_L{length}"
        figs[name] = out / f"{name}.png"
        ctx = _figure_context([r for r in done if (r.spec.task, r.spec.length) == (task, length)])
        _flow_figure(profs, figs[name], f"{task}, length {length}: gradient flow of the "
                     f"final model on one test sequence\n{ctx}")
    return figs


def _flow_figure(profiles: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Heatmap (rows: methods, columns: t) of the median ``ln ‖∂h_t/∂h_0‖`` and, beside it,
    the same medians against ``t`` with the dashed Eq. 12 lines ``t · bound_slope``."""
    from .._figures import DPI, figure_style, legend_outside, new_figure, save_figure

    grid = np.unique(np.concatenate([p["t"] for p in profiles]))
    Z = np.full((len(profiles), grid.size), np.nan)
    for i, p in enumerate(profiles):
        Z[i, np.searchsorted(grid, p["t"])] = p["log_norm"]
    if grid.size > 1:
        mid = (grid[1:] + grid[:-1]) / 2
        xe = np.concatenate([[grid[0] - (mid[0] - grid[0])], mid, [grid[-1] + (grid[-1] - mid[-1])]])
    else:
        xe = np.array([grid[0] - 0.5, grid[0] + 0.5])
    ye = np.arange(len(profiles) + 1) - 0.5
    fig = new_figure((12.5, 1.4 + max(3.0, 0.45 * len(profiles))))
    with figure_style():
        ax, ax2 = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(Z), cmap="viridis", shading="flat")
        mesh.set_gid("flow-heatmap")
        ax.set_yticks(np.arange(len(profiles)), [p["method"] for p in profiles], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("t (steps after h_0)")
        ax.set_title("median ln ‖∂h_t/∂h_0‖ per method", fontsize=10)
        fig.colorbar(mesh, ax=ax, label="ln ‖∂h_t/∂h_0‖₂")
        for i, p in enumerate(profiles):
            ok = np.isfinite(p["log_norm"])
            color = f"C{i % 10}"
            ax2.plot(p["t"][ok], p["log_norm"][ok], lw=1.6, color=color, label=p["method"],
                     gid=p["method"])
            if p["bound_slope"] is not None:
                ax2.plot(grid, grid * p["bound_slope"], ls="--", lw=1.0, color=color,
                         gid=f"bound:{p['method']}")
        if any(p["bound_slope"] is not None for p in profiles):
            ax2.plot([], [], ls="--", lw=1.0, color="0.4", label="Eq. 12: t · ln(γ_W γ_h)")
        ax2.set_xlabel("t")
        ax2.set_ylabel("ln ‖∂h_t/∂h_0‖₂ (median over seeds)")
        ax2.grid(alpha=0.3)
        legend_outside(ax2)
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path, DPI)


def _cell(v: Any, spec: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and spec:
        return format(v, spec)
    return str(v)


@dataclass
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The Markdown file.
    figures : dict of str to pathlib.Path
    success : list of dict
        :func:`success_table` of the rows.
    gradients : list of dict
        :func:`gradient_table` of the rows.
    n_failed : int
    flow : list of dict
        :func:`flow_profiles` of the rows (empty for a store without ``flow``
        metrics).
    """

    path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    success: list[dict[str, Any]] = field(default_factory=list)
    gradients: list[dict[str, Any]] = field(default_factory=list)
    n_failed: int = 0
    flow: list[dict[str, Any]] = field(default_factory=list)


def write_report(
    source: str | os.PathLike[str] | Store | Iterable[Row],
    out_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    prefix: str = "",
    name: str = "report.md",
    figures: bool = True,
    force: bool = False,
) -> ReportResult:
    """Write a Markdown report (tables and figures) of a results store.

    Parameters
    ----------
    source : path, Store or rows
        The results (a path to a store, an open :class:`Store`, or rows, e.g.
        the rows of one experiment).
    out_dir : str or os.PathLike
        The folder of the report and its figures (created when missing).
    title : str, optional
        The page's title (default: "Sweep report").
    prefix : str
        Prepended to the figures' file names.
    name : str
        The Markdown file's name.
    figures : bool
        Draw the figures (needs matplotlib).
    force : bool
        Overwrite files in ``out_dir`` that the library does not own. Without
        it, an existing ``name`` or figure file (``success_*.png``,
        ``curves_*.png``, ``gradnorm_*.png``, ``flow_*.png``, after
        ``prefix``) that an earlier report did not write, or that changed
        since, makes the call refuse before anything is written. The files
        written are recorded in ``out_dir/.rnntheory-outputs.json``.

    Returns
    -------
    ReportResult

    Raises
    ------
    FileNotFoundError
        If ``source`` is a path with no file.
    FileExistsError
        If ``out_dir`` holds a file of the report's names that the library
        does not own, and not ``force``.
    ValueError
        If there are no rows, ``source`` is not a results store, ``out_dir``
        is not a folder (or cannot be created), or ``name`` is not a plain
        file name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rnntheory.experiments import RunSpec
    >>> from rnntheory.experiments.store import Row
    >>> from rnntheory.experiments.report import write_report
    >>> rows = [Row(str(s), RunSpec("adding", 10, seed=s), "done", {"solved": s == 0})
    ...         for s in range(2)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rep = write_report(rows, d, figures=False)
    ...     text = rep.path.read_text()
    >>> rep.success[0]["success"], "| adding | 10 | 2 | 1 | 0.50 |" in text
    (0.5, True)
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"`name` must be a plain file name, got {name!r}")
    _check_prefix(prefix)
    rows = load_rows(source)
    if not rows:
        raise ValueError("`source` holds no runs to report on")
    out = prepare_folder(out_dir, "out_dir")
    claim = OutputClaim(out, (glob.escape(name), *_figure_patterns(prefix)), force=bool(force),
                        name="out_dir")
    done = [r for r in rows if r.status == "done"]
    failed = [r for r in rows if r.status == "failed"]
    succ = success_table(done)
    grads = gradient_table(done)
    flow = flow_profiles(done)
    figs = _render_figures(done, out, prefix) if figures and done else {}
    versions = sorted({r.version for r in rows})
    lines = [
        f"# {title or 'Sweep report'}",
        "",
        f"{len(rows)} runs: {len(done)} done, {len(failed)} failed "
        f"(rnntheory {', '.join(versions)}). A run is *solved* when its error on fresh "
        "sequences is below 1 % (Pascanu et al. 2013); updates to solve is the first "
        "evaluation step with an error below 1 %.",
        "",
        "## Success rates",
        "",
        markdown_table(
            ["method", "task", "length", "runs", "solved", "success", "median updates to solve",
             "median final error"],
            [[d["method"], d["task"], d["length"], d["runs"], d["solved"], _cell(d["success"], ".2f"),
              _cell(d["median_steps_to_solve"], ".0f"), _cell(d["median_final_error"], ".4g")]
             for d in succ],
            align=["left"] * 2 + ["right"] * 6,
        ),
    ]
    lines += ["", "## Gradient norms", "",
              "Global gradient norm before the remedies, per update.", "",
              markdown_table(
                  ["method", "task", "runs", "median norm", "max norm", "clips", "fallbacks",
                   "non-finite"],
                  [[g["method"], g["task"], g["runs"], _cell(g["median_grad_norm"], ".4g"),
                    _cell(g["max_grad_norm"], ".4g"), g["clips"], g["fallbacks"], g["nonfinite"]]
                   for g in grads],
                  align=["left"] * 2 + ["right"] * 6,
              )]
    if flow:
        lines += ["", "## Gradient flow", "",
                  "ln ‖∂h_t/∂h_0‖₂ of each run's final model on one fresh test sequence "
                  "(the LSTM's state is (h, c)), median over seeds per method: a heatmap "
                  "with one row per method and, beside it, the same medians against t with "
                  "Eq. 12's bound t · ln(γ_W γ_h) dashed (Elman cells; median slope over "
                  "seeds; every run lies below its own bound).", ""]
        by_group: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for p in flow:
            by_group[(p["task"], p["length"])].append(p)
        for (task, length), profs in sorted(by_group.items()):
            stem = f"{prefix}flow_{_slug(task)}_L{length}"
            lines += [f"**{task}, length {length}.** {_flow_sentence(profs)}", ""]
            if stem in figs:
                lines += [f"![{stem}]({figs[stem].name})", ""]
    others = {k: v for k, v in figs.items() if not k.startswith(f"{prefix}flow_")}
    if others:
        lines += ["", "## Figures", ""]
        for stem, path in others.items():
            lines += [f"![{stem}]({path.name})", ""]
    if failed:
        lines += ["", "## Failed runs", "",
                  "Run the sweep again to retry them.", ""]
        for r in failed:
            first = (r.error or "").splitlines()[0] if r.error else ""
            lines.append(f"- `{r.key[:12]}` {r.spec.label()} {r.spec.task} L={r.spec.length} "
                         f"seed={r.spec.seed}: {first}")
    md = out / name
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    claim.record()
    return ReportResult(md, figs, succ, grads, len(failed), flow)


def cli_report(args: Any) -> int:
    """The ``rnntheory report RESULTS.db [--out DIR]`` command (``args`` from :mod:`argparse`).

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    FileNotFoundError, FileExistsError, ValueError, TypeError
        As :func:`write_report`; :func:`rnntheory.cli.main` prints them as one
        line and exits with status 2.
    """
    res = write_report(args.db, args.out, title=args.title, force=bool(getattr(args, "force", False)))
    print(f"wrote {res.path} with {len(res.figures)} figures "
          f"({sum(d['runs'] for d in res.success)} done runs, {res.n_failed} failed)")
    return 0
