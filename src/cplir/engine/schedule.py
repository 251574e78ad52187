"""Learning-rate schedules in closed form: pure functions of the iteration, so resuming needs no scheduler state.

* ``cosine``: linear warm-up then one half cosine (PromptIR's ``LinearWarmupCosineAnnealingLR``, stepped per
  iteration). PromptIR's published code steps its Lightning scheduler one epoch late (its first epochs run at
  lr 0); this is the intended closed form instead.
* ``cosine_restart``: cosine annealing with restarts, BasicSR's ``CosineAnnealingRestartLR`` (the published CPLIR
  options: periods 4 × 250,000, restart weights 1, eta_min 1e-7).
* ``cosine_annealing``: torch's ``CosineAnnealingLR``, which keeps following its cosine past ``T_max`` (the lr
  climbs back to the base rate at ``2·T_max``: a period of ``2·T_max``). The published MCLIR FFANet options train
  500,000 iterations under ``T_max`` 100,000 (their ``TrueCosineAnnealingLR``), so the lr rises and falls 2.5 times.
* ``multistep``: the base rate times ``gamma`` for every milestone reached (torch's ``MultiStepLR``; BasicSR's
  ``MultiStepRestartLR`` without restarts): EDSR, SwinIR and IDT train with it.

:func:`learning_rate` picks the schedule named by ``train.optim.schedule`` from :data:`SCHEDULES`.
"""

import bisect
import math
from typing import Callable, Dict, Sequence


def warmup_cosine_lr(iteration: int, base_lr: float, warmup_iters: int, total_iters: int,
                     min_lr: float = 0.0) -> float:
    """Learning rate at ``iteration`` (0-based): linear from ~0 to ``base_lr`` over ``warmup_iters``, then a
    half cosine down to ``min_lr`` at ``total_iters`` (held at ``min_lr`` beyond it)."""
    if warmup_iters > 0 and iteration < warmup_iters:
        return base_lr * (iteration + 1) / warmup_iters
    span = max(1, total_iters - warmup_iters)
    progress = min(1.0, (iteration - warmup_iters) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def cosine_restart_lr(iteration: int, base_lr: float, periods: Sequence[int], restart_weights: Sequence[float],
                      min_lr: float = 0.0, warmup_iters: int = 0) -> float:
    """BasicSR's ``CosineAnnealingRestartLR`` at ``iteration`` (0-based; BasicSR's scheduler count ``last_epoch``
    equals it, because its training loop steps the scheduler from its second iteration on).

    Cycle i covers the iterations ``(c_{i-1}, c_i]`` with ``c_i`` the cumulative sum of ``periods`` (the first
    cycle also holds iteration 0): ``lr = min_lr + w_i · ½(base_lr − min_lr)(1 + cos(π (t − c_{i-1}) / p_i))``.
    So the lr reaches ``min_lr`` at ``t = c_i`` and restarts at ``c_i + 1``; beyond the last cycle it stays at
    ``min_lr``. A linear warm-up, if any, replaces the first ``warmup_iters`` values (BasicSR's
    ``warmup_iter``: ``base_lr · (t + 1) / warmup_iters``) while the cycles keep counting from iteration 0.
    """
    if warmup_iters > 0 and iteration < warmup_iters:
        return base_lr * (iteration + 1) / warmup_iters
    start = 0
    for period, weight in zip(periods, restart_weights):
        if iteration <= start + period:
            return min_lr + weight * 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * (iteration - start)
                                                                               / period))
        start += period
    return min_lr


def periodic_cosine_lr(iteration: int, base_lr: float, t_max: int, min_lr: float = 0.0,
                       warmup_iters: int = 0) -> float:
    """torch's ``CosineAnnealingLR`` in closed form: ``min_lr + ½(base_lr − min_lr)(1 + cos(π t / t_max))`` for every
    ``t`` (periodic beyond ``t_max``); a linear warm-up, if any, replaces the first ``warmup_iters`` values."""
    if warmup_iters > 0 and iteration < warmup_iters:
        return base_lr * (iteration + 1) / warmup_iters
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * iteration / t_max))


def multistep_lr(iteration: int, base_lr: float, milestones: Sequence[int], gamma: float,
                 warmup_iters: int = 0) -> float:
    """``base_lr · gamma^n``, n the number of milestones ``<= iteration`` (torch's ``MultiStepLR`` with its step
    count equal to the 0-based iteration, as BasicSR steps it); warm-up as :func:`periodic_cosine_lr`."""
    if warmup_iters > 0 and iteration < warmup_iters:
        return base_lr * (iteration + 1) / warmup_iters
    return base_lr * gamma ** bisect.bisect_right(sorted(milestones), iteration)


def _cosine(iteration: int, optim, iterations: int) -> float:
    return warmup_cosine_lr(iteration, optim.lr, optim.warmup_iters, optim.schedule_iters or iterations,
                            optim.min_lr)


def _cosine_restart(iteration: int, optim, iterations: int) -> float:
    weights = optim.restart_weights or [1.0] * len(optim.periods)
    return cosine_restart_lr(iteration, optim.lr, optim.periods, weights, optim.min_lr, optim.warmup_iters)


def _cosine_annealing(iteration: int, optim, iterations: int) -> float:
    return periodic_cosine_lr(iteration, optim.lr, optim.schedule_iters or iterations, optim.min_lr,
                              optim.warmup_iters)


def _multistep(iteration: int, optim, iterations: int) -> float:
    return multistep_lr(iteration, optim.lr, optim.milestones, optim.gamma, optim.warmup_iters)


SCHEDULES: Dict[str, Callable[..., float]] = {"cosine": _cosine, "cosine_restart": _cosine_restart,
                                              "cosine_annealing": _cosine_annealing, "multistep": _multistep}


def learning_rate(iteration: int, optim, iterations: int) -> float:
    """The lr at ``iteration`` under the schedule of ``optim`` (a ``train.optim`` config section) for a run of
    ``iterations`` iterations."""
    return SCHEDULES[optim.schedule](iteration, optim, iterations)
