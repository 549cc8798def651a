"""Pascanu's regularizer Ω (Eqs. 15–16): value, gradients, symbolic agreement, training.

Oracles: the loop reference ``naive.omega`` (flow from ``naive.bptt``, explicit
step Jacobians from ``naive.step_jacobian``), float64 central differences,
SymPy's ``omega_functions`` (lambdified), and PyTorch autograd (double
backward through BPTT) for the full gradient.
"""

from __future__ import annotations

import os

import naive
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from oracle import torch_or_skip

from rnntheory import ElmanRNN, Trace
from rnntheory import strategies as rst
from rnntheory._oracles import central_jacobian
from rnntheory.remedies import omega, omega_full_gradient
from rnntheory.tasks import TemporalOrder
from rnntheory.training import SGD, GradientClipping, Omega, train

VARIANTS = st.sampled_from(["squared", "norm"])


def _data(model, T, B, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, model.n_in))
    y = rng.normal(size=(T, B, model.n_out))
    return x, y


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))


models = rst.elman_models(n_hidden=rst.sizes(1, 4), n_out=2, leaky=st.booleans(), weight_norm=st.floats(0.2, 2.5))


@given(models, VARIANTS, st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**16))
def test_value_is_nonnegative_and_matches_the_loop_reference(model, variant, T, B, seed):
    """Ω = mean over counted (k, b) of (‖J_{k+1}ᵀ v‖^p/‖v‖^p − 1)² ≥ 0 (p = 2 or 1),
    with v = ∂E/∂h_{k+1}: equal (rel 1e-10) to the loop reference built from
    explicit step Jacobians and a loop BPTT, for every form, leaky or not, batched."""
    x, y = _data(model, T, B, seed)
    _, g = model.value_and_grad(x, y, loss="mse")
    res = omega(model, model.forward(x), g.flow, variant=variant)
    want = naive.omega(model, x, y, "mse", variant=variant)
    assert res.value >= 0.0
    assert res.value == pytest.approx(want, rel=1e-10, abs=1e-14)


@given(rst.orthogonal_matrices(rst.sizes(1, 5)), st.sampled_from(["standard", "pascanu"]), VARIANTS,
       st.integers(0, 2**16))
def test_orthogonal_linear_rnn_has_zero_omega(Q, form, variant, seed):
    """With W_hh orthogonal and f the identity (no leak), J_{k+1} = W_hh is
    orthogonal, so ‖J_{k+1}ᵀ v‖ = ‖v‖ for every term: Ω = 0 (to rounding,
    ≤ 1e-24) and Ω is at its minimum, so its fixed-flow gradient vanishes (≤ 1e-12)."""
    n = Q.shape[0]
    rng = np.random.default_rng(seed)
    m = ElmanRNN(Q, rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=(2, n)), np.zeros(2),
                 activation="identity", form=form)
    x, y = _data(m, 6, 2, seed)
    _, g = m.value_and_grad(x, y, loss="mse")
    res = omega(m, m.forward(x), g.flow, variant=variant)
    assert res.count > 0
    assert res.value <= 1e-24
    np.testing.assert_allclose(res.ratio[res.counted], 1.0, atol=1e-13)
    assert np.max(np.abs(res.W_hh)) <= 1e-12


