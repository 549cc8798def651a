"""Gauss–Newton products and Hessian-free for the LSTM and the GRU.

Oracles: explicit Jacobians ``J_z``, ``J_s`` of the readout outputs and the
states with respect to every parameter, column by column by complex step through
the loop reference ``naive.gated_states_p`` (exact to rounding, independent of
the kernels); central differences of the loop reference's loss; PyTorch
``torch.func.jvp``/``vjp`` of ``torch.nn.LSTMCell``/``GRUCell``.
"""

from __future__ import annotations

import math
import warnings

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import GRU, LSTM, ElmanRNN
from rnntheory._oracles import complex_step_jacobian
from rnntheory.cells.curvature import check_gauss_newton_model
from rnntheory.tasks import make_task
from rnntheory.training import (
    GaussNewton,
    HessianFree,
    gauss_newton_product,
    hf_step,
    train,
    truncated_cg,
)
from rnntheory.training.hessian_free import flatten_params, unflatten_params

H_CS = 1e-30  # complex-step size
CELLS = {"lstm": LSTM, "gru": GRU}


# ---------------------------------------------------------------- oracles
def _pdict(model, theta):
    out, i = {}, 0
    for k, p in model.params().items():
        out[k] = theta[i : i + p.size].reshape(p.shape)
        i += p.size
    if "W_yh" not in out:
        n = model.n_hidden
        out["W_yh"], out["b_y"] = np.eye(n), np.zeros(n)
    return out


def _cell(model):
    return "lstm" if isinstance(model, LSTM) else "gru"


def _outputs(model, theta, x, h0=None, c0=None):
    """``z_t (T, C)`` and the state ``s_t (T, n or 2n)`` (LSTM: ``(h_t, c_t)``) of one
    sequence, complex-safe."""
    p = _pdict(model, theta)
    hs, cs = naive.gated_states_p(_cell(model), p, x, h0, c0)
    zs = hs @ p["W_yh"].T + p["b_y"]
    s = hs if cs is None else np.concatenate([hs, cs], axis=1)
    return zs, s


def _jacobians(model, x, h0=None, c0=None):
    """``z (T, C)``, explicit ``J_z (T, C, N)`` and ``J_s (T, ·, N)`` by complex step."""
    theta = flatten_params(model.params())
    z0, _ = _outputs(model, theta.astype(complex), x, h0, c0)
    C = z0.shape[-1]
    J = complex_step_jacobian(lambda th: np.concatenate(_outputs(model, th, x, h0, c0), axis=-1), theta, H_CS)
    return z0.real, J[..., :C, :], J[..., C:, :]


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gn_matrix(model, x, loss, mask, h0=None, c0=None):
    """``Σ_b Σ_t J_zᵀ H_L J_z`` and ``Σ_b Σ_t J_sᵀ J_s`` as explicit matrices (x batched)."""
    G = S = 0.0
    for b in range(x.shape[1]):
        z, Jz, Js = _jacobians(model, x[:, b], None if h0 is None else h0[b], None if c0 is None else c0[b])
        for t in range(x.shape[0]):
            w = mask[t, b]
            if loss == "xent":
                p = _softmax(z[t])
                HL = w * (np.diag(p) - np.outer(p, p))
            else:
                HL = w * np.eye(z.shape[1])
            G = G + Jz[t].T @ HL @ Jz[t]
            S = S + Js[t].T @ Js[t]
    return G, S


def _targets(rng, model, loss, T, B):
    if loss == "xent":
        return rng.integers(0, model.n_out, (T, B))
    return rng.normal(size=(T, B, model.n_out))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _model(cell, n_in, n, n_out, seed, scale=1.0):
    """A model with weights scaled by ``scale`` (beyond PyTorch's init, to reach saturation)."""
    m = CELLS[cell].init(n_in, n, n_out, seed=seed)
    return m.replace(**{k: p * scale for k, p in m.params().items()})


