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

__all__ = ["DPI", "figure_style", "new_figure", "save_figure"]

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
