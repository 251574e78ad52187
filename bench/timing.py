"""Timing helpers shared by the benchmarks (not a test: figures go to docs/benchmarks.md).

This machine's speed drifts by tens of percent from minute to minute (shared virtual CPUs), so the
benchmarks interleave the variants they compare and report the best (minimum) time of each: the
least-disturbed run, the statistic `timeit` uses too.
"""

import time
from typing import Callable, Dict


def best_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    return interleaved_best({"fn": fn}, repeats, warmup)["fn"]


def interleaved_best(fns: Dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> Dict[str, float]:
    """Best times of several functions measured in alternation, so drifting machine load hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}
