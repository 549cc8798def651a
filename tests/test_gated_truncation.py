"""Truncated BPTT for the LSTM and GRU in every schedule (sliding window, BPTT(k1, k2), chunks).

Williams & Peng's BPTT(k1, k2) cuts the losses into blocks of ``k1`` steps
ending at ``e = k1, 2k1, …, T`` and backpropagates each block's losses ``k2``
steps from its end. By definition, that is the sum over blocks of the gradient
of the block's losses computed with the state (``h``, and ``c`` for the LSTM)
detached at step ``e − k2``: the contribution of ``E_t`` through the state at
step ``k`` is kept exactly when ``e(t) − k < k2``. The oracle here is that
definition run in PyTorch autograd (float64, ``nn.LSTMCell`` / ``nn.GRUCell``
holding the same weights), one graph per block.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from test_elman_kernels import make_mask, rel_err
from test_gated_threads import _torch_reference

import rnntheory
from rnntheory import GRU, LSTM
from rnntheory.cells import _gated_kernels as GK

CELLS = [LSTM, GRU]
PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "W_yh", "b_y")
T, B = 7, 2
# (k1, k2): sliding windows k2 ∈ {1, 3, T, T+1}, then BPTT(k1, k2) proper
SCHEDULES = [(1, 1), (1, 3), (1, T), (1, T + 1), (2, 3), (3, 3), (2, 5)]


def _setup(cls, loss, seed, T=T, B=B, n_in=3, n=4, n_out=3):
    """A cell with nonzero biases, inputs, targets, a weighted mask with zeros,
    and nonzero initial states."""
    rng = np.random.default_rng(seed)
    m = cls.init(n_in, n, n_out, seed=seed)
    m = m.replace(
        bias_ih=rng.normal(size=m.bias_ih.shape) * 0.5,
        bias_hh=rng.normal(size=m.bias_hh.shape) * 0.5,
        b_y=rng.normal(size=m.b_y.shape) * 0.5,
    )
    x = rng.normal(size=(T, B, n_in))
    y = rng.integers(0, n_out, (T, B)) if loss == "xent" else rng.normal(size=(T, B, n_out))
    mask = make_mask(rng, T, B)
    states = {"h0": rng.normal(0.0, 0.5, (B, n))}
    if cls is LSTM:
        states["c0"] = rng.normal(0.0, 0.5, (B, n))
    return m, x, y, mask, states


def _states_at(m, x, states, k):
    """The state at step ``k`` of every sequence by the loop definition
    (tests/naive.py), as the initial states of a run starting there."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in states}
    for b in range(x.shape[1]):
        if m.NAME == "LSTM":
            hs, cs = naive.lstm_forward(m, x[:k, b], states["h0"][b], states["c0"][b])
            out["c0"].append(cs[k])
        else:
            hs = naive.gru_forward(m, x[:k, b], states["h0"][b])
        out["h0"].append(hs[k])
    return {name: np.stack(v) for name, v in out.items()}