# ---------------------------------------------------------------- Gv: explicit matrix
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("n_out", [3, None])
def test_gv_equals_the_explicit_complex_step_matrix(cell, loss, n_out):
    """``G v = Σ_{b,t} J_{z_t}ᵀ H_{L,t} J_{z_t} v + λ_s Σ_{b,t} J_{s_t}ᵀ J_{s_t} v`` with
    ``H_{L,t} = w_t(diag p_t − p_t p_tᵀ)`` (xent) or ``w_t I`` (mse), the state
    ``s_t = (h_t, c_t)`` for the LSTM and ``h_t`` for the GRU, the Jacobians built
    column by column by complex step through the loop reference; a batch of 3
    with random initial states ``h0`` (and ``c0``), random mask weights (one
    zero), ``λ_s = 0.7``, with and without a readout. ``lam_struct=0`` per call
    gives ``G`` alone; the counter counts each product."""
    rng = np.random.default_rng(7 + (cell == "gru") + 2 * (loss == "mse"))
    m = _model(cell, 2, 3, n_out, seed=int(rng.integers(1000)), scale=2.0)
    T, B = 4, 3
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 1.5, (T, B))
    mask[1, 0] = 0.0
    h0 = rng.normal(size=(B, 3)) * 0.5
    c0 = rng.normal(size=(B, 3)) if cell == "lstm" else None
    Gm, Sm = _gn_matrix(m, x, loss, mask, h0, c0)
    kw = {"c0": c0} if cell == "lstm" else {}
    G = m.gauss_newton(x, y, loss=loss, mask=mask, h0=h0, lam_struct=0.7, **kw)
    assert G.n_params == Gm.shape[0] == sum(p.size for p in m.params().values())
    vs = rng.normal(size=(2, G.n_params))
    for v in vs:
        assert _rel(G(v), (Gm + 0.7 * Sm) @ v) <= 1e-10
        assert _rel(G(v, lam_struct=0.0), Gm @ v) <= 1e-10
    assert G.products == 4
    same = GaussNewton(m, x, y, loss=loss, mask=mask, h0=h0, lam_struct=0.7, **kw)(vs[0])
    np.testing.assert_array_equal(G(vs[0]), same)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gv_single_sequence_dict_form_and_float32(cell):
    """A single sequence ``(T, n_in)`` gives the explicit matrix's product; a dict
    ``v`` returns a dict keyed like ``model.params()`` with the flat product's
    numbers; a float32 model agrees with the float64 product of the same rounded
    weights to float32 accuracy (relative 1e-4)."""
    rng = np.random.default_rng(31)
    m = _model(cell, 2, 4, 2, seed=3, scale=1.5)
    x = rng.normal(size=(6, 2))
    y = rng.integers(0, 2, 6)
    Gm, _ = _gn_matrix(m, x[:, None], "xent", np.ones((6, 1)))
    v = rng.normal(size=Gm.shape[0])
    flat = gauss_newton_product(m, x, y, v, loss="xent")
    assert _rel(flat, Gm @ v) <= 1e-10
    d = gauss_newton_product(m, x, y, unflatten_params(m, v), loss="xent")
    assert list(d) == list(m.params())
    np.testing.assert_allclose(flatten_params(d), flat, rtol=1e-12, atol=1e-14)
    m32 = m.replace(**{k: p.astype(np.float32) for k, p in m.params().items()})
    m64 = m32.replace(**{k: p.astype(np.float64) for k, p in m32.params().items()})
    xb = rng.normal(size=(15, 3, 2))
    yb = rng.integers(0, 2, (15, 3))
    w = rng.normal(size=Gm.shape[0])
    a = GaussNewton(m32, xb.astype(np.float32), yb, loss="xent", lam_struct=0.1)(w)
    b = GaussNewton(m64, xb, yb, loss="xent", lam_struct=0.1)(w)
    assert _rel(a, b) < 1e-4


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gv_is_the_derivative_of_the_linearised_gradient(cell):
    """``G v = d/dε ∇E_lin(θ₀ + εv)`` with ``E_lin`` the loss of the linearised
    outputs ``z₀ + J_z(θ − θ₀)``; here taken along ``v`` by central differences
    of ``θ ↦ J_zᵀ ∇L(z₀ + ε J_z v)``, with ``J_z`` the explicit complex-step matrix
    (mse, where ``G = J_zᵀ W J_z``; xent through the softmax Hessian): a check
    independent of how ``G`` is assembled above."""
    rng = np.random.default_rng(41)
    m = _model(cell, 2, 3, 2, seed=5, scale=1.8)
    T = 5
    x = rng.normal(size=(T, 2))
    w = rng.uniform(0.2, 1.0, T)
    for loss in ("xent", "mse"):
        y = rng.integers(0, 2, T) if loss == "xent" else rng.normal(size=(T, 2))
        z0, Jz, _ = _jacobians(m, x)
        v = rng.normal(size=Jz.shape[-1])
        Jv = Jz @ v

        def grad_lin(s, z0=z0, Jz=Jz, Jv=Jv, y=y, loss=loss):
            zl = z0 + s * Jv
            if loss == "xent":
                u = _softmax(zl)
                u[np.arange(T), y] -= 1.0
            else:
                u = zl - y
            return np.einsum("tcn,tc->n", Jz, w[:, None] * u)

        eps = 1e-5
        fd = (grad_lin(eps) - grad_lin(-eps)) / (2 * eps)
        got = gauss_newton_product(m, x, y, v, loss=loss, mask=w)
        assert _rel(got, fd) < 1e-7


