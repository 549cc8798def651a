"""Echo state networks at scale: sparse reservoirs, ARPACK scaling, the ridge path and
its selection, refined normal equations, several sequences, per-unit leak, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from rnntheory import esn as esn_module
from rnntheory.esn import (
    ESN,
    ITERATIVE_FROM,
    REFINE_FROM,
    SPARSE_ITERATIVE_FROM,
    echo_state_certificate,
    fit,
    random_esn,
    ridge_path,
    ridge_regression,
    scale_to_spectral_norm,
    scale_to_spectral_radius,
)


def _loop_states(W, W_in, W_fb, b, a, u, y, x0=None, y0=None) -> np.ndarray:
    """The ESN update written out unit by unit: x_{t+1} = (1 − a)x_t + a tanh(W x_t + W_in u + W_fb y_t + b)."""
    W = W.toarray() if scipy.sparse.issparse(W) else np.asarray(W)
    n = W.shape[0]
    a = np.broadcast_to(np.asarray(a, dtype=float), (n,))
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=float)
    prev = np.zeros(W_fb.shape[1]) if y0 is None else np.array(y0, dtype=float)
    out = np.empty((len(y), n))
    for t in range(len(y)):
        new = np.empty(n)
        for i in range(n):
            s = b[i] + sum(W[i, j] * x[j] for j in range(n) if W[i, j] != 0.0)
            s += sum(W_in[i, k] * u[t, k] for k in range(W_in.shape[1]))
            s += sum(W_fb[i, k] * prev[k] for k in range(W_fb.shape[1]))
            new[i] = (1.0 - a[i]) * x[i] + a[i] * np.tanh(s)
        x = new
        prev = y[t]
        out[t] = x
    return out


# ----------------------------------------------------------------------------- sparse reservoirs
def test_sparse_and_dense_reservoirs_give_the_same_states() -> None:
    """The same matrix held as CSR and as a dense array drives the same states (1e-12),
    with per-unit leak, feedback, input and state noise; both equal a loop reference."""
    rng = np.random.default_rng(0)
    sp = random_esn(150, 2, 1, spectral_radius=0.9, connectivity=0.05, leak_rate=rng.uniform(0.1, 1.0, 150),
                    feedback_scaling=0.5, bias_scaling=0.3, seed=1)
    assert sp.is_sparse  # chosen automatically: connectivity 0.05, 150 units
    de = ESN(sp.W.toarray(), sp.W_in, sp.W_fb, sp.b, sp.leak_rate)
    assert not de.is_sparse
    u, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
    np.testing.assert_allclose(sp.run(u, y), de.run(u, y), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sp.run(u, y, noise=1e-3, seed=5), de.run(u, y, noise=1e-3, seed=5), rtol=0, atol=1e-12)
    want = _loop_states(sp.W, sp.W_in, sp.W_fb, sp.b, sp.leak_rate, u, y)
    np.testing.assert_allclose(sp.run(u, y), want, rtol=0, atol=1e-12)


def test_sparse_run_kernel_python_body_equals_the_compiled_kernel() -> None:
    """The CSR run loop's Python body (``py_func``, no Numba) and the compiled kernel
    give the same states bit for bit: several inputs and fed-back outputs, per-unit
    leak, state noise, and the plain (leak 1) update."""
    from rnntheory._validation import read_only
    from rnntheory.cells._esn_kernels import esn_run_csr

    rng = np.random.default_rng(21)
    n, T = 40, 12
    W = scipy.sparse.csr_array(rng.uniform(-1, 1, (n, n)) * (rng.random((n, n)) < 0.2))
    args = (W.indptr.view(np.uint32), W.indices.view(np.uint32), W.data, rng.normal(size=(3, n)),
            rng.normal(size=(T, 3)), rng.normal(size=(2, n)), rng.normal(size=(T, 2)), rng.normal(size=n))
    for noise, a, leaky in ((np.empty((0, n)), np.ones(n), False),
                            (rng.uniform(-1e-3, 1e-3, (T, n)), rng.uniform(0.1, 1.0, n), True)):
        got, want = np.empty((T, n)), np.empty((T, n))
        rest = [read_only(v) for v in (*args, noise, rng.normal(size=n), a)]  # as ESN.run passes them
        esn_run_csr(*rest, leaky, got)
        esn_run_csr.py_func(*rest, leaky, want)
        assert np.array_equal(got, want)


def test_sparse_run_reports_a_drive_that_overflows() -> None:
    """A sparse reservoir whose input drive W_in u overflows float64 is refused with the
    same error as a dense one (the kernel forms the drive step by step, so the bound
    check must route such inputs through the explicit drive)."""
    e = random_esn(120, 1, 1, spectral_radius=0.9, connectivity=0.05, sparse=True, seed=0)
    big = ESN(e.W, np.full((120, 1), 1e308), e.W_fb, e.b)
    with pytest.raises(ValueError, match=r"`inputs`/`teacher` drive the reservoir beyond float64's range"):
        big.run(np.full((3, 1), 1e308))
    # large but finite drives (bound above 2^1000, no overflow) run as usual
    ok = ESN(e.W, np.full((120, 1), 1e300), e.W_fb, e.b).run(np.full((3, 1), 1e8))
    assert np.all(np.abs(ok) <= 1.0)


def test_sparse_draw_holds_exactly_the_dense_draw() -> None:
    """The CSR reservoir is built from the kept positions without the masked dense
    matrix: its structure and entries equal ``csr_array`` of the dense draw, bit for bit,
    and the generator is left where the dense draw leaves it."""
    for n, c in ((100, 0.05), (257, 0.1), (64, 0.5), (1, 0.5)):
        for seed in range(2):
            g = np.random.default_rng(seed)
            dense = g.uniform(-1, 1, (n, n)) * (g.random((n, n)) < c)
            h = np.random.default_rng(seed)
            S = esn_module._draw_reservoir(h, n, c, True)
            want = scipy.sparse.csr_array(dense)
            for name in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(S, name), getattr(want, name)), name
            assert h.uniform() == g.uniform()


def test_random_esn_sparse_option_draws_the_same_matrix() -> None:
    """``sparse=True`` and ``sparse=False`` store the same draw: the same pattern and
    inputs, the same entries up to the rounding of the spectral measurement."""
    for n in (60, 200):  # below and above the sparse ARPACK threshold
        a = random_esn(n, 1, spectral_radius=0.8, connectivity=0.1, sparse=True, seed=3)
        b = random_esn(n, 1, spectral_radius=0.8, connectivity=0.1, sparse=False, seed=3)
        assert a.is_sparse and not b.is_sparse
        A = a.W.toarray()
        assert np.array_equal(A != 0, b.W != 0) and np.array_equal(a.W_in, b.W_in)
        np.testing.assert_allclose(A, b.W, rtol=1e-13, atol=0)
    assert not random_esn(60, spectral_radius=0.8, connectivity=0.05, seed=3).is_sparse  # < 100 units: dense


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("kind", ["radius", "norm"])
def test_arpack_scaling_against_lapack(kind: str, sparse: bool) -> None:
    """Beyond the thresholds (600 units) ρ and σ_max come from ARPACK; the scaled
    reservoir's ρ (``numpy.linalg.eigvals``) or σ_max (``numpy.linalg.svd``) is the
    target to 1e-10 relative, and the sparsity pattern is kept."""
    n = 600
    assert n > ITERATIVE_FROM and n > SPARSE_ITERATIVE_FROM
    kw = {"spectral_radius": 0.95} if kind == "radius" else {"spectral_norm": 0.95}
    # seed 7: ARPACK with a single Ritz value converged to an eigenvalue 4e-4 inside the circle
    e = random_esn(n, spectral_radius=kw.get("spectral_radius"), spectral_norm=kw.get("spectral_norm"),
                   connectivity=0.05, sparse=sparse, seed=7)
    W = e.W.toarray() if sparse else e.W
    got = np.max(np.abs(np.linalg.eigvals(W))) if kind == "radius" else np.linalg.svd(W, compute_uv=False)[0]
    assert abs(got / 0.95 - 1.0) < 1e-10
    measured = e.spectral_radius if kind == "radius" else e.spectral_norm
    assert abs(measured / got - 1.0) < 1e-10
    raw = np.random.default_rng(2).uniform(-1, 1, (n, n)) * (np.random.default_rng(3).random((n, n)) < 0.05)
    scale = scale_to_spectral_radius if kind == "radius" else scale_to_spectral_norm
    R = scale(scipy.sparse.csr_array(raw), 2.0)
    assert scipy.sparse.issparse(R) and R.nnz == np.count_nonzero(raw)
    Rd = R.toarray()
    got = np.max(np.abs(np.linalg.eigvals(Rd))) if kind == "radius" else np.linalg.svd(Rd, compute_uv=False)[0]
    assert abs(got / 2.0 - 1.0) < 1e-10
    ratio = Rd[raw != 0] / raw[raw != 0]  # one common factor: W scaled, not reshaped
    assert np.ptp(ratio) <= 1e-15 * ratio[0]


def test_arpack_failure_falls_back_to_the_dense_decomposition(monkeypatch) -> None:
    """When ARPACK does not converge the scale comes from LAPACK, never a silent wrong one."""
    import scipy.sparse.linalg as sla

    def fail(*args, **kwargs):
        raise sla.ArpackNoConvergence("no convergence", np.array([]), np.array([]))

    monkeypatch.setattr(sla, "eigs", fail)
    monkeypatch.setattr(sla, "svds", fail)
    e = random_esn(200, spectral_radius=0.9, connectivity=0.05, sparse=True, seed=0)
    assert abs(np.max(np.abs(np.linalg.eigvals(e.W.toarray()))) / 0.9 - 1.0) < 1e-10
    e = random_esn(200, spectral_norm=0.9, connectivity=0.05, sparse=True, seed=0)
    assert abs(np.linalg.norm(e.W.toarray(), 2) / 0.9 - 1.0) < 1e-10


# ----------------------------------------------------------------------------- the ridge path
def _stacked_lstsq(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """argmin ‖Z w − Y‖² + λ‖w‖² as least squares on [Z; √λ I] (numpy.linalg.lstsq, no SVD filter)."""
    p = Z.shape[1]
    A = np.vstack([Z, np.sqrt(lam) * np.eye(p)])
    B = np.vstack([Y, np.zeros((p, Y.shape[1]))])
    return np.linalg.lstsq(A, B, rcond=None)[0].T


def test_ridge_path_equals_per_lambda_least_squares() -> None:
    """Each readout of the path (one SVD) equals an independent least-squares solve
    for its λ, down to 1e-14 and 0."""
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(80, 12)) @ np.diag(np.logspace(0, -4, 12))
    Y = rng.normal(size=(80, 2))
    lams = [0.0, 1e-14, 1e-8, 1e-3, 1.0, 50.0]
    path = ridge_path(Z, Y, lams)
    assert path.shape == (6, 2, 12)
    for W, lam in zip(path, lams, strict=True):
        want = _stacked_lstsq(Z, Y, lam)
        np.testing.assert_allclose(W, want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))
        np.testing.assert_allclose(W, ridge_regression(Z, Y, lam), rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))


def test_refined_normal_equations_match_least_squares() -> None:
    """Beyond REFINE_FROM features the lstsq solver refines the normal equations: the
    readout equals an independent least-squares solve (1e-9), where the plain normal
    equations of an ill-conditioned Z are off by far more."""
    rng = np.random.default_rng(5)
    p = REFINE_FROM + 44
    Q1, _ = np.linalg.qr(rng.normal(size=(900, p)))
    Q2, _ = np.linalg.qr(rng.normal(size=(p, p)))
    Z = Q1 @ np.diag(np.logspace(0, -6, p)) @ Q2.T  # cond(Z) = 1e6, cond(ZᵀZ) = 1e12
    Y = Z @ rng.normal(size=(p, 1)) + 1e-3 * rng.normal(size=(900, 1))
    for lam in (0.0, 1e-14, 1e-8):
        want = _stacked_lstsq(Z, Y, lam)
        got = ridge_regression(Z, Y, lam)
        assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want)), lam
    A = Z.T @ Z
    plain = np.linalg.solve(A, Z.T @ Y).T
    assert np.max(np.abs(plain - _stacked_lstsq(Z, Y, 0.0))) > 1e3 * np.max(
        np.abs(ridge_regression(Z, Y, 0.0) - _stacked_lstsq(Z, Y, 0.0)))


def test_normal_solver_falls_back_to_least_squares() -> None:
    """Singular normal equations (λ = 0, repeated columns) no longer raise: the readout
    is the minimum-norm least-squares one, and fit records the solver that made it."""
    rng = np.random.default_rng(6)
    base = rng.normal(size=(30, 2))
    Z = np.hstack([base, base[:, :1]])  # a repeated column
    Y = base @ np.array([[1.0], [2.0]])
    got = ridge_regression(Z, Y, 0.0, solver="normal")
    np.testing.assert_allclose(got, (np.linalg.pinv(Z) @ Y).T, rtol=1e-10, atol=1e-12)
    e = random_esn(5, 1, spectral_radius=0.5, seed=0)
    u = rng.normal(size=(40, 1))
    res = fit(e, np.zeros((40, 1)), np.ones((40, 1)), ridge=0.0, solver="normal")
    assert res.solver == "lstsq"  # constant features: ZᵀZ singular
    res = fit(e, u, np.sin(u), ridge=1e-6, solver="normal")
    assert res.solver == "normal"


def test_auto_ridge_minimises_generalised_cross_validation() -> None:
    """``ridge="auto"`` scores every candidate by GCV = (RSS/T)/(1 − tr H/T)² with the hat
    matrix H = Z(ZᵀZ + λI)⁻¹Zᵀ formed explicitly here, and picks its argmin; the
    readout is the independent least-squares solution for that λ."""
    rng = np.random.default_rng(7)
    e = random_esn(30, 1, spectral_radius=0.9, seed=2)
    u = rng.uniform(-1, 1, (260, 1))
    y = np.roll(u, 3, axis=0) + 0.05 * rng.normal(size=(260, 1))
    res = fit(e, u, y, washout=20, ridge="auto")
    X = e.run(u)
    Z = np.hstack([X[20:], u[20:], np.ones((240, 1))])
    Y = y[20:]
    T, p = Z.shape
    want = []
    for lam in res.ridge_candidates:
        H = Z @ np.linalg.solve(Z.T @ Z + lam * np.eye(p), Z.T)
        rss = float(np.sum((Y - H @ Y) ** 2))
        want.append(rss / T / (1 - np.trace(H) / T) ** 2)
    want = np.array(want)
    ok = res.ridge_candidates >= 1e-10  # below, the explicit inverse itself loses the digits
    np.testing.assert_allclose(res.ridge_scores[ok], want[ok], rtol=1e-6)
    assert res.ridge == res.ridge_candidates[int(np.argmin(res.ridge_scores))]
    assert res.ridge == res.ridge_candidates[ok][int(np.argmin(want[ok]))]
    np.testing.assert_allclose(res.esn.W_out, _stacked_lstsq(Z, Y, res.ridge), rtol=1e-8, atol=1e-10)
    custom = fit(e, u, y, washout=20, ridge=[1e-2, 1e-6])
    assert custom.ridge in (1e-2, 1e-6) and custom.ridge_scores.shape == (2,)


# ----------------------------------------------------------------------------- several sequences, leak
def test_multi_sequence_fit_equals_the_stacked_loop_regression() -> None:
    """Each sequence is run from x0 (no state carried over), loses its own washout,
    and the stacked feature rows are regressed together."""
    rng = np.random.default_rng(8)
    e = random_esn(12, 1, 1, spectral_radius=0.8, leak_rate=0.6, feedback_scaling=0.4, bias_scaling=0.2, seed=4)
    us = [rng.normal(size=(T, 1)) for T in (30, 45, 25)]
    ys = [np.sin(np.cumsum(u, axis=0)) for u in us]
    ws = [5, 10, 3]
    res = fit(e, us, ys, washout=ws, ridge=1e-4)
    rows, targets = [], []
    for u, y, w in zip(us, ys, ws, strict=True):
        X = _loop_states(e.W, e.W_in, e.W_fb, e.b, 0.6, u, y)
        rows.append(np.hstack([X[w:], u[w:], np.ones((len(u) - w, 1))]))
        targets.append(y[w:])
    Z, Y = np.vstack(rows), np.vstack(targets)
    np.testing.assert_allclose(res.esn.W_out, _stacked_lstsq(Z, Y, 1e-4), rtol=1e-9, atol=1e-11)
    assert len(res.states) == 3 and res.washout == (5, 10, 3)
    np.testing.assert_array_equal(res.final_state, res.states[-1][-1])
    one = fit(e, us, ys, washout=5, ridge=1e-4)
    assert one.washout == (5, 5, 5)


def test_per_unit_leak_against_a_loop_and_its_certificate() -> None:
    """A leak vector gives every unit its own rate; the certificate's rate
    max(1 − a) + max(a)·σ_max(W) bounds the contraction."""
    rng = np.random.default_rng(9)
    a = rng.uniform(0.85, 0.95, 10)
    e = random_esn(10, 2, 1, spectral_norm=0.5, leak_rate=a, input_scaling=1.5, seed=5)
    u = rng.normal(size=(30, 2))
    y = np.zeros((30, 1))
    np.testing.assert_allclose(e.run(u), _loop_states(e.W, e.W_in, e.W_fb, e.b, a, u, y), rtol=0, atol=1e-13)
    cert = echo_state_certificate(e)
    assert cert.rate == pytest.approx(np.max(1 - a) + np.max(a) * 0.5, rel=1e-12) and cert.holds
    x0, x1 = rng.uniform(-1, 1, 10), rng.uniform(-1, 1, 10)
    gap = np.linalg.norm(e.run(u, x0=x0) - e.run(u, x0=x1), axis=1)
    assert np.all(gap <= cert.rate ** np.arange(1, 31) * np.linalg.norm(x0 - x1) * (1 + 1e-9))


# ----------------------------------------------------------------------------- files
@pytest.mark.parametrize("sparse", [True, False])
def test_save_load_round_trip_is_bit_exact(tmp_path: Path, sparse: bool) -> None:
    rng = np.random.default_rng(10)
    e = random_esn(120, 2, 1, spectral_radius=0.9, connectivity=0.05, sparse=sparse,
                   leak_rate=rng.uniform(0.1, 1, 120), feedback_scaling=0.3, seed=6)
    u, y = rng.normal(size=(60, 2)), rng.normal(size=(60, 1))
    trained = fit(e, u, y, washout=10, ridge=1e-6).esn
    for net in (e, trained):
        path = net.save(tmp_path / "esn.npz")
        back = ESN.load(path)
        assert back.is_sparse == sparse
        W, Wb = (net.W.toarray(), back.W.toarray()) if sparse else (net.W, back.W)
        assert np.array_equal(W, Wb) and np.array_equal(net.leak_rate, back.leak_rate)
        for name in ("W_in", "W_fb", "b"):
            assert np.array_equal(getattr(net, name), getattr(back, name))
        assert (net.W_out is None and back.W_out is None) or np.array_equal(net.W_out, back.W_out)
        np.testing.assert_array_equal(back.run(u, y), net.run(u, y))
    scalar = random_esn(5, spectral_radius=0.5, leak_rate=0.25, seed=0)
    back = ESN.load(scalar.save(tmp_path / "small.npz"))
    assert back.leak_rate == 0.25 and isinstance(back.leak_rate, float)


def test_save_refuses_to_overwrite_a_foreign_file(tmp_path: Path) -> None:
    e = random_esn(5, spectral_radius=0.5, seed=0)
    foreign = tmp_path / "notes.npz"
    foreign.write_text("not mine")
    with pytest.raises(ValueError, match=r"exists and is not an rnntheory ESN file: refusing to overwrite"):
        e.save(foreign)
    assert foreign.read_text() == "not mine"
    other = tmp_path / "arrays.npz"
    np.savez(other, W=np.eye(2))
    with pytest.raises(ValueError, match="refusing to overwrite"):
        e.save(other)
    e.save(other, overwrite=True)
    assert np.array_equal(ESN.load(other).W, e.W)
    e.save(other)  # an ESN file of ours is replaced without asking
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "notes.npz"]  # no temporary left


def _write(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _bad_files(tmp: Path):
    e = random_esn(4, 1, spectral_radius=0.5, seed=0)
    good = dict(rnntheory_esn_format=np.array(1), W=e.W, W_in=e.W_in, W_fb=e.W_fb, b=e.b, leak_rate=np.array(1.0))
    (tmp / "text.npz").write_text("hello")
    return [
        (tmp / "missing.npz", r"`path` '.*missing.npz' does not exist"),
        (tmp / "text.npz", r"is not an rnntheory ESN file \(.npz without pickled objects\)"),
        (_write(tmp / "nomark.npz", W=e.W), r"is not an rnntheory ESN file \(no 'rnntheory_esn_format' entry\)"),
        (_write(tmp / "v9.npz", **{**good, "rnntheory_esn_format": np.array(9)}), r"has ESN file format .*reads format 1"),
        (_write(tmp / "int.npz", **{**good, "W": np.eye(4, dtype=np.int64)}), r"'W' in .* must have dtype float64, got dtype int64"),
        (_write(tmp / "shape.npz", **{**good, "b": np.zeros(3)}), r"`b` must have 4 rows"),
        (_write(tmp / "nob.npz", **{k: v for k, v in good.items() if k != "b"}), r"has no 'b' array"),
        (_write(tmp / "csr.npz", **{k: v for k, v in good.items() if k != "W"}, W_data=np.ones(2),
                W_indices=np.array([0, 9]), W_indptr=np.array([0, 1, 2, 2, 2]), W_shape=np.array([4, 4])),
         r"the sparse reservoir in .* is malformed"),
    ]


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    for path, match in _bad_files(tmp_path):
        with pytest.raises(ValueError, match=match):
            ESN.load(path)


# ----------------------------------------------------------------------------- bad inputs
def _e(**kw):
    return random_esn(6, 1, 1, spectral_radius=0.5, seed=0, **kw)


BAD = [
    (lambda: _e(leak_rate=-0.1), ValueError, r"`leak_rate` must be > 0.0, got -0.1"),
    (lambda: _e(leak_rate=np.array([0.5] * 5 + [0.0])), ValueError,
     r"`leak_rate` must be in \(0, 1\] for every unit, got 0.0 at unit 5 \(1 unit out of range\)"),
    (lambda: _e(leak_rate=np.full(6, 1.5)), ValueError, r"`leak_rate` must be in \(0, 1\] for every unit, got 1.5 at unit 0 \(6 units"),
    (lambda: _e(leak_rate=np.full(4, 0.5)), ValueError, r"`leak_rate` must be a number or have shape \(6,\) \(one rate per unit\), got shape \(4,\)"),
    (lambda: _e(leak_rate=[0.5, np.nan, 0.5, 0.5, 0.5, 0.5]), ValueError, r"`leak_rate` must be finite, got 1 NaN/inf entry"),
    (lambda: _e(connectivity=1.5), ValueError, r"`connectivity` must be <= 1.0, got 1.5"),
    (lambda: _e(connectivity=-0.2), ValueError, r"`connectivity` must be > 0.0, got -0.2"),
    (lambda: _e(sparse=1), TypeError, r"`sparse` must be a bool, got 1"),
    (lambda: fit(_e(), np.zeros((9, 1)), np.full((9, 1), np.nan)), ValueError, r"`teacher` must be finite, got 9 NaN/inf entries"),
    (lambda: fit(_e(), [np.zeros((9, 1))], [np.array([[np.inf]] * 9)]), ValueError, r"`teacher\[0\]` must be finite"),
    (lambda: fit(_e(), np.zeros((9, 1)), np.zeros((9, 1)), ridge="best"), ValueError,
     r"`ridge` must be a number >= 0, 'auto' or a sequence of candidates, got 'best'"),
    (lambda: fit(_e(), np.zeros((9, 1)), np.zeros((9, 1)), ridge=[1e-3, -1.0]), ValueError,
     r"`ridge` must be a non-empty sequence of λ >= 0"),
    (lambda: fit(_e(), np.zeros((9, 1)), np.zeros((9, 1)), ridge=[]), ValueError, r"`ridge` must be a non-empty sequence"),
    (lambda: fit(_e(), [np.zeros((9, 1))] * 2, [np.zeros((9, 1))] * 3), ValueError,
     r"`inputs` must be a list of 3 arrays \(one per teacher sequence\), got 2"),
    (lambda: fit(_e(), np.zeros((9, 1)), [np.zeros((9, 1))]), TypeError, r"`inputs` must be a list of arrays .* got ndarray"),
    (lambda: fit(_e(), [np.zeros((9, 1))] * 2, [np.zeros((9, 1))] * 2, washout=[1, 2, 3]), ValueError,
     r"`washout` must be one int or 2 ints \(one per sequence\), got 3"),
    (lambda: fit(_e(), [np.zeros((9, 1))] * 2, [np.zeros((9, 1)), np.zeros((4, 1))], washout=4), ValueError,
     r"`washout` must be < the number of steps 4 of sequence 1, got 4"),
    (lambda: fit(_e(), [], []), ValueError, r"`teacher` must be a non-empty list of arrays"),
    (lambda: ridge_path(np.ones((4, 2)), np.ones((4, 1)), []), ValueError, r"`ridges` must be a non-empty sequence of λ >= 0"),
    (lambda: ESN(scipy.sparse.csr_array(np.ones((2, 3))), np.zeros((2, 0)), np.zeros((2, 1)), np.zeros(2)), ValueError,
     r"`W` must be square, got shape \(2, 3\)"),
    (lambda: ESN(scipy.sparse.csr_array(np.array([[np.nan, 0.0], [0.0, 1.0]])), np.zeros((2, 0)), np.zeros((2, 1)), np.zeros(2)),
     ValueError, r"`W` must be finite, got 1 NaN/inf entry"),
    (lambda: _e().save(Path("/nonexistent-folder-xyz/esn.npz")), ValueError, r"`path` must be in an existing folder"),
    (lambda: _e().save(Path("/")), ValueError, r"`path` must be a file, got the folder"),
    (lambda: _e().save(3), TypeError, r"`path` must be a str or os.PathLike, got int"),
]


@pytest.mark.parametrize(("call", "exc", "match"), BAD)
def test_bad_inputs(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_sparse_reservoir_is_read_only() -> None:
    e = random_esn(120, spectral_radius=0.9, connectivity=0.05, seed=0)
    with pytest.raises(ValueError, match="read-only"):
        e.W.data[0] = 1.0
    assert "sparse" in repr(e) and esn_module.SPARSE_CONNECTIVITY == 0.1


def test_auto_ridge_is_invariant_to_the_teacher_scale() -> None:
    """GCV's ordering over λ does not depend on the teacher's scale (RSS scales by s²,
    df not at all), and W_out(λ) scales with the teacher: at 2^±900 the same λ is
    chosen, with the same training NRMSE. (The scores themselves overflowed to inf at
    2^900, and the first candidate won by default.)"""
    rng = np.random.default_rng(11)
    e = random_esn(10, 1, 1, spectral_radius=0.9, seed=0)
    u = rng.normal(size=(50, 1))
    base = fit(e, u, np.sin(u), washout=5, ridge="auto")
    assert base.ridge != base.ridge_candidates[0]
    for k in (900, -900):
        r = fit(e, u, np.ldexp(np.sin(u), k), washout=5, ridge="auto")
        assert r.ridge == base.ridge and abs(r.train_nrmse / base.train_nrmse - 1) < 1e-10
        np.testing.assert_allclose(np.ldexp(r.esn.W_out, -k), base.esn.W_out, rtol=1e-10)


# ----------------------------------------------------------------------------- the faster set-up and fit
def test_small_ridge_uses_a_stacked_qr_matching_least_squares(monkeypatch) -> None:
    """Where the refined normal equations stop converging (cond(ZᵀZ + λI)·ε near 1) the
    readout comes from a QR of [Z; √λ I], not an SVD: it equals an independent
    least-squares solve of the stacked system to cond·ε, and it minimises the ridge
    objective at least as well as that solve."""
    rng = np.random.default_rng(11)
    p, T = REFINE_FROM + 10, 500
    Q1, _ = np.linalg.qr(rng.normal(size=(T, p)))
    Q2, _ = np.linalg.qr(rng.normal(size=(p, p)))
    Z = Q1 @ np.diag(np.logspace(0, -9, p)) @ Q2.T  # cond(Z) = 1e9
    Y = Z @ rng.normal(size=(p, 2)) + 1e-4 * rng.normal(size=(T, 2))

    def no_svd(*args, **kwargs):
        raise AssertionError("the SVD was used")

    for lam in (1e-17, 1e-15):
        assert esn_module._refined_normal(Z, Y, lam) is None  # this is the path under test
        want = _stacked_lstsq(Z, Y, lam)
        with monkeypatch.context() as m:
            m.setattr(np.linalg, "svd", no_svd)
            got = ridge_regression(Z, Y, lam)
        cond = 1.0 / np.sqrt(1e-18 + lam)
        assert np.max(np.abs(got - want)) <= 100 * cond * 2.2e-16 * np.max(np.abs(want)), lam

        def objective(w: np.ndarray, lam: float = lam) -> float:
            return float(np.sum((Z @ w.T - Y) ** 2) + lam * np.sum(w**2))

        assert objective(got) <= objective(want) * (1 + 1e-9)


def test_stacked_qr_declines_a_singular_or_large_ridge_problem() -> None:
    """A rank-deficient Z at λ far below its rounding, or √λ beyond ‖Z‖, is left to the
    SVD (a singular R is never back-substituted); at the large λ the readout equals
    the stacked least-squares solve."""
    rng = np.random.default_rng(12)
    p = REFINE_FROM + 10
    Z = rng.uniform(-1, 1, (600, p))
    Z[:, 5] = Z[:, 4]  # two equal columns
    Y = rng.normal(size=(600, 1))
    assert esn_module._stacked_qr(Z, Y, 1e-300) is None
    assert esn_module._stacked_qr(Z, Y, 1e4) is None
    want = _stacked_lstsq(Z, Y, 1e4)
    np.testing.assert_allclose(ridge_regression(Z, Y, 1e4), want, rtol=0, atol=1e-12 * np.max(np.abs(want)))


def test_gram_by_syrk_equals_the_product() -> None:
    """The Gram matrix's upper triangle from BLAS syrk equals ZᵀZ (C- and F-ordered Z)."""
    Z = np.random.default_rng(13).normal(size=(300, 40))
    want = Z.T @ Z
    for M in (Z, np.asfortranarray(Z)):
        got = esn_module._gram(M)
        iu = np.triu_indices(40)
        np.testing.assert_allclose(got[iu], want[iu], rtol=1e-13, atol=1e-12)


