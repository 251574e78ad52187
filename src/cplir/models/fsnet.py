"""FSNet (Cui, Ren, Cao, Knoll, "Image Restoration via Frequency Selection", TPAMI 2023).

A three-level convolutional U-Net (MIMO-UNet layout: images at 1/2 and 1/4 scale enter the encoder through
shallow convolution modules, and the decoder emits an image at every scale). Its residual blocks split features
into low and high frequencies with average pooling (globally and per 2x2 quadrant) and, in the last block of each
stage, with learned per-sample low-pass filters whose outputs are re-weighted by channel attention (the frequency
selection). Module names, state-dict keys and numerics follow the published ``FSNet.py`` / ``layers.py``
(c-yn/FSNet), so its checkpoints load unchanged.

The published task folders share one architecture (same parameters) and differ only in the average pooling:
global (``Dehazing/ITS``, ``Desnowing``) or a window of ``base_size / 256`` of the feature size
(``Motion_deblurring`` 80, ``Dehazing/OTS`` 210). ``base_size=None`` (default) selects global pooling.

``prompt="dense"|"sparse"`` adds prompt blocks before the decoder's two upsamplings
(:mod:`cplir.models.decoder_prompts`).
"""

from typing import List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError, InputSizeError
from cplir.models.decoder_prompts import DecoderPromptedBackbone
from cplir.models.prompted import PromptContext
from cplir.models.promptir import PUBLISHED_PROMPT_SIZES
from cplir.models.registry import register_model

TRAIN_SIZE = 256  # the crop size the published window pooling is scaled to


