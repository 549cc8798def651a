"""``batch_first=True`` on the public passes: a PyTorch user's ``(B, T, n_in)``
batch gives exactly what the time-major call gives (traces and flows stay
time-major, ``dx`` comes back batch-first); against torch modules built with
``batch_first=True``; and the layouts it refuses."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnntheory import GRU, LSTM, BidirectionalRNN, ElmanRNN, StackedRNN

B, T, N_IN, N, N_OUT = 3, 7, 2, 4, 3


def _bf(a: np.ndarray) -> np.ndarray:
    """The batch-first layout of a time-major array (a strided view, as a user's would often be)."""
    return np.swapaxes(a, 0, 1)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, N_IN))
    classes = rng.integers(0, N_OUT, size=(T, B))
    targets = rng.normal(size=(T, B, N_OUT))
    mask = rng.random((T, B))
    dh = rng.normal(size=(T, B, N))
    return x, classes, targets, mask, dh


def _same_tree(a: object, b: object) -> None:
    """Bitwise equality of two (nested) gradient records or traces."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        np.testing.assert_array_equal(a, b, strict=True)
    elif isinstance(a, tuple | list):
        assert isinstance(b, tuple | list) and len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _same_tree(u, v)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for f in a.__dataclass_fields__:
            _same_tree(getattr(a, f), getattr(b, f))
    else:
        assert a == b


CELLS = {
    "elman": lambda: ElmanRNN.init(N_IN, N, N_OUT, scheme="gaussian", seed=1),
    "elman-leaky-pascanu": lambda: ElmanRNN.init(N_IN, N, N_OUT, scheme="gaussian", seed=2, form="pascanu", alpha=0.3),
    "lstm": lambda: LSTM.init(N_IN, N, N_OUT, seed=3),
    "gru": lambda: GRU.init(N_IN, N, N_OUT, seed=4),
    "elman-f32": lambda: ElmanRNN.init(N_IN, N, N_OUT, scheme="gaussian", seed=5, dtype=np.float32),
}


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_cells_batch_first_is_the_time_major_call_bitwise(kind):
    """Elman, LSTM, GRU: forward, value_and_grad (xent with mask, mse), loss and vjp on
    ``x.swapaxes(0, 1)`` with batch_first=True equal the time-major call exactly;
    the trace and flows are time-major, ``dx`` is ``(B, T, n_in)`` (and equals the
    time-major ``dx`` transposed)."""
    m = CELLS[kind]()
    x, classes, targets, mask, dh = _data()
    x, targets, dh = x.astype(m.dtype), targets.astype(m.dtype), dh.astype(m.dtype)
    h0 = np.random.default_rng(9).normal(size=(B, N)).astype(m.dtype) * 0.5

    tr, tr_bf = m.forward(x, h0), m.forward(_bf(x), h0, batch_first=True)
    assert tr_bf.h.shape == (T + 1, B, N)
    _same_tree(tr, tr_bf)

    for loss, y in (("xent", classes), ("mse", targets)):
        E, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
        E_bf, g_bf = m.value_and_grad(_bf(x), _bf(y), loss=loss, mask=_bf(mask), h0=h0, batch_first=True)
        assert E_bf == E
        assert g_bf.flow.shape == (T + 1, B, N)
        _same_tree(g, g_bf)
        if hasattr(m, "loss"):
            assert m.loss(_bf(x), _bf(y), loss=loss, mask=_bf(mask), h0=h0, batch_first=True) == m.loss(
                x, y, loss=loss, mask=mask, h0=h0
            )

    kw = {"dc": dh[::-1].copy()} if kind == "lstm" else {}
    kw_bf = {"dc": _bf(kw["dc"])} if kw else {}
    g, dx = m.vjp(x, dh, h0=h0, **kw)
    g_bf, dx_bf = m.vjp(_bf(x), _bf(dh), h0=h0, batch_first=True, **kw_bf)
    _same_tree(g, g_bf)
    assert dx_bf.shape == (B, T, N_IN) and dx_bf.flags.c_contiguous
    np.testing.assert_array_equal(dx_bf, _bf(dx), strict=True)


def test_batch_first_vjp_dx_is_the_finite_difference_gradient():
    """``dx`` of vjp with batch_first=True is ``∂(Σ dh·h)/∂x`` in the (B, T, n_in) layout:
    a central difference at one entry of the batch-first input (b = 2, t = 5, i = 1), not
    the entry (t = 2, b = 5) that a swapped layout would report."""
    m = GRU.init(N_IN, N, None, seed=6)
    rng = np.random.default_rng(11)
    xb = rng.normal(size=(B, 6, N_IN))
    dhb = rng.normal(size=(B, 6, N))
    _, dx = m.vjp(xb, dhb, batch_first=True)

    def E(x: np.ndarray) -> float:
        return float(np.sum(dhb * np.swapaxes(m.forward(x, batch_first=True).h[1:], 0, 1)))

    eps = 1e-6
    for b, t, i in ((2, 5, 1), (0, 0, 0), (1, 3, 1)):
        xp, xm = xb.copy(), xb.copy()
        xp[b, t, i] += eps
        xm[b, t, i] -= eps
        assert dx[b, t, i] == pytest.approx((E(xp) - E(xm)) / (2 * eps), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_stacked_batch_first_is_the_time_major_call_bitwise(cell):
    """StackedRNN (L = 2): forward, value_and_grad and loss with batch_first=True equal the
    time-major call exactly; ``h0`` keeps PyTorch's ``(L, B, n)``; the whole-state flow is
    time-major."""
    m = StackedRNN.init(N_IN, N, N_OUT, cell=cell, n_layers=2, seed=7)
    x, classes, targets, mask, _ = _data(1)
    h0 = np.random.default_rng(8).normal(size=(2, B, N)) * 0.5
    _same_tree(m.forward(x, h0), m.forward(_bf(x), h0, batch_first=True))
    for loss, y in (("xent", classes), ("mse", targets)):
        E, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
        E_bf, g_bf = m.value_and_grad(_bf(x), _bf(y), loss=loss, mask=_bf(mask), h0=h0, batch_first=True)
        assert E_bf == E
        assert g_bf.flow.shape == (T + 1, B, m.state_size)
        _same_tree(g, g_bf)
        assert m.loss(_bf(x), _bf(y), loss=loss, mask=_bf(mask), h0=h0, batch_first=True) == m.loss(
            x, y, loss=loss, mask=mask, h0=h0
        )


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_bidirectional_batch_first_is_the_time_major_call_bitwise(cell):
    """BidirectionalRNN.forward with batch_first=True: every direction's trace, the
    output and the readout equal the time-major call's exactly (all time-major)."""
    m = BidirectionalRNN.init(N_IN, N, N_OUT, cell=cell, n_layers=2, seed=8)
    x = _data(2)[0]
    tr, tr_bf = m.forward(x), m.forward(_bf(x), batch_first=True)
    _same_tree(tr, tr_bf)
    assert tr_bf.output.shape == (T, B, 2 * N)
    np.testing.assert_array_equal(tr_bf.output, tr.output, strict=True)


