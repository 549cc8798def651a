"""Remedies for exploding and vanishing gradients, as small pure functions.

Gradient transforms take gradients and return ``(new_gradients, info)``;
penalties take a model and return ``(value, gradients)``; the projection
returns a new model. Nothing here modifies its arguments.

- :mod:`~rnntheory.remedies.clipping` — :func:`clip_by_norm` (Eq. 13; Pascanu
  et al. 2013, Alg. 1), :func:`clip_by_value` (Mikolov's element-wise
  variant), :func:`global_norm`.
- :mod:`~rnntheory.remedies.penalties` — :func:`l1_penalty`,
  :func:`l2_penalty`, :func:`spectral_penalty` on the recurrent weights, and
  :func:`project_spectral_norm`, the hard constraint ``σ_max(W_hh) ≤ c`` that no
  penalty provides (claim C21).
- :mod:`~rnntheory.remedies.omega` — :func:`omega`, Pascanu et al.'s
  vanishing-gradient regularizer Ω (Eqs. 15–16) and its fixed-flow gradient,
  and :func:`omega_full_gradient` for comparison.
- :mod:`~rnntheory.remedies.stages` — the records :func:`rnntheory.training.train`
  takes (:class:`GradientClipping`, :class:`TruncatedBPTT`, :class:`Penalty`,
  :class:`SpectralProjection`, :class:`Omega`, all :class:`Remedy`): each says
  what it does at each stage of a training step, calling the functions above.
- :mod:`~rnntheory.remedies.support` — the cell × remedy matrix: which cell
  supports which remedy, why not, the tests of each guarantee and the cost
  (:func:`~rnntheory.remedies.support.require`, :func:`~rnntheory.remedies.support.matrix`).

Examples
--------
>>> import numpy as np
>>> from rnntheory.remedies import clip_by_norm
>>> clipped, info = clip_by_norm({"W_hh": np.array([6.0, 8.0])}, threshold=1.0)
>>> clipped["W_hh"], info.norm
(array([0.6, 0.8]), 10.0)
"""

from __future__ import annotations

from .clipping import ClipInfo, ValueClipInfo, clip_by_norm, clip_by_value, global_norm
from .omega import OmegaResult, omega, omega_full_gradient
from .penalties import l1_penalty, l2_penalty, project_spectral_norm, spectral_penalty
from .stages import (
    Feedback,
    GradientClipping,
    Omega,
    Penalty,
    Remedy,
    SpectralProjection,
    TruncatedBPTT,
)

__all__ = [
    "ClipInfo",
    "Feedback",
    "GradientClipping",
    "Omega",
    "OmegaResult",
    "Penalty",
    "Remedy",
    "SpectralProjection",
    "TruncatedBPTT",
    "ValueClipInfo",
    "clip_by_norm",
    "clip_by_value",
    "global_norm",
    "l1_penalty",
    "l2_penalty",
    "omega",
    "omega_full_gradient",
    "project_spectral_norm",
    "spectral_penalty",
]
