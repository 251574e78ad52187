"""ONNX export of a restoration network with dynamic batch, height and width.

The graph takes (B, C, H, W) float32 with H and W multiples of the model's ``size_multiple`` and returns
(B, C_out, s·H, s·W); pad other sizes first (as :func:`cplir.inference.run_padded` does). The routing of prompt
blocks is computed inside the graph, per image. The model's spec (and routing calibration) go into the ONNX
metadata (``cplir_spec``, ``cplir_calibration``), with ``size_multiple`` and ``scale``.

Export uses PyTorch's ``torch.export``-based exporter (``dynamo=True``; the TorchScript one cannot trace the
shape-dependent layer norm), which needs the ``onnx`` and ``onnxscript`` packages (the ``onnx`` extra).
"""

import json
import os
from pathlib import Path
from typing import Union

import torch
from torch import nn

from cplir.errors import CheckpointError
from cplir.models.nafnet import LocalAvgPool2d

MAX_SIDE = 16384  # largest H, W the graph promises to accept


def _input_channels(model: nn.Module) -> int:
    """Channels of the first convolution, i.e. of the input image."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def export_onnx(model: nn.Module, path: Union[str, os.PathLike], overwrite: bool = False,
                opset: int = 18) -> Path:
    """Write ``model`` (eval mode, CPU) as an ONNX file with dynamic batch, height and width."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter imports it; fail here with the install hint)
    except ImportError as err:
        raise CheckpointError("ONNX export needs the onnx and onnxscript packages: pip install 'cplir[onnx]' "
                              f"(missing: {err.name})") from err
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} already exists; choose another name or pass --overwrite")
    if any(isinstance(m, LocalAvgPool2d) for m in model.modules()):
        raise CheckpointError("ONNX export of nafnet_local is not supported: its local means choose between a "
                              "global and a windowed mean by the image size, which an exported graph cannot; "
                              "export its weights as .safetensors, or build model nafnet (the same keys) with "
                              "them and export that")
    model = model.eval().cpu()
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    step = max(multiple, 8)
    # Batch 2 and unequal sides, so the exporter cannot specialise a size to 1 or tie H to W.
    example = torch.rand(2, _input_channels(model), 4 * step, 6 * step)
    dims = {0: torch.export.Dim("batch", min=1, max=1024)}
    for axis, name in ((2, "height"), (3, "width")):
        units = torch.export.Dim(f"{name}_units", min=1, max=MAX_SIDE // multiple)
        dims[axis] = multiple * units if multiple > 1 else units
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with torch.no_grad():
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"],
                                        output_names=["output"], dynamic_shapes=(dims,), opset_version=opset,
                                        external_data=False, verbose=False)
        proto = program.model_proto
        metadata = {"cplir_spec": json.dumps(getattr(model, "spec", None)),
                    "cplir_calibration": json.dumps(getattr(model, "calibration", None)),
                    "size_multiple": str(multiple), "scale": str(int(getattr(model, "scale", 1) or 1))}
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    except Exception as err:  # the exporter's errors come from deep inside torch.export
        raise CheckpointError(f"ONNX export of {type(model).__name__} failed: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path
