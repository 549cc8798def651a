r"""Which cell supports which remedy: the cell × remedy matrix, in one registry.

Rows are cells (:data:`CELLS`): the Elman RNN in the standard form, in
Pascanu's form and with leaky units, the LSTM, the GRU, and stacked models of
each. Columns are remedies (:data:`REMEDIES`): plain training by
:func:`rnntheory.training.train`, gradient clipping (by norm and by value),
the three truncated-BPTT schedules of ``value_and_grad(truncate=...)`` (the
sliding window ``k2``, chunks ``k1 = k2``, Williams & Peng's ``BPTT(k1, k2)``),
the L1, L2 and spectral penalties, the spectral projection, the three
generator modes (teacher forcing, free running, scheduled sampling),
Hessian-free optimisation with structural damping, Pascanu et al.'s Ω,
orthogonal initialisation (per gate block for gated cells), echo state
networks and leaky units.

Each pair has an :class:`Entry`: supported or not, the reason when not (the
sentence the error shows), the tests that check the pair's guarantee (pytest
node ids), and the measured cost of one training step relative to a plain
step of the same cell (read from ``benchmarks/results/remedy_matrix.json``,
written by ``benchmarks/bench_remedy_matrix.py``). The registry records what
the code does today; :func:`require` is the check a trainer runs before a step.

Flipping a pair is a one-line change of ``_TABLE`` below: replace
``_no(REASON)`` by ``_yes("tests/test_x.py::test_name", ...)``. The tests
(``tests/test_support.py``) then train the pair for two steps and check that
every named test exists, and the generated page
(``docs/guides/remedy-matrix.md``) must be regenerated::

    python -m rnntheory.remedies.support

Examples
--------
>>> from rnntheory.remedies import support
>>> support.entry("stacked-lstm", "esn").supported
False
>>> support.entry("elman", "clip_norm").supported
True
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._tables import markdown_table
from .._validation import check_choice

__all__ = [
    "CELLS",
    "CELL_TITLES",
    "REMEDIES",
    "REMEDY_TITLES",
    "ROUTES",
    "Entry",
    "cell_of",
    "costs_path",
    "entry",
    "known_remedy",
    "main",
    "matrix",
    "model_for",
    "page_path",
    "records_for",
    "remedy_of",
    "render_markdown",
    "require",
]

#: The rows of the matrix, in order.
CELLS: tuple[str, ...] = (
    "elman", "elman-pascanu", "elman-leaky", "lstm", "gru", "stacked-elman", "stacked-lstm", "stacked-gru",
)

#: How the page names each row.
CELL_TITLES: dict[str, str] = {
    "elman": "Elman (standard)",
    "elman-pascanu": "Elman (Pascanu's form)",
    "elman-leaky": "Elman (leaky, Eq. 14)",
    "lstm": "LSTM",
    "gru": "GRU",
    "stacked-elman": "stacked Elman",
    "stacked-lstm": "stacked LSTM",
    "stacked-gru": "stacked GRU",
}

#: The columns of the matrix, in order.
REMEDIES: tuple[str, ...] = (
    "train", "clip_norm", "clip_value", "tbptt_window", "tbptt_chunked", "tbptt_k1_k2",
    "l1", "l2", "spectral_penalty", "spectral_projection",
    "teacher_forcing", "free_running", "scheduled_sampling",
    "hessian_free", "omega", "orthogonal_init", "esn", "leaky_units",
)

#: How the page names each column.
REMEDY_TITLES: dict[str, str] = {
    "train": "plain training by `train`",
    "clip_norm": "gradient clipping by norm (Eq. 13), `GradientClipping(threshold)`",
    "clip_value": "gradient clipping by value, `GradientClipping(threshold, kind=\"value\")`",
    "tbptt_window": "truncated BPTT, sliding window `k2`: `TruncatedBPTT(k2)`",
    "tbptt_chunked": "truncated BPTT, chunks `k1 = k2`: `TruncatedBPTT(k2, k1=k2)`",
    "tbptt_k1_k2": "truncated BPTT, Williams & Peng's `BPTT(k1, k2)`: `TruncatedBPTT(k2, k1)`",
    "l1": "L1 penalty, `Penalty(\"l1\", weight)`",
    "l2": "L2 penalty, `Penalty(\"l2\", weight)`",
    "spectral_penalty": "spectral penalty, `Penalty(\"spectral\", weight, c)`",
    "spectral_projection": "spectral projection, `SpectralProjection(c)`",
    "teacher_forcing": "teacher forcing, a `GeneratorRNN` with `Feedback(\"teacher\")`",
    "free_running": "free running, a `GeneratorRNN` with `Feedback(\"free\")`",
    "scheduled_sampling": "scheduled sampling, a `GeneratorRNN` with `Feedback(\"scheduled\", p)`",
    "hessian_free": "Hessian-free with structural damping, `optimizer=HessianFree(...)`",
    "omega": "Pascanu et al.'s Ω, `Omega(weight)`",
    "orthogonal_init": "orthogonal initialisation, `init(..., scheme=\"orthogonal\")`",
    "esn": "echo state network, `rnntheory.esn`",
    "leaky_units": "leaky units, `alpha=` (Eq. 14)",
}

#: How each remedy is trained today: ``"train"`` (:func:`rnntheory.training.train`
#: with the records of :func:`records_for` on :func:`model_for`'s model),
#: ``"hessian_free"`` (``train(..., optimizer=HessianFree(...))``),
#: ``"generator"`` (``train`` of a :class:`~rnntheory.cells.generator.GeneratorRNN`
#: with the :class:`~rnntheory.remedies.Feedback` record of :func:`records_for`) and
#: ``"esn"`` (:func:`rnntheory.esn.fit`, one ridge regression).
ROUTES: dict[str, str] = {
    **{r: "train" for r in REMEDIES},
    "teacher_forcing": "generator", "free_running": "generator", "scheduled_sampling": "generator",
    "hessian_free": "hessian_free", "esn": "esn",
}


@dataclass(frozen=True)
class Entry:
    """One (cell, remedy) pair of the matrix.

    Attributes
    ----------
    cell, remedy : str
        Keys of :data:`CELLS` and :data:`REMEDIES`.
    supported : bool
    reason : str or None
        Why not (``None`` when supported): the sentence the error shows.
    tests : tuple of str
        pytest node ids (``tests/test_x.py::test_name``) of the tests that check
        the pair's guarantee (empty when not supported).
    note : str or None
        What the pair means where it is not obvious (e.g. per gate block).
    cost : float or None
        Median time of one training step with the remedy divided by a plain
        step of the same cell, from the committed benchmark results (``None``
        where unsupported or not measured).
    """

    cell: str
    remedy: str
    supported: bool
    reason: str | None
    tests: tuple[str, ...]
    note: str | None = None
    cost: float | None = None


@dataclass(frozen=True)
class _Yes:
    tests: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class _No:
    reason: str


def _yes(*tests: str, note: str | None = None) -> _Yes:
    """A supported pair whose guarantee the named tests check."""
    return _Yes(tuple(tests), note)


def _no(reason: str) -> _No:
    """An unsupported pair and the sentence its error shows."""
    return _No(reason)


# ---------------------------------------------------------------- reasons
# Each is the sentence the error shows (a substring of the raised message).
OMEGA_SINGLE = "`remedies`: Omega is implemented for the Elman RNN, the LSTM and the GRU only"
GN_SINGLE = "`model` must be an ElmanRNN, LSTM or GRU (Gauss–Newton products exist for these cells)"
GEN_SINGLE = (
    "generators (teacher forcing, free running, scheduled sampling) exist for one layer of an Elman, "
    "LSTM or GRU cell (`GeneratorRNN(cell=...)`), not for stacked models"
)
GEN_STACK = (
    "generators (teacher forcing, free running, scheduled sampling) feed an output back: a StackedRNN "
    "has none; the stacked generator is `GeneratorRNN.init(..., cell=..., n_layers=L)`"
)
GEN_STANDARD = (
    "the Elman generator is in the standard form without a leak "
    "(`GeneratorRNN` has no `form` or `alpha`)"
)
ESN_ONLY = (
    "Elman-specific by definition: an echo state network is a fixed random Elman reservoir "
    "(standard form, leak rate a = 1 − α) with a trained linear readout"
)
ESN_FORM = "an echo state network's reservoir is in the standard form, not Pascanu's"
LEAKY_ONLY = (
    "Elman-specific by definition: leaky units are the retention α of Eq. 14 on an Elman unit; "
    "the LSTM's forget gate and the GRU's update gate are learned retentions of their own"
)

# ---------------------------------------------------------------- tests
_CLIP = "tests/test_clipping.py::test_clip_output_norm_is_min_of_norm_and_threshold"
_CLIP_TRAIN = "tests/test_training.py::test_clipping_bounds_every_applied_gradient"
_CLIP_STAGE = "tests/test_stages.py::test_clipping_transform_rescales_to_the_threshold_and_logs"
_CLIPV = "tests/test_clipping.py::test_clip_by_value_bounds_each_entry"
_CLIPV_EXACT = "tests/test_clipping.py::test_clip_by_value_guarantee_in_exact_arithmetic"
_WIN = "tests/test_truncation.py::test_truncated_gradient_is_the_windowed_double_sum"
_WP = "tests/test_truncation.py::test_williams_peng_schedule_is_the_block_windowed_sum"
_K1 = "tests/test_truncation.py::test_k1_one_is_the_sliding_window_and_chunks_cut_between_blocks"
_CHUNK = "tests/test_truncation.py::test_chunked_truncation_is_blockwise_bptt_for_every_cell"
_GTRUNC = "tests/test_gated_truncation.py::test_truncated_gradient_is_the_detached_autograd_gradient"
_L1 = "tests/test_penalties.py::test_l1_gradient_matches_finite_differences"
_L2 = "tests/test_penalties.py::test_l2_gradient_matches_finite_differences"
_SPEC = "tests/test_penalties.py::test_spectral_gradient_matches_finite_differences"
_PEN_STAGE = "tests/test_stages.py::test_penalty_stage_value_and_gradient_match_finite_differences"
_PEN_GATED = "tests/test_penalties.py::test_penalties_on_gated_cells_use_weight_hh"
_PROJ = "tests/test_penalties.py::test_projection_clips_singular_values"
_PROJ_TRAIN = "tests/test_training.py::test_projection_keeps_sigma_max_at_most_c"
_TF = "tests/test_teacher_forcing.py::test_teacher_forcing_equals_elman_with_constant_feedback_input"
_TF_PATH = "tests/test_teacher_forcing.py::test_teacher_gradient_has_no_path_through_own_outputs"
_FREE = "tests/test_teacher_forcing.py::test_free_running_gradient_matches_finite_differences"
_SCHED = "tests/test_teacher_forcing.py::test_scheduled_gradient_matches_finite_differences_with_the_same_coins"
_SCHED_ENDS = "tests/test_teacher_forcing.py::test_scheduled_sampling_endpoints_are_exact"
_GV = "tests/test_hessian_free.py::test_gv_psd_symmetric_and_structural_term"
_GV_CS = "tests/test_hessian_free.py::test_gv_equals_explicit_complex_step_jacobians"
_HF_LM = "tests/test_hessian_free.py::test_hf_steps_reduce_loss_and_follow_the_lm_rule"
_OMEGA = "tests/test_omega.py::test_value_is_nonnegative_and_matches_the_loop_reference"
_OMEGA_GRAD = "tests/test_omega.py::test_fixed_flow_gradient_equals_fixed_flow_finite_differences"
_OMEGA_TRAIN = "tests/test_omega.py::test_train_with_clipping_and_omega_records_omega"
_ORTH = "tests/test_init.py::test_elman_init_schemes_use_the_initialisers"
_ORTH_LIN = "tests/test_init.py::test_linear_rnn_with_orthogonal_weights_preserves_norms"
_ORTH_GATE = "tests/test_init.py::test_gated_orthogonal_init_is_orthogonal_per_gate"
_ESN = "tests/test_esn.py::test_certificate_contraction"
_ESN_FIT = "tests/test_esn.py::test_fit_uses_the_closed_form_on_harvested_states"
_LEAKY = "tests/test_leaky.py::test_leaky_upper_bound_on_every_pair"
_LEAKY_GRAD = "tests/test_leaky.py::test_alpha_gradient_matches_finite_differences"
_TRAIN = "tests/test_training.py::test_training_reduces_the_loss_on_a_short_task"
_TRAIN_SEED = "tests/test_training.py::test_same_seed_same_history_bitwise"
_TRAIN_GATED = "tests/test_training.py::test_gated_model_trains"
_TRAIN_LEAKY = "tests/test_leaky.py::test_train_updates_learned_alpha_with_projection"
_GGV_PSD = "tests/test_gated_curvature.py::test_gv_psd_symmetric_and_structural_term_psd"
_GGV_CS = "tests/test_gated_curvature.py::test_gv_equals_the_explicit_complex_step_matrix"
_GHF = "tests/test_gated_curvature.py::test_hf_steps_keep_their_guarantees"
_GHF_TRAIN = "tests/test_gated_curvature.py::test_train_with_hessian_free"
_GTF = "tests/test_generator_gated.py::test_teacher_forcing_identity_property"
_GTF_IN = "tests/test_generator_gated.py::test_teacher_feedback_is_the_input_derivative_of_the_cell"
_GTF_TRAIN = "tests/test_generator_gated.py::test_teacher_forcing_trains_a_gated_generator_to_repeat_a_sequence"
_GFD = "tests/test_generator_gated.py::test_gradient_matches_finite_differences_of_the_loop_reference"
_GSCHED = "tests/test_generator_gated.py::test_scheduled_p0_is_teacher_and_p1_is_free_exactly"
_GCOINS = "tests/test_generator_gated.py::test_scheduled_coins_follow_the_seeding_rule"
_GOMEGA = "tests/test_omega_gated.py::test_value_matches_the_loop_reference"
_GOMEGA_GRAD = "tests/test_omega_gated.py::test_fixed_flow_gradient_equals_central_differences"
_GOMEGA_PROP = "tests/test_omega_gated.py::test_properties"
_GOMEGA_TRAIN = "tests/test_omega_gated.py::test_train_with_omega"
_S_TRAIN = "tests/test_stacked_train.py::test_the_raw_key_error_is_gone"
_S_OPT = "tests/test_stacked_train.py::test_optimizers_take_their_step"
_S_CLIP = "tests/test_stacked_train.py::test_clipping_bounds_the_applied_gradient"
_S_TRUNC = "tests/test_stacked_train.py::test_truncated_bptt_takes_the_truncated_step"
_S_TRUNC_SUM = "tests/test_stacked_truncation.py::test_truncated_gradient_equals_the_double_sum"
_S_PEN = "tests/test_stacked_train.py::test_penalty_gradient_is_the_finite_difference"
_S_PEN_STEP = "tests/test_stacked_train.py::test_penalty_adds_its_gradient_to_the_step"
_S_PROJ = "tests/test_stacked_train.py::test_projection_bounds_every_layer"
_S_ORTH = "tests/test_stacked_train.py::test_orthogonal_init_per_gate_per_layer"
_S_LEAKY = "tests/test_stack_bounds.py::test_per_layer_bounds_hold_on_every_pair"

_GATE_NOTE = "on the stacked `weight_hh` (all gate blocks) as one matrix"
_PROJ_GATE_NOTE = "`weight_hh` projected as one matrix, so each gate block also has σ_max ≤ c"
_HF_LEAKY_NOTE = "α held fixed: a model with `learn_alpha=True` is refused"
_HF_LSTM_NOTE = "structural damping on the whole state (h, c)"
_HF_GRU_NOTE = "structural damping on h (the GRU's whole state)"
_HF_STACK_NOTE = "structural damping on the whole state s (every layer's h; c too for LSTM layers)"
_SGV_CS = "tests/test_stacked_curvature.py::test_gv_equals_the_explicit_complex_step_matrix"
_SGV_PSD = "tests/test_stacked_curvature.py::test_gv_psd_symmetric_and_structural_term_psd"
_SGV_TORCH = "tests/test_stacked_curvature.py::test_gv_against_torch_func_jvp_vjp"
_SHF = "tests/test_stacked_curvature.py::test_hf_steps_keep_their_guarantees"
_SHF_TRAIN = "tests/test_stacked_curvature.py::test_train_with_hessian_free"
_GEN_GATED_NOTE = "the fed-back value enters the gates: `weight_ih` over [x_t; o^fb_t]"
_SGEN_TF = "tests/test_generator_stacked.py::test_teacher_forcing_identity_property"
_SGEN_FD = "tests/test_generator_stacked.py::test_gradient_matches_finite_differences_of_the_loop_reference"
_SGEN_TORCH = "tests/test_generator_stacked.py::test_matches_torch_autograd_of_a_two_layer_loop_with_feedback"
_SGEN_ENDS = "tests/test_generator_stacked.py::test_scheduled_p0_is_teacher_and_p1_is_free_exactly"
_SGEN_COINS = "tests/test_generator_stacked.py::test_scheduled_coins_follow_the_seeding_rule"
_SGEN_TRAIN = "tests/test_generator_stacked.py::test_training_lowers_the_loss"
_SGEN_NOTE = "the top layer's output is fed back into the bottom layer's input [x_t; o^fb_t]"
_OMEGA_LSTM_NOTE = "on the step Jacobian of the whole state (h, c); the h-to-h path is an option"
_STACK_NOTE = "on every layer's recurrent matrix"
_STACK_TRUNC_NOTE = "the window on the whole state of the stack"

# ---------------------------------------------------------------- the registry
# One line per pair: flip a pair by replacing _no(...) with _yes(<test ids>).
_TABLE: dict[tuple[str, str], _Yes | _No] = {
    # Elman, standard form
    ("elman", "train"): _yes(_TRAIN, _TRAIN_SEED),
    ("elman", "clip_norm"): _yes(_CLIP, _CLIP_TRAIN, _CLIP_STAGE),
    ("elman", "clip_value"): _yes(_CLIPV, _CLIPV_EXACT),
    ("elman", "tbptt_window"): _yes(_WIN),
    ("elman", "tbptt_chunked"): _yes(_CHUNK, _WP),
    ("elman", "tbptt_k1_k2"): _yes(_WP, _K1),
    ("elman", "l1"): _yes(_L1, _PEN_STAGE),
    ("elman", "l2"): _yes(_L2, _PEN_STAGE),
    ("elman", "spectral_penalty"): _yes(_SPEC, _PEN_STAGE),
    ("elman", "spectral_projection"): _yes(_PROJ, _PROJ_TRAIN),
    ("elman", "teacher_forcing"): _yes(_TF, _TF_PATH),
    ("elman", "free_running"): _yes(_FREE),
    ("elman", "scheduled_sampling"): _yes(_SCHED, _SCHED_ENDS),
    ("elman", "hessian_free"): _yes(_GV, _GV_CS, _HF_LM),
    ("elman", "omega"): _yes(_OMEGA, _OMEGA_GRAD, _OMEGA_TRAIN),
    ("elman", "orthogonal_init"): _yes(_ORTH, _ORTH_LIN),
    ("elman", "esn"): _yes(_ESN, _ESN_FIT),
    ("elman", "leaky_units"): _yes(_LEAKY, _LEAKY_GRAD),
    # Elman, Pascanu's form
    ("elman-pascanu", "train"): _yes(_TRAIN_SEED),
    ("elman-pascanu", "clip_norm"): _yes(_CLIP, _CLIP_STAGE),
    ("elman-pascanu", "clip_value"): _yes(_CLIPV, _CLIPV_EXACT),
    ("elman-pascanu", "tbptt_window"): _yes(_WIN),
    ("elman-pascanu", "tbptt_chunked"): _yes(_WP),
    ("elman-pascanu", "tbptt_k1_k2"): _yes(_WP),
    ("elman-pascanu", "l1"): _yes(_L1, _PEN_STAGE),
    ("elman-pascanu", "l2"): _yes(_L2, _PEN_STAGE),
    ("elman-pascanu", "spectral_penalty"): _yes(_SPEC, _PEN_STAGE),
    ("elman-pascanu", "spectral_projection"): _yes(_PROJ),
    ("elman-pascanu", "teacher_forcing"): _no(GEN_STANDARD),
    ("elman-pascanu", "free_running"): _no(GEN_STANDARD),
    ("elman-pascanu", "scheduled_sampling"): _no(GEN_STANDARD),
    ("elman-pascanu", "hessian_free"): _yes(_GV, _GV_CS),
    ("elman-pascanu", "omega"): _yes(_OMEGA, _OMEGA_GRAD),
    ("elman-pascanu", "orthogonal_init"): _yes(_ORTH_LIN),
    ("elman-pascanu", "esn"): _no(ESN_FORM),
    ("elman-pascanu", "leaky_units"): _yes(_LEAKY, _LEAKY_GRAD),
    # Elman with leaky units
    ("elman-leaky", "train"): _yes(_TRAIN_LEAKY),
    ("elman-leaky", "clip_norm"): _yes(_CLIP, _CLIP_STAGE),
    ("elman-leaky", "clip_value"): _yes(_CLIPV, _CLIPV_EXACT),
    ("elman-leaky", "tbptt_window"): _yes(_WIN),
    ("elman-leaky", "tbptt_chunked"): _yes(_WP),
    ("elman-leaky", "tbptt_k1_k2"): _yes(_WP),
    ("elman-leaky", "l1"): _yes(_L1, _PEN_STAGE),
    ("elman-leaky", "l2"): _yes(_L2, _PEN_STAGE),
    ("elman-leaky", "spectral_penalty"): _yes(_SPEC, _PEN_STAGE),
    ("elman-leaky", "spectral_projection"): _yes(_PROJ),
    ("elman-leaky", "teacher_forcing"): _no(GEN_STANDARD),
    ("elman-leaky", "free_running"): _no(GEN_STANDARD),
    ("elman-leaky", "scheduled_sampling"): _no(GEN_STANDARD),
    ("elman-leaky", "hessian_free"): _yes(_GV, _GV_CS, note=_HF_LEAKY_NOTE),
    ("elman-leaky", "omega"): _yes(_OMEGA, _OMEGA_GRAD),
    ("elman-leaky", "orthogonal_init"): _yes(_ORTH),
    ("elman-leaky", "esn"): _yes(_ESN, _ESN_FIT, note="the reservoir's leak rate `a = 1 − α`"),
    ("elman-leaky", "leaky_units"): _yes(_LEAKY, _LEAKY_GRAD),
    # LSTM
    ("lstm", "train"): _yes(_TRAIN_GATED),
    ("lstm", "clip_norm"): _yes(_CLIP, _CLIP_STAGE),
    ("lstm", "clip_value"): _yes(_CLIPV, _CLIPV_EXACT),
    ("lstm", "tbptt_window"): _yes(_GTRUNC),
    ("lstm", "tbptt_chunked"): _yes(_GTRUNC, _CHUNK),
    ("lstm", "tbptt_k1_k2"): _yes(_GTRUNC),
    ("lstm", "l1"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("lstm", "l2"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("lstm", "spectral_penalty"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("lstm", "spectral_projection"): _yes(_PEN_GATED, note=_PROJ_GATE_NOTE),
    ("lstm", "teacher_forcing"): _yes(_GTF, _GTF_IN, _GTF_TRAIN, note=_GEN_GATED_NOTE),
    ("lstm", "free_running"): _yes(_GFD, note=_GEN_GATED_NOTE),
    ("lstm", "scheduled_sampling"): _yes(_GSCHED, _GCOINS, _GFD, note=_GEN_GATED_NOTE),
    ("lstm", "hessian_free"): _yes(_GGV_PSD, _GGV_CS, _GHF, _GHF_TRAIN, note=_HF_LSTM_NOTE),
    ("lstm", "omega"): _yes(_GOMEGA, _GOMEGA_GRAD, _GOMEGA_PROP, _GOMEGA_TRAIN, note=_OMEGA_LSTM_NOTE),
    ("lstm", "orthogonal_init"): _yes(_ORTH_GATE, note="each gate block of `weight_hh` Haar orthogonal"),
    ("lstm", "esn"): _no(ESN_ONLY),
    ("lstm", "leaky_units"): _no(LEAKY_ONLY),
    # GRU
    ("gru", "train"): _yes(_TRAIN_GATED),
    ("gru", "clip_norm"): _yes(_CLIP, _CLIP_STAGE),
    ("gru", "clip_value"): _yes(_CLIPV, _CLIPV_EXACT),
    ("gru", "tbptt_window"): _yes(_GTRUNC),
    ("gru", "tbptt_chunked"): _yes(_GTRUNC, _CHUNK),
    ("gru", "tbptt_k1_k2"): _yes(_GTRUNC),
    ("gru", "l1"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("gru", "l2"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("gru", "spectral_penalty"): _yes(_PEN_GATED, note=_GATE_NOTE),
    ("gru", "spectral_projection"): _yes(_PEN_GATED, note=_PROJ_GATE_NOTE),
    ("gru", "teacher_forcing"): _yes(_GTF, _GTF_IN, _GTF_TRAIN, note=_GEN_GATED_NOTE),
    ("gru", "free_running"): _yes(_GFD, note=_GEN_GATED_NOTE),
    ("gru", "scheduled_sampling"): _yes(_GSCHED, _GCOINS, _GFD, note=_GEN_GATED_NOTE),
    ("gru", "hessian_free"): _yes(_GGV_PSD, _GGV_CS, _GHF, _GHF_TRAIN, note=_HF_GRU_NOTE),
    ("gru", "omega"): _yes(_GOMEGA, _GOMEGA_GRAD, _GOMEGA_PROP, _GOMEGA_TRAIN),
    ("gru", "orthogonal_init"): _yes(_ORTH_GATE, note="each gate block of `weight_hh` Haar orthogonal"),
    ("gru", "esn"): _no(ESN_ONLY),
    ("gru", "leaky_units"): _no(LEAKY_ONLY),
    # stacked Elman
    ("stacked-elman", "train"): _yes(_S_TRAIN, _S_OPT),
    ("stacked-elman", "clip_norm"): _yes(_S_CLIP, _CLIP),
    ("stacked-elman", "clip_value"): _yes(_S_CLIP, _CLIPV),
    ("stacked-elman", "tbptt_window"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-elman", "tbptt_chunked"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-elman", "tbptt_k1_k2"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-elman", "l1"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-elman", "l2"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-elman", "spectral_penalty"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-elman", "spectral_projection"): _yes(_S_PROJ, note=_STACK_NOTE),
    ("stacked-elman", "teacher_forcing"): _yes(_SGEN_TF, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-elman", "free_running"): _yes(_SGEN_FD, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-elman", "scheduled_sampling"): _yes(_SGEN_ENDS, _SGEN_COINS, _SGEN_FD, note=_SGEN_NOTE),
    ("stacked-elman", "hessian_free"): _yes(_SGV_CS, _SGV_PSD, _SHF, _SHF_TRAIN, note=_HF_STACK_NOTE),
    ("stacked-elman", "omega"): _yes(
        "tests/test_omega_stacked.py::test_value_matches_explicit_whole_state_jacobians",
        "tests/test_omega_stacked.py::test_gradient_matches_central_differences_with_flow_states_and_inputs_held",
        "tests/test_omega_stacked.py::test_one_layer_stack_is_the_cell",
        "tests/test_omega_stacked.py::test_train_with_omega_on_a_two_layer_stack",
        note="Ω of the whole state s (block lower-triangular step Jacobian); each layer's input held",
    ),
    ("stacked-elman", "orthogonal_init"): _yes(_S_ORTH),
    ("stacked-elman", "esn"): _no(ESN_ONLY),
    ("stacked-elman", "leaky_units"): _yes(_S_LEAKY, _S_OPT),
    # stacked LSTM
    ("stacked-lstm", "train"): _yes(_S_TRAIN, _S_OPT),
    ("stacked-lstm", "clip_norm"): _yes(_S_CLIP, _CLIP),
    ("stacked-lstm", "clip_value"): _yes(_S_CLIP, _CLIPV),
    ("stacked-lstm", "tbptt_window"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-lstm", "tbptt_chunked"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-lstm", "tbptt_k1_k2"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-lstm", "l1"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-lstm", "l2"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-lstm", "spectral_penalty"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-lstm", "spectral_projection"): _yes(_S_PROJ, note=_STACK_NOTE),
    ("stacked-lstm", "teacher_forcing"): _yes(_SGEN_TF, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-lstm", "free_running"): _yes(_SGEN_FD, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-lstm", "scheduled_sampling"): _yes(_SGEN_ENDS, _SGEN_COINS, _SGEN_FD, note=_SGEN_NOTE),
    ("stacked-lstm", "hessian_free"): _yes(_SGV_CS, _SGV_PSD, _SGV_TORCH, _SHF, _SHF_TRAIN, note=_HF_STACK_NOTE),
    ("stacked-lstm", "omega"): _yes(
        "tests/test_omega_stacked.py::test_value_matches_explicit_whole_state_jacobians",
        "tests/test_omega_stacked.py::test_gradient_matches_central_differences_with_flow_states_and_inputs_held",
        "tests/test_omega_stacked.py::test_one_layer_stack_is_the_cell",
        "tests/test_omega_stacked.py::test_train_with_omega_on_a_two_layer_stack",
        note="Ω of the whole state s (block lower-triangular step Jacobian); each layer's input held",
    ),
    ("stacked-lstm", "orthogonal_init"): _yes(_S_ORTH),
    ("stacked-lstm", "esn"): _no(ESN_ONLY),
    ("stacked-lstm", "leaky_units"): _no(LEAKY_ONLY),
    # stacked GRU
    ("stacked-gru", "train"): _yes(_S_TRAIN, _S_OPT),
    ("stacked-gru", "clip_norm"): _yes(_S_CLIP, _CLIP),
    ("stacked-gru", "clip_value"): _yes(_S_CLIP, _CLIPV),
    ("stacked-gru", "tbptt_window"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-gru", "tbptt_chunked"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-gru", "tbptt_k1_k2"): _yes(_S_TRUNC, _S_TRUNC_SUM, note=_STACK_TRUNC_NOTE),
    ("stacked-gru", "l1"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-gru", "l2"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-gru", "spectral_penalty"): _yes(_S_PEN, _S_PEN_STEP, note=_STACK_NOTE),
    ("stacked-gru", "spectral_projection"): _yes(_S_PROJ, note=_STACK_NOTE),
    ("stacked-gru", "teacher_forcing"): _yes(_SGEN_TF, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-gru", "free_running"): _yes(_SGEN_FD, _SGEN_TORCH, _SGEN_TRAIN, note=_SGEN_NOTE),
    ("stacked-gru", "scheduled_sampling"): _yes(_SGEN_ENDS, _SGEN_COINS, _SGEN_FD, note=_SGEN_NOTE),
    ("stacked-gru", "hessian_free"): _yes(_SGV_CS, _SGV_PSD, _SHF, _SHF_TRAIN, note=_HF_STACK_NOTE),
    ("stacked-gru", "omega"): _yes(
        "tests/test_omega_stacked.py::test_value_matches_explicit_whole_state_jacobians",
        "tests/test_omega_stacked.py::test_gradient_matches_central_differences_with_flow_states_and_inputs_held",
        "tests/test_omega_stacked.py::test_one_layer_stack_is_the_cell",
        "tests/test_omega_stacked.py::test_train_with_omega_on_a_two_layer_stack",
        note="Ω of the whole state s (block lower-triangular step Jacobian); each layer's input held",
    ),
    ("stacked-gru", "orthogonal_init"): _yes(_S_ORTH),
    ("stacked-gru", "esn"): _no(ESN_ONLY),
    ("stacked-gru", "leaky_units"): _no(LEAKY_ONLY),
}


# ---------------------------------------------------------------- costs
def costs_path() -> Path:
    """Where the committed benchmark results live (``benchmarks/results/remedy_matrix.json``
    of a source checkout; the file may be absent in an installed package)."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "remedy_matrix.json"


