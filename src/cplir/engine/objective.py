"""The training objective as registry entries: one :class:`ObjectiveTerm` per loss.

A term is registered with ``@register_term(name)`` and built from its section of ``cfg.loss`` (``loss.<name>``).
The training step (:meth:`cplir.engine.trainer.Trainer.training_step`) computes the restoration once, calls every
enabled term on the same :class:`StepInputs`, sums the entries each term returns under its own name and logs every
other entry. Adding a loss = one class here (or in its own module, registered the same way) and its config
section in :class:`cplir.config.LossConfig`; see docs/extending.md.

Built-in terms:
* ``l1``: the reconstruction loss ``||I − y||₁`` (CPL Eq. 4; MCLIR's L_rec);
* ``ssim``: ``1 − SSIM(I, y)``, IDT's reconstruction loss (:mod:`cplir.losses.ssim`);
* ``cpr``: Contrastive Prompt Regularisation ``α·(L_pos − L_neg)`` with m mismatched-prompt negatives (CPL Eq. 5–8);
* ``spn``: the Self-Prior guided Negative loss ``−λ·mean_i ||φ(I) − φ(neg_i(x))||₁`` with lagged negative models
  (MCLIR Eq. 3).
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from cplir.engine.negative_models import NegativeModelBank
from cplir.engine.negative_refresh import build_refresh_rule
from cplir.engine.prompt_negatives import draw_negative_choices, prompt_negatives_batched, prompt_negatives_naive
from cplir.errors import CheckpointError, ConfigError
from cplir.losses import ContrastivePromptLoss, ModelContrastiveLoss, l1_loss, ssim_loss
from cplir.models.prompted import check_supports_cpr


@dataclass
class StepInputs:
    """What every term of one training step sees.

    ``restored`` (B, C, H', W') is the positive pass's float output; ``feats`` its encoder features (only when a
    term asked for them); ``generator`` a CPU generator that is a pure function of (seed, rank, iteration), so a
    resumed run repeats every random choice.
    """

    lq: torch.Tensor
    gt: torch.Tensor
    restored: torch.Tensor
    feats: Any
    net: nn.Module
    iteration: int
    generator: torch.Generator


class ObjectiveTerm(nn.Module):
    """One term of the training objective.

    ``forward(inputs)`` returns named tensors: the entry named like the term is its contribution to the loss
    (already weighted); every other entry is a diagnostic, logged as a float. Subclasses may keep state that a
    training checkpoint must hold (:meth:`checkpoint_state`) and act after the optimiser step (:meth:`after_step`).
    """

    name = ""
    needs_features = False  # the step must return the encoder features (to reuse them, e.g. for CPR negatives)

    def after_step(self, iteration: int, net: nn.Module) -> None:
        """Called after each optimiser step with the new iteration count."""

    def random_vgg(self) -> bool:
        """Whether this term's perceptual network has random (not ImageNet) weights (labelled in logs)."""
        vgg = getattr(self, "vgg", None) or getattr(getattr(self, "loss", None), "vgg", None)
        return bool(vgg is not None and vgg.random_weights)

    def feature_labels(self) -> List[str]:
        """What every log and report must say about this term's feature network when it is not the papers'."""
        return [f"{self.name}: RANDOM VGG weights (results not comparable to the papers)"] if self.random_vgg() else []

    def checkpoint_state(self) -> Optional[dict]:
        """What a training checkpoint must hold for an exact resume (None: nothing beyond fixed networks)."""
        return None

    def restore_state(self, state: dict) -> None:
        """Restore what :meth:`checkpoint_state` returned."""


TermBuilder = Callable[[Any, nn.Module, Any], Optional[ObjectiveTerm]]
_TERMS: Dict[str, TermBuilder] = {}


def register_term(name: str):
    """Register ``builder(section, net, cfg) -> ObjectiveTerm | None`` for config section ``loss.<name>``; the
    builder returns None when the section disables the term."""

    def decorate(builder: TermBuilder):
        if name in _TERMS:
            raise ValueError(f"objective term {name!r} is registered twice")
        _TERMS[name] = builder
        return builder

    return decorate


def list_terms() -> List[str]:
    return list(_TERMS)


def build_objective(cfg, net: nn.Module) -> nn.ModuleDict:
    """The enabled terms of ``cfg.loss``, in registration order."""
    terms = nn.ModuleDict()
    for name, builder in _TERMS.items():
        section = getattr(cfg.loss, name, None)
        if section is None:
            raise ConfigError(f"objective term {name!r} has no config section loss.{name}")
        term = builder(section, net, cfg)
        if term is not None:
            term.name = name
            terms[name] = term
    if not terms:
        raise ConfigError("the training objective is empty: enable at least one loss (loss.l1 > 0, loss.ssim > 0, "
                          "loss.cpr or loss.spn)")
    return terms


def _vgg_spec(text: str):
    return None if text == "" else text


