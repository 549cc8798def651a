"""``rnntheory.plotting``: the figures draw the library's own numbers.

Every test reads the data back from the artists (lines, images, contours) and
compares it with an independent computation; the committed figure of the docs
is compared with a fresh render.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image

from rnntheory.activations import get_activation
from rnntheory.plotting import (
    activation_derivatives,
    eigenvalues_unit_circle,
    gradient_flow_heatmap,
    norm_vs_lag,
    success_vs_length,
    training_curves,
)

FIGURE = Path(__file__).parents[1] / "docs" / "figures" / "activation-derivatives.png"
REGENERATE = (
    "regenerate it with: python -c \"from rnntheory.plotting import activation_derivatives; "
    "activation_derivatives('docs/figures/activation-derivatives.png')\""
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _lines(fig):
    return {ln.get_gid(): ln for ln in fig.axes[0].lines}


def _triangular(n, rate, wiggle=0.0):
    t, k = np.indices((n, n))
    with np.errstate(invalid="ignore"):
        return np.where(k <= t, (t - k) * rate + wiggle * np.sin(t + 2.0 * k), -np.inf)


# ----------------------------------------------------------------------------- committed figure
def test_committed_figure_is_a_fresh_render(tmp_path):
    """docs/figures/activation-derivatives.png is what ``activation_derivatives``
    draws today: same size, and the same pixels (exactly, when the committed
    file was written by the installed matplotlib version; otherwise within an
    RMS of 2/255, since text rendering may move by a pixel across versions)."""
    assert FIGURE.exists(), f"{FIGURE} is missing; {REGENERATE}"
    committed = imread(FIGURE)
    fresh_path = tmp_path / "fresh.png"
    activation_derivatives(fresh_path, dpi=100)
    fresh = imread(fresh_path)
    assert fresh.shape == committed.shape, f"the figure changed size; {REGENERATE}"
    with Image.open(FIGURE) as im:
        software = im.info.get("Software", "")
    if f"version{matplotlib.__version__}," in software:
        assert np.array_equal(fresh, committed), f"the committed figure is stale; {REGENERATE}"
    else:
        rms = float(np.sqrt(np.mean((fresh.astype(np.float64) - committed) ** 2)))
        assert rms < 2 / 255, (
            f"the committed figure ({software}) differs from a render by matplotlib "
            f"{matplotlib.__version__} (RMS {rms:.4f}); {REGENERATE}"
        )


# ----------------------------------------------------------------------------- activations
@pytest.mark.parametrize(("name", "gamma", "label"), [("tanh", 1.0, "= 1$"), ("sigmoid", 0.25, "= 1/4$")])
def test_activation_curves_are_the_library_derivatives(name, gamma, label):
    """Each curve is ``get_activation(name).fprime`` on its own x-grid, its
    maximum is the library's γ_h (1 for tanh, 1/4 for the sigmoid) attained at
    x = 0, which the grid contains exactly; the marker sits at (0, γ_h), the
    level line at γ_h, and the label names γ_h with its exact value."""
    act = get_activation(name)
    assert act.gamma_h == gamma and act.argmax == 0.0
    fig = activation_derivatives()
    lines = _lines(fig)
    x, y = (np.asarray(v, dtype=np.float64) for v in lines[name].get_data())
    assert np.array_equal(y, act.fprime(x))
    assert np.array_equal(x, -x[::-1])  # symmetric grid
    assert 0.0 in x
    assert float(y.max()) == gamma
    assert float(x[np.argmax(y)]) == 0.0
    mx, my = lines[f"{name}-max"].get_data()
    assert (float(mx[0]), float(my[0])) == (0.0, gamma)
    assert set(np.asarray(lines[f"{name}-level"].get_ydata(), dtype=float)) == {gamma}
    texts = {t.get_gid(): t for t in fig.axes[0].texts}
    ann = texts[f"{name}-label"]
    assert "gamma_h" in ann.get_text() and label in ann.get_text().split(" at ")[0]
    assert tuple(map(float, ann.xy)) == (0.0, gamma)


def test_activation_derivatives_saves_a_png(tmp_path):
    """A ``path`` (str or Path) gets a PNG file; without one nothing is written."""
    for p in (tmp_path / "a.png", str(tmp_path / "b.png")):
        fig = activation_derivatives(p)
        assert Path(p).read_bytes()[:8] == PNG_MAGIC
        assert fig.axes and fig.get_dpi() == 100
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_plotting_leaves_pyplot_and_the_backend_alone():
    """``import rnntheory.plotting`` imports no matplotlib; drawing and saving a
    figure neither imports pyplot nor changes the process-wide backend."""
    script = textwrap.dedent(
        """
        import json, os, sys, tempfile
        import rnntheory.plotting as P
        before = "matplotlib" in sys.modules
        import matplotlib
        matplotlib.use("svg")
        with tempfile.TemporaryDirectory() as d:
            P.activation_derivatives(os.path.join(d, "a.png"))
        print(json.dumps({"before": before, "pyplot": "matplotlib.pyplot" in sys.modules,
                          "backend": matplotlib.get_backend()}))
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d == {"before": False, "pyplot": False, "backend": "svg"}


