"""The rows of ``rnntheory verify``, registered by decorator beside the proofs.

Shaped like the claims ledger: a check is a function of a :class:`CheckContext`
(the run's :class:`~rnntheory.verification.VerifyConfig` and the embedded default
models) that returns a :class:`~rnntheory.verification.CheckResult`, registered
with :func:`check` under its row name and an ``order`` (the row's place in the
table). Each topic has its module here (``jacobians``, ``bounds``, ``remedies``,
``gated``, ``esn``, ``init``, ``curvature``, ``experiments``); :func:`registry`
imports every public module of this package, so a new module is picked up by
being here, and returns the checks sorted by ``(order, name)``.
:func:`rnntheory.verification.run_checks` runs them in that order.

Nothing below this floor imports the checks: a library module never knows the
rows that check it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._validation import check_int
from ._context import CheckContext
from ._result import CheckResult

__all__ = ["CheckContext", "CheckSpec", "check", "registry"]

CheckFunction = Callable[[CheckContext], CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its row name, its place in the table, and its function."""

    name: str
    order: int
    run: CheckFunction = field(repr=False)
    module: str = ""


_REGISTRY: dict[str, CheckSpec] = {}


def check(name: str, *, order: int) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the ``verify`` row ``name``.

    Parameters
    ----------
    name : str
        The row's name (the ``check`` column), unique across the registry.
    order : int
        The row's place: rows run and print by increasing ``order`` (then name).

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.

    Raises
    ------
    TypeError
        When ``name`` is not a string or ``order`` not an integer.
    ValueError
        When ``name`` is empty, or already registered to another function.

    Examples
    --------
    >>> from rnntheory.checks import check
    >>> deco = check("my-row", order=1000)  # then: @deco on ``def my_row(ctx): ...``
    >>> callable(deco)
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"`name` must be a non-empty string, got {name!r}")
    order = check_int("order", order)

    def deco(fn: CheckFunction) -> CheckFunction:
        if not callable(fn):
            raise TypeError(f"`check` decorates a function, got {type(fn).__name__}")
        old = _REGISTRY.get(name)
        if old is not None and old.run is not fn:
            raise ValueError(f"check {name!r} is registered twice ({old.module} and {_module_of(fn)})")
        _REGISTRY[name] = CheckSpec(name, order, fn, _module_of(fn))
        return fn

    return deco


def _module_of(fn: Any) -> str:
    return str(getattr(fn, "__module__", ""))


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def registry() -> list[CheckSpec]:
    """Every registered check, in table order (imports every module of :mod:`rnntheory.checks`).

    Returns
    -------
    list of CheckSpec
        Sorted by ``(order, name)``: the order of ``rnntheory verify``'s rows.
    """
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))
