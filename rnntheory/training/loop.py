r"""The training loop: a model, a task, an optimizer and a list of remedies.

``train`` draws seeded batches from a :mod:`rnntheory.tasks` task, computes the
loss and gradients (averaged over the sequences of the batch), applies the
remedies in a fixed order, takes an optimizer step, and records a
:class:`History`. The same seed gives a bitwise-identical history.

Remedies (each a small frozen record):

* :class:`TruncatedBPTT` (``k2``) is passed to the backward pass;
* :class:`Penalty` (``"l1"``, ``"l2"`` or ``"spectral"``) adds its value and
  gradient (on the recurrent matrix);
* :class:`GradientClipping` rescales the gradient (Eq. 13, global norm) or clips
  it element-wise;
* :class:`SpectralProjection` projects ``W_hh`` onto ``σ_max ≤ c`` after each step;
* :class:`Omega` adds Pascanu et al.'s regularizer Ω (Eqs. 15–16) and its
  fixed-flow gradient on ``W_hh`` (before clipping), and records Ω per step.

Divergence: a gradient whose global norm is not finite or exceeds
``divergence_threshold`` (1e10, Pascanu et al.'s code), and an update that
would make a parameter or the optimizer's state non-finite, never reach the
parameters. With ``divergence="fallback"`` (Pascanu et al.'s remedy) the step
is skipped and the recurrent matrix is shrunk, ``W ← φ·W`` with

.. math::

    φ(\mathrm{lr}) = \min\bigl(\max(1 - 0.02\,\mathrm{lr},\ 1/2),\ 1 - u\bigr),

``u`` the unit roundoff of the parameters' dtype (``2⁻⁵³`` in float64): Pascanu
et al.'s ``W − 0.02·lr·W`` whenever that shrinks by at most half
(``lr ≤ 25``), and a halving beyond. ``1 − 0.02·lr`` is the explicit Euler step
of the decay ``Ẇ = −0.02 W``; past ``lr = 50`` it flips the signs of ``W`` and
past ``lr = 100`` it *grows* it, so a large learning rate would turn the remedy
into an explosion of its own. Halving is exact in binary floating point and
contracts ``σ_max`` geometrically over repeated fallbacks without wiping out the
recurrence in one event; the cap ``1 − u`` keeps a tiny ``lr`` (where
``1 − 0.02·lr`` rounds to 1) from making the fallback a no-op. Every entry's
magnitude therefore never grows and every normal nonzero entry strictly
shrinks: the Frobenius norm of ``W`` strictly decreases (for a nonzero ``W``
with a normal entry) and the parameters stay finite for any learning rate.
With ``divergence="stop"`` the run stops and returns the last finite model.
Either way the run returns its :class:`History`, the event recorded: it never
returns NaN parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import (
    SEED_LIMIT,
    ReachError,
    all_finite,
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_seed,
)
from ..remedies import clipping as C
from ..remedies import penalties as P
from .optimizers import SGD, Optimizer, _unchecked_apply, _unchecked_update

if TYPE_CHECKING:
    from .hessian_free import HessianFree

__all__ = ["GradientClipping", "History", "Omega", "Penalty", "SpectralProjection", "TruncatedBPTT", "train"]


@dataclass(frozen=True)
class GradientClipping:
    """Clip the gradient: by global norm (Eq. 13) or element-wise by value."""

    threshold: float
    kind: str = "norm"

    def __post_init__(self) -> None:
        check_real("threshold", self.threshold, low=0.0, low_open=True)
        check_choice("kind", self.kind, ("norm", "value"))


@dataclass(frozen=True)
class TruncatedBPTT:
    """Truncated BPTT: ``k1 = 1`` backpropagates each loss ``k2`` steps (a sliding
    window); ``k1 > 1`` is Williams & Peng's BPTT(k1, k2), blocks of ``k1`` losses
    backpropagated ``k2`` steps from the block's end (``k1 = k2``: chunks, O(T)).
    See ``ElmanRNN.value_and_grad(truncate=...)``."""

    k2: int
    k1: int = 1

    def __post_init__(self) -> None:
        check_int("k2", self.k2, minimum=1)
        check_int("k1", self.k1, minimum=1)
        if self.k2 < self.k1:
            raise ValueError(f"`k2` must be >= `k1` = {self.k1}, got {self.k2}")

    @property
    def argument(self) -> int | tuple[int, int]:
        """The value passed as ``truncate=``."""
        return self.k2 if self.k1 == 1 else (self.k1, self.k2)


@dataclass(frozen=True)
class Penalty:
    """A penalty on the recurrent matrix: ``"l1"``, ``"l2"`` or ``"spectral"`` (``max(0, σ_max − c)²``)."""

    kind: str
    weight: float
    c: float = 1.0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("l1", "l2", "spectral"))
        check_real("weight", self.weight, low=0.0)
        check_real("c", self.c, low=0.0)


@dataclass(frozen=True)
class SpectralProjection:
    """After each step, project the recurrent matrix onto ``σ_max ≤ c``."""

    c: float

    def __post_init__(self) -> None:
        check_real("c", self.c, low=0.0, low_open=True)


@dataclass(frozen=True)
class Omega:
    """Pascanu et al.'s vanishing-gradient regularizer: ``weight · Ω`` (Elman RNN only).

    Each step computes Ω on the step's batch with
    :func:`rnntheory.remedies.omega` (on the trace ``value_and_grad(keep_trace="scratch")`` keeps),
    adds ``weight · Ω`` to the recorded loss and ``weight · ∂Ω/∂W_hh`` (flow
    held fixed) to the gradient of ``W_hh`` before clipping. ``threshold``
    applies to ``‖∂E/∂h_{k+1}‖²`` of the batch-mean loss, as in Pascanu et al.'s
    code. Their MSGD-CR setting: ``SGD(lr=0.01)`` with ``GradientClipping(1.0)``
    and ``Omega(weight=2.0)`` (their public code's default; see the Ω guide).

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
    """

    weight: float
    variant: str = "squared"
    threshold: float = 1e-20
    hold_fprime: bool = True

    def __post_init__(self) -> None:
        check_real("weight", self.weight, low=0.0)
        check_choice("variant", self.variant, ("squared", "norm"))
        check_real("threshold", self.threshold, low=0.0)
        object.__setattr__(self, "hold_fprime", check_bool("hold_fprime", self.hold_fprime))


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
        ``σ_max`` and spectral radius of the recurrent matrix after each step.
    eval_steps, eval_error, eval_loss : ndarray
        The task's error and mean loss on a fixed evaluation batch.
    events : list of (step, kind, detail)
        ``"clip"``, ``"fallback"``, ``"stop"``.
    model : the model after the last applied step (always finite).
    stopped : str or None
        Why the run stopped early (``None`` when it ran all its steps).
    steps : int
        Steps attempted.
    omega : ndarray
        Ω of each step's batch with the :class:`Omega` remedy (``nan`` on a
        step whose flow is not finite, which takes the divergence path);
        empty without it.
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


def _recurrent_name(model: Any) -> str:
    return "W_hh" if "W_hh" in model.params() else "weight_hh"


def _outputs(model: Any, x: np.ndarray) -> np.ndarray:
    tr = model.forward(x)
    return np.asarray(tr.y if tr.y is not None else tr.h[1:], dtype=np.float64)


def _finite(params: dict[str, np.ndarray]) -> bool:
    return all(bool(np.all(np.isfinite(p))) for p in params.values())


def _finite_state(state: Any) -> bool:
    """Every array (and float) in an optimizer state, nested dicts included, is finite."""
    if isinstance(state, dict):
        return all(_finite_state(v) for v in state.values())
    if isinstance(state, np.ndarray | float | np.floating):
        return bool(np.all(np.isfinite(state)))
    return True


_FALLBACK_RATE = 0.02  # Pascanu et al.'s fallback: W ← W − 0.02·lr·W


def _fallback_factor(lr: float, dtype: Any = np.float64) -> float:
    """``φ(lr) = min(max(1 − 0.02·lr, 1/2), 1 − u)`` (see the module docstring).

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


def _shrink(W: np.ndarray, lr: float) -> tuple[np.ndarray, float]:
    """``φ(lr)·W`` in ``W``'s dtype, and ``φ``."""
    f = _fallback_factor(lr, W.dtype)
    return (W * W.dtype.type(f)).astype(W.dtype, copy=False), f


def _train_args(
    model: Any, task: Any, steps: Any, batch_size: Any, eval_every: Any, eval_size: Any,
    divergence: Any, divergence_threshold: Any,
) -> tuple[int, int, int, int, str, float]:
    """Validate the arguments every trainer shares (``train`` and Hessian-free)."""
    from ..cells._base import SequenceModel
    from ..tasks import Task

    if not isinstance(model, SequenceModel):
        raise TypeError(
            f"`model` must be an rnntheory model (ElmanRNN, LSTM, GRU or GeneratorRNN), got {type(model).__name__}"
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


def _train_remedies(remedies: Any) -> tuple[Any, ...]:
    """``remedies`` as a tuple: a list or tuple (its entries are checked by the trainer)."""
    if not isinstance(remedies, list | tuple):
        raise TypeError(f"`remedies` must be a tuple (or list) of remedy records, got {type(remedies).__name__}")
    return tuple(remedies)


def _train_seed(seed: Any) -> int:
    """``seed`` as an int in ``[0, 2**64 − 1)``: the training batches draw from
    ``seed`` and the evaluation batch from ``seed + 1``, so both must be seeds."""
    s = check_seed("seed", seed, allow_generator=False, allow_none=False)
    assert isinstance(s, int)
    if s + 1 >= SEED_LIMIT:
        raise ValueError(
            f"`seed` must be an integer in [0, 2**64 - 1) (the evaluation batch uses seed + 1), got {s}"
        )
    return s


def train(
    model: Any,
    task: Any,
    *,
    optimizer: Optimizer | HessianFree | None = None,
    remedies: tuple[Any, ...] = (),
    steps: int = 100,
    batch_size: int = 20,
    seed: int = 0,
    eval_every: int = 50,
    eval_size: int = 200,
    divergence: str = "fallback",
    divergence_threshold: float = 1e10,
    progress: bool | None = False,
) -> History:
    """Train ``model`` on ``task``.

    Parameters
    ----------
    model : ElmanRNN, LSTM or GRU
        Its readout size must equal ``task.n_out`` and its input size ``task.n_in``.
    task : rnntheory.tasks.Task
    optimizer : Optimizer or HessianFree, optional
        ``SGD(lr=0.01)`` by default (Pascanu et al. 2013). A
        :class:`~rnntheory.training.HessianFree` record runs Hessian-free
        optimisation instead (one step = one outer iteration; no remedies; see
        :mod:`rnntheory.training.hessian_free`).
    remedies : tuple or list
        Any of :class:`TruncatedBPTT`, :class:`Penalty`, :class:`GradientClipping`,
        :class:`SpectralProjection`, :class:`Omega` (at most one of each kind
        except penalties).
    steps, batch_size : int
    seed : int
        Seeds the training batches (and, through ``seed + 1``, the evaluation batch).
    eval_every, eval_size : int
        Evaluate the task's error every ``eval_every`` steps (and at the end) on a
        fixed batch of ``eval_size`` sequences.
    divergence : {"fallback", "stop"}
        What a diverging step does (a gradient norm that is not finite or
        exceeds ``divergence_threshold``, an update that would make a
        parameter or the optimizer state non-finite, or weights grown so far
        that the model refuses its forward pass because a pre-activation could
        pass the float range, so that no gradient exists; an evaluation of such
        a model counts every output wrong): ``"fallback"`` skips the
        update and multiplies the recurrent matrix by
        ``φ(lr) = min(max(1 − 0.02·lr, 1/2), 1 − u)`` (Pascanu et al.'s
        ``W − 0.02·lr·W`` for ``lr ≤ 25``, a halving beyond, never a factor
        that grows ``W`` or flips its signs; see the module docstring), an
        event ``(step, "fallback", detail)``; ``"stop"`` ends the run with
        the last finite parameters and a ``"stop"`` event.
    divergence_threshold : float
    progress : bool or None
        Show a progress bar (``None``: only on a terminal).

    Returns
    -------
    History
        Always returned, with finite parameters in ``History.model``, for any
        learning rate.

    Raises
    ------
    TypeError, ValueError
        On bad arguments, the message naming the argument: a ``model`` that is
        not an rnntheory model, a ``task`` that is not a
        :class:`~rnntheory.tasks.Task`, sizes that do not match, ``remedies``
        that are not a tuple or list of remedy records (or repeat a kind
        other than :class:`Penalty`), a ``progress`` that is not a bool or None.
    """
    from .hessian_free import HessianFree, _train_hf

    remedies = _train_remedies(remedies)
    if progress is not None:
        progress = check_bool("progress", progress)
    if isinstance(optimizer, HessianFree):  # a trainer of its own
        return _train_hf(
            model, task, optimizer, remedies=remedies, steps=steps, batch_size=batch_size,
            seed=seed, eval_every=eval_every, eval_size=eval_size, divergence=divergence,
            divergence_threshold=divergence_threshold, progress=progress,
        )
    optimizer = optimizer if optimizer is not None else SGD(0.01)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"`optimizer` must be an rnntheory Optimizer, got {type(optimizer).__name__}")
    steps, batch_size, eval_every, eval_size, divergence, divergence_threshold = _train_args(
        model, task, steps, batch_size, eval_every, eval_size, divergence, divergence_threshold
    )
    clip = trunc = proj = om = None
    pens: list[Penalty] = []
    for r in remedies:
        if not isinstance(r, GradientClipping | TruncatedBPTT | SpectralProjection | Penalty | Omega):
            raise TypeError(f"`remedies` entries must be remedy records, got {type(r).__name__}")
        if not isinstance(r, Penalty) and sum(type(q) is type(r) for q in remedies) > 1:
            raise ValueError(f"`remedies` may hold one {type(r).__name__} (penalties may repeat), got several")
        if isinstance(r, GradientClipping):
            clip = r
        elif isinstance(r, TruncatedBPTT):
            trunc = r
        elif isinstance(r, SpectralProjection):
            proj = r
        elif isinstance(r, Penalty):
            pens.append(r)
        else:
            om = r

    rec = _recurrent_name(model)
    if om is not None and rec != "W_hh":
        raise ValueError("`remedies`: Omega is implemented for the Elman RNN only")

    from tqdm import tqdm

    seed = _train_seed(seed)
    rng = np.random.default_rng(seed)
    eval_batch = task.sample(eval_size, seed + 1)
    params = model.params()
    state = optimizer.init(params)
    cols: dict[str, list[float]] = {k: [] for k in ("loss", "gn", "gnc", "gw", "rho", "omega")}
    ev_steps: list[int] = []
    ev_err: list[float] = []
    ev_loss: list[float] = []
    events: list[tuple[int, str, str]] = []
    stopped = None

    def record(grad_norm_after: float) -> None:
        """The per-step columns that follow the update: clipped norm, σ_max, ρ."""
        W = params[rec]
        cols["gnc"].append(grad_norm_after)
        cols["gw"].append(float(np.linalg.norm(W, 2)))
        square = W.shape[0] == W.shape[1]  # gated cells stack their gate blocks
        cols["rho"].append(float(np.max(np.abs(np.linalg.eigvals(W)))) if square else float("nan"))

    def evaluate(step: int) -> None:
        try:
            out = _outputs(model, eval_batch.x)
        except ReachError:  # weights grown past the float range: every output is wrong
            out = np.full((*eval_batch.x.shape[:2], task.n_out), np.nan)
        ev_steps.append(step)
        ev_err.append(task.error(out, eval_batch))
        ev_loss.append(task.loss_value(out, eval_batch))

    done = 0
    for step in tqdm(range(1, steps + 1), desc="train", disable=(None if progress is None else not progress), leave=False):
        done = step
        batch = task.sample(batch_size, rng)
        kw: dict[str, Any] = {} if trunc is None else {"truncate": trunc.argument}
        if om is not None:
            kw["keep_trace"] = "scratch"  # Ω needs the forward pass (used before the next call)
        # overflow and NaN are expected near divergence: they are caught below
        reach: str | None = None
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                value, g = model.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask, **kw)
            except ReachError as err:
                # the weights have grown until a pre-activation could pass the float
                # range: the gradient cannot be computed, which is a divergence
                reach = str(err)
        if reach is not None:
            value, grads = float("nan"), {}
            if om is not None:
                cols["omega"].append(float("nan"))
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                B = batch.batch_size
                grads = {k: v / B for k, v in g.params().items()}
                value /= B
                for pen in pens:
                    if pen.kind == "l1":
                        pv, pg = P.l1_penalty(model, pen.weight)
                    elif pen.kind == "l2":
                        pv, pg = P.l2_penalty(model, pen.weight)
                    else:
                        pv, pg = P.spectral_penalty(model, pen.weight, c=pen.c)
                    value += pv
                    for k, v in pg.items():
                        grads[k] = grads[k] + v
                if om is not None:
                    om_value = float("nan")
                    if all_finite(g.flow):  # else the gradient is not finite: divergence path
                        from ..remedies.omega import omega as _omega

                        res = _omega(model, g.trace, g.flow, variant=om.variant,
                                     threshold=om.threshold * B * B, hold_fprime=om.hold_fprime)
                        om_value = res.value
                        value += om.weight * om_value
                        grads["W_hh"] = grads["W_hh"] + om.weight * res.W_hh
                    cols["omega"].append(om_value)
        norm = C.global_norm(grads) if reach is None else float("nan")
        cols["loss"].append(float(value))
        cols["gn"].append(norm)
        fallback = None
        if not (np.isfinite(norm) and norm <= divergence_threshold):
            if divergence == "stop":
                stopped = (f"gradient norm {norm:.3g} at step {step} (threshold {divergence_threshold:g})"
                           if reach is None else f"no gradient at step {step}: {reach}")
                events.append((step, "stop", stopped))
                record(float("nan"))
                break
            fallback = f"gradient norm {norm:.3g}" if reach is None else "pre-activations beyond the float range"
            grads_after = float("nan")
        else:
            if clip is not None:
                if clip.kind == "norm":
                    grads, info = C.clip_by_norm(grads, clip.threshold)
                    if info.clipped:
                        events.append((step, "clip", f"{info.norm:.3g} -> {clip.threshold:g}"))
                else:
                    grads, vinfo = C.clip_by_value(grads, clip.threshold)
                    if vinfo.clipped:
                        events.append((step, "clip", f"{vinfo.n_clipped} entries"))
            grads_after = C.global_norm(grads)
            with np.errstate(over="ignore", invalid="ignore"):  # a huge lr or state: checked next
                updates, new_state = _unchecked_update(optimizer, grads, state)
                new_params = _unchecked_apply(params, updates)
            if not (_finite(new_params) and _finite_state(new_state)):  # never applied
                if divergence == "stop":
                    stopped = f"non-finite update (parameters or optimizer state) at step {step}"
                    events.append((step, "stop", stopped))
                    record(grads_after)
                    break
                fallback = "non-finite update"
            else:
                params, state = new_params, new_state
        if fallback is not None:
            # Pascanu et al.'s fallback, bounded for large lr: skip the step, shrink W
            params = dict(params)
            params[rec], factor = _shrink(params[rec], getattr(optimizer, "lr", 0.01))
            events.append((step, "fallback", f"{fallback}; {rec} scaled by {factor:.17g}"))
        model = model.replace(**params)
        if proj is not None:
            model = P.project_spectral_norm(model, proj.c)
            params = model.params()
        record(grads_after)
        if step % eval_every == 0:
            evaluate(step)
    if not ev_steps or ev_steps[-1] != done:
        evaluate(done)
    arr = np.asarray
    return History(
        arr(cols["loss"]), arr(cols["gn"]), arr(cols["gnc"]), arr(cols["gw"]), arr(cols["rho"]),
        arr(ev_steps), arr(ev_err), arr(ev_loss), events, model, stopped, done,
        omega=arr(cols["omega"]),
    )
