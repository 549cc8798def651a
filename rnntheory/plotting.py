"""Figures: the derivatives of the activations and the flow of gradients in time.

The article refers to plots of ``tanh′`` and ``σ′`` that it does not include;
:func:`activation_derivatives` draws them from the library's own code
(:meth:`rnntheory.activations.Activation.fprime`) and marks the maximum
``γ_h = sup_x |f′(x)|`` of each. :func:`gradient_flow_heatmap` shows
``ln ‖∂h_t/∂h_k‖`` over every pair ``(t, k)`` (the output of
:func:`rnntheory.jacobians.log_norms`), optionally with the contours of a bound,
and :func:`norm_vs_lag` its mean along each lag ``τ = t − k`` against Eq. 12's
line ``τ · ln(γ_W γ_h)``.

matplotlib is an optional dependency (the ``plot`` extra,
``pip install "rnntheory[plot]"``) and is imported inside the functions, never
by ``import rnntheory``. Figures are built as :class:`matplotlib.figure.Figure`
objects on an Agg canvas, without ``pyplot``: nothing is registered with
pyplot's figure manager, the process-wide backend is left as it is (an
interactive session keeps its own), and the output does not depend on the
user's ``matplotlibrc`` (the default style is used).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from ._figures import (
    DPI,
    check_context,
    draw_success,
    figure_style,
    legend_outside,
    new_figure,
    save_figure,
    with_context,
)
from ._linalg import spectral_norm
from ._validation import is_real_dtype
from .activations import get_activation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "activation_derivatives",
    "eigenvalues_unit_circle",
    "gradient_flow_heatmap",
    "norm_vs_lag",
    "success_vs_length",
    "training_curves",
]

# Below 8 dpi FreeType cannot size the tick labels; above 1200 dpi one figure
# takes hundreds of megabytes.
_DPI_RANGE = (8.0, 1200.0)


def _check_dpi(dpi: Any) -> float:
    lo, hi = _DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, int | float | np.integer | np.floating):
        raise ValueError(f"`dpi` must be a positive number in [{lo:g}, {hi:g}], got {dpi!r}")
    if not (lo <= dpi <= hi):  # also false for NaN; no float() of a huge int
        raise ValueError(f"`dpi` must be a positive number in [{lo:g}, {hi:g}], got {dpi!r}")
    return float(dpi)


def _check_log_norms(log_norms: Any, name: str = "log_norms") -> np.ndarray:
    """A square float array with no NaN and no +inf (``−inf`` allowed)."""
    try:
        L = np.asarray(log_norms)
    except Exception as exc:  # pragma: no cover - numpy raises many types
        raise ValueError(f"`{name}` must be array-like, got {type(log_norms).__name__}") from exc
    if not is_real_dtype(L.dtype):
        raise ValueError(f"`{name}` must be a real array, got dtype {L.dtype}")
    if L.ndim != 2 or L.shape[0] != L.shape[1] or L.shape[0] < 2:
        raise ValueError(
            f"`{name}` must be a square (T+1, T+1) array with T >= 1, got shape {L.shape}"
        )
    L = L.astype(np.float64)
    if np.isnan(L).any() or np.isposinf(L).any():
        bad = int(np.isnan(L).sum() + np.isposinf(L).sum())
        raise ValueError(
            f"`{name}` must not contain NaN or +inf (−inf marks k > t or a zero "
            f"product), got {bad} such entr{'y' if bad == 1 else 'ies'}"
        )
    if not np.isfinite(L).any():
        raise ValueError(f"`{name}` has no finite entry to plot")
    big = float(np.max(np.abs(L[np.isfinite(L)])))
    if big > _LOG_LIMIT:
        raise ValueError(
            f"`{name}` must hold log-norms within ±{_LOG_LIMIT:g} (colour scales and "
            f"contour levels overflow beyond), got an entry of magnitude {big:.6g}"
        )
    return L


# ln of a product of T float64 factors lies within ±T·745; an entry beyond 1e300
# is not a log-norm, and the colour and contour arithmetic overflows on it.
_LOG_LIMIT = 1e300


def _fraction(v: float) -> str:
    f = Fraction(v).limit_denominator(64)
    return str(f) if float(f) == v else f"{v:.4g}"


_TEX = {"tanh": r"\tanh", "sigmoid": r"\sigma", "identity": r"\mathrm{id}", "relu": r"\mathrm{relu}"}


def activation_derivatives(
    path: str | os.PathLike[str] | None = None,
    *,
    activations: Sequence[str] = ("tanh", "sigmoid"),
    x_max: float = 6.0,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""Plot ``f′`` of each activation and mark its maximum ``γ_h``.

    The curves are computed by the library itself,
    ``rnntheory.activations.get_activation(name).fprime``, on a grid symmetric
    about 0 (so it contains the maximiser ``x = 0`` of tanh′ and σ′ exactly).
    Each maximum ``γ_h = sup_x |f′(x)|`` is drawn as a marker at
    ``(argmax, γ_h)``, with a dotted level line and a label: ``γ_h = 1`` at
    ``x = 0`` for tanh, ``γ_h = 1/4`` at ``x = 0`` for the sigmoid. These are
    the figures the article refers to (the derivative of tanh and of the
    sigmoid, Eqs. 10–11) without including them.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Where to save the figure; the format follows the suffix (``.png``, ``.svg``, …).
    activations : sequence of str
        Names accepted by :func:`rnntheory.activations.get_activation`.
    x_max : float
        The grid spans ``[−x_max, x_max]`` with spacing 0.01.
    context : str, optional
        A second title line (where the figure is used, for example).
    dpi : float
        Resolution of the saved file (and of the figure), dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the curve of activation ``name`` is the line with
        ``get_gid() == name``, its maximum the line with gid ``name + "-max"``.
        The title names the activations and the interval; the legend lies
        outside the axes.

    Raises
    ------
    ValueError
        If ``activations`` is empty or names an unknown activation, or
        ``x_max`` or ``dpi`` is not a positive finite number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.plotting import activation_derivatives
    >>> fig = activation_derivatives()
    >>> lines = {ln.get_gid(): ln for ln in fig.axes[0].lines}
    >>> float(np.max(lines["sigmoid"].get_ydata()))
    0.25
    >>> tuple(float(v[0]) for v in lines["tanh-max"].get_data())
    (0.0, 1.0)
    """
    dpi = _check_dpi(dpi)
    if isinstance(x_max, bool) or not isinstance(x_max, int | float | np.integer | np.floating):
        raise ValueError(f"`x_max` must be a positive number in [0.01, 1000], got {x_max!r}")
    if not (0.01 <= x_max <= 1e3):  # a narrower axis has identical limits in float64 ticks
        raise ValueError(f"`x_max` must be a positive number in [0.01, 1000], got {x_max!r}")
    if isinstance(activations, str):
        activations = (activations,)
    if not isinstance(activations, list | tuple):
        raise TypeError(
            f"`activations` must be a name or a sequence of names, got {type(activations).__name__}"
        )
    acts = []
    for a in activations:
        try:
            acts.append(get_activation(a))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`activations` holds an unknown activation: {exc}") from None
    if not acts:
        raise ValueError("`activations` must name at least one activation, got an empty sequence")
    context = check_context(context)

    half = np.linspace(0.0, float(x_max), round(float(x_max) * 100) + 1)
    x = np.concatenate([-half[:0:-1], half])

    fig = new_figure((7.2, 3.8))
    with figure_style():
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        for i, act in enumerate(acts):
            color = f"C{i}"
            tex = _TEX.get(act.name, act.name)
            y = np.asarray(act.fprime(x), dtype=np.float64)
            ax.plot(x, y, color=color, lw=2, label=rf"${tex}'(x)$", gid=act.name)
            g, x0 = act.gamma_h, act.argmax
            ax.axhline(g, color=color, lw=0.8, ls=":", gid=f"{act.name}-level")
            ax.plot([x0], [g], "o", color=color, ms=7, zorder=3, gid=f"{act.name}-max")
            ax.annotate(
                rf"$\gamma_h = \sup|{tex}'| = {_fraction(g)}$ at $x = {x0:g}$",
                xy=(x0, g),
                xytext=(12, -14 if i % 2 == 0 else 8),
                textcoords="offset points",
                color=color,
                fontsize=10,
                gid=f"{act.name}-label",
            )
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(0.0, 1.12 * max(a.gamma_h for a in acts))
        ax.set_xlabel("$x$")
        ax.set_ylabel("$f'(x)$")
        names = ", ".join(f"${_TEX.get(a.name, a.name)}'$" for a in acts)
        ax.set_title(with_context(
            rf"{names} on $[-{float(x_max):g}, {float(x_max):g}]$ and their maxima $\gamma_h$",
            context))
        legend_outside(ax, fontsize=10)
        ax.grid(alpha=0.3)
    save_figure(fig, path, dpi)
    return fig