# ---------------------------------------------------------------- Gv: structure (Hypothesis)
@given(cell=st.sampled_from(["lstm", "gru"]), seed=st.integers(0, 2**32 - 1),
       loss=st.sampled_from(["xent", "mse"]), n_out=st.sampled_from([None, 2]),
       scale=st.floats(0.3, 3.0), lam_s=st.floats(0.01, 5.0))
def test_gv_psd_symmetric_and_structural_term_psd(cell, seed, loss, n_out, scale, lam_s):
    """The mathematics: ``G = Σ J_zᵀ H_L J_z`` with ``H_L`` positive semi-definite
    (the softmax cross-entropy's Hessian ``diag p − p pᵀ`` and the identity, times
    the mask weights ``w ≥ 0``), so ``vᵀGv = Σ (J_z v)ᵀ H_L (J_z v) ≥ 0`` and ``G``
    is symmetric, ``uᵀGv = vᵀGu``; structural damping adds
    ``λ_s Σ J_sᵀ J_s``, so ``G(λ_s) − G(0)`` is symmetric positive semi-definite
    (``vᵀ(G(λ_s) − G(0))v = λ_s Σ ‖J_s v‖² ≥ 0``) and linear in ``λ_s``
    (``G(2λ_s) − G(0) = 2(G(λ_s) − G(0))``). Random LSTM/GRU, batch of 2,
    random mask weights; each to rounding."""
    rng = np.random.default_rng(seed)
    m = _model(cell, 2, int(rng.integers(1, 5)), n_out, seed=int(rng.integers(1000)), scale=scale)
    T, B = int(rng.integers(1, 6)), 2
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 2.0, (T, B))
    G = m.gauss_newton(x, y, loss=loss, mask=mask, lam_struct=lam_s)
    u, v = rng.normal(size=(2, G.n_params))
    Gv, Gu, G0v, G0u = G(v), G(u), G(v, lam_struct=0.0), G(u, lam_struct=0.0)
    scale_ = (np.linalg.norm(Gv) * np.linalg.norm(v) + np.linalg.norm(Gu) * np.linalg.norm(u)) + 1e-300
    assert v @ G0v >= -1e-13 * scale_ and v @ Gv >= -1e-13 * scale_
    assert abs(u @ Gv - v @ Gu) <= 1e-12 * scale_
    assert abs(u @ G0v - v @ G0u) <= 1e-12 * scale_
    Sv, Su = Gv - G0v, Gu - G0u
    assert v @ Sv >= -1e-12 * scale_
    assert abs(u @ Sv - v @ Su) <= 1e-12 * scale_
    S2v = G(v, lam_struct=2 * lam_s) - G0v
    assert np.max(np.abs(S2v - 2 * Sv)) <= 1e-11 * (np.max(np.abs(S2v)) + np.max(np.abs(Gv)) + 1e-300)


