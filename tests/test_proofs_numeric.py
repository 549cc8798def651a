"""The numeric proofs (loss, eigen, bound, remedies, C22, C33, C34) and their stored
counterexamples.

Two kinds of tests:

* each proof runs, is re-verified in this run, and carries the expected verdict;
* each stored counterexample (proofs/counterexamples/CXX.json) is re-checked here
  *independently of the proof code and of the library's kernels*: plain NumPy
  eigenvalues, SVDs and explicit matrix products of the abstract step Jacobians
  ``diag(d_t) W``, and a plain NumPy tanh recurrence where a real trajectory is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnntheory import ledger

EXPECTED = {
    "C02": "false",
    "C08": "false",
    "C09": "holds with conditions",
    "C10": "false",
    "C11": "false",
    "C12": "false",
    "C14": "false",
    "C17": "false",
    "C18": "false",
    "C19": "false",
    "C20": "holds with conditions",
    "C22": "holds with conditions",
    "C23": "not mathematical",
    "C25": "not mathematical",
    "C26": "not mathematical",
    "C33": "false",
    "C34": "false",
}


@pytest.mark.parametrize("cid", sorted(EXPECTED))
def test_proof_verified_with_expected_verdict(cid):
    """Every check inside the proof passed in this run, and the verdict is the expected one;
    a false verdict carries a counterexample whose numbers are finite."""
    spec = ledger.registry()[cid]
    p = spec.prove()
    assert p.verified, p.evidence
    assert p.verdict == EXPECTED[cid]
    assert p.corrected
    if p.verdict == "false":
        assert p.counterexample is not None
        assert spec.search is not None
        assert all(np.isfinite(v) for v in p.counterexample.numbers.values())
        assert ledger.counterexample_path(cid).exists()


# ----------------------------------------------------------------------------- helpers
def A(v):
    return np.asarray(v, dtype=np.float64)


def rho(M):
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def log_norm_product(mats):
    """ln ‖M_T ⋯ M_1‖₂ by explicit products with per-step rescaling (NumPy only)."""
    n = mats[0].shape[0]
    P, s = np.eye(n), 0.0
    for M in mats:
        P = M @ P
        m = np.abs(P).max()
        P, s = P / m, s + np.log(m)
    return s + np.log(np.linalg.norm(P, 2))


def alternating(W, d1, d2, T):
    return [np.diag(d1 if t % 2 == 0 else d2) @ W for t in range(T)]


def tanh_forward(W, U, b, x, h0=None):
    """h_t = tanh(W h_{t−1} + U x_t + b); returns states (T+1, n) and pre-activations (T, n)."""
    h = np.zeros(W.shape[0]) if h0 is None else np.array(h0, dtype=float)
    H, Aa = [h], []
    for xt in x:
        a = W @ h + U @ xt + b
        h = np.tanh(a)
        H.append(h)
        Aa.append(a)
    return np.array(H), np.array(Aa)


def sech2(a):
    return 1.0 / np.cosh(a) ** 2


# ----------------------------------------------------------------------------- C02
def test_c02_loss_over_range_differs_from_full_sum():
    """E(1..T) − E(t₀..T) = Σ_{s<t₀} ½‖V h_s + c − y_s‖² > 0: the two readings of Eq. 4
    are different functions (plain NumPy forward and squared error)."""
    ce = ledger.load_counterexample("C02")
    H, _ = tanh_forward(A(ce["W_hh"]), A(ce["W_hx"]), A(ce["b_h"]), A(ce["x"]))
    out = H[1:] @ A(ce["W_yh"]).T + A(ce["b_y"])
    per_step = 0.5 * np.sum((out - A(ce["y"])) ** 2, axis=1)
    t0 = int(ce["t0"])
    assert per_step[: t0 - 1].sum() > 1e-3
    assert per_step.sum() - per_step[t0 - 1:].sum() == pytest.approx(per_step[: t0 - 1].sum())


# ----------------------------------------------------------------------------- C08
def test_c08_conjugate_pair_and_jordan_block():
    """A real 2×2 matrix with a non-real eigenvalue λ has λ̄ as its other eigenvalue, so
    |λ1| = |λ2|; J = [[μ, 1], [0, μ]] has rank(J − μI) = 1: one eigenvector only."""
    ce = ledger.load_counterexample("C08")
    J = np.diag(A(ce["d"])) @ A(ce["W"])
    lam = np.linalg.eigvals(J)
    assert abs(lam[0].imag) > 0.1 * abs(lam[0])
    assert abs(abs(lam[0]) - abs(lam[1])) < 1e-12
    Jj = np.diag(A(ce["d_jordan"])) @ A(ce["W_jordan"])
    mu = np.trace(Jj) / 2
    assert np.allclose(Jj, [[mu, 1.0], [0.0, mu]])
    assert np.linalg.matrix_rank(Jj - mu * np.eye(2)) == 1


# ----------------------------------------------------------------------------- C10, C12, C34
def test_c10_factors_contract_product_grows():
    """ρ(J_i) < 1 for both factors, yet ρ(J_2 J_1) > 1, so ‖(J_2 J_1)^m‖ ≥ ρ(J_2 J_1)^m
    grows geometrically (the spectral radius bounds the norm from below)."""
    ce = ledger.load_counterexample("C10")
    W, d1, d2, T = A(ce["W"]), A(ce["d1"]), A(ce["d2"]), int(ce["T"])
    J1, J2 = np.diag(d1) @ W, np.diag(d2) @ W
    assert rho(J1) < 1 and rho(J2) < 1
    r2 = rho(J2 @ J1)
    assert r2 > 1
    assert log_norm_product(alternating(W, d1, d2, T)) >= (T // 2) * np.log(r2) - 1e-9


def test_c12_both_directions():
    """(a) ρ(W), ρ(J_i) < 1 and the product grows; (b) ρ(W), ρ(J_i) > 1 and the product
    decays: ‖(J_2 J_1)^m‖^(1/m) → ρ(J_2 J_1) (Gelfand)."""
    ce = ledger.load_counterexample("C12")
    a, b = ce["explode"], ce["vanish"]
    Wa, Wb = A(a["W"]), A(b["W"])
    Ja = [np.diag(A(a[k])) @ Wa for k in ("d1", "d2")]
    Jb = [np.diag(A(b[k])) @ Wb for k in ("d1", "d2")]
    assert max(rho(Wa), rho(Ja[0]), rho(Ja[1])) < 1
    assert log_norm_product(alternating(Wa, A(a["d1"]), A(a["d2"]), int(a["T"]))) > 5
    assert min(rho(Wb), rho(Jb[0]), rho(Jb[1])) > 1
    assert log_norm_product(alternating(Wb, A(b["d1"]), A(b["d2"]), int(b["T"]))) < -5
    # Linear RNN with W_a: ρ < 1 makes ‖W^t‖ → 0.
    assert np.log(np.linalg.norm(np.linalg.matrix_power(Wa, 400), 2)) < -5


def test_c34_spectral_radius_one_explodes():
    """ρ(W) = 1 and ρ(diag(d₂)W diag(d₁)W) > 1: the alternating product grows geometrically;
    and the Jordan block [[1, 1], [0, 1]]^t = [[1, t], [0, 1]] has norm ≥ t."""
    ce = ledger.load_counterexample("C34")
    W, d1, d2, T = A(ce["W"]), A(ce["d1"]), A(ce["d2"]), int(ce["T"])
    assert rho(W) == pytest.approx(1.0, abs=1e-12)
    r2 = rho(np.diag(d2) @ W @ np.diag(d1) @ W)
    assert r2 > 1
    assert log_norm_product(alternating(W, d1, d2, T)) >= (T // 2) * np.log(r2) - 1e-9
    Jb = np.linalg.matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 1000)
    assert Jb[0, 1] == 1000 and np.linalg.norm(Jb, 2) >= 1000


def test_realized_inputs_give_the_prescribed_gains():
    """The inputs of proofs._common.realize_jacobians (C10's data) drive a plain NumPy
    tanh recurrence with W_hx = I, b = 0 whose tanh′ = sech²(a_t) equals d_t."""
    from rnntheory.proofs._common import realize_jacobians

    ce = ledger.load_counterexample("C10")
    W, d1, d2 = A(ce["W"]), A(ce["d1"]), A(ce["d2"])
    d_seq = np.array([d1 if t % 2 == 0 else d2 for t in range(10)])
    _, x = realize_jacobians(W, d_seq)
    _, pre = tanh_forward(W, np.eye(2), np.zeros(2), x)
    assert np.allclose(sech2(pre), d_seq, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- C11
def test_c11_leading_power_decays():
    """W v = λ v with |λ| < 1 gives ‖W^T v‖ = |λ|^T ‖v‖ < ‖v‖: λ^t shrinks."""
    ce = ledger.load_counterexample("C11")
    W, T = A(ce["W"]), int(ce["T"])
    lam, V = np.linalg.eig(W)
    i = int(np.argmax(np.abs(lam)))
    assert np.all(np.abs(lam.imag) == 0) and abs(lam[i]) < 1
    v = V[:, i].real
    got = np.linalg.norm(np.linalg.matrix_power(W, T) @ v) / np.linalg.norm(v)
    assert got == pytest.approx(abs(lam[i]) ** T, rel=1e-10)


# ----------------------------------------------------------------------------- C14
def test_c14_spectral_radius_does_not_bound_powers():
    """At the origin J = W; for some s, ‖W^s‖ > ρ(W)^s, while ‖W^s‖ ≤ σ_max(W)^s always."""
    ce = ledger.load_counterexample("C14")
    W, T = A(ce["W"]), int(ce["T"])
    r, s_max = rho(W), np.linalg.svd(W, compute_uv=False)[0]
    excess = []
    for s in range(1, T + 1):
        nrm = np.linalg.norm(np.linalg.matrix_power(W, s), 2)
        assert nrm <= s_max**s * (1 + 1e-9)
        excess.append(np.log(nrm) - s * np.log(r))
    assert max(excess) > 1.0


# ----------------------------------------------------------------------------- C17
def test_c17_bound_holds_but_is_loose():
    """‖Π diag(d_i)W‖ ≤ Π ‖diag(d_i)‖ ‖W‖ ≤ σ_max^T (d ≤ 1), but here the product decays
    while σ_max^T grows: ln(observed/bound) < −50."""
    ce = ledger.load_counterexample("C17")
    W, d1, d2, T = A(ce["W"]), A(ce["d1"]), A(ce["d2"]), int(ce["T"])
    s_max = np.linalg.svd(W, compute_uv=False)[0]
    obs = log_norm_product(alternating(W, d1, d2, T))
    assert T * np.log(s_max) > 0 > obs
    assert obs - T * np.log(s_max) < -50
    assert np.max(np.concatenate([d1, d2])) <= 1


# ----------------------------------------------------------------------------- C18
def test_c18_large_gamma_every_product_contracts():
    """σ_max(W) γ_h ≫ 1 but ‖diag(d)W‖ ≤ 0.9, so ‖(diag(d)W)^s‖ ≤ 0.9^s for all s."""
    ce = ledger.load_counterexample("C18")
    W, d, T = A(ce["W"]), A(ce["d"]), int(ce["T"])
    J = np.diag(d) @ W
    assert np.linalg.svd(W, compute_uv=False)[0] > 2
    assert np.linalg.norm(J, 2) == pytest.approx(0.9, rel=1e-9)
    for s in range(1, T + 1):
        assert np.linalg.norm(np.linalg.matrix_power(J, s), 2) <= 0.9**s * (1 + 1e-9)


# ----------------------------------------------------------------------------- C19
def test_c19_first_input_still_moves_last_state():
    """With σ_max(W) = 0.9, ∂h_T/∂x_1 = J_T ⋯ J_2 diag(sech²(a_1)) W_hx is small but
    nonzero, and a finite change of x_1 changes h_T (plain NumPy recurrence)."""
    ce = ledger.load_counterexample("C19")
    W, U, x = A(ce["W_hh"]), A(ce["W_hx"]), A(ce["x"])
    T, n = x.shape[0], W.shape[0]
    assert np.linalg.svd(W, compute_uv=False)[0] == pytest.approx(0.9, rel=1e-9)
    H, pre = tanh_forward(W, U, np.zeros(n), x)
    G = np.diag(sech2(pre[0])) @ U
    for t in range(1, T):
        G = np.diag(sech2(pre[t])) @ W @ G
    s = np.linalg.svd(G, compute_uv=False)[0]
    assert 0 < s <= 0.9 ** (T - 1) * np.linalg.norm(U, 2) * (1 + 1e-9)
    x2 = x.copy()
    x2[0] += 1e-3 * np.linalg.svd(G)[2][0]
    H2, _ = tanh_forward(W, U, np.zeros(n), x2)
    assert np.linalg.norm(H2[T] - H[T]) / 1e-3 == pytest.approx(s, rel=1e-2)


# ----------------------------------------------------------------------------- C33
def test_c33_orthogonal_tanh_vanishes():
    """Qᵀ Q = I; the tanh Jacobians diag(sech²(a_t)) Q have norm ≤ 1 and their product over
    the stored inputs decays below e^−5, while the linear products Q^t keep norm 1."""
    ce = ledger.load_counterexample("C33")
    Q, x = A(ce["W"]), A(ce["x"])
    n, T = Q.shape[0], x.shape[0]
    assert np.allclose(Q.T @ Q, np.eye(n), atol=1e-12)
    _, pre = tanh_forward(Q, np.eye(n), np.zeros(n), x)
    mats = [np.diag(sech2(a)) @ Q for a in pre]
    assert all(np.linalg.norm(M, 2) <= 1 + 1e-12 for M in mats)
    assert log_norm_product(mats) < -5
    assert np.linalg.norm(np.linalg.matrix_power(Q, T), 2) == pytest.approx(1.0, abs=1e-10)


# ----------------------------------------------------------------------------- C21 reuse (C22)
def test_c22_spectral_radius_below_one_is_not_contraction():
    """C22's caveat re-checked on C21's data: ρ(W) ≤ 1 while the two-step product of
    diag(d_i)W has spectral radius > 1 (so inputs need not die out)."""
    ce = ledger.load_counterexample("C21")
    W, d1, d2 = A(ce["W"]), A(ce["d1"]), A(ce["d2"])
    assert rho(W) <= 1
    assert rho(np.diag(d2) @ W @ np.diag(d1) @ W) > 1