@given(models, VARIANTS, st.booleans(), st.integers(0, 2**16))
def test_fixed_flow_gradient_equals_fixed_flow_finite_differences(model, variant, hold, seed):
    """∂Ω/∂W_hh with v = ∂E/∂h_{k+1}, h_k and the input terms held fixed equals
    central differences (rel 1e-6) of W ↦ Ω built from explicit step Jacobians
    J_{k+1}(W) at the frozen states. With hold_fprime, f′(a_{k+1}) is frozen too
    (J = diag(f′) W for the standard form; Pascanu's form is unchanged).

    The comparison allows 1e-6 relative plus 1e-8 absolute: the central
    difference of an O(1) function with step 1e-6 carries a rounding error
    near ε·Ω/h ≈ 1e-10. For the "norm" variant, (‖u‖/‖v‖ − 1)² has a kink at
    u = 0, so examples with a counted ratio below 1e-3 (where a step of 1e-6
    can straddle the kink) are set aside: there the exact derivative and a
    central difference measure different things."""
    x, y = _data(model, 4, 2, seed)
    _, g = model.value_and_grad(x, y, loss="mse")
    tr = model.forward(x)
    res = omega(model, tr, g.flow, variant=variant, hold_fprime=hold)
    counted = res.counted
    assume(variant != "norm" or not np.any(res.ratio[counted] < 1e-3))

    def fixed(W):
        total = 0.0
        for b in range(x.shape[1]):
            if hold and model.form == "standard":
                vals = []
                d = model.activation.fprime(tr.a[:, b])
                for k in range(x.shape[0]):
                    J = np.diag(d[k]) @ W
                    if model.alpha is not None:
                        J = np.diag(model.alpha) + np.diag(1 - model.alpha) @ J
                    v = g.flow[k + 1, b]
                    s = np.sum((J.T @ v) ** 2) / (v @ v) if v @ v > 0 else 1.0
                    vals.append((s - 1) ** 2 if variant == "squared" else (np.sqrt(s) - 1) ** 2)
                vals = np.array(vals)
            else:
                vals, _ = naive.omega_terms(model, x[:, b], g.flow[:, b], W=W, variant=variant)
            total += float(np.sum(vals[counted[:, b]]))
        return total / max(res.count, 1)

    assert fixed(model.W_hh) == pytest.approx(res.value, rel=1e-10, abs=1e-14)
    G = central_jacobian(fixed, model.W_hh.copy())
    assert np.max(np.abs(res.W_hh - G)) <= 1e-6 * np.max(np.abs(G)) + 1e-8


@pytest.mark.parametrize(
    ("form", "squared", "act", "T"),
    [("pascanu", True, "tanh", 2), ("standard", False, "sigmoid", 1), ("standard", True, "tanh", 2)],
)
def test_agrees_with_the_symbolic_omega(form, squared, act, T):
    """n = 2, one sequence: Ω and its fixed-flow gradient equal the mean over k
    of SymPy's lambdified Ω_k(W, h_k, c_k, v_{k+1}) and its closed-form gradient,
    c_k = W_hx x_{k+1} + b_h (rel 1e-10)."""
    from rnntheory.symbolic.omega import omega_functions

    val, grad = omega_functions(2, form, squared=squared, act=act)
    rng = np.random.default_rng(7)
    m = ElmanRNN(rng.normal(size=(2, 2)), rng.normal(size=(2, 1)), rng.normal(size=2), rng.normal(size=(1, 2)),
                 np.zeros(1), activation=act, form=form)
    x, y = rng.normal(size=(T, 1)), rng.normal(size=(T, 1))
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    res = omega(m, tr, g.flow, variant="squared" if squared else "norm")
    c = x @ m.W_hx.T + m.b_h
    want_v = np.mean([val(m.W_hh, tr.h[k], c[k], g.flow[k + 1]) for k in range(T)])
    want_g = np.mean([np.asarray(grad(m.W_hh, tr.h[k], c[k], g.flow[k + 1]), float) for k in range(T)], axis=0)
    assert res.value == pytest.approx(float(want_v), rel=1e-10)
    assert _rel(res.W_hh, want_g) < 1e-10


def test_batch_is_the_count_weighted_mean_of_its_sequences():
    """Ω of a batch is Σ_b |K_b| Ω_b / Σ_b |K_b| (the mean over every counted
    term), and so is its gradient (rel 1e-12); ratio and counted are per term."""
    m = ElmanRNN.init(2, 4, 3, scheme="gaussian", scale=1.3, seed=3, form="pascanu", alpha=0.2)
    x, y = _data(m, 7, 3, 11)
    mask = np.ones((7, 3))
    mask[4:, 1] = 0.0  # sequence 1 has no target after step 4: v_{k+1} = 0 there
    _, g = m.value_and_grad(x, y, loss="mse", mask=mask)
    res = omega(m, m.forward(x), g.flow)
    assert res.counted[:, 1].sum() == 4 and res.counted[:, [0, 2]].all()
    singles = []
    for b in range(3):
        _, gb = m.value_and_grad(x[:, b], y[:, b], loss="mse", mask=mask[:, b])
        singles.append(omega(m, m.forward(x[:, b]), gb.flow))
    counts = np.array([s.count for s in singles])
    assert res.count == counts.sum()
    assert res.value == pytest.approx(sum(c * s.value for c, s in zip(counts, singles, strict=True)) / counts.sum(),
                                      rel=1e-12)
    want_g = sum(c * s.W_hh for c, s in zip(counts, singles, strict=True)) / counts.sum()
    assert _rel(res.W_hh, want_g) < 1e-12
    assert res.ratio.shape == (7, 3) and np.all(res.ratio[~res.counted] == 1.0)


