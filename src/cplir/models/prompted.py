"""The prompted-backbone interface: how a restoration network declares its prompt blocks.

Every backbone in :mod:`cplir.models` subclasses :class:`PromptedBackbone` (with or without prompts). A backbone
implements ``encode`` (everything before the first prompt enters) and ``decode`` (the rest, asking its
:class:`PromptContext` for each prompt). The base class provides ``forward``, which accepts, explicitly per call:

* ``mismatch``: run every prompt block with a mismatched prompt (the negatives of Contrastive Prompt
  Regularisation, CPL Sec. III-C): a ``torch.Generator`` or uniforms ``(n_blocks, B)``;
* ``routing``: impose routing probabilities ``{block: (B, P)}`` instead of computing them (global routing of a
  tiled image, see :mod:`cplir.inference`);
* ``return_routing``: also return what every block selected, ``{block: {"probs": (B, P), "indices": (B, k)}}``.

Routing is never read back from module state, so a negative pass cannot leak into what a caller sees as the
positive pass's selection.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import torch
from torch import nn

from cplir.errors import InputSizeError

Mismatch = Union[None, torch.Generator, torch.Tensor]


class PromptOutput(NamedTuple):
    """What a prompt block returns: the prompt (B, C_p, H, W), routing probabilities (B, P), selected (B, k)."""

    prompt: torch.Tensor
    probs: torch.Tensor
    indices: torch.Tensor


class PromptContext:
    """Per-forward prompt control: mismatch draws and imposed routing in, selected routing out.

    Args:
        blocks: ``{name: prompt block}`` in the order the forward pass uses them.
        mismatch: uniforms (n_blocks, B), one row per block in that order, or None for the normal prompts.
        routing: ``{name: probs (B, P) or (1, P)}`` to use instead of each named block's own router.
    """

    def __init__(self, blocks: Dict[str, nn.Module], mismatch: Optional[torch.Tensor] = None,
                 routing: Optional[Dict[str, torch.Tensor]] = None):
        self.blocks = blocks
        self.order = {name: i for i, name in enumerate(blocks)}
        self.mismatch = mismatch
        self.imposed = dict(routing or {})
        unknown = set(self.imposed) - set(blocks)
        if unknown:
            raise InputSizeError(f"routing given for unknown prompt blocks {sorted(unknown)}; this model's prompt "
                                 f"blocks are {list(blocks)}")
        self.record: Dict[str, Dict[str, torch.Tensor]] = {}

    def prompt(self, name: str, feature: torch.Tensor) -> torch.Tensor:
        """The prompt (B, C_p, H, W) of block ``name`` for ``feature`` (B, lin_dim, H, W); records its routing."""
        u = None if self.mismatch is None else self.mismatch[self.order[name]]
        probs = self.imposed.get(name)
        if probs is not None:
            probs = probs.to(feature.device).expand(feature.shape[0], -1)
        out = self.blocks[name](feature, mismatch=u, probs=probs)
        self.record[name] = {"probs": out.probs.detach(), "indices": out.indices.detach()}
        return out.prompt


class PromptedBackbone(nn.Module):
    """Base class of every restoration network: (B, C, H, W) -> (B, C_out, scale·H, scale·W).

    Class attributes a subclass sets:
        size_multiple: H and W must be multiples of this (the padding wrappers read it from the model).
        scale: output size / input size (1 for restoration, s for super-resolution).
        shares_encoder: ``encode`` does real work that CPR negatives reuse (prompts enter only in ``decode``).
        unused_in_forward: some trainable parameters get no gradient from ``forward`` (e.g. side-output heads
            used only by another method); multi-process training then lets DDP look for them every step.
    Instance attribute ``prompt_names``: attribute names of the prompt blocks in forward order (empty: none).
    """

    size_multiple: int = 1
    scale: int = 1
    shares_encoder: bool = False
    unused_in_forward: bool = False
    prompt_names: Tuple[str, ...] = ()

    # --- what a backbone implements --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Any:
        """The part of the network before any prompt enters (default: nothing, the input itself)."""
        return x

    def decode(self, feats: Any, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        raise NotImplementedError

    # --- provided ---------------------------------------------------------------------------------------------
    def prompt_blocks(self) -> Dict[str, nn.Module]:
        """The prompt blocks by name, in the order the forward pass uses them (empty for a plain network)."""
        return {name: getattr(self, name) for name in self.prompt_names}

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputSizeError` unless ``x`` is (B, C, H, W) with H, W multiples of ``size_multiple``."""
        check_input_size(x, self.size_multiple)

    def context(self, batch: int, mismatch: Mismatch = None,
                routing: Optional[Dict[str, torch.Tensor]] = None) -> PromptContext:
        """A :class:`PromptContext` for a batch of ``batch`` images (draws uniforms from a generator)."""
        blocks = self.prompt_blocks()
        if isinstance(mismatch, torch.Generator):
            mismatch = self.draw_mismatch(batch, mismatch)
        if mismatch is not None:
            if not blocks:
                raise InputSizeError(f"{type(self).__name__} has no prompt blocks, so it has no mismatched prompts")
            if tuple(mismatch.shape) != (len(blocks), batch):
                raise InputSizeError(f"mismatch draws must have shape ({len(blocks)}, {batch}) (one row per prompt "
                                     f"block), got {tuple(mismatch.shape)}")
        return PromptContext(blocks, mismatch, routing)

    def draw_mismatch(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Uniforms (n_blocks, B) choosing each block's mismatched component for each sample."""
        return torch.rand(len(self.prompt_names), batch, generator=generator, device=generator.device)

    def forward(self, x: torch.Tensor, mismatch: Mismatch = None, routing: Optional[Dict[str, torch.Tensor]] = None,
                return_routing: bool = False, return_features: bool = False):
        """Restore ``x`` (B, C, H, W).

        Returns the output, followed by the routing dict when ``return_routing`` and by the encoder features when
        ``return_features`` (so a trainer decodes negatives from the same encoder pass while the positive pass goes
        through a DDP wrapper's ``forward``).
        """
        self.check_input(x)
        ctx = self.context(x.shape[0], mismatch, routing)
        feats = self.encode(x)
        out = self.decode(feats, x, ctx)
        if not (return_routing or return_features):
            return out
        extra = ((ctx.record,) if return_routing else ()) + ((feats,) if return_features else ())
        return (out, *extra)

    def route(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Routing probabilities ``{block: (B, P)}`` of the normal forward pass (computed without gradient)."""
        with torch.no_grad():
            _, record = self.forward(x, return_routing=True)
        return {name: r["probs"] for name, r in record.items()}


def check_input_size(x: torch.Tensor, multiple: int) -> None:
    """Raise :class:`InputSizeError` unless ``x`` is (B, C, H, W) with H and W multiples of ``multiple``."""
    if x.dim() != 4:
        raise InputSizeError(f"expected a batch of images (B, C, H, W), got a tensor of shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if multiple > 1 and (h % multiple or w % multiple):
        raise InputSizeError(
            f"image size {h}x{w} is not a multiple of {multiple}: pad the input first with "
            f"cplir.inference.pad_to_multiple(x, {multiple}) and crop the output back to {h}x{w}")


def sparse_prompt_blocks(model: nn.Module) -> Dict[str, nn.Module]:
    """The model's Sparse Prompt Modules (empty when it has none or is not a :class:`PromptedBackbone`)."""
    from cplir.models.sparse_prompt import SparsePromptModule

    if not isinstance(model, PromptedBackbone):
        return {}
    return {n: b for n, b in model.prompt_blocks().items() if isinstance(b, SparsePromptModule)}


def check_supports_cpr(model: nn.Module, what: str = "loss.cpr") -> None:
    """Contrastive Prompt Regularisation needs every prompt block sparse with components outside the top-k."""
    from cplir.errors import ConfigError

    blocks = model.prompt_blocks() if isinstance(model, PromptedBackbone) else {}
    sparse = sparse_prompt_blocks(model)
    if not blocks or len(sparse) != len(blocks):
        raise ConfigError(f"{what} needs a model whose prompt blocks are all Sparse Prompt Modules; "
                          f"{type(model).__name__} has {len(blocks)} prompt blocks, {len(sparse)} sparse "
                          "(use e.g. model.name: cplir, or prompt: sparse for another backbone)")
    for name, block in sparse.items():
        if block.top_k >= block.num_prompts:
            raise ConfigError(f"{what} needs top_k < num_prompts (block {name}: top_k {block.top_k}, "
                              f"{block.num_prompts} prompts): negatives use the prompts outside the top-k")
