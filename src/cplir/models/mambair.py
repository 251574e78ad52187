"""MambaIR, the U-shaped restoration network (Guo et al., "MambaIR: A Simple Baseline for Image Restoration with
State-Space Model", ECCV 2024; ``MambaIRUNet`` of csguoh/MambaIR, ``realDenoising/.../mambairunet_arch.py``).

Restormer's four-level U-Net with every transformer block replaced by a residual state-space block (VSSB): a 2D
selective scan along four directions (rows and columns, forwards and backwards) followed by a channel-attention
convolution block. The scan runs in plain PyTorch (:mod:`cplir.models.selective_scan`). Without prompts (the
default) module names, state-dict keys and numerics follow the published code, so its checkpoints load unchanged;
``prompt="dense"|"sparse"`` adds prompt blocks before the decoder's three upsamplings
(:mod:`cplir.models.decoder_prompts`).
"""

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cplir.models.drop_path import DropPath
from cplir.models.promptir import PUBLISHED_PROMPT_SIZES, default_prompt_dims
from cplir.models.registry import register_model
from cplir.models.restormer_unet import RestormerUNet
from cplir.models.selective_scan import selective_scan

NUM_DIRECTIONS = 4  # row-major, column-major, and both reversed


class SS2D(nn.Module):
    """2D selective scan, channels last: (B, H, W, C) -> (B, H, W, C).

    in_proj splits into x and a gate z; x passes a 3x3 depthwise conv + SiLU, is scanned in four directions with
    input-dependent (delta, B, C) from ``x_proj_weight`` / ``dt_projs_*``; the four outputs are summed, normalised,
    gated by SiLU(z) and projected out. Initialisation as published (Mamba's dt and S4D-real A).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 3, expand: float = 2.0,
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4):
        super().__init__()
        self.d_state = d_state
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16)
        k, d, r = NUM_DIRECTIONS, self.d_inner, self.dt_rank
        self.in_proj = nn.Linear(d_model, d * 2, bias=False)
        self.conv2d = nn.Conv2d(d, d, kernel_size=d_conv, padding=(d_conv - 1) // 2, groups=d)
        bound = d ** -0.5  # nn.Linear's default init, one projection per direction
        self.x_proj_weight = nn.Parameter(torch.empty(k, r + 2 * d_state, d).uniform_(-bound, bound))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, d, r).uniform_(-r ** -0.5, r ** -0.5))
        # softplus(dt_projs_bias) log-uniform in [dt_min, dt_max]: the bias is softplus's inverse of that draw.
        dt = torch.exp(torch.rand(k, d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_logs = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(k * d, 1))
        self.Ds = nn.Parameter(torch.ones(k * d))
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, d_model, bias=False)

    def scan(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d, H, W) -> sum of the four directional scans, (B, H*W, d) in row-major order, float32."""
        b, d, h, w = x.shape
        length = h * w
        rows = x.reshape(b, d, length)
        cols = x.transpose(2, 3).reshape(b, d, length)
        xs = torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)  # (B, 4, d, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, bs, cs = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        ys = selective_scan(xs.reshape(b, -1, length), dts.reshape(b, -1, length),
                            -torch.exp(self.A_logs.float()), bs, cs, self.Ds, self.dt_projs_bias.reshape(-1))
        ys = ys.view(b, NUM_DIRECTIONS, d, length)
        y_rows = ys[:, 0] + ys[:, 2].flip(-1)
        y_cols = ys[:, 1] + ys[:, 3].flip(-1)  # column-major order: back to row-major
        y_cols = y_cols.view(b, d, w, h).transpose(2, 3).reshape(b, d, length)
        return (y_rows + y_cols).transpose(1, 2)

    def forward(self, x):
        b, h, w, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))
        y = self.out_norm(self.scan(x).view(b, h, w, -1))
        return self.out_proj(y * F.silu(z))


