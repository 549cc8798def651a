"""Hessian-free optimisation: Gauss–Newton products, truncated CG, HF steps, train().

Oracles: explicit Jacobians ``J_z``, ``J_h`` by complex step through the loop
reference ``tests/naive.py`` (exact to rounding); central differences of the
linearised model's gradient, whose transposed Jacobian products come from
``ElmanRNN.value_and_grad`` (BPTT, not the code under test); PyTorch
``torch.func.jvp``/``vjp`` on a recurrence written in torch.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import BidirectionalRNN, ElmanRNN
from rnntheory import strategies as rst
from rnntheory._oracles import complex_step_jacobian
from rnntheory.tasks import make_task
from rnntheory.training import (
    GaussNewton,
    GradientClipping,
    HessianFree,
    gauss_newton_product,
    hf_step,
    train,
    truncated_cg,
)
from rnntheory.training.hessian_free import (
    flatten_params,
    unflatten_params,
)

H_CS = 1e-30  # complex-step size


# ---------------------------------------------------------------- oracles
def _pdict(model, theta):
    """Parameter dict for naive.loss_p-style code from a flat (possibly complex) vector."""
    out, i = {}, 0
    for k, p in model.params().items():
        out[k] = theta[i : i + p.size].reshape(p.shape)
        i += p.size
    if "W_yh" not in out:
        n = model.n_hidden
        out["W_yh"], out["b_y"] = np.eye(n), np.zeros(n)
    out["alpha"] = None if model.alpha is None else np.asarray(model.alpha, float)
    return out


def _outputs(model, theta, x):
    """``z_t`` (T, C) and ``h_t`` (T, n), t = 1..T, of one sequence, complex-safe."""
    p = _pdict(model, theta)
    h = np.zeros(model.n_hidden, dtype=theta.dtype)
    zs, hs = [], []
    for t in range(x.shape[0]):
        h = naive._step_p(p["W_hh"], p["W_hx"], p["b_h"], p["alpha"], model.activation.name,
                          model.form, h, x[t])
        hs.append(h)
        zs.append(p["W_yh"] @ h + p["b_y"])
    return np.array(zs), np.array(hs)


def _jacobians(model, x):
    """Explicit ``J_z (T, C, N)`` and ``J_h (T, n, N)`` by complex step."""
    theta = flatten_params(model.params())
    z0, _ = _outputs(model, theta.astype(complex), x)
    C = z0.shape[-1]
    J = complex_step_jacobian(lambda th: np.concatenate(_outputs(model, th, x), axis=-1), theta, H_CS)
    return z0.real, J[..., :C, :], J[..., C:, :]


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gn_matrix(model, x, loss, mask, lam_struct):
    """``Σ_b Σ_t J_zᵀ H_L J_z`` and ``Σ_b Σ_t J_hᵀ J_h`` as explicit matrices (x batched)."""
    G = S = 0.0
    for b in range(x.shape[1]):
        z, Jz, Jh = _jacobians(model, x[:, b])
        for t in range(x.shape[0]):
            w = mask[t, b]
            if loss == "xent":
                p = _softmax(z[t])
                HL = w * (np.diag(p) - np.outer(p, p))
            else:
                HL = w * np.eye(z.shape[1])
            G = G + Jz[t].T @ HL @ Jz[t]
            S = S + Jh[t].T @ Jh[t]
    return G, S


def _targets(rng, model, loss, T, B):
    if loss == "xent":
        return rng.integers(0, model.n_out, (T, B))
    return rng.normal(size=(T, B, model.n_out))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


models = rst.elman_models(
    n_in=rst.sizes(1, 2), n_hidden=rst.sizes(1, 4), n_out=st.sampled_from([None, 1, 3]),
    leaky=st.booleans(), weight_norm=st.floats(0.3, 2.0),
)


# ---------------------------------------------------------------- Gv: oracle
@given(model=models, seed=st.integers(0, 2**32 - 1), loss=st.sampled_from(["xent", "mse"]),
       lam_struct=st.sampled_from([0.0, 0.7]))
def test_gv_equals_explicit_complex_step_jacobians(model, seed, loss, lam_struct):
    """``G v = Σ_{b,t} J_{z_t}ᵀ H_{L,t} J_{z_t} v + λ_s Σ_{b,t} J_{h_t}ᵀ J_{h_t} v`` with
    ``H_{L,t} = w_t(diag p_t − p_t p_tᵀ)`` (xent) or ``w_t I`` (mse), the Jacobians
    built column by column by complex step through the loop reference, for every
    form (standard, Pascanu, leaky), batch of 2, random mask weights."""
    rng = np.random.default_rng(seed)
    T, B = int(rng.integers(1, 5)), 2
    x = rng.normal(size=(T, B, model.n_in))
    y = _targets(rng, model, loss, T, B)
    mask = rng.uniform(0.0, 1.5, (T, B))
    mask[0, 0] = 0.0
    Gm, Sm = _gn_matrix(model, x, loss, mask, lam_struct)
    v = rng.normal(size=Gm.shape[0])
    ref = (Gm + lam_struct * Sm) @ v
    got = GaussNewton(model, x, y, loss=loss, mask=mask, lam_struct=lam_struct)(v)
    assert np.max(np.abs(got - ref)) <= 1e-10 * max(np.max(np.abs(ref)), 1e-3)


def test_gv_single_sequence_and_dict_form():
    """A single sequence ``(T, n_in)`` gives the product of the batch of one; a dict
    ``v`` returns ``G v`` as a dict keyed like ``model.params()`` holding the same
    numbers as the flat product (checked against the explicit complex-step matrix)."""
    rng = np.random.default_rng(3)
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.3, seed=3, form="pascanu", alpha=0.2)
    x = rng.normal(size=(5, 2))
    y = rng.integers(0, 2, 5)
    Gm, _ = _gn_matrix(m, x[:, None], "xent", np.ones((5, 1)), 0.0)
    v = rng.normal(size=Gm.shape[0])
    flat = gauss_newton_product(m, x, y, v, loss="xent")
    d = gauss_newton_product(m, x, y, unflatten_params(m, v), loss="xent")
    assert list(d) == list(m.params())
    np.testing.assert_allclose(flat, Gm @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(flatten_params(d), flat, rtol=1e-12, atol=1e-14)


def test_gv_equals_finite_differences_of_linearised_gradient():
    """``G v = (∇E_lin(θ₀ + εv) − ∇E_lin(θ₀ − εv)) / 2ε`` where
    ``E_lin(θ) = Σ_t w_t L(z_t(θ₀) + J_{z_t}(θ − θ₀))`` is the loss of the linearised
    outputs: ``∇E_lin(θ) = J_zᵀ ∇L(z_lin)``, whose ``J_zᵀ u`` is taken from
    ``value_and_grad`` (squared error with targets ``z₀ − u``: BPTT, not the code
    under test) and ``J_z v`` by complex step. Both losses, all forms."""
    rng = np.random.default_rng(11)
    eps = 1e-4
    worst = 0.0
    for form in ("standard", "pascanu"):
        for alpha in (None, 0.35):
            for loss in ("xent", "mse"):
                m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.2, seed=int(rng.integers(1000)),
                                  form=form, alpha=alpha, activation="tanh")
                T = 6
                x = rng.normal(size=(T, 2))
                y = rng.integers(0, 3, T) if loss == "xent" else rng.normal(size=(T, 3))
                w = rng.uniform(0.2, 1.0, T)
                theta = flatten_params(m.params())
                v = rng.normal(size=theta.size)
                tc = theta.astype(complex) + 1j * H_CS * v
                z0 = _outputs(m, theta.astype(complex), x)[0].real
                Jv = _outputs(m, tc, x)[0].imag / H_CS

                def grad_lin(s, m=m, x=x, y=y, w=w, z0=z0, Jv=Jv, loss=loss):
                    zl = z0 + s * Jv
                    if loss == "xent":
                        u = _softmax(zl)
                        u[np.arange(len(y)), y] -= 1.0
                    else:
                        u = zl - y
                    u = w[:, None] * u
                    return flatten_params(m.value_and_grad(x, z0 - u, loss="mse")[1].params())

                fd = (grad_lin(eps) - grad_lin(-eps)) / (2 * eps)
                got = gauss_newton_product(m, x, y, v, loss=loss, mask=w)
                worst = max(worst, _rel(got, fd))
    assert worst < 1e-7, worst


# ---------------------------------------------------------------- Gv: structure
@given(model=models, seed=st.integers(0, 2**32 - 1), loss=st.sampled_from(["xent", "mse"]))
def test_gv_psd_symmetric_and_structural_term(model, seed, loss):
    """For random ``u, v``: ``vᵀGv ≥ 0`` and ``uᵀ(Gv) = vᵀ(Gu)`` (G and the damped
    G + λ_s S); with ``λ_s = 0`` the product is plain Gauss–Newton; the structural
    term ``(G_{λ_s} − G_0) v`` equals ``λ_s Σ J_hᵀ J_h v`` from explicit
    complex-step ``J_h``, and its quadratic form is ≥ 0."""
    rng = np.random.default_rng(seed)
    T, B = int(rng.integers(1, 6)), 2
    x = rng.normal(size=(T, B, model.n_in))
    y = _targets(rng, model, loss, T, B)
    lam_s = 0.4
    G = GaussNewton(model, x, y, loss=loss, lam_struct=lam_s)
    G0 = GaussNewton(model, x, y, loss=loss)
    u, v = rng.normal(size=(2, G.n_params))
    for op in (G, G0):
        Gv, Gu = op(v), op(u)
        scale = np.linalg.norm(Gv) * np.linalg.norm(v) + np.linalg.norm(Gu) * np.linalg.norm(u) + 1e-300
        assert v @ Gv >= -1e-13 * scale
        assert abs(u @ Gv - v @ Gu) <= 1e-12 * scale
    np.testing.assert_array_equal(G(v, lam_struct=0.0), G0(v))
    Gm, Sm = _gn_matrix(model, x, loss, np.ones((T, B)), 0.0)
    np.testing.assert_allclose(G0(v), Gm @ v, rtol=1e-9, atol=1e-10 * (1 + np.max(np.abs(Gm @ v))))
    struct = G(v) - G0(v)
    ref = lam_s * (Sm @ v)
    assert np.max(np.abs(struct - ref)) <= 1e-9 * (1 + np.max(np.abs(ref)))
    assert v @ struct >= -1e-12 * (1 + np.linalg.norm(struct) * np.linalg.norm(v))


def test_gv_float32_matches_float64():
    """A float32 model's product agrees with the float64 product of the same
    (rounded) weights to float32 accuracy (relative 1e-4)."""
    rng = np.random.default_rng(5)
    m64 = ElmanRNN.init(3, 6, 4, scheme="gaussian", scale=1.1, seed=5)
    m32 = m64.replace(**{k: p.astype(np.float32) for k, p in m64.params().items()})
    m64 = m32.replace(**{k: p.astype(np.float64) for k, p in m32.params().items()})
    x = rng.normal(size=(15, 3, 3))
    y = rng.integers(0, 4, (15, 3))
    v = rng.normal(size=sum(p.size for p in m64.params().values()))
    a = GaussNewton(m32, x.astype(np.float32), y, loss="xent", lam_struct=0.1)(v)
    b = GaussNewton(m64, x, y, loss="xent", lam_struct=0.1)(v)
    assert _rel(a, b) < 1e-4


@pytest.mark.oracle
def test_gv_against_torch_func_jvp_vjp():
    """``G v`` against PyTorch: ``J_z v`` by ``torch.func.jvp`` of a hand-written torch
    recurrence, ``H_L (J_z v)`` by ``jvp`` of the loss gradient in ``z``, then
    ``J_zᵀ(·)`` by ``torch.func.vjp``; the structural term likewise from the
    hidden states. Standard, Pascanu and leaky forms; float64."""
    torch = torch_or_skip()
    from torch.func import grad, jvp, vjp

    rng = np.random.default_rng(21)
    worst = 0.0
    for form in ("standard", "pascanu"):
        for alpha in (None, rng.uniform(0, 1, 5)):
            for loss in ("xent", "mse"):
                m = ElmanRNN.init(3, 5, 4, scheme="gaussian", scale=1.4, seed=int(rng.integers(1000)),
                                  form=form, alpha=alpha)
                T, B = 7, 3
                x = rng.normal(size=(T, B, 3))
                y = _targets(rng, m, loss, T, B)
                mask = rng.uniform(0.0, 1.0, (T, B))
                lam_s = 0.3
                names = list(m.params())
                th = tuple(torch.tensor(p) for p in m.params().values())
                xt = torch.tensor(x)
                al = None if m.alpha is None else torch.tensor(m.alpha)
                wt = torch.tensor(mask)
                yt = torch.tensor(y)

                def run(*ps, xt=xt, al=al, form=form, names=names):
                    p = dict(zip(names, ps, strict=True))
                    h = torch.zeros(xt.shape[1], p["W_hh"].shape[0], dtype=torch.float64)
                    hs = []
                    for t in range(xt.shape[0]):
                        if form == "standard":
                            g = torch.tanh(h @ p["W_hh"].T + xt[t] @ p["W_hx"].T + p["b_h"])
                        else:
                            g = torch.tanh(h) @ p["W_hh"].T + xt[t] @ p["W_hx"].T + p["b_h"]
                        h = g if al is None else al * h + (1 - al) * g
                        hs.append(h)
                    H = torch.stack(hs)
                    return H @ p["W_yh"].T + p["b_y"], H

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
                    (z0, _), (Jz_v, Jh_v) = jvp(run, th, vt)
                    _, HJv = jvp(grad(L), (z0,), (Jz_v,))
                _, back = vjp(run, *th)
                ref = back((HJv, lam_s * Jh_v))
                ref_flat = np.concatenate([r.detach().numpy().ravel() for r in ref])
                got = GaussNewton(m, x, y, loss=loss, mask=mask, lam_struct=lam_s)(v)
                worst = max(worst, _rel(got, ref_flat))
    assert worst < 1e-11, worst


# ---------------------------------------------------------------- CG
def _phi(A, b, x):
    return 0.5 * x @ A @ x - b @ x


def _check_cg_record(res, A, b, eps=5e-4):
    """φ non-increasing; recorded φ equals ½xᵀAx − bᵀx at the saved iterates; the
    saved indices are ⌈1.3^j⌉ (and the last); Martens' rule holds exactly at the
    stopping iteration and at no earlier one."""
    phi = res.phi
    assert len(phi) == res.iterations + 1
    assert np.all(np.diff(phi) <= 1e-12 * np.max(np.abs(phi)))
    for i, xi in res.saved:
        assert abs(phi[i] - _phi(A, b, xi)) <= 1e-8 * max(1.0, abs(phi[i]))
    idx = [i for i, _ in res.saved]
    sched = sorted({int(np.ceil(1.3**j - 1e-12)) for j in range(60) if np.ceil(1.3**j - 1e-12) <= res.iterations})
    assert idx[: len(sched)] == sched
    assert idx[-1] == res.iterations

    def rule(i):
        k = max(10, int(np.ceil(0.1 * i)))
        return i > k and phi[i] < 0 and phi[i - k] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * eps

    assert not any(rule(i) for i in range(1, res.iterations))
    if res.stop == "progress":
        assert rule(res.iterations)
    elif res.stop == "max_iter":
        assert not rule(res.iterations)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), cond=st.floats(1.0, 1e6))
def test_cg_quadratic_model_decreases_on_random_spd(seed, n, cond):
    """On a random SPD ``A = Q diag(λ) Qᵀ`` (condition number up to 10⁶), CG's
    quadratic model ``φ(x_i) = ½x_iᵀAx_i − bᵀx_i`` never increases over the
    iterations, from zero and from a warm start; the recorded φ is the true φ;
    the stopping rule and the save schedule are Martens'."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.geomspace(1.0, cond, n)
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.normal(size=n)
    for x0 in (None, 0.1 * rng.normal(size=n)):
        res = truncated_cg(lambda v: A @ v, b, x0, max_iter=200)
        assert res.products == res.iterations + (x0 is not None)
        _check_cg_record(res, A, b)


