"""Models by name. Register a new one with :func:`register_model`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sampletune.errors import ConfigError

Builder = Callable[[tuple[int, ...], int], nn.Module]
_MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register_model("mine")`` on ``def build(input_shape, num_classes)``.

    ``input_shape`` is one example's shape, e.g. ``(1, 8, 8)`` or ``(40,)``.
    """

    def deco(fn: Builder) -> Builder:
        _MODELS[name] = fn
        return fn

    return deco


def model_names() -> list[str]:
    _ensure_builtins()
    return sorted(_MODELS) + ["tv:<torchvision classifier name>"]


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a registered model, or any torchvision classifier as ``tv:<name>``."""
    _ensure_builtins()
    if name.startswith("tv:"):
        from sampletune.models.zoo import torchvision_model

        return torchvision_model(name[3:], input_shape, num_classes)
    if name not in _MODELS:
        raise ConfigError("model", f"unknown model {name!r}", ", ".join(model_names()))
    return _MODELS[name](tuple(input_shape), int(num_classes))


def _ensure_builtins() -> None:
    from sampletune.models import zoo  # noqa: F401  (registers the built-in models)
