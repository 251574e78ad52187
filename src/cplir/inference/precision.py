"""Where and at what precision inference runs: a device, and fp32 or bf16 / fp16 autocast (on the CPU too).

Autocast runs convolutions and matrix products in the reduced type and keeps reductions (softmax, norms) in
float32; the weights stay float32, so one model serves every precision. bf16 has float32's range, so it cannot
overflow; fp16 is the usual choice on GPUs without bf16.
"""

import contextlib
from typing import ContextManager

import torch

from cplir.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device) -> torch.device:
    """``"auto"`` (CUDA when available, else the CPU), a device name or a :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but this PyTorch sees no CUDA GPU; use --device cpu")
    return device


def precision_context(precision: str, device: torch.device) -> ContextManager:
    """A context in which the model runs at ``precision`` (``fp32``, ``bf16`` or ``fp16``) on ``device``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])