def test_threshold_leaves_out_small_error_signals():
    """Terms with ‖v_{k+1}‖² < threshold are left out of the mean: with the
    threshold between the smallest and largest ‖v‖², Ω equals the mean of the
    kept terms of the loop reference (rel 1e-10)."""
    m = ElmanRNN.init(1, 3, 2, scheme="gaussian", scale=0.5, seed=1)
    x, y = _data(m, 8, 1, 4)
    _, g = m.value_and_grad(x[:, 0], y[:, 0], loss="mse")
    vals, nv2 = naive.omega_terms(m, x[:, 0], naive.bptt(m, x[:, 0], y[:, 0], "mse")["flow"])
    thr = float(np.median(nv2))
    res = omega(m, m.forward(x[:, 0]), g.flow, threshold=thr)
    keep = nv2 >= thr
    assert 0 < keep.sum() < len(keep)
    assert np.array_equal(res.counted, keep)
    assert res.value == pytest.approx(float(np.mean(vals[keep])), rel=1e-10)


def test_float32_agrees_with_float64():
    """A float32 model gives Ω and its gradient within 1e-4 (relative) of the
    same weights in float64, with the gradient in float32."""
    m64 = ElmanRNN.init(3, 6, 2, scheme="gaussian", scale=1.2, seed=5)
    m32 = ElmanRNN.init(3, 6, 2, scheme="gaussian", scale=1.2, seed=5, dtype=np.float32)
    x, y = _data(m64, 10, 4, 2)
    r = []
    for m in (m64, m32):
        _, g = m.value_and_grad(x.astype(m.dtype), y.astype(m.dtype), loss="mse")
        r.append(omega(m, m.forward(x.astype(m.dtype)), g.flow))
    assert r[1].W_hh.dtype == np.float32
    assert r[1].value == pytest.approx(r[0].value, rel=1e-4)
    assert _rel(r[1].W_hh, r[0].W_hh) < 1e-4


def test_full_gradient_equals_finite_differences_of_the_loop_reference():
    """omega_full_gradient: dΩ/dW_hh through the states and the flow equals
    central differences of the loop reference Ω (loop BPTT, explicit Jacobians)
    in W_hh (rel 1e-6), and differs from the fixed-flow gradient."""
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.1, seed=8, form="standard")
    x, y = _data(m, 5, 2, 3)
    full = omega_full_gradient(m, x, y, loss="mse")
    G = central_jacobian(lambda W: naive.omega(m.replace(W_hh=W), x, y, "mse"), m.W_hh.copy(), eps=1e-5)
    assert _rel(full.W_hh, G) < 1e-6
    _, g = m.value_and_grad(x, y, loss="mse")
    fixed = omega(m, m.forward(x), g.flow)
    assert full.value == pytest.approx(fixed.value, rel=1e-14)
    assert _rel(fixed.W_hh, full.W_hh) > 1e-3