def _load_costs(path: str | Path | None) -> dict[str, Any]:
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"`costs` must be a path (str or os.PathLike) or None, got {type(path).__name__}")
    p = costs_path() if path is None else Path(path)
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"`costs` file {str(p)!r} is not readable JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"`costs` file {str(p)!r} must hold a JSON object, got {type(data).__name__}")
    return data


def _cost(costs: dict[str, Any], cell: str, remedy: str) -> float | None:
    ratios = costs.get("ratios", {})
    value = ratios.get(f"{cell}|{remedy}") if isinstance(ratios, dict) else None
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


# ---------------------------------------------------------------- the API
def entry(cell: str, remedy: str, *, costs: str | Path | None = None) -> Entry:
    """The matrix entry of one (cell, remedy) pair.

    Parameters
    ----------
    cell : str
        A row, one of :data:`CELLS` (:func:`cell_of` maps a model to it).
    remedy : str
        A column, one of :data:`REMEDIES` (:func:`remedy_of` maps a remedy record to it).
    costs : str or Path, optional
        The benchmark results to read the cost from (default :func:`costs_path`).

    Returns
    -------
    Entry

    Raises
    ------
    ValueError
        On an unknown ``cell`` or ``remedy``, or an unreadable ``costs`` file.

    Examples
    --------
    >>> e = entry("stacked-gru", "esn")
    >>> e.supported, e.reason.split(":")[0]
    (False, 'Elman-specific by definition')
    """
    cell = check_choice("cell", cell, CELLS)
    remedy = check_choice("remedy", remedy, REMEDIES)
    row = _TABLE[(cell, remedy)]
    if isinstance(row, _No):
        return Entry(cell, remedy, False, row.reason, ())
    return Entry(cell, remedy, True, None, row.tests, row.note, _cost(_load_costs(costs), cell, remedy))