def test_cg_on_a_real_gauss_newton_matrix():
    """On the damped Gauss–Newton system ``(G + λI) p = −g`` of a real model, φ
    decreases monotonically, the recorded φ is ``½pᵀ(G + λI)p + gᵀp`` (G built
    explicitly by complex step) and the stop is Martens' rule or the cap."""
    rng = np.random.default_rng(8)
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.5, seed=8)
    x = rng.normal(size=(8, 3, 2))
    y = rng.integers(0, 3, (8, 3))
    Gm, _ = _gn_matrix(m, x, "xent", np.ones((8, 3)), 0.0)
    A = Gm + 1e-3 * np.eye(Gm.shape[0])
    g = flatten_params(m.value_and_grad(x, y)[1].params())
    op = GaussNewton(m, x, y, loss="xent")
    res = truncated_cg(lambda v: op(v) + 1e-3 * v, -g, max_iter=80)
    _check_cg_record(res, A, -g)
    assert res.stop in ("progress", "max_iter", "residual")
    assert res.phi[-1] < 0


def test_cg_is_linear_in_b_up_to_float64s_limit():
    """CG on ``(2^600 A) x = 2^600 b`` gives the same iterates as on ``A x = b``,
    bitwise (scaling by a power of two is exact), and ``φ`` scaled by ``2^600``;
    the iterates solve ``A x = b`` (``numpy.linalg.solve``). Before, ``rᵀr`` of
    a ``b`` near 1e181 overflowed with a RuntimeWarning. A ``b`` whose
    quadratic-model values are beyond float64 (``A = I``, ``b = 1e300``: ``φ =
    −1e600``) stops at the last finite iterate, ``x = 0``, with every number
    finite."""
    rng = np.random.default_rng(4)
    n = 6
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = (Q * np.geomspace(1.0, 50.0, n)) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.normal(size=n)
    big = np.ldexp(A, 600)
    for x0 in (None, 0.3 * rng.normal(size=n)):
        ref = truncated_cg(lambda v: A @ v, b, x0, max_iter=50)
        got = truncated_cg(lambda v: big @ v, np.ldexp(b, 600), x0, max_iter=50)
        assert (got.stop, got.iterations, got.products) == (ref.stop, ref.iterations, ref.products)
        np.testing.assert_array_equal(got.x, ref.x)
        np.testing.assert_array_equal(got.phi, np.ldexp(ref.phi, 600))
        for (i, xi), (j, xj) in zip(got.saved, ref.saved, strict=True):
            assert i == j
            np.testing.assert_array_equal(xi, xj)
        np.testing.assert_allclose(got.x, np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
    res = truncated_cg(lambda v: v, np.full(3, 1e300))
    assert res.stop == "nonfinite" and res.iterations == 0
    assert np.array_equal(res.x, np.zeros(3)) and np.array_equal(res.phi, [0.0])


def test_gv_at_the_edge_of_float64_matches_the_explicit_matrix():
    """``G v`` for ``v`` with one entry near float64's limit (1.7e308, or less
    where the column of ``G`` exceeds 1/2) is that entry times the column of
    the explicit Gauss–Newton matrix (complex-step Jacobians), to 1e-12; it
    was all NaN. ``G`` is linear: ``G(2^1000 v) = 2^1000 G(v)`` bitwise."""
    rng = np.random.default_rng(1)
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=0)
    x = rng.normal(size=(4, 2, 2))
    Gm, _ = _gn_matrix(m, x, "mse", np.ones((4, 2)), 0.0)
    G = GaussNewton(m, x, np.zeros((4, 2, 2)), loss="mse")
    for j in (0, 7, G.n_params - 1):
        v = np.zeros(G.n_params)
        col = float(np.max(np.abs(Gm[:, j])))
        v[j] = 1.7e308 if col <= 0.47 else 8e307 / col  # G v itself within range
        got = G(v)
        want = Gm[:, j] * v[j]
        assert np.all(np.isfinite(got))
        assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want))
    u = rng.normal(size=G.n_params)
    np.testing.assert_array_equal(G(np.ldexp(u, 1000)), np.ldexp(G(u), 1000))


