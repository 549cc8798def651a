"""Gauss–Newton products and Hessian-free for stacked models (``StackedRNN``).

Oracles: explicit Jacobians ``J_z``, ``J_s`` of the top readout and of the whole
state ``s_t`` (every layer's ``h``, LSTM layers ``h`` then ``c``) with respect
to every parameter, column by column by complex step through a loop reference
of the stack written here from the cells' definitions (layer ``l`` reads layer
``l−1``'s new ``h``; exact to rounding, independent of the kernels); PyTorch
``torch.func.jvp``/``vjp`` of ``torch.nn.LSTM(num_layers=2)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import StackedRNN
from rnntheory._oracles import complex_step_jacobian
from rnntheory.cells.curvature import check_gauss_newton_model
from rnntheory.tasks import make_task
from rnntheory.training import GaussNewton, HessianFree, hf_step, train
from rnntheory.training.hessian_free import flatten_params, unflatten_params

H_CS = 1e-30  # complex-step size


# ---------------------------------------------------------------- loop reference
def _sig(a):
    """σ(a) = (1 + tanh(a/2))/2: analytic, no overflow, complex-safe."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


_ACT = {"tanh": np.tanh, "sigmoid": _sig, "identity": lambda v: v}


def _split(model, theta):
    out, i = {}, 0
    for k, p in model.params().items():
        out[k] = theta[i : i + p.size].reshape(p.shape)
        i += p.size
    return out