def gradient_flow_heatmap(
    log_norms: Any,
    path: str | os.PathLike[str] | None = None,
    bound: Any = None,
    *,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""Heatmap of ``ln ‖∂h_t/∂h_k‖`` over every pair ``(t, k)``.

    Rows are the target step ``t`` (vertical axis, growing upwards), columns
    the source step ``k``; ``−inf`` entries (``k > t``, or an exactly zero
    product) are masked and left blank. With ``bound``, the contours of a bound
    matrix of the same shape (for example
    ``rnntheory.bounds.log_bound(W, act, t − k)`` on the grid, or
    :func:`rnntheory.bounds.pair_log_bounds`) are drawn over the heatmap, so
    the pairs where the observed norm approaches the bound can be seen.

    Parameters
    ----------
    log_norms : array, shape ``(T+1, T+1)``
        ``[t, k] = ln ‖∂h_t/∂h_k‖``, as returned by
        :func:`rnntheory.jacobians.log_norms`; ``−inf`` allowed, NaN and ``+inf`` not.
    path : str or os.PathLike, optional
        Where to save the figure.
    bound : array, shape ``(T+1, T+1)``, optional
        A log bound on every pair (``−inf`` masked), drawn as contour lines:
        at most six levels, labelled in 9-point type with a dark outline.
    context : str, optional
        The model, its sizes and the data, e.g. ``"Elman, smart tanh,
        n_hidden = 50, T = 100, seed 0"``: the second line of the title.
    dpi : float
        Resolution, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        The heatmap is ``fig.axes[0].images[0]`` (gid ``"log_norms"``), its
        array the masked ``log_norms``; the contours (gid ``"bound"``) are
        ``fig.axes[0].collections``, their labels ``fig.axes[0].texts``.

    Raises
    ------
    ValueError
        If ``log_norms`` is not a real square array with ``T ≥ 1``, holds NaN or
        ``+inf`` or no finite entry; if ``bound`` does not have the same shape
        or holds NaN or ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.plotting import gradient_flow_heatmap
    >>> t, k = np.indices((4, 4))
    >>> L = np.where(k <= t, (t - k) * np.log(0.5), -np.inf)
    >>> im = gradient_flow_heatmap(L).axes[0].images[0]
    >>> bool(im.get_array().mask[0, 3]), float(im.get_array()[3, 0]) == float(3 * np.log(0.5))
    (True, True)
    """
    dpi = _check_dpi(dpi)
    L = _check_log_norms(log_norms)
    B = None
    if bound is not None:
        B = _check_log_norms(bound, "bound")
        if B.shape != L.shape:
            raise ValueError(
                f"`bound` must have the shape of `log_norms` {L.shape}, got shape {B.shape}"
            )
    context = check_context(context)
    n = L.shape[0]
    data = np.ma.masked_where(np.isneginf(L), L)
    fig = new_figure((5.6, 4.6))
    with figure_style():
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        im = ax.imshow(
            data, origin="lower", cmap="viridis", interpolation="nearest",
            extent=(-0.5, n - 0.5, -0.5, n - 0.5), aspect="equal",
        )
        im.set_gid("log_norms")
        fig.colorbar(im, ax=ax, label=r"$\ln\Vert\partial h_t/\partial h_k\Vert$")
        if B is not None:
            finite = B[np.isfinite(B)]
            lo, hi = float(finite.min()), float(finite.max())
            if hi > lo:
                from matplotlib.ticker import MaxNLocator

                # few levels, so that each label has room along its contour
                levels = [v for v in MaxNLocator(nbins=5).tick_values(lo, hi) if lo <= v <= hi]
            else:
                levels = []
            if len(levels) >= 1:
                idx = np.arange(n)
                cs = ax.contour(
                    idx, idx, np.ma.masked_where(np.isneginf(B), B),
                    levels=levels, colors="white", linewidths=0.8,
                )
                cs.set_gid("bound")
                from matplotlib import patheffects

                labels = ax.clabel(cs, fontsize=9, fmt="%.3g", inline=True, inline_spacing=6)
                for text in labels:
                    text.set_path_effects([patheffects.withStroke(linewidth=2.0, foreground="0.15")])
        ax.set_xlabel("source step $k$")
        ax.set_ylabel("target step $t$")
        ax.set_title(with_context(r"$\ln\Vert\partial h_t/\partial h_k\Vert$"
                                  + (" and the bound (contours)" if B is not None else ""),
                                  context), fontsize=10)
    save_figure(fig, path, dpi)
    return fig


def _lag_stats(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lags ``τ = 0..T`` and the mean, min and max of the finite ``L[k+τ, k]``."""
    n = L.shape[0]
    lags = np.arange(n)
    mean = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    for tau in lags:
        d = np.diagonal(L, offset=-int(tau))
        d = d[np.isfinite(d)]
        if d.size:
            mean[tau], lo[tau], hi[tau] = d.mean(), d.min(), d.max()
    return lags, mean, lo, hi


def norm_vs_lag(
    log_norms: Any,
    path: str | os.PathLike[str] | None = None,
    rate: float | None = None,
    *,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""Mean ``ln ‖∂h_{k+τ}/∂h_k‖`` against the lag ``τ``, with Eq. 12's line.

    For each lag ``τ = 0 … T`` the finite entries ``L[k+τ, k]`` of the matrix
    are averaged over ``k`` (a ``−inf``, an exactly zero product, is left out;
    a lag with none left is not drawn), and their range is shaded. Eq. 12 of
    the article bounds every one of them by ``τ · ln(γ_W γ_h)``; pass that rate
    to draw the line.

    Parameters
    ----------
    log_norms : array, shape ``(T+1, T+1)``
        ``[t, k] = ln ‖∂h_t/∂h_k‖``, as returned by
        :func:`rnntheory.jacobians.log_norms`.
    path : str or os.PathLike, optional
        Where to save the figure.
    rate : float, optional
        The log rate ``ln(γ_W γ_h)`` per step, e.g.
        ``np.log(rnntheory.bounds.decay_rate(W, "tanh"))``; the line
        ``τ · rate`` is drawn (gid ``"eq12"``).
    context : str, optional
        The model, its sizes and the data: the second line of the title.
    dpi : float
        Resolution, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        The mean is the line with gid ``"mean"`` (x: the lags, y: the means);
        the legend lies outside the axes, on the right.

    Raises
    ------
    ValueError
        If ``log_norms`` is malformed (see :func:`gradient_flow_heatmap`) or
        ``rate`` is not a finite real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.plotting import norm_vs_lag
    >>> t, k = np.indices((5, 5))
    >>> L = np.where(k <= t, (t - k) * np.log(0.5), -np.inf)
    >>> fig = norm_vs_lag(L, rate=np.log(0.5))
    >>> lines = {ln.get_gid(): ln for ln in fig.axes[0].lines}
    >>> bool(np.allclose(lines["mean"].get_ydata(), lines["eq12"].get_ydata()))
    True
    """
    dpi = _check_dpi(dpi)
    L = _check_log_norms(log_norms)
    r: float | None = None
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.integer | np.floating):
            raise ValueError(f"`rate` must be a finite real number (ln(γ_W γ_h)), got {rate!r}")
        try:
            r = float(rate)
        except OverflowError:
            r = float("inf")
        if not np.isfinite(r):
            raise ValueError(f"`rate` must be a finite real number (ln(γ_W γ_h)), got {rate!r}")
    context = check_context(context)
    lags, mean, lo, hi = _lag_stats(L)
    fig = new_figure((8.0, 3.8))
    with figure_style():
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        ok = np.isfinite(mean)
        ax.fill_between(lags[ok], lo[ok], hi[ok], color="C0", alpha=0.2, lw=0,
                        label="range over $k$", gid="range")
        ax.plot(lags[ok], mean[ok], color="C0", lw=2, marker="." if lags.size <= 60 else None,
                label=r"mean over $k$ of $\ln\Vert\partial h_{k+\tau}/\partial h_k\Vert$",
                gid="mean")
        if r is not None:
            ax.plot(lags, lags * r, color="C3", ls="--", lw=1.5,
                    label=rf"Eq. 12: $\tau\,\ln(\gamma_W\gamma_h)$, rate {r:.3g}", gid="eq12")
        ax.set_xlabel(r"lag $\tau = t - k$")
        ax.set_ylabel(r"$\ln\Vert\partial h_{k+\tau}/\partial h_k\Vert$")
        ax.set_title(with_context("Gradient norm against the lag", context), fontsize=10)
        legend_outside(ax)
        ax.grid(alpha=0.3)
    save_figure(fig, path, dpi)
    return fig


def eigenvalues_unit_circle(
    matrices: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    activations: Any = None,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""Eigenvalues of recurrent matrices against the unit, ``1/γ_h`` and ``σ_max`` circles.

    One panel per label. Each panel scatters the eigenvalues of every matrix
    of its group in the complex plane, draws the unit circle ``|λ| = 1``,
    dashed, the circle of radius ``max σ_max(W)`` over the group and, when the
    group's activation is given, dotted, the circle of radius ``1/γ_h`` (4
    for the sigmoid, whose ``γ_h = 1/4``; 1 for tanh). Every eigenvalue lies
    inside the ``σ_max`` circle (``ρ(W) ≤ σ_max(W)``); the gap between the two
    is what the spectral radius hides. Vanishing is guaranteed when the
    ``σ_max`` circle lies inside the ``1/γ_h`` circle (Eq. 12 needs
    ``σ_max < 1/γ_h``), and a matrix with all eigenvalues inside the unit
    circle can still have ``σ_max > 1/γ_h`` (Pascanu et al. 2013, §2.1).

    Parameters
    ----------
    matrices : mapping of str to sequence of arrays
        ``{label: [W, …]}``, each ``W`` a real square matrix (finite).
    path : str or os.PathLike, optional
        Where to save the figure.
    activations : str or mapping of str to str, optional
        The activation of every group (a name of
        :func:`rnntheory.activations.get_activation`), or ``{label: name}``
        for some groups: their panels draw the ``1/γ_h`` circle.
    context : str, optional
        The model, its sizes and the data (e.g. ``"Elman W_hh, n_hidden = 50,
        seeds 0–4"``): the figure's title.
    dpi : float
        Resolution, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        Panel ``i`` is ``fig.axes[i]`` (title: its label); the eigenvalues are the
        collection with gid ``"eigenvalues"``, the circles the lines with gids
        ``"unit"``, ``"sigma_max"`` and ``"inv_gamma_h"`` (each radius in its
        ``get_label()`` and its data). Each panel's legend lies below it.

    Raises
    ------
    ValueError
        If ``matrices`` is empty, a group is empty, or a matrix is not real,
        square and finite; if ``activations`` names an unknown activation or
        a label that ``matrices`` does not have.
    TypeError
        If ``activations`` is neither a str, a mapping nor None.

    Examples
    --------
    >>> import numpy as np
    >>> from rnntheory.plotting import eigenvalues_unit_circle
    >>> W = np.array([[0.5, 4.0], [0.0, 0.5]])
    >>> fig = eigenvalues_unit_circle({"non-normal": [W]})
    >>> circ = {ln.get_gid(): ln for ln in fig.axes[0].lines}["sigma_max"]
    >>> round(float(np.max(np.hypot(*circ.get_data()))), 4)
    4.0616

    Pascanu et al. 2013, §2.1 (spectral radius vs largest singular value).
    """
    from ._validation import as_float_array

    dpi = _check_dpi(dpi)
    if not hasattr(matrices, "items") or not matrices:
        raise ValueError(
            f"`matrices` must be a non-empty mapping {{label: [W, ...]}}, got {type(matrices).__name__}"
        )
    groups: list[tuple[str, list[np.ndarray]]] = []
    for label, mats in matrices.items():
        if isinstance(mats, np.ndarray) and mats.ndim == 2:
            seq = [mats]
        elif isinstance(mats, list | tuple) or (isinstance(mats, np.ndarray) and mats.ndim == 3):
            seq = list(mats)
        else:
            raise TypeError(
                f"`matrices[{label!r}]` must be a matrix or a list of matrices, got {type(mats).__name__}"
            )
        if not seq:
            raise ValueError(f"`matrices[{label!r}]` must hold at least one matrix, got none")
        arrs = []
        for W in seq:
            A = as_float_array(f"matrices[{label!r}]", W, ndim=2, dtype=np.dtype(np.float64))
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"`matrices[{label!r}]` must hold square matrices, got shape {A.shape}")
            arrs.append(A)
        groups.append((str(label), arrs))
    acts = _group_activations(activations, [g for g, _ in groups])
    context = check_context(context)
    theta = np.linspace(0.0, 2.0 * np.pi, 361)
    fig = new_figure((3.6 * len(groups), 4.6 if context else 4.3))
    with figure_style():
        fig.set_dpi(dpi)
        panels = fig.subfigures(1, len(groups), squeeze=False)[0]
        for i, (label, arrs) in enumerate(groups):
            ax = panels[i].add_subplot()
            eig = np.concatenate([np.linalg.eigvals(A) for A in arrs])
            smax = max(spectral_norm(A) for A in arrs)
            rho = float(np.max(np.abs(eig)))
            ax.plot(np.cos(theta), np.sin(theta), color="k", lw=1.0, gid="unit",
                    label=r"$|\lambda| = 1$")
            reach = max(1.0, smax)
            act = acts.get(label)
            if act is not None:
                inv = 1.0 / act.gamma_h
                reach = max(reach, inv)
                ax.plot(inv * np.cos(theta), inv * np.sin(theta), color="C2", ls=":", lw=1.8,
                        gid="inv_gamma_h",
                        label=rf"$1/\gamma_h = {_fraction(inv)}$ ({act.name})")
            ax.plot(smax * np.cos(theta), smax * np.sin(theta), color="C3", ls="--", lw=1.2,
                    gid="sigma_max", label=rf"$\sigma_{{\max}} = {smax:.3g}$")
            sc = ax.scatter(eig.real, eig.imag, s=6, color="C0", alpha=0.6,
                            label=rf"eigenvalues, $\rho = {rho:.3g}$")
            sc.set_gid("eigenvalues")
            r = 1.08 * reach
            ax.set_xlim(-r, r)
            ax.set_ylim(-r, r)
            ax.set_aspect("equal")
            ax.set_xlabel(r"Re $\lambda$")
            ax.set_ylabel(r"Im $\lambda$")
            ax.set_title(label, fontsize=10)
            ax.grid(alpha=0.3)
            # below the panel, outside the axes: the circles fill them
            panels[i].legend(*ax.get_legend_handles_labels(), loc="outside lower center",
                             ncol=2, fontsize=7, frameon=False)
        if context:
            fig.suptitle(context, fontsize=10)
    save_figure(fig, path, dpi)
    return fig


def _group_activations(activations: Any, labels: list[str]) -> dict[str, Any]:
    """``{label: Activation}`` from a name for every group or a ``{label: name}`` mapping."""
    if activations is None:
        return {}
    if isinstance(activations, str):
        names = dict.fromkeys(labels, activations)
    elif hasattr(activations, "items"):
        names = {}
        for k, v in activations.items():
            if str(k) not in labels:
                raise ValueError(
                    f"`activations` names the group {k!r}, which `matrices` does not have "
                    f"(groups: {labels})"
                )
            names[str(k)] = v
    else:
        raise TypeError(
            f"`activations` must be an activation name, a mapping label -> name or None, "
            f"got {type(activations).__name__}"
        )
    out = {}
    for k, v in names.items():
        try:
            out[k] = get_activation(v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`activations[{k!r}]` is not an activation: {exc}") from None
    return out


def _check_curves(curves: Any, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{label: (x, y)}`` as pairs of 1-D float arrays of one length; ``x`` finite, ``y`` may hold NaN."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"`{name}` must be a non-empty dict label -> (x, y), got {type(curves).__name__}")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label, pair in curves.items():
        if not isinstance(label, str):
            raise ValueError(f"`{name}` labels must be strings, got {label!r}")
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"`{name}[{label!r}]` must be a pair (x, y), got {type(pair).__name__}")
        try:
            x = np.asarray(pair[0], dtype=np.float64)
            y = np.asarray(pair[1], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`{name}[{label!r}]` must hold real numbers: {exc}") from None
        if x.ndim != 1 or y.shape != x.shape or x.size == 0:
            raise ValueError(
                f"`{name}[{label!r}]` must be two 1-D arrays of the same non-zero length, "
                f"got shapes {x.shape} and {y.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(f"`{name}[{label!r}]`: x must be finite")
        out[label] = (x, y)
    return out


def success_vs_length(
    rates: dict[str, tuple[Any, Any]],
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""Success rate against sequence length, one line per method (Pascanu et al. 2013, Fig. 7).

    A run *succeeds* when its error on fresh sequences is below 1 %; the rate
    of a method at a length is the fraction of its seeds that succeed. When
    every method was run at one and the same length, each method is a bar
    (a line through one point on a sequence-length axis would say nothing),
    its rate written above it.

    Parameters
    ----------
    rates : dict of str to (lengths, rates)
        Per method: the sequence lengths and the success rate in ``[0, 1]`` at each.
    path : str or os.PathLike, optional
        Where to save the figure.
    title : str, optional
    context : str, optional
        The model, its sizes and the data (e.g. ``"Elman, smart tanh,
        n_hidden = 50, MSGD lr 0.1, 5 seeds"``): the second line of the title.
    dpi : float
        Resolution, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One line per method in ``fig.axes[0].lines``, its gid the method's
        label; with a single length, one bar per method instead
        (``fig.axes[0].patches``, gid the method's label). The legend lies
        outside the axes.

    Raises
    ------
    ValueError
        On an empty mapping, mismatched arrays, or a rate outside ``[0, 1]``.

    Examples
    --------
    >>> from rnntheory.plotting import success_vs_length
    >>> fig = success_vs_length({"clip": ([50, 100], [1.0, 0.6]), "none": ([50, 100], [0.2, 0.0])})
    >>> [ln.get_gid() for ln in fig.axes[0].lines], fig.axes[0].lines[0].get_ydata().tolist()
    (['clip', 'none'], [1.0, 0.6])
    """
    dpi = _check_dpi(dpi)
    data = _check_curves(rates, "rates")
    for label, (_, y) in data.items():
        if not np.all((y >= 0) & (y <= 1)):
            raise ValueError(f"`rates[{label!r}]` must lie in [0, 1], got {y.tolist()}")
    if isinstance(title, bool) or not isinstance(title, str | None):
        raise TypeError(f"`title` must be a str or None, got {type(title).__name__}")
    context = check_context(context)
    fig = new_figure((7.2, 3.8))
    with figure_style():
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        bars = draw_success(ax, data)
        ax.set_ylabel("success rate (error < 1 %)")
        ax.set_title(with_context(title or "Success rate against sequence length", context),
                     fontsize=10)
        ax.grid(alpha=0.3, axis="y" if bars else "both")
        if not bars:
            legend_outside(ax)
    save_figure(fig, path, dpi)
    return fig


def training_curves(
    curves: dict[str, tuple[Any, Any]],
    path: str | os.PathLike[str] | None = None,
    *,
    ylabel: str = "error",
    logy: bool = False,
    title: str | None = None,
    context: str | None = None,
    dpi: float = DPI,
) -> Figure:
    r"""A quantity against the training step, one line per method (e.g. the median over seeds).

    Parameters
    ----------
    curves : dict of str to (steps, values)
        Per method: the steps and the values there (NaN values are not drawn).
    path : str or os.PathLike, optional
        Where to save the figure.
    ylabel : str
    logy : bool
        Logarithmic vertical axis (values ``<= 0`` are not drawn).
    title : str, optional
    context : str, optional
        The model, its sizes and the data: the second line of the title.
    dpi : float
        Resolution, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One line per method in ``fig.axes[0].lines``, its gid the method's
        label (with markers where a curve has a single point, which a line
        alone would not show). The legend lies outside the axes.

    Raises
    ------
    ValueError
        On an empty mapping, mismatched arrays or non-finite steps.

    Examples
    --------
    >>> from rnntheory.plotting import training_curves
    >>> fig = training_curves({"clip": ([0, 10, 20], [0.7, 0.3, 0.0])}, ylabel="error")
    >>> fig.axes[0].lines[0].get_xdata().tolist()
    [0.0, 10.0, 20.0]
    """
    dpi = _check_dpi(dpi)
    data = _check_curves(curves, "curves")
    if isinstance(title, bool) or not isinstance(title, str | None):
        raise TypeError(f"`title` must be a str or None, got {type(title).__name__}")
    context = check_context(context)
    fig = new_figure((7.2, 3.8))
    with figure_style():
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        for i, (label, (x, y)) in enumerate(data.items()):
            ok = np.isfinite(y) & ((y > 0) if logy else True)
            ax.plot(x[ok], y[ok], lw=1.6, color=f"C{i % 10}", label=label, gid=label,
                    marker="o" if int(ok.sum()) == 1 else None)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("update")
        ax.set_ylabel(ylabel)
        ax.set_title(with_context(title or f"{ylabel} during training", context), fontsize=10)
        ax.grid(alpha=0.3)
        legend_outside(ax)
    save_figure(fig, path, dpi)
    return fig
