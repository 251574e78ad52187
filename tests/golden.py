"""Golden references of published architectures: deterministic weights and the stored reference outputs.

A reference file ``tests/golden/<name>.pt`` holds what the *published* implementation produced, generated once
outside this repository: ``{"kwargs": constructor keyword arguments, "shapes": {state-dict key: shape},
"input": (1, C, H, W), "output": published model's output for that input}``. The weights of both models come from
:func:`fill_deterministic`, a pure function of each parameter's name and shape, so the same procedure applied to
the published model and to ours gives the same weights without shipping them. Each reference file's docstring in
``tests/golden/README.md`` says which commit of which repository produced it and how.
"""

import zlib
from pathlib import Path

import torch
from torch import nn

GOLDEN_DIR = Path(__file__).parent / "golden"


@torch.no_grad()
def fill_deterministic(model: nn.Module) -> nn.Module:
    """Overwrite every parameter (not buffers) with values seeded by the CRC32 of its name.

    Matrices and kernels get U(-1, 1) / sqrt(fan_in); vectors named ``*weight`` (norm scales) 1 + 0.1·U(-1, 1);
    every other vector or scalar parameter 0.1·U(-1, 1).
    """
    for name, param in model.named_parameters():
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        u = torch.rand(param.shape, generator=gen, dtype=torch.float64) * 2 - 1
        if param.dim() >= 2:
            value = u / (param[0].numel() ** 0.5)
        elif name.endswith("weight"):
            value = 1 + 0.1 * u
        else:
            value = 0.1 * u
        param.copy_(value.to(param.dtype))
    return model


def load_golden(name: str) -> dict:
    return torch.load(GOLDEN_DIR / f"{name}.pt", map_location="cpu", weights_only=True)


def state_shapes(model: nn.Module) -> dict:
    """``{key: shape tuple}`` of a model's state dict (parameters and persistent buffers)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
