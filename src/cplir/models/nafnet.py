"""NAFNet backbone (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), exact to the published
``NAFNet_arch.py``.

Module names, state-dict keys, shapes and numerics equal the published ``NAFNet`` class, so its released
checkpoints load unchanged. Two differences that do not change a number: the published LayerNorm2d is a custom
autograd function (which breaks ONNX export); here it is written with ordinary tensor operations, whose autograd
gives the same gradients. The published constructor defaults (width 16, no encoder levels) describe no network
that was trained; the defaults here are the published GoPro width-32 configuration.

Like the published forward pass, :class:`NAFNet` zero-pads its input at the bottom and right to a multiple of
``padder_size`` = 2^levels and crops the output back, so it takes images of any size and a published
checkpoint gives the published numbers on them; hence ``size_multiple = 1``.

With ``prompt="dense"|"sparse"`` a prompt block enters before each upsampling of the decoder, the PromptIR pattern
(:mod:`cplir.models.decoder_prompts`), fused by one NAFBlock; every published layer keeps its shape.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError
from cplir.models.decoder_prompts import (DecoderPromptedBackbone, PromptFusion, check_prompt_kind,
                                          make_prompt_block)
from cplir.models.prompted import PromptContext
from cplir.models.registry import register_model

PROMPT_TRAINING_CROP = 128  # default prompt component size: the feature's size on a 128x128 training crop


class LayerNorm2d(nn.Module):
    """Layer normalisation over channels at every pixel, (B, C, H, W): ``(x - mean) / sqrt(var + eps) * w + b``."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate: split the channels in two halves and multiply them, (B, 2C, H, W) -> (B, C, H, W)."""
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block, (B, c, H, W) -> (B, c, H, W).

    ``y = x + beta * conv3(SCA(SG(dwconv(conv1(norm1(x))))))``, then ``y + gamma * conv5(SG(conv4(norm2(y))))``;
    SCA (simplified channel attention) multiplies by a 1x1 conv of the global average.
    """

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2):
        super().__init__()
        dw_channel = c * DW_Expand
        ffn_channel = c * FFN_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1))
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        # zero-initialised residual scales: every block starts as the identity
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = simple_gate(self.conv2(self.conv1(self.norm1(inp))))
        y = inp + self.conv3(x * self.sca(x)) * self.beta
        return y + self.conv5(simple_gate(self.conv4(self.norm2(y)))) * self.gamma


def naf_stage(num_blocks: int, c: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(c) for _ in range(num_blocks)])


class NAFNetFeatures(NamedTuple):
    """Encoder outputs on the padded input (Hp, Wp): ``skips[i]`` (B, width*2^i, Hp/2^i, Wp/2^i) per level and
    ``middle`` (B, width*2^n, Hp/2^n, Wp/2^n), the middle blocks' output."""

    skips: Tuple[torch.Tensor, ...]
    middle: torch.Tensor


