"""Model registry: ``build_model(name, input_shape, num_classes)``; ``eval_mode(model)``."""

from sampletune.models.modes import eval_mode
from sampletune.models.registry import build_model, model_names, register_model

__all__ = ["build_model", "eval_mode", "model_names", "register_model"]