def test_batch_first_extremes_behave_as_time_major():
    """Subnormal and huge inputs give the time-major result bitwise (or its refusal, with
    the same message); NaN and empty batches are refused naming ``x``; T = 1 and B = 1 work."""
    m = ElmanRNN.init(N_IN, N, N_OUT, scheme="gaussian", seed=1)
    x = np.full((T, B, N_IN), 5e-324)
    _same_tree(m.forward(x), m.forward(_bf(x), batch_first=True))
    x1 = np.random.default_rng(0).normal(size=(1, 1, N_IN))
    _same_tree(m.forward(x1), m.forward(x1, batch_first=True))
    bad = np.random.default_rng(0).normal(size=(B, T, N_IN))
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"`x`.*finite"):
        m.forward(bad, batch_first=True)
    for big in (1e300, 1.7e308):  # refused or run: as the time-major call
        xb = np.full((B, T, N_IN), big)
        xb[0, 0, 0] = -big
        try:
            expected = m.forward(_bf(xb).copy())
        except ValueError as exc:
            with pytest.raises(type(exc), match="^" + re.escape(str(exc)) + "$"):
                m.forward(xb, batch_first=True)
        else:
            _same_tree(expected, m.forward(xb, batch_first=True))
    relu = ElmanRNN.init(N_IN, N, N_OUT, activation="relu", scheme="gaussian", seed=1)
    with pytest.raises(ValueError, match="`x`"):
        relu.forward(np.full((B, T, N_IN), 1.7e308), batch_first=True)
    with pytest.raises(ValueError, match=r"`x` must have at least one time step \(T >= 1\), got shape \(3, 0, 2\)"):
        m.forward(np.zeros((B, 0, N_IN)), batch_first=True)
    with pytest.raises(ValueError, match=r"`x` must hold at least one sequence, got shape \(0, 7, 2\)"):
        m.forward(np.zeros((0, T, N_IN)), batch_first=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ElmanRNN.init(N_IN, N, N_OUT, seed=0),
        lambda: LSTM.init(N_IN, N, N_OUT, seed=0),
        lambda: GRU.init(N_IN, N, N_OUT, seed=0),
        lambda: StackedRNN.init(N_IN, N, N_OUT, cell="lstm", n_layers=2, seed=0),
        lambda: BidirectionalRNN.init(N_IN, N, N_OUT, cell="gru", n_layers=1, seed=0),
    ],
)
def test_batch_first_refusals(make):
    """A 2-D x, a non-bool batch_first, and targets, masks or cotangents left time-major
    are refused with messages naming the argument; np.bool_ is accepted."""
    m = make()
    x, classes, targets, mask, dh = _data()
    xb = _bf(x)
    with pytest.raises(ValueError, match=r"`x` must be a batch: batch_first=True needs \(B, T, n_in\), got shape \(7, 2\)"):
        m.forward(x[:, 0], batch_first=True)
    for bad in (1, "yes", None, np.array([True])):
        with pytest.raises(TypeError, match="`batch_first` must be a bool, got"):
            m.forward(xb, batch_first=bad)
    with pytest.raises(ValueError, match=r"`x` must have 2 input features in its last axis, got shape \(3, 7, 5\)"):
        m.forward(np.zeros((B, T, 5)), batch_first=True)
    _same_tree(m.forward(xb, batch_first=np.True_), m.forward(x))
    if isinstance(m, BidirectionalRNN):
        return
    with pytest.raises(ValueError, match=r"`y` must have shape \(3, 7\) for loss='xent' with batch_first=True"):
        m.value_and_grad(xb, classes, batch_first=True)
    with pytest.raises(ValueError, match=r"`y` must have shape \(3, 7, 3\) for loss='mse' with batch_first=True"):
        m.value_and_grad(xb, targets, loss="mse", batch_first=True)
    with pytest.raises(ValueError, match=r"`mask` must have shape \(3, 7\) with batch_first=True"):
        m.value_and_grad(xb, _bf(classes), mask=mask, batch_first=True)
    with pytest.raises(ValueError, match=r"`y` must have shape \(B, T, \.\.\.\) = \(3, 7, \.\.\.\)"):
        m.value_and_grad(xb, classes[0], loss="hinge", batch_first=True)
    with pytest.raises(ValueError, match="`loss` must be one of"):
        m.value_and_grad(xb, _bf(classes), loss="hinge", batch_first=True)
    if isinstance(m, StackedRNN):
        return
    with pytest.raises(ValueError, match=r"`dh` must have shape \(3, 7, 4\) with batch_first=True"):
        m.vjp(xb, dh, batch_first=True)
    if isinstance(m, LSTM):
        with pytest.raises(ValueError, match=r"`dc` must have shape \(3, 7, 4\) with batch_first=True"):
            m.vjp(xb, _bf(dh), dc=dh, batch_first=True)