# --- built-in terms ----------------------------------------------------------------------------------------------
class ReconstructionTerm(ObjectiveTerm):
    """``w·loss(I, y)``: a reconstruction term, ``l1`` (CPL Eq. 4; MCLIR's L_rec) or ``ssim`` (IDT's objective)."""

    def __init__(self, weight: float, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.weight = weight
        self.loss = loss

    def forward(self, inputs: StepInputs) -> Dict[str, torch.Tensor]:
        return {self.name: self.weight * self.loss(inputs.restored, inputs.gt)}


@register_term("l1")
def _build_l1(weight: float, net: nn.Module, cfg) -> Optional[ObjectiveTerm]:
    return ReconstructionTerm(weight, l1_loss) if weight > 0 else None


@register_term("ssim")
def _build_ssim(weight: float, net: nn.Module, cfg) -> Optional[ObjectiveTerm]:
    return ReconstructionTerm(weight, ssim_loss) if weight > 0 else None


class CPRTerm(ObjectiveTerm):
    """Contrastive Prompt Regularisation: ``α·(L_pos − L_neg)`` (CPL Eq. 5–8) against m restorations of the same
    batch with mismatched prompts: constants by default, as the published code computes them; with
    ``loss.cpr.negative_grad`` the gradient of ``−α·L_neg`` also flows through the negatives (the paper text's
    "penalise the model when it restores well with the wrong prompt")."""

    needs_features = True

    def __init__(self, section, device_type: str):
        super().__init__()
        self.section = section
        self.device_type = device_type
        self.loss = ContrastivePromptLoss(
            alpha=section.alpha, form=section.form, distance=section.distance, channel_norm=section.channel_norm,
            layers=section.layers, layer_weights=section.layer_weights,
            vgg=None if section.features == "pyramid" else _vgg_spec(section.vgg_weights), arch=section.vgg,
            negative_grad=section.negative_grad, features=section.features)

    def feature_labels(self) -> List[str]:
        labels = super().feature_labels()
        if self.section.features != "vgg":
            labels.append(f"{self.name}: features {self.section.features} (download-free feature space instead of "
                          "the papers' ImageNet VGG; see docs/benchmarks.md)")
        return labels

    def negatives(self, inputs: StepInputs) -> torch.Tensor:
        """m mismatched-prompt restorations (m, B, C, H', W')."""
        s, net = self.section, inputs.net
        draws = draw_negative_choices(s.num_negatives, len(net.prompt_names), inputs.lq.shape[0], inputs.generator)
        if s.batched_negatives:
            per_pass = s.negatives_per_pass or (s.num_negatives if self.device_type == "cuda" else 1)
            return prompt_negatives_batched(net, inputs.feats, inputs.lq, draws, per_pass, s.negative_grad)
        return prompt_negatives_naive(net, inputs.lq, draws, s.negative_grad)

    def forward(self, inputs: StepInputs) -> Dict[str, torch.Tensor]:
        negatives = self.negatives(inputs).float()
        out = self.loss(inputs.restored, inputs.gt, negatives)
        return {"cpr": out["cpr"], "cpr_pos": out["pos"], "cpr_neg": out["neg"]}


@register_term("cpr")
def _build_cpr(section, net: nn.Module, cfg) -> Optional[ObjectiveTerm]:
    if not section.enabled:
        return None
    check_supports_cpr(net)
    return CPRTerm(section, next(net.parameters()).device.type)


REFRESH_PREFIX = "refresh."  # checkpoint keys of the refresh rule's state, beside the bank's weights


class SPNTerm(ObjectiveTerm):
    """The Self-Prior guided Negative loss of model contrastive learning, ``−λ·mean_i ||φ(I) − φ(neg_i(x))||₁``
    (MCLIR Eq. 3), with K lagged negative models refreshed by the rule ``loss.spn.refresh`` names
    (:mod:`cplir.engine.negative_refresh`)."""

    def __init__(self, section, net: nn.Module, seed: int):
        super().__init__()
        self.bank = NegativeModelBank(net, section.intervals, section.decays, section.start, seed=seed)
        self.bank.to(next(net.parameters()).device)
        self.refresh = build_refresh_rule(section)
        self.loss = ModelContrastiveLoss(lam=section.lam, layers=section.layers, layer_weights=section.layer_weights,
                                         vgg=_vgg_spec(section.vgg_weights))

    def forward(self, inputs: StepInputs) -> Dict[str, torch.Tensor]:
        out = self.loss(inputs.restored, [o.float() for o in self.bank.forward_all(inputs.lq)])
        # After the negatives of this step: a model the rule refreshes now serves from the next step on.
        logged = self.refresh.during_step(self.bank, inputs.net, inputs.restored, inputs.gt)
        return {"spn": out["spn"], "spn_neg": out["neg"], **logged}

    def after_step(self, iteration: int, net: nn.Module) -> None:
        self.refresh.after_step(self.bank, iteration, net)

    def checkpoint_state(self) -> Optional[dict]:
        rule = {f"{REFRESH_PREFIX}{key}": value for key, value in self.refresh.state_dict().items()}
        return {**self.bank.state_dict(), **rule}

    def restore_state(self, state: dict) -> None:
        self.bank.load_state_dict({k: v for k, v in state.items() if not k.startswith(REFRESH_PREFIX)})
        rule = {k[len(REFRESH_PREFIX):]: v for k, v in state.items() if k.startswith(REFRESH_PREFIX)}
        expected = self.refresh.state_dict().keys()
        if rule.keys() != expected:
            raise CheckpointError(f"the checkpoint's SPN refresh state holds {sorted(rule) or 'nothing'}, the "
                                  f"configured loss.spn.refresh needs {sorted(expected) or 'nothing'}; resume with "
                                  "the loss.spn.refresh the run was trained with")
        self.refresh.load_state_dict(rule)


@register_term("spn")
def _build_spn(section, net: nn.Module, cfg) -> Optional[ObjectiveTerm]:
    return SPNTerm(section, net, seed=cfg.seed + 1) if section.enabled else None
