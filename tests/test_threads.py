"""Batched Elman passes split over threads.

A batch splits into contiguous ranges of sequences, each run by a thread
(``rnntheory._parallel.run_rows``), and the weight gradients are sums of
per-range partial products (``sum_over_rows``). Sequences never interact, so
the loss, every gradient, the flow and the trace must equal the loop reference
(``tests/naive.py``) whatever the thread count, including ranges of a single
sequence and batches that do not divide evenly. The threshold that keeps small
problems on one thread is lowered to 0 here so that tiny problems take the
threaded path.
"""

from __future__ import annotations

import threading
from functools import partial

import naive
import numpy as np
import pytest
from test_elman_kernels import (
    PARAMS,
    make_mask,
    make_model,
    make_targets,
    masked_targets,
    rel_err,
    seed_of,
)

import rnntheory
from rnntheory import _parallel


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("alpha", [None, "vector"])
@pytest.mark.parametrize("form", ["standard", "pascanu"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_threaded_value_and_grad_matches_naive(threaded, threads, alpha, form, loss):
    """Split over 2, 3 or 8 threads (B = 5: ranges of 1–3 sequences, and more
    threads than sequences), loss, parameter gradients and flow ∂E/∂h_k equal the
    per-sequence loop reference to 1e-10, and the trace equals the loop forward."""
    rnntheory.set_num_threads(threads)
    rng = np.random.default_rng(seed_of(("threads", threads, alpha, form, loss)))
    T, B = 6, 5
    m = make_model(rng, form=form, alpha=alpha)
    x = rng.normal(0.0, 1.0, (T, B, m.n_in))
    h0 = rng.normal(0.0, 0.5, (B, m.n_hidden))
    mask = make_mask(rng, T, B)
    y = masked_targets(make_targets(rng, m, loss, T, B), mask, loss)
    val, g = m.value_and_grad(x, y, loss=loss, mask=mask, h0=h0, keep_trace=True)
    refs = naive.bptt_batch(m, x, y, loss, mask, h0)
    want = sum(naive.loss(m, x[:, i], y[:, i], loss, mask[:, i], h0[i]) for i in range(B))
    assert abs(val - want) <= 1e-10 * abs(want)
    for name in PARAMS:
        assert rel_err(getattr(g, name), sum(r[name] for r in refs)) <= 1e-10, name
    assert rel_err(g.flow, np.stack([r["flow"] for r in refs], axis=1)) <= 1e-10
    assert rel_err(g.trace.h, naive.forward_batch(m, x, h0)) <= 1e-10
    assert rel_err(m.forward(x, h0=h0).h, naive.forward_batch(m, x, h0)) <= 1e-10


def test_threaded_blas_sized_batch_matches_one_thread(threaded):
    """At B·n² ≥ the per-step BLAS threshold (B = 32, n = 64) each thread's range
    still takes the BLAS product (the whole batch decides), and two threads give
    the one-thread result to rounding (1e-12) and the loop reference to 1e-10."""
    rng = np.random.default_rng(7)
    T, B, n = 4, 32, 64
    m = make_model(rng, n_in=3, n=n, n_out=2, w_scale=0.9)
    x = rng.normal(size=(T, B, 3))
    y = rng.normal(size=(T, B, 2))
    rnntheory.set_num_threads(1)
    v1, g1 = m.value_and_grad(x, y, loss="mse")
    rnntheory.set_num_threads(2)
    v2, g2 = m.value_and_grad(x, y, loss="mse")
    assert abs(v1 - v2) <= 1e-12 * abs(v1)
    for name in (*PARAMS, "flow"):
        assert rel_err(getattr(g2, name), getattr(g1, name)) <= 1e-12, name
    refs = naive.bptt_batch(m, x, y, "mse")
    assert rel_err(g2.W_hh, sum(r["W_hh"] for r in refs)) <= 1e-10


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_threaded_chunked_truncation_matches_windowed_sum(threaded, form):
    """Chunked truncated BPTT(3, 3) on threads equals the windowed double sum of
    Eq. 6 (``naive.bptt_windowed``) summed over the sequences, flow included."""
    rnntheory.set_num_threads(2)
    rng = np.random.default_rng(seed_of(("threads-tbptt", form)))
    T, B = 9, 3
    m = make_model(rng, form=form, alpha="vector")
    x = rng.normal(size=(T, B, m.n_in))
    y = make_targets(rng, m, "mse", T, B)
    _, g = m.value_and_grad(x, y, loss="mse", truncate=(3, 3))
    refs = [naive.bptt_windowed(m, x[:, b], y[:, b], "mse", 3, k1=3) for b in range(B)]
    assert rel_err(g.W_hh, sum(r[0] for r in refs)) <= 1e-10
    assert rel_err(g.flow, np.stack([r[1] for r in refs], axis=1)) <= 1e-10


def test_concurrent_callers_share_the_pool(threaded):
    """Four Python threads, each training-stepping its own model on two threads
    of the shared pool, all get their own model's loop-reference gradients."""
    rnntheory.set_num_threads(2)
    rng = np.random.default_rng(3)
    jobs = []
    for _ in range(4):
        m = make_model(rng)
        x = rng.normal(size=(5, 4, m.n_in))
        y = make_targets(rng, m, "xent", 5, 4)
        jobs.append((m, x, y))
    results: dict[int, float] = {}

    def work(i):
        m, x, y = jobs[i]
        worst = 0.0
        for _ in range(20):
            _, g = m.value_and_grad(x, y, loss="xent")
            ref = sum(r["W_hh"] for r in naive.bptt_batch(m, x, y, "xent"))
            worst = max(worst, rel_err(g.W_hh, ref))
        results[i] = worst

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(results) == [0, 1, 2, 3]
    assert max(results.values()) <= 1e-10


def test_pool_replaced_while_others_submit():
    """Regression: callers needing different pool sizes, and set_num_threads,
    replace the shared pool while other threads submit to it. Choosing the pool
    and submitting happen under one lock, so no caller submits to a pool that
    was shut down in between ("cannot schedule new futures after shutdown"),
    and every call still returns its own results in order."""
    from rnntheory._parallel import run_parallel

    before = rnntheory.get_num_threads()
    errors: list[BaseException] = []
    stop = threading.Event()

    def caller(width):
        try:
            for i in range(400):
                calls = [partial(lambda a, b: a * 10 + b, i, j) for j in range(width)]
                assert run_parallel(calls) == [i * 10 + j for j in range(width)]
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    def resetter():
        while not stop.is_set():
            rnntheory.set_num_threads(2)

    ts = [threading.Thread(target=caller, args=(w,)) for w in (2, 3, 5, 2)]
    r = threading.Thread(target=resetter)
    try:
        r.start()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        stop.set()
        r.join()
        rnntheory.set_num_threads(before)
    assert not errors, errors[0]


def test_error_in_a_worker_range_is_raised(threaded):
    """An exception raised for a range run on the pool reaches the caller, after
    every range has finished (no range is abandoned mid-write)."""
    rnntheory.set_num_threads(3)
    done = []

    def kernel(b0, b1):
        done.append((b0, b1))
        if b0 > 0:
            raise RuntimeError(f"range {b0}:{b1}")

    with pytest.raises(RuntimeError, match="range"):
        _parallel.run_rows(kernel, (), 6, 3)
    assert sorted(done) == [(0, 2), (2, 4), (4, 6)]


def test_threads_for_keeps_small_problems_on_one_thread():
    """Below the work threshold one thread; above it min(threads, batch)."""
    before = rnntheory.get_num_threads()
    try:
        rnntheory.set_num_threads(4)
        assert _parallel.threads_for(32, _parallel._PARALLEL_MIN_WORK - 1) == 1
        assert _parallel.threads_for(32, _parallel._PARALLEL_MIN_WORK) == 4
        assert _parallel.threads_for(3, 10 * _parallel._PARALLEL_MIN_WORK) == 3
        assert _parallel.threads_for(1, 10 * _parallel._PARALLEL_MIN_WORK) == 1
    finally:
        rnntheory.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "2", True])
