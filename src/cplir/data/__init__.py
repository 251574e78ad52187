"""Data: degradation synthesis, benchmark adapters, the embedded data set, torch data sets, checks."""

# Registers the `embedded` benchmark whenever any data module (e.g. cplir.data.benchmarks) is imported.
from cplir.data import embedded  # noqa: F401