# ---------------------------------------------------------------- Gv: torch
@pytest.mark.oracle
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gv_against_torch_func_jvp_vjp(cell):
    """``G v`` against PyTorch: ``J_z v`` and ``J_s v`` by ``torch.func.jvp`` of a
    recurrence of ``torch.nn.LSTMCell``/``GRUCell`` (``functional_call`` with our
    parameters, same names and layouts), ``H_L (J_z v)`` by ``jvp`` of the loss
    gradient in ``z``, then ``J_zᵀ(H_L J_z v) + λ_s J_sᵀ J_s v`` by
    ``torch.func.vjp``; both losses, mask weights, initial states; float64, to 1e-10."""
    torch = torch_or_skip()
    from torch.func import functional_call, grad, jvp, vjp

    rng = np.random.default_rng(23 + (cell == "gru"))
    worst = 0.0
    for loss in ("xent", "mse"):
        m = _model(cell, 3, 5, 4, seed=int(rng.integers(1000)), scale=1.7)
        T, B, n = 7, 3, 5
        x = rng.normal(size=(T, B, 3))
        y = _targets(rng, m, loss, T, B)
        mask = rng.uniform(0.0, 1.0, (T, B))
        h0 = rng.normal(size=(B, n)) * 0.5
        c0 = rng.normal(size=(B, n)) if cell == "lstm" else None
        lam_s = 0.3
        mod = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(3, n).double()
        names = list(m.params())
        th = tuple(torch.tensor(np.array(p)) for p in m.params().values())
        xt, wt, yt = torch.tensor(x), torch.tensor(mask), torch.tensor(y)
        h0t = torch.tensor(h0)
        c0t = None if c0 is None else torch.tensor(c0)

        def run(*ps, names=names, mod=mod, xt=xt, h0t=h0t, c0t=c0t):
            p = dict(zip(names, ps, strict=True))
            cp = {k: p[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            h, c = h0t, c0t
            hs, cs = [], []
            for t in range(xt.shape[0]):
                if c is None:
                    h = functional_call(mod, cp, (xt[t], h))
                else:
                    h, c = functional_call(mod, cp, (xt[t], (h, c)))
                    cs.append(c)
                hs.append(h)
            H = torch.stack(hs)
            S = H if c is None else torch.cat([H, torch.stack(cs)], dim=-1)
            return H @ p["W_yh"].T + p["b_y"], S

        def L(z, loss=loss, yt=yt, wt=wt):
            if loss == "xent":
                lp = torch.log_softmax(z, dim=-1)
                return -(wt * lp.gather(-1, yt[..., None])[..., 0]).sum()
            return 0.5 * (wt[..., None] * (z - yt) ** 2).sum()

        v = rng.normal(size=sum(p.size for p in m.params().values()))
        vt = tuple(torch.tensor(a) for a in unflatten_params(m, v).values())
        with warnings.catch_warnings():
            # torch.func's first jvp scripts a helper inside torch, which warns that
            # torch.jit.script is deprecated: torch's own internals, not ours
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
            (z0, _), (Jz_v, Js_v) = jvp(run, th, vt)
            _, HJv = jvp(grad(L), (z0,), (Jz_v,))
            _, back = vjp(run, *th)
            ref = back((HJv, lam_s * Js_v))
        ref_flat = np.concatenate([r.detach().numpy().ravel() for r in ref])
        kw = {"c0": c0} if cell == "lstm" else {}
        got = GaussNewton(m, x, y, loss=loss, mask=mask, h0=h0, lam_struct=lam_s, **kw)(v)
        worst = max(worst, _rel(got, ref_flat))
    assert worst < 1e-10, worst


# ---------------------------------------------------------------- extremes
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gv_at_the_edges_of_float64(cell):
    """``G`` is linear and the product runs on ``v`` scaled by a power of two: a ``v``
    of entries near 1e300 or of subnormals (5e-324 · integers) gives exactly the
    scaled product of the unit-size ``v`` (bitwise); a saturated cell (weights ×30)
    gives a finite product equal to the explicit matrix's; ``strict`` refuses a
    product beyond float64's range by name; a zero ``v`` gives zero."""
    rng = np.random.default_rng(3)
    m = _model(cell, 2, 3, 2, seed=1)
    x, y = rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 2))
    G = m.gauss_newton(x, y, loss="mse", lam_struct=0.2)
    u = rng.uniform(0.5, 1.0, G.n_params) * rng.choice([-1.0, 1.0], G.n_params)
    Gu = G(u)
    np.testing.assert_array_equal(G(np.ldexp(u, 996)), np.ldexp(Gu, 996))
    ints = rng.integers(1, 8, G.n_params) * rng.choice([-1.0, 1.0], G.n_params)
    np.testing.assert_array_equal(G(ints * 5e-324), np.ldexp(G(ints), -1074))
    assert not np.any(G(np.zeros(G.n_params)))
    with pytest.raises(ValueError, match="`v` is too large: G v has entries beyond float64's range"):
        big = m.replace(W_yh=m.W_yh * 1e3)
        big.gauss_newton(x, y, loss="mse")(np.full(G.n_params, 1.7e308))
    sat = _model(cell, 2, 3, 2, seed=2, scale=30.0)
    Gm, Sm = _gn_matrix(sat, x, "mse", np.ones((4, 2)))
    v = rng.normal(size=Gm.shape[0])
    got = sat.gauss_newton(x, y, loss="mse", lam_struct=0.5)(v)
    assert np.all(np.isfinite(got))
    assert np.max(np.abs(got - (Gm + 0.5 * Sm) @ v)) <= 1e-10 * max(np.max(np.abs((Gm + 0.5 * Sm) @ v)), 1.0)


