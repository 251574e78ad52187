"""Negatives of Contrastive Prompt Regularisation: the same image restored with mismatched prompts (SPEC §3).

Prompts enter only in the decoder, so the encoder output is shared by the positive and every negative. The
batched path decodes all m negatives in one pass from the positive's encoder features; the naive path runs m
full forward passes. Both consume the same uniform draws, so they give the same images.
"""

import torch

from cplir.models.promptir import EncoderFeatures, PromptIR


def draw_negative_choices(num_negatives: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniforms (m, 3, B) choosing, per negative, block and sample, the mismatched prompt component."""
    return torch.rand(num_negatives, 3, batch, generator=generator, device=generator.device)


@torch.no_grad()
def prompt_negatives_batched(net: PromptIR, feats: EncoderFeatures, x: torch.Tensor,
                             draws: torch.Tensor) -> torch.Tensor:
    """(m, B, 3, H, W) negatives from one decoder pass over the m-times repeated encoder features."""
    m, _, b = draws.shape
    feats = EncoderFeatures(*(f.detach() for f in feats)).repeat(m)
    flat = draws.permute(1, 0, 2).reshape(3, m * b)  # column j*B + i is negative j of sample i
    out = net.decode(feats, x.repeat(m, 1, 1, 1), mismatch=flat)
    return out.view(m, b, *out.shape[1:])


@torch.no_grad()
def prompt_negatives_naive(net: PromptIR, x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """(m, B, 3, H, W) negatives from m full forward passes (the reference the batched path must equal)."""
    return torch.stack([net(x, mismatch=draws[j]) for j in range(draws.shape[0])])
