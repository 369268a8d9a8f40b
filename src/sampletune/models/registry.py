"""Models by name. Register a new one with :func:`register_model`."""

from __future__ import annotations

import numbers
from collections.abc import Callable

from torch import nn

from sampletune.errors import ConfigError, check, check_flag, check_int
from sampletune.models.modes import eval_mode

Builder = Callable[[tuple[int, ...], int], nn.Module]
_MODELS: dict[str, Builder] = {}


def register_model(name: str, *, replace: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: ``@register_model("mine")`` on ``def build(input_shape, num_classes)``.

    ``input_shape`` is one example's shape, e.g. ``(1, 8, 8)`` or ``(40,)``. A name already
    registered (a built-in one included) is refused unless ``replace=True``.
    """
    check(isinstance(name, str) and name != "" and not name.startswith("tv:"), "model",
          f"{name!r} is not a model name", "a non-empty string not starting with 'tv:'")
    check_flag(replace, "replace")
    _ensure_builtins()  # first, so that the built-ins never overwrite a user's model

    def deco(fn: Builder) -> Builder:
        check(callable(fn), "model", f"the builder of {name!r} is not callable")
        check(replace or name not in _MODELS, "model", f"{name!r} is already registered",
              "another name, or register_model(..., replace=True)")
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
    check(isinstance(name, str), "model", f"{name!r} is not a model name",
          ", ".join(model_names()))
    check(isinstance(input_shape, tuple | list) and len(input_shape) >= 1
          and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
                  for d in input_shape), "input_shape",
          f"{input_shape!r} is not the shape of one example", "a tuple of positive integers")
    check_int(num_classes, "num_classes", 1)
    shape, classes = tuple(int(d) for d in input_shape), int(num_classes)
    if name.startswith("tv:"):
        from sampletune.models.zoo import torchvision_model

        factory = torchvision_model
        model = torchvision_model(name[3:], shape, classes)
    elif name not in _MODELS:
        raise ConfigError("model", f"unknown model {name!r}", ", ".join(model_names()))
    else:
        factory = _MODELS[name]
        model = factory(shape, classes)
    key = (name, factory, shape, classes)  # a re-registered name is checked again
    if key not in _CHECKED:
        _check_forward(model, name, shape, classes)
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


_builtins_loaded = False


def _ensure_builtins() -> None:
    """Register the built-in models, once (their own registrations come back here)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from sampletune.models import zoo  # noqa: F401  (registers the built-in models)
