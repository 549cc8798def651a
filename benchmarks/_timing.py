"""Timing helper shared by the remedy benchmarks (run as scripts from the repository root)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_times(
    fns: dict[str, Callable[[], object]],
    budget: float,
    min_rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median time of each function, calling them in turn (so background load hits
    all alike) for at least ``min_rounds`` rounds and until ``budget`` seconds of
    wall time have passed. ``clock``: ``time.perf_counter`` (wall) or
    ``time.process_time`` (CPU time, for a shared machine)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    t_end = time.perf_counter() + budget
    rounds = 0
    while rounds < min_rounds or time.perf_counter() < t_end:
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}
