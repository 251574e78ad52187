"""Pretrained files the project uses and never downloads: ImageNet trunks (VGG16, VGG19, AlexNet) and LPIPS heads.

A file is found, in this order, at a path given explicitly (a config value), at the path named by an environment
variable, or under its published file name in torch.hub's checkpoint folder ``$TORCH_HOME/hub/checkpoints/``.
A path that was named but does not exist is an error; a file that is simply absent is ``None``, so the caller
decides whether that stops the run (a loss) or shows ``n/a`` (a metric).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cplir.errors import CheckpointError


def hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (or wherever ``torch.hub.set_dir`` points)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass(frozen=True)
class PretrainedFile:
    """Where one pretrained file may be.

    Attributes:
        what: what the file holds, for messages ("torchvision's ImageNet VGG19 weights").
        file_name: its published name, looked up in :func:`hub_checkpoints` (may hold a sub-folder).
        env_var: the environment variable that may name it.
        config_hint: where a config gives its path ("the VGG weights path of the config").
        random_hint: how to ask for random weights instead, if that is allowed ("" if not).
    """

    what: str
    file_name: str
    env_var: str
    config_hint: str
    random_hint: str = ""

    def where_to_put(self) -> str:
        text = (f"Put {self.what} ({Path(self.file_name).name}) in one of: (1) a path given explicitly "
                f"({self.config_hint}), (2) the file named by the environment variable {self.env_var}, "
                f"(3) {hub_checkpoints() / self.file_name}. Nothing is downloaded at run time.")
        return text + (f" {self.random_hint}" if self.random_hint else "")

    def locate(self, path: str | os.PathLike | None = None) -> Path | None:
        """``path`` first, then ``$ENV_VAR``, then the hub folder; None when none is set and the default is absent.

        Raises :class:`CheckpointError` for a path that was named (argument or environment variable) but does not
        exist.
        """
        env_value = os.environ.get(self.env_var)
        if path is not None:
            candidate, origin = Path(path).expanduser(), "given explicitly"
        elif env_value:
            candidate, origin = Path(env_value).expanduser(), f"from ${self.env_var}"
        else:
            candidate = hub_checkpoints() / self.file_name
            return candidate if candidate.is_file() else None
        if not candidate.is_file():
            raise CheckpointError(f"{self.what} file {candidate} ({origin}) does not exist. {self.where_to_put()}")
        return candidate

    def load_into(self, module: nn.Module, path: Path, prefix: str = "") -> None:
        """Load ``module``'s whole state from the file at ``path``, whose keys are ``prefix`` + the module's keys
        (other entries of the file are ignored); every key and shape is checked first."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling errors come in many types; all mean "not a weight file"
            raise CheckpointError(f"cannot read {self.what} from {path}: {error}. {self.where_to_put()}") from error
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict. {self.where_to_put()}")
        expected = module.state_dict()
        problems = []
        for key, tensor in expected.items():
            found = state.get(prefix + key)
            if found is None:
                problems.append(f"{prefix}{key} is missing")
            elif tuple(found.shape) != tuple(tensor.shape):
                problems.append(f"{prefix}{key} has shape {tuple(found.shape)}, expected {tuple(tensor.shape)}")
        if problems:
            raise CheckpointError(f"{path} does not hold {self.what} ({'; '.join(problems[:3])}). "
                                  f"{self.where_to_put()}")
        module.load_state_dict({key: state[prefix + key] for key in expected})
