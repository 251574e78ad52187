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
    """Instantiate the registered model ``name`` with keyword arguments."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    try:
        return _MODELS[name](**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"bad argument for model {name!r}: {err}; fix or remove that model setting") from err