def test_arpack_ritz_check_failure_uses_the_dense_decomposition(monkeypatch) -> None:
    """A Ritz pair whose residual fails the check never sets the scale: the dense
    decomposition does, and the scaled reservoir has the requested ρ (numpy eigvals)."""
    calls = []
    dense = esn_module.LA.spectral_radius

    def spy(W):
        calls.append(W.shape)
        return dense(W)

    monkeypatch.setattr(esn_module, "_RITZ_CHECK", -1.0)  # no residual passes
    monkeypatch.setattr(esn_module.LA, "spectral_radius", spy)
    e = random_esn(300, spectral_radius=0.9, connectivity=0.05, sparse=True, seed=4)
    assert calls == [(300, 300)]
    assert abs(np.max(np.abs(np.linalg.eigvals(e.W.toarray()))) / 0.9 - 1.0) < 1e-12


@pytest.mark.parametrize(("n", "connectivity", "power"), [(150, 0.05, 3), (400, 0.05, 3), (300, 0.3, 1)])
def test_arpack_radius_against_eigvals_over_seeds(n: int, connectivity: float, power: int) -> None:
    """Four Ritz values at tolerance 1e-12 give ρ of sparse reservoirs to 1e-11 relative
    (numpy.linalg.eigvals), seed after seed: through W³ where a product is cheap, through
    W itself where it is not."""
    for seed in range(4):
        g = np.random.default_rng(seed)
        raw = scipy.sparse.csr_array(g.uniform(-1, 1, (n, n)) * (g.random((n, n)) < connectivity))
        assert esn_module._ritz_power(raw, esn_module._ritz_basis(n)) == power
        R = scale_to_spectral_radius(raw, 0.9)
        got = np.max(np.abs(np.linalg.eigvals(R.toarray())))
        assert abs(got / 0.9 - 1.0) < 1e-11, seed


