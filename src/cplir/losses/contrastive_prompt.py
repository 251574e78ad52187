"""Contrastive Prompt Regularization (CPR) of Contrastive Prompt Learning (CPL Sec. III-C, Eq. 4-8; docs/design.md §3).

``L = ||I+ − y||₁ + α·(L_pos − L_neg)`` with ``L_pos = Σ_l w_l·D(φ_l(I+), φ_l(y))`` and
``L_neg = mean_j Σ_l w_l·D(φ_l(I-_j), φ_l(I+))``: the output with matched prompts is pulled towards the clean
image and pushed away from the outputs produced with mismatched prompts. This module computes the CPR term;
the L1 term lives in :mod:`cplir.losses.pixel`.

Default VGG layers and weights (an assumption; the paper does not list them): VGG19 ``relu1_1 … relu5_1``
weighted 1/32, 1/16, 1/8, 1/4, 1, the usual choice of contrastive regularisation since AECR-Net.

``form="code"`` follows the published code instead: no positive term, negatives summed instead of averaged and
VGG features normalised per channel; unlike that code (which by mistake counts only the last layer) every
configured layer is counted. Each difference can also be switched on its own.

Feature spaces φ (``features``; the papers use ImageNet VGG19, ``"vgg"``, the default). Nothing is downloaded, so
without the ImageNet weights the VGG can only be random, and a random VGG's features are so small that the term
barely moves the network (its gradient is 6e-5 of the L1 gradient at the embedded demo setting,
docs/benchmarks.md). Two download-free spaces give it weight:

* ``"vgg_standardized"``: the configured VGG, every channel divided by its standard deviation over the batch's
  restored images (a constant of the step, floored at a tenth of the layer's mean so that nearly silent channels
  are not blown up). Every channel then counts on one scale, whatever the scale of the weights;
* ``"pyramid"``: a fixed pixel/gradient pyramid (:class:`~cplir.losses.pyramid.PixelGradientPyramid`, four
  scales, equal weights; ``layers`` and ``layer_weights`` choose VGG layers only), standardised the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cplir.errors import ConfigError, InputSizeError
from cplir.losses.pyramid import PixelGradientPyramid
from cplir.losses.vgg import DEFAULT_LAYERS, VGGFeatures, layer_weight_map, resolve_vgg, weighted_feature_distance

DEFAULT_ALPHA = 0.01  # the paper's unified default (Sec. IV; Table XI: 0.003 is marginally best on three tasks)
DEFAULT_NUM_NEGATIVES = 4  # m (Table XII ablates 1, 2, 4, 8)
DEFAULT_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
DISTANCES = ("l2", "l1")
_FORMS = {
    "paper": {"positive": True, "negative_reduction": "mean", "channel_norm": False},
    "code": {"positive": False, "negative_reduction": "sum", "channel_norm": True},
}
FORMS = tuple(_FORMS)
FEATURES = ("vgg", "vgg_standardized", "pyramid")
STANDARD_FLOOR = 0.1  # a channel's scale is at least this fraction of its layer's mean channel scale


def channel_scale(features: Tensor) -> Tensor:
    """(1, C, 1, 1) standard deviation of each channel of (B, C, H, W) features, floored at ``STANDARD_FLOOR``
    times the mean over channels (no gradient: a constant of the step)."""
    std = features.detach().float().std(dim=(0, 2, 3), keepdim=True)
    return std.clamp_min(STANDARD_FLOOR * std.mean() + 1e-12)


class ContrastivePromptLoss(nn.Module):
    """The CPR term ``α·(L_pos − L_neg)``.

    Args:
        alpha: α of Eq. 8 (0.01 default; the paper's best is 0.003 on three tasks, 0.01 on five).
        form: ``"paper"`` (Eq. 4-8) or ``"code"`` (the published code's variant); sets the defaults of
            ``positive``, ``negative_reduction`` and ``channel_norm``.
        distance: ``"l2"`` (squared L2 as a mean squared error over feature elements, the paper's) or ``"l1"``.
        layers, layer_weights: VGG layers φ_l and their weights w_l.
        channel_norm: unit-normalise VGG feature vectors along the channel axis before comparing them.
        positive: include ``L_pos``; ``negative_reduction``: ``"mean"`` or ``"sum"`` over the m negatives.
        vgg: a :class:`VGGFeatures` yielding ``layers``, or the weights spec of the VGG to build
            (None: find torchvision's file; a path; ``"random"``).
        arch: ``"vgg19"`` (CPLIR's) or ``"vgg16"``, when ``vgg`` is not a built network.
        negative_grad: let the gradient of ``−α·L_neg`` flow into the negatives (the paper text's reading,
            ``loss.cpr.negative_grad``); off: they are constants, as in the published code.
        features: the feature space φ, ``"vgg"``, ``"vgg_standardized"`` or ``"pyramid"`` (module docstring).
    """

    def __init__(
        self,
        alpha: float = DEFAULT_ALPHA,
        form: str = "paper",
        distance: str = "l2",
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] = DEFAULT_LAYER_WEIGHTS,
        channel_norm: bool | None = None,
        positive: bool | None = None,
        negative_reduction: str | None = None,
        vgg: VGGFeatures | str | os.PathLike | None = None,
        arch: str = "vgg19",
        negative_grad: bool = False,
        features: str = "vgg",
    ):
        super().__init__()
        if features not in FEATURES:
            raise ConfigError(f"unknown CPR features {features!r}; use one of {', '.join(FEATURES)}")
        if form not in _FORMS:
            raise ConfigError(f"unknown CPR form {form!r}; use 'paper' or 'code'")
        if distance not in DISTANCES:
            raise ConfigError(f"unknown CPR distance {distance!r}; use 'l2' or 'l1'")
        defaults = _FORMS[form]
        negative_reduction = defaults["negative_reduction"] if negative_reduction is None else negative_reduction
        if negative_reduction not in ("mean", "sum"):
            raise ConfigError(f"unknown negative_reduction {negative_reduction!r}; use 'mean' or 'sum'")
        self.alpha = float(alpha)
        self.form = form
        self.distance = distance
        self.features = features
        if features == "pyramid":
            self.phi: VGGFeatures | PixelGradientPyramid = PixelGradientPyramid()
            self.layer_weights = dict.fromkeys(self.phi.layers, 1.0)
        else:
            self.layer_weights = layer_weight_map(layers, layer_weights)
            self.phi = resolve_vgg(vgg, arch, tuple(self.layer_weights))
        self.standardize = features != "vgg"
        self.channel_norm = defaults["channel_norm"] if channel_norm is None else bool(channel_norm)
        self.positive = defaults["positive"] if positive is None else bool(positive)
        self.negative_reduction = negative_reduction
        self.negative_grad = bool(negative_grad)

    @property
    def vgg(self) -> VGGFeatures | None:
        """The VGG of φ (None for the pyramid)."""
        return self.phi if isinstance(self.phi, VGGFeatures) else None

    def _distance(self, features_a: dict[str, Tensor], features_b: dict[str, Tensor]) -> Tensor:
        return weighted_feature_distance(
            features_a, features_b, self.layer_weights, self.distance, self.channel_norm
        )

    def forward(self, restored: Tensor, target: Tensor, negatives: Tensor) -> dict[str, Tensor]:
        """CPR terms for ``restored`` I+ (B, 3, H, W), ``target`` y (B, 3, H, W), ``negatives`` I- (m, B, 3, H, W).

        Returns ``pos`` (L_pos, 0 without the positive term), ``neg`` (L_neg) and ``cpr`` = α·(pos − neg).
        Negatives are treated as constants (detached) unless ``negative_grad``.
        """
        if target.shape != restored.shape or negatives.dim() != 5 or negatives.shape[1:] != restored.shape:
            raise InputSizeError(
                f"CPR needs restored and target of one shape (B, 3, H, W) and negatives (m, B, 3, H, W); got "
                f"{tuple(restored.shape)}, {tuple(target.shape)} and {tuple(negatives.shape)}"
            )
        m, batch = negatives.shape[0], restored.shape[0]
        if m == 0:
            raise InputSizeError("CPR needs at least one negative (m >= 1)")
        # φ with gradient on I+; y and the negatives are constants, so one no-grad pass serves them all (a joint
        # pass would run the VGG backward over 2 + m times the batch). Negatives that carry a graph
        # (loss.cpr.negative_grad) get their own pass with gradient.
        plus = self.phi(restored)
        negative_grad = self.negative_grad and negatives.requires_grad
        with torch.no_grad():
            constants = ([target] if self.positive else []) + ([] if negative_grad else [negatives.flatten(0, 1)])
            features = self.phi(torch.cat(constants)) if constants else {}
        offset = batch if self.positive else 0
        source = self.phi(negatives.flatten(0, 1)) if negative_grad else {n: f[offset:] for n, f in features.items()}
        if self.standardize:  # one scale per channel, from I+, for every image of the step
            scale = {name: channel_scale(f) for name, f in plus.items()}
            plus, features, source = ({name: f / scale[name] for name, f in group.items()}
                                      for group in (plus, features, source))
        minus = {name: f.unflatten(0, (m, batch)) for name, f in source.items()}

        per_negative = self._distance(minus, plus)  # (m,): Σ_l w_l·D(φ_l(I-_j), φ_l(I+)), Eq. 6
        neg = per_negative.mean() if self.negative_reduction == "mean" else per_negative.sum()
        if self.positive:
            pos = self._distance(plus, {name: f[:batch] for name, f in features.items()})  # Eq. 5
        else:
            pos = neg.new_zeros(())
        return {"pos": pos, "neg": neg, "cpr": self.alpha * (pos - neg)}  # Eq. 8
