r"""The training-loop skeleton every trainer shares (package-internal).

:func:`run_steps` owns what a run of any method has in common: the seeded
batches, the fixed evaluation batch, the progress bar, the per-step columns
of the :class:`History`, the divergence handling (stop, or Pascanu et al.'s
fallback that shrinks the recurrent matrix, every layer's for a stack) and
the evaluations. A method
(first-order optimizers in :mod:`rnntheory.training.loop`, Hessian-free in
:mod:`rnntheory.training.hessian_free`) plugs in through a :class:`StepMethod`:
how it computes the loss and gradient of a batch, and how it turns them into
new parameters. The remedies' after-update stage (``project``) runs here, for
every method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import SEED_LIMIT, ReachError, check_choice, check_int, check_real, check_seed

__all__ = [
    "HISTORY_COLUMNS",
    "Gradient",
    "History",
    "StepMethod",
    "backward_keywords",
    "fallback_factor",
    "feeds_back",
    "model_outputs",
    "recurrent_name",
    "recurrent_names",
    "run_steps",
    "shrink",
    "train_args",
    "train_seed",
]


@dataclass
class History:
    """What a run recorded.

    Attributes
    ----------
    loss : ndarray
        Training loss of each step (mean over the batch's sequences; the value
        before the step's update; penalties and ``weight · Ω`` included).
    grad_norm, grad_norm_clipped : ndarray
        Global gradient norm before and after the remedies, per step.
    gamma_w, rho : ndarray
        ``σ_max`` and spectral radius of the recurrent matrix after each step
        (:func:`rnntheory.bounds.gamma_w` and
        :func:`rnntheory.bounds.spectral_radius`; ``rho`` is ``nan`` for the
        stacked, non-square recurrent matrix of a gated cell). For a
        :class:`~rnntheory.StackedRNN`, the largest over its layers' recurrent
        matrices.
    eval_steps, eval_error, eval_loss : ndarray
        The task's error and mean loss on a fixed evaluation batch.
    events : list of (step, kind, detail)
        ``"clip"``, ``"fallback"``, ``"stop"`` (and ``"hf"`` for Hessian-free).
    model : the model after the last applied step (always finite).
    stopped : str or None
        Why the run stopped early (``None`` when it ran all its steps).
    steps : int
        Steps attempted.
    omega : ndarray
        Ω of each step's batch with the :class:`~rnntheory.training.Omega`
        remedy (``nan`` on a step whose flow is not finite, which takes the
        divergence path); empty without it.
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    grad_norm_clipped: np.ndarray
    gamma_w: np.ndarray
    rho: np.ndarray
    eval_steps: np.ndarray
    eval_error: np.ndarray
    eval_loss: np.ndarray
    events: list[tuple[int, str, str]] = field(default_factory=list)
    model: Any = None
    stopped: str | None = None
    steps: int = 0
    omega: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def count(self, kind: str) -> int:
        """How many events of ``kind`` happened."""
        return sum(1 for e in self.events if e[1] == kind)


#: The per-step History columns a remedy record may fill (``Remedy.columns``).
HISTORY_COLUMNS = ("omega",)


def recurrent_name(model: Any) -> str:
    """``"W_hh"`` (Elman) or ``"weight_hh"`` (gated cells): the matrix the fallback shrinks.

    For a :class:`~rnntheory.StackedRNN`, layer 0's (``"W_hh_l0"`` or
    ``"weight_hh_l0"``); :func:`recurrent_names` lists every layer's.
    """
    return recurrent_names(model)[0]


def recurrent_names(model: Any) -> tuple[str, ...]:
    """The keys of ``model.params()`` that hold recurrent matrices: ``("W_hh",)``
    or ``("weight_hh",)`` for one cell, one per layer for a stack
    (``"W_hh_l0", "W_hh_l1", …`` or ``"weight_hh_l0", …``), bottom layer first.

    Raises
    ------
    TypeError
        When ``model.params()`` holds no recurrent matrix.
    """
    keys = tuple(model.params())
    for base in ("W_hh", "weight_hh"):
        if base in keys:
            return (base,)
        layered = tuple(k for k in keys if k.startswith(base + "_l") and k[len(base) + 2:].isdigit())
        if layered:
            return tuple(sorted(layered, key=lambda k: int(k[len(base) + 2:])))
    raise TypeError(
        f"`model` must have a recurrent matrix (W_hh or weight_hh, per layer for a stack), "
        f"got a {type(model).__name__} with parameters {sorted(keys)}"
    )


def feeds_back(model: Any) -> bool:
    """Whether ``model`` feeds its output back as its next input (a
    :class:`~rnntheory.cells.generator.GeneratorRNN`): it then trains with a
    :class:`~rnntheory.remedies.stages.Feedback` record and is evaluated running freely."""
    from ..cells.generator import GeneratorRNN

    return isinstance(model, GeneratorRNN)


def backward_keywords(model: Any) -> set[str]:
    """The keyword options ``model.value_and_grad`` takes (a remedy's backward
    options must be among them)."""
    import inspect

    params = inspect.signature(model.value_and_grad).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def model_outputs(model: Any, x: np.ndarray, loss: str = "xent") -> np.ndarray:
    """The model's outputs on ``x`` (its readout, else its hidden states) in float64;
    a generator runs freely, feeding back its own outputs as ``loss`` defines them."""
    tr = model.forward(x, loss=loss) if feeds_back(model) else model.forward(x)
    return np.asarray(tr.y if tr.y is not None else tr.h[1:], dtype=np.float64)


_FALLBACK_RATE = 0.02  # Pascanu et al.'s fallback: W ← W − 0.02·lr·W


def fallback_factor(lr: float, dtype: Any = np.float64) -> float:
    """``φ(lr) = min(max(1 − 0.02·lr, 1/2), 1 − u)`` (see :mod:`rnntheory.training.loop`).

    ``u = 2^-p`` is the unit roundoff of ``dtype`` (``p = 53`` for float64, 24
    for float32), so ``1 − u`` is the largest number below 1 and the factor is
    exactly representable in ``dtype`` up to the rounding of ``1 − 0.02·lr``.
    A non-finite or non-positive ``lr`` gives the halving.
    """
    below_one = float(np.nextafter(np.asarray(1.0, dtype), np.asarray(0.0, dtype)))
    f = 1.0 - _FALLBACK_RATE * float(lr) if math.isfinite(lr) and lr > 0 else 0.5
    f = float(np.asarray(f, dtype))  # the factor the parameters are multiplied by
    if not f >= 0.5:
        f = 0.5
    return min(f, below_one)


def shrink(W: np.ndarray, lr: float) -> tuple[np.ndarray, float]:
    """``φ(lr)·W`` in ``W``'s dtype, and ``φ``."""
    f = fallback_factor(lr, W.dtype)
    return (W * W.dtype.type(f)).astype(W.dtype, copy=False), f


def train_args(
    model: Any, task: Any, steps: Any, batch_size: Any, eval_every: Any, eval_size: Any,
    divergence: Any, divergence_threshold: Any,
) -> tuple[int, int, int, int, str, float]:
    """Validate the arguments every trainer shares (first-order and Hessian-free)."""
    from ..cells._base import SequenceModel
    from ..tasks import Task

    if not isinstance(model, SequenceModel):
        raise TypeError(
            f"`model` must be an rnntheory model (ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN), got {type(model).__name__}"
        )
    if not isinstance(task, Task):
        raise TypeError(f"`task` must be an rnntheory.tasks.Task (e.g. make_task(...)), got {type(task).__name__}")
    if model.n_in != task.n_in or model.n_out != task.n_out:
        raise ValueError(
            f"`model` has n_in={model.n_in}, n_out={model.n_out} but `task` needs "
            f"n_in={task.n_in}, n_out={task.n_out}"
        )
    return (
        check_int("steps", steps, minimum=0),
        check_int("batch_size", batch_size, minimum=1),
        check_int("eval_every", eval_every, minimum=1),
        check_int("eval_size", eval_size, minimum=1),
        check_choice("divergence", divergence, ("fallback", "stop")),
        check_real("divergence_threshold", divergence_threshold, low=0.0, low_open=True),
    )


def train_seed(seed: Any) -> int:
    """``seed`` as an int in ``[0, 2**64 − 1)``: the training batches draw from
    ``seed`` and the evaluation batch from ``seed + 1``, so both must be seeds."""
    s = check_seed("seed", seed, allow_generator=False, allow_none=False)
    assert isinstance(s, int)
    if s + 1 >= SEED_LIMIT:
        raise ValueError(
            f"`seed` must be an integer in [0, 2**64 - 1) (the evaluation batch uses seed + 1), got {s}"
        )
    return s


@dataclass
class Gradient:
    """What a method's gradient stage computed on one batch.

    ``loss`` and ``norm`` go to the History; ``usable`` is ``False`` when the
    method cannot step from this point although the norm passed the
    divergence check (Hessian-free with a non-finite loss); ``data`` is the
    method's own (the gradients, the batch...).
    """

    loss: float
    norm: float
    data: Any
    usable: bool = True


class StepMethod:
    """How one method takes a step; :func:`run_steps` does the rest.

    Attributes
    ----------
    desc : str
        The progress bar's label.
    fallback_lr : float
        The learning rate of the divergence fallback's factor ``φ(lr)``.
    clipped_norm_is_norm : bool
        ``True`` when the method transforms no gradient, so the History's
        clipped norm is the norm (also on a step it skips).
    """

    desc = "train"
    fallback_lr = 0.01
    clipped_norm_is_norm = False

    def start(self, params: dict[str, np.ndarray]) -> None:
        """Set up the method's state for the initial parameters."""

    def gradient(self, model: Any, batch: Any, row: dict[str, Any]) -> Gradient:
        """Loss and gradient of ``batch`` at ``model`` (may raise ``ReachError``)."""
        raise NotImplementedError

    def update(
        self, model: Any, params: dict[str, np.ndarray], grad: Gradient, step: int, row: dict[str, Any],
    ) -> tuple[dict[str, np.ndarray] | None, Any, float, tuple[str, str] | None]:
        """``(new params, new model or None, clipped norm, failure)`` from a gradient that passed the check.

        ``failure`` is ``None``, or ``(fallback detail, stop reason)`` when the
        step would make the parameters or the method's state non-finite (then
        nothing is applied and the method's state is kept). A new model of
        ``None`` means ``model.replace(**new params)``.
        """
        raise NotImplementedError


def _log(events: list[tuple[int, str, str]], row: dict[str, Any]) -> None:
    """Move the ``(kind, detail)`` events a stage logged in ``row`` to the run's events."""
    events.extend((row["step"], kind, detail) for kind, detail in row["events"])
    row["events"].clear()


def run_steps(
    model: Any,
    task: Any,
    method: StepMethod,
    remedies: tuple[Any, ...],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    eval_every: int,
    eval_size: int,
    divergence: str,
    divergence_threshold: float,
    progress: bool | None,
) -> History:
    """Run ``steps`` steps of ``method`` (arguments already validated) and record a :class:`History`.

    Per step: draw the batch from the run's generator (seeded by ``seed``);
    the method's gradient; the divergence check (a ``ReachError`` from the
    model, a norm that is not finite or exceeds ``divergence_threshold``, a
    gradient the method cannot use) or the method's update (which may report
    a non-finite step); on divergence ``"stop"`` ends the run, ``"fallback"``
    skips the update and shrinks the recurrent matrix by ``φ(fallback_lr)``;
    then each remedy's ``project`` stage; then the columns ``σ_max``, ``ρ`` of
    the recurrent matrix (from :mod:`rnntheory.bounds`) and, every
    ``eval_every`` steps and at the end, the evaluation on the fixed batch
    drawn with ``seed + 1``.
    """
    from tqdm import tqdm

    from ..bounds import gamma_w, spectral_radius

    recs = recurrent_names(model)
    rng = np.random.default_rng(seed)
    eval_batch = task.sample(eval_size, seed + 1)
    params = model.params()
    method.start(params)
    extra: list[str] = []
    for r in remedies:
        extra.extend(c for c in r.columns if c not in extra)
    cols: dict[str, list[float]] = {k: [] for k in ("loss", "gn", "gnc", "gw", "rho", *extra)}
    ev_steps: list[int] = []
    ev_err: list[float] = []
    ev_loss: list[float] = []
    events: list[tuple[int, str, str]] = []
    stopped = None

    def record(grad_norm_after: float) -> None:
        """The per-step columns that follow the update: clipped norm, σ_max, ρ."""
        cols["gnc"].append(grad_norm_after)
        if len(recs) == 1:
            W = params[recs[0]]
            cols["gw"].append(gamma_w(W))
            square = W.shape[0] == W.shape[1]  # gated cells stack their gate blocks
            cols["rho"].append(spectral_radius(W) if square else float("nan"))
            return
        # a stack: the largest over its layers (ρ: nan for gated layers)
        Ws = [params[r] for r in recs]
        cols["gw"].append(max(gamma_w(W) for W in Ws))
        square = Ws[0].shape[0] == Ws[0].shape[1]
        cols["rho"].append(max(spectral_radius(W) for W in Ws) if square else float("nan"))

    def evaluate(step: int) -> None:
        try:
            out = model_outputs(model, eval_batch.x, task.loss)
        except ReachError:  # weights grown past the float range: every output is wrong
            out = np.full((*eval_batch.x.shape[:2], task.n_out), np.nan)
        ev_steps.append(step)
        ev_err.append(task.error(out, eval_batch))
        ev_loss.append(task.loss_value(out, eval_batch))

    done = 0
    for step in tqdm(range(1, steps + 1), desc=method.desc, disable=(None if progress is None else not progress),
                     leave=False):
        done = step
        batch = task.sample(batch_size, rng)
        row: dict[str, Any] = {"step": step, "events": [], **{c: float("nan") for c in extra}}
        reach: str | None = None
        try:
            grad = method.gradient(model, batch, row)
        except ReachError as err:
            # the weights have grown until a pre-activation could pass the float
            # range: the gradient cannot be computed, which is a divergence
            reach = str(err)
        _log(events, row)
        loss, norm = (grad.loss, grad.norm) if reach is None else (float("nan"), float("nan"))
        for c in extra:
            cols[c].append(row[c])
        cols["loss"].append(float(loss))
        cols["gn"].append(norm)
        fallback = None
        new_model = None
        if reach is not None or not (np.isfinite(norm) and norm <= divergence_threshold and grad.usable):
            after = norm if method.clipped_norm_is_norm else float("nan")
            if divergence == "stop":
                stopped = (f"gradient norm {norm:.3g} at step {step} (threshold {divergence_threshold:g})"
                           if reach is None else f"no gradient at step {step}: {reach}")
                events.append((step, "stop", stopped))
                record(after)
                break
            fallback = f"gradient norm {norm:.3g}" if reach is None else "pre-activations beyond the float range"
        else:
            new_params, new_model, after, failure = method.update(model, params, grad, step, row)
            _log(events, row)
            if failure is not None:
                if divergence == "stop":
                    stopped = f"{failure[1]} at step {step}"
                    events.append((step, "stop", stopped))
                    record(after)
                    break
                fallback = failure[0]
            else:
                assert new_params is not None
                params = new_params
        if fallback is not None:
            # Pascanu et al.'s fallback, bounded for large lr: skip the step, shrink W
            params = dict(params)
            for rec in recs:  # a stack: every layer's recurrent matrix, by one factor
                params[rec], factor = shrink(params[rec], method.fallback_lr)
            events.append((step, "fallback", f"{fallback}; {', '.join(recs)} scaled by {factor:.17g}"))
            new_model = None
        model = new_model if new_model is not None else model.replace(**params)
        projected = False
        for r in remedies:  # stage 5: after the update
            out = r.project(model)
            projected = projected or out is not model
            model = out
        if projected:
            params = model.params()
        record(after)
        if step % eval_every == 0:
            evaluate(step)
    if not ev_steps or ev_steps[-1] != done:
        evaluate(done)
    arr = np.asarray
    return History(
        loss=arr(cols["loss"]), grad_norm=arr(cols["gn"]), grad_norm_clipped=arr(cols["gnc"]),
        gamma_w=arr(cols["gw"]), rho=arr(cols["rho"]), eval_steps=arr(ev_steps), eval_error=arr(ev_err),
        eval_loss=arr(ev_loss), events=events, model=model, stopped=stopped, steps=done,
        **{c: arr(cols[c]) for c in extra},
    )
