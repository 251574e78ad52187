"""ImageNet VGG16/VGG19 feature networks for the perceptual terms of CPR and SPN (docs/design.md §5).

Written in plain torch with torchvision's ``features`` numbering, so torchvision's weight files
(``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``; full or ``features.*`` only) load unchanged. Nothing is ever
downloaded: weights come from an explicit path, the ``CPLIR_VGG19_WEIGHTS`` / ``CPLIR_VGG16_WEIGHTS`` environment
variable, or ``$TORCH_HOME/hub/checkpoints/``. A seeded random network (``weights="random"``) exists for tests and
the demo and is flagged by ``random_weights`` so that every log and report can say so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cplir.errors import CheckpointError, ConfigError
from cplir.pretrained import PretrainedFile
from cplir.seeding import torch_generator

# Convolutions per block: configurations D (VGG16) and E (VGG19) of Simonyan & Zisserman (2015).
_CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
ARCHS = tuple(_CONVS_PER_BLOCK)
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)
WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
WEIGHT_ENV_VARS = {"vgg16": "CPLIR_VGG16_WEIGHTS", "vgg19": "CPLIR_VGG19_WEIGHTS"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _check_arch(arch: str) -> None:
    if arch not in _CONVS_PER_BLOCK:
        raise ConfigError(f"unknown VGG architecture {arch!r}; use one of {sorted(_CONVS_PER_BLOCK)}")


def layer_indices(arch: str) -> dict[str, int]:
    """Map layer names (``conv3_4``, ``relu3_4``, ``pool3``) to indices in torchvision's ``features``."""
    _check_arch(arch)
    indices = {}
    index = 0
    for block, n_convs in enumerate(_CONVS_PER_BLOCK[arch], start=1):
        for conv in range(1, n_convs + 1):
            indices[f"conv{block}_{conv}"] = index
            indices[f"relu{block}_{conv}"] = index + 1
            index += 2
        indices[f"pool{block}"] = index
        index += 1
    return indices


def _build_features(arch: str, last_index: int) -> nn.Sequential:
    """torchvision's ``features`` Sequential, truncated after module ``last_index``."""
    modules: list[nn.Module] = []
    in_channels = 3
    for n_convs, channels in zip(_CONVS_PER_BLOCK[arch], _BLOCK_CHANNELS):
        for _ in range(n_convs):
            modules += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU()]
            in_channels = channels
        modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules[: last_index + 1])


VGG_FILES = {
    arch: PretrainedFile(
        what=f"torchvision's ImageNet {arch.upper()} weights", file_name=WEIGHT_FILES[arch],
        env_var=WEIGHT_ENV_VARS[arch], config_hint="the VGG weights path of the config",
        random_hint="For tests or the demo only, ask for a random-initialised network with weights='random'.")
    for arch in _CONVS_PER_BLOCK
}


def find_vgg_weights(arch: str, path: str | os.PathLike | None = None) -> Path | None:
    """Locate a VGG weight file: ``path`` first, then ``$CPLIR_VGG{16,19}_WEIGHTS``, then ``$TORCH_HOME``.

    Returns None only when neither a path nor the environment variable is set and the default file
    ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (``vgg16-397923af.pth``) does not exist. A path that was
    named explicitly (argument or environment variable) but does not exist raises :class:`CheckpointError`.
    """
    _check_arch(arch)
    return VGG_FILES[arch].locate(path)


def layer_weight_map(layers: Sequence[str], layer_weights: Sequence[float]) -> dict[str, float]:
    """Pair layer names with their weights, checking the two lists fit together."""
    layers, layer_weights = tuple(layers), tuple(float(w) for w in layer_weights)
    if not layers or len(layers) != len(layer_weights) or len(set(layers)) != len(layers):
        raise ConfigError(
            f"layers {layers} and layer_weights {layer_weights} must be non-empty, without repeated layers, "
            f"and of the same length"
        )
    return dict(zip(layers, layer_weights))


