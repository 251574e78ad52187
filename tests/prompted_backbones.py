"""Tiny configurations of the published backbones that take decoder prompts, and the golden-model helper, shared
by their tests (a module, not a test file)."""

import torch

from cplir.models import build_model
from golden import fill_deterministic, load_golden, state_shapes

CPR = {"loss__cpr__enabled": True, "loss__cpr__vgg_weights": "random", "loss__cpr__num_negatives": 2,
       "loss__cpr__layers": ["relu1_1"], "loss__cpr__layer_weights": [1.0]}

TINY = {
    "restormer": dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2],
                      prompt_sizes=[8, 4, 2]),
    "nafnet": dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 1, 1], prompt_sizes=[8, 4, 2]),
    "drsformer": dict(dim=8, num_blocks=[1, 1, 1, 1], heads=[1, 2, 2, 4], prompt_sizes=[8, 4, 2]),
    "fsnet": dict(num_res=4, base_channel=16, prompt_sizes=[8, 4]),
    "mambair": dict(dim=32, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, mlp_ratio=1.0, d_state=4,
                    prompt_dims=[8, 16, 24], prompt_sizes=[8, 4, 2]),
}


def tiny(name, prompt, **kwargs):
    """The tiny ``name`` in eval mode, seeded, with ``prompt`` None / "dense" / "sparse"."""
    torch.manual_seed(0)
    args = dict(TINY[name], **kwargs)
    if prompt is None:
        args = {k: v for k, v in args.items() if not k.startswith("prompt_")}
    return build_model(name, prompt=prompt, **args).eval()


def golden_model(reference: str, model_name: str):
    """The model of golden file ``reference`` with deterministic weights, after checking its published layout."""
    ref = load_golden(reference)
    model = build_model(model_name, **ref["kwargs"])
    assert state_shapes(model) == ref["shapes"]  # the published keys, each with the published shape
    return fill_deterministic(model).eval(), ref