def matrix(*, costs: str | Path | None = None) -> dict[tuple[str, str], Entry]:
    """Every entry, keyed by ``(cell, remedy)``, rows in the order of :data:`CELLS`.

    Parameters
    ----------
    costs : str or Path, optional
        The benchmark results to read costs from (default :func:`costs_path`).

    Returns
    -------
    dict of (str, str) to Entry

    Examples
    --------
    >>> m = matrix()
    >>> len(m) == len(CELLS) * len(REMEDIES)
    True
    >>> sorted(c for (c, r), e in m.items() if r == "esn" and e.supported)
    ['elman', 'elman-leaky']
    """
    data = _load_costs(costs)
    out: dict[tuple[str, str], Entry] = {}
    for c in CELLS:
        for r in REMEDIES:
            row = _TABLE[(c, r)]
            if isinstance(row, _No):
                out[(c, r)] = Entry(c, r, False, row.reason, ())
            else:
                out[(c, r)] = Entry(c, r, True, None, row.tests, row.note, _cost(data, c, r))
    return out


def cell_of(model: Any) -> str:
    """The row of :data:`CELLS` a model belongs to.

    An :class:`~rnntheory.ElmanRNN` maps to ``"elman-leaky"`` when it has a
    retention ``alpha``, else to ``"elman"`` or ``"elman-pascanu"`` by its form;
    an :class:`~rnntheory.LSTM`/:class:`~rnntheory.GRU` to ``"lstm"``/``"gru"``;
    a :class:`~rnntheory.StackedRNN` to ``"stacked-<cell>"``; a generator to
    the row of its cell (``"elman"`` for the Elman generator).

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN

    Returns
    -------
    str

    Raises
    ------
    TypeError
        When ``model`` is not one of these (a class, a bidirectional model, an array...).

    Examples
    --------
    >>> from rnntheory import ElmanRNN, StackedRNN
    >>> cell_of(ElmanRNN.init(2, 3, 1, form="pascanu")), cell_of(StackedRNN.init(2, 3, 1, cell="gru"))
    ('elman-pascanu', 'stacked-gru')
    """
    from ..cells.elman import ElmanRNN
    from ..cells.gated import GRU, LSTM
    from ..cells.generator import GeneratorRNN
    from ..cells.stacked import StackedRNN

    if isinstance(model, ElmanRNN):
        if model.alpha is not None:
            return "elman-leaky"
        return "elman-pascanu" if model.form == "pascanu" else "elman"
    if isinstance(model, LSTM):
        return "lstm"
    if isinstance(model, GRU):
        return "gru"
    if isinstance(model, StackedRNN):
        return f"stacked-{model.cell}"
    if isinstance(model, GeneratorRNN):
        cell = str(getattr(model, "cell", "elman"))
        return f"stacked-{cell}" if model.n_layers >= 2 else cell
    raise TypeError(
        f"`model` must be an ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN, got {type(model).__name__}"
    )


