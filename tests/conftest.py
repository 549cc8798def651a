"""Shared test configuration: Hypothesis profiles and the torch oracle switch.

Profiles (``HYPOTHESIS_PROFILE``): ``dev`` (fast, the default on a laptop),
``ci`` (derandomized, the default when ``CI`` is set), ``thorough`` (many
examples, for a long run before a release).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def threaded(monkeypatch):
    """Every batched pass takes the threaded path (the work threshold is 0);
    the thread count is restored afterwards."""
    import rnntheory
    from rnntheory import _parallel

    monkeypatch.setattr(_parallel, "_PARALLEL_MIN_WORK", 0)
    before = rnntheory.get_num_threads()
    yield
    rnntheory.set_num_threads(before)


@pytest.fixture(autouse=True)
def _mpmath_precision():
    """Every test starts at mpmath's default precision (53 bits) and leaves it so.

    Oracles that raise the precision (``mpmath.mp.dps = 50``) would otherwise
    leak it into every later test, and a result could depend on test order.
    """
    import mpmath

    mpmath.mp.prec = 53
    yield
    mpmath.mp.prec = 53


# --------------------------------------------------------------------------- warm-up
# A fresh checkout compiles every Numba kernel on first use, one after the
# other, in the test process: most of a cold run is compilation. When the
# on-disk cache is cold, tests/warm_kernels.py compiles the kernels in a second
# process on the other core while the tests run (RNNTHEORY_NO_WARMUP=1 turns it
# off). It asserts nothing and writes only Numba's own cache files.
_WARMER: list = []


def _kernel_cache_is_cold() -> bool:
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return False
    import rnntheory

    root = Path(rnntheory.__file__).parent
    cache = Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR") else None
    # One kernel from the warm-up's first phase and one from its last: after
    # the README's `rnntheory verify` the first is cached but most of the
    # kernels the tests need are not, and the warm-up must still run.
    sentinels = ("_jacobian_kernels.log_norms_rows-*.nbi", "_generator_kernels.gru_generator_forward-*.nbi")
    return not all(any((cache or root).rglob(s)) for s in sentinels)


def pytest_sessionstart(session):
    if os.environ.get("RNNTHEORY_NO_WARMUP") or not _kernel_cache_is_cold():
        return
    import subprocess

    _WARMER.append(subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("warm_kernels.py"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    ))


def pytest_sessionfinish(session, exitstatus):
    for proc in _WARMER:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def trajectory():
    """A 12-unit tanh model over 40 steps: ln-norms, the Eq. 12 bound on every pair, its rate
    (the figure tests of test_plotting and test_figures draw from it)."""
    import numpy as np

    from rnntheory import ElmanRNN, bounds, jacobians

    model = ElmanRNN.init(n_in=2, n_hidden=12, n_out=None, scheme="gaussian", scale=1.3, seed=4)
    trace = model.forward(np.random.default_rng(4).normal(size=(40, 2)))
    L = jacobians.log_norms(model, trace)
    B = bounds.pair_log_bounds(bounds.step_log_bounds(model, trace, "eq12"))
    rate = float(np.log(bounds.decay_rate(model.W_hh, model.activation)))
    return L, B, rate
