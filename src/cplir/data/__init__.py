"""Data: degradation synthesis, benchmark layouts (:mod:`cplir.data.benchmarks`), the embedded photographs, torch
data sets and loaders. Nothing here imports the configuration, the engine or the command line."""