def known_remedy(remedy: Any) -> bool:
    """Whether :func:`remedy_of` maps ``remedy`` (a record) to a column: a record of
    a kind the matrix does not list (a user's own :class:`~rnntheory.remedies.Remedy`
    subclass) is the trainer's to check.

    Examples
    --------
    >>> from rnntheory.remedies import Omega, Remedy
    >>> known_remedy(Omega(1.0)), known_remedy(Remedy())
    (True, False)
    """
    from .stages import (
        Feedback,
        GradientClipping,
        Omega,
        Penalty,
        SpectralProjection,
        TruncatedBPTT,
    )

    return isinstance(remedy, Feedback | GradientClipping | Omega | Penalty | SpectralProjection | TruncatedBPTT)


def remedy_of(remedy: Any) -> str:
    """The column of :data:`REMEDIES` a remedy names.

    Parameters
    ----------
    remedy : str or Remedy
        A column name (e.g. ``"hessian_free"``, ``"teacher_forcing"``), or a
        remedy record: :class:`~rnntheory.remedies.GradientClipping` (by its
        ``kind``), :class:`~rnntheory.remedies.TruncatedBPTT` (``k1 = 1``: the
        sliding window; ``k1 = k2``: chunks; else ``BPTT(k1, k2)``),
        :class:`~rnntheory.remedies.Penalty` (by its ``kind``),
        :class:`~rnntheory.remedies.SpectralProjection`, :class:`~rnntheory.remedies.Omega`,
        :class:`~rnntheory.remedies.Feedback` (by its ``mode``).

    Returns
    -------
    str

    Raises
    ------
    TypeError, ValueError
        On anything else, naming `remedy`.

    Examples
    --------
    >>> from rnntheory.remedies import TruncatedBPTT
    >>> remedy_of(TruncatedBPTT(5, k1=5)), remedy_of("omega")
    ('tbptt_chunked', 'omega')
    """
    from .stages import (
        Feedback,
        GradientClipping,
        Omega,
        Penalty,
        SpectralProjection,
        TruncatedBPTT,
    )

    if isinstance(remedy, str):
        return check_choice("remedy", remedy, REMEDIES)
    if isinstance(remedy, Feedback):
        return {"teacher": "teacher_forcing", "free": "free_running", "scheduled": "scheduled_sampling"}[remedy.mode]
    if isinstance(remedy, GradientClipping):
        return "clip_norm" if remedy.kind == "norm" else "clip_value"
    if isinstance(remedy, TruncatedBPTT):
        if remedy.k1 == 1:
            return "tbptt_window"
        return "tbptt_chunked" if remedy.k1 == remedy.k2 else "tbptt_k1_k2"
    if isinstance(remedy, Penalty):
        return {"l1": "l1", "l2": "l2", "spectral": "spectral_penalty"}[remedy.kind]
    if isinstance(remedy, SpectralProjection):
        return "spectral_projection"
    if isinstance(remedy, Omega):
        return "omega"
    raise TypeError(
        f"`remedy` must be a remedy record or one of {list(REMEDIES)}, got {type(remedy).__name__}"
    )


