"""Composable inference wrappers (padding, tiling, self-ensemble) around any restoration model."""

from cplir.inference.padding import pad_to_multiple, run_padded

__all__ = ["pad_to_multiple", "run_padded"]
