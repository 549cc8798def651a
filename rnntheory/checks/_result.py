"""The record of one ``rnntheory verify`` row (a leaf: NumPy and the standard library only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """One row of the ``verify`` table.

    Attributes
    ----------
    check : str
        Short name.
    claim : str
        What is checked, with its equation.
    models : int
        Models tried.
    pairs : int
        Pairs ``(t, k)`` (or entries) checked.
    worst : float
        Worst value of the check's statistic: ``max ln(observed/bound)`` for
        bounds (≤ 0 means it holds; its magnitude is the slack), the largest
        relative error for identities, the largest ``ln(observed/ρ-bound)`` for
        the counterexample check (> 0 means the counterexample was found).
    passed : bool
    detail : str
    seconds : float
    """

    check: str
    claim: str
    models: int
    pairs: int
    worst: float
    passed: bool
    detail: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["worst"] = float(self.worst) if np.isfinite(self.worst) else None
        d["passed"] = bool(self.passed)
        d["models"], d["pairs"] = int(self.models), int(self.pairs)
        d["verdict"] = "pass" if self.passed else "FAIL"
        return d
