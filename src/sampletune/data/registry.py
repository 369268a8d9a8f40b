"""Data sets by name. Register a new one with :func:`register_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sampletune.data.dataset import RawDataset
from sampletune.errors import ConfigError

Loader = Callable[..., RawDataset]
_DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: ``@register_dataset("mine")`` on ``def load(data_dir, download) -> RawDataset``.

    ``data_dir`` is the user's ``--data-dir`` (``Path`` or ``None``); ``download`` is the
    user's opt-in to fetch from the internet where the source supports it.
    """

    def deco(fn: Loader) -> Loader:
        _DATASETS[name] = fn
        return fn

    return deco


def dataset_names() -> list[str]:
    _ensure_builtins()
    return sorted(_DATASETS)


def load_dataset(
    name: str, data_dir: str | Path | None = None, download: bool = False
) -> RawDataset:
    """Load a registered data set; an unknown name is a :class:`ConfigError`."""
    _ensure_builtins()
    if name not in _DATASETS:
        raise ConfigError("dataset", f"unknown data set {name!r}", ", ".join(dataset_names()))
    return _DATASETS[name](Path(data_dir) if data_dir is not None else None, download)


def _ensure_builtins() -> None:
    from sampletune.data import sources  # noqa: F401  (registers the built-in loaders)