def require(model: Any, remedy: Any) -> Entry:
    """Check that ``model`` supports ``remedy``; return its entry, or raise.

    The check a trainer (``train``, a sweep) runs before any step.

    Parameters
    ----------
    model : ElmanRNN, LSTM, GRU, StackedRNN or GeneratorRNN
    remedy : str or Remedy
        As for :func:`remedy_of`.

    Returns
    -------
    Entry
        The supported pair's entry, without its cost: the check never reads
        the benchmark results file (a trainer must not depend on it).

    Raises
    ------
    ValueError
        When the pair is not supported: the message names `remedies` and
        `model`, and holds the entry's reason.
    TypeError
        When ``model`` or ``remedy`` is not one the matrix knows.

    Examples
    --------
    >>> from rnntheory import StackedRNN
    >>> require(StackedRNN.init(2, 3, 1, cell="gru"), "esn")
    Traceback (most recent call last):
        ...
    ValueError: `remedies`: esn is not supported for `model` (stacked-gru): Elman-specific by definition: an echo state network is a fixed random Elman reservoir (standard form, leak rate a = 1 − α) with a trained linear readout
    """
    from ..cells.stacked import StackedRNN

    cell = cell_of(model)
    name = remedy_of(remedy)
    row = _TABLE[(cell, name)]  # no cost: a trainer never reads the benchmark results file
    e = (Entry(cell, name, False, row.reason, ()) if isinstance(row, _No)
         else Entry(cell, name, True, None, row.tests, row.note))
    if not e.supported:
        raise ValueError(f"`remedies`: {name} is not supported for `model` ({cell}): {e.reason}")
    if ROUTES[name] == "generator" and isinstance(model, StackedRNN):
        raise ValueError(f"`remedies`: {name} is not supported for `model` ({cell}): {GEN_STACK}")
    return e


