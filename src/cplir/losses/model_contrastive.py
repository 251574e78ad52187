"""Self-Prior guided Negative loss (SPN) of model contrastive learning, MCLIR (docs/design.md §4).

``L = L_rec − λ·mean_i Σ_l w_l·||φ_l(I_rec) − φ_l(neg_i(x))||₁``: the output is pushed away from the outputs
of lagged "negative" copies of the network (see :class:`cplir.engine.negative_models.NegativeModelBank`).
φ is VGG16 at relu1_2 / relu2_2 / relu3_3 weighted 0.2 / 0.3 / 0.5, the published configuration.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cplir.errors import InputSizeError
from cplir.losses.vgg import VGGFeatures, layer_weight_map, resolve_vgg, weighted_feature_distance


DEFAULT_LAMBDA = 0.001  # the published config's λ
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3")
DEFAULT_LAYER_WEIGHTS = (0.2, 0.3, 0.5)


class ModelContrastiveLoss(nn.Module):
    """The SPN term ``−λ·neg``.

    Args:
        lam: λ (0.001 published; keep the term at 0.01-0.1× the reconstruction loss).
        layers, layer_weights: VGG layers φ_l and their weights w_l.
        vgg: a :class:`VGGFeatures` yielding ``layers``, or the weights spec of a VGG16 to build
            (None: find torchvision's file; a path; ``"random"``).
    """

    def __init__(
        self,
        lam: float = DEFAULT_LAMBDA,
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] = DEFAULT_LAYER_WEIGHTS,
        vgg: VGGFeatures | str | os.PathLike | None = None,
    ):
        super().__init__()
        self.lam = float(lam)
        self.layer_weights = layer_weight_map(layers, layer_weights)
        self.vgg = resolve_vgg(vgg, "vgg16", tuple(self.layer_weights))

    def forward(self, restored: Tensor, negatives: Sequence[Tensor]) -> dict[str, Tensor]:
        """SPN terms for ``restored`` (B, 3, H, W) and the K negative outputs, each (B, 3, H, W).

        Returns ``neg`` = mean_i Σ_l w_l·L1(φ_l(I_rec), φ_l(neg_i)) and ``spn`` = −λ·neg (negatives detached).
        """
        if len(negatives) == 0 or any(n.shape != restored.shape for n in negatives):
            raise InputSizeError(
                f"SPN needs at least one negative output, each of the restored shape {tuple(restored.shape)}; got "
                f"{[tuple(n.shape) for n in negatives]}"
            )
        k, batch = len(negatives), restored.shape[0]
        # Gradient flows through the restored image only; the K negatives share one no-grad VGG pass.
        rec = self.vgg(restored)
        with torch.no_grad():
            others = {name: f.unflatten(0, (k, batch))
                      for name, f in self.vgg(torch.cat([n.detach() for n in negatives])).items()}
        neg = weighted_feature_distance(others, rec, self.layer_weights, distance="l1").mean()
        return {"neg": neg, "spn": -self.lam * neg}
