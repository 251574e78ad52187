"""Negative ("latency") models of model contrastive learning, MCLIR (docs/design.md §4).

K frozen copies of the network being trained, each a lagged snapshot of it: at the start
``neg_i = s·random + (1−s)·net`` and every ``intervals[i]`` iterations ``neg_i = d_i·neg_i + (1−d_i)·net``
(:meth:`NegativeModelBank.step`; the adaptive variant of :mod:`cplir.engine.negative_refresh` calls
:meth:`NegativeModelBank.refresh` instead). Their outputs are the negatives of the SPN loss
(:class:`cplir.losses.model_contrastive.ModelContrastiveLoss`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from cplir.errors import CheckpointError, ConfigError


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel / DataParallel (``.module``) or torch.compile (``._orig_mod``)."""
    for attribute in ("module", "_orig_mod"):
        inner = getattr(model, attribute, None)
        if isinstance(inner, nn.Module):
            return unwrap_model(inner)
    return model


def _reinitialise(model: nn.Module) -> None:
    """Give ``model`` a fresh random initialisation in place, drawn from the global RNG.

    Every submodule with ``reset_parameters`` (convolutions, linear layers, torch norms) re-runs it. Parameters
    owned by modules without one: prompt parameters (name containing ``prompt``) are redrawn uniform in [0, 1),
    PromptIR's initialisation; the others (custom LayerNorm weights/biases, attention temperatures) are
    constant-initialised (ones/zeros) in the backbones of this field and are kept as copied, since a random
    draw would break the normalisation they implement.
    """
    covered = set()
    for module in model.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            covered.update(id(p) for p in module.parameters(recurse=False))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if id(parameter) not in covered and "prompt" in name:
                parameter.copy_(torch.rand_like(parameter))


# The published MCLIR configuration: K = 4 negative models refreshed every 100/200/500/1000 iterations.
DEFAULT_INTERVALS = (100, 200, 500, 1000)
DEFAULT_DECAY = 0.1
DEFAULT_START = 0.1


class NegativeModelBank(nn.Module):
    """K lagged, frozen copies of a restoration network.

    Args:
        model: the network being trained (plain, DDP-wrapped or compiled); its architecture is copied.
        intervals: refresh period of each negative model in iterations (published: 100, 200, 500, 1000; K = 4).
        decays: d_i of the refresh, one value for all or one per interval (published: 0.1).
        start: s of the initial blend with the random initialisation (published: 0.1).
        seed: seed of the random initialisation (None: the global RNG); the global RNG state is left untouched
            when a seed is given.
    """

    def __init__(
        self,
        model: nn.Module,
        intervals: Sequence[int] = DEFAULT_INTERVALS,
        decays: float | Sequence[float] = DEFAULT_DECAY,
        start: float = DEFAULT_START,
        seed: int | None = None,
    ):
        super().__init__()
        self.intervals = tuple(int(i) for i in intervals)
        decays = (decays,) if isinstance(decays, (int, float)) else tuple(decays)
        if len(decays) == 1:
            decays = decays * len(self.intervals)
        self.decays = tuple(float(d) for d in decays)
        self.start = float(start)
        if not self.intervals or any(i < 1 for i in self.intervals):
            raise ConfigError(f"negative model intervals {self.intervals} must be a non-empty list of integers >= 1")
        if len(self.decays) != len(self.intervals):
            raise ConfigError(
                f"negative model decays {self.decays} must be one value or one per interval "
                f"({len(self.intervals)} intervals)"
            )
        if not all(0.0 <= v <= 1.0 for v in self.decays + (self.start,)):
            raise ConfigError(f"negative model decays {self.decays} and start {self.start} must lie in [0, 1]")

        net = unwrap_model(model)
        device = next(net.parameters(), torch.empty(0)).device
        # Re-initialise on the CPU: a seed gives the same bank on any device and only the CPU generator is used
        # (and restored), so the caller's CPU and CUDA random streams are not disturbed.
        copies = []
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.random.default_generator.manual_seed(seed)
            for _ in self.intervals:
                negative = copy.deepcopy(net).cpu()
                negative.zero_grad(set_to_none=True)
                _reinitialise(negative)
                copies.append(negative.to(device))
        self.models = nn.ModuleList(copies)
        self.requires_grad_(False)
        self.train(False)
        with torch.no_grad():
            for negative in self.models:
                self._blend(negative, net, self.start)

    def __len__(self) -> int:
        return len(self.models)

    @staticmethod
    def _blend(negative: nn.Module, net: nn.Module, weight: float) -> None:
        """``negative = weight·negative + (1−weight)·net`` for parameters and floating-point buffers; integer
        buffers (e.g. BatchNorm's step counter) are copied."""
        source = dict(net.named_parameters())
        source.update(net.named_buffers())
        targets = dict(negative.named_parameters())
        targets.update(negative.named_buffers())
        if source.keys() != targets.keys():
            raise ConfigError("the model given to the negative model bank does not have the bank's architecture")
        for name, tensor in targets.items():
            if tensor.is_floating_point():
                tensor.mul_(weight).add_(source[name].detach(), alpha=1.0 - weight)
            else:
                tensor.copy_(source[name])

    def train(self, mode: bool = True) -> NegativeModelBank:
        # Negative models are always in eval mode (frozen snapshots), whatever the trainer does.
        return super().train(False)

    @torch.no_grad()
    def refresh(self, index: int, model: nn.Module, decay: float) -> None:
        """``neg_index = decay·neg_index + (1−decay)·model`` (``model`` plain, DDP-wrapped or compiled)."""
        self._blend(self.models[index], unwrap_model(model), decay)

    def step(self, iteration: int, model: nn.Module) -> list[int]:
        """Refresh every negative model i with ``iteration % intervals[i] == 0`` (iteration >= 1) from ``model``
        with its decay d_i; returns the indices refreshed."""
        if iteration < 1:
            return []
        refreshed = [i for i, interval in enumerate(self.intervals) if iteration % interval == 0]
        for i in refreshed:
            self.refresh(i, model, self.decays[i])
        return refreshed

    @torch.no_grad()
    def forward_all(self, x: Tensor) -> list:
        """Outputs of the K negative models for input ``x`` (B, C, H, W), without gradient."""
        return [negative(x) for negative in self.models]

    def load_state_dict(self, state_dict: Mapping, strict: bool = True, assign: bool = False):
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as error:
            raise CheckpointError(
                f"the checkpoint's negative model bank does not fit this one ({len(self)} models of this "
                f"architecture): {error}. Resume with the same model and neg_iter settings, or start the bank afresh."
            ) from error
