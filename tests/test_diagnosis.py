"""rnntheory.diagnose: the profile, exponent, verdict, horizon and theory of a model on its data.

Oracles: explicit products of loop-reference step Jacobians (tests/naive.py)
and their SVDs, numpy's least squares, closed forms for linear models
``W = r·Q`` (``‖∂h_T/∂h_{T−τ}‖ = r^τ`` exactly), and PyTorch autograd for the
gated cells.
"""

from __future__ import annotations

import json
import math

import naive
import numpy as np
import pytest
from oracle import skip_torch

from rnntheory import GRU, LSTM, BidirectionalRNN, ElmanRNN, StackedRNN, bounds, diagnose, jacobians
from rnntheory.cli import main
from rnntheory.diagnosis import Diagnosis, LayerDiagnosis

LN_TOL = math.log(1e-3)


def _orth(n: int, seed: int) -> np.ndarray:
    Q, R = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return Q * np.sign(np.diag(R))


def _linear(r: float, n: int = 4, seed: int = 0) -> ElmanRNN:
    return ElmanRNN(r * _orth(n, seed), np.ones((n, 1)), np.zeros(n), activation="identity")


def _svd_profile(Js: np.ndarray) -> np.ndarray:
    """``ln σ_max(J_T ⋯ J_{T−τ+1})`` for τ = 0..T by explicit products and one SVD each."""
    T = Js.shape[0]
    return np.array([np.log(np.linalg.svd(naive.product(Js, T, T - tau), compute_uv=False)[0])
                     for tau in range(T + 1)])


# ----------------------------------------------------------------- the profile


