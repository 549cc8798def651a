"""C02: the loss of Eq. 4 and its "range of interest [t, T]"."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory.cells.elman import ElmanRNN
from rnntheory.ledger import Counterexample, Proof, claim, load_counterexample

from ._common import as_array
from ._trajectory import g4, within

_T = 6


def _model(ce: dict[str, Any]) -> ElmanRNN:
    return ElmanRNN(
        as_array(ce["W_hh"]), as_array(ce["W_hx"]), as_array(ce["b_h"]),
        as_array(ce["W_yh"]), as_array(ce["b_y"]), activation="tanh",
    )


def _losses(model: ElmanRNN, x: np.ndarray, y: np.ndarray, t0: int) -> dict[str, Any]:
    """Full loss and gradient, the tail loss over [t0, T] and every per-step loss."""
    T = x.shape[0]
    E, g = model.value_and_grad(x, y, loss="mse")
    tail = (np.arange(1, T + 1) >= t0).astype(np.float64)
    E_tail, g_tail = model.value_and_grad(x, y, loss="mse", mask=tail)
    per_step = np.array(
        [model.value_and_grad(x, y, loss="mse", mask=np.eye(T)[s])[0] for s in range(T)]
    )
    return {"E": E, "E_tail": E_tail, "per_step": per_step,
            "g": g.W_hh, "g_tail": g_tail.W_hh}


def search_c02() -> dict[str, Any]:
    """Hypothesis search: a small tanh RNN with a readout, inputs, targets and a start
    step t₀, maximising how far the gradient over [t₀, T] is from the one over [1, T]."""
    from hypothesis import example, given, settings, target
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from rnntheory import strategies as rst

    best: dict[str, Any] = {}
    vals = st.floats(-1, 1, allow_nan=False, allow_subnormal=False)
    seed_model = ElmanRNN(np.array([[0.5, -0.3], [0.2, 0.4]]), np.array([[1.0], [-0.5]]),
                          np.zeros(2), np.array([[1.0, 1.0]]), np.zeros(1))

    @settings(max_examples=150, database=None, deadline=None, derandomize=True)
    @example(seed_model, np.linspace(-1, 1, _T)[:, None], np.ones((_T, 1)), 3)
    @given(rst.elman_models(n_in=1, n_hidden=2, n_out=1, activation="tanh", form="standard"),
           hnp.arrays(np.float64, (_T, 1), elements=vals),
           hnp.arrays(np.float64, (_T, 1), elements=vals), st.integers(2, _T))
    def explore(model, x, y, t0):
        r = _losses(model, x, y, t0)
        nrm = float(np.linalg.norm(r["g"]))
        if nrm < 1e-6:
            return
        score = float(np.linalg.norm(r["g"] - r["g_tail"])) / nrm
        target(score)
        if score > best.get("score", -1.0):
            best.update(model=model, x=x, y=y, t0=t0, score=score)

    explore()
    m = best["model"]
    return {"W_hh": m.W_hh, "W_hx": m.W_hx, "b_h": m.b_h, "W_yh": m.W_yh, "b_y": m.b_y,
            "x": best["x"], "y": best["y"], "t0": int(best["t0"])}


@claim(
    "C02",
    claim="The loss sums the per-step losses over \"the range of interest [t, T]\" "
    "(Eq. 4 writes Σ_{t=1}^{T})",
    where="Eq. 4",
    method="reading + counterexample",
    search=search_c02,
)
def c02() -> Proof:
    ce = load_counterexample("C02")
    model = _model(ce)
    x, y, t0 = as_array(ce["x"]), as_array(ce["y"]), int(ce["t0"])
    T = x.shape[0]
    r = _losses(model, x, y, t0)
    additive = abs(r["E"] - r["per_step"].sum()) / max(1.0, abs(r["E"]))
    tail_ok = abs(r["E_tail"] - r["per_step"][t0 - 1:].sum()) / max(1.0, abs(r["E"]))
    gap = r["E"] - r["E_tail"]
    head = float(r["per_step"][: t0 - 1].sum())
    gdiff = float(np.linalg.norm(r["g"] - r["g_tail"]) / np.linalg.norm(r["g"]))
    ok = additive < 1e-12 and tail_ok < 1e-12 and gap > 1e-3 and gdiff > 1e-2
    return Proof(
        "false",
        "As written Eq. 4 is ill-formed: t is both the start of the range [t, T] and the "
        "summation index. The standard loss is E = Σ_{s=1}^{T} E_s(ŷ_s, y_s), summed over "
        "every step; a range of interest needs its own letter, E = Σ_{s=τ}^{T} E_s, or in "
        "general E = Σ_{s∈S} E_s over the set S of steps that carry a target (a mask). "
        "The two readings are different functions of the weights with different gradients "
        "whenever some E_s with s < τ is not constant.",
        (
            f"per-step losses E_1..E_{T} (mask on one step) add up to the loss over "
            f"[1, {T}]: {within(additive, 1e-12)} (relative)",
            f"the loss over [{t0}, {T}] equals Σ_(s≥{t0}) E_s: {within(tail_ok, 1e-12)}",
            f"E over [1, {T}] − E over [{t0}, {T}] = {g4(gap)} = Σ_(s<{t0}) E_s = {g4(head)} > 0",
            f"‖∂E/∂W_hh over [1,T] − over [t₀,T]‖ / ‖∂E/∂W_hh over [1,T]‖ = {g4(gdiff)}",
        ),
        ok,
        Counterexample(
            f"A 2-unit tanh RNN with a linear readout and squared error, T = {T}: the loss "
            f"(and its gradient) over [1, T] and over the range [t₀, T] with t₀ = {t0} differ.",
            dict(ce),
            {"loss_1_T": float(r["E"]), "loss_t0_T": float(r["E_tail"]),
             "relative_gradient_difference": gdiff},
        ),
    )
