"""What the prompt blocks selected: routing entropy, selection frequency, task–prompt mutual information, and the
routing calibration stored with a trained model (CPL Sec. IV-E: Figs. 4 and 11 and the entropy analysis).

A routing table holds, for each prompt block over N images, the routing probabilities (N, P), the selected
components (N, k) and the task of every image. The statistics are pure functions of those arrays:

* **routing entropy** ``H(p_i) = −Σ_c p_i[c]·log2 p_i[c]`` of each image's softmax, averaged per task (bits; the
  maximum is log2 P, 2.32 bits for P = 5). The paper measures ≈2.1–2.2 bits for PromptIR's dense prompts;
* **selection frequency** per task: the share of that task's images selecting each component (an image with
  top-k selects k components and counts 1/k for each; a dense block "selects" its arg-max), and its entropy;
* **mutual information** ``I(T; S)`` between the task T of an image and its selected component S, divided by the
  task entropy ``H(T)``: 1.0 when every task has components of its own (the selection names the task), 0 when the
  selection does not depend on the task. ``mutual_information_soft`` is the same with S drawn from the routing
  probabilities instead of the selection (what a dense block actually mixes).

:func:`collect_routing` runs a model over test sets to build the table; :func:`routing_calibration` is what the
trainer stores in its checkpoints at the end of training and what model files carry
(:mod:`cplir.models.model_file`): ``{block: {task: [selection frequency of each component]}}``.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from cplir.inference.padding import model_multiple, pad_to_multiple


# --- statistics on arrays -----------------------------------------------------------------------------------------
def entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits of distributions along ``axis`` (normalised first; 0·log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum(axis=axis, keepdims=True)
    logs = np.log2(np.where(p > 0, p, 1.0))
    return 0.0 - (p * logs).sum(axis=axis)  # 0.0 - x: a certain choice is 0 bits, not -0


def task_order(tasks: Sequence[str]) -> List[str]:
    """The distinct tasks in order of first appearance (as ``str``: JSON and checkpoint keys)."""
    return list(dict.fromkeys(str(t) for t in tasks))


def per_task_mean(values: np.ndarray, tasks: Sequence[str]) -> Dict[str, np.ndarray]:
    """Mean of ``values`` (N, ...) over each task's rows."""
    tasks = np.asarray(tasks)
    return {t: np.asarray(values)[tasks == t].mean(axis=0) for t in task_order(tasks)}


def selection_matrix(selected: np.ndarray, num_prompts: int) -> np.ndarray:
    """(N, P): each image's share of every component, 1/k for each of its k selected components."""
    selected = np.asarray(selected, dtype=np.int64).reshape(len(selected), -1)
    shares = np.zeros((len(selected), num_prompts))
    np.add.at(shares, (np.arange(len(selected))[:, None], selected), 1.0 / selected.shape[1])
    return shares


def joint_table(shares: np.ndarray, tasks: Sequence[str]) -> np.ndarray:
    """Joint distribution (T, P) of task and component from per-image shares (N, P) (tasks in first-seen order)."""
    tasks = np.asarray(tasks)
    counts = np.stack([np.asarray(shares)[tasks == t].sum(axis=0) for t in task_order(tasks)])
    return counts / counts.sum()


def mutual_information_bits(joint: np.ndarray) -> float:
    """``I(T; S)`` in bits of a joint table (T, P) of counts or probabilities."""
    joint = np.asarray(joint, dtype=np.float64)
    joint = joint / joint.sum()
    independent = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log2(joint[nonzero] / independent[nonzero])).sum())


def normalised_mutual_information(joint: np.ndarray) -> Optional[float]:
    """``I(T; S) / H(T)`` in [0, 1]; None when there is a single task (H(T) = 0: nothing to explain)."""
    joint = np.asarray(joint, dtype=np.float64)
    h_task = float(entropy_bits(joint.sum(axis=1)))
    return None if h_task <= 1e-12 else mutual_information_bits(joint) / h_task


