"""What a ``verify`` row is given: the run's configuration and the embedded default models."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .._validation import check_int, check_real
from ..cells.elman import ElmanRNN

__all__ = ["CheckContext", "VerifyConfig", "check_cfg", "default_models"]


@dataclass(frozen=True)
class VerifyConfig:
    """Sizes of the embedded default run."""

    T: int = 100
    n_hidden: int = 12
    n_in: int = 3
    seed: int = 2013
    scales: tuple[float, ...] = (0.5, 0.9, 1.5, 3.0)
    fd_models: int = 4
    fd_hidden: int = 5
    fd_T: int = 12
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("T", "n_hidden", "n_in", "fd_models", "fd_hidden", "fd_T"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0))
        scales = self.scales
        if isinstance(scales, str | bytes) or not isinstance(scales, tuple | list):
            raise TypeError(f"`scales` must be a tuple of positive numbers, got {type(scales).__name__}")
        object.__setattr__(
            self, "scales", tuple(check_real("scales", s, low=0.0, low_open=True) for s in scales)
        )
        if not isinstance(self.extra, dict):
            raise TypeError(f"`extra` must be a dict, got {type(self.extra).__name__}")


def check_cfg(cfg: Any) -> VerifyConfig:
    """``cfg`` itself when it is a :class:`VerifyConfig`; a ``TypeError`` otherwise."""
    if not isinstance(cfg, VerifyConfig):
        raise TypeError(f"`cfg` must be a VerifyConfig, got {type(cfg).__name__}")
    return cfg


def default_models(cfg: VerifyConfig) -> list[tuple[str, ElmanRNN, np.ndarray]]:
    """The embedded model set: ``(label, model, inputs)`` triples."""
    check_cfg(cfg)
    out = []
    rng = np.random.default_rng(cfg.seed)
    n, ni, T = cfg.n_hidden, cfg.n_in, cfg.T
    seed = cfg.seed
    for act in ("tanh", "sigmoid"):
        schemes: list[tuple[str, float | None]] = (
            [("smart_tanh", None), ("basic_tanh", None)] if act == "tanh" else [("sigmoid", None)]
        )
        schemes += [("gaussian", s) for s in cfg.scales]
        for scheme, scale in schemes:
            for form in ("standard", "pascanu"):
                for alpha in (None, "range"):
                    seed += 1
                    a = None if alpha is None else rng.uniform(0.02, 0.2, n)
                    m = ElmanRNN.init(
                        ni, n, None, activation=act, scheme=scheme, seed=seed,
                        scale=1.0 if scale is None else scale, form=form, alpha=a,
                    )
                    m = m.replace(b_h=rng.normal(0.0, 0.5, n))
                    x = rng.normal(0.0, 1.0, (T, ni))
                    label = f"{act}/{scheme}{'' if scale is None else f'({scale})'}/{form}"
                    label += "" if a is None else "/leaky"
                    out.append((label, m, x))
    return out


@dataclass(frozen=True)
class CheckContext:
    """What every registered check receives.

    Attributes
    ----------
    cfg : VerifyConfig
        The run's sizes and seed (default ``VerifyConfig()``).
    models : list of (str, ElmanRNN, ndarray)
        :func:`default_models` of ``cfg``, built on first use and then shared
        by every row of the run.

    Examples
    --------
    >>> from rnntheory.checks import CheckContext
    >>> from rnntheory.verification import VerifyConfig
    >>> ctx = CheckContext(VerifyConfig(T=5))
    >>> len(ctx.models), ctx.models[0][2].shape
    (44, (5, 3))
    """

    cfg: VerifyConfig = field(default_factory=VerifyConfig)

    def __post_init__(self) -> None:
        check_cfg(self.cfg)

    @cached_property
    def models(self) -> list[tuple[str, ElmanRNN, np.ndarray]]:
        """:func:`default_models` of :attr:`cfg` (built once)."""
        return default_models(self.cfg)