def test_hf_step_is_equivariant_under_loss_scaling():
    """Mask weights ``c·w`` scale the loss, gradient and Gauss–Newton matrix by
    ``c``: ``hf_step`` with ``c·λ`` then takes the step it takes on ``w`` with
    ``λ`` (``μ = 0``). With ``c = 2^900`` (weights near 1e271; before, ``gᵀg``
    overflowed with a RuntimeWarning) the new models are bitwise equal, the
    losses exactly ``c`` times larger, ρ equal and the loss reduced."""
    m = ElmanRNN.init(2, 4, 2, scheme="gaussian", seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3, 2))
    mask = rng.uniform(0.5, 1.0, (6, 3))
    c = 2.0**900
    hf = HessianFree(mu=0.0, max_cg=20, max_line_search=5)
    for loss, y in (("mse", rng.normal(size=(6, 3, 2))), ("xent", rng.integers(0, 2, (6, 3)))):
        big = hf_step(m, x, y, loss=loss, mask=mask * c, hf=hf, lam=c / 128)
        small = hf_step(m, x, y, loss=loss, mask=mask, hf=hf, lam=1.0 / 128)
        for k, p in small.model.params().items():
            np.testing.assert_array_equal(big.model.params()[k], p)
        assert big.loss_before == c * small.loss_before and big.loss_after == c * small.loss_after
        assert big.rho == small.rho and big.lam_after == c * small.lam_after
        assert big.loss_after < big.loss_before


