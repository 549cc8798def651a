"""Models own their parameters: nothing done to an array after construction
changes a model, and every path of a model reads the same values.

A model holds read-only copies of the arrays it was given (``m.W_hh[0, 0] = 1``
raises), its attributes cannot be reassigned, and a new model comes only from
``replace``. The oracle throughout is a loop reference written from the
equations (``tests/naive.py`` for the Elman RNN and the gated cells, a loop
below for the generator), evaluated at the *pristine* parameters and
differentiated by central differences in float64: a model whose forward pass
and BPTT read different arrays fails it.
"""

from __future__ import annotations

import copy
import pickle
import zlib
from types import SimpleNamespace

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory.cells.generator import GeneratorRNN
from rnntheory.esn import ESN
from rnntheory.remedies import project_spectral_norm
from rnntheory.training.hessian_free import HessianFree, flatten_params, hf_step

T, N_IN, N, M = 6, 2, 3, 3


# ------------------------------------------------------------------ the models
def _arrays(kind: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Caller arrays for a model of ``kind`` (nonzero biases, real curvature)."""
    if kind in ("lstm", "gru"):
        G = 4 if kind == "lstm" else 3
        return {
            "weight_ih": rng.normal(0, 0.8, (G * N, N_IN)),
            "weight_hh": rng.normal(0, 0.8, (G * N, N)),
            "bias_ih": rng.normal(0, 0.3, G * N),
            "bias_hh": rng.normal(0, 0.3, G * N),
            "W_yh": rng.normal(0, 1.0, (M, N)),
            "b_y": rng.normal(0, 0.3, M),
        }
    out = {
        "W_hh": rng.normal(0, 1.1 / np.sqrt(N), (N, N)),
        "W_hx": rng.normal(0, 1.0, (N, N_IN)),
        "b_h": rng.normal(0, 0.3, N),
        "W_yh": rng.normal(0, 1.0, (M, N)),
        "b_y": rng.normal(0, 0.3, M),
    }
    if kind == "generator":
        out["W_hy"] = rng.normal(0, 1.0, (N, M))
    if kind == "leaky":
        out["alpha"] = rng.uniform(0.2, 0.8, N)
    return out


def _make(kind: str, arrays: dict[str, np.ndarray]):
    if kind == "lstm":
        return LSTM(**arrays)
    if kind == "gru":
        return GRU(**arrays)
    if kind == "generator":
        return GeneratorRNN(**arrays)
    if kind == "leaky":
        return ElmanRNN(**arrays, learn_alpha=True)
    return ElmanRNN(**arrays, form="pascanu" if kind == "pascanu" else "standard")


def _value_and_grad(kind: str, m, x, y, loss):
    if kind == "generator":
        return m.value_and_grad(x, y, mode="free", loss=loss)
    return m.value_and_grad(x, y, loss=loss)


def _generator_loss(p, x, y, loss):
    """Free-running generator from its equations: ``o^fb_1 = 0``, ``o^fb_t = o_{t−1}``."""
    h, fb, total = np.zeros(N), np.zeros(M), 0.0
    for t in range(x.shape[0]):
        h = np.tanh(p["W_hh"] @ h + p["W_hx"] @ x[t] + p["W_hy"] @ fb + p["b_h"])
        z = p["W_yh"] @ h + p["b_y"]
        if loss == "xent":
            e = np.exp(z - z.max())
            o = e / e.sum()
            total += -np.log(o[int(y[t])])
        else:
            o = z
            total += 0.5 * np.sum((z - y[t]) ** 2)
        fb = o
    return total


def _reference_loss(kind: str, p: dict[str, np.ndarray], x, y, loss) -> float:
    """The loss at parameters ``p`` from a loop written from the equations."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    if kind == "generator":
        return _generator_loss(p, x, y, loss)
    if kind in ("lstm", "gru"):
        m = SimpleNamespace(NAME="LSTM" if kind == "lstm" else "GRU", n_hidden=N, **p)
        return float(naive.gated_loss(m, x, y, loss))
    form = "pascanu" if kind == "pascanu" else "standard"
    return float(naive.loss_p({"alpha": None, **p}, "tanh", form, x, y, loss))


KINDS = ("standard", "pascanu", "leaky", "lstm", "gru", "generator")


def _data(rng: np.random.Generator, loss: str):
    x = rng.normal(0, 1.0, (T, N_IN))
    y = rng.integers(0, M, T) if loss == "xent" else rng.normal(0, 1.0, (T, M))
    return x, y


def _check_gradient(kind, p, E, grads, x, y, loss, rng, eps=1e-6):
    """``E`` is the reference loss at ``p`` and ``⟨g, v⟩`` its central difference along ``v``."""
    assert E == pytest.approx(_reference_loss(kind, p, x, y, loss), rel=1e-12, abs=1e-12)
    g = grads.params()
    assert set(g) == set(p)
    v = {k: rng.normal(size=a.shape) for k, a in p.items()}
    got = sum(float(np.vdot(g[k], v[k])) for k in p)
    plus = _reference_loss(kind, {k: p[k] + eps * v[k] for k in p}, x, y, loss)
    minus = _reference_loss(kind, {k: p[k] - eps * v[k] for k in p}, x, y, loss)
    fd = (plus - minus) / (2 * eps)
    assert got == pytest.approx(fd, rel=1e-6, abs=1e-8)


# ------------------------------------------------------------------ caller edits
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("kind", KINDS)
def test_caller_edits_after_construction_do_not_reach_the_model(kind, loss):
    """Every caller array edited in place after construction: the model computes
    the loss and gradient of the parameters it was given (the loop reference at
    the pristine values), forward and BPTT alike."""
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{loss}".encode()))
    arrays = _arrays(kind, rng)
    pristine = {k: a.copy() for k, a in arrays.items()}
    m = _make(kind, arrays)
    for a in arrays.values():
        a *= -3.0
        a += 0.5
    x, y = _data(rng, loss)
    E, g = _value_and_grad(kind, m, x, y, loss)
    _check_gradient(kind, pristine, E, g, x, y, loss, rng)
    # the forward pass agrees with the one BPTT differentiated
    tr = m.forward(x, mode="free", loss=loss) if kind == "generator" else m.forward(x)
    fresh = _make(kind, {k: a.copy() for k, a in pristine.items()})
    tr0 = fresh.forward(x, mode="free", loss=loss) if kind == "generator" else fresh.forward(x)
    np.testing.assert_array_equal(tr.h, tr0.h)
    np.testing.assert_array_equal(tr.y, tr0.y)


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_are_read_only_and_attributes_fixed(kind):
    rng = np.random.default_rng(7)
    m = _make(kind, _arrays(kind, rng))
    name = "weight_hh" if kind in ("lstm", "gru") else "W_hh"
    before = {k: p.copy() for k, p in m.params().items()}
    with pytest.raises(ValueError, match="read-only"):
        getattr(m, name)[0, 0] = 1.0
    for p in m.params().values():
        with pytest.raises(ValueError, match="read-only"):
            p[...] = 0.0
        with pytest.raises(ValueError, match="WRITEABLE"):
            p.flags.writeable = True
    with pytest.raises(ValueError, match="read-only"):
        np.copyto(getattr(m, name), 0.0)
    with pytest.raises(AttributeError, match=rf"cannot reassign `{name}` .*immutable.*replace"):
        setattr(m, name, np.zeros((3, 3)))
    with pytest.raises(AttributeError, match="cannot delete"):
        delattr(m, name)
    for k, p in m.params().items():
        np.testing.assert_array_equal(p, before[k])


@pytest.mark.parametrize("kind", KINDS)
def test_copies_and_pickles_own_their_parameters(kind):
    """``copy``/``deepcopy`` give the (immutable) model itself; a pickled model
    comes back through the constructor, read-only, with the same gradient."""
    rng = np.random.default_rng(11)
    m = _make(kind, _arrays(kind, rng))
    assert copy.copy(m) is m and copy.deepcopy(m) is m
    back = pickle.loads(pickle.dumps(m))
    x, y = _data(rng, "xent")
    E, g = _value_and_grad(kind, m, x, y, "xent")
    E2, g2 = _value_and_grad(kind, back, x, y, "xent")
    assert E2 == E
    for k, p in back.params().items():
        assert not p.flags.writeable
        np.testing.assert_array_equal(g2.params()[k], g.params()[k])


# ------------------------------------------------------------------ replace
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS), loss=st.sampled_from(["xent", "mse"]))
def test_gradient_matches_finite_differences_after_any_edit_by_replace(seed, kind, loss):
    """Property: whatever subset of parameters ``replace`` changes, forward and
    backward read the same values (``⟨g, v⟩`` is the central difference of the
    loop-reference loss at the new parameters)."""
    rng = np.random.default_rng(seed)
    arrays = _arrays(kind, rng)
    m = _make(kind, arrays)
    for a in arrays.values():  # edits of the caller's arrays must not matter either
        a[...] = rng.normal(size=a.shape)
    params = {k: p.copy() for k, p in m.params().items()}
    chosen = [k for k in params if rng.random() < 0.5] or [next(iter(params))]
    new = {k: params[k] + rng.normal(0, 0.3, params[k].shape) for k in chosen}
    if "alpha" in new:
        new["alpha"] = np.clip(new["alpha"], 0.05, 0.95)
    m2 = m.replace(**new)
    for k in new:  # the caller's new arrays, edited after replace, do not reach m2
        new[k] *= 5.0
    x, y = _data(rng, loss)
    E, g = _value_and_grad(kind, m2, x, y, loss)
    expected = params | {k: v / 5.0 for k, v in new.items()}
    _check_gradient(kind, expected, E, g, x, y, loss, rng)
    for k, p in m.params().items():  # the original is untouched
        np.testing.assert_array_equal(p, params[k])


