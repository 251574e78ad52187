"""Pad-to-multiple wrapper: lets models that need H, W multiples of 8 take images of any size."""

from typing import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int = 8, mode: str = "reflect") -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right so H and W become multiples of ``multiple``.

    Reflection padding needs the pad to be smaller than the side; tiny images fall back to replication.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def run_padded(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """``model`` applied to ``x`` (B, C, H, W) padded to a multiple, output cropped back to H x W."""
    h, w = x.shape[-2:]
    return model(pad_to_multiple(x, multiple))[..., :h, :w]