def _truncated_by_detaching(m, x, y, loss, mask, states, k1, k2):
    """BPTT(k1, k2) by its definition in PyTorch autograd.

    For each block of losses ``first..e`` (``k1`` of them, the last block
    shorter), the block's masked losses are backpropagated with the state
    detached at step ``cut = e − k2``: the cell runs from the state at ``cut``
    held constant (a leaf whose gradient is discarded; from step 0 with
    ``h_0``, ``c_0`` differentiated when ``cut < 0``), which is the same graph
    as running from step 1 and detaching there. The parameter gradients and
    the gradients at the state tensors ``h_k`` (``c_k``), ``k > cut``, are
    summed over blocks; a state at or before the cut gets nothing from the block.
    """
    T_ = x.shape[0]
    grads = {name: np.zeros_like(getattr(m, name)) for name in PARAMS}
    flow = np.zeros((T_ + 1, *states["h0"].shape))
    flow_c = np.zeros_like(flow)
    for e in range(k1, T_ + k1, k1):
        e = min(e, T_)
        first = ((e - 1) // k1) * k1 + 1
        cut = max(e - k2, 0)
        w = np.zeros_like(mask)
        w[first - 1 : e] = mask[first - 1 : e]  # the block's own losses only
        start = _states_at(m, x, states, cut)
        _, ref, fl, fl_c = _torch_reference(m, x[cut:e], y[cut:e], loss, w[cut:e], start)
        for name in PARAMS:
            grads[name] += ref[name]
        keep = 0 if e < k2 else 1  # the state at the cut is held constant
        flow[cut + keep : e + 1] += fl[keep:]
        if fl_c is not None:
            flow_c[cut + keep : e + 1] += fl_c[keep:]
    return grads, flow, (flow_c if m.NAME == "LSTM" else None)


def _assert_matches(g, ref, flow, flow_c, tol):
    for name in PARAMS:
        assert rel_err(getattr(g, name), ref[name]) <= tol, name
    assert rel_err(g.flow, flow, floor=1.0) <= tol
    if flow_c is not None:
        assert rel_err(g.flow_c, flow_c, floor=1.0) <= tol


@pytest.mark.oracle
@pytest.mark.parametrize("schedule", SCHEDULES, ids=[f"k1={a}-k2={b}" for a, b in SCHEDULES])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("cls", CELLS)
def test_truncated_gradient_is_the_detached_autograd_gradient(cls, loss, schedule):
    """value_and_grad(truncate=k2) (k1 = 1) and truncate=(k1, k2) equal, for
    every parameter and for ∂E/∂h_k (∂E/∂c_k) at k = 0..T, the sum over blocks
    ``first..e`` of the autograd gradient of ``Σ_{t=first}^{e} w_t E_t`` with
    the state detached at ``e − k2`` (T = 7, B = 2, weighted mask with zeros,
    nonzero initial states), to 1e-10. So the contribution of E_t through the
    state at step k is kept iff e(t) − k < k2, and ∂E/∂(h_0, c_0) is nonzero only
    from blocks with e < k2 (for k2 = T the last loss does not reach h_0; for
    k2 = T + 1 every one does: full BPTT)."""
    k1, k2 = schedule
    m, x, y, mask, states = _setup(cls, loss, seed=11 * k1 + k2 + (5 if loss == "mse" else 0))
    truncate = k2 if k1 == 1 else (k1, k2)
    _, g = m.value_and_grad(x, y, loss=loss, mask=mask, truncate=truncate, **states)
    ref, flow, flow_c = _truncated_by_detaching(m, x, y, loss, mask, states, k1, k2)
    _assert_matches(g, ref, flow, flow_c, 1e-10)


@pytest.mark.oracle
@pytest.mark.parametrize("cls", CELLS)
def test_threaded_truncation_matches_the_oracle(threaded, cls):
    """Split over 3 threads (B = 5, ranges of 1–2 sequences), the sliding window
    k2 = 3 and BPTT(2, 5) still equal the detached-autograd definition of
    BPTT(k1, k2) (sum over blocks, state detached at e − k2) to 1e-10: the
    truncated kernels touch only their own range of sequences."""
    rnntheory.set_num_threads(3)
    m, x, y, mask, states = _setup(cls, "mse", seed=3, B=5)
    for k1, k2 in ((1, 3), (2, 5)):
        _, g = m.value_and_grad(x, y, loss="mse", mask=mask, truncate=k2 if k1 == 1 else (k1, k2), **states)
        ref, flow, flow_c = _truncated_by_detaching(m, x, y, "mse", mask, states, k1, k2)
        _assert_matches(g, ref, flow, flow_c, 1e-10)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
@pytest.mark.parametrize("cls", CELLS)
def test_aligned_chunks_fast_path_equals_the_general_kernel(cls, k):
    """For k dividing T = 6, BPTT(k, k) by the full-BPTT kernel with the flow cut
    at block starts (the fast path value_and_grad takes) and by the general
    truncated kernel (blocks ending at e = k, 2k, …, each propagated k steps)
    give the same flows ∂E/∂h_k (∂E/∂c_k) and gate-pre-activation derivatives D,
    to 1e-12: both are Σ_blocks of the block's BPTT with the state cut at its
    start. dZ = w_t (y_t − target_t) is the squared-error gradient at the readout."""
    m, x, y, mask, states = _setup(cls, "mse", seed=20 + k, T=6, B=3)
    tr = m.forward(x, **states)
    dZ = np.ascontiguousarray(mask[:, :, None] * (tr.y - y))
    dZ.flags.writeable = False  # as the models pass it: the kernels they compiled serve here too
    lstm = cls is LSTM
    args = (m.weight_hh, m.W_yh, dZ, tr.c if lstm else tr.h, tr.pre)
    n, G = m.n_hidden, (4 if lstm else 3)
    # LSTM: flow_h, flow_c, D; GRU: flow, D_hid, D_in
    shapes = [(7, 3, n)] * (2 if lstm else 1) + [(6, 3, G * n)] * (1 if lstm else 2)
    fast = [np.empty(sh) for sh in shapes]
    general = [np.empty(sh) for sh in shapes]
    # b0, b1 given as value_and_grad's run_rows gives them (the same compiled kernels);
    # the optional Ω outputs (LSTM: UH, CC; GRU: UH) not wanted: empty
    parts = [np.empty((0, 0, 0))] * (2 if lstm else 1)
    (GK.lstm_backward if lstm else GK.gru_backward)(*args, *fast, *parts, k, 0, 3)
    (GK.lstm_backward_truncated if lstm else GK.gru_backward_truncated)(*args, k, k, *general, 0, 3)
    for a, b in zip(general, fast, strict=True):
        assert rel_err(a, b, floor=1.0) <= 1e-12
    assert np.all(general[0][0] == 0.0)  # h_0 lies at the first cut


def test_train_accepts_a_sliding_window_for_an_lstm():
    """train(LSTM, TruncatedBPTT(3)) runs the sliding window: the first step's
    logged gradient norm equals the norm of value_and_grad(truncate=3) on the
    same batch (mean over the batch, rel 1e-12), which differs from the full-BPTT
    norm; BPTT(2, 3) (k1 ≠ k2, 2 ∤ T = 11) is passed through the same way. Only
    the wiring is checked (no loss reduction is claimed)."""
    from rnntheory.remedies import global_norm
    from rnntheory.tasks import TemporalOrder
    from rnntheory.training import TruncatedBPTT, train

    task = TemporalOrder(11)
    m = LSTM.init(task.n_in, 5, task.n_out, seed=4)
    batch = task.sample(3, np.random.default_rng(2))
    _, full = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    full_norm = global_norm({k: v / 3 for k, v in full.params().items()})
    for rem, arg in ((TruncatedBPTT(3), 3), (TruncatedBPTT(3, k1=2), (2, 3))):
        h = train(m, task, steps=1, batch_size=3, seed=2, eval_every=1, eval_size=4, remedies=(rem,))
        _, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask, truncate=arg)
        want = global_norm({k: v / 3 for k, v in g.params().items()})
        assert h.grad_norm[0] == pytest.approx(want, rel=1e-12)
        assert abs(want - full_norm) > 1e-9 * full_norm


@pytest.mark.parametrize("bad", [0, -2, (3, 2), (1, 2, 3), 2.5])
@pytest.mark.parametrize("cls", CELLS)
def test_invalid_truncation_is_refused(cls, bad):
    """A window that is not a positive integer k2 or a pair k2 ≥ k1 ≥ 1 is
    refused, naming `truncate`."""
    m = cls.init(1, 2, 2, seed=0)
    with pytest.raises((ValueError, TypeError), match="`truncate`"):
        m.value_and_grad(np.zeros((6, 1)), np.zeros(6, int), truncate=bad)


def test_verify_row_passes():
    """The `rnntheory verify` row for gated truncation (⟨g, v⟩ against central
    differences of the block losses with the state held fixed at e − k2) passes
    on its embedded models."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.gated import gated_truncation

    row = gated_truncation(CheckContext())
    assert row.passed and row.pairs == 24 and row.worst <= 1e-6
