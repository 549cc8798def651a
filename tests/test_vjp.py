"""``vjp`` of the cells: the cotangent of ``(x, params, h_0[, c_0]) ↦ h_1..h_T``.

Oracles: central finite differences of ``E = Σ_t dh_t·h_t (+ dc_t·c_t)`` computed
with the loop references of ``tests/naive.py`` (no kernel of the library), and
PyTorch autograd on the recurrences written in torch (``oracle`` marker).
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import forward as elman_forward_ref
from naive import gru_forward, lstm_forward
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN

T, B, N_IN, N = 5, 3, 2, 4
EPS = 1e-6

ELMAN_KINDS = {
    "standard": {},
    "pascanu": {"form": "pascanu"},
    "leaky": {"alpha": 0.3},
    "leaky-pascanu": {"form": "pascanu", "alpha": [0.1, 0.5, 0.9, 0.0]},
    "learned-alpha": {"alpha": [0.2, 0.4, 0.6, 0.8], "learn_alpha": True},
    "relu": {"activation": "relu", "scheme": "identity", "scale": 0.9},
    "sigmoid-pascanu": {"activation": "sigmoid", "form": "pascanu"},
}


def elman(kind: str, dtype=np.float64, readout=None) -> ElmanRNN:
    kw = dict(ELMAN_KINDS[kind])
    kw.setdefault("scheme", "gaussian")
    kw.setdefault("scale", 1.1)
    m = ElmanRNN.init(N_IN, N, readout, seed=3, dtype=dtype, **kw)
    rng = np.random.default_rng(7)
    return m.replace(b_h=rng.normal(0, 0.3, N).astype(dtype))


def model(kind: str, dtype=np.float64, readout=None):
    if kind == "lstm":
        return LSTM.init(N_IN, N, readout, seed=3, dtype=dtype)
    if kind == "gru":
        return GRU.init(N_IN, N, readout, seed=3, dtype=dtype)
    return elman(kind, dtype, readout)


KINDS = [*ELMAN_KINDS, "lstm", "gru"]


def ref_states(m, x, h0, c0):
    """(h, c) of one sequence by the loop references (c None but for the LSTM)."""
    if isinstance(m, LSTM):
        return lstm_forward(m, x, h0, c0)
    if isinstance(m, GRU):
        return gru_forward(m, x, h0), None
    return elman_forward_ref(m, x, h0), None


def ref_E(m, x, h0, c0, dh, dc):
    h, c = ref_states(m, x, h0, c0)
    e = float(np.sum(dh * h[1:]))
    if dc is not None:
        e += float(np.sum(dc * c[1:]))
    return e


def central(f, v):
    """Central differences of the scalar ``f`` at the array ``v``."""
    v = np.array(v, dtype=np.float64)
    out = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        p, q = v.copy(), v.copy()
        p[i] += EPS
        q[i] -= EPS
        out[i] = (f(p) - f(q)) / (2 * EPS)
    return out


def data(seed, batched=False):
    rng = np.random.default_rng(seed)
    shape = (T, B) if batched else (T,)
    x = rng.normal(size=(*shape, N_IN))
    dh = rng.normal(size=(*shape, N))
    dc = rng.normal(size=(*shape, N))
    h0 = rng.uniform(-0.5, 0.5, size=(*shape[1:], N))
    c0 = rng.uniform(-0.5, 0.5, size=(*shape[1:], N))
    return x, dh, dc, h0, c0


def close(a, b, tol=1e-7):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, float(np.max(np.abs(b)))), (a, b)


@pytest.mark.parametrize(("kind", "with_dc"), [*((k, False) for k in KINDS), ("lstm", True)])
def test_vjp_matches_central_differences(kind, with_dc):
    m = model(kind)
    x, dh, dc, h0, c0 = data(11)
    is_lstm = kind == "lstm"
    c0 = c0 if is_lstm else None
    dc = dc if with_dc else None
    g, dx = m.vjp(x, dh, h0=h0, c0=c0, dc=dc)
    close(dx, central(lambda v: ref_E(m, v, h0, c0, dh, dc), x))
    close(g.flow[0], central(lambda v: ref_E(m, x, v, c0, dh, dc), h0))
    if is_lstm:
        close(g.flow_c[0], central(lambda v: ref_E(m, x, h0, v, dh, dc), c0))
    for name, value in g.params().items():
        p0 = m.params()[name]
        close(value, central(lambda v, name=name: ref_E(m.replace(**{name: v}), x, h0, c0, dh, dc), p0))
    # flow[k] = ∂E/∂h_k for every k: the direct dh_k plus what the same vjp run
    # from step k on (h_k as its h0) sends back to its start
    h, c = ref_states(m, x, h0, c0)
    for k in (1, T - 1):
        kw = {"c0": c[k], "dc": None if dc is None else dc[k:]} if is_lstm else {}
        g_k, _ = m.vjp(x[k:], dh[k:], h0=h[k], **kw)
        close(g.flow[k], g_k.flow[0] + dh[k - 1], 1e-12)
    close(g.flow[T], dh[-1], 0.0)
    assert g.W_yh is None and g.b_y is None


@pytest.mark.parametrize("kind", KINDS)
def test_vjp_batch_is_the_sum_of_its_sequences(kind):
    m = model(kind, readout=3)  # a readout is ignored by vjp
    x, dh, dc, h0, c0 = data(12, batched=True)
    is_lstm = kind == "lstm"
    kw = {"c0": c0, "dc": dc} if is_lstm else {}
    g, dx = m.vjp(x, dh, h0=h0, **kw)
    assert dx.shape == x.shape and g.flow.shape == (T + 1, B, N)
    total = {k: 0.0 for k in g.params()}
    for b in range(B):
        kb = {"c0": c0[b], "dc": dc[:, b]} if is_lstm else {}
        gb, dxb = m.vjp(x[:, b], dh[:, b], h0=h0[b], **kb)
        close(dx[:, b], dxb, 1e-12)
        close(g.flow[:, b], gb.flow, 1e-12)
        if is_lstm:
            close(g.flow_c[:, b], gb.flow_c, 1e-12)
        for k, v in gb.params().items():
            total[k] = total[k] + v
    for k, v in g.params().items():
        close(v, total[k], 1e-12)
    # and the batch against differences of the reference, on the input weights
    name = "W_hx" if not isinstance(m, LSTM | GRU) else "weight_ih"

    def E(v):
        mm = m.replace(**{name: v})
        return sum(ref_E(mm, x[:, b], h0[b], c0[b] if is_lstm else None, dh[:, b], dc[:, b] if is_lstm else None)
                   for b in range(B))

    close(g.params()[name], central(E, m.params()[name]))


@pytest.mark.parametrize("kind", ["standard", "pascanu", "lstm", "gru"])
def test_vjp_float32_agrees_with_float64(kind):
    m64 = model(kind)
    m32 = m64.replace(**{k: v.astype(np.float32) for k, v in m64.params().items()})
    x, dh, _, h0, _ = data(13)
    g64, dx64 = m64.vjp(x, dh, h0=h0)
    g32, dx32 = m32.vjp(x.astype(np.float32), dh.astype(np.float32), h0=h0.astype(np.float32))
    assert dx32.dtype == np.float32 and g32.flow.dtype == np.float32
    close(dx32, dx64, 1e-4)
    close(g32.flow, g64.flow, 1e-4)
    for k, v in g64.params().items():
        close(g32.params()[k], v, 1e-4)


def test_vjp_zero_cotangent_gives_zero_gradients():
    m = model("lstm")
    x, dh, _, h0, c0 = data(14)
    g, dx = m.vjp(x, np.zeros_like(dh), h0=h0, c0=c0)
    assert not dx.any() and not g.flow.any() and not g.flow_c.any()
    assert not any(v.any() for v in g.params().values())


@pytest.mark.parametrize(
    ("kind", "kwargs", "exc", "match"),
    [
        ("standard", {"dh": np.ones((T, N + 1))}, ValueError, r"`dh` must have the shape of the states h_1..h_T, \(5, 4\)"),
        ("lstm", {"dh": np.ones((T - 1, N))}, ValueError, r"`dh` must have the shape .* got shape \(4, 4\)"),
        ("gru", {"dh": np.ones((T, 1, N))}, ValueError, r"`dh` must have the shape .* \(5, 4\), got shape \(5, 1, 4\)"),
        ("standard", {"dh": np.ones(N)}, ValueError, r"`dh` must have 2 or 3 dimension"),
        ("pascanu", {"dh": np.full((T, N), np.nan)}, ValueError, r"`dh` must be finite, got 20 NaN/inf"),
        ("lstm", {"dc": np.full((T, N), np.inf)}, ValueError, r"`dc` must be finite"),
        ("lstm", {"dc": np.ones((T, N + 1))}, ValueError, r"`dc` must have the shape"),
        ("gru", {"dh": np.ones((T, N), dtype=np.int64)}, TypeError, r"`dh` must have dtype float32 or float64"),
        ("standard", {"dh": np.ones((T, N), dtype=np.complex128)}, TypeError, r"`dh` must be a real"),
        ("standard", {"dc": np.ones((T, N))}, ValueError, r"`dc` applies to the LSTM only"),
        ("gru", {"c0": np.ones(N)}, ValueError, r"`c0` applies to the LSTM only"),
        ("lstm", {"h0": np.ones(N + 1)}, ValueError, r"`h0` must have shape \(4,\)"),
        ("gru", {"x": np.full((T, N_IN), np.nan)}, ValueError, r"`x` must be finite"),
        ("lstm", {"x": np.ones((0, N_IN)), "dh": np.ones((0, N))}, ValueError, r"`x` must have at least one time step"),
    ],
)
def test_vjp_refuses_bad_input(kind, kwargs, exc, match):
    m = model(kind)
    args = {"x": np.ones((T, N_IN)), "dh": np.ones((T, N)), **kwargs}
    with pytest.raises(exc, match=match):
        m.vjp(**args)


@pytest.mark.parametrize("kind", ["standard", "lstm", "gru"])
def test_vjp_reach_check_refuses_huge_x(kind):
    m = model(kind)
    w = "W_hx" if kind == "standard" else "weight_ih"
    m = m.replace(**{w: m.params()[w] * 1e10})
    with pytest.raises(ValueError, match=r"`x`"):
        m.vjp(np.full((T, N_IN), 1e300), np.ones((T, N)))


def test_vjp_dh_beyond_float32_is_refused_for_a_float32_model():
    m = model("gru", dtype=np.float32)
    with pytest.raises(ValueError, match=r"`dh` has values beyond float32's range"):
        m.vjp(np.ones((T, N_IN), np.float32), np.full((T, N), 1e39))


def test_vjp_extremes():
    """T = 1 (flow[0] is the one-step transpose product), subnormal and huge
    cotangents (linear in dh: exact scaling by powers of two)."""
    m = model("standard")
    x, dh, _, h0, _ = data(15)
    g1, dx1 = m.vjp(x[:1], dh[:1], h0=h0)
    close(dx1, central(lambda v: ref_E(m, v, h0, None, dh[:1], None), x[:1]))
    close(g1.flow[0], central(lambda v: ref_E(m, x[:1], v, None, dh[:1], None), h0))
    base, dxb = m.vjp(x, dh, h0=h0)
    for scale in (2.0**-1070, 2.0**1000):
        g, dx = m.vjp(x, dh * scale, h0=h0)
        assert np.all(np.isfinite(dx)) and np.all(np.isfinite(g.flow))
        if scale > 1:
            np.testing.assert_array_equal(dx, dxb * scale)
            np.testing.assert_array_equal(g.W_hh, base.W_hh * scale)


# --------------------------------------------------------------------------- torch autograd


def _torch_states(torch, m, x, h0, c0):
    """The recurrence of ``m`` written in torch (float64), states h_1..h_T (and c)."""
    t = lambda a: torch.tensor(np.asarray(a, np.float64), requires_grad=True)  # noqa: E731
    P = {k: t(v) for k, v in m.params().items()}
    xs, h = t(x), t(h0)
    leaves = {"x": xs, "h0": h, **P}
    c = None
    if isinstance(m, LSTM):
        c = t(c0)
        leaves["c0"] = c
    hs, cs = [], []
    n = m.n_hidden
    for i in range(x.shape[0]):
        if isinstance(m, LSTM):
            a = P["weight_ih"] @ xs[i] + P["bias_ih"] + P["weight_hh"] @ h + P["bias_hh"]
            ig, fg, gg, og = (torch.sigmoid(a[:n]), torch.sigmoid(a[n:2 * n]), torch.tanh(a[2 * n:3 * n]),
                              torch.sigmoid(a[3 * n:]))
            c = fg * c + ig * gg
            h = og * torch.tanh(c)
            cs.append(c)
        elif isinstance(m, GRU):
            gi = P["weight_ih"] @ xs[i] + P["bias_ih"]
            gh = P["weight_hh"] @ h + P["bias_hh"]
            r = torch.sigmoid(gi[:n] + gh[:n])
            z = torch.sigmoid(gi[n:2 * n] + gh[n:2 * n])
            nn_ = torch.tanh(gi[2 * n:] + r * gh[2 * n:])
            h = (1 - z) * nn_ + z * h
        else:
            f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[m.activation.name]
            if m.form == "standard":
                g = f(P["W_hh"] @ h + P["W_hx"] @ xs[i] + P["b_h"])
            else:
                g = P["W_hh"] @ f(h) + P["W_hx"] @ xs[i] + P["b_h"]
            if m.alpha is not None:
                al = P["alpha"] if m.learn_alpha else torch.tensor(np.asarray(m.alpha, np.float64))
                h = al * h + (1 - al) * g
            else:
                h = g
        hs.append(h)
    return leaves, torch.stack(hs), (torch.stack(cs) if cs else None)


@pytest.mark.oracle
@pytest.mark.parametrize("kind", KINDS)
def test_vjp_matches_torch_autograd(kind):
    torch = torch_or_skip()
    m = model(kind)
    x, dh, dc, h0, c0 = data(16)
    is_lstm = kind == "lstm"
    leaves, hs, cs = _torch_states(torch, m, x, h0, c0)
    E = (hs * torch.tensor(dh)).sum()
    if is_lstm:
        E = E + (cs * torch.tensor(dc)).sum()
    E.backward()
    g, dx = m.vjp(x, dh, h0=h0, **({"c0": c0, "dc": dc} if is_lstm else {}))
    close(dx, leaves["x"].grad.numpy(), 1e-12)
    close(g.flow[0], leaves["h0"].grad.numpy(), 1e-12)
    if is_lstm:
        close(g.flow_c[0], leaves["c0"].grad.numpy(), 1e-12)
    for name, value in g.params().items():
        close(value, leaves[name].grad.numpy(), 1e-12)
