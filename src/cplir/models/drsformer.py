"""DRSformer (Chen et al., "Learning A Sparse Transformer Network for Effective Image Deraining", CVPR 2023).

A Restormer-shaped U-Net whose transformer blocks use top-k sparse attention (TKSA) and a mixed-scale
feed-forward network (MSFN), with a mixture-of-experts feature compensator (MEFC) before the encoder and as the
refinement stage. Without prompts (the default) module names, state-dict keys and numerics follow the published
``DRSformer_arch.py`` (cschenxiang/DRSformer), so its checkpoints load unchanged. ``prompt="dense"|"sparse"`` adds
prompt blocks before the decoder's three upsamplings (:mod:`cplir.models.decoder_prompts`).
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError
from cplir.models.promptir import PUBLISHED_PROMPT_SIZES, default_prompt_dims
from cplir.models.registry import register_model
from cplir.models.restormer_blocks import LayerNorm
from cplir.models.restormer_unet import RestormerUNet

# TKSA keeps the top C/2, 2C/3, 3C/4 and 4C/5 of each attention row (C channels per head).
TOP_K_FRACTIONS = ((1, 2), (2, 3), (3, 4), (4, 5))


class TopKSparseAttention(nn.Module):
    """TKSA: channel attention per head, softmax over only the k largest scores of each row, for four k; the four
    results are mixed by learned scalars ``attn1..attn4``. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False):
        super().__init__()
        if dim % num_heads or dim // num_heads < 2:
            raise ValueError(f"attention width {dim} must split into {num_heads} heads of at least 2 channels")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.attn1 = nn.Parameter(torch.tensor([0.2]))
        self.attn2 = nn.Parameter(torch.tensor([0.2]))
        self.attn3 = nn.Parameter(torch.tensor([0.2]))
        self.attn4 = nn.Parameter(torch.tensor([0.2]))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = q @ k.transpose(-2, -1) * self.temperature
        per_head = attn.shape[-1]
        out = 0
        for (num, den), weight in zip(TOP_K_FRACTIONS, (self.attn1, self.attn2, self.attn3, self.attn4)):
            keep = attn.topk(num * per_head // den, dim=-1).indices
            sparse = torch.full_like(attn, float("-inf")).scatter(-1, keep, attn.gather(-1, keep))
            out = out + (sparse.softmax(dim=-1) @ v) * weight
        return self.project_out(out.reshape(b, c, h, w))


class MixedScaleFeedForward(nn.Module):
    """MSFN: 3x3 and 5x5 depthwise branches whose halves are exchanged, then a second mixed-scale layer.
    (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv3x3 = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.dwconv5x5 = nn.Conv2d(hidden * 2, hidden * 2, 5, padding=2, groups=hidden * 2, bias=bias)
        self.dwconv3x3_1 = nn.Conv2d(hidden * 2, hidden, 3, padding=1, groups=hidden, bias=bias)
        self.dwconv5x5_1 = nn.Conv2d(hidden * 2, hidden, 5, padding=2, groups=hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden * 2, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        x = self.project_in(x)
        a3, b3 = F.relu(self.dwconv3x3(x)).chunk(2, dim=1)
        a5, b5 = F.relu(self.dwconv5x5(x)).chunk(2, dim=1)
        a = F.relu(self.dwconv3x3_1(torch.cat([a3, a5], dim=1)))
        b = F.relu(self.dwconv5x5_1(torch.cat([b3, b5], dim=1)))
        return self.project_out(torch.cat([a, b], dim=1))


class SparseTransformerBlock(nn.Module):
    """STB: ``x + tksa(norm1(x))`` then ``x + msfn(norm2(x))``, (B, C, H, W)."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float = 2.66, bias: bool = False,
                 layer_norm_type: str = "WithBias"):
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = TopKSparseAttention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = MixedScaleFeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


# --- MEFC: mixture-of-experts feature compensator ------------------------------------------------------------------
def separable_conv(channels: int, kernel: int) -> nn.Sequential:
    """Two depthwise-then-pointwise convolutions with a ReLU between (the published ``SepConv``, key ``op``)."""
    pad = kernel // 2
    return nn.Sequential(nn.Conv2d(channels, channels, kernel, padding=pad, groups=channels, bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.ReLU(),
                         nn.Conv2d(channels, channels, kernel, padding=pad, groups=channels, bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False))


def dilated_conv(channels: int, kernel: int) -> nn.Sequential:
    """Depthwise convolution with dilation 2, then pointwise (the published ``DilConv``)."""
    return nn.Sequential(nn.Conv2d(channels, channels, kernel, padding=kernel - 1, dilation=2, groups=channels,
                                   bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False))


class _Op(nn.Module):
    # Wraps an expert so its parameters sit under `op.*`, the published key layout.
    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, x):
        return self.op(x)


def experts(channels: int) -> nn.ModuleList:
    """The eight experts, in the published order: separable 1/3/5/7, dilated 3/5/7, 3x3 average pooling."""
    ops = [_Op(separable_conv(channels, k)) for k in (1, 3, 5, 7)]
    ops += [_Op(dilated_conv(channels, k)) for k in (3, 5, 7)]
    ops.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
    return nn.ModuleList(ops)


