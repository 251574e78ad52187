"""Composable inference around any restoration model: each wrapper is a function of (model, x).

* :func:`run_padded` pads to the model's ``size_multiple`` and crops back (by its ``scale``);
* :func:`run_tiled` restores tile by tile with cross-faded overlaps (bounded memory, no visible seam);
* :func:`run_ensemble` averages the eight flips and rotations (x8 self-ensemble);
* :func:`precision_context` runs at fp32, bf16 or fp16 (autocast);
* :func:`global_routing` routes prompt blocks once on the whole image, to impose on every tile;
* :class:`Restorer` composes them around a model file, for scripts and ``cplir restore``.
"""

from cplir.inference.ensemble import run_ensemble
from cplir.inference.padding import pad_to_multiple, run_padded
from cplir.inference.precision import precision_context
from cplir.inference.restorer import Restoration, Restorer
from cplir.inference.routing import global_routing
from cplir.inference.tiling import auto_tile_size, run_tiled

__all__ = ["pad_to_multiple", "run_padded", "run_tiled", "auto_tile_size", "run_ensemble", "precision_context",
           "global_routing", "Restorer", "Restoration"]
