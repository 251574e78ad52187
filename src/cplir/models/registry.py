"""Model registry: ``@register_model(name)`` and ``build_model(name, **kwargs)``."""

import inspect
import json
import typing
from collections.abc import Sequence
from typing import Any, Callable, Dict, List, Tuple

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
    factory = _factory(name)
    check_argument_types(name, factory, kwargs)
    try:
        model = factory(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"model {name!r}: {err}") from err
    except Exception as err:  # arguments a constructor does not check fail anywhere inside it (torch included)
        raise ConfigError(f"bad arguments for model {name!r} ({_describe(kwargs)}): {type(err).__name__}: {err}; "
                          "fix or remove that model setting") from err
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
    except ConfigError as err:
        if not isinstance(err.__cause__, (RuntimeError, NotImplementedError)):
            raise
        # a data-dependent operation on meta tensors; bad arguments fail the CPU build the same way
        return build_model(name, **kwargs)


def resolved_arguments(name: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``kwargs`` with the defaults of model ``name``'s constructor filled in, tuples as lists: two specs that
    build the same model compare equal."""
    params, _ = _constructor(_factory(name))
    full = {key: p.default for key, p in params.items() if p.default is not inspect.Parameter.empty}
    full.update(kwargs)
    return json.loads(json.dumps(full, default=repr))


def _factory(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[name]


def _describe(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "defaults"


def _constructor(factory: Callable) -> Tuple[Dict[str, inspect.Parameter], Dict[str, Any]]:
    """Parameters and annotations of ``factory``; a ``**kwargs`` factory forwards to the class it is annotated to
    return, whose constructor's count too. Annotations that cannot be resolved are left out."""
    params = dict(inspect.signature(factory).parameters)
    try:
        hints = typing.get_type_hints(factory)
    except (NameError, TypeError):
        hints = {}
    target = hints.pop("return", None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) and inspect.isclass(target):
        # the class's constructor, and its bases' as long as each forwards **kwargs to the next (the subclass's
        # parameters and annotations take precedence)
        for cls in target.__mro__:
            init = cls.__dict__.get("__init__")
            if init is None:
                continue
            own = inspect.signature(init).parameters
            for key, param in own.items():
                if cls is target or key not in params:
                    params[key] = param
            try:
                hints = {**typing.get_type_hints(init), **hints}
            except (NameError, TypeError):
                pass
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values()):
                break
        hints.pop("return", None)
    return params, hints


_WORDS = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers"), bool: ("true or false", "booleans"),
          str: ("a string", "strings")}


def _expected(tp: Any) -> str:
    """An annotation in the words of a config file."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return " or ".join("null" if arg is type(None) else _expected(arg) for arg in args)
    if origin in (list, tuple, Sequence):
        return f"a list of {_WORDS.get(args[0], ('', str(args[0])))[1]}" if args else "a list"
    return _WORDS.get(tp, (str(tp),))[0]


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (int, float, bool, str, Sequence[...], Optional[...]); any
    other annotation is not checked here."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return any(_matches(value, arg) for arg in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence):
        return isinstance(value, (list, tuple)) and (not args or all(_matches(v, args[0]) for v in value))
    return True


def check_argument_types(name: str, factory: Callable, kwargs: Dict[str, Any]) -> None:
    """Refuse a keyword argument whose value does not fit the constructor's annotation, naming it."""
    _, hints = _constructor(factory)
    for key, value in kwargs.items():
        if key in hints and not _matches(value, hints[key]):
            raise ConfigError(f"model {name!r}: argument {key} must be {_expected(hints[key])}, got {value!r}")
