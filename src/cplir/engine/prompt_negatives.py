"""Negatives of Contrastive Prompt Regularisation: the same image restored with mismatched prompts (SPEC §3).

Prompts enter only in the decoder, so the encoder output is shared by the positive and every negative. The
batched path decodes the m negatives from the positive's encoder features, ``per_pass`` negatives per decoder
pass (all m in one pass by default); the naive path runs m full forward passes. Both consume the same uniform
draws, so they give the same images.

Measured on a 2-core CPU (docs/benchmarks.md), one decoder pass over m*B images is slower per image than m
passes over B (the activations leave the caches), so there ``per_pass=1`` is the fast choice; on a GPU one
large pass keeps the device busy.
"""

import torch

from cplir.models.promptir import EncoderFeatures, PromptIR


def draw_negative_choices(num_negatives: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniforms (m, 3, B) choosing, per negative, block and sample, the mismatched prompt component."""
    return torch.rand(num_negatives, 3, batch, generator=generator, device=generator.device)


@torch.no_grad()
def prompt_negatives_batched(net: PromptIR, feats: EncoderFeatures, x: torch.Tensor, draws: torch.Tensor,
                             per_pass: int = 0) -> torch.Tensor:
    """(m, B, 3, H, W) negatives decoded from the shared encoder features, ``per_pass`` negatives per decoder
    pass (0: all m in one pass)."""
    m, _, b = draws.shape
    per_pass = per_pass or m
    feats = EncoderFeatures(*(f.detach() for f in feats))
    outs = []
    for start in range(0, m, per_pass):
        part = draws[start:start + per_pass]
        k = part.shape[0]
        flat = part.permute(1, 0, 2).reshape(3, k * b)  # column j*B + i is negative j of sample i
        out = net.decode(feats.repeat(k) if k > 1 else feats, x.repeat(k, 1, 1, 1), mismatch=flat)
        outs.append(out.view(k, b, *out.shape[1:]))
    return torch.cat(outs)


@torch.no_grad()
def prompt_negatives_naive(net: PromptIR, x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """(m, B, 3, H, W) negatives from m full forward passes (the reference the batched path must equal)."""
    return torch.stack([net(x, mismatch=draws[j]) for j in range(draws.shape[0])])