@pytest.mark.oracle
@pytest.mark.parametrize(("form", "alpha"), [("standard", None), ("pascanu", 0.3)])
def test_full_gradient_equals_torch_double_backward(form, alpha):
    """The full dΩ/dW_hh equals PyTorch autograd through BPTT (create_graph):
    v_{k+1} = ∂E/∂h_{k+1} by autograd, J_{k+1}ᵀ v by a vector-Jacobian
    product, then the gradient of Ω in W_hh (rel 1e-6, float64)."""
    torch = torch_or_skip()
    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.2, seed=4, form=form, alpha=alpha)
    x, y = _data(m, 5, 1, 9)
    x, y = x[:, 0], y[:, 0]
    W = torch.tensor(m.W_hh, requires_grad=True)
    U, b, V = (torch.tensor(a) for a in (m.W_hx, m.b_h, m.W_yh))
    hs = [torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    for t in range(5):
        hp = hs[-1]
        g = torch.tanh(W @ hp + U @ torch.tensor(x[t]) + b) if form == "standard" else (
            W @ torch.tanh(hp) + U @ torch.tensor(x[t]) + b)
        hs.append(g if alpha is None else alpha * hp + (1 - alpha) * g)
    E = sum(0.5 * torch.sum((V @ h - torch.tensor(y[t])) ** 2) for t, h in enumerate(hs[1:]))
    flow = torch.autograd.grad(E, hs, create_graph=True)
    terms = []
    for k in range(5):
        u = torch.autograd.grad(hs[k + 1], hs[k], grad_outputs=flow[k + 1], create_graph=True)[0]
        terms.append((torch.sum(u**2) / torch.sum(flow[k + 1] ** 2) - 1) ** 2)
    omega_t = sum(terms) / 5
    (gW,) = torch.autograd.grad(omega_t, W)
    full = omega_full_gradient(m, x, y, loss="mse")
    assert full.value == pytest.approx(float(omega_t.detach()), rel=1e-12)
    assert _rel(full.W_hh, gW.numpy()) < 1e-6


def test_train_with_clipping_and_omega_records_omega():
    """train(..., remedies=(GradientClipping(1), Omega(w))): Ω is recorded for
    every step; at step 1 it equals the loop reference on the step's batch, the
    recorded loss is E/B + w·Ω, and (no clipping active) the SGD update is
    W_hh − lr·(∂E/∂W_hh / B + w·∂Ω/∂W_hh) with the gradient of Pascanu et al.'s
    code (flow and f′ held fixed, the record's default); with hold_fprime=False
    it is the exact fixed-flow gradient."""
    task = TemporalOrder(10)
    m = ElmanRNN.init(task.n_in, 6, task.n_out, scheme="smart_tanh", seed=0)
    h = train(m, task, optimizer=SGD(0.01), remedies=(GradientClipping(1.0), Omega(weight=2.0)),
              steps=6, batch_size=4, seed=1, eval_every=3, eval_size=10)
    assert h.omega.shape == (6,) and np.all(np.isfinite(h.omega)) and np.all(h.omega >= 0)
    batch = task.sample(4, np.random.default_rng(1))
    want = naive.omega(m, batch.x, batch.y, "xent", mask=batch.mask)
    assert h.omega[0] == pytest.approx(want, rel=1e-10)
    value, g = m.value_and_grad(batch.x, batch.y, loss=task.loss, mask=batch.mask)
    assert h.loss[0] == pytest.approx(value / 4 + 2.0 * want, rel=1e-12)
    for hold in (True, False):
        one = train(m, task, optimizer=SGD(0.01), remedies=(Omega(weight=2.0, hold_fprime=hold),), steps=1,
                    batch_size=4, seed=1, eval_every=1, eval_size=4)
        res = omega(m, m.forward(batch.x), g.flow, hold_fprime=hold)
        np.testing.assert_allclose(one.model.W_hh, m.W_hh - 0.01 * (g.W_hh / 4 + 2.0 * res.W_hh),
                                   rtol=1e-12, atol=1e-15)
    plain = train(m, task, steps=2, batch_size=4, seed=1, eval_every=1, eval_size=4)
    assert plain.omega.shape == (0,)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda m, tr, f: omega("model", tr, f), TypeError, "`model` must be an ElmanRNN"),
        (lambda m, tr, f: omega(m, "trace", f), TypeError, "`trace` must be a Trace"),
        (lambda m, tr, f: omega(m, tr, f[:-1]), ValueError, "`flow` must have shape"),
        (lambda m, tr, f: omega(m, tr, np.where(f == f.flat[0], np.nan, f)), ValueError, "`flow` must be finite"),
        (lambda m, tr, f: omega(m, tr, f, variant="cube"), ValueError, "`variant` must be one of"),
        (lambda m, tr, f: omega(m, tr, f, threshold=-1.0), ValueError, "`threshold` must be >= 0"),
        (lambda m, tr, f: omega(m, tr, f, hold_fprime=1), TypeError, "`hold_fprime` must be a bool"),
        (lambda m, tr, f: omega(m, Trace(tr.h[:, :2], tr.a, tr.y), f), ValueError, "`trace.h` must have shape"),
        (lambda m, tr, f: omega_full_gradient(m, np.zeros((3, 1)), np.zeros((3, 2)), loss="mse", eps=0.0),
         ValueError, r"`eps` must be >= 2.220446049250313e-16, got 0.0"),
        (lambda m, tr, f: omega_full_gradient(m, np.zeros((3, 1)), np.zeros((3, 2)), loss="mse", eps=1e-300),
         ValueError, r"`eps` must be >= 2.220446049250313e-16, got 1e-300"),
        (lambda m, tr, f: omega_full_gradient(m, np.zeros((3, 1)), np.zeros((3, 2)), loss="mse", eps=5e-324),
         ValueError, r"`eps` must be >= 2.220446049250313e-16, got 5e-324"),
        (lambda m, tr, f: Omega(weight=-1.0), ValueError, "`weight` must be >= 0"),
        (lambda m, tr, f: Omega(weight=1.0, variant="x"), ValueError, "`variant` must be one of"),
        (lambda m, tr, f: Omega(weight=1.0, hold_fprime="yes"), TypeError, "`hold_fprime` must be a bool"),
    ],
)
def test_bad_inputs_raise_named_errors(call, exc, match):
    """Each bad argument raises TypeError/ValueError naming the argument."""
    m = ElmanRNN.init(1, 3, 2, scheme="gaussian", seed=0)
    x = np.ones((3, 1))
    _, g = m.value_and_grad(x, np.zeros((3, 2)), loss="mse")
    with pytest.raises(exc, match=match):
        call(m, m.forward(x), g.flow)


