"""Experiments: the paper's results reproduced by one command each.

``rnntheory experiment NAME`` runs a registered experiment (see
:func:`list_experiments`) at a small default size, or at the paper's scale
with ``--full``, and writes a Markdown report with figures. Nothing heavy is
imported here: each experiment's module loads when it is run.
"""

from __future__ import annotations

from .registry import (
    EXPERIMENT_NAMES,
    Experiment,
    ExperimentResult,
    get_experiment,
    list_experiments,
    run_experiment,
)
from .runspec import SOLVED_THRESHOLD, RunSpec, run_one

__all__ = [
    "EXPERIMENT_NAMES",
    "SOLVED_THRESHOLD",
    "Experiment",
    "ExperimentResult",
    "RunSpec",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "run_one",
]
