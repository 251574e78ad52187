"""Exponential moving average of model weights (the weights used for validation and export)."""

import copy

import torch
from torch import nn


class ModelEMA(nn.Module):
    """``ema = d·ema + (1 − d)·net`` after every optimiser step; floating buffers averaged, others copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_state = self.module.state_dict()
        for key, value in model.state_dict().items():
            target = ema_state[key]
            if target.dtype.is_floating_point:
                target.mul_(self.decay).add_(value.detach(), alpha=1 - self.decay)
            else:
                target.copy_(value)
