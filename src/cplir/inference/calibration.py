"""Which degradation an image shows, read from the prompt components a model selected for it.

A model file may carry a routing calibration (:mod:`cplir.models.model_file`), measured on the validation sets
at the end of training: for each prompt block and each task, the frequency with which each component was the
block's top-1 selection,

    {"prompt3": {"derain": [0.02, 0.91, 0.05, 0.02, 0.0], "dehaze": [...], ...}, "prompt2": {...}, ...}

The inference rule is naive Bayes over blocks. With c_b the component block b selected (its arg-max),

    P(task | c) ∝ Π_b f̃_b,task[c_b],    f̃ = max(f, floor) renormalised over the components,

and a uniform prior over tasks. The floor makes a component never seen with a task in calibration rare rather
than impossible (one unusual block then does not veto a task). Blocks see the same image, so they are not
independent given the task and the probabilities come out overconfident: the ranking is the reliable part.
"""

import math
from typing import Dict, List, Mapping, Sequence, Tuple

import torch
from torch import nn

from cplir.errors import CheckpointError

Calibration = Mapping[str, Mapping[str, Sequence[float]]]
DEFAULT_FLOOR = 0.01


def check_calibration(calibration: Calibration, model: nn.Module) -> Dict[str, Dict[str, List[float]]]:
    """``calibration`` as plain lists, after checking that it fits ``model``'s prompt blocks (names and
    component counts); raises :class:`CheckpointError` otherwise."""
    blocks = model.prompt_blocks() if hasattr(model, "prompt_blocks") else {}
    checked = {}
    if not isinstance(calibration, Mapping) or not calibration:
        raise CheckpointError("the model file's routing calibration is not a {block: {task: [frequencies]}} "
                              "table; re-export it or drop it")
    for name, per_task in calibration.items():
        if name not in blocks:
            raise CheckpointError(f"the routing calibration names prompt block {name!r}, which this model does not "
                                  f"have (its blocks: {list(blocks)}); it belongs to another model")
        count = blocks[name].num_prompts
        if not isinstance(per_task, Mapping) or not per_task:
            raise CheckpointError(f"routing calibration of block {name!r} is not a {{task: [frequencies]}} table")
        checked[name] = {}
        for task, freqs in per_task.items():
            freqs = [float(f) for f in freqs]
            if len(freqs) != count or min(freqs) < 0 or sum(freqs) <= 0:
                raise CheckpointError(f"routing calibration of block {name!r}, task {task!r}: expected {count} "
                                      f"non-negative frequencies, got {freqs}")
            checked[name][str(task)] = freqs
    return checked


def selected_components(routing: Mapping[str, torch.Tensor]) -> Dict[str, int]:
    """The top-1 component of each block from routing probabilities ``{block: (P,) or (1, P)}``."""
    return {name: int(probs.reshape(-1).argmax()) for name, probs in routing.items()}


def degradation_posterior(selected: Mapping[str, int], calibration: Calibration,
                          floor: float = DEFAULT_FLOOR) -> List[Tuple[str, float]]:
    """``[(task, probability), ...]`` most likely first, by the rule of the module docstring.

    Only blocks present in both ``selected`` and ``calibration`` vote, over the tasks all of them were
    calibrated on; empty when there is no such block or task.
    """
    blocks = [b for b in selected if b in calibration]
    if not blocks:
        return []
    tasks = sorted(set.intersection(*(set(calibration[b]) for b in blocks)))
    log_like = {}
    for task in tasks:
        total = 0.0
        for b in blocks:
            freqs = [max(float(f), floor) for f in calibration[b][task]]
            total += math.log(freqs[selected[b]] / sum(freqs))
        log_like[task] = total
    if not log_like:
        return []
    top = max(log_like.values())
    weights = {t: math.exp(v - top) for t, v in log_like.items()}
    norm = sum(weights.values())
    return sorted(((t, w / norm) for t, w in weights.items()), key=lambda tp: (-tp[1], tp[0]))

