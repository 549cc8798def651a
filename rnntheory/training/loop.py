r"""The training loop: a model, a task, an optimizer and a list of remedies.

``train`` draws seeded batches from a :mod:`rnntheory.tasks` task, computes the
loss and gradients (averaged over the sequences of the batch), applies the
remedies in a fixed order, takes an optimizer step, and records a
:class:`History`. The same seed gives a bitwise-identical history.

Remedies are the records of :mod:`rnntheory.remedies.stages` (each a small
frozen record, importable from here too); ``train`` runs their stages in a
fixed order and never dispatches on their types:

1. backward options: :class:`TruncatedBPTT` passes ``truncate=k2`` or
   ``(k1, k2)`` to the backward pass, :class:`Omega` keeps the forward pass;
2. penalties: :class:`Penalty` (``"l1"``, ``"l2"`` or ``"spectral"``, on the
   recurrent matrix) adds its value and gradient, then :class:`Omega` adds
   Pascanu et al.'s regularizer Ω (Eqs. 15–16) and its fixed-flow gradient on
   ``W_hh``, and records Ω per step;
3. gradient transforms: :class:`GradientClipping` rescales the gradient (Eq. 13,
   global norm) or clips it element-wise;
4. the divergence check and the optimizer's update;
5. projections: :class:`SpectralProjection` projects ``W_hh`` onto ``σ_max ≤ c``.

For a :class:`~rnntheory.StackedRNN`, "the recurrent matrix" is every
layer's (``W_hh_l<l>`` or ``weight_hh_l<l>``): penalties add up over the
layers, the projection and the fallback act on each, and the History's
``gamma_w``/``rho`` are the largest over the layers.

The loop itself (seeded batches, the History, divergence handling,
evaluations) is shared with Hessian-free, which plugs in a step of its own.

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

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_bool
from ..remedies import clipping as C
from ..remedies import support
from ..remedies.stages import (
    Feedback,
    GradientClipping,
    Omega,
    Penalty,
    Remedy,
    SpectralProjection,
    TruncatedBPTT,
)
from ._loop_parts import (
    HISTORY_COLUMNS,
    Gradient,
    History,
    StepMethod,
    backward_keywords,
    feeds_back,
    run_steps,
    train_args,
    train_seed,
)
from .optimizers import SGD, Optimizer, finite_tree, unchecked_apply, unchecked_update

if TYPE_CHECKING:
    from .hessian_free import HessianFree

__all__ = [
    "Feedback", "GradientClipping", "History", "Omega", "Penalty", "SpectralProjection", "TruncatedBPTT", "train",
]


def _train_remedies(remedies: Any) -> tuple[Any, ...]:
    """``remedies`` as a tuple: a list or tuple (its entries are checked by the trainer)."""
    if not isinstance(remedies, list | tuple):
        raise TypeError(f"`remedies` must be a tuple (or list) of remedy records, got {type(remedies).__name__}")
    return tuple(remedies)


def _stages(remedies: tuple[Any, ...], model: Any) -> tuple[Remedy, ...]:
    """The remedy records in the order their stages run (each checked against ``model``)."""
    for r in remedies:
        if not isinstance(r, Remedy):
            raise TypeError(f"`remedies` entries must be remedy records, got {type(r).__name__}")
        if not r.repeatable and sum(type(q) is type(r) for q in remedies) > 1:
            raise ValueError(f"`remedies` may hold one {type(r).__name__} (penalties may repeat), got several")
    for r in remedies:
        for c in r.columns:
            if c not in HISTORY_COLUMNS:
                raise ValueError(
                    f"`remedies`: {type(r).__name__} fills the column {c!r}, which History lacks "
                    f"(a remedy may fill {list(HISTORY_COLUMNS)})"
                )
    ordered = tuple(sorted(remedies, key=lambda r: r.stage_rank))
    support.require(model, "train")
    for r in ordered:
        if support.known_remedy(r):  # the cell × remedy matrix says whether the pair is supported, and why not
            support.require(model, r)
        r.check_model(model)
    if feeds_back(model) and not any(r.feeds_back for r in ordered):
        raise ValueError(
            "`remedies`: a GeneratorRNN trains with a Feedback record saying what it feeds back "
            "(Feedback('teacher'), Feedback('free') or Feedback('scheduled', p=...)), got none"
        )
    accepted = backward_keywords(model)
    for r in ordered:
        extra = sorted(set(r.backward_options()) - accepted)
        if extra:
            raise ValueError(
                f"`remedies`: {type(r).__name__} needs the backward-pass options {extra}, which "
                f"{type(model).__name__}.value_and_grad does not take"
            )
    return ordered


class _FirstOrder(StepMethod):
    """A first-order optimizer's step: remedies' stages 1–3, then the optimizer's update."""

    def __init__(self, optimizer: Optimizer, remedies: tuple[Remedy, ...], loss: str) -> None:
        self.optimizer = optimizer
        self.remedies = remedies
        self.loss = loss
        self.fallback_lr = getattr(optimizer, "lr", 0.01)
        self.options: dict[str, Any] = {}
        for r in remedies:  # stage 1: options of the backward pass
            self.options.update(r.backward_options())
        self.state: Any = None

    def start(self, params: dict[str, np.ndarray]) -> None:
        self.state = self.optimizer.init(params)

    def gradient(self, model: Any, batch: Any, row: dict[str, Any]) -> Gradient:
        # overflow and NaN are expected near divergence: the loop checks the norm
        with np.errstate(over="ignore", invalid="ignore"):
            value, g = model.value_and_grad(batch.x, batch.y, loss=self.loss, mask=batch.mask, **self.options)
            B = batch.batch_size
            grads = {k: v / B for k, v in g.params().items()}
            value /= B
            for r in self.remedies:  # stage 2: penalties
                added = r.penalty(model, g, B, row)
                if added is None:
                    continue
                pv, pg = added
                value += pv
                for k, v in pg.items():
                    grads[k] = grads[k] + v
        return Gradient(loss=value, norm=C.global_norm(grads), data=grads)

    def update(
        self, model: Any, params: dict[str, np.ndarray], grad: Gradient, step: int, row: dict[str, Any],
    ) -> tuple[dict[str, np.ndarray] | None, Any, float, tuple[str, str] | None]:
        grads = grad.data
        for r in self.remedies:  # stage 3: gradient transforms
            grads = r.transform(grads, row)
        after = C.global_norm(grads)
        with np.errstate(over="ignore", invalid="ignore"):  # a huge lr or state: checked next
            updates, new_state = unchecked_update(self.optimizer, grads, self.state)
            new_params = unchecked_apply(params, updates)
        if not (finite_tree(new_params) and finite_tree(new_state)):  # never applied
            return None, None, after, ("non-finite update", "non-finite update (parameters or optimizer state)")
        self.state = new_state
        return new_params, None, after, None


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
    model : ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN
        Its readout size must equal ``task.n_out`` and its input size ``task.n_in``.
        A :class:`~rnntheory.cells.generator.GeneratorRNN` (output fed back as
        the next input) needs a :class:`Feedback` record among ``remedies``
        (teacher forcing, free running or scheduled sampling) and is evaluated
        running freely.
        A :class:`~rnntheory.StackedRNN` trains with every first-order remedy:
        penalties and the projection act on each layer's recurrent matrix, the
        fallback shrinks every layer's by one factor, truncation windows the
        whole state.
    task : rnntheory.tasks.Task
    optimizer : Optimizer or HessianFree, optional
        ``SGD(lr=0.01)`` by default (Pascanu et al. 2013). A
        :class:`~rnntheory.training.HessianFree` record runs Hessian-free
        optimisation instead (one step = one outer iteration; no remedies; see
        :mod:`rnntheory.training.hessian_free`).
    remedies : tuple or list
        Any of :class:`TruncatedBPTT`, :class:`Penalty`, :class:`GradientClipping`,
        :class:`SpectralProjection`, :class:`Omega`, :class:`Feedback`, or another
        :class:`~rnntheory.remedies.stages.Remedy` record (at most one of each
        kind except penalties); their stages run in the order of the module
        docstring, whatever the order given.
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
        update and multiplies the recurrent matrix (every layer's, for a stack) by
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
    from ..cells._base import SequenceModel
    from .hessian_free import HessianFree, train_hf

    remedies = _train_remedies(remedies)
    if progress is not None:
        progress = check_bool("progress", progress)
    if isinstance(optimizer, HessianFree):  # a step method of its own
        if isinstance(model, SequenceModel):  # else train_args names the bad `model`
            support.require(model, "hessian_free")
        return train_hf(
            model, task, optimizer, remedies=remedies, steps=steps, batch_size=batch_size,
            seed=seed, eval_every=eval_every, eval_size=eval_size, divergence=divergence,
            divergence_threshold=divergence_threshold, progress=progress,
        )
    optimizer = optimizer if optimizer is not None else SGD(0.01)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"`optimizer` must be an rnntheory Optimizer, got {type(optimizer).__name__}")
    steps, batch_size, eval_every, eval_size, divergence, divergence_threshold = train_args(
        model, task, steps, batch_size, eval_every, eval_size, divergence, divergence_threshold
    )
    stages = _stages(remedies, model)
    seed = train_seed(seed)
    return run_steps(
        model, task, _FirstOrder(optimizer, stages, task.loss), stages, steps=steps, batch_size=batch_size,
        seed=seed, eval_every=eval_every, eval_size=eval_size, divergence=divergence,
        divergence_threshold=divergence_threshold, progress=progress,
    )
