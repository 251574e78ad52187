"""Pixel reconstruction loss: the ``||I+ − y||₁`` term of every objective (CPL Eq. 8, MCLIR's L_rec)."""

import torch.nn.functional as F
from torch import Tensor


def l1_loss(restored: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between ``restored`` and ``target``, both (B, C, H, W)."""
    return F.l1_loss(restored, target)