# ---------------------------------------------------------------- HF steps
def _lm_rule_holds(r, factor=1.5):
    if r.rho < 0.25:
        return np.isclose(r.lam_after, r.lam_before * factor, rtol=1e-15)
    if r.rho > 0.75:
        return np.isclose(r.lam_after, r.lam_before / factor, rtol=1e-15)
    return r.lam_after == r.lam_before


def test_hf_steps_reduce_loss_and_follow_the_lm_rule():
    """On a small temporal-order instance (T = 10) and a small adding-type mse
    problem, every HF step's loss after ≤ loss before (a rejected step keeps the
    model), at least one step strictly reduces it and the loss falls overall;
    λ follows Levenberg–Marquardt: ×1.5 for ρ < 1/4, ÷1.5 for ρ > 3/4, else
    unchanged; the record's counters are consistent (Gv products = CG products
    + 1, the chosen iterate is a saved one)."""
    task = make_task("temporal_order", 10)
    batch = task.sample(30, seed=0)
    m = ElmanRNN.init(task.n_in, 8, task.n_out, scheme="smart_tanh", seed=0)
    hf = HessianFree(lam=1.0, max_cg=60)
    lam, warm = None, None
    first = None
    rhos = []
    for _ in range(6):
        r = hf_step(m, batch.x, batch.y, loss="xent", mask=batch.mask, hf=hf, lam=lam, x0=warm)
        first = r.loss_before if first is None else first
        assert r.loss_after <= r.loss_before
        assert _lm_rule_holds(r)
        assert 0 <= r.chosen_iterate <= r.cg_iterations
        assert r.gv_products in (r.cg_iterations + 1, r.cg_iterations + 2)
        # the reported loss is the new model's batch loss (the old one when rejected)
        after = r.model.value_and_grad(batch.x, batch.y, mask=batch.mask)[0] / 30
        np.testing.assert_allclose(r.loss_after, after, rtol=1e-12)
        assert (r.step_scale == 0) == (r.model is m)
        rhos.append(r.rho)
        m, lam, warm = r.model, r.lam_after, r.cg_solution
    assert r.loss_after < 0.8 * first
    assert any(q > 0.75 for q in rhos)

    rng = np.random.default_rng(1)
    xa = rng.normal(size=(8, 6, 1))
    ya = np.cumsum(xa, axis=0) / 4
    ma = ElmanRNN.init(1, 4, 1, scheme="gaussian", seed=0)
    r = hf_step(ma, xa, ya, loss="mse", hf=HessianFree(lam=10.0, mu=0.0, gv_batch=3))
    assert r.loss_after < r.loss_before and _lm_rule_holds(r)


