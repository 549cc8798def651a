"""Small, pure first-order optimizers (in the spirit of Optax's ``init``/``update``).

An optimizer turns gradients into parameter *updates*; ``apply_updates``
adds them. State is a plain dict of arrays, so a run is reproducible and a
state can be inspected or saved. Every optimizer works on dicts name → array.

The public calls check their inputs (dicts of finite float arrays whose keys
and shapes agree with the state) and refuse a step whose result would not be
finite (an overflowing ``g²`` or ``params + updates``) with a ``ValueError``
naming the argument. :func:`rnntheory.training.train` detects such steps
itself and takes its divergence path instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import all_finite, as_float_array, check_bool, check_int, check_real, show_value

__all__ = ["SGD", "Adam", "Optimizer", "RMSProp", "apply_updates"]

Params = dict[str, np.ndarray]


def _arrays(name: str, value: Any) -> Params:
    """``value`` as a dict name → finite float32/float64 array, or raise naming ``name``."""
    if not isinstance(value, dict):
        raise TypeError(
            f"`{name}` must be a dict of arrays (parameter name -> array, like model.params()), "
            f"got {type(value).__name__}"
        )
    out: Params = {}
    for k, a in value.items():
        if not isinstance(k, str):
            raise TypeError(f"`{name}` keys must be parameter names (str), got the key {show_value(k)}")
        out[k] = as_float_array(f"{name}[{k!r}]", a)
    return out


def _matching(name: str, arrays: Params, like: Params, like_name: str, *, subset: bool = False) -> Params:
    """Raise unless ``arrays`` has the keys (all of them, or a subset) and the
    shapes of ``like``; return ``arrays``."""
    extra = [k for k in arrays if k not in like]
    missing = [] if subset else [k for k in like if k not in arrays]
    if extra or missing:
        what = "a subset of the keys" if subset else "the keys"
        raise ValueError(
            f"`{name}` must have {what} of `{like_name}` {list(like)}, got {list(arrays)}"
            + (f" (not in `{like_name}`: {extra})" if extra else "")
            + (f" (missing: {missing})" if missing else "")
        )
    for k, a in arrays.items():
        if a.shape != like[k].shape:
            raise ValueError(f"`{name}[{k!r}]` must have shape {like[k].shape} (as `{like_name}[{k!r}]`), got shape {a.shape}")
    return arrays


def _state_dict(state: Any, keys: tuple[str, ...], owner: str) -> dict[str, Any]:
    """``state`` as a dict with exactly ``keys`` (what ``owner.init`` returns), or raise."""
    if not isinstance(state, dict):
        raise TypeError(f"`state` must be the dict {owner}.init returned, got {type(state).__name__}")
    if sorted(map(str, state)) != sorted(keys) or not all(isinstance(k, str) for k in state):
        raise ValueError(
            f"`state` must be the dict {owner}.init returned, with the keys {list(keys)}, got the keys {list(state)}"
        )
    return state


def _moment(name: str, value: Any, *, nonnegative: bool = False) -> Params:
    """A per-parameter state entry (``state['v']``...): a dict of finite arrays."""
    arrays = _arrays(name, value)
    if nonnegative:
        for k, a in arrays.items():
            if a.size and float(np.min(a)) < 0.0:
                raise ValueError(
                    f"`{name}[{k!r}]` must be non-negative (a running mean of g²), got min {float(np.min(a)):.6g}"
                )
    return arrays


def finite_tree(value: Any) -> bool:
    """Every array (and float) in a dict of arrays, nested dicts included, is finite
    (package-internal: the training loop checks a step with it)."""
    if isinstance(value, dict):
        return all(finite_tree(v) for v in value.values())
    if isinstance(value, np.ndarray):
        return all_finite(value)
    if isinstance(value, float | np.floating):
        return bool(np.isfinite(value))
    return True


def _max_abs(arrays: Params) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays.values() if a.size), default=0.0)


class Optimizer:
    """Base class: ``state = opt.init(params)``; ``updates, state = opt.update(grads, state)``."""

    lr: float

    def init(self, params: Params) -> dict[str, Any]:
        """The initial state for ``params``."""
        raise NotImplementedError

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        """Updates for ``grads`` and the new state (the old state is not modified)."""
        raise NotImplementedError


class _Checked(Optimizer):
    """The built-in optimizers: ``init`` and ``update`` check their arguments and
    refuse a step that would not be finite; ``_step`` is the bare arithmetic
    (what :func:`~rnntheory.training.train` calls, which checks the result itself)."""

    _state_keys: tuple[str, ...] = ()

    def init(self, params: Params) -> dict[str, Any]:
        """The initial state for ``params`` (zeros shaped like each array).

        Raises
        ------
        TypeError, ValueError
            When ``params`` is not a dict name → finite float array.
        """
        return self._init(_arrays("params", params))

    def update(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        """Updates for ``grads`` and the new state (the old state is not modified).

        Parameters
        ----------
        grads : dict of str to ndarray
            Finite gradients with the keys and shapes of the parameters ``init`` saw.
        state : dict
            What ``init`` (or the previous ``update``) returned.

        Returns
        -------
        updates, state

        Raises
        ------
        TypeError, ValueError
            When ``grads`` or ``state`` are malformed (wrong type, keys or
            shapes, non-finite entries), or when the step would not be finite
            (``g²`` or the update overflows the dtype): the message names the
            argument.
        """
        g = _arrays("grads", grads)
        st = self._check_state(_state_dict(state, self._state_keys, type(self).__name__), g)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            updates, new_state = self._step(g, st)
        if not (finite_tree(updates) and finite_tree(new_state)):
            raise ValueError(
                f"`grads` (max |g| = {_max_abs(g):.3g}) gives a non-finite {type(self).__name__} step with this "
                f"`state` and lr = {self.lr:g}: the update or the new state passes the dtype's range; "
                "rescale `grads` (e.g. clip them) or lower the learning rate"
            )
        return updates, new_state

    def _init(self, params: Params) -> dict[str, Any]:
        raise NotImplementedError

    def _check_state(self, state: dict[str, Any], grads: Params) -> dict[str, Any]:
        raise NotImplementedError

    def _step(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        raise NotImplementedError


@dataclass(frozen=True)
class SGD(_Checked):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``v ← μ v + g``; update ``−lr·v`` (or ``−lr·(g + μ v)`` with Nesterov).
    ``momentum = 0`` is plain SGD, Pascanu et al. 2013's choice (lr 0.01).
    """

    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    _state_keys = ("v",)

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        object.__setattr__(self, "nesterov", check_bool("nesterov", self.nesterov))

    def _init(self, params: Params) -> dict[str, Any]:
        return {"v": {k: np.zeros_like(p) for k, p in params.items()}}

    def _check_state(self, state: dict[str, Any], grads: Params) -> dict[str, Any]:
        v = _moment("state['v']", state["v"])
        _matching("grads", grads, v, "state['v']")
        return {"v": v}

    def _step(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        if self.momentum == 0.0:
            return {k: -self.lr * g for k, g in grads.items()}, state
        v = {k: self.momentum * state["v"][k] + g for k, g in grads.items()}
        if self.nesterov:
            upd = {k: -self.lr * (g + self.momentum * v[k]) for k, g in grads.items()}
        else:
            upd = {k: -self.lr * v[k] for k in grads}
        return upd, {"v": v}


@dataclass(frozen=True)
class RMSProp(_Checked):
    """RMSProp: ``s ← ρ s + (1 − ρ) g²``; update ``−lr · g / (√s + ε)``."""

    lr: float = 1e-3
    decay: float = 0.9
    eps: float = 1e-8

    _state_keys = ("s",)

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("decay", self.decay, low=0.0, high=1.0, high_open=True)
        check_real("eps", self.eps, low=0.0, low_open=True)

    def _init(self, params: Params) -> dict[str, Any]:
        return {"s": {k: np.zeros_like(p) for k, p in params.items()}}

    def _check_state(self, state: dict[str, Any], grads: Params) -> dict[str, Any]:
        s = _moment("state['s']", state["s"], nonnegative=True)
        _matching("grads", grads, s, "state['s']")
        return {"s": s}

    def _step(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        s = {k: self.decay * state["s"][k] + (1 - self.decay) * g * g for k, g in grads.items()}
        return {k: -self.lr * g / (np.sqrt(s[k]) + self.eps) for k, g in grads.items()}, {"s": s}


@dataclass(frozen=True)
class Adam(_Checked):
    """Adam (Kingma & Ba 2015) with bias correction."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    _state_keys = ("m", "t", "v")

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("b1", self.b1, low=0.0, high=1.0, high_open=True)
        check_real("b2", self.b2, low=0.0, high=1.0, high_open=True)
        check_real("eps", self.eps, low=0.0, low_open=True)

    def _init(self, params: Params) -> dict[str, Any]:
        zeros = {k: np.zeros_like(p) for k, p in params.items()}
        return {"m": zeros, "v": {k: z.copy() for k, z in zeros.items()}, "t": 0}

    def _check_state(self, state: dict[str, Any], grads: Params) -> dict[str, Any]:
        m = _moment("state['m']", state["m"])
        v = _matching("state['v']", _moment("state['v']", state["v"], nonnegative=True), m, "state['m']")
        _matching("grads", grads, m, "state['m']")
        return {"m": m, "v": v, "t": check_int("state['t']", state["t"], minimum=0)}

    def _step(self, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        t = state["t"] + 1
        m = {k: self.b1 * state["m"][k] + (1 - self.b1) * g for k, g in grads.items()}
        v = {k: self.b2 * state["v"][k] + (1 - self.b2) * g * g for k, g in grads.items()}
        c1 = 1 - self.b1**t
        c2 = 1 - self.b2**t
        upd = {k: -self.lr * (m[k] / c1) / (np.sqrt(v[k] / c2) + self.eps) for k in grads}
        return upd, {"m": m, "v": v, "t": t}


def unchecked_update(opt: Optimizer, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
    """What :func:`~rnntheory.training.train` calls: the bare arithmetic of a built-in
    optimizer (its gradients are finite and its state comes from ``init``; the
    loop checks the result and takes its divergence path when it is not finite),
    ``update`` for any other :class:`Optimizer`."""
    if isinstance(opt, _Checked) and type(opt).update is _Checked.update:
        return opt._step(grads, state)
    return opt.update(grads, state)


def unchecked_apply(params: Params, updates: Params) -> Params:
    """``params + updates`` in each parameter's dtype, unchecked (may hold ±inf)."""
    return {k: (p + updates[k]).astype(p.dtype, copy=False) if k in updates else p for k, p in params.items()}


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` entry by entry (a new dict; dtypes kept).

    Parameters
    ----------
    params : dict of str to ndarray
        Finite float32/float64 arrays.
    updates : dict of str to ndarray
        Finite arrays for some or all of the keys of ``params``, with the same
        shapes; a parameter without an update is kept as it is.

    Returns
    -------
    dict of str to ndarray
        Finite: each sum in its parameter's dtype.

    Raises
    ------
    TypeError, ValueError
        When either argument is not a dict of finite float arrays, ``updates``
        has a key ``params`` lacks or another shape, or a sum passes the range
        of its parameter's dtype (``1e38 + 1e38`` in float32): the message names
        the argument.

    Examples
    --------
    >>> import numpy as np
    >>> apply_updates({"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -2.0])})["w"].tolist()
    [1.5, 0.0]
    """
    p = _arrays("params", params)
    u = _matching("updates", _arrays("updates", updates), p, "params", subset=True)
    with np.errstate(over="ignore", invalid="ignore"):
        out = unchecked_apply(p, u)
    for k in u:
        if not all_finite(out[k]):
            raise ValueError(
                f"`updates[{k!r}]` (max |update| = {_max_abs({k: u[k]}):.3g}) takes `params[{k!r}]` "
                f"(max |entry| = {_max_abs({k: p[k]}):.3g}) beyond {out[k].dtype}'s range; rescale `updates`"
            )
    return out
