"""Helpers for the numeric proofs (loss, eigen, bound, remedies; private module).

Every abstract Jacobian sequence ``diag(d_t) W`` is turned into a real tanh
trajectory with :func:`proofs._common.realize_jacobians`, and the numbers are
then read back through the library (``jacobians``, ``bounds``), never from the
abstract matrices alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnntheory import jacobians
from rnntheory.cells.elman import ElmanRNN, Trace

from ._common import realize_jacobians


def rho(M: Any) -> float:
    """Spectral radius of a square matrix (0 for the zero matrix)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(M, dtype=np.float64)))))


def step(W: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The step Jacobian ``diag(d) W`` of the standard form."""
    return np.asarray(d, dtype=np.float64)[:, None] * np.asarray(W, dtype=np.float64)


def cycle(patterns: list[np.ndarray], T: int) -> np.ndarray:
    """A ``(T, n)`` gain sequence cycling through ``patterns``."""
    return np.array([patterns[t % len(patterns)] for t in range(T)], dtype=np.float64)


@dataclass(frozen=True)
class Realized:
    """A realised tanh trajectory: model, inputs, trace, step Jacobians from the library."""

    model: ElmanRNN
    x: np.ndarray
    trace: Trace
    J: np.ndarray
    error: float  # max |J_library − diag(d_t) W|


def realize(W: Any, d_seq: Any) -> Realized:
    """Realise ``diag(d_t) W`` as a tanh trajectory and read its Jacobians back."""
    W = np.asarray(W, dtype=np.float64)
    d_seq = np.asarray(d_seq, dtype=np.float64)
    model, x = realize_jacobians(W, d_seq)
    trace = model.forward(x)
    J = jacobians.step_jacobians(model, trace)
    err = float(np.max(np.abs(J - d_seq[:, :, None] * W[None])))
    return Realized(model, x, trace, J, err)


def within(err: float, tol: float) -> str:
    """``"within 1e-12"`` when ``err ≤ tol``, else the error itself (a failure)."""
    return f"within {tol:.0e}" if err <= tol else f"off by {err:.1e} (tolerance {tol:.0e})"


def g4(v: float) -> str:
    """Four significant digits."""
    return f"{float(v):.4g}"
