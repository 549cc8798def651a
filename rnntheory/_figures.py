"""Package-internal figure plumbing shared by :mod:`rnntheory.plotting` and the experiments.

Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas, built
without ``pyplot`` and drawn in matplotlib's default style: nothing is
registered with pyplot's figure manager, the process-wide backend is left as it
is, and the output does not depend on the user's ``matplotlibrc``. matplotlib is
imported inside the functions, never by ``import rnntheory``.

Not public API: the names here are public only so that the modules which draw
(plotting, the experiments' figures) share one copy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "check_context",
    "draw_success",
    "figure_style",
    "legend_outside",
    "new_figure",
    "save_figure",
    "with_context",
]

DPI = 100
"""Resolution (dots per inch) of every figure the package draws, unless the caller sets one."""


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure of ``figsize`` inches at :data:`DPI` on an Agg canvas, in matplotlib's default style (no pyplot)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - the plot extra is in dev
        raise ImportError(
            "rnntheory.plotting needs matplotlib: pip install 'rnntheory[plot]'"
        ) from exc
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    del matplotlib
    with figure_style():
        fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_style() -> Any:
    """matplotlib's default style as a context manager (``backend`` and other process settings untouched)."""
    import matplotlib.style

    return matplotlib.style.context("default")


def save_figure(fig: Figure, path: str | os.PathLike[str] | None, dpi: float) -> None:
    """Write ``fig`` to ``path`` (nothing when ``path`` is None); the suffix picks the format.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike, or names a file with bytes.
    ValueError
        ``path`` does not end in an image suffix the canvas can write.
    """
    if path is None:
        return
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"`path` must name a file with a str, got {text!r}")
    suffix = os.path.splitext(text)[1][1:].lower()
    formats = fig.canvas.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(
            f"`path` must end in one of the image suffixes {sorted(formats)}, got {text!r}"
        )
    with figure_style():
        fig.savefig(text, dpi=dpi)


def check_context(context: Any) -> str | None:
    """``context`` (the model, sizes and data a figure shows) as a stripped str, or None.

    Raises
    ------
    TypeError
        ``context`` is neither a str nor None.
    """
    if context is None:
        return None
    if not isinstance(context, str):
        raise TypeError(f"`context` must be a str or None, got {type(context).__name__}")
    return context.strip() or None


def with_context(title: str, context: str | None, width: int = 64) -> str:
    """``title`` with ``context`` below it, both wrapped at ``width`` characters (a title
    longer than the figure is wide ran off both edges of the canvas)."""
    import textwrap

    lines = textwrap.wrap(title, width, break_on_hyphens=False) or [title]
    if context:
        lines += textwrap.wrap(context, width, break_on_hyphens=False)
    return "\n".join(lines)


def legend_outside(ax: Any, *, fontsize: float = 8, ncol: int = 1) -> Any:
    """The legend of ``ax`` to the right of the axes, top-aligned, outside them.

    A legend inside the axes covers the data wherever the curves fill them
    (``loc="best"`` only picks the least-covered corner); outside, it covers
    nothing. The constrained layout of :func:`new_figure` shrinks the axes to
    make room. Returns the legend, or None when ``ax`` has no labelled artist.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, frameon=False, fontsize=fontsize, ncol=ncol)


def draw_success(ax: Any, rates: dict[str, tuple[Any, Any]], *, percent: bool = False) -> bool:
    """Success rates against the sequence length on ``ax``: lines, or bars for one length.

    ``rates`` maps a method to ``(lengths, rates)`` with rates in ``[0, 1]``.
    Over several lengths each method is a line with markers (gid: its label),
    each with its own marker, size and dash pattern (coinciding lines stay visible).
    When every method was run at one and the same length, a line would be a
    lone marker on an axis of five meaningless units, so each method becomes a
    bar (gid: its label) named by its tick, with its rate written above it (a
    zero rate is a bar of no height, and still reads ``0 %``). Returns True
    when bars were drawn. ``percent`` draws rates as percentages.
    """
    import numpy as np

    scale = 100.0 if percent else 1.0
    lengths = sorted({float(v) for x, _ in rates.values() for v in np.asarray(x, dtype=float)})
    top = 105.0 if percent else 1.05
    if len(lengths) == 1:
        names = list(rates)
        for i, name in enumerate(names):
            y = float(np.asarray(rates[name][1], dtype=float)[0])
            bars = ax.bar([i], [scale * y], width=0.6, color=f"C{i % 10}", label=name)
            for patch in bars.patches:
                patch.set_gid(name)
            ax.annotate(f"{100.0 * y:.0f} %", xy=(i, scale * y), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        gid=f"{name}-value")
        ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 2 else 0,
                      ha="right" if len(names) > 2 else "center", fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(0.0, 1.15 * top)
        ax.set_xlabel(f"method (sequence length {lengths[0]:g})")
        return True
    # methods with the same rates draw the same line: each has its own marker, a
    # smaller one than the methods before it, and its own dash pattern, so every
    # method stays visible where lines coincide
    markers, dashes = "osD^vPX*", ("-", "--", "-.", ":")
    for i, (name, (x, y)) in enumerate(rates.items()):
        xs = np.asarray(x, dtype=float)
        ys = np.asarray(y, dtype=float)
        order = np.argsort(xs)
        ax.plot(xs[order], scale * ys[order], marker=markers[i % len(markers)],
                markersize=max(3.0, 9.0 - 1.2 * (i % 6)), ls=dashes[i % len(dashes)], lw=1.8,
                color=f"C{i % 10}", label=name, gid=name)
    ax.set_ylim(-0.05 * scale, top)
    ax.set_xlabel("sequence length")
    return False
