"""Training: the loop, small pure optimizers, and the remedy records it accepts."""

from .loop import GradientClipping, History, Penalty, SpectralProjection, TruncatedBPTT, train
from .optimizers import SGD, Adam, Optimizer, RMSProp, apply_updates

__all__ = [
    "SGD",
    "Adam",
    "GradientClipping",
    "History",
    "Optimizer",
    "Penalty",
    "RMSProp",
    "SpectralProjection",
    "TruncatedBPTT",
    "apply_updates",
    "train",
]
