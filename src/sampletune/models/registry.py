"""Models by name. Register a new one with :func:`register_model`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sampletune.errors import ConfigError, check
from sampletune.models.modes import eval_mode

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
    """Build a registered model, or any torchvision classifier as ``tv:<name>``.

    The first time a (model, input shape, classes) combination is built, a batch of two
    zero inputs goes through it (eval mode, no grad: parameters, buffers and RNGs are
    untouched), so that an architecture that cannot take these inputs (a CNN whose
    pooling leaves 2x2 images empty, a ViT that wants 224x224) is a one-line ConfigError
    before training, not a traceback in the first step."""
    _ensure_builtins()
    if name.startswith("tv:"):
        from sampletune.models.zoo import torchvision_model

        model = torchvision_model(name[3:], input_shape, num_classes)
    elif name not in _MODELS:
        raise ConfigError("model", f"unknown model {name!r}", ", ".join(model_names()))
    else:
        model = _MODELS[name](tuple(input_shape), int(num_classes))
    key = (name, tuple(input_shape), int(num_classes))
    if key not in _CHECKED:
        _check_forward(model, name, tuple(input_shape), int(num_classes))
        _CHECKED.add(key)
    return model


_CHECKED: set[tuple] = set()


def _check_forward(model: nn.Module, name: str, shape: tuple[int, ...], classes: int) -> None:
    import torch

    try:
        with eval_mode(model), torch.no_grad():
            device = next(model.parameters(), torch.zeros(0)).device
            out = model(torch.zeros((2, *shape), device=device))
    except Exception as err:  # any layer's shape error means the same thing here
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError("model", f"{name} cannot take inputs shaped {shape}: {first}",
                          "a model built for this data set's input shape") from None
    check(isinstance(out, torch.Tensor) and tuple(out.shape) == (2, classes), "model",
          f"{name} gives outputs shaped {tuple(getattr(out, 'shape', ()))[1:]} for "
          f"{classes} classes", "a classifier with one logit per class")


def _ensure_builtins() -> None:
    from sampletune.models import zoo  # noqa: F401  (registers the built-in models)