@pytest.mark.parametrize("form", ["standard", "pascanu"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_profile_is_log_norm_of_explicit_products(form: str, activation: str) -> None:
    rng = np.random.default_rng(3)
    m = ElmanRNN(rng.normal(size=(5, 5)) * 0.7, rng.normal(size=(5, 2)), rng.normal(size=5),
                 activation=activation, form=form)
    x = rng.normal(size=(14, 2))
    d = diagnose(m, x)
    ref = _svd_profile(naive.jacobians(m, x))
    np.testing.assert_allclose(d.profile, ref, rtol=1e-10, atol=1e-10)
    # the exponent is numpy's least-squares slope of that profile
    A = np.stack([np.arange(15.0), np.ones(15)], axis=1)
    assert d.exponent == pytest.approx(np.linalg.lstsq(A, ref, rcond=None)[0][0], rel=1e-9)
    assert d.horizon == int(np.flatnonzero(ref >= LN_TOL)[-1])


def test_leaky_profile_and_rate() -> None:
    rng = np.random.default_rng(4)
    alpha = np.array([0.2, 0.5, 0.9])
    m = ElmanRNN(rng.normal(size=(3, 3)), rng.normal(size=(3, 1)), np.zeros(3), alpha=alpha)
    x = rng.normal(size=(10, 1))
    d = diagnose(m, x)
    np.testing.assert_allclose(d.profile, _svd_profile(naive.jacobians(m, x)), rtol=1e-10, atol=1e-10)
    s = np.linalg.svd(m.W_hh, compute_uv=False)[0]
    assert d.state.eq12_rate == pytest.approx(math.log(0.9 + 0.8 * s), rel=1e-12)
    assert d.state.vanishing_guaranteed is None and "leak" in " ".join(d.state.notes)


@pytest.mark.parametrize(("r", "verdict"), [(0.8, "vanishing"), (1.0, "neutral"), (1.25, "exploding")])
def test_linear_orthogonal_closed_form(r: float, verdict: str) -> None:
    """``W = r·Q``, identity units: profile[τ] = τ ln r, so every field has a closed form."""
    T = 40
    m = _linear(r)
    d = diagnose(m, np.random.default_rng(1).normal(size=(T, 1)), tolerance=1e-3)
    tau = np.arange(T + 1)
    np.testing.assert_allclose(d.profile, tau * math.log(r), atol=1e-12)
    assert d.exponent == pytest.approx(math.log(r), abs=1e-13)
    assert d.lyapunov == pytest.approx(math.log(r), abs=1e-12)
    assert d.verdict == verdict
    expected = T if r >= 1 else min(T, math.floor(LN_TOL / math.log(r)))
    assert d.horizon == expected
    # Eq. 12 is tight here: γ_W = r, γ_h = 1, slack 0; Pascanu's conditions by hand
    assert d.state.eq12_rate == pytest.approx(math.log(r), abs=1e-13)
    assert d.state.eq12_slack == pytest.approx(0.0, abs=1e-10)
    assert d.state.vanishing_guaranteed is (r < 1)
    assert d.state.explosion_possible is (r > 1)


def test_verdict_threshold_is_ln_one_over_tolerance() -> None:
    """r = 0.9 over T steps: vanishing exactly when T·ln 0.9 < ln(tolerance)."""
    m = _linear(0.9, n=2)
    for T, tol in [(30, 1e-2), (50, 1e-2), (60, 1e-3), (70, 1e-3)]:
        d = diagnose(m, np.zeros((T, 1)), tolerance=tol)
        assert d.threshold == pytest.approx(-math.log(tol))
        assert d.verdict == ("vanishing" if T * math.log(0.9) < math.log(tol) else "neutral")
        assert d.horizon == min(T, math.floor(math.log(tol) / math.log(0.9)))


def test_contracting_tanh_theory_by_hand() -> None:
    """σ_max(W) = 0.5 with tanh: Pascanu's sufficient condition holds; the bounds sit above the profile."""
    rng = np.random.default_rng(5)
    M = rng.normal(size=(6, 6))
    W = 0.5 * M / np.linalg.svd(M, compute_uv=False)[0]  # σ_max 0.5, not normal: ‖J_i‖ < the activation bound
    m = ElmanRNN(W, rng.normal(size=(6, 2)), rng.normal(size=6))
    x = rng.normal(size=(25, 2))
    d = diagnose(m, x)
    assert d.verdict == "vanishing"
    assert d.state.vanishing_guaranteed is True and d.state.explosion_possible is False
    ref = _svd_profile(naive.jacobians(m, x))
    assert d.state.eq12_slack == pytest.approx(25 * math.log(0.5) - ref[-1], rel=1e-9)
    # tightest data-dependent bound: min over Π γ_W max|f′(a_i)| and Π ‖J_i‖, from the loop reference
    Js = naive.jacobians(m, x)
    a = naive.forward(m, x)[:-1] @ W.T + x @ m.W_hx.T + m.b_h
    act = np.sum(np.log(0.5 * np.max(1.0 / np.cosh(a) ** 2, axis=1)))
    step = np.sum(np.log(np.linalg.svd(Js, compute_uv=False)[:, 0]))
    assert d.state.bound == pytest.approx(min(act, step), rel=1e-10)
    assert step < act and d.state.bound_name == "step_norm"
    assert d.state.bound_slack == pytest.approx(min(act, step) - ref[-1], rel=1e-9)
    assert d.state.bound_slack >= 0 and d.state.eq12_slack >= d.state.bound_slack


def test_lyapunov_matches_lyapunov_spectrum() -> None:
    m = LSTM.init(2, 5, None, seed=3)
    x = np.random.default_rng(0).normal(size=(30, 2))
    d = diagnose(m, x, seed=7)
    ref = jacobians.lyapunov_spectrum(m, m.forward(x), k=1, seed=7)[0]
    assert d.lyapunov == pytest.approx(ref, rel=1e-12)


# ----------------------------------------------------------------- gated cells


def _torch_profile(torch, m, x):  # type: ignore[no-untyped-def]
    """ln ‖∂s_T/∂s_{T−τ}‖ by autograd through torch's own cell, from every s_{T−τ}."""
    is_lstm = isinstance(m, LSTM)
    cls = torch.nn.LSTMCell if is_lstm else torch.nn.GRUCell
    cell = cls(m.n_in, m.n_hidden, dtype=torch.float64)
    with torch.no_grad():
        for k, v in m.params().items():
            if hasattr(cell, k):
                getattr(cell, k).copy_(torch.tensor(v))
    xt = torch.tensor(x)
    n, T = m.n_hidden, x.shape[0]
    states = [torch.zeros(2 * n if is_lstm else n, dtype=torch.float64)]
    with torch.no_grad():
        for t in range(T):
            s = states[-1]
            out = cell(xt[t], (s[:n], s[n:])) if is_lstm else cell(xt[t], s)
            states.append(torch.cat(out) if is_lstm else out)

    def run(s, k):  # type: ignore[no-untyped-def]
        for t in range(k, T):
            out = cell(xt[t], (s[:n], s[n:])) if is_lstm else cell(xt[t], s)
            s = torch.cat(out) if is_lstm else out
        return s

    prof = [0.0]
    for tau in range(1, T + 1):
        J = torch.autograd.functional.jacobian(lambda s, k=T - tau: run(s, k), states[T - tau])
        prof.append(float(np.log(np.linalg.norm(J.numpy(), 2))))
    return np.array(prof)


@pytest.mark.oracle
@pytest.mark.skipif(skip_torch(), reason="torch is not installed")
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_gated_profile_matches_torch_autograd(cls) -> None:  # type: ignore[no-untyped-def]
    import torch

    m = cls.init(3, 4, None, seed=2)
    x = np.random.default_rng(2).normal(size=(9, 3))
    d = diagnose(m, x)
    np.testing.assert_allclose(d.profile, _torch_profile(torch, m, x), rtol=1e-10, atol=1e-10)
    assert d.state.eq12_rate is None and d.state.vanishing_guaranteed is None
    assert "do not apply" in d.state.notes[0]
    assert d.state.state_size == (8 if cls is LSTM else 4)


def test_gated_bound_is_the_smaller_sum_of_step_bounds() -> None:
    m = GRU.init(2, 6, None, seed=1)
    x = np.random.default_rng(1).normal(size=(20, 2))
    tr = m.forward(x)
    d = diagnose(m, x)
    sums = {b: float(np.sum(bounds.step_log_bounds(m, tr, b))) for b in ("gated", "step_norm")}
    name = min(sums, key=sums.__getitem__)
    assert d.state.bound_name == name
    assert d.state.bound == pytest.approx(sums[name], rel=1e-12)
    assert d.state.bound_slack >= 0


# ----------------------------------------------------------------- batches and inputs


def test_batch_per_sequence_and_summary() -> None:
    m = ElmanRNN.init(2, 5, None, scheme="gaussian", scale=1.2, seed=4)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(30, 5, 2)) * np.array([0.1, 0.5, 1.0, 2.0, 4.0])[None, :, None]
    d = diagnose(m, x)
    assert d.batch_size == 5 and d.profile.shape == (5, 31)
    singles = [diagnose(m, x[:, b]) for b in range(5)]
    for b, s in enumerate(singles):
        np.testing.assert_array_equal(d.profile[b], s.profile)
        assert d.verdict[b] == s.verdict and d.horizon[b] == s.horizon
    exps = np.array([s.exponent for s in singles])
    sm = d.state.summary
    assert sm is not None
    assert sm["exponent"]["median"] == pytest.approx(float(np.median(exps)))
    assert sm["exponent"]["worst"] == exps[np.argmax(np.abs(exps))]
    hz = np.array([s.horizon for s in singles])
    assert sm["horizon"]["worst"] == hz.min() and sm["horizon"]["worst_sequence"] == int(np.argmin(hz))
    np.testing.assert_allclose(sm["profile_median"], np.median(np.stack([s.profile for s in singles]), axis=0))
    assert sum(sm["verdicts"].values()) == 5


def test_batch_first_and_torch_tensor_input() -> None:
    m = GRU.init(3, 4, None, seed=0)
    x = np.random.default_rng(0).normal(size=(12, 2, 3))
    ref = diagnose(m, x)
    bf = diagnose(m, np.swapaxes(x, 0, 1), batch_first=True)
    np.testing.assert_array_equal(ref.profile, bf.profile)
    if not skip_torch():
        import torch

        tt = diagnose(m, torch.tensor(np.swapaxes(x, 0, 1)), batch_first=True)
        np.testing.assert_array_equal(ref.profile, tt.profile)


def test_h0_and_c0_reach_the_forward_pass() -> None:
    m = LSTM.init(2, 3, None, seed=1)
    x = np.random.default_rng(0).normal(size=(8, 2))
    h0, c0 = np.full(3, 0.5), np.full(3, -2.0)
    d = diagnose(m, x, h0=h0, c0=c0)
    tr = m.forward(x, h0, c0)
    np.testing.assert_allclose(d.profile, jacobians.log_norm_reach(m, tr), rtol=0, atol=0)


def test_float32_model_is_measured_in_float64_on_its_own_trajectory() -> None:
    """A float32 LSTM: the Jacobians of its recorded float32 trajectory, evaluated in
    float64, agree with the float64 model's to float32 accuracy."""
    m64 = LSTM.init(2, 4, None, seed=6)
    m32 = LSTM.init(2, 4, None, seed=6, dtype=np.float32)
    x = np.random.default_rng(6).normal(size=(30, 2))
    d32, d64 = diagnose(m32, x), diagnose(m64, x)
    assert d32.profile.dtype == np.float64
    np.testing.assert_allclose(d32.profile, d64.profile, rtol=1e-4, atol=1e-4)
    assert d32.verdict == d64.verdict


# ----------------------------------------------------------------- extremes


def test_single_step() -> None:
    m = _linear(0.5, n=3)
    d = diagnose(m, np.ones((1, 1)))
    np.testing.assert_allclose(d.profile, [0.0, math.log(0.5)], atol=1e-15)
    assert d.exponent == pytest.approx(math.log(0.5))
    assert d.verdict == "neutral" and d.horizon == 1  # 0.5 > 1e-3 over one step


@pytest.mark.parametrize("r", [1e-300, 5e-324])
def test_tiny_weights_stay_finite_in_log_space(r: float) -> None:
    m = ElmanRNN(r * np.eye(2), np.ones((2, 1)), np.zeros(2), activation="identity")
    d = diagnose(m, np.ones((6, 1)))
    np.testing.assert_allclose(d.profile, np.arange(7) * math.log(r), rtol=1e-12)
    assert d.verdict == "vanishing" and d.horizon == 0
    assert d.state.eq12_rate == pytest.approx(math.log(r), rel=1e-12)


def test_huge_weights_overflow_reported_not_raised() -> None:
    """W = 1e300·I, identity: h_2 = 1e300 is finite, h_3 overflows to inf."""
    m = ElmanRNN(1e300 * np.eye(2), np.ones((2, 1)), np.zeros(2), activation="identity")
    d = diagnose(m, np.ones((5, 1)))
    assert d.overflow == (3, 4, 5)
    assert d.state.end == 2
    np.testing.assert_allclose(d.profile[:3], [0.0, math.log(1e300), 2 * math.log(1e300)], rtol=1e-12)
    assert np.isnan(d.profile[3:]).all()
    assert d.verdict == "exploding"
    assert d.lyapunov == pytest.approx(math.log(1e300), rel=1e-12)
    assert "overflow" in str(d) and "3, 4, 5" in str(d)
    json.loads(d.to_json())


def test_nan_producing_input_is_refused_at_the_boundary() -> None:
    """An input of 1e308 times a weight of 10 would make a_1 = inf: refused by name, not deep inside."""
    m = ElmanRNN(0.5 * np.eye(2), np.full((2, 1), 10.0), np.zeros(2))
    with pytest.raises(ValueError, match="`x` is too large for this model"):
        diagnose(m, np.full((4, 1), 1e308))


def test_no_evaluable_step_is_undetermined(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Step 1's Jacobian not finite (what a trace that overflowed at once would give;
    the forward pass refuses such inputs, so the Jacobians are replaced here)."""
    from rnntheory import diagnosis

    monkeypatch.setattr(diagnosis.JAC, "product_factors", lambda m, tr: (np.full((4, 2, 2), np.nan), 1))
    d = diagnose(_linear(0.5, n=2), np.zeros((4, 1)))
    assert d.overflow == (1, 2, 3, 4) and d.state.end == 0 and d.horizon == 0
    assert d.verdict == "undetermined" and np.isnan(d.exponent) and np.isnan(d.lyapunov)
    assert d.profile[0] == 0 and np.isnan(d.profile[1:]).all()
    assert "undetermined" in str(d)
    assert json.loads(d.to_json())["exponent"] == "nan"


def test_stack_whose_cross_blocks_leave_float64() -> None:
    """Two linear layers with weights a = 1e300, states 0: J_t = a [[I, 0], [a I, I]], whose
    cross block a² = 1e600 no float64 holds. J^τ = a^τ [[I, 0], [τ a I, I]], so
    ln ‖J^τ‖ = τ ln a + ln((c + √(c² + 4))/2) with c = τ a, ≈ τ ln a + ln(τ a) (error e^-1380)."""
    a = 1e300
    layers = [ElmanRNN(a * np.eye(2), a * np.eye(2, 1), np.zeros(2), activation="identity"),
              ElmanRNN(a * np.eye(2), a * np.eye(2), np.zeros(2), activation="identity")]
    model = StackedRNN(layers)
    d = diagnose(model, np.zeros((6, 1)))
    tau = np.arange(1, 7)
    assert d.overflow == () and d.profile[0] == 0
    np.testing.assert_allclose(d.profile[1:], tau * math.log(a) + np.log(tau) + math.log(a), rtol=1e-13)
    assert d.verdict == "exploding" and d.horizon == 6
    # the finite-time exponent: at most (1/6) ln ‖J^6‖, above the asymptotic ln a
    ref = jacobians.lyapunov_spectrum(model, model.forward(np.zeros((6, 1))), k=1, seed=0)[0]
    assert d.lyapunov == pytest.approx(ref, rel=1e-12)
    assert math.log(a) < d.lyapunov <= d.profile[6] / 6 * (1 + 1e-12)
    for r in d.layers:
        np.testing.assert_allclose(r.profile, np.arange(7) * math.log(a), rtol=1e-13)


def test_saturated_tanh_is_an_exact_zero() -> None:
    """tanh with W = 1e300·I saturates: f′ = 0 exactly, the products are exactly 0."""
    m = ElmanRNN(1e300 * np.eye(2), np.ones((2, 1)), np.zeros(2))
    d = diagnose(m, np.ones((4, 1)))
    assert d.overflow == () and d.profile[0] == 0 and np.isneginf(d.profile[1:]).all()
    assert d.exponent == -np.inf and d.verdict == "vanishing" and d.horizon == 0
    assert d.state.bound_slack == np.inf
    assert json.loads(d.to_json())["exponent"] == "-inf"


def test_overflow_in_one_sequence_of_a_batch() -> None:
    m = ElmanRNN(1e300 * np.eye(2), np.ones((2, 1)), np.zeros(2), activation="identity")
    x = np.zeros((5, 2, 1))
    x[:, 1] = 1.0  # sequence 1 overflows at step 3; sequence 0 stays at h = 0
    d = diagnose(m, x)
    assert d.overflow == ((), (3, 4, 5))
    assert d.state.end.tolist() == [5, 2]
    np.testing.assert_allclose(d.profile[0], np.arange(6) * math.log(1e300), rtol=1e-12)
    assert d.verdict == ("exploding", "exploding")
    assert d.state.summary is not None and d.state.summary["horizon"]["worst"] == 2


# ----------------------------------------------------------------- records, text, JSON


def test_to_dict_and_json_round_trip() -> None:
    m = LSTM.init(2, 3, None, seed=0)
    d = diagnose(m, np.random.default_rng(0).normal(size=(10, 2)))
    assert isinstance(d, Diagnosis) and isinstance(d.layers[0], LayerDiagnosis)
    payload = json.loads(d.to_json())
    assert payload["verdict"] == d.verdict and payload["horizon"] == d.horizon
    np.testing.assert_array_equal(payload["state"]["profile"], d.profile)
    assert payload["rule"] == d.rule
    with pytest.raises(AttributeError):
        d.T = 3  # type: ignore[misc]


@pytest.mark.parametrize("batched", [False, True])
def test_summary_text(batched: bool) -> None:
    m = _linear(0.8, n=3)
    x = np.zeros((50, 3, 1)) if batched else np.zeros((50, 1))
    text = str(diagnose(m, x))
    lines = text.splitlines()
    assert 10 <= len(lines) <= 20
    assert "vanishing" in text and "−0.223" in text  # ln 0.8
    assert "[sufficient]" in text and "[necessary only]" in text
    assert ("horizon: median 30" if batched else "horizon 30 steps") in text  # ⌊ln 1e-3 / ln 0.8⌋


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"tolerance": 0.0}, ValueError, "`tolerance` must be > 0"),
        ({"tolerance": 1.0}, ValueError, "`tolerance` must be < 1"),
        ({"tolerance": float("nan")}, ValueError, "`tolerance` must be finite"),
        ({"tolerance": "1e-3"}, TypeError, "`tolerance` must be a real number"),
        ({"seed": -1}, ValueError, r"`seed` must be an integer in \[0, 2\*\*64\)"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer"),
        ({"batch_first": 1}, TypeError, "`batch_first` must be a bool"),
        ({"c0": np.zeros(3)}, ValueError, "`c0` is the LSTM's initial cell state"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type, match: str) -> None:
    m = GRU.init(2, 3, None, seed=0)
    with pytest.raises(exc, match=match):
        diagnose(m, np.zeros((4, 2)), **kwargs)


def test_bad_model_and_input() -> None:
    with pytest.raises(TypeError, match="`model` must be an ElmanRNN, LSTM, GRU"):
        diagnose("model", np.zeros((3, 1)))
    m = _linear(0.5, n=2)
    with pytest.raises(ValueError, match="`x` must be finite"):
        diagnose(m, np.full((3, 1), np.nan))
    with pytest.raises(ValueError, match="`x` must have at least one time step"):
        diagnose(m, np.zeros((0, 1)))


# ----------------------------------------------------------------- stacked and bidirectional


def _elman_cell(rng: np.random.Generator, n_in: int, n: int) -> ElmanRNN:
    return ElmanRNN(rng.normal(size=(n, n)) * 0.6, rng.normal(size=(n, n_in)), rng.normal(size=n))


def test_elman_stack_whole_state_and_layers_by_hand() -> None:
    """Two Elman layers: the whole state's step Jacobian built by hand from the loop
    reference, [[A1_t, 0], [X2_t A1_t, A2_t]] (layer 2 reads layer 1 at the same step)."""
    rng = np.random.default_rng(9)
    n = 3
    l1, l2 = _elman_cell(rng, 2, n), _elman_cell(rng, n, n)
    model = StackedRNN([l1, l2])
    x = rng.normal(size=(10, 2))
    d = diagnose(model, x)
    h1 = naive.forward(l1, x)
    A1 = naive.jacobians(l1, x)
    A2 = naive.jacobians(l2, h1[1:])
    h2 = naive.forward(l2, h1[1:])
    X2 = np.array([np.diag(1 / np.cosh(l2.W_hh @ h2[t] + l2.W_hx @ h1[t + 1] + l2.b_h) ** 2) @ l2.W_hx
                   for t in range(10)])
    J = np.zeros((10, 2 * n, 2 * n))
    J[:, :n, :n] = A1
    J[:, n:, :n] = X2 @ A1
    J[:, n:, n:] = A2
    np.testing.assert_allclose(d.profile, _svd_profile(J), rtol=1e-9, atol=1e-9)
    assert d.state.label == "whole state" and d.state.state_size == 2 * n
    for r, cell, xin in zip(d.layers, (l1, l2), (x, h1[1:]), strict=True):
        np.testing.assert_allclose(r.profile, _svd_profile(naive.jacobians(cell, xin)), rtol=1e-9, atol=1e-9)
        assert r.eq12_rate == pytest.approx(math.log(np.linalg.svd(cell.W_hh, compute_uv=False)[0]))
    assert d.state.eq12_rate is None and d.state.bound_name == "step_norm"
    step = np.sum(np.log(np.linalg.svd(J, compute_uv=False)[:, 0]))
    assert d.state.bound == pytest.approx(step, rel=1e-10) and d.state.bound_slack >= 0
    text = str(d)
    assert 10 <= len(text.splitlines()) <= 20 and "layer 2" in text


def test_batched_stack_equals_each_sequence() -> None:
    model = StackedRNN.init(2, 4, None, cell="gru", n_layers=3, seed=2)
    x = np.random.default_rng(3).normal(size=(15, 3, 2))
    d = diagnose(model, x, seed=np.random.default_rng(0).integers(0, 2**63))
    for b in range(3):
        single = diagnose(model, x[:, b], seed=int(np.random.default_rng(0).integers(0, 2**63)))
        np.testing.assert_array_equal(d.profile[b], single.profile)
        assert d.lyapunov[b] == single.lyapunov
        for r, s in zip(d.layers, single.layers, strict=True):
            np.testing.assert_array_equal(r.profile[b], s.profile)
            assert r.verdict[b] == s.verdict and r.horizon[b] == s.horizon
    assert [r.label for r in d.layers] == ["layer 1", "layer 2", "layer 3"]
    payload = json.loads(d.to_json())
    assert payload["state"]["summary"]["sequences"] == 3 and payload["batch_size"] == 3


def _torch_stack_profile(torch, model, x):  # type: ignore[no-untyped-def]
    """ln ‖∂s_T/∂s_{T−τ}‖ of a 2-layer LSTM's whole state (h¹, c¹, h², c²) by autograd
    through torch.nn.LSTMCell, from every s_{T−τ}."""
    n, T = model.n_hidden, x.shape[0]
    cells = []
    for layer in model.layers:
        c = torch.nn.LSTMCell(layer.n_in, n, dtype=torch.float64)
        with torch.no_grad():
            for k, v in layer.params().items():
                if hasattr(c, k):
                    getattr(c, k).copy_(torch.tensor(v))
        cells.append(c)
    xt = torch.tensor(x)

    def step(s, t):  # type: ignore[no-untyped-def]
        inp, out = xt[t], []
        for i, c in enumerate(cells):
            h, cc = c(inp, (s[2 * i * n:(2 * i + 1) * n], s[(2 * i + 1) * n:(2 * i + 2) * n]))
            out += [h, cc]
            inp = h
        return torch.cat(out)

    states = [torch.zeros(4 * n, dtype=torch.float64)]
    with torch.no_grad():
        for t in range(T):
            states.append(step(states[-1], t))

    def run(s, k):  # type: ignore[no-untyped-def]
        for t in range(k, T):
            s = step(s, t)
        return s

    prof = [0.0]
    for tau in range(1, T + 1):
        J = torch.autograd.functional.jacobian(lambda s, k=T - tau: run(s, k), states[T - tau])
        prof.append(float(np.log(np.linalg.norm(J.numpy(), 2))))
    return np.array(prof)


@pytest.mark.oracle
@pytest.mark.skipif(skip_torch(), reason="torch is not installed")
def test_lstm_stack_profile_matches_torch_autograd() -> None:
    import torch

    model = StackedRNN.init(2, 3, None, cell="lstm", n_layers=2, seed=4)
    x = np.random.default_rng(4).normal(size=(8, 2))
    d = diagnose(model, x)
    np.testing.assert_allclose(d.profile, _torch_stack_profile(torch, model, x), rtol=1e-10, atol=1e-10)
    assert d.state.state_size == 12


def test_bidirectional_each_direction_on_its_own_input() -> None:
    """One Elman layer each way: the forward cell on x, the backward cell on x reversed;
    layer 2 reads [h_fwd_t, h_bwd_t] of layer 1 at original time t (loop references)."""
    rng = np.random.default_rng(8)
    n = 4
    pairs = [(_elman_cell(rng, 2, n), _elman_cell(rng, 2, n)),
             (_elman_cell(rng, 2 * n, n), _elman_cell(rng, 2 * n, n))]
    model = BidirectionalRNN(pairs)
    x = rng.normal(size=(12, 2))
    d = diagnose(model, x)
    assert [r.label for r in d.layers] == ["layer 1 (forward)", "layer 1 (backward)",
                                           "layer 2 (forward)", "layer 2 (backward)"]
    hf = naive.forward(pairs[0][0], x)[1:]
    hb = naive.forward(pairs[0][1], x[::-1])[1:][::-1]  # back in original time
    x2 = np.concatenate([hf, hb], axis=1)
    inputs = [x, x[::-1], x2, x2[::-1]]
    cells = [pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1]]
    for r, cell, xin in zip(d.layers, cells, inputs, strict=True):
        np.testing.assert_allclose(r.profile, _svd_profile(naive.jacobians(cell, xin)), rtol=1e-9, atol=1e-9)
        s = np.linalg.svd(cell.W_hh, compute_uv=False)[0]
        assert r.eq12_rate == pytest.approx(math.log(s), rel=1e-12)
        assert r.vanishing_guaranteed is bool(s < 1)
    # the state is the most severe recurrence: exploding > vanishing > neutral, then |exponent|
    rank = {"exploding": 3, "vanishing": 2, "neutral": 1}
    top = max(d.layers, key=lambda r: (rank[r.verdict], abs(r.exponent)))
    assert d.state is top and d.verdict == top.verdict


# ----------------------------------------------------------------- routes: torch and checkpoints


@pytest.mark.oracle
@pytest.mark.skipif(skip_torch(), reason="torch is not installed")
def test_torch_module_route_equals_library_model() -> None:
    import torch

    from rnntheory import from_torch

    torch.manual_seed(0)
    mod = torch.nn.LSTM(3, 5, dtype=torch.float64)
    x = np.random.default_rng(0).normal(size=(15, 3))
    a, b = diagnose(mod, x), diagnose(from_torch(mod), x)
    np.testing.assert_array_equal(a.profile, b.profile)
    assert a.to_dict() == b.to_dict()


@pytest.mark.oracle
@pytest.mark.skipif(skip_torch(), reason="torch is not installed")
def test_stacked_torch_lstm_same_diagnosis_by_every_route(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 2-layer torch LSTM: the module, a .pt, a .safetensors and an .npz of its state
    dict give one and the same diagnosis."""
    import torch
    from test_checkpoints import write_safetensors

    from rnntheory import from_state_dict

    torch.manual_seed(1)
    mod = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    sd = {f"rnn.{k}": v.detach().numpy() for k, v in mod.state_dict().items()}
    torch.save({f"rnn.{k}": v for k, v in mod.state_dict().items()}, tmp_path / "m.pt")
    np.savez(tmp_path / "m.npz", **sd)
    write_safetensors(tmp_path / "m.safetensors", sd)
    x = np.random.default_rng(2).normal(size=(20, 3))
    ref = diagnose(mod, torch.tensor(x)).to_dict()
    for name in ("m.pt", "m.npz", "m.safetensors"):
        assert diagnose(from_state_dict(tmp_path / name), x).to_dict() == ref, name
    assert [r["label"] for r in ref["layers"]] == ["layer 1", "layer 2"]
    assert ref["state"]["label"] == "whole state" and ref["state"]["state_size"] == 16


@pytest.mark.oracle
@pytest.mark.skipif(skip_torch(), reason="torch is not installed")
def test_trained_torch_lstm_same_diagnosis_from_module_pt_and_safetensors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 2-layer torch LSTM with a linear readout, *trained* (Adam, 40 steps on a
    delayed-sine task, so its weights are no longer an initialisation), saved as a
    whole-network state dict (keys ``rnn.*`` and ``fc.*``) to a .pt and a
    .safetensors: the module itself, and both files read without naming any key,
    give the same diagnosis, and the readout found in the files is the trained
    ``fc`` exactly."""
    import torch
    from test_checkpoints import write_safetensors

    from rnntheory import from_state_dict

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(2, 6, num_layers=2, batch_first=True, dtype=torch.float64)
            self.fc = torch.nn.Linear(6, 1, dtype=torch.float64)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(self.rnn(x)[0])

    net = Net()
    before = net.rnn.weight_hh_l1.detach().clone()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    t = torch.linspace(0, 12, 41, dtype=torch.float64)
    xs = torch.stack([torch.stack([torch.sin(t + p), torch.cos(t + p)], -1) for p in range(8)])
    target = torch.roll(xs[..., :1], 3, dims=1)
    for _ in range(40):
        opt.zero_grad()
        loss = ((net(xs) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert not torch.equal(before, net.rnn.weight_hh_l1)  # trained, not an initialisation
    sd = {k: v.detach() for k, v in net.state_dict().items()}
    torch.save(sd, tmp_path / "net.pt")
    write_safetensors(tmp_path / "net.safetensors", {k: v.numpy() for k, v in sd.items()})
    x = xs[0].numpy()
    ref = diagnose(net.rnn, x).to_dict()
    for name in ("net.pt", "net.safetensors"):
        m = from_state_dict(tmp_path / name)
        assert isinstance(m, StackedRNN) and m.n_layers == 2
        assert m.W_yh is not None and np.array_equal(m.W_yh, net.fc.weight.detach().numpy())
        got = diagnose(m, x).to_dict()
        assert got.pop("model") != ref["model"]  # the files bring the readout along
        assert got == {k: v for k, v in ref.items() if k != "model"}, name


def _npz_checkpoint(tmp_path, m: LSTM):  # type: ignore[no-untyped-def]
    p = tmp_path / "lstm.npz"
    np.savez(p, **{f"rnn.{k}_l0": v for k, v in m.params().items() if k.endswith(("ih", "hh"))})
    return p


def test_cli_diagnose_npz_equals_library(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    m = LSTM.init(3, 4, None, seed=5)
    path = _npz_checkpoint(tmp_path, m)
    x = np.random.default_rng(1).normal(size=(25, 3))
    np.save(tmp_path / "x.npy", x)
    assert main(["diagnose", str(path), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    ref = diagnose(m, x)
    assert payload == json.loads(ref.to_json())
    # --random T: a standard normal input of T steps drawn with --seed
    assert main(["diagnose", str(path), "--random", "12", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    x3 = np.random.default_rng(3).standard_normal((12, 3))
    assert f"verdict: {diagnose(m, x3, seed=3).verdict}" in text and "T = 12" in text


def test_cli_diagnose_input_errors(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _npz_checkpoint(tmp_path, LSTM.init(3, 4, None, seed=5))
    assert main(["diagnose", str(path), "--input", str(tmp_path / "missing.npy")]) == 2
    assert "`--input` file not found" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("1 2 3")
    assert main(["diagnose", str(path), "--input", str(tmp_path / "x.txt")]) == 2
    assert "is not a NumPy .npy file" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((5, 7)))
    assert main(["diagnose", str(path), "--input", str(tmp_path / "wide.npy")]) == 2
    assert "`x`" in capsys.readouterr().err
    assert main(["diagnose", str(path), "--tolerance", "2"]) == 2
    assert "`tolerance` must be < 1" in capsys.readouterr().err
