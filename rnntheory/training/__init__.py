"""Training: the loop, small pure optimizers, and the remedy records it accepts."""

from .hessian_free import (
    CGResult,
    GaussNewton,
    HessianFree,
    HFStepResult,
    gauss_newton_product,
    hf_step,
    truncated_cg,
)
from .loop import (
    Feedback,
    GradientClipping,
    History,
    Omega,
    Penalty,
    SpectralProjection,
    TruncatedBPTT,
    train,
)
from .optimizers import SGD, Adam, Optimizer, RMSProp, apply_updates

__all__ = [
    "SGD",
    "Adam",
    "CGResult",
    "Feedback",
    "GaussNewton",
    "GradientClipping",
    "HFStepResult",
    "HessianFree",
    "History",
    "Omega",
    "Optimizer",
    "Penalty",
    "RMSProp",
    "SpectralProjection",
    "TruncatedBPTT",
    "apply_updates",
    "gauss_newton_product",
    "hf_step",
    "train",
    "truncated_cg",
]
