"""Data sets by name. Register a new one with :func:`register_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sampletune.data.dataset import RawDataset, validate_raw
from sampletune.errors import ConfigError, check, check_flag

Loader = Callable[..., RawDataset]
_DATASETS: dict[str, Loader] = {}
_USES: dict[str, tuple[str | None, bool]] = {}  # name -> (data_dir kind, downloads)
DATA_DIR_KINDS = (None, "folder", "any")


def register_dataset(name: str, *, data_dir: str | None = "any", download: bool = True,
                     replace: bool = False) -> Callable[[Loader], Loader]:
    """Decorator: ``@register_dataset("mine")`` on ``def load(data_dir, download) -> RawDataset``.

    ``data_dir`` is the user's ``--data-dir`` (``Path`` or ``None``); ``download`` is the
    user's opt-in to fetch from the internet where the source supports it. Declare what
    the source reads so that a flag it would ignore is refused, not silently accepted:
    ``data_dir=None`` (takes no data dir), ``"folder"`` (a folder) or ``"any"`` (a folder or
    a file); ``download=False`` for sources that never download.

    A name already registered (a built-in one included) is refused unless ``replace=True``.
    Whatever the loader returns is validated (:func:`sampletune.data.dataset.validate_raw`):
    labels in [0, num_classes), every class in training, finite inputs, matching counts.
    """
    check(isinstance(name, str) and name != "", "dataset", f"{name!r} is not a name",
          "a non-empty string")
    check(data_dir in DATA_DIR_KINDS, "data_dir", f"unknown kind {data_dir!r}",
          "None, 'folder', 'any'")
    check_flag(download, "download")
    check_flag(replace, "replace")
    _ensure_builtins()  # first, so that the built-ins never overwrite a user's loader

    def deco(fn: Loader) -> Loader:
        check(callable(fn), "dataset", f"the loader of {name!r} is not callable")
        check(replace or name not in _DATASETS, "dataset", f"{name!r} is already registered",
              "another name, or register_dataset(..., replace=True)")
        _DATASETS[name] = fn
        _USES[name] = (data_dir, download)
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
    kind, downloads = _USES[name]
    if data_dir is not None:
        check(kind is not None, "data_dir", f"data set {name!r} reads no data dir; "
              f"{str(data_dir)!r} would be ignored", "no --data-dir for " + name)
        missing = download and not Path(data_dir).exists()  # the download creates it
        check(kind != "folder" or missing or Path(data_dir).is_dir(), "data_dir",
              f"{str(data_dir)!r} is not a folder", f"a folder for {name}")
    check(not download or downloads, "download", f"data set {name!r} is never downloaded",
          "no --download for " + name)
    raw = _DATASETS[name](Path(data_dir) if data_dir is not None else None, download)
    check(isinstance(raw, RawDataset), "dataset", f"the loader of {name!r} returned a "
          f"{type(raw).__name__}", "a sampletune.data.RawDataset")
    return validate_raw(raw)


_builtins_loaded = False


def _ensure_builtins() -> None:
    """Register the built-in loaders, once (their own registrations come back here)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from sampletune.data import sources  # noqa: F401  (registers the built-in loaders)