class ExpertLayer(nn.Module):
    """Weighted sum-by-concatenation of the experts: each expert's output scaled by its per-sample weight,
    concatenated, then 1x1 conv + ReLU. (B, C, H, W), weights (B, 8) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self._ops = experts(channels)
        self._out = nn.Sequential(nn.Conv2d(channels * len(self._ops), channels, 1, bias=False), nn.ReLU())

    def forward(self, x, weights):
        return self._out(torch.cat([op(x) * w[:, None, None, None] for op, w in zip(self._ops, weights.t())], 1))


class ExpertGroup(nn.Module):
    """``steps`` residual expert layers after a 1x1 conv + ReLU (the published ``GroupOLs``)."""

    def __init__(self, steps: int, channels: int):
        super().__init__()
        self.preprocess = _Op(nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.ReLU()))
        self._ops = nn.ModuleList(ExpertLayer(channels) for _ in range(steps))

    def forward(self, x, weights):
        x = self.preprocess(x)
        for i, layer in enumerate(self._ops):
            x = F.relu(layer(x, weights[:, i]) + x)
        return x


class ExpertRouter(nn.Module):
    """Global average pool -> MLP -> expert logits (B, steps, 8) (the published ``OALayer``)."""

    def __init__(self, channels: int, steps: int, num_ops: int):
        super().__init__()
        self.steps, self.num_ops = steps, num_ops
        self.ca_fc = nn.Sequential(nn.Linear(channels, steps * num_ops * 2), nn.ReLU(),
                                   nn.Linear(steps * num_ops * 2, steps * num_ops))

    def forward(self, x):
        return self.ca_fc(x.mean(dim=(-2, -1))).view(-1, self.steps, self.num_ops)


class FeatureCompensator(nn.Module):
    """MEFC: a router picks, per sample and step, a softmax mixture of eight convolutional experts.
    (B, C, H, W) -> (B, C, H, W). Keys ``layers.0`` (router) and ``layers.1`` (experts) as published."""

    def __init__(self, channels: int, steps: int = 4):
        super().__init__()
        self.layers = nn.ModuleList([ExpertRouter(channels, steps, 8), ExpertGroup(steps, channels)])

    def forward(self, x):
        router, group = self.layers
        return group(x, router(x).softmax(dim=-1))


# --- the network ---------------------------------------------------------------------------------------------------
class DRSformer(RestormerUNet):
    """DRSformer, (B, 3, H, W) -> (B, 3, H, W); H and W multiples of 8.

    Args (the published constructor's): ``inp_channels``, ``out_channels``, ``dim``, ``num_blocks``, ``heads``,
    ``ffn_expansion_factor``, ``bias``, ``LayerNorm_type``.
    ``mefc``: build the feature compensators (``encoder_level0``, ``refinement``). The published default has
    them; its ``DRSformer_arch_200L+SPA.py`` variant (Rain200L, SPA-Data) is ``mefc=False``.
    Prompt arguments (ignored when ``prompt`` is None, the published network):
        prompt: ``"dense"`` (PromptIR's prompt block) or ``"sparse"`` (CPL's Sparse Prompt Module): ``prompt3``
            on the latent (8·dim, H/8), ``prompt2`` after decoder level 3 (4·dim, H/4), ``prompt1`` after decoder
            level 2 (2·dim, H/2), each fused by one sparse transformer block with ``heads[2]`` heads.
        prompt_dims: widths of prompt1..3; default PromptIR's (64, 128, 320) scaled with ``dim``.
        prompt_sizes, num_prompts, top_k, renormalize: as :class:`~cplir.models.PromptIR`.
    """

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False, LayerNorm_type: str = "WithBias",
                 mefc: bool = True, prompt: Optional[str] = None, prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES, num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        if len(heads) != 4:
            raise ConfigError(f"DRSformer's heads need one entry per level (4), got {list(heads)}")

        def block(width, h):
            return SparseTransformerBlock(width, h, ffn_expansion_factor, bias, LayerNorm_type)

        def stage(n, width, level):
            return nn.Sequential(*[block(width, heads[level]) for _ in range(n)])

        super().__init__(inp_channels, out_channels, dim, num_blocks, stage,
                         refinement=FeatureCompensator(2 * dim) if mefc else nn.Identity(), bias=bias,
                         compensator=FeatureCompensator(dim) if mefc else None)
        dims = prompt_dims if prompt_dims is not None else default_prompt_dims(dim, heads[2])
        self.add_prompts(prompt, self.level_widths(), dims, prompt_sizes,
                                 lambda width: block(width, heads[2]), num_prompts, top_k, renormalize, bias)


@register_model("drsformer")
def drsformer(**kwargs) -> DRSformer:
    """DRSformer (CVPR 2023), published default (dim 48, blocks [4, 6, 6, 8], with MEFC); ``prompt`` adds
    decoder prompts."""
    return DRSformer(**kwargs)
