"""When MCLIR's negative models are refreshed: the rules selectable as ``loss.spn.refresh`` (docs/design.md §4).

* ``interval``: the published configuration. Negative model i is refreshed every ``intervals[i]`` iterations,
  after the optimiser step, with ``neg_i = d_i·neg_i + (1−d_i)·net`` (:meth:`NegativeModelBank.step`).
* ``adaptive``: the adaptive variant of the published code (Aitical/MCLIR,
  ``ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP``). At every step, after the negatives' outputs for the
  loss were computed, it measures the spread of the output error, ``mean_b std(2·(I_b − y_b))`` (the unbiased
  standard deviation over C, H, W of each sample's gradient of the squared error, averaged over the batch). When
  the spread exceeds ``threshold`` (published 0.022), ONE negative model, the next in round-robin order, is
  refreshed from the weights that produced this step's output (before the optimiser step) with a small decay
  (published 0.001: ``neg = 0.001·neg + 0.999·net``), so the new snapshot serves from the next step on. There is no
  periodic refresh; K is the length of ``intervals``, as the published code takes it from ``neg_iter``.

A rule keeps what an exact resume needs in :meth:`RefreshRule.state_dict`: the adaptive rule its refresh count,
which the published code does not save (there, a resumed run restarts the round robin at model 0).
"""

from typing import Any, Callable, Dict, List

import torch
import torch.distributed as dist
from torch import Tensor, nn

from cplir.engine.negative_models import NegativeModelBank

# The published adaptive variant: threshold ``neg_t`` (its default) and the decay of its ``model_neg`` call.
DEFAULT_THRESHOLD = 0.022
DEFAULT_ADAPTIVE_DECAY = 0.001


class RefreshRule:
    """When the models of a :class:`NegativeModelBank` are refreshed (the base class never refreshes)."""

    def during_step(self, bank: NegativeModelBank, net: nn.Module, restored: Tensor, gt: Tensor
                    ) -> Dict[str, Tensor]:
        """Called in each training step once the negatives' outputs are computed, before the optimiser step, with
        the step's restoration (B, C, H, W) and target; returns diagnostics to log."""
        return {}

    def after_step(self, bank: NegativeModelBank, iteration: int, net: nn.Module) -> List[int]:
        """Called after each optimiser step with the new iteration count; returns the indices refreshed."""
        return []

    def state_dict(self) -> Dict[str, Tensor]:
        """What a training checkpoint must hold beyond the bank's weights."""
        return {}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""


class IntervalRefresh(RefreshRule):
    """The published schedule: model i every ``intervals[i]`` iterations, decay ``decays[i]``."""

    def after_step(self, bank: NegativeModelBank, iteration: int, net: nn.Module) -> List[int]:
        return bank.step(iteration, net)


def error_spread(restored: Tensor, gt: Tensor) -> Tensor:
    """``mean_b std(2·(I_b − y_b))`` over (C, H, W) of each sample (unbiased), the adaptive rule's statistic; a
    scalar, without gradient."""
    with torch.no_grad():
        return torch.std(2 * (restored.detach().float() - gt.float()), dim=(-3, -2, -1)).mean()


class AdaptiveRefresh(RefreshRule):
    """Refresh the next negative model (round robin) with ``decay`` whenever the error spread exceeds
    ``threshold`` (module docstring).

    Under DDP the spread is averaged over the processes, so every rank refreshes the same model at the same step
    and the banks stay identical (the published code decides on each GPU's own batch, and its banks drift apart).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, decay: float = DEFAULT_ADAPTIVE_DECAY):
        self.threshold = float(threshold)
        self.decay = float(decay)
        self.refreshes = 0

    def during_step(self, bank: NegativeModelBank, net: nn.Module, restored: Tensor, gt: Tensor
                    ) -> Dict[str, Tensor]:
        spread = error_spread(restored, gt)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(spread, op=dist.ReduceOp.SUM)
            spread /= dist.get_world_size()
        refreshed = bool(spread > self.threshold)
        if refreshed:
            bank.refresh(self.refreshes % len(bank), net, self.decay)
            self.refreshes += 1
        return {"spn_spread": spread, "spn_refreshed": torch.tensor(float(refreshed))}

    def state_dict(self) -> Dict[str, Tensor]:
        return {"refreshes": torch.tensor(self.refreshes, dtype=torch.int64)}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        self.refreshes = int(state["refreshes"])


REFRESH_RULES: Dict[str, Callable[[Any], RefreshRule]] = {
    "interval": lambda section: IntervalRefresh(),
    "adaptive": lambda section: AdaptiveRefresh(section.adaptive_threshold, section.adaptive_decay),
}
"""``loss.spn.refresh`` -> builder of the rule from the ``loss.spn`` config section."""


def build_refresh_rule(section) -> RefreshRule:
    """The refresh rule named by ``section.refresh`` (a ``loss.spn`` config section)."""
    return REFRESH_RULES[section.refresh](section)
