"""Model registry: ``@register_model(name)`` and ``build_model(name, **kwargs)``."""

from typing import Callable, Dict, List

from torch import nn

from cplir.errors import ConfigError

_MODELS: Dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Register a model factory under ``name`` (a decorator)."""

    def decorate(factory: Callable[..., nn.Module]):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = factory
        return factory

    return decorate


def list_models() -> List[str]:
    return sorted(_MODELS)


def build_model(name: str, **kwargs) -> nn.Module:
    """Instantiate the registered model ``name`` with keyword arguments.

    The model remembers how it was built: ``model.spec == {"name": name, "args": kwargs}`` (what model files
    store, so they rebuild without a config). Bad arguments raise :class:`ConfigError`.
    """
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    try:
        model = _MODELS[name](**kwargs)
    except ConfigError as err:
        raise ConfigError(f"model {name!r}: {err}") from err
    except (TypeError, ValueError) as err:  # a constructor's own check of its arguments
        raise ConfigError(f"bad arguments for model {name!r} ({_describe(kwargs)}): {err}; fix or remove that "
                          "model setting") from err
    model.spec = {"name": name, "args": dict(kwargs)}
    return model


def build_model_skeleton(name: str, **kwargs) -> nn.Module:
    """The model built for its structure only (parameter counts, shapes, argument checks): on the meta device,
    which costs no memory or time, unless its constructor computes buffers from data (window masks), in which case
    it is built on the CPU."""
    import torch

    try:
        with torch.device("meta"):
            return build_model(name, **kwargs)
    except (RuntimeError, NotImplementedError):  # a data-dependent operation on meta tensors
        return build_model(name, **kwargs)


def _describe(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "defaults"