# ----------------------------------------------------------------------------- heatmap
def test_heatmap_draws_the_log_norms_and_masks_minus_inf(trajectory):
    """The image's array is ``log_norms`` with exactly the −inf entries (k > t)
    masked; its extent puts pixel (t, k) at integer coordinates, t upwards."""
    L, _, _ = trajectory
    fig = gradient_flow_heatmap(L)
    (im,) = fig.axes[0].images
    assert im.get_gid() == "log_norms"
    A = im.get_array()
    assert np.array_equal(np.ma.getmaskarray(A), np.isneginf(L))
    assert np.array_equal(A.data[np.isfinite(L)], L[np.isfinite(L)])
    n = L.shape[0]
    assert tuple(im.get_extent()) == (-0.5, n - 0.5, -0.5, n - 0.5)
    assert im.origin == "lower"
    assert not fig.axes[0].collections  # no bound, no contours


def test_heatmap_contours_the_bound(trajectory, tmp_path):
    """With ``bound`` (Eq. 12 on every pair), the contour set spans the bound's
    finite values and its levels lie inside them; Eq. 12 itself holds on every
    drawn pair (observed ≤ bound)."""
    L, B, _ = trajectory
    finite = np.isfinite(B)
    assert np.all(L[finite] <= B[finite] + 1e-9)
    fig = gradient_flow_heatmap(L, tmp_path / "h.png", bound=B)
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC
    (cs,) = [c for c in fig.axes[0].collections if c.get_gid() == "bound"]
    assert cs.zmin == pytest.approx(B[finite].min()) and cs.zmax == pytest.approx(B[finite].max())
    levels = np.asarray(cs.levels)
    assert levels.size >= 2
    assert np.all((levels >= B[finite].min()) & (levels <= B[finite].max()))
    assert any(len(p.vertices) for p in cs.get_paths())


# ----------------------------------------------------------------------------- lag plot
def test_norm_vs_lag_draws_the_mean_per_lag_and_eq12(trajectory):
    """The mean line is, for each τ, the average over k of L[k+τ, k] (computed
    here with a plain loop); the Eq. 12 line is τ·rate; and the mean lies below
    the Eq. 12 line at every lag, as the bound says it must."""
    L, _, rate = trajectory
    fig = norm_vs_lag(L, rate=rate)
    lines = _lines(fig)
    x, y = lines["mean"].get_data()
    n = L.shape[0]
    want = [np.mean([L[k + tau, k] for k in range(n - tau)]) for tau in range(n)]
    assert np.array_equal(np.asarray(x), np.arange(n))
    np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-13)
    ex, ey = lines["eq12"].get_data()
    np.testing.assert_array_equal(ey, np.asarray(ex) * rate)
    assert np.all(np.asarray(y) <= np.asarray(ey) + 1e-9)


def test_norm_vs_lag_leaves_out_zero_products():
    """A −inf below the diagonal (an exactly zero product) is left out of its
    lag's mean; a lag with no finite entry is not drawn; without ``rate`` there
    is no Eq. 12 line."""
    L = _triangular(5, -0.5, wiggle=0.1)
    L[3, 1] = -np.inf  # lag 2
    L[4, 0] = -np.inf  # lag 4: its only entry
    lines = _lines(norm_vs_lag(L))
    assert "eq12" not in lines
    x, y = (np.asarray(v) for v in lines["mean"].get_data())
    assert list(x) == [0, 1, 2, 3]
    assert y[2] == pytest.approx(np.mean([L[2, 0], L[4, 2]]))


