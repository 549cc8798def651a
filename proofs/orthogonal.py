"""C32–C34: orthogonal matrices, λ^t, and "λ₁ = 1 avoids both problems"."""

from __future__ import annotations

import numpy as np

from rnntheory.ledger import Proof, claim


@claim(
    "C32",
    claim="All eigenvalues of an orthogonal matrix have modulus 1",
    where="Orthogonal paragraph",
    method="symbolic identity + numeric check",
)
def c32() -> Proof:
    import sympy as sp

    # General statement: Qᵀ Q = I and Q v = λ v (v ≠ 0, complex) give
    # ‖v‖² = v* Qᵀ Q v = ‖Q v‖² = |λ|² ‖v‖², so |λ| = 1. Checked symbolically on
    # the two families that make up O(2) (rotations and reflections), whose
    # eigenvalues SymPy computes in closed form, and numerically on Haar-random
    # orthogonal matrices of sizes 2..12.
    th = sp.symbols("theta", real=True)
    rot = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    ref = sp.Matrix([[sp.cos(th), sp.sin(th)], [sp.sin(th), -sp.cos(th)]])
    mods = []
    for M in (rot, ref):
        assert sp.simplify(M.T * M - sp.eye(2)) == sp.zeros(2, 2)
        for lam in M.eigenvals():
            mods.append(sp.simplify(sp.Abs(lam) ** 2 - 1))
    symbolic_ok = all(m == 0 for m in mods)
    rng = np.random.default_rng(32)
    worst = 0.0
    for n in range(2, 13):
        q, r = np.linalg.qr(rng.normal(size=(n, n)))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        worst = max(worst, float(np.max(np.abs(np.abs(np.linalg.eigvals(q)) - 1.0))))
    numeric_ok = worst < 1e-12
    return Proof(
        "holds",
        "Every eigenvalue λ of a real orthogonal Q satisfies |λ| = 1 (from ‖Qv‖ = ‖v‖).",
        (
            f"SymPy: |λ|² − 1 simplifies to 0 for every eigenvalue of the rotation and "
            f"reflection families of O(2): {symbolic_ok}",
            "numeric: max ||λ| − 1| over Haar-random orthogonal Q, n = 2..12: "
            + ("below 1e-12" if numeric_ok else f"{worst:.1e} (too large)"),
        ),
        symbolic_ok and numeric_ok,
    )