# ---------------------------------------------------------------- examples
def model_for(
    cell: str, n_in: int, n_hidden: int, n_out: int | None, *, remedy: str = "train",
    seed: int = 0, dtype: Any = np.float64, n_layers: int = 2,
) -> Any:
    """A small model of the row ``cell``, set up for ``remedy`` (what the tests
    and the benchmark train).

    ``"orthogonal_init"`` draws the recurrent weights with ``scheme="orthogonal"``
    (per gate block for gated cells), ``"leaky_units"`` gives an Elman model the
    retention ``alpha = 0.5``; the generator columns give a
    :class:`~rnntheory.cells.generator.GeneratorRNN` of the row's cell (rows
    ``"elman"``, ``"lstm"``, ``"gru"`` and their stacks, ``n_layers`` layers); other remedies leave the model as the row's
    plain one (Elman: ``scheme="smart_tanh"``; gated: ``scheme="pytorch"``;
    leaky: ``alpha = 0.5``).

    Parameters
    ----------
    cell : str
        One of :data:`CELLS`.
    n_in, n_hidden : int
    n_out : int or None
    remedy : str
        One of :data:`REMEDIES`.
    seed : int
    dtype : float32 or float64
    n_layers : int
        Layers of a stacked row.

    Returns
    -------
    model

    Raises
    ------
    ValueError, TypeError
        On an unknown ``cell`` or ``remedy``, a generator column for a row without
        a generator or without ``n_out``, or what the model's ``init`` refuses.

    Examples
    --------
    >>> cell_of(model_for("elman-leaky", 2, 4, 1)), cell_of(model_for("lstm", 2, 4, 1, remedy="omega"))
    ('elman-leaky', 'lstm')
    """
    from ..cells.elman import ElmanRNN
    from ..cells.gated import GRU, LSTM
    from ..cells.generator import GeneratorRNN
    from ..cells.stacked import StackedRNN

    cell = check_choice("cell", cell, CELLS)
    remedy = check_choice("remedy", remedy, REMEDIES)
    if ROUTES[remedy] == "generator":
        if cell not in ("elman", "lstm", "gru", "stacked-elman", "stacked-lstm", "stacked-gru"):
            raise ValueError(f"`cell` {cell!r} has no generator (Elman, LSTM and GRU cells and stacks of them "
                             "have, the Elman ones in the standard form without a leak)")
        if n_out is None:
            raise ValueError("`n_out` must be an integer for a generator (its output is fed back), got None")
        if cell.startswith("stacked-"):
            return GeneratorRNN.init(n_in, n_hidden, n_out, cell=cell.removeprefix("stacked-"), n_layers=n_layers,
                                     seed=seed, dtype=dtype)
        extra: dict[str, Any] = {} if cell == "elman" else {"cell": cell}
        return GeneratorRNN.init(n_in, n_hidden, n_out, seed=seed, dtype=dtype, **extra)
    orth = remedy == "orthogonal_init"
    leak = cell == "elman-leaky" or remedy == "leaky_units"
    if cell.startswith("elman"):
        return ElmanRNN.init(
            n_in, n_hidden, n_out, scheme="orthogonal" if orth else "smart_tanh", seed=seed, dtype=dtype,
            form="pascanu" if cell == "elman-pascanu" else "standard", alpha=0.5 if leak else None,
        )
    if cell in ("lstm", "gru"):
        cls = LSTM if cell == "lstm" else GRU
        return cls.init(n_in, n_hidden, n_out, scheme="orthogonal" if orth else "pytorch", seed=seed, dtype=dtype)
    base = cell.removeprefix("stacked-")
    opts: dict[str, Any] = {}
    if orth:
        opts["scheme"] = "orthogonal"
    if leak and base == "elman":
        opts["alpha"] = 0.5
    return StackedRNN.init(n_in, n_hidden, n_out, cell=base, n_layers=n_layers, seed=seed, dtype=dtype, **opts)