# ----------------------------------------------------------------------------- bad inputs
GOOD = _triangular(4, -0.3)
BAD = [
    (gradient_flow_heatmap, (np.zeros((3, 4)),), {}, "`log_norms` must be a square"),
    (gradient_flow_heatmap, (np.zeros(4),), {}, "`log_norms` must be a square"),
    (gradient_flow_heatmap, (np.zeros((1, 1)),), {}, r"T >= 1, got shape \(1, 1\)"),
    (gradient_flow_heatmap, (np.array([["a", "b"], ["c", "d"]]),), {}, "`log_norms` must be a real array"),
    (gradient_flow_heatmap, (np.ones((2, 2), dtype=bool),), {}, "`log_norms` must be a real array"),
    (gradient_flow_heatmap, (np.where(GOOD == 0, np.nan, GOOD),), {}, "`log_norms` must not contain NaN"),
    (gradient_flow_heatmap, (np.full((3, 3), np.inf),), {}, "`log_norms` must not contain NaN or \\+inf"),
    (gradient_flow_heatmap, (np.full((3, 3), -np.inf),), {}, "`log_norms` has no finite entry"),
    (gradient_flow_heatmap, (GOOD,), {"bound": np.zeros((3, 3))}, r"`bound` must have the shape of `log_norms` \(4, 4\)"),
    (gradient_flow_heatmap, (GOOD,), {"bound": np.full((4, 4), np.nan)}, "`bound` must not contain NaN"),
    (gradient_flow_heatmap, (GOOD,), {"dpi": 0}, "`dpi` must be a positive number"),
    (norm_vs_lag, (np.zeros((2, 3)),), {}, "`log_norms` must be a square"),
    (norm_vs_lag, (GOOD,), {"rate": np.inf}, "`rate` must be a finite real number"),
    (norm_vs_lag, (GOOD,), {"rate": "0.5"}, "`rate` must be a finite real number"),
    (norm_vs_lag, (GOOD,), {"rate": True}, "`rate` must be a finite real number"),
    (activation_derivatives, (), {"activations": ("tanh", "softsign")}, "`activation` must be one of"),
    (activation_derivatives, (), {"activations": ()}, "`activations` must name at least one"),
    (activation_derivatives, (), {"x_max": -1.0}, "`x_max` must be a positive number"),
    (activation_derivatives, (), {"x_max": float("nan")}, "`x_max` must be a positive number"),
    (activation_derivatives, (), {"dpi": float("inf")}, "`dpi` must be a positive number"),
    # found by tests/test_fuzz.py: FreeType's RuntimeError, matplotlib's TypeError,
    # an OverflowError, a UserWarning, overflow warnings in the colour scale and
    # a savefig ValueError that named nothing
    (activation_derivatives, (), {"dpi": 2.5}, r"`dpi` must be a positive number in \[8, 1200\]"),
    (activation_derivatives, (), {"dpi": 2**70}, r"`dpi` must be a positive number in \[8, 1200\]"),
    (activation_derivatives, (), {"x_max": 1e-300}, r"`x_max` must be a positive number in \[0.01, 1000\]"),
    (activation_derivatives, (), {"x_max": 10**400}, r"`x_max` must be a positive number in \[0.01, 1000\]"),
    (activation_derivatives, (), {"activations": ("tanh", None)}, "`activations` holds an unknown"),
    (activation_derivatives, ("fig.pngx",), {}, r"`path` must end in one of the image suffixes"),
    (norm_vs_lag, (GOOD,), {"rate": 10**400}, "`rate` must be a finite real number"),
    (gradient_flow_heatmap, (np.where(GOOD == 0, 9e307, GOOD),), {}, r"`log_norms` must hold log-norms within ±1e\+300"),
    (gradient_flow_heatmap, (GOOD,), {"bound": np.where(GOOD == 0, -1.6e308, GOOD)}, r"`bound` must hold log-norms within"),
    (norm_vs_lag, (np.where(GOOD == 0, 1.6e308, GOOD),), {}, r"`log_norms` must hold log-norms within ±1e\+300"),
    (success_vs_length, ({"clip": (["a", "b"], [0.5, 1.0])},), {}, r"`rates\['clip'\]` must hold real numbers"),
    (training_curves, ({"clip": ([0, 1], ["a", "b"])},), {}, r"`curves\['clip'\]` must hold real numbers"),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "match"), BAD,
                         ids=[f"{f.__name__}-{i}" for i, (f, *_rest) in enumerate(BAD)])
def test_bad_inputs_raise_value_errors_naming_the_argument(func, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(*args, **kwargs)


@pytest.mark.parametrize(("func", "args"), [
    (activation_derivatives, {"activations": None}),
    (activation_derivatives, {"activations": 3}),
    (eigenvalues_unit_circle, {"matrices": {"w": 3.0}}),
])
def test_containers_of_the_wrong_type_are_type_errors_naming_the_argument(func, args):
    (name,) = args
    with pytest.raises(TypeError, match=rf"`{name}(\[.*\])?` must be"):
        func(**args)


def test_path_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"`path` must be a str or os\.PathLike, got int"):
        activation_derivatives(3)  # type: ignore[arg-type]