def test_set_num_threads_rejects_bad_values(bad):
    """A thread count that is not a positive integer is refused, naming ``n``."""
    with pytest.raises((ValueError, TypeError), match="`n`"):
        rnntheory.set_num_threads(bad)


def test_environment_variable_sets_the_default(monkeypatch):
    """``RNNTHEORY_NUM_THREADS`` sets the default; a non-integer is a named error."""
    monkeypatch.setattr(_parallel, "_NUM_THREADS", [])
    monkeypatch.setenv("RNNTHEORY_NUM_THREADS", "3")
    assert rnntheory.get_num_threads() == 3
    monkeypatch.setattr(_parallel, "_NUM_THREADS", [])
    monkeypatch.setenv("RNNTHEORY_NUM_THREADS", "three")
    with pytest.raises(ValueError, match=r"RNNTHEORY_NUM_THREADS.*'three'"):
        rnntheory.get_num_threads()


def test_threaded_log_norms_match_svd_of_explicit_products(threaded):
    """``jacobians.log_norms`` with its rows dealt to 3 threads equals
    ``ln σ_max`` of every explicit product (SVD, ``naive.log_norms_svd``) to 1e-9."""
    rnntheory.set_num_threads(3)
    rng = np.random.default_rng(5)
    m = make_model(rng, n=5, w_scale=1.5)
    x = rng.normal(size=(13, m.n_in))
    tr = m.forward(x)
    got = rnntheory.jacobians.log_norms(m, tr)
    want = naive.log_norms_svd(naive.jacobians(m, x))
    finite = np.isfinite(want)
    assert np.array_equal(finite, np.isfinite(got))
    assert np.max(np.abs(got[finite] - want[finite])) <= 1e-9 * max(1.0, np.max(np.abs(want[finite])))