def test_hf_lambda_grows_when_the_model_is_poor():
    """With tiny damping on a strongly nonlinear model the quadratic model
    over-predicts: ρ < 1/4 and λ grows by exactly 1.5; a rejected step (scale 0)
    returns the very same model."""
    rng = np.random.default_rng(2)
    m = ElmanRNN.init(2, 6, 3, scheme="gaussian", scale=3.0, seed=2)
    x = rng.normal(size=(12, 4, 2)) * 3
    y = rng.integers(0, 3, (12, 4))
    r = hf_step(m, x, y, loss="xent", hf=HessianFree(lam=1e-6, mu=0.0, max_line_search=0))
    assert r.rho < 0.25 and r.lam_after == pytest.approx(1.5e-6, rel=1e-15)
    if r.step_scale == 0:
        assert r.model is m


# ---------------------------------------------------------------- train()
def test_train_with_hessian_free_on_temporal_order():
    """``train(..., optimizer=HessianFree(...))`` on temporal order (T = 20): the
    loss of the last five steps averages below half the first loss and the
    evaluation error falls below chance (75 %); every step logs one "hf" event;
    the model stays finite."""
    task = make_task("temporal_order", 20)
    m = ElmanRNN.init(task.n_in, 16, task.n_out, scheme="smart_tanh", seed=0)
    h = train(m, task, optimizer=HessianFree(lam=1.0, max_cg=100), steps=25, batch_size=50,
              seed=0, eval_every=25, eval_size=200)
    assert h.steps == 25 and h.count("hf") == 25
    assert np.mean(h.loss[-5:]) < 0.5 * h.loss[0]
    assert h.eval_error[-1] < 0.5
    assert all(np.all(np.isfinite(p)) for p in h.model.params().values())


def test_train_hessian_free_divergence_and_remedies():
    """A linear RNN whose gradient exceeds the threshold: with ``"stop"`` the run
    stops at once and returns the input model; with ``"fallback"`` ``W_hh`` is
    shrunk by 0.02·0.01 per step and no HF step is taken. Remedies are refused
    with a named error; a model without a Gauss–Newton product (a bidirectional
    RNN; the LSTM and GRU have theirs, tests/test_gated_curvature.py) is refused."""
    task = make_task("addition", 20)
    m = ElmanRNN.init(2, 6, 1, scheme="gaussian", scale=1.0, seed=2, activation="identity")
    m = m.replace(W_hh=np.eye(6) * 3.0)
    s = train(m, task, optimizer=HessianFree(), steps=3, batch_size=2, seed=0, eval_every=2,
              eval_size=5, divergence="stop", divergence_threshold=1e3)
    assert s.stopped is not None and s.steps == 1
    np.testing.assert_array_equal(s.model.W_hh, m.W_hh)
    f = train(m, task, optimizer=HessianFree(), steps=2, batch_size=2, seed=0, eval_every=2,
              eval_size=5, divergence_threshold=1e3)
    assert f.count("fallback") == 2 and f.count("hf") == 0
    np.testing.assert_allclose(f.model.W_hh, np.eye(6) * 3.0 * (1 - 0.02 * 0.01) ** 2, rtol=1e-14)
    with pytest.raises(ValueError, match="`remedies`"):
        train(m, task, optimizer=HessianFree(), remedies=(GradientClipping(1.0),), steps=1)
    bidir = BidirectionalRNN.init(2, 3, 1, seed=0)
    with pytest.raises(TypeError, match="`model` must be an ElmanRNN"):
        train(bidir, task, optimizer=HessianFree(), steps=1)


