"""rnntheory: the theory of vanishing and exploding gradients in RNNs, checked.

Importing the package compiles nothing and imports neither SymPy nor
matplotlib; submodules with heavy dependencies (``strategies`` needs
Hypothesis) load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._parallel import get_num_threads, set_num_threads
from ._version import VERSION as __version__
from .activations import Activation, get_activation
from .cells import (
    GRU,
    LSTM,
    BidirectionalRNN,
    BidirectionalTrace,
    CustomRNN,
    CustomTrace,
    ElmanGrads,
    ElmanRNN,
    GatedGeneratorGrads,
    GatedTrace,
    GeneratorGrads,
    GeneratorRNN,
    GeneratorTrace,
    GRUGrads,
    LSTMGrads,
    StackedGeneratorGrads,
    StackedGrads,
    StackedRNN,
    StackedTrace,
    Trace,
)

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "BidirectionalRNN",
    "BidirectionalTrace",
    "CustomRNN",
    "CustomTrace",
    "Diagnosis",
    "ElmanGrads",
    "ElmanRNN",
    "GRUGrads",
    "GatedGeneratorGrads",
    "GatedTrace",
    "GeneratorGrads",
    "GeneratorRNN",
    "GeneratorTrace",
    "LSTMGrads",
    "StackedGeneratorGrads",
    "StackedGrads",
    "StackedRNN",
    "StackedTrace",
    "Trace",
    "__version__",
    "bounds",
    "diagnose",
    "from_state_dict",
    "from_torch",
    "get_activation",
    "get_num_threads",
    "jacobians",
    "set_num_threads",
    "strategies",
    "to_torch",
]

_LAZY = {
    "bounds", "jacobians", "strategies", "verification", "cli", "ledger", "plotting",
    "tasks", "training", "remedies", "esn",
}


def __getattr__(name: str) -> Any:
    if name in ("from_torch", "to_torch"):  # torch stays optional: imported on use
        return getattr(importlib.import_module(".torch_bridge", __name__), name)
    if name == "from_state_dict":
        return importlib.import_module(".checkpoints", __name__).from_state_dict
    if name in ("diagnose", "Diagnosis"):
        return getattr(importlib.import_module(".diagnosis", __name__), name)
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'rnntheory' has no attribute {name!r}")