class ChannelAttention(nn.Module):
    """RCAN channel attention: x * sigmoid(MLP(global mean)), (B, C, H, W)."""

    def __init__(self, num_feat: int, squeeze_factor: int = 30):
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, num_feat // squeeze_factor, 1),
                                       nn.ReLU(), nn.Conv2d(num_feat // squeeze_factor, num_feat, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel-attention block: 3x3 conv to C/3, GELU, 3x3 conv back, channel attention. (B, C, H, W)."""

    def __init__(self, num_feat: int, compress_ratio: int = 3, squeeze_factor: int = 30):
        super().__init__()
        if num_feat < squeeze_factor:
            raise ValueError(f"MambaIR block width {num_feat} is below the channel attention's squeeze factor "
                             f"{squeeze_factor}: use dim >= {squeeze_factor}")
        self.cab = nn.Sequential(nn.Conv2d(num_feat, num_feat // compress_ratio, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(num_feat // compress_ratio, num_feat, 3, padding=1),
                                 ChannelAttention(num_feat, squeeze_factor))

    def forward(self, x):
        return self.cab(x)


class VSSBlock(nn.Module):
    """Residual state-space block, (B, C, H, W) -> (B, C, H, W):
    ``x = s1 * x + SS2D(LN(x))``, then ``x = s2 * x + CAB(LN(x))`` with learned per-channel skip scales."""

    def __init__(self, hidden_dim: int, d_state: int = 16, expand: float = 2.0, drop_path: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim)
        self.self_attention = SS2D(hidden_dim, d_state=d_state, expand=expand)
        self.skip_scale = nn.Parameter(torch.ones(hidden_dim))
        self.conv_blk = CAB(hidden_dim)
        self.ln_2 = nn.LayerNorm(hidden_dim)
        self.skip_scale2 = nn.Parameter(torch.ones(hidden_dim))
        self.drop_path = DropPath(drop_path)  # no parameters: the published keys hold for any rate

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)  # channels last, as the published block
        x = x * self.skip_scale + self.drop_path(self.self_attention(self.ln_1(x)))
        y = self.conv_blk(self.ln_2(x).permute(0, 3, 1, 2))
        return (x * self.skip_scale2).permute(0, 3, 1, 2) + y


class MambaIRUNet(RestormerUNet):
    """MambaIR U-Net, (B, 3, H, W) -> (B, 3, H, W); H and W multiples of 8.

    Args (the published constructor's): ``inp_channels``, ``out_channels``, ``dim`` (at least 30, the channel
    attention's squeeze factor), ``num_blocks``, ``mlp_ratio`` (the scan's expansion), ``num_refinement_blocks``,
    ``drop_path_rate``, ``bias``, ``dual_pixel_task``; plus ``d_state`` (16 at every level in the published code,
    which hard-codes it). Default ``mlp_ratio=1.5``: the published real-denoising configuration
    (``train_MambaIR_RealDN.yml``, the released weights); the published constructor's own default is 2.0.
    Prompt arguments (ignored when ``prompt`` is None, the published network):
        prompt: ``"dense"`` or ``"sparse"``: ``prompt3`` on the latent (8·dim, H/8), ``prompt2`` after decoder
            level 3 (4·dim, H/4), ``prompt1`` after decoder level 2 (2·dim, H/2), each fused by one VSS block.
        prompt_dims: widths of prompt1..3; default PromptIR's (64, 128, 320) scaled with ``dim`` (multiples of 8).
        prompt_sizes, num_prompts, top_k, renormalize: as :class:`~cplir.models.PromptIR`.
    """

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), mlp_ratio: float = 1.5, num_refinement_blocks: int = 4,
                 drop_path_rate: float = 0.0, bias: bool = False, dual_pixel_task: bool = False, d_state: int = 16,
                 prompt: Optional[str] = None, prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES, num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        def block(width):
            return VSSBlock(width, d_state, mlp_ratio, drop_path_rate)

        def stage(n, width, level=0):
            return nn.Sequential(*[block(width) for _ in range(n)])

        super().__init__(inp_channels, out_channels, dim, num_blocks, stage,
                         refinement=stage(num_refinement_blocks, 2 * dim), bias=bias,
                         dual_pixel_task=dual_pixel_task)
        dims = prompt_dims if prompt_dims is not None else default_prompt_dims(dim, 8)
        self.add_prompts(prompt, self.level_widths(), dims, prompt_sizes, block, num_prompts, top_k,
                                 renormalize, bias)


@register_model("mambair")
def mambair(**kwargs) -> MambaIRUNet:
    """MambaIR U-Net (ECCV 2024), published real-denoising configuration (dim 48, blocks [4, 6, 6, 8],
    4 refinement blocks, mlp_ratio 1.5); ``prompt`` adds decoder prompts."""
    return MambaIRUNet(**kwargs)
