"""Backbones, prompt modules, the model registry and checkpoint import."""

from cplir.models.dehazeformer import DehazeFormer, dehazeformer_preset
from cplir.models.drsformer import DRSformer
from cplir.models.edsr import EDSR
from cplir.models.ffanet import FFANet
from cplir.models.fsnet import FSNet
from cplir.models.idt import IDT
from cplir.models.mambair import MambaIRUNet
from cplir.models.model_file import load_model, read_model_file, save_model
from cplir.models.nafnet import NAFNet
from cplir.models.prompt_block import PromptGenBlock
from cplir.models.prompted import (PromptContext, PromptedBackbone, PromptOutput, check_input_size,
                                   check_supports_cpr, sparse_prompt_blocks)
from cplir.models.promptir import EncoderFeatures, PromptIR
from cplir.models.registry import build_model, build_model_skeleton, list_models, register_model
from cplir.models.restormer import Restormer
from cplir.models.sparse_prompt import SparsePromptModule
from cplir.models.swinir import SwinIR
from cplir.models.weights import load_weights, read_state_dict


@register_model("promptir")
def promptir(**kwargs) -> PromptIR:
    """PromptIR with dense prompt blocks (NeurIPS 2023)."""
    return PromptIR(prompt="dense", **kwargs)


@register_model("cplir")
def cplir(**kwargs) -> PromptIR:
    """PromptIR whose prompt blocks are Sparse Prompt Modules (CPL)."""
    return PromptIR(prompt="sparse", **kwargs)


@register_model("ffanet")
def ffanet(gps: int = 3, blocks: int = 19, input_norm: bool = False) -> FFANet:
    """FFA-Net (AAAI 2020) as configured by MCLIR: 3 groups of 19 blocks; ``input_norm``: the published input
    normalisation inside the network."""
    return FFANet(gps=gps, blocks=blocks, input_norm=input_norm)


@register_model("dehazeformer")
def dehazeformer(**kwargs) -> DehazeFormer:
    """DehazeFormer (TIP 2023) with its constructor's keywords (defaults: the -B configuration)."""
    return DehazeFormer(**kwargs)


def _register_dehazeformer_preset(size: str) -> None:
    def build(**kwargs) -> DehazeFormer:
        return dehazeformer_preset(size, **kwargs)

    build.__doc__ = f"DehazeFormer-{size.upper()}, the published preset; keywords override it."
    register_model(f"dehazeformer_{size}")(build)


for _size in "tsbdwml":
    _register_dehazeformer_preset(_size)


@register_model("swinir")
def swinir(**kwargs) -> SwinIR:
    """SwinIR (ICCVW 2021) with the official constructor's keywords."""
    return SwinIR(**kwargs)


@register_model("swinir_light_x4")
def swinir_light_x4(**kwargs) -> SwinIR:
    """Lightweight ×4 SwinIR (the paper's lightweight SR model, retrained by MCLIR); keywords override it."""
    config = dict(upscale=4, img_size=64, window_size=8, img_range=1.0, embed_dim=60, depths=(6, 6, 6, 6),
                  num_heads=(6, 6, 6, 6), mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv")
    return SwinIR(**{**config, **kwargs})


@register_model("idt")
def idt(**kwargs) -> IDT:
    """IDT (TPAMI 2022) with its constructor's keywords; defaults are its deraining training configuration."""
    return IDT(**kwargs)


@register_model("edsr_baseline")
def edsr_baseline(**kwargs) -> EDSR:
    """EDSR-baseline (16 blocks, 64 features) in BasicSR's layout; ``upscale`` 2, 3 or 4 (default 4)."""
    return EDSR(**kwargs)


__all__ = ["PromptIR", "Restormer", "NAFNet", "PromptGenBlock", "SparsePromptModule", "EncoderFeatures",
           "PromptedBackbone", "PromptContext", "PromptOutput", "check_input_size", "check_supports_cpr",
           "sparse_prompt_blocks", "build_model", "build_model_skeleton", "list_models", "register_model",
           "load_weights", "read_state_dict", "load_model", "save_model", "read_model_file", "FFANet", "DehazeFormer",
           "SwinIR", "IDT", "EDSR", "DRSformer", "FSNet", "MambaIRUNet"]
