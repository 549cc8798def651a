r"""Remedy records: what each remedy does at each stage of a training step.

:func:`rnntheory.training.train` takes a tuple of these small frozen records.
Each record says what it does at each stage of a step through a few methods
with no-op defaults on the base class :class:`Remedy`; ``train`` runs the
stages in a fixed order and never asks which record it holds:

1. **backward** — :meth:`Remedy.backward_options`: keyword options of the
   model's ``value_and_grad`` (:class:`TruncatedBPTT` passes ``truncate=``,
   :class:`Omega` keeps the forward pass for Ω);
2. **penalty** — :meth:`Remedy.penalty`: a value added to the batch-mean loss
   and a gradient added to the batch-mean gradient (:class:`Penalty`, then
   :class:`Omega`);
3. **transform** — :meth:`Remedy.transform`: a transform of the gradient
   before the optimizer sees it (:class:`GradientClipping`, Eq. 13);
4. the optimizer's update (``train``'s divergence check runs between 3 and 4);
5. **project** — :meth:`Remedy.project`: a map of the updated model
   (:class:`SpectralProjection`).

Within a stage the records run in the order of :attr:`Remedy.stage_rank`
(``TruncatedBPTT``, ``Penalty``, ``Omega``, ``GradientClipping``,
``SpectralProjection``), records of one kind in the order given. What a
record logs it writes into the step's ``row``: a dict with ``"step"`` (the
step's number, from 1), ``"events"`` (a list to which a stage appends
``(kind, detail)`` pairs; they become the History's ``(step, kind, detail)``
events) and one entry per name in :attr:`Remedy.columns` (``nan`` until a
stage sets it).

The arithmetic lives underneath, in pure functions
(:func:`~rnntheory.remedies.clip_by_norm`, :func:`~rnntheory.remedies.l2_penalty`,
:func:`~rnntheory.remedies.omega`, ...); a record only calls them.

A sweep (:class:`rnntheory.experiments.RunSpec`) names remedies by short names
with flat hyper-parameters; each record class lists the names it builds and
their defaults in :attr:`Remedy.hyper` and builds itself with
:meth:`Remedy.from_hyper`.

Examples
--------
>>> from rnntheory.remedies.stages import GradientClipping, TruncatedBPTT
>>> TruncatedBPTT(20).backward_options()
{'truncate': 20}
>>> GradientClipping.from_hyper("clip_value", {"clip_value": 0.5})
GradientClipping(threshold=0.5, kind='value')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._validation import all_finite, check_bool, check_choice, check_int, check_real, check_seed
from . import clipping as C
from . import penalties as P

__all__ = ["Feedback", "GradientClipping", "Omega", "Penalty", "Remedy", "SpectralProjection", "TruncatedBPTT"]

Grads = dict[str, np.ndarray]


class Remedy:
    """Base of the remedy records: one method per stage of a training step, each a no-op here.

    Subclasses are frozen dataclasses that override the stages they act in
    (see the module docstring for the order ``train`` runs them in).

    Attributes
    ----------
    stage_rank : int
        Position of the record's kind within each stage.
    repeatable : bool
        Whether ``train`` accepts several records of this kind (penalties add up).
    columns : tuple of str
        Per-step :class:`~rnntheory.training.History` columns the record fills.
    hyper : dict
        Sweep remedy name → ``{hyper-parameter: default}`` (``None``: required).
    feeds_back : bool
        Whether the record chooses a generator's fed-back values
        (:class:`Feedback`): a :class:`~rnntheory.cells.generator.GeneratorRNN`
        trains only with one.
    """

    stage_rank: ClassVar[int] = 100
    repeatable: ClassVar[bool] = False
    columns: ClassVar[tuple[str, ...]] = ()
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {}
    feeds_back: ClassVar[bool] = False

    def check_model(self, model: Any) -> None:
        """Raise ``ValueError`` when the record cannot act on ``model`` (before any step)."""

    def backward_options(self) -> dict[str, Any]:
        """Keyword options of ``model.value_and_grad`` (stage 1); none by default."""
        return {}

    def penalty(self, model: Any, backward: Any, batch_size: int, row: dict[str, Any]) -> tuple[float, Grads] | None:
        """Stage 2: ``(value, grads)`` to add to the batch-mean loss and gradient, or ``None``.

        ``backward`` is what ``value_and_grad`` returned beside the loss (the
        summed gradients, with the trace and flow when asked for), for
        ``batch_size`` sequences.
        """
        return None

    def transform(self, grads: Grads, row: dict[str, Any]) -> Grads:
        """Stage 3: the gradient handed to the optimizer (``grads`` unchanged by default)."""
        return grads

    def project(self, model: Any) -> Any:
        """Stage 5: the model after the update (``model`` unchanged by default)."""
        return model

    @classmethod
    def hyper_defaults(cls, name: str) -> dict[str, float | None]:
        """The hyper-parameters of the sweep remedy ``name`` with their defaults (``None``: required).

        Raises
        ------
        ValueError
            When this record does not build the remedy ``name``.

        Examples
        --------
        >>> TruncatedBPTT.hyper_defaults("tbptt")
        {'tbptt': None, 'tbptt_k1': 1.0}
        """
        check_choice("name", name, tuple(cls.hyper))
        return dict(cls.hyper[name])

    @classmethod
    def from_hyper(cls, name: str, hyper: Mapping[str, Any]) -> Remedy:
        """The record of the sweep remedy ``name`` from flat hyper-parameters.

        Parameters
        ----------
        name : str
            A sweep remedy name this class builds (a key of :attr:`hyper`).
        hyper : mapping of str to float
            Hyper-parameters by name; the remedy's missing ones take their
            defaults, other names are ignored.

        Raises
        ------
        TypeError, ValueError
            On an unknown ``name``, a ``hyper`` that is not a mapping, a
            missing required hyper-parameter, or a value the record refuses.

        Examples
        --------
        >>> Penalty.from_hyper("spectral", {"spectral": 0.5})
        Penalty(kind='spectral', weight=0.5, c=1.0)
        """
        defaults = cls.hyper_defaults(name)
        if not isinstance(hyper, Mapping):
            raise TypeError(f"`hyper` must be a mapping of hyper-parameter names to values, got {type(hyper).__name__}")
        values: dict[str, float] = {}
        for key, default in defaults.items():
            if key in hyper:
                values[key] = check_real(f"hyper[{key!r}]", hyper[key])
            elif default is None:
                raise ValueError(f"`hyper` must give {key!r} for the remedy {name!r}")
            else:
                values[key] = float(default)
        try:
            return cls._build(name, values)
        except (TypeError, ValueError) as err:  # the record's own check, said of `hyper`
            raise type(err)(f"`hyper` for the remedy {name!r}: {err}") from err

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        raise NotImplementedError


def _whole(key: str, value: float) -> int:
    if value != int(value):
        raise ValueError(f"`hyper[{key!r}]` must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TruncatedBPTT(Remedy):
    """Truncated BPTT: ``k1 = 1`` backpropagates each loss ``k2`` steps (a sliding
    window); ``k1 > 1`` is Williams & Peng's BPTT(k1, k2), blocks of ``k1`` losses
    backpropagated ``k2`` steps from the block's end (``k1 = k2``: chunks, O(T)).
    See ``ElmanRNN.value_and_grad(truncate=...)``; for a
    :class:`~rnntheory.StackedRNN` the window is on the whole state (every
    layer), see ``StackedRNN.value_and_grad``.

    Stage: backward (``truncate=``). Sweep name ``"tbptt"`` (``tbptt`` = k2,
    required; ``tbptt_k1`` [1]).
    """

    k2: int
    k1: int = 1

    stage_rank: ClassVar[int] = 0
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {"tbptt": {"tbptt": None, "tbptt_k1": 1.0}}

    def __post_init__(self) -> None:
        check_int("k2", self.k2, minimum=1)
        check_int("k1", self.k1, minimum=1)
        if self.k2 < self.k1:
            raise ValueError(f"`k2` must be >= `k1` = {self.k1}, got {self.k2}")

    @property
    def argument(self) -> int | tuple[int, int]:
        """The value passed as ``truncate=``: ``k2`` when ``k1 = 1``, else ``(k1, k2)``."""
        return self.k2 if self.k1 == 1 else (self.k1, self.k2)

    def backward_options(self) -> dict[str, Any]:
        """``{"truncate": self.argument}``."""
        return {"truncate": self.argument}

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        return cls(_whole("tbptt", values["tbptt"]), _whole("tbptt_k1", values["tbptt_k1"]))


@dataclass(frozen=True)
class Penalty(Remedy):
    """A penalty on the recurrent matrix: ``"l1"``, ``"l2"`` or ``"spectral"`` (``max(0, σ_max − c)²``).

    A gated cell's stacked ``weight_hh`` ``(G·n, n)`` is one matrix (L1/L2 sum
    over its gate blocks; the spectral penalty is on ``σ_max`` of the stacked
    matrix); a :class:`~rnntheory.StackedRNN` is penalised on each layer's
    recurrent matrix, the layers' penalties summed.

    Stage: penalty (:func:`~rnntheory.remedies.l1_penalty`,
    :func:`~rnntheory.remedies.l2_penalty` or
    :func:`~rnntheory.remedies.spectral_penalty`); penalties may repeat and
    add up. Sweep names ``"l1"`` [1e-4], ``"l2"`` [1e-4], ``"spectral"`` [1.0,
    with ``spectral_c`` = c, 1.0].
    """

    kind: str
    weight: float
    c: float = 1.0

    stage_rank: ClassVar[int] = 1
    repeatable: ClassVar[bool] = True
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {
        "l1": {"l1": 1e-4},
        "l2": {"l2": 1e-4},
        "spectral": {"spectral": 1.0, "spectral_c": 1.0},
    }

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("l1", "l2", "spectral"))
        check_real("weight", self.weight, low=0.0)
        check_real("c", self.c, low=0.0)

    def penalty(self, model: Any, backward: Any, batch_size: int, row: dict[str, Any]) -> tuple[float, Grads] | None:
        """The penalty's value and gradient on ``model``'s recurrent matrix."""
        if self.kind == "l1":
            return P.l1_penalty(model, self.weight)
        if self.kind == "l2":
            return P.l2_penalty(model, self.weight)
        return P.spectral_penalty(model, weight=self.weight, c=self.c)

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        if name == "spectral":
            return cls("spectral", values["spectral"], c=values["spectral_c"])
        return cls(name, values[name])


#: The weight of Ω in Pascanu, Mikolov & Bengio's (2013, "On the difficulty of
#: training recurrent neural networks") public code, their MSGD-CR default.
PASCANU_2013_OMEGA_WEIGHT = 2.0


@dataclass(frozen=True)
class Omega(Remedy):
    """Pascanu et al.'s vanishing-gradient regularizer: ``weight · Ω`` (Elman RNN, LSTM, GRU, stacks).

    Each step computes Ω on the step's batch with
    :func:`rnntheory.remedies.omega` (on the trace ``value_and_grad(keep_trace="scratch")`` keeps),
    adds ``weight · Ω`` to the recorded loss and ``weight · ∂Ω/∂W_hh`` (flow
    held fixed) to the gradient of the recurrent matrix before clipping:
    ``W_hh`` of an Elman RNN, every gate block of ``weight_hh`` of an LSTM
    (Ω of the whole state ``(h, c)``, or of the ``h``-to-``h`` path with
    ``path="h"``) or a GRU; every layer's recurrent matrix of a
    :class:`~rnntheory.StackedRNN` (Ω of the whole state ``s``, each layer's
    input held fixed); ``hold_fprime`` holds the gates fixed there. ``threshold``
    applies to ``‖∂E/∂h_{k+1}‖²`` of the batch-mean loss, as in Pascanu et al.'s
    code. Their MSGD-CR setting: ``SGD(lr=0.01)`` with ``GradientClipping(1.0)``
    and ``Omega(weight=2.0)`` (their public code's default; see the Ω guide).

    Stages: backward (keeps the forward pass), penalty; it fills the History
    column ``omega`` (``nan`` on a step whose flow is not finite). Sweep name
    ``"omega"`` (``omega`` = weight, 2.0).

    Attributes
    ----------
    weight : float
        ``≥ 0``.
    variant : {"squared", "norm"}
    threshold : float
    hold_fprime : bool
        Hold ``f′`` fixed too: Pascanu et al.'s code's gradient, the default
        here (the remedy reproduces their training). ``False`` adds the ``f″``
        term of the standard form (the exact fixed-flow gradient of
        :func:`~rnntheory.remedies.omega`), at about twice the cost of Ω.
    path : {"state", "h"}
        LSTM: Ω of the whole state (default) or of the ``h``-to-``h`` path
        (the same for the Elman RNN and the GRU, whose state is ``h``).
    """

    weight: float
    variant: str = "squared"
    threshold: float = 1e-20
    hold_fprime: bool = True
    path: str = "state"

    stage_rank: ClassVar[int] = 2
    columns: ClassVar[tuple[str, ...]] = ("omega",)
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {"omega": {"omega": PASCANU_2013_OMEGA_WEIGHT}}

    def __post_init__(self) -> None:
        check_real("weight", self.weight, low=0.0)
        check_choice("variant", self.variant, ("squared", "norm"))
        check_real("threshold", self.threshold, low=0.0)
        object.__setattr__(self, "hold_fprime", check_bool("hold_fprime", self.hold_fprime))
        check_choice("path", self.path, ("state", "h"))

    def check_model(self, model: Any) -> None:
        """Ω is implemented for the Elman RNN, the LSTM and the GRU, and for stacks of them
        (:class:`~rnntheory.StackedRNN`: Ω of the whole state ``s``, ``path="state"`` only)."""
        from ..cells._base import SequenceModel
        from ..cells.gated import GRU, LSTM
        from ..cells.stacked import StackedRNN

        if not isinstance(model, SequenceModel):
            raise TypeError(f"`model` must be an rnntheory model, got {type(model).__name__}")
        if isinstance(model, StackedRNN):
            if self.path != "state":
                raise ValueError(
                    f"`path` of Omega must be 'state' for a StackedRNN (Ω of the whole state), got {self.path!r}"
                )
            return
        # every model has params()
        if "W_hh" not in model.params() and not isinstance(model, LSTM | GRU):  # type: ignore[attr-defined]
            raise ValueError(
                "`remedies`: Omega is implemented for the Elman RNN, the LSTM and the GRU only, "
                f"got {type(model).__name__}"
            )

    def backward_options(self) -> dict[str, Any]:
        """``{"keep_trace": "scratch"}``: Ω needs the forward pass."""
        return {"keep_trace": "scratch"}

    def penalty(self, model: Any, backward: Any, batch_size: int, row: dict[str, Any]) -> tuple[float, Grads] | None:
        """``weight · Ω`` and ``weight · ∂Ω/∂W_hh``; ``None`` (and ``row["omega"] = nan``)
        when the flow is not finite (the gradient is not either: divergence)."""
        from .omega import omega  # its kernels load on first use

        row["omega"] = float("nan")
        if not all_finite(backward.flow):
            return None
        B = batch_size
        if "W_hh" in model.params():  # the Elman RNN: exactly as before
            res = omega(model, backward.trace, backward, variant=self.variant,
                        threshold=self.threshold * B * B, hold_fprime=self.hold_fprime)
            row["omega"] = res.value
            return self.weight * res.value, {"W_hh": self.weight * res.W_hh}
        flow_c = getattr(backward, "flow_c", None)
        if flow_c is not None and not all_finite(flow_c):
            return None
        res = omega(model, backward.trace, backward, variant=self.variant, threshold=self.threshold * B * B,
                    hold_fprime=self.hold_fprime, path=self.path)
        row["omega"] = res.value
        # one entry (weight_hh) for a cell, every layer's recurrent matrix for a stack
        return self.weight * res.value, {k: self.weight * v for k, v in res.grads().items()}

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        return cls(weight=values["omega"])


@dataclass(frozen=True)
class Feedback(Remedy):
    """What a generator feeds back while it trains: teacher forcing, free running
    or scheduled sampling (:class:`~rnntheory.cells.generator.GeneratorRNN`, any cell).

    ``mode="teacher"`` feeds the previous target (the gradient is that of the
    same cell reading ``[x_t, y_{t−1}]`` as constant inputs), ``"free"`` the
    model's own previous output (BPTT runs through the feedback), and
    ``"scheduled"`` (Bengio et al. 2015) the own output with probability ``p``
    and the target otherwise, per step and sequence. The coins of a run come
    from one ``numpy.random.default_rng(seed)`` made when ``train`` starts, so
    every step draws new coins and the same ``seed`` repeats the run bit for
    bit. ``train`` refuses a generator without this record, and this record
    for any other model.

    Stages: backward (``mode``, ``p`` and the coins' generator become options of
    ``value_and_grad``). The evaluation of a generator in ``train`` runs it
    freely (its own outputs fed back), whatever the mode it trains in.

    Attributes
    ----------
    mode : {"teacher", "free", "scheduled"}
    p : float or None
        Probability of feeding the own output, in ``[0, 1]``; required for
        ``"scheduled"``, ``None`` otherwise.
    seed : int
        Seed of the scheduled-sampling coins.

    Examples
    --------
    >>> Feedback("scheduled", p=0.25).backward_options()["p"]
    0.25
    """

    mode: str = "teacher"
    p: float | None = None
    seed: int = 0

    stage_rank: ClassVar[int] = 0
    feeds_back: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ("teacher", "free", "scheduled"))
        if self.mode == "scheduled":
            if self.p is None:
                raise ValueError("`p` is required for mode='scheduled' (the probability of feeding the own output)")
            object.__setattr__(self, "p", check_real("p", self.p, low=0.0, high=1.0))
        elif self.p is not None:
            raise ValueError(f"`p` applies to mode='scheduled' only, got p={self.p!r} with mode={self.mode!r}")
        object.__setattr__(self, "seed", check_seed("seed", self.seed, allow_generator=False, allow_none=False))

    def check_model(self, model: Any) -> None:
        """Feedback trains a generator (a model whose output is fed back) only."""
        from ..cells.generator import GeneratorRNN

        if not isinstance(model, GeneratorRNN):
            raise ValueError(
                "`remedies`: Feedback chooses what a GeneratorRNN feeds back; "
                f"`model` ({type(model).__name__}) feeds nothing back"
            )

    def backward_options(self) -> dict[str, Any]:
        """``mode`` (with ``p`` and a fresh coin generator for ``"scheduled"``)."""
        if self.mode != "scheduled":
            return {"mode": self.mode}
        return {"mode": self.mode, "p": self.p, "seed": np.random.default_rng(self.seed)}


@dataclass(frozen=True)
class GradientClipping(Remedy):
    """Clip the gradient: by global norm (Eq. 13) or element-wise by value.

    The global norm is over every parameter of the model (every layer and the
    readout of a :class:`~rnntheory.StackedRNN`).

    Stage: transform (:func:`~rnntheory.remedies.clip_by_norm` or
    :func:`~rnntheory.remedies.clip_by_value`); a clipped step logs a
    ``"clip"`` event. Sweep names ``"clip"`` (``clip`` = threshold, 1.0) and
    ``"clip_value"`` (``clip_value`` = threshold, 1.0).
    """

    threshold: float
    kind: str = "norm"

    stage_rank: ClassVar[int] = 3
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {"clip": {"clip": 1.0}, "clip_value": {"clip_value": 1.0}}

    def __post_init__(self) -> None:
        check_real("threshold", self.threshold, low=0.0, low_open=True)
        check_choice("kind", self.kind, ("norm", "value"))

    def transform(self, grads: Grads, row: dict[str, Any]) -> Grads:
        """The clipped gradient; a ``("clip", detail)`` event when clipping changed it."""
        if self.kind == "norm":
            out, info = C.clip_by_norm(grads, self.threshold)
            if info.clipped:
                row["events"].append(("clip", f"{info.norm:.3g} -> {self.threshold:g}"))
            return out
        out, vinfo = C.clip_by_value(grads, self.threshold)
        if vinfo.clipped:
            row["events"].append(("clip", f"{vinfo.n_clipped} entries"))
        return out

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        return cls(values[name], kind="norm" if name == "clip" else "value")


@dataclass(frozen=True)
class SpectralProjection(Remedy):
    """After each step, project the recurrent matrix onto ``σ_max ≤ c``.

    A gated cell's stacked ``weight_hh`` is projected as one matrix (so every
    gate block has ``σ_max ≤ c``); a :class:`~rnntheory.StackedRNN` has each
    layer's recurrent matrix projected.

    Stage: project (:func:`~rnntheory.remedies.project_spectral_norm`). Sweep
    name ``"projection"`` (``projection`` = c, 1.0).
    """

    c: float

    stage_rank: ClassVar[int] = 4
    hyper: ClassVar[dict[str, dict[str, float | None]]] = {"projection": {"projection": 1.0}}

    def __post_init__(self) -> None:
        check_real("c", self.c, low=0.0, low_open=True)

    def project(self, model: Any) -> Any:
        """``model`` with its recurrent matrix projected onto ``σ_max ≤ c``."""
        return P.project_spectral_norm(model, self.c)

    @classmethod
    def _build(cls, name: str, values: dict[str, float]) -> Remedy:
        return cls(values["projection"])
