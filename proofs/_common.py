"""Helpers shared by the proofs (not a proof module: its name starts with ``_``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnntheory.cells.elman import ElmanRNN


def realize_jacobians(W: Any, d_seq: Any) -> tuple[ElmanRNN, np.ndarray]:
    """A tanh Elman RNN and inputs whose step Jacobians are ``diag(d_t) W``.

    Every ``d ∈ (0, 1]`` is a value of ``tanh′ = sech²``: take the pre-activation
    ``a_t = arcsech(√d_t)`` and, with ``W_hx = I`` and ``b_h = 0``, the input
    ``x_t = a_t − W h_{t−1}``. So any sequence of diagonal gains in ``(0, 1]``
    is the Jacobian sequence of a real trajectory of the standard form; the
    returned model and inputs reproduce it through the library's own kernels.

    Parameters
    ----------
    W : array, shape ``(n, n)``
    d_seq : array, shape ``(T, n)``, entries in ``(0, 1]``

    Returns
    -------
    model, x
    """
    W = np.asarray(W, dtype=np.float64)
    d_seq = np.asarray(d_seq, dtype=np.float64)
    if np.any(d_seq <= 0) or np.any(d_seq > 1):
        raise ValueError("`d_seq` entries must lie in (0, 1]")
    n = W.shape[0]
    a_seq = np.arccosh(1.0 / np.sqrt(d_seq))  # sech²(a) = d, a ≥ 0
    model = ElmanRNN(W, np.eye(n), np.zeros(n), activation="tanh")
    h = np.zeros(n)
    xs = []
    for a in a_seq:
        # Closed loop: the next input is computed from the state the model
        # itself reached, so rounding errors are not amplified along the way.
        x = a - W @ h
        xs.append(x)
        h = model.forward(x[None, :], h0=h).h[1]
    return model, np.array(xs)


def as_array(data: Any) -> np.ndarray:
    """A stored (JSON) matrix or vector back as a float64 array."""
    return np.asarray(data, dtype=np.float64)