# ------------------------------------------------------------------ torch oracle


def _torch():
    from oracle import torch_or_skip

    return torch_or_skip()


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_torch_batch_first_module_parity(name, layers, bidirectional):
    """A torch module with batch_first=True, loaded by from_torch, fed the same (B, T, n_in)
    batch with batch_first=True: the top-layer output equals the module's (transposed to
    time-major), float64, 1e-12."""
    torch = _torch()
    from rnntheory import from_torch

    torch.manual_seed(layers + 2 * bidirectional)
    mod = getattr(torch.nn, name)(N_IN, N, num_layers=layers, bidirectional=bidirectional, batch_first=True,
                                  dtype=torch.float64)
    m = from_torch(mod)
    xb = np.random.default_rng(4).normal(size=(B, T, N_IN))
    with torch.no_grad():
        out, _ = mod(torch.tensor(xb))
    tr = m.forward(xb, batch_first=True)
    mine = tr.output if bidirectional else tr.h[1:]
    np.testing.assert_allclose(_bf(mine), out.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_torch_batch_first_vjp_parity(name):
    """vjp with batch_first=True against torch autograd on a batch_first module: ``dx`` is
    torch's ``x.grad`` of ``Σ out·dh`` in the same (B, T, n_in) layout, and the weight
    gradients are torch's, 1e-12."""
    torch = _torch()
    from rnntheory import from_torch

    torch.manual_seed(5)
    mod = getattr(torch.nn, name)(N_IN, N, batch_first=True, dtype=torch.float64)
    m = from_torch(mod)
    rng = np.random.default_rng(6)
    xb, dhb = rng.normal(size=(B, T, N_IN)), rng.normal(size=(B, T, N))
    xt = torch.tensor(xb, requires_grad=True)
    out, _ = mod(xt)
    (out * torch.tensor(dhb)).sum().backward()
    g, dx = m.vjp(xb, dhb, batch_first=True)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    w_ih = g.W_hx if name == "RNN" else g.weight_ih
    np.testing.assert_allclose(w_ih, mod.weight_ih_l0.grad.numpy(), rtol=1e-12, atol=1e-12)