def _outputs(model, theta, x, h0, c0):
    """``z_t (T, C)`` and the whole state ``s_t (T, S)`` of one sequence, by loops
    over steps and layers from the definitions (Elman Eq. 14 with its form and
    leak; ``torch.nn.LSTMCell``/``GRUCell`` equations), complex-safe."""
    p = _split(model, theta)
    n, L = model.n_hidden, model.n_layers
    hs = [np.asarray(h0[i], dtype=complex) for i in range(L)]
    cs = [np.asarray(c0[i], dtype=complex) for i in range(L)]
    zs, ss = [], []
    for t in range(x.shape[0]):
        inp = x[t]
        state = []
        for i, layer in enumerate(model.layers):
            if model.cell == "elman":
                f = _ACT[layer.activation.name]
                W, U, b = p[f"W_hh_l{i}"], p[f"W_hx_l{i}"], p[f"b_h_l{i}"]
                if layer.form == "standard":
                    g = f(W @ hs[i] + U @ inp + b)
                else:
                    g = W @ f(hs[i]) + U @ inp + b
                a = layer.alpha
                hs[i] = g if a is None else np.asarray(a) * hs[i] + (1.0 - np.asarray(a)) * g
                state.append(hs[i])
            else:
                Wi, Wh, bi, bh = (p[f"{k}_l{i}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                if model.cell == "lstm":
                    a = Wi @ inp + bi + Wh @ hs[i] + bh
                    ig, fg, gg, og = _sig(a[:n]), _sig(a[n:2 * n]), np.tanh(a[2 * n:3 * n]), _sig(a[3 * n:])
                    cs[i] = fg * cs[i] + ig * gg
                    hs[i] = og * np.tanh(cs[i])
                    state += [hs[i], cs[i]]
                else:
                    gi, gh = Wi @ inp + bi, Wh @ hs[i] + bh
                    r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
                    nn = np.tanh(gi[2 * n:] + r * gh[2 * n:])
                    hs[i] = (1.0 - z) * nn + z * hs[i]
                    state.append(hs[i])
            inp = hs[i]
        zs.append(p["W_yh"] @ inp + p["b_y"] if "W_yh" in p else inp)
        ss.append(np.concatenate(state))
    return np.array(zs), np.array(ss)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gn_matrix(model, x, loss, mask, h0, c0):
    """``Σ_b Σ_t J_zᵀ H_L J_z`` and ``Σ_b Σ_t J_sᵀ J_s`` as explicit matrices (x batched,
    ``h0``, ``c0`` of shape ``(L, B, n)``)."""
    theta = flatten_params(model.params())
    G = S = 0.0
    for b in range(x.shape[1]):
        def f(th, b=b):
            return np.concatenate(_outputs(model, th, x[:, b], h0[:, b], c0[:, b]), axis=-1)

        z, _ = _outputs(model, theta.astype(complex), x[:, b], h0[:, b], c0[:, b])
        z = z.real
        C = z.shape[-1]
        J = complex_step_jacobian(f, theta, H_CS)
        Jz, Js = J[:, :C, :], J[:, C:, :]
        for t in range(x.shape[0]):
            w = mask[t, b]
            if loss == "xent":
                pz = _softmax(z[t])
                HL = w * (np.diag(pz) - np.outer(pz, pz))
            else:
                HL = w * np.eye(C)
            G = G + Jz[t].T @ HL @ Jz[t]
            S = S + Js[t].T @ Js[t]
    return G, S


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _stack(cell, n_in, n, n_out, seed, scale=1.0, **opts):
    m = StackedRNN.init(n_in, n, n_out, cell=cell, n_layers=2, seed=seed, **opts)
    return m.replace(**{k: p * scale for k, p in m.params().items()})


def _targets(rng, model, loss, T, B):
    if loss == "xent":
        return rng.integers(0, model.n_out, (T, B))
    return rng.normal(size=(T, B, model.n_out))


VARIANTS = {
    "elman": ("elman", {"scheme": "gaussian"}),
    "elman-pascanu-leaky": ("elman", {"scheme": "gaussian", "form": "pascanu", "alpha": 0.3}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
}


# ---------------------------------------------------------------- Gv: explicit matrix
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("n_out", [3, None])
def test_gv_equals_the_explicit_complex_step_matrix(variant, loss, n_out):
    """``G v = Σ_{b,t} J_{z_t}ᵀ H_{L,t} J_{z_t} v + λ_s Σ_{b,t} J_{s_t}ᵀ J_{s_t} v`` for a
    two-layer stack, with ``H_{L,t} = w_t(diag p_t − p_t p_tᵀ)`` (xent) or
    ``w_t I`` (mse), ``s_t`` the whole state (both layers' ``h``, and ``c`` for
    LSTM layers), the Jacobians column by column by complex step through the
    loop reference; a batch of 2 with random ``h0`` (and ``c0``) of shape
    ``(L, B, n)``, random mask weights (one zero), ``λ_s = 0.7``, with and
    without a readout, to 1e-10. ``lam_struct=0`` per call gives ``G`` alone."""
    cell, opts = VARIANTS[variant]
    rng = np.random.default_rng(11 + list(VARIANTS).index(variant) + 5 * (loss == "mse"))
    m = _stack(cell, 2, 3, n_out, seed=int(rng.integers(1000)), scale=1.5, **opts)
    T, B, n = 3, 2, 3
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 1.5, (T, B))
    mask[1, 0] = 0.0
    h0 = rng.normal(size=(2, B, n)) * 0.5
    c0 = rng.normal(size=(2, B, n)) * 0.5 if cell == "lstm" else np.zeros((2, B, n))
    kw = {"c0": c0} if cell == "lstm" else {}
    Gm, Sm = _gn_matrix(m, x, loss, mask, h0, c0)
    G = m.gauss_newton(x, y, loss=loss, mask=mask, h0=h0, lam_struct=0.7, **kw)
    assert G.n_params == Gm.shape[0] == flatten_params(m.params()).size
    for _ in range(2):
        v = rng.normal(size=G.n_params)
        assert _rel(G(v), (Gm + 0.7 * Sm) @ v) < 1e-10
        assert _rel(G(v, lam_struct=0.0), Gm @ v) < 1e-10
    assert G.products == 4


def test_gv_single_sequence_and_flat_vector_round_trip():
    """One sequence (``h0``, ``c0`` of shape ``(L, n)``) gives the product of the
    batch of one; ``flatten_params``/``unflatten_params`` follow ``params()``'s
    keys ``<name>_l<l>`` and round-trip; float32 stacks give the float64
    stack's product to float32 rounding."""
    rng = np.random.default_rng(2)
    m = _stack("lstm", 2, 3, 2, seed=5)
    x, y = rng.normal(size=(4, 2)), rng.integers(0, 2, 4)
    h0, c0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    v = rng.normal(size=flatten_params(m.params()).size)
    one = m.gauss_newton(x, y, h0=h0, c0=c0, lam_struct=0.3)(v)
    batch = m.gauss_newton(x[:, None], y[:, None], h0=h0[:, None], c0=c0[:, None], lam_struct=0.3)(v)
    np.testing.assert_allclose(one, batch, rtol=0, atol=1e-14 * np.max(np.abs(batch)))
    d = unflatten_params(m, v)
    assert list(d) == list(m.params()) and "weight_hh_l1" in d
    np.testing.assert_array_equal(flatten_params(d), v)
    m32 = StackedRNN([layer.replace(**{k: p.astype(np.float32) for k, p in layer.params().items()})
                      for layer in m.layers], m.W_yh.astype(np.float32), m.b_y.astype(np.float32))
    got32 = m32.gauss_newton(x, y, h0=h0, c0=c0, lam_struct=0.3)(v)
    assert _rel(got32, one) < 1e-4


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_threaded_product_equals_the_explicit_matrix(threaded, cell):
    """On 3 threads of our own (B = 5 split into ranges of sequences for the
    recurrences of every layer, rows for the rest) the stack's product is still
    the explicit complex-step matrix's ``(G + λ_s S) v`` (1e-10), and equals one
    thread's to rounding (1e-12: only the order of the per-range sums differs)."""
    import rnntheory

    rng = np.random.default_rng(67)
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    m = _stack(cell, 2, 3, 2, seed=8, scale=1.3, **opts)
    T, B, n = 3, 5, 3
    x = rng.normal(size=(T, B, 2))
    y = rng.integers(0, 2, (T, B))
    mask = rng.uniform(0.0, 1.0, (T, B))
    zeros = np.zeros((2, B, n))
    Gm, Sm = _gn_matrix(m, x, "xent", mask, zeros, zeros)
    v = rng.normal(size=Gm.shape[0])
    rnntheory.set_num_threads(3)
    got3 = m.gauss_newton(x, y, mask=mask, lam_struct=0.3)(v)
    rnntheory.set_num_threads(1)
    got1 = m.gauss_newton(x, y, mask=mask, lam_struct=0.3)(v)
    assert _rel(got3, (Gm + 0.3 * Sm) @ v) <= 1e-10
    assert _rel(got3, got1) <= 1e-12


# ---------------------------------------------------------------- Gv: structure (Hypothesis)
@given(cell=st.sampled_from(["elman", "lstm", "gru"]), seed=st.integers(0, 2**32 - 1),
       loss=st.sampled_from(["xent", "mse"]), n_out=st.sampled_from([None, 2]),
       scale=st.floats(0.3, 3.0), lam_s=st.floats(0.01, 5.0))
def test_gv_psd_symmetric_and_structural_term_psd(cell, seed, loss, n_out, scale, lam_s):
    """The mathematics: ``G = Σ J_zᵀ H_L J_z`` with ``H_L`` positive semi-definite
    (``diag p − p pᵀ`` and ``I``, times mask weights ``w ≥ 0``), so
    ``vᵀGv = Σ (J_z v)ᵀ H_L (J_z v) ≥ 0`` and ``uᵀGv = vᵀGu``; structural damping
    adds ``λ_s Σ J_sᵀ J_s`` on the whole state of the stack, so ``G(λ_s) − G(0)``
    is symmetric positive semi-definite (``vᵀ(G(λ_s) − G(0))v = λ_s Σ ‖J_s v‖²``)
    and linear in ``λ_s``. Random two-layer stacks, batch of 2, random masks."""
    rng = np.random.default_rng(seed)
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    m = _stack(cell, 2, int(rng.integers(1, 4)), n_out, seed=int(rng.integers(1000)), scale=scale, **opts)
    T, B = int(rng.integers(1, 5)), 2
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
def test_gv_against_torch_func_jvp_vjp():
    """``G v`` of a two-layer LSTM stack against PyTorch: ``torch.nn.LSTM(num_layers=2)``
    run one step at a time (``functional_call`` with our parameters: same names
    ``weight_ih_l0``…, same layouts) so that every layer's ``(h, c)`` is seen,
    ``J_z v`` and ``J_s v`` by ``torch.func.jvp``, ``H_L(J_z v)`` by ``jvp`` of the
    loss gradient, then ``J_zᵀ(H_L J_z v) + λ_s J_sᵀ J_s v`` by ``torch.func.vjp``;
    both losses, mask weights, initial states; float64, to 1e-10."""
    torch = torch_or_skip()
    from torch.func import functional_call, grad, jvp, vjp

    rng = np.random.default_rng(31)
    worst = 0.0
    for loss in ("xent", "mse"):
        m = _stack("lstm", 3, 4, 3, seed=int(rng.integers(1000)), scale=1.5)
        T, B, n, L = 6, 3, 4, 2
        x = rng.normal(size=(T, B, 3))
        y = _targets(rng, m, loss, T, B)
        mask = rng.uniform(0.0, 1.0, (T, B))
        h0, c0 = rng.normal(size=(L, B, n)) * 0.5, rng.normal(size=(L, B, n)) * 0.5
        lam_s = 0.4
        mod = torch.nn.LSTM(3, n, num_layers=L).double()
        names = list(m.params())
        th = tuple(torch.tensor(np.array(p)) for p in m.params().values())
        xt, wt, yt = torch.tensor(x), torch.tensor(mask), torch.tensor(y)
        h0t, c0t = torch.tensor(h0), torch.tensor(c0)

        def run(*ps, names=names, mod=mod, xt=xt, h0t=h0t, c0t=c0t):
            p = dict(zip(names, ps, strict=True))
            cp = {k: v for k, v in p.items() if k not in ("W_yh", "b_y")}
            h, c = h0t, c0t
            outs, states = [], []
            for t in range(xt.shape[0]):
                out, (h, c) = functional_call(mod, cp, (xt[t:t + 1], (h, c)))
                outs.append(out[0])
                states.append(torch.cat([torch.cat([h[i], c[i]], dim=-1) for i in range(h.shape[0])], dim=-1))
            H = torch.stack(outs)
            return H @ p["W_yh"].T + p["b_y"], torch.stack(states)

        def Lf(z, loss=loss, yt=yt, wt=wt):
            if loss == "xent":
                lp = torch.log_softmax(z, dim=-1)
                return -(wt * lp.gather(-1, yt[..., None])[..., 0]).sum()
            return 0.5 * (wt[..., None] * (z - yt) ** 2).sum()

        v = rng.normal(size=flatten_params(m.params()).size)
        vt = tuple(torch.tensor(a) for a in unflatten_params(m, v).values())
        with warnings.catch_warnings():
            # torch.func's first jvp scripts a helper inside torch, which warns that
            # torch.jit.script is deprecated: torch's own internals, not ours
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
            (z0, _), (Jz_v, Js_v) = jvp(run, th, vt)
            _, HJv = jvp(grad(Lf), (z0,), (Jz_v,))
            _, back = vjp(run, *th)
            ref = back((HJv, lam_s * Js_v))
        ref_flat = np.concatenate([r.detach().numpy().ravel() for r in ref])
        got = GaussNewton(m, x, y, loss=loss, mask=mask, h0=h0, c0=c0, lam_struct=lam_s)(v)
        worst = max(worst, _rel(got, ref_flat))
    assert worst < 1e-10, worst


# ---------------------------------------------------------------- extremes
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_gv_at_the_edges_of_float64(cell):
    """``G`` is linear and runs on ``v`` scaled by a power of two: a ``v`` near 1e300
    or of subnormals (5e-324 · integers) gives exactly the scaled product of
    the unit-size ``v`` (bitwise); a zero ``v`` gives zero; ``strict`` refuses a
    product beyond float64's range by name."""
    rng = np.random.default_rng(3)
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    m = _stack(cell, 2, 3, 2, seed=1, **opts)
    x, y = rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 2))
    G = m.gauss_newton(x, y, loss="mse", lam_struct=0.2)
    u = rng.uniform(0.5, 1.0, G.n_params) * rng.choice([-1.0, 1.0], G.n_params)
    Gu = G(u)
    np.testing.assert_array_equal(G(np.ldexp(u, 996)), np.ldexp(Gu, 996))
    ints = rng.integers(1, 8, G.n_params) * rng.choice([-1.0, 1.0], G.n_params)
    np.testing.assert_array_equal(G(ints * 5e-324), np.ldexp(G(ints), -1074))
    assert not np.any(G(np.zeros(G.n_params)))
    big = m.replace(W_yh=m.W_yh * 1e3)
    with pytest.raises(ValueError, match="`v` is too large: G v has entries beyond float64's range"):
        big.gauss_newton(x, y, loss="mse")(np.full(G.n_params, 1.7e308))


