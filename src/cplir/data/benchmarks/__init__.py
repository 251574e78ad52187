"""Benchmark adapters: a root folder of one of the published layouts -> :data:`TaskRecords` (paths only).

* :mod:`~cplir.data.benchmarks.registry`: ``register_benchmark``, ``load_benchmark``, ``scan_benchmark``; each
  benchmark registered with its tasks, their published repeats and their synthetic recipes.
* :mod:`~cplir.data.benchmarks.report`: what a scan finds besides records (missing pairs, stray files, ...).
* :mod:`~cplir.data.benchmarks.pairing`, :mod:`~cplir.data.benchmarks.options`: scanning, pairing rules and option
  checks shared by the adapters.
* One module per benchmark family: :mod:`~cplir.data.benchmarks.promptir` (three/five-task),
  :mod:`~cplir.data.benchmarks.mioir` (seven-task), :mod:`~cplir.data.benchmarks.cdd11`,
  :mod:`~cplir.data.benchmarks.weather` (all-weather, WeatherBench), :mod:`~cplir.data.benchmarks.paired`,
  :mod:`~cplir.data.benchmarks.sr` (DIV2K, SR folders, Set5 ... Manga109), :mod:`~cplir.data.benchmarks.reside`
  (ITS / SOTS-indoor), :mod:`~cplir.data.benchmarks.spa` (SPA-Data), :mod:`~cplir.data.benchmarks.embedded`.

Importing this package registers every benchmark.
"""

# Importing the family modules registers their benchmarks.
from cplir.data.benchmarks import cdd11, embedded, mioir, paired, promptir, reside, spa, sr, weather  # noqa: F401
from cplir.data.benchmarks.promptir import (ADAIR_REPEATS, ADAIR_TASKS, FIVE_TASK_TEST_SIGMAS, PROMPTIR_REPEATS,
                                            PROMPTIR_TASKS)
from cplir.data.benchmarks.registry import (BENCHMARKS, SPLITS, Benchmark, TaskRecipe, benchmark_options,
                                            get_benchmark, list_benchmarks, load_benchmark,
                                            register_benchmark, scan_benchmark)
from cplir.data.benchmarks.report import MAX_LISTED, DataReport, EmptyTask, MissingPair
from cplir.data.benchmarks.verify import verify_images

__all__ = [
    "ADAIR_REPEATS",
    "ADAIR_TASKS",
    "BENCHMARKS",
    "FIVE_TASK_TEST_SIGMAS",
    "MAX_LISTED",
    "PROMPTIR_REPEATS",
    "PROMPTIR_TASKS",
    "SPLITS",
    "Benchmark",
    "DataReport",
    "EmptyTask",
    "MissingPair",
    "TaskRecipe",
    "benchmark_options",
    "get_benchmark",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
    "scan_benchmark",
    "verify_images",
]
