"""``Restorer``: a model and the inference wrappers composed, for scripts and for ``cplir restore``.

    from cplir.inference import Restorer

    restorer = Restorer("cpl-three-task.safetensors", tile=512, ensemble=False, precision="bf16")
    clean = restorer.restore(noisy)                    # numpy in, numpy out: same dtype and layout
    restorer.restore("photo.jpg", out="photo.png")     # a path in, the written path out

Composition, innermost first: pad to the model's size multiple (:func:`run_padded`), each pass with the global
routing imposed or routing itself (:mod:`cplir.inference.routing`) → tiles (:func:`run_tiled`) → x8
self-ensemble (:func:`run_ensemble`) → autocast at the chosen precision around everything.
"""

import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from cplir.data.photo_io import Photo, photo_from_array, read_photo, write_photo
from cplir.errors import ConfigError, InputSizeError
from cplir.inference.calibration import check_calibration, degradation_posterior, selected_components
from cplir.inference.ensemble import run_ensemble
from cplir.inference.padding import run_padded
from cplir.inference.precision import precision_context, resolve_device
from cplir.inference.routing import global_routing, has_prompts, resolve_routing_mode
from cplir.inference.tiling import auto_tile_size, count_tiles, run_tiled

Routing = Dict[str, torch.Tensor]


class Restoration(NamedTuple):
    """What :meth:`Restorer.restore_tensor` returns.

    Attributes:
        image: (B, C, s·H, s·W) float32 on the CPU, not clipped.
        routing: ``{block: (B, P)}`` routing probabilities of the whole image: the global routing imposed on the
            tiles, or the routing of the (untransformed) whole-image pass; None for a model without prompts, and
            for per-tile routing of a model file without calibration (nothing would read it).
        passes: the routing ``{block: {"probs", "indices"}}`` every forward pass used, tile by tile and ensemble
            transform by transform (empty for a model without prompts).
        tiles: tiles per pass (1: the whole image).
    """

    image: torch.Tensor
    routing: Optional[Routing]
    passes: List[Dict[str, Dict[str, torch.Tensor]]]
    tiles: int


class _RoutedPass:
    """``model(x, routing=imposed)`` as a plain callable that records the routing each call used and exposes the
    model's ``size_multiple`` and ``scale`` (so :func:`run_padded` pads and crops for it)."""

    def __init__(self, model: nn.Module, imposed: Optional[Routing], passes: list):
        self.model, self.imposed, self.passes = model, imposed, passes
        self.size_multiple, self.scale = model.size_multiple, model.scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out, record = self.model(x, routing=self.imposed, return_routing=True)
        self.passes.append(record)
        return out