def test_replace_shares_unchanged_parameters_and_copies_new_ones():
    m = ElmanRNN.init(2, 4, 3, seed=0)
    W = np.eye(4)
    m2 = m.replace(W_hh=W)
    assert m2.W_hx is m.W_hx  # already owned and immutable: no copy needed
    assert not np.shares_memory(m2.W_hh, W)
    W[0, 0] = 5.0
    assert m2.W_hh[0, 0] == 1.0


def test_read_only_view_of_a_writable_array_is_still_copied():
    """A read-only *view* does not make an array immutable: its base can still
    be written, so the model copies it."""
    base = np.eye(3)
    view = base.view()
    view.flags.writeable = False
    m = ElmanRNN(view, np.ones((3, 1)), np.zeros(3))
    base[0, 0] = 7.0
    assert m.W_hh[0, 0] == 1.0
    assert m.forward(np.zeros((1, 1))).h[1, 0] == 0.0  # tanh(W h0 + U x + b) with h0 = x = 0


# ------------------------------------------------------------------ library paths
def test_library_transforms_do_not_write_into_models():
    """Projection, Hessian-free and replace build new models; the old model's
    arrays stay bitwise what they were (and would raise if written)."""
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=2.0, seed=3)
    snap = {k: p.copy() for k, p in m.params().items()}
    p = project_spectral_norm(m, 0.5)
    assert float(np.linalg.norm(p.W_hh, 2)) <= 0.5
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4, 2)), rng.integers(0, 3, (5, 4))
    res = hf_step(m, x, y, loss="xent", hf=HessianFree(max_cg=5))
    assert not np.array_equal(flatten_params(res.model.params()), flatten_params(snap))
    for k, a in m.params().items():
        np.testing.assert_array_equal(a, snap[k])
        assert not a.flags.writeable


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_from_torch_model_does_not_alias_the_torch_module(kind):
    """``from_torch`` reads the module's weights; training the module afterwards
    (in-place updates, as every torch optimizer does) leaves the model alone."""
    torch = torch_or_skip()
    from rnntheory.torch_bridge import from_torch

    torch.manual_seed(0)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    mod = cls(N_IN, N, dtype=torch.float64)
    m = from_torch(mod)
    rng = np.random.default_rng(5)
    x, y = _data(rng, "mse")
    y = y[:, :N]
    E0, g0 = m.value_and_grad(x, y, loss="mse")
    with torch.no_grad():
        for prm in mod.parameters():
            prm.mul_(-2.0)
    E1, g1 = m.value_and_grad(x, y, loss="mse")
    assert E1 == E0
    for k, a in g0.params().items():
        np.testing.assert_array_equal(g1.params()[k], a)


# ------------------------------------------------------------------ ESN
def test_esn_owns_its_arrays():
    rng = np.random.default_rng(2)
    W = 0.4 * rng.normal(size=(5, 5)) / np.sqrt(5)
    W_in, W_fb, b = rng.normal(size=(5, 2)), np.zeros((5, 1)), rng.normal(size=5)
    esn = ESN(W, W_in, W_fb, b, leak_rate=0.7)
    u = rng.normal(size=(8, 2))
    # the ESN's recurrence from its definition, at the arrays as given
    x, want = np.zeros(5), []
    for t in range(8):
        x = 0.3 * x + 0.7 * np.tanh(W @ x + W_in @ u[t] + b)
        want.append(x)
    for a in (W, W_in, b):
        a *= 10.0
    np.testing.assert_allclose(esn.run(u), np.array(want), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="read-only"):
        esn.W[0, 0] = 1.0
    with pytest.raises(ValueError, match="WRITEABLE"):
        esn.W.flags.writeable = True
