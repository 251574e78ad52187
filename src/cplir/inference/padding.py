"""Pad-to-multiple wrapper: lets a model that needs H, W multiples of its ``size_multiple`` take any size."""

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

PAD_MODES = ("reflect", "replicate", "constant")  # torch's F.pad modes; "constant" pads with zeros


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


def model_multiple(model, multiple: Optional[int] = None) -> int:
    """The size multiple to pad to: the model's ``size_multiple`` (1 when it has none), combined (least common
    multiple) with an extra ``multiple`` a metric protocol may ask for."""
    own = int(getattr(model, "size_multiple", 1) or 1)
    return own if not multiple else own * multiple // math.gcd(own, multiple)


def run_padded(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: Optional[int] = None,
               mode: str = "reflect") -> torch.Tensor:
    """``model`` applied to ``x`` (B, C, H, W) padded to the model's size multiple (see :func:`model_multiple`),
    output cropped back to (scale·H) x (scale·W), ``scale`` being the model's (1 for restoration)."""
    h, w = x.shape[-2:]
    scale = int(getattr(model, "scale", 1) or 1)
    return model(pad_to_multiple(x, model_multiple(model, multiple), mode))[..., :h * scale, :w * scale]
