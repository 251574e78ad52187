"""Learning-rate schedule: linear warm-up then cosine, in closed form.

A pure function of the iteration, so resuming needs no scheduler state. PromptIR's published code steps its
Lightning scheduler one epoch late (its first epochs run at lr 0); this is the intended closed form instead.
"""

import math


def warmup_cosine_lr(iteration: int, base_lr: float, warmup_iters: int, total_iters: int,
                     min_lr: float = 0.0) -> float:
    """Learning rate at ``iteration`` (0-based): linear from ~0 to ``base_lr`` over ``warmup_iters``, then a
    half cosine down to ``min_lr`` at ``total_iters`` (held at ``min_lr`` beyond it)."""
    if warmup_iters > 0 and iteration < warmup_iters:
        return base_lr * (iteration + 1) / warmup_iters
    span = max(1, total_iters - warmup_iters)
    progress = min(1.0, (iteration - warmup_iters) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