# ---------------------------------------------------------------- bad inputs
def _bad_cases():
    m = ElmanRNN.init(2, 3, 2, seed=0)
    x = np.zeros((4, 2))
    y = np.zeros(4, dtype=int)
    N = sum(p.size for p in m.params().values())
    bidir = BidirectionalRNN.init(2, 3, 2, seed=0)  # no Gauss–Newton product
    learner = m.replace(alpha=0.5, learn_alpha=True)  # a model that learns α
    return [
        (lambda: HessianFree(lam=0.0), ValueError, "`lam` must be > 0"),
        (lambda: HessianFree(mu=-1.0), ValueError, "`mu` must be >= 0"),
        (lambda: HessianFree(max_cg=0), ValueError, "`max_cg` must be >= 1"),
        (lambda: HessianFree(gv_batch=0.0), ValueError, "`gv_batch` must be > 0"),
        (lambda: HessianFree(gv_batch=1.5), ValueError, "`gv_batch` must be <= 1"),
        (lambda: HessianFree(gv_batch=0), ValueError, "`gv_batch` must be >= 1"),
        (lambda: HessianFree(gv_batch=True), TypeError, "`gv_batch` must be a fraction"),
        (lambda: HessianFree(decay=1.5), ValueError, "`decay` must be <= 1"),
        (lambda: HessianFree(lm_factor=1.0), ValueError, "`lm_factor` must be > 1"),
        (lambda: HessianFree(lam="1"), TypeError, "`lam` must be a real number"),
        (lambda: gauss_newton_product(m, x, y, np.zeros(N + 1), loss="xent"), ValueError, rf"`v` must have shape \({N},\)"),
        (lambda: gauss_newton_product(m, x, y, {"W_hh": np.zeros((3, 3))}, loss="xent"), ValueError, "`v` as a dict"),
        (lambda: gauss_newton_product(m, x, y, np.full(N, np.nan), loss="xent"), ValueError, "`v` must be finite"),
        (lambda: gauss_newton_product(m, x, y, np.zeros(N), loss="hinge"), ValueError, "`loss` must be one of"),
        (lambda: gauss_newton_product(m, x, y, np.zeros(N), loss="xent", lam_struct=-1.0), ValueError, "`lam_struct` must be >= 0"),
        (lambda: gauss_newton_product(bidir, x, y, np.zeros(N), loss="xent"), TypeError, "`model` must be an ElmanRNN"),
        (lambda: gauss_newton_product(learner, x, y, np.zeros(N), loss="xent"), ValueError, "`model` learns its retention"),
        (lambda: gauss_newton_product(m, np.zeros((4, 3)), y, np.zeros(N), loss="xent"), ValueError, "`x` must have 2 input features"),
        (lambda: truncated_cg("A", np.ones(2)), TypeError, "`Gv` must be callable"),
        (lambda: truncated_cg(lambda v: v, np.ones((2, 2))), ValueError, "`b` must have 1 dimension"),
        (lambda: truncated_cg(lambda v: v, np.ones(2), np.ones(3)), ValueError, r"`x0` must have shape \(2,\)"),
        (lambda: truncated_cg(lambda v: v[:1], np.ones(2)), ValueError, "`Gv` must return shape"),
        (lambda: truncated_cg(lambda v: v, np.ones(2), max_iter=0), ValueError, "`max_iter` must be >= 1"),
        (lambda: truncated_cg(lambda v: v, np.ones(2), eps=0.0), ValueError, "`eps` must be > 0"),
        (lambda: hf_step(m, x, y, loss="xent", x0=np.zeros(3)), ValueError, rf"`x0` must have shape \({N},\)"),
        (lambda: hf_step(m, x, y, loss="xent", hf=0.5), TypeError, "`hf` must be a HessianFree"),
        (lambda: hf_step(m, x, y, loss="xent", lam=-1.0), ValueError, "`lam` must be > 0"),
        (lambda: unflatten_params(m, np.zeros(5)), ValueError, rf"`vector` must have shape \({N},\)"),
        # raised AttributeError ('str' object has no attribute 'params')
        (lambda: unflatten_params("elman", np.zeros(N)), TypeError, "`model` must be a model with params"),
        (lambda: unflatten_params(ElmanRNN, np.zeros(N)), TypeError, "`model` must be a model with params"),
        # NaN raised "cannot convert float NaN to integer", a str multiplied a sequence
        (lambda: HessianFree(gv_batch=0.5).curvature_size(float("nan")), TypeError, "`batch_size` must be an integer"),
        (lambda: HessianFree(gv_batch=0.5).curvature_size("4"), TypeError, "`batch_size` must be an integer"),
        (lambda: HessianFree(gv_batch=2).curvature_size(0), ValueError, "`batch_size` must be >= 1, got 0"),
        # a complex array was cast with a ComplexWarning, None became NaN
        (lambda: flatten_params({"W": np.ones(2, complex)}), TypeError, r"`params\['W'\]` must be a real floating-point array"),
        (lambda: flatten_params({"W": np.ones(2), "b": None}), TypeError, r"`params\['b'\]` must be a real floating-point array"),
        (lambda: flatten_params({"W": "junk"}), TypeError, r"`params\['W'\]` must be a real floating-point array"),
        # a Gv returning a str raised "could not convert string to float"
        (lambda: truncated_cg(lambda v: "junk", np.ones(2)), TypeError, r"`Gv\(v\)` must be a real floating-point array"),
        (lambda: truncated_cg(lambda v: v.astype(complex), np.ones(2)), TypeError, r"`Gv\(v\)` must be a real"),
        (lambda: truncated_cg(lambda v: v, np.array([1.0, np.inf])), ValueError, "`b` must be finite"),
        # a warm start of 1e300: the overflow warning of xᵀx
        (lambda: truncated_cg(lambda v: v, np.ones(2), np.full(2, 1e300)), ValueError,
         r"`x0` is too large for this system: the quadratic model φ\(x0\)"),
        # v[i] = 1.7e308 gave an all-NaN product; G v beyond float64 is refused
        (lambda: GaussNewton(m.replace(W_yh=m.W_yh * 100), x, np.zeros((4, 2)), loss="mse")(np.full(N, 1.7e308)),
         ValueError, r"`v` is too large: G v has entries beyond float64's range \(max \|v\| = 1.7e\+308, max \|G v\| = \d"),
        (lambda: train(m, make_task("adding", 4), optimizer=HessianFree(), remedies=object(), steps=1), TypeError,
         "`remedies` must be a tuple"),
    ]