def test_train_rejects_omega_for_stacked_models():
    """Ω of a stacked model is of its whole state (tests/test_omega_stacked.py): train
    raises a named error for a stack asked for the h-to-h path."""
    from rnntheory.cells.stacked import StackedRNN

    task = TemporalOrder(10)
    stack = StackedRNN.init(task.n_in, 3, task.n_out, cell="lstm", n_layers=2)
    with pytest.raises(ValueError, match="`path` of Omega must be 'state' for a StackedRNN"):
        train(stack, task, remedies=(Omega(1.0, path="h"),), steps=1)


@pytest.mark.parametrize(("act", "form", "alpha"), [("tanh", "standard", 0.4), ("relu", "pascanu", None),
                                                     ("identity", "standard", None)])
def test_several_row_blocks_match_the_loop_reference(act, form, alpha):
    """T·B = 600 terms with n = 40 run in two blocks of rows (the last one
    partial): Ω equals the loop reference (rel 1e-10), and the fixed-flow
    gradient is the count-weighted mean of the gradients of the two halves of
    the batch computed separately (rel 1e-10)."""
    m = ElmanRNN.init(3, 40, 2, scheme="gaussian", scale=1.1, seed=2, activation=act, form=form, alpha=alpha)
    x, y = _data(m, 30, 20, 5)
    _, g = m.value_and_grad(x, y, loss="mse")
    res = omega(m, m.forward(x), g.flow)
    assert res.value == pytest.approx(naive.omega(m, x, y, "mse"), rel=1e-10)
    parts = []
    for sl in (slice(0, 7), slice(7, 20)):
        _, gp = m.value_and_grad(x[:, sl], y[:, sl], loss="mse")
        parts.append(omega(m, m.forward(x[:, sl]), gp.flow))
    want = sum(p.count * p.W_hh for p in parts) / sum(p.count for p in parts)
    assert _rel(res.W_hh, want) < 1e-10


NOJIT = r"""
import numba, numpy as np, naive
assert numba.config.DISABLE_JIT
from rnntheory import ElmanRNN
from rnntheory.remedies import omega
rng = np.random.default_rng(0)
worst = 0.0
for form in ("standard", "pascanu"):
    for alpha in (None, 0.3):
        for act in ("tanh", "sigmoid", "identity", "relu"):
            for variant in ("squared", "norm"):
                for hold in (False, True):
                    m = ElmanRNN.init(2, 3, 2, scheme="gaussian", scale=1.2, seed=1, activation=act,
                                      form=form, alpha=alpha)
                    x, y = rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 2))
                    _, g = m.value_and_grad(x, y, loss="mse")
                    r = omega(m, m.forward(x), g.flow, variant=variant, hold_fprime=hold)
                    want = naive.omega(m, x, y, "mse", variant=variant)
                    assert np.all(np.isfinite(r.W_hh))
                    worst = max(worst, abs(r.value - want) / max(want, 1e-300))
print(worst)
assert worst < 1e-10, worst
"""


