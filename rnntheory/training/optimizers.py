"""Small, pure first-order optimizers (in the spirit of Optax's ``init``/``update``).

An optimizer turns gradients into parameter *updates*; ``apply_updates``
adds them. State is a plain dict of arrays, so a run is reproducible and a
state can be inspected or saved. Every optimizer works on dicts name → array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_real

__all__ = ["SGD", "Adam", "Optimizer", "RMSProp", "apply_updates"]

Params = dict[str, np.ndarray]


class Optimizer:
    """Base class: ``state = opt.init(params)``; ``updates, state = opt.update(grads, state)``."""

    lr: float

    def init(self, params: Params) -> dict[str, Any]:
        """The initial state for ``params``."""
        raise NotImplementedError

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        """Updates for ``grads`` and the new state (the old state is not modified)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``v ← μ v + g``; update ``−lr·v`` (or ``−lr·(g + μ v)`` with Nesterov).
    ``momentum = 0`` is plain SGD, Pascanu et al. 2013's choice (lr 0.01).
    """

    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)

    def init(self, params: Params) -> dict[str, Any]:
        return {"v": {k: np.zeros_like(p) for k, p in params.items()}}

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        if self.momentum == 0.0:
            return {k: -self.lr * g for k, g in grads.items()}, state
        v = {k: self.momentum * state["v"][k] + g for k, g in grads.items()}
        if self.nesterov:
            upd = {k: -self.lr * (g + self.momentum * v[k]) for k, g in grads.items()}
        else:
            upd = {k: -self.lr * v[k] for k in grads}
        return upd, {"v": v}


@dataclass(frozen=True)
class RMSProp(Optimizer):
    """RMSProp: ``s ← ρ s + (1 − ρ) g²``; update ``−lr · g / (√s + ε)``."""

    lr: float = 1e-3
    decay: float = 0.9
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("decay", self.decay, low=0.0, high=1.0, high_open=True)
        check_real("eps", self.eps, low=0.0, low_open=True)

    def init(self, params: Params) -> dict[str, Any]:
        return {"s": {k: np.zeros_like(p) for k, p in params.items()}}

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        s = {k: self.decay * state["s"][k] + (1 - self.decay) * g * g for k, g in grads.items()}
        return {k: -self.lr * g / (np.sqrt(s[k]) + self.eps) for k, g in grads.items()}, {"s": s}


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("b1", self.b1, low=0.0, high=1.0, high_open=True)
        check_real("b2", self.b2, low=0.0, high=1.0, high_open=True)
        check_real("eps", self.eps, low=0.0, low_open=True)

    def init(self, params: Params) -> dict[str, Any]:
        zeros = {k: np.zeros_like(p) for k, p in params.items()}
        return {"m": zeros, "v": {k: z.copy() for k, z in zeros.items()}, "t": 0}

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        t = state["t"] + 1
        m = {k: self.b1 * state["m"][k] + (1 - self.b1) * g for k, g in grads.items()}
        v = {k: self.b2 * state["v"][k] + (1 - self.b2) * g * g for k, g in grads.items()}
        c1 = 1 - self.b1**t
        c2 = 1 - self.b2**t
        upd = {k: -self.lr * (m[k] / c1) / (np.sqrt(v[k] / c2) + self.eps) for k in grads}
        return upd, {"m": m, "v": v, "t": t}


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` entry by entry (a new dict; dtypes kept)."""
    return {k: (p + updates[k]).astype(p.dtype, copy=False) if k in updates else p for k, p in params.items()}
