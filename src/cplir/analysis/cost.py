"""Parameters, FLOPs and CPU latency of dense and sparse prompts with P = 5, 10, 15 components (CPL Table IX).

FLOPs are counted by ``torch.utils.flop_counter`` (matrix products and convolutions, 2 FLOPs per multiply-add)
for one 1×3×128×128 image. That count separates dense and sparse prompts only by the mixing of the components
at the prompt resolution, a few million FLOPs in a network of tens of billions: by operation count the two cost
the same. :func:`render_flops` gives what a dense block would pay per component if it processed every component
at the feature resolution (bilinear resize and its 3×3 convolution before mixing), the cost that dense figures
growing visibly with P would require.
"""

import functools
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cplir.models import build_model

PROMPT_COUNTS = (5, 10, 15)
INPUT_SIZE = (1, 3, 128, 128)
PUBLISHED = {"name": "promptir", "args": {}}  # the published PromptIR configuration (the registry's defaults)
# PromptIR registers one name per prompt kind; other backbones take ``prompt="dense"|"sparse"``.
PROMPT_KIND_NAMES = {"dense": "promptir", "sparse": "cplir"}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, size: Sequence[int] = INPUT_SIZE) -> int:
    """FLOPs of one forward pass of ``model`` (eval mode) on an input of ``size`` on the model's device (the meta
    device works: nothing is computed)."""
    model.eval()
    x = torch.zeros(*size, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


@torch.no_grad()
def cpu_latency_ms(model: nn.Module, size: Sequence[int] = INPUT_SIZE, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` forward passes on the CPU after one warm-up (milliseconds)."""
    model = model.eval().cpu()
    x = torch.rand(*size, generator=torch.Generator().manual_seed(0))
    model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def prompt_variant(spec: dict, kind: str, num_prompts: int) -> dict:
    """The spec of ``spec``'s network with ``kind`` ("dense"/"sparse") prompts of ``num_prompts`` components."""
    args = {**spec.get("args", {}), "num_prompts": num_prompts}
    if spec["name"] in PROMPT_KIND_NAMES.values():
        return {"name": PROMPT_KIND_NAMES[kind], "args": args}
    return {"name": spec["name"], "args": {**args, "prompt": kind}}


def _build(spec: dict, device: str) -> nn.Module:
    with torch.device(device):
        torch.manual_seed(0)
        return build_model(spec["name"], **spec["args"])


@torch.no_grad()
def render_flops(model: nn.Module, size: Sequence[int] = INPUT_SIZE) -> int:
    """FLOPs of rendering one prompt component at the feature resolution in every prompt block (the 3×3
    convolution of the resized component; the resize itself is not counted)."""
    shapes: Dict[str, torch.Size] = {}

    def recorder(name):
        def record(module, args, out):  # returns None: the output is kept
            shapes[name] = out.prompt.shape
        return record

    hooks = [block.register_forward_hook(recorder(name)) for name, block in model.prompt_blocks().items()]
    try:
        count_flops(model, size)
    finally:
        for hook in hooks:
            hook.remove()
    total = 0
    for name, shape in shapes.items():
        conv = model.prompt_blocks()[name].conv3x3
        with FlopCounterMode(display=False) as counter:
            conv(torch.zeros(1, *shape[1:], device=conv.weight.device))
        total += counter.get_total_flops()
    return total


def cost_table(spec: dict, prompt_counts: Sequence[int] = PROMPT_COUNTS, size: Sequence[int] = INPUT_SIZE,
               latency_repeats: int = 3) -> List[dict]:
    """Rows ``{"prompts", "num_prompts", "parameters", "flops", "latency_ms"}`` for dense and sparse prompts with
    each P, of the network ``spec`` describes (its other arguments unchanged). ``latency_repeats`` 0 skips the
    latency (None in the rows); the FLOPs are counted on the meta device."""
    rows = []
    for kind in ("dense", "sparse"):
        for p in prompt_counts:
            variant = prompt_variant(spec, kind, p)
            meta = _build(variant, "meta")
            latency: Optional[float] = (cpu_latency_ms(_build(variant, "cpu"), size, latency_repeats)
                                        if latency_repeats > 0 else None)
            rows.append({"prompts": kind, "num_prompts": p, "parameters": count_parameters(meta),
                         "flops": count_flops(meta, size), "latency_ms": latency})
    return rows


@functools.lru_cache(maxsize=None)  # a constant of the code; counting the published model takes seconds
def published_size_note(size: Tuple[int, ...] = INPUT_SIZE) -> dict:
    """FLOPs of the published PromptIR with dense and sparse prompts (P = 5), their difference, and the FLOPs of
    rendering one component at the feature resolution in every block (:func:`render_flops`), all at ``size``."""
    dense = _build(prompt_variant(PUBLISHED, "dense", 5), "meta")
    flops = {kind: count_flops(_build(prompt_variant(PUBLISHED, kind, 5), "meta"), size)
             for kind in ("dense", "sparse")}
    return {"dense_flops": flops["dense"], "sparse_flops": flops["sparse"],
            "relative_difference": (flops["dense"] - flops["sparse"]) / flops["sparse"],
            "render_flops_per_component": render_flops(dense, size)}

