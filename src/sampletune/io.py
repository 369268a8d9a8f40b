"""Atomic file writes and JSON-lines records, so an interrupted run never leaves a torn file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


def _atomic_replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_replace(Path(path), lambda fh: fh.write(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename)."""
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically."""
    _atomic_replace(Path(path), lambda fh: torch.save(obj, fh))


def save_npz(path: str | os.PathLike, **arrays) -> None:
    """``numpy.savez_compressed`` atomically."""
    import numpy as np

    _atomic_replace(Path(path), lambda fh: np.savez_compressed(fh, **arrays))


def save_npy(path: str | os.PathLike, array) -> None:
    """``numpy.save`` atomically."""
    import numpy as np

    _atomic_replace(Path(path), lambda fh: np.save(fh, array))


def load_torch(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    return torch.load(path, map_location=map_location, weights_only=False)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON record as a line and fsync it, so finished work survives a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(path)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=_jsonable) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so the next record starts on
    a line of its own (the torn record was never complete, so nothing finished is lost)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        fh.truncate(fh.read().rfind(b"\n") + 1)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write all ``records`` as JSON lines, atomically (replaces the file)."""
    write_text(path, "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n"
                             for r in records))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON-lines records; a torn last line (from a kill mid-write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
