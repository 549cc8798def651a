"""C27–C28: leaky integration units (Eq. 14)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory.bounds import leaky_log_bound
from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

_TOL = 1e-6


def _impulse(alpha: float, T: int) -> np.ndarray:
    """ln ‖∂h_t/∂h_0‖ of one leaky linear unit (W_hh = 0, identity f): t ln α."""
    m = ElmanRNN(np.zeros((1, 1)), np.ones((1, 1)), np.zeros(1), activation="identity", alpha=alpha)
    return jacobians.log_norm_profile(m, m.forward(np.zeros((T, 1)), h0=np.ones(1)), 0)


def _steps_below(alpha: float, T: int) -> int:
    prof = _impulse(alpha, T)
    below = np.nonzero(prof < np.log(_TOL))[0]
    return int(below[0]) if below.size else -1


def search_c27() -> dict[str, Any]:
    """Hypothesis search over α in the article's range (0.02, 0.2) for the slowest unit
    (the largest number of steps before its impulse response falls below 1e-6)."""
    from hypothesis import given, settings, target
    from hypothesis import strategies as st

    best: dict[str, Any] = {}

    @settings(max_examples=100, database=None, deadline=None, derandomize=True)
    @given(st.floats(0.02, 0.2, exclude_min=True, exclude_max=False))
    def explore(alpha):
        steps = _steps_below(alpha, 40)
        target(float(steps) + alpha)
        if steps + alpha > best.get("score", -1.0):
            best.update(alpha=alpha, score=steps + alpha)

    explore()
    return {"alpha": best["alpha"], "alpha_slow": 0.98, "T": 1000}


@claim(
    "C27",
    claim="Leaky units (Eq. 14): α = 0 is a standard RNN; α from (0.02, 0.2) makes some units slow",
    where="Eq. 14",
    method="symbolic identity + counterexample",
    search=search_c27,
)
def c27() -> Proof:
    from rnntheory.symbolic.leaky import prove_leaky_jacobian

    sym = prove_leaky_jacobian(2, "standard")
    # α = 0 is the standard RNN: identical forward passes.
    m = ElmanRNN.init(2, 3, None, scheme="gaussian", seed=27)
    x = np.random.default_rng(27).normal(size=(6, 2))
    same = float(np.max(np.abs(m.forward(x).h - m.replace(alpha=0.0).forward(x).h)))
    d = load_counterexample("C27")
    a, a_slow, T = float(d["alpha"]), float(d["alpha_slow"]), int(d["T"])
    n_fast, n_slow = _steps_below(a, T), _steps_below(a_slow, T)
    prof = _impulse(a, 12)
    exact = float(np.max(np.abs(prof[1:] - np.arange(1, 13) * np.log(a))))
    ok = sym.holds and same == 0.0 and 0 < n_fast <= 10 and n_slow > 500 and exact < 1e-12
    return Proof(
        "false",
        "With α the retention coefficient of Eq. 14 (h_t = α h_{t−1} + (1 − α) f(·)), α = 0 is the "
        "standard RNN, but α ∈ (0.02, 0.2) makes units fast: the time constant 1/(1 − α) is "
        "1.02–1.25 steps. Slow units need α close to 1 (α = 0.98: 50 steps). In Bengio et al. "
        "2012 the values in (0.02, 0.2) are leak rates, i.e. 1 − α in Eq. 14's notation.",
        (
            f"SymPy: {sym.statement}: {sym.holds}",
            f"numeric: ElmanRNN with alpha = 0 against no leak, 6 steps: "
            f"{'identical' if same == 0.0 else f'differs by {same:.1e}'}",
            f"leaky linear unit (W_hh = 0, identity f), log_norm_profile: ln‖∂h_t/∂h_0‖ = t ln α "
            f"to {'within 1e-12' if exact < 1e-12 else f'{exact:.1e}'} for α = {a:.4g}",
            f"steps until the impulse response is below 1e-6: α = {a:.4g}: {n_fast}; α = {a_slow}: {n_slow}",
            f"time constants 1/(1 − α): {1 / (1 - a):.4g} and {1 / (1 - a_slow):.4g} steps",
        ),
        bool(ok),
        Counterexample(
            f"The slowest unit the article's range allows, α = {a:.4g}, forgets an impulse below 1e-6 "
            f"within {n_fast} steps; α = {a_slow} takes {n_slow}.",
            {"alpha": a, "alpha_slow": a_slow, "T": T},
            {"steps_below_1e-6_alpha": float(n_fast), "steps_below_1e-6_alpha_slow": float(n_slow),
             "time_constant_alpha": 1 / (1 - a)},
        ),
    )


@claim(
    "C28",
    claim="With α < 1 gradients can still vanish or explode",
    where="Eq. 14",
    method="numeric check",
)
def c28() -> Proof:
    T = 50
    Q = np.eye(3)
    out = {}
    for name, scale in (("explode", 3.0), ("vanish", 0.1)):
        m = ElmanRNN(scale * Q, np.eye(3), np.zeros(3), activation="tanh", alpha=0.5)
        prof = jacobians.log_norm_profile(m, m.forward(np.zeros((T, 3))), 0)
        out[name] = (float(prof[T]), float(leaky_log_bound(scale * Q, "tanh", 0.5, T)))
    ex, va = out["explode"], out["vanish"]
    ok = ex[0] > 30 and va[0] < -25 and ex[0] <= ex[1] + 1e-9 and va[0] <= va[1] + 1e-9
    return Proof(
        "holds",
        "With α < 1 the step Jacobian is diag(α) + diag(1 − α) J̃; its norm is at most "
        "max α + max(1 − α) γ_W γ_h, which can be above or below 1, so products can still grow "
        "or shrink geometrically. Only α → 1 (frozen units) pins it to 1.",
        (
            f"tanh, α = 0.5, W_hh = 3I, zero input at h = 0 (J_i = 0.5 I + 0.5·3 I = 2I): "
            f"ln‖∂h_{T}/∂h_0‖ = {ex[0]:.4g} (bound {ex[1]:.4g})",
            f"tanh, α = 0.5, W_hh = 0.1I (J_i = 0.55 I): ln‖∂h_{T}/∂h_0‖ = {va[0]:.4g} (bound {va[1]:.4g})",
        ),
        bool(ok),
    )
