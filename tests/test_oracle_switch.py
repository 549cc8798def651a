"""The torch oracle switch: skip with a reason on a user's machine without
torch, fail where the environment demands the oracle (as CI does)."""

from __future__ import annotations

import sys

import oracle
import pytest


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("0", False), ("false", False), ("no", False), ("1", True), ("yes", True)],
)
def test_required_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(oracle.REQUIRE_VAR, value)
    assert oracle.required() is expected


def test_missing_torch_skips_with_the_reason(monkeypatch):
    monkeypatch.delenv(oracle.REQUIRE_VAR, raising=False)
    monkeypatch.setattr(oracle, "available", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="oracle` extra"):
        oracle.torch_or_skip()


def test_missing_torch_fails_where_the_oracle_is_required(monkeypatch):
    monkeypatch.setenv(oracle.REQUIRE_VAR, "1")
    monkeypatch.setattr(oracle, "available", lambda: False)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises
    assert not oracle.skip_torch()
    with pytest.raises(ImportError):
        oracle.torch_or_skip()


def test_ci_has_the_oracle():
    """Where the oracle is required (CI), torch is importable: the run that is
    meant to check every oracle test cannot pass by skipping them."""
    if not oracle.required():
        pytest.skip(f"{oracle.REQUIRE_VAR} is not set: the oracle is optional here")
    assert oracle.available()
