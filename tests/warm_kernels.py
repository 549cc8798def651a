"""Compile the package's Numba kernels into the on-disk cache, in a second process.

On a fresh checkout every kernel is compiled on first use, one after the
other, by the test process itself: most of a cold run's time is compilation.
``conftest.py`` starts this script beside the tests when the cache is cold, so
the compilation runs on the other core while the tests run; a test that then
needs a kernel loads it from the cache instead of compiling it (a kernel the
tests reach first is compiled there as before: the cache files are written
atomically, so two processes compiling the same kernel only repeat work).

The script asserts nothing: it is not a test, and what it computes is thrown
away. Its order follows the suite's: first the cells' forward and backward
passes (``test_batch_first``), then the Jacobian products of ``test_bounds``,
then what ``rnntheory verify`` runs (``test_cli``), then the rest.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np


def _jacobians() -> None:
    from rnntheory import GRU, LSTM, ElmanRNN, StackedRNN, bounds, jacobians

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2))
    models = [
        ElmanRNN.init(2, 3, None, scheme="gaussian", seed=0),
        LSTM.init(2, 3, None, seed=0),
        GRU.init(2, 3, None, seed=0),
        StackedRNN.init(2, 3, None, cell="lstm", n_layers=2, seed=0),
    ]
    for m in models:
        tr = m.forward(x)
        jacobians.log_norms(m, tr)
        jacobians.log_norm_profile(m, tr)
        jacobians.log_norm_reach(m, tr)
        jacobians.product(m, tr, 4, 1)
        jacobians.lyapunov_spectrum(m, tr)
        bounds.certify(m, tr)


def _verify() -> None:
    from rnntheory.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["verify", "--json", "--T", "30"])


def _cells() -> None:
    from rnntheory import GRU, LSTM, BidirectionalRNN, ElmanRNN, StackedRNN

    rng = np.random.default_rng(1)
    for dtype in (np.float64, np.float32):
        x = rng.normal(size=(5, 3, 2)).astype(dtype)
        y = rng.integers(0, 2, size=(5, 3))
        for m in (
            ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=0, dtype=dtype),
            LSTM.init(2, 3, 2, seed=0, dtype=dtype),
            GRU.init(2, 3, 2, seed=0, dtype=dtype),
            StackedRNN.init(2, 3, 2, cell="gru", n_layers=2, seed=0, dtype=dtype),
            BidirectionalRNN.init(2, 3, 2, cell="lstm", n_layers=2, seed=0, dtype=dtype),
        ):
            m.forward(x)
            if hasattr(m, "value_and_grad"):
                m.value_and_grad(x, y)
        # Ω of the Elman RNN: recomputed (a keep_trace=True record) and from the BPTT parts
        from rnntheory.remedies import omega

        m = ElmanRNN.init(2, 3, 2, scheme="gaussian", seed=0, dtype=dtype)
        _, g = m.value_and_grad(x, y, keep_trace=True)
        for hold in (True, False):
            omega(m, g.trace, g, hold_fprime=hold)
        _, g = m.value_and_grad(x, y, keep_trace="scratch")
        omega(m, g.trace, g, hold_fprime=True)


def _remedies_of_every_cell() -> None:
    """Gauss–Newton products, generators and Ω of the gated cells and stacks
    (test_gated_curvature, test_generator_*, test_omega_*, test_stacked_*); the stacked
    Ω kernels of every cell."""
    from rnntheory import GRU, LSTM, GeneratorRNN, StackedRNN
    from rnntheory.remedies import omega

    rng = np.random.default_rng(2)
    for dtype in (np.float64, np.float32):
        for B in ((), (3,)):
            x = rng.normal(size=(5, *B, 2)).astype(dtype)
            y = rng.integers(0, 2, size=(5, *B))
            for m in (LSTM.init(2, 3, 2, seed=0, dtype=dtype), GRU.init(2, 3, 2, seed=0, dtype=dtype),
                      StackedRNN.init(2, 3, 2, cell="lstm", n_layers=2, seed=0, dtype=dtype)):
                G = m.gauss_newton(x, y, lam_struct=0.1)
                G(np.ones(G.n_params))
                m.loss(x, y)
                _, g = m.value_and_grad(x, y, keep_trace=True)
                for hold in (True, False):
                    omega(m, g.trace, g, hold_fprime=hold)
                _, g = m.value_and_grad(x, y, keep_trace="scratch")  # the LSTM's Ω from its BPTT parts
                omega(m, g.trace, g, hold_fprime=True)
                if isinstance(m, StackedRNN):
                    m.value_and_grad(x, y, truncate=(2, 3))
            # the stacked Ω kernels (one compilation per cell and dtype, any layer count)
            for cell in ("elman", "lstm", "gru"):
                st = StackedRNN.init(2, 3, 2, cell=cell, n_layers=2, seed=0, dtype=dtype)
                _, g = st.value_and_grad(x, y, keep_trace=True)
                for hold in (True, False):
                    omega(st, g.trace, g, hold_fprime=hold)
            for cell, layers in (("elman", 1), ("lstm", 1), ("gru", 1), ("lstm", 2), ("gru", 2)):
                gen = GeneratorRNN.init(2, 3, 2, cell=cell, n_layers=layers, seed=0, dtype=dtype)
                for mode, p in (("free", None), ("scheduled", 0.5), ("teacher", None)):
                    gen.value_and_grad(x, y, mode=mode, p=p, seed=0)


def _esn() -> None:
    """The sparse reservoir's run loop (test_esn, test_esn_scale)."""
    from rnntheory.esn import random_esn

    e = random_esn(120, 1, 1, spectral_radius=0.9, connectivity=0.05, feedback_scaling=0.5, seed=0)
    e.run(np.zeros((3, 1)), np.zeros((3, 1)))


def main() -> None:
    warnings.simplefilter("ignore")
    for step in (_cells, _jacobians, _verify, _remedies_of_every_cell, _esn):
        try:
            step()
        except Exception:  # warming only: the tests report real failures
            pass


if __name__ == "__main__":
    main()
