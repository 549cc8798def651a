"""C24: gradient clipping by norm (Eq. 13)."""

from __future__ import annotations

import numpy as np

from rnntheory.ledger import Proof, claim


def _clip(g: np.ndarray, tau: float) -> np.ndarray:
    """Eq. 13 as written (Pascanu et al. 2013, Alg. 1)."""
    n = float(np.linalg.norm(g))
    return g * (tau / n) if n >= tau else g


def _clip_torch_style(g: np.ndarray, tau: float) -> np.ndarray:
    """What torch.nn.utils.clip_grad_norm_ does: scale by min(1, τ/(‖g‖ + 1e−6))."""
    return g * min(1.0, tau / (float(np.linalg.norm(g)) + 1e-6))


def _clip_optax_style(g: np.ndarray, tau: float) -> np.ndarray:
    """Optax's clip_by_global_norm: keep g when ‖g‖ < τ, else (g/‖g‖)·τ (0/0 at ‖g‖ = τ = 0)."""
    n = np.linalg.norm(g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return g if n < tau else (g / n) * tau


@claim(
    "C24",
    claim="Clipping (Eq. 13) keeps the gradient norm ≤ threshold",
    where="Eq. 13",
    method="symbolic identity + numeric check",
)
def c24() -> Proof:
    from rnntheory.symbolic.clipping import prove_clipping

    p = prove_clipping(3)
    rng = np.random.default_rng(24)
    worst_over = -np.inf
    worst_dir = 0.0
    for _ in range(300):
        g = rng.normal(size=int(rng.integers(1, 20))) * 10 ** rng.uniform(-3, 3)
        tau = 10 ** rng.uniform(-2, 2)
        c = _clip(g, tau)
        worst_over = max(worst_over, float((np.linalg.norm(c) - tau) / tau))
        cos = float(c @ g / (np.linalg.norm(c) * np.linalg.norm(g)))
        worst_dir = max(worst_dir, abs(1.0 - cos))
    g = np.array([6.0, 8.0])
    torch_norm = float(np.linalg.norm(_clip_torch_style(g, 1.0)))
    optax_zero = _clip_optax_style(np.zeros(3), 0.0)
    ok = p.holds and worst_over <= 1e-12 and worst_dir < 1e-12 and torch_norm < 1.0
    return Proof(
        "holds",
        "When ‖g‖ ≥ τ > 0, τ g/‖g‖ has norm exactly τ and the direction of g; below τ, g is "
        "unchanged; so the clipped norm is min(‖g‖, τ) ≤ τ, and clipping is idempotent. "
        "Implementations differ at the edges: PyTorch divides by ‖g‖ + 1e−6 (norm slightly below τ), "
        "and Optax's form divides 0 by 0 when ‖g‖ = τ = 0.",
        (
            f"SymPy (g ∈ R³ symbolic, τ > 0): {p.norm_is_tau.statement}: {p.norm_is_tau.holds}; "
            f"{p.same_direction.statement}: {p.same_direction.holds}; "
            f"{p.idempotent.statement}: {p.idempotent.holds}; "
            f"{p.identity_below.statement}: {p.identity_below.holds}",
            "numeric: 300 random g and τ (10⁻² ≤ τ ≤ 10²): (‖clip(g)‖ − τ)/τ ≤ "
            + ("1e-12" if worst_over <= 1e-12 else f"{worst_over:.2e} (too large)")
            + f", 1 − cos(clip(g), g) {'below 1e-12' if worst_dir < 1e-12 else f'{worst_dir:.1e}'}",
            f"PyTorch-style scaling τ/(‖g‖ + 1e−6), g = (6, 8), τ = 1: ‖clip(g)‖ = 1 − {1 - torch_norm:.3e}",
            f"Optax-style form at ‖g‖ = τ = 0: result has NaN entries: {bool(np.isnan(optax_zero).any())}",
        ),
        bool(ok),
    )
