"""Every kind of figure the library draws: rendered on Agg, not blank, titled with
its model, legends clear of the data, the ``1/γ_h`` circle, a bar for one length,
legible contour labels.

The figures are rendered (``fig.canvas.draw()``) and checked in display
coordinates: what a reader sees, not only what the artists hold. The
experiments' figures are caught on their way to the file (``save_figure`` is
wrapped), so their titles and legends are read from the figure that was saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.legend import Legend

from rnntheory import _figures as figures_mod
from rnntheory import plotting
from rnntheory.experiments import (
    RunSpec,
    copy_adding,
    pascanu_tasks,
    remedies_table,
    run_experiment,
)
from rnntheory.experiments import report as report_mod
from rnntheory.experiments.store import Row


# ----------------------------------------------------------------------------- helpers
def _rgba(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3]


def _assert_not_blank(fig) -> None:
    """Many distinct colours overall, and ink (non-white pixels) in every axes."""
    img = _rgba(fig)
    packed = (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
    colours = np.unique(packed)
    assert len(colours) > 16, f"only {len(colours)} distinct colours: a blank figure"
    H = img.shape[0]
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        bb = ax.get_window_extent()
        x0, x1 = int(max(bb.x0, 0)) + 2, int(min(bb.x1, img.shape[1])) - 2
        y0, y1 = int(max(H - bb.y1, 0)) + 2, int(min(H - bb.y0, H)) - 2
        patch = img[y0:y1, x0:x1]
        ink = float(np.mean(np.any(patch < 245, axis=-1)))
        assert ink > 0.01, f"axes {ax.get_title()!r}: {ink:.4f} of its pixels are drawn on"
    _assert_text_inside(fig)


def _assert_text_inside(fig) -> None:
    """Titles, axis labels, legend entries and annotations lie inside the canvas (none clipped)."""
    renderer = fig.canvas.get_renderer()
    W, H = fig.canvas.get_width_height()
    texts = [f._suptitle for f in [fig, *fig.subfigs] if getattr(f, "_suptitle", None) is not None]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
    for lg in fig.findobj(Legend):
        texts += list(lg.get_texts())
    for t in texts:
        if not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        assert bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= W + 1 and bb.y1 <= H + 1, (
            f"text {t.get_text()!r} is cut off: {bb.bounds} on a {W}×{H} canvas"
        )


def _segment_points(xy: np.ndarray, per_segment: int = 24) -> np.ndarray:
    """Display points along a polyline (its vertices and points between them)."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return xy
    s = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None, None]
    pts = xy[:-1][None] + s * (xy[1:] - xy[:-1])[None]
    return np.concatenate([pts.reshape(-1, 2), xy[-1:]])


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the data of ``ax`` that are visible (inside the axes)."""
    chunks = []
    for ln in ax.lines:
        xy = np.column_stack([np.asarray(v, dtype=float) for v in ln.get_data()])
        if xy.size:
            chunks.append(_segment_points(ln.get_transform().transform(xy)))
    for c in ax.collections:
        offs = np.asarray(c.get_offsets(), dtype=float)
        if offs.size and len(c.get_paths()) <= 1:  # a scatter: its markers' centres
            chunks.append(c.get_offset_transform().transform(offs))
        for path in c.get_paths():  # fills, contour lines, bars
            v = np.asarray(path.vertices, dtype=float)
            if v.size:
                chunks.append(_segment_points(c.get_transform().transform(v)))
    for p in ax.patches:
        v = p.get_path().vertices
        chunks.append(_segment_points(p.get_transform().transform(v)))
    if not chunks:
        return np.zeros((0, 2))
    pts = np.concatenate(chunks)
    bb = ax.get_window_extent()
    inside = ((pts[:, 0] >= bb.x0) & (pts[:, 0] <= bb.x1) & (pts[:, 1] >= bb.y0)
              & (pts[:, 1] <= bb.y1))
    return pts[inside]


def _assert_legends_clear(fig) -> int:
    """No visible data point of any axes lies inside any legend's box (on the last
    rendering of ``fig``). Returns the legends seen."""
    legends = [lg for lg in fig.findobj(Legend) if lg.get_visible()]
    for lg in legends:
        box = lg.get_window_extent()
        for ax in fig.axes:
            pts = _data_points(ax)
            hit = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0)
                   & (pts[:, 1] < box.y1))
            assert not hit.any(), (
                f"the legend {[t.get_text() for t in lg.get_texts()]} covers "
                f"{int(hit.sum())} data points of axes {ax.get_title()!r}"
            )
    return len(legends)


def _titles(fig) -> str:
    parts = [ax.get_title() for ax in fig.axes]
    for f in [fig, *fig.subfigs]:
        if getattr(f, "_suptitle", None) is not None:
            parts.append(f._suptitle.get_text())
    return "\n".join(parts)


@pytest.fixture
def saved(monkeypatch):
    """Every figure the library saves, as ``{file name: Figure}``."""
    got: dict[str, object] = {}
    original = figures_mod.save_figure

    def keep(fig, path, dpi):
        if path is not None:
            got[Path(path).name] = fig
        original(fig, path, dpi)

    monkeypatch.setattr(figures_mod, "save_figure", keep)
    monkeypatch.setattr(plotting, "save_figure", keep)
    return got


CONTEXT = "Elman, gaussian × 1.3, n_hidden = 12, T = 40, seed 4"


# ----------------------------------------------------------------------------- plotting's figures
def _plotting_figures(trajectory):
    L, B, rate = trajectory
    rng = np.random.default_rng(0)
    curves = {f"method {i}": (np.arange(0, 1001, 50), np.exp(-np.arange(0, 1001, 50) / (200 + 100 * i)))
              for i in range(4)}
    return {
        "activation_derivatives": plotting.activation_derivatives(context="f′ as drawn"),
        "gradient_flow_heatmap": plotting.gradient_flow_heatmap(L, bound=B, context=CONTEXT),
        "norm_vs_lag": plotting.norm_vs_lag(L, rate=rate, context=CONTEXT),
        "eigenvalues_unit_circle": plotting.eigenvalues_unit_circle(
            {"sigmoid": [rng.normal(size=(30, 30)) / 30], "tanh": [rng.normal(size=(30, 30)) / 5]},
            activations={"sigmoid": "sigmoid", "tanh": "tanh"}, context="n_hidden = 30, seed 0"),
        "success_vs_length": plotting.success_vs_length(
            {"a": ([50, 100, 150, 200], [1.0, 1.0, 0.8, 0.6]),
             "b": ([50, 100, 150, 200], [0.2, 0.0, 1.0, 1.0])}, context=CONTEXT),
        "success_one_length": plotting.success_vs_length(
            {"MSGD": ([50], [0.0]), "clip": ([50], [0.4]), "clip+Ω": ([50], [1.0])}, context=CONTEXT),
        "training_curves": plotting.training_curves(curves, ylabel="error", context=CONTEXT),
        "training_curves_log": plotting.training_curves(curves, ylabel="error", logy=True,
                                                        context=CONTEXT),
    }


def test_every_plotting_figure_renders_titled_and_with_legends_clear_of_the_data(trajectory):
    """Each figure kind of rnntheory.plotting, rendered on Agg: not blank, its
    title carries the given context, and no legend box holds a visible point of
    the data (curves that fill the axes included)."""
    for name, fig in _plotting_figures(trajectory).items():
        _assert_not_blank(fig)
        _assert_legends_clear(fig)
        want = "f′ as drawn" if name == "activation_derivatives" else (
            "n_hidden = 30" if name == "eigenvalues_unit_circle" else "n_hidden = 12")
        assert want in _titles(fig).replace("\n", " "), name


def test_a_legend_inside_full_axes_would_be_caught():
    """The legend check is not vacuous: the same curves with a legend placed over them fail it."""
    fig = plotting.training_curves({"a": ([0, 1, 2, 3], [0.0, 1.0, 2.0, 3.0]),
                                    "b": ([0, 1, 2, 3], [3.0, 2.0, 1.0, 0.0])})
    ax = fig.axes[0]
    ax.legend(loc="center")
    fig.canvas.draw()
    with pytest.raises(AssertionError, match="covers"):
        _assert_legends_clear(fig)


def test_activation_derivatives_title_names_the_activations_and_the_interval():
    fig = plotting.activation_derivatives(activations=("tanh", "sigmoid"), x_max=4.0)
    title = fig.axes[0].get_title()
    assert r"\tanh'" in title and r"\sigma'" in title and "[-4, 4]" in title
    fig.canvas.draw()
    assert _assert_legends_clear(fig) == 1


@pytest.mark.parametrize(("act", "radius", "text"), [("sigmoid", 4.0, "= 4$ (sigmoid)"),
                                                      ("tanh", 1.0, "= 1$ (tanh)")])
def test_eigenvalue_plot_draws_the_inverse_gamma_h_circle(act, radius, text):
    """The dotted circle has radius 1/γ_h (1/(1/4) = 4 for the sigmoid, 1 for tanh),
    every one of its points lies at that distance, it is inside the visible axes,
    and its legend entry names the radius and the activation."""
    W = np.diag([0.1, -0.05, 0.2])
    fig = plotting.eigenvalues_unit_circle({"W": [W]}, activations=act)
    ax = fig.axes[0]
    circ = {ln.get_gid(): ln for ln in ax.lines}["inv_gamma_h"]
    r = np.hypot(*(np.asarray(v, dtype=float) for v in circ.get_data()))
    assert np.allclose(r, radius, rtol=0, atol=1e-12)
    assert ax.get_xlim()[1] >= radius and ax.get_ylim()[1] >= radius
    labels = [t.get_text() for lg in fig.findobj(Legend) for t in lg.get_texts()]
    assert any(r"1/\gamma_h" in t and t.endswith(text) for t in labels), labels
    fig.canvas.draw()
    _assert_legends_clear(fig)


def test_eigenvalue_plot_without_activations_has_no_inverse_gamma_h_circle():
    fig = plotting.eigenvalues_unit_circle({"W": [np.eye(2) * 0.5]})
    assert "inv_gamma_h" not in {ln.get_gid() for ln in fig.axes[0].lines}


@pytest.mark.parametrize(("activations", "err", "match"), [
    ({"nope": "tanh"}, ValueError, r"`activations` names the group 'nope'"),
    ({"W": "softsign?"}, ValueError, r"`activations\['W'\]` is not an activation"),
    (3, TypeError, r"`activations` must be an activation name, a mapping"),
])
def test_eigenvalue_plot_rejects_bad_activations(activations, err, match):
    with pytest.raises(err, match=match):
        plotting.eigenvalues_unit_circle({"W": [np.eye(2)]}, activations=activations)


@pytest.mark.parametrize("func", ["activation_derivatives", "norm_vs_lag", "gradient_flow_heatmap",
                                  "success_vs_length", "training_curves", "eigenvalues_unit_circle"])
def test_context_must_be_text(func, trajectory):
    L = trajectory[0]
    args = {"activation_derivatives": (), "norm_vs_lag": (L,), "gradient_flow_heatmap": (L,),
            "success_vs_length": ({"a": ([1], [1.0])},), "training_curves": ({"a": ([1], [1.0])},),
            "eigenvalues_unit_circle": ({"W": [np.eye(2)]},)}[func]
    with pytest.raises(TypeError, match=r"`context` must be a str or None, got int"):
        getattr(plotting, func)(*args, context=3)


def test_one_length_is_a_bar_per_method_with_its_rate():
    """All methods at one length: one bar per method (height = its rate, a rate of 0
    included), no line, the length named on the axis, and each rate written in %."""
    rates = {"MSGD": ([50], [0.0]), "clip": ([50], [0.4]), "clip+Ω": ([50], [1.0])}
    fig = plotting.success_vs_length(rates)
    ax = fig.axes[0]
    assert not ax.lines
    heights = {p.get_gid(): p.get_height() for p in ax.patches}
    assert heights == {"MSGD": 0.0, "clip": 0.4, "clip+Ω": 1.0}
    assert [t.get_text() for t in ax.get_xticklabels()] == list(rates)
    assert "50" in ax.get_xlabel()
    values = {t.get_gid(): t.get_text() for t in ax.texts}
    assert values == {"MSGD-value": "0 %", "clip-value": "40 %", "clip+Ω-value": "100 %"}
    _assert_not_blank(fig)


def test_several_lengths_stay_lines_through_the_rates():
    fig = plotting.success_vs_length({"a": ([100, 50], [0.5, 1.0])})
    ax = fig.axes[0]
    (ln,) = ax.lines
    assert ln.get_xydata().tolist() == [[50.0, 1.0], [100.0, 0.5]]
    assert not ax.patches


def test_a_single_point_curve_is_drawn_with_a_marker():
    """A curve with one finite value would be an invisible line: it gets a marker."""
    fig = plotting.training_curves({"a": ([10], [0.5]), "b": ([0, 10], [1.0, 0.2])})
    lines = {ln.get_gid(): ln for ln in fig.axes[0].lines}
    assert lines["a"].get_marker() == "o" and lines["b"].get_marker() in (None, "None", "")


def test_contour_labels_are_legible(trajectory):
    """At most six contour levels; every label in ≥ 9-point type, outlined, and no
    two labels overlap on the rendered figure."""
    L, B, _ = trajectory
    fig = plotting.gradient_flow_heatmap(L, bound=B)
    ax = fig.axes[0]
    (cs,) = [c for c in ax.collections if c.get_gid() == "bound"]
    assert 1 <= len(cs.levels) <= 6
    labels = ax.texts
    assert labels and all(t.get_fontsize() >= 9 and t.get_path_effects() for t in labels)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    # the level values are the bound's: each label is one of the levels
    assert {float(t.get_text()) for t in labels} <= {float(f"{v:.3g}") for v in cs.levels}


# ----------------------------------------------------------------------------- the experiments' figures
def test_init_spectra_figure_names_the_model_and_draws_each_schemes_circle(tmp_path, saved):
    from rnntheory.experiments.init_spectra import Config

    run_experiment("init-spectra", out=tmp_path, seed=3,
                   config=Config(n_hidden=20, seeds=2, schemes=("sigmoid", "smart_tanh")))
    fig = saved["init-spectra-eigenvalues.png"]
    title = _titles(fig).replace("\n", " ")
    assert "Elman" in title and "n_hidden = 20" in title and "seeds 3–4" in title
    _assert_not_blank(fig)
    _assert_legends_clear(fig)
    radii = {}
    for ax in fig.axes:
        circ = {ln.get_gid(): ln for ln in ax.lines}["inv_gamma_h"]
        radii[ax.get_title().split(" ")[0]] = float(np.max(np.hypot(*circ.get_data())))
    assert radii == pytest.approx({"sigmoid": 4.0, "smart_tanh": 1.0}, abs=1e-12)


def test_bound_tightness_figures_name_the_model_sizes_and_data(tmp_path, saved):
    from rnntheory.experiments.bound_tightness import Config

    cfg = Config(T=10, n_hidden=6, models=("elman-smart_tanh", "lstm"), figures="all")
    run_experiment("bound-tightness", out=tmp_path, seed=2, config=cfg)
    for label, model, seed in (("elman-smart_tanh", "Elman (tanh), smart_tanh init", 2),
                               ("lstm", "LSTM", 3)):
        for kind in ("heatmap", "lag"):
            fig = saved[f"bound-tightness-{label}-{kind}.png"]
            title = _titles(fig).replace("\n", " ")
            for want in (model, "n_hidden = 6", "T = 10", f"seed {seed}", "N(0, 1²)"):
                assert want in title, (label, kind, want, title)
            _assert_not_blank(fig)
            _assert_legends_clear(fig)


def test_pascanu_tasks_figures_at_one_length_are_bars(tmp_path, saved):
    """The default protocol runs one length: its success figure is bars, one per
    method, with the measured rates; both figures name the model and budget."""
    cfg = pascanu_tasks.Config(seeds=2, steps=20, eval_every=10, workers=1, scheduler="sync")
    cells = [{"task": "temporal_order", "length": 50, "method": m, "success_rate": r}
             for m, r in zip(cfg.methods, (0.0, 0.5, 1.0), strict=True)]
    curves = {m: [{"eval_steps": [0, 10, 20], "eval_error": [0.7, 0.5 - 0.2 * j, None]}]
              for j, m in enumerate(cfg.methods)}
    pascanu_tasks._figures(tmp_path, cells, curves, cfg)
    fig = saved["pascanu-tasks-success.png"]
    ax = fig.axes[0]
    assert not ax.lines
    assert {p.get_gid(): p.get_height() for p in ax.patches} == dict(
        zip(cfg.methods, (0.0, 50.0, 100.0), strict=True))
    for f in (fig, saved["pascanu-tasks-curves.png"]):
        title = _titles(f).replace("\n", " ")
        assert "Elman (smart_tanh init)" in title and "n_hidden = 50" in title
        assert "20 updates" in title and "2 seeds" in title
        _assert_not_blank(f)
        _assert_legends_clear(f)


def test_copy_adding_and_remedies_figures(tmp_path, saved):
    cfg = copy_adding.Config(n_hidden=8, steps=10, seeds=1, workers=1, scheduler="sync")
    baselines = {"copy-20": {"task": "copy", "T": 20, "analytic": 10 * np.log(8) / 40},
                 "adding-100": {"task": "adding", "T": 100, "analytic": 1 / 6}}
    runs = [{"task": b["task"], "T": b["T"], "model": m, "median_loss": b["analytic"] * f}
            for b in baselines.values() for m, f in (("RNN", 1.0), ("LSTM", 0.3), ("GRU", 1.2))]
    copy_adding._figure(tmp_path / "copy-adding-losses.png", runs, baselines, "n_hidden = 8, seed 0")
    rows = {f"remedy {j}": {"profile": list(-0.1 * (j + 1) * np.arange(51))} for j in range(11)}
    remedies_table._figure(tmp_path / "remedies-profiles.png", rows, "temporal_order, length 50, "
                           "Elman (smart tanh) n_hidden = 50")
    del cfg
    for name in ("copy-adding-losses.png", "remedies-profiles.png"):
        fig = saved[name]
        assert "n_hidden = " in _titles(fig).replace("\n", " ")
        _assert_not_blank(fig)
        assert _assert_legends_clear(fig) >= 1


def test_mg17_figure_names_the_reservoir_and_protocol(tmp_path, saved):
    from rnntheory.experiments.mg17 import Config

    cfg = Config(n_hidden=30, runs=3, washout=100, train=300, horizon=20)
    run_experiment("mg17-esn", out=tmp_path, seed=1, config=cfg)
    fig = saved["mg17-esn-runs.png"]
    title = _titles(fig)
    assert "ESN (n_hidden = 30)" in title and "3 runs" in title and "300 training steps" in title
    _assert_not_blank(fig)
    _assert_legends_clear(fig)


def _row(i: int, spec: RunSpec, ev_err: list[float]) -> Row:
    gn = list(np.linspace(0.5, 3.0, 20))
    metrics = {"final_error": ev_err[-1], "solved": ev_err[-1] < 0.01,
               "steps_to_solve": 20 if ev_err[-1] < 0.01 else None,
               "grad_norm_median": float(np.median(gn)), "grad_norm_max": 3.0, "n_clips": 0,
               "n_fallbacks": 0, "n_nonfinite_grads": 0, "wall_s": 0.1,
               "curve": {"eval_steps": [0, 10, 20], "eval_error": ev_err,
                         "loss_steps": list(range(1, 21)), "loss": gn, "grad_norm": gn}}
    return Row(str(i), spec, "done", metrics=metrics)


def test_report_figures_name_the_shared_model_and_one_length_is_bars(tmp_path, saved):
    rows = [_row(3 * s + j, RunSpec("temporal_order", 30, remedies=rem, seed=s, n_hidden=12,
                                    steps=20), [0.7, 0.3, e])
            for s in range(2) for j, (rem, e) in enumerate((("", 0.5), ("clip", 0.0),
                                                             ("clip+omega", 0.0)))]
    figs = report_mod.render_figures(rows, tmp_path)
    assert {"success_temporal_order", "curves_temporal_order_L30",
            "gradnorm_temporal_order_L30"} <= set(figs)
    succ = saved["success_temporal_order.png"]
    assert {p.get_gid(): p.get_height() for p in succ.axes[0].patches} == {
        "none": 0.0, "clip": 1.0, "clip+omega": 1.0}
    for name, fig in saved.items():
        title = _titles(fig).replace("\n", " ")
        assert "Elman (tanh, smart_tanh init)" in title and "n_hidden = 12" in title, name
        assert "2 seeds" in title, name
        _assert_not_blank(fig)
        _assert_legends_clear(fig)
    profiles = [{"method": m, "t": np.arange(31.0), "log_norm": -k * np.arange(31.0),
                 "bound_slope": 0.1 if m == "clip" else None}
                for m, k in (("none", 0.2), ("clip", 0.1))]
    report_mod._flow_figure(profiles, tmp_path / "flow.png", "flow\nElman, n_hidden = 12")
    fig = saved["flow.png"]
    _assert_not_blank(fig)
    _assert_legends_clear(fig)


def test_verify_report_figures_name_their_models(tmp_path, saved):
    """``verify --report``'s figures: each titled with its model, size, length and seed;
    the eigenvalue panels draw each activation's 1/γ_h circle."""
    from rnntheory.verification import CheckResult, VerifyConfig, write_report

    write_report([CheckResult("demo", "a claim", 1, 1, 0.0, True)], tmp_path,
                 VerifyConfig(T=10, n_hidden=6, seed=2))
    flows = [n for n in saved if n.startswith(("flow-", "lag-"))]
    assert flows
    for name in flows:
        title = _titles(saved[name]).replace("\n", " ")
        assert "Elman (" in title and "n_hidden = 6" in title and "T = 10" in title, title
        assert "seed 2" in title
    eig = saved["eigenvalues.png"]
    assert "n_hidden = 6" in _titles(eig)
    radii = {ax.get_title(): float(np.max(np.hypot(*{ln.get_gid(): ln for ln in ax.lines}[
        "inv_gamma_h"].get_data()))) for ax in eig.axes}
    assert radii == pytest.approx({k: 4.0 if k == "sigmoid" else 1.0 for k in radii}, abs=1e-12)
    _assert_not_blank(eig)
    _assert_legends_clear(eig)


def test_a_title_wider_than_the_figure_is_wrapped_onto_the_canvas():
    """A title of 160 characters is wrapped (it ran off both edges of a 7.2-inch figure)."""
    fig = plotting.success_vs_length({"a": ([50, 100], [1.0, 0.5])}, title="a long title " * 12,
                                     context=CONTEXT)
    _assert_not_blank(fig)
    assert _titles(fig).count("\n") >= 3


def test_reproduce_figure_names_the_model_budget_and_seeds(tmp_path, saved):
    """The reproductions figure, drawn from the committed runs: its title names the model,
    sizes, optimizer, budget and seeds, and every text lies on the canvas."""
    from rnntheory.experiments import reproduce as R

    root = Path(__file__).resolve().parent.parent
    rows = R._summarise(R.read_csv(root / "docs/results/reproduce.csv"))
    assert R._figure(tmp_path / "reproduce-success.png", rows)
    fig = saved["reproduce-success.png"]
    title = _titles(fig).replace("\n", " ")
    for want in ("tanh RNN", "50 units", "SGD", "batch 20", "3000 updates", "5 seeds"):
        assert want in title, want
    _assert_not_blank(fig)
    _assert_legends_clear(fig)