class NAFNet(DecoderPromptedBackbone):
    """NAFNet: a U-Net of NAFBlocks with additive skips, (B, img_channel, H, W) -> (B, img_channel, H, W).

    Args (the published constructor's names):
        width: channels of level 1; each level down doubles them (2x2 stride-2 conv), each level up halves them
            (1x1 conv + PixelShuffle).
        middle_blk_num: blocks at the bottom of the U-Net.
        enc_blk_nums, dec_blk_nums: blocks per encoder level (top down) and per decoder level (bottom up); the
            same number n of levels.
    Defaults: the published GoPro width-32 configuration (17,111,907 parameters).

    Prompt arguments (not in the published constructor; ignored when ``prompt`` is None):
        prompt: None (the published network), ``"dense"`` (PromptIR's prompt block) or ``"sparse"`` (CPL's
            Sparse Prompt Module). Block ``prompt{i}``, i = n..1, reads the feature that ``ups[n-i]`` brings up
            to level i: width·2^i channels at H/2^i (prompt{n} reads the middle blocks' output); ``fuse{i}`` fuses
            it with one NAFBlock at width·2^i + prompt_dims[i-1] and a 1x1 conv back to width·2^i.
        prompt_dims: widths of prompt1..prompt{n}; default half the width each block reads (width·2^(i-1)).
        prompt_sizes: spatial sizes of the components of prompt1..prompt{n}; default 128/2^i, the feature's size
            on a 128x128 training crop (as PromptIR's 64, 32, 16 at H/2, H/4, H/8).
        num_prompts, top_k, renormalize: components per block and the sparse routing (as PromptIR).
    """

    size_multiple = 1  # forward pads to padder_size itself, as published

    def __init__(self, img_channel: int = 3, width: int = 32, middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (1, 1, 1, 28), dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
                 prompt: Optional[str] = None, prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Optional[Sequence[int]] = None, num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        super().__init__()
        check_prompt_kind(prompt)
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ConfigError(f"NAFNet needs as many decoder as encoder levels, got enc_blk_nums {list(enc_blk_nums)} "
                              f"and dec_blk_nums {list(dec_blk_nums)}")
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(naf_stage(num, chan))
            self.downs.append(nn.Conv2d(chan, 2 * chan, kernel_size=2, stride=2))
            chan *= 2
        self.middle_blks = naf_stage(middle_blk_num, chan)
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(naf_stage(num, chan))
        self.padder_size = 2 ** len(self.encoders)

        levels = len(dec_blk_nums)
        self.prompt_names = tuple(f"prompt{i}" for i in range(levels, 0, -1)) if prompt else ()
        if prompt:
            dims = prompt_dims or [width * 2 ** (i - 1) for i in range(1, levels + 1)]
            sizes = prompt_sizes or [max(1, PROMPT_TRAINING_CROP // 2 ** i) for i in range(1, levels + 1)]
            if len(dims) != levels or len(sizes) != levels:
                raise ConfigError(f"prompt_dims and prompt_sizes need one entry per decoder level ({levels}: "
                                  f"prompt1..prompt{levels}), got {list(dims)} and {list(sizes)}")
            for i in range(1, levels + 1):
                chan, p_dim = width * 2 ** i, dims[i - 1]
                block = make_prompt_block(prompt, p_dim, num_prompts, sizes[i - 1], chan, top_k, renormalize)
                self.add_prompt(i, block, PromptFusion(NAFBlock(chan + p_dim), chan, p_dim, bias=True))

    def encode(self, x: torch.Tensor) -> NAFNetFeatures:
        """(B, C, H, W) zero-padded at the bottom and right to a multiple of ``padder_size`` -> encoder features."""
        ph, pw = (-x.shape[-2]) % self.padder_size, (-x.shape[-1]) % self.padder_size
        feat = self.intro(F.pad(x, (0, pw, 0, ph)))
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        return NAFNetFeatures(tuple(skips), self.middle_blks(feat))

    def decode(self, feats: NAFNetFeatures, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """:class:`NAFNetFeatures` -> (B, C, H, W), cropped to the size of the input ``x``, plus ``x``."""
        feat = feats.middle
        for level, decoder, up, skip in zip(range(len(self.ups), 0, -1), self.decoders, self.ups,
                                            reversed(feats.skips)):
            feat = decoder(up(self.with_prompt(level, feat, ctx)) + skip)
        h, w = x.shape[-2:]
        # the published code adds the padded input, then crops: the same numbers
        return self.ending(feat)[..., :h, :w] + x


@register_model("nafnet")
def nafnet(**kwargs) -> NAFNet:
    """NAFNet (Chen et al., ECCV 2022): published constructor arguments, plus ``prompt`` for decoder prompts."""
    return NAFNet(**kwargs)


class LocalAvgPool2d(nn.Module):
    """Test-time local converter (TLC) of Chu et al., "Improving Image Restoration by Revisiting Global Information
    Aggregation" (ECCV 2022), as NAFNet's ``NAFNetLocal`` uses it: a mean over a ``kernel_size`` window around each
    position instead of over the whole feature map, so statistics at test time cover the extent they covered on
    the training crops.

    ``kernel_size`` is set by :func:`use_local_pools` from the feature size seen on a training-size input
    (``base_size`` = 1.5x the training size, scaled to that feature). A map no larger than the window gets the
    global mean (the training behaviour). Otherwise the mean over each full window (integral image), padded back to
    the input size by replicating the border (``auto_pad``). ``fast_imp`` is the published faster approximation:
    the integral image of a strided subsample (stride r <= 5 dividing the size, at most ``5 * feature / train``)
    and nearest upsampling of the result.
    """

    RATES = (5, 4, 3, 2, 1)  # subsampling strides the fast approximation tries, largest first

    def __init__(self, fast_imp: bool = False, auto_pad: bool = True):
        super().__init__()
        self.fast_imp = fast_imp
        self.auto_pad = auto_pad
        self.kernel_size: Optional[Tuple[int, int]] = None  # both set by calibrate()
        self.max_rate: Optional[Tuple[int, int]] = None

    def calibrate(self, feature_hw: Tuple[int, int], base_size: Tuple[int, int], train_hw: Tuple[int, int]) -> None:
        h, w = feature_hw
        self.kernel_size = (h * base_size[0] // train_hw[0], w * base_size[1] // train_hw[1])
        self.max_rate = (max(1, self.RATES[0] * h // train_hw[0]), max(1, self.RATES[0] * w // train_hw[1]))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, fast_imp={self.fast_imp}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size is None:
            raise RuntimeError("LocalAvgPool2d needs use_local_pools() (build the model with "
                               "build_model('nafnet_local', ...))")
        h, w = x.shape[-2:]
        kh, kw = self.kernel_size
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        if self.fast_imp:
            r1 = min(self.max_rate[0], next(r for r in self.RATES if h % r == 0))
            r2 = min(self.max_rate[1], next(r for r in self.RATES if w % r == 0))
            s = x[..., ::r1, ::r2].cumsum(dim=-1).cumsum(dim=-2)
            sh, sw = s.shape[-2:]
            k1, k2 = min(sh - 1, kh // r1), min(sw - 1, kw // r2)
            out = (s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2] + s[..., k1:, k2:]) / (k1 * k2)
            out = F.interpolate(out, scale_factor=(r1, r2))
        else:
            s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))  # integral image with a zero first row/col
            k1, k2 = min(h, kh), min(w, kw)
            out = (s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]) / (k1 * k2)
        if self.auto_pad:
            oh, ow = out.shape[-2:]
            out = F.pad(out, ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2), mode="replicate")
        return out


def use_local_pools(model: nn.Module, train_size: Sequence[int], fast_imp: bool = False) -> None:
    """Replace every global average pool (``nn.AdaptiveAvgPool2d(1)``) of ``model`` by a :class:`LocalAvgPool2d`
    whose window is 1.5x the feature each pool sees on a ``train_size`` (N, C, H, W) input, found by one forward
    pass without gradient on such an input (only its shape matters). The published ``Local_Base.convert``."""
    _replace_global_pools(model, fast_imp)
    train_hw = (int(train_size[-2]), int(train_size[-1]))
    base_size = (int(train_hw[0] * 1.5), int(train_hw[1] * 1.5))
    pools = [m for m in model.modules() if isinstance(m, LocalAvgPool2d)]
    hooks = [pool.register_forward_pre_hook(
        lambda pool, args: pool.calibrate(tuple(args[0].shape[-2:]), base_size, train_hw)) for pool in pools]
    param = next(model.parameters())
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(tuple(int(s) for s in train_size), dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def _replace_global_pools(module: nn.Module, fast_imp: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            if child.output_size not in (1, (1, 1)):
                raise ValueError(f"only global average pools can become local, {name} has output {child.output_size}")
            setattr(module, name, LocalAvgPool2d(fast_imp=fast_imp))
        else:
            _replace_global_pools(child, fast_imp)


class NAFNetLocal(NAFNet):
    """:class:`NAFNet` with the test-time local converter, the published ``NAFNetLocal`` (how the NAFNet authors
    evaluate their GoPro and REDS models). The same parameters and state-dict keys as :class:`NAFNet`, so the
    same checkpoints load; only every NAFBlock's (and prompt fusion block's) global average becomes a local one
    sized on a ``train_size`` input.

    Args: ``train_size`` (N, C, H, W) of the training crops (published default (1, 3, 256, 256)); ``fast_imp`` the
    published faster approximation (default off, as in the published test configs); everything else as
    :class:`NAFNet`.
    """

    def __init__(self, train_size: Sequence[int] = (1, 3, 256, 256), fast_imp: bool = False, **kwargs):
        super().__init__(**kwargs)
        if len(train_size) != 4 or any(int(s) < 1 for s in train_size):
            raise ConfigError(f"train_size must be (N, C, H, W) of positive sizes, got {list(train_size)}")
        use_local_pools(self, train_size, fast_imp)


@register_model("nafnet_local")
def nafnet_local(**kwargs) -> NAFNetLocal:
    """NAFNetLocal (NAFNet with the test-time local converter): NAFNet's arguments plus ``train_size`` and
    ``fast_imp``; loads NAFNet checkpoints."""
    return NAFNetLocal(**kwargs)
