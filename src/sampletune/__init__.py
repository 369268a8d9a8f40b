"""sampletune: learn how to sample training data for deep networks, and train with it."""

__version__ = "0.1.0"