def test_kernel_python_body_runs_without_the_jit():
    """With NUMBA_DISABLE_JIT=1 (bounds-checked NumPy indexing) the kernel's
    Python body runs every path (forms, leak, four activations, both variants,
    both gradient modes) and its Ω equals the loop reference (rel 1e-10)."""
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(Path(__file__).parent))
    r = subprocess.run([sys.executable, "-c", NOJIT], capture_output=True, text=True, env=env, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]


# ----------------------------------------------------------------------------- scale of the flow


def _omega_mp(model, x, flow, variant, threshold=0.0, W=None):
    """Ω in mpmath (60 digits) from the loop reference's step Jacobians and the
    exact flow values: ‖v‖², ‖J_{k+1}ᵀ v‖² and the ratio are formed without
    overflow or underflow whatever the scale of ``flow``. Counted terms as in
    :func:`naive.omega` (‖v‖² ≥ threshold, v ≠ 0), compared exactly."""
    import mpmath

    mpmath.mp.dps = 60
    x = np.asarray(x, float)
    if x.ndim == 2:
        x, flow = x[:, None], np.asarray(flow)[:, None]
    m = model if W is None else model.replace(W_hh=np.asarray(W))
    total, count = mpmath.mpf(0), 0
    for b in range(x.shape[1]):
        hs = naive.forward(model, x[:, b])
        for k in range(x.shape[0]):
            J = naive.step_jacobian(m, hs[k], x[k, b])
            v = [mpmath.mpf(float(t)) for t in flow[k + 1, b]]
            nv = mpmath.fsum(t * t for t in v)
            if nv == 0 or nv < threshold:
                continue
            u = [mpmath.fsum(mpmath.mpf(float(J[i, j])) * v[i] for i in range(len(v)))
                 for j in range(J.shape[1])]
            r2 = mpmath.fsum(t * t for t in u) / nv
            total += (r2 - 1) ** 2 if variant == "squared" else (mpmath.sqrt(r2) - 1) ** 2
            count += 1
    return float(total / count) if count else 0.0


SCALES = [2.0**1000, 2.0**-1000, 1e300, 1e-300, 1e-150, 1e160]


@pytest.mark.parametrize(("form", "act", "alpha"), [("standard", "tanh", None), ("pascanu", "sigmoid", None),
                                                    ("standard", "tanh", 0.35), ("pascanu", "relu", 0.6)])
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_omega_and_its_gradient_do_not_depend_on_the_scale_of_the_flow(form, act, alpha, variant):
    """Ω is a mean of functions of ‖J_{k+1}ᵀ v‖/‖v‖, and ∂Ω/∂W_hh (flow fixed)
    is homogeneous of degree 0 in v: Ω(c·flow) = Ω(flow) for every c > 0.
    For c = 2^±1000, 1e±300, 1e-150, 1e160 (with threshold 0, which has no
    scale) the value equals the mpmath oracle on the scaled flow (rel 1e-12),
    the gradient equals central differences of that oracle (rel 1e-6) and the
    gradient at scale 1 (bitwise for powers of two, rel 1e-12 otherwise); the
    flow of 1e155 used to square to inf/inf = NaN, the flow of 1e-300 to 0
    (no term counted, Ω = 0)."""
    rng = np.random.default_rng(17)
    n = 3
    m = ElmanRNN(rng.normal(0.0, 0.7, (n, n)), rng.normal(size=(n, 2)), rng.normal(0.0, 0.3, n),
                 rng.normal(size=(2, n)), np.zeros(2), activation=act, form=form, alpha=alpha)
    x, y = _data(m, 4, 2, 3)
    _, g = m.value_and_grad(x, y, loss="mse")
    tr = m.forward(x)
    base = omega(m, tr, g.flow, variant=variant, threshold=0.0)
    assert base.count == 8 and base.value > 1e-3
    for c in SCALES:
        flow = g.flow * c
        assert np.all(np.isfinite(flow)) and np.all(flow[1:] != 0)
        res = omega(m, tr, flow, variant=variant, threshold=0.0)
        assert res.count == base.count
        want = _omega_mp(m, x, flow, variant)
        assert res.value == pytest.approx(want, rel=1e-12), c
        if c in (2.0**1000, 2.0**-1000):  # exact scaling: the same arithmetic
            assert res.value == base.value and np.array_equal(res.W_hh, base.W_hh)
            assert np.array_equal(res.ratio, base.ratio)
        else:
            assert res.value == pytest.approx(base.value, rel=1e-12)
            np.testing.assert_allclose(res.W_hh, base.W_hh, rtol=1e-12, atol=1e-14 * np.abs(base.W_hh).max())
    flow = g.flow * 1e300
    fd = central_jacobian(lambda W: _omega_mp(m, x, flow, variant, W=W), m.W_hh)
    got = omega(m, tr, flow, variant=variant, threshold=0.0).W_hh
    assert _rel(got, fd) < 1e-6