# ---------------------------------------------------------------- the loss
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("n_out", [2, None])
def test_model_loss_equals_the_loop_reference(cell, loss, n_out):
    """``model.loss`` is Eq. 4 summed over steps and sequences with the mask's
    weights, as the loop reference computes it, from given ``h0`` (and ``c0``);
    it equals ``value_and_grad``'s value bitwise; ``batch_first`` reads the
    same batch; a loss beyond float64's range is ``inf``."""
    rng = np.random.default_rng(5)
    m = _model(cell, 2, 3, n_out, seed=7, scale=1.5)
    T, B = 5, 3
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 2.0, (T, B))
    h0 = rng.normal(size=(B, 3))
    c0 = rng.normal(size=(B, 3)) if cell == "lstm" else None
    kw = {"c0": c0} if cell == "lstm" else {}
    theta = flatten_params(m.params())
    ref = 0.0
    for b in range(B):
        z, _ = _outputs(m, theta, x[:, b], h0[b], None if c0 is None else c0[b])
        for t in range(T):
            if loss == "xent":
                ref += mask[t, b] * -np.log(_softmax(z[t])[y[t, b]])
            else:
                ref += mask[t, b] * 0.5 * np.sum((z[t] - y[t, b]) ** 2)
    got = m.loss(x, y, loss=loss, mask=mask, h0=h0, **kw)
    assert got == pytest.approx(ref, rel=1e-12)
    assert got == m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0, **kw)[0]
    yb = np.swapaxes(y, 0, 1)
    assert m.loss(np.swapaxes(x, 0, 1), yb, loss=loss, mask=mask.T, h0=h0, batch_first=True, **kw) == got
    if loss == "mse":
        assert m.loss(x, y, loss=loss, mask=np.full((T, B), 1e308)) == math.inf


