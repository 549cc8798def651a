"""Threads, BLAS limits and scratch arrays: how the numeric core runs on a machine.

A leaf of the package: it imports nothing of rnntheory but the validation
module. The batched passes of the cells, the Gauss–Newton product, ``omega``
and ``log_norms`` split their work into contiguous ranges (of sequences, of
rows, of pairs) run on one shared thread pool (the kernels release the GIL),
hold BLAS at one thread meanwhile, and keep their large temporaries in
per-thread scratch arrays.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

import numpy as np

from ._validation import check_int

# Below this many multiply-adds the weight-gradient products run on one BLAS
# thread: waking a sleeping OpenBLAS worker after a stretch of serial kernel
# code took ~5 ms here, far more than the product itself (~0.1 ms).
_SMALL_GEMM_WORK = 50_000_000
_BLAS_SELECTION: list[Any] = []


def blas_threads_for(work: int) -> contextlib.AbstractContextManager[Any]:
    """A context running OpenBLAS on one thread when ``work`` multiply-adds is small."""
    if work >= _SMALL_GEMM_WORK:
        return contextlib.nullcontext()
    if not _BLAS_SELECTION:
        import scipy.linalg  # noqa: F401  (loads the BLAS that Numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _BLAS_SELECTION.append(ThreadpoolController().select(internal_api="openblas"))
    return _BLAS_SELECTION[0].limit(limits=1)


# ----------------------------------------------------------------- threads
# The sequences of a batch never interact, so a batched forward or backward pass
# splits into contiguous ranges of sequences run by concurrent threads (the
# kernels release the GIL). Below _PARALLEL_MIN_WORK multiply-adds per call the
# thread hand-off costs more than it saves.
_PARALLEL_MIN_WORK = 4_000_000
_NUM_THREADS: list[int] = []
_POOL: list[tuple[ThreadPoolExecutor, int]] = []  # (pool, its workers)
_POOL_LOCK = threading.Lock()


def _default_num_threads() -> int:
    env = os.environ.get("RNNTHEORY_NUM_THREADS")
    if env is not None:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(
                f"environment variable RNNTHEORY_NUM_THREADS must be a positive integer, got {env!r}"
            ) from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_LOCAL_LIMIT = threading.local()


@contextlib.contextmanager
def thread_limit(n: int) -> Any:
    """Within this context, calls made by the current thread use at most ``n``
    threads (other threads keep theirs): what a sweep worker running one
    training run per core uses."""
    n = check_int("n", n, minimum=1)
    before = getattr(_LOCAL_LIMIT, "n", None)
    _LOCAL_LIMIT.n = n
    try:
        yield
    finally:
        _LOCAL_LIMIT.n = before


def get_num_threads() -> int:
    """Number of threads a batched pass (Elman, LSTM, GRU, Gauss–Newton product) may use.

    Defaults to the environment variable ``RNNTHEORY_NUM_THREADS`` if set, else
    the number of CPUs this process may run on. Single sequences, and batches
    whose step costs fewer than a few million multiply-adds, always run on the
    calling thread.
    """
    local = getattr(_LOCAL_LIMIT, "n", None)
    if local is not None:
        return min(local, _global_num_threads())
    return _global_num_threads()


def _global_num_threads() -> int:
    if not _NUM_THREADS:
        _NUM_THREADS.append(_default_num_threads())
    return _NUM_THREADS[0]


def set_num_threads(n: int) -> None:
    """Set the number of threads of a batched pass (``1``: the calling thread only).

    The threads split the batch into contiguous ranges of sequences, and the
    products over all ``T·B`` rows (weight gradients, readout) into ranges of
    rows; meanwhile BLAS runs on one thread. Calls too small to split (see
    :func:`get_num_threads`) leave BLAS at its own setting (``threadpoolctl``).
    """
    n = check_int("n", n, minimum=1)
    with _POOL_LOCK:
        _NUM_THREADS[:] = [n]
        while _POOL:
            _POOL.pop()[0].shutdown(wait=False)


def threads_for(batch: int, work: int) -> int:
    """How many threads a batched pass of ``work`` multiply-adds over ``batch``
    sequences should use: 1 below a few million multiply-adds, else up to
    :func:`get_num_threads` (never more than ``batch``)."""
    if work < _PARALLEL_MIN_WORK:
        return 1
    return max(1, min(get_num_threads(), batch))


def own_threads(k: int) -> contextlib.AbstractContextManager[Any]:
    """The context of a call that runs ``k`` threads of its own: with ``k > 1``,
    BLAS runs single-threaded inside it. OpenBLAS workers keep spinning on a
    core for a while after each multi-threaded product; on a 2-core machine one
    spinning worker halved the speed of the next two-thread kernel."""
    return blas_threads_for(0) if k > 1 else contextlib.nullcontext()


def _forget_pool_after_fork() -> None:
    """In a forked child the pool's threads do not exist (only the forking thread
    survives a fork): a task submitted there would never run. Forget the pool
    (and a lock another thread may have held); the child builds its own."""
    global _POOL_LOCK
    _POOL.clear()
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _submit(calls: list[Callable[[], Any]]) -> list[Future[Any]]:
    """Submit the calls to a pool of at least ``len(calls)`` workers, growing it
    if needed. Under the lock, so that no other caller (a larger batch, or
    :func:`set_num_threads`) can shut the pool down between the choice of pool
    and the submissions; a pool shut down later still runs what it was given."""
    with _POOL_LOCK:
        k = len(calls)
        if not _POOL or _POOL[0][1] < k:
            while _POOL:
                _POOL.pop()[0].shutdown(wait=False)
            _POOL.append((ThreadPoolExecutor(max_workers=k, thread_name_prefix="rnntheory"), k))
        pool = _POOL[0][0]
        return [pool.submit(c) for c in calls]


def row_ranges(size: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous, nearly equal ranges ``(r0, r1)`` covering ``0..size``."""
    return [(size * i // k, size * (i + 1) // k) for i in range(k)]


def run_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls, the first on this thread and the others on the pool; the
    results in order (an exception in any call is raised here, after all end)."""
    if len(calls) == 1:
        return [calls[0]()]
    futures = _submit(calls[1:])
    try:
        first = calls[0]()
    finally:
        wait(futures)  # every range ends before anything is raised or returned
    return [first, *(f.result() for f in futures)]


def run_rows(kernel: Callable[..., Any], args: tuple[Any, ...], batch: int, k: int) -> None:
    """Call ``kernel(*args, b0, b1)`` on ``k`` ranges of sequences covering
    ``0..batch`` (nearly equal, contiguous), concurrently when ``k > 1``.

    The kernel must release the GIL and touch only its own sequences."""
    run_parallel([partial(kernel, *args, b0, b1) for b0, b1 in row_ranges(batch, max(1, min(k, batch)))])


# Scratch arrays of value_and_grad, kept per thread and reused while the shapes
# repeat (a training loop): a fresh array of megabytes costs a page fault per 4 kB
# on first touch (glibc returns large freed blocks to the system), about 20 % of
# a training step at h = 64. Arrays above _SCRATCH_MAX_BYTES are not kept.
_SCRATCH = threading.local()
_SCRATCH_MAX_BYTES = 1 << 26


def scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array for temporary use inside one call, reused by the
    next call of this thread that asks for ``name`` with the same shape and
    dtype. Never return it to a caller: its contents change on the next call."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype=dtype)
    store = getattr(_SCRATCH, "arrays", None)
    if store is None:
        store = _SCRATCH.arrays = {}
    a = store.get(name)
    if a is None or a.shape != tuple(shape) or a.dtype != dtype:
        a = store[name] = np.empty(shape, dtype=dtype)
    return a
