"""Negatives of Contrastive Prompt Regularisation: the same image restored with mismatched prompts (CPL Sec. III-C).

Works for any :class:`~cplir.models.PromptedBackbone` with sparse prompts. When prompts enter only after the
backbone's ``encode`` (``shares_encoder``), the encoder output is shared by the positive and every negative: the
batched path decodes the m negatives from the positive's encoder features, ``per_pass`` negatives per decoder
pass (all m in one pass by default). Otherwise, and on the naive path, each negative is a full forward pass. Both
paths consume the same uniform draws, so they give the same images.

By default the negatives are constants (no gradient), as in the published code. With ``grad=True`` they keep
their graph (``loss.cpr.negative_grad``, the paper text's reading: penalise the network when it restores well with
the wrong prompt), so the CPR term also pushes the mismatched prompt components, the decoder and, through the
shared features, the encoder; this holds m extra decoder graphs in memory.

Measured on a 2-core CPU (docs/benchmarks.md), one decoder pass over m*B images is slower per image than m
passes over B (the activations leave the caches), so there ``per_pass=1`` is the fast choice; on a GPU one
large pass keeps the device busy.
"""

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from cplir.models.prompted import PromptedBackbone


def draw_negative_choices(num_negatives: int, num_blocks: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniforms (m, n_blocks, B) choosing, per negative, block and sample, the mismatched prompt component."""
    return torch.rand(num_negatives, num_blocks, batch, generator=generator, device=generator.device)


def map_batch(feats: Any, fn) -> Any:
    """Apply ``fn`` to every tensor of a feature structure (tensor, tuple, NamedTuple, list or dict)."""
    if isinstance(feats, torch.Tensor):
        return fn(feats)
    if isinstance(feats, tuple) and hasattr(feats, "_fields"):
        return type(feats)(*(map_batch(f, fn) for f in feats))
    if isinstance(feats, (tuple, list)):
        return type(feats)(map_batch(f, fn) for f in feats)
    if isinstance(feats, dict):
        return {k: map_batch(v, fn) for k, v in feats.items()}
    return feats


def _repeat(t: torch.Tensor, k: int) -> torch.Tensor:
    return t.repeat(k, *([1] * (t.dim() - 1))) if k > 1 else t


@contextlib.contextmanager
def running_statistics_kept(net: nn.Module) -> Iterator[None]:
    """Batch normalisation in training mode still normalises each negative pass with its own batch statistics, as
    the positive pass is normalised, but leaves the running mean and variance (what evaluation uses) alone: they
    would otherwise see m mismatched-prompt passes for every matched one (FSNet's dynamic filters,
    docs/backbones.md)."""
    layers = [m for m in net.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False  # training mode without tracking: batch statistics, no update
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def prompt_negatives_batched(net: PromptedBackbone, feats: Any, x: torch.Tensor, draws: torch.Tensor,
                             per_pass: int = 0, grad: bool = False) -> torch.Tensor:
    """(m, B, C, H', W') negatives decoded from the shared encoder features ``feats`` of ``x`` (B, C, H, W),
    ``per_pass`` negatives per decoder pass (0: all m in one pass); with gradient when ``grad``."""
    if not net.shares_encoder:
        return prompt_negatives_naive(net, x, draws, grad)
    m, _, b = draws.shape
    per_pass = per_pass or m
    if not grad:
        feats = map_batch(feats, torch.Tensor.detach)
    outs = []
    with torch.set_grad_enabled(grad), running_statistics_kept(net):
        for start in range(0, m, per_pass):
            part = draws[start:start + per_pass]
            k = part.shape[0]
            flat = part.permute(1, 0, 2).reshape(part.shape[1], k * b)  # column j*B + i is negative j of sample i
            ctx = net.context(k * b, flat)
            out = net.decode(map_batch(feats, lambda t: _repeat(t, k)), _repeat(x, k), ctx)
            outs.append(out.view(k, b, *out.shape[1:]))
    return torch.cat(outs)


def prompt_negatives_naive(net: PromptedBackbone, x: torch.Tensor, draws: torch.Tensor,
                           grad: bool = False) -> torch.Tensor:
    """(m, B, C, H', W') negatives from m full forward passes (the reference the batched path must equal); with
    gradient when ``grad``."""
    with torch.set_grad_enabled(grad), running_statistics_kept(net):
        return torch.stack([net(x, mismatch=draws[j]) for j in range(draws.shape[0])])