# ---------------------------------------------------------------- Hessian-free
def _lm_rule_holds(r, factor=1.5):
    if r.rho < 0.25:
        return np.isclose(r.lam_after, r.lam_before * factor, rtol=1e-15)
    if r.rho > 0.75:
        return np.isclose(r.lam_after, r.lam_before / factor, rtol=1e-15)
    return r.lam_after == r.lam_before


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hf_steps_keep_their_guarantees(cell):
    """On a small temporal-order instance, HF steps on an LSTM and a GRU keep the
    guarantees of the Elman steps: loss after ≤ loss before (a rejected step keeps
    the model), the loss falls overall; λ follows Levenberg–Marquardt (×1.5 for
    ρ < 1/4, ÷1.5 for ρ > 3/4, else unchanged); ``ρ`` is the actual reduction over
    the undamped quadratic model ``gᵀp + ½pᵀGp/B`` of the step taken, recomputed
    here from the model's gradient and an independent ``G`` operator; the
    reported loss is the new model's ``value_and_grad`` loss from ``h0`` and
    ``c0 = 0``; the counters agree (Gv products = CG products + 1 or 2)."""
    task = make_task("temporal_order", 10)
    batch = task.sample(20, seed=0)
    m = CELLS[cell].init(task.n_in, 6, task.n_out, seed=0)
    hf = HessianFree(lam=1.0, max_cg=40)
    lam, warm, first = None, None, None
    h0 = np.random.default_rng(0).normal(size=(20, 6)) * 0.3
    for _ in range(4):
        r = hf_step(m, batch.x, batch.y, loss="xent", mask=batch.mask, h0=h0, hf=hf, lam=lam, x0=warm)
        first = r.loss_before if first is None else first
        assert r.loss_after <= r.loss_before
        assert _lm_rule_holds(r)
        assert 0 <= r.chosen_iterate <= r.cg_iterations
        assert r.gv_products in (r.cg_iterations + 1, r.cg_iterations + 2)
        E0, g0 = m.value_and_grad(batch.x, batch.y, mask=batch.mask, h0=h0)
        assert r.loss_before == pytest.approx(E0 / 20, rel=1e-12)
        after = r.model.value_and_grad(batch.x, batch.y, mask=batch.mask, h0=h0)[0] / 20
        np.testing.assert_allclose(r.loss_after, after, rtol=1e-12)
        if r.step_scale == 1.0:
            p = flatten_params(r.model.params()) - flatten_params(m.params())
            g = flatten_params(g0.params()) / 20
            Gp = m.gauss_newton(batch.x, batch.y, mask=batch.mask, h0=h0)(p) / 20
            pred = g @ p + 0.5 * p @ Gp
            assert r.rho == pytest.approx((r.loss_after - r.loss_before) / pred, rel=1e-6)
        assert (r.step_scale == 0) == (r.model is m)
        m, lam, warm = r.model, r.lam_after, r.cg_solution
    assert r.loss_after < first


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cg_on_the_gated_gauss_newton_matrix(cell):
    """Truncated CG on ``(G/B + λI) p = −g`` of an LSTM/GRU: the quadratic model
    ``φ`` it reports at every saved iterate equals ``½ pᵀ(G/B + λI)p + gᵀp``
    recomputed from the explicit complex-step matrix, and ``φ`` never increases."""
    rng = np.random.default_rng(9)
    m = _model(cell, 2, 3, 2, seed=4, scale=1.5)
    T, B = 5, 2
    x = rng.normal(size=(T, B, 2))
    y = rng.integers(0, 2, (T, B))
    Gm, _ = _gn_matrix(m, x, "xent", np.ones((T, B)))
    A = Gm / B + 0.1 * np.eye(Gm.shape[0])
    g = flatten_params(m.value_and_grad(x, y)[1].params()) / B
    G = m.gauss_newton(x, y)
    res = truncated_cg(lambda v: G(v) / B + 0.1 * v, -g, max_iter=30)
    assert np.all(np.diff(res.phi) <= 1e-12 * np.max(np.abs(res.phi)))
    for i, p in res.saved:
        assert res.phi[i] == pytest.approx(0.5 * p @ A @ p + g @ p, rel=1e-8, abs=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_train_with_hessian_free(cell):
    """``train(model, task, optimizer=HessianFree(...))`` on an LSTM and a GRU
    (temporal order, T = 10, 20 steps of 40 sequences, fixed seed): every step
    logs one "hf" event whose loss before is the step's recorded batch loss and
    whose loss after is not larger (HF's acceptance rule); the last three losses
    average below half the first and the evaluation error falls below chance
    (75 %: four classes); the model stays finite."""
    task = make_task("temporal_order", 10)
    m = CELLS[cell].init(task.n_in, 8, task.n_out, seed=0)
    h = train(m, task, optimizer=HessianFree(lam=1.0, max_cg=40), steps=20, batch_size=40,
              seed=0, eval_every=20, eval_size=100)
    assert h.steps == 20 and h.count("hf") == 20
    texts = [text for _, kind, text in h.events if kind == "hf"]
    for text, recorded in zip(texts, h.loss, strict=True):
        before, after = (float(s) for s in text.split("loss=")[1].split("->"))
        assert after <= before and before == pytest.approx(recorded, rel=1e-3)
    assert np.mean(h.loss[-3:]) < 0.5 * h.loss[0]
    assert h.eval_error[-1] < 0.5
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())