class BasicConv(nn.Module):
    """Convolution (or 4x4 stride-2 transposed convolution) with bias, optionally followed by GELU."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, relu: bool = True,
                 transpose: bool = False):
        super().__init__()
        if transpose:
            conv = nn.ConvTranspose2d(in_channel, out_channel, kernel_size, stride=stride,
                                      padding=kernel_size // 2 - 1)
        else:
            conv = nn.Conv2d(in_channel, out_channel, kernel_size, stride=stride, padding=kernel_size // 2)
        self.main = nn.Sequential(conv, nn.GELU()) if relu else nn.Sequential(conv)

    def forward(self, x):
        return self.main(x)


class AveragePool(nn.Module):
    """Low-frequency part of a feature map, (B, C, H, W) -> (B, C, 1, 1) or (B, C, H, W).

    ``base_size=None``: the global mean. Otherwise a stride-1 box filter of ``size * base_size // 256`` pixels
    (at least 1, at most the size) without padding, then replicate-padded back to H x W.
    """

    def __init__(self, base_size: Optional[int] = None):
        super().__init__()
        self.base_size = base_size

    def forward(self, x):
        if self.base_size is None:
            return x.mean(dim=(-2, -1), keepdim=True)
        h, w = x.shape[-2:]
        k1 = min(h, max(1, h * self.base_size // TRAIN_SIZE))
        k2 = min(w, max(1, w * self.base_size // TRAIN_SIZE))
        out = F.avg_pool2d(x, (k1, k2), stride=1)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")


class GlobalFrequencyScale(nn.Module):
    """Scales low (pooled) and high (residual) frequencies by learned per-channel factors (published ``Gap``)."""

    def __init__(self, channels: int, base_size: Optional[int] = None):
        super().__init__()
        self.fscale_d = nn.Parameter(torch.zeros(channels))
        self.fscale_h = nn.Parameter(torch.zeros(channels))
        self.gap = AveragePool(base_size)

    def forward(self, x):
        low = self.gap(x)
        high = (x - low) * (self.fscale_h[None, :, None, None] + 1.0)
        return low * self.fscale_d[None, :, None, None] + high


class PatchFrequencyScale(nn.Module):
    """The same split inside each of the ``patch_size`` x ``patch_size`` quadrants of the map, with factors per
    channel and quadrant (published ``Patch_ap``). H and W must be multiples of ``patch_size``."""

    def __init__(self, channels: int, patch_size: int = 2, base_size: Optional[int] = None):
        super().__init__()
        self.ap = AveragePool(base_size)
        self.patch_size = patch_size
        self.h = nn.Parameter(torch.zeros(channels * patch_size ** 2))
        self.l = nn.Parameter(torch.zeros(channels * patch_size ** 2))  # noqa: E741 (published name)

    def forward(self, x):
        b, c, hh, ww = x.shape
        p = self.patch_size
        # (B, C, p*h, p*w) -> (B, C*p*p, h, w): quadrant (i, j) becomes channel c*p*p + i*p + j.
        patches = x.view(b, c, p, hh // p, p, ww // p).permute(0, 1, 2, 4, 3, 5).reshape(b, c * p * p, hh // p, ww // p)
        low = self.ap(patches)
        out = (patches - low) * self.h[None, :, None, None] + low * self.l[None, :, None, None]
        return out.view(b, c, p, p, hh // p, ww // p).permute(0, 1, 2, 4, 3, 5).reshape(b, c, hh, ww)


class FrequencySelection(nn.Module):
    """Re-weights a low and a high band with a softmax over all 2C channel logits from their pooled sum, then a
    1x1 convolution (published ``SFconv``). (B, C, H, W) x 2 -> (B, C, H, W)."""

    def __init__(self, features: int, base_size: Optional[int] = None, reduction: int = 2, min_width: int = 32):
        super().__init__()
        d = max(features // reduction, min_width)
        self.fc = nn.Conv2d(features, d, 1)
        self.fcs = nn.ModuleList([nn.Conv2d(d, features, 1), nn.Conv2d(d, features, 1)])
        self.gap = AveragePool(base_size)
        self.out = nn.Conv2d(features, features, 1)

    def forward(self, low, high):
        z = self.fc(self.gap(low + high))
        attention = torch.cat([self.fcs[0](z), self.fcs[1](z)], dim=1).softmax(dim=1)
        high_att, low_att = attention.chunk(2, dim=1)
        return self.out(high * high_att + low * low_att)


class DynamicFilter(nn.Module):
    """Per-sample learned low-pass filter: a softmax-normalised k x k kernel per channel group, predicted from the
    global mean; the low band and its complement go through :class:`FrequencySelection` (published
    ``dynamic_filter``). (B, C, H, W) -> (B, C, H, W), C a multiple of ``group``.

    ``lamb_l`` and ``lamb_h`` are published parameters that the forward pass never uses; they are kept (frozen,
    so no optimiser or DDP bucket waits for their gradient) so that the published checkpoints load.
    """

    def __init__(self, inchannels: int, kernel_size: int = 3, group: int = 8, base_size: Optional[int] = None):
        super().__init__()
        if inchannels % group:
            raise ValueError(f"dynamic filter width {inchannels} is not a multiple of its {group} groups")
        self.kernel_size = kernel_size
        self.group = group
        self.conv = nn.Conv2d(inchannels, group * kernel_size ** 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(group * kernel_size ** 2)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        self.lamb_l = nn.Parameter(torch.zeros(inchannels), requires_grad=False)
        self.lamb_h = nn.Parameter(torch.zeros(inchannels), requires_grad=False)
        self.modulate = FrequencySelection(inchannels, base_size)

    def forward(self, x):
        b, c, h, w = x.shape
        k = self.kernel_size
        kernels = self.bn(self.conv(x.mean(dim=(-2, -1), keepdim=True)))
        kernels = kernels.view(b, self.group, k * k).softmax(dim=-1)
        # One depthwise convolution over the batch: channel i of sample n uses the kernel of its group.
        weight = kernels.repeat_interleave(c // self.group, dim=1).reshape(b * c, 1, k, k)
        padded = F.pad(x, [k // 2] * 4, mode="reflect").reshape(1, b * c, h + k - 1, w + k - 1)
        low = F.conv2d(padded, weight, groups=b * c).view(b, c, h, w)
        return self.modulate(low, x - low)


class ResBlock(nn.Module):
    """conv-GELU-[dynamic filters]-frequency scaling (global on one half of the channels, per quadrant on the
    other)-conv, plus the input. ``filter=True`` adds the 3x3 and 5x5 dynamic filters (last block of a stage)."""

    def __init__(self, in_channel: int, out_channel: int, filter: bool = False, base_size: Optional[int] = None):
        super().__init__()
        half = in_channel // 2
        self.conv1 = BasicConv(in_channel, out_channel, kernel_size=3, relu=True)
        self.conv2 = BasicConv(out_channel, out_channel, kernel_size=3, relu=False)
        self.filter = filter
        if filter:
            self.dyna = DynamicFilter(half, base_size=base_size)
            self.dyna_2 = DynamicFilter(half, kernel_size=5, base_size=base_size)
        self.localap = PatchFrequencyScale(half, patch_size=2, base_size=base_size)
        self.global_ap = GlobalFrequencyScale(half, base_size=base_size)

    def forward(self, x):
        out = self.conv1(x)
        if self.filter:
            k3, k5 = out.chunk(2, dim=1)
            out = torch.cat([self.dyna(k3), self.dyna_2(k5)], dim=1)
        non_local, local = out.chunk(2, dim=1)
        out = torch.cat([self.global_ap(non_local), self.localap(local)], dim=1)
        return self.conv2(out) + x


def res_blocks(channels: int, num_res: int, base_size: Optional[int]) -> List[ResBlock]:
    """``num_res`` residual blocks, the last with dynamic filters."""
    return [ResBlock(channels, channels, filter=i == num_res - 1, base_size=base_size) for i in range(num_res)]


class Stage(nn.Module):
    """``num_res`` residual blocks (published ``EBlock`` / ``DBlock``, key ``layers``)."""

    def __init__(self, channels: int, num_res: int, base_size: Optional[int] = None):
        super().__init__()
        self.layers = nn.Sequential(*res_blocks(channels, num_res, base_size))

    def forward(self, x):
        return self.layers(x)


class InnerUNet(nn.Module):
    """The full-resolution stage: residual blocks of which the middle half run at half resolution (stride-2
    depthwise conv down, bilinear up, 1x1 fusion with the skip), plus the input (published ``Unet``)."""

    def __init__(self, channels: int, num_res: int, base_size: Optional[int] = None):
        super().__init__()
        if num_res < 4:
            raise ValueError(f"num_res must be at least 4 (the inner U-Net halves the resolution for the middle "
                             f"half of its blocks), got {num_res}")
        self.layers = nn.ModuleList(res_blocks(channels, num_res, base_size))
        self.down = nn.Conv2d(channels, channels, kernel_size=2, stride=2, groups=channels)
        self.conv = nn.Conv2d(channels * 2, channels, kernel_size=1)
        self.num_res = num_res

    def forward(self, x):
        res = x
        for i, layer in enumerate(self.layers):
            if i == self.num_res // 4:
                skip = x
                x = self.down(x)
            if i == self.num_res - self.num_res // 4:
                x = F.interpolate(x, res.shape[2:], mode="bilinear", align_corners=False)
                x = self.conv(torch.cat([x, skip], dim=1))
            x = layer(x)
        return x + res


class UNetStage(nn.Module):
    """Wrapper keeping the published key layout ``Encoder.0.layers.*`` (``EBlock1`` / ``DBlock1``)."""

    def __init__(self, channels: int, num_res: int, base_size: Optional[int] = None):
        super().__init__()
        self.layers = InnerUNet(channels, num_res, base_size)

    def forward(self, x):
        return self.layers(x)


class ShallowConvModule(nn.Module):
    """SCM: features from a downscaled input image, (B, 3, h, w) -> (B, C, h, w), instance-normalised."""

    def __init__(self, out_plane: int):
        super().__init__()
        self.main = nn.Sequential(BasicConv(3, out_plane // 4, kernel_size=3, relu=True),
                                  BasicConv(out_plane // 4, out_plane // 2, kernel_size=1, relu=True),
                                  BasicConv(out_plane // 2, out_plane // 2, kernel_size=3, relu=True),
                                  BasicConv(out_plane // 2, out_plane, kernel_size=1, relu=False),
                                  nn.InstanceNorm2d(out_plane, affine=True))

    def forward(self, x):
        return self.main(x)


class FeatureAttentionMerge(nn.Module):
    """FAM: 3x3 conv over the concatenation of the encoder feature and the SCM feature."""

    def __init__(self, channel: int):
        super().__init__()
        self.merge = BasicConv(channel * 2, channel, kernel_size=3, relu=False)

    def forward(self, x1, x2):
        return self.merge(torch.cat([x1, x2], dim=1))


class FSNetFeatures(NamedTuple):
    """Encoder outputs: res1 (B, C, H, W), res2 (B, 2C, H/2, W/2), bottom (B, 4C, H/4, W/4), and the input
    downscaled to x_2 (B, 3, H/2, W/2) and x_4 (B, 3, H/4, W/4) for the side outputs."""

    res1: torch.Tensor
    res2: torch.Tensor
    bottom: torch.Tensor
    x_2: torch.Tensor
    x_4: torch.Tensor


class FSNet(DecoderPromptedBackbone):
    """FSNet, (B, 3, H, W) -> (B, 3, H, W); H and W multiples of 8.

    Args:
        num_res: residual blocks per stage (16 published; at least 4).
        base_channel: width of the full-resolution level (32 in the published code, which hard-codes it;
            a multiple of 16 so the dynamic filters' 8 groups divide half of it).
        base_size: ``None`` for global average pooling, or the published window pooling's base size (80 in
            ``Motion_deblurring``, 210 in ``Dehazing/OTS``); see the module docstring.
    Prompt arguments (ignored when ``prompt`` is None, the published network):
        prompt: ``"dense"`` or ``"sparse"``: ``prompt2`` after decoder level 1 (4·base_channel, H/4) and
            ``prompt1`` after decoder level 2 (2·base_channel, H/2), the two points before an upsampling; each is
            fused by one residual block (without dynamic filters).
        prompt_dims: widths of prompt1, prompt2; default PromptIR's at H/2 and H/4, (64, 128), scaled with
            ``base_channel``.
        prompt_sizes: component sizes of prompt1, prompt2 (PromptIR's at those scales: 64, 32).
        num_prompts, top_k, renormalize: as :class:`~cplir.models.PromptIR`.

    ``forward`` returns the full-resolution image, as the all-in-one trainers use; :meth:`forward_multiscale`
    returns the published list of three images (1/4, 1/2, full scale) for multi-scale losses.
    """

    size_multiple = 8
    scale = 1
    unused_in_forward = True  # the side-output heads ConvsOut serve forward_multiscale only

    def __init__(self, num_res: int = 16, base_channel: int = 32, base_size: Optional[int] = None,
                 prompt: Optional[str] = None, prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES[:2], num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        super().__init__()
        if base_channel % 16:
            raise ConfigError(f"FSNet's base_channel must be a multiple of 16, got {base_channel}")
        c1, c2, c4 = base_channel, base_channel * 2, base_channel * 4
        self.Encoder = nn.ModuleList([UNetStage(c1, num_res, base_size), Stage(c2, num_res, base_size),
                                      Stage(c4, num_res, base_size)])
        self.feat_extract = nn.ModuleList([
            BasicConv(3, c1, kernel_size=3, relu=True),
            BasicConv(c1, c2, kernel_size=3, relu=True, stride=2),
            BasicConv(c2, c4, kernel_size=3, relu=True, stride=2),
            BasicConv(c4, c2, kernel_size=4, relu=True, stride=2, transpose=True),
            BasicConv(c2, c1, kernel_size=4, relu=True, stride=2, transpose=True),
            BasicConv(c1, 3, kernel_size=3, relu=False),
        ])
        self.Decoder = nn.ModuleList([Stage(c4, num_res, base_size), Stage(c2, num_res, base_size),
                                      UNetStage(c1, num_res, base_size)])
        self.Convs = nn.ModuleList([BasicConv(c4, c2, kernel_size=1, relu=True),
                                    BasicConv(c2, c1, kernel_size=1, relu=True)])
        self.ConvsOut = nn.ModuleList([BasicConv(c4, 3, kernel_size=3, relu=False),
                                       BasicConv(c2, 3, kernel_size=3, relu=False)])
        self.FAM1 = FeatureAttentionMerge(c4)
        self.SCM1 = ShallowConvModule(c4)
        self.FAM2 = FeatureAttentionMerge(c2)
        self.SCM2 = ShallowConvModule(c2)

        dims = prompt_dims if prompt_dims is not None else (2 * base_channel, 4 * base_channel)
        self.add_prompts(prompt, {2: c4, 1: c2}, dims, prompt_sizes,
                         lambda width: ResBlock(width, width, base_size=base_size), num_prompts, top_k, renormalize,
                         bias=True)

    def check_input(self, x: torch.Tensor) -> None:
        """The size check of every backbone, and a batch of at least 2 in training mode."""
        super().check_input(x)
        if self.training and x.shape[0] < 2:
            raise InputSizeError("FSNet trains with batches of at least 2 images: the BatchNorm of its dynamic "
                                 "filters normalises one value per image (set data.batch_size >= 2, or call "
                                 "model.eval() for inference)")

    def encode(self, x: torch.Tensor) -> FSNetFeatures:
        """(B, 3, H, W) -> :class:`FSNetFeatures`."""
        x_2 = F.interpolate(x, scale_factor=0.5)  # nearest, as published
        x_4 = F.interpolate(x_2, scale_factor=0.5)
        res1 = self.Encoder[0](self.feat_extract[0](x))
        z = self.FAM2(self.feat_extract[1](res1), self.SCM2(x_2))
        res2 = self.Encoder[1](z)
        z = self.FAM1(self.feat_extract[2](res2), self.SCM1(x_4))
        return FSNetFeatures(res1, res2, self.Encoder[2](z), x_2, x_4)

    def decode(self, feats: FSNetFeatures, x: torch.Tensor, ctx: PromptContext, multiscale: bool = False):
        """:class:`FSNetFeatures` -> (B, 3, H, W), or with ``multiscale`` the list [1/4, 1/2, full] of images."""
        z = self.with_prompt(2, self.Decoder[0](feats.bottom), ctx)
        outputs = [self.ConvsOut[0](z) + feats.x_4] if multiscale else []
        z = self.Convs[0](torch.cat([self.feat_extract[3](z), feats.res2], dim=1))
        z = self.with_prompt(1, self.Decoder[1](z), ctx)
        if multiscale:
            outputs.append(self.ConvsOut[1](z) + feats.x_2)
        z = self.Convs[1](torch.cat([self.feat_extract[4](z), feats.res1], dim=1))
        out = self.feat_extract[5](self.Decoder[2](z)) + x
        return outputs + [out] if multiscale else out

    def forward_multiscale(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The published forward: images at 1/4, 1/2 and full scale, (B, 3, H/4, W/4), ..., (B, 3, H, W)."""
        self.check_input(x)
        return self.decode(self.encode(x), x, self.context(x.shape[0]), multiscale=True)


@register_model("fsnet")
def fsnet(**kwargs) -> FSNet:
    """FSNet (TPAMI 2023), published default (16 residual blocks per stage, width 32, global pooling);
    ``prompt`` adds decoder prompts."""
    return FSNet(**kwargs)
