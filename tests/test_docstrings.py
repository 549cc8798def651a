"""Run the doctest examples in the docstrings of every public module."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
from oracle import torch_or_skip

import rnntheory

# Modules whose docstrings must carry at least one runnable example.
WITH_EXAMPLES = {
    "rnntheory.activations",
    "rnntheory.cells.elman",
    "rnntheory.cells.curvature",
    "rnntheory.jacobians",
    "rnntheory.bounds",
    "rnntheory.strategies",
    "rnntheory.cells.gated",
    "rnntheory.cells.generator",
    "rnntheory.plotting",
    "rnntheory.torch_bridge",
    "rnntheory.tasks",
    "rnntheory.esn",
    "rnntheory.remedies.clipping",
    "rnntheory.remedies.penalties",
    "rnntheory.remedies.omega",
    "rnntheory.init",
    "rnntheory.training.hessian_free",
    "rnntheory.experiments.runspec",
    "rnntheory.experiments.store",
    "rnntheory.experiments.sweep",
    "rnntheory.experiments.report",
}

# Every public module (no leading underscore anywhere in its dotted name).
PUBLIC = sorted(
    ["rnntheory"]
    + [
        info.name
        for info in pkgutil.walk_packages(rnntheory.__path__, prefix="rnntheory.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
)

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_public_modules_found() -> None:
    assert WITH_EXAMPLES <= set(PUBLIC), sorted(WITH_EXAMPLES - set(PUBLIC))


@pytest.mark.parametrize("name", PUBLIC)
def test_doctests(name: str) -> None:
    if name == "rnntheory.torch_bridge":
        torch_or_skip()  # the oracle extra: skipped without torch unless it is required
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, report=False, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"