# ---------------------------------------------------------------- Hessian-free
def _lm_rule_holds(r, factor=1.5):
    if r.rho < 0.25:
        return np.isclose(r.lam_after, r.lam_before * factor, rtol=1e-15)
    if r.rho > 0.75:
        return np.isclose(r.lam_after, r.lam_before / factor, rtol=1e-15)
    return r.lam_after == r.lam_before


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_hf_steps_keep_their_guarantees(cell):
    """HF steps on two-layer stacks keep the single cells' guarantees: loss after ≤
    loss before (a rejected step keeps the model), the loss falls overall; λ
    follows Levenberg–Marquardt (×1.5 for ρ < 1/4, ÷1.5 for ρ > 3/4); ``ρ`` is
    the actual reduction over ``gᵀp + ½pᵀGp/B`` of the step taken, recomputed
    from the stack's gradient and an independent ``G`` operator; the losses are
    the stack's ``value_and_grad`` losses from the given ``h0 (L, B, n)``; the
    counters agree (Gv products = CG products + 1 or 2)."""
    task = make_task("temporal_order", 10)
    batch = task.sample(16, seed=0)
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    m = StackedRNN.init(task.n_in, 5, task.n_out, cell=cell, n_layers=2, seed=0, **opts)
    hf = HessianFree(lam=1.0, max_cg=30)
    lam, warm, first = None, None, None
    h0 = np.random.default_rng(0).normal(size=(2, 16, 5)) * 0.3
    for _ in range(3):
        r = hf_step(m, batch.x, batch.y, loss="xent", mask=batch.mask, h0=h0, hf=hf, lam=lam, x0=warm)
        first = r.loss_before if first is None else first
        assert r.loss_after <= r.loss_before
        assert _lm_rule_holds(r)
        assert 0 <= r.chosen_iterate <= r.cg_iterations
        assert r.gv_products in (r.cg_iterations + 1, r.cg_iterations + 2)
        E0, g0 = m.value_and_grad(batch.x, batch.y, mask=batch.mask, h0=h0)
        assert r.loss_before == pytest.approx(E0 / 16, rel=1e-12)
        after = r.model.value_and_grad(batch.x, batch.y, mask=batch.mask, h0=h0)[0] / 16
        np.testing.assert_allclose(r.loss_after, after, rtol=1e-12)
        if r.step_scale == 1.0:
            p = flatten_params(r.model.params()) - flatten_params(m.params())
            g = flatten_params(g0.params()) / 16
            Gp = m.gauss_newton(batch.x, batch.y, mask=batch.mask, h0=h0)(p) / 16
            assert r.rho == pytest.approx((r.loss_after - r.loss_before) / (g @ p + 0.5 * p @ Gp), rel=1e-6)
        assert (r.step_scale == 0) == (r.model is m)
        m, lam, warm = r.model, r.lam_after, r.cg_solution
    assert r.loss_after < first


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_train_with_hessian_free(cell):
    """``train(StackedRNN(...), task, optimizer=HessianFree(...))`` on two-layer stacks
    (temporal order, T = 10, 20 steps of 40 sequences, fixed seed): every step
    logs one "hf" event whose loss before is the step's recorded batch loss and
    whose loss after is not larger (HF's acceptance rule); the last three losses
    average below half the first and the evaluation error falls below chance
    (75 %: four classes); the model stays a finite stack."""
    task = make_task("temporal_order", 10)
    opts = {"scheme": "gaussian"} if cell == "elman" else {}
    m = StackedRNN.init(task.n_in, 8, task.n_out, cell=cell, n_layers=2, seed=0, **opts)
    h = train(m, task, optimizer=HessianFree(lam=1.0, max_cg=40), steps=20, batch_size=40,
              seed=0, eval_every=20, eval_size=100)
    assert h.steps == 20 and h.count("hf") == 20
    texts = [text for _, kind, text in h.events if kind == "hf"]
    for text, recorded in zip(texts, h.loss, strict=True):
        before, after = (float(s) for s in text.split("loss=")[1].split("->"))
        assert after <= before and before == pytest.approx(recorded, rel=1e-3)
    assert np.mean(h.loss[-3:]) < 0.5 * h.loss[0]
    assert h.eval_error[-1] < 0.5
    assert isinstance(h.model, StackedRNN)
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())


