"""Backbones, prompt modules, the model registry and checkpoint import."""

from cplir.models.prompt_block import PromptGenBlock
from cplir.models.promptir import EncoderFeatures, PromptIR, check_input_size
from cplir.models.registry import build_model, list_models, register_model
from cplir.models.sparse_prompt import SparsePromptModule
from cplir.models.weights import load_weights, read_state_dict


@register_model("promptir")
def promptir(**kwargs) -> PromptIR:
    """PromptIR with dense prompt blocks (NeurIPS 2023)."""
    return PromptIR(prompt="dense", **kwargs)


@register_model("cplir")
def cplir(**kwargs) -> PromptIR:
    """PromptIR whose prompt blocks are Sparse Prompt Modules (CPL)."""
    return PromptIR(prompt="sparse", **kwargs)


__all__ = ["PromptIR", "PromptGenBlock", "SparsePromptModule", "EncoderFeatures", "check_input_size",
           "build_model", "list_models", "register_model", "load_weights", "read_state_dict"]
