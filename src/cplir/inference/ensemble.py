"""x8 self-ensemble: the mean of a model's outputs over the eight flips and 90-degree rotations of its input.

Each output is mapped back by the inverse transform before averaging (the "x8" geometric self-ensemble of
EDSR, Lim et al. 2017, Sec. 4.3, used by BasicSR and KAIR). It costs eight forward passes and suits any model
that is meant to be equivariant to those transforms, restoration and super-resolution alike (a rotation by 90
degrees swaps H and W, so the model must accept both orientations).
"""

from typing import Callable

import torch

DIHEDRAL = tuple(range(8))  # transform k: rotate by k % 4 quarter turns, then flip left-right when k >= 4


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` of (…, H, W): ``k % 4`` counter-clockwise quarter turns, then a left-right flip if k >= 4."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def inverse_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`dihedral` ``k``: flip back first, then turn back."""
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


def run_ensemble(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over the eight :func:`dihedral` transforms t of ``t⁻¹(model(t(x)))`` for ``x`` (B, C, H, W).

    ``model`` is any callable, e.g. a tiled or padded forward pass; the passes run one after the other, so memory
    stays that of one pass.
    """
    total = None
    for k in DIHEDRAL:
        y = inverse_dihedral(model(dihedral(x, k)), k).float()
        total = y if total is None else total + y
    return total / len(DIHEDRAL)