@pytest.mark.parametrize("case", range(42))
def test_bad_inputs_raise_named_errors(case):
    """Each bad argument raises ValueError/TypeError naming the argument and the
    expected value or shape."""
    fn, exc, msg = _bad_cases()[case]
    with pytest.raises(exc, match=msg):
        fn()


def test_bad_case_table_is_complete():
    """The parametrised range above covers the whole table."""
    assert len(_bad_cases()) == 42


# ---------------------------------------------------------------- verify rows, nojit
def test_verify_rows_pass():
    """The ``rnntheory verify`` rows for Hessian-free pass, with their statistic
    inside the stated tolerance (PSD/symmetry to 1e-12, FD to 1e-6)."""
    from rnntheory.checks import CheckContext
    from rnntheory.checks.curvature import gv_fd, gv_psd

    psd, fd = gv_psd(CheckContext()), gv_fd(CheckContext())
    assert psd.passed and psd.worst <= 1e-12 and psd.pairs > 0
    assert fd.passed and fd.worst <= 1e-6 and fd.pairs > 0


NOJIT = textwrap.dedent(
    r"""
    import numba, numpy as np
    assert numba.config.DISABLE_JIT
    import test_hessian_free as T
    from rnntheory import ElmanRNN
    from rnntheory.training import GaussNewton
    rng = np.random.default_rng(0)
    worst = 0.0
    for form in ("standard", "pascanu"):
        for alpha in (None, 0.3):
            for loss in ("xent", "mse"):
                for n_out in (2, None):
                    m = ElmanRNN.init(2, 3, n_out, scheme="gaussian", scale=1.2, seed=1,
                                      form=form, alpha=alpha)
                    x = rng.normal(size=(3, 2, 2))
                    y = T._targets(rng, m, loss, 3, 2)
                    mask = rng.uniform(0, 1, (3, 2))
                    G, S = T._gn_matrix(m, x, loss, mask, 0.5)
                    v = rng.normal(size=G.shape[0])
                    got = GaussNewton(m, x, y, loss=loss, mask=mask, lam_struct=0.5)(v)
                    worst = max(worst, T._rel(got, (G + 0.5 * S) @ v))
    print(worst)
    assert worst < 1e-10, worst
    """
)


def test_kernels_without_jit():
    """The Gv kernels' Python bodies (``NUMBA_DISABLE_JIT=1``, bounds-checked
    indexing) give the explicit complex-step product for every form, both losses,
    with and without readout."""
    here = Path(__file__).parent
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]))
    r = subprocess.run([sys.executable, "-c", NOJIT], capture_output=True, text=True, env=env,
                       timeout=300, check=False, cwd=here)
    assert r.returncode == 0, r.stderr[-3000:]


def test_trial_step_beyond_the_float_range_has_infinite_loss():
    """A trial model whose pre-activations could pass float64's range (largest
    row sum of |W_hh| = 1.797e308) is refused by the model's range check; the
    line search's loss of it is ``inf``, so it is never accepted (the kernel's
    accumulation would have given a wrong finite loss). A model inside the range
    gets the loss ``value_and_grad`` reports, averaged over the sequences."""
    from rnntheory.training.hessian_free import _mean_loss

    m = ElmanRNN.init(2, 4, 2, scheme="gaussian", seed=3)
    rng = np.random.default_rng(5)
    T, B = 6, 3
    x = rng.normal(size=(T, B, 2))
    y = rng.normal(size=(T, B, 2))
    x3, h, batched = m._inputs_h0(x, None)
    loss, tgt, mask = m._loss_setup(y, "mse", None, T, B, batched)
    E, _ = m.value_and_grad(x, y, loss="mse")
    assert _mean_loss(m, x3, h, loss, tgt, mask) == pytest.approx(E / B, rel=1e-13)
    far = m.replace(W_hh=m.W_hh * (1.797e308 / np.abs(m.W_hh).sum(axis=1).max()))
    with pytest.raises(ValueError, match="`W_hh` of this model is too large"):
        far.forward(x)
    assert _mean_loss(far, x3, h, loss, tgt, mask) == math.inf


# ---------------------------------------------------------------- the cell's operator, the cell's loss
@pytest.mark.parametrize("form", ["standard", "pascanu"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("alpha", [None, 0.3])
def test_model_gauss_newton_is_the_explicit_matrix_and_counts_its_products(form, loss, alpha):
    """``model.gauss_newton(...)`` is the cell's ``Gv`` operator: every product is
    ``(G + λ_s S) v`` of the explicit complex-step matrices (``G`` alone with
    ``lam_struct=0`` per call), the counter ``products`` counts each one, and the
    operator is the one ``GaussNewton(model, ...)`` builds (same numbers)."""
    rng = np.random.default_rng(13)
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.2, seed=13, form=form, alpha=alpha)
    T, B = 4, 2
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 1.5, (T, B))
    Gm, Sm = _gn_matrix(m, x, loss, mask, 0.4)
    G = m.gauss_newton(x, y, loss=loss, mask=mask, lam_struct=0.4)
    assert G.products == 0 and G.n_params == Gm.shape[0]
    vs = rng.normal(size=(3, G.n_params))
    for i, v in enumerate(vs, 1):
        assert _rel(G(v), (Gm + 0.4 * Sm) @ v) <= 1e-10
        assert G.products == i
    assert _rel(G(vs[0], lam_struct=0.0), Gm @ vs[0]) <= 1e-10
    assert G.products == 4
    same = GaussNewton(m, x, y, loss=loss, mask=mask, lam_struct=0.4)(vs[1])
    np.testing.assert_array_equal(G(vs[1]), same)


