"""Model registry: ``build_model(name, input_shape, num_classes)``."""

from sampletune.models.registry import build_model, model_names, register_model

__all__ = ["build_model", "model_names", "register_model"]
