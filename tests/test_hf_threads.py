"""Gauss–Newton products on threads of our own.

``GaussNewton.__call__`` splits a batch into contiguous ranges of sequences for
the two recurrences (the R-forward pass and the backward pass of the
linearised model) and into contiguous ranges of the ``T·B`` rows for
everything else (the input-driven part of ``R{a_t}``, the readout, the output
Hessian, the weight gradients as sums of per-range partial products).
Sequences never interact and ``G = Σ_b G_b`` is a sum over sequences, so the
product must not depend on the split. The ``threaded`` fixture lowers the work
threshold to 0 so that tiny problems take the threaded path.

Oracles: the explicit matrices ``Σ_{b,t} J_{z_t}ᵀ H_{L,t} J_{z_t}`` and
``Σ_{b,t} J_{h_t}ᵀ J_{h_t}`` built column by column by complex step through the
loop reference (``_gn_matrix`` of ``tests/test_hessian_free.py``), the
one-thread product, and the sum of single-sequence products.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from test_elman_kernels import seed_of
from test_hessian_free import _gn_matrix, _targets

import rnntheory
from rnntheory import ElmanRNN
from rnntheory.cells import _gv_kernels as GK
from rnntheory.training import GaussNewton

FORMS = [("standard", None), ("pascanu", None), ("standard", 0.3), ("pascanu", np.linspace(0.1, 0.6, 3))]


def _max_rel(got, ref):
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def _spy_ranges(monkeypatch):
    """Record the ``(b0, b1)`` ranges of sequences the R-forward kernel is run on."""
    seen = []
    kernel = GK.gv_rforward

    def spy(*args):
        seen.append(tuple(args[-2:]))
        return kernel(*args)

    monkeypatch.setattr(GK, "gv_rforward", spy)
    return seen


def _split_into(seen, B, k):
    """Whether ``seen`` holds ``k`` contiguous ranges covering ``0..B``."""
    r = sorted(seen)
    return len(r) == k and r[0][0] == 0 and r[-1][1] == B and all(
        a[1] == b[0] for a, b in pairwise(r))


@pytest.mark.parametrize("n_out", [None, 3])
@pytest.mark.parametrize("loss", ["xent", "mse"])
@pytest.mark.parametrize(("form", "alpha"), FORMS)
def test_threaded_gv_equals_explicit_matrix(threaded, monkeypatch, form, alpha, loss, n_out):
    """On 2, 3 and 8 threads (B = 5: ranges of 1–3 sequences, and more threads
    than sequences), ``G v = Σ_{b,t} J_{z_t}ᵀ H_{L,t} J_{z_t} v + λ_s Σ_{b,t}
    J_{h_t}ᵀ J_{h_t} v`` with ``H_{L,t} = w_t (diag p_t − p_t p_tᵀ)`` (xent) or
    ``w_t I`` (mse), the Jacobians by complex step through the loop reference,
    to 1e-10 relative, for ``λ_s = 0.7`` and for the override ``λ_s = 0``; and
    the threaded product equals the one-thread product to 1e-12 (only the
    order of the row sums of the weight gradients differs)."""
    rng = np.random.default_rng(seed_of("gv-threads", form, np.asarray(alpha).tolist(), loss, n_out))
    m = ElmanRNN.init(2, 3, n_out, scheme="gaussian", scale=1.3, seed=int(rng.integers(1 << 30)),
                      form=form, alpha=alpha)
    T, B, lam_s = 4, 5, 0.7
    x = rng.normal(size=(T, B, 2))
    y = _targets(rng, m, loss, T, B)
    mask = rng.uniform(0.0, 1.5, (T, B))
    mask[1, 2] = 0.0
    Gm, Sm = _gn_matrix(m, x, loss, mask, lam_s)
    v = rng.normal(size=Gm.shape[0])
    ref_damped, ref_plain = (Gm + lam_s * Sm) @ v, Gm @ v
    rnntheory.set_num_threads(1)
    G1 = GaussNewton(m, x, y, loss=loss, mask=mask, lam_struct=lam_s)
    one_damped, one_plain = G1(v), G1(v, lam_struct=0.0)
    assert _max_rel(one_damped, ref_damped) <= 1e-10
    seen = _spy_ranges(monkeypatch)
    for threads in (2, 3, 8):
        rnntheory.set_num_threads(threads)
        G = GaussNewton(m, x, y, loss=loss, mask=mask, lam_struct=lam_s)
        seen.clear()
        damped = G(v)
        assert _split_into(seen, B, min(threads, B))  # the threaded path is the one under test
        plain = G(v, lam_struct=0.0)
        assert _max_rel(damped, ref_damped) <= 1e-10, threads
        assert _max_rel(plain, ref_plain) <= 1e-10, threads
        assert _max_rel(damped, one_damped) <= 1e-12, threads
        assert _max_rel(plain, one_plain) <= 1e-12, threads


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_threaded_blas_sized_gv_is_sum_of_sequence_products(threaded, monkeypatch, form):
    """At B·n² ≥ the per-step BLAS threshold (B = 32, n = 64) each thread's range
    of sequences still takes the BLAS product (the whole batch decides): on two
    threads the batch product equals the one-thread product to 1e-12, and both
    equal ``Σ_b G_b v``, the sum of the products of the single sequences
    (``G = Σ_b Σ_t …`` is additive over sequences), to 1e-10."""
    rng = np.random.default_rng(64 + len(form))
    m = ElmanRNN.init(2, 64, 3, scheme="gaussian", scale=1.0, seed=5, form=form, alpha=np.linspace(0.2, 0.5, 64))
    T, B = 3, 32
    x = rng.normal(size=(T, B, 2))
    y = rng.integers(0, 3, (T, B))
    mask = rng.uniform(0.2, 1.0, (T, B))
    rnntheory.set_num_threads(1)
    G1 = GaussNewton(m, x, y, loss="xent", mask=mask, lam_struct=0.4)
    v = rng.normal(size=G1.n_params)
    one = G1(v)
    per_seq = sum(
        GaussNewton(m, x[:, b], y[:, b], loss="xent", mask=mask[:, b], lam_struct=0.4)(v)
        for b in range(B)
    )
    rnntheory.set_num_threads(2)
    G2 = GaussNewton(m, x, y, loss="xent", mask=mask, lam_struct=0.4)
    seen = _spy_ranges(monkeypatch)
    two = G2(v)
    assert _split_into(seen, B, 2)
    assert _max_rel(two, one) <= 1e-12
    assert _max_rel(two, per_seq) <= 1e-10
    assert _max_rel(one, per_seq) <= 1e-10


def test_threaded_gv_float32_matches_float64(threaded, monkeypatch):
    """A float32 model on 3 threads computes in single precision: its product
    equals the float64 product of the same (float32-representable) parameters
    and inputs to single-precision rounding (relative 1e-4)."""
    rng = np.random.default_rng(32)
    m64 = ElmanRNN.init(2, 5, 3, scheme="gaussian", scale=1.1, seed=3, alpha=0.25)
    m32 = m64.replace(**{k: p.astype(np.float32) for k, p in m64.params().items()})
    m64 = m32.replace(**{k: p.astype(np.float64) for k, p in m32.params().items()})
    x = rng.normal(size=(6, 4, 2)).astype(np.float32)
    y = rng.normal(size=(6, 4, 3)).astype(np.float32)
    rnntheory.set_num_threads(3)
    G32 = GaussNewton(m32, x, y, loss="mse", lam_struct=0.2)
    G64 = GaussNewton(m64, x.astype(np.float64), y.astype(np.float64), loss="mse", lam_struct=0.2)
    v = rng.normal(size=G64.n_params).astype(np.float32).astype(np.float64)
    seen = _spy_ranges(monkeypatch)
    got = G32(v)
    assert _split_into(seen, 4, 3)
    assert _max_rel(got, G64(v)) <= 1e-4