def records_for(remedy: str) -> tuple[Any, ...]:
    """The remedy records ``train`` takes for a column of route ``"train"`` (small
    fixed hyper-parameters: threshold 1, ``k2 = 5``, ``k1 = 3`` for ``BPTT(k1, k2)``,
    weights ``1e-3``, ``c = 1``, Ω weight 1); ``()`` where the column is the
    model itself (plain training, orthogonal initialisation, leaky units).

    Parameters
    ----------
    remedy : str
        One of :data:`REMEDIES` whose route is ``"train"`` or ``"generator"``
        (a :class:`~rnntheory.remedies.Feedback` record).

    Returns
    -------
    tuple of Remedy

    Raises
    ------
    ValueError
        On an unknown ``remedy`` or one trained another way (see :data:`ROUTES`).

    Examples
    --------
    >>> records_for("tbptt_k1_k2")
    (TruncatedBPTT(k2=5, k1=3),)
    """
    from .stages import (
        Feedback,
        GradientClipping,
        Omega,
        Penalty,
        SpectralProjection,
        TruncatedBPTT,
    )

    remedy = check_choice("remedy", remedy, REMEDIES)
    if ROUTES[remedy] not in ("train", "generator"):
        raise ValueError(f"`remedy` {remedy!r} is trained by the route {ROUTES[remedy]!r}, not by remedy records")
    table: dict[str, tuple[Any, ...]] = {
        "clip_norm": (GradientClipping(1.0),),
        "clip_value": (GradientClipping(1.0, kind="value"),),
        "tbptt_window": (TruncatedBPTT(5),),
        "tbptt_chunked": (TruncatedBPTT(5, k1=5),),
        "tbptt_k1_k2": (TruncatedBPTT(5, k1=3),),
        "l1": (Penalty("l1", 1e-3),),
        "l2": (Penalty("l2", 1e-3),),
        "spectral_penalty": (Penalty("spectral", 1e-3, c=1.0),),
        "spectral_projection": (SpectralProjection(1.0),),
        "omega": (Omega(1.0),),
        "teacher_forcing": (Feedback("teacher"),),
        "free_running": (Feedback("free"),),
        "scheduled_sampling": (Feedback("scheduled", p=0.5),),
    }
    return table.get(remedy, ())