def weighted_feature_distance(
    features_a: Mapping[str, Tensor],
    features_b: Mapping[str, Tensor],
    layer_weights: Mapping[str, float],
    distance: str = "l2",
    channel_norm: bool = False,
) -> Tensor:
    """``Σ_l w_l · D(a_l, b_l)`` with D the mean over the last four dims (batch, channel, height, width).

    ``a_l`` is (B, C, h, w) or (m, B, C, h, w); ``b_l`` is (B, C, h, w) and broadcasts, giving a scalar or one
    value per leading index (m,). ``"l2"`` is the mean squared error (the squared L2 norm of CPR, Eq. 5-6),
    ``"l1"`` the mean absolute error. ``channel_norm`` L2-normalises every feature vector along the channel axis
    first (LPIPS-style unit feature vectors).
    """
    total = 0.0
    for name, weight in layer_weights.items():
        a, b = features_a[name], features_b[name]
        if channel_norm:
            a, b = F.normalize(a, dim=-3), F.normalize(b, dim=-3)
        diff = a - b
        per_element = diff.square() if distance == "l2" else diff.abs()
        total = total + weight * per_element.mean(dim=(-4, -3, -2, -1))
    return total


class VGGFeatures(nn.Module):
    """ImageNet VGG features with torchvision's module numbering, truncated after the deepest requested layer.

    Args:
        arch: ``"vgg19"`` or ``"vgg16"``.
        layers: names of the outputs to return (``relu1_2``, ``relu3_3``, ``conv5_4``, ``pool4``, ...).
        weights: None to find torchvision's file (see :func:`find_vgg_weights`), a path to such a file, or
            ``"random"`` for a seeded random network (tests and demo only; flagged by ``random_weights``).
        normalize_input: inputs are RGB in [0, 1]; normalise them with the ImageNet mean/std first.
        requires_grad: train the VGG parameters too (off: a frozen network, always in eval mode).
        seed: seed of the random initialisation when ``weights="random"``.
    """

    def __init__(
        self,
        arch: str = "vgg19",
        layers: Sequence[str] = DEFAULT_LAYERS,
        weights: str | os.PathLike | None = None,
        normalize_input: bool = True,
        requires_grad: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        indices = layer_indices(arch)
        layers = tuple(dict.fromkeys(layers))
        unknown = [name for name in layers if name not in indices]
        if not layers or unknown:
            raise ConfigError(f"unknown {arch} layers {unknown or '(none given)'}; valid names: {list(indices)}")
        self.random_weights = isinstance(weights, str) and weights == "random"
        path = None if self.random_weights else find_vgg_weights(arch, weights)
        if path is None and not self.random_weights:
            raise CheckpointError(f"No {arch.upper()} weights found. {VGG_FILES[arch].where_to_put()}")
        self.arch = arch
        self.layers = layers
        self._name_at = {indices[name]: name for name in layers}
        self.features = _build_features(arch, max(self._name_at))
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if path is None:
            self._init_random(seed)
            self.weights_source = f"random (seed {seed})"
        else:
            self._load(path)
            self.weights_source = str(path)
        self.trainable = requires_grad
        self.requires_grad_(requires_grad)
        self.train(False)
        # Channels-last convolutions run about 1.4x faster on the CPU here (oneDNN) and suit tensor cores on GPU.
        self.features.to(memory_format=torch.channels_last)

    def _init_random(self, seed: int) -> None:
        # torchvision's VGG init (Kaiming normal, fan_out, ReLU gain; zero bias) keeps random deep features at a
        # usable scale; drawn layer by layer from one generator, so a truncated net equals a deeper one's prefix.
        generator = torch_generator(seed)
        with torch.no_grad():
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                    std = math.sqrt(2.0 / fan_out)
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                    module.bias.zero_()

    def _load(self, path: Path) -> None:
        # torchvision files hold ``features.*`` and ``classifier.*``; only the (truncated) features are used.
        VGG_FILES[self.arch].load_into(self.features, path, prefix="features.")

    def train(self, mode: bool = True) -> VGGFeatures:
        # A frozen feature extractor stays in eval mode whatever its parent module does.
        return super().train(mode and self.trainable)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Features of ``x`` (B, 3, H, W), RGB in [0, 1]: name → (B, C_l, H / 2^k, W / 2^k)."""
        if self.normalize_input:
            x = (x - self.mean) / self.std
        x = x.contiguous(memory_format=torch.channels_last)
        outputs = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self._name_at:
                outputs[self._name_at[index]] = x
        return outputs


def resolve_vgg(vgg: VGGFeatures | str | os.PathLike | None, arch: str, layers: Sequence[str]) -> VGGFeatures:
    """A VGGFeatures that yields ``layers``: ``vgg`` itself, or one built from the weights spec ``vgg``."""
    if isinstance(vgg, VGGFeatures):
        missing = [name for name in layers if name not in vgg.layers]
        if missing:
            raise ConfigError(f"the given VGG network does not output layers {missing}; build it with them")
        return vgg
    return VGGFeatures(arch=arch, layers=layers, weights=vgg)