def test_thread_limit_is_per_thread_and_restored():
    """``thread_limit(1)`` caps the calling thread only, nests, and restores the
    previous cap on exit (the sweep runs each training run under it)."""
    before = rnntheory.get_num_threads()
    try:
        rnntheory.set_num_threads(4)
        seen = {}
        with _parallel.thread_limit(1):
            assert rnntheory.get_num_threads() == 1
            t = threading.Thread(target=lambda: seen.setdefault("other", rnntheory.get_num_threads()))
            t.start()
            t.join()
            with _parallel.thread_limit(3):
                assert rnntheory.get_num_threads() == 3
            assert rnntheory.get_num_threads() == 1
        assert seen["other"] == 4
        assert rnntheory.get_num_threads() == 4
    finally:
        rnntheory.set_num_threads(before)


@pytest.mark.parametrize("form", ["standard", "pascanu"])
@pytest.mark.parametrize("variant", ["squared", "norm"])
def test_threaded_omega_matches_naive_and_one_thread(threaded, form, variant):
    """Ω over ranges of its terms (3 threads, means recombined by their counts)
    equals the loop reference (Eqs. 15–16 from explicit Jacobians, ``naive.omega``)
    to 1e-10, and value, ∂Ω/∂W_hh, ratios and counted terms equal the one-thread
    result to 1e-12; a mask with masked-out steps leaves some terms uncounted."""
    from rnntheory.remedies import omega

    rng = np.random.default_rng(seed_of(("omega-threads", form, variant)))
    T, B = 7, 4
    m = make_model(rng, form=form, alpha="vector")
    x = rng.normal(size=(T, B, m.n_in))
    y = make_targets(rng, m, "xent", T, B)
    mask = np.ones((T, B))
    mask[-2:, :2] = 0.0  # no loss at the end of two sequences: their last flows are 0
    _, g = m.value_and_grad(x, y, loss="xent", mask=mask)
    tr = m.forward(x)
    rnntheory.set_num_threads(1)
    one = omega(m, tr, g.flow, variant=variant)
    rnntheory.set_num_threads(3)
    three = omega(m, tr, g.flow, variant=variant)
    assert not one.counted.all() and one.count == int(one.counted.sum())
    assert three.value == pytest.approx(naive.omega(m, x, y, "xent", mask, variant=variant), rel=1e-10)
    assert abs(three.value - one.value) <= 1e-12 * abs(one.value)
    assert rel_err(three.W_hh, one.W_hh) <= 1e-12
    assert np.array_equal(three.counted, one.counted)
    np.testing.assert_allclose(three.ratio, one.ratio, rtol=1e-13)


def test_forked_child_builds_its_own_pool(threaded):
    """After the pool exists, a child made by ``fork`` (the default start method of
    ``multiprocessing`` on Linux) has none of its threads; its threaded passes
    must still finish and give the loop reference's W_hh gradient (to 1e-10)."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("this platform has no fork")
    rnntheory.set_num_threads(2)
    rng = np.random.default_rng(9)
    m = make_model(rng)
    x = rng.normal(size=(5, 4, m.n_in))
    y = make_targets(rng, m, "xent", 5, 4)
    m.value_and_grad(x, y, loss="xent")  # the parent's pool now exists
    assert _parallel._POOL
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_step, args=(q, m, x, y))
    p.start()
    p.join(timeout=60)
    if p.is_alive():
        p.kill()
        pytest.fail("the forked child hung on its first threaded pass")
    got = q.get(timeout=5)
    want = sum(r["W_hh"] for r in naive.bptt_batch(m, x, y, "xent"))
    assert rel_err(got, want) <= 1e-10


def _child_step(q, m, x, y):
    _parallel._PARALLEL_MIN_WORK = 0  # the fixture's setting does not cross the fork on its own
    q.put(m.value_and_grad(x, y, loss="xent")[1].W_hh)


@pytest.mark.parametrize("form", ["standard", "pascanu"])
def test_threaded_float32_matches_one_thread_and_naive(threaded, form):
    """float32 on 3 threads: every gradient and the flow equal the one-thread
    float32 result to 1e-6 (float32 rounding of partial sums) and the float64
    loop reference on the same float32-representable data to 1e-4."""
    rng = np.random.default_rng(seed_of(("threads-f32", form)))
    T, B = 6, 5
    m = make_model(rng, form=form, alpha="vector", dtype=np.float32)
    x = rng.normal(size=(T, B, m.n_in)).astype(np.float32)
    y = make_targets(rng, m, "mse", T, B).astype(np.float32)
    rnntheory.set_num_threads(1)
    v1, g1 = m.value_and_grad(x, y, loss="mse")
    rnntheory.set_num_threads(3)
    v3, g3 = m.value_and_grad(x, y, loss="mse")
    refs = naive.bptt_batch(m, x, y, "mse")
    assert abs(v3 - v1) <= 1e-6 * abs(v1)
    for name in (*PARAMS, "flow"):
        assert getattr(g3, name).dtype == np.float32
        assert rel_err(getattr(g3, name), getattr(g1, name)) <= 1e-6, name
    for name in PARAMS:
        assert rel_err(getattr(g3, name), sum(r[name] for r in refs)) <= 1e-4, name
