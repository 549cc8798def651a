"""Orthogonal initialisation (rnntheory.init) and what it does and does not give (C32, C33).

Oracles: the defining identities (WᵀW = I, |λ| = 1, det), SciPy's ``expm``
for Henaff's exponential, SciPy's Kolmogorov–Smirnov and binomial tests for
the Haar law, and an explicitly written naive QR (no sign correction) that the
statistical test must reject.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from rnntheory import GRU, LSTM, ElmanRNN, init, jacobians
from rnntheory import strategies as rst

SEEDS = st.integers(0, 2**32 - 1)
SIZES = st.integers(1, 12)


def _orthogonality_error(W: np.ndarray) -> float:
    return float(np.max(np.abs(W.T @ W - np.eye(W.shape[0]))))


def _modulus_error(W: np.ndarray) -> float:
    return float(np.max(np.abs(np.abs(np.linalg.eigvals(W)) - 1.0)))


def _orthogonal_draws(n: int, seed: int) -> dict[str, np.ndarray]:
    return {
        "haar": init.haar_orthogonal(n, seed=seed),
        "henaff": init.henaff(n, seed=seed),
        "henaff-conjugated": init.henaff(n, seed=seed, conjugate=True),
        "scaled/scale": init.scaled_orthogonal(n, 2.5, seed=seed) / 2.5,
        **{f"gate-block-{j}": B for j, B in enumerate(np.split(init.gate_blocks(n, 4, seed=seed), 4))},
    }


@given(SIZES, SEEDS)
def test_orthogonal_initialisers_are_orthogonal(n: int, seed: int) -> None:
    """WᵀW = I to 1e−12 (float64) for every orthogonal initialiser, each gate block included."""
    for name, W in _orthogonal_draws(n, seed).items():
        assert W.shape == (n, n) and W.dtype == np.float64, name
        assert _orthogonality_error(W) <= 1e-12, (name, _orthogonality_error(W))


@given(SIZES, SEEDS)
def test_orthogonal_eigenvalues_have_modulus_one(n: int, seed: int) -> None:
    """Every eigenvalue λ of an orthogonal W has |λ| = 1 (C32), to 1e−10."""
    for name, W in _orthogonal_draws(n, seed).items():
        assert _modulus_error(W) <= 1e-10, (name, _modulus_error(W))


@given(SIZES, st.floats(0.0, 10.0), SEEDS)
def test_scaled_orthogonal_has_equal_singular_values(n: int, scale: float, seed: int) -> None:
    """scaled_orthogonal(n, s): every singular value equals s, and W/s is the Haar draw of the same seed."""
    W = init.scaled_orthogonal(n, scale, seed=seed)
    s = np.linalg.svd(W, compute_uv=False)
    assert np.allclose(s, scale, rtol=1e-12, atol=1e-12)
    assert np.array_equal(W, scale * init.haar_orthogonal(n, seed=seed))


@given(SIZES, SEEDS, st.booleans())
def test_henaff_is_the_exponential_of_a_skew_symmetric_generator(n: int, seed: int, conj: bool) -> None:
    """Henaff et al.: A skew-symmetric (Aᵀ = −A), W = expm(A) (SciPy's Padé expm as oracle),
    W orthogonal, det W = 1; unconjugated, A is block-diagonal with 2×2 blocks and angles in [−π, π]."""
    A = init.henaff_generator(n, seed=seed, conjugate=conj)
    W = init.henaff(n, seed=seed, conjugate=conj)
    assert np.array_equal(A.T, -A)
    assert np.max(np.abs(W - scipy.linalg.expm(A))) <= 1e-12
    assert _orthogonality_error(W) <= 1e-12
    assert abs(np.linalg.det(W) - 1.0) <= 1e-12
    if not conj:
        i = np.arange(n)
        block = (i[:, None] // 2 == i[None, :] // 2) & (i[:, None] < 2 * (n // 2)) & (i[None, :] < 2 * (n // 2))
        assert np.all(A[~block] == 0.0)
        theta = A[2 * np.arange(n // 2), 2 * np.arange(n // 2) + 1]
        assert np.all(np.abs(theta) <= np.pi)


def test_henaff_eigenvalues_are_the_rotation_angles() -> None:
    """The eigenvalues of expm(blockdiag(θ_j B)) are e^{±iθ_j} (and 1 for odd n): they are
    the exponentials of the generator's eigenvalues ±iθ_j."""
    for n in (2, 5, 8):
        A = init.henaff_generator(n, seed=n)
        lam = np.sort_complex(np.linalg.eigvals(init.henaff(n, seed=n)))
        want = np.sort_complex(np.exp(np.linalg.eigvals(A)))
        assert np.allclose(lam, want, atol=1e-12)


# ---------------------------------------------------------------- the Haar law
def _naive_qr(n: int, rng: np.random.Generator) -> np.ndarray:
    """QR of a Gaussian WITHOUT the sign correction: not Haar (LAPACK's Householder
    QR fixes the signs of R's diagonal by its own convention)."""
    return np.linalg.qr(rng.normal(size=(n, n)))[0]


def _phase_statistics(sample) -> tuple[float, float, np.ndarray]:
    """Over 300 draws with n = 2..10: the KS p-value of the non-real eigenvalue phases
    against U[−π, π], the two-sided binomial p-value of #{det W = +1} against 1/2, and
    the signs of det W grouped by n (shape (9, 33) after dropping the remainder)."""
    phases, signs = [], []
    for i in range(300):
        W = sample(2 + i % 9)
        lam = np.linalg.eigvals(W)
        phases.append(np.angle(lam[np.abs(lam.imag) > 1e-9]))
        signs.append(np.sign(np.linalg.det(W)))
    ph = np.concatenate(phases)
    ks = stats.kstest(ph, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue
    binom = stats.binomtest(int(np.sum(np.asarray(signs) > 0)), 300, 0.5).pvalue
    by_n = np.asarray(signs[:297]).reshape(33, 9).T
    return float(ks), float(binom), by_n


def test_haar_eigenvalue_phases_are_uniform() -> None:
    """Seeded test of the Haar law (significance 0.001, deterministic).

    For Haar W ∈ O(n) the mean eigenvalue density on the circle is uniform apart
    from atoms at ±1 (E tr W^k = 1 for even k, 0 for odd k; for n = 3 the two
    components give angle densities (1 ∓ cos θ)/π that average to 1/π), so the
    phases of the *non-real* eigenvalues are uniform on [−π, π], and det W = ±1
    with probability 1/2 each. (The phases of *all* eigenvalues are not uniform:
    the real ones are atoms at 0 and π.) Both are tested over 300 draws, n = 2..10.
    """
    rng = np.random.default_rng(20240601)
    ks, binom, by_n = _phase_statistics(lambda n: init.haar_orthogonal(n, seed=rng))
    assert ks > 1e-3, ks
    assert binom > 1e-3, binom
    assert all(len(set(row)) == 2 for row in by_n)  # both components at every n


def test_naive_qr_fails_the_haar_test() -> None:
    """The same statistics reject a QR without the sign correction: its phases are far from
    uniform, and its determinant is fixed by n (LAPACK's sign convention), where a Haar
    sample of 33 draws per n shows both signs except with probability 2^−32."""
    rng = np.random.default_rng(20240601)
    ks, _, by_n = _phase_statistics(lambda n: _naive_qr(n, rng))
    assert ks < 1e-6, ks
    assert all(len(set(row)) == 1 for row in by_n)


def test_haar_first_column_is_uniform_on_the_sphere() -> None:
    """W e₁ of a Haar W is uniform on S^{n−1}, so (W₁₁ + 1)/2 ~ Beta((n−1)/2, (n−1)/2):
    KS at significance 0.001 (seeded); the naive QR (W₁₁ ≤ 0 always) fails it."""
    for n in (3, 6):
        rng = np.random.default_rng(n)
        haar = np.array([init.haar_orthogonal(n, seed=rng)[0, 0] for _ in range(400)])
        naive = np.array([_naive_qr(n, rng)[0, 0] for _ in range(400)])
        law = stats.beta((n - 1) / 2, (n - 1) / 2).cdf
        assert stats.kstest((haar + 1) / 2, law).pvalue > 1e-3
        assert stats.kstest((naive + 1) / 2, law).pvalue < 1e-6


# ------------------------------------------------------- linear RNN: exactly 1
@given(st.one_of(rst.orthogonal_matrices(rst.sizes(1, 6)), st.tuples(SIZES, SEEDS).map(
    lambda a: init.haar_orthogonal(a[0], seed=a[1]))), st.sampled_from(["standard", "pascanu"]), SEEDS)
def test_linear_rnn_with_orthogonal_weights_preserves_norms(W: np.ndarray, form: str, seed: int) -> None:
    """Linear RNN (f = identity, no leak): ∂h_t/∂h_k = W^(t−k), so ‖∂h_t/∂h_k‖ = 1 exactly
    for orthogonal W; |ln‖∂h_t/∂h_k‖| ≤ 1e−10 on every pair of a T = 30 trajectory."""
    n = W.shape[0]
    rng = np.random.default_rng(seed)
    m = ElmanRNN(W, rng.normal(size=(n, 2)), rng.normal(size=n), activation="identity", form=form)
    L = jacobians.log_norms(m, m.forward(rng.normal(size=(30, 2))))
    low = np.tril_indices(31, -1)
    assert np.max(np.abs(L[low])) <= 1e-10


# --------------------------------------------- C33: tanh still vanishes
@given(SIZES, SEEDS, st.floats(0.5, 3.0))
def test_orthogonal_tanh_rnn_still_vanishes(n: int, seed: int, scale: float) -> None:
    """C33: with f = tanh and orthogonal W, J_i = diag(f′(a_i)) W, so on every pair
    ‖∂h_t/∂h_k‖ ≤ Π_{i=k+1}^{t} max_j f′(a_i)_j ≤ 1 (nothing explodes), and each step
    contracts: ln‖∂h_t/∂h_0‖ − ln‖∂h_{t−1}/∂h_0‖ ≤ ln max_j f′(a_t)_j < 0 whenever
    a_t has no zero entry. f′ is written out here (sech²), not taken from the library."""
    rng = np.random.default_rng(seed)
    W = init.haar_orthogonal(n, seed=rng)
    m = ElmanRNN(W, scale * np.eye(n), rng.uniform(-1, 1, n), activation="tanh")
    x = rng.uniform(-1.0, 1.0, size=(25, n))
    tr = m.forward(x)
    L = jacobians.log_norms(m, tr)
    step = np.log(np.max(1.0 / np.cosh(tr.a) ** 2, axis=1))  # ln max_j f′(a_i)_j, i = 1..T
    c = np.concatenate([[0.0], np.cumsum(step)])
    T = tr.T
    for t in range(1, T + 1):
        for k in range(t):
            assert L[t, k] <= c[t] - c[k] + 1e-9 * (1 + t - k)
    assert np.all(L[np.tril_indices(T + 1, -1)] <= 1e-9)
    d = np.diff(L[:, 0])
    strict = step < 0
    assert strict.any()
    assert np.all(d[strict] < 0)
    assert L[T, 0] < 0


# ------------------------------------------------------------ wiring
def test_elman_init_schemes_use_the_initialisers() -> None:
    """ElmanRNN.init: "orthogonal" is scale·haar_orthogonal from the model's generator (the first
    draw), "identity" is scale·I with ReLU by default, "henaff" is scale·henaff."""
    m = ElmanRNN.init(3, 5, 2, scheme="orthogonal", scale=0.9, seed=4)
    assert np.array_equal(m.W_hh, 0.9 * init.haar_orthogonal(5, seed=np.random.default_rng(4)))
    irnn = ElmanRNN.init(3, 5, 2, scheme="identity", scale=0.5, seed=4)
    assert np.array_equal(irnn.W_hh, 0.5 * np.eye(5)) and irnn.activation.name == "relu"
    h = ElmanRNN.init(3, 5, 2, scheme="henaff", seed=4)
    assert np.array_equal(h.W_hh, init.henaff(5, seed=np.random.default_rng(4)))
    assert abs(np.linalg.det(h.W_hh) - 1.0) < 1e-12
    assert ElmanRNN.init(3, 5, 2, scheme="henaff", seed=4, dtype=np.float32).W_hh.dtype == np.float32


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_gated_orthogonal_init_is_orthogonal_per_gate(cls) -> None:
    """Gated init(scheme="orthogonal"): each n×n gate block of weight_hh is orthogonal, and the
    blocks are independent draws (pairwise different)."""
    n = 6
    m = cls.init(2, n, None, scheme="orthogonal", seed=3)
    blocks = np.split(m.weight_hh, cls.GATES)
    for B in blocks:
        assert _orthogonality_error(B) <= 1e-12
    for i in range(len(blocks)):
        for j in range(i):
            assert not np.allclose(blocks[i], blocks[j])


def test_gate_blocks_passes_keyword_arguments_and_checks_shapes() -> None:
    """gate_blocks stacks k blocks from one stream: with scaled_orthogonal every block has
    singular values equal to `scale`; a callable returning the wrong shape is refused."""
    W = init.gate_blocks(3, 3, init.scaled_orthogonal, seed=0, scale=0.5)
    for B in np.split(W, 3):
        assert np.allclose(np.linalg.svd(B, compute_uv=False), 0.5, atol=1e-12)
    I3 = init.gate_blocks(3, 2, init.identity, scale=2.0)
    assert np.array_equal(I3, np.vstack([2 * np.eye(3)] * 2))
    with pytest.raises(ValueError, match="`initializer` must return an \\(3, 3\\)"):
        init.gate_blocks(3, 2, lambda n, seed: np.zeros((n, n + 1)))
    with pytest.raises(TypeError, match="`initializer` must be callable"):
        init.gate_blocks(3, 2, "haar")  # type: ignore[arg-type]


def test_dtype_and_seed_handling() -> None:
    """float32 output is the float64 draw rounded; an int seed and a fresh Generator with that
    seed give the same draw; bad arguments raise errors that name them."""
    W64 = init.haar_orthogonal(4, seed=9)
    W32 = init.haar_orthogonal(4, seed=9, dtype=np.float32)
    assert W32.dtype == np.float32 and np.array_equal(W32, W64.astype(np.float32))
    assert np.array_equal(W64, init.haar_orthogonal(4, seed=np.random.default_rng(9)))
    with pytest.raises(ValueError, match="`n` must be >= 1, got 0"):
        init.haar_orthogonal(0)
    with pytest.raises(TypeError, match="`seed` must be an int"):
        init.henaff(3, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`dtype` must be float32 or float64"):
        init.identity(3, dtype=np.int64)
    with pytest.raises(ValueError, match=r"`scale` must be >= 0\.0"):
        init.scaled_orthogonal(3, -1.0)
    with pytest.raises(TypeError, match="`conjugate` must be a bool"):
        init.henaff(3, conjugate="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scales_at_the_edges_of_the_dtype(dtype) -> None:
    """A scale up to the dtype's largest number gives finite matrices whose singular
    values are that scale (SVD in float64 of the returned matrix; rounding of the
    dtype); one beyond it is refused (before: a RuntimeWarning and ±inf entries
    in float32). Subnormal scales are kept exactly by ``identity``."""
    top = float(np.finfo(dtype).max)
    W = init.scaled_orthogonal(4, top / 2, seed=3, dtype=dtype)
    assert W.dtype == dtype and np.all(np.isfinite(W))
    s = np.linalg.svd(W.astype(np.float64) / top, compute_uv=False) * top
    np.testing.assert_allclose(s, top / 2, rtol=8 * np.finfo(dtype).eps)
    assert init.identity(3, top, dtype=dtype)[1, 1] == top
    tiny = float(np.finfo(dtype).smallest_subnormal)
    assert init.identity(3, tiny, dtype=dtype)[2, 2] == tiny
    with pytest.raises(ValueError, match=r"`scale` must be (at most .* for dtype float32|finite \(within float64)"):
        init.identity(3, top * 2.0 if dtype == np.float32 else 2**1100, dtype=dtype)


def test_verify_row_orthogonal() -> None:
    """The `verify` row for the orthogonal initialisers passes and reports what it checked."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.init import orthogonal_init

    row = orthogonal_init(CheckContext())
    assert row.passed and row.pairs > 0 and row.models == 16
    assert 0.0 <= row.worst < 1e-10