# ---------------------------------------------------------------- the page
def render_markdown(*, costs: str | Path | None = None) -> str:
    """The page ``docs/guides/remedy-matrix.md``, rendered from the registry.

    Parameters
    ----------
    costs : str or Path, optional
        The benchmark results to read costs from (default :func:`costs_path`).

    Returns
    -------
    str
        Markdown: a table remedy × cell (✓ with the cost relative to a plain
        step, or ✗ with a reason's label), the reasons, the notes, and the
        guarantee tests of every supported pair.

    Examples
    --------
    >>> render_markdown().startswith("# The cell × remedy matrix")
    True
    """
    data = _load_costs(costs)
    m = matrix(costs=costs)
    reasons: list[str] = []
    notes: list[str] = []
    lines = [
        "# The cell × remedy matrix",
        "",
        "<!-- Generated by `python -m rnntheory.remedies.support` from the registry in",
        "     rnntheory/remedies/support.py: do not edit by hand. -->",
        "",
        "Which cell supports which remedy today, generated from the registry in",
        "`rnntheory.remedies.support` (the same registry `support.require(model, remedy)`",
        "consults), never written by hand. Regenerate it with",
        "`python -m rnntheory.remedies.support` after changing the registry or the",
        "benchmark results; a test fails while the committed page differs from the rendering.",
        "",
        "✓ *r*: supported; *r* is the median time of one training step with the remedy",
        "divided by a plain step of the same cell (— where not measured). ✗ R*k*: not",
        "supported, for the reason R*k* below (the sentence the error shows).",
        "Echo state networks and leaky units are Elman-specific by definition.",
        "",
    ]
    run = data.get("run") if isinstance(data.get("run"), dict) else None
    if run:
        lines += [
            f"Costs measured by `{run.get('script', 'benchmarks/bench_remedy_matrix.py')}` on "
            f"{run.get('date', '?')}, {run.get('cores', '?')} cores (load average {run.get('load', '?')}), "
            f"{run.get('sizes', '')}; CPU time, one thread, medians.",
            "",
        ]
    else:
        lines += ["No benchmark results were found: costs are not shown.", ""]
    table = []
    for r in REMEDIES:
        cells = []
        for c in CELLS:
            e = m[(c, r)]
            if e.supported:
                cost = "—" if e.cost is None else f"{e.cost:.2f}×"
                text = f"✓ {cost}"
                if e.note is not None:
                    if e.note not in notes:
                        notes.append(e.note)
                    text += f" N{notes.index(e.note) + 1}"
            else:
                assert e.reason is not None
                if e.reason not in reasons:
                    reasons.append(e.reason)
                text = f"✗ R{reasons.index(e.reason) + 1}"
            cells.append(text)
        table.append([REMEDY_TITLES[r], *cells])
    lines.append(markdown_table(["remedy", *(CELL_TITLES[c] for c in CELLS)], table))
    lines += ["", "## Reasons", ""]
    lines += [f"- **R{i}**: {t}" for i, t in enumerate(reasons, 1)]
    lines += ["", "## Notes", ""]
    lines += [f"- **N{i}**: {t}" for i, t in enumerate(notes, 1)]
    lines += ["", "## Guarantee tests", "", "The tests that check each supported pair's guarantee.", ""]
    for c in CELLS:
        sup = [m[(c, r)] for r in REMEDIES if m[(c, r)].supported]
        if not sup:
            continue
        lines += [f"### {CELL_TITLES[c]}", ""]
        for e in sup:
            lines.append(f"- `{e.remedy}`: " + ", ".join(f"`{t}`" for t in e.tests))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def page_path() -> Path:
    """Where the generated page lives.

    Returns
    -------
    Path
        ``docs/guides/remedy-matrix.md`` of a source checkout.
    """
    return Path(__file__).resolve().parents[2] / "docs" / "guides" / "remedy-matrix.md"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rnntheory.remedies.support``: write the page from the registry.

    Parameters
    ----------
    argv : sequence of str, optional
        ``[]`` writes :func:`page_path`; ``["--check"]`` only compares it with
        :func:`render_markdown`. Default: the command line.

    Returns
    -------
    int
        The exit status: 0, or 1 when ``--check`` finds the page out of date, 2 on bad arguments.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    text = render_markdown()
    path = page_path()
    if args == ["--check"]:
        same = path.is_file() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'up to date' if same else 'differs from the registry'}")
        return 0 if same else 1
    if args:
        print("usage: python -m rnntheory.remedies.support [--check]", file=sys.stderr)
        return 2
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