def test_unchecked_product_beyond_float64_is_the_exact_scaling():
    """``G(v, strict=False)`` hands back a product beyond float64's range instead
    of refusing it (truncated CG stops on it by itself): ``G`` is linear and the
    product runs on ``v`` scaled by a power of two, so ``G(2^k u)`` is exactly
    ``2^k G(u)``: ``±inf`` where that passes the range, the same bits elsewhere.
    The strict call refuses the same ``v`` by name; inside the range both agree."""
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=0)
    m = m.replace(W_yh=m.W_yh * 100)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 2, 2)), np.zeros((4, 2, 2))
    G = m.gauss_newton(x, y, loss="mse", lam_struct=0.2)
    u = rng.uniform(0.5, 1.0, G.n_params) * rng.choice([-1.0, 1.0], G.n_params)
    Gu = G(u)
    np.testing.assert_array_equal(G(u, strict=False), Gu)
    # the largest entry of 2^k G u passes the range, entries of smaller exponent do not
    k = 1025 - math.frexp(np.max(np.abs(Gu)))[1]
    assert k <= 1023  # 2^k u itself is finite
    with np.errstate(over="ignore"):
        want = np.ldexp(Gu, k)
    assert np.isinf(want).any() and np.isfinite(want).any()
    got = G(np.ldexp(u, k), strict=False)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="`v` is too large: G v has entries beyond float64's range"):
        G(np.ldexp(u, k))
    with pytest.raises(TypeError, match="`strict` must be a bool"):
        G(u, strict="no")


def _naive_batch_loss(m, x, y, loss, mask=None, h0=None):
    """Eq. 4 summed over the sequences of a batch, by the loop reference."""
    return sum(
        naive.loss(m, x[:, b], y[:, b], loss, None if mask is None else mask[:, b],
                   None if h0 is None else h0[b])
        for b in range(x.shape[1])
    )


@pytest.mark.parametrize("form", ["standard", "pascanu"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize("n_out", [2, None])
def test_model_loss_equals_the_loop_reference(form, loss, n_out):
    """``model.loss`` is Eq. 4 summed over steps and sequences with the mask's
    weights, as the loop reference computes it, for every form, both losses,
    with and without a readout, from a given ``h0``; a single sequence gives the
    batch of one; subnormal mask weights (5e-324) give the reference's value."""
    rng = np.random.default_rng(21)
    m = ElmanRNN.init(2, 3, n_out, scheme="gaussian", scale=1.1, seed=21, form=form, alpha=0.25)
    T, B = 5, 3
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 2.0, (T, B))
    h0 = rng.normal(size=(B, m.n_hidden))
    ref = _naive_batch_loss(m, x, y, loss, mask, h0)
    assert m.loss(x, y, loss=loss, mask=mask, h0=h0) == pytest.approx(ref, rel=1e-12)
    assert m.loss(x[:, 0], y[:, 0], loss=loss) == pytest.approx(naive.loss(m, x[:, 0], y[:, 0], loss), rel=1e-12)
    tiny = np.full((T, B), 5e-324)
    assert m.loss(x, y, loss=loss, mask=tiny) == pytest.approx(_naive_batch_loss(m, x, y, loss, tiny), rel=1e-12)


def test_model_loss_at_the_edges_of_float64():
    """Beyond the range the loss is ``inf`` (never NaN, never a warning): mask
    weights of 1e308 on a loss above 2, and ReLU states that double each step
    for 1100 steps (the range check does not bound their growth over time; the
    loop reference overflows too). A model whose pre-activations could pass the
    range is refused by name, with the ``ReachError`` a trainer tells apart."""
    from rnntheory._validation import ReachError

    rng = np.random.default_rng(4)
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=4)
    x, y = rng.normal(size=(4, 2, 2)), np.full((4, 2, 2), 10.0)
    assert _naive_batch_loss(m, x, y, "mse") > 2 * 4 * 2
    assert m.loss(x, y, loss="mse", mask=np.full((4, 2), 1e308)) == math.inf
    relu = ElmanRNN(2.0 * np.eye(2), np.ones((2, 1)), np.zeros(2), np.eye(2), np.zeros(2), activation="relu")
    xs, ys = np.ones((1100, 1)), np.zeros((1100, 2))
    with np.errstate(all="ignore"):
        assert not np.isfinite(naive.loss(relu, xs, ys, "mse"))
    assert relu.loss(xs, ys, loss="mse") == math.inf
    far = m.replace(W_hh=m.W_hh * (1.797e308 / np.abs(m.W_hh).sum(axis=1).max()))
    with pytest.raises(ReachError, match="`W_hh` of this model is too large"):
        far.loss(x, y, loss="mse")
    with pytest.raises(ValueError, match=r"`x` must have at least one time step \(T >= 1\)"):
        m.loss(np.zeros((0, 2, 2)), np.zeros((0, 2, 2)), loss="mse")


def test_training_sees_the_model_only_through_public_methods():
    """Hessian-free reaches the curvature through ``model.gauss_newton`` and a
    trial point's loss through ``model.loss``: no module of ``training/`` reads a
    private attribute of a model, and ``hessian_free`` reads no private attribute
    of anything but itself."""
    import ast

    import rnntheory.training as training

    here = Path(training.__file__).parent
    models = {"model", "m", "cand", "new", "new_model", "best_model"}
    bad = []
    for path in sorted(here.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                continue
            base = ast.unparse(node.value)
            if base in models or (path.name == "hessian_free.py" and base not in ("self", "cls")):
                bad.append(f"{path.name}:{node.lineno} {base}.{node.attr}")
    assert bad == []
