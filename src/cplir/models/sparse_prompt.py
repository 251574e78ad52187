"""Sparse Prompt Module (SPM) of CPL (Wu et al., Contrastive Prompt Learning, Sec. III-B).

Same parameters as PromptIR's prompt block (so PromptIR weights load), but only the top-k prompt components are
kept and computed. The mismatched-prompt mode produces the negatives of Contrastive Prompt Regularisation.
"""

from typing import Optional

import torch

from cplir.models.prompt_block import PromptGenBlock
from cplir.models.prompted import PromptOutput


class SparsePromptModule(PromptGenBlock):
    """Top-k routing over P prompt components, (B, lin_dim, H, W) -> (B, prompt_dim, H, W).

    Args:
        top_k: number of components kept per sample (k=1 in the paper's default).
        renormalize: divide the kept softmax values by their sum (only meaningful for k >= 2: with k=1 the
            weight would be the constant 1 and the router would get no gradient). Off by default, as published.

    ``forward(x, mismatch=u)`` with ``u`` (B,) uniforms in [0, 1) instead selects, per sample, the component at
    position ``floor(u * (P - k))`` among the components *not* in the top-k (ascending index order), weighted by
    that component's own softmax probability (CPL Sec. III-C; docs/design.md). Drawing ``u`` outside the module lets
    the naive and the batched negative paths share the exact same random choices.
    """

    def __init__(self, prompt_dim: int = 128, prompt_len: int = 5, prompt_size: int = 96, lin_dim: int = 192,
                 top_k: int = 1, renormalize: bool = False):
        super().__init__(prompt_dim, prompt_len, prompt_size, lin_dim)
        if not 1 <= top_k <= prompt_len:
            raise ValueError(f"top_k must be between 1 and the number of prompts ({prompt_len}), got {top_k}")
        if renormalize and top_k == 1:
            raise ValueError("renormalize=True with top_k=1 makes every kept weight 1 and stops the router's "
                             "gradient; use top_k >= 2 or keep the softmax values (renormalize=False)")
        self.top_k = top_k
        self.renormalize = renormalize

    def mismatched_choice(self, probs: torch.Tensor, top_idx: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One component index per sample (B, 1), drawn by ``u`` (B,) among those outside ``top_idx`` (B, k)."""
        b, p = probs.shape
        n_rest = p - self.top_k
        if n_rest < 1:
            raise ValueError(f"mismatched prompts need more prompts than top_k (P={p}, k={self.top_k})")
        if u.shape != (b,):
            raise ValueError(f"mismatch draws must have shape ({b},), got {tuple(u.shape)}")
        outside = torch.ones_like(probs, dtype=torch.bool).scatter(1, top_idx, False)
        rest = torch.arange(p, device=probs.device).expand(b, p)[outside].view(b, n_rest)
        pick = (u.to(probs.device) * n_rest).long().clamp_(0, n_rest - 1)
        return rest.gather(1, pick[:, None])

    def forward(self, x: torch.Tensor, mismatch: Optional[torch.Tensor] = None,
                probs: Optional[torch.Tensor] = None) -> PromptOutput:
        probs = self.route(x) if probs is None else probs
        top_val, top_idx = probs.topk(self.top_k, dim=1)
        if mismatch is None:
            idx, weights = top_idx, top_val
            if self.renormalize:
                weights = weights / weights.sum(dim=1, keepdim=True)
        else:
            idx = self.mismatched_choice(probs, top_idx, mismatch)
            weights = probs.gather(1, idx)
        # Gather only the selected components: cost independent of P, zero gradient for the others.
        selected = self.prompt_param[0][idx]  # (B, k, C_p, S, S)
        mixed = (weights.to(selected.dtype)[:, :, None, None, None] * selected).sum(dim=1)
        return PromptOutput(self.render(mixed, x.shape[-2:]), probs, idx)