class Restorer:
    """Restore images with one model, tiled or whole, optionally with x8 self-ensemble, at a chosen precision.

    Args:
        model: a model file (anything :func:`cplir.models.load_model` reads) or a built ``nn.Module``.
        tile: None (whole image), a tile side in pixels, or ``"auto"`` (from the available memory, see
            :func:`cplir.inference.tiling.auto_tile_size`). An image no larger than the tile is restored whole.
        tile_overlap: least overlap of neighbouring tiles in pixels.
        ensemble: x8 self-ensemble (eight passes).
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; on the CPU too).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a :class:`torch.device`.
        routing: ``auto`` (global for Sparse Prompt Modules, else per tile), ``global`` or ``tile``.
        arch, args, weights: for a file: the model name and arguments overriding what the file says or what is
            inferred from it, and which weights of a training checkpoint (``ema`` or ``model``).
        progress: show a progress bar over the tiles of a tiled image.
    """

    def __init__(self, model: Union[str, os.PathLike, nn.Module], tile: Union[None, int, str] = None,
                 tile_overlap: int = 32, ensemble: bool = False, precision: str = "fp32", device="auto",
                 routing: str = "auto", arch: Optional[str] = None, args: Optional[dict] = None,
                 weights: str = "ema", progress: bool = False):
        from cplir.models.model_file import load_model

        self.device = resolve_device(device)
        if isinstance(model, nn.Module):
            self.model = model.eval().to(self.device)
        else:
            self.model = load_model(model, name=arch, args=args, weights=weights, device=self.device)
        if not (tile is None or tile == "auto" or (isinstance(tile, int) and tile > 0)):
            raise ConfigError(f"tile must be a positive number of pixels or 'auto', got {tile!r}")
        if isinstance(tile, int) and not 0 <= tile_overlap < tile:
            raise ConfigError(f"tile overlap must be at least 0 and smaller than the tile ({tile}), got "
                              f"{tile_overlap}")
        precision_context(precision, self.device)  # an unknown precision fails here, not on the first image
        self.tile, self.tile_overlap, self.ensemble, self.precision = tile, tile_overlap, ensemble, precision
        self.prompted = has_prompts(self.model)
        self.routing_mode = resolve_routing_mode(self.model, routing)
        calibration = getattr(self.model, "calibration", None)
        self.calibration = check_calibration(calibration, self.model) if calibration and self.prompted else None
        self.progress = progress
        self._auto_tile: Optional[int] = None

    @property
    def scale(self) -> int:
        return int(getattr(self.model, "scale", 1) or 1)

    def tile_size(self, height: int, width: int) -> Optional[int]:
        """The tile side for an image of this size, None when it is restored whole."""
        tile = self.tile
        if tile == "auto":
            if self._auto_tile is None:
                with torch.inference_mode(), precision_context(self.precision, self.device):
                    self._auto_tile = auto_tile_size(self.model, self.device)
            tile = self._auto_tile
        return None if tile is None or tile >= max(height, width) else tile

    def restore_tensor(self, x: torch.Tensor) -> Restoration:
        """Restore ``x`` (B, C, H, W) float in [0, 1] (any H, W); see :class:`Restoration`."""
        if x.dim() != 4:
            raise InputSizeError(f"expected a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
        x = x.float().cpu()
        h, w = x.shape[-2:]
        tile = self.tile_size(h, w)
        passes: list = []
        with torch.inference_mode(), precision_context(self.precision, self.device):
            imposed = None
            if self.prompted and tile is not None and self.routing_mode == "global":
                imposed = global_routing(self.model, x.to(self.device))
            forward = _RoutedPass(self.model, imposed, passes) if self.prompted else self.model

            def padded(t: torch.Tensor) -> torch.Tensor:
                return run_padded(forward, t.to(self.device)).float().cpu()

            bar = self._tile_bar(h, w, tile)

            def one_pass(t: torch.Tensor) -> torch.Tensor:
                if tile is None:
                    return padded(t)
                return run_tiled(padded, t, tile, self.tile_overlap, scale=self.scale,
                                 on_tile=bar.update if bar is not None else None)

            try:
                out = run_ensemble(one_pass, x) if self.ensemble else one_pass(x)
            finally:
                if bar is not None:
                    bar.close()
            routing = imposed
            if routing is None and self.prompted and tile is None:
                routing = {name: r["probs"] for name, r in passes[0].items()}
            elif routing is None and self.calibration is not None:
                routing = global_routing(self.model, x.to(self.device))
        routing = None if routing is None else {k: v.float().cpu() for k, v in routing.items()}
        tiles = 1 if tile is None else count_tiles(h, w, tile, self.tile_overlap)
        return Restoration(out, routing, passes, tiles)

    def _tile_bar(self, height: int, width: int, tile: Optional[int]):
        if not self.progress or tile is None:
            return None
        from tqdm import tqdm

        total = count_tiles(height, width, tile, self.tile_overlap) * (8 if self.ensemble else 1)
        return tqdm(total=total, desc="tiles", unit="tile", leave=False) if total > 1 else None

    def detect(self, routing: Optional[Routing], index: int = 0) -> List[Tuple[str, float]]:
        """``[(task, probability), ...]`` for image ``index`` of a restoration's routing, most likely first
        (:func:`cplir.inference.calibration.degradation_posterior`); empty without calibration."""
        if self.calibration is None or not routing:
            return []
        selected = selected_components({name: probs[index] for name, probs in routing.items()})
        return degradation_posterior(selected, self.calibration)

    def restore_photo(self, photo: Photo) -> Tuple[Photo, Restoration]:
        """The restored photo in the same layout, and the :class:`Restoration` behind it."""
        x = torch.from_numpy(np.ascontiguousarray(photo.rgb.transpose(2, 0, 1)))[None]
        result = self.restore_tensor(x)
        return photo.with_colour(result.image[0].clamp(0, 1).permute(1, 2, 0).numpy()), result

    def restore(self, image, out: Union[None, str, os.PathLike] = None, overwrite: bool = False):
        """Restore ``image`` and give it back as the same kind of thing.

        * a numpy array (H, W), (H, W, 1|2|3|4) of uint8, uint16 or float in [0, 1] -> the same dtype and layout
          (grey stays grey, alpha untouched);
        * a tensor (C, H, W) or (B, C, H, W), C = 1 or 3, float in [0, 1] -> the same shape (times the scale);
        * a path -> the path ``out`` it was written to (required; an existing file is kept unless ``overwrite``).
        """
        if isinstance(image, (str, os.PathLike)):
            if out is None:
                raise ConfigError("restoring a file needs out= (where to write the result); to get an array, "
                                  "pass the image as an array")
            restored, _ = self.restore_photo(read_photo(Path(image)))
            return write_photo(out, restored, overwrite=overwrite)
        if isinstance(image, np.ndarray):
            return self.restore_photo(photo_from_array(image))[0].to_array()
        if isinstance(image, torch.Tensor):
            batch = image if image.dim() == 4 else image[None]
            if image.dim() not in (3, 4) or batch.shape[1] not in (1, 3):
                raise InputSizeError(f"expected a tensor (C, H, W) or (B, C, H, W) with C = 1 or 3, got "
                                     f"{tuple(image.shape)}")
            rgb = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
            restored = self.restore_tensor(rgb).image.clamp(0, 1)
            restored = restored.mean(dim=1, keepdim=True) if batch.shape[1] == 1 else restored
            return (restored if image.dim() == 4 else restored[0]).to(image.device, image.dtype)
        raise ConfigError(f"cannot restore a {type(image).__name__}: pass a numpy array, a tensor or a path")
