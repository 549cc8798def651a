"""The kernels' Python bodies, run by the interpreter (``NUMBA_DISABLE_JIT=1``).

Compiled code does no bounds checking; interpreted NumPy indexing does. A tiny
script in a subprocess runs every kernel path (forms, activations, leak, batch,
both losses, log norms, profiles, scaled products, Lyapunov exponents, and the
LSTM and GRU kernels) with the JIT disabled and compares each result with tests/naive.py; it exits non-zero on
any mismatch or exception.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    r"""
    import sys
    import numba
    import numpy as np

    assert numba.config.DISABLE_JIT, "the JIT must be disabled in this subprocess"
    import naive
    from rnntheory import ElmanRNN
    from rnntheory import jacobians as jac
    from rnntheory.cells import _elman_kernels as K

    # Under NUMBA_DISABLE_JIT the decorated kernels are the plain functions.
    assert not hasattr(K.elman_forward, "signatures"), type(K.elman_forward)

    def rel(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)

    fails = []
    rng = np.random.default_rng(0)
    n, n_in, T, B = 3, 2, 4, 2
    for form in ("standard", "pascanu"):
        for act in ("tanh", "sigmoid", "identity", "relu"):
            for alpha in (None, 0.3, rng.uniform(0, 1, n)):
                m = ElmanRNN(rng.normal(size=(n, n)), rng.normal(size=(n, n_in)),
                             rng.normal(size=n), rng.normal(size=(2, n)), rng.normal(size=2),
                             activation=act, form=form, alpha=alpha)
                x = rng.normal(size=(T, B, n_in))
                h0 = rng.normal(size=(B, n))
                tag = (form, act, None if alpha is None else np.ndim(alpha))
                if rel(m.forward(x, h0=h0).h, naive.forward_batch(m, x, h0)) > 1e-10:
                    fails.append(("forward",) + tag)
                for loss in ("xent", "mse"):
                    y = rng.integers(0, 2, (T, B)) if loss == "xent" else rng.normal(size=(T, B, 2))
                    mask = rng.uniform(0, 1, (T, B))
                    mask[0, 0] = 0.0
                    val, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0)
                    refs = naive.bptt_batch(m, x, y, loss, mask, h0)
                    ref_val = sum(naive.loss(m, x[:, b], y[:, b], loss, mask[:, b], h0[b])
                                  for b in range(B))
                    if abs(val - ref_val) > 1e-10 * abs(ref_val):
                        fails.append(("loss", loss) + tag)
                    for name in ("W_hh", "W_hx", "b_h", "W_yh", "b_y"):
                        if rel(getattr(g, name), sum(r[name] for r in refs)) > 1e-10:
                            fails.append(("grad", name, loss) + tag)
                    flow = np.stack([r["flow"] for r in refs], axis=1)
                    if rel(g.flow, flow) > 1e-10:
                        fails.append(("flow", loss) + tag)
                if act in ("tanh", "sigmoid"):
                    xs = x[:, 0]
                    tr = m.forward(xs, h0=h0[0])
                    Js = naive.jacobians(m, xs, h0[0])
                    if rel(jac.step_jacobians(m, tr), Js) > 1e-12:
                        fails.append(("step_jacobians",) + tag)
                    R = naive.log_norms_svd(Js)
                    L = jac.log_norms(m, tr)
                    i = np.tril_indices(T + 1)
                    if np.max(np.abs(L[i] - R[i]) / np.maximum(1, np.abs(R[i]))) > 1e-9:
                        fails.append(("log_norms",) + tag)
                    P = jac.log_norm_profile(m, tr, 1)
                    if np.max(np.abs(P[1:] - R[1:, 1]) / np.maximum(1, np.abs(R[1:, 1]))) > 1e-9:
                        fails.append(("log_norm_profile",) + tag)
                    if rel(jac.product(m, tr, T, 1), naive.product(Js, T, 1)) > 1e-12:
                        fails.append(("product",) + tag)
                    lam = jac.lyapunov_spectrum(m, tr)
                    logdet = np.mean([np.linalg.slogdet(J)[1] for J in Js])
                    if abs(lam.sum() - logdet) > 1e-9 * max(1, abs(logdet)):
                        fails.append(("lyapunov",) + tag)
    # Lyapunov sums of a diagonal linear model grow by ln|d_i| per step once the
    # QR frame has aligned: 60·λ(60) − 40·λ(40) = 20·sort(ln|d|)
    d = np.array([0.5, 2.0, -1.5])
    m = ElmanRNN(np.diag(d), np.ones((3, 1)), np.zeros(3), activation="identity")
    lam60 = jac.lyapunov_spectrum(m, m.forward(np.zeros((60, 1))))
    lam40 = jac.lyapunov_spectrum(m, m.forward(np.zeros((40, 1))))
    if rel(60 * lam60 - 40 * lam40, 20 * np.sort(np.log(np.abs(d)))[::-1]) > 1e-6:
        fails.append(("lyapunov-diag",))
    # Products whose entries span more than float64's range take the
    # extended-exponent steps: diag(1, 1e-200, 1)^5 then a projection onto e2
    # has norm 1e-1000 in both directions (log_norms rows, the profile), and the
    # ReLU stack Hypothesis found in CI has ln-norm -768.688... (mpmath).
    E = np.zeros((3, 3))
    E[1, 1] = 1.0
    Jx = np.stack([np.diag([1.0, 1e-200, 1.0])] * 5 + [E])
    want = 5 * np.log(1e-200)
    if abs(jac.log_norms_from_jacobians(Jx)[6, 0] - want) > 1e-12 * abs(want):
        fails.append(("ext-rows",))
    if abs(jac.log_norm_profile_from_jacobians(Jx, 0)[6] - want) > 1e-12 * abs(want):
        fails.append(("ext-profile",))
    a, e = 1.955e-138, -7.4437e-197
    D = np.array([[a, e, e, e], [e, e, 1.0, e], [0.0] * 4, [0.0] * 4])
    R = naive.log_norms_mp(np.stack([D, D, D]))
    if rel(jac.log_norms_from_jacobians(np.stack([D, D, D]))[3, 0], R[3, 0]) > 1e-12:
        fails.append(("ext-regression",))
    # Truncated BPTT against the windowed double sum
    m = ElmanRNN.init(n_in, n, 2, scheme="gaussian", scale=1.3, seed=5)
    x = rng.normal(size=(T, n_in))
    y = rng.integers(0, 2, T)
    _, g = m.value_and_grad(x, y, truncate=2)
    dW, fl = naive.bptt_windowed(m, x, y, "xent", 2)
    if rel(g.W_hh, dW) > 1e-10 or rel(g.flow, fl) > 1e-10:
        fails.append(("truncated",))
    # Gated cells: forward against the loop references, gradients against
    # central differences of the loop-reference loss (a few entries).
    from rnntheory import GRU, LSTM
    for cls in (LSTM, GRU):
        m = cls.init(n_in, n, 2, seed=3)
        x = rng.normal(size=(T, n_in))
        tr = m.forward(x)
        if cls is LSTM:
            hs, cs = naive.lstm_forward(m, x)
            if rel(tr.c, cs) > 1e-12:
                fails.append(("gated-c", cls.NAME))
        else:
            hs = naive.gru_forward(m, x)
        if rel(tr.h, hs) > 1e-12:
            fails.append(("gated-h", cls.NAME))
        y = rng.integers(0, 2, T)
        _, g = m.value_and_grad(x, y)
        for idx in ((0, 0), (n, 1), (2 * n, 0)):
            P = m.weight_hh
            Pp, Pm = P.copy(), P.copy()
            Pp[idx] += 1e-6
            Pm[idx] -= 1e-6
            fd = (naive.gated_loss(m.replace(weight_hh=Pp), x, y, "xent")
                  - naive.gated_loss(m.replace(weight_hh=Pm), x, y, "xent")) / 2e-6
            if abs(g.weight_hh[idx] - fd) > 1e-6 * max(1.0, abs(fd)):
                fails.append(("gated-grad", cls.NAME, idx))
        if not np.all(np.isfinite(jac.log_norms(m, tr)[np.tril_indices(T + 1)])):
            fails.append(("gated-log-norms", cls.NAME))
    # vjp (the readout-free backward kernels; the LSTM's direct dc kernel):
    # dx against central differences of E = Σ dh·h (+ dc·c) of the loop references
    for m in (ElmanRNN.init(n_in, n, None, scheme="gaussian", form="pascanu", alpha=0.3),
              LSTM.init(n_in, n, None, seed=4), GRU.init(n_in, n, None, seed=5)):
        x = rng.normal(size=(T, n_in))
        dh, dc = rng.normal(size=(T, n)), rng.normal(size=(T, n))
        lstm = isinstance(m, LSTM)
        g, dx = m.vjp(x, dh, dc=dc if lstm else None)

        def E(xx, m=m, dh=dh, dc=dc, lstm=lstm):
            if lstm:
                hs, cs = naive.lstm_forward(m, xx)
                return float(np.sum(dh * hs[1:]) + np.sum(dc * cs[1:]))
            hs = naive.gru_forward(m, xx) if isinstance(m, GRU) else naive.forward(m, xx)
            return float(np.sum(dh * hs[1:]))

        for idx in ((0, 0), (T - 1, 1)):
            xp, xm = x.copy(), x.copy()
            xp[idx] += 1e-6
            xm[idx] -= 1e-6
            fd = (E(xp) - E(xm)) / 2e-6
            if abs(dx[idx] - fd) > 1e-6 * max(1.0, abs(fd)):
                fails.append(("vjp", type(m).__name__, idx))
    # stacked models (the whole-state flow kernels): flow[0] against central
    # differences of the loss in the initial states
    from rnntheory import StackedRNN
    for cell in ("lstm", "gru"):
        m = StackedRNN.init(n_in, n, 2, cell=cell, n_layers=2, seed=6)
        x, y = rng.normal(size=(T, n_in)), rng.normal(size=(T, 2))
        h0, c0 = 0.3 * rng.normal(size=(2, n)), 0.3 * rng.normal(size=(2, n))
        c0 = c0 if cell == "lstm" else None
        _, g = m.value_and_grad(x, y, loss="mse", h0=h0, c0=c0)
        S = m.state_size // 2
        for layer, j in ((0, 0), (1, n - 1)):
            hp, hm = h0.copy(), h0.copy()
            hp[layer, j] += 1e-6
            hm[layer, j] -= 1e-6
            fd = (m.loss(x, y, loss="mse", h0=hp, c0=c0) - m.loss(x, y, loss="mse", h0=hm, c0=c0)) / 2e-6
            if abs(g.flow[0, layer * S + j] - fd) > 1e-6 * max(1.0, abs(fd)):
                fails.append(("stacked-flow", cell, layer, j))
        if cell == "lstm" and g.flow[-1, S + n:].any():
            fails.append(("stacked-flow-c-end", cell))
    if fails:
        print("MISMATCH", fails)
        sys.exit(1)
    print("OK")
    """
)


def test_kernels_without_jit_match_naive(tmp_path):
    """Every kernel path, interpreted with bounds checking, equals the loop
    references (forward, loss, every gradient and flow, step Jacobians, log
    norms, profile, product, Lyapunov spectrum via its log-det identity)."""
    script = tmp_path / "nojit_check.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1"
    tests_dir = str(Path(__file__).parent)
    env["PYTHONPATH"] = tests_dir + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert r.stdout.strip().endswith("OK")