@pytest.mark.parametrize(("n", "seed"), [(700, 5), (1000, 8)])
def test_arpack_radius_is_the_largest_modulus_on_reservoirs_a_small_basis_missed(n: int, seed: int) -> None:
    """``random_esn`` scales to the spectral radius itself, not to an eigenvalue just inside
    the spectral circle: on these two reservoirs four Ritz values from a 24-vector Krylov
    basis converged to eigenvalues 3.1e-3 and 1.6e-3 below ρ (both pass the residual check),
    so the reservoir came out with ρ = 0.903 and 0.901. Oracle: ``numpy.linalg.eigvals`` of
    the scaled reservoir, whose largest modulus must be 0.9 to 1e-11."""
    e = random_esn(n, spectral_radius=0.9, connectivity=0.05, sparse=True, seed=seed)
    got = float(np.max(np.abs(np.linalg.eigvals(e.W.toarray()))))
    assert abs(got / 0.9 - 1.0) < 1e-11


def test_run_loop_is_bit_for_bit_the_step() -> None:
    """The run loop writing into buffers gives exactly the states of repeated single
    steps (sparse and dense W, scalar, unit and per-unit leak)."""
    rng = np.random.default_rng(14)
    for sparse in (True, False):
        for a in (0.3, 1.0, rng.uniform(0.1, 1.0, 120)):
            e = random_esn(120, 1, 1, spectral_radius=0.9, connectivity=0.05, feedback_scaling=0.5,
                           bias_scaling=0.2, leak_rate=a, sparse=sparse, seed=2)
            u, y = rng.normal(size=(30, 1)), rng.normal(size=(30, 1))
            x0 = rng.normal(size=120)
            drive = u @ e.W_in.T + e.b + np.vstack([np.zeros((1, 1)), y[:-1]]) @ e.W_fb.T
            x, want = x0, np.empty((30, 120))
            for t in range(30):
                x = e._step(x, drive[t])
                want[t] = x
            assert np.array_equal(e.run(u, y, x0=x0), want)
            np.testing.assert_allclose(want, _loop_states(e.W, e.W_in, e.W_fb, e.b, e.leak_rate, u, y, x0=x0),
                                       rtol=0, atol=1e-12)