# ---------------------------------------------------------------- the model check, bad inputs
def test_check_model_accepts_stacks_but_not_a_learned_leak():
    """Stacks of every cell pass the check; a stack with a layer that learns α is
    refused by name (Gauss–Newton products treat α as fixed); HF refuses it too."""
    for cell in ("elman", "lstm", "gru"):
        m = StackedRNN.init(2, 3, 2, cell=cell, n_layers=2, seed=0)
        assert check_gauss_newton_model(m) is m
    leaky = StackedRNN.init(2, 3, 2, cell="elman", n_layers=2, seed=0, alpha=0.5, learn_alpha=True)
    with pytest.raises(ValueError, match=r"`model`'s layer 0 learns its retention α \(learn_alpha_l0=True\)"):
        check_gauss_newton_model(leaky)
    with pytest.raises(ValueError, match="learn_alpha_l0=True"):
        hf_step(leaky, np.zeros((3, 2)), np.zeros(3, dtype=int), loss="xent")


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"h0": np.zeros((3, 3))}, ValueError, r"`h0` must have shape \(L, n\) = \(2, 3\), got shape \(3, 3\)"),
    ({"c0": np.zeros((2, 3))}, ValueError, "`c0` applies to a stack of LSTM layers only"),
    ({"lam_struct": -1.0}, ValueError, "`lam_struct`"),
    ({"lam_struct": float("nan")}, ValueError, "`lam_struct`"),
    ({"loss": "hinge"}, ValueError, "`loss`"),
])
def test_bad_inputs_raise_named_errors(kwargs, exc, match):
    """Bad arguments to ``StackedRNN.gauss_newton`` name the argument."""
    m = StackedRNN.init(2, 3, 2, cell="gru", n_layers=2, seed=0)
    with pytest.raises(exc, match=match):
        m.gauss_newton(np.zeros((4, 2)), np.zeros(4, dtype=int), **kwargs)


def test_bad_vector_raises_named_errors():
    m = StackedRNN.init(2, 3, 2, cell="lstm", n_layers=2, seed=0)
    G = m.gauss_newton(np.zeros((4, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=rf"`v` must have shape \({G.n_params},\)"):
        G(np.zeros(3))
    with pytest.raises(ValueError, match="`v`"):
        G(np.full(G.n_params, np.nan))
