"""One training run, described by a frozen record and executed by :func:`run_one`.

A :class:`RunSpec` names everything that determines a run: the task and its
length, the cell and its initialisation, the remedies with their
hyperparameters, the optimizer, the number of updates, the batch size and the
seed. It is *canonical*: remedies are stored sorted, every hyperparameter of an
active remedy is filled in with its default, and hyperparameters are sorted by
name, so two specs that describe the same run compare equal and have the same
:meth:`RunSpec.key` (the SHA-256 of the spec's canonical JSON), which is the
primary key of the results store (:mod:`rnntheory.experiments.store`).

:func:`run_one` builds the model and the task, trains with
:func:`rnntheory.training.train` and returns JSON-able metrics. The same spec
gives the same metrics, bit for bit, except the wall time ``wall_s``.

Success follows Pascanu, Mikolov & Bengio (2013, §4): a run *solves* its task
when its error on fresh sequences is below 1 % (``SOLVED_THRESHOLD``).

Remedies (names in ``RunSpec.remedies``; their hyperparameters in
``RunSpec.hparams``, defaults in brackets):

===============  ===============================================================
``"clip"``       :class:`~rnntheory.training.GradientClipping` by global norm,
                 threshold ``clip`` [1.0] (Eq. 13)
``"clip_value"`` element-wise clipping, threshold ``clip_value`` [1.0]
``"tbptt"``      :class:`~rnntheory.training.TruncatedBPTT`, ``tbptt`` = k2
                 (required), ``tbptt_k1`` [1]
``"l1"``         :class:`~rnntheory.training.Penalty` ``"l1"``, weight ``l1`` [1e-4]
``"l2"``         :class:`~rnntheory.training.Penalty` ``"l2"``, weight ``l2`` [1e-4]
``"spectral"``   :class:`~rnntheory.training.Penalty` ``"spectral"``, weight
                 ``spectral`` [1.0], ``c`` = ``spectral_c`` [1.0]
``"projection"`` :class:`~rnntheory.training.SpectralProjection`, ``c`` =
                 ``projection`` [1.0]
``"omega"``      Pascanu's regulariser Ω, ``rnntheory.training.Omega``, weight
                 ``omega`` [2.0, the value of Pascanu et al.'s code]
``"leaky"``      leaky Elman units (Eq. 14), per-unit leak rates ``1 − α`` drawn
                 from ``U[leak_low, leak_high]`` [0.02, 0.2, the article's
                 range read as leak rates] by :func:`rnntheory.init.leaky_alpha`;
                 Elman cell only
===============  ===============================================================

Other hyperparameters: ``momentum`` [0.9] (optimizers ``"momentum"`` and
``"nesterov"``), ``scale`` [1.0] (the ``"gaussian"``/``"orthogonal"`` Elman
schemes), ``forget_bias`` [0.0] (LSTM), ``eval_every`` [``max(1, steps // 50)``],
``hf_lam``, ``hf_mu``, ``hf_max_cg`` (optimizer ``"hf"``:
:class:`~rnntheory.training.HessianFree`'s ``lam``, ``mu``, ``max_cg``; its
defaults otherwise; ``lr`` is not used by ``"hf"``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_real
from ..remedies.stages import (
    GradientClipping,
    Omega,
    Penalty,
    Remedy,
    SpectralProjection,
    TruncatedBPTT,
)

__all__ = [
    "CELLS",
    "OPTIMIZERS",
    "REMEDIES",
    "SOLVED_THRESHOLD",
    "RunSpec",
    "build_model",
    "build_optimizer",
    "build_remedies",
    "run_one",
]

#: A run solves its task when its error on fresh sequences is below this (Pascanu et al. 2013).
SOLVED_THRESHOLD = 0.01
# The experimental protocol of Pascanu, Mikolov & Bengio (2013, "On the
# difficulty of training recurrent neural networks", §4), written once for the
# run specification and the experiments that reproduce it.
#: Hidden units of the protocol's tanh RNN.
PASCANU_2013_N_HIDDEN = 50
#: Learning rate of the protocol's mini-batch SGD.
PASCANU_2013_LR = 0.01
#: Mini-batch size of the protocol's SGD.
PASCANU_2013_BATCH_SIZE = 20
#: Fresh test sequences on which a run must make fewer than 1 % errors.
PASCANU_2013_TEST_SEQUENCES = 10_000
CELLS = ("rnn", "lstm", "gru")

# the sweep's names → the rows and columns of rnntheory.remedies.support's matrix
_MATRIX_ROW = {"rnn": "elman", "lstm": "lstm", "gru": "gru"}
_MATRIX_COLUMN = {
    "clip": "clip_norm", "clip_value": "clip_value", "tbptt": "tbptt_window", "l1": "l1", "l2": "l2",
    "spectral": "spectral_penalty", "projection": "spectral_projection", "omega": "omega", "leaky": "leaky_units",
}


def _require(cell: str, column: str, what: str) -> None:
    """Refuse a sweep cell × remedy pair the remedy matrix marks unsupported, with its reason."""
    from ..remedies import support

    e = support.entry(_MATRIX_ROW[cell], column)
    if not e.supported:
        raise ValueError(f"{what} is not supported for cell={cell!r}: {e.reason}")


OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "hf")
_INIT_NAMES_AS_REMEDY = ("orthogonal", "identity", "henaff")
_ELMAN_ACTIVATIONS = ("tanh", "sigmoid", "identity", "relu")
_MAX_CURVE = 200

# The one table of the remedy vocabulary: sweep name -> the record class that
# builds it (its hyperparameters and their defaults are the class's own:
# ``Record.hyper[name]``, ``Record.from_hyper(name, hparams)``); ``None`` marks
# a model option (``"leaky"``, see ``build_model``), whose hyperparameters are here.
_REMEDY_RECORDS: dict[str, type[Remedy] | None] = {
    "clip": GradientClipping,
    "clip_value": GradientClipping,
    "tbptt": TruncatedBPTT,
    "l1": Penalty,
    "l2": Penalty,
    "spectral": Penalty,
    "projection": SpectralProjection,
    "omega": Omega,
    "leaky": None,
}
_MODEL_OPTION_HPARAMS: dict[str, dict[str, float | None]] = {"leaky": {"leak_low": 0.02, "leak_high": 0.2}}
REMEDIES = tuple(_REMEDY_RECORDS)
# remedy -> {hyperparameter: default (None = required)}
_REMEDY_HPARAMS: dict[str, dict[str, float | None]] = {
    name: (_MODEL_OPTION_HPARAMS[name] if record is None else record.hyper_defaults(name))
    for name, record in _REMEDY_RECORDS.items()
}
# hyperparameters that are not tied to a remedy (filled in only when given)
_FREE_HPARAMS = ("momentum", "scale", "forget_bias", "eval_every", "hf_lam", "hf_mu", "hf_max_cg")
_HF_HPARAMS = {"hf_lam": "lam", "hf_mu": "mu", "hf_max_cg": "max_cg"}
# hyperparameter -> the remedy that owns it (package-internal: the sweep reads it too)
HPARAM_OWNER = {h: r for r, hs in _REMEDY_HPARAMS.items() for h in hs}
_INT_HPARAMS = ("tbptt", "tbptt_k1", "eval_every", "hf_max_cg")


def _elman_schemes() -> tuple[str, ...]:
    from ..cells import elman

    return tuple(elman.SCHEMES)


def _gated_schemes() -> tuple[str, ...]:
    from ..cells import gated

    return tuple(gated.INIT_SCHEMES)


def _tasks() -> dict[str, Any]:
    from ..tasks import TASKS

    return TASKS


def _as_tuple_of_str(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = tuple(v for v in value.split("+") if v and v != "none") if value else ()
    if not isinstance(value, tuple | list):
        raise TypeError(f"`{name}` must be a tuple of names, got {value!r}")
    out = []
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"`{name}` entries must be strings, got {v!r}")
        out.append(v)
    return tuple(out)


def _norm_hparams(value: Any) -> dict[str, float]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple | list):
        items = []
        for pair in value:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(
                    f"`hparams` must be (name, value) pairs or a mapping, got entry {pair!r}"
                )
            items.append((pair[0], pair[1]))
    else:
        raise TypeError(f"`hparams` must be (name, value) pairs or a mapping, got {value!r}")
    out: dict[str, float] = {}
    for k, v in items:
        if not isinstance(k, str):
            raise TypeError(f"`hparams` names must be strings, got {k!r}")
        if k in out:
            raise ValueError(f"`hparams` gives {k!r} twice")
        if k not in HPARAM_OWNER and k not in _FREE_HPARAMS:
            known = tuple(sorted((*HPARAM_OWNER, *_FREE_HPARAMS)))
            raise ValueError(f"`hparams` name must be one of {known}, got {k!r}")
        out[k] = check_real(f"hparams[{k!r}]", v)
        if k in _INT_HPARAMS and out[k] != int(out[k]):
            raise ValueError(f"`hparams[{k!r}]` must be a whole number, got {v!r}")
    return out


@dataclass(frozen=True)
class RunSpec:
    r"""Everything that determines one training run (a frozen, canonical, hashable record).

    Parameters
    ----------
    task : str
        A key of :data:`rnntheory.tasks.TASKS`, e.g. ``"temporal_order"``,
        ``"addition"``, ``"copy"``, ``"adding"``.
    length : int
        The task's nominal sequence length (at least the task's ``min_length``).
    cell : {"rnn", "lstm", "gru"}
    n_hidden : int
    init : str
        The initialisation scheme: one of :data:`rnntheory.cells.elman.SCHEMES`
        for ``cell="rnn"``; ``"pytorch"`` or ``"orthogonal"`` for gated cells,
        where the default ``"smart_tanh"`` is replaced by ``"pytorch"``.
    activation : str
        Hidden nonlinearity of the Elman cell (``"tanh"``, ``"sigmoid"``,
        ``"identity"``, ``"relu"``); must be ``"tanh"`` for gated cells.
    remedies : tuple of str
        Remedy names (see the module docstring), stored sorted. A string
        ``"clip+omega"`` is accepted for ``("clip", "omega")``.
    optimizer : {"sgd", "momentum", "nesterov", "rmsprop", "adam", "hf"}
    lr : float
        Learning rate (> 0).
    steps : int
        Number of parameter updates (≥ 1).
    batch_size : int
    seed : int
        Seeds the model's initialisation, the training batches and the test
        batch (three independent streams derived from it).
    hparams : tuple of (str, float)
        Remedy and optimizer hyperparameters, stored sorted by name with the
        defaults of active remedies filled in; a mapping is accepted.
    eval_size : int
        Sequences in the evaluation batch and in the fresh test batch.

    Raises
    ------
    ValueError, TypeError
        On an unknown task, cell, scheme, activation, remedy, optimizer or
        hyperparameter, on a value out of range, on a hyperparameter of a
        remedy that is not active, or on a remedy that the cell does not support.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec
    >>> a = RunSpec("temporal_order", 50, remedies=("omega", "clip"))
    >>> a.remedies, a.hparams
    (('clip', 'omega'), (('clip', 1.0), ('omega', 2.0)))
    >>> a == RunSpec("temporal_order", 50, remedies="clip+omega", hparams={"clip": 1})
    True
    >>> len(a.key()), a.key() == RunSpec("temporal_order", 50, seed=1).key()
    (64, False)

    Pascanu, Mikolov & Bengio 2013, §4 (the experimental protocol).
    """

    task: str
    length: int
    cell: str = "rnn"
    n_hidden: int = PASCANU_2013_N_HIDDEN
    init: str = "smart_tanh"
    activation: str = "tanh"
    remedies: tuple[str, ...] = ()
    optimizer: str = "sgd"
    lr: float = PASCANU_2013_LR
    steps: int = 1000
    batch_size: int = PASCANU_2013_BATCH_SIZE
    seed: int = 0
    hparams: tuple[tuple[str, float], ...] = ()
    eval_size: int = 1000

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        tasks = _tasks()
        check_choice("task", self.task, tuple(tasks))
        put("length", check_int("length", self.length, minimum=tasks[self.task].min_length))
        check_choice("cell", self.cell, CELLS)
        put("n_hidden", check_int("n_hidden", self.n_hidden, minimum=1))
        if not isinstance(self.init, str):
            raise TypeError(f"`init` must be a string, got {self.init!r}")
        if self.cell == "rnn":
            check_choice("init", self.init, _elman_schemes())
            check_choice("activation", self.activation, _ELMAN_ACTIVATIONS)
        else:
            if self.init == "smart_tanh":
                put("init", "pytorch")
            check_choice("init", self.init, _gated_schemes())
            if self.activation != "tanh":
                raise ValueError(
                    f"`activation` must be 'tanh' for cell={self.cell!r} (gated cells have "
                    f"fixed nonlinearities), got {self.activation!r}"
                )
        rem = _as_tuple_of_str("remedies", self.remedies)
        for r in rem:
            if r in _INIT_NAMES_AS_REMEDY:
                raise ValueError(
                    f"`remedies`: {r!r} is an initialisation; pass it as init={r!r}"
                )
            check_choice("remedies entry", r, REMEDIES)
        if len(set(rem)) != len(rem):
            raise ValueError(f"`remedies` lists a remedy twice: {rem!r}")
        if "clip" in rem and "clip_value" in rem:
            raise ValueError("`remedies`: 'clip' and 'clip_value' cannot be combined")
        for r in rem:  # the cell × remedy matrix decides, as for train
            _require(self.cell, _MATRIX_COLUMN[r], f"`remedies`: {r!r}")
        rem = tuple(sorted(rem))
        put("remedies", rem)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        put("lr", check_real("lr", self.lr, low=0.0, low_open=True))
        put("steps", check_int("steps", self.steps, minimum=1))
        put("batch_size", check_int("batch_size", self.batch_size, minimum=1))
        put("seed", check_int("seed", self.seed, minimum=0))
        put("eval_size", check_int("eval_size", self.eval_size, minimum=1))
        hp = _norm_hparams(self.hparams)
        for k in hp:
            owner = HPARAM_OWNER.get(k)
            if owner is not None and owner not in rem:
                raise ValueError(
                    f"`hparams`: {k!r} belongs to the remedy {owner!r}, which is not in "
                    f"`remedies` {rem!r}"
                )
        if "momentum" in hp and self.optimizer not in ("momentum", "nesterov"):
            raise ValueError(
                f"`hparams`: 'momentum' applies to optimizer 'momentum' or 'nesterov', "
                f"got optimizer={self.optimizer!r}"
            )
        bad_hf = [k for k in hp if k in _HF_HPARAMS and self.optimizer != "hf"]
        if bad_hf:
            raise ValueError(f"`hparams`: {bad_hf[0]!r} applies to optimizer 'hf', got {self.optimizer!r}")
        if self.optimizer == "hf":
            _require(self.cell, "hessian_free", "`optimizer` 'hf'")
        if "forget_bias" in hp and self.cell != "lstm":
            raise ValueError(f"`hparams`: 'forget_bias' applies to the LSTM, got cell={self.cell!r}")
        for r in rem:
            for k, default in _REMEDY_HPARAMS[r].items():
                if k not in hp:
                    if default is None:
                        raise ValueError(f"`hparams` must give {k!r} for the remedy {r!r}")
                    hp[k] = float(default)
        if self.optimizer in ("momentum", "nesterov"):
            hp.setdefault("momentum", 0.9)
        _check_hparam_ranges(hp)
        put("hparams", tuple(sorted(hp.items())))

    # ----------------------------------------------------------------- views
    def hp(self, name: str, default: float | None = None) -> float | None:
        """The hyperparameter ``name`` (``default`` when absent)."""
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a hyperparameter name (str), got {name!r}")
        return dict(self.hparams).get(name, default)

    def as_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (``remedies`` a list, ``hparams`` a dict)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["remedies"] = list(self.remedies)
        out["hparams"] = dict(self.hparams)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuild a spec from :meth:`as_dict` (or any mapping of its fields).

        Raises
        ------
        ValueError
            On a key that is not a field of :class:`RunSpec`.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"`data` must be a mapping of RunSpec fields, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        extra = sorted(str(k) for k in set(data) - names)
        if extra:
            raise ValueError(f"`data` has keys that are not RunSpec fields: {extra}")
        missing = [n for n in ("task", "length") if n not in data]
        if missing:
            raise ValueError(f"`data` lacks the RunSpec fields {missing}")
        kw = dict(data)
        if "remedies" in kw and isinstance(kw["remedies"], list):
            kw["remedies"] = tuple(kw["remedies"])
        if "hparams" in kw and isinstance(kw["hparams"], Mapping):
            kw["hparams"] = tuple(kw["hparams"].items())
        return cls(**kw)

    def canonical_json(self) -> str:
        """The canonical JSON text of the spec (sorted keys, no spaces)."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """The SHA-256 hex digest of :meth:`canonical_json`: the store's primary key."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @property
    def eval_every(self) -> int:
        """Steps between evaluations (hparam ``eval_every``, default ``max(1, steps // 50)``)."""
        v = self.hp("eval_every")
        return max(1, self.steps // 50) if v is None else int(v)

    def label(self) -> str:
        """A short human-readable name of the method (cell, init, optimizer, remedies)."""
        rem = "+".join(self.remedies) if self.remedies else "none"
        return f"{self.cell}/{self.init}/{self.optimizer}/{rem}"


def _check_hparam_ranges(hp: dict[str, float]) -> None:
    positive = ("clip", "clip_value", "projection", "tbptt", "tbptt_k1", "eval_every")
    for k in positive:
        if k in hp and not hp[k] > 0:
            raise ValueError(f"`hparams[{k!r}]` must be > 0, got {hp[k]}")
    for k in ("l1", "l2", "spectral", "spectral_c", "omega", "scale"):
        if k in hp and hp[k] < 0:
            raise ValueError(f"`hparams[{k!r}]` must be >= 0, got {hp[k]}")
    if "tbptt" in hp and hp["tbptt"] < hp.get("tbptt_k1", 1.0):
        raise ValueError(f"`hparams['tbptt']` must be >= tbptt_k1 = {hp.get('tbptt_k1', 1.0)}, got {hp['tbptt']}")
    if "momentum" in hp and not 0.0 <= hp["momentum"] < 1.0:
        raise ValueError(f"`hparams['momentum']` must lie in [0, 1), got {hp['momentum']}")
    if "leak_low" in hp:
        lo, hi = hp["leak_low"], hp["leak_high"]
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(
                f"`hparams` leak_low, leak_high must satisfy 0 <= low <= high <= 1, got {lo}, {hi}"
            )


# --------------------------------------------------------------------------- running


def _streams(seed: int) -> tuple[int, int]:
    """Independent integer seeds for the model's initialisation and the test batch."""
    ss = np.random.SeedSequence([seed, 2013])
    a, b = ss.generate_state(2, dtype=np.uint32)
    return int(a), int(b)


def _leaky_alpha(spec: RunSpec, n: int, seed: int) -> np.ndarray:
    from ..init import leaky_alpha

    lo = float(spec.hp("leak_low", 0.02) or 0.0)
    hi = float(spec.hp("leak_high", 0.2) or 0.0)
    return leaky_alpha(n, lo, hi, kind="leak", seed=seed)


def _check_spec(spec: Any) -> RunSpec:
    if not isinstance(spec, RunSpec):
        raise TypeError(f"`spec` must be a RunSpec, got {type(spec).__name__}")
    return spec


def build_model(spec: RunSpec, n_in: int, n_out: int) -> Any:
    """The initial model of ``spec`` for a task with ``n_in`` inputs and ``n_out`` outputs.

    Parameters
    ----------
    spec : RunSpec
    n_in, n_out : int

    Returns
    -------
    ElmanRNN, LSTM or GRU

    Examples
    --------
    >>> from rnntheory.experiments.runspec import RunSpec, build_model
    >>> build_model(RunSpec("adding", 10, n_hidden=4), 2, 1).W_hh.shape
    (4, 4)
    """
    _check_spec(spec)
    model_seed, _ = _streams(spec.seed)
    if spec.cell == "rnn":
        from ..cells import ElmanRNN

        alpha = _leaky_alpha(spec, spec.n_hidden, model_seed) if "leaky" in spec.remedies else None
        return ElmanRNN.init(
            n_in, spec.n_hidden, n_out, activation=spec.activation, scheme=spec.init,
            seed=model_seed, scale=float(spec.hp("scale", 1.0) or 0.0), alpha=alpha,
        )
    from ..cells import GRU, LSTM

    if spec.cell == "lstm":
        return LSTM.init(n_in, spec.n_hidden, n_out, scheme=spec.init, seed=model_seed,
                         forget_bias=float(spec.hp("forget_bias", 0.0) or 0.0))
    return GRU.init(n_in, spec.n_hidden, n_out, scheme=spec.init, seed=model_seed)


def _need(name: str, what: str) -> Any:
    from .. import training

    obj = getattr(training, name, None)
    if obj is None:
        raise ValueError(
            f"{what} needs rnntheory.training.{name}, which this version of rnntheory lacks"
        )
    return obj


def build_remedies(spec: RunSpec) -> tuple[Any, ...]:
    """The remedy records (:mod:`rnntheory.remedies.stages`) for ``spec.remedies``.

    Each is built by its record class from the spec's hyperparameters
    (:meth:`~rnntheory.remedies.stages.Remedy.from_hyper`), in the order of
    ``spec.remedies``. ``"leaky"`` is a model option (see :func:`build_model`),
    not a record.

    Examples
    --------
    >>> from rnntheory.experiments.runspec import RunSpec, build_remedies
    >>> build_remedies(RunSpec("adding", 10, remedies=("clip",), hparams={"clip": 2.0}))
    (GradientClipping(threshold=2.0, kind='norm'),)
    """
    _check_spec(spec)
    hyper = dict(spec.hparams)
    out: list[Any] = []
    for r in spec.remedies:
        record = _REMEDY_RECORDS[r]
        if record is not None:
            out.append(record.from_hyper(r, hyper))
    return tuple(out)


def build_optimizer(spec: RunSpec) -> Any:
    """The :mod:`rnntheory.training` optimizer of ``spec`` (a :class:`HessianFree` record for ``"hf"``).

    Examples
    --------
    >>> from rnntheory.experiments.runspec import RunSpec, build_optimizer
    >>> build_optimizer(RunSpec("adding", 10, optimizer="nesterov", lr=0.1))
    SGD(lr=0.1, momentum=0.9, nesterov=True)
    """
    _check_spec(spec)
    from ..training import SGD, Adam, RMSProp

    if spec.optimizer == "sgd":
        return SGD(spec.lr)
    if spec.optimizer in ("momentum", "nesterov"):
        return SGD(spec.lr, momentum=float(spec.hp("momentum", 0.9) or 0.0),
                   nesterov=spec.optimizer == "nesterov")
    if spec.optimizer == "rmsprop":
        return RMSProp(spec.lr)
    if spec.optimizer == "adam":
        return Adam(spec.lr)
    hf = _need("HessianFree", "optimizer 'hf'")
    kw: dict[str, Any] = {}
    for name, arg in _HF_HPARAMS.items():
        v = spec.hp(name)
        if v is not None:
            kw[arg] = int(v) if name == "hf_max_cg" else float(v)
    return hf(**kw)


def _subsample(n: int, limit: int = _MAX_CURVE) -> np.ndarray:
    """At most ``limit`` increasing indices into ``range(n)``, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


_MAX_FLOW = 101


def flow_metric(model: Any, trace: Any) -> dict[str, Any] | None:
    r"""The gradient flow of sequence 0 of a test ``trace``: ``ln ‖∂h_t/∂h_0‖₂``, t = 0..T.

    Returns ``{"t": [...], "log_norm": [...], "bound_slope": float | None}``
    with at most 101 increasing ``t`` (first and last included) and the
    profile of :func:`rnntheory.jacobians.log_norm_profile` there (for the
    LSTM the state is ``(h, c)``); ``bound_slope`` is Eq. 12's
    ``ln(γ_W γ_h)`` (leaky units: ``ln(max α + max(1 − α) γ_W γ_h)``) for the
    Elman cell and ``None`` for gated cells. Non-finite values are ``None``;
    any failure gives ``None`` (a diagnostic never fails a run). O(T n³).
    Package-internal: the ``verify`` row on this metric calls it too.
    """
    try:
        from .. import bounds, jacobians
        from ..cells import ElmanRNN

        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            seq = trace.sequence(0) if trace.batched else trace
            prof = np.asarray(jacobians.log_norm_profile(model, seq, k=0), dtype=np.float64)
            slope: float | None = None
            if isinstance(model, ElmanRNN):
                if model.alpha is None:
                    rate = bounds.log_bound(model.W_hh, model.activation, 1)
                else:
                    rate = bounds.leaky_log_bound(model.W_hh, model.activation, model.alpha, 1)
                slope = _finite_or_none(float(rate))
        idx = _subsample(prof.size, _MAX_FLOW)
        return {
            "t": [int(i) for i in idx],
            "log_norm": [_finite_or_none(float(prof[i])) for i in idx],
            "bound_slope": slope,
        }
    except Exception:  # a diagnostic: never let it fail the run
        return None


def run_one(spec: RunSpec) -> dict[str, Any]:
    r"""Train the run ``spec`` describes and return its metrics (a JSON-able dict).

    The model is drawn from ``spec.init`` (seeded from ``spec.seed``), trained
    with :func:`rnntheory.training.train` for ``spec.steps`` updates (Pascanu
    et al.'s divergence fallback on), evaluated every ``eval_every`` steps on a
    fixed batch of ``eval_size`` sequences, and finally tested on
    ``eval_size`` *fresh* sequences drawn from a stream that training never
    sees.

    Parameters
    ----------
    spec : RunSpec

    Returns
    -------
    dict
        ``final_error`` (the task's error on the fresh test batch; the
        fraction of wrong sequences, or the NRMSE for time series),
        ``final_loss`` (mean loss there), ``best_error`` (smallest evaluation
        error during training), ``solved`` (``final_error < 0.01``),
        ``steps_to_solve`` (first evaluation step whose error is below 0.01, or
        ``None``), ``grad_norm_median`` and ``grad_norm_max`` (over the finite
        per-step global gradient norms before remedies; ``None`` if none is
        finite), ``n_nonfinite_grads``, ``n_clips``, ``n_fallbacks``,
        ``stopped`` (why the run stopped early, or ``None``), ``steps_done``,
        ``gamma_w`` and ``rho`` (``σ_max`` and spectral radius of the final
        recurrent matrix; ``rho`` ``None`` for gated cells), ``flow``
        (sequence 0 of the test batch: ``t``, at most 101 steps from 0 to
        ``T``, ``log_norm``, ``ln ‖∂h_t/∂h_0‖₂`` of the final model there —
        the ``(h, c)`` state for the LSTM — and ``bound_slope``, Eq. 12's
        ``ln(γ_W γ_h)`` for the Elman cell (its Eq. 14 form for leaky units),
        ``None`` for gated cells; ``flow`` is ``None`` if it cannot be
        computed), ``wall_s``, and
        ``curve``: ``eval_steps``, ``eval_error``, ``loss_steps``, ``loss``,
        ``grad_norm`` (each at most 200 points; non-finite values as ``None``).

    Raises
    ------
    TypeError
        If ``spec`` is not a :class:`RunSpec`.

    Examples
    --------
    >>> from rnntheory.experiments import RunSpec, run_one
    >>> spec = RunSpec("adding", 6, n_hidden=4, steps=5, batch_size=4, eval_size=8)
    >>> m = run_one(spec)
    >>> m["steps_done"], len(m["curve"]["loss"])
    (5, 5)
    >>> {k: v for k, v in m.items() if k != "wall_s"} == {
    ...     k: v for k, v in run_one(spec).items() if k != "wall_s"}
    True
    """
    if not isinstance(spec, RunSpec):
        raise TypeError(f"`spec` must be a RunSpec, got {type(spec).__name__}")
    from .. import bounds
    from ..tasks import make_task
    from ..training import train

    t0 = time.perf_counter()
    task = make_task(spec.task, spec.length)
    model = build_model(spec, task.n_in, task.n_out)
    hist = train(
        model, task, optimizer=build_optimizer(spec), remedies=build_remedies(spec),
        steps=spec.steps, batch_size=spec.batch_size, seed=spec.seed,
        eval_every=spec.eval_every, eval_size=spec.eval_size, divergence="fallback",
        progress=False,
    )
    final = hist.model
    _, test_seed = _streams(spec.seed)
    test = task.sample(spec.eval_size, test_seed)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        tr = final.forward(test.x)
        out = np.asarray(tr.y if tr.y is not None else tr.h[1:], dtype=np.float64)
        final_error = float(task.error(out, test))
        final_loss = float(task.loss_value(out, test))
    ev_steps = [int(s) for s in np.asarray(hist.eval_steps)]
    ev_err = [float(e) for e in np.asarray(hist.eval_error)]
    solve = [s for s, e in zip(ev_steps, ev_err, strict=True) if e < SOLVED_THRESHOLD]
    gn = np.asarray(hist.grad_norm, dtype=np.float64)
    fin = gn[np.isfinite(gn)]
    loss = np.asarray(hist.loss, dtype=np.float64)
    idx = _subsample(loss.size)
    eidx = _subsample(len(ev_steps))
    W = final.params()["W_hh" if "W_hh" in final.params() else "weight_hh"]
    square = W.shape[0] == W.shape[1]
    return {
        "final_error": _finite_or_none(final_error),
        "final_loss": _finite_or_none(final_loss),
        "best_error": _finite_or_none(min(ev_err)) if ev_err else None,
        "solved": bool(final_error < SOLVED_THRESHOLD),
        "solved_threshold": SOLVED_THRESHOLD,
        "steps_to_solve": solve[0] if solve else None,
        "grad_norm_median": float(np.median(fin)) if fin.size else None,
        "grad_norm_max": float(np.max(fin)) if fin.size else None,
        "n_nonfinite_grads": int(gn.size - fin.size),
        "n_clips": int(hist.count("clip")),
        "n_fallbacks": int(hist.count("fallback")),
        "stopped": hist.stopped,
        "steps_done": int(hist.steps),
        "gamma_w": _finite_or_none(bounds.gamma_w(W)),
        "rho": _finite_or_none(bounds.spectral_radius(W)) if square else None,
        "flow": flow_metric(final, tr),
        "wall_s": time.perf_counter() - t0,
        "curve": {
            "eval_steps": [ev_steps[i] for i in eidx],
            "eval_error": [_finite_or_none(ev_err[i]) for i in eidx],
            "loss_steps": [int(i) + 1 for i in idx],
            "loss": [_finite_or_none(float(loss[i])) for i in idx],
            "grad_norm": [_finite_or_none(float(gn[i])) for i in idx],
        },
    }