# ---------------------------------------------------------------- bad inputs
def _bad_cases():
    lstm = LSTM.init(2, 3, 2, seed=0)
    gru = GRU.init(2, 3, 2, seed=0)
    x = np.zeros((4, 2))
    y = np.zeros(4, dtype=int)
    N = sum(p.size for p in lstm.params().values())
    return [
        (lambda: gru.gauss_newton(x, y, lam_struct=-1.0), ValueError, "`lam_struct` must be >= 0"),
        (lambda: GaussNewton(gru, x, y, loss="xent", c0=np.zeros(3)), ValueError, "`c0` applies to the LSTM only"),
        (lambda: GaussNewton(ElmanRNN.init(2, 3, 2, seed=0), x, y, loss="xent", c0=np.zeros(3)), ValueError,
         "`c0` applies to the LSTM only"),
        (lambda: lstm.gauss_newton(x, y, c0=np.zeros(4)), ValueError, r"`c0` must have shape \(3,\)"),
        (lambda: lstm.gauss_newton(x, y, loss="hinge"), ValueError, "`loss` must be one of"),
        (lambda: lstm.gauss_newton(x, y)(np.zeros(N + 1)), ValueError, rf"`v` must have shape \({N},\)"),
        (lambda: lstm.gauss_newton(x, y)(np.full(N, np.nan)), ValueError, "`v` must be finite"),
        (lambda: lstm.gauss_newton(np.zeros((4, 3)), y), ValueError, "`x` must have 2 input features"),
        (lambda: gru.loss(x, np.zeros(3, dtype=int)), ValueError, r"`y` must have shape \(4,\)"),
        (lambda: lstm.loss(x, y, mask=-np.ones(4)), ValueError, "`mask` must be non-negative"),
        (lambda: check_gauss_newton_model(object()), TypeError, "`model` must be an ElmanRNN, LSTM or GRU"),
        (lambda: lstm.gauss_newton(x, y, h0=np.full(3, np.inf)), ValueError, "`h0` must be finite"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_bad_inputs_raise_named_errors(case):
    """Each bad argument raises ValueError/TypeError naming the argument."""
    fn, exc, msg = _bad_cases()[case]
    with pytest.raises(exc, match=msg):
        fn()


def test_bad_case_table_is_complete():
    """The parametrised range above covers the whole table."""
    assert len(_bad_cases()) == 12


def test_check_model_accepts_the_gated_cells():
    """Hessian-free's model check accepts an LSTM and a GRU (their own operator)."""
    for m in (LSTM.init(2, 3, 2, seed=0), GRU.init(2, 3, 2, seed=0)):
        assert check_gauss_newton_model(m) is m


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_threaded_product_equals_the_explicit_matrix(threaded, cell):
    """On 3 threads of our own (B = 5 split into ranges of sequences for the
    recurrences, rows for the rest) the product is still the explicit
    complex-step matrix's ``(G + λ_s S) v`` (1e-10), and equals one thread's to
    rounding (1e-12: only the order of the per-range sums differs)."""
    import rnntheory

    rng = np.random.default_rng(61)
    m = _model(cell, 2, 3, 2, seed=8, scale=1.5)
    T, B = 4, 5
    x = rng.normal(size=(T, B, 2))
    y = rng.integers(0, 2, (T, B))
    mask = rng.uniform(0.0, 1.0, (T, B))
    Gm, Sm = _gn_matrix(m, x, "xent", mask)
    v = rng.normal(size=Gm.shape[0])
    rnntheory.set_num_threads(3)
    got3 = m.gauss_newton(x, y, mask=mask, lam_struct=0.3)(v)
    rnntheory.set_num_threads(1)
    got1 = m.gauss_newton(x, y, mask=mask, lam_struct=0.3)(v)
    assert _rel(got3, (Gm + 0.3 * Sm) @ v) <= 1e-10
    assert _rel(got3, got1) <= 1e-12


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hf_step_is_equivariant_under_loss_scaling(cell):
    """Mask weights ``c·w`` scale the loss, gradient and Gauss–Newton matrix by
    ``c`` (``μ = 0``): ``hf_step`` with ``c·λ`` takes the step it takes on ``w``
    with ``λ``. With ``c = 2^900`` (weights near 1e271) the new models are
    bitwise equal, the losses exactly ``c`` times larger, ρ equal and the loss
    reduced, for the LSTM and the GRU, both losses."""
    m = CELLS[cell].init(2, 4, 2, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3, 2))
    mask = rng.uniform(0.5, 1.0, (6, 3))
    c = 2.0**900
    hf = HessianFree(mu=0.0, max_cg=20, max_line_search=5)
    for loss, y in (("mse", rng.normal(size=(6, 3, 2))), ("xent", rng.integers(0, 2, (6, 3)))):
        big = hf_step(m, x, y, loss=loss, mask=mask * c, hf=hf, lam=c)
        small = hf_step(m, x, y, loss=loss, mask=mask, hf=hf, lam=1.0)
        for k, p in small.model.params().items():
            np.testing.assert_array_equal(big.model.params()[k], p)
        assert big.loss_before == c * small.loss_before and big.loss_after == c * small.loss_after
        assert big.rho == small.rho and big.lam_after == c * small.lam_after
        assert big.loss_after < big.loss_before


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_trial_step_beyond_the_float_range_has_infinite_loss(cell):
    """A trial LSTM/GRU whose gate pre-activations could pass float64's range
    (largest row sum of |weight_hh| = 1.797e308) is refused by the model's range
    check with the ``ReachError`` a trainer tells apart; HF's loss of it is
    ``inf``, so it is never accepted. Inside the range the loss is
    ``value_and_grad``'s, averaged over the sequences."""
    from rnntheory._validation import ReachError
    from rnntheory.training.hessian_free import _mean_loss

    m = CELLS[cell].init(2, 4, 2, seed=3)
    rng = np.random.default_rng(5)
    T, B = 6, 3
    x = rng.normal(size=(T, B, 2))
    y = rng.normal(size=(T, B, 2))
    h = np.zeros((B, 4))
    E, _ = m.value_and_grad(x, y, loss="mse")
    assert _mean_loss(m, x, h, "mse", y, np.ones((T, B))) == pytest.approx(E / B, rel=1e-13)
    far = m.replace(weight_hh=m.weight_hh * (1.797e308 / np.abs(m.weight_hh).sum(axis=1).max()))
    with pytest.raises(ReachError, match="`weight_hh` of this model is too large"):
        far.loss(x, y, loss="mse")
    assert _mean_loss(far, x, h, "mse", y, np.ones((T, B))) == math.inf


NOJIT = """
import numba, numpy as np
assert numba.config.DISABLE_JIT
import test_gated_curvature as T
worst = 0.0
rng = np.random.default_rng(0)
for cell in ("lstm", "gru"):
    for loss in ("xent", "mse"):
        for n_out in (2, None):
            m = T._model(cell, 2, 2, n_out, seed=1, scale=1.5)
            x = rng.normal(size=(3, 2, 2))
            y = T._targets(rng, m, loss, 3, 2)
            mask = rng.uniform(0, 1, (3, 2))
            G, S = T._gn_matrix(m, x, loss, mask)
            v = rng.normal(size=G.shape[0])
            got = m.gauss_newton(x, y, loss=loss, mask=mask, lam_struct=0.5)(v)
            worst = max(worst, T._rel(got, (G + 0.5 * S) @ v))
print(worst)
assert worst < 1e-10, worst
"""


def test_kernels_without_jit():
    """The gated Gv kernels' Python bodies (``NUMBA_DISABLE_JIT=1``, bounds-checked
    indexing) give the explicit complex-step product for both cells, both
    losses, with and without readout."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]))
    r = subprocess.run([sys.executable, "-c", NOJIT], capture_output=True, text=True, env=env,
                       timeout=300, check=False, cwd=here)
    assert r.returncode == 0, r.stderr[-3000:]