@given(st.integers(-1100, 1000), st.floats(0.0, 1.0), st.integers(0, 2**16))
@example(-700, 0.0, 0)
@example(-560, 0.5, 1)
@example(500, 0.5, 2)
def test_threshold_is_compared_exactly_at_every_scale(exp2, frac, seed):
    """A term counts iff ‖v‖² ≥ threshold (and v ≠ 0), for flows of 2^-1100 to
    2^1000 (where ‖v‖² over- or underflows float64) and thresholds anywhere
    between the smallest and the largest ‖v‖² of the batch: checked against
    ‖v‖² in exact rational arithmetic, outside a band of 1e-14 relative around
    the threshold (inside it, the rounding of the sum of squares decides).
    Squaring in float64 counted no term of a flow of 1e-170 and every term of
    a flow of 1e160 (inf ≥ threshold)."""
    from fractions import Fraction

    rng = np.random.default_rng(seed)
    m = ElmanRNN(rng.normal(0.0, 0.7, (3, 3)), rng.normal(size=(3, 1)), np.zeros(3), activation="tanh")
    x = rng.normal(size=(5, 3, 1))
    flow = rng.normal(size=(6, 3, 3)) * rng.uniform(0.5, 2.0, size=(6, 3, 1))
    flow = np.ldexp(flow, exp2)
    exact = [[sum(Fraction(float(t)) ** 2 for t in flow[k + 1, b]) for b in range(3)] for k in range(5)]
    lo, hi = min(min(r) for r in exact), max(max(r) for r in exact)
    target = lo + (hi - lo) * Fraction(frac)
    assume(target <= Fraction(np.finfo(float).max))  # a threshold must be a float
    thr = float(target)
    res = omega(m, m.forward(x), flow, threshold=thr)
    t = Fraction(thr)
    for k in range(5):
        for b in range(3):
            e = exact[k][b]
            if e >= t * (1 + Fraction(1, 10**14)) and e > 0:
                assert res.counted[k, b]
            elif e < t * (1 - Fraction(1, 10**14)) or e == 0:
                assert not res.counted[k, b]


@given(st.floats(-1e300, 1e300, allow_subnormal=True))
@example(0.0)
@example(5e-324)
@example(1.0 - 2.0**-53)
@example(1.0)
@example(2.0**1000 * (2.0 - 2.0**-52))
def test_smallest_full_gradient_eps_moves_every_entry(w):
    """The documented minimum ``eps = 2⁻⁵²``: ``ε = eps·max(1, |w|)`` is at least
    one unit in the last place of ``w``, so ``w + ε`` and ``w − ε`` are distinct
    float64 numbers and the central difference's denominator is not 0 (below
    it, ``1e-300`` left ``W_ij`` unchanged and Ω's difference quotient was 0/0)."""
    e = 2.0**-52 * max(1.0, abs(w))
    assert w + e != w - e
    assert (w + e) - (w - e) >= np.spacing(abs(w))


def test_full_gradient_at_the_smallest_eps_is_finite():
    """At ``eps = 2⁻⁵²`` every perturbed entry differs from ``W_ij`` (entries from
    1e-300 to 2), so no difference quotient is 0/0: the gradient is finite."""
    W = np.array([[1e-300, 0.5, -2.0], [0.0, 1.0, 3e-200], [-0.75, 1e-20, 0.25]])
    m = ElmanRNN(W, np.ones((3, 1)), np.zeros(3), np.ones((1, 3)))
    x = np.linspace(-1, 1, 4)[:, None]
    res = omega_full_gradient(m, x, np.zeros((4, 1)), loss="mse", eps=2.0**-52)
    assert np.all(np.isfinite(res.W_hh))
