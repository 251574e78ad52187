"""Backbones, prompt modules, the model registry and checkpoint import."""

from cplir.models.model_file import load_model, read_model_file, save_model
from cplir.models.nafnet import NAFNet
from cplir.models.prompt_block import PromptGenBlock
from cplir.models.prompted import (PromptContext, PromptedBackbone, PromptOutput, check_input_size,
                                   check_supports_cpr, sparse_prompt_blocks)
from cplir.models.promptir import EncoderFeatures, PromptIR
from cplir.models.registry import build_model, list_models, register_model
from cplir.models.restormer import Restormer
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


__all__ = ["PromptIR", "Restormer", "NAFNet", "PromptGenBlock", "SparsePromptModule", "EncoderFeatures",
           "PromptedBackbone", "PromptContext", "PromptOutput", "check_input_size", "check_supports_cpr",
           "sparse_prompt_blocks", "build_model", "list_models", "register_model", "load_weights", "read_state_dict",
           "load_model", "save_model", "read_model_file"]
