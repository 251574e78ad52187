"""Tiled inference: restore an image of any size in bounded memory, one overlapping tile at a time.

Tiles are ``tile`` x ``tile`` pixels, overlapping their neighbours by at least ``overlap``; their starts are spread
evenly, so all overlaps along an axis are equal. Near a tile's inner edge the network sees padding instead of the
neighbour's pixels, so its output there is the least reliable. Each tile's weight therefore is

* zero within a margin of a quarter of the overlap from an inner edge,
* rising linearly across the rest of the overlap (the neighbour's weight falls in step),
* one elsewhere, and at the image border (there is no neighbour to blend with);

and every output pixel is the weighted mean of the tiles covering it. Across an overlap the two outputs are
cross-faded, so no seam shows; a network whose receptive field reaches no further than the margin gives exactly
its whole-image output. Everything is in output pixels for a model with ``scale`` s (tiles come back s times
larger).
"""

import math
import os
from typing import Callable, List, Optional

import torch
from torch import nn

from cplir.errors import InputSizeError

# Peak memory of a forward pass (no gradient) as a multiple of its largest single activation: the live skip
# connections of a U-Net, the operands of the operation producing that activation and the allocator's slack.
# Measured for the published-size PromptIR/CPL on the CPU: peak RSS grows by 7.5 KB per pixel between 192² and
# 288² inputs, 3.7 times its largest activation (2040 B per pixel, GDFN's project_in at full resolution).
PEAK_PER_LARGEST_ACTIVATION = 4.0
AUTO_TILE_RANGE = (64, 2048)


def tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    """Start positions of tiles of length ``tile`` covering ``[0, size)`` with overlaps of at least ``overlap``,
    spread evenly (the first at 0, the last at ``size - tile``)."""
    if tile >= size:
        return [0]
    if not 0 <= overlap < tile:
        raise InputSizeError(f"tile overlap must be at least 0 and smaller than the tile ({tile}), got {overlap}")
    n = math.ceil((size - overlap) / (tile - overlap))
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def edge_ramp(length: int, before: int, after: int, margin: int) -> torch.Tensor:
    """1-D weights (length,) of a tile that shares ``before`` pixels with the previous tile and ``after`` with the
    next (0: image border): zero within ``margin`` of a shared edge, then linear to one across the overlap."""
    centres = torch.arange(length, dtype=torch.float32) + 0.5
    weight = torch.ones(length)
    for shared, distance in ((before, centres), (after, length - centres)):
        if shared > 0:
            width = shared - 2 * margin
            ramp = (distance - margin) / width if width > 0 else (distance > margin).float()
            weight = weight * ramp.clamp(0.0, 1.0)
    return weight


def _axis_windows(size: int, tile: int, overlap: int, scale: int) -> List[tuple]:
    """(start, stop, weights) of each tile along one axis, in output pixels."""
    starts = tile_starts(size, tile, overlap)
    stops = [s + min(tile, size) for s in starts]
    margin = overlap // 4 * scale
    windows = []
    for i, (start, stop) in enumerate(zip(starts, stops)):
        before = (stops[i - 1] - start) * scale if i > 0 else 0
        after = (stop - starts[i + 1]) * scale if i + 1 < len(starts) else 0
        windows.append((start, stop, edge_ramp((stop - start) * scale, before, after, margin)))
    return windows


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles :func:`run_tiled` runs on a ``height`` x ``width`` image."""
    return len(tile_starts(height, min(tile, height), overlap)) * len(tile_starts(width, min(tile, width), overlap))


def run_tiled(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int = 32,
              scale: Optional[int] = None, on_tile: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """``model`` applied to ``x`` (B, C, H, W) tile by tile, outputs blended (see the module docstring).

    Args:
        model: any callable (B, C, h, w) -> (B, C_out, s·h, s·w); wrap it in :func:`run_padded` when it needs
            sizes that are multiples of something (a tile at the image's edge need not be).
        tile: tile side in input pixels (an image smaller than that is one tile).
        overlap: least overlap of neighbouring tiles in input pixels.
        scale: s, the model's output/input size ratio (default: ``model.scale``, else 1).
        on_tile: called after each tile (a progress bar's update).
    Returns (B, C_out, s·H, s·W) float32 on ``x``'s device.
    """
    if tile < 1:
        raise InputSizeError(f"tile size must be a positive number of pixels, got {tile}")
    s = int(scale or getattr(model, "scale", 1) or 1)
    h, w = x.shape[-2:]
    out = weight = None
    for y0, y1, wy in _axis_windows(h, tile, overlap, s):
        for x0, x1, wx in _axis_windows(w, tile, overlap, s):
            y = model(x[..., y0:y1, x0:x1]).to(x.device, torch.float32)
            if y.shape[-2:] != (wy.numel(), wx.numel()):
                raise InputSizeError(f"a {y1 - y0}x{x1 - x0} tile came back {tuple(y.shape[-2:])}, expected scale "
                                     f"{s}: pass the model's scale")
            if out is None:
                out = x.new_zeros((*y.shape[:2], h * s, w * s), dtype=torch.float32)
                weight = x.new_zeros((h * s, w * s), dtype=torch.float32)
            window = (wy[:, None] * wx[None, :]).to(x.device)
            out[..., y0 * s:y1 * s, x0 * s:x1 * s] += y * window
            weight[y0 * s:y1 * s, x0 * s:x1 * s] += window
            if on_tile is not None:
                on_tile()
    return out / weight


def largest_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the largest tensor any submodule outputs when ``model`` runs on ``x`` (without gradient)."""
    largest = [0]

    def record(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel() * t.element_size())

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return largest[0]


def available_memory(device: torch.device) -> int:
    """Bytes free for activations: free CUDA memory, or the system's available memory (``MemAvailable``)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def auto_tile_size(model: nn.Module, device: torch.device, channels: int = 3, fraction: float = 0.5,
                   budget: Optional[int] = None) -> int:
    """A tile side for ``model`` whose forward pass fits in ``fraction`` of the available memory (or ``budget``
    bytes): memory per pixel measured on a small probe (largest activation times
    :data:`PEAK_PER_LARGEST_ACTIVATION`), rounded down to the model's size multiple, within
    :data:`AUTO_TILE_RANGE`. Call it under the autocast context the restoration uses (bf16 halves activations).
    """
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    probe = max(64, multiple) // multiple * multiple
    x = torch.rand(1, channels, probe, probe, device=device)
    per_pixel = PEAK_PER_LARGEST_ACTIVATION * largest_activation_bytes(model, x) / probe ** 2
    budget = fraction * available_memory(device) if budget is None else budget
    side = int(math.sqrt(max(budget, 0) / per_pixel))
    low, high = AUTO_TILE_RANGE
    return max(max(low, multiple), min(high, side)) // multiple * multiple
