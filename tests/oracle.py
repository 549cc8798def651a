"""The PyTorch oracle switch, in one place.

PyTorch autograd is one of the independent oracles (the ``oracle`` extra). On a
user's machine without torch, the tests and docs blocks that need it are
skipped with the reason below, so the README's test command passes after the
README's install command. Where the environment demands the oracle
(``RNNTHEORY_REQUIRE_ORACLE=1``, set by ``.ci/run``), nothing is skipped: a
missing torch is an import error, and the run fails.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

import pytest

#: The environment variable that makes a missing torch a failure.
REQUIRE_VAR = "RNNTHEORY_REQUIRE_ORACLE"

SKIP_REASON = (
    "torch is not installed: the PyTorch oracle comes with the `oracle` extra "
    "(python -m pip install -e \".[dev,oracle]\"); set RNNTHEORY_REQUIRE_ORACLE=1 "
    "to make its absence a failure"
)


def required() -> bool:
    """Whether the environment demands the oracle (a missing torch fails)."""
    return os.environ.get(REQUIRE_VAR, "").strip().lower() not in ("", "0", "false", "no")


def available() -> bool:
    """Whether torch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def skip_torch() -> bool:
    """Whether oracle tests and docs blocks are skipped here: torch is absent and
    the environment does not demand it."""
    return not available() and not required()


def torch_or_skip() -> ModuleType:
    """``torch``, or a skip with the stated reason; where the oracle is required,
    a missing torch raises ``ImportError`` (a failure, never a skip)."""
    if skip_torch():
        pytest.skip(SKIP_REASON, allow_module_level=True)
    import torch

    return torch