def _unpenalised_bias_lstsq(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """argmin ‖Z w − Y‖² + λ Σ_{j < p} w_j² (the last, bias, weight free) as least squares
    on [Z; √λ (I 0)] (numpy.linalg.lstsq)."""
    p = Z.shape[1]
    P = np.sqrt(lam) * np.eye(p)
    P[-1, -1] = 0.0
    A = np.vstack([Z, P])
    B = np.vstack([Y, np.zeros((p, Y.shape[1]))])
    return np.linalg.lstsq(A, B, rcond=None)[0].T


@pytest.mark.parametrize("n", [40, REFINE_FROM + 20])
def test_fit_with_an_unpenalised_bias_against_least_squares(n: int) -> None:
    """``penalize_bias=False`` fits the classical ridge model with a free intercept: the
    readout equals the stacked least-squares solve whose penalty skips the bias (1e-9),
    and differs from the default model at large λ."""
    rng = np.random.default_rng(15)
    e = random_esn(n, 1, 1, spectral_radius=0.9, bias_scaling=0.3, seed=6)
    u = rng.uniform(-1, 1, (n + 200, 1))
    y = np.roll(u, 2) ** 2 + 3.0
    for lam in (1e-6, 1.0):
        res = fit(e, u, y, washout=20, ridge=lam, penalize_bias=False)
        Z = e.features(res.states[20:], u[20:])
        want = _unpenalised_bias_lstsq(Z, y[20:], lam)
        assert np.max(np.abs(res.esn.W_out - want)) <= 1e-9 * np.max(np.abs(want)), lam
    default = fit(e, u, y, washout=20, ridge=1.0).esn.W_out
    assert np.max(np.abs(default - want)) > 1e-3 * np.max(np.abs(want))
    auto = fit(e, u, y, washout=20, ridge="auto", penalize_bias=False)
    want = _unpenalised_bias_lstsq(Z, y[20:], auto.ridge)
    assert np.max(np.abs(auto.esn.W_out - want)) <= 1e-8 * np.max(np.abs(want))
    with pytest.raises(TypeError, match="`penalize_bias`"):
        fit(e, u, y, washout=20, penalize_bias="no")


def test_arpack_operator_is_bit_for_bit_the_sparse_product() -> None:
    """The operator handed to ARPACK multiplies exactly as ``W @ x`` (real and complex x),
    so the Ritz values are those of ``W`` itself."""
    g = np.random.default_rng(16)
    W = scipy.sparse.csr_array(g.uniform(-1, 1, (90, 90)) * (g.random((90, 90)) < 0.1))
    op = esn_module._operator(W)
    x = g.normal(size=90)
    assert np.array_equal(op.matvec(x), W @ x)
    z = x + 1j * g.normal(size=90)
    assert np.array_equal(op.matvec(z), W @ z)
    dense = W.toarray()
    assert esn_module._operator(dense) is dense
    cube = esn_module._operator(W, 3)  # W³ for the cheap-product route: three exact products
    assert np.array_equal(cube.matvec(x), W @ (W @ (W @ x)))
    assert np.array_equal(cube.matvec(z), W @ (W @ (W @ z)))