def block_statistics(probs: np.ndarray, selected: np.ndarray, tasks: Sequence[str]) -> dict:
    """Every statistic of one prompt block over N images: probs (N, P), selected (N, k), tasks (N,).

    Per-task values are keyed by task; ``entropy_bits`` also has ``"all"`` (the mean over images). Arrays are
    returned as lists so the result serialises to JSON as it is.
    """
    probs = np.asarray(probs, dtype=np.float64)
    num_prompts = probs.shape[1]
    shares = selection_matrix(selected, num_prompts)
    frequency = per_task_mean(shares, tasks)
    entropy = entropy_bits(probs)
    hard, soft = joint_table(shares, tasks), joint_table(probs, tasks)
    return {
        "num_prompts": num_prompts,
        "top_k": int(np.asarray(selected).reshape(len(probs), -1).shape[1]),
        "images": {t: int(np.sum(np.asarray(tasks) == t)) for t in task_order(tasks)},
        "max_entropy_bits": float(np.log2(num_prompts)),
        "entropy_bits": {**{t: float(v) for t, v in per_task_mean(entropy, tasks).items()},
                         "all": float(entropy.mean())},
        "mean_probability": {t: v.tolist() for t, v in per_task_mean(probs, tasks).items()},
        "selection_frequency": {t: v.tolist() for t, v in frequency.items()},
        "selection_entropy_bits": {t: float(entropy_bits(v)) for t, v in frequency.items()},
        "task_entropy_bits": float(entropy_bits(hard.sum(axis=1))),
        "mutual_information_bits": mutual_information_bits(hard),
        "mutual_information": normalised_mutual_information(hard),
        "mutual_information_soft": normalised_mutual_information(soft),
    }


# --- routing tables from a model ----------------------------------------------------------------------------------
@dataclass
class RoutingTable:
    """Routing of every prompt block over N images: ``probs[block]`` (N, P), ``selected[block]`` (N, k), the task
    and key of each image, in the order the images were run."""

    tasks: List[str] = field(default_factory=list)
    keys: List[str] = field(default_factory=list)
    probs: Dict[str, np.ndarray] = field(default_factory=dict)
    selected: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def blocks(self) -> List[str]:
        return list(self.probs)

    def statistics(self) -> Dict[str, dict]:
        """:func:`block_statistics` of every block."""
        return {b: block_statistics(self.probs[b], self.selected[b], self.tasks) for b in self.blocks}

    def calibration(self) -> Dict[str, Dict[str, List[float]]]:
        """``{block: {task: [selection frequency of each component]}}`` (see the module docstring)."""
        return {b: {t: v.tolist() for t, v in per_task_mean(selection_matrix(self.selected[b],
                                                                              self.probs[b].shape[1]),
                                                             self.tasks).items()}
                for b in self.blocks}


@torch.no_grad()
def collect_routing(model: nn.Module, datasets: Mapping[str, torch.utils.data.Dataset],
                    device: torch.device = torch.device("cpu"), pad_multiple: Optional[int] = None,
                    pad_mode: str = "reflect") -> RoutingTable:
    """Run ``model`` (eval mode) over every image of ``datasets`` (samples with ``lq`` (C, H, W), ``task``,
    ``key``), padded as evaluation pads (``pad_multiple``, ``pad_mode``), and record what each prompt block
    selected. Tasks are prefixed by the set name when there are several sets, as
    :func:`cplir.engine.evaluation.evaluate` does."""
    table = RoutingTable()
    if not getattr(model, "prompt_names", ()):
        return table
    model.eval()
    multiple = model_multiple(model, pad_multiple)
    probs: Dict[str, list] = {}
    selected: Dict[str, list] = {}
    for set_name, dataset in datasets.items():
        for index in range(len(dataset)):
            sample = dataset[index]
            x = pad_to_multiple(sample["lq"][None].to(device), multiple, pad_mode)
            _, record = model(x, return_routing=True)
            table.tasks.append(sample["task"] if len(datasets) == 1 else f"{set_name}/{sample['task']}")
            table.keys.append(sample["key"])
            for block, r in record.items():
                probs.setdefault(block, []).append(r["probs"][0].float().cpu().numpy())
                selected.setdefault(block, []).append(r["indices"][0].cpu().numpy())
    table.probs = {b: np.stack(v) for b, v in probs.items()}
    table.selected = {b: np.stack(v) for b, v in selected.items()}
    return table


def routing_calibration(model: nn.Module, datasets: Mapping[str, torch.utils.data.Dataset],
                        device: torch.device = torch.device("cpu"), pad_multiple: Optional[int] = None,
                        pad_mode: str = "reflect") -> Optional[Dict[str, Dict[str, List[float]]]]:
    """The calibration of a trained model on ``datasets`` (None for a model without prompt blocks)."""
    table = collect_routing(model, datasets, device, pad_multiple, pad_mode)
    return table.calibration() if table.blocks else None
